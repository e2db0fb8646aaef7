"""What the online methods (GRPO, PPO) share around the loop: sampling from the policy, scoring with the
rewards, the prompt + completion sequences the loss reads, completions to log, and the greedy held-out
evaluation. Each method keeps only its own advantages and loss.
"""

from __future__ import annotations

import math

import torch

from alignline.data.templates import Example, shift_targets
from alignline.rewards.combine import RewardScores, RewardSet
from alignline.rollout.hf import HFEngine
from alignline.rollout.types import Completion, SamplingParams, render_prompt


def sample_completions(model, tokenizer, prompts: list, params: SamplingParams,
                       batch_size: int | None = None) -> list[list[Completion]]:
    """`params.n` completions per prompt from `model` (the HF/PEFT model), in eval mode (no dropout);
    all in one batch unless `batch_size` says otherwise."""
    was_training = model.training
    model.eval()
    try:
        engine = HFEngine(model, tokenizer, batch_size=batch_size or max(len(prompts) * params.n, 1))
        return engine.generate(prompts, params)
    finally:
        model.train(was_training)


def score_completions(rewards: RewardSet, units: list, groups: list[list[Completion]]) -> RewardScores:
    """Every completion scored, in group order; each unit's columns repeated for its group."""
    prompts = [u.prompt for u, group in zip(units, groups) for _ in group]
    keys = sorted({k for u in units for k in u.columns})
    columns = {k: [u.columns.get(k) for u, group in zip(units, groups) for _ in group] for k in keys}
    texts = [c.text for group in groups for c in group]
    ids = [c.token_ids for group in groups for c in group]
    return rewards.score(prompts, texts, columns, completion_ids=ids)


def completion_sequences(tokenizer, units: list, groups: list[list[Completion]]) -> list[Example]:
    """Prompt + completion token sequences, targets on the completion only, in group order."""
    sequences = []
    for u, group in zip(units, groups):
        prompt_ids = tokenizer(render_prompt(tokenizer, u.prompt), add_special_tokens=False).input_ids
        for c in group:
            completion = c.token_ids or [tokenizer.eos_token_id]  # an empty completion still predicts one token
            ids = list(prompt_ids) + list(completion)
            sequences.append(Example(ids, shift_targets(ids, [False] * len(prompt_ids) + [True] * len(completion))))
    return sequences


def completion_samples(step: int, units: list, groups: list[list[Completion]], total: torch.Tensor,
                       components: dict[str, list]) -> list[dict]:
    """completions.jsonl records for one micro-batch (`step` is the 1-based step being trained)."""
    out, i = [], 0
    for u, group in zip(units, groups):
        for c in group:
            out.append({"step": step, "prompt": u.prompt, "completion": c.text, "reward": float(total[i]),
                        **{f"reward/{n}": v[i] for n, v in components.items()}})
            i += 1
    return out


@torch.no_grad()
def greedy_eval(model, tokenizer, rewards: RewardSet, units: list, max_new_tokens: int) -> dict[str, float]:
    """Greedy answers to held-out prompts, scored by the same rewards: `reward` and each `reward/<name>`."""
    if not units:
        return {}
    groups = sample_completions(model, tokenizer, [u.prompt for u in units], SamplingParams(max_new_tokens=max_new_tokens),
                                batch_size=16)
    scores = score_completions(rewards, units, groups)
    out = {"reward": float(scores.total.mean())}
    out.update({k: v for k, v in scores.means().items() if not math.isnan(v)})
    return out
