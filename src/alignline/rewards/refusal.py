"""Refusal detection: did the model decline to answer?

Transparent by design: the phrases are a plain text file bundled beside this module
(`rewards/refusal_phrases.txt`; read it, it is short), matched case-insensitively as whole words, with
curly apostrophes read as straight ones. Lines starting with `!` are benign look-alikes ("I can't help
but notice", "As an AI researcher"): their text is blanked out before the search, so they never count.
Extend the list with `extra_phrases` (and `extra_benign`), or point `phrases_file` at your own file.

A phrase list misses refusals worded freshly and catches the odd benign sentence; for those, the
`refusal` grader takes `judge_model`: a model asked "did this answer refuse?" through the judge machinery
(`rewards/judge.py`, template `rewards/prompts/refusal_judge.txt`).

`window` limits the search to the answer's first N characters, where refusals usually sit, so a long
answer that quotes "I cannot assist" later on is not counted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path

from alignline.errors import ConfigError
from alignline.rewards.judge import RefusalJudge
from alignline.text import completion_text

PHRASES_FILE = Path(__file__).parent / "refusal_phrases.txt"


def read_phrases(path: str | Path = PHRASES_FILE) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(refusal phrases, benign look-alikes) from a phrase file: one per line, `#` comments, `!` benign."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"refusal phrases: no such file {p}")
    refusals, benign = [], []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        (benign if line.startswith("!") else refusals).append(normalize(line.removeprefix("!")))
    return tuple(refusals), tuple(benign)


def normalize(text: str) -> str:
    """Lower case, curly quotes straightened, whitespace runs collapsed: the form phrases are matched in."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
    return " ".join(text.split())


def _alternation(phrases: Iterable[str]) -> re.Pattern | None:
    phrases = sorted({p for p in phrases if p}, key=len, reverse=True)  # longest first: "as an ai language model"
    if not phrases:
        return None
    # Whole words: no letter or digit right before or after (punctuation such as "," may end a phrase).
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(p) for p in phrases) + r")(?![\w])")


class RefusalDetector:
    """`detector(text) -> bool`, from the bundled phrases (or `phrases_file`) plus extras."""

    def __init__(
        self,
        extra_phrases: Iterable[str] = (),
        extra_benign: Iterable[str] = (),
        window: int | None = None,
        phrases_file: str | Path | None = None,
    ):
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window <= 0):
            raise ConfigError(f"refusal: option 'window' must be a positive integer, got {window!r}")
        for name, value in (("extra_phrases", extra_phrases), ("extra_benign", extra_benign)):
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"refusal: option '{name}' must be a list of strings")
        refusals, benign = read_phrases(phrases_file or PHRASES_FILE)
        self.phrases = refusals + tuple(normalize(p) for p in extra_phrases)
        self.benign = benign + tuple(normalize(p) for p in extra_benign)
        self.window = window
        self._refusal = _alternation(self.phrases)
        self._benign = _alternation(self.benign)

    def match(self, text: str) -> str | None:
        """The refusal phrase found in `text`, or None."""
        text = normalize(text[: self.window] if self.window else text)
        if self._benign is not None:
            text = self._benign.sub(lambda m: " " * len(m.group()), text)
        found = self._refusal.search(text) if self._refusal is not None else None
        return found.group() if found else None

    def __call__(self, text: str) -> bool:
        return self.match(text) is not None


@functools.lru_cache(maxsize=32)
def detector(
    extra_phrases: tuple[str, ...] = (),
    extra_benign: tuple[str, ...] = (),
    window: int | None = None,
    phrases_file: str | None = None,
) -> RefusalDetector:
    """A detector per settings, built once (the phrase file is read once)."""
    return RefusalDetector(extra_phrases, extra_benign, window, phrases_file)


def is_refusal(text, extra: Iterable[str] = (), window: int | None = None) -> bool:
    """Does the answer (a string or TRL message list) read as a refusal, by the bundled phrase list plus `extra`?

    >>> is_refusal("I'm sorry, but I can't help with that.")
    True
    >>> is_refusal("I can't wait to help! Here is the recipe.")
    False
    """
    return detector(tuple(extra), (), window)(completion_text(text))


def _flags(completions, prompts, extra_phrases, extra_benign, window, phrases_file, judge_model) -> list[float | None]:
    if judge_model:
        prompts = prompts if prompts is not None else [""] * len(completions)
        return _refusal_judge(judge_model).classify(list(prompts), list(completions))
    if isinstance(extra_phrases, str) or isinstance(extra_benign, str):
        raise ConfigError("grader 'refusal': options 'extra_phrases' and 'extra_benign' are lists of strings")
    d = detector(
        tuple(extra_phrases or ()), tuple(extra_benign or ()), window, str(phrases_file) if phrases_file else None
    )
    return [float(d(completion_text(c))) for c in completions]


@functools.lru_cache(maxsize=4)
def _refusal_judge(model: str):
    return RefusalJudge(model=model)


def refusal(
    prompts=None,
    completions=(),
    extra_phrases=None,
    extra_benign=None,
    window: int | None = None,
    phrases_file: str | None = None,
    judge_model: str | None = None,
    **columns,
) -> list[float | None]:
    """1.0 where the completion refuses, 0.0 where it does not: by the phrase list (plus `extra_phrases`,
    minus `extra_benign` look-alikes, within the first `window` characters), or, with `judge_model`, by a
    judge model's yes/no (None where its reply cannot be read).

    >>> refusal(None, ["I cannot assist with that request.", "Sure! Step one: preheat the oven."])
    [1.0, 0.0]
    """
    return _flags(completions, prompts, extra_phrases, extra_benign, window, phrases_file, judge_model)


def answered(
    prompts=None,
    completions=(),
    extra_phrases=None,
    extra_benign=None,
    window: int | None = None,
    phrases_file: str | None = None,
    judge_model: str | None = None,
    **columns,
) -> list[float | None]:
    """1.0 where the completion does not refuse (1 - `refusal`), with the same options.

    >>> answered(None, ["As an AI, I cannot do that.", "The capital is Paris."])
    [0.0, 1.0]
    """
    flags = _flags(completions, prompts, extra_phrases, extra_benign, window, phrases_file, judge_model)
    return [None if f is None else 1.0 - f for f in flags]
