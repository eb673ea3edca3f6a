"""Unit tests for satimp_lab.unlearning.weighting: closed forms, hand-worked cases, properties (docs/methods.md#methods)."""

import math

import pytest
import torch

from satimp_lab.unlearning import weighting as W
from satimp_lab.unlearning.objectives import weighted_ga_loss, npo_loss, simnpo_loss

torch.set_default_dtype(torch.float32)


def _rand_logp(B=4, T=12, seed=0, lo=-4.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, generator=g, dtype=torch.float64) * lo      # logp in (lo, 0]


def _ragged_mask(B=4, T=12, seed=0):
    g = torch.Generator().manual_seed(seed + 100)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    starts = torch.randint(0, 3, (B,), generator=g)
    pos = torch.arange(T)
    return (pos[None] >= starts[:, None]) & (pos[None] < (starts + lengths).clamp(max=T)[:, None])


def _model_logp(B=3, T=7, V=11, seed=0):
    """A leaf of logits [B, T, V] and the label log-likelihoods [B, T] computed from it."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2).requires_grad_()
    labels = torch.randint(0, V, (B, T), generator=g)
    logp = torch.log_softmax(logits, -1).gather(-1, labels[..., None]).squeeze(-1)
    return logits, labels, logp


# ----------------------------------------------------------------------------- closed forms

P_GRID = torch.tensor([0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99], dtype=torch.float64)

# the weight table of docs/methods.md#the-weight-family (rounded as printed there)
TABLE = {
    ("sat", 1.0): [.01, .1, .3, .5, .7, .9, .99],
    ("sat", 5.0): [0, 0, .0024, .031, .168, .590, .951],
    ("imp", 1.0): [.99, .9, .7, .5, .3, .1, .01],
    ("imp", 5.0): [.951, .590, .168, .031, .0024, 0, 0],
    ("satimp", (5.0, 0.1)): [0, 0, .0023, .029, .149, .469, .600],
    ("satimp", (5.0, 1.0)): [0, 0, .0017, .016, .050, .059, .0095],
}


@pytest.mark.parametrize("key", list(TABLE))
def test_spec_table(key):
    kind, beta = key
    lp, m = P_GRID.log()[None], torch.ones(1, 7)
    if kind == "sat":
        w = W.saturation(lp, m, beta)
    elif kind == "imp":
        w = W.importance(lp, m, beta)
    else:
        w = W.satimp(lp, m, *beta)
    assert torch.allclose(w[0], torch.tensor(TABLE[key], dtype=w.dtype), atol=6e-4)


def test_satimp_headline_value_and_closed_form():
    lp = torch.tensor([[math.log(0.9)]])
    assert round(W.satimp(lp, torch.ones(1, 1), 5.0, 0.1).item(), 3) == 0.469
    lp, m = _rand_logp(), torch.ones(4, 12)
    p = lp.exp()
    assert torch.allclose(W.satimp(lp, m, 2.5, 0.7), p ** 2.5 * (1 - p) ** 0.7)
    assert torch.allclose(W.saturation(lp, m, 3.0), p ** 3)
    assert torch.allclose(W.importance(lp, m, 0.2), (1 - p) ** 0.2)


@pytest.mark.parametrize("b1,b2,wmax", [(5.0, 0.1, 0.611), (5.0, 1.0, 0.067)])
def test_satimp_peak(b1, b2, wmax):
    p = torch.linspace(1e-4, 1 - 1e-6, 200001, dtype=torch.float64)
    w = W.satimp(p.log()[None], torch.ones(1, p.numel()), b1, b2)[0]
    assert abs(p[w.argmax()].item() - b1 / (b1 + b2)) < 1e-4
    assert round(w.max().item(), 3) == wmax


def test_equivalences_exact_including_endpoints():
    lp = torch.cat([_rand_logp(2, 6), torch.tensor([[0.0, -math.inf, 1e-7, -1e-12, -30.0, -0.5]], dtype=torch.float64)])
    m = torch.ones_like(lp)
    for b in (0.0, 0.1, 1.0, 5.0):
        assert torch.equal(W.satimp(lp, m, b, 0.0), W.saturation(lp, m, b))
        assert torch.equal(W.satimp(lp, m, 0.0, b), W.importance(lp, m, b))
    assert torch.equal(W.satimp(lp, m, 0.0, 0.0), torch.ones_like(lp))     # 0^0 = 1 -> GA
    assert torch.isfinite(W.satimp(lp, m, 5.0, 0.1)).all()                 # p > 1 by rounding is clamped


def _grad_of(loss_fn, seed=0):
    logits, _, logp = _model_logp(seed=seed)
    mask = _ragged_mask(3, 7, seed)
    loss = loss_fn(logp, mask)
    (g,) = torch.autograd.grad(loss, logits)
    return loss.detach(), g


@pytest.mark.parametrize("beta", [0.5, 1.0, 5.0])
def test_equivalences_on_losses_and_gradients(beta):
    pairs = [
        (lambda lp, m: weighted_ga_loss(lp, m, W.satimp(lp, m, 0.0, 0.0)), lambda lp, m: weighted_ga_loss(lp, m)),
        (lambda lp, m: weighted_ga_loss(lp, m, W.satimp(lp, m, beta, 0.0)),
         lambda lp, m: weighted_ga_loss(lp, m, W.saturation(lp, m, beta))),
        (lambda lp, m: weighted_ga_loss(lp, m, W.satimp(lp, m, 0.0, beta)),
         lambda lp, m: weighted_ga_loss(lp, m, W.importance(lp, m, beta))),
    ]
    for f1, f2 in pairs:
        l1, g1 = _grad_of(f1)
        l2, g2 = _grad_of(f2)
        assert torch.allclose(l1, l2, atol=1e-12) and torch.allclose(g1, g2, atol=1e-12)
    # and they are not trivially equal to each other
    _, g_sat = _grad_of(pairs[1][1])
    _, g_ga = _grad_of(pairs[0][1])
    assert not torch.allclose(g_sat, g_ga)


# ----------------------------------------------------------------------------- masking, detaching

ALL_TOKEN_FNS = {
    "saturation": lambda lp, m: W.saturation(lp, m, 2.0),
    "importance": lambda lp, m: W.importance(lp, m, 2.0),
    "satimp": lambda lp, m: W.satimp(lp, m),
    "group": lambda lp, m: W.group_average(W.saturation(lp, m, 1.0), m, 3),
    "instance": lambda lp, m: W.broadcast_to_tokens(W.instance_weights(lp, m, 1.0), m),
    "hard_top": lambda lp, m: W.hard_sample(lp, m, 0.3, "top", soft=0.8),
    "hard_bottom": lambda lp, m: W.hard_sample(lp, m, 0.3, "bottom", soft=0.8),
    "hard_random": lambda lp, m: W.hard_sample(lp, m, 0.3, "random", soft=0.8, generator=torch.Generator().manual_seed(0)),
    "annotated": lambda lp, m: W.annotated(lp < -2, m, 0.7),
    "npo": lambda lp, m: W.npo_implicit_weights(lp, lp.detach() - 0.1, m, 0.5),
    "simnpo": lambda lp, m: W.simnpo_implicit_weights(lp, m, 2.5),
    "compose": lambda lp, m: W.compose(W.annotated(lp < -2, m, 0.7), W.satimp(lp, m)),
}


@pytest.mark.parametrize("name", list(ALL_TOKEN_FNS))
def test_zero_off_mask_detached_and_shaped(name):
    lp = _rand_logp().requires_grad_()
    m = _ragged_mask()
    # garbage at masked positions must not leak (NaN, -inf)
    lp_g = torch.where(m, lp, torch.full_like(lp, float("nan")))
    lp_g = torch.where(torch.arange(12)[None] % 2 == 0, lp_g, torch.where(m, lp_g, torch.full_like(lp, -math.inf)))
    for mask in (m, m.long(), m.double()):
        w = ALL_TOKEN_FNS[name](lp_g, mask)
        assert w.shape == lp.shape
        assert not w.requires_grad and w.grad_fn is None
        assert torch.equal(w[~m], torch.zeros_like(w[~m]))
        assert torch.isfinite(w).all()


def test_weights_carry_no_gradient_manual_formula():
    logits, labels, logp = _model_logp()
    mask = _ragged_mask(3, 7)
    w = W.satimp(logp, mask, 5.0, 0.1)
    (g,) = torch.autograd.grad(weighted_ga_loss(logp, mask, w), logits, retain_graph=True)
    # manual: -(1/N) sum_t w_t grad CE_t, grad_logits CE_t = softmax - onehot
    N = mask.sum()
    grad_ce = torch.softmax(logits.detach(), -1) - torch.nn.functional.one_hot(labels, logits.shape[-1])
    manual = -(w * mask)[..., None] * grad_ce / N
    assert torch.allclose(g, manual, atol=1e-12)
    # negative control: weights that keep their graph give a different gradient
    p = logp.exp()
    w_live = p ** 5.0 * (1 - p) ** 0.1
    (g_live,) = torch.autograd.grad(-(w_live * -logp)[mask].sum() / N, logits)
    assert not torch.allclose(g, g_live, atol=1e-6)


# ----------------------------------------------------------------------------- group averaging

def _group_reference(w, mask, G):
    """Literal per-sequence transcription of the official group_and_average."""
    out = torch.zeros_like(w)
    for i in range(w.shape[0]):
        idx = mask[i].nonzero().flatten()
        vals = w[i, idx]
        order = torch.sort(vals, descending=True, stable=True).indices
        for s in range(0, len(idx), G):
            chunk = order[s:s + G]
            out[i, idx[chunk]] = vals[chunk].mean()
    return out


def test_group_hand_worked_partial_bucket():
    w = torch.tensor([[5.0, 1.0, 3.0, 2.0, 4.0, 9.0], [0.6, 0.2, 0.4, 0.0, 0.0, 0.0]])
    m = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]])
    out = W.group_average(w, m, 2)
    # row 0 sorted 5,4 | 3,2 | 1 -> 4.5, 2.5, 1 (partial); the masked 9 is ignored
    assert torch.allclose(out[0], torch.tensor([4.5, 1.0, 2.5, 2.5, 4.5, 0.0]))
    assert torch.allclose(out[1], torch.tensor([0.5, 0.2, 0.5, 0.0, 0.0, 0.0]))
    out3 = W.group_average(w, m, 3)
    assert torch.allclose(out3[0], torch.tensor([4.0, 1.5, 4.0, 1.5, 4.0, 0.0]))


@pytest.mark.parametrize("T", [7, 64, 600])
def test_group_properties(T):
    lp = _rand_logp(5, T, seed=T)
    m = _ragged_mask(5, T, seed=T)
    w = W.saturation(lp, m, 1.0)
    assert torch.equal(W.group_average(w, m, 1), w)                              # G = 1 identity
    n = m.sum(1, keepdim=True)
    seq_mean = (w.sum(1, keepdim=True) / n).expand_as(w)
    for G in (int(n.max()), T + 5):                                             # G >= n: sequence mean
        assert torch.allclose(W.group_average(w, m, G), torch.where(m, seq_mean, 0.0))
    for G in (2, 3, 5):
        out = W.group_average(w, m, G)
        assert torch.allclose(out.sum(1), w.sum(1))                             # sums preserved
        assert torch.allclose(out, _group_reference(w, m, G))
    assert torch.allclose(W.group_average(w, m, 4.0), W.group_average(w, m, 4))  # integral float accepted


# ----------------------------------------------------------------------------- instance / batch

def test_instance_weights_by_hand():
    lp = torch.tensor([[math.log(0.5), math.log(0.5), 0.0], [math.log(0.9), math.log(0.4), math.log(0.1)]])
    m = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # official: P = product
    assert torch.allclose(W.instance_weights(lp, m, 1.0), torch.tensor([0.25, 0.036]))
    assert torch.allclose(W.instance_weights(lp, m, 2.0, "importance"), torch.tensor([0.75 ** 2, 0.964 ** 2]))
    # ours: P = geometric mean
    gm = (0.9 * 0.4 * 0.1) ** (1 / 3)
    assert torch.allclose(W.instance_weights(lp, m, 1.0, length_normalised=True), torch.tensor([0.5, gm]))
    assert torch.allclose(W.instance_weights(lp, m, 0.5, "importance", length_normalised=True),
                          torch.tensor([0.5 ** 0.5, (1 - gm) ** 0.5]))
    # batch: one scalar, the mean of instance weights
    b = W.batch_weights(lp, m, 1.0)
    assert b.dim() == 0 and torch.allclose(b, torch.tensor((0.25 + 0.036) / 2))
    tok = W.broadcast_to_tokens(W.instance_weights(lp, m, 1.0), m)
    assert torch.allclose(tok, torch.tensor([[0.25, 0.25, 0.0], [0.036, 0.036, 0.036]]))
    assert torch.allclose(W.broadcast_to_tokens(b, m), b * m)


def test_instance_weights_detached_and_empty_sequence():
    lp = _rand_logp(3, 5).requires_grad_()
    m = torch.ones(3, 5, dtype=torch.bool)
    m[1] = False
    w = W.instance_weights(lp, m, 1.0, "importance")
    assert not w.requires_grad and w[1] == 0
    assert torch.allclose(W.batch_weights(lp, m, 1.0, "importance"), w[[0, 2]].mean())


# ----------------------------------------------------------------------------- hard sampling

def _distinct_logp(B, T, seed):
    g = torch.Generator().manual_seed(seed)
    return -torch.stack([torch.randperm(T, generator=g).double() * 0.1 + 0.05 for _ in range(B)])


@pytest.mark.parametrize("k", [0.15, 0.3, 0.5, 0.75, 1.0])
def test_hard_counts(k):
    lp = _distinct_logp(6, 40, seed=int(k * 100))
    m = _ragged_mask(6, 40, seed=3)
    top = W.hard_sample(lp, m, k, "top")
    bot = W.hard_sample(lp, m, k, "bottom")
    for i in range(6):
        ce = -lp[i][m[i]]
        n = ce.numel()
        tau = torch.quantile(ce, 1 - k)
        n_top, n_bot = int(top[i].sum()), int(bot[i].sum())
        assert n_top == int((ce > tau).sum()) and n_bot == int((ce < tau).sum())
        assert abs(n_top - k * n) <= 1 and abs(n_bot - (1 - k) * n) <= 1
        ties = int((ce == tau).sum())
        assert n_top + n_bot == n - ties                                        # union = all but ties
        assert ((top[i] + bot[i]) <= 1).all()
        # top tokens have the highest CE
        if n_top and n_bot:
            assert (-lp[i])[top[i] == 1].min() > (-lp[i])[bot[i] == 1].max()


def test_hard_top_spec_default_and_tie_at_tau():
    lp = -torch.arange(1, 21, dtype=torch.float64)[None] * 0.1                  # 20 distinct CEs
    assert int(W.hard_sample(lp, torch.ones(1, 20), 0.15, "top").sum()) == math.ceil(0.15 * 20)
    lp = -torch.arange(1, 12, dtype=torch.float64)[None]                          # n=11, k=.5: tau = 6 exactly
    m = torch.ones(1, 11)
    top, bot = W.hard_sample(lp, m, 0.5, "top"), W.hard_sample(lp, m, 0.5, "bottom")
    assert top.sum() == 5 and bot.sum() == 5 and top[0, 5] == 0 and bot[0, 5] == 0


def test_hard_random_exact_count_and_determinism():
    lp, m = _rand_logp(5, 30), _ragged_mask(5, 30)
    for k in (0.1, 0.29, 0.5, 1.0):
        w = W.hard_sample(lp, m, k, "random", generator=torch.Generator().manual_seed(7))
        assert torch.equal(w.sum(1).long(), torch.floor(k * m.sum(1).double()).long())
    a = W.hard_sample(lp, m, 0.5, "random", generator=torch.Generator().manual_seed(1))
    b = W.hard_sample(lp, m, 0.5, "random", generator=torch.Generator().manual_seed(1))
    c = W.hard_sample(lp, m, 0.5, "random", generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("mode", ["top", "bottom", "random"])
def test_hard_fractional_soft_is_honoured(mode):
    lp, m = _rand_logp(4, 20), _ragged_mask(4, 20)
    hard = W.hard_sample(lp, m, 0.4, mode, soft=1.0, generator=torch.Generator().manual_seed(0))
    soft = W.hard_sample(lp, m, 0.4, mode, soft=0.3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(soft, torch.where(m, torch.where(hard == 1, 0.3, 0.7), 0.0).to(soft.dtype))
    zero = W.hard_sample(lp, m, 0.4, mode, soft=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(zero, torch.where(m, 1 - hard, 0.0).to(zero.dtype))


# ----------------------------------------------------------------------------- annotation, compose

def test_annotated_and_compose():
    m = torch.tensor([[1, 1, 1, 0]])
    key = torch.tensor([[1, 0, 1, 1]])
    assert torch.allclose(W.annotated(key, m), torch.tensor([[1.0, 0.0, 1.0, 0.0]]))
    assert torch.allclose(W.annotated(key, m, 0.8), torch.tensor([[0.8, 0.2, 0.8, 0.0]]))
    assert torch.allclose(W.annotated(key.bool(), m.bool(), 0.5), torch.tensor([[0.5, 0.5, 0.5, 0.0]]))
    lp = torch.tensor([[math.log(0.9), math.log(0.5), math.log(0.2), 0.0]])
    comp = W.compose(W.annotated(key, m, 0.8), W.saturation(lp, m, 1.0))
    assert torch.allclose(comp, torch.tensor([[0.72, 0.1, 0.16, 0.0]]))


# ----------------------------------------------------------------------------- NPO / SimNPO implicit weights

@pytest.mark.parametrize("beta", [0.1, 1.0, 2.5])
def test_npo_implicit_weights_match_autograd(beta):
    lp = _rand_logp(4, 9, seed=1).requires_grad_()
    ref = _rand_logp(4, 9, seed=2)
    m = _ragged_mask(4, 9, seed=1)
    u = W.npo_implicit_weights(lp, ref, m, beta)
    (g,) = torch.autograd.grad(npo_loss(lp, ref, m, beta), lp)
    B = lp.shape[0]
    assert torch.allclose(g, u / B, atol=1e-12)                  # grad = -(1/B) sum u grad CE, CE = -logp
    # docs/methods.md#implicit-weights on the summed NLL itself: d loss / d L_i = -2 sigma(-beta (L - L_ref)) / B
    L = (-(lp.detach() * m).sum(1)).requires_grad_()
    L_ref = -(ref * m).sum(1)
    loss = -(2 / beta) * torch.nn.functional.logsigmoid(beta * (L - L_ref)).mean()
    (gL,) = torch.autograd.grad(loss, L)
    assert torch.allclose(gL, -2 * torch.sigmoid(-beta * (L - L_ref)).detach() / B)
    # closed form 2 pi^beta / (pi^beta + pi_ref^beta), and on every valid token of the sequence
    pi, pir = (-L).exp().detach(), (-L_ref).exp()
    w = 2 * pi ** beta / (pi ** beta + pir ** beta)
    assert torch.allclose(u, torch.where(m, w[:, None], 0.0))


@pytest.mark.parametrize("beta,gamma", [(2.5, 0.0), (1.0, 0.3), (0.5, -0.2)])
def test_simnpo_implicit_weights_match_autograd(beta, gamma):
    lp = _rand_logp(4, 9, seed=3).requires_grad_()
    m = _ragged_mask(4, 9, seed=3)
    u = W.simnpo_implicit_weights(lp, m, beta, gamma)
    (g,) = torch.autograd.grad(simnpo_loss(lp, m, beta, gamma), lp)
    assert torch.allclose(g, u / lp.shape[0], atol=1e-12)
    if gamma == 0.0:
        n = m.sum(1)
        pbar = (lp.detach() * m).sum(1).div(n).exp()
        w = 2 * pbar ** beta / (1 + pbar ** beta)
        assert torch.allclose(u, torch.where(m, (w / n)[:, None], 0.0))


def test_npo_and_simnpo_losses_unlearn():
    # one gradient-descent step on the loss must lower the forget likelihood (sign check)
    for loss_fn in (lambda lp, m: npo_loss(lp, torch.full_like(lp, -1.0), m, 0.5),
                    lambda lp, m: simnpo_loss(lp, m, 2.5)):
        lp = torch.full((2, 4), -1.0, dtype=torch.float64, requires_grad=True)
        m = torch.ones(2, 4)
        (g,) = torch.autograd.grad(loss_fn(lp, m), lp)
        assert ((lp - 0.1 * g) < lp).all()


# ----------------------------------------------------------------------------- validation

BAD = [
    (lambda lp, m: W.satimp(lp, m, beta_sat=-1), "beta_sat"),
    (lambda lp, m: W.satimp(lp, m, beta_sat=float("nan")), "beta_sat"),
    (lambda lp, m: W.satimp(lp, m, beta_imp=float("inf")), "beta_imp"),
    (lambda lp, m: W.satimp(lp, m, beta_imp="0.1"), "beta_imp"),
    (lambda lp, m: W.saturation(lp, m, beta=-0.5), "beta"),
    (lambda lp, m: W.importance(lp, m, beta=float("nan")), "beta"),
    (lambda lp, m: W.instance_weights(lp, m, -1.0), "beta"),
    (lambda lp, m: W.instance_weights(lp, m, 1.0, kind="sat"), "kind"),
    (lambda lp, m: W.batch_weights(lp, m, 1.0, kind="imp"), "kind"),
    (lambda lp, m: W.group_average(lp.exp(), m, 0), "group_size"),
    (lambda lp, m: W.group_average(lp.exp(), m, 2.5), "group_size"),
    (lambda lp, m: W.group_average(lp.exp(), m, True), "group_size"),
    (lambda lp, m: W.hard_sample(lp, m, 0.0), "k"),
    (lambda lp, m: W.hard_sample(lp, m, 1.5), "k"),
    (lambda lp, m: W.hard_sample(lp, m, 0.5, soft=1.2), "soft"),
    (lambda lp, m: W.hard_sample(lp, m, 0.5, soft=-0.1), "soft"),
    (lambda lp, m: W.hard_sample(lp, m, 0.5, mode="middle"), "mode"),
    (lambda lp, m: W.annotated(m, m, p_imp=2.0), "p_imp"),
    (lambda lp, m: W.annotated(m[:, :3], m), "key_mask"),
    (lambda lp, m: W.satimp(lp, m[:, :3]), "mask"),
    (lambda lp, m: W.npo_implicit_weights(lp, lp[:, :3], m, 1.0), "ref_logp"),
    (lambda lp, m: W.npo_implicit_weights(lp, lp, m, -1.0), "beta"),
    (lambda lp, m: W.simnpo_implicit_weights(lp, m, 1.0, gamma=float("inf")), "gamma"),
    (lambda lp, m: W.broadcast_to_tokens(torch.ones(3), m), "seq_weights"),
    (lambda lp, m: W.compose(m.float(), m[:, :2].float()), "weights"),
]


@pytest.mark.parametrize("fn,param", BAD, ids=[f"{i}-{p}" for i, (_, p) in enumerate(BAD)])
def test_value_errors_name_parameter(fn, param):
    lp, m = _rand_logp(2, 5), torch.ones(2, 5)
    with pytest.raises(ValueError, match=rf"\b{param}\b"):
        fn(lp, m)


def test_error_message_format():
    with pytest.raises(ValueError, match=r"^beta_sat must be a finite number >= 0, got -1$"):
        W.satimp(_rand_logp(1, 2), torch.ones(1, 2), beta_sat=-1)
