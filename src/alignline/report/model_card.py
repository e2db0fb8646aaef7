"""`final/README.md` (and `merged/README.md`): a model card written from `run.json`, in place of
PEFT's empty template.

It says what the model is (base model, method, adapter and key settings), what it was trained on
(each data file with its sha256), whether the data passed the gates, how it scored, how to load it
with transformers or peft, and what produced it (alignline version, git commit). The YAML header is
the Hugging Face Hub's model-card metadata; `base_model` is there only when it is a hub id.
"""

from __future__ import annotations

import json
from pathlib import Path

from alignline.io import write_text
from alignline.models.loading import DEFAULT_MODEL, HUB_IDS, hub_id_of
from alignline.render.html import fmt
from alignline.report.run import ADAPTER_NAMES, best_eval_text, final_eval, used_config
from alignline.train.metrics import read_metrics

METHOD_NAMES = {
    "sft": "supervised fine-tuning (SFT)",
    "cpt": "continued pretraining",
    "dpo": "direct preference optimization (DPO family)",
    "rm": "reward modeling (Bradley-Terry)",
    "kto": "KTO",
}
TRAINING_KEYS = (
    "lr",
    "lr_scheduler",
    "warmup_steps",
    "warmup_ratio",
    "batch_size",
    "grad_accum",
    "max_steps",
    "epochs",
    "max_length",
    "packing",
    "dtype",
    "seed",
    "weight_decay",
    "max_grad_norm",
    "freeze_layers",
)


def base_model_name(spec: str | None, adapter_dir: Path | None = None) -> str:
    """The base model's portable name: an embedded model by its hub id, anything else as given."""
    config = adapter_dir / "adapter_config.json" if adapter_dir else None
    if config is not None and config.is_file():
        named = json.loads(config.read_text()).get("base_model_name_or_path")
        if named:
            return hub_id_of(named) or named
    spec = spec or DEFAULT_MODEL
    return HUB_IDS.get(spec, spec)


def _is_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).exists()


def _md_table(headers: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])


def _load_snippet(kind: str, adapter: dict | None, merged: bool, folder: str) -> str:
    if kind == "reward":
        return (
            f"from transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
            f'model = AutoModelForSequenceClassification.from_pretrained("{folder}")  # one output: the reward\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{folder}")'
        )
    if adapter and not merged:
        return (
            f"from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\n"
            f"# loads the base model named in adapter_config.json, then this adapter on top\n"
            f'model = AutoPeftModelForCausalLM.from_pretrained("{folder}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{folder}")'
        )
    return (
        f"from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'model = AutoModelForCausalLM.from_pretrained("{folder}")\n'
        f'tokenizer = AutoTokenizer.from_pretrained("{folder}")'
    )


def model_card(run: dict, metrics: list[dict], folder: str = "final", base: str | None = None) -> str:
    """The card's Markdown. `folder` is the directory it describes (`final` or `merged`)."""
    cfg = run.get("config", {})
    method = cfg.get("method", "?")
    adapter = cfg.get("adapter")
    kind = "reward" if method == "rm" else "causal_lm"
    merged = folder == "merged" or kind == "reward"  # reward models are merged into final/
    base = base or base_model_name(cfg.get("model"))
    used = used_config(cfg)
    version = (run.get("packages") or {}).get("alignline")
    tags = ["alignline", method] + ([adapter["type"]] if adapter else [])
    header = ["---"]
    if _is_hub_id(base):
        header.append(f"base_model: {base}")
    header += [
        f"library_name: {'peft' if adapter and not merged else 'transformers'}",
        f"pipeline_tag: {'text-classification' if kind == 'reward' else 'text-generation'}",
        "tags:",
        *[f"- {t}" for t in tags],
        "---",
        "",
    ]

    tuning = (
        "full fine-tuning"
        if not adapter
        else f"a {ADAPTER_NAMES.get(adapter['type'], adapter['type'])} adapter"
        + (" merged into the base weights" if merged else "")
    )
    out = header + [
        f"# {Path(cfg.get('output_dir', 'run')).name}",
        "",
        f"{METHOD_NAMES.get(method, method)} of `{base}` with {tuning}, trained with alignline"
        + (f" {version}." if version else "."),
        "",
    ]
    if cfg.get("model") in (None, "", *HUB_IDS) and base in HUB_IDS.values():
        out += [
            f"Trained on alignline's embedded copy of `{base}` (dequantized from its Q4_1 GGUF release): "
            "close to, not identical with, the hub's bf16 weights; alignline loads that copy offline.",
            "",
        ]
    if not _is_hub_id(base):
        out += [
            f"The base model was the local directory `{base}`; load it from there, or edit "
            "`base_model_name_or_path` in `adapter_config.json` to where it lives on your machine."
            if adapter and not merged
            else f"The base model was the local directory `{base}`.",
            "",
        ]

    out += ["## Training", ""]
    rows = [["method", method], ["base model", base]]
    if adapter:
        rows += [[f"adapter.{k}", v] for k, v in used.get("adapter", {}).items()]
    training = used.get("training", {})
    rows += [[f"training.{k}", training[k]] for k in TRAINING_KEYS if k in training]
    if isinstance(used.get(method), dict):
        rows += [[f"{method}.{k}", v] for k, v in used[method].items()]
    rows += [["steps", run.get("steps")], ["tokens seen", run.get("tokens_seen")]]
    params = (run.get("model") or {}).get("parameters")
    if params:
        rows.append(["trainable parameters", f"{fmt(params.get('trainable'))} of {fmt(params.get('total'))}"])
    out += [_md_table(["setting", "value"], rows), ""]

    data = run.get("data") or {}
    out += ["## Data", ""]
    sources = data.get("sources") or []
    if sources:
        out += [
            _md_table(
                ["file", "role", "records", "sha256"],
                [
                    [
                        s.get("path"),
                        s.get("role", "train"),
                        s.get("records", s.get("pairs", s.get("samples"))),
                        f"`{s.get('sha256')}`",
                    ]
                    for s in sources
                ],
            ),
            "",
        ]
    counts = [(k.replace("_", " "), v) for k, v in data.items() if k != "sources" and not isinstance(v, (list, dict))]
    if counts:
        out += ["; ".join(f"{k}: {fmt(v)}" for k, v in counts) + ".", ""]

    out += ["## Data gates", ""]
    gates = run.get("data_gates")
    if not gates:
        out += ["Not run for this training run." if cfg.get("data_gates", True) else "Off (`data_gates: false`).", ""]
    else:
        failed = [g["name"] for g in gates.get("gates", []) if not g.get("passed")]
        out += [
            "Every gate passed."
            if gates.get("passed")
            else f"**{len(failed)} gate(s) failed**: {', '.join(failed)}; "
            "training went on (`proceed_on_gate_failure`).",
            "",
            _md_table(
                ["gate", "value", "threshold", "result"],
                [
                    [
                        g.get("name"),
                        g.get("value"),
                        f"{g.get('op')} {fmt(g.get('threshold'))}",
                        "pass" if g.get("passed") else "FAIL",
                    ]
                    for g in gates.get("gates", [])
                ],
            ),
            "",
        ]

    out += ["## Results", ""]
    last_eval = {k: v for k, v in final_eval(run).items() if k != "step"}
    last_train = next((m for m in reversed(metrics) if "loss" in m), None)
    rows = []
    if last_train:
        rows.append([f"train loss (step {last_train['step']})", last_train["loss"]])
    if last_eval:
        rows += [[f"{k} (step {final_eval(run)['step']})", v] for k, v in last_eval.items()]
    out += [_md_table(["metric", "value"], rows) if rows else "No metrics were recorded.", ""]
    best = best_eval_text(run)
    if best:
        out += [f"Best evaluation: {best}." + (" Stopped early." if run.get("stopped_early") else ""), ""]

    out += [
        "## How to load",
        "",
        "```python",
        _load_snippet(kind, adapter, merged, f"path/to/{folder}"),
        "```",
        "",
        f'or with alignline: `alignline generate --model path/to/{folder} --prompt "..."`.',
        "",
    ]
    packages = run.get("packages") or {}
    out += [
        "## Reproduce",
        "",
        f"alignline {version}, git commit `{run.get('git_commit')}`; "
        + ", ".join(f"{k} {v}" for k, v in packages.items() if k != "alignline" and v)
        + ". "
        "The resolved config is in the run's `run.json`.",
        "",
    ]
    return "\n".join(out)


def write_model_card(run_dir: Path) -> list[Path]:
    """Write `README.md` into `final/` and `merged/` (where they exist); returns the files written."""
    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    metrics = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    written = []
    for folder in ("final", "merged"):
        target = run_dir / folder
        if not target.is_dir():
            continue
        adapter_dir = target / "adapter" if (target / "adapter").is_dir() else target
        base = base_model_name(run.get("config", {}).get("model"), adapter_dir)
        written.append(write_text(target / "README.md", model_card(run, metrics, folder, base)))
    return written


# --------------------------------------------------------------------------------------------------
# The release card of `alignline pipeline` (release/README.md), written from its lineage.json.

KNOWN_LIMITATIONS = 8
"""Failing release-suite examples shown as known limitations."""


def _yaml_scalar(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON strings and numbers are YAML


def _model_index(name: str, summary: dict | None) -> list[str]:
    """`model-index` in the Hub's layout: one result per suite, its metrics with their values."""
    if not summary or not summary.get("metrics"):
        return []
    suites = {s["name"]: s for s in summary.get("suites", [])}
    per_suite: dict[str, list[tuple[str, float]]] = {}
    for qualified, value in summary["metrics"].items():
        suite, sep, metric = qualified.partition("/")
        if not sep or suite not in suites or not isinstance(value, (int, float)):
            continue
        per_suite.setdefault(suite, []).append((metric, value))
    if not per_suite:
        return []
    lines = ["model-index:", f"- name: {_yaml_scalar(name)}", "  results:"]
    for suite, metrics in per_suite.items():
        lines += [
            "  - task:",
            "      type: text-generation",
            "    dataset:",
            f"      name: {_yaml_scalar(suite)}",
            f"      type: {_yaml_scalar(suites[suite].get('path') or suite)}",
            "    metrics:",
        ]
        for metric, value in metrics:
            lines += [f"    - type: {_yaml_scalar(metric)}", f"      value: {_yaml_scalar(value)}"]
            lines.append(f"      name: {_yaml_scalar(f'{suite}/{metric}')}")
    return lines


def _data_rows(stage: dict) -> list[list]:
    rows = []
    for f in stage.get("data") or []:
        prov = f.get("provenance") or {}
        kinds = prov.get("sources") or {}
        origin = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) if kinds else "not recorded"
        rows.append([f"`{f['path']}`", f.get("role"), f.get("records"), f.get("bytes"), origin, f"`{f.get('sha256')}`"])
    return rows


def _annotators(stages: list[dict]) -> list[str]:
    lines = []
    for stage in stages:
        for f in stage.get("data") or []:
            prov = f.get("provenance") or {}
            if prov.get("annotated_records"):
                mean = prov.get("mean_confidence")
                lines.append(
                    f"- `{f['path']}` ({stage['name']}): {prov['annotated_records']} of {prov['records']} records "
                    f"carry annotator labels, from {prov['annotators']} annotator(s)"
                    + (f"; mean confidence {fmt(mean)}" if mean is not None else "")
                    + "; labels per annotator: "
                    + ", ".join(f"{a} {n}" for a, n in prov.get("labels_per_annotator", {}).items())
                    + "."
                )
    return lines or [
        "None: no training record names an annotator (`annotator` / `annotators`); where records say "
        "`source: human`, the data above counts them, without who labelled them."
    ]


def _gate_rows(verdict: dict | None) -> list[list]:
    if not verdict:
        return []
    deltas = verdict.get("deltas", {})
    rows = []
    for r in verdict.get("rules", []):
        d = deltas.get(r["metric"])
        interval = f"{d['delta']:+.3g} [{d['ci_low']:+.3g}, {d['ci_high']:+.3g}]" if d else ""
        rows.append([r["rule"], r["metric"], r["value"], r["detail"], interval, "pass" if r["passed"] else "FAIL"])
    return rows


def _prompt_text(prompt) -> str:
    """A failing example's prompt as one line: a chat's last user turn."""
    if isinstance(prompt, list):
        users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[-1] if users else prompt)
    return str(prompt)


GATE_HEADERS = ["rule", "metric", "value", "check", "delta vs baseline [95 % CI]", "result"]


def release_card(lineage: dict, examples: dict | None = None, intended_use: str | None = None) -> str:
    """The release's model card, in the Hub's conventions: YAML metadata (`base_model`, `base_model_relation`,
    `datasets`, `license`, `tags`, `model-index`), then intended use, the stages and their data, the gates with
    their intervals, limitations drawn from failing examples, and annotator statistics."""
    release = lineage.get("release") or {}
    stages = lineage.get("stages") or []
    base = (lineage.get("base_model") or {}).get("name") or "?"
    relation = release.get("base_model_relation", "finetune")
    datasets = list(dict.fromkeys(f["path"] for s in stages for f in s.get("data") or []))
    methods = list(dict.fromkeys(s.get("method") for s in stages if s.get("method")))
    header = ["---"]
    if _is_hub_id(base):
        header += [f"base_model: {base}", f"base_model_relation: {relation}"]
    header += [
        f"library_name: {'peft' if relation == 'adapter' else 'transformers'}",
        "pipeline_tag: text-generation",
        f"license: {release.get('license') or 'other'}",
        "datasets:",
        *[f"- {_yaml_scalar(d)}" for d in datasets],
        "tags:",
        *[f"- {t}" for t in ["alignline", "alignline-pipeline", *methods]],
        *_model_index(lineage.get("name", "model"), release.get("eval")),
        "---",
        "",
    ]
    chain = " → ".join(f"{s['name']} ({s.get('method')})" for s in stages)
    out = header + [
        f"# {lineage.get('name')}",
        "",
        f"`{base}` taken through {len(stages)} stage(s) by `alignline pipeline` ({chain}), "
        + ("merged into full weights." if relation == "finetune" else "released as an adapter on the base.")
        + f" alignline {lineage.get('alignline_version')}; the full record of every stage is `lineage.json`.",
        "",
    ]
    if not _is_hub_id(base):
        out += [f"The base model was the local directory `{base}`.", ""]
    out += [
        "## Intended use",
        "",
        intended_use
        or f"A chat assistant tuned by the stages below ({', '.join(methods)}), for the tasks their data covers, "
        "under the release gates below. Not evaluated beyond those suites: check it on your own data before use.",
        "",
        "## Stages",
        "",
    ]
    for s in stages:
        parent = s.get("parent")
        out += [
            f"### {s['name']}: {METHOD_NAMES.get(s.get('method'), s.get('method'))}",
            "",
            f"Recipe `{s.get('recipe_file')}`"
            + (f" with overrides {json.dumps(s.get('overrides'))}" if s.get("overrides") else "")
            + f"; started from `{parent}`"
            + (" (its adapter merged into its base first)" if s.get("merge_parent") else "")
            + f"; run `{s.get('run')}`, {s.get('steps')} steps; input hash `{(s.get('input_hash') or '')[:16]}`.",
            "",
        ]
        rows = _data_rows(s)
        if rows:
            out += [_md_table(["data file", "role", "records", "bytes", "source of records", "sha256"], rows), ""]
        dg = s.get("data_gates")
        if dg:
            out += [
                f"Data gates: {'every gate passed' if dg.get('passed') else 'FAILED (trained with --proceed)'}.",
                "",
            ]
        gates = s.get("gates")
        if gates:
            out += [
                f"Stage gates against `{gates.get('baseline')}`: {'pass' if gates.get('passed') else 'FAIL'}.",
                "",
                _md_table(GATE_HEADERS, _gate_rows(gates)),
                "",
            ]
    out += ["## Evaluation", ""]
    summary = release.get("eval")
    if summary:
        intervals = summary.get("intervals", {})
        deltas = summary.get("deltas_vs_base", {})
        rows = []
        for q, v in summary.get("metrics", {}).items():
            if "/" not in q:
                continue
            ci = intervals.get(q)
            d = deltas.get(q)
            rows.append(
                [
                    q,
                    v,
                    f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "",
                    f"{d['delta']:+.3g} [{d['ci_low']:+.3g}, {d['ci_high']:+.3g}]" if d else "",
                ]
            )
        out += [_md_table(["metric", "value", "95 % CI", "delta vs base [95 % CI]"], rows), ""]
        if release.get("eval_limit"):
            out += [f"Each suite was cut to its first {release['eval_limit']} records.", ""]
    else:
        out += ["No release suites were run.", ""]
    verdict = release.get("gates")
    if verdict:
        out += [
            f"Release gates (`{release.get('gates_file')}`) against the base model: "
            + ("every check passed." if verdict.get("passed") else "FAILED."),
            "",
            _md_table(GATE_HEADERS, _gate_rows(verdict)) if verdict.get("rules") else "",
            "",
        ]
    out += ["## Known limitations", ""]
    failing = [(suite, e) for suite, rows in (examples or {}).items() for e in rows if e.get("failed")]
    if failing:
        out += [
            f"{len(failing)} release-suite example(s) failed; the first {min(len(failing), KNOWN_LIMITATIONS)}:",
            "",
            _md_table(
                ["suite", "category", "prompt", "output", "why"],
                [
                    [
                        suite,
                        e.get("category") or "",
                        _prompt_text(e.get("prompt"))[:160],
                        str(e.get("output"))[:160],
                        e.get("why", ""),
                    ]
                    for suite, e in failing[:KNOWN_LIMITATIONS]
                ],
            ),
            "",
        ]
    else:
        out += ["No release-suite example failed; the suites are small: this is no proof of absence.", ""]
    out += ["## Annotators", "", *_annotators(stages), ""]
    return "\n".join(out)
