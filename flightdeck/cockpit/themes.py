"""Theme files: TOML in ``themes/`` folders, turned into Textual ``Theme``s.

Three places are read, later ones overriding earlier ones by name:
the themes shipped in the wheel (``flightdeck/_shipped/themes``), the
top-level ``themes/`` folder of a source checkout, and the user's own
``$XDG_CONFIG_HOME/flightdeck/themes``. A file that does not parse or names
a colour Textual cannot read is reported and skipped: it never stops the app.

A theme file holds the fields of ``textual.theme.Theme`` (``name``,
``primary``, ``background``, ...) and a ``[variables]`` table, where the
three threshold colours ``fd-ok``, ``fd-warn`` and ``fd-bad`` give every panel
the same green / amber / red.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

from flightdeck.cockpit.format import Palette

DEFAULT_THEME = "flightdeck-dark"
THEME_PREFIX = "flightdeck-"
_COLOUR_FIELDS = ("primary", "secondary", "warning", "error", "success", "accent",
                  "foreground", "background", "surface", "panel", "boost")
_OTHER_FIELDS = ("name", "dark", "luminosity_spread", "text_alpha", "variables")
_THRESHOLD_VARS = ("fd-ok", "fd-warn", "fd-bad")


@dataclass
class ThemeLoad:
    """The themes found, by name, and one message per file that was skipped."""

    themes: dict[str, Theme] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)


def theme_dirs() -> list[Path]:
    """Where themes are looked for, lowest priority first."""
    package = Path(__file__).resolve().parent.parent  # .../flightdeck
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [
        package / "_shipped" / "themes",  # a wheel install
        package.parent / "themes",  # a source checkout (editable install)
        Path(config_home) / "flightdeck" / "themes",  # the user's own
    ]


def _check_colour(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a colour string, not {type(value).__name__}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ValueError(f"{key} = {value!r} is not a colour") from None
    return value


def parse_theme(data: dict[str, object], *, default_name: str) -> Theme:
    """A Theme from one file's TOML table; ValueError naming the bad key."""
    unknown = sorted(set(data) - set(_COLOUR_FIELDS) - set(_OTHER_FIELDS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    if "primary" not in data:
        raise ValueError("primary is required")
    colours = {key: _check_colour(key, data[key]) for key in _COLOUR_FIELDS if key in data}
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError("[variables] must be a table")
    for key, value in variables.items():
        if not isinstance(value, str):
            raise ValueError(f"variables.{key} must be a string")
        if key in _THRESHOLD_VARS:
            _check_colour(f"variables.{key}", value)
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ValueError("dark must be true or false")
    extra: dict[str, float] = {}
    for key in ("luminosity_spread", "text_alpha"):
        if key in data:
            value = data[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{key} must be a number")
            extra[key] = float(value)
    fields: dict[str, Any] = {**colours, **extra}  # checked above, field by field
    return Theme(name=name.strip(), dark=dark, variables=dict(variables), **fields)


def load_themes(dirs: list[Path] | None = None) -> ThemeLoad:
    """Every ``*.toml`` theme in ``dirs`` (default ``theme_dirs()``); broken files go to ``errors``."""
    result = ThemeLoad()
    for folder in theme_dirs() if dirs is None else dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                with path.open("rb") as f:
                    data = tomllib.load(f)
                theme = parse_theme(data, default_name=THEME_PREFIX + path.stem)
            except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
                result.errors.append(f"theme {path}: {exc}")
                continue
            result.themes[theme.name] = theme
            result.sources[theme.name] = path
    return result


def resolve_name(name: str, available: Collection[str]) -> str | None:
    """``dark`` finds ``flightdeck-dark``; an exact name always wins."""
    if name in available:
        return name
    prefixed = THEME_PREFIX + name
    return prefixed if prefixed in available else None


def unknown_theme(name: str) -> str | None:
    """Why ``--theme name`` cannot be used (it names no theme), or None when it can."""
    from textual.theme import BUILTIN_THEMES

    ours = load_themes().themes
    if resolve_name(name, set(ours) | set(BUILTIN_THEMES)) is not None:
        return None
    available = ", ".join(sorted(n.removeprefix(THEME_PREFIX) for n in ours))
    return f"unknown theme {name!r}; available: {available}"


def palette_for(theme: Theme | None) -> Palette:
    """The panel colours of a theme; Textual's own themes fall back to success/warning/error."""
    if theme is None:
        return Palette()
    base = Palette()
    variables = theme.variables
    dim = variables.get("fd-dim") or ("#8a8a8a" if theme.dark else "#6a6a6a")
    return Palette(
        ok=variables.get("fd-ok") or theme.success or base.ok,
        warn=variables.get("fd-warn") or theme.warning or base.warn,
        bad=variables.get("fd-bad") or theme.error or base.bad,
        accent=theme.accent or theme.primary,
        dim=dim,
        text=theme.foreground or ("#e0e0e0" if theme.dark else "#202020"),
        bar=variables.get("fd-bar") or theme.primary,
    )
