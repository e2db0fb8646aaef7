"""`alignline runs list|show|compare|lineage`: the run registry (every train, eval, gate and pipeline run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from alignline.errors import UserError


def add_registry_flag(p) -> None:
    """`--registry URL`, shared with train, eval and gate (argparse only: nothing loads)."""
    p.add_argument(
        "--registry",
        default=None,
        metavar="URL",
        help="run registry: sqlite:///path.db, a .db path or postgresql://user:pw@host/name "
        "(default: $ALIGNLINE_REGISTRY, else sqlite:///./runs/registry.db; off: record nothing)",
    )


def _registry(args):
    from alignline.runs import open_registry

    reg = open_registry(args.registry)
    if reg is None:
        raise UserError("the run registry is off (ALIGNLINE_REGISTRY=off): pass --registry URL")
    return reg


def _entry(reg, ref: str):
    """A run by id, unique id prefix, or directory; one line and exit 2 when there is none."""
    entry = reg.get(ref)
    if entry is None and Path(ref).exists():
        entry = reg.by_dir(ref) or reg.by_dir(Path(ref).parent)
    if entry is None:
        raise UserError(f"no run {ref!r} in the run registry {reg_shown(reg)}")
    return entry


def reg_shown(reg) -> str:
    from alignline.runs.store import shown

    return shown(reg.url)


def _summary(entry) -> str:
    keys = [k for k in entry.metrics if not k.startswith("eval_")][:2] + [k for k in entry.metrics if "eval" in k][:2]
    return ", ".join(f"{k} {_num(entry.metrics[k])}" for k in keys)


def _num(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_list(args) -> int:
    from alignline.runs.compare import when

    with _registry(args) as reg:
        entries = reg.list(args.kind, args.limit)
    if args.json:
        for entry in entries:
            print(json.dumps(entry.to_dict(), default=str))
        return 0
    if not entries:
        print(f"no runs in {reg_shown(reg)}", file=sys.stderr)
        return 0
    print(f"{'id':<12}  {'kind':<8}  {'status':<9}  {'started':<23}  {'name':<24}  metrics")
    for e in entries:
        print(
            f"{e.id[:12]:<12}  {e.kind:<8}  {e.status:<9}  {when(e.started) or '':<23}  "
            f"{(e.name or '')[:24]:<24}  {_summary(e)}"
        )
    return 0


def run_show(args) -> int:
    from alignline.runs.compare import when

    with _registry(args) as reg:
        entry = _entry(reg, args.run)
    if args.json:
        print(json.dumps(entry.to_dict(), indent=2, default=str))
        return 0
    by = entry.started_by or {}
    lines = [
        f"run {entry.id}",
        f"  kind: {entry.kind}  status: {entry.status}" + (f"  error: {entry.error}" if entry.error else ""),
        f"  started: {when(entry.started)}  finished: {when(entry.finished)}",
        f"  directory: {entry.run_dir}",
        f"  model: {entry.parent_model}" + (f" (run {entry.parent_run})" if entry.parent_run else ""),
        f"  git commit: {entry.git_commit}",
        f"  started by: {by.get('user')}" + (f" (CI: {by['ci']})" if by.get("ci") else ""),
        f"  command: {by.get('command')}",
        "  packages: " + ", ".join(f"{k} {v}" for k, v in entry.packages.items() if v),
    ]
    for source in entry.data:
        lines.append(f"  data ({source.get('role', 'train')}): {source.get('path')} sha256 {source.get('sha256')}")
    if entry.metrics:
        lines.append("  metrics:")
        lines += [f"    {k}: {_num(v)}" for k, v in entry.metrics.items()]
    if entry.gates is not None:
        lines.append(f"  gates: {json.dumps(entry.gates, default=str)[:400]}")
    if entry.artifacts:
        lines.append("  artifacts:")
        lines += [f"    {a}" for a in entry.artifacts]
    print("\n".join(lines))
    return 0


def run_compare(args) -> int:
    from alignline.io import write_text
    from alignline.runs.compare import comparison, comparison_html, format_comparison

    with _registry(args) as reg:
        a, b = _entry(reg, args.a), _entry(reg, args.b)
    result = comparison(a, b)
    print(format_comparison(result, everything=args.all))
    if args.html:
        write_text(args.html, comparison_html(result))
        print(f"wrote {args.html}")
    return 0


def run_lineage(args) -> int:
    from alignline.runs import format_lineage, lineage, open_registry

    try:
        reg = open_registry(args.registry)
    except UserError:
        if not Path(args.run).exists():
            raise
        reg = None  # a path walks through run.json files alone
    try:
        result = lineage(args.run, reg)
    finally:
        if reg is not None:
            reg.close()
    if not result["stages"]:
        raise UserError(f"{args.run}: no run made this model (no run.json on the way up, none registered)")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(format_lineage(result))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "runs",
        help="the run registry: list, show, compare runs; a model's lineage back to its data",
        description="Every train, eval, gate and pipeline run is recorded in the run registry (SQLite by "
        "default, PostgreSQL by URL): config, data hashes, parent model, git commit, package versions, metrics, "
        "gate results, artifacts, who started it.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    q = verbs.add_parser("list", help="the runs, newest first (--json: one JSON object per line)")
    q.add_argument("--json", action="store_true", help="one JSON object per line, every field")
    q.add_argument("--kind", choices=["train", "eval", "gate", "pipeline"], default=None, help="only runs of this kind")
    q.add_argument("--limit", type=int, default=None, help="at most N runs")
    add_registry_flag(q)
    q.set_defaults(func=run_list)
    q = verbs.add_parser("show", help="one run: RUN is an id, a unique id prefix or a run directory")
    q.add_argument("run", metavar="RUN", help="a run id, a unique id prefix, or a directory the run wrote")
    q.add_argument("--json", action="store_true", help="the whole record as JSON")
    add_registry_flag(q)
    q.set_defaults(func=run_show)
    q = verbs.add_parser("compare", help="two runs' configs and metrics side by side (differing keys marked *)")
    q.add_argument("a", metavar="RUN", help="the first run (id, prefix or directory)")
    q.add_argument("b", metavar="RUN", help="the second run")
    q.add_argument("--html", default=None, metavar="FILE", help="also write the comparison as an HTML page")
    q.add_argument("--all", action="store_true", help="list the config keys that are equal too")
    add_registry_flag(q)
    q.set_defaults(func=run_compare)
    q = verbs.add_parser("lineage", help="walk a model back through its runs to the data of each stage")
    q.add_argument("run", metavar="RUN|PATH", help="a run id or prefix, or a run / model directory")
    q.add_argument("--json", action="store_true", help="every stage as JSON, its resolved config included")
    add_registry_flag(q)
    q.set_defaults(func=run_lineage)
