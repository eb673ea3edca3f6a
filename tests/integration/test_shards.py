"""A sweep shared among the processes of a launch (``experiments.shards.Shards``): every run computed
by exactly one process, every process ends with every run, a failed run reported to the others."""

import shutil
import threading

import pandas as pd
import pytest

from satimp_lab.errors import InputError
from satimp_lab.experiments import Lab, SweepError
from satimp_lab.experiments.shards import LAUNCHER_VARIABLES, Shards, failure_note, note_failure

SPECS = [{"method": "ga"}, {"method": "simsat"}, {"method": "satimp"}]


def test_from_env_reads_the_launcher_variables_and_names_a_bad_one():
    assert Shards.from_env({}) == Shards(0, 1, 0)
    assert Shards.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Shards(3, 4, 1)
    with pytest.raises(InputError, match="WORLD_SIZE"):
        Shards.from_env({"WORLD_SIZE": "two"})
    with pytest.raises(InputError, match="rank"):
        Shards(4, 4)


def test_every_run_has_exactly_one_owner():
    owners = [[k for k in range(10) if Shards(r, 3).owns(k)] for r in range(3)]
    assert sorted(sum(owners, [])) == list(range(10)) and all(owners)


def test_detach_removes_the_launcher_variables(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.setenv(name, "1")
    Shards(0, 2).detach()
    import os

    assert not any(name in os.environ for name in LAUNCHER_VARIABLES)


def test_wait_for_stops_at_the_owners_failure_note(tmp_path):
    folder = tmp_path / "runs" / "ga-0123"
    note_failure(folder, ValueError("loss\nbecame nan"))
    with pytest.raises(RuntimeError, match="ValueError: loss became nan"):
        Shards(1, 2, poll_seconds=0.01).wait_for(lambda: None, folder, "run ga")
    assert failure_note(folder).exists()
    calls = iter([None, None, "done"])
    failure_note(folder).unlink()
    assert Shards(1, 2, poll_seconds=0.01).wait_for(lambda: next(calls), folder, "run ga") == "done"


@pytest.fixture
def shared_cache(session_cache, micro_target, micro_retain, tmp_path, monkeypatch):
    """A run cache of its own holding the session's trained models."""
    shutil.copytree(session_cache / "models", tmp_path / "cache" / "models")
    monkeypatch.setenv("SATIMP_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _two_processes(monkeypatch, specs):
    """Two "processes" (threads with a Lab each) sweeping ``specs`` as ranks 0 and 1 of 2;
    returns (their sweeps or errors, {run folder: [ranks that computed it]})."""
    computed: dict = {}
    original = Lab._run_entry

    def recording(self, entry):
        computed.setdefault(entry.folder.name, []).append(threading.current_thread().name)
        return original(self, entry)

    monkeypatch.setattr(Lab, "_run_entry", recording)
    out = {}

    def rank(r):
        try:
            out[r] = Lab("fast", progress=False).sweep(specs, seeds=(0,), executor=Shards(r, 2, poll_seconds=0.05))
        except Exception as err:  # noqa: BLE001 -- the test looks at it
            out[r] = err

    threads = [threading.Thread(target=rank, args=(r,), name=f"rank{r}") for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return out, computed


def test_two_ranks_compute_each_run_once_and_both_get_every_run(shared_cache, monkeypatch):
    out, computed = _two_processes(monkeypatch, SPECS)
    assert all(len(ranks) == 1 for ranks in computed.values()) and len(computed) == len(SPECS), computed
    assert {r for ranks in computed.values() for r in ranks} == {"rank0", "rank1"}
    pd.testing.assert_frame_equal(out[0].summary, out[1].summary, check_exact=True)
    assert list(out[0].summary["label"]) == ["ga", "simsat", "satimp"]


def test_a_failed_run_is_reported_by_the_rank_waiting_for_it(shared_cache, monkeypatch):
    original = Lab._run_entry

    def failing(self, entry):
        if entry.config.method == "simsat":
            raise ValueError("planted failure")
        return original(self, entry)

    monkeypatch.setattr(Lab, "_run_entry", failing)
    out, _ = _two_processes(monkeypatch, SPECS)
    for r in (0, 1):  # the owner and the waiter both name the run
        assert isinstance(out[r], SweepError) and "simsat" in str(out[r]) and "planted failure" in str(out[r])
