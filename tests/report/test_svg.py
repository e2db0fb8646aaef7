"""The chart writer: well-formed SVG, round ticks, labels inside the canvas, legend below the plot, nothing fetched."""

import re
import xml.etree.ElementTree as ET

import pytest

from alignline.render.svg import bar_chart, histogram, line_chart, nice_step, nice_ticks, text_width, tick_labels


def _texts(svg: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg).iter("text")]


@pytest.mark.parametrize(
    "lo,hi,target,expected",
    [
        # span 2.53 / 5 = 0.506 -> the next round step up is 1 (0.5 < 0.506): ticks 0..3
        (0.37, 2.9, 5, [0, 1, 2, 3]),
        # span 0.00093 / 5 = 0.000186 -> step 0.0002; last tick ceil(0.00093 / 0.0002) = 5 -> 0.001
        (0, 0.00093, 5, [0, 0.0002, 0.0004, 0.0006, 0.0008, 0.001]),
        # span 23 / 5 = 4.6 -> step 5; floor(1 / 5) = 0 .. ceil(24 / 5) = 5 -> 0..25
        (1, 24, 5, [0, 5, 10, 15, 20, 25]),
        # span 6685 / 4 = 1671 -> step 2000: 0..8000
        (0, 6685, 4, [0, 2000, 4000, 6000, 8000]),
        # span 0.033 / 4 = 0.00825 -> step 0.01: -0.02..0.02
        (-0.02, 0.013, 4, [-0.02, -0.01, 0, 0.01, 0.02]),
        # a constant 0 (a padding share of zero) -> [0, 1], never below zero
        (0, 0, 5, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ],
)
def test_nice_ticks_are_round_and_cover_the_data(lo, hi, target, expected):
    ticks = nice_ticks(lo, hi, target)
    assert ticks == pytest.approx(expected)
    assert ticks[0] <= lo and ticks[-1] >= hi
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** __import__("math").floor(__import__("math").log10(step))
    assert round(mantissa, 6) in (1, 2, 2.5, 5)


def test_nice_step_and_integer_ticks():
    assert nice_step(10, 5) == 2 and nice_step(7, 5) == 2 and nice_step(0.3, 5) == pytest.approx(0.1)
    assert nice_ticks(1, 3, 5, integer=True) == [1, 2, 3]  # steps of a short run: no 1.5


def test_tick_labels_one_style_per_axis():
    assert tick_labels([0, 0.25, 0.5, 0.75, 1.0]) == ["0", "0.25", "0.50", "0.75", "1.00"]
    assert tick_labels([0, 5000, 10000, 15000]) == ["0", "5k", "10k", "15k"]
    assert tick_labels([5e-5, 1e-4, 1.5e-4, 2e-4]) == ["5e-5", "1e-4", "1.5e-4", "2e-4"]
    assert tick_labels([0, 2000, 4000]) == ["0", "2,000", "4,000"]


def test_line_chart_is_well_formed_with_titles_and_legend_below_the_plot():
    svg = line_chart(
        {"loss": [(1, 2.5), (2, 2.1), (3, 1.7)], "eval_loss <&>": [(2, 2.3)]},
        "step",
        "loss",
        "loss & co",
        dashed=["eval_loss <&>"],
    )
    root = ET.fromstring(svg)  # parses: well-formed XML, the label's <&> escaped
    width, height = (float(v) for v in root.get("viewBox").split()[2:])
    texts = {e.text: e for e in _texts(svg)}
    assert {"step", "loss", "loss & co", "eval_loss <&>"} <= set(texts)
    frame = next(e for e in root.iter("rect"))
    plot_bottom = float(frame.get("y")) + float(frame.get("height"))
    assert float(texts["eval_loss <&>"].get("y")) > plot_bottom + 20  # legend under the x-axis title, not on a curve
    for e in _texts(svg):  # every label inside the canvas (by the generous width estimate)
        if e.get("transform"):
            continue
        x, w = float(e.get("x")), text_width(e.text)
        left = x - w if e.get("text-anchor") == "end" else x - w / 2 if e.get("text-anchor") == "middle" else x
        assert 0 <= left and left + w <= width + 1, e.text
        assert 0 < float(e.get("y")) <= height
    assert "stroke-dasharray" in svg


def test_charts_fetch_nothing_and_empty_input_gives_nothing():
    charts = [
        line_chart({"a": [(0, 1), (1, 2)]}, "x", "y", "t"),
        bar_chart([("a", 3), ("b", 1)], "bars", "records"),
        histogram([0, 10, 20, 30], [1, 5, 2], "length (tokens)", "lengths", marker=25, marker_label="max_length"),
    ]
    for svg in charts:
        ET.fromstring(svg)
        assert not re.search(r"<script|href=|https?:|url\(|@import", svg)
    assert "max_length" in charts[2]
    assert (
        line_chart({"a": []}, "x", "y", "t") == "" and bar_chart([], "t") == "" and histogram([0], [], "x", "t") == ""
    )


def test_histogram_y_ticks_are_whole_counts():
    svg = histogram([0, 1, 2], [3, 1], "length", "lengths")
    labels = [e.text for e in _texts(svg)]
    assert "1.5" not in labels and "3" in labels


def test_histogram_names_a_limit_beyond_the_data():
    svg = histogram([0, 10, 20], [3, 1], "length (tokens)", "lengths", marker=256, marker_label="max_length")
    assert "max_length 256 →" in [e.text for e in _texts(svg)]
