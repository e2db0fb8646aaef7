"""Graders: functions that score completions, one registry shared by evaluation and RL rewards.

A grader has TRL's reward-function signature,

    f(prompts: list, completions: list[str], **columns) -> list[float | None]

where `columns` are the records' other fields (each a list, one value per completion, e.g.
`answer=[...]`) and `None` means "not applicable to this record". A user's TRL reward function is
therefore a grader as it is, and the same function scores `alignline eval` and trains GRPO.

Graders are named in suites and recipes by a registry name (`exact_match`), `path/to/file.py:function`
or `package.module:function`. `check_scores` is the one place their output is validated, so a bad
grader fails with one line naming it, in eval and in training alike.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from alignline.errors import ConfigError

Grader = Callable[..., list]
GRADERS: dict[str, Grader] = {}


def register(name: str) -> Callable[[Grader], Grader]:
    """Add a built-in grader to the registry under `name`."""
    def add(fn: Grader) -> Grader:
        GRADERS[name] = fn
        return fn
    return add


def normalize_text(text: str) -> str:
    """Lower case, punctuation and articles dropped, whitespace collapsed (SQuAD's normalization)."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _column(columns: dict, name: str, grader: str, n: int) -> list:
    if name not in columns:
        raise ConfigError(f"grader '{grader}': needs a '{name}' field in every record")
    values = columns[name]
    if len(values) != n:
        raise ConfigError(f"grader '{grader}': '{name}' has {len(values)} values for {n} completions")
    return values


@register("exact_match")
def exact_match(prompts: list, completions: list[str], answer: list | None = None, **columns) -> list[float | None]:
    """1.0 where the completion, stripped, equals the record's `answer` (None where there is none).

    >>> exact_match(["q"], [" Paris "], answer=["Paris"])
    [1.0]
    """
    answers = _column({"answer": answer} if answer is not None else columns, "answer", "exact_match", len(completions))
    return [None if a is None else float(c.strip() == str(a).strip()) for c, a in zip(completions, answers)]


def load_function(spec: str) -> Grader:
    """`file.py:function` or `package.module:function` -> the function; errors name the spec."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ConfigError(f"grader '{spec}': not a registered grader ({', '.join(sorted(GRADERS))}) "
                          "and not of the form file.py:function or module:function")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"grader '{spec}': no such file {path}")
        name = f"alignline_user_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        except Exception as e:  # the user's file: any error it raises is theirs, told in one line
            sys.modules.pop(name, None)
            raise ConfigError(f"grader '{spec}': importing {path} failed ({type(e).__name__}: {e})") from None
    else:
        try:
            module = importlib.import_module(target)
        except Exception as e:
            raise ConfigError(f"grader '{spec}': importing {target} failed ({type(e).__name__}: {e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"grader '{spec}': {target} has no function '{attr}'")
    return fn


def get_grader(spec: str) -> Grader:
    """A registered grader by name, or a user function by `file.py:function` / `module:function`."""
    return GRADERS[spec] if spec in GRADERS else load_function(spec)


def check_scores(name: str, scores, n: int) -> list[float | None]:
    """A grader's output, validated: a list of n finite floats or None; anything else is one line naming it."""
    if not isinstance(scores, (list, tuple)):
        raise ConfigError(f"grader '{name}': returned {type(scores).__name__}, expected a list of {n} floats or None")
    if len(scores) != n:
        raise ConfigError(f"grader '{name}': returned {len(scores)} scores for {n} completions")
    out: list[float | None] = []
    for i, s in enumerate(scores):
        if s is None:
            out.append(None)
            continue
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(float(s)):
            raise ConfigError(f"grader '{name}': score {i} is {s!r}; expected a finite number or None")
        out.append(float(s))
    return out


def grade(name: str, grader: Grader, prompts: list, completions: list[str], columns: dict[str, list]) -> list[float | None]:
    """Call a grader and validate what it returns."""
    return check_scores(name, grader(prompts, completions, **columns), len(completions))

# Graders in other modules register themselves on import.
from alignline.rewards import code as _code  # noqa: E402,F401
