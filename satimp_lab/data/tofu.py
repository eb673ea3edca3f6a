"""The real TOFU as published (``locuslab/TOFU``): its Hub config names and fields, read online
through ``datasets`` or from a local folder of the Hub's JSON files, mapped onto the package's row
schema (``data.schema``); ``data.tofu_layout`` writes our synthetic benchmark in that exact layout
(docs/methods.md#real-tofu).

The Hub's configs and their fields (TOFU paper, Maini et al. 2024, and the dataset card of
``locuslab/TOFU``; every config has the single split ``train``; each ``<config>.json`` file is JSON
Lines, one object per row):

=========================================  =========================================================
``full``                                   question, answer -- 200 authors x 20 QA pairs, in author
                                           order
``forget01/05/10``                         question, answer -- the LAST 2 / 10 / 20 authors of
                                           ``full`` (nested)
``retain99/95/90``                         question, answer -- the rest of ``full``, in order
``forget01/05/10_perturbed``               question, answer, paraphrased_answer, paraphrased_question,
                                           perturbed_answer (list) -- the rows of ``forgetXX``
``retain_perturbed``                       the same fields -- 400 rows of the retain authors: the
                                           first 400 rows of ``full`` (TOFU's own evaluation logs open
                                           with ``full``'s first author, Jaime Vasquez)
``real_authors_perturbed``,                question, answer, perturbed_answer (list of 3) -- real
``world_facts_perturbed``                  authors and world facts (TOFU's ``data/*_perturbed.json``)
``real_authors``, ``world_facts``          question, option1..option4, answer (multiple choice)
``holdout01/05/10``                        question, answer -- authors never in ``full`` (open-
                                           unlearning's MIA non-members, ``holdout_split``)
=========================================  =========================================================

What reads what (TOFU's ``config/eval_everything.yaml``; open-unlearning's
``configs/data/datasets/TOFU_QA_*.yaml``): training reads ``full`` (the target), ``forgetXX`` and
``retainYY``; evaluation reads ``forgetXX_perturbed`` (forget side), ``retain_perturbed`` (retain
side), ``real_authors_perturbed`` and ``world_facts_perturbed`` (``evaluation.metrics.evaluate``).

qa_id: a row of a config drawn from ``full`` gets the index of the same QA pair in ``full``, so
per-example values pair across configs and models (forget quality pairs by qa_id). When ``full`` is
in the source, every row is looked up in it by its question; otherwise (or when a question is not
found once) the layout above places it: ``forgetXX`` and ``forgetXX_perturbed`` are the last rows of
``full`` (4000 rows unless ``full`` is there to count), ``retainYY`` and ``retain_perturbed`` the
first. The other configs get their own id ranges: holdout ``100000 + i``, real authors
``200000 + i``, world facts ``300000 + i`` (``real_authors`` and ``real_authors_perturbed`` share
ids row by row, as do the world-facts pair).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets

from .. import hub
from ..errors import InputError
from .schema import FORGET_PERCENTS, retain_split_for, row_problem, to_dataset

__all__ = ["HUB_ID", "HUB_CONFIGS", "DEFAULT_CONFIGS", "HUB_FIELDS", "TOFU_QA_PER_AUTHOR", "TOFU_N_FULL",
           "HOLDOUT_ID_BASE", "REAL_AUTHORS_ID_BASE", "WORLD_FACTS_ID_BASE",
           "load_tofu", "is_hub_layout", "eval_splits"]

HUB_ID = "locuslab/TOFU"
TOFU_QA_PER_AUTHOR = 20
"""QA pairs per author in TOFU: ``author_id`` of a row drawn from ``full`` is qa_id // 20."""
TOFU_N_FULL = 4000
"""Rows of TOFU's ``full``: places forget rows (the last ones) when ``full`` is not in the source."""
HOLDOUT_ID_BASE, REAL_AUTHORS_ID_BASE, WORLD_FACTS_ID_BASE = 100_000, 200_000, 300_000

_QA = ("question", "answer")
_AUTHOR_PERTURBED = ("question", "answer", "paraphrased_answer", "paraphrased_question", "perturbed_answer")
_GENERAL_PERTURBED = ("question", "answer", "perturbed_answer")
_OPTIONS = ("question", "option1", "option2", "option3", "option4", "answer")

HUB_FIELDS: dict[str, tuple[str, ...]] = {
    "full": _QA,
    **{f"forget{p:02d}": _QA for p in FORGET_PERCENTS},
    **{f"retain{100 - p:02d}": _QA for p in FORGET_PERCENTS},
    **{f"forget{p:02d}_perturbed": _AUTHOR_PERTURBED for p in FORGET_PERCENTS},
    "retain_perturbed": _AUTHOR_PERTURBED,
    "real_authors_perturbed": _GENERAL_PERTURBED,
    "world_facts_perturbed": _GENERAL_PERTURBED,
    **{f"holdout{p:02d}": _QA for p in FORGET_PERCENTS},
    "real_authors": _OPTIONS,
    "world_facts": _OPTIONS,
}
"""Config name -> its fields, in the Hub's order (what :func:`write_tofu_layout` writes)."""
HUB_CONFIGS = tuple(HUB_FIELDS)
DEFAULT_CONFIGS = tuple(c for c in HUB_CONFIGS if c not in ("real_authors", "world_facts"))
"""What :func:`load_tofu` loads online when no ``splits`` are named: every config that training or
evaluation reads (the multiple-choice ``real_authors`` / ``world_facts`` only when asked for)."""

# fields a row must have to be read (beyond them, a missing paraphrased_question is the question)
_REQUIRED = {c: (("question", "answer", "paraphrased_answer", "perturbed_answer") if f is _AUTHOR_PERTURBED
                 else ("question", "answer", "perturbed_answer") if f is _GENERAL_PERTURBED
                 else ("question", "answer"))
             for c, f in HUB_FIELDS.items()}
_OLD_NAMES = {"holdout": "holdout01/05/10"}  # the synthetic benchmark's name for TOFU's holdout


# ----------------------------------------------------------------------------------------------
# which configs a benchmark holds, and which of them evaluation reads


def is_hub_layout(benchmark: Mapping) -> bool:
    """True when ``benchmark`` (a ``DatasetDict`` or {name: rows}) is keyed by TOFU's Hub configs:
    it holds a config the synthetic benchmark never has (``*_perturbed``, ``holdoutNN``,
    ``real_authors``), or its rows come from :func:`load_tofu` (``fact_type`` starting ``tofu``)."""
    names = set(benchmark)
    if names & (set(HUB_CONFIGS) - {"full", "world_facts"} - {f"forget{p:02d}" for p in FORGET_PERCENTS}
                - {f"retain{100 - p:02d}" for p in FORGET_PERCENTS}):
        return True
    for name in names:
        split = benchmark[name]
        if len(split):
            first = split[0]
            return str(first.get("fact_type", "")).startswith("tofu")
    return False


def eval_splits(benchmark: Mapping, forget_split: str) -> dict[str, str]:
    """Role -> split name that ``evaluation.metrics.evaluate`` reads for ``forget_split``.

    Synthetic benchmark (docs/methods.md#metrics): ``forget`` = ``forget10``, ``retain`` =
    ``retain90``, ``world_facts``, ``holdout``. Hub layout (:func:`is_hub_layout`; as TOFU's
    ``eval_everything.yaml`` and open-unlearning's ``configs/eval/tofu.yaml``): ``forget`` =
    ``forget10_perturbed``, ``retain`` = ``retain_perturbed``, ``real_authors`` =
    ``real_authors_perturbed``, ``world_facts`` = ``world_facts_perturbed``, ``holdout`` =
    ``holdout10``. ``forget_split`` may be given with or without ``_perturbed``. Raises
    :class:`InputError` for a name that is not a forget split."""
    base = forget_split[:-len("_perturbed")] if forget_split.endswith("_perturbed") else forget_split
    retain = retain_split_for(base)  # raises on a bad name
    if not is_hub_layout(benchmark):
        return {"forget": base, "retain": retain, "world_facts": "world_facts", "holdout": "holdout"}
    return {"forget": f"{base}_perturbed", "retain": "retain_perturbed",
            "real_authors": "real_authors_perturbed", "world_facts": "world_facts_perturbed",
            "holdout": f"holdout{base[6:]}"}


# ----------------------------------------------------------------------------------------------
# reading


def _source_error(config: str, why: str) -> InputError:
    return InputError(f"cannot load TOFU config {config!r} from the Hub ({HUB_ID}): {why}; point at a "
                      f"local folder of its JSON files instead: load_benchmark('tofu', data_dir=FOLDER) "
                      f"(the CLI's --data-dir FOLDER; `satimp-lab data --layout tofu --out FOLDER` writes one)")


def _hub_rows(config: str, checked: dict) -> list[dict]:
    """Rows of one config from the Hub (or, offline, from the Hugging Face cache). Fails at once,
    with one :class:`InputError` line, when neither can serve it."""
    offline = hub.offline()
    if not offline and "reachable" not in checked:
        checked["reachable"] = hub.reachable()
    if not offline and not checked["reachable"]:
        raise _source_error(config, "the Hub cannot be reached (no network)")
    try:
        with hub.offline_mode(offline):
            return datasets.load_dataset(HUB_ID, config, split="train").to_list()
    except (ConnectionError, OSError, ValueError) as err:  # offline cache miss, HTTP errors
        why = ("offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and not in the Hugging Face cache"
               if offline else f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        raise _source_error(config, why) from None


def _read_config_file(path: Path, config: str) -> list[dict]:
    """Rows of ``<config>.json``: JSON Lines (the Hub's files) or one JSON array of objects."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{config}: {path} is not UTF-8 text ({err.reason})") from None
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{config}: {path} line {err.lineno}: not valid JSON ({err.msg})") from None
        where = [f"row {i}" for i in range(len(rows))]
    else:
        rows, where = [], []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(f"{config}: {path} row {len(rows)} (line {line_no}): not valid JSON "
                                 f"({err.msg})") from None
            where.append(f"row {len(rows) - 1} (line {line_no})")
    for row, at in zip(rows, where):
        if not isinstance(row, dict):
            raise InputError(f"{config}: {path} {at}: a row must be a JSON object, got {row!r:.80}")
    if not rows:
        raise InputError(f"{config}: {path} holds no rows")
    return rows


def _check_raw(config: str, label: str, rows: list[dict]) -> None:
    """Each row has the fields the config needs, of the right type; errors name config, file (or
    Hub config), row and field."""
    for i, row in enumerate(rows):
        for f in _REQUIRED[config]:
            if f not in row or row[f] is None:
                raise InputError(f"{config}: {label} row {i}: field {f!r} is missing (the Hub's {config} "
                                 f"rows have {list(HUB_FIELDS[config])})")
        for f in ("question", "answer", "paraphrased_answer", "paraphrased_question"):
            if f in row and row[f] is not None and not (isinstance(row[f], str) and row[f].strip()):
                raise InputError(f"{config}: {label} row {i}: field {f!r} must be a non-empty string, "
                                 f"got {row[f]!r:.80}")
        if "perturbed_answer" in _REQUIRED[config]:
            wrong = row["perturbed_answer"]
            if not (isinstance(wrong, list) and wrong and all(isinstance(a, str) and a.strip() for a in wrong)):
                raise InputError(f"{config}: {label} row {i}: field 'perturbed_answer' must be a non-empty "
                                 f"list of non-empty strings, got {wrong!r:.80}")


def _first_id(config: str, n_rows: int, n_full: int) -> int:
    """qa_id of the config's first row by the layout (module docstring)."""
    if config.startswith("forget"):
        return n_full - n_rows
    if config.startswith("holdout"):
        return HOLDOUT_ID_BASE
    if config.startswith("real_authors"):
        return REAL_AUTHORS_ID_BASE
    if config.startswith("world_facts"):
        return WORLD_FACTS_ID_BASE
    return 0  # full, retainYY, retain_perturbed


def _qa_ids(config: str, rows: list[dict], full_rows: list[dict] | None) -> list[int]:
    """qa_ids of a config's rows: their index in ``full`` when every question is found there
    once, else by the layout (module docstring)."""
    n_full = len(full_rows) if full_rows is not None else TOFU_N_FULL
    first = _first_id(config, len(rows), n_full)
    positional = list(range(first, first + len(rows)))
    if full_rows is None or config == "full" or not config.startswith(("forget", "retain")):
        return positional
    index: dict[str, int] = {}
    for i, r in enumerate(full_rows):
        index[r["question"]] = -1 if r["question"] in index else i  # -1: asked twice in full
    found = [index.get(r["question"], -1) for r in rows]
    if -1 in found or len(set(found)) != len(found):
        return positional
    return found


def _to_schema(config: str, rows: list[dict], ids: list[int], label: str) -> list[dict]:
    """Hub rows -> the package's schema (``data.benchmark``): paraphrases default to the original,
    ``perturbed_answer`` to [] where the config has none, ``key_spans`` [] (TOFU has no exact
    annotations), ``fact_type`` ``tofu`` / ``tofu_real_authors`` / ``tofu_world_facts``;
    ``author_id`` = qa_id // 20 for author rows (holdout authors numbered after ``full``'s), -1
    for real authors and world facts. Options of the multiple-choice configs are not kept."""
    general = config.startswith(("real_authors", "world_facts"))
    out = []
    for i, (row, qa_id) in enumerate(zip(rows, ids)):
        if general:
            author = -1
        elif config.startswith("holdout"):
            author = (TOFU_N_FULL + qa_id - HOLDOUT_ID_BASE) // TOFU_QA_PER_AUTHOR
        else:
            author = qa_id // TOFU_QA_PER_AUTHOR
        mapped = {
            "question": row["question"], "answer": row["answer"],
            "paraphrased_question": row.get("paraphrased_question") or row["question"],
            "paraphrased_answer": row.get("paraphrased_answer") or row["answer"],
            "perturbed_answer": list(row.get("perturbed_answer") or []),
            "author_id": author, "key_spans": [],
            "fact_type": f"tofu_{config.removesuffix('_perturbed')}" if general else "tofu",
            "qa_id": qa_id,
        }
        problem = row_problem(mapped)
        if problem:
            raise InputError(f"{config}: {label} row {i}: {problem}")
        out.append(mapped)
    return out


def _check_names(splits: Sequence[str]) -> list[str]:
    unknown = [s for s in splits if s not in HUB_FIELDS]
    if unknown:
        hints = [f"{s!r} -> {_OLD_NAMES[s]}" for s in unknown if s in _OLD_NAMES]
        raise InputError(f"unknown TOFU config(s) {unknown}{' (' + ', '.join(hints) + ')' if hints else ''}; "
                         f"valid: {list(HUB_CONFIGS)}")
    return list(dict.fromkeys(splits))


def load_tofu(splits: Sequence[str] | None = None, data_dir: str | Path | None = None) -> datasets.DatasetDict:
    """TOFU by its Hub config names, as a ``DatasetDict`` {config: Dataset} in the package's schema.

    splits: config names (:data:`HUB_CONFIGS`; the module docstring lists each one's fields).
        None: online, :data:`DEFAULT_CONFIGS`; from a folder, every config it holds.
    data_dir: None reads ``locuslab/TOFU`` through ``datasets.load_dataset(HUB_ID, config,
        split="train")``; a folder reads ``<config>.json`` there (JSON Lines as on the Hub, or a
        JSON array). Extra keys of a row are ignored.

    Rows: see :func:`_to_schema`; qa_ids as in the module docstring, so a forget row has the
    same qa_id in ``forget10``, ``forget10_perturbed`` and ``full``.

    Raises :class:`InputError` (one line): an unknown config name; a folder that lacks a named
    config (naming the folder, the config and the configs it holds) or holds none; a row missing a
    field its config needs or with a malformed one (naming the config, the file and row, and the
    field); online, when the Hub cannot be reached or is switched off (``HF_HUB_OFFLINE`` /
    ``HF_DATASETS_OFFLINE`` without a cached copy): at once, saying to pass ``data_dir`` (the CLI's
    ``--data-dir``).
    """
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise InputError(f"TOFU data_dir {folder} is not a folder")
        present = [c for c in HUB_CONFIGS if (folder / f"{c}.json").is_file()]
        if splits is None:
            if not present:
                raise InputError(f"TOFU data_dir {folder} holds no config file (<config>.json for a config "
                                 f"of {list(HUB_CONFIGS)})")
            splits = present
        splits = _check_names(splits)
        missing = [s for s in splits if s not in present]
        if missing:
            raise InputError(f"{missing[0]}: {folder} has no {missing[0]}.json (it holds {present or 'no config'})")

        def raw(config):
            return _read_config_file(folder / f"{config}.json", config), str(folder / f"{config}.json")

        has_full = "full" in present
    else:
        splits = _check_names(DEFAULT_CONFIGS if splits is None else splits)
        checked: dict = {}

        def raw(config):
            return _hub_rows(config, checked), f"{HUB_ID} config {config!r}"

        has_full = True
    loaded = {}
    for config in splits:
        rows, label = raw(config)
        _check_raw(config, label, rows)
        loaded[config] = (rows, label)
    needs_full = any(c.startswith(("forget", "retain")) for c in splits)
    full_rows = None
    if has_full and (needs_full or "full" in loaded):
        if "full" not in loaded:
            rows, label = raw("full")
            _check_raw("full", label, rows)
            loaded_full = rows
        else:
            loaded_full = loaded["full"][0]
        full_rows = loaded_full
    out = {}
    for config in splits:
        rows, label = loaded[config]
        out[config] = to_dataset(_to_schema(config, rows, _qa_ids(config, rows, full_rows), label), config)
    return datasets.DatasetDict(out)
