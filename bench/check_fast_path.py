"""Check that alignline's fast path computes what the plain path computes: log-probs and LoRA gradients.

    python bench/check_fast_path.py            # tiny random Llama, float64 (transformers still normalizes in float32)
    python bench/check_fast_path.py --real     # SmolLM2-135M, float32, one packed 8 x 512 batch (slow)
    python bench/check_fast_path.py --architectures   # every tiny architecture against its own forward

The fast path (`TokenLogprobModel(fast=True)`) runs packed rows as per-example attention, LoRA as one
autograd function and the log-probs from hidden states chunk by chunk; the plain path (`fast=False`,
`training.fast_path: off`) is the model's own forward (transformers' block-diagonal-mask SDPA, peft's
own LoRA forward, the full logits).
"""

from __future__ import annotations

import argparse
import copy

import torch


def compare(model, batch, dtype, atol: float) -> float:
    from alignline.models.logprob_model import TokenLogprobModel

    results = []
    for fast in (False, True):
        m = copy.deepcopy(model).to(dtype)
        m.train()
        wrapped = TokenLogprobModel(m, fast=fast)
        logp = wrapped(**batch)
        (logp * torch.linspace(-1, 1, logp.numel(), dtype=logp.dtype)).sum().backward()
        grads = {n: p.grad.detach().clone() for n, p in m.named_parameters() if p.requires_grad}
        results.append((logp.detach(), grads))
    (lp_a, g_a), (lp_b, g_b) = results
    worst = (lp_a - lp_b).abs().max().item()
    torch.testing.assert_close(lp_b, lp_a, atol=atol, rtol=atol)
    for name in g_a:
        scale = g_a[name].abs().max().clamp_min(1e-12)
        err = ((g_a[name] - g_b[name]).abs().max() / scale).item()
        worst = max(worst, err)
        assert err < atol, f"{name}: relative gradient error {err:.2e}"
    return worst


def against_own_forward(arch: str, adapter: str, packed: bool, plain_head: bool = False) -> tuple[float, float]:
    """(max |log-prob difference|, worst relative gradient error) of `TokenLogprobModel` against the
    architecture's own forward, each example alone. `plain_head`: what the fused head computed before it
    read the architecture's head (h @ W^T alone), log-probs only."""
    from alignline.losses.token_logprobs import token_logprobs
    from alignline.models.fast.forward import decoder_hidden
    from alignline.models.logprob_model import TokenLogprobModel
    from alignline.models.peft_unwrap import unwrap
    from alignline.testing import TINY_VOCAB, random_packed_batch, split_packed, tiny_architecture

    model = tiny_architecture(arch, adapter=adapter)
    batch = random_packed_batch(TINY_VOCAB, rows=2, width=40, seed=1, packed=packed)
    reference = copy.deepcopy(model)
    want = []
    for ids, targets in split_packed(batch):
        logits = reference(input_ids=ids[None], position_ids=torch.arange(len(ids))[None]).logits[0]
        keep = targets != -100
        want.append(torch.log_softmax(logits[keep], -1).gather(1, targets[keep, None]).squeeze(1))
    want = torch.cat(want)
    if plain_head:
        base = unwrap(model)
        with torch.no_grad():
            hidden = decoder_hidden(base, base.get_decoder(), batch["input_ids"], batch["position_ids"], False)
            keep = batch["targets"] != -100
            got = token_logprobs(hidden[keep], base.get_output_embeddings().weight, batch["targets"][keep])
        return (got.double() - want.detach()).abs().max().item(), float("nan")
    want.sum().backward()
    got = TokenLogprobModel(model)(**batch)
    got.sum().backward()
    worst = 0.0
    for (_name, p), q in zip(model.named_parameters(), reference.parameters()):
        if p.requires_grad:
            worst = max(worst, ((p.grad - q.grad).abs().max() / q.grad.abs().max().clamp_min(1e-30)).item())
    return (got.double() - want.detach()).abs().max().item(), worst


def architectures() -> None:
    from alignline.testing import TINY_ARCHITECTURES

    print(f"{'architecture':16} {'adapter':7} {'rows':6} {'max |dlogp|':>12} {'grad rel err':>12}")
    for arch in TINY_ARCHITECTURES:
        for adapter in ("full", "lora"):
            for packed in (True, False):
                try:
                    diff, grad = against_own_forward(arch, adapter, packed)
                except LookupError as e:
                    print(f"{arch:16} skipped: {e}")
                    break
                print(f"{arch:16} {adapter:7} {'packed' if packed else 'whole':6} {diff:12.2e} {grad:12.2e}")
    print("\nh @ W^T alone (the fused head before it read each architecture's head), packed rows, full:")
    for arch in ("cohere", "granite", "gemma2", "phi"):
        print(f"{arch:16} {against_own_forward(arch, 'full', True, plain_head=True)[0]:12.2e}")


def main() -> None:
    import peft

    from alignline.testing import random_packed_batch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", action="store_true", help="SmolLM2-135M in float32 instead of a tiny model")
    parser.add_argument(
        "--architectures",
        action="store_true",
        help="each tiny architecture of alignline.testing against its own transformers forward",
    )
    args = parser.parse_args()
    if args.architectures:
        return architectures()
    lora = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    torch.manual_seed(0)
    if args.real:
        from alignline.models.loading import load_model

        model, dtype, atol, rows, width = load_model("smollm2-135m"), torch.float32, 2e-3, 8, 512
    else:
        from alignline.testing import tiny_llama

        model, dtype, atol, rows, width = tiny_llama(128, hidden=64, layers=2), torch.float64, 1e-5, 4, 400
    model = peft.get_peft_model(model, lora)
    with torch.no_grad():  # B starts at zero; give it values so every LoRA gradient path is exercised
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    for packed in (True, False):
        batch = random_packed_batch(model.config.vocab_size, rows, width, packed=packed)
        worst = compare(model, batch, dtype, atol)
        print(
            f"{'packed rows' if packed else 'whole rows'}: the fast path matches the plain path, worst "
            f"difference {worst:.2e} (tolerance {atol:g})"
        )


if __name__ == "__main__":
    main()
