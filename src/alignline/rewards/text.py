"""Text graders: exact and normalized match, substring, regular expression, SQuAD token F1, length.

Each compares a completion's text (`completion_text`) with the record's `answer` (one string, or a
list of acceptable strings for that record, scored against the best one, as SQuAD does) and gives
`None` where the record has no answer. SQuAD's normalization: lower case, punctuation and the
articles a/an/the dropped, whitespace collapsed.
"""

from __future__ import annotations

import functools
import re
from collections import Counter

from alignline.errors import ConfigError
from alignline.rewards.columns import per_record
from alignline.text import completion_text


def normalize_text(text: str) -> str:
    """Lower case, punctuation and articles dropped, whitespace collapsed (SQuAD's normalization).

    >>> normalize_text("The  Eiffel Tower!")
    'eiffel tower'
    """
    text = re.sub(r"[^\w\s]", " ", text.lower())
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _golds(answer) -> list[str] | None:
    """One record's answer as a list of acceptable strings; None when it has none."""
    if answer is None:
        return None
    golds = [str(a) for a in answer if a is not None] if isinstance(answer, (list, tuple)) else [str(answer)]
    return golds or None


def _best(completions: list, answers: list, score) -> list[float | None]:
    out = []
    for c, a in zip(completions, answers):
        golds = _golds(a)
        out.append(None if golds is None else max(score(completion_text(c), g) for g in golds))
    return out


def exact_match(prompts=None, completions=(), answer=None, **columns) -> list[float | None]:
    """1.0 where the completion, stripped, equals the record's `answer` (or one of its answers); None where
    there is none.

    Args:
        completions: the texts (or TRL conversational message lists) to grade.
        answer: the records' answers, one per completion (a string or a list of acceptable strings).

    >>> exact_match(["q", "q"], [" Paris ", "paris"], answer=["Paris", "Paris"])
    [1.0, 0.0]
    """
    answers = per_record(answer, len(completions), "answer", "exact_match")
    return _best(completions, answers, lambda c, g: float(c.strip() == g.strip()))


def normalized_match(prompts=None, completions=(), answer=None, **columns) -> list[float | None]:
    """1.0 where the completion equals the answer after SQuAD normalization (`normalize_text`).

    >>> normalized_match(None, ["The Eiffel tower."], answer=[["eiffel tower", "La tour Eiffel"]])
    [1.0]
    """
    answers = per_record(answer, len(completions), "answer", "normalized_match")
    return _best(completions, answers, lambda c, g: float(normalize_text(c) == normalize_text(g)))


def contains(prompts=None, completions=(), answer=None, ignore_case: bool = False, **columns) -> list[float | None]:
    """1.0 where the answer appears in the completion as a substring (`ignore_case`: case-insensitively).
    `answer` is the records' column, or a fixed option: `get_grader("contains", answer="Paris")`.

    >>> contains(None, ["It is Paris.", "It is Lyon."], answer="Paris")
    [1.0, 0.0]
    """
    answers = per_record(answer, len(completions), "answer", "contains")
    if ignore_case:
        return _best(completions, answers, lambda c, g: float(g.lower() in c.lower()))
    return _best(completions, answers, lambda c, g: float(g in c))


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str, flags: str = "", grader: str = "regex") -> re.Pattern:
    """A pattern with flags from letters (`i` ignore case, `m` multiline, `s` dot matches newline)."""
    bits = 0
    for letter in flags:
        if letter not in "ims":
            raise ConfigError(f"grader '{grader}': flag {letter!r} is not one of i, m, s")
        bits |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[letter]
    try:
        return re.compile(pattern, bits)
    except re.error as e:
        raise ConfigError(f"grader '{grader}': pattern {pattern!r} is not a valid regular expression ({e})") from None


def check_regex_options(options: dict) -> None:
    if isinstance(options.get("pattern"), str):
        compile_pattern(options["pattern"], options.get("flags", ""), options["_grader"])


def regex(
    prompts=None, completions=(), pattern=None, flags: str = "", fullmatch: bool = False, **columns
) -> list[float | None]:
    """1.0 where the pattern is found in the completion (`re.search`; `fullmatch`: the whole stripped text
    must match). The pattern is an option (`get_grader("regex", pattern="^Answer:")`) or each record's
    `pattern` field; `flags` letters: i, m, s. None where a record has no pattern.

    >>> regex(None, ["Answer: 4", "4"], pattern=r"^Answer: \\d+$")
    [1.0, 0.0]
    """
    patterns = per_record(pattern, len(completions), "pattern", "regex")
    out = []
    for c, p in zip(completions, patterns):
        if p is None:
            out.append(None)
            continue
        compiled = compile_pattern(str(p), flags)
        text = completion_text(c)
        found = compiled.fullmatch(text.strip()) if fullmatch else compiled.search(text)
        out.append(float(found is not None))
    return out


def f1_score(prediction: str, gold: str) -> float:
    """SQuAD token F1 on normalized tokens: overlap counts tokens with multiplicity.

    >>> f1_score("the cat sat", "a cat sat down")  # tokens [cat, sat] vs [cat, sat, down]: P=1, R=2/3
    0.8
    """
    pred, ref = normalize_text(prediction).split(), normalize_text(gold).split()
    if not pred or not ref:
        return float(pred == ref)  # both empty: 1; one empty: 0 (SQuAD's rule for no-answer questions)
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prompts=None, completions=(), answer=None, **columns) -> list[float | None]:
    """SQuAD token F1 between the completion and the answer (the best of several answers), in [0, 1].

    >>> token_f1(None, ["the cat sat"], answer=["a cat sat down"])
    [0.8]
    """
    answers = per_record(answer, len(completions), "answer", "token_f1")
    return _best(completions, answers, f1_score)


@functools.lru_cache(maxsize=4)
def _tokenizer(spec: str):
    from alignline.models.loading import load_tokenizer_for  # lazy: torch + transformers, for token lengths only

    return load_tokenizer_for(spec)


def check_length_options(options: dict) -> None:
    name = options["_grader"]
    unit = options.get("unit", "chars")
    if unit not in ("chars", "words", "tokens"):
        raise ConfigError(f"grader '{name}': unit {unit!r} is not one of chars, words, tokens")
    for key in ("min", "max"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"grader '{name}': option '{key}' must be a number >= 0, got {value!r}")
    if options.get("min") is not None and options.get("max") is not None and options["min"] > options["max"]:
        raise ConfigError(f"grader '{name}': min {options['min']} is above max {options['max']}")


def length(
    prompts=None,
    completions=(),
    unit: str = "chars",
    min=None,
    max=None,
    tokenizer: str | None = None,
    completion_ids=None,
    **columns,
) -> list[float]:
    """The completion's length, or, with `min` and/or `max`, 1.0 inside [min, max] and 0.0 outside.

    Args:
        unit: `chars`, `words` (whitespace-separated) or `tokens`: the `completion_ids` TRL passes, else
            the text tokenized by `tokenizer` (a model or tokenizer path, loaded once).
        min, max: bounds, inclusive; either may be left out.

    >>> length(None, ["four", "eight ch"])
    [4.0, 8.0]
    >>> length(None, ["four", "eight ch"], max=5)
    [1.0, 0.0]
    """
    if unit == "tokens" and completion_ids is not None:
        sizes = [len(ids) for ids in completion_ids]
    elif unit == "tokens":
        if not tokenizer:
            raise ConfigError("grader 'length': unit 'tokens' needs a 'tokenizer' option (a model or tokenizer path)")
        tok = _tokenizer(tokenizer)
        sizes = [len(tok(completion_text(c), add_special_tokens=False)["input_ids"]) for c in completions]
    elif unit == "words":
        sizes = [len(completion_text(c).split()) for c in completions]
    elif unit == "chars":
        sizes = [len(completion_text(c)) for c in completions]
    else:
        raise ConfigError(f"grader 'length': unit {unit!r} is not one of chars, words, tokens")
    if min is None and max is None:
        return [float(s) for s in sizes]
    return [float((min is None or s >= min) and (max is None or s <= max)) for s in sizes]
