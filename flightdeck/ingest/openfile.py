"""Opening a log for reading, and nothing that is not a regular file.

A FIFO blocks ``open()`` until a writer comes (forever, for a monitor's
ingest thread), ``/dev/zero`` never ends, a terminal or a socket is no log.
The checks themselves (stat, non-blocking open, fstat re-check) are
``core.fsopen.open_regular``, shared with the recorder and the control
channel; this module is the readers' face of it: read-only opens that follow
symlinks (that is how logs are often laid out) and the notice readers show.
"""

from __future__ import annotations

import os

from flightdeck.core.fsopen import NotRegularFile, file_kind
from flightdeck.core.fsopen import open_regular as _open_regular

__all__ = ["NotRegularFile", "kind_of", "open_regular", "refusal"]


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words for a notice ("a FIFO").

    Args:
        mode: ``os.stat_result.st_mode``.
    """
    return f"a {file_kind(mode)}"


def refusal(path: str | os.PathLike[str], mode: int) -> str:
    """The notice for a path that is not a regular file.

    Args:
        path: the path as the user knows it.
        mode: its ``st_mode``.
    """
    return f"{os.fspath(path)}: {kind_of(mode)}, not a regular file: not read"


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor on a regular file; ``NotRegularFile`` for anything else.

    Args:
        path: the file to open (symlinks are followed).

    Raises ``OSError`` as ``os.open`` does (missing, permission, EMFILE) and
    ``NotRegularFile`` (an ``OSError``, whose text is ``refusal``'s) for a
    FIFO, device, socket or folder; never blocks.
    """
    try:
        return _open_regular(path, os.O_RDONLY)
    except NotRegularFile:
        raise NotRegularFile(refusal(path, os.stat(path).st_mode)) from None
