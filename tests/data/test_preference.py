"""Preference data: every record format to exact pairs, exact token masks, one-line errors, and short DPO / RM runs."""

from __future__ import annotations

import pytest

from alignline.cli import main
from alignline.data.formats import Message
from alignline.data.preference import PreferencePair, load_pairs, tokenize_pair
from alignline.data.templates import IGNORE
from alignline.errors import DataError
from support import assistant as _a
from support import system as _sys
from support import user as _u
from support import write_jsonl


def _pairs(tmp_path, *records, name="prefs.jsonl"):
    return load_pairs(str(write_jsonl(tmp_path / name, list(records))))


def _roles(messages):
    return [(m.role, m.content) for m in messages]


# --- Formats to pairs -----------------------------------------------------------------------------------------


def test_trl_strings(tmp_path):
    (pair,) = _pairs(tmp_path, {"prompt": "Q: 2+2? A:", "chosen": " 4", "rejected": " 5"})
    path = str(tmp_path / "prefs.jsonl")
    assert pair == PreferencePair(
        "Q: 2+2? A:", " 4", " 5", weight=1.0, margin=0.0, source=None, origin=f"{path}, line 1"
    )


def test_trl_message_lists_with_system_turn(tmp_path):
    (pair,) = _pairs(
        tmp_path,
        {"prompt": [_sys("Be brief."), _u("2+2?")], "chosen": [_a("4")], "rejected": [_a("five")], "source": "human"},
    )
    assert pair.prompt == [Message("system", "Be brief.", train=False), Message("user", "2+2?", train=False)]
    assert pair.chosen == [Message("assistant", "4", train=True)]
    assert pair.rejected == [Message("assistant", "five", train=True)]
    assert (pair.weight, pair.margin, pair.source) == (1.0, 0.0, "human")


def test_trl_string_prompt_with_chat_answers_becomes_a_user_turn(tmp_path):
    (pair,) = _pairs(tmp_path, {"prompt": "2+2?", "chosen": [_a("4")], "rejected": "5"})
    assert _roles(pair.prompt) == [("user", "2+2?")]
    assert _roles(pair.chosen) == [("assistant", "4")] and _roles(pair.rejected) == [("assistant", "5")]


def test_hh_string_transcripts_split_before_the_last_assistant_turn(tmp_path):
    single, multi = _pairs(
        tmp_path,
        {"chosen": "\n\nHuman: 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"},
        {
            "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4",
            "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: five",
        },
    )
    assert (single.prompt, single.chosen, single.rejected) == ("\n\nHuman: 2+2?\n\nAssistant:", " 4", " 5")
    assert multi.prompt == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant:"
    assert (multi.chosen, multi.rejected) == (" 4", " five")
    assert multi.origin.endswith("prefs.jsonl, line 2")


def test_hh_message_transcripts_split_at_the_last_common_message(tmp_path):
    single, multi = _pairs(
        tmp_path,
        {"chosen": [_u("2+2?"), _a("4")], "rejected": [_u("2+2?"), _a("5")]},
        {
            "chosen": [_sys("S"), _u("hi"), _a("hello"), _u("2+2?"), _a("4")],
            "rejected": [_sys("S"), _u("hi"), _a("hello"), _u("2+2?"), _a("five")],
        },
    )
    assert _roles(single.prompt) == [("user", "2+2?")]
    assert _roles(single.chosen) == [("assistant", "4")] and _roles(single.rejected) == [("assistant", "5")]
    assert _roles(multi.prompt) == [("system", "S"), ("user", "hi"), ("assistant", "hello"), ("user", "2+2?")]
    assert _roles(multi.chosen) == [("assistant", "4")] and _roles(multi.rejected) == [("assistant", "five")]
    assert all(m.train for m in multi.chosen + multi.rejected)


def test_ranking_of_three_expands_best_first_into_three_pairs(tmp_path):
    pairs = _pairs(
        tmp_path,
        {"prompt": "2+2?", "ranking": ["4", "four", "5"], "confidence": 0.75, "margin": 1.5, "source": "synthetic"},
    )
    assert [(p.chosen, p.rejected) for p in pairs] == [("4", "four"), ("4", "5"), ("four", "5")]
    assert all((p.prompt, p.weight, p.margin, p.source) == ("2+2?", 0.75, 1.5, "synthetic") for p in pairs)
    chat = _pairs(
        tmp_path, {"prompt": [_u("2+2?")], "ranking": [[_a("4")], [_a("four")], [_a("5")]]}, name="chat.jsonl"
    )
    assert [(p.chosen[0].content, p.rejected[0].content) for p in chat] == [("4", "four"), ("4", "5"), ("four", "5")]


def test_confidence_weight_and_margin(tmp_path):
    base = {"prompt": "q", "chosen": "a", "rejected": "b"}
    pairs = _pairs(
        tmp_path,
        base,
        {**base, "confidence": 0.6},
        {**base, "confidence": 1},
        {**base, "weight": 2.5, "confidence": 0.1},
        {**base, "margin": -0.5},
        {**base, "margin": 3},
    )
    assert [p.weight for p in pairs] == [1.0, 0.6, 1.0, 2.5, 1.0, 1.0]  # `weight` wins over `confidence`
    assert [p.margin for p in pairs] == [0.0, 0.0, 0.0, 0.0, -0.5, 3.0]
    assert all(isinstance(p.weight, float) and isinstance(p.margin, float) for p in pairs)


# --- Tokenized pairs ------------------------------------------------------------------------------------------

FORMATS = {
    "trl-strings": {
        "prompt": "Question: what is two plus two? Answer:",
        "chosen": " Four.",
        "rejected": " The quick brown fox.",
    },
    "trl-messages": {
        "prompt": [_sys("Be brief."), _u("What is two plus two?")],
        "chosen": [_a("Four.")],
        "rejected": [_a("I can't help with that.")],
    },
    "hh-strings": {
        "chosen": "\n\nHuman: Hello, how are you today?\n\nAssistant: I am fine, thank you.",
        "rejected": "\n\nHuman: Hello, how are you today?\n\nAssistant: No.",
    },
    "hh-messages": {
        "chosen": [_u("Summarize the text."), _a("Label: positive")],
        "rejected": [_u("Summarize the text."), _a("Label: negative, I think")],
    },
    "ranking": {"prompt": [_u("Capital of France?")], "ranking": [[_a("Paris")], [_a("Lyon")]]},
}


def _split(example):
    """(prompt ids, target ids, ids after the last target) of one tokenized side."""
    first = next(i for i, t in enumerate(example.targets) if t != IGNORE) + 1
    last = max(i for i, t in enumerate(example.targets) if t != IGNORE) + 1
    targets = [t for t in example.targets if t != IGNORE]
    assert example.input_ids[first : last + 1] == targets  # one contiguous answer span
    return example.input_ids[:first], targets, example.input_ids[last + 1 :]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_tokenized_pair_shares_the_prompt_and_trains_only_the_answers(tmp_path, tokenizer, fmt):
    (pair,) = _pairs(tmp_path, FORMATS[fmt])
    ex = tokenize_pair(tokenizer, pair, 512)
    c_prompt, c_targets, c_after = _split(ex.chosen)
    r_prompt, r_targets, r_after = _split(ex.rejected)
    assert c_prompt == r_prompt  # the same prompt tokens, exactly
    eos = tokenizer.eos_token
    answers = (
        (pair.chosen, pair.rejected)
        if isinstance(pair.chosen, str)
        else (pair.chosen[0].content, pair.rejected[0].content)
    )
    assert tokenizer.decode(c_targets) == answers[0] + eos
    assert tokenizer.decode(r_targets) == answers[1] + eos
    assert ex.chosen.num_targets == len(c_targets) and ex.rejected.num_targets == len(r_targets)
    assert (ex.weight, ex.margin, ex.ref) == (1.0, 0.0, None)
    if isinstance(pair.prompt, str):
        assert tokenizer.decode(c_prompt) == pair.prompt and c_after == r_after == []
    else:  # the prompt is the chat template's rendering up to the generation prompt; after the turn, context only
        messages = [{"role": m.role, "content": m.content} for m in pair.prompt]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert tokenizer.decode(c_prompt) == rendered
        assert tokenizer.decode(c_after) == tokenizer.decode(r_after) == "\n"


def test_tokenized_pair_keeps_weight_and_margin_and_truncates(tmp_path, tokenizer):
    (pair,) = _pairs(tmp_path, {**FORMATS["trl-messages"], "confidence": 0.8, "margin": 2.0})
    ex = tokenize_pair(tokenizer, pair, 512)
    assert (ex.weight, ex.margin) == (0.8, 2.0)
    prompt_len = len(_split(ex.chosen)[0])
    cut = tokenize_pair(tokenizer, pair, prompt_len + 1)  # room for one answer token on each side
    assert len(cut.chosen.input_ids) == prompt_len + 1 and cut.chosen.truncated > 0
    assert cut.chosen.num_targets == 1 and cut.chosen.targets[-1] == IGNORE
    assert tokenize_pair(tokenizer, pair, prompt_len) is None  # the prompt alone fills max_length: dropped


# Regressions: each of these was a defect found by this file (fixed in src/).


def test_hh_message_prompt_assistant_turns_are_not_targets(tmp_path, tokenizer):
    (pair,) = _pairs(
        tmp_path,
        {
            "chosen": [_u("hi"), _a("hello"), _u("2+2?"), _a("4")],
            "rejected": [_u("hi"), _a("hello"), _u("2+2?"), _a("5")],
        },
    )
    ex = tokenize_pair(tokenizer, pair, 512)
    assert tokenizer.decode([t for t in ex.chosen.targets if t != IGNORE]) == "4" + tokenizer.eos_token


def test_string_prompt_ending_in_space_keeps_the_whole_answer(tmp_path, tokenizer):
    (pair,) = _pairs(tmp_path, {"prompt": "Q: 2+2? A: ", "chosen": "4", "rejected": "five"})
    ex = tokenize_pair(tokenizer, pair, 512)
    decoded = tokenizer.decode([t for t in ex.rejected.targets if t != IGNORE])
    assert decoded.strip() == "five" + tokenizer.eos_token
    assert ex.chosen.input_ids[:-2] == ex.rejected.input_ids[: len(ex.chosen.input_ids) - 2]  # same prompt tokens


def test_ranking_with_chat_prompt_and_string_answers(tmp_path, tokenizer):
    pairs = _pairs(tmp_path, {"prompt": [_u("2+2?")], "ranking": ["4", "5"]})
    assert tokenize_pair(tokenizer, pairs[0], 512) is not None


def test_hh_parquet_loads(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    hh = {"chosen": ["\n\nHuman: hi\n\nAssistant: a"], "rejected": ["\n\nHuman: hi\n\nAssistant: b"]}
    pq.write_table(pa.table(hh), tmp_path / "hh.parquet")
    assert len(load_pairs(str(tmp_path / "hh.parquet"))) == 1


# --- Bad input ------------------------------------------------------------------------------------------------

GOOD = {"prompt": [_u("2+2?")], "chosen": [_a("4")], "rejected": [_a("5")]}
BAD = [
    ("missing-rejected", {"prompt": "q", "chosen": "a"}, "field 'rejected': is missing"),
    (
        "unknown-role",
        {"prompt": [_u("q")], "chosen": [{"role": "bot", "content": "a"}], "rejected": [_a("b")]},
        "field 'chosen[0].role': unknown role 'bot'",
    ),
    ("confidence-text", {**GOOD, "confidence": "high"}, "field 'confidence': must be a finite number, got 'high'"),
    ("ranking-of-one", {"prompt": "q", "ranking": ["a"]}, "field 'ranking': expected a list of at least two responses"),
    (
        "hh-strings-no-prefix",
        {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"},
        "field 'chosen': HH-style transcripts must share the prompt",
    ),
    (
        "hh-messages-no-prefix",
        {"chosen": [_u("a"), _a("b")], "rejected": [_u("c"), _a("d")]},
        "field 'chosen': chosen and rejected transcripts share no prompt",
    ),
]


@pytest.mark.parametrize("name, record, message", BAD, ids=[b[0] for b in BAD])
def test_bad_record_names_file_line_and_field(tmp_path, name, record, message):
    path = write_jsonl(tmp_path / f"{name}.jsonl", [GOOD, GOOD, record])
    with pytest.raises(DataError) as err:
        load_pairs(str(path))
    assert str(err.value).startswith(f"{path}, line 3, field '")
    assert message in str(err.value)
    assert err.value.record == "line 3" and err.value.path == str(path)


@pytest.mark.parametrize("name, record, message", BAD, ids=[b[0] for b in BAD])
def test_cli_dpo_bad_record_exits_2_with_one_line(tmp_path, tiny_model_dir, capsys, name, record, message):
    path = write_jsonl(tmp_path / f"{name}.jsonl", [GOOD, record])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: sft\n")
    code = main(
        [
            "train",
            "--quiet",
            str(recipe),
            "method=dpo",
            f"model={tiny_model_dir}",
            f"data.train={path}",
            f"output_dir={tmp_path / 'run'}",
            "tensorboard=false",
            "data_gates=false",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("alignline: error: ") and f"{path}, line 2, field '" in err[0] and message in err[0]
    assert not (tmp_path / "run").exists()
