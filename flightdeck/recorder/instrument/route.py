"""Provider and route of an SDK client, from its class and ``base_url``.

An OpenAI SDK client may talk to OpenAI, Azure, a router (OpenRouter), another
vendor's OpenAI-compatible API (DeepSeek, Groq, ...) or a model on the user's
own machine (vLLM, Ollama, llama.cpp, LM Studio). The event's ``provider``
decides the price, its ``route`` whether there is one (``local`` costs 0), so
both are read from where the client sends its requests:

- a known host: its provider (table below), route ``direct`` (``proxy`` for routers);
- a loopback, private-network or ``.local`` host: route ``local``, provider
  ``ollama`` on Ollama's port 11434, else ``vllm`` (any OpenAI-compatible server);
- any other host: the SDK's own provider, route ``proxy`` (a gateway such as a
  LiteLLM proxy; pricing still uses the model's list price).

``rec.instrument(client, provider=..., route=...)`` overrides either.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

__all__ = ["infer", "infer_url"]

# host suffix -> (provider, route)
_HOSTS: tuple[tuple[str, tuple[str, str]], ...] = (
    ("api.openai.com", ("openai", "direct")),
    ("openai.azure.com", ("azure", "direct")),
    ("services.ai.azure.com", ("azure", "direct")),
    ("openrouter.ai", ("openrouter", "proxy")),
    ("api.deepseek.com", ("deepseek", "direct")),
    ("api.anthropic.com", ("anthropic", "direct")),
    ("api.groq.com", ("groq", "direct")),
    ("api.mistral.ai", ("mistral", "direct")),
    ("api.x.ai", ("xai", "direct")),
    ("api.together.xyz", ("together", "direct")),
    ("api.fireworks.ai", ("fireworks", "direct")),
    ("generativelanguage.googleapis.com", ("google", "direct")),
    ("aiplatform.googleapis.com", ("google", "direct")),
    ("amazonaws.com", ("bedrock", "direct")),
    ("api.cohere.com", ("cohere", "direct")),
    ("api.cohere.ai", ("cohere", "direct")),
)
# Client classes whose name says where they go, whatever the URL.
_CLASSES = {
    "AzureOpenAI": "azure",
    "AsyncAzureOpenAI": "azure",
    "AnthropicBedrock": "bedrock",
    "AsyncAnthropicBedrock": "bedrock",
    "AnthropicVertex": "vertex",
    "AsyncAnthropicVertex": "vertex",
}
_OLLAMA_PORT = 11434


def _is_local(host: str) -> bool:
    if host in ("localhost", "host.docker.internal") or host.endswith((".local", ".localhost")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def infer(client: Any, family: str) -> tuple[str, str]:
    """``(provider, route)`` for ``client``.

    Args:
        client: an SDK client (its class name and ``base_url`` are read).
        family: the SDK's own provider (``openai`` or ``anthropic``), used when nothing else says.
    """
    by_class = _CLASSES.get(type(client).__name__)
    if by_class is not None:
        return by_class, "direct"
    return infer_url(str(getattr(client, "base_url", "") or ""), family)


def infer_url(base_url: str | None, family: str) -> tuple[str, str]:
    """``(provider, route)`` for requests sent to ``base_url``.

    Args:
        base_url: where the requests go (None or empty: the family's own API).
        family: the provider to assume for an unknown host.
    """
    try:
        parts = urlsplit(base_url or "")
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return family, "direct"
    if not host:
        return family, "direct"
    for suffix, found in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return found
    if _is_local(host):
        return ("ollama" if port == _OLLAMA_PORT else "vllm"), "local"
    return family, "proxy"
