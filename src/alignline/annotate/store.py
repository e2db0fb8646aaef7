"""The annotation store: users, sessions, projects, items and labels behind one small API.

The web app (`annotate/web/`), serving's review queue (`serve/`) and active learning code against this
class, never against the tables. Every method opens its own short transaction, so one `Store` is safe to
share between threads and several server processes can share one database (sessions and login
throttling live in it too). Users are passed around as {"id", "name", "role"}; the role is re-read from
the database on each call, so a demoted admin loses access at once, and a disabled one loses it all.
Accounts, sessions and login throttling are in `accounts.py` (this class inherits them).

Agreement and the disagreement queue (every dashboard asks every 5 s) are cached per project, keyed on the
project's revision: one aggregate query over its labels, items and adjudications (counts, largest ids, latest
times; a corrected label gets a new time). Nothing changed: the cached report, without reading 100k items again.
Agreement reads no texts (prompts, responses, rationales stay in the database). A report slow to compute is
recomputed at most every 10 times its cost while labels keep arriving (`report_cache.py`). Each process keeps
its own cache and checks the revision in the database, so several servers on one database stay right. The
cached reports are shared: callers must not change them.

An annotator may skip an item (it moves to the back of their own queue) and correct their own label
(`replace_label`, in place). An adjudicated item is settled: no annotator is served it, nor counts it as to go.

Blinding: each item's responses are shuffled once, when it is created (with a secret random seed: nothing
an annotator can see predicts it), and stored in the order shown. Labels arrive in shown positions and are stored in the
original ones, so agreement and exports never depend on the shuffle. Gold items carry a known answer and
look like any other item; only agreement() tells them apart.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from contextlib import contextmanager

from alembic.util.exc import CommandError
from argon2 import PasswordHasher
from sqlalchemy import case, exists, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import aliased, defer, sessionmaker

from alignline.annotate.accounts import FAST_KDF, AccessDenied, Accounts, findable
from alignline.annotate.db import make_engine, open_error, resolve_db_url, shown, upgrade
from alignline.annotate.models import Adjudication, Assignment, Base, Item, Label, Project, ReviewEntry, Skip, User
from alignline.annotate.report_cache import ReportCache
from alignline.annotate.results import (
    agreement_report,
    disagreements,
    export_records,
    label_rows,
    original_responses,
    pairs_as_items,
)
from alignline.annotate.tasks import (
    DEFAULT_RATING_RUBRIC,
    InvalidLabel,
    check_choice,
    check_items,
    check_kind,
    check_prompt,
    check_scores,
    check_text,
    choice_to_original,
    choice_to_shown,
    parse_rubric,
    scores_to_original,
    scores_to_shown,
    shuffle_order,
)
from alignline.errors import UserError

__all__ = ["AccessDenied", "FAST_KDF", "InvalidLabel", "LabelConflict", "Store", "resolve_db_url"]


class LabelConflict(InvalidLabel):
    """A label that clashes with the item's state: a second one by the same user, or none to change (web: 409)."""


# the largest id an Integer column holds on PostgreSQL (32 bits; SQLite's 64): a bigger one from a URL is
# "no such item", not a driver error
MAX_ID = 2**31 - 1


class Store(Accounts):
    def __init__(self, url: str, migrate: bool = True, *, kdf: dict | None = None):
        self.url = resolve_db_url(url)
        self.engine = make_engine(self.url)
        try:
            if migrate:
                upgrade(self.engine)
            else:
                with self.engine.connect():
                    pass
        except (OperationalError, DBAPIError) as e:
            self.engine.dispose()
            raise open_error(self.url, e) from None
        except CommandError as e:  # a revision this code does not know: a newer alignline migrated it
            self.engine.dispose()
            raise UserError(
                f"the annotation database {shown(self.url)} has a schema this alignline does not "
                f"know ({e}); use the alignline version that created it, or a newer one"
            ) from None
        self.read_session = sessionmaker(self.engine, expire_on_commit=False)
        self.write_session = sessionmaker(self.engine.execution_options(write=True), expire_on_commit=False)

        if kdf is None and os.environ.get("ALIGNLINE_FAST_KDF") == "1":
            kdf = FAST_KDF
        # argon2id, the library's defaults (64 MiB, 3 passes) unless told; a hash made at other settings is
        # redone at these on the next successful login (check_needs_rehash).
        self.hasher = PasswordHasher(**(kdf or {}))
        self.dummy_hash = None
        self.reports = ReportCache()  # agreement and the disagreement queue, per project and revision

    @contextmanager
    def tx(self, write: bool = False):
        """An ORM session in one transaction (BEGIN IMMEDIATE on SQLite when `write`)."""
        with (self.write_session if write else self.read_session)() as s, s.begin():
            yield s

    def close(self) -> None:
        self.engine.dispose()

    def create_all(self) -> None:
        """The schema straight from the models, for a `Store(url, migrate=False)` in tests."""
        Base.metadata.create_all(self.engine)

    # --- projects ----------------------------------------------------------------------------------
    def create_project(
        self,
        name: str,
        items: list[dict],
        *,
        kind: str = "pairwise",
        rubric: dict | None = None,
        assign: list[str] = (),
        gold: list[dict] = (),
        min_annotations: int = 1,
        source: str = "items",
        gold_source: str = "gold",
    ) -> dict:
        """A project and its items (gold ones placed at seeded random positions among them). `source` and
        `gold_source` name the files in error messages."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise UserError("a project name is 1 to 200 characters")
        if not findable(name):
            raise UserError("a project name may not contain a NUL character")
        if "/" in name or name.strip() in (".", ".."):  # the web app's URLs could never reach it
            raise UserError(f"a project name may not contain '/' or be '.' or '..', got {name!r}")
        check_kind(kind)
        if isinstance(min_annotations, bool) or not isinstance(min_annotations, int) or min_annotations < 1:
            raise UserError(f"min_annotations must be a whole number >= 1, got {min_annotations!r}")
        rubric = parse_rubric(rubric)
        if kind == "rating" and not rubric["criteria"]:
            rubric = {**DEFAULT_RATING_RUBRIC, "instructions": rubric["instructions"]}
        regular = check_items(list(items), kind, source)
        golden = check_items(list(gold), kind, gold_source, gold=True)
        now = time.time()
        try:
            with self.tx(write=True) as s:
                users = []
                for uname in assign:
                    u = self.find_user(s, uname)
                    if u is None:
                        raise UserError(
                            f"cannot assign {uname!r} to {name!r}: no such user (alignline annotate user add)"
                        )
                    users.append(u)
                p = Project(name=name, kind=kind, rubric=rubric, min_annotations=min_annotations, created_at=now)
                s.add(p)
                s.flush()
                for u in {u.id: u for u in users}.values():
                    s.add(Assignment(project_id=p.id, user_id=u.id))
                total = len(regular) + len(golden)
                # unseeded (OS randomness): a seed an annotator could know (the project's name) would let
                # them recompute which positions are gold
                gold_slots = set(random.SystemRandom().sample(range(total), len(golden)))
                reg, gold_it = iter(regular), iter(golden)
                for pos in range(total):
                    rec = next(gold_it) if pos in gold_slots else next(reg)
                    s.add(self.item_row(p, pos, rec, now))
                s.flush()
                return self.project_dict(s, p, None)
        except IntegrityError:
            raise UserError(f"project {name!r} already exists") from None

    def item_row(self, p: Project, pos: int, rec: dict, now: float, extra_meta: dict | None = None) -> Item:
        # a secret seed: name and position are shown to annotators, and the original order can mean something
        # (an imported pair's chosen answer comes first); the order is kept in meta, so nothing needs the seed
        order = shuffle_order(len(rec["responses"]), f"{p.name}|{pos}|{secrets.token_hex(16)}")
        meta = {"order": order, "models": rec.get("models"), "fields": rec.get("fields") or {}, **(extra_meta or {})}
        return Item(
            project_id=p.id,
            position=pos,
            external_id=rec.get("external_id"),
            prompt=rec["prompt"],
            responses=[rec["responses"][o] for o in order],
            meta=meta,
            is_gold=rec.get("gold") is not None,
            gold=rec.get("gold"),
            created_at=now,
        )

    def add_items(
        self, project: str, items: list[dict], source: str = "items", extra_meta: list[dict] | None = None
    ) -> int:
        """Append items to an existing project (after its last one); returns how many."""
        with self.tx(write=True) as s:
            p = s.scalar(select(Project).where(Project.name == project))
            if p is None:
                raise UserError(f"no project named {project!r}")
            recs = check_items(list(items), p.kind, source)
            start = (s.scalar(select(func.max(Item.position)).where(Item.project_id == p.id)) or -1) + 1
            now = time.time()
            for i, rec in enumerate(recs):
                s.add(self.item_row(p, start + i, rec, now, (extra_meta or [None] * len(recs))[i]))
            return len(recs)

    def assign(self, project: str, names: list[str]) -> None:
        with self.tx(write=True) as s:
            p = s.scalar(select(Project).where(Project.name == project))
            if p is None:
                raise UserError(f"no project named {project!r}")
            have = set(s.scalars(select(Assignment.user_id).where(Assignment.project_id == p.id)))
            for n in names:
                u = self.user_row(s, n)
                if u.id not in have:
                    s.add(Assignment(project_id=p.id, user_id=u.id))
                    have.add(u.id)

    def visible(self, s, p: Project | None, u: User) -> bool:
        if p is None:
            return False
        if u.role == "admin":
            return True
        return (
            s.scalar(select(Assignment.id).where(Assignment.project_id == p.id, Assignment.user_id == u.id)) is not None
        )

    def visible_project(self, s, name: str, user: dict) -> tuple[Project, User]:
        u = self.check_user(s, user)
        p = s.scalar(select(Project).where(Project.name == name)) if findable(name) else None
        if not self.visible(s, p, u):
            raise AccessDenied(f"no project {name!r} for {u.name}")
        return p, u

    def project_dict(self, s, p: Project, u: User | None) -> dict:
        counts = dict(
            s.execute(
                select(Item.id, func.count(Label.id))
                .outerjoin(Label, Label.item_id == Item.id)
                .where(Item.project_id == p.id)
                .group_by(Item.id)
            ).all()
        )
        out = {
            "id": p.id,
            "name": p.name,
            "kind": p.kind,
            "rubric": p.rubric,
            "min_annotations": p.min_annotations,
            "items": len(counts),
            "labels": sum(counts.values()),
            "complete": sum(n >= p.min_annotations for n in counts.values()),
        }
        if u is not None:
            mine = (
                s.scalar(
                    select(func.count(Label.id))
                    .join(Item, Item.id == Label.item_id)
                    .where(Item.project_id == p.id, Label.user_id == u.id)
                )
                or 0
            )
            # what next_item would still serve: an adjudicated item is settled, so it is not "to go"
            remaining = s.scalar(select(func.count(Item.id)).where(Item.project_id == p.id, *self.open_for(u))) or 0
            out.update(mine=mine, remaining=remaining)
        return out

    def projects_for(self, user: dict) -> list[dict]:
        """Admins: every project; annotators: those assigned to them. Each with progress counts: items,
        labels, complete (items with >= min_annotations labels), mine and remaining (this user's)."""
        with self.tx() as s:
            u = self.check_user(s, user)
            q = select(Project).order_by(Project.name)
            if u.role != "admin":
                q = q.join(Assignment, Assignment.project_id == Project.id).where(Assignment.user_id == u.id)
            return [self.project_dict(s, p, u) for p in s.scalars(q)]

    def project(self, name: str, user: dict) -> dict:
        with self.tx() as s:
            p, u = self.visible_project(s, name, user)
            out = self.project_dict(s, p, u)
            out["assigned"] = list(
                s.scalars(
                    select(User.name)
                    .join(Assignment, Assignment.user_id == User.id)
                    .where(Assignment.project_id == p.id)
                    .order_by(User.name)
                )
            )
            return out

    def project_summaries(self) -> list[dict]:
        """Every project with its progress counts (for the CLI and admin tools; no user involved)."""
        with self.tx() as s:
            return [self.project_dict(s, p, None) for p in s.scalars(select(Project).order_by(Project.name))]

    def project_names(self) -> list[str]:
        with self.tx() as s:
            return list(s.scalars(select(Project.name).order_by(Project.name)))

    # --- items and labels --------------------------------------------------------------------------
    def blinded(self, p: Project, it: Item, label: Label | None = None) -> dict:
        """What an annotator may see: no model names, no gold flag or answer, no hidden fields."""
        order = it.meta["order"]
        return {
            "id": it.id,
            "project": p.name,
            "kind": p.kind,
            "rubric": p.rubric,
            "prompt": it.prompt,
            "responses": list(it.responses),
            "label": None
            if label is None
            else {
                "choice": choice_to_shown(p.kind, label.choice, order),
                "scores": scores_to_shown(label.scores, order),
                "rationale": label.rationale,
                "edit": label.edit,
            },
        }

    def open_for(self, u: User) -> list:
        """Conditions on Item: not labelled by `u`, not adjudicated away."""
        mine = aliased(Label)
        return [
            ~exists().where(mine.item_id == Item.id, mine.user_id == u.id),
            ~exists().where(Adjudication.item_id == Item.id),
        ]

    def next_item(self, project: str, user: dict) -> dict | None:
        """The next item for this user: one they have not labelled (nor adjudicated away); items they skipped
        last (oldest skip first), before them items short of min_annotations, then fewest labels, then
        position (so the order is deterministic)."""
        with self.tx() as s:
            p, u = self.visible_project(s, project, user)
            n = func.count(Label.id)
            q = (
                select(Item.id)
                .outerjoin(Label, Label.item_id == Item.id)
                .outerjoin(Skip, (Skip.item_id == Item.id) & (Skip.user_id == u.id))
                .where(Item.project_id == p.id, *self.open_for(u))
                .group_by(Item.id, Item.position, Skip.id, Skip.at)
                .order_by(
                    case((Skip.id.is_(None), 0), else_=1),
                    func.coalesce(Skip.at, 0),
                    case((n >= p.min_annotations, 1), else_=0),
                    n,
                    Item.position,
                    Item.id,
                )
                .limit(1)
            )
            item_id = s.scalar(q)
            return None if item_id is None else self.blinded(p, s.get(Item, item_id))

    def skip_item(self, item_id: int, user: dict) -> dict:
        """Put an item off: it goes to the back of this user's queue and comes back once the rest are done
        (skipped again, to the back again). Recorded per (item, user) with a count. An item this user
        already labelled is a LabelConflict (change the label instead)."""
        for attempt in range(2):  # a double click races its own insert: the loser retries as an update
            try:
                with self.tx(write=True) as s:
                    it, p, u = self.item_for(s, item_id, user)
                    if s.scalar(select(Label.id).where(Label.item_id == it.id, Label.user_id == u.id)) is not None:
                        raise LabelConflict(
                            f"item {it.id} is already labelled by {u.name}: change the label instead of skipping"
                        )
                    row = s.scalar(select(Skip).where(Skip.item_id == it.id, Skip.user_id == u.id))
                    if row is None:
                        row = Skip(item_id=it.id, user_id=u.id, count=1, at=time.time())
                        s.add(row)
                    else:
                        row.count, row.at = row.count + 1, time.time()
                    s.flush()
                    return {"item_id": it.id, "user_id": u.id, "skips": row.count, "at": row.at}
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def skips(self, project: str) -> list[dict]:
        """Every skip in a project (for admins: which items people put off, how often)."""
        with self.tx() as s:
            p = self.project_row(s, project)
            rows = s.execute(
                select(Skip, User.name)
                .join(User, User.id == Skip.user_id)
                .join(Item, Item.id == Skip.item_id)
                .where(Item.project_id == p.id)
                .order_by(Skip.id)
            )
            return [{"item_id": k.item_id, "user": name, "skips": k.count, "at": k.at} for k, name in rows]

    def last_labelled(self, project: str, user: dict) -> int | None:
        """The item this user labelled most recently in `project` (for "change my last answer"), or None."""
        with self.tx() as s:
            p, u = self.visible_project(s, project, user)
            return s.scalar(
                select(Label.item_id)
                .join(Item, Item.id == Label.item_id)
                .where(Item.project_id == p.id, Label.user_id == u.id)
                .order_by(Label.created_at.desc(), Label.id.desc())
                .limit(1)
            )

    def item_for(self, s, item_id: int, user: dict) -> tuple[Item, Project, User]:
        u = self.check_user(s, user)
        try:  # an id from a URL path may arrive as text
            item_id = int(item_id) if not isinstance(item_id, bool) else None
        except (TypeError, ValueError):
            item_id = None
        if item_id is not None and not -MAX_ID <= item_id <= MAX_ID:
            item_id = None
        it = s.get(Item, item_id) if item_id is not None else None
        p = s.get(Project, it.project_id) if it else None
        if not self.visible(s, p, u):
            raise AccessDenied(f"no item {item_id!r} for {u.name}")
        return it, p, u

    def item(self, item_id: int, user: dict) -> dict:
        """The item, blinded, with this user's own label (shown positions) if they gave one."""
        with self.tx() as s:
            it, p, u = self.item_for(s, item_id, user)
            label = s.scalar(select(Label).where(Label.item_id == it.id, Label.user_id == u.id))
            return self.blinded(p, it, label)

    def add_label(
        self,
        item_id: int,
        user: dict,
        choice,
        scores: dict | None = None,
        rationale: str | None = None,
        edit: str | None = None,
    ) -> dict:
        """One label per user per item, `choice` and `scores` in the positions shown; stored in original ones.
        A second label from the same user is an InvalidLabel ('already labelled'), however close the race."""
        try:
            with self.tx(write=True) as s:
                it, p, u = self.item_for(s, item_id, user)
                n = len(it.responses)
                choice = check_choice(p.kind, choice, n)
                scores = check_scores(scores, p.rubric, n, required=p.kind == "rating")
                rationale, edit = check_text(rationale, "rationale"), check_text(edit, "edit")
                if s.scalar(select(Label.id).where(Label.item_id == it.id, Label.user_id == u.id)) is not None:
                    raise LabelConflict(f"item {it.id} is already labelled by {u.name}")
                order = it.meta["order"]
                row = Label(
                    item_id=it.id,
                    user_id=u.id,
                    choice=choice_to_original(p.kind, choice, order),
                    scores=scores_to_original(scores, order),
                    rationale=rationale,
                    edit=edit,
                    created_at=time.time(),
                )
                s.add(row)
                s.flush()
                return {
                    "id": row.id,
                    "item_id": it.id,
                    "user_id": u.id,
                    "choice": choice,
                    "scores": scores,
                    "rationale": rationale,
                    "edit": edit,
                    "created_at": row.created_at,
                }
        except IntegrityError:
            # The unique (item, user) constraint caught a concurrent duplicate the check above could not see.
            raise LabelConflict(f"item {item_id} is already labelled by {user.get('name')}") from None

    def replace_label(
        self,
        item_id: int,
        user: dict,
        choice,
        scores: dict | None = None,
        rationale: str | None = None,
        edit: str | None = None,
    ) -> dict:
        """Correct one's own label: the new answer replaces this user's label on the item in place (same id;
        no history kept). No label yet is a LabelConflict (add one first). An adjudication, if any, stands."""
        with self.tx(write=True) as s:
            it, p, u = self.item_for(s, item_id, user)
            n = len(it.responses)
            choice = check_choice(p.kind, choice, n)
            scores = check_scores(scores, p.rubric, n, required=p.kind == "rating")
            rationale, edit = check_text(rationale, "rationale"), check_text(edit, "edit")
            row = s.scalar(select(Label).where(Label.item_id == it.id, Label.user_id == u.id))
            if row is None:
                raise LabelConflict(f"item {it.id} has no label by {u.name} to change")
            order = it.meta["order"]
            row.choice, row.scores = choice_to_original(p.kind, choice, order), scores_to_original(scores, order)
            row.rationale, row.edit, row.created_at = rationale, edit, time.time()
            return {
                "id": row.id,
                "item_id": it.id,
                "user_id": u.id,
                "choice": choice,
                "scores": scores,
                "rationale": rationale,
                "edit": edit,
                "created_at": row.created_at,
            }

    def items(self, project: str) -> list[dict]:
        """Every item of a project, unblinded (original response order, model names, gold flag, label count):
        for admin tools and active learning, never for annotators."""
        with self.tx() as s:
            p = self.project_row(s, project)
            rows, labels, adj = self.labelled(s, p)
            return [
                {
                    "id": it.id,
                    "external_id": it.external_id,
                    "position": it.position,
                    "prompt": it.prompt,
                    "responses": original_responses(it),
                    "models": it.meta.get("models"),
                    "is_gold": it.is_gold,
                    "labels": len(labels[it.id]),
                    "adjudicated": it.id in adj,
                }
                for it in rows
            ]

    def reorder(self, project: str, item_ids: list[int]) -> None:
        """Serve these items first, in this order (active learning's pick); the rest keep their order after.
        next_item still prefers items short of min_annotations and with fewer labels."""
        with self.tx(write=True) as s:
            p = self.project_row(s, project)
            rows = list(s.scalars(select(Item).where(Item.project_id == p.id).order_by(Item.position, Item.id)))
            first = {i: k for k, i in enumerate(dict.fromkeys(int(i) for i in item_ids))}
            unknown = set(first) - {it.id for it in rows}
            if unknown:
                raise UserError(f"items {sorted(unknown)} are not in project {project!r}")
            for k, it in enumerate(sorted(rows, key=lambda it: (first.get(it.id, len(first)), it.position, it.id))):
                it.position = k

    # --- serving's review queue --------------------------------------------------------------------
    def enqueue_review(self, project: str, prompt, response: str, meta: dict) -> int:
        """An answer routed to humans by `alignline serve`: an item (one response, kind `rating`) in `project`,
        made on first use and visible to admins (assign reviewers with `assign`). `meta` (request id, model,
        confidence, reasons) is kept as the item's lineage. Returns the item id."""
        prompt = check_prompt(prompt, "review", "request")
        if not isinstance(response, str):
            raise UserError("a reviewed response must be text")
        now = time.time()
        for attempt in range(2):  # two servers may create the project at once: the loser retries and finds it
            try:
                with self.tx(write=True) as s:
                    p = s.scalar(select(Project).where(Project.name == project))
                    if p is None:
                        p = Project(
                            name=project, kind="rating", rubric=DEFAULT_RATING_RUBRIC, min_annotations=1, created_at=now
                        )
                        s.add(p)
                        s.flush()
                    elif p.kind != "rating":
                        raise UserError(
                            f"project {project!r} is a {p.kind} project; a review queue is a rating "
                            "project (one response per item)"
                        )
                    pos = (s.scalar(select(func.max(Item.position)).where(Item.project_id == p.id)) or -1) + 1
                    it = self.item_row(
                        p,
                        pos,
                        {
                            "prompt": prompt,
                            "responses": [response],
                            "external_id": str((meta or {}).get("request_id") or "") or None,
                        },
                        now,
                        {"review": dict(meta or {})},
                    )
                    s.add(it)
                    s.flush()
                    s.add(ReviewEntry(project_id=p.id, item_id=it.id, meta=dict(meta or {}), created_at=now))
                    return it.id
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def reviews(self, project: str) -> list[dict]:
        """The review queue of a project: each entry's item id, lineage, and whether anyone labelled it yet."""
        with self.tx() as s:
            rows = s.execute(
                select(ReviewEntry, func.count(Label.id))
                .join(Project, Project.id == ReviewEntry.project_id)
                .outerjoin(Label, Label.item_id == ReviewEntry.item_id)
                .where(Project.name == project)
                .group_by(ReviewEntry.id)
                .order_by(ReviewEntry.id)
            ).all()
            return [
                {"id": r.id, "item_id": r.item_id, "meta": r.meta, "labels": n, "created_at": r.created_at}
                for r, n in rows
            ]

    # --- quality and export (results.py does the arithmetic) ---------------------------------------
    def labelled(
        self, s, p: Project, *, texts: bool = True
    ) -> tuple[list[Item], dict[int, list[tuple[Label, str]]], dict[int, Adjudication]]:
        """A project's items (serving order), labels per item (id order) and adjudications. `texts=False`
        leaves out the prompts, responses, meta, rationales and edits (loaded only if touched): agreement reads
        none of them, and they are most of what a 100k-item project weighs."""
        item_q, label_q = select(Item), select(Label, User.name)
        if not texts:
            item_q = item_q.options(defer(Item.prompt), defer(Item.responses), defer(Item.meta))
            label_q = label_q.options(defer(Label.rationale), defer(Label.edit))
        items = list(s.scalars(item_q.where(Item.project_id == p.id).order_by(Item.position)))
        labels: dict[int, list] = {it.id: [] for it in items}
        for lab, uname in s.execute(
            label_q.join(User, User.id == Label.user_id)
            .join(Item, Item.id == Label.item_id)
            .where(Item.project_id == p.id)
            .order_by(Label.id)
        ):
            labels[lab.item_id].append((lab, uname))
        adj = {
            a.item_id: a
            for a in s.scalars(
                select(Adjudication).join(Item, Item.id == Adjudication.item_id).where(Item.project_id == p.id)
            )
        }
        return items, labels, adj

    def project_row(self, s, name: str) -> Project:
        p = s.scalar(select(Project).where(Project.name == name)) if findable(name) else None
        if p is None:
            raise UserError(f"no project named {name!r}")
        return p

    def revision(self, s, p: Project) -> tuple:
        """Everything agreement and the disagreement queue read, summed up in one cheap aggregate query: it
        changes whenever a label is added or corrected, an item added, or an item adjudicated (again)."""
        in_project = select(Item.id).where(Item.project_id == p.id).scalar_subquery()
        labels = s.execute(
            select(func.count(Label.id), func.max(Label.id), func.max(Label.created_at)).where(
                Label.item_id.in_(in_project)
            )
        ).one()
        items = s.execute(select(func.count(Item.id), func.max(Item.id)).where(Item.project_id == p.id)).one()
        adjudicated = s.execute(
            select(func.count(Adjudication.id), func.max(Adjudication.id), func.max(Adjudication.created_at)).where(
                Adjudication.item_id.in_(in_project)
            )
        ).one()
        return (p.id, p.kind, p.min_annotations, tuple(labels), tuple(items), tuple(adjudicated))

    def cached_report(self, what: str, project: str, compute, *args, texts: bool = True):
        """`compute(project_row, items, labels, adjudications, *args)`, or its last result while the project's
        revision is unchanged (see `report_cache.py`). The revision is read in the same transaction as the
        data, so a report is never stored under a revision it does not match."""
        with self.tx() as s:
            p = self.project_row(s, project)
            return self.reports.get(
                (what, project, *args),
                self.revision(s, p),
                lambda: compute(p, *self.labelled(s, p, texts=texts), *args),
            )

    def agreement(self, project: str) -> dict:
        """See `results.agreement_report`; cached while the project is unchanged (read-only: shared)."""
        return self.cached_report("agreement", project, agreement_report, texts=False)

    def disagreements(self, project: str, min_share: float = 0.5) -> list[dict]:
        """Items with >= min_annotations labels (and two or more) whose most common answer holds no more than
        `min_share` of them, not yet adjudicated; gold items excluded. Choices in shown positions. Cached while
        the project is unchanged (read-only: shared)."""
        return self.cached_report(
            "disagreements",
            project,
            lambda p, items, labels, adj, share: disagreements(p, items, labels, adj, min_share=share),
            float(min_share),
        )

    def adjudicate(self, item_id: int, admin: dict, choice) -> None:
        """An admin's final answer for an item (shown positions, like a label); replaces an earlier one."""
        for attempt in range(2):  # two admins resolving one item at once: the loser's insert retries as an update
            try:
                with self.tx(write=True) as s:
                    it, p, u = self.item_for(s, item_id, admin)
                    if u.role != "admin":
                        raise AccessDenied(f"{u.name} is not an admin: only admins adjudicate")
                    if p.kind == "rating":
                        raise InvalidLabel("rating items have no choice to adjudicate")
                    shown_choice = check_choice(p.kind, choice, len(it.responses))
                    original = choice_to_original(p.kind, shown_choice, it.meta["order"])
                    row = s.scalar(select(Adjudication).where(Adjudication.item_id == it.id))
                    if row is None:
                        s.add(Adjudication(item_id=it.id, admin_id=u.id, choice=original, created_at=time.time()))
                    else:
                        row.admin_id, row.choice, row.created_at = u.id, original, time.time()
                return
            except IntegrityError:
                if attempt:
                    raise

    def export(self, project: str) -> list[dict]:
        """Preference records (`kind: "preference"`) and SFT records from edited answers (`kind: "sft"`);
        see `results.export_records` for the fields and what is left out."""
        return self.export_with_counts(project)[0]

    def export_with_counts(self, project: str) -> tuple[list[dict], dict]:
        with self.tx() as s:
            p = self.project_row(s, project)
            return export_records(p, *self.labelled(s, p))

    def label_rows(self, project: str) -> list[dict]:
        """Every label of a project, one row each (see `results.label_rows`)."""
        with self.tx() as s:
            p = self.project_row(s, project)
            return label_rows(p, *self.labelled(s, p))

    def import_pairs(self, project: str, records: list[dict], source: str = "pairs") -> int:
        """Existing preference records (chosen/rejected, any format `alignline.data.preference` reads; a ranking
        gives every pair) as pairwise items of `project` (made if missing), to be labelled afresh, blinded.
        The file's own verdict is kept hidden in the item's meta (`imported_choice`: the original index)."""
        items, metas = pairs_as_items(records, source)
        if project not in self.project_names():
            try:
                self.create_project(project, [], kind="pairwise")
            except UserError:
                if project not in self.project_names():  # not a lost race: a real problem
                    raise
        with self.tx() as s:
            if self.project_row(s, project).kind != "pairwise":
                raise UserError(f"project {project!r} is not pairwise: preference pairs import into pairwise projects")
        return self.add_items(project, items, source, metas)
