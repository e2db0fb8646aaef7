"""A confidence score for every served answer, in [0, 1].

Kinds (`--confidence`):
- `mean` (default): exp(mean token log-prob), the geometric-mean probability of the answer's tokens, the
  same score `alignline eval`'s calibration suite uses for free answers, so the two agree;
- `min`: exp(min token log-prob), the least likely token: stricter, one shaky token sinks the answer;
- `reward:PATH`: sigmoid(score) of a reward model trained with `method: rm` on (prompt, answer).

Log-probs come from the engine (`SamplingParams.logprobs`): the model's distribution at the sampling
temperature before top-p truncation (see `rollout/hf.py`). An empty answer gets confidence 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alignline.errors import UserError
from alignline.rewards.reward_models import RewardScorer, as_chat
from alignline.serve.calibrate import apply_fit

TOKEN_KINDS = ("mean", "min")


@dataclass(frozen=True)
class ConfidenceSpec:
    kind: str
    """mean, min or reward."""
    path: str | None = None
    """The reward model (kind reward)."""

    @property
    def label(self) -> str:
        """How the kind is written on the command line and recorded in a calibration file."""
        return f"reward:{self.path}" if self.kind == "reward" else self.kind


def parse_confidence(spec: str) -> ConfidenceSpec:
    """`mean`, `min` or `reward:PATH` -> a spec; anything else is one line naming the choices."""
    if spec in TOKEN_KINDS:
        return ConfidenceSpec(spec)
    kind, sep, path = spec.partition(":")
    if kind == "reward" and sep and path:
        return ConfidenceSpec("reward", path)
    raise UserError(f"--confidence {spec!r}: expected mean, min or reward:PATH (a reward model directory)")


def token_confidence(logprobs: list[float] | None, kind: str = "mean") -> float:
    """exp(mean) or exp(min) of an answer's token log-probs; 0 for none.

    >>> round(token_confidence([math.log(0.5), math.log(0.125)]), 4)  # geometric mean of 0.5 and 0.125
    0.25
    >>> token_confidence([math.log(0.5), math.log(0.125)], "min")
    0.125
    """
    if not logprobs:
        return 0.0
    value = min(logprobs) if kind == "min" else sum(logprobs) / len(logprobs)
    return min(1.0, max(0.0, math.exp(value)))


class Confidence:
    """Scores (prompt, completion) pairs; the reward model, if any, loads on first use (in the worker thread)."""

    def __init__(self, spec: ConfidenceSpec, fits: dict[str, dict] | None = None):
        self.spec = spec
        self.fits = dict(fits or {})
        """Engine model name -> the calibration file's fit (Platt scaling), applied by `calibrated`."""
        self.scorer = None

    def calibrated(self, model: str, score: float) -> float:
        """The raw score mapped by `model`'s fit from the calibration file (unchanged without one)."""
        return apply_fit(score, self.fits.get(model)) if model in self.fits else score

    @property
    def needs_logprobs(self) -> bool:
        return self.spec.kind in TOKEN_KINDS

    def __call__(self, prompts: list, completions: list) -> list[float]:
        """One score per completion; `prompts[i]` is the conversation `completions[i]` answers."""
        if self.spec.kind in TOKEN_KINDS:
            return [token_confidence(c.logprobs, self.spec.kind) for c in completions]
        # lazy: the reward-model stack loads only for a `reward:PATH` confidence
        if self.scorer is None:
            self.scorer = RewardScorer(self.spec.path)
        pairs = [as_chat(p, c.text) for p, c in zip(prompts, completions)]
        scores = self.scorer([p for p, _ in pairs], [r for _, r in pairs])
        return [1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, s)))) for s in scores]
