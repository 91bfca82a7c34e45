"""The package layout is the architecture: data flows one way, and lower layers never import
upper ones (so the engine can be tested, and reused by another front end, on its own)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "assume_provider"

# Each layer may import the layers listed before it, and itself.
LAYERS = [
    {"engine", "collector"},  # import nothing of the package
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


# -- import circles ---------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _imported_modules(path: Path) -> set[str]:
    """The package's modules ``path`` imports, wherever the import is (module level, inside a
    function, under ``if``): a lazy import still closes a circle, it only moves the failure."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from package import module` imports the module; `from module import name`
            # imports the module that defines the name.
            candidates = [f"{target}.{alias.name}" for alias in node.names]
            modules = [name for name in candidates if _is_module(name)]
            found.update(modules or [target])
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "assume_provider" and name != module}


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imported_modules(path) & set(modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle_in(graph, group) for group in groups]


def _circle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A path from the group's first module back to itself, for the failure message."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for successor in sorted(graph[node] & group):
            if successor == start:
                return [*paths[node], start]
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                frontier.append(successor)
    raise AssertionError(f"no circle in {group}")


def test_no_import_circle_between_modules_of_the_package() -> None:
    circles = [" -> ".join(circle) for circle in _cycles(_import_graph())]
    assert not circles, circles


def test_the_circle_finder_finds_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": set()}
    assert _cycles(graph) == [["a", "b", "c", "a"]]


def test_a_lazy_import_counts() -> None:
    """attempts.py once imported sources.py inside a function, and sources.py imported it."""
    graph = _import_graph()
    assert "assume_provider.credentials.imds" in graph["assume_provider.credentials.attempts"]
    assert "assume_provider.credentials.fetcher" in graph["assume_provider.cli.obtain"]  # lazy


def test_the_command_line_composes_the_chain_from_the_credentials_layer() -> None:
    """The chain's composition (source, hops, fallback regions, engine) is in credentials/;
    botocore/ only adapts it to botocore sessions, which the command line has no use for."""
    graph = _import_graph()
    cli = [name for name in graph if name.startswith("assume_provider.cli")]
    wrong = sorted(
        f"{name} imports {imported}"
        for name in cli
        for imported in graph[name]
        if imported.startswith("assume_provider.botocore")
    )
    assert not wrong, wrong
    composition = ("ChainFetcher", "ChainKey", "make_engine", "fallback_regions", "engine_now")
    botocore_layer = "\n".join(p.read_text() for p in (PACKAGE / "botocore").glob("*.py"))
    assert not [name for name in composition if f"def {name}" in botocore_layer]
    assert not [name for name in composition if f"class {name}" in botocore_layer]
