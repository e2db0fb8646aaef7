#!/usr/bin/env python3
"""Split preference pairs into unpaired feedback: each pair becomes two records, the chosen completion labelled
desirable and the rejected one undesirable (TRL's `unpair_preference_dataset` does the same).

    python scripts/unpair_preferences.py IN.jsonl OUT.jsonl
    python scripts/unpair_preferences.py --demo     # data/demo/preference_*.jsonl -> data/demo/kto_*.jsonl

Records need `prompt`, `chosen` and `rejected`; every other field (`category`, `source`, `confidence`, ...) is kept
on both halves. The output is shuffled with a fixed seed, because neighbours in a file become each other's mismatched
(KL) partners where batches keep the file's order (evaluation): the two halves of a pair side by side would pair a
prompt with its own other answer. Pure standard library and deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"


def unpair(record: dict) -> list[dict]:
    rest = {k: v for k, v in record.items() if k not in ("prompt", "chosen", "rejected")}
    return [
        {"prompt": record["prompt"], "completion": record[side], "label": label, **rest}
        for side, label in (("chosen", True), ("rejected", False))
    ]


def convert(src: Path, dst: Path) -> int:
    out = []
    for number, line in enumerate(src.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        missing = [k for k in ("prompt", "chosen", "rejected") if k not in record]
        if missing:
            sys.exit(f"{src}, line {number}: missing {', '.join(missing)}")
        out += unpair(record)
    random.Random(0).shuffle(out)
    # written beside the target and renamed, so a failed run leaves no half-written file
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in out)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst)
    return len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="IN.jsonl OUT.jsonl")
    parser.add_argument("--demo", action="store_true", help="derive data/demo/kto_{train,eval}.jsonl")
    args = parser.parse_args()
    if args.demo:
        jobs = [(DEMO / f"preference_{split}.jsonl", DEMO / f"kto_{split}.jsonl") for split in ("train", "eval")]
    elif len(args.paths) == 2:
        jobs = [tuple(args.paths)]
    else:
        parser.error("give IN.jsonl OUT.jsonl, or --demo")
    for src, dst in jobs:
        print(f"{dst}: {convert(src, dst)} records")


if __name__ == "__main__":
    main()
