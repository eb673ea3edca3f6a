"""Per-token likelihood and weight records, taken from the training forward pass itself.

Every unlearning step hands :meth:`TokenTrace.record` the tensors it already has -- the label
log-likelihoods that fed the loss and the detached weights that scaled it -- so tracing costs no
extra forward pass and no extra ``[batch, pos, vocab]`` tensor: only a copy of the valid entries of
a few ``[batch, pos]`` tensors to the CPU.

The trace is stored as flat numpy columns (one entry per valid forget token per step) and exposed
as a tidy pandas DataFrame with the columns in :data:`COLUMNS`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..store import atomic_write

COLUMNS = {  # name -> numpy dtype
    "step": np.int32,        # optimiser step (0-based) the token was seen at
    "example_id": np.int64,  # the row's qa_id
    "position": np.int32,    # label position in the shifted sequence
    "token_id": np.int32,    # the label token
    "logp": np.float32,      # log-likelihood of the label token before the step's update
    "weight": np.float32,    # the detached weight the loss gave the token
    "is_key": np.bool_,      # inside an annotated fact span
}


class TokenTrace:
    """Append-only columns of per-token records; cheap to record, tidy to read."""

    def __init__(self) -> None:
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in COLUMNS}

    def record(self, step: int, example_id: torch.Tensor, logp: torch.Tensor, weights: torch.Tensor,
               mask: torch.Tensor, key_mask: torch.Tensor, labels: torch.Tensor) -> None:
        """Record the valid tokens of one micro-batch.

        example_id ``[batch]``; logp, weights, mask, key_mask, labels ``[batch, pos]``.
        """
        mask = mask.bool()
        rows, positions = mask.nonzero(as_tuple=True)
        n = rows.numel()
        columns = {
            "step": np.full(n, step),
            "example_id": example_id.to(rows.device)[rows],
            "position": positions,
            "token_id": labels[mask],
            "logp": logp.detach()[mask],
            "weight": weights.detach()[mask],
            "is_key": key_mask.bool()[mask],
        }
        for name, value in columns.items():
            if isinstance(value, torch.Tensor):
                value = value.cpu().numpy()
            self._chunks[name].append(np.asarray(value, dtype=COLUMNS[name]))

    def columns(self) -> dict[str, np.ndarray]:
        return {name: (np.concatenate(chunks) if chunks else np.empty(0, COLUMNS[name]))
                for name, chunks in self._chunks.items()}

    def __len__(self) -> int:
        return sum(len(c) for c in self._chunks["step"])

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per valid forget token per step (see :data:`COLUMNS`)."""
        frame = pd.DataFrame(self.columns())
        frame["p"] = np.exp(frame["logp"].astype(np.float64))  # likelihood, the paper's x-axis
        return frame

    @classmethod
    def from_columns(cls, columns: dict[str, np.ndarray]) -> "TokenTrace":
        trace = cls()
        for name in COLUMNS:
            if name not in columns:
                raise ValueError(f"trace file lacks column {name!r}")
            trace._chunks[name] = [np.asarray(columns[name], dtype=COLUMNS[name])]
        return trace

    def save(self, path: str | Path) -> None:
        """Compressed ``.npz``, written atomically (``store.atomic_write``)."""
        columns = self.columns()
        # numpy's stub lets **kwds fill its allow_pickle: bool; our keys are COLUMNS' names, never that
        atomic_write(path, lambda tmp: np.savez_compressed(tmp, **columns))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> "TokenTrace":
        """Read a file written by :meth:`save`. Raises ``ValueError`` naming the file if it is
        missing, truncated, not an ``.npz`` or lacks a column."""
        try:
            with np.load(path) as data:
                return cls.from_columns({k: data[k] for k in data.files})
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise ValueError(f"cannot read trace file {path}: {type(err).__name__}: {err}") from None

    def sorted(self) -> "TokenTrace":
        """Rows ordered by (step, example_id, position): a canonical order for comparing traces
        gathered from several processes with a single-process one."""
        cols = self.columns()
        order = np.lexsort((cols["position"], cols["example_id"], cols["step"]))
        return TokenTrace.from_columns({k: v[order] for k, v in cols.items()})
