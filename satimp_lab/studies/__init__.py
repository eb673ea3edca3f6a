"""One study per observation of the paper, each deciding its claims on the population of
target models (``Setting.target_seeds`` x ``Setting.seeds``) with ``satimp_lab.studies.verdicts``.

A study owns its run specs, its claims (wording and rule) and its tables; a notebook calls
``study.run(lab)`` and shows the result, and ``satimp-lab reproduce`` runs :data:`STUDIES` to
build the report's claim table, whatever the notebooks' cells did.
"""

from __future__ import annotations

from pathlib import Path

from . import granularity, grid, muse, obs1, obs2, relearning, smoothness
from .base import Study, StudyResult, load_population_claims, plan_for, planner

STUDIES = (obs1.STUDY, obs2.STUDY, smoothness.STUDY, granularity.STUDY, grid.STUDY, relearning.STUDY, muse.STUDY)
"""The declared studies, in report order."""


def get_study(study_id: str) -> Study:
    """A study of :data:`STUDIES` by id (``obs1``, ``obs2``, ``smoothness``, ``granularity``, ``grid``)."""
    for study in STUDIES:
        if study.id == study_id:
            return study
    raise ValueError(f"unknown study {study_id!r}; valid: {[s.id for s in STUDIES]}")


def without_annotations(studies) -> tuple[list[Study], list[str]]:
    """The studies that a benchmark without key-token annotations (real TOFU: its annotations are
    the official repository's hand-made ``importance_forgetXX.pth``, not part of the Hub's files)
    can decide: a study that measures key tokens (:attr:`Study.needs_key_spans`) is left out, and
    the runs of annotation-weighted methods (``Method.needs_key_mask``) are taken out of the
    others' specs, whose claims then compare what is left (``obs1`` decides SimSat vs SimImp
    without its annotated part). Returns (the studies, one line per change, for the report)."""
    from dataclasses import replace

    from ..unlearning.objectives import get_method
    from ..experiments.identity import RunSpec

    def needs_key(spec) -> bool:
        spec = RunSpec.of(spec)
        return get_method(spec.method, **spec.params).needs_key_mask

    kept, notes = [], []
    for study in studies:
        if study.needs_key_spans:
            notes.append(f"{study.id}: left out (it measures annotated key tokens; this benchmark has none)")
            continue
        dropped = [RunSpec.of(s).default_label for s in study.specs() if needs_key(s)]
        if dropped:
            notes.append(f"{study.id}: without {', '.join(dropped)} (annotation weighting needs key-token "
                         f"annotations; this benchmark has none)")
            specs, extras = study.specs, study.extras
            study = replace(study, specs=lambda specs=specs: [s for s in specs() if not needs_key(s)],
                            extras=lambda extras=extras: [s for s in extras() if not needs_key(s)])
        kept.append(study)
    return kept, notes


def run_studies(lab, studies=STUDIES, out_dir: str | Path | None = None, one_pass: bool = True,
                **sweep_kwargs) -> list[StudyResult]:
    """Run each study on ``lab``'s population and save its claims and tables under ``out_dir``.

    ``one_pass`` (default): the runs of every study are swept together first
    (:meth:`~satimp_lab.experiments.lab.Lab.sweep_groups`: one executor pass, a run that several
    studies share computed once, each run recording what the studies declare that their notebooks
    read of it: :func:`~satimp_lab.studies.base.plan_for`),
    with the runs each study's notebook shows beside it on the Lab's own target
    (:attr:`Study.extras`, so the notebooks compute none), then each study decides its claims
    from its own runs;
    otherwise each study sweeps in turn (:meth:`Study.run`). The claims are the same either
    way. A study of another benchmark family than ``lab``'s (:attr:`Study.family`) runs on
    ``lab.family_lab(family)``, in a pass of its own. Other keywords (e.g. ``executor``) go to
    the sweep."""
    sweeps: dict = {}
    if one_pass:
        families = list(dict.fromkeys(s.family for s in studies))
        for family in families:  # one pass per benchmark family, on that family's Lab
            group = [s for s in studies if s.family == family]
            swept = {s.id: s.specs() for s in group if s.measure is None}
            extras = {f"{s.id} extras": specs for s in group if (specs := s.extras())}
            if swept or extras:
                sweeps.update(lab.family_lab(family).sweep_groups(
                    {**swept, **extras}, desc="studies" if len(families) == 1 else f"studies ({family})",
                    own_target_only=tuple(extras), **{"plan": planner(group), **sweep_kwargs}))
    results = []
    for study in studies:
        result = study.run(lab, sweep=sweeps.get(study.id), **sweep_kwargs)
        result.save(out_dir)
        results.append(result)
    return results


__all__ = ["STUDIES", "Study", "StudyResult", "get_study", "load_population_claims", "plan_for", "planner", "run_studies",
           "without_annotations"]
