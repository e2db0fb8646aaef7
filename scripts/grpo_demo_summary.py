"""Print `make demo-grpo`'s result: held-out correctness and format of the base, the SFT warm start and the final
GRPO model, the paired differences final - base and final - warm start with their 95 % intervals, the run's
alarms, and whether the demo's aims were met.

    python scripts/grpo_demo_summary.py runs/grpo-demo/eval-vs-base/results.json \
        runs/grpo-demo/eval-vs-warm/results.json [--run runs/grpo-demo]

The two results files are one `alignline eval` of the three models (named base, warm, grpo) with `--baseline base`
and again with `--baseline warm` (the second reads every answer from the eval cache): each gives its paired
deltas, a bootstrap interval over the same held-out problems and McNemar's exact p (results.json's `deltas`).
Aims (issue 21): final >= base + 15 points; final above the warm start with an interval excluding 0; no
reward-hacking alarm in the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

METRICS = (("accuracy", "correct"), ("format", "format (ends 'Answer: N')"))


def delta_text(d: dict) -> str:
    if "ci_low" not in d:
        return ""
    p = f" p={d['p_value']:.3g}" if "p_value" in d else ""
    return f"{100 * d['delta']:+.1f} [{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}]{p}"


def summary(vs_base: dict, vs_warm: dict, suite: str = "arith", alarms: list[str] | None = None) -> list[str]:
    """The table's lines, then one line per aim (met or missed)."""
    m = vs_base["metrics"]
    n = next((d.get("n") for d in vs_base.get("deltas", {}).get("grpo", {}).values() if "n" in d), "?")
    lines = [
        f"held-out ({suite}, {n} problems)  {'base':>7}{'warm':>7}{'final':>7}   {'final-base [95% CI]':<30}"
        "final-warm [95% CI]"
    ]
    for metric, label in METRICS:
        key = f"{suite}/{metric}"
        if any(key not in m.get(x, {}) for x in ("base", "warm", "grpo")):
            continue
        db = vs_base.get("deltas", {}).get("grpo", {}).get(key, {})
        dw = vs_warm.get("deltas", {}).get("grpo", {}).get(key, {})
        values = "".join(f"{100 * m[x][key]:>6.1f}%" for x in ("base", "warm", "grpo"))
        lines.append(f"{label:<29}{values}   {delta_text(db):<30}{delta_text(dw)}")
    key = f"{suite}/accuracy"
    if key in m.get("grpo", {}):
        db = vs_base.get("deltas", {}).get("grpo", {}).get(key, {})
        dw = vs_warm.get("deltas", {}).get("grpo", {}).get(key, {})
        gain = m["grpo"][key] - m["base"][key]
        lines.append(f"aim final >= base + 15 points: {'met' if gain >= 0.15 else 'MISSED'} ({100 * gain:+.1f})")
        above = dw.get("ci_low", 0.0) > 0
        lines.append(
            f"aim final > warm start, interval excluding 0: {'met' if above else 'MISSED'} ({delta_text(dw) or 'n/a'})"
        )
    if alarms is not None:
        hacking = [a for a in alarms if a.startswith("reward hacking")]
        lines.append(f"aim no reward-hacking alarm: {'met' if not hacking else 'MISSED'}")
        lines += [f"  alarm: {a}" for a in alarms]
    return lines


def run_alarms(run_dir: Path) -> list[str] | None:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    alarms = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            alarms += json.loads(line).get("alarms", [])
    return alarms


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vs_base", type=Path, help="results.json of the eval with --baseline base")
    ap.add_argument("vs_warm", type=Path, help="results.json of the eval with --baseline warm")
    ap.add_argument("--run", type=Path, default=Path("runs/grpo-demo"), help="the GRPO run (its alarms)")
    args = ap.parse_args(argv)
    for path in (args.vs_base, args.vs_warm):
        if not path.is_file():
            print(f"{path}: no results.json (run alignline eval first)", file=sys.stderr)
            return 2
    vs_base, vs_warm = (json.loads(p.read_text(encoding="utf-8")) for p in (args.vs_base, args.vs_warm))
    print("\n".join(summary(vs_base, vs_warm, alarms=run_alarms(args.run))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
