"""Gate configuration (typed, from YAML, defaults for everything) and gate results.

Every threshold has a default, so `alignline data check` needs no config; a YAML file holds only what
differs. Unknown keys and wrongly typed values raise `ConfigError` naming the file and dotted key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from alignline.config import from_dict, read_yaml_mapping
from alignline.data.quality.pii import PII_TYPES
from alignline.errors import ConfigError


@dataclass
class DedupConfig:
    enabled: bool = True
    threshold: float = 0.8
    """Jaccard similarity (of word n-gram sets) at or above which two records are near-duplicates."""
    ngram: int = 3
    """Words per shingle. Short chat records need short shingles; 5 suits long documents."""
    num_perm: int = 128
    max_duplicate_share: float = 0.02
    """Gate: records a dedup would remove (exact + near), as a share of all records."""


@dataclass
class LeakageConfig:
    enabled: bool = True
    threshold: float = 0.8
    """Jaccard similarity (prompt + answer) at or above which an eval item is a near-copy of a training record."""
    ngram: int = 13
    """Long n-gram overlap: an eval item sharing a run of this many words with training data is leaked."""
    ngram_share: float = 0.5
    """An eval item leaks by n-grams when at least this share of its prompt's n-grams occurs in training
    (0: any one)."""
    max_leaked: int = 0
    """Gate: leaked evaluation items."""


@dataclass
class PiiConfig:
    enabled: bool = True
    types: list[str] = field(default_factory=lambda: ["email", "phone", "card", "iban", "ip", "ssn", "secret"])
    max_sensitive_records: int = 0
    """Gate: records holding a payment card, IBAN, social security number or secret (zero tolerance)."""
    max_record_share: float = 0.01
    """Gate: records holding any PII (emails, phone numbers, IP addresses included), as a share."""


@dataclass
class FormatConfig:
    enabled: bool = True
    max_invalid_share: float = 0.0
    """Gate: records with a structural problem (role order, empty turn, no final assistant turn)."""
    max_truncated_share: float = 0.01
    """Gate: records longer than max_length tokens (needs a tokenizer and max_length)."""


@dataclass
class CoverageConfig:
    enabled: bool = True
    enforce: bool = False
    """Make the coverage shares (refusal share; a preference set's adversarial share) failing gates.
    Off by default: a task-specific dataset (extraction, classification) rightly holds no refusals, so
    out-of-range shares are reported as warnings. Setting any of their thresholds in a gates YAML turns
    this on, unless `enforce` is written there too."""
    min_refusal_share: float = 0.01
    """Coverage gate (chat data): too few refusals teach a model to comply with anything."""
    max_refusal_share: float = 0.25
    """Coverage gate (chat data): too many teach it to refuse harmless requests."""
    min_category_share: float = 0.02
    """Categories below this share are named as under-represented (a warning, not a gate)."""


@dataclass
class PreferenceConfig:
    enabled: bool = True
    max_identical: int = 0
    """Gate: pairs whose chosen and rejected answers are the same text."""
    max_tie_share: float = 0.05
    """Gate: pairs marked as ties (tie: true, equal scores, confidence 0.5)."""
    max_duplicate_pair_share: float = 0.02
    """Gate: repeated (prompt, chosen, rejected) triples."""
    max_chosen_longer_share: float = 0.75
    """Gate: pairs where the chosen answer is longer; above this, length is what the pairs teach."""
    min_chosen_longer_share: float = 0.0
    """Gate: the other side (set e.g. 0.25 to also catch a brevity bias)."""
    min_adversarial_share: float = 0.05
    """Coverage gate (see coverage.enforce): prompts asking for harm (the model must learn to refuse them)."""
    max_adversarial_share: float = 0.5
    """Coverage gate (see coverage.enforce): safe prompts must dominate, or refusing becomes the preferred answer."""
    max_synthetic_share: float = 1.0
    """Gate: pairs whose `source` says synthetic (1.0: reported, not limited)."""
    min_agreement: float = 0.4
    """Gate: Krippendorff's alpha between annotators, where pairs carry several labels."""


@dataclass
class AuditConfig:
    min_accuracy: float = 0.9
    """Gate for `alignline data audit score`: share of reviewed records judged correct."""
    sample_size: int = 100


@dataclass
class GateConfig:
    tokenizer: str | None = None
    """Model (or tokenizer) directory whose tokenizer measures lengths; `--model` on the command line."""
    max_length: int | None = None
    """Training max_length in tokens; a recipe's training.max_length when run by `alignline train`."""
    dedup: DedupConfig = field(default_factory=DedupConfig)
    leakage: LeakageConfig = field(default_factory=LeakageConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    format: FormatConfig = field(default_factory=FormatConfig)
    coverage: CoverageConfig = field(default_factory=CoverageConfig)
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)


_SHARES = (
    "max_duplicate_share",
    "ngram_share",
    "max_record_share",
    "max_invalid_share",
    "max_truncated_share",
    "min_refusal_share",
    "max_refusal_share",
    "min_category_share",
    "max_tie_share",
    "max_duplicate_pair_share",
    "max_chosen_longer_share",
    "min_chosen_longer_share",
    "min_adversarial_share",
    "max_adversarial_share",
    "max_synthetic_share",
    "min_accuracy",
)


def validate(cfg: GateConfig, source: str = "gates") -> None:
    def bad(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{source}: config key '{key}': {msg}")

    for section in dataclasses.fields(cfg):
        value = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        for f in dataclasses.fields(value):
            v, key = getattr(value, f.name), f"{section.name}.{f.name}"
            if f.name in _SHARES and not 0.0 <= v <= 1.0:
                raise bad(key, f"must be a share between 0 and 1, got {v}")
    for key, v in (("dedup.threshold", cfg.dedup.threshold), ("leakage.threshold", cfg.leakage.threshold)):
        if not 0.0 < v <= 1.0:
            raise bad(key, f"must be in (0, 1], got {v}")
    for key, v, hi in (
        ("dedup.ngram", cfg.dedup.ngram, 64),
        ("leakage.ngram", cfg.leakage.ngram, 64),
        ("dedup.num_perm", cfg.dedup.num_perm, 1024),
        ("audit.sample_size", cfg.audit.sample_size, 10**7),
    ):
        if not 1 <= v <= hi:
            raise bad(key, f"must be between 1 and {hi}, got {v}")
    if cfg.max_length is not None and cfg.max_length <= 0:
        raise bad("max_length", f"must be > 0, got {cfg.max_length}")
    for i, t in enumerate(cfg.pii.types):
        if t not in PII_TYPES:
            raise bad(f"pii.types[{i}]", f"unknown type {t!r}; known: {', '.join(PII_TYPES)}")
    if cfg.coverage.min_refusal_share > cfg.coverage.max_refusal_share:
        raise bad("coverage.min_refusal_share", "is above coverage.max_refusal_share")
    if cfg.preference.min_adversarial_share > cfg.preference.max_adversarial_share:
        raise bad("preference.min_adversarial_share", "is above preference.max_adversarial_share")


def load_gate_config(path: str | Path | None = None, **overrides) -> GateConfig:
    """Defaults, then the YAML file (if any), then non-None keyword overrides (tokenizer, max_length)."""
    raw: dict = {}
    source = "gates"
    if path is not None:
        source = str(path)
        raw = read_yaml_mapping(path, "gate config")
        raw = raw.get("data_gates", raw) if set(raw) == {"data_gates"} else raw
    raw = dict(raw)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = from_dict(GateConfig, raw)
        cfg.coverage.enforce = coverage_enforced(raw, cfg.coverage.enforce)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    validate(cfg, source)
    return cfg


# Gates that judge the task mix rather than the data's soundness: warnings unless coverage.enforce.
COVERAGE_GATES = ("refusal_share", "adversarial_share")
_COVERAGE_KEYS = {
    "coverage": ("min_refusal_share", "max_refusal_share"),
    "preference": ("min_adversarial_share", "max_adversarial_share"),
}


def coverage_enforced(raw: dict, default: bool) -> bool:
    """An explicit `coverage.enforce` decides; else writing a coverage threshold means wanting it enforced."""
    coverage = raw.get("coverage")
    if isinstance(coverage, dict) and "enforce" in coverage:
        return default
    return default or any(
        isinstance(raw.get(section), dict) and key in raw[section]
        for section, keys in _COVERAGE_KEYS.items()
        for key in keys
    )


def split_advisory(gates: list[dict], cfg: GateConfig) -> tuple[list[dict], list[dict]]:
    """(failing gates, advisory gates): coverage gates are advisory unless enforced."""
    if cfg.coverage.enforce:
        return gates, []
    return ([g for g in gates if g["name"] not in COVERAGE_GATES], [g for g in gates if g["name"] in COVERAGE_GATES])


def advisory_warnings(gates: list[dict]) -> list[str]:
    """One warning per advisory gate outside its range, with the value (the report says what to do)."""
    out = []
    for g in gates:
        if not g["passed"]:
            t = g["threshold"]
            thr = f"in [{t[0]}, {t[1]}]" if g["op"] == "between" else f"{g['op']} {t}"
            out.append(
                f"{g['name']} = {g['value']} is outside its range (should be {thr}: {g['detail']}); "
                "a warning, not a failing gate (set coverage.enforce: true in the gates config to enforce it)"
            )
    return out


def gate(name: str, value: float | int | None, op: str, threshold, section: str, detail: str = "") -> dict:
    """One gate result. `op`: `<=`, `>=` or `between` (threshold [min, max])."""
    if value is None:
        passed = True
    elif op == "<=":
        passed = value <= threshold
    elif op == ">=":
        passed = value >= threshold
    elif op == "between":
        passed = threshold[0] <= value <= threshold[1]
    else:
        raise ValueError(op)
    v = round(value, 6) if isinstance(value, float) else value
    return {
        "name": name,
        "section": section,
        "value": v,
        "op": op,
        "threshold": threshold,
        "passed": bool(passed),
        "detail": detail,
    }
