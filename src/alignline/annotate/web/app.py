"""The annotation web app: a JSON API (the contract integrations script against) beside server-rendered pages.

`create_app(store)` wires both onto one `Store`; `alignline annotate serve` runs it under uvicorn. The endpoints
are plain `def` functions, so FastAPI runs them in its thread pool and the store's blocking database calls never
stall the event loop; the store itself makes each label one transaction, which is what keeps concurrent
submissions from losing any.

Status codes, the same for every endpoint: 401 not signed in; 403 a missing or wrong CSRF token, or an admin
endpoint for an annotator; 404 an item or project this user may not see (indistinguishable from one that does
not exist, so ids cannot be probed); 409 a second label on the same item (or a PUT correcting a label never
given, or a skip of an item already labelled); 413 a request body over the limit (10 MB unless
`max_body_bytes` says otherwise; see `web/limits.py`), refused before it is parsed; 422 a label that does not fit
the project's kind or rubric (with the store's message); 429 too many failed logins, with Retry-After.

Security headers on every response: a Content-Security-Policy allowing only this origin's own script and style
files (no inline script anywhere, so an injected `<script>` cannot run even if escaping failed), no framing, no
MIME sniffing, no referrer, and no caching of pages or API answers.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime, and they name
# classes imported inside create_app

import json
import math
import re
from pathlib import Path
from typing import Any

from alignline.annotate.store import AccessDenied, InvalidLabel, LabelConflict
from alignline.annotate.web import limits, pages
from alignline.annotate.web.auth import (
    SESSION_COOKIE,
    LoginThrottled,
    Viewer,
    clear_session_cookie,
    client_address,
    csrf_ok,
    log_in,
    public_user,
    set_session_cookie,
    viewer_from_token,
)
from alignline.errors import UserError

HERE = Path(__file__).parent
MAX_TEXT = 100_000  # characters in a rationale or an edited answer

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
]


class SecurityHeaders:
    """Pure ASGI middleware (no request buffering): adds the headers above; pages and API answers are not
    cached, since they carry one user's data."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.datastructures import MutableHeaders

        static = scope["path"].startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS:
                    headers[key] = value
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def finite(value: Any) -> Any:
    """NaN and infinities (an undefined kappa) become null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def export_filename(project: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", project)[:100] + ".jsonl"


def export_jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(finite(r), ensure_ascii=False) + "\n" for r in records)


def is_api(request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(store, *, secure_cookies: bool = False, max_body_bytes: int | None = None):
    """The FastAPI app over `store` (an `alignline.annotate.store.Store`). `secure_cookies=True` marks the
    session cookie Secure: set it whenever the app is reached over HTTPS (behind a TLS-terminating proxy).
    `max_body_bytes`: the request body limit (default: $ALIGNLINE_ANNOTATE_MAX_BODY_MB, else 10 MB)."""
    from fastapi import Body, Depends, FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field
    from starlette.exceptions import HTTPException as AnyHTTPException  # also the router's own 404 and 405

    app = FastAPI(title="alignline annotate", docs_url=None, redoc_url=None, openapi_url=None)
    # added first, so it runs inside SecurityHeaders: its own 413 answers carry the headers too
    app.add_middleware(limits.BodyLimit, limit=max_body_bytes or limits.max_body_bytes())
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.store = store
    app.state.secure_cookies = secure_cookies

    class LoginIn(BaseModel):
        username: str = Field(max_length=200)
        password: str = Field(max_length=1024)

    class LabelIn(BaseModel):
        choice: Any
        scores: dict[str, Any] | None = None
        rationale: str | None = Field(default=None, max_length=MAX_TEXT)
        edit: str | None = Field(default=None, max_length=MAX_TEXT)

    class AdjudicateIn(BaseModel):
        choice: Any

    # --- errors: JSON for the API, a page for the pages ------------------------------------------------------
    def error(request: Request, status: int, message: str, headers: dict | None = None):
        if is_api(request):
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        return pages.error_page(request, status, message, headers)

    @app.exception_handler(AccessDenied)
    def access_denied(request: Request, exc: AccessDenied):
        return error(request, 404, "not found")

    @app.exception_handler(InvalidLabel)
    def invalid_label(request: Request, exc: InvalidLabel):
        message = str(exc)
        # a second label by the same user on the same item, or no label to change: the item's state, not the body
        return error(request, 409 if isinstance(exc, LabelConflict) else 422, message)

    @app.exception_handler(UserError)
    def user_error(request: Request, exc: UserError):
        message = str(exc)
        return error(request, 404 if message.startswith("no project") else 400, message)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(request, 422, f"{where}: {first.get('msg')}" if where else str(first.get("msg")))

    @app.exception_handler(AnyHTTPException)
    def http_error(request: Request, exc: AnyHTTPException):
        if exc.status_code in (303, 302) and exc.headers:  # pages redirect to the login form this way
            return Response(status_code=exc.status_code, headers=exc.headers)
        return error(request, exc.status_code, str(exc.detail), exc.headers)

    # --- who is asking ----------------------------------------------------------------------------------------
    def viewer(request: Request) -> Viewer:
        found = viewer_from_token(store, request.cookies.get(SESSION_COOKIE))
        if found is None:
            raise HTTPException(401, "not signed in")
        return found

    def writer(request: Request, who: Viewer = Depends(viewer)) -> Viewer:
        if not csrf_ok(who, request.headers.get("x-csrf-token")):
            raise HTTPException(403, "missing or wrong CSRF token (send it in the X-CSRF-Token header)")
        return who

    def admin(who: Viewer = Depends(viewer)) -> Viewer:
        if not who.is_admin:
            raise HTTPException(403, "admins only")
        return who

    def admin_writer(who: Viewer = Depends(writer)) -> Viewer:
        if not who.is_admin:
            raise HTTPException(403, "admins only")
        return who

    # --- the JSON API -----------------------------------------------------------------------------------------
    @app.post("/api/login")
    def api_login(request: Request, body: LoginIn):
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPException(415, "send the login as application/json")
        try:
            found = log_in(store, body.username, body.password, client_address(request))
        except LoginThrottled as throttled:
            raise HTTPException(429, str(throttled), headers={"Retry-After": str(throttled.retry_after)}) from None
        if found is None:
            raise HTTPException(401, "wrong user name or password")
        user, token, csrf = found
        response = JSONResponse({"csrf_token": csrf, "user": public_user(user)})
        set_session_cookie(response, token, secure_cookies)
        return response

    @app.post("/api/logout")
    def api_logout(who: Viewer = Depends(writer)):
        store.end_session(who.token)
        response = JSONResponse({"ok": True})
        clear_session_cookie(response, secure_cookies)
        return response

    @app.get("/api/me")
    def api_me(who: Viewer = Depends(viewer)):
        return {"user": public_user(who.user), "csrf_token": who.csrf}

    @app.get("/api/projects")
    def api_projects(who: Viewer = Depends(viewer)):
        return finite(store.projects_for(who.user))

    @app.get("/api/projects/{name}")
    def api_project(name: str, who: Viewer = Depends(viewer)):
        project = store.project(name, who.user)
        if not who.is_admin:  # the team is the admins' business: an annotator sees no colleague's name
            project.pop("assigned", None)
        return finite(project)

    @app.get("/api/projects/{name}/next")
    def api_next(name: str, who: Viewer = Depends(viewer)):
        item = store.next_item(name, who.user)
        return Response(status_code=204) if item is None else finite(item)

    @app.get("/api/items/{item_id}")
    def api_item(item_id: int, who: Viewer = Depends(viewer)):
        return finite(store.item(item_id, who.user))

    @app.post("/api/items/{item_id}/labels", status_code=201)
    def api_label(item_id: int, body: LabelIn, who: Viewer = Depends(writer)):
        label = store.add_label(
            item_id, who.user, body.choice, scores=body.scores, rationale=body.rationale, edit=body.edit
        )
        return finite(label)

    @app.put("/api/items/{item_id}/labels")
    def api_relabel(item_id: int, body: LabelIn, who: Viewer = Depends(writer)):
        """Correct one's own label (replaced in place); 409 when this user has none on the item yet."""
        label = store.replace_label(
            item_id, who.user, body.choice, scores=body.scores, rationale=body.rationale, edit=body.edit
        )
        return finite(label)

    @app.post("/api/items/{item_id}/skip")
    def api_skip(item_id: int, who: Viewer = Depends(writer)):
        """Put the item off: the back of this user's queue (409 if they labelled it already)."""
        return finite(store.skip_item(item_id, who.user))

    @app.get("/api/projects/{name}/agreement")
    def api_agreement(name: str, who: Viewer = Depends(admin)):
        store.project(name, who.user)
        return finite(store.agreement(name))

    @app.get("/api/projects/{name}/disagreements")
    def api_disagreements(name: str, who: Viewer = Depends(admin)):
        store.project(name, who.user)
        return finite(store.disagreements(name))

    @app.post("/api/items/{item_id}/adjudicate")
    def api_adjudicate(item_id: int, body: AdjudicateIn = Body(...), who: Viewer = Depends(admin_writer)):
        store.item(item_id, who.user)
        store.adjudicate(item_id, who.user, body.choice)
        return {"ok": True, "item": item_id}

    @app.get("/api/projects/{name}/export")
    def api_export(name: str, who: Viewer = Depends(admin)):
        store.project(name, who.user)
        return Response(
            export_jsonl(store.export(name)),
            media_type="application/x-ndjson",
            headers={"content-disposition": f'attachment; filename="{export_filename(name)}"'},
        )

    pages.add_pages(app, store, secure_cookies=secure_cookies)
    return app
