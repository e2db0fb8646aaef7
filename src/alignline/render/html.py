"""The HTML every alignline report shares: one page scaffold with inline CSS, tables, escaping.

A page is a title and a list of sections; everything a caller passes as text is escaped unless it is
wrapped in `Raw` (HTML built here or by `render.svg`). The page fetches nothing: no script, no
stylesheet, no font, no image URL, so it opens the same offline and in a year.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1280px;color:#222;padding:0 1.2em}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{margin:1em 0 .3em;font-size:15px;color:#333}
table{border-collapse:collapse;margin:.6em 0;font-size:14px}td,th{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}
.banner{padding:.6em 1em;border-radius:6px;font-size:18px;font-weight:bold}
.ok{background:#dafbe1}.bad{background:#ffebe9}.ex{font-size:12px;margin-bottom:6px;white-space:pre-wrap}
.note{color:#555;font-size:13px}svg{display:block;margin:.6em 0;max-width:100%;height:auto}
pre{font-size:12px;background:#f6f8fa;padding:1em;overflow:auto;white-space:pre-wrap}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:8px 18px;align-items:start}
.grid svg{margin:0}.card{border:1px solid #eee;border-radius:6px;padding:6px}
.kv td:first-child{color:#555}.kv td.num{text-align:left}.answer{white-space:pre-wrap;font-size:13px;max-width:520px}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:.6em 0}
dl.summary dt{color:#555}dl.summary dd{margin:0;font-weight:600}tr.diff td{background:#fff8c5}"""


class Raw(str):
    """HTML that is already safe (built by this package): inserted as it is, not escaped."""


def text(value) -> str:
    """Escaped HTML for any value; `Raw` passes through."""
    return value if isinstance(value, Raw) else escape(fmt(value))


def fmt(value) -> str:
    """A value as a person reads it: None as an en dash, floats to 4 significant digits, lists joined."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(x) for x in value) + "]"
    return str(value)


def _cell(value) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{text(value)}</td>' if numeric else f"<td>{text(value)}</td>"


def table(
    headers: Sequence[str], rows: Iterable[Sequence], cls: str = "", row_classes: Sequence[str] | None = None
) -> Raw:
    """A table; cells are escaped (unless `Raw`), numbers right-aligned. No headers: a key/value table.
    `row_classes`: a class per row (`diff` highlights one), "" for none."""
    head = f"<thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in headers)}</tr></thead>" if headers else ""
    marks = list(row_classes or [])
    body = "".join(
        (f'<tr class="{escape(marks[i])}">' if i < len(marks) and marks[i] else "<tr>")
        + "".join(_cell(c) for c in r)
        + "</tr>"
        for i, r in enumerate(rows)
    )
    attr = f' class="{escape(cls)}"' if cls else ""
    return Raw(f"<table{attr}>{head}<tbody>{body}</tbody></table>")


def summary(items: Iterable[tuple[str, object]]) -> Raw:
    """A short list of labelled facts (status, steps, best eval) above the details."""
    return Raw('<dl class="summary">' + "".join(f"<dt>{escape(k)}</dt><dd>{text(v)}</dd>" for k, v in items) + "</dl>")


def grid(charts: Iterable[str]) -> Raw:
    """Charts side by side, wrapping to the page width (a dashboard, not a column of 30 charts)."""
    cells = "".join(f'<div class="card">{c}</div>' for c in charts if c)
    return Raw(f'<div class="grid">{cells}</div>') if cells else Raw("")


def details(label: str, body: str) -> Raw:
    return Raw(f"<details><summary>{escape(label)}</summary>{body}</details>")


def paragraph(content, cls: str = "") -> Raw:
    attr = f' class="{escape(cls)}"' if cls else ""
    return Raw(f"<p{attr}>{text(content)}</p>")


def status(passed: bool) -> Raw:
    return Raw('<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>')


def section(title: str, *parts: str) -> Raw:
    """An `<h2>` and its content; parts are HTML (use `text()` or `Raw`-returning helpers)."""
    return Raw(f"<h2>{escape(title)}</h2>" + "".join(parts))


def page(title: str, sections: Iterable[str], subtitle: str | None = None, heading: str | None = None) -> str:
    """A whole self-contained document."""
    sub = f'<p class="note">{escape(subtitle)}</p>' if subtitle else ""
    return "\n".join(
        [
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{escape(heading or title)}</h1>{sub}",
            *sections,
            "</body></html>",
        ]
    )
