"""Cooldown memory: providers that reported a usage limit with a reset time are skipped until then.

Shared by every caw process of the user: a small JSON file in caw's data directory, read and written
under an exclusive ``flock`` and replaced atomically, so concurrent processes never lose an entry or
read a torn file. Entries expire by themselves (an expired entry is ignored and dropped on the next
write). Nothing here spends a request.

The ledger is a memory, not a record of truth: an unreadable file reads as no cooldowns, and ``record``
reports a file it cannot write by returning False, so a usage limit is never replaced by a storage error.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from caw.errors import StorageError, UsageLimitError
from caw.state.store import atomic_write_text, default_data_dir, make_dirs, storage_errors

FILE_NAME = "cooldown.json"


@dataclass(frozen=True)
class Cooldown:
    provider: str
    until: datetime
    kind: str
    message: str


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class CooldownStore:
    """The cooldown file of one data directory (``CooldownStore.default()``: caw's own)."""

    def __init__(self, directory: Path, *, now: Callable[[], datetime] = _utcnow) -> None:
        self.path = Path(directory) / FILE_NAME
        self._now = now
        #: why the last ``record`` could not write the file (None: it could, or nothing was recorded)
        self.write_error: StorageError | None = None

    @classmethod
    def default(cls) -> CooldownStore:
        return cls(default_data_dir())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        make_dirs(self.path.parent)
        lock = self.path.with_suffix(".lock")
        with storage_errors("lock", lock):
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def active(self) -> dict[str, Cooldown]:
        """Cooldowns that have not expired yet, by provider."""
        now = self._now()
        out: dict[str, Cooldown] = {}
        for name, entry in self._read().items():
            try:
                until = datetime.fromisoformat(str(entry["until"]))
            except (KeyError, TypeError, ValueError):
                continue
            if until.tzinfo is None:
                until = until.replace(tzinfo=timezone.utc)
            if until > now:
                out[name] = Cooldown(name, until, str(entry.get("kind", "")), str(entry.get("message", "")))
        return out

    def until(self, provider: str) -> datetime | None:
        c = self.active().get(provider)
        return c.until if c else None

    def skip_reason(self, provider: str) -> str | None:
        """Why ``provider`` should be skipped now (None: go ahead)."""
        c = self.active().get(provider)
        if c is None:
            return None
        return f"usage limit ({c.kind or 'limit'}) until {c.until.isoformat(timespec='minutes')}"

    def set(self, provider: str, until: datetime, *, kind: str = "", message: str = "") -> None:
        """Remember that ``provider`` is limited until ``until`` (a later entry already there wins).

        Raises StorageError when the file cannot be written.
        """
        if until.tzinfo is None:
            until = until.replace(tzinfo=timezone.utc)
        with self._locked():
            now = self._now()
            data = {k: v for k, v in self._read().items() if _still_active(v, now)}
            previous = data.get(provider)
            if previous and _parse(previous.get("until")) and _parse(previous.get("until")) > until:  # type: ignore[operator]
                return
            data[provider] = {
                "until": until.astimezone(timezone.utc).isoformat(),
                "kind": kind,
                "message": message[:300],
            }
            atomic_write_text(self.path, json.dumps(data, indent=1), mode=0o600)

    def record(self, error: UsageLimitError) -> bool:
        """Remember a usage limit that came with a reset time (a limit without one is not remembered).

        False when the file could not be written (``write_error`` says why): the caller is handling the
        limit itself, which must not turn into a storage error.
        """
        if error.resets_at is None or not error.provider or error.resets_at <= self._now():
            return True
        try:
            self.set(error.provider, error.resets_at, kind=error.kind, message=error.detail)
        except StorageError as exc:
            self.write_error = exc
            return False
        return True

    def recorder(self, warn: Callable[[str], object] | None = None) -> Callable[[UsageLimitError], None]:
        """``record`` as a session's ``on_limit``: the first file it cannot write is passed to ``warn``.

        >>> session_setup.on_limit = CooldownStore.default().recorder(warn=print)  # doctest: +SKIP
        """
        warned = False

        def record(error: UsageLimitError) -> None:
            nonlocal warned
            if self.record(error) or warned or warn is None:
                return
            warned = True
            try:
                warn(f"{self.write_error}; this usage limit is not remembered for other runs")
            except Exception:  # a broken logger must not replace the usage limit being handled
                pass

        return record


def _parse(value: Any) -> datetime | None:
    try:
        dt = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _still_active(entry: Any, now: datetime) -> bool:
    until = _parse(entry.get("until")) if isinstance(entry, dict) else None
    return until is not None and until > now
