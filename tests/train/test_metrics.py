"""metrics.jsonl after a kill: a torn last line is dropped with a warning; damage elsewhere is named."""

from __future__ import annotations

import pytest

from alignline.errors import DataError
from alignline.train.metrics import MetricsLog, read_metrics, truncate_after


def test_torn_last_line_is_dropped_with_a_warning(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')
    assert [m["step"] for m in read_metrics(path)] == [1, 2]
    err = capsys.readouterr().err
    assert err == f"alignline: warning: {path}: line 3 is torn (the run was stopped while writing it); dropped\n"
    truncate_after(path, 1)
    assert path.read_text() == '{"step": 1, "loss": 2.0}\n'


def test_resume_log_starts_after_a_torn_line(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"st')
    log = MetricsLog(tmp_path, resume_step=2, tensorboard=False)
    log.log({"step": 3})
    assert [m["step"] for m in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    assert "line 3 is torn" in capsys.readouterr().err


def test_damage_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\ngarbage\n{"step": 3}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl, line 2: not a metrics record"):
        read_metrics(path)
