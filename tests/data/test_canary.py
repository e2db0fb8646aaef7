"""`alignline data canary`: planted records read back, counts match, deterministic with the seed."""

from __future__ import annotations

import json
import re

import pytest

from alignline.data.canary import (
    canaries_path,
    context_record,
    plant_canaries,
    plant_site,
    planted_context,
    read_canaries,
    run_canary,
)
from alignline.data.formats import to_sample
from alignline.data.sources import read_records
from alignline.errors import DataError, UserError
from support import chat_records, write_jsonl


def test_plant_writes_both_files_and_reads_back(tmp_path):
    src = write_jsonl(tmp_path / "train.jsonl", chat_records(20))
    out = tmp_path / "planted.jsonl"
    summary = run_canary(str(src), str(out), count=5, seed=3)
    assert summary == {
        "records": 20,
        "canaries": 5,
        "out": str(out),
        "canaries_file": str(tmp_path / "planted.canaries.jsonl"),
    }
    records = [r for _, r in read_records(out)]
    canaries = read_canaries(canaries_path(out))
    assert len(records) == 20 and len(canaries) == 5
    assert len({c["secret"] for c in canaries}) == 5 and len({c["id"] for c in canaries}) == 5
    original = [r for _, r in read_records(src)]
    changed = [i for i, (a, b) in enumerate(zip(original, records)) if a != b]
    assert changed == sorted(c["index"] for c in canaries)
    for c in canaries:
        assert re.fullmatch(r"The access code for vault-[0-9a-f]{4} is", c["prefix"])
        assert re.fullmatch(r"\d{4}-[A-Z]{3}-\d{4}", c["secret"])
        assert c["record"] == f"line {c['index'] + 1}"
        msgs = records[c["index"]]["messages"]
        last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        assert c["field"] == f"messages[{last}].content"
        assert msgs[last]["content"].endswith(" " + c["text"]) and c["text"] == f"{c['prefix']} {c['secret']}."
        to_sample(records[c["index"]], str(out), c["record"])  # still a valid training record


def test_deterministic_with_the_seed(tmp_path):
    src = write_jsonl(tmp_path / "train.jsonl", chat_records(30))
    run_canary(str(src), str(tmp_path / "a.jsonl"), 4, seed=7)
    run_canary(str(src), str(tmp_path / "b.jsonl"), 4, seed=7)
    run_canary(str(src), str(tmp_path / "c.jsonl"), 4, seed=8)
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    assert (tmp_path / "a.canaries.jsonl").read_text() == (tmp_path / "b.canaries.jsonl").read_text()
    assert (tmp_path / "a.canaries.jsonl").read_text() != (tmp_path / "c.canaries.jsonl").read_text()


@pytest.mark.parametrize(
    "record, field",
    [
        ({"prompt": "q", "completion": "a"}, "completion"),
        (
            {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]},
            "completion[0].content",
        ),
        ({"prompt": "q", "chosen": "good", "rejected": "bad"}, "chosen"),
        ({"instruction": "q", "output": "a"}, "output"),
        ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}, "conversations[1].value"),
        ({"text": "plain text"}, "text"),
        ({"messages": [{"role": "user", "content": "q"}]}, None),
        ({"other": 1}, None),
    ],
)
def test_plant_site_per_format(record, field):
    site = plant_site(record)
    assert (site[0] if site else None) == field


def test_formats_and_csv_round_trip(tmp_path):
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(6)] + [{"text": "t"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    run_canary(str(src), str(tmp_path / "out.csv"), 3, seed=0)
    back = [r for _, r in read_records(tmp_path / "out.csv")]
    canaries = read_canaries(tmp_path / "out.canaries.jsonl")
    assert len(back) == 7 and sum("vault-" in (r.get("completion") or r.get("text") or "") for r in back) == 3
    assert all(c["secret"] in json.dumps(back) for c in canaries)


def test_errors(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "q"}]}, {"text": "t"}])
    with pytest.raises(DataError, match="2 canaries asked, but only 1 of 2 records have"):
        run_canary(str(src), str(tmp_path / "o.jsonl"), 2)
    with pytest.raises(UserError, match="--count: must be at least 1"):
        run_canary(str(src), str(tmp_path / "o.jsonl"), 0)
    with pytest.raises(UserError, match="is the input file"):
        run_canary(str(src), str(src), 1)
    with pytest.raises(UserError, match="unknown record format '.txt'"):
        run_canary(str(src), str(tmp_path / "o.txt"), 1)
    assert not (tmp_path / "o.jsonl").exists()
    records, canaries = plant_canaries([("line 1", {"text": "x"})], 1)
    assert records[0]["text"].startswith("x The access code")


def test_cli(tmp_path):
    import subprocess
    import sys

    src = write_jsonl(tmp_path / "train.jsonl", chat_records(8))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "alignline.cli",
            "data",
            "canary",
            str(src),
            "--out",
            str(tmp_path / "p.jsonl"),
            "--count",
            "2",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "planted 2 canaries in 8 records" in r.stdout
    assert len(read_canaries(tmp_path / "p.canaries.jsonl")) == 2
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "alignline.cli",
            "data",
            "canary",
            str(src),
            "--out",
            str(tmp_path / "p.jsonl"),
            "--count",
            "99",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "99 canaries asked" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "record, context",
    [
        (
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                    {"role": "user", "content": "q2"},
                ],
                "tools": None,
            },
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                ],
                "tools": None,
            },
        ),
        ({"prompt": "q", "completion": "a", "extra": 1}, {"prompt": "q", "completion": "a"}),
        ({"prompt": "q", "chosen": "good", "rejected": "bad"}, {"prompt": "q", "completion": "good"}),
        ({"chosen": "q good", "rejected": "q bad"}, {"text": "q good"}),
        (
            {"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}], "rejected": []},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}]},
        ),
        ({"instruction": "q", "input": "i", "output": "a"}, {"instruction": "q", "input": "i", "output": "a"}),
        (
            {
                "system": "s",
                "conversations": [
                    {"from": "human", "value": "q"},
                    {"from": "gpt", "value": "a"},
                    {"from": "human", "value": "q2"},
                ],
            },
            {"system": "s", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
        ),
    ],
)
def test_context_record_is_the_record_up_to_the_planted_turn(record, context):
    """What the canaries file keeps as a canary's training context: the record up to the planted turn,
    still a record the readers read (a preference pair as its chosen side)."""
    planted, [canary] = plant_canaries([("line 1", record)], 1)
    expected = context_record(planted[0], canary["field"])
    assert canary["context"] == expected
    assert json.dumps(expected).count(canary["secret"]) == 1
    assert json.loads(json.dumps(expected).replace(" " + canary["text"], "")) == context
    to_sample(expected, "train.jsonl", "line 1")
    assert planted_context(planted[0], canary) == expected
    assert planted_context(record, canary) is None  # the unplanted record holds no canary


def test_training_text_is_what_training_tokenizes():
    """The text a context probe renders is exactly the text training tokenized (decoded back), with the
    tokenizer's own template and with ChatML where it has none (left unset afterwards)."""
    from alignline.data.templates import tokenize_sample, training_text
    from support import tiny_tokenizer

    record = chat_records(2)[1]
    for template in ("own", None):
        tok = tiny_tokenizer()
        if template is None:
            tok.chat_template = None
        sample = to_sample(record, "train.jsonl", "line 2")
        text = training_text(tok, sample)
        assert tok.chat_template is None if template is None else tok.chat_template
        ids, _ = tokenize_sample(tok, sample)
        assert text == tok.decode(ids) and record["messages"][-1]["content"] in text
