"""The ceiling: a bare PyTorch loop over full rows, no trainer, no masks, no padding.

The same tokens, concatenated and cut into rows of max_length, so every slot is a real token and
attention is plain causal over the row (examples see their predecessors: fine for a speed ceiling,
not for training). Forward with labels (transformers' standard loss over all positions), backward,
AdamW step: the least work any trainer must do per token with this model, LoRA config and batch.
"""

from __future__ import annotations

import torch
from common import Result, Spec, StepClock


def rows(spec: Spec, tokenizer) -> torch.Tensor:
    from data import examples

    stream = [t for e in examples(tokenizer, spec.data_path, spec.max_length) for t in e.input_ids]
    need = (spec.warmup + spec.steps) * spec.batch_size * spec.max_length
    while len(stream) < need:  # more steps than data: go round again
        stream += stream
    return torch.tensor(stream[:need]).view(-1, spec.batch_size, spec.max_length)


def run(spec: Spec) -> Result:
    import peft
    from transformers import AutoModelForCausalLM

    from alignline.models.loading import load_tokenizer

    torch.manual_seed(spec.seed)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[spec.dtype]
    model = AutoModelForCausalLM.from_pretrained(spec.model_dir, dtype=dtype).to(spec.device)
    model.config.use_cache = False
    if spec.lora is not None:
        model = peft.get_peft_model(
            model,
            peft.LoraConfig(
                r=spec.lora["r"],
                lora_alpha=spec.lora["alpha"],
                lora_dropout=spec.lora["dropout"],
                target_modules="all-linear",
                task_type="CAUSAL_LM",
            ),
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.lr)
    batches = rows(spec, load_tokenizer(spec.model_dir)).to(spec.device)
    model.train()
    clock = StepClock()
    for ids in batches:
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if spec.device == "cuda":
            torch.cuda.synchronize()
        clock.tick()
    n = [int(b.numel()) for b in batches]
    return Result(spec.name, clock.seconds, n, n, spec.warmup, notes="full rows, plain causal attention")
