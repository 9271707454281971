"""Stream proxies: the SDK's own stream, watched on the way through.

A proxy wraps the SDK's raw event stream (``openai.Stream`` / ``AsyncStream``,
``anthropic.Stream`` / ``AsyncStream``) and behaves like it: iteration,
``with`` / ``async with``, ``close()``, and every other attribute (``response``,
...) passed through. The SDK's stream helpers (``messages.stream()``,
``responses.stream()``) read their raw stream through the proxy, so
``text_stream``, ``get_final_message()`` and ``get_final_response()`` are the
SDK's own and see exactly the SDK's events.

Each event goes to an ``Observer`` of its wire format, which says whether it is
a token (thinking included: ``ttft``), visible text (``ttft_text_ms`` when
later), or carries the usage. The event is written once, when the stream is
exhausted, closed, fails, or is garbage-collected unread (abandoned).
"""

from __future__ import annotations

import contextvars
import traceback
from typing import Any

from flightdeck.recorder.instrument.calls import TimedCall
from flightdeck.recorder.sinks import warn_once

__all__ = [
    "IN_HELPER",
    "AnthropicObserver",
    "AsyncManagerProxy",
    "AsyncStreamProxy",
    "ChatObserver",
    "ManagerProxy",
    "Observer",
    "ResponsesObserver",
    "SyncStreamProxy",
    "with_tier",
]

# True while a stream helper sends its request: a helper that calls the client's own
# (wrapped) ``create`` (``responses.stream`` does) must not record the call twice.
IN_HELPER: contextvars.ContextVar[bool] = contextvars.ContextVar("flightdeck_in_helper", default=False)

# What observe() says about one event.
PASS, TOKEN, TEXT, HIDE = 0, 1, 2, 3


class Observer:
    """Reads one wire format's events: marks, usage, completion. Subclasses per API.

    A stream is read in two phases. ``observe`` reads each event until the
    first visible text (TEXT is the last mark a stream can take); from then on
    the proxy hands the events to ``tail``, which only looks for the usage and
    the end. Most events of a stream come after its first text, so the common
    path is one cheap method (see ``tail``'s measurement).

    ``usage`` is what ``Call.set_usage`` gets once the stream is complete
    (None until the usage-bearing event came); ``complete`` is True once the
    stream's last meaningful event was seen; ``count`` the events read so far.
    """

    __slots__ = ("complete", "count", "tier", "usage")
    api: str | None = None
    # ``tail``'s commonest answer, restated for the proxy's ``for`` loop to test inline: an event
    # whose ``quiet_field`` equals ``quiet`` is one ``tail`` would only count (None: no such test).
    quiet_field: str | None = None
    quiet: Any = None

    def __init__(self) -> None:
        self.usage: Any = None
        self.tier: Any = None  # OpenAI: the service_tier beside the usage (it prices the call)
        self.complete = False
        self.count = 0

    def observe(self, event: Any) -> int:
        """PASS (0), TOKEN (a generated token, e.g. thinking), TEXT (visible output) or HIDE.

        Args:
            event: one event of the SDK stream, before the first visible text.
        """
        raise NotImplementedError

    def tail(self, event: Any) -> int:
        """PASS or HIDE for an event after the first visible text: the marks are taken,
        only the usage and the end are read.

        Args:
            event: one event of the SDK stream.
        """
        raise NotImplementedError

    def final_usage(self) -> Any:
        """The usage for ``Call.set_usage``: the SDK's own object (the normaliser reads it as it is),
        with the service tier the response named beside it (``with_tier``)."""
        return with_tier(self.usage, self.tier)

    def missing_usage(self) -> str:
        return "the stream ended without reporting its usage"


def with_tier(usage: Any, tier: Any) -> Any:
    """An OpenAI usage with the response's top-level ``service_tier`` (``flex``, ``priority``...),
    as the normaliser reads a whole response; the usage alone when no tier was named.

    Args:
        usage: the SDK's usage object (or dict).
        tier: the ``service_tier`` of the response, chunk or Responses object carrying it.
    """
    return {"usage": usage, "service_tier": tier} if isinstance(tier, str) and tier else usage


def _thinking(delta: Any) -> bool:
    """Whether a Chat delta carries reasoning: ``reasoning_content`` (DeepSeek, vLLM) or
    ``reasoning`` (OpenRouter, Ollama), fields a provider adds beyond the SDK's type.

    Read from the pydantic model's extras (or its fields, for an SDK that declares them), not
    with ``getattr``: a missing attribute costs pydantic a raised AttributeError, microseconds
    per chunk. Both names from one lookup of the extras: every chunk of a reasoning model's
    thinking comes here.
    """
    extra = getattr(delta, "__pydantic_extra__", None)
    if isinstance(extra, dict):
        fields = delta.__dict__
        return bool(extra.get("reasoning_content") or fields.get("reasoning_content")
                    or extra.get("reasoning") or fields.get("reasoning"))
    return bool(getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None))


class ChatObserver(Observer):
    """Chat Completions chunks (``ChatCompletionChunk``).

    Visible output: ``delta.content``, ``delta.refusal``, ``delta.tool_calls``.
    Thinking (``delta.reasoning_content`` of DeepSeek and vLLM, ``delta.reasoning``
    of OpenRouter and Ollama) counts as a token but not as text. Usage comes in
    the chunk with empty ``choices`` (``stream_options.include_usage``), which is
    hidden when the wrapper asked for it on the caller's behalf.
    """

    __slots__ = ("hide_usage_chunk", "refused")
    api = "chat"
    quiet_field = "usage"  # a chunk without usage (quiet None)

    def __init__(self, hide_usage_chunk: bool, refused: bool = False) -> None:
        """Args:
            hide_usage_chunk: the wrapper asked for the usage chunk: keep it from the caller.
            refused: the server refused ``stream_options`` (the reason the usage is missing).
        """
        # Observer.__init__'s four fields set here, not through super(): an observer is made per
        # stream, and super().__init__() made it cost 3.1k instructions instead of 1.7k (valgrind).
        self.usage: Any = None
        self.tier: Any = None
        self.complete = False
        self.count = 0
        self.hide_usage_chunk = hide_usage_chunk
        self.refused = refused

    def observe(self, event: Any) -> int:
        self.count += 1
        usage = getattr(event, "usage", None)
        choices = getattr(event, "choices", None)
        if usage is not None and self._usage_chunk(event, usage, choices):
            return HIDE
        seen = PASS
        for choice in choices or ():
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            if delta.content or getattr(delta, "tool_calls", None) or getattr(delta, "refusal", None):
                return TEXT
            if _thinking(delta):
                seen = TOKEN
        return seen

    def tail(self, event: Any) -> int:
        # One attribute read per chunk: the choices are only read on the (last) usage chunk.
        self.count += 1
        usage = getattr(event, "usage", None)
        if usage is None:
            return PASS
        return HIDE if self._usage_chunk(event, usage, getattr(event, "choices", None)) else PASS

    def _usage_chunk(self, event: Any, usage: Any, choices: Any) -> bool:
        """Keep a chunk's usage (the last one wins); True when the chunk is to be hidden:
        a usage-only chunk the caller did not ask for."""
        self.usage = usage
        self.tier = getattr(event, "service_tier", None)
        self.complete = True
        return not choices and self.hide_usage_chunk

    def missing_usage(self) -> str:
        if self.refused:
            return "the server refused stream_options.include_usage, so the stream carried no usage"
        return "the stream ended without a usage chunk (stream_options.include_usage)"


_RESPONSES_TEXT = frozenset({"response.output_text.delta", "response.refusal.delta",
                             "response.function_call_arguments.delta",
                             "response.custom_tool_call_input.delta"})
_RESPONSES_THINKING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_RESPONSES_END = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesObserver(Observer):
    """Responses API stream events: text deltas, reasoning deltas, and the final
    ``response.completed`` (or ``.incomplete`` / ``.failed``) carrying ``response.usage``."""

    __slots__ = ()
    api = "responses"

    def observe(self, event: Any) -> int:
        self.count += 1
        kind = getattr(event, "type", None)
        if kind in _RESPONSES_TEXT:
            return TEXT
        if kind in _RESPONSES_THINKING:
            return TOKEN
        if kind in _RESPONSES_END:
            self._end_event(event)
        return PASS

    def tail(self, event: Any) -> int:
        self.count += 1
        if getattr(event, "type", None) in _RESPONSES_END:
            self._end_event(event)
        return PASS

    def _end_event(self, event: Any) -> None:
        response = getattr(event, "response", None)
        self.usage = getattr(response, "usage", None)
        self.tier = getattr(response, "service_tier", None)
        self.complete = True

    def missing_usage(self) -> str:
        return "the stream ended before response.completed carried its usage"


class AnthropicObserver(Observer):
    """Anthropic raw stream events: ``message_start`` opens the usage, each
    ``message_delta`` carries the cumulative totals; ``text_delta`` and
    ``input_json_delta`` are visible output, ``thinking_delta`` a token."""

    __slots__ = ("start",)
    api = None
    quiet_field, quiet = "type", "content_block_delta"

    def __init__(self) -> None:
        self.usage: Any = None  # Observer's fields, as in ChatObserver.__init__
        self.tier: Any = None
        self.complete = False
        self.count = 0
        self.start: Any = None

    def observe(self, event: Any) -> int:
        self.count += 1
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            dtype = getattr(getattr(event, "delta", None), "type", None)
            if dtype == "text_delta" or dtype == "input_json_delta":
                return TEXT
            if dtype == "thinking_delta":
                return TOKEN
            return PASS
        if kind == "content_block_start":
            block = getattr(getattr(event, "content_block", None), "type", None)
            return TOKEN if block == "redacted_thinking" else PASS
        self._usage_event(event, kind)
        return PASS

    def tail(self, event: Any) -> int:
        self.count += 1
        kind = getattr(event, "type", None)
        if kind != "content_block_delta":  # the deltas, most of a stream, stop here
            self._usage_event(event, kind)
        return PASS

    def _usage_event(self, event: Any, kind: Any) -> None:
        if kind == "message_start":
            self.start = getattr(getattr(event, "message", None), "usage", None)
        elif kind == "message_delta":
            self.usage = getattr(event, "usage", None)
            self.complete = True

    def final_usage(self) -> Any:
        # The normaliser merges start and the cumulative delta (the rule lives there). The SDK's
        # usage objects go as they are: its quick reading views a pydantic model's fields for
        # 0.2 us where model_dump() took 6-8 us each (core.normalize.fast).
        return [{"type": "message_start", "message": {"usage": self.start}},
                {"type": "message_delta", "usage": self.usage}]

    def missing_usage(self) -> str:
        return "the stream ended before message_delta carried its usage"


def _observe_failed() -> None:
    warn_once("stream-observe", "internal error reading a stream event:\n" + traceback.format_exc())


class _Watch:
    """What both proxies share: the call, its observer, and the single write."""

    __slots__ = ("__weakref__", "_call", "_ended", "_inner", "_obs", "_see")

    def __init__(self, inner: Any, call: TimedCall, observer: Observer) -> None:
        self._inner = inner
        self._call = call
        self._obs = observer
        self._see = observer.observe  # then observer.tail, from the first visible text
        self._ended = False

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the proxy lacks: the SDK stream answers (response, ...).
        if name in _Watch.__slots__:  # a slot not set yet (a failed __init__): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)

    def _end(self, exc: BaseException | None, why: str | None = None) -> None:
        """Write the call once: usage when complete, else the reason it is unknown."""
        if self._ended:
            return
        self._ended = True
        call, obs = self._call, self._obs
        try:
            call.received()
            if obs.usage is not None and obs.complete:
                call.set_usage(obs.final_usage(), obs.api)
            elif exc is None:
                call.problem(why or obs.missing_usage())
        except Exception:
            warn_once("stream-end", "internal error ending a stream:\n" + traceback.format_exc())
        call.finish(exc)

    def _seen(self, event: Any) -> bool:
        """One event read by ``next()``: mark it; False for an event hidden from the caller."""
        try:
            what = self._see(event)
        except Exception:
            _observe_failed()
            return True
        if what:
            if what == HIDE:
                return False
            if what == TEXT:
                self._see = self._obs.tail
                self._call.first_text()
            else:
                self._call.first_token()
        return True

    def _abandoned(self) -> str:
        return f"stream abandoned after {self._obs.count} events, before its usage (never closed or read to its end)"

    def __del__(self) -> None:
        if not getattr(self, "_ended", True):  # True too when __init__ never ran to its end
            self._end(None, self._abandoned())


class SyncStreamProxy(_Watch):
    """The SDK's sync ``Stream``, recorded. Iterate it, ``with`` it, ``close()`` it.

    Like the SDK's stream, every ``iter()`` and ``next()`` reads the one underlying stream.
    """

    __slots__ = ()

    def __iter__(self) -> Any:
        # ``for`` loops run in this generator (a resume per event, not a Python ``__next__`` call).
        # It holds the proxy while the loop runs; the proxy never holds it, so there is no
        # reference cycle and a proxy dropped half-way is freed (written as abandoned) at once.
        # The observer's method in force (``observe``, then ``tail`` from the first visible text)
        # is a local, switched once per stream: no per-event lookup, no per-event phase test.
        #
        # In the tail phase the observer's quiet test (``Observer.quiet_field``) runs here, inline:
        # most events of a stream only need counting, and calling ``tail`` for them cost about 500
        # instructions more an event (valgrind, the proxy's cost per chunk over the bare SDK
        # stream: chat 1637 -> 1168, messages 1640 -> 1114). Pinned, with ``next()`` (which
        # always calls ``tail``), by tests/recorder/test_instrument_streams.py.
        inner, obs, call = self._inner, self._obs, self._call
        see = self._see
        field: str | None = None  # the quiet field, once in the tail phase
        quiet = obs.quiet
        tokened = False  # first_token() was called
        try:
            for event in inner:
                if field is not None and getattr(event, field, None) == quiet:
                    obs.count += 1
                    yield event
                    continue
                try:
                    what = see(event)
                except Exception:
                    _observe_failed()
                    what = PASS
                if what:  # PASS is 0: most events stop here
                    if what == HIDE:
                        continue
                    if what == TEXT:  # the last mark: only the usage is read from here on
                        see = self._see = obs.tail
                        field = obs.quiet_field
                        call.first_text()
                    elif not tokened:  # a thinking model's many tokens before its text: one mark
                        tokened = True
                        call.first_token()
                yield event
        except GeneratorExit:  # the loop stopped early: close() or the proxy's end records it
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self._end(None)

    def __next__(self) -> Any:
        inner = self._inner
        while True:
            try:
                event = next(inner)
            except StopIteration:
                self._end(None)
                raise
            except BaseException as exc:
                self._end(exc)
                raise
            if self._seen(event):
                return event

    def __enter__(self) -> SyncStreamProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the SDK stream; a stream closed before its end is written without usage."""
        try:
            self._inner.close()
        finally:
            self._end(None, f"stream closed after {self._obs.count} events, before its usage")


class AsyncStreamProxy(_Watch):
    """The SDK's ``AsyncStream``, recorded. ``async for`` it, ``async with`` it, ``await close()``."""

    __slots__ = ()

    async def __aiter__(self) -> Any:
        # As SyncStreamProxy.__iter__, the quiet test included.
        inner, obs, call = self._inner, self._obs, self._call
        see = self._see
        field: str | None = None
        quiet = obs.quiet
        tokened = False
        try:
            async for event in inner:
                if field is not None and getattr(event, field, None) == quiet:
                    obs.count += 1
                    yield event
                    continue
                try:
                    what = see(event)
                except Exception:
                    _observe_failed()
                    what = PASS
                if what:
                    if what == HIDE:
                        continue
                    if what == TEXT:
                        see = self._see = obs.tail
                        field = obs.quiet_field
                        call.first_text()
                    elif not tokened:
                        tokened = True
                        call.first_token()
                yield event
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self._end(None)

    async def __anext__(self) -> Any:
        inner = self._inner
        while True:
            try:
                event = await inner.__anext__()
            except StopAsyncIteration:
                self._end(None)
                raise
            except BaseException as exc:
                self._end(exc)
                raise
            if self._seen(event):
                return event

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the SDK stream; a stream closed before its end is written without usage."""
        try:
            await self._inner.close()
        finally:
            self._end(None, f"stream closed after {self._obs.count} events, before its usage")


class ManagerProxy:
    """A stream helper's manager (``messages.stream()``, ``responses.stream()``).

    The SDK's manager is only made on entering (``with``): the pause gate and
    a downgrade apply right before the request, which entering sends. The
    helper stream it gives is the SDK's own, its raw stream swapped for a
    proxy before it reads anything.
    """

    __slots__ = ("_args", "_inner", "_make", "_start")

    def __init__(self, make: Any, args: tuple[Any, ...], kwargs: dict[str, Any], start: Any) -> None:
        """Args:
            make: the SDK's own ``stream`` method.
            args, kwargs: its arguments (``kwargs["model"]`` may be downgraded on entering).
            start: ``start(kwargs, is_async) -> (TimedCall or awaitable of one, Observer factory)``.
        """
        self._make = make
        self._args = (args, kwargs)
        self._start = start
        self._inner: Any = None

    def __getattr__(self, name: str) -> Any:
        if name in ManagerProxy.__slots__:
            raise AttributeError(name)
        if self._inner is None:
            raise AttributeError(f"{name!r}: enter the stream manager first (with ... as stream)")
        return getattr(self._inner, name)

    def __enter__(self) -> Any:
        args, kwargs = self._args
        call, observer = self._start(kwargs, False)
        token = IN_HELPER.set(True)
        try:
            self._inner = self._make(*args, **kwargs)
            call.sent()
            stream = self._inner.__enter__()
        except BaseException as exc:
            call.received()
            call.finish(exc)
            raise
        finally:
            IN_HELPER.reset(token)
        _swap_raw(stream, lambda raw: SyncStreamProxy(raw, call, observer()))
        return stream

    def __exit__(self, *exc: Any) -> Any:
        return self._inner.__exit__(*exc)


class AsyncManagerProxy(ManagerProxy):
    """``ManagerProxy`` for the async helpers (``async with client.messages.stream(...)``):
    waiting while paused does not block the event loop."""

    __slots__ = ()

    async def __aenter__(self) -> Any:
        args, kwargs = self._args
        pending, observer = self._start(kwargs, True)
        call = await pending
        token = IN_HELPER.set(True)
        try:
            self._inner = self._make(*args, **kwargs)
            call.sent()
            stream = await self._inner.__aenter__()
        except BaseException as exc:
            call.received()
            call.finish(exc)
            raise
        finally:
            IN_HELPER.reset(token)
        _swap_raw(stream, lambda raw: AsyncStreamProxy(raw, call, observer()))
        return stream

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


def _swap_raw(stream: Any, wrap: Any) -> None:
    """Put the proxy between a helper stream and its raw SDK stream (``_raw_stream``,
    read lazily by the helper's generator, so the swap comes before any event)."""
    raw = getattr(stream, "_raw_stream", None)
    if raw is None:
        warn_once("stream-helper", f"{type(stream).__name__} has no _raw_stream: this SDK version's "
                                   "stream helper is not recorded")
        return
    stream._raw_stream = wrap(raw)
