"""The `alignline` command. Each subcommand is one module in this package, named by one line of
`COMMANDS` (`"module:register"`, the registry style of `alignline/registry.py`); `register(subparsers)`
adds its parser. Errors a user can cause print one line and exit 2, with no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from alignline.errors import UserError
from alignline.registry import LazyTable

# `alignline <command>` -> the function adding its parser, in `--help` order.
COMMANDS = LazyTable(
    {
        "train": "alignline.cli.train:register",
        "config": "alignline.cli.config:register",
        "generate": "alignline.cli.generate:register",
        "data": "alignline.cli.data:register",
        "score": "alignline.cli.score:register",
        "demo": "alignline.cli.demo:register",
        "eval": "alignline.cli.eval:register",
        "gate": "alignline.cli.gate:register",
        "sandbox": "alignline.cli.sandbox:register",
        "serve": "alignline.cli.serve:register",  # the OpenAI-compatible server with confidence routing
        "rollout-server": "alignline.cli.rollout_server:register",  # a vLLM server for generation.server: URL
        "annotate": "alignline.cli.annotate:register",  # the annotation database and app
        "runs": "alignline.cli.runs:register",  # the run registry: list, show, compare, lineage
        "pipeline": "alignline.cli.pipeline:register",  # staged, gated training with a release
    }
)

DESCRIPTION = """\
Take a pretrained language model to an aligned one, and show that it is ready: fine-tune it (SFT,
continued pretraining, reward models, DPO and its variants, KTO, and online RL: GRPO, PPO, multi-step
episodes) with LoRA, adapters or full fine-tuning, behind data-quality gates, on one training loop built
on accelerate; then evaluate, gate, serve and annotate."""

EPILOG = """\
typical use:
  alignline data check train.jsonl --eval eval.jsonl     # the data gates, before anything trains
  alignline train recipe.yaml lr=1e-4 --dry-run          # the plan: steps, tokens, memory, fast path
  alignline train recipe.yaml                            # train; the run directory has run.json and report.html
  alignline generate --model runs/x/final --prompt "Hi"  # try the result
run `alignline COMMAND --help` for each command's flags; recipe keys: `alignline train --help`."""


def build_parser() -> argparse.ArgumentParser:
    from alignline import __version__

    parser = argparse.ArgumentParser(
        prog="alignline", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"alignline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        COMMANDS[name](sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `alignline train r.yaml --quiet lr=1e-4`: overrides may follow flags
    if (
        extra
        and getattr(args, "overrides", None) is not None
        and all("=" in e and not e.startswith("-") for e in extra)
    ):
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
