"""FlightdeckLogger with the real litellm.completion / acompletion against the fake provider."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from flightdeck.integrations.litellm import FlightdeckLogger
from flightdeck.recorder.recorder import Recorder
from tests.integrations.instr_helpers import MILLION, usage_of, wait_calls, within

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_BUCKETS = (476, 300, 1024, 0, 100, 0)
CHAT_COST = (476 * Decimal("2.50") + 1024 * Decimal("1.25") + 300 * Decimal("10.00")) / MILLION


class Capture(CustomLogger):
    """Keeps the StandardLoggingPayload LiteLLM hands its loggers."""

    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[dict[str, Any]] = []

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.payloads.append(dict(kwargs["standard_logging_object"]))


def _use(*loggers: CustomLogger) -> None:
    """Install exactly these loggers: LiteLLM copies ``callbacks`` into its own lists on first use."""
    litellm.logging_callback_manager._reset_all_callbacks()
    litellm.callbacks = list(loggers)


@pytest.fixture
def logged(rec: Recorder) -> Iterator[FlightdeckLogger]:
    logger = FlightdeckLogger(rec, route="direct")  # the fake server is on 127.0.0.1: not "local" here
    _use(logger)
    try:
        yield logger
    finally:
        _use()


def _kw(fake: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-4o", "api_base": fake.openai_url, "api_key": "sk-test", "messages": MESSAGES}


def test_completion_not_streamed(logged: FlightdeckLogger, fake_provider: Any, log_path: Path) -> None:
    fake_provider.latency = 0.5
    reply = litellm.completion(**_kw(fake_provider))
    assert reply.choices[0].message.content == "Hello, flightdeck!"
    (ev,) = wait_calls(log_path, 1)
    assert (ev.provider, ev.route, ev.model, ev.stream) == ("openai", "direct", "gpt-4o", False)
    assert usage_of(ev) == CHAT_BUCKETS
    # LiteLLM priced it: its reported cost is kept (here equal to the list price).
    assert ev.cost_status == "reported" and Decimal(ev.cost_usd) == CHAT_COST
    assert within(ev.latency_ms.gen, 500) and ev.latency_ms.ttft is None


def test_completion_streamed(logged: FlightdeckLogger, fake_provider: Any, log_path: Path) -> None:
    fake_provider.ttft, fake_provider.stream_time = 0.3, 0.5
    stream = litellm.completion(**_kw(fake_provider), stream=True, stream_options={"include_usage": True})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello, flightdeck!"
    (ev,) = wait_calls(log_path, 1)
    assert ev.stream is True and usage_of(ev) == CHAT_BUCKETS
    # completionStartTime is when LiteLLM handled the first chunk: at least the server's 300 ms
    # after the start (later on a cold LiteLLM, whose lazy imports run inside the call: no upper
    # bound here); the whole call at least 300 + 500 ms.
    lat = ev.latency_ms
    assert lat.ttft is not None and lat.ttft >= 295 and lat.total is not None and lat.total >= 795
    assert lat.gen is not None and abs(lat.ttft + lat.gen - lat.total) < 0.01


def test_acompletion(logged: FlightdeckLogger, fake_provider: Any, log_path: Path) -> None:
    async def main() -> Any:
        reply = await litellm.acompletion(**_kw(fake_provider))
        for _ in range(500):  # the async logger runs as a task after the call returns
            if log_path.exists() and b"llm_call" in log_path.read_bytes():
                break
            await asyncio.sleep(0.02)
        return reply

    reply = asyncio.run(main())
    assert reply.usage.prompt_tokens == 1500
    (ev,) = wait_calls(log_path, 1)
    assert usage_of(ev) == CHAT_BUCKETS and ev.cost_status == "reported"


def test_failure_hook(logged: FlightdeckLogger, fake_provider: Any, log_path: Path) -> None:
    fake_provider.status = 500
    with pytest.raises(litellm.exceptions.InternalServerError):
        litellm.completion(**_kw(fake_provider))
    (ev,) = wait_calls(log_path, 1)
    assert ev.error and ev.cost_usd is None and ev.cost_status == "unknown"


def test_cost_litellm_failed_to_compute_is_priced_by_flightdeck(rec: Recorder, fake_provider: Any,
                                                                 log_path: Path) -> None:
    capture = Capture()
    _use(capture)
    try:
        litellm.completion(**_kw(fake_provider))
        for _ in range(500):
            if capture.payloads:
                break
            asyncio.run(asyncio.sleep(0.02))
    finally:
        _use()
    (payload,) = capture.payloads
    # What LiteLLM writes when its cost map lacks the model (litellm_logging.py _response_cost_calculator).
    payload["response_cost"] = 0.0
    payload["response_cost_failure_debug_info"] = {"error_str": "This model isn't mapped yet.",
                                                   "traceback_str": "", "model": "gpt-4o"}
    FlightdeckLogger(rec, route="direct").log_success_event({"standard_logging_object": payload}, None, None, None)
    (ev,) = wait_calls(log_path, 1)
    assert ev.cost_status == "priced" and Decimal(ev.cost_usd) == CHAT_COST


def test_a_call_without_payload_is_counted_not_raised(rec: Recorder) -> None:
    logger = FlightdeckLogger(rec)
    logger.log_success_event({}, None, None, None)
    logger.log_success_event(None, None, None, None)
    assert logger.missing == 2
