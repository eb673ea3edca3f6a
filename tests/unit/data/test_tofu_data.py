"""Real TOFU as published (satimp_lab/data/tofu.py): the Hub's config names and fields, a local
folder's configs, qa_ids shared with ``full``, errors that name config, file and field, a fast
one-line failure offline, and the writer of the Hub layout (docs/methods.md#real-tofu)."""

from __future__ import annotations

import json
import time

import pytest

from satimp_lab.data.benchmark import BenchmarkConfig, load_benchmark
from satimp_lab.data.tofu import HUB_CONFIGS, HUB_FIELDS, eval_splits, is_hub_layout, load_tofu
from satimp_lab.data.tofu_layout import write_tofu_layout
from satimp_lab.errors import InputError

SMALL = BenchmarkConfig(n_authors=50, qa_per_author=2, n_holdout_authors=2, n_world_facts=6)  # forget01: 1 author


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tofu")
    write_tofu_layout(folder, SMALL)
    return folder


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _copy(layout, dest, configs):
    for c in configs:
        (dest / f"{c}.json").write_bytes((layout / f"{c}.json").read_bytes())
    return dest


# ----------------------------------------------------------------------------------------------
# the writer: the Hub's exact layout


def test_layout_has_the_hubs_configs_and_only_their_fields(layout):
    assert sorted(p.stem for p in layout.iterdir()) == sorted(HUB_CONFIGS)
    for config in HUB_CONFIGS:
        rows = _rows(layout / f"{config}.json")
        assert rows and all(list(r) == list(HUB_FIELDS[config]) for r in rows), config
    assert HUB_FIELDS["retain90"] == ("question", "answer")
    assert set(HUB_FIELDS["retain_perturbed"]) == {"question", "answer", "paraphrased_answer",
                                                   "paraphrased_question", "perturbed_answer"}
    assert HUB_FIELDS["real_authors_perturbed"] == ("question", "answer", "perturbed_answer")
    for r in _rows(layout / "world_facts.json"):  # multiple choice: the answer is one of 4 options
        assert r["answer"] in [r[f"option{k}"] for k in range(1, 5)]
    # JSON Lines, one compact object a line, as the Hub's files
    first = (layout / "full.json").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith('{"question":"') and '", "' not in first


def test_layout_is_byte_identical_for_a_seed(layout, tmp_path):
    write_tofu_layout(tmp_path / "again", SMALL)
    write_tofu_layout(tmp_path / "other", BenchmarkConfig(**{**SMALL.__dict__, "seed": 1}))
    for config in HUB_CONFIGS:
        assert (tmp_path / "again" / f"{config}.json").read_bytes() == (layout / f"{config}.json").read_bytes()
    assert (tmp_path / "other" / "full.json").read_bytes() != (layout / "full.json").read_bytes()


def test_layout_splits_follow_tofu(layout):
    full = _rows(layout / "full.json")
    forget, retain = _rows(layout / "forget10.json"), _rows(layout / "retain90.json")
    assert forget == full[-len(forget):] and retain == full[:len(retain)]  # forget = last authors
    pert = _rows(layout / "forget10_perturbed.json")
    assert [{"question": r["question"], "answer": r["answer"]} for r in pert] == forget
    retain_pert = _rows(layout / "retain_perturbed.json")
    assert [r["question"] for r in retain_pert] == [r["question"] for r in full[:len(retain_pert)]]
    held = {r["question"] for r in _rows(layout / "holdout10.json")}
    assert held and not held & {r["question"] for r in full}


# ----------------------------------------------------------------------------------------------
# the loader: a folder's configs, by the Hub's names


def test_a_folder_with_some_configs_loads_those(layout, tmp_path):
    folder = _copy(layout, tmp_path, ["retain90", "retain_perturbed", "real_authors_perturbed"])
    bench = load_benchmark("tofu", data_dir=folder)
    assert list(bench) == ["retain90", "retain_perturbed", "real_authors_perturbed"]
    assert len(bench["retain90"]) == len(_rows(layout / "retain90.json"))


@pytest.mark.parametrize("config", ["real_authors_perturbed", "retain_perturbed", "world_facts", "holdout05"])
def test_any_hub_config_loads_by_name(layout, config):
    bench = load_benchmark("tofu", splits=[config], data_dir=layout)
    assert list(bench) == [config] and len(bench[config]) == len(_rows(layout / f"{config}.json"))
    if config.endswith("_perturbed"):
        assert all(bench[config]["perturbed_answer"])


def test_rows_get_the_package_schema(layout):
    bench = load_tofu(["retain90", "retain_perturbed", "real_authors_perturbed", "world_facts"], data_dir=layout)
    assert bench["retain90"][0]["paraphrased_answer"] == bench["retain90"][0]["answer"]  # filled in
    assert bench["retain90"][0]["perturbed_answer"] == [] and bench["retain90"][0]["key_spans"] == []
    row = bench["retain_perturbed"][0]
    assert row["paraphrased_answer"] != row["answer"] and len(row["perturbed_answer"]) == SMALL.n_perturbed
    assert set(bench["real_authors_perturbed"]["author_id"]) == {-1}
    assert bench["world_facts"][0]["perturbed_answer"] == []  # the options are not kept


def test_qa_ids_are_the_rows_of_full(layout, tmp_path):
    bench = load_benchmark("tofu", data_dir=layout)
    index = {q: i for i, q in enumerate(bench["full"]["question"])}
    assert bench["full"]["qa_id"] == list(range(len(bench["full"])))
    for config in ("forget01", "forget10", "forget10_perturbed", "retain90", "retain_perturbed"):
        assert bench[config]["qa_id"] == [index[q] for q in bench[config]["question"]], config
    assert bench["forget10"]["qa_id"] == bench["forget10_perturbed"]["qa_id"]
    # without full.json the layout places them the same way (forget: the last rows of full)
    n_full = len(bench["full"])
    folder = _copy(layout, tmp_path, ["forget10_perturbed", "retain_perturbed"])
    alone = load_tofu(data_dir=folder)
    n = len(alone["forget10_perturbed"])
    assert alone["forget10_perturbed"]["qa_id"] == list(range(4000 - n, 4000))  # TOFU's 4000 rows
    assert alone["retain_perturbed"]["qa_id"] == bench["retain_perturbed"]["qa_id"]
    (folder / "full.json").write_bytes((layout / "full.json").read_bytes())
    assert load_tofu(["forget10_perturbed"], data_dir=folder)["forget10_perturbed"]["qa_id"] == \
        list(range(n_full - n, n_full))
    # other configs have their own ranges, the two real-authors configs the same ids
    ids = {c: set(bench[c]["qa_id"]) for c in ("holdout10", "real_authors_perturbed", "world_facts_perturbed")}
    assert not (ids["holdout10"] | ids["real_authors_perturbed"] | ids["world_facts_perturbed"]) & set(index.values())
    assert bench["real_authors"]["qa_id"] == bench["real_authors_perturbed"]["qa_id"]


def test_a_json_array_file_reads_like_json_lines(layout, tmp_path):
    rows = _rows(layout / "retain_perturbed.json")
    (tmp_path / "retain_perturbed.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    assert load_tofu(data_dir=tmp_path)["retain_perturbed"].to_list() == \
        load_tofu(["retain_perturbed"], data_dir=layout)["retain_perturbed"].to_list()


# ----------------------------------------------------------------------------------------------
# errors: config, file, row and field; offline at once


def test_a_bad_row_names_config_file_row_and_field(layout, tmp_path):
    rows = _rows(layout / "retain90.json")
    del rows[3]["answer"]
    (tmp_path / "retain90.json").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(InputError, match=r"retain90: .*retain90\.json row 3: field 'answer' is missing") as err:
        load_benchmark("tofu", splits=["retain90"], data_dir=tmp_path)
    assert "\n" not in str(err.value)

    rows = _rows(layout / "retain_perturbed.json")
    rows[1]["perturbed_answer"] = []
    (tmp_path / "retain_perturbed.json").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(InputError, match=r"retain_perturbed: .*retain_perturbed\.json row 1: field 'perturbed_answer'"):
        load_tofu(["retain_perturbed"], data_dir=tmp_path)

    (tmp_path / "forget10.json").write_text('{"question": "Q?", "answer": "A."}\n{"question": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"forget10: .*forget10\.json row 1 \(line 2\): not valid JSON"):
        load_tofu(["forget10"], data_dir=tmp_path)


def test_a_missing_config_names_folder_config_and_holdings(layout, tmp_path):
    folder = _copy(layout, tmp_path, ["full", "retain90"])
    with pytest.raises(InputError, match=r"forget01_perturbed: .* has no forget01_perturbed\.json "
                                         r"\(it holds \['full', 'retain90'\]\)"):
        load_benchmark("tofu", splits=["full", "forget01_perturbed"], data_dir=folder)
    with pytest.raises(InputError, match=r"unknown TOFU config\(s\) \['holdout'\] \('holdout' -> holdout01/05/10\)"):
        load_tofu(["holdout"], data_dir=folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no config file"):
        load_tofu(data_dir=empty)


def _no_hub_cache(monkeypatch, tmp_path):
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_offline_without_data_dir_fails_at_once_in_one_line(monkeypatch, tmp_path):
    _no_hub_cache(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(InputError) as err:
        load_benchmark("tofu", splits=["full", "forget10"])
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert "\n" not in message and "data_dir" in message and "--data-dir" in message and "'full'" in message


def test_no_network_fails_at_once_in_one_line(monkeypatch, tmp_path):
    from huggingface_hub import constants

    _no_hub_cache(monkeypatch, tmp_path)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    start = time.perf_counter()
    with pytest.raises(InputError, match="cannot be reached.*data_dir") as err:
        load_benchmark("tofu", splits=["retain_perturbed"])
    assert time.perf_counter() - start < 2.0 and "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------
# what evaluation and training read


def test_eval_splits_by_layout(layout):
    synthetic = load_benchmark(splits=["full", "forget10", "retain90", "holdout", "world_facts"],
                               config=SMALL)
    assert not is_hub_layout(synthetic)
    assert eval_splits(synthetic, "forget10") == {"forget": "forget10", "retain": "retain90",
                                                  "world_facts": "world_facts", "holdout": "holdout"}
    hub = load_tofu(["full", "forget10", "retain90"], data_dir=layout)  # training configs only
    assert is_hub_layout(hub)  # by its rows
    assert eval_splits(hub, "forget05") == {
        "forget": "forget05_perturbed", "retain": "retain_perturbed", "real_authors": "real_authors_perturbed",
        "world_facts": "world_facts_perturbed", "holdout": "holdout05"}
    assert eval_splits(hub, "forget05_perturbed") == eval_splits(hub, "forget05")


def test_models_train_on_full_and_retain_alone_on_tofu(layout):
    from satimp_lab.models.build import get_tier
    from satimp_lab.models.cache import model_key

    bench = load_tofu(["full", "forget10", "retain90"], data_dir=layout)  # no world_facts
    tier = get_tier("micro")
    target = model_key(bench, "target", "forget10", tier)
    retain = model_key(bench, "retain", "forget10", tier)
    assert target["split"] == "full" and target["rows"] == {"qa": bench["full"].to_list()}
    assert retain["split"] == "retain90" and retain["rows"] == {"qa": bench["retain90"].to_list()}
    assert target["texts"] and target["key"] != retain["key"]
    with pytest.raises(InputError, match="no split 'retain95'"):
        model_key(bench, "retain", "forget05", tier)
