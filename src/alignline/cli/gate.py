"""`alignline gate`: pass or fail a candidate against a baseline on a gates file (exit 0 pass, 1 fail, 2 bad input)."""

from __future__ import annotations

import time
from pathlib import Path

from alignline.cli.eval import add_run_options, context_options, progress, record, record_failure, suite_files
from alignline.cli.runs import add_registry_flag


def candidate_model(candidate: str) -> str:
    """The model a gate judged: CANDIDATE itself, or the model a results directory evaluated."""
    import json

    from alignline.evals.gate import pick
    from alignline.evals.results import is_results_dir

    if not is_results_dir(candidate):
        return candidate
    try:
        results = json.loads((Path(candidate) / "results.json").read_text(encoding="utf-8"))
        return results["models"][pick(results, "candidate")]["spec"]
    except (OSError, ValueError, KeyError, TypeError):
        return candidate


def run(args) -> int:
    from alignline.data.sources import file_sha256
    from alignline.evals.gate import run_gate

    started = time.time()
    options = context_options(args)
    try:
        verdict = run_gate(
            args.candidate, args.baseline, args.gates, args.suite, args.out, options, progress, args.limit
        )
    except BaseException as error:
        record_failure("gate", args, args.out, started, error)
        raise
    out = Path(verdict["out"])
    gates_file = [{"path": args.gates, "sha256": file_sha256(args.gates), "role": "gates"}]
    record(
        "gate",
        args,
        out,
        started,
        name=f"gate {Path(args.candidate).name}",
        status="completed",
        parent_model=candidate_model(args.candidate),
        data=gates_file + suite_files(args.suite),
        metrics={"passed": verdict["passed"], "failed_checks": sum(not r["passed"] for r in verdict["rules"])},
        gates=verdict,
        artifacts=[str((out / n).resolve()) for n in ("gate.json", "gate.html") if (out / n).is_file()],
    )
    for r in verdict["rules"]:
        print(f"{'pass' if r['passed'] else 'FAIL'}  {r['rule']:<18} {r['metric']:<34} {r['detail']}")
    failed = sum(not r["passed"] for r in verdict["rules"])
    print(
        f"gate: {'PASS' if verdict['passed'] else f'FAIL ({failed} check(s))'}; "
        f"wrote {verdict['out']}/gate.json and gate.html"
    )
    return 0 if verdict["passed"] else 1


def register(sub) -> None:
    p = sub.add_parser(
        "gate",
        help="release gate: a candidate against a baseline (exit 0 pass, 1 fail, 2 bad input)",
        description="Check a candidate against a baseline with the rules of a gates file. CANDIDATE "
        "and BASELINE are models (evaluated on --suite first) or `alignline eval` "
        "result directories (compared with no generation at all).",
    )
    p.add_argument("candidate", help="a model, or a results directory of `alignline eval`")
    p.add_argument("--baseline", required=True, help="a model, or a results directory of `alignline eval`")
    p.add_argument(
        "--gates",
        required=True,
        help="gates YAML: metric: {min|max|ci_low_min|delta_max...}, no_regression: {tolerance}",
    )
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        help="suites to run when CANDIDATE or BASELINE is a model (default: those a results dir used)",
    )
    p.add_argument("--limit", type=int, default=None, help="with models: only the first N records of every suite")
    p.add_argument(
        "--out",
        default=None,
        help="where gate.json and gate.html go (default: the candidate's results directory, or ./gate)",
    )
    add_run_options(p)
    add_registry_flag(p)
    p.set_defaults(func=run)
