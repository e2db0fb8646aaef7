"""One thin module per method, and the one registry: a recipe's `method:` names an entry here.

Config validation reads its allowed methods from `METHODS`, so adding a method is one module and
one line below.
"""

from __future__ import annotations

from collections.abc import Callable

from alignline.config import RunConfig
from alignline.methods.base import Method
from alignline.methods.cpt import CPT
from alignline.methods.dpo import DPO
from alignline.methods.grpo import GRPO
from alignline.methods.kto import KTO
from alignline.methods.ppo import PPO
from alignline.methods.rft import EpisodeGRPO
from alignline.methods.rm import RewardModeling
from alignline.methods.sft import SFT

METHODS: dict[str, Callable[[RunConfig], Method]] = {
    "sft": lambda cfg: SFT(),
    "cpt": lambda cfg: CPT,
    "dpo": DPO,
    "rm": RewardModeling,
    "grpo": lambda cfg: EpisodeGRPO(cfg) if cfg.env.name else GRPO(cfg),  # env: multi-step episodes
    "kto": KTO,
    "ppo": PPO,
}


def get_method(cfg: RunConfig) -> Method:
    return METHODS[cfg.method](cfg)
