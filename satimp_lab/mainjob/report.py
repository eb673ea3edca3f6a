"""Tables and the reproduction report.

The claims are decided by the studies (``satimp_lab.studies``) on the population of target
models and saved under ``population/``; :func:`build_report` puts them first (one table, every
claim with its effect, 95 % interval, P(improvement) and verdict), then the tables and static
figures every notebook saved, into one Markdown report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


from ..errors import InputError
from ..store import atomic_write


def _md_table(rows: list[list[str]], header: list[str]) -> str:
    clean = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


METRIC_NAMES = {"matched_forget": "forget ES at matched retain",
                "mean_likelihood": "mean token likelihood under the target",
                "relearn_gain": "relearning gain of held-out forget ES",
                "relearn_auc": "area under the relearning curve (held-out forget ES)",
                "forget_es": "forget ES",
                "eval_forget_verbmem": "VerbMem on D_f at matched utility",
                "eval_forget_qa_knowmem": "KnowMem on D_f at matched utility",
                "privleak_gap": "distance of PrivLeak from 0, in hundreds, at matched utility"}
"""How the claims table names a comparison's metric (a population claim part's ``metric``)."""


def metric_name(metric: str, lower_is_better: bool | None = None) -> str:
    """``metric`` as the claims table names it (:data:`METRIC_NAMES`, else the column name), with
    "lower is better" / "higher is better" when known."""
    name = METRIC_NAMES.get(metric, metric.replace("_", " "))
    if lower_is_better is None:
        return name
    return f"{name} ({'lower' if lower_is_better else 'higher'} is better)"


def population_claims_markdown(out_dir: str | Path, errors: list[str] | None = None) -> str:
    """The claims the studies decided on the population (``population/*.json``, written by
    ``satimp_lab.studies``) as one Markdown table: each part's effect, 95 % interval,
    P(improvement), units and verdict, and the claim's verdict; "" when there are none.
    ``errors``: as in ``studies.load_population_claims`` (unreadable files listed, not raised)."""
    from ..studies.base import load_population_claims

    rows = []
    for claim in load_population_claims(out_dir, errors=errors):
        for part in claim["parts"]:
            lo, hi = part["low"], part["high"]
            interval = f"[{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else "none"
            flags = ", ".join(f"{part[k]} unit(s) of {part[n]} never reached the level"
                              for k, n in (("unreached_a", "a"), ("unreached_b", "b")) if part[k])
            rows.append([claim["id"], claim["statement"], claim.get("source", ""), f"{part['a']} vs {part['b']}",
                         metric_name(part["metric"], part.get("lower_is_better")), f"{part['effect']:+.3f}", interval, f"{part['p_improvement']:.2f}",
                         f"{part['n_targets']} x {part['n_units'] // max(part['n_targets'], 1)}",
                         part["verdict"] + (f" ({flags})" if flags else ""), f"**{claim['verdict']}**"])
    if not rows:
        return ""
    return ("Each claim is decided on paired (target model, unlearning seed) units: effect = mean "
            "paired difference of the first method (or token group) over the second in the metric named, "
            "signed so that positive is the claim's direction, 95 % cluster-bootstrap interval over target models, "
            "P(improvement) = share of units going the claim's way (a tie counts one half); the rule is in `satimp_lab.studies.verdicts`.\n\n"
            + _md_table(rows, ["claim", "statement", "source", "comparison", "metric", "effect", "95 % interval",
                               "P(improvement)", "targets x seeds", "part verdict", "claim verdict"]))


README_MARKERS = ("<!-- claims-table:start -->", "<!-- claims-table:end -->")
"""The lines between which README.md holds the generated claims table (:func:`update_readme`)."""
SOURCES = {"paper abstract": "the paper's abstract makes the claim",
           "paper body": "the paper makes it in its body, not in its abstract",
           "official code": "the official repository recommends it",
           "ours": "our inference, not a claim of the paper"}
"""What each ``source`` of a population claim means (``verdicts.PopulationClaim.source``)."""


def report_settings(out_dir: str | Path) -> dict:
    """``{"size": ..., "tier": ...}`` of a report folder: ``settings.json`` when present (a
    snapshot), else the settings line of ``report.md`` written by ``satimp-lab reproduce``; a tier
    of "default" is replaced by the size's own tier (``experiments.setting.SETTINGS``). Raises
    FileNotFoundError when neither file exists, InputError (a ValueError) naming the file when it holds no size."""
    import re

    from ..experiments.setting import SETTINGS

    out_dir = Path(out_dir)
    if (out_dir / "settings.json").exists():
        found = json.loads((out_dir / "settings.json").read_text(encoding="utf-8"))
        where = out_dir / "settings.json"
    else:
        where = out_dir / "report.md"
        if not where.exists():
            raise FileNotFoundError(f"{out_dir} has neither settings.json nor report.md: not a report folder")
        match = re.search(r"\(size=([\w-]+), tier=([\w-]+)", where.read_text(encoding="utf-8"))
        found = {"size": match.group(1), "tier": match.group(2)} if match else {}
    if not found.get("size"):
        raise InputError(f"{where} names no size (expected the settings line of `satimp-lab reproduce`)")
    tier = found.get("tier") or "default"
    if tier == "default" and found["size"] in SETTINGS:
        tier = SETTINGS[found["size"]].tier
    return {"size": found["size"], "tier": tier}


def readme_claims_markdown(snapshot_dir: str | Path, shown_as: str | None = None) -> str:
    """The README's claims block, generated from a report folder or a snapshot of one
    (``population/*.json`` and ``settings.json`` or ``report.md``): one line naming the size the
    claims were decided at (size, tier, targets x seeds, read from the saved claims), the table of
    :func:`population_claims_markdown`, and what each ``source`` means. ``shown_as``: the folder
    named in the text (default: ``snapshot_dir`` as given). Raises InputError (a ValueError) when the folder holds
    no population claim."""
    from ..studies.base import load_population_claims

    claims = load_population_claims(snapshot_dir)
    if not claims:
        raise InputError(f"{Path(snapshot_dir) / 'population'} holds no population claim (*.json)")
    settings = report_settings(snapshot_dir)
    parts = [p for c in claims for p in c["parts"]]
    targets = sorted({p["n_targets"] for p in parts})
    seeds = sorted({p["n_units"] // max(p["n_targets"], 1) for p in parts})

    def plural(values: list[int], word: str) -> str:  # [3] -> "3 words", [1, 3] -> "1-3 words"
        span = str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"
        return f"{span} {word}" + ("" if values == [1] else "s")

    where = str(shown_as or snapshot_dir).rstrip("/")
    used = sorted({c.get("source", "") for c in claims})
    return "\n".join([
        f"Verdicts at the **{settings['size']} size** ({plural(targets, settings['tier'] + ' target')} x "
        f"{plural(seeds, 'seed')}), generated by `satimp-lab readme-table` from the claims saved in "
        f"`{where}/population/` (a copy of a report's `population/` folder); "
        f"`tests/unit/test_readme_claims.py` checks this table against them.",
        "", population_claims_markdown(snapshot_dir), "",
        "Source: " + "; ".join(f"*{s}* = {SOURCES.get(s, 'unknown')}" for s in used) + "."])


UNIT_TABLES = ("*_units.csv", "*_by_target.csv", "*_unit_values.csv")
"""The per-unit tables the studies save (``tables/``): the values their claims were decided on
(``*_unit_values``: long, one row per label and unit, the columns its ``decide`` reads)."""


def snapshot_population(out_dir: str | Path, results_dir: str | Path) -> Path:
    """Copy a report's population claims to ``results_dir/<size>/``: ``population/*.json``, the
    per-unit tables they were decided on (``tables/`` files matching :data:`UNIT_TABLES`) and
    ``settings.json``; an older snapshot of the same size is replaced. Returns that folder."""
    settings = report_settings(out_dir)
    out_dir = Path(out_dir)
    files = sorted((out_dir / "population").glob("*.json"))
    if not files:
        raise InputError(f"{out_dir / 'population'} holds no population claim (*.json): "
                         "run `satimp-lab reproduce` first")
    tables = sorted({t for pattern in UNIT_TABLES for t in (out_dir / "tables").glob(pattern)})
    dest = Path(results_dir) / settings["size"]
    if dest.resolve() == out_dir.resolve():
        return dest
    for sub, new in (("population", files), ("tables", tables)):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for old in (dest / sub).iterdir():
            old.unlink()
        for f in new:
            atomic_write(dest / sub / f.name, f.read_text(encoding="utf-8"))
    atomic_write(dest / "settings.json", json.dumps(settings, indent=1) + "\n")
    return dest


def readme_block(text: str, where: str = "README.md") -> tuple[int, int]:
    """(start, end) character offsets of the text between :data:`README_MARKERS` in ``text``.
    Raises InputError (a ValueError) naming ``where`` unless each marker occurs once, start before end."""
    start, end = README_MARKERS
    counts = (text.count(start), text.count(end))
    if counts != (1, 1) or text.index(start) > text.index(end):
        raise InputError(f"{where} must hold the lines {start!r} and {end!r} once each, in that order "
                         f"(found {counts[0]} and {counts[1]})")
    return text.index(start) + len(start), text.index(end)


def update_readme(readme: str | Path, out_dir: str | Path, results_dir: str | Path = "docs/results") -> Path:
    """Snapshot ``out_dir``'s population claims (:func:`snapshot_population`) and rewrite the block
    of ``readme`` between :data:`README_MARKERS` with :func:`readme_claims_markdown` of the
    snapshot (named relative to the README's folder). Returns the snapshot folder."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    lo, hi = readme_block(text, str(readme))
    snapshot = snapshot_population(out_dir, results_dir)
    try:
        shown = snapshot.resolve().relative_to(readme.resolve().parent).as_posix()
    except ValueError:  # the snapshot lies outside the README's folder
        shown = str(snapshot)
    block = readme_claims_markdown(snapshot, shown_as=shown)
    atomic_write(readme, text[:lo] + "\n" + block + "\n" + text[hi:])
    return snapshot


FIGURES_NOTE = (
    "Static figures (PNG) of the studies (`satimp_lab.studies.figures`, drawn with seaborn) show each "
    "method's mean over the target models with its 95 % interval (the claims' cluster bootstrap over target "
    "models), every run as a dot, curves with 95 % bands, and each claim's paired differences; those of the "
    "notebooks without a study (tour, weighting functions, playground, course) are matplotlib copies of their "
    "key interactive figures, drawn from the same data (a single run has no interval). Interactive "
    "figures (HTML) are the notebooks' plotly figures: they open in a browser, offline (plotly.js is saved "
    "once in `figures/`).")
"""The report's one paragraph on what its figures show (:func:`build_report`)."""


def scale_note(size: str, tier: str | None = None, **setting) -> str:
    """One sentence on what the report's verdicts rest on: the tier, how many target models and
    unlearning seeds (``experiments.setting.get_setting(size, tier=..., **setting)``; ``setting``: the
    paper tier's base model, source and data folder), and for a size on the micro
    tier (``--fast``) that it checks the machinery, not the paper's claims. Raises InputError
    for an unknown size or tier."""
    from ..experiments.setting import get_setting

    resolved = get_setting(size, **({"tier": tier} if tier else {}), **setting)
    n_targets = len(resolved.target_seeds)
    text = (f"The verdicts rest on {n_targets} target model{'s' if n_targets != 1 else ''} x {len(resolved.seeds)} "
            f"unlearning seed(s) of the `{resolved.tier}` tier (size `{size}`"
            + (f", base model `{resolved.base_model}` on {resolved.source}" if resolved.base_model else "")
            + ").")
    if resolved.tier == "paper" and size == "fast":
        text += (" This is a dry run of the paper tier's machinery (`--fast`: a few final-metric rows "
                 "and short generations): its verdicts are not evidence about the paper's claims.")
    elif resolved.tier == "paper" and len(resolved.target_seeds) == 1:
        text += (" With one fine-tuned target model, the intervals are a bootstrap over the unlearning "
                 "seeds: they say how stable each comparison is for this model, not across models.")
    if resolved.tier == "micro":
        text += (" This size is a quick check that the whole pipeline runs (a micro model on a few "
                 "authors, a few steps): its verdicts are not evidence about the paper's claims and "
                 "may differ from the full size's (README, \"Paper claims and our verdicts\").")
    return text


def build_report(out_dir: str | Path, runs: list[dict], settings: dict,
                 problems: list[str] | None = None, note: str = "") -> Path:
    """Write ``report.md``: the claims table first, then each notebook's tables, static figures
    (``figures/<prefix>_*.png``, embedded) and interactive figures (``figures/<prefix>_*.html``,
    linked).

    runs: one dict per notebook: ``name``, ``status`` ("ok", "error" or "not run"), ``seconds``,
    ``error`` (message or ""), ``output`` (path of the executed notebook, relative to out_dir, or
    ""); a notebook that failed is an error row of the notebooks table. A claim file that cannot
    be read is listed under "Problems" instead of failing the report; ``problems``, if given,
    receives those messages. ``note``: a paragraph under the settings line (:func:`scale_note`).
    """
    out_dir = Path(out_dir)
    problems = [] if problems is None else problems
    population = population_claims_markdown(out_dir, errors=problems)
    lines = ["# satimp_lab reproduction report", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `satimp-lab reproduce` "
             f"({', '.join(f'{k}={v}' for k, v in settings.items())}). Every number below was "
             f"computed in this run or read from the caches its runs wrote.", "",
             *([note, ""] if note else []),
             "## Paper claims and our verdicts", "",
             population or "_No study decided a claim (did the studies run?)._"]
    lines += ["", "## Notebooks", "",
              _md_table([[r["name"], r["status"], f"{r['seconds']:.1f}", r.get("output", ""),
                          (r.get("error") or "")[:200]] for r in runs],
                        ["notebook", "status", "seconds", "executed copy", "error"]), ""]
    if problems:
        lines += ["## Problems", "", *[f"- {p}" for p in problems], ""]
    figures = sorted((out_dir / "figures").glob("*.png")) if (out_dir / "figures").exists() else []
    pages = sorted((out_dir / "figures").glob("*.html")) if (out_dir / "figures").exists() else []
    tables = sorted((out_dir / "tables").glob("*.md")) if (out_dir / "tables").exists() else []
    if figures or pages:
        lines += [FIGURES_NOTE, ""]
    for run in runs:
        prefix = run["name"].split("_")[0] + "_"
        own_tables = [t for t in tables if t.name.startswith(prefix)]
        own_figures = [f for f in figures if f.name.startswith(prefix)]
        own_pages = [f for f in pages if f.name.startswith(prefix)]
        if not own_tables and not own_figures and not own_pages:
            continue
        lines += [f"## {run['name']}", ""]
        for t in own_tables:
            lines += [f"**{t.stem}**", "", t.read_text(encoding="utf-8"), ""]
        for f in own_figures:
            lines += [f"![{f.stem}](figures/{f.name})", ""]
        if own_pages:
            lines += ["Interactive figures: " + ", ".join(f"[{f.stem}](figures/{f.name})" for f in own_pages), ""]
    path = out_dir / "report.md"
    atomic_write(path, "\n".join(lines) + "\n")
    return path
