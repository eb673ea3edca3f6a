"""satimp_lab/tiers.py: every tier and size declared in one module, and read from there."""

import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path

import satimp_lab
from satimp_lab import experiments
from satimp_lab import tiers
from satimp_lab.unlearning import run as unlearn

ROOT = Path(satimp_lab.__file__).parents[1]


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(m for m in sys.modules if m.startswith('satimp_lab'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_tiers_is_a_bottom_floor_module():
    # errors, and batching's prompt formats (a TierConfig checks its prompt_format); nothing else
    # (data/ is batching's folder)
    assert _imported_after("import satimp_lab.tiers") <= {
        "satimp_lab", "satimp_lab.tiers", "satimp_lab.errors", "satimp_lab.data",
        "satimp_lab.data.batching"}


def test_models_no_longer_reach_up_to_experiments():
    # main's shipped_benchmark("micro") imported experiments (models -> experiments -> models)
    assert "satimp_lab.experiments" not in _imported_after(
        "import satimp_lab.models.cache as m; m.shipped_benchmark('micro')")


def test_sizes_recipes_and_presets_are_built_from_the_declarations():
    assert set(experiments.SETTINGS) == set(tiers.SIZES)
    for name, declared in tiers.SIZES.items():
        setting = experiments.SETTINGS[name]
        assert setting.name == name
        for key, value in declared.items():
            got = getattr(setting, key)
            assert (asdict(got) | value == asdict(got)) if isinstance(value, dict) else got == value, (name, key)
    assert experiments.Setting().base == experiments.SETTINGS["full"].base
    for tier, declared in tiers.TIER_RECIPES.items():
        built = experiments.TIER_RECIPES[tier]
        assert set(built) == set(declared)
        assert built["base"] == unlearn.UnlearnConfig(**declared["base"])
    assert set(unlearn.PRESETS) == set(tiers.PRESETS)
    for name, declared in tiers.PRESETS.items():
        assert unlearn.PRESETS[name] == unlearn.UnlearnConfig(**declared)


def test_every_declared_field_is_a_field_of_its_config():
    setting_fields = {f.name for f in fields(experiments.Setting)}
    config_fields = {f.name for f in fields(unlearn.UnlearnConfig)}
    for table in (tiers.SIZES, tiers.TIER_RECIPES):
        for declared in table.values():
            assert set(declared) <= setting_fields
            assert set(declared.get("base", {})) <= config_fields
    for declared in tiers.PRESETS.values():
        assert set(declared) <= config_fields


def test_every_config_field_has_help_text():
    # each field of the tier configs is followed by its docstring
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(tiers))
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            body = node.body
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.AnnAssign):
                    documented = (i + 1 < len(body) and isinstance(body[i + 1], ast.Expr)
                                  and isinstance(body[i + 1].value, ast.Constant))
                    assert documented, f"{node.name}.{stmt.target.id}"
