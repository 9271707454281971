"""The index on disk: private, never through a planted link, atomic, and a
bad or foreign entry is ignored, said, and rebuilt."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flightdeck.index import store
from flightdeck.index.reader import pricing_fingerprint, scan_indexed
from tests.index.test_reader import DIMS, entries, fresh, indexed


def test_folders_0700_files_0600(v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache" / "flightdeck"
    indexed([v1_history], root)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / "index").st_mode) == 0o700
    files = list((root / "index").iterdir())
    # One entry per log, the summary and the prune mark; no temporary file left behind.
    assert sorted(p.suffix or p.name for p in files) == [".idx", ".idx", ".idx", ".pruned", ".sum"]
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in files)


def test_default_root_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.cache_root() == tmp_path / "xdg" / "flightdeck"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as the XDG spec says
    assert store.cache_root() == Path.home() / ".cache" / "flightdeck"


def test_open_folder_is_tightened(v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    indexed([v1_history], root)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


@pytest.mark.parametrize("where", ["root", "index"])
def test_planted_symlink_folder_is_not_used(where: str, v1_history: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    root = tmp_path / "cache"
    if where == "root":
        root.symlink_to(elsewhere, target_is_directory=True)
    else:
        root.mkdir(mode=0o700)
        (root / "index").symlink_to(elsewhere, target_is_directory=True)
    notices: list[str] = []
    assert indexed([v1_history], root, notices) == fresh([v1_history])
    assert any("index not used" in n for n in notices)
    assert list(elsewhere.iterdir()) == []


def test_planted_symlink_entry_is_not_followed(v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    indexed([v1_history], root)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    entry = sorted((root / "index").glob("*.idx"))[0]
    entry.unlink()
    entry.symlink_to(victim)
    notices: list[str] = []
    assert indexed([v1_history], root, notices) == fresh([v1_history])
    assert victim.read_bytes() == b"precious"  # the rename replaced the link, never wrote through it
    assert not entry.is_symlink()
    assert any("index entry ignored" in n for n in notices)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign version", "empty"])
def test_bad_entry_ignored_said_and_rebuilt(damage: str, v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    indexed([v1_history], root)
    entry = sorted((root / "index").glob("*.idx"))[0]
    data = entry.read_bytes()
    bad = {"garbage": b"\x00\xffnot an index" * 10, "truncated": data[: len(data) // 2],
           "foreign version": store.MAGIC + (store.VERSION + 1).to_bytes(2, "little") + data[6:],
           "empty": b""}[damage]
    entry.write_bytes(bad)
    notices: list[str] = []
    assert indexed([v1_history], root, notices) == fresh([v1_history])
    assert len([n for n in notices if "index entry ignored, rebuilt" in n]) == 1
    if damage == "foreign version":
        assert any("another version" in n for n in notices)
    store.load(entry)  # rebuilt: loads again without error
    notices.clear()
    indexed([v1_history], root, notices)
    assert notices == []


def test_unwritable_cache_still_reports(v1_history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, entry: store.Entry) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "save", full)
    notices: list[str] = []
    assert indexed([v1_history], tmp_path / "cache", notices) == fresh([v1_history])
    assert len([n for n in notices if "index entry not saved" in n]) == 3


def test_pricing_change_rereads(cc_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    prices = tmp_path / "prices.toml"
    indexed([cc_history], root)
    old = {e.ino: e.pricing for e in entries(root)}
    # A user rate for a model the history uses: stored costs are stale, tokens not.
    prices.write_text('[[model]]\nprovider = "anthropic"\nmatch = "claude-haiku-4-5-20251001"\n'
                      'input = "1"\noutput = "2"\n')
    assert pricing_fingerprint(prices) != pricing_fingerprint(None)
    from flightdeck.core import pricing

    before = pricing._default
    try:
        pricing.set_default_pricer(pricing.Pricer(prices))
        got = indexed([cc_history], root, prices=prices)
        want = fresh([cc_history])
    finally:
        pricing._default = before
    assert got == want
    assert all(e.pricing != old[e.ino] for e in entries(root))
    default = indexed([cc_history], tmp_path / "other")
    assert got["tokens"] == default["tokens"]  # tokens did not move
    assert got["cost_usd"] != default["cost_usd"]  # costs did


def test_pricing_fingerprint_follows_user_prices_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    before = pricing_fingerprint()
    (tmp_path / "flightdeck").mkdir()
    (tmp_path / "flightdeck" / "prices.toml").write_text("# no entries\n")
    assert pricing_fingerprint() != before


def test_two_processes_share_the_index(cc_history: Path, v1_history: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    code = ("import sys; from pathlib import Path; from flightdeck.index.reader import scan_indexed\n"
            "for _ in range(3):\n"
            "    n = []\n"
            f"    a = scan_indexed([{str(cc_history)!r}, {str(v1_history)!r}], by={DIMS!r},\n"
            f"                     root=Path({str(root)!r}), notices=n)\n"
            "    assert not n, n\n"
            "    with open(sys.argv[1], 'a') as f: f.write(a.snapshot(now=1.9e9).to_json()['cost_usd'] + '\\n')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"out{i}")]) for i in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    want = fresh([cc_history, v1_history])["cost_usd"]
    for i in range(2):
        assert (tmp_path / f"out{i}").read_text().split() == [want] * 3
    notices: list[str] = []
    assert indexed([cc_history, v1_history], root, notices) == fresh([cc_history, v1_history])
    assert notices == []
    assert not list((root / "index").glob(".tmp-*"))


def test_scan_indexed_says_what_it_could_not_read(v1_history: Path, tmp_path: Path) -> None:
    os.mkfifo(v1_history / "pipe.jsonl")
    notices: list[str] = []
    scan_indexed([v1_history], root=tmp_path / "cache", notices=notices)
    assert any("FIFO" in n for n in notices)


def test_pricing_fingerprint_follows_the_price_data_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flightdeck.index import reader

    pkg = tmp_path / "fakeprices"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "data.py").write_text("PRICES = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = reader._package_state("fakeprices")
    (pkg / "data.py").write_text("PRICES = 22\n")  # an upgrade rewrites the data module
    assert reader._package_state("fakeprices") != before
    assert reader._package_state("genai_prices") != reader._package_state("no_such_package_here")


def test_prune_removes_only_old_regular_entries(tmp_path: Path) -> None:
    folder = store.index_dir(tmp_path / "cache")
    now = 1_900_000_000.0
    old = now - store.PRUNE_AGE - 10
    names = {"old.idx": old, "old.fol": old, "report-old.sum": old, "fresh.fol": now - 3600,
             ".tmp-crashed.idx": now - 2 * 86400, ".tmp-writing.idx": now - 5, "notes.txt": old}
    for name, mtime in names.items():
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (mtime, mtime))
    outside = tmp_path / "outside.idx"
    outside.write_bytes(b"keep")
    (folder / "link.idx").symlink_to(outside)
    os.utime(folder / "link.idx", (old, old), follow_symlinks=False)
    assert store.prune(folder, now=now, force=True) == 4
    left = sorted(p.name for p in folder.iterdir())
    assert left == [".pruned", ".tmp-writing.idx", "fresh.fol", "link.idx", "notes.txt"]
    assert outside.read_bytes() == b"keep"  # a link is never followed
    (folder / "old.idx").write_bytes(b"x")
    os.utime(folder / "old.idx", (old, old))
    assert store.prune(folder, now=now + 60) == 0  # done less than a day ago
    assert (folder / "old.idx").exists()


def test_an_entry_in_use_is_marked_and_kept(tmp_path: Path) -> None:
    from flightdeck.index.live import FollowIndex
    from flightdeck.ingest.engine import Engine

    log = tmp_path / "a.jsonl"
    log.write_bytes(b'{"v":1,"ts":1764000000.0,"kind":"llm_call","id":"x1","run":"r","provider":"openai",'
                    b'"route":"direct","model":"gpt-4o","usage":{"input_tokens":5,"output_tokens":2},'
                    b'"cost_usd":null,"cost_status":"unknown"}\n')
    root = tmp_path / "cache"
    Engine([str(log)], index=FollowIndex(root)).backfill()
    entry = next((root / "index").glob("*.fol"))
    long_ago = time.time() - store.PRUNE_AGE - 100
    os.utime(entry, (long_ago, long_ago))
    for state in (root / "index").glob("engine-*.sum"):
        state.unlink()  # so that the entry itself is read
    index = FollowIndex(root)
    Engine([str(log)], index=index).backfill()
    assert index.resumed == 1
    assert time.time() - entry.stat().st_mtime < 3600
    assert store.prune(root / "index", force=True) == 0
    assert entry.exists()


def test_entries_are_compressed_under_15_percent_of_the_logs(cc_history: Path, tmp_path: Path) -> None:
    """Issue 14: the index at most 15 % of the logs' size, for report's entries and the
    monitor's; the same figures with and without it (compressed entries decode exactly)."""
    from flightdeck.index.live import FollowIndex
    from tests.index.test_live import backfill, snapshot_fields

    logs = sum(p.stat().st_size for p in cc_history.rglob("*.jsonl"))
    root = tmp_path / "cache"
    assert indexed([cc_history], root) == fresh([cc_history])
    idx = sum(p.stat().st_size for p in (root / "index").glob("*.idx"))
    assert 0 < idx < 0.15 * logs
    for e in entries(root):  # what is stored decodes to whole events (not only their count)
        assert e.events and all(ev.usage is not None and ev.cost_usd for ev in e.events)
    assert indexed([cc_history], root) == fresh([cc_history])  # replayed from the compressed entries
    live = tmp_path / "live"
    want = snapshot_fields(backfill([str(cc_history)], None))
    assert snapshot_fields(backfill([str(cc_history)], FollowIndex(live))) == want
    fol = sum(p.stat().st_size for p in (live / "index").glob("*.fol"))
    assert 0 < fol < 0.15 * logs
    for p in (live / "index").glob("engine-*.sum"):
        p.unlink()  # so the per-log entries are what is read
    warm = FollowIndex(live)
    assert snapshot_fields(backfill([str(cc_history)], warm)) == want
    assert warm.resumed == len(list(cc_history.rglob("*.jsonl")))


def test_follow_entry_keeps_its_reader_state_beside_the_body(tmp_path: Path) -> None:
    """A follow entry round-trips field by field, its reader state stored as given (not through
    zlib again); an entry cut anywhere is refused with a reason, never half read."""
    from flightdeck.core.events import Event
    from flightdeck.index.state import dumps_small, loads_small

    state = dumps_small({"held": [1, 2, 3]})
    ev = Event(v=1, ts=1.0, kind="llm_call", id="e1", run="r", agent="a", model="m", cost_usd="0.5")
    entry = store.FollowEntry(dev=1, ino=2, head=b"h" * 32, head_len=10, tail=b"t" * 32, offset=99,
                              pricing="p", fmt="claude-code", state=state, events=[ev], rejects=[("bad", "x")],
                              copies=3, notes={"n": 1})
    path = tmp_path / "e.fol"
    store.save_follow(path, entry)
    assert entry.state == state  # the caller's entry is left as it was
    data = path.read_bytes()
    assert state in data  # stored as it came, not compressed again
    got = store.load_follow(path)
    assert got is not None and got == entry and loads_small(got.state) == {"held": [1, 2, 3]}
    for cut in (len(store._FOLLOW_HEADER) + 4, len(store._FOLLOW_HEADER) + 8 + len(state) // 2, len(data) - 3):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            store.load_follow(path)
