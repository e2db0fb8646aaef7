"""Accounts, sessions and login throttling: the user half of `alignline.annotate.store.Store` (which inherits
this class; one level, no behaviour overridden), kept apart so each file reads in one sitting.

Account lifecycle: a user is added, may be disabled and enabled again, and may get a new password. Disabling
an account or changing its password deletes its sessions server-side at once (a stolen cookie dies with
them); a disabled user's login fails exactly like a wrong password (same timing, same message), and any
call made with a disabled user's dict is refused (`check_user`). Labels are never deleted: agreement and
exports keep them.

User names are NFKC-normalized when an account is made and whenever one is looked up (signing in, the login
throttle, assigning, disabling), so a full-width `ＡＬＩＣＥ` is the account `ALICE`: it cannot be made beside it,
signs in to it, and counts against its login throttle. Names stay case-sensitive, as they always were (`Alice` and
`alice` are two accounts). A new name may hold no whitespace and no control, format or other invisible
characters (Unicode categories Z* and C*: a zero-width space would make a second `alice` that looks the same).
An account made before names were normalized is still found under its stored name.

Login attempts are purged opportunistically: every `purge_every`-th recorded attempt deletes the rows older
than `keep_s` (the caller's largest throttle window), so the table stays as small as the throttle needs.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import unicodedata

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from alignline.annotate.models import ROLES, LoginAttempt, Session, User
from alignline.errors import UserError

# login attempts older than this are deleted, unless record_login is told a window of its own: above any
# throttle window alignline uses (the web app's is 300 s and passes it)
LOGIN_KEEP_S = 3600
# purge on every 50th recorded attempt: one delete (a scan of a table kept small by it) amortized over 50
PURGE_EVERY = 50
MIN_PASSWORD = 8

# argon2id at the cheapest settings, for tests only (Store(url, kdf=FAST_KDF), or ALIGNLINE_FAST_KDF=1 in a
# test's environment): the default costs about half a second of CPU per hash, by design.
FAST_KDF = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


class AccessDenied(UserError):
    """The user may not see or label this project or item (web: 404/403)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def findable(name) -> bool:
    """A name that may be looked up: PostgreSQL text refuses NUL (a driver error, not "not found"), and no
    stored name holds one (add_user and create_project refuse it)."""
    return isinstance(name, str) and "\x00" not in name


def normalize_name(name: str) -> str:
    """The form a user name is stored and looked up in: NFKC (full-width and compatibility forms folded)."""
    return unicodedata.normalize("NFKC", name)


def check_new_name(name) -> str:
    """A new account's name, normalized; one UserError line naming what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("a user name is 1 to 200 characters")
    if not findable(name):
        raise UserError("a user name may not contain a NUL character")
    norm = normalize_name(name)
    if len(norm) > 200:
        raise UserError("a user name is 1 to 200 characters")
    bad = next((ch for ch in norm if unicodedata.category(ch)[0] in "CZ"), None)
    if bad is not None:
        spacing = bad.isspace() or unicodedata.category(bad)[0] == "Z"
        what = "whitespace" if spacing else "a control or invisible character"
        raise UserError(
            f"user name {name!r}: contains {what} (U+{ord(bad):04X}); use letters, digits and punctuation only"
        )
    return norm


def throttle_key(text) -> str:
    # normalized like a name: `ＡＬＩＣＥ` and `ALICE` are one account, so one count
    return normalize_name(str(text))[:200].replace("\x00", "\ufffd")


def public_user(u: User) -> dict:
    return {"id": u.id, "name": u.name, "role": u.role}


def check_password(name: str, password) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError(f"the password for {name!r} is shorter than {MIN_PASSWORD} characters")
    return password


class Accounts:
    """Users, sessions and login throttling; expects `tx`, `hasher` and `dummy_hash` from `Store.__init__`."""

    purge_every = PURGE_EVERY

    # --- users -------------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str) -> dict:
        """A new account under the NFKC form of `name` (see the module docstring)."""
        given, name = name, check_new_name(name)
        if role not in ROLES:
            raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
        check_password(name, password)
        user = User(name=name, role=role, password_hash=self.hasher.hash(password), created_at=time.time())
        try:
            with self.tx(write=True) as s:
                s.add(user)
                s.flush()
                return public_user(user)
        except IntegrityError:
            same = "" if given == name else f" (as {name!r})"
            raise UserError(f"user {given!r} already exists{same}") from None

    def set_password(self, name: str, password: str, *, end_sessions: bool = True) -> int:
        """A new password (at least MIN_PASSWORD characters); the user's sessions end (deleted), unless this is
        the same password rehashed at stronger settings on login. Returns how many sessions ended."""
        check_password(name, password)
        hashed = self.hasher.hash(password)
        with self.tx(write=True) as s:
            u = self.user_row(s, name)
            u.password_hash = hashed
            return self.end_sessions_of(s, u) if end_sessions else 0

    def set_disabled(self, name: str, disabled: bool) -> int:
        """Disable (no login, every session ended at once) or enable an account. Returns the sessions ended."""
        with self.tx(write=True) as s:
            u = self.user_row(s, name)
            u.disabled = bool(disabled)
            return self.end_sessions_of(s, u) if disabled else 0

    def disable_user(self, name: str) -> int:
        return self.set_disabled(name, True)

    def enable_user(self, name: str) -> int:
        return self.set_disabled(name, False)

    def end_sessions_of(self, s, u: User) -> int:
        return s.execute(delete(Session).where(Session.user_id == u.id)).rowcount or 0

    def find_user(self, s, name) -> User | None:
        """The account called `name`, looked up in its normalized form (then as given: an account stored
        before names were normalized)."""
        if not findable(name):
            return None
        norm = normalize_name(name)
        u = s.scalar(select(User).where(User.name == norm))
        if u is None and norm != name:
            u = s.scalar(select(User).where(User.name == name))
        return u

    def user_row(self, s, name: str) -> User:
        u = self.find_user(s, name)
        if u is None:
            raise UserError(f"no user named {name!r}")
        return u

    def user(self, name: str) -> dict | None:
        with self.tx() as s:
            u = self.find_user(s, name)
            return public_user(u) if u else None

    def users(self) -> list[dict]:
        """Every account, disabled ones too (`disabled` says which)."""
        with self.tx() as s:
            return [dict(public_user(u), disabled=u.disabled) for u in s.scalars(select(User).order_by(User.id))]

    def authenticate(self, name: str, password: str) -> dict | None:
        if not isinstance(name, str) or not isinstance(password, str):
            return None
        with self.tx() as s:
            u = self.find_user(s, name)
            stored = u.password_hash if u else None
            found = public_user(u) if u and not u.disabled else None
        if found is None:
            # Hash anyway, so a wrong name or a disabled account takes as long as a wrong password (no user
            # enumeration by timing, no telling a disabled account from a wrong password).
            self.dummy_hash = self.dummy_hash or self.hasher.hash(secrets.token_hex(8))
            stored = self.dummy_hash
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if found is None:
            return None
        if self.weaker_than_ours(stored):
            self.set_password(found["name"], password, end_sessions=False)
        return found

    def weaker_than_ours(self, stored: str) -> bool:
        """Rehash only upward: a store opened at cheaper settings (ALIGNLINE_FAST_KDF=1, meant for tests)
        must not quietly weaken the hashes of a real database it verifies."""
        if not self.hasher.check_needs_rehash(stored):
            return False
        try:
            have = extract_parameters(stored)
        except InvalidHashError:
            return True
        ours = self.hasher
        return (
            have.type != ours.type
            or have.time_cost < ours.time_cost
            or have.memory_cost < ours.memory_cost
            or have.hash_len < ours.hash_len
            or have.salt_len < ours.salt_len
        )

    def check_user(self, s, user: dict) -> User:
        u = s.get(User, user.get("id")) if isinstance(user, dict) else None
        if u is None or u.disabled:  # a dict kept from before the account was disabled opens nothing
            raise AccessDenied("unknown user")
        return u

    # --- sessions and login throttling -------------------------------------------------------------
    def create_session(self, user_id: int, ttl_s: int = 43200) -> tuple[str, str]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        with self.tx(write=True) as s:
            s.execute(delete(Session).where(Session.expires_at < now))  # expired ones are never read again
            s.add(
                Session(
                    token_hash=token_hash(token), user_id=user_id, csrf=csrf, created_at=now, expires_at=now + ttl_s
                )
            )
        return token, csrf

    def session(self, token: str) -> dict | None:
        if not isinstance(token, str) or not token:
            return None
        with self.tx() as s:
            row = s.execute(
                select(Session, User)
                .join(User, User.id == Session.user_id)
                .where(Session.token_hash == token_hash(token))
            ).first()
            # disabled: its sessions were deleted, but one created in a race with the disabling is refused too
            if row is None or row[0].expires_at < time.time() or row[1].disabled:
                return None
            return {"user": public_user(row[1]), "csrf": row[0].csrf, "expires_at": row[0].expires_at}

    def end_session(self, token: str) -> None:
        with self.tx(write=True) as s:
            s.execute(delete(Session).where(Session.token_hash == token_hash(token or "")))

    def login_failures(self, name: str, client: str, window_s: int, reset_on_success: bool = True) -> int:
        """Failed logins for this name from this client in the last `window_s` seconds, since the last
        success (a correct password clears the count). `name` or `client` None: count over that key alone.
        `reset_on_success=False` counts every failure in the window: a client's count across all names must
        not be cleared by that client signing in to an account of its own."""
        since = time.time() - window_s
        with self.tx() as s:
            keys = [LoginAttempt.at >= since]
            if name is not None:
                keys.append(LoginAttempt.name == throttle_key(name))
            if client is not None:
                keys.append(LoginAttempt.client == throttle_key(client))
            last_ok = s.scalar(select(func.max(LoginAttempt.at)).where(*keys, LoginAttempt.ok.is_(True)))
            if last_ok is not None and reset_on_success:
                keys.append(LoginAttempt.at > last_ok)
            return s.scalar(select(func.count(LoginAttempt.id)).where(*keys, LoginAttempt.ok.is_(False))) or 0

    def record_login(self, name: str, client: str, ok: bool, keep_s: float = LOGIN_KEEP_S) -> int:
        """Record an attempt; returns its id (for `settle_login`). Every `purge_every`-th one also deletes the
        attempts older than `keep_s`, which must be at least the largest window `login_failures` is asked
        about (the web app passes its own)."""
        now = time.time()
        with self.tx(write=True) as s:
            row = LoginAttempt(name=throttle_key(name), client=throttle_key(client), ok=bool(ok), at=now)
            s.add(row)
            s.flush()
            if row.id % self.purge_every == 0:
                self.purge_logins(keep_s, now, s)
            return row.id

    def purge_logins(self, keep_s: float = LOGIN_KEEP_S, now: float | None = None, s=None) -> int:
        """Delete the login attempts older than `keep_s` seconds; returns how many."""
        cutoff = (time.time() if now is None else now) - keep_s
        if s is None:
            with self.tx(write=True) as s:
                return s.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff)).rowcount or 0
        return s.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff)).rowcount or 0

    def settle_login(self, attempt_id: int, ok: bool | None) -> None:
        """An attempt recorded as failed before its password was checked: `ok` True marks it a success;
        None forgets it (a refused attempt, so a throttled client's retries do not pile up rows)."""
        with self.tx(write=True) as s:
            if ok is None:
                s.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
            else:
                row = s.get(LoginAttempt, attempt_id)
                if row is not None:
                    row.ok = bool(ok)
