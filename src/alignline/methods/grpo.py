"""GRPO / reinforcement fine-tuning with programmatic rewards (`method: grpo`), an online method.

For each optimizer step (`collect`): every prompt of the step gets `grpo.num_generations` completions
from the current policy through the rollout engine (`rollout/engine.py`); the rewards (`rewards:`,
graders with TRL's signature) score them; advantages are normalized within each prompt's group
(`losses/grpo.py`); then `grpo.num_iterations` passes of the shared optimizer step minimize the clipped
surrogate (`loss`). Log-probs are always recomputed by the training model; the generator's are kept
only to log the mismatch between the two (and for truncated importance sampling when they differ).

Records (GRPO, PPO, episodes): `prompt` (a string, used as it is, or a message list, rendered with the chat
template and its generation prompt) plus the columns the rewards read. A top-level `system` makes the prompt a
conversation, [system, user] through the chat template (an empty one adds no system turn); it still reaches the
rewards as a column, as TRL passes every extra column.

Simplifications against TRL's GRPOTrainer, and why:
- The loss uses log-probs at temperature 1 (TRL divides the logits by the sampling temperature). With
  the default temperature 1.0 they are the same; the generator/trainer mismatch is only logged then.
- Zero-variance groups (every completion scored the same) carry no signal: they are counted
  (`frac_zero_std`), optionally re-sampled with new seeds, and optionally dropped from the loss. New
  prompts are not drawn in their place (DAPO does), so the data position stays exact for resume.
- Before training, up to 16 of the data's reference answers (`answer`, `solution`, ... columns) are scored
  by the rewards: if all get 0, a warning at the first step says the reward cannot read them
  (`train/monitors.py`, `reference_check`); an alarm follows when every group stays flat for 3 steps.
- The entropy monitor is -mean log p of the sampled tokens: an unbiased estimate of the per-token
  entropy when sampling at temperature 1, without building full-vocabulary logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from alignline.config import GRPOConfig, RunConfig
from alignline.data.formats import Message, Where, with_system
from alignline.data.packing import BatchPlan, collate_sequences, single_rows
from alignline.data.sources import read_records
from alignline.data.templates import Example, shift_targets
from alignline.errors import ConfigError, DataError
from alignline.losses.grpo import (aggregate, group_advantages, kl_penalty, per_token_policy_loss,
                                   rloo_advantages, zero_std_groups)
from alignline.methods.base import Experience, NoExtraHooks, Prepared
from alignline.methods.dpo import frozen_reference
from alignline.methods.online import completion_samples, greedy_eval, sample_completions, score_completions
from alignline.methods.pairs import load_split
from alignline.models.logprob_model import TokenLogprobModel
from alignline.rewards.combine import RewardSet
from alignline.rollout.types import SamplingParams, render_prompt
from alignline.train.monitors import Monitor, reference_check


@dataclass(slots=True)
class PromptUnit:
    prompt: str | list[dict]
    """As the engine takes it: a message list (chat template) or raw text."""
    columns: dict
    """The record's other fields, passed to the rewards (e.g. `answer`)."""
    origin: str = ""


@dataclass
class PromptReport:
    sources: list[dict] = field(default_factory=list)
    train_prompts: int = 0
    eval_prompts: int = 0


def to_prompt_unit(record: dict, path: str, location: str) -> PromptUnit:
    if "prompt" not in record:
        raise DataError(path, "is missing (an online method's records are a prompt plus the columns its rewards "
                        "read)", record=location, field="prompt")
    prompt = record["prompt"]
    if isinstance(prompt, list):
        for i, m in enumerate(prompt):
            if not isinstance(m, dict) or "role" not in m or not isinstance(m.get("content"), str):
                raise DataError(path, "expected a {role, content} message", record=location, field=f"prompt[{i}]")
        while prompt and prompt[-1]["role"] == "assistant":  # a reference answer is not part of the prompt
            prompt = prompt[:-1]
        prompt = [{"role": m["role"], "content": m["content"]} for m in prompt]
    if not prompt or not isinstance(prompt, (str, list)):
        raise DataError(path, "expected a non-empty string or message list", record=location, field="prompt")
    if "system" in record:
        prompt = prompt_with_system(prompt, record, path, location)
    columns = {k: v for k, v in record.items() if k != "prompt"}  # `system` stays a column too, as TRL passes it
    return PromptUnit(prompt, columns, f"{path}, {location}")


def prompt_with_system(prompt: str | list[dict], record: dict, path: str, location: str) -> list[dict]:
    """A record that carries a `system` is a conversation: [system, user] rendered through the chat template for
    generation (formats.with_system decides, as it does for SFT and preference records)."""
    where = Where(path, location)
    messages = [Message(m["role"], m["content"]) for m in prompt] if isinstance(prompt, list) else [
        Message("user", prompt)]
    return [{"role": m.role, "content": m.content} for m in with_system(messages, record, where)]


def load_prompts(path: str, split: str = "train", columns: dict | None = None) -> list[PromptUnit]:
    return [to_prompt_unit(r, str(path), loc) for loc, r in read_records(path, split, columns)]


class PolicyModel(nn.Module):
    """Per-token log-probs of the policy (with gradient) and of the reference (without)."""

    def __init__(self, model, reference: nn.Module | None, fast):
        super().__init__()
        self.model = model
        self.policy = TokenLogprobModel(model, fast=fast)
        self._reference = [TokenLogprobModel(reference, fast=fast)] if reference is not None else []

    def forward(self, input_ids, position_ids, targets, **_) -> torch.Tensor:
        return self.policy(input_ids, position_ids, targets)

    def has_reference(self) -> bool:
        return bool(self._reference) or hasattr(self.model, "disable_adapter")

    @torch.no_grad()
    def reference_logps(self, batch: dict) -> torch.Tensor:
        args = (batch["input_ids"], batch["position_ids"], batch["targets"])
        if self._reference:
            return self._reference[0](*args)
        with self.model.disable_adapter():
            return self.policy(*args)


def load_prompt_data(cfg: RunConfig) -> Prepared:
    """An online method's train and held-out prompt units, with their report (GRPO, PPO, episodes)."""
    report = PromptReport()
    train, held = load_split(cfg, load_prompts, report.sources, unit="prompts")
    report.train_prompts, report.eval_prompts = len(train), len(held)
    return Prepared(train, held, report)


def prompt_plan(units: list, cfg: RunConfig, shuffle_seed: int | None) -> BatchPlan | None:
    """One prompt per row, `training.batch_size` prompts per micro-batch, seeded so resume repeats it."""
    if not units:
        return None
    return BatchPlan(single_rows(len(units)), [1] * len(units), cfg.training.batch_size, seed=shuffle_seed or 0,
                     shuffle=shuffle_seed is not None)


def step_seed(seed: int, step: int, micro: int, attempt: int = 0) -> int:
    """The sampling seed of one collection: fixed by the run's seed and the position, so resume repeats it."""
    return (seed * 1_000_003 + step * 997 + micro * 31 + attempt) % (2**31)


@dataclass
class GRPO(NoExtraHooks):
    _cfg: RunConfig
    name: str = "grpo"
    model_kind: str = "causal_lm"
    early_stopping: tuple[str, str] = ("eval_reward", "max")
    online = True

    def __post_init__(self):
        check_grpo_config(self._cfg.grpo)
        self.rewards = RewardSet(self._cfg.rewards, self._cfg.sandbox)
        self.monitor = Monitor(self._cfg.rewards, self._cfg.grpo)
        self.tokenizer = None

    @property
    def passes(self) -> int:
        return self._cfg.grpo.num_iterations

    # --- data --------------------------------------------------------------------------------------------
    def prepare(self, cfg, tokenizer, progress):
        self.tokenizer = tokenizer
        data = load_prompt_data(cfg)
        warning = reference_check(self.rewards, data.train)  # reported at the first step
        if warning:
            self.monitor.note(warning)
        return data

    def plan(self, units, cfg, shuffle_seed):
        return prompt_plan(units, cfg, shuffle_seed)

    def wrap(self, model, cfg):
        reference = frozen_reference(model, None, cfg.training.dtype) if cfg.grpo.beta > 0 else None
        return PolicyModel(model, reference, cfg.training.fast_path)

    # --- experience --------------------------------------------------------------------------------------
    def sample(self, wrapped: PolicyModel, prompts: list, seed: int) -> list[list]:
        g = self._cfg.grpo
        params = SamplingParams(max_new_tokens=g.max_new_tokens, temperature=g.temperature, top_p=g.top_p,
                                top_k=g.top_k, n=g.num_generations, seed=seed, logprobs=True)
        return sample_completions(wrapped.model, self.tokenizer, prompts, params)

    def score(self, units: list[PromptUnit], groups: list[list]) -> tuple[torch.Tensor, dict]:
        """Rewards of every completion (S,) and the components, in group order."""
        g = self._cfg.grpo
        scores = score_completions(self.rewards, units, groups)
        total = scores.total
        if g.overlong_penalty:
            truncated = torch.tensor([c.finish_reason == "length" for group in groups for c in group])
            total = total - g.overlong_penalty * truncated.float()
        return total, scores.components

    def collect(self, wrapped, units, rows, step, device) -> Experience:
        g, seed = self._cfg.grpo, self._cfg.training.seed
        micro_batches, sums, samples = [], {}, []
        log_now = g.log_completions_every and (step + 1) % g.log_completions_every == 0
        for k, row_list in enumerate(rows):
            chosen = [units[i] for row in row_list for i in row]
            prompts = [u.prompt for u in chosen]
            groups = self.sample(wrapped, prompts, step_seed(seed, step, k))
            rewards, components = self.score(chosen, groups)
            for attempt in range(1, g.resample_zero_std + 1):  # re-sample groups that carry no signal
                flat = zero_std_groups(rewards, g.num_generations)
                if not flat.any():
                    break
                idx = flat.nonzero().squeeze(1).tolist()
                again = self.sample(wrapped, [prompts[i] for i in idx], step_seed(seed, step, k, attempt))
                for j, i in enumerate(idx):
                    groups[i] = again[j]
                rewards, components = self.score(chosen, groups)
            micro_batches.append(self.experience_batch(wrapped, chosen, groups, rewards, device))
            add_collect_metrics(sums, rewards, components, groups, g.num_generations)
            if log_now:
                samples += completion_samples(step + 1, chosen, groups, rewards, components)
        return Experience(micro_batches, sums, samples)

    def experience_batch(self, wrapped, units, groups, rewards, device) -> dict[str, torch.Tensor]:
        """Prompt + completion sequences packed into rows, with advantages and what the loss reads."""
        g = self._cfg.grpo
        tok = self.tokenizer
        advantages = (rloo_advantages(rewards, g.num_generations) if g.advantage == "rloo"
                      else group_advantages(rewards, g.num_generations, g.scale_rewards))
        weight = torch.ones(len(rewards))
        if g.drop_zero_std_groups:
            weight *= (~zero_std_groups(rewards, g.num_generations)).repeat_interleave(g.num_generations).float()
        sequences, gen_logps = [], []
        for u, group in zip(units, groups):
            prompt_ids = tok(render_prompt(tok, u.prompt), add_special_tokens=False).input_ids
            for c in group:
                completion = c.token_ids or [tok.eos_token_id]  # an empty completion still predicts one token
                ids = list(prompt_ids) + list(completion)
                mask = [False] * len(prompt_ids) + [True] * len(completion)
                sequences.append(Example(ids, shift_targets(ids, mask)))
                gen_logps.append(c.logprobs or [math.nan] * len(completion))
                if g.mask_truncated_completions and c.finish_reason == "length":
                    weight[len(sequences) - 1] = 0.0
        batch = collate_sequences(sequences, max(len(s.input_ids) for s in sequences), tok.pad_token_id)
        batch.update(advantages=advantages.float(), seq_weight=weight, gen_logps=generator_logps(batch, gen_logps),
                     completion_tokens=torch.tensor([len(c.token_ids) for group in groups for c in group]))
        batch = {k: v.to(device) for k, v in batch.items()}
        return add_old_and_reference(wrapped, batch, self.passes)

    def collate(self, units, rows, pad_id):
        raise NotImplementedError("GRPO's batches come from collect()")

    # --- loss ----------------------------------------------------------------------------------------------
    def count(self, batch):
        return policy_count(self._cfg.grpo, batch, self._cfg.grpo.max_new_tokens)

    def loss(self, model, batch, normalizer):
        return policy_loss(self._cfg.grpo, model, batch, normalizer, self._cfg.grpo.max_new_tokens)

    def summarize(self, sums):
        return summarize_policy(sums)

    # --- monitors and evaluation -------------------------------------------------------------------------------
    def alarms(self, record):
        return self.monitor.check(record)

    @torch.no_grad()
    def extra_eval(self, wrapped, data, pad_id, device, tokenizer):
        """Greedy answers to held-out prompts, scored by the same rewards: eval_reward and each component."""
        units = data.eval[: self._cfg.grpo.eval_prompts]
        return greedy_eval(wrapped.model, self.tokenizer, self.rewards, units, self._cfg.grpo.max_new_tokens)


def add_collect_metrics(sums: dict, rewards: torch.Tensor, components: dict, groups: list, group_size: int) -> None:
    """Sums over one micro-batch's completions (the loop adds them over micro-batches and processes)."""
    def add(key, value):
        sums[key] = sums.get(key, 0.0) + float(value)
    add("completions", rewards.numel())
    add("reward_sum", rewards.sum())
    add("reward_sq_sum", (rewards ** 2).sum())
    add("length_sum", sum(len(c.token_ids) for group in groups for c in group))
    add("truncated", sum(c.finish_reason == "length" for group in groups for c in group))
    add("groups", len(groups))
    add("zero_std_groups", zero_std_groups(rewards, group_size).sum())
    for name, values in components.items():
        present = [v for v in values if v is not None]
        add(f"reward/{name}_sum", sum(present))
        add(f"reward/{name}_n", len(present))


def generator_logps(batch: dict, per_sequence: list[list[float]]) -> torch.Tensor:
    """(N,) the generator's log-prob of each target token, from one list per sequence (in its target order)."""
    segment = batch["target_segment"]
    flat = torch.empty(segment.numel())
    for s, values in enumerate(per_sequence):  # targets are row-major over packed rows: scatter per sequence
        flat[(segment == s).nonzero().squeeze(1)] = torch.tensor(values, dtype=torch.float32)
    return flat


@torch.no_grad()
def add_old_and_reference(wrapped: PolicyModel, batch: dict, passes: int) -> dict:
    """The log-probs the gradient must not flow through: old (several passes) and reference (when kept)."""
    if passes > 1:
        batch["old_logps"] = wrapped.policy(batch["input_ids"], batch["position_ids"], batch["targets"])
    if wrapped.has_reference():  # LoRA: free (adapters off); full fine-tuning: only with beta > 0
        batch["ref_logps"] = wrapped.reference_logps(batch)
    return batch


def check_grpo_config(g: GRPOConfig) -> None:
    for key in ("num_generations", "max_new_tokens", "num_iterations"):
        if getattr(g, key) < 1:
            raise ConfigError(f"config key 'grpo.{key}': must be >= 1, got {getattr(g, key)}")
    if g.num_generations < 2:
        raise ConfigError("config key 'grpo.num_generations': a group needs at least 2 completions")
    if g.temperature < 0 or not 0 < g.top_p <= 1 or g.epsilon <= 0 or g.beta < 0:
        raise ConfigError("config key 'grpo': temperature >= 0, 0 < top_p <= 1, epsilon > 0 and beta >= 0")


def policy_count(g: GRPOConfig, batch: dict, budget: int) -> float:
    """What the step's loss is divided by, by `g.loss_type` (`budget`: the most trained tokens a sequence
    may have, the dr_grpo constant)."""
    weight = batch["seq_weight"]
    if g.loss_type == "grpo":
        return float((weight > 0).sum())
    if g.loss_type == "dr_grpo":
        return float(weight.numel() * budget)
    return float(weight[batch["target_segment"]].sum())  # dapo: every trained completion token


def policy_loss(g: GRPOConfig, model, batch: dict, normalizer: float, budget: int) -> tuple[torch.Tensor, dict]:
    """The clipped surrogate of one micro-batch (`losses/grpo.py`) divided by `normalizer`, and metric sums;
    the batch as `GRPO.experience_batch` and `methods/rft.py` build it."""
    segment = batch["target_segment"]
    logps = model(batch["input_ids"], batch["position_ids"], batch["targets"])  # (N,)
    old = batch.get("old_logps", logps.detach())
    ref = batch.get("ref_logps")
    per_token, stats = per_token_policy_loss(logps, old, batch["advantages"], segment, epsilon=g.epsilon,
                                             epsilon_high=g.epsilon_high, ref_logps=ref if g.beta > 0 else None,
                                             beta=g.beta, kl_estimator=g.kl_estimator)
    token_weight = batch["seq_weight"][segment]
    total, _ = aggregate(per_token * token_weight, segment, batch["seq_weight"].numel(), g.loss_type, budget)
    detached = logps.detach()
    tokens = float(token_weight.sum())
    metrics = {"loss_sum": float(total.detach()), "loss_count": policy_count(g, batch, budget),
               "tokens": float(segment.numel()), "clipped": float((stats["clipped"].float() * token_weight).sum()),
               "trained_tokens": tokens, "entropy_sum": float(-detached.sum())}
    if ref is not None:
        metrics["kl_sum"] = float(kl_penalty(detached, ref, g.kl_estimator).sum())
    gen = batch["gen_logps"]
    known = ~torch.isnan(gen)
    if g.temperature == 1.0 and known.any():
        metrics["mismatch_sum"] = float((detached[known] - gen[known]).abs().sum())
        metrics["mismatch_tokens"] = float(known.sum())
    return total / normalizer, metrics


def summarize_policy(sums: dict) -> dict:
    """The loss, policy and rollout monitors from summed metrics (`add_collect_metrics`' keys)."""
    out = {}
    if "loss_count" in sums:
        out["loss"] = sums["loss_sum"] / max(sums["loss_count"], 1e-12)
        tokens = max(sums.get("tokens", 0.0), 1.0)
        out["clip_fraction"] = sums.get("clipped", 0.0) / max(sums.get("trained_tokens", 0.0), 1.0)
        out["entropy"] = sums.get("entropy_sum", 0.0) / tokens
        if "kl_sum" in sums:
            out["kl"] = sums["kl_sum"] / tokens
        if sums.get("mismatch_tokens"):
            out["generator_mismatch"] = sums["mismatch_sum"] / sums["mismatch_tokens"]
    n = sums.get("completions", 0.0)
    if n:
        out["reward"] = sums["reward_sum"] / n
        out["reward_std"] = math.sqrt(max(sums["reward_sq_sum"] / n - out["reward"] ** 2, 0.0))
        out["completion_length"] = sums["length_sum"] / n
        out["truncated_share"] = sums["truncated"] / n
        out["frac_zero_std"] = sums["zero_std_groups"] / max(sums["groups"], 1.0)
        for key in sorted(k for k in sums if k.startswith("reward/") and k.endswith("_sum")):
            name = key[: -len("_sum")]
            out[name] = sums[key] / max(sums.get(f"{name}_n", 0.0), 1.0)
    return out
