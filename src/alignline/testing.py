"""Tiny random models and a tiny tokenizer built in-process (no downloads), for tests and `bench/`.

Only the model builders live here, because `bench/` needs them from an installed package; the test-only
helpers (data writers, scripted engines, PostgreSQL and Chromium probes) are in `tests/support/`."""

from __future__ import annotations

from pathlib import Path

# ChatML with a default system turn, as SmolLM2's own template does.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Summarize the text in one sentence.",
    "Answer: Paris is the capital of France.",
    "Label: positive",
    "I can't help with that.",
    "Rewrite the sentence to be formal.",
    "Extract the names and dates from the email.",
    "What is two plus two? Four.",
    "Hello, how are you today? I am fine, thank you.",
    "Northwind Robotics builds warehouse robots with lidar and safety stops.",
    "def add(a, b): return a + b",
    "0123456789 , . ; : ! ? ( ) [ ] { } - _ = + * / @ # % & ' \"",
]


def tiny_tokenizer(vocab_size: int = 384):
    """A byte-level BPE tokenizer trained on a few sentences, with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def tiny_llama(
    vocab_size: int,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 64,
    max_positions: int = 1024,
    seed: int = 0,
    tie: bool = True,
):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tie,
        attn_implementation="sdpa",
        use_cache=False,
    )
    return LlamaForCausalLM(config)


def save_tiny_model(directory: str | Path, **kwargs) -> Path:
    """Write a tiny tokenizer and model to `directory`, loadable as `model: <directory>`."""
    directory = Path(directory)
    tok = tiny_tokenizer()
    model = tiny_llama(len(tok), **kwargs)
    model.save_pretrained(directory, safe_serialization=True)
    tok.save_pretrained(directory)
    return directory


def random_packed_batch(vocab_size: int, rows: int, width: int, seed: int = 0, packed: bool = True) -> dict:
    """(rows, width) input_ids / position_ids / targets: rows of examples of random lengths (up to 3/4 of
    a row) packed end to end, or one example per row (`packed=False`); about 70 % of targets kept."""
    import random

    import torch

    rng = random.Random(seed)
    ids, pos, tgt = [], [], []
    for _ in range(rows):
        r_ids, r_pos, r_tgt = [], [], []
        while len(r_ids) < width:
            n = min(rng.randint(3, max(4, 3 * width // 4)) if packed else width, width - len(r_ids))
            tokens = [rng.randrange(vocab_size) for _ in range(n)]
            r_ids += tokens
            r_pos += range(n)
            r_tgt += [t if rng.random() < 0.7 else -100 for t in tokens[1:]] + [-100]
        ids.append(r_ids)
        pos.append(r_pos)
        tgt.append(r_tgt)
    return {k: torch.tensor(v) for k, v in (("input_ids", ids), ("position_ids", pos), ("targets", tgt))}


def split_packed(batch: dict) -> list[tuple]:
    """The examples of a packed batch (from `random_packed_batch`), in row-major order: (ids, targets)
    1-D tensors each, cut where the position ids restart."""
    out = []
    for ids, pos, tgt in zip(batch["input_ids"], batch["position_ids"], batch["targets"]):
        starts = (pos == 0).nonzero().squeeze(1).tolist() + [len(pos)]
        out += [(ids[s:e], tgt[s:e]) for s, e in zip(starts, starts[1:])]
    return out


TINY_VOCAB = 96


_TINY_COMMON = dict(
    vocab_size=TINY_VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    initializer_range=0.2,
    use_cache=False,
)


# name -> (config class, causal LM class, sequence classifier class or None, config overrides)
TINY_ARCHITECTURES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", "LlamaForSequenceClassification", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", "Qwen2ForSequenceClassification", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", "Qwen3ForSequenceClassification", {"head_dim": 8}),
    "mistral": (
        "MistralConfig",
        "MistralForCausalLM",
        "MistralForSequenceClassification",
        {"sliding_window": None, "head_dim": 8},
    ),
    "mistral-sliding": (
        "MistralConfig",
        "MistralForCausalLM",
        "MistralForSequenceClassification",
        {"sliding_window": 8, "head_dim": 8},
    ),  # shorter than most test examples: it bites
    "gemma": ("GemmaConfig", "GemmaForCausalLM", "GemmaForSequenceClassification", {"head_dim": 8}),
    "gemma2": (
        "Gemma2Config",
        "Gemma2ForCausalLM",
        "Gemma2ForSequenceClassification",
        {
            "head_dim": 8,
            "query_pre_attn_scalar": 8,
            "sliding_window": 8,
            "final_logit_softcapping": 1.5,
            "attn_logit_softcapping": 5.0,
            "layer_types": ["sliding_attention", "full_attention"],
            "attn_implementation": "eager",
        },
    ),  # transformers runs Gemma 2 eager only (attention softcapping)
    "phi3": ("Phi3Config", "Phi3ForCausalLM", "Phi3ForSequenceClassification", {}),
    "phi": ("PhiConfig", "PhiForCausalLM", "PhiForSequenceClassification", {}),  # the head has a bias
    "cohere": ("CohereConfig", "CohereForCausalLM", None, {"logit_scale": 0.25}),
    "granite": (
        "GraniteConfig",
        "GraniteForCausalLM",
        None,
        {"logits_scaling": 0.25, "embedding_multiplier": 2.0, "residual_multiplier": 0.5, "attention_multiplier": 0.3},
    ),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", "Olmo2ForSequenceClassification", {}),
}


def tiny_architecture(arch: str, kind: str = "causal_lm", adapter: str = "full", dtype=None, **overrides):
    """A tiny random float64 model of one of `TINY_ARCHITECTURES` (hidden 32, 2 layers), in train mode.

    Weights are drawn wider than transformers' default (initializer_range 0.2) and norm weights and
    biases moved off 1 and 0, so logits are of order 1 and every gradient says something. `kind`
    "reward": the sequence classifier with one label; `adapter` "lora": peft LoRA on all linear
    layers, B drawn non-zero. Raises LookupError where this transformers lacks the class."""
    import torch
    import transformers

    config_name, causal, classifier, arch_overrides = TINY_ARCHITECTURES[arch]
    names = [config_name, classifier if kind == "reward" else causal]
    missing = [n for n in names if n is None or getattr(transformers, n, None) is None]
    if missing:
        what = f"a sequence classifier for {arch}" if None in missing else ", ".join(missing)
        raise LookupError(f"transformers {transformers.__version__} has no {what}")
    config_cls, model_cls = (getattr(transformers, n) for n in names)
    config = config_cls(**{"attn_implementation": "sdpa", **_TINY_COMMON, **arch_overrides, **overrides}, num_labels=1)
    torch.manual_seed(0)
    model = model_cls(config).to(dtype or torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.empty_like(p).uniform_(-0.3, 0.3))
    if adapter == "lora":
        import peft

        model = peft.get_peft_model(
            model,
            peft.LoraConfig(
                r=4,
                lora_alpha=8,
                lora_dropout=0.0,
                target_modules="all-linear",
                task_type="SEQ_CLS" if kind == "reward" else "CAUSAL_LM",
            ),
        )
        with torch.no_grad():  # B starts at zero: give it values so every LoRA gradient path is exercised
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.1)
    return model.train()
