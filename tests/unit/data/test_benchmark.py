import json

import pytest

from satimp_lab.data.benchmark import (BenchmarkConfig, default_data_dir, generate_benchmark, load_benchmark,
                                  read_benchmark, split_names, write_benchmark)
from satimp_lab.data.schema import FIELDS, retain_split_for


def test_published_files_regenerate_identically(tmp_path):
    published = default_data_dir()
    config = BenchmarkConfig(**json.loads((published / "config.json").read_text()))
    write_benchmark(tmp_path, config)
    for path in sorted(published.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_same_seed_same_data_other_seed_differs():
    a, b = generate_benchmark(BenchmarkConfig(seed=3)), generate_benchmark(BenchmarkConfig(seed=3))
    assert a == b
    assert generate_benchmark(BenchmarkConfig(seed=4))["full"] != a["full"]


def test_schema_and_sizes(published_bench):
    cfg = BenchmarkConfig()
    assert len(published_bench["full"]) == cfg.n_authors * cfg.qa_per_author
    assert len(published_bench["holdout"]) == cfg.n_holdout_authors * cfg.qa_per_author
    assert len(published_bench["world_facts"]) == cfg.n_world_facts
    for split in published_bench.values():
        assert set(split.column_names) == set(FIELDS)
    for row in published_bench["full"]:
        assert len(row["perturbed_answer"]) >= 3
        assert len(set(row["perturbed_answer"])) == len(row["perturbed_answer"])
        assert row["answer"] not in row["perturbed_answer"]
        assert row["paraphrased_question"] != row["question"]


def test_key_spans_are_the_fact_values(published_bench):
    authors = {a["author_id"]: a for a in generate_benchmark()["authors"]}
    for row in published_bench["full"]:
        facts = authors[row["author_id"]]
        values = [row["answer"][s:e] for s, e in row["key_spans"]]
        assert values, row
        for v in values:
            assert v in facts.values() and v != facts["name"], (v, row)
        # the wrong answers share the template: the text before the first fact value is kept
        prefix = row["answer"][: row["key_spans"][0][0]]
        for wrong in row["perturbed_answer"]:
            assert wrong.startswith(prefix) and wrong != row["answer"]


def test_forget_splits_are_whole_nested_authors(published_bench):
    full_authors = set(published_bench["full"]["author_id"])
    previous = set()
    for pct in (1, 5, 10):
        forget = set(published_bench[f"forget{pct:02d}"]["author_id"])
        retain = set(published_bench[f"retain{100 - pct:02d}"]["author_id"])
        assert len(forget) == pct  # of 100 authors
        assert forget | retain == full_authors and not forget & retain
        assert previous <= forget
        previous = forget
        forget_rows, retain_rows = published_bench[f"forget{pct:02d}"], published_bench[f"retain{100 - pct:02d}"]
        assert len(forget_rows) + len(retain_rows) == len(published_bench["full"])
    assert not set(published_bench["holdout"]["author_id"]) & full_authors
    assert set(published_bench["world_facts"]["author_id"]) == {-1}


def test_bad_input_errors():
    with pytest.raises(ValueError, match="unknown split"):
        load_benchmark(splits=["forget11"])
    with pytest.raises(ValueError, match="forget01 selects no author"):
        load_benchmark(splits=["forget01"], config=BenchmarkConfig(n_authors=20))
    with pytest.raises(ValueError, match="unknown source"):
        load_benchmark(source="muse")
    with pytest.raises(ValueError, match="unknown forget split"):
        retain_split_for("retain90")
    assert retain_split_for("forget05") == "retain95"
    assert "world_facts" in split_names()


def test_missing_field_in_data_file_is_named(tmp_path):
    write_benchmark(tmp_path)
    lines = (tmp_path / "full.jsonl").read_text().splitlines()
    row = json.loads(lines[5])
    del row["perturbed_answer"]
    lines[5] = json.dumps(row)
    (tmp_path / "full.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"full.jsonl:6.*perturbed_answer"):
        read_benchmark(tmp_path)


def test_reading_files_equals_generating(tmp_path):
    write_benchmark(tmp_path)
    from_files = load_benchmark(data_dir=tmp_path)
    generated = load_benchmark()
    for split in generated:
        assert from_files[split].to_list() == generated[split].to_list()


def _write_tofu_fixture(folder, n_authors=10, qa=20):
    """A local stand-in for locuslab/TOFU: the same config names and fields, made-up content."""
    def rows(start, stop, perturbed):
        out = []
        for i in range(start, stop):
            row = {"question": f"Q{i}?", "answer": f"A{i}."}
            if perturbed:
                row.update(paraphrased_question=f"PQ{i}?", paraphrased_answer=f"PA{i}.",
                           perturbed_answer=[f"W{i}a.", f"W{i}b.", f"W{i}c."])
            out.append(row)
        return out

    n = n_authors * qa
    configs = {"full": rows(0, n, False), "forget10_perturbed": rows(n - n // 10, n, True),
               "retain90": rows(0, n - n // 10, False), "holdout10": rows(n, n + 20, False),
               "world_facts_perturbed": [{"question": "Capital of X?", "answer": "Y.",
                                          "perturbed_answer": ["Z.", "V.", "U."]}]}
    for name, content in configs.items():
        (folder / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in content))


def test_tofu_path_gives_the_same_schema(tmp_path):
    """The Hub's config names (satimp_lab/data/tofu.py); more in tests/unit/data/test_tofu_data.py."""
    _write_tofu_fixture(tmp_path)
    ds = load_benchmark("tofu", splits=["full", "forget10_perturbed", "retain90", "holdout10",
                                        "world_facts_perturbed"], data_dir=tmp_path)
    synthetic = load_benchmark(splits=["full"])
    for split in ds.values():
        assert split.features == synthetic["full"].features
    assert ds["forget10_perturbed"][0]["paraphrased_answer"].startswith("PA")
    assert ds["retain90"][0]["paraphrased_answer"] == ds["retain90"][0]["answer"]  # filled in
    assert ds["forget10_perturbed"][0]["key_spans"] == []
    # forget authors are the last ones of full: 10 authors x 20 QA, forget10 = author 9
    assert set(ds["forget10_perturbed"]["author_id"]) == {9}
    assert set(ds["retain90"]["author_id"]) == set(range(9))


def test_tofu_missing_file_is_named(tmp_path):
    from satimp_lab.errors import InputError

    _write_tofu_fixture(tmp_path)
    (tmp_path / "forget10_perturbed.json").unlink()
    with pytest.raises(InputError, match="forget10_perturbed: .* has no forget10_perturbed.json"):
        load_benchmark("tofu", splits=["forget10_perturbed"], data_dir=tmp_path)
