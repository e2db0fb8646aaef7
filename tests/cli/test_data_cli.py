"""The command line: exit codes 0/1/2, reports (JSON + self-contained HTML), config errors, audits, train hook."""

from __future__ import annotations

import json
import re


from alignline.cli import main
from alignline.data.quality import failure_summary

from alignline.testing import write_jsonl


def chat(user, answer, **extra):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}], **extra}


def clean_records(n=40):
    recs = [chat(f"What is {i} times {i + 3}, and why does it matter for item {i}?", f"It is {i * (i + 3)}.",
                 task="answer") for i in range(n)]
    recs += [chat(f"Tell me how to break into house number {i}.", "I can't help with that.", task="refusal")
             for i in range(4)]
    return recs


def test_check_passes_writes_reports(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", clean_records())
    evals = write_jsonl(tmp_path / "eval.jsonl", [chat("Name a prime number above one hundred.", "101.", task="answer")])
    out = tmp_path / "report"
    assert main(["data", "check", str(train), "--eval", str(evals), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "passed: 44 records" in text and "PASS  leaked_eval_items" in text
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True and report["records"] == 44
    for g in report["gates"]:
        assert {"name", "value", "threshold", "passed"} <= set(g)
    assert {g["name"] for g in report["gates"]} >= {"duplicate_share", "leaked_eval_items", "pii_record_share",
                                                    "format_invalid_share"}
    assert [g["name"] for g in report["advisory_gates"]] == ["refusal_share"]  # a warning unless enforced
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 3
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
