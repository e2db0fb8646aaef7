"""The command line: exit codes 0/1/2, reports (JSON + self-contained HTML), config errors, audits, train hook."""

from __future__ import annotations

import csv
import json
import re

import pytest

from alignline.cli import main
from alignline.data.quality import failure_summary, gate_training_data
from alignline.data.quality.audit import allocate

from conftest import write_jsonl


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
                                                    "format_invalid_share", "refusal_share"}
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


@pytest.mark.parametrize("content,needle", [
    ("{\"text\": \"fine\"}\n{oops\n", "line 2: malformed JSON"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n", "line 1, field 'messages': has no assistant"),
    ("{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}\n", "line 1, field 'messages[0].role'"),
    ("{\"prompt\": \"q\", \"chosen\": 3, \"rejected\": \"b\"}\n", "line 1, field 'chosen'"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert main(["data", "check", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(path) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("yaml_text,needle", [
    ("dedup:\n  treshold: 0.5\n", "unknown config key 'dedup.treshold'"),
    ("pii:\n  types: [email, fax]\n", "'pii.types[1]'"),
    ("coverage:\n  max_refusal_share: 3\n", "'coverage.max_refusal_share': must be a share"),
    ("dedup: [1, 2]\n", "'dedup': expected a mapping"),
])
def test_bad_gate_config_names_the_key(tmp_path, capsys, yaml_text, needle):
    train = write_jsonl(tmp_path / "train.jsonl", clean_records())
    cfg = tmp_path / "gates.yaml"
    cfg.write_text(yaml_text)
    assert main(["data", "check", str(train), "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(cfg) in err


def test_gate_config_changes_thresholds(tmp_path):
    recs = clean_records()
    recs += [recs[0]] * 3
    train = write_jsonl(tmp_path / "train.jsonl", recs)
    cfg = tmp_path / "gates.yaml"
    cfg.write_text("dedup:\n  max_duplicate_share: 0.1\n")
    assert main(["data", "check", str(train), "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0


def test_recipe_example_config_loads():
    from pathlib import Path

    from alignline.data.quality.gates import GateConfig, load_gate_config

    cfg = load_gate_config(Path(__file__).parents[1] / "recipes" / "gates.yaml")
    assert cfg == GateConfig()  # the example spells out the defaults


def test_audit_sample_and_score(tmp_path, capsys):
    recs = [chat(f"q{i}", f"a{i}", task="answer") for i in range(50)]
    recs += [chat(f"s{i}", f"=SUM({i})", task="summarize") for i in range(30)]
    recs += [chat(f"r{i}", "I can't help with that.", task="refusal") for i in range(20)]
    train = write_jsonl(tmp_path / "train.jsonl", recs)
    sheet = tmp_path / "audit.csv"
    assert main(["data", "audit", "sample", str(train), "--n", "10", "--out", str(sheet), "--quiet"]) == 0
    rows = list(csv.DictReader(sheet.open()))
    assert len(rows) == 10 and list(rows[0]) == ["id", "category", "prompt", "response", "rejected", "verdict", "note"]
    assert sorted(r["category"] for r in rows) == ["answer"] * 5 + ["refusal"] * 2 + ["summarize"] * 3
    assert all(r["response"].startswith("'=") for r in rows if r["category"] == "summarize")  # no formulas
    assert len({r["id"] for r in rows}) == 10

    def review(verdicts):
        with sheet.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            for r, v in zip(rows, verdicts):
                w.writerow(r | {"verdict": v})

    review(["correct"] * 9 + ["incorrect"])
    assert main(["data", "audit", "score", str(sheet), "--out", str(tmp_path / "a")]) == 0
    assert "accuracy 90.0% (9 of 10 reviewed" in capsys.readouterr().out
    assert json.loads((tmp_path / "a" / "audit_report.json").read_text())["passed"] is True
    review(["ok"] * 8 + ["wrong", "skip"])
    assert main(["data", "audit", "score", str(sheet)]) == 1
    assert "88.9% (8 of 9 reviewed, 1 skipped" in capsys.readouterr().out
    review(["correct"] * 4 + [""] + ["correct"] * 5)
    assert main(["data", "audit", "score", str(sheet)]) == 2
    assert f"{sheet}, row 6, field 'verdict': is empty" in capsys.readouterr().err
    assert allocate({"a": 1, "b": 1000}, 10) == {"a": 1, "b": 9}
    assert allocate({"a": 3, "b": 4}, 10) == {"a": 3, "b": 4}


def test_gate_training_data_for_the_train_loop(tmp_path, tokenizer):
    train = write_jsonl(tmp_path / "train.jsonl", clean_records())
    run_dir = tmp_path / "run"
    report = gate_training_data([str(train)], None, run_dir, tokenizer=tokenizer, max_length=256)
    assert report["passed"] is True and report["format"]["length_unit"] == "tokens"
    assert report["config"]["max_length"] == 256 and report["format"]["truncated"] == 0
    assert (run_dir / "data_report.json").is_file() and (run_dir / "data_report.html").is_file()
    assert json.loads((run_dir / "data_report.json").read_text())["passed"] is True


@pytest.mark.parametrize("content,needle", [
    (b"", "the file is empty"), (b"\n\n", "the file is empty"), (b"[1]\n", "line 1: expected a JSON object"),
    (b'{"text": "a"}\n{"text": "\xff"}\n', "line 2: not UTF-8 text"),
])
def test_streaming_reader_matches_read_records(tmp_path, content, needle):
    from alignline.data.quality.stream import stream_records
    from alignline.data.sources import read_records
    from alignline.errors import DataError

    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    errors = []
    for reader in (stream_records, read_records):
        with pytest.raises(DataError) as e:
            list(reader(path))
        errors.append(str(e.value))
    assert needle in errors[0] and needle in errors[1]
    path.write_bytes(b'\xef\xbb\xbf{"text": "a"}\r\n\n{"text": "b"}')
    expected = [("line 1", {"text": "a"}), ("line 3", {"text": "b"})]
    assert list(stream_records(path)) == list(read_records(path)) == expected
