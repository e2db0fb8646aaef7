"""The one registry style: a table of name -> `"package.module:object"`, imported on first lookup.

Methods (`methods/__init__.py`), graders (`rewards/registry.py`), eval kinds (`evals/suites.py`),
environments (`rollout/env.py`) and CLI commands (`cli/__init__.py`) are all such tables. Nothing is
imported to list or test the names (`name in TABLE`, `sorted(TABLE)`), and a module never registers
itself by being imported, so no import order can leave a table half filled or close a cycle. Adding a
built-in is one line in its table.

A user's own object is named the same way, `path/to/file.py:name` or `package.module:name`, and loaded
by `load_user_object`, whose errors are one line naming what was asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from alignline.errors import ConfigError


def load_object(target: str) -> Any:
    """`"package.module:object"` -> the object (a built-in's table entry: a wrong one is a bug, so it raises)."""
    module, sep, name = target.partition(":")
    if not sep:
        raise ValueError(f"registry target {target!r} is not of the form package.module:object")
    return getattr(importlib.import_module(module), name)


class LazyTable(Mapping[str, Any]):
    """name -> `"package.module:object"`, resolved (imported) on first lookup and kept.

    `targets` is the table as written; `name in table`, `len`, iteration and `sorted(table)` read only it."""

    def __init__(self, targets: dict[str, str]):
        self.targets = dict(targets)
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = load_object(self.targets[name])
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self.targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.targets)

    def __len__(self) -> int:
        return len(self.targets)

    def add(self, name: str, target: str) -> None:
        """Add (or replace) an entry: a plugin's own table line."""
        self.targets[name] = target
        self._loaded.pop(name, None)

    def __repr__(self) -> str:
        return f"LazyTable({self.targets!r})"


def load_user_object(spec: str, what: str, kind: str = "function", known: Mapping | None = None) -> Any:
    """`file.py:name` or `package.module:name` -> the object; errors are one ConfigError line
    `{what} '{spec}': ...` (`known`, the registry's names, are listed when `spec` is neither)."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        names = f" ({', '.join(sorted(known))})" if known is not None else ""
        raise ConfigError(
            f"{what} '{spec}': not a registered {what}{names} and not of the form file.py:{kind} or module:{kind}"
        )
    if target.endswith(".py"):
        module = _exec_file(spec, what, Path(target))
    else:
        try:
            module = importlib.import_module(target)
        except Exception as e:  # noqa: BLE001 - the user's module: any error it raises is theirs, told in one line
            raise ConfigError(f"{what} '{spec}': importing {target} failed ({type(e).__name__}: {e})") from None
    obj = getattr(module, attr, None)
    if not callable(obj):
        raise ConfigError(f"{what} '{spec}': {target} has no {kind} '{attr}'")
    return obj


def _exec_file(spec: str, what: str, path: Path):
    if not path.is_file():
        raise ConfigError(f"{what} '{spec}': no such file {path}")
    name = f"alignline_user_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - the user's file: any error it raises is theirs, told in one line
        sys.modules.pop(name, None)
        raise ConfigError(f"{what} '{spec}': importing {path} failed ({type(e).__name__}: {e})") from None
    return module
