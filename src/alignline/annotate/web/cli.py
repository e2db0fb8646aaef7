"""`alignline annotate serve`, registered into the `annotate` command through `cli.annotate.PLUGINS` (its `--db`
flag comes from `annotate/db.py`, below the CLI). Only argparse here: FastAPI and uvicorn load when the command runs."""

from __future__ import annotations

from alignline.annotate.db import add_db_flag
from alignline.annotate.web.serve import DEFAULT_PORT, serve


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the annotation web app (login, annotate, dashboard, adjudicate)",
        description="Run the annotation web app and its JSON API under uvicorn; prints "
        "the URL. Sessions live in the database, so workers can share --db.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument(
        "--secure-cookies",
        action="store_true",
        help="mark the session cookie Secure: set this when users reach the app over HTTPS",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="comma-separated addresses of reverse proxies whose X-Forwarded-For to believe "
        "(default: none; the login throttle counts per client address)",
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=None,
        metavar="MB",
        help="largest request body accepted, in MB; larger ones get 413 before they are parsed "
        "(default: $ALIGNLINE_ANNOTATE_MAX_BODY_MB, else 10)",
    )
    add_db_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    return serve(args.db, args.host, args.port, args.secure_cookies, args.forwarded_allow_ips, args.max_body_mb)
