"""Model judges: a model asked a question through a template, its reply read as one of a few labels.

- `PairwiseJudge`: which of two answers to the same prompt is better. `judge(prompt, a, b)` gives 1.0
  when A is better, 0.0 when B is, 0.5 for a tie and None when the reply cannot be read; as the
  `pairwise_judge` grader it compares each completion (A) with the record's `baseline` (B).
  With `samples: 1` (default) the judge decodes greedily and the score is its choice; with `samples: N`
  it samples N replies at `temperature` and the score is their mean, an estimate of the probability
  that A is better. Position bias is not corrected here: judging both orders and combining them is the
  caller's (the eval's win rate).
- `RefusalJudge`: did an answer refuse its prompt (1.0) or not (0.0); used by the `refusal` grader's
  `judge_model` option, for refusals a phrase list does not catch.
- `ScriptedJudge` and `ScriptedEngine`: judges without a model, for tests and dry runs.

Templates are plain text files bundled in `rewards/prompts/` (read them: they are the whole prompt), with
`{prompt}`, `{a}`, `{b}` (or `{answer}`) filled in one pass, so braces in the texts themselves are safe.
The `template` option overrides one: a path to a text file, or the template text itself. The rendered
template is sent as one user message, so the judge model's chat template applies (`chat: false` sends
it as raw text).

Replies are read at their first word, after markup (`**A**`, `[[A]]`, `Answer: A`, `Verdict - B`):
A / B / tie (also draw, equal, both) for the pairwise judge; yes / no (also refused / answered) for refusals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from alignline.errors import ConfigError
from alignline.rewards.columns import per_record
from alignline.rewards.registry import get_grader
from alignline.rollout.types import Completion, SamplingParams
from alignline.text import completion_text, prompt_text

PROMPTS_DIR = Path(__file__).parent / "prompts"
PAIRWISE_LABELS = {"a": 1.0, "b": 0.0, "tie": 0.5, "draw": 0.5, "equal": 0.5, "both": 0.5}
REFUSAL_LABELS = {"yes": 1.0, "no": 0.0, "refused": 1.0, "refusal": 1.0, "answered": 0.0}
_ENGINES: dict[tuple, object] = {}


def load_template(spec: str | None, default: str, fields: Sequence[str], grader: str) -> str:
    """The bundled template `default` (a file in rewards/prompts/), or `spec`: a path to a text file or the
    template text itself. It must contain every `{field}`."""
    if spec is None:
        text = (PROMPTS_DIR / default).read_text(encoding="utf-8")
    elif "{" not in spec and Path(spec).expanduser().is_file():
        text = Path(spec).expanduser().read_text(encoding="utf-8")
    elif "{" in spec:
        text = spec
    else:
        raise ConfigError(
            f"grader '{grader}': template {spec!r} is neither a file nor a template with "
            f"{', '.join('{' + f + '}' for f in fields)}"
        )
    missing = [f for f in fields if "{" + f + "}" not in text]
    if missing:
        raise ConfigError(f"grader '{grader}': the judge template has no {{{missing[0]}}} placeholder")
    return text


def fill(template: str, values: dict[str, str]) -> str:
    """`{name}` placeholders replaced in one pass: a `{a}` inside a filled-in text stays as it is.

    >>> fill("Q: {prompt} A: {a}", {"prompt": "say {a}", "a": "ok"})
    'Q: say {a} A: ok'
    """
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, values)) + r")\}")
    return pattern.sub(lambda m: values[m.group(1)], template)


def read_label(reply: str, labels: dict[str, float]) -> float | None:
    """A judge's reply read at its first word (after markup and an `Answer:`/`Verdict:` lead-in); None if it
    is not one of the labels.

    >>> replies = ["A", " **B**.", "[[A]]", "Verdict: tie", "Answer A is better", "maybe"]
    >>> [read_label(r, PAIRWISE_LABELS) for r in replies]
    [1.0, 0.0, 1.0, 0.5, 1.0, None]
    """
    bracketed = re.search(r"\[\[\s*(\w+)\s*\]\]", reply)
    if bracketed and bracketed.group(1).lower() in labels:
        return labels[bracketed.group(1).lower()]
    m = re.match(r"\W*(?:(?:final\s+)?(?:answer|verdict|judgment|judgement)\b\W*)?(\w+)", reply.lower())
    return labels.get(m.group(1)) if m else None


def engine_for(model: str, backend: str = "auto"):
    """A generation engine for the judge model, loaded once per (model, backend) and shared by all judges."""
    key = (model, backend)
    if key not in _ENGINES:
        from alignline.rollout.engine import load_engine  # lazy: torch + the HF/vLLM engines; graders load light

        _ENGINES[key] = load_engine(model, backend=backend)
    return _ENGINES[key]


class Judge:
    """A template, a model (or any `Engine`), and the labels its reply is read as."""

    def __init__(
        self,
        template: str,
        labels: dict[str, float],
        model: str | None = None,
        engine=None,
        samples: int = 1,
        temperature: float = 1.0,
        max_new_tokens: int = 8,
        backend: str = "auto",
        chat: bool = True,
        seed: int = 0,
        grader: str = "judge",
    ):
        if model is None and engine is None:
            raise ConfigError(f"grader '{grader}': needs a 'model' option (the judge model: a path or name)")
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise ConfigError(f"grader '{grader}': option 'samples' must be an integer >= 1, got {samples!r}")
        if samples > 1 and not temperature > 0:
            raise ConfigError(f"grader '{grader}': samples {samples} needs a temperature > 0")
        self.template, self.labels, self.model, self.engine = template, labels, model, engine
        self.samples, self.temperature, self.max_new_tokens = samples, temperature, max_new_tokens
        self.backend, self.chat, self.seed = backend, chat, seed

    def ask(self, items: list[dict[str, str]]) -> list[float | None]:
        """One score per item (its fields filled into the template): the label's value, or the mean over
        `samples` replies that could be read; None where none could."""
        if not items:
            return []
        engine = self.engine if self.engine is not None else engine_for(self.model, self.backend)
        texts = [fill(self.template, item) for item in items]
        prompts = [[{"role": "user", "content": t}] for t in texts] if self.chat else texts
        greedy = self.samples == 1
        params = SamplingParams(
            max_new_tokens=self.max_new_tokens,
            temperature=0.0 if greedy else self.temperature,
            n=self.samples,
            seed=self.seed,
        )
        out = []
        for replies in engine.generate(prompts, params):
            read = [v for v in (read_label(r.text, self.labels) for r in replies) if v is not None]
            out.append(sum(read) / len(read) if read else None)
        return out


class PairwiseJudge:
    """`judge(prompt, a, b)` -> 1.0 (A better) .. 0.0 (B better), None when unreadable; as a grader,
    each completion (A) against the record's `baseline` (B).

    Options: model (the judge), template, samples, temperature, max_new_tokens, backend, chat, seed;
    engine (an `Engine` object, from code).
    """

    def __init__(
        self,
        model: str | None = None,
        template: str | None = None,
        samples: int = 1,
        temperature: float = 1.0,
        max_new_tokens: int = 8,
        backend: str = "auto",
        chat: bool = True,
        seed: int = 0,
        engine=None,
    ):
        text = load_template(template, "pairwise_judge.txt", ("prompt", "a", "b"), "pairwise_judge")
        self.core = Judge(
            text,
            PAIRWISE_LABELS,
            model,
            engine,
            samples,
            temperature,
            max_new_tokens,
            backend,
            chat,
            seed,
            grader="pairwise_judge",
        )
        self.__name__ = "pairwise_judge"

    def judge_batch(self, prompts: list, a: list, b: list) -> list[float | None]:
        items = [
            {"prompt": prompt_text(p), "a": completion_text(x), "b": completion_text(y)}
            for p, x, y in zip(prompts, a, b)
        ]
        return self.core.ask(items)

    def judge(self, prompt, a, b) -> float | None:
        return self.judge_batch([prompt], [a], [b])[0]

    def __call__(self, prompts=None, completions=(), baseline=None, **columns) -> list[float | None]:
        baselines = per_record(baseline, len(completions), "baseline", self.__name__)
        prompts = prompts if prompts is not None else [""] * len(completions)
        rows = [i for i, b in enumerate(baselines) if b is not None]
        scores = self.judge_batch(
            [prompts[i] for i in rows], [completions[i] for i in rows], [baselines[i] for i in rows]
        )
        out: list[float | None] = [None] * len(completions)
        for i, s in zip(rows, scores):
            out[i] = s
        return out


class RefusalJudge:
    """`classify(prompts, answers)` -> 1.0 where the judge says the answer refused, 0.0 where not, None if unread."""

    def __init__(
        self,
        model: str | None = None,
        template: str | None = None,
        max_new_tokens: int = 8,
        backend: str = "auto",
        chat: bool = True,
        engine=None,
    ):
        text = load_template(template, "refusal_judge.txt", ("prompt", "answer"), "refusal")
        self.core = Judge(text, REFUSAL_LABELS, model, engine, 1, 1.0, max_new_tokens, backend, chat, grader="refusal")

    def classify(self, prompts: list, answers: list) -> list[float | None]:
        return self.core.ask(
            [{"prompt": prompt_text(p), "answer": completion_text(a)} for p, a in zip(prompts, answers)]
        )


SCRIPTED_RULES: dict[str, Callable[[str, str, str], float | None]] = {
    "longer": lambda p, a, b: 1.0 if len(a) > len(b) else 0.0 if len(a) < len(b) else 0.5,
    "shorter": lambda p, a, b: 1.0 if len(a) < len(b) else 0.0 if len(a) > len(b) else 0.5,
    "first": lambda p, a, b: 1.0,  # a judge that always picks the answer shown first: maximal position bias
    "second": lambda p, a, b: 0.0,
    "tie": lambda p, a, b: 0.5,
}


class ScriptedJudge(PairwiseJudge):
    """A pairwise judge without a model: `rule(prompt, a, b) -> float | None` on the texts, or a rule's name
    (`longer`, `shorter`, `first`, `second`, `tie`). For tests and dry runs of win-rate logic.

    >>> ScriptedJudge("longer").judge("q", "a long answer", "short")
    1.0
    """

    def __init__(self, rule: str | Callable = "longer"):
        if isinstance(rule, str):
            if rule not in SCRIPTED_RULES:
                raise ConfigError(f"grader 'scripted_judge': rule {rule!r} is not one of {', '.join(SCRIPTED_RULES)}")
            rule = SCRIPTED_RULES[rule]
        self.rule = rule
        self.__name__ = "scripted_judge"

    def judge_batch(self, prompts: list, a: list, b: list) -> list[float | None]:
        return [self.rule(prompt_text(p), completion_text(x), completion_text(y)) for p, x, y in zip(prompts, a, b)]


class ScriptedEngine:
    """An `Engine` whose reply to each prompt is `reply(prompt_text)`: a judge model for tests."""

    name = "scripted"
    tokenizer = None

    def __init__(self, reply: Callable[[str], str]):
        self.reply = reply
        self.calls: list[str] = []

    def generate(self, prompts, params):
        texts = [prompt_text(p) for p in prompts]
        self.calls += texts
        return [
            [Completion(text=self.reply(t), token_ids=[], finish_reason="stop") for _ in range(params.n)] for t in texts
        ]


def judge(prompt, a, b, **options) -> float | None:
    """Is answer `a` better than `b` for `prompt`: 1.0 yes, 0.0 no, 0.5 tie, None unreadable. `options` are
    the `pairwise_judge` grader's (`model`, `template`, `samples`, ...); the judge is built once per options."""
    return get_grader("pairwise_judge", **options).judge(prompt, a, b)
