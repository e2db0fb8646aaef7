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
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
_CACHE: dict[str, int] = {}
_CACHE_LIMIT = 2_000_000
# Odd 64-bit multipliers, one per n-gram position (fixed: hashes are stable across runs and machines).
_MULTIPLIERS = np.random.RandomState(20240613).randint(0, 1 << 62, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(
    1
)


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalized(text: str) -> str:
    """The text as the duplicate checks see it: lowercase words joined by single spaces."""
    return " ".join(words(text))


def text_hash(text: str) -> int:
    """64-bit hash of the normalized text (exact-duplicate key)."""
    return int.from_bytes(hashlib.blake2b(normalized(text).encode(), digest_size=8).digest(), "little")


def _hash_word(w: str) -> int:
    b = w.encode()
    h = _CACHE[w] = zlib.crc32(b) | (zlib.crc32(b, 0x9E3779B9) << 32)
    return h


def word_hashes(ws: list[str]) -> np.ndarray:
    """64-bit hashes of words (stable across runs and machines: two seeded CRC32s, cached)."""
    if len(_CACHE) > _CACHE_LIMIT:
        _CACHE.clear()
    get = _CACHE.get
    return np.fromiter([get(w) or _hash_word(w) for w in ws], dtype=np.uint64, count=len(ws))


@dataclass(slots=True)
class WordBatch:
    """The word hashes of a batch of records, flat, with each record's word count."""

    flat: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, word_lists: list[list[str]]) -> WordBatch:
        flat = word_hashes([w for ws in word_lists for w in ws])
        return cls(flat, np.fromiter((len(ws) for ws in word_lists), dtype=np.int64, count=len(word_lists)))

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray]) -> WordBatch:
        flat = np.concatenate(arrays) if arrays else np.empty(0, np.uint64)
        return cls(flat.astype(np.uint64), np.array([len(x) for x in arrays], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.lengths)


def ngram_hashes(batch: WordBatch | list[np.ndarray], n: int, short: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of each record, and the record index of each hash (ascending).

    A record shorter than `n` words gives one hash of all its words when `short` (so that short texts
    still have a shingle), none otherwise; an empty record gives none.
    """
    if not isinstance(batch, WordBatch):
        batch = WordBatch.from_arrays(batch)
    if n > len(_MULTIPLIERS):
        raise ValueError(f"n-grams up to {len(_MULTIPLIERS)} words are supported, got {n}")
    flat, lengths = batch.flat, batch.lengths
    total = len(flat)
    if total == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    ends = np.cumsum(lengths)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    hashes, owners = [], []
    if total >= n:
        acc = np.zeros(total - n + 1, dtype=np.uint64)
        for k in range(n):
            acc += flat[k : total - n + 1 + k] * _MULTIPLIERS[k]
        first = owner[: total - n + 1]
        valid = np.arange(total - n + 1) + n <= ends[first]
        hashes.append(acc[valid])
        owners.append(first[valid])
    if short:
        small = np.nonzero((lengths > 0) & (lengths < n))[0]
        if len(small):
            starts = ends - lengths
            extra = np.zeros(len(small), dtype=np.uint64)
            for k in range(n - 1):  # position k of each short record, where it has one
                has = lengths[small] > k
                extra[has] += flat[starts[small[has]] + k] * _MULTIPLIERS[k]
            hashes.append(extra)
            owners.append(small.astype(np.int64))
    if not hashes:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    h, o = np.concatenate(hashes), np.concatenate(owners)
    if len(hashes) > 1:
        order = np.argsort(o, kind="stable")
        h, o = h[order], o[order]
    return h, o


def fold32(h: np.ndarray) -> np.ndarray:
    """64-bit hashes to 32 bits (the MinHash input width)."""
    return ((h >> np.uint64(32)) ^ h).astype(np.uint32)
