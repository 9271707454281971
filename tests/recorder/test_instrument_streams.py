"""The stream proxies and observers against their first (plain) version.

``instrument.streams`` reads a stream in two phases (``Observer.observe``
until the first visible text, then ``Observer.tail``, which only looks for
the usage), with the phase's method held in a local of the proxy's loop.
The plain version below is the code as it was before: one ``observe`` per
event that tests a ``texted`` flag, and a mark call for every TOKEN or TEXT.
Both are fed the same varied streams of the SDKs' own event types and must
give the caller the same events, the same first-token and first-text
positions, the same usage (and tier) and the same reason when it is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from anthropic.types import (
    InputJSONDelta,
    MessageDeltaUsage,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RedactedThinkingBlock,
    SignatureDelta,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
)
from anthropic.types import Message as AnthropicMessage
from anthropic.types import Usage as AnthropicUsage
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta, ChoiceDeltaToolCall
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseRefusalDeltaEvent,
    ResponseTextDeltaEvent,
    ResponseUsage,
)

from flightdeck.recorder.instrument import streams
from flightdeck.recorder.instrument.streams import (
    HIDE,
    PASS,
    TEXT,
    TOKEN,
    AnthropicObserver,
    AsyncStreamProxy,
    ChatObserver,
    Observer,
    ResponsesObserver,
    SyncStreamProxy,
    with_tier,
)

# -- the plain version (instrument/streams.py before the two phases) ------------------------


def _extra(obj: Any, name: str) -> Any:
    extra = getattr(obj, "__pydantic_extra__", None)
    if isinstance(extra, dict):
        return extra.get(name) or obj.__dict__.get(name)
    return getattr(obj, name, None)


class PlainChat:
    api = "chat"

    def __init__(self, hide_usage_chunk: bool, refused: bool = False) -> None:
        self.usage: Any = None
        self.tier: Any = None
        self.complete = False
        self.count = 0
        self.hide_usage_chunk = hide_usage_chunk
        self.refused = refused
        self.texted = False

    def observe(self, event: Any) -> int:
        self.count += 1
        usage = getattr(event, "usage", None)
        choices = getattr(event, "choices", None)
        if usage is not None:
            self.usage = usage
            self.tier = getattr(event, "service_tier", None)
            self.complete = True
            if not choices:
                return HIDE if self.hide_usage_chunk else PASS
        if self.texted:
            return PASS
        seen = PASS
        for choice in choices or ():
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            if delta.content or getattr(delta, "tool_calls", None) or getattr(delta, "refusal", None):
                self.texted = True
                return TEXT
            if _extra(delta, "reasoning_content") or _extra(delta, "reasoning"):
                seen = TOKEN
        return seen

    def final_usage(self) -> Any:
        return with_tier(self.usage, self.tier)

    def missing_usage(self) -> str:
        if self.refused:
            return "the server refused stream_options.include_usage, so the stream carried no usage"
        return "the stream ended without a usage chunk (stream_options.include_usage)"


class PlainResponses:
    api = "responses"

    def __init__(self) -> None:
        self.usage: Any = None
        self.tier: Any = None
        self.complete = False
        self.count = 0
        self.texted = False

    def observe(self, event: Any) -> int:
        self.count += 1
        kind = getattr(event, "type", None)
        if kind in streams._RESPONSES_TEXT:
            if self.texted:
                return PASS
            self.texted = True
            return TEXT
        if kind in streams._RESPONSES_THINKING:
            return TOKEN
        if kind in streams._RESPONSES_END:
            response = getattr(event, "response", None)
            self.usage = getattr(response, "usage", None)
            self.tier = getattr(response, "service_tier", None)
            self.complete = True
        return PASS

    def final_usage(self) -> Any:
        return with_tier(self.usage, self.tier)

    def missing_usage(self) -> str:
        return "the stream ended before response.completed carried its usage"


class PlainAnthropic:
    api = None

    def __init__(self) -> None:
        self.usage: Any = None
        self.tier: Any = None
        self.complete = False
        self.count = 0
        self.start: Any = None
        self.texted = False

    def observe(self, event: Any) -> int:
        self.count += 1
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            if self.texted:
                return PASS
            dtype = getattr(getattr(event, "delta", None), "type", None)
            if dtype == "text_delta" or dtype == "input_json_delta":
                self.texted = True
                return TEXT
            if dtype == "thinking_delta":
                return TOKEN
            return PASS
        if kind == "message_start":
            self.start = getattr(getattr(event, "message", None), "usage", None)
        elif kind == "message_delta":
            self.usage = getattr(event, "usage", None)
            self.complete = True
        elif kind == "content_block_start":
            block = getattr(getattr(event, "content_block", None), "type", None)
            if block == "redacted_thinking":
                return TOKEN
        return PASS

    def final_usage(self) -> Any:
        return [{"type": "message_start", "message": {"usage": self.start}},
                {"type": "message_delta", "usage": self.usage}]

    def missing_usage(self) -> str:
        return "the stream ended before message_delta carried its usage"


class Marks:
    """What a ``TimedCall`` keeps of the proxy's calls, by event position instead of time."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.first: int | None = None
        self.text: int | None = None
        self.usage: Any = None
        self.api: Any = "unset"
        self.problems: list[str] = []
        self.finished: list[BaseException | None] = []

    def first_token(self) -> None:
        if self.first is None:
            self.first = self.source.pulled

    def first_text(self) -> None:  # as TimedCall.first_text: also the first token if none came
        if self.text is None:
            self.text = self.source.pulled
            if self.first is None:
                self.first = self.text

    def received(self) -> None:
        pass

    def set_usage(self, raw: Any, api: str | None = None) -> None:
        self.usage, self.api = raw, api

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def finish(self, exc: BaseException | None = None) -> None:
        self.finished.append(exc)

    def outcome(self) -> tuple[Any, ...]:
        return (self.first, self.text, self.usage, self.api, self.problems, self.finished)


class Source:
    """An SDK stream stand-in: the events in order, counting how many were pulled."""

    def __init__(self, events: list[Any]) -> None:
        self._it = iter(events)
        self.pulled = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        event = next(self._it)
        self.pulled += 1
        return event

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> Any:
        try:
            return self.__next__()
        except StopIteration:
            raise StopAsyncIteration from None

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def plain_run(events: list[Any], obs: Any) -> tuple[list[Any], tuple[Any, ...], int]:
    """The old proxy loop (mark on every TOKEN/TEXT) and end, over a whole stream."""
    source = Source(events)
    marks = Marks(source)
    seen = []
    for event in source:
        what = obs.observe(event)
        if what == HIDE:
            continue
        if what == TEXT:
            marks.first_text()
        elif what == TOKEN:
            marks.first_token()
        seen.append(event)
    marks.received()
    if obs.usage is not None and obs.complete:
        marks.set_usage(obs.final_usage(), obs.api)
    else:
        marks.problem(obs.missing_usage())
    marks.finish(None)
    return seen, marks.outcome(), obs.count


def proxy_run(events: list[Any], obs: Observer, how: str) -> tuple[list[Any], tuple[Any, ...], int]:
    """The proxy of today over the same stream, read by ``for``, ``next()`` or ``async for``."""
    source = Source(events)
    marks = Marks(source)
    seen: list[Any] = []
    if how == "async":
        aproxy = AsyncStreamProxy(source, marks, obs)  # type: ignore[arg-type]

        async def read() -> None:
            async for event in aproxy:
                seen.append(event)

        asyncio.run(read())
    else:
        proxy = SyncStreamProxy(source, marks, obs)  # type: ignore[arg-type]
        if how == "for":
            seen.extend(proxy)
        else:
            while True:
                try:
                    seen.append(next(proxy))
                except StopIteration:
                    break
    return seen, marks.outcome(), obs.count


# -- the SDKs' own event types --------------------------------------------------------------

def _chunk(delta: ChoiceDelta | None, usage: CompletionUsage | None = None, tier: str | None = None) -> Any:
    choices = [] if delta is None else [Choice.model_construct(index=0, delta=delta, finish_reason=None)]
    return ChatCompletionChunk.model_construct(id="c", object="chat.completion.chunk", created=1, model="m",
                                               choices=choices, usage=usage, service_tier=tier)


def _usage(n: int) -> CompletionUsage:
    return CompletionUsage.model_construct(prompt_tokens=n, completion_tokens=n + 1, total_tokens=2 * n + 1)


_CALL = ChoiceDeltaToolCall.model_construct(index=0, id="t", type="function")
CHAT_EVENTS: list[Callable[[int], Any]] = [
    lambda n: _chunk(ChoiceDelta.model_construct(role="assistant", content="")),
    lambda n: _chunk(ChoiceDelta.model_construct(content=f"text{n}")),
    lambda n: _chunk(ChoiceDelta.model_construct(content=None, reasoning_content="think")),  # DeepSeek (extra)
    lambda n: _chunk(ChoiceDelta.model_construct(content=None, reasoning="think")),  # OpenRouter (extra)
    lambda n: _chunk(ChoiceDelta.model_construct(content=None, tool_calls=[_CALL])),
    lambda n: _chunk(ChoiceDelta.model_construct(content=None, refusal="no")),
    lambda n: _chunk(ChoiceDelta.model_construct()),  # an empty delta (the finish chunk)
    lambda n: _chunk(None, _usage(n)),  # the usage-only chunk
    lambda n: _chunk(None, _usage(n), tier="flex"),
    lambda n: _chunk(ChoiceDelta.model_construct(content="last"), _usage(n)),  # usage on a content chunk
    lambda n: _chunk(None),  # no choices, no usage
]

_AUSAGE = AnthropicUsage.model_construct(input_tokens=10, output_tokens=1, cache_read_input_tokens=5)
_MESSAGE = AnthropicMessage.model_construct(id="m", type="message", role="assistant", model="m", content=[],
                                            usage=_AUSAGE)


def _adelta(delta: Any) -> Any:
    return RawContentBlockDeltaEvent.model_construct(type="content_block_delta", index=0, delta=delta)


def _astart(block: Any) -> Any:
    return RawContentBlockStartEvent.model_construct(type="content_block_start", index=0, content_block=block)


ANTHROPIC_EVENTS: list[Callable[[int], Any]] = [
    lambda n: RawMessageStartEvent.model_construct(type="message_start", message=_MESSAGE),
    lambda n: _astart(TextBlock.model_construct(type="text", text="")),
    lambda n: _astart(ThinkingBlock.model_construct(type="thinking", thinking="", signature="")),
    lambda n: _astart(RedactedThinkingBlock.model_construct(type="redacted_thinking", data="x")),
    lambda n: _adelta(TextDelta.model_construct(type="text_delta", text=f"t{n}")),
    lambda n: _adelta(ThinkingDelta.model_construct(type="thinking_delta", thinking="hm")),
    lambda n: _adelta(InputJSONDelta.model_construct(type="input_json_delta", partial_json="{")),
    lambda n: _adelta(SignatureDelta.model_construct(type="signature_delta", signature="s")),
    lambda n: RawContentBlockStopEvent.model_construct(type="content_block_stop", index=0),
    lambda n: RawMessageDeltaEvent.model_construct(
        type="message_delta", delta={"stop_reason": "end_turn"},
        usage=MessageDeltaUsage.model_construct(output_tokens=n)),
    lambda n: RawMessageStopEvent.model_construct(type="message_stop"),
]

_RUSAGE = ResponseUsage.model_construct(input_tokens=7, output_tokens=9, total_tokens=16)
RESPONSES_EVENTS: list[Callable[[int], Any]] = [
    lambda n: ResponseCreatedEvent.model_construct(type="response.created", sequence_number=n),
    lambda n: ResponseTextDeltaEvent.model_construct(type="response.output_text.delta", delta=f"d{n}"),
    lambda n: ResponseRefusalDeltaEvent.model_construct(type="response.refusal.delta", delta="no"),
    lambda n: ResponseReasoningSummaryTextDeltaEvent.model_construct(
        type="response.reasoning_summary_text.delta", delta="hm"),
    lambda n: ResponseCompletedEvent.model_construct(
        type="response.completed", response=Response.model_construct(usage=_RUSAGE, service_tier="priority")),
    lambda n: ResponseCompletedEvent.model_construct(
        type="response.incomplete", response=Response.model_construct(usage=None)),
]


def _stream(kinds: list[Callable[[int], Any]]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.integers(0, len(kinds) - 1), max_size=25).map(
        lambda picks: [kinds[k](i) for i, k in enumerate(picks)])


HOW = st.sampled_from(["for", "next", "async"])


@settings(max_examples=300, deadline=None)
@given(events=_stream(CHAT_EVENTS), hide=st.booleans(), refused=st.booleans(), how=HOW)
def test_chat_stream_as_the_plain_version(events: list[Any], hide: bool, refused: bool, how: str) -> None:
    assert proxy_run(events, ChatObserver(hide, refused), how) == plain_run(events, PlainChat(hide, refused))


@settings(max_examples=300, deadline=None)
@given(events=_stream(ANTHROPIC_EVENTS), how=HOW)
def test_anthropic_stream_as_the_plain_version(events: list[Any], how: str) -> None:
    assert proxy_run(events, AnthropicObserver(), how) == plain_run(events, PlainAnthropic())


@settings(max_examples=300, deadline=None)
@given(events=_stream(RESPONSES_EVENTS), how=HOW)
def test_responses_stream_as_the_plain_version(events: list[Any], how: str) -> None:
    assert proxy_run(events, ResponsesObserver(), how) == plain_run(events, PlainResponses())


def test_the_fixtures_reach_every_outcome() -> None:
    """The event kinds above are varied enough: a token before text, text, a hidden chunk,
    a missing usage (a comparison over streams that never reach those would pin nothing)."""
    think, text, usage_only = CHAT_EVENTS[2](0), CHAT_EVENTS[1](1), CHAT_EVENTS[7](2)
    seen, (first, first_text, usage, _, problems, _), count = proxy_run(
        [think, text, text, usage_only], ChatObserver(True), "for")
    assert (first, first_text, count, problems) == (1, 2, 4, [])
    assert seen == [think, text, text] and usage is usage_only.usage
    _, (_, _, usage, _, problems, _), _ = proxy_run([text], AnthropicObserver(), "next")
    assert usage is None and problems == ["the stream ended before message_delta carried its usage"]


def test_next_then_for_share_one_phase() -> None:
    """``next()`` and ``for`` read the one stream: a text seen by ``next()`` switches the loop too."""
    text, usage_only = CHAT_EVENTS[1](0), CHAT_EVENTS[7](1)
    source = Source([text, text, usage_only])
    marks = Marks(source)
    proxy = SyncStreamProxy(source, marks, ChatObserver(True))  # type: ignore[arg-type]
    assert next(proxy) is text
    assert list(proxy) == [text]
    assert (marks.first, marks.text, marks.usage) == (1, 1, usage_only.usage)
