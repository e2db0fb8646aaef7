"""The one decision of which fast parts a run uses, made once when the model is wrapped, and why.

The parts: the fused head (log-probs from the decoder's hidden states at the positions that carry a
target, `losses.token_logprobs`, instead of the model's full logits; for the reward model, the score
read at each sequence's last token), per-example packed attention (`packed_attention.py`), the fused
RMSNorm and SwiGLU (`fused_layers.py`) and LoRA as one autograd function (`fast_lora.py`).

- `training.fast_path: off`: all off; nothing is installed and every forward is the model's own.
- an architecture on the allow-list below (each one checked against its own transformers forward by
  `tests/models/test_architectures.py`), with only modules of torch, transformers and peft's LoRA
  inside: on, no check needed.
- anything else (another architecture, another PEFT tuner such as IA3 or LoHa, a bottleneck adapter, a
  module with hooks): a one-batch self-check against the model's own forward (log-probs and gradients
  of the trainable parameters on a small random packed batch, each example against itself run alone).
  On a mismatch the layers step aside, and if the head alone does not match either, everything does.
Prompt and prefix tuning change the inputs inside peft's own forward: always the plain path.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from alignline.models.fast.fast_lora import install_fast_lora
from alignline.models.fast.fused_layers import install_fused_layers
from alignline.models.fast.head import output_head
from alignline.models.fast.packed_attention import packed_attention_unsupported, register_packed_attention
from alignline.models.fast.patching import remove_fast_forwards
from alignline.models.fast.path import PARTS, FastPath
from alignline.models.fast.self_check import check_batch, differences, fast_outputs, mismatch, own_outputs
from alignline.models.peft_unwrap import unwrap

Mode = Literal["auto", "off"]
Kind = Literal["causal_lm", "reward"]

# Classes whose forward is exactly `models/fast/head.py`'s reading of them on top of the decoder.
EXACT_CAUSAL_LM = frozenset(
    {
        "LlamaForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen3ForCausalLM",
        "MistralForCausalLM",
        "GemmaForCausalLM",
        "Gemma2ForCausalLM",
        "Phi3ForCausalLM",
        "PhiForCausalLM",
        "CohereForCausalLM",
        "GraniteForCausalLM",
        "Olmo2ForCausalLM",
    }
)
# Classes whose reward is `score(decoder(x))` read at the last token (transformers has no Cohere or Granite one).
EXACT_REWARD = frozenset(
    {
        "LlamaForSequenceClassification",
        "Qwen2ForSequenceClassification",
        "Qwen3ForSequenceClassification",
        "MistralForSequenceClassification",
        "GemmaForSequenceClassification",
        "Gemma2ForSequenceClassification",
        "Phi3ForSequenceClassification",
        "PhiForSequenceClassification",
        "Olmo2ForSequenceClassification",
    }
)
# Modules from here are understood: the allow-listed classes are built of them, and peft's LoRA layers are
# either run exactly by `fast_lora` or left to peft's own forward (`peft.utils.other`: the wrapper of a
# trained `score` head, which calls the plain copy). Anything else calls for the self-check.
KNOWN_MODULES = ("torch.nn.", "transformers.", "peft.tuners.lora.", "peft.peft_model", "peft.utils.other")
# Self-check tolerances by dtype: far below the ~1 nat/token a missed logit scale costs, far above rounding
# (float32 heads on float64 models: about 1e-6). Half precision: at least HALF_TOLERANCE, see below.
TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-3}
HALF_TOLERANCE = 0.05


def choose_fast_path(
    model: nn.Module, mode: Mode | bool = "auto", kind: Kind = "causal_lm", virtual_tokens: bool = False
) -> FastPath:
    """Decide, install what is on (and nothing else), and return the decision. Re-deciding is safe:
    every fast forward is taken off `model` first."""
    if isinstance(mode, bool):  # YAML reads a bare off as false
        mode = "auto" if mode else "off"
    if mode not in ("auto", "off"):
        raise ValueError(f"fast path mode {mode!r}: expected 'auto' or 'off'")
    remove_fast_forwards(model)
    if mode == "off":
        return FastPath(reasons={p: "training.fast_path is off" for p in PARTS})
    base = unwrap(model)
    if virtual_tokens or prompt_learning(model):
        return FastPath(
            basis="plain", reasons={p: "prompt/prefix tuning changes the inputs inside peft's forward" for p in PARTS}
        )
    blocked = _head_blocked(base, kind)
    if blocked:
        return FastPath(basis="plain", reasons={p: blocked for p in PARTS})
    cls = type(base).__name__
    unknown = unknown_modules(model)
    allowed = cls in (EXACT_REWARD if kind == "reward" else EXACT_CAUSAL_LM)
    if allowed and not unknown:
        return _install(model, f"allow-list: {cls}", kind)
    why = (
        f"{cls} is not on the allow-list"
        if not allowed
        else f"modules outside the allow-list: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"
    )
    batch = check_batch(model, kind)
    own = own_outputs(model, kind, batch)  # the model's own forward, before anything is installed
    dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype
    tol = TOLERANCE.get(dtype)
    if tol is None:
        # Half precision: rounding alone moves the model's own forward when the same examples come packed;
        # allow four times that (a missed logit scale costs far more: 0.9 nats/token on Cohere's).
        value_noise, grad_noise, _ = differences(fast_outputs(model, kind, FastPath(), batch), own)
        tol = max(HALF_TOLERANCE, 4 * value_noise, 4 * grad_noise)
    basis = f"self-check ({why})"
    fast = _install(model, basis, kind)
    error = _checked(lambda: mismatch(fast_outputs(model, kind, fast, batch), own, tol))
    if error is None:
        return fast
    remove_fast_forwards(model)
    head_only = FastPath(fused_head=True, basis=basis)
    head_error = _checked(lambda: mismatch(fast_outputs(model, kind, head_only, batch), own, tol))
    off = {p: f"self-check failed: {error}" for p in PARTS[1:]}
    if head_error is None:
        return FastPath(fused_head=True, basis=basis, reasons={"fused_head": "self-check passed", **off})
    return FastPath(basis=f"plain; {basis}", reasons={"fused_head": f"self-check failed: {head_error}", **off})


def _checked(compare) -> str | None:
    """A fast forward that raises (an adapter that does not take our keyword, say) is a failed check."""
    try:
        return compare()
    except Exception as e:  # noqa: BLE001 - any failure of the fast path means: step aside
        return f"the fast path raised {type(e).__name__}: {e}"


def _install(model: nn.Module, basis: str, kind: Kind) -> FastPath:
    base = unwrap(model)
    head = "score at each sequence's last token" if kind == "reward" else output_head(base).describe()
    reasons = {"fused_head": head}
    not_packed = packed_attention_unsupported(base.config)
    if not_packed is None:
        register_packed_attention()
    reasons["packed_attention"] = not_packed or "on"
    layers = install_fused_layers(model)
    reasons["fused_layers"] = f"{layers} modules" if layers else "no RMSNorm or SwiGLU MLP of a known class"
    lora = install_fast_lora(model)
    reasons["fast_lora"] = f"{lora} layers" if lora else "no plain LoRA Linear layers"
    return FastPath(True, not_packed is None, layers > 0, lora > 0, basis, reasons)


def _head_blocked(base, kind: Kind) -> str | None:
    if kind == "reward":
        score = getattr(base, "score", None)
        if not isinstance(score, nn.Module) or not hasattr(base, getattr(base, "base_model_prefix", "")):
            return f"{type(base).__name__} has no `score` head on a decoder"
        return None
    head = output_head(base)
    return head if isinstance(head, str) else None


def prompt_learning(model: nn.Module) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def unknown_modules(model: nn.Module) -> list[str]:
    """Class names of modules the allow-list does not vouch for: from other libraries (other PEFT tuners,
    bitsandbytes, bottleneck adapters), or carrying someone else's hooks or a forward replaced on the
    instance (transformers' own hooks, such as the one gradient checkpointing puts on the embeddings, are
    known)."""
    found = set()
    for m in model.modules():
        cls = type(m)
        hooks = [*m._forward_hooks.values(), *m._forward_pre_hooks.values()]
        if not cls.__module__.startswith(KNOWN_MODULES):
            found.add(cls.__name__)
        elif "forward" in m.__dict__ or any(not getattr(h, "__module__", "").startswith(KNOWN_MODULES) for h in hooks):
            found.add(f"{cls.__name__} (hooked)")
    return sorted(found)


def fast_path_record(module: nn.Module) -> dict | None:
    """The decision of the first module inside `module` that made one (the policy), for run.json."""
    for m in module.modules():
        if isinstance(getattr(m, "fast_path", None), FastPath):
            return m.fast_path.record()
    return None
