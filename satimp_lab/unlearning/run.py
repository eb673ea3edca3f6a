"""One unlearning run: its configuration (:class:`UnlearnConfig`, the named :data:`PRESETS`)
and what it leaves behind (:class:`UnlearnRun`: trace, history, final model), written to and read
from a folder. ``unlearning.loop.unlearn`` makes one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import InputError, check_choice, check_int, check_real
from ..models.build import save_hf_folder
from ..store import atomic_write
from ..tiers import PRESETS as _PRESET_FIELDS
from ..tiers import check_lora_fields, lora_fields_dict
from .objectives import Method, get_method
from .plan import FULL, EvalPlan
from .tracing import TokenTrace


@dataclass(frozen=True)
class UnlearnConfig:
    """One unlearning run. Defaults are the tiny-tier recipe; see :data:`PRESETS` for others."""

    method: str = "satimp"
    """A name from ``objectives.list_methods()``."""
    method_params: dict = field(default_factory=dict)
    """Overrides of the method's hyper-parameters, e.g. ``{"beta_sat": 2.0}``."""
    forget_split: str = "forget10"
    """The split to forget, a name of the benchmark family's (``data.families``; TOFU: forget01/05/10,
    whose retain split is the complement, retain99/95/90). Checked by :func:`unlearn`."""
    epochs: float = 5.0
    """Passes over the forget split (the official runs use 5); ignored when ``steps`` is set."""
    steps: int | None = None
    """Exact number of optimiser steps (overrides ``epochs``)."""
    lr: float = 3e-4
    """Tiny tier: in 5 epochs GA lowers forget10 ES from ~0.93 to ~0.4 while retain ES stays ~0.8
    (1e-3 destroys both, 1e-4 barely moves). The paper tier uses the official 1e-5 / 2e-5."""
    batch_size: int = 8
    """Forget examples per micro-batch per process (a retain micro-batch of the same size is drawn
    when the method has a retain term)."""
    gradient_accumulation_steps: int = 1
    warmup_epochs: float = 1.0
    """Linear warm-up length in epochs (official: one epoch of five)."""
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    fused_optimizer: bool = False
    """Fused AdamW: ~0.3 s less per step for a 135M model on 2 CPU cores (the small tier uses
    it); off by default so that the tiny tier's cached runs stay as they were made."""
    seed: int = 0
    eval_every: int | None = 5
    """Every this many steps (and at steps 0 and the end) record a teacher-forced evaluation of the
    forget and retain sets (mean log-likelihood, answer and key-token accuracy, ES). None: never.
    Which of them a run reads, and whether it ends at its matched point, is its
    :class:`~satimp_lab.unlearning.plan.EvalPlan` (an argument of :func:`unlearn`)."""
    eval_max_examples: int | None = 64
    """Examples per split in those evaluations (a fixed deterministic subset)."""
    eval_batch_size: int = 64
    """Rows per forward pass in those evaluations; smaller for big vocabularies (SmolLM2: 8)."""
    mixed_precision: str = "no"
    """"no", "bf16" or "fp16" (GPU)."""
    gradient_checkpointing: bool = False
    trace: bool = True
    """Record every forget token's likelihood and weight at every step."""
    lora_rank: int | None = None
    """LoRA rank r: train a rank-r ``peft`` adapter on :attr:`lora_target_modules` (every base
    weight frozen) instead of every weight, then merge it (``merge_and_unload``), so the run's
    model, its evaluations' readers and its saved folder see a plain model (``models.lora``).
    The forward passes, hence the p from which the detached token weights are computed, are
    the adapted model's. None: full fine-tuning, as the official TOFU runs; the official MUSE
    and WMDP scripts take a rank (``LoRA.r`` in ``muse_sat.py``/``wmdp_sat.py``, 0 = off). Unset
    LoRA fields are left out of :meth:`to_dict`, hence of the run keys."""
    lora_alpha: float = 32.0
    """LoRA scale numerator (the update is ``alpha / r * B @ A``); 32 as the official
    ``config/muse_sat.yaml`` and ``config/wmdp_sat.yaml``. Used only with :attr:`lora_rank`."""
    lora_dropout: float = 0.05
    """Dropout on the adapters' input during the run (0.05 as the same official files); the
    periodic evaluations run in eval mode, without it. Used only with :attr:`lora_rank`."""
    lora_target_modules: tuple[str, ...] | None = None
    """Names of the modules that get an adapter, as peft's ``target_modules`` matches them (leaf
    names such as ``("q_proj", "v_proj")``; a comma-separated string is split). None: every
    ``torch.nn.Linear`` (and GPT-2 ``Conv1D``) but the output head
    (``models.lora.default_target_modules``: the official ``find_all_linear_names`` of
    ``muse_sat.py``, which knows ``nn.Linear`` only). Used only with :attr:`lora_rank`."""

    def __post_init__(self):
        """Every field checked where the config is built: a bad value raises
        :class:`~satimp_lab.errors.InputError` naming the field and the value."""
        own = "UnlearnConfig"
        check_real(own, "epochs", self.epochs, low=0, low_open=True)
        check_int(own, "steps", self.steps, minimum=1, none_ok=True)
        check_real(own, "lr", self.lr, low=0, low_open=True)
        check_int(own, "batch_size", self.batch_size, minimum=1)
        check_int(own, "gradient_accumulation_steps", self.gradient_accumulation_steps, minimum=1)
        check_real(own, "warmup_epochs", self.warmup_epochs, low=0)
        check_real(own, "weight_decay", self.weight_decay, low=0)
        check_real(own, "max_grad_norm", self.max_grad_norm, low=0, none_ok=True)
        check_int(own, "seed", self.seed, minimum=0)
        check_int(own, "eval_every", self.eval_every, minimum=1, none_ok=True)
        check_int(own, "eval_max_examples", self.eval_max_examples, minimum=1, none_ok=True)
        check_int(own, "eval_batch_size", self.eval_batch_size, minimum=1)
        check_choice(own, "mixed_precision", self.mixed_precision, ("no", "bf16", "fp16"))
        check_lora_fields(own, self)
        if not isinstance(self.method_params, dict):
            raise InputError(f"{own}.method_params must be a dict, got {self.method_params!r}")
        if not isinstance(self.forget_split, str) or not self.forget_split:
            raise InputError(f"{own}.forget_split must be a split name, got {self.forget_split!r}")
        try:  # the method (with its hyper-parameters); the split is the benchmark family's (unlearn)
            # not a field: out of eq, repr, asdict and the cache keys
            object.__setattr__(self, "_method", get_method(self.method, **self.method_params))
        except InputError:
            raise
        except ValueError as err:
            raise InputError(f"{own}: {err}") from None

    def resolved_method(self) -> Method:
        """The :class:`~satimp_lab.unlearning.objectives.Method` this config runs, looked up in the registry
        once, when the config is built (and validated), then reused."""
        # set in __post_init__, kept out of the dataclass fields (and so out of the cache keys)
        return self._method  # type: ignore[attr-defined]

    def to_dict(self) -> dict:
        """The fields as a dict (JSON-ready), without the LoRA fields while ``lora_rank`` is None
        (``tiers.lora_fields_dict``): the cache keys of runs made before them stay."""
        return lora_fields_dict(self)


PRESETS = {name: UnlearnConfig(**fields) for name, fields in _PRESET_FIELDS.items()}
"""Named recipes of a standalone run (``tiny``, ``paper``, ``paper_phi``), declared in ``tiers.PRESETS``."""


@dataclass
class UnlearnRun:
    """What a run leaves behind: config, per-token trace, step history, final model."""

    config: UnlearnConfig
    method: Method
    trace: TokenTrace
    history: pd.DataFrame
    """One row per optimiser step (loss terms, lr) merged with the periodic evaluations."""
    model: object | None = None
    status: str = "completed"
    """"completed" or "diverged" (the loss became non-finite; the trace stops there)."""
    message: str = ""
    tokenizer: object | None = field(default=None, repr=False, compare=False)
    """The target's tokenizer (``unlearn`` sets it): saved beside the model by :meth:`save_model`."""
    plan: EvalPlan = FULL
    """What the run recorded (:class:`~satimp_lab.unlearning.plan.EvalPlan`)."""

    @property
    def trace_frame(self) -> pd.DataFrame:
        frame = self.trace.to_frame()
        frame["method"] = self.config.method
        frame["seed"] = self.config.seed
        return frame

    @property
    def evaluations(self) -> pd.DataFrame:
        """The rows of ``history`` that carry an evaluation: ``step`` and the ``forget_``,
        ``retain_`` and (for a family with a utility split) ``utility_`` readings."""
        cols = [c for c in self.history.columns if c.startswith(("forget_", "retain_", "utility_"))
                and not c.endswith("_loss")]
        if not cols:
            return pd.DataFrame()
        return self.history.dropna(subset=cols, how="all")[["step", *cols]].reset_index(drop=True)

    def save(self, folder: str | Path, save_model: bool = False) -> Path:
        """Write the run to ``folder``: ``trace.npz``, ``history.csv``, ``run.json`` (config, method,
        status) and, with ``save_model``, the final model as a Hugging Face folder
        ``folder/model`` (:meth:`save_model`). Returns ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.trace.save(folder / "trace.npz")
        atomic_write(folder / "history.csv", self.history.to_csv(index=False))
        meta = {"config": self.config.to_dict(), "method": self.method.to_dict(), "plan": self.plan.to_dict(),
                "status": self.status, "message": self.message}
        atomic_write(folder / "run.json", json.dumps(meta, indent=1))
        if save_model:
            self.save_model(folder / "model")
        return folder

    def save_model(self, folder: str | Path) -> Path:
        """The final model (LoRA already merged: a plain model of its own class) and its tokenizer
        written with ``save_pretrained`` (safetensors) to ``folder``, which
        ``AutoModelForCausalLM.from_pretrained(folder)`` and ``AutoTokenizer.from_pretrained(folder)``
        load with the same weights (lm-evaluation-harness, open-unlearning's evaluation). Written
        into a temporary sibling first and moved into place, so ``folder`` is never half written;
        an existing ``folder`` is replaced. Raises :class:`InputError` when the run holds no model
        or no tokenizer (a run read back by :meth:`load`). Returns ``folder``."""
        if self.model is None or self.tokenizer is None:
            missing = "model" if self.model is None else "tokenizer"
            raise InputError(f"this run holds no {missing} to save (a run read back by UnlearnRun.load "
                             f"has neither); save the run returned by unlearn")
        return save_hf_folder(self.model, self.tokenizer, folder)

    @classmethod
    def load(cls, folder: str | Path) -> "UnlearnRun":
        folder = Path(folder)
        try:
            meta = json.loads((folder / "run.json").read_text())
            history = pd.read_csv(folder / "history.csv")
        except (OSError, json.JSONDecodeError, pd.errors.ParserError) as err:
            raise ValueError(f"cannot read the run saved in {folder}: {err}") from None
        config = UnlearnConfig(**meta["config"])
        return cls(config, config.resolved_method(), TokenTrace.load(folder / "trace.npz"), history,
                   None, meta["status"], meta["message"], plan=EvalPlan(**meta.get("plan", {})))


def before_after_lines(evals: pd.DataFrame) -> list[str]:
    """The CLI's summary of a run's evaluations (:attr:`UnlearnRun.evaluations`): one line per
    column, first evaluation -> last one, each labelled with its step. A run with a single
    evaluation (one that diverged before its first periodic evaluation) says so instead of
    repeating the step-0 value as if it were the result."""
    if evals.empty:
        return []
    first, last = evals.iloc[0], evals.iloc[-1]
    # a column that is never a number (key-token accuracy on a benchmark without key spans) is left out
    cols = [c for c in evals.columns if c != "step" and evals[c].notna().any()]
    if len(evals) == 1:
        return [f"no evaluation after step {int(first['step'])} exists (the run stopped before "
                f"its next evaluation); at step {int(first['step'])}:",
                *(f"{col:24s} {first[col]:9.4f}" for col in cols)]
    return [f"{'':24s} {f'step {int(first.step)}':>9s}    {f'step {int(last.step)}':>9s}",
            *(f"{col:24s} {first[col]:9.4f} -> {last[col]:9.4f}" for col in cols)]
