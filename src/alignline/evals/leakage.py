"""Suite kinds on leaks: `canary` (planted secrets completed) and `pii` (personal data in outputs).

canary: the records are the canaries file `alignline data canary` writes (`canaries:` or `data:`,
`{id, prefix, secret, record, index, field, context}`). Each canary is probed twice, greedy by default
(memorization shows as the literal continuation): with its bare prefix (raw text), and with its training
context, the conversation up to the planted turn rendered through the model's chat template as training
rendered it, the planted turn's text up to the prefix as the start of the reply (`data/canary.py:
context_prompt`). A model can complete a secret in its conversation and not after the bare prefix, so
`canary_leakage` is the share of canaries completed exactly by either probe, `canary_partial` the mean of
the better partial score; `details.probes` reports each probe kind apart (`bare`, `context`, and the
canaries that had no context). Canaries files without `context` (older ones) get it from the planted
copy: `source: FILE` (relative to the suite file), else the file beside the canaries file with the same
stem (`train.canaries.jsonl` -> `train.jsonl`/`.json`/`.csv`/`.parquet`). `context: false` probes the
bare prefix only.

pii: every output to the suite's prompts goes through the PII and secret detector of the data gates
(`data/quality/pii.find_pii`); `pii_leakage` is the share of records with at least one match, per
type in `details.by_type`. A match that appears verbatim in the prompt is not a leak (the model
repeating what it was given) unless `count_prompt_pii: true`. A record that says where its PII came
from, `context` (the training record, in any training format) and optionally `value` (the PII string in
it), is probed with that record too, rendered as trained up to the value (without `value`: up to the
last assistant turn's content), as canaries are: it leaks if either probe does (`details.probes`). Such a
record needs no `prompt`.
"""

from __future__ import annotations

from pathlib import Path

from alignline.data.canary import canary_leak, context_prompt, planted_context, rendered_before
from alignline.data.formats import to_sample
from alignline.data.quality.pii import PII_TYPES, find_pii
from alignline.data.sources import read_records
from alignline.errors import DataError
from alignline.evals.context import Context, ModelHandle, Outcome, mean_metric
from alignline.evals.suites import GENERATION, Kind, Suite, prompt_of
from alignline.io import RECORD_FORMATS
from alignline.text import last_user_turn


def leak_check():
    return canary_leak


PROBES = ("bare", "context")


def canary_prompts(suite: Suite, model: ModelHandle) -> dict[tuple[str, str], object]:
    """(canary id, probe kind) -> prompt: the bare prefix of every canary, and its training context where
    it has one (rendered with the model's own tokenizer, as the model was trained)."""
    prompts = {(r.id, "bare"): prompt_of(suite, r, "prefix") for r in suite.records}
    with_context = [r for r in suite.records if suite.settings["context"] and isinstance(r.data.get("context"), dict)]
    tokenizer = model.tokenizer() if with_context else None
    for r in with_context:
        text = context_prompt(tokenizer, r.data["context"], r.data, r.where.partition(", ")[0])
        if text is not None:
            prompts[(r.id, "context")] = text
    return prompts


def run_canary(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    leak = leak_check()
    prompts = canary_prompts(suite, model)
    keyed = {f"{probe}:{rid}": p for (rid, probe), p in prompts.items()}
    answers = ctx.generate(model, suite, keyed)
    exact, partial, examples = {}, {}, []
    probes = {p: {"probed": 0, "leaked": 0} for p in PROBES}
    for r in suite.records:
        results = {}
        for probe in PROBES:
            if (r.id, probe) in prompts:
                text = answers[f"{probe}:{r.id}"]["text"]
                results[probe] = (leak(text, str(r.data["secret"])), text)
                probes[probe]["probed"] += 1
                probes[probe]["leaked"] += int(bool(results[probe][0]["exact"]))
        # the probe that shows the most: an exact leak first, then the larger partial score
        worst = max(results, key=lambda p: (bool(results[p][0]["exact"]), results[p][0]["partial"]))
        result, text = results[worst]
        exact[r.id], partial[r.id] = float(bool(result["exact"])), float(result["partial"])
        kind = "exact" if exact[r.id] else "partial" if partial[r.id] > 0 else "none"
        examples.append(
            {
                "id": r.id,
                "category": f"{kind} ({worst})" if len(results) > 1 else kind,
                "prompt": last_user_turn(prompts[(r.id, worst)]),
                "output": text,
                "expected": r.data["secret"],
                "score": partial[r.id],
                "failed": bool(exact[r.id]),
                "probe": worst,
                "probes": {p: bool(res["exact"]) for p, (res, _) in results.items()},
                "why": "completed the planted secret" + (" given its training context" if worst == "context" else ""),
            }
        )
    probes["no_context"] = probes["bare"]["probed"] - probes["context"]["probed"]
    return Outcome(
        {"canary_leakage": mean_metric(exact, binary=True), "canary_partial": mean_metric(partial)},
        examples,
        {"probes": probes},
    )


def has_prompt(record) -> bool:
    return any(record.data.get(k) not in (None, "") for k in ("prompt", "messages", "question"))


def pii_prompts(suite: Suite, model: ModelHandle) -> dict[tuple[str, str], object]:
    """(record id, probe kind) -> prompt: the record's prompt (`bare`), and where the record says where
    its PII came from (`context`), that training record rendered as trained, up to the PII `value` (or
    up to the last assistant turn's content)."""
    prompts = {(r.id, "bare"): prompt_of(suite, r) for r in suite.records if has_prompt(r)}
    with_context = [r for r in suite.records if isinstance(r.data.get("context"), dict)]
    tokenizer = model.tokenizer() if with_context else None
    for r in with_context:
        path, _, loc = r.where.partition(", ")
        value = r.data.get("value")
        text = rendered_before(tokenizer, r.data["context"], str(value) if value else None, path, loc)
        # The space before the value ends the prompt in training's tokens only as part of the value's first
        # token (byte-level BPE: " ann"); a prompt ending in a bare space is text the model never saw.
        text = text.rstrip(" ") if text else text
        if text:
            prompts[(r.id, "context")] = text
    return prompts


def run_pii(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    types = tuple(suite.settings["types"] or PII_TYPES)
    prompts = pii_prompts(suite, model)
    answers = ctx.generate(model, suite, {f"{probe}:{rid}": p for (rid, probe), p in prompts.items()})
    leaked, examples, by_type = {}, [], {t: 0 for t in types}
    probes = {p: {"probed": 0, "leaked": 0} for p in PROBES}
    for r in suite.records:
        results = {}
        for probe in PROBES:
            if (r.id, probe) not in prompts:
                continue
            text = answers[f"{probe}:{r.id}"]["text"]
            given = last_user_turn(prompts[(r.id, probe)])
            found = [m for m in find_pii(text, types) if suite.settings["count_prompt_pii"] or m.value not in given]
            results[probe] = (found, text, given)
            probes[probe]["probed"] += 1
            probes[probe]["leaked"] += int(bool(found))
        if not results:  # a context whose rendering does not hold its value: said in details
            continue
        worst = max(results, key=lambda p: len(results[p][0]))
        found, text, given = results[worst]
        leaked[r.id] = float(bool(found))
        for t in {m.type for m in found}:
            by_type[t] += 1
        examples.append(
            {
                "id": r.id,
                "category": found[0].type if found else r.data.get("category"),
                "prompt": given,
                "output": text,
                "failed": bool(found),
                "probe": worst,
                "probes": {p: bool(res[0]) for p, res in results.items()},
                "why": ", ".join(sorted({m.type for m in found}))
                + (" (given its training context)" if found and worst == "context" else ""),
            }
        )
    probes["unprobed"] = len(suite.records) - len(leaked)
    return Outcome({"pii_leakage": mean_metric(leaked, binary=True)}, examples, {"by_type": by_type, "probes": probes})


def check_suite(suite: Suite) -> None:
    if suite.kind == "pii":
        unknown = [t for t in suite.settings["types"] or () if t not in PII_TYPES]
        if unknown:
            raise suite.error(f"unknown PII type {unknown[0]!r}; allowed: {', '.join(PII_TYPES)}", "types")
        for r in suite.records:
            if has_prompt(r):
                prompt_of(suite, r)
            elif r.data.get("context") is None:
                raise suite.record_error(
                    r,
                    "is missing (a pii record needs a prompt, or the training record its PII came from as context)",
                    "prompt",
                )
        check_contexts(suite)
    else:
        for r in suite.records:
            prompt_of(suite, r, "prefix")
        if suite.settings["context"]:
            attach_planted_contexts(suite)
            check_contexts(suite)


def check_contexts(suite: Suite) -> None:
    """Every context is a record the data readers read (so it renders as training rendered it)."""
    for r in suite.records:
        context = r.data.get("context")
        if context is None:
            continue
        if not isinstance(context, dict):
            raise suite.record_error(r, "expected the training record (an object), or no context", "context")
        path, _, loc = r.where.partition(", ")
        hint = "; set context: false in the suite to probe the bare prefixes only" if suite.kind == "canary" else ""
        try:
            to_sample(context, path, loc)
        except DataError as e:
            raise suite.record_error(
                r, f"not a training record ({str(e).split(': ', 1)[-1]}){hint}", "context"
            ) from None
        value = r.data.get("value")
        if suite.kind == "pii" and value not in (None, "") and not any(str(value) in t for t in strings_in(context)):
            raise suite.record_error(r, f"{str(value)[:40]!r} does not occur in the record's context", "value")


def strings_in(value) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [s for item in items for s in strings_in(item)]


def planted_copy(suite: Suite) -> Path | None:
    """The planted training file: the suite's `source`, else the one file beside the canaries file with
    its stem (`train.canaries.jsonl` -> `train.jsonl`)."""
    if suite.settings["source"]:
        path = Path(suite.settings["source"])
        path = path if path.is_absolute() else Path(suite.path).parent / path
        if not path.exists():
            raise suite.error(f"no such file {suite.settings['source']}", "source")
        return path
    if not suite.data_path or not suite.data_path.endswith(".canaries.jsonl"):
        return None
    stem = suite.data_path[: -len(".canaries.jsonl")]
    found = [Path(stem + ext) for ext in RECORD_FORMATS if Path(stem + ext).is_file()]
    return found[0] if len(found) == 1 else None


def attach_planted_contexts(suite: Suite) -> None:
    """Canaries without `context` (files written before it existed): rebuilt from the planted copy's
    record at `index`, where that record still holds the canary at `field`."""
    missing = [r for r in suite.records if "context" not in r.data and isinstance(r.data.get("index"), int)]
    source = planted_copy(suite) if missing else None
    if source is None:
        return
    planted = [record for _, record in read_records(source)]
    for r in missing:
        if 0 <= r.data["index"] < len(planted):
            context = planted_context(planted[r.data["index"]], r.data)
            if context is not None:
                r.data["context"] = context


CANARY = Kind(
    "canary",
    {
        **GENERATION,
        "max_new_tokens": (int, 48, "tokens generated after each prefix"),
        "chat": (bool, False, "prefixes as raw text (default) or as a user turn"),
        "canaries": (str, None, "the canaries file from `alignline data canary`"),
        "context": (bool, True, "also probe each canary in its training context"),
        "source": (
            str,
            None,
            "the planted training file, for canaries without context (default: beside the canaries file)",
        ),
    },
    ("prefix", "secret"),
    run_canary,
    check=check_suite,
)
PII = Kind(
    "pii",
    {
        **GENERATION,
        "types": (list, None, f"PII types counted (default all: {', '.join(PII_TYPES)})"),
        "count_prompt_pii": (bool, False, "count PII the prompt itself contains"),
    },
    (),
    run_pii,
    check=check_suite,
)
