"""A folder swapped in whole; when the swap fails, the old folder is back where it was."""

from __future__ import annotations

import os

import pytest

from promptembedder.atomic import replace_folder


def test_the_new_folder_replaces_the_old_one_whole(tmp_path):
    target, staging = tmp_path / "model", tmp_path / ".staging"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    replace_folder(staging, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"] and not staging.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # the old folder set aside is gone too


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    target, staging = tmp_path / "model", tmp_path / ".staging"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging.mkdir()
    real = os.replace

    def failing(src, dst):
        if str(src) == str(staging):
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        replace_folder(staging, target)
    assert (target / "old.txt").read_text() == "old"
