"""Independent oracles for the tests: rules of the library written a second time, on purpose.

The verdict rule lives in :func:`satimp_lab.studies.verdicts.decide` and :func:`satimp_lab.studies.verdicts.combine`.
The functions here restate it from the README's definition instead of calling it, so that a
library rule that changed its mind (flipped its directions, dropped the minimum effect) fails the
tests that compare saved verdicts with both. This is the one restatement: tests that need an
oracle import it from here (``from oracles import ...``; pytest puts this folder on ``sys.path``
because ``tests/conftest.py`` lives in it), the others call the library.
"""

from __future__ import annotations


def restated_verdict(part: dict) -> str:
    """Deliberate independent oracle of :func:`satimp_lab.studies.verdicts.decide`, on one saved part of a
    claim (``low``, ``high``, ``effect``, ``min_effect``; a missing interval saved as None):
    reproduced when ``low > 0`` and ``effect >= min_effect``, contradicted when ``high < 0`` and
    ``effect <= -min_effect``, else inconclusive."""
    low, high, effect, minimum = part["low"], part["high"], part["effect"], part["min_effect"]
    if low is None or high is None:
        return "inconclusive"
    if low > 0 and effect >= minimum:
        return "reproduced"
    if high < 0 and effect <= -minimum:
        return "contradicted"
    return "inconclusive"


def restated_combination(parts: list[str]) -> str:
    """Deliberate independent oracle of :func:`satimp_lab.studies.verdicts.combine`: every part the same
    verdict -> that verdict; otherwise partly when one is reproduced (or partly), contradicted when
    none is and one is contradicted, else inconclusive."""
    if len(set(parts)) == 1:
        return parts[0]
    if "reproduced" in parts or "partly" in parts:
        return "partly"
    return "contradicted" if "contradicted" in parts else "inconclusive"
