"""Provider and route of real SDK clients, from their class and base_url; overrides win."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from flightdeck.recorder.instrument.route import infer
from flightdeck.recorder.recorder import Recorder
from tests.integrations.instr_helpers import calls, usage_of


@pytest.mark.parametrize(("base_url", "expected"), [
    (None, ("openai", "direct")),
    ("https://openrouter.ai/api/v1", ("openrouter", "proxy")),
    ("https://api.deepseek.com", ("deepseek", "direct")),
    ("http://localhost:11434/v1", ("ollama", "local")),
    ("http://127.0.0.1:8000/v1", ("vllm", "local")),
    ("http://192.168.1.20:8080/v1", ("vllm", "local")),
    ("https://llm-gateway.example.com/v1", ("openai", "proxy")),
])
def test_openai_base_urls(base_url: str | None, expected: tuple[str, str]) -> None:
    client = openai.OpenAI(api_key="k", base_url=base_url)
    assert infer(client, "openai") == expected


def test_client_classes() -> None:
    assert infer(anthropic.Anthropic(api_key="k"), "anthropic") == ("anthropic", "direct")
    azure = openai.AzureOpenAI(api_key="k", api_version="2024-10-21", azure_endpoint="https://x.openai.azure.com")
    assert infer(azure, "openai") == ("azure", "direct")


def test_instrument_uses_the_inference_unless_overridden(tmp_path: Path, fake_provider: Any) -> None:
    path = tmp_path / "r.jsonl"
    rec = Recorder(path, run="r")
    # The fake server is on 127.0.0.1: an OpenAI-compatible local server, so free.
    local = rec.instrument(openai.OpenAI(api_key="k", base_url=fake_provider.openai_url, max_retries=0))
    local.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    forced = rec.instrument(openai.OpenAI(api_key="k", base_url=fake_provider.openai_url, max_retries=0),
                            provider="openai", route="direct")
    forced.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    rec.close()
    first, second = calls(path)
    assert (first.provider, first.route, first.cost_status) == ("vllm", "local", "local")
    assert (second.provider, second.route, second.cost_status) == ("openai", "direct", "priced")


def test_usage_is_read_in_the_sdks_shape_whatever_the_provider(tmp_path: Path, fake_provider: Any) -> None:
    """Claude on Vertex through the Anthropic SDK answers in Anthropic's shape, Cohere's
    OpenAI-compatible endpoint in OpenAI's: the provider's own reader would lose the cache
    buckets of the one and every token of the other."""
    path = tmp_path / "r.jsonl"
    rec = Recorder(path, run="r")
    claude = rec.instrument(anthropic.Anthropic(api_key="k", base_url=fake_provider.url, max_retries=0),
                            provider="vertex", route="direct")
    claude.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    cohere = rec.instrument(openai.OpenAI(api_key="k", base_url=fake_provider.openai_url, max_retries=0),
                            provider="cohere", route="direct")
    cohere.chat.completions.create(model="command-a-03-2025", messages=[{"role": "user", "content": "hi"}])
    rec.close()
    on_vertex, on_cohere = calls(path)
    assert on_vertex.provider == "vertex" and on_vertex.message is None
    assert usage_of(on_vertex) == (100, 400, 5000, 3000, 0, 1000)
    assert on_cohere.provider == "cohere" and on_cohere.message is None
    assert usage_of(on_cohere) == (476, 300, 1024, 0, 100, 0)
