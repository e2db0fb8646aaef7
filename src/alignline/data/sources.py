"""Reading records from the files people already have: JSONL, JSON, CSV, Parquet, a `datasets` directory,
a hub dataset id.

- Gzipped `.jsonl.gz` / `.ndjson.gz` / `.txt.gz` are read line by line through gzip; `.json.gz` and `.csv.gz` whole.
- Plain text `.txt` (continued pretraining, `method: cpt`): one document a line, read as `{"text": line}`
  the way `datasets`' `text` loader reads it, empty lines skipped (see `_read_txt`).
- `split` (`data.split`, default `train`) picks a `datasets` directory's or a hub dataset's split; a
  missing one names those there are.
- A path that is not on disk but looks like `owner/name` is a hub dataset id, read with
  `datasets.load_dataset(id, split=split)` where the hub is reachable; otherwise one DataError line.
- `columns` (`data.columns`) renames fields per record before format detection, `{our name: their name}` with
  alignline's names on the left (`{prompt: question}`); a mapped field missing from a record is a DataError.
  (LLaMA-Factory's `columns` use LLaMA-Factory's names the other way round: name its `dataset_info.json`
  entry instead, see `dataset_info.py`.)
- `PATH/dataset_info.json#ENTRY` is a LLaMA-Factory entry: its file is read and each record translated
  (`dataset_info.py`); the entry's `split`, where it has one, wins over `split`.
- A message-tree export (OpenAssistant's flat messages) is rebuilt into threads (see `threads.py`).
- TRL's stepwise-supervision records (`prompt`, `completions` and `labels` lists) are refused here, once for
  every reader (each method, `data check`, `data show`): no method trains a process reward model, and read as
  anything else they would train what their author did not mean.
- One JSONL record is at most `MAX_RECORD_BYTES` (64 MB): a longer line is refused in one line naming it, read
  in bounded chunks so its size is known before it is held whole (a 300 MB line once ended in an out-of-memory
  abort further on). Split such a document into several records (for `method: cpt`, one document per line in
  pieces of a few MB).

Each reader yields `(location, record)` where `location` names the record the way a person finds it
in the file (`line 12` for JSONL, `row 7` for CSV counting the header as row 1, `record 3` for JSON
and Parquet, 1-based). Every problem becomes a `DataError` naming the file and that location.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from alignline.data.dataset_info import Entry, load_entry, parse_ref, translate, unused_columns
from alignline.data.paths import missing_reason
from alignline.data.threads import is_message_tree, rebuild_threads
from alignline.errors import DataError

Record = dict
Located = tuple[str, Record]

MAX_RECORD_BYTES = 64 << 20  # one JSONL line; read at call time, so a test may lower it
LINE_CHUNK = 1 << 20  # a long line is read this much at a time

# Columns a flat table (CSV, Parquet) must carry one set of, in the order they are tried.
FLAT_FIELD_SETS = (
    ("messages",),
    ("prompt", "completion"),
    ("prompt", "chosen", "rejected"),
    ("text",),
    ("instruction", "output"),
    ("conversations",),
    ("chosen", "rejected"),
    ("prompt", "ranking"),
    ("input", "preferred_output", "non_preferred_output"),
    ("prompt",),
)  # a prompt and the columns its rewards read: GRPO's data (GSM8K, question -> prompt)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def file_sha256(path: str | Path) -> str:
    """Content hash of a file, or of every file in a directory (sorted by relative path)."""
    ref = parse_ref(str(path))
    if ref is not None:  # the entry (how the file is read) and the file (what is read)
        entry = load_entry(*ref)
        how = json.dumps([entry.formatting, entry.ranking, entry.split, entry.columns, entry.tags], sort_keys=True)
        return hashlib.sha256(f"{how}\n{file_sha256(entry.file)}".encode()).hexdigest()
    p = Path(path)
    if not p.exists() and is_hub_id(str(path)):  # nothing local to hash: the id stands for the content
        return f"hub:{path}"
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _is_gz(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _open(path: Path):
    return gzip.open(path, "rb") if _is_gz(path) else open(path, "rb")


def _read_text(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if _is_gz(path) else path.read_bytes()
    if not data.strip():
        raise DataError(str(path), "the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            str(path),
            f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); re-save the file as UTF-8",
            record=f"line {line}",
        ) from None


def bounded_lines(fh, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """`(number, line)` for each line of a binary file; `line` is None for a line longer than `max_bytes`, whose
    rest is skipped without being held: memory stays within `max_bytes` plus one chunk whatever the file holds."""
    number = 0
    while True:
        number += 1
        line = fh.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while (rest := fh.readline(LINE_CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, line


def decode_line(path: Path, number: int, raw: bytes) -> str:
    """One line of a line-oriented file as text, its byte-order mark removed on line 1; a byte that is not UTF-8 is
    one DataError naming the line and column."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            str(path),
            f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); re-save the file as UTF-8",
            record=f"line {number}",
        ) from None
    return line.removeprefix("\ufeff") if number == 1 else line


def _read_jsonl(path: Path) -> Iterator[Located]:
    """Line by line: memory stays bounded whatever the file's size (a line is at most MAX_RECORD_BYTES)."""
    seen_content = False
    limit = MAX_RECORD_BYTES
    with _open(path) as fh:
        for number, raw in bounded_lines(fh, limit):
            if raw is None:
                size = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit} bytes"
                raise DataError(
                    str(path),
                    f"a record longer than {size} (the limit for one line); split it into "
                    "several records, e.g. a long document into pieces of a few MB",
                    record=f"line {number}",
                )
            line = decode_line(path, number, raw)
            if not line.strip():
                continue
            seen_content = True
            record = parse_jsonl_line(path, number, line)
            yield f"line {number}", record
    if not seen_content:
        raise DataError(str(path), "the file is empty")


def _read_txt(path: Path) -> Iterator[Located]:
    """Plain text, one document a line, as `datasets`' `text` loader reads it (its default `sample_by: line`):
    `\n`, `\r\n` and a lone `\r` end a line, the line break is removed and nothing else is stripped. That
    loader also yields empty lines, as empty documents that train nothing; they are skipped here (a blank
    line between paragraphs is not a record). `line N` counts every line of the file, from 1."""
    seen_content = False
    with _open(path) as fh:
        for number, raw in enumerate(fh, start=1):
            line = decode_line(path, number, raw)
            line = line.removesuffix("\n").removesuffix("\r")
            for document in line.split("\r"):  # a lone carriage return ends a line too (universal newlines)
                if document:
                    seen_content = True
                    yield f"line {number}", {"text": document}
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
            raise DataError(
                str(path), f"expected a JSON object, got {type(record).__name__}", record=f"record {number}"
            )
        yield f"record {number}", record


def _check_columns(path: Path, columns: list[str], mapping: dict[str, str] | None = None) -> None:
    renamed = {their: our for our, their in (mapping or {}).items()}
    columns = [renamed.get(c, c) for c in columns]
    if not any(all(c in columns for c in fields) for fields in FLAT_FIELD_SETS):
        wanted = "; ".join("/".join(f) for f in FLAT_FIELD_SETS)
        raise DataError(
            str(path), f"columns {columns} match no known format; expected one of: {wanted}", record="row 1"
        )


def _maybe_json(value):
    """CSV and Parquet cells holding message lists arrive as JSON text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _read_csv(path: Path, mapping: dict[str, str] | None = None) -> Iterator[Located]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = next(reader, None) or []
    header = [h.strip() for h in header]
    _check_columns(path, header, mapping)
    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(str(path), f"has {len(row)} cells, the header has {len(header)}", record=f"row {number}")
        yield f"row {number}", {k: _maybe_json(v) for k, v in zip(header, row)}


def _read_parquet(path: Path, mapping: dict[str, str] | None = None) -> Iterator[Located]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
        raise DataError(str(path), f"not a readable Parquet file ({type(e).__name__}: {e})") from None
    _check_columns(path, table.column_names, mapping)
    if table.num_rows == 0:
        raise DataError(str(path), "the file has no rows")
    for number, record in enumerate(table.to_pylist(), start=1):
        yield f"record {number}", {k: _maybe_json(v) for k, v in record.items()}


def _read_datasets_dir(path: Path, split: str = "train", mapping: dict[str, str] | None = None) -> Iterator[Located]:
    from datasets import DatasetDict, load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except Exception as e:  # noqa: BLE001 - `datasets` raises several types for a directory it cannot read
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(str(path), f"not a `datasets` directory saved with save_to_disk ({first})") from None
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise DataError(
                str(path),
                f"no split {split!r} in this DatasetDict; it has {', '.join(dataset)} (set data.split)",
                field="data.split",
            )
        dataset = dataset[split]
    elif split != "train":
        raise DataError(
            str(path), f"a single Dataset with no splits; data.split {split!r} does not apply", field="data.split"
        )
    _check_columns(path, dataset.column_names, mapping)
    for number, record in enumerate(dataset, start=1):
        yield f"record {number}", dict(record)


def is_hub_id(path: str) -> bool:
    return HUB_ID.match(path) is not None and _reader_for(Path(path)) is None


def _read_hub(dataset_id: str, split: str, mapping: dict[str, str] | None) -> Iterator[Located]:
    try:
        from datasets import load_dataset
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
        dataset = load_dataset(dataset_id, split=split)
    except Exception as e:  # noqa: BLE001 - offline, unknown id, unknown split: each says so in its first line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(
            dataset_id,
            f"no such local file or directory, and loading it as a hub dataset (split {split!r}) failed: {first}",
        ) from None
    _check_columns(Path(dataset_id), dataset.column_names, mapping)
    for number, record in enumerate(dataset, start=1):
        yield f"record {number}", dict(record)


_READERS = {
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
    ".json": _read_json,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".txt": _read_txt,
}
_GZ_READERS = (".jsonl", ".ndjson", ".json", ".csv", ".txt")


def _reader_for(p: Path):
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes[-1:] == [".gz"]:
        return _READERS.get(suffixes[-2]) if len(suffixes) >= 2 and suffixes[-2] in _GZ_READERS else None
    return _READERS.get(suffixes[-1]) if suffixes else None


def apply_columns(record: Record, mapping: dict[str, str], path: str, location: str) -> Record:
    """Rename `{our: their}` fields of one record; a mapped field it lacks is a DataError naming it."""
    out = dict(record)
    for our, their in mapping.items():
        if their not in out:
            raise DataError(path, f"is missing (data.columns maps {our!r} to it)", record=location, field=their)
        out[our] = out.pop(their)
    return out


def read_records(
    path: str | Path, split: str = "train", columns: dict[str, str] | None = None, threads: bool = True
) -> Iterator[Located]:
    """Yield `(location, record)` from a data file, a `datasets` directory or a hub dataset id; errors name
    file and record. `split` picks a split where there are several; `columns` renames fields; `threads`
    rebuilds a message-tree export into conversations (off for tools that rewrite the file as it is)."""
    ref = parse_ref(str(path))
    if ref is not None:
        yield from _read_entry(load_entry(*ref), split, columns)
        return
    p = Path(path)
    try:
        yield from _read_path(p, str(path), split, columns, threads)
    except PermissionError:
        raise DataError(str(p), "permission denied: the file cannot be read (check its permissions)") from None


def _read_entry(entry: Entry, split: str, columns: dict[str, str] | None) -> Iterator[Located]:
    if columns:
        raise DataError(
            f"{entry.info}#{entry.name}",
            "data.columns (and --column) rename fields of plain files; a "
            "dataset_info entry maps its fields with its own `columns`",
            field="data.columns",
        )
    if not entry.file.exists():
        raise DataError(
            str(entry.file),
            f"{missing_reason(entry.file)} (file_name of entry {entry.name!r} in "
            f"{entry.info}, read relative to its folder)",
        )
    if entry.file.is_dir() and not any((entry.file / f).is_file() for f in ("state.json", "dataset_dict.json")):
        raise DataError(
            str(entry.file),
            f"a folder of files (file_name of entry {entry.name!r} in {entry.info}): "
            "alignline reads one file per entry; name the file (or one entry per file)",
        )
    seen: set[str] = set()
    for location, record in read_records(entry.file, entry.split or split, None, threads=False):
        seen.update(record)
        yield location, translate(entry, record, location)
    unused = unused_columns(entry, seen)
    if unused is not None:
        raise unused


def _read_path(p: Path, path: str, split: str, columns: dict[str, str] | None, threads: bool) -> Iterator[Located]:
    if p.is_dir():
        items = _read_datasets_dir(p, split, columns)
    elif not p.exists():
        if not is_hub_id(str(path)):
            raise DataError(str(p), missing_reason(p))
        items = _read_hub(str(path), split, columns)
    else:
        reader = _reader_for(p)
        if reader is None:
            raise DataError(
                str(p),
                f"unknown file type '{''.join(p.suffixes[-2:]) or p.name}'; use .jsonl, .json, "
                ".csv, .parquet, .txt (.jsonl.gz, .json.gz, .csv.gz, .txt.gz) or a `datasets` directory",
            )
        items = reader(p, columns) if reader in (_read_csv, _read_parquet) else reader(p)
    count = 0
    tree: list[Located] = []
    try:
        for location, record in items:
            if columns:
                record = apply_columns(record, columns, str(p), location)
            refuse_stepwise(record, str(p), location)
            if tree or (threads and count == 0 and is_message_tree(record)):
                tree.append((location, record))
                continue
            count += 1
            yield location, record
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(str(p), f"not a readable gzip file ({e or type(e).__name__})") from None
    if tree:
        for item in rebuild_threads(tree, str(p)):
            count += 1
            yield item
    if count == 0:
        raise DataError(str(p), "the file has no records" if not tree else "no thread has an assistant reply")


def refuse_stepwise(record: Record, path: str, location: str) -> None:
    """TRL's stepwise supervision (`completions` a list of steps, `labels` one bool per step): one line naming it."""
    if isinstance(record.get("completions"), list) and isinstance(record.get("labels"), list):
        raise DataError(
            path,
            "TRL stepwise-supervision records (prompt/completions/labels) are not supported: no "
            "method trains on per-step labels; for `method: kto`, join the steps into one `completion` "
            "with `label: true` only where every step's label is true",
            record=location,
            field="completions",
        )


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
