"""A failed gate in words: what is wrong, how often, and the first record to look at.

`FAIL format_invalid_share = 1.0` says that something is wrong; `40 of 40 records have a structural
problem (no final assistant turn 40; first: train.jsonl, line 1)` says what to fix. Used by the
console output of `alignline data check` and by the one-line error of a training run's gates.
"""

from __future__ import annotations

PROBLEM_WORDS = {
    "empty_turn": "an empty turn",
    "system_not_first": "a system turn after the first",
    "first_not_user": "a first turn not from the user",
    "roles_not_alternating": "roles not alternating",
    "no_final_assistant": "no final assistant turn",
    "empty_text": "empty text",
    "chosen_not_assistant": "a chosen answer not from the assistant",
    "rejected_not_assistant": "a rejected answer not from the assistant",
}


def _first(ids) -> str:
    if not ids:
        return ""
    first = ids[0]
    if isinstance(first, dict):
        first = first.get("id") or first.get("eval_id") or first
    return f"; first: {first}"


def _format(r: dict) -> str:
    f = r["format"]
    problems = ", ".join(
        f"{PROBLEM_WORDS.get(k, k)} {v}" for k, v in sorted(f["problems"].items(), key=lambda kv: -kv[1]) if v
    )
    first = f["invalid_ids"][0] if f["invalid_ids"] else None
    where = f"; first: {first['id']} ({', '.join(PROBLEM_WORDS.get(p, p) for p in first['problems'])})" if first else ""
    return f"{f['invalid']} of {f['records']} records have a structural problem ({problems}){where}"


def _pii_ids(r: dict, types) -> list[str]:
    by = r["pii"]["by_type"]
    return [i for t in types if t in by for i in by[t]["ids"]][:1]


def explain(g: dict, r: dict) -> str:
    """The gate's finding as a sentence (empty when the report holds nothing more than the number)."""
    name = g["name"]
    try:
        if name == "duplicate_share":
            d = r["duplicates"]
            top = d["largest_clusters"][0] if d["largest_clusters"] else None
            where = (
                f"; largest cluster: {top['size']} copies of {top['member_ids'][0]}"
                if top and top["member_ids"]
                else ""
            )
            return (
                f"{d['removed_by_dedup']} of {d['records']} records are duplicates ({d['exact_duplicates']} exact, "
                f"{d['near_duplicates']} near){where}"
            )
        if name == "leaked_eval_items":
            leak = r["leakage"]
            return (
                f"{leak['leaked']} of {leak['eval_items']} evaluation items also appear in the training data"
                + _first(leak["items"])
            )
        if name == "pii_sensitive_records":
            return f"{r['pii']['sensitive_records']} records hold a card number, IBAN, SSN or secret" + _first(
                _pii_ids(r, ("card", "iban", "ssn", "secret"))
            )
        if name == "pii_record_share":
            return f"{r['pii']['records_with_pii']} of {r['records']} records hold personal data" + _first(
                _pii_ids(r, list(r["pii"]["by_type"]))
            )
        if name == "format_invalid_share":
            return _format(r)
        if name == "truncated_share":
            f = r["format"]
            return (
                f"{f['truncated']} records are longer than max_length={f['max_length']} tokens and would be cut"
                + _first(f["truncated_ids"])
            )
        if name == "refusal_share":
            c = r["coverage"]
            return f"{c['refusals']} refusals among the chat records"
        p = r.get("preference") or {}
        counts = {
            "identical_pairs": ("identical", "pairs have the same chosen and rejected answer", "identical_ids"),
            "tie_share": ("ties", "pairs are ties", "tie_ids"),
            "duplicate_pair_share": ("duplicate_pairs", "pairs are repeated", "duplicate_pair_ids"),
            "chosen_longer_share": ("chosen_longer", "pairs have the longer answer chosen", None),
            "adversarial_share": ("adversarial", "pairs have a prompt asking for harm", None),
        }
        if name in counts and p:
            key, words, ids = counts[name]
            return f"{p[key]} of {p['pairs']} {words}" + (_first(p.get(ids)) if ids else "")
    except (KeyError, IndexError, TypeError):  # a report of another shape: the number alone still stands
        return ""
    return ""
