"""The preference formats users already have, each on a record of its exact shape (invented content),
and exactly which tokens each side trains."""

from __future__ import annotations

import pytest

from alignline.data.preference import load_pairs, tokenize_pair
from alignline.errors import DataError
from support import assistant as _a
from support import user as _u
from support import write_jsonl
from support.pairs import message_roles as _roles
from support.pairs import pair_sides as _sides

# HuggingFaceH4/ultrafeedback_binarized: prompt string; chosen/rejected whole conversations repeating it.
ULTRAFEEDBACK = {
    "prompt": "What is two plus two?",
    "prompt_id": "ab12",
    "chosen": [_u("What is two plus two?"), _a("Four.")],
    "rejected": [_u("What is two plus two?"), _a("Five.")],
    "messages": [_u("What is two plus two?"), _a("Four.")],
    "score_chosen": 8.5,
    "score_rejected": 3.0,
}


def test_ultrafeedback_user_turn_appears_once(tmp_path, tokenizer):
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "uf.jsonl", [ULTRAFEEDBACK])))
    assert _roles(pair.prompt) == [("user", "What is two plus two?")]
    assert _roles(pair.chosen) == [("assistant", "Four.")] and _roles(pair.rejected) == [("assistant", "Five.")]
    chosen, chosen_trained, rejected, rejected_trained = _sides(tokenizer, pair)
    assert chosen.count("What is two plus two?") == 1 and rejected.count("What is two plus two?") == 1
    assert (chosen_trained, rejected_trained) == ("Four.<|im_end|>", "Five.<|im_end|>")


def test_repeated_prompt_with_system_turn_and_message_list_prompt(tmp_path, tokenizer):
    sys = {"role": "system", "content": "Be brief."}
    rec = {"prompt": "Hi", "chosen": [sys, _u("Hi"), _a("Hello.")], "rejected": [sys, _u("Hi"), _a("Go away.")]}
    rec2 = {"prompt": [sys, _u("Hi")], "chosen": [sys, _u("Hi"), _a("Hello.")], "rejected": [_a("Go away.")]}
    for pair in load_pairs(str(write_jsonl(tmp_path / "s.jsonl", [rec, rec2]))):
        assert _roles(pair.prompt) == [("system", "Be brief."), ("user", "Hi")]
        assert [m.train for m in pair.prompt] == [False, False]
        full, trained, _, rejected_trained = _sides(tokenizer, pair)
        assert full.count("Hi<|im_end|>") == 1 and (trained, rejected_trained) == (
            "Hello.<|im_end|>",
            "Go away.<|im_end|>",
        )


def test_openai_preference_format(tmp_path, tokenizer):
    rec = {
        "input": {
            "messages": [_u("Capital of France?")],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
            "parallel_tool_calls": True,
        },
        "preferred_output": [_a("Paris.")],
        "non_preferred_output": [_a("Lyon.")],
    }
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "oa.jsonl", [rec])))
    assert _roles(pair.prompt) == [("user", "Capital of France?")] and pair.tools[0]["function"]["name"] == "lookup"
    chosen, chosen_trained, _, rejected_trained = _sides(tokenizer, pair)
    assert '"name": "lookup"' in chosen  # the fallback tools block: the tiny template has no tool support
    assert (chosen_trained, rejected_trained) == ("Paris.<|im_end|>", "Lyon.<|im_end|>")


def test_openai_preferred_tool_call_is_trained(tmp_path, tokenizer):
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "France"}'}}
    rec = {
        "input": {"messages": [_u("Capital of France?")]},
        "preferred_output": [{"role": "assistant", "content": None, "tool_calls": [call]}],
        "non_preferred_output": [_a("Lyon.")],
    }
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "oa.jsonl", [rec])))
    _, chosen_trained, _, _ = _sides(tokenizer, pair)
    assert chosen_trained == '<tool_call>\n{"name": "lookup", "arguments": {"q": "France"}}\n</tool_call><|im_end|>'


def test_llamafactory_sharegpt_preference(tmp_path, tokenizer):
    rec = {
        "conversations": [{"from": "human", "value": "Name a colour."}],
        "chosen": {"from": "gpt", "value": "Blue."},
        "rejected": {"from": "gpt", "value": "Seven."},
        "system": "Answer in one word.",
    }
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "lf.jsonl", [rec])))
    assert _roles(pair.prompt) == [("system", "Answer in one word."), ("user", "Name a colour.")]
    chosen, chosen_trained, _, rejected_trained = _sides(tokenizer, pair)
    assert chosen.startswith("<|im_start|>system\nAnswer in one word.<|im_end|>\n<|im_start|>user\nName a colour.")
    assert (chosen_trained, rejected_trained) == ("Blue.<|im_end|>", "Seven.<|im_end|>")
    ex = tokenize_pair(tokenizer, pair, 512)
    assert tokenizer.decode([t for t in ex.chosen.targets if t != -100]) == "Blue.<|im_end|>"


GOOD = {"prompt": "q", "chosen": "a", "rejected": "b"}


@pytest.mark.parametrize(
    "records, fld, needle",
    [
        ([GOOD, {**GOOD, "confidence": 1.5}], "confidence", "must be in [0, 1], got 1.5"),
        ([GOOD, {"prompt": "q", "ranking": ["a", "b", "a"]}], "ranking[2]", "identical to ranking[0]"),
        ([{"prompt": "q", "completion": "a", "label": False}], "label", "use `method: kto`"),
        ([{**GOOD, "weight": 0}, {**GOOD, "weight": 0.0}], "weight", "every pair has weight 0 (2 pairs)"),
        (
            [{"input": {"messages": [_u("q")]}, "preferred_output": [_a("a")], "non_preferred_output": [_a("a")]}],
            "non_preferred_output",
            "identical",
        ),
    ],
)
def test_bad_preference_records(tmp_path, records, fld, needle):
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(DataError) as e:
        load_pairs(str(path))
    assert f"field '{fld}'" in str(e.value) and needle in str(e.value)


def test_weight_may_exceed_one(tmp_path):
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "w.jsonl", [{**GOOD, "weight": 2.5}])))
    assert pair.weight == 2.5
