"""Text normalization and hashing shared by the duplicate and leakage checks.

Text is compared as a sequence of words: NFKC-normalized, case-folded, split on runs of letters and
digits (`\\w+`), so punctuation, case and whitespace never make two records differ. Words are hashed
to 64 bits (two CRC32s with different seeds, cached); a word n-gram hash is a position-weighted sum
of its word hashes, computed for whole batches of records at once with numpy.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib

import numpy as np

_WORD = re.compile(r"\w+")
_CACHE: dict[str, int] = {}
_CACHE_LIMIT = 2_000_000
# Odd 64-bit multipliers, one per n-gram position (fixed: hashes are stable across runs and machines).
_MULTIPLIERS = np.random.RandomState(20240613).randint(0, 1 << 62, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalized(text: str) -> str:
    """The text as the duplicate checks see it: lowercase words joined by single spaces."""
    return " ".join(words(text))


def text_hash(text: str) -> int:
    """64-bit hash of the normalized text (exact-duplicate key)."""
    return int.from_bytes(hashlib.blake2b(normalized(text).encode(), digest_size=8).digest(), "little")


def word_hashes(ws: list[str]) -> np.ndarray:
    out = np.empty(len(ws), dtype=np.uint64)
    cache = _CACHE
    if len(cache) > _CACHE_LIMIT:
        cache.clear()
    for i, w in enumerate(ws):
        h = cache.get(w)
        if h is None:
            b = w.encode()
            h = cache[w] = zlib.crc32(b) | (zlib.crc32(b, 0x9E3779B9) << 32)
        out[i] = h
    return out


def ngram_hashes(per_record: list[np.ndarray], n: int, short: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of each record, and the record index of each hash.

    A record shorter than `n` words gives one hash of all its words when `short` (so that short texts
    still have a shingle), none otherwise; an empty record gives none.
    """
    if n > len(_MULTIPLIERS):
        raise ValueError(f"n-grams up to {len(_MULTIPLIERS)} words are supported, got {n}")
    lengths = np.array([len(w) for w in per_record], dtype=np.int64)
    if not len(per_record) or lengths.sum() == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    flat = np.concatenate(per_record)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    owner = np.repeat(np.arange(len(per_record)), lengths)
    total = len(flat)
    hashes, owners = [], []
    if total >= n:
        acc = np.zeros(total - n + 1, dtype=np.uint64)
        for k in range(n):
            acc += flat[k:total - n + 1 + k] * _MULTIPLIERS[k]
        pos = np.arange(total - n + 1)
        valid = pos + n <= (starts + lengths)[owner[: total - n + 1]]
        hashes.append(acc[valid])
        owners.append(owner[: total - n + 1][valid])
    if short:
        small = np.nonzero((lengths > 0) & (lengths < n))[0]
        if len(small):
            extra = np.array([int((per_record[i] * _MULTIPLIERS[: lengths[i]]).sum(dtype=np.uint64)) for i in small],
                             dtype=np.uint64)
            hashes.append(extra)
            owners.append(small.astype(np.int64))
    if not hashes:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    h, o = np.concatenate(hashes), np.concatenate(owners)
    order = np.argsort(o, kind="stable")
    return h[order], o[order]


def fold32(h: np.ndarray) -> np.ndarray:
    """64-bit hashes to 32 bits (the MinHash input width)."""
    return ((h >> np.uint64(32)) ^ h).astype(np.uint32)
