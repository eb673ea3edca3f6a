"""The folder of a generated corpus, as the MUSE-shaped (``data.muse``) and the WMDP-shaped
(``data.wmdp``) corpora write and read it: one JSON Lines file per stored split (``<split>.jsonl``,
one row a line, sorted keys) and ``manifest.json`` (the corpus's ``format``, its ``config`` and the
``rows`` of each split, so a cut file is told from a short one), and the checks of a row's fields
that both corpora share (integers, ``[start, end)`` spans, key spans with one fact slot each).

Every reader error is an :class:`~satimp_lab.errors.InputError` naming the file, the line (where
there is one) and the field; ``what`` (``"MUSE corpus"``) and ``writer`` (``"write_muse"``) put the
corpus's own words into a missing file's message.

This module is on the data floor: it imports ``errors``, ``store``, ``data.schema`` and the
standard library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..store import atomic_write
from .schema import read_jsonl

__all__ = ["MANIFEST", "is_int", "span_problem", "key_spans_problem", "answer_fact_problem",
           "write_corpus_files", "read_manifest", "read_split_rows", "check_count", "link_questions"]

MANIFEST = "manifest.json"
"""The name of a corpus folder's manifest."""


def is_int(value) -> bool:
    """Whether ``value`` is an integer and not a bool (JSON's ``true`` reads as ``True``, an ``int``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def span_problem(span, n: int, what: str) -> str | None:
    """The problem of ``span`` as a ``[start, end)`` pair of integers with
    ``0 <= start < end <= n`` (``what`` names ``n`` in the message, e.g. "the text's length"); None
    if it is one."""
    if not (isinstance(span, list) and len(span) == 2 and all(map(is_int, span)) and 0 <= span[0] < span[1] <= n):
        return f"span {span!r} is not a [start, end) pair with 0 <= start < end <= {n} ({what})"
    return None


def key_spans_problem(row: Mapping, slot_kinds: Collection[str]) -> str | None:
    """The first problem of a text row's ``key_spans`` and ``key_facts``, as ``"field 'x': ..."``:
    ``key_spans`` a list of spans inside ``row["text"]`` (:func:`span_problem`), ``key_facts`` a
    list of as many fact slots, each one of ``slot_kinds``; None if both are valid."""
    spans, facts = row["key_spans"], row["key_facts"]
    if not isinstance(spans, list):
        return f"field 'key_spans': must be a list of [start, end) pairs, got {spans!r}"
    for span in spans:
        problem = span_problem(span, len(row["text"]), "the text's length")
        if problem:
            return f"field 'key_spans': {problem}"
    if not (isinstance(facts, list) and len(facts) == len(spans) and all(f in slot_kinds for f in facts)):
        return (f"field 'key_facts': must be a list of fact slots (one of {sorted(slot_kinds)}) "
                f"with one per key span ({len(spans)}), got {facts!r}")
    return None


def answer_fact_problem(row: Mapping, slot_kinds: Collection[str]) -> str | None:
    """The first problem of a question row's ``fact_type`` (one of ``slot_kinds``) and
    ``answer_span`` (a ``[start, end)`` pair of integers, ``0 <= start < end``; that it lies in its
    text is :func:`link_questions`'s check), as ``"field 'x': ..."``; None if both are valid."""
    if row["fact_type"] not in slot_kinds:
        return f"field 'fact_type': unknown fact slot {row['fact_type']!r}; valid: {sorted(slot_kinds)}"
    span = row["answer_span"]
    if not (isinstance(span, list) and len(span) == 2 and all(map(is_int, span)) and 0 <= span[0] < span[1]):
        return f"field 'answer_span': must be a [start, end) pair of integers, got {span!r}"
    return None


def write_corpus_files(data_dir: str | Path, corpus: Mapping, splits: Sequence[str], manifest: Mapping) -> Path:
    """Write the rows ``corpus[split]`` of every split of ``splits`` to ``data_dir/<split>.jsonl``
    (one JSON object a line, sorted keys), then ``data_dir/manifest.json``: ``manifest`` (the
    ``format`` and the ``config`` as plain data) with ``rows`` added, the row count of each split
    (indented, sorted keys). Every file is written with ``store.atomic_write``, the manifest last;
    the folder is created. Byte-identical for the same input. Returns ``data_dir`` as a Path.
    Raises what writing raises (``OSError``)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for split in splits:
        atomic_write(data_dir / f"{split}.jsonl",
                     "".join(json.dumps(row, sort_keys=True) + "\n" for row in corpus[split]))
    manifest = {**manifest, "rows": {split: len(corpus[split]) for split in splits}}
    atomic_write(data_dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return data_dir


def _missing(path: Path, what: str, writer: str, files: Sequence[str]) -> InputError:
    """The error for a missing corpus file ``path``: it names the file, the files of a corpus
    folder and the function that writes one."""
    return InputError(f"{what} file missing: {path} (a corpus folder has {list(files)}; {writer} writes one)")


def read_manifest(path: Path, *, fmt: str, config_type: type[Any], splits: Sequence[str], what: str,
                  writer: str) -> dict:
    """The manifest at ``path`` (:func:`write_corpus_files`), with its ``config`` made a
    ``config_type`` (a dataclass whose ``__post_init__`` raises ``InputError`` for a bad field).

    Raises :class:`~satimp_lab.errors.InputError` naming ``path``: a missing file (naming the
    folder's files, ``<split>.jsonl`` of ``splits`` and the manifest, and ``writer``), invalid JSON
    (with its line), not a JSON object, field ``format`` other than ``fmt``, field ``config`` not
    an object of ``config_type``'s fields or rejected by it (its message kept), field ``rows`` not
    an integer count for exactly the splits of ``splits``."""
    if not path.is_file():
        raise _missing(path, what, writer, [*(f"{s}.jsonl" for s in splits), MANIFEST])
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: must be a JSON object, got {manifest!r}")
    if manifest.get("format") != fmt:
        raise InputError(f"{path}: field 'format' must be {fmt!r}, got {manifest.get('format')!r}")
    config = manifest.get("config")
    names = [f.name for f in fields(config_type)]
    if not (isinstance(config, dict) and set(config) <= set(names)):
        raise InputError(f"{path}: field 'config' must be an object with fields of {names}, got {config!r}")
    try:
        manifest["config"] = config_type(**config)
    except InputError as err:
        raise InputError(f"{path}: field 'config': {err}") from None
    rows = manifest.get("rows")
    splits = list(splits)
    if not (isinstance(rows, dict) and set(rows) == set(splits) and all(is_int(n) for n in rows.values())):
        raise InputError(f"{path}: field 'rows' must give the row count of every split {splits}, got {rows!r}")
    return manifest


def read_split_rows(path: Path, required: Sequence[str], check: Callable[[dict], str | None], *, what: str,
                    writer: str, files: Sequence[str]) -> list[dict]:
    """The rows of the JSON Lines file ``path``, each holding every field of ``required`` and
    passing ``check(row)`` (``schema.read_jsonl``). Raises :class:`~satimp_lab.errors.InputError`:
    a missing file (naming it, the folder's ``files`` and ``writer``), and ``read_jsonl``'s errors
    naming the file, the line and the field."""
    if not path.is_file():
        raise _missing(path, what, writer, files)
    return read_jsonl(path, required, check)


def check_count(data_dir: Path, split: str, rows: Sequence, manifest: Mapping) -> None:
    """Raise :class:`~satimp_lab.errors.InputError` unless ``rows`` (read from
    ``data_dir/<split>.jsonl``) are as many as ``manifest``'s field ``rows`` says for ``split`` (a
    cut file); the message names the split's file, the manifest and both counts."""
    expected = manifest["rows"][split]
    if len(rows) != expected:
        raise InputError(f"{data_dir / f'{split}.jsonl'}: has {len(rows)} row(s), but "
                         f"{data_dir / MANIFEST} field 'rows' says {expected}")


def link_questions(path: Path, rows: Sequence[dict], texts: Mapping[int, tuple[str, dict]], text_split: str,
                   qa_ids: set[int], *, noun: str, right: Callable[[dict], str], right_name: str) -> None:
    """Check the question rows ``rows`` of the file ``path`` against the text rows they ask about:
    ``texts`` maps a ``doc_id`` to (its split, its row). Every ``qa_id`` is new (not in ``qa_ids``,
    which gains it), every ``doc_id`` one of ``text_split``'s rows, and the ``answer_span`` of the
    row's text reads ``right(row)``. Raises :class:`~satimp_lab.errors.InputError` naming the file,
    the row (its line and ``qa_id``) and the field; ``noun`` ("article") names a text row and
    ``right_name`` ("the answer") the expected text in the messages."""
    for line_no, row in enumerate(rows, start=1):
        where = f"{path}: row {line_no} (qa_id {row['qa_id']})"
        if row["qa_id"] in qa_ids:
            raise InputError(f"{where}: field 'qa_id' repeats an earlier question's")
        qa_ids.add(row["qa_id"])
        owner = texts.get(row["doc_id"])
        if owner is None or owner[0] != text_split:
            raise InputError(f"{where}: field 'doc_id': {row['doc_id']} is no {noun} of {text_split!r}")
        start, end = row["answer_span"]
        text, expected = owner[1]["text"], right(row)
        if text[start:end] != expected:
            raise InputError(f"{where}: field 'answer_span': {[start, end]} of {noun} {row['doc_id']} "
                             f"reads {text[start:end]!r}, not {right_name} {expected!r}")
