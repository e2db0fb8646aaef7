"""A failed gate's console line says what is wrong in words, with the first record to look at."""

from __future__ import annotations

from alignline.cli import main
from support import write_jsonl


def test_failed_gate_line_says_what_is_wrong(tmp_path, capsys):
    recs = [
        {
            "messages": [
                {"role": "user", "content": f"Question number {i} about topic {i * 7}?"},
                {"role": "assistant", "content": f"Answer {i * 3}."},
                {"role": "user", "content": f"And what about {i} more?"},
            ]
        }
        for i in range(40)
    ]
    path = write_jsonl(tmp_path / "train.jsonl", recs)
    assert main(["data", "check", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("FAIL  format_invalid_share"))
    assert line.endswith(
        f": 40 of 40 records have a structural problem (no final assistant turn 40); "
        f"first: {path}, line 1 (no final assistant turn)"
    )


def test_duplicates_in_words_in_the_training_error(tmp_path):
    from alignline.data.quality import failure_summary
    from alignline.data.quality.check import run_checks
    from alignline.data.quality.gates import load_gate_config

    recs = [
        {
            "messages": [
                {"role": "user", "content": f"Tell me about item {i} in the shop catalogue."},
                {"role": "assistant", "content": f"Item {i} is a thing we sell."},
            ]
        }
        for i in range(10)
    ]
    path = write_jsonl(tmp_path / "train.jsonl", recs * 2)
    summary = failure_summary(run_checks([str(path)], None, load_gate_config(), progress=False))
    assert summary.startswith(
        "duplicate_share = 0.5 (must be <= 0.02): 10 of 20 records are duplicates "
        f"(10 exact, 0 near); largest cluster: 2 copies of {path}, line 1"
    )


def test_model_flag_reports_tokens_not_characters(tmp_path, tiny_model_dir, capsys):
    recs = [
        {"messages": [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": "Hello."}]}
        for i in range(5)
    ]
    path = write_jsonl(tmp_path / "train.jsonl", recs)
    main(["data", "check", str(path), "--out", str(tmp_path / "r"), "--quiet", "--model", str(tiny_model_dir)])
    out = capsys.readouterr().out
    assert "characters" not in out and "lengths are in tokens; pass --max-length" in out
