"""The README's claims table is generated from a committed snapshot of a report's population
claims (``docs/results/<size>/``), and every verdict in that snapshot follows the rule.

The snapshot is regenerated with ``satimp-lab readme-table REPORT_DIR`` (``report.update_readme``).
"""

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from satimp_lab.studies import verdicts
from satimp_lab.cli import main
from satimp_lab.mainjob.report import (README_MARKERS, SOURCES, UNIT_TABLES, readme_block, readme_claims_markdown,
                               report_settings, update_readme)
from satimp_lab.studies import STUDIES, load_population_claims

# the rule, restated rather than called (a deliberate independent oracle), so that a library rule
# that changed its mind fails
from oracles import restated_combination, restated_verdict

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
SNAPSHOTS = sorted(p.parent for p in RESULTS.glob("*/settings.json"))


def readme_claims_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lo, hi = readme_block(text)
    return text[lo:hi].strip("\n")


def test_a_snapshot_is_committed():
    assert SNAPSHOTS, f"no snapshot under {RESULTS} (run `satimp-lab readme-table REPORT_DIR`)"
    for folder in SNAPSHOTS:
        assert report_settings(folder)["size"] == folder.name
        assert {c["study"] for c in load_population_claims(folder)} == {s.id for s in STUDIES}


def test_the_snapshots_decide_parts_both_ways():
    """A rule that flipped its directions (or decided nothing) shows in the snapshot tests."""
    decided = {p["verdict"] for folder in SNAPSHOTS for c in load_population_claims(folder) for p in c["parts"]}
    assert {"reproduced", "contradicted"} <= decided, decided


def test_readme_block_is_generated_from_a_snapshot():
    block = readme_claims_block()
    generated = {folder.name: readme_claims_markdown(folder, shown_as=folder.relative_to(ROOT).as_posix())
                 for folder in SNAPSHOTS}
    assert block in generated.values(), (
        "README.md's claims table is not what `satimp-lab readme-table` generates from any snapshot in "
        f"{sorted(generated)}: regenerate it")


@pytest.mark.parametrize("folder", SNAPSHOTS, ids=lambda p: p.name)
def test_snapshot_verdicts_follow_the_rule(folder):
    claims = load_population_claims(folder)
    for claim in claims:
        assert claim["source"] in SOURCES, claim["id"]
        for part in claim["parts"]:
            for key in ("low", "high"):  # the JSON keeps a missing interval as null
                assert part[key] is None or math.isfinite(part[key]), part
            assert part["verdict"] == restated_verdict(part), (claim["id"], part)
            nan = float("nan")
            lib = verdicts.decide(part["effect"], nan if part["low"] is None else part["low"],
                                  nan if part["high"] is None else part["high"], part["min_effect"])
            assert part["verdict"] == lib, (claim["id"], part)
            # the paired sign convention: the effect is the claim's direction of the two means
            # (every target has the same number of seeds, so the mean of target means is the mean)
            a, b = part["mean_a"], part["mean_b"]
            assert part["effect"] == pytest.approx(b - a if part["lower_is_better"] else a - b, abs=1e-9), part
            assert 0 <= part["p_improvement"] <= 1 and 0 <= part["unreached_a"] <= part["n_units"]
        shown = [p["verdict"] for p in claim["parts"]]
        assert claim["verdict"] == restated_combination(shown) == verdicts.combine(shown), claim["id"]


def summary_from_unit_tables(folder: Path, prefix: str) -> tuple[pd.DataFrame, set]:
    """The long table (``label, target_seed, seed, <metric>, reached``) behind one study's saved
    per-unit tables, and the labels whose per-unit ``reached`` flags are known (a label with
    ``k/n`` units reached, 0 < k < n, gets its k first units marked reached)."""
    rows, exact = [], set()
    for path in sorted({p for pattern in UNIT_TABLES for p in (folder / "tables").glob(f"{prefix}_{pattern}")}):
        table = pd.read_csv(path)
        if path.stem.endswith("_unit_values"):  # long already (the relearning study): the rows decide read
            rows += table.to_dict("records")
            exact |= set(table["label"])
            continue
        if path.stem.endswith("_by_target"):  # observation (ii): one row per target, one column per group
            for group in ("key", "other"):
                rows += [{"label": group, "target_seed": int(t), "seed": 0, "mean_likelihood": v, "reached": True}
                         for t, v in zip(table["target_seed"], table[group])]
                exact.add(group)
            continue
        units = [c for c in table.columns if re.fullmatch(r"t\d+/s\d+", c)]
        for _, row in table.iterrows():
            k, n = (int(x) for x in row["reached"].split("/"))
            exact |= {row["label"]} if k in (0, n) else set()
            for i, unit in enumerate(units):
                t, s = (int(x) for x in re.findall(r"\d+", unit))
                rows.append({"label": row["label"], "target_seed": t, "seed": s,
                             "matched_forget": row[unit], "reached": i < k})
    return pd.DataFrame(rows), exact


@pytest.mark.parametrize("folder", SNAPSHOTS, ids=lambda p: p.name)
def test_snapshot_claims_are_what_the_studies_decide_from_its_units(folder):
    """Each study's ``decide`` on the snapshot's per-unit values gives back every saved number and
    verdict: a changed rule, sign, P(improvement), pairing or claim direction disagrees."""
    saved = {c["id"]: c for c in load_population_claims(folder)}
    for study in STUDIES:
        summary, exact = summary_from_unit_tables(folder, study.notebook.split("_")[0])
        assert not summary.empty, f"no per-unit table of {study.id} in {folder / 'tables'}"
        for claim in study.decide(summary):
            old = saved[claim.id]
            assert (claim.verdict, claim.source) == (old["verdict"], old["source"]), (
                f"{claim.id}: the study decides {claim.verdict!r} on the units of {folder}, the snapshot says "
                f"{old['verdict']!r} (a study or rule changed on purpose? reproduce, then `satimp-lab readme-table`)")
            assert len(claim.parts) == len(old["parts"]), claim.id
            for new, was in zip(claim.parts, old["parts"]):
                assert (new.a, new.b, new.lower_is_better, new.min_effect, new.verdict) == \
                    (was["a"], was["b"], was["lower_is_better"], was["min_effect"], was["verdict"]), claim.id
                for key in ("effect", "low", "high", "p_improvement", "mean_a", "mean_b"):
                    value = getattr(new, key)
                    assert (was[key] is None and math.isnan(value)) or value == pytest.approx(was[key], abs=1e-9), \
                        (claim.id, new.a, new.b, key)
                assert (new.n_targets, new.n_units) == (was["n_targets"], was["n_units"])
                if {new.a, new.b} <= exact:
                    assert (new.unreached_a, new.unreached_b) == (was["unreached_a"], was["unreached_b"])


# -- the command ------------------------------------------------------------------------------


def fake_report(folder: Path, size="fast") -> Path:
    """A report folder holding the committed snapshot's claims and a settings line."""
    source = SNAPSHOTS[0]
    shutil.copytree(source / "population", folder / "population")
    (folder / "report.md").write_text(f"# satimp_lab reproduction report\n\nGenerated by `satimp-lab reproduce` "
                                      f"(size={size}, tier=default, total seconds=1).\n")
    return folder


def test_readme_table_command_rewrites_only_the_block(tmp_path):
    start, end = README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{start}\nold table\n{end}\n\nafter\n")
    report = fake_report(tmp_path / "rep")
    assert main(["readme-table", str(report), "--readme", str(readme),
                 "--results", str(tmp_path / "docs" / "results")]) == 0
    snapshot = tmp_path / "docs" / "results" / "fast"
    assert sorted(p.name for p in (snapshot / "population").glob("*.json")) == \
        sorted(p.name for p in (report / "population").glob("*.json"))
    assert json.loads((snapshot / "settings.json").read_text()) == {"size": "fast", "tier": "micro"}
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n\n") and text.endswith(f"{end}\n\nafter\n")
    assert "old table" not in text
    block = text[text.index(start) + len(start):text.index(end)].strip("\n")
    assert block == readme_claims_markdown(snapshot, shown_as="docs/results/fast")
    assert "**fast size** (3 micro targets x 1 seed)" in block
    assert "`docs/results/fast/population/`" in block
    for claim in load_population_claims(snapshot):
        assert f"| {claim['id']} |" in block and f"**{claim['verdict']}**" in block
        assert f"*{claim['source']}* = {SOURCES[claim['source']]}" in block
    # a second run is idempotent; a full-size report lands in its own folder
    before = text
    assert main(["readme-table", str(report), "--readme", str(readme), "--results", str(tmp_path / "docs" / "results")]) == 0
    assert readme.read_text() == before
    full = fake_report(tmp_path / "full", size="full")
    update_readme(readme, full, tmp_path / "docs" / "results")
    assert report_settings(tmp_path / "docs" / "results" / "full") == {"size": "full", "tier": "tiny"}
    assert "**full size** (3 tiny targets x 1 seed)" in readme.read_text()


def test_readme_table_errors_name_the_file(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    report = fake_report(tmp_path / "rep")
    assert main(["readme-table", str(report), "--readme", str(readme), "--results", str(tmp_path / "r")]) == 2
    assert str(readme) in capsys.readouterr().err and not (tmp_path / "r").exists()
    readme.write_text(f"{README_MARKERS[0]}\n{README_MARKERS[1]}\n")
    assert main(["readme-table", str(tmp_path / "nothing"), "--readme", str(readme), "--results", str(tmp_path / "r")]) == 2
    assert "not a report folder" in capsys.readouterr().err
