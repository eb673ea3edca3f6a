"""Shapes in signatures: the public tensor functions of weighting, objectives, batching and reading say the
shapes of their tensors with jaxtyping (annotations only, not checked at run time)."""

import inspect
import typing

import pytest
import torch
from jaxtyping import AbstractArray

from satimp_lab.data import batching
from satimp_lab.models import reading
from satimp_lab.unlearning import objectives, weighting

PUBLIC = [weighting.satimp, weighting.saturation, weighting.importance, weighting.group_average,
          weighting.instance_weights, weighting.batch_weights, weighting.broadcast_to_tokens,
          weighting.hard_sample, weighting.annotated, weighting.npo_implicit_weights,
          weighting.simnpo_implicit_weights, weighting.compose,
          objectives.weighted_ga_loss, objectives.instance_ga_loss, objectives.npo_loss,
          objectives.simnpo_loss, objectives.retain_nll_loss, objectives.kl_to_reference,
          objectives.Method.token_weights, objectives.Method.forget_term,
          objectives.Method.retain_term, objectives.Method.total_loss,
          batching.collate, reading.token_logprobs]


def _dims(hint) -> set[str]:
    """Every jaxtyping dimension string inside ``hint`` (unions and dicts included)."""
    if isinstance(hint, type) and issubclass(hint, AbstractArray):
        return {hint.dim_str}
    return set().union(*(_dims(a) for a in typing.get_args(hint))) if typing.get_args(hint) else set()


@pytest.mark.parametrize("fn", PUBLIC, ids=lambda f: f.__qualname__)
def test_every_tensor_is_annotated_with_its_shape(fn):
    hints = typing.get_type_hints(fn)
    for name, param in inspect.signature(fn).parameters.items():
        assert hints.get(name) is not torch.Tensor, f"{fn.__qualname__}({name}): a bare torch.Tensor"
    tensors = {name: _dims(h) for name, h in hints.items() if _dims(h)}
    assert tensors, f"{fn.__qualname__} has no shape annotation"
    for name in ("logp", "ref_logp", "mask", "key_mask"):
        if name in tensors:
            assert tensors[name] == {"batch pos"}, (fn.__qualname__, name, tensors[name])


def test_shapes_match_the_docstrings():
    hints = typing.get_type_hints
    assert _dims(hints(weighting.instance_weights)["return"]) == {"batch"}   # [batch, pos] -> [batch]
    assert _dims(hints(weighting.batch_weights)["return"]) == {""}           # -> scalar
    assert _dims(hints(objectives.kl_to_reference)["logits"]) == {"batch pos vocab"}
    assert _dims(hints(reading.TokenLogprobs)["logp"]) == {"batch pos", "n"}
