"""Load test of `alignline serve` on loopback: bounded concurrent clients, latency, errors, share routed.

    python bench/serve_load.py                               # 64 requests, 8 clients, max-batch 8 and 1
    python bench/serve_load.py --requests 32 --max-batch 8   # one setting

The server is the real command (`alignline serve --model smollm2-135m`, its own process), routing on:
answers below the threshold are flagged (answered and marked) and queued in a JSONL review file, under a
calibration file this script makes first (`alignline serve calibrate --fit platt` on the starter
arithmetic suite, so the threshold is enabled the only way the server allows) plus a policy (PII in the
answer, a medical topic). The clients are the official `openai` client, `--clients` threads, each sending
its next request when the last one returns, over a fixed mix of prompts (starter arithmetic and general
knowledge), greedy, `--max-tokens` new tokens at most.

Measured per server setting: latency per request (p50, p95, max, from send to the full response),
errors (any non-200 or exception), share of answers routed, generated tokens per second over the whole
run (the `usage` counts), requests per engine call (from /health, the dynamic batching at work).
Results: bench/results/serve-load-<date>.json.
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
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT / "src"))

STARTER = ROOT / "src" / "alignline" / "evals" / "starter"
POLICY = "pii: true\ntopics:\n  medical:\n    keywords: [dosage, diagnosis, prescription]\n"


def prompts(n: int) -> list[str]:
    rows = [
        json.loads(line)["prompt"]
        for name in ("arithmetic.jsonl", "general.jsonl")
        for line in (STARTER / name).read_text().splitlines()
    ]
    return [rows[(i * 7) % len(rows)] for i in range(n)]  # a fixed interleaving of both sets


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def run_setting(
    model: str, max_batch: int, work: Path, calibration: Path, threshold: float, n: int, clients: int, max_tokens: int
) -> dict:
    import httpx
    import openai

    from alignline.serve.app import free_port, wait_ready

    port = free_port()
    queue = work / f"reviews-b{max_batch}.jsonl"
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
        "--max-batch",
        str(max_batch),
        "--max-queue",
        str(4 * clients),
        "--route-below",
        str(threshold),
        "--calibration",
        str(calibration),
        "--on-low",
        "flag",
        "--policy",
        str(work / "policy.yaml"),
        "--review-file",
        str(queue),
        "--default-max-tokens",
        str(max_tokens),
        "--log-level",
        "warning",
    ]
    log = open(work / f"server-b{max_batch}.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        wait_ready(base, server)
        client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=600)
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0
        )  # warm-up, not counted
        warm = httpx.get(f"http://127.0.0.1:{port}/health").json()["engine_calls"]

        def one(text: str) -> dict:
            t0 = time.perf_counter()
            try:
                r = client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": text}], max_tokens=max_tokens, temperature=0
                )
                return {
                    "ok": True,
                    "seconds": time.perf_counter() - t0,
                    "tokens": r.usage.completion_tokens,
                    "routed": r.model_extra["alignline"]["routed"],
                }
            except Exception as e:  # noqa: BLE001 - counted as an error, whatever it is
                return {"ok": False, "seconds": time.perf_counter() - t0, "error": f"{type(e).__name__}: {e}"}

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, prompts(n)))
        wall = time.perf_counter() - t0
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    ok = [r for r in results if r["ok"]]
    lat = [r["seconds"] for r in ok]
    calls = health["engine_calls"] - warm
    return {
        "max_batch": max_batch,
        "requests": n,
        "clients": clients,
        "errors": len(results) - len(ok),
        "error_examples": [r["error"] for r in results if not r["ok"]][:3],
        "p50_s": round(percentile(lat, 0.5), 3),
        "p95_s": round(percentile(lat, 0.95), 3),
        "max_s": round(max(lat), 3),
        "mean_s": round(statistics.mean(lat), 3),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(ok) / wall, 3),
        "generated_tokens": sum(r["tokens"] for r in ok),
        "tokens_per_s": round(sum(r["tokens"] for r in ok) / wall, 1),
        "share_routed": round(sum(r["routed"] for r in ok) / max(len(ok), 1), 3),
        "queued_for_review": len(queue.read_text().splitlines()) if queue.exists() else 0,
        "engine_calls": calls,
        "requests_per_engine_call": round(n / calls, 2) if calls else None,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--max-batch", default="8,1", help="server --max-batch settings to compare, comma-separated")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / f"serve-load-{date.today()}.json"))
    args = p.parse_args()
    from alignline.io import write_json, write_text

    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    write_text(work / "policy.yaml", POLICY)
    calibration = work / "calibration.json"
    print(f"calibrating {args.model} on starter/arithmetic (threshold {args.threshold}, Platt scaling)", flush=True)
    code = subprocess.run(
        [
            sys.executable,
            "-m",
            "alignline.cli",
            "serve",
            "calibrate",
            "--model",
            args.model,
            "--labelled",
            str(STARTER / "arithmetic.jsonl"),
            "--grader",
            "math_answer",
            "--threshold",
            str(args.threshold),
            "--fit",
            "platt",
            "--max-ece",
            "0.2",
            "--max-tokens",
            "16",
            "--out",
            str(calibration),
        ],
        env=os.environ,
    ).returncode
    if code != 0:
        print(f"calibration refused routing (exit {code}); see {calibration.with_suffix('.html')}", file=sys.stderr)
        return 1
    runs = []
    for b in [int(x) for x in args.max_batch.split(",")]:
        print(f"server --max-batch {b}: {args.requests} requests from {args.clients} clients", flush=True)
        r = run_setting(args.model, b, work, calibration, args.threshold, args.requests, args.clients, args.max_tokens)
        print(json.dumps(r), flush=True)
        runs.append(r)
    cal = json.loads(calibration.read_text())["models"]["base"]
    write_json(
        args.out,
        {
            "date": str(date.today()),
            "model": args.model,
            "cpu_count": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "max_tokens": args.max_tokens,
            "threshold": args.threshold,
            "calibration": {k: cal[k] for k in ("n", "ece", "ece_raw", "accuracy", "share_routed")},
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")
    return 0 if all(r["errors"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
