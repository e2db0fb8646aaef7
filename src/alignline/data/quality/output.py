"""Where a cleaned copy of a dataset (dedup, redact) may be written; `alignline.io.write_records` writes it."""

from __future__ import annotations

from pathlib import Path

from alignline.data.dataset_info import parse_ref
from alignline.data.paths import missing_reason
from alignline.data.sources import is_hub_id
from alignline.errors import DataError, UserError
from alignline.io import RECORD_FORMATS as FORMATS


def check_inputs(paths: list[str]) -> None:
    """Missing inputs fail before any work (and before a progress bar is drawn)."""
    for path in paths:
        if parse_ref(str(path)) is None and not is_hub_id(str(path)) and not Path(path).exists():
            raise DataError(str(path), missing_reason(path))


def check_output_path(path: str | Path, inputs: list[str]) -> Path:
    check_inputs(inputs)
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise UserError(f"{p}: unknown output type '{p.suffix}'; use {', '.join(FORMATS)}")
    if any(p.resolve() == Path(i).resolve() for i in inputs):
        raise UserError(f"{p}: the output would overwrite the input; choose another path")
    return p
