"""The commands that write a cleaned copy: `data dedup` (one record per duplicate cluster) and `data redact`."""

from __future__ import annotations

from tqdm import tqdm

from alignline.data.quality.check import item_batches
from alignline.data.quality.dedup import DuplicateFinder
from alignline.data.quality.gates import GateConfig
from alignline.data.quality.items import iter_items
from alignline.data.quality.minhash import MinHasher
from alignline.data.quality.output import check_output_path
from alignline.data.quality.pii import PII_TYPES, redact_value
from alignline.data.quality.text import WordBatch, words
from alignline.data.sources import read_records
from alignline.io import write_records


def _records(paths: list[str]):
    for path in paths:
        for _loc, record in read_records(path, threads=False):  # rewritten as they are, not as threads
            yield record


def dedup_file(paths: list[str], out: str, cfg: GateConfig, progress: bool = True) -> dict:
    """Keep the first record of every duplicate cluster (exact and near); returns the counts."""
    target = check_output_path(out, paths)
    finder = DuplicateFinder(MinHasher(cfg.dedup.num_perm, cfg.dedup.ngram, cfg.dedup.threshold))
    try:
        bar = tqdm(desc="hashing", unit=" records", disable=not progress, dynamic_ncols=True)
        for batch in item_batches(iter_items(paths)):
            ws = [words(it.text) for it in batch]
            finder.add(WordBatch.of(ws), [" ".join(w) for w in ws])
            bar.update(len(batch))
        bar.close()
        result = finder.finish()
    finally:
        finder.close()
    keep = result.keep_mask()
    kept = (
        r
        for i, r in enumerate(
            tqdm(
                _records(paths),
                desc="writing",
                unit=" records",
                total=result.n,
                disable=not progress,
                dynamic_ncols=True,
            )
        )
        if keep[i]
    )
    written = write_records(target, kept)
    return {
        "records": result.n,
        "kept": written,
        "exact_duplicates": result.exact_removed,
        "near_duplicates": result.near_removed,
        "clusters": result.cluster_count(),
        "out": str(target),
    }


def redact_file(paths: list[str], out: str, types=PII_TYPES, progress: bool = True) -> dict:
    """Replace every PII match in every string field with a typed placeholder ([EMAIL], [PHONE], ...)."""
    target = check_output_path(out, paths)
    counts: dict[str, int] = {}
    stats = {"records": 0, "changed": 0}

    def redacted():
        for record in tqdm(
            _records(paths), desc="redacting", unit=" records", disable=not progress, dynamic_ncols=True
        ):
            before = sum(counts.values())
            stats["records"] += 1
            new = redact_value(record, tuple(types), counts)
            stats["changed"] += sum(counts.values()) > before
            yield new

    write_records(target, redacted())
    return {**stats, "replaced": {t: counts.get(t, 0) for t in types}, "out": str(target)}
