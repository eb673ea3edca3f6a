"""Departures from the official code: each is pinned by a test and written down where users look
(the function's docstring and docs/departures.md)."""

import inspect
from pathlib import Path

import pytest
import torch

from satimp_lab.unlearning import objectives as O
from satimp_lab.unlearning import weighting as W

DOC = Path(__file__).resolve().parents[3] / "docs" / "departures.md"
DEPARTURES = {  # function -> (its name in docs/departures.md, official file named in both places)
    W.hard_sample: ("weighting.hard_sample", "dataloader_hardsampling.py"),
    W.group_average: ("weighting.group_average", "dataloader_granu.py"),
    O.simnpo_loss: ("objectives.simnpo_loss", "dataloader_base.py"),
    O.kl_to_reference: ("objectives.kl_to_reference", "dataloader_base.py"),
}


@pytest.mark.parametrize("fn", list(DEPARTURES), ids=lambda f: f.__name__)
def test_each_departure_is_documented_in_the_docstring_and_the_page(fn):
    name, official = DEPARTURES[fn]
    doc = inspect.getdoc(fn)
    assert "docs/departures.md" in doc and official in doc and "51314c0" in doc
    page = DOC.read_text(encoding="utf-8")
    assert f"`{name}`" in page and official in page


def test_hard_random_with_no_token_to_select_gives_every_token_one_minus_soft():
    logp = torch.log(torch.full((1, 6), 0.5))
    mask = torch.tensor([[0, 1, 1, 1, 1, 0]])  # 4 valid tokens, k = 0.2: floor(0.8) = 0 selected
    for soft in (1.0, 0.7):
        w = W.hard_sample(logp, mask, k=0.2, mode="random", soft=soft, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(w[0, 1:5], torch.full((4,), 1.0 - soft))  # official: 1 everywhere
        assert w[0, 0] == 0 and w[0, 5] == 0
    w = W.hard_sample(logp, mask, k=0.5, mode="random", soft=1.0, generator=torch.Generator().manual_seed(0))
    assert w.sum() == 2  # floor(2.0) = 2 selected once there is one to select


def test_group_average_gives_a_zero_weight_valid_token_its_bucket_mean():
    # position 0 is a question token (invalid); position 3 is valid with weight exactly 0
    weights = torch.tensor([[0.0, 0.9, 0.3, 0.0, 0.6, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[0, 1, 1, 1, 1, 0]])
    out = W.group_average(weights, mask, group_size=2)
    # sorted valid: 0.9 (1), 0.6 (4) | 0.3 (2), 0.0 (3) -> means 0.75 and 0.15
    assert out.tolist() == [[0.0, 0.75, 0.15, 0.15, 0.75, 0.0]]
    assert out.sum() == pytest.approx(weights[mask.bool()].sum())


def test_simnpo_length_counts_the_scored_shifted_positions():
    # MUSE-style: every position is a label, so after the shift all 5 positions are scored
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.5, 0.125, 0.5]], dtype=torch.float64))
    mask = torch.ones(1, 5, dtype=torch.bool)
    beta = 2.0
    lbar = -logp.sum() / 5  # official: / 6 (the unshifted labels, the first one included)
    expected = -(2 / beta) * torch.nn.functional.logsigmoid(beta * lbar)
    assert O.simnpo_loss(logp, mask, beta) == pytest.approx(expected.item(), rel=1e-12)
    w = W.simnpo_implicit_weights(logp, mask, beta)
    assert w[0, 0].item() == pytest.approx((2 * torch.sigmoid(-beta * lbar) / 5).item(), rel=1e-12)


def test_kl_to_reference_keeps_float64_precision():
    torch.manual_seed(0)
    ref = torch.randn(2, 3, 7, dtype=torch.float64)
    logits = ref + 1e-6 * torch.randn(2, 3, 7, dtype=torch.float64)  # KL ~ 1e-13, below float32's reach
    mask = torch.ones(2, 3, dtype=torch.bool)
    logq, logr = torch.log_softmax(logits, -1), torch.log_softmax(ref, -1)
    expected = (logr.exp() * (logr - logq)).sum(-1).mean()
    got = O.kl_to_reference(logits, ref, mask)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert O.kl_to_reference(logits.float(), ref.float(), mask).dtype == torch.float32
