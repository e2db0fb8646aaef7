"""What the online methods (GRPO, PPO, episode GRPO) share, so that none imports another: prompt units in and
their plan, the `OnlineMethod` hooks they have in common, the policy with its reference, sampling from the
policy, scoring with the rewards, the prompt + completion sequences the loss reads, completions to log, the
greedy held-out evaluation, and GRPO's clipped surrogate (GRPO and episode GRPO). Each method keeps only its own
rollout, advantages and loss.

The records themselves (`PromptUnit`, `load_prompts`) are read in `data/prompts.py`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from alignline.config import GRPOConfig, RunConfig
from alignline.data.dataset import load_split
from alignline.data.packing import BatchPlan, single_rows
from alignline.data.prompts import PromptReport, load_prompts
from alignline.data.templates import Example, shift_targets
from alignline.losses.grpo import aggregate, kl_penalty, per_token_policy_loss, truncated_importance_weights
from alignline.methods.base import NoExtraHooks, Prepared, add_sums
from alignline.methods.monitors import Monitor
from alignline.models.logprob_model import TokenLogprobModel
from alignline.models.reference import frozen_reference
from alignline.rewards.combine import RewardScores, RewardSet
from alignline.rollout.hf import HFEngine
from alignline.rollout.policy_sync import PolicyRollouts, rollout_engine
from alignline.rollout.types import Completion, Engine, SamplingParams, render_prompt


class OnlineMethod(NoExtraHooks):
    """The hooks GRPO, PPO and episode GRPO have in common: a one-level mixin for method dataclasses holding `_cfg`
    (as `PairData` is for the pairwise methods), with `section` the recipe section holding the method's sampling
    keys (`grpo`, `ppo`). Prompt units in (`prepare`), one prompt per planned row (`plan`), batches only from
    `collect`, the monitors' alarms, and greedy answers to held-out prompts scored by the rewards (`extra_eval`).
    A method extends `prepare` with `super()` where it checks more (GRPO: the reference answers; episodes: that
    the environment can start every task)."""

    online = True
    model_kind = "causal_lm"
    early_stopping = ("eval_reward", "max")
    section = "grpo"
    tokenizer = None
    """Set by `prepare`: sampling and scoring render prompts with it."""
    rollouts: PolicyRollouts | None = None
    """Set by `setup`: where rollouts are sampled (`generation:`) and the policy sync; None: the HF engine."""

    def __post_init__(self) -> None:
        """The recipe's `rewards:` and the monitors that watch them, alarms named after `section` (episode GRPO
        builds its own: its monitor waits for the environment's reward components)."""
        cfg = self._cfg
        self.rewards = RewardSet(cfg.rewards, cfg.sandbox)
        self.monitor = Monitor(cfg.rewards, getattr(cfg, self.section), section=self.section)

    def prepare(self, cfg: RunConfig, tokenizer, progress: bool) -> Prepared:
        self.tokenizer = tokenizer
        return load_prompt_data(cfg)

    def plan(self, units: list, cfg: RunConfig, shuffle_seed: int | None) -> BatchPlan | None:
        return prompt_plan(units, cfg, shuffle_seed)

    def setup(self, wrapped, data: Prepared, pad_id, device) -> None:
        """The rollout engine `generation:` asks for, loaded once for the run (`rollout/policy_sync.py`)."""
        cfg = self._cfg
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        self.rollouts = rollout_engine(cfg.generation, cfg.model, cfg.adapter, wrapped.model, cfg.output_dir, world)

    def generation_record(self) -> dict | None:
        """run.json's `generation`: the rollouts' backend, dtype and sync."""
        return self.rollouts.record() if self.rollouts is not None else None

    def sync_policy(self, model, step: int, sums: dict) -> None:
        """Before step `step`'s rollouts: the external engine gets the current policy (`sync_seconds`)."""
        if self.rollouts is None:  # setup not run (a method driven by hand): the HF engine, nothing to sync
            self.rollouts = PolicyRollouts("hf", "as trained")
        add_sums(sums, {"sync_seconds_sum": self.rollouts.sync(model, step), "timed_collections": 1.0})

    def timed_rollout(self, sums: dict, generate: Callable[[Engine], list], model, batch_size: int) -> list:
        """`generate(engine)` on the rollout engine (the live model's HF engine, in eval mode, or the synced
        external one), its wall time added to `rollout_seconds`."""
        started = time.perf_counter()
        rollouts = self.rollouts or PolicyRollouts("hf", "as trained")
        was_training = model.training
        model.eval()
        try:
            return generate(rollouts.engine_for(model, self.tokenizer, batch_size))
        finally:
            model.train(was_training)
            add_sums(sums, {"rollout_seconds_sum": time.perf_counter() - started})

    def sample_groups(self, model, prompts: list, params: SamplingParams, sums: dict) -> list[list[Completion]]:
        """`params.n` completions per prompt from the rollout engine, timed into `sums`."""
        return self.timed_rollout(sums, lambda engine: engine.generate(prompts, params), model, len(prompts) * params.n)

    def comparable_logprobs(self, temperature: float) -> bool:
        """Whether the generator's log-probs are at temperature 1, as the trainer's: vLLM's raw ones always,
        the HF engine's only when sampling at temperature 1."""
        return temperature == 1.0 or (self.rollouts is not None and self.rollouts.logprobs_at_temperature_one)

    def importance_sampling(self, cap: float, method_setting: str) -> float | None:
        """The truncated importance sampling cap when it applies (`tis`, and the generator is not the trainer's
        own model), else None."""
        external = self.rollouts is not None and self.rollouts.external
        return cap if method_setting == "tis" and external else None

    def collate(self, units, rows, pad_id):
        raise NotImplementedError(f"{self.name.upper()}'s batches come from collect()")

    def alarms(self, record: dict[str, float]) -> list[str]:
        return self.monitor.check(record) if self.monitor is not None else []

    @torch.no_grad()
    def extra_eval(self, wrapped, data: Prepared, pad_id, device, tokenizer, step) -> dict[str, float]:
        """Greedy answers to held-out prompts, scored by the same rewards: eval_reward and each component."""
        keys = getattr(self._cfg, self.section)
        units = data.eval[: keys.eval_prompts]
        return greedy_eval(wrapped.model, self.tokenizer, self.rewards, units, keys.max_new_tokens)


# --- prompts -------------------------------------------------------------------------------------------------
def load_prompt_data(cfg: RunConfig) -> Prepared:
    """An online method's train and held-out prompt units, with their report (GRPO, PPO, episodes)."""
    report = PromptReport()
    train, held = load_split(cfg, load_prompts, report.sources, unit="prompts")
    report.train_units, report.eval_units = len(train), len(held)
    return Prepared(train, held, report)


def prompt_plan(units: list, cfg: RunConfig, shuffle_seed: int | None) -> BatchPlan | None:
    """One prompt per row, `training.batch_size` prompts per micro-batch, seeded so resume repeats it."""
    if not units:
        return None
    return BatchPlan(
        single_rows(len(units)),
        [1] * len(units),
        cfg.training.batch_size,
        seed=shuffle_seed or 0,
        shuffle=shuffle_seed is not None,
    )


def step_seed(seed: int, step: int, micro: int, attempt: int = 0) -> int:
    """The sampling seed of one collection: fixed by the run's seed and the position, so resume repeats it."""
    return (seed * 1_000_003 + step * 997 + micro * 31 + attempt) % (2**31)


# --- the policy and its reference ----------------------------------------------------------------------
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


def policy_model(model, cfg: RunConfig, keep_reference: bool) -> PolicyModel:
    """The policy to train, with a frozen reference when `keep_reference` (full fine-tuning; LoRA needs none)."""
    reference = frozen_reference(model, None, cfg.training.dtype) if keep_reference else None
    return PolicyModel(model, reference, cfg.training.fast_path)


def generator_logps(batch: dict, per_sequence: list[list[float]]) -> torch.Tensor:
    """(N,) the generator's log-prob of each target token, from one list per sequence (in its target order)."""
    segment = batch["target_segment"]
    flat = torch.empty(segment.numel())
    for s, values in enumerate(per_sequence):  # targets are row-major over packed rows: scatter per sequence
        flat[(segment == s).nonzero().squeeze(1)] = torch.tensor(values, dtype=torch.float32)
    return flat


def watches_kl(section) -> bool:
    """Whether the run needs the reference's log-probs: a KL term (`beta > 0`) or a KL alarm (`max_kl`).
    Otherwise the reference pass is skipped, as TRL does with beta 0: even with LoRA, where the reference costs
    no memory (adapters off), it costs a forward over every token, a third of a CPU step; `kl` is then not logged."""
    return section.beta > 0 or section.max_kl is not None


@torch.no_grad()
def add_old_and_reference(wrapped: PolicyModel, batch: dict, passes: int, reference: bool) -> dict:
    """The log-probs the gradient must not flow through: old (several passes) and reference (`reference`, from
    `watches_kl`: a KL term or a KL alarm)."""
    if passes > 1:
        batch["old_logps"] = wrapped.policy(batch["input_ids"], batch["position_ids"], batch["targets"])
    if reference and wrapped.has_reference():  # LoRA: adapters off; full fine-tuning: the kept frozen copy
        batch["ref_logps"] = wrapped.reference_logps(batch)
    return batch


# --- sampling and scoring -------------------------------------------------------------------------------------
def sample_completions(
    model, tokenizer, prompts: list, params: SamplingParams, batch_size: int | None = None
) -> list[list[Completion]]:
    """`params.n` completions per prompt from `model` (the HF/PEFT model), in eval mode (no dropout);
    all in one batch unless `batch_size` says otherwise."""
    was_training = model.training
    model.eval()
    try:
        engine = HFEngine(model, tokenizer, batch_size=batch_size or max(len(prompts) * params.n, 1))
        return engine.generate(prompts, params)
    finally:
        model.train(was_training)


def score_completions(rewards: RewardSet, units: list, groups: list[list[Completion]]) -> RewardScores:
    """Every completion scored, in group order; each unit's columns repeated for its group."""
    prompts = [u.prompt for u, group in zip(units, groups) for _ in group]
    keys = sorted({k for u in units for k in u.columns})
    columns = {k: [u.columns.get(k) for u, group in zip(units, groups) for _ in group] for k in keys}
    texts = [c.text for group in groups for c in group]
    ids = [c.token_ids for group in groups for c in group]
    return rewards.score(prompts, texts, columns, completion_ids=ids)


def completion_sequences(tokenizer, units: list, groups: list[list[Completion]]) -> list[Example]:
    """Prompt + completion token sequences, targets on the completion only, in group order."""
    sequences = []
    for u, group in zip(units, groups):
        prompt_ids = tokenizer(render_prompt(tokenizer, u.prompt), add_special_tokens=False).input_ids
        for c in group:
            completion = c.token_ids or [tokenizer.eos_token_id]  # an empty completion still predicts one token
            ids = list(prompt_ids) + list(completion)
            sequences.append(Example(ids, shift_targets(ids, [False] * len(prompt_ids) + [True] * len(completion))))
    return sequences


def completion_samples(
    step: int, units: list, groups: list[list[Completion]], total: torch.Tensor, components: dict[str, list]
) -> list[dict]:
    """completions.jsonl records for one micro-batch (`step` is the 1-based step being trained)."""
    out, i = [], 0
    for u, group in zip(units, groups):
        for c in group:
            out.append(
                {
                    "step": step,
                    "prompt": u.prompt,
                    "completion": c.text,
                    "reward": float(total[i]),
                    **{f"reward/{n}": v[i] for n, v in components.items()},
                }
            )
            i += 1
    return out


@torch.no_grad()
def greedy_eval(model, tokenizer, rewards: RewardSet, units: list, max_new_tokens: int) -> dict[str, float]:
    """Greedy answers to held-out prompts, scored by the same rewards: `reward` and each `reward/<name>`."""
    if not units:
        return {}
    groups = sample_completions(
        model, tokenizer, [u.prompt for u in units], SamplingParams(max_new_tokens=max_new_tokens), batch_size=16
    )
    scores = score_completions(rewards, units, groups)
    out = {"reward": float(scores.total.mean())}
    out.update({k: v for k, v in scores.means().items() if not math.isnan(v)})
    return out


# --- GRPO's clipped surrogate (GRPO and episode GRPO) ---------------------------------------------------------
def policy_count(g: GRPOConfig, batch: dict, budget: int) -> float:
    """What the step's loss is divided by, by `g.loss_type` (`budget`: the most trained tokens a sequence
    may have, the dr_grpo constant)."""
    weight = batch["seq_weight"]
    if g.loss_type == "grpo":
        return float((weight > 0).sum())
    if g.loss_type == "dr_grpo":
        return float(weight.numel() * budget)
    return float(weight[batch["target_segment"]].sum())  # dapo: every trained completion token


def policy_loss(
    g: GRPOConfig, model, batch: dict, normalizer: float, budget: int, tis_cap: float | None = None
) -> tuple[torch.Tensor, dict]:
    """The clipped surrogate of one micro-batch (`losses/grpo.py`) divided by `normalizer`, and metric sums;
    the batch as `GRPO.experience_batch` and `methods/rft.py` build it. `batch["gen_logps"]` holds the
    generator's log-probs at temperature 1 (NaN where unknown or not comparable): their distance to the trainer's
    is logged (`generator_mismatch`), and with `tis_cap` (an external generator, `grpo.importance_sampling: tis`)
    each token's policy loss is weighted by min(p_trainer_old / p_generator, tis_cap) (TRL's
    `vllm_importance_sampling_correction`, token_truncate)."""
    segment = batch["target_segment"]
    logps = model(batch["input_ids"], batch["position_ids"], batch["targets"])  # (N,)
    old = batch.get("old_logps", logps.detach())  # one pass: the trainer's log-probs when the batch was collected
    ref = batch.get("ref_logps")
    gen = batch["gen_logps"]
    known = ~torch.isnan(gen)
    weights = truncated_importance_weights(old, gen, tis_cap) if tis_cap is not None and known.any() else None
    per_token, stats = per_token_policy_loss(
        logps,
        old,
        batch["advantages"],
        segment,
        epsilon=g.epsilon,
        epsilon_high=g.epsilon_high,
        ref_logps=ref if g.beta > 0 else None,
        beta=g.beta,
        kl_estimator=g.kl_estimator,
        importance_weights=weights,
    )
    token_weight = batch["seq_weight"][segment]
    total, _ = aggregate(per_token * token_weight, segment, batch["seq_weight"].numel(), g.loss_type, budget)
    detached = logps.detach()
    tokens = float(token_weight.sum())
    metrics = {
        "loss_sum": float(total.detach()),
        "loss_count": policy_count(g, batch, budget),
        "tokens": float(segment.numel()),
        "clipped": float((stats["clipped"].float() * token_weight).sum()),
        "trained_tokens": tokens,
        "entropy_sum": float(-detached.sum()),
    }
    if ref is not None:
        metrics["kl_sum"] = float(kl_penalty(detached, ref, g.kl_estimator).sum())
    if known.any():
        metrics["mismatch_sum"] = float((detached[known] - gen[known]).abs().sum())
        metrics["mismatch_tokens"] = float(known.sum())
    if weights is not None:
        metrics["is_ratio_sum"] = float(weights[known].sum())
        metrics["is_clipped"] = float((old[known] - gen[known] > math.log(tis_cap)).sum())
        metrics["is_tokens"] = float(known.sum())
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
        out.update(summarize_importance(sums))
    out.update(summarize_timing(sums))
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


def summarize_importance(sums: dict) -> dict:
    """`is_ratio_mean` (the truncated weights' mean) and `is_clipped_share` (tokens at the cap) over the tokens
    the generator scored, where truncated importance sampling ran."""
    if not sums.get("is_tokens"):
        return {}
    return {
        "is_ratio_mean": sums["is_ratio_sum"] / sums["is_tokens"],
        "is_clipped_share": sums["is_clipped"] / sums["is_tokens"],
    }


def summarize_timing(sums: dict) -> dict:
    """`sync_seconds` (pushing the policy into the rollout engine) and `rollout_seconds` (sampling), per step,
    averaged over processes."""
    n = sums.get("timed_collections", 0.0)
    if not n:
        return {}
    return {"sync_seconds": sums["sync_seconds_sum"] / n, "rollout_seconds": sums.get("rollout_seconds_sum", 0.0) / n}
