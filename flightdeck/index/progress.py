"""Progress of a long read, on a terminal's stderr only (rich, which Textual brings in).

Nothing is shown when stderr is not a terminal (a script, a pipe, a CI log),
and nothing ever goes to stdout, where ``--json`` output belongs. A read
that is over within ``DELAY`` seconds (a warm report) shows nothing either,
and does not pay for importing rich.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Final, TextIO

DELAY: Final = 0.5  # seconds before the bar appears


class ReadProgress:
    """Files and bytes read, the rate and the time left, as a transient bar on ``stream``."""

    def __init__(self, total_files: int, total_bytes: int, stream: TextIO | None = None,
                 *, delay: float = DELAY) -> None:
        """Args:
            total_files: files to go through.
            total_bytes: their size.
            stream: where to draw (default stderr); nothing is drawn unless it is a terminal.
            delay: seconds of work before the bar appears.
        """
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self.stream)
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.delay = delay
        self._start = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def update(self, files: int, done_bytes: int, parsed_bytes: int) -> None:
        """After each file: files done, bytes gone through (stored or parsed), bytes parsed."""
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self._start < self.delay or files >= self.total_files:
                return
            self._open()
        self._bar.update(self._task, completed=done_bytes,
                         description=f"{files}/{self.total_files} files, {_mib(parsed_bytes)} parsed")

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=self.stream, stderr=True)
        self._bar = Progress(TextColumn("flightdeck: {task.description}", markup=False), BarColumn(),
                             DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                             console=console, transient=True)
        self._task = self._bar.add_task("reading", total=self.total_bytes)
        self._bar.start()

    def close(self) -> None:
        """Take the bar off the screen."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real stream
        return False


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
