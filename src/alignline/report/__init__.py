"""Reports people look at: the training run report (`run`) and the model card (`model_card`). They draw with
the page scaffold and charts of `alignline.render` (`render.html`, `render.svg`), which the data-gate report
(`data/quality/report.py`) and the eval pages use too."""
