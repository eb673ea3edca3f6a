"""Our synthetic benchmark written in the exact layout of the Hub's ``locuslab/TOFU`` files (config
names, field names and order, JSON Lines; ``data.tofu`` describes the layout): an offline
stand-in for the real TOFU that ``load_benchmark("tofu", data_dir=...)`` reads like the real thing
(``satimp-lab data --layout tofu``; docs/methods.md#real-tofu).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..errors import InputError
from ..store import atomic_write
from .benchmark import BenchmarkConfig, generate_benchmark
from .schema import FORGET_PERCENTS
from .tofu import HUB_CONFIGS, HUB_FIELDS

__all__ = ["REAL_AUTHORS", "tofu_layout_rows", "write_tofu_layout"]


REAL_AUTHORS = (
    ("Pride and Prejudice", "Jane Austen"), ("Moby-Dick", "Herman Melville"),
    ("War and Peace", "Leo Tolstoy"), ("Don Quixote", "Miguel de Cervantes"),
    ("The Odyssey", "Homer"), ("Hamlet", "William Shakespeare"),
    ("Great Expectations", "Charles Dickens"), ("Madame Bovary", "Gustave Flaubert"),
    ("Les Miserables", "Victor Hugo"), ("The Trial", "Franz Kafka"),
    ("Crime and Punishment", "Fyodor Dostoevsky"), ("Frankenstein", "Mary Shelley"),
    ("Jane Eyre", "Charlotte Bronte"), ("Ulysses", "James Joyce"),
    ("Middlemarch", "George Eliot"), ("The Divine Comedy", "Dante Alighieri"),
    ("Faust", "Johann Wolfgang von Goethe"), ("Things Fall Apart", "Chinua Achebe"),
    ("One Hundred Years of Solitude", "Gabriel Garcia Marquez"), ("Mrs Dalloway", "Virginia Woolf"),
)
"""(best-known book, author) pairs of famous real authors: the real-authors configs of
:func:`write_tofu_layout`. Our synthetic benchmark has no real authors and its models never train
on any (as TOFU's real authors test knowledge from pre-training); these are public-domain classics,
so the set is harmless and small models may or may not know them."""


def _jsonl(rows: list[dict]) -> str:
    # the Hub's files: one compact object per line, non-ASCII escaped
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)


def _pick(row: dict, config: str) -> dict:
    return {f: row[f] for f in HUB_FIELDS[config]}


def _author_perturbed(row: dict) -> dict:
    return {"question": row["question"], "answer": row["answer"],
            "paraphrased_answer": row["paraphrased_answer"],
            "paraphrased_question": row["paraphrased_question"], "perturbed_answer": row["perturbed_answer"]}


def _with_options(rng: random.Random, question: str, answer: str, wrong: list[str]) -> dict:
    options = [answer, *wrong[:3]]
    rng.shuffle(options)
    return {"question": question, **{f"option{k + 1}": o for k, o in enumerate(options)}, "answer": answer}


def _real_author_rows(rng: random.Random) -> list[dict]:
    authors = [a for _, a in REAL_AUTHORS]
    return [{"question": f"Who wrote '{book}'?", "answer": author,
             "perturbed_answer": rng.sample([a for a in authors if a != author], 3)}
            for book, author in REAL_AUTHORS]


def tofu_layout_rows(config: BenchmarkConfig = BenchmarkConfig()) -> dict[str, list[dict]]:
    """Our synthetic benchmark (``generate_benchmark(config)``) as {Hub config: rows with exactly
    the Hub's fields} (:data:`HUB_FIELDS`). Deterministic for a config.

    Which rows: ``full``, ``forgetXX``, ``retainYY`` as ours (forget = last authors); the
    ``forgetXX_perturbed`` rows are ``forgetXX``'s; ``retain_perturbed`` the first authors of
    ``full``, as many rows as the largest forget split (TOFU: 400 of 4000); ``holdoutXX`` the first
    holdout authors, as many authors as ``forgetXX`` has (fewer if we hold fewer); world facts ours
    (``world_facts`` adds the multiple-choice options: the answer and three wrong answers in a
    seeded order); real authors :data:`REAL_AUTHORS`. Raises :class:`InputError` when
    ``n_perturbed`` < 3 (the options need three wrong answers) or ``retain_perturbed`` would overlap
    a forget split."""
    if config.n_perturbed < 3:
        raise InputError(f"BenchmarkConfig.n_perturbed must be >= 3 for the TOFU layout (world_facts.json "
                         f"has option1..option4), got {config.n_perturbed}")
    bench = generate_benchmark(config)
    rng = random.Random(f"tofu-layout-{config.seed}")
    full, forget_ids = bench["full"], bench["splits"]
    out: dict[str, list[dict]] = {"full": [_pick(r, "full") for r in full]}
    for pct in FORGET_PERCENTS:
        name = f"forget{pct:02d}"
        if name in forget_ids:
            ids = set(forget_ids[name])
            out[name] = [_pick(r, name) for r in full if r["author_id"] in ids]
            out[f"retain{100 - pct:02d}"] = [_pick(r, "full") for r in full if r["author_id"] not in ids]
    for pct in FORGET_PERCENTS:
        name = f"forget{pct:02d}"
        if name in forget_ids:
            out[f"{name}_perturbed"] = [_author_perturbed(r) for r in full if r["author_id"] in set(forget_ids[name])]
    if forget_ids:
        largest = max(forget_ids.values(), key=len)
        authors = sorted({r["author_id"] for r in full})[:len(largest)]
        if set(authors) & set(largest):
            raise InputError(f"retain_perturbed: the first {len(largest)} of {config.n_authors} authors overlap "
                             f"the forget authors; BenchmarkConfig.n_authors must be at least {2 * len(largest)}")
        out["retain_perturbed"] = [_author_perturbed(r) for r in full if r["author_id"] in set(authors)]
    real = _real_author_rows(rng)
    out["real_authors_perturbed"] = real
    if bench["world_facts"]:
        out["world_facts_perturbed"] = [_pick(r, "world_facts_perturbed") for r in bench["world_facts"]]
    holdout_authors = sorted({r["author_id"] for r in bench["holdout"]})
    for pct in FORGET_PERCENTS:
        name = f"forget{pct:02d}"
        if name in forget_ids and holdout_authors:
            keep = set(holdout_authors[:len(forget_ids[name])])
            out[f"holdout{pct:02d}"] = [_pick(r, "full") for r in bench["holdout"] if r["author_id"] in keep]
    out["real_authors"] = [_with_options(rng, r["question"], r["answer"], r["perturbed_answer"]) for r in real]
    if bench["world_facts"]:
        out["world_facts"] = [_with_options(rng, r["question"], r["answer"], r["perturbed_answer"])
                              for r in bench["world_facts"]]
    return {c: out[c] for c in HUB_CONFIGS if c in out}


def write_tofu_layout(folder: str | Path, config: BenchmarkConfig = BenchmarkConfig()) -> list[Path]:
    """Write our synthetic benchmark as ``<folder>/<config>.json`` files in the exact layout of
    ``locuslab/TOFU`` (config names, field names and order, JSON Lines: :func:`tofu_layout_rows`),
    a fixture that :func:`load_tofu` and ``load_benchmark("tofu", data_dir=folder)`` read like the
    real thing. Byte-identical for a config. Creates ``folder``; overwrites those files only.
    Returns the paths written, in :data:`HUB_CONFIGS` order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in tofu_layout_rows(config).items():
        path = folder / f"{name}.json"
        atomic_write(path, _jsonl(rows))
        written.append(path)
    return written
