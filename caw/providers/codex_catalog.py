"""codex 0.171 offers MCP tools only behind its client-side ``tool_search``: caw turns that off for its servers.

What codex does (openai/codex ``core/src/mcp_tool_exposure.rs``): MCP tools are deferred when the model's
catalogue entry says ``supports_search_tool`` and the feature ``tool_search_always_defer_mcp_tools`` is on.
In 0.171 that feature is at stage "removed" with default ``true``: ``--disable`` and ``-c features.*`` do not
change it (checked), and every model of the bundled catalogue (``codex debug models``) has
``supports_search_tool: true``. What does work is ``-c model_catalog_json=<file>``: the same catalogue with
``supports_search_tool: false``. Then codex puts each MCP server into the first request as a function
namespace ``mcp__<server>`` (tests/e2e/test_tools_e2e.py).

The file is made once per codex binary (its path, size and mtime name it) from ``codex debug models`` (about
20 ms, no network) and kept 0600 in ``$CODEX_HOME``. Anything that fails leaves codex's own behaviour:
the tools are then still reachable, through ``tool_search``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

#: the codex option that replaces its model catalogue
CATALOG_KEY = "model_catalog_json"


def direct_tools_catalog(command: Sequence[str], codex_home: Path, env: Mapping[str, str]) -> Path | None:
    """The catalogue file that makes codex offer MCP tools directly (made on first use), or None."""
    binary = Path(command[0])
    try:
        st = binary.resolve().stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{binary.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    path = codex_home / f"caw-direct-tools-{key}.models.json"
    if path.is_file():
        return path
    try:
        done = subprocess.run(
            [*command, "debug", "models"],
            env=dict(env),
            capture_output=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        catalog = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    models = catalog.get("models") if isinstance(catalog, dict) else None
    if done.returncode != 0 or not isinstance(models, list):
        return None
    for model in models:
        if isinstance(model, dict):
            model["supports_search_tool"] = False
    try:
        codex_home.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(catalog, f)
        os.replace(tmp, path)
    except OSError:
        return None
    return path


__all__ = ["CATALOG_KEY", "direct_tools_catalog"]
