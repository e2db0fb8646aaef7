"""One data-report base (`DataReportBase`): consistent field names in code, run.json's historical keys on disk."""

from alignline.data.dataset import DataReport
from alignline.data.prompts import PromptReport
from alignline.methods.kto import UnpairedReport
from alignline.methods.pairs import PairReport


def test_every_report_shares_the_base_names():
    for report in (DataReport(), PairReport(), UnpairedReport(), PromptReport()):
        report.train_units, report.eval_units, report.dropped, report.truncated = 7, 2, 1, 3
        assert (report.train_units, report.eval_units, report.dropped, report.truncated) == (7, 2, 1, 3)


def test_run_json_keeps_each_kind_s_keys():
    pairs = PairReport(train_units=18, eval_units=2, dropped=1, truncated=3, train_tokens=900).as_json()
    assert pairs == {
        "sources": [],
        "train_pairs": 18,
        "eval_pairs": 2,
        "dropped_pairs": 1,
        "truncated_sequences": 3,
        "train_tokens": 900,
    }
    sft = DataReport(train_units=5, truncated=2, train_samples=4).as_json()
    assert (sft["train_examples"], sft["truncated_examples"], sft["train_samples"]) == (5, 2, 4)
    assert "train_units" not in sft and "truncated" not in sft
    kto = UnpairedReport(train_units=6, dropped=1, truncated=2, desirable=4, undesirable=2).as_json()
    assert (kto["train_examples"], kto["dropped"], kto["truncated_sequences"], kto["desirable"]) == (6, 1, 2, 4)


def test_prompt_report_leaves_out_what_it_does_not_measure():
    """Prompts are tokenized when sampled: no dropped / truncated / train_tokens written as 0."""
    assert PromptReport(train_units=12, eval_units=3).as_json() == {
        "sources": [],
        "train_prompts": 12,
        "eval_prompts": 3,
    }
