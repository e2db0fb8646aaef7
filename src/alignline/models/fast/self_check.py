"""The fast path's one-batch self-check: a small random packed batch through the model's own forward
(each example alone) and through the fast path (packed), log-probs (or rewards) and gradients compared.

Runs in eval mode (no dropout, so both passes see the same function) with the training flags restored
after, draws its batch from its own generator (the run's random state is untouched), and takes
gradients with `torch.autograd.grad` (no `.grad` is written). To stay cheap on a large model it takes
the gradients of at most 64 trainable tensors, spread evenly from the first layer to the last, and keeps
of each its norm and an evenly strided sample of at most 4,096 entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from alignline.models.fast.forward import logprob_forward, reward_forward
from alignline.models.fast.path import FastPath

ROWS = ((10, 14), (7, 9, 8))  # example lengths of the two packed rows: both rows restart positions
SAMPLE = 4096
MAX_TENSORS = 64


@dataclass
class Outputs:
    values: torch.Tensor  # (N,) float32: log-probs of the targets, or one reward per example
    grads: dict[str, tuple[torch.Tensor, torch.Tensor]]  # name -> (norm, strided sample)


def check_batch(model: nn.Module, kind: str) -> dict:
    """Packed (B, T) input_ids / position_ids / targets / last_index, and `examples`: each one's ids alone."""
    config = model.config
    generator = torch.Generator().manual_seed(0)
    pad = getattr(config, "pad_token_id", None)
    rows, examples = [], []
    for lengths in ROWS:
        row = []
        for n in lengths:
            ids = torch.randint(0, config.vocab_size, (n,), generator=generator)
            if pad is not None:  # a pad id inside would move the classifier's own "last token"
                ids[ids == pad] = (pad + 1) % config.vocab_size
            examples.append(ids)
            row.append(ids)
        rows.append(row)
    input_ids = torch.stack([torch.cat(r) for r in rows])
    position_ids = torch.stack([torch.cat([torch.arange(len(x)) for x in r]) for r in rows])
    targets = torch.stack([torch.cat([torch.cat([x[1:], torch.tensor([-100])]) for x in r]) for r in rows])
    ends = torch.cumsum(torch.tensor([n for lengths in ROWS for n in lengths]), 0) - 1
    return {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "targets": targets,
        "last_index": ends,
        "examples": examples,
    }


def own_outputs(model: nn.Module, kind: str, batch: dict) -> Outputs:
    """The model's own forward, one example at a time: full logits -> log_softmax, or its pooled score."""
    device = _device(model)

    def run():
        values = []
        for ids in batch["examples"]:
            out = model(input_ids=ids[None].to(device), use_cache=False).logits
            if kind == "reward":
                values.append(out.reshape(-1)[:1].float())
            else:
                logp = torch.log_softmax(out[0, :-1].float(), -1)
                values.append(logp.gather(1, ids[1:, None].to(device)).squeeze(1))
        return torch.cat(values)

    return _with_grads(model, run)


def fast_outputs(model: nn.Module, kind: str, fast_path: FastPath, batch: dict) -> Outputs:
    """The same examples, packed, through `TokenLogprobModel` / `RewardModel` forwards under `fast_path`."""
    device = _device(model)
    ids, pos = batch["input_ids"].to(device), batch["position_ids"].to(device)
    if kind == "reward":
        return _with_grads(model, lambda: reward_forward(model, fast_path, ids, pos, batch["last_index"].to(device)))
    return _with_grads(model, lambda: logprob_forward(model, fast_path, ids, pos, batch["targets"].to(device)))


def differences(a: Outputs, b: Outputs) -> tuple[float, float, str]:
    """(max |difference| of the outputs, worst gradient difference relative to that parameter's largest
    entry, the parameter it is in)."""
    diff = (a.values - b.values).abs().max().item() if b.values.numel() else 0.0
    worst, where = 0.0, ""
    for name, (norm, sample) in b.grads.items():
        a_norm, a_sample = a.grads[name]
        scale = max(norm.item(), sample.abs().max().item() if sample.numel() else 0.0, 1e-12)
        err = max(abs(a_norm.item() - norm.item()), (a_sample - sample).abs().max().item() if sample.numel() else 0.0)
        if not err / scale <= worst:  # NaN included
            worst, where = err / scale, name
    return diff, worst, where


def mismatch(fast: Outputs, own: Outputs, tol: float) -> str | None:
    """None where the two agree within `tol` (outputs: absolute; gradients: relative), else why."""
    diff, grad, name = differences(fast, own)
    if not diff <= tol:
        return f"max |difference| of the outputs {diff:.2e} > {tol:.2g}"
    if not grad <= tol:
        return f"gradient of {name} off by {grad:.2e} (relative) > {tol:.2g}"
    return None


def _with_grads(model: nn.Module, run) -> Outputs:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if len(named) > MAX_TENSORS:  # full fine-tuning of a large model: not every gradient at once
        step = len(named) / MAX_TENSORS
        named = [named[int(i * step)] for i in range(MAX_TENSORS - 1)] + [named[-1]]
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.enable_grad():
            values = run()
            weights = 1 + 0.5 * torch.sin(torch.arange(values.numel(), device=values.device, dtype=values.dtype))
            grads = (
                torch.autograd.grad((values * weights).sum(), [p for _, p in named], allow_unused=True)
                if named and values.requires_grad
                else [None] * len(named)
            )
    finally:
        for m, training in modes.items():
            m.training = training
    summary = {}
    for (name, p), g in zip(named, grads):
        g = torch.zeros_like(p) if g is None else g
        flat = g.detach().reshape(-1).float()
        summary[name] = (flat.norm(), flat[:: max(1, flat.numel() // SAMPLE)].clone())
    return Outputs(values.detach().float(), summary)


def _device(model: nn.Module) -> torch.device:
    return model.get_input_embeddings().weight.device
