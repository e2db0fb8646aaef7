"""GPU mode: Qwen2.5-0.5B/1.5B-shaped models with random weights, built from a config (no downloads).

Weights are random, so losses mean nothing; speed and memory do not depend on the values. The
tokenizer is the embedded SmolLM2 one (its ids fit the larger vocabulary), so the chat data is the
CPU mode's. MFU = model FLOPs per second over the GPU's dense bf16 peak, with model FLOPs per token
= 6 N + 12 L d s: N the weights of every matmul (the LM head included once), L layers, d the
attention width, s the attention context a token sees (its example's length; the row for the bare
loop). For LoRA the same 6 N is used, by convention: LoRA skips the frozen weights' gradients, about
a third of that work, so its MFU reads as "full-fine-tuning equivalent".
"""

from __future__ import annotations

from pathlib import Path

SHAPES = {
    # Qwen2.5 dimensions; q/k/v carry biases as in Qwen2.
    "0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    # Only for `--gpu --smoke` on a machine without a GPU: checks the plumbing in seconds.
    "smoke": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
        tie_word_embeddings=True,
    ),
}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}


def config(shape: str):
    from transformers import Qwen2Config

    return Qwen2Config(
        **SHAPES[shape],
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        use_sliding_window=False,
        attn_implementation="sdpa",
        use_cache=False,
    )


def make_model_dir(shape: str, directory: Path, tokenizer_dir: str, dtype: str = "bfloat16", seed: int = 0) -> Path:
    """Write a random-weight model and the tokenizer to `directory`, loadable by all three contenders."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config(shape), dtype=getattr(torch, dtype))
    model.save_pretrained(directory, safe_serialization=True)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory)
    return directory


def matmul_parameters(shape: str) -> int:
    """Weights of every matmul a token goes through (the input embedding lookup is not a matmul)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config(shape))
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def flops_per_token(shape: str, context: float) -> float:
    c = SHAPES[shape]
    head_dim = c["hidden_size"] // c["num_attention_heads"]
    attention = 12 * c["num_hidden_layers"] * c["num_attention_heads"] * head_dim * context
    return 6 * matmul_parameters(shape) + attention


def peak_tflops(gpu_name: str, override: float | None) -> float | None:
    if override:
        return override
    if "H100" in gpu_name.upper() and "PCIE" in gpu_name.upper():
        return 756.0  # the PCIe card's dense bf16 peak; the SXM part (HBM3) is 989
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu_name.upper()), None)
