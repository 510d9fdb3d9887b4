"""A resume handle longer than a file name may be (NAME_MAX, 255) still names its session.

Found by QA on opencode: its handles carry the cwd and the data home, so a session run from a deep
directory mints a handle of 300+ characters, and `caw traj html HANDLE` died with an internal
`OSError: [Errno 36] File name too long` from `Path.is_dir()` before the handle was ever decoded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caw.state.handle import ResumeHandle, encode
from caw.viewer.source import SourceError, load_source
from tests.viewer_samples import sample_trajectory, write_session


def test_handle_longer_than_name_max_loads_its_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_session(data, sample_trajectory("abc123"))
    deep = "/srv/" + "/".join(["répertoire-très-profond"] * 12)
    handle = encode(
        ResumeHandle(provider="opencode", session_id="abc123", resume_key="ses_" + "x" * 26, cwd=deep, config_home=deep)
    )
    assert len(handle) > 255
    assert load_source(handle, data).trajectory.session_id == "abc123"


def test_overlong_name_that_is_no_handle_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="names no file, session id or resume handle"):
        load_source("z" * 300, tmp_path)
