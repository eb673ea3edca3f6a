"""Benchmark families: what the engine needs to know about a benchmark, declared in one place
(docs/methods.md#benchmark-families).

A :class:`BenchmarkFamily` says

* its **splits**: which forget splits it has, the retain split the loop trains beside each one,
  the splits its final metrics read (by role) and the splits an experiment loads;
* how a **row becomes a labelled sequence** (:data:`ENCODERS`): ``"qa"``, a question/answer pair
  whose answer tokens (and final EOS) are the labels (``batching.encode_dataset``, unchanged), or
  ``"text"``, raw text in which every token is a label, cut into blocks of at most ``max_length``
  tokens (:func:`encode_text_dataset`, the MUSE / WMDP corpora);
* its **forget-efficacy** and **utility** readings: the columns of the loop's periodic evaluation
  that runs are compared on (forget efficacy at matched utility, ``experiments.matched.forget_at_matched_retain``);
* the **final metrics** it supports, by name.

The engine asks the family and names no split of its own. TOFU-shaped benchmarks (our synthetic
one and the real ``locuslab/TOFU``) are the first family, :data:`TOFU`; a new family is one more
``BenchmarkFamily(...)`` in :data:`FAMILIES` (its loader and metrics live in their own modules).

Every encoder returns the layout of ``batching.encode_dataset`` (``input_ids``, ``labels``,
``key_mask`` lists and an integer ``example_id`` per sequence), so ``batching.collate`` and the
loop's forward pass read every family the same way.

This module is on the data floor: it imports ``errors`` and ``data`` modules only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import InputError, check_int
from .batching import IGNORE_INDEX, PromptFormat, encode_dataset, get_prompt_format
from .benchmark import BenchmarkConfig, benchmark_splits, load_benchmark
from .muse_family import MUSE_FAMILY_FIELDS
from .schema import FORGET_PERCENTS, retain_split_for
from .tofu import eval_splits

__all__ = ["BenchmarkFamily", "ENCODERS", "TEXT_BLOCK_STRIDE", "TEXT_FIELDS", "TOFU", "MUSE", "FAMILIES",
           "get_family", "encode_text", "encode_text_dataset", "text_block_id", "text_block_source"]


# ----------------------------------------------------------------------------------------------
# raw text -> labelled blocks

TEXT_FIELDS = ("text", "key_spans", "doc_id")
"""The fields a text row may have: ``text`` (a non-empty string, required), ``key_spans``
(``[start, end)`` character spans inside ``text``, optional) and ``doc_id`` (an integer >= 0,
optional; default: the row's index in its split)."""

TEXT_BLOCK_STRIDE = 100_000
"""A text block's ``example_id`` is ``doc_id * TEXT_BLOCK_STRIDE + block``: every block of a
split has its own id (the token trace tells tokens apart by example id and position), and
:func:`text_block_source` gives back the row and the block. A row may yield at most this many
blocks (200 M tokens at 2048 tokens a block)."""


def text_block_id(doc_id: int, block: int) -> int:
    """The ``example_id`` of block ``block`` (0-based) of text row ``doc_id``."""
    return doc_id * TEXT_BLOCK_STRIDE + block


def text_block_source(example_id: int) -> tuple[int, int]:
    """``(doc_id, block)`` of a text block's ``example_id`` (the inverse of :func:`text_block_id`)."""
    doc_id, block = divmod(int(example_id), TEXT_BLOCK_STRIDE)
    return doc_id, block


def encode_text(tokenizer, text: str, key_spans: Iterable[Sequence[int]] = (),
                prompt_format: str | PromptFormat = "qa", max_length: int | None = None,
                doc_id: int = 0) -> list[dict]:
    """Tokenise one raw text into labelled blocks (``batching.encode_dataset``'s layout).

    Rule (the official MUSE corpus loader: ``DefaultDataset`` of a ``.txt`` corpus in
    ``dataloader/muse_dataset.py`` of tmlr-group/SatImp, commit ``35ecbe2``, which ``muse_sat.py``
    trains on; open-unlearning's ``preprocess_pretraining_instance``, ``src/data/utils.py``, agrees
    on the BOS, the missing EOS and the unscored first position): the text is tokenised without
    special tokens; it is cut into consecutive blocks of ``max_length - 1`` tokens, each preceded
    by the BOS token (``add_bos_token=True`` there), or of ``max_length`` tokens without a BOS
    (when ``prompt_format.add_bos`` is False or the tokenizer has none); no EOS is appended (a raw corpus has no answer whose end the model must learn); ``labels`` are
    the ``input_ids`` (``labels = input_ids`` there). The BOS gets ``IGNORE_INDEX`` instead: it is
    position 0, which the shifted reading never scores anyway (``token_logprobs`` scores label
    ``j + 1`` from position ``j``), so every text token is a target, but the first token of a
    block without a BOS (it has no left context inside its block; the official loader leaves it
    unscored too). ``max_length=None``: the whole text is one block.

    Two departures from that loader, on purpose: a text row is cut on its own (blocks never
    straddle two rows, so each block's id and key spans belong to one row; the official loader cuts
    one token stream of the whole corpus file), and a last block shorter than ``max_length`` stays
    short (``batching.collate`` pads it with an attention mask of 0) instead of being filled up
    with the corpus's first tokens ("rotation" there), which would count those tokens twice per
    epoch, in the loss and in the token trace. A last block with no target (a lone token without a
    BOS) is left out: its token is unscored either way.

    ``key_spans`` (character spans ``[start, end)`` inside ``text``) become the ``key_mask`` as
    ``batching.encode_example`` makes it for an answer: a token is a key token when its characters
    (the tokenizer's offsets) overlap a span; the BOS never is. Block ``b`` gets ``example_id``
    :func:`text_block_id` ``(doc_id, b)``.

    Raises :class:`~satimp_lab.errors.InputError` naming the row (``text row <doc_id>``): a text
    that is not a non-empty string, a key span outside ``[0, len(text)]`` or not ``start < end``,
    a ``doc_id`` that is not an integer >= 0, more than :data:`TEXT_BLOCK_STRIDE` blocks; and for
    ``max_length`` below 2 (a block needs a context token and a target).
    """
    fmt = get_prompt_format(prompt_format)
    check_int("encode_text", "max_length", max_length, minimum=2, none_ok=True)
    if not (isinstance(doc_id, int) and not isinstance(doc_id, bool) and doc_id >= 0):
        raise InputError(f"text row {doc_id!r}: field 'doc_id' must be an integer >= 0, got {doc_id!r}")
    where = f"text row {doc_id}"
    if not (isinstance(text, str) and text.strip()):
        raise InputError(f"{where}: field 'text' must be a non-empty string, got {text!r}")
    spans = []
    for span in key_spans:
        span = tuple(span)
        if not (len(span) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
                and 0 <= span[0] < span[1] <= len(text)):
            raise InputError(f"{where}: field 'key_spans': span {list(span)} is not a [start, end) pair "
                             f"with 0 <= start < end <= {len(text)} (the text's length)")
        spans.append(span)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    keys = [int(any(s < ke and e > ks for ks, ke in spans)) for s, e in offsets]
    bos = tokenizer.bos_token_id if fmt.add_bos else None
    lead = 0 if bos is None else 1
    size = len(ids) if max_length is None else max_length - lead
    blocks: list[dict] = []
    for start in range(0, len(ids), max(size, 1)):
        chunk, chunk_keys = ids[start:start + size], keys[start:start + size]
        if lead + len(chunk) < 2:  # nothing to predict: a lone token without a BOS
            continue
        block = len(blocks)
        if block >= TEXT_BLOCK_STRIDE:
            raise InputError(f"{where} yields more than {TEXT_BLOCK_STRIDE} blocks of {max_length} "
                             f"tokens; split it into several rows or raise max_length")
        blocks.append({
            "input_ids": [bos] * lead + chunk,
            "labels": [IGNORE_INDEX] * lead + chunk,
            "key_mask": [0] * lead + chunk_keys,
            "example_id": text_block_id(doc_id, block),
        })
    if not blocks:
        raise InputError(f"{where}: the text produced no token to predict ({len(ids)} token(s) "
                         f"without a BOS); a block needs at least two tokens")
    return blocks


def encode_text_dataset(tokenizer, rows, prompt_format: str | PromptFormat = "qa",
                        max_length: int | None = None) -> list[dict]:
    """Every text row of ``rows`` (a ``datasets.Dataset`` or a list of dicts with the fields of
    :data:`TEXT_FIELDS`) as labelled blocks, row after row, in row order (:func:`encode_text`).

    Raises :class:`~satimp_lab.errors.InputError` for an empty split, a row without a ``text``
    field (naming the row), the errors of :func:`encode_text`, and two rows with the same
    ``doc_id`` (their blocks would share example ids)."""
    if len(rows) == 0:
        raise InputError("cannot encode an empty split of text rows")
    if hasattr(rows, "to_list"):
        rows = rows.to_list()
    encoded: list[dict] = []
    seen: set[int] = set()
    for i, row in enumerate(rows):
        doc_id = row.get("doc_id", i)
        if "text" not in row:
            raise InputError(f"text row {doc_id!r} has no field 'text' (a text row has {list(TEXT_FIELDS)})")
        if doc_id in seen:
            raise InputError(f"text row {doc_id!r}: field 'doc_id' repeats an earlier row's; every row "
                             f"needs its own doc_id")
        encoded += encode_text(tokenizer, row["text"], row.get("key_spans") or (), prompt_format,
                               max_length, doc_id)
        seen.add(doc_id)
    return encoded


ENCODERS: Mapping[str, Callable[..., list[dict]]] = MappingProxyType({
    "qa": encode_dataset,
    "text": encode_text_dataset,
})
"""How a row becomes labelled sequences, by name; each is called as
``encoder(tokenizer, rows, prompt_format, max_length) -> list[dict]`` and returns the layout of
``batching.encode_dataset``. ``"qa"``: ``batching.encode_dataset`` itself (prompt + answer, the
answer tokens and the final EOS are the labels, key tokens from the answer's ``key_spans``; a row
longer than ``max_length`` raises). ``"text"``: :func:`encode_text_dataset` (every token a label,
long texts cut into blocks)."""


# ----------------------------------------------------------------------------------------------
# the family


@dataclass(frozen=True)
class BenchmarkFamily:
    """What the engine needs to know about one kind of benchmark: its splits, how its rows are
    encoded, which readings measure forgetting and utility, and which final metrics it has.

    Build one per family and add it to :data:`FAMILIES`; the engine looks it up by name
    (:func:`get_family`). Fields are checked when it is built (:class:`InputError` naming the field).
    """

    name: str
    """The family's name in :data:`FAMILIES` (``"tofu"``); what a setting or a config names."""
    description: str
    """One line: what its benchmarks are and where they come from."""
    encoding: str
    """How a row becomes labelled sequences: a key of :data:`ENCODERS` (``"qa"``: answer tokens
    and EOS labelled behind a question prompt; ``"text"``: raw text, every token a label)."""
    forget_splits: tuple[str, ...]
    """The forget splits it has, by name (TOFU: ``forget01``, ``forget05``, ``forget10``)."""
    retain_for: Callable[[str], str]
    """``retain_for(forget_split) -> retain split``: what the loop trains beside a forget split
    (its retain term, and the utility side of the periodic evaluation). TOFU:
    ``schema.retain_split_for`` (``forget10`` -> ``retain90``)."""
    eval_roles: Callable[[Mapping, str], dict[str, str]]
    """``eval_roles(benchmark, forget_split) -> {role: split}``: the splits the final metrics read,
    by role (``forget``, ``retain``, ...), for a loaded benchmark (a ``DatasetDict``; a family with
    several layouts tells them apart from it). TOFU: ``tofu.eval_splits``."""
    splits_to_load: Callable[[str, str], list[str]]
    """``splits_to_load(source, forget_split) -> [split]``: every split an experiment on
    ``forget_split`` loads from ``source`` (training and evaluation). TOFU:
    ``benchmark.benchmark_splits`` (sources ``"synthetic"`` and ``"tofu"``)."""
    efficacy: str = "forget_es"
    """Forget efficacy: the column of the loop's periodic evaluation read as how much of the
    forget split the model still knows (``forget_<reading>``; the loop writes
    ``forget_/retain_`` + ``es``, ``mean_logp``, ``answer_accuracy``, ``key_accuracy``). Lower
    means more forgotten. Runs are compared on it at matched utility."""
    utility: str = "retain_es"
    """Utility for matching: the column (``retain_<reading>``, or ``utility_<reading>`` of the
    :attr:`utility_split`) whose fall to ``match_level`` x its
    start marks the matched point (``experiments.matched.forget_at_matched_retain``,
    ``unlearning.plan.EvalPlan``). Higher means more kept."""
    metrics: tuple[str, ...] = ()
    """The final metrics it supports, by name (computed on the final model by the evaluation
    stage; names only here, the data floor imports no metric). TOFU: every name of
    ``evaluation.metrics.METRICS``."""

    config_type: type = BenchmarkConfig
    """The type of a setting's ``benchmark`` field for this family (what :attr:`load` is
    configured by): ``benchmark.BenchmarkConfig`` for TOFU, ``muse.MuseConfig`` for MUSE."""
    load: Callable[..., Any] = load_benchmark
    """``load(source, splits, config, data_dir) -> DatasetDict``: the benchmark's splits
    (``benchmark.load_benchmark`` for TOFU, ``muse_family.load_muse_family`` for MUSE)."""
    model_rows: Callable[[Mapping, str, str], Mapping[str, list]] | None = None
    """``model_rows(benchmark, kind, forget_split) -> {encoding: rows}``: what the target
    (``kind="target"``) and the retrained model (``"retain"``) are fine-tuned on, each row list
    encoded by ``ENCODERS[encoding]``. None: TOFU's recipe, which depends on the tier and the
    layout (``models.train``: ``full`` or the retain split, + ``world_facts`` on the synthetic
    benchmark, a ``train_subset`` tier's authors)."""
    tokenizer_rows: Callable[[Mapping], Mapping[str, list]] | None = None
    """``tokenizer_rows(benchmark) -> {encoding: rows}``: the rows a from-scratch tier trains its
    tokenizer on (``"text"`` rows give their ``text``, ``"qa"`` rows their prompt + answer). None:
    TOFU's (``models.build.benchmark_texts``)."""
    utility_split: Callable[[str], tuple[str, str]] | None = None
    """``utility_split(forget_split) -> (split, encoding)``: a split the loop's periodic
    evaluation reads beside the forget and retain splits, as role ``utility`` (columns
    ``utility_es``, ``utility_mean_logp``, ...; the first ``eval_max_examples`` rows, encoded by
    ``ENCODERS[encoding]``), wherever it reads the retain split; :attr:`utility` may name one of
    its columns. None: no such split (TOFU: utility is read on the retain split). MUSE: the
    retain articles' questions (``retain_qa``, ``"qa"``), whose teacher-forced extraction strength
    stands in for KnowMem on D_r during training."""
    model_train: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """``TrainConfig`` fields the family's target and retrained models override (MUSE: no early
    stop on key-token accuracy, ``muse_family.MUSE_FAMILY_FIELDS``); in the models' cache keys."""

    def __post_init__(self):
        """Raise :class:`InputError` naming the first bad field."""
        own = f"BenchmarkFamily {self.name!r}"
        if not (isinstance(self.name, str) and self.name):
            raise InputError(f"BenchmarkFamily.name must be a non-empty string, got {self.name!r}")
        if self.encoding not in ENCODERS:
            raise InputError(f"{own}: encoding must be one of {list(ENCODERS)}, got {self.encoding!r}")
        if not (isinstance(self.forget_splits, tuple) and self.forget_splits
                and all(isinstance(s, str) and s for s in self.forget_splits)):
            raise InputError(f"{own}: forget_splits must be a non-empty tuple of split names, "
                             f"got {self.forget_splits!r}")
        for field_name in ("retain_for", "eval_roles", "splits_to_load"):
            if not callable(getattr(self, field_name)):
                raise InputError(f"{own}: {field_name} must be callable, got {getattr(self, field_name)!r}")
        utility_prefixes = ("retain_", "utility_") if self.utility_split is not None else ("retain_",)
        for field_name, prefixes in (("efficacy", ("forget_",)), ("utility", utility_prefixes)):
            value = getattr(self, field_name)
            if not (isinstance(value, str) and any(value.startswith(p) and len(value) > len(p) for p in prefixes)):
                raise InputError(f"{own}: {field_name} must be a periodic-evaluation column "
                                 f"{' or '.join(repr(p + '<reading>') for p in prefixes)}, got {value!r}")
        if self.utility_split is not None and not callable(self.utility_split):
            raise InputError(f"{own}: utility_split must be callable or None, got {self.utility_split!r}")
        if not (isinstance(self.metrics, tuple) and all(isinstance(m, str) and m for m in self.metrics)):
            raise InputError(f"{own}: metrics must be a tuple of metric names, got {self.metrics!r}")
        for field_name in ("load", *(["model_rows"] if self.model_rows is not None else []),
                           *(["tokenizer_rows"] if self.tokenizer_rows is not None else [])):
            if not callable(getattr(self, field_name)):
                raise InputError(f"{own}: {field_name} must be callable, got {getattr(self, field_name)!r}")
        if (self.model_rows is None) != (self.tokenizer_rows is None):
            raise InputError(f"{own}: model_rows and tokenizer_rows go together (both None: TOFU's recipe)")
        if not isinstance(self.config_type, type):
            raise InputError(f"{own}: config_type must be a class, got {self.config_type!r}")

    def check_forget_split(self, forget_split: str) -> str:
        """``forget_split`` if it is one of :attr:`forget_splits`; else :class:`InputError` naming
        it, the family and the valid names."""
        if forget_split not in self.forget_splits:
            raise InputError(f"unknown forget split {forget_split!r} for benchmark family "
                             f"{self.name!r}; valid: {list(self.forget_splits)}")
        return forget_split

    def training_splits(self, forget_split: str) -> dict[str, str]:
        """``{"forget": forget_split, "retain": its retain split}``: the two splits the loop
        trains on and evaluates periodically (role -> split name)."""
        return {"forget": self.check_forget_split(forget_split), "retain": self.retain_for(forget_split)}

    def evaluation_splits(self, benchmark: Mapping, forget_split: str) -> dict[str, str]:
        """``{role: split}`` the final metrics read for ``forget_split`` on ``benchmark``
        (:attr:`eval_roles`)."""
        return self.eval_roles(benchmark, forget_split)

    def load_splits(self, source: str, forget_split: str) -> list[str]:
        """The splits an experiment on ``forget_split`` loads from ``source`` (:attr:`splits_to_load`)."""
        self.check_forget_split(forget_split)
        return self.splits_to_load(source, forget_split)

    def encode(self, tokenizer, rows, prompt_format: str | PromptFormat = "qa",
               max_length: int | None = None) -> list[dict]:
        """``rows`` (a split) as labelled sequences in ``batching.encode_dataset``'s layout, by
        this family's :attr:`encoding` (:data:`ENCODERS`)."""
        return ENCODERS[self.encoding](tokenizer, rows, prompt_format, max_length)

    def matched_columns(self) -> dict[str, str]:
        """``{"retain_col": utility, "forget_col": efficacy}``: the keyword arguments of
        ``experiments.matched.forget_at_matched_retain`` for this family."""
        return {"retain_col": self.utility, "forget_col": self.efficacy}

    def load_benchmark(self, source: str, forget_split: str, config=None, data_dir=None):
        """The splits an experiment on ``forget_split`` needs (:meth:`load_splits`), loaded by
        :attr:`load` from ``source`` with ``config`` (an instance of :attr:`config_type`, or None
        for the default). Raises :class:`InputError` for a config of another type."""
        if config is not None and not isinstance(config, self.config_type):
            raise InputError(f"benchmark family {self.name!r} is configured by a {self.config_type.__name__}, "
                             f"got a {type(config).__name__}")
        splits = self.load_splits(source, forget_split)
        return self.load(source, splits=splits, config=config if config is not None else self.config_type(),
                         data_dir=data_dir)

    def check_metrics(self, names: Iterable[str]) -> tuple[str, ...]:
        """``names`` as a tuple if this family supports each of them (:attr:`metrics`); else
        :class:`InputError` naming the first unsupported one and the valid ones."""
        names = tuple(names)
        for name in names:
            if name not in self.metrics:
                raise InputError(f"benchmark family {self.name!r} has no final metric {name!r}; "
                                 f"valid: {list(self.metrics)}")
        return names


TOFU = BenchmarkFamily(
    name="tofu",
    description="TOFU-shaped QA about fictitious authors: our synthetic benchmark and the real "
                "locuslab/TOFU (docs/methods.md#real-tofu)",
    encoding="qa",
    forget_splits=tuple(f"forget{p:02d}" for p in FORGET_PERCENTS),
    retain_for=retain_split_for,
    eval_roles=eval_splits,
    splits_to_load=benchmark_splits,
    efficacy="forget_es",
    utility="retain_es",
    metrics=("es", "es_paraphrased", "em", "probability", "rouge", "truth_ratio", "forget_quality",
             "model_utility", "mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus",
             "mia_reference", "calibrated_es"),
)
"""The TOFU family (both sources, ``"synthetic"`` and ``"tofu"``): QA rows, forget01/05/10 beside
retain99/95/90, evaluation splits of ``tofu.eval_splits``, forget ES compared at matched retain ES."""

MUSE = BenchmarkFamily(**MUSE_FAMILY_FIELDS)
"""The MUSE-shaped family (``data.muse``): fictional news articles as raw text (every token a
label), one forget split ``forget`` beside ``retain``, evaluated by VerbMem, KnowMem and PrivLeak
(``evaluation.muse``; docs/methods.md#muse-shaped-corpus)."""

FAMILIES: dict[str, BenchmarkFamily] = {"tofu": TOFU, "muse": MUSE}
"""Every benchmark family by name."""


def get_family(name: str | BenchmarkFamily) -> BenchmarkFamily:
    """The family registered as ``name`` (a family is returned as it is); an unknown name raises
    :class:`InputError` naming it and the valid ones."""
    if isinstance(name, BenchmarkFamily):
        return name
    if not isinstance(name, str) or name not in FAMILIES:
        raise InputError(f"unknown benchmark family {name!r}; valid: {sorted(FAMILIES)}")
    return FAMILIES[name]
