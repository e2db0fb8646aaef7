"""The run report: a chart for every logged series, the config that ran as a table, the best eval in words,
real data numbers for preference runs, the gates with a link, the demo's answers; nothing fetched."""

import json
import re
import time
import xml.etree.ElementTree as ET

from alignline.config import load_config, to_dict
from alignline.evals.training import train
from alignline.report.run import best_eval_text, chart_key, render_run_report, used_config, write_run_report
from alignline.train import loop
from alignline.train.metrics import read_metrics
from support import write_jsonl, write_recipe


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", html, flags=re.S)]


def _series_in_charts(html: str) -> set[str]:
    """Series names: each line's group carries a <title> with its metrics.jsonl key."""
    return {g.find("title").text for svg in _svgs(html) for g in svg.iter("g") if g.find("title") is not None}


def _pairs(n: int = 24) -> list[dict]:
    return [
        {"prompt": f"What is {i} plus {i}?", "chosen": f"Answer: {2 * i}.", "rejected": f"Maybe {i + 1}, or not."}
        for i in range(n)
    ]


def _dpo_run(tmp_path, tiny_model_dir, **extra):
    data = write_jsonl(tmp_path / "pairs.jsonl", _pairs())
    recipe = write_recipe(
        tmp_path / "dpo.yaml",
        method="dpo",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "dpo"),
        data={"train": str(data), "eval_fraction": 0.25},
        adapter={"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        training={
            "max_steps": 4,
            "batch_size": 2,
            "max_length": 128,
            "eval_every": 2,
            "save_every": 4,
            "lr": 1e-3,
            "tensorboard": False,
            "log_every": 1,
            "eval_at_start": True,
        },
        dpo={"kl_prompts": 2, "kl_max_new_tokens": 4},
        **extra,
    )
    return train(load_config(recipe, []), progress=False)


def test_sft_report_charts_every_series_and_shows_what_ran(sft_recipe):
    recipe, out = sft_recipe
    train(load_config(recipe, []), progress=False)
    html = (out / "report.html").read_text()
    logged = {k for m in read_metrics(out / "metrics.jsonl") for k in m if k != "step"}
    assert {"loss", "eval_loss", "lr", "grad_norm", "padding", "tokens_per_s", "step_seconds"} <= logged
    assert logged <= _series_in_charts(html)  # every series has a line in some chart
    for svg in _svgs(html):  # each chart has axis titles ("step" on x)
        assert "step" in [t.text for t in svg.iter("text")]
    assert html.startswith("<!DOCTYPE html>") and not re.search(r"<script|https?:|url\(|@import|<link", html)
    assert 'class="grid"' in html
    run = json.loads((out / "run.json").read_text())
    assert re.search(r"eval_loss \d\.\d+ at step \d", html) and best_eval_text(run) in html
    assert "{'eval_loss'" not in html and "None" not in html
    # the config of what ran: no other method's section, a table not a dict dump
    assert "dpo.beta" not in html and "rm.use_margin" not in html and "adapter.r" in html
    assert "adapter.num_virtual_tokens" not in html and "<pre>{" not in html
    assert "Data gates off for this run" in html


def test_used_config_keeps_only_what_the_method_uses(sft_recipe):
    recipe, _ = sft_recipe
    sft = to_dict(load_config(recipe, []))
    used = used_config(sft)
    assert "dpo" not in used and "rm" not in used and used["adapter"]["r"] == 4
    assert "num_virtual_tokens" not in used["adapter"] and "epochs" not in used["training"]  # max_steps is set
    assert "data_gates_config" not in used  # gates off
    full = dict(sft, adapter=None)
    assert "adapter" not in used_config(full)
    prompt = dict(sft, adapter=dict(sft["adapter"], type="prompt"))
    assert (
        set(used_config(prompt)["adapter"]) >= {"type", "num_virtual_tokens"}
        and "r" not in used_config(prompt)["adapter"]
    )
    dpo = dict(sft, method="dpo")
    assert "dpo" in used_config(dpo) and "rm" not in used_config(dpo) and "simpo_gamma" not in used_config(dpo)["dpo"]


def test_chart_grouping_pairs_eval_with_train():
    assert chart_key("eval_loss") == chart_key("loss") == "loss"
    assert chart_key("eval_chosen_reward") == chart_key("rejected_reward") == "rewards"


def test_dpo_report_shows_pair_numbers_gates_and_demo_answers(tmp_path, tiny_model_dir):
    out = _dpo_run(tmp_path, tiny_model_dir, data_gates=True, proceed_on_gate_failure=True)
    html = (out / "report.html").read_text()
    logged = {k for m in read_metrics(out / "metrics.jsonl") for k in m if k != "step"}
    assert {"margin", "eval_margin", "chosen_reward", "eval_kl", "accuracy", "eval_accuracy"} <= logged
    assert logged <= _series_in_charts(html)
    # the data section: pairs, dropped, tokens (not "records None")
    data = json.loads((out / "run.json").read_text())["data"]
    assert data["train_pairs"] == 18 and "None" not in html
    assert re.search(r"training pairs</td><td class=\"num\">18<", html)
    assert "pairs dropped" in html and "training tokens" in html
    # gates: a verdict, every gate, and a link to the full data report
    assert 'href="data_report.html"' in html and (out / "data_report.html").is_file()
    assert "chosen_longer_share" in html and "rm.use_margin" not in html and "dpo.beta" in html
    # the demo's answers, re-rendered, escaped
    (out / "demo.json").write_text(
        json.dumps(
            {
                "eval_accuracy": [[0, 0.5], [4, 1.0]],
                "rows": [{"prompt": "What is 3 plus 3?", "before": "maybe <b>7</b>", "after": "Answer: 6."}],
            }
        )
    )
    write_run_report(out)
    html = render_run_report(out)
    assert "Answers before and after" in html and "maybe &lt;b&gt;7&lt;/b&gt;" in html and "Answer: 6." in html


def test_tokens_per_s_excludes_evaluation_time(sft_recipe, monkeypatch):
    """Evaluations at steps 2 and 4 that take 1000 s on the loop's clock (a fake clock: real time plus 1000 s
    per evaluation, so the check is about what is counted, not about how fast this machine is): with one
    step per logging window, elapsed = tokens / tokens_per_s and step_seconds must stay far below 1000 s."""
    recipe, out = sft_recipe
    real_evaluate, real_time = loop.evaluate, time.time
    offset = [0.0]

    def slow_evaluate(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        offset[0] += 1000.0
        return result

    monkeypatch.setattr(loop, "evaluate", slow_evaluate)
    monkeypatch.setattr(loop.time, "time", lambda: real_time() + offset[0])
    train(load_config(recipe, []), progress=False)
    metrics = read_metrics(out / "metrics.jsonl")
    evals = [m for m in metrics if "eval_loss" in m]
    assert [m["step"] for m in evals] == [2, 4]
    for m in metrics:
        assert m["tokens"] / m["tokens_per_s"] < 100, m
        assert 0 < m["step_seconds"] < 100, m
