"""`training.eval_suites`: `alignline eval` suites run at each evaluation of a training run, logged as
`suite/<suite>/<metric>`, and early stopping can watch one."""

from __future__ import annotations

import json

import pytest
import yaml

from alignline.config import load_config
from alignline.errors import DataError
from alignline.evals.training import train
from alignline.train.metrics import read_metrics
from support import write_jsonl


def test_suites_are_logged_and_watched(sft_recipe, tmp_path):
    recipe, out = sft_recipe
    write_jsonl(
        tmp_path / "qa.jsonl",
        [{"id": f"q{i}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(4)],
    )
    suite = tmp_path / "qa.yaml"
    suite.write_text(
        yaml.safe_dump(
            {"name": "qa", "kind": "accuracy", "data": "qa.jsonl", "grader": "contains", "max_new_tokens": 4}
        )
    )
    cfg = load_config(
        recipe,
        [
            f"training.eval_suites=[{suite}]",
            "training.early_stopping_metric=suite/qa/accuracy",
            "training.early_stopping_patience=1",
            "training.max_steps=6",
            "training.threads=1",
        ],
    )
    train(cfg, progress=False)
    evals = [m for m in read_metrics(out / "metrics.jsonl") if "suite/qa/accuracy" in m]
    assert evals and all(0.0 <= m["suite/qa/accuracy"] <= 1.0 for m in evals)
    run = json.loads((out / "run.json").read_text())
    # A random tiny model never improves on 0: patience 1 stops at the second evaluation.
    assert run["stopped_early"] and "suite/qa/accuracy did not improve" in run["stop_reason"]


def test_a_bad_suite_stops_the_run_before_training(sft_recipe, tmp_path):
    recipe, out = sft_recipe
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkind: nonsense\n")
    with pytest.raises(DataError, match="bad.yaml"):
        train(load_config(recipe, [f"training.eval_suites=[{bad}]"]), progress=False)
    assert not (out / "metrics.jsonl").exists()
