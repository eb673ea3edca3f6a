"""What a sweep returns: each run's :class:`RunResult` (read from its cache entry), the
:class:`Sweep` of many, and :class:`MissingReading` for a reading a run's plan did not record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ..errors import InputError
from ..store import CacheError, read_entry
from ..unlearning.run import UnlearnConfig
from ..unlearning.plan import FULL, EvalPlan
from ..unlearning.tracing import TokenTrace
from .setting import Setting


@dataclass
class RunResult:
    """A cached run: its config, per-step history, final metrics and (lazily) its token trace."""

    label: str
    config: UnlearnConfig
    history: pd.DataFrame
    summary: dict
    folder: Path
    status: str = "completed"
    target_seed: int = 0
    """Training seed of the target model the run unlearned (one unit = target seed x seed)."""
    plan: EvalPlan = FULL
    """What the run recorded (its forget curve? its final metrics?)."""

    def describe(self) -> str:
        """``run 'label' (method, params, seed s, target seed t)``, for messages."""
        return (f"run {self.label!r} (method {self.config.method!r}, params {self.config.method_params}, "
                f"seed {self.config.seed}, target seed {self.target_seed})")

    def require(self, reading: str, others: int = 0) -> None:
        """Raise :class:`MissingReading` naming this run when its plan did not record ``reading``:
        ``"curves"`` (the forget split at every evaluation) or ``"final_metrics"``; ``others``:
        how many more runs of the same request lack it (said in the message)."""
        if reading not in ("curves", "final_metrics"):
            raise ValueError(f"unknown reading {reading!r}; valid: 'curves', 'final_metrics'")
        if not getattr(self.plan, reading):
            what = "its forget curve" if reading == "curves" else "the final metrics of its model"
            more = f" (and {others} other run(s) of this sweep)" if others else ""
            raise MissingReading(f"{self.describe()}{more} recorded no {reading}: its plan {self.plan} does "
                                 f"not ask for {what}. Declare the run in its study's "
                                 f"`{reading.split('_')[0]}` (studies.base.Study; docs/methods.md, "
                                 f"'Adding a study') and run the study again, or sweep it with such a plan.")

    @property
    def trace_frame(self) -> pd.DataFrame:
        """The run's token trace as a DataFrame, one row per traced token and step
        (``tracing.COLUMNS`` + method, seed; as ``UnlearnRun.trace_frame``), read from the cache
        entry after verifying it; raises ``CacheError`` naming the entry and the file if it is
        gone or changed since it was written."""
        trace = read_entry(self.folder, lambda e: TokenTrace.load(e / "trace.npz"), what="cached run")
        if trace is None:
            raise CacheError(f"cached run {self.folder} no longer exists: trace.npz cannot be read; "
                             f"run it again")
        frame = trace.to_frame()
        frame["method"] = self.label
        frame["seed"] = self.config.seed
        return frame

    def row(self) -> dict:
        """One flat record for sweep tables."""
        return {"label": self.label, "method": self.config.method, "target_seed": self.target_seed,
                "seed": self.config.seed,
                **{f"param_{k}": v for k, v in self.config.method_params.items()},
                "status": self.status, **self.summary}


class MissingReading(InputError):
    """A figure or table asked a run for something its plan did not record (names the run and the reading)."""


class _Entry(NamedTuple):
    """One run's place in the cache: its config, plan, label, key text and folder."""

    config: UnlearnConfig
    plan: EvalPlan
    label: str
    key_text: str
    folder: Path

    def read(self, setting: Setting, folder: Path | None = None) -> RunResult | None:
        """The cached run in ``folder`` (default: the entry's) if its key matches and it holds
        every final metric the setting asks for (when the plan wants them); None (recompute)
        otherwise. The matched-retain numbers are recomputed from the stored history, so a
        changed ``match_level`` never needs a rerun. The key in ``summary.json`` is compared
        first, then the entry verified against its manifest (``store.read_entry``): raises
        ``CacheError`` naming the file."""
        return read_entry(folder or self.folder, lambda f: self._parse(f, setting), what="cached run",
                          key_file="summary.json", key_text=self.key_text)

    def _parse(self, folder: Path, setting: Setting) -> RunResult | None:
        try:
            meta = json.loads((folder / "summary.json").read_text())
            if meta.get("key") != self.key_text:
                return None  # a different config hashed here: never reuse it
            wanted = set(setting.final_metrics) if self.plan.final_metrics else set()
            if meta["status"] == "completed" and not wanted <= set(meta.get("final_metrics", ())):
                return None  # computed with fewer final metrics than wanted now
            history = pd.read_csv(folder / "history.csv")
        except (OSError, KeyError, json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise CacheError(f"corrupt cached run {folder}: {err}; delete this folder to recompute it") from None
        summary = {**setting.matched(history), **meta["summary"]}
        return RunResult(self.label, self.config, history, summary, folder, meta["status"], setting.target_seed,
                         self.plan)


class Sweep:
    """The results of :meth:`Lab.sweep`: ``summary`` (one row per run) and ``curves`` (one row per
    evaluation step per run)."""

    def __init__(self, results: list[RunResult], setting: Setting):
        self.results = results
        self.setting = setting

    @cached_property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([r.row() for r in self.results])

    @cached_property
    def curves(self) -> pd.DataFrame:
        """One row per evaluation per run (``label``, ``method``, ``target_seed``, ``seed``,
        ``step`` and the readings) where the forget split was read. Raises
        :class:`MissingReading` naming the first run whose plan recorded no forget curve."""
        missing = [r for r in self.results if not r.plan.curves]
        if missing:
            missing[0].require("curves", others=len(missing) - 1)
        frames = []
        for r in self.results:
            ev = r.history.dropna(subset=["forget_es"]) if "forget_es" in r.history else r.history
            frames.append(ev.assign(label=r.label, method=r.config.method, target_seed=r.target_seed,
                                    seed=r.config.seed))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def final(self, labels: list[str] | None = None) -> pd.DataFrame:
        """The :attr:`summary` rows of ``labels`` (default: every run), whose ``eval_*`` columns
        hold the final model's metrics. Raises :class:`MissingReading` naming the first of those
        runs whose plan computed no final metrics."""
        chosen = [r for r in self.results if labels is None or r.label in labels]
        missing = [r for r in chosen if not r.plan.final_metrics]
        if missing:
            missing[0].require("final_metrics", others=len(missing) - 1)
        return pd.DataFrame([r.row() for r in chosen])

    def traces(self, labels: list[str] | None = None) -> pd.DataFrame:
        return pd.concat([r.trace_frame for r in self.results if labels is None or r.label in labels],
                         ignore_index=True)

    def aggregate(self, columns: list[str] | None = None, by: str = "label") -> pd.DataFrame:
        """Mean, std and count over seeds of each numeric summary column, per ``by`` group, in
        the order the specs were given."""
        frame = self.summary
        columns = columns or [c for c in frame.columns if c.startswith(("matched_", "final_"))
                              and frame[c].dtype.kind in "fi"]
        order = list(dict.fromkeys(frame[by]))
        stats = frame.groupby(by)[columns].agg(["mean", "std", "count"])
        stats.columns = [f"{c}_{s}" for c, s in stats.columns]
        if "reached" in frame:
            stats["reached_all"] = frame.groupby(by)["reached"].all()
        return stats.loc[order].reset_index()
