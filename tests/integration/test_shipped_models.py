"""The reference models shipped in data/models: hashes, keys, recorded memorisation, and the
shipping path itself (on the micro tier, in a temporary folder).

Training the micro preset twice is bit-identical: tests/integration/test_models.py
(test_same_seed_same_model)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from satimp_lab.models import cache, train
from satimp_lab.data.families import ENCODERS
from satimp_lab.models.build import get_tier
from satimp_lab.models.cache import (SHIPPED_DIR, SHIPPED_FORGET_SPLITS, family_tier, get_model, model_key,
                                     ship_models, shipped_benchmark, shipped_entry)
from satimp_lab.models.train import memorisation_report
from satimp_lab.store import CacheError
from satimp_lab.tiers import SHIPPED_TARGET_SEEDS
from satimp_lab.store import MANIFEST, verify_entry

KEY_ACCURACY_TOLERANCE = 0.002
"""A reloaded shipped model's key-token accuracy vs the recorded one: one flipped token of ~2000
is 0.0005; other CPUs round differently, so not exactly 0."""

UNITS = [(tier, seed, kind, split) for tier, seeds in SHIPPED_TARGET_SEEDS.items() for seed in seeds
         for kind, split in [("target", SHIPPED_FORGET_SPLITS[0])] + [("retain", f) for f in SHIPPED_FORGET_SPLITS]]
"""(tier, target seed, kind, forget split) of every shipped TOFU-shaped model."""
MUSE_UNITS = [(tier, seed, kind, "forget") for tier, seeds in SHIPPED_TARGET_SEEDS.items() for seed in seeds
              for kind in ("target", "retain")]
"""The same for the MUSE-shaped family (``data.muse``): a target and a retrained model per seed."""
ALL_UNITS = [(*u, "tofu") for u in UNITS] + [(*u, "muse") for u in MUSE_UNITS]


def _tier(name, seed):
    tier = get_tier(name)
    return replace(tier, train=replace(tier.train, seed=seed))


@pytest.fixture(scope="module")
def benchmarks():
    return {(name, family): shipped_benchmark(name, family) for name in SHIPPED_TARGET_SEEDS
            for family in ("tofu", "muse")}


def test_the_shipped_set_is_complete_and_small():
    folders = [shipped_entry(_tier(t, s), k, f, family=fam) for t, s, k, f, fam in ALL_UNITS]
    missing = [str(f) for f in folders if not (f / MANIFEST).exists()]
    assert not missing, f"shipped models missing (rebuild with `satimp-lab train --retrain`): {missing}"
    total = sum(p.stat().st_size for p in SHIPPED_DIR.rglob("*") if p.is_file())
    assert total < 70e6, f"data/models holds {total / 1e6:.1f} MB (limit 70 MB)"


@pytest.mark.parametrize("tier,seed,kind,split,family", ALL_UNITS, ids=lambda v: str(v))
def test_shipped_files_match_their_hashes(tier, seed, kind, split, family):
    folder = shipped_entry(_tier(tier, seed), kind, split, family=family)
    manifest = verify_entry(folder, "shipped model")["files"]
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST}
    assert set(manifest) == on_disk  # no unlisted file, no listed file missing
    assert {"model.safetensors", "config.json", "tokenizer.json", "meta.json", "training_config.json"} <= on_disk
    config = json.loads((folder / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "float32"


@pytest.mark.parametrize("name,seed,kind,split,family", ALL_UNITS, ids=lambda v: str(v))
def test_shipped_model_is_the_default_and_loads_to_its_recorded_memorisation(benchmarks, name, seed, kind, split,
                                                                          family, tmp_path, monkeypatch):
    monkeypatch.setenv("SATIMP_LAB_CACHE", str(tmp_path))  # an empty cache: only the shipped copy can serve
    tier, full_benchmark = family_tier(_tier(name, seed), family), benchmarks[name, family]
    meta = json.loads((shipped_entry(tier, kind, split, family=family) / "meta.json").read_text())
    key = model_key(full_benchmark, kind, split, tier, family)
    assert meta["key"] == key["key"], (
        "the default configuration no longer matches the shipped models: rebuild them with "
        "`satimp-lab train --retrain` (or revert the configuration change)")
    bundle = get_model(full_benchmark, kind, split, name, progress=False, family=family,
                       **({} if seed == 0 else {"train": _tier(name, seed).train}))
    assert bundle.shipped and bundle.from_cache and bundle.path == shipped_entry(tier, kind, split, family=family)
    assert not any(tmp_path.iterdir()), "a shipped model must not be retrained or copied into the cache"
    if family == "tofu":  # the rows as models.train picks them, not through the key under test
        assert key["rows"] == {"qa": train._training_rows(full_benchmark, meta_split(kind, split), tier)}
    encoded = [seq for encoding, rows in key["rows"].items()
               for seq in ENCODERS[encoding](bundle.tokenizer, rows, tier.prompt_format, tier.arch.max_length)]
    report = memorisation_report(bundle.model, bundle.tokenizer, encoded, tier.train.check_batch_size)
    assert report["n_examples"] == bundle.report["n_examples"]
    assert abs(report["key_accuracy"] - bundle.report["key_accuracy"]) <= KEY_ACCURACY_TOLERANCE
    assert abs(report["answer_accuracy"] - bundle.report["answer_accuracy"]) <= KEY_ACCURACY_TOLERANCE
    # training stopped at its memorisation goal (or ran every epoch without reaching it)
    stop = tier.train.stop_key_accuracy
    assert (stop is not None and bundle.report["key_accuracy"] >= stop) or bundle.report["epochs"] == tier.train.epochs


def meta_split(kind, forget_split):
    from satimp_lab.data.schema import retain_split_for

    return "full" if kind == "target" else retain_split_for(forget_split)


def test_ship_then_load_and_tamper(small_benchmark, session_cache, tmp_path, monkeypatch):
    """The shipping path end to end on the micro tier: written with a manifest, found by get_model
    with an empty cache, bit-identical; a changed byte is refused with the file's name."""
    root = tmp_path / "models"
    written = ship_models("micro", target_seeds=(0,), root=root, benchmark=small_benchmark,
                          retrain=False, progress=False)
    assert [p.relative_to(root).as_posix() for p in written] == ["micro/seed0/target", "micro/seed0/retain-forget10"]
    trained = get_model(small_benchmark, "target", tier="micro", progress=False, shipped=False)  # the session cache's
    monkeypatch.setattr(cache, "SHIPPED_DIR", root)
    monkeypatch.setenv("SATIMP_LAB_CACHE", str(tmp_path / "empty-cache"))
    shipped = get_model(small_benchmark, "target", tier="micro", progress=False)
    assert shipped.shipped and shipped.path == written[0] and shipped.digest == trained.digest
    assert all(torch.equal(a, b) for a, b in zip(shipped.model.state_dict().values(),
                                                 trained.model.state_dict().values()))
    assert not (tmp_path / "empty-cache").exists()
    # another configuration (another seed) is not served by the shipped seed-0 model
    other = get_model(small_benchmark, "target", tier="micro", progress=False, shipped=True,
                      train=replace(get_tier("micro").train, seed=1), use_cache=False)
    assert not other.shipped
    # tampering
    weights = written[0] / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="model.safetensors") as info:
        get_model(small_benchmark, "target", tier="micro", progress=False)
    # the remedy for a shipped file is to restore or rebuild it, not to delete it
    assert "git checkout data/models" in str(info.value) and "delete this folder" not in str(info.value)


def test_loading_a_stored_model_prints_no_progress_bar(benchmarks, capfd):
    """A shipped or cached model loads without transformers' "Loading weights" bar (a sweep loads
    dozens; the bar flooded notebook outputs and the reproduce log), and the bar setting is
    restored afterwards."""
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    bundle = get_model(benchmarks["micro", "tofu"], "target", "forget10", "micro", progress=False)
    assert bundle.shipped
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()
