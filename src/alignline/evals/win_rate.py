"""Suite kind `win_rate`: the candidate against the baseline on the same prompts, judged pairwise.

Both models answer every prompt (cached per model like any generation). The judge, `judge:` in the suite:
- `{reward_model: DIR}`: a reward model scores both answers; the higher wins (a tie counts 1/2).
  Scores are independent of order, so one call per answer is enough.
- `{model: DIR, ...}`: a judge model (`rewards/judge.PairwiseJudge`: template, samples, temperature, ...)
  whose `judge(prompt, a, b) -> float | None` is the probability that `a` is better.
- `file.py:function` or `module:function`: a user's `judge(prompt, a, b) -> float | None`, the
  probability that `a` is the better answer (None: cannot tell).
Pairwise judges are asked in both orders and the two votes averaged (`stats.both_order_preference`),
which cancels a judge's position bias: one that always prefers the first answer gives exactly 0.5.

`win_rate` is the mean preference for the candidate; its 95 % interval is the bootstrap over prompts.
With `length_controlled: true` (default) `lc_win_rate` is also reported: the win rate at zero length
difference from a logistic regression of the preference on the (tanh-scaled) character-length
difference (`stats.lc_win_rate_stat`, after AlpacaEval 2), so a candidate that wins by writing more
does not look better than it is. Both are comparisons already: no candidate-minus-baseline delta.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alignline.data.formats import Message
from alignline.errors import ConfigError
from alignline.evals.answers import by_category
from alignline.evals.cache import RecordCache, stable_hash
from alignline.evals.context import Context, Metric, ModelHandle, Outcome
from alignline.evals.stats import bootstrap_ci, both_order_preference, compute, length_feature
from alignline.evals.suites import GENERATION, Kind, Suite, prompt_of
from alignline.rewards.judge import PairwiseJudge
from alignline.rewards.registry import load_function
from alignline.rewards.reward_models import RewardScorer
from alignline.text import last_user_turn


class Judge:
    """A pairwise judge and its identity for the cache; `pair(prompts, a, b)` -> preferences for a."""

    def __init__(self, suite: Suite, ctx: Context):
        spec = suite.settings["judge"]
        self.scorer = None
        if isinstance(spec, dict) and "reward_model" in spec:
            self.identity = {"reward_model": ctx.model(spec["reward_model"]).hash}
            self.rm_path = spec["reward_model"]
        elif isinstance(spec, dict):
            self.fn = PairwiseJudge(**spec).judge
            self.identity = {
                "judge_model": ctx.model(spec["model"]).hash,
                **{k: v for k, v in spec.items() if k != "model"},
            }
        else:
            self.fn = load_function(spec)
            target = spec.rpartition(":")[0]
            source = stable_hash(Path(target).read_text()) if target.endswith(".py") else ""
            self.identity = {"function": spec, "source": source}

    def pair(self, prompts: list, a: list[str], b: list[str]) -> list[float | None]:
        if self.identity.get("reward_model"):
            if self.scorer is None:
                self.scorer = RewardScorer(self.rm_path)
            ra, rb = self.scorer(*as_messages(prompts, a)), self.scorer(*as_messages(prompts, b))
            return [1.0 if x > y else 0.0 if x < y else 0.5 for x, y in zip(ra, rb)]
        return [both_order_preference(self.fn, p, x, y) for p, x, y in zip(prompts, a, b)]


def as_messages(prompts: list, answers: list[str]) -> tuple[list, list]:
    """Engine prompts and answers in the shape the reward scorer takes (Message lists; raw text as is)."""
    ps, rs = [], []
    for p, a in zip(prompts, answers):
        if isinstance(p, str):
            ps.append(p)
            rs.append(a)
        else:
            ps.append([Message(m["role"], m["content"]) for m in p])
            rs.append([Message("assistant", a)])
    return ps, rs


def run_win_rate(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    baseline = ctx.reference(suite, "baseline")
    if baseline is model or baseline.hash == model.hash:
        return Outcome({})  # the baseline against itself: 0.5 by definition, nothing to report
    prompts = {r.id: prompt_of(suite, r) for r in suite.records}
    mine, theirs = ctx.generate(model, suite, prompts), ctx.generate(baseline, suite, prompts)
    judge = Judge(suite, ctx)
    cache = RecordCache(
        {
            "what": "judge",
            "candidate": model.hash,
            "baseline": baseline.hash,
            "judge": judge.identity,
            "suite": stable_hash(suite.definition()),
        },
        ctx.cache_enabled,
    )
    keyed = {stable_hash([prompts[k], mine[k]["text"], theirs[k]["text"]]): k for k in prompts}

    def compute_prefs(keys: list[str]) -> list[dict]:
        ids = [keyed[k] for k in keys]
        prefs = judge.pair([prompts[i] for i in ids], [mine[i]["text"] for i in ids], [theirs[i]["text"] for i in ids])
        return [{"preference": p} for p in prefs]

    values = dict(zip(keyed.values(), cache.memo(list(keyed), compute_prefs, ctx.batch_size)))
    ids = [k for k in prompts if values[k]["preference"] is not None]
    examples = [
        {
            "id": k,
            "category": r.data.get("category"),
            "prompt": last_user_turn(prompts[k]),
            "output": mine[k]["text"],
            "baseline_output": theirs[k]["text"],
            "score": values[k]["preference"],
            "failed": values[k]["preference"] is not None and values[k]["preference"] < 0.5,
            "why": "the baseline's answer was preferred",
        }
        for k, r in zip(prompts, suite.records)
    ]
    if not ids:
        return Outcome({}, examples)
    pref = [values[k]["preference"] for k in ids]
    metrics = {
        "win_rate": Metric(
            float(np.mean(pref)),
            "mean",
            ids,
            {"x": pref},
            relative=True,
            interval=bootstrap_ci("mean", {"x": pref}, n_boot=ctx.n_boot, seed=ctx.seed),
        )
    }
    if suite.settings["length_controlled"]:
        length = length_feature([len(mine[k]["text"]) for k in ids], [len(theirs[k]["text"]) for k in ids]).tolist()
        arrays = {"preference": pref, "length": length}
        metrics["lc_win_rate"] = Metric(
            compute("lc_win_rate", arrays),
            "lc_win_rate",
            ids,
            arrays,
            relative=True,
            interval=bootstrap_ci("lc_win_rate", arrays, n_boot=min(ctx.n_boot, 500), seed=ctx.seed),
        )
    return Outcome(
        metrics,
        examples,
        {"baseline": baseline.name, "by_category": by_category(examples, "win_rate", lambda e: e["score"])},
    )


def check_suite(suite: Suite) -> None:
    spec = suite.settings["judge"]
    if spec is None:
        raise suite.error(
            "a win_rate suite needs a judge: {reward_model: DIR}, {model: DIR} or file.py:function", "judge"
        )
    if isinstance(spec, dict):
        if not ({"reward_model", "model"} & set(spec)):
            raise suite.error("expected {reward_model: DIR} or {model: DIR, ...}", "judge")
    else:
        try:
            load_function(spec)
        except ConfigError as e:
            raise suite.error(str(e), "judge") from None
    for r in suite.records:
        prompt_of(suite, r)


WIN_RATE = Kind(
    "win_rate",
    {
        **GENERATION,
        "judge": ((str, dict), None, "{reward_model: DIR}, {model: DIR} or file.py:function"),
        "baseline": (str, None, "the model compared against (default: the run's --baseline)"),
        "length_controlled": (bool, True, "also report the length-controlled win rate"),
    },
    (),
    run_win_rate,
    check=check_suite,
)
