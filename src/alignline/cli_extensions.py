"""Subcommands contributed by other parts of the package (data gates, scoring, ...).

Each part exposes `register(subparsers)`; listing them here keeps `cli.py` short and lets a part
that fails to import (an optional dependency missing) leave the rest of the CLI working.
"""

from __future__ import annotations

import importlib

PARTS: tuple[str, ...] = ("alignline.data_cli", "alignline.score")


def register(subparsers) -> None:
    for name in PARTS:
        importlib.import_module(name).register(subparsers)
