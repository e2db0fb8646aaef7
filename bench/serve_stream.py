"""Time to first token against the full answer, streamed from `alignline serve` on loopback.

    python bench/serve_stream.py                  # 8 prompts, 64 new tokens at most, one client

Two servers, the real command (`alignline serve --model smollm2-135m`, its own process), one after the other:
- live: no routing, so `stream: true` goes out token by token;
- buffered: a policy that holds (`--on-low hold`), so the stream waits for the whole answer.
One client (the official `openai` client, `stream=True`), requests one at a time, greedy, over open
questions (answers long enough to reach the token limit). Per request: seconds from sending to the first
content chunk (time to first token) and to the last chunk. Results: bench/results/serve-stream-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT / "src"))

PROMPTS = [
    "Explain why the sky is blue.",
    "Describe how a bicycle works.",
    "What makes a good friend?",
    "Give some tips for learning a new language.",
    "Why do leaves change colour in autumn?",
    "Explain what a computer program is.",
    "How do plants make their food?",
    "Describe a rainy day in a city.",
]
HOLD_POLICY = "action: hold\npii: true\n"


def run_setting(model: str, extra: list[str], prompts: list[str], max_tokens: int, log: Path) -> dict:
    import openai

    from alignline.serve.app import free_port, wait_ready

    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "alignline.cli",
        "serve",
        "--model",
        model,
        "--served-name",
        "m",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *extra,
    ]
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
        try:
            base = f"http://127.0.0.1:{port}/v1"
            wait_ready(base, server)
            client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=600)
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
            rows = []
            for text in prompts:
                t0, first, chunks, tokens = time.perf_counter(), None, 0, 0
                for c in client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": text}],
                    max_tokens=max_tokens,
                    temperature=0,
                    stream=True,
                    stream_options={"include_usage": True},
                ):
                    if c.choices and c.choices[0].delta.content:
                        first = first or time.perf_counter() - t0
                        chunks += 1
                    if c.usage:
                        tokens = c.usage.completion_tokens
                rows.append(
                    {"ttft_s": first, "total_s": time.perf_counter() - t0, "content_chunks": chunks, "tokens": tokens}
                )
        finally:
            server.terminate()
            server.wait(timeout=60)
    ttft, total = [r["ttft_s"] for r in rows if r["ttft_s"]], [r["total_s"] for r in rows]
    return {
        "server": " ".join(extra) or "(no routing)",
        "requests": len(rows),
        "median_ttft_s": round(statistics.median(ttft), 3),
        "median_total_s": round(statistics.median(total), 3),
        "mean_tokens": round(statistics.mean(r["tokens"] for r in rows), 1),
        "mean_content_chunks": round(statistics.mean(r["content_chunks"] for r in rows), 1),
        "rows": rows,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--requests", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / f"serve-stream-{date.today()}.json"))
    args = p.parse_args()
    from alignline.io import write_json, write_text

    work = Path(tempfile.mkdtemp(prefix="serve-stream-"))
    write_text(work / "policy.yaml", HOLD_POLICY)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.requests)]
    runs = []
    for name, extra in (
        ("live", []),
        (
            "buffered",
            ["--policy", str(work / "policy.yaml"), "--on-low", "hold", "--review-file", str(work / "reviews.jsonl")],
        ),
    ):
        r = run_setting(args.model, extra, prompts, args.max_tokens, work / f"server-{name}.log")
        print(json.dumps({k: v for k, v in r.items() if k != "rows"}), flush=True)
        runs.append({"setting": name, **r})
    write_json(
        args.out,
        {
            "date": str(date.today()),
            "model": args.model,
            "cpu_count": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "max_tokens": args.max_tokens,
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
