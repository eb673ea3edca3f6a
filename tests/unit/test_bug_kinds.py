"""Three checks that no other test pinned down (issue 23, "Tests where bugs still pass"), each
against a value worked out by hand, never against ``docs/results``:

* ``forget_quality`` pairs the two samples by ``qa_id`` where the unlearned model's ids are NOT
  the first entries of the retain side (pairing by position gives another sample);
* key spans at the answer's end at read time: ``[0, len(answer)]`` is read, ``[0, len(answer) + 1]``
  is refused with an ``InputError`` naming the file and the line;
* P(improvement) counts a tie as one half.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from satimp_lab.data.benchmark import (
    BenchmarkConfig,
    load_benchmark,
    read_benchmark,
    write_benchmark,
)
from satimp_lab.errors import InputError
from satimp_lab.evaluation import tofu
from satimp_lab.evaluation.reading import MetricResult
from satimp_lab.studies import verdicts as V

# ----------------------------------------------------------------------------------------------
# forget quality: pairs by qa_id, wherever the ids sit on the retain side


def test_forget_quality_selects_the_retain_rows_by_qa_id_not_by_position():
    """The retain side holds two other rows first, then the unlearned side's rows in another
    order: selected by id, the samples are identical (p = 1); the first two retain values
    (pairing by position) are far off and would give p = 1/3 (ks_2samp of [0.5, 0.7] and
    [40, 50]: statistic 1 on 2 + 2 values)."""
    unl = {10: 0.5, 11: 0.7}
    retain = {90: 40.0, 91: 50.0, 11: 0.7, 10: 0.5}
    fq = tofu.forget_quality(unl, retain)
    assert fq.agg_value == 1.0 and fq.extra["ks_statistic"] == 0.0
    assert fq.extra["n_unlearned"] == fq.extra["n_retain"] == 2
    # positional pairing would have compared these: p = 1/3, not 1
    assert stats.ks_2samp(np.log([0.5, 0.7]), np.log([40.0, 50.0])).pvalue == pytest.approx(1 / 3)


def test_forget_quality_of_a_truth_ratio_result_against_a_shuffled_larger_retain_side():
    """A truth_ratio result (log geometric form) against a retain result holding more ids, in
    another order, with the shared ids last: the KS test runs on the unlearned side's ids only,
    each paired with its own retain value (worked by hand: 3 vs 3 values, one retain value below
    all unlearned ones -> statistic 1/3, p = 1)."""
    logs_unl = {3: -2.0, 1: -1.0, 2: 0.5}
    logs_ret = {7: 9.0, 8: 9.5, 9: 10.0, 2: 0.4, 3: -2.5, 1: -1.0}
    unl = MetricResult("truth_ratio", 0.0, {}, {"log_geometric_by_index": logs_unl})
    ret = MetricResult("truth_ratio", 0.0, {}, {"log_geometric_by_index": logs_ret})
    fq = tofu.forget_quality(unl, ret)
    # by id: unlearned [-2, -1, 0.5] vs retain [-2.5, -1, 0.4]
    assert fq.extra["n_retain"] == 3
    assert fq.extra["ks_statistic"] == pytest.approx(1 / 3)
    assert fq.agg_value == pytest.approx(stats.ks_2samp([-2.0, -1.0, 0.5], [-2.5, -1.0, 0.4]).pvalue)
    assert fq.agg_value == pytest.approx(1.0)
    # by position (the first three retain entries, 9 to 10) the samples would not overlap at all
    assert stats.ks_2samp([-2.0, -1.0, 0.5], [9.0, 9.5, 10.0]).pvalue == pytest.approx(0.1)
    # the pairing itself: the retain values follow the unlearned side's ids, in its order
    a, b = tofu.paired_samples(logs_unl, logs_ret, "a", "b")
    assert a.tolist() == [-2.0, -1.0, 0.5] and b.tolist() == [-2.5, -1.0, 0.4]


# ----------------------------------------------------------------------------------------------
# key spans at the answer's end, checked when a benchmark file is read


LINE = 3
"""The row edited in full.jsonl: not the first, so a line number that is always 1 is caught."""


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("bench"),
                           BenchmarkConfig(n_authors=10, qa_per_author=1, n_holdout_authors=1, n_world_facts=2))


def _with_span(src, dst, span_of, answer: str | None = None):
    """A copy of ``src`` whose full.jsonl row at :data:`LINE` has key spans ``span_of(answer)``."""
    import shutil

    shutil.copytree(src, dst)
    lines = (dst / "full.jsonl").read_text().splitlines()
    row = json.loads(lines[LINE - 1])
    if answer is not None:
        row["answer"] = answer
    row["key_spans"] = span_of(row["answer"])
    lines[LINE - 1] = json.dumps(row, sort_keys=True)
    (dst / "full.jsonl").write_text("\n".join(lines) + "\n")
    return dst, row


@pytest.mark.parametrize("answer", [None, "Zoë Ångström wrote «Ēos»."], ids=["ascii", "non-ascii"])
def test_a_key_span_ending_at_the_answers_end_is_read(written, tmp_path, answer):
    """``[0, len(answer)]`` (characters, not bytes) and ``[len - 1, len]`` are spans of the answer."""
    data, row = _with_span(written, tmp_path / "ok", lambda a: [[0, len(a)], [len(a) - 1, len(a)]], answer)
    bench = read_benchmark(data)
    read = next(r for r in bench["full"] if r["qa_id"] == row["qa_id"])
    n = len(row["answer"])
    assert read["key_spans"] == [[0, n], [n - 1, n]]
    assert read["answer"][0:n] == row["answer"]
    loaded = load_benchmark(data_dir=data, splits=["full"])["full"]
    assert next(r for r in loaded if r["qa_id"] == row["qa_id"])["key_spans"] == [[0, n], [n - 1, n]]


@pytest.mark.parametrize("answer", [None, "Zoë Ångström wrote «Ēos»."], ids=["ascii", "non-ascii"])
@pytest.mark.parametrize("span_of", [lambda a: [[0, len(a) + 1]], lambda a: [[len(a), len(a) + 1]],
                                     lambda a: [[0, 1], [len(a) - 1, len(a) + 1]]],
                         ids=["whole+1", "past-the-end", "second-span"])
def test_a_key_span_one_past_the_answers_end_is_refused_with_file_and_line(written, tmp_path, span_of, answer):
    data, row = _with_span(written, tmp_path / "bad", span_of, answer)
    for read in (lambda: read_benchmark(data), lambda: load_benchmark(data_dir=data, splits=["full"])):
        with pytest.raises(InputError) as info:
            read()
        message = str(info.value)
        assert f"{data / 'full.jsonl'}:{LINE}:" in message, message
        assert "'key_spans'" in message and str(len(row["answer"])) in message and "\n" not in message


# ----------------------------------------------------------------------------------------------
# P(improvement): a tie counts one half


def _table(values_by_target: dict[int, list[tuple[float, float]]]) -> pd.DataFrame:
    """Runs of A and B (matched forget ES, lower is better) on (target, seed) units."""
    rows = []
    for t, pairs in values_by_target.items():
        for s, (a, b) in enumerate(pairs):
            rows += [{"target_seed": t, "seed": s, "label": "A", "matched_forget": a},
                     {"target_seed": t, "seed": s, "label": "B", "matched_forget": b}]
    return pd.DataFrame(rows)


def test_p_improvement_counts_a_tie_as_one_half():
    """Target 0: A better, tie, A worse, tie -> (1 + 1/2 + 0 + 1/2) / 4 = 1/2.
    Target 1: A better, A better, tie -> (1 + 1 + 1/2) / 3 = 5/6.
    Mean over targets: (1/2 + 5/6) / 2 = 2/3 (a tie counted as a loss: (1/4 + 2/3) / 2 = 11/24;
    pooled over units instead of per target: 4.5 / 7)."""
    table = _table({0: [(0.2, 0.3), (0.4, 0.4), (0.5, 0.3), (0.25, 0.25)],
                    1: [(0.1, 0.6), (0.3, 0.35), (0.45, 0.45)]})
    diffs = V.paired_differences(table, "A", "B")
    assert (diffs["diff"] == 0).sum() == 3
    assert V.p_improvement(diffs) == pytest.approx(2 / 3, abs=1e-12)
    assert V.compare(table, "A", "B", n_resamples=200).p_improvement == pytest.approx(2 / 3, abs=1e-12)
    # the other way round: every win a loss, every tie still a half
    assert V.compare(table, "B", "A", n_resamples=200).p_improvement == pytest.approx(1 / 3, abs=1e-12)


def test_p_improvement_of_ties_alone_is_one_half():
    table = _table({0: [(0.3, 0.3), (0.2, 0.2)], 1: [(0.5, 0.5)]})
    assert V.p_improvement(V.paired_differences(table, "A", "B")) == 0.5
    higher = V.paired_differences(table, "A", "B", lower_is_better=False)
    assert V.p_improvement(higher) == 0.5
    assert math.isnan(V.p_improvement(V.paired_differences(table, "A", "B").iloc[:0]))
