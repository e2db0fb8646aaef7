"""Data quality gates: duplicates, leakage, PII, format, coverage, preference hygiene, spot audits.

`gate_training_data` is what `alignline train` calls before training; `alignline data ...` is the
command line (`alignline.cli.data`). Each check is a small module returning counts and record ids;
`check.run_checks` runs them all in one streaming pass and applies the gates of `gates.GateConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alignline.data.quality.check import run_checks
from alignline.data.quality.explain import explain
from alignline.data.quality.gates import load_gate_config
from alignline.data.quality.report import write_report
from alignline.errors import UserError


class GatesFailed(UserError):
    """A data gate failed: exit code 1 (0: every gate passed, 2: bad input)."""

    exit_code = 1


def failure_summary(report: dict) -> str:
    failed = [g for g in report["gates"] if not g["passed"]]
    parts = []
    for g in failed:
        thr = g["threshold"] if g["op"] != "between" else f"[{g['threshold'][0]}, {g['threshold'][1]}]"
        why = explain(g, report)
        parts.append(f"{g['name']} = {g['value']} (must be {g['op']} {thr}){': ' + why if why else ''}")
    return "; ".join(parts)


def gate_training_data(
    train_paths: list[str],
    eval_path: str | None,
    out_dir: Path,
    config_path: str | None = None,
    tokenizer=None,
    max_length: int | None = None,
    progress: bool = True,
    split: str = "train",
    columns: dict[str, str] | None = None,
    eval_split: str | None = None,
    load_tokenizer: Callable[[str], object] | None = None,
) -> dict:
    """Run every configured check on the training (and evaluation) data before a run.

    Writes `out_dir/data_report.json` and `out_dir/data_report.html` and returns the report; its
    `passed` says whether every gate passed (`failure_summary(report)` says which did not). `max_length`
    (the recipe's) overrides the config's; `split`, `eval_split` and `columns` are the recipe's `data.split`,
    `data.eval_split` and `data.columns`, so the gates read the records training reads. Without a `tokenizer`,
    the gate config's `tokenizer:` is loaded with `load_tokenizer` (`models.loading.load_tokenizer_for`: the
    caller, above `data` in the layers, passes it). Bad input raises `DataError`/`ConfigError` (exit 2).
    """
    cfg = load_gate_config(config_path, max_length=max_length)
    if tokenizer is None and cfg.tokenizer:
        if load_tokenizer is None:
            raise ValueError(
                f"gate_training_data: the gate config names tokenizer {cfg.tokenizer!r}: pass "
                "tokenizer= or load_tokenizer= (alignline.models.loading.load_tokenizer_for)"
            )
        tokenizer = load_tokenizer(cfg.tokenizer)
    report = run_checks(
        [str(p) for p in train_paths],
        str(eval_path) if eval_path else None,
        cfg,
        tokenizer,
        progress,
        split=split,
        columns=columns,
        eval_split=eval_split,
    )
    write_report(report, out_dir, stem="data_report")
    return report


def gate_reading(data) -> dict:
    """The recipe's `data:` reading options (`DataConfig`), as `gate_training_data` takes them: the gates read
    the files exactly as the method does."""
    return {"split": data.split, "eval_split": data.eval_split, "columns": data.columns}


__all__ = ["GatesFailed", "failure_summary", "gate_reading", "gate_training_data"]
