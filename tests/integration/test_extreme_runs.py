"""A run that pushes the forget NLLs to thousands of nats completes, and its metrics are finite."""

import math

from satimp_lab.experiments import Lab


def test_ga_at_a_huge_learning_rate_gives_finite_final_metrics(session_cache):
    lab = Lab("fast", progress=False)
    result = lab.run("ga", lr=0.1, steps=80)  # was ZeroDivisionError in the truth ratio
    assert result.status == "completed"
    values = {k: v for k, v in result.summary.items() if k.startswith("eval_")}
    assert {"eval_forget_truth_ratio", "eval_forget_quality", "eval_model_utility"} <= set(values)
    assert all(math.isfinite(v) for v in values.values()), values
    assert values["eval_forget_truth_ratio"] < 1e-6  # min(R, 1/R) of ratios far from 1
