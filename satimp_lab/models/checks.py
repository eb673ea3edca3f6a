"""Input checks for a model nobody on this project made: does it fit the rows it will read?

A Hugging Face model with a short context (a GPT-2 with 40 positions), a tokenizer without an EOS,
or a chat prompt format on a tokenizer without a chat template used to fail deep inside a forward
pass (torch's ``IndexError: index out of range in self``) or the first encoding. These checks run
before any work (``unlearning.loop.unlearn``, ``models.train.train_model``) and raise one
:class:`~satimp_lab.errors.InputError` naming the model, its limit and the offending row. They
tokenise only (the rows' encodings are remembered per tokenizer, ``batching.encode_dataset``, so
the run's own encoding of the same rows is free afterwards); no forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..data.batching import IGNORE_INDEX, encode_dataset, get_prompt_format
from ..errors import InputError

__all__ = ["model_name", "context_limit", "check_tokenizer_for_format", "check_model_fits",
           "check_encoded_fit"]

_CONFIG_LIMITS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length")
"""Config attributes that hold a model's context length (Llama/Phi/most; GPT-2; GPT-2 too; some
remote-code models), read in this order."""
_SANE_TOKENIZER_LIMIT = 1_000_000
"""A tokenizer's ``model_max_length`` above this is transformers' "unknown" placeholder (1e30)."""


def model_name(model, name: str | None = None) -> str:
    """``name``, else the model's ``config._name_or_path`` (its Hub name or folder), else its class."""
    if name:
        return str(name)
    path = getattr(getattr(model, "config", None), "_name_or_path", "")
    return str(path) if path else type(model).__name__


def context_limit(model, tokenizer=None) -> tuple[int | None, str]:
    """``(tokens, source)``: the longest sequence ``model`` reads, and where that number comes from.

    The smallest of the model config's first context attribute (``max_position_embeddings``,
    ``n_positions``, ``n_ctx``, ``seq_length``) and the tokenizer's ``model_max_length`` when that
    is a real number (below 1e6, not transformers' 1e30 placeholder). ``(None, "")`` when neither
    says. Rotary models (Llama) may run past ``max_position_embeddings`` without an error, but
    were never trained there; learned positions (GPT-2) fail with an ``IndexError``.
    """
    found = []
    config = getattr(model, "config", None)
    for attr in _CONFIG_LIMITS:
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:  # an alias (GPT-2's attribute_map) by its own name
            found.append((value, f"config.{getattr(config, 'attribute_map', {}).get(attr, attr)}"))
            break
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < _SANE_TOKENIZER_LIMIT:
        found.append((value, "tokenizer.model_max_length"))
    return min(found) if found else (None, "")


def check_tokenizer_for_format(tokenizer, prompt_format="qa", name: str = "the model") -> None:
    """Raise :class:`InputError` when ``tokenizer`` cannot encode ``prompt_format``'s rows: it has
    no EOS token (every answer ends with one, ``batching.encode_example``), or the format is a
    chat format (``PromptFormat.chat``, the ``chat`` key of ``batching.PROMPT_FORMATS``) and the
    tokenizer has no chat template. ``name`` names the model in the message."""
    fmt = get_prompt_format(prompt_format)
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise InputError(f"the tokenizer of model {name!r} has no EOS token (tokenizer.eos_token is "
                         f"None); every answer ends with one: set tokenizer.eos_token")
    if fmt.chat and getattr(tokenizer, "chat_template", None) is None:
        raise InputError(f"prompt format {fmt.name!r} needs the tokenizer's chat template, but the "
                         f"tokenizer of model {name!r} has none; use prompt_format 'qa' or a "
                         f"tokenizer with a chat_template")


def _as_splits(rows) -> dict:
    """``{split name: rows}`` of a ``DatasetDict`` or mapping, or ``{"rows": rows}`` of one split."""
    return dict(rows) if isinstance(rows, Mapping) else {"rows": rows}


def _pairs(rows, question_fields, answer_fields, where: str) -> list[dict]:
    """One ``{question, answer, qa_id}`` row per (question field, answer text) of every row, list
    fields (``perturbed_answer``) unrolled. Fields a row lacks are skipped, but for the first of
    each (``question``, ``answer``): :class:`InputError` naming the row and the field."""
    out = []
    for i, row in enumerate(rows.to_list() if hasattr(rows, "to_list") else rows):
        qa_id = row.get("qa_id", i)
        for required in (question_fields[0], answer_fields[0]):
            if required not in row:
                raise InputError(f"row qa_id {qa_id} of {where} has no field {required!r}")
        questions = [row[f] for f in question_fields if f in row]
        answers = [a for f in answer_fields if f in row
                   for a in (row[f] if isinstance(row[f], (list, tuple)) else [row[f]])]
        out += [{"question": q, "answer": a, "qa_id": qa_id} for q in questions for a in answers]
    return out


def _prompt_tokens(example: dict) -> int:
    """Tokens before the first label of an encoded row: BOS + prompt (+ answer prefix)."""
    return next((j for j, l in enumerate(example["labels"]) if l != IGNORE_INDEX), len(example["labels"]))


def _longest(encoded: Sequence[dict]) -> tuple[int, object]:
    """``(tokens, qa_id)`` of the longest encoded row (the first on ties; ``(0, None)`` if none)."""
    longest = max(encoded, key=lambda e: len(e["input_ids"]), default=None)
    return (0, None) if longest is None else (len(longest["input_ids"]), longest["example_id"])


def _raise_if_too_long(name: str, limit: tuple[int | None, str], length: int, qa_id, where: str) -> None:
    tokens, source = limit
    if tokens is not None and length > tokens:
        raise InputError(f"model {name!r} reads at most {tokens} tokens ({source}) but row qa_id "
                         f"{qa_id} of {where} is {length} tokens (prompt + answer + EOS); use a "
                         f"model with a longer context or shorter rows")


def check_encoded_fit(model, tokenizer, encoded: Sequence[dict], name: str | None = None,
                      where: str = "rows") -> dict:
    """Raise :class:`InputError` when the longest of ``encoded`` rows (``batching.encode_dataset``
    output: BOS + prompt + answer + EOS) is longer than the model's :func:`context_limit`; the
    message names the model, the limit and its source, the row's qa_id, ``where`` the rows come
    from (a split, "target (full)") and its length. Returns ``{"limit", "limit_source",
    "longest_tokens", "longest_qa_id", "where"}`` (limit None: nothing to check against)."""
    name = model_name(model, name)
    limit = context_limit(model, tokenizer)
    length, qa_id = _longest(encoded)
    _raise_if_too_long(name, limit, length, qa_id, where)
    return {"limit": limit[0], "limit_source": limit[1], "longest_tokens": length,
            "longest_qa_id": qa_id, "where": where}


def check_model_fits(model, tokenizer, rows, prompt_format="qa", name: str | None = None, *,
                     question_fields: Sequence[str] = ("question",),
                     answer_fields: Sequence[str] = ("answer",), new_tokens: int = 0) -> dict:
    """Check, before any work, that ``model`` and ``tokenizer`` can read ``rows`` in ``prompt_format``.

    rows: a ``DatasetDict`` or ``{split: rows}`` (split names appear in the message), or one
        split's rows (a ``Dataset`` or list of dicts; named ``'rows'``).
    question_fields / answer_fields: the fields combined into texts (every question field with every
        answer field; list fields such as ``perturbed_answer`` count each element; fields a row
        lacks are skipped, but for the first of each). The default is what training and
        unlearning read; an evaluation passes e.g. ``("question", "paraphrased_question")`` and
        ``("answer", "paraphrased_answer", "perturbed_answer")``.
    new_tokens: tokens generated after a prompt (an evaluation's ``max_new_tokens``): the longest
        prompt + ``new_tokens`` must fit too.
    name: the model's name in messages (default: :func:`model_name`).

    Raises one :class:`InputError` when the tokenizer has no EOS, when the format needs a chat
    template the tokenizer lacks (:func:`check_tokenizer_for_format`), or when the longest row
    of all splits (BOS + prompt + answer + EOS) is longer than the model's :func:`context_limit`:
    the message names the model, the limit and its source, and that row's split, qa_id and
    length. Tokenises only (encodings are remembered per tokenizer), no forward pass. Returns
    ``{"limit", "limit_source", "longest_tokens", "longest_qa_id", "where",
    "longest_prompt_tokens"}``.
    """
    name = model_name(model, name)
    check_tokenizer_for_format(tokenizer, prompt_format, name)
    limit = context_limit(model, tokenizer)
    plain = tuple(question_fields) == ("question",) and tuple(answer_fields) == ("answer",)
    # (tokens, qa_id, split), first on ties
    longest: tuple[int, object, str | None] = (0, None, None)
    prompt: tuple[int, object, str | None] = (0, None, None)
    for split, split_rows in _as_splits(rows).items():
        if len(split_rows) == 0:
            continue
        if plain:  # the encodings training and unlearning make (and then reuse from the memo)
            encoded = encode_dataset(tokenizer, split_rows, prompt_format)
        else:
            pairs = _pairs(split_rows, tuple(question_fields), tuple(answer_fields), f"split {split!r}")
            encoded = encode_dataset(tokenizer, pairs, prompt_format, with_key_spans=False)
        length, qa_id = _longest(encoded)
        if length > longest[0]:
            longest = (length, qa_id, split)
        first = max(encoded, key=_prompt_tokens)
        if _prompt_tokens(first) > prompt[0]:
            prompt = (_prompt_tokens(first), first["example_id"], split)
    _raise_if_too_long(name, limit, longest[0], longest[1], f"split {longest[2]!r}")
    tokens, source = limit
    if new_tokens and tokens is not None and prompt[0] + new_tokens > tokens:
        raise InputError(f"model {name!r} reads at most {tokens} tokens ({source}) but the prompt of "
                         f"row qa_id {prompt[1]} of split {prompt[2]!r} is {prompt[0]} tokens, and "
                         f"{new_tokens} new tokens are generated after it; use a model with a "
                         f"longer context or fewer new tokens")
    return {"limit": tokens, "limit_source": source, "longest_tokens": longest[0],
            "longest_qa_id": longest[1], "where": f"split {longest[2]!r}" if longest[2] else None,
            "longest_prompt_tokens": prompt[0]}
