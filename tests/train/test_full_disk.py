"""A full disk (or a read-only one) during any save of a training run: one line on stderr naming what could
not be written, exit 2, run.json `failed`, no half-written checkpoint or model left. The tokenizer's Rust
writer raises a plain `Exception("... (os error 28)")`, read as the OS error it is."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

import alignline.io
from alignline.cli import main
from alignline.models.loading import load_tokenizer_for
from alignline.train.guards import os_error_code, saving, write_failure

QUICK = ["training.max_steps=2", "training.save_every=2", "training.eval_every=2"]
FULL = "No space left on device"


def run_cli(capsys, recipe, *overrides) -> tuple[int, str]:
    code = main(["train", "--quiet", str(recipe), *QUICK, *overrides])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("alignline: warning:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("alignline: error: ")
    return lines[0]


def leftovers(out: Path) -> list[str]:
    """Temporary paths of atomic writes (`.NAME.xxxx.tmp`) still on disk: a half-written save."""
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*.tmp"))


def disk_full(path) -> OSError:
    return OSError(errno.ENOSPC, FULL, str(path))


def fail_tokenizer_save(monkeypatch, model_dir, on_call: int = 1) -> None:
    """The tokenizer's `save_pretrained` fails as tokenizers' Rust writer does, on its `on_call`-th call."""
    cls = type(load_tokenizer_for(str(model_dir)))
    real, calls = cls.save_pretrained, []

    def save(self, *a, **k):
        calls.append(1)
        if len(calls) == on_call:
            raise Exception(f"{FULL} (os error 28)")
        return real(self, *a, **k)

    monkeypatch.setattr(cls, "save_pretrained", save)


def test_the_tokenizer_of_a_checkpoint(sft_recipe, tiny_model_dir, capsys, monkeypatch):
    recipe, out = sft_recipe
    fail_tokenizer_save(monkeypatch, tiny_model_dir)
    code, err = run_cli(capsys, recipe)
    line = one_line(err)
    assert code == 2 and f"no space left on the device writing {out / 'checkpoints' / 'step-2'} ({FULL})" in line
    assert "set output_dir" in line
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and run["error"].startswith("no space left on the device writing")
    assert list((out / "checkpoints").iterdir()) == [] and not (out / "final").exists() and leftovers(out) == []


def test_the_tokenizer_of_the_final_model(sft_recipe, tiny_model_dir, capsys, monkeypatch):
    recipe, out = sft_recipe
    fail_tokenizer_save(monkeypatch, tiny_model_dir, on_call=2)  # the checkpoint's passes, final/'s fails
    code, err = run_cli(capsys, recipe)
    assert code == 2 and f"writing {out / 'final'} ({FULL})" in one_line(err)
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert not (out / "final").exists() and leftovers(out) == []
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-2"]  # the last complete checkpoint stays


@pytest.mark.parametrize(
    "where", ["checkpoint weights", "final weights", "optimizer", "metrics", "model card", "read-only checkpoint"]
)
def test_every_save(where, sft_recipe, capsys, monkeypatch):
    recipe, out = sft_recipe
    import alignline.evals.training as training
    import alignline.train.checkpoint as checkpoint
    import alignline.train.loop as loop
    import alignline.train.metrics as metrics

    def raising(error):
        def fail(*a, **k):
            raise error

        return fail

    if where == "checkpoint weights":
        monkeypatch.setattr(checkpoint, "save_model", raising(OSError(errno.ENOSPC, FULL)))
        expected = f"writing {out / 'checkpoints' / 'step-2'} ({FULL})"
    elif where == "final weights":
        monkeypatch.setattr(loop, "save_model", raising(OSError(errno.EDQUOT, "Disk quota exceeded")))
        expected = f"writing {out / 'final'} (Disk quota exceeded)"
    elif where == "optimizer":
        real = torch.save
        monkeypatch.setattr(
            torch,
            "save",
            lambda obj, f, *a, **k: (
                (_ for _ in ()).throw(disk_full(f)) if str(f).endswith("optimizer.pt") else real(obj, f, *a, **k)
            ),
        )
        expected = "optimizer.pt"
    elif where == "metrics":
        monkeypatch.setattr(metrics.MetricsLog, "log", raising(OSError(errno.ENOSPC, FULL)))
        expected = f"writing {out / 'metrics.jsonl'} ({FULL})"
    elif where == "model card":  # after run.json already says completed
        monkeypatch.setattr(training, "write_model_card", raising(OSError(errno.ENOSPC, FULL)))
        expected = f"writing {out / 'final' / 'README.md'} ({FULL})"
    else:
        monkeypatch.setattr(checkpoint, "save_model", raising(OSError(errno.EROFS, "Read-only file system")))
        expected = f"could not write {out / 'checkpoints' / 'step-2'} (Read-only file system); make it writable"
    code, err = run_cli(capsys, recipe)
    assert code == 2 and expected in one_line(err)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and run["error"] in one_line(err)
    assert leftovers(out) == []


def test_run_json_itself_cannot_be_written(sft_recipe, capsys, monkeypatch):
    """The run record is the write that fails (and so does marking it failed): still one line, exit 2."""
    recipe, out = sft_recipe
    real = alignline.io.write_text

    def write_text(path, text):
        if Path(path).name == "run.json":
            raise OSError(errno.ENOSPC, FULL)
        return real(path, text)

    monkeypatch.setattr(alignline.io, "write_text", write_text)
    code, err = run_cli(capsys, recipe)
    assert code == 2 and f"no space left on the device writing {out / 'run.json'} ({FULL})" in one_line(err)
    assert not (out / "run.json").exists() and leftovers(out) == []


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            OSError(errno.ENOSPC, FULL, "/x/a.pt"),
            "no space left on the device writing /x/a.pt (No space left on device)",
        ),
        (Exception(f"{FULL} (os error 28)"), "no space left on the device writing /out/tok (No space left on device)"),
        (
            Exception('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space" })'),
            "no space left on the device writing /out/tok",
        ),
        (PermissionError(errno.EACCES, "Permission denied"), "could not write /out/tok (Permission denied)"),
        (OSError(errno.EROFS, "Read-only file system"), "could not write /out/tok (Read-only file system)"),
    ],
)
def test_write_failure_messages(error, expected):
    assert expected in str(write_failure(error, "/out/tok"))
    with pytest.raises(Exception, match=expected.replace("(", r"\(").replace(")", r"\)")):
        with saving("/out/tok"):
            raise error


@pytest.mark.parametrize(
    "error",
    [
        ValueError("os error 28"),
        RuntimeError("boom (os error 28)"),
        Exception("no code here"),
        OSError(errno.ENOENT, "No such file"),
    ],
)
def test_other_errors_keep_their_traceback(error):
    assert write_failure(error, "/out") is None
    with pytest.raises(type(error)):
        with saving("/out"):
            raise error


def test_os_error_code_reads_rust_io_errors():
    assert os_error_code(Exception(f"{FULL} (os error 28)")) == (errno.ENOSPC, FULL)
    assert os_error_code(Exception("plain")) is None


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("writer", ["tokenizer", "torch", "text"])
def test_real_writers_on_a_full_device(tmp_path, writer):
    """The writers' own errors on a full device (/dev/full answers every write with ENOSPC): the tokenizer's
    Rust `Exception`, torch's zip-writer `RuntimeError` (no errno), Python's `OSError`."""
    from alignline.errors import UserError
    from support import tiny_tokenizer

    for name in ("tokenizer.json", "optimizer.pt", "run.json"):
        (tmp_path / name).symlink_to("/dev/full")
    write = {
        "tokenizer": lambda: tiny_tokenizer().save_pretrained(tmp_path),
        "torch": lambda: torch.save({"a": torch.zeros(100_000)}, tmp_path / "optimizer.pt"),
        "text": lambda: (tmp_path / "run.json").write_text("x" * 100_000),
    }[writer]
    with pytest.raises(UserError, match=f"{tmp_path}.*(No space left on device|the disk may be full)") as e:
        with saving(tmp_path):
            write()
    assert "\n" not in str(e.value)
