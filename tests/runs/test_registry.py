"""The run registry: train, eval and gate runs recorded in SQLite (PostgreSQL against the real server), listed,
shown, compared, and a model walked back through two chained runs to its data; a broken registry breaks nothing."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from alignline.cli import main
from alignline.config import load_config
from alignline.evals.training import train
from alignline.runs import lineage, open_registry, record_run
from alignline.runs.store import Registry, RunEntry, registry_url
from support import chat_records, postgres_database, write_jsonl, write_recipe

TRAINING = {
    "max_steps": 2,
    "batch_size": 2,
    "max_length": 96,
    "eval_every": 2,
    "save_every": 2,
    "lr": 1e-3,
    "tensorboard": False,
    "threads": 1,
}


@pytest.fixture
def registry(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'reg' / 'registry.db'}"
    monkeypatch.setenv("ALIGNLINE_REGISTRY", url)
    monkeypatch.setenv("ALIGNLINE_CACHE", str(tmp_path / "cache"))
    return url


def recipe(tmp_path, name: str, model: str, data, adapter: bool = True, **training) -> str:
    return str(
        write_recipe(
            tmp_path / f"{name}.yaml",
            method="sft",
            model=model,
            output_dir=str(tmp_path / name),
            data_gates=False,
            data={"train": str(data), "eval_fraction": 0.25},
            **({"adapter": {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0}} if adapter else {}),
            training={**TRAINING, **training},
        )
    )


def test_a_train_run_is_recorded_with_what_made_it(tmp_path, tiny_model_dir, registry, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", chat_records(16))
    run_dir = train(load_config(recipe(tmp_path, "a", str(tiny_model_dir), data)), progress=False)
    with open_registry() as reg:
        (entry,) = reg.list()
    assert entry.kind == "train" and entry.status == "completed" and entry.run_dir == str(run_dir.resolve())
    assert entry.config["model"] == str(tiny_model_dir) and entry.parent_model == str(tiny_model_dir)
    assert entry.parent_run is None  # the tiny model is no run's output
    (source,) = [s for s in entry.data if s["path"] == str(data)]
    assert len(source["sha256"]) == 64
    assert entry.packages["torch"] and entry.packages["transformers"] and "vllm" in entry.packages
    assert "@" in entry.started_by["user"] and entry.started_by["command"]
    assert entry.metrics["steps"] == 2 and "loss" in entry.metrics and "eval_loss" in entry.metrics
    assert str((run_dir / "final").resolve()) in entry.artifacts
    assert entry.finished >= entry.started
    record = json.loads((run_dir / "run.json").read_text())
    assert record["registry"]["run_id"] == entry.id and record["status"] == "completed"

    # list --json: one JSON object per line (the contract); show by prefix and by directory
    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [entry.id]
    assert main(["runs", "show", entry.id[:6]]) == 0
    shown = capsys.readouterr().out
    assert entry.id in shown and str(data) in shown and source["sha256"] in shown
    assert main(["runs", "show", str(run_dir / "final")]) == 0
    assert entry.id in capsys.readouterr().out
    for verb in ("show", "lineage"):
        assert main(["runs", verb, "feedbeef"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no run 'feedbeef'" in err[0]


def test_two_chained_runs_compare_and_walk_back_to_their_data(tmp_path, tiny_model_dir, registry, capsys):
    first_data = write_jsonl(tmp_path / "first.jsonl", chat_records(16))
    second_data = write_jsonl(tmp_path / "second.jsonl", chat_records(12)[::-1])
    first = train(load_config(recipe(tmp_path, "ift", str(tiny_model_dir), first_data, adapter=False)), False)
    second = train(load_config(recipe(tmp_path, "domain", str(first / "final"), second_data, lr=5e-4)), False)
    with open_registry() as reg:
        b, a = reg.list(kind="train")
    assert (a.run_dir, b.run_dir) == (str(first.resolve()), str(second.resolve()))
    assert b.parent_run == a.id and b.parent_model == str(first / "final")

    walked = lineage(str(second / "final"), open_registry())
    assert [s["run"] for s in walked["stages"]] == [b.id, a.id] and walked["base_model"] == str(tiny_model_dir)
    hashes = [{s["path"]: s["sha256"] for s in stage["data"]} for stage in walked["stages"]]
    assert str(second_data) in hashes[0] and str(first_data) in hashes[1]
    assert main(["runs", "lineage", b.id[:8]]) == 0
    text = capsys.readouterr().out
    assert text.index(str(second_data)) < text.index(str(first_data)) and f"base model: {tiny_model_dir}" in text
    # without a registry, a path walks the run.json files alone
    on_disk = lineage(str(second / "final"), None)
    assert [s["run_dir"] for s in on_disk["stages"]] == [str(second.resolve()), str(first.resolve())]

    page = tmp_path / "compare.html"
    assert main(["runs", "compare", a.id, b.id, "--html", str(page)]) == 0
    text = capsys.readouterr().out
    assert "* " in text and "training.lr" in text and "adapter" in text
    html = page.read_text()
    assert html.count('class="diff"') >= 3 and "training.lr" in html and "0.0005" in html and "0.001" in html
    assert "<script" not in html and a.id[:12] in html and b.id[:12] in html


def test_eval_and_gate_runs_are_recorded(tmp_path, tiny_model_dir, registry, capsys):
    suite = tmp_path / "arith.jsonl"
    write_jsonl(suite, [{"prompt": f"{i}+{i}=", "answer": str(2 * i)} for i in range(3)])
    (tmp_path / "arith.yaml").write_text(yaml.safe_dump({"name": "arith", "kind": "accuracy", "data": "arith.jsonl"}))
    out = tmp_path / "eval"
    common = ["--backend", "hf", "--bootstrap", "50"]
    suite_args = ["--suite", str(tmp_path / "arith.yaml"), "--out", str(out)]
    assert main(["eval", "--model", str(tiny_model_dir), *suite_args, *common]) == 0
    gates = tmp_path / "gates.yaml"
    gates.write_text(yaml.safe_dump({"arith/accuracy": {"min": 2.0}}))
    assert main(["gate", str(out), "--baseline", str(out), "--gates", str(gates), "--out", str(tmp_path / "g")]) == 1
    capsys.readouterr()
    with open_registry() as reg:
        gate, ev = reg.list()
    assert ev.kind == "eval" and ev.status == "completed" and ev.parent_model == str(tiny_model_dir)
    assert ev.metrics[str(tiny_model_dir)]["arith/accuracy"] >= 0 and ev.data[0]["role"] == "suite"
    assert str((out / "results.json").resolve()) in ev.artifacts
    assert gate.kind == "gate" and gate.gates["passed"] is False and gate.metrics["failed_checks"] == 1
    assert gate.parent_model == str(tiny_model_dir) and {d["role"] for d in gate.data} == {"gates"}
    assert main(["runs", "list", "--kind", "gate", "--json"]) == 0
    assert [json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()] == ["gate"]


def test_a_broken_registry_does_not_break_the_run(tmp_path, tiny_model_dir, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    data = write_jsonl(tmp_path / "train.jsonl", chat_records(16))
    broken = f"sqlite:///{blocker / 'sub' / 'registry.db'}"  # a directory under a file: cannot be created
    assert main(["train", recipe(tmp_path, "a", str(tiny_model_dir), data), "--quiet", "--registry", broken]) == 0
    run_dir = tmp_path / "a"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and "run_id" not in record["registry"]
    assert "not recorded" in record["registry"]["error"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "registry" in line]
    assert len(warnings) == 1 and warnings[0].startswith("alignline: warning: run not recorded")
    # an unreachable server and an unknown scheme: None and a warning, never an exception
    assert record_run("eval", tmp_path, registry="postgresql://nobody@127.0.0.1:9/none") is None
    assert record_run("eval", tmp_path, registry="mysql://x/y") is None
    monkeypatch.setenv("ALIGNLINE_REGISTRY", "off")
    assert record_run("eval", tmp_path) is None and registry_url() is None


def test_a_failed_run_is_recorded_as_failed(tmp_path, tiny_model_dir, registry, monkeypatch):
    from alignline.train import loop

    def boom(run):
        raise RuntimeError("the machine caught fire")

    monkeypatch.setattr(loop, "run_steps", boom)
    data = write_jsonl(tmp_path / "train.jsonl", chat_records(16))
    with pytest.raises(RuntimeError):
        train(load_config(recipe(tmp_path, "a", str(tiny_model_dir), data)), progress=False)
    with open_registry() as reg:
        (entry,) = reg.list()
    assert entry.status == "failed" and "caught fire" in entry.error
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["status"] == "failed" and record["registry"]["run_id"] == entry.id


def test_prefixes_and_the_schema_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Registry(url) as reg:
        for i, run_id in enumerate(["abc1" + "0" * 28, "abc2" + "0" * 28, "ff" + "0" * 30]):
            reg.put(RunEntry(id=run_id, kind="eval", status="completed", started=time.time() + i))
        assert reg.get("ff").id.startswith("ff") and reg.get("abc1").id.startswith("abc1")
        assert reg.get("0") is None
        with pytest.raises(Exception, match="ambiguous"):
            reg.get("abc")
        reg.put(RunEntry(id="ff" + "0" * 30, kind="eval", status="failed", started=0.0))  # replaced, not added
        assert len(reg.list()) == 3 and reg.get("ff").status == "failed"
        with reg.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE registry_schema SET version = 99")
    with pytest.raises(Exception, match="schema version 99"):
        Registry(url)


def test_postgresql_registry(tmp_path):
    with postgres_database("alignline_runs") as url:
        run_id = record_run("eval", tmp_path, registry=url, metrics={"a/accuracy": 0.5}, config={"x": 1})
        assert run_id is not None
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with open_registry(plain) as reg:
            entry = reg.get(run_id[:8])
            assert entry.metrics == {"a/accuracy": 0.5} and entry.config == {"x": 1}
            assert [e.id for e in reg.list(kind="eval")] == [run_id]
            reg.engine.dispose()
