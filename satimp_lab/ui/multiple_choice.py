"""The course's multiple-choice questions (notebook 09, exercises 4 and 6): :data:`QUESTIONS`,
shown with :func:`question` and checked with :func:`check_choice`, whose per-option feedback
explains why a wrong option is wrong. A check returns a :class:`~satimp_lab.ui.exercises.CheckResult`
like every self-check of the course.
"""

from __future__ import annotations

import re

from .exercises import CheckResult

__all__ = [
    "QUESTIONS",
    "question",
    "check_choice",
]


QUESTIONS = {
    "upweighted": {
        "question": "Compared with plain GA (weight 1 on every token), on which forget tokens does SatImp with its "
                    "recommended exponents (a large β_sat, a small β_imp) put its **largest** weights?",
        "options": {
            "a": "tokens the model already gives a low likelihood (p near 0)",
            "b": "tokens with a high but not certain likelihood (p just below the peak p*)",
            "c": "tokens the model predicts with certainty (p = 1)",
            "d": "every token equally: the weights only rescale the learning rate",
        },
        "answer": "b",
        "feedback": {
            "a": "those are the tokens the saturation factor p^β_sat switches off: they are already unlearned, "
                 "and plain GA pushes on them hardest anyway (its logit push is 1 - p).",
            "b": "the weight p^β_sat (1 - p)^β_imp peaks at p* = β_sat/(β_sat + β_imp), close to 1: SatImp "
                 "concentrates on tokens that are still well remembered but not yet fully certain.",
            "c": "at p = 1 the importance factor (1 - p)^β_imp is exactly 0 (for β_imp > 0).",
            "d": "that describes batch-level weighting; SatImp's weight differs from token to token.",
        },
    },
    "granularity": {
        "question": "Which granularity gives every answer token of a sequence **one shared weight**, computed "
                    "from that sequence alone (so two sequences of a batch can get different weights)?",
        "options": {"a": "token", "b": "group", "c": "instance", "d": "batch"},
        "answer": "c",
        "aliases": {"instance-level": "c", "instance_norm": "c", "sequence": "c", "instance level": "c"},
        "feedback": {
            "a": "at token granularity every token keeps its own weight w(p_t).",
            "b": "group granularity averages weights within rank buckets of G similar tokens; only when G is at "
                 "least the answer length does the whole sequence share one weight (the mean of its token "
                 "weights).",
            "c": "the instance weight comes from the sequence likelihood (the product of its token "
                 "likelihoods, or their geometric mean in the length-normalised variant) and is broadcast "
                 "to every token of that sequence.",
            "d": "batch granularity shares one weight across all sequences of the micro-batch, so it is not "
                 "computed from the sequence alone.",
        },
    },
}
"""Multiple-choice questions: text, options (letter -> text), the right letter, accepted aliases and
feedback per option."""


def question(qid: str):
    """The question and its options as Markdown (for display in the notebook)."""
    from IPython.display import Markdown

    q = _question(qid)
    lines = [q["question"], ""] + [f"- **({k})** {v}" for k, v in q["options"].items()]
    return Markdown("\n".join(lines))


def _question(qid: str) -> dict:
    if qid not in QUESTIONS:
        raise ValueError(f"unknown question {qid!r}; valid: {sorted(QUESTIONS)}")
    return QUESTIONS[qid]


def check_choice(qid: str, answer) -> CheckResult:
    """Check a multiple-choice answer: the option letter ("c", "(c)") or the option's text/keyword."""
    q = _question(qid)
    exercise = f"question '{qid}'"
    if answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip()):
        return CheckResult(exercise, "not attempted", "not attempted yet: set `answer` to one of the letters "
                                                       f"{', '.join(q['options'])} and run the cell again.")
    text = str(answer).strip().lower()
    as_letter = re.fullmatch(r"\(?\s*([a-z])\s*\)?", text)
    by_text = {v.lower(): k for k, v in q["options"].items()}
    if as_letter and as_letter.group(1) in q["options"]:
        letter = as_letter.group(1)
    else:
        letter = by_text.get(text, q.get("aliases", {}).get(text))
    if letter is None:
        return CheckResult(exercise, "wrong", f"{answer!r} is not one of the options "
                                              f"({', '.join(q['options'])}); answer with a letter.")
    status = "correct" if letter == q["answer"] else "wrong"
    lead = f"({letter}) is right" if status == "correct" else f"({letter}) is not it"
    return CheckResult(exercise, status, f"{lead}: {q['feedback'][letter]}")
