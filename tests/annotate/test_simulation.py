"""The active-learning simulation: learners, rounds, and the CLI's json/html on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from alignline.annotate.simulation import (
    PairFeatures,
    accuracy,
    fit_bradley_terry,
    run_simulation,
    simulate,
)
from alignline.cli import main
from support import assistant, user, write_jsonl


def separable(n: int, seed: int, hidden: int = 4) -> PairFeatures:
    """Pairs whose preferred side scores higher along a fixed direction u (first coordinate for the reward head,
    second for the DPO features); everything else is noise."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, 2, hidden, generator=g, dtype=torch.float64)
    feats[:, :, 0] *= 8  # the signal stands out of the noise
    grad = torch.randn(n, 2, hidden, generator=g, dtype=torch.float64)
    labels = (feats[:, 0, 0] > feats[:, 1, 0]).double()
    grad[:, :, 1] = feats[:, :, 0]
    return PairFeatures(feats, grad, torch.zeros(n, 2, dtype=torch.float64), labels)


def test_accuracy_counts_ties_half():
    """margins (+, −, 0, +) against labels (1, 1, 0, 0): right, wrong, half, wrong -> 1.5 / 4."""
    assert accuracy(torch.tensor([1.0, -2.0, 0.0, 3.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])) == 0.375


def test_bradley_terry_fit_finds_the_direction_and_is_antisymmetric():
    pool = separable(64, 0)
    diff = pool.hidden[:, 0] - pool.hidden[:, 1]
    w = fit_bradley_terry(diff, pool.labels, l2=0.01)
    assert w[0] > 0 and w[0].abs() > 3 * w[1:].abs().max()
    right = accuracy(diff @ w, pool.labels)
    assert right >= 0.95  # L2 keeps a few near-ties on the wrong side
    assert accuracy(-diff @ w, 1 - pool.labels) == right  # swapping a and b flips every prediction


def test_simulate_rounds_and_strategies_learn_a_separable_pool():
    pool, test = separable(80, 1), separable(40, 2)
    for strategy in ("random", "uncertainty", "margin"):
        curve = simulate(pool, test, strategy, budget_steps=4, batch=4, seed_size=4, seed=0)
        assert [p["labels"] for p in curve] == [4, 8, 12, 16, 20]
        assert curve[-1]["rm_accuracy"] >= 0.85 and curve[-1]["dpo_accuracy"] >= 0.85
    with pytest.raises(ValueError):
        simulate(pool, test, "nope", 1)


def test_simulate_never_buys_a_label_twice():
    pool, test = separable(12, 3), separable(8, 4)
    curve = simulate(pool, test, "uncertainty", budget_steps=10, batch=4, seed_size=4)
    assert [p["labels"] for p in curve] == [4, 8, 12]  # the pool runs out: stop, no repeats


def test_run_simulation_reports_spread_over_seeds():
    pool, test = separable(60, 5), separable(30, 6)
    out = run_simulation(pool, test, ["random", "margin"], rounds=3, batch=4, seeds=[0, 1, 2])
    entry = out["strategies"]["random"]
    assert entry["labels"] == [4, 8, 12, 16]
    acc = entry["rm_accuracy"]
    assert len(acc["runs"]) == 3 and all(lo <= m <= hi for lo, m, hi in zip(acc["min"], acc["mean"], acc["max"]))
    assert out["ceiling"]["rm_accuracy"] >= 0.9


def simulate_cli(argv: list[str]) -> int:
    return main(["annotate", "simulate", *argv])


def _pairs(n: int, offset: int = 0) -> list[dict]:
    words = ["apple", "river", "stone", "cloud", "green", "music", "table", "light"]
    out = []
    for i in range(offset, offset + n):
        w = words[i % len(words)]
        out.append(
            {
                "prompt": [user(f"say {w} {i}")],
                "chosen": [assistant(f"{w} {w} yes")],
                "rejected": [assistant(f"no {i}")],
                "category": ["even", "odd"][i % 2],
            }
        )
    return out


def test_cli_simulate_writes_json_and_html_on_a_tiny_model(tmp_path, tiny_model_dir):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", _pairs(24))
    out = tmp_path / "al"
    argv = [
        "--pairs",
        str(pairs),
        "--model",
        str(tiny_model_dir),
        "--rounds",
        "2",
        "--batch",
        "4",
        "--seeds",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]
    assert simulate_cli(argv) == 0
    result = json.loads((out / "active_learning.json").read_text())
    assert result["pool"] == 18 and result["test"] == 6
    assert set(result["strategies"]) == {"random", "uncertainty", "margin"}
    assert result["strategies"]["margin"]["labels"] == [4, 8, 12]
    groups = result["groups"]
    assert set(groups["pool_share"]) == {"even", "odd"} and sum(groups["pool_share"].values()) == pytest.approx(1)
    assert sum(groups["strategies"]["uncertainty"]["bought_share"].values()) == pytest.approx(1)
    assert set(groups["strategies"]["random"]["final_accuracy"]["rm"]) == {"even", "odd"}
    page = (out / "active_learning.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 2 and "DPO margin" in page
    assert "Per category" in page
    assert (out / "features.safetensors").is_file()
    assert (
        simulate_cli(argv[:-3] + ["--strategy", "random", "--out", str(out), "--quiet"]) == 0
    )  # from the cached features


def test_cli_simulate_bad_input_is_one_line(tmp_path, tiny_model_dir, capsys):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", _pairs(6))
    base = ["--pairs", str(pairs), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o")]
    assert simulate_cli(base + ["--strategy", "entropy"]) == 2
    assert "--strategy entropy" in capsys.readouterr().err
    assert simulate_cli(base + ["--batch", "4"]) == 2
    assert "too few" in capsys.readouterr().err


def test_pool_scoring_matches_the_simulation_features(tiny_model_dir):
    """`dpo_logps` (DPOModel's forward) and `extract_features` (the fused head on decoder states) give the same
    reference log-probs; a policy that is its own reference has margins of exactly 0."""
    from alignline.annotate.active import (
        PoolPair,
        dpo_logps,
        dpo_margins,
        reward_scores,
    )
    from alignline.annotate.simulation import extract_features
    from alignline.data.preference import PreferencePair
    from alignline.models.loading import load_model, load_tokenizer_for

    pool = [PoolPair(f"q {i}", f"yes {i} a", f"no {i}") for i in range(3)]
    policy, reference = dpo_logps(pool, str(tiny_model_dir), str(tiny_model_dir))
    assert policy.shape == (3, 2) and dpo_margins(policy, reference, 0.1) == [0.0, 0.0, 0.0]
    feats = extract_features(
        load_model(str(tiny_model_dir)).eval(),
        load_tokenizer_for(str(tiny_model_dir)),
        [PreferencePair(p.prompt, p.a, p.b) for p in pool],
        [1.0, 0.0, 1.0],
    )
    torch.testing.assert_close(feats.ref_logps, reference.double(), atol=1e-4, rtol=1e-4)
    a, b = reward_scores(pool, str(tiny_model_dir))
    assert len(a) == len(b) == 3 and a != b


def test_cli_prioritize_serves_the_most_uncertain_items_first(tmp_path, tiny_model_dir, capsys):
    """The project's unlabelled items are reordered by the reward model's |r_a − r_b|, smallest first; the
    admin's next item is then the first of that order."""
    from alignline.annotate.active import (
        by_reward_uncertainty,
        pool_from_items,
        reward_scores,
    )
    from alignline.annotate.store import Store
    from alignline.models.loading import load_model, load_tokenizer_for

    tokenizer = load_tokenizer_for(str(tiny_model_dir))  # a reward model with its head saved: the same scores twice
    rm = str(tmp_path / "rm")
    load_model(str(tiny_model_dir), kind="reward", pad_token_id=tokenizer.pad_token_id).save_pretrained(rm)
    tokenizer.save_pretrained(rm)
    db = f"sqlite:///{tmp_path / 'a.db'}"
    store = Store(db)
    admin = store.add_user("boss", "admin", "password123")
    store.create_project(
        "p",
        [
            {"prompt": f"say {w}", "responses": [f"{w} yes", f"no {w} {w}"]}
            for w in ["apple", "river", "stone", "cloud", "green", "music"]
        ],
    )
    assert main(["annotate", "prioritize", "p", "--strategy", "uncertainty", "--model", rm, "--db", db]) == 0
    assert "6 unlabelled items reordered by uncertainty" in capsys.readouterr().out
    items = store.items("p")
    pool = pool_from_items([(str(it["id"]), it) for it in items], "p")
    expected = [items[i]["id"] for i in by_reward_uncertainty(*reward_scores(pool, rm))]
    assert [it["id"] for it in sorted(items, key=lambda it: it["position"])] == expected
    assert store.next_item("p", admin)["id"] == expected[0]
    assert main(["annotate", "prioritize", "p", "--strategy", "margin", "--db", db]) == 2  # no --model
    tiny = str(tiny_model_dir)
    assert main(["annotate", "prioritize", "p", "--strategy", "margin", "--model", tiny, "--db", db]) == 2
    assert "needs its reference model" in capsys.readouterr().err  # a full model is no DPO policy on its own
    assert (
        main(["annotate", "prioritize", "p", "--strategy", "margin", "--model", tiny, "--reference", tiny, "--db", db])
        == 0
    )
