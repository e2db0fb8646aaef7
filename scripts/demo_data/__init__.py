"""The demo data generator's parts (see scripts/make_demo_data.py)."""
