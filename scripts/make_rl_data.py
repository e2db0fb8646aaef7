#!/usr/bin/env python3
"""Generate the arithmetic word problems for the RL demos under ``data/demo/``.

Standard library plus `alignline.rollout.tools` (the calculator's schema and the calculator, which
checks every answer); deterministic: every choice comes from one ``random.Random(12)``.

    python scripts/make_rl_data.py            # writes data/demo/{calculator,arith}_*.jsonl
    python scripts/make_rl_data.py --out DIR

- calculator_train.jsonl / calculator_eval.jsonl: `{"prompt": [user], "answer", "expression", "tools"}`
  for the multi-turn calculator environment (`rollout/envs/calculator.py`).
- arith_train.jsonl / arith_heldout.jsonl: TRL's prompt + columns format for single-turn GRPO:
  `{"prompt": [user], "answer", "expression"}`, the prompt asking to end with "Answer: <number>".

Within reach of a 135M model: small numbers, one or two operations, whole-number answers (divisions
exact, differences non-negative); phrasing varied over several templates per operation. No question
appears in two files.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from alignline.rollout.tools import CALCULATOR_TOOL, calculate  # noqa: E402

NAMES = ["Ann", "Ben", "Mia", "Leo", "Zoe", "Sam", "Ivy", "Max", "Eva", "Tom", "Lily", "Omar", "Nina", "Raj"]
ITEMS = ["apples", "pens", "stickers", "marbles", "books", "cookies", "cards", "shells", "coins", "flowers"]

ONE_STEP = {
    "+": ["{n} has {a} {x} and gets {b} more. How many {x} does {n} have now?",
          "There are {a} {x} in a box. {n} puts in {b} more. How many {x} are in the box?",
          "{n} collected {a} {x} on Monday and {b} on Tuesday. How many {x} in total?"],
    "-": ["{n} has {a} {x} and gives away {b}. How many {x} are left?",
          "A shelf holds {a} {x}. {n} takes {b} of them. How many {x} remain on the shelf?",
          "{n} had {a} {x} but lost {b}. How many {x} does {n} have left?"],
    "*": ["{n} has {a} bags with {b} {x} in each bag. How many {x} are there altogether?",
          "Each of {a} friends brings {b} {x}. How many {x} do they bring in total?",
          "{n} buys {b} {x} every day for {a} days. How many {x} does {n} buy?"],
    "/": ["{n} shares {a} {x} equally among {b} friends. How many {x} does each friend get?",
          "{a} {x} are packed into boxes of {b}. How many boxes are filled?",
          "{n} splits {a} {x} into {b} equal piles. How many {x} are in each pile?"],
}
TWO_STEP = [
    ("({a} + {b}) * {c}", "{n} buys {c} packs. Each pack has {a} red {x} and {b} blue {x}. How many {x} in all?"),
    ("{a} * {b} - {c}", "{n} has {a} boxes of {b} {x} and eats {c} of them. How many {x} are left?"),
    ("{a} + {b} - {c}", "{n} has {a} {x}, finds {b} more, then gives {c} away. How many {x} does {n} have?"),
    ("{a} * {b} + {c}", "There are {a} rows of {b} {x}, plus {c} extra. How many {x} are there?"),
]
CALC_SUFFIX = " Use the calculator if it helps, then give the final answer as \"Answer: <number>\"."
ARITH_SUFFIX = " Think step by step and end your reply with \"Answer: <number>\"."


def one_step(rng: random.Random) -> tuple[str, str]:
    op = rng.choice(list(ONE_STEP))
    if op == "+":
        a, b = rng.randint(2, 40), rng.randint(2, 40)
    elif op == "-":
        a = rng.randint(5, 50)
        b = rng.randint(1, a - 1)
    elif op == "*":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
    else:
        b, q = rng.randint(2, 9), rng.randint(2, 9)
        a = b * q
    text = rng.choice(ONE_STEP[op]).format(n=rng.choice(NAMES), x=rng.choice(ITEMS), a=a, b=b)
    return text, f"{a} {op} {b}"


def two_step(rng: random.Random) -> tuple[str, str]:
    expression, template = rng.choice(TWO_STEP)
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9)
    values = {"a": a, "b": b, "c": c}
    if calculate(expression.format(**values)) < 0:
        values["c"] = 1
    text = template.format(n=rng.choice(NAMES), x=rng.choice(ITEMS), **values)
    return text, expression.format(**values)


def problems(rng: random.Random, count: int, seen: set[str]) -> list[tuple[str, str, int]]:
    out = []
    while len(out) < count:
        text, expression = (two_step if rng.random() < 0.35 else one_step)(rng)
        if text in seen:
            continue
        seen.add(text)
        value = calculate(expression)
        assert value.denominator == 1 and value >= 0, expression
        out.append((text, expression, int(value)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "demo")
    args = ap.parse_args(argv)
    rng = random.Random(12)
    seen: set[str] = set()
    files = {}
    for name, count in (("calculator_train", 256), ("calculator_eval", 64)):
        files[name] = [{"prompt": [{"role": "user", "content": t + CALC_SUFFIX}], "answer": v, "expression": e,
                        "tools": [CALCULATOR_TOOL]} for t, e, v in problems(rng, count, seen)]
    for name, count in (("arith_train", 512), ("arith_heldout", 64)):
        files[name] = [{"prompt": [{"role": "user", "content": t + ARITH_SUFFIX}], "answer": v, "expression": e}
                       for t, e, v in problems(rng, count, seen)]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in files.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (args.out / f"{name}.jsonl").write_text(text, encoding="utf-8", newline="\n")
        print(f"{name}.jsonl: {len(records)} records")


if __name__ == "__main__":
    main()
