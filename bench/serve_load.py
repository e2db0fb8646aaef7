"""Load test of `alignline serve` on loopback: bounded concurrent clients, latency, errors, share routed.

    python bench/serve_load.py                               # 64 requests, 8 clients, max-batch 8 and 1
    python bench/serve_load.py --requests 32 --max-batch 8   # one setting
    python bench/serve_load.py --backends hf,vllm --max-batch 8   # `serve --backend hf` against `--backend vllm`

The server is the real command (`alignline serve --model smollm2-135m --backend B`, its own process; vLLM runs
in the server's process with a 2 GiB KV cache, `bench/common.py`), routing on:
answers below the threshold are flagged (answered and marked) and queued in a JSONL review file, under a
calibration file this script makes first (`alignline serve calibrate --fit platt` on the starter
arithmetic suite, so the threshold is enabled the only way the server allows) plus a policy (PII in the
answer, a medical topic). The clients are the official `openai` client, `--clients` threads, each sending
its next request when the last one returns, over a fixed mix of prompts (starter arithmetic and general
knowledge), greedy, `--max-tokens` new tokens at most.

Measured per server setting: latency per request (p50, p95, max, from send to the full response),
errors (any non-200 or exception), share of answers routed, generated tokens per second over the whole
run (the `usage` counts), requests per engine call (from /health, the dynamic batching at work), the
server's start-up (process start to its first answer to /v1/models).
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
sys.path.insert(0, str(ROOT / "bench"))

from common import load_average, machine_info, set_vllm_env  # noqa: E402

VLLM_SETTINGS = set_vllm_env()

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
    model: str,
    backend: str,
    max_batch: int,
    work: Path,
    calibration: Path | None,
    threshold: float,
    n: int,
    clients: int,
    max_tokens: int,
    ready_timeout: float = 900,
) -> dict:
    import httpx
    import openai

    from alignline.serve.app import free_port, wait_ready

    port = free_port()
    tag = f"{backend}-b{max_batch}"
    queue = work / f"reviews-{tag}.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "alignline.cli",
        "serve",
        "--model",
        model,
        "--backend",
        backend,
        "--served-name",
        "m",
        "--port",
        str(port),
        "--max-batch",
        str(max_batch),
        "--max-queue",
        str(4 * clients),
        *(["--route-below", str(threshold), "--calibration", str(calibration)] if calibration else []),
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
    log_path = work / f"server-{tag}.log"
    log = open(log_path, "w")
    load_before = load_average()
    started = time.perf_counter()
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        try:
            wait_ready(base, server, timeout=ready_timeout)
        except RuntimeError as e:
            log.flush()
            lines = [ln.strip() for ln in log_path.read_text().splitlines() if ln.strip()]
            cause = ([ln for ln in lines if "rror" in ln] or lines or ["(no output)"])[-1]
            return {"backend": backend, "max_batch": max_batch, "error": f"{e}: {cause[:400]}", "log": str(log_path)}
        startup = time.perf_counter() - started
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
    if not ok:
        return {"backend": backend, "max_batch": max_batch, "error": f"every request failed: {results[0]['error']}"}
    calls = health["engine_calls"] - warm
    return {
        "backend": backend,
        "max_batch": max_batch,
        "startup_s": round(startup, 1),
        "load_before": load_before,
        "load_after": load_average(),
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


def calibrate(args, calibration: Path) -> int:
    """`alignline serve calibrate` on the starter arithmetic suite, so the threshold is enabled the only way the
    server allows; its exit code."""
    print(f"calibrating {args.model} on starter/arithmetic (threshold {args.threshold}, Platt scaling)", flush=True)
    return subprocess.run(
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


def cell(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return text.replace("|", "/")


def make_table(runs: list[dict]) -> list[str]:
    table = [
        "| backend | max batch | requests / clients | errors | p50 | p95 | req/s | generated tok/s | routed "
        "| req per engine call | start-up | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        if "error" in r:
            table.append(f"| {r['backend']} | {r['max_batch']} | failed: {cell(r['error'])} | | | | | | | | | |")
            continue
        table.append(
            f"| {r['backend']} | {r['max_batch']} | {r['requests']} / {r['clients']} | {r['errors']} "
            f"| {r['p50_s']:.2f} s | {r['p95_s']:.2f} s | {r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} "
            f"| {r['share_routed']:.0%} | {r['requests_per_engine_call']} | {r['startup_s']:.0f} s "
            f"| {r['load_before']:.1f}-{r['load_after']:.1f} |"
        )
    return table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--max-batch", default="8,1", help="server --max-batch settings to compare, comma-separated")
    p.add_argument("--backends", default="hf", help="server --backend settings to compare, comma-separated: hf,vllm")
    p.add_argument("--ready-timeout", type=float, default=900, help="seconds a server may take to start")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / f"serve-load-{date.today()}.json"))
    p.add_argument(
        "--no-calibration",
        action="store_true",
        help="skip `serve calibrate` (40 answers) and the confidence threshold: only the policy routes (smoke tests)",
    )
    args = p.parse_args()
    from alignline.io import write_json, write_text

    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    write_text(work / "policy.yaml", POLICY)
    calibration = None if args.no_calibration else work / "calibration.json"
    code = 0 if calibration is None else calibrate(args, calibration)
    if code != 0:
        print(f"calibration refused routing (exit {code}); see {calibration.with_suffix('.html')}", file=sys.stderr)
        return 1
    runs = []
    for backend in args.backends.split(","):
        for b in [int(x) for x in args.max_batch.split(",")]:
            print(
                f"server --backend {backend} --max-batch {b}: {args.requests} requests from {args.clients} clients",
                flush=True,
            )
            r = run_setting(
                args.model,
                backend,
                b,
                work,
                calibration,
                args.threshold,
                args.requests,
                args.clients,
                args.max_tokens,
                args.ready_timeout,
            )
            print(json.dumps(r), flush=True)
            runs.append(r)
    table = make_table(runs)
    print("\n".join(table))
    cal = json.loads(calibration.read_text())["models"]["base"] if calibration else None
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
            "calibration": {k: cal[k] for k in ("n", "ece", "ece_raw", "accuracy", "share_routed")} if cal else None,
            "machine": machine_info(),
            "vllm": VLLM_SETTINGS,
            "runs": runs,
            "table": table,
        },
    )
    print(f"wrote {args.out}")
    return 0 if all(r.get("errors") == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
