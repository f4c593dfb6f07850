"""The package's layers (DESIGN.md, "Layers"): no module imports a higher layer.

Every `import` / `from … import` in every module is read with `ast`, including imports inside
functions (a lazy import is still a dependency; it only hides a cycle). A module may import its own
layer and any lower one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src" / "prefrl"

# Lowest first; names on one line are one layer (they may import each other).
LAYERS: list[tuple[str, ...]] = [
    ("errors", "utils"),
    ("data",),
    ("config",),
    ("models",),
    ("objectives",),
    ("rollout",),
    ("preference",),
    ("rewards",),
    ("eval",),
    ("engine",),
    ("algorithms",),
    ("serve", "integrations"),
    ("demo",),
    ("cli",),
    ("__main__",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

# `prefrl/__init__.py` belongs to no layer: it sets OpenMP's wait policy (engine/threads.py) before
# anything imports torch, so it must run first whichever layer a user imports.
OUTSIDE_LAYERS = {Path("__init__.py")}


def unit_of(relative_path: Path) -> str:
    """Top-level unit of a module path relative to the package root: `eval/policy.py` -> `eval`."""
    first = relative_path.parts[0]
    return first[: -len(".py")] if first.endswith(".py") else first


def imported_units(source: str, module_parts: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """(line, imported module, its top-level unit) for every prefrl import in `source`, at any depth.

    `module_parts` is the importing module's dotted path inside prefrl (`("eval", "policy")`, or
    `("rollout", "__init__")`), used to resolve relative imports."""
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = ["prefrl", *module_parts[:-1]]
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from prefrl import eval` imports the unit named after `import`
            names = [f"{module}.{alias.name}" for alias in node.names] if module == "prefrl" else [module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "prefrl" and len(parts) > 1:
                found.append((node.lineno, name, parts[1]))
    return found


def modules() -> list[Path]:
    return sorted(p.relative_to(PACKAGE_ROOT) for p in PACKAGE_ROOT.rglob("*.py"))


def upward_imports(relative_path: Path, source: str) -> list[str]:
    importer = unit_of(relative_path)
    module_parts = tuple(relative_path.with_suffix("").parts)
    return [
        f"{relative_path}:{line} ({importer}) imports {name} ({unit})"
        for line, name, unit in imported_units(source, module_parts)
        if unit in RANK and RANK[unit] > RANK[importer]
    ]


def test_every_module_belongs_to_a_listed_layer():
    unlisted = {unit_of(p) for p in modules() if p not in OUTSIDE_LAYERS} - set(RANK)
    assert not unlisted, f"add {sorted(unlisted)} to LAYERS in tests/test_layers.py (and to DESIGN.md's layers)"


def test_no_module_imports_a_higher_layer():
    violations = [v for p in modules() if p not in OUTSIDE_LAYERS for v in upward_imports(p, (PACKAGE_ROOT / p).read_text())]
    assert not violations, "imports that run upward:\n" + "\n".join(violations)


def test_every_import_names_a_listed_unit():
    unknown = {
        f"{p}: {name}"
        for p in modules()
        for _, name, unit in imported_units((PACKAGE_ROOT / p).read_text(), tuple(p.with_suffix("").parts))
        if unit not in RANK and unit != "__version__"
    }
    assert not unknown, f"imports of prefrl units not in LAYERS: {sorted(unknown)}"


@pytest.mark.parametrize(
    "path, source, expected",
    [
        # a lazy import inside a function is found
        ("preference/dialog.py", "def f():\n    from prefrl.eval.policy import eos_token_ids\n", ["eval"]),
        ("data/x.py", "import prefrl.models.loading as m\n", ["models"]),
        ("models/x.py", "from prefrl import engine\n", ["engine"]),
        # relative: `from ..eval import stats` inside preference/x.py
        ("preference/x.py", "from ..eval import stats\n", ["eval"]),
        # downward and same-layer imports are allowed
        ("eval/x.py", "from prefrl.preference.base import PreferenceModel\nfrom prefrl.eval.stats import sign_test\n", []),
        ("utils.py", "from prefrl.errors import PrefrlError\n", []),
        ("rollout/__init__.py", "from .generation import generate_responses\n", []),
    ],
)
def test_the_checker_finds_upward_imports(path, source, expected):
    units = [v.rsplit("(", 1)[1].rstrip(")") for v in upward_imports(Path(path), source)]
    assert units == expected
