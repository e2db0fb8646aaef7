"""`alignline train RECIPE [key=value ...]`: train as a recipe says (see README, and the typed defaults in
`alignline/config.py`)."""

from __future__ import annotations

import os


def run(args) -> int:
    from alignline.config import load_config
    from alignline.train.loop import train

    cfg = load_config(args.config, args.overrides + (["proceed_on_gate_failure=true"] if args.proceed else []))
    run_dir = train(cfg, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # one line, not one per process
        print(f"done: {run_dir / 'final'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a recipe: alignline train recipe.yaml key=value ...")
    p.add_argument("config", help="recipe YAML")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. lr=1e-4 lora.r=32 training.max_steps=10")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--proceed", action="store_true", help="train even when a data gate fails")
    p.set_defaults(func=run)
