"""docs/fleets.md's Python examples run, against the fake claude on a real pty and a real redis-server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_server import RedisServer

PAGE = Path(__file__).resolve().parents[2] / "docs" / "fleets.md"
FAKE_CLI = Path(__file__).with_name("fake_cli.py")
DOC_URL = "redis://127.0.0.1:6379/0"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


@pytest.mark.parametrize("code", examples())
def test_fleets_example_runs(code: str, tmp_path: Path) -> None:
    assert DOC_URL in code  # every example names the URL the reader's Redis has; the test's is random
    exe = tmp_path / "claude"
    exe.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(FAKE_CLI)!r}, run_name='__main__')\n")
    exe.chmod(0o755)
    with RedisServer() as server:
        env = {
            "PATH": f"{tmp_path}:/usr/bin:/bin",
            "HOME": str(tmp_path / "home"),
            "CAW_DATA_DIR": str(tmp_path / "data"),
            "CAW_WARM": "0",  # the fake speaks one turn per process
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
        script = tmp_path / "example.py"
        script.write_text(code.replace(DOC_URL, server.url))
        out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, timeout=120)
        assert out.returncode == 0, out.stderr.decode()[-2000:]
        assert server.client().keys("caw:session:*")  # the session went through Redis
