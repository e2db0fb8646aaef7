"""Reading what users have: gzip, splits, column mapping, hub ids, message trees, Alpaca history, and the
refusal of KTO's unpaired feedback outside `method: kto`."""

from __future__ import annotations

import gzip
import json

import pytest

from alignline.config import load_config
from alignline.data.dataset import load_samples
from alignline.data.preference import load_pairs
from alignline.data.show import trained_text
from alignline.data.sources import read_records
from alignline.data.templates import tokenize_sample
from alignline.errors import ConfigError, DataError
from support import write_jsonl


def _trained(tokenizer, sample):
    return trained_text(tokenizer, *tokenize_sample(tokenizer, sample))


def test_jsonl_gz_and_json_gz(tmp_path):
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "a"}) + "\n\n" + json.dumps({"text": "b"}) + "\n")
    assert [(loc, r["text"]) for loc, r in read_records(tmp_path / "d.jsonl.gz")] == [("line 1", "a"), ("line 3", "b")]
    (tmp_path / "d.json.gz").write_bytes(gzip.compress(json.dumps([{"text": "c"}]).encode()))
    assert [s.completion for s in load_samples(str(tmp_path / "d.json.gz"))] == ["c"]
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="bad.jsonl.gz: not a readable gzip file"):
        list(read_records(tmp_path / "bad.jsonl.gz"))


def test_datasets_split(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict(
        {
            "train_prefs": Dataset.from_list([{"prompt": "q", "chosen": "a", "rejected": "b"}]),
            "test_prefs": Dataset.from_list([{"prompt": "q2", "chosen": "c", "rejected": "d"}]),
        }
    ).save_to_disk(str(tmp_path / "uf"))
    assert [p.prompt for p in load_pairs(str(tmp_path / "uf"), split="test_prefs")] == ["q2"]
    with pytest.raises(DataError) as e:
        load_pairs(str(tmp_path / "uf"))
    assert "no split 'train'" in str(e.value) and "train_prefs, test_prefs" in str(e.value)


def test_config_split_and_columns():
    cfg = load_config(None, ["data.split=train_prefs", "data.columns={prompt: question, completion: answer}"])
    assert cfg.data.split == "train_prefs" and cfg.data.columns == {"prompt": "question", "completion": "answer"}
    with pytest.raises(ConfigError, match="data.columns"):
        load_config(None, ["data.columns=[a]"])


def test_column_mapping_jsonl_and_csv(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "2+2=", "answer": "4"}, {"question": "3+3="}])
    cols = {"prompt": "question", "completion": "answer"}
    with pytest.raises(DataError) as e:
        load_samples(str(path), columns=cols)
    assert str(e.value) == (f"{path}, line 2, field 'answer': is missing (data.columns maps 'completion' to it)")
    (tmp_path / "qa.csv").write_text("question,answer\nHi,Hello\n")
    (s,) = load_samples(str(tmp_path / "qa.csv"), columns=cols)
    assert (s.prompt, s.completion) == ("Hi", "Hello") and _trained(tokenizer, s) == "Hello<|im_end|>"


def test_hub_id_offline_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        load_pairs("HuggingFaceH4/ultrafeedback_binarized", split="train_prefs")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(
        "HuggingFaceH4/ultrafeedback_binarized: no such local file or directory, and loading it "
        "as a hub dataset (split 'train_prefs') failed: "
    )
    with pytest.raises(DataError, match="missing.jsonl: no such file or directory"):
        load_samples("data/missing.jsonl")


def test_alpaca_history_turns_are_trained(tmp_path, tokenizer):
    """LLaMA-Factory trains the history responses too (mask_history is off by default)."""
    rec = {
        "instruction": "And 3+3?",
        "input": "",
        "output": "6",
        "system": "Be brief.",
        "history": [["2+2?", "4"], ["And 1+1?", "2"]],
    }
    (s,) = load_samples(str(write_jsonl(tmp_path / "a.jsonl", [rec])))
    assert [(m.role, m.content) for m in s.messages] == [
        ("system", "Be brief."),
        ("user", "2+2?"),
        ("assistant", "4"),
        ("user", "And 1+1?"),
        ("assistant", "2"),
        ("user", "And 3+3?"),
        ("assistant", "6"),
    ]
    assert _trained(tokenizer, s) == "4<|im_end|>2<|im_end|>6<|im_end|>"
    with pytest.raises(DataError, match=r"field 'history\[0\]': expected an \[instruction, response\] pair"):
        load_samples(str(write_jsonl(tmp_path / "b.jsonl", [{**rec, "history": [["only"]]}])))


OASST = [  # OpenAssistant's flat export: one record per message, threads by parent_id
    {"message_id": "m1", "parent_id": None, "role": "prompter", "text": "Name a fruit.", "lang": "en"},
    {"message_id": "m2", "parent_id": "m1", "role": "assistant", "text": "Apple.", "rank": 0},
    {"message_id": "m3", "parent_id": "m1", "role": "assistant", "text": "Pear.", "rank": 1},
    {"message_id": "m4", "parent_id": "m2", "role": "prompter", "text": "Another?"},
    {"message_id": "m5", "parent_id": "m4", "role": "assistant", "text": "Plum."},
    {"message_id": "m6", "parent_id": "m4", "role": "assistant", "text": "Fig.", "deleted": True},
]


def test_message_tree_becomes_threads(tmp_path, tokenizer):
    samples = load_samples(str(write_jsonl(tmp_path / "oasst.jsonl", OASST)))
    assert [[(m.role, m.content, m.train) for m in s.messages] for s in samples] == [
        [
            ("user", "Name a fruit.", True),
            ("assistant", "Apple.", True),
            ("user", "Another?", True),
            ("assistant", "Plum.", True),
        ],
        [("user", "Name a fruit.", True), ("assistant", "Pear.", True)],
    ]
    assert samples[0].origin.endswith("line 5 (thread ending here)")
    assert [_trained(tokenizer, s) for s in samples] == ["Apple.<|im_end|>Plum.<|im_end|>", "Pear.<|im_end|>"]
    # a second reply under m2's branch trains only what is new
    more = OASST + [{"message_id": "m7", "parent_id": "m4", "role": "assistant", "text": "Kiwi."}]
    samples = load_samples(str(write_jsonl(tmp_path / "more.jsonl", more)))
    assert [_trained(tokenizer, s) for s in samples] == [
        "Apple.<|im_end|>Plum.<|im_end|>",
        "Kiwi.<|im_end|>",
        "Pear.<|im_end|>",
    ]


def test_message_tree_errors(tmp_path):
    orphan = OASST[:2] + [{"message_id": "x", "parent_id": "nope", "role": "assistant", "text": "t"}]
    with pytest.raises(DataError, match=r"line 3, field 'parent_id': parent_id 'nope' is not a message_id"):
        load_samples(str(write_jsonl(tmp_path / "o.jsonl", orphan)))
    cycle = OASST[:2] + [
        {"message_id": "a", "parent_id": "b", "role": "prompter", "text": "t"},
        {"message_id": "b", "parent_id": "a", "role": "assistant", "text": "t"},
    ]
    with pytest.raises(DataError, match="never reaches a root"):
        load_samples(str(write_jsonl(tmp_path / "c.jsonl", cycle)))


@pytest.mark.parametrize("label", [True, False, "false"])
def test_unpaired_feedback_is_refused_outside_kto(tmp_path, label):
    path = write_jsonl(tmp_path / "kto.jsonl", [{"prompt": "q", "completion": "a", "label": label}])
    with pytest.raises(DataError) as e:
        load_samples(str(path))
    assert str(e.value).startswith(f"{path}, line 1, field 'label': unpaired feedback")
    assert "use `method: kto`" in str(e.value)


def test_a_category_label_is_not_feedback(tmp_path):
    (s,) = load_samples(str(write_jsonl(tmp_path / "c.jsonl", [{"prompt": "q", "completion": "a", "label": "math"}])))
    assert s.completion == "a"


def test_recipe_split_and_columns_reach_both_readers(tmp_path, tokenizer):
    """`data.split` / `data.columns` from the recipe are what prepare_data (SFT) and prepare_pairs read."""
    from datasets import Dataset, DatasetDict

    from alignline.data.dataset import prepare_data
    from alignline.methods.pairs import prepare_pairs

    DatasetDict(
        {"train_sft": Dataset.from_list([{"q": f"What is {i}?", "a": f"Answer {i}."} for i in range(4)])}
    ).save_to_disk(str(tmp_path / "sft"))
    cfg = load_config(
        None, [f"data.train={tmp_path / 'sft'}", "data.split=train_sft", "data.columns={prompt: q, completion: a}"]
    )
    train, _, report = prepare_data(cfg.data, tokenizer, 128, 0, None)
    assert report.train_samples == 4
    assert tokenizer.decode([t for t in train[0].targets if t != -100]).startswith("Answer ")
    DatasetDict(
        {
            "train_prefs": Dataset.from_list(
                [
                    {
                        "prompt": "Hi",
                        "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
                        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No."}],
                    }
                ]
            )
        }
    ).save_to_disk(str(tmp_path / "uf"))
    cfg = load_config(None, ["method=dpo", f"data.train={tmp_path / 'uf'}", "data.split=train_prefs"])
    (ex,) = prepare_pairs(cfg, tokenizer).train
    assert tokenizer.decode(ex.chosen.input_ids).count("Hi<|im_end|>") == 1
    assert tokenizer.decode([t for t in ex.rejected.targets if t != -100]) == "No.<|im_end|>"
