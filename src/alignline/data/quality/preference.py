"""Preference-pair hygiene: pairs that teach nothing, or teach the wrong thing.

- identical: chosen and rejected are the same text (normalized);
- ties: `tie: true`, a `label`/`preference` of "tie", equal `score_chosen`/`score_rejected` (or
  `chosen_score`/`rejected_score`, `chosen_rating`/`rejected_rating`), or `confidence` 0.5;
- duplicate pairs: the same (prompt, chosen, rejected) again;
- length bias: the share of pairs whose chosen answer has more characters than the rejected one;
- safe vs adversarial prompts: a refusal-like category label, or else a chosen answer that declines;
- synthetic share: `source` naming a model or generation (synthetic, generated, gpt, llm, ...);
- annotator agreement, where a pair carries several labels (`labels`, `annotations`, `votes`,
  `preferences`: values, or {annotator, label} objects).
"""

from __future__ import annotations

import re

from alignline.data.quality.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha
from alignline.data.quality.coverage import is_refusal_label, is_refusal_text
from alignline.data.quality.items import Item
from alignline.data.quality.text import normalized, text_hash

LABEL_FIELDS = ("labels", "annotations", "votes", "preferences")
SCORE_FIELDS = (
    ("score_chosen", "score_rejected"),
    ("chosen_score", "rejected_score"),
    ("chosen_rating", "rejected_rating"),
)
_SYNTHETIC = re.compile(
    r"synthetic|generated|\bllm|\bmodel|gpt|claude|llama|mistral|gemini|qwen|distil|"
    r"self[-_ ]?instruct|\bai\b|machine",
    re.IGNORECASE,
)


def is_tie(record: dict) -> bool:
    if record.get("tie") is True:
        return True
    for key in ("label", "preference"):
        if isinstance(record.get(key), str) and record[key].strip().lower() in ("tie", "equal", "same"):
            return True
    for a, b in SCORE_FIELDS:
        x, y = record.get(a), record.get(b)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x == y:
            return True
    c = record.get("confidence")
    return isinstance(c, (int, float)) and not isinstance(c, bool) and c == 0.5


def annotator_labels(record: dict) -> list[tuple[str | None, str]] | None:
    for key in LABEL_FIELDS:
        value = record.get(key)
        if isinstance(value, list) and len(value) >= 2:
            out = []
            for v in value:
                if isinstance(v, dict):
                    label = next((v[k] for k in ("label", "preference", "value", "choice") if k in v), None)
                    who = v.get("annotator", v.get("annotator_id", v.get("rater")))
                    if label is not None:
                        out.append((None if who is None else str(who), str(label)))
                elif v is not None:
                    out.append((None, str(v)))
            return out if len(out) >= 2 else None
    return None


class PreferenceCheck:
    def __init__(self, keep: int = 200):
        self.keep = keep
        self.total = 0
        self.identical: list[str] = []
        self.n_identical = 0
        self.ties = 0
        self.tie_ids: list[str] = []
        self._seen: set[int] = set()
        self.duplicates = 0
        self.duplicate_ids: list[str] = []
        self.longer = 0
        self.equal_length = 0
        self.by_category: dict[str, list[int]] = {}
        self.adversarial = 0
        self.synthetic = 0
        self.with_source = 0
        self.sources: dict[str, int] = {}
        self.units: list[list[str]] = []
        self.named: dict[str, dict[int, str]] = {}
        self.confidences: list[float] = []

    def add(self, item: Item, category: str) -> None:
        r = item.record
        self.total += 1
        chosen, rejected = item.response, "\n".join(m.content for m in item.rejected or [])
        if normalized(chosen) == normalized(rejected):
            self.n_identical += 1
            if len(self.identical) < self.keep:
                self.identical.append(item.rid)
        if is_tie(r):
            self.ties += 1
            if len(self.tie_ids) < self.keep:
                self.tie_ids.append(item.rid)
        h = text_hash(item.text)
        if h in self._seen:
            self.duplicates += 1
            if len(self.duplicate_ids) < self.keep:
                self.duplicate_ids.append(item.rid)
        else:
            self._seen.add(h)
        longer = len(chosen) > len(rejected)
        self.longer += longer
        self.equal_length += len(chosen) == len(rejected)
        stats = self.by_category.setdefault(category, [0, 0])
        stats[0] += 1
        stats[1] += longer
        label = r.get("category") if isinstance(r.get("category"), str) else None
        self.adversarial += is_refusal_label(label) if label else is_refusal_text(chosen)
        source = r.get("source")
        if isinstance(source, str) and source.strip():
            self.with_source += 1
            self.sources[source] = self.sources.get(source, 0) + 1
            self.synthetic += bool(_SYNTHETIC.search(source))
        c = r.get("confidence")
        if isinstance(c, (int, float)) and not isinstance(c, bool):
            self.confidences.append(float(c))
        labels = annotator_labels(r)
        if labels:
            self.units.append([lab for _, lab in labels])
            for who, lab in labels:
                if who is not None:
                    self.named.setdefault(who, {})[len(self.units) - 1] = lab

    def result(self) -> dict:
        n = max(1, self.total)
        cohen = None
        if len(self.named) == 2:
            (_, a), (_, b) = sorted(self.named.items())
            both = sorted(set(a) & set(b))
            cohen = cohen_kappa([a[i] for i in both], [b[i] for i in both]) if both else None
        conf = self.confidences
        return {
            "pairs": self.total,
            "identical": self.n_identical,
            "identical_ids": self.identical,
            "ties": self.ties,
            "tie_share": self.ties / n,
            "tie_ids": self.tie_ids,
            "duplicate_pairs": self.duplicates,
            "duplicate_pair_share": self.duplicates / n,
            "duplicate_pair_ids": self.duplicate_ids,
            "chosen_longer": self.longer,
            "chosen_longer_share": self.longer / n,
            "equal_length": self.equal_length,
            "chosen_longer_by_category": {
                k: {"pairs": v[0], "chosen_longer_share": v[1] / v[0]} for k, v in sorted(self.by_category.items())
            },
            "adversarial": self.adversarial,
            "adversarial_share": self.adversarial / n,
            "synthetic": self.synthetic,
            "synthetic_share": self.synthetic / n if self.with_source else None,
            "sources": self.sources,
            "confidence": {
                "pairs": len(conf),
                "mean": sum(conf) / len(conf) if conf else None,
                "below_0.6": sum(c < 0.6 for c in conf),
            },
            "agreement": {
                "multi_label_pairs": len(self.units),
                "krippendorff_alpha": krippendorff_alpha(self.units),
                "fleiss_kappa": fleiss_kappa(self.units),
                "cohen_kappa": cohen,
                "annotators": sorted(self.named),
            },
        }
