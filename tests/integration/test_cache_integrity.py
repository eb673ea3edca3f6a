"""No partial or changed cache entry is ever served (issue: cache integrity): a run entry with a
missing, truncated or shortened file and a model entry whose weights were overwritten raise
``CacheError`` naming the entry and the file. Each test restores what it damaged: the session
cache is shared with other test files."""

from __future__ import annotations

import json
import shutil

import pytest

from satimp_lab import store
from satimp_lab.experiments import Lab
from satimp_lab.models.cache import get_model
from satimp_lab.store import CacheError
from satimp_lab.unlearning.tracing import TokenTrace


@pytest.fixture(scope="module")
def lab(session_cache):
    return Lab("fast", progress=False)


@pytest.fixture
def run_entry(lab):
    """A cached run only these tests use (removed afterwards)."""
    run = lab.run("simimp", seed=0)
    yield run
    shutil.rmtree(run.folder, ignore_errors=True)


def _truncate(path, keep_bytes):
    path.write_bytes(path.read_bytes()[:keep_bytes])


@pytest.mark.parametrize("damage, name", [
    (lambda f: (f / "trace.npz").unlink(), "trace.npz: missing"),
    (lambda f: _truncate(f / "trace.npz", 200), "trace.npz: 200 bytes"),
    (lambda f: (f / "history.csv").write_text(  # the header and the first 4 rows of 9
        "\n".join((f / "history.csv").read_text().splitlines()[:5]) + "\n"), "history.csv: [0-9]+ bytes"),
    (lambda f: (f / "summary.json").unlink(), "summary.json: missing"),
])
def test_damaged_run_entry_is_never_served(lab, run_entry, damage, name):
    damage(run_entry.folder)
    with pytest.raises(CacheError, match=f"corrupt cached run {run_entry.folder}: {name}"):
        lab.run("simimp", seed=0)


def test_trace_read_later_is_verified_too(lab, run_entry):
    assert len(run_entry.trace_frame) > 0
    (run_entry.folder / "trace.npz").unlink()
    with pytest.raises(CacheError, match="trace.npz: missing"):
        run_entry.trace_frame


def test_truncated_trace_file_names_its_path(tmp_path, lab, run_entry):
    path = tmp_path / "trace.npz"
    path.write_bytes((run_entry.folder / "trace.npz").read_bytes()[:200])
    with pytest.raises(ValueError, match=f"cannot read trace file {path}"):  # was a bare BadZipFile
        TokenTrace.load(path)


def test_history_is_the_one_written(lab, run_entry):
    again = lab.run("simimp", seed=0)
    assert again.history.equals(run_entry.history) and len(again.history) == len(run_entry.history)
    assert json.loads((run_entry.folder / store.MANIFEST).read_text())["files"].keys() == {
        "history.csv", "run.json", "summary.json", "trace.npz"}


def test_model_weights_overwritten_in_the_middle_are_not_served(small_benchmark, micro_target):
    weights = micro_target.path / "model.safetensors"
    original = weights.read_bytes()
    middle = len(original) // 2
    try:
        weights.write_bytes(original[:middle] + bytes(64) + original[middle + 64:])  # same size
        with pytest.raises(CacheError, match=f"corrupt cache entry {micro_target.path}: "
                                             f"model.safetensors: content differs"):
            get_model(small_benchmark, "target", tier="micro", progress=False, shipped=False)
    finally:
        weights.write_bytes(original)
    assert get_model(small_benchmark, "target", tier="micro", progress=False, shipped=False).from_cache


def test_model_entry_without_manifest_is_named(small_benchmark, micro_target):
    manifest = micro_target.path / store.MANIFEST
    original = manifest.read_bytes()
    try:
        manifest.unlink()
        with pytest.raises(CacheError, match="manifest.json: missing"):
            get_model(small_benchmark, "target", tier="micro", progress=False, shipped=False)
    finally:
        manifest.write_bytes(original)
