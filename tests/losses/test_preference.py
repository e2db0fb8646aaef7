"""Preference losses against hand-computed values, a naive per-pair loop, and TRL's own code on the same batch.

Notation: x = βΔ with Δ = (pc - rc) - (pr - rr); l(x) = -log σ(x) = log(1 + e^-x). Useful identity:
l(-x) = l(x) + x, since log σ(x) - log σ(-x) = x.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from torch.testing import assert_close

from alignline.losses.preference import (
    _LOSSES,
    _SMOOTHING_RANGE,
    DPOLossType,
    DPOOutput,
    dpo_loss,
    preference_metrics,
    sequence_logps,
)
from support import reorder_tolerance

# The brief's pair: β = 0.1, pc = -1, pr = -2, rc = rr = -1.5, so Δ = 0.5 - (-0.5) = 1 and x = 0.1.
PAIR = [torch.tensor([v], dtype=torch.float64) for v in (-1.0, -2.0, -1.5, -1.5)]
L_01 = 0.6443966600735709  # l(0.1) = log(1 + e^-0.1) = log(1.904837418) = 0.644396660


def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def test_sigmoid_hand_computed():
    """l(0.1) = 0.644397; rewards 0.1·(-1 + 1.5) = 0.05 and 0.1·(-2 + 1.5) = -0.05."""
    out = dpo_loss(*PAIR, beta=0.1)
    assert_close(out.loss, _scalar(L_01))
    assert_close(out.chosen_rewards, torch.tensor([0.05], dtype=torch.float64))
    assert_close(out.rejected_rewards, torch.tensor([-0.05], dtype=torch.float64))


def test_conservative_dpo_hand_computed():
    """ε = 0.1: 0.9·l(0.1) + 0.1·l(-0.1) = 0.9·l(0.1) + 0.1·(l(0.1) + 0.1) = l(0.1) + 0.01 = 0.654397."""
    out = dpo_loss(*PAIR, beta=0.1, label_smoothing=0.1)
    assert_close(out.loss, _scalar(L_01 + 0.01))


def test_robust_dpo_hand_computed():
    """ε = 0.1: (0.9·l(0.1) - 0.1·l(-0.1)) / 0.8 = (0.8·l(0.1) - 0.01) / 0.8 = l(0.1) - 0.0125 = 0.631897.

    At ε = 0 it is plain DPO."""
    assert_close(dpo_loss(*PAIR, beta=0.1, loss_type="robust", label_smoothing=0.1).loss, _scalar(L_01 - 0.0125))
    assert_close(dpo_loss(*PAIR, beta=0.1, loss_type="robust").loss, _scalar(L_01))


def test_ipo_and_hinge_hand_computed():
    """IPO: (Δ - 1/(2β))² = (1 - 5)² = 16. Hinge: max(0, 1 - 0.1) = 0.9."""
    assert_close(dpo_loss(*PAIR, beta=0.1, loss_type="ipo").loss, _scalar(16.0))
    assert_close(dpo_loss(*PAIR, beta=0.1, loss_type=DPOLossType.HINGE).loss, _scalar(0.9))


def test_simpo_hand_computed():
    """β = 2, γ = 0.5, pc = -0.5, pr = -0.8 (length-normalized): l(2·0.3 - 0.5) = l(0.1); rewards 2·pc, 2·pr."""
    pc, pr = torch.tensor([-0.5], dtype=torch.float64), torch.tensor([-0.8], dtype=torch.float64)
    out = dpo_loss(pc, pr, None, None, beta=2.0, loss_type="simpo", simpo_gamma=0.5)
    assert_close(out.loss, _scalar(L_01))
    assert_close(out.chosen_rewards, torch.tensor([-1.0], dtype=torch.float64))
    assert_close(out.rejected_rewards, torch.tensor([-1.6], dtype=torch.float64))
    smoothed = dpo_loss(pc, pr, None, None, beta=2.0, loss_type="simpo", simpo_gamma=0.5, label_smoothing=0.1)
    assert_close(smoothed.loss, _scalar(L_01 + 0.01))


def test_weights_and_rpo_hand_computed():
    """Pair 1 is PAIR (l = l(0.1)); pair 2 swaps chosen and rejected (x = -0.1, l = l(0.1) + 0.1).

    weights (3, 1): (3·l(0.1) + l(0.1) + 0.1) / 4 = l(0.1) + 0.025.
    RPO α = 0.5, chosen NLL (2, 4): per pair l + 1 and l + 0.1 + 2; weighted (3·1 + 2) / 4 = 1.25 on top.
    """
    pairs = ([-1.0, -2.0], [-2.0, -1.0], [-1.5, -1.5], [-1.5, -1.5])
    pc, pr, rc, rr = (torch.tensor(v, dtype=torch.float64) for v in pairs)
    w = torch.tensor([3.0, 1.0], dtype=torch.float64)
    assert_close(dpo_loss(pc, pr, rc, rr, weights=w).loss, _scalar(L_01 + 0.025))
    nll = torch.tensor([2.0, 4.0], dtype=torch.float64)
    out = dpo_loss(pc, pr, rc, rr, weights=w, rpo_alpha=0.5, chosen_nll=nll)
    assert_close(out.losses, torch.tensor([L_01 + 1.0, L_01 + 0.1 + 2.0], dtype=torch.float64))
    assert_close(out.loss, _scalar(L_01 + 0.025 + 1.25))
    zero = dpo_loss(pc, pr, rc, rr, weights=torch.zeros(2, dtype=torch.float64)).loss
    assert_close(zero, _scalar(0.0))  # an all-zero-weight batch contributes nothing rather than NaN


def test_sigmoid_gradient_hand_computed():
    """d l(βΔ) / d pc = -β σ(-βΔ) = -0.1 · σ(-0.1) = -0.1 · 0.4750208 = -0.04750208; d/d pr is the opposite.

    Rewards are detached so logging them cannot leak into the graph."""
    pc, pr = PAIR[0].clone().requires_grad_(), PAIR[1].clone().requires_grad_()
    out = dpo_loss(pc, pr, PAIR[2], PAIR[3], beta=0.1)
    out.loss.backward()
    assert_close(pc.grad, torch.tensor([-0.04750208125210601], dtype=torch.float64))
    assert_close(pr.grad, torch.tensor([0.04750208125210601], dtype=torch.float64))
    assert not out.chosen_rewards.requires_grad


def _naive_pair_loss(kind: str, pc, pr, rc, rr, beta, eps, gamma) -> float:
    def softplus_neg(x: float) -> float:
        return math.log1p(math.exp(-x))

    if kind == "simpo":
        x = beta * (pc - pr) - gamma
        return (1 - eps) * softplus_neg(x) + eps * softplus_neg(-x)
    delta = (pc - rc) - (pr - rr)
    x = beta * delta
    return {
        "sigmoid": (1 - eps) * softplus_neg(x) + eps * softplus_neg(-x),
        "robust": ((1 - eps) * softplus_neg(x) - eps * softplus_neg(-x)) / (1 - 2 * eps),
        "ipo": (delta - 1 / (2 * beta)) ** 2,
        "hinge": max(0.0, 1 - x),
    }[kind]


@pytest.mark.parametrize(
    "kind,eps", [("sigmoid", 0.0), ("sigmoid", 0.2), ("robust", 0.2), ("ipo", 0.0), ("hinge", 0.0), ("simpo", 0.1)]
)
def test_matches_naive_loop(kind, eps):
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-10 * torch.rand(6, generator=g, dtype=torch.float64) for _ in range(4))
    w = torch.rand(6, generator=g, dtype=torch.float64)
    nll = torch.rand(6, generator=g, dtype=torch.float64)
    refs = (None, None) if kind == "simpo" else (rc, rr)
    out = dpo_loss(
        pc,
        pr,
        *refs,
        beta=0.3,
        loss_type=kind,
        label_smoothing=eps,
        weights=w,
        rpo_alpha=0.7,
        chosen_nll=nll,
        simpo_gamma=0.4,
    )
    per_pair = [
        _naive_pair_loss(kind, *(t[i].item() for t in (pc, pr, rc, rr)), 0.3, eps, 0.4) + 0.7 * nll[i].item()
        for i in range(6)
    ]
    total = sum(w[i].item() * per_pair[i] for i in range(6)) / sum(w.tolist())
    assert_close(out.losses, torch.tensor(per_pair, dtype=torch.float64))
    assert_close(out.loss, _scalar(total))


def test_every_loss_type_has_a_table_entry():
    assert set(_LOSSES) == set(DPOLossType) == set(_SMOOTHING_RANGE)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"loss_type": "nope"}, "unknown loss_type 'nope'"),
        ({"loss_type": "robust", "label_smoothing": 0.5}, r"must be \[0, 0.5\)"),
        ({"loss_type": "ipo", "label_smoothing": 0.1}, "exactly 0"),
        ({"loss_type": "simpo"}, "reference-free"),
        ({"rpo_alpha": 1.0}, "chosen_nll"),
        ({"weights": torch.ones(2, dtype=torch.float64)}, r"weights must have shape \(1,\)"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dpo_loss(*PAIR, **kwargs)


def test_rejects_missing_refs_and_broadcasting_shapes():
    with pytest.raises(ValueError, match="needs both"):
        dpo_loss(PAIR[0], PAIR[1], None, None)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        dpo_loss(PAIR[0][:, None], PAIR[1][:, None], PAIR[2], PAIR[3])


def test_preference_metrics():
    """Rewards (0.05, 0) vs (-0.05, 0): one win and one tie -> accuracy 0.75; margins 0.1 and 0 -> 0.05."""
    out = DPOOutput(
        loss=torch.tensor(0.5),
        losses=torch.zeros(2),
        chosen_rewards=torch.tensor([0.05, 0.0]),
        rejected_rewards=torch.tensor([-0.05, 0.0]),
    )
    metrics = preference_metrics(out)
    assert metrics == pytest.approx(
        {
            "loss": 0.5,
            "rewards/accuracy": 0.75,
            "rewards/margin": 0.05,
            "rewards/chosen": 0.025,
            "rewards/rejected": -0.025,
        }
    )


def test_sequence_logps_hand_computed():
    """Vocabulary 2, logits all zero: every token has log-prob log(1/2) = -0.693147.

    labels [-100, 1, 0, -100]: after the shift, labels[1:] = [1, 0, -100] -> 2 counted tokens.
    Sum 2·log(1/2) = -1.386294; mean -0.693147. A row with nothing counted gives 0.
    """
    logits = torch.zeros(2, 4, 2)
    labels = torch.tensor([[-100, 1, 0, -100], [-100, -100, -100, -100]])
    assert_close(sequence_logps(logits, labels), torch.tensor([2 * math.log(0.5), 0.0]))
    assert_close(sequence_logps(logits, labels, average=True), torch.tensor([math.log(0.5), 0.0]))


def test_sequence_logps_matches_naive_loop_and_handles_bf16():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 6, 7, generator=g)
    labels = torch.randint(0, 7, (3, 6), generator=g)
    labels[0, :3] = -100
    labels[2, 4:] = -100
    expected = []
    for b in range(3):
        total = 0.0
        for t in range(1, 6):
            if labels[b, t] != -100:
                row = logits[b, t - 1].tolist()
                total += row[labels[b, t]] - math.log(sum(math.exp(v) for v in row))
        expected.append(total)
    assert_close(sequence_logps(logits, labels), torch.tensor(expected))
    half = sequence_logps(logits.bfloat16(), labels)
    assert half.dtype == torch.float32
    assert_close(half, sequence_logps(logits.bfloat16().float(), labels))
    with pytest.raises(ValueError, match="disagree"):
        sequence_logps(logits, labels[:, :-1])


# --- TRL's own code on the same batch -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trl_trainers():
    pytest.importorskip("trl")
    from trl import DPOTrainer

    with warnings.catch_warnings():  # trl.experimental warns on import that its APIs may change
        warnings.simplefilter("ignore")
        from trl.experimental.cpo import CPOTrainer

    return DPOTrainer, CPOTrainer


def _trl_dpo_loss(dpo_trainer, loss_types, loss_weights, beta, eps, pc_tokens, pr_tokens, rc, rr):
    """TRL 1.16's `DPOTrainer._compute_loss` on a stub model whose per-token log-probs are given.

    `p*_tokens` are `(B, T)` per-token policy log-probs with zeros after each completion; the first column of the
    completion mask is the prompt. Reference log-probs go in precomputed, as `precompute_ref_log_probs` does.
    """
    tokens = torch.cat([pc_tokens, pr_tokens])
    completion_mask = torch.cat([torch.zeros(len(tokens), 1), (tokens != 0).to(tokens.dtype)], dim=1).long()
    outputs = SimpleNamespace(
        log_probs=tokens,
        entropy=torch.zeros_like(tokens),
        mean_logits=torch.zeros_like(tokens),
        is_top1=torch.zeros_like(tokens, dtype=torch.bool),
    )
    identity = lambda x: x  # noqa: E731
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=identity, gather=identity),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        ref_model=None,
        f_divergence_type="reverse_kl",
        loss_types=loss_types,
        loss_weights=loss_weights,
        beta=beta,
        label_smoothing=eps,
        use_weighting=False,
        args=SimpleNamespace(),
        _tp_size=1,
        _total_train_tokens=0,
        _metrics=defaultdict(lambda: defaultdict(list)),
    )
    inputs = {
        "input_ids": torch.zeros_like(completion_mask),
        "attention_mask": torch.ones_like(completion_mask),
        "completion_mask": completion_mask,
        "ref_chosen_logps": rc,
        "ref_rejected_logps": rr,
    }
    loss = dpo_trainer._compute_loss(trainer, lambda **kwargs: outputs, inputs, False)
    return loss, trainer._metrics["train"]


def _random_batch(seed: int, batch: int = 5, max_len: int = 4):
    """Per-token log-probs (B, T) with completion lengths 1..T and their summed sequence log-probs."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (2, batch), generator=g)
    mask = (torch.arange(max_len)[None, None] < lengths[..., None]).double()
    tokens = -3 * torch.rand(2, batch, max_len, generator=g, dtype=torch.float64) * mask - 1e-3 * mask
    refs = -3 * max_len * torch.rand(2, batch, generator=g, dtype=torch.float64)
    return tokens, lengths, refs


@pytest.mark.parametrize("kind,eps", [("sigmoid", 0.0), ("robust", 0.1), ("robust", 0.3), ("hinge", 0.0)])
def test_matches_trl_dpo_trainer(trl_trainers, kind, eps):
    (pc_tok, pr_tok), _, (rc, rr) = _random_batch(2)
    trl_loss, metrics = _trl_dpo_loss(trl_trainers[0], [kind], [1.0], 0.2, eps, pc_tok, pr_tok, rc, rr)
    out = dpo_loss(pc_tok.sum(-1), pr_tok.sum(-1), rc, rr, beta=0.2, loss_type=kind, label_smoothing=eps)
    assert_close(out.loss, trl_loss, atol=1e-6, rtol=1e-6)
    assert metrics["rewards/chosen"][0] == pytest.approx(out.chosen_rewards.mean().item(), abs=1e-6)
    assert metrics["rewards/margins"][0] == pytest.approx(preference_metrics(out)["rewards/margin"], abs=1e-6)


def test_matches_trl_ipo_on_length_normalized_logps(trl_trainers):
    """TRL divides each log-ratio by its completion length before IPO's square; alignline takes Δ as given,
    so the same number comes out when the caller passes per-token means (`sequence_logps(..., average=True)`)."""
    (pc_tok, pr_tok), (n_c, n_r), (rc, rr) = _random_batch(3)
    trl_loss, _ = _trl_dpo_loss(trl_trainers[0], ["ipo"], [1.0], 0.2, 0.0, pc_tok, pr_tok, rc, rr)
    out = dpo_loss(pc_tok.sum(-1) / n_c, pr_tok.sum(-1) / n_r, rc / n_c, rr / n_r, beta=0.2, loss_type="ipo")
    assert_close(out.loss, trl_loss, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(
        dpo_loss(pc_tok.sum(-1), pr_tok.sum(-1), rc, rr, beta=0.2, loss_type="ipo").loss, trl_loss
    )


def test_matches_trl_rpo_via_sft_loss_type(trl_trainers):
    """TRL 1.16 spells RPO as loss_type=["sigmoid", "sft"] with loss_weights [1, α]. Its NLL is a token mean over
    the whole batch, which equals the mean of per-pair means only when lengths agree: one token each here."""
    (pc_tok, pr_tok), _, (rc, rr) = _random_batch(4, max_len=1)
    trl_loss, _ = _trl_dpo_loss(trl_trainers[0], ["sigmoid", "sft"], [1.0, 0.6], 0.2, 0.0, pc_tok, pr_tok, rc, rr)
    pc = pc_tok.sum(-1)
    out = dpo_loss(pc, pr_tok.sum(-1), rc, rr, beta=0.2, rpo_alpha=0.6, chosen_nll=-pc)
    assert_close(out.loss, trl_loss, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "kind,eps", [("sigmoid", 0.1), ("sigmoid", 0.0), ("simpo", 0.0), ("simpo", 0.2), ("ipo", 0.0), ("hinge", 0.0)]
)
def test_matches_trl_cpo_loss(trl_trainers, kind, eps):
    """TRL's DPOTrainer no longer smooths `sigmoid`; conservative DPO is checked against `CPOTrainer.cpo_loss`,
    whose sigmoid is the same smoothed logistic on `pc - pr`: feed it the log-ratios `pc - rc` and `pr - rr`."""
    g = torch.Generator().manual_seed(5)
    pc, pr, rc, rr = (-5 * torch.rand(6, generator=g, dtype=torch.float64) for _ in range(4))
    cpo = SimpleNamespace(
        alpha=0.0,
        accelerator=SimpleNamespace(device=torch.device("cpu")),
        loss_type=kind,
        simpo_gamma=0.4,
        beta=1.5 if kind == "simpo" else 0.2,
        label_smoothing=eps,
    )
    if kind == "simpo":
        trl_losses, trl_chosen, trl_rejected = trl_trainers[1].cpo_loss(cpo, pc, pr)
        out = dpo_loss(pc, pr, None, None, beta=1.5, loss_type=kind, label_smoothing=eps, simpo_gamma=0.4)
    else:
        trl_losses, trl_chosen, trl_rejected = trl_trainers[1].cpo_loss(cpo, pc - rc, pr - rr)
        out = dpo_loss(pc, pr, rc, rr, beta=0.2, loss_type=kind, label_smoothing=eps)
    assert_close(out.losses, trl_losses, atol=1e-6, rtol=1e-6)
    assert_close(out.chosen_rewards, trl_chosen, atol=1e-6, rtol=1e-6)
    assert_close(out.rejected_rewards, trl_rejected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("average", [False, True])
def test_sequence_logps_matches_trl_get_batch_logps(trl_trainers, average):
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(3, 8, 11, generator=g)
    labels = torch.randint(0, 11, (3, 8), generator=g)
    labels[:, :3] = -100
    labels[1, 6:] = -100
    expected = trl_trainers[1].get_batch_logps(logits, labels, average_log_prob=average)
    # float32 sums of <= 8 token log-probs, each a log-softmax over 11 logits, in TRL's order and ours
    tol = reorder_tolerance(expected.abs().max().item(), terms=8 + 11)
    assert_close(sequence_logps(logits, labels, average=average), expected, atol=tol, rtol=1e-6)
