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
