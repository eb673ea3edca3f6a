"""A sweep shared among the processes of ``accelerate launch`` (or ``torchrun``): one run per GPU.

The paper tier's study runs are independent fine-tunings of one model, so many GPUs are used best
by giving each process whole runs, not by splitting every run's batches across them: each of
``WORLD_SIZE`` processes computes every ``WORLD_SIZE``-th run of the sweep on its own GPU
(``LOCAL_RANK``) and reads the others' runs from the shared cache as they appear
(``experiments.lab.Lab.sweep(executor=Shards.from_env())``). Which process owns a run depends only
on the run's place in the sweep, never on what the cache already holds, so every run has exactly
one owner however the processes start. A run that fails leaves a ``.failed`` note beside its
cache entry, so the processes waiting for it stop waiting and report it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from ..errors import InputError

T = TypeVar("T")

LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                      "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                      "TORCHELASTIC_RUN_ID", "ACCELERATE_DYNAMO_BACKEND")
"""What ``accelerate launch`` / ``torchrun`` set in each process; :meth:`Shards.detach` removes them,
so that each run's ``Accelerator`` is a single-process one on this process's GPU."""


@dataclass(frozen=True)
class Shards:
    """This process's share of a sweep: runs ``rank``, ``rank + world``, ... of its distinct runs."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    poll_seconds: float = 10.0
    """How often a process looks for a run that another process computes."""

    def __post_init__(self):
        if not (isinstance(self.world, int) and self.world >= 1 and 0 <= self.rank < self.world):
            raise InputError(f"Shards: rank must be in [0, world) and world >= 1, got rank {self.rank!r}, "
                             f"world {self.world!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Shards":
        """The share that ``accelerate launch`` / ``torchrun`` gave this process (``RANK``,
        ``WORLD_SIZE``, ``LOCAL_RANK``); one process (rank 0 of 1) without them. Raises
        :class:`InputError` naming the variable when one is not an integer."""
        source: Mapping[str, str] = os.environ if env is None else env
        values = {}
        for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
            text = source.get(name, str(default))
            if not text.strip().lstrip("-").isdigit():
                raise InputError(f"${name} must be an integer, got {text!r}")
            values[name] = int(text)
        return cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])

    def detach(self) -> None:
        """Make this process a single-GPU one: pin it to GPU ``local_rank`` (when there are GPUs)
        and remove :data:`LAUNCHER_VARIABLES` from the environment, so the Accelerator that each
        run makes does not join the launcher's process group."""
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank % torch.cuda.device_count())
        for name in LAUNCHER_VARIABLES:
            os.environ.pop(name, None)

    def owns(self, index: int) -> bool:
        """Whether this process computes the sweep's ``index``-th distinct run."""
        return index % self.world == self.rank

    def wait_for(self, read: Callable[[], T | None], folder: Path, describe: str) -> T:
        """``read()`` once it returns a run (another process computes it), polling every
        :attr:`poll_seconds`. Raises ``RuntimeError`` with the owner's error when the owner left a
        ``.failed`` note for ``folder`` (:meth:`note_failure`)."""
        failed = failure_note(folder)
        while True:
            found = read()
            if found is not None:
                return found
            if failed.exists():
                raise RuntimeError(f"{describe} failed in the process that owns it: "
                                   f"{failed.read_text(encoding='utf-8').strip()}")
            time.sleep(self.poll_seconds)


def failure_note(folder: Path) -> Path:
    """Where the owner of the run cached in ``folder`` notes that it failed."""
    return Path(folder).with_name(Path(folder).name + ".failed")


def note_failure(folder: Path, error: BaseException) -> None:
    """Leave the note that :meth:`Shards.wait_for` reads (the error on one line)."""
    from ..store import atomic_write

    Path(folder).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(failure_note(folder), f"{type(error).__name__}: {' '.join(str(error).split())}\n")
