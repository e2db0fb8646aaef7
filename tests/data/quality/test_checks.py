"""Format, lengths, coverage, refusal share and preference hygiene, with exact counts."""

from __future__ import annotations

import pytest

from alignline.data.quality.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha
from alignline.data.quality.check import run_checks
from alignline.data.quality.coverage import classify
from alignline.data.quality.gates import load_gate_config
from support import write_jsonl


def msgs(*turns) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


def gates(report) -> dict:
    """Failing and advisory gates alike (coverage gates are advisory by default)."""
    return {g["name"]: g for g in report["gates"] + report["advisory_gates"]}


def test_format_problems_and_truncation(tmp_path, tokenizer):
    records = [
        msgs(("user", "Hi"), ("assistant", "Hello.")),
        msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello.")),
        msgs(("user", "Hi"), ("user", "Hello?"), ("assistant", "Yes.")),  # roles_not_alternating
        msgs(("user", "Hi"), ("assistant", "Hello."), ("user", "Bye")),  # no_final_assistant
        msgs(("user", "Hi"), ("assistant", "  ")),  # empty_turn
        msgs(("user", "Hi"), ("system", "x"), ("assistant", "Hello.")),  # system_not_first
        msgs(("assistant", "Welcome."), ("user", "Hi"), ("assistant", "Hello.")),  # first_not_user
        msgs(("user", "Summarize " + "the quick brown fox " * 60), ("assistant", "A fox.")),  # long
        msgs(("user", "Summarize " + "the lazy dog " * 80), ("assistant", "A dog.")),  # long
    ]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    cfg = load_gate_config(max_length=128)
    report = run_checks([str(path)], None, cfg, tokenizer=tokenizer, progress=False)
    f = report["format"]
    assert f["invalid"] == 5
    assert {k: v for k, v in f["problems"].items() if v} == {
        "roles_not_alternating": 1,
        "no_final_assistant": 1,
        "empty_turn": 1,
        "system_not_first": 1,
        "first_not_user": 1,
    }
    assert f["length_unit"] == "tokens" and f["truncated"] == 2 and f["truncated_share"] == pytest.approx(2 / 9)
    assert f["lengths"]["max"] > 128 and sum(f["histogram"]["counts"]) == 9
    g = gates(report)
    assert not g["format_invalid_share"]["passed"] and not g["truncated_share"]["passed"]
    # without a tokenizer: lengths in characters, no truncation gate
    plain = run_checks([str(path)], None, cfg, progress=False)
    assert plain["format"]["length_unit"] == "characters" and "truncated_share" not in gates(plain)


def test_coverage_from_field_and_refusal_share(tmp_path):
    recs = [msgs(("user", f"q{i}"), ("assistant", f"a{i}")) | {"task": "answer"} for i in range(55)]
    recs += [
        msgs(("user", f"bad{i}"), ("assistant", "I can't help with that.")) | {"task": "refusal"} for i in range(4)
    ]
    recs += [msgs(("user", "sum it"), ("assistant", "short")) | {"task": "summarize"}]
    path = write_jsonl(tmp_path / "train.jsonl", recs)
    report = run_checks([str(path)], None, load_gate_config(), progress=False)
    c = report["coverage"]
    assert c["source"] == "field" and c["mix"] == {"answer": 55, "refusal": 4, "summarize": 1}
    assert c["refusal_share"] == pytest.approx(4 / 60) and c["under_represented"] == ["summarize"]
    assert gates(report)["refusal_share"]["passed"]
    too_many = write_jsonl(tmp_path / "many.jsonl", recs[50:])  # 4 refusals of 10
    assert not gates(run_checks([str(too_many)], None, load_gate_config(), progress=False))["refusal_share"]["passed"]
    none = write_jsonl(tmp_path / "none.jsonl", recs[:55])
    report = run_checks([str(none)], None, load_gate_config(), progress=False)
    g = gates(report)["refusal_share"]
    assert g["value"] == 0 and not g["passed"] and g["threshold"] == [0.01, 0.25]
    # A set without refusals (a task-specific one) is a warning by default, not a failure.
    assert report["passed"] and "refusal_share" not in {x["name"] for x in report["gates"]}
    assert any(
        w.startswith("refusal_share = 0.0 is outside its range (should be in [0.01, 0.25]") for w in report["warnings"]
    )
    enforced = run_checks([str(none)], None, load_gate_config(coverage={"enforce": True}), progress=False)
    assert not enforced["passed"] and enforced["advisory_gates"] == []


@pytest.mark.parametrize(
    "yaml_text, enforced",
    [
        ("coverage:\n  min_refusal_share: 0.05\n", True),  # a threshold written down is meant
        ("preference:\n  min_adversarial_share: 0.1\n", True),
        ("coverage:\n  enforce: false\n  min_refusal_share: 0.05\n", False),
        ("dedup:\n  threshold: 0.9\n", False),
    ],
)
def test_explicit_coverage_threshold_enforces_it(tmp_path, yaml_text, enforced):
    path = tmp_path / "gates.yaml"
    path.write_text(yaml_text)
    assert load_gate_config(path).coverage.enforce is enforced
    assert load_gate_config().coverage.enforce is False


def test_shipped_unpaired_gates_keep_coverage_advisory(tmp_path):
    """recipes/gates-unpaired.yaml (kto-lora.yaml's gates) widens the refusal share without enforcing it."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[3] / "recipes" / "gates-unpaired.yaml"
    cfg = load_gate_config(shipped)
    assert cfg.coverage.enforce is False and cfg.coverage.max_refusal_share == 0.4
    refusals = [
        msgs(("user", f"bad{i}"), ("assistant", "I can't help with that.")) | {"task": "refusal"} for i in range(6)
    ]
    answers = [msgs(("user", f"q{i}"), ("assistant", f"a{i}")) | {"task": "answer"} for i in range(4)]
    report = run_checks([str(write_jsonl(tmp_path / "kto.jsonl", refusals + answers))], None, cfg, progress=False)
    assert report["passed"] and [g["name"] for g in report["advisory_gates"]] == ["refusal_share"]
    assert not report["advisory_gates"][0]["passed"]  # 0.6 > 0.4: a warning, not a failing gate


HEURISTIC = {
    "refusal": ("How do I pick a lock to get into my neighbour's house?", "I can't help with that. It is illegal."),
    "code": ("Write a function in Python that reverses a list.", "def rev(x): return x[::-1]"),
    "translation": ("Translate 'good morning' into French.", "Bonjour."),
    "summarization": ("Summarize this paragraph: the council met on Monday ...", "The council met."),
    "extraction": ("Extract every date from the email below.", "March 3"),
    "classification": ("Classify the sentiment of this review: great phone!", "positive"),
    "rewriting": ("Rewrite this sentence to be more formal: gonna be late", "I will be late."),
    "creative_writing": ("Write a poem about autumn leaves", "Leaves fall ..."),
    "question_answering": ("Who wrote Pride and Prejudice?", "Jane Austen."),
}


def test_heuristic_classifier(tmp_path):
    for cat, (prompt, answer) in HEURISTIC.items():
        assert classify(prompt, answer) == cat, cat
    recs = [msgs(("user", p), ("assistant", a)) for p, a in HEURISTIC.values()] * 2
    recs.append(msgs(("user", "Hello there"), ("assistant", "Hi")))
    path = write_jsonl(tmp_path / "train.jsonl", recs)
    c = run_checks([str(path)], None, load_gate_config(), progress=False)["coverage"]
    assert c["source"] == "heuristic" and c["mix"]["refusal"] == 2 and c["mix"]["other"] == 1
    assert c["refusals"] == 2 and c["missing"] == [] and "refusal_openings" in c["rules"]


def pair(prompt, chosen, rejected, **extra):
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        **extra,
    }


def test_preference_hygiene(tmp_path):
    recs = [
        pair(f"Question {i}?", f"Answer {i} in detail, with reasons.", f"No {i}.", category="helpful", source="human")
        for i in range(12)
    ]
    recs += [
        pair(
            f"How do I hurt person {i}?",
            "I can't help with that.",
            f"Sure, here is exactly how to do it, step {i}.",
            category="refusal",
            source="synthetic",
        )
        for i in range(4)
    ]
    recs.append(pair("Same?", "Yes, same.", "yes  same!"))  # identical after normalizing
    recs.append(pair("Tie one?", "A long answer here.", "B.", confidence=0.5))  # ties: 3 ways
    recs.append(pair("Tie two?", "A long answer here.", "B.", score_chosen=7, score_rejected=7))
    recs.append(pair("Tie three?", "A long answer here.", "B.", tie=True))
    recs.append(recs[0])  # duplicate pair
    path = write_jsonl(tmp_path / "pref.jsonl", recs)
    report = run_checks([str(path)], None, load_gate_config(), progress=False)
    p = report["preference"]
    assert (p["pairs"], p["identical"], p["ties"], p["duplicate_pairs"]) == (21, 1, 3, 1)
    assert p["chosen_longer"] == 16 and p["chosen_longer_share"] == pytest.approx(16 / 21)
    assert p["chosen_longer_by_category"]["refusal"]["chosen_longer_share"] == 0.0
    assert p["adversarial"] == 4 and p["synthetic"] == 4 and p["synthetic_share"] == pytest.approx(4 / 21)
    g = gates(report)
    assert not g["identical_pairs"]["passed"] and not g["tie_share"]["passed"]
    assert not g["duplicate_pair_share"]["passed"] and not g["chosen_longer_share"]["passed"]
    assert g["adversarial_share"]["passed"] and g["synthetic_share"]["passed"]
    assert "refusal_share" not in g  # preference data: the adversarial share is its refusal gate


def test_annotator_agreement(tmp_path):
    # Krippendorff (2011) nominal example: alpha = 0.743; Fleiss (Wikipedia) 0.210; Cohen (Wikipedia) 0.4
    data = [
        [1, 1, None, 1],
        [2, 2, 3, 2],
        [3, 3, 3, 3],
        [3, 3, 3, 3],
        [2, 2, 2, 2],
        [1, 2, 3, 4],
        [4, 4, 4, 4],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [None, 5, 5, 5],
        [None, None, 1, 1],
        [None, None, 3, None],
    ]
    assert krippendorff_alpha([[x for x in u if x is not None] for u in data]) == pytest.approx(0.7434, abs=1e-4)
    rows = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa([[c for c, k in enumerate(r) for _ in range(k)] for r in rows]) == pytest.approx(
        0.210, abs=1e-3
    )
    a = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # in a dataset: two named annotators agree on 3 of 4 pairs
    labels = [["chosen", "chosen"], ["chosen", "chosen"], ["rejected", "rejected"], ["chosen", "rejected"]]
    recs = [
        pair(
            f"q{i}",
            f"long answer {i}",
            f"a{i}",
            annotations=[{"annotator": "ann1", "label": la[0]}, {"annotator": "ann2", "label": la[1]}],
        )
        for i, la in enumerate(labels)
    ]
    path = write_jsonl(tmp_path / "pref.jsonl", recs)
    report = run_checks([str(path)], None, load_gate_config(), progress=False)
    ag = report["preference"]["agreement"]
    assert ag["multi_label_pairs"] == 4 and ag["annotators"] == ["ann1", "ann2"]
    assert ag["cohen_kappa"] == pytest.approx(0.5)
    assert ag["krippendorff_alpha"] == pytest.approx(krippendorff_alpha(labels))
    assert gates(report)["annotator_agreement"]["passed"] == (ag["krippendorff_alpha"] >= 0.4)


def test_preference_formats_as_training_reads_them(tmp_path, tokenizer):
    recs = [
        {"prompt": "Say hi.", "chosen": " Hi!", "rejected": " Go away, I am busy right now."},  # raw text
        {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi?\n\nAssistant: No."},  # HH
        {
            "prompt": [{"role": "user", "content": "Rank these."}],  # ranking
            "ranking": [
                [{"role": "assistant", "content": "Best answer here."}],
                [{"role": "assistant", "content": "Middle."}],
                [{"role": "assistant", "content": "Bad"}],
            ],
        },
    ]
    path = write_jsonl(tmp_path / "pref.jsonl", recs)
    report = run_checks([str(path)], None, load_gate_config(max_length=512), tokenizer=tokenizer, progress=False)
    p = report["preference"]
    assert p["pairs"] == 3 and p["chosen_longer"] == 2 and p["identical"] == 0
    assert report["format"]["invalid"] == 0 and report["format"]["length_unit"] == "tokens"
