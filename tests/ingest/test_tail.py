"""The follower against what real log files do."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.ingest.tail import HEAD_BYTES, Follower, PollResult, Tailer


def _lines(f: Follower) -> list[bytes]:
    return f.poll().lines


def _write(path: Path, data: bytes, mode: str = "ab") -> None:
    with open(path, mode) as fh:
        fh.write(data)


def test_file_created_later(tmp_path: Path) -> None:
    path = tmp_path / "later.jsonl"
    f = Follower(path)
    assert _lines(f) == []
    assert not f.is_open
    _write(path, b'{"a":1}\n')
    assert _lines(f) == [b'{"a":1}']


def test_split_line_is_held_until_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b'{"a":1}\n{"b":')
    f = Follower(path)
    assert _lines(f) == [b'{"a":1}']
    _write(path, b"2")
    assert _lines(f) == []
    _write(path, b'}\n{"c":3}\n')
    assert _lines(f) == [b'{"b":2}', b'{"c":3}']


def test_rotation_by_rename_reads_old_inode_to_end_then_new_file(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b"1\n")
    f = Follower(path)
    assert _lines(f) == [b"1"]
    with open(path, "ab") as old:  # the writer still holds the old file
        old.write(b"2\n")
        os.rename(path, tmp_path / "run.jsonl.1")
        old.write(b"3\n")  # written after the rename, before the writer reopens
    _write(path, b"4\n")
    res = f.poll()
    assert res.lines == [b"2", b"3", b"4"]
    assert any("rotation" in n for n in res.notices)


def test_truncation_in_place(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b'{"first":1}\n{"second":2}\n')
    f = Follower(path)
    assert len(_lines(f)) == 2
    os.truncate(path, 0)
    _write(path, b'{"x":1}\n')
    res = f.poll()
    assert res.lines == [b'{"x":1}']
    assert any("truncated" in n for n in res.notices)


def test_truncate_then_grow_past_old_size_is_caught_by_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    old = b'{"id":"old-0000000000000000000000000000000000000000000000000000"}\n'
    _write(path, old)
    f = Follower(path)
    assert _lines(f) == [old.rstrip(b"\n")]
    # copytruncate, then a burst of writes before the next poll: bigger than before
    new = [b'{"id":"new-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}' % i for i in range(3)]
    _write(path, b"".join(line + b"\n" for line in new), mode="wb")
    assert os.path.getsize(path) > len(old)
    assert len(old) > HEAD_BYTES  # the fingerprint, not the size, must see it
    assert _lines(f) == new


def test_delete_and_recreate(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b"1\n")
    f = Follower(path)
    assert _lines(f) == [b"1"]
    os.unlink(path)
    res = f.poll()
    assert res.lines == [] and not f.is_open and any("gone" in n for n in res.notices)
    _write(path, b"2\n")
    assert _lines(f) == [b"2"]


def test_deleted_partial_line_is_counted_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b"1\n{partial")
    f = Follower(path)
    f.poll()
    os.unlink(path)
    res = f.poll()
    assert [r.reason for r in res.rejects] == ["truncated line"]


def test_line_over_limit_is_rejected_without_buffering_it(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    f = Follower(path, max_line=100)
    _write(path, b"ok\n" + b"x" * 80)
    assert _lines(f) == [b"ok"]
    _write(path, b"x" * 80)  # now over the limit, still no newline
    res = f.poll()
    assert [r.reason for r in res.rejects] == ["line too long"]
    assert len(f._pending) == 0  # not held
    _write(path, b"x" * 500)  # still the same long line: skipped silently
    assert f.poll().rejects == []
    _write(path, b"xx\nafter\n")
    assert _lines(f) == [b"after"]


def test_complete_long_line_in_one_read_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b"a\n" + b"y" * 300 + b"\nb\n")
    res = Follower(path, max_line=100).poll()
    assert res.lines == [b"a", b"b"]
    assert [r.reason for r in res.rejects] == ["line too long"]


def test_never_opens_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "ro.jsonl"
    _write(path, b"1\n")
    os.chmod(path, 0o400)
    assert _lines(Follower(path)) == [b"1"]


def test_tailer_picks_up_new_files_in_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a" / "one.jsonl", b"1\n")
    _write(tmp_path / "a" / "notes.txt", b"no\n")
    t = Tailer([tmp_path])
    assert [p.name for p in t.followers] == ["one.jsonl"]
    t.start_watching()
    try:
        time.sleep(0.3)  # let the watcher register
        (tmp_path / "b" / "c").mkdir(parents=True)
        new = tmp_path / "b" / "c" / "two.jsonl"
        _write(new, b"2\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if t.wake.wait(0.1):
                t.wake.clear()
                for p in t.take_dirty():
                    t.adopt(p)
                if new in t.followers:
                    break
        assert new in t.followers
        assert sorted(line for _f, r in t.poll() for line in r.lines) == [b"1", b"2"]
    finally:
        t.close()


def test_watch_roots_for_missing_folder_uses_nearest_ancestor(tmp_path: Path) -> None:
    t = Tailer([tmp_path / "x" / "y" / "run.jsonl"])
    assert t.watch_roots() == [tmp_path]


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b.strip()), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_any_split_of_writes_gives_the_same_lines(tmp_path_factory, lines: list[bytes], cuts: list[int]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("split") / "run.jsonl"
    if lines and lines[0].startswith(b"\xef"):  # a byte order mark at the start is skipped (tested below)
        lines[0] = b"x" + lines[0]
    data = b"".join(line + b"\n" for line in lines)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    path.write_bytes(b"")
    f = Follower(path)
    got: list[bytes] = []
    for a, b in itertools.pairwise(points):
        _write(path, data[a:b])
        got.extend(f.poll().lines)
    assert got == lines


def test_engine_follows_across_rotation(tmp_path: Path) -> None:
    from flightdeck.ingest.engine import Engine
    from tests.ingest.test_engine import v1, wait_for

    path = tmp_path / "run.jsonl"
    path.write_bytes(v1())
    with Engine([path]) as eng:
        eng.wait_backfilled(5)
        with open(path, "ab") as old:
            os.rename(path, tmp_path / "run.jsonl.1")
            old.write(v1())  # late line on the rotated file
        path.write_bytes(v1() + v1())
        wait_for(lambda: eng.events_counted == 4)
        assert any("rotation" in n for n in eng.snapshot().source.notices)


def test_released_follower_resumes_or_sees_replacement(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b"1\n2")
    f = Follower(path)
    assert _lines(f) == [b"1"]
    f.release()
    assert not f.is_open
    assert _lines(f) == []  # quiet: not even reopened
    _write(path, b"\n3\n")
    assert _lines(f) == [b"2", b"3"]  # same inode: resumed where it was, partial line kept
    f.release()
    os.unlink(path)
    _write(path, b"new\n")
    res = f.poll()
    # The filesystem may hand the new file the old inode number: the fingerprint tells them apart.
    assert res.lines == [b"new"] and any("replaced" in n or "truncated" in n for n in res.notices)


def test_many_files_do_not_hold_a_descriptor_each(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import flightdeck.ingest.tail as tail

    monkeypatch.setattr(tail, "MAX_OPEN_FILES", 5)
    for i in range(20):
        _write(tmp_path / f"s{i}.jsonl", b"x\n")
    t = Tailer([tmp_path])
    assert sum(len(r.lines) for _f, r in t.poll()) == 20
    list(t.poll())  # quiet now: released
    assert sum(f.is_open for f in t.followers.values()) == 0
    _write(tmp_path / "s3.jsonl", b"y\n")
    assert [line for _f, r in t.poll() for line in r.lines] == [b"y"]
    t.close()


def test_folder_given_as_file_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    odd = tmp_path / "odd.jsonl"
    odd.mkdir()
    res = Follower(odd).poll()
    assert res.lines == [] and any("a folder, not a regular file" in n for n in res.notices)


# --- odd files, odd bytes, few descriptors (issue 9) ----------------------------------


def _tail_once(*paths: str, limit: int | None = None) -> dict:  # type: ignore[type-arg]
    import json
    import subprocess
    import sys

    code = "import sys\n"
    if limit is not None:
        code += f"import resource\nresource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))\n"
    code += "from flightdeck.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    # A hang is the bug: the timeout turns it into a failure instead of a stuck suite.
    out = subprocess.run([sys.executable, "-c", code, "tail", *paths, "--once", "--json"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _v1(n: int) -> bytes:
    from flightdeck.core.events import Event, IdSource, Usage, encode_event

    ids = IdSource()
    return b"".join(encode_event(Event(v=1, ts=1764216000.0 + i, kind="llm_call", id=ids(), run="r",
                                       provider="openai", model="gpt-4o", usage=Usage(input_tokens=1)))
                    for i in range(n))


def test_a_fifo_is_refused_once_and_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    f = Follower(fifo)
    res = f.poll()  # would block forever in open() without a writer
    assert res.lines == [] and res.notices == [f"{fifo}: a FIFO, not a regular file: not read"]
    assert f.poll().notices == []  # said once, not on every poll
    assert not f.is_open


def test_a_regular_file_replaced_by_a_fifo_is_finished_then_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b"1\n")
    f = Follower(path)
    assert _lines(f) == [b"1"]
    with open(path, "ab") as old:
        old.write(b"2\n")
        os.unlink(path)
        os.mkfifo(path)
    res = f.poll()
    assert res.lines == [b"2"] and any("a FIFO, not a regular file" in n for n in res.notices)


def test_tail_once_on_a_fifo_or_dev_zero_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    good = tmp_path / "good.jsonl"
    good.write_bytes(_v1(3))
    doc = _tail_once(str(fifo), "/dev/zero", str(good))
    assert doc["events"] == 3
    notices = doc["source"]["notices"]
    assert any("a FIFO, not a regular file" in n for n in notices)
    assert any("/dev/zero: a character device, not a regular file" in n for n in notices)


def test_a_fifo_appearing_in_a_followed_folder_does_not_stop_ingest(tmp_path: Path) -> None:
    from flightdeck.ingest.engine import Engine
    from tests.ingest.test_engine import v1, wait_for

    (tmp_path / "a.jsonl").write_bytes(v1())
    with Engine([tmp_path]) as eng:
        eng.wait_backfilled(5)
        os.mkfifo(tmp_path / "b.jsonl")
        wait_for(lambda: any("FIFO" in n for n in eng.snapshot().source.notices), timeout=20)
        _write(tmp_path / "a.jsonl", v1())
        (tmp_path / "c.jsonl").write_bytes(v1())
        wait_for(lambda: eng.events_counted == 3, timeout=20)


def test_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    _write(path, b"\xef\xbb\xbf" + b'{"a":1}\n{"b":2}\n')
    assert _lines(Follower(path)) == [b'{"a":1}', b'{"b":2}']


def test_tail_once_reads_a_last_line_without_newline(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"\xef\xbb\xbf" + _v1(3).rstrip(b"\n"))
    doc = _tail_once(str(whole))
    assert doc["events"] == 3 and doc["rejected"] == 0
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(_v1(2) + b'{"v":1,"ts":17642')
    doc = _tail_once(str(torn))
    assert doc["events"] == 2 and doc["rejected"] == 1
    assert doc["rejected_reasons"] == {"incomplete last line": 1}


def test_tail_once_past_the_descriptor_limit_counts_every_file(tmp_path: Path) -> None:
    for i in range(300):
        (tmp_path / f"s{i:03d}.jsonl").write_bytes(_v1(2))
    doc = _tail_once(str(tmp_path), limit=64)
    assert doc["events"] == 600 and doc["source"]["files"] == 300
    assert not any("could not be opened" in n for n in doc["source"]["notices"])


def test_starved_followers_are_retried_then_named(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    import flightdeck.ingest.openfile as openfile

    for i in range(4):
        _write(tmp_path / f"s{i}.jsonl", b"x\n")
    t = Tailer([tmp_path])
    real = openfile.open_regular
    fail = {"left": 5}

    def scarce(path):  # type: ignore[no-untyped-def]
        if fail["left"] > 0 and str(path).endswith(("s1.jsonl", "s2.jsonl")):
            fail["left"] -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return real(path)

    monkeypatch.setattr("flightdeck.ingest.tail.open_regular", scarce)
    results = list(t.poll())
    lines = [line for _f, r in results for line in r.lines]
    notices = [n for _f, r in results for n in r.notices]
    # s1 and s2 fail, are retried once every other file is closed, and fail again (5 failures left):
    assert len(lines) == 2 and notices == ["2 of 4 files could not be opened (too many open files): "
                                           "their lines are not counted yet"]
    results = list(t.poll())  # the scarcity is over: read now
    assert sorted(line for _f, r in results for line in r.lines) == [b"x", b"x"]
    t.close()


def test_token_sums_past_64_bits_are_printed_exactly(tmp_path: Path) -> None:
    from flightdeck.core.events import Event, IdSource, Usage, encode_event

    top, n = 10**15 - 1, 20_000  # n * top > 2^64: past orjson's integers
    ids = IdSource()
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(encode_event(Event(v=1, ts=1764216000.0, kind="llm_call", id=ids(), run="r",
                                                 provider="openai", model="m", usage=Usage(input_tokens=top)))
                              for _ in range(n)))
    doc = _tail_once(str(path))
    assert doc["events"] == n and doc["tokens"]["input_tokens"] == n * top


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_sigterm_never_cuts_a_json_line(tmp_path: Path, signame: str) -> None:
    import json
    import signal
    import subprocess
    import sys
    import time

    from flightdeck.core.events import Event, IdSource, Usage, encode_event

    ids = IdSource()
    path = tmp_path / "wide.jsonl"  # many groups: each snapshot line is larger than a pipe holds
    path.write_bytes(b"".join(encode_event(Event(v=1, ts=time.time() - i, kind="llm_call", id=ids(), run=f"r{i}",
                                                 agent=f"a{i % 400}", provider="openai", model=f"m{i % 300}",
                                                 name=f"n{i % 200}", usage=Usage(input_tokens=1)))
                              for i in range(3000)))
    proc = subprocess.Popen([sys.executable, "-m", "flightdeck", "tail", str(path), "--json", "--interval", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.0)  # not read meanwhile: the pipe fills and the feed blocks mid-write
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.endswith(b"\n") and out.count(b"\n") >= 1
    for line in out.splitlines():
        json.loads(line)


# --- every rotation the follower can see (issue 9) ------------------------------------


def _all_lines(f: Follower) -> tuple[list[bytes], PollResult]:
    res = f.poll()
    return res.lines, res


def test_rotations_faster_than_the_poll_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    old = tmp_path / "run.jsonl.9"
    _write(old, b'{"ancient":1}\n')
    os.utime(old, (time.time() - 3600, time.time() - 3600))  # a rotation from before: never read again
    _write(path, b'{"a":1}\n')
    f = Follower(path)
    assert _lines(f) == [b'{"a":1}']
    _write(path, b'{"a":2}\n')
    os.rename(path, tmp_path / "run.jsonl.1")  # generation A rotated away...
    _write(path, b'{"b":1}\n{"b":2}\n')  # ...generation B written...
    os.rename(tmp_path / "run.jsonl.1", tmp_path / "run.jsonl.2")
    os.rename(path, tmp_path / "run.jsonl.1")  # ...and rotated away before the next poll
    _write(path, b'{"c":1}\n')
    lines, res = _all_lines(f)
    assert lines == [b'{"a":2}', b'{"b":1}', b'{"b":2}', b'{"c":1}']
    assert any("rotated away between two polls" in n for n in res.notices)
    _write(path, b'{"c":2}\n')
    assert _lines(f) == [b'{"c":2}']  # nothing read twice


def test_copytruncate_reads_the_lines_written_before_the_truncation_from_the_copy(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "run.jsonl"
    _write(path, b'{"n":1}\n{"n":2}\n')
    f = Follower(path)
    assert _lines(f) == [b'{"n":1}', b'{"n":2}']
    _write(path, b'{"n":3}\n{"n":')  # written after the last read, the last one in progress...
    _write(path, b"4}\n")
    shutil.copyfile(path, tmp_path / "run.jsonl.1")  # ...copied, then truncated in place
    os.truncate(path, 0)
    _write(path, b'{"m":1}\n{"m":2}\n{"m":3}\n')  # longer than before: only the fingerprint shows it
    lines, res = _all_lines(f)
    assert lines == [b'{"n":3}', b'{"n":4}', b'{"m":1}', b'{"m":2}', b'{"m":3}']
    assert any("truncated" in n for n in res.notices)


def test_two_copytruncates_between_polls(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "run.jsonl"
    _write(path, b'{"n":1}\n')
    f = Follower(path)
    assert _lines(f) == [b'{"n":1}']
    _write(path, b'{"n":2}\n')
    shutil.copyfile(path, tmp_path / "run.jsonl.1")
    os.truncate(path, 0)
    _write(path, b'{"second":1}\n')
    os.rename(tmp_path / "run.jsonl.1", tmp_path / "run.jsonl.2")
    shutil.copyfile(path, tmp_path / "run.jsonl.1")
    os.truncate(path, 0)
    _write(path, b'{"third":1}\n')
    assert _lines(f) == [b'{"n":2}', b'{"second":1}', b'{"third":1}']


def test_a_released_follower_finishes_its_renamed_file(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b'{"a":1}\n')
    f = Follower(path)
    assert _lines(f) == [b'{"a":1}']
    f.release()  # many files followed: the descriptor was given back
    _write(path, b'{"a":2}\n')
    os.rename(path, tmp_path / "run.jsonl.1")
    _write(path, b'{"b":1}\n')
    assert _lines(f) == [b'{"a":2}', b'{"b":1}']


def test_a_rotated_file_that_vanished_is_said(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, b'{"a":1}\n')
    f = Follower(path)
    assert _lines(f) == [b'{"a":1}']
    f.release()
    os.rename(path, tmp_path / "run.jsonl.1")
    os.unlink(tmp_path / "run.jsonl.1")  # compressed or deleted before we looked
    _write(path, b'{"b":1}\n')
    lines, res = _all_lines(f)
    assert lines == [b'{"b":1}'] and any("old file was not found" in n for n in res.notices)


def test_an_empty_file_polled_again_never_reads_its_siblings(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"")
    f = Follower(path)
    assert _lines(f) == []
    _write(tmp_path / "run.jsonl.bak", b'{"other":1}\n')  # written meanwhile by someone else
    assert _lines(f) == []  # no rotation happened: nothing beside it is read


def test_a_fifo_already_in_a_followed_folder_is_named(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jsonl")
    _write(tmp_path / "good.jsonl", b'{"a":1}\n')
    t = Tailer([tmp_path])
    results = list(t.poll())
    assert [line for _f, r in results for line in r.lines] == [b'{"a":1}']
    assert [n for _f, r in results for n in r.notices] == [
        f"{tmp_path / 'pipe.jsonl'}: a FIFO, not a regular file: not read"]
    t.close()
