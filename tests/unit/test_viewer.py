"""The viewer without a browser: the page document, escaping, subagent links, sources, the caw view server,
and the commands (traj html, traj show --full, run --html, view). The browser tests are in
tests/e2e/test_viewer_browser.py."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caw.cli import ExitCode, app
from caw.models import ToolUse, Trajectory, Turn
from caw.state.handle import ResumeHandle, encode
from caw.viewer.html import render_report, script_json
from caw.viewer.page import MIN_PREVIEW_CHARS, PREVIEW_CHARS, build_page
from caw.viewer.server import ViewerServer
from caw.viewer.source import Source, SourceError, load_source
from caw.viewer.summary import summarize
from tests.unit.test_cli import Script
from tests.viewer_samples import INJECTION, big_trajectory, sample_trajectory, subagent_trajectory, write_session


def _data_scripts(page: str) -> dict[str, object]:
    """Every ``<script type="application/json">`` of a page, parsed."""
    found = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, flags=re.S)
    return {ident: json.loads(body) for ident, body in found}


# ---- the page document ----------------------------------------------------------------------------------
def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"t": INJECTION})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"t": INJECTION}


def test_report_embeds_everything_escaped_and_nothing_else_runs() -> None:
    page = render_report(sample_trajectory())
    assert "<script>window.__caw_pwned" not in page
    assert "<img" not in page and "<!--" not in page
    # the only executable script is caw's own, allowed by the nonce in the CSP; nothing may be fetched
    scripts = re.findall(r"<script(?![^>]*application/json)([^>]*)>", page)
    assert len(scripts) == 1 and "nonce=" in scripts[0]
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp and "default-src 'none'" in csp.group(1) and "connect-src 'self'" in csp.group(1)
    assert not re.search(r"(src|href)=\"https?:", page)
    data = _data_scripts(page)["caw-data"]
    assert isinstance(data, dict)
    outputs = [b.get("output") for t in data["turns"] for b in t["blocks"] if b["k"] == "tool"]
    assert {"t": INJECTION} in outputs


def test_header_facts() -> None:
    s = summarize(sample_trajectory())
    assert (s.provider, s.model, s.outcome, s.turns, s.tool_calls, s.tool_errors) == (
        "claude",
        "sonnet",
        "completed",
        3,
        4,
        1,
    )
    assert s.usage.cost_usd == pytest.approx(0.0424)
    assert [w.turn for w in s.waits] == [2] and s.waits[0].waited_ms == 3_540_000 - 900
    assert s.wall_ms == 62 * 60 * 1000
    page = build_page(Source(sample_trajectory(), sample_trajectory().to_dict(), None, "t"))
    assert page.data["header"]["metadata"] == {"job": "ci-42"}
    assert summarize(Trajectory(pending_message="hi")).outcome == "pending"
    assert summarize(Trajectory()).outcome == "empty"


def test_long_texts_are_cut_with_the_full_text_apart() -> None:
    traj = sample_trajectory()
    traj.turns[0].output[1] = ToolUse(id="big", name="Bash", output="y" * 50_000)
    page = build_page(Source(traj, traj.to_dict(), None, "t"))
    block = page.data["turns"][0]["blocks"][1]["output"]
    assert len(block["t"]) == PREVIEW_CHARS and block["n"] == 50_000
    assert page.fulls[block["f"]] == "y" * 50_000
    html = render_report(traj)
    assert _data_scripts(html)[f"caw-full-{block['f']}"] == "y" * 50_000


def test_a_huge_trajectory_gives_a_small_document() -> None:
    """10,000 tool calls with 5,000 characters each (50 MB): the page document stays a few MB; the full
    outputs wait in their own elements until 'show all'."""
    traj = big_trajectory()
    page = build_page(Source(traj, traj.to_dict(), None, "big"))
    size = len(json.dumps(page.data))
    assert page.data["preview_chars"] >= MIN_PREVIEW_CHARS and size < 8_000_000, size
    assert len(page.fulls) == 10_000
    assert sum(len(t["blocks"]) for t in page.data["turns"]) == 10_050


def test_subagent_is_nested_under_its_tool_call(tmp_path: Path) -> None:
    d = write_session(tmp_path, sample_trajectory(), subagent=subagent_trajectory())
    page = build_page(load_source(d))
    task = page.data["turns"][2]["blocks"][0]
    assert task["name"] == "Task" and task["sub"]["session_id"] == "sub0001"
    assert task["sub"]["header"]["provider"] == "codex"
    assert task["sub"]["turns"][0]["blocks"][0]["summary"] == "ls caw"


@pytest.mark.parametrize(
    "link", ["subagents/sessions/sub0001", "/moved/away/sessions/p1/subagents/sessions/sub0001/trajectory.json"]
)
def test_a_relative_or_moved_subagent_link_is_found(tmp_path: Path, link: str) -> None:
    d = write_session(tmp_path, sample_trajectory(), subagent=subagent_trajectory(), link=link)
    page = build_page(load_source(d / "trajectory.json"))
    assert page.data["turns"][2]["blocks"][0]["sub"]["session_id"] == "sub0001"
    assert page.data["header"]["subagent_usage"]["cost_usd"] == pytest.approx(0.002)


def test_a_subagent_without_a_data_dir_says_so() -> None:
    traj = sample_trajectory()
    traj.turns[2].output[0].subagent = "sub0001"  # type: ignore[union-attr]
    page = build_page(Source(traj, traj.to_dict(), Path("/nonexistent"), "t"))
    assert "ran without a data dir" in page.data["turns"][2]["blocks"][0]["sub_error"]


@pytest.mark.parametrize(
    "link", ["../../../../etc", "/etc/passwd", "subagents/none", {"path": "nope"}, {"weird": 1}, 42]
)
def test_a_broken_or_escaping_subagent_link_is_a_note_not_a_crash(tmp_path: Path, link: object) -> None:
    traj = sample_trajectory()
    raw = traj.to_dict()
    raw["turns"][2]["output"][0]["subagent"] = link
    page = build_page(Source(traj, raw, tmp_path, "t"))
    task = page.data["turns"][2]["blocks"][0]
    assert "sub" not in task and "not found" in task["sub_error"]


def test_an_embedded_subagent_trajectory_is_rendered() -> None:
    traj = sample_trajectory()
    raw = traj.to_dict()
    raw["turns"][2]["output"][0]["subagent_trajectory"] = subagent_trajectory().to_dict()
    page = build_page(Source(traj, raw, None, "t"))
    assert page.data["turns"][2]["blocks"][0]["sub"]["header"]["model"] == "gpt-5"


# ---- sources --------------------------------------------------------------------------------------------
def test_sources_file_dir_session_id_and_handle(tmp_path: Path) -> None:
    data = tmp_path / "data"
    d = write_session(data, sample_trajectory("abc123"))
    handle = encode(ResumeHandle(provider="claude", session_id="abc123", resume_key="k", cwd="/srv/app"))
    for name in (str(d), str(d / "trajectory.json"), "abc123", handle):
        assert load_source(name, data).trajectory.session_id == "abc123", name
    with pytest.raises(SourceError, match="names no file, session id or resume handle"):
        load_source("zzz", data)
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(SourceError, match="is not a caw trajectory"):
        load_source(tmp_path / "bad.json")


def test_a_session_with_only_turns_is_rebuilt(tmp_path: Path) -> None:
    d = tmp_path / "sessions" / "s1"
    d.mkdir(parents=True)
    (d / "turns.jsonl").write_text(Turn(input="hello", status="completed").model_dump_json() + "\n{torn")
    assert load_source(d).trajectory.turns[0].input == "hello"


# ---- the server -----------------------------------------------------------------------------------------
def _get(port: int, path: str, *, method: str = "GET", host: str | None = None) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": host or f"127.0.0.1:{port}"})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type") or "", r.read()
    finally:
        conn.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_server_lists_and_shows_sessions_read_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    older = sample_trajectory("older01")
    older.created_at = older.created_at.replace(year=2025)
    write_session(data, older)
    write_session(data, sample_trajectory("newer01"), subagent=subagent_trajectory())
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    with ViewerServer(data) as server:
        port = server.port
        assert server.url == f"http://127.0.0.1:{port}/"
        status, ctype, body = _get(port, "/")
        assert status == 200 and ctype.startswith("text/html") and b"caw sessions" in body
        rows = json.loads(_get(port, "/api/sessions")[2])
        assert [r["session_id"] for r in rows] == ["newer01", "older01"]  # newest first
        assert rows[0]["cost_usd"] == pytest.approx(0.0424) and rows[0]["duration_ms"] == 14_400
        assert rows[0]["outcome"] == "completed" and rows[0]["tool_calls"] == 4
        status, _, page = _get(port, "/session/newer01")
        assert status == 200 and b"/api/session/newer01" in page and b'id="caw-full-' not in page
        doc = json.loads(_get(port, "/api/session/newer01")[2])
        assert doc["turns"][2]["blocks"][0]["sub"]["session_id"] == "sub0001"
        assert json.loads(_get(port, f"/api/session/newer01?v={doc['version']}")[2]) == {"unchanged": True}
        cut = doc["turns"][0]["blocks"][1]["output"]
        if "f" in cut:
            assert json.loads(_get(port, f"/api/session/newer01/full/{cut['f']}")[2]).startswith("test_001")
        for bad in ("/session/nope", "/session/..%2F..%2Fetc", "/api/session/newer01/full/999", "/x/y/z",
                    "/session/%00", "/api/session/../../etc/passwd", "/session/newer01/extra"):  # fmt: skip
            assert _get(port, bad)[0] == 404, bad
        assert _get(port, "/api/sessions", method="POST")[0] == 405
        assert _get(port, "/api/sessions", method="DELETE")[0] == 405
        assert _get(port, "/", host="evil.example:80")[0] == 403  # DNS rebinding
        assert _get(port, "/", method="HEAD")[0] == 200
    assert not _listening(port)
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # read-only


def test_server_page_follows_a_running_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    traj = sample_trajectory("live01")
    first = traj.model_copy(update={"turns": traj.turns[:1]})
    write_session(data, first)
    with ViewerServer(data) as server:
        doc = json.loads(_get(server.port, "/api/session/live01")[2])
        assert len(doc["turns"]) == 1
        os.utime(write_session(data, traj) / "trajectory.json", ns=(1, 1))  # a new version on disk
        later = json.loads(_get(server.port, f"/api/session/live01?v={doc['version']}")[2])
        assert len(later["turns"]) == 3 and later["version"] != doc["version"]


def test_server_with_a_damaged_session_answers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    d = data / "sessions" / "broken"
    d.mkdir(parents=True)
    (d / "trajectory.json").write_bytes(b"\xff\xfe not json")
    with ViewerServer(data) as server:
        rows = json.loads(_get(server.port, "/api/sessions")[2])
        assert rows[0]["outcome"] == "damaged" and "damaged" in rows[0]["damaged"]
        assert _get(server.port, "/session/broken")[0] == 404


# ---- the commands ---------------------------------------------------------------------------------------
def test_traj_html_writes_a_report(tmp_path: Path) -> None:
    d = write_session(tmp_path / "data", sample_trajectory("cli01"), subagent=subagent_trajectory())
    out = tmp_path / "report.html"
    r = CliRunner().invoke(app, ["traj", "html", str(d), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    assert "wrote" in r.stderr and out.is_file()
    data = _data_scripts(out.read_text(encoding="utf-8"))["caw-data"]
    assert isinstance(data, dict) and data["turns"][2]["blocks"][0]["sub"]["session_id"] == "sub0001"
    r = CliRunner().invoke(app, ["traj", "html", "cli01", "--data-dir", str(tmp_path / "data"), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(app, ["traj", "html", str(d), "-o", "-"])
    assert r.exit_code == 0 and r.stdout.startswith("<!DOCTYPE html>") and "sub0001" in r.stdout


def test_traj_html_usage_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["traj", "html", str(tmp_path / "none.json"), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == ExitCode.USAGE and "names no file" in r.stderr and "Traceback" not in r.stderr
    d = write_session(tmp_path / "data", sample_trajectory())
    r = CliRunner().invoke(app, ["traj", "html", str(d), "-o", str(tmp_path)])
    assert r.exit_code == ExitCode.USAGE and "is a directory" in r.stderr


def test_traj_show_full_and_nested_subagent(tmp_path: Path) -> None:
    d = write_session(tmp_path / "data", sample_trajectory(), subagent=subagent_trajectory())
    folded = CliRunner().invoke(app, ["traj", "show", str(d)]).stdout
    assert "test_003 PASSED" in folded and "test_004 PASSED" not in folded and "+117 lines" in folded
    assert "subagent sub0001" in folded and "exec_command(" in folded
    full = CliRunner().invoke(app, ["traj", "show", str(d), "--full"]).stdout
    assert "test_120 PASSED" in full and "+117 lines" not in full


def test_run_html_writes_the_report_after_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_PROVIDER", "claude")
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    script = Script()
    out = tmp_path / "ci" / "report.html"
    r = script.invoke("run", "say hi", "--html", str(out))
    assert r.exit_code == 0, r.stderr
    data = _data_scripts(out.read_text(encoding="utf-8"))["caw-data"]
    assert isinstance(data, dict) and data["turns"][0]["input"] == {"t": "say hi"}
    assert data["header"]["outcome"] == "completed"
    r = script.invoke("run", "x", "--html", str(tmp_path))
    assert r.exit_code == ExitCode.USAGE and "--html" in r.stderr


def test_caw_view_on_a_missing_dir_is_a_usage_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["view", str(tmp_path / "none")])
    assert r.exit_code == ExitCode.USAGE and "is not a directory" in r.stderr


def test_caw_view_on_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = CliRunner().invoke(app, ["view", str(tmp_path / "data"), "--port", str(port)])
    assert r.exit_code == ExitCode.USAGE and f"cannot listen on 127.0.0.1:{port}" in r.stderr
