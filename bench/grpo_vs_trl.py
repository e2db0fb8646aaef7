"""GRPO: alignline's `method: grpo` against TRL's `GRPOTrainer`, same model, prompts, G, lengths and LoRA,
each contender in its own process, one after the other, in one run.

    python bench/grpo_vs_trl.py                          # embedded SmolLM2-135M, 2 prompts x G 8, 64 new tokens
    python bench/grpo_vs_trl.py --tiny                   # a tiny random Llama instead (fast, every answer full length)
    python bench/grpo_vs_trl.py --steps 4 --prompts 4 --num-generations 8 --max-new-tokens 96
    python bench/grpo_vs_trl.py --contenders vllm-suite  # + alignline on vLLM and TRL's vLLM colocate mode

Contenders: `alignline` (`generation.backend: hf`), `alignline-vllm` (`generation.backend: vllm`: rollouts on
vLLM in process, the policy synced as `lora_sync: auto` picks: on a CPU the LoRA deltas merged into vLLM's
weights, on a GPU the adapter hot-loaded), `alignline-vllm-adapter` (the adapter hot-loaded each step under a
new LoRA id on any device, `lora_sync: adapter`), `trl` (HF `generate`), `trl-vllm` (`use_vllm=True,
vllm_mode="colocate"`, weights synced into the in-process vLLM each step). A contender that cannot run (an
engine refusing, TRL's colocate mode on the CPU build) becomes a row with its error, not an abort.

Task: the arithmetic word problems of `data/demo/arith_train.jsonl` (chat prompts), rewarded by the
`math_answer` grader against the `answer` column (the same function object for both: our graders have
TRL's reward signature). Both sample at temperature 1.0, top-p 1, stop at EOS, beta 0 (no reference),
one optimization pass per batch (TRL: num_iterations 1, steps_per_generation 1), DAPO token-level loss,
group-scaled advantages, LoRA r 16 / alpha 32 / dropout 0 on all linear layers, float32, constant lr.

Measured, after one warm-up step: the wall time of an optimizer step (rollout + scoring + loss +
backward + update), and rollout throughput = tokens generated (EOS included, both counted from the
completion ids) / seconds inside the generation call (alignline: `GRPO.sample`, or the `rollout_seconds`
it logs per step in metrics.jsonl where it does; TRL: `_generate_single_turn`), less the policy sync
(alignline: `sync_seconds` where logged; TRL: `vllm_generation.sync_weights`), reported beside it.
Sampled answers differ between contenders (each its own RNG), so their lengths differ: tokens/s is the
fair rate, step time is reported with the mean completion length beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
sys.path.insert(0, str(ROOT / "bench"))

from common import expand_contenders, keep_log, load_average, machine_info, set_vllm_env  # noqa: E402

VLLM_SETTINGS = set_vllm_env()

CONTENDERS = ("alignline", "alignline-vllm", "alignline-vllm-adapter", "trl", "trl-vllm")
SETS = {"hf-suite": ["alignline", "trl"], "vllm-suite": list(CONTENDERS)}
LORA = {"r": 16, "alpha": 32, "dropout": 0.0}


def records(n: int) -> list[dict]:
    lines = (ROOT / "data" / "demo" / "arith_train.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:n]]


def model_dir(tiny: bool, work: Path) -> str:
    if tiny:
        from alignline.testing import save_tiny_model

        return str(save_tiny_model(work / "tiny", hidden=64, layers=4, intermediate=128))
    from alignline.models.loading import resolve_model_path

    return str(resolve_model_path("smollm2-135m"))


def run_alignline(args, model: str, data: list[dict], work: Path, backend: str = "hf", lora_sync: str = "auto") -> dict:
    import yaml

    from alignline.cli import main
    from alignline.io import write_records, write_text
    from alignline.methods import grpo

    gen = {"seconds": [], "tokens": []}
    sample = grpo.GRPO.sample

    def timed_sample(self, *a, **k):
        started = time.perf_counter()
        groups = sample(self, *a, **k)
        gen["seconds"].append(time.perf_counter() - started)
        gen["tokens"].append(sum(len(c.token_ids) for g in groups for c in g))
        return groups

    grpo.GRPO.sample = timed_sample
    write_records(work / "train.jsonl", data)
    recipe = {
        "method": "grpo",
        "model": model,
        "data": {"train": str(work / "train.jsonl")},
        "adapter": {"type": "lora", **LORA},
        "data_gates": False,
        "output_dir": str(work / "run"),
        "rewards": [{"name": "accuracy", "function": "math_answer"}],
        "generation": {"backend": backend, "dtype": args.gen_dtype, "lora_sync": lora_sync},
        "grpo": {
            "num_generations": args.num_generations,
            "max_new_tokens": args.max_new_tokens,
            "temperature": 1.0,
            "loss_type": "dapo",
            "scale_rewards": "group",
            "log_completions_every": 0,
        },
        "training": {
            "lr": 1e-5,
            "batch_size": args.prompts,
            "grad_accum": 1,
            "max_steps": 1 + args.steps,
            "max_length": 512,
            "eval_every": 1000,
            "save_every": 1000,
            "warmup_steps": 0,
            "lr_scheduler": "constant",
            "seed": 0,
        },
    }
    write_text(work / "recipe.yaml", yaml.safe_dump(recipe))
    code = main(["train", str(work / "recipe.yaml"), "--quiet"])
    if code != 0:
        raise SystemExit(f"alignline train exited {code}")
    metrics = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    per_step = [m for m in metrics if "step_seconds" in m]
    out = {
        "step_seconds": [m["step_seconds"] for m in per_step],
        "gen_seconds": gen["seconds"],
        "gen_tokens": gen["tokens"],
    }
    # once the trainer logs them (rollouts on an engine, #19), its own figures replace the timing around `sample`
    if per_step and all("rollout_seconds" in m for m in per_step):
        out["gen_seconds"] = [m["rollout_seconds"] for m in per_step]
        out["timing"] = "metrics.jsonl rollout_seconds"
    else:
        out["timing"] = "around GRPO.sample"
    if per_step and all("sync_seconds" in m for m in per_step):
        out["sync_seconds"] = [m["sync_seconds"] for m in per_step]
    mismatch = [m[k] for m in per_step for k in m if "mismatch" in k and isinstance(m[k], (int, float))]
    if mismatch:
        out["logprob_mismatch_mean"] = sum(mismatch) / len(mismatch)
    # the honest check that the rollouts ran where the recipe asked: vLLM imported in this process or not
    out["engine_used"] = "vllm" if "vllm" in sys.modules else "hf"
    return out


def run_trl(args, model: str, data: list[dict], work: Path, use_vllm: bool = False) -> dict:
    import peft
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from alignline.rewards.registry import get_grader

    gen = {"seconds": [], "tokens": []}
    sync: list[float] = []
    steps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.started = time.perf_counter()

        def on_step_end(self, *a, **k):
            steps.append(time.perf_counter() - self.started)

    vllm = {}
    if use_vllm:
        # TRL's colocate mode builds vLLM with the external launcher: one process that is rank 0 of a world of 1
        for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
            os.environ.setdefault(key, value)
        os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
        vllm = {
            "use_vllm": True,
            "vllm_mode": "colocate",
            "vllm_max_model_length": 1024,
            "vllm_gpu_memory_utilization": 0.15,  # on the CPU build: the share of RAM (the KV cache env var wins)
            "vllm_enable_sleep_mode": False,
        }
    config = GRPOConfig(
        output_dir=str(work / "trl"),
        per_device_train_batch_size=args.prompts * args.num_generations,
        num_generations=args.num_generations,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        beta=0.0,
        loss_type="dapo",
        scale_rewards="group",
        num_iterations=1,
        steps_per_generation=1,
        learning_rate=1e-5,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_steps=1 + args.steps,
        gradient_accumulation_steps=1,
        gradient_checkpointing=False,
        bf16=False,
        fp16=False,
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
        log_completions=False,
        **vllm,
    )
    lora = peft.LoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[get_grader("math_answer")],
        args=config,
        train_dataset=Dataset.from_list(data),
        peft_config=lora,
    )
    generate = trainer._generate_single_turn

    def timed_generate(*a, **k):
        started = time.perf_counter()
        before = sum(sync)
        out = generate(*a, **k)
        gen["seconds"].append(time.perf_counter() - started - (sum(sync) - before))
        gen["tokens"].append(sum(len(c) for c in out[0]))
        return out

    trainer._generate_single_turn = timed_generate
    if use_vllm:
        push = trainer.vllm_generation.sync_weights

        def timed_sync(*a, **k):
            started = time.perf_counter()
            push(*a, **k)
            sync.append(time.perf_counter() - started)

        trainer.vllm_generation.sync_weights = timed_sync
    trainer.add_callback(Clock())
    torch.manual_seed(0)
    trainer.train()
    out = {"step_seconds": steps, "gen_seconds": gen["seconds"], "gen_tokens": gen["tokens"], "timing": "wrapped"}
    if use_vllm:
        out["sync_seconds"] = sync
    out["engine_used"] = "vllm" if use_vllm and "vllm" in sys.modules else "hf"
    return out


def run_contender(name: str, args) -> dict:
    import torch

    work = Path(tempfile.mkdtemp(prefix=f"grpo-bench-{name}-"))
    model = model_dir(args.tiny, work)
    data = records(args.prompts * (1 + args.steps))
    load = load_average()
    if name.startswith("alignline"):
        backend = "vllm" if "-vllm" in name else "hf"
        out = run_alignline(args, model, data, work, backend, "adapter" if name.endswith("-adapter") else "auto")
    else:
        out = run_trl(args, model, data, work, use_vllm=name.endswith("-vllm"))
    w = 1  # the warm-up step is left out
    step_s, gen_s, gen_tok = out["step_seconds"][w:], out["gen_seconds"][w:], out["gen_tokens"][w:]
    completions = args.prompts * args.num_generations * len(gen_tok)
    sync = out.get("sync_seconds", [])[w:]
    return {
        "name": name,
        **out,
        "step_seconds_mean": sum(step_s) / len(step_s),
        "gen_tokens_per_s": sum(gen_tok) / sum(gen_s),
        "gen_share": sum(gen_s) / sum(step_s),
        "sync_seconds_mean": sum(sync) / len(sync) if sync else None,
        "mean_completion_tokens": sum(gen_tok) / max(completions, 1),
        "measured_steps": len(step_s),
        "load_before": load,
        "load_after": load_average(),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(name: str, passed: list[str], timeout: int) -> dict:
    load = load_average()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", name, *passed],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
    except subprocess.TimeoutExpired as e:
        log, last = keep_log("grpo-bench", name, e.stdout, e.stderr)
        return {
            "name": name,
            "error": f"timed out after {timeout} s; last line: {last}",
            "log": log,
            "load_before": load,
        }
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        log, last = keep_log("grpo-bench", name, proc.stdout, proc.stderr)
        return {"name": name, "error": f"exit {proc.returncode}: {last}", "log": log, "load_before": load}
    return json.loads(lines[-1])


def cell(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return text.replace("|", "/")


def make_table(runs: dict[str, dict]) -> list[str]:
    trl = runs.get("trl", {})
    table = [
        "| contender | rollouts on | step time | vs TRL (HF generate) | rollout tok/s | rollout share | sync / step "
        "| tokens/completion | peak RSS | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in runs.items():
        if "error" in r:
            table.append(f"| {name} | - | failed: {cell(r['error'])} | | | | | | | {r['load_before']:.1f} |")
            continue
        vs = f"**{trl['step_seconds_mean'] / r['step_seconds_mean']:.2f}x**" if "step_seconds_mean" in trl else "-"
        sync = f"{r['sync_seconds_mean']:.2f} s" if r.get("sync_seconds_mean") is not None else "-"
        table.append(
            f"| {name} | {r['engine_used']} | {r['step_seconds_mean']:.2f} s | {vs} | {r['gen_tokens_per_s']:.1f} | "
            f"{r['gen_share']:.0%} | {sync} | {r['mean_completion_tokens']:.1f} | {r['peak_rss_mib'] / 1024:.2f} GiB | "
            f"{r['load_before']:.1f}-{r['load_after']:.1f} |"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="measured steps (after one warm-up step)")
    parser.add_argument("--gen-dtype", default="float32", choices=["float32", "bfloat16"], help="alignline rollouts")
    parser.add_argument("--tiny", action="store_true", help="a tiny random Llama instead of the embedded model")
    parser.add_argument("--contenders", default="hf-suite", help=f"comma-separated: {', '.join(CONTENDERS)}, or a set")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per contender before it counts as failed")
    parser.add_argument("--out", default=None, help="results JSON (default bench/results/grpo-...)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_contender(args.worker, args)))
        return
    passed = [
        f"--prompts={args.prompts}",
        f"--num-generations={args.num_generations}",
        f"--max-new-tokens={args.max_new_tokens}",
        f"--steps={args.steps}",
        f"--gen-dtype={args.gen_dtype}",
    ] + (["--tiny"] if args.tiny else [])
    runs = {}
    for name in expand_contenders(args.contenders, CONTENDERS, SETS, "grpo_vs_trl.py"):
        r = runs[name] = run_worker(name, passed, args.timeout)
        if "error" in r:
            print(f"{name}: FAILED {r['error']}", flush=True)
            continue
        sync = f", sync {r['sync_seconds_mean']:.2f} s/step" if r.get("sync_seconds_mean") is not None else ""
        print(
            f"{name}: step {r['step_seconds_mean']:.2f} s, rollout {r['gen_tokens_per_s']:.1f} generated tok/s "
            f"({r['gen_share']:.0%} of the step{sync}) on {r['engine_used']}, {r['mean_completion_tokens']:.1f} "
            f"tokens per completion, load {r['load_before']:.1f}",
            flush=True,
        )
    table = make_table(runs)
    print("\n".join(table))
    model = "tiny random Llama (4 layers, hidden 64)" if args.tiny else "smollm2-135m (float32 training)"
    settings = {
        "prompts": args.prompts,
        "num_generations": args.num_generations,
        "max_new_tokens": args.max_new_tokens,
        "steps": args.steps,
        "warmup_steps": 1,
        "model": model,
        "alignline_generation_dtype": args.gen_dtype,
        "lora": LORA,
        "vllm": VLLM_SETTINGS,
        "cpus": os.cpu_count(),
    }
    default = f"grpo-cpu{os.cpu_count()}{'-tiny' if args.tiny else ''}-{date.today()}.json"
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / default
    from alignline.io import write_json

    write_json(out, {"settings": settings, "machine": machine_info(), "runs": runs, "table": table})
    print(f"results: {out}")


if __name__ == "__main__":
    main()
