"""Writing a cleaned copy of a dataset (dedup, redact): same records, one file, written atomically.

The output format follows the output file's extension (.jsonl, .json, .csv, .parquet); in CSV,
message lists are written as JSON text, which `read_records` parses back.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from alignline.data.quality.report import readable
from alignline.errors import DataError, UserError

FORMATS = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")


def check_inputs(paths: list[str]) -> None:
    """Missing inputs fail before any work (and before a progress bar is drawn)."""
    for path in paths:
        if not Path(path).exists():
            raise DataError(str(path), "no such file or directory")


def check_output_path(path: str | Path, inputs: list[str]) -> Path:
    check_inputs(inputs)
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise UserError(f"{p}: unknown output type '{p.suffix}'; use {', '.join(FORMATS)}")
    if any(p.resolve() == Path(i).resolve() for i in inputs):
        raise UserError(f"{p}: the output would overwrite the input; choose another path")
    return p


def write_records(path: str | Path, records: Iterable[dict]) -> int:
    """Write records to `path` via a temporary file in the same directory; returns how many were written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    os.close(fd)
    suffix = p.suffix.lower()
    n = 0
    try:
        if suffix in (".jsonl", ".ndjson"):
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in records:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                    n += 1
        elif suffix == ".json":
            rows = list(records)
            n = len(rows)
            Path(tmp).write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        elif suffix == ".csv":
            rows = list(records)
            n = len(rows)
            columns = list(dict.fromkeys(k for r in rows for k in r))
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(columns)
                for r in rows:
                    w.writerow([v if isinstance(v, str) else "" if v is None else json.dumps(v, ensure_ascii=False)
                                for v in (r.get(c) for c in columns)])
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = list(records)
            n = len(rows)
            pq.write_table(pa.Table.from_pylist(rows), tmp)
        readable(tmp)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
