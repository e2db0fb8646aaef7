"""A line-by-line JSONL reader with `read_records`' locations and messages, in bounded memory.

`sources.read_records` reads a whole JSONL file into memory before yielding its first record, which
for a multi-gigabyte file costs several times its size; the quality checks read JSONL line by line
instead (every other format goes through `read_records`). Same `line N` locations, same errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from alignline.data.sources import Located, parse_jsonl_line, read_records
from alignline.errors import DataError


def _stream_jsonl(path: Path) -> Iterator[Located]:
    count = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(str(path), f"not UTF-8 text (byte 0x{raw[e.start]:02x} on this line); "
                                "re-save the file as UTF-8", record=f"line {number}") from None
            if not line.strip():
                continue
            record = parse_jsonl_line(path, number, line)
            count += 1
            yield f"line {number}", record
    if count == 0:  # every line was blank
        raise DataError(str(path), "the file is empty")


def stream_records(path: str | Path) -> Iterator[Located]:
    p = Path(path)
    if p.is_file() and p.suffix.lower() in (".jsonl", ".ndjson"):
        return _stream_jsonl(p)
    return read_records(p)
