"""`alignline eval`: run evaluation suites on one or more models; write results.json and eval.html."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from alignline.cli.runs import add_registry_flag
from alignline.errors import ConfigError


def add_run_options(p) -> None:
    """Flags `eval` and `gate` share: how models generate, the statistics, the cache."""
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "hf", "vllm"],
        help="generation engine (auto: vLLM where installed and able to serve the model, else Hugging Face)",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="weights dtype (auto: bfloat16 where the GPU or CPU has it, else float32)",
    )
    p.add_argument(
        "--server",
        default=None,
        metavar="URL",
        help="generate on the vLLM server at URL (alignline rollout-server) instead of in this process",
    )
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generation batch")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95 %% intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute everything (default: reuse $ALIGNLINE_CACHE/evals, resume interrupted runs)",
    )


def context_options(args) -> dict:
    if args.batch_size < 1 or args.bootstrap < 1:
        raise ConfigError("--batch-size and --bootstrap must be at least 1")
    return {
        "backend": args.backend,
        "dtype": args.dtype,
        "server": args.server,
        "batch_size": args.batch_size,
        "n_boot": args.bootstrap,
        "seed": args.seed,
        "cache_enabled": not args.no_cache,
    }


def suite_files(suites: list[str]) -> list[dict]:
    """The suites given as files, with their content hashes (starter suites ship with the package version)."""
    from alignline.data.sources import file_sha256

    return [{"path": s, "sha256": file_sha256(s), "role": "suite"} for s in suites if Path(s).is_file()]


def record(kind: str, args, out, started: float, **fields) -> None:
    """Record an eval or gate run in the run registry (never fails the command: a warning line at most)."""
    from alignline.runs import record_run

    config = {k: v for k, v in vars(args).items() if k not in ("func", "registry", "command")}
    record_run(kind, out, registry=args.registry, started=started, config=config, **fields)


def record_failure(kind: str, args, out, started: float, error: BaseException) -> None:
    """A run that failed after it began writing its directory is recorded as failed; bad input is not a run."""
    from alignline.train.run_record import error_text

    if out is not None and Path(out).is_dir():
        record(kind, args, out, started, status="failed", error=error_text(error))


def named(value: str) -> tuple[str, str]:
    """`name=path` or `path` (named by itself)."""
    name, sep, spec = value.partition("=")
    return (name, spec) if sep and name and spec and "/" not in name else (value, value)


def progress(message: str) -> None:
    print(f"eval: {message}", file=sys.stderr, flush=True)


def run(args) -> int:
    from alignline.evals.context import Context, ModelHandle
    from alignline.evals.results import evaluate
    from alignline.evals.suites import load_suite

    ctx = Context(**context_options(args))
    suites = [load_suite(s, args.limit) for s in args.suite]  # every suite checked before any model loads
    opts = dict(backend=args.backend, dtype=ctx.dtype, batch_size=args.batch_size, server=args.server)
    models = [ModelHandle(*named(m), **opts) for m in args.model]
    baseline = ModelHandle(*named(args.baseline), **opts) if args.baseline else None
    names = [m.name for m in models]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"model '{dup}' given twice (name them: --model a=DIR --model b=DIR)")
    if baseline is not None and baseline.name in names:  # the baseline listed among the models too: one model
        baseline = models[names.index(baseline.name)]
    started = time.time()
    try:
        results = evaluate(models, baseline, suites, ctx, args.out, progress)
    except BaseException as error:
        record_failure("eval", args, args.out, started, error)
        raise
    out = Path(args.out)
    record(
        "eval",
        args,
        out,
        started,
        parent_model=models[0].spec if len(models) == 1 else None,
        data=suite_files(args.suite),
        metrics=results["metrics"],
        artifacts=[str((out / n).resolve()) for n in ("results.json", "eval.html") if (out / n).is_file()],
    )
    for model, metrics in results["metrics"].items():
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if "/" in k)
        print(f"{model}: {shown}")
    print(f"wrote {args.out}/results.json and eval.html")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate models on suites (accuracy, refusals, leaks, win rate, ...)",
        description="Run evaluation suites on models. Writes DIR/results.json (metrics per model, "
        "candidate-minus-baseline deltas with 95 % intervals) and DIR/eval.html.",
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        help="a model dir, checkpoint, adapter or smollm2-135m, or name=DIR; repeatable",
    )
    p.add_argument("--baseline", default=None, help="the model every other is compared with (deltas, win rates)")
    p.add_argument(
        "--suite",
        action="append",
        required=True,
        help="a suite YAML file or starter/<name> (arithmetic, general, refusal, jailbreak, paraphrase); repeatable",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--limit", type=int, default=None, help="only the first N records of every suite (a quick look)")
    add_run_options(p)
    add_registry_flag(p)
    p.set_defaults(func=run)
