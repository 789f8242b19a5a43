"""Object meshes: read with trimesh, reduced to their axis-aligned bounding box
(docs/conventions.md §6).

FPHA, ObMan and DexYCB give an object model and its pose; the 8 canonical corners are the
axis-aligned box of the model's vertices in model coordinates, posed like the model. Only the
vertices matter, so a vertex-only file (a point cloud) and a multi-part scene are read as well
as a triangle mesh. Of an OBJ file with faces, trimesh keeps only the vertices some face uses:
a stray vertex off the surface does not widen the box.

A PLY holding fewer elements than its header declares (a download cut short) is refused: trimesh
reads an ASCII one as far as it goes, and the box of the vertices left is smaller than the
object's. (A binary one of another length than its header's trimesh refuses itself; an OBJ says
no count, so one cut short between lines cannot be told from a whole one.)

trimesh is imported at a dataset's first mesh, not with this module: every command imports it
(through :mod:`hopose.data`), and trimesh's own import swallows a Ctrl-C (below).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import FrameType, ModuleType

import numpy as np

from hopose.data.transforms import DataFileError
from hopose.skeleton import CORNER_SIGNS


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold back a Ctrl-C (SIGINT) arriving inside the block until it ends, then deliver it to
    the handler that was in place (Python's raises KeyboardInterrupt).

    For code that catches ``BaseException``: trimesh wraps its optional imports (networkx,
    scipy, ...) so, and a KeyboardInterrupt raised there is swallowed -- the command runs on --
    and kept in place of the module, raised again by a later use of it. Only the main thread
    receives signals (and may set a handler), so elsewhere the block runs as it is (a dataset's
    read-ahead thread, hopose.data.splits); so it does where a handler set outside Python (no
    Python object, ``None``) could not be put back.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is None
    ):
        yield
        return
    received = False

    def record(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received = True

    previous = signal.signal(signal.SIGINT, record)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


@cache
def _trimesh() -> ModuleType:
    """trimesh, imported on first use with a Ctrl-C held back until its import ends
    (:func:`_sigint_deferred`)."""
    with _sigint_deferred():
        import trimesh
    return trimesh


def _vertex_bounds(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) (3,) of a mesh file's vertices, cached per file version."""
    try:
        stat = path.stat()
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: object mesh not found") from error
    return _read_bounds(path, stat.st_mtime_ns, stat.st_size)


# Unbounded: every mesh a process reads stays cached. ObMan's frames draw on thousands of
# ShapeNet models (about 2.8k), so a bound of a few hundred missed nine reads in ten, each a
# parse of 0.06-0.25 s; an entry (two 3-vectors and its key) is a few hundred bytes.
@cache
def _read_bounds(path: Path, mtime_ns: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a mesh's bounds; ``mtime_ns`` and ``size`` only key the cache (a file rewritten in
    place is read again)."""
    trimesh = _trimesh()
    try:
        loaded = trimesh.load(path, process=False)
        # A scene's parts (meshes and point clouds alike), each posed by its scene transform.
        parts = loaded.dump() if isinstance(loaded, trimesh.Scene) else [loaded]
        vertices = np.concatenate([np.asarray(p.vertices, dtype=np.float64) for p in parts])
    except Exception as error:  # trimesh raises many types for bad files
        raise DataFileError(f"{path}: cannot read mesh ({error})") from error
    if vertices.ndim != 2 or vertices.shape[0] == 0 or not np.isfinite(vertices).all():
        raise DataFileError(f"{path}: mesh has no finite vertices")
    _check_ascii_ply_whole(path)
    return vertices.min(axis=0), vertices.max(axis=0)


def _check_ascii_ply_whole(path: Path) -> None:
    """Refuse an ASCII PLY with fewer element lines than its header declares (the module
    docstring); any other file is left as trimesh read it.

    The header (``ply``, ``format ascii 1.0``, ``element <name> <count>`` lines, ...,
    ``end_header``) is followed by one line per element, those of each ``element`` in header
    order. Blank lines are not counted: trimesh refuses one among an element's rows itself, and
    reads those after the last row as nothing, where they must not make up for missing rows.
    """
    with path.open("rb") as file:
        if file.readline(16).strip() != b"ply":  # bounded: a binary GLB may have no newline
            return
        header = []
        for raw in file:
            tokens = raw.split()
            if tokens == [b"end_header"]:
                break
            header.append(tokens)
        if not any(tokens[:2] == [b"format", b"ascii"] for tokens in header):
            return
        lines = sum(1 for raw in file if not raw.isspace())
    for tokens in header:
        if len(tokens) == 3 and tokens[0] == b"element":
            name, count = tokens[1].decode(errors="replace"), int(tokens[2])
            if lines < count:
                raise DataFileError(
                    f"{path}: cut short, {lines} of the {count} '{name}' elements its header "
                    "declares"
                )
            lines -= count


def bbox_corners(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(8, 3) corners of the box [low, high] in docs/conventions.md §1 order (sign -1 -> low, +1 ->
    high)."""
    signs = np.asarray(CORNER_SIGNS, dtype=np.float64)  # (8, 3)
    return np.where(signs < 0, low, high)


def mesh_bbox_corners(path: str | Path, scale: float = 1.0) -> np.ndarray:
    """(8, 3) float64 canonically ordered corners of a mesh's axis-aligned box, times ``scale``.

    Args:
        path: a PLY/OBJ/... file trimesh can read.
        scale: unit conversion, e.g. 1000 for a model in metres to mm.

    Raises:
        DataFileError: naming the file if it is missing or unreadable.
    """
    low, high = _vertex_bounds(Path(path))
    return bbox_corners(low, high) * scale
