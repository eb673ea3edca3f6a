"""The privacy attacks that read more than the label log-probs, on tiny random Hugging Face models
(docs/methods.md#membership-inference): min-k%++ from the model's logits at the answer positions,
the reference-model attack and PrivLeak, each checked against an independent computation."""

import numpy as np
import pytest
import torch

from satimp_lab.data.batching import IGNORE_INDEX, encode_dataset
from satimp_lab.evaluation import privacy, reading
from satimp_lab.models.build import benchmark_texts, build_tiny_model, train_tokenizer
from satimp_lab.tiers import ArchConfig

ARCH = ArchConfig(n_layers=1, hidden_size=64, n_heads=2, intermediate_size=256, vocab_size=512, max_length=256)


@pytest.fixture(scope="module")
def tok(small_benchmark):
    return train_tokenizer(benchmark_texts([small_benchmark["full"].to_list()]), 512)


@pytest.fixture(scope="module")
def llama(tok):
    return build_tiny_model(ARCH, tok, seed=1)


@pytest.fixture(scope="module")
def other_llama(tok):
    return build_tiny_model(ARCH, tok, seed=2)


@pytest.fixture(scope="module")
def sets(small_benchmark):
    return small_benchmark["forget10"].to_list()[:6], small_benchmark["holdout"].to_list()[:6]


def _z_by_hand(model, tok, row):
    """open-unlearning's way: one unpadded full forward pass, log-softmax over the vocabulary at
    every position before a label, mu = E_p[log p], sigma^2 = E_p[(log p)^2] - mu^2."""
    enc = encode_dataset(tok, [row], "qa", with_key_spans=False)[0]
    ids, labels = torch.tensor([enc["input_ids"]]), torch.tensor(enc["labels"])
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    pos = (labels != IGNORE_INDEX).nonzero().reshape(-1)
    lp, target = lp[pos - 1], labels[pos]
    mu = (lp.exp() * lp).sum(-1)
    sigma2 = ((lp.exp() * lp ** 2).sum(-1) - mu ** 2).clamp_min(1e-6)
    return ((lp.gather(1, target[:, None]).squeeze(1) - mu) / sigma2.sqrt()).numpy(), target


def test_min_k_plus_plus_reader_equals_a_full_forward_pass(llama, tok, sets):
    rows = sets[0] + sets[1]
    llama.train()
    z = privacy.read_vocab_normalised(llama, tok, rows, batch_size=4)  # padded batches
    assert llama.training  # the model's mode is restored
    assert list(z) == [r["qa_id"] for r in rows]
    for r in rows:
        expected, labels = _z_by_hand(llama, tok, r)
        assert labels[-1] == tok.eos_token_id and len(z[r["qa_id"]]) == len(labels)  # answer + EOS
        np.testing.assert_allclose(z[r["qa_id"]], expected, rtol=0, atol=2e-4)


def test_min_k_plus_plus_reader_reads_other_architectures(tok, sets):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=1, n_head=2,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).eval()
    z = privacy.read_vocab_normalised(gpt2, tok, sets[0][:3], batch_size=2)
    for r in sets[0][:3]:
        np.testing.assert_allclose(z[r["qa_id"]], _z_by_hand(gpt2, tok, r)[0], rtol=0, atol=2e-4)


def test_membership_inference_min_k_plus_plus_with_and_without_the_eos(llama, tok, sets):
    members, nonmembers = sets
    # read as membership_inference reads them (a row's float32 numbers depend on its batch)
    z = {**privacy.read_vocab_normalised(llama, tok, members), **privacy.read_vocab_normalised(llama, tok, nonmembers)}
    for include_eos in (True, False):
        result = privacy.membership_inference(llama, tok, members, nonmembers, "min_k_plus_plus", k=0.4,
                                              include_eos=include_eos)
        scores = {i: privacy.min_k_score(v, 0.4, include_eos) for i, v in z.items()}
        assert result.value_by_index == pytest.approx(scores)
        assert result.agg_value == privacy.mia_auc([scores[r["qa_id"]] for r in members],
                                                   [scores[r["qa_id"]] for r in nonmembers])
        assert result.extra["include_eos"] is include_eos
    with_eos = privacy.mia_scores(llama, tok, members, "min_k_plus_plus", k=1.0).value_by_index
    without = privacy.mia_scores(llama, tok, members, "min_k_plus_plus", k=1.0, include_eos=False).value_by_index
    for r in members:  # k = 1: the mean, with and without the EOS's z
        zr = z[r["qa_id"]]
        assert with_eos[r["qa_id"]] == pytest.approx(-zr.mean())
        assert without[r["qa_id"]] == pytest.approx(-zr[:-1].mean())


def test_reference_attack_and_privleak(llama, other_llama, tok, sets):
    members, nonmembers = sets
    same = privacy.membership_inference(llama, tok, members, nonmembers, "reference", reference_model=llama)
    assert set(same.value_by_index.values()) == {0.0} and same.agg_value == 0.5  # all ties
    ref = privacy.membership_inference(llama, tok, members, nonmembers, "reference", reference_model=other_llama)
    by_hand = {}
    for part in (members, nonmembers):
        t, r = reading.score_answers(llama, tok, part), reading.score_answers(other_llama, tok, part)
        by_hand.update({a.qa_id: a.nll - b.nll for a, b in zip(t, r)})
    assert ref.value_by_index == pytest.approx(by_hand, rel=1e-12, abs=1e-12)

    leak = privacy.privleak(llama, tok, members, nonmembers, retain_model=other_llama)
    auc = privacy.membership_inference(llama, tok, members, nonmembers, "min_k", k=0.4, include_eos=False).agg_value
    auc_ref = privacy.membership_inference(other_llama, tok, members, nonmembers, "min_k", k=0.4,
                                           include_eos=False).agg_value
    assert (leak.extra["auc"], leak.extra["auc_ref"]) == (auc, auc_ref)
    assert leak.agg_value == pytest.approx(privacy.privleak_from_auc(auc, auc_ref))
    fixed = privacy.privleak(llama, tok, members, nonmembers, auc_ref=0.5, attack="reference",
                             reference_model=other_llama)
    assert fixed.agg_value == pytest.approx(privacy.privleak_from_auc(ref.agg_value, 0.5))
