import pytest
import torch

from satimp_lab.data.batching import (IGNORE_INDEX, collate, encode_dataset, encode_example,
                                 get_prompt_format, token_logprobs)
from satimp_lab.models.build import benchmark_texts, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer(published_bench):
    texts = benchmark_texts([published_bench[s].to_list() for s in ("full", "holdout", "world_facts")])
    return train_tokenizer(texts, vocab_size=1024)


def _covered_chars(tokenizer, enc, answer_start, text):
    """Characters (of ``text``) covered by the key tokens, whitespace trimmed."""
    out = set()
    ids = enc["input_ids"][1:-1]  # without BOS and EOS
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for (start, end), key in zip(offsets, enc["key_mask"][1:-1]):
        if key:
            out |= {i - answer_start for i in range(start, end) if not text[i].isspace()}
    assert len(ids) == len(offsets)
    return out


def test_key_mask_covers_exactly_the_fact_values(published_bench, tokenizer):
    fmt = get_prompt_format("qa")
    checked = 0
    for split in ("full", "world_facts"):
        for row in published_bench[split].select(range(40)):
            enc = encode_example(tokenizer, row["question"], row["answer"], row["key_spans"])
            prompt = fmt.prompt(row["question"])
            text = prompt + fmt.answer_prefix + row["answer"]
            covered = _covered_chars(tokenizer, enc, len(prompt) + 1, text)
            wanted = {i for s, e in row["key_spans"] for i in range(s, e) if not row["answer"][i].isspace()}
            assert covered == wanted, (row["answer"], row["key_spans"])
            checked += 1
    assert checked == 80


def test_labels_are_answer_plus_eos(published_bench, tokenizer):
    row = published_bench["full"][0]
    enc = encode_example(tokenizer, row["question"], row["answer"], row["key_spans"])
    labelled = [t for t, l in zip(enc["input_ids"], enc["labels"]) if l != IGNORE_INDEX]
    assert labelled[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(labelled[:-1]).strip() == row["answer"]
    assert enc["input_ids"][0] == tokenizer.bos_token_id and enc["labels"][0] == IGNORE_INDEX
    # the prompt is never labelled
    first_label = next(i for i, l in enumerate(enc["labels"]) if l != IGNORE_INDEX)
    assert tokenizer.decode(enc["input_ids"][1:first_label]) == get_prompt_format("qa").prompt(row["question"])


def test_over_long_sequence_raises(published_bench, tokenizer):
    row = published_bench["full"][0]
    with pytest.raises(ValueError, match="max_length=8"):
        encode_example(tokenizer, row["question"], row["answer"], max_length=8, example_id=7)


def test_bad_inputs(published_bench, tokenizer):
    with pytest.raises(ValueError, match="empty dataset"):
        encode_dataset(tokenizer, [])
    with pytest.raises(ValueError, match="no field 'answer'"):
        encode_dataset(tokenizer, [{"question": "q"}])
    with pytest.raises(ValueError, match="unknown prompt format"):
        get_prompt_format("alpaca")
    with pytest.raises(ValueError, match="empty"):
        collate([], 0)


def test_collate_and_token_logprobs_shapes(published_bench, tokenizer):
    from satimp_lab.models.build import build_tiny_model
    from satimp_lab.tiers import ArchConfig

    enc = encode_dataset(tokenizer, published_bench["full"].select(range(4)))
    batch = collate(enc, tokenizer.pad_token_id)
    width = max(len(e["input_ids"]) for e in enc)
    assert batch["input_ids"].shape == (4, width)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
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
    from satimp_lab.models.build import build_tiny_model
    from satimp_lab.tiers import ArchConfig

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
    from satimp_lab.data.batching import _plain_llama, read_rows
    from satimp_lab.models.build import build_tiny_model
    from satimp_lab.tiers import ArchConfig

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


def test_encodings_are_remembered_per_tokenizer_and_returned_fresh(published_bench):
    from satimp_lab.data import batching

    # a fresh memo
    tokenizer = train_tokenizer(benchmark_texts([published_bench["full"].to_list()]), vocab_size=512)
    rows = published_bench["forget10"].to_list()[:5]
    first = encode_dataset(tokenizer, rows)
    assert first == [encode_example(tokenizer, r["question"], r["answer"], r["key_spans"],
                                    example_id=r["qa_id"]) for r in rows]
    memo = batching._ENCODINGS[tokenizer]
    assert len(memo) == 5
    first[0]["input_ids"].append(-1)  # callers may modify what they get
    again = encode_dataset(tokenizer, rows)
    assert again[0]["input_ids"][-1] != -1 and len(memo) == 5
    # another field, format or key-span choice is another encoding
    encode_dataset(tokenizer, rows, question_field="paraphrased_question")
    encode_dataset(tokenizer, rows, with_key_spans=False)
    encode_dataset(tokenizer, rows, "es")
    assert len(memo) == 20


def test_token_accuracy_pools_tokens_over_rows():
    """One definition of teacher-forced token accuracy (training's memorisation report reads it):
    3 of 4 label positions right (pooled, not a mean of per-row shares 1/2 and 1), 1 of 2 keys."""
    import math

    from satimp_lab.data.batching import RowReading, token_accuracy

    def row(labels, preds, key):
        return RowReading(torch.tensor(labels), torch.tensor(preds), torch.zeros(len(labels)), torch.tensor(key))

    readings = [row([5, 6], [5, 7], [False, True]), row([8, 9], [8, 9], [True, False])]
    assert token_accuracy(readings) == {"answer_accuracy": 0.75, "key_accuracy": 0.5}
    no_keys = token_accuracy([row([5], [5], [False])])
    assert no_keys["answer_accuracy"] == 1.0 and math.isnan(no_keys["key_accuracy"])
