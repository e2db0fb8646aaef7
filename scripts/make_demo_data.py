#!/usr/bin/env python3
"""Generate the small bundled demo datasets under ``data/demo/``.

Pure standard library, no network, fully deterministic: every random choice comes from one
``random.Random(0)`` and only insertion-ordered structures are iterated (never sets), so
two runs produce byte-identical output.

    python scripts/make_demo_data.py            # writes data/demo/*.jsonl
    python scripts/make_demo_data.py --out DIR  # somewhere else

Files written (see data/demo/README.md):

- sft_train.jsonl / sft_eval.jsonl / sft_heldout.jsonl  chat-format instruction tuning
- cpt_train.jsonl / cpt_eval.jsonl                      continued-pretraining text ("Northwind Robotics")
- preference_train.jsonl / preference_eval.jsonl        TRL-style chosen/rejected pairs

The assistant style in the SFT data is deliberately distinctive so that a short LoRA run visibly
changes a small model's behaviour: every answer opens with a tag per task (``Summary:``,
``Label:``, ``Extracted:``, ``Rewritten:``, ``Answer:``) and refusals open with
``I can't help with that.`` followed by a safe alternative.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from demo_data.common import DEFAULT_OUT
from demo_data.cpt import build_cpt
from demo_data.preference import build_preference
from demo_data.sft import build_sft

# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def write_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/demo)")
    args = ap.parse_args(argv)
    rng = random.Random(0)
    sft_train, sft_eval, sft_heldout, _ = build_sft(rng)
    cpt_train, cpt_eval = build_cpt(rng)
    pref_train, pref_eval = build_preference(rng)
    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "sft_train.jsonl": sft_train,
        "sft_eval.jsonl": sft_eval,
        "sft_heldout.jsonl": sft_heldout,
        "cpt_train.jsonl": cpt_train,
        "cpt_eval.jsonl": cpt_eval,
        "preference_train.jsonl": pref_train,
        "preference_eval.jsonl": pref_eval,
    }
    for fname, recs in files.items():
        write_jsonl(args.out / fname, recs)
        print(f"{fname:26s} {len(recs):4d} records")


if __name__ == "__main__":
    main()
