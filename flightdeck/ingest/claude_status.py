"""Claude Code's subscription windows, as its status line receives them, kept on disk.

Claude Code pipes a JSON object to the user's ``statusLine`` command on
every render; since 2.1.80 it carries ``rate_limits.five_hour`` and
``rate_limits.seven_day`` (``used_percentage`` 0-100, ``resets_at`` epoch
seconds) for Claude.ai subscribers, after the session's first response
(Claude Code CHANGELOG 2.1.80; anthropics/claude-code issue #45133 shows the
shape). Nothing writes them to disk, so ``flightdeck statusline`` records
them here, and the Claude Code plan-window source reads them back.

The file: ``$XDG_STATE_HOME/flightdeck/claude-rate-limits.json`` (default
``~/.local/state/flightdeck/``), the folder 0700 and the file 0600, written
whole to a temporary file and renamed over (a reader never sees half a
file). Reading opens a regular file only, never through a symlink, at most
``MAX_BYTES``; anything else is ignored with a notice, never raised.

Each window keeps its first observation of the current cycle (same reset
time), so the projection to 100 % has a burn to extrapolate
(``PlanWindow.full_at``).
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from flightdeck.core.fsopen import open_regular, private_dir
from flightdeck.core.plan_windows import PlanWindow, merge_windows, window_from_claude

FILE_NAME: Final = "claude-rate-limits.json"
MAX_BYTES: Final = 64 * 1024  # a few windows; a larger file is not ours
MAX_WINDOWS: Final = 16  # rate_limits keys kept (five_hour, seven_day, and room for newer ones)
STALE_SECONDS: Final = 6 * 3600  # older than this, a figure no longer says how close the user is
FORMAT: Final = 1


def state_dir() -> Path:
    """``$XDG_STATE_HOME/flightdeck`` (``~/.local/state/flightdeck`` when unset or not absolute)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "flightdeck"


def state_file() -> Path:
    """Where the status line's rate-limit figures are kept."""
    return state_dir() / FILE_NAME


def windows_of(payload: Any, now: float) -> list[PlanWindow]:
    """The windows of one status-line JSON object (``rate_limits``), observed at ``now``.

    Args:
        payload: the decoded stdin of a status-line call.
        now: its wall time, epoch seconds.
    """
    limits = payload.get("rate_limits") if isinstance(payload, dict) else None
    if not isinstance(limits, dict):
        return []
    out = []
    for name, raw in list(limits.items())[:MAX_WINDOWS]:
        if isinstance(name, str) and name:
            w = window_from_claude(name[:40], raw, now)
            if w is not None:
                out.append(w)
    return out


def _encode(w: PlanWindow) -> dict[str, Any]:
    return {"used_percentage": w.used_percent, "resets_at": w.resets_at, "observed_at": w.observed_at,
            "first_percentage": w.first_percent, "first_at": w.first_at}


def _decode(name: str, raw: Any) -> PlanWindow | None:
    """A stored window; None when any part of it is not what ``record`` writes."""
    if not isinstance(raw, dict):
        return None
    stamps = [raw.get(k) for k in ("observed_at", "first_at", "first_percentage")]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in stamps):
        return None
    observed, first_at, first_pct = (float(v) for v in stamps)  # type: ignore[arg-type]
    w = window_from_claude(name, raw, observed)
    if w is None or first_at > observed or not 0 <= first_pct <= w.used_percent:
        return None
    return replace(w, first_percent=first_pct, first_at=first_at)


def is_fresh(w: PlanWindow, now: float) -> bool:
    """Whether a recorded window still says how close the user is: not reset since, seen recently.

    Args:
        w: a recorded window.
        now: wall time, epoch seconds.
    """
    return (w.resets_at is None or w.resets_at > now) and now - w.observed_at <= STALE_SECONDS


def read_state(path: Path | None = None, notices: list[str] | None = None) -> dict[str, PlanWindow]:
    """The recorded windows by name; empty (with a notice) when the file is missing, unsafe or bad.

    Args:
        path: the file (default ``state_file()``).
        notices: where to say why a file that exists was not used.
    """
    path = state_file() if path is None else path
    say = notices.append if notices is not None else (lambda _m: None)
    try:
        folder = os.lstat(path.parent)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        say(f"{path.parent}: not read: {exc.strerror or exc}")
        return {}
    if stat.S_ISLNK(folder.st_mode) or not stat.S_ISDIR(folder.st_mode) or (
            hasattr(os, "getuid") and folder.st_uid != os.getuid()):
        say(f"{path.parent}: not a plain folder of this user's (a symlink?): Claude rate limits not read")
        return {}
    try:
        fd = open_regular(path, os.O_RDONLY, follow=False)
    except FileNotFoundError:
        return {}
    except OSError as exc:  # a symlink (ELOOP), a FIFO, a folder: never followed, never read
        say(f"{path}: not a regular file, Claude rate limits not read ({exc.strerror or exc})")
        return {}
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        say(f"{path}: larger than {MAX_BYTES} bytes, Claude rate limits not read")
        return {}
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        say(f"{path}: not JSON, Claude rate limits ignored")
        return {}
    raw = doc.get("windows") if isinstance(doc, dict) and doc.get("v") == FORMAT else None
    if not isinstance(raw, dict):
        say(f"{path}: not a flightdeck rate-limit file, ignored")
        return {}
    out: dict[str, PlanWindow] = {}
    for name, value in list(raw.items())[:MAX_WINDOWS]:
        w = _decode(name, value) if isinstance(name, str) else None
        if w is None:
            say(f"{path}: window {name!r} is not valid, ignored")
            continue
        out[name] = w
    return out


def record(windows: list[PlanWindow], path: Path | None = None) -> None:
    """Fold ``windows`` into the file (a window's cycle start is kept) and write it whole.

    Args:
        windows: what one status-line call reported.
        path: the file (default ``state_file()``); its folder is made 0700.

    Raises OSError when the folder or file cannot be used safely (the
    status-line command reports it and still prints its line).
    """
    path = state_file() if path is None else path
    path.parent.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_dir(path.parent)
    kept: dict[str, PlanWindow] = {}
    for name, w in read_state(path).items():
        kept[f"{w.agent}:{w.limit}:{name}"] = w
    merge_windows(kept, windows)
    doc = {"v": FORMAT, "windows": {w.which: _encode(w) for w in list(kept.values())[-MAX_WINDOWS:]}}
    data = json.dumps(doc, separators=(",", ":")).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = open_regular(tmp, flags, 0o600, follow=False)
    except FileExistsError:  # left by a killed run with our pid: ours to remove (unlink never follows a link)
        os.unlink(tmp)
        fd = open_regular(tmp, flags, 0o600, follow=False)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a rename replaces a planted link itself, never its target
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def fresh_windows(now: float | None = None, path: Path | None = None,
                  notices: list[str] | None = None) -> list[PlanWindow]:
    """The recorded windows that are fresh (``is_fresh``) at ``now``.

    Args:
        now: wall time (default the clock).
        path: the file (default ``state_file()``).
        notices: where to say why a file or figure was left out.
    """
    now = time.time() if now is None else now
    out = []
    for name, w in read_state(path, notices).items():
        if is_fresh(w, now):
            out.append(w)
        elif notices is not None and (w.resets_at is None or w.resets_at > now):
            notices.append(f"Claude {name} window last seen {(now - w.observed_at) / 3600:.0f} h ago: not shown")
    return out


class StatusFile:
    """The file as the live engine reads it: parsed again only when it changed (stat)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = state_file() if path is None else path
        self._stamp: tuple[int, int, int] | None = None
        self._windows: dict[str, PlanWindow] = {}
        self.notices: list[str] = []

    def windows(self, now: float) -> list[PlanWindow]:
        """The fresh windows at ``now``; never raises."""
        try:
            st = os.lstat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._stamp = stamp
            self._windows = read_state(self.path, self.notices) if stamp is not None else {}
        return [w for w in self._windows.values() if is_fresh(w, now)]

    def take_notices(self) -> list[str]:
        """Why the file was not used, since the last call (said once per change of the file)."""
        out, self.notices = self.notices, []
        return out
