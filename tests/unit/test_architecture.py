"""Dependency rules of DESIGN §1: pages -> ui -> pruning, never back; no Keras 3."""
from __future__ import annotations

import ast
from pathlib import Path

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
