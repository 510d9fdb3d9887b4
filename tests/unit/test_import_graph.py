"""What ``import caw`` loads, drawn from the code (issue 18): a structural check of the eager import graph.

An import counts when it runs at import time: a module's top-level statements and class bodies, ``try`` and
``if`` blocks included, except ``if TYPE_CHECKING:``. Imports inside functions are the lazy ones, and so is
every name the PEP 562 façades resolve. Importing ``a.b.c`` runs ``a`` and ``a.b`` first, so a module's
parent packages are in its closure too. No timing here: ``scripts/bench.py`` measures.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.test_layers import _modules

MODULES: dict[str, Path] = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _eager_imports(module: str) -> set[str]:
    """The modules ``module`` imports when it is imported (caw submodules resolved, third party by root)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return out


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def eager_closure(module: str) -> set[str]:
    """Every module (caw ones, and the third-party and stdlib ones they name) that importing ``module`` runs."""
    seen: set[str] = set()
    todo = [*_parents(module), module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in MODULES:
            for target in _eager_imports(current):
                todo.extend(p for p in (*_parents(target), target) if p not in seen)
    return seen


def _hits(closure: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in closure if any(m == b or m.startswith(b + ".") for b in banned))


def test_import_caw_loads_no_rich_typer_asyncio_pydantic_or_transport() -> None:
    banned = ("rich", "typer", "click", "asyncio", "pydantic", "caw.transport", "caw.agent", "caw.session")
    assert _hits(eager_closure("caw"), banned) == []


def test_caw_errors_and_the_limit_markers_are_plain_python() -> None:
    for module in ("caw.errors", "caw.limits", "caw.limits.markers", "caw.providers.markers"):
        assert _hits(eager_closure(module), ("pydantic", "caw.transport", "caw.providers.base")) == [], module


def test_the_facade_resolves_every_public_name_it_declares() -> None:
    import caw

    assert set(caw._HOMES) == set(caw.__all__)
    for name, home in caw._HOMES.items():
        assert home in MODULES, f"{name}: {home} is not a caw module"


@pytest.mark.parametrize("name", ["claude", "codex", "opencode"])
def test_the_builtin_marker_data_is_what_each_provider_declares(name: str) -> None:
    from caw.providers import get_provider
    from caw.providers.markers import BUILTIN_MARKERS

    assert dict(BUILTIN_MARKERS)[name] == get_provider(name).limit_markers


def test_the_closure_follows_parent_packages_and_skips_type_checking_and_functions(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\nimport json\nif TYPE_CHECKING:\n    import rich\n"
        "def late():\n    import typer\nclass K:\n    import csv\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    MODULES["caw.probe_for_test"] = probe
    try:
        assert _eager_imports("caw.probe_for_test") == {"typing", "json", "csv"}
        assert "caw" in eager_closure("caw.probe_for_test")
    finally:
        del MODULES["caw.probe_for_test"]


def test_the_caw_command_loads_no_typer_rich_asyncio_or_terminal_bridge_until_needed() -> None:
    # the `caw` script imports caw.cli for `main`; a plain `caw run` then adds the fast parser and the runner
    banned = ("typer", "click", "rich", "asyncio", "caw.cli.app", "caw.cli.live", "caw.interactive", "caw.tools")
    for module in ("caw.cli", "caw.cli.fastpath", "caw.cli.runner"):
        assert _hits(eager_closure(module), banned) == [], module
    assert "typer" in eager_closure("caw.cli.app")  # help, errors and the other commands stay typer's
