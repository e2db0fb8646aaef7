"""`alignline train RECIPE --dry-run`: everything a run does before its first step, and the plan, without
training or writing to the run directory.

The config is resolved, the data read, validated and tokenized, the data gates run (their report
goes to a temporary directory and is summarized), and the step plan computed with the same code the
loop uses. The model is instantiated on the `meta` device (no weights read, no memory) to count
parameters and estimate memory, so a dry run of a 7B recipe takes seconds on a laptop.

The memory estimate is rough (about +-50 %), for "will this fit": weights, gradients and AdamW
states of the trainable parameters, a frozen reference copy where the method keeps one, and
activations at about 34 bytes per token per layer per hidden unit in 16-bit (Korthikanti et al.
2022, without the attention-score term, which SDPA does not keep); gradient checkpointing keeps
only each layer's input. The loss never builds full logits (`losses/token_logprobs.py`), so no
vocabulary-sized term is added.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from alignline.config import RunConfig
from alignline.data.quality import gate_reading, gate_training_data
from alignline.methods import get_method
from alignline.models.adapters import apply_adapter, parameter_counts
from alignline.models.loading import DTYPES, load_tokenizer_for, resolve
from alignline.train.plan import step_plan

GIB = 1024**3


def meta_model(cfg: RunConfig, kind: str):
    """The recipe's model, adapters applied, on the meta device: shapes without weights."""
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
    )

    base, _ = resolve(cfg.model)
    model_config = AutoConfig.from_pretrained(base)
    auto = AutoModelForSequenceClassification if kind == "reward" else AutoModelForCausalLM
    extra = {"num_labels": 1} if kind == "reward" else {}
    with torch.device("meta"):
        model = auto.from_config(model_config, dtype=DTYPES[cfg.training.dtype], **extra)
    if cfg.adapter is not None and cfg.adapter.type == "qlora":
        return model, model_config  # 4-bit layers need bitsandbytes; count the plain model
    return apply_adapter(
        model, cfg.adapter, cfg.training, task_type="SEQ_CLS" if kind == "reward" else "CAUSAL_LM"
    ), model_config


def memory_estimate(cfg: RunConfig, counts: dict[str, int], model_config, keeps_reference: bool) -> dict[str, float]:
    """GiB per part, and the total (see the module docstring for what is counted)."""
    t = cfg.training
    width = torch.finfo(DTYPES[t.dtype]).bits // 8
    hidden = getattr(model_config, "hidden_size", 0) or 0
    layers = getattr(model_config, "num_hidden_layers", 0) or 0
    tokens = t.batch_size * t.max_length * (2 if cfg.method in ("dpo", "rm") else 1)  # pairs: both answers
    per_token_layer = hidden * (width if t.gradient_checkpointing else 34 * width / 2)
    parts = {
        "weights": counts["total"] * width,
        "gradients": counts["trainable"] * width,
        "optimizer": counts["trainable"] * 2 * width,  # AdamW: two moments, in the parameters' dtype
        "reference": counts["total"] * width if keeps_reference else 0,
        "activations": tokens * layers * per_token_layer,
    }
    gib = {k: round(v / GIB, 3) for k, v in parts.items()}
    gib["total"] = round(sum(parts.values()) / GIB, 3)
    return gib


def dry_run(cfg: RunConfig) -> dict:
    """The plan of a run, as a dict (also what `--dry-run` prints)."""
    method = get_method(cfg)
    tokenizer = load_tokenizer_for(cfg.model)
    data = method.prepare(cfg, tokenizer, progress=False)
    gates = None
    if cfg.data_gates:
        with tempfile.TemporaryDirectory(prefix="alignline-dry-run-") as tmp:
            report = gate_training_data(
                [s.path for s in cfg.data.train],
                cfg.data.eval,
                Path(tmp),
                cfg.data_gates_config,
                tokenizer=tokenizer,
                max_length=cfg.training.max_length,
                progress=False,
                **gate_reading(cfg.data),
            )
        gates = {"passed": report["passed"], "failed": [g["name"] for g in report["gates"] if not g["passed"]]}
    plan = method.plan(data.train, cfg, cfg.training.seed)
    steps = step_plan(cfg.training, plan.batches_per_epoch)
    model, model_config = meta_model(cfg, method.model_kind)
    counts = parameter_counts(model)
    keeps_reference = (
        cfg.method == "dpo"
        and cfg.adapter is None
        and not cfg.dpo.precompute_ref_logps
        and cfg.dpo.loss_type != "simpo"
    )
    return {
        "method": cfg.method,
        "model": cfg.model,
        "adapter": cfg.adapter.type if cfg.adapter else "full fine-tuning",
        "data": data.report.as_json() if hasattr(data.report, "as_json") else data.report,
        "train_units": len(data.train),
        "eval_units": len(data.eval),
        "rows": len(plan.rows),
        "batches_per_epoch": plan.batches_per_epoch,
        "total_steps": steps.total_steps,
        "warmup_steps": steps.warmup_steps,
        "micro_batches_per_step": steps.micro_per_step,
        "parameters": counts,
        "memory_gib": memory_estimate(cfg, counts, model_config, keeps_reference),
        "data_gates": gates,
        "output_dir": cfg.output_dir,
        "reward_files": reward_files(cfg),
    }


def reward_files(cfg: RunConfig) -> list[str]:
    """The user reward files (`file.py:function`) that building the method imported: a dry run rehearses the run,
    so it runs them, where `load_config` only reads them."""
    if cfg.method not in ("grpo", "ppo"):
        return []
    files = [spec.function.rpartition(":")[0] for spec in cfg.rewards]
    return list(dict.fromkeys(f for f in files if f.endswith(".py")))


def format_plan(plan: dict) -> str:
    """The plan as a few readable lines."""
    data = plan["data"]
    trained = data.get("train_target_tokens")
    tokens = data.get("train_tokens")
    lines = [
        f"method {plan['method']} on {plan['model']} ({plan['adapter']}) -> {plan['output_dir']}",
        f"data: {plan['train_units']} train and {plan['eval_units']} eval examples"
        + (f"; {trained:,} trained tokens of {tokens:,}" if trained is not None and tokens else "")
        + (f"; {data['truncated_examples']} truncated" if data.get("truncated_examples") else ""),
        f"plan: {plan['total_steps']} steps ({plan['warmup_steps']} warm-up) of {plan['micro_batches_per_step']} "
        f"micro-batch(es); {plan['batches_per_epoch']} micro-batches per epoch from {plan['rows']} rows",
        f"parameters: {plan['parameters']['trainable']:,} trainable of {plan['parameters']['total']:,}",
        "memory (rough): " + ", ".join(f"{k} {v:.2f} GiB" for k, v in plan["memory_gib"].items()),
    ]
    if plan.get("fast_path"):
        lines.append(f"fast path: {plan['fast_path']}")
    gates = plan["data_gates"]
    if gates is None:
        lines.append("data gates: off")
    else:
        lines.append("data gates: passed" if gates["passed"] else f"data gates: FAILED ({', '.join(gates['failed'])})")
    lines.extend(f"imported reward file {path} (dry run)" for path in plan.get("reward_files", []))
    lines.append("dry run: nothing trained, nothing written")
    return "\n".join(lines)
