"""The annotation web app (`alignline annotate serve`): `app.create_app(store)` builds it. Importing this package
imports nothing heavy; FastAPI, uvicorn and Jinja2 load only inside the functions that need them."""
