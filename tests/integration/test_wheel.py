"""A non-editable install runs the main job: build the wheel, install it (``--no-deps``) into a fresh
virtual environment that reuses this interpreter's packages (:func:`_see_these_packages`), check
that it carries every notebook and shipped data file byte for byte, and run
``satimp-lab reproduce --fast --only 01 02`` from outside the checkout (the whole ``--fast`` run
costs minutes; 01 loads the shipped models and benchmark and unlearns, 02 runs no study).

Part of the README's test command, so ``.ci/run`` checks it too.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from satimp_lab.resources import SHIPPED_FOLDERS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "satimp_lab", *SHIPPED_FOLDERS)
JUNK = shutil.ignore_patterns("__pycache__", ".*", "*.tmp", "*.pyc")


def _tree(folder: Path) -> set[str]:
    """Files under ``folder`` (relative, posix), without hidden paths and byte-code."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", ".tmp"))
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _site_dirs() -> list[str]:
    """The folders this interpreter imports installed packages from: its site-packages (a venv's,
    a conda environment's, or the system's, with the base interpreter's too when a venv was made
    with ``--system-site-packages``) and the user's site-packages when it reads them."""
    dirs = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def _see_these_packages(python: Path, env: dict) -> None:
    """Let the venv of ``python`` import what this interpreter imports, after its own packages:
    a ``.pth`` file in its site-packages adds :func:`_site_dirs` with ``site.addsitedir`` (so their
    own ``.pth`` files count too). Not ``--system-site-packages``: that shares the *base*
    interpreter's packages, which lack this environment's when the tests run in a venv."""
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env=env)
    lines = "".join(f"site.addsitedir({d!r}); " for d in _site_dirs())
    (Path(purelib.stdout.strip()) / "_satimp_lab_test_outer_site.pth").write_text(f"import site; {lines}\n")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, environment, site-packages/satimp_lab) of the wheel installed non-editable."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a clean copy: an in-tree build would reuse a stale build/ folder
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=JUNK)
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", tmp / "dist", src])
    wheel = next((tmp / "dist").glob("satimp_lab-*.whl"))
    venv.EnvBuilder(with_pip=True).create(tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    _see_these_packages(python, env)
    env.update(SATIMP_LAB_CACHE=str(tmp / "cache"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", TOKENIZERS_PARALLELISM="false")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], env=env, cwd=tmp)
    where = _run([python, "-c", "import json, satimp_lab, satimp_lab.mainjob.reproduce as r, satimp_lab.models.cache as m, "
                  "satimp_lab.data.benchmark as b; print(json.dumps([satimp_lab.__file__, str(r.NOTEBOOK_DIR), "
                  "str(m.SHIPPED_DIR), str(b.default_data_dir())]))"], env=env, cwd=tmp)
    package, *folders = json.loads(where.stdout)
    package = Path(package).parent
    return python, env, tmp, package, folders


def test_the_installed_package_is_the_wheel_and_reads_its_own_files(installed):
    python, env, tmp, package, folders = installed
    venv_dir = (tmp / "venv").resolve()
    assert package.resolve().is_relative_to(venv_dir), f"imported {package}, not the installed wheel"
    assert not package.resolve().is_relative_to(ROOT)
    for folder in folders:  # notebooks, shipped models, benchmark files: the wheel's copies
        assert Path(folder).resolve().is_relative_to(package.resolve() / "_shipped"), folder



def test_the_venv_imports_this_environments_dependencies(installed):
    """The wheel's venv runs on this environment's packages, not the base interpreter's (which,
    when the tests run in a venv, may lack them or hold other versions)."""
    python, env, tmp, _, _ = installed
    code = ("import json, ipykernel, nbclient, numpy, pandas; "
            "print(json.dumps([m.__file__ for m in (ipykernel, nbclient, numpy, pandas)]))")
    inner = json.loads(_run([python, "-c", code], env=env, cwd=tmp).stdout)
    outer = json.loads(_run([sys.executable, "-c", code], env=env, cwd=tmp).stdout)
    assert inner == outer

KERNEL_CHECK = """
import json, sys, nbformat
from satimp_lab.mainjob.reproduce import execute_notebook
nb = nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_code_cell("SIZE = None", metadata={"tags": ["parameters"]}),
    nbformat.v4.new_code_cell("import satimp_lab; print(satimp_lab.__file__)")])
nbformat.write(nb, "where.ipynb")
run = execute_notebook("where.ipynb", "where_out.ipynb", {})
out = nbformat.read("where_out.ipynb", as_version=4)
print(json.dumps([run["status"], out.cells[-1].outputs[0]["text"].strip()]))
"""


def test_notebook_kernels_import_the_installed_package(installed):
    python, env, tmp, package, _ = installed
    status, imported = json.loads(_run([python, "-c", KERNEL_CHECK], env=env, cwd=tmp).stdout.splitlines()[-1])
    assert status == "ok" and Path(imported).resolve().parent == package.resolve(), imported


def test_the_wheel_carries_every_notebook_and_data_file(installed):
    _, _, _, package, _ = installed
    for name in SHIPPED_FOLDERS:
        repo, inside = ROOT / name, package / "_shipped" / name
        expected, carried = _tree(repo), _tree(inside)
        assert expected - carried == set(), f"{name}/ files missing from the wheel"
        assert carried - expected == set(), f"files in the wheel's {name}/ that the checkout lacks"
        different = [f for f in sorted(expected) if not filecmp.cmp(repo / f, inside / f, shallow=False)]
        assert different == [], f"{name}/ files that differ in the wheel"
    assert {p.name for p in (package / "_shipped" / "notebooks").glob("[0-9][0-9]_*.ipynb")} == \
        {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert _tree(ROOT / "satimp_lab") - _tree(package) == set(), "modules missing from the wheel"


def test_the_installed_cli_reproduces_two_notebooks_outside_the_checkout(installed):
    python, env, tmp, _, _ = installed
    cli = python.parent / "satimp-lab"
    out = tmp / "report"
    _run([cli, "reproduce", "--fast", "--only", "01", "02", "--out", out], env=env, cwd=tmp)
    runs = json.loads((out / "runs.json").read_text())
    assert [(r["name"], r["status"]) for r in runs] == [("01_tour", "ok"), ("02_weighting_functions", "ok")]
    assert (out / "report.md").is_file() and (out / "notebooks" / "01_tour.ipynb").is_file()
    # the shipped micro models were loaded from the wheel, not trained into the cache
    assert not list((tmp / "cache").glob("models/*/model.safetensors"))


def test_the_installed_cli_says_benchmarks_are_checkout_only(installed):
    python, env, tmp, _, _ = installed
    out = subprocess.run([str(python.parent / "satimp-lab"), "bench", "tracing_overhead"], env=env, cwd=tmp,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "not of an installed wheel" in out.stderr, out.stderr
