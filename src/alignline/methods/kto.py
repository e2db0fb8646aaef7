"""KTO (`method: kto`): the policy learns from unpaired feedback, each completion marked desirable or not.

The loss is a pure function in `losses/kto.py`; this module gets it its inputs, as `methods/dpo.py` does for DPO and
with DPO's machinery (`DPOModel`): sequence log-probs of each completion under the policy and the reference, the
reference being the base with its adapters switched off under LoRA (no second copy in memory), or a frozen copy of
the starting policy for full fine-tuning.

The KL reference point `z` (loss_type `kto`) is estimated as TRL estimates it: within each micro-batch, prompt i is
paired with completion i-1 (a rotation, so the mismatched completions are the batch's own), and `z` is the mean of
policy minus reference log-probs of those sequences, averaged over processes, clamped at 0 and detached. The
mismatched sequences are packed into the same rows as the real ones and go through the same forward pass (one
forward instead of TRL's two; the backward pass then also runs over their positions, with zero gradient).

What differs from TRL, and why:
- Training batches are shuffled (TRL samples in file order so that each example's mismatched partner is fixed in
  advance); partners are drawn within each shuffled micro-batch instead, so they change from epoch to epoch.
  Evaluation batches keep the file's order, as TRL's do: a file holding the two halves of a pair side by side pairs
  a prompt with its own other answer there (`scripts/unpair_preferences.py` shuffles for that reason).
- `z` is a per-micro-batch estimate, as in TRL. With gradient accumulation, batch 4 x accumulation 1 and batch 2 x
  accumulation 2 therefore pair different completions and see different `z` once the policy has left the reference;
  everything else (the loss is the weighted mean over all completions of the step, through `count`) is invariant.
- A record's `weight` scales its loss: `Σ w·λ·l / Σ w`, TRL's mean when all weights are 1.

Logged, with TRL's names: `loss`, `rewards/chosen` and `rewards/rejected` (mean implicit reward `β(log π - log π_ref)`
of the desirable and undesirable completions), `rewards/margins`, `logps/chosen`, `logps/rejected`, `kl` (the mean
`z` over micro-batches), and the counts `desirable` and `undesirable`. Early stopping watches the held-out loss.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import torch

from alignline.config import RunConfig
from alignline.data.dataset import DataReportBase, load_split, settle_record_reasoning
from alignline.data.packing import BatchPlan, collate_sequences, single_rows
from alignline.data.unpaired import (
    UnpairedExample,
    kl_examples,
    load_unpaired,
    tokenize_unpaired,
)
from alignline.errors import DataError
from alignline.losses.kto import kto_kl, kto_loss, uses_kl
from alignline.methods.base import NoExtraHooks, Prepared
from alignline.models.reference import DPOModel, frozen_reference


@dataclass
class UnpairedReport(DataReportBase):
    """Unpaired completions (`dropped`: records whose prompt alone fills max_length; `truncated`: completions cut)."""

    json_names: ClassVar[dict[str, str]] = {"truncated": "truncated_sequences"}

    desirable: int = 0
    """Desirable completions in the training set."""
    undesirable: int = 0


def balance_warning(desirable: int, undesirable: int, desirable_weight: float, undesirable_weight: float) -> str | None:
    """The KTO paper's eq. 8: λ_D n_D / (λ_U n_U) should lie in [1, 4/3]. A message with the ranges for either weight
    that would satisfy it (as TRL warns), or None when it holds or the counts are equal."""
    if not desirable or not undesirable:
        kind = "desirable" if desirable else "undesirable"
        return (
            f"every training completion is {kind}: KTO trains on it, but the policy is only pushed one way, "
            "held back by nothing but the KL reference point"
        )
    if desirable == undesirable:
        return None
    d_low, d_high = undesirable * undesirable_weight / desirable, undesirable * undesirable_weight / desirable * 4 / 3
    u_low, u_high = desirable * desirable_weight / undesirable * 3 / 4, desirable * desirable_weight / undesirable
    if d_low <= desirable_weight <= d_high or u_low <= undesirable_weight <= u_high:
        return None
    return (
        f"{desirable} desirable and {undesirable} undesirable completions, and kto.desirable_weight / "
        f"undesirable_weight do not balance them (KTO paper, eq. 8): set EITHER desirable_weight in "
        f"[{d_low:.2f}, {d_high:.2f}] OR undesirable_weight in [{u_low:.2f}, {u_high:.2f}]"
    )


def prepare_unpaired(cfg: RunConfig, tokenizer) -> Prepared:
    t, report = cfg.training, UnpairedReport()
    train_records, held = load_split(cfg, load_unpaired, report.sources, unit="records")
    settle_record_reasoning(tokenizer, train_records + held, cfg.data.reasoning)

    def tokenize(records) -> list[UnpairedExample]:
        out = []
        for record in records:
            unit = tokenize_unpaired(tokenizer, record, t.max_length)
            if unit is None:
                report.dropped += 1
                continue
            report.truncated += unit.example.truncated > 0
            out.append(unit)
        return out

    train, evals = tokenize(train_records), tokenize(held)
    if not train:
        raise DataError(
            cfg.data.train[0].path, f"no record has a completion token left within max_length {t.max_length}"
        )
    report.train_units, report.eval_units = len(train), len(evals)
    report.desirable = sum(u.label for u in train)
    report.undesirable = len(train) - report.desirable
    report.train_tokens = sum(len(u.example.input_ids) for u in train)
    # Judged on the whole training set, not per file: good.jsonl and bad.jsonl as two sources is a normal set-up.
    message = balance_warning(
        report.desirable, report.undesirable, cfg.kto.desirable_weight, cfg.kto.undesirable_weight
    )
    if message:
        warnings.warn(message, stacklevel=2)
    return Prepared(train, evals, report)


def mean_across_processes(value: torch.Tensor) -> torch.Tensor:
    """A scalar averaged over the processes of a distributed run (itself when there is one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


@dataclass
class KTO(NoExtraHooks):
    _cfg: RunConfig
    name: str = "kto"
    model_kind: str = "causal_lm"
    early_stopping: tuple[str, str] = ("eval_loss", "min")

    def prepare(self, cfg, tokenizer, progress):
        return prepare_unpaired(cfg, tokenizer)

    def plan(self, units, cfg, shuffle_seed):
        if not units:
            return None
        return BatchPlan(
            single_rows(len(units)),
            [len(u.example.input_ids) for u in units],
            cfg.training.batch_size,
            seed=shuffle_seed or 0,
            shuffle=shuffle_seed is not None,
        )

    def collate(self, units, rows, pad_id):
        """B completions, then (loss_type kto) their B mismatched sequences, packed together: S = B or 2B."""
        items = [units[i] for row in rows for i in row]
        max_length = self._cfg.training.max_length
        sequences = [u.example for u in items]
        if uses_kl(self._cfg.kto.loss_type):
            sequences += kl_examples(items, max_length)
        batch = collate_sequences(sequences, max_length, pad_id)
        batch["label"] = torch.tensor([u.label for u in items], dtype=torch.bool)
        batch["weight"] = torch.tensor([u.weight for u in items], dtype=torch.float32)
        return batch

    def count(self, batch):
        return float(batch["weight"].sum())

    def wrap(self, model, cfg):
        return DPOModel(
            model, frozen_reference(model, None, cfg.training.dtype), reference_free=False, fast=cfg.training.fast_path
        )

    def loss(self, model, batch, normalizer):
        k = self._cfg.kto
        policy, ref, _ = model(**batch)  # (S,) each
        labels, weights = batch["label"], batch["weight"]
        n = labels.numel()
        kl = None
        if uses_kl(k.loss_type):
            # Across processes only while training: there every process runs the same number of micro-batches,
            # while evaluation splits the batches unevenly and a collective there could wait forever.
            kl = kto_kl(policy[n:], ref[n:], mean_across_processes if model.training else None)
        out = kto_loss(
            policy[:n],
            ref[:n],
            labels,
            kl,
            beta=k.beta,
            desirable_weight=k.desirable_weight,
            undesirable_weight=k.undesirable_weight,
            loss_type=k.loss_type,
        )
        loss = (out.losses * weights).sum() / normalizer
        logps = policy[:n].detach()
        sums = {
            "loss_sum": float((out.losses.detach() * weights).sum()),
            "weight_sum": float(weights.sum()),
            "desirable": float(labels.sum()),
            "undesirable": float((~labels).sum()),
            "chosen_reward_sum": float(out.rewards[labels].sum()),
            "rejected_reward_sum": float(out.rewards[~labels].sum()),
            "chosen_logp_sum": float(logps[labels].sum()),
            "rejected_logp_sum": float(logps[~labels].sum()),
            "kl_sum": float(out.kl),
            "micro_batches": 1.0,
        }
        return loss, sums

    def summarize(self, sums):
        out = {"loss": sums.get("loss_sum", 0.0) / max(sums.get("weight_sum", 0.0), 1e-12)}
        desirable, undesirable = sums.get("desirable", 0.0), sums.get("undesirable", 0.0)
        if desirable:
            out["rewards/chosen"] = sums["chosen_reward_sum"] / desirable
            out["logps/chosen"] = sums["chosen_logp_sum"] / desirable
        if undesirable:
            out["rewards/rejected"] = sums["rejected_reward_sum"] / undesirable
            out["logps/rejected"] = sums["rejected_logp_sum"] / undesirable
        if desirable and undesirable:
            out["rewards/margins"] = out["rewards/chosen"] - out["rewards/rejected"]
        out["kl"] = sums.get("kl_sum", 0.0) / max(sums.get("micro_batches", 0.0), 1.0)
        out["desirable"], out["undesirable"] = desirable, undesirable
        return out
