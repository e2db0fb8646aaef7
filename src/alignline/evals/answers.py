"""Suite kinds on generated answers: `accuracy` (any grader) and `paraphrase` (consistency within groups).

accuracy: each record's prompt is answered (greedy by default) and scored by the suite's `grader:`
(a registry name, `file.py:function` or `module:function`, TRL's reward signature), with the record's
other fields as the grader's columns (`answer`, ...). `accuracy` is the mean score over records the
grader applies to (None: not applicable); with 0/1 scores the paired test against the baseline is McNemar's.

paraphrase: a record is a group, `prompts: [q1, q2, q3]` asking the same thing in different words.
Two answers agree when their normalized texts match (SQuAD normalization) or, with `grader:`, when the
grader scores one answer against the other as its `answer` (>= 0.5), e.g. a numeric grader.
`paraphrase_consistency` is, per group, the share of agreeing answer pairs, averaged over groups.
"""

from __future__ import annotations

from itertools import combinations

from alignline.evals.context import Context, ModelHandle, Outcome, mean_metric
from alignline.evals.suites import GENERATION, Kind, Suite, as_prompt, check_grader, prompt_of
from alignline.rewards.registry import get_grader, grade
from alignline.rewards.text import normalize_text
from alignline.text import last_user_turn

PROMPT_FIELDS = ("id", "prompt", "messages", "question", "prompts")


def columns_of(records) -> dict[str, list]:
    """The records' other fields as grader columns (one value per record, None where absent)."""
    names = list(dict.fromkeys(k for r in records for k in r.data if k not in PROMPT_FIELDS))
    return {n: [r.data.get(n) for r in records] for n in names}


def by_category(examples: list[dict], metric: str, value_of) -> dict:
    """Per category: n and the metric's mean over the examples with a value."""
    groups: dict[str, list[float]] = {}
    for e in examples:
        v = value_of(e)
        if v is not None:
            groups.setdefault(e.get("category") or "all", []).append(v)
    return {c: {"n": len(v), metric: sum(v) / len(v)} for c, v in sorted(groups.items())}


def run_accuracy(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    spec = suite.settings["grader"]
    grader = get_grader(spec)
    records = suite.records
    prompts = {r.id: prompt_of(suite, r) for r in records}
    answers = ctx.generate(model, suite, prompts)
    texts = [answers[r.id]["text"] for r in records]
    scores = grade(spec, grader, [prompts[r.id] for r in records], texts, columns_of(records))
    examples = [
        {
            "id": r.id,
            "category": r.data.get("category"),
            "prompt": last_user_turn(prompts[r.id]),
            "output": t,
            "expected": r.data.get("answer"),
            "score": s,
            "failed": s is not None and s < 0.5,
            "why": "wrong answer",
        }
        for r, t, s in zip(records, texts, scores)
    ]
    binary = all(s in (0.0, 1.0) for s in scores if s is not None)
    metric = mean_metric({r.id: s for r, s in zip(records, scores)}, binary=binary)
    metrics = {"accuracy": metric} if metric else {}
    if suite.settings.get("format"):  # a second grader on the same answers, reported apart from correctness
        fmt = suite.settings["format"]
        fscores = grade(fmt, get_grader(fmt), [prompts[r.id] for r in records], texts, columns_of(records))
        for e, f in zip(examples, fscores):
            e["format"] = f
        fmetric = mean_metric(
            {r.id: f for r, f in zip(records, fscores)}, binary=all(f in (0.0, 1.0) for f in fscores if f is not None)
        )
        if fmetric:
            metrics["format"] = fmetric
    return Outcome(metrics, examples, {"by_category": by_category(examples, "accuracy", lambda e: e["score"])})


def agree(spec: str | None, prompt, a: str, b: str) -> bool:
    if spec is None:
        return normalize_text(a) == normalize_text(b)
    (score,) = grade(spec, get_grader(spec), [prompt], [a], {"answer": [b]})
    return score is not None and score >= 0.5


def run_paraphrase(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    spec = suite.settings["grader"]
    prompts = {
        f"{r.id}#{j}": as_prompt(suite, r, q, f"prompts[{j}]")
        for r in suite.records
        for j, q in enumerate(r.data["prompts"])
    }
    answers = ctx.generate(model, suite, prompts)
    values, examples = {}, []
    for r in suite.records:
        keys = [f"{r.id}#{j}" for j in range(len(r.data["prompts"]))]
        pairs = list(combinations(keys, 2))
        agreed = sum(agree(spec, prompts[a], answers[a]["text"], answers[b]["text"]) for a, b in pairs)
        values[r.id] = agreed / len(pairs)
        examples.append(
            {
                "id": r.id,
                "category": r.data.get("category"),
                "prompt": " | ".join(last_user_turn(prompts[k]) for k in keys),
                "output": " | ".join(answers[k]["text"] for k in keys),
                "score": values[r.id],
                "failed": values[r.id] < 1.0,
                "why": f"{len(pairs) - agreed} of {len(pairs)} pairs disagree",
            }
        )
    metric = mean_metric(values)
    return Outcome(
        {"paraphrase_consistency": metric} if metric else {},
        examples,
        {"by_category": by_category(examples, "paraphrase_consistency", lambda e: e["score"])},
    )


def check_suite(suite: Suite) -> None:
    if suite.kind == "paraphrase":
        for r in suite.records:
            group = r.data.get("prompts")
            if not isinstance(group, list) or len(group) < 2:
                raise suite.record_error(r, "expected a list of at least two paraphrases", "prompts")
    else:
        for r in suite.records:
            prompt_of(suite, r)
    for key in ("grader", "format"):
        if suite.settings.get(key):
            check_grader(suite, key)  # an unknown grader fails before any model loads


ACCURACY = Kind(
    "accuracy",
    {
        **GENERATION,
        "grader": (str, "exact_match", "how answers are scored"),
        "format": (
            str,
            None,
            "a second grader on the same answers (e.g. the answer format), reported apart as `format`",
        ),
    },
    (),
    run_accuracy,
    check=check_suite,
)
PARAPHRASE = Kind(
    "paraphrase",
    {**GENERATION, "grader": (str, None, "answers agree when this grader scores one against the other >= 0.5")},
    ("prompts",),
    run_paraphrase,
    check=check_suite,
)
