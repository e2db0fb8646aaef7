"""Installing and removing the fast path's per-module forwards, and finding them again.

A fast forward is bound onto one module instance (`module.forward = MethodType(fn, module)`), never onto
its class, so that removing it (deleting the instance attribute) leaves the module exactly as loaded, and
another copy of the same class elsewhere (a DPO reference, a second model) is untouched. A module whose
forward someone else already replaced on the instance (an adapter library, a user's hook) is left
alone: stacking ours on top would skip theirs.
"""

from __future__ import annotations

import types
from collections.abc import Callable

from torch import nn

FAST_FORWARDS: set[Callable] = set()  # every function the fast path binds as a forward; filled at import


def fast_forward(fn: Callable) -> Callable:
    """Mark `fn` as one of the fast path's forwards (a decorator)."""
    FAST_FORWARDS.add(fn)
    return fn


def patch_forward(module: nn.Module, fn: Callable) -> bool:
    """Bind `fn` as `module`'s forward; False (and nothing done) where the instance already has its own."""
    current = module.__dict__.get("forward")
    if current is not None and getattr(current, "__func__", None) is not fn:
        return False
    module.forward = types.MethodType(fn, module)
    return True


def patched_modules(model: nn.Module) -> list[str]:
    """Names of the modules of `model` that carry one of the fast path's forwards."""
    return [
        name
        for name, m in model.named_modules()
        if getattr(m.__dict__.get("forward"), "__func__", None) in FAST_FORWARDS
    ]


def remove_fast_forwards(model: nn.Module) -> int:
    """Take every fast-path forward off `model`'s modules; returns how many were removed."""
    count = 0
    for m in model.modules():
        if getattr(m.__dict__.get("forward"), "__func__", None) in FAST_FORWARDS:
            del m.forward
            count += 1
    return count
