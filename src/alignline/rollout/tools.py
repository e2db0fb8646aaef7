"""Tools a policy calls in an episode: reading its tool calls out of its text, and the calculator.

Tool calls are read in the format the chat templates render them (`data/templates.py`): Hermes / Qwen
style blocks, `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (the fallback for templates
without tool support writes exactly this), and, where the text holds no such block, a plain JSON
function call (the whole reply, or a ```json fence, is `{"name", "arguments"}`, a list of them, or
OpenAI's `{"type": "function", "function": {...}}`). `arguments` may be an object or a JSON string of
one (OpenAI sends strings; templates write objects); `parameters` is accepted for `arguments`.

The calculator is a tiny recursive-descent parser over exact fractions, never `eval`: numbers, `+ - *
/ // % **` (and `^` for power), parentheses and unary signs. Anything else (a name, an attribute, a
call, a string) is refused with a message the policy can read as its tool result. Sizes are bounded
(expression length, exponent, digits) so no expression can hang the rollout.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction

CALCULATOR_TOOL = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression (numbers, + - * / // % **, parentheses).",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "e.g. (3 + 4) * 2"}},
            "required": ["expression"],
        },
    },
}

TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
JSON_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_tool_calls(text: str) -> list[dict]:
    """The well-formed tool calls in `text`, each `{"name": str, "arguments": dict}`, in order.

    >>> parse_tool_calls('Let me compute. '
    ...                  '<tool_call>{"name": "calculator", "arguments": {"expression": "2+3"}}</tool_call>')
    [{'name': 'calculator', 'arguments': {'expression': '2+3'}}]
    >>> parse_tool_calls('{"name": "calculator", "arguments": "{\\\\"expression\\\\": \\\\"1\\\\"}"}')
    [{'name': 'calculator', 'arguments': {'expression': '1'}}]
    >>> parse_tool_calls("The answer is 5.")
    []
    """
    return find_tool_calls(text)[0]


def find_tool_calls(text: str) -> tuple[list[dict], list[str]]:
    """Well-formed calls, and one error line per attempted call that is not (a `<tool_call>` block that
    is not `{"name", "arguments"}` JSON): an environment answers those with the error, so the policy
    learns the format instead of having its malformed call read as a final answer."""
    calls: list[dict] = []
    errors: list[str] = []
    blocks = TOOL_CALL_BLOCK.findall(text)
    if blocks:
        for block in blocks:
            call, error = read_call_json(block.strip())
            (calls.extend(call) if error is None else errors.append(error))
        return calls, errors
    stripped = text.strip()
    candidates = JSON_FENCE.findall(stripped) or ([stripped] if stripped[:1] in "{[" else [])
    for candidate in candidates:
        call, error = read_call_json(candidate.strip())
        if error is None:
            calls.extend(call)
    return calls, errors


def read_call_json(text: str) -> tuple[list[dict], str | None]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return [], f"error: the tool call is not valid JSON ({e.msg} at column {e.colno})"
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        call = normalize_call(item)
        if call is None:
            return [], 'error: a tool call is {"name": "...", "arguments": {...}}'
        out.append(call)
    return out, None


def normalize_call(item) -> dict | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):  # OpenAI's {"type": "function", "function": {...}}
        item = item["function"]
    name = item.get("name")
    args = item.get("arguments", item.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if not isinstance(name, str) or not name or not isinstance(args, dict):
        return None
    return {"name": name, "arguments": args}


def valid_call(call: dict, tools: list[dict] | None) -> bool:
    """A call of one of `tools` (OpenAI schemas) with every required argument present."""
    for tool in tools or []:
        fn = tool.get("function", tool)
        if fn.get("name") == call["name"]:
            required = (fn.get("parameters") or {}).get("required", [])
            return all(k in call["arguments"] for k in required)
    return False


# --------------------------------------------------------------------------------------------------
# The calculator
# --------------------------------------------------------------------------------------------------

MAX_EXPRESSION = 200
MAX_EXPONENT = 64
MAX_DIGITS = 60
TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|(\*\*|//|[-+*/%^()])|(\S))")


class CalcError(ValueError):
    """A calculator error; its message is what the tool answers."""


def tokenize_expression(expression: str) -> list[str]:
    tokens = []
    for number, op, other in TOKEN.findall(expression):
        if other:
            if other.isalpha() or other == "_":
                raise CalcError("names are not allowed, only numbers and + - * / // % ** ( )")
            if other == ".":
                raise CalcError("attributes are not allowed, only numbers and + - * / // % ** ( )")
            raise CalcError(f"unexpected character {other!r}")
        tokens.append(number or ("**" if op == "^" else op))
    return tokens


class Parser:
    """expr := term (('+'|'-') term)*; term := unary (('*'|'/'|'//'|'%') unary)*;
    unary := ('+'|'-') unary | power; power := atom ('**' unary)?  (right-associative, binds tighter
    than unary minus on its left, as in Python: -2**2 == -4); atom := number | '(' expr ')'."""

    def __init__(self, tokens: list[str]):
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/", "//", "%"):
            op, right = self.take(), self.unary()
            if op == "*":
                value = value * right
            elif right == 0:
                raise CalcError("division by zero")
            elif op == "/":
                value = value / right
            elif op == "//":
                value = Fraction(value // right)
            else:
                value = value % right
            check_size(value)
        return value

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            return self.unary() if self.take() == "+" else -self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        if self.peek() != "**":
            return base
        self.take()
        exponent = self.unary()
        if exponent.denominator != 1:
            raise CalcError("only whole-number exponents are supported")
        if abs(exponent) > MAX_EXPONENT:
            raise CalcError(f"exponent larger than {MAX_EXPONENT}")
        if base == 0 and exponent < 0:
            raise CalcError("division by zero")
        return check_size(base ** int(exponent))

    def atom(self) -> Fraction:
        token = self.peek()
        if token is None:
            raise CalcError("incomplete expression")
        if token == "(":
            self.take()
            value = self.expr()
            if self.peek() != ")":
                raise CalcError("missing closing parenthesis")
            self.take()
            return value
        if token[0].isdigit() or token[0] == ".":
            return Fraction(self.take())
        raise CalcError(f"unexpected {token!r}")


def check_size(value: Fraction) -> Fraction:
    if len(str(value.numerator)) > MAX_DIGITS or len(str(value.denominator)) > MAX_DIGITS:
        raise CalcError("result too large")
    return value


def calculate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression; `CalcError` for anything else.

    >>> calculate("2 + 3 * (4 - 1)")
    Fraction(11, 1)
    """
    if not isinstance(expression, str):
        raise CalcError("the expression must be a string")
    if len(expression) > MAX_EXPRESSION:
        raise CalcError(f"expression longer than {MAX_EXPRESSION} characters")
    tokens = tokenize_expression(expression)
    if not tokens:
        raise CalcError("empty expression")
    parser = Parser(tokens)
    value = parser.expr()
    if parser.peek() is not None:
        raise CalcError(f"unexpected {parser.peek()!r}")
    return value


def format_number(value: Fraction) -> str:
    """Whole numbers as integers, others as decimals (up to 6 places, trailing zeros dropped).

    >>> format_number(Fraction(7, 2)), format_number(Fraction(12)), format_number(Fraction(1, 3))
    ('3.5', '12', '0.333333')
    """
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def calculator(expression: str) -> str:
    """The calculator tool: the result as text, or `error: ...` (what the policy reads back)."""
    try:
        return format_number(calculate(expression))
    except CalcError as e:
        return f"error: {e}"
