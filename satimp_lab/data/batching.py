"""From QA rows to padded batches: prompt formats, encoding (answer-only labels, key-token masks
from fact spans) and collation. A model reads these batches through
:func:`satimp_lab.models.reading.token_logprobs`.

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
from jaxtyping import Int
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
