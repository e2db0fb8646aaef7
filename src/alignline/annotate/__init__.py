"""Humans in the loop: the annotation store (`store.py`), its tables and migrations, agreement and export
(`results.py`), the web app (`web/`), and active learning (`active.py`, `simulation.py`: which pairs to label
next). SQLAlchemy, alembic and argon2 are imported only by the store's modules."""
