"""Fixtures shared by the unit tests' modules (module-scoped: each module gets its own copy, as
when they were defined in each file); they apply to every folder below.

Layout: ``tests/unit`` mirrors the package. A test module lives in ``tests/unit/<folder>/`` for the
``satimp_lab/<folder>/`` whose code most of its tests call (``data``, ``models``, ``evaluation``,
``unlearning``, ``experiments``, ``ui``, ``studies``, ``mainjob``). It stays here, in ``tests/unit``,
when it tests a top-level module (``store``, ``tiers``, ``__init__``) or checks across folders or
outside the package (lint, environment, docs and README, ``benchmarks/``, shapes, input validation).
Data shared by several folders stays here too (``main_run_specs.json``). No ``__init__.py``: keep
test module names unique across ``tests``. A module of a folder not named ``test_*`` is a helper its
test modules import by name (pytest puts a test module's folder on ``sys.path``):
``evaluation/scripted_lm.py``, the scripted language model of the metric tests."""

from __future__ import annotations

import pytest

from satimp_lab.data.benchmark import BenchmarkConfig, load_benchmark
from satimp_lab.models.build import benchmark_texts, train_tokenizer


@pytest.fixture(scope="module")
def published_bench():
    """The published benchmark (``data/synthetic``) as :func:`satimp_lab.data.benchmark.load_benchmark`
    reads it: every split."""
    return load_benchmark()


@pytest.fixture(scope="module")
def bench():
    """A small generated benchmark for the metric tests: 20 authors x 1 QA pair, 3 holdout authors,
    4 world facts, 2 perturbed answers per question; splits full, forget10, retain90, holdout,
    world_facts."""
    return load_benchmark(config=BenchmarkConfig(n_authors=20, qa_per_author=1, n_holdout_authors=3,
                                                 n_world_facts=4, n_perturbed=2),
                          splits=["full", "forget10", "retain90", "holdout", "world_facts"])


@pytest.fixture(scope="module")
def tok(bench):
    """A 300-token BPE tokenizer trained on :func:`bench`'s texts."""
    texts = benchmark_texts([bench[s].to_list() for s in ("full", "holdout", "world_facts")])
    return train_tokenizer(texts, vocab_size=300)
