"""Property tests for the resume-handle codec: any handle round-trips, and no one-character edit decodes."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caw.errors import InvalidResumeHandle
from caw.state.handle import MAX_LENGTH, ResumeHandle, decode, encode

PROVIDER_NAMES = ("claude", "codex", "opencode")

HANDLE_RE = re.compile(r"^caw\d+_[A-Za-z0-9_-]+$")
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any text but NUL (no OS path holds one); includes emoji, spaces, newlines, lone surrogates.
path_text = st.text(st.characters(exclude_categories=(), exclude_characters="\x00"), max_size=200)
posix_paths = path_text.map(lambda rest: "/" + rest)
windows_paths = st.tuples(st.sampled_from("CDZ"), path_text).map(lambda p: f"{p[0]}:\\{p[1]}")
paths = st.one_of(posix_paths, windows_paths)
# Ids up to a few KB; the two ids of one handle stay under the encoder's length limit together.
ids = st.one_of(
    st.text(min_size=1, max_size=60),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=2000),
)
optional_text = st.none() | st.text(max_size=80)
created = st.none() | st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc)
)

handles = st.builds(
    ResumeHandle,
    provider=st.sampled_from(PROVIDER_NAMES),
    session_id=ids,
    resume_key=ids,
    cwd=paths,
    config_home=st.none() | paths,
    model=optional_text,
    reasoning=optional_text,
    cli_version=optional_text,
    created_at=created,
)


@SETTINGS
@given(handles)
def test_round_trip(handle: ResumeHandle) -> None:
    text = encode(handle)
    assert len(text) <= MAX_LENGTH
    assert HANDLE_RE.fullmatch(text)
    assert decode(text) == handle


@SETTINGS
@given(handles, st.sampled_from([" ", "\n", "\r\n", "\t", "  \n"]), st.sampled_from(["", " ", "\n"]))
def test_round_trip_tolerates_surrounding_whitespace(handle: ResumeHandle, after: str, before: str) -> None:
    assert decode(before + encode(handle) + after) == handle


def _positions(last: int) -> st.SearchStrategy[int]:
    # Bias towards the prefix ("caw1_" + the checksum) and the tail (the partial base64 group), where
    # edits are handled by special cases; uniform positions would rarely land there.
    return st.one_of(
        st.integers(min_value=0, max_value=min(8, last)),
        st.integers(min_value=max(0, last - 2), max_value=last),
        st.integers(min_value=0, max_value=last),
    )


def _single_char_edits(draw: st.DrawFn, text: str) -> str:
    kind = draw(st.sampled_from(["replace", "delete", "insert"]))
    any_char = st.sampled_from(B64URL + "0123456789") | st.characters(codec=None)
    if kind == "insert":
        at = draw(_positions(len(text)))
        return text[:at] + draw(any_char) + text[at:]
    position = draw(_positions(len(text) - 1))
    if kind == "delete":
        return text[:position] + text[position + 1 :]
    char = draw(any_char.filter(lambda c: c != text[position]))
    return text[:position] + char + text[position + 1 :]


@st.composite
def corrupted_handles(draw: st.DrawFn) -> tuple[ResumeHandle, str, str]:
    handle = draw(handles)
    text = encode(handle)
    return handle, text, _single_char_edits(draw, text)


@SETTINGS
@given(corrupted_handles())
def test_any_single_character_edit_is_rejected(case: tuple[ResumeHandle, str, str]) -> None:
    handle, text, edited = case
    assert edited != text
    if edited.strip() == text:
        # Whitespace added at either end is the one edit decode forgives, by design (terminal pastes).
        assert decode(edited) == handle
        return
    try:
        decoded = decode(edited)
    except InvalidResumeHandle as err:
        assert err.why in {"corrupt", "not_a_handle", "unsupported_version"}
        assert len(str(err).splitlines()) == 1
    else:
        raise AssertionError(f"a one-character edit decoded to {decoded!r}")


@SETTINGS
@given(
    st.text(max_size=400)
    | st.text(B64URL, max_size=400).map(lambda body: "caw1_" + body)
    | st.binary(max_size=100)
    | st.integers()
    | st.none()
)
def test_decode_raises_only_invalid_resume_handle(value: object) -> None:
    try:
        decode(value)  # type: ignore[arg-type]  # hostile input on purpose
    except InvalidResumeHandle as err:
        assert len(str(err).splitlines()) == 1


def _must_reject(handle: ResumeHandle, edited: str) -> None:
    try:
        decoded = decode(edited)
    except InvalidResumeHandle:
        return
    raise AssertionError(f"the edit {edited!r} decoded to {decoded!r} instead of failing")


@settings(max_examples=30, deadline=None)
@given(handles)
def test_every_edit_at_the_ends_is_rejected(handle: ResumeHandle) -> None:
    # Exhaustive where the special cases live: the version prefix, the checksum's first characters,
    # and the last characters (whose unused low bits must be zero).
    text = encode(handle)
    last = len(text) - 1
    for position in [*range(9), last - 2, last - 1, last]:
        _must_reject(handle, text[:position] + text[position + 1 :])
        for char in B64URL:
            if char != text[position]:
                _must_reject(handle, text[:position] + char + text[position + 1 :])
            _must_reject(handle, text[:position] + char + text[position:])
    for char in B64URL:
        _must_reject(handle, text + char)
