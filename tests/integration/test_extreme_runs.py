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


def test_a_run_that_diverged_before_its_first_evaluation_reports_no_final_values(session_cache):
    import warnings

    lab = Lab("fast", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = lab.run("ga", lr=1e3, steps=20, eval_every=1000)
    assert result.status == "diverged"
    assert result.history["forget_es"].dropna().index.size == 1  # only the step-0 evaluation
    # was: final_forget_es etc. = the step-0 values, as if the run had changed nothing
    assert not any(k.startswith("final_") for k in result.summary), result.summary
