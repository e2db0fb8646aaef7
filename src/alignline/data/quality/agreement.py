"""Agreement between annotators on nominal labels: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha.

Krippendorff's alpha (nominal) is the gated figure: it takes any number of labels per item and
missing ones. Fleiss' kappa is reported when every item has the same number of labels, Cohen's when
exactly two named annotators labelled the same items.
"""

from __future__ import annotations

from collections import Counter


def krippendorff_alpha(units: list[list]) -> float | None:
    """Nominal alpha over units (each a list of the labels it received); units with < 2 labels are skipped."""
    units = [u for u in units if len(u) >= 2]
    if not units:
        return None
    coincidence: Counter = Counter()
    for u in units:
        counts, m = Counter(u), len(u)
        for a, na in counts.items():
            for b, nb in counts.items():
                coincidence[(a, b)] += na * (nb - (a == b)) / (m - 1)
    totals: Counter = Counter()
    for (a, _b), v in coincidence.items():
        totals[a] += v
    n = sum(totals.values())
    observed = sum(v for (a, b), v in coincidence.items() if a != b)
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b) / (n - 1)
    if expected == 0:
        return 1.0 if observed == 0 else 0.0
    return 1.0 - observed / expected


def fleiss_kappa(units: list[list]) -> float | None:
    units = [u for u in units if len(u) >= 2]
    if not units or len({len(u) for u in units}) != 1:
        return None
    m, n = len(units[0]), len(units)
    categories = sorted({x for u in units for x in u}, key=str)
    p_items = [(sum(c * c for c in Counter(u).values()) - m) / (m * (m - 1)) for u in units]
    p_bar = sum(p_items) / n
    shares = [sum(Counter(u)[c] for u in units) / (n * m) for c in categories]
    p_e = sum(s * s for s in shares)
    return 1.0 if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def cohen_kappa(a: list, b: list) -> float | None:
    if not a or len(a) != len(b):
        return None
    n = len(a)
    p_o = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return 1.0 if p_e == 1 else (p_o - p_e) / (1 - p_e)
