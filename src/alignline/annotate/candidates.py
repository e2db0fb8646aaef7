"""Candidates to annotate: every prompt answered by one or more models (or adapters on one base), the answers
shuffled per prompt and the model names kept in a `models` field that the store hides from annotators
(it stays in the item's lineage and in every exported pair)."""

from __future__ import annotations

import random
from dataclasses import replace


def candidate_items(
    prompts: list[list[dict]],
    sources: list[tuple[str, object, str | None]],
    n: int,
    params,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[dict], int]:
    """(items, skipped). `sources`: (label, engine, adapter or None); each gives `n` answers per prompt.
    Identical answers are kept once; a prompt left with fewer than two distinct answers is skipped."""
    from tqdm import tqdm

    answers: list[list[tuple[str, str]]] = [[] for _ in prompts]
    for label, engine, adapter in tqdm(sources, desc="generating", unit="model", disable=not progress):
        if adapter is not None:
            engine.use(adapter)
        for i, completions in enumerate(engine.generate(prompts, replace(params, n=n))):
            answers[i].extend((c.text.strip(), label) for c in completions)
    items, skipped = [], 0
    for i, (prompt, got) in enumerate(zip(prompts, answers)):
        distinct: dict[str, str] = {}
        for text, label in got:
            if text and text not in distinct:
                distinct[text] = label
        if len(distinct) < 2:
            skipped += 1
            continue
        pairs = list(distinct.items())
        random.Random(f"{seed}|{i}").shuffle(pairs)  # no model always first, even before the store's blinding
        simple = len(prompt) == 1 and prompt[0]["role"] == "user"
        items.append(
            {
                "id": f"p{i}",
                "prompt": prompt[0]["content"] if simple else prompt,
                "responses": [t for t, _ in pairs],
                "models": [m for _, m in pairs],
            }
        )
    return items, skipped
