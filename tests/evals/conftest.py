"""Eval tests keep their result cache in the test's own directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_eval_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ALIGNLINE_CACHE", str(tmp_path / "cache"))
