"""Domain continued pretraining: the next-token loss on every token of plain `text` records.

The same loss as SFT (so the same `SFT` object, configured, rather than a subclass); what differs is
the data: only `text` records, and documents longer than max_length are cut into consecutive windows
rather than truncated, so no domain text is thrown away.
"""

from __future__ import annotations

from alignline.config import RunConfig
from alignline.methods.sft import SFT

CPT = SFT(name="cpt", formats=("text",), split_long=True)


def cpt_method(cfg: RunConfig) -> SFT:
    """The `cpt` entry of `methods.METHODS`: the one configured object, whatever the recipe."""
    return CPT
