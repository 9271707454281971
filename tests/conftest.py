"""What every test shares: no test ever reads the real user's agent logs.

``flightdeck tail`` and ``report`` with no PATH look in the user's home for
Claude Code, Codex, Gemini CLI and OpenCode logs (``ingest/discover.py``);
each test gets an empty home of its own and none of the tools' variables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

AGENT_VARS = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "GEMINI_DATA_DIR", "OPENCODE_DATA_DIR",
              "XDG_DATA_HOME", "XDG_CACHE_HOME")  # XDG_CACHE_HOME: the parse-once index stays in the test home


@pytest.fixture(autouse=True)
def _empty_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in AGENT_VARS:
        monkeypatch.delenv(name, raising=False)
    return home
