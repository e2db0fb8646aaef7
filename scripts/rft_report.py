"""The `make demo-rft` report: held-out tool use and accuracy before and after training, from the run's own
evaluations (`methods/rft.py:evaluate_episodes`: one greedy episode per held-out task, at step 0 and at the end).
With `--base MODEL`, a first column: that model (the one the SFT warm start began from) on the same episodes.

    python scripts/rft_report.py runs/rft-demo
    python scripts/rft_report.py runs/rft-demo --base smollm2-135m      # base | before RL (the warm start) | after RL
    python scripts/rft_report.py runs/rft-demo --model runs/rft-demo/checkpoints/step-4   # any model, same episodes
    python scripts/rft_report.py runs/rft-demo --intervals    # + paired 95 % intervals, after RL - before RL

With `--intervals`, each held-out task's outcome at the first and the last evaluation (answer correct, a
correct tool call, every call valid) is read from the run's `eval_episodes.jsonl`, the very episodes behind
the table (a run without that file plays them again: the warm start, the run's `model:`, and `RUN/final`).
The differences after - before come with a paired bootstrap 95 % interval over the tasks and McNemar's exact p
(alignline.evals.stats), written to demo_rft.json under `intervals`.
"""

from __future__ import annotations

import json
from pathlib import Path

from alignline.io import write_json
from alignline.train.metrics import read_metrics

ROWS = [
    ("eval_tool_call_rate", "episodes with a correct tool call"),
    ("eval_tool_call_valid_rate", "tool calls that were valid"),
    ("eval_correct_rate", "answer accuracy"),
    ("eval_reward/format", "final reply as 'Answer: <number>'"),
    ("eval_tool_calls_per_episode", "tool calls per episode"),
    ("eval_episode_turns", "turns per episode"),
    ("eval_reward", "episode reward"),
]


def report(run_dir: Path, base: str | None = None, intervals: bool = False) -> dict:
    metrics = read_metrics(run_dir / "metrics.jsonl")
    evals = [m for m in metrics if "eval_reward" in m]
    if len(evals) < 2:
        raise SystemExit(f"{run_dir}: needs an evaluation at the start and at the end (eval_at_start: true)")
    before, after = evals[0], evals[-1]
    run = json.loads((run_dir / "run.json").read_text())
    held = min(run["data"]["eval_prompts"], run["config"]["grpo"]["eval_prompts"])
    base_row = evaluate_model(run_dir, base, quiet=True) if base else None
    base_row = {f"eval_{k}": v for k, v in (base_row or {}).items()}
    print(
        f"\nMulti-step RL on the calculator: {held} held-out tasks, one greedy episode each, "
        f"step {before['step']} -> step {after['step']} ({run.get('seconds', 0) / 60:.1f} min)"
    )
    print(f"{'':42s} {'base' if base else '':>8s} {'before RL':>10s} {'after RL':>9s}")
    for key, label in ROWS:
        if key in before and key in after:
            first = f"{base_row[key]:8.3f}" if key in base_row else " " * 8
            print(f"{label:42s} {first} {before[key]:10.3f} {after[key]:9.3f}")
    train_rows = [m for m in metrics if "tool_call_rate" in m]
    if train_rows:
        first, last = train_rows[:5], train_rows[-5:]
        mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
        print(
            f"training episodes (sampled), first 5 -> last 5 steps: tool-call rate "
            f"{mean(first, 'tool_call_rate'):.3f} -> {mean(last, 'tool_call_rate'):.3f}, reward "
            f"{mean(first, 'reward'):.3f} -> {mean(last, 'reward'):.3f}"
        )
    result = {
        "run_dir": str(run_dir),
        "held_out_tasks": held,
        "seconds": run.get("seconds"),
        "before": {k: before.get(k) for k, _ in ROWS},
        "after": {k: after.get(k) for k, _ in ROWS},
    }
    if base:
        result.update(base_model=base, base={k: base_row.get(k) for k, _ in ROWS})
    if intervals:
        logged = logged_outcomes(run_dir, before["step"], after["step"])
        if logged:  # the run's own evaluations, task by task (methods/rft.py: eval_episodes.jsonl)
            before_o, after_o = logged
        else:  # a run from before eval_episodes.jsonl: play the episodes again
            cfg = json.loads((run_dir / "run.json").read_text())["config"]
            before_o = episode_outcomes(run_dir, cfg["model"])
            after_o = episode_outcomes(run_dir, str(run_dir / "final"))
        result["intervals"] = paired_intervals(after_o, before_o)
        n = len(next(iter(after_o.values())))
        print(f"after RL - before RL, {n} held-out tasks (paired bootstrap 95 % interval, McNemar's exact p):")
        for key, d in result["intervals"].items():
            print(
                f"  {OUTCOMES[key]:40s} {100 * d['before']:5.1f}% -> {100 * d['after']:5.1f}%  "
                f"{100 * d['delta']:+.1f} [{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}] p={d['p_value']:.3g}"
            )
    write_json(run_dir / "demo_rft.json", result)
    return result


def evaluate_model(run_dir: Path, model: str, tasks: int | None = None, quiet: bool = False) -> dict:
    """The run's held-out episodes (its recipe, `grpo.eval_prompts` tasks) with another model: the base, a
    checkpoint."""
    from alignline.methods.rft import evaluate_episodes

    method, wrapped, units = held_out(run_dir, model, tasks)
    result = evaluate_episodes(method, wrapped, units)
    if not quiet:
        print(json.dumps({"model": model, "tasks": len(units), **result}, indent=1))
    return result


def held_out(run_dir: Path, model: str, tasks: int | None = None) -> tuple:
    """The run's episode method (its recipe), `model` wrapped as its policy, and the first `tasks` held-out
    tasks (default `grpo.eval_prompts`)."""
    from alignline.config import RunConfig, from_dict
    from alignline.methods import get_method
    from alignline.methods.online import PolicyModel
    from alignline.models.loading import load_causal_lm

    cfg = from_dict(RunConfig, json.loads((run_dir / "run.json").read_text())["config"])
    tokenizer, hf_model = load_causal_lm(model, cfg.training.dtype)
    method = get_method(cfg)
    data = method.prepare(cfg, tokenizer, False)
    wrapped = PolicyModel(hf_model, None, cfg.training.fast_path)
    return method, wrapped, data.eval[: tasks or cfg.grpo.eval_prompts]


OUTCOMES = {
    "correct": "answer accuracy",
    "correct_call": "episodes with a correct tool call",
    "valid_calls": "episodes whose calls were all valid",
}


def logged_outcomes(run_dir: Path, first: int, last: int) -> tuple[dict, dict] | None:
    """The outcomes per held-out task at steps `first` and `last`, from the run's eval_episodes.jsonl; None
    when the file lacks either evaluation (or they cover different tasks)."""
    from alignline.methods.rft import EVAL_EPISODES

    path = run_dir / EVAL_EPISODES
    if not path.exists():
        return None
    records = read_metrics(path)
    picked = []
    for step in (first, last):
        rows = sorted((r for r in records if r["step"] == step), key=lambda r: r["task"])
        picked.append({k: [float(r[k]) for r in rows] for k in OUTCOMES} if rows else None)
    if None in picked or len(picked[0]["correct"]) != len(picked[1]["correct"]):
        return None
    return picked[0], picked[1]


def episode_outcomes(run_dir: Path, model: str, tasks: int | None = None) -> dict[str, list[float]]:
    """Per held-out task (the run's recipe, `grpo.eval_prompts` tasks), one greedy episode of `model`:
    the 0/1 outcomes of `methods.rft.episode_outcomes`."""
    from alignline.methods.rft import episode_outcomes as outcomes

    method, wrapped, units = held_out(run_dir, model, tasks)
    episodes = method.rollout(wrapped, [method.task(u) for u in units], seed=0, n=1, temperature=0.0)
    _, components = method.score(episodes)
    return outcomes(episodes, components)


def paired_intervals(after: dict[str, list[float]], before: dict[str, list[float]]) -> dict[str, dict]:
    """after - before per outcome, with the paired bootstrap 95 % interval and McNemar's exact p."""
    from alignline.evals.stats import mcnemar_exact, paired_bootstrap

    out = {}
    for key in after:
        delta, low, high = paired_bootstrap("mean", {"x": after[key]}, {"x": before[key]})
        test = mcnemar_exact(after[key], before[key])
        out[key] = {
            "before": sum(before[key]) / len(before[key]),
            "after": sum(after[key]) / len(after[key]),
            "delta": delta,
            "ci_low": low,
            "ci_high": high,
            "p_value": test["p_value"],
            "n": len(after[key]),
        }
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", nargs="?", default="runs/rft-demo")
    parser.add_argument("--model", help="evaluate this model on the run's held-out episodes instead")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--base", help="also evaluate this model (the warm start's own base) for a first column")
    parser.add_argument("--intervals", action="store_true", help="paired intervals on after - before RL")
    args = parser.parse_args()
    if args.model:
        evaluate_model(Path(args.run_dir), args.model, args.tasks)
    else:
        report(Path(args.run_dir), args.base, args.intervals)
