"""Suite kinds scored by teacher-forced log-probs: `perplexity`, `kl` and `forgetting`.

perplexity: held-out records in any training format (`text`, `prompt`/`completion`, `messages`),
tokenized exactly as training does (`data/templates.tokenize_sample`: the chat template, loss on
assistant turns, the end-of-turn token included); `perplexity` = exp(total NLL / total scored tokens)
over the suite, so long records weigh by their tokens.

kl: the candidate answers each prompt by sampling at temperature 1 (no top-p/top-k: the model's own
distribution); for each answer, sum over its tokens of log p(token) - log p_base(token), both from a
teacher-forced forward pass (so a model against itself gives exactly 0); `kl` is the mean over prompts,
a one-sample Monte-Carlo estimate of KL(model || base) per prompt (unbiased, can be negative on a
single prompt). Base and model must share a tokenizer.

forgetting: a general held-out set scored for the model and for the base model (`base:` or the run's
`--baseline`): `measure: accuracy` (with `grader:`) gives `forgetting` = accuracy(base) - accuracy(model);
`measure: perplexity` gives `forgetting` = perplexity(model) - perplexity(base). Positive is worse.
"""

from __future__ import annotations

from alignline.data.formats import to_sample
from alignline.data.templates import IGNORE, shift_targets, tokenize_sample
from alignline.errors import ConfigError
from alignline.evals.answers import run_accuracy
from alignline.evals.context import Context, Metric, ModelHandle, Outcome, mean_metric, prompt_ids
from alignline.evals.stats import compute
from alignline.evals.suites import GENERATION, Kind, Suite, check_grader, prompt_of
from alignline.text import last_user_turn


def tokenized(suite: Suite, model: ModelHandle) -> dict[str, tuple[list[int], list[int]]]:
    tok = model.tokenizer()
    out = {}
    for r in suite.records:
        path, _, loc = r.where.partition(", ")
        ids, mask = tokenize_sample(tok, to_sample(r.data, path, loc))
        n = suite.settings["max_length"]
        out[r.id] = (ids[:n], shift_targets(ids[:n], mask[:n]))
    return out


def record_nll(suite: Suite, model: ModelHandle, ctx: Context) -> dict[str, dict]:
    scored = ctx.sequence_logprobs(model, suite, tokenized(suite, model))
    return {k: {"nll": -v["logp"], "tokens": v["tokens"]} for k, v in scored.items()}


def perplexity_metric(nll: dict[str, dict]) -> Metric:
    ids = list(nll)
    arrays = {"nll": [nll[k]["nll"] for k in ids], "tokens": [nll[k]["tokens"] for k in ids]}
    return Metric(compute("perplexity", arrays), "perplexity", ids, arrays)


def run_perplexity(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    nll = record_nll(suite, model, ctx)
    examples = [
        {
            "id": k,
            "category": r.data.get("category"),
            "prompt": r.where,
            "output": "",
            "score": v["nll"] / max(v["tokens"], 1),
            "failed": False,
            "why": "",
        }
        for (k, v), r in zip(nll.items(), suite.records)
    ]
    return Outcome({"perplexity": perplexity_metric(nll)}, examples)


def run_kl(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    base = ctx.reference(suite)
    prompts = {r.id: prompt_of(suite, r) for r in suite.records}
    samples = ctx.generate(model, suite, prompts, token_ids=True, temperature=1.0)
    tok = model.tokenizer()
    if base.hash != model.hash and base.tokenizer().get_vocab() != tok.get_vocab():
        raise ConfigError(
            f"suite {suite.name}: KL needs the model and the base model '{base.name}' to share a tokenizer"
        )
    items = {}
    for rid, prompt in prompts.items():
        p = prompt_ids(tok, prompt)
        ids = p + samples[rid]["token_ids"]
        targets = [IGNORE] * (len(p) - 1) + ids[len(p) :] + [IGNORE]  # position t predicts token t+1
        items[rid] = (ids, targets)
    mine = ctx.sequence_logprobs(model, suite, items, "kl")
    theirs = ctx.sequence_logprobs(base, suite, items, "kl")
    values = {rid: mine[rid]["logp"] - theirs[rid]["logp"] for rid in items}
    examples = [
        {
            "id": rid,
            "category": None,
            "prompt": last_user_turn(prompts[rid]),
            "output": samples[rid]["text"],
            "score": values[rid],
            "failed": False,
            "why": "",
        }
        for rid in items
    ]
    metric = mean_metric(values)
    return Outcome({"kl": metric} if metric else {}, examples, {"base": base.name})


def run_forgetting(suite: Suite, model: ModelHandle, ctx: Context) -> Outcome:
    base = ctx.reference(suite)
    if suite.settings["measure"] == "perplexity":
        mine, theirs = record_nll(suite, model, ctx), record_nll(suite, base, ctx)
        ids = list(mine)
        arrays = {
            "nll": [mine[k]["nll"] for k in ids],
            "tokens": [mine[k]["tokens"] for k in ids],
            "base_nll": [theirs[k]["nll"] for k in ids],
            "base_tokens": [theirs[k]["tokens"] for k in ids],
        }
        metric = Metric(compute("perplexity_increase", arrays), "perplexity_increase", ids, arrays)
        return Outcome({"forgetting": metric, "perplexity": perplexity_metric(mine)}, [], {"base": base.name})
    mine, theirs = run_accuracy(suite, model, ctx), run_accuracy(suite, base, ctx)
    base_score = {e["id"]: e["score"] for e in theirs.examples}
    values = {
        e["id"]: None if e["score"] is None or base_score[e["id"]] is None else base_score[e["id"]] - e["score"]
        for e in mine.examples
    }
    for e in mine.examples:  # the error analysis: what the base got right and the model now gets wrong
        e["failed"] = bool(values[e["id"]] and values[e["id"]] > 0)
        e["why"] = "right before (base), wrong now"
    metric = mean_metric(values)
    metrics = {"forgetting": metric} if metric else {}
    if "accuracy" in mine.metrics:
        metrics["accuracy"] = mine.metrics["accuracy"]
    return Outcome(metrics, mine.examples, {"base": base.name})


def check_suite(suite: Suite) -> None:
    if suite.kind == "forgetting" and suite.settings["measure"] not in ("accuracy", "perplexity"):
        raise suite.error(f"unknown measure {suite.settings['measure']!r}; allowed: accuracy, perplexity", "measure")
    if suite.kind == "forgetting" and suite.settings["measure"] == "accuracy":
        check_grader(suite)
    if suite.kind == "perplexity" or (suite.kind == "forgetting" and suite.settings["measure"] == "perplexity"):
        for r in suite.records:
            path, _, loc = r.where.partition(", ")
            to_sample(r.data, path, loc)
    if suite.kind == "kl":
        for r in suite.records:
            prompt_of(suite, r)


MAX_LENGTH = {"max_length": (int, 1024, "tokens per record scored (longer records are truncated)")}
BASE = {"base": (str, None, "the base model compared against (default: the run's --baseline)")}
PERPLEXITY = Kind("perplexity", MAX_LENGTH, (), run_perplexity, check=check_suite)
KL = Kind(
    "kl",
    {**GENERATION, **BASE, "max_new_tokens": (int, 64, "tokens sampled per prompt")},
    (),
    run_kl,
    check=check_suite,
)
FORGETTING = Kind(
    "forgetting",
    {
        **GENERATION,
        **MAX_LENGTH,
        **BASE,
        "measure": (str, "accuracy", "accuracy (with grader) or perplexity"),
        "grader": (str, "exact_match", "how answers are scored (measure: accuracy)"),
    },
    (),
    run_forgetting,
    check=check_suite,
)
