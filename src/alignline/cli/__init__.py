"""alignline: from a pretrained language model to an aligned one, and the evidence that it is ready.

Each command is one module in this package, registered in `COMMANDS`. Errors a user can cause print
one line and exit 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from alignline.errors import UserError

# `alignline <command>`: the module that registers it (each has `register(subparsers)`).
COMMANDS = ("train", "generate", "data", "score", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alignline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
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

