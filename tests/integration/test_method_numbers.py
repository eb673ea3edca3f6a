"""Every registered method's numbers are those of main before the Method was resolved once and
handed down and the reference passes were declared by the methods (histories frozen in
main_method_histories.json; bit-identical on the machine they were made on, compared here to
float32 precision so that another CPU's last bits do not fail it: see the bound below)."""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from satimp_lab.experiments import Lab, RUN_THREADS, torch_threads
from satimp_lab.unlearning.objectives import METHODS

MAIN = json.loads(Path(__file__).with_name("main_method_histories.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fast_lab(session_cache):
    """The fast setting's Lab on the shipped micro target; its runs skip the final metrics."""
    return Lab("fast", progress=False, final_metrics=())


def test_every_method_is_frozen():
    assert set(MAIN["histories"]) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_history_is_mains(method, fast_lab, tmp_path, monkeypatch):
    monkeypatch.setenv("SATIMP_LAB_CACHE", str(tmp_path))  # computed here, never read from a cache
    with torch_threads(RUN_THREADS):
        got = fast_lab.run(method, seed=0).history.reset_index(drop=True)
    want = pd.read_csv(io.StringIO(MAIN["histories"][method]))
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    # another CPU rounds the last float32 bits differently and 11 steps of training amplify them:
    # on an AMD EPYC the histories made on an Intel Xeon differ by at most 1.04e-6 (absolute; up
    # to 5e-5 relative on values near 0.02), so the bound is 1e-5 + 1e-5 x |value|; a change of
    # 2 % in SatImp's beta_sat or beta_imp, or 1 % in GA's learning rate, moves a history by 0.04
    np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-5, atol=1e-5,
                               equal_nan=True, err_msg=method)
