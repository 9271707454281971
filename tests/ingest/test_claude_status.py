"""Claude Code's status-line rate limits: ``flightdeck statusline`` records them, the plan windows read them.

The stdin object is shaped as Claude Code 2.1.80+ sends it to a ``statusLine``
command (code.claude.com statusline docs; ``rate_limits`` added in 2.1.80:
``five_hour`` / ``seven_day`` with ``used_percentage`` and ``resets_at`` in
epoch seconds).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core.plan_windows import window_from_claude
from flightdeck.ingest import claude_status
from flightdeck.ingest.engine import Engine

H = 3600.0


def status_json(five: float = 23.5, seven: float = 41.2, *, now: float | None = None,
                limits: bool = True) -> dict[str, Any]:
    """What Claude Code pipes to its status-line command (every field it documents)."""
    now = time.time() if now is None else now
    doc: dict[str, Any] = {
        "hook_event_name": "Status", "session_id": "4a8a4df4-c131-44b9-87af-0ec3e0c82b96",
        "transcript_path": "/home/u/.claude/projects/-home-u-proj/4a8a4df4.jsonl", "cwd": "/home/u/proj",
        "model": {"id": "claude-opus-4-6", "display_name": "Opus 4.6"},
        "workspace": {"current_dir": "/home/u/proj", "project_dir": "/home/u/proj"},
        "version": "2.1.96", "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 1.3712, "total_duration_ms": 45000, "total_api_duration_ms": 2300,
                 "total_lines_added": 156, "total_lines_removed": 23},
        "context_window": {"total_input_tokens": 15234, "total_output_tokens": 4521, "context_window_size": 200000,
                           "used_percentage": 8, "remaining_percentage": 92},
        "exceeds_200k_tokens": False,
    }
    if limits:
        doc["rate_limits"] = {"five_hour": {"used_percentage": five, "resets_at": int(now + 2 * H + 600)},
                              "seven_day": {"used_percentage": seven, "resets_at": int(now + 3 * 86400)}}
    return doc


def statusline(stdin: bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "flightdeck", "statusline"], input=stdin, capture_output=True,
                          env=env or dict(os.environ), timeout=60)


def test_the_command_prints_a_line_and_records_the_windows_privately() -> None:
    got = statusline(json.dumps(status_json()).encode())
    assert got.returncode == 0
    line = got.stdout.decode().strip()
    assert line.startswith("Opus 4.6 · $1.37 · 5h 24% ↻2h") and " · 7d 41% ↻" in line
    path = claude_status.state_file()
    assert path.parent == Path.home() / ".local" / "state" / "flightdeck"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    windows = claude_status.read_state()
    assert {n: w.used_percent for n, w in windows.items()} == {"five_hour": 23.5, "seven_day": 41.2}
    assert windows["five_hour"].window_minutes == 300 and windows["seven_day"].window_minutes == 10080
    assert not list(path.parent.glob(".*.tmp"))  # written through a temporary file, renamed


def test_xdg_state_home_is_honoured(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    assert statusline(json.dumps(status_json()).encode(), env).returncode == 0
    assert (tmp_path / "state" / "flightdeck" / claude_status.FILE_NAME).is_file()


@pytest.mark.parametrize("stdin", [b"", b"not json", b"[1, 2]", b"{" * 100_000, b" " * 400_000,
                                   json.dumps({"model": "?", "rate_limits": "x"}).encode()],
                         ids=["empty", "junk", "array", "deep", "too-large", "odd-shapes"])
def test_bad_input_prints_a_plain_line_and_exits_0(stdin: bytes) -> None:
    got = statusline(stdin)
    assert got.returncode == 0 and got.stdout.decode().count("\n") == 1
    assert b"Traceback" not in got.stderr
    assert not claude_status.state_file().exists()


def statusline_with_stdin_left_open(data: bytes) -> tuple[int, bytes]:
    """(exit code, stdout) of ``flightdeck statusline`` given ``data`` on a stdin never closed."""
    proc = subprocess.Popen([sys.executable, "-m", "flightdeck", "statusline"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(data)
    proc.stdin.flush()
    try:
        # wait(), not communicate(): that would close stdin. The timeout guards a hang, it claims no time.
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdin.close()
    return proc.returncode, out


def test_a_stdin_that_never_ends_does_not_hang_the_status_line() -> None:
    code, out = statusline_with_stdin_left_open(b'{"model": {"display_name": "Opus"}')  # an object never ended
    assert code == 0 and out.startswith(b"flightdeck: no status JSON")


def test_strings_from_the_json_are_shown_as_text() -> None:
    doc = status_json()
    doc["model"] = {"display_name": "\x1b]0;pwned\x07Opus\u202e"}
    line = statusline(json.dumps(doc).encode()).stdout.decode()
    assert "\x1b" not in line and "\u202e" not in line and "Opus" in line


def test_a_session_without_limits_records_nothing() -> None:
    got = statusline(json.dumps(status_json(limits=False)).encode())
    assert got.stdout.decode().strip() == "Opus 4.6 · $1.37"
    assert not claude_status.state_file().exists()


def test_the_cycle_start_is_kept_so_a_burn_projects_to_100() -> None:
    now = time.time()
    first = claude_status.windows_of(status_json(20.0, now=now - H), now - H)
    claude_status.record(first)
    later = claude_status.windows_of(status_json(30.0, now=now), now)
    # Same cycle: the same reset time (status_json moves it with now, so pin it).
    pinned = [window_from_claude(w.which, {"used_percentage": w.used_percent,
                                           "resets_at": first[i].resets_at}, now) for i, w in enumerate(later)]
    claude_status.record([w for w in pinned if w is not None])
    five = claude_status.read_state()["five_hour"]
    assert (five.first_percent, five.first_at, five.used_percent) == (20.0, now - H, 30.0)
    assert five.full_at() == pytest.approx(now + 70 * H / 10)  # 10 points an hour, 70 to go
    assert five.to_json()["full_at"] is None  # ... but it resets (in 1h10m) before it fills


def test_a_planted_symlink_is_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"v": 1, "windows": {}}))
    path = claude_status.state_file()
    path.parent.mkdir(parents=True, mode=0o700)
    path.symlink_to(target)
    notices: list[str] = []
    assert claude_status.read_state(notices=notices) == {}
    assert notices and "not a regular file" in notices[0]
    assert statusline(json.dumps(status_json()).encode()).returncode == 0
    assert target.read_text() == json.dumps({"v": 1, "windows": {}})  # the target is untouched
    assert path.is_file() and not path.is_symlink()  # the link itself was replaced


def test_a_symlinked_folder_is_refused_and_the_line_still_prints(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    state = Path.home() / ".local" / "state"
    state.mkdir(parents=True)
    (state / "flightdeck").symlink_to(tmp_path / "real")
    got = statusline(json.dumps(status_json()).encode())
    assert got.returncode == 0 and got.stdout.startswith(b"Opus 4.6")
    assert b"not recorded" in got.stderr and not list((tmp_path / "real").iterdir())
    notices: list[str] = []
    assert claude_status.read_state(notices=notices) == {} and "symlink" in notices[0]


def test_a_fifo_or_corrupt_file_is_ignored_with_a_notice() -> None:
    path = claude_status.state_file()
    path.parent.mkdir(parents=True, mode=0o700)
    os.mkfifo(path)
    notices: list[str] = []
    assert claude_status.read_state(notices=notices) == {} and "FIFO" in notices[0]
    path.unlink()
    for junk in (b"\x00garbage", json.dumps({"v": 1, "windows": {"five_hour": {"used_percentage": "9"}}}).encode(),
                 json.dumps({"v": 99}).encode(), b"{" * (claude_status.MAX_BYTES + 2)):
        path.write_bytes(junk)
        notices = []
        assert claude_status.read_state(notices=notices) == {} and notices
    assert statusline(json.dumps(status_json()).encode()).returncode == 0  # a corrupt file is replaced
    assert set(claude_status.read_state()) == {"five_hour", "seven_day"}


def test_stale_and_reset_windows_are_not_fresh() -> None:
    now = time.time()
    claude_status.record(claude_status.windows_of(status_json(now=now - 7 * H), now - 7 * H))
    notices: list[str] = []
    fresh = claude_status.fresh_windows(now, notices=notices)
    assert fresh == []  # five_hour reset since; seven_day last seen 7 h ago
    assert any("seven_day window last seen 7 h ago" in n for n in notices)
    claude_status.record(claude_status.windows_of(status_json(now=now - 60), now - 60))
    assert {w.which for w in claude_status.fresh_windows(now)} == {"five_hour", "seven_day"}


def claude_log(folder: Path, now: float) -> None:
    from tests.ingest.formats.test_claude_code import streamed

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 600))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cc.jsonl").write_bytes(b"\n".join(streamed("msg_A", ts=stamp)) + b"\n")


def plan_windows(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    eng = Engine([folder])
    eng.backfill()
    return {(w["source"], w["window"]): w for w in eng.snapshot().to_json()["plan_windows"]}


def test_fresh_reported_windows_replace_the_computed_block_live(tmp_path: Path) -> None:
    now = time.time()
    claude_log(tmp_path / "logs", now)
    assert set(plan_windows(tmp_path / "logs")) == {("computed", "5h-block")}  # nothing recorded yet
    claude_status.record(claude_status.windows_of(status_json(now=now - 30), now - 30))
    doc = plan_windows(tmp_path / "logs")
    assert set(doc) == {("reported", "five_hour"), ("reported", "seven_day")}
    assert doc[("reported", "five_hour")]["used_percent"] == 23.5
    assert doc[("reported", "five_hour")]["agent"] == "claude-code"


def test_stale_reported_windows_leave_the_computed_block_live(tmp_path: Path) -> None:
    now = time.time()
    claude_log(tmp_path / "logs", now)
    claude_status.record(claude_status.windows_of(status_json(now=now - 8 * H), now - 8 * H))
    assert set(plan_windows(tmp_path / "logs")) == {("computed", "5h-block")}


def test_a_whole_object_on_a_stdin_left_open_is_still_used() -> None:
    code, out = statusline_with_stdin_left_open(json.dumps(status_json()).encode())  # complete, never closed
    assert code == 0 and out.startswith("Opus 4.6 · $1.37 · 5h 24%".encode())


def test_a_temporary_file_left_by_a_killed_run_is_replaced() -> None:
    path = claude_status.state_file()
    path.parent.mkdir(parents=True, mode=0o700)
    stale = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    stale.write_text("half a file")
    claude_status.record(claude_status.windows_of(status_json(), time.time()))
    assert not stale.exists() and set(claude_status.read_state()) == {"five_hour", "seven_day"}
