"""PPO-RLHF (`method: ppo`): a policy with a value head, a frozen reference and a reward model or graders,
on the one loop as an online method (`methods/base.py`).

For each optimizer step (`collect`), under no_grad: every prompt of the step gets `ppo.num_generations`
completions from the current policy (`rollout/engine.py`); the rewards (`rewards:`: graders with TRL's
signature, a trained reward model through the `reward_model` grader) score them; one forward of the policy
gives the rollout's log-probs and the value head's values, one of the reference (LoRA: the same weights
with the adapters off; full fine-tuning: a frozen copy) its log-probs; then, over all the step's
completions on this process (`losses/ppo.py`): per-token rewards `-kl_coef · KL_t` plus the shaped score
on the last token, optional reward whitening, GAE advantages (whitened) and returns. `ppo.num_ppo_epochs`
passes of the shared optimizer step then minimize the clipped policy loss plus `vf_coef` times the
clipped value loss, averaged over the step's completion tokens (`loss`). The adaptive KL controller moves
`kl_coef` once per collection from the measured KL.

The value head is `Linear(hidden, 1)` on the policy's last hidden states, initialized to zero, inside the
wrapped module (`PPOModel.value_head`): it trains with the policy and shares its body (as TRL's
`AutoModelForCausalLMWithValueHead`), so with LoRA the only new weights are the adapters and `hidden + 1`
numbers. Its weights and the KL coefficient (a buffer) are saved in every checkpoint
(`method_state.safetensors`, `checkpoint_extras`) and restored on resume, so a resumed run is exact.
The hidden states come from the same forward as the log-probs (`logprobs_and_hidden`): on the fast path
the decoder's output, which only the completion positions leave, and never the full-vocabulary logits.

Simplifications against TRL's PPOTrainer, and why:
- One value head on the shared body instead of a separate value model initialized from the reward model:
  half the memory, and it is what makes "with LoRA, the value head is small" true.
- Log-probs at temperature 1, as GRPO here (TRL divides the logits by the sampling temperature); with the
  default temperature 1.0 they are the same.
- One minibatch per epoch (TRL's default `num_mini_batches: 1`): an epoch is one shared optimizer step over
  all the step's micro-batches. Whitening uses this process's completions, as TRL's.
- The score sits on the last completion token (see `losses/ppo.py` for where TRL's padded layout differs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from alignline.config import RunConfig
from alignline.data.packing import collate_sequences
from alignline.data.templates import IGNORE
from alignline.losses.grpo import kl_penalty, truncated_importance_weights
from alignline.losses.ppo import (
    AdaptiveKLController,
    FixedKLController,
    clip_scores,
    clipped_value_loss,
    gae,
    penalize_missing_eos,
    ppo_policy_loss,
    token_rewards,
    whiten,
)
from alignline.losses.token_logprobs import token_logprobs, token_logprobs_reference
from alignline.methods.base import Experience, add_sums
from alignline.methods.online import (
    OnlineMethod,
    completion_samples,
    completion_sequences,
    score_completions,
    step_seed,
    summarize_importance,
    summarize_timing,
)
from alignline.models.fast.forward import decoder_hidden
from alignline.models.fast.head import output_head
from alignline.models.logprob_model import TokenLogprobModel
from alignline.models.peft_unwrap import unwrap
from alignline.models.reference import frozen_reference
from alignline.rollout.types import SamplingParams


def logprobs_and_hidden(
    policy: TokenLogprobModel, input_ids: torch.Tensor, position_ids: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids, positions, targets -> (N,) log-probs of the targets != IGNORE and (N, H) the decoder's last
    hidden states at the positions that predict them, from one forward, in row-major order."""
    keep = targets != IGNORE  # (B, T)
    fast, base = policy.fast_path, unwrap(policy.model)
    if fast.fused_head:
        head = output_head(base)
        if not isinstance(head, str):
            hidden = decoder_hidden(base, base.get_decoder(), input_ids, position_ids, fast.packed_attention)[keep]
            logps = token_logprobs(
                hidden, head.weight, targets[keep], policy.chunk_size, head.bias, head.scale, head.softcap
            )
            return logps, hidden
    # Plain path: the model's own forward; the decoder's output is caught on its way to the output layer.
    caught: list[torch.Tensor] = []
    hook = base.get_decoder().register_forward_hook(lambda module, args, out: caught.append(out[0]))
    try:
        if policy.virtual_tokens:
            logits = policy.model(input_ids=input_ids, use_cache=False).logits
        else:
            logits = policy.model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
    finally:
        hook.remove()
    width = input_ids.shape[1]  # prompt tuning prepends virtual-token positions
    hidden = caught[0][:, -width:][keep]
    return token_logprobs_reference(logits[:, -width:][keep], targets[keep]), hidden


class PPOModel(nn.Module):
    """The policy, its value head and the KL coefficient (trained or updated with it), and the reference."""

    def __init__(self, model, reference: nn.Module | None, fast, kl_coef: float, use_reference: bool):
        super().__init__()
        self.model = model
        self.policy = TokenLogprobModel(model, fast=fast)
        hidden = unwrap(model).config.get_text_config().hidden_size
        self.value_head = nn.Linear(hidden, 1)  # float32 whatever the body's dtype
        # Zero: the first values are 0, so the first advantages are the (whitened) returns themselves.
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.register_buffer("kl_coef", torch.tensor(kl_coef, dtype=torch.float64))
        self._reference = [TokenLogprobModel(reference, fast=fast)] if reference is not None else []
        self.use_reference = use_reference

    def forward(self, input_ids, position_ids, targets, **_) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) log-probs of the targets (with gradient) and (N,) values at the same positions."""
        logps, hidden = logprobs_and_hidden(self.policy, input_ids, position_ids, targets)
        return logps, self.value_head(hidden.float()).squeeze(-1)

    def shares_reference_weights(self) -> bool:
        """LoRA: the reference is the base with the adapters off, no second model."""
        return self.use_reference and not self._reference and hasattr(self.model, "disable_adapter")

    @torch.no_grad()
    def reference_logps(self, batch: dict) -> torch.Tensor | None:
        """(N,) the reference's log-probs; None when no reference is kept (kl_coef 0, not adaptive)."""
        args = (batch["input_ids"], batch["position_ids"], batch["targets"])
        if self._reference:
            return self._reference[0](*args)
        if self.shares_reference_weights():
            with self.model.disable_adapter():
                return self.policy(*args)
        return None


@dataclass
class Rollout:
    """One micro-batch's rollout. Per-token tensors are flat `(N,)` in *sequence* order (each completion's tokens
    contiguous, as GAE needs); `order` maps them to the batch's row-major target order."""

    batch: dict[str, torch.Tensor]
    order: torch.Tensor
    """(N,) batch target position of each sequence-order token."""
    seq_index: torch.Tensor  # (N,) non-decreasing
    logps: torch.Tensor  # (N,) rollout policy
    ref_logps: torch.Tensor  # (N,)
    values: torch.Tensor  # (N,)
    scores: torch.Tensor  # (S,) shaped
    gen_logps: torch.Tensor  # (N,) the generator's, NaN where unknown


@dataclass
class PPO(OnlineMethod):
    _cfg: RunConfig
    name: str = "ppo"
    checkpoint_extras = ("value_head.", "kl_coef")
    section = "ppo"

    @property
    def passes(self) -> int:
        return self._cfg.ppo.num_ppo_epochs

    # --- data --------------------------------------------------------------------------------------------
    def wrap(self, model, cfg):
        p = cfg.ppo
        use_reference = p.kl_coef > 0 or p.adaptive_kl
        reference = frozen_reference(model, None, cfg.training.dtype) if use_reference else None
        return PPOModel(model, reference, cfg.training.fast_path, p.kl_coef, use_reference)

    # --- experience --------------------------------------------------------------------------------------
    def collect(self, wrapped, units, rows, step, device) -> Experience:
        p, seed = self._cfg.ppo, self._cfg.training.seed
        ppo_model: PPOModel = getattr(wrapped, "module", wrapped)  # under DDP, the module it wraps
        log_now = p.log_completions_every and (step + 1) % p.log_completions_every == 0
        rollouts, sums, samples = [], {}, []
        self.sync_policy(ppo_model.model, step, sums)
        for k, row_list in enumerate(rows):
            chosen = [units[i] for row in row_list for i in row]
            params = SamplingParams(
                max_new_tokens=p.max_new_tokens,
                temperature=p.temperature,
                top_p=p.top_p,
                top_k=p.top_k,
                n=p.num_generations,
                seed=step_seed(seed, step, k),
                logprobs=True,
            )
            groups = self.sample_groups(ppo_model.model, [u.prompt for u in chosen], params, sums)
            scores = score_completions(self.rewards, chosen, groups)
            rollouts.append(self.rollout(ppo_model, chosen, groups, scores.total, device))
            add_completion_sums(sums, scores.total, scores.logged(), groups)
            if log_now:
                samples += completion_samples(step + 1, chosen, groups, scores.total, scores.logged())
        kl_coef = float(ppo_model.kl_coef)
        add_sums(sums, self.assign_advantages(rollouts, kl_coef))
        self.update_kl_coef(ppo_model, sums["kl_sum"], sums["completions"])
        return Experience([r.batch for r in rollouts], sums, samples)

    @torch.no_grad()
    def rollout(self, ppo_model: PPOModel, units, groups, total: torch.Tensor, device) -> Rollout:
        """Sequences packed into rows; the rollout's log-probs and values, the reference's log-probs."""
        p, tok = self._cfg.ppo, self.tokenizer
        sequences = completion_sequences(tok, units, groups)
        batch = collate_sequences(sequences, max(len(s.input_ids) for s in sequences), tok.pad_token_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        was_training = ppo_model.training
        ppo_model.eval()  # the rollout policy without dropout
        try:
            logps, values = ppo_model(batch["input_ids"], batch["position_ids"], batch["targets"])
            ref = ppo_model.reference_logps(batch)
        finally:
            ppo_model.train(was_training)
        order = torch.argsort(batch["target_segment"], stable=True)  # rows pack sequences out of order
        completions = [c for group in groups for c in group]
        scores = total.to(device)
        if p.missing_eos_penalty is not None:
            has_eos = torch.tensor([c.finish_reason != "length" for c in completions], device=device)
            scores = penalize_missing_eos(scores, has_eos, p.missing_eos_penalty)
        if p.reward_clip is not None:
            scores = clip_scores(scores, p.reward_clip)
        comparable = self.comparable_logprobs(p.temperature)
        gen = [
            torch.tensor(
                c.logprobs if c.token_ids and c.logprobs and comparable else [float("nan")] * max(len(c.token_ids), 1),
                dtype=torch.float32,
            )
            for c in completions
        ]
        logps = logps[order]
        return Rollout(
            batch,
            order,
            batch["target_segment"][order],
            logps,
            ref[order] if ref is not None else logps,
            values[order],
            scores,
            torch.cat(gen).to(device),
        )

    def assign_advantages(self, rollouts: list[Rollout], kl_coef: float) -> dict[str, float]:
        """Rewards, advantages and returns over all the step's completions on this process, written into each
        micro-batch (`old_logps`, `old_values`, `advantages`, `returns`, in target order); their metric sums."""
        p = self._cfg.ppo
        offsets, start = [], 0
        for r in rollouts:
            offsets.append(start)
            start += r.scores.numel()
        seq_index = torch.cat([r.seq_index + o for r, o in zip(rollouts, offsets)])
        logps, ref = torch.cat([r.logps for r in rollouts]), torch.cat([r.ref_logps for r in rollouts])
        values, scores = torch.cat([r.values for r in rollouts]), torch.cat([r.scores for r in rollouts])
        rewards, non_score = token_rewards(scores, logps, ref, seq_index, kl_coef, p.kl_estimator)
        if p.whiten_rewards and rewards.numel() > 1:
            rewards = whiten(rewards, shift_mean=False)
        advantages, returns = gae(rewards, values, seq_index, p.gamma, p.lam)
        if advantages.numel() > 1:
            advantages = whiten(advantages)
        gen = torch.cat([r.gen_logps for r in rollouts])
        known = ~torch.isnan(gen)
        cap = self.importance_sampling(p.importance_sampling_cap, p.importance_sampling)
        # The rollout's own log-probs are the trainer's (`old_logps`); the weights correct for the generator.
        is_weights = truncated_importance_weights(logps, gen, cap) if cap is not None else torch.ones_like(logps)
        at = 0
        for r in rollouts:
            n = r.order.numel()
            for key, flat in (
                ("is_weights", is_weights),
                ("old_logps", logps),
                ("old_values", values),
                ("advantages", advantages),
                ("returns", returns),
            ):
                target_order = torch.empty_like(flat[at : at + n])
                target_order[r.order] = flat[at : at + n]
                r.batch[key] = target_order
            at += n
        kl = kl_penalty(logps, ref, p.kl_estimator)
        sums = {
            "rollout_tokens": float(logps.numel()),
            "kl_sum": float(kl.sum()),
            "score_sum": float(scores.sum()),
            "non_score_sum": float(non_score.sum()),
            "entropy_sum": float(-logps.sum()),
            "kl_coef_sum": kl_coef * scores.numel(),
            "value_sum": float(values.sum()),
            "return_sum": float(returns.sum()),
            "return_sq_sum": float((returns**2).sum()),
            "residual_sum": float((returns - values).sum()),
            "residual_sq_sum": float(((returns - values) ** 2).sum()),
        }
        if known.any():
            sums["mismatch_sum"] = float((logps[known] - gen[known]).abs().sum())
            sums["mismatch_tokens"] = float(known.sum())
            if cap is not None:
                sums["is_ratio_sum"] = float(is_weights[known].sum())
                sums["is_clipped"] = float((logps[known] - gen[known] > math.log(cap)).sum())
                sums["is_tokens"] = float(known.sum())
        return sums

    def update_kl_coef(self, ppo_model: PPOModel, kl_sum: float, completions: float) -> None:
        """Once per collection, from the mean KL per completion over every process (all must agree)."""
        p = self._cfg.ppo
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            both = torch.tensor([kl_sum, completions], dtype=torch.float64, device=ppo_model.kl_coef.device)
            torch.distributed.all_reduce(both)
            kl_sum, completions = float(both[0]), float(both[1])
        controller = (
            AdaptiveKLController(p.kl_coef, p.target_kl, p.horizon) if p.adaptive_kl else FixedKLController(p.kl_coef)
        )
        controller.load_state_dict({"value": float(ppo_model.kl_coef)})
        controller.update(kl_sum / max(completions, 1.0), int(completions))
        ppo_model.kl_coef.fill_(controller.value)

    # --- loss ----------------------------------------------------------------------------------------------
    def count(self, batch):
        return float((batch["targets"] != IGNORE).sum())  # the step's loss is a mean over completion tokens

    def loss(self, model, batch, normalizer):
        p = self._cfg.ppo
        logps, values = model(batch["input_ids"], batch["position_ids"], batch["targets"])  # (N,), (N,)
        policy, stats = ppo_policy_loss(
            logps, batch["old_logps"], batch["advantages"], epsilon=p.cliprange, importance_weights=batch["is_weights"]
        )
        value, value_stats = clipped_value_loss(values, batch["old_values"], batch["returns"], p.cliprange_value)
        total = (policy + p.vf_coef * value).sum()
        n = float(logps.numel())
        metrics = {
            "loss_sum": float(total.detach()),
            "loss_count": n,
            "trained_tokens": n,
            "policy_loss_sum": float(policy.detach().sum()),
            "value_loss_sum": float(value.detach().sum()),
            "clipped": float(stats["clipped"].float().sum()),
            "value_clipped": float(value_stats["clipped"].float().sum()),
            "approx_kl_sum": float(stats["approx_kl"].sum()),
        }
        return total / normalizer, metrics

    def summarize(self, sums):
        out = summarize_timing(sums)
        if "loss_count" in sums:
            n = max(sums["loss_count"], 1e-12)
            out["loss"] = sums["loss_sum"] / n
            out["policy_loss"] = sums["policy_loss_sum"] / n
            out["value_loss"] = sums["value_loss_sum"] / n
            out["clip_fraction"] = sums["clipped"] / n
            out["value_clip_fraction"] = sums["value_clipped"] / n
            out["approx_kl"] = sums["approx_kl_sum"] / n
        s = sums.get("completions", 0.0)
        if s:
            tokens = max(sums["rollout_tokens"], 1.0)
            out["reward"] = sums["reward_sum"] / s
            out["reward_std"] = max(sums["reward_sq_sum"] / s - out["reward"] ** 2, 0.0) ** 0.5
            out["score"] = sums["score_sum"] / s
            out["non_score_reward"] = sums["non_score_sum"] / s
            out["rlhf_reward"] = out["score"] + out["non_score_reward"]
            out["kl"] = sums["kl_sum"] / tokens  # per token, as GRPO's
            out["kl_sequence"] = sums["kl_sum"] / s  # per completion: what the adaptive controller steers
            out["kl_coef"] = sums["kl_coef_sum"] / s
            out["entropy"] = sums["entropy_sum"] / tokens
            out["completion_length"] = sums["length_sum"] / s
            out["truncated_share"] = sums["truncated"] / s
            out["value"] = sums["value_sum"] / tokens
            mean_return = sums["return_sum"] / tokens
            return_var = sums["return_sq_sum"] / tokens - mean_return**2
            residual_var = sums["residual_sq_sum"] / tokens - (sums["residual_sum"] / tokens) ** 2
            if return_var > 1e-12:
                out["explained_variance"] = 1 - residual_var / return_var
            if sums.get("mismatch_tokens"):
                out["generator_mismatch"] = sums["mismatch_sum"] / sums["mismatch_tokens"]
            out.update(summarize_importance(sums))
            for key in sorted(k for k in sums if k.startswith("reward/") and k.endswith("_sum")):
                name = key[: -len("_sum")]
                out[name] = sums[key] / max(sums.get(f"{name}_n", 0.0), 1.0)
        return out


def add_completion_sums(sums: dict, total: torch.Tensor, components: dict, groups: list) -> None:
    """Rewards, lengths and truncations of one micro-batch's completions."""
    completions = [c for group in groups for c in group]
    add_sums(
        sums,
        {
            "completions": float(total.numel()),
            "reward_sum": float(total.sum()),
            "reward_sq_sum": float((total**2).sum()),
            "length_sum": float(sum(len(c.token_ids) for c in completions)),
            "truncated": float(sum(c.finish_reason == "length" for c in completions)),
        },
    )
    for name, values in components.items():
        present = [v for v in values if v is not None]
        add_sums(sums, {f"reward/{name}_sum": float(sum(present)), f"reward/{name}_n": float(len(present))})
