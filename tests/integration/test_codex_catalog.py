"""caw's codex model catalogue (caw/providers/codex_catalog.py), made from a stand-in ``codex debug models``.

codex 0.171 defers MCP tools behind ``tool_search`` for every model whose catalogue entry says
``supports_search_tool``; caw hands it the same catalogue with the flag off (docs/dev/tools.md).
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

import caw
from caw.providers.base import RunConfig
from caw.providers.codex import CodexProvider, direct_mcp_tools
from caw.providers.codex_catalog import direct_tools_catalog

FAKE_CODEX = """
import json, sys
open(sys.argv[1], "a").write(" ".join(sys.argv[2:]) + "\\n")
if sys.argv[2:] != ["debug", "models"]:
    sys.exit(2)
print(json.dumps({"models": [{"slug": "gpt-5.5", "supports_search_tool": True, "x": 1},
                             {"slug": "other", "supports_search_tool": True}]}))
"""


def fake_codex(tmp_path: Path, body: str = FAKE_CODEX) -> tuple[list[str], Path]:
    script = tmp_path / "codex_stand_in.py"
    script.write_text(body)
    calls = tmp_path / "calls.log"
    return [sys.executable, str(script), str(calls)], calls


def test_the_catalogue_turns_tool_search_off_is_private_and_made_once(tmp_path: Path) -> None:
    command, calls = fake_codex(tmp_path)
    home = tmp_path / "codex-home"
    # the cache key is the binary (here: the interpreter) and its size and mtime
    path = direct_tools_catalog(command, home, {})
    assert path is not None and path.parent == home
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    models = json.loads(path.read_text())["models"]
    assert [m["supports_search_tool"] for m in models] == [False, False] and models[0]["x"] == 1
    assert direct_tools_catalog(command, home, {}) == path
    assert calls.read_text().splitlines() == ["debug models"]  # cached: codex ran once


def test_a_failing_codex_leaves_its_own_catalogue(tmp_path: Path) -> None:
    command, _ = fake_codex(tmp_path, "import sys; print('not json'); sys.exit(1)")
    assert direct_tools_catalog(command, tmp_path / "home", {}) is None
    assert direct_tools_catalog(["/nonexistent/codex"], tmp_path / "home", {}) is None


def test_exec_and_the_interactive_ui_get_it_only_for_servers_that_do_not_defer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import caw.providers.codex_catalog as catalog

    made: list[list[str]] = []

    def fake(command: list[str], home: Path, env: object) -> Path:
        made.append(command)
        return tmp_path / "cat.json"

    monkeypatch.setattr(catalog, "direct_tools_catalog", fake)
    server = caw.MCPServer(name="caw", url="http://127.0.0.1:1/t/caw/mcp")
    config = RunConfig(mcp_servers=(server,), env={"CODEX_HOME": str(tmp_path)})
    flag = ["-c", f'model_catalog_json="{tmp_path / "cat.json"}"']
    assert direct_mcp_tools(["codex"], config) == flag
    ui = CodexProvider().interactive_command("codex", config, "hi")
    assert " ".join(flag) in " ".join(ui.argv) and ui.argv[-2:] == ["--", "hi"]
    deferred = RunConfig(mcp_servers=(server.model_copy(update={"defer_tools": True}),))
    assert direct_mcp_tools(["codex"], deferred) == []
    own = RunConfig(mcp_servers=(server,), extra_args=("-c", "model_catalog_json=/mine.json"))
    assert direct_mcp_tools(["codex"], own) == [] and direct_mcp_tools(["codex"], RunConfig()) == []
    assert len(made) == 2
