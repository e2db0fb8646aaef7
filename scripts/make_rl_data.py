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
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from alignline.rollout.tools import CALCULATOR_TOOL, calculate  # noqa: E402

NAMES = ["Ann", "Ben", "Mia", "Leo", "Zoe", "Sam", "Ivy", "Max", "Eva", "Tom", "Lily", "Omar", "Nina", "Raj"]
ITEMS = ["apples", "pens", "stickers", "marbles", "books", "cookies", "cards", "shells", "coins", "flowers"]

ONE_STEP = {
    "+": [
        "{n} has {a} {x} and gets {b} more. How many {x} does {n} have now?",
        "There are {a} {x} in a box. {n} puts in {b} more. How many {x} are in the box?",
        "{n} collected {a} {x} on Monday and {b} on Tuesday. How many {x} in total?",
    ],
    "-": [
        "{n} has {a} {x} and gives away {b}. How many {x} are left?",
        "A shelf holds {a} {x}. {n} takes {b} of them. How many {x} remain on the shelf?",
        "{n} had {a} {x} but lost {b}. How many {x} does {n} have left?",
    ],
    "*": [
        "{n} has {a} bags with {b} {x} in each bag. How many {x} are there altogether?",
        "Each of {a} friends brings {b} {x}. How many {x} do they bring in total?",
        "{n} buys {b} {x} every day for {a} days. How many {x} does {n} buy?",
    ],
    "/": [
        "{n} shares {a} {x} equally among {b} friends. How many {x} does each friend get?",
        "{a} {x} are packed into boxes of {b}. How many boxes are filled?",
        "{n} splits {a} {x} into {b} equal piles. How many {x} are in each pile?",
    ],
}
TWO_STEP = [
    ("({a} + {b}) * {c}", "{n} buys {c} packs. Each pack has {a} red {x} and {b} blue {x}. How many {x} in all?"),
    ("{a} * {b} - {c}", "{n} has {a} boxes of {b} {x} and eats {c} of them. How many {x} are left?"),
    ("{a} + {b} - {c}", "{n} has {a} {x}, finds {b} more, then gives {c} away. How many {x} does {n} have?"),
    ("{a} * {b} + {c}", "There are {a} rows of {b} {x}, plus {c} extra. How many {x} are there?"),
]
CALC_SUFFIX = ' Use the calculator if it helps, then give the final answer as "Answer: <number>".'
ARITH_SUFFIX = ' Think step by step and end your reply with "Answer: <number>".'


# Held-out problems use phrasings training never shows (the last one-step phrasing of each operation and
# the last two-step one), so held-out accuracy measures the skill, not the template, and the data gates'
# leakage check passes: word n-grams of a template shared across the split would count as leaked items.
HELD_OUT_PHRASING = {op: len(ts) - 1 for op, ts in ONE_STEP.items()}
HELD_OUT_TWO_STEP = len(TWO_STEP) - 1


def one_step(rng: random.Random, held_out: bool) -> tuple[str, str, tuple]:
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
    choices = [i for i in range(len(ONE_STEP[op])) if (i == HELD_OUT_PHRASING[op]) == held_out]
    t, n, x = rng.choice(choices), rng.choice(NAMES), rng.choice(ITEMS)
    return ONE_STEP[op][t].format(n=n, x=x, a=a, b=b), f"{a} {op} {b}", (op, t, n, x)


def two_step(rng: random.Random, held_out: bool) -> tuple[str, str, tuple]:
    t = HELD_OUT_TWO_STEP if held_out else rng.randrange(HELD_OUT_TWO_STEP)
    expression, template = TWO_STEP[t]
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9)
    values = {"a": a, "b": b, "c": c}
    if calculate(expression.format(**values)) < 0:
        values["c"] = 1
    n, x = rng.choice(NAMES), rng.choice(ITEMS)
    return template.format(n=n, x=x, **values), expression.format(**values), ("two", t, n, x)


def problems(rng: random.Random, count: int, seen: set, held_out: bool = False) -> list[tuple[str, str, int]]:
    """`count` problems, no two differing only in their numbers (the data gates would rightly call those
    near-duplicates), and none as close in wording to an earlier one as a near-duplicate."""
    out, kept = [], []
    while len(out) < count:
        text, expression, _ = (two_step if rng.random() < 0.35 else one_step)(rng, held_out)
        key = re.sub(r"\d+", "#", text)  # the problem without its numbers
        words = re.findall(r"\w+", text.lower())
        shingles = {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
        # Well under the data gates' near-duplicate threshold (Jaccard 0.8 of word 3-grams, MinHash-estimated).
        if key in seen or any(len(shingles & other) / len(shingles | other) >= 0.6 for other in kept):
            continue
        seen.add(key)
        kept.append(shingles)
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
    for name, count, held_out in (("calculator_train", 192, False), ("calculator_eval", 48, True)):
        files[name] = [
            {
                "prompt": [{"role": "user", "content": t + CALC_SUFFIX}],
                "answer": v,
                "expression": e,
                "tools": [CALCULATOR_TOOL],
            }
            for t, e, v in problems(rng, count, seen, held_out)
        ]
    seen = set()  # the arithmetic files are a separate demo: they may reuse the calculator files' combinations
    for name, count, held_out in (("arith_train", 384, False), ("arith_heldout", 64, True)):
        files[name] = [
            {"prompt": [{"role": "user", "content": t + ARITH_SUFFIX}], "answer": v, "expression": e}
            for t, e, v in problems(rng, count, seen, held_out)
        ]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in files.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (args.out / f"{name}.jsonl").write_text(text, encoding="utf-8", newline="\n")
        print(f"{name}.jsonl: {len(records)} records")


if __name__ == "__main__":
    main()
