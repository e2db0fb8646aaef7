"""Personal data and secrets: find them (counts by type, record ids) and replace them with typed placeholders.

Each detector is a regular expression plus, where a checksum or a context decides, a validator, so that
order numbers, sums and example passwords are not mistaken for personal data:
- card: 13-19 digits passing the Luhn check, with a known issuer prefix, AND written like a card or said to
  be one: grouped as cards are printed (4-4-4-4, 4-4-4-4-3, Amex 4-6-5, Diners 4-6-4, one separator kind),
  or 15-16 digits in one run (the lengths nearly every card has), or a card word within `CONTEXT_CHARS`
  before or after (card, visa, mastercard, amex, credit, debit, cvv, payment, ...). A number that is an
  operand of arithmetic (`+ - * / = x` right before or after it) needs the card word: LLaMA-Factory's
  dpo_en_demo flagged `355909190063-746` and the sum `4212883012996` as cards;
- iban: country code, check digits and account, passing the ISO 7064 mod-97 check;
- ssn: US social security numbers `AAA-GG-SSSS`, without the never-issued areas 000, 666, 9xx;
- phone: numbers written with separators (`+44 20 7946 0958`, `(415) 555-0132`, `415-555-0132`);
- ip: IPv4 with octets up to 255 (not version numbers: no letter or dot right before or after), IPv6;
- email;
- secret: a known key format, whatever surrounds it (AWS `AKIA`, GitHub `ghp_`, Slack `xox`, OpenAI and
  Anthropic `sk-`, Google `AIza`, Stripe, Hugging Face `hf_`, private key blocks, JWTs); or a value
  assigned to a key name (`password: X`, `DB_PASSWORD=X`, `"api_key": "X"`, `my password is X`, with
  password, passwd, pwd, passphrase, secret, api key, access key or token, auth token, client secret,
  private key, possibly inside a longer name) that mixes letters and digits over 8+ characters.
  Not a secret (decided so; the gate is zero-tolerance, so each false flag stops a run):
  - an example or generated password: the assignment follows, within `EXAMPLE_CHARS`, a word that says so
    (generate, random, example, e.g., for instance, such as, sample, dummy, placeholder, fake,
    hypothetical), as in alpaca_en_demo's "a randomly generated 8-character password: rT8$jLpZ" and
    glaive_toolcall_en_demo's `generate_random_password` tool answers; the same value in a prose example
    without a key-value form ("a strong password like Tr0ub4dor&3") is not matched at all;
  - a placeholder value (`password123`, `your_api_key_2`, `changeme1`, `${DB_PASS1}`, `<secret1>`);
  - a high-entropy string without a key name or known prefix: entropy alone is not used, since hashes,
    UUIDs, commit ids and base64 data would flood the gate.
Where matches overlap, the earlier type in `PII_TYPES` wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PII_TYPES = ("secret", "card", "iban", "ssn", "email", "ip", "phone")
SENSITIVE = ("secret", "card", "iban", "ssn")
PLACEHOLDER = {t: f"[{t.upper()}]" for t in PII_TYPES}
CONTEXT_CHARS = 40
"""How far before and after a card number its card word may be."""
EXAMPLE_CHARS = 240
"""How far before a password assignment a word may say it is an example or generated."""

_SECRET_FORMAT = re.compile(
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b"
    r"|\bxox[baprs]-[A-Za-z0-9-]{10,}\b"
    r"|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}\b"
    r"|\bAIza[0-9A-Za-z_-]{35}\b"
    r"|\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}\b"
    r"|\bhf_[A-Za-z0-9]{30,}\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_KEY_NAME = (
    r"(?:password|passwd|pwd|passphrase|secret|api[_-]?key|access[_-]?(?:key|token)|auth[_-]?token"
    r"|client[_-]?secret|private[_-]?key)"
)
_SECRET_ASSIGNED = re.compile(
    # at most 4 name parts around the key word: unbounded, a long `a-b-c-...` run costs quadratic time
    rf"(?i:\b(?:[a-z0-9]+[_-]){{0,4}}?{_KEY_NAME}(?:[_-][a-z0-9]+){{0,4}}[\"']?\s*(?:[:=]|\s+is\b:?)\s*[\"']?)"
    r"(?P<v>(?![$%{<\[(])(?=[^\s\"']*[0-9])(?=[^\s\"']*[A-Za-z])[^\s\"'<>]{7,}[^\s\"'<>.,;:!?)\]}])"
)
_EXAMPLE = re.compile(
    r"(?i)generat|random|example|e\.g\.|for instance|such as|sample|dummy|placeholder|fake"
    r"|hypothetical"
)
_PLACEHOLDER_VALUE = re.compile(r"(?i)pass(?:word|wd)|secret|your|example|sample|changeme|dummy|xxx|\*\*\*")
_CARD = re.compile(r"(?<![\w.+-])(?:\d[ -]?){12,18}\d(?![\w-]|\.\d)")
_CARD_WORDS = re.compile(
    r"(?i)\b(?:cards?|visa|master\s?card|amex|american express|discover|diners|jcb|maestro"
    r"|credit|debit|cc|cvv|cvc|expir\w*|payment|pan)\b|信用卡|银行卡|卡号"
)
_CARD_GROUPS = ([4, 4, 4, 4], [4, 4, 4, 4, 3], [4, 6, 5], [4, 6, 4])
_OPERATORS = "+-*/=×÷^"
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\w.]|\.\w)")
_IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
    r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}(?![\w:])"
)
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"
    r"(?![\w-]|[ .-]\d)"
    r"|(?<![\w])\+\d{1,3}[ .-]?\d{6,12}(?![\w])"
)
# Issuer prefixes: Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37, Discover 6011/65, Diners 36/38, JCB 35.
_ISSUER = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[4-8]|6(?:011|5))")
_IBAN_LENGTHS = {
    "AD": 24,
    "AT": 20,
    "BE": 16,
    "CH": 21,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "EE": 20,
    "ES": 24,
    "FI": 18,
    "FR": 27,
    "GB": 22,
    "GR": 27,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IS": 26,
    "IT": 27,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MT": 31,
    "NL": 18,
    "NO": 15,
    "PL": 28,
    "PT": 25,
    "RO": 24,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "TR": 26,
    "AE": 23,
    "SA": 24,
    "IL": 23,
    "BR": 29,
    "QA": 29,
}


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = ord(ch) - 48
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if _IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def card_like(number: str) -> bool:
    """Written as cards are: printed groups with one separator kind, or one run of 15-16 digits."""
    seps = set(re.findall(r"[ -]", number))
    if not seps:
        return 15 <= len(number) <= 16
    return len(seps) == 1 and [len(g) for g in re.split(r"[ -]", number)] in _CARD_GROUPS


def operand(text: str, start: int, end: int) -> bool:
    """The number at text[start:end] stands beside an arithmetic operator (an addend or a result)."""
    before, after = text[:start].rstrip()[-1:], text[end:].lstrip()[:1]
    return bool(before and before in _OPERATORS) or bool(after and after in _OPERATORS)


def _card_ok(text: str, m: re.Match) -> bool:
    digits = re.sub(r"[ -]", "", m.group())
    if not (13 <= len(digits) <= 19 and _ISSUER.match(digits) and luhn_ok(digits)):
        return False
    near = text[max(0, m.start() - CONTEXT_CHARS) : m.end() + CONTEXT_CHARS]
    if _CARD_WORDS.search(near):
        return True
    return card_like(m.group()) and not operand(text, m.start(), m.end())


def _assigned_secret_ok(text: str, m: re.Match) -> bool:
    """A key-value secret, unless the value is a placeholder or the text says it is an example."""
    if _PLACEHOLDER_VALUE.search(m.group("v")):
        return False
    return not _EXAMPLE.search(text, max(0, m.start() - EXAMPLE_CHARS), m.start())


def _phone_ok(m: str) -> bool:
    digits = re.sub(r"\D", "", m)
    return 7 <= len(digits) <= 15


# (type, pattern, validator(text, match) or None), in PII_TYPES order.
_DETECTORS = (
    ("secret", _SECRET_FORMAT, None),
    ("secret", _SECRET_ASSIGNED, _assigned_secret_ok),
    ("card", _CARD, _card_ok),
    ("iban", _IBAN, lambda t, m: iban_ok(m.group())),
    ("ssn", _SSN, None),
    ("email", _EMAIL, None),
    ("ip", _IPV4, None),
    ("ip", _IPV6, lambda t, m: m.group().count(":") >= 2),
    ("phone", _PHONE, lambda t, m: _phone_ok(m.group())),
)


# Cheap tests that skip a detector when the text cannot hold its kind (most texts hold none):
# numbers need a run of digits and separators, emails an @, IPv6 two colons, secrets a marker.
_NUMERIC = re.compile(r"\d[\d .()/+-]{5,}\d")
_HEXCOLON = re.compile(r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:")
_SECRET_MARKERS = (
    "PRIVATE KEY",
    "AKIA",
    "ASIA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "sk-",
    "AIza",
    "_live_",
    "_test_",
    "hf_",
    "eyJ",
)
_SECRET_WORDS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "apikey",
    "api_key",
    "api-key",
    "token",
    "access_key",
    "access-key",
    "accesskey",
    "private_key",
    "private-key",
    "privatekey",
)


def _numeric(text: str) -> bool:
    return bool(_NUMERIC.search(text))


def _colons(text: str) -> bool:
    return text.count(":") >= 2 and bool(_HEXCOLON.search(text))


def _secretish(text: str) -> bool:
    if any(m in text for m in _SECRET_MARKERS):
        return True
    low = text.lower()
    return any(w in low for w in _SECRET_WORDS)


def _email(text: str) -> bool:
    return "@" in text


_PREFILTER = {
    _SECRET_FORMAT: _secretish,
    _SECRET_ASSIGNED: _secretish,
    _CARD: _numeric,
    _IBAN: _numeric,
    _SSN: _numeric,
    _EMAIL: _email,
    _IPV4: _numeric,
    _IPV6: _colons,
    _PHONE: _numeric,
}


@dataclass(slots=True, frozen=True)
class Match:
    type: str
    start: int
    end: int
    value: str


def find_pii(text: str, types: tuple[str, ...] | list[str] = PII_TYPES) -> list[Match]:
    """Non-overlapping matches in text order; where spans overlap, the earlier type in PII_TYPES wins."""
    found: list[Match] = []
    taken: list[tuple[int, int]] = []
    checked: dict = {}
    for kind, pattern, ok in _DETECTORS:
        if kind not in types:
            continue
        pre = _PREFILTER[pattern]
        if pre not in checked:
            checked[pre] = pre(text)
        if not checked[pre]:
            continue
        for m in pattern.finditer(text):
            s, e = m.span("v") if "v" in pattern.groupindex and m.group("v") else m.span()
            if ok is not None and not ok(text, m):
                continue
            if any(s < te and ts < e for ts, te in taken):
                continue
            taken.append((s, e))
            found.append(Match(kind, s, e, text[s:e]))
    return sorted(found, key=lambda m: m.start)


def redact_text(text: str, types=PII_TYPES) -> tuple[str, list[Match]]:
    matches = find_pii(text, types)
    out, last = [], 0
    for m in matches:
        out.append(text[last : m.start])
        out.append(PLACEHOLDER[m.type])
        last = m.end
    out.append(text[last:])
    return "".join(out), matches


def redact_value(value, types=PII_TYPES, counts: dict | None = None):
    """Redact every string inside a record (message contents, prompt, chosen, ...); keys stay as they are."""
    if isinstance(value, str):
        new, matches = redact_text(value, types)
        if counts is not None:
            for m in matches:
                counts[m.type] = counts.get(m.type, 0) + 1
        return new
    if isinstance(value, dict):
        return {k: (v if k in ("role", "from") else redact_value(v, types, counts)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, types, counts) for v in value]
    return value


def mask(value: str) -> str:
    """A shown-but-not-leaked form of a match for reports: first and last two characters."""
    return value if len(value) <= 4 else f"{value[:2]}{'*' * min(len(value) - 4, 12)}{value[-2:]}"


class PiiCheck:
    """Counts matches and records by type; keeps up to `keep` record ids and masked examples per type."""

    def __init__(self, types=PII_TYPES, keep: int = 200):
        self.types, self.keep = tuple(types), keep
        self.matches = {t: 0 for t in self.types}
        self.records = {t: 0 for t in self.types}
        self.ids: dict[str, list[str]] = {t: [] for t in self.types}
        self.examples: dict[str, list[dict]] = {t: [] for t in self.types}
        self.any_records = 0
        self.sensitive_records = 0
        self.total = 0

    def add(self, rid: str, text: str) -> None:
        self.total += 1
        found = find_pii(text, self.types)
        if not found:
            return
        self.any_records += 1
        kinds = {m.type for m in found}
        if kinds & set(SENSITIVE):
            self.sensitive_records += 1
        for m in found:
            self.matches[m.type] += 1
        for k in kinds:
            self.records[k] += 1
            if len(self.ids[k]) < self.keep:
                self.ids[k].append(rid)
            if len(self.examples[k]) < 5:
                m = next(x for x in found if x.type == k)
                self.examples[k].append({"id": rid, "match": mask(m.value)})

    def result(self) -> dict:
        return {
            "records_with_pii": self.any_records,
            "sensitive_records": self.sensitive_records,
            "record_share": self.any_records / max(1, self.total),
            "by_type": {
                t: {
                    "matches": self.matches[t],
                    "records": self.records[t],
                    "ids": self.ids[t],
                    "ids_truncated": self.records[t] > len(self.ids[t]),
                    "examples": self.examples[t],
                }
                for t in self.types
            },
        }
