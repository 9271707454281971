"""Per-instance method wrappers shared by the OpenAI and Anthropic instrumentation.

Only the given resource *instance* is changed (an instance attribute shadows
the class's method), so two clients never share state and the SDK classes are
untouched. The wrapper keeps the original in ``__wrapped__``: instrumenting
again replaces the recording, it never stacks it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from flightdeck.recorder.instrument.calls import TimedCall, begin, begin_async
from flightdeck.recorder.instrument.raw import is_raw, raw_async, raw_sync
from flightdeck.recorder.instrument.streams import (
    IN_HELPER,
    AsyncManagerProxy,
    AsyncStreamProxy,
    ChatObserver,
    ManagerProxy,
    Observer,
    SyncStreamProxy,
    with_tier,
)

if TYPE_CHECKING:
    from flightdeck.recorder.recorder import Recorder

__all__ = ["Target", "patch_method"]

_MARK = "__flightdeck__"
_RAW_VIEWS = ("with_raw_response", "with_streaming_response")


# Providers whose usage normaliser reads what the OpenAI SDK returns (OpenAI-shaped, with
# their own extras); for any other provider behind the OpenAI SDK the OpenAI rules apply.
_OPENAI_SHAPED = frozenset({"openai", "azure", "deepseek", "openrouter", "mistral", "ollama"})


class Target:
    """Where one wrapped method's calls go and how its streams are read."""

    __slots__ = ("api", "chat", "observer", "provider", "rec", "route", "wire")

    def __init__(self, rec: Recorder, provider: str, route: str, api: str | None,
                 observer: Callable[[], Observer], chat: bool = False, family: str | None = None) -> None:
        """Args:
            rec: the recorder.
            provider, route, api: written on every call (``api`` picks the usage flavour).
            observer: makes the stream observer of this API.
            chat: Chat Completions (asks for ``stream_options.include_usage``).
            family: the SDK (``openai`` / ``anthropic``): its payloads' usage shape, used
                when the provider's own normaliser expects another (Vertex, Gemini, ...).
        """
        self.rec, self.provider, self.route, self.api = rec, provider, route, api
        self.observer, self.chat = observer, chat
        if family == "anthropic":
            self.wire: str | None = None if provider == "anthropic" else "anthropic"
        elif family == "openai":
            self.wire = None if provider.lower() in _OPENAI_SHAPED else "openai"
        else:
            self.wire = None


def _ask_for_usage(kwargs: MutableMapping[str, Any]) -> bool:
    """Ask a Chat Completions stream for its usage chunk; True when the caller had not."""
    options = kwargs.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return False
    kwargs["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return True


def _refused(exc: BaseException) -> bool:
    """A server that rejects ``stream_options`` (older OpenAI-compatible servers say so with a 400/422)."""
    return getattr(exc, "status_code", None) in (400, 422) and "stream_options" in str(exc)


def _restore(kwargs: MutableMapping[str, Any], original: Any) -> None:
    if isinstance(original, dict):
        kwargs["stream_options"] = original
    else:
        kwargs.pop("stream_options", None)


def _done(t: Target, call: TimedCall, result: Any) -> None:
    """A response that was not streamed: mark it, read its usage, write."""
    call.received()
    # A raw response parsed as a plain dict (``parse(to=dict)``) holds its usage as a key.
    if type(result) is dict:
        usage, tier = result.get("usage"), result.get("service_tier")
    else:
        usage = getattr(result, "usage", None)
        tier = getattr(result, "service_tier", None) if t.api is not None else None
    if usage is None:
        call.problem(f"the {type(result).__name__} response carried no usage")
    else:
        # The SDK's object as it is (see core.normalize.fast). OpenAI names the tier that served
        # the call beside the usage, not in it: it goes along, as it prices the call.
        call.set_usage(with_tier(usage, tier) if t.api is not None else usage, t.api)
    call.finish(None)


def _observer(t: Target, hide: bool, refused: bool) -> Observer:
    """The stream observer of one call (Chat: hiding the usage chunk it asked for, knowing a refusal)."""
    return ChatObserver(hide, refused) if t.chat else t.observer()


def _create_sync(t: Target, orig: Callable[..., Any]) -> Callable[..., Any]:
    def create(*args: Any, **kwargs: Any) -> Any:
        if IN_HELPER.get():  # a stream helper's own request: the helper records it
            return orig(*args, **kwargs)
        stream = kwargs.get("stream") is True
        call = begin(t.rec, t.provider, t.route, t.api, stream, kwargs, t.wire)
        original = kwargs.get("stream_options")
        hide = t.chat and stream and _ask_for_usage(kwargs)
        refused = False
        call.sent()
        try:
            try:
                result = orig(*args, **kwargs)
            except Exception as exc:
                if not (hide and _refused(exc)):
                    raise
                _restore(kwargs, original)
                hide, refused = False, True
                call.sent()
                result = orig(*args, **kwargs)
        except BaseException as exc:
            call.received()
            call.finish(exc)
            raise
        if is_raw(result):  # with_raw_response / with_streaming_response: see ``raw``
            return raw_sync(call, result, stream, lambda parsed: _done(t, call, parsed),
                            lambda: _observer(t, hide, refused))
        if not stream:
            _done(t, call, result)
            return result
        return SyncStreamProxy(result, call, _observer(t, hide, refused))

    return create


def _create_async(t: Target, orig: Callable[..., Any]) -> Callable[..., Any]:
    async def create(*args: Any, **kwargs: Any) -> Any:
        if IN_HELPER.get():  # a stream helper's own request: the helper records it
            return await orig(*args, **kwargs)
        stream = kwargs.get("stream") is True
        call = await begin_async(t.rec, t.provider, t.route, t.api, stream, kwargs, t.wire)
        original = kwargs.get("stream_options")
        hide = t.chat and stream and _ask_for_usage(kwargs)
        refused = False
        call.sent()
        try:
            try:
                result = await orig(*args, **kwargs)
            except Exception as exc:
                if not (hide and _refused(exc)):
                    raise
                _restore(kwargs, original)
                hide, refused = False, True
                call.sent()
                result = await orig(*args, **kwargs)
        except BaseException as exc:
            call.received()
            call.finish(exc)
            raise
        if is_raw(result):
            return await raw_async(call, result, stream, lambda parsed: _done(t, call, parsed),
                                   lambda: _observer(t, hide, refused))
        if not stream:
            _done(t, call, result)
            return result
        return AsyncStreamProxy(result, call, _observer(t, hide, refused))

    return create


def _stream_helper(t: Target, orig: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
    def start(kwargs: MutableMapping[str, Any], async_gate: bool) -> tuple[Any, Callable[[], Observer]]:
        if async_gate:
            return begin_async(t.rec, t.provider, t.route, t.api, True, kwargs, t.wire), t.observer
        return begin(t.rec, t.provider, t.route, t.api, True, kwargs, t.wire), t.observer

    proxy = AsyncManagerProxy if is_async else ManagerProxy

    def stream(*args: Any, **kwargs: Any) -> Any:
        return proxy(orig, args, kwargs, start)

    return stream


def patch_method(resource: Any, name: str, target: Target, *, is_async: bool, helper: bool = False) -> bool:
    """Replace ``resource.name`` (on this instance only) by its recorded version.

    Args:
        resource: an SDK resource instance (``client.chat.completions``, ``client.messages``, ...).
        name: ``create`` or ``stream``.
        target: where the calls go.
        helper: ``name`` is a stream helper returning a manager (``stream``).
        is_async: whether the client is async (its methods return coroutines).
    Returns False when the resource has no such method (an older SDK).
    """
    method = getattr(resource, name, None)
    if method is None or not callable(method):
        return False
    orig = method.__wrapped__ if getattr(method, _MARK, False) else method
    if helper:
        wrapper = _stream_helper(target, orig, is_async)
    elif is_async:
        wrapper = _create_async(target, orig)
    else:
        wrapper = _create_sync(target, orig)
    functools.update_wrapper(wrapper, orig)
    setattr(wrapper, _MARK, True)
    setattr(resource, name, wrapper)
    # ``with_raw_response`` / ``with_streaming_response`` are cached properties built from the
    # instance's methods when first read: one read before now holds the unrecorded ones.
    attrs = getattr(resource, "__dict__", None)
    if isinstance(attrs, dict):
        for cached in _RAW_VIEWS:
            attrs.pop(cached, None)
    return True
