"""Options and columns as graders read them: one value per record (see `rewards/registry.py`)."""

from __future__ import annotations

from alignline.errors import ConfigError


def per_record(value, n: int, field: str, grader: str, required: bool = True) -> list:
    """An option or a column as one value per record: a list is a column (n values), a single value an
    option (the same for every record); None is an error naming the field, or n Nones if not required."""
    if value is None:
        if required:
            raise ConfigError(f"grader '{grader}': needs a '{field}' field in every record (or a '{field}' option)")
        return [None] * n
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigError(f"grader '{grader}': '{field}' has {len(value)} values for {n} completions")
        return list(value)
    return [value] * n
