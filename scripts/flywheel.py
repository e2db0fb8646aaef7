"""`make demo-flywheel`: one full round of the data flywheel on the embedded model, command by command.

    python scripts/flywheel.py [--out runs/flywheel] [--traffic 60]

1. data: a deterministic set of arithmetic questions with known answers, in three disjoint parts:
   labelled prompts for calibration, "user traffic" for the server, and a held-out eval suite;
2. `alignline serve calibrate --fit platt`: the confidence checked against correctness (the raw score of
   a 135M model is overconfident; Platt scaling, measured out of fold, makes it a usable signal);
3. `alignline serve --route-below T --calibration ... --review-db sqlite:///.../annotate.db`: the traffic
   goes through the official `openai` client, 4 clients at once; low-confidence answers are held and
   queued in the annotation store's review project, each with its request id;
4. scripted reviewers (the Store API, as the web app uses it) rate each queued answer and, where it is
   wrong, write the correct answer as an edit;
5. export (`Store.export`): SFT corrections and (correction, model answer) preference pairs, with lineage
   back to the request;
6. `alignline train`: a short LoRA SFT of round 1 (the base) on the corrections -> round 2;
7. `alignline eval` of both rounds on the held-out suite and a general-knowledge forgetting check, then
   `alignline gate` round 2 against round 1.

A script rather than `alignline demo --flywheel`: it drives the commands a user would type, as
subprocesses, with the server in its own process as in production, so each step can be read and re-run
on its own; the numbers land in OUT/flywheel.json. The routing threshold and everything else are fixed
here, so two runs on one machine give the same data and the same answers (greedy decoding).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT / "src"))

from alignline.io import write_json, write_records, write_text  # noqa: E402

MODEL = "smollm2-135m"
PROJECT = "flywheel-reviews"
THRESHOLD = 0.5
MAX_TOKENS = 24
MAX_ECE = 0.2
"""Looser than the command's default 0.1: on 60 labelled prompts the ECE itself is uncertain by about 0.05-0.1
(10 bins of a few answers each); a production check wants a few hundred and the default."""
GATES = """# Round 2 against round 1: better on the held-out questions, no worse elsewhere.
flywheel-arithmetic/accuracy: {delta_min: 0.0}
no_regression: {tolerance: 0.05}
"""


def questions(n: int, seed: int = 0) -> list[dict]:
    """n distinct arithmetic questions with answers: sums, differences, small products."""
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < n:
        op = rng.choice("+-*")
        a, b = (rng.randint(2, 12), rng.randint(2, 12)) if op == "*" else (rng.randint(5, 60), rng.randint(2, 40))
        if op == "-" and b > a:
            a, b = b, a
        if (a, op, b) in seen:
            continue
        seen.add((a, op, b))
        answer = a + b if op == "+" else a - b if op == "-" else a * b
        out.append(
            {
                "id": f"q{len(out):03d}",
                "prompt": f"What is {a} {op} {b}? Answer with the number only.",
                "answer": answer,
            }
        )
    return out


def cli(*args: str, log: Path, check: bool = True) -> int:
    """Run `alignline ARGS` as a user would; its output goes to the log and the last lines to the screen."""
    cmd = [sys.executable, "-m", "alignline.cli", *args]
    print(f"$ alignline {' '.join(args)}", flush=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n$ alignline {' '.join(args)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True, env=os.environ)
        fh.write(proc.stdout)
    print("".join(f"    {line}\n" for line in proc.stdout.strip().splitlines()[-6:]), end="", flush=True)
    if check and proc.returncode not in (0,):
        raise SystemExit(f"flywheel: `alignline {args[0]}` exited {proc.returncode}; see {log}")
    return proc.returncode


def send_traffic(base_url: str, traffic: list[dict], clients: int = 4) -> list[dict]:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)

    def ask(q: dict) -> dict:
        started = time.perf_counter()
        r = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": q["prompt"]}], max_tokens=MAX_TOKENS, temperature=0
        )
        meta = r.model_extra["alignline"]
        return {
            "id": q["id"],
            "request_id": r.id,
            "prompt": q["prompt"],
            "answer": q["answer"],
            "shown": r.choices[0].message.content,
            "confidence": meta["confidence"],
            "routed": meta["routed"],
            "action": meta["action"],
            "review_id": meta["review_id"],
            "seconds": time.perf_counter() - started,
        }

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(ask, traffic))


def review(db_url: str, answers: dict[str, int]) -> dict:
    """Scripted reviewers: rate each queued answer (5 right, 1 wrong); where it is wrong, write the right one."""
    from alignline.annotate.store import Store
    from alignline.rewards.registry import get_grader, grade

    store = Store(db_url)
    reviewer = store.user("reviewer") or store.add_user("reviewer", "admin", "flywheel-demo-reviewer")
    grader, counts = get_grader("math_answer"), {"reviewed": 0, "corrected": 0, "confirmed": 0}
    while (item := store.next_item(PROJECT, reviewer)) is not None:
        question = item["prompt"][-1]["content"] if isinstance(item["prompt"], list) else item["prompt"]
        truth = answers[question]
        (ok,) = grade("math_answer", grader, [question], item["responses"], {"answer": [truth]})
        right = ok is not None and ok >= 0.5
        # The correction shows the sum, as the model's own right answers do ("12 * 11 = 132"): a bare number
        # taught in round 2 would have the model guess the result in one token, without the working.
        expression = question.removeprefix("What is ").split("?")[0]
        store.add_label(
            item["id"],
            reviewer,
            None,
            scores={"quality": 5 if right else 1},
            edit=None if right else f"{expression} = {truth}",
        )
        counts["reviewed"] += 1
        counts["corrected" if not right else "confirmed"] += 1
    return counts


def recipe(out: Path, sft: Path) -> Path:
    import yaml

    data = {
        "method": "sft",
        "model": MODEL,
        "output_dir": str(out / "round2"),
        "resume": "never",
        "data": {"train": str(sft), "eval_fraction": 0.0},
        "adapter": {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
        # short: about 2.5 passes over a few dozen corrections (more overfits them and forgets the rest)
        "training": {
            "lr": 3.0e-4,
            "batch_size": 8,
            "max_steps": 12,
            "max_length": 128,
            "warmup_steps": 2,
            "seed": 0,
            "save_every": 12,
        },
    }
    return write_text(out / "recipe.yaml", yaml.safe_dump(data, sort_keys=False))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/flywheel", help="the demo directory (replaced if it holds a previous run)")
    p.add_argument("--traffic", type=int, default=60, help="user requests sent to the server")
    p.add_argument("--calibration", type=int, default=60, help="labelled prompts for the calibration check")
    p.add_argument("--heldout", type=int, default=40, help="held-out questions for the eval")
    p.add_argument("--general", type=int, default=40, help="general-knowledge questions (forgetting check, 40 at most)")
    args = p.parse_args()
    out = Path(args.out)
    if out.exists():
        if not (out / "flywheel.json").exists() and any(out.iterdir()):
            raise SystemExit(f"flywheel: {out} exists and is not a previous flywheel run; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log = out / "commands.log"
    started, times = time.time(), {}

    def lap(name: str) -> None:
        times[name] = round(time.time() - started - sum(times.values()), 1)

    print(f"== 1/7 data: {args.calibration} labelled, {args.traffic} traffic, {args.heldout} held-out questions")
    qs = questions(args.calibration + args.traffic + args.heldout)
    calib, traffic, heldout = (
        qs[: args.calibration],
        qs[args.calibration : args.calibration + args.traffic],
        qs[args.calibration + args.traffic :],
    )
    write_records(out / "calibration-set.jsonl", calib)
    write_records(out / "traffic.jsonl", traffic)
    write_records(out / "heldout.jsonl", [{**q, "category": "arithmetic"} for q in heldout])
    write_text(
        out / "heldout.yaml",
        "name: flywheel-arithmetic\nkind: accuracy\ndata: heldout.jsonl\n"
        f"grader: math_answer\nmax_new_tokens: {MAX_TOKENS}\n",
    )
    write_text(out / "gates.yaml", GATES)
    lap("data")

    print(f"== 2/7 calibration check at threshold {THRESHOLD} (Platt scaling, figures out of fold)")
    code = cli(
        "serve",
        "calibrate",
        "--model",
        MODEL,
        "--labelled",
        str(out / "calibration-set.jsonl"),
        "--grader",
        "math_answer",
        "--threshold",
        str(THRESHOLD),
        "--fit",
        "platt",
        "--max-ece",
        str(MAX_ECE),
        "--max-tokens",
        str(MAX_TOKENS),
        "--out",
        str(out / "calibration.json"),
        log=log,
        check=False,
    )
    if code != 0:
        raise SystemExit(f"flywheel: the calibration check refused routing (exit {code}); see {out}/calibration.html")
    calibration = json.loads((out / "calibration.json").read_text())["models"]["base"]
    lap("calibrate")

    print(f"== 3/7 serving {MODEL}; {args.traffic} requests from 4 clients; low confidence held for review")
    from alignline.serve.app import free_port, wait_ready

    db_url = f"sqlite:///{(out / 'annotate.db').resolve()}"
    port = free_port()
    serve_args = [
        "serve",
        "--model",
        MODEL,
        "--port",
        str(port),
        "--route-below",
        str(THRESHOLD),
        "--calibration",
        str(out / "calibration.json"),
        "--on-low",
        "hold",
        "--review-db",
        db_url,
        "--review-project",
        PROJECT,
        "--default-max-tokens",
        str(MAX_TOKENS),
        "--max-batch",
        "8",
        "--log-level",
        "warning",
    ]
    print(f"$ alignline {' '.join(serve_args)}", flush=True)
    with open(out / "server.log", "w", encoding="utf-8") as server_log:
        server = subprocess.Popen(
            [sys.executable, "-m", "alignline.cli", *serve_args],
            stdout=server_log,
            stderr=subprocess.STDOUT,
            env=os.environ,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/v1", server)
            served = send_traffic(f"http://127.0.0.1:{port}/v1", traffic)
        finally:
            server.terminate()
            server.wait(timeout=60)
    write_records(out / "served.jsonl", served)
    routed = [s for s in served if s["routed"]]
    answered = [s for s in served if not s["routed"]]
    from alignline.rewards.registry import get_grader, grade

    right = grade(
        "math_answer",
        get_grader("math_answer"),
        [s["prompt"] for s in answered],
        [s["shown"] for s in answered],
        {"answer": [s["answer"] for s in answered]},
    )
    answered_accuracy = sum(r is not None and r >= 0.5 for r in right) / len(answered) if answered else None
    print(
        f"    {len(routed)} of {len(served)} answers held for review; the {len(answered)} answered directly were "
        f"right {answered_accuracy if answered_accuracy is None else round(answered_accuracy, 3)} of the time"
    )
    lap("serve")

    print("== 4/7 scripted reviewers (Store API): rate each held answer, correct the wrong ones")
    counts = review(db_url, {q["prompt"]: q["answer"] for q in traffic})
    print(f"    {counts}")
    lap("review")

    print("== 5/7 export: SFT corrections and preference pairs with lineage to the request")
    from alignline.annotate.store import Store

    records = Store(db_url).export(PROJECT)
    sft = [r for r in records if r["kind"] == "sft"]
    prefs = [r for r in records if r["kind"] == "preference"]
    write_records(out / "corrections-sft.jsonl", sft)
    write_records(out / "corrections-preferences.jsonl", prefs)
    request_ids = {s["request_id"] for s in served}
    traced = sum(r["lineage"]["review"]["request_id"] in request_ids for r in sft + prefs)
    print(
        f"    {len(sft)} SFT corrections, {len(prefs)} preference pairs; {traced} of {len(sft) + len(prefs)} "
        "trace back to a served request"
    )
    lap("export")
    if not sft:
        raise SystemExit("flywheel: no corrections to train on (every held answer was right)")

    print(f"== 6/7 round 2: LoRA SFT of {MODEL} on the corrections")
    cli("train", str(recipe(out, out / "corrections-sft.jsonl")), "--quiet", log=log)
    lap("train")

    print("== 7/7 eval of both rounds (held-out questions, general-knowledge forgetting check) and the gate")
    for name, model in (("round1", MODEL), ("round2", str(out / "round2" / "final"))):
        cli(
            "eval",
            "--model",
            f"{name}={model}",
            "--suite",
            str(out / "heldout.yaml"),
            "--suite",
            "starter/general",
            "--limit",
            str(max(args.heldout, args.general)),
            "--out",
            str(out / f"eval-{name}"),
            log=log,
        )
    gate_code = cli(
        "gate",
        str(out / "eval-round2"),
        "--baseline",
        str(out / "eval-round1"),
        "--gates",
        str(out / "gates.yaml"),
        "--out",
        str(out / "gate"),
        log=log,
        check=False,
    )
    lap("eval_and_gate")
    metrics = {
        n: json.loads((out / f"eval-{n}" / "results.json").read_text())["metrics"][n] for n in ("round1", "round2")
    }
    gate = json.loads((out / "gate" / "gate.json").read_text())
    summary = {
        "model": MODEL,
        "threshold": THRESHOLD,
        "seconds": round(time.time() - started, 1),
        "steps_seconds": times,
        "calibration": {
            k: calibration[k] for k in ("n", "ece", "ece_raw", "accuracy", "accuracy_above", "share_routed")
        },
        "traffic": len(served),
        "routed": len(routed),
        "share_routed": len(routed) / len(served),
        "accuracy_of_answers_not_held": answered_accuracy,
        "reviews": counts,
        "sft_corrections": len(sft),
        "preference_pairs": len(prefs),
        "lineage_traced": traced,
        "metrics": {n: {k: v for k, v in m.items() if "/" in k} for n, m in metrics.items()},
        "gate": {
            "passed": gate["passed"],
            "exit": gate_code,
            "rules": [{k: r[k] for k in ("rule", "metric", "passed", "detail")} for r in gate["rules"]],
        },
    }
    write_json(out / "flywheel.json", summary)
    print(
        f"\nheld-out arithmetic accuracy: round 1 {summary['metrics']['round1']['flywheel-arithmetic/accuracy']:.3f}"
        f" -> round 2 {summary['metrics']['round2']['flywheel-arithmetic/accuracy']:.3f}"
    )
    print(
        f"general knowledge (forgetting check): round 1 {summary['metrics']['round1']['general/accuracy']:.3f}"
        f" -> round 2 {summary['metrics']['round2']['general/accuracy']:.3f}"
    )
    print(f"gate round 2 vs round 1: {'PASS' if gate['passed'] else 'FAIL'}; {out}/gate/gate.html")
    print(f"numbers: {out}/flywheel.json; total {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
