"""`release/`: the model the line made, its tokenizer, `lineage.json` and `README.md` (the model card).

The model: the last stage's adapter merged into its base (`base_model_relation: finetune`), or, where it cannot be
merged (prompt/prefix tuning, bottleneck adapters, or `release.merge: false`), the adapter itself naming its base
(`adapter`); a fully fine-tuned last stage is copied as it is (`finetune`).
`lineage.json`: every stage with its data files (path, role, sha256, bytes, records, where each record came from and
who annotated it), its resolved recipe, its parent, its run and its gate results; the release's suites and gates.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from alignline import __version__
from alignline.config import RunConfig, from_dict
from alignline.errors import ConfigError
from alignline.io import atomic_path, write_json, write_text
from alignline.models.loading import is_adapter_dir, load_model, load_tokenizer_for
from alignline.pipeline.config import PipelineConfig
from alignline.pipeline.plan import data_files, read_stage_file, stage_dir
from alignline.report.model_card import base_model_name, release_card

PROVENANCE_LIMIT = 200_000
"""Records read per data file for its provenance (sources, annotators); a larger file is counted up to here."""


def mergeable(model) -> bool:
    if not hasattr(model, "merge_and_unload"):
        return False  # a bottleneck adapter: a non-linear module beside each layer, nothing to fold into weights
    configs = getattr(model, "peft_config", {}) or {}
    return not any(getattr(c, "is_prompt_learning", False) for c in configs.values())


def merge_adapter(adapter_dir: str | Path, out: Path) -> bool:
    """Write the adapter in `adapter_dir` merged into its base as a full model (with the tokenizer) to `out`;
    False, writing nothing, when the adapter cannot be merged."""
    model = load_model(str(adapter_dir))
    if not mergeable(model):
        return False
    merged = model.merge_and_unload()
    with atomic_path(out, directory=True) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer_for(str(adapter_dir)).save_pretrained(tmp)
    return True


def require_merge(adapter_dir: str | Path, out: Path) -> None:
    if not merge_adapter(adapter_dir, out):
        raise ConfigError(f"merge_parent: the adapter in {adapter_dir} cannot be merged into its base")


def release_model(final: Path, tmp: Path, merge: bool) -> str:
    """The model into `tmp`; returns its `base_model_relation`."""
    if not is_adapter_dir(str(final)):
        for f in final.iterdir():
            if f.is_file() and f.name != "README.md":
                shutil.copy2(f, tmp / f.name)
        return "finetune"
    if merge:
        merged = tmp / "merged"
        if merge_adapter(final, merged):
            for f in merged.iterdir():
                f.rename(tmp / f.name)
            merged.rmdir()
            return "finetune"
    for f in final.iterdir():
        if f.is_file() and f.name != "README.md":
            shutil.copy2(f, tmp / f.name)
    return "adapter"


def provenance(path: str) -> dict[str, Any]:
    """Where a JSONL file's records came from (`source`: human, synthetic, ...) and who annotated them
    (`annotator` / `annotators`, `confidence`). Other formats: not read (`read: false`)."""
    p = Path(path)
    if not p.is_file() or not p.name.endswith((".jsonl", ".jsonl.gz")):
        return {"read": False}
    import gzip

    sources: Counter = Counter()
    annotators: Counter = Counter()
    annotated = records = 0
    confidences: list[float] = []
    opener = gzip.open if p.name.endswith(".gz") else open
    with opener(p, "rt", encoding="utf-8") as fh:
        for line in fh:
            if records >= PROVENANCE_LIMIT:
                break
            if not line.strip():
                continue
            records += 1
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            sources[str(rec.get("source") or "unknown")] += 1
            names = rec.get("annotators") or ([rec["annotator"]] if rec.get("annotator") else [])
            if isinstance(names, list) and names:
                annotated += 1
                for a in names:
                    annotators[str(a.get("id", a) if isinstance(a, dict) else a)] += 1
            if isinstance(rec.get("confidence"), (int, float)):
                confidences.append(float(rec["confidence"]))
    return {
        "read": True,
        "records": records,
        "sources": dict(sources),
        "annotated_records": annotated,
        "annotators": len(annotators),
        "labels_per_annotator": dict(annotators.most_common(20)),
        "mean_confidence": sum(confidences) / len(confidences) if confidences else None,
    }


def stage_lineage(cfg: PipelineConfig, index: int, state: dict) -> dict:
    stage = cfg.stages[index]
    d = stage_dir(cfg, stage)
    recorded = read_stage_file(d)
    inputs = recorded.get("inputs") or {}
    recipe = inputs.get("recipe") or {}
    try:
        run = json.loads((d / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = {}
    counted = {s.get("path"): s for s in (run.get("data") or {}).get("sources", [])}
    files = []
    for path, role in data_files(from_dict(RunConfig, recipe)) if recipe else []:
        p = Path(path)
        known = counted.get(path, {})
        files.append(
            {
                "path": path,
                "role": role,
                "sha256": (inputs.get("data") or {}).get(path),
                "bytes": p.stat().st_size if p.is_file() else None,
                "records": known.get("records", known.get("pairs", known.get("samples"))),
                "provenance": provenance(path),
            }
        )
    entry = state["stages"][index]
    return {
        "name": stage.name,
        "method": recipe.get("method"),
        "recipe_file": stage.recipe,
        "overrides": stage.overrides,
        "merge_parent": stage.merge_parent,
        "parent": cfg.stages[index - 1].name if index else cfg.model,
        "model": recipe.get("model"),
        "input_hash": recorded.get("input_hash"),
        "run": entry.get("run"),
        "run_dir": str(d),
        "status": entry.get("status"),
        "data": files,
        "resolved_recipe": recipe,
        "data_gates": run.get("data_gates"),
        "suites": recorded.get("eval"),
        "gates": recorded.get("gates"),
        "steps": run.get("steps"),
        "git_commit": run.get("git_commit"),
    }


def build_release(
    cfg: PipelineConfig, state: dict, target: Path, key: str, results: dict | None, verdict: dict | None
) -> None:
    """Write `release/` in one rename: the model, the tokenizer, lineage.json and README.md."""
    final = stage_dir(cfg, cfg.stages[-1]) / "final"
    lineage = {
        "format": 1,
        "name": cfg.name,
        "pipeline_file": cfg.path,
        "release_key": key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "alignline_version": __version__,
        "base_model": {"spec": cfg.model, "name": base_model_name(cfg.model)},
        "stages": [stage_lineage(cfg, i, state) for i in range(len(cfg.stages))],
    }
    with atomic_path(target, directory=True) as tmp:
        relation = release_model(final, tmp, cfg.release.merge)
        lineage["release"] = {
            "model": "merged" if relation == "finetune" and is_adapter_dir(str(final)) else relation,
            "base_model_relation": relation,
            "license": cfg.release.license,
            "suites": cfg.release.suites,
            "gates_file": cfg.release.gates,
            "eval": (results or {}).get("summary"),
            "gates": verdict,
            "eval_limit": cfg.eval.limit,
        }
        write_json(tmp / "lineage.json", lineage)
        write_text(
            tmp / "README.md", release_card(lineage, (results or {}).get("examples", {}), cfg.release.intended_use)
        )
