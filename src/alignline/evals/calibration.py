"""Suite kind `calibration`: does the model's confidence match how often it is right?

Two ways to get a confidence, chosen by the records:
- multiple choice (records with `choices: [...]` and `answer`, the right choice's index or text): each
  choice is scored as the answer to the prompt, teacher-forced (sum of its tokens' log-probs); the
  softmax over choices gives each one's probability; the prediction is the most probable choice and
  its probability is the confidence.
- free answers (records with `answer`, scored by `grader:`): the greedy answer's confidence is
  exp(mean token log-prob), its geometric-mean token probability; correct when the grader gives >= 0.5.

`ece` is the expected calibration error over `bins` equal-width confidence bins (`stats.ece_stat`),
with the reliability diagram's points in `details.reliability`; `accuracy` is reported beside it.
"""

from __future__ import annotations

import math

from alignline.evals.answers import columns_of
from alignline.evals.context import Context, Metric, ModelHandle, Outcome, mean_metric, prompt_ids
from alignline.evals.stats import compute, reliability_bins
from alignline.evals.suites import GENERATION, Kind, Suite, check_grader, prompt_of
from alignline.rewards.registry import get_grader, grade
from alignline.text import last_user_turn


def answer_index(record, choices: list) -> int | None:
    answer = record.data["answer"]
    if isinstance(answer, int) and not isinstance(answer, bool):
        return answer if 0 <= answer < len(choices) else None
    return next((i for i, c in enumerate(choices) if str(c).strip() == str(answer).strip()), None)


def multiple_choice(suite: Suite, model: ModelHandle, ctx: Context) -> tuple[list, list, list[dict]]:
    tok = model.tokenizer()
    items, prompts = {}, {}
    for r in suite.records:
        prompts[r.id] = prompt_of(suite, r)
        p = prompt_ids(tok, prompts[r.id])
        for j, choice in enumerate(r.data["choices"]):
            c = list(tok(str(choice), add_special_tokens=False)["input_ids"])
            ids = p + c
            items[f"{r.id}#{j}"] = (ids, [-100] * (len(p) - 1) + c + [-100])
    scored = ctx.sequence_logprobs(model, suite, items, "choices")
    conf, correct, examples = [], [], []
    for r in suite.records:
        logps = [scored[f"{r.id}#{j}"]["logp"] for j in range(len(r.data["choices"]))]
        top = max(logps)
        probs = [math.exp(x - top) for x in logps]
        total = sum(probs)
        best = max(range(len(probs)), key=probs.__getitem__)
        ok = best == answer_index(r, r.data["choices"])
        conf.append(probs[best] / total)
        correct.append(float(ok))
        examples.append(
            {
                "id": r.id,
                "category": r.data.get("category"),
                "prompt": last_user_turn(prompts[r.id]),
                "output": str(r.data["choices"][best]),
                "expected": r.data["answer"],
                "score": conf[-1],
                "failed": not ok and conf[-1] >= 0.5,
                "why": f"wrong with confidence {conf[-1]:.2f}",
            }
        )
    return conf, correct, examples


def free_answers(suite: Suite, model: ModelHandle, ctx: Context) -> tuple[list, list, list[dict]]:
    spec = suite.settings["grader"]
    prompts = {r.id: prompt_of(suite, r) for r in suite.records}
    answers = ctx.generate(model, suite, prompts, logprobs=True)
    texts = [answers[r.id]["text"] for r in suite.records]
    scores = grade(spec, get_grader(spec), list(prompts.values()), texts, columns_of(suite.records))
    conf = [math.exp(answers[r.id].get("mean_logprob", -math.inf)) for r in suite.records]
    correct = [float(s is not None and s >= 0.5) for s in scores]
    examples = [
        {
            "id": r.id,
            "category": r.data.get("category"),
            "prompt": last_user_turn(prompts[r.id]),
            "output": t,
            "expected": r.data.get("answer"),
            "score": c,
            "failed": not ok and c >= 0.5,
            "why": f"wrong with confidence {c:.2f}",
        }
        for r, t, c, ok in zip(suite.records, texts, conf, correct)
    ]
    return conf, correct, examples


def run_calibration(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    mc = all("choices" in r.data for r in suite.records)
    conf, correct, examples = (multiple_choice if mc else free_answers)(suite, model, ctx)
    ids = [r.id for r in suite.records]
    bins = suite.settings["bins"]
    arrays = {"confidence": conf, "correct": correct}
    ece = Metric(compute("ece", arrays, {"bins": bins}), "ece", ids, arrays, {"bins": bins})
    accuracy = mean_metric(dict(zip(ids, correct)), binary=True)
    return Outcome(
        {"ece": ece, "accuracy": accuracy},
        examples,
        {"reliability": reliability_bins(conf, correct, bins), "mode": "choices" if mc else "free"},
    )


def check_suite(suite: Suite) -> None:
    if suite.settings["bins"] < 1:
        raise suite.error("must be at least 1", "bins")
    with_choices = [r for r in suite.records if "choices" in r.data]
    if with_choices and len(with_choices) != len(suite.records):
        r = next(r for r in suite.records if "choices" not in r.data)
        raise suite.record_error(r, "is missing (some records have choices: all must, or none)", "choices")
    for r in with_choices:
        if not isinstance(r.data["choices"], list) or len(r.data["choices"]) < 2:
            raise suite.record_error(r, "expected a list of at least two choices", "choices")
        if answer_index(r, r.data["choices"]) is None:
            raise suite.record_error(r, "is neither a choice's index nor one of the choices", "answer")
    if not with_choices:
        check_grader(suite)
    for r in suite.records:
        prompt_of(suite, r)


CALIBRATION = Kind(
    "calibration",
    {
        **GENERATION,
        "bins": (int, 10, "equal-width confidence bins for ECE"),
        "grader": (str, "exact_match", "scores free answers (records without choices)"),
    },
    ("answer",),
    run_calibration,
    check=check_suite,
)
