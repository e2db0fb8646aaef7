"""Charts as inline SVG: line charts with several series, horizontal bars, histograms.

Self-contained on purpose: no script, no font, no stylesheet, no `xmlns` URL; a report with these
charts opens offline, in a mail attachment, on a machine with no network. Every chart has a title,
axis titles, ticks at round values (1, 2 or 5 times a power of ten, as a person would pick), and its
legend below the plot, where it cannot cover a curve. Label widths are estimated from the character
count (no font metrics without a browser), with room to spare, so nothing is clipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
FONT = 11
DASH = ' stroke-dasharray="5 3"'
BAR_COLOR, HIST_COLOR, MARK_COLOR = "#4c78a8", "#72b7b2", "#cf222e"


def text_width(text: str, size: float = FONT) -> float:
    """A generous estimate of rendered width (an average sans-serif glyph is about 0.55 em)."""
    return len(text) * 0.62 * size


def nice_step(span: float, target: int = 5) -> float:
    """The round step (1, 2, 2.5 or 5 times a power of ten) giving about `target` intervals over `span`."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power * (1 + 1e-9):
            return m * power
    return 10 * power


def nice_ticks(lo: float, hi: float, target: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi]: the first at or below lo, the last at or above hi.

    [0.37, 2.9] with target 5 -> step 0.5 -> [0, 0.5, ..., 3]. A single value gets a range around it that
    stays at or above zero when the value does. `integer`: steps of at least 1 (training steps, counts).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = (lo - pad if lo - pad >= 0 or lo < 0 else 0.0), hi + pad
    step = nice_step(hi - lo, target)
    if integer:
        step = max(1.0, round(step))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    # round away float noise (0.1 * 3 = 0.30000000000000004) at the step's own precision
    digits = max(0, -math.floor(math.log10(step)) + 2)
    return [round(i * step, digits) + 0.0 for i in range(first, last + 1)]


def tick_labels(ticks: list[float]) -> list[str]:
    """Labels for one axis, in one style: fixed decimals the step needs (0.25, 0.50), thousands as k
    (12k), very small or large values in short scientific form (2e-4, 1.5e-4)."""
    if not ticks:
        return []
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else (abs(ticks[0]) or 1.0)
    top = max(abs(t) for t in ticks)
    if top and (top < 1e-3 or top >= 1e6):
        out = []
        for t in ticks:
            if t == 0:
                out.append("0")
                continue
            exp = math.floor(math.log10(abs(t)) + 1e-9)
            mant = f"{t / 10**exp:.{min(_decimals(step / 10**exp), 3)}f}"
            mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
            out.append(f"{mant}e{exp}")
        return out
    if top >= 10_000 and step >= 1000:
        return [f"{t / 1000:,.{_decimals(step / 1000)}f}k" if t else "0" for t in ticks]
    return [f"{t:,.{_decimals(step)}f}" if t else "0" for t in ticks]


def format_value(value: float) -> str:
    """A value on its own (a bar's length, a table cell): integers whole, others to 3-4 significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def _decimals(step: float) -> int:
    """Decimals needed to tell ticks `step` apart: 0.25 -> 2, 0.5 -> 1, 5 -> 0."""
    if step <= 0:
        return 0
    for d in range(0, 12):
        if abs(round(step, d) - step) < step * 1e-6:
            return d
    return 12


def _legend(
    labels: list[str], colors: list[str], x0: float, y0: float, width: float, dashed: frozenset[str] = frozenset()
) -> tuple[list[str], float]:
    """Swatch-and-label items laid out in rows below the plot; returns (elements, height used)."""
    out, x, y, row_h = [], x0, y0, FONT + 6
    for label, color in zip(labels, colors):
        w = 18 + text_width(label) + 14
        if x > x0 and x + w > x0 + width:
            x, y = x0, y + row_h
        out.append(
            f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 14:.1f}" y2="{y - 4:.1f}" stroke="{color}" '
            f'stroke-width="2.5"{DASH if label in dashed else ""}/>'
            f'<text x="{x + 18:.1f}" y="{y:.1f}" font-size="{FONT}">{escape(label)}</text>'
        )
        x += w
    return out, (y - y0) + row_h if labels else 0.0


def _open(width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="system-ui, sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-size="13" font-weight="bold">'
        f"{escape(title)}</text>",
    ]


def line_chart(
    series: dict[str, list[tuple[float, float]]],
    x_title: str,
    y_title: str,
    title: str,
    width: int = 400,
    height: int = 250,
    colors: dict[str, str] | None = None,
    dashed: Iterable[str] = (),
) -> str:
    """Lines of (x, y) points, one per series (label -> points), with markers where points are few.

    `colors` (label -> CSS color) and `dashed` (labels drawn dashed) let a caller pair series, e.g. an
    eval curve dashed in the colour of its training curve; other series take the palette in order.

    `height` is the plot's frame; the legend adds rows below it. Empty series are left out; with no
    points at all the result is an empty string.
    """
    series = {k: [(float(x), float(y)) for x, y in v if y is not None and math.isfinite(y)] for k, v in series.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return ""
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    xt = nice_ticks(min(xs), max(xs), 5, integer=all(x.is_integer() for x in xs))
    yt = nice_ticks(min(ys), max(ys), 4)
    if min(xs) >= 0 and xt[0] < 0:
        xt = [t for t in xt if t >= 0] or [0.0, 1.0]
    y_labels, x_labels = tick_labels(yt), tick_labels(xt)
    left = 8 + FONT + 8 + max(text_width(s) for s in y_labels) + 6
    right = 8 + text_width(x_labels[-1]) / 2
    top, frame_bottom = 28, height - 2 * FONT - 18
    plot_w, plot_h = width - left - right, frame_bottom - top
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def sx(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * plot_w

    def sy(y: float) -> float:
        return frame_bottom - (y - y0) / ((y1 - y0) or 1) * plot_h

    dashed = frozenset(dashed)
    labels = list(series)
    colors = [(colors or {}).get(label, PALETTE[i % len(PALETTE)]) for i, label in enumerate(labels)]
    legend, legend_h = _legend(labels, colors, left, height + 16, plot_w, dashed)  # below the x-axis title
    total_h = height + legend_h + 14
    out = _open(width, total_h, title)
    for v, s in zip(yt, y_labels):
        out.append(
            f'<line x1="{left:.1f}" y1="{sy(v):.1f}" x2="{left + plot_w:.1f}" y2="{sy(v):.1f}" '
            f'stroke="#e5e5e5"/><text x="{left - 5:.1f}" y="{sy(v) + 4:.1f}" text-anchor="end" '
            f'font-size="{FONT}">{escape(s)}</text>'
        )
    for v, s in zip(xt, x_labels):
        out.append(
            f'<line x1="{sx(v):.1f}" y1="{frame_bottom:.1f}" x2="{sx(v):.1f}" y2="{frame_bottom + 4:.1f}" '
            f'stroke="#888"/><text x="{sx(v):.1f}" y="{frame_bottom + FONT + 6:.1f}" text-anchor="middle" '
            f'font-size="{FONT}">{escape(s)}</text>'
        )
    out.append(f'<rect x="{left:.1f}" y="{top}" width="{plot_w:.1f}" height="{plot_h:.1f}" fill="none" stroke="#888"/>')
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{frame_bottom + 2 * FONT + 14:.1f}" text-anchor="middle" '
        f'font-size="{FONT}" fill="#444">{escape(x_title)}</text>'
    )
    out.append(
        f'<text transform="translate({8 + FONT:.1f},{top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
        f'font-size="{FONT}" fill="#444">{escape(y_title)}</text>'
    )
    for (label, pts), color in zip(series.items(), colors):
        pts = sorted(pts)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f"<g><title>{escape(label)}</title>")
        if len(pts) > 1:
            dash = DASH if label in dashed else ""
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{path}"/>')
        if len(pts) <= 40:
            out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.8" fill="{color}"/>' for x, y in pts]
        out.append("</g>")
    out += legend
    out.append("</svg>")
    return "".join(out)


def bar_chart(
    items: list[tuple[str, float]],
    title: str,
    value_title: str | None = None,
    max_value: float | None = None,
    width: int = 640,
) -> str:
    """Horizontal bars, one per (label, value), the value printed at the bar's end."""
    if not items:
        return ""
    row = 22
    labels = [str(label)[:40] for label, _ in items]
    label_w = min(max(text_width(s, 12) for s in labels) + 12, width * 0.45)
    values = [format_value(v) for _, v in items]
    top = max_value or max((v for _, v in items), default=1) or 1
    plot = width - label_w - max(text_width(s, 12) for s in values) - 16
    height = 28 + row * len(items) + (FONT + 10 if value_title else 4)
    out = _open(width, height, title)
    out[-1] = f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
    for i, (label, value, shown) in enumerate(zip(labels, (v for _, v in items), values)):
        y = 26 + i * row
        w = max(0.0, plot * (value / top))
        out.append(
            f'<text x="{label_w - 6:.1f}" y="{y + 14}" font-size="12" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 7}" fill="{BAR_COLOR}">'
            f"<title>{escape(label)}: {escape(shown)}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{escape(shown)}</text>'
        )
    if value_title:
        out.append(
            f'<text x="{label_w + plot / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="{FONT}" '
            f'fill="#444">{escape(value_title)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def histogram(
    edges: list[float],
    counts: list[int],
    x_title: str,
    title: str,
    y_title: str = "records",
    marker: float | None = None,
    marker_label: str = "",
    width: int = 640,
    height: int = 240,
) -> str:
    """Bars over bins [edges[i], edges[i+1]); an optional dashed vertical marker (a limit)."""
    if not counts:
        return ""
    lo = edges[0]
    hi = edges[len(counts)] if len(edges) > len(counts) else lo + 1
    peak = max(counts) or 1
    xt = [
        t
        for t in nice_ticks(lo, hi, 6, integer=all(float(e).is_integer() for e in edges))
        if lo - 1e-9 <= t <= hi + 1e-9
    ] or [lo, hi]
    yt = nice_ticks(0, peak, 4, integer=True)
    y_labels, x_labels = tick_labels(yt), tick_labels(xt)
    left = 8 + FONT + 8 + max(text_width(s) for s in y_labels) + 6
    right = 10 + text_width(x_labels[-1]) / 2
    top, bottom = 28, height - 2 * FONT - 18
    plot_w, plot_h = width - left - right, bottom - top

    def sx(x: float) -> float:
        return left + (x - lo) / ((hi - lo) or 1) * plot_w

    def sy(y: float) -> float:
        return bottom - y / (yt[-1] or 1) * plot_h

    out = _open(width, height, title)
    for v, s in zip(yt, y_labels):
        out.append(
            f'<line x1="{left:.1f}" y1="{sy(v):.1f}" x2="{left + plot_w:.1f}" y2="{sy(v):.1f}" '
            f'stroke="#e5e5e5"/><text x="{left - 5:.1f}" y="{sy(v) + 4:.1f}" text-anchor="end" '
            f'font-size="{FONT}">{escape(s)}</text>'
        )
    for i, c in enumerate(counts):
        a, b = edges[i], edges[i + 1] if i + 1 < len(edges) else hi
        out.append(
            f'<rect x="{sx(a) + 0.5:.1f}" y="{sy(c):.1f}" width="{max(sx(b) - sx(a) - 1, 1):.1f}" '
            f'height="{bottom - sy(c):.1f}" fill="{HIST_COLOR}"><title>{escape(format_value(a))}–'
            f"{escape(format_value(b))}: {c}</title></rect>"
        )
    out.append(f'<line x1="{left:.1f}" y1="{bottom:.1f}" x2="{left + plot_w:.1f}" y2="{bottom:.1f}" stroke="#333"/>')
    for v, s in zip(xt, x_labels):
        out.append(
            f'<line x1="{sx(v):.1f}" y1="{bottom:.1f}" x2="{sx(v):.1f}" y2="{bottom + 4:.1f}" stroke="#888"/>'
            f'<text x="{sx(v):.1f}" y="{bottom + FONT + 6:.1f}" text-anchor="middle" font-size="{FONT}">'
            f"{escape(s)}</text>"
        )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{bottom + 2 * FONT + 14:.1f}" text-anchor="middle" '
        f'font-size="{FONT}" fill="#444">{escape(x_title)}</text>'
    )
    out.append(
        f'<text transform="translate({8 + FONT:.1f},{top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
        f'font-size="{FONT}" fill="#444">{escape(y_title)}</text>'
    )
    if marker is not None and not lo <= marker <= hi:  # say where the limit is, rather than leave it out
        side, x, anchor = ("→", left + plot_w, "end") if marker > hi else ("←", left, "start")
        label = (
            f"{marker_label} {format_value(marker)} {side}"
            if side == "→"
            else f"{side} {marker_label} {format_value(marker)}"
        )
        out.append(
            f'<text x="{x:.1f}" y="{top - 4}" font-size="{FONT}" text-anchor="{anchor}" fill="{MARK_COLOR}">'
            f"{escape(label.strip())}</text>"
        )
    elif marker is not None:
        x = sx(marker)
        anchor, dx = ("end", -4) if x > left + plot_w * 0.75 else ("start", 4)
        out.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{MARK_COLOR}" '
            f'stroke-dasharray="4"/><text x="{x + dx:.1f}" y="{top + 10}" font-size="{FONT}" '
            f'text-anchor="{anchor}" fill="{MARK_COLOR}">{escape(marker_label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def forest_plot(
    rows: list[dict],
    title: str = "candidate − baseline (95 % interval)",
    x_title: str = "candidate − baseline",
    width: int = 760,
) -> str:
    """One row per metric: the delta as a point, its 95 % interval as a horizontal whisker, zero dashed.

    rows: {label, delta, ci_low, ci_high, higher_is_better (True, False or None)}. The better side of
    zero is shaded per row (where the direction is known); an interval wholly on the worse side is red.
    The x-axis is symmetric around zero with round ticks; the interval is printed at the right. Rows
    with a missing or infinite number are left out; none left: an empty string.
    """
    keys = ("delta", "ci_low", "ci_high")
    rows = [r for r in rows if all(isinstance(r.get(k), (int, float)) and math.isfinite(r[k]) for k in keys)]
    if not rows:
        return ""
    labels = [str(r["label"])[:44] for r in rows]
    notes = [f"{r['delta']:+.3g} [{r['ci_low']:+.3g}, {r['ci_high']:+.3g}]" for r in rows]
    span = max(max(abs(r[k]) for k in keys) for r in rows) or 1.0
    ticks = nice_ticks(-span, span, 4)
    ticks = [t for t in ticks if abs(t) <= max(abs(ticks[0]), abs(ticks[-1]))]
    lo, hi = ticks[0], ticks[-1]
    tick_text = tick_labels(ticks)
    left = max(text_width(s, 12) for s in labels) + 14
    right = max(text_width(s) for s in notes) + 14
    row_h, top = 24, 30
    plot_w = width - left - right
    base = top + row_h * len(rows)
    height = base + 2 * FONT + 22

    def sx(v: float) -> float:
        return left + (v - lo) / ((hi - lo) or 1) * plot_w

    out = _open(width, height, title)
    for v in ticks:
        out.append(f'<line x1="{sx(v):.1f}" y1="{top}" x2="{sx(v):.1f}" y2="{base}" stroke="#eee"/>')
    for i, (r, label, note) in enumerate(zip(rows, labels, notes)):
        y = top + i * row_h + row_h / 2
        good = r.get("higher_is_better")
        if good is not None:
            a, b = (sx(0), sx(hi)) if good else (sx(lo), sx(0))
            out.append(
                f'<rect x="{a:.1f}" y="{y - row_h / 2 + 2:.1f}" width="{b - a:.1f}" height="{row_h - 4}" '
                f'fill="#dafbe1" opacity="0.7"/>'
            )
        worse = good is not None and ((r["ci_high"] < 0) if good else (r["ci_low"] > 0))
        color = "#cf222e" if worse else BAR_COLOR
        out.append(
            f"<g><title>{escape(str(r['label']))}: {escape(note)}</title>"
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{escape(label)}</text>'
            f'<line x1="{sx(r["ci_low"]):.1f}" y1="{y:.1f}" x2="{sx(r["ci_high"]):.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<circle cx="{sx(r["delta"]):.1f}" cy="{y:.1f}" r="4" fill="{color}"/>'
            f'<text x="{left + plot_w + 8:.1f}" y="{y + 4:.1f}" font-size="{FONT}">{escape(note)}</text></g>'
        )
    out.append(f'<line class="zero" x1="{sx(0):.1f}" y1="{top - 4}" x2="{sx(0):.1f}" y2="{base}" stroke="#333"{DASH}/>')
    out.append(f'<line x1="{left:.1f}" y1="{base}" x2="{left + plot_w:.1f}" y2="{base}" stroke="#888"/>')
    for v, s in zip(ticks, tick_text):
        out.append(
            f'<line x1="{sx(v):.1f}" y1="{base}" x2="{sx(v):.1f}" y2="{base + 4}" stroke="#888"/>'
            f'<text x="{sx(v):.1f}" y="{base + FONT + 6}" text-anchor="middle" font-size="{FONT}">'
            f"{escape(s if v <= 0 else '+' + s)}</text>"
        )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{base + 2 * FONT + 14}" text-anchor="middle" '
        f'font-size="{FONT}" fill="#444">{escape(x_title)}; shaded: the better side</text>'
    )
    out.append("</svg>")
    return "".join(out)


def reliability_diagram(bins: list[dict], title: str, size: int = 300) -> str:
    """Accuracy against confidence: one bar per bin (low, high, count, accuracy, confidence), the diagonal
    of perfect calibration dashed. Empty bins are left out; both axes run 0 to 1 with round ticks."""
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    labels = tick_labels(ticks)
    left = 8 + FONT + 8 + max(text_width(s) for s in labels) + 6
    right, top = 12, 28
    bottom = size - 2 * FONT - 18
    plot_w, plot_h = size - left - right, bottom - top

    def sx(v: float) -> float:
        return left + v * plot_w

    def sy(v: float) -> float:
        return bottom - v * plot_h

    out = _open(size, size, title)
    for v, s in zip(ticks, labels):
        out.append(
            f'<line x1="{left:.1f}" y1="{sy(v):.1f}" x2="{left + plot_w:.1f}" y2="{sy(v):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 5:.1f}" y="{sy(v) + 4:.1f}" text-anchor="end" font-size="{FONT}">{s}</text>'
            f'<line x1="{sx(v):.1f}" y1="{bottom:.1f}" x2="{sx(v):.1f}" y2="{bottom + 4:.1f}" stroke="#888"/>'
            f'<text x="{sx(v):.1f}" y="{bottom + FONT + 6:.1f}" text-anchor="middle" font-size="{FONT}">{s}</text>'
        )
    for b in bins:
        if not b.get("count"):
            continue
        x0, x1, h = sx(b["low"]), sx(b["high"]), plot_h * b["accuracy"]
        out.append(
            f'<rect x="{x0 + 1:.1f}" y="{bottom - h:.1f}" width="{max(x1 - x0 - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="{BAR_COLOR}" opacity="0.85"><title>confidence {b["low"]:.1f}–{b["high"]:.1f}: '
            f"{b['count']} answers, accuracy {b['accuracy']:.2f}, mean confidence {b['confidence']:.2f}"
            f"</title></rect>"
        )
    out.append(
        f'<line class="diagonal" x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(1):.1f}" y2="{sy(1):.1f}" '
        f'stroke="#555"{DASH}><title>perfect calibration</title></line>'
    )
    out.append(f'<rect x="{left:.1f}" y="{top}" width="{plot_w:.1f}" height="{plot_h:.1f}" fill="none" stroke="#888"/>')
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{bottom + 2 * FONT + 14:.1f}" text-anchor="middle" '
        f'font-size="{FONT}" fill="#444">confidence</text>'
        f'<text transform="translate({8 + FONT:.1f},{top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
        f'font-size="{FONT}" fill="#444">accuracy</text></svg>'
    )
    return "".join(out)
