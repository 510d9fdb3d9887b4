"""The public API is what __all__ says, and imports only point down the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import caw

CAW = Path(caw.__file__).parent


def test_all_names_exist_and_are_public() -> None:
    for name in caw.__all__:
        assert hasattr(caw, name), name
    for required in (
        "Agent",
        "Session",
        "Trajectory",
        "Turn",
        "UsageStats",
        "ToolGroup",
        "ModelTier",
        "MCPServer",
        "set_provider_order",
        "get_provider_order",
        "list_sessions",
        "InvalidResumeHandle",
        "UsageLimitError",
        "AllProvidersFailed",
        "ConversationNotFound",
    ):
        assert required in caw.__all__, required


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _module(path: Path) -> str:
    return ".".join(path.relative_to(CAW.parent).with_suffix("").parts)


# who may import what: third-party UI/pty/dirs libraries stay in their layer
THIRD_PARTY_HOMES = {
    "typer": {"caw.cli"},
    "rich": {"caw.cli", "caw.render", "caw.countdown"},
    "ptyprocess": {"caw.interactive"},
    "pexpect": {"caw.interactive"},
    "platformdirs": {"caw.store"},
}

# lower layers must not import upper ones
FORBIDDEN = {
    "caw.transport": ("caw.providers", "caw.session", "caw.agent", "caw.cli", "caw.turn", "caw.events", "caw.models"),
    "caw.providers": ("caw.session", "caw.agent", "caw.cli", "caw.turn", "caw.transport.process"),
    "caw.events": ("caw.providers", "caw.session", "caw.agent", "caw.transport"),
    "caw.models": ("caw.events", "caw.providers", "caw.session", "caw.agent", "caw.transport"),
    "caw.errors": ("caw.providers", "caw.session", "caw.agent", "caw.transport", "caw.events"),
    "caw.turn": ("caw.session", "caw.agent", "caw.cli"),
    "caw.session": ("caw.agent", "caw.cli"),
}


def test_imports_point_down() -> None:
    problems = []
    for path in CAW.rglob("*.py"):
        mod = _module(path)
        imported = _imports(path)
        for lib, homes in THIRD_PARTY_HOMES.items():
            if any(i == lib or i.startswith(lib + ".") for i in imported) and not any(
                mod == h or mod.startswith(h + ".") for h in homes
            ):
                problems.append(f"{mod} imports {lib}")
        for layer, banned in FORBIDDEN.items():
            if mod == layer or mod.startswith(layer + "."):
                for b in banned:
                    if any(i == b or i.startswith(b + ".") for i in imported):
                        problems.append(f"{mod} imports {b}")
    assert problems == []
