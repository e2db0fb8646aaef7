"""TRL's SFTTrainer on the same tokens: a pre-tokenized in-memory dataset, a local model, nothing downloaded.

No packing by default (TRL's default: batches padded to their longest example); `trl-packed` runs
TRL's packed (BFD, padding-free) mode. Other settings: `trl_common.training_args`.
"""

from __future__ import annotations

from common import Result, Spec

from contenders.trl_common import dtype, peft_config, train_and_time, training_args


def _dataset(spec: Spec, tokenizer):
    from datasets import Dataset

    from data import examples

    exs = examples(tokenizer, spec.data_path, spec.max_length)
    # alignline's targets are pre-shifted (targets[t] is token t+1 or -100); TRL wants a mask per token.
    masks = [[0] + [int(t != -100) for t in e.targets[:-1]] for e in exs]
    return Dataset.from_dict({"input_ids": [e.input_ids for e in exs], "assistant_masks": masks})


def run(spec: Spec, packing: bool = False) -> Result:
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from alignline.models.loading import load_tokenizer

    tokenizer = load_tokenizer(spec.model_dir)
    model = AutoModelForCausalLM.from_pretrained(spec.model_dir, dtype=dtype(spec))
    args = SFTConfig(packing=packing, **training_args(spec))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=_dataset(spec, tokenizer),
        processing_class=tokenizer,
        peft_config=peft_config(spec, "CAUSAL_LM"),
    )
    mode = "packed (BFD, padding-free)" if packing else "padded to the longest in each batch"
    return train_and_time(trainer, spec, f"{mode}; gradient checkpointing off")
