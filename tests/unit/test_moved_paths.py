"""satimp_lab/_moved.py: every module path from before the move into stage folders still imports,
and is the very module object of its new path (so patching through either name patches both)."""

import importlib
import subprocess
import sys

import pytest

import satimp_lab
from satimp_lab._moved import _PACKAGES, MOVED


@pytest.mark.parametrize("old", sorted(set(MOVED) - _PACKAGES))
def test_an_old_path_is_the_new_module(old):
    new = importlib.import_module(f"satimp_lab.{MOVED[old]}")
    assert importlib.import_module(f"satimp_lab.{old}") is new
    assert sys.modules[f"satimp_lab.{old}"] is new
    assert new.__spec__.name == f"satimp_lab.{MOVED[old]}", "the hook must leave the module's own spec"


def test_from_an_old_path_import_a_name():
    from satimp_lab.experiments import Lab
    from satimp_lab.studies.lab import Lab as NewLab

    assert Lab is NewLab


def test_patching_through_the_old_name_patches_the_module(monkeypatch):
    import satimp_lab.studies.verdicts as verdicts

    monkeypatch.setattr("satimp_lab.verdicts.compare", "patched")
    assert verdicts.compare == "patched"


def test_an_old_path_is_an_attribute_of_the_package():
    assert satimp_lab.weighting is importlib.import_module("satimp_lab.unlearning.weighting")


def test_models_names_stay_importable_from_the_package():
    assert _PACKAGES == {"models"}
    from satimp_lab.models import get_model
    from satimp_lab.models.zoo import get_model as zoo_get_model

    assert get_model is zoo_get_model


def test_every_new_module_exists_and_no_old_file_is_left():
    root = importlib.import_module("satimp_lab").__path__[0]
    for old, new in MOVED.items():
        assert importlib.util.find_spec(f"satimp_lab.{new}") is not None, new
        assert not (__import__("pathlib").Path(root) / f"{old}.py").exists(), f"{old}.py is back"


def test_an_unknown_module_still_fails():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("satimp_lab.no_such_module")


def test_the_hook_keeps_import_satimp_lab_light():
    code = "import sys, satimp_lab; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=satimp_lab.__path__[0] + "/..")
    assert out.stdout.strip() == "False"


def test_the_metric_families_stay_importable_from_metrics():
    """evaluation/metrics.py was split by family (reading, memorisation, tofu, privacy): every name
    it exported before still imports from it, and through the old path, as the family's object."""
    from satimp_lab.evaluation import memorisation, metrics, privacy, reading, tofu

    families = (reading, memorisation, tofu, privacy)
    for name in metrics.__all__:
        homes = [f for f in families if name in f.__all__]
        assert len(homes) <= 1, name
        if homes:
            assert getattr(metrics, name) is getattr(homes[0], name), name
    moved = {name for f in families for name in f.__all__}
    assert moved - {"DEFAULT_MIX_GRID"} <= set(metrics.__all__)
    from satimp_lab.metrics import _greedy_llama, extraction_strength, membership_inference, truth_ratio

    assert (_greedy_llama, extraction_strength, membership_inference, truth_ratio) == (
        reading._greedy_llama, memorisation.extraction_strength, privacy.membership_inference, tofu.truth_ratio)


def test_the_model_modules_stay_importable_from_zoo_and_models():
    """models/zoo.py was split by job (build, train, cache): every public name of the three still
    imports from ``satimp_lab.models.zoo`` and from ``satimp_lab.models`` (the flat module's path), as
    its home's object."""
    import satimp_lab.models as models
    from satimp_lab.models import build, cache, train, zoo

    added_after_the_split = {"save_hf_folder", "check_model_source", "folder_fingerprint"}  # new names: home only
    for home in (build, train, cache):
        for name in set(home.__all__) - added_after_the_split:
            assert getattr(zoo, name) is getattr(home, name), f"{home.__name__}.{name}"
            assert getattr(models, name) is getattr(home, name), f"{home.__name__}.{name}"
    from satimp_lab.models import CacheError, TierConfig  # the flat module's re-exports, too

    assert (CacheError, TierConfig) == (satimp_lab.store.CacheError, satimp_lab.tiers.TierConfig)
