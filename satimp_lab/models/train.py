"""Fine-tuning the target and retain models: which rows each is trained on (the authors a
``train_subset`` tier keeps), the training loop, and its memorisation report.

The *target* model is fine-tuned on ``full`` (+ ``world_facts``); the *retain* model on the retain
split of a forget split (+ ``world_facts``): it never saw the forget authors, so it is the
reference for "forgotten" (docs/methods.md#forget-quality).
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ..data.batching import collate
from ..tiers import TierConfig, TrainConfig
from .build import benchmark_texts, default_device, get_tier
from .checks import check_encoded_fit
from .lora import add_lora, merge_lora, trainable_parameters
from .reading import read_rows, token_accuracy, token_logprobs

__all__ = ["subset_authors", "subset_benchmark", "memorisation_report", "linear_schedule", "train_model"]


# ----------------------------------------------------------------------------------------------
# what a model is trained on


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


# ----------------------------------------------------------------------------------------------
# training and memorisation


def memorisation_report(model, tokenizer, encoded: list[dict], batch_size: int = 64) -> dict:
    """Teacher-forced accuracy on ``encoded`` rows (:func:`satimp_lab.models.reading.token_accuracy`:
    the share of answer tokens, and of key tokens, whose argmax is right) and ``n_examples``. The
    model is left in eval mode."""
    model.eval()
    readings = read_rows(model, encoded, tokenizer.pad_token_id, batch_size)
    return {**token_accuracy(readings), "n_examples": len(encoded)}


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

    With ``train.lora_rank`` a ``peft`` LoRA adapter is trained instead of every weight
    (``models.lora.add_lora``; adapter initialised from ``train.seed``, and the global torch
    generator seeded with it for the adapters' dropout) and
    merged into ``model`` at the end (``merge_lora``): ``model`` is trained in place either way and
    stays a plain model of its class. Raises :class:`~satimp_lab.errors.InputError` before any
    work when the longest row does not fit the model's context (``models.checks.check_encoded_fit``).
    """
    check_encoded_fit(model, tokenizer, encoded, where=desc)
    device = default_device()
    model.to(device).train()
    if train.lora_rank is not None:
        torch.manual_seed(train.seed)  # the adapters' dropout; their init is seeded by add_lora
        model = add_lora(model, train.lora_rank, train.lora_alpha, train.lora_dropout,
                         train.lora_target_modules, seed=train.seed)
        model.train()
    params = trainable_parameters(model) if train.lora_rank is not None else model.parameters()
    optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay,
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
    model = merge_lora(model)  # the caller's model object, adapters folded in
    if not report or train.stop_key_accuracy is None or train.lora_rank is not None:
        report = memorisation_report(model, tokenizer, encoded, train.check_batch_size)
    model.eval()
    return {**report, "epochs": epochs_run, "loss_history": history, "key_accuracy_by_epoch": key_by_epoch}
