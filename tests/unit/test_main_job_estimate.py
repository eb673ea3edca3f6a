"""benchmarks/main_job_estimate.py: runs classified by what the notebooks show, prices fitted to
the recorded seconds, schedules replayed on each run's own history."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def estimate():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("main_job_estimate", ROOT / "benchmarks" / "main_job_estimate.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _entry(root: Path, name: str, method: str, params: dict, final: bool, seconds: float, retain: list[float]):
    folder = root / "runs" / name
    folder.mkdir(parents=True)
    steps = list(range(0, 2 * len(retain), 2))
    pd.DataFrame({"step": steps, "retain_es": retain, "forget_es": np.linspace(0.9, 0.1, len(retain))}).to_csv(
        folder / "history.csv", index=False)
    key = json.dumps({"run": {"method": method, "method_params": params}})
    (folder / "summary.json").write_text(json.dumps({"key": key, "seconds": seconds,
                                                     "final_metrics": ["es"] if final else []}))


def test_runs_are_classified_and_priced(estimate, tmp_path):
    falling = [1.0, 0.98, 0.95, 0.85, 0.7, 0.6]  # crosses 0.9 between steps 4 and 6 (of 10)
    _entry(tmp_path, "a", "simsat", {}, True, 4.0, falling)                                  # curves
    _entry(tmp_path, "b", "simsat", {"beta_sat": 2.0}, True, 4.0, falling)                   # tables
    _entry(tmp_path, "c", "satimp", {"beta_sat": 2.0, "beta_imp": 1.0}, True, 4.0, falling)  # lean grid cell
    _entry(tmp_path, "d", "simsat", {}, False, 2.0, falling)                                 # another target
    runs = estimate.read_runs(tmp_path).set_index("run")
    assert runs["kind"].to_dict() == {"a": "curves", "b": "table", "c": "lean", "d": "curves"}
    assert runs["own"].to_dict() == {"a": True, "b": True, "c": True, "d": False}
    assert (runs["steps"] == 10).all() and (runs["evals"] == 5).all()
    scale, final = estimate.fit_prices(runs, 0.04, 0.1)
    # 2.0 s for 10 steps and 5 evaluations (0.9 at the profiled prices), 2.0 s more with final metrics
    assert scale == pytest.approx(2.0 / 0.9) and final == pytest.approx(2.0)
    chosen, stop = estimate.searched(runs.loc["a", "ev"], 2)
    assert stop == 6 and len(chosen) - 1 == 3  # evaluated every 2 steps up to the bracket's end
