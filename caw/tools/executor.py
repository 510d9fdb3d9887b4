"""Runs tool calls in the caller's process: bounded daemon threads, one event loop thread, a per-call timeout.

Every outcome is a result for the model, never an exception for the endpoint: invalid arguments, an exception
in the tool, a timeout and a cancelled call each become ``(message, True)`` (MCP ``isError``). A sync tool
that times out keeps its worker thread until it returns (Python cannot stop a thread); an async one is
cancelled. ``cancel_all()`` (the turn was cancelled) cancels what is queued and every async call running.

    >>> ex = ToolExecutor(max_workers=2, timeout=5)
    >>> ex.run(function_tool(lambda x: x * 2, name="double"), {"x": 21})
    ('42', False)
    >>> ex.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Mapping
from typing import Any

from caw.tools.functions import FunctionTool, function_tool, result_text

#: a tool call's default deadline (seconds): long enough for a subagent's turn, short of the CLIs' own MCP
#: timeouts (claude MCP_TOOL_TIMEOUT, codex tool_timeout_sec) being the thing that ends it
DEFAULT_TOOL_TIMEOUT = 600.0
DEFAULT_MAX_WORKERS = 8


class ToolExecutor:
    """Runs ``FunctionTool`` calls; ``close()`` stops the pool and the loop (idempotent)."""

    def __init__(self, *, max_workers: int = DEFAULT_MAX_WORKERS, timeout: float | None = DEFAULT_TOOL_TIMEOUT) -> None:
        self.max_workers = max(1, int(max_workers))
        self.timeout = timeout
        # sync calls run on daemon threads, at most max_workers at once: a tool that never returns must not
        # keep the interpreter from exiting (ThreadPoolExecutor's threads are joined at exit)
        self._slots = threading.BoundedSemaphore(self.max_workers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._running: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(self, tool: FunctionTool, arguments: Mapping[str, Any]) -> tuple[str, bool]:
        """Call ``tool`` with ``arguments``; its result text and whether it is an error."""
        try:
            kwargs = tool.validate(arguments)
        except ValueError as exc:
            return str(exc), True
        try:
            future = self._submit(tool, kwargs)
        except RuntimeError as exc:  # closed: the session ended while the CLI still called
            return f"{tool.name} was not run: {exc}", True
        try:
            value = future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return f"{tool.name} timed out after {self.timeout:g} s", True
        except concurrent.futures.CancelledError:
            return f"{tool.name} was cancelled", True
        except Exception as exc:  # the tool's own failure: the model sees it, the turn goes on
            return f"{type(exc).__name__}: {exc}", True
        finally:
            with self._lock:
                self._running.discard(future)
        return result_text(value), False

    def _submit(self, tool: FunctionTool, kwargs: dict[str, Any]) -> concurrent.futures.Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the session's tool server has stopped")
            if tool.is_async:
                loop = self._ensure_loop()
                future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(tool.fn(**kwargs), loop)
            else:
                future = self._start_sync(tool, kwargs)
            self._running.add(future)
            return future

    def _start_sync(self, tool: FunctionTool, kwargs: dict[str, Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def work() -> None:
            try:
                if not future.set_running_or_notify_cancel():
                    return  # cancelled while it waited for a slot
                try:
                    future.set_result(tool.fn(**kwargs))
                except BaseException as exc:  # the tool's own failure, reported through the future
                    future.set_exception(exc)
            finally:
                self._slots.release()

        def queue() -> None:
            self._slots.acquire()  # the caller's timeout covers the wait for a slot too
            threading.Thread(target=work, name=f"caw-tool-{tool.name}", daemon=True).start()

        threading.Thread(target=queue, name="caw-tool-queue", daemon=True).start()
        return future

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="caw-tool-loop", daemon=True)
            thread.start()
            self._loop, self._loop_thread = loop, thread
        return self._loop

    def cancel_all(self) -> int:
        """Cancel queued calls and running async ones (a running sync call finishes on its own); how many."""
        with self._lock:
            futures = list(self._running)
        return sum(1 for f in futures if f.cancel())

    def close(self) -> None:
        """Cancel what runs, stop the loop thread, shut the pool down without waiting for stuck threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.cancel_all()
        loop, thread = self._loop, self._loop_thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()


__all__ = ["DEFAULT_MAX_WORKERS", "DEFAULT_TOOL_TIMEOUT", "ToolExecutor", "function_tool"]
