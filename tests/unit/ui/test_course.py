"""Self-checks of the course notebook (satimp_lab.ui.exercises, example_answer, multiple_choice) and its
reference solutions (satimp_lab.ui.course): right answers pass, typical wrong answers fail with a
message that names the failing input and the likely mistake, stubs are 'not attempted'."""

import math

import numpy as np
import pytest
import torch

from satimp_lab.ui import course, example_answer, exercises, multiple_choice


def _p(logp):
    return logp.detach().exp()


# ----------------------------------------------------------------------------- SimImp


def simimp_right(logp, mask, beta):
    return torch.where(mask, (1 - _p(logp)).pow(beta), 0.0)


def simimp_times_mask(logp, mask, beta):         # w * mask is fine too
    return (1 - _p(logp)).pow(beta) * mask


def simimp_numpy(logp, mask, beta):              # numpy answers are accepted
    p = np.exp(logp.detach().numpy())
    return np.where(mask.numpy(), (1 - p) ** beta, 0.0)


@pytest.mark.parametrize("fn", [simimp_right, simimp_times_mask, simimp_numpy])
def test_simimp_right_answers_pass(fn):
    r = exercises.check_simimp(fn)
    assert r and r.status == "correct" and str(r).startswith("✓")


def test_simimp_stubs_are_not_attempted():
    def raises(logp, mask, beta):
        raise NotImplementedError

    def dots(logp, mask, beta):
        ...

    for fn in (raises, dots):
        r = exercises.check_simimp(fn)
        assert not r and r.status == "not attempted" and str(r).startswith("○")


@pytest.mark.parametrize("fn,needle", [
    (lambda logp, mask, b: (1 - _p(logp)).pow(b), "forgot the mask"),
    (lambda logp, mask, b: torch.where(mask, _p(logp).pow(b), 0.0), "SimSat"),
    (lambda logp, mask, b: torch.where(mask, (1 - logp.detach()).pow(b), 0.0), "log-likelihood"),
    (lambda logp, mask, b: torch.where(mask, 1 - _p(logp).pow(b), 0.0), "exponent applies to (1 - p)"),
    (lambda logp, mask, b: torch.where(mask, (1 - logp.exp()).pow(b), 0.0), "requires_grad"),
    (lambda logp, mask, b: (1 - _p(logp)).pow(b)[0], "shape"),
    (lambda logp, mask, b: torch.where(mask, 1.0, 0.0), "wrong on"),
    (lambda logp, mask, b: torch.where(mask.float(), 1.0, 0.0), "RuntimeError"),
])
def test_simimp_wrong_answers_fail_helpfully(fn, needle):
    r = exercises.check_simimp(fn)
    assert r.status == "wrong" and str(r).startswith("✗")
    assert needle in r.message


def test_failure_message_names_the_first_failing_input():
    r = exercises.check_simimp(lambda logp, mask, b: (1 - _p(logp)).pow(b))   # no mask
    assert "padded batch" in r.message and "mask = False" in r.message
    assert "should be 0" in r.message and "beta=" in r.message


def test_errors_in_the_answer_are_reported_not_raised():
    r = exercises.check_simimp(lambda logp, mask, b: logp.undefined_attribute)
    assert r.status == "wrong" and "AttributeError" in r.message
    assert exercises.check_simimp("not a function").status == "wrong"


# ----------------------------------------------------------------------------- SatImp


def satimp_right(logp, mask, beta_sat, beta_imp):
    p = _p(logp)
    return torch.where(mask, p.pow(beta_sat) * (1 - p).pow(beta_imp), 0.0)


def test_satimp_right_answer_passes():
    assert exercises.check_satimp(satimp_right)
    from satimp_lab.unlearning.weighting import satimp
    assert exercises.check_satimp(satimp)             # the reference itself


@pytest.mark.parametrize("fn,needle", [
    (lambda logp, mask, bs, bi: satimp_right(logp, mask, bi, bs), "swapped"),
    (lambda logp, mask, bs, bi: _p(logp).pow(bs) * (1 - _p(logp)).pow(bi), "forgot the mask"),
    (lambda logp, mask, bs, bi: torch.where(mask, _p(logp).pow(bs), 0.0), "only the saturation factor"),
    (lambda logp, mask, bs, bi: torch.where(mask, (1 - _p(logp)).pow(bi), 0.0), "only the importance factor"),
    (lambda logp, mask, bs, bi: torch.where(mask, _p(logp).pow(bs) + (1 - _p(logp)).pow(bi), 0.0), "multiplies"),
])
def test_satimp_typical_mistakes(fn, needle):
    r = exercises.check_satimp(fn)
    assert r.status == "wrong" and needle in r.message


def test_satimp_edge_p0_p1():
    # right everywhere except p = 1 with beta_imp > 0: the edge case catches it
    def wrong_at_one(logp, mask, bs, bi):
        w = satimp_right(logp, mask, bs, bi)
        return torch.where(logp.detach() == 0, torch.ones_like(w), w)

    r = exercises.check_satimp(wrong_at_one)
    assert r.status == "wrong" and "edge likelihoods" in r.message and "logp = 0" in r.message


# ----------------------------------------------------------------------------- other exercises


def test_peak():
    assert exercises.check_peak(lambda bs, bi: bs / (bs + bi))

    def numeric(bs, bi):
        p = np.linspace(0, 1, 20001)
        return p[np.argmax(p ** bs * (1 - p) ** bi)]

    assert exercises.check_peak(numeric)
    swapped = exercises.check_peak(lambda bs, bi: bi / (bs + bi))
    assert swapped.status == "wrong" and "swapped" in swapped.message and "β_sat = 5" in swapped.message
    height = exercises.check_peak(lambda bs, bi: (bs / (bs + bi)) ** bs * (bi / (bs + bi)) ** bi)
    assert height.status == "wrong" and "height" in height.message
    assert exercises.check_peak(lambda bs, bi: ...).status == "not attempted"


def test_logit_gradient():
    assert exercises.check_logit_gradient(lambda p: -(1 - p))
    assert exercises.check_logit_gradient(lambda p: p - 1)
    r = exercises.check_logit_gradient(lambda p: 1 - p)
    assert r.status == "wrong" and "sign" in r.message
    r = exercises.check_logit_gradient(lambda p: -p)
    assert r.status == "wrong" and "wrong* class" in r.message

    def stub(p):
        raise NotImplementedError

    assert exercises.check_logit_gradient(stub).status == "not attempted"


def test_top_token():
    frame = example_answer.example_weights()
    col = [c for c in frame.columns if c.startswith("satimp")][0]
    best = int(frame[col].to_numpy().argmax())
    token = frame["token"][best].strip()
    assert example_answer.check_top_token(token) and example_answer.check_top_token(best)
    assert example_answer.check_top_token(token.upper())
    lowest = frame["token"][int(frame["p"].to_numpy().argmin())].strip()
    r = example_answer.check_top_token(lowest)
    assert r.status == "wrong" and "already (nearly) forgotten" in r.message
    highest = frame["token"][int(frame["p"].to_numpy().argmax())].strip()
    r = example_answer.check_top_token(highest)
    assert r.status == "wrong" and "above the peak" in r.message
    assert example_answer.check_top_token(...).status == "not attempted"
    assert "one of the tokens" in example_answer.check_top_token("zebra").message
    assert example_answer.check_top_token(99).status == "wrong"


def test_example_weights_come_from_the_library():
    frame = example_answer.example_weights(beta_sat=2.0, beta_imp=1.0, beta=3.0)
    p = frame["p"].to_numpy()
    np.testing.assert_allclose(frame["satimp(β_sat=2, β_imp=1)"], p ** 2 * (1 - p))
    np.testing.assert_allclose(frame["simsat(β_sat=3)"], p ** 3)
    np.testing.assert_allclose(frame["ga"], 1.0)
    fig = example_answer.example_weights_figure()
    assert len(fig.data) == 4 and fig.layout.xaxis.title.text


def test_example_weight_summary_reads_the_weights():
    """The course's sentences about where each scheme puts its weight come from this table: it must
    follow the weights (other exponents, other rows)."""
    frame = example_answer.example_weights()
    p = frame["p"].to_numpy()
    table = example_answer.example_weight_summary().set_index("scheme")
    forgotten, remembered = (f"share on p < {example_answer.NEARLY_FORGOTTEN_BELOW:g}",
                             f"share on p >= {example_answer.WELL_REMEMBERED_FROM:g}")
    certain = [c for c in table.columns if c.endswith("/ largest w")][0]
    assert table.loc["ga", "largest weight on"] == "every token alike" and np.isnan(table.loc["ga", "its p"])
    assert table.loc["ga", forgotten] == pytest.approx((p < example_answer.NEARLY_FORGOTTEN_BELOW).mean())
    assert table.loc["ga", remembered] == pytest.approx((p >= example_answer.WELL_REMEMBERED_FROM).mean())
    simimp, simsat = table.loc["simimp(β_imp=1)"], table.loc["simsat(β_sat=1)"]
    assert simimp["its p"] == p.min() and simsat["its p"] == p.max()  # (1-p) and p are monotone
    assert simimp[forgotten] > table.loc["ga", forgotten] > simsat[forgotten]
    satimp = table.loc[[i for i in table.index if i.startswith("satimp")][0]]
    w = frame[satimp.name].to_numpy()
    assert satimp[certain] == pytest.approx(w[p.argmax()] / w.max()) and satimp[certain] < 1
    # no importance factor: nothing trims the most certain token
    no_importance = example_answer.example_weight_summary(beta_imp=0.0).set_index("scheme")
    assert no_importance.iloc[-1][certain] == pytest.approx(1.0)


def test_static_example_figure_draws_the_example_weights():
    fig, frame = example_answer.static_example_weights_figure(), example_answer.example_weights()
    lines = {l.get_label(): l for l in fig.axes[0].lines}
    schemes = [c for c in frame.columns if c not in ("position", "token", "p")]
    assert list(lines) == schemes
    for scheme in schemes:
        np.testing.assert_allclose(lines[scheme].get_ydata(), frame[scheme])


def test_multiple_choice():
    for qid, q in multiple_choice.QUESTIONS.items():
        right = multiple_choice.check_choice(qid, q["answer"])
        assert right and "is right" in right.message
        assert multiple_choice.check_choice(qid, f"({q['answer'].upper()})")
        assert multiple_choice.check_choice(qid, q["options"][q["answer"]])          # the option's text
        for letter in q["options"]:
            if letter != q["answer"]:
                wrong = multiple_choice.check_choice(qid, letter)
                assert wrong.status == "wrong" and q["feedback"][letter] in wrong.message
        assert multiple_choice.check_choice(qid, ...).status == "not attempted"
        assert multiple_choice.check_choice(qid, "").status == "not attempted"
        assert "not one of the options" in multiple_choice.check_choice(qid, "zzz").message
    assert multiple_choice.check_choice("granularity", "instance")
    assert multiple_choice.check_choice("granularity", "batch").status == "wrong"
    with pytest.raises(ValueError, match="unknown question"):
        multiple_choice.check_choice("nope", "a")
    assert "(c)" in multiple_choice.question("granularity").data


def test_result_display_and_progress():
    r = exercises.CheckResult("x", "correct", "fine")
    assert bool(r) and "✓ x: fine" == str(r) and "✓" in r._repr_html_()
    assert not exercises.CheckResult("x", "wrong", "no")
    with pytest.raises(ValueError):
        exercises.CheckResult("x", "maybe", "")
    table = course.progress([r, exercises.CheckResult("y", "not attempted", "")])
    assert list(table["status"]) == ["correct", "not attempted"]


# ----------------------------------------------------------------------------- reference solutions


def test_every_reference_solution_passes_its_checker():
    table = course.check_reference_solutions()
    assert table["reference passes"].all(), table
    assert sorted(set(table["exercise"])) == sorted(course.SOLUTIONS) and len(table) == 7


def test_a_wrong_reference_solution_would_be_caught(monkeypatch):
    broken = {**course.SOLUTIONS[5],
              "code": "def peak(beta_sat, beta_imp):\n    return beta_imp / (beta_sat + beta_imp)\n"}
    monkeypatch.setitem(course.SOLUTIONS, 5, broken)
    table = course.check_reference_solutions()
    assert list(table.loc[~table["reference passes"], "exercise"]) == [5]


def test_unknown_solution_number():
    with pytest.raises(ValueError, match="no exercise 9"):
        course.solution_code(9)
