"""Small inline SVG charts (no JavaScript, no external resources): horizontal bars and a histogram."""

from __future__ import annotations

from html import escape


def bars(items: list[tuple[str, float]], title: str, max_value: float | None = None, width: int = 640) -> str:
    if not items:
        return ""
    row, label_w, pad = 22, 170, 6
    top = max_value or max((v for _, v in items), default=1) or 1
    height = 28 + row * len(items)
    plot = width - label_w - 70
    out = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">',
           f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, (label, value) in enumerate(items):
        y = 26 + i * row
        w = max(0.0, plot * (value / top))
        out.append(f'<text x="{label_w - pad}" y="{y + 14}" font-size="12" text-anchor="end">'
                   f'{escape(str(label)[:28])}</text>'
                   f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 7}" fill="#4c78a8"/>'
                   f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{escape(_num(value))}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram(edges: list[float], counts: list[int], xlabel: str, marker: float | None = None,
              width: int = 640, height: int = 220) -> str:
    if not counts:
        return ""
    left, bottom, top_pad = 50, 40, 24
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    peak = max(counts) or 1
    lo, hi = edges[0], edges[-1] if len(edges) > len(counts) else edges[0] + 1
    span = (hi - lo) or 1
    bw = plot_w / len(counts)
    out = [f'<svg class="chart" role="img" aria-label="length histogram" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">',
           f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(xlabel)}: histogram</text>']
    for i, c in enumerate(counts):
        h = plot_h * c / peak
        out.append(f'<rect x="{left + i * bw + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{max(bw - 2, 1):.1f}" '
                   f'height="{h:.1f}" fill="#72b7b2"><title>{escape(_num(edges[i]))}–{escape(_num(edges[i + 1]))}: '
                   f'{c}</title></rect>')
    base = top_pad + plot_h
    out.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#333"/>')
    for frac in (0, 0.5, 1):
        x = left + plot_w * frac
        out.append(f'<text x="{x:.1f}" y="{base + 16}" font-size="11" text-anchor="middle">'
                   f'{escape(_num(lo + span * frac))}</text>')
    out.append(f'<text x="{left - 6}" y="{top_pad + 10}" font-size="11" text-anchor="end">{peak}</text>')
    if marker is not None and lo <= marker <= hi:
        x = left + plot_w * (marker - lo) / span
        out.append(f'<line x1="{x:.1f}" y1="{top_pad}" x2="{x:.1f}" y2="{base}" stroke="#cf222e" stroke-dasharray="4"/>'
                   f'<text x="{x + 3:.1f}" y="{top_pad + 10}" font-size="11" fill="#cf222e">max_length</text>')
    out.append("</svg>")
    return "".join(out)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"
