"""The `make demo-rft` report: held-out tool use and accuracy before and after training, from the run's own
evaluations (`methods/rft.py:evaluate_episodes`: one greedy episode per held-out task, at step 0 and at the end).

    python scripts/rft_report.py runs/rft-demo
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from alignline.io import write_json
from alignline.train.metrics import read_metrics

ROWS = [("eval_tool_call_rate", "episodes with a correct tool call"),
        ("eval_tool_call_valid_rate", "tool calls that were valid"),
        ("eval_correct_rate", "answer accuracy"),
        ("eval_reward/format", "final reply as 'Answer: <number>'"),
        ("eval_tool_calls_per_episode", "tool calls per episode"),
        ("eval_episode_turns", "turns per episode"),
        ("eval_reward", "episode reward")]


def report(run_dir: Path) -> dict:
    metrics = read_metrics(run_dir / "metrics.jsonl")
    evals = [m for m in metrics if "eval_reward" in m]
    if len(evals) < 2:
        raise SystemExit(f"{run_dir}: needs an evaluation at the start and at the end (eval_at_start: true)")
    before, after = evals[0], evals[-1]
    run = json.loads((run_dir / "run.json").read_text())
    held = run["data"]["eval_prompts"]
    print(f"\nMulti-step RL on the calculator: {held} held-out tasks, one greedy episode each, "
          f"step {before['step']} -> step {after['step']} ({run.get('seconds', 0) / 60:.1f} min)")
    print(f"{'':42s} {'before':>8s} {'after':>8s}")
    for key, label in ROWS:
        if key in before and key in after:
            print(f"{label:42s} {before[key]:8.3f} {after[key]:8.3f}")
    train_rows = [m for m in metrics if "tool_call_rate" in m]
    if train_rows:
        first, last = train_rows[: 5], train_rows[-5:]
        mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
        print(f"training episodes (sampled), first 5 -> last 5 steps: tool-call rate "
              f"{mean(first, 'tool_call_rate'):.3f} -> {mean(last, 'tool_call_rate'):.3f}, reward "
              f"{mean(first, 'reward'):.3f} -> {mean(last, 'reward'):.3f}")
    result = {"run_dir": str(run_dir), "held_out_tasks": held, "seconds": run.get("seconds"),
              "before": {k: before.get(k) for k, _ in ROWS}, "after": {k: after.get(k) for k, _ in ROWS}}
    write_json(run_dir / "demo_rft.json", result)
    return result


if __name__ == "__main__":
    report(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/rft-demo"))
