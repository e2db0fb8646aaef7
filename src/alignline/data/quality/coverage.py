"""Task mix and refusal share.

The category of a record comes from its `task` or `category` field when it has one; otherwise from
the transparent rules below, tried in order on the prompt (the last user turn), the first that
matches deciding. A record is a refusal when its label says so (`refusal`, `safety`, `harmful`, ...)
or, without a label, when its answer opens by declining (`I can't help`, `I won't`, `Sorry, but I
cannot` ...). The rules are in the report, so a surprising number can be traced to a rule.
"""

from __future__ import annotations

import re

from alignline.data.quality.items import Item
from alignline.text import last_user_turn

CATEGORIES = (
    "refusal",
    "code",
    "translation",
    "summarization",
    "extraction",
    "classification",
    "rewriting",
    "creative_writing",
    "question_answering",
)

REFUSAL_OPENINGS = (
    r"i (?:can(?:'|no)t|cannot|won't|will not|am not able to|'m not able to|am unable to|'m unable to)"
    r"(?: help| assist| provide| do| support| share| give| create| write| comply| fulfill| engage)",
    r"(?:i'm |i am )?sorry,? (?:but )?i (?:can(?:'|no)t|cannot|won't)",
    r"i must (?:decline|refuse)",
    r"i (?:have to|need to) decline",
    r"(?:unfortunately,? )?i'm not (?:comfortable|going to)",
    r"as an ai,? i (?:can(?:'|no)t|cannot|won't)",
)
_REFUSAL = re.compile(r"^\W*(?:" + "|".join(REFUSAL_OPENINGS) + ")", re.IGNORECASE)
_REFUSAL_LABEL = re.compile(r"refus|safety|harm|unsafe|adversarial|red[ _-]?team|jailbreak|decline", re.IGNORECASE)

# (category, pattern on the lowercased prompt); the first match wins.
RULES: tuple[tuple[str, str], ...] = (
    (
        "code",
        r"```|^\s*(?:def|class|import|#include|select .* from)\b|\b(?:in|using) (?:python|javascript|typescript|"
        r"java|c\+\+|c#|rust|go|sql|bash|r)\b|\b(?:write|fix|debug|explain|optimi[sz]e|refactor|review) (?:a |the |"
        r"this |my )?(?:function|script|program|code|query|class|regex)\b|\bstack trace\b|\bcompil(?:e|er|ation)\b",
    ),
    (
        "translation",
        r"\btranslat\w*\b|\b(?:in|into|to) (?:english|french|spanish|german|italian|portuguese|chinese|"
        r"japanese|korean|russian|arabic|hindi|dutch)\b",
    ),
    (
        "summarization",
        r"\bsummar\w*|\btl;?dr\b|\bkey points\b|\bgist\b|\bin (?:one|a|two|a few) sentences?\b|"
        r"\bbrief overview\b|\bcondense\b",
    ),
    (
        "extraction",
        r"\bextract\w*|\bpull out\b|\blist (?:all|every|the) \w+ (?:mentioned|in)|\bfind (?:all|every)\b|"
        r"\bidentify (?:the|all) (?:names|dates|entities|amounts)\b|\bfrom the (?:text|email|message) below\b",
    ),
    (
        "classification",
        r"\bclassif\w*|\bcategori[sz]e\b|\bsentiment\b|\blabel\b|\bwhich category\b|\bchoose from\b|"
        r"\bwhat (?:topic|category|type)\b|\bpositive,? (?:or )?negative\b|\bspam or\b",
    ),
    (
        "rewriting",
        r"\brewrite\b|\brephrase\b|\bparaphrase\b|\breword\b|\bproofread\b|\bfix (?:the )?grammar\b|"
        r"\bmake (?:this|it) (?:sound )?(?:more|less|shorter|longer|formal|polite|clearer|concise)\b|"
        r"\bsimplify\b|\bshorten\b|\bsoften\b|\b(?:more|less) (?:formal|polite|concise|stiff|relaxed)\b|"
        r"\bwordiness\b|\bturn this .{0,30} into\b|\bhow would i say this\b|\btone of\b",
    ),
    (
        "creative_writing",
        r"\b(?:write|compose|draft) (?:a|an|me a) (?:poem|story|song|haiku|limerick|essay|joke|"
        r"sonnet|short story|scene|dialogue)|\bimagine\b|\bpoem\b|\bfiction\b",
    ),
    (
        "question_answering",
        r"\?\s*$|^(?:what|who|whom|when|where|why|how|which|is|are|do|does|did|can|could|should|"
        r"explain|describe|tell me|calculate|compute|convert|solve)\b|\?",
    ),
)
_RULES = tuple((name, re.compile(p, re.IGNORECASE | re.MULTILINE)) for name, p in RULES)


def is_refusal_text(answer: str) -> bool:
    return bool(_REFUSAL.search(answer.strip()[:200]))


def is_refusal_label(label: str | None) -> bool:
    return bool(label) and bool(_REFUSAL_LABEL.search(label))


def classify(prompt: str, answer: str = "") -> str:
    """The heuristic category of a record without a label ("other" when no rule matches)."""
    if answer and is_refusal_text(answer):
        return "refusal"
    text = prompt.strip().lower()
    for name, pattern in _RULES:
        if pattern.search(text):
            return name
    return "other"


def category_of(item: Item) -> tuple[str, bool]:
    """(category, from a field?)."""
    label = item.label
    if label is not None:
        return label, True
    if item.kind == "text":
        return "text", False
    return classify(last_user_turn(item.prompt_messages) or item.prompt, item.response), False


class CoverageCheck:
    def __init__(self, min_share: float = 0.02):
        self.min_share = min_share
        self.mix: dict[str, int] = {}
        self.labelled = 0
        self.refusals = 0
        self.total = 0
        self.chat = 0
        self.refusal_by_text = 0

    def add(self, item: Item) -> str:
        self.total += 1
        cat, labelled = category_of(item)
        self.labelled += labelled
        self.mix[cat] = self.mix.get(cat, 0) + 1
        if item.kind in ("chat", "prompt_completion"):  # preference pairs: see the adversarial share
            self.chat += 1
            refusal = is_refusal_label(cat) if labelled else cat == "refusal"
            self.refusals += refusal
            self.refusal_by_text += is_refusal_text(item.response)
        return cat

    def result(self) -> dict:
        source = "field" if self.labelled == self.total else ("heuristic" if not self.labelled else "mixed")
        shares = {k: v / max(1, self.total) for k, v in sorted(self.mix.items(), key=lambda kv: -kv[1])}
        under = sorted(k for k, s in shares.items() if s < self.min_share)
        missing = sorted(set(CATEGORIES) - set(self.mix)) if source == "heuristic" and "text" not in self.mix else []
        return {
            "records": self.total,
            "source": source,
            "mix": dict(sorted(self.mix.items(), key=lambda kv: -kv[1])),
            "shares": shares,
            "under_represented": under,
            "missing": missing,
            "refusals": self.refusals if self.chat else None,
            "refusal_share": self.refusals / self.chat if self.chat else None,
            "refusal_answers_by_text": self.refusal_by_text if self.chat else None,
            "rules": {"refusal_openings": list(REFUSAL_OPENINGS), "categories": dict(RULES)},
        }
