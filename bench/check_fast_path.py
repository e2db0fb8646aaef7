"""Check that alignline's fast path computes what the plain path computes: log-probs and LoRA gradients.

    python bench/check_fast_path.py            # tiny random Llama, float64 (transformers still normalizes in float32)
    python bench/check_fast_path.py --real     # SmolLM2-135M, float32, one packed 8 x 512 batch (slow)

The fast path (`TokenLogprobModel(fast=True)`) runs packed rows as per-example attention and LoRA as
one autograd function; the plain path (`fast=False`) is transformers' block-diagonal-mask SDPA and
peft's own LoRA forward. Both go through the same chunked log-prob function.
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


def main() -> None:
    import peft

    from alignline.testing import random_packed_batch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", action="store_true", help="SmolLM2-135M in float32 instead of a tiny model")
    args = parser.parse_args()
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
        print(f"{'packed rows' if packed else 'whole rows'}: the fast path matches the plain path, worst "
              f"difference {worst:.2e} (tolerance {atol:g})")


if __name__ == "__main__":
    main()
