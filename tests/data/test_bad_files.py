"""Data files that cannot be read: one DataError line naming the file (and the line), exit 2 from the CLI."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

from alignline.cli import main
from alignline.data.sources import read_records
from alignline.errors import DataError


def _read(path):
    return list(read_records(path))


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_deeply_nested_json_is_one_line(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    nested = "[" * 100_000 + "]" * 100_000
    path.write_text('{"messages": ' + nested + "}\n" if suffix == ".jsonl" else "[" + nested + "]")
    with pytest.raises(DataError) as err:
        _read(path)
    where = f"{path}, line 1" if suffix == ".jsonl" else str(path)
    assert str(err.value) == f"{where}: JSON nested too deeply to read"


def _deny(monkeypatch, path: Path) -> None:
    """chmod 000, or (as root, who reads it anyway) open() refusing that one file."""
    if os.geteuid() != 0:
        path.chmod(0)
        return
    real = builtins.open

    def refuse(file, *a, **k):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *a, **k)
    monkeypatch.setattr(builtins, "open", refuse)
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: refuse(self) if str(self) == str(path) else real_read(self))


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_unreadable_data_file(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"train{suffix}"
    path.write_text('{"text": "a"}\n' if suffix == ".jsonl" else '[{"text": "a"}]' if suffix == ".json" else "text\na\n")
    _deny(monkeypatch, path)
    try:
        with pytest.raises(DataError) as err:
            _read(path)
    finally:
        path.chmod(0o644)
    assert str(err.value) == f"{path}: permission denied: the file cannot be read (check its permissions)"


def test_symlink_loop_and_broken_link_are_named(tmp_path, capsys):
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match="a symlink loop"):
        _read(loop)
    broken = tmp_path / "broken.jsonl"
    broken.symlink_to(tmp_path / "gone.jsonl")
    with pytest.raises(DataError, match=r"a broken symbolic link \(it points to .*gone.jsonl"):
        _read(broken)
    assert main(["data", "check", str(loop), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"alignline: error: {loop}: a symlink loop (the link points back " \
                                              "to itself through other links)"


def test_cli_nested_json_exit_2(tmp_path, capsys):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    assert main(["data", "check", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert capsys.readouterr().err == f"alignline: error: {path}, line 1: JSON nested too deeply to read\n"


def test_a_plain_directory_is_one_line(tmp_path, capsys):
    from alignline.cli import main

    (tmp_path / "notes.txt").write_text("hello")
    assert main(["data", "check", str(tmp_path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a `datasets` directory" in err
