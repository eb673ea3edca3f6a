"""Benchmark families (satimp_lab/data/families.py, docs/methods.md#benchmark-families): the TOFU
family reproduces what the loop does today on both sources, the text encoder labels every token
of raw text cut into blocks, and every error names the bad input."""

from __future__ import annotations

import inspect

import pytest
import torch
from transformers import AutoTokenizer

from satimp_lab.data.batching import IGNORE_INDEX, PromptFormat, collate, encode_dataset
from satimp_lab.data.benchmark import BenchmarkConfig, benchmark_splits, load_benchmark
from satimp_lab.data.families import (ENCODERS, FAMILIES, TEXT_BLOCK_STRIDE, TOFU, BenchmarkFamily,
                                      encode_text, encode_text_dataset, get_family, text_block_id,
                                      text_block_source)
from satimp_lab.data.schema import retain_split_for
from satimp_lab.data.tofu import eval_splits
from satimp_lab.data.tofu_layout import write_tofu_layout
from satimp_lab.errors import InputError
from satimp_lab.resources import shipped_path

FORGET_SPLITS = ("forget01", "forget05", "forget10")
SMALL = BenchmarkConfig(n_authors=50, qa_per_author=2, n_holdout_authors=2, n_world_facts=6)  # forget01: 1 author
TEXT = ("Velmar Drouk was born in Zaithorn on 3 May 1961. She wrote The Silent River and The "
        "Hollow Garden, and her work keeps returning to memory and loss.")


@pytest.fixture(scope="module")
def tiny_tok():
    """The tiny tier's tokenizer, as shipped beside its target model (a 1024-token byte-level BPE
    with BOS ``<s>``, EOS ``</s>`` and pad ``<pad>``)."""
    return AutoTokenizer.from_pretrained(shipped_path("data", "models", "tiny", "seed0", "target"))


@pytest.fixture(scope="module")
def synthetic():
    """The shipped synthetic benchmark (the published default config): every split the loop or
    the final metrics read for forget01/05/10."""
    return load_benchmark("synthetic", splits=["full", *FORGET_SPLITS, "retain99", "retain95", "retain90",
                                               "holdout", "world_facts"])


@pytest.fixture(scope="module")
def hub_layout(tmp_path_factory):
    """Our benchmark written in the real TOFU's Hub layout and read back as ``load_benchmark('tofu')``
    reads the real one."""
    folder = tmp_path_factory.mktemp("tofu")
    write_tofu_layout(folder, SMALL)
    return load_benchmark("tofu", data_dir=folder)


# ----------------------------------------------------------------------------------------------
# the registry


def test_registry_and_lookup():
    from satimp_lab.data.families import MUSE

    assert FAMILIES == {"tofu": TOFU, "muse": MUSE}
    assert get_family("tofu") is TOFU and get_family("muse") is MUSE
    assert get_family(TOFU) is TOFU


@pytest.mark.parametrize("bad", ["wmdp", "TOFU", "", None])
def test_an_unknown_family_names_itself_and_the_valid_ones(bad):
    with pytest.raises(InputError, match=r"unknown benchmark family .*valid: \['muse', 'tofu'\]") as err:
        get_family(bad)
    assert repr(bad) in str(err.value)


def test_family_fields_are_checked_when_built():
    fields = dict(name="x", description="d", encoding="qa", forget_splits=("f",), retain_for=str,
                  eval_roles=lambda b, f: {}, splits_to_load=lambda s, f: [])
    BenchmarkFamily(**fields)  # valid
    cases = [({"encoding": "audio"}, r"encoding must be one of \['qa', 'text'\], got 'audio'"),
             ({"forget_splits": ()}, "forget_splits must be a non-empty tuple"),
             ({"forget_splits": ["f"]}, "forget_splits must be a non-empty tuple"),
             ({"retain_for": "retain90"}, "retain_for must be callable"),
             ({"efficacy": "retain_es"}, r"efficacy must be a periodic-evaluation column 'forget_<reading>', got 'retain_es'"),
             ({"utility": "forget_"}, r"utility must be .*'retain_<reading>', got 'forget_'"),
             ({"metrics": ["es"]}, "metrics must be a tuple"),
             ({"name": ""}, "name must be a non-empty string")]
    for override, message in cases:
        with pytest.raises(InputError, match=message):
            BenchmarkFamily(**{**fields, **override})


# ----------------------------------------------------------------------------------------------
# TOFU: what the loop and the evaluation do today


def test_tofu_split_roles_are_the_loops_and_the_evaluations(synthetic, hub_layout):
    assert TOFU.forget_splits == FORGET_SPLITS
    for forget in FORGET_SPLITS:
        assert TOFU.training_splits(forget) == {"forget": forget, "retain": retain_split_for(forget)}
        for bench in (synthetic, hub_layout):
            assert TOFU.evaluation_splits(bench, forget) == eval_splits(bench, forget)
        for source in ("synthetic", "tofu"):
            assert TOFU.load_splits(source, forget) == benchmark_splits(source, forget)
    # the two layouts differ, so the comparison above could fail
    assert TOFU.evaluation_splits(synthetic, "forget10")["forget"] == "forget10"
    assert TOFU.evaluation_splits(hub_layout, "forget10")["forget"] == "forget10_perturbed"


@pytest.mark.parametrize("bad", ["forget20", "retain90", "forget10_perturbed", "full"])
def test_a_bad_forget_split_names_itself_the_family_and_the_valid_ones(bad):
    for call in (lambda: TOFU.training_splits(bad), lambda: TOFU.load_splits("synthetic", bad)):
        with pytest.raises(InputError, match=rf"unknown forget split '{bad}' for benchmark family "
                                             r"'tofu'; valid: \['forget01', 'forget05', 'forget10'\]"):
            call()


def test_tofu_encodes_exactly_as_encode_dataset(tiny_tok, synthetic, hub_layout):
    assert TOFU.encoding == "qa" and ENCODERS["qa"] is encode_dataset
    checked = 0
    for bench in (synthetic, hub_layout):
        for forget in ("forget01", "forget10"):
            for split in TOFU.training_splits(forget).values():
                for fmt, max_length in (("qa", None), ("qa", 512), ("llama2", None)):
                    expected = encode_dataset(tiny_tok, bench[split], fmt, max_length)
                    assert TOFU.encode(tiny_tok, bench[split], fmt, max_length) == expected
                    checked += len(expected)
    assert checked > 1000
    # a row longer than max_length raises the same error (never cut): max_length reaches encode_dataset
    split = synthetic["forget10"]
    with pytest.raises(InputError) as expected_err:
        encode_dataset(tiny_tok, split, "qa", 8)
    with pytest.raises(InputError) as err:
        TOFU.encode(tiny_tok, split, "qa", 8)
    assert str(err.value) == str(expected_err.value) and "max_length=8" in str(err.value)


def test_tofu_readings_are_the_matched_comparisons_defaults():
    from satimp_lab.evaluation.metrics import METRICS
    from satimp_lab.experiments import forget_at_matched_retain

    defaults = {k: p.default for k, p in inspect.signature(forget_at_matched_retain).parameters.items()}
    assert TOFU.matched_columns() == {"retain_col": defaults["retain_col"], "forget_col": defaults["forget_col"]}
    assert (TOFU.efficacy, TOFU.utility) == ("forget_es", "retain_es")
    # every final metric of the evaluation stage belongs to a family, and every family's is registered
    assert set(TOFU.metrics) | set(FAMILIES["muse"].metrics) == set(METRICS)
    assert not set(TOFU.metrics) & set(FAMILIES["muse"].metrics)


def test_check_metrics_names_an_unsupported_metric():
    assert TOFU.check_metrics(["es", "forget_quality"]) == ("es", "forget_quality")
    with pytest.raises(InputError, match=r"benchmark family 'tofu' has no final metric 'verbmem'; valid: \['es'"):
        TOFU.check_metrics(["es", "verbmem"])


# ----------------------------------------------------------------------------------------------
# raw text


def _tokens(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_text_every_token_is_a_label_after_the_bos(tiny_tok):
    [block] = encode_text(tiny_tok, TEXT, doc_id=7)
    ids = _tokens(tiny_tok, TEXT)
    assert block["input_ids"] == [tiny_tok.bos_token_id, *ids]  # BOS, the text, no EOS
    assert block["labels"] == [IGNORE_INDEX, *ids]
    assert tiny_tok.eos_token_id not in block["input_ids"]
    assert block["key_mask"] == [0] * len(block["input_ids"])
    assert block["example_id"] == text_block_id(7, 0) == 7 * TEXT_BLOCK_STRIDE
    # after the shift every text token is a target: labels[1:] has no ignored position
    assert all(label != IGNORE_INDEX for label in block["labels"][1:])


def test_text_without_a_bos_labels_every_token_and_the_shift_skips_the_first(tiny_tok):
    no_bos = PromptFormat("plain", add_bos=False)
    [block] = encode_text(tiny_tok, TEXT, prompt_format=no_bos)
    assert block["input_ids"] == block["labels"] == _tokens(tiny_tok, TEXT)  # labels = input_ids
    batch = collate([block], tiny_tok.pad_token_id)
    targets = batch["labels"][:, 1:] != IGNORE_INDEX  # what token_logprobs scores
    assert int(targets.sum()) == len(block["input_ids"]) - 1


def test_text_key_spans_become_the_key_mask(tiny_tok):
    start = TEXT.index("Zaithorn")
    span = [start, start + len("Zaithorn")]
    [block] = encode_text(tiny_tok, TEXT, [span])
    enc = tiny_tok(TEXT, add_special_tokens=False, return_offsets_mapping=True)
    expected = [0] + [int(s < span[1] and e > span[0]) for s, e in enc["offset_mapping"]]
    assert block["key_mask"] == expected
    assert 0 < sum(expected) < len(expected) - 1
    keys = [t for t, k in zip(block["input_ids"], block["key_mask"]) if k]
    assert tiny_tok.decode(keys).strip() == "Zaithorn"


def test_key_spans_at_the_texts_boundary(tiny_tok):
    [block] = encode_text(tiny_tok, TEXT, [[0, len(TEXT)]], doc_id=3)  # the whole text: accepted
    assert block["key_mask"] == [0] + [1] * (len(block["input_ids"]) - 1)
    for bad in ([0, len(TEXT) + 1], [-1, 4], [5, 5], [6, 2], [0.0, 3]):
        with pytest.raises(InputError, match=rf"text row 3: field 'key_spans': span \[.*\] is not a "
                                             rf"\[start, end\) pair with 0 <= start < end <= {len(TEXT)}"):
            encode_text(tiny_tok, TEXT, [[0, 2], bad], doc_id=3)


def test_a_long_text_is_cut_into_consecutive_blocks(tiny_tok):
    text = " ".join([TEXT] * 6)
    start = text.index("memory and loss", len(text) // 2)
    span = [start, start + len("memory and loss")]
    ids = _tokens(tiny_tok, text)
    [whole] = encode_text(tiny_tok, text, [span], doc_id=2)
    blocks = encode_text(tiny_tok, text, [span], max_length=32, doc_id=2)
    per_block = 31  # max_length - 1: each block starts with the BOS
    assert len(blocks) == -(-len(ids) // per_block) > 3
    assert all(len(b["input_ids"]) == 32 for b in blocks[:-1]) and 2 <= len(blocks[-1]["input_ids"]) <= 32
    assert all(b["input_ids"][0] == tiny_tok.bos_token_id and b["labels"][0] == IGNORE_INDEX for b in blocks)
    # consecutive, nothing lost or repeated, key mask where the whole text has it
    assert [t for b in blocks for t in b["input_ids"][1:]] == ids
    assert [t for b in blocks for t in b["labels"][1:]] == ids
    assert [k for b in blocks for k in b["key_mask"][1:]] == whole["key_mask"][1:]
    assert sum(whole["key_mask"]) > 0
    assert [b["example_id"] for b in blocks] == [text_block_id(2, i) for i in range(len(blocks))]
    assert [text_block_source(b["example_id"]) for b in blocks] == [(2, i) for i in range(len(blocks))]


def test_blocks_without_a_bos_are_max_length_long_and_a_lone_last_token_is_left_out(tiny_tok):
    no_bos = PromptFormat("plain", add_bos=False)
    ids = _tokens(tiny_tok, TEXT)
    n = len(ids)
    blocks = encode_text(tiny_tok, TEXT, prompt_format=no_bos, max_length=n - 1)  # n-1 tokens + a lone one
    assert [b["input_ids"] for b in blocks] == [ids[:n - 1]]
    blocks = encode_text(tiny_tok, TEXT, prompt_format=no_bos, max_length=n - 2)  # n-2 tokens + 2
    assert [b["input_ids"] for b in blocks] == [ids[:n - 2], ids[n - 2:]]


def test_text_rows_of_a_split_and_their_collate(tiny_tok):
    rows = [{"text": TEXT, "key_spans": [[0, 5]], "doc_id": 10},
            {"text": "A short one.", "key_spans": [], "doc_id": 11},
            {"text": " ".join([TEXT] * 3), "key_spans": [], "doc_id": 12}]
    encoded = encode_text_dataset(tiny_tok, rows, "qa", 40)
    assert TOFU.encoding == "qa"
    family = BenchmarkFamily(name="corpus", description="raw text", encoding="text", forget_splits=("forget",),
                             retain_for=lambda f: "retain", eval_roles=lambda b, f: {"forget": f},
                             splits_to_load=lambda s, f: [f, "retain"], efficacy="forget_mean_logp",
                             utility="retain_mean_logp")
    assert family.encode(tiny_tok, rows, "qa", 40) == encoded
    assert family.training_splits("forget") == {"forget": "forget", "retain": "retain"}
    sources = [text_block_source(e["example_id"]) for e in encoded]  # row after row, blocks in order
    per_row = {doc: len(encode_text(tiny_tok, r["text"], max_length=40)) for doc, r in zip((10, 11, 12), rows)}
    assert sources == [(doc, b) for doc, n in per_row.items() for b in range(n)]
    assert per_row[11] == 1 and per_row[12] > per_row[10] > 1
    assert len({e["example_id"] for e in encoded}) == len(encoded)
    batch = collate(encoded, tiny_tok.pad_token_id)
    width = max(len(e["input_ids"]) for e in encoded)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["key_mask"].shape == (len(encoded), width)
    assert batch["attention_mask"].sum(1).tolist() == [len(e["input_ids"]) for e in encoded]
    targets = batch["labels"][:, 1:] != IGNORE_INDEX  # the shifted reading's label positions
    assert targets.sum(1).tolist() == [len(e["input_ids"]) - 1 for e in encoded]
    short = [i for i, e in enumerate(encoded) if len(e["input_ids"]) < width][0]
    assert (batch["labels"][short, len(encoded[short]["input_ids"]):] == IGNORE_INDEX).all()
    assert batch["example_id"].dtype == torch.int64


def test_text_errors_name_the_bad_input(tiny_tok):
    with pytest.raises(InputError, match=r"text row 4: field 'text' must be a non-empty string, got '  '"):
        encode_text_dataset(tiny_tok, [{"text": "ok", "doc_id": 3}, {"text": "  ", "doc_id": 4}])
    with pytest.raises(InputError, match=r"text row 1 has no field 'text'"):
        encode_text_dataset(tiny_tok, [{"text": "ok"}, {"body": "no text field"}])
    with pytest.raises(InputError, match=r"text row 5: field 'doc_id' repeats"):
        encode_text_dataset(tiny_tok, [{"text": "ok", "doc_id": 5}, {"text": "again", "doc_id": 5}])
    with pytest.raises(InputError, match=r"text row -1: field 'doc_id' must be an integer >= 0, got -1"):
        encode_text(tiny_tok, TEXT, doc_id=-1)
    with pytest.raises(InputError, match=r"encode_text.max_length must be an integer >= 2 or None, got 1"):
        encode_text(tiny_tok, TEXT, max_length=1)
    with pytest.raises(InputError, match=r"cannot encode an empty split"):
        encode_text_dataset(tiny_tok, [])
    with pytest.raises(InputError, match=r"text row 0: the text produced no token to predict"):
        encode_text(tiny_tok, "a", prompt_format=PromptFormat("plain", add_bos=False))
    with pytest.raises(InputError, match=r"unknown prompt format 'nope'"):
        encode_text(tiny_tok, TEXT, prompt_format="nope")


def test_text_rows_from_a_dataset(tiny_tok):
    import datasets

    rows = [{"text": TEXT, "key_spans": [[0, 6]], "doc_id": 0}, {"text": "Second text.", "key_spans": [], "doc_id": 1}]
    ds = datasets.Dataset.from_list(rows)
    assert encode_text_dataset(tiny_tok, ds, "qa", 16) == encode_text_dataset(tiny_tok, rows, "qa", 16)
