"""core.fsopen.replace_file: the one way a file of ours is replaced whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flightdeck.core.fsopen import replace_file


def test_the_file_is_replaced_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "rates.msgpack"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    replace_file(path, b"new contents", suffix=".rates")
    assert path.read_bytes() == b"new contents"
    assert path.stat().st_mode & 0o777 == 0o600  # the temporary file's mode, renamed into place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rates.msgpack"]  # no temporary file left


def test_a_planted_link_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"not yours to write")
    path = tmp_path / "entry.idx"
    os.symlink(target, path)
    replace_file(path, b"ours", suffix=".idx")
    assert not path.is_symlink() and path.read_bytes() == b"ours"
    assert target.read_bytes() == b"not yours to write"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "entry.idx"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        replace_file(path, "not bytes", suffix=".idx")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.idx"]
