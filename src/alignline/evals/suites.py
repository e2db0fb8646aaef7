"""Suite files: `{name: ..., kind: ..., <settings>}` in YAML, checked before any model loads.

Every kind is written the same way: `name`, `kind`, where the records are (`data: file.jsonl`, relative
to the suite file, or `records:` inline), and the kind's own settings, each with a default in the
kind's `SETTINGS`. A bad suite stops with one line naming the file, the record and the field:

    suites/leaks.yaml, field 'canaries': no such file leaks.canaries.jsonl

Bundled starter suites are addressed as `starter/<name>` (`src/alignline/evals/starter/`); they are
small hand-written sets that show the shape, to be replaced with production data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from alignline.data.sources import read_records
from alignline.errors import ConfigError, DataError
from alignline.registry import LazyTable
from alignline.rewards.registry import get_grader

STARTER_DIR = Path(__file__).parent / "starter"

# kind -> "module:Kind" (`alignline/registry.py`): the module is imported only when a suite of that kind is loaded.
KINDS = LazyTable(
    {
        "accuracy": "alignline.evals.answers:ACCURACY",
        "paraphrase": "alignline.evals.answers:PARAPHRASE",
        "perplexity": "alignline.evals.likelihood:PERPLEXITY",
        "kl": "alignline.evals.likelihood:KL",
        "forgetting": "alignline.evals.likelihood:FORGETTING",
        "refusal": "alignline.evals.safety:REFUSAL",
        "jailbreak": "alignline.evals.safety:JAILBREAK",
        "canary": "alignline.evals.leakage:CANARY",
        "pii": "alignline.evals.leakage:PII",
        "win_rate": "alignline.evals.win_rate:WIN_RATE",
        "calibration": "alignline.evals.calibration:CALIBRATION",
    }
)

COMMON = {
    "name": (str, None, "the suite's name; metrics are reported as <name>/<metric>"),
    "kind": (str, None, "one of " + ", ".join(KINDS)),
    "data": (str, None, "the records: a JSONL/JSON/CSV/Parquet file, relative to this suite file"),
    "records": (list, None, "the records inline, instead of data"),
    "limit": (int, None, "evaluate only the first N records"),
    "description": (str, "", "what the suite measures"),
    "starter": (bool, False, "a bundled starter suite: replace it with production data"),
}

GENERATION = {
    "max_new_tokens": (int, 128, "the most tokens each answer may have"),
    "temperature": (float, 0.0, "0: greedy"),
    "seed": (int, 0, "sampling seed"),
    "chat": (bool, True, "string prompts as one user turn through the chat template (false: raw text)"),
    "system": (str, None, "a system turn before every prompt (with chat)"),
}


@dataclass
class Kind:
    """What a suite kind needs: its settings (name -> (type, default, help)), the fields every record
    must have, and `run(suite, model, ctx) -> Outcome`."""

    name: str
    settings: dict
    record_fields: tuple[str, ...]
    run: object
    needs_data: bool = True
    check: Callable[[Suite], None] | None = None
    """Settings checks beyond types (files exist, graders load), run when the suite is read."""


@dataclass
class Record:
    id: str
    data: dict
    where: str
    """`file, line N`: for error messages and reports."""


@dataclass
class Suite:
    name: str
    kind: str
    path: str
    settings: dict
    records: list[Record] = field(default_factory=list)
    data_path: str | None = None

    def error(self, message: str, fld: str | None = None) -> DataError:
        return DataError(self.path, message, field=fld)

    def record_error(self, record: Record, message: str, fld: str | None = None) -> DataError:
        path, _, loc = record.where.partition(", ")
        return DataError(path, message, record=loc or None, field=fld)

    def definition(self) -> dict:
        """What the suite hash covers: kind and settings (records are hashed one by one in the cache)."""
        return {
            "kind": self.kind,
            "name": self.name,
            **{k: v for k, v in self.settings.items() if k not in ("description", "starter", "limit")},
        }


def kind_of(name: str) -> Kind:
    return KINDS[name]


def resolve_suite_path(spec: str) -> Path:
    if spec.startswith("starter/"):
        path = STARTER_DIR / f"{spec.split('/', 1)[1]}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(f"starter/{p.stem}" for p in STARTER_DIR.glob("*.yaml")))
            raise DataError(spec, f"no such starter suite; available: {known}")
        return path
    path = Path(spec)
    if not path.is_file():
        raise DataError(spec, "no such suite file (or use starter/<name>)")
    return path


def _check_type(path: str, key: str, value, expected) -> object:
    types = expected if isinstance(expected, tuple) else (expected,)
    if value is None:
        return None
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if bool not in types and isinstance(value, bool) or not isinstance(value, types):
        names = " or ".join(t.__name__ for t in types)
        raise DataError(path, f"expected {names}, got {type(value).__name__} {value!r}", field=key)
    return value


def load_suite(spec: str, limit: int | None = None) -> Suite:
    """Parse and check a suite file (or `starter/<name>`), records included; `limit` caps the records
    (over the suite's own `limit`)."""
    path = resolve_suite_path(spec)
    shown = spec if spec.startswith("starter/") else str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise DataError(shown, f"not valid YAML ({getattr(e, 'problem', e)})", record=where) from None
    if not isinstance(raw, dict):
        raise DataError(shown, f"expected a mapping with name and kind, got {type(raw).__name__}")
    for key in ("name", "kind"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise DataError(shown, "is missing (every suite has a name and a kind)", field=key)
    if raw["kind"] not in KINDS:
        raise DataError(shown, f"unknown kind {raw['kind']!r}; allowed: {', '.join(KINDS)}", field="kind")
    if "/" in raw["name"]:
        raise DataError(shown, "must not contain '/' (metrics are named <suite>/<metric>)", field="name")
    kind = kind_of(raw["kind"])
    allowed = {**COMMON, **kind.settings}
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise DataError(
            shown, f"unknown setting for kind {raw['kind']}; allowed: {', '.join(allowed)}", field=str(unknown[0])
        )
    settings = {}
    for key, (typ, default, _help) in allowed.items():
        value = _check_type(shown, key, raw.get(key), typ)
        settings[key] = default if value is None else value
    suite = Suite(raw["name"], raw["kind"], shown, settings)
    data_key = next((k for k in ("data", "canaries", "prompts") if settings.get(k)), None)
    if settings.get("records") is not None:
        suite.records = [_record(suite, r, f"{shown}, records[{i}]", i) for i, r in enumerate(settings["records"])]
    elif data_key:
        data_path = Path(settings[data_key])
        if not data_path.is_absolute():
            data_path = path.parent / data_path
        if not data_path.exists():
            raise DataError(shown, f"no such file {settings[data_key]}", field=data_key)
        suite.data_path = str(data_path)
        suite.records = [
            _record(suite, r, f"{data_path}, {loc}", i) for i, (loc, r) in enumerate(read_records(data_path))
        ]
    elif kind.needs_data:
        raise DataError(shown, "no records: give data: FILE or records: [...]", field="data")
    if limit is not None:
        settings["limit"] = min(limit, settings["limit"] or limit)
    if settings["limit"] is not None:
        suite.records = suite.records[: settings["limit"]]
    seen = {}
    for r in suite.records:
        if r.id in seen:
            raise suite.record_error(r, f"duplicate id {r.id!r} (also {seen[r.id]})", "id")
        seen[r.id] = r.where
        for f in kind.record_fields:
            if r.data.get(f) in (None, ""):
                raise suite.record_error(
                    r, f"is missing (a {suite.kind} record needs {', '.join(kind.record_fields)})", f
                )
    if kind.check is not None:
        kind.check(suite)
    return suite


def _record(suite: Suite, raw, where: str, index: int) -> Record:
    if not isinstance(raw, dict):
        path, _, loc = where.partition(", ")
        raise DataError(path, f"expected an object, got {type(raw).__name__}", record=loc)
    rid = raw.get("id", index + 1)
    return Record(str(rid), raw, where)


def check_grader(suite: Suite, key: str = "grader") -> None:
    """An unknown or unloadable grader fails at load, naming the suite file and the setting."""
    try:
        get_grader(suite.settings[key])
    except ConfigError as e:
        raise suite.error(str(e), key) from None


def prompt_of(suite: Suite, record: Record, fld: str = "prompt"):
    """The record's prompt as the engine takes it: a message list (chat) or a raw string."""
    value = record.data.get(fld)
    if value is None and fld == "prompt":
        value = record.data.get("messages", record.data.get("question"))
    return as_prompt(suite, record, value, fld)


def as_prompt(suite: Suite, record: Record, value, fld: str = "prompt"):
    if isinstance(value, list):
        if not all(isinstance(m, dict) and "role" in m and "content" in m for m in value):
            raise suite.record_error(record, "expected a string or a list of {role, content} messages", fld)
        messages = [m for m in value]
        while messages and messages[-1]["role"] == "assistant":  # the answer to compare against, not input
            messages = messages[:-1]
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    if not isinstance(value, str) or not value:
        raise suite.record_error(record, "expected a non-empty string or a message list", fld)
    if not suite.settings.get("chat", True):
        return value
    system = suite.settings.get("system")
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": value}]
