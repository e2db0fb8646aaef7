"""One thin module per method; the registry maps a recipe's `method:` to a per-run instance."""

from __future__ import annotations

from alignline.config import RunConfig
from alignline.methods.cpt import CPT
from alignline.methods.dpo import DPO
from alignline.methods.rm import RewardModeling
from alignline.methods.sft import SFT

METHODS = {"sft": lambda cfg: SFT(), "cpt": lambda cfg: CPT, "dpo": DPO, "rm": RewardModeling}


def get_method(cfg: RunConfig):
    return METHODS[cfg.method](cfg)
