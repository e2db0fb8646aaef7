"""Humans in the loop: the annotation store (`store.py`), its tables and migrations, agreement and export
(`results.py`), and the web app (`web/`). SQLAlchemy, alembic and argon2 are imported only by these modules."""
