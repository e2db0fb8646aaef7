"""Sessions, CSRF and login throttling for the annotation app, shared by the JSON API and the pages.

Sessions and failed-login counts live in the database (`Store.create_session`, `Store.login_failures`), so
several server workers agree on them. The session cookie is HttpOnly and SameSite=Strict; every state-changing
request also carries the session's CSRF token (the `X-CSRF-Token` header for the API, a hidden `csrf_token`
field for the pages), compared in constant time. SameSite alone would do in current browsers; the token keeps
older ones and same-site subdomains out too.

Login CSRF (a forged login into the attacker's account) is closed for the pages by a double-submit cookie set
with the login form, and for the API by requiring a JSON body, which a cross-site form cannot send without a
CORS preflight this app never grants.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "alignline_session"
LOGIN_COOKIE = "alignline_login"  # the pre-session double-submit token of the login form
SESSION_TTL_S = 12 * 3600
LOGIN_WINDOW_S = 300  # failed logins are counted over this window: per name and address, per address, per name
LOGIN_MAX_FAILURES = 5
# failed logins one client may make across all names in the window (password spraying: one password, many
# names); a success does not reset it. High enough for a team signing in behind one NAT address.
LOGIN_MAX_CLIENT_FAILURES = 20
# failed logins one account may take across all addresses in the window (guessing from many addresses, a
# botnet or rotating proxies): past it the account is locked for the window, whatever the address and even
# with the right password. A success does not reset it (the guesser would otherwise be let in again by the
# owner signing in). The price, accepted: anyone can lock an account for LOGIN_WINDOW_S.
LOGIN_MAX_ACCOUNT_FAILURES = 10
MAX_NAME = 200
MAX_PASSWORD = 1024  # argon2 would hash a megabyte happily; nobody's password is that long


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of one request: the store's user dict, its session token and CSRF token."""

    user: dict
    token: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.user.get("role") == "admin"


class LoginThrottled(Exception):
    """Too many failed logins for this name from this client; `retry_after` seconds until the window clears."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


def viewer_from_token(store, token: str | None) -> Viewer | None:
    """The session behind a cookie value, or None when absent, unknown or expired."""
    if not token or len(token) > 512:
        return None
    found = store.session(token)
    if not found:
        return None
    return Viewer(user=found["user"], token=token, csrf=found["csrf"])


def csrf_ok(viewer: Viewer, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(viewer.csrf.encode(), str(sent).encode())


def log_in(store, name: str, password: str, client: str) -> tuple[dict, str, str] | None:
    """Record the attempt, check the throttle, then the password. Returns (user, session token, csrf token),
    or None for a wrong name or password. Raises LoginThrottled before even hashing once the name+client pair,
    the client across all names, or the name across all clients (the account lock) has used up its failures,
    so a guesser gets no answer either way. Names count in their normalized form (`ＡＬＩＣＥ` is `ALICE`).

    The attempt is recorded as a failure BEFORE the count is read: checking first and recording after let a
    burst of parallel guesses all pass the check. Recorded first, the k-th of a burst counts at least k."""
    name, password = str(name)[:MAX_NAME], str(password)
    attempt = store.record_login(name, client, False, keep_s=LOGIN_WINDOW_S)  # older rows no count reads
    if (
        store.login_failures(name, client, LOGIN_WINDOW_S) > LOGIN_MAX_FAILURES
        or store.login_failures(None, client, LOGIN_WINDOW_S, reset_on_success=False) > LOGIN_MAX_CLIENT_FAILURES
        or store.login_failures(name, None, LOGIN_WINDOW_S, reset_on_success=False) > LOGIN_MAX_ACCOUNT_FAILURES
    ):
        store.settle_login(attempt, None)
        raise LoginThrottled(LOGIN_WINDOW_S)
    user = store.authenticate(name, password) if len(password) <= MAX_PASSWORD else None
    if user is None:
        return None
    store.settle_login(attempt, True)
    token, csrf = store.create_session(user["id"], ttl_s=SESSION_TTL_S)
    return user, token, csrf


def set_session_cookie(response, token: str, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_TTL_S, httponly=True, samesite="strict", secure=secure, path="/"
    )


def clear_session_cookie(response, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=secure, path="/")


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def public_user(user: dict) -> dict:
    """What the API shows of a user: never a hash or any other column the store may add."""
    return {"id": user["id"], "name": user["name"], "role": user["role"]}


def client_address(request) -> str:
    return request.client.host if request.client else "unknown"
