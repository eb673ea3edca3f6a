"""Unit tests for satimp_lab.unlearning.objectives: reductions, NPO/SimNPO/KL losses and the method registry."""

import dataclasses
import math
import pickle

import pytest
import torch
import torch.nn.functional as F

from satimp_lab.unlearning import objectives as O
from satimp_lab.unlearning import weighting as W


def _batch(B=4, T=10, V=13, seed=0):
    """Leaf logits [B,T,V], labels, logp [B,T] (graph to logits) and a ragged answer mask."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2).requires_grad_()
    labels = torch.randint(0, V, (B, T), generator=g)
    logp = torch.log_softmax(logits, -1).gather(-1, labels[..., None]).squeeze(-1)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = torch.arange(T)[None] < lengths[:, None]
    key_mask = torch.rand(B, T, generator=g) < 0.4
    return logits, labels, logp, mask, key_mask


# ----------------------------------------------------------------------------- reductions

def test_token_mean_is_not_mean_of_sequence_means():
    lp = torch.tensor([[-1.0, 0.0, 0.0], [-2.0, -3.0, -4.0]])
    m = torch.tensor([[1, 0, 0], [1, 1, 1]])
    assert torch.allclose(O.weighted_ga_loss(lp, m), torch.tensor(-10.0 / 4))       # (1/N) sum over N=4 tokens
    assert not torch.allclose(O.weighted_ga_loss(lp, m), torch.tensor((-1.0 - 3.0) / 2))
    w = torch.tensor([[0.5, 9.0, 9.0], [1.0, 0.0, 2.0]])
    assert torch.allclose(O.weighted_ga_loss(lp, m, w), torch.tensor((-0.5 - 2.0 - 8.0) / 4))
    assert torch.allclose(O.retain_nll_loss(lp, m), torch.tensor(10.0 / 4))


def test_masked_garbage_is_ignored():
    lp = torch.tensor([[-1.0, float("nan")], [-2.0, -math.inf]])
    m = torch.tensor([[1, 0], [1, 0]])
    assert torch.allclose(O.weighted_ga_loss(lp, m), torch.tensor(-1.5))
    assert torch.isfinite(O.weighted_ga_loss(lp, m, W.satimp(lp, m)))
    assert torch.isfinite(O.simnpo_loss(lp, m, 2.5))
    assert torch.isfinite(O.npo_loss(lp, lp, m, 0.5))


def test_retain_nll_matches_hf_cross_entropy():
    logits, labels, logp, mask, _ = _batch()
    hf = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.masked_fill(~mask, -100).reshape(-1),
                         ignore_index=-100)
    assert torch.allclose(O.retain_nll_loss(logp, mask), hf)


def test_weighted_ga_gradient_uses_constant_weights():
    _, _, logp, mask, _ = _batch()
    lp = logp.detach().requires_grad_()
    w_live = lp.exp() ** 2                             # a weight WITH a graph: the loss must detach it
    (g,) = torch.autograd.grad(O.weighted_ga_loss(lp, mask, w_live), lp)
    assert torch.allclose(g, torch.where(mask, w_live.detach(), 0.0) / mask.sum())


def test_instance_ga_loss_by_hand():
    lp = torch.tensor([[-1.0, -1.0, 0.0], [-0.5, -0.5, -1.0]])
    m = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # L = [2, 2]; -(1/B) sum w_i L_i
    assert torch.allclose(O.instance_ga_loss(lp, m, torch.tensor([0.5, 2.0])), torch.tensor(-(0.5 * 2 + 2.0 * 2) / 2))
    assert torch.allclose(O.instance_ga_loss(lp, m, torch.tensor(0.3)), torch.tensor(-0.3 * 2))
    with pytest.raises(ValueError, match="seq_weights"):
        O.instance_ga_loss(lp, m, torch.ones(3))


def test_npo_and_simnpo_by_hand():
    lp = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]])
    m = torch.tensor([[1, 1], [1, 0]])
    beta = 0.5
    assert torch.allclose(O.npo_loss(lp, lp, m, beta), torch.tensor(2 / beta * math.log(2)))   # at the reference
    ref = torch.tensor([[-1.0, -1.0], [-1.0, -7.0]])                                            # L_ref = [2, 1]
    L, L_ref = torch.tensor([3.0, 0.5]), torch.tensor([2.0, 1.0])
    expect = -(2 / beta) * F.logsigmoid(beta * (L - L_ref)).mean()
    assert torch.allclose(O.npo_loss(lp, ref, m, beta), expect)
    lbar = torch.tensor([1.5, 0.5])
    for gamma in (0.0, 0.2):
        expect = -(2 / 2.5) * F.logsigmoid(2.5 * (lbar - gamma)).mean()
        assert torch.allclose(O.simnpo_loss(lp, m, 2.5, gamma), expect)


def test_npo_reference_gets_no_gradient():
    _, _, logp, mask, _ = _batch()
    ref = (logp.detach() - 0.3).requires_grad_()
    loss = O.npo_loss(logp, ref, mask, 0.1)
    assert torch.autograd.grad(loss, ref, allow_unused=True)[0] is None


def test_kl_to_reference():
    logits, _, _, mask, _ = _batch()
    ref = (logits.detach() + 0.5 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(1),
                                               dtype=torch.float64)).requires_grad_()
    kl = O.kl_to_reference(logits, ref, mask)
    # torch's F.kl_div(input=log q, target=log r, log_target) = sum r (log r - log q) on the valid positions
    lq, lr = torch.log_softmax(logits, -1)[mask], torch.log_softmax(ref, -1)[mask]
    expect = F.kl_div(lq, lr, reduction="sum", log_target=True) / mask.sum()
    assert torch.allclose(kl, expect) and kl > 0
    assert torch.allclose(O.kl_to_reference(logits, logits.detach(), mask), torch.tensor(0.0, dtype=kl.dtype), atol=1e-12)
    # positions off the mask do not count, and the reference gets no gradient
    changed = torch.where(mask[..., None], logits.detach(), torch.zeros_like(logits) + 5.0)
    assert torch.allclose(O.kl_to_reference(changed, ref, mask), kl)
    g_logits, g_ref = torch.autograd.grad(kl, [logits, ref], allow_unused=True)
    assert g_ref is None and (g_logits[~mask] == 0).all()
    with pytest.raises(ValueError, match="ref_logits"):
        O.kl_to_reference(logits, ref[:, :2], mask)
    with pytest.raises(ValueError, match="mask"):
        O.kl_to_reference(logits, ref, mask[:, :2])


def test_loss_beta_must_be_positive():
    lp, m = torch.zeros(1, 2) - 1, torch.ones(1, 2)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="npo_beta"):
            O.npo_loss(lp, lp, m, bad)
        with pytest.raises(ValueError, match="npo_beta"):
            O.simnpo_loss(lp, m, bad)
    with pytest.raises(ValueError, match="gamma"):
        O.simnpo_loss(lp, m, 1.0, gamma=float("nan"))


# ----------------------------------------------------------------------------- registry

REQUIRED = ["ga", "gd", "ga_kl", "npo", "npo_gd", "simnpo", "simnpo_gd", "simsat", "wga", "simimp", "satimp",
            "annotated", "annotated_satimp", "hard_top", "hard_bottom", "hard_random", "group_simsat",
            "group_simimp", "instance_simsat", "instance_simimp", "instance_norm_simsat", "instance_norm_simimp",
            "batch_simsat", "batch_simimp", "simsat_gd", "satimp_gd", "simimp_gd"]


def test_registry_has_required_names_and_gd_variants():
    listed = O.list_methods()
    assert set(REQUIRED) <= set(listed)
    for name, m in O.METHODS.items():
        if m.weighting is not None:
            assert name.endswith("_gd") or (name + "_gd") in O.METHODS
    assert all(isinstance(v, str) and "\n" not in v and v for v in listed.values())
    assert "beta_sat=5.0" in listed["satimp"] and "beta_imp=0.1" in listed["satimp"]
    assert "k=0.15" in listed["hard_top"] and "npo_beta" in listed["npo"]


@pytest.mark.parametrize("name", sorted(O.list_methods()))
def test_every_method_runs(name):
    logits, _, logp, mask, key = _batch(seed=5)
    ref = logp.detach() - 0.2
    m = O.get_method(name)
    ft = m.forget_term(logp, mask, key_mask=key, ref_logp=ref, generator=torch.Generator().manual_seed(0))
    assert ft.loss.dim() == 0 and torch.isfinite(ft.loss) and ft.loss.requires_grad
    assert ft.weights.shape == logp.shape and not ft.weights.requires_grad
    assert (ft.weights[~mask] == 0).all() and torch.isfinite(ft.weights).all()
    assert ft.reduction in ("token", "sequence")
    (g,) = torch.autograd.grad(ft.loss, logits)
    assert torch.isfinite(g).all()
    # the traced weights explain the gradient: grad_logp = u / R
    lp = logp.detach().requires_grad_()
    ft2 = m.forget_term(lp, mask, key_mask=key, ref_logp=ref, generator=torch.Generator().manual_seed(0))
    (g_lp,) = torch.autograd.grad(ft2.loss, lp)
    R = mask.sum() if ft.reduction == "token" else mask.shape[0]
    assert torch.allclose(g_lp, ft.weights / R, atol=1e-12)
    # retain term and total
    if m.retain == "none":
        assert m.retain_term(logp, mask) is None
        assert torch.allclose(m.total_loss(ft.loss), m.forget_weight * ft.loss)
    else:
        r = m.retain_term(logp, mask, logits=logits, ref_logits=logits.detach() + 0.1)
        assert torch.isfinite(r)
        assert torch.allclose(m.total_loss(ft.loss, r), m.forget_weight * ft.loss + m.retain_weight * r)
        with pytest.raises(ValueError, match="retain_loss"):
            m.total_loss(ft.loss)


def test_forget_terms_equal_direct_formulas():
    _, _, lp, m, key = _batch(seed=2)
    ref = lp.detach() - 0.1

    def same(name, loss, weights, **ov):
        ft = O.get_method(name, **ov).forget_term(lp, m, key_mask=key, ref_logp=ref)
        assert torch.allclose(ft.loss, loss) and torch.allclose(ft.weights, weights), name

    ones = m.double()
    same("ga", O.weighted_ga_loss(lp, m), ones)
    w = W.satimp(lp, m, 5.0, 0.1)
    same("satimp", O.weighted_ga_loss(lp, m, w), w)
    w = W.saturation(lp, m, 1.0)
    same("simsat", O.weighted_ga_loss(lp, m, w), w)
    w = W.importance(lp, m, 1.0)
    same("simimp", O.weighted_ga_loss(lp, m, w), w)
    w = W.group_average(W.saturation(lp, m, 2.0), m, 3)
    same("group_simsat", O.weighted_ga_loss(lp, m, w), w, beta=2.0, group_size=3)
    s = W.instance_weights(lp, m, 1.0, "importance")
    same("instance_simimp", O.instance_ga_loss(lp, m, s), W.broadcast_to_tokens(s, m))
    s = W.instance_weights(lp, m, 1.0, "saturation", length_normalised=True)
    same("instance_norm_simsat", O.weighted_ga_loss(lp, m, W.broadcast_to_tokens(s, m)), W.broadcast_to_tokens(s, m))
    s = W.batch_weights(lp, m, 1.0, "saturation")
    same("batch_simsat", O.instance_ga_loss(lp, m, s), W.broadcast_to_tokens(s, m))
    w = W.compose(W.annotated(key, m, 1.0), W.satimp(lp, m))
    same("annotated_satimp", O.weighted_ga_loss(lp, m, w), w)
    w = W.annotated(key, m, 0.8).double()
    same("annotated", O.weighted_ga_loss(lp, m, w), w, p_imp=0.8)
    w = W.hard_sample(lp, m, 0.15, "top")
    same("hard_top", O.weighted_ga_loss(lp, m, w), w)
    w = W.hard_sample(lp, m, 0.5, "bottom")
    same("hard_bottom", O.weighted_ga_loss(lp, m, w), w)
    same("npo", O.npo_loss(lp, ref, m, 0.1), W.npo_implicit_weights(lp, ref, m, 0.1))
    same("simnpo", O.simnpo_loss(lp, m, 2.5), W.simnpo_implicit_weights(lp, m, 2.5))


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_registry_equivalences_losses_and_gradients(beta):
    def lg(name, **ov):
        logits, _, lp, m, key = _batch(seed=9)
        loss = O.get_method(name, **ov).forget_term(lp, m, key_mask=key).loss
        return loss.detach(), torch.autograd.grad(loss, logits)[0]

    for (a, ova), (b, ovb) in [
        (("satimp", dict(beta_sat=0, beta_imp=0)), ("ga", {})),
        (("satimp", dict(beta_sat=beta, beta_imp=0)), ("simsat", dict(beta_sat=beta))),
        (("satimp", dict(beta_sat=beta, beta_imp=0)), ("wga", dict(beta=beta))),
        (("satimp", dict(beta_sat=0, beta_imp=beta)), ("simimp", dict(beta_imp=beta))),
        (("group_simsat", dict(beta=beta, group_size=1)), ("simsat", dict(beta=beta))),
        (("annotated", dict(p_imp=0.5)), ("ga", {})),
    ]:
        la, ga = lg(a, **ova)
        lb, gb = lg(b, **ovb)
        if ova.get("p_imp") == 0.5:              # uniform 1/2 weights: half of GA
            lb, gb = lb / 2, gb / 2
        assert torch.allclose(la, lb, atol=1e-12) and torch.allclose(ga, gb, atol=1e-12), (a, b)


def test_defaults_and_flags():
    sat = O.get_method("satimp")
    assert sat.params == {"beta_sat": 5.0, "beta_imp": 0.1} and sat.retain == "none"
    assert O.get_method("satimp_gd").retain == "nll"
    assert (O.get_method("satimp_gd").forget_weight, O.get_method("satimp_gd").retain_weight) == (1.0, 1.0)
    assert O.get_method("npo_gd").forget_weight == 0.1375 and O.get_method("simnpo_gd").forget_weight == 0.1375
    assert O.get_method("hard_top").params["k"] == 0.15
    assert O.get_method("hard_bottom").params["k"] == 0.5
    assert O.get_method("hard_random").params == {"k": 0.5, "soft": 1.0}
    assert O.get_method("group_simimp").params["group_size"] == 4
    assert O.get_method("npo").needs_reference and O.get_method("ga_kl").needs_reference
    assert not O.get_method("simnpo").needs_reference and not O.get_method("satimp_gd").needs_reference
    assert O.get_method("satimp", retain="kl").needs_reference


def test_aliases_and_overrides():
    assert O.get_method("wga") == O.get_method("simsat")
    assert O.get_method("wga_gd") == O.get_method("simsat_gd")
    m = O.get_method("satimp", beta_sat=2.0, forget_weight=0.5)
    assert m.params == {"beta_sat": 2.0, "beta_imp": 0.1} and m.forget_weight == 0.5
    assert O.METHODS["satimp"].params["beta_sat"] == 5.0            # the registry entry is untouched
    assert O.get_method("simimp", beta=0.2).params == {"beta_imp": 0.2}
    assert O.get_method("group_simsat", group_size=4.0).params["group_size"] == 4
    m = O.get_method("simsat", retain="nll", retain_weight=2.0)
    assert m.retain == "nll" and m.retain_weight == 2.0
    hash(m)
    assert pickle.loads(pickle.dumps(m)) == m
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "x"


@pytest.mark.parametrize("name,overrides,param", [
    ("satimp", dict(beta_sat=-1), "beta_sat"),
    ("satimp", dict(beta_imp=float("nan")), "beta_imp"),
    ("simsat", dict(beta=float("inf")), "beta_sat"),
    ("group_simsat", dict(group_size=2.5), "group_size"),
    ("group_simsat", dict(group_size=0), "group_size"),
    ("hard_top", dict(k=0.0), "k"),
    ("hard_random", dict(soft=1.5), "soft"),
    ("annotated", dict(p_imp=-0.1), "p_imp"),
    ("npo", dict(npo_beta=0.0), "npo_beta"),
    ("simnpo", dict(gamma=float("inf")), "gamma"),
    ("satimp", dict(beta=1.0), "beta"),                 # ambiguous on a two-exponent method
    ("npo", dict(beta=1.0), "beta"),
    ("satimp", dict(k=0.5), "k"),                       # not a parameter of satimp
    ("simsat", dict(betta=1.0), "betta"),
    ("satimp", dict(retain="both"), "retain"),
    ("gd", dict(retain_weight=-1.0), "retain_weight"),
    ("ga", dict(forget_weight=float("nan")), "forget_weight"),
])
def test_bad_overrides_name_parameter(name, overrides, param):
    with pytest.raises(ValueError, match=rf"\b{param}\b"):
        O.get_method(name, **overrides)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as e:
        O.get_method("satimpp")
    assert "satimpp" in str(e.value) and "satimp_gd" in str(e.value) and "wga" in str(e.value)


def test_missing_inputs_raise():
    _, _, lp, m, _ = _batch()
    with pytest.raises(ValueError, match="key_mask"):
        O.get_method("annotated").forget_term(lp, m)
    with pytest.raises(ValueError, match="key_mask"):
        O.get_method("annotated_satimp_gd").forget_term(lp, m)
    with pytest.raises(ValueError, match="ref_logp"):
        O.get_method("npo").forget_term(lp, m)
    with pytest.raises(ValueError, match="mask"):
        O.get_method("satimp").forget_term(lp, m[:, :3])
    with pytest.raises(ValueError, match="retain"):
        O.get_method("gd").retain_term()
    with pytest.raises(ValueError, match="ref_logits"):
        O.get_method("ga_kl").retain_term(mask=m, logits=torch.zeros(*m.shape, 3))


def test_method_construction_is_validated():
    with pytest.raises(ValueError, match="forget"):
        O.Method("x", "d", forget="dpo")
    with pytest.raises(ValueError, match="granularity"):
        O.Method("x", "d", forget="ga", granularity="group")
    with pytest.raises(ValueError, match="weighting"):
        O.Method("x", "d", forget="instance", weighting="satimp", granularity="instance",
                 params={"beta_sat": 1.0, "beta_imp": 1.0})
    with pytest.raises(ValueError, match="beta_sat"):
        O.Method("x", "d", forget="weighted_ga", weighting="saturation", params={})
    ok = O.Method("x", "d", forget="weighted_ga", weighting="satimp", granularity="group",
                  params={"beta_sat": 1.0, "beta_imp": 1.0, "group_size": 2})   # group works for any token rule
    _, _, lp, m, _ = _batch()
    assert torch.isfinite(ok.forget_term(lp, m).loss)


def test_hard_random_method_is_deterministic_with_generator():
    _, _, lp, m, _ = _batch(B=6, T=30, seed=4)
    meth = O.get_method("hard_random", k=0.3)
    a = meth.forget_term(lp, m, generator=torch.Generator().manual_seed(3)).weights
    b = meth.forget_term(lp, m, generator=torch.Generator().manual_seed(3)).weights
    assert torch.equal(a, b)
    assert torch.equal(a.sum(1).long(), torch.floor(0.3 * m.sum(1).double()).long())
