"""Output files written whole or not at all, with errors that name the file.

A command stopped half-way (a full disk, a kill) must not leave a truncated result that looks
like a finished one. :func:`write_atomic` writes to a hidden temporary file beside the target
(same folder, so the final rename is atomic on POSIX) and renames it over the target only once
the writer has finished. The temporary is the writing process's own (:func:`temporary_path`), so
two processes writing one target each rename a whole file, the last one's staying. Write errors
such as ENOSPC come out of a ``write()`` call without a file name; they are re-raised as the
same kind of :class:`OSError` naming the target (:func:`write_error`, which files written in
place use too). :func:`folder_lock` keeps a folder to one writer where its files must be of one
run (a training's, a cache's, an evaluation's).
:func:`recorded_path` is the form in which a record (``metrics.json``, a cache's ``meta.json``)
names the files it was made from; :func:`require_file` refuses an input that is no file,
:func:`read_torch_file` one that is not what ``torch.save`` writes, in one line, and
:func:`json_mismatch` a record's field of another type; :func:`led_by` leads a message with
where the value it judges came from.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch


def temporary_path(path: Path) -> Path:
    """The hidden file :func:`write_atomic` writes first: ``.<stem>.tmp<pid><suffix>`` beside
    ``path``, keeping the suffix last because some writers (numpy, PIL) pick the format from it.

    The process id keeps two processes writing one target (two ``hopose predict --out SAME``)
    out of each other's temporary, where one would rename the other's half-written bytes as
    whole and the other fail. A writer killed outright (SIGKILL, a power cut) leaves its
    temporary, a hidden file hopose never reads, which may be deleted; a later process of the
    same id writing the target reuses it."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)``, sync ``tmp`` to the disk, rename it to ``path`` and sync the folder
    (where the system can open one); on any error remove ``tmp``.

    Raises:
        OSError: of the original kind (errno kept), its message naming ``path``.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        # Data before name: a crash after the rename must not find a renamed empty file.
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        # The rename lives in the folder's entries: synced, it survives a crash too.
        if hasattr(os, "O_DIRECTORY"):
            _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY, optional=True)
    except BaseException as error:
        # Removing tmp can fail as well (EROFS on a read-only file system): that error, naming
        # the hidden file, must not hide why the target could not be written.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise write_error(error, path) from error
        raise
    return path


def write_error(error: OSError, path: str | Path) -> OSError:
    """``error``, raised while writing ``path`` (``write()`` and ``fsync()`` name no file), as
    an :class:`OSError` of the same kind and errno naming ``path``:
    ``[Errno 28] cannot write (No space left on device): '<path>'``."""
    return OSError(error.errno, f"cannot write ({error.strerror or error})", str(path))


def _fsync(path: Path, flags: int, *, optional: bool = False) -> None:
    """Flush ``path`` (opened with ``flags``) to the disk; ``optional`` tolerates a file system
    that cannot sync it (some refuse folders with EINVAL), where the write itself succeeded."""
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError as error:
        if not (optional and error.errno in (errno.EINVAL, errno.ENOTSUP)):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(
    folder: Path, name: str, writer: str, error: type[ValueError] = ValueError
) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` while writing its files; refuse when another process
    holds it, as ``writer`` (the message's words for it: "another training").

    An advisory ``flock`` on ``folder/name`` (made where missing, and left in the folder: deleted
    on release, a third process could lock a new file while a second still holds the old one):
    the system releases it when the process ends, even by SIGKILL, so a crashed writer never
    leaves the folder locked.

    Raises:
        ValueError: of the class ``error``, in one line:
            ``<folder>: <writer> is writing to this folder (it holds <name>); wait for it to
            end or choose another --out``.
    """
    path = folder / name
    handle = path.open("a", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise error(
            f"{folder}: {writer} is writing to this folder (it holds {name}); "
            "wait for it to end or choose another --out"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def output_folder(path: str | Path) -> Path:
    """``path`` made a folder (with its parents) before a command's work, so that a path where
    no folder can be loses no finished work: an evaluation's inference, say.

    Raises:
        NotADirectoryError: ``path`` or one of its parents is a file, naming ``path``.
        OSError: any other reason it cannot be made (permissions), naming ``path``.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(
            errno.ENOTDIR, "a file is in the way of the output folder", str(path)
        ) from None
    except OSError as error:
        raise OSError(
            error.errno, f"cannot make the output folder ({error.strerror or error})", str(path)
        ) from None
    return path


def recorded_path(path: str | Path | None) -> str | None:
    """``path`` as a record names it: absolute, its links resolved (:meth:`pathlib.Path.resolve`),
    so that the record names its inputs wherever it is read from; None stays None."""
    return None if path is None else str(Path(path).resolve())


def write_text(path: str | Path, text: str) -> Path:
    """:func:`write_atomic` for a text file, in UTF-8 whatever the locale's encoding (the reports
    hold "–", "≤" and "±", which ASCII and Latin-1 cannot encode)."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def copy_file(source: str | Path, path: str | Path) -> Path:
    """Copy ``source`` to ``path`` through :func:`write_atomic`.

    Raises:
        FileNotFoundError: ``source`` does not exist, naming it (opened before the target is
            touched, so that the error names the file that is missing).
        OSError: the copy cannot be written, naming ``path``; no partial ``path`` is left.
    """
    with open(source, "rb") as reader:

        def copy(tmp: Path) -> None:
            with tmp.open("wb") as writer:
                shutil.copyfileobj(reader, writer)

        return write_atomic(path, copy)


def led_by(source: str | None, message: str) -> str:
    """``message`` led by ``source`` (the file, field or override the value it judges came
    from; None: the caller says it)."""
    return message if source is None else f"{source}: {message}"


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path, where it is a file: an input hopose reads (a checkpoint, a photo,
    a predictions.npz), ``what`` it is in the error.

    Raises:
        IsADirectoryError: ``<path>: a directory; give the <what> file``.
        FileNotFoundError: ``<what> not found: <path>``, anything else that is no file.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: a directory; give the {what} file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


# torch.load(weights_only=True) wraps what it refused in advice to load with weights_only=False,
# wrong for a file that is not a checkpoint; the reason follows this marker.
_UNPICKLER_REASON = "WeightsUnpickler error:"


def error_line(error: BaseException) -> str:
    """The first line of ``error``'s message, without ``torch.load``'s advice to load a file
    it refused with ``weights_only=False`` (unsafe, and wrong for a file that torch did not
    write); the error's type where it has no message."""
    text = str(error).strip()
    if _UNPICKLER_REASON in text:
        text = text.split(_UNPICKLER_REASON, 1)[1].strip()
        text = text.split(" Please use", 1)[0]  # its how-to-allow advice, for trusted files
    return text.splitlines()[0] if text else type(error).__name__


def read_torch_file(path: str | Path, what: str) -> Any:
    """What ``torch.save`` wrote to ``path`` (tensors, containers, numbers, strings; no other
    object), onto the CPU; ``what`` the file is in the errors.

    Raises:
        FileNotFoundError, IsADirectoryError: ``path`` is not a file (:func:`require_file`).
        ValueError: ``<path>: not a readable <what> (<reason>)``, one line.
    """
    path = require_file(path, what)
    if not zipfile.is_zipfile(path):
        # torch.save writes a zip archive; torch's own reason for another file (a config, a
        # text) is a pickle opcode error that says nothing ("pop from empty list").
        raise ValueError(f"{path}: not a readable {what} (not the zip archive torch.save writes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise ValueError(f"{path}: not a readable {what} ({error_line(error)})") from None


class JsonType(NamedTuple):
    """What a field of a JSON record (a ``metrics.json``, a cache's ``meta.json``) must hold
    where it is read."""

    words: str  # as an error names it
    holds: Callable[[Any], bool]


def is_whole_number(value: Any) -> bool:
    """Whether a JSON value is a whole number: JSON's true and false are none."""
    return isinstance(value, int) and not isinstance(value, bool)


def json_mismatch(record: Mapping[str, Any], types: Mapping[str, JsonType]) -> str | None:
    """``"<field> is <value>, not <words>"`` for the first field of ``types`` that ``record``
    holds with a value of another type (the value as JSON, cut to 40 characters), so that a
    damaged file is refused naming the field rather than failing where the value is used; None
    where every one holds its type. A field the record lacks is not checked."""
    for key, kind in types.items():
        if key in record and not kind.holds(record[key]):
            found = json.dumps(record[key])
            found = found if len(found) <= 40 else f"{found[:37]}..."
            return f"{key} is {found}, not {kind.words}"
    return None
