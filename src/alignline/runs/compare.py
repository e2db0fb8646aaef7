"""Two runs side by side: their resolved configs and final metrics, key by key, the keys that differ marked.

Text for the terminal (`alignline runs compare A B`), HTML for a page (`--html FILE`, `render/html.py`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from alignline.render.html import Raw, page, section, summary, table

MISSING = object()


def flatten(value, prefix: str = "") -> dict:
    """{dotted key: leaf value}; lists of scalars stay one value, lists of mappings are indexed
    (`data.train[0].path`)."""
    out: dict = {}
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, inner in enumerate(value):
            out.update(flatten(inner, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def side_by_side(a: dict, b: dict) -> list[tuple[str, object, object, bool]]:
    """(key, a's value, b's value, differs) for every key of either, in a stable order."""
    fa, fb = flatten(a), flatten(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    return [(k, fa.get(k, MISSING), fb.get(k, MISSING), fa.get(k, MISSING) != fb.get(k, MISSING)) for k in keys]


def comparison(a, b) -> dict:
    """The two entries' heads and their config and metric rows (`store.RunEntry`s)."""
    return {
        "runs": [head(a), head(b)],
        "config": side_by_side(a.config, b.config),
        "metrics": side_by_side(a.metrics, b.metrics),
        "data": side_by_side({"data": a.data}, {"data": b.data}),
    }


def head(entry) -> dict:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "name": entry.name,
        "status": entry.status,
        "started": when(entry.started),
        "git_commit": entry.git_commit,
        "parent_model": entry.parent_model,
    }


def when(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def shown(value) -> str:
    if value is MISSING:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def format_comparison(result: dict, everything: bool = False) -> str:
    """Text: the heads, then the config keys that differ (all with `everything`), then every metric; `*` marks
    a difference."""
    a, b = result["runs"]
    rows = [("", a["id"][:12], b["id"][:12], False)]
    rows += [(f"  {k}", shown(a[k]), shown(b[k]), a[k] != b[k]) for k in ("kind", "name", "status", "started")]
    rows.append(("config:", "", "", False))
    config = [r for r in result["config"] if everything or r[3]]
    rows += [(f"  {k}", shown(x), shown(y), d) for k, x, y, d in config] or [("  (identical)", "", "", False)]
    rows.append(("metrics:", "", "", False))
    rows += [(f"  {k}", shown(x), shown(y), d) for k, x, y, d in result["metrics"]] or [("  (none)", "", "", False)]
    data = [r for r in result["data"] if r[3]]
    if data:
        rows.append(("data:", "", "", False))
        rows += [(f"  {k}", shown(x), shown(y), d) for k, x, y, d in data]
    width = [min(max(len(str(r[i])) for r in rows), 60) for i in range(3)]
    return "\n".join(
        f"{'*' if d else ' '} {k:<{width[0]}}  {x[:60]:<{width[1]}}  {y[:60]}".rstrip() for k, x, y, d in rows
    )


def comparison_html(result: dict) -> str:
    """A page: both runs' heads, then config, metrics and data side by side; differing rows highlighted."""
    a, b = result["runs"]

    def rows_table(rows) -> Raw:
        return table(
            ["key", f"{a['name'] or ''} {a['id'][:12]}", f"{b['name'] or ''} {b['id'][:12]}"],
            [(k, shown(x), shown(y)) for k, x, y, _ in rows],
            row_classes=["diff" if d else "" for *_, d in rows],
        )

    differing = sum(d for *_, d in result["config"])
    return page(
        f"compare {a['id'][:12]} {b['id'][:12]}",
        [
            section(
                "Runs",
                table(["", "A", "B"], [(k, shown(a[k]), shown(b[k])) for k in a]),
                summary([("config keys that differ", differing)]),
            ),
            section("Metrics", rows_table(result["metrics"])),
            section("Config", rows_table(result["config"])),
            section("Data", rows_table(result["data"])),
        ],
        subtitle="rows that differ are highlighted",
    )
