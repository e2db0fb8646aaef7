"""An independent reference: alignline's KTO numbers equal TRL's on the same tiny model and batch.

Same tiny random Llama (float32), tokenizer and token ids. alignline goes through its own path: records ->
`to_unpaired` -> `tokenize_unpaired` -> `KTO.collate` (the completions and their mismatched KL sequences packed
padding-free into the same rows) -> `DPOModel` (fused chunked log-probs) -> `KTO.loss`. TRL 1.16 goes through a real
`KTOTrainer`: its own tokenization and KL rotation of the same records, its collator (right padding),
`compute_ref_log_probs` (TRL's fused LM head, summed over the completion) and `compute_loss` (two forwards, KL under
no_grad).

The reference differs from the policy (perturbed weights), chosen so that the KL estimate is positive and is not
clamped away. Completions are short so that summed log-probs compare within 1e-5 in float32.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from alignline.config import load_config  # noqa: E402
from alignline.data.templates import IGNORE  # noqa: E402
from alignline.data.unpaired import to_unpaired, tokenize_unpaired  # noqa: E402
from alignline.methods.kto import KTO  # noqa: E402
from alignline.models.reference import DPOModel  # noqa: E402
from support import assistant as _a  # noqa: E402
from support import reorder_tolerance, tiny_llama, tiny_tokenizer  # noqa: E402
from support import user as _u  # noqa: E402

TOL = 1e-5  # a loss of order 1 from sums reordered the same way as TRL's (packed completions only): ~80 ulp
BETA = 0.5


RECORDS = [
    {"prompt": [_u("What is two plus two?")], "completion": [_a("Four.")], "label": True},
    {
        "prompt": [{"role": "system", "content": "Be brief."}, _u("Summarize the text in one sentence.")],
        "completion": [_a("No.")],
        "label": False,
    },
    {
        "prompt": [_u("Hello, how are you today?"), _a("I am fine, thank you."), _u("And the capital of France?")],
        "completion": [_a("Paris")],
        "label": True,
    },
    {"prompt": [_u("Rewrite the sentence to be formal.")], "completion": [_a("def add(a, b)")], "label": False},
    {"prompt": [_u("Name a colour.")], "completion": [_a("Answer: blue")], "label": True},
]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def units(tok):
    return [tokenize_unpaired(tok, to_unpaired(r, "u.jsonl", f"line {i + 1}"), 512) for i, r in enumerate(RECORDS)]


@pytest.fixture(scope="module")
def models(tok):
    """(policy, reference): the reference is the policy with every weight perturbed, which makes it the worse
    predictor, so policy - reference log-probs (the KL estimate) come out positive."""
    policy = tiny_llama(len(tok), seed=0).float().eval()
    reference = copy.deepcopy(policy)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return policy, reference


def _end(example) -> int:
    """One past the last target's input position: what the template writes after the end-of-turn token is context
    in alignline and, being last, changes no earlier log-prob."""
    return max(i for i, t in enumerate(example.targets) if t != IGNORE) + 2


def _trl_features(units) -> list[dict]:
    completions = [u.example.input_ids[u.prompt_len : _end(u.example)] for u in units]
    return [
        {
            "prompt_ids": u.example.input_ids[: u.prompt_len],
            "completion_ids": completions[i],
            "KL_completion_ids": completions[i - 1],
            "label": u.label,
        }
        for i, u in enumerate(units)
    ]


def _trainer(tok, models, tmp_path_factory, loss_type):
    from trl import KTOConfig, KTOTrainer

    policy, reference = models
    args = KTOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl_kto")),
        report_to=[],
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        beta=BETA,
        max_length=None,
        loss_type=loss_type,
        per_device_train_batch_size=len(RECORDS),
        logging_steps=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = KTOTrainer(
            model=copy.deepcopy(policy),
            ref_model=copy.deepcopy(reference),
            args=args,
            train_dataset=datasets.Dataset.from_list(RECORDS),
            processing_class=tok,
        )
    trainer.model.eval()
    return trainer


@pytest.fixture(scope="module")
def kto_trainer(tok, models, tmp_path_factory):
    return _trainer(tok, models, tmp_path_factory, "kto")


def test_trl_tokenizes_and_rotates_the_same_ids(kto_trainer, units, tok):
    """TRL's tokenization of the same records gives alignline's ids; its KL completion for example i is example
    i-1's completion, the rotation `kl_examples` makes."""
    rows = list(kto_trainer.train_dataset)
    assert len(rows) == len(units)
    for i, (row, unit) in enumerate(zip(rows, units)):
        assert row["prompt_ids"] == unit.example.input_ids[: unit.prompt_len]
        assert row["prompt_ids"] + row["completion_ids"] == unit.example.input_ids
        assert row["KL_completion_ids"] == rows[i - 1]["completion_ids"]
        assert row["label"] == unit.label


def _alignline(models, units, pad_id, width, loss_type="kto"):
    policy, reference = models
    cfg = load_config(
        None, ["method=kto", f"kto.beta={BETA}", f"kto.loss_type={loss_type}", f"training.max_length={width}"]
    )
    method = KTO(cfg)
    batch = method.collate(units, [list(range(len(units)))], pad_id)
    # what `KTO.wrap` builds for full fine-tuning, with the perturbed model as the frozen reference
    wrapped = DPOModel(copy.deepcopy(policy), copy.deepcopy(reference).requires_grad_(False), reference_free=False)
    pol, ref, _ = wrapped(**batch)
    loss, sums = method.loss(wrapped, batch, float(len(units)))
    return batch, wrapped, pol, ref, loss, sums, method


@pytest.mark.parametrize("packed", [True, False], ids=["one-packed-row", "several-rows"])
def test_kto_logps_kl_and_loss_match_trl(kto_trainer, models, units, tok, packed):
    n = len(units)
    longest = max(len(u.example.input_ids) for u in units) + 16  # room for a longer spliced completion
    batch, wrapped, pol, ref, loss, sums, method = _alignline(
        models, units, tok.pad_token_id, 1024 if packed else longest
    )
    rows = batch["input_ids"].shape[0]
    assert rows == 1 if packed else rows > 2
    assert batch["last_index"].numel() == 2 * n  # completions, then their mismatched sequences

    trl_batch = kto_trainer.data_collator(_trl_features(units))
    with torch.no_grad():
        trl_p, trl_p_kl = kto_trainer.compute_ref_log_probs(kto_trainer.model, trl_batch)
        trl_r, trl_r_kl = kto_trainer.compute_ref_log_probs(kto_trainer.ref_model, trl_batch)
    # Sequence log-probs: float32 sums over a completion's tokens, packed or in rows here and padded in TRL, agree
    # to reorder_tolerance(|logp|, tokens), not to an absolute 1e-5 (about 1 ulp of a logp of 64 or more). Rewards
    # and the kl are differences of two of them (times beta), margins and the loss (sigmoid slope <= 1/4) of four.
    with torch.no_grad():
        tokens = int(wrapped(**batch)[2].max())
    logp_tol = reorder_tolerance(max(pol.detach().abs().max().item(), ref.abs().max().item()), tokens)
    tol = 4 * max(BETA, 1.0) * logp_tol
    torch.testing.assert_close(pol[:n].detach(), trl_p.float(), atol=logp_tol, rtol=0)
    torch.testing.assert_close(pol[n:].detach(), trl_p_kl.float(), atol=logp_tol, rtol=0)
    torch.testing.assert_close(ref[:n], trl_r.float(), atol=logp_tol, rtol=0)
    torch.testing.assert_close(ref[n:], trl_r_kl.float(), atol=logp_tol, rtol=0)
    assert (pol - ref).abs().mean() > 0.5  # the reference really differs

    kto_trainer._metrics["eval"].clear()
    trl_loss = kto_trainer.compute_loss(kto_trainer.model, dict(trl_batch))
    torch.testing.assert_close(loss.detach(), trl_loss.detach().float(), atol=tol, rtol=0)
    metrics = kto_trainer._metrics["eval"]
    assert metrics["kl"][-1] > 0.05  # a real reference point, not one clamped to 0
    logged = method.summarize(sums)
    for key in ("kl", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected", "rewards/margins"):
        assert logged[key] == pytest.approx(metrics[key][-1], abs=logp_tol if key.startswith("logps") else tol), key


def test_apo_zero_unpaired_matches_trl(tok, models, units, tmp_path_factory):
    trainer = _trainer(tok, models, tmp_path_factory, "apo_zero_unpaired")
    _, _, _, _, loss, sums, method = _alignline(models, units, tok.pad_token_id, 1024, "apo_zero_unpaired")
    features = [{k: v for k, v in f.items() if k != "KL_completion_ids"} for f in _trl_features(units)]
    trl_loss = trainer.compute_loss(trainer.model, dict(trainer.data_collator(features)))
    torch.testing.assert_close(loss.detach(), trl_loss.detach().float(), atol=TOL, rtol=0)
    assert method.summarize(sums)["kl"] == 0.0


def _grads(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def test_kto_gradients_match_trl(kto_trainer, models, units, tok):
    """Full fine-tuning: the gradient of alignline's loss (one packed forward holding the KL sequences too, their
    part detached) equals TRL's (KL sequences in a separate no-grad forward), parameter by parameter."""
    _, wrapped, _, _, loss, _, _ = _alignline(models, units, tok.pad_token_id, 1024)
    loss.backward()
    ours = _grads(wrapped.model)

    trl_model = kto_trainer.model
    trl_model.zero_grad(set_to_none=True)
    kto_trainer.compute_loss(trl_model, dict(kto_trainer.data_collator(_trl_features(units)))).backward()
    theirs = _grads(trl_model)
    trl_model.zero_grad(set_to_none=True)

    assert set(ours) == set(theirs) and len(ours) > 10
    scale = max(g.abs().max().item() for g in theirs.values())
    assert scale > 1e-4
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], atol=1e-5 * scale, rtol=1e-4, msg=name)
