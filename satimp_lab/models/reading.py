"""Reading a model: the teacher-forced pass over encoded rows, and the per-row readings taken from it.

The one function every part of the library uses to read a model is :func:`token_logprobs`:
training, tracing, metrics and analysis all see the same shifted, masked log-likelihoods of a
batch laid out by :func:`satimp_lab.data.batching.collate` (answer tokens and the final EOS are
the labels, docs/methods.md#which-tokens-count). Built on it:

    read_rows               per-row readings (:class:`RowReading`) of encoded rows, batch by batch
    token_accuracy          teacher-forced token accuracy of those readings (answer and key tokens)
    es_from_predictions     the official extraction-strength rule on one row's argmax predictions
    teacher_forced_summary  mean log-likelihood, token accuracy and ES of encoded rows in one pass

Readers: ``models.train`` (the training loop and its memorisation report), ``evaluation`` (every
metric reads through :func:`read_rows` or :func:`token_logprobs`), ``unlearning.loop`` (the
training pass and the periodic evaluation: :func:`teacher_forced_summary`) and
``experiments.attacks`` (the relearning and quantization readings: :func:`teacher_forced_summary`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from ..data.batching import IGNORE_INDEX, collate

__all__ = ["TokenLogprobs", "token_logprobs", "RowReading", "read_rows", "token_accuracy",
           "es_from_predictions", "teacher_forced_summary"]


# ----------------------------------------------------------------------------------------------
# the teacher-forced pass


@dataclass
class TokenLogprobs:
    """Per-token log-likelihoods of the label tokens, shifted so position j scores label j+1.

    logp      ``[batch, pos-1]`` log p(label | prefix); 0.0 where ``mask`` is False
    mask      ``[batch, pos-1]`` bool, valid (answer or EOS) label positions
    key_mask  ``[batch, pos-1]`` bool, valid positions inside annotated fact spans
    labels    ``[batch, pos-1]`` the label ids (``IGNORE_INDEX`` where invalid)
    logits    ``[batch, pos-1, vocab]`` only when asked for (KL terms, argmax metrics)

    Read with ``labels_only=True`` (:func:`token_logprobs`), ``logp``, ``key_mask``, ``labels``
    and ``logits`` hold the ``n = mask.sum()`` valid positions only, row after row (``[n]``,
    ``[n, vocab]``); ``mask`` keeps its ``[batch, pos-1]`` shape, so row ``b`` owns the next
    ``mask[b].sum()`` entries (:meth:`per_row`).
    """

    logp: Float[Tensor, "batch pos"] | Float[Tensor, " n"]
    mask: Bool[Tensor, "batch pos"]
    key_mask: Bool[Tensor, "batch pos"] | Bool[Tensor, " n"]
    labels: Int[Tensor, "batch pos"] | Int[Tensor, " n"]
    logits: Float[Tensor, "batch pos vocab"] | Float[Tensor, "n vocab"] | None = None

    def per_row(self) -> list[int]:
        """How many valid label positions each row has (``[batch]`` as a list)."""
        return self.mask.sum(1).tolist()


def _plain_llama(model) -> bool:
    """True when ``model(...).logits`` is exactly ``model.lm_head(model.model(...))`` at every
    position: a Hugging Face Llama whose ``forward`` nobody patched (accelerate's mixed precision
    wraps it in autocast)."""
    from transformers import LlamaForCausalLM

    return type(model) is LlamaForCausalLM and "forward" not in vars(model)


def token_logprobs(model, batch: dict[str, Int[Tensor, "batch pos"] | Int[Tensor, " batch"]],
                   keep_logits: bool = False, labels_only: bool = False) -> TokenLogprobs:
    """One forward pass -> per-token log-likelihoods of the labels (gradients flow if enabled).

    ``batch`` is a :func:`satimp_lab.data.batching.collate` batch (``[batch, pos]`` tensors, the
    layout of ``data.batching``'s docstring); the tensors are moved to the model's device. The
    log-softmax is computed inside ``cross_entropy`` exactly as for a plain NLL loss, so reading
    likelihoods for weighting or tracing costs no extra ``[batch, pos, vocab]`` tensor.

    ``labels_only=True``: the valid label positions only, flattened (see :class:`TokenLogprobs`);
    for a plain Hugging Face Llama the output head then runs on those positions alone (less than
    half the positions of a QA pair are answer tokens). The numbers are the same as the full
    reading's at those positions: a position's logits, log-softmax and argmax do not depend on
    the other positions (``tests/unit/models/test_model_reading.py`` checks it). Evaluation and metrics
    read models this way; training keeps the full reading.
    """
    device = next(model.parameters()).device
    input_ids = batch["input_ids"].to(device)
    attention_mask = batch["attention_mask"].to(device)
    labels = batch["labels"][:, 1:].to(device)
    mask = labels != IGNORE_INDEX
    key_mask = batch["key_mask"][:, 1:].to(device).bool() & mask
    if labels_only and _plain_llama(model):
        hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits, flat = model.lm_head(hidden[:, :-1][mask]), labels[mask]
        logp = -F.cross_entropy(logits.float(), flat, reduction="none")
        return TokenLogprobs(logp=logp, mask=mask, key_mask=key_mask[mask], labels=flat,
                             logits=logits if keep_logits else None)
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    logits = logits[:, :-1]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                         ignore_index=IGNORE_INDEX, reduction="none").view(labels.shape)
    if labels_only:
        return TokenLogprobs(logp=-ce[mask], mask=mask, key_mask=key_mask[mask], labels=labels[mask],
                             logits=logits[mask] if keep_logits else None)
    return TokenLogprobs(logp=-ce, mask=mask, key_mask=key_mask, labels=labels,
                         logits=logits if keep_logits else None)


# ----------------------------------------------------------------------------------------------
# per-row readings and what is read from them


@dataclass(frozen=True)
class RowReading:
    """One row's teacher-forced reading at its valid label positions (``n`` = answer tokens and
    the final EOS): ``labels``, argmax ``preds`` and ``logp`` (float32) are ``[n]``, ``key`` is
    the ``[n]`` bool mask of key tokens."""

    labels: Int[Tensor, " n"]
    preds: Int[Tensor, " n"]
    logp: Float[Tensor, " n"]
    key: Bool[Tensor, " n"]


@torch.no_grad()
def read_rows(model, encoded: Sequence[dict], pad_token_id: int, batch_size: int) -> list[RowReading]:
    """Teacher-forced readings of every encoded row (:class:`RowReading`, in row order): one
    :func:`token_logprobs` pass (``labels_only``) per ``batch_size`` consecutive rows, without
    gradients, in the model's current train/eval mode (callers set eval mode).

    ``encoded``: rows of :func:`satimp_lab.data.batching.encode_dataset`. The batches are the rows
    in order, on purpose: a row's numbers can move in the last float32 bits with the batch it is
    read in (the attention kernel depends on the padded width, and on whether there is padding at
    all), so length-sorted or merged batches would change every cached metric by ~1e-8."""
    out: list[RowReading] = []
    for start in range(0, len(encoded), batch_size):
        tl = token_logprobs(model, collate(encoded[start:start + batch_size], pad_token_id),
                            keep_logits=True, labels_only=True)
        assert tl.logits is not None  # keep_logits=True
        n = tl.per_row()
        out += [RowReading(*parts) for parts in zip(
            tl.labels.split(n), tl.logits.argmax(-1).split(n), tl.logp.float().split(n), tl.key_mask.split(n))]
    return out


def token_accuracy(readings: Sequence[RowReading]) -> dict[str, float]:
    """Teacher-forced token accuracy of :func:`read_rows`' readings: the share of all label
    positions (answer tokens and the final EOS) whose argmax is the label (``answer_accuracy``),
    and the same share over the key tokens alone (``key_accuracy``; NaN when there are none).
    Pooled over tokens, not averaged per row (exact memorisation, ``evaluation.memorisation``,
    is the per-row mean without the EOS). The one definition that the memorisation report of
    training and the unlearning loop's evaluations share."""
    hits = total = key_hits = key_total = 0
    for r in readings:
        correct = r.preds == r.labels
        hits += int(correct.sum())
        total += correct.numel()
        key_hits += int((correct & r.key).sum())
        key_total += int(r.key.sum())
    return {"answer_accuracy": hits / max(total, 1),
            "key_accuracy": key_hits / key_total if key_total else float("nan")}


def es_from_predictions(pred_ids, label_ids) -> float:
    """ES = s/m for one example: s is the length of the longest suffix of ``label_ids`` (m tokens)
    on which the teacher-forced argmax ``pred_ids`` is right (docs/methods.md#extraction-strength).

    s = m: the question alone suffices (ES 1); a wrong last token gives ES 0. Equivalently
    ES = 1 - k*/m with k* the shortest answer prefix from which greedy decoding reproduces the
    rest exactly. Raises ``ValueError`` when the two differ in length or are empty."""
    pred = torch.as_tensor(pred_ids).reshape(-1)
    label = torch.as_tensor(label_ids).reshape(-1)
    if pred.shape != label.shape:
        raise ValueError(f"pred_ids and label_ids differ in length: {pred.numel()} vs {label.numel()}")
    m = label.numel()
    if m == 0:
        raise ValueError("ES of an empty answer is undefined")
    wrong = (pred != label).nonzero().reshape(-1)
    s = m if wrong.numel() == 0 else m - 1 - int(wrong[-1])
    return s / m


def _summary(readings: Sequence[RowReading], batch_size: int) -> dict:
    """:func:`teacher_forced_summary`'s numbers from the rows' readings (row order). The
    log-likelihood is summed as the per-batch float32 sums of consecutive ``batch_size`` rows:
    the same numbers, to the last bit, as reading those rows one batch after the other."""
    logp_sum, tokens = 0.0, 0
    for start in range(0, len(readings), batch_size):
        logp = torch.cat([r.logp for r in readings[start:start + batch_size]])
        logp_sum += logp.sum().item()
        tokens += len(logp)
    es_values = [es_from_predictions(r.preds, r.labels) for r in readings]
    return {"mean_logp": logp_sum / tokens, **token_accuracy(readings), "es": float(np.mean(es_values))}


@torch.no_grad()
def teacher_forced_summary(model, encoded: list[dict], pad_token_id: int, batch_size: int = 64) -> dict:
    """Cheap evaluation in one forward pass per batch (:func:`read_rows`): mean answer-token
    log-likelihood (``mean_logp``, nats per label token), answer and key-token argmax accuracy
    (:func:`token_accuracy`), and the teacher-forced extraction strength (``es``: ES = s/m, the
    share of the answer, from the end, that the model reproduces exactly; the official rule,
    :func:`es_from_predictions`; mean over rows). Every label position counts, the final EOS
    included (docs/departures.md). The model is read in eval mode; its train mode is restored."""
    was_training = model.training
    if was_training:
        model.eval()
    summary = _summary(read_rows(model, encoded, pad_token_id, batch_size), batch_size)
    if was_training:
        model.train()
    return summary
