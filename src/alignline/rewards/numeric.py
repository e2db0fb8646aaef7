"""Numeric and math-answer graders: the completion's final answer against the record's `answer`.

Which number is the answer, in this order:
1. the content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced;
2. else what follows the last `####` (GSM8K's answer marker);
3. else the first number after the last `Answer:` (the line our prompts and starter suites ask for), so
   "Answer: 42. Check: 17 + 25 = 42" reads 42, whatever follows;
4. else the last number in the text.

What reads as a number (`parse_number`, `find_numbers`):
- integers and decimals with a sign: `42`, `-3.5`, `+7`, `.5`, a Unicode minus `−2`;
- thousands separators: `1,234` and `1,234,567.5` (only groups of exactly three digits after a comma,
  so a list `1,2,3` reads as three numbers);
- scientific notation: `1e-3`, `2.5E10`;
- fractions: `1/2`, `3 / 4` and LaTeX `\\frac{1}{2}`, `\\dfrac`, `\\tfrac` (-> 0.5);
- a trailing percent sign is dropped: `50%` reads as 50 (datasets write such answers as `50`), not 0.5;
- currency signs and units around it are ignored (`$1,234.50` -> 1234.5; `12 cm` -> 12).
Not handled: words (`twelve`), mixed numbers (`1 1/2` reads as 1 and 1/2, the last being 0.5),
roots and other expressions (`\\sqrt{2}`), which `math_answer` compares as normalized LaTeX strings instead.

Tolerance: equal when |pred - gold| <= max(abs_tol, rel_tol * |gold|), relative to the answer.
A record whose answer is missing or unreadable as a number gets None; a completion with no number, 0.0.
"""

from __future__ import annotations

import math
import re

from alignline.errors import ConfigError
from alignline.rewards.columns import per_record
from alignline.text import completion_text

_NUMBER = re.compile(
    r"""
    (?<![\w.])                          # not inside a word or a decimal (so 10-20 is 10 and 20)
    (?P<sign>[-+\u2212]?)
    (?P<int>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
    (?:[eE](?P<exp>[-+]?\d+))?
    (?:\s*/\s*(?P<den>\d+(?:\.\d+)?)(?!\.?\d))?
    """,
    re.X,
)
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")


def _value(m: re.Match) -> float | None:
    x = float(m["int"].replace(",", ""))
    if m["exp"]:
        x *= 10.0 ** int(m["exp"])
    if m["den"]:
        den = float(m["den"])
        if den == 0:
            return None
        x /= den
    return -x if m["sign"] in ("-", "\u2212") else x


def clean_latex(text: str) -> str:
    """LaTeX spacing and wrappers removed, `\\frac{a}{b}` written `a/b`, so numbers in math read plainly.

    >>> clean_latex(r"\\$1{,}000 \\text{ dollars}")
    '$1,000   dollars'
    """
    text = _TEXT.sub(r" \1", text)
    text = _FRAC.sub(r"(\1)/(\2)", text)
    text = re.sub(r"\\[!,;: ]|\\left|\\right|\\%|\^\{?\\circ\}?", "", text)
    text = text.replace("{,}", ",").replace("\\$", "$")
    return re.sub(r"\((-?[\d.]+)\)/\((-?[\d.]+)\)", r"\1/\2", text)


def find_numbers(text: str) -> list[float]:
    """Every number in the text, in order (see the module docstring for what reads as one).

    >>> find_numbers("Sold 1,234 at $-3.5 each, 1/2 of them, 50% off")
    [1234.0, -3.5, 0.5, 50.0]
    """
    return [v for v in (_value(m) for m in _NUMBER.finditer(clean_latex(text))) if v is not None]


def parse_number(text) -> float | None:
    """A value that is one number (`"1,234"`, `"-3.5"`, `"1/2"`, `"50%"`, `3`); None if it is not one."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text) if math.isfinite(text) else None
    s = clean_latex(str(text)).strip().strip("$").strip().rstrip(".").rstrip("%").strip()
    m = _NUMBER.fullmatch(s)
    return _value(m) if m else None


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` or `\\fbox{...}`, nested braces balanced; None if there is none.

    >>> last_boxed(r"so \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


ANSWER_MARKER = re.compile(r"answer\s*(?:is)?\s*[:=]", re.IGNORECASE)


def last_answer_marker(text: str):
    """The last `Answer:` marker of a text, or None."""
    found = None
    for found in ANSWER_MARKER.finditer(text):  # noqa: B007 - the loop leaves the last match in `found`
        pass
    return found


def final_answer(text: str) -> str | None:
    """The text of the final answer: the last boxed content, else what follows `####`, else the last number."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    if "####" in text:
        return text.rsplit("####", 1)[1].strip().split("\n")[0]
    marker = last_answer_marker(text)
    if marker is not None:
        after = _NUMBER.search(clean_latex(text[marker.end() :]))
        if after is not None:
            return after.group()
    matches = list(_NUMBER.finditer(clean_latex(text)))
    return matches[-1].group() if matches else None


def extract_number(text: str) -> float | None:
    """The completion's final answer as a number: boxed, else after `####`, else the last number.

    >>> extract_number(r"2 + 2 = \\boxed{4}, not 5")
    4.0
    >>> extract_number("The total is 1,234.")
    1234.0
    """
    answer = final_answer(text)
    if answer is None:
        return None
    value = parse_number(answer)
    if value is None:  # a boxed expression or a sentence: its last number
        numbers = find_numbers(answer)
        value = numbers[-1] if numbers else None
    return value


def close(pred: float, gold: float, abs_tol: float, rel_tol: float) -> bool:
    return abs(pred - gold) <= max(abs_tol, rel_tol * abs(gold))


def gold_answer_text(answer: str) -> str:
    """The gold answer of a record's answer field: a MATH solution's last `\\boxed{}`, else what follows a
    GSM8K solution's `####`, else the field as written.

    >>> gold_answer_text("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\\n#### 1,234")
    '1,234'
    """
    boxed = last_boxed(answer)
    if boxed is not None:
        return boxed
    if "####" in answer:
        after = answer.rsplit("####", 1)[1].strip()
        return after.split("\n")[0].strip() if after else answer
    return answer


def _gold_number(answer) -> float | None:
    if isinstance(answer, str):
        value = parse_number(answer)
        return value if value is not None else extract_number(answer)  # a GSM8K solution ends in "#### 72"
    return parse_number(answer)


def check_tolerance_options(options: dict) -> None:
    for key in ("abs_tol", "rel_tol"):
        v = options.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise ConfigError(f"grader '{options['_grader']}': option '{key}' must be a number >= 0, got {v!r}")


def numeric_match(
    prompts=None, completions=(), answer=None, abs_tol: float = 1e-6, rel_tol: float = 1e-6, **columns
) -> list[float | None]:
    """1.0 where the completion's final number (boxed, after `####`, or the last one) equals the answer
    within tolerance: |pred - gold| <= max(abs_tol, rel_tol * |gold|). None where the answer is missing
    or not a number; 0.0 where the completion has no number.

    >>> numeric_match(None, ["So x = 1/2.", "about 3.14", "no idea"], answer=["0.5", 3.14159, "7"], abs_tol=0.01)
    [1.0, 1.0, 0.0]
    """
    answers = per_record(answer, len(completions), "answer", "numeric_match")
    out = []
    for c, a in zip(completions, answers):
        gold = _gold_number(a)
        if gold is None:
            out.append(None)
            continue
        pred = extract_number(completion_text(c))
        out.append(float(pred is not None and close(pred, gold, abs_tol, rel_tol)))
    return out


def normalize_latex(text: str) -> str:
    """A math answer reduced for string comparison: no spaces, `$`, `\\left`/`\\right`, `\\dfrac`->`\\frac`,
    no trailing period, `\\text{...}` unwrapped.

    >>> normalize_latex(r"$\\dfrac{\\pi}{2}$ .")
    '\\\\frac{\\\\pi}{2}'
    """
    text = _TEXT.sub(r"\1", text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\\left|\\right|\\[!,;: ]|\$|\s", "", text)
    return text.rstrip(".")


def math_answer(
    prompts=None, completions=(), answer=None, abs_tol: float = 1e-6, rel_tol: float = 1e-6, **columns
) -> list[float | None]:
    """1.0 where the completion's final answer (boxed, after `####`, or the last number) matches the record's
    answer: numerically within tolerance when both read as numbers, else as normalized LaTeX strings
    (`\\frac{\\pi}{2}` == `\\dfrac{\\pi}{2}`). An answer that is itself a solution is read at its last
    `\\boxed{}` (MATH's `solution`) or after its `####` (GSM8K's `answer`: worked solution, then `#### 72`).
    None where there is no answer; 0.0 where the completion gives none.

    >>> completions = [r"so \\boxed{\\dfrac{\\pi}{2}}", r"\\boxed{1,000}", "x=3"]
    >>> math_answer(None, completions, answer=[r"\\frac{\\pi}{2}", "1000", "4"])
    [1.0, 1.0, 0.0]
    """
    answers = per_record(answer, len(completions), "answer", "math_answer")
    return [answer_matches(final_answer(completion_text(c)), a, abs_tol, rel_tol) for c, a in zip(completions, answers)]


def answer_matches(pred_text: str | None, answer, abs_tol: float, rel_tol: float) -> float | None:
    """`math_answer`'s comparison of one extracted answer text with one record's answer (None: no answer)."""
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return None
    gold_text = answer if not isinstance(answer, str) else gold_answer_text(answer)
    if pred_text is None:
        return 0.0
    gold, pred = parse_number(gold_text), parse_number(pred_text)
    if gold is not None and pred is None:  # a boxed sentence or expression around the number
        numbers = find_numbers(pred_text)
        pred = numbers[-1] if numbers else None
    if gold is not None and pred is not None:
        return float(close(pred, gold, abs_tol, rel_tol))
    return float(normalize_latex(str(gold_text)) == normalize_latex(pred_text))


# The answer formats `math_correct` requires: where the answer must be written for it to count.
ANSWER_FORMATS = ("answer_line", "boxed", "gsm8k", "any")
_ANSWER_LINE = re.compile(r"(?:^|\n)[ \t*]*answer\s*:\s*\**\s*([^\n]*?)\s*\**\s*\.?\s*$", re.IGNORECASE)


def formatted_answer(text: str, answer_format: str) -> str | None:
    """The answer text written in `answer_format`, or None where the completion does not write it so:
    `answer_line`: the reply's last line is `Answer: <number>`, one number (a hedge `Answer: 7, or 8` is
    not one); `boxed`: the last `\\boxed{...}`;
    `gsm8k`: what follows the last `####` (to the end of its line); `any`: `math_answer`'s reading.

    >>> formatted_answer("3 + 4 = 7\\nAnswer: 7", "answer_line"), formatted_answer("Answer: 7, or 8", "answer_line")
    ('7', None)
    >>> formatted_answer("so 7", "answer_line"), formatted_answer("Answer: 7\\nWait, 8", "answer_line")
    (None, None)
    """
    if answer_format == "answer_line":
        m = _ANSWER_LINE.search(text.strip())
        return m.group(1) if m and parse_number(m.group(1)) is not None else None
    if answer_format == "boxed":
        return last_boxed(text)
    if answer_format == "gsm8k":
        if "####" not in text:
            return None
        after = text.rsplit("####", 1)[1].strip()
        return after.split("\n")[0].strip() or None
    return final_answer(text)


def check_math_correct_options(options: dict) -> None:
    check_tolerance_options(options)
    fmt = options.get("answer_format", "answer_line")
    if fmt not in ANSWER_FORMATS:
        raise ConfigError(
            f"grader '{options['_grader']}': option 'answer_format' must be one of {', '.join(ANSWER_FORMATS)}, "
            f"got {fmt!r}"
        )


def math_correct(
    prompts=None,
    completions=(),
    answer=None,
    answer_format: str = "answer_line",
    abs_tol: float = 1e-6,
    rel_tol: float = 1e-6,
    **columns,
) -> list[float | None]:
    """The answer-correctness preset: 1.0 only where the completion states its answer in the required format
    (`answer_format`: `answer_line`, the last line `Answer: N`, default; `boxed`; `gsm8k`, `#### N`; `any`)
    AND that answer matches the record's `answer` (as `math_answer` compares). Format is folded into the
    extraction: a well-formatted wrong answer and a right number outside the format both score 0, so neither
    shape nor luck is paid. None where the record has no answer.

    A sampled reference answer written bare (`42`) scores 0 here unless `answer_format: any`: GRPO's check of
    the references then warns, rightly, that the data's answers are not in the required format.

    >>> math_correct(None, ["4 + 3 = 7\\nAnswer: 7", "Answer: 8", "it is 7"], answer=[7, 7, 7])
    [1.0, 0.0, 0.0]
    >>> math_correct(None, ["so \\\\boxed{12}", "#### 12"], answer=["12", "#### 12"], answer_format="gsm8k")
    [0.0, 1.0]
    """
    answers = per_record(answer, len(completions), "answer", "math_correct")
    return [
        answer_matches(formatted_answer(completion_text(c), answer_format), a, abs_tol, rel_tol)
        for c, a in zip(completions, answers)
    ]
