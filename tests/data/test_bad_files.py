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
    path.write_text(
        '{"text": "a"}\n' if suffix == ".jsonl" else '[{"text": "a"}]' if suffix == ".json" else "text\na\n"
    )
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
    assert (
        capsys.readouterr().err.strip() == f"alignline: error: {loop}: a symlink loop (the link points back "
        "to itself through other links)"
    )


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


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_a_record_over_the_size_limit_is_one_line(tmp_path, monkeypatch, suffix):
    """A line longer than MAX_RECORD_BYTES is refused naming it (read in chunks: never held whole); one at the
    limit, and the lines around the long one, are read as they are."""
    import gzip

    from alignline.data import sources

    monkeypatch.setattr(sources, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr(sources, "LINE_CHUNK", 64)
    at_limit = '{"text": "' + "a" * (1000 - 12) + '"}'
    assert len(at_limit) == 1000
    body = "\n".join([at_limit, '{"text": "' + "b" * 5000 + '"}', '{"text": "c"}']) + "\n"
    path = tmp_path / f"long{suffix}"
    path.write_bytes(gzip.compress(body.encode()) if suffix.endswith(".gz") else body.encode())
    reader = read_records(path)
    assert next(reader) == ("line 1", {"text": "a" * 988})
    with pytest.raises(DataError) as err:
        next(reader)
    assert str(err.value) == (
        f"{path}, line 2: a record longer than 1000 bytes (the limit for one line); split it "
        "into several records, e.g. a long document into pieces of a few MB"
    )


def test_bounded_lines_skips_the_rest_of_a_long_line():
    import io

    from alignline.data.sources import bounded_lines

    data = io.BytesIO(b"ab\n" + b"x" * 50 + b"\ncd\nlast-without-newline-is-long")
    assert list(bounded_lines(data, 8)) == [(1, b"ab\n"), (2, None), (3, b"cd\n"), (4, None)]
    assert list(bounded_lines(io.BytesIO(b"12345678\n123456789"), 8)) == [(1, b"12345678\n"), (2, None)]


def test_cli_a_record_over_64_mb_exit_2(tmp_path, capsys):
    """The real limit: one 65 MB line (a 300 MB one used to end in an out-of-memory abort further on)."""
    from alignline.data.sources import MAX_RECORD_BYTES

    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"text": "small"}\n{"text": "')
        chunk = b"word " * (1 << 18)
        for _ in range(MAX_RECORD_BYTES // len(chunk) + 1):
            f.write(chunk)
        f.write(b'"}\n')
    assert main(["data", "check", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"alignline: error: {path}, line 2: a record longer than 64 MB (the limit for one line); "
        "split it into several records, e.g. a long document into pieces of a few MB"
    )
