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


def test_read_batches_with_newlines_keeps_them_and_cuts_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """``newlines=True`` (the v1 path): the same lines and over-long lengths, each line with its newline."""
    import io
    import random

    from flightdeck.ingest import scan as scan_mod

    rng = random.Random(5)
    for _ in range(600):
        monkeypatch.setattr(scan_mod, "CHUNK_BYTES", rng.randint(1, 40))
        monkeypatch.setattr(scan_mod, "MAX_LINE_BYTES", rng.randint(1, 30))
        pieces = [b"", b"a" * rng.randint(1, 45), b"\xef\xbb\xbf", b"{}", b"\r"]
        parts = [rng.choice(pieces) for _ in range(rng.randint(0, 12))]
        data = (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + b"\n".join(parts)
        if rng.random() < 0.5:
            data += b"\n"
        start = rng.choice([0, 0, rng.randint(0, max(len(data), 1))])
        end = rng.choice([None, rng.randint(start, max(len(data), start))])
        plain = list(scan_mod.read_batches(io.BytesIO(data), start, end))
        kept = list(scan_mod.read_batches(io.BytesIO(data), start, end, newlines=True))
        flat = [x for b in plain for x in (b if isinstance(b, list) else [b])]
        flat_kept = [x for b in kept for x in (b if isinstance(b, list) else [b])]
        lines = [x for x in flat_kept if isinstance(x, bytes)]
        assert all(x.endswith(b"\n") for x in lines[:-1]), (data, start, end)
        assert [x[:-1] if isinstance(x, bytes) and x.endswith(b"\n") else x for x in flat_kept] == flat, (
            data, start, end)
        stop = len(data) if end is None else end
        if lines and isinstance(flat_kept[-1], bytes):
            # the last line keeps a newline exactly when the range ends with one
            assert lines[-1].endswith(b"\n") == data[:stop].endswith(b"\n"), (data, start, end)


def test_a_report_names_bad_lines_as_decode_line_does_with_newlines_kept(tmp_path: Path) -> None:
    """The v1 path reads lines with their newline; a bad line's reason and detail are decode_line's of the bare line."""
    from flightdeck.core.events import Rejected

    bad = [b'{"v":1,', b"", b"   ", b"not json", b'{"v":1,"ts":1,"kind":"llm_call"}', b'{"v":1}\r',
           b"[1,2]", b'{"v":1,"ts":1764216000.5,"kind":"llm_call","id":"x-1","run":"r","provider":"p",'
           b'"model":"m","usage":{"input_tokens":-1}}', b'{"v":1,"ts":"soon","kind":"run_start","id":"a","run":"r"}']
    good = [_ev(i) for i in range(40)]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(good[:20]) + b"\n".join(bad) + b"\n" + b"".join(good[20:]))
    agg = scan([path], jobs=1)
    want = [r for r in map(decode_line, bad) if isinstance(r, Rejected)]
    want = [r for r, line in zip(want, [b for b in bad if isinstance(decode_line(b), Rejected)]) if line.strip()]
    got = [(reason, detail) for _, reason, detail in agg.ledger.recent_rejects]
    assert got == [(r.reason, r.detail[:300]) for r in want]
    assert agg.snapshot().events == 40


def test_iso_times_and_other_kinds_in_a_clean_group_count_as_line_by_line(tmp_path: Path) -> None:
    """A group decode_each takes whole, with events the inlined checks send to validate()."""
    from flightdeck.core.events import Rejected

    lines = [_ev(i) for i in range(30)]
    lines.insert(3, b'{"v":1,"ts":"2025-11-27T04:00:05Z","kind":"llm_call","id":"bb-1","run":"r",'
                    b'"provider":"openai","model":"m","usage":{"input_tokens":5},"cost_usd":"0.5"}\n')
    lines.insert(7, b'{"v":1,"ts":1764216003.0,"kind":"run_start","id":"bb-2","run":"r"}\n')
    lines.insert(9, b'{"v":1,"ts":5.0,"kind":"run_start","id":"bb-3","run":"r"}\n')  # out of bounds
    lines.insert(11, b'{"v":1,"ts":1764216004.0,"kind":"llm_call","id":"bb-4","run":"r","provider":"p",'
                     b'"model":"m","usage":{"output_tokens":1,"reasoning_tokens":2}}\n')  # reasoning > output
    path = tmp_path / "iso.jsonl"
    path.write_bytes(b"".join(lines))
    for since, until in ((None, None), (1_764_216_004.5, 1_764_216_020.0), (1_764_216_000.0, 1_764_216_006.0)):
        agg = scan([path], jobs=1, since=since, until=until)
        want_events = want_rejected = 0
        for line in lines:
            r = decode_line(line)
            if isinstance(r, Rejected):
                want_rejected += 1
            elif r.kind == "llm_call" and (since is None or since <= r.ts) and (until is None or r.ts < until):  # type: ignore[operator]
                want_events += 1
        snap = agg.snapshot()
        assert (snap.events, snap.rejected) == (want_events, want_rejected), (since, until)
        assert snap.rejected_reasons == {"bad ts": 1, "bad usage.reasoning_tokens": 1}
