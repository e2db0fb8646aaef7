"""A self-contained HTML report of a run: loss and eval-loss curves as inline SVG, the data summary,
and the resolved config. No scripts, no CDN: it opens anywhere, offline."""

from __future__ import annotations

import html
import json
from pathlib import Path

from alignline.io import write_text
from alignline.train.metrics import read_metrics


def svg_line_chart(series: dict[str, list[tuple[float, float]]], title: str, width: int = 640,
                   height: int = 260) -> str:
    """A small multi-series line chart; series maps a label to (x, y) points."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return ""
    pad = 44
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def sx(x):
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(y):
        return height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)

    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>']
    for value in (y0, (y0 + y1) / 2, y1):
        parts.append(f'<text x="{pad - 4}" y="{sy(value) + 4:.1f}" text-anchor="end" font-size="10">{value:.3g}</text>')
    for value in (x0, x1):
        parts.append(f'<text x="{sx(value):.1f}" y="{height - pad + 14}" text-anchor="middle" font-size="10">'
                     f'{value:.0f}</text>')
    for i, (label, pts) in enumerate(series.items()):
        color = colors[i % len(colors)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{path}"/>')
        if len(pts) <= 30:
            parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>' for x, y in pts]
        parts.append(f'<text x="{width - pad}" y="{pad + 14 * i}" text-anchor="end" font-size="11" '
                     f'fill="{color}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write_run_report(run_dir: Path) -> Path:
    run = json.loads((run_dir / "run.json").read_text())
    metrics = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    loss = svg_line_chart({"train loss": [(m["step"], m["loss"]) for m in metrics if "loss" in m],
                           "eval loss": [(m["step"], m["eval_loss"]) for m in metrics if "eval_loss" in m]},
                          "loss by step")
    accuracy = svg_line_chart({"train accuracy": [(m["step"], m["accuracy"]) for m in metrics if "accuracy" in m],
                               "eval accuracy": [(m["step"], m["eval_accuracy"]) for m in metrics
                                                 if "eval_accuracy" in m]}, "preference accuracy by step")
    speed = svg_line_chart({"tokens/s": [(m["step"], m["tokens_per_s"]) for m in metrics if "tokens_per_s" in m]},
                           "training throughput (non-padding tokens/s)")
    data = run.get("data", {})
    rows = "".join(f"<tr><td>{html.escape(str(s.get('path')))}</td><td>{s.get('records')}</td>"
                   f"<td>{s.get('in_mix', '')}</td><td>{s.get('held_out', s.get('role', ''))}</td>"
                   f"<td><code>{str(s.get('sha256'))[:16]}</code></td></tr>" for s in data.get("sources", []))
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>alignline run {html.escape(run_dir.name)}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{padding:2px 8px;text-align:left}}
pre{{background:#f6f6f6;padding:8px;overflow:auto}}</style></head><body>
<h1>Run {html.escape(str(run_dir))}</h1>
<p>status <b>{html.escape(str(run.get('status')))}</b>, method <b>{html.escape(str(run['config']['method']))}</b>,
steps {run.get('steps', '?')}, best eval {run.get('best_eval')}, {run.get('seconds', 0):.0f} s</p>
{loss}{accuracy}{speed}
<h2>Data</h2><table><tr><th>source</th><th>records</th><th>in mix</th><th>held out / role</th><th>sha256</th></tr>{rows}</table>
<p>train examples {data.get('train_examples')}, eval examples {data.get('eval_examples')},
truncated {data.get('truncated_examples')} ({data.get('truncated_tokens')} tokens),
trained tokens {data.get('train_target_tokens')} of {data.get('train_tokens')}</p>
<h2>Config</h2><pre>{html.escape(json.dumps(run['config'], indent=2))}</pre></body></html>"""
    out = run_dir / "report.html"
    return write_text(out, body)
