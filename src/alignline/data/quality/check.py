"""`alignline data check`: every check in one streaming pass over the training split, then the gates.

The evaluation split is read first (into the leakage index); the training split then streams through
all checks in batches, so memory grows by a few dozen bytes per record, not by the records. A second
pass fetches the texts of the few records the report shows (duplicate clusters, leak sources).
"""

from __future__ import annotations

import dataclasses
import time

from tqdm import tqdm

from alignline.data.quality.coverage import CoverageCheck
from alignline.data.quality.dedup import DuplicateFinder
from alignline.data.quality.formatcheck import FormatCheck
from alignline.data.quality.gates import GateConfig, advisory_warnings, gate, split_advisory
from alignline.data.quality.items import Item, iter_items
from alignline.data.quality.leakage import LeakageCheck
from alignline.data.quality.minhash import MinHasher
from alignline.data.quality.output import check_inputs
from alignline.data.quality.pii import PiiCheck
from alignline.data.quality.preference import PreferenceCheck
from alignline.data.quality.text import WordBatch, text_hash, words
from alignline.data.sources import file_sha256

BATCH = 2048
SHOW_CLUSTERS = 20
SHOW_MEMBERS = 5


def item_batches(items, size: int = BATCH):
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _near_text(item: Item) -> str:
    """What leakage compares for near-copies: the prompt and the answer (the whole text for plain text)."""
    return item.text if item.kind == "text" else f"{item.prompt}\n{item.response}"


def _read_eval(path: str, leak: LeakageCheck | None, fmt: FormatCheck, progress: bool, reading: dict) -> None:
    with tqdm(desc=f"eval {path}", unit=" records", disable=not progress, dynamic_ncols=True) as bar:
        _eval_batches(path, leak, fmt, bar, reading)


def _eval_batches(path: str, leak: LeakageCheck | None, fmt: FormatCheck, bar, reading: dict) -> None:
    for batch in item_batches(iter_items(path, **reading)):
        for item in batch:
            fmt.add(item)
        if leak is not None:
            leak.add_eval(
                [it.rid for it in batch],
                [it.prompt for it in batch],
                [text_hash(it.prompt) for it in batch],
                WordBatch.of([words(_near_text(it)) for it in batch]),
                WordBatch.of([words(it.prompt) for it in batch]),
            )
        bar.update(len(batch))


def _fetch_texts(paths: list[str], wanted: set[int], reading: dict) -> dict[int, dict]:
    out = {}
    if not wanted:
        return out
    for item in iter_items(paths, **reading):
        if item.index in wanted:
            out[item.index] = {"id": item.rid, "text": item.text[:600]}
            if len(out) == len(wanted):
                break
    return out


def run_checks(
    train_paths: list[str],
    eval_path: str | None,
    cfg: GateConfig,
    tokenizer=None,
    progress: bool = True,
    split: str = "train",
    columns: dict[str, str] | None = None,
    eval_split: str | None = None,
) -> dict:
    """Every check and gate over the files read as training reads them: `split`/`eval_split` and `columns` are
    the recipe's `data.split`/`data.eval_split` and `data.columns` (`--split`, `--column` on the command line)."""
    started = time.time()
    reading = {"split": split, "columns": columns}
    eval_reading = {"split": eval_split or split, "columns": columns}
    train_paths = [str(p) for p in train_paths]
    check_inputs(train_paths + ([str(eval_path)] if eval_path else []))
    hasher = MinHasher(cfg.dedup.num_perm, cfg.dedup.ngram, cfg.dedup.threshold)
    leak_hasher = MinHasher(cfg.dedup.num_perm, cfg.dedup.ngram, cfg.leakage.threshold)
    dups = DuplicateFinder(hasher) if cfg.dedup.enabled else None
    leak = (
        LeakageCheck(leak_hasher, cfg.leakage.ngram, cfg.leakage.ngram_share)
        if cfg.leakage.enabled and eval_path
        else None
    )
    fmt = FormatCheck(tokenizer, cfg.max_length)
    eval_fmt = FormatCheck()
    pii = PiiCheck(cfg.pii.types) if cfg.pii.enabled else None
    cov = CoverageCheck(cfg.coverage.min_category_share)
    pref = PreferenceCheck()
    try:
        if eval_path:
            _read_eval(eval_path, leak, eval_fmt, progress, eval_reading)
        with tqdm(desc="train", unit=" records", disable=not progress, dynamic_ncols=True) as bar:
            for batch in item_batches(iter_items(train_paths, **reading)):
                for item in batch:
                    fmt.add(item)
                    if pii is not None:
                        pii.add(item.rid, item.text)
                    category = cov.add(item)
                    if item.kind == "preference":
                        pref.add(item, category)
                text_words = [words(it.text) for it in batch]
                text_batch = WordBatch.of(text_words)
                if dups is not None:
                    dups.add(text_batch, [" ".join(w) for w in text_words])
                if leak is not None:
                    near = WordBatch.of([words(_near_text(it)) for it in batch])
                    leak.add_train([it.rid for it in batch], [text_hash(it.prompt) for it in batch], near, text_batch)
                bar.update(len(batch))
        dup = dups.finish() if dups is not None else None
    finally:
        if dups is not None:
            dups.close()
    report = {"alignline_data_check": 1, "passed": None, "gates": [], "warnings": []}
    report["inputs"] = {
        "train": [{"path": p, "sha256": file_sha256(p)} for p in train_paths],
        "eval": {"path": eval_path, "sha256": file_sha256(eval_path)} if eval_path else None,
    }
    report["records"] = fmt.total
    report["format"] = fmt.result()
    report["coverage"] = cov.result()
    report["pii"] = pii.result() if pii is not None else None
    report["preference"] = pref.result() if pref.total else None
    report["leakage"] = leak.result() if leak is not None else None
    report["eval"] = (
        {
            "records": eval_fmt.total,
            "invalid": eval_fmt.invalid,
            "problems": eval_fmt.counts,
            "invalid_ids": eval_fmt.ids[:20],
        }
        if eval_path
        else None
    )
    if dup is not None:
        clusters = dup.clusters(SHOW_CLUSTERS)
        wanted = {m for c in clusters for m in c["members"][:SHOW_MEMBERS]}
        texts = _fetch_texts(train_paths, wanted, reading)
        for c in clusters:
            c["examples"] = [texts[m] for m in c["members"][:SHOW_MEMBERS] if m in texts]
            c["member_ids"] = [texts[m]["id"] for m in c["members"][:SHOW_MEMBERS] if m in texts]
            del c["members"]
        report["duplicates"] = {
            "records": dup.n,
            "exact_duplicates": dup.exact_removed,
            "near_duplicates": dup.near_removed,
            "removed_by_dedup": dup.removed,
            "duplicate_share": dup.share,
            "clusters": dup.cluster_count(),
            "largest_clusters": clusters,
            "method": {
                "shingle": f"word {cfg.dedup.ngram}-grams",
                "num_perm": cfg.dedup.num_perm,
                "threshold": cfg.dedup.threshold,
                "bands": hasher.bands,
                "rows": hasher.rows,
            },
        }
    else:
        report["duplicates"] = None
    report["gates"], report["advisory_gates"] = split_advisory(gates_for(report, cfg, tokenizer is not None), cfg)
    report["warnings"] = warnings_for(report, cfg) + advisory_warnings(report["advisory_gates"])
    report["passed"] = all(g["passed"] for g in report["gates"])
    report["config"] = dataclasses.asdict(cfg)
    report["seconds"] = round(time.time() - started, 2)
    return report


def gates_for(r: dict, cfg: GateConfig, has_tokenizer: bool) -> list[dict]:
    g = []
    if r["duplicates"] is not None:
        g.append(
            gate(
                "duplicate_share",
                r["duplicates"]["duplicate_share"],
                "<=",
                cfg.dedup.max_duplicate_share,
                "duplicates",
                "records a dedup would remove (exact + near) / records",
            )
        )
    if r["leakage"] is not None:
        g.append(
            gate(
                "leaked_eval_items",
                r["leakage"]["leaked"],
                "<=",
                cfg.leakage.max_leaked,
                "leakage",
                "evaluation items found in the training split",
            )
        )
    if r["pii"] is not None:
        p = cfg.pii
        g.append(
            gate(
                "pii_sensitive_records",
                r["pii"]["sensitive_records"],
                "<=",
                p.max_sensitive_records,
                "pii",
                "records with a card number, IBAN, SSN or secret",
            )
        )
        g.append(
            gate(
                "pii_record_share",
                r["pii"]["record_share"],
                "<=",
                p.max_record_share,
                "pii",
                "records with any PII / records",
            )
        )
    f = r["format"]
    if cfg.format.enabled:
        g.append(
            gate(
                "format_invalid_share",
                f["invalid_share"],
                "<=",
                cfg.format.max_invalid_share,
                "format",
                "records with a structural problem / records",
            )
        )
        if f["truncated_share"] is not None:
            g.append(
                gate(
                    "truncated_share",
                    f["truncated_share"],
                    "<=",
                    cfg.format.max_truncated_share,
                    "format",
                    f"records over max_length={cfg.max_length} tokens / records",
                )
            )
    c = r["coverage"]
    if cfg.coverage.enabled and c["refusal_share"] is not None:
        g.append(
            gate(
                "refusal_share",
                c["refusal_share"],
                "between",
                [cfg.coverage.min_refusal_share, cfg.coverage.max_refusal_share],
                "coverage",
                "refusals / chat records",
            )
        )
    p, pc = r["preference"], cfg.preference
    if p is not None and pc.enabled:
        g.append(gate("identical_pairs", p["identical"], "<=", pc.max_identical, "preference", "chosen == rejected"))
        g.append(gate("tie_share", p["tie_share"], "<=", pc.max_tie_share, "preference", "ties / pairs"))
        g.append(
            gate(
                "duplicate_pair_share",
                p["duplicate_pair_share"],
                "<=",
                pc.max_duplicate_pair_share,
                "preference",
                "repeated (prompt, chosen, rejected) / pairs",
            )
        )
        g.append(
            gate(
                "chosen_longer_share",
                p["chosen_longer_share"],
                "between",
                [pc.min_chosen_longer_share, pc.max_chosen_longer_share],
                "preference",
                "pairs whose chosen answer is longer / pairs",
            )
        )
        g.append(
            gate(
                "adversarial_share",
                p["adversarial_share"],
                "between",
                [pc.min_adversarial_share, pc.max_adversarial_share],
                "preference",
                "pairs with a prompt that asks for harm / pairs",
            )
        )
        if p["synthetic_share"] is not None:
            g.append(
                gate(
                    "synthetic_share",
                    p["synthetic_share"],
                    "<=",
                    pc.max_synthetic_share,
                    "preference",
                    "pairs with a synthetic source / pairs",
                )
            )
        alpha = p["agreement"]["krippendorff_alpha"]
        if alpha is not None:
            g.append(
                gate(
                    "annotator_agreement",
                    alpha,
                    ">=",
                    pc.min_agreement,
                    "preference",
                    "Krippendorff's alpha over pairs with several labels",
                )
            )
    return g


def warnings_for(r: dict, cfg: GateConfig) -> list[str]:
    w = []
    c = r["coverage"]
    if c["under_represented"]:
        w.append(
            f"under-represented categories (under {cfg.coverage.min_category_share:.0%} of records): "
            + ", ".join(f"{k} ({c['shares'][k]:.1%})" for k in c["under_represented"])
        )
    if c["missing"]:
        w.append(f"categories with no records (heuristic classifier): {', '.join(c['missing'])}")
    p = r["preference"]
    if p is not None:
        if p["chosen_longer_share"] < 0.25:
            low = [k for k, v in p["chosen_longer_by_category"].items() if v["chosen_longer_share"] < 0.25]
            w.append(
                f"brevity bias: the chosen answer is longer in only {p['chosen_longer_share']:.0%} of pairs "
                f"(categories: {', '.join(low)}); the pairs may teach 'shorter is better'"
            )
        if p["confidence"]["below_0.6"]:
            w.append(f"{p['confidence']['below_0.6']} pairs have annotator confidence below 0.6")
    f = r["format"]
    if f["length_unit"] == "characters" and r["records"]:
        w.append(
            "lengths are in characters (no tokenizer given): pass --model (and --max-length) to measure them "
            "in tokens and check truncation"
        )
    elif f["truncated_share"] is None and r["records"]:
        w.append("lengths are in tokens; pass --max-length to check truncation against the training max_length")
    if r["eval"] and r["eval"]["invalid"]:
        w.append(f"{r['eval']['invalid']} evaluation records have a structural problem")
    return w
