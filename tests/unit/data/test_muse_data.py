"""The MUSE-shaped corpus (satimp_lab/data/muse.py, issue 24 item 1): generated offline and
byte-identical for a seed; every key span is the fact it names and every answer stands at its span;
splits are disjoint and as configured; the text splits encode through the raw-text encoder with a
key token for every fact; the files round-trip and a corrupted one is named; the family's roles."""

from __future__ import annotations

import json
import re

import pytest
from transformers import AutoTokenizer

from satimp_lab.data.batching import IGNORE_INDEX, encode_dataset
from satimp_lab.data import families, muse
from satimp_lab.data.families import encode_text, encode_text_dataset
from satimp_lab.data.muse import (ARTICLE_FIELDS, MUSE_FILES, MUSE_SPLITS, QA_FIELDS, QA_SPLITS, TEXT_SPLITS, MuseConfig, generate_muse, load_muse, read_muse, write_muse)
from satimp_lab.data.muse_world import FACT_KINDS, SLOT_KINDS, TOPICS
from satimp_lab.data.schema import row_problem
from satimp_lab.errors import InputError
from satimp_lab.resources import shipped_path

# the family: data.muse.MUSE until data.families registers it (then FAMILIES["muse"], built there)
MUSE = families.FAMILIES.get("muse") or muse.MUSE
SMALL = MuseConfig(n_forget=3, n_retain=7, n_holdout=2, qa_per_article=2, seed=5)


@pytest.fixture(scope="module")
def tiny_tok():
    """The tiny tier's tokenizer, as shipped beside its target model (1024-token byte-level BPE)."""
    return AutoTokenizer.from_pretrained(shipped_path("data", "models", "tiny", "seed0", "target"))


@pytest.fixture(scope="module")
def corpus():
    return generate_muse()


@pytest.fixture(scope="module")
def loaded():
    return load_muse()


def _slots(template: str) -> list[str]:
    return [s.lower() if s == "Org" else s for s in re.findall(r"\{(\w+)\}", template)]


# ----------------------------------------------------------------------------------------------
# generation


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = (write_muse(tmp_path / name, MuseConfig(seed=seed)) for name, seed in (("a", 3), ("b", 3), ("c", 4)))
    assert sorted(p.name for p in a.iterdir()) == sorted(MUSE_FILES)
    for name in MUSE_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for split in (*TEXT_SPLITS, *QA_SPLITS):  # every split changes with the seed
        assert (a / f"{split}.jsonl").read_bytes() != (c / f"{split}.jsonl").read_bytes(), split
    assert generate_muse(MuseConfig(seed=3)) == generate_muse(MuseConfig(seed=3))
    assert generate_muse() == generate_muse(MuseConfig())  # None is the default config


DEFAULT_DIGEST = "0eda5d97608af7299f9297cfe1590789862fd40845a3b1ec218b80948a063ebb"


def test_the_default_corpus_is_pinned(tmp_path):
    """The sha256 of the default corpus's files, in name order. Reference models are trained on
    these bytes: a generator change that moves it must be on purpose (then update the digest and
    retrain the pinned MUSE models)."""
    import hashlib

    folder = write_muse(tmp_path / "corpus")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()
    assert digest == DEFAULT_DIGEST


def test_topics_are_consistent():
    for name, topic in TOPICS.items():
        slots = set()
        for wordings in topic["sentences"]:
            assert len(wordings) >= 2, name
            assert len({tuple(sorted(_slots(w))) for w in wordings}) == 1, (name, wordings)  # same slots
            slots |= set(_slots(wordings[0]))
        fillers = set(topic["fillers"]) | {k for _, extra in topic["orgs"] for k in extra}
        assert slots - fillers <= set(SLOT_KINDS), name
        assert not fillers & set(SLOT_KINDS), name
        assert {SLOT_KINDS[s] for s in slots - fillers} == set(FACT_KINDS), name  # every kind of fact
        assert len(topic["questions"]) >= 3
        for answer_slot, question in topic["questions"].items():
            asked = set(_slots(question))
            assert answer_slot in slots and asked <= slots - fillers, (name, question)
            assert answer_slot not in asked and asked & {"place", "person", "org"}, (name, question)


def test_every_key_span_is_the_fact_it_names(corpus):
    facts = {a["doc_id"]: a["facts"] for a in corpus["facts"]}
    checked = 0
    for split in TEXT_SPLITS:
        for row in corpus[split]:
            text, spans, slots = row["text"], row["key_spans"], row["key_facts"]
            assert len(spans) == len(slots) > 0
            assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # no overlap
            for (start, end), slot in zip(spans, slots):
                assert text[start:end] == facts[row["doc_id"]][slot], (row["doc_id"], slot)
                # whole words: a span never cuts a word or a number
                assert (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())
                checked += 1
            assert {SLOT_KINDS[s] for s in slots} == set(FACT_KINDS)
            assert set(slots) == set(facts[row["doc_id"]])
            # names, places and organisations stand nowhere else in the text
            for slot, value in facts[row["doc_id"]].items():
                if SLOT_KINDS[slot] in ("person", "place", "organisation"):
                    assert text.count(value) == slots.count(slot), (row["doc_id"], slot, value)
    assert checked > 40 * 10


@pytest.mark.parametrize("seed", range(4))
def test_names_are_unique_and_none_is_inside_another(seed):
    """A person, place or organisation is one article's and no name is part of another, so a name
    stands in the whole corpus exactly where a key span marks it."""
    corpus = generate_muse(MuseConfig(seed=seed))
    names = [value for article in corpus["facts"]
             for slot, value in article["facts"].items() if SLOT_KINDS[slot] in ("person", "place", "organisation")]
    assert len(names) == len(set(names)) == 50 * 4
    assert not [(a, b) for a in names for b in names if a != b and a in b]
    rows = [r for split in TEXT_SPLITS for r in corpus[split]]
    everything = "\n".join(r["text"] for r in rows)
    marked = [r["text"][a:b] for r in rows for a, b in r["key_spans"]]
    for name in names:
        assert everything.count(name) == marked.count(name) > 0, name


def test_every_answer_stands_at_its_span_in_its_article(corpus):
    articles = {r["doc_id"]: r for split in TEXT_SPLITS for r in corpus[split]}
    for split in QA_SPLITS:
        for row in corpus[split]:
            assert set(row) == set(QA_FIELDS)
            article = articles[row["doc_id"]]
            start, end = row["answer_span"]
            assert article["text"][start:end] == row["answer"] != ""
            assert [start, end] in article["key_spans"]  # the answer is an annotated fact
            assert article["key_facts"][article["key_spans"].index([start, end])] == row["fact_type"]
            assert row["key_spans"] == [[0, len(row["answer"])]]
            assert row["answer"] not in row["question"]
            assert row["question"] == TOPICS[article["topic"]]["questions"][row["fact_type"]].format(
                **{s: article["text"][a:b] for (a, b), s in zip(article["key_spans"], article["key_facts"])})
            assert row_problem(row) is None


@pytest.mark.parametrize("config", [MuseConfig(), SMALL, MuseConfig(n_forget=1, n_retain=1, n_holdout=1,
                                                                   qa_per_article=1, seed=9)])
def test_splits_are_disjoint_and_sized_as_configured(config):
    corpus = generate_muse(config)
    sizes = {"forget": config.n_forget, "retain": config.n_retain, "holdout": config.n_holdout}
    ids = {}
    for split, size in sizes.items():
        assert len(corpus[split]) == size
        assert len(corpus[f"{split}_qa"]) == size * config.qa_per_article
        ids[split] = [r["doc_id"] for r in corpus[split]]
        assert {q["doc_id"] for q in corpus[f"{split}_qa"]} == set(ids[split])
        for doc in ids[split]:  # the questions of an article ask about different facts
            types = [q["fact_type"] for q in corpus[f"{split}_qa"] if q["doc_id"] == doc]
            assert len(types) == len(set(types)) == config.qa_per_article
        if size >= len(TOPICS):
            assert {r["topic"] for r in corpus[split]} == set(TOPICS)
    # retain first, then forget, then holdout: doc ids 0.. with no repeat
    assert ids["retain"] + ids["forget"] + ids["holdout"] == list(range(sum(sizes.values())))
    qa_ids = [q["qa_id"] for s in QA_SPLITS for q in corpus[s]]
    assert sorted(qa_ids) == list(range(len(qa_ids)))
    loaded = load_muse(config=config)
    assert list(loaded) == list(MUSE_SPLITS)
    assert loaded["full"]["doc_id"] == sorted(ids["retain"] + ids["forget"])
    assert not set(loaded["full"]["doc_id"]) & set(ids["holdout"])
    for split in ("full", *TEXT_SPLITS):
        assert loaded[split].column_names == list(ARTICLE_FIELDS)
    for split in QA_SPLITS:
        assert loaded[split].column_names == list(QA_FIELDS)
        assert loaded[split].to_list() == corpus[split]


def test_sizes_of_the_default_corpus(corpus):
    words = [len(r["text"].split()) for s in TEXT_SPLITS for r in corpus[s]]
    assert 50 <= min(words) and max(words) <= 120, (min(words), max(words))
    assert MuseConfig() == MuseConfig(n_forget=10, n_retain=30, n_holdout=10, qa_per_article=3, seed=0)


@pytest.mark.parametrize("field,value,message", [
    ("n_forget", 0, r"MuseConfig.n_forget must be an integer >= 1, got 0"),
    ("n_holdout", 1.5, r"MuseConfig.n_holdout must be an integer >= 1, got 1.5"),
    ("qa_per_article", 99, r"MuseConfig.qa_per_article must be in \[1, 8\], got 99"),
    ("seed", "0", r"MuseConfig.seed must be an integer, got '0'"),
])
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(InputError, match=message):
        MuseConfig(**{field: value})


# ----------------------------------------------------------------------------------------------
# encoding


def test_text_splits_encode_and_every_key_span_yields_key_tokens(tiny_tok, loaded):
    spans_checked = 0
    for split in ("full", *TEXT_SPLITS):
        encoded = encode_text_dataset(tiny_tok, loaded[split], "qa", 128)
        assert encoded == MUSE.encode(tiny_tok, loaded[split], "qa", 128)
        assert len({e["example_id"] for e in encoded}) == len(encoded) >= len(loaded[split])
        assert all(len(e["input_ids"]) <= 128 and e["labels"][0] == IGNORE_INDEX for e in encoded)
        if split == "full":
            continue
        for row in loaded[split]:
            [whole] = encode_text(tiny_tok, row["text"], row["key_spans"], doc_id=row["doc_id"])
            assert 0 < sum(whole["key_mask"]) < len(whole["key_mask"]) - 1
            for (start, end), slot in zip(row["key_spans"], row["key_facts"]):
                [one] = encode_text(tiny_tok, row["text"], [[start, end]], doc_id=row["doc_id"])
                keys = [t for t, k in zip(one["input_ids"], one["key_mask"]) if k]
                assert keys, (row["doc_id"], slot)
                assert row["text"][start:end] in tiny_tok.decode(keys), (row["doc_id"], slot)
                spans_checked += 1
    assert spans_checked > 40 * 10


def test_qa_splits_encode_with_the_answer_as_key_tokens(tiny_tok, loaded):
    for split in QA_SPLITS:
        encoded = encode_dataset(tiny_tok, loaded[split], "qa", 128)
        assert [e["example_id"] for e in encoded] == loaded[split]["qa_id"]
        for e in encoded:
            answer = [i for i, label in enumerate(e["labels"]) if label != IGNORE_INDEX][:-1]  # less the EOS
            # every answer token is a key token but a lone space (this BPE splits " 4" into " ", "4")
            words = [i for i in answer if tiny_tok.decode([e["input_ids"][i]]).strip()]
            assert words and all(e["key_mask"][i] for i in words)
            assert not any(e["key_mask"][i] for i in set(range(len(e["key_mask"]))) - set(answer))


# ----------------------------------------------------------------------------------------------
# files


def test_write_and_read_round_trip(tmp_path):
    folder = write_muse(tmp_path / "corpus", SMALL)
    back = read_muse(folder)
    generated = generate_muse(SMALL)
    assert back["config"] == SMALL
    for split in (*TEXT_SPLITS, *QA_SPLITS):
        assert back[split] == generated[split], split
    from_files, generated_ds = load_muse(data_dir=folder), load_muse(config=SMALL)
    assert list(from_files) == list(generated_ds) == list(MUSE_SPLITS)
    for split in MUSE_SPLITS:
        assert from_files[split].to_list() == generated_ds[split].to_list(), split
    assert list(load_muse(["forget", "holdout_qa"], data_dir=folder)) == ["forget", "holdout_qa"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["rows"] == {s: len(generated[s]) for s in (*TEXT_SPLITS, *QA_SPLITS)}


def _edit_line(path, line_no, edit):
    lines = path.read_text().splitlines()
    row = json.loads(lines[line_no - 1])
    edit(row)
    lines[line_no - 1] = json.dumps(row, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")


CORRUPTIONS = [
    # (file, line, how, what the message must say after "<file>:<line>" or "<file>")
    ("retain.jsonl", 4, lambda row: row.update(key_spans=[[0, 5], [10, 99999]]),
     r":4: field 'key_spans': span \[10, 99999\] is not a \[start, end\) pair"),
    ("forget.jsonl", 2, lambda row: row.pop("key_facts"), r":2: row is missing field\(s\) \['key_facts'\]"),
    ("holdout.jsonl", 1, lambda row: row.update(doc_id="7"), r":1: field 'doc_id': must be an integer >= 0, got '7'"),
    ("forget.jsonl", 3, lambda row: row.update(text="  "), r":3: field 'text': must be a non-empty string"),
    ("retain.jsonl", 1, lambda row: row["key_facts"].pop(), r":1: field 'key_facts': must be a list of fact slots"),
    ("retain.jsonl", 2, lambda row: row.update(topic="sports"), r":2: field 'topic': unknown topic 'sports'"),
    ("forget_qa.jsonl", 2, lambda row: row.update(answer=""), r":2: field 'answer': must be a non-empty string"),
    ("retain_qa.jsonl", 5, lambda row: row.update(key_spans=[[0, 500]]), r":5: field 'key_spans': span \[0, 500\]"),
    ("forget_qa.jsonl", 1, lambda row: row.update(qa_id=1.0), r":1: field 'qa_id': must be an integer"),
    ("holdout_qa.jsonl", 2, lambda row: row.update(fact_type="colour"), r":2: field 'fact_type': unknown fact slot"),
    ("retain_qa.jsonl", 3, lambda row: row.update(answer_span=[5]), r":3: field 'answer_span': must be a \[start, end\)"),
    ("forget_qa.jsonl", 4, lambda row: row.update(answer_span=[row["answer_span"][0] + 1, row["answer_span"][1] + 1]),
     r": row 4 \(qa_id \d+\): field 'answer_span': \[\d+, \d+\] of article \d+ reads .*, not the answer"),
    ("forget_qa.jsonl", 1, lambda row: row.update(doc_id=0),  # a retain article's
     r": row 1 \(qa_id \d+\): field 'doc_id': 0 is no article of 'forget'"),
    ("retain_qa.jsonl", 2, lambda row: row.update(qa_id=0), r": row 2 \(qa_id 0\): field 'qa_id' repeats"),
    ("holdout.jsonl", 2, lambda row: row.update(doc_id=0), r": field 'doc_id': 0 is also the doc_id of an article of 'retain'"),
]


@pytest.mark.parametrize("name,line,edit,message", CORRUPTIONS, ids=[f"{c[0]}:{c[1]}" for c in CORRUPTIONS])
def test_a_corrupted_row_is_named_by_file_row_and_field(tmp_path, name, line, edit, message):
    folder = write_muse(tmp_path / "corpus", SMALL)
    read_muse(folder)  # valid before the edit
    _edit_line(folder / name, line, edit)
    with pytest.raises(InputError, match=re.escape(str(folder / name)) + message):
        read_muse(folder)
    with pytest.raises(InputError, match=re.escape(str(folder / name))):
        load_muse(data_dir=folder)


def test_corrupted_files_are_named(tmp_path):
    folder = write_muse(tmp_path / "corpus", SMALL)
    path = folder / "retain.jsonl"
    good = path.read_text()
    path.write_text(good.replace("\n", "\n{not json\n", 1))
    with pytest.raises(InputError, match=re.escape(f"{path}:2: not valid JSON")):
        read_muse(folder)
    path.write_text(good.replace("\n", "\n[1, 2]\n", 1))
    with pytest.raises(InputError, match=re.escape(f"{path}:2: a row must be a JSON object")):
        read_muse(folder)
    path.write_text("".join(good.splitlines(keepends=True)[:-1]))  # a cut file
    with pytest.raises(InputError, match=re.escape(f"{path}: has {SMALL.n_retain - 1} row(s), but "
                                                   f"{folder / 'manifest.json'} field 'rows' says {SMALL.n_retain}")):
        read_muse(folder)
    path.unlink()
    with pytest.raises(InputError, match=re.escape(f"MUSE corpus file missing: {path}")):
        read_muse(folder)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(format="tofu"), r": field 'format' must be 'satimp-lab muse corpus v1', got 'tofu'"),
    (lambda m: m["config"].update(n_forget=0), r": field 'config': MuseConfig.n_forget must be an integer >= 1"),
    (lambda m: m["config"].update(n_authors=3), r": field 'config' must be an object with fields of"),
    (lambda m: m["rows"].pop("holdout_qa"), r": field 'rows' must give the row count of every split"),
])
def test_a_corrupted_manifest_is_named(tmp_path, edit, message):
    folder = write_muse(tmp_path / "corpus", SMALL)
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=re.escape(str(path)) + message):
        read_muse(folder)
    path.write_text("{")
    with pytest.raises(InputError, match=re.escape(str(path)) + r":1: not valid JSON"):
        read_muse(folder)


def test_an_unknown_split_names_itself_and_the_valid_ones():
    with pytest.raises(InputError, match=r"unknown MUSE split\(s\) \['forget10'\]; valid: \['full', 'forget'"):
        load_muse(["forget", "forget10"])


