"""Kept so that `from alignline.rewards.graders import get_grader` (older code, users' scripts) still works:
the registry lives in `rewards/registry.py`, the text helpers in `alignline/text.py`."""

from __future__ import annotations

from alignline.rewards.columns import per_record  # noqa: F401
from alignline.rewards.registry import (GRADERS, VALIDATORS, BoundGrader, Grader, check_scores,  # noqa: F401
                                        get_grader, grade, load_function, register)
from alignline.rewards.text import exact_match, normalize_text  # noqa: F401
from alignline.text import completion_text, prompt_text  # noqa: F401
