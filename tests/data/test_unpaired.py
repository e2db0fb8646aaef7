"""Unpaired feedback records: validation with one-line errors, tokenization identical to a preference pair's side,
and the mismatched (KL) sequences."""

from __future__ import annotations

import pytest

from alignline.data.preference import to_pairs, tokenize_pair
from alignline.data.templates import IGNORE
from alignline.data.unpaired import kl_examples, load_unpaired, mismatched, to_unpaired, tokenize_unpaired
from alignline.errors import DataError
from support import write_jsonl

CHAT = {
    "prompt": [{"role": "user", "content": "What is two plus two?"}],
    "completion": [{"role": "assistant", "content": "Four."}],
    "label": True,
}


def test_accepts_chat_and_text_records_with_weights():
    rec = to_unpaired(CHAT, "f.jsonl", "line 1")
    assert rec.label is True and rec.weight == 1.0 and rec.origin == "f.jsonl, line 1"
    assert [m.role for m in rec.prompt] == ["user"] and rec.prompt[0].train is False
    text = to_unpaired({"prompt": "Q: 2+2?", "completion": " 4", "label": False, "confidence": 0.6}, "f.csv", "row 2")
    assert (text.prompt, text.completion, text.label, text.weight) == ("Q: 2+2?", " 4", False, 0.6)
    # a string completion to a chat prompt becomes an assistant turn; CSV cells spell booleans as text
    mixed = to_unpaired(
        {"prompt": CHAT["prompt"], "completion": "Four.", "label": "FALSE", "weight": "2"}, "f.csv", "row 3"
    )
    assert mixed.completion[0].role == "assistant" and mixed.label is False and mixed.weight == 2.0


@pytest.mark.parametrize(
    "record,message",
    [
        (
            {"prompt": "p", "completion": "c"},
            "f.jsonl, line 4, field 'label': is missing (true: a desirable completion, false: an undesirable one)",
        ),
        (
            {"prompt": "p", "completion": "c", "label": 1},
            "f.jsonl, line 4, field 'label': expected true or false, got 1",
        ),
        (
            {"prompt": "p", "completion": "c", "label": "yes"},
            "f.jsonl, line 4, field 'label': expected true or false, got 'yes'",
        ),
        (
            {"prompt": "p", "completion": "c", "label": None},
            "f.jsonl, line 4, field 'label': expected true or false, got None",
        ),
        ({"prompt": "p", "label": True}, "f.jsonl, line 4, field 'completion': is missing"),
        ({"completion": "c", "label": True}, "f.jsonl, line 4, field 'prompt': is missing"),
        (
            {"prompt": "p", "completion": [{"role": "user", "content": "hi"}], "label": True},
            "f.jsonl, line 4, field 'completion': has no assistant message",
        ),
        (
            {"prompt": "p", "completion": 3, "label": True},
            "f.jsonl, line 4, field 'completion': expected a non-empty list of {role, content} messages",
        ),
        (
            {"prompt": "p", "completion": "c", "label": True, "weight": -1},
            "f.jsonl, line 4, field 'weight': must be >= 0, got -1.0",
        ),
        (
            {"prompt": "p", "chosen": "a", "rejected": "b", "label": True},
            "f.jsonl, line 4, field 'completion': is missing: this is a chosen/rejected pair",
        ),
    ],
)
def test_bad_records_name_file_record_and_field(record, message):
    with pytest.raises(DataError) as err:
        to_unpaired(record, "f.jsonl", "line 4")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_load_reads_every_record(tmp_path):
    path = write_jsonl(tmp_path / "u.jsonl", [CHAT, {**CHAT, "label": False}])
    assert [r.label for r in load_unpaired(str(path))] == [True, False]
    bad = write_jsonl(tmp_path / "bad.jsonl", [CHAT, {"prompt": "p", "completion": "c"}])
    with pytest.raises(DataError, match=r"bad.jsonl, line 2, field 'label'"):
        load_unpaired(str(bad))


def test_tokenized_exactly_as_a_preference_side(tokenizer):
    """The same prompt and completion give the same ids and targets as the chosen side of a pair."""
    for prompt, answer in ((CHAT["prompt"], CHAT["completion"]), ("Q: what is 2+2?\nA:", " four")):
        pair = to_pairs({"prompt": prompt, "chosen": answer, "rejected": "something else"}, "p.jsonl", "line 1")[0]
        side = tokenize_pair(tokenizer, pair, 512).chosen
        unit = tokenize_unpaired(
            tokenizer, to_unpaired({"prompt": prompt, "completion": answer, "label": True}, "u.jsonl", "line 1"), 512
        )
        assert unit.example.input_ids == side.input_ids and unit.example.targets == side.targets
        first_target = next(t for t, v in enumerate(side.targets) if v != IGNORE)
        assert unit.prompt_len == first_target + 1  # the completion's first token


def test_prompt_filling_max_length_is_dropped(tokenizer):
    rec = to_unpaired({"prompt": "a long prompt " * 20, "completion": " x", "label": True}, "u.jsonl", "line 1")
    assert tokenize_unpaired(tokenizer, rec, 8) is None
    assert tokenize_unpaired(tokenizer, rec, 512).example.truncated == 0


def test_mismatched_sequences_rotate_completions(tokenizer):
    """Raw text: prompt ids P_i then completion ids C_j (+ EOS), only C_j trained; unit i gets unit i-1's
    completion, unit 0 the last one's (TRL's rotation). Truncation keeps the prompt."""
    texts = [("Q one?", " alpha"), ("Question two here?", " beta gamma"), ("Q3", " delta")]
    units = [
        tokenize_unpaired(
            tokenizer, to_unpaired({"prompt": p, "completion": c, "label": i % 2 == 0}, "u.jsonl", f"line {i}"), 512
        )
        for i, (p, c) in enumerate(texts)
    ]

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    eos = tokenizer.eos_token_id
    kl = kl_examples(units, 512)
    for i, (prompt, _) in enumerate(texts):
        completion = ids(texts[i - 1][1]) + [eos]
        assert kl[i].input_ids == ids(prompt) + completion
        assert [t for t in kl[i].targets if t != IGNORE] == completion
        assert kl[i].targets[len(ids(prompt)) - 1] == completion[0]  # predicted by the prompt's last token
    short = mismatched(units[1], units[0], max_length=len(ids(texts[1][0])) + 1)
    assert len(short.input_ids) == len(ids(texts[1][0])) + 1 and short.num_targets == 1
