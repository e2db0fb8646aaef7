"""What the TRL contenders share: LoRA config, the common trainer arguments, step timing, token counting."""

from __future__ import annotations

import time

import torch
from common import Result, Spec, StepClock


class CountingCollator:
    """Wraps a TRL collator to record each batch's non-padding tokens and token slots, in order."""

    def __init__(self, inner):
        self.inner, self.tokens, self.slots = inner, [], []

    def __call__(self, features):
        batch = self.inner(features)
        ids = batch["input_ids"]
        if "attention_mask" in batch:
            self.tokens.append(int(batch["attention_mask"].sum()))
        else:  # padding-free: one flat row of real tokens
            self.tokens.append(int(ids.numel()))
        self.slots.append(int(ids.numel()))
        return batch


def peft_config(spec: Spec, task_type: str):
    import peft

    if spec.lora is None:
        return None
    return peft.LoraConfig(
        r=spec.lora["r"],
        lora_alpha=spec.lora["alpha"],
        lora_dropout=spec.lora["dropout"],
        target_modules="all-linear",
        task_type=task_type,
    )


def training_args(spec: Spec) -> dict:
    """The same settings for every TRL config class. TRL's defaults are kept except gradient
    checkpointing (off: alignline's recipes have it off) and bf16 autocast (only on a GPU: this class of
    CPU has no bf16 units and runs it ~50x slower)."""
    gpu = spec.device == "cuda"
    return dict(
        output_dir=f"{spec.work_dir}/trl",
        per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=1,
        max_steps=spec.warmup + spec.steps,
        max_length=spec.max_length,
        learning_rate=spec.lr,
        lr_scheduler_type="constant",
        gradient_checkpointing=False,
        bf16=gpu and spec.dtype == "bfloat16",
        fp16=False,
        use_cpu=not gpu,
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=spec.seed,
        data_seed=spec.seed,
    )


def dtype(spec: Spec) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[spec.dtype]


def train_and_time(trainer, spec: Spec, notes: str) -> Result:
    """Run `trainer.train()` with a step clock and the token counter around its collator."""
    from transformers import TrainerCallback

    clock = StepClock()

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            clock.last = time.perf_counter()

        def on_step_end(self, *a, **k):
            if spec.device == "cuda":
                torch.cuda.synchronize()
            clock.tick()

    trainer.add_callback(Clock())
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    trainer.train()
    n = len(clock.seconds)
    return Result(spec.name, clock.seconds, counter.tokens[:n], counter.slots[:n], spec.warmup, notes=notes)
