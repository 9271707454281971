from pathlib import Path

import pytest
from textual.color import Color

from flightdeck.cockpit.themes import (
    DEFAULT_THEME,
    load_themes,
    palette_for,
    parse_theme,
    resolve_name,
    theme_dirs,
)

REPO_THEMES = Path(__file__).resolve().parents[2] / "themes"


def test_shipped_themes_load_without_errors() -> None:
    result = load_themes([REPO_THEMES])
    assert result.errors == []
    assert {DEFAULT_THEME, "flightdeck-light", "flightdeck-high-contrast"} <= set(result.themes)
    assert result.themes["flightdeck-light"].dark is False


def test_every_theme_has_distinct_threshold_colours() -> None:
    for theme in load_themes([REPO_THEMES]).themes.values():
        palette = palette_for(theme)
        colours = {Color.parse(c).hex for c in (palette.ok, palette.warn, palette.bad)}
        assert len(colours) == 3, theme.name


def test_high_contrast_avoids_red_green_pairs() -> None:
    theme = load_themes([REPO_THEMES]).themes["flightdeck-high-contrast"]
    ok = Color.parse(palette_for(theme).ok)
    # The "good" colour is blue, not green: tell-apart for red-green colour blindness.
    assert ok.b > ok.g and ok.b > ok.r


def test_broken_theme_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text('primary = "#112233"\n')
    (tmp_path / "bad-toml.toml").write_text("primary = \n")
    (tmp_path / "bad-colour.toml").write_text('primary = "not-a-colour"\n')
    (tmp_path / "no-primary.toml").write_text('background = "#000000"\n')
    (tmp_path / "typo.toml").write_text('primary = "#112233"\nbackgruond = "#000"\n')
    result = load_themes([tmp_path])
    assert list(result.themes) == ["flightdeck-good"]
    messages = "\n".join(result.errors)
    assert len(result.errors) == 4
    assert "bad-colour.toml: primary = 'not-a-colour' is not a colour" in messages
    assert "no-primary.toml: primary is required" in messages
    assert "typo.toml: unknown key(s) backgruond" in messages
    assert "bad-toml.toml" in messages


def test_user_folder_overrides_and_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    user = tmp_path / "flightdeck" / "themes"
    user.mkdir(parents=True)
    (user / "mine.toml").write_text('name = "mine"\nprimary = "#ff00ff"\n[variables]\nfd-ok = "#00ffff"\n')
    assert theme_dirs()[-1] == user
    assert any(d.name == "themes" and d.parent.name == "_shipped" for d in theme_dirs())
    result = load_themes()
    assert "mine" in result.themes and DEFAULT_THEME in result.themes
    assert palette_for(result.themes["mine"]).ok == "#00ffff"


def test_threshold_variables_are_checked() -> None:
    with pytest.raises(ValueError, match=r"variables\.fd-bad"):
        parse_theme({"primary": "#000000", "variables": {"fd-bad": "reddish"}}, default_name="x")


def test_resolve_name_accepts_short_names() -> None:
    names = {"flightdeck-dark", "nord"}
    assert resolve_name("dark", names) == "flightdeck-dark"
    assert resolve_name("nord", names) == "nord"
    assert resolve_name("nope", names) is None


def test_tail_theme_nope_exits_2_before_opening_anything(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from flightdeck.cli import main

    sock = tmp_path / "s" / "fd.sock"
    assert main(["tail", "--socket", str(sock), "--theme", "nope"]) == 2
    assert "unknown theme 'nope'; available: dark, high-contrast, light" in capsys.readouterr().err
    assert not sock.exists() and not sock.parent.exists()  # nothing was bound
