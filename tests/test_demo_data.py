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


def test_contrast_pairs_are_the_script_output_and_stay_off_the_refusal_suite(tmp_path):
    """`data/demo/preference_contrastive.jsonl` (the pipeline demo's over-refusal contrast pairs) is what its
    script writes, and none of its prompts is a prompt of the refusal suite it is measured by."""
    import json

    out = tmp_path / "contrast.jsonl"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_contrastive_pairs.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    bundled = ROOT / "data" / "demo" / "preference_contrastive.jsonl"
    assert out.read_bytes() == bundled.read_bytes()
    pairs = [json.loads(line) for line in bundled.read_text().splitlines()]
    suite = ROOT / "src" / "alignline" / "evals" / "starter" / "refusal.jsonl"
    evaluated = {json.loads(line)["prompt"].strip().lower() for line in suite.read_text().splitlines()}
    assert len(pairs) == 60
    for pair in pairs:
        assert pair["prompt"][0]["content"].strip().lower() not in evaluated
        assert pair["chosen"][0]["role"] == pair["rejected"][0]["role"] == "assistant"
