"""Evaluation reads what TOFU and open-unlearning read (docs/methods.md#real-tofu): on the Hub's
layout, forget metrics on ``forget10_perturbed``, retain metrics on ``retain_perturbed``, model
utility's 9 named components with real authors and world facts; the training configs
(``retain90``: question and answer only) are never read. Tiny random Llamas, seconds."""

from __future__ import annotations

import pytest
from scipy import stats

from satimp_lab.data.benchmark import BenchmarkConfig, load_benchmark
from satimp_lab.data.tofu_layout import write_tofu_layout
from satimp_lab.errors import InputError
from satimp_lab.evaluation.metrics import evaluate
from satimp_lab.evaluation.tofu import forget_quality, truth_ratio
from satimp_lab.models.build import benchmark_texts, build_tiny_model, train_tokenizer
from satimp_lab.tiers import ArchConfig

LAYOUT = BenchmarkConfig(n_authors=20, qa_per_author=2, n_holdout_authors=2, n_world_facts=6)
UTILITY_SPLITS = ("retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("tofu")
    write_tofu_layout(path, LAYOUT)
    return path


@pytest.fixture(scope="module")
def bench(folder):
    return load_benchmark("tofu", data_dir=folder)


@pytest.fixture(scope="module")
def tokenizer(bench):
    return train_tokenizer(benchmark_texts([bench["full"].to_list(), bench["real_authors_perturbed"].to_list(),
                                            bench["world_facts_perturbed"].to_list()]), 384)


def _llama(tokenizer, seed):
    return build_tiny_model(ArchConfig(n_layers=1, hidden_size=32, n_heads=2, intermediate_size=64,
                                       vocab_size=384, max_length=128), tokenizer, seed=seed).eval()


@pytest.fixture(scope="module")
def model(tokenizer):
    return _llama(tokenizer, seed=1)


def test_model_utility_has_tofus_nine_named_components(bench, model, tokenizer):
    assert all(r == [] for r in bench["retain90"]["perturbed_answer"])  # the Hub's retain90: q/a only
    table = evaluate(model, tokenizer, bench, "forget10", metrics=["model_utility", "mia_loss"],
                     max_new_tokens=4)
    results = table.attrs["details"].results
    label = "+".join(UTILITY_SPLITS)
    utility = results[("model_utility", label)]
    names = [f"{m}/{s}" for s in UTILITY_SPLITS for m in ("probability", "rouge", "truth_ratio")]
    assert sorted(utility.extra["components"]) == sorted(names) and utility.extra["n"] == 9
    for name, value in utility.extra["components"].items():  # each component is a row of the table
        metric, split = name.split("/")
        row = table[(table.metric == metric) & (table.split == split)]
        assert len(row) == 1 and row.value.iloc[0] == value
    assert utility.agg_value == pytest.approx(stats.hmean(list(utility.extra["components"].values())))
    assert set(table.split) == {*UTILITY_SPLITS, label, "forget10_perturbed_vs_holdout10"}
    assert table.set_index(["metric", "split"]).loc[("model_utility", label), "role"] == "utility"
    # real authors and world facts: normalised probability and the answer as the truth ratio's base
    for split in UTILITY_SPLITS[1:]:
        assert results[("probability", split)].extra["normalised"]
        assert results[("truth_ratio", split)].extra["base_answer_field"] == "answer"
    assert not results[("probability", "retain_perturbed")].extra["normalised"]
    assert results[("truth_ratio", "retain_perturbed")].extra["base_answer_field"] == "paraphrased_answer"


def test_forget_metrics_read_the_perturbed_config(bench, model, tokenizer):
    table = evaluate(model, tokenizer, bench, "forget10", metrics=["es", "truth_ratio"])
    assert set(table[table.role == "forget"].split) == {"forget10_perturbed"}
    assert set(table[table.role == "retain"].split) == {"retain_perturbed"}
    ids = table.attrs["details"].per_example.query("split == 'forget10_perturbed'").qa_id
    assert set(ids) == set(bench["forget10"]["qa_id"])  # the same rows as the training config


def test_a_row_without_perturbed_answers_names_split_row_and_field(bench, model, tokenizer):
    broken = dict(bench)
    broken["retain_perturbed"] = bench["retain_perturbed"].map(
        lambda r, i: {"perturbed_answer": [] if i == 1 else r["perturbed_answer"]}, with_indices=True)
    with pytest.raises(InputError, match=r"split 'retain_perturbed' row 1 \(qa_id \d+\): field 'perturbed_answer'"):
        evaluate(model, tokenizer, broken, "forget10", metrics=["truth_ratio"])
    # the synthetic benchmark names its split the same way
    synthetic = load_benchmark(splits=["forget10", "retain90", "world_facts"], config=LAYOUT)
    synthetic["retain90"] = synthetic["retain90"].map(lambda r: {"perturbed_answer": []})
    with pytest.raises(InputError, match=r"split 'retain90' row 0 .*field 'perturbed_answer'"):
        evaluate(model, tokenizer, synthetic, "forget10", metrics=["truth_ratio"])


def test_forget_quality_pairs_rows_by_qa_id_across_models(bench, folder, model, tokenizer, tmp_path):
    with pytest.raises(InputError, match=r"retain_truth_ratios.*get_model\(benchmark, 'retain', 'forget10'.*"
                                         r"benchmark\['forget10_perturbed'\]"):
        evaluate(model, tokenizer, bench, "forget10", metrics=["forget_quality"])
    retain = _llama(tokenizer, seed=2)
    # the retain model read from another load (a folder without full.json), in reverse row order
    (tmp_path / "forget10_perturbed.json").write_bytes((folder / "forget10_perturbed.json").read_bytes())
    (tmp_path / "full.json").write_bytes((folder / "full.json").read_bytes())
    other = load_benchmark("tofu", data_dir=tmp_path)["forget10_perturbed"]
    reversed_rows = other.select(range(len(other) - 1, -1, -1))
    retain_tr = truth_ratio(retain, tokenizer, reversed_rows, kind="forget")
    table = evaluate(model, tokenizer, bench, "forget10", metrics=["forget_quality", "truth_ratio"],
                     retain_truth_ratios=retain_tr)
    results = table.attrs["details"].results
    fq = results[("forget_quality", "forget10_perturbed")]
    in_order = truth_ratio(retain, tokenizer, bench["forget10_perturbed"], kind="forget")
    assert fq.agg_value == forget_quality(results[("truth_ratio", "forget10_perturbed")], in_order).agg_value
    assert fq.extra["n_unlearned"] == fq.extra["n_retain"] == len(bench["forget10_perturbed"])
    # a retain sample of other rows cannot be paired
    with pytest.raises(ValueError, match="lack qa_id"):
        forget_quality(results[("truth_ratio", "forget10_perturbed")],
                       truth_ratio(retain, tokenizer, bench["retain_perturbed"], kind="forget"))


def test_the_synthetic_benchmark_keeps_its_six_components(model, tokenizer):
    synthetic = load_benchmark(splits=["forget10", "retain90", "world_facts"], config=LAYOUT)
    table = evaluate(model, tokenizer, synthetic, "forget10", metrics=["model_utility"], max_new_tokens=2)
    utility = table.attrs["details"].results[("model_utility", "retain90+world_facts")]
    assert sorted(utility.extra["components"]) == sorted(
        f"{m}/{s}" for s in ("retain90", "world_facts") for m in ("probability", "rouge", "truth_ratio"))
