"""KTO losses against hand-computed values, a naive per-example loop, and TRL's own `KTOTrainer._compute_loss`.

Notation: r = log π - log π_ref per completion, z the KL reference point, σ the logistic function. Identity used
below: 1 - σ(x) = σ(-x).

The hand batch: β = 1, two desirable and one undesirable completion with
policy logps (-3, -2, -6) and reference logps (-4, -4, -5), so r = (1, 2, -1); the mismatched (KL) sequences have
policy logps (-5, -6, -7) and reference logps (-5.5, -6.5, -7.5), so z = mean(0.5, 0.5, 0.5) = 0.5.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from torch.testing import assert_close

from alignline.losses.kto import _VARIANTS, KTOLossType, kto_kl, kto_loss, uses_kl

F64 = dict(dtype=torch.float64)
POLICY = torch.tensor([-3.0, -2.0, -6.0], **F64)
REF = torch.tensor([-4.0, -4.0, -5.0], **F64)
LABELS = torch.tensor([True, True, False])
KL_POLICY = torch.tensor([-5.0, -6.0, -7.0], **F64)
KL_REF = torch.tensor([-5.5, -6.5, -7.5], **F64)

SIG_M05 = 0.3775406687981454  # σ(-0.5)
SIG_M15 = 0.18242552380635635  # σ(-1.5)


def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, **F64)


def test_kl_reference_point_hand_computed():
    """z = max(0, mean(0.5, 0.5, 0.5)) = 0.5; with the roles swapped the mean is -0.5, clamped to 0. Detached."""
    p = KL_POLICY.clone().requires_grad_()
    z = kto_kl(p, KL_REF)
    assert_close(z, _scalar(0.5))
    assert not z.requires_grad
    assert_close(kto_kl(KL_REF, KL_POLICY), _scalar(0.0))
    # averaged across processes before the clamp: a process at -0.5 and one at 0.5 give 0
    assert_close(kto_kl(KL_POLICY, KL_REF, mean_across_processes=lambda kl: (kl + (-0.5)) / 2), _scalar(0.0))


def test_kto_hand_computed():
    """Desirable r = 1: 1 - σ(1 - 0.5) = σ(-0.5) = 0.377541; r = 2: σ(-1.5) = 0.182426.
    Undesirable r = -1: 1 - σ(z - r) = 1 - σ(1.5) = σ(-1.5) = 0.182426.
    Mean (0.377541 + 0.182426 + 0.182426) / 3 = 0.247464. Rewards β·r = (1, 2, -1)."""
    out = kto_loss(POLICY, REF, LABELS, kto_kl(KL_POLICY, KL_REF), beta=1.0)
    assert_close(out.losses, torch.tensor([SIG_M05, SIG_M15, SIG_M15], **F64))
    assert_close(out.loss, _scalar(0.24746390547028604))
    assert_close(out.rewards, torch.tensor([1.0, 2.0, -1.0], **F64))
    assert_close(out.kl, _scalar(0.5))


def test_class_weights_and_record_weights_hand_computed():
    """λ_D = 2, λ_U = 1: (2·0.377541 + 2·0.182426 + 0.182426) / 3 = 0.434119 (TRL divides by the count, not by
    the class weights). Record weights (1, 3, 1) on z = 0 (r = 1, 2, -1; undesirable 1 - σ(0 - (-1)) = σ(-1)):
    (σ(-1) + 3σ(-2) + σ(-1)) / 5 = (0.268941 + 3·0.119203 + 0.268941) / 5 = 0.179098."""
    out = kto_loss(POLICY, REF, LABELS, kto_kl(KL_POLICY, KL_REF), beta=1.0, desirable_weight=2.0)
    assert_close(out.losses, torch.tensor([2 * SIG_M05, 2 * SIG_M15, SIG_M15], **F64))
    assert_close(out.loss, _scalar(0.43411930300511997))
    weighted = kto_loss(POLICY, REF, LABELS, _scalar(0.0), beta=1.0, weights=torch.tensor([1.0, 3.0, 1.0], **F64))
    assert_close(weighted.loss, _scalar(0.17909832176126866))


def test_apo_zero_unpaired_hand_computed():
    """No reference point: desirable 1 - σ(r): σ(-1) = 0.268941, σ(-2) = 0.119203; undesirable σ(r) = σ(-1).
    Mean (0.268941 + 0.119203 + 0.268941) / 3 = 0.219029."""
    out = kto_loss(POLICY, REF, LABELS, None, beta=1.0, loss_type="apo_zero_unpaired")
    assert_close(out.loss, _scalar(0.21902858825403596))
    assert_close(out.kl, _scalar(0.0))


def test_gradient_hand_computed():
    """d/dp of σ(-(r - z)) for the first completion: -β σ(0.5) σ(-0.5) / 3 = -0.0783346 (the batch mean);
    the undesirable one: d/dp [1 - σ(z - r)] = +σ(1.5) σ(-1.5) / 3 = +0.0497155. No gradient reaches z."""
    p, kl_p = POLICY.clone().requires_grad_(), KL_POLICY.clone().requires_grad_()
    out = kto_loss(p, REF, LABELS, kto_kl(kl_p, KL_REF), beta=1.0)
    out.loss.backward()
    assert_close(p.grad[0], _scalar(-0.07833457073386484))
    assert_close(p.grad[2], _scalar(0.049715484023444285))
    assert kl_p.grad is None and not out.rewards.requires_grad


def _naive(kind: str, p, r, labels, z, beta, lam_d, lam_u, w) -> float:
    def sig(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    total = 0.0
    for i in range(len(p)):
        ratio = p[i] - r[i]
        if kind == "kto":
            loss = lam_d * (1 - sig(beta * (ratio - z))) if labels[i] else lam_u * (1 - sig(beta * (z - ratio)))
        else:
            loss = lam_d * (1 - sig(beta * ratio)) if labels[i] else lam_u * sig(beta * ratio)
        total += w[i] * loss
    return total / sum(w)


@pytest.mark.parametrize("kind", ["kto", "apo_zero_unpaired"])
def test_matches_naive_loop(kind):
    g = torch.Generator().manual_seed(0)
    p, r = (-10 * torch.rand(7, generator=g, **F64) for _ in range(2))
    labels = torch.rand(7, generator=g) > 0.4
    w = torch.rand(7, generator=g, **F64)
    z = _scalar(0.3) if kind == "kto" else None
    out = kto_loss(p, r, labels, z, beta=0.4, desirable_weight=1.3, undesirable_weight=0.7, loss_type=kind, weights=w)
    expected = _naive(kind, p.tolist(), r.tolist(), labels.tolist(), 0.3, 0.4, 1.3, 0.7, w.tolist())
    assert_close(out.loss, _scalar(expected))


def test_every_loss_type_has_a_table_entry():
    assert set(_VARIANTS) == set(KTOLossType)
    assert uses_kl("kto") and not uses_kl(KTOLossType.APO_ZERO_UNPAIRED)


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((POLICY, REF, LABELS, _scalar(0.0)), {"loss_type": "nope"}, "unknown loss_type 'nope'"),
        ((POLICY, REF, LABELS, None), {}, "needs the KL reference point"),
        ((POLICY, REF, LABELS, _scalar(0.0)), {"loss_type": "apo_zero_unpaired"}, "has no KL reference point"),
        ((POLICY, REF, LABELS.long(), _scalar(0.0)), {}, "labels must be bool"),
        ((POLICY, REF[:2], LABELS, _scalar(0.0)), {}, r"ref_logps must have shape \(3,\)"),
        ((POLICY[:, None], REF, LABELS, _scalar(0.0)), {}, r"shape \(B,\)"),
    ],
)
def test_rejects_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kto_loss(*args, **kwargs)


def test_kl_rejects_empty_and_mismatched():
    with pytest.raises(ValueError, match="M > 0"):
        kto_kl(POLICY[:0], REF[:0])
    with pytest.raises(ValueError, match="ref_kl_logps"):
        kto_kl(POLICY, REF[:2])


# --- TRL's own code on the same batch -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trl_kto_trainer():
    pytest.importorskip("trl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from trl import KTOTrainer
    return KTOTrainer


def _trl_kto_loss(trainer_cls, loss_type, beta, lam_d, lam_u, tokens, labels, ref, kl_policy, kl_ref):
    """TRL 1.16's `KTOTrainer._compute_loss`, unbound, on a stub trainer whose model returns the given per-token
    log-probs `(B, T)` (zeros after each completion). Reference log-probs go in precomputed, as with
    `precompute_ref_log_probs`; the KL sequences' policy log-probs come from a stubbed `_compute_kl_logps`."""
    completion_mask = torch.cat([torch.zeros(len(tokens), 1), (tokens != 0).to(tokens.dtype)], dim=1).long()
    outputs = SimpleNamespace(log_probs=tokens, entropy=torch.zeros_like(tokens), mean_logits=torch.zeros_like(tokens))
    identity = lambda x: x  # noqa: E731
    calculate_kl = loss_type != "apo_zero_unpaired"
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=identity),
        _compute_kl_logps=lambda model, batch: kl_policy if calculate_kl else None,
        aux_loss_enabled=False,
        precompute_ref_logps=True,
        calculate_KL=calculate_kl,
        loss_type=loss_type,
        beta=beta,
        desirable_weight=lam_d,
        undesirable_weight=lam_u,
        _tp_size=1,
        _total_train_tokens=0,
        _metrics=defaultdict(lambda: defaultdict(list)),
    )
    inputs = {
        "input_ids": torch.zeros_like(completion_mask),
        "attention_mask": torch.ones_like(completion_mask),
        "completion_mask": completion_mask,
        "label": labels,
        "ref_logps": ref,
    }
    if calculate_kl:
        inputs["ref_KL_logps"] = kl_ref
    loss = trainer_cls._compute_loss(trainer, lambda **kwargs: outputs, inputs, False)
    return loss, trainer._metrics["train"]


def _random_batch(seed: int, batch: int = 6, max_len: int = 4):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (batch,), generator=g)
    mask = (torch.arange(max_len)[None] < lengths[:, None]).double()
    tokens = (-3 * torch.rand(batch, max_len, generator=g, **F64) - 1e-3) * mask
    ref = tokens.sum(-1) + torch.randn(batch, generator=g, **F64)
    labels = torch.tensor([True, False, True, True, False, False][:batch])
    kl_policy = -3 * max_len * torch.rand(batch, generator=g, **F64)
    return tokens, labels, ref, kl_policy


@pytest.mark.parametrize(
    "loss_type,kl_shift,lam_d,lam_u",
    [
        ("kto", 0.8, 1.0, 1.0),  # z > 0
        ("kto", -0.8, 1.0, 1.0),  # the KL estimate is negative: clamped to 0
        ("kto", 0.5, 1.33, 0.75),  # class weights
        ("apo_zero_unpaired", 0.0, 1.0, 1.0),
        ("apo_zero_unpaired", 0.0, 0.5, 2.0),
    ],
)
def test_matches_trl_kto_trainer(trl_kto_trainer, loss_type, kl_shift, lam_d, lam_u):
    tokens, labels, ref, kl_policy = _random_batch(3)
    kl_ref = kl_policy - kl_shift + 0.1 * torch.randn(len(kl_policy), generator=torch.Generator().manual_seed(4), **F64)
    trl_loss, metrics = _trl_kto_loss(
        trl_kto_trainer, loss_type, 0.3, lam_d, lam_u, tokens, labels, ref, kl_policy, kl_ref
    )
    kl = kto_kl(kl_policy, kl_ref) if uses_kl(loss_type) else None
    out = kto_loss(
        tokens.sum(-1), ref, labels, kl, beta=0.3, desirable_weight=lam_d, undesirable_weight=lam_u, loss_type=loss_type
    )
    assert_close(out.loss, trl_loss, atol=1e-6, rtol=1e-6)
    assert metrics["kl"][0] == pytest.approx(out.kl.item(), abs=1e-6)
    if kl_shift < 0:
        assert out.kl.item() == 0.0
    assert metrics["rewards/chosen"][0] == pytest.approx(out.rewards[labels].mean().item(), abs=1e-6)
    assert metrics["rewards/rejected"][0] == pytest.approx(out.rewards[~labels].mean().item(), abs=1e-6)
    assert metrics["logps/chosen"][0] == pytest.approx(tokens.sum(-1)[labels].mean().item(), abs=1e-6)


def test_matches_trl_with_one_kind_only(trl_kto_trainer):
    """A batch with no undesirable completion: TRL concatenates an empty tensor; the mean is over the desirable."""
    tokens, _, ref, kl_policy = _random_batch(5, batch=3)
    labels = torch.ones(3, dtype=torch.bool)
    trl_loss, _ = _trl_kto_loss(trl_kto_trainer, "kto", 0.2, 1.0, 1.0, tokens, labels, ref, kl_policy, kl_policy - 1)
    out = kto_loss(tokens.sum(-1), ref, labels, kto_kl(kl_policy, kl_policy - 1), beta=0.2)
    assert_close(out.loss, trl_loss, atol=1e-6, rtol=1e-6)
