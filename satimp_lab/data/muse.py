"""A MUSE-shaped synthetic corpus: fictional local news articles with their facts' character spans
known exactly, questions about them, and the benchmark family that reads it (issue 24, item 1).

MUSE (Shi et al., 2024) asks whether a model can unlearn *text it read*: its targets were
fine-tuned on news articles (BBC) or books, and it scores verbatim memory (VerbMem: continue a
forget passage from its first tokens), knowledge (KnowMem: answer questions about the forget and
the retain corpus) and privacy leakage (PrivLeak: a membership-inference AUC on forget vs held-out
passages). This module builds an offline stand-in, generated from a seed in milliseconds and
byte-identical for a seed (:func:`write_muse`), for the tiny from-scratch tiers.

**Content.** Every article is a short local news report about an invented town: a bridge opening,
a summer festival, a mayoral election, a new factory, an archaeological find or a storm
(``muse_world.TOPICS``). It is five or six sentences, each one of two wordings, with *fact slots*: people
(names made by ``data.benchmark``'s syllable generator), places (invented towns, one per article),
organisations (an invented word and a kind: "Velmar Engineering", "the Drouk Party"), dates and
numbers. Harmless by construction: nothing in it names a real person, place or organisation, and
the events are everyday ones. Words that vary between articles but are not facts of those kinds
(the object found, a factory's product) come from small pools and are not annotated.

**Rows.** A text split (``forget``, ``retain``, ``holdout``, and ``full`` = retain + forget, what a
target trains on) has rows of :data:`ARTICLE_FIELDS`: ``doc_id`` (an integer, unique across the
corpus), ``topic``, ``text``, ``key_spans`` (the ``[start, end)`` character span of every
occurrence of a fact in ``text``, in order) and ``key_facts`` (the slot each span fills, e.g.
``person``, ``date``, ``votes``; its kind is ``muse_world.SLOT_KINDS``). That is the layout
``data.families.encode_text_dataset`` reads (``text``, ``key_spans``, ``doc_id``; the extra fields
are ignored there), so annotation importance works on text as on TOFU answers. A QA split
(``forget_qa``, ``retain_qa``, ``holdout_qa``) has rows of :data:`QA_FIELDS`: ``qa_id``, ``doc_id``
(the article asked about), ``question``, ``answer`` (a fact's exact text), ``key_spans``
(``[[0, len(answer)]]``: the whole answer is the fact), ``answer_span`` (where the answer stands in
its article: ``text[start:end] == answer``) and ``fact_type`` (the slot). That is what
``batching.encode_dataset`` reads (``question``, ``answer``, ``key_spans``, ``qa_id``) and
``schema.row_problem`` accepts; the TOFU-only fields (paraphrases, perturbed answers, author ids)
are absent. ``holdout_qa`` is KnowMem's floor: questions about articles no model trained on.

**Sizes** (:class:`MuseConfig` defaults): 10 forget, 30 retain and 10 held-out articles of 63-80
words (mean 71), 3 questions each. Token counts depend on the tokenizer. With a 1024-token BPE
trained on the corpus's own texts (how a from-scratch tier gets its tokenizer,
``models.build.train_tokenizer``) an article is 92-129 tokens (mean ~110): forget ~1,100, retain
~3,300, holdout ~1,100, so the training text (forget + retain) is ~4,400 tokens and nearly every
article is one block at the tiny tier's ``max_length`` of 128 (``encode_text`` cuts after
``max_length - 1`` tokens behind the BOS), so VerbMem's prefix and continuation lie in one block.
With the tiny tier's shipped tokenizer (trained on the TOFU-shaped text, it spends ~2.8 tokens a
word on news wording) an article is 173-224 tokens: forget ~2,000, retain ~6,000, holdout ~2,000.
Either way the training text is at most what a TOFU-shaped tiny target memorises today (its 440
training rows, ``full`` + ``world_facts``, hold 7,090 labelled answer tokens in 14,642 positions,
memorised in 14 epochs): every text token is a label, so ~4,400-8,000 labelled tokens in as many
positions is about the same work per epoch (how many epochs verbatim memorisation takes is
measured when the reference models are trained, issue 24 item 2). Why 10 + 30 + 10: the forget
set is a quarter of the training text (enough forget tokens for stable per-token readings on a
tiny corpus; TOFU's forget10 is a tenth), the retain set gives the retrained model (retain only)
five articles of every topic (so forget articles differ from what it read by their
facts and wording choices, not by a topic it never read), and as many held-out as forget articles give
PrivLeak's AUC 10 x 10 = 100 member/non-member pairs (a resolution of 0.01); each size is one
field away.

**The family** (:data:`MUSE`): one forget split ``forget`` beside ``retain``; evaluation roles
``forget``, ``retain``, ``holdout``, ``forget_qa``, ``retain_qa``, ``holdout_qa``; raw-text
encoding. MUSE's own metrics (VerbMem on D_f, KnowMem on D_f and D_r, PrivLeak) are computed by
the evaluation stage on the final model (the MUSE-shaped study: at the matched point); during
training runs are matched on the loop's per-token readings, the forget text's ``forget_es`` where
the retain questions' ``utility_es`` falls to the matched level (``data.muse_family``).

This module is on the data floor: it imports ``errors``, ``data`` modules, the standard library
and ``datasets``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets

from ..errors import InputError, check_int
from .benchmark import MONTHS, _word
from .corpus_files import (answer_fact_problem, check_count, is_int, key_spans_problem, link_questions,
                           read_manifest, read_split_rows, write_corpus_files)
from .muse_world import NUMBER_RANGES, SLOT_KINDS, TOPICS
from .schema import row_problem

__all__ = ["MuseConfig", "ARTICLE_FIELDS", "QA_FIELDS",
           "TEXT_SPLITS", "QA_SPLITS", "MUSE_SPLITS", "MUSE_FILES", "MUSE_FORMAT",
           "Names", "generate_muse", "muse_to_datasets", "load_muse", "write_muse", "read_muse"]


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class MuseConfig:
    """Size and seed of the MUSE-shaped corpus (module docstring: why these sizes)."""

    n_forget: int = 10
    """Articles in ``forget`` (D_f): the target reads them, the retrained model never does. 10
    articles are ~1,100 tokens of a BPE trained on the corpus, a quarter of the training text."""
    n_retain: int = 30
    """Articles in ``retain`` (D_r): every model reads them. With ``n_forget``: ~4,400 tokens of
    training text (~8,000 with the tiny tier's TOFU-trained tokenizer), at most the 7,090
    labelled tokens a TOFU-shaped tiny target memorises."""
    n_holdout: int = 10
    """Articles no model reads: the non-members of PrivLeak (as many as the forget articles, so
    its AUC is over n_forget x n_holdout pairs)."""
    qa_per_article: int = 3
    """Questions per article (KnowMem), each about a different fact; at most the smallest number
    of questionable facts of a topic (``muse_world.TOPICS``)."""
    seed: int = 0
    """Everything is generated from this seed: same seed, byte-identical files."""

    def __post_init__(self):
        """Raise :class:`~satimp_lab.errors.InputError` naming the first bad field."""
        for name in ("n_forget", "n_retain", "n_holdout", "qa_per_article"):
            check_int("MuseConfig", name, getattr(self, name), minimum=1)
        check_int("MuseConfig", "seed", self.seed)
        most = min(len(topic["questions"]) for topic in TOPICS.values())
        if self.qa_per_article > most:
            raise InputError(f"MuseConfig.qa_per_article must be in [1, {most}], got {self.qa_per_article}")


ARTICLE_FIELDS = ("doc_id", "topic", "text", "key_spans", "key_facts")
"""The fields of a text row (``forget``, ``retain``, ``holdout``, ``full``)."""
QA_FIELDS = ("qa_id", "doc_id", "question", "answer", "key_spans", "answer_span", "fact_type")
"""The fields of a QA row (``forget_qa``, ``retain_qa``, ``holdout_qa``)."""
TEXT_SPLITS = ("forget", "retain", "holdout")
"""The article splits written to disk (``full`` = retain + forget is built on load)."""
QA_SPLITS = ("forget_qa", "retain_qa", "holdout_qa")
"""The question splits: questions about the articles of ``forget``, ``retain``, ``holdout``."""
MUSE_SPLITS = ("full", *TEXT_SPLITS, *QA_SPLITS)
"""Every split :func:`load_muse` gives."""
MUSE_FILES = (*(f"{s}.jsonl" for s in TEXT_SPLITS + QA_SPLITS), "manifest.json")
"""The files of a corpus folder (:func:`write_muse`)."""
MUSE_FORMAT = "satimp-lab muse corpus v1"
"""The ``format`` a corpus folder's ``manifest.json`` names."""


# ----------------------------------------------------------------------------------------------
# generation


def _render(template: str, values: Mapping[str, str], offset: int,
            spans: list[list[int]], facts: list[str]) -> str:
    """``template`` with its slots filled from ``values``; the span (shifted by ``offset``) and
    slot of every fact slot are appended to ``spans`` and ``facts``."""
    out, rest = "", template
    while "{" in rest:
        before, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        out += before
        name = "org" if slot == "Org" else slot
        value = values[name]
        if name in SLOT_KINDS:
            spans.append([offset + len(out), offset + len(out) + len(value)])
            facts.append(name)
        out += value
    return out + rest


class Names:
    """Invented names, unique across a corpus and none inside another (``data.benchmark``'s syllable
    generator), drawn from ``rng``; the WMDP-shaped corpus (``data.wmdp``) names with it too."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.taken: set[str] = set()

    def unique(self, make: Callable[[], str]) -> str:
        """The first value of ``make()`` not taken, not inside a taken one and holding none."""
        while True:
            value = make()
            if value not in self.taken and not any(value in t or t in value for t in self.taken):
                self.taken.add(value)
                return value

    def person(self) -> str:
        return self.unique(lambda: f"{_word(self.rng, (1, 2)).title()} {_word(self.rng, (2, 3)).title()}")

    def place(self) -> str:
        return self.unique(lambda: _word(self.rng, (2, 3)).title())

    def org_word(self) -> str:
        return self.unique(lambda: _word(self.rng, (1, 2)).title())


def _article(rng: random.Random, names: Names, topic: str, doc_id: int, first_qa_id: int,
             n_questions: int) -> tuple[dict, list[dict], dict]:
    """One article of ``topic``: its text row, its QA rows and its facts ({slot: value})."""
    spec = TOPICS[topic]
    suffix, extra = rng.choice(spec["orgs"])
    values: dict[str, str] = {
        "place": names.place(), "person": names.person(), "person2": names.person(),
        "org": f"{names.org_word()} {suffix}",
        "date": f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1950, 2019)}",
        "since": str(rng.randint(1900, 1949)), "plan": str(rng.randint(2020, 2029)),
        **{slot: str(rng.randint(*bounds)) for slot, bounds in NUMBER_RANGES.items()},
        **extra,
        **{slot: rng.choice(pool) for slot, pool in spec["fillers"].items()},
    }
    text = ""
    spans: list[list[int]] = []
    facts: list[str] = []
    for wordings in spec["sentences"]:
        if text:
            text += " "
        text += _render(rng.choice(wordings), values, len(text), spans, facts)
    used = {slot: values[slot] for slot in dict.fromkeys(facts)}
    qa = []
    for k, slot in enumerate(rng.sample(sorted(spec["questions"]), n_questions)):
        start, end = spans[facts.index(slot)]  # the fact's first occurrence
        answer = text[start:end]
        qa.append({"qa_id": first_qa_id + k, "doc_id": doc_id,
                   "question": spec["questions"][slot].format(**values), "answer": answer,
                   "key_spans": [[0, len(answer)]], "answer_span": [start, end], "fact_type": slot})
    row = {"doc_id": doc_id, "topic": topic, "text": text, "key_spans": spans, "key_facts": facts}
    return row, qa, used


def generate_muse(config: MuseConfig | None = None) -> dict:
    """The corpus as plain Python data: ``{split: [rows]}`` for :data:`TEXT_SPLITS` and
    :data:`QA_SPLITS`, and ``"facts"``: ``[{"doc_id", "topic", "facts": {slot: value}}]`` per
    article (what its key spans name; not written to disk).

    ``doc_id``: retain articles first (0 ..), then forget, then holdout (as TOFU's forget authors
    are the last of the training ones); ``qa_id`` counts the questions in the same order. Topics
    are dealt round-robin from a shuffled order within each split, so every split of at least
    ``len(TOPICS)`` articles has every topic (the retrained model reads every topic). Deterministic:
    the same config gives identical output on any machine."""
    config = config or MuseConfig()
    rng = random.Random(config.seed)
    names = Names(rng)
    out: dict = {split: [] for split in (*TEXT_SPLITS, *QA_SPLITS)}
    out["facts"] = []
    doc_id = qa_id = 0
    for split, count in (("retain", config.n_retain), ("forget", config.n_forget),
                         ("holdout", config.n_holdout)):
        order = sorted(TOPICS)
        rng.shuffle(order)
        for i in range(count):
            topic = order[i % len(order)]
            row, qa, facts = _article(rng, names, topic, doc_id, qa_id, config.qa_per_article)
            out[split].append(row)
            out[f"{split}_qa"] += qa
            out["facts"].append({"doc_id": doc_id, "topic": topic, "facts": facts})
            doc_id, qa_id = doc_id + 1, qa_id + len(qa)
    return out


# ----------------------------------------------------------------------------------------------
# as datasets

_TEXT_FEATURES = datasets.Features({
    "doc_id": datasets.Value("int64"), "topic": datasets.Value("string"), "text": datasets.Value("string"),
    "key_spans": datasets.Sequence(datasets.Sequence(datasets.Value("int64"))),
    "key_facts": datasets.Sequence(datasets.Value("string")),
})
_QA_FEATURES = datasets.Features({
    "qa_id": datasets.Value("int64"), "doc_id": datasets.Value("int64"),
    "question": datasets.Value("string"), "answer": datasets.Value("string"),
    "key_spans": datasets.Sequence(datasets.Sequence(datasets.Value("int64"))),
    "answer_span": datasets.Sequence(datasets.Value("int64")), "fact_type": datasets.Value("string"),
})


def muse_to_datasets(corpus: Mapping, splits=None) -> datasets.DatasetDict:
    """``corpus`` (:func:`generate_muse` or :func:`read_muse`) as a ``datasets.DatasetDict`` of
    ``splits`` (default: :data:`MUSE_SPLITS`; ``full`` is retain + forget, in doc_id order).
    Raises :class:`InputError` for an unknown split name."""
    splits = list(MUSE_SPLITS if splits is None else splits)
    unknown = [s for s in splits if s not in MUSE_SPLITS]
    if unknown:
        raise InputError(f"unknown MUSE split(s) {unknown}; valid: {list(MUSE_SPLITS)}")
    out = {}
    for split in splits:
        if split == "full":
            rows = sorted(corpus["retain"] + corpus["forget"], key=lambda r: r["doc_id"])
        else:
            rows = corpus[split]
        fields_, features = (QA_FIELDS, _QA_FEATURES) if split in QA_SPLITS else (ARTICLE_FIELDS, _TEXT_FEATURES)
        out[split] = datasets.Dataset.from_list([{f: row[f] for f in fields_} for row in rows],
                                                features=features)
    return datasets.DatasetDict(out)


def load_muse(splits=None, config: MuseConfig | None = None,
              data_dir: str | Path | None = None) -> datasets.DatasetDict:
    """The corpus as a ``datasets.DatasetDict`` {split: Dataset} of ``splits`` (default: every one
    of :data:`MUSE_SPLITS`): generated from ``config`` (default :class:`MuseConfig`), or read from
    ``data_dir`` (a folder of :func:`write_muse`; ``config`` is then not used). Raises
    :class:`InputError` for an unknown split, and the errors of :func:`read_muse`."""
    corpus = read_muse(data_dir) if data_dir is not None else generate_muse(config)
    return muse_to_datasets(corpus, splits)


# ----------------------------------------------------------------------------------------------
# files


def write_muse(data_dir: str | Path, config: MuseConfig | None = None) -> Path:
    """Generate the corpus from ``config`` and write it to ``data_dir`` (:data:`MUSE_FILES`): one
    JSON Lines file per split of :data:`TEXT_SPLITS` and :data:`QA_SPLITS` (sorted keys), and
    ``manifest.json`` (the format, the config, the rows of each split). Byte-identical for a
    config. Returns ``data_dir``."""
    config = config or MuseConfig()
    return write_corpus_files(data_dir, generate_muse(config), (*TEXT_SPLITS, *QA_SPLITS),
                              {"format": MUSE_FORMAT, "config": asdict(config)})


def _article_problem(row: dict) -> str | None:
    """The first problem of a text row, as ``"field 'x': ..."``; None if valid."""
    if not (is_int(row["doc_id"]) and row["doc_id"] >= 0):
        return f"field 'doc_id': must be an integer >= 0, got {row['doc_id']!r}"
    for name in ("topic", "text"):
        if not (isinstance(row[name], str) and row[name].strip()):
            return f"field {name!r}: must be a non-empty string, got {row[name]!r}"
    if row["topic"] not in TOPICS:
        return f"field 'topic': unknown topic {row['topic']!r}; valid: {sorted(TOPICS)}"
    return key_spans_problem(row, SLOT_KINDS)


def _qa_problem(row: dict) -> str | None:
    """The first problem of a QA row on its own, as ``"field 'x': ..."``; None if valid."""
    problem = row_problem(row)
    if problem:
        return problem
    for name in ("qa_id", "doc_id"):
        if not (is_int(row[name]) and row[name] >= 0):
            return f"field {name!r}: must be an integer >= 0, got {row[name]!r}"
    return answer_fact_problem(row, SLOT_KINDS)


def read_muse(data_dir: str | Path) -> dict:
    """Read a corpus folder written by :func:`write_muse`: ``{split: [rows]}`` for
    :data:`TEXT_SPLITS` and :data:`QA_SPLITS`, and ``"config"``: its :class:`MuseConfig`.

    Checks every row (errors name the file, the line and the field, as
    :class:`~satimp_lab.errors.InputError`): every field of :data:`ARTICLE_FIELDS` /
    :data:`QA_FIELDS` present and well typed; key spans inside the text, one fact slot per span;
    QA rows valid for ``schema.row_problem``; a ``doc_id`` used by one article only; every QA
    row's article in the matching text split (``forget_qa`` -> ``forget``), with
    ``text[answer_span] == answer``; unique ``qa_id``\\ s; and each split's row count as the
    manifest says (a cut file). A missing file raises :class:`InputError` naming it."""
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir / "manifest.json", fmt=MUSE_FORMAT, config_type=MuseConfig,
                             splits=(*TEXT_SPLITS, *QA_SPLITS), what="MUSE corpus", writer="write_muse")
    corpus: dict = {"config": manifest["config"]}
    articles: dict[int, tuple[str, dict]] = {}
    for split in TEXT_SPLITS:
        path = data_dir / f"{split}.jsonl"
        corpus[split] = read_split_rows(path, ARTICLE_FIELDS, _article_problem, what="MUSE corpus",
                                        writer="write_muse", files=MUSE_FILES)
        check_count(data_dir, split, corpus[split], manifest)
        for row in corpus[split]:
            if row["doc_id"] in articles:
                raise InputError(f"{path}: field 'doc_id': {row['doc_id']} is also the doc_id of an article "
                                 f"of {articles[row['doc_id']][0]!r}; every article needs its own")
            articles[row["doc_id"]] = (split, row)
    qa_ids: set[int] = set()
    for split in QA_SPLITS:
        path = data_dir / f"{split}.jsonl"
        corpus[split] = read_split_rows(path, QA_FIELDS, _qa_problem, what="MUSE corpus",
                                        writer="write_muse", files=MUSE_FILES)
        check_count(data_dir, split, corpus[split], manifest)
        link_questions(path, corpus[split], articles, split[:-len("_qa")], qa_ids, noun="article",
                       right=lambda row: row["answer"], right_name="the answer")
    return corpus
