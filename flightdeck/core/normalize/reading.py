"""Reading token counts out of loosely typed provider payloads.

Every adapter reads through a ``Reader``. It turns SDK objects into dicts on
the way down (no SDK is imported: anything with ``model_dump()``, ``to_dict()``
or plain attributes is accepted), takes the *first* present of several alias
fields (never their sum: aliases of one count would be counted twice), and
reports a bad value with the provider and the field's path.

In strict mode (``normalize_usage``) a problem raises ``ValueError`` at once.
In lenient mode (``normalize_usage_partial``) it is recorded in ``problems``
and the value counts as 0, so the recorder still writes what it could read.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

Obj = Mapping[str, Any]

_SCALARS = (str, bytes, bytearray, int, float, bool)


# Per class: whether it is a pydantic v2 model (not a pydantic dataclass). Asked of
# every SDK object read; the answer is kept, since a failed ``hasattr`` on a pydantic
# model class goes through its metaclass's ``__getattr__`` and a raised AttributeError.
_PYDANTIC: dict[type, bool] = {}


def is_pydantic_model(value: Any) -> bool:
    """Whether ``value`` is an instance of a pydantic v2 ``BaseModel`` (what the SDKs return).

    Args:
        value: any object.
    """
    cls = type(value)
    known = _PYDANTIC.get(cls)
    if known is None:
        if len(_PYDANTIC) >= 1024:  # classes made on the fly must not grow it forever
            _PYDANTIC.clear()
        known = _PYDANTIC[cls] = hasattr(cls, "__pydantic_fields__") and not hasattr(cls, "__dataclass_fields__")
    return known


def as_mapping(value: Any) -> Obj | None:
    """A dict view of ``value``: itself if a mapping, else an SDK object dumped.

    Returns None for scalars and sequences. May raise whatever a foreign
    ``model_dump()`` raises; ``Reader.obj`` turns that into a reported problem.
    """
    if type(value) is dict:  # the common case first: no ABC check
        return value
    if isinstance(value, Mapping):
        return value
    if value is None or isinstance(value, (*_SCALARS, list, tuple)):
        return None
    if is_pydantic_model(value):
        # A pydantic v2 model (the SDKs' types): straight to model_dump, before the
        # Struct and dataclass probes it would fail anyway.
        out = value.model_dump()
        return out if isinstance(out, Mapping) else None
    if isinstance(value, msgspec.Struct):  # e.g. flightdeck's own records
        return msgspec.structs.asdict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    # pydantic v2 models: the openai, anthropic, google-genai, cohere and litellm SDKs.
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        out = dump()
        return out if isinstance(out, Mapping) else None
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        out = to_dict()
        return out if isinstance(out, Mapping) else None
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return {k: v for k, v in attrs.items() if not k.startswith("_")}
    return None


def as_sequence(value: Any) -> Sequence[Any] | None:
    """A list of stream events/chunks, or None when ``value`` is not one."""
    if isinstance(value, (list, tuple)):
        return value
    return None


_Found = TypeVar("_Found")


def last_in_stream(*, empty: Any = None) -> Callable[[Callable[..., _Found]], Callable[..., _Found]]:
    """Let a ``find(r, raw, ...)`` also take a stream (a list of events or chunks).

    A stream's usage comes at its end (the final chunk, ``message_delta``,
    ``response.completed``, Bedrock's metadata event), so ``find`` is tried on
    each item from the last, and the first answer other than ``empty`` wins.
    Items that are lists themselves are searched the same way.
    """

    def decorate(find: Callable[..., _Found]) -> Callable[..., _Found]:
        @functools.wraps(find)
        def search(r: Any, raw: Any, *args: Any, **kwargs: Any) -> _Found:
            events = as_sequence(raw)
            if events is None:
                return find(r, raw, *args, **kwargs)
            for item in reversed(events):
                found = search(r, item, *args, **kwargs)
                if found != empty:
                    return found
            return empty

        return search

    return decorate


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Reader:
    """Field access with provider-named errors; strict raises, lenient records."""

    __slots__ = ("missing", "notes", "problems", "provider", "service_tier", "speed", "strict",
                 "tiers_read")

    def __init__(self, provider: str, *, strict: bool = True) -> None:
        self.provider = provider
        self.strict = strict
        self.problems: list[str] = []
        # What a correct payload still leaves uncertain (e.g. a lone message_delta
        # has no 1h/5m split): shown in the event's message, never raised.
        self.notes: list[str] = []
        # True when the payload held no usage at all: the call's cost is then
        # unknown, never a priced zero (SPEC 5.1).
        self.missing = False
        # The service tier and speed, when the adapter read them on its way to
        # the usage (``tiers_read``); else the adapter's own readers are asked.
        self.service_tier: str | None = None
        self.speed: str | None = None
        self.tiers_read = False

    def saw_tiers(self, service_tier: Any, speed: Any = None) -> None:
        """The tier and speed found beside the usage (non-strings count as absent)."""
        self.service_tier = service_tier if isinstance(service_tier, str) and service_tier else None
        self.speed = speed if isinstance(speed, str) and speed else None
        self.tiers_read = True

    # -- reporting -------------------------------------------------------------

    def report(self, text: str) -> None:
        """``text`` is the message after the provider name."""
        message = f"{self.provider}{text}" if text.startswith(":") else f"{self.provider} {text}"
        if self.strict:
            raise ValueError(message)
        self.problems.append(message)

    def bad(self, path: str, detail: str) -> None:
        self.report(f"{path}: {detail}")

    def no_usage(self, detail: str = "") -> None:
        """The payload has no usage; ``detail`` says what was passed and how to fix it."""
        self.missing = True
        self.report(f": no usage found in payload{detail}")

    def note(self, text: str) -> None:
        """A caveat about a valid payload (``text`` follows the provider name)."""
        self.notes.append(f"{self.provider}{text}" if text.startswith(":") else f"{self.provider} {text}")

    # -- structure ---------------------------------------------------------------

    def obj(self, value: Any, path: str) -> Obj | None:
        """``value`` as a mapping; a non-object is reported (None is just absent)."""
        if value is None:
            return None
        try:
            mapping = as_mapping(value)
        except Exception as exc:  # a foreign SDK's model_dump() failed: name it, don't crash
            self.bad(path, f"could not read {type(value).__name__} ({type(exc).__name__}: {exc})")
            return None
        if mapping is None:
            self.bad(path, f"expected an object, got {_show(value)}")
        return mapping

    def sub(self, m: Obj | None, key: str, path: str) -> Obj | None:
        """The object at ``m[key]``; None when absent or null."""
        if m is None:
            return None
        return self.obj(m.get(key), f"{path}.{key}" if path else key)

    # -- counts ------------------------------------------------------------------

    def to_count(self, value: Any, where: str, key: str = "") -> int | None:
        """``value`` as a count; ``where`` (plus ``.key``) names it in an error."""
        if type(value) is int and value >= 0:  # the common case, checked first
            return value
        # OTLP JSON and Bedrock headers carry ints as strings; the Cohere SDK
        # types billed units as floats. Both are exact when integral.
        if isinstance(value, int) and not isinstance(value, bool):
            if value >= 0:
                return int(value)
        elif isinstance(value, float):
            if value.is_integer() and value >= 0:
                return int(value)
        elif isinstance(value, str):
            text = value.strip()
            if text.isascii() and text.isdigit():
                return int(text)
        if key:
            where = f"{where}.{key}" if where else key
        self.bad(where, f"expected a non-negative int, got {_show(value)}")
        return None

    def count(self, m: Obj | None, key: str, path: str) -> int | None:
        """``m[key]`` as a count; None when absent or null."""
        if m is None:
            return None
        value = m.get(key)
        if value is None:
            return None
        return self.to_count(value, path, key)  # the path string is built only on error

    def first(self, m: Obj | None, keys: Iterable[str], path: str) -> int | None:
        """The first alias present. Aliases name ONE count: never add them."""
        if m is None:
            return None
        for key in keys:
            value = self.count(m, key, path)
            if value is not None:
                return value
        return None

    def first_of(self, sources: Iterable[tuple[Obj | None, str]], keys: Iterable[str]) -> int | None:
        """The first alias present across several (mapping, path) sources, in order."""
        names = tuple(keys)
        for m, path in sources:
            value = self.first(m, names, path)
            if value is not None:
                return value
        return None

    def required(self, value: int | None, where: str) -> int:
        if value is None:
            prefix = f"{self.provider} {where}:"
            if not any(p.startswith(prefix) for p in self.problems):  # bad, not missing
                self.bad(where, "missing")
            return 0
        return value

    # -- arithmetic --------------------------------------------------------------

    def remainder(self, total: int, total_path: str, parts: Iterable[tuple[int, str]]) -> int:
        """``total`` minus parts it INCLUDES; a negative result is reported, 0 returned."""
        named = [(v, p) for v, p in parts if v]
        taken = sum(v for v, _ in named)
        if taken <= total:
            return total - taken
        names = " + ".join(f"{p} ({v})" for v, p in named)
        verb = "exceed" if len(named) > 1 else "exceeds"
        self.report(f"{names} {verb} {total_path} ({total})")
        return 0

    def subset(self, part: int, part_path: str, whole: int, whole_path: str) -> int:
        """A count that must lie within another; an excess is reported and clamped."""
        if part <= whole:
            return part
        self.report(f"{part_path} ({part}) exceeds {whole_path} ({whole})")
        return whole
