"""Files in and out, written so that nothing is ever half there.

Every file or directory alignline writes (run records, reports, checkpoints, cleaned datasets, model
folders) goes through `atomic_path`: it is built at a hidden temporary path beside the target and
renamed into place only when complete, so a crash, a full disk or Ctrl-C leaves the old version or
nothing, never a torn one. Files get the permissions a plain `open()` would give (0644 under the usual
umask), so artifacts copied to another machine stay readable there.

Records are written by `write_records` (the format follows the extension) and read by
`data/sources.py`'s `read_records` (JSONL, JSON, CSV, Parquet, `datasets` directories), which sits above
this module: `io` imports nothing of alignline.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

RECORD_FORMATS = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_readable(path: str | Path) -> None:
    """Give a file the permissions a plain open() would (mkstemp creates 0600 files); directories 0755."""
    p = Path(path)
    p.chmod((0o777 if p.is_dir() else 0o666) & ~_umask())


@contextmanager
def atomic_path(target: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename.

    `directory=True` yields an empty temporary directory (a checkpoint, a model folder). On any
    exception the temporary path is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if directory:
            for f in [tmp, *tmp.rglob("*")]:
                make_readable(f)
            if target.exists():  # a directory cannot be replaced by rename: move the old one aside first
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        else:
            make_readable(tmp)
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data) -> Path:
    """Indented JSON; values JSON does not know (paths, dates) are written as strings."""
    return write_text(path, json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def append_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """Append records as JSON lines (a log that grows during a run, such as completions.jsonl). Appending
    cannot be atomic: a crash can leave a torn last line, which the readers of such logs drop."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records))


def write_records(path: str | Path, records: Iterable[dict]) -> int:
    """Write records in the format of `path`'s extension; returns how many were written. In CSV,
    nested values (message lists) are written as JSON text, which `read_records` parses back."""
    p = Path(path)
    suffix = p.suffix.lower()
    n = 0
    with atomic_path(p) as tmp:
        if suffix in (".jsonl", ".ndjson"):
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in records:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                    n += 1
        elif suffix == ".json":
            rows = list(records)
            n = len(rows)
            tmp.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        elif suffix == ".csv":
            rows = list(records)
            n = len(rows)
            columns = list(dict.fromkeys(k for r in rows for k in r))
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(columns)
                for r in rows:
                    w.writerow(
                        [
                            v if isinstance(v, str) else "" if v is None else json.dumps(v, ensure_ascii=False)
                            for v in (r.get(c) for c in columns)
                        ]
                    )
        elif suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = list(records)
            n = len(rows)
            pq.write_table(pa.Table.from_pylist(rows), tmp)
        else:
            raise ValueError(f"{p}: unknown record format '{p.suffix}'; use {', '.join(RECORD_FORMATS)}")
    return n
