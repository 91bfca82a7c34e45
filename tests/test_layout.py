"""The package layout is the architecture: data flows one way, and lower layers never import
upper ones (so the engine can be tested, and reused by another front end, on its own)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "assume_provider"

# Each layer may import the layers listed before it, and itself.
LAYERS = [
    {"engine"},  # imports nothing of the package
    {"errors", "redaction"},
    {"config"},
    {"diskcache"},  # the disk cache: the CLI's now, the library's too once it shares (#19)
    {"credentials"},
    {"botocore"},
    {"aio"},  # the aiobotocore view, built on the botocore integration
    {"server"},  # the host credential server, built on the botocore integration
    {"cli", "startup", "templates", "__init__", "__main__"},
]


def _layer_of(part: str) -> int:
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"assume_provider/{part} is in no layer of tests/test_layout.py")


def _package_imports(path: Path) -> set[str]:
    """The first component under assume_provider of everything ``path`` imports."""
    module_parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = module_parts[:-1]  # a module's package, or the package of an __init__.py
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                target = base + (node.module.split(".") if node.module else [])
                names = [target] if node.module else [[*target, a.name] for a in node.names]
            else:
                names = [(node.module or "").split(".")]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for name in names:
            if name and name[0] == "assume_provider" and len(name) > 1:
                part = name[1]
                is_module = (PACKAGE / part).is_dir() or (PACKAGE / f"{part}.py").exists()
                found.add(part if is_module else "__init__")  # a name from __init__.py
    return found


def test_lower_layers_never_import_upper_ones() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for imported in _package_imports(path):
            if _layer_of(imported) > _layer_of(own):
                wrong.append(f"{path.relative_to(PACKAGE)} imports assume_provider.{imported}")
    assert not wrong, wrong


def test_the_engine_imports_nothing_of_the_package() -> None:
    for path in (PACKAGE / "engine").glob("*.py"):
        assert _package_imports(path) <= {"engine"}, path
