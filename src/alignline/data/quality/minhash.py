"""MinHash signatures for whole batches at once, and LSH band keys.

The permutations are datasketch's (`MinHash(num_perm, seed)`, scheme "affine32": the input hash is
pre-mixed with the MurmurHash3 finalizer, then `a * h + b mod 2^32`), so a signature here equals
`datasketch.MinHash(num_perm, seed, hashfunc=int).update_batch(shingles)`; the tests check that.
Doing it per batch in numpy instead of per record is what makes a million records take minutes.

LSH: the signature is cut into `bands` bands of `rows` values; two records whose band values agree in
any band become a candidate pair. (bands, rows) minimize the weighted false positive and negative
probability at the Jaccard threshold, as in datasketch's MinHashLSH, but with false negatives
weighted 9 to 1 (datasketch: 1 to 1), since every candidate is verified anyway.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from alignline.data.quality.text import WordBatch, fold32, ngram_hashes

_M32 = np.uint32(0xFFFFFFFF)


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix for the affine32 scheme)."""
    h = h.astype(np.uint32, copy=True)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a odd), generated the same way it does."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def signatures_from_shingles(
    shingles: np.ndarray, owner: np.ndarray, n_records: int, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 15
) -> np.ndarray:
    """(n_records, num_perm) uint32 MinHash signatures; a record without shingles gets all 0xFFFFFFFF.

    `owner` (the record of each shingle) must be ascending. The permuted values are laid out
    (num_perm, shingles) so that the per-record minimum reduces along contiguous memory.
    """
    sig = np.full((n_records, len(a)), _M32, dtype=np.uint32)
    if not len(shingles):
        return sig
    mixed = fmix32(shingles)
    for s in range(0, len(mixed), chunk):
        part, own = mixed[s : s + chunk], owner[s : s + chunk]
        phv = a[:, None] * part[None, :] + b[:, None]
        starts = np.concatenate([[0], np.nonzero(np.diff(own))[0] + 1])
        mins = np.minimum.reduceat(phv, starts, axis=1).T
        rows = own[starts]
        sig[rows] = np.minimum(sig[rows], mins)  # a record split across chunks keeps the smaller value
    return sig


class MinHasher:
    """Word n-gram shingles -> MinHash signatures -> LSH band keys."""

    def __init__(self, num_perm: int = 128, ngram: int = 3, threshold: float = 0.8, seed: int = 1):
        self.num_perm, self.ngram, self.threshold = num_perm, ngram, threshold
        self.a, self.b = permutations(num_perm, seed)
        # False negatives weigh 9x: candidates are verified against the signatures, so a false positive
        # costs one comparison, while a missed pair is a duplicate left in. (14 x 9 at 0.8 with 128 perms.)
        self.bands, self.rows = optimal_bands(threshold, num_perm, 0.1, 0.9)
        rng = np.random.RandomState(seed + 7)
        self._band_mult = rng.randint(0, 1 << 62, size=self.rows, dtype=np.uint64) * np.uint64(2) + np.uint64(1)

    def signatures(self, batch: WordBatch | list[np.ndarray]) -> np.ndarray:
        h, owner = ngram_hashes(batch, self.ngram)
        return signatures_from_shingles(fold32(h), owner, len(batch), self.a, self.b)

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """(n, bands) uint64: one key per band (a hash of the band's `rows` values and its index)."""
        used = sig[:, : self.bands * self.rows].astype(np.uint64).reshape(len(sig), self.bands, self.rows)
        keys = (used * self._band_mult).sum(axis=2, dtype=np.uint64)
        keys ^= np.arange(self.bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return keys


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise share of equal signature values (the MinHash estimate of Jaccard similarity)."""
    return (sig_a == sig_b).mean(axis=-1)


def _integrate(f, lo: float, hi: float, steps: int = 200) -> float:
    if hi <= lo:
        return 0.0
    x = np.linspace(lo, hi, steps + 1)
    y = f(x)
    return float(((y[:-1] + y[1:]) / 2 * np.diff(x)).sum())


@lru_cache(maxsize=32)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimizing weighted false positive + false negative probability (datasketch's rule)."""
    best, opt = float("inf"), (1, num_perm)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = _integrate(lambda s, r=rows, b=bands: 1 - (1 - s**r) ** b, 0.0, threshold)
            fn = _integrate(lambda s, r=rows, b=bands: 1 - (1 - (1 - s**r) ** b), threshold, 1.0)
            err = fp * fp_weight + fn * fn_weight
            if err < best:
                best, opt = err, (bands, rows)
    return opt
