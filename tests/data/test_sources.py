"""The record reader: every format's locations and errors."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"[1]\n", "line 1: expected a JSON object"),
        (b'{"text": "a"}\n{"text": "\xff"}\n', "line 2: not UTF-8 text"),
    ],
)
def test_jsonl_reader_errors_and_locations(tmp_path, content, needle):
    """The one record reader (the quality gates use it too): errors name the line; BOM, CRLF and
    blank lines are handled, and locations count every line."""
    from alignline.data.sources import read_records
    from alignline.errors import DataError

    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=needle):
        list(read_records(path))
    path.write_bytes(b'\xef\xbb\xbf{"text": "a"}\r\n\n{"text": "b"}')
    assert list(read_records(path)) == [("line 1", {"text": "a"}), ("line 3", {"text": "b"})]
