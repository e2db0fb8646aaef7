"""One thin module per method, and the one registry: a recipe's `method:` names an entry of `METHODS`.

Each entry is `"module:object"`, imported only when a run builds its method (`get_method`), so reading
the names (`name in METHODS`) imports nothing. The object is called with the run's `RunConfig` and
returns the `Method`. Adding a method is one module and one line below (and its name in
`config.RunConfig.method`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alignline.config import RunConfig
from alignline.registry import LazyTable

if TYPE_CHECKING:  # the table itself stays free of torch: reading method names imports no method
    from alignline.methods.base import Method

METHODS = LazyTable(
    {
        "sft": "alignline.methods.sft:sft_method",
        "cpt": "alignline.methods.cpt:cpt_method",
        "dpo": "alignline.methods.dpo:DPO",
        "rm": "alignline.methods.rm:RewardModeling",
        "grpo": "alignline.methods.grpo:GRPO",
        "kto": "alignline.methods.kto:KTO",
        "ppo": "alignline.methods.ppo:PPO",
    }
)
"""method name -> "module:object", a callable `RunConfig -> Method`."""

EPISODES = LazyTable({"grpo": "alignline.methods.rft:EpisodeGRPO"})
"""What a method becomes with an `env:` section (multi-step episodes): `method: grpo` + `env:` is EpisodeGRPO."""


def get_method(cfg: RunConfig) -> Method:
    table = EPISODES if cfg.env.name and cfg.method in EPISODES else METHODS
    return table[cfg.method](cfg)
