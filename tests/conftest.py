"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakeprovider import FakeProvider


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """A fake OpenAI/Anthropic server on 127.0.0.1 (see ``tests/fakeprovider.py``)."""
    fake = FakeProvider()
    try:
        yield fake
    finally:
        fake.close()
