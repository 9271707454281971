"""``tail --once`` and the engine's backfill through the resumable index (``index.live``):
the same figures as without it, to the micro-dollar and the token, whatever happened
to the logs in between."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core.snapshot import Snapshot
from flightdeck.index import store
from flightdeck.index.live import FollowIndex
from flightdeck.ingest.engine import Engine

CLOCK = 1_800_000_000.0  # after every generated line: windows are empty and stable


def tail_once(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "flightdeck", "tail", *args, "--once", "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    doc: dict[str, Any] = json.loads(proc.stdout)
    doc.pop("now")  # the wall clock of each run
    doc.pop("recent_rejects", None)
    doc["source"].pop("last_event_wall")
    return doc


def follow_entries() -> list[Path]:
    return sorted((Path.home() / ".cache" / "flightdeck" / "index").glob("*.fol"))


def cc_line(msg_id: str, request: str, session: str, ts: str, output: int, uuid: str) -> bytes:
    """One Claude Code 2.x assistant line (the field names of a real session log)."""
    doc = {
        "parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/home/dev/p",
        "sessionId": session, "version": "2.0.14", "gitBranch": "main", "type": "assistant", "uuid": uuid,
        "timestamp": ts,
        "message": {"id": msg_id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                    "content": [{"type": "text", "text": "x"}], "stop_reason": None, "stop_sequence": None,
                    "usage": {"input_tokens": 3, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000,
                              "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
                              "output_tokens": output, "service_tier": "standard"}},
        "requestId": request,
    }
    return json.dumps(doc).encode() + b"\n"


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_tail_once_cached_equals_no_cache(cc_history: Path, v1_history: Path) -> None:
    paths = (str(cc_history), str(v1_history))
    want = tail_once(*paths, "--no-cache")
    assert not follow_entries()  # --no-cache neither reads nor writes the index
    cold = tail_once(*paths)
    entries = follow_entries()
    assert entries
    for entry in entries:
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    warm = tail_once(*paths)
    assert cold == want
    assert warm == want
    assert want["events"] > 1000 and want["duplicates"] > 0 and want["rejected"] > 0


def test_tail_once_after_changes(cc_history: Path, v1_history: Path, tmp_path: Path) -> None:
    """Appends (one extending a held response), new sessions, truncation, replacement, rotation."""
    paths = (str(cc_history), str(v1_history))
    tail_once(*paths)  # builds the index
    session = next(p for p in sorted(cc_history.rglob("*.jsonl"), key=str) if p.stat().st_size > 10_000)
    sid = session.stem
    # A response left held at the old end, then its larger copy after it: the larger one must count.
    append(session, cc_line("msg_held_1", "req_h1", sid, "2026-11-28T12:00:00.000Z", 5, "u-1"))
    mid = tail_once(*paths)
    append(session, cc_line("msg_held_1", "req_h1", sid, "2026-11-28T12:00:01.000Z", 900, "u-2"))
    append(session, cc_line("msg_held_2", "req_h2", sid, "2026-11-28T12:00:05.000Z", 40, "u-3"))
    grown = tail_once(*paths)
    # The held response's larger copy counts (900 output tokens, not 5), and the new one.
    assert grown["tokens"]["output_tokens"] - mid["tokens"]["output_tokens"] == 895 + 40
    assert grown == tail_once(*paths, "--no-cache")
    new = cc_history / "-home-dev-new"
    new.mkdir()
    (new / "fresh.jsonl").write_bytes(cc_line("msg_new_1", "req_n1", "fresh", "2026-11-28T13:00:00.000Z", 77, "u-4"))
    (v1_history / "c.jsonl").write_bytes((v1_history / "c.jsonl").read_bytes()[:5000].rsplit(b"\n", 1)[0] + b"\n")
    replaced = v1_history / "a.jsonl"
    data = replaced.read_bytes()
    replaced.unlink()
    replaced.write_bytes(data[len(data) // 3 :].split(b"\n", 1)[1])  # another inode, other lines
    os.rename(v1_history / "b.jsonl", v1_history / "b.jsonl.1")  # rotated: a new b.jsonl
    (v1_history / "b.jsonl").write_bytes((v1_history / "b.jsonl.1").read_bytes()[:3000].rsplit(b"\n", 1)[0] + b"\n")
    want = tail_once(*paths, "--no-cache")
    got = tail_once(*paths)
    assert got == want
    assert tail_once(*paths) == want


def snapshot_fields(snap: Snapshot) -> dict[str, Any]:
    doc = dataclasses.asdict(snap)
    doc.pop("source")
    doc.pop("recent_rejects", None)
    return doc


def backfill(paths: list[str], index: FollowIndex | None, *, settle: bool = True) -> Snapshot:
    """The snapshot after one Engine's backfill (the cockpit's: ``settle=False``)."""
    engine = Engine(paths, clock=lambda: CLOCK, index=index)
    engine.backfill(settle=settle, final=settle)
    snap = engine.snapshot()
    engine.stop()
    return snap


def test_engine_backfill_snapshot_equal_field_by_field(cc_history: Path, v1_history: Path, tmp_path: Path) -> None:
    paths = [str(cc_history), str(v1_history)]
    root = tmp_path / "cache"
    want = backfill(paths, None)
    cold_index = FollowIndex(root)
    cold = backfill(paths, cold_index)
    files = len(list(cc_history.rglob("*.jsonl"))) + len(list(v1_history.glob("*.jsonl")))
    assert cold_index.saved == files and cold_index.resumed == 0
    warm_index = FollowIndex(root)
    warm = backfill(paths, warm_index)
    assert warm_index.resumed == files and warm_index.saved == 0  # nothing new: nothing written
    assert snapshot_fields(cold) == snapshot_fields(want)
    assert snapshot_fields(warm) == snapshot_fields(want)
    assert warm.source.backfill_done_bytes == warm.source.backfill_total_bytes


def test_cockpit_backfill_keeps_held_responses_held(tmp_path: Path) -> None:
    """The cockpit's backfill (settle=False) stores the reader still holding a response;
    a later run that sees its larger copy counts that copy, as one that read it all would."""
    log = tmp_path / "s.jsonl"
    log.write_bytes(cc_line("msg_a", "req_a", "s", "2026-11-28T12:00:00.000Z", 10, "u1")
                    + cc_line("msg_b", "req_b", "s", "2026-11-28T12:00:10.000Z", 3, "u2"))
    root = tmp_path / "cache"
    index = FollowIndex(root)
    snap = backfill([str(log)], index, settle=False)
    assert index.saved == 1
    assert snap.total.tokens.output_tokens == 10  # msg_b is held: its last copy may be on its way
    append(log, cc_line("msg_b", "req_b", "s", "2026-11-28T12:00:11.000Z", 500, "u3"))
    warm = FollowIndex(root)
    got = backfill([str(log)], warm)
    want = backfill([str(log)], None)
    assert warm.resumed == 1
    assert got.total.tokens.output_tokens == want.total.tokens.output_tokens == 510
    assert snapshot_fields(got) == snapshot_fields(want)


def test_engine_index_never_writes_the_log(tmp_path: Path, v1_history: Path) -> None:
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in v1_history.glob("*.jsonl")}
    root = tmp_path / "cache"
    for _ in range(2):
        backfill([str(v1_history)], FollowIndex(root))
    assert before == {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in v1_history.glob("*.jsonl")}
    folder = root / "index"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())


def test_corrupt_entry_is_ignored_with_a_notice(tmp_path: Path, v1_history: Path) -> None:
    root = tmp_path / "cache"
    paths = [str(v1_history)]
    want = backfill(paths, None)
    backfill(paths, FollowIndex(root))
    for state in (root / "index").glob("engine-*.sum"):
        state.unlink()  # else the whole engine state answers, without reading any entry
    entry = next((root / "index").glob("*.fol"))
    entry.write_bytes(entry.read_bytes()[:40])  # torn
    index = FollowIndex(root)
    got = backfill(paths, index)
    assert snapshot_fields(got) == snapshot_fields(want)
    assert any("index entry ignored" in n for n in got.source.notices)
    assert index.saved == 1  # rebuilt
    assert store.load_follow(entry) is not None


def test_rewritten_in_place_is_read_again(tmp_path: Path, v1_history: Path) -> None:
    """Same inode, same head, longer, but other bytes before the stored offset: not resumed."""
    root = tmp_path / "cache"
    log = v1_history / "a.jsonl"
    backfill([str(log)], FollowIndex(root))
    data = log.read_bytes()
    lines = data.split(b"\n")
    with open(log, "r+b") as f:  # the same inode: rewrite the second half, then add lines
        f.write(b"\n".join(lines[:200] + lines[300:] + lines[200:300]) + b"\n" + b"\n".join(lines[5:50]) + b"\n")
    index = FollowIndex(root)
    got = backfill([str(log)], index)
    want = backfill([str(log)], None)
    assert index.resumed == 0
    assert snapshot_fields(got) == snapshot_fields(want)


def test_other_pricing_is_read_again(tmp_path: Path, v1_history: Path) -> None:
    root = tmp_path / "cache"
    backfill([str(v1_history)], FollowIndex(root))
    prices = tmp_path / "prices.toml"
    prices.write_text('[[rate]]\nmodel = "claude-haiku-4-5"\ninput = "1.00"\noutput = "5.00"\n')
    index = FollowIndex(root, prices=prices)
    backfill([str(v1_history)], index)
    assert index.resumed == 0


def test_unsafe_cache_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    (root / "index").symlink_to(target)
    with pytest.raises(store.IndexUnavailable):
        FollowIndex(root)
    shutil.rmtree(target)


def test_unchanged_history_restores_the_whole_engine(tmp_path: Path, cc_history: Path, v1_history: Path) -> None:
    """No file changed: the engine's stored state answers (no entry read, no event replayed),
    and the snapshot, the recent calls included, is what a cold read gives."""
    paths = [str(cc_history), str(v1_history)]
    root = tmp_path / "cache"
    want = backfill(paths, None)
    backfill(paths, FollowIndex(root))
    for entry in (root / "index").glob("*.fol"):
        entry.unlink()
    index = FollowIndex(root)
    got = backfill(paths, index)
    assert index.resumed > 0 and index.saved == 0
    assert snapshot_fields(got) == snapshot_fields(want)
    assert got.recent == want.recent
    # A torn state is ignored: the files are read again, with the same result.
    state = next((root / "index").glob("engine-*.sum"))
    state.write_bytes(state.read_bytes()[:100])
    again = FollowIndex(root)
    assert snapshot_fields(backfill(paths, again)) == snapshot_fields(want)
    assert again.saved > 0


def close_enough(got: Any, want: Any, where: str = "") -> None:
    """Equal, except floats (latency means, rates), which may differ in their last bits
    when the calls were summed in another grouping; money and tokens are exact."""
    if isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-9), where
    elif isinstance(want, dict) and isinstance(got, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            close_enough(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            close_enough(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


def figures(snap: Snapshot) -> dict[str, Any]:
    doc: dict[str, Any] = snap.to_json()  # what tail --json prints (no source: added by the feed)
    doc.pop("now")
    return doc


def test_grown_history_starts_from_the_stored_state(tmp_path: Path, v1_history: Path) -> None:
    """A file grew and one appeared: the stored state is the base, only the new lines are parsed."""
    root = tmp_path / "cache"
    backfill([str(v1_history)], FollowIndex(root))
    log = v1_history / "a.jsonl"
    head = log.read_bytes().split(b"\n")[:3]
    append(log, b"\n".join(head).replace(b'"id":"a-', b'"id":"z-') + b"\n")
    (v1_history / "d.jsonl").write_bytes(b"\n".join(head).replace(b'"id":"a-', b'"id":"d-') + b"\n")
    index = FollowIndex(root)
    got = backfill([str(v1_history)], index)
    want = backfill([str(v1_history)], None)
    assert index.resumed == 3 and index.saved == 1  # a, b, c from the state; d.jsonl's entry written
    assert got.events == want.events == backfill([str(v1_history)], None).events
    assert got.total.cost_usd == want.total.cost_usd and got.total.tokens == want.total.tokens
    close_enough(figures(got), figures(want))
    # And from that state again, unchanged: the same.
    close_enough(figures(backfill([str(v1_history)], FollowIndex(root))), figures(want))


def test_new_line_repeating_a_counted_id_reads_again(tmp_path: Path, v1_history: Path) -> None:
    """a.jsonl (read first) gains a copy of a b.jsonl call with another cost: a cold read
    counts a's copy, so the stored state (which counted b's) must not be the base."""
    root = tmp_path / "cache"
    backfill([str(v1_history)], FollowIndex(root))
    b_line = next(line for line in (v1_history / "b.jsonl").read_bytes().split(b"\n") if b'"id":"b-5"' in line)
    doc = json.loads(b_line)
    doc["cost_usd"], doc["cost_status"] = "123.000001", "reported"
    append(v1_history / "a.jsonl", json.dumps(doc).encode() + b"\n")
    index = FollowIndex(root)
    got = backfill([str(v1_history)], index)
    want = backfill([str(v1_history)], None)
    assert got.total.cost_usd == want.total.cost_usd
    assert snapshot_fields(got) == snapshot_fields(want)  # read again in cold order: exact to the bit


async def test_cockpit_opens_on_the_indexed_history(tmp_path: Path, v1_history: Path) -> None:
    """The real cockpit on an engine whose history comes from the index: every call shown,
    as a cold start shows them, and the index was what answered."""
    from flightdeck.cockpit.app import FlightdeckApp
    from tests.cockpit.test_engine import wait_for

    root = tmp_path / "cache"
    want = backfill([str(v1_history)], None, settle=False)
    backfill([str(v1_history)], FollowIndex(root), settle=False)
    index = FollowIndex(root)
    engine = Engine([str(v1_history)], index=index)
    app = FlightdeckApp(engine, refresh_interval=0.05)
    try:
        async with app.run_test(size=(160, 48)):
            # The figures are whole as soon as the state is restored; the header then
            # leaves "backfill" for the arrival rate once the files are followed.
            text = await wait_for(app, f"{want.events} calls", "2 rejected", " ev/s")
            assert f"{want.events} calls" in text and "2 rejected" in text
            assert "backfill" not in text
    finally:
        engine.stop()
    assert index.resumed == 3


def test_restored_readers_are_decoded_only_when_needed(tmp_path: Path, cc_history: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The cockpit's start decodes no stored reader (its figures are in the state), nor
    does ``--once`` (what each holds was worked out when stored), nor a control key press;
    a file that grew decodes its own reader only."""
    from flightdeck.index import live

    paths = [str(cc_history)]
    root = tmp_path / "cache"
    want = backfill(paths, None, settle=False)
    backfill(paths, FollowIndex(root), settle=False)
    decoded: list[int] = []
    real = live.loads_small
    monkeypatch.setattr(live, "loads_small", lambda data: decoded.append(1) or real(data))
    engine = Engine(paths, clock=lambda: CLOCK, index=FollowIndex(root))
    engine.backfill(settle=False)
    assert snapshot_fields(engine.snapshot()) == snapshot_fields(want)
    assert engine.control_paths == []  # no v1 file: nothing to steer, and nothing decoded to say so
    assert decoded == []
    once = Engine(paths, clock=lambda: CLOCK, index=FollowIndex(root))
    once.backfill()
    assert decoded == []
    assert snapshot_fields(once.snapshot()) == snapshot_fields(backfill(paths, None))
    grown = sorted(cc_history.rglob("*.jsonl"), key=str)[0]
    append(grown, cc_line("msg_late", "req_late", grown.stem, "2026-11-28T12:00:00.000Z", 42, "late"))
    after = Engine(paths, clock=lambda: CLOCK, index=FollowIndex(root))
    after.backfill()
    assert len(decoded) == 1  # its reader only: stored again, it is flushed itself, not a decoded copy
    close_enough(figures(after.snapshot()), figures(backfill(paths, None)))


def noted_line(msg_id: str, session: str, ts: str, uuid: str) -> bytes:
    """An assistant line whose usage holds a key no reader knows: accepted, and counted as a note."""
    doc = json.loads(cc_line(msg_id, "req_" + msg_id, session, ts, 30, uuid))
    doc["message"]["usage"]["future_bucket_tokens"] = 11
    return json.dumps(doc).encode() + b"\n"


def report_json(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "flightdeck", "report", *args, "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_notes_are_the_same_with_and_without_the_index(tmp_path: Path) -> None:
    """Lines read only in part (notes) come back from every kind of stored entry: unchanged,
    grown from a stored reader, and a new session beside them (tail --once and report)."""
    folder = tmp_path / "projects" / "-home-dev-p"
    folder.mkdir(parents=True)
    session = folder / "s1.jsonl"
    session.write_bytes(noted_line("msg_n1", "s1", "2026-11-28T10:00:00.000Z", "u-1")
                        + cc_line("msg_p1", "req_p1", "s1", "2026-11-28T10:00:02.000Z", 8, "u-2"))
    path = str(tmp_path / "projects")
    for run in (tail_once, report_json):
        assert run(path) == run(path, "--no-cache")  # cold: builds the index
        warm = run(path)
        assert warm == run(path, "--no-cache") and sum(warm["notes"].values()) == 1
    append(session, noted_line("msg_n2", "s1", "2026-11-28T10:01:00.000Z", "u-3"))
    (folder / "s2.jsonl").write_bytes(noted_line("msg_n3", "s2", "2026-11-28T11:00:00.000Z", "u-4"))
    for run in (tail_once, report_json):
        grown = run(path)
        assert grown == run(path, "--no-cache")
        assert sum(grown["notes"].values()) == 3


@pytest.mark.parametrize("cached", [False, True])
def test_cockpit_backfill_hands_out_what_quiet_files_hold(tmp_path: Path, cached: bool) -> None:
    """A session last written long ago is quiet already: the cockpit's backfill counts its
    last response at once (it waited SETTLE_SECONDS after the start); a file written just
    now keeps holding it, its last copy may be on its way."""
    old, fresh = tmp_path / "old.jsonl", tmp_path / "fresh.jsonl"
    for log, sid in ((old, "o"), (fresh, "f")):
        log.write_bytes(cc_line(f"msg_{sid}1", f"req_{sid}1", sid, "2026-11-28T12:00:00.000Z", 10, f"{sid}1")
                        + cc_line(f"msg_{sid}2", f"req_{sid}2", sid, "2026-11-28T12:00:10.000Z", 3, f"{sid}2"))
    hour_ago = os.stat(old).st_mtime - 3600
    os.utime(old, (hour_ago, hour_ago))
    index = FollowIndex(tmp_path / "cache") if cached else None
    if index is not None:
        backfill([str(old), str(fresh)], index, settle=False)  # builds the entries (and the engine state)
        index = FollowIndex(tmp_path / "cache")
    snap = backfill([str(old), str(fresh)], index, settle=False)
    assert snap.total.tokens.output_tokens == 10 + 3 + 10  # old: both; fresh: msg_f2 still held
    assert snap.total.calls == 3


@pytest.mark.parametrize("cached", [False, True])
def test_cockpit_backfill_hands_out_what_released_quiet_files_hold(
        tmp_path: Path, cached: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """More files than stay open (``tail.open_limit``): a quiet file whose descriptor was
    given back between polls is as quiet as an open one; its last response counts at the
    end of the backfill (it was held: the follower said it did not know when the file was
    written)."""
    from flightdeck.ingest import tail

    monkeypatch.setattr(tail, "open_limit", lambda: 2)
    logs = [tmp_path / f"s{i}.jsonl" for i in range(6)]
    for i, log in enumerate(logs):
        log.write_bytes(cc_line(f"msg_{i}a", f"req_{i}a", f"s{i}", "2026-11-28T12:00:00.000Z", 10, f"{i}a")
                        + cc_line(f"msg_{i}b", f"req_{i}b", f"s{i}", "2026-11-28T12:00:10.000Z", 3, f"{i}b"))
        hour_ago = os.stat(log).st_mtime - 3600
        os.utime(log, (hour_ago, hour_ago))
    paths = [str(p) for p in logs]
    index = FollowIndex(tmp_path / "cache") if cached else None
    if index is not None:
        backfill(paths, index, settle=False)
        index = FollowIndex(tmp_path / "cache")
    snap = backfill(paths, index, settle=False)
    assert snap.total.calls == 12  # every file's held last response handed out
    assert snap.total.tokens.output_tokens == 6 * (10 + 3)


def test_grown_cockpit_decodes_only_the_grown_readers(tmp_path: Path, cc_history: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The cockpit after one session grew (every file quiet): the stored readers of the
    other files stay undecoded (their held responses come from what was worked out when
    they were stored, after the file-by-file read) and the figures are a cold read's."""
    from flightdeck.index import live

    logs = sorted(cc_history.rglob("*.jsonl"), key=str)
    hour_ago = logs[0].stat().st_mtime - 3600
    for log in logs:
        os.utime(log, (hour_ago, hour_ago))
    root = tmp_path / "cache"
    backfill([str(cc_history)], FollowIndex(root), settle=False)
    grown = logs[1]
    append(grown, cc_line("msg_new1", "req_new1", "s-new", "2026-11-28T12:00:00.000Z", 7, "u-new1"))
    os.utime(grown, (hour_ago, hour_ago))
    decoded: list[int] = []
    real = live.loads_small

    def counted(data: bytes) -> Any:
        decoded.append(len(data))
        return real(data)

    monkeypatch.setattr(live, "loads_small", counted)
    index = FollowIndex(root)
    got = backfill([str(cc_history)], index, settle=False)
    monkeypatch.setattr(live, "loads_small", real)
    want = backfill([str(cc_history)], None, settle=False)
    assert index.resumed == len(logs)
    # The grown file's reader, decoded to read its new line, and stored again with what
    # its flush hands out: no other reader's state is decoded.
    assert 1 <= len(decoded) <= 3
    assert got.total.cost_usd == want.total.cost_usd and got.total.tokens == want.total.tokens
    assert got.total.calls == want.total.calls and got.duplicates == want.duplicates
    close_enough(figures(got), figures(want))


def test_unchanged_cockpit_opens_from_its_settled_state(tmp_path: Path, cc_history: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The cockpit's backfill stores the state it ended with, the quiet files' held
    responses handed out: an unchanged history opens from it with nothing left to count,
    and the figures are a cold cockpit's field by field. A change falls back to the
    state before the hand-out (the base), which still holds what a grown file may extend."""
    logs = sorted(cc_history.rglob("*.jsonl"), key=str)
    hour_ago = logs[0].stat().st_mtime - 3600
    for log in logs:
        os.utime(log, (hour_ago, hour_ago))
    root = tmp_path / "cache"
    want = snapshot_fields(backfill([str(cc_history)], None, settle=False))
    assert snapshot_fields(backfill([str(cc_history)], FollowIndex(root), settle=False)) == want
    assert len(list((root / "index").glob("engine-*.sum"))) == 2  # before and after the hand-out
    counted: list[int] = []
    real = Engine._count

    def count(self: Engine, events: Any, rejects: Any, **kw: Any) -> None:
        counted.append(len(events))
        real(self, events, rejects, **kw)

    monkeypatch.setattr(Engine, "_count", count)
    index = FollowIndex(root)
    assert snapshot_fields(backfill([str(cc_history)], index, settle=False)) == want
    assert sum(counted) == 0 and index.resumed == len(logs) and index.saved == 0
    monkeypatch.setattr(Engine, "_count", real)
    grown = logs[0]
    append(grown, cc_line("msg_new2", "req_new2", "s-new", "2026-11-28T12:00:00.000Z", 5, "u-new2"))
    os.utime(grown, (hour_ago, hour_ago))
    want = snapshot_fields(backfill([str(cc_history)], None, settle=False))
    got = backfill([str(cc_history)], FollowIndex(root), settle=False)
    close_enough(figures(got), figures(backfill([str(cc_history)], None, settle=False)))
    assert got.total.cost_usd == want["total"]["cost_usd"] and got.total.calls == want["total"]["calls"]
    # And the settled state stored by that run serves the next one.
    assert snapshot_fields(backfill([str(cc_history)], FollowIndex(root), settle=False))["total"] == want["total"]


def test_entries_store_a_released_response_once(cc_history: Path, tmp_path: Path) -> None:
    """An event the stored reader still holds (a recently released response) is stored once, in
    the reader's state, and the entry refers to it: read back, the figures are a cold read's; a
    reference past the state's events is refused, said, and the file read again."""
    paths = [str(cc_history)]
    root = tmp_path / "cache"
    want = backfill(paths, None, settle=False)
    backfill(paths, FollowIndex(root), settle=False)  # the cockpit's: readers stored once for both
    folder = store.index_dir(root)
    entries = {p: store.load_follow(p) for p in sorted(folder.glob("*.fol"))}
    refs = [ev for e in entries.values() if e is not None for ev in e.events if isinstance(ev, int)]
    assert refs and len(refs) < sum(len(e.events) for e in entries.values() if e is not None)
    for p in folder.glob("engine-*.sum"):
        p.unlink()  # the per-file entries answer, not the engine's whole state
    index = FollowIndex(root)
    assert snapshot_fields(backfill(paths, index, settle=False)) == snapshot_fields(want)
    assert index.resumed == len(entries)
    for p in folder.glob("engine-*.sum"):
        p.unlink()
    path, entry = next((p, e) for p, e in entries.items()
                       if e is not None and any(isinstance(x, int) for x in e.events))
    entry.events = [10**6 if isinstance(x, int) else x for x in entry.events]
    store.save_follow(path, entry)
    engine = Engine(paths, clock=lambda: CLOCK, index=FollowIndex(root))
    engine.backfill(settle=False)
    snap = engine.snapshot()
    engine.stop()
    assert any("index entry ignored" in n and "refers to event" in n for n in snap.source.notices)
    assert snapshot_fields(snap) == snapshot_fields(want)
