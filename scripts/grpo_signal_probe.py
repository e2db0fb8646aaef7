#!/usr/bin/env python3
"""How much GRPO signal a model's samples carry, per sampling setting, before paying for a training run.

GRPO learns only from groups whose completions got different rewards (a flat group has advantage 0), so the
share of mixed groups at a temperature and group size is the first thing to measure when choosing them. This
samples `--groups` training prompts x `--n` completions per temperature, scores them with a recipe's rewards,
and prints per setting: mean reward per component, the share of groups with reward variance, mean length and
the share cut at max_new_tokens, and the seconds it took. Generation only (no training); HF engine.

    python scripts/grpo_signal_probe.py recipes/grpo-lora.yaml --temperatures 0.7 1.0 --n 8 --groups 16
    python scripts/grpo_signal_probe.py recipes/grpo-lora.yaml --model smollm2-135m     # the base instead
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from alignline.config import load_config  # noqa: E402
from alignline.data.prompts import load_prompts  # noqa: E402
from alignline.losses.grpo import zero_std_groups  # noqa: E402
from alignline.methods.online import sample_completions, score_completions  # noqa: E402
from alignline.models.loading import load_causal_lm  # noqa: E402
from alignline.rewards.combine import RewardSet  # noqa: E402
from alignline.rollout.types import SamplingParams  # noqa: E402


def probe(recipe: Path, model: str | None, temperatures: list[float], n: int, groups: int, seed: int) -> list[dict]:
    cfg = load_config(recipe)
    tokenizer, hf_model = load_causal_lm(model or cfg.model, cfg.training.dtype)
    units = load_prompts(cfg.data.train[0].path)[:groups]
    rewards = RewardSet(cfg.rewards)
    rows = []
    for t in temperatures:
        start = time.perf_counter()
        params = SamplingParams(max_new_tokens=cfg.grpo.max_new_tokens, temperature=t, n=n, seed=seed)
        sampled = sample_completions(hf_model, tokenizer, [u.prompt for u in units], params, batch_size=64)
        scores = score_completions(rewards, units, sampled)
        flat = zero_std_groups(scores.total, n)
        every = [c for g in sampled for c in g]
        rows.append(
            {
                "temperature": t,
                "n": n,
                "groups": len(units),
                "reward": round(float(scores.total.mean()), 4),
                **{k: round(v, 4) for k, v in scores.means().items()},
                "mixed_groups": round(1.0 - float(flat.float().mean()), 4),
                "length": round(sum(len(c.token_ids) for c in every) / len(every), 1),
                "truncated": round(sum(c.finish_reason == "length" for c in every) / len(every), 4),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--model", help="default: the recipe's model")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.7, 1.0])
    ap.add_argument("--n", type=int, default=8, help="completions per prompt (the group)")
    ap.add_argument("--groups", type=int, default=16, help="training prompts")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    probe(args.recipe, args.model, args.temperatures, args.n, args.groups, args.seed)


if __name__ == "__main__":
    main()
