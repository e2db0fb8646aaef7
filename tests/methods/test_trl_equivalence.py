"""An independent reference: alignline's DPO and reward-model numbers equal TRL's on the same model and batch.

Same tiny random Llama (float32), same tokenizer, same token ids. alignline goes through its own path: pairs ->
`tokenize_pair` -> `DPO.collate` (chosen and rejected packed padding-free into rows, positions restarting per
sequence) -> `DPOModel` (fused chunked log-probs) -> `DPO.loss`; and `RewardModeling.collate` -> `RewardModel`
-> `RewardModeling.loss`. TRL 1.16 goes through a real `DPOTrainer` / `RewardTrainer`: its collators (right
padding, attention masks), `DPOTrainer.compute_ref_log_probs` (the concatenated forward with TRL's fused LM head,
summed over the completion), `DPOTrainer.compute_loss` and `RewardTrainer.compute_loss` (HF's sequence classifier,
pooled at the last non-pad token).

The reference model differs from the policy (perturbed weights), so the DPO loss is not the uninformative log 2.
Completions are kept short: a sequence log-prob above 64 in magnitude has a float32 spacing of 7.6e-6, so sums of
many tokens could not be compared within 1e-5 by any implementation.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from trl import DPOConfig as TRLDPOConfig  # noqa: E402
from trl import DPOTrainer, RewardTrainer  # noqa: E402
from trl import RewardConfig as TRLRewardConfig  # noqa: E402

from alignline.config import load_config  # noqa: E402
from alignline.data.preference import to_pairs, tokenize_pair  # noqa: E402
from alignline.data.templates import IGNORE  # noqa: E402
from alignline.methods.dpo import DPO  # noqa: E402
from alignline.methods.rm import RewardModeling  # noqa: E402
from alignline.models.reward_model import RewardModel  # noqa: E402
from support import assistant as _a  # noqa: E402
from support import reorder_tolerance, tiny_architecture, tiny_llama, tiny_tokenizer  # noqa: E402
from support import user as _u  # noqa: E402

TOL = 1e-5  # values of order 1 (rewards, losses): ~80 float32 ulp, over the few dozen terms reordered behind each
BETA = 0.5


# Chat-format pairs of different prompt and answer lengths; one with a system turn, one with earlier turns.
RECORDS = [
    {"prompt": [_u("What is two plus two?")], "chosen": [_a("Four.")], "rejected": [_a("Label: positive")]},
    {
        "prompt": [{"role": "system", "content": "Be brief."}, _u("Summarize the text in one sentence.")],
        "chosen": [_a("I am fine.")],
        "rejected": [_a("No.")],
    },
    {
        "prompt": [_u("Hello, how are you today?"), _a("I am fine, thank you."), _u("And the capital of France?")],
        "chosen": [_a("Paris")],
        "rejected": [_a("def add(a, b)")],
    },
    {"prompt": [_u("Rewrite the sentence to be formal.")], "chosen": [_a("Answer: Paris")], "rejected": [_a("Hello")]},
]
MARGINS = [0.0, 0.7, -0.3, 1.5]


def _target_tokens(example) -> list[int]:
    return [t for t in example.targets if t != IGNORE]


def _first_target_input(example) -> int:
    """Index of the first input token that is a target (the first answer token)."""
    return next(i for i, t in enumerate(example.targets) if t != IGNORE) + 1


def _trl_dpo_features(unit) -> dict:
    """alignline's token ids in the layout TRL's DPO collator takes: the shared prompt, then each side's targets.

    The sequences end at the last target token: what the template writes after the end-of-turn token is context
    in alignline, and being last it changes no earlier log-prob under causal attention."""
    start = _first_target_input(unit.chosen)
    assert unit.rejected.input_ids[:start] == unit.chosen.input_ids[:start]
    assert _first_target_input(unit.rejected) == start

    def completion(example):
        end = max(i for i, t in enumerate(example.targets) if t != IGNORE) + 2
        assert example.input_ids[start:end] == _target_tokens(example)  # targets are one contiguous span
        return example.input_ids[start:end]

    return {
        "prompt_ids": unit.chosen.input_ids[:start],
        "chosen_ids": completion(unit.chosen),
        "rejected_ids": completion(unit.rejected),
    }


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny matmuls gain nothing from a second thread and lose a lot on a busy machine; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def units(tok):
    pairs = [
        p for i, r in enumerate(RECORDS) for p in to_pairs({**r, "margin": MARGINS[i]}, "pairs.jsonl", f"line {i + 1}")
    ]
    out = [tokenize_pair(tok, p, 512) for p in pairs]
    for u in out:  # short answers keep every summed log-prob representable to 1e-5 in float32
        assert 2 <= len(_target_tokens(u.chosen)) <= 10 and 2 <= len(_target_tokens(u.rejected)) <= 10
    return out


@pytest.fixture(scope="module", params=["llama", "cohere", "granite"])
def models(request, tok, tmp_path_factory):
    """(policy, reference, reference directory): the reference is the policy with every weight perturbed.
    Cohere scales its logits and Granite divides them: the fused head must do as their forwards do."""
    if request.param == "llama":
        policy = tiny_llama(len(tok), seed=0).float().eval()
    else:
        scale = {"logit_scale": 2.0} if request.param == "cohere" else {}  # any scale but 1 shows the bug
        policy = tiny_architecture(
            request.param, dtype=torch.float32, vocab_size=len(tok), initializer_range=0.02, **scale
        ).eval()
    reference = copy.deepcopy(policy)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    ref_dir = tmp_path_factory.mktemp("reference") / "model"
    reference.save_pretrained(ref_dir, safe_serialization=True)
    tok.save_pretrained(ref_dir)
    return policy, reference, ref_dir


@pytest.fixture(scope="module")
def dpo_trainer(tok, models, tmp_path_factory):
    policy, reference, _ = models
    args = TRLDPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl_dpo")),
        report_to=[],
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        beta=BETA,
        max_length=None,
        loss_type=["sigmoid"],
        per_device_train_batch_size=len(RECORDS),
        logging_steps=1,
    )
    trainer = DPOTrainer(
        model=copy.deepcopy(policy),
        ref_model=copy.deepcopy(reference),
        args=args,
        train_dataset=datasets.Dataset.from_list(RECORDS),
        processing_class=tok,
    )
    trainer.model.eval()
    return trainer


def test_trl_tokenizes_the_same_ids(dpo_trainer, units, tok):
    """TRL's own tokenization of the same records gives alignline's ids; its completion is alignline's targets
    (answer + end-of-turn) plus the newline the template writes after the end-of-turn token."""
    assert len(dpo_trainer.train_dataset) == len(units)
    for row, unit in zip(dpo_trainer.train_dataset, units):
        start = _first_target_input(unit.chosen)
        assert row["prompt_ids"] == unit.chosen.input_ids[:start]
        for side, example in (("chosen_ids", unit.chosen), ("rejected_ids", unit.rejected)):
            assert row["prompt_ids"] + row[side] == example.input_ids
            assert row[side][:-1] == _target_tokens(example)
            assert tok.decode(row[side][-1:]) == "\n" and tok.decode(row[side][-2:-1]) == tok.eos_token


def _alignline_dpo(models, units, pad_id, width):
    """alignline: sequence log-probs (policy, reference) and the loss, reference loaded from its directory."""
    policy, _, ref_dir = models
    cfg = load_config(
        None, ["method=dpo", f"dpo.beta={BETA}", f"dpo.ref_model={ref_dir}", f"training.max_length={width}"]
    )
    method = DPO(cfg)
    batch = method.collate(units, [list(range(len(units)))], pad_id)
    wrapped = method.wrap(copy.deepcopy(policy), cfg)
    pol, ref, counts = wrapped(**batch)
    loss, sums = method.loss(wrapped, batch, float(len(units)))
    return batch, wrapped, pol, ref, counts, loss, sums


@pytest.mark.parametrize("width", [1024, 1], ids=["one-packed-row", "several-padded-rows"])
def test_dpo_logps_and_loss_match_trl(dpo_trainer, models, units, tok, width):
    batch, wrapped, pol, ref, counts, loss, sums = _alignline_dpo(models, units, tok.pad_token_id, width)
    rows = batch["input_ids"].shape[0]
    assert rows == 1 if width == 1024 else rows > 1  # both packing layouts are exercised

    trl_batch = dpo_trainer.data_collator([_trl_dpo_features(u) for u in units])
    with torch.no_grad():
        trl_pc, trl_pr = dpo_trainer.compute_ref_log_probs(dpo_trainer.model, trl_batch)
        trl_rc, trl_rr = dpo_trainer.compute_ref_log_probs(dpo_trainer.ref_model, trl_batch)
    n_chosen, n_rejected = trl_batch["completion_mask"].sum(1).chunk(2)

    # Sequence log-probs are float32 sums over a completion's tokens (|logp| 60-76 here: 1 ulp = 7.6e-6), packed in
    # one row by alignline and padded by TRL: they agree to reorder_tolerance(|logp|, tokens) (1 ulp seen), not to an
    # absolute 1e-5 (1.3 ulp). Rewards are beta * two of them, margins and the loss (slope <= 1) beta * four.
    logp_tol = reorder_tolerance(max(pol.detach().abs().max().item(), ref.abs().max().item()), int(counts.max()))
    reward_tol, margin_tol = 2 * BETA * logp_tol, 4 * BETA * logp_tol
    # chosen at even indices, rejected at odd, in alignline
    torch.testing.assert_close(pol[0::2].detach(), trl_pc.float(), atol=logp_tol, rtol=0)
    torch.testing.assert_close(pol[1::2].detach(), trl_pr.float(), atol=logp_tol, rtol=0)
    torch.testing.assert_close(ref[0::2], trl_rc.float(), atol=logp_tol, rtol=0)
    torch.testing.assert_close(ref[1::2], trl_rr.float(), atol=logp_tol, rtol=0)
    assert counts[0::2].tolist() == n_chosen.float().tolist() and counts[1::2].tolist() == n_rejected.float().tolist()
    assert (ref - pol).abs().mean() > 0.5  # the reference really differs from the policy

    dpo_trainer._metrics["eval"].clear()
    trl_loss = dpo_trainer.compute_loss(dpo_trainer.model, dict(trl_batch))
    assert abs(trl_loss.item() - math.log(2)) > 0.05  # not the uninformative loss of policy == reference
    torch.testing.assert_close(loss.detach(), trl_loss.detach().float(), atol=margin_tol, rtol=0)
    metrics = dpo_trainer._metrics["eval"]  # the trainer's model is in eval mode
    n = len(units)
    assert metrics["logps/chosen"][-1] == pytest.approx(sums["chosen_logp_sum"] / n, abs=logp_tol)
    assert metrics["logps/rejected"][-1] == pytest.approx(sums["rejected_logp_sum"] / n, abs=logp_tol)
    assert metrics["rewards/chosen"][-1] == pytest.approx(sums["chosen_reward_sum"] / n, abs=reward_tol)
    assert metrics["rewards/rejected"][-1] == pytest.approx(sums["rejected_reward_sum"] / n, abs=reward_tol)
    assert metrics["rewards/margins"][-1] == pytest.approx(sums["margin_sum"] / n, abs=margin_tol)


def _grads(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def test_dpo_gradients_match_trl(dpo_trainer, models, units, tok):
    """Full fine-tuning: the gradient of alignline's loss (its own backward through the fused log-probs and the
    packed rows) equals TRL's, parameter by parameter."""
    _, wrapped, _, _, _, loss, _ = _alignline_dpo(models, units, tok.pad_token_id, 1024)
    loss.backward()
    ours = _grads(wrapped.model)

    trl_model = dpo_trainer.model
    trl_model.zero_grad(set_to_none=True)
    trl_batch = dpo_trainer.data_collator([_trl_dpo_features(u) for u in units])
    dpo_trainer.compute_loss(trl_model, dict(trl_batch)).backward()
    theirs = _grads(trl_model)
    trl_model.zero_grad(set_to_none=True)

    assert set(ours) == set(theirs) and len(ours) > 10
    scale = max(g.abs().max().item() for g in theirs.values())
    assert scale > 1e-3
    for name in ours:  # gradients sum over every token of the batch: ~80 ulp of the largest one, rtol ~800 ulp
        torch.testing.assert_close(ours[name], theirs[name], atol=1e-5 * scale, rtol=1e-4, msg=name)


# --- Reward models ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reward_model(tok):
    """A tiny Llama sequence classifier with one label and a random score head scaled to rewards of order 1."""
    from transformers import LlamaForSequenceClassification

    config = copy.deepcopy(tiny_llama(len(tok), seed=0).config)
    config.num_labels, config.pad_token_id = 1, tok.pad_token_id
    config.initializer_range = 0.1  # larger weights mix more context into the last token's state
    torch.manual_seed(2)
    model = LlamaForSequenceClassification(config).float().eval()
    with torch.no_grad():
        model.score.weight.normal_(0.0, 1.0 / math.sqrt(config.hidden_size))
    return model


CASES = {
    "plain": dict(margin=False, center=None),
    "margin": dict(margin=True, center=None),
    "margin+center": dict(margin=True, center=0.05),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reward_model_rewards_and_loss_match_trl(reward_model, units, tok, tmp_path, case):
    margin, center = CASES[case]["margin"], CASES[case]["center"]
    n = len(units)

    # alignline: both sides of every pair packed into one row, reward read at each sequence's last token
    overrides = ["method=rm", f"rm.use_margin={str(margin).lower()}", "training.max_length=1024"]
    if center is not None:
        overrides.append(f"rm.center_rewards_coefficient={center}")
    cfg = load_config(None, overrides)
    method = RewardModeling(cfg)
    batch = method.collate(units, [list(range(n))], tok.pad_token_id)
    assert batch["input_ids"].shape[0] == 1
    wrapped = RewardModel(copy.deepcopy(reward_model))
    with torch.no_grad():
        rewards = wrapped(**batch)
        loss, sums = method.loss(wrapped, batch, float(n))

    # TRL: the same ids, right-padded by its collator, through HF's sequence classifier
    rows = [{"chosen_ids": u.chosen.input_ids, "rejected_ids": u.rejected.input_ids} for u in units]
    if margin:
        rows = [{**r, "margin": u.margin} for r, u in zip(rows, units)]
    args = TRLRewardConfig(
        output_dir=str(tmp_path / "trl_rm"),
        report_to=[],
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        max_length=None,
        center_rewards_coefficient=center,
    )
    trainer = RewardTrainer(
        model=copy.deepcopy(reward_model),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tok,
    )
    trainer.model.eval()
    trl_batch = trainer.data_collator(rows)
    assert (trl_batch["attention_mask"] == 0).any()  # sequences of different lengths: padding is exercised
    with torch.no_grad():
        trl_loss, outputs = trainer.compute_loss(trainer.model, dict(trl_batch), return_outputs=True)
    trl_chosen, trl_rejected = outputs.logits.squeeze(-1).chunk(2)

    torch.testing.assert_close(rewards[0::2], trl_chosen.float(), atol=TOL, rtol=0)
    torch.testing.assert_close(rewards[1::2], trl_rejected.float(), atol=TOL, rtol=0)
    torch.testing.assert_close(loss, trl_loss.float(), atol=TOL, rtol=0)
    assert (rewards[0::2] - rewards[1::2]).abs().max() > 0.3  # the pairs' rewards really differ
    if margin:
        plain = -torch.nn.functional.logsigmoid(rewards[0::2] - rewards[1::2]).mean()
        assert abs(plain.item() - loss.item()) > 0.05  # the margins changed the loss
    metrics = trainer._metrics["eval"]
    assert metrics["margin"][-1] == pytest.approx(sums["margin_sum"] / n, abs=TOL)
    assert metrics["accuracy"][-1] == pytest.approx(sums["correct"] / n, abs=TOL)  # no ties here


def test_reward_model_gradients_match_trl(reward_model, units, tok, tmp_path):
    n = len(units)
    cfg = load_config(None, ["method=rm"])
    method = RewardModeling(cfg)
    wrapped = RewardModel(copy.deepcopy(reward_model))
    loss, _ = method.loss(wrapped, method.collate(units, [list(range(n))], tok.pad_token_id), float(n))
    loss.backward()
    ours = _grads(wrapped.model)

    rows = [{"chosen_ids": u.chosen.input_ids, "rejected_ids": u.rejected.input_ids, "margin": u.margin} for u in units]
    args = TRLRewardConfig(
        output_dir=str(tmp_path / "trl_rm"),
        report_to=[],
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        max_length=None,
    )
    trainer = RewardTrainer(
        model=copy.deepcopy(reward_model),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tok,
    )
    trainer.model.eval()
    trainer.compute_loss(trainer.model, dict(trainer.data_collator(rows))).backward()
    theirs = _grads(trainer.model)

    assert set(ours) == set(theirs) and "score.weight" in ours
    scale = max(g.abs().max().item() for g in theirs.values())
    for name in ours:  # gradients sum over every token of the batch: ~80 ulp of the largest one, rtol ~800 ulp
        torch.testing.assert_close(ours[name], theirs[name], atol=1e-5 * scale, rtol=1e-4, msg=name)
