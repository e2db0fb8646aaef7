"""`alignline annotate serve`: the annotation app under uvicorn, and a thread-hosted server for tests and demos.

uvicorn runs one process here; sessions and login throttling live in the database, so running several
(`uvicorn --workers`, or several machines against one PostgreSQL) needs nothing more than the same `--db`.
"""

from __future__ import annotations

import sys
import threading
import time

from alignline.annotate.db import shown
from alignline.errors import UserError

DEFAULT_PORT = 8765


def open_store(db: str | None):
    """The store at `db` (or $ALIGNLINE_DB, or the SQLite file in the working directory). The store turns a
    bad URL or an unreachable database into one UserError line; anything else a driver raises on open is
    turned into one here, so `serve` never ends in a traceback over a URL."""
    from alignline.annotate.store import Store  # lazy: SQLAlchemy + alembic; this module loads at CLI start-up

    try:
        return Store(db)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - a driver's own error on open: one line, exit 2
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"--db {shown(db or '')}: cannot open the database: {reason}") from None


def uvicorn_config(app, host: str, port: int, forwarded_allow_ips: str | None = None, **extra):
    """uvicorn's config for the app. X-Forwarded-For / -Proto are believed only from `forwarded_allow_ips`
    (comma-separated addresses of reverse proxies): uvicorn's own default trusts loopback, and this app
    binds loopback, so every local client (an SSH tunnel, a TCP proxy) could otherwise name a fresh
    address per request and never meet the login throttle, which counts per client address."""
    import uvicorn

    trust = (
        {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}
        if forwarded_allow_ips
        else {"proxy_headers": False}
    )
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, **trust, **extra)


def serve(
    db: str | None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    secure_cookies: bool = False,
    forwarded_allow_ips: str | None = None,
    max_body_mb: float | None = None,
) -> int:
    """Run the app until Ctrl-C. Prints the URL once the socket is bound (port 0 picks a free one).
    `max_body_mb`: the request body limit (None: $ALIGNLINE_ANNOTATE_MAX_BODY_MB, else 10)."""
    import uvicorn

    from alignline.annotate.web.app import create_app  # lazy: FastAPI; this module loads at CLI start-up
    from alignline.annotate.web.limits import max_body_bytes  # lazy: Starlette, as above

    limit = max_body_bytes(max_body_mb)  # a bad value is one line before anything binds or opens
    check_port(host, port)
    store = open_store(db)
    app = create_app(store, secure_cookies=secure_cookies, max_body_bytes=limit)
    server = uvicorn.Server(uvicorn_config(app, host, port, forwarded_allow_ips))
    announce = threading.Thread(target=print_url_when_up, args=(server, host, store), daemon=True)
    announce.start()
    server.run()
    return 0


def check_port(host: str, port: int) -> None:
    """A port already taken (or a host not on this machine) is one line, not uvicorn's log and exit 1."""
    import socket

    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: a port is 0 to 65535 (0 picks a free one)")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as error:
        raise UserError(f"--host {host} --port {port}: cannot listen there: {error.strerror or error}") from None


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
    where = f"[{host}]" if ":" in host else host
    print(
        f"alignline annotate: {shown(store.url)} at http://{where}:{bound_port(server)}/ (Ctrl-C stops)",
        file=sys.stdout,
        flush=True,
    )


class ThreadedServer:
    """uvicorn in a background thread on a free loopback port: `with ThreadedServer(app) as url: ...`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, forwarded_allow_ips: str | None = None):
        import uvicorn

        self.server = uvicorn.Server(uvicorn_config(app, host, port, forwarded_allow_ips, lifespan="off"))
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
