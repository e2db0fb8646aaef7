"""The rendering primitives every report draws with: one HTML page scaffold (`html`) and inline SVG charts
(`svg`). A leaf (layer 0, the standard library only), so the data-gate report (`data/quality/report.py`), the
run report and model card (`report/`), the eval and gate pages (`evals/report.py`) and the calibration page
(`serve/calibrate.py`) all share one look without importing each other."""
