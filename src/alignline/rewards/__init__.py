"""Graders and rewards: one registry of functions scoring completions, for `alignline eval` and RL alike
(`rewards/registry.py`), and reward-model scoring (`rewards/reward_models.py`)."""
