"""``with_raw_response`` and ``with_streaming_response`` on the real SDKs, against the fake provider."""

from __future__ import annotations

import gc
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from flightdeck.recorder.instrument.raw import RawResponseProxy
from flightdeck.recorder.recorder import Recorder
from tests.integrations.instr_helpers import calls, usage_of, within
from tests.integrations.test_anthropic import ARGS as ANTHROPIC_ARGS
from tests.integrations.test_anthropic import BUCKETS as ANTHROPIC_BUCKETS
from tests.integrations.test_anthropic import COST as ANTHROPIC_COST
from tests.integrations.test_openai import CHAT_BUCKETS, CHAT_COST, MESSAGES, RESPONSES_BUCKETS, RESPONSES_COST


def test_chat_with_raw_response_is_recorded_and_left_as_the_sdk_made_it(
        openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.latency = 0.8
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert type(raw).__name__ == "LegacyAPIResponse"  # the SDK's own object, headers and all
    assert raw.headers["content-type"].startswith("application/json")
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello, flightdeck!"
    assert raw.parse() is completion
    (ev,) = calls(log_path)  # written once, parsed twice
    assert (ev.provider, ev.model, ev.stream) == ("openai", "gpt-4o", False)
    assert usage_of(ev) == CHAT_BUCKETS and Decimal(ev.cost_usd) == CHAT_COST and ev.message is None
    assert within(ev.latency_ms.gen, 800)


def test_chat_with_raw_response_streamed(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.ttft, fake_provider.stream_time = 0.3, 0.5
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    assert all(c.choices for c in chunks)  # the usage chunk the wrapper asked for stays hidden
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello, flightdeck!"
    (body,) = fake_provider.bodies("/chat/completions")
    assert body["stream_options"] == {"include_usage": True}
    (ev,) = calls(log_path)
    assert ev.stream is True and usage_of(ev) == CHAT_BUCKETS and Decimal(ev.cost_usd) == CHAT_COST
    assert within(ev.latency_ms.ttft, 300) and within(ev.latency_ms.ttft + ev.latency_ms.gen, 800)


def test_chat_with_streaming_response_parsed_inside_the_block(openai_client: Any, log_path: Path) -> None:
    with openai_client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES) as resp:
        assert calls(log_path) == []  # the body is not read yet: nothing to write
        assert resp.headers["content-type"].startswith("application/json")
        completion = resp.parse()
    assert completion.usage.prompt_tokens == 1500
    (ev,) = calls(log_path)
    assert usage_of(ev) == CHAT_BUCKETS and Decimal(ev.cost_usd) == CHAT_COST


def test_a_streaming_response_read_as_bytes_is_written_unknown(openai_client: Any, log_path: Path) -> None:
    with openai_client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES) as resp:
        assert isinstance(resp, RawResponseProxy)
        body = b"".join(resp.iter_bytes())
    assert b'"prompt_tokens":1500' in body.replace(b" ", b"")
    del resp
    gc.collect()
    (ev,) = calls(log_path)
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert "never parse()d" in (ev.message or "")


def test_responses_with_raw_response(openai_client: Any, log_path: Path) -> None:
    raw = openai_client.responses.with_raw_response.create(model="o4-mini", input="hi")
    assert raw.parse().output_text == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert usage_of(ev) == RESPONSES_BUCKETS and Decimal(ev.cost_usd) == RESPONSES_COST


def test_raw_views_read_before_instrumenting_are_recorded_too(rec: Recorder, fake_provider: Any,
                                                             log_path: Path) -> None:
    client = openai.OpenAI(base_url=fake_provider.openai_url, api_key="sk-test", max_retries=0)
    early = client.chat.completions.with_raw_response  # cached by the SDK, around the unwrapped create
    rec.instrument(client, provider="openai", route="direct")
    assert client.chat.completions.with_raw_response is not early
    client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES).parse()
    (ev,) = calls(log_path)
    assert usage_of(ev) == CHAT_BUCKETS


def test_messages_with_raw_response(anthropic_client: Any, log_path: Path) -> None:
    raw = anthropic_client.messages.with_raw_response.create(**ANTHROPIC_ARGS)
    assert raw.parse().content[0].text == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert (ev.provider, ev.stream) == ("anthropic", False)
    assert usage_of(ev) == ANTHROPIC_BUCKETS and Decimal(ev.cost_usd) == ANTHROPIC_COST


def test_messages_with_raw_response_streamed(anthropic_client: Any, log_path: Path) -> None:
    raw = anthropic_client.messages.with_raw_response.create(**ANTHROPIC_ARGS, stream=True)
    with raw.parse() as stream:
        kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    (ev,) = calls(log_path)
    assert ev.stream is True and usage_of(ev) == ANTHROPIC_BUCKETS and Decimal(ev.cost_usd) == ANTHROPIC_COST


async def test_async_messages_with_raw_response(async_anthropic_client: Any, log_path: Path) -> None:
    raw = await async_anthropic_client.messages.with_raw_response.create(**ANTHROPIC_ARGS)
    assert type(raw).__name__ == "AsyncAPIResponse"  # its parse() is a coroutine: awaited by the wrapper
    message = await raw.parse()
    assert message.content[0].text == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert usage_of(ev) == ANTHROPIC_BUCKETS and Decimal(ev.cost_usd) == ANTHROPIC_COST


async def test_async_chat_with_streaming_response_streamed(async_openai_client: Any, log_path: Path) -> None:
    async with async_openai_client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True) as resp:
        stream = await resp.parse()
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert ev.stream is True and usage_of(ev) == CHAT_BUCKETS and Decimal(ev.cost_usd) == CHAT_COST


def test_an_http_error_through_with_raw_response_is_recorded(anthropic_client: Any, fake_provider: Any,
                                                            log_path: Path) -> None:
    fake_provider.status = 529
    with pytest.raises(anthropic.APIStatusError):
        anthropic_client.messages.with_raw_response.create(**ANTHROPIC_ARGS)
    (ev,) = calls(log_path)
    assert ev.error is not None and "529" in ev.error and ev.cost_status == "unknown"


def test_a_raw_response_parsed_as_a_dict_is_recorded(openai_client: Any, log_path: Path) -> None:
    with openai_client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES) as resp:
        body = resp.parse(to=dict)
    assert body["usage"]["prompt_tokens"] == 1500
    (ev,) = calls(log_path)
    assert usage_of(ev) == CHAT_BUCKETS and Decimal(ev.cost_usd) == CHAT_COST
