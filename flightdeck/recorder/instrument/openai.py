"""OpenAI SDK clients (``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``, ...): the methods recorded.

``chat.completions.create`` (streamed or not: a stream asks for
``stream_options.include_usage`` and hides the extra chunk from a caller who
had not asked; the ``chat.completions.stream`` helper goes through it),
``chat.completions.parse``, ``responses.create`` (streamed or not),
``responses.parse`` and the ``responses.stream`` helper. The SDK itself is never imported here: the
client given is enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flightdeck.recorder.instrument.streams import ChatObserver, ResponsesObserver
from flightdeck.recorder.instrument.wrap import Target, patch_method

if TYPE_CHECKING:
    from flightdeck.recorder.recorder import Recorder

__all__ = ["patch"]


def _chat_observer() -> ChatObserver:
    return ChatObserver(hide_usage_chunk=False)


def patch(rec: Recorder, client: Any, provider: str, route: str, is_async: bool) -> list[str]:
    """Record ``client``'s calls into ``rec``; returns the methods patched.

    Args:
        rec: the recorder.
        client: an OpenAI SDK client (sync or async).
        provider, route: written on every event.
        is_async: whether ``client`` is an async client.
    """
    done = []
    chat = getattr(getattr(client, "chat", None), "completions", None)
    if chat is not None:
        target = Target(rec, provider, route, "chat", _chat_observer, chat=True, family="openai")
        # ``stream()`` calls the (wrapped) ``create``; ``parse()`` posts by itself, never streamed.
        for method in ("create", "parse"):
            if patch_method(chat, method, target, is_async=is_async):
                done.append(f"chat.completions.{method}")
    responses = getattr(client, "responses", None)
    if responses is not None:
        target = Target(rec, provider, route, "responses", ResponsesObserver, family="openai")
        for method in ("create", "parse"):
            if patch_method(responses, method, target, is_async=is_async):
                done.append(f"responses.{method}")
        if patch_method(responses, "stream", target, helper=True, is_async=is_async):
            done.append("responses.stream")
    return done
