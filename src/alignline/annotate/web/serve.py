"""`alignline annotate serve`: the annotation app under uvicorn, and a thread-hosted server for tests and demos.

uvicorn runs one process here; sessions and login throttling live in the database, so running several
(`uvicorn --workers`, or several machines against one PostgreSQL) needs nothing more than the same `--db`.
"""

from __future__ import annotations

import sys
import threading
import time

DEFAULT_PORT = 8765


def open_store(db: str | None):
    """The store at `db` (or $ALIGNLINE_DB, or the SQLite file in the working directory); a URL that does not
    open is one UserError line naming it, whatever the driver said."""
    from alignline.annotate.store import Store, resolve_db_url
    from alignline.errors import UserError

    url = resolve_db_url(db)
    try:
        return Store(url)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - a driver's or SQLAlchemy's error: shown as one line, exit 2
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"--db {safe_url(url)}: cannot open the database: {reason}") from None


def safe_url(url: str) -> str:
    """The URL with any password masked, for printing."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is printed as given; it has no password to hide
        return url


def serve(db: str | None, host: str = "127.0.0.1", port: int = DEFAULT_PORT, secure_cookies: bool = False) -> int:
    """Run the app until Ctrl-C. Prints the URL once the socket is bound (port 0 picks a free one)."""
    import uvicorn

    from alignline.annotate.web.app import create_app

    store = open_store(db)
    app = create_app(store, secure_cookies=secure_cookies)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    announce = threading.Thread(target=print_url_when_up, args=(server, host, store), daemon=True)
    announce.start()
    server.run()
    return 0


def bound_port(server) -> int | None:
    for s in getattr(server, "servers", None) or []:
        for sock in s.sockets:
            return sock.getsockname()[1]
    return None


def print_url_when_up(server, host: str, store) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    shown = f"[{host}]" if ":" in host else host
    url = getattr(store, "url", "")
    print(f"alignline annotate: serving {safe_url(str(url)) if url else 'the store'} at "
          f"http://{shown}:{bound_port(server)}/ (Ctrl-C stops)", file=sys.stdout, flush=True)


class ThreadedServer:
    """uvicorn in a background thread on a free loopback port: `with ThreadedServer(app) as url: ...`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.host = host
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the annotation server did not start")
            time.sleep(0.02)
        return f"http://{self.host}:{bound_port(self.server)}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def add_serve_command(subparsers) -> None:
    """`alignline annotate serve`: called by the `annotate` command's parser (cli/annotate.py)."""
    p = subparsers.add_parser("serve", help="run the annotation web app (login, annotate, dashboard, adjudicate)",
                              description="Run the annotation web app and its JSON API under uvicorn.")
    p.add_argument("--db", help="database URL (default: $ALIGNLINE_DB, else sqlite:///./alignline-annotate.db)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--secure-cookies", action="store_true",
                   help="mark the session cookie Secure: set this when users reach the app over HTTPS")
    p.set_defaults(func=lambda args: serve(args.db, args.host, args.port, args.secure_cookies))
