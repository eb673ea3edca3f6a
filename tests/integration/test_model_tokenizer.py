"""A tokenizer that does not belong to the model is refused wherever the two meet."""

import json
import shutil
from dataclasses import replace

import pytest

from satimp_lab.evaluation import memorisation
from satimp_lab.evaluation import metrics
from satimp_lab.data.benchmark import BenchmarkConfig, load_benchmark
from satimp_lab.errors import InputError
from satimp_lab.models.build import benchmark_texts, tokenizer_fingerprint, train_tokenizer
from satimp_lab.models.cache import _load_saved
from satimp_lab.store import CacheError
from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import UnlearnConfig


def _other_tokenizer(vocab_size):
    other = load_benchmark(config=BenchmarkConfig(n_authors=20, qa_per_author=2, seed=5))
    return train_tokenizer(benchmark_texts([other["full"].to_list()]), vocab_size)


@pytest.fixture(scope="module")
def same_size(micro_target):
    tok = _other_tokenizer(len(micro_target.tokenizer))
    assert len(tok) == len(micro_target.tokenizer)
    assert tokenizer_fingerprint(tok) != tokenizer_fingerprint(micro_target.tokenizer)
    return tok


def test_the_cache_entry_stores_the_tokenizer_fingerprint(micro_target):
    meta = json.loads((micro_target.path / "meta.json").read_text())
    assert meta["tokenizer_fingerprint"] == tokenizer_fingerprint(micro_target.tokenizer)
    assert micro_target.model.config.satimp_tokenizer_fingerprint == meta["tokenizer_fingerprint"]


def test_same_size_tokenizer_is_refused_by_metrics(micro_target, small_benchmark, same_size):
    rows = small_benchmark["forget10"]
    memorisation.extraction_strength(micro_target.model, micro_target.tokenizer, rows)  # its own: fine
    with pytest.raises(InputError, match="tokenizer"):
        memorisation.extraction_strength(micro_target.model, same_size, rows)
    with pytest.raises(InputError, match="tokenizer"):
        metrics.evaluate(micro_target.model, same_size, small_benchmark, metrics=["es"])


@pytest.mark.parametrize("size", ["same", "other"])
def test_unlearn_refuses_a_foreign_tokenizer_before_any_step(micro_target, small_benchmark, same_size, size):
    tok = same_size if size == "same" else _other_tokenizer(2 * len(micro_target.tokenizer))
    bundle = replace(micro_target, tokenizer=tok)
    with pytest.raises(InputError, match="tokenizer"):
        unlearn(bundle, small_benchmark, UnlearnConfig(method="ga", steps=1, batch_size=2), progress=False)


def test_a_cache_entry_with_a_swapped_tokenizer_is_refused(micro_target, same_size, tmp_path):
    entry = tmp_path / "entry"
    shutil.copytree(micro_target.path, entry)
    for f in entry.glob("tokenizer*"):
        f.unlink()
    same_size.save_pretrained(entry)
    fp = json.loads((entry / "meta.json").read_text())["tokenizer_fingerprint"]
    with pytest.raises(CacheError, match="tokenizer"):
        _load_saved(entry, micro_target.tier, fp)
