"""`make demo-grpo`'s closing table, from an `alignline eval` results.json (numbers made up, points by hand)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("grpo_demo_summary", ROOT / "scripts" / "grpo_demo_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_table(tmp_path, capsys):
    """accuracy 0.25 -> 0.375 is +12.5 points, interval [+2.0, +23.0]; format 0.0 -> 0.5 is +50.0."""
    results = {
        "metrics": {
            "base": {"arith/accuracy": 0.25, "arith/format": 0.0},
            "grpo": {"arith/accuracy": 0.375, "arith/format": 0.5},
        },
        "deltas": {
            "grpo": {
                "arith/accuracy": {"delta": 0.125, "ci_low": 0.02, "ci_high": 0.23, "test": "mcnemar", "p_value": 0.04}
            }
        },
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    script = load_script()
    assert script.main([str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "25.0%" in out[1] and "37.5%" in out[1] and "+12.5pt" in out[1] and "[+2.0, +23.0]" in out[1]
    assert "p = 0.040 (mcnemar)" in out[1]
    assert out[2].startswith("format") and "+50.0pt" in out[2]
    assert script.main([str(tmp_path / "missing.json")]) == 2
