"""Every grader's docstring example runs and holds."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "alignline.rewards.text",
    "alignline.rewards.numeric",
    "alignline.rewards.structured",
    "alignline.rewards.judge",
    "alignline.rewards.refusal",
    "alignline.rewards.safety",
    "alignline.data.canary",
    "alignline.text",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and (result.attempted > 0 or name.endswith("graders"))
