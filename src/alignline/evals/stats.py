"""The statistics behind `alignline eval` and `alignline gate`: pure functions on numpy arrays.

- Paired bootstrap: candidate and baseline scored on the same records; resampling records (the same
  indices for both) keeps the pairing, so the interval of the difference is much narrower than two
  independent intervals would suggest. Percentile interval, seeded, all resamples in one (B, n) array.
- McNemar's exact test for two accuracies on the same records: only discordant records carry
  information; under "no difference" each is equally likely to favour either model, so the count
  favouring one is Binomial(b + c, 1/2).
- ECE: expected calibration error with `bins` equal-width confidence bins on [0, 1] (a confidence of
  exactly 1 falls in the last bin): sum over bins of (records in bin / records) * |accuracy - mean confidence|.
- Win rate judged in both orders: preference(a over b) = mean(judge(a, b), 1 - judge(b, a)), so a judge
  that always prefers the first position gives exactly 0.5.
- Length-controlled win rate (after AlpacaEval 2, simplified): a logistic regression of the preference
  on tanh(length difference / its standard deviation); the win rate at zero length difference is
  sigmoid(intercept). AlpacaEval 2 also models instruction difficulty and uses a GLM over many models;
  here one pair of models, two parameters, a small L2 penalty so all-wins stays finite.

Statistics used for metrics are named in `STATS` (arrays in, one value per resample out, the record
axis last), so a metric's per-record arrays plus its statistic's name are enough to recompute it and
its paired intervals later, from a results directory, without the models.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

LC_L2 = 1e-2
"""L2 penalty on the length-control logistic regression's two weights (keeps all-wins finite)."""


def mean_stat(x: np.ndarray) -> np.ndarray:
    return x.mean(-1)


def perplexity_stat(nll: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """exp(total negative log-likelihood / total tokens): the corpus perplexity, not a mean of per-record ones."""
    return np.exp(nll.sum(-1) / np.maximum(tokens.sum(-1), 1))


def perplexity_increase_stat(
    nll: np.ndarray, tokens: np.ndarray, base_nll: np.ndarray, base_tokens: np.ndarray
) -> np.ndarray:
    """perplexity(model) - perplexity(base) on the same records (forgetting measured by perplexity)."""
    return perplexity_stat(nll, tokens) - perplexity_stat(base_nll, base_tokens)


def ece_stat(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> np.ndarray:
    """Expected calibration error with equal-width bins; works on (n,) or (B, n)."""
    conf = np.asarray(confidence, dtype=float)
    corr = np.asarray(correct, dtype=float)
    index = np.clip(np.floor(conf * bins).astype(int), 0, bins - 1)
    onehot = index[..., None] == np.arange(bins)  # (..., n, bins)
    count = onehot.sum(-2)
    gap = np.abs((onehot * corr[..., None]).sum(-2) - (onehot * conf[..., None]).sum(-2))  # |sum acc - sum conf|
    return gap.sum(-1) / np.maximum(count.sum(-1), 1)


def reliability_bins(confidence, correct, bins: int = 10) -> list[dict]:
    """Per bin: range, count, mean confidence, accuracy (the reliability diagram's points)."""
    conf, corr = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    index = np.clip(np.floor(conf * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = index == b
        n = int(sel.sum())
        out.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": n,
                "confidence": float(conf[sel].mean()) if n else None,
                "accuracy": float(corr[sel].mean()) if n else None,
            }
        )
    return out


def length_feature(len_a, len_b) -> np.ndarray:
    """tanh((len_a - len_b) / std): bounded, so a few very long answers cannot dominate the fit."""
    diff = np.asarray(len_a, dtype=float) - np.asarray(len_b, dtype=float)
    scale = diff.std() or 1.0
    return np.tanh(diff / scale)


def lc_win_rate_stat(preference: np.ndarray, length: np.ndarray, l2: float = LC_L2, steps: int = 60) -> np.ndarray:
    """Fit p = sigmoid(w0 + w1 * length) to (soft) preferences by Newton's method; return sigmoid(w0).

    (n,) or (B, n) arrays; all B fits run at once (2 x 2 Newton systems, batched).
    """
    y = np.atleast_2d(np.asarray(preference, dtype=float))
    x = np.atleast_2d(np.asarray(length, dtype=float))
    X = np.stack([np.ones_like(x), x], -1)  # (B, n, 2)
    w = np.zeros((y.shape[0], 2))
    eye = np.eye(2) * l2
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.einsum("bnk,bk->bn", X, w)))
        grad = np.einsum("bnk,bn->bk", X, p - y) + l2 * w
        hess = np.einsum("bnk,bn,bnl->bkl", X, p * (1 - p), X) + eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        w = w - step
        if np.abs(step).max() < 1e-10:
            break
    out = 1 / (1 + np.exp(-w[:, 0]))
    return out if np.ndim(preference) > 1 else out[0]


STATS: dict[str, Callable[..., np.ndarray]] = {
    "mean": mean_stat,
    "perplexity": perplexity_stat,
    "perplexity_increase": perplexity_increase_stat,
    "ece": ece_stat,
    "lc_win_rate": lc_win_rate_stat,
}


def compute(stat: str, arrays: dict[str, np.ndarray], params: dict | None = None) -> float:
    return float(STATS[stat](**{k: np.asarray(v, dtype=float) for k, v in arrays.items()}, **(params or {})))


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) record indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_ci(
    stat: str,
    arrays: dict[str, np.ndarray],
    params: dict | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of one statistic over records."""
    arrays = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    n = len(next(iter(arrays.values())))
    if n == 0:
        return (math.nan, math.nan)
    idx = bootstrap_indices(n, n_boot, seed)
    values = STATS[stat](**{k: v[idx] for k, v in arrays.items()}, **(params or {}))
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_bootstrap(
    stat: str,
    candidate: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    params: dict | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(delta, low, high): statistic(candidate) - statistic(baseline) on the same records, with the
    percentile interval of the paired bootstrap (the same resampled indices for both)."""
    cand = {k: np.asarray(v, dtype=float) for k, v in candidate.items()}
    base = {k: np.asarray(v, dtype=float) for k, v in baseline.items()}
    fn = STATS[stat]
    delta = float(fn(**cand, **(params or {})) - fn(**base, **(params or {})))
    n = len(next(iter(cand.values())))
    if n == 0:
        return (math.nan, math.nan, math.nan)
    idx = bootstrap_indices(n, n_boot, seed)
    diffs = fn(**{k: v[idx] for k, v in cand.items()}, **(params or {})) - fn(
        **{k: v[idx] for k, v in base.items()}, **(params or {})
    )
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return delta, float(lo), float(hi)


def mcnemar_exact(candidate_correct, baseline_correct) -> dict:
    """McNemar's exact test on paired 0/1 outcomes.

    b: candidate right and baseline wrong; c: the reverse. Two-sided p = min(1, 2 * P(X <= min(b, c)))
    for X ~ Binomial(b + c, 1/2); p = 1 when there are no discordant records.
    """
    a = np.asarray(candidate_correct, dtype=float) >= 0.5
    z = np.asarray(baseline_correct, dtype=float) >= 0.5
    b, c = int((a & ~z).sum()), int((~a & z).sum())
    n = b + c
    if n == 0:
        return {"b": b, "c": c, "p_value": 1.0}
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return {"b": b, "c": c, "p_value": min(1.0, 2 * tail)}


def both_order_preference(judge: Callable, prompt, a: str, b: str) -> float | None:
    """Preference for `a` over `b` from a judge asked in both orders (position bias cancels).

    `judge(prompt, first, second)` returns the probability that `first` is better, or None.
    >>> both_order_preference(lambda p, x, y: 1.0, "q", "a", "b")  # always prefers position A
    0.5
    """
    votes = []
    forward = judge(prompt, a, b)
    if forward is not None:
        votes.append(float(forward))
    backward = judge(prompt, b, a)
    if backward is not None:
        votes.append(1.0 - float(backward))
    return sum(votes) / len(votes) if votes else None
