"""Reading lines in bulk must give what reading line by line gives.

The v1 fast path decodes a block of lines at once (``decode_each``); it must count what the
line reader counts.

msgspec's ``decode_lines`` reads a stream of JSON values, not lines: two
events on one line (a lost newline) or one event over two lines would each
count, where reading line by line rejects every such line. ``scan`` and a
``FileFormat`` reading the same bytes line by line must agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flightdeck.core.events import Event, Usage, decode_each, decode_line, encode_event
from flightdeck.ingest.formats import FileFormat
from flightdeck.ingest.scan import scan


def _ev(i: int) -> bytes:
    return encode_event(Event(v=1, ts=1_764_216_000.0 + i, kind="llm_call", id=f"aa-{i:x}", run="r",
                              provider="openai", route="direct", model="gpt-4o", usage=Usage(input_tokens=1),
                              cost_usd="0.000100", cost_status="priced"))


def _per_line(data: bytes) -> tuple[int, int]:
    f = FileFormat()
    events = rejected = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        got = f.parse(line)
        if isinstance(got, list):
            events += len(got)
        else:
            rejected += 1
    return events, rejected


SPLIT = (b'{"v":1,"ts":1764216005.0,"kind":"llm_call",\n'
         b'"id":"aa-99","run":"r","provider":"openai","model":"m","usage":{}}\n')


@pytest.mark.parametrize("tail", [
    _ev(1).rstrip(b"\n") + b" " + _ev(2),  # two events on one line
    _ev(1).rstrip(b"\n") + _ev(2),  # ... with no space
    SPLIT,  # one event over two lines
    _ev(1).rstrip(b"\n") + b" " + _ev(2) + b"\n" + _ev(3),  # two on a line and a blank line
    _ev(1).rstrip(b"\n") + b"\r\n" + _ev(2),  # CRLF
    _ev(1).rstrip(b"\n") + b"   \n" + _ev(2),  # trailing spaces
    _ev(1) + _ev(2).rstrip(b"\n"),  # no final newline
], ids=["two-on-a-line", "two-no-space", "one-over-two-lines", "with-a-blank-line", "crlf", "trailing-spaces",
        "no-final-newline"])
def test_a_report_counts_what_the_line_reader_counts(tmp_path: Path, tail: bytes) -> None:
    data = b"".join(_ev(i) for i in range(10, 40)) + tail
    path = tmp_path / "a.jsonl"
    path.write_bytes(data)
    agg = scan([path], jobs=1)
    assert (agg.events, agg.rejected) == _per_line(data)


def test_decode_each_is_decode_line_for_each_line_or_fails() -> None:
    lines = [_ev(i).rstrip(b"\n") for i in range(5)]
    assert decode_each(lines) == [decode_line(line) for line in lines]
    for bad in (lines[0] + b" " + lines[1], SPLIT.split(b"\n")[0], b"", b"[]", lines[0] + b"}"):
        with pytest.raises(ValueError):
            decode_each([lines[0], bad, lines[1]])
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ValueError):  # a RecursionError inside msgspec becomes a DecodeError
        decode_each([lines[0], deep])


def _plain_batches(data: bytes, start: int, end: int | None) -> list[list[bytes] | int]:
    """read_batches as it was: each of read_blocks' blocks split into lines."""
    import io

    from flightdeck.ingest.scan import read_blocks

    out: list[list[bytes] | int] = []
    for block in read_blocks(io.BytesIO(data), start, end):
        if isinstance(block, int):
            out.append(block)
            continue
        lines = block.split(b"\n")
        if not lines[-1]:
            lines.pop()
        if lines:
            out.append(lines)
    return out


def test_read_batches_gives_the_lines_of_read_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import random

    from flightdeck.ingest import scan as scan_mod

    rng = random.Random(3)
    for _ in range(400):
        monkeypatch.setattr(scan_mod, "CHUNK_BYTES", rng.randint(1, 40))
        monkeypatch.setattr(scan_mod, "MAX_LINE_BYTES", rng.randint(1, 30))
        pieces = [b"", b"a" * rng.randint(1, 45), b"\xef\xbb\xbf", b"{}"]
        parts = [rng.choice(pieces) for _ in range(rng.randint(0, 12))]
        data = (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + b"\n".join(parts)
        if rng.random() < 0.5:
            data += b"\n"
        start = rng.choice([0, 0, rng.randint(0, max(len(data), 1))])
        end = rng.choice([None, rng.randint(start, max(len(data), start))])
        got = list(scan_mod.read_batches(io.BytesIO(data), start, end))
        want = _plain_batches(data, start, end)
        flat = [x for b in got for x in (b if isinstance(b, list) else [b])]
        assert flat == [x for b in want for x in (b if isinstance(b, list) else [b])], (data, start, end)
