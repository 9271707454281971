"""What every test shares.

No test ever reads the real user's agent logs, config or cache: ``flightdeck
tail`` and ``report`` with no PATH look in the user's home for Claude Code,
Codex, Gemini CLI and OpenCode logs (``ingest/discover.py``), so each test
gets an empty home of its own and none of the tools' variables. And a fake
OpenAI/Anthropic server for the SDK tests (``tests/fakeprovider.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeprovider import FakeProvider

AGENT_VARS = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "GEMINI_DATA_DIR", "OPENCODE_DATA_DIR",
              "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",  # XDG_CACHE_HOME: the index stays in the test home
              "XDG_STATE_HOME")  # the Claude status line's rate limits, too


@pytest.fixture(autouse=True)
def _empty_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in AGENT_VARS:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """A fake OpenAI/Anthropic server on 127.0.0.1 (see ``tests/fakeprovider.py``)."""
    fake = FakeProvider()
    try:
        yield fake
    finally:
        fake.close()
