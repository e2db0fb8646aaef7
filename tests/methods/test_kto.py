"""`method: kto` on the one loop: a tiny model trains a few steps with LoRA and with full fine-tuning, the right
weights change, and the step's loss is a proper mean over its completions (batch 4 x 1 equals batch 2 x 2)."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from safetensors.torch import load_file

from alignline.config import load_config
from alignline.errors import ConfigError
from alignline.evals.training import train
from alignline.methods.kto import balance_warning
from alignline.train.metrics import read_metrics
from support import reorder_tolerance, write_jsonl, write_recipe
from support import safetensors_weights as _weights


def unpaired_records(n: int = 16) -> list[dict]:
    """Chat prompts with a right (desirable) or evasive (undesirable) answer, alternating."""
    out = []
    for i in range(n):
        good = i % 2 == 0
        answer = f"Answer: {2 * i}." if good else "I would rather not say."
        out.append(
            {
                "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
                "completion": [{"role": "assistant", "content": answer}],
                "label": good,
            }
        )
    return out


@pytest.fixture
def kto_recipe(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "train.jsonl", unpaired_records())
    out = tmp_path / "run"
    recipe = write_recipe(
        tmp_path / "recipe.yaml",
        method="kto",
        model=str(tiny_model_dir),
        output_dir=str(out),
        data_gates=False,
        data={"train": str(data), "eval_fraction": 0.25},
        adapter={"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        kto={"beta": 0.5},
        training={
            "max_steps": 3,
            "batch_size": 4,
            "max_length": 128,
            "eval_every": 3,
            "save_every": 3,
            "lr": 1e-2,
            "tensorboard": False,
            "log_every": 1,
            "lr_scheduler": "constant",
        },
    )
    return recipe, out


def _run(recipe, *overrides, full: bool = False):
    cfg = load_config(recipe, list(overrides))
    if full:
        cfg.adapter = None
    return train(cfg, progress=False)


def test_lora_trains_only_the_adapter(kto_recipe, tiny_model_dir):
    recipe, out = kto_recipe
    _run(recipe)
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        assert math.isfinite(m["loss"]) and m["desirable"] + m["undesirable"] == 4
        assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "kl"} <= set(m)
    assert metrics[0]["kl"] == 0.0 and metrics[0]["rewards/chosen"] == 0.0  # policy == reference at the start
    assert metrics[0]["loss"] == pytest.approx(0.5)  # 1 - σ(0) for every completion
    assert "eval_loss" in metrics[-1] and "eval_rewards/margins" in metrics[-1]
    assert metrics[-1]["rewards/margins"] != 0.0
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["data"]["desirable"] + run["data"]["undesirable"] == 12
    assert run["best_eval"] == {"eval_loss": metrics[-1]["eval_loss"]}

    adapter = load_file(out / "final" / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    assert all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # B starts at zero
    from alignline.models.loading import load_model

    base_before = _weights(tiny_model_dir)
    base = load_model(str(out / "final")).get_base_model()
    for name, param in base.named_parameters():
        if "lora_" not in name and "base_layer" not in name and name in base_before:
            torch.testing.assert_close(param.detach(), base_before[name])


def test_full_finetune_changes_the_weights(kto_recipe, tiny_model_dir):
    recipe, out = kto_recipe
    _run(recipe, "training.lr=1e-3", full=True)
    before, after = _weights(tiny_model_dir), _weights(out / "final")
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert len(changed) > 0.5 * len(before)
    assert all(math.isfinite(m["loss"]) for m in read_metrics(out / "metrics.jsonl"))


@pytest.mark.parametrize("loss_type,steps", [("apo_zero_unpaired", 3), ("kto", 1)])
def test_accumulation_equivalence(tmp_path, kto_recipe, loss_type, steps):
    """Batch 4 x accumulation 1 and batch 2 x accumulation 2 give the same weights and losses: each step's loss is
    the mean over its 4 completions. For `kto` only while z is the same both ways: z is estimated per micro-batch
    (as TRL does), so after the first step (z = 0: policy == reference) the two set-ups legitimately differ."""
    recipe, _ = kto_recipe
    common = [
        f"training.max_steps={steps}",
        "training.eval_every=100",
        f"kto.loss_type={loss_type}",
        "data.eval_fraction=0.0",
    ]
    a = _run(recipe, *common, "training.batch_size=4", "training.grad_accum=1", f"output_dir={tmp_path / 'a'}")
    b = _run(recipe, *common, "training.batch_size=2", "training.grad_accum=2", f"output_dir={tmp_path / 'b'}")
    wa, wb = (load_file(r / "final" / "adapter_model.safetensors") for r in (a, b))
    assert any(v.abs().sum() > 0 for k, v in wa.items() if "lora_B" in k)
    for k in wa:  # Adam's step is scale-free: gradients a few ulp apart move a weight by ~steps*lr*ulps, << 1e-6
        torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=1e-5)
    la, lb = read_metrics(a / "metrics.jsonl"), read_metrics(b / "metrics.jsonl")
    assert len(la) == len(lb) == steps
    for ma, mb in zip(la, lb):
        # A reward is beta * (policy logp - reference logp), each a float32 sum over a completion's tokens of size
        # |logp| (50-110 here): batch 4x1 and 2x2 pad and block those sums differently, so they agree to
        # reorder_tolerance(|logp|, tokens), not to a relative 1e-5 (AVX-512/AMX moved one sum by 1 ulp, 7.6e-6,
        # which is 5.7e-5 of a reward of 0.067). 32 terms bound a completion here (<= 12 tokens) with the matmul
        # reductions behind each term; the loss (sigmoid slope <= 1/4) and the kl move less than a reward.
        logp = max(abs(m.get(k, 0.0)) for m in (ma, mb) for k in ("logps/chosen", "logps/rejected"))
        tol = 0.5 * 2 * reorder_tolerance(logp, terms=32)  # beta (kto_recipe) * two sums
        for key in ("loss", "rewards/chosen", "rewards/rejected", "kl"):
            assert ma[key] == pytest.approx(mb[key], rel=1e-5, abs=tol)


def test_record_weights_scale_the_loss(tmp_path, kto_recipe):
    """Weight 0 on every undesirable record: the step's loss is the desirable completions' mean alone (0.5 at the
    start for any completion), and their rewards move while the undesirable ones contribute nothing."""
    recipe, _ = kto_recipe
    records = [{**r, "weight": 1.0 if r["label"] else 0.0} for r in unpaired_records()]
    data = write_jsonl(tmp_path / "weighted.jsonl", records)
    run = _run(
        recipe, f"data.train={data}", "training.max_steps=1", "data.eval_fraction=0.0", f"output_dir={tmp_path / 'w'}"
    )
    assert read_metrics(run / "metrics.jsonl")[0]["loss"] == pytest.approx(0.5)


def test_bad_settings_are_config_errors(kto_recipe):
    recipe, _ = kto_recipe
    for overrides, match in (
        (["training.batch_size=1"], "training.batch_size.*needs batch_size >= 2"),
        (["kto.beta=0"], "kto.beta': must be > 0"),
        (["kto.undesirable_weight=-1"], "kto.undesirable_weight': must be >= 0"),
        (["kto.loss_type=sigmoid"], "kto.loss_type"),
    ):
        with pytest.raises(ConfigError, match=match):
            _run(recipe, *overrides)
    _run(recipe, "training.batch_size=1", "kto.loss_type=apo_zero_unpaired", "training.max_steps=1")


def test_one_kind_only_trains_with_a_warning(tmp_path, kto_recipe):
    recipe, _ = kto_recipe
    data = write_jsonl(tmp_path / "good.jsonl", [r for r in unpaired_records() if r["label"]])
    with pytest.warns(UserWarning, match="every training completion is desirable"):
        run = _run(
            recipe,
            f"data.train={data}",
            "training.max_steps=1",
            "data.eval_fraction=0.0",
            f"output_dir={tmp_path / 'g'}",
        )
    assert "rewards/rejected" not in read_metrics(run / "metrics.jsonl")[0]


def test_balance_warning():
    """n_D = 10, n_U = 40, λ = 1: λ_D n_D / (λ_U n_U) = 0.25, outside [1, 4/3]; λ_D in [4, 5.33] or λ_U in
    [0.19, 0.25] would fix it."""
    message = balance_warning(10, 40, 1.0, 1.0)
    assert "desirable_weight in [4.00, 5.33]" in message and "undesirable_weight in [0.19, 0.25]" in message
    assert balance_warning(10, 40, 4.5, 1.0) is None and balance_warning(20, 20, 1.0, 1.0) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert balance_warning(12, 10, 1.0, 1.0) is None  # 1.2 is within range


def test_good_and_bad_files_together_do_not_warn(tmp_path, kto_recipe, tokenizer):
    """The one-kind warning judges the training set, not each file: good.jsonl + bad.jsonl is a normal set-up."""
    from alignline.methods.kto import KTO

    recipe, _ = kto_recipe
    good = write_jsonl(tmp_path / "good.jsonl", [r for r in unpaired_records() if r["label"]])
    bad = write_jsonl(tmp_path / "bad.jsonl", [r for r in unpaired_records() if not r["label"]])
    cfg = load_config(recipe, [f"data.train=[{good}, {bad}]", "data.eval_fraction=0.0"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = KTO(cfg).prepare(cfg, tokenizer, False)
    assert (data.report.desirable, data.report.undesirable) == (8, 8)
    assert [s["records"] for s in data.report.sources] == [8, 8]


def test_two_processes_share_the_reference_point(kto_recipe, tmp_path):
    """torchrun, 2 processes: z is averaged over the processes while training (TRL's gather), and evaluation, whose
    3 batches split 2 + 1 between the processes, runs no collective and so cannot hang. Step 1 (z = 0 everywhere)
    equals one process with accumulation 2."""
    import os
    import socket
    import subprocess
    import sys

    recipe, _ = kto_recipe
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = [
        "--quiet",
        "training.max_steps=2",
        "training.eval_every=2",
        "training.batch_size=2",
        "data.eval_fraction=0.3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    two, one = tmp_path / "two", tmp_path / "one"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "alignline.cli",
            "train",
            str(recipe),
            *common,
            f"output_dir={two}",
        ],
        check=True,
        env=env,
        timeout=600,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alignline.cli",
            "train",
            str(recipe),
            *common,
            f"output_dir={one}",
            "training.grad_accum=2",
        ],
        check=True,
        env=env,
        timeout=600,
        capture_output=True,
    )
    ma, mb = read_metrics(two / "metrics.jsonl"), read_metrics(one / "metrics.jsonl")
    # step 1: policy == reference (LoRA B = 0), the same forward twice: rewards exactly 0, the loss exactly 0.5
    assert ma[0]["loss"] == pytest.approx(mb[0]["loss"], abs=1e-6) and ma[0]["kl"] == mb[0]["kl"] == 0.0
    assert ma[-1]["eval_desirable"] + ma[-1]["eval_undesirable"] == 5
    assert all(math.isfinite(m["loss"]) and m["kl"] >= 0 for m in ma)
