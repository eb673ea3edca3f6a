"""experiments.RunSpec: the typed, frozen run spec that replaces the spec dicts (no training)."""

import json
import pickle
from pathlib import Path

import pytest

from satimp_lab.errors import InputError
from satimp_lab.experiments import Lab, RunSpec
from satimp_lab.experiments.identity import _default_label
from satimp_lab.studies import specs as S

MAIN = json.loads((Path(__file__).parents[1] / "main_run_specs.json").read_text(encoding="utf-8"))
FROZEN = [d for specs in MAIN["studies"].values() for d in specs] + MAIN["references"]


def _exact(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def test_dicts_become_runspecs_that_read_as_the_same_dicts():
    for d in FROZEN:
        s = RunSpec.of(d)
        assert _exact(s.to_dict()) == _exact(d) and s == d and dict(s) == d
        assert s.default_label == d.get("label", _default_label(d["method"], d.get("params")))
        assert RunSpec.of(s) is s
    s = RunSpec.of({"method": "simsat", "params": {"beta_sat": 2.0}, "label": "x", "lr": 1e-3})
    assert (s.method, dict(s.params), s.label, dict(s.overrides)) == ("simsat", {"beta_sat": 2.0}, "x", {"lr": 1e-3})
    assert s["label"] == "x" and s.get("params") == {"beta_sat": 2.0}


def test_runspec_is_frozen_hashable_and_pickles():
    s = S.spec("simimp", beta=2)
    assert isinstance(s, RunSpec)
    with pytest.raises(AttributeError):
        s.method = "ga"
    with pytest.raises(TypeError):
        s.params["beta_imp"] = 3.0
    assert pickle.loads(pickle.dumps(s)) == s and hash(pickle.loads(pickle.dumps(s))) == hash(s)
    assert len({s, S.spec("simimp", beta=2)}) == 1


def test_the_config_of_a_runspec_is_the_config_of_its_dict():
    # the run's config (hence its cache key) from a RunSpec equals the one the dict made on main
    lab = Lab("fast", progress=False)  # no model is loaded to build configs
    for d in FROZEN:
        s = RunSpec.of(d)
        extra = {k: v for k, v in d.items() if k not in ("method", "params", "label")}
        old = lab.config(d["method"], 1, d.get("params"), **extra)
        new = lab.config(s.method, 1, dict(s.params), **s.overrides)
        assert _exact(new.to_dict()) == _exact(old.to_dict())


@pytest.mark.parametrize("spec, field", [
    ({"method": "satimpp"}, "RunSpec.method"),
    ({"method": "satimp", "params": {"beta_st": 1.0}}, "RunSpec.params"),
    ({"method": "satimp", "params": {"beta_sat": -1.0}}, "beta_sat"),
    ({"method": "satimp", "learning_rate": 1e-3}, "RunSpec.overrides"),
    ({"method": "satimp", "seed": 3}, "RunSpec.overrides"),
    ({"params": {}}, "'method'"),
])
def test_a_bad_spec_names_the_bad_field(spec, field):
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        RunSpec.of(spec)


def test_lab_run_takes_a_runspec_or_keywords_not_both():
    with pytest.raises(InputError, match="not both"):
        Lab("fast", progress=False).run(RunSpec("ga"), label="x")
