"""The model cache: a target or retain model is looked up by its key (:func:`model_key`) among
the reference models shipped in ``data/models``, then in the on-disk cache, and trained and
cached otherwise (:func:`get_model`); :func:`ship_models` writes the shipped ones.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..data.families import ENCODERS, BenchmarkFamily, get_family
from ..errors import InputError
from ..resources import shipped_path
from ..store import CacheError, atomic_directory, cache_dir, cache_key, read_entry, verify_entry
from ..tiers import SHIPPED_TARGET_SEEDS, TierConfig
from .build import ModelBundle, default_device, get_tier, load_base_model, mark_tokenizer
from .train import _tokenizer_texts, _training_rows, subset_authors, train_model

__all__ = ["MODEL_FORMAT", "CACHE_FORMAT", "read_cache_meta", "family_tier", "model_key", "get_model", "SHIPPED_DIR",
           "SHIPPED_FORGET_SPLITS", "shipped_benchmark", "shipped_entry", "ship_models"]

MODEL_FORMAT = 1
"""Version of what a model *is* (its key: training code and data meaning). Bump it when training
changes meaning; that invalidates the shipped reference models, so rebuild them
(``satimp-lab train --retrain``)."""
CACHE_FORMAT = 2
"""Version of the on-disk layout of cache entries and of run keys. 2: every entry carries
``manifest.json`` (``satimp_lab.store``); format-1 entries, which have none, are never read again:
model entries live in folders named with the layout version and run keys hold it, so they are
recomputed into new folders."""


# ----------------------------------------------------------------------------------------------
# on-disk cache


def read_cache_meta(entry: Path, key_text: str) -> dict | None:
    """The entry's metadata if it exists and its key matches exactly; None if absent or stale."""
    meta_path = entry / "meta.json"
    if not entry.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CacheError(f"corrupt cache entry {entry}: cannot read meta.json ({err}); "
                         f"delete this folder to rebuild it") from None
    if meta.get("key") != key_text:
        return None  # never use an entry whose full key differs (hash collision or stale layout)
    return meta


def family_tier(tier: TierConfig, family: str | BenchmarkFamily = "tofu") -> TierConfig:
    """``tier`` with the training fields its benchmark family overrides
    (``BenchmarkFamily.model_train``; TOFU: none, so ``tier`` itself)."""
    fam = get_family(family)
    return replace(tier, train=replace(tier.train, **fam.model_train)) if fam.model_train else tier


def model_key(benchmark, kind: str, forget_split: str, tier: TierConfig, family: str | BenchmarkFamily = "tofu") -> dict:
    """The cache key of a target or retain model: ``{"key": canonical JSON, "digest": sha256 hex,
    "split": training split, "rows": training rows by encoding (``{"qa": rows}`` for TOFU; a key
    of ``data.families.ENCODERS`` each), "texts": tokenizer texts or None}``.

    ``family``: the benchmark family (``data.families``). A family with its own ``model_rows``
    (MUSE: ``data.muse_family.muse_model_rows``) trains on those rows, with a tokenizer of its
    ``tokenizer_rows`` and the training fields of ``model_train`` (:func:`family_tier`); its key
    holds the family's name. TOFU keeps the recipe below (and the keys models had before
    families existed).

    The key holds the full tier config (architecture and training recipe, seed included),
    content hashes of the training rows and tokenizer texts and, for a base model in a local
    folder, of that folder's files (``models.build.folder_fingerprint``: new weights under the same
    path are another model; a Hub name is known by its name); the model cache and the shipped
    models (:func:`shipped_entry`) are both looked up by it.

    Training rows: on the synthetic benchmark, the split (``full`` or the retain split) +
    ``world_facts``; on a benchmark in TOFU's Hub layout (``data.tofu.is_hub_layout``), the split
    alone, as TOFU fine-tunes (``full``; the retain model ``retainYY``). Raises
    :class:`InputError` for an unknown ``kind`` or a benchmark without the needed split."""
    from ..data.benchmark import fingerprint
    from ..data.schema import retain_split_for
    from ..data.tofu import is_hub_layout

    if kind not in ("target", "retain"):
        raise InputError(f"kind must be 'target' or 'retain', got {kind!r}")
    fam = get_family(family)
    if fam.model_rows is not None:
        return _family_model_key(benchmark, kind, forget_split, family_tier(tier, fam), fam)
    split = "full" if kind == "target" else retain_split_for(forget_split)
    hub = is_hub_layout(benchmark)
    own_tokenizer = tier.base_model is None
    for needed in (split, "full" if own_tokenizer else split) if hub else (split, "world_facts"):
        if needed not in benchmark:
            why = "its tokenizer is trained on full's texts" if needed != split else f"the {kind} model trains on it"
            raise InputError(f"the benchmark has no split {needed!r} (needed for the {kind} model: {why})")
    if hub:
        rows, texts = _hub_training_rows(benchmark, split, tier), None
        if own_tokenizer:
            from .build import benchmark_texts

            texts = benchmark_texts([benchmark["full"].to_list()], tier.prompt_format)
    else:
        rows = _training_rows(benchmark, split, tier)
        texts = _tokenizer_texts(benchmark, tier) if own_tokenizer else None
    payload = {"format": MODEL_FORMAT, "kind": kind, "split": split, "tier": tier.to_dict(),
               "data": fingerprint(rows), "tokenizer_data": fingerprint([{"t": t} for t in texts or []])}
    key_text, digest = cache_key({**payload, **_base_model_files(tier)})
    return {"key": key_text, "digest": digest, "split": split, "rows": {"qa": rows}, "texts": texts}


def _base_model_files(tier: TierConfig) -> dict:
    """``{"base_model_files": fingerprint}`` for a base model in a local folder (a folder is known
    by its files, not its path: other weights there are another model); ``{}`` otherwise."""
    if tier.base_model and Path(tier.base_model).expanduser().is_dir():
        from .build import folder_fingerprint

        return {"base_model_files": folder_fingerprint(Path(tier.base_model).expanduser())}
    return {}


def _family_model_key(benchmark, kind: str, forget_split: str, tier: TierConfig, fam: BenchmarkFamily) -> dict:
    """:func:`model_key` of a family that declares its models' rows (``BenchmarkFamily.model_rows``)."""
    from ..data.benchmark import fingerprint
    from .build import family_texts

    assert fam.model_rows is not None and fam.tokenizer_rows is not None
    rows = {enc: list(r) for enc, r in fam.model_rows(benchmark, kind, forget_split).items()}
    texts = family_texts(fam.tokenizer_rows(benchmark), tier.prompt_format) if tier.base_model is None else None
    split = "full" if kind == "target" else fam.retain_for(forget_split)
    payload = {"format": MODEL_FORMAT, "family": fam.name, "kind": kind, "split": split, "tier": tier.to_dict(),
               "data": fingerprint([{"encoding": enc, **row} for enc, rs in rows.items() for row in rs]),
               "tokenizer_data": fingerprint([{"t": t} for t in texts or []])}
    key_text, digest = cache_key({**payload, **_base_model_files(tier)})
    return {"key": key_text, "digest": digest, "split": split, "rows": rows, "texts": texts}


def _hub_training_rows(benchmark, split: str, tier: TierConfig) -> list[dict]:
    """Rows a model trains on from a benchmark in TOFU's Hub layout: ``split`` alone (no world
    facts, as TOFU's ``finetune.py``), restricted to a ``train_subset`` tier's authors."""
    rows = benchmark[split].to_list()
    keep = subset_authors(benchmark, tier)
    return rows if keep is None else [r for r in rows if r["author_id"] in keep]


def get_model(benchmark, kind: str = "target", forget_split: str = "forget10",
              tier: str | TierConfig = "tiny", use_cache: bool = True, progress: bool = True,
              shipped: bool = True, family: str | BenchmarkFamily = "tofu", **tier_overrides) -> ModelBundle:
    """The fine-tuned target (``kind="target"``, trained on ``full`` + ``world_facts``) or retain
    model (``kind="retain"``, trained on the retain split of ``forget_split`` + ``world_facts``);
    on a benchmark in TOFU's Hub layout on ``full`` and on ``retainYY`` alone (:func:`model_key`).

    Looked up first among the reference models shipped in ``data/models`` (``shipped=True`` and
    ``use_cache=True``; :func:`shipped_entry`), used only when their recorded key equals this
    configuration's key (:func:`model_key`) and every file matches its sha256; then in the cache
    under :func:`cache_dir`, keyed the same way; otherwise trained and cached. Loading gives
    bit-identical weights. Raises :class:`CacheError` when a shipped file fails its hash.

    ``family``: the benchmark family (``data.families``); a family that declares its models' rows
    (MUSE) trains on them with its training fields (:func:`model_key`, :func:`family_tier`).
    """
    fam = get_family(family)
    tier = family_tier(get_tier(tier, **tier_overrides), fam)
    key = model_key(benchmark, kind, forget_split, tier, fam)
    key_text, digest, split, rows, texts = (key[k] for k in ("key", "digest", "split", "rows", "texts"))
    prefix = "" if fam.model_rows is None else f"{fam.name}-"
    entry = cache_dir() / "models" / f"{prefix}{tier.name}-{kind}-{split}-{digest[:16]}-v{CACHE_FORMAT}"
    if use_cache:
        if shipped:
            found = _read_shipped(shipped_entry(tier, kind, forget_split, family=fam), key_text, tier)
            if found is not None:
                meta, model, tokenizer, folder = found
                return ModelBundle(model, tokenizer, tier, kind, meta["report"], folder,
                                   from_cache=True, digest=digest, shipped=True)
        cached = read_entry(entry, lambda e: _read_entry(e, key_text, tier), key_file="meta.json", key_text=key_text)
        if cached is not None:
            meta, model, tokenizer = cached
            return ModelBundle(model, tokenizer, tier, kind, meta["report"], entry, from_cache=True,
                               digest=digest)

    model, tokenizer = load_base_model(tier, texts)
    encoded = [seq for encoding, rs in rows.items()
               for seq in ENCODERS[encoding](tokenizer, rs, tier.prompt_format, tier.encode_max_length())]
    report = train_model(model, tokenizer, encoded, tier.train, progress, desc=f"{kind} ({split})")
    fp = mark_tokenizer(model, tokenizer)
    if not use_cache:
        return ModelBundle(model, tokenizer, tier, kind, report, digest=digest)

    # a complete entry with this key written meanwhile (another process) stands
    atomic_directory(entry, lambda tmp: _write_model_entry(tmp, model, tokenizer, key_text, report, fp),
                     keep=lambda e: read_cache_meta(e, key_text) is not None)
    return ModelBundle(model, tokenizer, tier, kind, report, entry, digest=digest)


def _write_model_entry(folder: Path, model, tokenizer, key_text: str, report: dict,
                       fingerprint: str) -> None:
    """The files of a model entry, the same for the cache and the shipped models (so both are read
    by one reader): safetensors weights, tokenizer, and ``meta.json`` with the key, the
    memorisation report and the tokenizer's fingerprint."""
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "meta.json").write_text(json.dumps({"key": key_text, "report": report,
                                                  "tokenizer_fingerprint": fingerprint}, indent=1))


def _read_entry(entry: Path, key_text: str, tier: TierConfig):
    """(meta, model, tokenizer) of a verified entry; None if its key differs (retrain)."""
    meta = read_cache_meta(entry, key_text)
    return None if meta is None else (meta, *_load_saved(entry, tier, meta.get("tokenizer_fingerprint")))


def _read_shipped(folder: Path, key_text: str, tier: TierConfig):
    """(meta, model, tokenizer, folder) of a shipped model whose recorded key is ``key_text``;
    None when there is none or it was made for another configuration. Every file is checked
    against the folder's ``manifest.json`` first (``store.verify_entry``, without a lock: shipped
    files are read-only); raises :class:`CacheError` naming the file when one does not match."""
    meta = read_cache_meta(folder, key_text)
    if meta is None:
        return None
    verify_entry(folder, "shipped model", remedy="restore it (`git checkout data/models`, or reinstall "
                                                 "satimp_lab) or rebuild it with `satimp-lab train --retrain`")
    return (meta, *_load_saved(folder, tier, meta.get("tokenizer_fingerprint")), folder)


@contextlib.contextmanager
def _without_transformers_bars():
    """Silence transformers' "Loading weights" progress bar for the duration (restored after):
    a cached or shipped model loads in well under a second, and a sweep loads dozens of them."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_saved(entry: Path, tier: TierConfig, fingerprint: str | None = None):
    """Model and tokenizer of a cache entry; the tokenizer must match the ``fingerprint`` stored
    in the entry's metadata (entries written before fingerprints existed are not checked)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _without_transformers_bars():
            tokenizer = AutoTokenizer.from_pretrained(entry)
            model = AutoModelForCausalLM.from_pretrained(entry, dtype=getattr(torch, tier.dtype))
    except Exception as err:  # noqa: BLE001 -- any failure here means the entry is unusable
        raise CacheError(f"corrupt cache entry {entry}: {type(err).__name__}: {err}; "
                         f"delete this folder to rebuild it") from None
    found = mark_tokenizer(model, tokenizer)
    if fingerprint is not None and found != fingerprint:
        raise CacheError(f"corrupt cache entry {entry}: its tokenizer (fingerprint {found}) is not "
                         f"the one the model was trained with ({fingerprint}); delete this folder "
                         f"to rebuild it")
    # transformers' stub wraps PreTrainedModel.to so that mypy reads the device as ``self``
    return model.to(default_device()).eval(), tokenizer  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# reference models shipped with the project


SHIPPED_DIR = shipped_path("data", "models")
"""``data/models``: pinned target and retain models (see ``data/README.md``), in the source checkout
or inside an installed wheel (:func:`satimp_lab.resources.shipped_path`)."""

SHIPPED_FORGET_SPLITS = ("forget10",)
"""Retain models are shipped for forget10 only: the only split the notebooks unlearn."""


def shipped_benchmark(tier: str, family: str | BenchmarkFamily = "tofu"):
    """The benchmark a shipped tier's models were trained on: the ``fast`` setting's for
    ``micro``, the built-in one otherwise; for another family its corpus of the same size
    (``tiers.FAMILY_SIZES``)."""
    from ..data.benchmark import BenchmarkConfig, load_benchmark
    from ..tiers import FAMILY_SIZES, SIZES

    fam = get_family(family)
    if fam.name != "tofu":
        fields_ = FAMILY_SIZES[fam.name]["fast" if tier == "micro" else "full"].get("benchmark", {})
        return fam.load_benchmark("synthetic", fam.forget_splits[0], fam.config_type(**fields_))
    if tier == "micro":
        return load_benchmark(config=BenchmarkConfig(**SIZES["fast"]["benchmark"]))
    return load_benchmark()


def shipped_entry(tier: TierConfig, kind: str, forget_split: str = "forget10",
                  root: Path | None = None, family: str | BenchmarkFamily = "tofu") -> Path:
    """Folder of a shipped model: ``data/models/<tier>/seed<k>/target`` or
    ``.../seed<k>/retain-<forget split>`` (k = ``tier.train.seed``); another family's are named
    after it (``.../seed<k>/muse-target``, ``muse-retain-forget``). It may not exist."""
    name = "target" if kind == "target" else f"retain-{forget_split}"
    fam = get_family(family)
    name = name if fam.name == "tofu" else f"{fam.name}-{name}"
    return (root or SHIPPED_DIR) / tier.name / f"seed{tier.train.seed}" / name


def ship_models(tier: str = "tiny", target_seeds=None, forget_splits=None,
                root: Path | None = None, benchmark=None, retrain: bool = True,
                progress: bool = True, family: str | BenchmarkFamily = "tofu") -> list[Path]:
    """Train the target model and the retain model of each forget split for each target seed
    (default ``tiers.SHIPPED_TARGET_SEEDS`` of the tier; ``retrain=False``: take them from the
    model cache when there) on ``benchmark`` (default :func:`shipped_benchmark`), and write them
    under ``root`` (default ``data/models``) with their cache key, training config, memorisation
    report and ``manifest.json`` (size and sha256 of every file, ``store.seal_entry``). Returns
    the folders written. ``family``: whose models (``forget_splits`` default: :data:`SHIPPED_FORGET_SPLITS`
    for TOFU, the family's forget splits otherwise)."""
    fam = get_family(family)
    if forget_splits is None:
        forget_splits = SHIPPED_FORGET_SPLITS if fam.name == "tofu" else fam.forget_splits
    bench = benchmark if benchmark is not None else shipped_benchmark(tier, fam)
    if target_seeds is None:
        target_seeds = SHIPPED_TARGET_SEEDS.get(tier, (0,))
    written = []
    for seed in target_seeds:
        base = family_tier(get_tier(tier), fam)
        seeded = replace(base, train=replace(base.train, seed=seed))
        for kind, split in [("target", forget_splits[0])] + [("retain", f) for f in forget_splits]:
            bundle = get_model(bench, kind, split, seeded, use_cache=not retrain,
                               progress=progress, shipped=False, family=fam)
            key = model_key(bench, kind, split, seeded, fam)

            def write(tmp: Path, bundle=bundle, key=key, seeded=seeded, kind=kind, split=split):
                _write_model_entry(tmp, bundle.model, bundle.tokenizer, key["key"], bundle.report,
                                   mark_tokenizer(bundle.model, bundle.tokenizer))
                (tmp / "training_config.json").write_text(json.dumps(
                    {"tier": asdict(seeded), "kind": kind, "split": key["split"], "forget_split": split,
                     **({} if fam.name == "tofu" else {"family": fam.name})}, indent=1, sort_keys=True))

            # retrain: replace whatever is shipped there (keep nothing)
            written.append(atomic_directory(shipped_entry(seeded, kind, split, root, fam), write,
                                            keep=None if not retrain else (lambda e: False)))
    return written
