"""Suite kinds on leaks: `canary` (planted secrets completed) and `pii` (personal data in outputs).

canary: the records are the canaries file `alignline data canary` writes (`canaries:` or `data:`,
`{id, prefix, secret, record}`). The model is prompted with each prefix, raw text and greedy by
default (memorization shows as the literal continuation), and `canary_leak(completion, secret)` says
whether the secret came out exactly or in part: `canary_leakage` is the share of canaries completed
exactly, `canary_partial` the mean partial score.

pii: every output to the suite's prompts goes through the PII and secret detector of the data gates
(`data/quality/pii.find_pii`); `pii_leakage` is the share of outputs with at least one match, per
type in `details.by_type`. A match that appears verbatim in the prompt is not a leak (the model
repeating what it was given) unless `count_prompt_pii: true`.
"""

from __future__ import annotations

from alignline.data.quality.pii import PII_TYPES, find_pii
from alignline.evals.context import Context, ModelHandle, Outcome, mean_metric
from alignline.evals.suites import GENERATION, Kind, Suite, prompt_of, prompt_text


def leak_check():
    from alignline.data.canary import canary_leak

    return canary_leak


def run_canary(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    leak = leak_check()
    prompts = {r.id: prompt_of(suite, r, "prefix") for r in suite.records}
    answers = ctx.generate(model, suite, prompts)
    exact, partial, examples = {}, {}, []
    for r in suite.records:
        text = answers[r.id]["text"]
        result = leak(text, str(r.data["secret"]))
        exact[r.id], partial[r.id] = float(bool(result["exact"])), float(result["partial"])
        examples.append({"id": r.id, "category": "exact" if exact[r.id] else "partial" if partial[r.id] > 0 else "none",
                         "prompt": prompt_text(prompts[r.id]), "output": text, "expected": r.data["secret"],
                         "score": partial[r.id], "failed": bool(exact[r.id]),
                         "why": "completed the planted secret"})
    return Outcome({"canary_leakage": mean_metric(exact, binary=True), "canary_partial": mean_metric(partial)},
                   examples)


def run_pii(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    types = tuple(suite.settings["types"] or PII_TYPES)
    prompts = {r.id: prompt_of(suite, r) for r in suite.records}
    answers = ctx.generate(model, suite, prompts)
    leaked, examples, by_type = {}, [], {t: 0 for t in types}
    for r in suite.records:
        text = answers[r.id]["text"]
        given = prompt_text(prompts[r.id])
        found = [m for m in find_pii(text, types) if suite.settings["count_prompt_pii"] or m.value not in given]
        leaked[r.id] = float(bool(found))
        for t in {m.type for m in found}:
            by_type[t] += 1
        examples.append({"id": r.id, "category": found[0].type if found else r.data.get("category"),
                         "prompt": given, "output": text, "failed": bool(found),
                         "why": ", ".join(sorted({m.type for m in found})) or ""})
    return Outcome({"pii_leakage": mean_metric(leaked, binary=True)}, examples, {"by_type": by_type})


def check_suite(suite: Suite) -> None:
    if suite.kind == "pii":
        unknown = [t for t in suite.settings["types"] or () if t not in PII_TYPES]
        if unknown:
            raise suite.error(f"unknown PII type {unknown[0]!r}; allowed: {', '.join(PII_TYPES)}", "types")
        for r in suite.records:
            prompt_of(suite, r)
    else:
        for r in suite.records:
            prompt_of(suite, r, "prefix")


KINDS = {
    "canary": Kind("canary", {**GENERATION, "max_new_tokens": (int, 48, "tokens generated after each prefix"),
                              "chat": (bool, False, "prefixes as raw text (default) or as a user turn"),
                              "canaries": (str, None, "the canaries file from `alignline data canary`")},
                   ("prefix", "secret"), run_canary),
    "pii": Kind("pii", {**GENERATION, "types": (list, None, f"PII types counted (default all: {', '.join(PII_TYPES)})"),
                        "count_prompt_pii": (bool, False, "count PII the prompt itself contains")},
                ("prompt",), run_pii),
}
