"""The eval cache: what a model did on each record, kept so that a re-run costs nothing and an
interrupted eval resumes where it stopped.

Layout: `$ALIGNLINE_CACHE/evals/` (default `~/.cache/alignline/evals/`), one append-only JSONL file per
(model content hash, suite hash, generation settings) key, one line per record: `{"key": ..., "value": ...}`
where `key` hashes the record's own input, so editing one record recomputes only that record. Lines
are appended (and flushed) after each batch; a crash can tear only the last line, which is ignored on
reading and cut off before the next append. Appending is the one write here that does not go through
`alignline.io.atomic_path`: the cache is built to be read while incomplete.

Model content hash: SHA-256 over the names and contents of a model directory's weight, config and
tokenizer files (an adapter's directory plus its base model's), remembered in `hashes.json` by path,
size and modification time so a 500 MB model is read once, not on every eval.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from alignline.io import write_json
from alignline.models.loading import cache_dir, resolve

MODEL_FILES = (".safetensors", ".json", ".bin", ".model", ".txt", ".jinja", ".gguf")


def cache_root() -> Path:
    return cache_dir() / "evals"


def stable_hash(value) -> str:
    """SHA-256 of canonical JSON (sorted keys), first 16 hex digits."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def directory_hash(directory: str | Path) -> str:
    """Content hash of a model directory's files (top level), cached by (path, size, mtime)."""
    d = Path(directory).resolve()
    files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix in MODEL_FILES)
    stamp = {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in files}
    index_path = cache_root() / "hashes.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    known = index.get(str(d))
    if known and known.get("files") == stamp:
        return known["hash"]
    digest = stable_hash({f.name: _file_sha(f) for f in files})
    index[str(d)] = {"files": stamp, "hash": digest}
    try:
        write_json(index_path, index)
    except OSError:  # a read-only cache only costs re-hashing next time
        pass
    return digest


def model_hash(spec: str | None) -> str:
    """The content hash of a model spec: its directory (and an adapter's base), or the hub id itself."""
    base, adapter = resolve(spec)
    parts = [directory_hash(base) if Path(base).is_dir() else f"hub:{base}"]
    if adapter:
        parts.append(directory_hash(adapter))
    return stable_hash(parts)


class RecordCache:
    """Per-record values under one key; `enabled=False` keeps everything in memory only."""

    def __init__(self, key: dict, enabled: bool = True, root: Path | None = None):
        self.key = key
        self.enabled = enabled
        self.path = (root or cache_root()) / f"{stable_hash(key)}.jsonl"
        self.values: dict[str, dict] = {}
        if enabled and self.path.is_file():
            self.values = read_cache_file(self.path)

    def lookup(self, keys: Iterable[str]) -> list[str]:
        """The keys not cached yet, in order, without repeats."""
        return [k for k in dict.fromkeys(keys) if k not in self.values]

    def add(self, items: dict[str, dict]) -> None:
        self.values.update(items)
        if not self.enabled or not items:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.write_text(json.dumps({"cache": self.key}, default=str) + "\n", encoding="utf-8")
        _cut_torn_tail(self.path)
        with open(self.path, "a", encoding="utf-8") as fh:
            for k, v in items.items():
                fh.write(json.dumps({"key": k, "value": v}, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def memo(self, keys: list[str], compute: Callable[[list[str]], list[dict]], batch_size: int = 16) -> list[dict]:
        """Values for `keys`; the missing ones computed `batch_size` at a time and appended after each batch."""
        todo = self.lookup(keys)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            self.add(dict(zip(chunk, compute(chunk))))
        return [self.values[k] for k in keys]


def read_cache_file(path: Path) -> dict[str, dict]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:  # a torn last line from an interrupted run
            continue
        if isinstance(item, dict) and "key" in item:
            values[item["key"]] = item["value"]
    return values


def _cut_torn_tail(path: Path) -> None:
    """Drop a partial last line (no trailing newline) so the next append starts on a fresh line."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)
