"""The packages form layers, every import pointing down: ``golden`` < ``hdl`` < ``sim`` < ``host`` < ``bench``.

``golden`` (the model, the contract tables, the protocol's bytes) imports no other package of the
project; ``hdl`` reads ``golden``; ``sim`` runs ``hdl``'s designs; ``host`` drives arrays through
``sim`` or a board; ``bench`` measures all of them. An upward import (even one inside a function)
would make a lower layer depend on a higher one and bring back import cycles, so every module's
imports are read here with :mod:`ast`, without importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAYERS = ("golden", "hdl", "sim", "host", "bench")
ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the module at ``path`` (relative imports
    resolved against ``package``, the module's dotted package), at any depth of the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def upward_imports(root: Path = ROOT) -> list[str]:
    """One line ``file:line: layer imports higher.module`` per import that points up the layers."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    problems = []
    for layer in LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            rel = path.relative_to(root)
            package = ".".join(rel.parent.parts)
            for line, module in imported_modules(path, package):
                top = module.split(".")[0]
                if top in rank and rank[top] > rank[layer]:
                    problems.append(f"{rel}:{line}: {layer} imports {module}")
    return problems


def test_every_import_points_down_the_layers():
    problems = upward_imports()
    assert not problems, "upward imports (golden < hdl < sim < host < bench):\n" + "\n".join(problems)


@pytest.mark.parametrize("source, package, want", [
    ("from .bridge import HostBridge", "hdl", "hdl.bridge"),
    ("from . import metrics", "golden", "golden"),
    ("from ..golden import config", "sim.sub", "sim.golden"),
    ("import host.link as link", "sim", "host.link"),
])
def test_relative_imports_are_resolved_against_the_package(tmp_path, source, package, want):
    path = tmp_path / "m.py"
    path.write_text(f"def f():\n    {source}\n")
    assert imported_modules(path, package) == [(2, want)]


def test_an_upward_import_inside_a_function_is_found(tmp_path):
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "bad.py").write_text("def f():\n    from sim.run import main\n")
    for layer in LAYERS[1:]:
        (tmp_path / layer).mkdir()
    assert upward_imports(tmp_path) == ["golden/bad.py:2: golden imports sim.run"]
