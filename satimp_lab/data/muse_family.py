"""How the engine reads the MUSE-shaped corpus (``data.muse``): its splits by role, what its
models are fine-tuned on, the texts their tokenizer is trained on, and how a setting loads it. The
fields of :data:`MUSE_FAMILY_FIELDS` make ``data.families.MUSE`` (docs/methods.md#muse-shaped-corpus).

**What the models read** (:func:`muse_model_rows`). MUSE's target models were fine-tuned on the
forget and retain corpora (news articles, books) and its retrained models on the retain corpus
alone; KnowMem then asks questions about them, which a *pretrained* model answers from what it
read. A model trained from scratch on a few thousand tokens does not: it learns the text but cannot
extract a fact it read into the answer to a question about it unless it was also trained to answer
questions about those very articles (Allen-Zhu and Li, *Physics of Language Models, Part 3.1*,
2023: knowledge read in one form is extracted in another only with augmented or QA exposure on the
same individuals). Measured on the default corpus (tiny tier, 30 epochs, seed 0): a target trained
on the forget and retain text and the retain questions only recites the forget articles (VerbMem
D_f 1.0) but scores KnowMem 0.011 on their questions, as on questions about articles it never read
(0.0), against 1.0 on the retain questions it was taught. So a target also reads the questions
about the articles it reads: target = text of ``full`` (forget + retain articles) + ``forget_qa`` +
``retain_qa``; retrained model = text of ``retain`` + ``retain_qa``. It is fair in MUSE's sense:
the retrained model is the target without every row about a forget article (their text and their
questions), so the target-minus-retrained gap on KnowMem D_f is knowledge the forget articles
brought in. The unlearning loop forgets the forget *text* only (the ``forget`` split, as MUSE
unlearns its forget corpus); whether that also removes the answers is what KnowMem on D_f measures.

This module is on the data floor: it imports ``errors`` and ``data`` modules only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import datasets

from ..errors import InputError
from .muse import MUSE_SPLITS, MuseConfig, load_muse

__all__ = ["muse_retain_for", "muse_eval_splits", "muse_splits_to_load", "muse_utility_split", "muse_model_rows",
           "muse_tokenizer_rows", "load_muse_family", "MUSE_FAMILY_FIELDS"]

_FORGET_SPLIT = "forget"


def _check_forget(forget_split: str) -> None:
    if forget_split != _FORGET_SPLIT:
        raise InputError(f"unknown forget split {forget_split!r} for benchmark family 'muse'; "
                         f"valid: [{_FORGET_SPLIT!r}]")


def muse_retain_for(forget_split: str) -> str:
    """``"forget"`` -> ``"retain"``: the split the loop trains beside the forget articles (every
    article the retrained model reads). Raises :class:`InputError` for any other name."""
    _check_forget(forget_split)
    return "retain"


def muse_eval_splits(benchmark: Mapping, forget_split: str) -> dict[str, str]:
    """Role -> split that MUSE's final metrics read: ``forget`` (VerbMem on D_f, PrivLeak's
    members), ``retain`` (the retain articles), ``holdout`` (PrivLeak's non-members),
    ``forget_qa`` / ``retain_qa`` (KnowMem on D_f / D_r), ``holdout_qa`` (KnowMem's floor: never
    read). One layout, so ``benchmark`` is not consulted. Raises :class:`InputError` for a forget
    split other than ``"forget"``."""
    _check_forget(forget_split)
    return {"forget": "forget", "retain": "retain", "holdout": "holdout", "forget_qa": "forget_qa",
            "retain_qa": "retain_qa", "holdout_qa": "holdout_qa"}


def muse_splits_to_load(source: str, forget_split: str) -> list[str]:
    """Every split an experiment on the MUSE-shaped corpus loads (:func:`load_muse`): ``full``
    (what the target trains on), the forget and retain splits and the evaluation splits. Only the
    offline ``"synthetic"`` source exists (the real MUSE corpora are not read); another source or
    forget split raises :class:`InputError`."""
    _check_forget(forget_split)
    if source != "synthetic":
        raise InputError(f"benchmark family 'muse' has no source {source!r}; valid: ['synthetic'] "
                         f"(the offline MUSE-shaped corpus of data.muse)")
    return list(MUSE_SPLITS)


def _rows(benchmark: Mapping, split: str, kind: str) -> list[dict]:
    if split not in benchmark:
        raise InputError(f"the MUSE-shaped benchmark has no split {split!r} (needed for the {kind} "
                         f"model); it has {sorted(benchmark)}")
    return benchmark[split].to_list()


def muse_utility_split(forget_split: str) -> tuple[str, str]:
    """``("retain_qa", "qa")``: the split the loop's periodic evaluation reads as utility (the
    retain articles' questions, teacher forced: a cheap stand-in for KnowMem on D_r, which needs
    greedy generation). Raises :class:`InputError` for a forget split other than ``"forget"``."""
    _check_forget(forget_split)
    return "retain_qa", "qa"


def muse_model_rows(benchmark: Mapping, kind: str, forget_split: str) -> dict[str, list[dict]]:
    """What the ``kind="target"`` or ``kind="retain"`` (retrained) model is fine-tuned on, by
    encoding (a key of ``data.families.ENCODERS``): target ``{"text": full, "qa": forget_qa +
    retain_qa}``, retrained ``{"text": retain, "qa": retain_qa}`` (module docstring: why the
    questions). Rows in split order. Raises :class:`InputError` for another ``kind``, a forget
    split other than ``"forget"`` or a missing split (naming it)."""
    _check_forget(forget_split)
    if kind == "target":
        return {"text": _rows(benchmark, "full", kind),
                "qa": _rows(benchmark, "forget_qa", kind) + _rows(benchmark, "retain_qa", kind)}
    if kind == "retain":
        return {"text": _rows(benchmark, "retain", kind), "qa": _rows(benchmark, "retain_qa", kind)}
    raise InputError(f"kind must be 'target' or 'retain', got {kind!r}")


def muse_tokenizer_rows(benchmark: Mapping) -> dict[str, list[dict]]:
    """The rows a from-scratch tier trains its tokenizer on, by encoding: every article (``full``
    and ``holdout``) and every question (``forget_qa``, ``retain_qa``, ``holdout_qa``), the same
    for the target and the retrained model (one tokenizer per corpus, as the TOFU-shaped tiers
    train theirs on every text the benchmark has). Raises :class:`InputError` for a missing split."""
    return {"text": _rows(benchmark, "full", "tokenizer") + _rows(benchmark, "holdout", "tokenizer"),
            "qa": [r for s in ("forget_qa", "retain_qa", "holdout_qa") for r in _rows(benchmark, s, "tokenizer")]}


def load_muse_family(source: str = "synthetic", splits=None, config: MuseConfig | None = None,
                     data_dir: str | Path | None = None) -> datasets.DatasetDict:
    """:func:`load_muse` called as a family loads its benchmark (``BenchmarkFamily.load``):
    ``source`` must be ``"synthetic"``; ``config`` a :class:`MuseConfig` (default: the default
    corpus). Raises :class:`InputError` for another source or config type."""
    if source != "synthetic":
        raise InputError(f"benchmark family 'muse' has no source {source!r}; valid: ['synthetic']")
    if config is not None and not isinstance(config, MuseConfig):
        raise InputError(f"the MUSE-shaped corpus is configured by a MuseConfig, got {type(config).__name__}")
    return load_muse(splits, config, data_dir)


MUSE_FAMILY_FIELDS: Mapping = MappingProxyType({
    "name": "muse",
    "description": "MUSE-shaped verbatim and knowledge unlearning: fictional news articles with their "
                   "facts' spans and questions about them (data.muse, offline)",
    "encoding": "text",
    "forget_splits": (_FORGET_SPLIT,),
    "retain_for": muse_retain_for,
    "eval_roles": muse_eval_splits,
    "splits_to_load": muse_splits_to_load,
    "efficacy": "forget_es",
    "utility": "utility_es",
    "utility_split": muse_utility_split,
    "metrics": ("verbmem", "knowmem", "privleak"),
    "config_type": MuseConfig,
    "load": load_muse_family,
    "model_rows": muse_model_rows,
    "tokenizer_rows": muse_tokenizer_rows,
    "model_train": MappingProxyType({"stop_key_accuracy": None}),
})
"""The fields of the MUSE-shaped ``data.families.BenchmarkFamily`` (``families.MUSE`` is
``BenchmarkFamily(**MUSE_FAMILY_FIELDS)``): raw-text rows (every token a label,
``encode_text_dataset``), one forget split ``forget`` beside ``retain``, the evaluation roles of
:func:`muse_eval_splits`, the splits of :func:`muse_splits_to_load`, models fine-tuned on
:func:`muse_model_rows` with a tokenizer of :func:`muse_tokenizer_rows`. During training runs are
matched on the forget text's extraction strength (``forget_es``) where the teacher-forced
extraction strength of the retain articles' questions (``utility_es``, :func:`muse_utility_split`:
a stand-in for KnowMem on D_r) falls to the matched level; MUSE's own metrics, VerbMem (D_f),
KnowMem (D_f, D_r) and PrivLeak, are computed by the evaluation stage on the model at the matched
point or at the end (``metrics``: names only, the data floor imports no metric).

``model_train``: its models train for the tier's full ``epochs`` (no early stop on key-token
accuracy): an article's first fact (the town, a date) follows an opening that several articles
share, so no model predicts it from its left context and key accuracy stops short of the TOFU
tiers' 0.99 (measured: 0.98 after 30 epochs, with VerbMem on the forget articles 1.0).
Kept as plain fields so that ``data.families`` can build and register the family while importing
this module."""
