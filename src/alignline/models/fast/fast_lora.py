"""LoRA layers as one autograd function: `x W^T + s (x A^T) B^T`, the scale folded into the rank-r
product and the sum accumulated in place, instead of peft's separate multiply and add over the full
(tokens, out_features) output in both passes. Exact; any layer this does not cover keeps peft's forward.
"""

from __future__ import annotations

import torch
from torch import nn

from alignline.models.fast.patching import fast_forward, patch_forward


class _LoraLinear(torch.autograd.Function):
    """y = x W^T + b + s (x A^T) B^T with W, b frozen."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling):
        x2 = x.reshape(-1, x.shape[-1])
        y = torch.addmm(bias, x2, weight.T) if bias is not None else x2 @ weight.T
        h = x2 @ lora_a.T  # (N, r)
        y.addmm_(h, lora_b.T, alpha=scaling)  # accumulate in place: no second (N, out) tensor
        ctx.save_for_backward(
            x2 if ctx.needs_input_grad[3] else None, h if ctx.needs_input_grad[4] else None, weight, lora_a, lora_b
        )
        ctx.scaling, ctx.x_shape = scaling, x.shape
        return y.view(*x.shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx, dy):
        x2, h, weight, lora_a, lora_b = ctx.saved_tensors
        need_x, need_a, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[3], ctx.needs_input_grad[4]
        dy2 = dy.reshape(-1, dy.shape[-1])
        dx = da = db = None
        if need_b:
            db = (dy2.T @ h).mul_(ctx.scaling)
        if need_x or need_a:
            g = (dy2 @ lora_b).mul_(ctx.scaling)  # (N, r): the scale is applied on the small side
            if need_a:
                da = g.T @ x2
            if need_x:
                dx = (dy2 @ weight).addmm_(g, lora_a).view(ctx.x_shape)
        return dx, None, None, da, db, None


@fast_forward
def _fast_lora_forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """peft's LoRA Linear forward, through `_LoraLinear` when the layer is plain LoRA; peft's own otherwise."""
    names = self.active_adapters
    name = names[0] if len(names) == 1 else None
    base = self.base_layer
    if (
        args
        or kwargs
        or name is None
        or self.disable_adapters
        or self.merged
        or name not in self.lora_A
        or name in self.lora_variant
        or self.fan_in_fan_out
        or type(base) is not nn.Linear
        or base.weight.requires_grad
        or (base.bias is not None and base.bias.requires_grad)
        or self.lora_A[name].bias is not None
        or self.lora_B[name].bias is not None
        or (self.training and not isinstance(self.lora_dropout[name], nn.Identity))
        or not (x.dtype == base.weight.dtype == self.lora_A[name].weight.dtype)
        or torch.is_autocast_enabled(x.device.type)
    ):
        return type(self).forward(self, x, *args, **kwargs)
    return _LoraLinear.apply(
        x, base.weight, base.bias, self.lora_A[name].weight, self.lora_B[name].weight, self.scaling[name]
    )


def install_fast_lora(model: nn.Module) -> int:
    """Route peft's plain LoRA Linear layers through `_LoraLinear`; returns how many. Other layer types
    (quantized, DoRA, conv, embeddings) keep peft's forward, and each call re-checks the layer's state."""
    try:
        from peft.tuners.lora import Linear as LoraLinear
    except ImportError:
        return 0
    count = 0
    for module in model.modules():
        if type(module) is LoraLinear and patch_forward(module, _fast_lora_forward):
            count += 1
    return count
