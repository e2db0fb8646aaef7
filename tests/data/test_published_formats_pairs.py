"""Issue 17, published preference and unpaired formats: each on a record of its exact published shape (invented
content, the field names and nesting kept), with the tokens each side trains asserted; stepwise supervision refused
on every reader."""

from __future__ import annotations

import pytest

from alignline.cli import main
from alignline.data.preference import load_pairs
from alignline.data.quality.items import iter_items
from alignline.data.show import show, trained_text
from alignline.data.templates import tokenize_sample
from alignline.data.unpaired import load_unpaired, tokenize_unpaired, unpaired_sample
from alignline.errors import DataError
from support import assistant as _a
from support import user as _u
from support import write_jsonl
from support.pairs import message_roles as _roles
from support.pairs import pair_sides as _sides

SYS = "<|im_start|>system\n{}<|im_end|>\n"
TURN = "<|im_start|>{}\n{}<|im_end|>\n"


def _unpaired_text(tokenizer, record):
    """(full text, trained text) of one unpaired record, as KTO tokenizes it."""
    unit = tokenize_unpaired(tokenizer, record, 4096)
    ids = unit.example.input_ids
    ids_mask = tokenize_sample(tokenizer, unpaired_sample(record))
    assert ids == ids_mask[0]
    return tokenizer.decode(ids), trained_text(tokenizer, *ids_mask)


# ---- a top-level system: the record is a conversation -------------------------------------------------------------


def test_axolotl_prompt_pairs_with_system_is_chat(tmp_path, tokenizer):
    """axolotl `chatml.prompt_pairs`: {system, prompt, chosen, rejected}, strings."""
    rec = {"system": "You are terse.", "prompt": "Name a color.", "chosen": "Blue.", "rejected": "I refuse."}
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "pp.jsonl", [rec])))
    assert _roles(pair.prompt) == [("system", "You are terse."), ("user", "Name a color.")]
    chosen, chosen_trained, rejected, rejected_trained = _sides(tokenizer, pair)
    assert chosen == (
        SYS.format("You are terse.") + TURN.format("user", "Name a color.") + "<|im_start|>assistant\nBlue.<|im_end|>\n"
    )
    assert (chosen_trained, rejected_trained) == ("Blue.<|im_end|>", "I refuse.<|im_end|>")


def test_intel_orca_dpo_pairs_question_and_empty_system(tmp_path, tokenizer):
    """Intel/orca_dpo_pairs and axolotl `chatml.intel`: {system, question, chosen, rejected}; an empty system
    adds no system turn (the template's default shows) but the record is still chat, as axolotl renders it."""
    recs = [
        {"system": "Answer in one word.", "question": "Sky color?", "chosen": "Blue.", "rejected": "Loud."},
        {"system": "", "question": "Grass color?", "chosen": "Green.", "rejected": "Seven."},
    ]
    first, second = load_pairs(str(write_jsonl(tmp_path / "orca.jsonl", recs)))
    assert _roles(first.prompt) == [("system", "Answer in one word."), ("user", "Sky color?")]
    assert _roles(second.prompt) == [("user", "Grass color?")]
    chosen, chosen_trained, _, rejected_trained = _sides(tokenizer, first)
    assert SYS.format("Answer in one word.") + TURN.format("user", "Sky color?") in chosen
    assert (chosen_trained, rejected_trained) == ("Blue.<|im_end|>", "Loud.<|im_end|>")
    chosen, chosen_trained, _, _ = _sides(tokenizer, second)
    assert TURN.format("user", "Grass color?") in chosen and chosen_trained == "Green.<|im_end|>"


def test_top_level_system_with_answers_repeating_the_prompt(tmp_path, tokenizer):
    """ultrafeedback-style answers that repeat the prompt turn, plus a top-level system: the user turn once."""
    rec = {"system": "Be brief.", "prompt": "Hi", "chosen": [_u("Hi"), _a("Hello.")], "rejected": [_u("Hi"), _a("No.")]}
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "s.jsonl", [rec])))
    assert _roles(pair.prompt) == [("system", "Be brief."), ("user", "Hi")]
    chosen, chosen_trained, _, _ = _sides(tokenizer, pair)
    assert chosen.count("Hi<|im_end|>") == 1 and chosen_trained == "Hello.<|im_end|>"


def test_top_level_system_conflicting_with_prompt_system_is_refused(tmp_path):
    rec = {"system": "A", "prompt": [{"role": "system", "content": "B"}, _u("Hi")], "chosen": "x", "rejected": "y"}
    with pytest.raises(DataError, match="line 1, field 'system': differs from the prompt's own system"):
        load_pairs(str(write_jsonl(tmp_path / "c.jsonl", [rec])))


def test_kto_user_defined_and_intel_with_system(tmp_path, tokenizer):
    """axolotl KTO `user_defined` / `chatml.prompt_pairs` {system, prompt, completion, label} and `chatml.intel`
    {system, question, completion, label}."""
    recs = [
        {"system": "Be kind.", "prompt": "Rate my poem.", "completion": "It is lovely.", "label": True},
        {"system": "Be kind.", "question": "Rate my song.", "completion": "Awful.", "label": False},
    ]
    kind, rude = load_unpaired(str(write_jsonl(tmp_path / "kto.jsonl", recs)))
    assert _roles(kind.prompt) == [("system", "Be kind."), ("user", "Rate my poem.")] and kind.label is True
    assert _roles(rude.prompt) == [("system", "Be kind."), ("user", "Rate my song.")] and rude.label is False
    full, trained = _unpaired_text(tokenizer, kind)
    assert full == (
        SYS.format("Be kind.")
        + TURN.format("user", "Rate my poem.")
        + "<|im_start|>assistant\nIt is lovely.<|im_end|>\n"
    )
    assert trained == "It is lovely.<|im_end|>"
    assert _unpaired_text(tokenizer, rude)[1] == "Awful.<|im_end|>"


def test_kto_prompt_under_another_name_names_it(tmp_path):
    rec = {"system": "S", "instruction": "Rate it.", "completion": "Fine.", "label": True}  # axolotl chatml.argilla
    with pytest.raises(DataError, match=r"field 'instruction': .*data.columns: \{prompt: instruction\}"):
        load_unpaired(str(write_jsonl(tmp_path / "k.jsonl", [rec])))


# ---- TRL's implicit prompt ----------------------------------------------------------------------------------------


def test_trl_implicit_prompt_strings(tmp_path, tokenizer):
    """TRL's documented example: the shared prefix is the prompt; its trailing space stays with the answers."""
    rec = {"chosen": "The sky is blue.", "rejected": "The sky is green."}
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "imp.jsonl", [rec])))
    assert (pair.prompt, pair.chosen, pair.rejected) == ("The sky is", " blue.", " green.")
    chosen, chosen_trained, rejected, rejected_trained = _sides(tokenizer, pair)
    assert chosen == "The sky is blue.<|im_end|>" and rejected == "The sky is green.<|im_end|>"
    assert (chosen_trained, rejected_trained) == (" blue.<|im_end|>", " green.<|im_end|>")


def test_trl_implicit_prompt_without_a_space_and_hh_kept(tmp_path):
    recs = [
        {"chosen": "2+2=4", "rejected": "2+2=5"},
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello.", "rejected": "\n\nHuman: Hi\n\nAssistant: Go."},
    ]
    implicit, hh = load_pairs(str(write_jsonl(tmp_path / "imp.jsonl", recs)))
    assert (implicit.prompt, implicit.chosen, implicit.rejected) == ("2+2=", "4", "5")
    assert (hh.prompt, hh.chosen, hh.rejected) == ("\n\nHuman: Hi\n\nAssistant:", " Hello.", " Go.")


@pytest.mark.parametrize(
    "rec, needle",
    [
        ({"chosen": "Yes.", "rejected": "No."}, "share no prefix to read as the prompt; add a `prompt` field"),
        ({"chosen": "The sky is blue", "rejected": "The sky is blue!"}, "one of chosen and rejected is the start"),
        ({"system": "S", "chosen": "The sky is blue.", "rejected": "The sky is red."}, "a top-level system needs"),
        (
            {"input": "Sky?", "chosen": "The sky is blue.", "rejected": "The sky is red."},
            "data.columns: {prompt: input}",
        ),
    ],
)
def test_implicit_prompt_refusals(tmp_path, rec, needle):
    with pytest.raises(DataError, match="line 1, field '(chosen|system|input)'") as e:
        load_pairs(str(write_jsonl(tmp_path / "bad.jsonl", [rec])))
    assert needle in str(e.value) and "\n" not in str(e.value)


# ---- LLaMA-Factory ------------------------------------------------------------------------------------------------


def test_llamafactory_kto_messages_last_assistant_turn_is_judged(tmp_path, tokenizer):
    """data/kto_en_demo.json: {messages: [{content, role}...], label}; earlier answers are context."""
    rec = {
        "messages": [
            {"content": "Name a fruit.", "role": "user"},
            {"content": "Apple.", "role": "assistant"},
            {"content": "Another?", "role": "user"},
            {"content": "Rock.", "role": "assistant"},
        ],
        "label": False,
    }
    (unit,) = load_unpaired(str(write_jsonl(tmp_path / "kto_en_demo.jsonl", [rec])))
    assert unit.label is False and _roles(unit.completion) == [("assistant", "Rock.")]
    assert [m.train for m in unit.prompt] == [False, False, False]
    full, trained = _unpaired_text(tokenizer, unit)
    assert TURN.format("assistant", "Apple.") + TURN.format("user", "Another?") in full
    assert trained == "Rock.<|im_end|>"


def test_llamafactory_kto_sharegpt_with_system(tmp_path, tokenizer):
    rec = {
        "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}],
        "system": "Be warm.",
        "label": True,
    }
    (unit,) = load_unpaired(str(write_jsonl(tmp_path / "kto_sg.jsonl", [rec])))
    full, trained = _unpaired_text(tokenizer, unit)
    assert full.startswith(SYS.format("Be warm.") + TURN.format("user", "Hi")) and trained == "Hello!<|im_end|>"


def test_llamafactory_kto_sharegpt_tools_reach_the_prompt(tmp_path, tokenizer):
    tools = '[{"name": "get_time", "description": "Time now", "parameters": {"type": "object", "properties": {}}}]'
    rec = {
        "conversations": [{"from": "human", "value": "Time?"}, {"from": "gpt", "value": "Noon."}],
        "tools": tools,
        "label": True,
    }
    (unit,) = load_unpaired(str(write_jsonl(tmp_path / "kto_tools.jsonl", [rec])))
    full, trained = _unpaired_text(tokenizer, unit)
    assert '"name": "get_time"' in full and trained == "Noon.<|im_end|>"


def test_llamafactory_kto_last_turn_must_be_the_answer(tmp_path):
    rec = {"messages": [_u("Hi"), _a("Hello."), _u("Bye")], "label": True}
    with pytest.raises(DataError, match=r"field 'messages\[2\]': the last turn must be the assistant answer"):
        load_unpaired(str(write_jsonl(tmp_path / "k.jsonl", [rec])))


def test_llamafactory_alpaca_preference_keeps_input(tmp_path, tokenizer):
    """LLaMA-Factory's Alpaca preference form: instruction + "\\n" + input is the user turn."""
    recs = [
        {"instruction": "Translate to French.", "input": "Good morning", "chosen": "Bonjour", "rejected": "Hola"},
        {
            "instruction": "And now?",
            "input": "",
            "chosen": "Bonsoir",
            "rejected": "Adios",
            "system": "You translate.",
            "history": [["Translate: hi", "Salut"]],
        },
    ]
    plain, full = load_pairs(str(write_jsonl(tmp_path / "alpaca_pref.jsonl", recs)))
    assert _roles(plain.prompt) == [("user", "Translate to French.\nGood morning")]
    chosen, chosen_trained, _, rejected_trained = _sides(tokenizer, plain)
    assert TURN.format("user", "Translate to French.\nGood morning") in chosen
    assert (chosen_trained, rejected_trained) == ("Bonjour<|im_end|>", "Hola<|im_end|>")
    assert _roles(full.prompt) == [
        ("system", "You translate."),
        ("user", "Translate: hi"),
        ("assistant", "Salut"),
        ("user", "And now?"),
    ]
    _, chosen_trained, _, _ = _sides(tokenizer, full)
    assert chosen_trained == "Bonsoir<|im_end|>"  # the history's answer is context, not trained


def _v1(role, text, weight):
    return {"role": role, "content": [{"type": "text", "value": text}], "loss_weight": weight}


def test_llamafactory_v1_chosen_and_rejected_messages(tmp_path, tokenizer):
    """v1 `DPOSample`: chosen_messages / rejected_messages, content parts {type: text, value}, loss_weight."""
    rec = {
        "chosen_messages": [_v1("system", "Be exact.", 0.0), _v1("user", "3*3?", 0.0), _v1("assistant", "9", 1.0)],
        "rejected_messages": [_v1("system", "Be exact.", 0.0), _v1("user", "3*3?", 0.0), _v1("assistant", "6", 1.0)],
    }
    (pair,) = load_pairs(str(write_jsonl(tmp_path / "v1.jsonl", [rec])))
    assert _roles(pair.prompt) == [("system", "Be exact."), ("user", "3*3?")]
    chosen, chosen_trained, _, rejected_trained = _sides(tokenizer, pair)
    assert chosen.startswith(SYS.format("Be exact.") + TURN.format("user", "3*3?"))
    assert (chosen_trained, rejected_trained) == ("9<|im_end|>", "6<|im_end|>")


@pytest.mark.parametrize(
    "bad, needle",
    [
        ({"role": "assistant", "content": [{"type": "image_url", "value": "x.png"}]}, "only text parts can be trained"),
        ({"role": "assistant", "content": "9", "loss_weight": 0.5}, "must be 0.0 or 1.0, got 0.5"),
    ],
)
def test_llamafactory_v1_refusals(tmp_path, bad, needle):
    rec = {"chosen_messages": [_v1("user", "3*3?", 0.0), bad], "rejected_messages": [_v1("user", "3*3?", 0.0)]}
    with pytest.raises(DataError, match=r"field 'chosen_messages\[1\]") as e:
        load_pairs(str(write_jsonl(tmp_path / "v1.jsonl", [rec])))
    assert needle in str(e.value)


def test_llamafactory_v1_answer_with_loss_weight_zero_is_refused(tmp_path):
    rec = {
        "chosen_messages": [_v1("user", "3*3?", 0.0), _v1("assistant", "9", 0.0)],
        "rejected_messages": [_v1("user", "3*3?", 0.0), _v1("assistant", "6", 1.0)],
    }
    with pytest.raises(DataError, match="field 'chosen_messages': an answer message has loss_weight 0.0"):
        load_pairs(str(write_jsonl(tmp_path / "v1.jsonl", [rec])))


# ---- stepwise supervision: refused on every reader ----------------------------------------------------------------

STEPWISE = {
    "prompt": "Which number is larger, 9.8 or 9.11?",
    "completions": [
        "The fractional part of 9.8 is 0.8.",
        "The fractional part of 9.11 is 0.11.",
        "0.11 is greater than 0.8, so 9.11 is larger.",
    ],
    "labels": [True, True, False],
}


def test_stepwise_supervision_refused_by_every_reader(tmp_path, tokenizer):
    from alignline.data.dataset import load_samples
    from alignline.data.prompts import load_prompts

    path = str(write_jsonl(tmp_path / "stepwise.jsonl", [STEPWISE]))
    readers = [
        load_samples,
        load_pairs,
        load_unpaired,
        load_prompts,
        lambda p: list(iter_items(p)),
        lambda p: show(p, tokenizer),
    ]
    for read in readers:
        with pytest.raises(DataError) as e:
            read(path)
        message = str(e.value)
        assert (
            "line 1, field 'completions': TRL stepwise-supervision records (prompt/completions/labels) are not "
            "supported"
            in message
            and "method: kto" in message
            and "\n" not in message
        )


def test_stepwise_supervision_refused_by_data_check(tmp_path, capsys):
    path = write_jsonl(tmp_path / "stepwise.jsonl", [STEPWISE, dict(STEPWISE, prompt="Is 7 prime?")])
    assert main(["data", "check", str(path), "--out", str(tmp_path / "report"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TRL stepwise-supervision records" in err[0] and "duplicate" not in err[0]


# ---- data show and data check read as training reads ----------------------------------------------------------------


def test_show_kto_uses_the_kto_reader(tmp_path, tokenizer):
    recs = [
        {"messages": [_u("Name a fruit."), _a("Apple."), _u("Another?"), _a("Rock.")], "label": False},
        {"system": "Be kind.", "prompt": "Rate my poem.", "completion": "Lovely.", "label": True},
    ]
    path = str(write_jsonl(tmp_path / "kto.jsonl", recs))
    out = show(path, tokenizer)
    assert "kto, chat, label false (undesirable)" in out
    assert "<|im_start|>assistant\nApple.<|im_end|>" in out and "[[Rock.<|im_end|>]]" in out
    assert out.count("[[") == 2  # the legend's, then Rock's: the earlier answer is context
    out = show(path, tokenizer, number=2)
    assert SYS.format("Be kind.") + TURN.format("user", "Rate my poem.") + "<|im_start|>assistant\n[[Lovely." in out


def test_show_grpo_prompt_rendered_with_generation_prompt(tmp_path, tokenizer):
    path = str(write_jsonl(tmp_path / "gsm.jsonl", [{"prompt": [_u("What is 6*7?")], "answer": "42"}]))
    out = show(path, tokenizer)
    head, body, tail = out.split("\n", 1)[0], out.split("\n", 1)[1].rsplit("\n## ", 1)[0], out.rsplit("\n## ", 1)[1]
    assert "grpo, the prompt as rendered for generation; no trained tokens" in head
    assert body.endswith(TURN.format("user", "What is 6*7?") + "<|im_start|>assistant\n")
    assert "[[" not in body and tail.endswith("tokens, 0 trained")
    assert "ppo, the prompt" in show(path, tokenizer, method="ppo")


def test_cli_show_method_grpo(tmp_path, tiny_model_dir, capsys):
    path = str(write_jsonl(tmp_path / "p.jsonl", [{"prompt": "2+2=", "answer": "4"}]))
    assert main(["data", "show", path, "--model", str(tiny_model_dir), "--method", "grpo"]) == 0
    out = capsys.readouterr().out
    assert "grpo, the prompt as rendered" in out and "\n2+2=\n## " in out and "0 trained" in out


def test_data_check_items_read_kto_and_v1_as_training_does(tmp_path):
    recs = [
        {"system": "Be kind.", "prompt": "Rate my poem.", "completion": "Lovely.", "label": True},
        {
            "chosen_messages": [_v1("user", "3*3?", 0.0), _v1("assistant", "9", 1.0)],
            "rejected_messages": [_v1("user", "3*3?", 0.0), _v1("assistant", "6", 1.0)],
        },
    ]
    kto, v1 = iter_items(str(write_jsonl(tmp_path / "mixed.jsonl", recs)))
    assert kto.kind == "chat" and _roles(kto.messages)[0] == ("system", "Be kind.") and kto.response == "Lovely."
    assert v1.kind == "preference" and v1.prompt == "3*3?" and v1.response == "9"
