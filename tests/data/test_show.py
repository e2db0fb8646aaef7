"""`alignline data show`: a record as the model sees it, trained tokens marked, on several formats."""

from __future__ import annotations

import json

import pytest

from alignline.cli import main
from alignline.data.show import segments, show
from support import write_jsonl


def test_segments_decode_runs(tokenizer):
    ids = tokenizer("ab cd", add_special_tokens=False)["input_ids"]
    mask = [False] * (len(ids) - 1) + [True]
    runs = segments(tokenizer, ids, mask)
    assert "".join(t for _, t in runs) == "ab cd" and runs[-1][0] is True


def test_chat_record_in_brackets(tmp_path, tokenizer):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"text": "skip me"},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]},
        ],
    )
    out = show(str(path), tokenizer, number=2)
    assert out == (
        f"# {path}, line 2: sft, chat; trained tokens in [[...]]\n"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n[[Hello.<|im_end|>]]\n\n"
        f"## {out.split('## ')[1].split(' tokens')[0]} tokens, 4 trained"
    )


def test_color_marks(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "2+2=", "completion": "4"}])
    out = show(str(path), tokenizer, color=True)
    assert "2+2=\x1b[32;4m4<|im_end|>\x1b[0m" in out and "prompt_completion" in out


def test_json_tokens_of_a_preference_record_both_sides(tmp_path, tokenizer):
    rec = {
        "conversations": [{"from": "human", "value": "Hi"}],
        "chosen": {"from": "gpt", "value": "Hello."},
        "rejected": {"from": "gpt", "value": "No."},
    }
    path = write_jsonl(tmp_path / "lf.jsonl", [rec])
    rows = [json.loads(line) for line in show(str(path), tokenizer, as_json=True).splitlines()]
    assert set(rows[0]) == {"id", "text", "trained", "side", "pair"}
    for side, answer in (("chosen", "Hello.<|im_end|>"), ("rejected", "No.<|im_end|>")):
        trained = [r["id"] for r in rows if r["side"] == side and r["trained"]]
        assert tokenizer.decode(trained) == answer
    assert "".join(r["text"] for r in rows if r["side"] == "chosen").count("Hi") == 1


def test_kto_record_and_sft_refusal(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "k.jsonl", [{"prompt": "q", "completion": "bad answer", "label": False}])
    out = show(str(path), tokenizer)
    assert "kto, prompt_completion, label false (undesirable)" in out and "q[[bad answer<|im_end|>]]" in out
    from alignline.errors import DataError

    with pytest.raises(DataError, match="field 'label': unpaired feedback"):
        show(str(path), tokenizer, method="sft")


def test_cli_show(tmp_path, tiny_model_dir, capsys):
    path = write_jsonl(
        tmp_path / "uf.jsonl",
        [
            {
                "prompt": "Hi",
                "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
                "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No."}],
            }
        ],
    )
    assert main(["data", "show", str(path), "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert "dpo, 1 preference pair (chat)" in out and "[[Hello.<|im_end|>]]" in out and "[[No.<|im_end|>]]" in out
    assert out.count("user\nHi<|im_end|>") == 2  # once per side, not twice per side
    assert main(["data", "show", str(path), "--model", str(tiny_model_dir), "--record", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"alignline: error: {path}: has 1 record; --record 3 is out of range"]
    assert main(["data", "show", str(tmp_path / "qa.jsonl"), "--model", str(tiny_model_dir)]) == 2
    write_jsonl(tmp_path / "qa.jsonl", [{"q": "2+2=", "a": "4"}])
    assert (
        main(
            [
                "data",
                "show",
                str(tmp_path / "qa.jsonl"),
                "--model",
                str(tiny_model_dir),
                "--column",
                "prompt=q",
                "--column",
                "completion=a",
                "--json",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["text"] for r in rows if r["trained"]] == ["4", "<|im_end|>"]
