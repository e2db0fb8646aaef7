"""alignline through its real entry points: a recipe, `load_config`, and the one training loop.
`method` is sft (the chat data, packed rows), dpo or rm (the preference pairs, chosen and rejected
packed together)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from common import Result, Spec


def recipe(spec: Spec, method: str = "sft") -> dict:
    adapter = None
    if spec.lora is not None:
        adapter = {
            "type": "lora",
            "r": spec.lora["r"],
            "alpha": spec.lora["alpha"],
            "dropout": spec.lora["dropout"],
            "target_modules": "all-linear",
        }
    out = {
        "method": method,
        "model": spec.model_dir,
        "data": {"train": spec.data_path},
        "adapter": adapter,
        "output_dir": str(Path(spec.work_dir) / "run"),
        "resume": "never",
        "data_gates": False,
        "training": {
            "batch_size": spec.batch_size,
            "grad_accum": 1,
            "max_length": spec.max_length,
            "packing": True,
            "max_steps": spec.warmup + spec.steps,
            "lr": spec.lr,
            "lr_scheduler": "constant",
            "seed": spec.seed,
            "log_every": 1,
            "eval_every": 10**9,
            "save_every": 10**9,
            "tensorboard": False,
            "dtype": spec.dtype,
            "threads": spec.threads,
        },
    }
    if method == "dpo":
        out["dpo"] = {"beta": 0.1, "loss_type": "sigmoid", "kl_prompts": 0}
    return out


def run(spec: Spec, method: str = "sft") -> Result:
    from alignline.config import load_config
    from alignline.evals.training import train

    path = Path(spec.work_dir) / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe(spec, method)))
    run_dir = train(load_config(str(path), []), progress=False)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if "tokens_per_s" in r]
    # The loop logs every step: tokens / tokens_per_s is the wall time of that step's logging window,
    # from the end of the previous step's record to this one (batch building included).
    seconds = [r["tokens"] / r["tokens_per_s"] for r in records]
    notes = {
        "sft": "packed rows (best-fit decreasing), per-example attention",
        "dpo": "chosen+rejected packed, per-example attention; LoRA reference = adapters off",
        "rm": "chosen+rejected packed, per-example attention",
    }[method]
    return Result(
        spec.name,
        seconds,
        [r["tokens"] for r in records],
        [round(r["tokens"] / (1 - r["padding"])) for r in records],
        spec.warmup,
        notes=notes,
    )
