"""`alignline annotate simulate`: labelled pairs in, `active_learning.json` and `.html` out.

Features are the slow part (one forward pass of the model per pair); they are kept in
`DIR/features.safetensors`, keyed by the model, the files and the settings that shaped them, so a rerun
with other strategies, rounds or seeds skips straight to the simulation.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

from alignline.annotate.simulation import (
    LEARNERS,
    PairFeatures,
    extract_features,
    orient,
    run_simulation,
)
from alignline.data.preference import load_pairs
from alignline.data.sources import file_sha256, read_records
from alignline.errors import DataError
from alignline.io import atomic_path, write_json, write_text
from alignline.models.loading import load_model, load_tokenizer_for, resolve_model_path
from alignline.render import html
from alignline.render.svg import line_chart

STRATEGY_NAMES = {"random": "random (baseline)", "uncertainty": "reward-model uncertainty", "margin": "DPO margin"}
LEARNER_NAMES = {"rm": "reward model (Bradley–Terry head)", "dpo": "DPO policy (implicit reward)"}
MILESTONES = (16, 32, 64, 128)


def _features(
    model_spec: str | None, pairs: list, labels: list[float], max_length: int, cache: Path, key: str, progress: bool
) -> tuple[PairFeatures, bool]:
    from safetensors.torch import load_file, save_file

    if cache.is_file():
        from safetensors import safe_open

        with safe_open(str(cache), "pt") as f:
            if (f.metadata() or {}).get("key") == key:
                t = load_file(str(cache))
                return PairFeatures(t["hidden"], t["grad"], t["ref_logps"], t["labels"]), True
    tokenizer = load_tokenizer_for(model_spec)
    model = load_model(model_spec).eval()
    feats = extract_features(model, tokenizer, pairs, labels, max_length, progress=progress)
    with atomic_path(cache) as tmp:
        save_file({k: v.contiguous() for k, v in vars(feats).items()}, str(tmp), metadata={"key": key})
    return feats, False


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def split_pairs(pairs: list, test_pairs: list | None, test_fraction: float, seed: int) -> tuple[list, list]:
    """The test split: `test_pairs` when given, else a seeded `test_fraction` of `pairs`."""
    if test_pairs is not None:
        return pairs, test_pairs
    index = list(range(len(pairs)))
    random.Random(seed).shuffle(index)
    cut = max(1, round(len(pairs) * test_fraction))
    return [pairs[i] for i in sorted(index[cut:])], [pairs[i] for i in sorted(index[:cut])]


def groups_of(path: str, field: str | None, n_pairs: int) -> list[str] | None:
    """Each pair's `field` (e.g. its category), when every record has one and each record is one pair."""
    if not field:
        return None
    values = [record.get(field) for _, record in read_records(path)]
    if len(values) != n_pairs or any(v is None for v in values):
        return None
    return [str(v) for v in values]


def run_active_simulation(
    pairs_path: str,
    test_path: str | None,
    model_spec: str | None,
    strategies: list[str],
    rounds: int,
    batch: int,
    seeds: int,
    out_dir: str,
    seed_size: int | None = None,
    test_fraction: float = 0.25,
    beta: float = 0.1,
    l2: float = 0.1,
    max_length: int = 512,
    group_by: str | None = "category",
    progress: bool = True,
) -> dict:
    pairs = load_pairs(pairs_path)
    tests = load_pairs(test_path) if test_path else None
    groups = groups_of(pairs_path, group_by, len(pairs))
    test_groups = groups_of(test_path, group_by, len(tests)) if test_path else None
    if test_path is None and groups is not None:
        tagged = split_pairs(list(zip(pairs, groups)), None, test_fraction, 0)
        (pool_pairs, groups), (test_pairs, test_groups) = (list(zip(*part)) for part in tagged)
    else:
        pool_pairs, test_pairs = split_pairs(pairs, tests, test_fraction, 0)
    seed_size = batch if seed_size is None else seed_size
    if len(pool_pairs) < seed_size + batch:
        raise DataError(
            pairs_path, f"{len(pool_pairs)} pool pairs: too few for a seed set of {seed_size} and one round of {batch}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model_path = resolve_model_path(model_spec)
    key = _key(model_path, file_sha256(pairs_path), test_path and file_sha256(test_path), test_fraction, max_length)
    pool_oriented, pool_labels = orient(pool_pairs, 1)
    test_oriented, test_labels = orient(test_pairs, 2)
    both, cached = _features(
        model_spec,
        pool_oriented + test_oriented,
        pool_labels + test_labels,
        max_length,
        out / "features.safetensors",
        key,
        progress,
    )
    n = len(pool_oriented)
    pool, test = both.subset(slice(0, n)), both.subset(slice(n, None))
    feature_s = time.perf_counter() - started
    result = run_simulation(
        pool,
        test,
        strategies,
        rounds,
        batch,
        list(range(seeds)),
        seed_size,
        beta,
        l2,
        groups and list(groups),
        test_groups and list(test_groups),
    )
    result.update(
        {
            "pairs": pairs_path,
            "test_file": test_path,
            "model": model_spec or "smollm2-135m",
            "group_by": group_by if "groups" in result else None,
            "feature_seconds": round(feature_s, 1),
            "features_cached": cached,
            "simulation_seconds": round(time.perf_counter() - started - feature_s, 1),
            "at": milestones(result),
        }
    )
    write_json(out / "active_learning.json", result)
    write_text(out / "active_learning.html", render_html(result))
    return result


def milestones(result: dict) -> dict:
    """Mean accuracy (and spread over seeds) at 16/32/64/128 labels, where the run reached them."""
    at = {}
    for strategy, entry in result["strategies"].items():
        for k, labels in enumerate(entry["labels"]):
            if labels in MILESTONES:
                for name in LEARNERS:
                    acc = entry[f"{name}_accuracy"]
                    at.setdefault(str(labels), {}).setdefault(name, {})[strategy] = {
                        "mean": acc["mean"][k],
                        "std": acc["std"][k],
                        "min": acc["min"][k],
                        "max": acc["max"][k],
                    }
    return at


def render_html(result: dict) -> str:
    charts = []
    for name in LEARNERS:
        series, dashed, colors = {}, [], {}
        palette = {"random": "#888888", "uncertainty": "#1f77b4", "margin": "#d62728"}
        for strategy, entry in result["strategies"].items():
            acc, label = entry[f"{name}_accuracy"], STRATEGY_NAMES.get(strategy, strategy)
            series[label] = list(zip(entry["labels"], acc["mean"]))
            colors[label] = palette.get(strategy, "#2ca02c")
            if strategy == "random" and len(result["seeds"]) > 1:  # the baseline's spread over seeds, dashed
                for bound in ("min", "max"):
                    spread = f"{label} {bound}"
                    series[spread] = list(zip(entry["labels"], acc[bound]))
                    colors[spread] = colors[label]
                    dashed.append(spread)
        ceiling = result["ceiling"][f"{name}_accuracy"]
        top = f"all {result['pool']} labels"
        series[top] = [
            (min(e["labels"][0] for e in result["strategies"].values()), ceiling),
            (max(e["labels"][-1] for e in result["strategies"].values()), ceiling),
        ]
        colors[top] = "#2ca02c"
        dashed.append(top)
        charts.append(
            line_chart(
                series,
                "labels spent",
                "test accuracy",
                LEARNER_NAMES[name],
                width=600,
                height=320,
                colors=colors,
                dashed=dashed,
            )
        )
    rows = []
    for labels, per in result["at"].items():
        for name, by in per.items():
            rows.append(
                [labels, LEARNER_NAMES[name]]
                + [
                    f"{by[s]['mean']:.3f} ± {by[s]['std']:.3f} ({by[s]['min']:.2f}–{by[s]['max']:.2f})"
                    if s in by
                    else "–"
                    for s in result["strategies"]
                ]
            )
    facts = [
        ("pairs", result["pairs"]),
        ("model", result["model"]),
        ("pool / test pairs", f"{result['pool']} / {result['test']}"),
        ("seed set, batch per round", f"{result['seed_size']}, {result['batch']}"),
        ("rounds", result["rounds"]),
        ("seeds", len(result["seeds"])),
        ("DPO β, L2", f"{result['beta']}, {result['l2']}"),
        (
            "features",
            "reused from features.safetensors" if result.get("features_cached") else f"{result['feature_seconds']} s",
        ),
        ("simulation", f"{result['simulation_seconds']} s"),
    ]
    how = (
        "Each strategy starts from the same random seed set for a given seed, then buys the labels of "
        f"{result['batch']} pool pairs per round. After each round both learners are refitted on the labels "
        "bought so far and scored on the test split. Solid lines: the mean over seeds; grey dashed: the "
        "lowest and highest random run; the table has every strategy's spread; green dashed: each learner "
        "trained on every pool label. Features come from the frozen "
        "model (last-token hidden states for the reward head; the DPO policy linearized in a rescaling of "
        "the final hidden state); see `alignline/annotate/simulation.py`."
    )
    sections = [
        html.summary(facts),
        html.section("Accuracy per label spent", html.paragraph(how, "note"), html.grid(charts)),
        html.section(
            "At milestones (mean ± std over seeds, and the range)",
            html.table(["labels", "learner"] + [STRATEGY_NAMES.get(s, s) for s in result["strategies"]], rows),
        ),
    ]
    if "groups" in result:
        sections.append(_groups_section(result))
    return html.page(
        "Active learning simulation",
        sections,
        subtitle="Which pairs to annotate next: random sampling against reward-model uncertainty "
        "and the DPO implicit-reward margin",
    )


def _groups_section(result: dict):
    """Where each strategy spent its labels, and what each learner ends up getting right, per group."""
    g, strategies = result["groups"], list(result["strategies"])
    names = sorted(g["pool_share"])
    spent = [["pool (what random draws from)"] + [f"{g['pool_share'][n]:.0%}" for n in names]]
    spent += [
        [STRATEGY_NAMES.get(s, s)] + [f"{g['strategies'][s]['bought_share'].get(n, 0.0):.0%}" for n in names]
        for s in strategies
    ]
    final = []
    for learner in LEARNERS:
        final.append(
            [LEARNER_NAMES[learner], f"all {result['pool']} labels"]
            + [_acc(g["ceiling"][learner].get(n)) for n in names]
        )
        final += [
            [LEARNER_NAMES[learner], STRATEGY_NAMES.get(s, s)]
            + [_acc(g["strategies"][s]["final_accuracy"][learner].get(n)) for n in names]
            for s in strategies
        ]
    last = result["strategies"][strategies[0]]["labels"][-1]
    return html.section(
        f"Per {result['group_by']}",
        html.paragraph("Share of the labels bought after the seed set, by group (all seeds):", "note"),
        html.table([result["group_by"]] + names, spent),
        html.paragraph(
            f"Test accuracy per group after the last round ({last} labels, mean over "
            "seeds), and with every pool label:",
            "note",
        ),
        html.table(["learner", "labels"] + names, final),
    )


def _acc(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
