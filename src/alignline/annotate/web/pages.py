"""Server-rendered pages of the annotation app: login, projects, annotate (per kind), dashboard, adjudication.

Jinja2 with autoescape on for every template, so prompts, responses and rationales (anyone's free text) are
shown as text; the page's only script is `static/app.js` (the CSP forbids inline script). Every form that
changes something carries the session's CSRF token in a hidden field, checked here before the store is called.
Pages work without JavaScript; the script adds keyboard shortcuts and the dashboard's live refresh.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime (see app.py)

import hmac
from functools import lru_cache
from pathlib import Path

from alignline.annotate.web.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginThrottled,
    clear_session_cookie,
    client_address,
    csrf_ok,
    log_in,
    new_login_token,
    set_session_cookie,
    viewer_from_token,
)

HERE = Path(__file__).parent
KIND_TITLES = {
    "pairwise": "Which response is better?",
    "ranking": "Rank the responses, best first",
    "best_worst": "Pick the best and the worst response",
    "rating": "Rate the response",
}


def number(x) -> str:
    """As app.js shows it: a dash for none, whole numbers bare, others to 3 decimals."""
    if x is None:
        return "–"
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() else f"{x:.3f}"
    return str(x)


@lru_cache(maxsize=1)
def templates():
    import jinja2
    from fastapi.templating import Jinja2Templates

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.ChainableUndefined
    )
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * float(x):.0f}%"
    env.filters["num"] = number
    return Jinja2Templates(env=env)


def render(request, name: str, status_code: int = 200, headers: dict | None = None, **context):
    return templates().TemplateResponse(request, name, context, status_code=status_code, headers=headers)


def error_page(request, status: int, message: str, headers: dict | None = None):
    who = viewer_from_token(request.app.state.store, request.cookies.get(SESSION_COOKIE))
    return render(request, "error.html", status, headers, status=status, message=message, who=who)


def letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def choice_text(kind: str, choice, scores=None) -> str:
    """A label as the adjudicator reads it: "A", "tie", "B > A > C", "best B, worst A", or the scores."""
    if kind == "pairwise":
        return "tie" if choice == "tie" else (letter(choice) if isinstance(choice, int) else "")
    if kind == "ranking" and isinstance(choice, list):
        return " > ".join(letter(i) for i in choice if isinstance(i, int))
    if kind == "best_worst" and isinstance(choice, dict):
        return f"best {letter(choice.get('best', 0))}, worst {letter(choice.get('worst', 0))}"
    if scores:
        return "; ".join(
            f"{k} {', '.join(str(v) for v in (vs if isinstance(vs, list) else [vs]))}" for k, vs in scores.items()
        )
    return ""


def as_messages(prompt) -> list[dict]:
    """A prompt is a string or a chat (a list of {role, content}); the page shows both as turns."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [
        {"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in prompt if isinstance(m, dict)
    ]


def criteria(rubric) -> list[dict]:
    """The rubric's criteria as [{name, description, low, high}], whatever of those the rubric states."""
    if not rubric:
        return []
    found = rubric.get("criteria", rubric) if isinstance(rubric, dict) else rubric
    if isinstance(found, dict):
        found = [{"name": k, **(v if isinstance(v, dict) else {"description": v})} for k, v in found.items()]
    out = []
    for c in found:
        c = c if isinstance(c, dict) else {"name": str(c)}
        scale = c.get("scale") or [1, 5]
        low, high = (int(scale[0]), int(scale[-1])) if isinstance(scale, (list, tuple)) else (1, int(scale))
        out.append(
            {
                "name": str(c.get("name")),
                "description": str(c.get("description") or ""),
                "low": int(c.get("min", low)),
                "high": int(c.get("max", high)),
            }
        )
    return out


METRICS = [
    ("cohen", "Cohen's kappa", "mean over annotator pairs"),
    ("fleiss", "Fleiss' kappa", "all annotators"),
    ("krippendorff", "Krippendorff's alpha", "nominal, tolerates missing labels"),
    ("gold_accuracy", "Gold accuracy", "on the hidden gold items"),
]


def progress_view(p: dict) -> dict:
    """{done, total, mine} from a project dict of the store (its progress counts)."""
    return {"total": p.get("items", 0), "done": p.get("complete", 0), "mine": p.get("mine", 0)}


def annotator_rows(agreement: dict) -> list[dict]:
    return [r for r in agreement.get("annotators") or [] if isinstance(r, dict)]


def columns(rows: list[dict]) -> list[tuple[str, str]]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys and not isinstance(r[k], (dict, list))]
    return [(k, k.replace("_", " ")) for k in keys]


class FormError(ValueError):
    """A form that does not make a label (a rank given twice, a missing choice): shown as a 422 page."""


def label_from_form(kind: str, form, n_responses: int, rubric=None) -> dict:
    """The label a submitted annotate form means, in the API's shape {choice, scores, rationale, edit}.

    pairwise: `choice` = "0" | "1" | "tie"; ranking: `rank_<i>` = 1..K for each response i (a permutation);
    best_worst: `best` and `worst` indices; rating: only scores. `score_<criterion>_<i>` fields give rubric
    scores per response i."""

    def index(field: str) -> int:
        raw = form.get(field)
        # isdecimal, not isdigit: "²" is a digit that int() refuses (a forged field would be a 500)
        if raw is None or not str(raw).isdecimal() or int(raw) >= n_responses:
            raise FormError(f"{field}: choose one of the {n_responses} responses")
        return int(raw)

    if kind == "pairwise":
        raw = str(form.get("choice", ""))
        choice = "tie" if raw == "tie" else index("choice")
    elif kind == "ranking":
        ranks = []
        for i in range(n_responses):
            raw = str(form.get(f"rank_{i}", ""))
            if not raw.isdecimal() or not 1 <= int(raw) <= n_responses:
                raise FormError(f"rank_{i}: give every response a rank from 1 to {n_responses}")
            ranks.append(int(raw))
        if sorted(ranks) != list(range(1, n_responses + 1)):
            raise FormError("each rank must be used once")
        choice = sorted(range(n_responses), key=lambda i: ranks[i])
    elif kind == "best_worst":
        best, worst = index("best"), index("worst")
        if best == worst:
            raise FormError("the best and the worst response must differ")
        choice = {"best": best, "worst": worst}
    else:
        choice = None
    scores = {}
    for c in criteria(rubric):  # {criterion: [score per response]}, a criterion left blank everywhere is left out
        raw = [str(form.get(f"score_{c['name']}_{i}", "")).strip() for i in range(n_responses)]
        if not any(raw):
            continue
        if not all(r.removeprefix("-").replace(".", "", 1).isdecimal() for r in raw):  # "--1" too was a 500
            raise FormError(f"{c['name']}: score every response from {c['low']} to {c['high']}, or none")
        scores[c["name"]] = [float(r) if "." in r else int(r) for r in raw]
    rationale = str(form.get("rationale") or "").strip() or None
    edit = str(form.get("edit") or "").strip() or None
    return {"choice": choice, "scores": scores or None, "rationale": rationale, "edit": edit}


def add_pages(app, store, *, secure_cookies: bool = False) -> None:
    """Register the page routes on `app` (see the module docstring)."""
    from fastapi import HTTPException, Request
    from fastapi.responses import RedirectResponse

    def see_other(url: str):
        return RedirectResponse(url, status_code=303)

    def signed_in(request: Request):
        who = viewer_from_token(store, request.cookies.get(SESSION_COOKIE))
        if who is None:
            raise HTTPException(303, "sign in first", headers={"location": "/login"})
        return who

    async def posted(request: Request):
        """The signed-in user and the form of a POST, after its CSRF field checked out."""
        from starlette.concurrency import run_in_threadpool

        who = await run_in_threadpool(signed_in, request)  # a database read: off the event loop
        form = await request.form()
        if not csrf_ok(who, form.get("csrf_token")):
            raise HTTPException(403, "this form has expired or did not come from this site; reload and retry")
        return who, form

    def admin_only(who):
        if not who.is_admin:
            raise HTTPException(403, "admins only")

    def login_form(request: Request, status: int = 200, message: str = "", headers: dict | None = None):
        token = new_login_token()
        response = render(request, "login.html", status, headers, login_token=token, message=message, who=None)
        response.set_cookie(
            LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict", secure=secure_cookies, path="/login"
        )
        return response

    @app.get("/", include_in_schema=False)
    def home(request: Request):
        signed = viewer_from_token(store, request.cookies.get(SESSION_COOKIE))
        return see_other("/projects" if signed else "/login")

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request):
        return login_form(request)

    @app.post("/login", include_in_schema=False)
    async def login_post(request: Request):
        form = await request.form()
        cookie, sent = request.cookies.get(LOGIN_COOKIE, ""), str(form.get("csrf_token", ""))
        if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return login_form(request, 403, "the login form expired; please try again")
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        from starlette.concurrency import run_in_threadpool

        try:  # argon2 takes tens of milliseconds: off the event loop
            found = await run_in_threadpool(log_in, store, name, password, client_address(request))
        except LoginThrottled as throttled:
            return login_form(request, 429, str(throttled), {"Retry-After": str(throttled.retry_after)})
        if found is None:
            return login_form(request, 401, "wrong user name or password")
        response = see_other("/projects")
        set_session_cookie(response, found[1], secure_cookies)
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout_post(request: Request):
        from starlette.concurrency import run_in_threadpool

        who, _ = await posted(request)
        await run_in_threadpool(store.end_session, who.token)
        response = see_other("/login")
        clear_session_cookie(response, secure_cookies)
        return response

    @app.get("/projects", include_in_schema=False)
    def projects_page(request: Request):
        who = signed_in(request)
        projects = [dict(p, progress_view=progress_view(p)) for p in store.projects_for(who.user)]
        return render(request, "projects.html", who=who, projects=projects)

    def annotate_view(request: Request, who, project: dict, item: dict | None, **context):
        context = {"who": who, "project": project, "item": item, **context}
        if item is not None:
            context.update(
                messages=as_messages(item["prompt"]),
                criteria=criteria(item.get("rubric")),
                letters=[letter(i) for i in range(len(item["responses"]))],
                kind=item.get("kind") or project.get("kind", "pairwise"),
                title=KIND_TITLES.get(item.get("kind") or project.get("kind"), "Label this item"),
            )
        return render(request, "annotate.html", **context)

    @app.get("/projects/{name}/annotate", include_in_schema=False)
    def annotate_page(request: Request, name: str):
        who = signed_in(request)
        project = store.project(name, who.user)
        q = request.query_params
        return annotate_view(
            request,
            who,
            project,
            store.next_item(name, who.user),
            saved=q.get("saved"),
            skipped=q.get("skipped"),
            changed=q.get("changed"),
            last=store.last_labelled(name, who.user),
        )

    @app.get("/projects/{name}/items/{item_id}/change", include_in_schema=False)
    def change_page(request: Request, name: str, item_id: int):
        """The annotate form again for an item this user labelled, their answer shown; it replaces the label."""
        who = signed_in(request)
        project = store.project(name, who.user)
        item = store.item(item_id, who.user)
        if item["project"] != project["name"] or item["label"] is None:
            raise HTTPException(404, "you have no answer on this item to change")
        label = item["label"]
        return annotate_view(
            request,
            who,
            project,
            item,
            changing=True,
            previous=choice_text(item["kind"], label["choice"], label["scores"]),
        )

    @app.post("/projects/{name}/items/{item_id}/relabel", include_in_schema=False)
    async def relabel_post(request: Request, name: str, item_id: int):
        from starlette.concurrency import run_in_threadpool

        who, form = await posted(request)
        item = await run_in_threadpool(store.item, item_id, who.user)
        try:
            label = label_from_form(item.get("kind") or "pairwise", form, len(item["responses"]), item.get("rubric"))
        except FormError as bad:
            raise HTTPException(422, str(bad)) from None
        await run_in_threadpool(lambda: store.replace_label(item_id, who.user, **label))
        return see_other(f"/projects/{name}/annotate?changed={item_id}")

    @app.post("/projects/{name}/items/{item_id}/skip", include_in_schema=False)
    async def skip_post(request: Request, name: str, item_id: int):
        from starlette.concurrency import run_in_threadpool

        who, _ = await posted(request)
        await run_in_threadpool(store.skip_item, item_id, who.user)
        return see_other(f"/projects/{name}/annotate?skipped={item_id}")

    @app.post("/projects/{name}/items/{item_id}/label", include_in_schema=False)
    async def label_post(request: Request, name: str, item_id: int):
        from starlette.concurrency import run_in_threadpool

        who, form = await posted(request)
        item = await run_in_threadpool(store.item, item_id, who.user)
        kind = item.get("kind") or "pairwise"
        try:
            label = label_from_form(kind, form, len(item["responses"]), item.get("rubric"))
        except FormError as bad:
            raise HTTPException(422, str(bad)) from None
        await run_in_threadpool(lambda: store.add_label(item_id, who.user, **label))
        return see_other(f"/projects/{name}/annotate?saved={item_id}")

    @app.get("/projects/{name}/dashboard", include_in_schema=False)
    def dashboard_page(request: Request, name: str):
        who = signed_in(request)
        admin_only(who)
        project = store.project(name, who.user)
        agreement = store.agreement(name)
        rows = annotator_rows(agreement)
        return render(
            request,
            "dashboard.html",
            who=who,
            project=project,
            agreement=agreement,
            metrics=METRICS,
            progress=progress_view(project),
            annotators=rows,
            annotator_columns=columns(rows),
            queued=agreement["disagreements"],
        )  # counted by the (cached) report: no second pass

    @app.get("/projects/{name}/adjudicate", include_in_schema=False)
    def adjudicate_page(request: Request, name: str):
        who = signed_in(request)
        admin_only(who)
        project = store.project(name, who.user)
        queue = [
            dict(
                d,
                messages=as_messages(d.get("prompt", "")),
                letters=[letter(i) for i in range(len(d.get("responses", [])))],
                labels=[
                    dict(lab, choice_view=choice_text(d.get("kind", ""), lab.get("choice"), lab.get("scores")))
                    for lab in d.get("labels", [])
                ],
            )
            for d in store.disagreements(name)
        ]
        return render(
            request,
            "adjudicate.html",
            who=who,
            project=project,
            queue=queue,
            resolved=request.query_params.get("resolved"),
        )

    @app.post("/projects/{name}/items/{item_id}/adjudicate", include_in_schema=False)
    async def adjudicate_post(request: Request, name: str, item_id: int):
        from starlette.concurrency import run_in_threadpool

        who, form = await posted(request)
        admin_only(who)
        item = await run_in_threadpool(store.item, item_id, who.user)
        try:
            label = label_from_form(item.get("kind") or "pairwise", form, len(item["responses"]))
        except FormError as bad:
            raise HTTPException(422, str(bad)) from None
        await run_in_threadpool(store.adjudicate, item_id, who.user, label["choice"])
        return see_other(f"/projects/{name}/adjudicate?resolved={item_id}")
