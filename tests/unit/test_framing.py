"""LineFramer: however the CLI's bytes are cut into reads, the same lines come out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from caw.transport import LineFramer


def _frame(chunks: list[bytes]) -> list[str]:
    framer = LineFramer()
    out: list[str] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out + framer.flush()


@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_cut_of_the_stream_gives_the_same_lines(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    expected = [p.decode("utf-8", "replace").rstrip("\r") for p in data.split(b"\n")]
    assert [ln for ln in _frame(chunks) if ln] == [ln for ln in expected if ln]


def test_a_line_spanning_many_reads_is_decoded_once_and_whole() -> None:
    line = b'{"text":"' + "é".encode() * 50_000 + b'"}'
    chunks = [line[i : i + 4097] for i in range(0, len(line), 4097)] + [b"\r\nnext\n"]
    assert _frame(chunks) == [line.decode(), "next"]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert _frame([b"ok \xff\xfe", b" end\n"]) == ["ok \ufffd\ufffd end"]
