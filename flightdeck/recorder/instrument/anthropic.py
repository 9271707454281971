"""Anthropic SDK clients (``Anthropic``, ``AsyncAnthropic``, ``AnthropicBedrock``,
``AnthropicVertex``, ...): ``messages.create`` (streamed or not) and the
``messages.stream`` helper are recorded. The SDK itself is never imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flightdeck.recorder.instrument.streams import AnthropicObserver
from flightdeck.recorder.instrument.wrap import Target, patch_method

if TYPE_CHECKING:
    from flightdeck.recorder.recorder import Recorder

__all__ = ["patch"]


def patch(rec: Recorder, client: Any, provider: str, route: str, is_async: bool) -> list[str]:
    """Record ``client``'s calls into ``rec``; returns the methods patched.

    Args:
        rec: the recorder.
        client: an Anthropic SDK client (sync or async, any cloud variant).
        provider, route: written on every event.
        is_async: whether ``client`` is an async client.
    """
    done: list[str] = []
    messages = getattr(client, "messages", None)
    if messages is None:
        return done
    target = Target(rec, provider, route, None, AnthropicObserver, family="anthropic")
    if patch_method(messages, "create", target, is_async=is_async):
        done.append("messages.create")
    if patch_method(messages, "stream", target, helper=True, is_async=is_async):
        done.append("messages.stream")
    return done
