"""Unit tests for the resume-handle codec: round trips, the wire shape, and every ``why`` of a bad handle."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from caw.errors import InvalidResumeHandle
from caw.providers import canonical_name
from caw.state import handle as handle_mod
from caw.state.handle import MAX_LENGTH, PREFIX, ResumeHandle, decode, encode, looks_like_handle

HANDLE_RE = re.compile(r"^caw\d+_[A-Za-z0-9_-]+$")


def make(**overrides: Any) -> ResumeHandle:
    fields: dict[str, Any] = {
        "provider": "claude",
        "session_id": "20260522-143012-a1b2c3",
        "resume_key": "5d367f25-1234-4abc-9def-0123456789ab",
        "cwd": "/home/alice/projects/my-service",
        "config_home": "/home/alice/.claude-work",
        "model": "claude-sonnet-4-5",
        "reasoning": "high",
        "cli_version": "2.1.197",
        "created_at": datetime(2026, 5, 22, 14, 30, 12, tzinfo=timezone.utc),
    }
    fields.update(overrides)
    return ResumeHandle(**fields)


def rejected(text: object) -> InvalidResumeHandle:
    """Decode ``text``, expecting InvalidResumeHandle with a one-line message; return the error."""
    with pytest.raises(InvalidResumeHandle) as info:
        decode(text)  # type: ignore[arg-type]  # hostile input on purpose
    err = info.value
    message = str(err)
    assert message and len(message.splitlines()) == 1 and "\n" not in message
    assert message.startswith("invalid resume handle: ")
    # No traceback from base64 / json / pydantic leaks through the chain.
    assert err.__cause__ is None and err.__suppress_context__
    assert isinstance(err, ValueError)
    return err


def body_of(text: str) -> str:
    assert text.startswith(PREFIX)
    return text[len(PREFIX) :]


# -- round trips and the wire shape --------------------------------------------------------------


def test_round_trip_full() -> None:
    h = make()
    text = encode(h)
    assert HANDLE_RE.fullmatch(text)
    assert decode(text) == h


def test_round_trip_minimal_leaves_optional_fields_none() -> None:
    h = ResumeHandle(provider="codex", session_id="s", resume_key="thread-1", cwd="/")
    back = decode(encode(h))
    assert back == h
    assert back.config_home is None and back.model is None and back.created_at is None


def test_prefix_carries_version_one() -> None:
    assert PREFIX == "caw1_"
    assert handle_mod.FORMAT_VERSION == 1


def test_wire_payload_uses_short_keys_and_omits_none() -> None:
    h = make(config_home=None, reasoning=None)
    raw = base64.urlsafe_b64decode(body_of(encode(h)) + "=" * (-len(body_of(encode(h))) % 4))
    payload = json.loads(raw[6:])
    assert payload == {
        "p": "claude",
        "s": "20260522-143012-a1b2c3",
        "k": "5d367f25-1234-4abc-9def-0123456789ab",
        "d": "/home/alice/projects/my-service",
        "m": "claude-sonnet-4-5",
        "v": "2.1.197",
        "t": 1779460212,
    }


def test_typical_handle_is_short() -> None:
    # A handle goes on command lines and in env vars; it should stay a few hundred characters.
    assert len(encode(make())) < 320


def test_encoding_is_deterministic() -> None:
    assert encode(make()) == encode(make())


def test_unicode_path_with_spaces_newline_and_emoji_round_trips() -> None:
    h = make(cwd="/home/zoë/my project/\n🚀 launch", config_home="C:\\Users\\Zoë\\.codex")
    text = encode(h)
    assert HANDLE_RE.fullmatch(text)
    assert decode(text) == h


def test_undecodable_directory_name_round_trips() -> None:
    # os.getcwd() returns lone surrogates for a directory whose name is not valid UTF-8.
    h = make(cwd="/tmp/caf\udce9")
    assert decode(encode(h)) == h


def test_surrounding_whitespace_and_trailing_newline_are_tolerated() -> None:
    text = encode(make())
    for pasted in (text + "\n", "  " + text + "\r\n", "\t" + text, text + " \n\n"):
        assert decode(pasted) == make()


def test_created_at_is_kept_to_seconds_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    h = make(created_at=datetime(2026, 5, 22, 16, 30, 12, 987654, tzinfo=plus_two))
    assert h.created_at == datetime(2026, 5, 22, 14, 30, 12, tzinfo=timezone.utc)
    assert h.created_at is not None and h.created_at.utcoffset() == timedelta(0)
    assert decode(encode(h)) == h


def test_naive_created_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make(created_at=datetime(2026, 5, 22, 14, 30, 12))


def test_created_at_that_overflows_in_utc_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="range"):
        make(created_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))


def test_provider_name_is_lower_cased() -> None:
    assert make(provider="Claude").provider == "claude"


def test_model_refuses_a_provider_that_is_not_a_name_and_relative_cwd() -> None:
    with pytest.raises(ValueError, match="not a provider name"):
        make(provider="gem ini")
    with pytest.raises(ValueError, match="absolute"):
        make(cwd="relative/dir")


def test_handle_is_frozen() -> None:
    h = make()
    with pytest.raises(ValueError):
        h.cwd = "/elsewhere"  # type: ignore[misc]


def test_encode_refuses_a_handle_decode_would_refuse() -> None:
    with pytest.raises(InvalidResumeHandle) as info:
        encode(make(cwd="/" + "x" * MAX_LENGTH))
    assert info.value.why == "too_long"


# -- looks_like_handle ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("caw1_abc", True),
        ("  caw1_abc\n", True),
        ("caw9_abc", True),  # a newer format still looks like a handle, so decode can say "upgrade"
        ("20260522-143012-a1b2c3", False),  # a bare caw session id
        ("caw_abc", False),
        ("Caw1_abc", False),
        ("", False),
        (None, False),
        (b"caw1_abc", False),
    ],
)
def test_looks_like_handle(text: Any, expected: bool) -> None:
    assert looks_like_handle(text) is expected


def test_looks_like_handle_is_true_for_real_handles() -> None:
    assert looks_like_handle(encode(make()))


# -- every `why` ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n", " \t\r\n "])
def test_empty(text: str) -> None:
    err = rejected(text)
    assert err.why == "empty"
    assert "empty" in str(err)


def test_too_long_one_megabyte_is_rejected_fast() -> None:
    huge = encode(make()) + "A" * 1_000_000
    started = time.perf_counter()
    err = rejected(huge)
    assert time.perf_counter() - started < 0.1
    assert err.why == "too_long"
    assert "longer than" in str(err)


def test_too_long_megabyte_of_whitespace() -> None:
    assert rejected(" " * 1_000_000).why == "too_long"


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "5d367f25-1234-4abc-9def-0123456789ab",
        "caw_abc",
        "cawX_abc",
        "caw1abc",
        "Caw1_abc",
        "caw1234567_abc",  # absurd version number
        "ses_01HZXYZ",
        '{"p":"claude"}',
        "caw١_abc",  # an Arabic-Indic digit is not a version
    ],
)
def test_not_a_handle(text: str) -> None:
    err = rejected(text)
    assert err.why == "not_a_handle"
    assert "caw1_" in str(err)


@pytest.mark.parametrize("value", [None, 42, b"caw1_abc", ["caw1_abc"], make()])
def test_non_str_input_is_not_a_handle(value: object) -> None:
    err = rejected(value)
    assert err.why == "not_a_handle"
    assert type(value).__name__ in str(err)


def test_unsupported_future_version() -> None:
    text = "caw9_" + body_of(encode(make()))
    err = rejected(text)
    assert err.why == "unsupported_version"
    message = str(err)
    assert "newer caw" in message and "v9" in message and "v1" in message and "upgrade caw" in message


def test_unsupported_version_zero() -> None:
    err = rejected("caw0_" + body_of(encode(make())))
    assert err.why == "unsupported_version"
    assert "v0" in str(err)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t[:-1], id="drop-last-char"),
        pytest.param(lambda t: t[:-2], id="drop-last-two-chars"),
        pytest.param(lambda t: t[: len(t) // 2], id="drop-half"),
        pytest.param(lambda t: t[:8], id="just-past-prefix"),
        pytest.param(lambda t: PREFIX, id="prefix-only"),
        pytest.param(lambda t: t[:20] + ("A" if t[20] != "A" else "B") + t[21:], id="swap-one-char"),
        pytest.param(lambda t: t[:20] + t[21] + t[20] + t[22:], id="transpose"),
        pytest.param(lambda t: t[:30] + "\n" + t[30:], id="line-wrapped"),
        pytest.param(lambda t: t[:30] + " " + t[30:], id="space-inside"),
        pytest.param(lambda t: t + "=", id="padding-added"),
        pytest.param(lambda t: t[:20] + "+" + t[21:], id="standard-base64-alphabet"),
        pytest.param(lambda t: t[:-1] + "é", id="non-ascii"),
        pytest.param(lambda t: "caw01_" + t[len(PREFIX) :], id="leading-zero-version"),
        pytest.param(lambda t: t + t[len(PREFIX) :], id="doubled"),
    ],
)
def test_corrupt(mangle: Any) -> None:
    text = encode(make())
    mangled = mangle(text)
    assert mangled != text
    err = rejected(mangled)
    assert err.why == "corrupt"
    assert "truncated" in str(err)


def test_corrupt_non_canonical_last_character() -> None:
    # When the bytes do not fill the last base64 group, its last character has unused low bits;
    # setting them would decode to the same bytes, so decode must insist they are zero.
    text = next(t for t in (encode(make(session_id="s" * n)) for n in range(1, 4)) if len(body_of(t)) % 4 != 0)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    assert last % 2 == 0  # canonical: the unused bits are zero
    err = rejected(text[:-1] + alphabet[last | 1])
    assert err.why == "corrupt"


def test_corrupt_message_hints_at_line_break() -> None:
    text = encode(make())
    err = rejected(text[:40] + "\n" + text[40:])
    assert "line break" in str(err)


def test_malformed_payload_is_not_json() -> None:
    err = rejected(handle_mod._pack(b"not json at all"))
    assert err.why == "malformed"
    assert "not JSON" in str(err)


def test_malformed_deeply_nested_json() -> None:
    err = rejected(handle_mod._pack(b"[" * 5000 + b"]" * 5000))
    assert err.why == "malformed"


def test_malformed_payload_is_json_but_not_an_object() -> None:
    err = rejected(handle_mod._pack(b'["claude","s","k"]'))
    assert err.why == "malformed"
    assert "list" in str(err)


VALID_WIRE: dict[str, Any] = {"p": "claude", "s": "s1", "k": "uuid-1", "d": "/work"}


@pytest.mark.parametrize(
    ("wire", "mentions"),
    [
        ({"p": "claude"}, "session_id"),
        ({k: v for k, v in VALID_WIRE.items() if k != "k"}, "resume_key"),
        ({k: v for k, v in VALID_WIRE.items() if k != "d"}, "cwd"),
        ({k: v for k, v in VALID_WIRE.items() if k != "p"}, "provider"),
        ({**VALID_WIRE, "p": 7}, "provider"),
        ({**VALID_WIRE, "s": 123}, "session_id"),
        ({**VALID_WIRE, "k": None}, "resume_key"),
        ({**VALID_WIRE, "s": ""}, "session_id"),
        ({**VALID_WIRE, "d": "relative/path"}, "cwd"),
        ({**VALID_WIRE, "d": "/a\x00b"}, "cwd"),
        ({**VALID_WIRE, "m": ["opus"]}, "model"),
        ({**VALID_WIRE, "t": "2026-05-22T14:30:12Z"}, "created_at"),
        ({**VALID_WIRE, "t": 1.5}, "created_at"),
        ({**VALID_WIRE, "t": True}, "created_at"),
        ({**VALID_WIRE, "t": 10**30}, "created_at"),
    ],
)
def test_malformed_content(wire: dict[str, Any], mentions: str) -> None:
    err = rejected(handle_mod._encode_payload(wire))
    assert err.why == "malformed"
    assert mentions in str(err)


def test_unknown_wire_keys_are_ignored_for_forward_compatibility() -> None:
    assert decode(handle_mod._encode_payload({**VALID_WIRE, "zz": 1})) == ResumeHandle(
        provider="claude", session_id="s1", resume_key="uuid-1", cwd="/work"
    )


def test_unknown_provider_with_the_registry_as_resolver() -> None:
    text = handle_mod._encode_payload({**VALID_WIRE, "p": "gemini"})
    with pytest.raises(InvalidResumeHandle) as info:
        decode(text, resolve=canonical_name)
    assert info.value.why == "unknown_provider"
    assert "gemini" in str(info.value)
    assert decode(text).provider == "gemini"  # the codec alone knows shapes, not which providers exist


def test_provider_alias_on_the_wire_is_resolved_by_the_registry() -> None:
    text = handle_mod._encode_payload({**VALID_WIRE, "p": "claude-code"})
    assert decode(text, resolve=canonical_name).provider == "claude"


def test_error_messages_never_echo_raw_newlines_from_input() -> None:
    err = rejected("hello\nworld\u2028more")
    assert err.why == "not_a_handle"
