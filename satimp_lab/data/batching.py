"""From QA rows to padded batches, and from a model and a batch to per-token log-likelihoods.

The one function every part of the library uses to read a model is :func:`token_logprobs`:
training, tracing, metrics and analysis all see the same shifted, masked log-likelihoods.

Batch layout (all tensors ``[batch, pos]`` unless noted, right-padded):
    input_ids       token ids: [BOS] prompt answer [EOS] pad...
    attention_mask  1 on real tokens
    labels          the input id on answer tokens and the final EOS, -100 elsewhere (prompt, pad)
    key_mask        1 on answer tokens that overlap an annotated fact span (``key_spans``)
    example_id      ``[batch]`` the row's ``qa_id``
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from ..errors import InputError

IGNORE_INDEX = -100  # labels with this value carry no loss (HF convention)


@dataclass(frozen=True)
class PromptFormat:
    """How a question becomes a prompt, and what separates the prompt from the answer."""

    name: str
    template: str = "Question: {question}\nAnswer:"
    """Prompt text; ``{question}`` is replaced by the question."""
    answer_prefix: str = " "
    """Text between the prompt and the answer (part of the answer's first token for BPE)."""
    chat: bool = False
    """Use the tokenizer's chat template for the prompt instead of ``template`` (instruct models)."""
    add_bos: bool = True
    """Prepend the tokenizer's BOS token when it has one."""
    next_turn: tuple[str, ...] = ("\nQuestion:", "\nAnswer:")
    """Texts that start another turn of this format: a generated answer ends before the first
    one (a model may run on into a new question and answer it; see :meth:`first_answer`)."""

    def prompt(self, question: str, tokenizer=None) -> str:
        if self.chat:
            if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
                raise ValueError(f"prompt format {self.name!r} needs a tokenizer with a chat template")
            return tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                                 tokenize=False, add_generation_prompt=True)
        return self.template.format(question=question)

    def first_answer(self, text: str) -> str:
        """``text`` (a decoded generation) cut before the first :attr:`next_turn` marker, stripped:
        the answer to the prompt's question, without a run-on "\nQuestion: ...\nAnswer: ..."."""
        cut = min((i for i in (text.find(m) for m in self.next_turn) if i >= 0), default=len(text))
        return text[:cut].strip()


PROMPT_FORMATS = {
    # synthetic tiers and Phi-1.5 on TOFU (official TOFU format)
    "qa": PromptFormat("qa"),
    # Llama-2-chat on TOFU (official: "[INST] {q} [/INST]{a}", empty answer tag)
    "llama2": PromptFormat("llama2", "[INST] {question} [/INST]", "", add_bos=True,
                           next_turn=("[INST]", "[/INST]")),
    # the official ES script's format (docs/methods.md#extraction-strength) -- differs from the
    # training format on purpose
    "es": PromptFormat("es", "### Question: {question}\n ### Answer:", " ",
                       next_turn=("### Question:", "### Answer:")),
    # instruct models with a chat template (SmolLM2): a turn ends with a special token (the EOS,
    # <|im_end|>), and generations are cut at the first special token
    "chat": PromptFormat("chat", chat=True, answer_prefix="", add_bos=False,
                         next_turn=("<|im_start|>", "<|im_end|>")),
}


def get_prompt_format(name_or_format: str | PromptFormat) -> PromptFormat:
    if isinstance(name_or_format, PromptFormat):
        return name_or_format
    if name_or_format not in PROMPT_FORMATS:
        raise InputError(f"unknown prompt format {name_or_format!r}; valid: {sorted(PROMPT_FORMATS)}")
    return PROMPT_FORMATS[name_or_format]


def encode_example(tokenizer, question: str, answer: str, key_spans: Iterable[Sequence[int]] = (),
                   prompt_format: str | PromptFormat = "qa", max_length: int | None = None,
                   example_id: int = 0) -> dict:
    """Tokenise one QA pair into ``input_ids``, ``labels`` and ``key_mask`` (lists of ints).

    Answer tokens are found through the tokenizer's character offsets, so the same code serves a
    byte-level BPE, SentencePiece or any fast tokenizer. A token is a key token if its characters
    overlap one of ``key_spans`` (character spans inside ``answer``).
    Raises ``ValueError`` if the encoded pair is longer than ``max_length`` (never cut silently),
    and :class:`~satimp_lab.errors.InputError` for an empty answer or a key span outside it.
    """
    fmt = get_prompt_format(prompt_format)
    if not (isinstance(answer, str) and answer.strip()):
        raise InputError(f"example {example_id}: field 'answer' must be a non-empty string, got {answer!r}")
    key_spans = [tuple(span) for span in key_spans]
    for span in key_spans:
        if not (len(span) == 2 and 0 <= span[0] < span[1] <= len(answer)):
            raise InputError(f"example {example_id}: field 'key_spans': span {list(span)} is not a "
                             f"[start, end) pair with 0 <= start < end <= {len(answer)} (the answer's length)")
    prompt = fmt.prompt(question, tokenizer)
    answer_start = len(prompt) + len(fmt.answer_prefix)  # char offset of the answer in ``text``
    text = prompt + fmt.answer_prefix + answer
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = [(s + answer_start, e + answer_start) for s, e in key_spans]
    input_ids, labels, key_mask = [], [], []
    if fmt.add_bos and tokenizer.bos_token_id is not None:
        input_ids, labels, key_mask = [tokenizer.bos_token_id], [IGNORE_INDEX], [0]
    for token_id, (start, end) in zip(enc["input_ids"], enc["offset_mapping"]):
        in_answer = start >= len(prompt)  # a token straddling the boundary counts as prompt
        input_ids.append(token_id)
        labels.append(token_id if in_answer else IGNORE_INDEX)
        key_mask.append(int(in_answer and any(start < ke and end > ks for ks, ke in spans)))
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; the answer's end cannot be labelled")
    input_ids.append(tokenizer.eos_token_id)  # the model must learn where the answer stops
    labels.append(tokenizer.eos_token_id)
    key_mask.append(0)
    if not any(l != IGNORE_INDEX for l in labels[:-1]):
        raise InputError(f"example {example_id}: the answer produced no tokens (empty answer?)")
    if max_length is not None and len(input_ids) > max_length:
        raise InputError(f"example {example_id} is {len(input_ids)} tokens long, more than "
                         f"max_length={max_length}; shorten it or raise max_length (sequences are "
                         f"never truncated silently)")
    return {"input_ids": input_ids, "labels": labels, "key_mask": key_mask, "example_id": example_id}


def encode_dataset(tokenizer, rows, prompt_format: str | PromptFormat = "qa",
                   max_length: int | None = None, question_field: str = "question",
                   answer_field: str = "answer", with_key_spans: bool = True) -> list[dict]:
    """Encode every row of a ``datasets.Dataset`` (or list of dicts) with :func:`encode_example`.

    ``question_field``/``answer_field`` select e.g. the paraphrased question; key spans refer to
    ``answer`` and are used only when ``answer_field == "answer"``.

    Encodings are remembered per tokenizer (for as long as the tokenizer lives): a run's
    evaluations and final metrics read the same rows again and again, and re-tokenising them took
    ~6 % of a tiny-tier run. Each call returns fresh dicts and lists, so callers may modify them.
    A tokenizer must not be changed (e.g. tokens added) after it has encoded rows.
    """
    if len(rows) == 0:
        raise ValueError("cannot encode an empty dataset")
    if hasattr(rows, "to_list"):  # a datasets.Dataset: one Arrow conversion, not one per row
        rows = rows.to_list()
    memo = _encoding_memo(tokenizer)
    fmt_key = prompt_format if isinstance(prompt_format, str) else repr(prompt_format)
    encoded = []
    for i, row in enumerate(rows):
        for f in (question_field, answer_field):
            if f not in row:
                raise InputError(f"row {i} has no field {f!r}")
        spans = row.get("key_spans", []) if with_key_spans and answer_field == "answer" else []
        args = (row[question_field], row[answer_field], tuple(tuple(s) for s in spans), fmt_key,
                max_length, row.get("qa_id", i))
        example = memo.get(args) if memo is not None else None
        if example is None:
            example = encode_example(tokenizer, row[question_field], row[answer_field], spans,
                                     prompt_format, max_length, row.get("qa_id", i))
            if memo is not None:
                memo[args] = example
        encoded.append({k: list(v) if isinstance(v, list) else v for k, v in example.items()})
    return encoded


_ENCODINGS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _encoding_memo(tokenizer) -> dict | None:
    """The encodings remembered for ``tokenizer`` (None if it cannot be weakly referenced)."""
    try:
        return _ENCODINGS.setdefault(tokenizer, {})
    except TypeError:
        return None


def collate(examples: Sequence[dict],
            pad_token_id: int) -> dict[str, Int[Tensor, "batch pos"] | Int[Tensor, " batch"]]:
    """Right-pad encoded examples into a batch (see module docstring for the layout)."""
    if not examples:
        raise ValueError("cannot collate an empty list of examples")
    width = max(len(e["input_ids"]) for e in examples)

    def pad(key, value):
        return torch.tensor([e[key] + [value] * (width - len(e[key])) for e in examples])

    return {
        "input_ids": pad("input_ids", pad_token_id),
        "attention_mask": torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"]))
                                        for e in examples]),
        "labels": pad("labels", IGNORE_INDEX),
        "key_mask": pad("key_mask", 0),
        "example_id": torch.tensor([e["example_id"] for e in examples]),
    }


def iterate_batches(encoded: Sequence[dict], batch_size: int, pad_token_id: int):
    """Batches in dataset order (for evaluation)."""
    for start in range(0, len(encoded), batch_size):
        yield collate(encoded[start:start + batch_size], pad_token_id)


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

    The batches are the rows in order, on purpose: a row's numbers can move in the last float32
    bits with the batch it is read in (the attention kernel depends on the padded width, and
    on whether there is padding at all), so length-sorted or merged batches would change every
    cached metric by ~1e-8."""
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

    The log-softmax is computed inside ``cross_entropy`` exactly as for a plain NLL loss, so
    reading likelihoods for weighting or tracing costs no extra ``[batch, pos, vocab]`` tensor.

    ``labels_only=True``: the valid label positions only, flattened (see :class:`TokenLogprobs`);
    for a plain Hugging Face Llama the output head then runs on those positions alone (less than
    half the positions of a QA pair are answer tokens). The numbers are the same as the full
    reading's at those positions: a position's logits, log-softmax and argmax do not depend on
    the other positions (``tests/unit/test_batching.py`` checks it). Evaluation and metrics read
    models this way; training keeps the full reading.
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
