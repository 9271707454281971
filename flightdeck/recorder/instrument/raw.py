"""Raw responses: ``with_raw_response`` and ``with_streaming_response`` calls, recorded like the others.

The SDKs build ``resource.with_raw_response.create`` (and ``.parse``) around
the resource's own ``create``, so a recorded call sees, instead of the parsed
response, the SDK's raw response object (openai ``LegacyAPIResponse`` /
``APIResponse``, anthropic ``APIResponse`` / ``AsyncAPIResponse``) whose
``parse()`` gives what ``create`` would have returned:

- Not streamed, body already read (``with_raw_response``): it is parsed at
  once (the SDK caches the parse per type, so the caller's own ``parse()``
  returns that same object) and written as a plain call; the caller gets the
  raw response itself, untouched.
- Streamed, or a body not read yet (``with_streaming_response``): the caller
  gets a proxy of the raw response (headers, ``iter_lines()``, ``close()``...
  all the SDK's). Its ``parse()`` returns the parsed response (written then)
  or, for a stream, the SDK stream behind a stream proxy (written when the
  stream ends). A raw response dropped without ``parse()`` (read as bytes, or
  not read) is written with its usage unknown, saying why.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from typing import Any

from flightdeck.recorder.instrument.calls import TimedCall
from flightdeck.recorder.instrument.streams import AsyncStreamProxy, Observer, SyncStreamProxy
from flightdeck.recorder.sinks import warn_once

__all__ = ["RawResponseProxy", "is_raw", "raw_async", "raw_sync"]

# The SDKs' raw response classes (openai ``_legacy_response`` / ``_response``, anthropic ``_response``).
_RAW_NAMES = frozenset({"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse"})
_RAW_TYPES: dict[type, bool] = {}


def is_raw(result: Any) -> bool:
    """Whether ``result`` is an SDK raw response rather than a parsed one (by class, cached per type).

    Args:
        result: what the wrapped SDK method returned.
    """
    cls = type(result)
    known = _RAW_TYPES.get(cls)
    if known is None:
        known = _RAW_TYPES[cls] = any(c.__name__ in _RAW_NAMES for c in cls.__mro__) and callable(
            getattr(cls, "parse", None))
    return known


def _body_read(raw: Any) -> bool:
    http = getattr(raw, "http_response", None)
    return bool(getattr(http, "is_closed", False))


Done = Callable[[Any], None]  # writes a non-streamed call from its parsed response


def raw_sync(call: TimedCall, raw: Any, stream: bool, done: Done, observer: Callable[[], Observer]) -> Any:
    """What a sync wrapped method returns for a raw response (see the module docstring).

    Args:
        call: the call in progress (sent, not finished).
        raw: the SDK's raw response.
        stream: whether the request asked for a stream.
        done: writes the call from a parsed response (``wrap._done``).
        observer: makes the stream observer, for a stream parsed later.
    """
    if not stream and _body_read(raw):
        try:
            parsed = raw.parse()
        except Exception as exc:  # the caller's own parse() will say so; the call is still written
            _unparsed(call, f"the raw response could not be parsed ({type(exc).__name__}: {exc})")
            return raw
        if not inspect.isawaitable(parsed):
            done(parsed)
            return raw
        _close(parsed)  # (a sync client never gives a coroutine; if one does, parse it lazily)
    return RawResponseProxy(raw, call, stream, done, observer)


async def raw_async(call: TimedCall, raw: Any, stream: bool, done: Done, observer: Callable[[], Observer]) -> Any:
    """``raw_sync`` for async clients, whose raw ``parse()`` may be a coroutine (anthropic)."""
    if not stream and _body_read(raw):
        try:
            parsed = raw.parse()
            if inspect.isawaitable(parsed):
                parsed = await parsed
        except Exception as exc:
            _unparsed(call, f"the raw response could not be parsed ({type(exc).__name__}: {exc})")
            return raw
        done(parsed)
        return raw
    return RawResponseProxy(raw, call, stream, done, observer)


def _close(coro: Any) -> None:
    close = getattr(coro, "close", None)
    if callable(close):
        close()


def _unparsed(call: TimedCall, why: str) -> None:
    call.received()
    call.problem(why)
    call.finish(None)


class RawResponseProxy:
    """The SDK's raw response, recorded when it is parsed (or dropped unparsed).

    Every attribute but ``parse`` is the SDK's own (``headers``, ``http_response``,
    ``iter_lines()``, ``read()``, ``close()``, ...).
    """

    __slots__ = ("__weakref__", "_call", "_done", "_ended", "_inner", "_observer", "_stream")

    def __init__(self, raw: Any, call: TimedCall, stream: bool, done: Done,
                 observer: Callable[[], Observer]) -> None:
        self._inner = raw
        self._call = call
        self._stream = stream
        self._done = done
        self._observer = observer
        self._ended = False

    def __getattr__(self, name: str) -> Any:
        if name in RawResponseProxy.__slots__:  # a slot not set yet (a failed __init__): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return repr(self._inner)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's ``parse()``; the call is written from what it gives (a stream: when the stream ends)."""
        try:
            parsed = self._inner.parse(*args, **kwargs)
        except BaseException as exc:
            self._fail(exc)
            raise
        if inspect.isawaitable(parsed):
            return self._parse_later(parsed)
        return self._took(parsed)

    async def _parse_later(self, pending: Any) -> Any:
        try:
            parsed = await pending
        except BaseException as exc:
            self._fail(exc)
            raise
        return self._took(parsed)

    def _took(self, parsed: Any) -> Any:
        if self._ended:  # parsed again (the SDK hands back its cached object): written once
            return parsed
        self._ended = True
        try:
            if self._stream:
                proxy = AsyncStreamProxy if hasattr(type(parsed), "__aiter__") else SyncStreamProxy
                return proxy(parsed, self._call, self._observer())
            self._done(parsed)
        except Exception:  # a bug of ours must not become the agent's exception
            warn_once("raw-response", "internal error recording a raw response:\n" + traceback.format_exc())
        return parsed

    def _fail(self, exc: BaseException) -> None:
        if self._ended:
            return
        self._ended = True
        self._call.received()
        self._call.finish(exc)

    def __del__(self) -> None:
        if getattr(self, "_ended", True):  # True too when __init__ never ran to its end
            return
        self._ended = True
        _unparsed(self._call, "the raw response was never parse()d, so its usage is unknown "
                              "(read it with .parse() to have it recorded)")
