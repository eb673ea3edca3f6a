"""The WMDP-shaped corpus (satimp_lab/data/wmdp.py, issue 25 item 1): generated offline and
byte-identical for a seed; every key span is the fact it names and every right choice stands at its
span; the distractors are of the answer's type; evaluated and format-exposure questions ask about
different facts of a passage; answer positions are balanced; splits are disjoint and as configured;
the text splits encode through the raw-text encoder; the files round-trip and a corrupted one is named."""

from __future__ import annotations

import collections
import hashlib
import json
import re

import pytest

from satimp_lab.data import wmdp, wmdp_world
from satimp_lab.data.families import encode_text
from satimp_lab.data.wmdp import (MC_FIELDS, MC_LETTERS, MC_SPLITS, PASSAGE_FIELDS, TEXT_SPLITS, WMDP_FILES,
                                  WMDP_SPLITS, WmdpConfig, generate_wmdp, load_wmdp, mc_as_qa, mc_prompt, read_wmdp,
                                  relearn_doc_ids, wmdp_to_datasets, write_wmdp)
from satimp_lab.data.wmdp_world import FACT_KINDS, GENERAL, NAME_SLOTS, RESTRICTED, SLOT_KINDS, TOPICS
from satimp_lab.errors import InputError

SMALL = WmdpConfig(n_forget=4, n_retain=6, mc_per_passage=2, train_mc_per_passage=2, n_relearn=1, seed=5)


@pytest.fixture(scope="module")
def corpus():
    return generate_wmdp()


def _slots(template: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", template)


def _passages(corpus) -> dict[int, dict]:
    return {r["doc_id"]: r for split in TEXT_SPLITS for r in corpus[split]}


def _facts(passage: dict) -> dict[str, str]:
    return {slot: passage["text"][a:b] for (a, b), slot in zip(passage["key_spans"], passage["key_facts"])}


# ----------------------------------------------------------------------------------------------
# generation


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = (write_wmdp(tmp_path / name, WmdpConfig(seed=seed)) for name, seed in (("a", 3), ("b", 3), ("c", 4)))
    assert sorted(p.name for p in a.iterdir()) == sorted(WMDP_FILES)
    for name in WMDP_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for split in (*TEXT_SPLITS, *MC_SPLITS):  # every split changes with the seed
        assert (a / f"{split}.jsonl").read_bytes() != (c / f"{split}.jsonl").read_bytes(), split
    assert generate_wmdp(WmdpConfig(seed=3)) == generate_wmdp(WmdpConfig(seed=3))
    assert generate_wmdp() == generate_wmdp(WmdpConfig())  # None is the default config


DEFAULT_DIGEST = "7ade567be8e563016685702f64b8fdc0d1f41dae8a921b98c0c4dc8bdb84b936"


def test_the_default_corpus_is_pinned(tmp_path):
    """The sha256 of the default corpus's files, in name order. Models are trained on these bytes:
    a generator or content change that moves it must be on purpose (then update the digest and
    retrain any pinned WMDP-shaped models)."""
    folder = write_wmdp(tmp_path / "corpus")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()
    assert digest == DEFAULT_DIGEST


@pytest.mark.parametrize("seed", range(6))
def test_no_word_fact_stands_unmarked_in_its_passage(seed):
    """A name or pooled value (a colour, a food, a month) stands as a word in its passage only at
    key spans: no pool word is inside another pool's value ("blue" in "blue minnows")."""
    corpus = generate_wmdp(WmdpConfig(seed=seed))
    for row in (r for split in TEXT_SPLITS for r in corpus[split]):
        marked = {tuple(span) for span in row["key_spans"]}
        for value in {v for v in _facts(row).values() if not v.isdigit()}:
            for match in re.finditer(rf"\b{re.escape(value)}\b", row["text"]):
                assert match.span() in marked, (seed, row["doc_id"], value)


def test_the_domain_is_declared_invented_and_harmless():
    doc = " ".join(wmdp.__doc__.split())
    assert "no real-world hazardous or dual-use content" in doc
    assert "invented" in " ".join(wmdp_world.__doc__.split())


def test_topics_are_consistent():
    assert {spec["domain"] for spec in TOPICS.values()} == {RESTRICTED, GENERAL}
    most = min(len(spec["questions"]) for spec in TOPICS.values())
    assert most >= WmdpConfig().mc_per_passage + WmdpConfig().train_mc_per_passage
    for name, topic in TOPICS.items():
        slots = []
        for wordings in topic["sentences"]:
            assert len(wordings) >= 2, name
            assert len({tuple(sorted(_slots(w))) for w in wordings}) == 1, (name, wordings)  # same slots
            slots += _slots(wordings[0])
        assert "subject" in slots and set(slots) <= set(SLOT_KINDS), name
        for slot in set(slots):  # every slot has a source of values (and of distractors)
            sources = [slot in NAME_SLOTS, slot == "year", slot in topic["numbers"], slot in topic["pools"]]
            assert sum(sources) == 1, (name, slot)
        for slot, pool in topic["pools"].items():
            assert len(set(pool)) == len(pool) >= 4, (name, slot)
        for answer_slot, question in topic["questions"].items():
            assert answer_slot in slots and answer_slot != "subject", (name, answer_slot)
            assert _slots(question) == ["subject"], (name, question)  # a question names the subject only


def test_every_key_span_is_the_fact_it_names(corpus):
    checked = 0
    for split in TEXT_SPLITS:
        for row in corpus[split]:
            assert set(row) == set(PASSAGE_FIELDS)
            assert TOPICS[row["topic"]]["domain"] == {"forget": RESTRICTED, "retain": GENERAL}[split]
            text, spans, slots = row["text"], row["key_spans"], row["key_facts"]
            assert len(spans) == len(slots) > 0
            assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # no overlap
            values: dict[str, str] = {}
            for (start, end), slot in zip(spans, slots):
                assert values.setdefault(slot, text[start:end]) == text[start:end], (row["doc_id"], slot)
                # whole words: a span never cuts a word or a number
                assert (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())
                checked += 1
            assert values["subject"] == row["subject"]
            expected = [s for wordings in TOPICS[row["topic"]]["sentences"] for s in _slots(wordings[0])]
            assert sorted(slots) == sorted(expected)  # every slot occurrence is annotated
    assert checked > 50 * 8


@pytest.mark.parametrize("seed", range(3))
def test_names_are_unique_and_none_is_inside_another(seed):
    """A name is one passage's and no name is part of another, so a name stands in the whole corpus
    exactly where a key span marks it."""
    corpus = generate_wmdp(WmdpConfig(seed=seed))
    rows = [r for split in TEXT_SPLITS for r in corpus[split]]
    names = [value for r in rows for slot, value in _facts(r).items() if slot in NAME_SLOTS]
    assert len(names) == len(set(names)) > 50 * 3
    assert not [(a, b) for a in names for b in names if a != b and a in b]
    everything = "\n".join(r["text"] for r in rows)
    marked = [r["text"][a:b] for r in rows for a, b in r["key_spans"]]
    for name in names:
        assert everything.count(name) == marked.count(name) > 0, name


def test_every_right_choice_stands_at_its_span_and_distractors_share_its_type(corpus):
    passages = _passages(corpus)
    for split in MC_SPLITS:
        text_split = split.split("_")[0]
        # the values of each (topic, slot) in this corpus's passages
        read = collections.defaultdict(set)
        for p in corpus[text_split]:
            for slot, value in _facts(p).items():
                read[p["topic"], slot].add(value)
        for row in corpus[split]:
            assert set(row) == set(MC_FIELDS)
            p = passages[row["doc_id"]]
            assert p in corpus[text_split]
            start, end = row["answer_span"]
            right = row["choices"][row["answer"]]
            assert p["text"][start:end] == right == _facts(p)[row["fact_type"]]
            assert p["key_facts"][p["key_spans"].index([start, end])] == row["fact_type"]
            assert len(row["choices"]) == 4 == len(set(row["choices"]))
            assert row["question"] == TOPICS[p["topic"]]["questions"][row["fact_type"]].format(subject=p["subject"])
            # no choice stands in the question as a word (a name may hold a colour's letters: "Oredadru")
            assert not [c for c in row["choices"] if re.search(rf"\b{re.escape(c)}\b", row["question"])], row
            # distractors: the same slot's values in other passages of the same topic and corpus
            # (the default corpus has at least three others of every slot)
            assert set(row["choices"]) <= read[p["topic"], row["fact_type"]], row


def test_distractors_of_a_tiny_corpus_are_of_the_answers_type():
    config = WmdpConfig(n_forget=1, n_retain=1, mc_per_passage=4, train_mc_per_passage=4, n_relearn=0, seed=2)
    corpus = generate_wmdp(config)
    passages = _passages(corpus)
    for split in MC_SPLITS:
        for row in corpus[split]:
            spec = TOPICS[passages[row["doc_id"]]["topic"]]
            slot = row["fact_type"]
            for choice in row["choices"]:
                if slot in spec["pools"]:
                    assert choice in spec["pools"][slot]
                elif slot in spec["numbers"] or slot == "year":
                    low, high = spec["numbers"].get(slot, wmdp.YEARS)
                    assert choice.isdigit() and low <= int(choice) <= high
                else:
                    assert len(choice.split()) == (2 if NAME_SLOTS[slot] == "person" else 1)
                    assert choice.istitle()


def test_evaluated_and_trained_questions_ask_about_different_facts(corpus):
    """No evaluated (passage, fact) pair is ever a trained question's; every slot of every topic is
    evaluated for some passages and trained on for others; every passage has both kinds."""
    config = WmdpConfig()
    topic = {r["doc_id"]: r["topic"] for s in TEXT_SPLITS for r in corpus[s]}
    for text_split in TEXT_SPLITS:
        evaluated = [(q["doc_id"], q["fact_type"]) for q in corpus[f"{text_split}_mc"]]
        trained = [(q["doc_id"], q["fact_type"]) for q in corpus[f"{text_split}_train_mc"]]
        assert len(set(evaluated)) == len(evaluated) and len(set(trained)) == len(trained)
        assert not set(evaluated) & set(trained)
        for doc in (r["doc_id"] for r in corpus[text_split]):
            assert sum(d == doc for d, _ in evaluated) == config.mc_per_passage
            assert sum(d == doc for d, _ in trained) == config.train_mc_per_passage
        for name in {topic[d] for d, _ in evaluated}:
            slots = set(TOPICS[name]["questions"])
            assert {s for d, s in evaluated if topic[d] == name} == slots, name
            assert {s for d, s in trained if topic[d] == name} == slots, name


def test_answer_positions_are_balanced_in_every_split(corpus):
    for config in (WmdpConfig(), SMALL):
        generated = corpus if config == WmdpConfig() else generate_wmdp(config)
        for split in MC_SPLITS:
            counts = collections.Counter(r["answer"] for r in generated[split])
            assert set(counts) <= set(range(4))
            assert max(counts.values()) - min(counts[i] for i in range(4)) <= 1, (split, counts)


@pytest.mark.parametrize("config", [WmdpConfig(), SMALL,
                                    WmdpConfig(n_forget=1, n_retain=1, mc_per_passage=1, train_mc_per_passage=0,
                                               n_relearn=0, seed=9)])
def test_splits_are_disjoint_and_sized_as_configured(config):
    corpus = generate_wmdp(config)
    sizes = {"retain": config.n_retain, "forget": config.n_forget}
    ids = {}
    for split, size in sizes.items():
        assert len(corpus[split]) == size
        assert len(corpus[f"{split}_mc"]) == size * config.mc_per_passage
        assert len(corpus[f"{split}_train_mc"]) == size * config.train_mc_per_passage
        ids[split] = [r["doc_id"] for r in corpus[split]]
        assert {q["doc_id"] for q in corpus[f"{split}_mc"]} == set(ids[split])
        domain = [t for t, spec in TOPICS.items() if spec["domain"] == {"forget": RESTRICTED, "retain": GENERAL}[split]]
        if size >= len(domain):
            assert {r["topic"] for r in corpus[split]} == set(domain)
    assert ids["retain"] + ids["forget"] == list(range(sum(sizes.values())))  # retain first, then forget
    qa_ids = [q["qa_id"] for s in ("retain_train_mc", "retain_mc", "forget_train_mc", "forget_mc") for q in corpus[s]]
    assert qa_ids == list(range(len(qa_ids)))
    loaded = load_wmdp(config=config)
    assert list(loaded) == list(WMDP_SPLITS)
    assert loaded["full"]["doc_id"] == sorted(ids["retain"] + ids["forget"])
    relearn = ids["forget"][:config.n_relearn]
    assert loaded["relearn"]["doc_id"] == relearn == relearn_doc_ids(corpus, config.n_relearn)
    assert loaded["relearn_eval_mc"].to_list() == [q for q in corpus["forget_mc"] if q["doc_id"] not in relearn]
    for split in ("full", "relearn", *TEXT_SPLITS):
        assert loaded[split].column_names == list(PASSAGE_FIELDS)
    for split in (*MC_SPLITS, "relearn_eval_mc"):
        assert loaded[split].column_names == list(MC_FIELDS)
    for split in (*TEXT_SPLITS, *MC_SPLITS):
        assert loaded[split].to_list() == corpus[split]


def test_sizes_of_the_default_corpus(corpus):
    assert WmdpConfig() == WmdpConfig(n_forget=20, n_retain=30, mc_per_passage=3, train_mc_per_passage=3,
                                      n_relearn=5, seed=0)
    words = [len(r["text"].split()) for s in TEXT_SPLITS for r in corpus[s]]
    assert 50 <= min(words) and max(words) <= 90, (min(words), max(words))
    assert 3000 <= sum(words) <= 3600
    assert {s: len(corpus[s]) for s in MC_SPLITS} == {"forget_train_mc": 60, "forget_mc": 60,
                                                     "retain_train_mc": 90, "retain_mc": 90}
    relearn = relearn_doc_ids(corpus, 5)
    assert {r["topic"] for r in corpus["forget"] if r["doc_id"] in relearn} == {
        t for t, spec in TOPICS.items() if spec["domain"] == RESTRICTED}  # the relearn set spans the domain
    kinds = {SLOT_KINDS[s] for s in SLOT_KINDS}
    assert kinds == set(FACT_KINDS)


@pytest.mark.parametrize("field,value,message", [
    ("n_forget", 0, r"WmdpConfig.n_forget must be an integer >= 1, got 0"),
    ("n_retain", 1.5, r"WmdpConfig.n_retain must be an integer >= 1, got 1.5"),
    ("mc_per_passage", 0, r"WmdpConfig.mc_per_passage must be an integer >= 1, got 0"),
    ("train_mc_per_passage", -1, r"WmdpConfig.train_mc_per_passage must be an integer >= 0, got -1"),
    ("train_mc_per_passage", 6, r"WmdpConfig.train_mc_per_passage must be in \[0, 5\]"),
    ("n_relearn", 21, r"WmdpConfig.n_relearn must be in \[0, 20\] \(n_forget\), got 21"),
    ("seed", "0", r"WmdpConfig.seed must be an integer, got '0'"),
])
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(InputError, match=message):
        WmdpConfig(**{field: value})


def test_mc_prompt_letters_the_choices(corpus):
    row = corpus["forget_mc"][0]
    prompt = mc_prompt(row)
    lines = prompt.split("\n")
    assert lines[0] == f"Question: {row['question']}" and lines[-1] == "Answer:"
    assert lines[1:5] == [f"{letter}. {choice}" for letter, choice in zip(MC_LETTERS, row["choices"])]


# ----------------------------------------------------------------------------------------------
# encoding


def test_text_splits_encode_with_key_tokens_for_every_fact(corpus):
    from transformers import AutoTokenizer

    from satimp_lab.resources import shipped_path

    tok = AutoTokenizer.from_pretrained(shipped_path("data", "models", "tiny", "seed0", "target"))
    for split in TEXT_SPLITS:
        for row in corpus[split]:
            blocks = encode_text(tok, row["text"], row["key_spans"], doc_id=row["doc_id"])
            assert blocks and all(0 < sum(b["key_mask"]) < len(b["key_mask"]) for b in blocks[:1])
            whole = [t for b in blocks for t, k in zip(b["input_ids"], b["key_mask"]) if k]
            assert row["subject"] in tok.decode(whole), row["doc_id"]


def test_mc_rows_encode_as_qa_rows_with_the_letter_as_answer(corpus):
    from transformers import AutoTokenizer

    from satimp_lab.data.batching import IGNORE_INDEX, encode_dataset
    from satimp_lab.data.schema import row_problem
    from satimp_lab.resources import shipped_path

    tok = AutoTokenizer.from_pretrained(shipped_path("data", "models", "tiny", "seed0", "target"))
    rows = [mc_as_qa(r) for r in corpus["forget_train_mc"][:8] + corpus["retain_mc"][:8]]
    assert all(row_problem(r) is None for r in rows)
    encoded = encode_dataset(tok, rows, "qa", 256)
    for row, original, e in zip(rows, corpus["forget_train_mc"][:8] + corpus["retain_mc"][:8], encoded):
        assert e["example_id"] == row["qa_id"] == original["qa_id"]
        assert row["answer"] == MC_LETTERS[original["answer"]]
        prompt = [t for t, label in zip(e["input_ids"], e["labels"]) if label == IGNORE_INDEX]
        answer = [label for label in e["labels"] if label != IGNORE_INDEX]
        text = tok.decode(prompt + answer[:-1], skip_special_tokens=True)  # less the EOS
        assert text == mc_prompt(original) + " " + row["answer"]


# ----------------------------------------------------------------------------------------------
# files


def test_write_and_read_round_trip(tmp_path):
    folder = write_wmdp(tmp_path / "corpus", SMALL)
    back = read_wmdp(folder)
    generated = generate_wmdp(SMALL)
    assert back["config"] == SMALL
    for split in (*TEXT_SPLITS, *MC_SPLITS):
        assert back[split] == generated[split], split
    from_files, generated_ds = load_wmdp(data_dir=folder), load_wmdp(config=SMALL)
    assert list(from_files) == list(generated_ds) == list(WMDP_SPLITS)
    for split in WMDP_SPLITS:
        assert from_files[split].to_list() == generated_ds[split].to_list(), split
    assert len(from_files["relearn"]) == SMALL.n_relearn  # the folder's config, not the default's
    assert list(load_wmdp(["forget", "retain_mc"], data_dir=folder)) == ["forget", "retain_mc"]
    assert len(wmdp_to_datasets(back, ["relearn"], n_relearn=3)["relearn"]) == 3
    assert generated["config"] == SMALL  # so a generated corpus's relearn set is its own config's
    assert len(wmdp_to_datasets(generated, ["relearn"])["relearn"]) == SMALL.n_relearn
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["rows"] == {s: len(generated[s]) for s in (*TEXT_SPLITS, *MC_SPLITS)}


def _edit_line(path, line_no, edit):
    lines = path.read_text().splitlines()
    row = json.loads(lines[line_no - 1])
    edit(row)
    lines[line_no - 1] = json.dumps(row, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")


def _move_answer(row):
    row["answer"] = (row["answer"] + 1) % 4


CORRUPTIONS = [
    # (file, line, how, what the message must say after "<file>:<line>" or "<file>")
    ("retain.jsonl", 4, lambda row: row.update(key_spans=[[0, 5], [10, 99999]]),
     r":4: field 'key_spans': span \[10, 99999\] is not a \[start, end\) pair"),
    ("forget.jsonl", 2, lambda row: row.pop("key_facts"), r":2: row is missing field\(s\) \['key_facts'\]"),
    ("forget.jsonl", 1, lambda row: row.update(doc_id="7"), r":1: field 'doc_id': must be an integer >= 0, got '7'"),
    ("forget.jsonl", 3, lambda row: row.update(subject="  "), r":3: field 'subject': must be a non-empty string"),
    ("retain.jsonl", 1, lambda row: row["key_facts"].pop(), r":1: field 'key_facts': must be a list of fact slots"),
    ("retain.jsonl", 2, lambda row: row.update(topic="sports"), r":2: field 'topic': unknown topic 'sports'"),
    ("retain.jsonl", 3, lambda row: row.update(topic="beast"),
     r": row 3 \(doc_id \d+\): field 'topic': 'beast' is no topic of the general domain"),
    ("retain.jsonl", 2, lambda row: row.update(doc_id=SMALL.n_retain),  # the first forget passage's
     r": row 2 \(doc_id 6\): field 'doc_id': 6 is also the doc_id of a passage of 'forget'"),
    ("forget_mc.jsonl", 2, lambda row: row.update(question=""), r":2: field 'question': must be a non-empty string"),
    ("retain_mc.jsonl", 5, lambda row: row["choices"].pop(), r":5: field 'choices': must be a list of 4 distinct"),
    ("retain_train_mc.jsonl", 1, lambda row: row["choices"].__setitem__(1, row["choices"][0]),
     r":1: field 'choices': must be a list of 4 distinct"),
    ("forget_train_mc.jsonl", 3, lambda row: row.update(answer=4),
     r":3: field 'answer': must be a choice index in \[0, 3\]"),
    ("forget_mc.jsonl", 1, lambda row: row.update(qa_id=1.0), r":1: field 'qa_id': must be an integer >= 0"),
    ("retain_mc.jsonl", 2, lambda row: row.update(fact_type="colour2"), r":2: field 'fact_type': unknown fact slot"),
    ("retain_mc.jsonl", 3, lambda row: row.update(answer_span=[5]),
     r":3: field 'answer_span': must be a \[start, end\)"),
    ("forget_mc.jsonl", 4, _move_answer,
     r": row 4 \(qa_id \d+\): field 'answer_span': \[\d+, \d+\] of passage \d+ reads .*, not the right choice"),
    ("forget_mc.jsonl", 1, lambda row: row.update(doc_id=0),  # a retain passage's
     r": row 1 \(qa_id \d+\): field 'doc_id': 0 is no passage of 'forget'"),
    ("retain_mc.jsonl", 2, lambda row: row.update(qa_id=0), r": row 2 \(qa_id 0\): field 'qa_id' repeats"),
]


@pytest.mark.parametrize("name,line,edit,message", CORRUPTIONS,
                         ids=[f"{c[0]}:{c[1]}:{i}" for i, c in enumerate(CORRUPTIONS)])
def test_a_corrupted_row_is_named_by_file_row_and_field(tmp_path, name, line, edit, message):
    folder = write_wmdp(tmp_path / "corpus", SMALL)
    read_wmdp(folder)  # valid before the edit
    _edit_line(folder / name, line, edit)
    with pytest.raises(InputError, match=re.escape(str(folder / name)) + message):
        read_wmdp(folder)
    with pytest.raises(InputError, match=re.escape(str(folder / name))):
        load_wmdp(data_dir=folder)


def test_corrupted_files_are_named(tmp_path):
    folder = write_wmdp(tmp_path / "corpus", SMALL)
    path = folder / "retain.jsonl"
    good = path.read_text()
    path.write_text(good.replace("\n", "\n{not json\n", 1))
    with pytest.raises(InputError, match=re.escape(f"{path}:2: not valid JSON")):
        read_wmdp(folder)
    path.write_text(good.replace("\n", "\n[1, 2]\n", 1))
    with pytest.raises(InputError, match=re.escape(f"{path}:2: a row must be a JSON object")):
        read_wmdp(folder)
    path.write_text("".join(good.splitlines(keepends=True)[:-1]))  # a cut file
    with pytest.raises(InputError, match=re.escape(f"{path}: has {SMALL.n_retain - 1} row(s), but "
                                                   f"{folder / 'manifest.json'} field 'rows' says {SMALL.n_retain}")):
        read_wmdp(folder)
    path.unlink()
    with pytest.raises(InputError, match=re.escape(f"WMDP corpus file missing: {path}")):
        read_wmdp(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(InputError, match=re.escape(f"WMDP corpus file missing: {folder / 'manifest.json'}")):
        read_wmdp(folder)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(format="muse"), r": field 'format' must be 'satimp-lab wmdp corpus v1', got 'muse'"),
    (lambda m: m["config"].update(n_forget=0), r": field 'config': WmdpConfig.n_forget must be an integer >= 1"),
    (lambda m: m["config"].update(n_authors=3), r": field 'config' must be an object with fields of"),
    (lambda m: m["rows"].pop("retain_mc"), r": field 'rows' must give the row count of every split"),
])
def test_a_corrupted_manifest_is_named(tmp_path, edit, message):
    folder = write_wmdp(tmp_path / "corpus", SMALL)
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=re.escape(str(path)) + message):
        read_wmdp(folder)
    path.write_text("{")
    with pytest.raises(InputError, match=re.escape(str(path)) + r":1: not valid JSON"):
        read_wmdp(folder)


def test_unknown_split_and_bad_relearn_count_are_named(corpus):
    with pytest.raises(InputError, match=r"unknown WMDP split\(s\) \['forget10'\]; valid: \['full', 'forget'"):
        load_wmdp(["forget", "forget10"])
    with pytest.raises(InputError, match=r"n_relearn must be an integer in \[0, 20\]"):
        relearn_doc_ids(corpus, 21)
