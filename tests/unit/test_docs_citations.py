"""Docstrings cite what users have: the repository's docs/ pages (whose cited sections exist) or the
official code, never the team's private notes (SPEC, DESIGN.md)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "satimp_lab").rglob("*.py"), *(ROOT / "notebooks" / "src").glob("*.py")])
PRIVATE = re.compile(r"\bSPEC\b|DESIGN\.md")
CITATION = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}


def citations(text: str) -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in CITATION.finditer(text)]


def test_github_anchor_matches_githubs_rule():
    assert github_anchor("Forget ES at matched retain") == "forget-es-at-matched-retain"
    assert github_anchor("SimSat, WGA, SimImp and SatImp") == "simsat-wga-simimp-and-satimp"
    assert github_anchor("GA and NPO") == "ga-and-npo"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_source_cites_private_notes(path):
    bad = [f"{path.name}:{i}: {line.strip()}" for i, line in
           enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if PRIVATE.search(line)]
    assert bad == [], "cite docs/methods.md or the official file and commit instead:\n" + "\n".join(bad)


def test_every_cited_docs_section_exists():
    missing, cited = [], 0
    for path in SOURCES:
        for page, anchor in citations(path.read_text(encoding="utf-8")):
            cited += 1
            doc = ROOT / "docs" / page
            if not doc.is_file():
                missing.append(f"{path.name}: docs/{page} does not exist")
            elif anchor is not None and anchor not in anchors(doc):
                missing.append(f"{path.name}: docs/{page}#{anchor} is no heading of the page")
    assert cited > 40  # the metrics, weighting, objectives, ... docstrings cite the page
    assert missing == [], "\n".join(missing)


def test_the_pages_own_links_to_sections_exist():
    for page in ("methods.md", "departures.md"):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([\w-]*\.md)?#([\w-]+)\)", text):
            assert anchor in anchors(ROOT / "docs" / (target or page)), f"docs/{page}: {target}#{anchor}"


def test_the_methods_page_covers_every_method_and_metric():
    names = anchors(ROOT / "docs" / "methods.md")
    for section in ("the-weight-family", "ga-and-npo", "simnpo", "simsat-wga-simimp-and-satimp",
                    "granularity", "hard-sampling", "annotation-weighting", "extraction-strength",
                    "truth-ratio", "forget-quality", "model-utility", "rouge", "key-token-accuracy",
                    "membership-inference", "forget-es-at-matched-retain"):
        assert section in names, section
    assert "51314c0" in (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
