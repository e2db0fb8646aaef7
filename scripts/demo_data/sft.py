"""The SFT splits: deduplicated, grouped so near-variants stay on one side, decontaminated."""

from __future__ import annotations

import random
import re

from demo_data.answer_refusal import gen_answer, gen_refusal
from demo_data.classify import gen_classify
from demo_data.common import tokens_estimate
from demo_data.extract_rewrite import gen_extract, gen_rewrite
from demo_data.summaries import gen_summaries

# --------------------------------------------------------------------------------------------------
# SFT assembly
# --------------------------------------------------------------------------------------------------

SYSTEMS = [
    "You are a helpful assistant.",
    "You are a concise assistant. Keep answers short.",
    "You are a careful, honest assistant. Follow the user's instructions exactly.",
    "You are an assistant for a small business team. Be brief and precise.",
    "You are a helpful, harmless and honest AI assistant.",
    "Answer as briefly as possible while staying accurate.",
]
FOLLOWUP = [
    "",
    "",
    "Thanks. Next one:\n\n",
    "Got it. ",
    "Another one, please.\n\n",
    "Okay, and this one?\n\n",
    "Great. Now this: ",
]

TASKS = ["summarize", "classify", "extract", "rewrite", "answer", "refusal"]
N_HELDOUT = 2  # per task
N_EVAL = {"summarize": 7, "classify": 7, "extract": 7, "rewrite": 7, "answer": 6, "refusal": 6}
N_MULTI = {"summarize": 0, "classify": 9, "extract": 0, "rewrite": 11, "answer": 12, "refusal": 8}  # short tasks only
N_TRAIN_RECORDS = 67  # per task


def dedupe(items: list[dict], key) -> list[dict]:
    """Drop records whose prompt repeats an earlier one (random draws can collide)."""
    seen, out = set(), []
    for it in items:
        if key(it) not in seen:
            seen.add(key(it))
            out.append(it)
    return out


def split_groups(
    rng: random.Random, items: list[dict], sizes: list[int], first_one_per_group: bool = False
) -> list[list[dict]]:
    """Split items into len(sizes)+1 parts, never putting one group in two parts. The last part gets
    the rest. Parts are filled group by group and trimmed to size (leftover items are dropped); with
    first_one_per_group the first part takes a single item from each of its groups."""
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(it["group"], []).append(it)
    order = list(groups)
    rng.shuffle(order)
    parts = []
    for size in sizes:
        part = []
        if first_one_per_group and not parts:  # one item per group, each of a different kind
            kinds = []
            for g in list(order):
                kind = re.split(r"[-:]", g)[0]
                if len(part) < size and kind not in kinds:
                    kinds.append(kind)
                    part.append(groups[g][0])
                    order.remove(g)
        while len(part) < size:
            part.extend(groups[order.pop(0)])
        parts.append(part[:size])
    parts.append([it for g in order for it in groups[g]])
    return parts


def record(rng: random.Random, turns: list[dict], task: str, system: bool) -> dict:
    msgs = []
    if system:
        msgs.append({"role": "system", "content": rng.choice(SYSTEMS)})
    for j, it in enumerate(turns):
        user = it["user"] if j == 0 else rng.choice(FOLLOWUP) + it["user"]
        msgs.append({"role": "user", "content": user})
        msgs.append({"role": "assistant", "content": it["assistant"]})
    return {"messages": msgs, "task": task}


def _ngrams(text: str, n: int = 13) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def decontaminate(held: list[dict], train: list[dict], share: float = 0.5) -> list[dict]:
    """Drop held-out records whose prompt shares >= `share` of its 13-grams with training prompts
    (the rule of `alignline data check`'s leakage gate): slot-filled templates can make two
    different items near-copies of each other."""
    seen: set = set()
    for r in train:
        for m in r["messages"]:
            if m["role"] == "user":
                seen |= _ngrams(m["content"])
    kept = []
    for r in held:
        grams = _ngrams(" ".join(m["content"] for m in r["messages"] if m["role"] == "user"))
        if not grams or len(grams & seen) / len(grams) < share:
            kept.append(r)
    return kept


def build_sft(rng: random.Random):
    pools = {
        "summarize": gen_summaries(rng),
        "classify": gen_classify(rng),
        "extract": gen_extract(rng),
        "rewrite": gen_rewrite(rng),
        "answer": gen_answer(rng),
        "refusal": gen_refusal(rng),
    }
    heldout, evals, train = [], [], []
    for task in TASKS:
        items = dedupe(pools[task], lambda it: it["user"])
        held, ev, rest = split_groups(rng, items, [N_HELDOUT, N_EVAL[task]], first_one_per_group=True)
        need = N_TRAIN_RECORDS + N_MULTI[task]
        assert len(rest) >= need, (task, len(rest), need)
        rng.shuffle(rest)
        rest = rest[:need]
        # multi-turn conversations are built from the shortest items so every record stays < ~200 tokens
        rest.sort(key=lambda it: tokens_estimate(it["user"] + " " + it["assistant"]))
        heldout += [{"messages": [{"role": "user", "content": it["user"]}], "task": task} for it in held]
        evals += [record(rng, [it], task, rng.random() < 0.15) for it in ev]
        # multi-turn conversations first (shortest pairs), then single turns
        recs = []
        assert all(tokens_estimate(it["user"] + " " + it["assistant"]) < 80 for it in rest[: 2 * N_MULTI[task]]), task
        for k in range(N_MULTI[task]):
            a, b = rest[2 * k], rest[2 * k + 1]
            recs.append(record(rng, [a, b], task, False))
        for it in rest[2 * N_MULTI[task] :]:
            recs.append(record(rng, [it], task, False))
        train += recs
    evals, heldout = decontaminate(evals, train), decontaminate(heldout, train)
    # ~15% of train records get a system turn (decided after assembly, evenly over tasks)
    rng.shuffle(train)
    for r in train[: round(0.15 * len(train))]:
        r["messages"].insert(0, {"role": "system", "content": rng.choice(SYSTEMS)})
    rng.shuffle(train)
    return train, evals, heldout, pools
