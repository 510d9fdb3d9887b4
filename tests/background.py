"""Run a blocking ``Session.send`` on a worker thread, so a test can cancel it or kill its CLI meanwhile."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import caw


@dataclass
class BackgroundSend:
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)
    turns: list[caw.Turn] = field(default_factory=list)

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"send() still running after {timeout}s"

    @property
    def error(self) -> BaseException | None:
        return self.errors[0] if self.errors else None


def send_in_background(session: caw.Session, message: str) -> BackgroundSend:
    out = BackgroundSend(thread=threading.Thread(target=lambda: None))

    def run() -> None:
        try:
            out.turns.append(session.send(message))
        except BaseException as exc:
            out.errors.append(exc)

    out.thread = threading.Thread(target=run, name="test-send", daemon=True)
    out.thread.start()
    return out
