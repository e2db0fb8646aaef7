"""`alignline sandbox run FILE.py`: run a Python file in the code sandbox and print the result as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from alignline.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("sandbox", help="run Python code in the sandbox (no network, limits) and print JSON")
    sub = p.add_subparsers(dest="sandbox_command", required=True, metavar="SUBCOMMAND")
    r = sub.add_parser("run", help="run FILE.py; prints one JSON object (returncode, timed_out, stdout, stderr, ...)")
    r.add_argument("file", help="the Python file to run (copied into a fresh working directory)")
    r.add_argument("--timeout", type=float, default=10, help="wall-time limit in seconds (default 10)")
    r.add_argument("--memory", type=int, default=512, help="address-space limit in MB (default 512)")
    r.add_argument(
        "--unsafe-local",
        action="store_true",
        help="where bubblewrap is not usable, run with resource limits only (network and files open)",
    )
    r.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    from alignline.rewards.sandbox import run_code

    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    result = run_code(
        path, timeout_s=args.timeout, memory_mb=args.memory, mode="unsafe_local" if args.unsafe_local else "auto"
    )
    print(json.dumps(result.to_dict()))
    return 0
