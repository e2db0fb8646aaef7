"""The `alignline` command. Each subcommand is one module in this package, listed in `COMMANDS`.
Errors a user can cause print one line and exit 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from alignline.errors import UserError

# `alignline <command>`: the module that registers it (each has `register(subparsers)`).
COMMANDS = ("train", "config", "generate", "data", "score", "demo", "eval", "gate", "sandbox")

DESCRIPTION = """\
Take a pretrained language model to an aligned one, and show that it is ready: fine-tune it (SFT,
continued pretraining, reward models, DPO and its variants, KTO) with LoRA, adapters or full
fine-tuning, behind data-quality gates, on one training loop built on accelerate."""

COMMANDS += ("serve",)  # the OpenAI-compatible server with confidence routing (cli/serve.py)

EPILOG = """\
typical use:
  alignline data check train.jsonl --eval eval.jsonl     # the data gates, before anything trains
  alignline train recipe.yaml lr=1e-4 --dry-run          # the plan: steps, tokens, memory, fast path
  alignline train recipe.yaml                            # train; the run directory has run.json and report.html
  alignline generate --model runs/x/final --prompt "Hi"  # try the result
run `alignline COMMAND --help` for each command's flags; recipe keys: `alignline train --help`."""

COMMANDS += ("annotate",)  # the annotation database and app (cli/annotate.py)


def build_parser() -> argparse.ArgumentParser:
    from alignline import __version__

    parser = argparse.ArgumentParser(prog="alignline", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"alignline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"alignline.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `alignline train r.yaml --quiet lr=1e-4`: overrides may follow flags
    if extra and getattr(args, "overrides", None) is not None and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args) or 0
    except UserError as e:
        print(f"alignline: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("alignline: interrupted", file=sys.stderr)
        return 130

