"""Shared fixtures for the usage-normalisation tests: payloads on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).parent / "payloads"


def load_payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


@pytest.fixture
def payload():
    return load_payload
