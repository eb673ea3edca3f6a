"""Our privacy-metric conventions held against open-unlearning (docs/methods.md#membership-inference,
docs/methods.md#which-tokens-count, docs/methods.md#truth-ratio): hand-computed values of the
min-k% EOS option, min-k%++, the reference attack, PrivLeak and the ``prob_mean`` truth-ratio
aggregator, their edges, and the zlib text difference on the project's own tokenizer."""

import math
import zlib

import numpy as np
import pytest
import torch

from satimp_lab.errors import InputError
from satimp_lab.evaluation import privacy, tofu

# The example: four answer tokens, then an EOS the model finds unlikely.
ANSWER_LOGPS = [-0.1, -0.2, -0.3, -0.4]
EOS_LOGP = -9.0


# ----------------------------------------------------------------------------- min-k% and the EOS


def test_min_k_scores_the_eos_by_default_and_drops_it_like_open_unlearning_on_request():
    logps = ANSWER_LOGPS + [EOS_LOGP]
    # k = 0.2: with the EOS, int(0.2 * 5) = 1 lowest token is the EOS; without, max(1, int(0.8)) = 1
    assert privacy.min_k_score(logps, k=0.2) == pytest.approx(9.0)
    assert privacy.min_k_score(logps, k=0.2, include_eos=True) == pytest.approx(9.0)
    assert privacy.min_k_score(logps, k=0.2, include_eos=False) == pytest.approx(0.4)
    # k = 0.5: 2 of 5 (EOS and -0.4) vs 2 of 4 (-0.4 and -0.3)
    assert privacy.min_k_score(logps, k=0.5) == pytest.approx((9.0 + 0.4) / 2)
    assert privacy.min_k_score(logps, k=0.5, include_eos=False) == pytest.approx(0.35)
    # the *last* entry is the EOS, wherever the lowest value is
    assert privacy.min_k_score([-9.0, -0.1, -0.2, -0.3, -0.4], k=0.2, include_eos=False) == pytest.approx(9.0)


def test_min_k_without_the_eos_changes_the_auc_as_documented():
    # members: trained answers, but one with an unlikely EOS; non-members: higher losses throughout
    members = [ANSWER_LOGPS + [EOS_LOGP], [-0.5] * 4 + [-0.1]]
    nonmembers = [[-1.0] * 4 + [-0.1], [-2.0] * 4 + [-0.1]]

    def auc(include_eos):
        return privacy.mia_auc([privacy.min_k_score(m, 0.2, include_eos) for m in members],
                               [privacy.min_k_score(n, 0.2, include_eos) for n in nonmembers])

    assert auc(True) == 0.5   # member scores 9.0, 0.5 vs 1.0, 2.0: 2 of 4 pairs
    assert auc(False) == 1.0  # member scores 0.4, 0.5 vs 1.0, 2.0


def test_min_k_edges_raise_naming_the_input():
    with pytest.raises(ValueError, match="include_eos=False drops the only one"):
        privacy.min_k_score([EOS_LOGP], 0.2, include_eos=False)
    with pytest.raises(ValueError, match="token_logps"):
        privacy.min_k_score([], 0.2)
    with pytest.raises(ValueError, match="k must be"):
        privacy.min_k_score(ANSWER_LOGPS, 0.0)


def _scored(qa_id, logps):
    logp = torch.tensor(logps)
    labels = torch.arange(len(logps))
    return privacy.ScoredAnswer(qa_id, labels, labels, logp)


def test_attack_values_from_a_reading_default_to_the_eos_and_drop_it_on_request():
    s = [_scored(7, ANSWER_LOGPS + [EOS_LOGP])]
    rows = [{"answer": "Paris.", "qa_id": 7}]
    assert privacy._mia_values(s, rows, "min_k", 0.2) == {7: pytest.approx(9.0)}
    assert privacy._mia_values(s, rows, "min_k", 0.2, include_eos=False) == {7: pytest.approx(0.4)}
    assert privacy._mia_values(s, rows, "loss", 0.2) == {7: pytest.approx(10.0 / 5)}
    assert privacy._mia_values(s, rows, "loss", 0.2, include_eos=False) == {7: pytest.approx(0.25)}
    z = len(zlib.compress(b"Paris."))
    assert privacy._mia_values(s, rows, "zlib", 0.2, include_eos=False) == {7: pytest.approx(0.25 / z)}


# ----------------------------------------------------------------------------- zlib text


@pytest.fixture(scope="module")
def tokenizer(small_benchmark):
    from satimp_lab.models.build import benchmark_texts, train_tokenizer

    return train_tokenizer(benchmark_texts([small_benchmark["full"].to_list()]), 512)


def test_zlib_text_differs_from_open_unlearnings_decoded_labels_by_the_leading_space(small_benchmark, tokenizer):
    """docs/methods.md#membership-inference: open-unlearning compresses the decoded labels, which
    with our "qa" format are " " + answer (the EOS is skipped): 0 or 1 byte more after zlib, so its
    zlib score is ours times a / (a + 0 or 1), at most 1/35 = 2.9 % lower for a 34-byte answer."""
    from satimp_lab.data.batching import IGNORE_INDEX, encode_dataset

    rows = small_benchmark["forget10"].to_list() + small_benchmark["holdout"].to_list()
    encoded = encode_dataset(tokenizer, rows, "qa", with_key_spans=False)
    gaps = []
    for row, enc in zip(rows, encoded):
        labels = [t for t in enc["labels"] if t != IGNORE_INDEX]
        assert labels[-1] == tokenizer.eos_token_id
        text = privacy.label_text(tokenizer, labels)
        assert text == " " + row["answer"]
        ours, theirs = len(zlib.compress(row["answer"].encode())), len(zlib.compress(text.encode()))
        assert theirs - ours in (0, 1)
        ratio = privacy.zlib_score(1.0, text) / privacy.zlib_score(1.0, row["answer"])
        assert ratio == pytest.approx(ours / theirs)
        gaps.append(1 - ratio)
        if ours <= 34:
            assert 1 - ratio <= 1 / 35 + 1e-12
    assert 0 < max(gaps) <= 1 / min(len(zlib.compress(r["answer"].encode())) + 1 for r in rows) + 1e-12
    with pytest.raises(ValueError, match="label_ids"):
        privacy.label_text(tokenizer, [])


# ----------------------------------------------------------------------------- min-k%++


# Two distributions whose moments are exact: p = (1/2, 1/4, 1/4) has mu = -1.5 ln 2 and
# sigma = 0.5 ln 2, so z = +1 for token 0 and -1 for token 1; p = (0.8, 0.2, 0) is a Bernoulli
# with sigma = 0.4 ln 4, z = +0.5 for token 0 and -2 for token 1 (token 2, probability 0, adds nothing).
HALF = [math.log(0.5), math.log(0.25), math.log(0.25)]
BERN = [math.log(0.8), math.log(0.2), -math.inf]
LOGITS = torch.tensor([HALF, HALF, BERN, BERN], dtype=torch.float64)
LABELS = torch.tensor([0, 1, 0, 1])  # the last position is the EOS


def test_vocab_normalised_logprobs_by_hand():
    z = privacy.vocab_normalised_logprobs(LOGITS, LABELS)
    np.testing.assert_allclose(z, [1.0, -1.0, 0.5, -2.0], rtol=0, atol=1e-12)
    # logits, not log-probabilities: shifting a row changes nothing
    np.testing.assert_allclose(privacy.vocab_normalised_logprobs(LOGITS + 3.0, LABELS), z, atol=1e-12)
    # float32 logits: the same to float32 precision
    np.testing.assert_allclose(privacy.vocab_normalised_logprobs(LOGITS.float(), LABELS), z, atol=1e-6)


def test_vocab_normalised_logprobs_equal_open_unlearnings_moments():
    """mu = E_p[log p], sigma^2 = E_p[(log p)^2] - mu^2 (open-unlearning's form), floored at 1e-6."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 50, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 50, (6,), generator=g)
    lp = torch.log_softmax(logits, -1)
    mu = (lp.exp() * lp).sum(-1)
    sigma2 = ((lp.exp() * lp ** 2).sum(-1) - mu ** 2).clamp_min(1e-6)
    expected = (lp.gather(1, labels[:, None]).squeeze(1) - mu) / sigma2.sqrt()
    np.testing.assert_allclose(privacy.vocab_normalised_logprobs(logits, labels), expected.numpy(),
                               rtol=1e-9, atol=1e-9)


def test_min_k_plus_plus_by_hand_with_and_without_the_eos():
    # z = [1, -1, 0.5, -2 (EOS)]
    assert privacy.min_k_plus_plus_score(LOGITS, LABELS, k=0.25) == pytest.approx(2.0)
    assert privacy.min_k_plus_plus_score(LOGITS, LABELS, k=0.25, include_eos=False) == pytest.approx(1.0)
    assert privacy.min_k_plus_plus_score(LOGITS, LABELS, k=0.5) == pytest.approx(1.5)
    assert privacy.min_k_plus_plus_score(LOGITS, LABELS, k=0.5, include_eos=False) == pytest.approx(1.0)
    assert privacy.min_k_plus_plus_score(LOGITS, LABELS, k=1.0, include_eos=False) == pytest.approx(-0.5 / 3)


def test_min_k_plus_plus_edges():
    # a uniform distribution has sigma = 0: the floor gives z = 0, not NaN
    np.testing.assert_array_equal(privacy.vocab_normalised_logprobs(torch.zeros(2, 5), torch.tensor([0, 3])),
                                  [0.0, 0.0])
    with pytest.raises(ValueError, match="labels"):
        privacy.vocab_normalised_logprobs(torch.zeros(0, 5), torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        privacy.vocab_normalised_logprobs(torch.zeros(3, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="token ids"):
        privacy.vocab_normalised_logprobs(torch.zeros(2, 5), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="NaN"):
        privacy.vocab_normalised_logprobs(torch.full((1, 3), float("nan")), torch.tensor([0]))
    with pytest.raises(ValueError, match="include_eos=False"):
        privacy.min_k_plus_plus_score(LOGITS[:1], LABELS[:1], include_eos=False)


# ----------------------------------------------------------------------------- reference attack


def test_reference_attack_by_hand_with_a_tie():
    assert privacy.reference_score(2.0, 0.5) == pytest.approx(1.5)
    members = [privacy.reference_score(t, r) for t, r in ((1.0, 1.5), (2.0, 1.5))]      # -0.5, 0.5
    nonmembers = [privacy.reference_score(t, r) for t, r in ((3.0, 2.0), (2.0, 2.5))]   # 1.0, -0.5
    # pairs non > member: 1>-0.5, 1>0.5, -0.5 = -0.5 (a tie: 1/2), -0.5 < 0.5 -> 2.5 / 4
    assert privacy.mia_auc(members, nonmembers) == pytest.approx(0.625)
    assert privacy.mia_auc(nonmembers, members) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="finite"):
        privacy.reference_score(float("inf"), 1.0)


def test_attack_arguments_are_checked_before_any_model_is_read():
    with pytest.raises(InputError, match="empty"):
        privacy.mia_scores(None, None, [], "min_k_plus_plus")
    with pytest.raises(InputError, match="'nope'"):
        privacy.mia_scores(None, None, [{"question": "q", "answer": "a"}], "nope")
    with pytest.raises(InputError, match="reference_model"):
        privacy.mia_scores(None, None, [{"question": "q", "answer": "a"}], "reference")
    with pytest.raises(InputError, match="reference_model"):
        privacy.mia_scores(None, None, [{"question": "q", "answer": "a"}], "loss", reference_model=object())


# ----------------------------------------------------------------------------- PrivLeak


def _open_unlearning_privleak(auc, auc_ref):
    score, ref = 1 - auc, 1 - auc_ref   # src/evals/metrics/privacy.py::privleak
    return (score - ref) / (ref + 1e-10) * 100


def _muse_privleak(auc, auc_ref):
    muse, muse_ref = 1 - auc, 1 - auc_ref  # MUSE orients its AUC the other way
    return (muse - muse_ref) / muse_ref * 100


def test_privleak_by_hand_and_as_open_unlearning_and_muse_compute_it():
    assert privacy.privleak_from_auc(0.5, 0.5) == 0.0
    assert privacy.privleak_from_auc(1.0, 0.5) == pytest.approx(-100.0)  # forget set still all member-like
    assert privacy.privleak_from_auc(0.25, 0.5) == pytest.approx(50.0)   # over-unlearned
    assert privacy.privleak_from_auc(0.9, 0.6) == pytest.approx(-75.0)   # (0.1 - 0.4) / 0.4
    for auc in (0.0, 0.3, 0.5, 0.77, 1.0):
        for ref in (0.0, 0.2, 0.5, 0.9):
            assert privacy.privleak_from_auc(auc, ref) == pytest.approx(_open_unlearning_privleak(auc, ref), rel=1e-8)
            assert privacy.privleak_from_auc(auc, ref) == pytest.approx(_muse_privleak(auc, ref), rel=1e-12, abs=1e-12)


def test_privleak_edges_raise_naming_the_input():
    with pytest.raises(InputError, match="auc_ref = 1"):
        privacy.privleak_from_auc(0.5, 1.0)
    with pytest.raises(InputError, match="auc_ref"):
        privacy.privleak_from_auc(0.5, float("nan"))
    with pytest.raises(InputError, match="auc must"):
        privacy.privleak_from_auc(1.5, 0.5)
    with pytest.raises(InputError, match="neither"):
        privacy.privleak(None, None, [], [])
    with pytest.raises(InputError, match="both"):
        privacy.privleak(None, None, [], [], retain_model=object(), auc_ref=0.5)
    with pytest.raises(InputError, match="auc_ref"):
        privacy.privleak(None, None, [], [], auc_ref=2.0)


def test_privleak_defaults_are_open_unlearnings_config():
    import inspect

    params = inspect.signature(privacy.privleak).parameters
    assert (params["attack"].default, params["k"].default, params["include_eos"].default) == ("min_k", 0.4, False)
    # the attacks' own defaults are unchanged (the stored reproduction numbers depend on them)
    for fn in (privacy.min_k_score, privacy.mia_scores, privacy.membership_inference):
        params = inspect.signature(fn).parameters
        assert (params["k"].default, params["include_eos"].default) == (0.2, True), fn.__name__


# ----------------------------------------------------------------------------- truth ratio prob_mean


def test_truth_ratio_prob_mean_by_hand_and_as_open_unlearning_computes_it():
    # example 1: l(true) = 1, perturbed NLLs 2 and 4 -> geometric p(false) = e^-3, R_geo = e^-2
    # example 2: l(true) = 3, perturbed 3 and 3 -> R_geo = 1
    examples = [(1.0, [2.0, 4.0]), (3.0, [3.0, 3.0])]
    log_geo = [tofu.log_truth_ratio_from_nll(b, p)[1] for b, p in examples]
    assert log_geo == pytest.approx([-2.0, 0.0])
    expected = (1 / (1 + math.exp(-2)) + 0.5) / 2
    assert tofu.truth_ratio_prob_mean(log_geo, log=True) == pytest.approx(expected)
    assert tofu.truth_ratio_prob_mean(np.exp(log_geo)) == pytest.approx(expected)
    assert tofu.truth_ratio_prob_mean({3: math.exp(-2), 9: 1.0}) == pytest.approx(expected)
    # open-unlearning: true / (true + false + 1e-10) with p = exp(-mean NLL)
    ou = np.mean([math.exp(-b) / (math.exp(-b) + math.exp(-np.mean(p)) + 1e-10) for b, p in examples])
    assert tofu.truth_ratio_prob_mean(log_geo, log=True) == pytest.approx(ou, rel=1e-8)


def test_truth_ratio_prob_mean_edges():
    assert tofu.truth_ratio_prob_mean([0.0]) == 1.0           # p(false) = 0: always prefers the truth
    assert tofu.truth_ratio_prob_mean([math.inf]) == 0.0
    assert tofu.truth_ratio_prob_mean([-math.inf, math.inf], log=True) == 0.5
    assert tofu.truth_ratio_prob_mean([800.0], log=True) == pytest.approx(0.0, abs=1e-300)  # no overflow
    with pytest.raises(ValueError, match="ratios"):
        tofu.truth_ratio_prob_mean([])
    with pytest.raises(ValueError, match="ratios"):
        tofu.truth_ratio_prob_mean([-1.0])
    with pytest.raises(ValueError, match="ratios"):
        tofu.truth_ratio_prob_mean([float("nan")], log=True)
