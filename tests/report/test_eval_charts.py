"""The evaluation charts (forest plot, reliability diagram): well-formed SVG, every label inside the
canvas, zero (or the diagonal) drawn, round ticks, bad rows left out."""

import xml.etree.ElementTree as ET

from alignline.render.svg import forest_plot, reliability_diagram, text_width

ROWS = [
    {"label": "refusal/over_refusal", "delta": 0.2, "ci_low": 0.1, "ci_high": 0.3, "higher_is_better": False},
    {"label": "arithmetic/accuracy <&>", "delta": -0.025, "ci_low": -0.1, "ci_high": 0.05, "higher_is_better": True},
    {
        "label": "a metric with a rather long name that goes on and on",
        "delta": -0.3,
        "ci_low": -0.45,
        "ci_high": -0.15,
        "higher_is_better": None,
    },
]


def labels_inside(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # parses: well-formed XML, the label's <&> escaped
    width, height = (float(v) for v in root.get("viewBox").split()[2:])
    for e in root.iter("text"):
        if e.get("transform"):  # the rotated y-axis title sits at x = 8 + FONT
            continue
        w = text_width(e.text, float(e.get("font-size")))
        x = float(e.get("x"))
        left = x - w if e.get("text-anchor") == "end" else x - w / 2 if e.get("text-anchor") == "middle" else x
        assert 0 <= left and left + w <= width + 1, e.text
        assert 0 < float(e.get("y")) <= height, e.text
    return root


def test_forest_plot_is_well_formed_with_zero_line_and_labels_inside():
    svg = forest_plot(ROWS)
    root = labels_inside(svg)
    texts = [e.text for e in root.iter("text")]
    assert "arithmetic/accuracy <&>" in texts and "+0.2 [+0.1, +0.3]" in texts
    zero = next(e for e in root.iter("line") if e.get("class") == "zero")
    # symmetric around zero: [-0.45, 0.45] over 4 intervals = 0.225 -> round step 0.25 -> -0.5..+0.5
    assert [t for t in texts if t in ("-0.50", "-0.25", "0", "+0.25", "+0.50")] == [
        "-0.50",
        "-0.25",
        "0",
        "+0.25",
        "+0.50",
    ]
    tick0 = next(e for e in root.iter("text") if e.text == "0")
    assert float(zero.get("x1")) == float(zero.get("x2")) == float(tick0.get("x"))
    assert zero.get("stroke-dasharray")


def test_forest_plot_colours_only_intervals_wholly_on_the_worse_side():
    """over_refusal (lower is better) +0.1..+0.3: worse, red line and point; accuracy's interval spans zero;
    the unknown-direction row is never red, however far from zero."""
    svg = forest_plot(ROWS)
    assert svg.count("#cf222e") == 2
    assert svg.count('fill="#dafbe1"') == 2  # the better side shaded where the direction is known


def test_forest_plot_leaves_out_rows_with_missing_numbers():
    assert forest_plot([{"label": "x", "delta": float("nan"), "ci_low": 0, "ci_high": 1}]) == ""
    svg = forest_plot([{"label": "x", "delta": None, "ci_low": 0, "ci_high": 1}, ROWS[0]])
    assert "refusal/over_refusal" in svg and ">x<" not in svg


def test_reliability_diagram_has_the_diagonal_bins_and_axis_titles():
    bins = [
        {"low": 0.0, "high": 0.5, "count": 4, "accuracy": 0.25, "confidence": 0.4},
        {"low": 0.5, "high": 1.0, "count": 6, "accuracy": 0.5, "confidence": 0.8},
        {"low": 0.9, "high": 1.0, "count": 0, "accuracy": 0.0, "confidence": 0.0},
    ]
    root = labels_inside(reliability_diagram(bins, "cand: calib <1>"))
    texts = [e.text for e in root.iter("text")]
    assert {"confidence", "accuracy", "cand: calib <1>", "0", "0.2", "1.0"} <= set(texts)
    diagonal = next(e for e in root.iter("line") if e.get("class") == "diagonal")
    # from (0, 0) at the bottom left to (1, 1) at the top right
    assert float(diagonal.get("x1")) < float(diagonal.get("x2")) and float(diagonal.get("y1")) > float(
        diagonal.get("y2")
    )
    bars = [r for r in root.iter("rect") if r.find("title") is not None]
    assert len(bars) == 2  # the empty bin is left out
    # heights in proportion to accuracy: 0.25 and 0.5
    assert abs(float(bars[1].get("height")) - 2 * float(bars[0].get("height"))) < 0.2
