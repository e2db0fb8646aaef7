"""`alignline data check | dedup | redact | audit sample | audit score`: the data quality gates;
`alignline data show`: one record as the model sees it.

`data check` and `data show` read files as training does: `--split NAME` (data.split), `--column OUR=THEIR`
(data.columns, repeatable); a LLaMA-Factory entry is named as `PATH/dataset_info.json#ENTRY`.

Exit codes: 0 every gate passes, 1 a gate fails, 2 bad input (one line naming file, record, field).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from alignline.errors import UserError


def _print_gates(gates: list[dict], report: dict | None = None) -> None:
    from alignline.data.quality.explain import explain

    for g in gates:
        t = g["threshold"]
        thr = f"{g['op']} {t}" if g["op"] != "between" else f"in [{t[0]}, {t[1]}]"
        value = f"{g['value']:.4g}" if isinstance(g["value"], float) else g["value"]
        why = explain(g, report) if report is not None and not g["passed"] else ""
        print(f"{'PASS' if g['passed'] else 'FAIL'}  {g['name']:<24} {value!s:<10} {thr}" + (f": {why}" if why else ""))


def _config(args, **overrides):
    from alignline.data.quality.gates import load_gate_config

    return load_gate_config(getattr(args, "config", None), **overrides)


def _cmd_check(args) -> int:
    from alignline.data.quality.check import run_checks
    from alignline.data.quality.report import write_report

    cfg = _config(args, tokenizer=args.model, max_length=args.max_length)
    tokenizer = None
    if cfg.tokenizer:
        from alignline.models.loading import load_tokenizer_for

        tokenizer = load_tokenizer_for(cfg.tokenizer)
    from alignline.data.show import parse_column_args

    report = run_checks(
        args.train,
        args.eval,
        cfg,
        tokenizer,
        progress=not args.quiet,
        split=args.split,
        columns=parse_column_args(args.column),
        eval_split=args.eval_split,
    )
    json_path, html_path = write_report(report, args.out)
    _print_gates(report["gates"], report)
    for w in report["warnings"]:
        print(f"note: {w}")
    print(
        f"{'passed' if report['passed'] else 'FAILED'}: {report['records']} records; report: {json_path}, {html_path}"
    )
    return 0 if report["passed"] else 1


def _cmd_dedup(args) -> int:
    from alignline.data.quality.actions import dedup_file

    cfg = _config(args)
    if args.threshold is not None:
        if not 0 < args.threshold <= 1:
            raise UserError(f"--threshold: must be in (0, 1], got {args.threshold}")
        cfg.dedup.threshold = args.threshold
    r = dedup_file(args.train, args.out, cfg, progress=not args.quiet)
    print(
        f"kept {r['kept']} of {r['records']} records ({r['exact_duplicates']} exact and {r['near_duplicates']} "
        f"near duplicates removed, {r['clusters']} clusters) -> {r['out']}"
    )
    return 0


def _cmd_redact(args) -> int:
    from alignline.data.quality.actions import redact_file
    from alignline.data.quality.pii import PII_TYPES

    types = tuple(t.strip() for t in args.types.split(",") if t.strip()) if args.types else PII_TYPES
    for t in types:
        if t not in PII_TYPES:
            raise UserError(f"--types: unknown type {t!r}; known: {', '.join(PII_TYPES)}")
    r = redact_file(args.train, args.out, types, progress=not args.quiet)
    counts = ", ".join(f"{k} {v}" for k, v in r["replaced"].items() if v) or "nothing found"
    print(f"redacted {r['changed']} of {r['records']} records ({counts}) -> {r['out']}")
    return 0


def _cmd_audit_sample(args) -> int:
    from alignline.data.quality.audit import sample, write_sample_csv

    n = args.n if args.n is not None else _config(args).audit.sample_size
    if n <= 0:
        raise UserError(f"--n: must be > 0, got {n}")
    if Path(args.out).suffix.lower() != ".csv":
        raise UserError(f"{args.out}: the audit sample is a .csv file")
    rows, alloc = sample(args.train, n, args.seed, progress=not args.quiet)
    write_sample_csv(rows, args.out)
    per = ", ".join(f"{k} {v}" for k, v in alloc.items())
    print(
        f"wrote {len(rows)} records ({per}) -> {args.out}; fill in the 'verdict' column (correct / incorrect / skip), "
        f"then run: alignline data audit score {args.out}"
    )
    return 0


def _cmd_audit_score(args) -> int:
    from alignline.data.quality.audit import score
    from alignline.io import write_text

    minimum = args.min_accuracy if args.min_accuracy is not None else _config(args).audit.min_accuracy
    r = score(args.file, minimum)
    lo_hi = r["wilson_95"]
    print(
        f"accuracy {r['accuracy']:.1%} ({r['correct']} of {r['reviewed']} reviewed, {r['skipped']} skipped; "
        f"95% interval {lo_hi[0]:.1%}-{lo_hi[1]:.1%})"
    )
    for cat, v in r["by_category"].items():
        print(f"  {cat:<20} {v['accuracy']:.1%} of {v['reviewed']}")
    _print_gates(r["gates"])
    if args.out:
        write_text(Path(args.out) / "audit_report.json", json.dumps(r, indent=2) + "\n")
    return 0 if r["passed"] else 1


def run_show(args) -> int:
    """`alignline data show`: the record as `data/show.py` renders it, with the tokenizer of `--model`."""
    from alignline.data.show import parse_column_args, show
    from alignline.models.loading import load_tokenizer_for

    tokenizer = load_tokenizer_for(args.model)
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and not args.json
    text = show(
        args.file, tokenizer, args.record, args.method, args.json, args.split, parse_column_args(args.column), color
    )
    try:
        print(text)
    except BrokenPipeError:  # `alignline data show ... | head`: the reader has seen enough
        sys.stderr.close()
    return 0


def _cmd_show(args) -> int:
    return run_show(args)


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="data quality gates: check, dedup, redact, audit; show a record")
    sub = data.add_subparsers(dest="data_command", required=True)

    p = sub.add_parser("check", help="run every check and gate; writes report.json and report.html")
    p.add_argument(
        "train",
        nargs="+",
        help="training data file(s): JSONL, JSON, CSV, Parquet, a datasets dir, or a "
        "LLaMA-Factory entry as PATH/dataset_info.json#ENTRY",
    )
    p.add_argument("--eval", default=None, help="the evaluation split (for the leakage check)")
    p.add_argument("--config", default=None, help="gate config YAML (defaults for anything left out)")
    p.add_argument("--out", default="data_check", help="report directory (default: data_check)")
    p.add_argument("--model", default=None, help="model or tokenizer whose tokenizer measures lengths")
    p.add_argument("--max-length", type=int, default=None, help="training max_length in tokens (truncation gate)")
    p.add_argument("--split", default="train", help="split of a `datasets` directory or hub dataset, as data.split")
    p.add_argument("--eval-split", default=None, help="split read for --eval, as data.eval_split (default: --split)")
    p.add_argument(
        "--column",
        action="append",
        default=None,
        metavar="OUR=THEIR",
        help="rename a field before format detection, as data.columns (e.g. prompt=question); repeatable",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("dedup", help="write a copy with one record per duplicate cluster (exact and near)")
    p.add_argument("train", nargs="+", help="data file(s) to deduplicate, together")
    p.add_argument("--out", required=True, help="output file (.jsonl, .json, .csv or .parquet)")
    p.add_argument("--config", default=None, help="gate config YAML (dedup.threshold, ngram, num_perm)")
    p.add_argument("--threshold", type=float, default=None, help="Jaccard threshold (default 0.8)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_dedup)

    p = sub.add_parser("redact", help="write a copy with PII replaced by typed placeholders ([EMAIL], [PHONE], ...)")
    p.add_argument("train", nargs="+", help="data file(s) to redact")
    p.add_argument("--out", required=True, help="output file (.jsonl, .json, .csv or .parquet)")
    p.add_argument("--types", default=None, help="comma-separated PII types (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_redact)

    audit = sub.add_parser("audit", help="spot audits: export a sample for review, score the reviewed file")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    p = asub.add_parser("sample", help="export N random records, stratified by category, to a CSV")
    p.add_argument("train", nargs="+", help="data file(s) to sample from")
    p.add_argument("--n", type=int, default=None, help="records to sample (default: audit.sample_size, 100)")
    p.add_argument("--out", required=True, help="the CSV to write")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (the same seed gives the same sample)")
    p.add_argument("--config", default=None, help="gate config YAML (audit.sample_size, audit.min_accuracy)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_audit_sample)
    p = asub.add_parser("score", help="read the reviewed CSV back and gate on accuracy")
    p.add_argument("file", help="the reviewed CSV")
    p.add_argument("--min-accuracy", type=float, default=None, help="gate (default: audit.min_accuracy, 0.9)")
    p.add_argument("--config", default=None, help="gate config YAML (audit.min_accuracy)")
    p.add_argument("--out", default=None, help="also write DIR/audit_report.json")
    p.set_defaults(func=_cmd_audit_score)

    p = sub.add_parser(
        "show", help="print a record as the model sees it (chat template, tokens), trained tokens marked"
    )
    p.add_argument("file", help="data file, `datasets` directory or hub id")
    p.add_argument("--model", default=None, help="model or tokenizer (default: the embedded smollm2-135m)")
    p.add_argument("--record", type=int, default=1, help="which record, 1-based (default 1)")
    p.add_argument(
        "--method",
        choices=("sft", "dpo", "rm", "kto", "grpo", "ppo"),
        default=None,
        help="read the record as this method does (default: from its fields)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per token: id, text, trained")
    p.add_argument("--split", default="train", help="split of a `datasets` directory or hub dataset")
    p.add_argument(
        "--column",
        action="append",
        default=None,
        metavar="OUR=THEIR",
        help="rename a field before format detection, as data.columns; repeatable",
    )
    p.set_defaults(func=_cmd_show)

    from alignline.data.canary import add_parser as add_canary_parser  # `data canary` (logic in data/canary.py)

    add_canary_parser(sub)
