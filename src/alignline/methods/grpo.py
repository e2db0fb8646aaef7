"""GRPO / reinforcement fine-tuning with programmatic rewards (`method: grpo`), an online method.

For each optimizer step (`collect`): every prompt of the step gets `grpo.num_generations` completions
from the current policy through the rollout engine (`rollout/engine.py`); the rewards (`rewards:`,
graders with TRL's signature) score them; advantages are normalized within each prompt's group
(`losses/grpo.py`); then `grpo.num_iterations` passes of the shared optimizer step minimize the clipped
surrogate (`loss`). Log-probs are always recomputed by the training model; the generator's are kept
only to log the mismatch between the two (and for truncated importance sampling when they differ).

Records (GRPO, PPO, episodes; read in `data/prompts.py`): `prompt` (a string, used as it is, or a message list,
rendered with the chat template and its generation prompt) plus the columns the rewards read. A top-level `system`
makes the prompt a conversation, [system, user] through the chat template (an empty one adds no system turn);
it still reaches the rewards as a column, as TRL passes every extra column.

Simplifications against TRL's GRPOTrainer, and why:
- The loss uses log-probs at temperature 1 (TRL divides the logits by the sampling temperature). With
  the default temperature 1.0 they are the same. The generator/trainer mismatch is logged where both sides are
  at temperature 1: always on vLLM (its raw log-probs), only at temperature 1 on the HF engine (whose log-probs
  are at the sampling temperature). Truncated importance sampling (`grpo.importance_sampling: tis`) runs when
  the generator is not the trainer's own model (vLLM, a server), as TRL's runs with vLLM only.
- Zero-variance groups (every completion scored the same) carry no signal: they are counted
  (`frac_zero_std`), optionally re-sampled with new seeds, and optionally dropped from the loss. New
  prompts are not drawn in their place (DAPO does), so the data position stays exact for resume.
- Before training, up to 16 of the data's reference answers (`answer`, `solution`, ... columns) are scored
  by the rewards: if all get 0, a warning at the first step says the reward cannot read them
  (`methods/monitors.py`, `reference_check`); an alarm follows when every group stays flat for 3 steps.
- The entropy monitor is -mean log p of the sampled tokens: an unbiased estimate of the per-token
  entropy when sampling at temperature 1, without building full-vocabulary logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from alignline.config import RunConfig
from alignline.data.packing import collate_sequences
from alignline.data.prompts import PromptUnit
from alignline.data.templates import Example, shift_targets
from alignline.losses.grpo import group_advantages, rloo_advantages, zero_std_groups
from alignline.methods.base import Experience
from alignline.methods.monitors import reference_check
from alignline.methods.online import (
    OnlineMethod,
    PolicyModel,
    add_old_and_reference,
    completion_samples,
    generator_logps,
    policy_count,
    policy_loss,
    policy_model,
    score_completions,
    step_seed,
    summarize_policy,
    watches_kl,
)
from alignline.rollout.types import SamplingParams, render_prompt


@dataclass
class GRPO(OnlineMethod):
    _cfg: RunConfig
    name: str = "grpo"
    section = "grpo"

    @property
    def passes(self) -> int:
        return self._cfg.grpo.num_iterations

    # --- data --------------------------------------------------------------------------------------------
    def prepare(self, cfg, tokenizer, progress):
        data = super().prepare(cfg, tokenizer, progress)
        warning = reference_check(self.rewards, data.train)  # reported at the first step
        if warning:
            self.monitor.note(warning)
        return data

    def wrap(self, model, cfg):
        return policy_model(model, cfg, keep_reference=watches_kl(cfg.grpo))

    # --- experience --------------------------------------------------------------------------------------
    def sample(self, wrapped: PolicyModel, prompts: list, seed: int, sums: dict) -> list[list]:
        """`grpo.num_generations` completions per prompt from the rollout engine (timed into `sums`)."""
        g = self._cfg.grpo
        params = SamplingParams(
            max_new_tokens=g.max_new_tokens,
            temperature=g.temperature,
            top_p=g.top_p,
            top_k=g.top_k,
            n=g.num_generations,
            seed=seed,
            logprobs=True,
        )
        return self.sample_groups(wrapped.model, prompts, params, sums)

    def score(self, units: list[PromptUnit], groups: list[list]) -> tuple[torch.Tensor, dict]:
        """Rewards of every completion (S,) and the components, in group order."""
        g = self._cfg.grpo
        scores = score_completions(self.rewards, units, groups)
        total = scores.total
        if g.overlong_penalty:
            truncated = torch.tensor([c.finish_reason == "length" for group in groups for c in group])
            total = total - g.overlong_penalty * truncated.float()
        return total, scores.logged()

    def collect(self, wrapped, units, rows, step, device) -> Experience:
        g, seed = self._cfg.grpo, self._cfg.training.seed
        micro_batches, sums, samples = [], {}, []
        log_now = g.log_completions_every and (step + 1) % g.log_completions_every == 0
        self.sync_policy(wrapped.model, step, sums)
        for k, row_list in enumerate(rows):
            chosen = [units[i] for row in row_list for i in row]
            prompts = [u.prompt for u in chosen]
            groups = self.sample(wrapped, prompts, step_seed(seed, step, k), sums)
            rewards, components = self.score(chosen, groups)
            for attempt in range(1, g.resample_zero_std + 1):  # re-sample groups that carry no signal
                flat = zero_std_groups(rewards, g.num_generations)
                if not flat.any():
                    break
                idx = flat.nonzero().squeeze(1).tolist()
                again = self.sample(wrapped, [prompts[i] for i in idx], step_seed(seed, step, k, attempt), sums)
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
        advantages = (
            rloo_advantages(rewards, g.num_generations)
            if g.advantage == "rloo"
            else group_advantages(rewards, g.num_generations, g.scale_rewards)
        )
        weight = torch.ones(len(rewards))
        if g.drop_zero_std_groups:
            weight *= (~zero_std_groups(rewards, g.num_generations)).repeat_interleave(g.num_generations).float()
        sequences, gen_logps = [], []
        comparable = self.comparable_logprobs(g.temperature)
        for u, group in zip(units, groups):
            prompt_ids = tok(render_prompt(tok, u.prompt), add_special_tokens=False).input_ids
            for c in group:
                completion = c.token_ids or [tok.eos_token_id]  # an empty completion still predicts one token
                ids = list(prompt_ids) + list(completion)
                mask = [False] * len(prompt_ids) + [True] * len(completion)
                sequences.append(Example(ids, shift_targets(ids, mask)))
                gen_logps.append(c.logprobs if c.logprobs and comparable else [math.nan] * len(completion))
                if g.mask_truncated_completions and c.finish_reason == "length":
                    weight[len(sequences) - 1] = 0.0
        batch = collate_sequences(sequences, max(len(s.input_ids) for s in sequences), tok.pad_token_id)
        batch.update(
            advantages=advantages.float(),
            seq_weight=weight,
            gen_logps=generator_logps(batch, gen_logps),
            completion_tokens=torch.tensor([len(c.token_ids) for group in groups for c in group]),
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        return add_old_and_reference(wrapped, batch, self.passes, watches_kl(self._cfg.grpo))

    # --- loss ----------------------------------------------------------------------------------------------
    def count(self, batch):
        return policy_count(self._cfg.grpo, batch, self._cfg.grpo.max_new_tokens)

    def loss(self, model, batch, normalizer):
        g = self._cfg.grpo
        cap = self.importance_sampling(g.importance_sampling_cap, g.importance_sampling)
        return policy_loss(g, model, batch, normalizer, g.max_new_tokens, tis_cap=cap)

    def summarize(self, sums):
        return summarize_policy(sums)


def add_collect_metrics(sums: dict, rewards: torch.Tensor, components: dict, groups: list, group_size: int) -> None:
    """Sums over one micro-batch's completions (the loop adds them over micro-batches and processes)."""

    def add(key, value):
        sums[key] = sums.get(key, 0.0) + float(value)

    add("completions", rewards.numel())
    add("reward_sum", rewards.sum())
    add("reward_sq_sum", (rewards**2).sum())
    add("length_sum", sum(len(c.token_ids) for group in groups for c in group))
    add("truncated", sum(c.finish_reason == "length" for group in groups for c in group))
    add("groups", len(groups))
    add("zero_std_groups", zero_std_groups(rewards, group_size).sum())
    for name, values in components.items():
        present = [v for v in values if v is not None]
        add(f"reward/{name}_sum", sum(present))
        add(f"reward/{name}_n", len(present))
