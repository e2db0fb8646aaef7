"""`RunRecord` is the one shape of run.json: its keys and their order are what users script against."""

import json

from alignline.train.run_record import RunOutcome, RunRecord, RunStart

START = RunStart(
    data={"train_examples": 3},
    model={"spec": {"name": "m"}, "parameters": {"total": 10}},
    plan={"total_steps": 2, "rows": 3, "batches_per_epoch": 1},
    fast_path=None,
    data_gates=None,
    resumed_from=None,
    packages={"torch": "2"},
    git_commit=None,
    environment={"python": "3"},
)
OUTCOME = RunOutcome(
    steps=2,
    stopped_early=False,
    stop_reason=None,
    tokens_seen=40,
    best_eval={"eval_loss": 1.5},
    evals=[],
    final="out/final",
    seconds=1.0,
)
START_KEYS = [
    "data",
    "model",
    "plan",
    "fast_path",
    "data_gates",
    "resumed_from",
    "packages",
    "git_commit",
    "environment",
    "generation",
]
OUTCOME_KEYS = ["steps", "stopped_early", "stop_reason", "tokens_seen", "best_eval", "evals", "final", "seconds"]


def test_keys_in_the_order_of_a_run(tmp_path):
    record = RunRecord("running", {"method": "sft"}, START)
    assert list(record.to_dict()) == ["status", "config", *START_KEYS]
    record.completed(OUTCOME)
    assert list(record.to_dict()) == ["status", "config", *START_KEYS, *OUTCOME_KEYS]
    record.failed("model card: disk full")
    path = record.write(tmp_path / "run.json")
    written = json.loads(path.read_text())
    assert list(written) == ["status", "config", *START_KEYS, *OUTCOME_KEYS, "error"]
    assert written["status"] == "failed" and written["error"] == "model card: disk full"
    assert written["resumed_from"] is None and written["best_eval"] == {"eval_loss": 1.5}


def test_failed_before_start_is_small():
    record = RunRecord("failed", {"method": "sft"})
    record.failed("data.train: no such file")
    assert record.to_dict() == {"status": "failed", "config": {"method": "sft"}, "error": "data.train: no such file"}


def test_read_gives_back_what_was_written(tmp_path):
    record = RunRecord("completed", {"method": "dpo"}, START, OUTCOME)
    record.write(tmp_path / "run.json")
    again = RunRecord.read(tmp_path / "run.json")
    assert again == record


def test_unknown_and_partial_keys_survive_a_rewrite(tmp_path):
    """A run.json of another version: its keys are kept, none invented."""
    data = {"status": "running", "config": {}, "data": {"rows": 1}, "note": "by hand"}
    record = RunRecord.from_dict(data)
    assert record.start is None
    record.failed("boom")
    assert record.to_dict() == {**data, "status": "failed", "error": "boom"}
