"""The bundled demo data is exactly what `scripts/make_demo_data.py` generates (deterministic, no network)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generator_reproduces_bundled_demo_data(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_demo_data.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    bundled = ROOT / "data" / "demo"
    written = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert written, "the generator wrote nothing"
    for name in written:
        assert (tmp_path / name).read_bytes() == (bundled / name).read_bytes(), name
