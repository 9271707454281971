from __future__ import annotations

import io
import itertools
import json
import os
import random
import subprocess
import sys
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flightdeck.core.events import MAX_LINE_BYTES, Event, IdSource, Latency, Usage, encode_event
from flightdeck.ingest import scan as scan_mod
from flightdeck.ingest.scan import ScanError, expand, plan, read_batches, scan
from tests.ingest.formats.test_formats import cc_line

T0 = 1_764_216_000.0


def good_lines(n: int, *, seed: int = 1, ids: IdSource | None = None) -> tuple[list[bytes], Decimal]:
    rng = random.Random(seed)
    ids = ids or IdSource()
    lines, total = [], Decimal(0)
    for i in range(n):
        cost = f"{rng.randrange(10**7) / 10**6:.6f}" if rng.random() < 0.9 else None
        if cost is not None:
            total += Decimal(cost)
        ev = Event(v=1, ts=T0 + i, kind="llm_call", id=ids(), run=f"r-{i % 3}", provider="openai",
                   route="direct", model=rng.choice(["gpt-4o", "gpt-4o-mini"]), stream=rng.random() < 0.5,
                   usage=Usage(input_tokens=rng.randrange(1000), output_tokens=rng.randrange(1, 100)),
                   cost_usd=cost, cost_status="priced" if cost else "unknown",
                   latency_ms=Latency(pre=1.0, ttft=50.0, gen=rng.uniform(10, 900), post=2.0, total=1000.0))
        lines.append(encode_event(ev))
    return lines, total


BAD_LINES: list[tuple[bytes, str]] = [
    (b"\x00\xff\xfegarbage\x01\n", "not json"),
    (b'{"v":1,"ts":1764216000,"kind":"llm_call","id":"tr-1","run":"r","provid\n', "not json"),
    (b"[1,2,3]\n", "not an object"),
    (b'"just a string"\n', "not an object"),
    (b'{"v":1,"ts":"yesterday","kind":"llm_call","id":"x-1","run":"r","provider":"p","model":"m",'
     b'"usage":{}}\n', "bad ts"),
    (b'{"v":1,"ts":1764216000,"kind":"llm_call","id":"x-2","run":"r","provider":"p","model":"m",'
     b'"usage":{"input_tokens":-5}}\n', "bad usage.input_tokens"),
    (b'{"v":1,"ts":1764216000,"kind":"llm_call","id":"x-3","run":"r","provider":"p","model":"m",'
     b'"usage":{"input_tokens":"12"}}\n', "bad usage.input_tokens"),
    (b'{"v":1,"ts":1764216000,"kind":"llm_call","id":"x-4","run":"r","provider":"p","model":"m",'
     b'"usage":{},"cost_usd":0.5}\n', "bad cost_usd"),
    (b'{"v":1,"ts":1764216000,"kind":"llm_call","id":"x-5","run":"r","provider":"p","model":"m"}\n',
     "missing usage"),
    (b'{"v":1,"ts":1764216000,"kind":"llm_call","run":"r"}\n', "missing id"),
]


def test_malformed_lines_are_rejected_with_reasons_and_good_ones_all_count(tmp_path: Path) -> None:
    good, total = good_lines(200)
    body = bytearray()
    for i, line in enumerate(good):
        body += line
        if i % 20 == 0 and i // 20 < len(BAD_LINES):
            body += BAD_LINES[i // 20][0]
    body += b'{"v":1,"ts":1764216000,"kind":"telepathy","id":"k-1","run":"r"}\n'  # unknown kind: counted, fine
    body += b"x" * (10 * 1024 * 1024) + b"\n"  # a 10 MB line
    body += b"\n   \n"  # blank lines are nothing
    body += good_lines(1, seed=99)[0][0].rstrip(b"\n")[:-7]  # torn last line, no newline
    path = tmp_path / "run.jsonl"
    path.write_bytes(bytes(body))
    snap = scan([path], jobs=1).snapshot()
    assert snap.events == 200
    assert snap.total.cost_usd == total
    assert snap.unknown_kinds == 1
    want: dict[str, int] = {}
    for _, reason in BAD_LINES:
        want[reason] = want.get(reason, 0) + 1
    want["line too long"] = 1
    want["not json"] += 1  # the torn last line
    assert snap.rejected_reasons == want
    assert snap.rejected == sum(want.values())


def test_an_overlong_line_is_never_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    good, _ = good_lines(3)
    with open(path, "wb") as f:
        f.write(good[0])
        for _ in range(12):
            f.write(b"y" * (1 << 20))
        f.write(b"\n" + good[1] + good[2])
    tracemalloc.start()
    try:
        snap = scan([path], jobs=1).snapshot()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert snap.events == 3
    assert snap.rejected_reasons == {"line too long": 1}
    assert peak < 5 * MAX_LINE_BYTES  # a few chunks, not the 12 MiB line


def test_read_batches_splits_exactly() -> None:
    data = b"a\nbb\n\nccc"
    out: list[bytes] = []
    for batch in read_batches(io.BytesIO(data)):
        assert isinstance(batch, list)
        out.extend(batch)
    assert out == [b"a", b"bb", b"", b"ccc"]
    out = [line for batch in read_batches(io.BytesIO(data), 2, 5) for line in batch]  # type: ignore[union-attr]
    assert out == [b"bb"]


def test_byte_ranges_cover_every_line_once(tmp_path: Path) -> None:
    files = []
    for k in range(3):
        path = tmp_path / f"f{k}.jsonl"
        path.write_bytes(b"".join(good_lines(300 + 50 * k, seed=k)[0]))
        files.append(path)
    for parts in (1, 2, 3, 7, 40):
        tasks = plan(files, parts)
        assert 1 <= len(tasks) <= parts
        seen: dict[str, list[tuple[int, int]]] = {}
        for task in tasks:
            for seg in task:
                seen.setdefault(seg.path, []).append((seg.start, seg.end))
                with open(seg.path, "rb") as f:
                    f.seek(seg.start)
                    chunk = f.read(seg.end - seg.start)
                assert chunk.endswith(b"\n")
                if seg.start:
                    with open(seg.path, "rb") as f2:
                        f2.seek(seg.start - 1)
                        assert f2.read(1) == b"\n"
        for path in files:
            spans = sorted(seen[str(path)])
            assert spans[0][0] == 0 and spans[-1][1] == path.stat().st_size
            assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


def test_parallel_scan_equals_sequential_with_duplicates_across_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    ids = IdSource()
    lines, total = good_lines(1200, ids=ids)
    # The second half repeats 100 lines of the first (a resent batch), and a
    # second file is a copy of part of the first (a log read twice).
    body = lines + lines[100:200] + [b"not json at all\n"]
    (tmp_path / "a.jsonl").write_bytes(b"".join(body))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl").write_bytes(b"".join(lines[500:700]))
    (tmp_path / "ignored.txt").write_bytes(b"garbage\n")
    one = scan([tmp_path], jobs=1).snapshot().to_json()
    many = scan([tmp_path], jobs=3).snapshot().to_json()
    assert one["events"] == 1200
    assert one["duplicates"] == 300
    assert Decimal(one["cost_usd"]) == total
    assert one["rejected"] == 1
    assert rounded(many) == rounded(one)


def rounded(value: object) -> object:
    """Floats to 9 significant digits: sums of latencies depend on the order of addition."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_since_and_until_filter_by_event_time(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"".join(good_lines(100)[0]))
    snap = scan([path], since=T0 + 10, until=T0 + 20).snapshot()
    assert snap.events == 10
    assert snap.first_ts == T0 + 10 and snap.last_ts == T0 + 19


def test_missing_paths_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="no such file"):
        scan([tmp_path / "nope.jsonl"])
    assert expand([tmp_path]) == []
    assert scan([tmp_path]).snapshot().events == 0


def test_foreign_format_files_are_read_through_their_parser(tmp_path: Path) -> None:
    line = (
        b'{"type":"assistant","sessionId":"s-1","uuid":"u-1","timestamp":"2025-11-27T04:00:00Z",'
        b'"message":{"id":"msg_1","model":"claude-3-5-sonnet-20241022","role":"assistant",'
        b'"usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":100,'
        b'"cache_creation_input_tokens":0}},"requestId":"req_1"}\n'
    )
    path = tmp_path / "session.jsonl"
    path.write_bytes(line + line + b"garbage\n")
    snap = scan([path]).snapshot()
    assert snap.events == 1  # the repeated line is a duplicate, by its message+request id
    assert snap.duplicates == 1
    assert snap.rejected == 1
    assert snap.total.tokens.cache_read_tokens == 100


GOOD, GOOD_TOTAL = good_lines(40, seed=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.binary(max_size=80),
                          st.builds(lambda i, cut: GOOD[i][:cut], st.integers(0, 39), st.integers(0, 200))),
                max_size=40),
       st.randoms(use_true_random=False))
def test_garbage_between_good_lines_never_changes_their_counts(
    tmp_path: Path, junk: list[bytes], rnd: random.Random
) -> None:
    body = list(GOOD)
    for piece in junk:
        body.insert(rnd.randrange(len(body) + 1), piece.rstrip(b"\n") + b"\n")
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"".join(body))
    snap = scan([path], jobs=1).snapshot()
    assert snap.events == 40
    assert snap.total.cost_usd == GOOD_TOTAL


def test_a_bad_line_in_a_block_never_hides_the_good_ones_around_it(tmp_path: Path) -> None:
    # One decode_lines call per block fails whole on a bad line; that block is
    # then read line by line, so every good line still counts exactly once.
    good, total = good_lines(400, seed=7)
    path = tmp_path / "mixed.jsonl"
    body = [*good[:150], BAD_LINES[0][0], b"\n", b"  \n", *good[150:300], BAD_LINES[5][0], *good[300:]]
    path.write_bytes(b"".join(body))
    snap = scan([path], jobs=1).snapshot()
    assert snap.events == 400
    assert snap.total.cost_usd == total
    assert snap.rejected_reasons == {"not json": 1, "bad usage.input_tokens": 1}


def test_read_blocks_yields_whole_lines_and_skips_overlong_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from flightdeck.ingest.scan import read_blocks

    monkeypatch.setattr(scan_mod, "CHUNK_BYTES", 8)
    monkeypatch.setattr(scan_mod, "MAX_LINE_BYTES", 10)
    data = b"a\nbb\n\n" + b"x" * 25 + b"\nccc\n" + b"y" * 11 + b"\ndd\n" + b"z" * 9 + b"\nlast"
    out = list(read_blocks(io.BytesIO(data)))
    lines = [line for block in out if isinstance(block, bytes) for line in block.split(b"\n") if line]
    assert lines == [b"a", b"bb", b"ccc", b"dd", b"z" * 9, b"last"]
    assert [block for block in out if isinstance(block, int)] == [25, 11]
    assert all(block.endswith(b"\n") for block in out[:-1] if isinstance(block, bytes))
    assert b"".join(b for b in read_blocks(io.BytesIO(data), 2, 5) if isinstance(b, bytes)) == b"bb\n"


def test_each_foreign_file_gets_its_own_parser(tmp_path: Path) -> None:
    if not scan_mod.FORMATS:
        pytest.skip("no foreign formats")
    name, shared = next(iter((n, f) for n, f in scan_mod.FORMATS.items() if n != scan_mod.V1))
    a, b = scan_mod._fresh_format(name), scan_mod._fresh_format(name)
    assert type(a) is type(shared) and a is not shared and a is not b
    assert scan_mod._fresh_format(None) is None


def test_cache_savings_over_days_and_models_equal_the_per_call_rates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Savings with flat, tiered and dated (time of day) prices, over several
    days, sequential and parallel (workers forked after the parent loaded the
    price data), equal each call's own rates summed exactly."""
    from flightdeck.core.pricing import default_pricer

    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    models = [("anthropic", "claude-3-5-sonnet", "direct"),  # flat
              ("google", "gemini-2.5-pro", "direct"),  # tiered at 200k prompt tokens
              ("deepseek", "deepseek-chat", "direct"),  # dated: off-peak hours
              ("cohere", "some-new-model-x", "direct")]  # unknown: saves nothing
    rng = random.Random(7)
    ids = IdSource()
    pricer = default_pricer()
    lines: list[bytes] = []
    expected: dict[str, Decimal] = {}
    for i in range(1500):
        ts = T0 + i * 347.0  # ~6 days, every time of day
        provider, model, route = rng.choice(models)
        usage = Usage(input_tokens=rng.randrange(1, 5000), output_tokens=1,
                      cache_read_tokens=rng.choice([0, 1000, 100_000, 198_000, 250_000]),
                      cache_write_tokens=rng.choice([0, 500]))
        lines.append(encode_event(Event(v=1, ts=ts, kind="llm_call", id=ids(), run="r", provider=provider,
                                        route=route, model=model, usage=usage, cost_usd="0.001",
                                        cost_status="priced")))
        rates = pricer.rates(provider, model, ts, route=route)
        saved = Decimal(0)
        if rates is not None and usage.cache_read_tokens:
            r = rates.for_prompt(usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens)
            saved = max(Decimal(0), (r.input - r.cache_read) * usage.cache_read_tokens / 1_000_000)
        expected[model] = expected.get(model, Decimal(0)) + saved
    assert len({v for v in expected.values() if v}) == 3  # three models priced, each differently
    (tmp_path / "a.jsonl").write_bytes(b"".join(lines))
    for jobs in (1, 2):
        snap = scan([tmp_path / "a.jsonl"], jobs=jobs).snapshot()
        assert snap.total.cache_saved_usd == sum(expected.values())
        assert {g.key: g.figures.cache_saved_usd for g in snap.breakdowns["model"]} == expected


def test_foreign_logs_are_cut_between_files_not_inside_them(tmp_path: Path) -> None:
    """Claude Code repeats a response on consecutive lines: ranges must not split a file."""
    import json

    def cc_line(msg_id: str, req: str, session: str) -> bytes:
        return json.dumps({
            "type": "assistant", "sessionId": session, "requestId": req, "uuid": "u",
            "timestamp": "2025-10-01T10:00:00.000Z",
            "message": {"id": msg_id, "type": "message", "role": "assistant",
                        "model": "claude-sonnet-4-5-20250929", "content": [],
                        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
                                  "cache_creation_input_tokens": 0}},
        }).encode()

    files = []
    for n in range(5):
        path = tmp_path / f"session-{n}.jsonl"
        lines = []
        for k in range(40):
            msg = f"msg_{n}_{k}"
            lines += [cc_line(msg, f"req_{n}_{k}", f"s{n}")] * 2  # two blocks, one response
        path.write_bytes(b"\n".join(lines) + b"\n")
        files.append(path)
    tasks = plan(files, 2)
    assert len(tasks) == 2
    for task in tasks:
        for seg in task:
            assert seg.start == 0 and seg.end == Path(seg.path).stat().st_size
    whole = scan([tmp_path], jobs=1)
    split = scan([tmp_path], jobs=2)
    assert whole.events == split.events == 200
    assert whole.duplicates == split.duplicates == 200


def test_repeated_claude_code_lines_count_as_add_would_count_them(tmp_path: Path) -> None:
    """The scan counts a repeat of the event it added last without add(): same figures.

    Repeats adjacent, interleaved with another response, across files, and
    outside a since/until window; the reference adds every parsed event.
    """
    import json

    from flightdeck.core.aggregate import Aggregator
    from flightdeck.ingest.formats import FileFormat

    def cc_line(msg_id: str, minute: int) -> bytes:
        return json.dumps({
            "type": "assistant", "sessionId": "s", "requestId": "req_" + msg_id, "uuid": "u",
            "timestamp": f"2025-10-01T10:{minute:02d}:00.000Z",
            "message": {"id": msg_id, "model": "claude-sonnet-4-5-20250929",
                        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
                                  "cache_creation_input_tokens": 0}},
        }).encode()

    rng = random.Random(7)
    files = []
    for n in range(3):
        lines = []
        for k in range(60):
            msg = f"m{rng.randrange(40)}"  # some responses recur in later files (a resumed session)
            lines += [cc_line(msg, k)] * rng.randrange(1, 4)
            if rng.random() < 0.3:  # a response's blocks around another one's
                lines.insert(len(lines) - 1, cc_line(f"x{n}_{k}", k))
        path = tmp_path / f"s{n}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        files.append(path)
    lo, hi = 1_759_312_800.0 + 10 * 60, 1_759_312_800.0 + 50 * 60  # 10:10 to 10:50
    for since, until in ((None, None), (lo, hi)):
        ref = Aggregator(live=False)
        for path in files:
            parser = FileFormat()
            parsed: list[Event] = []
            for line in path.read_bytes().splitlines():
                result = parser.parse(line)
                assert isinstance(result, list)
                parsed.extend(result)
            parsed.extend(parser.flush())  # the file ended: what the reader held is complete
            ref.duplicates += parser.take_copies()  # a held response's other copies
            for ev in parsed:
                if (since is None or since <= ev.ts) and (until is None or ev.ts < until):
                    ref.add(ev)
        got = scan(files, jobs=1, since=since, until=until)
        assert (got.events, got.duplicates) == (ref.events, ref.duplicates)
        assert got.duplicates > 100 and got.snapshot(now=0).total == ref.snapshot(now=0).total


@pytest.mark.parametrize(("body", "expected"), [
    (b"x" * 30_000 + b"\n" + b'{"type":"user","sessionId":"s"}\n', "claude-code"),  # past the first read
    (b"junk\n" * 49 + b'{"v":1,"kind":"llm_call","run":"r"}\n', "flightdeck-v1"),  # the 50th line
    (b"junk\n" * 50 + b'{"type":"user","sessionId":"s"}\n', None),  # the 51st line is not looked at
    (b"junk\n" * 60 + b'{"type":"user","sessionId":"s"}', "claude-code"),  # the partial (last) line is
    (b"x" * (1 << 20) + b"\n" + b'{"type":"user","sessionId":"s"}\n', None),  # beyond the head
    (b"", None),
])
def test_detect_file_format_reads_only_the_head(tmp_path: Path, body: bytes, expected: str | None) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(body)
    assert scan_mod.detect_file_format(path) == expected


# --- odd files, odd bytes (issue 9) -------------------------------------------------


def _report(*args: str) -> subprocess.CompletedProcess[str]:
    # A hang is the bug: the timeout turns it into a failure instead of a stuck suite.
    return subprocess.run([sys.executable, "-m", "flightdeck", "report", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_fifo_or_device_named_as_path_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    out = _report(str(fifo))
    assert out.returncode == 2 and "a FIFO, not a regular file" in out.stderr
    out = _report("/dev/zero")
    assert out.returncode == 2 and "a character device, not a regular file" in out.stderr


def test_a_fifo_in_a_folder_is_skipped_with_a_notice(tmp_path: Path) -> None:
    good, _total = good_lines(5)
    (tmp_path / "a.jsonl").write_bytes(b"".join(good))
    os.mkfifo(tmp_path / "b.jsonl")
    notices: list[str] = []
    snap = scan([tmp_path], jobs=1, notices=notices).snapshot()
    assert snap.events == 5
    assert notices == [f"{tmp_path / 'b.jsonl'}: a FIFO, not a regular file: not read"]
    out = _report(str(tmp_path), "--json")
    assert out.returncode == 0 and "a FIFO" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["events"] == 5 and len(doc["notices"]) == 1


def test_a_file_replaced_by_a_fifo_after_listing_is_not_opened(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"".join(good_lines(3)[0]))
    with pytest.raises(OSError, match="FIFO"):
        os.unlink(path)
        os.mkfifo(path)
        scan_mod.open_log(path)


def test_a_byte_order_mark_does_not_cost_the_first_line(tmp_path: Path) -> None:
    good, total = good_lines(4)
    path = tmp_path / "bom.jsonl"
    path.write_bytes(scan_mod.BOM + b"".join(good))
    snap = scan([path], jobs=1).snapshot()
    assert snap.events == 4 and snap.rejected == 0 and snap.total.cost_usd == total
    cc = tmp_path / "cc.jsonl"
    cc.write_bytes(scan_mod.BOM + cc_line())
    assert scan_mod.detect_file_format(cc) == "claude-code"


def test_a_deeply_nested_line_is_one_rejected_line(tmp_path: Path) -> None:
    good, _total = good_lines(6)
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b"".join(good[:3]) + b'{"a":' * 100_000 + b"\n" + b"".join(good[3:]))
    snap = scan([path], jobs=1).snapshot()
    assert snap.events == 6 and snap.rejected == 1
    deep_first = tmp_path / "deep_first.jsonl"
    deep_first.write_bytes(b"[" * 100_000 + b"\n" + b"".join(good))
    out = _report(str(deep_first), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["events"] == 6


def test_report_sums_the_largest_counts_exactly(tmp_path: Path) -> None:
    top = 10**15 - 1
    ids = IdSource()
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(
        encode_event(Event(v=1, ts=T0 + i, kind="llm_call", id=ids(), run="r", provider="openai", model="m",
                           usage=Usage(input_tokens=top, output_tokens=top, cache_read_tokens=top,
                                       cache_write_tokens=top, reasoning_tokens=top),
                           cost_usd="999999999.999999", cost_status="priced"))
        for i in range(2)))
    out = _report(str(path), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["tokens"]["input_tokens"] == 2 * top and doc["cost_usd"] == "1999999999.999998"
    table = _report(str(path))
    assert table.returncode == 0 and f"{2 * top:,}" in table.stdout
