"""`RunHooks`: what the layers above the loop add to a run. The loop alone (`BareRun`) refuses eval suites
rather than train without them; the full run (`evals/training.py`, `FullRun`) reads them at the start."""

from __future__ import annotations

import pytest

from alignline.config import RunConfig
from alignline.errors import ConfigError
from alignline.evals.in_training import training_suites
from alignline.evals.training import FullRun
from alignline.train.loop import BareRun


def test_the_bare_loop_refuses_suites_instead_of_skipping_them():
    cfg = RunConfig()
    assert BareRun().suites(cfg, 1) is None
    cfg.training.eval_suites = ["qa.yaml"]
    with pytest.raises(ConfigError, match="training.eval_suites.*alignline.evals.training.train"):
        BareRun().suites(cfg, 1)


def test_the_full_run_has_no_suite_evaluator_without_suites():
    assert FullRun().suites(RunConfig(), 1) is None
    assert training_suites([], 4) is None


def test_suites_refuse_several_processes():
    with pytest.raises(ConfigError, match="one process"):
        training_suites(["qa.yaml"], 2)
