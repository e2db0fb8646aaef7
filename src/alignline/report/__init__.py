"""Reports people look at: inline SVG charts (`svg`), one HTML page scaffold (`html`), the training run
report (`run`) and the model card (`model_card`). The data-gate report (`data/quality/report.py`)
uses the same charts and page."""
