"""Running suites on models and writing what `alignline eval` promises: `DIR/results.json`.

results.json (the contract users script against):

    {"suites":   [{"name", "kind", "path", "records", "starter"}],
     "baseline": "NAME" | null, "candidates": ["NAME", ...],
     "metrics":  {MODEL: {METRIC: number}},
     "intervals": {MODEL: {METRIC: [low, high]}},            # a metric's own interval (win rate)
     "deltas":   {MODEL: {METRIC: {"delta", "ci_low", "ci_high", "test", "p_value", "n"}}},
     "models":   {MODEL: {"spec", "hash", "metrics": {...}, "details": {SUITE: {...}}}},
     "higher_is_better": {METRIC: bool}}

Metric names: every metric is `<suite>/<metric>` (`arithmetic/accuracy`); where exactly one suite
gives a metric, its bare name is there too (`canary_leakage`). `deltas` (candidate minus baseline,
paired 95 % interval over the records both have; McNemar's exact p for 0/1 metrics) exist for every
model but the baseline when there is one. Beside it: `per_record.json` (each metric's per-record
arrays, so `alignline gate` can compare result directories without any model), `examples.json`
(per-record outputs for error analysis) and `eval.html`. results.json is written last: a directory
with one is complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alignline.errors import DataError
from alignline.evals.context import Context, Metric, ModelHandle, Outcome
from alignline.evals.metrics import HIGHER_IS_BETTER, metric_name
from alignline.evals.report import render_eval
from alignline.evals.stats import mcnemar_exact, paired_bootstrap
from alignline.evals.suites import Suite, kind_of
from alignline.io import write_json, write_text

FORMAT = 1


def run_suites(
    models: list[ModelHandle], suites: list[Suite], ctx: Context, progress=None
) -> dict[str, dict[str, Outcome]]:
    """model name -> suite name -> outcome."""
    names = [s.name for s in suites]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise DataError(next(s.path for s in suites if s.name == dup), f"two suites are named {dup!r}", field="name")
    out: dict[str, dict[str, Outcome]] = {}
    for m in models:
        out[m.name] = {}
        for s in suites:
            if progress:
                progress(f"{m.name}: {s.name} ({s.kind}, {len(s.records)} records)")
            out[m.name][s.name] = kind_of(s.kind).run(s, m, ctx)
    return out


def qualified(outcomes: dict[str, Outcome]) -> dict[str, Metric]:
    return {f"{suite}/{name}": m for suite, o in outcomes.items() for name, m in o.metrics.items() if m is not None}


def aliases(names) -> dict[str, str]:
    """bare name -> qualified name, for bare names exactly one suite gives."""
    by_bare: dict[str, list[str]] = {}
    for q in names:
        by_bare.setdefault(metric_name(q), []).append(q)
    return {b: qs[0] for b, qs in by_bare.items() if len(qs) == 1}


def with_aliases(values: dict) -> dict:
    return {**values, **{b: values[q] for b, q in aliases(values).items() if b not in values}}


def compare(candidate: dict[str, Metric], baseline: dict[str, Metric], n_boot: int = 2000, seed: int = 0) -> dict:
    """Candidate-minus-baseline for every metric both have: paired bootstrap interval on the shared
    records, plus McNemar's exact test for 0/1 metrics."""
    out = {}
    for name, c in candidate.items():
        b = baseline.get(name)
        if b is None or c.relative or b.relative or c.stat != b.stat:
            continue
        where = {k: i for i, k in enumerate(b.ids)}
        pairs = [(i, where[k]) for i, k in enumerate(c.ids) if k in where]
        if not pairs:
            continue
        ci, bi = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        ca = {k: np.asarray(v, dtype=float)[ci] for k, v in c.arrays.items()}
        ba = {k: np.asarray(v, dtype=float)[bi] for k, v in b.arrays.items()}
        delta, lo, hi = paired_bootstrap(c.stat, ca, ba, c.params, n_boot=n_boot, seed=seed)
        row = {"delta": delta, "ci_low": lo, "ci_high": hi, "test": "paired_bootstrap", "n": len(pairs)}
        if c.binary and b.binary:
            row.update(test="mcnemar", p_value=mcnemar_exact(ca["x"], ba["x"])["p_value"])
        out[name] = row
    return out


def build_results(
    models: list[ModelHandle],
    baseline: ModelHandle | None,
    suites: list[Suite],
    outcomes: dict[str, dict[str, Outcome]],
    ctx: Context,
) -> tuple[dict, dict, dict]:
    """(results, per_record, examples)."""
    per_metric = {m.name: qualified(outcomes[m.name]) for m in models}
    results = {
        "format": FORMAT,
        "suites": [
            {
                "name": s.name,
                "kind": s.kind,
                "path": s.path,
                "data": s.data_path,
                "records": len(s.records),
                "starter": s.settings.get("starter", False),
            }
            for s in suites
        ],
        "baseline": baseline.name if baseline else None,
        "candidates": [m.name for m in models if baseline is None or m.name != baseline.name],
        "metrics": {},
        "intervals": {},
        "deltas": {},
        "models": {},
    }
    for m in models:
        metrics = with_aliases({q: v.value for q, v in per_metric[m.name].items()})
        intervals = with_aliases({q: list(v.interval) for q, v in per_metric[m.name].items() if v.interval})
        results["metrics"][m.name] = metrics
        results["intervals"][m.name] = intervals
        results["models"][m.name] = {
            "spec": m.spec,
            "hash": m.hash,
            "engine": m.engine_record(),
            "metrics": metrics,
            "details": {s: o.details for s, o in outcomes[m.name].items()},
        }
        if baseline is not None and m.name != baseline.name:
            results["deltas"][m.name] = with_aliases(
                compare(per_metric[m.name], per_metric[baseline.name], ctx.n_boot, ctx.seed)
            )
    names = {metric_name(q) for v in per_metric.values() for q in v}
    results["higher_is_better"] = {n: HIGHER_IS_BETTER[n] for n in sorted(names) if n in HIGHER_IS_BETTER}
    per_record = {name: {q: v.to_json() for q, v in ms.items()} for name, ms in per_metric.items()}
    examples = {name: {s: o.examples for s, o in outs.items()} for name, outs in outcomes.items()}
    return results, per_record, examples


def write_results(out_dir: str | Path, results: dict, per_record: dict, examples: dict) -> Path:
    out = Path(out_dir)
    write_json(out / "per_record.json", per_record)
    write_json(out / "examples.json", examples)
    write_text(out / "eval.html", render_eval(results, examples))
    return write_json(out / "results.json", results)  # last: its presence means the directory is complete


def evaluate(
    models: list[ModelHandle],
    baseline: ModelHandle | None,
    suites: list[Suite],
    ctx: Context,
    out_dir: str | Path | None = None,
    progress=None,
) -> dict:
    """Run every suite on every model (the baseline included), compare, and write the directory."""
    everyone = list(models)
    if baseline is not None and all(m.name != baseline.name for m in models):
        everyone.append(baseline)
    ctx.baseline = baseline
    outcomes = run_suites(everyone, suites, ctx, progress)
    results, per_record, examples = build_results(everyone, baseline, suites, outcomes, ctx)
    if out_dir is not None:
        write_results(out_dir, results, per_record, examples)
    return results


def is_results_dir(path: str | Path) -> bool:
    return (Path(path) / "results.json").is_file()


def load_results(path: str | Path) -> tuple[dict, dict, dict]:
    """(results, per_record, examples) of an `alignline eval` directory."""
    d = Path(path)
    try:
        results = json.loads((d / "results.json").read_text(encoding="utf-8"))
        per_record = json.loads((d / "per_record.json").read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(str(d), f"not a complete `alignline eval` directory (no {Path(e.filename).name})") from None
    except ValueError as e:
        raise DataError(str(d), f"results are not valid JSON ({e})") from None
    if not isinstance(results, dict) or "metrics" not in results:
        raise DataError(str(d / "results.json"), "not written by `alignline eval` (no metrics)")
    ex_path = d / "examples.json"
    examples = json.loads(ex_path.read_text(encoding="utf-8")) if ex_path.is_file() else {}
    return results, per_record, examples
