"""Notebook 11's views of one article: facts highlighted, changed tokens marked, the weights along a
passage the library's own (weight_curves), and the traced rows of one example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from satimp_lab.ui import muse_view
from satimp_lab.unlearning.weight_curves import token_weights_on_grid


def test_key_facts_are_marked_with_their_slot_and_the_text_is_escaped():
    text = "On 6 May, <Ann> won."
    out = muse_view.key_facts_html(text, [[3, 8], [10, 15]], ["date", "person"])
    assert out.count("<mark") == 2 and 'title="date"' in out and 'title="person"' in out
    assert "&lt;Ann&gt;" in out and "<Ann>" not in out
    assert out.index("6 May") < out.index("&lt;Ann&gt;") < out.index(" won.")


@pytest.mark.parametrize("spans", [[[0, 5], [3, 8]], [[5, 3]], [[0, 99]]])
def test_bad_key_spans_raise(spans):
    with pytest.raises(ValueError, match="key span"):
        muse_view.key_facts_html("On 6 May, Ann won.", spans)


def test_changed_tokens_marks_insertions_and_replacements_only():
    reference = ["a", "b", "c", "d"]
    assert muse_view.changed_tokens(reference, reference) == [False] * 4
    assert muse_view.changed_tokens(["a", "x", "c", "d"], reference) == [False, True, False, False]
    assert muse_view.changed_tokens(["a", "c", "d", "e"], reference) == [False, False, False, True]
    assert muse_view.changed_tokens([], reference) == []


def test_diff_html_counts_changed_and_missing_tokens():
    out = muse_view.diff_html(["a", "x", "<c>"], ["a", "b", "<c>", "d"])
    assert out.count("#f4a3a3") == 1 and "&lt;c&gt;" in out
    assert "[1 of 3 tokens changed, 2 of the reference's missing]" in out


def test_first_seen_takes_the_first_step_of_one_example_in_position_order():
    trace = pd.DataFrame({"step": [3, 1, 1, 0], "example_id": [7, 7, 7, 8], "position": [0, 1, 0, 0],
                          "weight": [0.1, 0.2, 0.3, 0.4]})
    rows = muse_view.first_seen(trace, 7)
    assert rows["step"].tolist() == [1, 1] and rows["position"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="example 9"):
        muse_view.first_seen(trace, 9)


def test_passage_weights_are_the_training_weights():
    p = np.array([0.0, 0.2, 0.5, 0.9, 1.0])
    w = muse_view.passage_weights(p, beta_sat=5.0, beta_imp=0.1)
    assert set(w) == set(muse_view.PASSAGE_SCHEMES)
    np.testing.assert_allclose(w["satimp"], token_weights_on_grid("satimp", p, 5.0, 0.1))
    np.testing.assert_allclose(w["simsat"], p ** 5.0, atol=1e-7)
    np.testing.assert_allclose(w["simimp"], (1 - p) ** 0.1, atol=1e-6)
    read_only = p.copy()
    read_only.flags.writeable = False  # a DataFrame column's array: no torch warning, same weights
    np.testing.assert_allclose(muse_view.passage_weights(read_only, 5.0, 0.1)["satimp"], w["satimp"])


def test_passage_weights_figure_has_one_line_per_scheme_and_the_likelihoods():
    p = np.array([0.1, 0.5, 0.9])
    fig = muse_view.passage_weights_figure(["a", "b", "c"], p, 2.0, 1.0, key=[False, True, False], prefix=1)
    assert [t.meta for t in fig.data] == ["p", *muse_view.PASSAGE_SCHEMES]
    assert all(max(t.y) == pytest.approx(1.0) for t in fig.data[1:])  # normalised per scheme
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text and fig.layout.title.text
    with pytest.raises(ValueError, match="3 tokens but 2"):
        muse_view.passage_weights_figure(["a", "b", "c"], p[:2], 2.0, 1.0)


def test_the_widget_redraws_from_its_sliders():
    pytest.importorskip("ipywidgets")
    p = np.array([0.1, 0.5, 0.9])
    box = muse_view.passage_weights_widget(["a", "b", "c"], p, [False, True, False], beta_sat=1.0, beta_imp=0.0)
    s_sat, s_imp, norm = box.sliders
    norm.value = False
    s_sat.value = 2.0
    satimp = next(t for t in box.figure.data if t.meta == "satimp")
    np.testing.assert_allclose(satimp.y, token_weights_on_grid("satimp", p, 2.0, 0.0), atol=1e-7)
    assert "2" in box.figure.layout.title.text


# -- with a model: the target's reading of a passage, and a cached run's model made again ------------


@pytest.fixture(scope="module")
def muse_corpus():
    from satimp_lab.data.muse import MuseConfig, load_muse

    return load_muse(config=MuseConfig(n_forget=4, n_retain=8, n_holdout=4))


@pytest.fixture(scope="module")
def ga_run(micro_target, muse_corpus):
    from satimp_lab.unlearning.loop import unlearn
    from satimp_lab.unlearning.run import UnlearnConfig

    config = UnlearnConfig(method="ga", forget_split="forget", steps=2, batch_size=2, lr=1e-3, eval_every=1,
                           eval_max_examples=4)
    return unlearn(micro_target, muse_corpus, config, progress=False, family="muse")


def test_passage_reading_is_what_a_run_traces_at_step_0(micro_target, muse_corpus, ga_run):
    from satimp_lab.data.families import text_block_source

    trace = ga_run.trace_frame
    example = int(trace[trace.step == 0].example_id.iloc[0])
    doc_id, block = text_block_source(example)
    row = next(r for r in muse_corpus["forget"] if r["doc_id"] == doc_id)
    reading = muse_view.passage_reading(micro_target, row, block)
    traced = muse_view.first_seen(trace, example)
    assert reading["token_id"].tolist() == traced["token_id"].tolist()
    assert reading["is_key"].tolist() == traced["is_key"].tolist()
    np.testing.assert_allclose(reading["logp"], traced["logp"], atol=1e-5)
    with pytest.raises(ValueError, match="block 99"):
        muse_view.passage_reading(micro_target, row, 99)


def test_rerun_at_match_remakes_the_model_and_checks_its_readings(micro_target, muse_corpus, ga_run):
    from types import SimpleNamespace

    from satimp_lab.unlearning.plan import FULL

    lab = SimpleNamespace(target=micro_target, benchmark=muse_corpus, setting=SimpleNamespace(family="muse"))
    cached = SimpleNamespace(config=ga_run.config, plan=FULL, history=ga_run.history, describe=lambda: "run 'ga'")
    remade = muse_view.rerun_at_match(lab, cached)
    for name, value in ga_run.model.state_dict().items():
        assert np.array_equal(remade.model.state_dict()[name].numpy(), value.numpy()), name
    changed = ga_run.history.assign(forget_es=ga_run.history["forget_es"] + 0.01)
    with pytest.raises(RuntimeError, match="run 'ga'"):
        muse_view.rerun_at_match(lab, SimpleNamespace(**{**vars(cached), "history": changed}))
