"""Where the files shipped with satimp_lab live: the notebooks and ``data/`` (the synthetic
benchmark and the pinned reference models).

In the source checkout they are the repository's top-level ``notebooks/`` and ``data/`` folders.
A wheel (``pip install .``, not editable) carries the same files inside the package, as
``satimp_lab/_shipped/notebooks`` and ``satimp_lab/_shipped/data`` (``pyproject.toml``,
``[tool.setuptools.package-dir]``). :func:`shipped_path` returns whichever exists, the installed
copy first, so ``satimp-lab reproduce`` runs from either.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["SHIPPED_FOLDERS", "shipped_path"]

SHIPPED_FOLDERS = ("notebooks", "data")
"""The top-level folders of the repository that the wheel carries inside the package."""

_CHECKOUT = Path(__file__).resolve().parent.parent


def shipped_path(folder: str, *parts: str) -> Path:
    """Path of ``folder/parts...`` among the shipped files (``folder`` one of
    :data:`SHIPPED_FOLDERS`): ``satimp_lab/_shipped/<folder>`` in an installed wheel when that
    folder exists, else ``<folder>`` at the top of the source checkout. The path itself need not
    exist (a reader names it in its own error). Raises ``ValueError`` for another ``folder``.

    Example: ``shipped_path("data", "models")`` is the folder of the shipped reference models."""
    if folder not in SHIPPED_FOLDERS:
        raise ValueError(f"folder={folder!r}: the shipped folders are {', '.join(SHIPPED_FOLDERS)}")
    installed = files("satimp_lab") / "_shipped" / folder
    if installed.is_dir():  # a wheel install: a real folder on disk (wheels are unpacked)
        return Path(str(installed)).joinpath(*parts)
    return _CHECKOUT.joinpath(folder, *parts)
