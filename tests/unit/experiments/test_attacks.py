"""The attacks' pure parts (satimp_lab.experiments.attacks) and the relearning study's claims on synthetic
population tables with known effects (satimp_lab.studies.relearning)."""

import numpy as np
import pandas as pd
import pytest
import torch

from satimp_lab.experiments import attacks
from satimp_lab.studies import verdicts
from satimp_lab.errors import InputError
from satimp_lab.studies import relearning


# -- quantization -----------------------------------------------------------------------------


def _grid_steps(w: torch.Tensor, q: torch.Tensor, bits: int) -> torch.Tensor:
    levels = 2 ** (bits - 1) - 1
    scale = w.abs().amax(dim=1, keepdim=True) / levels
    return q / scale


@pytest.mark.parametrize("bits", [8, 4, 3])
def test_quantized_weights_lie_on_the_per_channel_grid(bits):
    w = torch.randn(6, 40, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 3, 6)[:, None]
    q = attacks.quantize_tensor(w, bits)
    steps = _grid_steps(w, q, bits)
    levels = 2 ** (bits - 1) - 1
    assert torch.allclose(steps, steps.round(), atol=1e-4)           # integers times the row's scale
    assert steps.abs().max() <= levels + 1e-4
    for row in steps.round():                                          # at most 2q+1 values per row
        assert len(set(row.tolist())) <= 2 * levels + 1
    # round to NEAREST: never more than half a step away, and the row's absmax is exact
    scale = w.abs().amax(dim=1, keepdim=True) / levels
    assert ((q - w).abs() <= scale / 2 + 1e-6).all()
    assert torch.allclose(q.abs().amax(dim=1), w.abs().amax(dim=1))
    # per channel: a row's grid does not depend on the other rows
    w2 = w.clone()
    w2[0] *= 100
    assert torch.equal(attacks.quantize_tensor(w2, bits)[1:], q[1:])


def test_quantization_is_the_identity_at_high_bit_width():
    w = torch.randn(5, 33, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(attacks.quantize_tensor(w, 24), w, rtol=0, atol=1e-6)
    assert not torch.allclose(attacks.quantize_tensor(w, 4), w, atol=1e-3)
    zero = torch.zeros(2, 3)
    assert torch.equal(attacks.quantize_tensor(zero, 4), zero)
    with pytest.raises(ValueError, match="2-D"):
        attacks.quantize_tensor(torch.zeros(3), 4)
    with pytest.raises(ValueError, match="bits"):
        attacks.quantize_tensor(w, 1)


def test_quantize_model_rounds_linear_layers_only_and_leaves_the_model():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 8)
            self.proj = torch.nn.Linear(8, 8)
            self.lm_head = torch.nn.Linear(8, 10, bias=False)

    torch.manual_seed(0)
    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = attacks.quantize_model(model, 4)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} of the input changed"
    assert torch.equal(out.proj.weight, attacks.quantize_tensor(before["proj.weight"], 4))
    assert not torch.equal(out.proj.weight, before["proj.weight"])
    for k in ("proj.bias", "embed.weight", "lm_head.weight"):  # biases, embeddings, head kept
        assert torch.equal(out.state_dict()[k], before[k])


# -- relearning split and curve area ---------------------------------------------------------


def test_split_by_author_is_disjoint_seeded_and_rounded():
    authors = [a for a in range(10) for _ in range(4)]
    relearned, held = attacks.split_forget_authors(authors, 0.25, seed=0)
    assert sorted(relearned + held) == list(range(40))
    got = {authors[i] for i in relearned}
    assert len(got) == 3 and not got & {authors[i] for i in held}    # 2.5 authors -> 3, whole authors
    assert attacks.split_forget_authors(authors, 0.25, seed=0) == (relearned, held)
    assert attacks.split_forget_authors(authors, 0.25, seed=1) != (relearned, held)
    # at least one author relearned and one held out
    assert len({authors[i] for i in attacks.split_forget_authors(authors, 0.01)[0]}) == 1
    assert len({authors[i] for i in attacks.split_forget_authors(authors, 1.0)[1]}) == 1
    with pytest.raises(InputError, match="two authors"):
        attacks.split_forget_authors([7, 7, 7])


def test_recovery_auc_is_the_mean_level_over_the_budget():
    assert attacks.recovery_auc([0, 10], [0.2, 0.6]) == pytest.approx(0.4)
    assert attacks.recovery_auc([0, 1, 2, 5, 10, 20], [0.3] * 6) == pytest.approx(0.3)
    # uneven grid: trapezoids weighted by their width
    assert attacks.recovery_auc([0, 1, 4], [0.0, 1.0, 1.0]) == pytest.approx((0.5 + 3) / 4)
    with pytest.raises(ValueError, match="increase"):
        attacks.recovery_auc([0, 2, 1], [0, 0, 0])


def test_matched_step_index():
    assert attacks.matched_step_index({"reached": True, "matched_step": 12.3}, 30) == 13
    assert attacks.matched_step_index({"reached": True, "matched_step": 12.0}, 30) == 12
    assert attacks.matched_step_index({"reached": True, "matched_step": 0.2}, 30) == 1
    assert attacks.matched_step_index({"reached": False, "matched_step": 30.0}, 30) == 30


def test_attack_config_checks_its_fields():
    with pytest.raises(InputError, match="relearn_steps"):
        attacks.AttackConfig(relearn_steps=(5, 2))
    with pytest.raises(InputError, match="relearn_fraction"):
        attacks.AttackConfig(relearn_fraction=1.0)
    with pytest.raises(InputError, match="mia_attack"):
        attacks.AttackConfig(mia_attack="nope")
    with pytest.raises(InputError, match="bits"):
        attacks.AttackConfig(bits=(32,))


# -- the study's claims on synthetic tables --------------------------------------------------


def population(gain: dict, auc: dict | None = None, q4_shift: float = 0.0, targets=(0, 1, 2, 3, 4),
               seeds=(0,), noise=0.005, seed=0) -> pd.DataFrame:
    """A relearning summary: every label on every unit with the given recovery gain (and area),
    forget ES 0.3, its 4-bit copy shifted by ``q4_shift``; then the quantized rows, as measure()
    returns them."""
    rng = np.random.default_rng(seed)
    auc = auc or {}
    rows = []
    for t in targets:
        for s in seeds:
            for label in [*relearning.LABELS, relearning.REFERENCE]:
                e = lambda: rng.normal(0, noise)  # noqa: E731
                rows.append({"label": label, "target_seed": t, "seed": s, "reached": True, "matched_step": 10.0,
                             "relearn_gain": gain.get(label, 0.1) + e(),
                             "relearn_auc": auc.get(label, 0.4) + e(), "forget_es": 0.3 + e(),
                             "retain_es": 0.8, "mia": 0.9, "forget_es_q8": 0.3 + e(), "retain_es_q8": 0.8,
                             "mia_q8": 0.9, "forget_es_q4": 0.3 + q4_shift + e(), "retain_es_q4": 0.8,
                             "mia_q4": 0.9, "relearn_es_k0": 0.3, "relearn_es_k5": 0.5})
    frame = pd.DataFrame(rows)
    return pd.concat([frame, relearning.quantized_rows(frame)], ignore_index=True)


def verdicts_of(claims):
    return {c.id: c.verdict for c in claims}


def test_relearning_claims_follow_the_data_either_way():
    shallow = {"retain": 0.0, "ga": 0.3, "npo": 0.3, "simsat": 0.1, "satimp": 0.1, "simimp": 0.3, "annotated": 0.3}
    got = verdicts_of(relearning.decide(population(shallow, {"ga": 0.6, "simsat": 0.4, "satimp": 0.4},
                                                   q4_shift=0.2)))
    assert got == {"relearn_shallow": "reproduced", "relearn_saturation_vs_ga": "reproduced",
                   "relearn_saturation_vs_importance": "reproduced",
                   "relearned_level_saturation_vs_ga": "reproduced", "quantization_restores": "reproduced"}
    reverse = {"retain": 0.3, "ga": 0.1, "npo": 0.1, "simsat": 0.3, "satimp": 0.3, "simimp": 0.1, "annotated": 0.1}
    got = verdicts_of(relearning.decide(population(reverse, {"ga": 0.3, "simsat": 0.5, "satimp": 0.5},
                                                   q4_shift=-0.2)))
    assert got == {"relearn_shallow": "contradicted", "relearn_saturation_vs_ga": "contradicted",
                   "relearn_saturation_vs_importance": "contradicted",
                   "relearned_level_saturation_vs_ga": "contradicted", "quantization_restores": "contradicted"}
    same = verdicts_of(relearning.decide(population({})))
    assert set(same.values()) == {"inconclusive"}
    for claim in relearning.decide(population({})):
        assert claim.source == "ours"


def test_relearning_tables_and_curves():
    summary = population({"simsat": 0.05})
    tables = relearning.tables(summary)
    rec = tables["relearning_recovery"].set_index("label")
    assert list(rec.index) == [*relearning.LABELS, relearning.REFERENCE]     # no quantized rows
    assert rec.loc["simsat", "relearn_gain"] == pytest.approx(0.05, abs=0.01)
    quant = tables["relearning_quantization"]
    assert {"forget_es", "forget_es_q8", "forget_es_q4", "retain_es_q4"} <= set(quant.columns)
    curves = relearning.recovery_curves(summary)
    assert set(curves["step"]) == {0, 5}
    ga5 = curves[(curves.label == "ga") & (curves.step == 5)].iloc[0]
    assert ga5["mean"] == pytest.approx(0.5) and ga5["low"] <= ga5["mean"] <= ga5["high"]
    assert relearning.recovery_figure(summary).axes


@pytest.mark.parametrize("targets,seeds", [((0, 1, 2, 3, 4), (0,)), ((0,), (0, 1, 2)), ((3, 1, 2), (1, 0))])
def test_recovery_curves_are_the_claims_interval_of_each_label(targets, seeds):
    """recovery_curves goes through the figures' population_intervals; its numbers are those of
    verdicts.interval on each label's rows (clusters: targets, or runs with one target), rows in any
    order."""
    summary = population({"simsat": 0.05}, targets=targets, seeds=seeds, noise=0.05)
    rng = np.random.default_rng(1)
    summary["relearn_es_k5"] = summary["relearn_es_k5"] + rng.normal(0, 0.05, len(summary))
    summary = summary.sample(frac=1, random_state=0)
    curves = relearning.recovery_curves(summary)
    assert list(dict.fromkeys(curves["label"])) == [*relearning.LABELS, relearning.REFERENCE]
    for row in curves.itertuples():
        sel = summary[summary["label"] == row.label]
        mean, low, high, n = verdicts.interval(sel.assign(diff=sel[f"relearn_es_k{row.step}"]))
        assert (row.mean, row.low, row.high, row.n_clusters) == pytest.approx((mean, low, high, n), rel=1e-12)
