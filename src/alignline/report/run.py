"""`report.html` in a run directory: what a TensorBoard or W&B user looks for, in one offline page.

From `run.json` and `metrics.jsonl` (and `demo.json` when `alignline demo` wrote one): a summary
(status, steps, best eval, time), a chart for every logged series, grouped in a grid, with each
`eval_*` series drawn beside its training counterpart; the data gates (linking `data_report.html`);
the demo's answers before and after; the data actually used; the config sections the method uses,
as a table; packages and environment. Written again after the demo, so it shows the answers too.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from alignline.config import AdapterConfig, RunConfig
from alignline.io import write_text
from alignline.methods import METHODS  # the registry names the method sections (dpo, rm, ...)
from alignline.render.html import Raw, details, fmt, grid, page, paragraph, section, status, summary, table, text
from alignline.render.svg import PALETTE, line_chart
from alignline.train.metrics import read_metrics

# Series drawn in one chart (besides `x` with `eval_x`, which always share one).
COMBINED = {"chosen_reward": "rewards", "rejected_reward": "rewards", "chosen_logp": "logps", "rejected_logp": "logps"}
# chart -> (title, y-axis title); a series not named here gets its own name for both.
CHARTS = {
    "loss": ("loss", "loss"),
    "accuracy": ("preference accuracy (ties count half)", "share of pairs"),
    "margin": ("reward margin, chosen − rejected", "margin"),
    "rewards": ("rewards of chosen and rejected", "reward"),
    "logps": ("log-probabilities of the answers", "summed log-prob"),
    "kl": ("KL(policy ‖ reference) on sampled answers", "KL (nats)"),
    "ppl": ("perplexity, exp(loss)", "perplexity"),
    "lr": ("learning rate", "learning rate"),
    "grad_norm": ("gradient norm before clipping", "L2 norm"),
    "tokens_per_s": ("throughput, evaluation and saving excluded", "non-padding tokens / s"),
    "step_seconds": ("optimizer step time", "seconds"),
    "tokens": ("non-padding tokens per step", "tokens"),
    "padding": ("padding share of the batch", "share of slots"),
}
GROUPS = (
    ("Optimization", ("lr", "grad_norm")),
    ("Throughput and batches", ("tokens_per_s", "step_seconds", "tokens", "padding")),
)
FIRST_GROUP = "Loss and quality"
ADAPTER_NAMES = {"lora": "LoRA", "qlora": "QLoRA", "prompt": "prompt-tuning", "prefix": "prefix-tuning"}
LORA_FIELDS = {"r", "alpha", "dropout", "target_modules", "use_dora", "use_rslora"}
VIRTUAL_TOKEN_FIELDS = {"num_virtual_tokens"}
DATA_LABELS = {
    "train_samples": "training records",
    "eval_samples": "evaluation records",
    "train_examples": "training examples",
    "eval_examples": "evaluation examples",
    "truncated_examples": "examples truncated to max_length",
    "truncated_tokens": "tokens cut by truncation",
    "train_tokens": "training tokens",
    "train_target_tokens": "training tokens with a loss",
    "train_pairs": "training pairs",
    "eval_pairs": "evaluation pairs",
    "dropped_pairs": "pairs dropped (the prompt alone fills max_length)",
    "truncated_sequences": "answers truncated to max_length",
    "dropped": "dropped (nothing left to train on within max_length)",
    "train_prompts": "training prompts",
    "eval_prompts": "evaluation prompts",
}


def chart_key(series: str) -> str:
    """The chart a series belongs to: `eval_loss` and `loss` -> `loss`; rewards of both answers together."""
    base = series.removeprefix("eval_")
    return COMBINED.get(base, base)


def metric_charts(metrics: list[dict]) -> list[tuple[str, list[str]]]:
    """[(group title, [chart SVG, ...])]: one chart per `chart_key`, every numeric series of every record."""
    names = list(
        dict.fromkeys(
            k
            for m in metrics
            for k, v in m.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
        )
    )
    charts: dict[str, list[str]] = {}
    for name in names:
        charts.setdefault(chart_key(name), []).append(name)
    grouped = {title: [c for c in members if c in charts] for title, members in GROUPS}
    in_groups = {c for members in grouped.values() for c in members}
    order = [(FIRST_GROUP, [c for c in charts if c not in in_groups]), *grouped.items()]
    out = []
    for title, keys in order:
        svgs = []
        for key in keys:
            series = sorted(charts[key], key=lambda s: (s.startswith("eval_"), s))  # train first, then eval
            chart_title, y_title = CHARTS.get(key, (key, key))
            # an eval curve is dashed, in the colour of its training curve
            bases = list(dict.fromkeys(s.removeprefix("eval_") for s in series))
            colors = {s: PALETTE[bases.index(s.removeprefix("eval_")) % len(PALETTE)] for s in series}
            svgs.append(
                line_chart(
                    {s: [(m["step"], m[s]) for m in metrics if isinstance(m.get(s), (int, float))] for s in series},
                    "step",
                    y_title,
                    chart_title,
                    colors=colors,
                    dashed=[s for s in series if s.startswith("eval_")],
                )
            )
        if any(svgs):
            out.append((title, svgs))
    return out


def best_eval_text(run: dict) -> str | None:
    """`eval_loss 0.913 at step 24`: the best value of the early-stopping metric, and when."""
    best = run.get("best_eval") or {}
    if not best:
        return None
    ((name, value),) = list(best.items())[:1]
    if value is None:
        return None
    step = next((e["step"] for e in run.get("evals", []) if e.get(name) == value), None)
    return f"{name} {value:.4g}" + (f" at step {step}" if step is not None else "")


def final_eval(run: dict) -> dict:
    evals = run.get("evals") or []
    return evals[-1] if evals else {}


def used_config(config: dict) -> dict:
    """The config of what ran: no sections of other methods (`dpo:` in an SFT run), no `adapter` for
    full fine-tuning, no adapter fields of another adapter kind, no gate settings with gates off,
    `epochs` only without `max_steps`, early-stopping settings only with a patience, `data.loss_on`
    only for SFT."""
    method = config.get("method")
    out = {k: v for k, v in config.items() if not (k in METHODS and k != method)}
    if out.get("adapter") is None:
        out.pop("adapter", None)
    else:
        kind, adapter = out["adapter"].get("type"), dict(out["adapter"])
        drop = (
            VIRTUAL_TOKEN_FIELDS if kind in ("lora", "qlora") else LORA_FIELDS if kind in ("prompt", "prefix") else ()
        )
        out["adapter"] = {k: v for k, v in adapter.items() if k not in drop}
    if method != "sft" and isinstance(out.get("data"), dict):  # which tokens carry the loss: SFT's choice only
        out["data"] = {k: v for k, v in out["data"].items() if k != "loss_on"}
    if not out.get("data_gates", True):
        out.pop("data_gates_config", None)
        out.pop("proceed_on_gate_failure", None)
    training = dict(out.get("training") or {})
    if training.get("max_steps"):
        training.pop("epochs", None)
    if not training.get("early_stopping_patience"):
        training.pop("early_stopping_threshold", None)
    if not training.get("warmup_steps") and not training.get("warmup_ratio"):
        training.pop("warmup_ratio", None)
    if "training" in out:
        out["training"] = training
    if method == "dpo" and isinstance(out.get("dpo"), dict) and out["dpo"].get("loss_type") != "simpo":
        out["dpo"] = {k: v for k, v in out["dpo"].items() if k != "simpo_gamma"}
    return out


def flatten(config: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Dotted keys and leaf values; `data.train` sources become `path (weight w)` text."""
    rows = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, name + ".")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows.append(
                (
                    name,
                    "; ".join(
                        f"{v.get('path')}" + (f" (weight {fmt(v['weight'])})" if v.get("weight", 1.0) != 1.0 else "")
                        for v in value
                    ),
                )
            )
        else:
            rows.append((name, value))
    return rows


def default_config() -> dict:
    defaults = dataclasses.asdict(RunConfig())
    defaults["adapter"] = dataclasses.asdict(AdapterConfig())
    return dict(flatten(defaults))


def config_table(config: dict) -> Raw:
    defaults = default_config()
    rows = []
    for key, value in flatten(used_config(config)):
        changed = key in defaults and defaults[key] != value
        rows.append([key, Raw(f"<b>{text(value)}</b>") if changed else value, defaults.get(key) if changed else ""])
    return table(["key", "value", "default"], rows, "kv")


def data_section(data: dict) -> list[str]:
    sources = data.get("sources") or []
    columns = list(dict.fromkeys(k for s in sources for k in s))
    head = [c.replace("_", " ") for c in columns]
    rows = [[(str(s.get(c))[:16] if c == "sha256" and s.get(c) else s.get(c, "")) for c in columns] for s in sources]
    counts = [
        (DATA_LABELS.get(k, k.replace("_", " ")), v)
        for k, v in data.items()
        if k != "sources" and not isinstance(v, (list, dict))
    ]
    return [table(head, rows) if rows else paragraph("no data sources recorded"), table([], counts, "kv")]


def gates_section(run: dict, run_dir: Path) -> list[str]:
    gates = run.get("data_gates")
    link = (
        Raw('<p>Full data report: <a href="data_report.html">data_report.html</a></p>')
        if (run_dir / "data_report.html").is_file()
        else ""
    )
    if not gates:
        why = (
            "off for this run (data_gates: false)"
            if not run.get("config", {}).get("data_gates", True)
            else "not run (the run resumed from a checkpoint, or no report was recorded)"
        )
        return [paragraph(f"Data gates {why}."), link]
    rows = []
    for g in gates.get("gates", []):
        thr = g.get("threshold")
        thr = f"between {fmt(thr[0])} and {fmt(thr[1])}" if g.get("op") == "between" else f"{g.get('op')} {fmt(thr)}"
        rows.append([status(g.get("passed", False)), g.get("name"), g.get("value"), thr, g.get("detail", "")])
    failed = [g["name"] for g in gates.get("gates", []) if not g.get("passed")]
    verdict = (
        "every gate passed"
        if gates.get("passed")
        else f"{len(failed)} gate(s) failed ({', '.join(failed)}); the run went on (proceed_on_gate_failure)"
    )
    banner = Raw(f'<div class="banner {"ok" if gates.get("passed") else "bad"}">{text(verdict)}</div>')
    return [banner, link, table(["", "gate", "value", "threshold", "what"], rows)]


def demo_section(demo: dict) -> list[str]:
    rows = demo.get("rows") or []
    facts = []
    if "style_before" in demo:
        facts.append(("house style, before", f"{demo['style_before']}/{demo.get('prompts', len(rows))} prompts"))
        facts.append(("house style, after", f"{demo['style_after']}/{demo.get('prompts', len(rows))} prompts"))
    for key in ("eval_accuracy", "eval_margin", "eval_kl"):
        if demo.get(key):
            facts.append((key + " by step", ", ".join(f"{fmt(v)} @ {s}" for s, v in demo[key])))
    has_task = any("task" in r for r in rows)
    styled = any("after_follows_style" in r for r in rows)
    table_rows = []
    for r in rows:
        before, after = r.get("before", ""), r.get("after", "")
        if styled:
            before = ("✓ " if r.get("before_follows_style") else "✗ ") + before
            after = ("✓ " if r.get("after_follows_style") else "✗ ") + after
        cells = [r.get("task", "")] if has_task else []
        table_rows.append(
            cells
            + [
                Raw(f'<div class="answer">{text(r.get("prompt", ""))}</div>'),
                Raw(f'<div class="answer">{text(before)}</div>'),
                Raw(f'<div class="answer">{text(after)}</div>'),
            ]
        )
    head = (["task"] if has_task else []) + ["prompt", "before", "after"]
    note = paragraph("✓: the answer follows the house style of the training data." if styled else "", "note")
    return [summary(facts) if facts else "", table(head, table_rows) if table_rows else "", note if styled else ""]


def evals_table(run: dict) -> Raw:
    evals = run.get("evals") or []
    keys = list(dict.fromkeys(k for e in evals for k in e if k != "step"))
    return table(["step", *keys], [[e["step"], *(e.get(k) for k in keys)] for e in evals])


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def render_run_report(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    metrics = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    demo_path = run_dir / "demo.json"
    demo = json.loads(demo_path.read_text()) if demo_path.is_file() else None
    cfg = run.get("config", {})
    adapter = cfg.get("adapter")
    params = run.get("model", {}).get("parameters", {})
    plan = run.get("plan", {})
    steps = run.get("steps")
    facts = [
        ("status", run.get("status")),
        ("method", cfg.get("method")),
        ("model", cfg.get("model")),
        ("tuning", f"{ADAPTER_NAMES.get(adapter['type'], adapter['type'])} adapter" if adapter else "full fine-tuning"),
        ("parameters", f"{fmt(params.get('trainable'))} trainable of {fmt(params.get('total'))}" if params else None),
        (
            "steps",
            f"{steps if steps is not None else '?'} of {plan.get('total_steps', '?')}"
            + (" (stopped early)" if run.get("stopped_early") else ""),
        ),
        ("best eval", best_eval_text(run)),
        ("tokens seen", run.get("tokens_seen")),
        ("time", _minutes(run.get("seconds"))),
    ]
    if run.get("resumed_from"):
        facts.append(("resumed from", run["resumed_from"]))
    last = {k: v for k, v in final_eval(run).items() if k != "step"}
    if last:
        facts.append(
            (
                f"final eval (step {final_eval(run)['step']})",
                ", ".join(f"{k} {fmt(v)}" for k, v in list(last.items())[:4]),
            )
        )
    if (run_dir / "final" / "README.md").is_file():
        facts.append(("model card", Raw('<a href="final/README.md">final/README.md</a>')))

    sections = [summary(facts)]
    alarms = [(m["step"], line) for m in metrics for line in m.get("alarms") or []]
    if alarms:  # online methods' monitors (methods/monitors.py): first, where nobody can miss them
        sections.append(section(f"Alarms ({len(alarms)})", table(["step", "alarm"], [list(a) for a in alarms])))
    for title, charts in metric_charts(metrics):
        sections.append(section(title, grid(charts)))
    if not metrics:
        sections.append(section("Metrics", paragraph("nothing logged yet")))
    if run.get("evals"):
        sections.append(section("Evaluations", evals_table(run)))
    if demo:
        sections.append(section("Answers before and after", *demo_section(demo)))
    sections.append(section("Data gates", *gates_section(run, run_dir)))
    sections.append(section("Data", *data_section(run.get("data") or {})))
    sections.append(
        section(
            "Config",
            paragraph(
                "What ran: the sections this method uses; bold where the recipe or an override changed the default.",
                "note",
            ),
            config_table(cfg),
        )
    )
    env = [(f"package {k}", v) for k, v in (run.get("packages") or {}).items()]
    env += [("git commit", run.get("git_commit"))] + list((run.get("environment") or {}).items())
    sections.append(section("Environment", details("packages, commit, machine", table([], env, "kv"))))
    return page(f"alignline run {run_dir.name}", sections, subtitle=str(run_dir), heading=f"Run {run_dir.name}")


def write_run_report(run_dir: Path) -> Path:
    """Write (or rewrite) `run_dir/report.html`."""
    return write_text(Path(run_dir) / "report.html", render_run_report(run_dir))
