"""Benchmark: near-duplicate detection over N short records (default 1 million), on this machine's cores.

Not a test. Builds a JSONL file of short synthetic chat records (12-40 words) with planted exact and
near duplicates (one word changed or appended), then times, separately:
  dedup   the duplicate finder alone: read + parse + normalize + MinHash + LSH + clusters (as `data dedup`);
  check   optionally (--check) the whole `alignline data check` (every check, both passes).
Prints records/s, peak memory, and the recall of the planted duplicates.

    python bench/dedup_bench.py                 # 1,000,000 records
    python bench/dedup_bench.py --n 200000 --check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path


def build(path: Path, n: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    vocab = [f"{a}{b}{c}" for a in "bdfgklmnprstvz" for b in "aeiou" for c in range(300)]  # 21,000 words
    exact = near = 0
    recent: list[str] = []
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            r = rng.random()
            if recent and r < 0.02:  # 2% exact copies (case and spacing changed)
                text = rng.choice(recent).upper()
                exact += 1
            elif recent and r < 0.05:  # 3% near copies: one word appended or the last word replaced
                base = rng.choice(recent).split()
                text = " ".join(base[:-1] + [rng.choice(vocab)] if rng.random() < 0.5 else base + [rng.choice(vocab)])
                near += 1
            else:
                text = " ".join(rng.choice(vocab) for _ in range(rng.randint(12, 40)))
                if len(recent) < 5000:
                    recent.append(text)
                else:
                    recent[rng.randrange(5000)] = text
            cut = text.find(" ", len(text) // 3)
            fh.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": text[:cut]},
                            {"role": "assistant", "content": text[cut + 1 :]},
                        ]
                    }
                )
                + "\n"
            )
    return {"exact": exact, "near": near}


def rss_mb() -> float:
    """Peak resident set size, including mapped file pages (the signature file) the OS can drop."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AnonPeak:
    """Peak anonymous memory (the process's own heap, not file pages), sampled from /proc twice a second."""

    def __init__(self):
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                for line in open("/proc/self/status"):
                    if line.startswith("RssAnon:"):
                        self.peak = max(self.peak, int(line.split()[1]) / 1024)
            except OSError:
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--check", action="store_true", help="also time the whole `data check`")
    ap.add_argument("--keep", default=None, help="write the data file here and keep it")
    args = ap.parse_args()
    from alignline.data.quality.actions import dedup_file
    from alignline.data.quality.check import run_checks
    from alignline.data.quality.gates import load_gate_config

    tmp = Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    data = Path(args.keep) if args.keep else tmp / "records.jsonl"
    t = time.time()
    planted = build(data, args.n)
    print(
        f"built {args.n:,} records ({data.stat().st_size / 1e6:.0f} MB; planted {planted['exact']:,} exact, "
        f"{planted['near']:,} near) in {time.time() - t:.0f} s",
        flush=True,
    )
    cfg = load_gate_config()
    anon = AnonPeak()
    t = time.time()
    r = dedup_file([str(data)], str(tmp / "dedup.jsonl"), cfg, progress=sys.stderr.isatty())
    dt = time.time() - t
    found = r["exact_duplicates"] + r["near_duplicates"]
    print(
        f"dedup: {dt:.0f} s ({args.n / dt:,.0f} records/s), peak RSS {rss_mb():.0f} MB (anonymous "
        f"{anon.stop():.0f} MB); removed {found:,} "
        f"({r['exact_duplicates']:,} exact + {r['near_duplicates']:,} near) of {sum(planted.values()):,} planted "
        f"(recall {found / max(1, sum(planted.values())):.1%}); cores: {os.cpu_count()}",
        flush=True,
    )
    if args.check:
        anon = AnonPeak()
        t = time.time()
        report = run_checks([str(data)], None, cfg, progress=sys.stderr.isatty())
        dt = time.time() - t
        print(
            f"check: {dt:.0f} s ({args.n / dt:,.0f} records/s), peak RSS {rss_mb():.0f} MB (anonymous "
            f"{anon.stop():.0f} MB); "
            f"duplicate share {report['duplicates']['duplicate_share']:.2%}",
            flush=True,
        )
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
