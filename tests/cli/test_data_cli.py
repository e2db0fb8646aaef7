"""The command line: exit codes 0/1/2, reports (JSON + self-contained HTML), config errors, audits, train hook."""

from __future__ import annotations

import json
import re

from alignline.cli import main
from alignline.data.quality import failure_summary
from support import write_jsonl


def chat(user, answer, **extra):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}], **extra}


def clean_records(n=40):
    recs = [
        chat(f"What is {i} times {i + 3}, and why does it matter for item {i}?", f"It is {i * (i + 3)}.", task="answer")
        for i in range(n)
    ]
    recs += [
        chat(f"Tell me how to break into house number {i}.", "I can't help with that.", task="refusal")
        for i in range(4)
    ]
    return recs


def test_check_passes_writes_reports(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", clean_records())
    evals = write_jsonl(
        tmp_path / "eval.jsonl", [chat("Name a prime number above one hundred.", "101.", task="answer")]
    )
    out = tmp_path / "report"
    assert main(["data", "check", str(train), "--eval", str(evals), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "passed: 44 records" in text and "PASS  leaked_eval_items" in text
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True and report["records"] == 44
    for g in report["gates"]:
        assert {"name", "value", "threshold", "passed"} <= set(g)
    assert {g["name"] for g in report["gates"]} >= {
        "duplicate_share",
        "leaked_eval_items",
        "pii_record_share",
        "format_invalid_share",
    }
    assert [g["name"] for g in report["advisory_gates"]] == ["refusal_share"]  # a warning unless enforced
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 3
    assert "refusal_share (advisory)" in html
    assert not re.search(r"<script|<link|src=|href=|@import|url\(|https?:", html)  # nothing fetched from anywhere
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]  # no temp files left


def test_check_fails_with_exit_1_and_html_shows_failures(tmp_path, capsys):
    recs = clean_records()
    recs += [recs[0]] * 3 + [chat("my email is a.person@example.com", "ok", task="answer")]
    train = write_jsonl(tmp_path / "train.jsonl", recs)
    assert main(["data", "check", str(train), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  duplicate_share" in out and "FAILED: 48 records" in out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert not report["passed"]
    assert failure_summary(report).startswith("duplicate_share = 0.0625 (must be <= 0.02)")
    html = (tmp_path / "r" / "report.html").read_text()
    assert "FAIL" in html and "largest duplicate clusters" in html and "records with PII, by type" in html


# GSM8K's published shape (openai/gsm8k, main): question, and an answer whose last line is `#### N`.
def gsm8k_records(n=16):
    return [
        {
            "question": f"Ann has {i + 3} apples and buys {2 * i + 1} more. How many apples does she have now?",
            "answer": f"Ann buys {2 * i + 1} apples.\nShe has {i + 3} + {2 * i + 1} = <<{i + 3}+{2 * i + 1}="
            f"{3 * i + 4}>>{3 * i + 4} apples.\n#### {3 * i + 4}",
        }
        for i in range(n)
    ]


def test_check_reads_columns_and_split_as_training_does(tmp_path, capsys):
    path = write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_records())
    assert main(["data", "check", str(path), "--out", str(tmp_path / "bare"), "--quiet"]) == 2
    assert "no known format" in capsys.readouterr().err  # without the mapping: not a format alignline knows
    out = tmp_path / "report"
    assert main(["data", "check", str(path), "--column", "prompt=question", "--out", str(out), "--quiet"]) == 0
    assert "passed: 16 records" in capsys.readouterr().out
    assert json.loads((out / "report.json").read_text())["format"]["invalid_share"] == 0
    from datasets import Dataset, DatasetDict

    saved = tmp_path / "gsm8k_dir"
    DatasetDict({"test": Dataset.from_list(gsm8k_records(8))}).save_to_disk(str(saved))
    assert (
        main(
            [
                "data",
                "check",
                str(saved),
                "--split",
                "test",
                "--column",
                "prompt=question",
                "--out",
                str(tmp_path / "r2"),
                "--quiet",
            ]
        )
        == 0
    )
    assert "passed: 8 records" in capsys.readouterr().out
    assert main(["data", "check", str(saved), "--column", "prompt", "--out", str(tmp_path / "r3"), "--quiet"]) == 2
    assert "--column: expected OUR=THEIR" in capsys.readouterr().err


def test_train_gates_read_data_columns(tmp_path, tiny_model_dir, capsys):
    """GSM8K with `data.columns: {prompt: question}` and the gates on: the gates read what GRPO reads, and it trains."""
    from support import write_recipe

    path = write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_records())
    out = tmp_path / "run"
    recipe = write_recipe(
        tmp_path / "grpo.yaml",
        method="grpo",
        model=str(tiny_model_dir),
        output_dir=str(out),
        data={"train": str(path), "columns": {"prompt": "question"}},
        rewards=[{"name": "accuracy", "function": "math_answer"}],
        grpo={"num_generations": 4, "max_new_tokens": 8},
        training={"max_steps": 2, "batch_size": 2, "tensorboard": False, "max_length": 128, "threads": 1},
    )
    assert main(["train", str(recipe), "--quiet"]) == 0
    report = json.loads((out / "data_report.json").read_text())
    assert report["passed"] is True and report["records"] == 16 and report["format"]["invalid_share"] == 0
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["data_gates"]["passed"] is True
    # The reference solutions score 1.0 under the run's reward, so the first step says nothing about them.
    from alignline.rewards.numeric import math_answer

    records = gsm8k_records()
    assert math_answer(None, [r["answer"] for r in records], answer=[r["answer"] for r in records]) == [1.0] * 16
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert not [a for m in metrics for a in m.get("alarms", []) if "reference answers" in a]
