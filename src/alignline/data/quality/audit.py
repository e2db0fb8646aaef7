"""Spot audits: export a stratified random sample for people to review, then score their verdicts.

`sample`: one streaming pass keeps a seeded reservoir of up to N records per category, then allocates
N across categories in proportion to their size (largest remainder, at least one each while N
allows), so rare categories are seen too. The CSV has a blank `verdict` column for the reviewer.
`score`: every row needs a verdict (correct / incorrect, or skip); the gate is the share correct.
"""

from __future__ import annotations

import csv
import io
import math
import random
from pathlib import Path

from tqdm import tqdm

from alignline.data.quality.coverage import category_of
from alignline.data.quality.gates import gate
from alignline.data.quality.items import iter_items
from alignline.errors import DataError
from alignline.io import write_text

COLUMNS = ("id", "category", "prompt", "response", "rejected", "verdict", "note")
CORRECT = {"correct", "ok", "yes", "y", "1", "pass", "good", "true", "accept", "accepted", "✓"}
INCORRECT = {"incorrect", "wrong", "no", "n", "0", "fail", "bad", "false", "reject", "rejected", "✗"}
SKIP = {"skip", "skipped", "n/a", "na", "unsure"}


def _cell(text: str) -> str:
    """Spreadsheet-safe: a leading = + - @ would run as a formula in Excel or LibreOffice."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def allocate(counts: dict[str, int], n: int) -> dict[str, int]:
    total = sum(counts.values())
    if total <= n:
        return dict(counts)
    cats = sorted(counts)
    base = {c: min(counts[c], 1 if n >= len(cats) else 0) for c in cats}
    left = n - sum(base.values())
    quota = {c: (counts[c] - base[c]) * left / max(1, total - sum(base.values())) for c in cats}
    alloc = {c: base[c] + min(counts[c] - base[c], math.floor(quota[c])) for c in cats}
    for c in sorted(cats, key=lambda c: (-(quota[c] - math.floor(quota[c])), c)):
        if sum(alloc.values()) >= n:
            break
        if alloc[c] < counts[c]:
            alloc[c] += 1
    while sum(alloc.values()) < n:  # categories capped at their size leave room for others
        c = max((c for c in cats if alloc[c] < counts[c]), key=lambda c: counts[c] - alloc[c])
        alloc[c] += 1
    return alloc


def sample(paths: list[str], n: int, seed: int = 0, progress: bool = True) -> tuple[list[dict], dict[str, int]]:
    rng = random.Random(seed)
    reservoirs: dict[str, list] = {}
    counts: dict[str, int] = {}
    for item in tqdm(iter_items(paths), desc="sampling", unit=" records", disable=not progress, dynamic_ncols=True):
        cat, _ = category_of(item)
        counts[cat] = counts.get(cat, 0) + 1
        res = reservoirs.setdefault(cat, [])
        row = {
            "id": item.rid,
            "category": cat,
            "prompt": item.prompt,
            "response": item.response,
            "rejected": "\n".join(m.content for m in item.rejected) if item.rejected else "",
            "index": item.index,
        }
        if len(res) < n:
            res.append(row)
        else:
            j = rng.randrange(counts[cat])
            if j < n:
                res[j] = row
    alloc = allocate(counts, n)
    rows = []
    for cat in sorted(reservoirs):
        rows += sorted(rng.sample(reservoirs[cat], alloc[cat]), key=lambda r: r["index"])
    return rows, alloc


def write_sample_csv(rows: list[dict], path: str | Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(
            [
                _cell(r["id"]),
                _cell(r["category"]),
                _cell(r["prompt"]),
                _cell(r["response"]),
                _cell(r["rejected"]),
                "",
                "",
            ]
        )
    write_text(Path(path), buf.getvalue())


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = correct / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return round(centre - half, 4), round(centre + half, 4)


def score(path: str | Path, min_accuracy: float = 0.9) -> dict:
    p = Path(path)
    if not p.is_file():
        raise DataError(str(p), "no such file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(str(p), "not UTF-8 text; save the reviewed sheet as CSV UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    for col in ("id", "verdict"):
        if col not in header:
            raise DataError(str(p), f"no '{col}' column (found: {', '.join(header) or 'none'})", "row 1", col)
    iv, ic = header.index("verdict"), header.index("category") if "category" in header else None
    correct = incorrect = skipped = 0
    by_cat: dict[str, list[int]] = {}
    for number, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        verdict = row[iv].strip().lower() if iv < len(row) else ""
        if not verdict:
            raise DataError(
                str(p), "is empty; every row needs a verdict (correct, incorrect or skip)", f"row {number}", "verdict"
            )
        if verdict in SKIP:
            skipped += 1
            continue
        if verdict not in CORRECT | INCORRECT:
            raise DataError(
                str(p),
                f"{row[iv].strip()!r} is not a verdict; use correct, incorrect or skip",
                f"row {number}",
                "verdict",
            )
        ok = verdict in CORRECT
        correct += ok
        incorrect += not ok
        cat = row[ic].lstrip("'") if ic is not None and ic < len(row) else "all"
        stats = by_cat.setdefault(cat, [0, 0])
        stats[0] += 1
        stats[1] += ok
    reviewed = correct + incorrect
    if reviewed == 0:
        raise DataError(str(p), "no reviewed rows (every row is empty or skipped)")
    accuracy = correct / reviewed
    report = {
        "file": str(p),
        "reviewed": reviewed,
        "correct": correct,
        "incorrect": incorrect,
        "skipped": skipped,
        "accuracy": accuracy,
        "wilson_95": wilson(correct, reviewed),
        "by_category": {k: {"reviewed": v[0], "accuracy": v[1] / v[0]} for k, v in sorted(by_cat.items())},
    }
    report["gates"] = [gate("audit_accuracy", accuracy, ">=", min_accuracy, "audit", "reviewed records judged correct")]
    report["passed"] = report["gates"][0]["passed"]
    return report
