"""satimp_lab/__init__.py: the public API on one page. Every name in ``__all__`` imports from the
package, is the object of the module it is listed under, and ``import satimp_lab`` stays light."""

import importlib
import pkgutil
from pathlib import Path
import subprocess
import sys

import satimp_lab


def test_every_public_name_imports_from_the_package():
    assert len(satimp_lab.__all__) == len(set(satimp_lab.__all__)) > 50
    for module, names in satimp_lab._API.items():
        home = importlib.import_module(f"satimp_lab.{module}")
        for name in names:
            assert getattr(satimp_lab, name) is getattr(home, name), f"{module}.{name}"
    namespace = {}
    exec("from satimp_lab import *", namespace)
    assert set(satimp_lab.__all__) <= set(namespace)


def test_no_public_name_shadows_a_module():
    modules = {m.name.removeprefix("satimp_lab.") for m in pkgutil.walk_packages(satimp_lab.__path__, "satimp_lab.")}
    assert set(satimp_lab._API) <= modules
    top = {m.name for m in pkgutil.iter_modules(satimp_lab.__path__)}
    assert set(satimp_lab.__all__) & top == set()


def test_the_findings_module_is_not_part_of_the_api():
    assert "findings" not in satimp_lab._API


def test_an_unknown_name_raises_attribute_error():
    try:
        satimp_lab.no_such_name
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("no AttributeError")


def test_importing_the_package_does_not_import_torch():
    code = "import sys, satimp_lab, satimp_lab.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(satimp_lab.__file__).parents[1])
    assert out.stdout.strip() == "False"
