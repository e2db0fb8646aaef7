"""`FastPath`: which parts of the fast path a wrapped model uses, on what basis, and why.

`decision.py` makes one (once, when the model is wrapped); `forward.py` runs under one. It lives apart
from both so that the decision can run the forwards in its self-check without an import back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PARTS = ("fused_head", "packed_attention", "fused_layers", "fast_lora")


@dataclass(frozen=True)
class FastPath:
    """Which parts are on, on what basis, and a reason per part (why off, or what is on)."""

    fused_head: bool = False
    packed_attention: bool = False
    fused_layers: bool = False
    fast_lora: bool = False
    basis: str = "off"
    reasons: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict:
        """For run.json: `on` lists the parts in use."""
        out = asdict(self)
        return {"on": [p for p in PARTS if out.pop(p)], **out}
