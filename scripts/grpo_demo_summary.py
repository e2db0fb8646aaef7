"""Print `make demo-grpo`'s before/after: held-out correctness and format compliance, base against GRPO.

python scripts/grpo_demo_summary.py runs/grpo-demo/eval-after/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def summary(results: dict, base: str = "base", trained: str = "grpo", suite: str = "arith") -> list[str]:
    """Lines of a small table: each metric before, after, and the change with its 95 % interval (points)."""
    lines = [f"{'held-out (' + suite + ')':<28}{'before':>8}{'after':>8}{'change':>10}   95 % interval"]
    for metric, label in (("accuracy", "correct"), ("format", "format (ends 'Answer: N')")):
        key = f"{suite}/{metric}"
        before, after = results["metrics"][base].get(key), results["metrics"][trained].get(key)
        if before is None or after is None:
            continue
        d = results.get("deltas", {}).get(trained, {}).get(key, {})
        ci = f"[{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}]" if "ci_low" in d else ""
        p = f"  p = {d['p_value']:.3f} ({d['test']})" if "p_value" in d else ""
        lines.append(f"{label:<28}{100 * before:>7.1f}%{100 * after:>7.1f}%{100 * (after - before):>+9.1f}pt   {ci}{p}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print("usage: grpo_demo_summary.py RESULTS.json (from alignline eval)", file=sys.stderr)
        return 2
    print("\n".join(summary(json.loads(Path(argv[0]).read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
