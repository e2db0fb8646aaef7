#!/usr/bin/env python3
"""Tool-use demonstrations for the SFT warm start of `make demo-rft`: `data/demo/calculator_sft.jsonl`.

One full episode per TRAINING task (`data/demo/calculator_train.jsonl`; the held-out tasks are never read):
the environment's context (`env.prefix` of `recipes/rft-calculator.yaml`: its system message and worked
example, all `weight: 0`), the task's user turn, the assistant's calculator call on the task's
`expression`, the `tool` message with the calculator's result, and the final `Answer: <answer>`. The tools
list is the task's, so the chat template renders the schemas as the RL episodes do: the warm start trains
on exactly the context the policy later sees.

The call is OpenAI's `tool_calls` (what the project's SFT trains, and what a user's tool-use data holds);
the chat template renders it in its own tool-call format, for SmolLM2 the Hermes block
`<tool_call>\\n{"name": "calculator", "arguments": {"expression": ...}}\\n</tool_call>` that the calculator
environment parses (`rollout/tools.py`). Only the two assistant turns are trained: the prefix, the user
turn and the tool result are context (`alignline data show` marks them so).

Why the expression is right: `make_rl_data.py` writes each task's `expression` beside its `answer`, which
is the calculator's value of it; this script checks the two agree and stops if not. Deterministic: no
randomness, the records in the training file's order.

    python scripts/make_rft_sft_data.py              # writes data/demo/calculator_sft.jsonl
    python scripts/make_rft_sft_data.py --out FILE
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from alignline.io import write_records  # noqa: E402
from alignline.rollout.tools import calculator, format_number  # noqa: E402

TRAIN = ROOT / "data" / "demo" / "calculator_train.jsonl"
RECIPE = ROOT / "recipes" / "rft-calculator.yaml"
OUT = ROOT / "data" / "demo" / "calculator_sft.jsonl"


def recipe_prefix(recipe: Path = RECIPE) -> list[dict]:
    """The RL recipe's `env.prefix` (the context every episode starts with)."""
    import yaml

    return [dict(m) for m in (yaml.safe_load(recipe.read_text(encoding="utf-8")).get("env") or {}).get("prefix", [])]


def demonstration(task: dict, prefix: list[dict]) -> dict:
    """The task's episode as a chat record: call, result, answer; only the assistant turns trained."""
    result = calculator(task["expression"])
    if result != format_number_of(task["answer"]):
        raise ValueError(f"expression {task['expression']!r} gives {result}, not the answer {task['answer']}")
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": "calculator", "arguments": {"expression": task["expression"]}},
    }
    context = [{**m, "weight": 0} if m["role"] == "assistant" else dict(m) for m in prefix]
    return {
        "messages": [
            *context,
            *task["prompt"],
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_0", "name": "calculator", "content": result},
            {"role": "assistant", "content": f"Answer: {result}"},
        ],
        "tools": task["tools"],
    }


def format_number_of(value) -> str:
    from fractions import Fraction

    return format_number(Fraction(str(value)))


def demonstrations(train_path: Path = TRAIN, recipe: Path = RECIPE) -> list[dict]:
    prefix = recipe_prefix(recipe)
    with train_path.open(encoding="utf-8") as fh:
        return [demonstration(json.loads(line), prefix) for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    n = write_records(args.out, demonstrations())
    print(f"{args.out.name}: {n} demonstrations")


if __name__ == "__main__":
    main()
