"""Where a trajectory to view comes from: a JSON file, a session dir, a caw session id or a resume handle.

The raw JSON is kept next to the validated ``Trajectory``: a field this caw does not model yet (a subagent
link written by a newer caw, issue 15) is still found in it, and the base dir resolves relative links.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caw.errors import StorageError
from caw.models import Trajectory, Turn
from caw.state.store import TRAJECTORY_FILE, TURNS_FILE, SessionStore, read_jsonl

#: keys of a trajectory JSON of which at least one must be present (every field has a default, so ``{}``
#: would validate as an empty trajectory)
TRAJECTORY_KEYS = frozenset({"turns", "session_id", "agent"})


class SourceError(ValueError):
    """``source`` names no readable trajectory: ``why`` says what is wrong (a predicate: "is not JSON (...)"),
    ``hint`` what to pass instead."""

    def __init__(self, source: str, why: str, hint: str = "") -> None:
        super().__init__(f"{source} {why}")
        self.source = source
        self.why = why
        self.hint = hint

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.why, self.hint))


@dataclass(frozen=True)
class Source:
    """A loaded trajectory: the model, its JSON as stored, the dir its relative links resolve in."""

    trajectory: Trajectory
    raw: dict[str, Any]
    #: the session dir (or the file's dir); subagent links resolve below it
    base_dir: Path | None
    label: str


def parse_json_trajectory(text: str, label: str) -> tuple[Trajectory, dict[str, Any]]:
    """A trajectory from JSON text (``caw run --json`` output, ``--save``, ``trajectory.json``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(label, f"is not JSON ({exc})", "pass a trajectory JSON file") from None
    if not isinstance(data, dict) or not TRAJECTORY_KEYS & data.keys():
        kinds = {dict: "object without turns, session_id or agent", list: "array", str: "string", bool: "boolean"}
        what = kinds.get(type(data), "null" if data is None else "number")
        raise SourceError(
            label,
            f"is not a caw trajectory (a JSON {what})",
            "pass a file written by `caw run --json` / --save, or a session dir",
        )
    try:
        return Trajectory.from_dict(data), data
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise SourceError(label, f"is not a caw trajectory ({first})", "pass a trajectory JSON file") from None


def load_file(path: Path, label: str | None = None) -> Source:
    name = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(name, f"cannot be read ({exc})", "pass a trajectory JSON file or a session dir") from None
    traj, raw = parse_json_trajectory(text, name)
    return Source(traj, raw, path.parent, name)


def load_session_dir(directory: Path, label: str | None = None) -> Source:
    """A session dir: its ``trajectory.json``, or, when that is missing or damaged, what ``turns.jsonl`` holds."""
    name = label or str(directory)
    if directory.parent.name != "sessions":  # not in a store (a subagent's dir): the files as they are
        if (directory / TRAJECTORY_FILE).is_file():
            loaded = load_file(directory / TRAJECTORY_FILE, name)
            return Source(loaded.trajectory, loaded.raw, directory, name)
        turns = []
        for record in read_jsonl(directory / TURNS_FILE):
            try:
                turns.append(Turn.model_validate(record))
            except ValueError:
                continue
        rebuilt = Trajectory(session_id=directory.name, turns=turns, agent=turns[-1].provider if turns else "")
        return Source(rebuilt, rebuilt.to_dict(), directory, name)
    try:
        traj = SessionStore(directory.parent.parent).load(directory.name)
    except (StorageError, FileNotFoundError, ValueError) as exc:
        hint = "pass a session dir, a trajectory JSON file, a session id or a handle"
        raise SourceError(name, f"cannot be loaded ({exc})", hint) from None
    raw: dict[str, Any] = {}
    try:
        loaded = json.loads((directory / TRAJECTORY_FILE).read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and len(loaded.get("turns") or []) == len(traj.turns):
            raw = loaded
    except (OSError, ValueError):
        pass  # rebuilt from turns.jsonl: the model is all there is
    return Source(traj, raw or traj.to_dict(), directory, name)


def load_source(source: str | Path, data_dir: Path | str | None = None) -> Source:
    """The trajectory ``source`` names: a JSON file, a session dir, or (with ``data_dir``) a caw session id or
    a resume handle of a session saved there. ``SourceError`` when it names none.

    >>> load_source("/nonexistent/traj.json")
    Traceback (most recent call last):
    caw.viewer.source.SourceError: /nonexistent/traj.json names no file, session id or resume handle
    """
    text = str(source)
    path = Path(text).expanduser()
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError:  # ENAMETOOLONG: a resume handle longer than NAME_MAX (255) is no file name
        is_dir = is_file = False
    if is_dir:
        if (path / TRAJECTORY_FILE).is_file() or (path / "turns.jsonl").is_file():
            return load_session_dir(path, text)
        raise SourceError(text, "is a directory with no trajectory.json or turns.jsonl", "pass a session dir")
    if is_file:
        return load_file(path, text)
    if data_dir is not None:
        store = SessionStore(data_dir)
        session_id = _session_id_of(text.strip())
        if session_id and (store.root / "sessions" / session_id).is_dir():
            return load_session_dir(store.session_dir(session_id), text)
    hint = "pass a trajectory JSON file, a session dir, or a session id or handle of the data dir"
    raise SourceError(text, "names no file, session id or resume handle", hint)


def _session_id_of(text: str) -> str | None:
    from caw.state.handle import decode, looks_like_handle

    if looks_like_handle(text):
        try:
            return decode(text).session_id
        except ValueError:
            return None
    if not text or "/" in text or text in (".", ".."):
        return None
    return text


# ---- subagent links (issue 15) ---------------------------------------------------------------------------
#: the keys under which a ToolUse may link the trajectory of the subagent it ran
SUBAGENT_KEYS = ("subagent", "subagent_trajectory", "subagent_path", "subagent_session_id")


def subagent_link(block: dict[str, Any]) -> Any:
    for key in SUBAGENT_KEYS:
        value = block.get(key)
        if value:
            return value
    return None


def resolve_subagent(link: Any, base_dir: Path | None) -> Source:
    """The subagent trajectory a link names: an embedded trajectory, or a path / session id below ``base_dir``
    (the parent session's dir, or its data dir's sessions). ``SourceError`` when it cannot be found."""
    if isinstance(link, dict):
        if TRAJECTORY_KEYS & link.keys() and "turns" in link:
            try:
                return Source(Trajectory.from_dict(link), link, base_dir, "embedded subagent trajectory")
            except ValueError as exc:
                raise SourceError("subagent", f"is not a caw trajectory ({str(exc).splitlines()[0]})") from None
        for key in ("path", "trajectory_path", "session_dir", "session_id", "id"):
            if isinstance(link.get(key), str) and link[key]:
                return resolve_subagent(link[key], base_dir)
        raise SourceError("subagent", "names no path or session id")
    if not isinstance(link, str) or base_dir is None:
        raise SourceError("subagent", "cannot be resolved")
    roots = [base_dir.resolve()]
    if base_dir.parent.name == "sessions":
        roots.append(base_dir.parent.resolve())
    parts = Path(link).parts
    # caw writes an absolute path (<parent>/subagents/sessions/<id>/trajectory.json); a copied or moved
    # data dir still has the part from "subagents" on
    tail = Path(*parts[len(parts) - 1 - parts[::-1].index("subagents") :]) if "subagents" in parts else None
    for root in roots:
        for candidate in (root / link, root / "subagents" / link, *((root / tail,) if tail else ())):
            try:
                resolved = candidate.resolve()
            except (OSError, RuntimeError):
                continue
            if not any(resolved.is_relative_to(r) for r in roots):
                continue  # a link never leads out of the parent's data
            if resolved.is_dir() and ((resolved / TRAJECTORY_FILE).is_file() or (resolved / "turns.jsonl").is_file()):
                return load_session_dir(resolved, link)
            if resolved.is_file():
                return load_file(resolved, link)
    if "/" not in link:
        raise SourceError(link, "is a subagent session id: it ran without a data dir, so nothing was saved")
    raise SourceError(link, "is not in the parent session's directory")
