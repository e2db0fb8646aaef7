"""Environments for multi-step episodes, Gymnasium-shaped as SkyRL-Gym's are.

    observation, info = env.reset(seed=None, **task)
    observation, reward, terminated, truncated, info = env.step(action)

An observation is a list of chat messages to append to the conversation: from `reset`, the opening
messages (system, user); from `step`, e.g. one `tool` message per tool call with the tool's result, or
a user message. An action is the policy's assistant reply as text, tool calls in the chat template's
own format (`rollout/tools.py:parse_tool_calls`). `reset`'s info may carry `tools`, the OpenAI function
schemas offered, which the episode renders through the chat template.

Info keys the metrics read (`rollout/episodes.py:episode_metrics`): `correct` (bool) on the final step.
An environment that logs reward `components` in its info and pays some of them only where another is
positive may say so with a `reward_gates` attribute, `{component: the component it is gated on}` (the
calculator's shaping under `shaping_only_if_correct`): the reward-hacking monitor then leaves those out, as
it does `rewards[i].only_if`.

Environments are named in recipes by a registry name (`calculator`) or a user class by
`path/to/file.py:Class` / `package.module:Class` (loaded as graders are); `env_factory(spec, **kwargs)`
gives a callable that makes a fresh environment per episode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from alignline.errors import ConfigError
from alignline.registry import LazyTable, load_user_object

Messages = list[dict]


class Env(Protocol):
    def reset(self, seed: int | None = None, **task) -> tuple[Messages, dict]:
        """Start an episode on `task` (a record's fields): the opening messages and an info dict."""
        ...

    def step(self, action: str) -> tuple[Messages, float, bool, bool, dict]:
        """The policy's reply -> (messages to append, reward, terminated, truncated, info)."""
        ...


# The bundled environments: registry name -> "module:Class", imported on first use. Adding one is a
# line here (a class with reset and step, e.g. `rollout/envs/calculator.py`).
ENVIRONMENTS = LazyTable(
    {
        "calculator": "alignline.rollout.envs.calculator:CalculatorEnv",
    }
)


def get_env_class(spec: str) -> type:
    """A registered environment by name, or a user class by `file.py:Class` / `module:Class`."""
    if spec in ENVIRONMENTS:
        return ENVIRONMENTS[spec]
    if ":" not in spec:
        raise ConfigError(
            f"environment '{spec}': not a registered environment ({', '.join(sorted(ENVIRONMENTS))}) "
            "and not of the form file.py:Class or module:Class"
        )
    cls = load_user_object(spec, "environment", "class", known=ENVIRONMENTS)
    if not (callable(getattr(cls, "reset", None)) and callable(getattr(cls, "step", None))):
        raise ConfigError(f"environment '{spec}': {cls!r} has no reset(seed, **task) and step(action) methods")
    return cls


def env_factory(spec: str, **kwargs: Any) -> Callable[[], Env]:
    """A callable making a fresh environment `spec(**kwargs)` for each episode."""
    cls = get_env_class(spec)

    def make() -> Env:
        return cls(**kwargs)

    return make
