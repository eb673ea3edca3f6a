"""The package is clean under its linter (ruff) and type checker (mypy), both configured in
pyproject.toml (``[tool.ruff]``, ``[tool.mypy]``): CI runs them through the README's test command.

Run them alone from the repository root with ``ruff check satimp_lab`` and ``mypy``. mypy keeps
its cache in ``.mypy_cache/`` (git-ignored): ~45 s on 2 CPU cores without it, ~2 s with it."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _check(tool: str, *args: str) -> None:
    """Run ``python -m tool *args`` in the repository root; fail with its findings unless it exits 0."""
    result = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        pytest.fail(f"`{' '.join((tool, *args))}` exited {result.returncode} (pip install -e '.[dev]' installs "
                    f"{tool}):\n{result.stdout}{result.stderr}", pytrace=False)


def test_ruff_finds_nothing():
    _check("ruff", "check", "--no-cache", "--output-format", "concise", "satimp_lab")


def test_mypy_finds_nothing():
    _check("mypy")  # the packages and options of [tool.mypy]
