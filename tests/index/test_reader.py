"""The index gives what a fresh read gives, to the micro-dollar and the token,
cold, warm, after appends, after truncation and replacement."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core.report import report_json
from flightdeck.index import store
from flightdeck.index.reader import scan_indexed
from flightdeck.ingest.scan import scan
from tests.index.conftest import v1_lines

DIMS = ("model", "run", "agent", "name")
NOW = 1_900_000_000.0


def figures(agg: Any) -> dict[str, Any]:
    doc = report_json(agg.snapshot(now=NOW), DIMS)
    doc.pop("recent_rejects", None)  # carries the wall-clock time each reject was counted
    return doc


def fresh(paths: list[Path], **kw: Any) -> dict[str, Any]:
    return figures(scan(paths, jobs=1, by=DIMS, **kw))


def indexed(paths: list[Path], root: Path, notices: list[str] | None = None, *, summary: bool = False,
            **kw: Any) -> dict[str, Any]:
    """The figures through the index; without ``summary``, the stored summaries
    are dropped first, so the per-file entries are what is read."""
    if not summary:
        for p in root.glob("index/*.sum"):
            p.unlink()
    return figures(scan_indexed(paths, by=DIMS, root=root, notices=notices, **kw))


def entries(root: Path) -> list[store.Entry]:
    out = []
    for p in sorted((root / "index").glob("*.idx")):
        e = store.load(p)
        assert e is not None
        out.append(e)
    return out


@pytest.mark.parametrize("history", ["v1_history", "cc_history"])
def test_cold_and_warm_equal_fresh(history: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    logs: Path = request.getfixturevalue(history)
    root = tmp_path / "cache"
    want = fresh([logs])
    assert want["events"] > 0 and want["duplicates"] > 0
    assert indexed([logs], root) == want  # cold: builds the index
    assert entries(root)
    assert indexed([logs], root) == want  # warm: from the index


def test_since_until_from_one_index(v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    indexed([v1_history], root)
    lo, hi = 1_764_002_000.0, 1_764_007_000.0
    assert indexed([v1_history], root, since=lo, until=hi) == fresh([v1_history], since=lo, until=hi)


def test_since_counts_claude_code_repeats_as_fresh(cc_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    indexed([cc_history], root)
    first = fresh([cc_history])
    assert first["duplicates"] > 0
    times = sorted(float(e.ts) for entry in entries(root) for e in entry.events)
    mid = times[len(times) // 2]
    assert indexed([cc_history], root, since=mid) == fresh([cc_history], since=mid)


def test_v1_append_parses_only_new_bytes(v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    indexed([v1_history], root)
    a = v1_history / "a.jsonl"
    before = {e.ino: e for e in entries(root)}[os.stat(a).st_ino]
    with open(a, "ab") as f:  # 1 % new lines, one of them a repeat from b.jsonl's range
        f.write(b"\n".join(v1_lines(random.Random(9), 4, 1_764_009_000.0, "new")) + b"\n")
    with open(v1_history / "c.jsonl", "ab") as f:  # completes the unfinished line, adds one
        f.write(b"\n" + v1_lines(random.Random(10), 1, 1_764_009_500.0, "c2")[0] + b"\n")
    assert indexed([v1_history], root) == fresh([v1_history])
    after = {e.ino: e for e in entries(root)}[os.stat(a).st_ino]
    assert after.offset == a.stat().st_size > before.offset
    assert len(after.events) == len(before.events) + 4
    assert after.events[: len(before.events)] == before.events  # extended, not re-read


def test_cc_grown_and_new_sessions(cc_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    indexed([cc_history], root)
    files = sorted(cc_history.rglob("*.jsonl"), key=str)
    grown = files[1]
    lines = grown.read_bytes().splitlines(keepends=True)
    with open(grown, "ab") as f:  # the session goes on: its last lines again, as a resume writes them
        f.writelines(lines[-max(1, len(lines) // 100):])
    shutil.copy(files[2], cc_history / files[0].parent.name / "new-session.jsonl")
    assert indexed([cc_history], root) == fresh([cc_history])


@pytest.mark.parametrize("change", ["truncate", "replace", "rotate"])
def test_shrunk_replaced_rotated_files_are_reread(change: str, v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    indexed([v1_history], root)
    a = v1_history / "a.jsonl"
    data = a.read_bytes()
    if change == "truncate":
        with open(a, "r+b") as f:
            f.truncate(len(data) // 2)
    elif change == "replace":  # same size, new content, new inode
        other = b"\n".join(v1_lines(random.Random(77), 400, 1_764_100_000.0, "x")) + b"\n"
        tmp = v1_history / "a.tmp"
        tmp.write_bytes(other)
        os.replace(tmp, a)
    else:  # rotated: a.jsonl moved aside (keeps its entry), a new a.jsonl begins
        os.rename(a, v1_history / "a.jsonl.1")
        a.write_bytes(b"\n".join(v1_lines(random.Random(78), 5, 1_764_200_000.0, "y")) + b"\n")
    assert indexed([v1_history], root) == fresh([v1_history])
    assert indexed([v1_history], root) == fresh([v1_history])


def test_rewritten_head_same_inode_is_reread(v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    indexed([v1_history], root)
    a = v1_history / "a.jsonl"
    new = b"\n".join(v1_lines(random.Random(79), 500, 1_764_300_000.0, "z")) + b"\n"
    with open(a, "r+b") as f:  # rewritten in place, longer: same inode, other first bytes
        f.write(new)
    assert indexed([v1_history], root) == fresh([v1_history])


@pytest.mark.parametrize("history", ["v1_history", "cc_history"])
def test_summary_serves_an_unchanged_history_and_only_that(history: str, request: pytest.FixtureRequest,
                                                            tmp_path: Path) -> None:
    logs: Path = request.getfixturevalue(history)
    root = tmp_path / "cache"
    want = fresh([logs])
    assert indexed([logs], root, summary=True) == want
    (summary,) = root.glob("index/*.sum")
    for p in root.glob("index/*.idx"):  # a hit reads no entry at all
        p.unlink()
    assert indexed([logs], root, summary=True) == want
    assert not list(root.glob("index/*.idx"))
    log = sorted(logs.rglob("*.jsonl"), key=str)[-1]
    with open(log, "ab") as f:  # any change: the summary no longer matches
        f.write(log.read_bytes().splitlines(keepends=True)[0])
    assert indexed([logs], root, summary=True) == fresh([logs])
    assert list(root.glob("index/*.idx"))
    summary.write_bytes(b"FDIS\x01\x00torn")  # torn: ignored, rebuilt
    assert indexed([logs], root, summary=True) == fresh([logs])
    assert indexed([logs], root, summary=True, since=1_764_003_000.0) == fresh([logs], since=1_764_003_000.0)


def test_capture_keeps_a_repeat_after_its_batch() -> None:
    from flightdeck.core.events import Event
    from flightdeck.index.reader import Capture

    a = Event(ts=1.0, kind="llm_call", id="a", run="r")
    b = Event(ts=2.0, kind="llm_call", id="b", run="r")
    cap = Capture()
    cap.keep_repeat(a)  # met while the batch holding a was gathered
    cap.add_many([a, b])
    cap.reject("bad json", "line 3")
    assert cap.events == [a, b, a]  # replayed: a counted once, its repeat a duplicate, as a fresh read counts it
    assert cap.rejects == [("bad json", "line 3")]


def test_a_log_too_big_for_an_entry_is_streamed_not_stored(v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    big = v1_history / "b.jsonl"
    limit = (big.stat().st_size - 1) * 8  # v1: an eighth of the limit
    want = fresh([v1_history])
    assert indexed([v1_history], root, max_entry_bytes=limit) == want
    small = {os.stat(p).st_ino for p in v1_history.iterdir() if p.stat().st_size <= limit // 8}
    assert small and {e.ino for e in entries(root)} == small  # the big ones have no entry
    assert indexed([v1_history], root, max_entry_bytes=limit) == want


def test_an_agent_cli_log_gets_the_whole_limit(cc_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    logs = sorted(cc_history.rglob("*.jsonl"), key=str)
    biggest = max(p.stat().st_size for p in logs)
    assert indexed([cc_history], root, max_entry_bytes=biggest) == fresh([cc_history])
    assert len(entries(root)) == len(logs)  # a Claude Code log is mostly text: its entry is small
    assert indexed([cc_history], tmp_path / "c2", max_entry_bytes=biggest - 1) == fresh([cc_history])
    assert len(entries(tmp_path / "c2")) == len(logs) - 1


def test_grown_claude_code_log_is_parsed_from_the_stored_offset(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The response held at the old end stays held: its larger copy after the old end wins,
    and only the new bytes are parsed."""
    from flightdeck.index import reader
    from tests.index.test_live import cc_line

    logs = tmp_path / "cc"
    logs.mkdir()
    log = logs / "s.jsonl"
    log.write_bytes(cc_line("msg_a", "req_a", "s", "2026-11-28T12:00:00.000Z", 10, "u1")
                    + cc_line("msg_a", "req_a", "s", "2026-11-28T12:00:00.500Z", 12, "u1b")
                    + cc_line("msg_b", "req_b", "s", "2026-11-28T12:00:10.000Z", 3, "u2"))
    root = tmp_path / "cache"
    assert indexed([logs], root) == fresh([logs])
    old_size = log.stat().st_size
    with open(log, "ab") as f:
        f.write(cc_line("msg_b", "req_b", "s", "2026-11-28T12:00:11.000Z", 500, "u3"))
        f.write(cc_line("msg_c", "req_c", "s", "2026-11-28T12:00:20.000Z", 7, "u4"))
    starts: list[int] = []
    real = reader._capture

    def spy(f: Any, path: str, fmt: str | None, start: int, end: int, parser: Any = None) -> Any:
        starts.append(start)
        return real(f, path, fmt, start, end, parser)

    monkeypatch.setattr(reader, "_capture", spy)
    want = fresh([logs])
    assert want["tokens"]["output_tokens"] == 12 + 500 + 7
    assert indexed([logs], root) == want
    assert starts == [old_size]  # parsed from the old end, not from 0
    (e,) = entries(root)
    assert e.offset == log.stat().st_size and e.held == 1 and e.state
    assert indexed([logs], root) == want  # and warm again from the extended entry


def _spy_base(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, for each report, whether it started from the stored summary."""
    from flightdeck.index import reader

    used: list[bool] = []
    real = reader._from_base

    def spy(*args: Any, **kw: Any) -> Any:
        got = real(*args, **kw)
        used.append(got is not None)
        return got

    monkeypatch.setattr(reader, "_from_base", spy)
    return used


def test_grown_history_starts_from_the_summary(cc_history: Path, v1_history: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Logs that grew (a held response's larger copy among the new lines) and a new session:
    the summary is the base and only new bytes are parsed; money and tokens exact."""
    from tests.index.test_live import cc_line, close_enough

    root = tmp_path / "cache"
    paths = [cc_history, v1_history]
    (v1_history / "c.jsonl").write_bytes((v1_history / "c.jsonl").read_bytes() + b"\n")  # ends its last line
    session = next(p for p in sorted(cc_history.rglob("*.jsonl"), key=str) if p.stat().st_size > 10_000)
    with open(session, "ab") as f:
        f.write(cc_line("msg_h", "req_h", session.stem, "2026-11-28T12:00:00.000Z", 5, "h1"))
    indexed(paths, root, summary=True)
    used = _spy_base(monkeypatch)
    with open(session, "ab") as f:
        f.write(cc_line("msg_h", "req_h", session.stem, "2026-11-28T12:00:01.000Z", 900, "h2"))
    (cc_history / "-home-dev-new").mkdir()
    (cc_history / "-home-dev-new" / "n.jsonl").write_bytes(
        cc_line("msg_n", "req_n", "n", "2026-11-28T13:00:00.000Z", 70, "n1"))
    with open(v1_history / "a.jsonl", "ab") as f:
        f.write(b"\n".join(v1_lines(random.Random(9), 20, 1_764_100_000.0, "grown")) + b"\n")
    got = indexed(paths, root, summary=True)
    want = fresh(paths)
    assert used == [False]  # the held response's larger copy: the summary counted the smaller one
    assert got == want
    # Now without a conflict: only appends of new calls.
    with open(v1_history / "b.jsonl", "ab") as f:
        f.write(b"\n".join(v1_lines(random.Random(10), 20, 1_764_200_000.0, "more")) + b"\n")
    with open(session, "ab") as f:
        f.write(cc_line("msg_i", "req_i", session.stem, "2026-11-28T12:30:00.000Z", 33, "i1"))
    got = indexed(paths, root, summary=True)
    want = fresh(paths)
    assert used == [False, True]
    for k in ("events", "duplicates", "rejected", "cost_usd", "tokens"):
        assert got[k] == want[k], k
    close_enough(got, want)
    assert indexed(paths, root, summary=True) == got  # unchanged since: the new summary answers


def test_new_log_repeating_a_counted_id_reads_all_again(v1_history: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A new log sorted first repeats a call the summary counted, at another cost: a full
    read counts the new log's copy, so the summary must not be the base."""
    root = tmp_path / "cache"
    indexed([v1_history], root, summary=True)
    used = _spy_base(monkeypatch)
    line = (v1_history / "b.jsonl").read_bytes().split(b"\n")[40]
    (v1_history / "0-first.jsonl").write_bytes(line.replace(b'"cost_status":"priced"', b'"cost_status":"reported"')
                                               + b"\n")
    assert indexed([v1_history], root, summary=True) == fresh([v1_history])
    assert used == [False]


def test_jobs_build_the_cold_index_in_workers(cc_history: Path, v1_history: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``report --jobs 2`` on an empty cache: workers parse the logs and hand back their
    entries, the parent writes them and counts them in the listed order. Same figures as
    one process, the same entries field by field, and a warm run replays them."""
    from flightdeck.index import reader
    from flightdeck.ingest import scan as scan_mod

    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 1)  # the test's logs are small
    paths = [cc_history, v1_history]  # b.jsonl repeats a.jsonl's ids; c.jsonl's last line unfinished
    want = fresh(paths)
    one, two = tmp_path / "one", tmp_path / "two"
    assert indexed(paths, one) == want
    built: list[int] = []
    real_take = reader._Builds.take

    def take(self: Any, name: str) -> Any:
        built.append(1)
        return real_take(self, name)

    monkeypatch.setattr(reader._Builds, "take", take)
    assert indexed(paths, two, jobs=2) == want
    n_logs = len(list(cc_history.rglob("*.jsonl"))) + len(list(v1_history.glob("*.jsonl")))
    assert len(built) == n_logs  # every log was built by a worker
    by_file = {(e.dev, e.ino): e for e in entries(one)}
    got = entries(two)
    assert len(got) == len(by_file) == n_logs
    for e in got:
        assert e == by_file[(e.dev, e.ino)]  # the same entry, field by field
    built.clear()
    captured: list[str] = []
    real_capture = reader._capture

    def capture(*args: Any, **kw: Any) -> Any:
        captured.append(args[1])
        return real_capture(*args, **kw)

    monkeypatch.setattr(reader, "_capture", capture)
    assert indexed(paths, two, jobs=2) == want  # warm (summary dropped): the entries replayed
    assert built == []
    assert captured == [str(v1_history / "c.jsonl")]  # only the unfinished last line, never stored
    assert indexed(paths, two, jobs=2, summary=True) == want
