"""Evaluation items that the training data already contains.

The evaluation split is read first and held in memory (it is the small one); the training split then
streams past it. An evaluation item is leaked when
- exact: its prompt (the user's side; the whole text for plain text) equals, normalized, a training prompt;
- near: its prompt and answer, and a training record's prompt and answer, have MinHash-estimated
  Jaccard similarity >= the threshold (the answer is included so that two short templated prompts
  asking about different things, "... for copper" and "... for mercury", are not taken for one item);
- ngram: at least `ngram_share` of its prompt's word n-grams (13 words by default, the GPT-3
  decontamination length) occur anywhere in a training record (prompt or answer). Requiring a share
  (half by default, as in the Cosmopedia and open-instruct decontamination) rather than any single
  13-gram keeps shared boilerplate sentences ("Common error codes, and what to do about them.") from
  counting as a leak; 0 means any one shared n-gram.
"""

from __future__ import annotations

import numpy as np

from alignline.data.quality.minhash import MinHasher, jaccard_estimate
from alignline.data.quality.text import WordBatch, ngram_hashes


class LeakageCheck:
    def __init__(self, hasher: MinHasher, ngram: int = 13, ngram_share: float = 0.5):
        self.hasher, self.ngram, self.min_share = hasher, ngram, ngram_share
        self.eval_ids: list[str] = []
        self.eval_prompts: list[str] = []
        self._eval_exact: dict[int, list[int]] = {}
        self._eval_sigs: list[np.ndarray] = []
        self._eval_ngrams: list[np.ndarray] = []
        self.found: dict[int, dict] = {}  # eval index -> {"how": set, "train": first train id, ...}
        self._ready = False

    # ---- the evaluation split
    def add_eval(
        self, rids: list[str], prompts: list[str], exact: list[int], near: WordBatch, prompt: WordBatch
    ) -> None:
        """A batch of evaluation items: prompt texts (shown), prompt hashes, prompt+answer words, prompt words."""
        base = len(self.eval_ids)
        self.eval_ids += rids
        self.eval_prompts += [p[:300] for p in prompts]
        for i, h in enumerate(exact):
            if prompt.lengths[i]:
                self._eval_exact.setdefault(h, []).append(base + i)
        sig = self.hasher.signatures(near)
        sig[near.lengths == 0] = 0  # an empty item matches nothing
        self._eval_sigs.append(sig)
        h, owner = ngram_hashes(prompt, self.ngram, short=False)
        bounds = np.searchsorted(owner, np.arange(len(prompt) + 1))
        for i in range(len(prompt)):
            self._eval_ngrams.append(np.unique(h[bounds[i] : bounds[i + 1]]))

    def _prepare(self) -> None:
        self._ready = True
        n = len(self.eval_ids)
        empty = np.empty((0, self.hasher.num_perm), np.uint32)
        self.eval_sig = np.concatenate(self._eval_sigs) if self._eval_sigs else empty
        keys = self.hasher.band_keys(self.eval_sig)
        self._band_index: dict[int, list[int]] = {}
        for i in range(n):
            if self.eval_sig[i].any():
                for k in keys[i].tolist():
                    self._band_index.setdefault(k, []).append(i)
        self._band_keys = np.fromiter(self._band_index, dtype=np.uint64, count=len(self._band_index))
        all_ng = [g for g in self._eval_ngrams if len(g)]
        self._ngram_set = np.unique(np.concatenate(all_ng)) if all_ng else np.empty(0, np.uint64)
        self._ngram_first: dict[int, str] = {}
        self._exact_keys = np.fromiter(self._eval_exact, dtype=np.uint64, count=len(self._eval_exact))

    def _mark(self, e: int, how: str, train_rid: str, similarity: float | None = None) -> None:
        entry = self.found.setdefault(e, {"how": set(), "train": train_rid})
        entry["how"].add(how)
        if similarity is not None:
            entry["similarity"] = max(entry.get("similarity", 0.0), similarity)

    # ---- the training split, batch by batch
    def add_train(self, rids: list[str], prompt_exact: list[int], near: WordBatch, text: WordBatch) -> None:
        """A batch of training records: prompt hashes, prompt+answer words, all words."""
        if not self._ready:
            self._prepare()
        if not self.eval_ids:
            return
        ph = np.array(prompt_exact, dtype=np.uint64)
        for i in np.nonzero(np.isin(ph, self._exact_keys))[0]:
            for e in self._eval_exact[int(ph[i])]:
                self._mark(e, "exact", rids[i], 1.0)
        if len(self._band_keys):
            sig = self.hasher.signatures(near)
            keys = self.hasher.band_keys(sig)
            rows, _cols = np.nonzero(np.isin(keys, self._band_keys))
            pairs = {
                (int(r), e)
                for r in rows.tolist()
                if near.lengths[r]
                for k in keys[r].tolist()
                for e in self._band_index.get(k, ())
            }
            if pairs:
                tr, ev = np.array(sorted(pairs)).T
                sim = jaccard_estimate(sig[tr], self.eval_sig[ev])
                for t, e, s in zip(tr.tolist(), ev.tolist(), sim.tolist()):
                    if s >= self.hasher.threshold:
                        self._mark(e, "near", rids[t], s)
        if len(self._ngram_set):
            h, owner = ngram_hashes(text, self.ngram, short=False)
            hit = np.isin(h, self._ngram_set)
            for g, o in zip(h[hit].tolist(), owner[hit].tolist()):
                self._ngram_first.setdefault(g, rids[o])

    def result(self, keep: int = 200) -> dict:
        if not self._ready:
            self._prepare()
        matched = np.fromiter(self._ngram_first, dtype=np.uint64, count=len(self._ngram_first))
        for e, grams in enumerate(self._eval_ngrams):
            if not len(grams) or not len(matched):
                continue
            hits = np.isin(grams, matched)
            share = float(hits.mean())
            if hits.any() and share >= self.min_share:
                first = self._ngram_first[int(grams[np.argmax(hits)])]
                self._mark(e, "ngram", first)
                self.found[e]["ngram_share"] = round(share, 4)
        leaked = sorted(self.found)
        by = {how: sum(how in self.found[e]["how"] for e in leaked) for how in ("exact", "near", "ngram")}
        items = [
            {
                "eval_id": self.eval_ids[e],
                "how": sorted(self.found[e]["how"]),
                "train_id": self.found[e]["train"],
                "similarity": round(self.found[e].get("similarity", 0.0), 4) or None,
                "ngram_share": self.found[e].get("ngram_share"),
                "eval_prompt": self.eval_prompts[e],
            }
            for e in leaked[:keep]
        ]
        return {
            "eval_items": len(self.eval_ids),
            "leaked": len(leaked),
            "leaked_share": len(leaked) / max(1, len(self.eval_ids)),
            "by_method": by,
            "items": items,
            "items_truncated": len(leaked) > keep,
        }
