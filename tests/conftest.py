"""Shared fixtures. Every test gets its own model cache so nothing leaks between runs."""

from __future__ import annotations

import os

import pytest

# Torch work on 2 cores: keep one process, two threads, and no tokenizer worker pool.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """A model cache shared by the tests of one session (trained models are reused)."""
    path = tmp_path_factory.mktemp("satimp_cache")
    old = os.environ.get("SATIMP_LAB_CACHE")
    os.environ["SATIMP_LAB_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SATIMP_LAB_CACHE", None)
    else:
        os.environ["SATIMP_LAB_CACHE"] = old


@pytest.fixture(scope="session")
def small_benchmark():
    """20 authors x 2 QA pairs (+ holdout and world facts): trains a micro model in seconds."""
    from satimp_lab.data.benchmark import BenchmarkConfig, load_benchmark

    return load_benchmark(config=BenchmarkConfig(n_authors=20, qa_per_author=2, n_holdout_authors=4,
                                                 n_world_facts=10))


@pytest.fixture(scope="session")
def micro_target(small_benchmark, session_cache):
    """A micro Llama memorised on the small benchmark (cached for the session)."""
    from satimp_lab.models.cache import get_model

    # shipped=False: trained here (the shipped micro models would serve this configuration)
    return get_model(small_benchmark, "target", forget_split="forget10", tier="micro", progress=False,
                     shipped=False)


@pytest.fixture(scope="session")
def micro_retain(small_benchmark, session_cache):
    from satimp_lab.models.cache import get_model

    return get_model(small_benchmark, "retain", forget_split="forget10", tier="micro", progress=False,
                     shipped=False)
