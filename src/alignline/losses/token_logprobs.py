"""Log-probabilities of target tokens straight from hidden states, without the full logits tensor.

For a batch of 8 x 512 tokens and a 49k vocabulary the logits alone take 800 MB in fp32, and most
positions (prompts, padding) carry no loss. Here only the positions that count are passed in, and
they go through the output layer a chunk at a time:

    logp[i] = h[i] . W[t[i]] - logsumexp(h[i] W^T)

Backward needs d logp[i] / d h[i] = W[t[i]] - softmax(h[i] W^T) W. When W is frozen (LoRA, prompt
tuning) that (N, H) matrix is computed in the forward chunk loop and kept: backward is then one
multiply, with no second pass over the vocabulary. When W trains (full fine-tuning, tied embeddings)
backward recomputes each chunk's softmax from the saved logsumexp, trading one extra matmul for not
storing (N, V) probabilities. Both are checked against `torch.log_softmax` + `gather` in the tests.
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


class _TokenLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_size):
        n = hidden.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=hidden.device)
        lse_all = torch.empty(n, dtype=torch.float32, device=hidden.device)
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h_cached = torch.empty_like(hidden, dtype=torch.float32) if need_h and not need_w else None
        w32 = weight.float()
        # One (chunk, V) buffer for every chunk: fresh large allocations cost page faults on every chunk.
        buf = hidden.new_empty((min(chunk_size, n), weight.shape[0]), dtype=torch.float32)
        for s, e in _chunks(n, chunk_size):
            logits = torch.mm(hidden[s:e].float(), w32.T, out=buf[: e - s])  # (c, V)
            target_logit = logits.gather(1, targets[s:e, None]).squeeze(1)
            peak, total = _exp_shifted(logits)  # logits now hold exp(logits - peak)
            lse = peak + total.log()
            logp[s:e] = target_logit - lse
            lse_all[s:e] = lse
            if grad_h_cached is not None:
                # d logp / d h = W[t] - softmax(h W^T) W, with the softmax's 1/total applied to the (c, H) side
                grad_h = torch.mm(logits, w32, out=grad_h_cached[s:e])
                grad_h.div_(total[:, None]).neg_().add_(w32[targets[s:e]])
        ctx.chunk_size = chunk_size
        if grad_h_cached is not None:
            ctx.save_for_backward(grad_h_cached)
            ctx.mode = "cached"
        else:
            ctx.save_for_backward(hidden, weight, targets, lse_all)
            ctx.mode = "recompute"
        return logp

    @staticmethod
    def backward(ctx, grad_logp):
        grad_logp = grad_logp.float()
        if ctx.mode == "cached":
            (grad_h_cached,) = ctx.saved_tensors
            return (grad_h_cached * grad_logp[:, None]).to(grad_h_cached.dtype), None, None, None
        hidden, weight, targets, lse_all = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        w32 = weight.float()
        grad_h = torch.empty_like(hidden, dtype=torch.float32) if need_h else None
        grad_w = torch.zeros_like(w32) if need_w else None
        n = hidden.shape[0]
        buf = hidden.new_empty((min(ctx.chunk_size, n), weight.shape[0]), dtype=torch.float32)
        for s, e in _chunks(n, ctx.chunk_size):
            h = hidden[s:e].float()
            g = grad_logp[s:e]
            # d logp / d logits = onehot(t) - softmax; scaled by the upstream grad per row
            grad_logits = torch.mm(h, w32.T, out=buf[: e - s]).sub_(lse_all[s:e, None]).exp_().mul_(-g[:, None])
            grad_logits[torch.arange(e - s, device=h.device), targets[s:e]] += g
            if need_h:
                torch.mm(grad_logits, w32, out=grad_h[s:e])
            if need_w:
                grad_w.addmm_(grad_logits.T, h)
        return (grad_h.to(hidden.dtype) if need_h else None,
                grad_w.to(weight.dtype) if need_w else None, None, None)


def token_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                   chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Log-probabilities of `targets` under `softmax(hidden @ weight.T)`, chunk by chunk.

    hidden: (N, H) hidden states at the positions that count; weight: (V, H) the output layer;
    targets: (N,) token ids. Returns (N,) float32 log-probabilities.
    """
    if not (torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)):
        with torch.no_grad():
            return _TokenLogprobs.forward(_NoCtx(), hidden, weight, targets, chunk_size)
    return _TokenLogprobs.apply(hidden, weight, targets, chunk_size)


class _NoCtx:
    """Stands in for autograd's ctx when no gradient is wanted (evaluation)."""

    needs_input_grad = (False, False, False, False)

    def save_for_backward(self, *tensors):
        pass


def token_logprobs_reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The plain version, from full logits (N, V): used for prompt/prefix tuning paths and as the test oracle."""
    return torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None]).squeeze(1)
