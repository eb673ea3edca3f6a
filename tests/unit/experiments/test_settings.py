"""Settings and tier recipes: what ``Lab(SIZE, tier=TIER)`` runs on (no model is trained here)."""

from __future__ import annotations

import pytest

from satimp_lab.experiments import SETTINGS, TIER_RECIPES, Lab, get_setting
from satimp_lab.models.build import get_tier
from satimp_lab.models.train import subset_authors


def test_tier_recipe_applies_with_the_tier():
    setting = get_setting("full", tier="small")
    assert setting.tier == "small" and setting.name == "full-small"
    for field, value in TIER_RECIPES["small"].items():
        assert getattr(setting, field) == value
    # a pretrained model unlearns at a lower rate than the tiny tier's from-scratch model
    assert setting.base.lr < SETTINGS["full"].base.lr
    assert setting.forget_split == SETTINGS["full"].forget_split


def test_explicit_overrides_win_over_the_tier_recipe():
    setting = get_setting("full", tier="small", seeds=(0, 1), final_max_examples=7)
    assert setting.seeds == (0, 1) and setting.final_max_examples == 7
    assert setting.base == TIER_RECIPES["small"]["base"]


def test_tiers_without_a_recipe_keep_the_size_recipe():
    full = SETTINGS["full"]
    base = get_setting("full", tier="base")
    assert base.tier == "base" and base.name == "full"
    assert base.base == full.base and base.seeds == full.seeds
    assert get_setting("full") is full


def test_unknown_size_is_named():
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        get_setting("huge")


def test_small_tier_lab_sees_only_the_authors_its_models_learned():
    tiny, small = Lab("full", progress=False).benchmark, Lab("full", tier="small", progress=False).benchmark
    keep = subset_authors(tiny, get_tier("small"))
    all_authors = sorted(set(tiny["full"]["author_id"]))
    assert sorted(keep) == all_authors[-get_tier("small").train_subset:]  # the LAST authors
    assert set(small["full"]["author_id"]) == keep
    # every forget author is kept, so the forget split is whole; the retain split shrinks to the
    # subset's other authors
    assert small["forget10"]["question"] == tiny["forget10"]["question"]
    assert set(small["retain90"]["author_id"]) == keep - set(tiny["forget10"]["author_id"])
    assert len(small["retain90"]) == len(small["full"]) - len(small["forget10"]) > 0
    for split in ("holdout", "world_facts"):
        assert small[split]["question"] == tiny[split]["question"]
    # the tiny tier uses every author
    assert len(tiny["full"]) == 400


def test_reproduce_cell_limit_depends_on_the_tier(monkeypatch, tmp_path):
    """A SmolLM2 sweep cell runs for ~30 CPU minutes: no per-cell limit for pretrained tiers."""
    from satimp_lab.mainjob import reproduce as rep

    seen = []

    def fake_execute(path, output, parameters, timeout=1200, env=None):
        seen.append((parameters["TIER"], timeout))
        return {"name": path.stem, "status": "ok", "seconds": 0.0, "error": "", "output": str(output)}

    monkeypatch.setattr(rep, "execute_notebook", fake_execute)
    monkeypatch.setattr("satimp_lab.mainjob.report.build_report", lambda *a, **k: tmp_path / "report.md")
    for tier, limit in ((None, 1200), ("tiny", 1200), ("small", None)):
        rep.reproduce(tmp_path / str(tier), tier=tier, notebooks=["02"])
    rep.reproduce(tmp_path / "explicit", tier="small", notebooks=["02"], cell_timeout=60)
    assert seen == [(None, 1200), ("tiny", 1200), ("small", None), ("small", 60)]
