"""What every study is: its run specs, the population sweep, its claims and tables."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from . import verdicts
from ..experiments.identity import RunSpec
from .verdicts import PopulationClaim
from ..experiments.matched import METRIC
from ..unlearning.plan import AT_MATCH, CURVES_AT_MATCH, CURVES_TO_MATCH, FINAL, FULL, MATCHED, EvalPlan

if TYPE_CHECKING:
    from ..experiments.results import Sweep

STRONG_EFFECT = 0.10
"""Minimum effect of a "this knob strongly affects efficacy" claim (ten points of forget ES)."""


def mean_by_label(summary: pd.DataFrame, labels: list[str], metric: str = METRIC) -> pd.Series:
    """Mean of ``metric`` over every unit, per label (in ``labels`` order; absent labels dropped)."""
    present = [l for l in labels if l in set(summary["label"])]
    return summary[summary["label"].isin(present)].groupby("label")[metric].mean().reindex(present)


def best_vs_worst(summary: pd.DataFrame, labels: list[str], names: dict | None = None,
                  min_effect: float = STRONG_EFFECT, metric: str = METRIC) -> verdicts.PairedComparison:
    """The setting with the lowest mean ``metric`` vs the one with the highest, compared on the
    units (:func:`verdicts.compare`, claimed direction: best better by at least ``min_effect``).
    Both are picked on the same runs, which favours a large effect: the interval is optimistic,
    so such a claim needs ``min_effect`` (:data:`STRONG_EFFECT`) as well. Raises ValueError with
    fewer than two labels present."""
    means = mean_by_label(summary, labels, metric)
    if len(means) < 2:
        raise ValueError(f"need at least two of {labels} in the summary, found {list(means.index)}")
    return verdicts.compare(summary, means.idxmin(), means.idxmax(), metric, min_effect=min_effect)


def unit_table(summary: pd.DataFrame, labels: list[str] | None = None, metric: str = METRIC) -> pd.DataFrame:
    """``metric`` per label (rows, in order) and unit (columns ``t<target>/s<seed>``), with the mean
    over units and how many units reached the matched level."""
    labels = labels or list(dict.fromkeys(summary["label"]))
    sel = summary[summary["label"].isin(labels)]
    wide = sel.pivot_table(index="label", columns=["target_seed", "seed"], values=metric, aggfunc="first")
    wide.columns = [f"t{t}/s{s}" for t, s in wide.columns]
    wide = wide.reindex([l for l in labels if l in wide.index])
    wide.insert(0, "mean", wide.mean(axis=1))
    if "reached" in sel:
        reached = sel.groupby("label")["reached"].agg(lambda r: f"{int(r.astype(bool).sum())}/{len(r)}")
        wide.insert(1, "reached", reached.reindex(wide.index))
    return wide.reset_index()


@dataclass(frozen=True)
class Study:
    """One observation: the runs it needs (``specs``), the claims it decides on the population
    (``decide``: sweep summary -> claims) and the tables it shows (``tables``)."""

    id: str
    notebook: str
    """Notebook that presents it (its tables are saved with this prefix)."""
    title: str
    specs: Callable[[], Sequence[RunSpec | Mapping]]
    decide: Callable[[pd.DataFrame], list[PopulationClaim]]
    tables: Callable[[pd.DataFrame], dict] = field(default=lambda summary: {})
    measure: Callable | None = None
    """For a study that unlearns nothing: ``measure(lab) -> summary`` (one row per unit and
    label, as a sweep summary) replaces the sweep of ``specs``."""
    figures: dict[str, Callable] | None = None
    """Its population figures, name -> ``function(StudyResult) -> Figure or None``, for a study whose
    figures live in its own module; None: those of ``studies.figures.FIGURES``."""
    needs_key_spans: bool = False
    """It measures annotated key tokens (``key_spans``): a benchmark without them cannot decide
    it (``studies.without_annotations``)."""
    extras: Callable[[], list] = field(default=lambda: [])
    """Runs its notebook shows on the Lab's own target model alone, beside the study's (references
    no claim decides on, e.g. NPO): :meth:`StudyResult.target_sweep` sweeps them, and
    ``studies.run_studies`` makes them in its one pass, so the notebook reads them back."""
    curves: Callable[[], Sequence[RunSpec | Mapping]] = field(default=lambda: [])
    """Runs (of ``specs`` or ``extras``) whose training curves its notebook or figures draw: they
    record the forget split at every evaluation, to the last step on the Lab's own target (with
    the final metrics) and up to the matched point on the others (:func:`plan_for`). Asking any
    other run for its curves raises ``MissingReading`` naming it."""
    final: Callable[[], Sequence[RunSpec | Mapping]] = field(default=lambda: [])
    """Runs (of ``specs`` or ``extras``) whose final model's metrics its notebook shows, on the
    Lab's own target (:func:`plan_for`). Every other run records forget ES at matched retain
    alone and ends at its matched point (``unlearning.plan.MATCHED``)."""
    at_match: Callable[[], Sequence[RunSpec | Mapping]] = field(default=lambda: [])
    """Runs (of ``specs`` or ``extras``) whose final metrics its claims read *at the matched
    point*, on every target model: each ends there and its final metrics are computed on the model
    there (``unlearning.plan.AT_MATCH``; with its curves up to that point where ``curves`` declares
    them too, ``CURVES_AT_MATCH``). The MUSE study's runs: VerbMem, KnowMem and PrivLeak at
    matched utility."""
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    """``derive(summary) -> summary``: the sweep's summary with the columns its claims compare
    that no run records (the MUSE study's |PrivLeak| / 100), added before ``decide`` and kept in
    the :class:`StudyResult` (its paired-difference figure reads them). None: the summary as swept."""
    family: str = "tofu"
    """The benchmark family its runs are made on (``data.families``): ``studies.run_studies``
    runs it on the Lab of that family (``Lab.family_lab``), and its declarations plan only runs of
    studies of the same family (a run's identity does not name its benchmark)."""

    def run(self, lab, sweep=None, **sweep_kwargs) -> "StudyResult":
        """Sweep ``specs`` over the lab's population (:meth:`Lab.sweep_population`; keywords
        forwarded; by default each run records what the studies declare that the notebooks and
        figures read of it, :func:`plan_for`), or call ``measure``, and decide the claims. ``sweep``: the population sweep
        of ``specs`` already made (``studies.run_studies`` sweeps every study in one pass). A
        study of another benchmark family than ``lab``'s runs on ``lab.family_lab(family)``."""
        lab = lab.family_lab(self.family)
        if self.measure is not None:
            sweep, summary = None, self.measure(lab)
        else:
            if sweep is None:
                sweep = lab.sweep_population(self.specs(), desc=self.id, **{"plan": planner([self]), **sweep_kwargs})
            summary = sweep.summary
        if self.derive is not None:
            summary = self.derive(summary)
        claims = self.decide(summary)
        for claim in claims:
            claim.study = self.id
        return StudyResult(self, summary, claims, self.tables(summary), sweep)


def run_identity(spec: RunSpec | Mapping) -> tuple:
    """What makes a spec's run, labels aside: method, hyper-parameters and overrides."""
    spec = RunSpec.of(spec)
    return spec.method, tuple(sorted(spec.params.items())), tuple(sorted(spec.overrides.items()))


def declared_readings(studies=None, family: str = "tofu") -> tuple[frozenset, frozenset, frozenset]:
    """(runs whose curves, runs whose final metrics, runs whose final metrics at the matched point)
    some study of ``studies`` (default: ``studies.STUDIES``) of benchmark family ``family``
    declares (:attr:`Study.curves`, :attr:`Study.final`, :attr:`Study.at_match`), as
    :func:`run_identity` sets: a run that several studies share records what each asks for."""
    if studies is None:
        from . import STUDIES as studies
    studies = [study for study in studies if study.family == family]
    curves = frozenset(run_identity(s) for study in studies for s in study.curves())
    final = frozenset(run_identity(s) for study in studies for s in study.final())
    at_match = frozenset(run_identity(s) for study in studies for s in study.at_match())
    return curves, final, at_match


def plan_for(spec: RunSpec | Mapping, own_target: bool) -> EvalPlan:
    """What a study run records (the ``plan`` of :meth:`Lab.sweep_population`), from what the
    studies declare their notebooks and figures read (:func:`declared_readings`):

    ================  ======================================  ==================================
    declared          on the Lab's own target                 on the other target models
    ================  ======================================  ==================================
    ``curves``        ``FULL``: every evaluation, to the      ``CURVES_TO_MATCH``: both curves
                      end, final metrics                      up to the matched point
    ``final``         ``FINAL``: to the end, final metrics,   ``MATCHED``
                      forget split read at the bracket only
    ``at_match``      ``AT_MATCH``: ends at the bracket, the  ``AT_MATCH``
                      final metrics there (``CURVES_AT_MATCH``
                      with ``curves``)
    neither           ``MATCHED``: ends at the bracket of     ``MATCHED``
                      the matched point, forget read there
    ================  ======================================  ==================================

    Forget ES at matched retain, what the claims are decided on, is the whole run's to the last
    bit under every plan (``unlearning.plan``). The declarations are those of the TOFU studies of
    ``studies.STUDIES``; :func:`planner` adds a study that is not (yet) among them, or plans
    another family's runs."""
    return _plan(*_declared(), spec, own_target)


def planner(studies: Iterable["Study"] = ()) -> Callable[[RunSpec | Mapping, bool], EvalPlan]:
    """:func:`plan_for` with the declarations of ``studies`` too (those not in ``studies.STUDIES``:
    a study being written, a test's study), for the benchmark family of ``studies`` (the
    declarations of ``STUDIES`` of that family count): what :meth:`Study.run` and
    ``studies.run_studies`` sweep with. Returns :func:`plan_for` itself for TOFU studies all in
    ``STUDIES``. Raises ValueError for studies of several families (sweep each family apart)."""
    from . import STUDIES

    studies = list(studies)
    families = {s.family for s in studies} or {"tofu"}
    if len(families) > 1:
        raise ValueError(f"studies of several benchmark families {sorted(families)} cannot share a sweep's "
                         f"plan; run each family's studies on its own Lab")
    family = families.pop()
    extra = [s for s in studies if not any(s is t for t in STUDIES)]
    if not extra and family == "tofu":
        return plan_for
    return functools.partial(_plan, *declared_readings((*STUDIES, *extra), family))


def _plan(curves: frozenset, final: frozenset, at_match: frozenset, spec: RunSpec | Mapping,
          own_target: bool) -> EvalPlan:
    run = run_identity(spec)
    if run in at_match:
        return CURVES_AT_MATCH if own_target and run in curves else AT_MATCH
    if run in curves:
        return FULL if own_target else CURVES_TO_MATCH
    return FINAL if own_target and run in final else MATCHED


@functools.cache
def _declared() -> tuple[frozenset, frozenset, frozenset]:
    return declared_readings()


@dataclass
class StudyResult:
    study: Study
    summary: pd.DataFrame
    """One row per run (or measurement) with ``label``, ``target_seed``, ``seed`` and the metrics."""
    claims: list[PopulationClaim]
    tables: dict
    sweep: Sweep | None = None
    """The population :class:`~satimp_lab.experiments.results.Sweep` (None for a ``measure`` study)."""

    def claims_table(self) -> pd.DataFrame:
        return verdicts.claims_table(self.claims)

    def target_sweep(self, lab, extra_specs: list[dict] | None = None, desc: str = "references"):
        """The study's runs on ``lab``'s own target model (``lab.setting.target_seed``; each
        recorded what :func:`plan_for` says) as one
        :class:`~satimp_lab.experiments.results.Sweep`, for a notebook's single-target figures, without
        running them again; ``extra_specs`` (runs shown but decided on by no claim, e.g. NPO as a
        reference; None: the study's :attr:`Study.extras`) are swept on that target only, with
        the plans of :func:`plan_for` (the runs ``studies.run_studies`` made), and
        appended. Raises ValueError when that leaves no run (a ``measure`` study, or a population
        without the lab's target, and no extras)."""
        from ..experiments.results import Sweep

        target = lab.setting.target_seed
        results = [r for r in (self.sweep.results if self.sweep is not None else []) if r.target_seed == target]
        extra_specs = self.study.extras() if extra_specs is None else list(extra_specs)
        if extra_specs:
            results += lab.sweep_population(extra_specs, target_seeds=(target,), desc=desc,
                                            plan=planner([self.study])).results
        if not results:
            raise ValueError(f"study {self.study.id!r} made no run on target seed {target} and no extra_specs "
                             f"were given: nothing to show")
        return Sweep(results, lab.setting)

    def save(self, out_dir: str | Path | None) -> None:
        """``population/<study id>.json`` (claims with every number), ``tables/<notebook
        prefix>_<name>.csv/.md`` and ``figures/<notebook prefix>_<study id>_<name>.png`` (each of
        :meth:`figures`) under ``out_dir`` (no-op when None)."""
        from .tables import json_safe, save_table
        from ..store import atomic_write

        if out_dir is None:
            return
        prefix = self.study.notebook.split("_")[0]
        atomic_write(Path(out_dir) / "population" / f"{self.study.id}.json",
                     json.dumps(json_safe([c.to_dict() for c in self.claims]), indent=1))
        save_table(self.claims_table(), out_dir, f"{prefix}_{self.study.id}_claims")
        for name, table in self.tables.items():
            save_table(table, out_dir, f"{prefix}_{name}")
        from .figures import png_bytes

        folder = Path(out_dir) / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        for name, fig in self.figures().items():
            atomic_write(folder / f"{prefix}_{self.study.id}_{name}.png", png_bytes(fig))

    def paired_differences(self) -> pd.DataFrame:
        """Every unit's paired difference for every part of every claim: ``claim, comparison,
        metric, target_seed, seed, diff`` (positive: the claim's direction). ``comparison`` is
        ``"a vs b"``, with the metric in brackets where the claims compare on several metrics
        (``"simsat vs ga [eval_forget_verbmem]"``), so every part has a row of its own."""
        parts = [(claim, part) for claim in self.claims for part in claim.parts]
        several = len({part.metric for _, part in parts}) > 1
        frames = []
        for claim, part in parts:
            d = verdicts.paired_differences(self.summary, part.a, part.b, part.metric, part.lower_is_better)
            name = f"{part.a} vs {part.b}" + (f" [{part.metric}]" if several else "")
            frames.append(d.assign(claim=claim.id, comparison=name, metric=part.metric))
        return pd.concat(frames, ignore_index=True)

    def figure(self):
        """Paired-difference plot (seaborn): one row per comparison, each unit's difference as a
        dot (colour = target model), the mean and its 95 % interval as a black bar, 0 dashed.
        A ``matplotlib.figure.Figure`` (not attached to pyplot)."""
        import seaborn as sns
        from matplotlib.figure import Figure

        diffs = self.paired_differences()
        order = list(dict.fromkeys(diffs["comparison"]))  # one row per part, in the parts' order
        if len(order) != sum(len(c.parts) for c in self.claims):  # the same comparison twice, one metric
            diffs = diffs.assign(comparison=diffs["comparison"] + " (" + diffs["claim"] + ")")
            order = list(dict.fromkeys(diffs["comparison"]))
        fig = Figure(figsize=(7, 0.55 * len(order) + 1.4), layout="constrained")
        ax = fig.subplots()
        sns.stripplot(data=diffs, x="diff", y="comparison", hue="target_seed", order=order, ax=ax,
                      palette="viridis", size=5, jitter=0.15, alpha=0.7)
        parts = [p for c in self.claims for p in c.parts]
        for y, part in enumerate(parts):
            ax.errorbar([part.effect], [y], xerr=[[part.effect - part.low], [part.high - part.effect]]
                        if np.isfinite(part.low) else None, fmt="o", color="black", capsize=4, zorder=5)
            ax.annotate(part.verdict, (1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.axvline(0, color="grey", linestyle="--", linewidth=1)
        metrics = list(dict.fromkeys(p.metric for p in parts))
        metric = metrics[0].replace("_", " ") if len(metrics) == 1 else "each row's metric (in brackets)"
        ax.set(xlabel=f"paired difference in {metric} (positive: the claim's direction)", ylabel="",
               title=f"{self.study.title}\npaired differences: each unit (dot), their mean and 95 % interval (black)")
        ax.title.set_fontsize(10)
        ax.legend(title="target seed", fontsize=7, title_fontsize=7, loc="lower left")
        return fig

    def figures(self) -> dict:
        """Every static figure of the study, name -> ``matplotlib.figure.Figure``:
        ``paired_differences`` (:meth:`figure`), then the population figures of
        :func:`satimp_lab.studies.figures.study_figures` (means with 95 % intervals, bands)."""
        from .figures import study_figures

        return {"paired_differences": self.figure(), **study_figures(self)}

    def figure_png(self, dpi: int = 110) -> bytes:
        """:meth:`figure` as PNG bytes (``IPython.display.Image(result.figure_png())``)."""
        from .figures import png_bytes

        return png_bytes(self.figure(), dpi)

    def _repr_markdown_(self) -> str:
        return "\n\n".join(c._repr_markdown_() for c in self.claims)

    def show(self) -> None:
        """Display the study in a notebook, as the report shows it: the population's size, each
        claim (effect, 95 % interval, P(improvement), verdict per comparison), its figures
        (:meth:`figures`: the paired differences, then the population's means with 95 % intervals)
        and the per-unit tables the effects are computed from."""
        from IPython.display import Image, Markdown, display

        units = self.summary.drop_duplicates([c for c in ("target_seed", "seed") if c in self.summary])
        seeds = units["seed"].nunique() if "seed" in units else 1
        display(Markdown(f"*{units['target_seed'].nunique()} target models x {seeds} unlearning "
                         f"seed(s): {len(units)} paired units*"))
        display(self)
        from .figures import png_bytes

        # each unit's paired difference (dots, coloured by target model), the mean and its 95 %
        # interval; then each method's mean over the population with its 95 % interval
        for fig in self.figures().values():
            display(Image(png_bytes(fig)))
        metric = ", ".join(dict.fromkeys(p.metric.replace("_", " ") for c in self.claims for p in c.parts))
        for name, table in self.tables.items():
            display(Markdown(f"**{name}** (per unit: {metric})"))
            display(table)


def load_population_claims(out_dir: str | Path, errors: list[str] | None = None) -> list[dict]:
    """Every claim saved by :meth:`StudyResult.save` under ``out_dir``, study by study in the
    order of ``studies.STUDIES`` (then any other study, by name).

    Raises ValueError naming the file for an unreadable claim file; with an ``errors`` list, the
    message is appended there instead and the file is skipped (a report is still written)."""
    from . import STUDIES

    folder = Path(out_dir) / "population"
    order = {s.id: i for i, s in enumerate(STUDIES)}
    paths = sorted(folder.glob("*.json"), key=lambda p: (order.get(p.stem, len(order)), p.stem)) \
        if folder.exists() else []
    claims = []
    for path in paths:
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(found, list) or not all(isinstance(c, dict) and "parts" in c for c in found):
                raise ValueError("expected a list of claims, each with its 'parts'")
        except (OSError, ValueError) as err:  # json.JSONDecodeError is a ValueError
            message = f"cannot read claim file {path}: {err}"
            if errors is None:
                raise ValueError(message) from None
            errors.append(message)
            continue
        claims += found
    return claims
