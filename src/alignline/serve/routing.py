"""Which answers go to a human, and the review queues they go to.

An answer is routed when its confidence is below the calibrated threshold (`--route-below`, only with a
calibration file that passed, see `calibrate.py`) or when a policy rule matches, whatever the confidence:

    # rules.yaml
    action: hold                 # hold | flag; default: the server's --on-low
    pii: true                    # or a list of types: [email, card, ssn, iban, phone, ip, secret]
    topics:
      medical:                   # a topic: any keyword (case-insensitive, whole words) or regex matching
        keywords: [diagnosis, dosage, prescription]
        regex: ['\\bmg\\b']
        where: both              # prompt | answer | both (default)

PII is looked for in the answer only (`data/quality/pii.py:find_pii`): what a user typed about themselves
is theirs; what the model says is ours. `hold` replaces the answer with a holding message (the model's
answer goes to the queue only); `flag` answers and marks it. Either way the item goes to review with
the request id as its lineage id, so a reviewer's correction can be traced back to the request.

Queues: the annotation store (`--review-db URL --review-project NAME`, `Store.enqueue_review`) and/or a
JSONL file (`--review-file F`, no database needed); both take (prompt, response, meta) and return an id.
The file holds users' prompts: it is created (or tightened) to 0600, owner only, and appended the same way.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from alignline.data.quality.pii import PII_TYPES, find_pii
from alignline.errors import ConfigError, UserError

ACTIONS = ("hold", "flag")
WHERE = ("prompt", "answer", "both")
HOLD_MESSAGE = (
    "Thank you for your question. This answer needs a quick check by a reviewer before it can be "
    "shared; please check back shortly. Reference: {request_id}"
)


@dataclass
class Topic:
    name: str
    patterns: list[re.Pattern]
    where: str = "both"


@dataclass
class Policy:
    topics: list[Topic] = field(default_factory=list)
    pii: tuple[str, ...] = ()
    action: str | None = None
    """hold or flag for rule matches; None: the server's --on-low."""

    def reasons(self, prompt: str, answer: str) -> list[str]:
        """Why this exchange goes to review (empty: it does not), e.g. `topic:medical`, `pii:email`."""
        out = []
        for t in self.topics:
            texts = [prompt] if t.where == "prompt" else [answer] if t.where == "answer" else [prompt, answer]
            if any(p.search(s) for p in t.patterns for s in texts):
                out.append(f"topic:{t.name}")
        if self.pii:
            out += [f"pii:{k}" for k in dict.fromkeys(m.type for m in find_pii(answer, self.pii))]
        return out


def load_policy(path: str) -> Policy:
    """A rules file -> Policy; a bad key or value is one ConfigError line naming the file and key."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"--policy {path}: cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"--policy {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--policy {path}: expected a mapping with topics, pii and action")
    unknown = set(data) - {"topics", "pii", "action"}
    if unknown:
        raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}'; keys: topics, pii, action")
    action = data.get("action")
    if action is not None and action not in ACTIONS:
        raise ConfigError(f"{path}: action {action!r} is not one of {', '.join(ACTIONS)}")
    pii = data.get("pii", False)
    if pii is True:
        pii = PII_TYPES
    elif pii in (False, None):
        pii = ()
    elif isinstance(pii, list):
        bad = [t for t in pii if t not in PII_TYPES]
        if bad:
            raise ConfigError(f"{path}: pii type {bad[0]!r} is not one of {', '.join(PII_TYPES)}")
    else:
        raise ConfigError(f"{path}: pii must be true, false or a list of types ({', '.join(PII_TYPES)})")
    topics_in = data.get("topics") or {}
    if not isinstance(topics_in, dict):
        raise ConfigError(f"{path}: topics must be a mapping of topic name -> {{keywords, regex, where}}")
    topics = []
    for name, spec in topics_in.items():
        where_key = f"topics.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: {where_key} must be a mapping with keywords and/or regex")
        bad = set(spec) - {"keywords", "regex", "where"}
        if bad:
            raise ConfigError(f"{path}: unknown key '{where_key}.{sorted(bad)[0]}'; keys: keywords, regex, where")
        patterns = []
        for kw in as_strings(spec.get("keywords"), path, f"{where_key}.keywords"):
            patterns.append(re.compile(rf"(?<!\w){re.escape(kw)}(?!\w)", re.IGNORECASE))
        for rx in as_strings(spec.get("regex"), path, f"{where_key}.regex"):
            try:
                patterns.append(re.compile(rx, re.IGNORECASE))
            except re.error as e:
                raise ConfigError(f"{path}: {where_key}.regex {rx!r} is not a valid regular expression ({e})") from None
        if not patterns:
            raise ConfigError(f"{path}: {where_key} has no keywords and no regex")
        where = spec.get("where", "both")
        if where not in WHERE:
            raise ConfigError(f"{path}: {where_key}.where {where!r} is not one of {', '.join(WHERE)}")
        topics.append(Topic(str(name), patterns, where))
    return Policy(topics, tuple(pii), action)


def as_strings(value, path: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return value
    raise ConfigError(f"{path}: {key} must be a string or a list of non-empty strings")


@dataclass
class Decision:
    routed: bool
    action: str | None
    """hold, flag, or None when not routed."""
    reasons: list[str]


@dataclass
class Router:
    threshold: float | None = None
    """Route answers with confidence below this (None: confidence never routes)."""
    on_low: str = "hold"
    policy: Policy | None = None
    hold_message: str = HOLD_MESSAGE

    def decide(self, prompt: str, answer: str, confidence: float) -> Decision:
        reasons = []
        low = self.threshold is not None and confidence < self.threshold
        if low:
            reasons.append(f"confidence {confidence:.3f} < {self.threshold:g}")
        rules = self.policy.reasons(prompt, answer) if self.policy else []
        if not low and not rules:
            return Decision(False, None, [])
        actions = ([self.on_low] if low else []) + ([self.policy.action or self.on_low] if rules else [])
        return Decision(True, "hold" if "hold" in actions else "flag", reasons + rules)

    @property
    def active(self) -> bool:
        return self.threshold is not None or self.policy is not None

    @property
    def may_hold(self) -> bool:
        """Whether some answer could be held (so a stream must wait for the decision before sending)."""
        actions = ([self.on_low] if self.threshold is not None else []) + (
            [self.policy.action or self.on_low] if self.policy is not None else []
        )
        return "hold" in actions


PRIVATE = 0o600


def open_private_append(path: Path) -> int:
    """A file descriptor appending to `path`, created 0600 (an existing file is tightened to 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)
    except (AttributeError, OSError):  # Windows has no fchmod; a file we may not chmod is still ours to append
        pass
    return fd


class JsonlQueue:
    """Review items appended to a JSONL file (0600), numbered 1, 2, ... (continuing an existing file)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.count = (
                sum(1 for line in self.path.open(encoding="utf-8") if line.strip()) if self.path.exists() else 0
            )
            os.close(open_private_append(self.path))
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"--review-file {path}: cannot use it ({e})") from None

    def enqueue(self, prompt, response: str, meta: dict) -> int:
        with self.lock:
            item = {"review_id": self.count + 1, "prompt": prompt, "response": response, "meta": meta}
            fd = open_private_append(self.path)
            try:  # one write per record, appended (O_APPEND)
                os.write(fd, (json.dumps(item, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
            finally:
                os.close(fd)
            self.count += 1
            return self.count


class StoreQueue:
    """The annotation app's review queue (`alignline.annotate.store.Store.enqueue_review`)."""

    def __init__(self, url: str, project: str):
        from alignline.annotate.store import Store, resolve_db_url  # lazy: sqlalchemy etc., only for this queue

        self.store = Store(resolve_db_url(url))
        self.project = project
        self.lock = threading.Lock()

    def enqueue(self, prompt, response: str, meta: dict) -> int:
        with self.lock:
            return int(self.store.enqueue_review(self.project, prompt, response, meta))


@dataclass
class Reviews:
    """Every configured queue; an item goes to each, and its id is the first queue's (the store's if any)."""

    queues: list = field(default_factory=list)

    def enqueue(self, prompt, response: str, meta: dict) -> int | None:
        ids = [q.enqueue(prompt, response, meta) for q in self.queues]
        return ids[0] if ids else None


def open_reviews(review_db: str | None, review_project: str | None, review_file: str | None) -> Reviews:
    if bool(review_db) != bool(review_project):
        raise UserError("--review-db and --review-project go together (the database and the project to queue into)")
    queues: list = []
    if review_db:
        queues.append(StoreQueue(review_db, review_project))
    if review_file:
        queues.append(JsonlQueue(review_file))
    return Reviews(queues)
