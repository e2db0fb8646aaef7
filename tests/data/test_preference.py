"""Preference data: every record format to exact pairs, exact token masks, one-line errors, and short DPO / RM runs."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from alignline.cli import main
from alignline.config import load_config
from alignline.data.formats import Message
from alignline.data.preference import PreferencePair, load_pairs, to_pairs, tokenize_pair
from alignline.data.templates import IGNORE
from alignline.errors import DataError
from alignline.train.loop import train
from alignline.train.metrics import read_metrics

from alignline.testing import write_jsonl, write_recipe


def _u(text):
    return {"role": "user", "content": text}


def _a(text):
    return {"role": "assistant", "content": text}


def _sys(text):
    return {"role": "system", "content": text}


def _pairs(tmp_path, *records, name="prefs.jsonl"):
    return load_pairs(str(write_jsonl(tmp_path / name, list(records))))


def _roles(messages):
    return [(m.role, m.content) for m in messages]


# --- Formats to pairs -----------------------------------------------------------------------------------------


def test_trl_strings(tmp_path):
    (pair,) = _pairs(tmp_path, {"prompt": "Q: 2+2? A:", "chosen": " 4", "rejected": " 5"})
    path = str(tmp_path / "prefs.jsonl")
    assert pair == PreferencePair("Q: 2+2? A:", " 4", " 5", weight=1.0, margin=0.0, source=None,
                                  origin=f"{path}, line 1")


def test_trl_message_lists_with_system_turn(tmp_path):
    (pair,) = _pairs(tmp_path, {"prompt": [_sys("Be brief."), _u("2+2?")], "chosen": [_a("4")],
                                "rejected": [_a("five")], "source": "human"})
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
        {"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4",
         "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: five"})
    assert (single.prompt, single.chosen, single.rejected) == ("\n\nHuman: 2+2?\n\nAssistant:", " 4", " 5")
    assert multi.prompt == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant:"
    assert (multi.chosen, multi.rejected) == (" 4", " five")
    assert multi.origin.endswith("prefs.jsonl, line 2")


def test_hh_message_transcripts_split_at_the_last_common_message(tmp_path):
    single, multi = _pairs(
        tmp_path,
        {"chosen": [_u("2+2?"), _a("4")], "rejected": [_u("2+2?"), _a("5")]},
        {"chosen": [_sys("S"), _u("hi"), _a("hello"), _u("2+2?"), _a("4")],
         "rejected": [_sys("S"), _u("hi"), _a("hello"), _u("2+2?"), _a("five")]})
    assert _roles(single.prompt) == [("user", "2+2?")]
    assert _roles(single.chosen) == [("assistant", "4")] and _roles(single.rejected) == [("assistant", "5")]
    assert _roles(multi.prompt) == [("system", "S"), ("user", "hi"), ("assistant", "hello"), ("user", "2+2?")]
    assert _roles(multi.chosen) == [("assistant", "4")] and _roles(multi.rejected) == [("assistant", "five")]
    assert all(m.train for m in multi.chosen + multi.rejected)


def test_ranking_of_three_expands_best_first_into_three_pairs(tmp_path):
    pairs = _pairs(tmp_path, {"prompt": "2+2?", "ranking": ["4", "four", "5"], "confidence": 0.75, "margin": 1.5,
                              "source": "synthetic"})
    assert [(p.chosen, p.rejected) for p in pairs] == [("4", "four"), ("4", "5"), ("four", "5")]
    assert all((p.prompt, p.weight, p.margin, p.source) == ("2+2?", 0.75, 1.5, "synthetic") for p in pairs)
    chat = _pairs(tmp_path, {"prompt": [_u("2+2?")], "ranking": [[_a("4")], [_a("four")], [_a("5")]]},
                  name="chat.jsonl")
    assert [(p.chosen[0].content, p.rejected[0].content) for p in chat] == [("4", "four"), ("4", "5"), ("four", "5")]


def test_confidence_weight_and_margin(tmp_path):
    base = {"prompt": "q", "chosen": "a", "rejected": "b"}
    pairs = _pairs(tmp_path, base, {**base, "confidence": 0.6}, {**base, "confidence": 1},
                   {**base, "weight": 2.5, "confidence": 0.1}, {**base, "margin": -0.5}, {**base, "margin": 3})
    assert [p.weight for p in pairs] == [1.0, 0.6, 1.0, 2.5, 1.0, 1.0]  # `weight` wins over `confidence`
    assert [p.margin for p in pairs] == [0.0, 0.0, 0.0, 0.0, -0.5, 3.0]
    assert all(isinstance(p.weight, float) and isinstance(p.margin, float) for p in pairs)


# --- Tokenized pairs ------------------------------------------------------------------------------------------

FORMATS = {
    "trl-strings": {"prompt": "Question: what is two plus two? Answer:", "chosen": " Four.",
                    "rejected": " The quick brown fox."},
    "trl-messages": {"prompt": [_sys("Be brief."), _u("What is two plus two?")], "chosen": [_a("Four.")],
                     "rejected": [_a("I can't help with that.")]},
    "hh-strings": {"chosen": "\n\nHuman: Hello, how are you today?\n\nAssistant: I am fine, thank you.",
                   "rejected": "\n\nHuman: Hello, how are you today?\n\nAssistant: No."},
    "hh-messages": {"chosen": [_u("Summarize the text."), _a("Label: positive")],
                    "rejected": [_u("Summarize the text."), _a("Label: negative, I think")]},
    "ranking": {"prompt": [_u("Capital of France?")], "ranking": [[_a("Paris")], [_a("Lyon")]]},
}


def _split(example):
    """(prompt ids, target ids, ids after the last target) of one tokenized side."""
    first = next(i for i, t in enumerate(example.targets) if t != IGNORE) + 1
    last = max(i for i, t in enumerate(example.targets) if t != IGNORE) + 1
    targets = [t for t in example.targets if t != IGNORE]
    assert example.input_ids[first:last + 1] == targets  # one contiguous answer span
    return example.input_ids[:first], targets, example.input_ids[last + 1:]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_tokenized_pair_shares_the_prompt_and_trains_only_the_answers(tmp_path, tokenizer, fmt):
    (pair,) = _pairs(tmp_path, FORMATS[fmt])
    ex = tokenize_pair(tokenizer, pair, 512)
    c_prompt, c_targets, c_after = _split(ex.chosen)
    r_prompt, r_targets, r_after = _split(ex.rejected)
    assert c_prompt == r_prompt  # the same prompt tokens, exactly
    eos = tokenizer.eos_token
    answers = (pair.chosen, pair.rejected) if isinstance(pair.chosen, str) else (
        pair.chosen[0].content, pair.rejected[0].content)
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
    (pair,) = _pairs(tmp_path, {"chosen": [_u("hi"), _a("hello"), _u("2+2?"), _a("4")],
                                "rejected": [_u("hi"), _a("hello"), _u("2+2?"), _a("5")]})
    ex = tokenize_pair(tokenizer, pair, 512)
    assert tokenizer.decode([t for t in ex.chosen.targets if t != IGNORE]) == "4" + tokenizer.eos_token


def test_string_prompt_ending_in_space_keeps_the_whole_answer(tmp_path, tokenizer):
    (pair,) = _pairs(tmp_path, {"prompt": "Q: 2+2? A: ", "chosen": "4", "rejected": "five"})
    ex = tokenize_pair(tokenizer, pair, 512)
    decoded = tokenizer.decode([t for t in ex.rejected.targets if t != IGNORE])
    assert decoded.strip() == "five" + tokenizer.eos_token
    assert ex.chosen.input_ids[:-2] == ex.rejected.input_ids[:len(ex.chosen.input_ids) - 2]  # same prompt tokens


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
    ("unknown-role", {"prompt": [_u("q")], "chosen": [{"role": "bot", "content": "a"}], "rejected": [_a("b")]},
     "field 'chosen[0].role': unknown role 'bot'"),
    ("confidence-text", {**GOOD, "confidence": "high"},
     "field 'confidence': must be a finite number, got 'high'"),
    ("ranking-of-one", {"prompt": "q", "ranking": ["a"]},
     "field 'ranking': expected a list of at least two responses"),
    ("hh-strings-no-prefix", {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"},
     "field 'chosen': HH-style transcripts must share the prompt"),
    ("hh-messages-no-prefix", {"chosen": [_u("a"), _a("b")], "rejected": [_u("c"), _a("d")]},
     "field 'chosen': chosen and rejected transcripts share no prompt"),
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
    code = main(["train", "--quiet", str(recipe), "method=dpo", f"model={tiny_model_dir}", f"data.train={path}",
                 f"output_dir={tmp_path / 'run'}", "tensorboard=false", "data_gates=false"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("alignline: error: ") and f"{path}, line 2, field '" in err[0] and message in err[0]
    assert not (tmp_path / "run").exists()


# --- Short runs on the tiny model -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """The runs set `training.threads: 1` (tiny matmuls gain nothing from a second thread, and lose a lot on a busy
    machine); torch's thread count is process-wide, so it is put back for the tests that follow."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _pref_records(n: int = 12) -> list[dict]:
    """Chat pairs with confidence and margins: some with a system turn, some multi-turn prompts, some HH style."""
    out = []
    for i in range(n):
        prompt = ([_sys("Be brief.")] if i % 3 == 0 else []) + [_u(f"What is {i} plus {i}?")]
        if i % 4 == 1:
            prompt += [_a(f"Answer: {2 * i}."), _u("And double it?")]
        good, bad = _a(f"Answer: {4 * i if i % 4 == 1 else 2 * i}."), _a(f"I can't help with that, {i}.")
        if i % 5 == 4:  # HH message-list style
            out.append({"chosen": prompt + [good], "rejected": prompt + [bad], "confidence": 0.5})
        else:
            out.append({"prompt": prompt, "chosen": [good], "rejected": [bad], "margin": 0.25 * (i % 3),
                        "confidence": 1.0 if i % 2 else 0.8})
    return out


@pytest.fixture(scope="module")
def pref_data(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("prefs") / "prefs.jsonl", _pref_records())


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory, tiny_model_dir):
    """A DPO reference that differs from the starting policy: the tiny model with perturbed weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    out = tmp_path_factory.mktemp("reference") / "model"
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def _recipe(tmp_path, tiny_model_dir, data, method, name="run", **training):
    out = tmp_path / name
    recipe = write_recipe(
        tmp_path / f"{name}.yaml", method=method, model=str(tiny_model_dir), output_dir=str(out), data_gates=False,
        data={"train": str(data), "eval_fraction": 0.25},
        adapter={"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        dpo={"kl_prompts": 2, "kl_max_new_tokens": 4},
        training={"max_steps": 3, "batch_size": 2, "max_length": 128, "eval_every": 100, "save_every": 100,
                  "lr": 1e-2, "tensorboard": False, "log_every": 1, "threads": 1, **training})
    return recipe, out


def _lora_b(path):
    tensors = load_file(path)
    lora_b = [v for k, v in tensors.items() if "lora_B" in k]
    return tensors, lora_b


def test_dpo_lora_run(tmp_path, tiny_model_dir, pref_data):
    recipe, out = _recipe(tmp_path, tiny_model_dir, pref_data, "dpo")
    train(load_config(recipe), progress=False)
    _, lora_b = _lora_b(out / "final" / "adapter_model.safetensors")
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: nonzero means trained
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        assert {"loss", "accuracy", "margin", "chosen_reward", "rejected_reward", "chosen_logp"} <= set(m)
        assert all(math.isfinite(v) for v in m.values())
    # step 1: the policy is its reference (adapters at zero), so every implicit reward is 0 and the loss is log 2
    assert metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert metrics[0]["margin"] == 0.0 and metrics[0]["accuracy"] == 0.5
    assert {"eval_loss", "eval_accuracy", "eval_margin", "eval_kl"} <= set(metrics[-1])
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["data"]["train_pairs"] + run["data"]["eval_pairs"] == 12


def test_dpo_precomputed_reference_matches_live_reference(tmp_path, tiny_model_dir, pref_data, reference_dir):
    live_recipe, live = _recipe(tmp_path, tiny_model_dir, pref_data, "dpo", name="live")
    pre_recipe, pre = _recipe(tmp_path, tiny_model_dir, pref_data, "dpo", name="pre")
    train(load_config(live_recipe, [f"dpo.ref_model={reference_dir}"]), progress=False)
    train(load_config(pre_recipe, [f"dpo.ref_model={reference_dir}", "dpo.precompute_ref_logps=true"]),
          progress=False)
    live_m, pre_m = read_metrics(live / "metrics.jsonl"), read_metrics(pre / "metrics.jsonl")
    assert abs(live_m[0]["loss"] - math.log(2)) > 1e-3  # a reference other than the policy: not the trivial log 2
    assert pre_m[0]["loss"] == pytest.approx(live_m[0]["loss"], abs=1e-6)
    for key in ("margin", "chosen_reward", "rejected_reward"):
        assert pre_m[0][key] == pytest.approx(live_m[0][key], abs=1e-6)
    for a, b in zip(live_m[1:], pre_m[1:]):  # the same updates follow
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
    assert pre_m[-1]["eval_loss"] == pytest.approx(live_m[-1]["eval_loss"], abs=1e-5)


def test_reward_model_run_loads_in_transformers_and_scores_the_same(tmp_path, tiny_model_dir, pref_data, tokenizer):
    from transformers import AutoModelForSequenceClassification

    from alignline.methods.rm import RewardModeling
    from alignline.models.loading import load_model
    from alignline.models.reward_model import RewardModel

    recipe, out = _recipe(tmp_path, tiny_model_dir, pref_data, "rm")
    cfg = load_config(recipe)
    train(cfg, progress=False)
    tensors, lora_b = _lora_b(out / "final" / "adapter" / "adapter_model.safetensors")
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)
    assert any("score" in k for k in tensors)  # the trained head travels with the adapter
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert all({"loss", "accuracy", "margin", "chosen_reward", "rejected_reward"} <= set(m) for m in metrics)
    assert {"eval_loss", "eval_accuracy", "eval_margin"} <= set(metrics[-1])

    # transformers alone, on the merged `final/`: each side of one pair on its own, no padding
    hf = AutoModelForSequenceClassification.from_pretrained(out / "final").eval()
    assert hf.config.num_labels == 1 and hf.config.pad_token_id == tokenizer.pad_token_id
    (pair,) = to_pairs(_pref_records()[3], "prefs.jsonl", "line 4")
    unit = tokenize_pair(tokenizer, pair, 128)
    with torch.no_grad():
        hf_scores = torch.stack([hf(input_ids=torch.tensor([seq.input_ids])).logits[0, 0]
                                 for seq in (unit.chosen, unit.rejected)])
        # alignline: the base model with the saved (unmerged) adapter, through its packed reward forward
        ours = RewardModel(load_model(str(out / "final" / "adapter"), kind="reward",
                                      pad_token_id=tokenizer.pad_token_id).eval())
        batch = RewardModeling(cfg).collate([unit], [[0]], tokenizer.pad_token_id)
        scores = ours(**batch)
    torch.testing.assert_close(scores, hf_scores, atol=1e-5, rtol=0)
    assert (scores[0] - scores[1]).abs() > 0  # a trained head, not a constant
