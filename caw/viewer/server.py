"""``caw view``: the sessions of a data dir, served read-only on 127.0.0.1 (standard library http.server).

Routes (GET and HEAD only; anything else is 405, an unknown path or session 404, never a traceback)::

    /                            the session list page
    /api/sessions                the list as JSON (newest first)
    /session/<id>                the trajectory page (live: it polls the next route)
    /api/session/<id>?v=VERSION  the page document; {"unchanged": true} while the files did not change
    /api/session/<id>/full/<n>   the full text of a preview the page cut (a JSON string)

The server only reads: it never writes to the data dir. Requests whose Host is not the loopback address
it listens on are refused (403), so a web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from caw.models import Trajectory
from caw.state.store import SessionStore
from caw.viewer.html import render_index, render_page
from caw.viewer.page import Page, build_page, page_version
from caw.viewer.source import Source, SourceError, load_session_dir
from caw.viewer.summary import summarize

LOOPBACK = "127.0.0.1"
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
#: how often the pages poll (milliseconds)
PAGE_POLL_MS = 2000
LIST_POLL_MS = 3000


@dataclass
class _Cached:
    version: str
    page: Page


class SessionIndex:
    """Reads a data dir's sessions for the server; pages are rebuilt only when a session's files change."""

    def __init__(self, data_dir: Path) -> None:
        self.store = SessionStore(data_dir)
        self._pages: dict[str, _Cached] = {}
        self._rows: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def session_dir(self, session_id: str) -> Path | None:
        if not _SESSION_ID.fullmatch(session_id):
            return None
        d = self.store.root / "sessions" / session_id
        return d if (d / "trajectory.json").is_file() or (d / "turns.jsonl").is_file() else None

    def page(self, session_id: str) -> tuple[str, Page] | None:
        d = self.session_dir(session_id)
        if d is None:
            return None
        version = page_version(d)
        with self._lock:
            cached = self._pages.get(session_id)
            if cached is not None and cached.version == version:
                return version, cached.page
        try:
            page = build_page(load_session_dir(d, session_id))
        except SourceError:
            return None
        page.data["version"] = version
        with self._lock:
            self._pages[session_id] = _Cached(version, page)
        return version, page

    def rows(self) -> list[dict[str, Any]]:
        base = self.store.root / "sessions"
        out: list[dict[str, Any]] = []
        if not base.is_dir():
            return out
        for d in base.iterdir():
            if self.session_dir(d.name) is None:
                continue
            version = page_version(d)
            with self._lock:
                cached = self._rows.get(d.name)
            if cached is None or cached[0] != version:
                cached = (version, self._row(d))
                with self._lock:
                    self._rows[d.name] = cached
            out.append(cached[1])
        out.sort(key=lambda r: str(r["created_at"]), reverse=True)
        return out

    def _row(self, d: Path) -> dict[str, Any]:
        damaged: str | None = None
        try:
            traj = load_session_dir(d, d.name).trajectory
        except SourceError as exc:
            traj, damaged = Trajectory(session_id=d.name), exc.why
        s = summarize(traj)
        first = traj.turns[0].input if traj.turns else (traj.pending_message or "")
        return {
            "session_id": d.name,
            "provider": s.provider,
            "model": s.model,
            "created_at": traj.created_at.isoformat(),
            "outcome": "damaged" if damaged else s.outcome,
            "turns": s.turns,
            "tool_calls": s.tool_calls,
            "cost_usd": s.usage.cost_usd,
            "total_tokens": s.usage.total_tokens,
            "duration_ms": s.duration_ms,
            "first_prompt": first[:500],
            "damaged": damaged,
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a request log on stderr would bury the URL line

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", b"caw view is read-only\n", head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _dispatch(self, *, head: bool) -> None:
        try:
            if not self._host_ok():
                self._send(HTTPStatus.FORBIDDEN, "text/plain; charset=utf-8", b"wrong Host\n", head=head)
                return
            status, ctype, body = self._route()
        except Exception as exc:
            status, ctype, body = HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", f"{exc}\n".encode()
        self._send(status, ctype, body, head=head)

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        port = self.server.server_address[1]
        return host in (f"{LOOPBACK}:{port}", f"localhost:{port}")

    def _route(self) -> tuple[HTTPStatus, str, bytes]:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        index = self.server.index
        html_type, json_type = "text/html; charset=utf-8", "application/json; charset=utf-8"
        if not parts:
            config = {"api": "/api/sessions", "session": "/session/", "interval": LIST_POLL_MS,
                      "data_dir": str(index.store.root)}  # fmt: skip
            return HTTPStatus.OK, html_type, render_index(config).encode()
        if parts == ["api", "sessions"]:
            return HTTPStatus.OK, json_type, _json(index.rows())
        if len(parts) == 2 and parts[0] == "session":
            found = index.page(parts[1])
            if found is None:
                return self._not_found()
            sid = parts[1]
            config = {"live": f"/api/session/{sid}", "full": f"/api/session/{sid}/full/", "index": "/",
                      "interval": PAGE_POLL_MS}  # fmt: skip
            return HTTPStatus.OK, html_type, render_page(found[1], config=config, embed_fulls=False).encode()
        if len(parts) == 3 and parts[:2] == ["api", "session"]:
            found = index.page(parts[2])
            if found is None:
                return self._not_found()
            version, page = found
            if parse_qs(url.query).get("v", [""])[0] == version:
                return HTTPStatus.OK, json_type, b'{"unchanged":true}'
            return HTTPStatus.OK, json_type, _json(page.data)
        if len(parts) == 5 and parts[:2] == ["api", "session"] and parts[3] == "full" and parts[4].isdigit():
            found = index.page(parts[2])
            n = int(parts[4])
            if found is None or n >= len(found[1].fulls):
                return self._not_found()
            return HTTPStatus.OK, json_type, _json(found[1].fulls[n])
        return self._not_found()

    def _not_found(self) -> tuple[HTTPStatus, str, bytes]:
        return HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n"

    def _send(self, status: HTTPStatus, ctype: str, body: bytes, *, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head:
            self.wfile.write(body)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, index: SessionIndex) -> None:
        self.index = index
        super().__init__((LOOPBACK, port), _Handler)


class ViewerServer:
    """The ``caw view`` server over ``data_dir``, on 127.0.0.1 (``port=0``: a free port).

    >>> with ViewerServer("/tmp/no-such-caw-data") as server:  # doctest: +SKIP
    ...     print(server.url)   # http://127.0.0.1:41234/
    """

    def __init__(self, data_dir: Path | str, *, port: int = 0) -> None:
        self._server = _Server(port, SessionIndex(Path(data_dir).expanduser()))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until ``shutdown`` (from another thread) or KeyboardInterrupt; then close."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def start(self) -> ViewerServer:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="caw-view", daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port (nothing is left listening)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LOOPBACK", "SessionIndex", "Source", "ViewerServer"]
