"""Train a micro model on a small benchmark: memorisation, determinism, cache behaviour."""

import json

import pytest
import torch

from satimp_lab.models.cache import get_model
from satimp_lab.store import CacheError
from satimp_lab.store import seal_entry


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_target_memorises(micro_target):
    report = micro_target.report
    assert report["key_accuracy"] >= 0.95
    assert report["answer_accuracy"] >= 0.9
    # one check per epoch, and training stopped at the first epoch that reached the threshold
    by_epoch = report["key_accuracy_by_epoch"]
    assert len(by_epoch) == report["epochs"] and by_epoch[-1] == report["key_accuracy"]
    assert all(acc < 0.95 for acc in by_epoch[:-1])


def test_fused_optimizer_and_check_batch_size(small_benchmark):
    """The small tier's speed options: fused AdamW makes the same updates up to rounding, and the
    memorisation check does not depend on its batch size."""
    from dataclasses import replace

    from satimp_lab.models.build import get_tier

    tier = get_tier("micro")
    short = replace(tier.train, epochs=2, stop_key_accuracy=None)
    plain = get_model(small_benchmark, "target", tier=replace(tier, train=short), progress=False,
                      use_cache=False)
    fused = get_model(small_benchmark, "target", progress=False, use_cache=False,
                      tier=replace(tier, train=replace(short, fused_optimizer=True, check_batch_size=3)))
    start = get_model(small_benchmark, "target", progress=False, use_cache=False,
                      tier=replace(tier, train=replace(short, epochs=0)))
    moved = max((a - b).abs().max().item() for a, b in zip(plain.model.parameters(), start.model.parameters()))
    assert moved > 1e-3
    for a, b in zip(plain.model.parameters(), fused.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert fused.report["answer_accuracy"] == pytest.approx(plain.report["answer_accuracy"], abs=0.02)


def test_retain_model_never_sees_forget_authors(micro_retain, small_benchmark):
    assert micro_retain.kind == "retain"
    # it memorised its own split but not the forget authors' facts
    from satimp_lab.data.batching import encode_dataset
    from satimp_lab.models.train import memorisation_report

    forget = encode_dataset(micro_retain.tokenizer, small_benchmark["forget10"])
    assert memorisation_report(micro_retain.model, micro_retain.tokenizer, forget)["key_accuracy"] < 0.5


def test_cache_roundtrip_is_bit_identical(micro_target, small_benchmark):
    again = get_model(small_benchmark, "target", tier="micro", progress=False, shipped=False)
    assert again.from_cache and again.path == micro_target.path
    assert _same_weights(again.model, micro_target.model)


def test_same_seed_same_model(small_benchmark, micro_target):
    fresh = get_model(small_benchmark, "target", tier="micro", progress=False, use_cache=False)
    assert _same_weights(fresh.model, micro_target.model)


def test_changed_config_is_a_different_entry(small_benchmark, micro_target, session_cache):
    from satimp_lab.models.build import get_tier
    from satimp_lab.tiers import TrainConfig

    tier = get_tier("micro")
    other = get_tier("micro", train=TrainConfig(**{**tier.train.__dict__, "epochs": 1}))
    bundle = get_model(small_benchmark, "target", tier=other, progress=False)
    assert bundle.path != micro_target.path and not bundle.from_cache


def test_stale_key_is_never_used_and_corrupt_entry_is_named(small_benchmark, micro_target):
    meta_path = micro_target.path / "meta.json"
    original = meta_path.read_text()
    try:
        meta = json.loads(original)
        meta["key"] = meta["key"].replace('"epochs"', '"epochz"')
        meta_path.write_text(json.dumps(meta))
        seal_entry(micro_target.path)  # a complete entry whose key differs (not a damaged one)
        assert not get_model(small_benchmark, "target", tier="micro", progress=False, shipped=False).from_cache
        (micro_target.path / "meta.json").write_text("{not json")
        with pytest.raises(CacheError, match="corrupt cache entry .*meta.json"):
            get_model(small_benchmark, "target", tier="micro", progress=False, shipped=False)
    finally:  # the retrain above rewrote the entry; restore a readable one for other tests
        meta_path.write_text(original)
        seal_entry(micro_target.path)


def test_unknown_tier_and_kind(small_benchmark):
    with pytest.raises(ValueError, match="unknown tier"):
        get_model(small_benchmark, tier="huge")
    with pytest.raises(ValueError, match="kind must be"):
        get_model(small_benchmark, kind="oracle", tier="micro")
