"""studies/specs.py: the run specs the studies sweep and the notebooks show, written once so
identical runs share a cache entry (no training)."""

import json
from pathlib import Path

import pytest

from satimp_lab.unlearning.objectives import get_method, list_methods
from satimp_lab.studies import STUDIES, get_study
from satimp_lab.experiments import identity as I
from satimp_lab.studies import specs as S


def test_spec_is_canonical_so_runs_are_shared():
    # beta=1 for simsat is the registry default: the spec is the plain observation (i) run
    assert S.spec("simsat", beta=1) == {"method": "simsat", "label": "simsat"}
    assert S.spec("simsat", "x", beta=1.0) == {"method": "simsat", "label": "x"}
    s = S.spec("simimp", beta=2)
    assert s["params"] == {"beta_imp": 2.0} and isinstance(s["params"]["beta_imp"], float)
    assert S.spec("group_simsat", group_size=5.0)["params"] == {"group_size": 5}
    assert S.spec("satimp", beta_sat=5.0, beta_imp=0.1) == {"method": "satimp", "label": "satimp"}
    with pytest.raises(ValueError):
        S.spec("simsat", nonsense=1)


def test_specs_resolve_to_valid_methods_and_share_cache_keys():
    all_specs = (S.obs1_specs() + S.reference_specs() + S.beta_specs() + S.hard_specs()
                 + S.granularity_specs() + S.satimp_grid_specs())
    for s in all_specs:
        get_method(s["method"], **s.get("params", {}))
    key = lambda s: (s["method"], tuple(sorted(s.get("params", {}).items())))  # noqa: E731
    obs1 = {key(s) for s in S.obs1_specs()}
    # the grid's corners and edges are the observation (i) / beta-sweep runs, not new ones
    grid = {key(s) for s in S.satimp_grid_specs()}
    assert {key(S.spec("ga")), key(S.spec("satimp")), key(S.spec("simsat"))} <= grid & obs1
    expected_new = ({key(S.spec("simsat", beta=b)) for b in S.BETAS if b not in S.GRID_BETA_SAT}
                    | {key(S.spec("simimp", beta=b)) for b in S.BETAS if b not in S.GRID_BETA_IMP})
    assert {key(s) for s in S.beta_specs()} - grid == expected_new
    labels = [s["label"] for s in S.satimp_grid_specs()]
    assert len(labels) == len(set(labels)) == len(S.GRID_BETA_SAT) * len(S.GRID_BETA_IMP)


def test_hard_specs_keep_matched_token_counts():
    p = I.spec_params(S.hard_specs((0.3,))).set_index("label")
    assert p.loc["top-30%", "k"] == pytest.approx(0.3)
    assert p.loc["bottom-30%", "k"] == pytest.approx(0.7)  # official bottom-k keeps ~(1-k)
    assert p.loc["random-30%", "k"] == pytest.approx(0.3)


def test_spec_params_lists_defaults_too():
    p = I.spec_params(S.beta_specs(("simsat",), (1.0, 5.0))).set_index("label")
    assert p.loc["simsat(β=1)", "beta_sat"] == 1.0 and p.loc["simsat(β=5)", "beta_sat"] == 5.0


MAIN = json.loads((Path(__file__).parents[1] / "main_run_specs.json").read_text(encoding="utf-8"))
"""Specs, registry defaults, playground requests and slider ranges as main's code produced them
before the hyper-parameters were declared in satimp_lab.unlearning.params (see its "source")."""


def _exact(obj) -> str:
    """JSON text that tells 5 from 5.0: the run cache key does (a RunSpec as its dict form)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=lambda o: o.to_dict())


@pytest.mark.parametrize("study", [s.id for s in STUDIES])
def test_study_specs_and_labels_are_unchanged(study):
    assert _exact(get_study(study).specs()) == _exact(MAIN["studies"][study])


def test_reference_specs_and_registry_defaults_are_unchanged():
    assert set(MAIN["studies"]) == {s.id for s in STUDIES}
    assert _exact(S.reference_specs()) == _exact(MAIN["references"])
    got = {name: get_method(name).params for name in MAIN["method_params"]}
    assert _exact(got) == _exact(MAIN["method_params"])
    fields = {name: {k: v for k, v in get_method(name).to_dict().items() if k not in ("name", "params")}
              for name in MAIN["method_fields"]}
    assert _exact(fields) == _exact(MAIN["method_fields"])
    assert set(MAIN["method_params"]) == set(list_methods())


def test_playground_requests_and_slider_ranges_are_unchanged():
    from satimp_lab.ui import playground as X

    requests = [X.run_request("satimp", {"beta_sat": 2.0, "beta_imp": 0.1}),
                X.run_request("group_simsat_gd", {"group_size": 8, "retain_weight": 0.5}),
                X.run_request("hard_top", {"k": 0.3, "soft": 1.0}, seed=2)]
    assert _exact(requests) == _exact(MAIN["run_request"])
    controls = {name: [{k: v for k, v in c.items() if k != "description"} for c in X.method_controls(name)]
                for name in MAIN["method_controls"]}
    assert _exact(controls) == _exact(MAIN["method_controls"])
