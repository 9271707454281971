"""Readers and the engine's state, pickled for the parse-once index, their events apart.

A reader's state (Claude Code's held and recently released responses) and
the monitor's whole state hold tens of thousands of events; rebuilding each
from a pickle costs several times what decoding them as one msgpack array
does. So ``dumps`` sends every event to one array, written before the
pickle, and the pickle refers to them by index. Locks are made anew on load;
the shared flightdeck v1 reader stays the shared one (the engine tells v1
files by its identity).

Only files of our own 0700 cache folder, owned by us and never read through
a link (``index.store``), are ever unpickled: only this user could have
written them, as with report's summaries.
"""

from __future__ import annotations

import copyreg
import gc
import io
import pickle
import threading
import zlib
from typing import Any, Final

import msgspec

from flightdeck.core.events import Event
from flightdeck.ingest.formats import FLIGHTDECK_V1

_LOCK_TYPES: Final = (type(threading.Lock()), type(threading.RLock()))
_events_encoder: Final = msgspec.msgpack.Encoder()
_events_decoder: Final = msgspec.msgpack.Decoder(list[Event])
_loading = threading.local()  # the events of the state being unpickled on this thread


def _event_at(i: int) -> Event:
    """The ``i``-th event of the state being unpickled (``dumps``)."""
    events: list[Event] = _loading.events
    return events[i]


def _shared_v1() -> object:
    """The one flightdeck v1 reader: the engine tells v1 files by its identity."""
    return FLIGHTDECK_V1


def _new_lock() -> object:
    return threading.Lock()


def _new_rlock() -> object:
    return threading.RLock()


def dumps(obj: object) -> bytes:
    """``obj`` pickled, its events apart as one msgpack array.

    Decoding that array is several times faster than rebuilding tens of
    thousands of structs from a pickle (a reader's state holds Claude Code's
    recently released responses). A lock is made anew on load; the shared v1
    reader stays the shared one.

    Args:
        obj: a reader, or the engine's state.

    Raises a pickling error for a value that will not pickle.
    """
    return _dumps(obj)[0]


def _dumps(obj: object) -> tuple[bytes, list[Event]]:
    """``dumps``, and the events its array holds, in their order there."""
    events: list[Event] = []

    def by_index(ev: Event) -> tuple[Any, tuple[int]]:
        events.append(ev)  # pickle's memo sends each event here once
        return _event_at, (len(events) - 1,)

    table = copyreg.dispatch_table.copy()
    table[Event] = by_index
    table[_LOCK_TYPES[0]] = lambda _lock: (_new_lock, ())
    table[_LOCK_TYPES[1]] = lambda _lock: (_new_rlock, ())
    table[type(FLIGHTDECK_V1)] = lambda _v1: (_shared_v1, ())
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = table
    pickler.dump(obj)
    blob = _events_encoder.encode(events)
    return b"".join((len(blob).to_bytes(8, "little"), blob, buf.getvalue())), events


def loads(data: bytes | memoryview) -> Any:
    """What ``dumps`` made ``data`` from.

    Only ever given files of our own 0700 cache folder, owned by us and never
    read through a link (``store``): only this user could have written them,
    as with report's summaries.

    Raises ValueError, msgspec's and pickle's errors for bytes that are not one.
    """
    return _loads(data)[0]


def _loads(data: bytes | memoryview) -> tuple[Any, list[Event]]:
    """``loads``, and the events of its array (the objects the result refers to)."""
    view = memoryview(data)
    n = int.from_bytes(view[:8], "little")
    # Millions of new objects and no cycle among them: the cyclic collector
    # would walk them again and again while they are made (measured: half the time).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _loading.events = events = _events_decoder.decode(view[8 : 8 + n])
        return pickle.loads(view[8 + n :]), events
    finally:
        _loading.events = None
        if was_enabled:
            gc.enable()


def dumps_small(obj: object) -> bytes:
    """``dumps``, compressed: a reader's state stored beside each log (zlib's fastest
    level: its events repeat the same field names and models; about a fifth the size).

    Args:
        obj: a reader.
    """
    return dumps_small_events(obj)[0]


def dumps_small_events(obj: object) -> tuple[bytes, list[Event]]:
    """``dumps_small``, and the events it holds in the order ``loads_small_events`` gives them
    (a follow entry refers to these instead of storing them twice: ``index.store.FollowEntry``).

    Args:
        obj: a reader.
    """
    data, events = _dumps(obj)
    return zlib.compress(data, 1), events


def loads_small(data: bytes) -> Any:
    """What ``dumps_small`` made ``data`` from (raises as ``loads``, or zlib.error)."""
    return loads(zlib.decompress(data))


def loads_small_events(data: bytes) -> tuple[Any, list[Event]]:
    """``loads_small``, and the events it holds, in ``dumps_small_events``' order.

    Args:
        data: ``dumps_small`` bytes.
    """
    return _loads(zlib.decompress(data))

