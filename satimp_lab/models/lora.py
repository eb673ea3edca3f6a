"""LoRA through ``peft``: wrap a causal LM with a low-rank adapter for a run, then merge it back.

Both the unlearning loop (``UnlearnConfig.lora_*``) and the target/retain fine-tuning
(``TrainConfig.lora_*``) use the same three steps:

1. :func:`add_lora` wraps the model (``peft.get_peft_model``): every base weight is frozen, a
   rank-r pair ``B @ A`` (B initialised to 0, so the wrapped model starts equal to the base) is
   trained on each target module, scaled by ``alpha / r``.
2. the run trains the wrapped model; every forward pass (hence the log-likelihoods p from which
   the detached token weights are computed) is the *adapted* model's.
3. :func:`merge_lora` folds the adapters into the weights (``merge_and_unload``) and restores the
   base parameters' ``requires_grad`` flags: evaluation, tracing and saving see a plain model of
   the original class, with no ``peft`` wrapper.

Source of the defaults: the official SatImp MUSE/WMDP scripts (``muse_sat.py``, ``wmdp_sat.py``
with ``config/muse_sat.yaml``, ``config/wmdp_sat.yaml``, tmlr-group/SatImp): ``LoRA.r`` (0 = off),
``alpha 32``, ``dropout 0.05``, ``bias="none"``, targets ``find_all_linear_names`` (the leaf name
of every ``torch.nn.Linear`` but ``lm_head``). The official TOFU scripts fine-tune every weight.
"""

from __future__ import annotations

import contextlib

import torch

from ..errors import InputError

__all__ = ["lora_layer_types", "default_target_modules", "add_lora", "merge_lora", "is_lora",
           "trainable_parameters"]


def _conv1d_type():
    """``transformers.pytorch_utils.Conv1D`` (GPT-2's attention and MLP projections), or None."""
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - every supported transformers has it
        return None
    return Conv1D


def lora_layer_types() -> tuple[type, ...]:
    """The module types the default rule adapts: ``torch.nn.Linear`` and GPT-2's ``Conv1D`` (a
    Linear with a transposed weight, ``[in, out]``; peft adapts it with ``fan_in_fan_out=True``).
    A function so that importing this module does not import transformers."""
    conv = _conv1d_type()
    return (torch.nn.Linear,) if conv is None else (torch.nn.Linear, conv)


def default_target_modules(model) -> tuple[str, ...]:
    """The rule "every Linear but the output head": the sorted leaf names (``q_proj``, ``c_attn``)
    of every ``torch.nn.Linear`` and ``Conv1D`` module of ``model`` except its output head
    (``model.get_output_embeddings()``, and any module named ``lm_head``).

    This is the official ``find_all_linear_names`` (``muse_sat.py``) extended to GPT-2's
    ``Conv1D``, without which a GPT-2 would have no target at all (its only ``nn.Linear`` is
    ``lm_head``). Embeddings, norms and the head stay frozen. Leaf names are what peft's
    ``target_modules`` matches (a module whose dotted name ends in ``.name``); when the head's leaf
    name is also the leaf name of an inner layer, the full dotted names are returned instead, so
    the head is never adapted. Raises :class:`InputError` when the model has no such module."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    types = lora_layer_types()
    chosen, head_names = [], set()
    for name, module in model.named_modules():
        if not isinstance(module, types):
            continue
        if module is head or name.split(".")[-1] == "lm_head":
            head_names.add(name.split(".")[-1])
        else:
            chosen.append(name)
    if not chosen:
        raise InputError(f"{type(model).__name__} has no torch.nn.Linear or Conv1D layer besides its "
                         f"output head for LoRA; name the modules in lora_target_modules")
    leaves = {name.split(".")[-1] for name in chosen}
    return tuple(sorted(chosen if leaves & head_names else leaves))


def _module_names(model) -> list[str]:
    """Leaf names of the adaptable modules, for error messages."""
    return sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, lora_layer_types())})


def add_lora(model, rank: int, alpha: float = 32.0, dropout: float = 0.05,
             target_modules: tuple[str, ...] | None = None, seed: int | None = None):
    """``model`` wrapped by ``peft.get_peft_model`` with a LoRA adapter (modified in place: its
    target modules are replaced by LoRA layers until :func:`merge_lora`).

    rank: r of ``B [out, r] @ A [r, in]``; alpha: the update is scaled by ``alpha / rank``;
    dropout: on the adapter's input, training mode only; target_modules: names as peft matches
    them (None: :func:`default_target_modules`). seed: when given, the adapter's ``A`` is
    initialised under ``torch.manual_seed(seed)`` without touching the global generator (else
    from the global one). The base weights are frozen (``requires_grad=False``); only
    ``lora_A``/``lora_B`` train (``bias="none"``, as in the official scripts). Raises
    :class:`InputError` when a name matches no Linear/Conv1D module.
    """
    from peft import LoraConfig, get_peft_model

    targets = tuple(target_modules) if target_modules else default_target_modules(model)
    types = lora_layer_types()
    matched = [m for n, m in model.named_modules() if isinstance(m, types)
               and any(n == t or n.endswith("." + t) for t in targets)]
    if not matched:
        raise InputError(f"lora_target_modules {list(targets)} match no Linear/Conv1D module of "
                         f"{type(model).__name__}; its layers: {_module_names(model)}")
    conv = _conv1d_type()
    fan_in_fan_out = conv is not None and all(isinstance(m, conv) for m in matched)
    # peft annotates lora_alpha as int but scales by alpha / r in float: a fractional alpha is kept as given
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,  # type: ignore[arg-type]
                        target_modules=list(targets), bias="none", fan_in_fan_out=fan_in_fan_out,
                        task_type="CAUSAL_LM")
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        try:
            wrapped = get_peft_model(model, config)
        except ValueError as err:  # peft's "Target modules ... not found"
            raise InputError(f"lora_target_modules {list(targets)}: {err}".splitlines()[0]) from None
    # restored by merge_lora; torch's stub types Module.__setattr__ values as Tensor | Module only
    wrapped._satimp_requires_grad = flags  # type: ignore[assignment]
    return wrapped


def is_lora(model) -> bool:
    """True for a model wrapped by :func:`add_lora` (a ``peft.PeftModel``) not yet merged."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, PeftModel)


def merge_lora(model):
    """The plain model of an :func:`add_lora` wrapper: adapters folded into the weights
    (``W + alpha / r * B @ A``, ``merge_and_unload``), LoRA layers replaced by the original
    modules, and each base parameter's ``requires_grad`` as it was before :func:`add_lora`.
    Returns the same object that was wrapped; a model that is not wrapped is returned as is."""
    if not is_lora(model):
        return model
    flags = getattr(model, "_satimp_requires_grad", {})
    plain = model.merge_and_unload()
    for name, p in plain.named_parameters():
        p.requires_grad_(flags.get(name, True))
    return plain


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters an optimiser should update: those with ``requires_grad`` (under LoRA only
    the adapters'; a plain model: all of them)."""
    return [p for p in model.parameters() if p.requires_grad]
