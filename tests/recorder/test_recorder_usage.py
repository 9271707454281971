"""No silent zeros (SPEC 5.1), through a real Recorder writing a file.

A call whose usage was never seen is written ``cost_usd: null``,
``cost_status: "unknown"`` with a ``message`` saying what was missing and how
to fix it. The payloads are built with the SDKs' own types.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rec_helpers import of_kind

from flightdeck import Recorder
from flightdeck.core.events import Event
from flightdeck.core.pricing import price


def _one_call(tmp_path: Path, provider: str, model: str, raw: Any = None, *, stream: bool = True,
              set_usage: bool = True) -> Event:
    log = tmp_path / "run.jsonl"
    rec = Recorder(log, run="r-1")
    with rec.call(provider=provider, model=model, stream=stream) as call:
        call.sent()
        call.received()
        if set_usage:
            call.set_usage(raw)
    rec.close()
    events = of_kind(log, "llm_call")
    assert len(events) == 1
    return events[0]


def _chat_chunks(with_usage: bool) -> list[Any]:
    from openai.types.chat import ChatCompletionChunk

    base = {"id": "chatcmpl-1", "created": 1764216000, "model": "gpt-4o-mini",
            "object": "chat.completion.chunk"}
    chunks = [
        ChatCompletionChunk.model_validate({**base, "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}),
        ChatCompletionChunk.model_validate({**base, "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ]
    if with_usage:  # what stream_options={"include_usage": True} adds: empty choices, usage set
        chunks.append(ChatCompletionChunk.model_validate({**base, "choices": [], "usage": {
            "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}))
    return chunks


def test_openai_stream_without_include_usage_is_unknown_with_the_fix(tmp_path: Path) -> None:
    ev = _one_call(tmp_path, "openai", "gpt-4o-mini", _chat_chunks(with_usage=False))
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert ev.message is not None and "stream_options={'include_usage': True}" in ev.message
    assert ev.usage is not None and ev.usage.input_tokens == 0


def test_openai_stream_with_include_usage_is_priced(tmp_path: Path) -> None:
    ev = _one_call(tmp_path, "openai", "gpt-4o-mini", _chat_chunks(with_usage=True))
    assert ev.cost_status == "priced" and ev.message is None
    assert ev.usage is not None and (ev.usage.input_tokens, ev.usage.output_tokens) == (12, 3)
    expected = price("openai", "gpt-4o-mini", ev.usage, ev.ts)
    assert ev.cost_usd is not None and Decimal(ev.cost_usd) == expected.usd


def test_openai_last_chunk_alone_without_usage_is_unknown(tmp_path: Path) -> None:
    ev = _one_call(tmp_path, "openai", "gpt-4o-mini", _chat_chunks(with_usage=False)[-1])
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert ev.message is not None and "include_usage" in ev.message


def test_anthropic_message_stop_alone_is_unknown(tmp_path: Path) -> None:
    from anthropic.types import RawMessageStopEvent

    ev = _one_call(tmp_path, "anthropic", "claude-sonnet-4-5", RawMessageStopEvent(type="message_stop"))
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert ev.message is not None
    assert "message_stop carries no usage" in ev.message and "get_final_message" in ev.message


def test_mistral_stream_event_without_usage_is_unknown(tmp_path: Path) -> None:
    # mistralai's CompletionEvent wraps the chunk in .data; only the last one carries usage.
    event = {"data": {"id": "c1", "object": "chat.completion.chunk", "model": "mistral-small-latest",
                      "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}}
    ev = _one_call(tmp_path, "mistral", "mistral-small-latest", event)
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert ev.message is not None and "last CompletionEvent" in ev.message


def test_mistral_last_stream_event_is_priced(tmp_path: Path) -> None:
    event = {"data": {"id": "c1", "object": "chat.completion.chunk", "model": "mistral-small-latest",
                      "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}}
    ev = _one_call(tmp_path, "mistral", "mistral-small-latest", event)
    assert ev.usage is not None and (ev.usage.input_tokens, ev.usage.output_tokens) == (20, 5)
    assert ev.cost_status == "priced" and ev.cost_usd is not None and Decimal(ev.cost_usd) > 0


def test_no_set_usage_is_unknown(tmp_path: Path) -> None:
    ev = _one_call(tmp_path, "openai", "gpt-4o-mini", set_usage=False)
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert ev.message is not None and "set_usage" in ev.message


def test_exception_before_usage_is_unknown(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    rec = Recorder(log)
    with pytest.raises(TimeoutError), rec.call(provider="anthropic", model="claude-sonnet-4-5") as call:
        call.sent()
        raise TimeoutError("read timed out")
    rec.close()
    ev = of_kind(log, "llm_call")[0]
    assert ev.error is not None and "TimeoutError" in ev.error
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert ev.message is not None and "failed before its usage arrived" in ev.message


def test_reported_cost_without_usage_is_still_reported(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    rec = Recorder(log)
    with rec.call(provider="openrouter", model="x/y") as call:
        call.set_cost("0.0123")
    rec.close()
    ev = of_kind(log, "llm_call")[0]
    assert ev.cost_status == "reported" and ev.cost_usd == "0.012300"


def test_service_tier_speed_and_price_source_are_written(tmp_path: Path) -> None:
    from anthropic.types import Message

    message = Message.model_validate({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-6",
        "content": [], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 100_000, "output_tokens": 0, "service_tier": "standard",
                  "speed": "fast"}})
    ev = _one_call(tmp_path, "anthropic", "claude-opus-4-6", message, stream=False)
    assert (ev.service_tier, ev.speed) == ("standard", "fast")
    assert ev.cost_status == "priced" and ev.cost_usd == "3.000000"  # fast mode: $30 / MTok input
    assert ev.price_source is not None and ev.price_source.startswith("flightdeck correction")


def test_openai_flex_tier_is_priced_at_its_rate(tmp_path: Path) -> None:
    from openai.types.chat import ChatCompletion

    completion = ChatCompletion.model_validate({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-5", "service_tier": "flex",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000}})
    ev = _one_call(tmp_path, "openai", "gpt-5", completion, stream=False)
    assert ev.service_tier == "flex"
    expected = price("openai", "gpt-5", ev.usage, ev.ts, service_tier="flex")
    assert ev.cost_status == expected.status
    assert ev.price_source == expected.source
    if expected.usd is not None:
        assert ev.cost_usd is not None and Decimal(ev.cost_usd) == expected.usd


def _litellm_unpriced() -> dict[str, Any]:
    import json

    path = Path(__file__).parents[1] / "core" / "normalize" / "payloads" / "litellm_standard_logging_anthropic.json"
    p = json.loads(path.read_text())
    p["response_cost"] = 0.0
    p["hidden_params"]["response_cost"] = None
    p["response_cost_failure_debug_info"] = {"error_str": "This model isn't mapped yet.",
                                             "traceback_str": "Traceback ...", "model": p["model"]}
    return p


def test_litellm_unpriced_call_is_priced_with_our_rates_and_attributed_upstream(tmp_path: Path) -> None:
    p = _litellm_unpriced()
    ev = _one_call(tmp_path, "litellm", p["model"], p, stream=False)
    assert ev.provider == "anthropic" and ev.route == "proxy"
    expected = price("anthropic", p["model"], ev.usage, ev.ts, route="proxy")
    assert ev.cost_status == "priced" and expected.usd is not None and expected.usd > 0
    assert ev.cost_usd is not None and Decimal(ev.cost_usd) == expected.usd
    assert ev.message is not None and "LiteLLM could not price this call" in ev.message


def test_litellm_log_reader_agrees_with_the_recorder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from flightdeck.cli import main

    p = _litellm_unpriced()
    log = tmp_path / "litellm.jsonl"
    log.write_text(json.dumps(p) + "\n")
    assert main(["report", str(log), "--json", "--by", "provider"]) == 0
    report = json.loads(capsys.readouterr().out)
    (tmp_path / "rec").mkdir()
    recorded = _one_call(tmp_path / "rec", "litellm", p["model"], p, stream=False)
    assert recorded.cost_usd is not None
    assert report["unpriced"] == 0
    assert Decimal(report["cost_usd"]) == Decimal(recorded.cost_usd)
    assert "anthropic" in json.dumps(report)


def test_local_model_without_usage_still_costs_zero(tmp_path: Path) -> None:
    # An Ollama chunk with done=false has no counts; a local model costs 0 whatever they were.
    ev = _one_call(tmp_path, "ollama", "llama3.2", {"model": "llama3.2", "done": False,
                                                    "message": {"role": "assistant", "content": "x"}})
    assert ev.route == "local" and ev.cost_status == "local" and ev.cost_usd == "0.000000"
    assert ev.message is not None and "done=false" in ev.message
