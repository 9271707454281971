"""Integration fixtures: a recorder on a temporary file, SDK clients pointed at the fake provider."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# LiteLLM would otherwise fetch its price map from the network at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from flightdeck.recorder.recorder import Recorder


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "run.jsonl"


@pytest.fixture
def rec(log_path: Path) -> Iterator[Recorder]:
    r = Recorder(log_path, run="r-int", agent="tester", poll_interval=0.01)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def openai_client(rec: Recorder, fake_provider: Any) -> Any:
    import openai

    client = openai.OpenAI(base_url=fake_provider.openai_url, api_key="sk-test", max_retries=0)
    return rec.instrument(client, provider="openai", route="direct")


@pytest.fixture
def async_openai_client(rec: Recorder, fake_provider: Any) -> Any:
    import openai

    client = openai.AsyncOpenAI(base_url=fake_provider.openai_url, api_key="sk-test", max_retries=0)
    return rec.instrument(client, provider="openai", route="direct")


@pytest.fixture
def anthropic_client(rec: Recorder, fake_provider: Any) -> Any:
    import anthropic

    client = anthropic.Anthropic(base_url=fake_provider.url, api_key="sk-ant-test", max_retries=0)
    return rec.instrument(client, provider="anthropic", route="direct")


@pytest.fixture
def async_anthropic_client(rec: Recorder, fake_provider: Any) -> Any:
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=fake_provider.url, api_key="sk-ant-test", max_retries=0)
    return rec.instrument(client, provider="anthropic", route="direct")
