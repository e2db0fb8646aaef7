"""TRL's DPOTrainer and RewardTrainer on the benchmark's preference pairs (conversational
prompt/chosen/rejected, tokenized by TRL itself), a local model, nothing downloaded.

DPO: sigmoid loss, beta 0.1; with LoRA the reference is the base with adapters disabled, as in
alignline. Reward model: a one-label sequence classifier, Bradley-Terry loss. Batches are padded to
their longest sequence (TRL's only mode for these trainers in this version). Other settings:
`trl_common.training_args`.
"""

from __future__ import annotations

from common import Result, Spec

from contenders.trl_common import dtype, peft_config, train_and_time, training_args


def _dataset(spec: Spec):
    import json

    from datasets import Dataset

    with open(spec.data_path, encoding="utf-8") as f:
        return Dataset.from_list([json.loads(line) for line in f])


def run_dpo(spec: Spec) -> Result:
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from alignline.models.loading import load_tokenizer

    tokenizer = load_tokenizer(spec.model_dir)
    model = AutoModelForCausalLM.from_pretrained(spec.model_dir, dtype=dtype(spec))
    args = DPOConfig(beta=0.1, loss_type=["sigmoid"], **training_args(spec))
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=_dataset(spec),
        processing_class=tokenizer,
        peft_config=peft_config(spec, "CAUSAL_LM"),
    )
    return train_and_time(trainer, spec, "chosen+rejected in one padded batch; gradient checkpointing off")


def run_rm(spec: Spec) -> Result:
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from alignline.models.loading import load_tokenizer

    tokenizer = load_tokenizer(spec.model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(spec.model_dir, num_labels=1, dtype=dtype(spec))
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(**training_args(spec))
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=_dataset(spec),
        processing_class=tokenizer,
        peft_config=peft_config(spec, "SEQ_CLS"),
    )
    return train_and_time(trainer, spec, "chosen+rejected in one padded batch; gradient checkpointing off")
