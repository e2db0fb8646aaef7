"""Every bad input to a training run: one line on stderr, exit 2, and a run directory that tells the truth
(run.json `failed` with the error; no `final/`, no half-written checkpoint)."""

from __future__ import annotations

import errno
import json
import os
import shutil

import pytest
import torch

from alignline.cli import main
from alignline.config import load_config
from alignline.evals.training import train
from alignline.train.checkpoint import CheckpointError
from alignline.train.guards import check_trainable
from alignline.train.lock import RunLock
from support import chat_records, write_jsonl, write_recipe

QUICK = ["training.max_steps=2", "training.save_every=2", "training.eval_every=2"]


def _main(capsys, recipe, *overrides) -> tuple[int, str]:
    code = main(["train", "--quiet", str(recipe), *QUICK, *overrides])
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("alignline: warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("alignline: error: ")
    return lines[0]


def _run_json(out) -> dict:
    return json.loads((out / "run.json").read_text())


# --- the output directory --------------------------------------------------------------------------


def test_output_dir_is_a_file(sft_recipe, tmp_path, capsys):
    recipe, _ = sft_recipe
    target = tmp_path / "afile"
    target.write_text("x")
    code, err = _main(capsys, recipe, f"output_dir={target}")
    assert code == 2 and f"config key 'output_dir': {target} is a file, not a directory" in _one_line(err)
    code, err = _main(capsys, recipe, f"output_dir={target}/run")
    assert code == 2 and f"{target} is a file, so {target}/run cannot be created under it" in _one_line(err)
    assert target.read_text() == "x"


def test_output_dir_not_writable(sft_recipe, tmp_path, capsys, monkeypatch):
    recipe, _ = sft_recipe
    out = tmp_path / "locked_down"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: simulate the refusal
        real = os.open

        def deny(path, *a, **k):
            if str(path).endswith(".lock"):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path, *a, **k)

        monkeypatch.setattr(os, "open", deny)
    else:
        out.chmod(0o500)
    try:
        code, err = _main(capsys, recipe, f"output_dir={out}")
    finally:
        out.chmod(0o755)
    assert code == 2 and f"config key 'output_dir': {out} is not writable (Permission denied)" in _one_line(err)


def test_second_run_on_one_output_dir_is_refused(sft_recipe, capsys):
    recipe, out = sft_recipe
    out.mkdir()
    with RunLock(out):  # another run holds the directory
        code, err = _main(capsys, recipe)
    assert code == 2
    assert f"output_dir {out} is in use by another alignline run (pid {os.getpid()})" in _one_line(err)
    assert not (out / "run.json").exists()  # the holder's record is not touched
    with RunLock(out):  # released: the next run may take it
        pass


# --- failures during the run: run.json says failed ------------------------------------------------


def test_diverging_run_stops_and_writes_no_final(sft_recipe, capsys):
    """lr 1e30 without clipping: step 1 is finite, its update is not, step 2's loss is NaN."""
    recipe, out = sft_recipe
    code, err = _main(capsys, recipe, "lr=1e30", "max_grad_norm=0", "training.max_steps=6", "eval_every=100")
    line = _one_line(err)
    assert code == 2 and "training diverged at step 2: loss = nan" in line and "no final model was written" in line
    assert not (out / "final").exists() and not (out / "checkpoints").exists()
    run = _run_json(out)
    assert run["status"] == "failed" and run["error"].startswith("training diverged at step 2")


def test_full_disk_while_checkpointing(sft_recipe, capsys, monkeypatch):
    recipe, out = sft_recipe
    real = torch.save

    def full(obj, f, *a, **k):
        if str(f).endswith("optimizer.pt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full)
    code, err = _main(capsys, recipe)
    line = _one_line(err)
    assert code == 2 and "no space left on the device writing" in line and "optimizer.pt" in line
    run = _run_json(out)
    assert run["status"] == "failed" and "no space left on the device" in run["error"]
    assert os.listdir(out / "checkpoints") == []  # the half-written checkpoint was removed
    assert not (out / "final").exists()


def test_a_bug_keeps_its_traceback_and_still_marks_run_json(sft_recipe, monkeypatch):
    recipe, out = sft_recipe

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr("alignline.train.loop.evaluate", broken)
    with pytest.raises(RuntimeError, match="boom"):
        train(load_config(recipe, QUICK), progress=False)
    run = _run_json(out)
    assert run["status"] == "failed" and run["error"] == "RuntimeError: boom"


def test_failed_gates_leave_a_failed_run_json(tmp_path, tiny_model_dir, capsys):
    data = write_jsonl(tmp_path / "dup.jsonl", chat_records(12) * 2)  # 50 % exact duplicates
    out = tmp_path / "run"
    recipe = write_recipe(
        tmp_path / "r.yaml",
        method="sft",
        model=str(tiny_model_dir),
        output_dir=str(out),
        data={"train": str(data)},
        training={"max_steps": 1, "batch_size": 2, "max_length": 128, "tensorboard": False},
    )
    assert main(["train", "--quiet", str(recipe)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "data gates failed: duplicate_share = 0.5 (must be <= 0.02): 12 of 24 records are duplicates" in line
    run = _run_json(out)
    assert run["status"] == "failed" and run["error"].startswith("data gates failed: duplicate_share")
    assert run["config"]["output_dir"] == str(out)


def test_failure_before_any_output_leaves_no_directory(sft_recipe, tmp_path, capsys):
    recipe, _ = sft_recipe
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"nonsense": 1}])
    out = tmp_path / "new" / "run"
    code, err = _main(capsys, recipe, f"data.train={bad}", f"output_dir={out}")
    assert code == 2 and str(bad) in _one_line(err)
    assert not (tmp_path / "new").exists()


def test_nothing_to_train_is_refused(sft_recipe):
    cfg = load_config(sft_recipe[0])
    with pytest.raises(Exception, match="nothing to train: 0 trainable parameters"):
        check_trainable([torch.zeros(0)], cfg)
    check_trainable([torch.zeros(3)], cfg)


# --- resume ----------------------------------------------------------------------------------------


@pytest.fixture
def finished(sft_recipe, tmp_path_factory):
    """A 2-step LoRA run with its checkpoint at step 2 (trained once per test needing it)."""
    recipe, out = sft_recipe
    assert main(["train", "--quiet", str(recipe), *QUICK]) == 0
    return recipe, out, out / "checkpoints" / "step-2"


def _damage(ckpt, name, how):
    path = ckpt / name
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_text(how)


def test_resume_from_damaged_checkpoints(finished, tmp_path, capsys):
    recipe, out, ckpt = finished
    cases = [
        ("adapter_model.safetensors", "garbage, not safetensors"),
        ("trainer_state.json", "{not json"),
        ("trainer_state.json", '{"step": 2, "unknown_key": 1}'),
        ("optimizer.pt", "truncate"),
        ("scheduler.pt", "truncate"),
    ]
    for i, (name, how) in enumerate(cases):
        copy = tmp_path / f"damaged{i}"
        shutil.copytree(ckpt, copy)
        _damage(copy, name, how)
        code, err = _main(
            capsys, recipe, f"resume={copy}", f"output_dir={tmp_path / f'resumed{i}'}", "training.max_steps=3"
        )
        line = _one_line(err)
        assert code == 2, line
        assert f"checkpoint file {copy / name}: cannot be resumed from" in line and "resume=never" in line
        assert not (tmp_path / f"resumed{i}").exists()  # it failed before writing anything: no trace
    with pytest.raises(CheckpointError):  # the same through the API
        train(
            load_config(recipe, [f"resume={tmp_path / 'damaged0'}", f"output_dir={tmp_path / 'api'}"]), progress=False
        )


def test_resume_with_changed_model_or_data_is_refused(finished, tmp_path, tiny_model_dir, capsys):
    recipe, out, _ = finished
    before = _run_json(out)
    code, err = _main(capsys, recipe, "lora.r=8", "adapter.type=lora", "training.max_length=64")
    line = _one_line(err)
    assert code == 2 and "was trained with different settings" in line
    assert "adapter.r (4 -> 8)" in line and "training.max_length (128 -> 64)" in line and "resume=never" in line
    assert _run_json(out)["status"] == "completed" and _run_json(out) == before  # the finished record stays true
    code, err = _main(capsys, recipe, "adapter.type=prompt")
    assert code == 2 and "adapter.type ('lora' -> 'prompt')" in _one_line(err)
    code, err = _main(capsys, recipe, "lr=1e-2")
    assert code == 2 and "training.lr (0.001 -> 0.01)" in _one_line(err)
    other = tmp_path / "other_model"
    shutil.copytree(tiny_model_dir, other)
    code, err = _main(capsys, recipe, f"model={other}")
    assert code == 2 and f"model ('{tiny_model_dir}' -> '{other}')" in _one_line(err)
    data = load_config(recipe).data.train[0].path
    with open(data, "a") as fh:
        fh.write(json.dumps(chat_records(1)[0]) + "\n")
    code, err = _main(capsys, recipe)
    assert code == 2 and f"data file {data} (its contents changed" in _one_line(err)


def test_resume_with_a_longer_schedule_warns_and_continues(finished, capsys):
    recipe, out, _ = finished
    code, err = _main(capsys, recipe, "training.max_steps=3", "log_every=2", "dpo.beta=0.5")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("alignline: warning:")]
    assert (
        len(warnings) == 1
        and "with a changed schedule: training.log_every (1 -> 2); training.max_steps (2 -> 3)" in warnings[0]
    )  # dpo.* does not matter to an SFT run
    run = _run_json(out)
    assert run["status"] == "completed" and run["steps"] == 3


def test_lora_with_every_layer_frozen_is_refused(sft_recipe, capsys):
    """peft reads an empty layers_to_transform as every layer: freezing all would silently train them all."""
    recipe, out = sft_recipe
    code, err = _main(capsys, recipe, "training.freeze_layers=2")
    assert code == 2 and "config key 'training.freeze_layers': 2 leaves none of the model's 2 layers" in _one_line(err)
    assert not out.exists()  # it failed before writing anything


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_at_the_lock_file_is_refused(sft_recipe, tmp_path, capsys, dangling):
    """`.lock` planted as a link: the run would truncate the file it points to. Refused, the target untouched."""
    recipe, out = sft_recipe
    out.mkdir()
    target = tmp_path / "precious.txt"
    if not dangling:
        target.write_text("keep me")
    (out / ".lock").symlink_to(target)
    code, err = _main(capsys, recipe)
    assert code == 2 and f"{out}/.lock is a symbolic link (to {target}); alignline does not follow it" in _one_line(err)
    assert (target.read_text() == "keep me") if not dangling else not target.exists()
    assert not (out / "run.json").exists()


def test_a_lock_path_that_is_not_a_file_is_refused(tmp_path):
    from alignline.errors import UserError

    (tmp_path / ".lock").mkdir()
    with pytest.raises(UserError, match=r"\.lock is not a regular file"):
        RunLock(tmp_path).acquire()
    os.rmdir(tmp_path / ".lock")
    os.mkfifo(tmp_path / ".lock")
    with pytest.raises(UserError, match=r"\.lock is not a regular file"):
        RunLock(tmp_path).acquire()
