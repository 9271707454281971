"""The user's own rates: a TOML file read over the pricing database.

Format (every rate is USD per million tokens, written as a string so it stays
exact; integers are accepted too)::

    [[model]]
    match = "my-finetune-*"      # fnmatch on the model name, case-insensitive
    provider = "openai"          # optional: only calls to this provider (a call of unknown provider matches any)
    input = "2.50"               # required
    output = "10.00"             # required
    cache_read = "1.25"          # optional, default: the input rate
    cache_write = "3.125"        # optional, default: the input rate
    cache_write_1h = "5.00"      # optional, default: the cache_write rate
    reasoning = "10.00"          # optional, default: the output rate
    per_request = "0.005"        # optional, USD per call
    since = "2025-06-01"         # optional: dated rates, see below
    service_tier = "flex"        # optional: only calls served at this tier (batch, flex, priority...)
    speed = "fast"               # optional: only calls at this speed (Anthropic fast mode)
    source = "https://..."       # optional: where the rate comes from (shown by `flightdeck prices`)

    [[model.tier]]               # optional: "cliff" tiers on the whole prompt
    above = 200000               # prompts of more than this many tokens ...
    input = "5.00"               # ... pay these rates on every token
    output = "20.00"

Entries with the same ``match``, ``provider``, ``service_tier`` and ``speed``
form one group: the entry with the latest ``since`` on or before the call's UTC
date wins. Groups are tried in file order and the first whose pattern matches
the model (and whose tier and speed are the call's) is used; if none of its
entries is in force yet the call falls through to the next layer. An entry
without ``service_tier``/``speed`` prices standard calls ("default",
"standard", "auto" and the like are all the standard tier).

flightdeck ships its own corrections to the pricing database in this same
format (``price_corrections.toml`` beside this module, every entry with a
``source``); ``shipped_corrections`` loads them.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

RATE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning", "per_request")
_ENTRY_FIELDS = frozenset({"match", "provider", "since", "tier", "service_tier", "speed", "source", *RATE_FIELDS})
# Tier names that mean "the standard rates" (OpenAI "default"/"auto", Anthropic
# "standard", Groq "on_demand"): one key, None, for all of them.
STANDARD_TIERS = frozenset({"", "default", "standard", "auto", "on_demand", "on-demand"})
STANDARD_SPEEDS = frozenset({"", "standard", "normal"})
CORRECTIONS_PATH = Path(__file__).with_name("price_corrections.toml")
_TIER_FIELDS = frozenset({"above", *RATE_FIELDS})
_HEADER = re.compile(r"^\s*\[\[\s*model\s*\]\]")


class OverrideError(ValueError):
    """A price override file that cannot be used; the message names file, line and field."""


def tier_key(service_tier: str | None, speed: str | None = None) -> tuple[str | None, str | None]:
    """(tier, speed) as pricing keys them: lower-cased, every standard name None.

    ``service_tier``: as the provider reported it ("default", "flex", "batch"...);
    ``speed``: Anthropic's ``usage.speed`` ("standard" or "fast").
    """
    tier = service_tier.strip().lower() if isinstance(service_tier, str) else ""
    pace = speed.strip().lower() if isinstance(speed, str) else ""
    return (None if tier in STANDARD_TIERS else tier), (None if pace in STANDARD_SPEEDS else pace)


@dataclass(frozen=True, slots=True)
class OverrideTier:
    above: int
    rates: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class OverrideRate:
    """One ``[[model]]`` entry."""

    match: str
    provider: str | None
    since: date | None
    rates: dict[str, Decimal]  # keys from RATE_FIELDS; input and output always present
    tiers: tuple[OverrideTier, ...]
    line: int
    service_tier: str | None = None  # tier_key()'s form: None is the standard tier
    speed: str | None = None
    source: str | None = None

    def label(self, path: Path) -> str:
        provider = f' provider="{self.provider}"' if self.provider else ""
        tier = f' service_tier="{self.service_tier}"' if self.service_tier else ""
        speed = f' speed="{self.speed}"' if self.speed else ""
        return f'override {path} [[model]] match="{self.match}"{provider}{tier}{speed} (line {self.line})'


@dataclass(frozen=True, slots=True)
class Overrides:
    path: Path
    groups: tuple[tuple[OverrideRate, ...], ...]  # file order; entries of a group sorted by since

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, require_source: bool = False) -> Overrides:
        """Read and check the file; OverrideError (file, line, field) when it is unusable.

        ``require_source``: every entry must say where its rate comes from
        (the shipped corrections table).
        """
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OverrideError(f"{path}: cannot read price overrides: {exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise OverrideError(f"{path}: not valid TOML: {exc}") from None
        entries = _parse(path, text, data)
        if require_source:
            for entry in entries:
                if not entry.source:
                    raise _fail(path, text, entry.line, "source", "required here: where the rate comes from")
        return cls(path, _group(entries))

    def lookup(self, provider: str, model: str, service_tier: str | None = None,
               speed: str | None = None) -> tuple[OverrideRate, ...] | None:
        """The first group whose pattern matches (provider, model) at this tier and speed, or None.

        ``service_tier``/``speed`` in ``tier_key`` form (None: standard). An
        empty ``provider`` (not known, e.g. ``flightdeck prices MODEL``) matches
        entries of any provider.
        """
        model_l = model.lower()
        provider_l = provider.lower()
        for group in self.groups:
            head = group[0]
            if head.provider is not None and provider_l and head.provider != provider_l:
                continue
            if head.service_tier != service_tier or head.speed != speed:
                continue
            if fnmatch.fnmatchcase(model_l, head.match):
                return group
        return None

    def matches(self, provider: str, model: str) -> bool:
        """Whether any group, at any tier or speed, prices (provider, model)."""
        model_l = model.lower()
        provider_l = provider.lower()
        return any(
            (group[0].provider is None or not provider_l or group[0].provider == provider_l)
            and fnmatch.fnmatchcase(model_l, group[0].match)
            for group in self.groups
        )

    @staticmethod
    def in_force(group: tuple[OverrideRate, ...], day: date) -> OverrideRate | None:
        """The entry of a group that applies on ``day`` (latest since <= day)."""
        chosen = None
        for entry in group:  # sorted by since, undated first
            if entry.since is None or entry.since <= day:
                chosen = entry
        return chosen


def default_overrides_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "flightdeck" / "prices.toml"


def _entry_lines(text: str) -> list[int]:
    """1-based line of each ``[[model]]`` header, in order, to point errors at."""
    return [n for n, line in enumerate(text.splitlines(), 1) if _HEADER.match(line)]


def _field_line(text: str, start: int, field: str) -> int:
    """The line of ``field = ...`` at or after ``start`` (within the entry), else ``start``."""
    pattern = re.compile(rf"^\s*{re.escape(field)}\s*=")
    lines = text.splitlines()
    for n in range(start, len(lines) + 1):
        if n > start and _HEADER.match(lines[n - 1]):
            break
        if pattern.match(lines[n - 1]):
            return n
    return start


def _parse(path: Path, text: str, data: dict[str, Any]) -> list[OverrideRate]:
    extra = sorted(set(data) - {"model"})
    if extra:
        raise OverrideError(f"{path}: unknown top-level key {extra[0]!r} (expected [[model]] tables)")
    raw = data.get("model", [])
    if not isinstance(raw, list):
        raise OverrideError(f"{path}: 'model' must be an array of tables: write [[model]]")
    lines = _entry_lines(text)
    entries = []
    for index, item in enumerate(raw):
        line = lines[index] if index < len(lines) else 1
        entries.append(_parse_entry(path, text, line, item))
    return entries


def _fail(path: Path, text: str, line: int, field: str, message: str) -> OverrideError:
    return OverrideError(f"{path}, line {_field_line(text, line, field)}: [[model]] field {field!r}: {message}")


def _parse_entry(path: Path, text: str, line: int, item: dict[str, Any]) -> OverrideRate:
    for key in item:
        if key not in _ENTRY_FIELDS:
            raise _fail(path, text, line, key, f"unknown field (known: {', '.join(sorted(_ENTRY_FIELDS))})")
    match = item.get("match")
    if not isinstance(match, str) or not match.strip():
        raise _fail(path, text, line, "match", "required: a model name or fnmatch pattern, e.g. \"my-model-*\"")
    provider = item.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise _fail(path, text, line, "provider", "must be a provider name such as \"openai\"")
    rates = _parse_rates(path, text, line, item)
    for required in ("input", "output"):
        if required not in rates:
            raise _fail(path, text, line, required, "required: USD per million tokens, e.g. \"2.50\"")
    tiers = _parse_tiers(path, text, line, item.get("tier", []))
    labels = {}
    for field in ("service_tier", "speed", "source"):
        value = item.get(field)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise _fail(path, text, line, field, "must be a non-empty string")
        labels[field] = value.strip() if isinstance(value, str) else None
    service_tier, speed = tier_key(labels["service_tier"], labels["speed"])
    return OverrideRate(
        match=match.strip().lower(),
        provider=provider.strip().lower() if provider else None,
        since=_parse_since(path, text, line, item.get("since")),
        rates=rates,
        tiers=tiers,
        line=line,
        service_tier=service_tier,
        speed=speed,
        source=labels["source"],
    )


def _parse_rates(path: Path, text: str, line: int, item: dict[str, Any]) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for field in RATE_FIELDS:
        if field in item:
            rates[field] = _parse_amount(path, text, line, field, item[field])
    return rates


def _parse_amount(path: Path, text: str, line: int, field: str, value: object) -> Decimal:
    if isinstance(value, (bool, float)):
        # A TOML float has already lost the digits the user wrote; money stays exact.
        raise _fail(path, text, line, field, f"write the rate as a string, e.g. \"{value}\", so it stays exact")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise _fail(path, text, line, field, f"{value!r} is not a decimal number") from None
    else:
        raise _fail(path, text, line, field, "must be a decimal string such as \"2.50\"")
    if not amount.is_finite() or amount < 0:
        raise _fail(path, text, line, field, f"{value!r} is not a non-negative amount")
    return amount


def _parse_since(path: Path, text: str, line: int, value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # a TOML datetime: its date
        return value.date()
    if isinstance(value, date):  # a TOML local date
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(path, text, line, "since", f"{value!r} is not a date like 2025-06-01")


def _parse_tiers(path: Path, text: str, line: int, raw: object) -> tuple[OverrideTier, ...]:
    if not isinstance(raw, list):
        raise _fail(path, text, line, "tier", "must be [[model.tier]] tables")
    tiers = []
    for item in raw:
        if not isinstance(item, dict):
            raise _fail(path, text, line, "tier", "must be [[model.tier]] tables")
        for key in item:
            if key not in _TIER_FIELDS:
                raise _fail(path, text, line, key, f"unknown tier field (known: {', '.join(sorted(_TIER_FIELDS))})")
        above = item.get("above")
        if isinstance(above, bool) or not isinstance(above, int) or above < 0:
            raise _fail(path, text, line, "above", "required in a tier: a prompt size in tokens, e.g. 200000")
        tiers.append(OverrideTier(above, _parse_rates(path, text, line, item)))
    tiers.sort(key=lambda tier: tier.above)
    return tuple(tiers)


def _group(entries: list[OverrideRate]) -> tuple[tuple[OverrideRate, ...], ...]:
    groups: dict[tuple[str, str | None, str | None, str | None], list[OverrideRate]] = {}
    for entry in entries:
        groups.setdefault((entry.match, entry.provider, entry.service_tier, entry.speed), []).append(entry)
    # Undated entries first, then by date; a stable sort keeps file order among equals,
    # so a later line with the same date wins.
    return tuple(
        tuple(sorted(group, key=lambda e: (e.since is not None, e.since or date.min)))
        for group in groups.values()
    )


_shipped: Overrides | None = None


def shipped_corrections() -> Overrides:
    """flightdeck's corrections to the pricing database (loaded once; a broken table raises)."""
    global _shipped
    if _shipped is None:
        _shipped = Overrides.load(CORRECTIONS_PATH, require_source=True)
    return _shipped
