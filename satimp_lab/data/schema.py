"""The row schema every benchmark split has, synthetic or real TOFU (docs/methods.md#real-tofu):
its fields, the check of one row, the forget/retain split names, and a list of rows as a
``datasets.Dataset``. The bottom of ``data/``: ``benchmark`` (our synthetic authors) and ``tofu``
(the real TOFU, mapped onto this schema) both build on it.

Schema of every row:
    question, answer, paraphrased_question, paraphrased_answer,
    perturbed_answer (list[str], wrong answers in the answer's template),
    author_id (int, -1 for world facts), key_spans (list of [start, end) char spans in ``answer``),
    fact_type (str), qa_id (int)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import datasets

from ..errors import InputError

FORGET_PERCENTS = (1, 5, 10)
"""The forget splits' shares of the authors: forget01, forget05, forget10 (TOFU's)."""
FIELDS = ("question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer",
          "author_id", "key_spans", "fact_type", "qa_id")
"""Every row's fields, in this order."""


def row_problem(row: dict) -> str | None:
    """The first schema violation of a benchmark row, as ``"field 'x': ..."``; None if valid.

    Checked: ``question``, ``answer`` and the paraphrases are non-empty strings;
    ``perturbed_answer`` is a list of strings; ``author_id`` and ``qa_id`` are integers (not
    floats or strings); every key span is a pair of integers ``[start, end)`` with
    0 <= start < end <= len(answer)."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    for f in ("question", "answer", "paraphrased_question", "paraphrased_answer"):
        if f in row and not (isinstance(row[f], str) and row[f].strip()):
            return f"field {f!r}: must be a non-empty string, got {row[f]!r}"
    answers = row.get("perturbed_answer", [])
    if not (isinstance(answers, list) and all(isinstance(a, str) and a.strip() for a in answers)):
        return f"field 'perturbed_answer': must be a list of non-empty strings, got {answers!r}"
    for f in ("author_id", "qa_id"):
        if f in row and not is_int(row[f]):
            return f"field {f!r}: must be an integer, got {row[f]!r}"
    spans = row.get("key_spans", [])
    if not isinstance(spans, list):
        return f"field 'key_spans': must be a list of [start, end) pairs, got {spans!r}"
    n = len(row.get("answer", ""))
    for span in spans:
        if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(map(is_int, span))
                and 0 <= span[0] < span[1] <= n):
            return (f"field 'key_spans': span {span!r} is not a [start, end) pair with "
                    f"0 <= start < end <= {n} (the answer's length)")
    return None


def retain_split_for(forget_split: str) -> str:
    """``forget10`` -> ``retain90``; raises on a name that is not a forget split."""
    if not (forget_split.startswith("forget") and forget_split[6:].isdigit()
            and int(forget_split[6:]) in FORGET_PERCENTS):
        raise InputError(f"unknown forget split {forget_split!r}; valid: "
                         f"{[f'forget{p:02d}' for p in FORGET_PERCENTS]}")
    return f"retain{100 - int(forget_split[6:]):02d}"


def to_dataset(rows: list[dict], split: str) -> datasets.Dataset:
    """``rows`` (dicts with every field of :data:`FIELDS`) as a ``datasets.Dataset`` with fixed
    feature types; raises ``ValueError`` naming ``split`` when it is empty."""
    if not rows:
        raise ValueError(f"split {split!r} is empty")
    features = datasets.Features({
        "question": datasets.Value("string"), "answer": datasets.Value("string"),
        "paraphrased_question": datasets.Value("string"), "paraphrased_answer": datasets.Value("string"),
        "perturbed_answer": datasets.Sequence(datasets.Value("string")),
        "author_id": datasets.Value("int64"),
        "key_spans": datasets.Sequence(datasets.Sequence(datasets.Value("int64"))),
        "fact_type": datasets.Value("string"), "qa_id": datasets.Value("int64"),
    })
    return datasets.Dataset.from_list([{f: row[f] for f in FIELDS} for row in rows], features=features)


def read_jsonl(path: Path, required: Sequence[str], check: Callable[[dict], str | None]) -> list[dict]:
    """The rows of the JSON Lines file ``path`` (blank lines skipped), each a JSON object holding
    every field of ``required`` and passing ``check(row)`` (a problem's text, or None). Raises
    :class:`~satimp_lab.errors.InputError` naming the file and line: invalid JSON, not an object,
    missing fields (named), or ``check``'s problem. The caller checks that the file exists."""
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{line_no}: a row must be a JSON object, got {row!r}")
        missing = [f for f in required if f not in row]
        if missing:
            raise InputError(f"{path}:{line_no}: row is missing field(s) {missing}; "
                             f"every row needs {list(required)}")
        problem = check(row)
        if problem:
            raise InputError(f"{path}:{line_no}: {problem}")
        rows.append(row)
    return rows
