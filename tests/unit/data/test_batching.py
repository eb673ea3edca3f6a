import pytest

from satimp_lab.data.batching import IGNORE_INDEX, collate, encode_dataset, encode_example, get_prompt_format
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


def test_collate_right_pads_and_masks_the_padding(published_bench, tokenizer):
    enc = encode_dataset(tokenizer, published_bench["full"].select(range(4)))
    batch = collate(enc, tokenizer.pad_token_id)
    width = max(len(e["input_ids"]) for e in enc)
    assert batch["input_ids"].shape == (4, width)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


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
