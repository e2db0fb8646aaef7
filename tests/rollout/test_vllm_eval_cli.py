"""`alignline eval --backend vllm` on the embedded model gives the same greedy answers and metrics as
`--backend hf` (float32: the two engines then agree exactly; see test_vllm_engine.py), and records which
engine and dtype generated. One vLLM start-up (~40-90 s)."""

from __future__ import annotations

import json

import pytest

from alignline.cli import main
from support import vllm_or_skip

pytestmark = pytest.mark.slow

SUITE_RECORDS = 6


def run_eval(out, backend: str) -> dict:
    code = main(
        ["eval", "--model", "m=smollm2-135m", "--suite", "starter/arithmetic", "--limit", str(SUITE_RECORDS)]
        + ["--backend", backend, "--dtype", "float32", "--no-cache", "--bootstrap", "10", "--out", str(out)]
    )
    assert code == 0
    return {
        "results": json.loads((out / "results.json").read_text()),
        "examples": json.loads((out / "examples.json").read_text()),
    }


def test_eval_backend_vllm_equals_backend_hf(tmp_path, monkeypatch):
    vllm_or_skip()
    monkeypatch.setenv("ALIGNLINE_CACHE", str(tmp_path / "cache"))
    hf = run_eval(tmp_path / "hf", "hf")
    vllm = run_eval(tmp_path / "vllm", "vllm")
    assert hf["results"]["models"]["m"]["engine"] == {"backend": "hf", "dtype": "float32", "loaded": True}
    assert vllm["results"]["models"]["m"]["engine"] == {"backend": "vllm", "dtype": "float32", "loaded": True}
    hf_out = [e["output"] for e in hf["examples"]["m"]["arithmetic"]]
    vllm_out = [e["output"] for e in vllm["examples"]["m"]["arithmetic"]]
    assert len(hf_out) == SUITE_RECORDS and vllm_out == hf_out
    assert vllm["results"]["metrics"]["m"] == hf["results"]["metrics"]["m"]
