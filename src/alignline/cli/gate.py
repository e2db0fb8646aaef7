"""`alignline gate`: pass or fail a candidate against a baseline on a gates file (exit 0 pass, 1 fail, 2 bad input)."""

from __future__ import annotations

from alignline.cli.eval import add_run_options, context_options, progress


def run(args) -> int:
    from alignline.evals.gate import run_gate

    verdict = run_gate(
        args.candidate, args.baseline, args.gates, args.suite, args.out, context_options(args), progress, args.limit
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
    p.set_defaults(func=run)
