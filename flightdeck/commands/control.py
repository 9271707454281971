"""``flightdeck pause|resume|downgrade|restore``: steer an agent from the shell (SPEC 5.3).

Two ways to reach the agent:

- ``PATH`` (its telemetry file): the command is appended to the sidecar
  ``PATH.control`` with the same 0600 rules as the cockpit's keys
  (``core.control.append_command``), then the telemetry file is read, from
  where it ended when the command was sent, until the agent's ``signal_ack``
  for it arrives. The telemetry file is only read, never written.
- ``--socket PATH``: the monitor (``flightdeck tail --socket PATH``) that
  serves the socket takes the command on a connection of its own (checked
  like an agent's: same uid), forwards it to its agents as if a key had been
  pressed, and sends the ack back on that connection.

Exit codes: 0 the agent acknowledged (the ack is printed, with any refusal);
4 no ack within ``--wait`` seconds; 2 a usage error (bad arguments, no such
file, nothing listening on the socket).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import stat
import sys
import time
from pathlib import Path

from flightdeck.core.control import append_command, new_command, sidecar_path
from flightdeck.core.events import KIND_SIGNAL_ACK, Command, Event, decode_line, encode_command

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_ACK = 4
COMMANDS = ("pause", "resume", "downgrade", "restore")
ORIGIN = "shell"  # who sent it, as the cockpit shows it ("PAUSED by shell")
POLL_SECONDS = 0.05
MAX_READ = 1 << 20  # bytes read per poll: a busy log is read in steps, never whole


class UsageError(ValueError):
    """Arguments that cannot be used; the message says which."""


def parse_to(pairs: list[str]) -> dict[str, str] | None:
    """``["gpt-4o=gpt-4o-mini", ...]`` -> a mapping; UsageError on a malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--to {pair!r}: expected MODEL=REPLACEMENT, e.g. gpt-4o=gpt-4o-mini")
        out[old.strip()] = new.strip()
    return out or None


def build_command(args: argparse.Namespace) -> Command:
    """The command the arguments ask for; UsageError when they do not make one."""
    if args.wait is None or not (args.wait >= 0) or args.wait == float("inf"):
        raise UsageError("--wait must be 0 or more seconds")
    if bool(args.path) == bool(args.socket):
        raise UsageError("give the agent's telemetry file PATH, or --socket PATH (not both)")
    target = {"run": args.run} if args.run else {"agent": args.agent} if args.agent else None
    to = parse_to(getattr(args, "to", None) or [])
    return new_command(args.control_cmd, origin=ORIGIN, reason=args.reason, to=to, target=target)


class AckWaiter:
    """Reads a telemetry file from where it ends now, for the ``signal_ack`` of one command.

    Read-only and regular files only (a FIFO or device at the path is refused,
    never opened for a blocking read). A file replaced (rotation) or cut short
    is followed to its new content; partial lines wait for their newline.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._offset = 0
        self._pending = b""
        self._open(at_end=True)

    def _open(self, *, at_end: bool) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise UsageError(f"{self.path} is not a regular file")
        self.close()
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        self._offset = st.st_size if at_end else 0
        self._pending = b""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def poll(self, ref: str) -> list[Event]:
        """The acks of ``ref`` written since the last poll."""
        found = self._read(ref)
        try:
            st = os.stat(self.path)
        except OSError:
            return found
        if (st.st_dev, st.st_ino) != self._ino:
            try:
                self._open(at_end=False)  # the old file was read to its end above
            except (OSError, UsageError):
                return found
            found += self._read(ref)
        elif self._fd is not None and st.st_size < self._offset:
            self._offset, self._pending = 0, b""  # truncated: the ack is in what is written next
        return found

    def _read(self, ref: str) -> list[Event]:
        if self._fd is None:
            return []
        data = os.pread(self._fd, MAX_READ, self._offset)
        self._offset += len(data)
        return self._acks(data, ref)

    def _acks(self, data: bytes, ref: str) -> list[Event]:
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()[-MAX_READ:]
        needle = ref.encode()
        out = []
        for line in lines:
            if needle not in line:
                continue  # most lines are calls: skip them without decoding
            ev = decode_line(line)
            if isinstance(ev, Event) and ev.kind == KIND_SIGNAL_ACK and ev.ref == ref:
                out.append(ev)
        return out


def describe_ack(ack: Event, sent_at: float, seen_at: float) -> str:
    """One line: who acknowledged, how fast, the state it reports, and any refusal."""
    who = ack.agent or "the agent"
    line = f"{ack.cmd or 'command'}: acked by {who} (run {ack.run}) in {(seen_at - sent_at) * 1000:.0f} ms"
    state = ack.state if isinstance(ack.state, dict) else {}
    now: list[str] = []
    if isinstance(state.get("paused"), bool):
        now.append("paused" if state["paused"] else "running")
    models = state.get("models")
    if isinstance(models, dict):
        swaps = [f"{k}→{v}" for k, v in sorted(models.items()) if k != v]
        now.append("models " + ", ".join(swaps) if swaps else "models as asked")
    if now:
        line += ": " + ", ".join(now)
    if ack.message:
        line += f"; not applied: {ack.message}"
    return line


def _wait_file(path: Path, command: Command, wait: float) -> int:
    try:
        waiter = AckWaiter(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such telemetry file (is the agent writing it?)") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder; give the agent's telemetry file") from None
    try:
        try:
            append_command(sidecar_path(path), command)
        except OSError as exc:
            raise UsageError(f"cannot write {sidecar_path(path)}: {exc}") from None
        deadline = time.monotonic() + wait
        while True:
            acks = waiter.poll(command.id)
            if acks:
                print(describe_ack(acks[0], command.ts, time.time()))
                return EXIT_OK
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
    finally:
        waiter.close()
    print(f"flightdeck {command.cmd}: no ack within {wait:g} s (sent as {command.id} to {sidecar_path(path)}; "
          "an agent reads its commands before each model call: is it running?)", file=sys.stderr)
    return EXIT_NO_ACK


def _wait_socket(path: Path, command: Command, wait: float) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise UsageError(f"no monitor on {path}: {exc} "
                             f"(start one with `flightdeck tail --socket {path}`)") from None
        sock.sendall(encode_command(command))
        deadline = time.monotonic() + wait
        pending = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(min(left, 0.5))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break  # the monitor went away
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            for line in lines:
                ev = decode_line(line)
                if isinstance(ev, Event) and ev.kind == KIND_SIGNAL_ACK and ev.ref == command.id:
                    print(describe_ack(ev, command.ts, time.time()))
                    return EXIT_OK
                if not isinstance(ev, Event) and line.startswith(b"{") and b'"error"' in line:
                    try:
                        problem = json.loads(line).get("error")
                    except ValueError:
                        problem = None
                    if problem:
                        print(f"flightdeck {command.cmd}: the monitor says: {problem}", file=sys.stderr)
    finally:
        sock.close()
    print(f"flightdeck {command.cmd}: no ack within {wait:g} s through {path} (sent as {command.id})",
          file=sys.stderr)
    return EXIT_NO_ACK


def run(args: argparse.Namespace) -> int:
    """Send the command and wait for its ack; the exit status."""
    try:
        command = build_command(args)
        if args.socket:
            return _wait_socket(Path(args.socket).expanduser(), command, args.wait)
        return _wait_file(Path(args.path).expanduser(), command, args.wait)
    except UsageError as exc:
        print(f"flightdeck {args.control_cmd}: {exc}", file=sys.stderr)
        return EXIT_USAGE
