"""`alignline pipeline run FILE [--from STAGE] [--force STAGE]` and `alignline pipeline status FILE`: a line of
training stages with gates between them, and a release with a model card (exit 0 released, 1 stopped by a gate,
2 bad input)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from alignline.cli.runs import add_registry_flag


def run(args) -> int:
    from alignline.pipeline.config import load_pipeline
    from alignline.pipeline.run import run_pipeline

    cfg = load_pipeline(args.file)
    for name in (args.start, args.force):
        if name:
            cfg.index(name)  # a name that is no stage: one line, exit 2, before anything runs
    started = time.time()
    if args.registry:  # the stages' train runs go where the line's own record goes
        os.environ["ALIGNLINE_REGISTRY"] = args.registry

    def record(kind: str, path: Path, state: dict) -> None:
        """The line as one registry run; each stage that trained is already there as a `train` run (train()
        records itself), which `runs lineage` walks from the release back to the data."""
        if kind != "pipeline":
            return
        from alignline.runs import record_run

        release = state.get("release", {})
        record_run(
            "pipeline",
            path,
            registry=args.registry,
            status="completed" if release.get("status") == "released" else "failed",
            started=started,
            name=state.get("name"),
            config={"pipeline_file": str(args.file), "stages": state.get("stages", [])},
            parent_model=cfg.model,
            gates={s["name"]: s.get("gates") for s in state.get("stages", []) if s.get("gates")},
            artifacts=[p for p in (release.get("path"), str(path / "pipeline.json")) if p],
            extra={"release": release},
        )

    return run_pipeline(cfg, args.start, args.force, progress=not args.quiet, record_hook=record)


def status(args) -> int:
    from alignline.pipeline.config import load_pipeline
    from alignline.pipeline.plan import decide

    cfg = load_pipeline(args.file)
    upstream = False
    for i in range(len(cfg.stages)):
        d = decide(cfg, i, upstream, forced=False)
        upstream |= d.action != "skip"
        print(f"{d.stage:<16} {d.action:<7} {d.why}")
    when = "after the stages" if upstream else "its suites and gates, reused where unchanged"
    print(f"{'release':<16} {'run' if upstream else 'check':<7} {when}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "pipeline",
        help="a staged, gated training line with a release: alignline pipeline run line.yaml",
        description="Run training stages in order (each one's data gates, training, suites and gates), "
        "skipping stages whose inputs are unchanged, then release the model with lineage.json and a model card. "
        "Exit 0 released, 1 stopped by a gate, 2 bad input.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    r = verbs.add_parser("run", help="run the line (stages whose inputs are unchanged are skipped)")
    r.add_argument("file", metavar="FILE", help="the pipeline YAML (see recipes/pipeline-demo.yaml)")
    r.add_argument(
        "--from", dest="start", metavar="STAGE", help="start at STAGE; the stages before are taken as they are"
    )
    r.add_argument("--force", metavar="STAGE", help="re-run STAGE even if its inputs are unchanged")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    add_registry_flag(r)
    r.set_defaults(func=run)
    s = verbs.add_parser("status", help="what a run would do and why, without running anything")
    s.add_argument("file", metavar="FILE", help="the pipeline YAML")
    s.set_defaults(func=status)
