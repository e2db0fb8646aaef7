"""Leakage between splits and PII, with known numbers of each."""

from __future__ import annotations

import json
import random

import pytest

from alignline.cli import main
from alignline.data.quality.check import run_checks
from alignline.data.quality.gates import load_gate_config
from alignline.data.quality.pii import find_pii, iban_ok, luhn_ok, redact_text
from support import write_jsonl

VOCAB = [f"{a}{b}" for a in ("da", "fe", "gi", "ho", "ju", "ki", "le", "mo") for b in range(400)]


def chat(user: str, answer: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}], **extra}


def words_(rng, n):
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def leakage_splits():
    rng = random.Random(3)
    train = [chat(words_(rng, 25), words_(rng, 20)) for _ in range(30)]
    boiler = "this handbook paragraph is part of the shared introduction that every page of the manual repeats"
    inner = words_(rng, 30)
    train.append(chat("Please read: " + words_(rng, 10) + " " + inner + " " + words_(rng, 10), "ok " + words_(rng, 15)))
    train.append(chat(boiler + " " + words_(rng, 40), words_(rng, 20)))
    evals = [
        chat(train[0]["messages"][0]["content"], words_(rng, 20)),  # e1 exact prompt, new answer
        chat(train[1]["messages"][0]["content"].upper() + "!!", words_(rng, 20)),  # e2 exact after normalizing
        chat(
            train[2]["messages"][0]["content"] + " extra",  # e3 near copy (prompt+answer)
            train[2]["messages"][1]["content"],
        ),
        chat(inner, words_(rng, 20)),  # e4 13-grams all in train
        chat(boiler + " " + words_(rng, 40), words_(rng, 20)),  # e5 one shared sentence only
    ] + [chat(words_(rng, 25), words_(rng, 20)) for _ in range(5)]  # e6-e10 clean
    return train, evals


def test_leakage_exact_near_ngram(tmp_path):
    train, evals = leakage_splits()
    tr, ev = write_jsonl(tmp_path / "train.jsonl", train), write_jsonl(tmp_path / "eval.jsonl", evals)
    report = run_checks([str(tr)], str(ev), load_gate_config(), progress=False)
    lk = report["leakage"]
    assert (lk["eval_items"], lk["leaked"]) == (10, 4)
    how = {i["eval_id"].rsplit("line ", 1)[1]: i["how"] for i in lk["items"]}
    assert set(how) == {"1", "2", "3", "4"}
    assert "exact" in how["1"] and "exact" in how["2"] and "near" in how["3"] and how["4"] == ["ngram"]
    assert lk["items"][3]["ngram_share"] == 1.0 and lk["items"][3]["train_id"].endswith("line 31")
    gate = next(g for g in report["gates"] if g["name"] == "leaked_eval_items")
    assert gate["value"] == 4 and not gate["passed"]
    # "any shared 13-gram" also flags the shared boilerplate sentence
    (tmp_path / "g.yaml").write_text("leakage:\n  ngram_share: 0\n")
    strict = load_gate_config(tmp_path / "g.yaml")
    assert run_checks([str(tr)], str(ev), strict, progress=False)["leakage"]["leaked"] == 5


def test_no_leak_passes(tmp_path):
    train, evals = leakage_splits()
    tr, ev = write_jsonl(tmp_path / "train.jsonl", train), write_jsonl(tmp_path / "eval.jsonl", evals[5:])
    report = run_checks([str(tr)], str(ev), load_gate_config(), progress=False)
    assert report["leakage"]["leaked"] == 0


PII_RECORDS = [
    chat("Contact jane.doe@example.com or ops@mail.example.org today", "Noted."),  # 2 emails
    chat("My card is 4111 1111 1111 1111, old one 4111 1111 1111 1112", "Thanks."),  # 1 card (1 fails Luhn)
    chat("Wire it to GB82 WEST 1234 5698 7654 32, not GB00 WEST 1234 5698 7654 32", "OK"),  # 1 IBAN (1 bad check)
    chat("Call (415) 555-0132 or +44 20 7946 0958", "Will do, email bob@example.net"),  # 2 phones, 1 email
    chat("Server 192.168.10.4 and 2001:db8:85a3::8a2e:370:7334; version 1.2.3", "Fine."),  # 2 ips
    chat("SSN 123-45-6789 and the invalid 000-12-3456", "Stored."),  # 1 ssn
    chat("export AWS_KEY=AKIAIOSFODNN7EXAMPLE", "Use token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),  # 2 secrets
    chat("Invoice #7522 for $4,353.40 on 2024-03-02 at 8:45 a.m., room 204, 1200 parks", "Done."),  # none
]


def test_luhn_and_iban():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB00WEST12345698765432")


def test_pii_counts_by_type(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", PII_RECORDS)
    report = run_checks([str(path)], None, load_gate_config(), progress=False)
    by = report["pii"]["by_type"]
    counts = {t: (v["matches"], v["records"]) for t, v in by.items()}
    assert counts == {
        "email": (3, 2),
        "phone": (2, 1),
        "card": (1, 1),
        "iban": (1, 1),
        "ip": (2, 1),
        "ssn": (1, 1),
        "secret": (2, 1),
    }
    assert by["email"]["ids"] == [f"{path}, line 1", f"{path}, line 4"]
    assert by["card"]["examples"][0]["match"] == "41" + "*" * 12 + "11"  # masked in the report
    assert report["pii"]["records_with_pii"] == 7 and report["pii"]["sensitive_records"] == 4
    failed = {g["name"] for g in report["gates"] if not g["passed"]}
    assert {"pii_sensitive_records", "pii_record_share"} <= failed


def test_redact_text_and_command(tmp_path, capsys):
    text, matches = redact_text("mail a@b.co, call 415-555-0132")
    assert text == "mail [EMAIL], call [PHONE]" and len(matches) == 2
    path = write_jsonl(tmp_path / "train.jsonl", PII_RECORDS)
    out = tmp_path / "redacted.jsonl"
    assert main(["data", "redact", str(path), "--out", str(out), "--quiet"]) == 0
    assert "redacted 7 of 8 records" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["messages"][0]["content"] == "Contact [EMAIL] or [EMAIL] today"
    assert rows[1]["messages"][0]["content"] == "My card is [CARD], old one 4111 1111 1111 1112"
    assert rows[6]["messages"][1]["content"] == "Use token [SECRET]" and rows[7] == PII_RECORDS[7]
    assert all(r["messages"][0]["role"] == "user" for r in rows)
    report = run_checks([str(out)], None, load_gate_config(), progress=False)
    assert report["pii"]["records_with_pii"] == 0
    # only some types
    out2 = tmp_path / "emails_only.jsonl"
    assert main(["data", "redact", str(path), "--out", str(out2), "--types", "email", "--quiet"]) == 0
    assert "[PHONE]" not in out2.read_text() and "[EMAIL]" in out2.read_text()
    assert main(["data", "redact", str(path), "--out", str(out2), "--types", "fax"]) == 2


@pytest.mark.parametrize(
    "text",
    [
        "version 10.2.3.4.5",
        "call 2024-01-15",
        "ISBN 978-3-16-148410-0",
        "total 1,560.99",
        "order 12345678901",
        "at 12:30:45",
    ],
)
def test_no_false_positives(text):
    assert find_pii(text) == []
