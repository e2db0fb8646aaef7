"""Does active learning pay? A simulation on pairs whose labels we already hold.

The pool's labels are hidden; each round the strategy picks the next `batch` pairs, their held-out labels
are "bought", both learners are retrained, and their preference accuracy is measured on a separate
labelled test split. Every strategy starts from the same random seed set for a given seed.

Retraining must be cheap (hundreds of refits per run on two CPU cores), so the base model stays frozen
and its features are computed once (`extract_features`):
- The reward model is a Bradley–Terry head on the last-token hidden state, the state `method: rm`'s
  `score` layer reads: r(y) = w·h(y), P(a ≻ b) = σ(w·(h_a − h_b)). Training only that head on frozen
  features is `method: rm` with the decoder frozen; a logistic regression, fitted by L-BFGS in
  milliseconds. It scores the pool for `by_reward_uncertainty`.
- The DPO policy is linearized around the reference in δ, a per-dimension rescaling of the final hidden
  state (a diagonal adapter in front of the output layer): log π_δ(y|x) ≈ log π_ref(y|x) + δ·φ(y), with
  φ(y) = Σ_t h_t ⊙ ∂ log p(y_t) / ∂h_t at δ = 0, one backward pass per response through the output layer
  (`losses.token_logprobs`). DPO's loss −log σ(β δ·(φ_c − φ_r)) is then a logistic regression too, and
  its implicit-reward margins rank the pool for `by_dpo_margin`. First order only: close to DPO's first
  steps, not to a long run, which with LoRA would take minutes per round on CPU.
Accuracy is reported for both learners under every strategy: uncertainty sampling is meant to help the
reward model, margin sampling the DPO policy, and the cross terms show whether either choice transfers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from alignline.annotate.active import (
    STRATEGIES,
    by_dpo_margin,
    by_reward_uncertainty,
    random_order,
)
from alignline.data.preference import PreferencePair, tokenize_pair
from alignline.data.templates import IGNORE
from alignline.errors import ModelError
from alignline.losses.token_logprobs import token_logprobs
from alignline.methods.pairs import collate_pairs
from alignline.models.fast.forward import decoder_hidden
from alignline.models.fast.head import output_head
from alignline.models.peft_unwrap import unwrap
from alignline.models.reference import per_sequence_sums

LEARNERS = ("rm", "dpo")


@dataclass
class PairFeatures:
    """Frozen-model features of n pairs, side a then side b, and the labels (held out from strategies)."""

    hidden: torch.Tensor  # (n, 2, H) last-token hidden state of a and b
    grad: torch.Tensor  # (n, 2, H) φ(y) = d log π(y|x) / d δ at δ = 0
    ref_logps: torch.Tensor  # (n, 2) sequence log-probs under the reference (the frozen model)
    labels: torch.Tensor  # (n,) 1.0 where a is preferred, 0.0 where b is

    def __len__(self) -> int:
        return self.labels.numel()

    def subset(self, index) -> PairFeatures:
        return PairFeatures(self.hidden[index], self.grad[index], self.ref_logps[index], self.labels[index])


def orient(pairs: Sequence[PreferencePair], seed: int) -> tuple[list[PreferencePair], list[float]]:
    """Labelled pairs shown as (a, b) in a seeded random order -> (pairs with a in `chosen`, labels):
    without this, 'a is always preferred' would be learnable from nothing."""
    rng = random.Random(seed)
    out, labels = [], []
    for p in pairs:
        if rng.random() < 0.5:
            out.append(PreferencePair(p.prompt, p.rejected, p.chosen, origin=p.origin, tools=p.tools))
            labels.append(0.0)
        else:
            out.append(p)
            labels.append(1.0)
    return out, labels


@torch.no_grad()
def extract_features(
    model,
    tokenizer,
    pairs: Sequence[PreferencePair],
    labels: Sequence[float],
    max_length: int = 512,
    batch_size: int = 8,
    progress: bool = False,
) -> PairFeatures:
    """One forward pass of the frozen causal LM per pair (both sides packed) -> `PairFeatures`."""
    from tqdm import tqdm

    base = unwrap(model)
    head = output_head(base)
    if isinstance(head, str):
        raise ModelError(f"active-learning features need a plain output layer: {head}")
    units = []
    for p in pairs:
        unit = tokenize_pair(tokenizer, p, max_length)
        if unit is None:
            raise ModelError(f"{p.origin or 'a pair'}: the prompt alone fills max_length {max_length}")
        units.append(unit)
    hidden, grad, logps = [], [], []
    for start in tqdm(range(0, len(units), batch_size), desc="features", unit="batch", disable=not progress):
        rows = [[i] for i in range(start, min(start + batch_size, len(units)))]
        batch = collate_pairs(units, rows, tokenizer.pad_token_id, max_length, use_weights=False)
        states = decoder_hidden(base, base.get_decoder(), batch["input_ids"], batch["position_ids"], False)
        n_seq = batch["last_index"].numel()
        hidden.append(states.reshape(-1, states.shape[-1])[batch["last_index"]].float())  # (S, H)
        keep = batch["targets"] != IGNORE
        h = states[keep].float().detach().requires_grad_()  # (N, H) positions that predict a response token
        with torch.enable_grad():
            logp = token_logprobs(
                h, head.weight.detach(), batch["targets"][keep], bias=head.bias, scale=head.scale, softcap=head.softcap
            )
            (dh,) = torch.autograd.grad(logp.sum(), h)  # row t: d log p(y_t) / d h_t
        segment = batch["target_segment"]
        phi = (h.detach() * dh).new_zeros(n_seq, h.shape[1]).index_add_(0, segment, h.detach() * dh)
        grad.append(phi)  # (S, H): d/dδ of log p with h ⊙ (1 + δ) in place of h, at δ = 0
        logps.append(per_sequence_sums(logp.detach(), segment, n_seq))
    H = hidden[0].shape[-1]
    return PairFeatures(
        torch.cat(hidden).reshape(-1, 2, H).double(),
        torch.cat(grad).reshape(-1, 2, H).double(),
        torch.cat(logps).reshape(-1, 2).double(),
        torch.tensor(list(labels), dtype=torch.float64),
    )


def fit_bradley_terry(diff: torch.Tensor, labels: torch.Tensor, l2: float) -> torch.Tensor:
    """(m, H) feature differences a − b and (m,) labels (1: a preferred) -> (H,) weights minimizing
    mean softplus(−s w·d) + l2/2 |w|², s = ±1. No bias: swapping a and b must flip the prediction."""
    x = diff * (2 * labels - 1)[:, None]  # oriented: the preferred side minus the other
    w = torch.zeros(diff.shape[1], dtype=diff.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=100, tolerance_grad=1e-6, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-(x @ w)).mean() + 0.5 * l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach()


def accuracy(margins: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of pairs whose margin (a over b) has the label's sign; a zero margin counts half."""
    right = torch.where(labels > 0.5, margins > 0, margins < 0).double()
    return float((right + 0.5 * (margins == 0).double()).mean())


class Learners:
    """Both learners' design matrices, scaled once by the pool's per-dimension spread (no labels used), so one
    l2 strength suits both and every hidden dimension counts alike."""

    def __init__(self, pool: PairFeatures, test: PairFeatures, beta: float, l2: float):
        self.beta, self.l2 = beta, l2
        self.pool, self.test = pool, test
        self.scale = {}
        for name, feats in (("rm", pool.hidden), ("dpo", beta * pool.grad)):
            d = feats[:, 0] - feats[:, 1]
            self.scale[name] = d.std(0).clamp_min(1e-12)

    def diff(self, name: str, feats: PairFeatures) -> torch.Tensor:
        d = (
            feats.hidden[:, 0] - feats.hidden[:, 1]
            if name == "rm"
            else self.beta * (feats.grad[:, 0] - feats.grad[:, 1])
        )
        return d / self.scale[name]

    def fit(self, name: str, labelled: list[int]) -> torch.Tensor:
        return fit_bradley_terry(self.diff(name, self.pool)[labelled], self.pool.labels[labelled], self.l2)

    def test_accuracy(self, name: str, w: torch.Tensor) -> float:
        return accuracy(self.diff(name, self.test) @ w, self.test.labels)

    def test_accuracy_by_group(self, name: str, w: torch.Tensor, groups: Sequence[str]) -> dict[str, float]:
        margins = self.diff(name, self.test) @ w
        out = {}
        for group in sorted(set(groups)):
            index = [i for i, g in enumerate(groups) if g == group]
            out[group] = accuracy(margins[index], self.test.labels[index])
        return out

    def reward_scores(self, w: torch.Tensor, index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The reward head's scores of a and b (scaled features: differences are what count)."""
        h = self.pool.hidden[index] / self.scale["rm"]
        return h[:, 0] @ w, h[:, 1] @ w

    def policy_logps(self, w: torch.Tensor, index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy, reference) log-probs (k, 2) of the linearized DPO policy: ref + δ·φ, δ = w / scale."""
        delta = w / self.scale["dpo"]
        ref = self.pool.ref_logps[index]
        return ref + self.pool.grad[index] @ delta, ref


def simulate(
    pool: PairFeatures,
    heldout: PairFeatures,
    strategy: str,
    budget_steps: int,
    batch: int = 8,
    seed_size: int = 8,
    seed: int = 0,
    beta: float = 0.1,
    l2: float = 0.1,
    learners: Learners | None = None,
) -> list[dict]:
    """Annotate `seed_size` random pairs, then `budget_steps` rounds of `batch` pairs chosen by `strategy`;
    after each, retrain both learners and measure them on `heldout`. -> one entry per round:
    `{"labels", "rm_accuracy", "dpo_accuracy", "bought"}`, the seed set first; `bought` holds the pool indices
    labelled in that round."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy '{strategy}' (one of {', '.join(STRATEGIES)})")
    learners = learners or Learners(pool, heldout, beta, l2)
    order = random_order(len(pool), seed)
    labelled, rest = order[:seed_size], order[seed_size:]  # rest stays in random order: the baseline's queue
    curve, bought = [], list(labelled)
    for step in range(budget_steps + 1):
        weights = {name: learners.fit(name, labelled) for name in LEARNERS}
        curve.append(
            {
                "labels": len(labelled),
                **{f"{name}_accuracy": learners.test_accuracy(name, w) for name, w in weights.items()},
                "bought": bought,
            }
        )
        if step == budget_steps or not rest:
            break
        if strategy == "random":
            picked = list(range(min(batch, len(rest))))
        elif strategy == "uncertainty":
            picked = by_reward_uncertainty(*learners.reward_scores(weights["rm"], rest))[:batch]
        else:
            picked = by_dpo_margin(*learners.policy_logps(weights["dpo"], rest), beta)[:batch]
        chosen = set(picked)
        bought = [rest[i] for i in picked]
        labelled = labelled + bought
        rest = [r for i, r in enumerate(rest) if i not in chosen]
    return curve


def run_simulation(
    pool: PairFeatures,
    test: PairFeatures,
    strategies: Sequence[str],
    rounds: int,
    batch: int,
    seeds: Sequence[int],
    seed_size: int | None = None,
    beta: float = 0.1,
    l2: float = 0.1,
    pool_groups: Sequence[str] | None = None,
    test_groups: Sequence[str] | None = None,
) -> dict:
    """Every strategy from every seed -> per strategy and learner, accuracy per label count (mean, std, min,
    max over seeds, and each run), plus the ceiling: each learner trained on the whole labelled pool.

    With `pool_groups` and `test_groups` (a category per pair), also where each strategy spent its labels
    (share of the labels bought after the seed set, per group) and each learner's final accuracy per group."""
    seed_size = batch if seed_size is None else seed_size
    learners = Learners(pool, test, beta, l2)
    everything = list(range(len(pool)))
    ceiling = {f"{name}_accuracy": learners.test_accuracy(name, learners.fit(name, everything)) for name in LEARNERS}
    results, by_group = {}, {}
    for strategy in strategies:
        runs = [simulate(pool, test, strategy, rounds, batch, seed_size, s, beta, l2, learners) for s in seeds]
        labels = [point["labels"] for point in runs[0]]
        entry = {"labels": labels}
        for name in LEARNERS:
            values = torch.tensor([[point[f"{name}_accuracy"] for point in run] for run in runs], dtype=torch.float64)
            entry[f"{name}_accuracy"] = {
                "mean": values.mean(0).tolist(),
                "std": values.std(0, unbiased=False).tolist(),
                "min": values.min(0).values.tolist(),
                "max": values.max(0).values.tolist(),
                "runs": values.tolist(),
            }
        results[strategy] = entry
        if pool_groups is not None and test_groups is not None:
            by_group[strategy] = _groups(learners, runs, pool_groups, test_groups)
    out = {
        "pool": len(pool),
        "test": len(test),
        "batch": batch,
        "seed_size": seed_size,
        "rounds": rounds,
        "seeds": list(seeds),
        "beta": beta,
        "l2": l2,
        "ceiling": ceiling,
        "strategies": results,
    }
    if by_group:
        final = {
            name: learners.test_accuracy_by_group(name, learners.fit(name, everything), test_groups)
            for name in LEARNERS
        }
        out["groups"] = {
            "pool_share": _shares([pool_groups[i] for i in everything]),
            "ceiling": final,
            "strategies": by_group,
        }
    return out


def _shares(groups: Sequence[str]) -> dict[str, float]:
    return {g: groups.count(g) / max(len(groups), 1) for g in sorted(set(groups))}


def _groups(learners: Learners, runs: list[list[dict]], pool_groups, test_groups) -> dict:
    """Share of the labels bought after the seed set per group, and the last round's accuracy per group,
    both over all runs."""
    spent = [pool_groups[i] for run in runs for point in run[1:] for i in point["bought"]]
    final: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        labelled = [i for point in run for i in point["bought"]]
        for name in LEARNERS:
            acc = learners.test_accuracy_by_group(name, learners.fit(name, labelled), test_groups)
            for group, value in acc.items():
                final.setdefault(name, {}).setdefault(group, []).append(value)
    return {
        "bought_share": _shares(spent),
        "final_accuracy": {name: {g: sum(v) / len(v) for g, v in per.items()} for name, per in final.items()},
    }
