"""Perplexity, KL, forgetting and multiple-choice calibration on tiny random models, against a direct
forward pass."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from alignline.data.formats import to_sample
from alignline.data.templates import tokenize_sample
from alignline.evals.context import Context, ModelHandle
from alignline.evals.results import evaluate
from alignline.evals.stats import ece_stat
from alignline.evals.suites import load_suite
from alignline.models.loading import load_causal_lm
from alignline.rollout.types import render_prompt
from support import save_tiny_model, write_jsonl

TEXTS = [
    {"id": "t1", "text": "The quick brown fox jumps over the lazy dog."},
    {
        "id": "t2",
        "messages": [{"role": "user", "content": "What is two plus two?"}, {"role": "assistant", "content": "Four."}],
    },
]


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-other") / "model", seed=1)


def suite(tmp_path, name, records, **settings):
    settings["data"] = str(write_jsonl(tmp_path / f"{name}.jsonl", records))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **settings}))
    return load_suite(str(path))


def handle(name, path):
    return ModelHandle(name, str(path), backend="hf")


def direct_nll(model_dir, records) -> tuple[float, int]:
    tok, model = load_causal_lm(str(model_dir))
    total, count = 0.0, 0
    for r in records:
        ids, mask = tokenize_sample(tok, to_sample(r, "x", "line 1"))
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        for t in range(1, len(ids)):
            if mask[t]:
                total -= float(logp[t - 1, ids[t]])
                count += 1
    return total, count


def test_perplexity_equals_a_direct_forward(tmp_path, tiny_model_dir):
    s = suite(tmp_path, "heldout", TEXTS, kind="perplexity")
    results = evaluate([handle("m", tiny_model_dir)], None, [s], Context(n_boot=100))
    nll, n = direct_nll(tiny_model_dir, TEXTS)
    assert results["metrics"]["m"]["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-4)


def test_kl_is_zero_against_itself_and_positive_on_average_against_another(tmp_path, tiny_model_dir, other_model_dir):
    prompts = [{"id": i, "prompt": p} for i, p in enumerate(["Hello", "What is two plus two?", "Label: positive?"])]
    s = suite(tmp_path, "kl", prompts, kind="kl", max_new_tokens=8)
    same = evaluate([handle("m", tiny_model_dir)], handle("base", tiny_model_dir), [s], Context(n_boot=100))
    assert same["metrics"]["m"]["kl"] == pytest.approx(0.0, abs=1e-6)
    other = evaluate([handle("m", tiny_model_dir)], handle("base", other_model_dir), [s], Context(n_boot=100))
    assert other["metrics"]["m"]["kl"] != 0.0 and math.isfinite(other["metrics"]["m"]["kl"])
    assert "kl/kl" in other["deltas"]["m"]


def test_forgetting_by_perplexity_is_zero_for_the_base_itself(tmp_path, tiny_model_dir, other_model_dir):
    s = suite(tmp_path, "general", TEXTS, kind="forgetting", measure="perplexity", base=str(other_model_dir))
    results = evaluate([handle("m", tiny_model_dir), handle("b", other_model_dir)], None, [s], Context(n_boot=100))
    m_nll, n = direct_nll(tiny_model_dir, TEXTS)
    b_nll, _ = direct_nll(other_model_dir, TEXTS)
    assert results["metrics"]["b"]["forgetting"] == pytest.approx(0.0, abs=1e-9)
    assert results["metrics"]["m"]["forgetting"] == pytest.approx(math.exp(m_nll / n) - math.exp(b_nll / n), rel=1e-4)


def test_multiple_choice_calibration_equals_direct_probabilities(tmp_path, tiny_model_dir):
    records = [
        {"id": 1, "prompt": "What is two plus two?", "choices": ["Four.", "Five.", "Label: positive"], "answer": 0},
        {"id": 2, "prompt": "Capital of France?", "choices": ["Paris", "Rome"], "answer": "Paris"},
        {"id": 3, "prompt": "Hello", "choices": ["fine", "thank you"], "answer": 1},
    ]
    s = suite(tmp_path, "mc", records, kind="calibration", bins=5)
    results = evaluate([handle("m", tiny_model_dir)], None, [s], Context(n_boot=100))
    tok, model = load_causal_lm(str(tiny_model_dir))
    conf, correct = [], []
    for r in records:
        p = tok(render_prompt(tok, [{"role": "user", "content": r["prompt"]}]), add_special_tokens=False).input_ids
        scores = []
        for c in r["choices"]:
            ids = tok(c, add_special_tokens=False).input_ids
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([p + ids])).logits[0].float(), -1)
            scores.append(sum(float(logp[len(p) - 1 + k, t]) for k, t in enumerate(ids)))
        probs = torch.softmax(torch.tensor(scores), 0)
        best = int(probs.argmax())
        answer = r["answer"] if isinstance(r["answer"], int) else r["choices"].index(r["answer"])
        conf.append(float(probs[best]))
        correct.append(float(best == answer))
    expected = float(ece_stat(torch.tensor(conf).numpy(), torch.tensor(correct).numpy(), bins=5))
    assert results["metrics"]["m"]["ece"] == pytest.approx(expected, abs=1e-5)
    assert results["metrics"]["m"]["mc/accuracy"] == pytest.approx(sum(correct) / 3)


def test_win_rate_judged_by_a_reward_model(tmp_path, tiny_model_dir, other_model_dir):
    """A reward model scores both answers; the higher wins, a tie counts 1/2: every preference is 0, 1/2 or 1."""
    prompts = [{"id": i, "prompt": p} for i, p in enumerate(["Hello", "What is two plus two?", "Label: positive?"])]
    s = suite(tmp_path, "wr", prompts, kind="win_rate", judge={"reward_model": str(tiny_model_dir)}, max_new_tokens=6)
    results = evaluate([handle("cand", tiny_model_dir)], handle("base", other_model_dir), [s], Context(n_boot=100))
    m = results["metrics"]["cand"]
    assert 0.0 <= m["win_rate"] <= 1.0 and 0.0 < m["lc_win_rate"] < 1.0
    assert results["models"]["cand"]["details"]["wr"]["baseline"] == "base"
