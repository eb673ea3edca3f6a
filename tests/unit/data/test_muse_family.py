"""How the engine reads the MUSE-shaped corpus (``data.muse_family``): split roles, what its target
and retrained models are fine-tuned on, the utility split of the periodic evaluation, and its loader."""

from __future__ import annotations

import pytest

from satimp_lab.data import families
from satimp_lab.data.benchmark import BenchmarkConfig
from satimp_lab.data.families import TOFU, BenchmarkFamily, get_family
from satimp_lab.data.muse import MUSE_SPLITS, MuseConfig, load_muse
from satimp_lab.data.muse_family import (MUSE_FAMILY_FIELDS, load_muse_family, muse_eval_splits, muse_model_rows,
                                         muse_splits_to_load, muse_tokenizer_rows, muse_utility_split)
from satimp_lab.errors import InputError

MUSE = families.MUSE


@pytest.fixture(scope="module")
def loaded():
    return load_muse(config=MuseConfig(n_forget=3, n_retain=6, n_holdout=2))


def test_the_family_and_its_split_roles(loaded):
    assert isinstance(MUSE, BenchmarkFamily) and get_family(MUSE) is MUSE
    assert MUSE == BenchmarkFamily(**MUSE_FAMILY_FIELDS) and get_family("muse") is MUSE
    assert (MUSE.name, MUSE.encoding, MUSE.forget_splits) == ("muse", "text", ("forget",))
    assert MUSE.training_splits("forget") == {"forget": "forget", "retain": "retain"}
    roles = MUSE.evaluation_splits(loaded, "forget")
    assert roles == {"forget": "forget", "retain": "retain", "holdout": "holdout", "forget_qa": "forget_qa",
                     "retain_qa": "retain_qa", "holdout_qa": "holdout_qa"}
    assert roles == muse_eval_splits({}, "forget")
    to_load = MUSE.load_splits("synthetic", "forget")
    assert to_load == muse_splits_to_load("synthetic", "forget") == list(MUSE_SPLITS)
    assert set(roles.values()) | set(MUSE.training_splits("forget").values()) <= set(to_load) == set(loaded)
    # matched on the forget text's ES where the retain questions' teacher-forced ES falls to the level
    assert MUSE.matched_columns() == {"retain_col": "utility_es", "forget_col": "forget_es"}
    assert muse_utility_split("forget") == ("retain_qa", "qa")
    assert MUSE.check_metrics(["verbmem", "knowmem", "privleak"]) == ("verbmem", "knowmem", "privleak")


@pytest.mark.parametrize("bad", ["forget10", "retain", "forget_qa", ""])
def test_a_bad_forget_split_names_itself_the_family_and_the_valid_one(bad):
    for call in (lambda: MUSE.training_splits(bad), lambda: MUSE.load_splits("synthetic", bad),
                 lambda: MUSE.evaluation_splits({}, bad), lambda: MUSE.retain_for(bad),
                 lambda: muse_model_rows({}, "target", bad), lambda: muse_utility_split(bad)):
        with pytest.raises(InputError, match=rf"unknown forget split '{bad}' for benchmark family 'muse'; "
                                             r"valid: \['forget'\]"):
            call()


def test_only_the_synthetic_source_exists():
    with pytest.raises(InputError, match=r"benchmark family 'muse' has no source 'tofu'; valid: \['synthetic'\]"):
        MUSE.load_splits("tofu", "forget")
    with pytest.raises(InputError, match=r"no source 'tofu'"):
        load_muse_family("tofu")


def test_the_target_reads_every_row_about_the_forget_articles_and_the_retrained_model_none(loaded):
    target, retrained = muse_model_rows(loaded, "target", "forget"), muse_model_rows(loaded, "retain", "forget")
    forget_docs = set(loaded["forget"]["doc_id"])
    assert set(target) == set(retrained) == {"text", "qa"}
    assert {r["doc_id"] for r in target["text"]} == forget_docs | set(loaded["retain"]["doc_id"])
    assert forget_docs <= {r["doc_id"] for r in target["qa"]}
    assert not forget_docs & ({r["doc_id"] for r in retrained["text"]} | {r["doc_id"] for r in retrained["qa"]})
    # the retrained model reads exactly the target's rows without those about a forget article
    assert [r for r in target["text"] if r["doc_id"] not in forget_docs] == retrained["text"]
    assert [r for r in target["qa"] if r["doc_id"] not in forget_docs] == retrained["qa"]
    with pytest.raises(InputError, match="kind must be 'target' or 'retain'"):
        muse_model_rows(loaded, "reference", "forget")
    with pytest.raises(InputError, match=r"no split 'forget_qa' \(needed for the target model\)"):
        muse_model_rows({"full": loaded["full"]}, "target", "forget")


def test_the_tokenizer_reads_every_article_and_question_but_the_models_do_not(loaded):
    rows = muse_tokenizer_rows(loaded)
    assert {r["doc_id"] for r in rows["text"]} == set(loaded["full"]["doc_id"]) | set(loaded["holdout"]["doc_id"])
    assert len(rows["qa"]) == sum(len(loaded[s]) for s in ("forget_qa", "retain_qa", "holdout_qa"))


def test_a_family_loads_with_its_own_config_type():
    small = MUSE.load_benchmark("synthetic", "forget", MuseConfig(n_forget=2, n_retain=6, n_holdout=1))
    assert (len(small["forget"]), len(small["retain"]), len(small["holdout"])) == (2, 6, 1)
    with pytest.raises(InputError, match="benchmark family 'muse' is configured by a MuseConfig, got a BenchmarkConfig"):
        MUSE.load_benchmark("synthetic", "forget", BenchmarkConfig())
    with pytest.raises(InputError, match="configured by a BenchmarkConfig, got a MuseConfig"):
        TOFU.load_benchmark("synthetic", "forget10", MuseConfig())


def test_a_family_declares_its_rows_and_utility_split_consistently():
    fields = dict(MUSE_FAMILY_FIELDS)
    with pytest.raises(InputError, match="model_rows and tokenizer_rows go together"):
        BenchmarkFamily(**{**fields, "tokenizer_rows": None})
    with pytest.raises(InputError, match=r"utility must be a periodic-evaluation column 'retain_<reading>', got 'utility_es'"):
        BenchmarkFamily(**{**fields, "utility_split": None})
    with pytest.raises(InputError, match="config_type must be a class"):
        BenchmarkFamily(**{**fields, "config_type": MuseConfig()})
