"""Output files written whole or not at all, with errors that name the file.

A command stopped half-way (a full disk, a kill) must not leave a truncated result that looks
like a finished one. :func:`write_atomic` writes to a hidden temporary file beside the target
(same folder, so the final rename is atomic on POSIX) and renames it over the target only once
the writer has finished. Write errors such as ENOSPC come out of a ``write()`` call without a
file name; they are re-raised as the same kind of :class:`OSError` naming the target.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def temporary_path(path: Path) -> Path:
    """The hidden file :func:`write_atomic` writes first: ``.<stem>.tmp<suffix>`` beside
    ``path``, keeping the suffix because some writers (numpy, PIL) pick the format from it."""
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path``; on any error remove ``tmp``.

    Raises:
        OSError: of the original kind (errno kept), its message naming ``path``.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise OSError(
            error.errno, f"cannot write ({error.strerror or error})", str(path)
        ) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """:func:`write_atomic` for a text file."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


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
