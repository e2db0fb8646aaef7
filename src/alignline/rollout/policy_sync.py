"""The rollout engine of an online run (GRPO, PPO, episode GRPO) and the policy sync before each step's rollouts.

`generation.backend` (and `generation.server`) pick where rollouts are sampled:

- `hf`: our Hugging Face engine around the live training model (`rollout/hf.py`). The generator *is* the
  policy, so there is nothing to sync.
- `vllm` (in process) or a server (`generation.server`): an engine loaded once per run on the base model; before
  each step's rollouts the current policy is pushed into it, the trainer's model left as it is. LoRA: the
  adapter is saved (peft's `save_pretrained`, safetensors) to `<output_dir>/rollout-adapter/step-<n>/` (only
  the latest two kept) and `engine.load_lora(path)` serves it under a new LoRA id (`generation.lora_sync:
  adapter`). On a CPU the adapter is folded in instead (`lora_sync: merged`, auto's choice there): each
  adapted layer's base weight plus the adapter's delta, with every other weight, under the base model's names,
  is written into the engine's weights, which then generate with vLLM's base kernels (its CPU LoRA kernels
  measured 3-5x slower); the trainer keeps training the adapter, only the engine's copy is merged. Full
  fine-tuning: `engine.load_weights` gets the model's parameters under Hugging Face's state-dict names (in
  process only: a server cannot be sent weights).
- `auto`: vLLM where it is installed and can serve the run (a LoRA adapter or full fine-tuning), else `hf` with
  one line saying why.

The sync's and the rollouts' wall time are kept per step (`sync_seconds`, `rollout_seconds` in metrics.jsonl),
and `record()` is what run.json says about the engine. The generator's log-probs are vLLM's raw log-probs
(`logprobs_mode: raw_logprobs`, temperature 1 whatever the sampling temperature) on an external engine and the
sampling temperature's on the HF engine: `logprobs_at_temperature_one` says which, so a loss compares them
with the trainer's (temperature 1) only where they mean the same.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from alignline.config import AdapterConfig, GenerationConfig
from alignline.errors import ConfigError
from alignline.models.loading import is_adapter_dir, resolve_model_path
from alignline.models.peft_unwrap import unwrap
from alignline.rollout.engine import load_engine, vllm_cannot_serve
from alignline.rollout.hf import HFEngine
from alignline.rollout.types import Engine

SYNC_DIR = "rollout-adapter"
KEEP_VERSIONS = 2
POLICY = "policy"
LORA_TYPES = ("lora", "qlora")
"""Adapters vLLM serves (a QLoRA adapter is a LoRA adapter on the unquantized base there)."""


@dataclass
class PolicyRollouts:
    """Where an online run samples, and the sync that keeps an external engine on the current policy."""

    backend: str
    """`hf`, `vllm` (in process) or `server`."""
    dtype: str
    engine: Engine | None = None
    """The external engine (vLLM, a server); None: an HF engine around the live model per call."""
    mode: str | None = None
    """`lora` (adapters hot-loaded), `merged` (LoRA deltas folded into the engine's weights) or `full` (weights
    reloaded); None with `hf`."""
    sync_root: Path | None = None
    versions: list[Path] = field(default_factory=list)
    lora_id: int | None = None
    """The id the engine gave the latest adapter."""
    note: str | None = None
    """Why `auto` chose `hf`, when it did."""

    @property
    def external(self) -> bool:
        """True when the generator is not the trainer's own model (vLLM, a server): then the two disagree a
        little on every token, and truncated importance sampling corrects for it."""
        return self.engine is not None

    @property
    def logprobs_at_temperature_one(self) -> bool:
        """vLLM returns raw log-probs (temperature 1 at any sampling temperature); the HF engine's are at the
        sampling temperature."""
        return self.external

    def engine_for(self, model: torch.nn.Module, tokenizer, batch_size: int) -> Engine:
        """The engine to sample this call's rollouts from (synced already by `sync` for an external one)."""
        if self.engine is not None:
            return self.engine
        return HFEngine(model, tokenizer, batch_size=max(batch_size, 1))

    def sync(self, model: torch.nn.Module, step: int) -> float:
        """Push the current policy into the external engine before step `step`'s rollouts; seconds it took
        (0 with `hf`). `model` is the training model (a peft model under LoRA)."""
        if self.engine is None:
            return 0.0
        started = time.perf_counter()
        if self.mode == "lora":
            self.lora_id = self.engine.load_lora(str(self.save_adapter(model, step)), name=POLICY)
        elif self.mode == "merged":
            self.engine.load_weights(merged_lora_weights(model))
        else:
            self.engine.load_weights(hf_named_parameters(model))
        return time.perf_counter() - started

    def save_adapter(self, model: torch.nn.Module, step: int) -> Path:
        """The adapter as it is now, in a fresh `step-<n>` directory (a re-run step after resume overwrites its
        own); older versions beyond the latest two are removed (the engine has read them)."""
        assert self.sync_root is not None
        target = self.sync_root / f"step-{step:06d}"
        if target.exists():
            shutil.rmtree(target)
        model.save_pretrained(str(target), safe_serialization=True)
        if target in self.versions:
            self.versions.remove(target)
        self.versions.append(target)
        for old in self.versions[:-KEEP_VERSIONS]:
            shutil.rmtree(old, ignore_errors=True)
        self.versions = self.versions[-KEEP_VERSIONS:]
        return target

    def record(self) -> dict:
        """run.json's `generation`: the backend and dtype the rollouts ran on, and how the policy reached them."""
        out = {"backend": self.backend, "dtype": self.dtype, "sync": self.mode or "none"}
        if self.note:
            out["note"] = self.note
        return out


def hf_named_parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) under the transformers model's own state-dict names (no peft prefix; the fast path patches
    forwards, not modules, so its names are the model's), detached."""
    for name, param in unwrap(model).named_parameters():
        yield name, param.detach()


@torch.no_grad()
def merged_lora_weights(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every weight of the model under the transformers model's own names, each LoRA-adapted layer's as its
    base weight plus the active adapters' deltas (peft's `get_delta_weight`: scale * B @ A). All of them, not
    only the adapted ones: vLLM stacks q/k/v (and gate/up) into one tensor and its in-place reload rebuilds a
    stacked tensor from the shards it is given, so an adapter on q and v alone would leave k unset. The
    trainer's modules are not touched (a new tensor per adapted layer)."""
    from peft.tuners.lora import LoraLayer  # lazy: the module is peft's, needed only with an adapter

    merged: dict[str, torch.Tensor] = {}
    for name, module in unwrap(model).named_modules():
        if isinstance(module, LoraLayer):
            weight = module.get_base_layer().weight.detach().clone()
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    weight += module.get_delta_weight(adapter).to(weight.dtype)
            merged[f"{name}.weight"] = weight
    for name, param in unwrap(model).named_parameters():
        if ".lora_" in name:
            continue
        name = name.replace(".base_layer.", ".")
        yield name, merged.pop(name, param.detach())


def lora_sync_mode(generation: GenerationConfig) -> str:
    """`lora` (hot-loaded adapters) or `merged` for a LoRA run on an external engine (`generation.lora_sync`)."""
    choice = generation.lora_sync
    if choice == "merged" and generation.server:
        raise ConfigError(
            "config key 'generation.lora_sync': merged writes weights into an in-process engine; a server "
            "(generation.server) is sent adapters: use adapter or auto"
        )
    if choice == "auto":
        choice = "adapter" if generation.server or torch.cuda.is_available() else "merged"
    return "lora" if choice == "adapter" else "merged"


def say(line: str) -> None:
    print(f"alignline: {line}", file=sys.stderr)


def rollout_engine(
    generation: GenerationConfig,
    model_spec: str,
    adapter: AdapterConfig | None,
    policy: torch.nn.Module,
    output_dir: str | Path,
    num_processes: int = 1,
    cannot_serve: Callable[[str], str | None] | None = None,
) -> PolicyRollouts:
    """The rollout engine `generation` asks for, or `hf` (with one line) where `auto` cannot use vLLM.

    `model_spec` is the recipe's `model`, `policy` the training model (its adapter, saved, is the engine's
    first LoRA). `cannot_serve(base)`: why vLLM cannot run the base model here (`rollout/engine.py`'s check
    by default; tests pass another). The external engine is loaded here; call `sync` before each step."""
    backend = generation.backend
    if backend == "hf":
        return PolicyRollouts("hf", "as trained")
    reason = refusal(generation, model_spec, adapter, num_processes)
    if reason is None and not generation.server:
        reason = (cannot_serve or base_cannot_serve)(resolve_model_path(model_spec))
    if reason is not None:
        if backend == "vllm":
            raise ConfigError(f"config key 'generation.backend': vllm cannot run these rollouts: {reason}")
        note = f"generation.backend auto: rollouts on the hf engine ({reason})"
        say(note)
        return PolicyRollouts("hf", "as trained", note=note)
    rollouts = PolicyRollouts(
        "server" if generation.server else "vllm",
        generation.dtype,
        mode=lora_sync_mode(generation) if adapter is not None else "full",
        sync_root=Path(output_dir).resolve() / SYNC_DIR,  # absolute: a server reads the same path
    )
    if rollouts.sync_root.is_dir():  # a resumed run: the killed one's versions count towards the two kept
        rollouts.versions = sorted(rollouts.sync_root.glob("step-*"))
    first = rollouts.save_adapter(policy, 0) if rollouts.mode == "lora" else None
    rollouts.engine = external_engine(generation, resolve_model_path(model_spec), first)
    rollouts.dtype = str(getattr(rollouts.engine, "dtype", generation.dtype))
    return rollouts


def base_cannot_serve(base: str) -> str | None:
    return vllm_cannot_serve(base, {})


def external_engine(generation: GenerationConfig, base: str, first_adapter: Path | None) -> Engine:
    """A vLLM engine on `base`: a server's (`generation.server`) or one in this process, LoRA enabled with the
    policy's adapter before its first step (`first_adapter`) when the run trains one."""
    if generation.server:
        return load_engine(base, backend="vllm", server=generation.server)
    adapters = {POLICY: str(first_adapter)} if first_adapter is not None else None
    return load_engine(base, backend="vllm", dtype=generation.dtype, adapters=adapters)


def refusal(generation: GenerationConfig, model: str, adapter: AdapterConfig | None, num_processes: int) -> str | None:
    """Why an external engine cannot serve this run's rollouts (before looking at vLLM itself), or None."""
    if adapter is not None and adapter.type not in LORA_TYPES:
        return f"vLLM serves LoRA adapters only, not adapter.type {adapter.type!r}"
    if adapter is None and generation.server:
        return "full fine-tuning reloads weights in process; a server gets adapters only (use a LoRA adapter)"
    if is_adapter_dir(resolve_model_path(model)):
        return f"model {model!r} is an adapter directory; give its base model"
    if num_processes > 1:
        return "one in-process engine per training process is not supported; use generation.server"
    return None
