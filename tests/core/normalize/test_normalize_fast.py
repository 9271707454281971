"""The quick reading (``core.normalize.fast``) agrees with the adapters wherever it answers.

It must answer for the payloads the recorder really gets (else it buys
nothing), and for every other payload leave the answer to the adapters.
"""

from __future__ import annotations

from typing import Any

import anthropic.types
import openai.types
import openai.types.chat
import openai.types.responses
import pydantic
import pytest
from fakeprovider import ANTHROPIC_USAGE, CHAT_USAGE, RESPONSES_USAGE, chat_completion
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core.normalize import read_by_adapter, read_call_usage
from flightdeck.core.normalize.fast import quick_reading


def _agrees(name: str, raw: Any, api: str | None = None) -> bool:
    """Whether ``quick_reading`` answered; when it did, it gave the adapter's answer, with no message."""
    quick = quick_reading(name, raw, api)
    slow = read_by_adapter(name, raw, api)
    if quick is None:
        return False
    assert (slow.problems, slow.notes) == ((), ()), (raw, slow)
    assert quick == (slow.usage, slow.service_tier, slow.speed), raw
    assert read_call_usage(name, raw, api) == slow
    return True


CHAT_COMPLETION = {**chat_completion("gpt-4o-2024-08-06"), "service_tier": "priority"}
ANTHROPIC_START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {**ANTHROPIC_USAGE, "output_tokens": 1}}}
# MessageDeltaUsage: the SDK's delta usage, nulls for what the delta does not restate.
ANTHROPIC_DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                   "usage": {"output_tokens": 400, "input_tokens": None, "cache_creation_input_tokens": None,
                             "cache_read_input_tokens": None, "server_tool_use": None}}


@pytest.mark.parametrize(("name", "raw", "api"), [
    ("anthropic", ANTHROPIC_USAGE, None),
    ("anthropic", anthropic.types.Usage.model_validate(ANTHROPIC_USAGE), None),
    ("anthropic", {"input_tokens": 12, "output_tokens": 3}, None),
    ("anthropic", {**ANTHROPIC_USAGE, "output_tokens_details": {"thinking_tokens": 150}, "speed": "fast"}, None),
    ("anthropic", {"input_tokens": 5, "cache_creation": {"ephemeral_5m_input_tokens": 7,
                                                         "ephemeral_1h_input_tokens": 2}}, None),
    ("anthropic", [ANTHROPIC_START, ANTHROPIC_DELTA], None),
    # What the stream proxy passes: the SDK's own usage objects, not dumped.
    ("anthropic", [{"type": "message_start", "message": {"usage": anthropic.types.Usage.model_validate(
        ANTHROPIC_START["message"]["usage"])}},
                   {"type": "message_delta", "usage": anthropic.types.MessageDeltaUsage.model_validate(
                       ANTHROPIC_DELTA["usage"])}], None),
    ("anthropic", [anthropic.types.RawMessageStartEvent.model_validate(ANTHROPIC_START),
                   anthropic.types.RawMessageDeltaEvent.model_validate(ANTHROPIC_DELTA)], None),
    ("openai", CHAT_USAGE, "chat"),
    ("openai", CHAT_USAGE, None),
    ("openai", openai.types.CompletionUsage.model_validate(CHAT_USAGE), "chat"),
    ("openai", {"prompt_tokens": 9, "completion_tokens": 1, "prompt_tokens_details": None,
                "completion_tokens_details": None}, None),
    ("openai", RESPONSES_USAGE, "responses"),
    ("openai", {"usage": CHAT_USAGE}, None),  # a whole response
    ("openai", {"usage": CHAT_USAGE, "service_tier": "flex"}, "chat"),  # what rec.instrument passes
    ("openai", openai.types.chat.ChatCompletion.model_validate(CHAT_COMPLETION), "chat"),
    ("openai", RESPONSES_USAGE, None),
    ("openai", openai.types.responses.ResponseUsage.model_validate(
        {**RESPONSES_USAGE, "input_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 128}}), "responses"),
])
def test_the_real_sdk_payloads_are_read_quickly_and_alike(name: str, raw: Any, api: str | None) -> None:
    assert _agrees(name, raw, api)


@pytest.mark.parametrize(("name", "raw", "api"), [
    ("anthropic", {"type": "message", "usage": ANTHROPIC_USAGE}, None),  # a Message: the adapter's
    ("anthropic", [ANTHROPIC_DELTA], None),  # a lone delta: the adapter adds its note
    ("anthropic", [{"type": "message_stop"}], None),  # no usage: the adapter says what to pass
    ("anthropic", {"input_tokens": -1}, None),
    ("anthropic", {"input_tokens": True}, None),
    ("anthropic", {"input_tokens": "12"}, None),  # a string count: the adapter accepts it
    ("anthropic", {"output_tokens": 3}, None),  # input missing: a problem to report
    ("anthropic", {"input_tokens": 1, "cache_creation_input_tokens": 1,
                   "cache_creation": {"ephemeral_1h_input_tokens": 2}}, None),  # 1h beyond the writes
    ("anthropic", {"input_tokens": 1, "output_tokens": 1, "output_tokens_details": {"thinking_tokens": 2}}, None),
    ("openai", {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 6}}, "chat"),
    ("openai", {"prompt_tokens": 5}, "Chat"),  # a flavour to fold or reject: the adapter's
    ("openai", {"type": "response.completed", "response": {"usage": RESPONSES_USAGE}}, None),
    ("openai", [CHAT_USAGE], None),  # a list of chunks
    ("openai", {"usage": {"usage": CHAT_USAGE}}, None),  # nested twice: the adapter's
    ("openai", {"usage": "12"}, None),
    ("deepseek", {"prompt_tokens": 5}, None),  # another provider's own rules
])
def test_everything_else_is_left_to_the_adapters(name: str, raw: Any, api: str | None) -> None:
    assert quick_reading(name, raw, api) is None


class _BadDump:
    """A foreign object whose model_dump() raises: never an exception from the quick reading."""

    __pydantic_fields__: dict[str, Any] = {}

    def model_dump(self) -> dict[str, Any]:
        raise RuntimeError("boom")


def test_a_failing_model_dump_is_left_to_the_adapters() -> None:
    assert quick_reading("anthropic", _BadDump(), None) is None
    assert read_call_usage("anthropic", _BadDump()).problems  # the adapter names it


_ODD = st.one_of(st.integers(min_value=-2, max_value=10**16), st.booleans(),
                 st.sampled_from(["", "7", "standard", "priority"]), st.floats(allow_nan=False))
# Mostly clean counts (so the quick reading answers often), now and then a null or an odd value.
_COUNT = st.integers(min_value=0, max_value=5000)
_VALUES = st.one_of(_COUNT, _COUNT, _COUNT, _COUNT, st.none(), _ODD)
_ANTHROPIC_KEYS = ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                   "service_tier", "speed"]
_CHAT_KEYS = ["prompt_tokens", "completion_tokens", "total_tokens", "service_tier", "input_tokens",
              "output_tokens"]


def _nested(keys: list[str]) -> st.SearchStrategy[Any]:
    inner = st.dictionaries(st.sampled_from(keys), _VALUES, max_size=3)
    return st.one_of(inner, inner, inner, st.none(), st.integers())


_ANTHROPIC = st.fixed_dictionaries(
    {}, optional={**dict.fromkeys(_ANTHROPIC_KEYS, _VALUES),
                  "cache_creation": _nested(["ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"]),
                  "output_tokens_details": _nested(["thinking_tokens"])})
_OPENAI = st.fixed_dictionaries(
    {}, optional={**dict.fromkeys(_CHAT_KEYS, _VALUES),
                  "prompt_tokens_details": _nested(["cached_tokens", "cache_write_tokens"]),
                  "completion_tokens_details": _nested(["reasoning_tokens"]),
                  "input_tokens_details": _nested(["cached_tokens", "cache_write_tokens"]),
                  "output_tokens_details": _nested(["reasoning_tokens"])})


@settings(max_examples=400, deadline=None)
@given(_ANTHROPIC, st.booleans(), st.booleans())
def test_generated_anthropic_payloads_agree(usage: dict[str, Any], as_stream: bool, with_delta: bool) -> None:
    raw: Any = usage
    if as_stream:
        raw = [{"type": "message_start", "message": {"usage": usage}}]
        if with_delta:
            raw.append({"type": "message_delta", "usage": {"output_tokens": usage.get("output_tokens")}})
    _agrees("anthropic", raw)


@settings(max_examples=400, deadline=None)
@given(_OPENAI, st.sampled_from([None, "chat", "responses"]), st.one_of(st.none(), _VALUES))
def test_generated_openai_payloads_agree(usage: dict[str, Any], api: str | None, tier: Any) -> None:
    _agrees("openai", usage, api)
    _agrees("openai", {"usage": usage, "service_tier": tier}, api)  # as a response holds it


def _model(kind: Any, data: dict[str, Any]) -> Any:
    try:
        return kind.model_validate(data)
    except pydantic.ValidationError:
        return None


# The SDK types' required fields always there, so most examples validate into a model.
_SDK_CHAT = st.builds(lambda req, rest: {**rest, **req}, st.fixed_dictionaries(
    {"prompt_tokens": _COUNT, "completion_tokens": _COUNT, "total_tokens": _COUNT,
     "input_tokens": _COUNT, "output_tokens": _COUNT}), _OPENAI)
_SDK_MESSAGE = st.builds(lambda req, rest: {**rest, **req}, st.fixed_dictionaries(
    {"input_tokens": _COUNT, "output_tokens": _COUNT}), _ANTHROPIC)


@settings(max_examples=300, deadline=None)
@given(_SDK_CHAT, _SDK_MESSAGE)
def test_generated_sdk_objects_agree(chat: dict[str, Any], message: dict[str, Any]) -> None:
    """The SDKs' pydantic types, read through the field view, agree with the adapters' model_dump()."""
    for name, kind, data in (("openai", openai.types.CompletionUsage, chat),
                             ("openai", openai.types.responses.ResponseUsage, chat),
                             ("anthropic", anthropic.types.Usage, message)):
        model = _model(kind, data)
        if model is not None:
            _agrees(name, model)
