"""Under gradient accumulation a step's log covers all its micro-batches, not the last one."""

import numpy as np
import pytest

from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import UnlearnConfig


def test_a_step_logs_the_mean_over_its_accumulated_micro_batches(micro_target, small_benchmark):
    n_rows = len(small_benchmark["forget10"])
    config = UnlearnConfig(method="satimp", forget_split="forget10", steps=1, batch_size=1,
                           gradient_accumulation_steps=n_rows, eval_every=None, lr=1e-3)
    run = unlearn(micro_target, small_benchmark, config, progress=False)
    trace = run.trace_frame
    assert trace["example_id"].nunique() == n_rows >= 4  # one step over every forget row
    # each micro-batch is one row: its forget loss is the token mean of weight * logp
    per_micro = trace.groupby("example_id").apply(lambda t: (t.weight * t.logp).sum() / len(t))
    row = run.history.dropna(subset=["lr"]).iloc[0]
    assert row["forget_loss"] == pytest.approx(per_micro.mean(), rel=1e-5)
    assert row["loss"] == pytest.approx(per_micro.mean(), rel=1e-5)
    assert row["mean_weight"] == pytest.approx(trace.weight.mean(), rel=1e-5)
    assert abs(per_micro.iloc[-1] - per_micro.mean()) > 1e-3  # the last micro-batch alone differs


def test_retain_loss_is_the_mean_over_micro_batches(micro_target, small_benchmark):
    """GD: the logged retain loss of one accumulated step equals the mean of the per-micro-batch
    retain losses, which the one-micro-batch-per-step run of the same stream logs one by one."""
    n_rows = len(small_benchmark["forget10"])
    common = dict(method="gd", forget_split="forget10", batch_size=1, eval_every=None, lr=1e-30)
    accumulated = unlearn(micro_target, small_benchmark,
                          UnlearnConfig(steps=1, gradient_accumulation_steps=n_rows, **common), progress=False)
    # lr 1e-30: the model does not move, so separate steps see the same retain micro-batches
    separate = unlearn(micro_target, small_benchmark, UnlearnConfig(steps=n_rows, **common), progress=False)
    steps = separate.history.dropna(subset=["lr"])
    row = accumulated.history.dropna(subset=["lr"]).iloc[0]
    assert row["retain_loss"] == pytest.approx(steps["retain_loss"].mean(), rel=1e-5)
    assert row["loss"] == pytest.approx(steps["loss"].mean(), rel=1e-5)
    assert not np.isclose(row["retain_loss"], steps["retain_loss"].iloc[-1], rtol=1e-4)
