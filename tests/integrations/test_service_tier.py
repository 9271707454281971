"""The tier OpenAI says served a call reaches the event and its price, through rec.instrument.

OpenAI names it beside the usage (``ChatCompletion.service_tier``, the usage
chunk's, ``Response.service_tier``), not inside it; gpt-5 at ``flex`` is half
its standard rate (genai-prices 0.2.3), so the flex call costs exactly half.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.integrations.instr_helpers import calls
from tests.integrations.test_openai import MESSAGES


def _standard_then_flex(fake_provider: Any, log_path: Path, make: Any) -> tuple[Any, Any]:
    make()
    fake_provider.service_tier = "flex"
    make()
    standard, flex = calls(log_path)
    assert standard.service_tier == "default" and flex.service_tier == "flex"
    assert standard.cost_status == flex.cost_status == "priced"
    assert Decimal(flex.cost_usd) * 2 == Decimal(standard.cost_usd)
    assert "service_tier=flex" in (flex.price_source or "")
    return standard, flex


def test_chat_not_streamed(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    _standard_then_flex(fake_provider, log_path,
                        lambda: openai_client.chat.completions.create(model="gpt-5", messages=MESSAGES))


def test_chat_streamed(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    def make() -> None:
        for _ in openai_client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True):
            pass

    _standard_then_flex(fake_provider, log_path, make)


def test_responses_streamed_and_not(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    def make() -> None:
        openai_client.responses.create(model="gpt-5", input="hi")
        for _ in openai_client.responses.create(model="gpt-5", input="hi", stream=True):
            pass

    make()
    fake_provider.service_tier = "flex"
    make()
    events = calls(log_path)
    assert [e.service_tier for e in events] == ["default", "default", "flex", "flex"]
    assert Decimal(events[2].cost_usd) * 2 == Decimal(events[0].cost_usd)
    assert events[3].cost_usd == events[2].cost_usd


def test_chat_with_raw_response(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    _standard_then_flex(fake_provider, log_path, lambda: openai_client.chat.completions.with_raw_response.create(
        model="gpt-5", messages=MESSAGES).parse())
