"""The architecture, drawn from the code's own imports: folder ranks, third-party homes, no cycles.

Every import counts, the lazy ones inside functions and the ``TYPE_CHECKING`` ones included: a cycle hidden
behind a lazy import is still a cycle in the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import caw

CAW = Path(caw.__file__).parent

#: each layer and its rank; a module may import its own layer or any layer of a lower rank
RANKS: dict[str, int] = {
    "caw.errors": 0,
    "caw.models": 0,
    "caw.events": 0,
    "caw.text": 0,
    "caw.redact": 0,
    "caw.version": 0,
    "caw.lazy": 0,
    "caw.limits": 1,
    "caw.structured": 1,
    "caw.state": 2,
    "caw.policy": 3,
    "caw.transport": 4,
    "caw.tools": 4,
    "caw.providers": 5,
    "caw.session": 6,
    "caw.interactive": 7,
    "caw.viewer": 8,  # the HTML report and `caw view`: reads state and models, never the agent
    "caw.agent": 8,
    "caw.batches": 8,  # issue 20: composes Agent sessions, next to agent.py
    "caw.cli": 9,
    "caw.__main__": 10,
    "caw": 10,  # the façade: nothing inside caw imports it
}

#: third-party libraries that belong to one layer only
THIRD_PARTY_HOMES: dict[str, tuple[str, ...]] = {
    "typer": ("caw.cli",),
    "rich": ("caw.cli",),
    "ptyprocess": ("caw.transport", "caw.interactive"),
    "pexpect": ("caw.transport", "caw.interactive"),
    "platformdirs": ("caw.state.store",),
    "redis": ("caw.state.redis_backend",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CAW.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in CAW.rglob("*.py")}


def _imports(path: Path, module: str, known: Iterable[str]) -> set[str]:
    """Every module ``path`` imports (caw modules resolved to the module, not the package), anywhere in it."""
    known = set(known)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(p, m, mods) for m, p in mods.items()}


def _layer(module: str) -> str | None:
    best = None
    for layer in RANKS:
        if (module == layer or module.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def _within(module: str, homes: Iterable[str]) -> bool:
    return any(module == h or module.startswith(h + ".") for h in homes)


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (or a self-loop), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def layer_violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    problems = []
    for module, imported in sorted(graph.items()):
        layer = _layer(module)
        assert layer is not None, f"{module} belongs to no layer: give its folder a rank in RANKS"
        for target in sorted(imported):
            if target == "caw" or target.startswith("caw."):
                target_layer = _layer(target)
                if target_layer is not None and RANKS[target_layer] > RANKS[layer]:
                    problems.append(f"{module} (rank {RANKS[layer]}) imports {target} (rank {RANKS[target_layer]})")
                continue
            root = target.split(".")[0]
            homes = THIRD_PARTY_HOMES.get(root)
            if homes is not None and not _within(module, homes):
                problems.append(f"{module} imports {root}, which belongs to {', '.join(homes)}")
    return problems


def test_every_import_points_down_a_layer() -> None:
    assert layer_violations(import_graph()) == []


def test_no_import_cycles() -> None:
    assert find_cycles(import_graph()) == []


def test_each_package_says_what_it_owns_and_may_import() -> None:
    for init in CAW.rglob("__init__.py"):
        if init.parent == CAW:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "import" in doc.lower(), f"{init}: the docstring must say what the package may import"


# ---- the checkers can fail --------------------------------------------------------------------------------
def test_the_cycle_check_finds_a_cycle_hidden_behind_a_lazy_import(tmp_path: Path) -> None:
    source = "def late():\n    from caw.agent import Agent\n"
    (tmp_path / "probe.py").write_text(source)
    graph = {"caw.providers.health": {"caw.agent"}, "caw.agent": {"caw.providers.health"}}
    assert find_cycles(graph) == [["caw.agent", "caw.providers.health"]]
    assert "caw.agent" in _imports(tmp_path / "probe.py", "caw.providers.probe", ["caw.agent"])


def test_the_rank_check_finds_an_upward_import() -> None:
    graph = {"caw.policy.autowait": {"caw.cli.countdown"}, "caw.cli.countdown": {"rich.console"}}
    assert layer_violations(graph) == ["caw.policy.autowait (rank 3) imports caw.cli.countdown (rank 9)"]
    assert layer_violations({"caw.session.turn": {"rich"}}) == [
        "caw.session.turn imports rich, which belongs to caw.cli"
    ]
