"""GRPO: alignline's `method: grpo` against TRL's `GRPOTrainer`, same model, prompts, G, lengths and LoRA,
each contender in its own process, one after the other, in one run.

    python bench/grpo_vs_trl.py                          # embedded SmolLM2-135M, 2 prompts x G 8, 64 new tokens
    python bench/grpo_vs_trl.py --tiny                   # a tiny random Llama instead (fast, every answer full length)
    python bench/grpo_vs_trl.py --steps 4 --prompts 4 --num-generations 8 --max-new-tokens 96

Task: the arithmetic word problems of `data/demo/arith_train.jsonl` (chat prompts), rewarded by the
`math_answer` grader against the `answer` column (the same function object for both: our graders have
TRL's reward signature). Both sample at temperature 1.0, top-p 1, stop at EOS, beta 0 (no reference),
one optimization pass per batch (TRL: num_iterations 1, steps_per_generation 1), DAPO token-level loss,
group-scaled advantages, LoRA r 16 / alpha 32 / dropout 0 on all linear layers, float32, constant lr.

Measured, after one warm-up step: the wall time of an optimizer step (rollout + scoring + loss +
backward + update), and rollout throughput = tokens generated (EOS included, both counted from the
completion ids) / seconds inside the generation call (alignline: `GRPO.sample`, our decode loop;
TRL: `_generate_single_turn`, transformers' `generate`). Sampled answers differ between the two (each
its own RNG), so their lengths differ: tokens/s is the fair rate, step time is reported with the mean
completion length beside it.
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

CONTENDERS = ("alignline", "trl")
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


def run_alignline(args, model: str, data: list[dict], work: Path) -> dict:
    import yaml

    from alignline.cli import main
    from alignline.io import write_records, write_text
    from alignline.methods import grpo

    gen = {"seconds": [], "tokens": []}
    sample = grpo.GRPO.sample

    def timed_sample(self, wrapped, prompts, seed):
        started = time.perf_counter()
        groups = sample(self, wrapped, prompts, seed)
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
    assert main(["train", str(work / "recipe.yaml"), "--quiet"]) == 0
    metrics = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [m["step_seconds"] for m in metrics if "step_seconds" in m]
    return {"step_seconds": steps, "gen_seconds": gen["seconds"], "gen_tokens": gen["tokens"]}


def run_trl(args, model: str, data: list[dict], work: Path) -> dict:
    import peft
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from alignline.rewards.registry import get_grader

    gen = {"seconds": [], "tokens": []}
    steps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.started = time.perf_counter()

        def on_step_end(self, *a, **k):
            steps.append(time.perf_counter() - self.started)

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
        out = generate(*a, **k)
        gen["seconds"].append(time.perf_counter() - started)
        gen["tokens"].append(sum(len(c) for c in out[0]))
        return out

    trainer._generate_single_turn = timed_generate
    trainer.add_callback(Clock())
    torch.manual_seed(0)
    trainer.train()
    return {"step_seconds": steps, "gen_seconds": gen["seconds"], "gen_tokens": gen["tokens"]}


def run_contender(name: str, args) -> dict:
    import torch

    work = Path(tempfile.mkdtemp(prefix=f"grpo-bench-{name}-"))
    model = model_dir(args.tiny, work)
    data = records(args.prompts * (1 + args.steps))
    load = os.getloadavg()[0]
    out = (run_alignline if name == "alignline" else run_trl)(args, model, data, work)
    w = 1  # the warm-up step is left out
    step_s, gen_s, gen_tok = out["step_seconds"][w:], out["gen_seconds"][w:], out["gen_tokens"][w:]
    completions = args.prompts * args.num_generations * len(gen_tok)
    return {
        "name": name,
        **out,
        "step_seconds_mean": sum(step_s) / len(step_s),
        "gen_tokens_per_s": sum(gen_tok) / sum(gen_s),
        "gen_share": sum(gen_s) / sum(step_s),
        "mean_completion_tokens": sum(gen_tok) / max(completions, 1),
        "load_before": load,
        "load_after": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="measured steps (after one warm-up step)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random Llama instead of the embedded model")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
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
    ] + (["--tiny"] if args.tiny else [])
    runs = {}
    for name in args.contenders.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", name, *passed],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        if proc.returncode != 0:
            sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
        runs[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = runs[name]
        print(
            f"{name}: step {r['step_seconds_mean']:.2f} s, rollout {r['gen_tokens_per_s']:.1f} generated tok/s "
            f"({r['gen_share']:.0%} of the step), {r['mean_completion_tokens']:.1f} tokens per completion, "
            f"load {r['load_before']:.1f}",
            flush=True,
        )
    ours, trl = runs.get("alignline"), runs.get("trl")
    table = [
        "| contender | step time | rollout tok/s | rollout share | tokens/completion | peak RSS |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in runs.items():
        table.append(
            f"| {name} | {r['step_seconds_mean']:.2f} s | {r['gen_tokens_per_s']:.1f} | {r['gen_share']:.0%} | "
            f"{r['mean_completion_tokens']:.1f} | {r['peak_rss_mib'] / 1024:.2f} GiB |"
        )
    if ours and trl:
        table.append(
            f"| **alignline vs TRL** | **{trl['step_seconds_mean'] / ours['step_seconds_mean']:.2f}x** faster | "
            f"**{ours['gen_tokens_per_s'] / trl['gen_tokens_per_s']:.2f}x** | | | |"
        )
    print("\n".join(table))
    model = "tiny random Llama (4 layers, hidden 64)" if args.tiny else "smollm2-135m (float32)"
    settings = {
        "prompts": args.prompts,
        "num_generations": args.num_generations,
        "max_new_tokens": args.max_new_tokens,
        "steps": args.steps,
        "warmup_steps": 1,
        "model": model,
        "lora": LORA,
        "cpus": os.cpu_count(),
    }
    out = ROOT / "bench" / "results" / f"grpo-cpu{os.cpu_count()}{'-tiny' if args.tiny else ''}-{date.today()}.json"
    from alignline.io import write_json

    write_json(out, {"settings": settings, "runs": runs, "table": table})
    print(f"results: {out}")


if __name__ == "__main__":
    main()
