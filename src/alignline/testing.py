"""Test and benchmark helpers: tiny random models and a tiny tokenizer built in-process (no downloads),
and small data writers. Tests import these from here, not from conftest."""

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
    "The quick brown fox jumps over the lazy dog.", "Summarize the text in one sentence.",
    "Answer: Paris is the capital of France.", "Label: positive", "I can't help with that.",
    "Rewrite the sentence to be formal.", "Extract the names and dates from the email.",
    "What is two plus two? Four.", "Hello, how are you today? I am fine, thank you.",
    "Northwind Robotics builds warehouse robots with lidar and safety stops.",
    "def add(a, b): return a + b", "0123456789 , . ; : ! ? ( ) [ ] { } - _ = + * / @ # % & ' \"",
]


def tiny_tokenizer(vocab_size: int = 384):
    """A byte-level BPE tokenizer trained on a few sentences, with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token=None)
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def tiny_llama(vocab_size: int, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
               intermediate: int = 64, max_positions: int = 1024, seed: int = 0, tie: bool = True):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=intermediate,
                         max_position_embeddings=max_positions, tie_word_embeddings=tie,
                         attn_implementation="sdpa", use_cache=False)
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


def write_jsonl(path: Path, records: list) -> Path:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def chat_records(n: int = 24) -> list[dict]:
    """Varied two- and four-turn chats, some with a system turn."""
    out = []
    for i in range(n):
        msgs = [{"role": "system", "content": "Be brief."}] if i % 3 == 0 else []
        msgs += [{"role": "user", "content": f"What is {i} plus {i}?"},
                 {"role": "assistant", "content": f"Answer: {2 * i}."}]
        if i % 2:
            msgs += [{"role": "user", "content": "Thanks, and double it?"},
                     {"role": "assistant", "content": f"Answer: {4 * i}."}]
        out.append({"messages": msgs})
    return out


def write_recipe(path: Path, **sections) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return path


def split_packed(batch: dict) -> list[tuple]:
    """The examples of a packed batch (from `random_packed_batch`), in row-major order: (ids, targets)
    1-D tensors each, cut where the position ids restart."""
    out = []
    for ids, pos, tgt in zip(batch["input_ids"], batch["position_ids"], batch["targets"]):
        starts = (pos == 0).nonzero().squeeze(1).tolist() + [len(pos)]
        out += [(ids[s:e], tgt[s:e]) for s, e in zip(starts, starts[1:])]
    return out


TINY_VOCAB = 96
_TINY_COMMON = dict(vocab_size=TINY_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0,
                    bos_token_id=1, eos_token_id=2, initializer_range=0.2, use_cache=False)
# name -> (config class, causal LM class, sequence classifier class or None, config overrides)
TINY_ARCHITECTURES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", "LlamaForSequenceClassification", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", "Qwen2ForSequenceClassification", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", "Qwen3ForSequenceClassification", {"head_dim": 8}),
    "mistral": ("MistralConfig", "MistralForCausalLM", "MistralForSequenceClassification",
                {"sliding_window": None, "head_dim": 8}),
    "mistral-sliding": ("MistralConfig", "MistralForCausalLM", "MistralForSequenceClassification",
                        {"sliding_window": 8, "head_dim": 8}),  # shorter than most test examples: it bites
    "gemma": ("GemmaConfig", "GemmaForCausalLM", "GemmaForSequenceClassification", {"head_dim": 8}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", "Gemma2ForSequenceClassification",
               {"head_dim": 8, "query_pre_attn_scalar": 8, "sliding_window": 8, "final_logit_softcapping": 1.5,
                "attn_logit_softcapping": 5.0, "layer_types": ["sliding_attention", "full_attention"],
                "attn_implementation": "eager"}),  # transformers runs Gemma 2 eager only (attention softcapping)
    "phi3": ("Phi3Config", "Phi3ForCausalLM", "Phi3ForSequenceClassification", {}),
    "phi": ("PhiConfig", "PhiForCausalLM", "PhiForSequenceClassification", {}),  # the head has a bias
    "cohere": ("CohereConfig", "CohereForCausalLM", None, {"logit_scale": 0.25}),
    "granite": ("GraniteConfig", "GraniteForCausalLM", None,
                {"logits_scaling": 0.25, "embedding_multiplier": 2.0, "residual_multiplier": 0.5,
                 "attention_multiplier": 0.3}),
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

        model = peft.get_peft_model(model, peft.LoraConfig(
            r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
            task_type="SEQ_CLS" if kind == "reward" else "CAUSAL_LM"))
        with torch.no_grad():  # B starts at zero: give it values so every LoRA gradient path is exercised
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.1)
    return model.train()


def save_random_adapter(base_dir: str | Path, out_dir: str | Path, kind: str = "bottleneck", seed: int = 0,
                        placement: str = "houlsby") -> Path:
    """An adapter on the model in `base_dir` with random (not identity) weights, saved to `out_dir`:
    `bottleneck` (ours) or `lora` (peft). Cheaper than training one, and far from the base."""
    import torch

    from alignline.models.bottleneck import BottleneckModel, BottleneckSpec
    from alignline.models.loading import load_model

    base = load_model(str(base_dir))
    torch.manual_seed(seed)
    if kind == "bottleneck":
        model = BottleneckModel(base.requires_grad_(False))
        model.add_adapter("default", BottleneckSpec(bottleneck_size=8, placement=placement))
        marker = ".up."
    else:
        import peft

        model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                          task_type="CAUSAL_LM"))
        marker = "lora_B"
    with torch.no_grad():
        for name, p in model.named_parameters():
            if marker in name:
                p.normal_(0, 0.5)
    model.save_pretrained(out_dir, safe_serialization=True)
    return Path(out_dir)


def spy_on_adapted_model(monkeypatch) -> dict:
    """Record the model the training loop builds (after `apply_adapter`), its base weights and its
    trainable weights at the start: `spy['model']`, `spy['frozen']`, `spy['trainable']` (clones)."""
    import alignline.train.loop as loop

    spy: dict = {}
    original = loop.apply_adapter

    def recording(*args, **kwargs):
        model = original(*args, **kwargs)
        spy["model"] = model
        spy["frozen"] = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
        spy["trainable"] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        return model

    monkeypatch.setattr(loop, "apply_adapter", recording)
    return spy


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict:
    return {"role": "system", "content": text}


def safetensors_weights(directory: str | Path) -> dict:
    """Every tensor of every `*.safetensors` file in `directory` (an adapter or a model folder)."""
    from safetensors.torch import load_file

    state = {}
    for f in sorted(Path(directory).glob("*.safetensors")):
        state.update(load_file(f))
    return state


class ScriptedEngine:
    """An engine whose answers a function of the prompt's last user text decides (deterministic numbers
    for eval tests, where a tiny random model's outputs are noise). `Engine` interface."""

    def __init__(self, answer, name: str = "scripted"):
        self.answer, self.name, self.tokenizer = answer, name, None
        self.calls = 0

    def generate(self, prompts, params):
        from alignline.rollout.types import Completion

        out = []
        for p in prompts:
            self.calls += 1
            text = p if isinstance(p, str) else p[-1]["content"]
            reply = self.answer(text)
            out.append([Completion(text=reply, token_ids=list(range(len(reply.split()))), finish_reason="stop",
                                   logprobs=[-0.1] * len(reply.split()) if params.logprobs else None)])
        return out


class ScriptedTokenEngine:
    """A fake generation engine (`rollout/types.py:Engine`) whose replies are scripted, for episode tests.

    `script(prompt, call) -> str` gives the reply to a rendered prompt in the `call`-th `generate` call
    (or `script` is a list, one list of replies per call, in prompt order). Each reply's `token_ids` are
    its canonical tokens plus the end-of-turn token (`tokenize(text)` overrides the tokens), its
    log-probs `logprob` each. Every call's prompts are kept in `calls`.
    """

    name = "scripted"

    def __init__(self, tokenizer, script, logprob: float = -0.5, tokenize=None):
        self.tokenizer, self.script, self.logprob, self.tokenize = tokenizer, script, logprob, tokenize
        self.calls: list[list[str]] = []

    def generate(self, prompts, params):
        from alignline.rollout.types import Completion, render_prompt

        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        call = len(self.calls)
        self.calls.append(texts)
        out = []
        for i, text in enumerate(texts):
            group = []
            for _ in range(params.n):
                reply = self.script[call][i] if isinstance(self.script, list) else self.script(text, call)
                ids = (self.tokenize(reply) if self.tokenize else
                       self.tokenizer(reply, add_special_tokens=False)["input_ids"]) + [self.tokenizer.eos_token_id]
                group.append(Completion(text=reply, token_ids=list(ids), finish_reason="stop",
                                        logprobs=[self.logprob] * len(ids) if params.logprobs else None,
                                        prompt_tokens=len(self.tokenizer(text, add_special_tokens=False)["input_ids"])))
            out.append(group)
        return out


def kill_when_exists(cmd: list[str], marker: Path, env: dict, timeout: float = 300) -> None:
    """Run `cmd` and SIGKILL it as soon as `marker` exists (a checkpoint directory): the crash a resume test
    recovers from. Fails if the process ends first."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not marker.exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, f"{marker} did not appear within {timeout} s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def system_part_or_skip(flag: str, available: bool, why: str) -> None:
    """Skip a test whose system part (a server, a browser) is missing, with the reason shown; in CI, where
    `.ci/run` sets `flag`=1 after installing the part, fail instead, so a broken set-up cannot pass as skips."""
    import os

    import pytest

    if available:
        return
    if os.environ.get(flag) == "1":
        raise RuntimeError(f"{flag}=1 but {why}")
    pytest.skip(why)


def postgres_url_or_skip() -> str:
    """The test PostgreSQL server's URL (`ALIGNLINE_TEST_POSTGRES`, set by `.ci/services.sh`), reachable; or skip
    (fail in CI, `ALIGNLINE_REQUIRE_POSTGRES=1`)."""
    import os

    url = os.environ.get("ALIGNLINE_TEST_POSTGRES", "")
    why = "no PostgreSQL server: set ALIGNLINE_TEST_POSTGRES (eval \"$(bash .ci/services.sh)\" starts one)"
    if url:
        try:
            import sqlalchemy

            with sqlalchemy.create_engine(url).connect():
                pass
        except Exception as error:  # noqa: BLE001 - any failure to connect is the reason to skip
            why = f"PostgreSQL at {url} not reachable: {str(error).splitlines()[0]}"
            url = ""
    system_part_or_skip("ALIGNLINE_REQUIRE_POSTGRES", bool(url), why)
    return url


def chromium_or_skip() -> str:
    """Debian's Chromium for Playwright (`ALIGNLINE_CHROMIUM` or /usr/bin/chromium) and the playwright package;
    or skip (fail in CI, `ALIGNLINE_REQUIRE_BROWSER=1`)."""
    import importlib.util
    import os
    import shutil

    path = os.environ.get("ALIGNLINE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if importlib.util.find_spec("playwright") is None:
        system_part_or_skip("ALIGNLINE_REQUIRE_BROWSER", False, "the playwright package is not installed")
    system_part_or_skip("ALIGNLINE_REQUIRE_BROWSER", os.path.exists(path),
                        f"no Chromium at {path} (apt-get install chromium)")
    return path


# Chromium flags for a closed network: without the background-networking ones it keeps dialling out.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


from collections.abc import Iterator  # noqa: E402 - kept beside the one helper that needs them
from contextlib import contextmanager  # noqa: E402


@contextmanager
def postgres_database(prefix: str = "alignline_t") -> Iterator[str]:
    """A fresh, uniquely named database on the test PostgreSQL server (`postgres_url_or_skip`), dropped after:
    tests running side by side never see each other's tables."""
    import uuid

    import sqlalchemy

    base = sqlalchemy.engine.make_url(postgres_url_or_skip())
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
