"""The unlearning loop: any registered method on a target model, on CPU, one GPU or many.

Built on ``accelerate``: the same function runs in a notebook on a CPU and under
``accelerate launch`` on several processes (data sharded, gradients averaged, the token trace
gathered on the main process). The official recipe: AdamW, linear warm-up (one epoch of five by
default) then linear decay to 0, gradient clipping at 1, forget items paired with random retain
items.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..errors import InputError
from ..data.batching import collate
from ..evaluation.reading import check_model_tokenizer
from ..models.checks import check_encoded_fit, check_model_fits
from ..models.lora import add_lora, merge_lora, trainable_parameters
from ..models.reading import teacher_forced_summary, token_logprobs
from ..models.train import linear_schedule
from ..data.families import ENCODERS, BenchmarkFamily, get_family
from .objectives import Method
from .plan import FULL, EvalPlan, PlannedEvaluations
from .run import UnlearnConfig, UnlearnRun
from .tracing import TokenTrace


# ----------------------------------------------------------------------------------------------


def eval_subset(encoded: list[dict], n: int | None) -> list[dict]:
    """The rows a run's periodic evaluations read: ``n`` of ``encoded`` spread evenly over it (so
    over the authors), all of them when ``n`` is None or not smaller; deterministic."""
    if n is None or len(encoded) <= n:
        return encoded
    index = np.linspace(0, len(encoded) - 1, n).round().astype(int)  # spread over authors
    return [encoded[i] for i in index]


def _real_rows(accelerator, n_examples: int, batch_size: int, batch_index: int,
               n_batches: int) -> int:
    """How many leading rows of this process's forget micro-batch are real examples.

    Under ``accelerate launch`` with ``even_batches`` (the default), the last round of an epoch is
    filled up with examples from the epoch's start so that every process gets a full batch
    (``BatchSamplerShard``): process i's last batch holds global rows [i*b, (i+1)*b) of that round,
    of which the first ``n_examples % (b * num_processes)`` are real. Those repeats are neither
    traced nor trained on, so every forget token counts once per epoch, as on one process.
    Returns a large number (keep all) everywhere else."""
    n = accelerator.num_processes
    if n == 1 or batch_index != n_batches - 1 or not getattr(accelerator, "even_batches", True):
        return 1 << 30
    per_process = batch_size // n if getattr(accelerator, "split_batches", False) else batch_size
    remainder = n_examples % (per_process * n)
    if remainder == 0:
        return 1 << 30
    return min(max(remainder - accelerator.process_index * per_process, 0), per_process)


def unlearn(target, benchmark, config: UnlearnConfig = UnlearnConfig(), progress: bool = True,
            eval_fn=None, accelerator=None, eval_cache: dict | None = None,
            method: Method | None = None, plan: EvalPlan = FULL,
            family: str | BenchmarkFamily = "tofu") -> UnlearnRun:
    """Run ``config.method`` on a copy of ``target.model`` (a ``models.ModelBundle``).

    benchmark: a DatasetDict holding ``config.forget_split`` and its retain split.
    family: the benchmark family (``data.families``): its split names, how a row becomes a
        labelled sequence (question and answer, or raw text), and the utility reading a plan's
        matched point is found on. InputError for a forget split the family does not have.
    plan: what the run records (:class:`~satimp_lab.unlearning.plan.EvalPlan`; default: every
        evaluation of every step). A plan that searches for the matched point needs periodic
        evaluations (``config.eval_every``), a ``match_level`` and a single process.
    eval_fn: optional ``eval_fn(model, step) -> dict`` called with each periodic evaluation; its
        values join the history (e.g. :func:`satimp_lab.evaluation.metrics.evaluate` summaries).
    eval_cache: optional dict that the caller keeps between runs of ``target`` on ``benchmark``:
        the step-0 evaluation (of the target itself, the same for every method and seed) is
        computed once and then reused from it (the same numbers; without ``eval_fn`` only).
    method: the :class:`~satimp_lab.unlearning.objectives.Method` of ``config`` when the caller resolved it
        already (``Lab.run``); default ``config.resolved_method()``. Raises InputError when it is
        not the config's method with the config's hyper-parameters. The reference forward passes
        run only where the method declares them (``Method.needs_reference_logprobs``,
        ``Method.needs_reference_distribution``).
    Same seed -> bit-identical trace and model on CPU. A non-finite loss stops the run with
    ``status="diverged"`` and a message; everything recorded so far is kept.

    Before any work, :func:`satimp_lab.models.checks.check_model_fits` raises one InputError when
    the longest forget or retain row does not fit the model's context, the tokenizer has no EOS,
    or the prompt format needs a chat template the tokenizer lacks. With ``config.lora_rank`` the
    copy is wrapped by a LoRA adapter before ``accelerator.prepare`` (``models.lora.add_lora``;
    only the adapter trains) and merged at the end: ``run.model`` is a plain model either way.
    """
    from accelerate.utils import gather_object, set_seed

    method = _checked_method(config, method)
    family = get_family(family)
    roles = family.training_splits(config.forget_split)
    splits = (roles["forget"], roles["retain"])
    for split in splits:
        if split not in benchmark:
            raise InputError(f"the benchmark has no split {split!r}")
        if len(benchmark[split]) == 0:
            raise InputError(f"split {split!r} is empty")
    if accelerator is None:
        accelerator = _single_process_accelerator(config)
    _check_plan(plan, config, accelerator.num_processes)
    set_seed(config.seed)
    check_model_tokenizer(target.model, target.tokenizer)
    tokenizer, pad, fmt = target.tokenizer, target.tokenizer.pad_token_id, target.tier.prompt_format
    # one InputError naming the model, its context and the longest row, before any work
    if family.encoding == "qa":
        check_model_fits(target.model, tokenizer, {s: benchmark[s] for s in splits}, fmt)
    max_length = target.tier.encode_max_length()
    forget, retain = (family.encode(tokenizer, benchmark[s], fmt, max_length) for s in splits)
    if family.encoding != "qa":
        for split, encoded in zip(splits, (forget, retain)):
            check_encoded_fit(target.model, tokenizer, encoded, where=split)

    model, reference = _models(target, method, config, accelerator.device)
    forget_loader, retain_loader = _loaders(forget, retain, config, pad, accelerator.process_index)
    params = trainable_parameters(model) if config.lora_rank is not None else model.parameters()
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                  fused=True if config.fused_optimizer else None)
    model, optimizer, forget_loader = accelerator.prepare(model, optimizer, forget_loader)
    total_steps, scheduler = _schedule(optimizer, len(forget_loader), config)
    hard_gen = torch.Generator(device="cpu").manual_seed(config.seed + 2)  # hard_random's choices

    eval_sets = {"forget": eval_subset(forget, config.eval_max_examples),
                 "retain": eval_subset(retain, config.eval_max_examples)}
    if family.utility_split is not None:  # read wherever the retain split is (its utility reading)
        split, encoding = family.utility_split(config.forget_split)
        if split not in benchmark:
            raise InputError(f"the benchmark has no split {split!r} (the utility split of family {family.name!r})")
        eval_sets["utility"] = eval_subset(ENCODERS[encoding](tokenizer, benchmark[split], fmt, max_length),
                                           config.eval_max_examples)

    def read(unwrapped, names) -> dict:
        """``{split}_{number}`` of :func:`teacher_forced_summary` for each split of ``names`` (and
        the family's utility split with the retain split)."""
        if "retain" in names and "utility" in eval_sets:
            names = (*names, "utility")
        unwrapped.eval()  # once for every split
        row = {f"{name}_{k}": v for name in names
               for k, v in teacher_forced_summary(unwrapped, eval_sets[name], pad, config.eval_batch_size).items()}
        unwrapped.train()
        return row

    evaluated = config.eval_every is not None and accelerator.is_main_process
    evaluations = PlannedEvaluations(plan, config.eval_every if evaluated else None, read, eval_fn,
                                     utility=family.utility)
    if evaluated:  # step 0: the target itself, the same for every method and seed of a Lab
        cache = None if eval_fn is not None else eval_cache
        key = ("step 0", id(target), family.name, config.forget_split, config.eval_max_examples,
               config.eval_batch_size, config.mixed_precision)
        evaluations.rows.append(_step_zero(evaluations, accelerator.unwrap_model(model), cache, key))

    trace, steps_log = TokenTrace(), []
    status, message = "completed", ""
    bar = tqdm(total=total_steps, desc=f"unlearn {method.name}",
               disable=not progress or not accelerator.is_local_main_process, leave=False)
    step = step_micro = 0
    step_sums = torch.zeros(5, dtype=torch.float64)  # loss, forget, retain, weight sum, tokens
    retain_iter = iter(retain_loader)
    while step < total_steps and status == "completed":
        for batch_index, forget_batch in enumerate(forget_loader):
            n_real = _real_rows(accelerator, len(forget), config.batch_size, batch_index, len(forget_loader))
            padding_only = n_real == 0
            if 0 < n_real < len(forget_batch["example_id"]):
                forget_batch = {k: v[:n_real] for k, v in forget_batch.items()}
            with accelerator.accumulate(model):
                out, term, retain_loss = _forward(model, reference, method, forget_batch, retain_iter, hard_gen)
                # a process whose batch is all padding repeats still runs forward/backward (the
                # gradient all-reduce needs every process) but contributes nothing to the forget term
                loss = method.total_loss(term.loss * 0.0 if padding_only else term.loss, retain_loss)
                if not torch.isfinite(loss):
                    status = "diverged"
                    message = (f"the loss became {loss.item()} at step {step} (method {method.name}, "
                               f"lr {config.lr}); the run stopped and keeps its trace up to step {step - 1}")
                    break
                if config.trace and not padding_only:
                    trace.record(step, forget_batch["example_id"], out.logp, term.weights, out.mask,
                                 out.key_mask, out.labels)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            step_sums += _micro_batch_sums(loss, term, out, retain_loss, padding_only)
            step_micro += 1
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            steps_log.append(_step_row(step, scheduler, step_sums, step_micro, accelerator))
            step_sums.zero_()
            step_micro = 0
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if evaluations.due(step, total_steps) and evaluations.record(
                    accelerator.unwrap_model(model), step, last=step == total_steps):
                total_steps = step  # the plan ends the run at its matched point
            if step >= total_steps:
                break
    bar.close()
    if status == "diverged":
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    if accelerator.num_processes > 1:  # every process traced its own shard: gather them
        parts = gather_object([trace.columns()])
        trace = TokenTrace.from_columns({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}).sorted()
    history = pd.DataFrame(steps_log, columns=["step", "lr", "loss", "forget_loss", "retain_loss",
                                               "mean_weight"])
    if evaluations.rows:
        history = pd.merge(history, pd.DataFrame(evaluations.rows), on="step", how="outer").sort_values("step")
    model = merge_lora(accelerator.unwrap_model(model))  # a plain model for every reader
    model.eval()
    return UnlearnRun(config, method, trace, history.reset_index(drop=True), model, status, message,
                      target.tokenizer, plan)


# -- the parts of a run, in the order unlearn uses them ---------------------------------------


def _step_zero(evaluations: PlannedEvaluations, model, cache: dict | None, key: tuple) -> dict:
    """The step-0 evaluation row of ``model`` (the target itself), computed once per ``key`` in
    ``cache`` (a caller's dict kept between runs of one target: the same numbers for every method
    and seed) and copied from there; computed afresh without a cache."""
    if cache is None:
        return evaluations.evaluate(model, 0)
    if key not in cache:
        cache[key] = evaluations.evaluate(model, 0)
    return dict(cache[key])


def _checked_method(config: UnlearnConfig, method: Method | None) -> Method:
    """``method``, or the config's when None; InputError when it is not the config's."""
    if method is None:
        return config.resolved_method()
    if method != config.resolved_method():
        raise InputError(f"unlearn: method {method.name!r} with params {method.params} is not the "
                         f"config's ({config.method!r} with method_params {config.method_params})")
    return method


def _single_process_accelerator(config: UnlearnConfig):
    """The Accelerator of a run outside ``accelerate launch`` (CPU unless a GPU is present)."""
    from accelerate import Accelerator

    _reset_precision_of_a_single_process(config.mixed_precision)
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                       gradient_accumulation_steps=config.gradient_accumulation_steps)


def _check_plan(plan: EvalPlan, config: UnlearnConfig, n_processes: int) -> None:
    """InputError when ``plan`` searches for the matched point and the run cannot: no periodic
    evaluations, no level, or several processes (each would stop on its own reading)."""
    if not isinstance(plan, EvalPlan):
        raise InputError(f"unlearn: plan must be an EvalPlan, got {plan!r}")
    if not plan.searches:
        return
    problem = ("needs periodic evaluations (config.eval_every is None)" if config.eval_every is None else
               "needs a match_level (None)" if plan.match_level is None else
               f"needs a single-process run (this one has {n_processes} processes)" if n_processes > 1 else None)
    if problem:
        raise InputError(f"unlearn: {plan!r} searches for the matched point and {problem}")


def _models(target, method: Method, config: UnlearnConfig, device):
    """(the model to train: a copy of the target, LoRA-wrapped with ``config.lora_rank``; the
    frozen reference copy a method with a reference term reads, else None)."""
    model = copy.deepcopy(target.model)
    model.train()
    if config.gradient_checkpointing:
        # transformers >= 5 renamed it (the old name warns); older versions only have the old one
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    if config.lora_rank is not None:  # wrapped before accelerator.prepare (DDP sees the adapters)
        model = add_lora(model, config.lora_rank, config.lora_alpha, config.lora_dropout,
                         config.lora_target_modules, seed=config.seed)
        if config.gradient_checkpointing:  # frozen embeddings: checkpointed blocks need an input grad
            model.enable_input_require_grads()
        model.train()
    reference = None
    if method.needs_reference:  # a frozen copy of the starting model (NPO, KL)
        reference = copy.deepcopy(target.model).eval().requires_grad_(False).to(device)
    return model, reference


def _loaders(forget: list[dict], retain: list[dict], config: UnlearnConfig, pad: int, process_index: int):
    """(forget loader: shuffled epochs of the forget rows; retain loader: an endless random draw
    of retain rows, one micro-batch paired with each forget micro-batch).

    The retain stream is NOT for ``accelerator.prepare``: a prepared loader registers with
    accelerate's GradientState, and the endless one would mask the forget loader's end of epoch
    (no accumulation flush there). Each process draws its own stream (process 0's is the
    single-process one); ``token_logprobs`` moves the batches to the device."""
    data_gen = torch.Generator().manual_seed(config.seed)
    # (torch's stub wants a Dataset; a list of encoded rows is a map-style dataset at run time)
    forget_loader: torch.utils.data.DataLoader[dict] = torch.utils.data.DataLoader(
        forget, batch_size=config.batch_size, shuffle=True, generator=data_gen,  # type: ignore[arg-type]
        collate_fn=lambda ex: collate(ex, pad))
    retain_seed = config.seed + 1 + 7919 * process_index
    retain_loader: torch.utils.data.DataLoader[dict] = torch.utils.data.DataLoader(
        retain,  # type: ignore[arg-type]
        batch_size=config.batch_size, generator=torch.Generator().manual_seed(retain_seed),
        sampler=torch.utils.data.RandomSampler(retain, replacement=True, num_samples=10**9,
                                               generator=torch.Generator().manual_seed(retain_seed)),
        collate_fn=lambda ex: collate(ex, pad))
    return forget_loader, retain_loader


def _schedule(optimizer, n_forget_batches: int, config: UnlearnConfig):
    """(total optimiser steps, linear warm-up then decay scheduler) for ``n_forget_batches``
    forget micro-batches per epoch and process."""
    steps_per_epoch = math.ceil(n_forget_batches / config.gradient_accumulation_steps)
    total_steps = config.steps if config.steps is not None else max(1, round(config.epochs * steps_per_epoch))
    warmup = round(config.warmup_epochs * steps_per_epoch) if config.steps is None else \
        round(total_steps * config.warmup_epochs / max(config.epochs, 1e-9))
    return total_steps, linear_schedule(optimizer, min(warmup, total_steps), total_steps)


def _forward(model, reference, method: Method, forget_batch: dict, retain_iter, hard_gen):
    """One micro-batch's forward passes: (forget ``TokenLogprobs``, the method's forget term,
    its retain loss or None). The reference passes run only where the method declares them."""
    out = token_logprobs(model, forget_batch, keep_logits=False)
    ref_logp = None
    if method.needs_reference_logprobs:
        with torch.no_grad():
            ref_logp = token_logprobs(reference, forget_batch).logp
    term = method.forget_term(out.logp, out.mask, out.key_mask, ref_logp, hard_gen)
    retain_loss = None
    if method.needs_retain_batch:
        retain_batch = next(retain_iter)
        r_out = token_logprobs(model, retain_batch, keep_logits=method.needs_reference_distribution)
        ref_logits = None
        if method.needs_reference_distribution:
            with torch.no_grad():
                ref_logits = token_logprobs(reference, retain_batch, keep_logits=True).logits
        retain_loss = method.retain_term(r_out.logp, r_out.mask, r_out.logits, ref_logits)
    return out, term, retain_loss


def _micro_batch_sums(loss, term, out, retain_loss, padding_only: bool) -> torch.Tensor:
    """One micro-batch's share of its step's log (float64): loss, forget term, retain term (NaN
    without one), the sum of the token weights and the number of tokens (0 for a padding-only
    batch). A step's log is over all its accumulated micro-batches: mean losses and the mean
    weight over all their tokens, not the last micro-batch's values."""
    return torch.tensor([
        loss.item(), 0.0 if padding_only else term.loss.item(),
        retain_loss.item() if retain_loss is not None else np.nan,
        0.0 if padding_only else term.weights.sum().item(),
        0.0 if padding_only else out.mask.sum().item()], dtype=torch.float64)


def _step_row(step: int, scheduler, sums: torch.Tensor, n_micro: int, accelerator) -> dict:
    """The step log's row from its micro-batches' :func:`_micro_batch_sums`: losses averaged over
    micro-batches (and over processes), the mean weight over every token of every process."""
    stats = sums.clone()
    stats[:3] /= n_micro
    if accelerator.num_processes > 1:  # losses: mean over processes; weights: over all tokens
        stats = accelerator.reduce(stats.to(accelerator.device), "sum").cpu()
        stats[:3] /= accelerator.num_processes
    return {"step": step, "lr": scheduler.get_last_lr()[0], "loss": stats[0].item(),
            "forget_loss": stats[1].item(), "retain_loss": stats[2].item(),
            "mean_weight": (stats[3] / stats[4]).item()}


def _reset_precision_of_a_single_process(mixed_precision: str) -> None:
    """Let a single process run runs of several precisions one after the other (a notebook, a
    test session, a sweep of fp32 and bf16 recipes): accelerate keeps the first Accelerator's
    ``mixed_precision`` for the whole process and refuses another ("AcceleratorState has already
    been initialized"), so its shared state is reset when the precision differs. Never under a
    launch (several processes), whose state belongs to the launcher."""
    from accelerate.state import AcceleratorState, PartialState

    if not AcceleratorState._shared_state or PartialState().num_processes > 1:
        return
    if str(AcceleratorState().mixed_precision) != mixed_precision:
        AcceleratorState._reset_state()
