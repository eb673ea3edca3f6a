"""A scripted language model for the evaluation tests whose log-likelihoods are known by hand
(``test_muse_metrics``, ``test_multiple_choice``): it predicts the token a table names for each
scripted prefix with logit :data:`LOGIT`, every other token with 0. Not a test module: the test
modules of this folder import it (pytest puts a test module's folder on ``sys.path``)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

LOGIT = 5.0
"""The scripted token's logit; every other token's is 0."""


class ScriptedLM(torch.nn.Module):
    """Looks the whole unpadded prefix up in ``table`` (prefix tuple -> next token) and gives that
    token logit LOGIT, every other token 0; a prefix not in the table predicts ``default``. So a
    scripted token has log p = LOGIT - log(e^LOGIT + V - 1) and any other -log(e^LOGIT + V - 1)."""

    def __init__(self, vocab_size: int, default: int, scripts=()):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, 2)  # for the vocabulary check and .parameters()
        self.vocab_size, self.default, self.table = vocab_size, default, {}
        for s in scripts:
            self.add(s)

    def add(self, seq, positions=None):
        """Script ``seq``: from each prefix ``seq[:j]`` predict ``seq[j]`` (only for j in ``positions``)."""
        for j in range(1, len(seq)):
            if positions is None or j in positions:
                self.table[tuple(seq[:j])] = seq[j]

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids, attention_mask=None, **_):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        B, T = input_ids.shape
        logits = torch.zeros((B, T, self.vocab_size))
        for b in range(B):
            prefix = []
            for t in range(T):
                if attention_mask[b, t]:
                    prefix.append(int(input_ids[b, t]))
                    logits[b, t, self.table.get(tuple(prefix), self.default)] = LOGIT
        return SimpleNamespace(logits=logits)


def ids_of(tok, text):
    """The token ids of ``text`` without special tokens."""
    return tok(text, add_special_tokens=False)["input_ids"]


def hit(tok):
    """log p of a scripted token under :class:`ScriptedLM` with ``tok``'s vocabulary (nats)."""
    return LOGIT - math.log(math.exp(LOGIT) + len(tok) - 1)


def miss(tok):
    """log p of any other token (nats)."""
    return -math.log(math.exp(LOGIT) + len(tok) - 1)
