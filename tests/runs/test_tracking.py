"""`report_to: [tensorboard, mlflow]`: the recipe key, and a tiny run read back from MLflow's own store with
the real `mlflow` package (params, per-step metric history, tags, artifacts)."""

from __future__ import annotations

import json

import pytest

from alignline.config import RunConfig, load_config, report_targets
from alignline.errors import ConfigError
from alignline.evals.training import train
from alignline.runs import open_registry
from support import chat_records, write_jsonl, write_recipe


def test_report_to_and_training_tensorboard_combine(tmp_path):
    assert report_targets(RunConfig()) == ["tensorboard"]
    path = write_recipe(tmp_path / "r.yaml", report_to="mlflow")
    assert report_targets(load_config(path)) == ["mlflow"]  # the list, when set, is the whole list
    assert report_targets(load_config(path, ["training.tensorboard=false"])) == ["mlflow"]
    assert report_targets(load_config(None, ["training.tensorboard=false"])) == []
    both = write_recipe(tmp_path / "b.yaml", report_to=["tensorboard", "mlflow"])
    assert report_targets(load_config(both)) == ["tensorboard", "mlflow"]
    with pytest.raises(ConfigError, match="'report_to' and 'training.tensorboard'"):
        load_config(both, ["training.tensorboard=false"])
    with pytest.raises(ConfigError, match="report_to"):
        load_config(write_recipe(tmp_path / "w.yaml", report_to=["wandb"]))


def test_a_run_reported_to_mlflow_reads_back(tmp_path, tiny_model_dir, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow's default store: ./mlflow.db and ./mlruns in the working directory
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("ALIGNLINE_REGISTRY", f"sqlite:///{tmp_path / 'registry.db'}")
    data = write_jsonl(tmp_path / "train.jsonl", chat_records(16))
    recipe = write_recipe(
        tmp_path / "recipe.yaml",
        method="sft",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        report_to=["mlflow"],
        data={"train": str(data), "eval_fraction": 0.25},
        adapter={"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        training={"max_steps": 3, "batch_size": 2, "max_length": 96, "eval_every": 3, "lr": 1e-3, "threads": 1},
    )
    run_dir = train(load_config(recipe), progress=False)
    assert not (run_dir / "tensorboard").exists()  # report_to without tensorboard: none written

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("alignline")
    (run,) = client.search_runs([experiment.experiment_id])
    frame = mlflow.search_runs([experiment.experiment_id])  # the fluent API sees the same run
    assert list(frame["run_id"]) == [run.info.run_id]
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    params = run.data.params
    assert params["training.lr"] == "0.001" and params["method"] == "sft" and params["adapter.r"] == "4"
    assert params["model"] == str(tiny_model_dir) and params["report_to"] == '["mlflow"]'
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3]
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sorted(m.value for m in history) == sorted(r["loss"] for r in logged)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval_loss")] == [3]
    with open_registry() as reg:
        (entry,) = reg.list()
    assert run.data.tags["alignline.run_id"] == entry.id and entry.extra["mlflow"]["run_id"] == run.info.run_id
    assert "mlflow.source.git.commit" in run.data.tags or entry.git_commit is None
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"run.json", "report.html", "model_card"} <= artifacts
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model_card")] == ["model_card/README.md"]
    assert json.loads((run_dir / "mlflow.json").read_text())["run_id"] == run.info.run_id
