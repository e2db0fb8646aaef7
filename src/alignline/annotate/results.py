"""From labels to numbers and records: agreement, the adjudication queue, export, and import of preference files.

Pure functions over rows the store has already read (no queries here). Labels are in original indices.

Agreement treats each label as one nominal value: the pairwise choice (0, 1, "tie"), the whole ranking,
the (best, worst) pair, or for ratings the tuple of scores. Krippendorff's alpha takes every item with two
or more labels; Fleiss' kappa needs the same number of labels per item, so it is computed over the items
with the most common count (reported as `fleiss_items`); Cohen's kappa is computed for each pair of
annotators over the items both labelled (two or more) and averaged.

Export turns each label into the ordered pairs it implies (pairwise: the choice over the other; ranking:
every higher over every lower; best-worst: best over the rest and the rest over worst; rating: the higher
total score over the lower, equal totals a tie) and keeps, per pair of responses, the direction a strict
majority of the labels that speak to it chose. `confidence` is that majority's share. A majority of ties,
or no majority, exports nothing (counted); an adjudication decides instead of the vote. An edited answer becomes
an SFT record, and on a one-response item (serving's review queue) also a pair, the edit preferred over the original.

One rule decides whether an item gives training data at all, pairs, edits and corrections alike: the item must be
settled, that is not gold (its answer was given, not collected) and either adjudicated or labelled by at least the
project's `min_annotations` annotators. So with `--min-annotations 2` no single annotator's edit or one-response
rating is exported on its own, however it was labelled; the items left out are counted (`gold`, `unlabelled`,
`below_min_annotations`, and `edits_left_out` for the edits on them). Other labels do not vote on an edit's text:
the count says the item was seen by enough people (and an adjudicating admin sees every edit in the queue).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations

from alignline.annotate.tasks import choice_to_shown, scores_to_shown
from alignline.data.preference import to_pairs
from alignline.data.quality.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha
from alignline.errors import DataError


def label_value(kind: str, choice, scores):
    """One label as a hashable nominal value, for agreement and majorities."""
    if kind == "ranking":
        return tuple(choice)
    if kind == "best_worst":
        return (choice["best"], choice["worst"])
    if kind == "rating":
        return tuple((name, tuple(v)) for name, v in sorted((scores or {}).items()))
    return choice


def implied_pairs(kind: str, choice, n: int, scores: dict | None = None) -> list[tuple[int, int]]:
    """The (winner, loser) pairs a choice states, in original indices; a tie states none. A rating states
    one per pair of responses whose total scores differ."""
    if kind == "rating":
        totals = [sum(v[i] for v in (scores or {}).values()) for i in range(n)]
        return [
            (i, j) if totals[i] > totals[j] else (j, i) for i, j in combinations(range(n), 2) if totals[i] != totals[j]
        ]
    if choice is None or choice == "tie":
        return []
    if kind == "pairwise":
        return [(choice, 1 - choice)]
    if kind == "ranking":
        return [(choice[a], choice[b]) for a, b in combinations(range(len(choice)), 2)]
    if kind == "best_worst":
        best, worst = choice["best"], choice["worst"]
        return [(best, x) for x in range(n) if x != best] + [(x, worst) for x in range(n) if x not in (best, worst)]
    return []


def tied_pairs(kind: str, choice, n: int, scores: dict | None = None) -> list[frozenset]:
    """The pairs a label calls even: a pairwise tie, or two ratings with equal totals."""
    if kind == "pairwise" and choice == "tie":
        return [frozenset((0, 1))]
    if kind == "rating":
        totals = [sum(v[i] for v in (scores or {}).values()) for i in range(n)]
        return [frozenset((i, j)) for i, j in combinations(range(n), 2) if totals[i] == totals[j]]
    return []


def original_responses(item) -> list[str]:
    out = [""] * len(item.responses)
    for shown, orig in enumerate(item.meta["order"]):
        out[orig] = item.responses[shown]
    return out


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


def agreement_report(project, items, labels, adjudications) -> dict:
    kind = project.kind
    units, by_user, gold = [], defaultdict(dict), defaultdict(lambda: [0, 0])
    for it in items:
        values = []
        for lab, uname in labels[it.id]:
            v = label_value(kind, lab.choice, lab.scores)
            values.append(v)
            by_user[uname][it.id] = v
            if it.is_gold:
                gold[uname][0] += int(lab.choice == it.gold)
                gold[uname][1] += 1
        if len(values) >= 2:
            units.append(values)
    sizes = Counter(len(u) for u in units)
    fleiss_size = max(sizes, key=lambda k: (sizes[k], k)) if sizes else None
    fleiss_units = [u for u in units if len(u) == fleiss_size]
    pairs, per_user_kappas = [], defaultdict(list)
    for a, b in combinations(sorted(by_user), 2):
        common = sorted(set(by_user[a]) & set(by_user[b]))
        if len(common) < 2:
            continue
        k = cohen_kappa([by_user[a][i] for i in common], [by_user[b][i] for i in common])
        pairs.append({"a": a, "b": b, "items": len(common), "kappa": k})
        if k is not None:
            per_user_kappas[a].append(k)
            per_user_kappas[b].append(k)
    kappas = [p["kappa"] for p in pairs if p["kappa"] is not None]
    correct, total = sum(g[0] for g in gold.values()), sum(g[1] for g in gold.values())
    annotators = []
    for uname in sorted(by_user):
        majority_hits = []
        for it_id, v in by_user[uname].items():  # agreement with the others' majority on shared items
            others = [label_value(kind, lab.choice, lab.scores) for lab, n in labels[it_id] if n != uname]
            if others:
                top, count = Counter(others).most_common(1)[0]
                if count / len(others) > 0.5:
                    majority_hits.append(v == top)
        g = gold.get(uname)
        annotators.append(
            {
                "name": uname,
                "labels": len(by_user[uname]),
                "cohen": mean(per_user_kappas[uname]),
                "cohen_pairs": len(per_user_kappas[uname]),
                "agrees_with_majority": mean(majority_hits),
                "gold_items": g[1] if g else 0,
                "gold_correct": g[0] if g else 0,
                "gold_accuracy": round(g[0] / g[1], 4) if g else None,
            }
        )
    return {
        "project": project.name,
        "kind": kind,
        "items": len(items),
        "gold_items": sum(it.is_gold for it in items),
        "labels": sum(len(v) for v in labels.values()),
        "labelled_items": sum(bool(labels[it.id]) for it in items),
        "complete": sum(len(labels[it.id]) >= project.min_annotations for it in items),
        "krippendorff": krippendorff_alpha(units),
        "fleiss": fleiss_kappa(fleiss_units),
        "fleiss_items": len(fleiss_units),
        "cohen": mean(kappas),
        "cohen_pairs": pairs,
        "gold_accuracy": round(correct / total, 4) if total else None,
        "gold_labels": total,
        "disagreements": sum(disagreement_share(project, it, labels[it.id], adjudications) is not None for it in items),
        "adjudicated": len(adjudications),
        "annotators": annotators,
    }


def disagreement_share(project, it, labs, adjudications, min_share: float = 0.5) -> float | None:
    """The top answer's share when the item is one to adjudicate, else None (reads no text: the agreement
    report counts the queue without loading prompts and responses)."""
    if project.kind == "rating" or it.is_gold or it.id in adjudications or len(labs) < max(2, project.min_annotations):
        return None
    counts = Counter(label_value(project.kind, lab.choice, lab.scores) for lab, _ in labs)
    share = counts.most_common(1)[0][1] / len(labs)
    return None if share > min_share else share


def disagreements(project, items, labels, adjudications, min_share: float = 0.5) -> list[dict]:
    """Items to adjudicate: enough labels (>= min_annotations, >= 2), the top answer's share <= min_share."""
    out = []
    for it in items:
        labs = labels[it.id]
        share = disagreement_share(project, it, labs, adjudications, min_share)
        if share is None:
            continue
        order = it.meta["order"]
        out.append(
            {
                "id": it.id,
                "project": project.name,
                "kind": project.kind,
                "rubric": project.rubric,
                "prompt": it.prompt,
                "responses": list(it.responses),
                "share": round(share, 4),
                "labels": [
                    {
                        "user": uname,
                        "choice": choice_to_shown(project.kind, lab.choice, order),
                        "scores": scores_to_shown(lab.scores, order),
                        "rationale": lab.rationale,
                        "edit": lab.edit,
                    }
                    for lab, uname in labs
                ],
            }
        )
    return sorted(out, key=lambda d: (d["share"], d["id"]))


def lineage(project, it, **extra) -> dict:
    out = {"project": project.name, "item_id": it.id, "external_id": it.external_id}
    if it.meta.get("review"):
        out["review"] = it.meta["review"]  # serving's request id, model, confidence: back to the request
    if it.meta.get("fields"):
        out["fields"] = it.meta["fields"]
    return {**out, **extra}


def as_messages(prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]


def unsettled_reason(project, it, labs, adj) -> str | None:
    """Why an item gives no training data (a counts key), or None when it is settled."""
    if it.is_gold:
        return "gold"
    if adj is not None:
        return None
    if not labs:
        return "unlabelled"
    if len(labs) < project.min_annotations:
        return "below_min_annotations"
    return None


def edit_records(project, it, labs, texts: list[str], counts: Counter) -> list[dict]:
    """A settled item's edited answers: an SFT record each, and on a one-response item a correction pair."""
    out = []
    for lab, uname in labs:
        if not lab.edit:
            continue
        counts["sft"] += 1
        out.append(
            {
                "kind": "sft",
                "messages": as_messages(it.prompt) + [{"role": "assistant", "content": lab.edit}],
                "lineage": lineage(project, it, annotator=uname, label_id=lab.id),
            }
        )
        if len(texts) == 1 and lab.edit != texts[0]:
            counts["corrections"] += 1
            out.append(
                {
                    "kind": "preference",
                    "prompt": it.prompt,
                    "chosen": lab.edit,
                    "rejected": texts[0],
                    "confidence": 1.0,
                    "annotators": [uname],
                    "annotator_ids": [lab.user_id],
                    "scores": {"rejected": {c: v[0] for c, v in (lab.scores or {}).items()}},
                    "lineage": lineage(project, it, correction=True, annotator=uname, label_id=lab.id),
                }
            )
    return out


def export_records(project, items, labels, adjudications) -> tuple[list[dict], dict]:
    """(records, counts). Records: `kind` "preference" ({prompt, chosen, rejected, confidence, annotators,
    annotator_ids, scores: {chosen, rejected} mean per criterion, lineage}) or "sft" ({messages, lineage}).
    Only settled items give records (see the module docstring)."""
    kind = project.kind
    counts = Counter()
    records = []
    for it in items:
        labs = labels[it.id]
        texts, models = original_responses(it), it.meta.get("models")
        adj = adjudications.get(it.id)
        left_out = unsettled_reason(project, it, labs, adj)
        if left_out:
            counts[left_out] += 1
            edits = sum(bool(lab.edit) for lab, _ in labs)
            if edits:
                counts["edits_left_out"] += edits
            continue
        records += edit_records(project, it, labs, texts, counts)
        if len(texts) < 2:
            continue
        n = len(texts)
        votes, voters = Counter(), Counter()  # votes[(w, l)]; voters[{i, j}] = labels that speak to the pair
        for lab, _ in labs:
            for w, lo in implied_pairs(kind, lab.choice, n, lab.scores):
                votes[(w, lo)] += 1
                voters[frozenset((w, lo))] += 1
            for pair in tied_pairs(kind, lab.choice, n, lab.scores):
                voters[pair] += 1
        if adj is not None:
            decided = implied_pairs(kind, adj.choice, n)
            if not decided:
                counts["tie"] += 1
        else:
            decided = []
            for i, j in combinations(range(n), 2):
                total = voters[frozenset((i, j))]
                if not total:
                    continue
                w, lo = (i, j) if votes[(i, j)] >= votes[(j, i)] else (j, i)
                if votes[(w, lo)] / total > 0.5:
                    decided.append((w, lo))
                elif (total - votes[(i, j)] - votes[(j, i)]) / total >= 0.5:
                    counts["tie"] += 1
                else:
                    counts["no_majority"] += 1
        names, ids = [u for _, u in labs], [lab.user_id for lab, _ in labs]
        for w, lo in decided:
            total = voters[frozenset((w, lo))]
            scores = {"chosen": {}, "rejected": {}}
            for side, idx in (("chosen", w), ("rejected", lo)):
                per = defaultdict(list)
                for lab, _ in labs:
                    for c, v in (lab.scores or {}).items():
                        per[c].append(v[idx])
                scores[side] = {c: mean(v) for c, v in per.items()}
            extra = {"chosen_index": w, "rejected_index": lo, "adjudicated": adj is not None}
            if models:
                extra["models"] = {"chosen": models[w], "rejected": models[lo]}
            counts["pairs"] += 1
            records.append(
                {
                    "kind": "preference",
                    "prompt": it.prompt,
                    "chosen": texts[w],
                    "rejected": texts[lo],
                    "confidence": round(votes[(w, lo)] / total, 4) if total else 1.0,
                    "annotators": names,
                    "annotator_ids": ids,
                    "scores": scores if any(scores.values()) else {},
                    "lineage": lineage(project, it, **extra),
                }
            )
    return records, dict(counts)


def label_rows(project, items, labels, adjudications) -> list[dict]:
    """One row per label, for teams that aggregate themselves (`annotate export NAME --labels`): no majority,
    nothing left out; gold items and adjudications are marked, not dropped. `answer` is the label's choice and
    `scores` its ratings, both in the ORIGINAL response order, which `responses` gives; `time` is when the
    label was given or last changed (seconds since the epoch). Items in serving order, labels in id order."""
    rows = []
    for it in items:
        adj = adjudications.get(it.id)
        responses = original_responses(it)
        for lab, uname in labels[it.id]:
            rows.append(
                {
                    "project": project.name,
                    "kind": project.kind,
                    "item_id": it.id,
                    "external_id": it.external_id,
                    "label_id": lab.id,
                    "annotator": uname,
                    "annotator_id": lab.user_id,
                    "answer": lab.choice,
                    "scores": lab.scores,
                    "rationale": lab.rationale,
                    "edit": lab.edit,
                    "time": lab.created_at,
                    "gold": it.is_gold,
                    "gold_answer": it.gold if it.is_gold else None,
                    "adjudication": adj.choice if adj is not None else None,
                    "prompt": it.prompt,
                    "responses": responses,
                    "models": it.meta.get("models"),
                }
            )
    return rows


def response_text(value) -> str:
    if isinstance(value, str):
        return value
    return "\n\n".join(m.content for m in value if m.role == "assistant") or "\n\n".join(m.content for m in value)


def pairs_as_items(records: list[dict], source: str = "pairs") -> tuple[list[dict], list[dict]]:
    """Preference records -> (pairwise item records, hidden meta per item). The file's chosen answer is
    response 0 before blinding; its verdict is kept as `imported_choice` for comparing against new labels."""
    known = {
        "prompt",
        "chosen",
        "rejected",
        "ranking",
        "conversations",
        "preferred_output",
        "non_preferred_output",
        "input",
        "id",
    }
    items, metas = [], []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise DataError(source, "expected an object {prompt, chosen, rejected}", f"record {i + 1}")
        pairs = to_pairs(r, source, f"record {i + 1}")
        for k, pair in enumerate(pairs):
            prompt = (
                pair.prompt
                if isinstance(pair.prompt, str)
                else [{"role": m.role, "content": m.content} for m in pair.prompt]
            )
            item = {
                "prompt": prompt,
                "responses": [response_text(pair.chosen), response_text(pair.rejected)],
                **{key: v for key, v in r.items() if key not in known},
            }
            if r.get("id") is not None:
                item["id"] = f"{r['id']}" if len(pairs) == 1 else f"{r['id']}#{k}"
            items.append(item)
            metas.append({"imported_choice": 0, "imported_from": pair.origin})
    return items, metas
