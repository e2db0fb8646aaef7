"""Graders: functions that score completions, one registry shared by evaluation and RL rewards.

A grader has TRL's reward-function signature and is called the way TRL calls one, by keyword,

    f(prompts=[...], completions=[...], **columns) -> list[float | None]

where `columns` are the records' other fields (each a list, one value per completion, e.g.
`answer=[...]`) and `None` means "not applicable to this record". A user's TRL reward function is
therefore a grader as it is, whichever of TRL's styles it is written in (`def f(completions, **kwargs)`
or `def f(prompts, completions, answer, **kwargs)`), and the same function scores `alignline eval`
and trains GRPO. Completions are strings, or, in TRL's conversational mode, message lists
`[{"role": "assistant", "content": ...}]`; `completion_text` (`alignline/text.py`) turns either into text.

Naming a grader (in a suite, a recipe or code):
- a registry name: `get_grader("exact_match")`;
- a user function: `get_grader("path/to/file.py:function")` or `get_grader("package.module:function")`;
- with options, as keywords or as a spec dict (the YAML form):
  `get_grader("regex", pattern="^Answer:")` == `get_grader({"function": "regex", "pattern": "^Answer:"})`.
  In a dict, `function` names the grader, `name` (optional) is its display name; every other key is
  an option. An option must be a named parameter of the function (or of the grader class's
  constructor), so a misspelt option is an error, not silently ignored.

Options and columns: a function grader receives both as keywords. Where one name can be either (the
regex `pattern`, the `answer` of `contains`), a single value is an option, the same for every record,
and a list is a column, one value per record; an option given explicitly wins over a column of that name.

Graders that hold a model (`reward_model`, `pairwise_judge`) are small classes: `get_grader` builds
one from its options and keeps it, so a suite naming it twice loads the model once.

`check_scores` is the one place their output is validated, so a bad grader fails with one line
naming it, in eval and in training alike. Built-ins live in `rewards/text.py`, `numeric.py`,
`structured.py`, `judge.py`, `refusal.py`, `safety.py`, `code.py` and `model_graders.py`, each named by
one line of `GRADERS` below and imported on first use (they do not import this module back).
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
from collections.abc import Callable

from alignline.errors import ConfigError
from alignline.registry import LazyTable, load_user_object

Grader = Callable[..., list]

# The built-ins: registry name -> "module:object", a grader function or a grader class built from its
# options. Imported on first lookup; adding a built-in is one line here.
GRADERS = LazyTable(
    {
        "exact_match": "alignline.rewards.text:exact_match",
        "normalized_match": "alignline.rewards.text:normalized_match",
        "contains": "alignline.rewards.text:contains",
        "regex": "alignline.rewards.text:regex",
        "token_f1": "alignline.rewards.text:token_f1",
        "length": "alignline.rewards.text:length",
        "numeric_match": "alignline.rewards.numeric:numeric_match",
        "math_answer": "alignline.rewards.numeric:math_answer",
        "math_correct": "alignline.rewards.numeric:math_correct",
        "json_valid": "alignline.rewards.structured:json_valid",
        "json_schema": "alignline.rewards.structured:json_schema",
        "refusal": "alignline.rewards.refusal:refusal",
        "answered": "alignline.rewards.refusal:answered",
        "pii_leak": "alignline.rewards.safety:pii_leak",
        "canary": "alignline.rewards.safety:canary",
        "scripted_judge": "alignline.rewards.judge:ScriptedJudge",
        "pairwise_judge": "alignline.rewards.judge:PairwiseJudge",
        "reward_model": "alignline.rewards.model_graders:RewardModelGrader",
        "unit_tests": "alignline.rewards.code:unit_tests",
    }
)
"""Registry name -> a grader function, or a grader class built from its options."""
VALIDATORS = LazyTable(
    {
        "regex": "alignline.rewards.text:check_regex_options",
        "length": "alignline.rewards.text:check_length_options",
        "numeric_match": "alignline.rewards.numeric:check_tolerance_options",
        "math_answer": "alignline.rewards.numeric:check_tolerance_options",
        "math_correct": "alignline.rewards.numeric:check_math_correct_options",
        "pii_leak": "alignline.rewards.safety:check_pii_options",
    }
)
"""Registry name -> a check of its options (raises ConfigError), run when the grader is built (not after
generation)."""
_BUILT: dict[str, Grader] = {}  # grader objects built from options, keyed by name and options


def register(name: str, target: str, validate: str | None = None) -> None:
    """Add a grader to the registry: `target` (and `validate`, a check of its options) as "module:object"."""
    GRADERS.add(name, target)
    if validate is not None:
        VALIDATORS.add(name, validate)


def load_function(spec: str) -> Grader:
    """`file.py:function` or `package.module:function` -> the function; errors name the spec."""
    return load_user_object(spec, "grader", "function", known=GRADERS)


def option_names(target) -> list[str]:
    """The options a grader takes: its named parameters other than prompts/completions (for a class,
    its constructor's)."""
    fn = target.__init__ if inspect.isclass(target) else target
    params = inspect.signature(fn).parameters.values()
    return [
        p.name
        for p in params
        if p.name not in ("self", "prompts", "completions") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


class BoundGrader:
    """A grader function with options fixed (functools.partial, with a name and TRL's call style)."""

    def __init__(self, name: str, fn: Grader, options: dict):
        self.__name__ = name
        self.fn, self.options = fn, dict(options)

    def __call__(self, prompts=None, completions=None, **columns) -> list:
        return self.fn(prompts=prompts, completions=completions, **{**columns, **self.options})

    def __repr__(self) -> str:
        return f"{self.__name__}({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"


def get_grader(spec: str | dict, **options) -> Grader:
    """A callable with TRL's reward signature, from a registry name, `file.py:function`,
    `module:function`, or a spec dict `{function: NAME, name: LABEL, **options}`; keyword options are
    merged over the dict's. Unknown graders, unknown options and bad option values are one ConfigError
    line naming the grader."""
    label = None
    if isinstance(spec, dict):
        spec = dict(spec)
        if "function" not in spec:
            raise ConfigError(
                f"grader {spec}: a grader given as a mapping needs a 'function' key (a registered "
                "name, file.py:function or module:function)"
            )
        fn_spec, label = spec.pop("function"), spec.pop("name", None)
        options = {**spec, **options}
        spec = fn_spec
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"grader {spec!r}: expected a grader name, file.py:function or a mapping")
    target = GRADERS[spec] if spec in GRADERS else load_function(spec)
    name = str(label or spec)
    known = option_names(target)
    unknown = [k for k in options if k not in known]
    if unknown:
        raise ConfigError(
            f"grader '{name}': unknown option '{unknown[0]}'; options: {', '.join(known) if known else 'none'}"
        )
    if spec in VALIDATORS:
        VALIDATORS[spec]({**options, "_grader": name})
    if inspect.isclass(target):
        return build_grader(spec, name, target, options)
    return BoundGrader(name, target, options) if options or label else target


def build_grader(spec: str, name: str, cls: type, options: dict) -> Grader:
    """One grader object per (grader, options), reused: a model-backed grader loads its model once."""
    try:
        key = f"{spec}|{json.dumps(options, sort_keys=True)}"
    except TypeError:  # an option that is an object (an engine, a function): not cached
        key = None
    if key in _BUILT:
        return _BUILT[key]
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as e:
        raise ConfigError(f"grader '{name}': {e}") from None
    grader = cls(**options)
    if getattr(grader, "__name__", None) is None or name != spec:
        grader.__name__ = name
    if key is not None:
        _BUILT[key] = grader
    return grader


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
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or not math.isfinite(float(s)):
            raise ConfigError(f"grader '{name}': score {i} is {s!r}; expected a finite number or None")
        out.append(float(s))
    return out


def grade(
    name: str,
    grader: Grader,
    prompts: list,
    completions: list,
    columns: dict[str, list] | None = None,
    completion_ids: list | None = None,
) -> list[float | None]:
    """Call a grader as TRL does (`grader(prompts=..., completions=..., [completion_ids=...,] **columns)`)
    and validate what it returns. A grader that cannot take these arguments (a required field missing from
    the records) is one ConfigError line naming it and the fields there are."""
    kwargs = {"prompts": prompts, "completions": completions, **(columns or {})}
    if completion_ids is not None:
        kwargs["completion_ids"] = completion_ids
    call = grader.fn if isinstance(grader, BoundGrader) else grader
    extra = grader.options if isinstance(grader, BoundGrader) else {}
    try:
        inspect.signature(call).bind(**{**kwargs, **extra})
    except TypeError as e:
        fields = ", ".join(k for k in kwargs if k not in ("prompts", "completions")) or "none"
        raise ConfigError(
            f"grader '{name}': cannot be called as f(prompts=..., completions=..., **fields): {e} "
            f"(record fields here: {fields})"
        ) from None
    except ValueError:  # no signature to inspect (a builtin or C callable): just call it
        pass
    return check_scores(name, grader(**kwargs), len(completions))
