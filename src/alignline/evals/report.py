"""`eval.html` and `gate.html`: one self-contained page each (inline CSS and SVG, no script, nothing fetched).

Sections: the verdict (gate), the rules, candidate-minus-baseline deltas as a forest plot (a point and
its 95 % interval per metric, zero marked, the better side shaded), the metrics table, reliability
diagrams for calibration suites, and the error analysis: failing examples grouped by suite and
category (which benign prompts were refused, which canaries leaked, which attacks worked).

TODO(merge): the `reports` branch builds a shared `report/` package (SVG charts, HTML page); the
chart and page helpers here (`forest_plot`, `reliability_diagram`, `page`) are meant to move there.
"""

from __future__ import annotations

import math
from html import escape

from alignline.evals.results import HIGHER_IS_BETTER, bare

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:14px}td,th{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}.pass{color:#1a7f37;font-weight:bold}
.fail{color:#cf222e;font-weight:bold}.banner{padding:.6em 1em;border-radius:6px;font-size:18px;font-weight:bold}
.ok{background:#dafbe1}.bad{background:#ffebe9}.note{color:#555}td.t{max-width:420px;white-space:pre-wrap;
font-size:12px}"""
MAX_EXAMPLES = 20


def num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def table(headers: list[str], rows: list[list], raw: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else num(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def forest_plot(rows: list[dict], title: str = "candidate - baseline (95 % interval)", width: int = 760) -> str:
    """rows: {label, delta, ci_low, ci_high, higher_is_better}: one line per metric, zero marked."""
    rows = [r for r in rows if all(isinstance(r.get(k), (int, float)) and math.isfinite(r[k])
                                   for k in ("delta", "ci_low", "ci_high"))]
    if not rows:
        return "<p class=note>no deltas (no baseline, or no metric both models have)</p>"
    label_w, right_w, row_h, top = 230, 150, 24, 30
    plot_w = width - label_w - right_w
    span = max(max(abs(r["ci_low"]), abs(r["ci_high"]), abs(r["delta"])) for r in rows) or 1.0
    span *= 1.1

    def x(v: float) -> float:
        return label_w + plot_w * (v + span) / (2 * span)

    height = top + row_h * len(rows) + 24
    out = [f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">',
           f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, r in enumerate(rows):
        y = top + i * row_h + row_h / 2
        good = r.get("higher_is_better")
        better_side = (x(0), x(span)) if good else (x(-span), x(0)) if good is False else None
        if better_side:
            out.append(f'<rect x="{better_side[0]:.1f}" y="{y - row_h / 2 + 2:.1f}" width="{better_side[1] - better_side[0]:.1f}" '
                       f'height="{row_h - 4}" fill="#dafbe1"/>')
        worse = good is not None and ((r["ci_high"] < 0) if good else (r["ci_low"] > 0))
        color = "#cf222e" if worse else "#4c78a8"
        out.append(f'<text x="{label_w - 6}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{escape(r["label"][:34])}</text>'
                   f'<line x1="{x(r["ci_low"]):.1f}" y1="{y:.1f}" x2="{x(r["ci_high"]):.1f}" y2="{y:.1f}" '
                   f'stroke="{color}" stroke-width="2"/>'
                   f'<circle cx="{x(r["delta"]):.1f}" cy="{y:.1f}" r="4" fill="{color}"/>'
                   f'<text x="{label_w + plot_w + 8}" y="{y + 4:.1f}" font-size="11">{r["delta"]:+.3g} '
                   f'[{r["ci_low"]:+.3g}, {r["ci_high"]:+.3g}]</text>')
    base = top + row_h * len(rows)
    out.append(f'<line x1="{x(0):.1f}" y1="{top}" x2="{x(0):.1f}" y2="{base}" stroke="#333" stroke-dasharray="3"/>')
    for v in (-span, 0.0, span):
        out.append(f'<text x="{x(v):.1f}" y="{base + 16}" font-size="11" text-anchor="middle">{v:+.3g}</text>')
    out.append("</svg>")
    return "".join(out)


def reliability_diagram(bins: list[dict], title: str, size: int = 260) -> str:
    """Accuracy against mean confidence per bin (bars), the diagonal of perfect calibration dashed."""
    pad = 34
    plot = size - 2 * pad
    out = [f'<svg role="img" aria-label="{escape(title)}" width="{size}" height="{size + 10}" '
           f'viewBox="0 0 {size} {size + 10}">',
           f'<text x="0" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{pad}" y="{pad}" width="{plot}" height="{plot}" fill="none" stroke="#999"/>',
           f'<line x1="{pad}" y1="{pad + plot}" x2="{pad + plot}" y2="{pad}" stroke="#999" stroke-dasharray="4"/>']
    for b in bins:
        if not b["count"]:
            continue
        x0 = pad + plot * b["low"]
        w = plot * (b["high"] - b["low"])
        h = plot * b["accuracy"]
        out.append(f'<rect x="{x0 + 1:.1f}" y="{pad + plot - h:.1f}" width="{max(w - 2, 1):.1f}" height="{h:.1f}" '
                   f'fill="#4c78a8" opacity="0.8"><title>{b["low"]:.1f}-{b["high"]:.1f}: {b["count"]} answers, '
                   f'accuracy {b["accuracy"]:.2f}, confidence {b["confidence"]:.2f}</title></rect>')
    out.append(f'<text x="{pad + plot / 2}" y="{size - 2}" font-size="11" text-anchor="middle">confidence</text>'
               f'<text x="10" y="{pad + plot / 2}" font-size="11" transform="rotate(-90 10 {pad + plot / 2})" '
               f'text-anchor="middle">accuracy</text></svg>')
    return "".join(out)


def page(title: str, body: list[str]) -> str:
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n")


def metrics_table(results: dict) -> str:
    models = list(results["metrics"])
    names = sorted({q for m in models for q in results["metrics"][m] if "/" in q})
    rows = [[escape(q)] + [num(results["metrics"][m].get(q)) for m in models] for q in names]
    return table(["metric"] + models, rows, raw=True)


def delta_rows(deltas: dict) -> list[dict]:
    return [{"label": q, **d, "higher_is_better": HIGHER_IS_BETTER.get(bare(q))} for q, d in sorted(deltas.items())
            if "/" in q]


def error_analysis(examples: dict[str, list[dict]], model: str) -> str:
    """The failing examples of one model, grouped by suite and category."""
    parts = []
    for suite, rows in examples.items():
        failed = [e for e in rows if e.get("failed")]
        if not failed:
            continue
        parts.append(f"<h3>{escape(suite)}: {len(failed)} of {len(rows)} failing</h3>")
        groups: dict[str, list[dict]] = {}
        for e in failed:
            groups.setdefault(str(e.get("category") or "all"), []).append(e)
        for cat, es in sorted(groups.items()):
            body = [[escape(str(e["id"])), escape(str(e.get("prompt", ""))[:500]), escape(str(e.get("output", ""))[:500]),
                     escape(str(e.get("expected", "")) if e.get("expected") is not None else ""),
                     escape(e.get("why", ""))] for e in es[:MAX_EXAMPLES]]
            more = f"<p class=note>and {len(es) - MAX_EXAMPLES} more</p>" if len(es) > MAX_EXAMPLES else ""
            parts.append(f"<h4>{escape(cat)} ({len(es)})</h4>"
                         + table(["id", "prompt", "output", "expected", "why"], body, raw=True).replace("<td>", "<td class=t>")
                         + more)
    return "".join(parts) or f"<p class=note>{escape(model)}: no failing examples</p>"


def calibration_section(results: dict) -> str:
    out = []
    for model, info in results["models"].items():
        for suite, details in info.get("details", {}).items():
            if details.get("reliability"):
                out.append(reliability_diagram(details["reliability"], f"{model}: {suite}"))
    return "<h2>Calibration</h2>" + "".join(out) if out else ""


def starter_note(results: dict) -> str:
    starters = [s["name"] for s in results.get("suites", []) if s.get("starter")]
    return (f"<p class=note>starter suites ({escape(', '.join(starters))}): small bundled examples; replace them "
            "with production data before relying on the numbers.</p>" if starters else "")


def render_eval(results: dict, examples: dict) -> str:
    body = [f"<h1>Evaluation</h1><p class=note>models: {escape(', '.join(results['metrics']))}"
            f"{'; baseline: ' + escape(results['baseline']) if results.get('baseline') else ''}; suites: "
            f"{escape(', '.join(s['name'] for s in results['suites']))}</p>", starter_note(results),
            "<h2>Metrics</h2>", metrics_table(results)]
    for model, deltas in results.get("deltas", {}).items():
        body += [f"<h2>{escape(model)} against {escape(results['baseline'])}</h2>", forest_plot(delta_rows(deltas))]
    body.append(calibration_section(results))
    for model in results["metrics"]:
        body += [f"<h2>Error analysis: {escape(model)}</h2>", error_analysis(examples.get(model, {}), model)]
    return page("alignline eval", body)


def render_gate(gate: dict, results: dict, examples: dict) -> str:
    ok = gate["passed"]
    failed = [r for r in gate["rules"] if not r["passed"]]
    banner = "all gates pass" if ok else f"{len(failed)} check(s) fail: " + ", ".join(
        sorted({f"{r['rule']} ({r['metric']})" for r in failed}))
    rules = [[f'<span class="{"pass" if r["passed"] else "fail"}">{"pass" if r["passed"] else "FAIL"}</span>',
              escape(r["rule"]), escape(r["metric"]), escape(r["check"]), num(r["value"]), num(r["threshold"]),
              escape(r["detail"])] for r in gate["rules"]]
    body = [f"<h1>Release gate</h1><p class=note>candidate: {escape(gate['candidate'])}; baseline: "
            f"{escape(gate['baseline'])}; gates: {escape(gate['gates_file'])}</p>",
            f'<div class="banner {"ok" if ok else "bad"}">{escape(banner)}</div>', starter_note(results),
            "<h2>Rules</h2>", table(["", "rule", "metric", "check", "value", "threshold", "detail"], rules, raw=True),
            "<h2>Deltas</h2>", forest_plot(delta_rows(gate.get("deltas", {}))),
            "<h2>Metrics</h2>", metrics_table(results), calibration_section(results),
            f"<h2>Error analysis: {escape(gate['candidate'])}</h2>",
            error_analysis(examples.get(gate["candidate"], {}), gate["candidate"])]
    return page("alignline gate", body)
