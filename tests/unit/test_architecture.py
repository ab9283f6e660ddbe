"""Dependency rules of DESIGN §1: pages -> ui -> pruning, never back; no Keras 3.

No import cycle among pruning/ and ui/ (lazy imports included); no page starts TensorFlow.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def python_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def test_backend_never_imports_streamlit_or_ui():
    offenders = [str(p) for p in python_files("pruning") if imports(p) & {"streamlit", "ui"}]
    assert offenders == []


KERAS3_BRIDGE = ROOT / "pruning" / "model" / "keras3.py"


def test_nothing_imports_keras_3():
    """Keras 3 (`import keras`) only in the bridge, and there only inside functions (lazily)."""
    files = python_files("pruning", "ui", "pages", "tests", "bench") + [ROOT / "app.py"]
    offenders = [str(p) for p in files if "keras" in imports(p) and p != KERAS3_BRIDGE]
    assert offenders == []
    tree = ast.parse(KERAS3_BRIDGE.read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not any(alias.name.split(".")[0] == "keras" for node in top_level
                   for alias in getattr(node, "names", []) if isinstance(node, ast.Import))
    assert not any(isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "keras"
                   and node.level == 0 for node in top_level)
    assert "keras" in imports(KERAS3_BRIDGE)


def test_pages_do_not_import_tensorflow():
    files = python_files("pages") + [ROOT / "app.py"]
    offenders = [str(p) for p in files if imports(p) & {"tensorflow", "tf_keras", "tensorflow_model_optimization"}]
    assert offenders == []


def test_pages_use_streamlit_pages_dir_not_navigation():
    for path in python_files("pages") + [ROOT / "app.py"]:
        assert "st.navigation" not in path.read_text(), path


def test_every_module_has_a_docstring():
    missing = [str(p) for p in python_files("pruning", "ui", "pages") + [ROOT / "app.py"]
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []


# --- the import graph: no cycle among pruning/ and ui/; no TensorFlow under a page --------

GRAPH_PACKAGES = ("pruning", "ui")
TENSORFLOW = {"tensorflow", "tf_keras", "tensorflow_model_optimization"}


def module_name(path: Path) -> str:
    """`pruning/run/engine.py` -> `pruning.run.engine`; a package is named by its folder."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in python_files(*GRAPH_PACKAGES)}


def is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`: never true when the program runs."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_nodes(tree: ast.Module) -> list[tuple[ast.stmt, bool]]:
    """Every import statement with whether it runs when the module is imported.

    Imports inside functions (lazy) and under `if TYPE_CHECKING:` are returned too, marked
    False; class bodies run at import time, so theirs are marked True.
    """
    found: list[tuple[ast.stmt, bool]] = []

    def visit(node: ast.AST, at_import: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, at_import))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            at_import = False
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_import)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, at_import)

    visit(tree, True)
    return found


def imported_names(node: ast.stmt, module: str, is_package: bool) -> list[str]:
    """Absolute dotted names an import statement loads; `from X import y` names `X.y`
    where that is a module of ours, else `X`. Relative imports resolved against `module`."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def own_module(name: str) -> str | None:
    """The deepest module of ours that `name` is or lies in; None for other libraries."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in MODULES:
            return ".".join(parts[:end])
    return None


def module_imports(path: Path, module: str) -> list[tuple[str, int, bool]]:
    """(absolute name, line, runs at import time) for every import in the file at `path`."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    return [(name, node.lineno, at_import) for node, at_import in import_nodes(tree)
            for name in imported_names(node, module, is_package)]


def import_graph() -> dict[str, dict[str, list[int]]]:
    """module -> {module it imports -> lines}, over pruning/ and ui/, lazy and TYPE_CHECKING
    imports included."""
    graph: dict[str, dict[str, list[int]]] = {m: {} for m in MODULES}
    for module, path in MODULES.items():
        for name, line, _ in module_imports(path, module):
            target = own_module(name)
            if target is not None and target != module:
                lines = graph[module].setdefault(target, [])
                if line not in lines:
                    lines.append(line)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[int]]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that reach each other (each a cycle or a
    knot of cycles), sorted, singletons without a self-import left out."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(groups)


def describe_cycle(group: list[str], graph: dict[str, dict[str, list[int]]]) -> str:
    """One line: the members, then each import between them with its file and lines."""
    edges = [f"{a} -> {b} ({MODULES[a].relative_to(ROOT)}:{','.join(map(str, graph[a][b]))})"
             for a in group for b in sorted(graph[a]) if b in group]
    return f"cycle of {len(group)} modules [{', '.join(group)}]: " + "; ".join(edges)


def test_import_graph_resolves_relative_lazy_and_type_checking_imports():
    graph = import_graph()
    # engine.py: `from ..methods import ...` at the top, `from .sweep import ...` in a function
    assert "pruning.methods" in graph["pruning.run.engine"]
    assert "pruning.specs" in graph["pruning.run.engine"]
    assert all(target in MODULES for targets in graph.values() for target in targets)
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import b\n"
                     "def f():\n    import c.d\nclass K:\n    from . import e\n")
    runs = [(imported_names(node, "pruning.run.x", False), at_import) for node, at_import in import_nodes(tree)]
    assert runs == [(["typing"], True), (["pruning.run.a"], False), (["c.d"], False), (["pruning.run"], True)]
    found = strongly_connected({"a": {"b": [1]}, "b": {"c": [1], "a": [2]}, "c": {}, "d": {"d": [1]}})
    assert found == [["a", "b"]]


def test_no_import_cycles_in_pruning_and_ui():
    graph = import_graph()
    cycles = [describe_cycle(group, graph) for group in strongly_connected(graph)]
    assert cycles == [], "\n".join(cycles)


def tensorflow_chains(path: Path, module: str) -> list[str]:
    """How the file at `path` (named `module`) reaches TensorFlow through imports that run
    when it is imported: one chain per import of tensorflow, tf_keras or tfmot on the way.

    Importing `a.b.c` runs `a`, `a.b` and `a.b.c`: every package on the way is followed.
    """
    chains: list[str] = []
    seen = {module}
    queue: list[tuple[str, Path, str]] = [(module, path, str(path.relative_to(ROOT)))]
    while queue:
        module, path, chain = queue.pop(0)
        for name, line, at_import in module_imports(path, module):
            if not at_import:
                continue
            if name.split(".")[0] in TENSORFLOW:
                chains.append(f"{chain} -> {name} (line {line})")
                continue
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                target = ".".join(parts[:end])
                if target in MODULES and target not in seen:
                    seen.add(target)
                    queue.append((target, MODULES[target], f"{chain} -> {target} (line {line})"))
    return chains


def test_tensorflow_chains_follow_imports_into_our_modules():
    # the check can fail: the workbench reaches TensorFlow through the one door, pruning._keras
    source = MODULES["pruning.run.workbench"].read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if text.startswith("from .._keras import"))
    chains = tensorflow_chains(MODULES["pruning.run.workbench"], "pruning.run.workbench")
    assert f"pruning/run/workbench.py -> pruning._keras (line {line}) -> tensorflow (line 34)" in chains
    assert f"pruning/run/workbench.py -> pruning._keras (line {line}) -> tf_keras (line 35)" in chains


@pytest.mark.parametrize("page", python_files("pages") + [ROOT / "app.py"], ids=lambda p: p.name)
def test_pages_reach_no_tensorflow_at_import_time(page):
    chains = tensorflow_chains(page, page.stem)
    assert chains == [], "\n".join(chains)


DATA_MODULES = ("pruning.specs", "pruning.reports", "pruning.plan", "pruning.plain", "pruning.errors",
                "pruning.paths")


@pytest.mark.parametrize("module", DATA_MODULES)
def test_data_modules_import_no_tensorflow(module):
    # DESIGN §1: plain data at the top, cheap to import in the Streamlit process and the CLI
    chains = tensorflow_chains(MODULES[module], module)
    assert chains == [], "\n".join(chains)
