"""Issue 17, a top-level `system` in SFT records: a record that carries a system is a conversation. Each on a record of
its published shape (invented content, field names and nesting kept), with the tokens it trains asserted."""

from __future__ import annotations

import pytest

from alignline.cli import main
from alignline.data.dataset import load_samples
from alignline.data.formats import Conversation, PlainText
from alignline.data.show import trained_text
from alignline.data.templates import tokenize_sample
from alignline.errors import DataError
from support import assistant as _a
from support import system as _s
from support import user as _u
from support import write_jsonl

SYS = "<|im_start|>system\n{}<|im_end|>\n"
TURN = "<|im_start|>{}\n{}<|im_end|>\n"
DEFAULT_SYS = SYS.format("You are a helpful assistant.")  # the tiny template's own, where a record has none


def _load(tmp_path, records):
    return load_samples(str(write_jsonl(tmp_path / "d.jsonl", records)))


def _texts(tokenizer, sample):
    """(everything the model reads, the tokens it trains) of one sample, as SFT tokenizes it."""
    ids, mask = tokenize_sample(tokenizer, sample)
    return tokenizer.decode(ids), trained_text(tokenizer, ids, mask)


def test_prompt_completion_strings_with_system_are_chat(tmp_path, tokenizer):
    """axolotl user-defined / GRPO-style {system, prompt, completion}, strings: [system, user, assistant] through the
    template, the assistant turn trained; before, the system was dropped and the pair trained as raw text."""
    (s,) = _load(tmp_path, [{"system": "You are terse.", "prompt": "Name a color.", "completion": "Blue."}])
    assert isinstance(s, Conversation)
    assert [(m.role, m.content, m.train) for m in s.messages] == [
        ("system", "You are terse.", False),
        ("user", "Name a color.", False),
        ("assistant", "Blue.", True),
    ]
    full, trained = _texts(tokenizer, s)
    assert full == SYS.format("You are terse.") + TURN.format("user", "Name a color.") + TURN.format(
        "assistant", "Blue."
    )
    assert trained == "Blue.<|im_end|>"


def test_empty_system_is_still_chat_without_a_system_turn(tmp_path, tokenizer):
    """An empty `system` (a column some records leave blank) adds no turn, as axolotl renders it, but the record is
    chat all the same: the template's default system shows, the completion is trained."""
    (s,) = _load(tmp_path, [{"system": "", "prompt": "Name a color.", "completion": "Blue."}])
    assert [(m.role, m.content) for m in s.messages] == [("user", "Name a color."), ("assistant", "Blue.")]
    full, trained = _texts(tokenizer, s)
    assert full == DEFAULT_SYS + TURN.format("user", "Name a color.") + TURN.format("assistant", "Blue.")
    assert trained == "Blue.<|im_end|>"


def test_prompt_completion_without_system_stays_raw_text(tmp_path, tokenizer):
    (s,) = _load(tmp_path, [{"prompt": "2+2=", "completion": "4"}])
    assert isinstance(s, PlainText)
    full, trained = _texts(tokenizer, s)
    assert "<|im_start|>" not in full and trained.startswith("4")


def test_message_list_prompt_with_system_gets_it_first(tmp_path, tokenizer):
    rec = {"system": "Answer in French.", "prompt": [_u("Hello?")], "completion": [_a("Bonjour.")]}
    (s,) = _load(tmp_path, [rec])
    assert [m.role for m in s.messages] == ["system", "user", "assistant"]
    full, trained = _texts(tokenizer, s)
    assert full.startswith(SYS.format("Answer in French.") + TURN.format("user", "Hello?"))
    assert trained == "Bonjour.<|im_end|>"


def test_system_repeating_the_prompts_own_is_kept_once(tmp_path, tokenizer):
    rec = {"system": "Be brief.", "prompt": [_s("Be brief."), _u("Hi")], "completion": "Hello."}
    (s,) = _load(tmp_path, [rec])
    full, trained = _texts(tokenizer, s)
    assert full.count("Be brief.") == 1 and trained == "Hello.<|im_end|>"


@pytest.mark.parametrize(
    "rec",
    [
        {"system": "Be brief.", "prompt": [_s("Be long."), _u("Hi")], "completion": "Hello."},
        {"system": "Be brief.", "messages": [_s("Be long."), _u("Hi"), _a("Hello.")]},
    ],
)
def test_system_contradicting_the_messages_is_refused(tmp_path, rec):
    with pytest.raises(DataError, match=r"line 1.*field 'system'.*differs from the prompt's own system message"):
        _load(tmp_path, [rec])


def test_system_that_is_not_a_string_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"line 1.*field 'system'.*expected a string, got list"):
        _load(tmp_path, [{"system": ["Be brief."], "prompt": "Hi", "completion": "Hello."}])


def test_messages_with_a_top_level_system(tmp_path, tokenizer):
    """A `system` column beside OpenAI `messages` (as HF datasets with a system column carry it): the first turn."""
    (s,) = _load(tmp_path, [{"system": "You are a pirate.", "messages": [_u("Hi"), _a("Arr.")]}])
    full, trained = _texts(tokenizer, s)
    assert full == SYS.format("You are a pirate.") + TURN.format("user", "Hi") + TURN.format("assistant", "Arr.")
    assert trained == "Arr.<|im_end|>"


def test_llamafactory_alpaca_with_system(tmp_path, tokenizer):
    """LLaMA-Factory's alpaca format: {instruction, input, output, system, history}; the system opens the chat."""
    rec = {
        "instruction": "Translate to English.",
        "input": "bonjour",
        "output": "hello",
        "system": "You are a translator.",
        "history": [["Translate to English: oui", "yes"]],
    }
    (s,) = _load(tmp_path, [rec])
    full, trained = _texts(tokenizer, s)
    assert full == (
        SYS.format("You are a translator.")
        + TURN.format("user", "Translate to English: oui")
        + TURN.format("assistant", "yes")
        + TURN.format("user", "Translate to English.\n\nbonjour")
        + TURN.format("assistant", "hello")
    )
    assert trained == "yes<|im_end|>hello<|im_end|>"  # history responses train, as LLaMA-Factory does


def test_llamafactory_sharegpt_with_system(tmp_path, tokenizer):
    """LLaMA-Factory's sharegpt format: {conversations: [{from, value}], system}."""
    rec = {
        "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Ahoy."}],
        "system": "You are a pirate.",
    }
    (s,) = _load(tmp_path, [rec])
    full, trained = _texts(tokenizer, s)
    assert full == SYS.format("You are a pirate.") + TURN.format("user", "Hi") + TURN.format("assistant", "Ahoy.")
    assert trained == "Ahoy.<|im_end|>"


def test_cli_show_reads_the_system_record_as_chat(tmp_path, tiny_model_dir, capsys):
    path = str(
        write_jsonl(
            tmp_path / "d.jsonl", [{"system": "You are terse.", "prompt": "Name a color.", "completion": "Blue."}]
        )
    )
    assert main(["data", "show", path, "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert "sft, chat" in out and "system\nYou are terse." in out and "[[Blue.<|im_end|>]]" in out


def test_data_gates_read_a_grpo_prompts_system(tmp_path):
    """The gates see an online method's prompt as it is generated from: the system turn's text is scanned too."""
    from alignline.data.quality.items import iter_items

    path = write_jsonl(tmp_path / "p.jsonl", [{"system": "Reply to ops@example.com.", "prompt": "2+2?", "answer": "4"}])
    (item,) = iter_items(str(path))
    assert item.kind == "prompt" and [m.role for m in item.messages] == ["system", "user"]
    assert "ops@example.com" in item.text and item.prompt == "2+2?"
