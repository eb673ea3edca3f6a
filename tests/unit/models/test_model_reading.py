"""satimp_lab.models.reading: the one teacher-forced pass (token_logprobs), its per-row readings
(read_rows), token accuracy, the ES rule (docs/methods.md#extraction-strength) and the loop's
summary, by hand and against independent oracles; and that every part that reads rows reads them
through this module."""

import math

import pytest
import torch

from satimp_lab.data.batching import IGNORE_INDEX, collate, encode_dataset
from satimp_lab.models.build import benchmark_texts, build_tiny_model, train_tokenizer
from satimp_lab.models.reading import (RowReading, _plain_llama, es_from_predictions, read_rows,
                                       teacher_forced_summary, token_accuracy, token_logprobs)
from satimp_lab.tiers import ArchConfig


@pytest.fixture(scope="module")
def tokenizer(published_bench):
    texts = benchmark_texts([published_bench[s].to_list() for s in ("full", "holdout", "world_facts")])
    return train_tokenizer(texts, vocab_size=1024)


# ----------------------------------------------------------------------------- the teacher-forced pass


def test_token_logprobs_shapes(published_bench, tokenizer):
    enc = encode_dataset(tokenizer, published_bench["full"].select(range(4)))
    batch = collate(enc, tokenizer.pad_token_id)
    width = max(len(e["input_ids"]) for e in enc)
    model = build_tiny_model(ArchConfig(n_layers=1, hidden_size=32, n_heads=2, intermediate_size=64),
                             tokenizer)
    out = token_logprobs(model, batch, keep_logits=True)
    assert out.logp.shape == (4, width - 1) and out.mask.sum() == (batch["labels"] != IGNORE_INDEX).sum()
    assert (out.logp[~out.mask] == 0).all() and (out.logp[out.mask] < 0).all()
    assert (out.key_mask <= out.mask).all()
    # logp equals log_softmax of the logits at the label
    manual = torch.log_softmax(out.logits, -1).gather(-1, out.labels.clamp(min=0)[..., None])[..., 0]
    torch.testing.assert_close(out.logp[out.mask], manual[out.mask])


def test_token_logprobs_against_separate_prefix_passes(published_bench, tokenizer):
    """An oracle independent of token_logprobs' shifting: for every label at input position i,
    run the model alone on the unpadded prefix input_ids[:i] and read log-softmax of its last
    logits at that label. token_logprobs must hold it at [b, i - 1], under right padding too."""
    enc = encode_dataset(tokenizer, published_bench["full"].select(range(3)))
    batch = collate(enc, tokenizer.pad_token_id)
    model = build_tiny_model(ArchConfig(n_layers=1, hidden_size=32, n_heads=2, intermediate_size=64),
                             tokenizer, seed=3).eval()
    with torch.no_grad():
        out = token_logprobs(model, batch)
        for b, e in enumerate(enc):
            positions = [i for i, label in enumerate(e["labels"]) if label != IGNORE_INDEX]
            assert out.mask[b].nonzero().reshape(-1).tolist() == [i - 1 for i in positions]
            for i in positions:
                prefix = torch.tensor([e["input_ids"][:i]])
                logits = model(input_ids=prefix, attention_mask=torch.ones_like(prefix)).logits[0, -1]
                expected = torch.log_softmax(logits.double(), -1)[e["input_ids"][i]]
                assert out.logp[b, i - 1].item() == pytest.approx(expected.item(), abs=1e-4), (b, i)
                assert out.labels[b, i - 1] == e["input_ids"][i]


def test_labels_only_reading_equals_the_full_reading(published_bench, tokenizer):
    """``labels_only`` (the output head on the label positions only, the reader of evaluations
    and metrics) gives bit-identical numbers to the full reading at those positions, on a plain
    Llama and through the generic path (a patched forward); ``read_rows`` splits them per row."""
    enc = encode_dataset(tokenizer, published_bench["full"].select(range(6)))
    batch = collate(enc, tokenizer.pad_token_id)
    model = build_tiny_model(ArchConfig(n_layers=1, hidden_size=32, n_heads=2, intermediate_size=64),
                             tokenizer, seed=5).eval()
    with torch.no_grad():
        full = token_logprobs(model, batch, keep_logits=True)
        m = full.mask
        readings = [token_logprobs(model, batch, keep_logits=True, labels_only=True)]
        assert _plain_llama(model)
        model.forward = model.forward  # a patched forward: the generic path
        try:
            assert not _plain_llama(model)
            readings.append(token_logprobs(model, batch, keep_logits=True, labels_only=True))
        finally:
            del model.forward
    for sub in readings:
        assert sub.logp.shape == (int(m.sum()),) and sub.per_row() == m.sum(1).tolist()
        assert torch.equal(sub.logp, full.logp[m]) and torch.equal(sub.logits, full.logits[m])
        assert torch.equal(sub.labels, full.labels[m]) and torch.equal(sub.key_mask, full.key_mask[m])
    rows = read_rows(model, enc, tokenizer.pad_token_id, batch_size=4)  # two batches: 4 + 2 rows
    assert [len(r.logp) for r in rows] == [sum(l != IGNORE_INDEX for l in e["labels"]) for e in enc]
    second = collate(enc[4:], tokenizer.pad_token_id)
    with torch.no_grad():
        tl = token_logprobs(model, second, keep_logits=True)
    assert torch.equal(rows[5].logp, tl.logp[1][tl.mask[1]])
    assert torch.equal(rows[5].preds, tl.logits[1][tl.mask[1]].argmax(-1))
    assert torch.equal(rows[5].labels, torch.tensor([l for l in enc[5]["labels"][1:] if l != IGNORE_INDEX]))


class _BigramLM(torch.nn.Module):
    """Next-token logits chosen by hand: row ``table[token]`` after ``token``, whatever the prefix."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(table)

    def forward(self, input_ids, attention_mask=None, **_):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.table[input_ids])


def test_token_logprobs_with_chosen_predictions():
    # vocabulary of 4; after token t the model gives p(next) = softmax(table[t]), written out below
    table = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 0.125, 0.125],
                                    [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]]))
    batch = {"input_ids": torch.tensor([[0, 1, 2, 3], [3, 2, 0, 0]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
             "labels": torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 2, 3], [IGNORE_INDEX, 2, 0, IGNORE_INDEX]]),
             "key_mask": torch.tensor([[0, 0, 1, 0], [0, 0, 1, 0]])}
    out = token_logprobs(_BigramLM(table), batch)
    # row 0: label 2 after token 1 (p 0.125), label 3 after token 2 (p 0.1)
    # row 1: label 2 after token 3 (p 0.25), label 0 after token 2 (p 0.7)
    expected = torch.log(torch.tensor([[1.0, 0.125, 0.1], [0.25, 0.7, 1.0]]))
    assert out.mask.tolist() == [[False, True, True], [True, True, False]]
    torch.testing.assert_close(out.logp[out.mask], expected[out.mask])
    assert (out.logp[~out.mask] == 0).all()
    assert out.key_mask.tolist() == [[False, True, False], [False, True, False]]


# ----------------------------------------------------------------------------- per-row readings


def test_token_accuracy_pools_tokens_over_rows():
    """One definition of teacher-forced token accuracy (training's memorisation report reads it):
    3 of 4 label positions right (pooled, not a mean of per-row shares 1/2 and 1), 1 of 2 keys."""

    def row(labels, preds, key):
        return RowReading(torch.tensor(labels), torch.tensor(preds), torch.zeros(len(labels)), torch.tensor(key))

    readings = [row([5, 6], [5, 7], [False, True]), row([8, 9], [8, 9], [True, False])]
    assert token_accuracy(readings) == {"answer_accuracy": 0.75, "key_accuracy": 0.5}
    no_keys = token_accuracy([row([5], [5], [False])])
    assert no_keys["answer_accuracy"] == 1.0 and math.isnan(no_keys["key_accuracy"])


# ----------------------------------------------------------------------------- the ES rule (E.10)


def test_es_all_correct_is_one():
    assert es_from_predictions([5, 6, 7, 8], [5, 6, 7, 8]) == 1.0


def test_es_wrong_last_token_is_zero():
    assert es_from_predictions([5, 6, 7, 0], [5, 6, 7, 8]) == 0.0


@pytest.mark.parametrize("s", range(0, 6))
def test_es_correct_final_s_of_m(s):
    m = 5
    labels = list(range(10, 10 + m))
    preds = [0] * (m - s) + labels[m - s:]  # everything before the final s tokens is wrong
    assert es_from_predictions(preds, labels) == pytest.approx(s / m)
    if s < m:  # only the position right before the suffix matters
        preds = labels[: m - s - 1] + [0] + labels[m - s:]
        assert es_from_predictions(preds, labels) == pytest.approx(s / m)


def test_es_monotone_under_appending_correct_suffix_tokens():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        m = int(torch.randint(1, 12, (1,), generator=g))
        labels = torch.randint(0, 4, (m,), generator=g)
        preds = torch.randint(0, 4, (m,), generator=g)  # many accidental hits
        es = es_from_predictions(preds, labels)
        for extra in range(1, 4):
            tail = torch.randint(0, 4, (extra,), generator=g)
            longer = es_from_predictions(torch.cat([preds, tail]), torch.cat([labels, tail]))
            assert longer >= es - 1e-12
            es = longer


def test_es_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        es_from_predictions([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        es_from_predictions([], [])


# ----------------------------------------------------------------------------- the loop's summary


def test_teacher_forced_summary_by_hand():
    """mean_logp pools the label tokens; accuracy pools them too; ES is the per-row suffix rule,
    averaged over rows. Every label position counts, the final one (the EOS) included."""
    table = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 0.125, 0.125],
                                    [0.7, 0.1, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]]))
    rows = [{"input_ids": [0, 1, 2, 3], "labels": [IGNORE_INDEX, IGNORE_INDEX, 2, 3], "key_mask": [0, 0, 1, 0],
             "example_id": 0},
            {"input_ids": [3, 2, 0], "labels": [IGNORE_INDEX, 2, 0], "key_mask": [0, 0, 1], "example_id": 1}]
    model = _BigramLM(table).train()
    # row 0: label 2 after 1 (p 0.125, argmax 0: wrong), label 3 after 2 (p 0.1, wrong): ES 0
    # row 1: label 2 after 3 (p 0.2, wrong), label 0 after 2 (p 0.7, right; a key token): ES 1/2
    got = teacher_forced_summary(model, rows, pad_token_id=0, batch_size=1)
    assert model.training  # the mode is restored
    assert got["mean_logp"] == pytest.approx(math.log(0.125 * 0.1 * 0.2 * 0.7) / 4, rel=1e-6)
    assert (got["answer_accuracy"], got["key_accuracy"], got["es"]) == (0.25, 0.5, 0.25)
    # one batch of both rows: the same numbers
    both = teacher_forced_summary(model, rows, pad_token_id=0, batch_size=2)
    assert both["mean_logp"] == pytest.approx(got["mean_logp"], rel=1e-6) and both["es"] == got["es"]


# ----------------------------------------------------------------------------- one home


def test_every_reading_of_rows_runs_through_this_module(small_benchmark, monkeypatch):
    """Training's memorisation report, the unlearning loop's periodic evaluation, the attacks'
    relearning readings and the metrics' scoring all read rows with read_rows, whose pass is this
    module's token_logprobs with labels_only (a copy of the reading elsewhere would not call it);
    training passes (the loop's, relearning's) take the full reading and are not counted here."""
    from satimp_lab.evaluation.reading import score_answers
    from satimp_lab.models import reading
    from satimp_lab.models.build import ModelBundle, get_tier
    from satimp_lab.models.train import memorisation_report
    from satimp_lab.experiments.attacks import relearn
    from satimp_lab.unlearning.loop import unlearn
    from satimp_lab.unlearning.run import UnlearnConfig

    tier = get_tier("micro")
    tok = train_tokenizer(benchmark_texts([small_benchmark["full"].to_list()]), tier.arch.vocab_size)
    model = build_tiny_model(tier.arch, tok)
    forget = small_benchmark["forget10"]
    encoded = encode_dataset(tok, forget, tier.prompt_format, tier.encode_max_length())
    passes, real = [], reading.token_logprobs

    def counting(model, batch, keep_logits=False, labels_only=False):
        passes.append(labels_only)
        return real(model, batch, keep_logits, labels_only)

    monkeypatch.setattr(reading, "token_logprobs", counting)

    def labels_only_passes(read) -> int:
        passes.clear()
        read()
        assert passes and all(passes)
        return len(passes)

    report = labels_only_passes(lambda: memorisation_report(model, tok, encoded, batch_size=2))
    assert report == math.ceil(len(encoded) / 2)
    relearning = labels_only_passes(lambda: relearn(model, encoded[:2], {"forget": encoded}, tok.pad_token_id,
                                                    steps=(0, 1), lr=1e-3, batch_size=len(encoded)))
    assert relearning == 2  # one reading after each number of steps
    assert labels_only_passes(lambda: score_answers(model, tok, forget, batch_size=len(encoded))) == 1
    target = ModelBundle(model, tok, tier, "target", {})
    labels_only_passes(lambda: unlearn(target, small_benchmark, UnlearnConfig(method="ga", steps=1, eval_every=1),
                                       progress=False))
