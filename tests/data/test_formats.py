"""Every supported format normalizes as expected; every bad input gets one line naming file, record, field."""

import json

import pytest

from alignline.cli import main
from alignline.data.dataset import load_samples, mix
from alignline.data.formats import Conversation, PlainText
from alignline.errors import DataError
from support import write_jsonl


def _one(tmp_path, record, name="d.jsonl"):
    return load_samples(str(write_jsonl(tmp_path / name, [record])))[0]


def test_messages_with_weights(tmp_path):
    s = _one(
        tmp_path,
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b", "weight": 0},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d"},
            ]
        },
    )
    assert isinstance(s, Conversation) and [m.train for m in s.messages] == [True, False, True, True]


def test_prompt_completion_strings_are_plain_text(tmp_path):
    s = _one(tmp_path, {"prompt": "2+2=", "completion": "4"})
    assert s == PlainText("2+2=", "4", origin=s.origin)


def test_prompt_completion_messages(tmp_path):
    s = _one(
        tmp_path,
        {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "hello"}]},
    )
    assert [(m.role, m.train) for m in s.messages] == [("user", False), ("assistant", True)]


def test_alpaca_and_sharegpt(tmp_path):
    a = _one(tmp_path, {"instruction": "Translate", "input": "bonjour", "output": "hello"})
    assert [(m.role, m.content) for m in a.messages] == [("user", "Translate\n\nbonjour"), ("assistant", "hello")]
    s = _one(
        tmp_path,
        {
            "conversations": [
                {"from": "system", "value": "S"},
                {"from": "human", "value": "Q"},
                {"from": "gpt", "value": "A"},
            ]
        },
        "s.jsonl",
    )
    assert [m.role for m in s.messages] == ["system", "user", "assistant"]


def test_text_is_cpt(tmp_path):
    assert _one(tmp_path, {"text": "domain prose"}).completion == "domain prose"


def test_json_csv_parquet_and_datasets_dir(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps([{"text": "a"}, {"text": "b"}]))
    assert len(load_samples(str(tmp_path / "d.json"))) == 2
    (tmp_path / "d.csv").write_text('instruction,input,output\nSay hi,,hi\n"Add, please",1 2,3\n')
    rows = load_samples(str(tmp_path / "d.csv"))
    assert rows[1].messages[0].content == "Add, please\n\n1 2"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"prompt": ["p"], "completion": ["c"]}), tmp_path / "d.parquet")
    assert load_samples(str(tmp_path / "d.parquet"))[0].completion == "c"
    from datasets import Dataset

    Dataset.from_list([{"text": "x"}, {"text": "y"}]).save_to_disk(str(tmp_path / "ds"))
    assert [s.completion for s in load_samples(str(tmp_path / "ds"))] == ["x", "y"]


def test_mix_by_weight():
    import random

    a = [PlainText("", f"a{i}", origin="a") for i in range(10)]
    b = [PlainText("", f"b{i}", origin="b") for i in range(10)]
    mixed = mix([a, b], [0.8, 0.2], 20, random.Random(0))
    assert sum(s.origin == "a" for s in mixed) == 16 and sum(s.origin == "b" for s in mixed) == 4
    assert len({s.completion for s in mixed if s.origin == "a"}) == 10  # upsampled: every record used


BAD = [
    ("malformed.jsonl", b'{"text": "ok"}\n{"text": "broken\n', "malformed.jsonl, line 2: malformed JSON"),
    (
        "missing.jsonl",
        b'{"messages": [{"role": "user"}]}\n',
        "missing.jsonl, line 1, field 'messages[0].content': is missing",
    ),
    (
        "role.jsonl",
        b'{"messages": [{"role": "wizard", "content": "x"}]}\n',
        "role.jsonl, line 1, field 'messages[0].role': unknown role 'wizard'",
    ),
    ("empty.jsonl", b"", "empty.jsonl: the file is empty"),
    ("latin1.jsonl", '{"text": "caf\u00e9"}\n'.encode("latin-1"), "latin1.jsonl, line 1: not UTF-8 text (byte 0xe9"),
    (
        "columns.csv",
        b"question,reply\nq,r\n",
        "columns.csv, row 1: columns ['question', 'reply'] match no known format",
    ),
    ("nofields.jsonl", b'{"foo": 1}\n', "nofields.jsonl, line 1: no known format"),
    (
        "noassistant.jsonl",
        b'{"messages": [{"role": "user", "content": "x"}]}\n',
        "noassistant.jsonl, line 1, field 'messages': has no assistant message",
    ),
    (
        "weight.jsonl",
        b'{"messages": [{"role": "assistant", "content": "x", "weight": 2}]}\n',
        "weight.jsonl, line 1, field 'messages[0].weight': must be 0 or 1",
    ),
    (
        "sharegpt.jsonl",
        b'{"conversations": [{"from": "alien", "value": "x"}]}\n',
        "sharegpt.jsonl, line 1, field 'conversations[0].from': unknown speaker 'alien'",
    ),
]


@pytest.mark.parametrize("name, content, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_file_record_field(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as err:
        load_samples(str(tmp_path / name))
    assert message in str(err.value)


@pytest.mark.parametrize("name, content, message", BAD[:6], ids=[b[0] for b in BAD[:6]])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, tiny_model_dir, capsys, name, content, message):
    (tmp_path / name).write_bytes(content)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: sft\n")
    code = main(
        [
            "train",
            "--quiet",
            str(recipe),
            f"model={tiny_model_dir}",
            f"data.train={tmp_path / name}",
            f"output_dir={tmp_path / 'run'}",
            "tensorboard=false",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "run").exists()  # nothing half-written
