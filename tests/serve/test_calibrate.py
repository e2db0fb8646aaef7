"""Confidence, routing decisions, policy rules, and the calibration a threshold needs (`alignline serve calibrate`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest

from alignline.cli import main
from alignline.errors import ConfigError
from alignline.rollout.types import Completion
from alignline.serve.calibrate import measure, run_calibration
from alignline.serve.confidence import Confidence, ConfidenceSpec, parse_confidence, token_confidence
from alignline.serve.routing import Policy, Router, load_policy
from support import write_jsonl

ALWAYS_RIGHT = "def right(completions, **columns):\n    return [1.0] * len(completions)\n"


def test_token_confidence_by_hand():
    """log-probs ln 0.5 and ln 0.125: geometric mean sqrt(0.5 * 0.125) = 0.25; min 0.125; no tokens: 0."""
    lp = [math.log(0.5), math.log(0.125)]
    assert token_confidence(lp) == pytest.approx(0.25)
    assert token_confidence(lp, "min") == pytest.approx(0.125)
    assert token_confidence([]) == 0.0
    assert parse_confidence("reward:rm/final") == ConfidenceSpec("reward", "rm/final")
    with pytest.raises(Exception, match="expected mean, min or reward:PATH"):
        parse_confidence("entropy")


def test_router_combines_threshold_and_rules():
    policy = Policy(pii=("email",), action="hold")
    r = Router(threshold=0.5, on_low="flag", policy=policy)
    assert not r.decide("q", "fine", 0.9).routed
    low = r.decide("q", "fine", 0.2)
    assert (low.action, low.reasons) == ("flag", ["confidence 0.200 < 0.5"])
    both = r.decide("q", "mail a@b.org", 0.2)
    assert both.action == "hold" and both.reasons == ["confidence 0.200 < 0.5", "pii:email"]  # hold wins


@pytest.mark.parametrize(
    "text, message",
    [
        ("topics: [medical]\n", "topics must be a mapping"),
        ("topics:\n  x: {keyword: [a]}\n", "unknown key 'topics.x.keyword'"),
        ("topics:\n  x: {regex: ['(']}\n", "not a valid regular expression"),
        ("pii: [passport]\n", "pii type 'passport'"),
        ("action: drop\n", "action 'drop'"),
        ("route: all\n", "unknown key 'route'"),
    ],
)
def test_bad_policy_files_name_the_key(tmp_path, text, message):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_policy(str(path))


def test_keywords_match_whole_words_only(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("topics:\n  weapons:\n    keywords: [gun]\n")
    policy = load_policy(str(path))
    assert policy.reasons("Where can I buy a GUN?", "") == ["topic:weapons"]
    assert policy.reasons("Is begun a word?", "") == []


def test_measure_by_hand():
    """conf [0.9, 0.8, 0.3, 0.2], correct [1, 1, 0, 1], threshold 0.5, 10 bins.
    ECE: bins 9, 8, 3, 2 hold one each: (|1-.9| + |1-.8| + |0-.3| + |1-.2|) / 4 = (.1 + .2 + .3 + .8) / 4 = 0.35.
    Kept (>= 0.5): the first two, both right: accuracy above 1.0; routed 2 of 4 = 0.5; accuracy 0.75."""
    m = measure([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 1], 0.5, 10)
    assert m["ece"] == pytest.approx(0.35) and m["accuracy"] == 0.75
    assert (m["accuracy_above"], m["share_routed"], m["answered"]) == (1.0, 0.5, 2)


class ByPromptEngine:
    """Answers with `answer` and log-prob ln(p) on each of two tokens, both chosen by the prompt."""

    tokenizer, name = None, "fixed"

    def __init__(self, table):
        self.table = table

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            text, prob = self.table[p[-1]["content"]]
            out.append([Completion(text, [1, 2], "stop", [math.log(prob)] * 2 if params.logprobs else None)])
        return out


def test_run_calibration_numbers():
    """Answers: '4' right at 0.9, '7' wrong at 0.6, '9' right at 0.3 (each token's probability, so also
    the geometric mean). ECE (10 bins, one record each): (.1 + .6 + .7) / 3 = 0.4667; threshold 0.5 keeps
    the first two: accuracy above 0.5, routed 1/3."""
    engine = ByPromptEngine({"2+2": ("4", 0.9), "3+3": ("7", 0.6), "4+5": ("9", 0.3)})
    records = [
        {"id": q, "messages": [{"role": "user", "content": q}], "record": {"prompt": q, "answer": a}}
        for q, a in (("2+2", "4"), ("3+3", "6"), ("4+5", "9"))
    ]
    cal = run_calibration(engine, {"m": "base"}, records, "exact_match", Confidence(ConfidenceSpec("mean")), 0.5, 0.1)
    m = cal["models"]["base"]
    assert m["served_name"] == "m"
    assert m["ece"] == pytest.approx(1.4 / 3) and m["accuracy_above"] == 0.5
    assert m["share_routed"] == pytest.approx(1 / 3) and not m["passed"] and not cal["passed"]
    assert [e["id"] for e in cal["examples"]["base"]] == ["4+5", "3+3", "2+2"]  # least confident first


@pytest.fixture
def labelled(tmp_path):
    return write_jsonl(
        tmp_path / "labelled.jsonl", [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
    )


def calibrate(model, labelled, out, *extra) -> int:
    return main(
        [
            "serve",
            "calibrate",
            "--model",
            str(model),
            "--labelled",
            str(labelled),
            "--threshold",
            "0.5",
            "--out",
            str(out),
            "--max-tokens",
            "4",
            *extra,
        ]
    )


def test_calibration_refusal_shows_the_numbers(tmp_path, tiny_model_dir, labelled, capsys):
    grader = tmp_path / "always.py"
    grader.write_text(ALWAYS_RIGHT)
    out = tmp_path / "cal.json"
    # the tiny random model's confidence is near 0 while the grader calls everything right: miscalibrated
    assert calibrate(tiny_model_dir, labelled, out, "--grader", f"{grader}:right") == 1
    printed = capsys.readouterr().out
    assert "FAIL  model 'base'" in printed and "routing refused" in printed
    cal = json.loads(out.read_text())
    assert cal["models"]["base"]["ece"] > 0.9
    html = out.with_suffix(".html").read_text()
    assert "<svg" in html and "perfect calibration" in html
    code = main(
        [
            "serve",
            "--model",
            str(tiny_model_dir),
            "--route-below",
            "0.5",
            "--calibration",
            str(out),
            "--review-file",
            str(tmp_path / "q.jsonl"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "refusing to route on a miscalibrated score" in err[0] and "ECE 0.9" in err[0] and "(max 0.1)" in err[0]
    assert "routed 100.0 % of 6" in err[0]


def test_calibration_must_match_threshold_model_and_confidence(
    tmp_path, tiny_model_dir, tiny_lora_dir, labelled, capsys
):
    out = tmp_path / "cal.json"
    assert calibrate(tiny_model_dir, labelled, out) == 0  # all wrong at confidence ~0: calibrated
    capsys.readouterr()
    from support import save_tiny_model

    other = save_tiny_model(tmp_path / "other", seed=1)
    base = ["serve", "--review-file", str(tmp_path / "q.jsonl"), "--calibration", str(out)]
    cases = [
        (["--model", str(tiny_model_dir), "--route-below", "0.6"], "made for threshold 0.5, not 0.6"),
        (
            ["--model", str(tiny_model_dir), "--route-below", "0.5", "--confidence", "min"],
            "made for confidence mean, not min",
        ),
        (["--model", str(other), "--route-below", "0.5"], "recalibrate on the model you serve"),
        (
            ["--model", str(tiny_model_dir), "--adapter", f"lora={tiny_lora_dir}", "--route-below", "0.5"],
            "model 'lora' was not calibrated",
        ),
    ]
    for flags, message in cases:
        assert main(base + flags) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--route-below", "0.5"], "--route-below needs --calibration FILE"),
        (["--route-below", "1.5", "--calibration", "c.json"], "between 0 and 1"),
        (["--calibration", "c.json"], "without --route-below"),
        (["--policy", "{rules}"], "routing needs a review queue"),
        (["--review-db", "sqlite:///x.db"], "--review-db and --review-project go together"),
        (["--adapter", "nameonly"], "expected NAME=PATH"),
        (["--max-queue", "0"], "--max-queue 0: must be at least 1"),
        (["--confidence", "vibes"], "expected mean, min or reward:PATH"),
    ],
)
def test_bad_serve_flags_exit_2_with_one_line(tmp_path, tiny_model_dir, capsys, flags, message):
    rules = tmp_path / "rules.yaml"
    rules.write_text("pii: true\n")
    flags = [f.replace("{rules}", str(rules)) for f in flags]
    assert main(["serve", "--model", str(tiny_model_dir), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.parametrize(
    "records, message",
    [
        ([{"prompt": "q"}], "field 'answer'"),
        ([{"answer": 1}, {"answer": 2}], "field 'prompt'"),
        ([{"prompt": "q", "answer": 1}], "at least 2"),
    ],
)
def test_bad_labelled_files_exit_2(tmp_path, tiny_model_dir, capsys, records, message):
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    assert calibrate(tiny_model_dir, path, tmp_path / "c.json") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "bad.jsonl" in err[0]


def test_the_command_serves_and_routes_on_a_passing_calibration(tmp_path, tiny_model_dir, labelled):
    """`alignline serve` as a user runs it: a subprocess on a free port, held answers in the JSONL queue."""
    import socket

    import openai

    out = tmp_path / "cal.json"
    assert calibrate(tiny_model_dir, labelled, out) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = tmp_path / "q.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alignline.cli",
            "serve",
            "--model",
            str(tiny_model_dir),
            "--served-name",
            "tiny",
            "--port",
            str(port),
            "--route-below",
            "0.5",
            "--calibration",
            str(out),
            "--review-file",
            str(queue),
            "--default-max-tokens",
            "4",
            "--log-level",
            "warning",
        ],
        env={**os.environ},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=30)
        deadline = time.time() + 90
        while True:
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.time() < deadline
                time.sleep(0.2)
        r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "What is 1 + 1?"}])
        assert r.model_extra["alignline"]["action"] == "hold"  # a random model's confidence is far below 0.5
        item = json.loads(queue.read_text().splitlines()[0])
        assert item["meta"]["request_id"] == r.id and item["meta"]["threshold"] == 0.5
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_platt_fit_by_hand():
    """Raw 0.5 everywhere (logit 0), 3 of 4 right: only b matters; 4 sigmoid(b) - 3 + 0.01 b = 0 gives
    b = logit(0.75) - 0.01 * 1.0986 / 0.75 = 1.0986 - 0.0146 = 1.084 (one Newton step from the root)."""
    from alignline.serve.calibrate import apply_fit, cross_fitted, fit_platt

    a, b = fit_platt([0.5] * 4, [1, 1, 1, 0])
    assert b == pytest.approx(1.084, abs=2e-3) and a == 0.0
    assert apply_fit(0.3, None) == 0.3 and apply_fit(0.3, {"kind": "platt", "a": 1.0, "b": 0.0}) == pytest.approx(0.3)
    # overconfident: raw 0.9 on every answer, 1 in 5 right; out of fold the score falls to about 0.2 (ECE 0.7 -> 0.1)
    raw, right = [0.9] * 20, [1, 0, 0, 0, 0] * 4
    oof = cross_fitted(raw, right)
    assert measure(raw, right, 0.5, 10)["ece"] == pytest.approx(0.7)
    assert measure(list(oof), right, 0.5, 10)["ece"] < 0.15  # out of fold: each fold sees 0.19 or 0.25


def test_a_platt_fit_is_checked_out_of_fold_and_applied_by_the_server(tmp_path, tiny_model_dir, labelled, capsys):
    grader = tmp_path / "half.py"  # right on even numbers: 0, 2, 4 of the six questions
    grader.write_text("def half(completions, answer, **c):\n    return [float(int(a) % 4 == 0) for a in answer]\n")
    out = tmp_path / "cal.json"
    code = calibrate(tiny_model_dir, labelled, out, "--grader", f"{grader}:half", "--fit", "platt", "--max-ece", "0.5")
    printed = capsys.readouterr().out
    cal = json.loads(out.read_text())
    m = cal["models"]["base"]
    assert m["fit"]["kind"] == "platt" and m["ece_raw"] > 0.4 and "after Platt scaling, out of fold" in printed
    assert code == (0 if m["ece"] <= 0.5 else 1)
    from alignline.rollout.types import SamplingParams
    from alignline.serve.app import Answerer, ServeSettings
    from alignline.serve.protocol import ChatRequest
    from support import ScriptedEngine

    settings = ServeSettings("tiny", confidence=Confidence(ConfidenceSpec("mean"), {"base": m["fit"]}))
    request = ChatRequest("r1", "tiny", "base", [{"role": "user", "content": "q"}], SamplingParams(logprobs=True))
    ((answer,),) = Answerer(ScriptedEngine(lambda t: "a b"), settings)([request])
    from alignline.serve.calibrate import apply_fit

    assert answer.confidence == pytest.approx(apply_fit(math.exp(-0.1), m["fit"]))


def test_reward_model_confidence_is_the_sigmoid_of_its_score(tiny_model_dir):
    from alignline.rewards.reward_models import RewardScorer, as_chat

    prompts = [[{"role": "user", "content": "What is 2 + 2?"}]] * 2
    completions = [Completion("4", [1], "stop"), Completion("five", [1], "stop")]
    confidence = Confidence(parse_confidence(f"reward:{tiny_model_dir}"))
    conf = confidence(prompts, completions)
    assert isinstance(confidence.scorer, RewardScorer)  # loaded on first use, kept (the tiny model's head is random)
    pairs = [as_chat(p, c.text) for p, c in zip(prompts, completions)]
    scores = confidence.scorer([p for p, _ in pairs], [r for _, r in pairs])
    assert conf == pytest.approx([1 / (1 + math.exp(-s)) for s in scores])
    assert not Confidence(parse_confidence(f"reward:{tiny_model_dir}")).needs_logprobs
