"""``rec.instrument(client)``: one line to record every call an SDK client makes.

Supported: the OpenAI SDK (``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI`` and any
OpenAI-compatible ``base_url``) and the Anthropic SDK (``Anthropic``,
``AsyncAnthropic``, Bedrock and Vertex variants). Only the given client's
resource instances are patched; nothing is imported from the SDKs (the client
is already made, so its SDK is loaded), and ``import flightdeck`` imports none.
Clients made from it later with ``with_options()`` or ``copy()`` are new
objects: instrument them too.

Modules: ``route`` (provider and route from ``base_url``), ``calls`` (one
call's gate, downgrade, stages and write), ``streams`` (stream proxies and
per-API observers), ``wrap`` (the per-instance wrappers), ``openai`` and
``anthropic`` (which methods), ``record`` (``rec.record``, a call timed elsewhere).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from flightdeck.recorder.instrument.route import infer

if TYPE_CHECKING:
    from flightdeck.recorder.recorder import Recorder

__all__ = ["instrument"]

C = TypeVar("C")


def _family(client: Any) -> tuple[str | None, bool]:
    """(``openai`` or ``anthropic``: the SDK the client's class or a base comes from, whether async).

    Async by class (``AsyncOpenAI``, ``AsyncAnthropicBedrock``, ...): the SDKs'
    async methods are plain functions returning coroutines, so they cannot be told by inspection.
    """
    for cls in type(client).__mro__:
        root = cls.__module__.split(".", 1)[0]
        if root in ("openai", "anthropic"):
            return root, cls.__name__.startswith("Async")
    return None, False


def instrument(rec: Recorder, client: C, *, provider: str | None = None, route: str | None = None) -> C:
    """Record every model call ``client`` makes into ``rec``; returns ``client`` itself.

    Args:
        rec: the recorder.
        client: an OpenAI or Anthropic SDK client, sync or async.
        provider: the event's provider (default: from the client's class and ``base_url``).
        route: ``direct``, ``proxy`` or ``local`` (default: from ``base_url``, see ``route``).
    Raises ``TypeError`` for anything that is not such a client (a programming error,
    raised once at set-up, never during a call).
    """
    family, is_async = _family(client)
    if family is None:
        raise TypeError(f"rec.instrument() takes an OpenAI or Anthropic SDK client, not {type(client).__name__}")
    guessed_provider, guessed_route = infer(client, family)
    provider = provider or guessed_provider
    route = route or rec.route or guessed_route
    if family == "openai":
        from flightdeck.recorder.instrument import openai as sdk
    else:
        from flightdeck.recorder.instrument import anthropic as sdk  # type: ignore[no-redef]
    if not sdk.patch(rec, client, provider, route, is_async):
        raise TypeError(f"rec.instrument(): {type(client).__name__} has none of the methods flightdeck records")
    return client
