"""`alignline train RECIPE [key=value ...]`: train as a recipe says; `--dry-run` shows the plan instead."""

from __future__ import annotations

import argparse
import os

from alignline.cli.runs import add_registry_flag


def recipe_keys_help() -> str:
    """Every recipe key, by section, with its default: the `train --help` epilog."""
    from alignline.config import RunConfig, defaults_by_key

    lines, section = [], None
    for key, default in defaults_by_key(RunConfig).items():
        head = key.split(".")[0] if "." in key else ""
        if head != section:
            section = head
            lines.append(f"  {head}:" if head else "  (top level):")
        lines.append(f"    {key.split('.', 1)[-1] if head else key} = {default!r}")
    return (
        "recipe keys (defaults shown; set them in the YAML or as key=value overrides; the full docs of each "
        "key are in alignline/config.py; `alignline config show RECIPE` prints a resolved recipe):\n" + "\n".join(lines)
    )


def run(args) -> int:
    from alignline.config import load_config

    cfg = load_config(args.config, args.overrides + (["proceed_on_gate_failure=true"] if args.proceed else []))
    if args.dry_run:
        from alignline.train.dry_run import dry_run, format_plan

        print(format_plan(dry_run(cfg)))
        return 0
    from alignline.evals.training import train

    run_dir = train(cfg, progress=not args.quiet, registry=args.registry)
    if os.environ.get("RANK", "0") == "0":  # one line, not one per process
        print(f"done: {run_dir / 'final'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a recipe: alignline train recipe.yaml key=value ...",
        description="Train as RECIPE says. Overrides take the full dotted key (training.lr=1e-4), a "
        "unique leaf name (lr=1e-4), or lora. for adapter.",
        epilog=recipe_keys_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", metavar="RECIPE", help="recipe YAML (see recipes/ for examples)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. lr=1e-4 lora.r=32 training.max_steps=10")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve the config, read and tokenize the data, run the "
        "gates and print the plan (steps, examples, trained tokens, fast path, memory) without training",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--proceed", action="store_true", help="train even when a data gate fails")
    add_registry_flag(p)
    p.set_defaults(func=run)
