"""Old module paths of satimp_lab, kept working after the move into stage folders.

Until the move, every module sat at the top of the package (``satimp_lab.experiments``,
``satimp_lab.metrics``, ...). :data:`MOVED` maps each old name to its module now, and
:func:`install` (called by ``satimp_lab/__init__.py``) adds an import hook so that
``import satimp_lab.experiments`` returns the very module object ``satimp_lab.studies.lab``:
``from satimp_lab.experiments import Lab`` works, and patching an attribute through either name
patches the one module. ``satimp_lab.models`` is a package now (``satimp_lab.models.zoo`` forwards
what the module held); its names stay importable from it, but patch them on their home module
(``models.build``, ``models.train``, ``models.cache``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["MOVED", "install"]

MOVED: dict[str, str] = {
    "benchmark": "data.benchmark",
    "batching": "data.batching",
    "models": "models.zoo",
    "metrics": "evaluation.metrics",
    "weighting": "unlearning.weighting",
    "params": "unlearning.params",
    "objectives": "unlearning.objectives",
    "tracing": "unlearning.tracing",
    "unlearn": "unlearning.loop",
    "weight_curves": "unlearning.weight_curves",
    "analysis": "unlearning.weight_stats",
    "experiments": "studies.lab",
    "verdicts": "studies.verdicts",
    "attacks": "studies.attacks",
    "report": "studies.report",
    "reproduce": "studies.reproduce",
    "plots": "ui.plots",
    "widgets": "ui.widgets",
    "course": "ui.course",
}
"""old module name under ``satimp_lab`` -> its module now (also under ``satimp_lab``)."""

_PACKAGE = __name__.rpartition(".")[0]

_PACKAGES = {old for old, new in MOVED.items() if new.split(".")[0] == old}
"""Old modules that are stage folders now (``models``): a real package, never aliased."""


class _OldPath(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``satimp_lab.<old>`` and loads it as the module :data:`MOVED` names."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package != _PACKAGE or old not in MOVED or old in _PACKAGES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        old = spec.name.rpartition(".")[2]
        module = importlib.import_module(f"{_PACKAGE}.{MOVED[old]}")
        spec.loader_state = module.__spec__  # the import system overwrites __spec__: restore it
        return module

    def exec_module(self, module):
        # the module ran already under its new name; give it back its own spec (reload, pickle)
        alias = module.__spec__
        if alias is not None and alias.loader is self and alias.loader_state is not None:
            module.__spec__ = alias.loader_state


def install() -> None:
    """Put the hook first on ``sys.meta_path``, once: an old path must never find a stale file
    (an editable install's finder, say, would find the old module in another checkout)."""
    if not any(isinstance(finder, _OldPath) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OldPath())
