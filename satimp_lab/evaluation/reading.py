"""How the metrics read a model, and what a metric returns (docs/methods.md#metrics).

Every per-example metric returns a :class:`MetricResult`: an aggregate (``agg_value``), the value
of every example keyed by its ``qa_id`` (``value_by_index``), and anything else worth keeping
(``extra``) -- the same contract as open-unlearning's metrics. Set-level statistics (forget
quality, model utility, MIA AUC) have no per-example values of their own; their
``value_by_index`` holds the per-example inputs where that makes sense, else it is empty.

How a model is read. One teacher-forced forward pass per (question, answer) pair through
:func:`satimp_lab.models.reading.read_rows`, the same code training uses: the labels are the answer
tokens followed by one EOS (docs/methods.md#which-tokens-count), right-padded batches,
``torch.no_grad()``, model in eval mode (its previous mode is restored afterwards, so
:func:`satimp_lab.evaluation.metrics.evaluate` can be called mid-training).
:func:`score_answers` exposes that pass; every likelihood metric is a reduction of its output.
:func:`generate_answers` is the other reading: greedy decoding from the prompt alone (ROUGE).

Prompt format. The default everywhere is ``"qa"``, the format the target model was trained on.
The official ES script uses ``"### Question: {q}\\n ### Answer: "`` (our ``"es"`` format), which
is out of distribution for a model fine-tuned only on ``"qa"`` (as our tiny models are): ES
measured there mixes "forgot the fact" with "never saw this prompt". ``prompt_format="es"``
reproduces the official setting. Pass ``bundle.prompt_format`` for other tiers.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.batching import encode_dataset, get_prompt_format
from ..errors import InputError
from ..models.reading import _plain_llama, read_rows

__all__ = ["MetricResult", "ScoredAnswer", "check_model_tokenizer", "score_answers", "generate_answers"]


# ----------------------------------------------------------------------------------------------
# result type and input checks


@dataclass
class MetricResult:
    """One metric on one set of examples.

    name            metric name (a key of :data:`METRICS` where there is one)
    agg_value       the aggregate that goes in a results table
    value_by_index  per-example values keyed by ``qa_id`` (empty for set-level statistics)
    extra           anything else: token counts, raw components, settings used
    """

    name: str
    agg_value: float
    value_by_index: dict[int, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.agg_value = float(self.agg_value)

    def values(self) -> np.ndarray:
        """Per-example values in ``qa_id`` order of insertion (the input row order)."""
        return np.array(list(self.value_by_index.values()), dtype=float)


def _as_rows(rows, what: str = "rows") -> list[dict]:
    """A ``datasets.Dataset`` or a list of dicts -> list of dicts; empty or duplicate ids raise."""
    if rows is None:
        raise InputError(f"{what}: got None instead of a dataset")
    rows = rows.to_list() if hasattr(rows, "to_list") else list(rows)
    if not rows:
        raise InputError(f"{what}: the dataset is empty; a metric of no examples is undefined")
    ids = [r.get("qa_id", i) for i, r in enumerate(rows)]
    if len(set(ids)) != len(ids):
        # per-example values are keyed by qa_id: duplicates would silently overwrite each other
        raise InputError(f"{what}: qa_id values are not unique")
    return rows


def _qa_id(row: dict, i: int) -> int:
    return int(row.get("qa_id", i))


def check_model_tokenizer(model, tokenizer) -> None:
    """Raise ``ValueError`` unless ``tokenizer`` plausibly belongs to ``model``.

    The check compares ``len(tokenizer)`` with the rows of the model's input embedding. The
    embedding may be *padded* beyond the tokenizer (Phi-1.5: 50 295 tokens, 51 200 rows; Qwen2:
    ~0.2 %), so up to 2 % + 64 extra rows are accepted; fewer rows than tokens (ids would index
    out of range) or a much larger embedding (e.g. a 512-token tokenizer on a 1024-row model)
    raise. Models that expose neither ``get_input_embeddings`` nor ``config.vocab_size`` are not
    checked. Also requires a pad token (batching) and an EOS token (answer end).

    A model made by this package (``models.cache.get_model``, ``models.build.pretrained_bundle``) carries
    the fingerprint of its tokenizer (``models.build.tokenizer_fingerprint``) on its config; another
    tokenizer raises even when its vocabulary has the same size (its ids would mean other
    tokens: the model runs, silently reading nonsense). All failures raise
    :class:`~satimp_lab.errors.InputError`.
    """
    from ..models.build import TOKENIZER_FINGERPRINT_ATTR, tokenizer_fingerprint

    expected = getattr(getattr(model, "config", None), TOKENIZER_FINGERPRINT_ATTR, None)
    if expected is not None:
        found = tokenizer_fingerprint(tokenizer)
        if found != expected:
            raise InputError(f"mismatched tokenizer: its fingerprint is {found} but the model was "
                             f"made with tokenizer {expected}; use the tokenizer the model was "
                             f"trained with (e.g. bundle.tokenizer)")
    n_tokens = len(tokenizer)
    n_rows = None
    if hasattr(model, "get_input_embeddings") and model.get_input_embeddings() is not None:
        n_rows = model.get_input_embeddings().weight.shape[0]
    elif getattr(getattr(model, "config", None), "vocab_size", None):
        n_rows = model.config.vocab_size
    if n_rows is not None and not (n_tokens <= n_rows <= n_tokens * 1.02 + 64):
        raise InputError(
            f"mismatched tokenizer: it has {n_tokens} tokens but the model's input embedding has "
            f"{n_rows} rows; use the tokenizer the model was trained with")
    if tokenizer.pad_token_id is None:
        raise InputError("the tokenizer has no pad token; set tokenizer.pad_token (e.g. to EOS)")
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no EOS token")


@contextlib.contextmanager
def _eval_mode(model):
    """Eval mode and no gradients inside; the model's previous train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------------
# reading a model: one teacher-forced pass, or greedy generation


@dataclass
class ScoredAnswer:
    """Teacher-forced reading of one (question, answer) pair.

    labels  ``[n]`` label ids: the answer tokens, then the EOS (always the last)
    preds   ``[n]`` argmax of the model's next-token logits at the same positions
    logp    ``[n]`` log p(label | prompt, previous answer tokens)
    """

    qa_id: int
    labels: torch.Tensor
    preds: torch.Tensor
    logp: torch.Tensor

    def tokens(self, include_eos: bool):
        """(labels, preds, logp) restricted to the answer tokens, plus the EOS if asked."""
        end = None if include_eos else -1
        return self.labels[:end], self.preds[:end], self.logp[:end]

    @property
    def nll(self) -> float:
        """Mean NLL over answer tokens and EOS: the TOFU length-normalised loss l(a)."""
        return float(-self.logp.double().mean())


def score_answers(model, tokenizer, rows, question_field: str = "question",
                  answer_field: str = "answer", prompt_format="qa", batch_size: int = 32,
                  ) -> list[ScoredAnswer]:
    """One batched teacher-forced pass over ``rows`` (:func:`models.reading.read_rows`: the output head
    on the answer positions only); returns one :class:`ScoredAnswer` per row, in row order. The
    building block of every likelihood metric."""
    rows = _as_rows(rows)
    check_model_tokenizer(model, tokenizer)
    encoded = encode_dataset(tokenizer, rows, prompt_format, question_field=question_field,
                             answer_field=answer_field, with_key_spans=False)
    with _eval_mode(model):
        readings = read_rows(model, encoded, tokenizer.pad_token_id, batch_size)
    return [ScoredAnswer(int(e["example_id"]), r.labels.cpu(), r.preds.cpu(), r.logp.cpu())
            for e, r in zip(encoded, readings)]


def _prompt_ids(tokenizer, fmt, question: str) -> list[int]:
    """Prompt token ids exactly as :func:`batching.encode_example` builds them (BOS + prompt)."""
    ids = tokenizer(fmt.prompt(question, tokenizer), add_special_tokens=False)["input_ids"]
    if fmt.add_bos and tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def _greedy(model, input_ids, attention_mask, max_new_tokens: int, eos_id: int, pad_id: int):
    """Greedy continuation ``[B, <=max_new_tokens]`` of a left-padded batch.

    A plain Hugging Face Llama is decoded by :func:`_greedy_llama` (``generate``'s tokens at less
    CPU), other HF models use ``generate`` (KV cache, correct positions under left padding);
    anything else that maps ``input_ids`` to ``.logits`` gets a plain loop (the unit tests' fakes)."""
    width = input_ids.shape[1]
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(limit, int) and width + max_new_tokens > limit:  # never run past the positions
        max_new_tokens = max(1, limit - width)
    if _fast_decoding(model):
        return _greedy_llama(model, input_ids, attention_mask, max_new_tokens, eos_id, pad_id)
    if hasattr(model, "generate"):
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=eos_id)
        return out[:, width:]
    done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        nxt = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        input_ids = torch.cat([input_ids, nxt[:, None]], 1)
        attention_mask = torch.cat([attention_mask, (~done).long()[:, None]], 1)
        done |= nxt == eos_id
        if done.all():
            break
    return input_ids[:, width:]


def _fast_decoding(model) -> bool:
    """Whether :func:`_greedy_llama` can decode ``model``: a plain Hugging Face Llama with SDPA
    attention that takes a ``cache`` and whose decoder layers take ``cache`` and
    ``position_embeddings`` and return the hidden states (transformers 5); anything else goes
    through ``generate``."""
    if not (_plain_llama(model) and getattr(model.config, "_attn_implementation", None) == "sdpa"):
        return False
    # mypy does not count type[Any] as Hashable (functools.cache's argument); every class is hashable
    return _takes_cache(type(model)) and _layer_takes_cache(type(model.model.layers[0]))  # type: ignore[arg-type]


@functools.cache
def _takes_cache(model_type) -> bool:
    import inspect

    return "cache" in inspect.signature(model_type.forward).parameters


@functools.cache
def _layer_takes_cache(layer_type) -> bool:
    import inspect

    params = inspect.signature(layer_type.forward).parameters
    returns = inspect.signature(layer_type.forward).return_annotation
    return {"cache", "position_embeddings"} <= set(params) and returns in (torch.Tensor, "torch.Tensor")


def _greedy_llama(model, input_ids, attention_mask, max_new_tokens: int, eos_id: int, pad_id: int):
    """``model.generate``'s greedy decoding of a plain Hugging Face Llama, token for token, at
    ~0.8x its CPU time: the prompt pass is the model's own call with generate's arguments (left
    padding: positions from the attention mask), and each new token runs the decoder layers
    directly, with the attention mask that ``create_causal_mask`` builds for one new token under
    a KV cache (``[batch, 1, 1, kv]`` bool: the padding mask). That skips generate's and the
    model's per-step wrappers, ~1 ms of every ~4 ms step for the tiny models on a CPU. Finished
    rows get ``pad_id``, as in ``generate``. ``tests/integration/test_metrics_models.py`` checks
    the tokens against ``generate``."""
    from transformers import DynamicCache

    batch, width = input_ids.shape
    positions = attention_mask.long().cumsum(-1) - 1
    positions.masked_fill_(attention_mask == 0, 1)
    cache = DynamicCache(config=model.config)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
                cache_position=torch.arange(width, device=input_ids.device), cache=cache,
                logits_to_keep=1)
    logits = out.logits[:, -1, :].to(copy=True, dtype=torch.float32)
    inner, mask, unfinished, new = model.model, attention_mask, torch.ones_like(input_ids[:, 0]), []
    for step in range(max_new_tokens):
        token = logits.argmax(-1) * unfinished + pad_id * (1 - unfinished)
        new.append(token)
        unfinished = unfinished & (token != eos_id).long()
        if step == max_new_tokens - 1 or unfinished.max() == 0:
            break
        mask = torch.cat([mask, mask.new_ones((batch, 1))], -1)
        position = (mask.long().cumsum(-1) - 1)[:, -1:]
        hidden = inner.embed_tokens(token[:, None])
        rope = inner.rotary_emb(hidden, position)
        for layer in inner.layers:
            hidden = layer(hidden, attention_mask=mask.bool()[:, None, None, :], position_ids=position,
                           cache=cache, use_cache=True, position_embeddings=rope)
        logits = model.lm_head(inner.norm(hidden)[:, -1:, :])[:, -1, :].to(copy=True, dtype=torch.float32)
    return torch.stack(new, 1)


def generate_answers(model, tokenizer, rows, question_field: str = "question", prompt_format="qa",
                     max_new_tokens: int = 128, batch_size: int = 32) -> dict[int, str]:
    """Greedy answers to each row's question: {qa_id: text}.

    Left-padded batches, ``do_sample=False``, at most ``max_new_tokens`` new tokens, cut at the
    first special token (EOS, BOS, pad: the end of the answer's turn), decoded, then cut before
    the first text that starts another turn of the prompt format (``PromptFormat.first_answer``:
    ``"\nQuestion:"`` for ``"qa"``), and stripped. Without that cut a model that answers "I do
    not know." and runs on with "\nQuestion: ...\nAnswer: <the true answer>" would be scored on
    the run-on. (TOFU bounds the *total* length at 200 tokens; we bound the new tokens, which
    does not depend on the prompt length.)
    """
    rows = _as_rows(rows)
    check_model_tokenizer(model, tokenizer)
    fmt = get_prompt_format(prompt_format)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    special = {eos, pad, *getattr(tokenizer, "all_special_ids", ())}
    device = next(model.parameters()).device
    texts: dict[int, str] = {}
    with _eval_mode(model):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            prompts = [_prompt_ids(tokenizer, fmt, r[question_field]) for r in chunk]
            width = max(map(len, prompts))
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
            att = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
            new = _greedy(model, ids, att, max_new_tokens, eos, pad).tolist()
            for i, (row, toks) in enumerate(zip(chunk, new)):
                end = next((j for j, t in enumerate(toks) if t in special), len(toks))
                text = tokenizer.decode(toks[:end], skip_special_tokens=True)
                texts[_qa_id(row, start + i)] = fmt.first_answer(text)
    return texts
