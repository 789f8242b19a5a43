"""Output files are written whole or not at all, a write error names the file, and a torch file
that cannot be read is one line."""

from __future__ import annotations

import argparse
import errno
import multiprocessing
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hopose.files import (
    JsonType,
    copy_file,
    is_whole_number,
    json_mismatch,
    output_folder,
    read_torch_file,
    temporary_path,
    write_atomic,
    write_text,
)


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


@pytest.mark.parametrize(
    "failure", [OSError(errno.EROFS, "Read-only file system"), KeyboardInterrupt()]
)
def test_a_temporary_that_cannot_be_removed_hides_no_error(tmp_path, monkeypatch, failure):
    """On a read-only file system the writer fails (EROFS, naming the hidden temporary) and so
    does removing the temporary: the error raised is still the write's, naming the target (or
    the interruption itself), not the removal's."""
    path = tmp_path / "o.onnx"

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    def write(tmp: Path) -> None:
        raise failure

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(type(failure)) as info:
        write_atomic(path, write)
    if isinstance(failure, OSError):
        assert str(info.value) == f"[Errno 30] cannot write (Read-only file system): '{path}'"


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


def _fsync_failing(kind: str, code: int):
    """os.fsync that fails with ``code`` on a folder ("folder") or a file ("file")."""
    fsync = os.fsync

    def failing(fd: int) -> None:
        is_folder = stat.S_ISDIR(os.fstat(fd).st_mode)
        if is_folder == (kind == "folder"):
            raise OSError(code, os.strerror(code))
        fsync(fd)

    return failing


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="folders are synced only with it")
@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOTSUP], ids=["EINVAL", "ENOTSUP"])
def test_a_file_system_that_cannot_sync_folders_still_gets_the_file(tmp_path, monkeypatch, code):
    """Some file systems refuse to sync a folder (EINVAL, ENOTSUP) after the rename has been
    done: the write succeeded, so it is not reported as failed."""
    monkeypatch.setattr(os, "fsync", _fsync_failing("folder", code))
    path = tmp_path / "config.yaml"
    assert write_text(path, "seed: 0\n") == path
    assert path.read_text() == "seed: 0\n"


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EIO], ids=["EINVAL", "EIO"])
def test_a_file_that_cannot_be_synced_is_not_renamed_over_the_old_one(tmp_path, monkeypatch, code):
    """The tolerance is the folder's alone: a file whose data cannot be synced is an error
    naming the target, the old file stays and the temporary is removed."""
    path = tmp_path / "metrics.json"
    path.write_text("old")
    monkeypatch.setattr(os, "fsync", _fsync_failing("file", code))
    with pytest.raises(OSError, match=r"metrics\.json") as info:
        write_text(path, "new")
    assert info.value.errno == code
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_writer_that_picks_its_format_from_the_suffix_writes_the_target(tmp_path):
    """numpy appends ".npz" to a name without it: the temporary keeps the target's suffix, so
    the archive lands in the temporary and then under the target's name, nothing else."""
    path = tmp_path / "predictions.npz"
    write_atomic(path, lambda tmp: np.savez(tmp, hand=np.arange(6.0)))
    with np.load(path) as archive:
        assert archive["hand"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.npz"]


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (:func:`write_atomic`) and fail unless ``path`` then holds it
    whole: the second process of the test below."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
    assert path.read_bytes() == data


def test_two_processes_writing_one_target_each_rename_a_whole_file(tmp_path):
    """Two `hopose predict --out SAME` write photo.json at once: another process writes the
    target whole while this one is half-way through its own. Sharing one temporary, the other
    truncated and renamed this one's half-written file, this one went on writing into the
    renamed target and failed with "No such file or directory"; each has its own now, and each
    renames a whole file, this one's last."""
    path = tmp_path / "photo.json"
    mine, theirs = b"A" * 4096 + b"a" * 4096, b"B" * 100

    def write_around_another(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            handle.write(mine[:4096])
            handle.flush()
            # Spawned, not forked: the parent's threads (torch's) are no part of the child.
            other = multiprocessing.get_context("spawn").Process(
                target=_write_whole, args=(path, theirs)
            )
            other.start()
            other.join()
            assert other.exitcode == 0
            handle.write(mine[4096:])

    write_atomic(path, write_around_another)
    assert path.read_bytes() == mine
    assert [p.name for p in tmp_path.iterdir()] == ["photo.json"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
def test_writes_leave_no_file_descriptor_open(tmp_path):
    """Each sync closes what it opened: a long run writing many files must not run out of file
    descriptors."""
    before = len(os.listdir("/proc/self/fd"))
    for index in range(20):
        write_text(tmp_path / f"{index}.txt", "x")
    assert len(os.listdir("/proc/self/fd")) == before


def test_output_folder_makes_the_folder_or_names_the_file_in_its_way(tmp_path):
    """A command's --out is made a folder (parents too) before its work; a file at that path,
    or at a parent's, is one error naming the path, the file left as it was."""
    assert output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "taken").write_text("keep")
    for path in (tmp_path / "taken", tmp_path / "taken" / "below"):
        with pytest.raises(NotADirectoryError, match="a file is in the way") as caught:
            output_folder(path)
        assert caught.value.filename == str(path)
    assert (tmp_path / "taken").read_text() == "keep"


def test_json_mismatch_names_the_first_field_of_another_type_its_value_cut_to_40():
    """JSON's true is no whole number; a field the record lacks is not checked; a long value
    is shown by its first 37 characters and "..." (40 in all)."""
    whole = JsonType("a whole number", is_whole_number)
    types = {"missing": whole, "n": whole, "flag": whole, "text": whole}
    assert json_mismatch({"n": 3}, types) is None
    assert json_mismatch({"n": 3, "flag": True}, types) == "flag is true, not a whole number"
    long = json_mismatch({"text": "x" * 50}, types)
    assert long == 'text is "' + "x" * 36 + "..., not a whole number"
    assert len(long.split(" is ")[1].split(", not")[0]) == 40


def test_a_torch_file_is_read_onto_the_cpu_and_anything_else_is_one_line(tmp_path):
    """What torch.save wrote comes back; a text file, a zip archive torch did not write and a
    pickled object weights_only refuses are each one line naming the file, without torch's
    advice to load it with weights_only=False (unsafe, and wrong for a file that is not
    weights)."""
    weights = tmp_path / "w.pt"
    torch.save({"conv1.weight": torch.arange(3.0)}, weights)
    assert torch.equal(read_torch_file(weights, "state dict")["conv1.weight"], torch.arange(3.0))
    (tmp_path / "config.yaml").write_text("stage: encoder\n")
    with zipfile.ZipFile(tmp_path / "foreign.zip", "w") as archive:
        archive.writestr("notes.txt", "not tensors")
    torch.save(argparse.Namespace(lr=0.1), tmp_path / "object.pt")
    reasons = {
        "config.yaml": "not the zip archive torch.save writes",
        "foreign.zip": "",  # torch's own reason, which its versions word differently
        "object.pt": "",
    }
    for name, reason in reasons.items():
        with pytest.raises(ValueError) as caught:
            read_torch_file(tmp_path / name, "state dict")
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / name}: not a readable state dict ({reason}")
        assert "\n" not in message and "weights_only=False" not in message
    with pytest.raises(FileNotFoundError, match=r"^state dict not found: "):
        read_torch_file(tmp_path / "missing.pt", "state dict")


def test_text_files_are_utf8_whatever_the_locales_encoding(tmp_path):
    """Under an ASCII locale (LC_ALL=C without Python's UTF-8 mode; a Latin-1 one alike) the
    reports' "–", "≤" and "±" failed hopose eval after its predictions were written, and a
    per_frame.csv of non-ASCII ids was written in the locale's encoding and read as UTF-8."""
    script = """
import sys
from pathlib import Path
import numpy as np
from hopose.files import write_text
from hopose.report import read_per_frame_csv, write_per_frame_csv
from hopose.run_folder import append_csv

folder = Path(sys.argv[1])
write_text(folder / "report.md", "27.3 ± 0.9 – ≤ 3%")
columns = {"id": np.array(["café"])}
for name in ("hand_mm", "object_mm", "hand_rr_mm", "hand_pa_mm", "object_2d_px"):
    columns[name] = np.array([1.5])
write_per_frame_csv(folder / "per_frame.csv", columns)
print(read_per_frame_csv(folder / "per_frame.csv")["id"][0] == "café")
append_csv(folder / "metrics.csv", {"epoch": 1, "loss": 0.5})
append_csv(folder / "metrics.csv", {"epoch": 2, "loss": 0.25})
"""
    environment = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"}
    # A file, not -c: under the ASCII locale the command line cannot hold the characters.
    (tmp_path / "write.py").write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "write.py"), str(tmp_path)],
        env=environment, capture_output=True, text=True, encoding="utf-8", check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True\n"
    assert (tmp_path / "report.md").read_bytes() == "27.3 ± 0.9 – ≤ 3%".encode()
    assert "café".encode() in (tmp_path / "per_frame.csv").read_bytes()
    assert (tmp_path / "metrics.csv").read_text(encoding="utf-8").splitlines() == [
        "epoch,loss", "1,0.5", "2,0.25"
    ]  # fmt: skip
