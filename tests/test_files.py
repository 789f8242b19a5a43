"""Output files are written whole or not at all, and a write error names the file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from hopose.files import copy_file, temporary_path, write_atomic, write_text


def test_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    write_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    # Writing to /dev/full fails with ENOSPC, exactly as on a full disk.
    temporary_path(path).symlink_to("/dev/full")
    with pytest.raises(OSError, match=r"No space left on device.*metrics\.json") as info:
        write_text(path, "x" * 100_000)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_text() == "old"
    assert not temporary_path(path).is_symlink()


def test_an_error_in_the_writer_leaves_nothing(tmp_path):
    path = tmp_path / "predictions.npz"

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyError("pred_hand_3d")

    with pytest.raises(KeyError):
        write_atomic(path, half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_copy_file_copies_every_byte_and_leaves_no_temporary(tmp_path):
    source, target = tmp_path / "best.pt", tmp_path / "model.pt"
    data = bytes(range(256)) * 1000  # every byte value, over several copy buffers
    source.write_bytes(data)
    target.write_bytes(b"old")
    assert copy_file(source, target) == target
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "model.pt"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_failed_copy_leaves_no_partial_target(tmp_path):
    source, target = tmp_path / "best.pt", tmp_path / "model.pt"
    source.write_bytes(b"x" * 100_000)
    temporary_path(target).symlink_to("/dev/full")  # the copy's writes fail with ENOSPC
    with pytest.raises(OSError, match=r"No space left on device.*model\.pt") as info:
        copy_file(source, target)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_copying_a_missing_file_names_it_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"best\.pt"):
        copy_file(tmp_path / "best.pt", tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """A crash after the rename must find the new contents (file synced first) and the new name
    (folder synced after), not an empty file or the old one."""
    events: list[str] = []
    fsync, replace = os.fsync, os.replace

    def record_fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        fsync(fd)

    def record_replace(source, target) -> None:
        events.append("replace")
        replace(source, target)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(os, "replace", record_replace)
    write_text(tmp_path / "config.yaml", "seed: 0\n")
    folder = ["fsync folder"] if hasattr(os, "O_DIRECTORY") else []
    assert events == ["fsync file", "replace", *folder]
