"""Multi-step reinforcement fine-tuning: GRPO on whole episodes of an environment (`method: grpo` + `env:`).

Why GRPO with an `env:` section and not a method of its own: the algorithm is GRPO's (a group of samples
per prompt, group-normalized advantages, the clipped surrogate); only the rollout differs, one turn or an
episode. The peers put it the same way: SkyRL trains `algorithm.advantage_estimator: grpo` with
`environment.env_class`, verl turns on `actor_rollout_ref.rollout.multi_turn` under the same GRPO/PPO
trainer, TRL passes an environment/rollout function to its GRPOTrainer. So every `grpo.*` key means what
it means for GRPO, and `env:` adds the environment (`methods/__init__.py` picks this class when
`env.name` is set).

Per optimizer step (`collect`), for each micro-batch's tasks (prompt records; every field goes to the
environment's `reset`, as `answer` and `tools` do to the calculator; the prompt comes after `env.prefix`, and a
task's own system message, a top-level `system` included, is kept once when it repeats the prefix's, refused when
it differs):
1. `grpo.num_generations` episodes per task from the current policy (`rollout/episodes.py:run_episodes`:
   all live episodes generate together each turn; the seed comes from the step, as GRPO's, so resume
   repeats the collection exactly);
2. an episode's reward is what its environment returned over its turns, plus the `rewards:` graders, if
   any, on the final reply (TRL's signature, the task's fields as columns); every component is logged
   as `reward/<name>` (the environment's from its `components` info, and each grader's);
3. advantages normalized within each task's group (`losses/grpo.py`), the episode's advantage on each of
   its policy tokens;
4. the loss is GRPO's (`methods/online.py:policy_loss`) on the policy's tokens only (`Episode.mask`): the
   prompt, tool results and other observations are context, never targets.

Simplifications, and why:
- One advantage per episode (the outcome reward on every turn), no per-turn credit assignment: SkyRL's and
  verl's multi-turn GRPO do the same by default, and the bundled environment rewards the outcome.
- `grpo.max_new_tokens` bounds each turn; dr_grpo's constant normalizer is max_turns x max_new_tokens (the
  most policy tokens an episode can hold). `grpo.mask_truncated_completions` and `overlong_penalty` apply
  to episodes cut at `env.max_turns`.
- `completion_length` is the policy's tokens per episode, all turns together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from alignline.config import RewardSpec, RunConfig
from alignline.data.packing import collate_sequences
from alignline.data.prompts import PromptUnit
from alignline.data.templates import Example, shift_targets
from alignline.errors import ConfigError, DataError
from alignline.io import append_jsonl
from alignline.losses.grpo import group_advantages, rloo_advantages, zero_std_groups
from alignline.methods.base import Experience
from alignline.methods.monitors import Monitor
from alignline.methods.online import (
    OnlineMethod,
    PolicyModel,
    add_old_and_reference,
    generator_logps,
    policy_count,
    policy_loss,
    policy_model,
    step_seed,
    summarize_policy,
    watches_kl,
)
from alignline.rewards.combine import RewardSet
from alignline.rollout.env import env_factory
from alignline.rollout.episodes import Episode, run_episodes
from alignline.rollout.hf import HFEngine
from alignline.rollout.tools import find_tool_calls, valid_call
from alignline.rollout.types import SamplingParams

EPISODE_SUMS = ("tool_calls", "valid_tool_calls", "tool_episodes", "turns", "correct", "retokenized")


@dataclass
class EpisodeGRPO(OnlineMethod):
    _cfg: RunConfig
    name: str = "grpo"
    section = "grpo"

    def __post_init__(self):
        e = self._cfg.env
        try:
            self.make_env = env_factory(e.name, **e.options)
        except ConfigError as err:
            raise ConfigError(f"config key 'env.name': {err}") from None
        try:
            self.make_env()
        except TypeError as err:  # an option the environment's class does not take
            raise ConfigError(
                f"config key 'env.options': environment '{e.name}' does not take {sorted(e.options)} ({err})"
            ) from None
        self.prefix = [dict(m) for m in e.prefix]  # its shape: config_checks.check_env_config
        self.rewards = RewardSet(self._cfg.rewards, self._cfg.sandbox) if self._cfg.rewards else None
        self.monitor: Monitor | None = None  # built at the first scoring, once the components' names are known

    @property
    def passes(self) -> int:
        return self._cfg.grpo.num_iterations

    @property
    def budget(self) -> int:
        """The most policy tokens one episode holds (dr_grpo's constant)."""
        return self._cfg.grpo.max_new_tokens * self._cfg.env.max_turns

    # --- data --------------------------------------------------------------------------------------------
    def prepare(self, cfg, tokenizer, progress):
        data = super().prepare(cfg, tokenizer, progress)
        for unit in [*data.train, *data.eval]:  # a task the environment cannot start is a data error, before any model
            try:
                self.make_env().reset(seed=0, **self.task(unit))
            except (ValueError, KeyError, TypeError) as err:
                path, _, record = unit.origin.partition(", ")
                raise DataError(
                    path, f"environment '{cfg.env.name}' cannot start this task: {err}", record=record or None
                ) from None
        return data

    def task(self, unit: PromptUnit) -> dict:
        """What `reset` gets: the record's fields, the prompt as messages after `env.prefix`."""
        prompt = unit.prompt
        if self.prefix:
            turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            prompt = [*self.prefix, *without_repeated_system(self.prefix, turns, unit)]
        return {**unit.columns, "prompt": prompt}

    def wrap(self, model, cfg):
        return policy_model(model, cfg, keep_reference=watches_kl(cfg.grpo))

    # --- experience --------------------------------------------------------------------------------------
    def rollout(
        self, wrapped: PolicyModel, tasks: list[dict], seed: int, n: int, temperature: float, sums: dict | None = None
    ) -> list[Episode]:
        """`n` episodes per task (task i's are episodes i*n .. i*n + n - 1), in eval mode (no dropout). With
        `sums` (training rollouts): on the rollout engine, timed; without (evaluation, after a step, when an
        external engine still holds the policy before it): on the live model's HF engine."""
        g = self._cfg.grpo
        params = SamplingParams(
            max_new_tokens=g.max_new_tokens,
            temperature=temperature,
            top_p=g.top_p,
            top_k=g.top_k,
            n=n,
            seed=seed,
            logprobs=True,
        )

        def episodes(engine) -> list[Episode]:
            return run_episodes(engine, self.make_env, tasks, params, self._cfg.env.max_turns)

        model, size = wrapped.model, len(tasks) * n
        if sums is not None:
            return self.timed_rollout(sums, episodes, model, size)
        was_training = model.training
        model.eval()
        try:
            return episodes(HFEngine(model, self.tokenizer, batch_size=max(size, 1)))
        finally:
            model.train(was_training)

    def score(self, episodes: list[Episode]) -> tuple[torch.Tensor, dict[str, list]]:
        """Each episode's reward (S,) and the components, in episode order."""
        g = self._cfg.grpo
        total = torch.tensor([e.reward for e in episodes], dtype=torch.float32)
        found = [last_components(e) for e in episodes]
        names = list(dict.fromkeys(k for comps in found for k in comps))
        components: dict[str, list] = {n: [comps.get(n) for comps in found] for n in names}
        unpaid: set[str] = set()  # the gated rewards' raw scores: logged, not paid, so no hacking alarm on them
        if self.rewards is not None:
            keys = sorted({k for e in episodes for k in e.task if k != "prompt"})
            scores = self.rewards.score(
                [e.task["prompt"] for e in episodes],
                [final_reply(e) for e in episodes],
                {k: [e.task.get(k) for e in episodes] for k in keys},
            )
            total = total + scores.total
            components.update(scores.logged())
            unpaid = {f"{name}_raw" for name in scores.raw}
        if g.overlong_penalty:
            total = total - g.overlong_penalty * torch.tensor([e.truncated for e in episodes]).float()
        if self.monitor is None:
            specs = {spec.name: spec for spec in self._cfg.rewards or []}  # the graders' own gates (only_if) kept
            env_gates = getattr(self.make_env(), "reward_gates", {})  # the environment's own (rollout/env.py)
            paid = [
                specs.get(n) or RewardSpec(name=n, function="env", only_if=env_gates.get(n))
                for n in components
                if n not in unpaid
            ]
            self.monitor = Monitor(paid, g)
        return total, components

    def collect(self, wrapped, units, rows, step, device) -> Experience:
        g, seed, size = self._cfg.grpo, self._cfg.training.seed, self._cfg.grpo.num_generations
        micro_batches, sums, samples = [], {}, []
        log_now = g.log_completions_every and (step + 1) % g.log_completions_every == 0
        self.sync_policy(wrapped.model, step, sums)
        for k, row_list in enumerate(rows):
            tasks = [self.task(units[i]) for row in row_list for i in row]
            episodes = self.rollout(wrapped, tasks, step_seed(seed, step, k), size, g.temperature, sums)
            rewards, components = self.score(episodes)
            for attempt in range(1, g.resample_zero_std + 1):  # re-run groups that carry no signal
                flat = zero_std_groups(rewards, size)
                if not flat.any():
                    break
                idx = flat.nonzero().squeeze(1).tolist()
                again = self.rollout(
                    wrapped, [tasks[i] for i in idx], step_seed(seed, step, k, attempt), size, g.temperature, sums
                )
                for j, i in enumerate(idx):
                    for e in again[j * size : (j + 1) * size]:
                        e.group = i
                    episodes[i * size : (i + 1) * size] = again[j * size : (j + 1) * size]
                rewards, components = self.score(episodes)
            micro_batches.append(self.experience_batch(wrapped, episodes, rewards, device))
            add_episode_metrics(sums, rewards, components, episodes, size)
            if log_now:
                samples += [
                    {
                        "step": step + 1,
                        "prompt": e.task["prompt"],
                        "completion": final_reply(e),
                        "episode": e.messages[len(e.messages) - episode_length(e) :],
                        "reward": float(rewards[s]),
                        **{f"reward/{n}": v[s] for n, v in components.items()},
                    }
                    for s, e in enumerate(episodes)
                ]
        return Experience(micro_batches, sums, samples)

    def experience_batch(
        self, wrapped, episodes: list[Episode], rewards: torch.Tensor, device
    ) -> dict[str, torch.Tensor]:
        """Whole episodes packed into rows; the targets are the policy's tokens only (`Episode.mask`)."""
        g, size = self._cfg.grpo, self._cfg.grpo.num_generations
        advantages = (
            rloo_advantages(rewards, size)
            if g.advantage == "rloo"
            else group_advantages(rewards, size, g.scale_rewards)
        )
        weight = torch.ones(len(rewards))
        if g.drop_zero_std_groups:
            weight *= (~zero_std_groups(rewards, size)).repeat_interleave(size).float()
        if g.mask_truncated_completions:
            weight *= torch.tensor([not e.truncated for e in episodes]).float()
        sequences, gen = [], []
        comparable = self.comparable_logprobs(g.temperature)
        for e in episodes:
            sequences.append(Example(list(e.input_ids), shift_targets(e.input_ids, e.mask)))
            policy = sum(e.mask[1:])  # position 0 is never a target (and never the policy's: the prompt)
            gen.append(
                [lp for lp, m in zip(e.logprobs[1:], e.mask[1:]) if m]
                if e.logprobs is not None and comparable
                else [math.nan] * policy
            )
        batch = collate_sequences(sequences, max(len(s.input_ids) for s in sequences), self.tokenizer.pad_token_id)
        batch.update(
            advantages=advantages.float(),
            seq_weight=weight,
            gen_logps=generator_logps(batch, gen),
            completion_tokens=torch.tensor([sum(e.mask) for e in episodes]),
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        return add_old_and_reference(wrapped, batch, self.passes, watches_kl(self._cfg.grpo))

    # --- loss ----------------------------------------------------------------------------------------------
    def count(self, batch):
        return policy_count(self._cfg.grpo, batch, self.budget)

    def loss(self, model, batch, normalizer):
        g = self._cfg.grpo
        cap = self.importance_sampling(g.importance_sampling_cap, g.importance_sampling)
        return policy_loss(g, model, batch, normalizer, self.budget, tis_cap=cap)

    def summarize(self, sums):
        return {**summarize_policy(sums), **summarize_episodes(sums)}

    # --- monitors and evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def extra_eval(self, wrapped, data, pad_id, device, tokenizer, step):
        """Greedy episodes on held-out tasks (`grpo.eval_prompts`): reward, components, tool use, accuracy;
        each task's outcome and episode appended to `eval_episodes.jsonl` under the evaluated step."""
        units = data.eval[: self._cfg.grpo.eval_prompts]
        if not units:
            return {}
        log = Path(self._cfg.output_dir) / EVAL_EPISODES
        return evaluate_episodes(self, wrapped, units, log_to=log, step=step)


EVAL_EPISODES = "eval_episodes.jsonl"
"""Per held-out task and evaluation: `step`, `task` (its index), `prompt`, `reward`, the 0/1 outcomes of
`episode_outcomes` and the `episode` (the messages after the prompt). scripts/rft_report.py pairs the first
and the last evaluation task by task for its intervals; a reader sees which tasks RL turned, either way."""


def evaluate_episodes(
    method: EpisodeGRPO, wrapped, units: list[PromptUnit], log_to: Path | None = None, step: int = 0
) -> dict[str, float]:
    """One greedy episode per task: `reward`, `reward/<name>`, `tool_call_rate` (share of episodes with a
    correct tool call), `tool_call_valid_rate`, `tool_calls_per_episode`, `episode_turns`, `correct_rate`.
    With `log_to`, each task's record (`EVAL_EPISODES`) is appended there under `step`."""
    episodes = method.rollout(wrapped, [method.task(u) for u in units], seed=0, n=1, temperature=0.0)
    rewards, components = method.score(episodes)
    if log_to is not None:
        outcomes = episode_outcomes(episodes, components)
        records = [
            {
                "step": step,
                "task": i,
                "prompt": u.prompt,
                "reward": float(rewards[i]),
                **{k: v[i] for k, v in outcomes.items()},
                "episode": e.messages[e.policy_turns[0] :] if e.policy_turns else [],
            }
            for i, (u, e) in enumerate(zip(units, episodes))
        ]
        append_jsonl(log_to, records)
    sums: dict[str, float] = {}
    add_episode_metrics(sums, rewards, components, episodes, 1)
    summary = summarize_policy(sums)
    out = {"reward": summary["reward"], **{k: v for k, v in summary.items() if k.startswith("reward/")}}
    out.update(summarize_episodes(sums))
    return out


def episode_outcomes(episodes: list[Episode], components: dict[str, list]) -> dict[str, list[float]]:
    """Per episode, each 0/1: `correct` (the `correct` component positive), `correct_call` (a correct tool
    call), `valid_calls` (every attempted call valid; 1 where none was attempted: no invalid call)."""
    counts = [tool_call_counts(e) for e in episodes]
    correct = components.get("correct", [0.0] * len(episodes))
    return {
        "correct": [float((v or 0) > 0) for v in correct],
        "correct_call": [float(good > 0) for _, good in counts],
        "valid_calls": [float(good == attempted) for attempted, good in counts],
    }


def last_components(episode: Episode) -> dict[str, float]:
    """The environment's `components` info of the episode's last step that has one ({} if none does)."""
    for info in reversed(episode.infos):
        if isinstance(info.get("components"), dict):
            return {str(k): float(v) for k, v in info["components"].items()}
    return {}


def final_reply(episode: Episode) -> str:
    return episode.messages[episode.policy_turns[-1]]["content"] if episode.policy_turns else ""


def episode_length(episode: Episode) -> int:
    """Messages after the opening ones (the policy's turns and the observations)."""
    return len(episode.messages) - episode.policy_turns[0] if episode.policy_turns else 0


def tool_call_counts(episode: Episode) -> tuple[int, int]:
    """(attempted, correct) tool calls: attempted counts malformed `<tool_call>` blocks too; correct ones are
    a known tool with its required arguments whose result is not an `error: ...` line."""
    attempted = correct = 0
    for turn, info in zip(episode.policy_turns, episode.infos):
        calls, errors = find_tool_calls(episode.messages[turn]["content"])
        attempted += len(calls) + len(errors)
        results = info.get("tool_results") or [None] * len(calls)
        correct += sum(valid_call(c, episode.tools) and not str(r).startswith("error") for c, r in zip(calls, results))
    return attempted, correct


def add_episode_metrics(
    sums: dict, rewards: torch.Tensor, components: dict, episodes: list[Episode], group_size: int
) -> None:
    """Sums over one micro-batch's episodes, in the keys `summarize_policy` reads plus `EPISODE_SUMS`."""

    def add(key, value):
        sums[key] = sums.get(key, 0.0) + float(value)

    add("completions", rewards.numel())
    add("reward_sum", rewards.sum())
    add("reward_sq_sum", (rewards**2).sum())
    add("length_sum", sum(sum(e.mask) for e in episodes))
    add("truncated", sum(e.truncated for e in episodes))
    add("groups", rewards.numel() // group_size)
    add("zero_std_groups", zero_std_groups(rewards, group_size).sum() if group_size > 1 else 0)
    for name, values in components.items():
        present = [v for v in values if v is not None]
        add(f"reward/{name}_sum", sum(present))
        add(f"reward/{name}_n", len(present))
    for e in episodes:
        attempted, correct = tool_call_counts(e)
        add("tool_calls", attempted)
        add("valid_tool_calls", correct)
        add("tool_episodes", correct > 0)
        add("turns", len(e.policy_turns))
        add("correct", bool(e.infos and e.infos[-1].get("correct")))
        add("retokenized", e.retokenized)


def summarize_episodes(sums: dict) -> dict[str, float]:
    """Episode monitors: `tool_calls_per_episode` (attempted), `tool_call_valid_rate` (correct calls over
    attempted; 0 when none was attempted), `tool_call_rate` (episodes with a correct call), `episode_turns`,
    `correct_rate` (the environment's `correct` on the final step), `retokenized_turns` (per episode)."""
    n = sums.get("completions", 0.0)
    if not n or "turns" not in sums:
        return {}
    return {
        "tool_calls_per_episode": sums["tool_calls"] / n,
        "tool_call_valid_rate": sums["valid_tool_calls"] / max(sums["tool_calls"], 1.0),
        "tool_call_rate": sums["tool_episodes"] / n,
        "episode_turns": sums["turns"] / n,
        "correct_rate": sums["correct"] / n,
        "retokenized_turns": sums["retokenized"] / n,
    }


def without_repeated_system(prefix: list[dict], turns: list[dict], unit: PromptUnit) -> list[dict]:
    """A task's own system turn (a record's `system`, or its prompt's first message) after `env.prefix`'s: the same
    text is kept once; a different one is refused, as two system turns are rendered mid-conversation or refused by
    templates, and which one was meant is not ours to guess."""
    if not (prefix and turns and prefix[0]["role"] == "system" and turns[0]["role"] == "system"):
        return turns
    if turns[0]["content"] == prefix[0]["content"]:
        return turns[1:]
    path, _, record = unit.origin.partition(", ")
    raise DataError(
        path,
        "a system message differing from env.prefix's; keep one of the two",
        record=record or None,
        field="system" if unit.columns.get("system") else "prompt[0]",
    )
