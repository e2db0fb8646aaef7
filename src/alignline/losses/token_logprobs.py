"""Log-probabilities of target tokens straight from hidden states, without the full logits tensor.

For a batch of 8 x 512 tokens and a 49k vocabulary the logits alone take 800 MB in fp32, and most
positions (prompts, padding) carry no loss. Here only the positions that count are passed in, and
they go through the output layer a chunk at a time:

    z = scale * (h W^T + b)                  # (c, V) the raw logits; Cohere scales, Granite divides
    logits = cap * tanh(z / cap)             # Gemma 2's final softcapping, when `softcap` is set
    logp[i] = logits[i, t[i]] - logsumexp(logits[i])

Backward needs d logp[i] / d z[i] = (onehot(t[i]) - softmax(logits[i])) * d', where d' = 1 - tanh^2(z / cap)
(1 without softcapping), and d z / d h = scale W. When W and b are frozen (LoRA, prompt tuning) the
(N, H) gradient with respect to h is computed in the forward chunk loop and kept: backward is then one
multiply, with no second pass over the vocabulary. When W or b trains (full fine-tuning, tied
embeddings) backward recomputes each chunk's softmax from the saved logsumexp, trading one extra matmul
for not storing (N, V) probabilities. Both are checked against `torch.log_softmax` + `gather` in the tests.
"""

from __future__ import annotations

import torch

DEFAULT_CHUNK = 1024


def _chunks(n: int, size: int):
    return ((s, min(s + size, n)) for s in range(0, n, size))


def _exp_shifted(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """In place: logits -> exp(logits - rowmax). Returns (rowmax, rowsum of the exponentials).

    One read-modify-write over the (c, V) chunk; the softmax normalization is left to the caller, who
    applies it to the (c, H) product instead of the (c, V) probabilities."""
    peak = logits.amax(1, keepdim=True)
    total = logits.sub_(peak).exp_().sum(1)
    return peak.squeeze(1), total


def _logits(h, w32, b32, scale, softcap, out):
    """(c, H) -> (c, V) logits in `out`, and d logits / d z (None: the constant 1)."""
    logits = torch.addmm(b32, h, w32.T, out=out) if b32 is not None else torch.mm(h, w32.T, out=out)
    if scale != 1.0:
        logits.mul_(scale)
    if softcap is None:
        return logits, None
    squashed = logits.div_(softcap).tanh_()
    slope = 1 - squashed.square()  # d (cap tanh(z / cap)) / dz
    return squashed.mul_(softcap), slope


class _TokenLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_size, scale, softcap):
        n = hidden.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=hidden.device)
        lse_all = torch.empty(n, dtype=torch.float32, device=hidden.device)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        cached = need_h and not need_w and not need_b
        grad_h_cached = torch.empty_like(hidden, dtype=torch.float32) if cached else None
        w32 = weight.float()
        b32 = bias.float() if bias is not None else None
        # One (chunk, V) buffer for every chunk: fresh large allocations cost page faults on every chunk.
        buf = hidden.new_empty((min(chunk_size, n), weight.shape[0]), dtype=torch.float32)
        for s, e in _chunks(n, chunk_size):
            logits, slope = _logits(hidden[s:e].float(), w32, b32, scale, softcap, buf[: e - s])  # (c, V)
            t = targets[s:e, None]
            target_logit = logits.gather(1, t).squeeze(1)
            peak, total = _exp_shifted(logits)  # logits now hold exp(logits - peak)
            lse = peak + total.log()
            logp[s:e] = target_logit - lse
            lse_all[s:e] = lse
            if grad_h_cached is not None:
                # d logp / d h = scale (d'[t] W[t] - (softmax * d') W), the softmax's 1/total applied on the (c, H) side
                onehot_slope = slope.gather(1, t) if slope is not None else None
                grad_h = torch.mm(logits.mul_(slope) if slope is not None else logits, w32, out=grad_h_cached[s:e])
                grad_h.div_(total[:, None]).neg_()
                wt = w32[targets[s:e]]
                grad_h.add_(wt * onehot_slope if onehot_slope is not None else wt)
                if scale != 1.0:
                    grad_h.mul_(scale)
        ctx.chunk_size, ctx.scale, ctx.softcap = chunk_size, scale, softcap
        if grad_h_cached is not None:
            ctx.save_for_backward(grad_h_cached)
            ctx.mode = "cached"
        else:
            ctx.save_for_backward(hidden, weight, bias, targets, lse_all)
            ctx.mode = "recompute"
        return logp

    @staticmethod
    def backward(ctx, grad_logp):
        grad_logp = grad_logp.float()
        if ctx.mode == "cached":
            (grad_h_cached,) = ctx.saved_tensors
            return (grad_h_cached * grad_logp[:, None]).to(grad_h_cached.dtype), None, None, None, None, None, None
        hidden, weight, bias, targets, lse_all = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        w32 = weight.float()
        b32 = bias.float() if bias is not None else None
        grad_h = torch.empty_like(hidden, dtype=torch.float32) if need_h else None
        grad_w = torch.zeros_like(w32) if need_w else None
        grad_b = torch.zeros_like(b32) if need_b else None
        n = hidden.shape[0]
        buf = hidden.new_empty((min(ctx.chunk_size, n), weight.shape[0]), dtype=torch.float32)
        for s, e in _chunks(n, ctx.chunk_size):
            h = hidden[s:e].float()
            g = grad_logp[s:e]
            logits, slope = _logits(h, w32, b32, ctx.scale, ctx.softcap, buf[: e - s])
            # d logp / d logits = onehot(t) - softmax; scaled by the upstream grad per row
            grad_logits = logits.sub_(lse_all[s:e, None]).exp_().mul_(-g[:, None])
            grad_logits[torch.arange(e - s, device=h.device), targets[s:e]] += g
            if slope is not None:
                grad_logits.mul_(slope)
            if ctx.scale != 1.0:
                grad_logits.mul_(ctx.scale)  # now d / d (h W^T + b)
            if need_h:
                torch.mm(grad_logits, w32, out=grad_h[s:e])
            if need_w:
                grad_w.addmm_(grad_logits.T, h)
            if need_b:
                grad_b.add_(grad_logits.sum(0))
        return (
            grad_h.to(hidden.dtype) if need_h else None,
            grad_w.to(weight.dtype) if need_w else None,
            grad_b.to(bias.dtype) if need_b else None,
            None,
            None,
            None,
            None,
        )


def token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int = DEFAULT_CHUNK,
    bias: torch.Tensor | None = None,
    scale: float = 1.0,
    softcap: float | None = None,
) -> torch.Tensor:
    """Log-probabilities of `targets` under `softmax(softcap(scale * (hidden @ weight.T + bias)))`, chunk by chunk.

    hidden: (N, H) hidden states at the positions that count; weight: (V, H) the output layer; bias: (V,)
    or None; scale: a constant multiplier of the logits; softcap: `cap * tanh(logits / cap)` when set;
    targets: (N,) token ids. Returns (N,) float32 log-probabilities.
    """
    wanted = hidden.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    if not (torch.is_grad_enabled() and wanted):
        with torch.no_grad():
            return _TokenLogprobs.forward(_NoCtx(), hidden, weight, bias, targets, chunk_size, scale, softcap)
    return _TokenLogprobs.apply(hidden, weight, bias, targets, chunk_size, scale, softcap)


class _NoCtx:
    """Stands in for autograd's ctx when no gradient is wanted (evaluation)."""

    needs_input_grad = (False,) * 7

    def save_for_backward(self, *tensors):
        pass


def token_logprobs_reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The plain version, from full logits (N, V): used for prompt/prefix tuning paths and as the test oracle."""
    return torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None]).squeeze(1)
