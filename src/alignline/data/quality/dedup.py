"""Exact and near-duplicate detection in bounded memory, and the clusters a dedup would collapse.

Streaming: records arrive in batches; per record we keep an 8-byte exact hash and `bands` 8-byte LSH
keys in memory, and write the MinHash signature (4 bytes x num_perm) to a temporary file. At the
end, records sharing a band key become candidate pairs (one sort per band), candidates are verified
against the signatures (estimated Jaccard >= threshold), and connected components of verified pairs
and exact matches are the duplicate clusters. A dedup keeps the first record of each cluster.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

from alignline.data.quality.minhash import MinHasher, jaccard_estimate
from alignline.data.quality.text import WordBatch


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph: each node's label is the smallest node index in it."""
    labels = np.arange(n, dtype=np.int64)
    if not len(left):
        return labels
    while True:
        m = np.minimum(labels[left], labels[right])
        before = labels.copy()
        np.minimum.at(labels, left, m)
        np.minimum.at(labels, right, m)
        while True:  # pointer jumping: point every node at its label's label
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(before, labels):
            return labels


def equal_runs(keys: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (first index of a run of equal keys, each other index of the run), indices ascending."""
    idx = np.arange(len(keys)) if valid is None else np.nonzero(valid)[0]
    if len(idx) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = idx[np.argsort(keys[idx], kind="stable")]
    k = keys[order]
    new_run = np.concatenate([[True], k[1:] != k[:-1]])
    leader = order[np.maximum.accumulate(np.where(new_run, np.arange(len(k)), 0))]
    same = ~new_run
    return leader[same].astype(np.int64), order[same].astype(np.int64)


@dataclass
class DupResult:
    n: int
    labels: np.ndarray
    """Per record: the index of its cluster's first record (itself when unique)."""
    exact_removed: int
    near_removed: int
    exact_labels: np.ndarray

    @property
    def removed(self) -> int:
        return self.exact_removed + self.near_removed

    @property
    def share(self) -> float:
        return self.removed / self.n if self.n else 0.0

    def keep_mask(self) -> np.ndarray:
        return self.labels == np.arange(self.n)

    def clusters(self, limit: int = 20) -> list[dict]:
        """The largest clusters (ties: earliest first), with member indices and whether all are exact copies."""
        if not self.n:
            return []
        sizes = np.bincount(self.labels, minlength=self.n)
        leaders = np.nonzero(sizes > 1)[0]
        leaders = leaders[np.lexsort((leaders, -sizes[leaders]))][:limit]
        out = []
        for lead in leaders:
            members = np.nonzero(self.labels == lead)[0]
            exact = bool(np.all(self.exact_labels[members] == self.exact_labels[members[0]]))
            out.append({"leader": int(lead), "size": int(sizes[lead]), "members": members.tolist(), "exact": exact})
        return out

    def cluster_count(self) -> int:
        if not self.n:
            return 0
        return int((np.bincount(self.labels, minlength=self.n) > 1).sum())


class DuplicateFinder:
    def __init__(self, hasher: MinHasher, workdir: str | None = None):
        self.hasher = hasher
        self.n = 0
        self._exact: list[np.ndarray] = []
        self._bands: list[np.ndarray] = []
        self._has: list[np.ndarray] = []
        self._dir = tempfile.mkdtemp(prefix="alignline-dedup-", dir=workdir)
        self._sig_path = os.path.join(self._dir, "signatures.u32")
        self._sig_file = open(self._sig_path, "wb")

    def add(self, batch: WordBatch, normalized: list[str]) -> np.ndarray:
        """Add a batch (word hashes and normalized texts per record); returns the batch's signatures."""
        sig = self.hasher.signatures(batch)
        self._exact.append(
            np.array(
                [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") for t in normalized],
                dtype=np.uint64,
            )
        )
        self._bands.append(self.hasher.band_keys(sig))
        self._has.append(batch.lengths > 0)
        sig.tofile(self._sig_file)
        self.n += len(normalized)
        return sig

    def finish(self) -> DupResult:
        self._sig_file.close()
        n = self.n
        if n == 0:
            self.close()
            empty = np.empty(0, np.int64)
            return DupResult(0, empty, 0, 0, empty)
        exact = np.concatenate(self._exact)
        bands = np.concatenate(self._bands)
        has = np.concatenate(self._has)
        self._exact = self._bands = self._has = []
        el, er = equal_runs(exact)
        exact_labels = components(n, el, er)
        exact_removed = int(n - len(np.unique(exact)))
        sig = np.memmap(self._sig_path, dtype=np.uint32, mode="r", shape=(n, self.hasher.num_perm))
        lefts, rights = [el], [er]
        for j in range(bands.shape[1]):
            left, right = equal_runs(bands[:, j], has)
            keep = exact_labels[left] != exact_labels[right]  # exact copies are joined already
            left, right = left[keep], right[keep]
            if not len(left):
                continue
            codes = np.unique(left * n + right)  # a pair found in several bands is verified once
            left, right = codes // n, codes % n
            for s in range(0, len(left), 1 << 15):
                lo, ro = left[s : s + (1 << 15)], right[s : s + (1 << 15)]
                ok = jaccard_estimate(sig[lo], sig[ro]) >= self.hasher.threshold
                lefts.append(lo[ok])
                rights.append(ro[ok])
        labels = components(n, np.concatenate(lefts), np.concatenate(rights))
        del sig
        self.close()
        total_removed = int(n - len(np.unique(labels)))
        return DupResult(n, labels, exact_removed, total_removed - exact_removed, exact_labels)

    def close(self) -> None:
        if not self._sig_file.closed:
            self._sig_file.close()
        shutil.rmtree(self._dir, ignore_errors=True)
