"""Active learning: which unlabelled pairs to send to annotators next.

A pool item is a prompt and two responses, a and b, nobody has compared yet. Each strategy returns the
pool's indices in the order to annotate, most useful first:

- `random_order`: the baseline every other strategy must beat.
- `by_reward_uncertainty`: a reward model scores both sides; under Bradley–Terry it prefers a with
  probability σ(r_a − r_b). Pairs where that probability is closest to 0.5 come first.
- `by_dpo_margin`: a DPO policy's implicit reward of a response is β (log π(y|x) − log π_ref(y|x)), so its
  preference margin on a pair is β [(π_a − ref_a) − (π_b − ref_b)]. The smallest |margin| comes first.

Both informed strategies are uncertainty sampling (Lewis & Gale 1994) on a different model; they favour
pairs near the model's decision boundary, and, like any uncertainty sampling, can keep drawing from one
region while random sampling covers the pool. The simulation (`annotate/simulation.py`) measures whether
they pay off on a given pool. The strategies are pure; `reward_scores` and `dpo_logps` compute their
inputs with the project's reward-model and DPO forwards (`RewardScorer`, `DPOModel`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from alignline.data.formats import Message
from alignline.data.preference import PreferencePair, to_pairs, tokenize_pair
from alignline.errors import DataError, ModelError
from alignline.methods.pairs import collate_pairs
from alignline.models.loading import load_model, load_tokenizer_for
from alignline.models.reference import DPOModel, frozen_reference
from alignline.rewards.reward_models import RewardScorer

STRATEGIES = ("random", "uncertainty", "margin")


@dataclass(slots=True)
class PoolPair:
    """One unlabelled comparison: a prompt and two responses in the order annotators will see them."""

    prompt: list[Message] | str
    a: list[Message] | str
    b: list[Message] | str
    origin: str = ""

    def as_preference(self) -> PreferencePair:
        """a in the `chosen` slot, b in `rejected`: only the forwards' layout, not a label."""
        return PreferencePair(self.prompt, self.a, self.b, origin=self.origin)


def pool_from_items(records: Sequence[tuple[str, dict]], path: str) -> list[PoolPair]:
    """Annotation items (`{"prompt", "responses": [a, b]}`, located as `read_records` yields them) -> pool
    pairs, checked the way preference records are (prompt and responses both text, or both chat)."""
    pool = []
    for location, record in records:
        responses = record.get("responses")
        if not isinstance(responses, list) or len(responses) != 2:
            raise DataError(
                path,
                "expected 'responses' to be a list of two responses (a pairwise item)",
                record=location,
                field="responses",
            )
        if "prompt" not in record:
            raise DataError(path, "is missing", record=location, field="prompt")
        (pair,) = to_pairs(
            {"prompt": record["prompt"], "chosen": responses[0], "rejected": responses[1]}, path, location
        )
        pool.append(PoolPair(pair.prompt, pair.chosen, pair.rejected, origin=location))
    return pool


def _order(keys: Sequence[float]) -> list[int]:
    """Indices by ascending key; ties keep the pool's order (stable), so orders are reproducible."""
    return sorted(range(len(keys)), key=lambda i: (keys[i], i))


def _values(values, name: str) -> list[float]:
    out = [float(v) for v in torch.as_tensor(values, dtype=torch.float64).reshape(-1)]
    if any(math.isnan(v) for v in out):
        raise ValueError(f"{name} has NaN scores")
    return out


def random_order(n: int, seed: int) -> list[int]:
    """0..n-1 shuffled with `random.Random(seed)`: the same order for the same seed on every machine."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def by_reward_uncertainty(scores_a: Sequence[float], scores_b: Sequence[float]) -> list[int]:
    """Pool indices, the pair whose Bradley–Terry probability σ(r_a − r_b) is closest to 0.5 first.

    |σ(d) − 0.5| grows with |d| (σ is increasing and σ(−d) = 1 − σ(d)), so the order is that of
    |r_a − r_b|; sorting on the difference itself keeps pairs apart that σ would round to exactly 1 in
    floating point (d > 37).
    """
    a, b = _values(scores_a, "scores_a"), _values(scores_b, "scores_b")
    if len(a) != len(b):
        raise ValueError(f"scores_a has {len(a)} scores, scores_b {len(b)}")
    return _order([abs(x - y) for x, y in zip(a, b)])


def dpo_margins(policy_logps, reference_logps, beta: float) -> list[float]:
    """β [(π_a − ref_a) − (π_b − ref_b)] per pair. Log-probs are (n, 2) per pair (a, b), or flat (2n,)
    with a at 2i and b at 2i + 1, the layout `DPOModel` returns."""
    pol, ref = _values(policy_logps, "policy_logps"), _values(reference_logps, "reference_logps")
    if len(pol) != len(ref) or len(pol) % 2:
        raise ValueError(f"expected two log-probs per pair in both: policy has {len(pol)}, reference {len(ref)}")
    return [beta * ((pol[i] - ref[i]) - (pol[i + 1] - ref[i + 1])) for i in range(0, len(pol), 2)]


def by_dpo_margin(policy_logps, reference_logps, beta: float) -> list[int]:
    """Pool indices, the smallest |DPO implicit-reward margin| first (`dpo_margins`)."""
    return _order([abs(m) for m in dpo_margins(policy_logps, reference_logps, beta)])


def reward_scores(
    pool: Sequence[PoolPair], model: str, max_length: int = 2048, batch_size: int = 8
) -> tuple[list[float], list[float]]:
    """A reward model's scores of every pool pair's two sides, (scores_a, scores_b), read exactly as
    `alignline score` reads them (chat template, last token)."""
    scorer = RewardScorer(model, max_length)
    prompts = [p.prompt for p in pool]
    return (scorer(prompts, [p.a for p in pool], batch_size), scorer(prompts, [p.b for p in pool], batch_size))


@torch.no_grad()
def dpo_logps(
    pool: Sequence[PoolPair], policy: str, reference: str | None = None, max_length: int = 2048, batch_size: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probs of both sides under a DPO policy and its reference -> ((n, 2), (n, 2)), a then b.

    The reference is what `method: dpo` trains against (`frozen_reference`): `reference` by path, or, for
    an adapter, the base model with the adapter switched off. A fully fine-tuned policy needs `reference`
    (without it the margins would all be 0)."""
    tokenizer = load_tokenizer_for(policy)
    model = load_model(policy).eval()
    if reference is None and not hasattr(model, "disable_adapter"):
        raise ModelError(f"model '{policy}': a fully fine-tuned policy needs its reference model (--reference)")
    wrapped = DPOModel(model, frozen_reference(model, reference, "float32"), reference_free=False).eval()
    units = []
    for pair in pool:
        unit = tokenize_pair(tokenizer, pair.as_preference(), max_length)
        if unit is None:
            raise DataError(pair.origin or "<pool>", f"the prompt alone fills max_length {max_length}")
        units.append(unit)
    pol, ref = [], []
    for start in range(0, len(units), batch_size):
        rows = [[i] for i in range(start, min(start + batch_size, len(units)))]
        batch = collate_pairs(units, rows, tokenizer.pad_token_id, max_length, use_weights=False)
        p, r, _ = wrapped(**batch)
        pol.append(p.reshape(-1, 2))
        ref.append(r.reshape(-1, 2))
    return torch.cat(pol), torch.cat(ref)


def order_by(
    strategy: str, *, n: int, seed: int = 0, scores: tuple | None = None, logps: tuple | None = None, beta: float = 0.1
) -> list[int]:
    """One strategy by name (`STRATEGIES`): what the CLI and the simulation call."""
    if strategy == "random":
        return random_order(n, seed)
    if strategy == "uncertainty":
        return by_reward_uncertainty(*scores)
    if strategy == "margin":
        return by_dpo_margin(*logps, beta)
    raise ValueError(f"unknown strategy '{strategy}' (one of {', '.join(STRATEGIES)})")
