"""What a run records: its evaluation plan, and the bookkeeping that carries it out in the loop.

A run is evaluated every ``UnlearnConfig.eval_every`` steps (forget and retain splits, teacher
forced: ``models.reading.teacher_forced_summary``). Most runs of a study are read for one number,
forget ES at matched retain (docs/methods.md, "Forget ES at matched retain"): the forget ES where
retain ES first falls to ``match_level`` x its step-0 value, interpolated between the two
evaluations that bracket that crossing. An :class:`EvalPlan` says what else a run must record --
its forget curve at every evaluation, its final model (for the final metrics) -- and the loop
does no work that nobody reads: it ends at the bracket when no final model is wanted, and reads
the forget split only at the bracket when no curve is. Every number a plan records is the whole
run's to the last bit (evaluations use no random numbers and change nothing in training).

Studies declare what their notebooks read of each run (``studies.base.Study.curves`` and
``Study.final``); the run engine turns that into a plan per run (``studies.base.plan_for``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InputError, check_choice, check_real

ENDS = ("end", "match")


@dataclass(frozen=True)
class EvalPlan:
    """What one run must record beyond its step log and token trace.

    The default records everything: both splits at every periodic evaluation, every step taken,
    the final metrics. Raises :class:`~satimp_lab.errors.InputError` naming the field for a bad
    value."""

    curves: bool = True
    """Read the forget split at every periodic evaluation, so its forget curve can be drawn.
    False: the retain split is read at every evaluation and the forget split only where forget
    ES at matched retain reads it -- the two evaluations that bracket the crossing of the level
    (the weights at the earlier one are kept until the next evaluation) and the last step (a run
    that never reaches the level); step 0 reads both."""
    until: str = "end"
    """``"end"``: take every step (the final model is the whole run's). ``"match"``: end the run
    at the evaluation that closes the bracket of the matched point; the curves and the model end
    there."""
    final_metrics: bool = True
    """Compute the setting's final metrics on the model where the run ends (``experiments.lab.Lab``;
    the loop itself ignores this field): its last step (``until="end"``), or its matched point
    (``until="match"``: the evaluation that closes the bracket, the first at or below the level),
    which gives the final metrics *at matched utility* (:data:`AT_MATCH`, the MUSE study's runs)."""
    match_level: float | None = None
    """The retain share that defines the matched point (0 < level <= 1); None: the setting's
    ``match_level`` (the Lab fills it in). Used only when the plan searches for the matched
    point (:attr:`searches`)."""

    def __post_init__(self):
        own = "EvalPlan"
        check_choice(own, "until", self.until, ENDS)
        check_real(own, "match_level", self.match_level, low=0, high=1, low_open=True, none_ok=True)
        for name in ("curves", "final_metrics"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{own}.{name} must be True or False, got {getattr(self, name)!r}")

    @property
    def searches(self) -> bool:
        """True when the loop must find the bracket of the matched point while it runs (to stop
        there, or to read the forget split there)."""
        return self.until == "match" or not self.curves

    def key_fields(self) -> dict:
        """What the plan changes in a run's history, as the run's cache key holds it: ``{}`` for
        a plan that records every evaluation of every step; otherwise the level the run searches
        for (``stop_below``), ``forget_at_bracket`` when the forget split is read at the bracket
        alone, ``run_on`` when the run goes on to its last step after the bracket. (These names
        are the keys' since runs were first cached with a plan; whether final metrics are
        computed is not in the key: an entry with them serves a request without.)"""
        if not self.searches:
            return {}
        if self.match_level is None:
            raise InputError("EvalPlan.match_level is None: the plan searches for the matched point and "
                             "needs its level (a Lab fills in its setting's match_level)")
        out: dict[str, object] = {"stop_below": self.match_level}
        if not self.curves:
            out["forget_at_bracket"] = True
            if self.until == "end":
                out["run_on"] = True
        return out

    def to_dict(self) -> dict:
        return asdict(self)


FULL = EvalPlan()
"""Every evaluation of every step, and the final metrics: a run whose curves a figure draws."""
FINAL = EvalPlan(curves=False)
"""The final model and its metrics, and forget ES at matched retain; no forget curve."""
MATCHED = EvalPlan(curves=False, until="match", final_metrics=False)
"""Forget ES at matched retain alone: the run ends at its bracket, its forget split read there."""
CURVES_TO_MATCH = EvalPlan(until="match", final_metrics=False)
"""Both curves up to the matched point, where the run ends (a population figure's curves)."""
AT_MATCH = EvalPlan(curves=False, until="match")
"""The final metrics at the matched point: the run ends at the bracket of the matched point (its
forget split read there) and its final metrics are computed on the model there, at matched utility."""
CURVES_AT_MATCH = EvalPlan(until="match")
"""Both curves up to the matched point, and the final metrics there (:data:`AT_MATCH` with curves)."""


Read = Callable[[object, tuple[str, ...]], dict]
"""``read(model, splits) -> {f"{split}_{number}": value}``: the loop's teacher-forced readings."""


class PlannedEvaluations:
    """The periodic evaluations of one run, made as its :class:`EvalPlan` asks.

    The loop calls :meth:`due` after each optimiser step and, when it is due, :meth:`record`,
    which evaluates and says whether the run ends there. ``rows`` holds one dict per
    evaluation (``step`` and the readings), in order."""

    def __init__(self, plan: EvalPlan, every: int | None, read: Read,
                 extra: Callable[[object, int], dict] | None = None, utility: str = "retain_es"):
        self.plan, self.every, self.read, self.extra, self.utility = plan, every, read, extra, utility
        self.rows: list[dict] = []
        self._kept: dict | None = None  # curves=False: the weights at the last evaluation
        self._scratch: Any = None  # a model to load them into, made once
        self._bracketed = False  # until="end": the bracket is closed, only the last step is read

    def evaluate(self, model, step: int, splits: tuple[str, ...] = ("forget", "retain")) -> dict:
        """One evaluation row: ``step``, the readings of ``splits`` and the ``extra`` callback's values."""
        row = {"step": step, **self.read(model, splits)}
        if self.extra is not None:
            row.update(self.extra(model, step))
        return row

    def due(self, step: int, total: int) -> bool:
        """True when step ``step`` (1-based count of steps taken) is evaluated: every
        ``every`` steps and the last, except between a closed bracket and the last step."""
        if self.every is None or (step % self.every and step != total):
            return False
        return not self._bracketed or step == total

    def record(self, model, step: int, last: bool) -> bool:
        """Evaluate ``model`` after ``step`` steps; True when the run should end here (the
        bracket of the matched point just closed and the plan ends there)."""
        plan = self.plan
        retain_only = not plan.curves and not self._bracketed and not last
        self.rows.append(self.evaluate(model, step, ("retain",) if retain_only else ("forget", "retain")))
        if self._bracketed or not plan.searches or not self._reached():
            if retain_only:  # its forget split is read if the next evaluation closes the bracket
                self._kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        if not plan.curves:  # the bracket: this evaluation and the one before
            if retain_only:
                self.rows[-1].update(self.read(model, ("forget",)))
            if self._kept is not None:
                if self._scratch is None:
                    self._scratch = copy.deepcopy(model)
                self._scratch.load_state_dict(self._kept)
                self.rows[-2].update(self.read(self._scratch, ("forget",)))
            self._kept = None
        if plan.until == "end":
            self._bracketed = True
            return False
        return True

    def _reached(self) -> bool:
        """True when the last evaluation's utility reading (``retain_es``: the benchmark family's
        ``utility``) is at or below ``match_level`` x the first's: the test of
        ``forget_at_matched_retain`` (the first evaluation at or below the level ends the bracket
        of the crossing). Rows without the reading never stop a run."""
        rows, level, col = self.rows, self.plan.match_level, self.utility
        if level is None or len(rows) < 2 or col not in rows[0] or col not in rows[-1]:
            return False
        return float(rows[-1][col]) <= level * float(rows[0][col])
