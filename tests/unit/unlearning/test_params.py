"""satimp_lab.unlearning.params: each hyper-parameter is declared once, and the validator of the methods,
the playground's sliders and the studies' sweep values read that declaration."""

import dataclasses
import math
from types import MappingProxyType

import pytest

from satimp_lab.unlearning import objectives as O
from satimp_lab.unlearning import params as PR
from satimp_lab.unlearning import weighting as W
from satimp_lab.ui import playground as X
from satimp_lab.errors import InputError
from satimp_lab.studies import specs as S

# one value outside the valid range of each declared parameter, and a method that reads it
BAD = {
    "beta_sat": ("simsat", -0.5),
    "beta_imp": ("satimp", float("nan")),
    "group_size": ("group_simsat", 0),
    "k": ("hard_top", 1.5),
    "soft": ("hard_random", -0.25),
    "p_imp": ("annotated", 1.25),
    "npo_beta": ("npo", 0.0),
    "gamma": ("simnpo", float("inf")),
    "forget_weight": ("gd", -1.0),
    "retain_weight": ("gd", -2.0),
}


def test_every_parameter_the_methods_read_is_declared_once():
    assert set(BAD) == set(PR.PARAMS)
    read = {k for m in O.METHODS.values() for k in m.params} | set(PR.LOSS_WEIGHTS)
    assert read == set(PR.PARAMS)
    assert set(PR.WEIGHTING_PARAMS) == set(O.WEIGHTINGS)
    assert set(PR.FORGET_PARAMS) <= set(O.FORGETS)
    # objectives uses the declared tables themselves, not copies
    assert O.WEIGHTING_PARAMS is PR.WEIGHTING_PARAMS and O.FORGET_PARAMS is PR.FORGET_PARAMS


@pytest.mark.parametrize("name", list(BAD))
def test_an_out_of_range_value_is_refused_naming_the_parameter_and_value(name):
    method, bad = BAD[name]
    for call in (lambda: PR.validate_param(name, bad), lambda: PR.PARAMS[name].validate(bad),
                 lambda: O.get_method(method, **{name: bad})):
        with pytest.raises(InputError) as err:
            call()
        assert name in str(err.value) and repr(bad) in str(err.value)
    with pytest.raises(InputError, match=f"method '{method}'"):
        O.get_method(method, **{name: bad})


def test_the_declaration_drives_the_methods_validator(monkeypatch):
    # narrow beta_sat's declared check: get_method now refuses a value it accepted before
    assert O.get_method("simsat", beta=4.0).params["beta_sat"] == 4.0

    def at_most_three(name, value):
        v = W.validate_exponent(name, value)
        if v > 3:
            raise ValueError(f"{name} must be <= 3, got {value!r}")
        return v

    narrowed = dict(PR.PARAMS)
    narrowed["beta_sat"] = dataclasses.replace(PR.PARAMS["beta_sat"], check=at_most_three,
                                               slider=(0.0, 3.0, 0.1), sweeps={})
    monkeypatch.setattr(O, "PARAMS", MappingProxyType(narrowed))
    with pytest.raises(InputError, match=r"beta_sat must be <= 3, got 4\.0"):
        O.get_method("simsat", beta=4.0)
    assert O.get_method("simsat", beta=2.0).params["beta_sat"] == 2.0


def test_validate_returns_the_stored_type_and_unknown_names_are_refused():
    assert PR.validate_param("group_size", 4.0) == 4 and isinstance(PR.validate_param("group_size", 4.0), int)
    assert isinstance(PR.validate_param("beta_sat", 2), float)
    assert O.get_method("group_simsat", group_size=8.0).params["group_size"] == 8
    with pytest.raises(InputError, match="betta"):
        PR.get_param("betta")
    with pytest.raises(InputError, match="smoothness"):
        PR.PARAMS["soft"].sweep("smoothness")


def test_a_declaration_refuses_a_slider_or_sweep_outside_its_valid_range():
    beta = PR.PARAMS["beta_sat"]
    with pytest.raises(InputError, match="beta_sat"):
        dataclasses.replace(beta, slider=(-1.0, 10.0, 0.1))
    with pytest.raises(InputError, match="beta_sat"):
        dataclasses.replace(beta, sweeps={"grid": (0.0, -2.0)})
    with pytest.raises(ValueError, match="slider"):
        dataclasses.replace(beta, slider=(5.0, 1.0, 0.1))
    with pytest.raises(ValueError, match="kind"):
        dataclasses.replace(beta, kind="str")


def test_every_declaration_has_a_label_help_and_a_valid_slider():
    for name, p in PR.PARAMS.items():
        assert p.name == name and p.label and p.help and "docs/methods.md#" in p.help
        lo, hi, step = p.slider
        assert p.validate(lo) == lo and p.validate(hi) == hi and 0 < step < hi - lo
        assert p.kind == ("int" if name == "group_size" else "float")
        assert math.isfinite(p.validate(p.default))


def test_the_sliders_are_the_declarations():
    for name, p in PR.PARAMS.items():
        spec = X.PARAM_SPECS[name]
        assert (spec.kind, spec.min, spec.max, spec.step, spec.description) == (p.kind, *p.slider, p.label)
    for method in O.METHODS:
        for c in X.method_controls(method):
            assert (c["kind"], c["min"], c["max"], c["step"]) == (PR.PARAMS[c["name"]].kind, *PR.PARAMS[c["name"]].slider)


def test_the_studies_sweep_the_declared_values():
    assert S.BETAS == PR.PARAMS["beta_sat"].sweep("smoothness") == PR.PARAMS["beta_imp"].sweep("smoothness")
    assert S.GRID_BETA_SAT == PR.PARAMS["beta_sat"].sweep("grid")
    assert S.GRID_BETA_IMP == PR.PARAMS["beta_imp"].sweep("grid")
    assert S.GROUP_SIZES == PR.PARAMS["group_size"].sweep("granularity")
    assert S.HARD_FRACTIONS == PR.PARAMS["k"].sweep("kept_share")
    assert S.RECOMMENDED == (5.0, 0.1)
