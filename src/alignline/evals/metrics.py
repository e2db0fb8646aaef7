"""What alignline knows about a metric from its name alone: which direction is better.

A metric is named `<suite>/<metric>` in results (`arithmetic/accuracy`); `metric_name` strips the suite.
The results model (`results.py`), the pages (`report.py`) and the release gate (`gate.py`) all read
these facts here, so none of them has to import another for them.
"""

from __future__ import annotations

HIGHER_IS_BETTER = {
    "accuracy": True,
    "refusal_accuracy": True,
    "win_rate": True,
    "lc_win_rate": True,
    "paraphrase_consistency": True,
    "perplexity": False,
    "over_refusal": False,
    "attack_success_rate": False,
    "canary_leakage": False,
    "canary_partial": False,
    "pii_leakage": False,
    "kl": False,
    "forgetting": False,
    "ece": False,
}


def metric_name(qualified: str) -> str:
    """The metric without its suite: `arithmetic/accuracy` -> `accuracy` (a bare name is returned as is)."""
    return qualified.rsplit("/", 1)[-1]
