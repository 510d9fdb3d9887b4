"""Sessions on disk: ``<data_dir>/sessions/<session_id>/`` with ``trajectory.json`` and ``turns.jsonl``.

* ``trajectory.json`` is replaced atomically (temp file in the same directory, fsync, rename), so a crash
  mid-write leaves the previous version, never a torn file;
* ``turns.jsonl`` is append-only, one turn per line, flushed and fsynced per turn; a torn last line (power
  loss mid-append) is skipped on read, and ended with a newline before the next append so that turn is kept;
* a damaged ``trajectory.json`` (not UTF-8, not JSON, the wrong schema) is rebuilt from ``turns.jsonl`` when
  that holds turns, else it is a ``StorageError`` naming the file; ``list`` shows such sessions as damaged.

Every OSError of these files becomes a ``caw.errors.StorageError`` here, where it happens, naming the path
and the operation (a missing file being read stays a ``FileNotFoundError``: absence is not a failure).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from caw.errors import StorageError
from caw.models import Trajectory, Turn

TRAJECTORY_FILE = "trajectory.json"
TURNS_FILE = "turns.jsonl"


def default_data_dir() -> Path:
    """caw's own per-user data directory (``CAW_DATA_DIR`` overrides it)."""
    override = os.environ.get("CAW_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("caw", appauthor=False))


@contextmanager
def storage_errors(operation: str, path: str | Path) -> Iterator[None]:
    """Turn an OSError raised inside into a StorageError saying what caw was doing to which path."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError.from_os_error(exc, operation, path) from exc


def make_dirs(path: Path) -> None:
    """``mkdir -p``, as a StorageError when it cannot be done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # exist_ok covers directories only: something else has the name
        raise StorageError(path, "create the directory", errno=exc.errno, strerror="a file is in the way") from exc
    except OSError as exc:
        raise StorageError.from_os_error(exc, "create the directory", path) from exc


def check_writable(path: str | Path) -> Path:
    """Create the directory ``path`` if needed and prove a file can be written in it; StorageError if not.

    Called before a turn, so a bad data directory or ``--save`` target fails before anything is paid for.
    (Permission bits alone do not say it: root ignores them, a read-only filesystem does not.)

    >>> check_writable("/dev/null/sub")
    Traceback (most recent call last):
    caw.errors.StorageError: cannot create the directory /dev/null/sub: Not a directory
    """
    directory = Path(path).expanduser()
    make_dirs(directory)
    with storage_errors("write a file in", directory):
        fd, probe = tempfile.mkstemp(prefix=".caw-write-check-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    return directory


def atomic_write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` so that readers see the old content or the new, never a mix.

    Raises StorageError when the file cannot be written.
    """
    make_dirs(path.parent)
    with storage_errors("write", path):
        _atomic_write(path, text, mode)


def _atomic_write(path: Path, text: str, mode: int | None) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def append_line(path: Path, line: str) -> None:
    """Append one line, flushed and fsynced; StorageError when it cannot be written."""
    make_dirs(path.parent)
    with storage_errors("append to", path), open(path, "a+b") as f:
        # a torn last line (a crash mid-append) would swallow this one: end it first; read_jsonl skips it
        torn = f.seek(0, os.SEEK_END) > 0 and f.seek(-1, os.SEEK_END) >= 0 and f.read(1) != b"\n"
        f.write((("\n" if torn else "") + line.rstrip("\n") + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn or garbled line is skipped, not fatal."""
    out: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError.from_os_error(exc, "read", path) from exc
    return out


def save_trajectory_file(traj: Trajectory, path: Path, *, redact: Callable[[str], str] | None = None) -> None:
    text = json.dumps(traj.to_dict(), ensure_ascii=False, indent=1)
    atomic_write_text(Path(path), redact(text) if redact else text)


def load_trajectory_file(path: Path) -> Trajectory:
    """The trajectory saved at ``path``: FileNotFoundError when there is none, StorageError when unreadable.

    A damaged file (not UTF-8, not JSON, not a trajectory) is a StorageError too, naming the file and the damage.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageError.from_os_error(exc, "read", path) from exc
    return parse_trajectory(raw, path)


def parse_trajectory(raw: bytes, path: Path) -> Trajectory:
    """The trajectory in the bytes of ``path``; a StorageError (``damaged``) saying what is wrong if not."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise damaged(path, f"not valid UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise damaged(path, f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise damaged(path, "not a caw trajectory (not a JSON object)")
    try:
        return Trajectory.from_dict(data)
    except ValueError as exc:  # pydantic's ValidationError: name the first bad field only
        lines = str(exc).splitlines()
        raise damaged(path, f"not a caw trajectory ({' '.join(lines[1:2]).strip() or lines[0]})") from None


def damaged(path: Path, why: str) -> StorageError:
    """The StorageError for a file caw can open but not use (errno None: nothing failed but the content)."""
    return StorageError(path, "read", strerror=f"the file is damaged: {why}")


@dataclass(frozen=True)
class SessionInfo:
    """One entry of ``list_sessions``."""

    session_id: str
    provider: str
    created_at: datetime
    first_prompt: str
    resume_handle: str | None
    path: Path
    turns: int
    #: None for a sound session; else what is wrong (the turns shown are the ones ``turns.jsonl`` still holds)
    damaged: str | None = None


class SessionStore:
    """Reads and writes the sessions of one ``data_dir``."""

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir).expanduser()

    def session_dir(self, session_id: str) -> Path:
        if not session_id or "/" in session_id or session_id in (".", ".."):
            raise ValueError(f"not a valid session id: {session_id!r}")
        return self.root / "sessions" / session_id

    def check_writable(self) -> None:
        """StorageError unless sessions can be written here (before a turn, not after it)."""
        check_writable(self.root / "sessions")

    def save(self, traj: Trajectory, *, redact: Callable[[str], str] | None = None) -> Path:
        path = self.session_dir(traj.session_id) / TRAJECTORY_FILE
        save_trajectory_file(traj, path, redact=redact)
        return path

    def append_turn(self, session_id: str, turn: Turn, *, redact: Callable[[str], str] | None = None) -> None:
        line = turn.model_dump_json()
        append_line(self.session_dir(session_id) / TURNS_FILE, redact(line) if redact else line)

    def exists(self, session_id: str) -> bool:
        try:
            return (self.session_dir(session_id) / TRAJECTORY_FILE).is_file()
        except ValueError:
            return False

    def load(self, session_id: str) -> Trajectory:
        """The saved trajectory; if it is missing or damaged but turns were appended, rebuilt from the turns.

        A damaged trajectory with no turns to rebuild it from is a StorageError naming the file.
        """
        d = self.session_dir(session_id)
        try:
            return load_trajectory_file(d / TRAJECTORY_FILE)
        except FileNotFoundError:
            rebuilt = self.rebuild(session_id)
            if rebuilt is None and not d.exists():
                raise FileNotFoundError(f"no session {session_id!r} in {self.root}") from None
            return rebuilt or Trajectory(session_id=session_id)
        except StorageError as exc:
            rebuilt = self.rebuild(session_id) if exc.errno is None else None
            if rebuilt is None:
                raise
            return rebuilt

    def rebuild(self, session_id: str) -> Trajectory | None:
        """The trajectory as far as ``turns.jsonl`` tells it (no resume handle), or None when it has no turn."""
        turns: list[Turn] = []
        for record in read_jsonl(self.session_dir(session_id) / TURNS_FILE):
            try:
                turns.append(Turn.model_validate(record))
            except ValueError:  # one damaged record costs that turn only
                continue
        if not turns:
            return None
        return Trajectory(session_id=session_id, agent=turns[-1].provider, created_at=turns[0].started_at, turns=turns)

    def list(self) -> list[SessionInfo]:
        """Every session dir with a trajectory or turns; a damaged one is listed with ``damaged`` saying why."""
        base = self.root / "sessions"
        infos: list[SessionInfo] = []
        if not base.is_dir():
            return infos
        for d in base.iterdir():
            damage: str | None = None
            try:
                traj: Trajectory | None = load_trajectory_file(d / TRAJECTORY_FILE)
            except FileNotFoundError:
                if not (d / TURNS_FILE).is_file():
                    continue
                damage = f"{d / TRAJECTORY_FILE} is missing"
                traj = None
            except StorageError as exc:
                damage = str(exc)
                traj = None
            if traj is None:
                traj = self.rebuild(d.name) or Trajectory(session_id=d.name, created_at=_mtime(d))
            first = traj.turns[0].input if traj.turns else (traj.pending_message or "")
            infos.append(
                SessionInfo(
                    session_id=traj.session_id,
                    provider=traj.agent,
                    created_at=traj.created_at,
                    first_prompt=first,
                    resume_handle=traj.resume_handle,
                    path=d,
                    turns=len(traj.turns),
                    damaged=damage,
                )
            )
        infos.sort(key=lambda i: i.created_at, reverse=True)
        return infos


def _mtime(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    except OSError:
        return datetime.fromtimestamp(0, tz=timezone.utc)


def list_sessions(data_dir: str | Path) -> list[SessionInfo]:
    """Sessions saved under ``data_dir``, newest first.

    >>> for s in list_sessions("~/.my-agent-data"):  # doctest: +SKIP
    ...     print(s.session_id, s.provider, s.first_prompt[:40], s.resume_handle)
    """
    return SessionStore(data_dir).list()
