"""The calculator (exact, precedence as Python's, refuses anything but arithmetic) and tool-call parsing on
literal strings."""

from __future__ import annotations

from fractions import Fraction

import pytest

from alignline.rollout.tools import (
    CALCULATOR_TOOL,
    CalcError,
    calculate,
    calculator,
    find_tool_calls,
    parse_tool_calls,
    valid_call,
)


@pytest.mark.parametrize(
    "expression, value",
    [
        ("2 + 3 * 4", 14),  # * before +
        ("(2 + 3) * 4", 20),  # parentheses first
        ("10 - 4 - 3", 3),  # left-associative: (10 - 4) - 3
        ("2 ** 3 ** 2", 512),  # right-associative: 2 ** 9
        ("2 ^ 3", 8),  # ^ read as power
        ("-2 ** 2", -4),  # power binds tighter than unary minus, as in Python
        ("2 * -3", -6),
        ("7 / 2", Fraction(7, 2)),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("0.1 + 0.2", Fraction(3, 10)),  # exact, no float rounding
        ("((1))", 1),
        ("  12  ", 12),
        ("2 ** -1", Fraction(1, 2)),
    ],
)
def test_calculate(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize(
    "expression, message",
    [
        ("1 / 0", "division by zero"),
        ("5 // (3 - 3)", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("__import__('os')", "names are not allowed"),
        ("x + 1", "names are not allowed"),
        ("(1).real", "attributes are not allowed"),
        ("abs(-1)", "names are not allowed"),
        ("'1' + '2'", "unexpected character"),
        ("2 +", "incomplete expression"),
        ("(2 + 3", "missing closing parenthesis"),
        ("2 3", "unexpected '3'"),
        ("", "empty expression"),
        ("9 ** 9 ** 9", "exponent larger than"),
        ("2 ** 0.5", "whole-number exponents"),
        ("1" + "+1" * 200, "longer than"),
    ],
)
def test_calculate_refuses(expression, message):
    with pytest.raises(CalcError, match=message):
        calculate(expression)


def test_calculator_tool_answers_text():
    assert calculator("6 * 7") == "42"
    assert calculator("1 / 3") == "0.333333"
    assert calculator("3 / 2") == "1.5"
    assert calculator("1 / 0") == "error: division by zero"
    assert calculator("os.system") == "error: names are not allowed, only numbers and + - * / // % ** ( )"


def test_parse_hermes_blocks():
    text = (
        'I will compute.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "3 * 4"}}\n</tool_call>\n'
        '<tool_call>{"name": "lookup", "arguments": "{\\"key\\": \\"a\\"}"}</tool_call>'
    )
    assert parse_tool_calls(text) == [
        {"name": "calculator", "arguments": {"expression": "3 * 4"}},
        {"name": "lookup", "arguments": {"key": "a"}},
    ]


def test_parse_unclosed_block_and_plain_json():
    # a reply cut at max_new_tokens (or by a stop string) right after the JSON still counts
    assert parse_tool_calls('<tool_call>{"name": "calculator", "arguments": {"expression": "1"}}') == [
        {"name": "calculator", "arguments": {"expression": "1"}}
    ]
    assert parse_tool_calls('{"name": "calculator", "parameters": {"expression": "2"}}') == [
        {"name": "calculator", "arguments": {"expression": "2"}}
    ]
    assert parse_tool_calls(
        '```json\n[{"type": "function", "function": {"name": "calculator", '
        '"arguments": "{\\"expression\\": \\"5\\"}"}}]\n```'
    ) == [{"name": "calculator", "arguments": {"expression": "5"}}]


@pytest.mark.parametrize("text", ["The answer is 12.", "Answer: {not json", '{"answer": 3}', "", "[1, 2]"])
def test_no_call_in_plain_answers(text):
    assert find_tool_calls(text) == ([], [])


def test_malformed_blocks_are_errors_not_answers():
    calls, errors = find_tool_calls("<tool_call>{calculator: 2+2}</tool_call>")
    assert calls == [] and errors[0].startswith("error: the tool call is not valid JSON")
    calls, errors = find_tool_calls('<tool_call>{"arguments": {}}</tool_call>')
    assert calls == [] and errors == ['error: a tool call is {"name": "...", "arguments": {...}}']


def test_valid_call_needs_known_name_and_required_arguments():
    assert valid_call({"name": "calculator", "arguments": {"expression": "1"}}, [CALCULATOR_TOOL])
    assert not valid_call({"name": "calculator", "arguments": {"expr": "1"}}, [CALCULATOR_TOOL])
    assert not valid_call({"name": "calc", "arguments": {"expression": "1"}}, [CALCULATOR_TOOL])
    assert not valid_call({"name": "calculator", "arguments": {"expression": "1"}}, None)
