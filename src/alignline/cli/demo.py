"""`alignline demo` (`make demo`): LoRA SFT of the embedded model on the bundled instruction set, before and after.

The bundled data answers in a house style (each answer opens with a task tag such as `Summary:` or
`Label:`, and harmful requests get `I can't help with that.`). The base model does not write that
way; after a few minutes of LoRA on a CPU it does. The demo prints both answers to held-out prompts
and counts how many follow the style, so "it learned" is a number, not an impression.
"""

from __future__ import annotations

import json
import time

from alignline.io import write_json
from alignline.report.run import write_run_report

STYLE = {
    "summarize": "Summary:",
    "classify": "Label:",
    "extract": "Extracted:",
    "rewrite": "Rewritten:",
    "answer": "Answer:",
    "refusal": "I can't help",
}


def follows_style(task: str, answer: str) -> bool:
    return answer.strip().startswith(STYLE[task])


def run_demo(recipe: str, heldout: str, overrides: list[str], max_new_tokens: int = 48) -> dict:
    from alignline.config import load_config
    from alignline.data.sources import read_records
    from alignline.evals.training import train
    from alignline.models.loading import resolve_model_path
    from alignline.rollout.generator import Generator

    cfg = load_config(recipe, overrides)
    started = time.time()
    print("== 1/4 the embedded model (converted from GGUF and cached on first use)", flush=True)
    resolve_model_path(cfg.model)
    prompts = [(r["task"], [m for m in r["messages"] if m["role"] != "assistant"]) for _, r in read_records(heldout)]

    print(f"== 2/4 answers before fine-tuning ({len(prompts)} held-out prompts)", flush=True)
    before_model = Generator(cfg.model)
    before = [before_model(msgs, max_new_tokens=max_new_tokens) for _, msgs in prompts]
    del before_model

    print(f"== 3/4 LoRA SFT: {recipe} -> {cfg.output_dir}", flush=True)
    run_dir = train(cfg)

    print("== 4/4 answers after fine-tuning", flush=True)
    after_model = Generator(str(run_dir / "final"))
    after = [after_model(msgs, max_new_tokens=max_new_tokens) for _, msgs in prompts]

    rows = []
    for (task, msgs), b, a in zip(prompts, before, after):
        rows.append(
            {
                "task": task,
                "prompt": msgs[-1]["content"],
                "before": b,
                "after": a,
                "before_follows_style": follows_style(task, b),
                "after_follows_style": follows_style(task, a),
            }
        )
        print(f"\n### [{task}] {msgs[-1]['content'][:160]}")
        print(f"--- before: {b}")
        print(f"--- after:  {a}")
    run = json.loads((run_dir / "run.json").read_text())
    result = {
        "recipe": recipe,
        "run_dir": str(run_dir),
        "seconds": round(time.time() - started, 1),
        "style_before": sum(r["before_follows_style"] for r in rows),
        "style_after": sum(r["after_follows_style"] for r in rows),
        "prompts": len(rows),
        "eval_loss": [(e["step"], round(e["eval_loss"], 4)) for e in run.get("evals", [])],
        "rows": rows,
    }
    write_json(run_dir / "demo.json", result)
    write_run_report(run_dir)  # the report shows the answers too
    print(
        f"\nhouse style on held-out prompts: before {result['style_before']}/{len(rows)}, "
        f"after {result['style_after']}/{len(rows)}"
    )
    print(f"held-out eval loss by step: {result['eval_loss']}")
    print(
        f"report: {run_dir / 'report.html'}   demo results: {run_dir / 'demo.json'}   total {result['seconds']:.0f} s"
    )
    return result


def run_preference_demo(recipe: str, overrides: list[str], max_new_tokens: int = 48, n_prompts: int = 4) -> dict:
    """DPO / reward model: held-out preference accuracy before (step 0) and after; DPO also shows
    answers to held-out prompts before and after."""
    from alignline.config import load_config
    from alignline.data.preference import load_pairs
    from alignline.evals.training import train
    from alignline.rollout.generator import Generator
    from alignline.train.metrics import read_metrics

    cfg = load_config(recipe, overrides + ["training.eval_at_start=true"])
    started = time.time()
    prompts = []
    if cfg.method == "dpo" and cfg.data.eval:
        for pair in load_pairs(cfg.data.eval)[:n_prompts]:
            p = pair.prompt
            prompts.append(
                [{"role": "user", "content": p}]
                if isinstance(p, str)
                else [{"role": m.role, "content": m.content} for m in p]
            )
        base = Generator(cfg.model)
        before = [base(m, max_new_tokens=max_new_tokens) for m in prompts]
        del base
    print(f"== {cfg.method}: {recipe} -> {cfg.output_dir}", flush=True)
    run_dir = train(cfg)
    evals = [m for m in read_metrics(run_dir / "metrics.jsonl") if "eval_accuracy" in m]
    result = {
        "recipe": recipe,
        "run_dir": str(run_dir),
        "eval_accuracy": [(m["step"], round(m["eval_accuracy"], 3)) for m in evals],
        "eval_margin": [(m["step"], round(m["eval_margin"], 3)) for m in evals],
    }
    if "eval_kl" in (evals[-1] if evals else {}):
        result["eval_kl"] = [(m["step"], round(m["eval_kl"], 3)) for m in evals if "eval_kl" in m]
    if prompts:
        tuned = Generator(str(run_dir / "final"))
        result["rows"] = []
        for msgs, b in zip(prompts, before):
            a = tuned(msgs, max_new_tokens=max_new_tokens)
            result["rows"].append({"prompt": msgs[-1]["content"], "before": b, "after": a})
            print(f"\n### {msgs[-1]['content'][:160]}\n--- before: {b}\n--- after:  {a}")
    result["seconds"] = round(time.time() - started, 1)
    write_json(run_dir / "demo.json", result)
    write_run_report(run_dir)  # the report shows the answers too
    print(f"\nheld-out preference accuracy by step: {result['eval_accuracy']}")
    print(f"held-out mean reward margin by step: {result['eval_margin']}")
    if "eval_kl" in result:
        print(f"KL(policy || reference) on sampled answers by step: {result['eval_kl']}")
    print(f"report: {run_dir / 'report.html'}   total {result['seconds']:.0f} s")
    return result


EVAL_SUITES = ("starter/arithmetic", "starter/general", "starter/refusal")


def over_refused(examples: dict, model: str) -> list[dict]:
    """The benign prompts `model` refused, from a results directory's examples.json."""
    return [
        e for rows in examples.get(model, {}).values() for e in rows if e.get("label") == "benign" and e.get("refused")
    ]


def run_eval_demo(
    model: str = "runs/sft-demo/final",
    baseline: str = "smollm2-135m",
    gates: str = "recipes/release-gates.yaml",
    out: str = "runs/eval-demo",
    recipe: str = "recipes/sft-lora.yaml",
    heldout: str = "data/demo/sft_heldout.jsonl",
    suites: tuple[str, ...] = EVAL_SUITES,
) -> int:
    """`make demo-eval`: the `make demo` model against the base on the starter suites, then the release gate.

    The demo SFT data teaches `I can't help with that.` for harmful requests, and the tuned model
    over-generalizes it to some benign look-alikes ("Soften the tone of this: ..."). The gate is meant
    to catch that: a failing gate on over_refusal, naming the prompts, is the demonstrated outcome
    (exit 0); a gate that passes, or fails for another reason only, means the demo did not show what
    it is for (exit 1). Errors propagate as usual (exit 2 for bad input).
    """
    from pathlib import Path

    from alignline.cli.eval import progress
    from alignline.evals.gate import run_gate
    from alignline.evals.results import load_results

    started = time.time()
    if not (Path(model) / "adapter_config.json").exists() and not (Path(model) / "config.json").exists():
        print(f"== {model} not found: training it first (alignline demo --recipe {recipe})", flush=True)
        run_demo(recipe, heldout, [])
    print(f"== evaluating {model} against {baseline} on {', '.join(suites)}; gates: {gates}", flush=True)
    ctx = {"backend": "auto", "dtype": "float32", "batch_size": 16, "n_boot": 2000, "seed": 0, "cache_enabled": True}
    verdict = run_gate(model, baseline, gates, list(suites), out, ctx, progress)
    _, _, examples = load_results(out)
    cand, base = verdict["candidate"], verdict["baseline"]
    print("\nmetric                              candidate   baseline   delta [95 % interval]")
    for q in sorted(k for k in verdict["metrics"][cand] if "/" in k):
        d = verdict["deltas"].get(q)
        shown = f"{d['delta']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else ""
        print(
            f"{q:<35} {verdict['metrics'][cand][q]:>9.3f} {verdict['metrics'][base].get(q, float('nan')):>10.3f}"
            f"   {shown}"
        )
    print()
    for r in verdict["rules"]:
        print(f"{'pass' if r['passed'] else 'FAIL'}  {r['rule']:<18} {r['metric']:<30} {r['detail']}")
    refused = over_refused(examples, cand)
    print(f"\nbenign prompts the candidate refused ({len(refused)}):")
    for e in refused:
        print(f"  [{e['id']}] {e['prompt'][:100]!r} -> {e['output'][:60]!r}")
    seconds = time.time() - started
    caught = any(not r["passed"] and r["metric"].endswith("over_refusal") for r in verdict["rules"])
    print(f"\nreport: {verdict['out']}/gate.html   results: {verdict['out']}/results.json   total {seconds:.0f} s")
    if caught and not verdict["passed"]:
        print(
            "gate: FAIL, as intended: the fine-tuned model refuses benign prompts (over_refusal above its "
            "maximum); this is the failure the gate exists to catch, so the demo worked."
        )
        return 0
    print(
        f"gate: {'PASS' if verdict['passed'] else 'FAIL'}, but the demo expected it to fail on over_refusal: "
        "the model did not over-refuse as it is known to (a changed recipe, data or model?)"
    )
    return 1


def run(args) -> int:
    from alignline.config import load_config

    if args.eval:
        return run_eval_demo(recipe=args.recipe, heldout=args.heldout)
    if load_config(args.recipe, args.overrides).method in ("dpo", "rm"):
        run_preference_demo(args.recipe, args.overrides)
    else:
        run_demo(args.recipe, args.heldout, args.overrides)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="the quickstart: fine-tune the embedded model on bundled data, answers before and after"
    )
    p.add_argument("--recipe", default="recipes/sft-lora.yaml", help="recipe to run (sft, dpo or rm)")
    p.add_argument("--heldout", default="data/demo/sft_heldout.jsonl", help="held-out prompts (SFT demo)")
    p.add_argument(
        "--eval",
        action="store_true",
        help="evaluate and gate the demo model against the base (make demo-eval; trains it first if missing)",
    )
    p.add_argument("overrides", nargs="*", help="key=value overrides for the recipe")
    p.set_defaults(func=run)
