"""The flywheel demo's parts that run without the real model: its questions and its scripted reviewers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def flywheel():
    spec = importlib.util.spec_from_file_location("flywheel_demo", ROOT / "scripts" / "flywheel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_questions_are_distinct_deterministic_and_right():
    fw = flywheel()
    qs = fw.questions(160)
    assert qs == fw.questions(160) and len({q["prompt"] for q in qs}) == 160
    for q in qs:
        expression = q["prompt"].removeprefix("What is ").split("?")[0]
        assert eval(expression) == q["answer"]  # noqa: S307 (our own generated digits and operators)


def test_scripted_reviewers_correct_wrong_answers_and_confirm_right_ones(tmp_path, monkeypatch):
    from alignline.annotate.store import FAST_KDF, Store

    fw = flywheel()
    monkeypatch.setenv("ALIGNLINE_FAST_KDF", "1")
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = Store(url, kdf=FAST_KDF)
    q1, q2 = "What is 2 + 3? Answer with the number only.", "What is 4 * 4? Answer with the number only."
    store.enqueue_review(fw.PROJECT, [{"role": "user", "content": q1}], "The answer is 6.", {"request_id": "r1"})
    store.enqueue_review(fw.PROJECT, [{"role": "user", "content": q2}], "16", {"request_id": "r2"})
    assert fw.review(url, {q1: 5, q2: 16}) == {"reviewed": 2, "corrected": 1, "confirmed": 1}
    sft = [r for r in store.export(fw.PROJECT) if r["kind"] == "sft"]
    assert [r["messages"][-1]["content"] for r in sft] == ["2 + 3 = 5"] and sft[0]["lineage"]["review"][
        "request_id"
    ] == "r1"
