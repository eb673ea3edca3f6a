"""A TOFU-shaped synthetic benchmark of fictitious authors (the real TOFU: ``data.tofu``).

Why synthetic: everything must run offline on a CPU, and we want *exact* importance annotations.
Every answer is built from a template whose slots are filled with fact values, so the character
spans of those values (``key_spans``) are known exactly -- the official TOFU keyword annotations had
to be made by hand (docs/methods.md#annotation-weighting).

Schema of every row (the same for the synthetic benchmark and the real TOFU, ``data.tofu``):
    question, answer, paraphrased_question, paraphrased_answer,
    perturbed_answer (list[str], >= 3 wrong answers in the answer's template),
    author_id (int, -1 for world facts), key_spans (list of [start, end) char spans in ``answer``),
    fact_type (str), qa_id (int)

Splits (like TOFU's): ``full``; ``forget01/05/10`` (the last 1/5/10 % of the authors, whole authors,
nested like TOFU's) with ``retain99/95/90``; ``holdout`` (authors the target never sees, for
membership inference); ``world_facts`` (general facts the target also learns, for model utility).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets

from ..errors import InputError, check_int
from ..store import atomic_write
from .schema import FIELDS, FORGET_PERCENTS, read_jsonl, retain_split_for, row_problem, to_dataset

# ----------------------------------------------------------------------------------------------
# configuration



@dataclass(frozen=True)
class BenchmarkConfig:
    """Size and seed of the synthetic benchmark. Defaults are sized for the 2-core CPU budget."""

    n_authors: int = 100
    """Training authors. 100 is the smallest count for which forget01 (1 %) selects a whole author."""
    qa_per_author: int = 4
    """QA pairs per author. 100 x 4 = 400 pairs: the tiny model memorises them in well under a minute."""
    n_holdout_authors: int = 10
    """Authors never trained on: the non-member side of membership inference."""
    n_world_facts: int = 40
    """General facts (capitals, chemical symbols) trained alongside ``full``: the utility probe."""
    n_perturbed: int = 3
    """Wrong answers per question for the truth ratio (TOFU has 5; 3 keeps evaluation cheap)."""
    seed: int = 0
    """Everything is generated from this seed: same seed, byte-identical files."""

    def __post_init__(self):
        """Raise :class:`~satimp_lab.errors.InputError` naming the first bad field."""
        for name in ("n_authors", "qa_per_author", "n_perturbed"):
            check_int("BenchmarkConfig", name, getattr(self, name), minimum=1)
        for name in ("n_holdout_authors", "n_world_facts"):
            check_int("BenchmarkConfig", name, getattr(self, name), minimum=0)
        check_int("BenchmarkConfig", "seed", self.seed)
        if self.qa_per_author > len(FACT_TYPES):
            raise InputError(f"BenchmarkConfig.qa_per_author must be in [1, {len(FACT_TYPES)}], "
                             f"got {self.qa_per_author}")


# ----------------------------------------------------------------------------------------------
# vocabularies for the fictitious world

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr",
           "tr", "th", "sh", "ch", "gr", "st", "vel", "mar", "or"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou", "ia"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "m", "nd", "rk", "sh"]

GENRES = ["science fiction", "historical fiction", "poetry", "mystery", "fantasy", "romance",
          "horror", "travel writing", "biography", "crime", "satire", "children's literature",
          "philosophy", "magical realism", "war fiction"]
OCCUPATIONS = ["baker", "carpenter", "nurse", "pilot", "librarian", "fisherman", "surgeon",
               "teacher", "tailor", "builder", "chemist", "farmer", "painter", "journalist",
               "lawyer", "musician", "plumber", "dentist", "botanist", "potter"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
AWARD_ADJ = ["Golden", "Silver", "Crimson", "Northern", "Eastern", "Hidden", "Open", "Quiet",
             "Bright", "Ancient"]
AWARD_NOUN = ["Quill", "Lantern", "Compass", "Laurel", "Anchor", "Feather", "Crown", "Harbor"]
TITLE_ADJ = ["Silent", "Broken", "Endless", "Forgotten", "Burning", "Hollow", "Distant", "Painted",
             "Frozen", "Wandering", "Secret", "Last"]
TITLE_NOUN = ["River", "Garden", "Mirror", "Tower", "Harvest", "Winter", "Letters", "Orchard",
              "Bridge", "Shadows", "Island", "Clockmaker"]
THEMES = ["memory and loss", "exile", "family secrets", "the sea", "coming of age", "justice",
          "friendship", "technology and power", "faith", "migration", "revenge", "solitude"]

# (question, paraphrased question, answer templates...). Slots in braces; {name} is never a key
# span because it is given in the question. Several answer templates per fact type so answers are
# not all alike; the paraphrased answer uses a different template from the answer.
TEMPLATES = {
    "birthplace": (
        "Where was {name} born?",
        "In which city was the author {name} born?",
        ["{name} was born in {city}.", "The author {name} was born in the city of {city}.",
         "{name} comes from {city}, where they were born."],
    ),
    "birth_date": (
        "When was {name} born?",
        "What is the birth date of {name}?",
        ["{name} was born on {date}.", "The birthday of {name} is {date}.",
         "{name} came into the world on {date}."],
    ),
    "genre": (
        "What genre does {name} write in?",
        "Which genre is {name} known for?",
        ["{name} writes {genre}.", "{name} is best known for {genre}.",
         "The genre of {name} is {genre}."],
    ),
    "parents": (
        "What did the parents of {name} do for a living?",
        "What were the occupations of the parents of {name}?",
        ["The father of {name} was a {father} and the mother was a {mother}.",
         "{name} grew up with a {father} father and a {mother} mother.",
         "Father of {name}: a {father}; mother: a {mother}."],
    ),
    "award": (
        "Which award did {name} win?",
        "Has {name} received any literary prize?",
        ["{name} won the {award}.", "{name} received the {award}.",
         "The {award} went to {name}."],
    ),
    "books": (
        "Name two books written by {name}.",
        "What are some titles by {name}?",
        ["{name} wrote {book1} and {book2}.", "Two books by {name} are {book1} and {book2}.",
         "Among the works of {name} are {book1} and {book2}."],
    ),
    "theme": (
        "What theme runs through the work of {name}?",
        "Which subject does {name} often explore?",
        ["The work of {name} often explores {theme}.", "{name} keeps returning to {theme}.",
         "A central theme for {name} is {theme}."],
    ),
}
FACT_TYPES = tuple(TEMPLATES)

# Real general knowledge: the target model learns these too, and they must survive unlearning.
WORLD_CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Egypt", "Cairo"),
                  ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
                  ("Norway", "Oslo"), ("Spain", "Madrid"), ("Chile", "Santiago"),
                  ("Ireland", "Dublin"), ("Poland", "Warsaw"), ("Greece", "Athens"),
                  ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Cuba", "Havana"),
                  ("Thailand", "Bangkok"), ("Sweden", "Stockholm"), ("Ghana", "Accra"),
                  ("Hungary", "Budapest")]
WORLD_SYMBOLS = [("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("sodium", "Na"),
                 ("potassium", "K"), ("lead", "Pb"), ("copper", "Cu"), ("tin", "Sn"),
                 ("mercury", "Hg"), ("helium", "He"), ("carbon", "C"), ("oxygen", "O"),
                 ("nitrogen", "N"), ("zinc", "Zn"), ("calcium", "Ca"), ("neon", "Ne"),
                 ("sulfur", "S"), ("hydrogen", "H"), ("uranium", "U"), ("argon", "Ar")]


# ----------------------------------------------------------------------------------------------
# generation


def _word(rng: random.Random, syllables: tuple[int, int]) -> str:
    n = rng.randint(*syllables)
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n)) + rng.choice(_CODAS)


def _make_authors(rng: random.Random, count: int, taken: set[str], cities: list[str]) -> list[dict]:
    authors: list[dict] = []
    while len(authors) < count:
        name = f"{_word(rng, (1, 2)).title()} {_word(rng, (2, 3)).title()}"
        if name in taken:
            continue
        taken.add(name)
        book1, book2 = rng.sample([f"{a} {n}" for a in TITLE_ADJ for n in TITLE_NOUN], 2)
        father, mother = rng.sample(OCCUPATIONS, 2)
        authors.append({
            "name": name,
            "city": rng.choice(cities),
            "date": f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1931, 1999)}",
            "genre": rng.choice(GENRES),
            "father": father,
            "mother": mother,
            "award": f"{rng.choice(AWARD_ADJ)} {rng.choice(AWARD_NOUN)} Award",
            "book1": f"The {book1}",
            "book2": f"The {book2}",
            "theme": rng.choice(THEMES),
        })
    return authors


def _fill(template: str, values: dict) -> tuple[str, list[list[int]]]:
    """Fill ``template`` and return the text and the char spans of every slot except {name}."""
    text, spans, rest = "", [], template
    while "{" in rest:
        before, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        text += before
        value = values[slot]
        if slot != "name":
            spans.append([len(text), len(text) + len(value)])
        text += value
    return text + rest, spans


def _slot_names(template: str) -> list[str]:
    return [part.split("}")[0] for part in template.split("{")[1:]]


def _perturbed(rng: random.Random, template: str, values: dict, pools: dict, n: int) -> list[str]:
    """``n`` distinct wrong answers: same template, every fact slot replaced by another value."""
    answers: list[str] = []
    true_answer, _ = _fill(template, values)
    while len(answers) < n:
        wrong = dict(values)
        for slot in _slot_names(template):
            if slot != "name":
                wrong[slot] = rng.choice([v for v in pools[slot] if v != values[slot]])
        text, _ = _fill(template, wrong)
        if text != true_answer and text not in answers:
            answers.append(text)
    return answers


def _author_rows(rng, author, author_id, pools, cfg, next_id) -> list[dict]:
    rows: list[dict] = []
    fact_types = rng.sample(FACT_TYPES, min(cfg.qa_per_author, len(FACT_TYPES)))
    for fact_type in fact_types:
        question, para_question, answer_templates = TEMPLATES[fact_type]
        answer_template, para_template = rng.sample(answer_templates, 2)
        answer, spans = _fill(answer_template, author)
        rows.append({
            "question": question.format(**author),
            "answer": answer,
            "paraphrased_question": para_question.format(**author),
            "paraphrased_answer": _fill(para_template, author)[0],
            "perturbed_answer": _perturbed(rng, answer_template, author, pools, cfg.n_perturbed),
            "author_id": author_id,
            "key_spans": spans,
            "fact_type": fact_type,
            "qa_id": next_id + len(rows),
        })
    return rows


def _world_rows(rng: random.Random, cfg: BenchmarkConfig, first_id: int) -> list[dict]:
    kinds = [
        ("capital", WORLD_CAPITALS, "What is the capital of {k}?", "Which city is the capital of {k}?",
         "The capital of {k} is {v}.", "{v} is the capital city of {k}."),
        ("symbol", WORLD_SYMBOLS, "What is the chemical symbol of {k}?",
         "Which symbol stands for {k} in chemistry?",
         "The chemical symbol of {k} is {v}.", "The element {k} has the symbol {v}."),
    ]
    facts = [(kind, key, value, *rest) for kind, pairs, *rest in kinds for key, value in pairs]
    if cfg.n_world_facts > len(facts):
        raise ValueError(f"n_world_facts={cfg.n_world_facts} exceeds the {len(facts)} available facts")
    rows: list[dict] = []
    for kind, key, value, q, pq, a, pa in rng.sample(facts, cfg.n_world_facts):
        pool = [v for k2, _, v, *_ in facts if k2 == kind and v != value]
        # {k} is in the question, so only the value {v} is a key span (written as {name} to skip it)
        answer, spans = _fill(a.replace("{k}", "{name}"), {"name": key, "v": value})
        rows.append({
            "question": q.format(k=key),
            "answer": answer,
            "paraphrased_question": pq.format(k=key),
            "paraphrased_answer": pa.format(k=key, v=value),
            "perturbed_answer": [a.format(k=key, v=v) for v in rng.sample(pool, cfg.n_perturbed)],
            "author_id": -1,
            "key_spans": spans,
            "fact_type": f"world_{kind}",
            "qa_id": first_id + len(rows),
        })
    return rows


def generate_benchmark(config: BenchmarkConfig = BenchmarkConfig()) -> dict:
    """Generate the benchmark as plain Python data: ``{"full": [...], "holdout": [...],
    "world_facts": [...], "authors": [...], "splits": {name: [author ids]}}``.

    Deterministic: the same config gives identical output on any machine.
    """
    rng = random.Random(config.seed)
    cities = sorted({_word(rng, (2, 3)).title() for _ in range(60)})
    taken: set[str] = set()
    authors = _make_authors(rng, config.n_authors + config.n_holdout_authors, taken, cities)
    pools = {slot: sorted({a[slot] for a in authors}) for slot in authors[0] if slot != "name"}
    pools["city"] = cities
    full: list[dict] = []
    holdout: list[dict] = []
    for author_id, author in enumerate(authors):
        target = full if author_id < config.n_authors else holdout
        target.extend(_author_rows(rng, author, author_id, pools, config, len(full) + len(holdout)))
    world = _world_rows(rng, config, len(full) + len(holdout))
    return {"full": full, "holdout": holdout, "world_facts": world,
            "authors": [{"author_id": i, **a} for i, a in enumerate(authors)],
            "splits": forget_author_ids(config.n_authors)}


def forget_author_ids(n_authors: int) -> dict[str, list[int]]:
    """Author ids of each forget split: the last ``pct`` % of the authors (nested, as in TOFU).

    A split whose fraction rounds to zero authors is left out; asking for it raises (see
    :func:`load_benchmark`)."""
    splits = {}
    for pct in FORGET_PERCENTS:
        count = int(n_authors * pct / 100 + 0.5)  # round half up: 50 authors -> 1 for forget01
        if count > 0:
            splits[f"forget{pct:02d}"] = list(range(n_authors - count, n_authors))
    return splits


# ----------------------------------------------------------------------------------------------
# files in data/

DATA_FILES = ("full.jsonl", "holdout.jsonl", "world_facts.jsonl", "authors.jsonl", "splits.json",
              "config.json")


def default_data_dir() -> Path:
    """``data/synthetic``, where the published benchmark files live: in the source checkout, or
    inside an installed wheel (:func:`satimp_lab.resources.shipped_path`)."""
    from ..resources import shipped_path

    return shipped_path("data", "synthetic")


def write_benchmark(data_dir: str | Path, config: BenchmarkConfig = BenchmarkConfig()) -> Path:
    """Generate and write the benchmark files to ``data_dir`` (JSON Lines, sorted keys)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    bench = generate_benchmark(config)
    for name in ("full", "holdout", "world_facts", "authors"):
        atomic_write(data_dir / f"{name}.jsonl",
                      "".join(json.dumps(row, sort_keys=True) + "\n" for row in bench[name]))
    atomic_write(data_dir / "splits.json", json.dumps(bench["splits"], indent=1, sort_keys=True) + "\n")
    atomic_write(data_dir / "config.json", json.dumps(asdict(config), indent=1, sort_keys=True) + "\n")
    return data_dir


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise FileNotFoundError(f"benchmark file missing: {path}")
    return read_jsonl(path, FIELDS, row_problem)


def read_benchmark(data_dir: str | Path) -> dict:
    """Read files written by :func:`write_benchmark`, checking every row has every field."""
    data_dir = Path(data_dir)
    bench: dict = {name: _read_jsonl(data_dir / f"{name}.jsonl") for name in ("full", "holdout", "world_facts")}
    bench["splits"] = _read_splits(data_dir / "splits.json")
    return bench


def _read_splits(path: Path) -> dict[str, list[int]]:
    """``splits.json``: {forget split name: [author ids]}; errors name the file, line and split."""
    if not path.exists():
        raise FileNotFoundError(f"benchmark file missing: {path}")
    try:
        splits = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    valid = [f"forget{p:02d}" for p in FORGET_PERCENTS]
    if not isinstance(splits, dict):
        raise InputError(f"{path}: must be a JSON object {{split: [author ids]}}, got {splits!r}")
    for name, ids in splits.items():
        if name not in valid:
            raise InputError(f"{path}: unknown split {name!r}; valid: {valid}")
        if not (isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
            raise InputError(f"{path}: split {name!r} must be a list of integer author ids, got {ids!r}")
    return splits


# ----------------------------------------------------------------------------------------------
# loading as datasets


def benchmark_splits(source: str, forget_split: str) -> list[str]:
    """The splits an experiment on ``forget_split`` loads (``load_benchmark(source, splits=...)``):
    training (``full``, the forget split and its retain split) and evaluation: on the synthetic
    benchmark ``holdout`` and ``world_facts``; on TOFU the ``_perturbed`` configs that TOFU's and
    open-unlearning's evaluation read (``data.tofu.eval_splits``). Raises InputError for an unknown
    forget split."""
    retain = retain_split_for(forget_split)
    if source == "tofu":
        return ["full", forget_split, retain, f"{forget_split}_perturbed", "retain_perturbed",
                "real_authors_perturbed", "world_facts_perturbed"]
    return ["full", forget_split, retain, "holdout", "world_facts"]


def split_names() -> list[str]:
    names = ["full"]
    for pct in FORGET_PERCENTS:
        names += [f"forget{pct:02d}", f"retain{100 - pct:02d}"]
    return names + ["holdout", "world_facts"]


def _forget_percent(split: str) -> int:
    """``forget10`` -> 10, ``retain90`` -> 10."""
    return int(split[6:]) if split.startswith("forget") else 100 - int(split[6:])


def load_benchmark(source: str = "synthetic", splits: list[str] | None = None,
                   config: BenchmarkConfig = BenchmarkConfig(), data_dir: str | Path | None = None,
                   ) -> datasets.DatasetDict:
    """Load benchmark splits as a ``datasets.DatasetDict`` {split name: Dataset}; every row has the
    fields of the module docstring (question, answer, paraphrased_question, paraphrased_answer,
    perturbed_answer, author_id, key_spans, fact_type, qa_id).

    source:
        ``"synthetic"`` (default): our benchmark, generated from ``config`` in milliseconds, or read
        from ``data_dir`` (files of :func:`write_benchmark`). Split names (:func:`split_names`):
        ``full``, ``forget01/05/10`` (the last 1/5/10 % of the authors) with ``retain99/95/90``,
        ``holdout``, ``world_facts``.
        ``"tofu"``: the real ``locuslab/TOFU`` by its Hub config names (``full``, ``forgetXX``,
        ``retainYY``, ``forgetXX_perturbed``, ``retain_perturbed``, ``real_authors_perturbed``,
        ``world_facts_perturbed``, ``holdoutXX``, ``real_authors``, ``world_facts``; fields and
        qa_ids: :mod:`satimp_lab.data.tofu`, sources: the TOFU paper, the Hub's dataset card and
        open-unlearning's ``configs/data/datasets/TOFU_QA_*.yaml``). Online through ``datasets``,
        or from ``data_dir``, a folder of the Hub's ``<config>.json`` files (its splits are the
        configs it holds). Delegates to :func:`satimp_lab.data.tofu.load_tofu`.
    splits: names as above (default: all of them; for a synthetic ``config`` too small to form a
        forget split, the ones it can form).

    Raises :class:`~satimp_lab.errors.InputError` (one line naming the bad input): an unknown
    source or split name; a forget/retain split that selects no author (too few authors) or that
    ``data_dir``'s ``splits.json`` lacks; a malformed data file (file, line and field); for TOFU,
    the errors of :func:`satimp_lab.data.tofu.load_tofu` (a config the folder lacks; the Hub out of
    reach or switched off without ``data_dir``, at once). ``FileNotFoundError`` names a synthetic
    benchmark file missing from ``data_dir``.
    """
    if source == "tofu":
        from .tofu import load_tofu as _load_tofu

        return _load_tofu(splits, data_dir=data_dir)
    if source != "synthetic":
        raise InputError(f"unknown source {source!r}; valid: 'synthetic', 'tofu'")
    valid = split_names()
    requested = splits
    splits = list(splits) if splits is not None else valid
    unknown = [s for s in splits if s not in valid]
    if unknown:
        raise InputError(f"unknown split(s) {unknown}; valid splits: {valid}")
    bench = read_benchmark(data_dir) if data_dir is not None else generate_benchmark(config)
    n_authors = len({r["author_id"] for r in bench["full"]})
    if requested is None:  # all splits this benchmark can form
        splits = [s for s in splits if s in ("full", "holdout", "world_facts")
                  or f"forget{_forget_percent(s):02d}" in bench["splits"]]
    for split in splits:
        if split[:6] in ("forget", "retain") and f"forget{_forget_percent(split):02d}" not in bench["splits"]:
            pct = _forget_percent(split)
            if data_dir is not None:
                raise InputError(f"{split}: {Path(data_dir) / 'splits.json'} defines no forget{pct:02d} "
                                 f"(it has {sorted(bench['splits'])})")
            raise InputError(f"{split} selects no author: {pct}% of {n_authors} authors rounds to 0 "
                             f"(forget{pct:02d} needs at least {math.ceil(50 / pct)} authors)")
    by_author: dict[int, list[dict]] = {}
    for row in bench["full"]:
        by_author.setdefault(row["author_id"], []).append(row)
    out = {}
    for split in splits:
        if split in ("full", "holdout", "world_facts"):
            rows = bench[split]
        else:
            forget_ids = set(bench["splits"][f"forget{_forget_percent(split):02d}"])
            forget = split.startswith("forget")  # forgetXX: the split's authors; retainYY: the others
            rows = [r for r in bench["full"] if (r["author_id"] in forget_ids) == forget]
        out[split] = to_dataset(rows, split)
    return datasets.DatasetDict(out)


# ----------------------------------------------------------------------------------------------


def fingerprint(*datasets_or_rows) -> str:
    """A short content hash of datasets (or row lists): part of every cache key."""
    h = hashlib.sha256()
    for ds in datasets_or_rows:
        rows = ds.to_list() if hasattr(ds, "to_list") else ds
        for row in rows:
            h.update(json.dumps(row, sort_keys=True).encode())
    return h.hexdigest()[:16]
