"""User errors from the command line: one line on stderr, exit status 2, before any work."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from satimp_lab.data.benchmark import BenchmarkConfig, write_benchmark
from satimp_lab.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("data"),
                           BenchmarkConfig(n_authors=20, qa_per_author=2, n_holdout_authors=4, n_world_facts=10))


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SATIMP_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _one_line_error(capsys, argv, *named):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in named:
        assert word in err, (word, err)
    return err


@pytest.mark.parametrize("flags, named", [
    (["--steps", "-1"], ["steps", "-1"]), (["--steps", "0"], ["steps", "0"]),
    (["--epochs", "0"], ["epochs", "0"]), (["--epochs", "-2"], ["epochs", "-2"]),
    (["--epochs", "nan"], ["epochs", "nan"]), (["--lr", "inf"], ["lr", "inf"]),
    (["--batch-size", "0"], ["batch_size", "0"]), (["--method", "magic"], ["magic"]),
    (["--param", "beta_sat=-1"], ["beta_sat", "-1"]), (["--param", "beta_sat"], ["NAME=VALUE"]),
    (["--forget-split", "forget03"], ["forget03"]), (["--tier", "huge"], ["huge"]),
])
def test_unlearn_bad_input_is_one_line_exit_2_and_no_work(capsys, cache, data_dir, flags, named):
    _one_line_error(capsys, ["unlearn", "--tier", "micro", "--data-dir", str(data_dir), *flags], *named)
    assert not (cache / "models").exists()  # no target was trained


@pytest.mark.parametrize("flags, named", [
    (["--forget-split", "forget03"], ["forget03"]), (["--tier", "huge"], ["huge"]),
])
def test_train_checks_names_before_training(capsys, cache, data_dir, flags, named):
    _one_line_error(capsys, ["train", "--tier", "micro", "--data-dir", str(data_dir), *flags], *named)
    assert not (cache / "models").exists()


@pytest.mark.parametrize("flags, named", [
    (["--forget-split", "forget10x"], ["forget10x", "'muse'", "valid: ['forget']"]),
    (["--benchmark", "tofu"], ["--family muse", "--benchmark tofu"]),
])
def test_train_family_muse_checks_its_names_before_training(capsys, cache, flags, named):
    _one_line_error(capsys, ["train", "--tier", "micro", "--family", "muse", *flags], *named)
    assert not (cache / "models").exists()


def test_train_family_muse_loads_the_pinned_models(capsys, cache):
    assert main(["train", "--tier", "micro", "--family", "muse"]) == 0
    out = capsys.readouterr().out
    assert "shipped, loaded" in out and "micro/seed0/muse-target" in out and "micro/seed0/muse-retain-forget" in out
    assert not (cache / "models").exists()


def test_reproduce_checks_the_tier_before_touching_the_output(capsys, cache, tmp_path):
    out = tmp_path / "report"
    _one_line_error(capsys, ["reproduce", "--fast", "--tier", "huge", "--out", str(out)], "huge")
    assert not out.exists()


@pytest.mark.parametrize("flags, env, named", [
    (["--workers", "0"], None, ["workers", "0"]), ([], "two", ["SATIMP_LAB_WORKERS", "two"]),
    ([], "0", ["SATIMP_LAB_WORKERS", "'0'"]),
])
def test_reproduce_checks_the_workers_before_touching_the_output(capsys, cache, tmp_path, monkeypatch,
                                                                 flags, env, named):
    if env is not None:
        monkeypatch.setenv("SATIMP_LAB_WORKERS", env)
    out = tmp_path / "report"
    _one_line_error(capsys, ["reproduce", "--fast", "--out", str(out), *flags], *named)
    assert not out.exists()


def test_reproduce_with_an_unknown_notebook_is_one_line_and_keeps_the_old_report(capsys, cache, tmp_path):
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "old.png").write_bytes(b"an earlier report's figure")
    _one_line_error(capsys, ["reproduce", "--fast", "--only", "99", "--out", str(out)], "99", "01_tour")
    assert (out / "figures" / "old.png").exists()


def test_a_malformed_data_file_is_one_line(capsys, cache, data_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(data_dir, bad)
    (bad / "splits.json").write_text("{not json")
    _one_line_error(capsys, ["train", "--tier", "micro", "--data-dir", str(bad)], "splits.json:1")
    _one_line_error(capsys, ["train", "--tier", "micro", "--data-dir", str(tmp_path / "none")],
                    "benchmark file missing")


def test_exit_status_2_in_a_real_process_and_debug_shows_the_traceback(cache):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SATIMP_LAB_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "satimp_lab.cli", "unlearn", "--tier", "micro", "--epochs", "nan"]
    plain = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert plain.returncode == 2 and len(plain.stderr.strip().splitlines()) == 1, plain.stderr
    assert "epochs" in plain.stderr
    debug = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "InputError" in debug.stderr


def test_a_data_dir_without_a_split_the_run_needs_is_one_line(capsys, cache, data_dir, tmp_path):
    import json
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(data_dir, bad)
    (bad / "splits.json").write_text(json.dumps({"forget10": [18, 19]}))  # no forget05
    for command in ("train", "unlearn"):  # was: the target trained, then the retain split failed
        _one_line_error(capsys, [command, "--tier", "micro", "--data-dir", str(bad), "--forget-split", "forget05"],
                        "forget05", "splits.json")
        assert not (cache / "models").exists()


def test_an_unknown_benchmark_is_one_line_naming_the_valid_ones(capsys):
    err = _one_line_error(capsys, ["bench", "nope"], "'nope'", "run_breakdown", "sweep_throughput")
    assert err.startswith("satimp-lab bench: error:")
