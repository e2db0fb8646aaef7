"""`eval.html` and `gate.html`: one self-contained page each (inline CSS and SVG, no script, nothing fetched).

Sections: the verdict (gate), the rules, candidate-minus-baseline deltas as a forest plot (a point and
its 95 % interval per metric, zero marked, the better side shaded), the metrics table, reliability
diagrams for calibration suites, and the error analysis: failing examples grouped by suite and
category (which benign prompts were refused, which canaries leaked, which attacks worked).

The charts are `render.svg`'s and the page scaffold `render.html`'s, as for every alignline report;
this module only assembles the two pages.
"""

from __future__ import annotations

from html import escape

from alignline.evals.metrics import HIGHER_IS_BETTER, metric_name
from alignline.render.html import Raw, grid, page, paragraph, section, status, table, text
from alignline.render.svg import forest_plot, reliability_diagram

MAX_EXAMPLES = 20


def metrics_table(results: dict) -> str:
    models = list(results["metrics"])
    names = sorted({q for m in models for q in results["metrics"][m] if "/" in q})
    return table(["metric"] + models, [[q] + [results["metrics"][m].get(q) for m in models] for q in names])


def delta_rows(deltas: dict) -> list[dict]:
    return [
        {"label": q, **d, "higher_is_better": HIGHER_IS_BETTER.get(metric_name(q))}
        for q, d in sorted(deltas.items())
        if "/" in q
    ]


def deltas_chart(deltas: dict) -> str:
    return forest_plot(delta_rows(deltas)) or paragraph(
        "no deltas (no baseline, or no metric both models have)", "note"
    )


def long_text(value, limit: int = 500) -> Raw:
    shown = str(value if value is not None else "")
    shown = shown if len(shown) <= limit else shown[:limit].rstrip() + "…"
    return Raw(f'<div class="answer">{escape(shown)}</div>')


def nowrap(value) -> Raw:
    return Raw(f'<span style="white-space:nowrap">{escape(str(value))}</span>')


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
            body = [
                [
                    nowrap(e["id"]),
                    long_text(e.get("prompt")),
                    long_text(e.get("output")),
                    long_text(e.get("expected")),
                    nowrap(e.get("why", "")),
                ]
                for e in es[:MAX_EXAMPLES]
            ]
            more = paragraph(f"and {len(es) - MAX_EXAMPLES} more", "note") if len(es) > MAX_EXAMPLES else ""
            parts.append(
                f"<h4>{escape(cat)} ({len(es)})</h4>"
                + table(["id", "prompt", "output", "expected", "why"], body)
                + more
            )
    return "".join(parts) or paragraph(f"{model}: no failing examples", "note")


def over_refusals(examples: dict[str, list[dict]]) -> str:
    """The benign prompts a model refused, as one short table under the rules (the first thing to fix)."""
    refused = [
        (suite, e) for suite, rows in examples.items() for e in rows if e.get("label") == "benign" and e.get("refused")
    ]
    if not refused:
        return ""
    rows = [
        [nowrap(e["id"]), suite, long_text(e.get("prompt"), 200), long_text(e.get("output"), 90)]
        for suite, e in refused
    ]
    return section(f"Benign prompts refused ({len(refused)})", table(["id", "suite", "prompt", "output"], rows))


def calibration_section(results: dict) -> str:
    charts = [
        reliability_diagram(details["reliability"], f"{model}: {suite}")
        for model, info in results["models"].items()
        for suite, details in info.get("details", {}).items()
        if details.get("reliability")
    ]
    return section("Calibration", grid(charts)) if charts else ""


def starter_note(results: dict) -> str:
    starters = [s["name"] for s in results.get("suites", []) if s.get("starter")]
    return (
        paragraph(
            f"starter suites ({', '.join(starters)}): small bundled examples; replace them with production "
            "data before relying on the numbers.",
            "note",
        )
        if starters
        else ""
    )


def render_eval(results: dict, examples: dict) -> str:
    subtitle = (
        f"models: {', '.join(results['metrics'])}"
        f"{'; baseline: ' + results['baseline'] if results.get('baseline') else ''}; suites: "
        f"{', '.join(s['name'] for s in results['suites'])}"
    )
    body = [starter_note(results), section("Metrics", metrics_table(results))]
    for model, deltas in results.get("deltas", {}).items():
        body.append(section(f"{model} against {results['baseline']}", deltas_chart(deltas)))
    body.append(calibration_section(results))
    for model in results["metrics"]:
        body.append(section(f"Error analysis: {model}", error_analysis(examples.get(model, {}), model)))
    return page("alignline eval", body, subtitle=subtitle, heading="Evaluation")


def render_gate(gate: dict, results: dict, examples: dict) -> str:
    ok = gate["passed"]
    failed = [r for r in gate["rules"] if not r["passed"]]
    banner = (
        "all gates pass"
        if ok
        else f"{len(failed)} check(s) fail: " + ", ".join(sorted({f"{r['rule']} ({r['metric']})" for r in failed}))
    )
    rules = [
        [status(r["passed"]), r["rule"], r["metric"], r["check"], r["value"], r["threshold"], r["detail"]]
        for r in gate["rules"]
    ]
    cand = examples.get(gate["candidate"], {})
    body = [
        f'<div class="banner {"ok" if ok else "bad"}">{text(banner)}</div>',
        starter_note(results),
        section("Rules", table(["", "rule", "metric", "check", "value", "threshold", "detail"], rules)),
        over_refusals(cand),
        section("Deltas", deltas_chart(gate.get("deltas", {}))),
        section("Metrics", metrics_table(results)),
        calibration_section(results),
        section(f"Error analysis: {gate['candidate']}", error_analysis(cand, gate["candidate"])),
    ]
    subtitle = f"candidate: {gate['candidate']}; baseline: {gate['baseline']}; gates: {gate['gates_file']}"
    return page("alignline gate", body, subtitle=subtitle, heading="Release gate")
