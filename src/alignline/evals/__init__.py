"""Evaluation suites and release gates: `alignline eval` and `alignline gate`.

`suites.py` reads suite files; one module per family of kinds (`answers`, `likelihood`, `safety`,
`leakage`, `win_rate`, `calibration`) runs them through `context.py` (cached generation and
teacher-forced log-probs); `results.py` writes `results.json` with candidate-minus-baseline deltas
(`stats.py`); `gate.py` applies a gates file; `report.py` writes the HTML pages. Starter suites live in
`starter/` (`--suite starter/<name>`).
"""
