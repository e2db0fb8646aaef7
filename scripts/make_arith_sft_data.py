#!/usr/bin/env python3
"""Worked solutions for the SFT warm start of `make demo-grpo`: `data/demo/arith_sft.jsonl`.

One chat record per TRAINING problem (`data/demo/arith_train.jsonl`; the held-out problems are never read):
the problem's user turn as the GRPO prompt has it, then an assistant turn that works the problem one
operation per line and ends with the line the prompt asks for and the demo's reward reads,

    4 + 5 = 9
    9 * 3 = 27
    Answer: 27

Why the solutions are exact: `make_rl_data.py` writes each problem's `expression` beside its `answer`; the
steps are that expression evaluated innermost operation first (exact fractions), and this script stops if
the last step is not the recorded answer. Deterministic: no randomness, the training file's order.

    python scripts/make_arith_sft_data.py              # writes data/demo/arith_sft.jsonl
    python scripts/make_arith_sft_data.py --out FILE
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from alignline.io import write_records  # noqa: E402

TRAIN = ROOT / "data" / "demo" / "arith_train.jsonl"
OUT = ROOT / "data" / "demo" / "arith_sft.jsonl"
OPS = {ast.Add: ("+", lambda a, b: a + b), ast.Sub: ("-", lambda a, b: a - b)}
OPS |= {ast.Mult: ("*", lambda a, b: a * b), ast.Div: ("/", lambda a, b: a / b)}


def show(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):g}"


def steps(expression: str) -> tuple[list[str], Fraction]:
    """The expression's operations as lines `a op b = c`, innermost first, and its value."""
    lines: list[str] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            left, right = walk(node.left), walk(node.right)
            symbol, fn = OPS[type(node.op)]
            value = fn(left, right)
            lines.append(f"{show(left)} {symbol} {show(right)} = {show(value)}")
            return value
        raise ValueError(f"expression {expression!r}: only whole numbers and + - * / are expected")

    value = walk(ast.parse(expression, mode="eval").body)
    return lines, value


def solution(problem: dict) -> dict:
    lines, value = steps(problem["expression"])
    if value != Fraction(str(problem["answer"])):
        raise ValueError(f"expression {problem['expression']!r} gives {value}, not the answer {problem['answer']}")
    reply = "\n".join([*lines, f"Answer: {show(value)}"])
    return {"messages": [*problem["prompt"], {"role": "assistant", "content": reply}]}


def solutions(train_path: Path = TRAIN) -> list[dict]:
    with train_path.open(encoding="utf-8") as fh:
        return [solution(json.loads(line)) for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    n = write_records(args.out, solutions())
    print(f"{args.out.name}: {n} worked solutions")


if __name__ == "__main__":
    main()
