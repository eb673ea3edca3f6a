"""The model stage's module before it was split by job (``satimp_lab.models.zoo``, and
``satimp_lab.models`` before the stage folders): every name it held still imports from here, as the
very object of its module now. Inside the package, import a name from its home:

    build   tiny Llama + BPE tokenizer, pretrained bases (SmolLM2, any HF model), tokenizer
            fingerprints, ``ModelBundle``, ``get_tier``
    train   the rows a target / retain model is trained on, the fine-tuning loop, its report
    cache   ``get_model`` (shipped models, then the on-disk cache, then training), ``ship_models``

Patch a name on its home module: patching it here changes nothing that the package calls.
"""

from ..store import CacheError, atomic_directory, cache_dir, cache_key, read_entry, verify_entry  # noqa: F401
from ..tiers import PAPER_LR, SHIPPED_TARGET_SEEDS, TIERS, ArchConfig, TierConfig, TrainConfig  # noqa: F401
from .build import (SMOLLM2_DEFAULT_SYSTEM, TOKENIZER_FINGERPRINT_ATTR, ModelBundle,  # noqa: F401
                    benchmark_texts, build_tiny_model, default_device, get_tier, load_base_model,
                    load_hf_model, load_smollm2, mark_tokenizer, pretrained_bundle, prompt_format_for,
                    smollm2_gguf_path, tokenizer_fingerprint, train_tokenizer)
from .cache import (CACHE_FORMAT, MODEL_FORMAT, SHIPPED_DIR, SHIPPED_FORGET_SPLITS,  # noqa: F401
                    _load_saved, _read_entry, _read_shipped, _write_model_entry, get_model, model_key,
                    read_cache_meta, ship_models, shipped_benchmark, shipped_entry)
from .train import (_tokenizer_texts, _training_rows, linear_schedule, memorisation_report,  # noqa: F401
                    subset_authors, subset_benchmark, train_model)
