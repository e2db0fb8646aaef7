"""Reading records from the files people already have: JSONL, JSON, CSV, Parquet, a `datasets` directory.

Each reader yields `(location, record)` where `location` names the record the way a person finds it
in the file (`line 12` for JSONL, `row 7` for CSV counting the header as row 1, `record 3` for JSON
and Parquet, 1-based). Every problem becomes a `DataError` naming the file and that location.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

from alignline.data.paths import missing_reason
from alignline.errors import DataError

Record = dict
Located = tuple[str, Record]

# Columns a flat table (CSV, Parquet) must carry one set of, in the order they are tried.
FLAT_FIELD_SETS = (("messages",), ("prompt", "completion"), ("prompt", "chosen", "rejected"), ("text",),
                   ("instruction", "output"), ("conversations",), ("chosen", "rejected"), ("prompt", "ranking"))


def file_sha256(path: str | Path) -> str:
    """Content hash of a file, or of every file in a directory (sorted by relative path)."""
    p = Path(path)
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(str(path), "the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(str(path), f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                        "re-save the file as UTF-8", record=f"line {line}") from None


def _read_jsonl(path: Path) -> Iterator[Located]:
    """Line by line: memory stays bounded whatever the file's size."""
    seen_content = False
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(str(path), f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                                "re-save the file as UTF-8", record=f"line {number}") from None
            if number == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            seen_content = True
            record = parse_jsonl_line(path, number, line)
            yield f"line {number}", record
    if not seen_content:
        raise DataError(str(path), "the file is empty")


def _read_json(path: Path) -> Iterator[Located]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(str(path), f"malformed JSON ({e.msg})", record=f"line {e.lineno}") from None
    except RecursionError:
        raise DataError(str(path), "JSON nested too deeply to read") from None
    if isinstance(data, dict):  # {"data": [...]} or {"train": [...]}: one list of records inside
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(str(path), "expected a JSON list of records (or an object holding exactly one list)")
        data = lists[0]
    if not isinstance(data, list):
        raise DataError(str(path), "expected a JSON list of records")
    for number, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise DataError(str(path), f"expected a JSON object, got {type(record).__name__}", record=f"record {number}")
        yield f"record {number}", record


def _check_columns(path: Path, columns: list[str]) -> None:
    if not any(all(c in columns for c in fields) for fields in FLAT_FIELD_SETS):
        wanted = "; ".join("/".join(f) for f in FLAT_FIELD_SETS)
        raise DataError(str(path), f"columns {columns} match no known format; expected one of: {wanted}",
                        record="row 1")


def _maybe_json(value):
    """CSV and Parquet cells holding message lists arrive as JSON text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _read_csv(path: Path) -> Iterator[Located]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = next(reader, None) or []
    header = [h.strip() for h in header]
    _check_columns(path, header)
    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(str(path), f"has {len(row)} cells, the header has {len(header)}", record=f"row {number}")
        yield f"row {number}", {k: _maybe_json(v) for k, v in zip(header, row)}


def _read_parquet(path: Path) -> Iterator[Located]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise DataError(str(path), f"not a readable Parquet file ({type(e).__name__}: {e})") from None
    _check_columns(path, table.column_names)
    if table.num_rows == 0:
        raise DataError(str(path), "the file has no rows")
    for number, record in enumerate(table.to_pylist(), start=1):
        yield f"record {number}", {k: _maybe_json(v) for k, v in record.items()}


def _read_datasets_dir(path: Path) -> Iterator[Located]:
    from datasets import DatasetDict, load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except Exception as e:
        raise DataError(str(path), f"not a `datasets` directory saved with save_to_disk ({e})") from None
    if isinstance(dataset, DatasetDict):
        if "train" not in dataset:
            raise DataError(str(path), f"a DatasetDict without a 'train' split (has {list(dataset)})")
        dataset = dataset["train"]
    _check_columns(path, dataset.column_names)
    for number, record in enumerate(dataset, start=1):
        yield f"record {number}", dict(record)


_READERS = {".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".json": _read_json, ".csv": _read_csv,
            ".parquet": _read_parquet}


def read_records(path: str | Path) -> Iterator[Located]:
    """Yield `(location, record)` from a data file or a `datasets` directory; errors name file and record."""
    p = Path(path)
    try:
        yield from _read_path(p)
    except PermissionError:
        raise DataError(str(p), "permission denied: the file cannot be read (check its permissions)") from None


def _read_path(p: Path) -> Iterator[Located]:
    if p.is_dir():
        yield from _read_datasets_dir(p)
        return
    if not p.exists():
        raise DataError(str(p), missing_reason(p))
    reader = _READERS.get(p.suffix.lower())
    if reader is None:
        raise DataError(str(p), f"unknown file type '{p.suffix}'; use .jsonl, .json, .csv, .parquet "
                        "or a `datasets` directory")
    count = 0
    for item in reader(p):
        count += 1
        yield item
    if count == 0:
        raise DataError(str(p), "the file has no records")


def parse_jsonl_line(path, number: int, line: str) -> dict:
    """One JSONL line -> its record; malformed JSON or a non-object is a DataError naming the line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(str(path), f"malformed JSON ({e.msg} at column {e.colno})", record=f"line {number}") from None
    except RecursionError:
        raise DataError(str(path), "JSON nested too deeply to read", record=f"line {number}") from None
    if not isinstance(record, dict):
        raise DataError(str(path), f"expected a JSON object, got {type(record).__name__}", record=f"line {number}")
    return record
