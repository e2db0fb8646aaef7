"""What a metric's name alone says: its name without the suite, and which direction is better."""

from alignline.evals.metrics import HIGHER_IS_BETTER, metric_name


def test_metric_name_strips_the_suite():
    assert metric_name("arithmetic/accuracy") == "accuracy"
    assert metric_name("canary_leakage") == "canary_leakage"  # a bare name is returned as is
    assert metric_name("a/b/ece") == "ece"  # only the last part names the metric


def test_direction_of_the_metrics_a_gate_reads():
    assert HIGHER_IS_BETTER["accuracy"] is True and HIGHER_IS_BETTER["win_rate"] is True
    assert HIGHER_IS_BETTER["perplexity"] is False and HIGHER_IS_BETTER["attack_success_rate"] is False
