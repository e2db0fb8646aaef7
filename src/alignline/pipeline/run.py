"""Running the line: each stage's data gates and training (`evals.training.train`, the run `alignline train`
starts), then its suites on it, its parent and the base, and its gates against its parent; then the release suites
and gates against the base, and `release/`.

`pipeline.json` in `output_dir` is rewritten (atomically) after each stage: `{name, stages: [{name, status, input_hash,
run}], release: {...}}`, `status` one of `ran`, `skipped`, `failed` or `pending` (not reached yet).
Exit codes of `run_pipeline`: 0 released, 1 stopped by a gate (a data gate or a stage's or the release's eval gate:
the report is written, nothing is released), 2 bad input (raised as a `UserError` before anything runs).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from alignline import __version__
from alignline.data.quality import GatesFailed
from alignline.errors import ConfigError
from alignline.evals.cache import model_hash, stable_hash
from alignline.evals.context import Context, ModelHandle
from alignline.evals.gate import gate_results, load_gates
from alignline.evals.report import render_gate
from alignline.evals.results import evaluate, load_results
from alignline.evals.suites import load_suite
from alignline.evals.training import train
from alignline.io import write_json, write_text
from alignline.pipeline.config import PipelineConfig
from alignline.pipeline.plan import (
    STAGE_FILE,
    parent_output,
    read_stage_file,
    run_id,
    run_status,
    sha256_text,
    stage_config,
    stage_dir,
    stage_inputs,
    stage_model,
)
from alignline.pipeline.release import build_release, require_merge

STATE_FILE = "pipeline.json"
RELEASE_DIR = "release"
RELEASE_EVAL_DIR = "release-eval"
BASE_NAME = "base"
"""How the base model is named in every eval of the line."""

RecordHook = Callable[[str, Path, dict], None]
"""`record_hook(kind, path, record)`: called with ("stage", its run directory, its pipeline.json entry) after each
stage that ran, and ("pipeline", output_dir, pipeline.json) when the line ends, stopped or released: where a run
registry records pipeline runs. None: nothing is recorded beyond the files."""


class Line:
    """One run of a pipeline: its state (what pipeline.json says) and where it writes."""

    def __init__(self, cfg: PipelineConfig, say: Callable[[str], None], progress: bool, hook: RecordHook | None):
        self.cfg, self.say, self.progress, self.hook = cfg, say, progress, hook
        self.out = Path(cfg.output_dir)
        self.state: dict[str, Any] = {
            "name": cfg.name,
            "pipeline_file": cfg.path,
            "alignline_version": __version__,
            "stages": [{"name": s.name, "status": "pending", "input_hash": None, "run": None} for s in cfg.stages],
            "release": {"status": "pending", "path": None},
        }

    def save(self) -> None:
        write_json(self.out / STATE_FILE, self.state)  # a temporary file, then a rename

    def entry(self, index: int) -> dict:
        return self.state["stages"][index]

    def context(self) -> tuple[Context, dict]:
        e = self.cfg.eval
        ctx = Context(backend=e.backend, dtype=e.dtype, batch_size=e.batch_size, n_boot=e.bootstrap, seed=e.seed)
        return ctx, {"backend": e.backend, "dtype": e.dtype, "batch_size": e.batch_size}

    def eval_key(self, suites: list[str], gates: str | None, model: str) -> str:
        """What a stage's (or the release's) eval verdict depends on beyond the model's weights."""
        loaded = [stable_hash(load_suite(s, self.cfg.eval.limit).definition()) for s in suites]
        gates_text = Path(gates).read_text(encoding="utf-8") if gates else None
        return sha256_text(
            {"suites": loaded, "gates": gates_text, "eval": asdict(self.cfg.eval), "model": model_hash(model)}
        )

    def evaluate(
        self, out: Path, candidate: tuple[str, str], others: list[tuple[str, str]], suites: list[str]
    ) -> tuple[dict, dict, dict]:
        """Run `suites` on the candidate, the others and the base (the baseline of the deltas); write `out`."""
        ctx, opts = self.context()
        loaded = [load_suite(s, self.cfg.eval.limit) for s in suites]
        base = ModelHandle(BASE_NAME, self.cfg.model, **opts)
        models = [ModelHandle(name, spec, **opts) for name, spec in [candidate, *others]]
        evaluate(models, base, loaded, ctx, out, (lambda m: self.say(f"  eval: {m}")) if self.progress else None)
        return load_results(out)

    def gate(self, out: Path, gates: str, results: dict, per_record: dict, examples: dict, cand: str, base: str):
        ctx, _ = self.context()
        verdict = gate_results(load_gates(gates), gates, results, per_record, cand, base, ctx.n_boot, ctx.seed)
        write_json(out / "gate.json", verdict)
        write_text(out / "gate.html", render_gate(verdict, results, examples))
        return verdict


def summary(results: dict, candidate: str) -> dict:
    return {
        "metrics": results["metrics"].get(candidate, {}),
        "intervals": results.get("intervals", {}).get(candidate, {}),
        "deltas_vs_base": results.get("deltas", {}).get(candidate, {}),
        "suites": results.get("suites", []),
    }


def print_gate(say, verdict: dict) -> None:
    for r in verdict["rules"]:
        say(f"    {'pass' if r['passed'] else 'FAIL'}  {r['rule']:<18} {r['metric']:<34} {r['detail']}")


def run_pipeline(
    cfg: PipelineConfig,
    start: str | None = None,
    force: str | None = None,
    progress: bool = True,
    say: Callable[[str], None] = print,
    record_hook: RecordHook | None = None,
) -> int:
    """Run the line; 0 released, 1 stopped by a gate. `start` (`--from`): stages before it are taken as they are
    (they must have finished); `force` (`--force`): that stage re-runs even when its inputs are unchanged (the
    stages after it re-run where its new weights differ)."""
    line = Line(cfg, say, progress, record_hook)
    first = cfg.index(start) if start else 0
    if force:
        cfg.index(force)
    for i in range(first):
        d = stage_dir(cfg, cfg.stages[i])
        recorded = read_stage_file(d)
        if run_status(d) != "completed" or not recorded:
            raise ConfigError(f"--from {start}: stage '{cfg.stages[i].name}' before it has not finished; run it first")
        line.entry(i).update(status="skipped", input_hash=recorded.get("input_hash"), run=run_id(d))
    line.save()
    ran_any = False
    for i in range(first, len(cfg.stages)):
        code = run_stage(line, i, forced=force == cfg.stages[i].name)
        ran_any |= line.entry(i)["status"] == "ran"
        if code:
            return finish(line, code)
    return finish(line, release(line, ran_any))


def finish(line: Line, code: int) -> int:
    line.save()
    if line.hook is not None:
        line.hook("pipeline", line.out, line.state)
    return code


def run_stage(line: Line, index: int, forced: bool) -> int:
    cfg, stage, entry = line.cfg, line.cfg.stages[index], line.entry(index)
    d = stage_dir(cfg, stage)
    run_cfg = stage_config(cfg, index)
    inputs = stage_inputs(cfg, index, run_cfg)
    recorded = read_stage_file(d)
    entry["input_hash"] = inputs.hash
    same = recorded.get("input_hash") == inputs.hash
    if same and not forced and run_status(d) == "completed" and (d / "final").is_dir():
        entry.update(status="skipped", run=run_id(d))
        line.say(f"{stage.name}: skipped (unchanged)")
    else:
        if d.exists() and (not same or forced or run_status(d) == "completed"):
            shutil.rmtree(d)  # another line's run (or a forced re-run): a checkpoint of it must not be resumed
        resuming = d.exists()
        model = stage_model(cfg, index)
        if model != parent_output(cfg, index):  # merged again each time: its parent may have changed
            line.say(f"{stage.name}: merging the parent adapter into its base -> {model}")
            require_merge(parent_output(cfg, index), Path(model))
        line.say(f"{stage.name}: {'resuming' if resuming else 'training'} ({run_cfg.method}, model {run_cfg.model})")
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / STAGE_FILE, {"input_hash": inputs.hash, "inputs": inputs.as_json()})
        line.save()  # the stage's input hash, before it trains
        try:
            train(run_cfg, progress=line.progress)
        except GatesFailed as e:
            entry.update(status="failed", run=run_id(d))
            line.say(f"{stage.name}: stopped by the data gates: {e}")
            return 1
        except BaseException:
            entry.update(status="failed", run=run_id(d))
            line.save()
            raise
        entry.update(status="ran", run=run_id(d))
    line.save()
    code = stage_gates(line, index, recorded if entry["status"] == "skipped" else {})
    if entry["status"] == "ran" and line.hook is not None:
        line.hook("stage", d, entry)
    return code


def stage_gates(line: Line, index: int, recorded: dict) -> int:
    """The stage's suites on it, its parent and the base, and its gates against its parent; 1 when a gate fails.
    A skipped stage reuses its recorded verdict when nothing it depends on changed."""
    cfg, stage, entry = line.cfg, line.cfg.stages[index], line.entry(index)
    d = stage_dir(cfg, stage)
    state = read_stage_file(d)
    if not stage.suites:
        return 0
    final = str(d / "final")
    key = line.eval_key(stage.suites, stage.gates, final)
    if recorded.get("eval_key") == key and "eval" in recorded:
        verdict = recorded.get("gates")
    else:
        parent_name = cfg.stages[index - 1].name if index else BASE_NAME
        others = [(parent_name, parent_output(cfg, index))] if index else []
        out = d / "eval"
        line.say(f"{stage.name}: suites {', '.join(stage.suites)} on it, its parent and the base")
        results, per_record, examples = line.evaluate(out, (stage.name, final), others, stage.suites)
        verdict = None
        if stage.gates:
            verdict = line.gate(out, stage.gates, results, per_record, examples, stage.name, parent_name)
        state.update(eval_key=key, eval=summary(results, stage.name), gates=verdict)
        write_json(d / STAGE_FILE, state)
    entry["gates"] = None if verdict is None else {"passed": verdict["passed"], "report": str(d / "eval" / "gate.html")}
    if verdict is not None:
        line.say(f"{stage.name}: gates {'PASS' if verdict['passed'] else 'FAIL'} (against {verdict['baseline']})")
        print_gate(line.say, verdict)
        if not verdict["passed"]:
            entry["status"] = "failed"
            line.say(f"{stage.name}: stopped by its gates; report: {d / 'eval' / 'gate.html'}")
            return 1
    return 0


def release(line: Line, ran_any: bool) -> int:
    """The release suites and gates on the last stage against the base; `release/` when they pass."""
    cfg = line.cfg
    last = cfg.stages[-1]
    final = str(stage_dir(cfg, last) / "final")
    target = line.out / RELEASE_DIR
    key = sha256_text(
        {
            "stages": [e["input_hash"] for e in line.state["stages"]],
            "eval": line.eval_key(cfg.release.suites, cfg.release.gates, final),
            "release": asdict(cfg.release),
        }
    )
    previous = read_json(target / "lineage.json")
    if previous.get("release_key") == key and not ran_any and (target / "README.md").is_file():
        gates = (previous.get("release") or {}).get("gates")
        line.state["release"] = {
            "status": "skipped",
            "path": str(target),
            "gates": None if gates is None else {"passed": gates["passed"]},
        }
        line.say(f"release: skipped (unchanged): {target}")
        return 0
    if target.exists():
        shutil.rmtree(target)  # a release of other stages must not outlive them
    results = verdict = None
    if cfg.release.suites:
        out = line.out / RELEASE_EVAL_DIR
        line.say(f"release: suites {', '.join(cfg.release.suites)} on {last.name} and the base")
        results, per_record, examples = line.evaluate(out, (last.name, final), [], cfg.release.suites)
        if cfg.release.gates:
            verdict = line.gate(out, cfg.release.gates, results, per_record, examples, last.name, BASE_NAME)
            line.say(f"release: gates {'PASS' if verdict['passed'] else 'FAIL'} (against the base)")
            print_gate(line.say, verdict)
            if not verdict["passed"]:
                line.state["release"] = {"status": "failed", "path": None, "report": str(out / "gate.html")}
                line.say(f"release: stopped by its gates; nothing released; report: {out / 'gate.html'}")
                return 1
        results = {"summary": summary(results, last.name), "examples": examples.get(last.name, {})}
    build_release(cfg, line.state, target, key, results, verdict)
    line.state["release"] = {
        "status": "released",
        "path": str(target),
        "gates": None if verdict is None else {"passed": verdict["passed"]},
    }
    line.say(f"release: {target} (model card: {target / 'README.md'})")
    return 0


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
