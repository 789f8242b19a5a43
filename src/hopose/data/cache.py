"""A preprocessed, memory-mapped copy of a dataset split, written once and read fast.

Layout of a cache folder::

    build.json            what is being built (sample count, image size, chunking, source info
                          and the raw data's folder)
    images.npy            (N, S, S, 3) uint8, memory-mapped by readers
    maps/<key>.npy        (N, S, S) uint8 for each optional map the records carry (the
                          synthetic ``segmentation``), memory-mapped likewise
    arrays/<key>.npy      (N, ...) float32 for each array key of the record (K, hand_3d, ...;
                          docs/conventions.md §6)
    chunks/<c>.json       written atomically once chunk c (samples c*chunk .. ) is on disk
    strings.json          side, object, id and any extra string keys, one list per key
    valid.npy             (N,) bool, False for samples skipped with ``on_error="skip"``
    meta.json             written last, atomically: its presence marks a complete cache
    cache.lock            held (an flock) by the build writing the folder: a second build
                          into it is refused while the first runs (hopose.files.folder_lock)

Resuming: ``images.npy`` and the arrays are pre-allocated (sparse); a chunk counts as done only
when its ``chunks/<c>.json`` exists, and that file is renamed into place after the chunk's pixels
and annotations were written and synced to the disk. An interrupted build (a crash, Ctrl-C, a
bad file, a full disk) therefore restarts at the first chunk without a json and never trusts a
half-written one.

Rebuilding: a finished cache that :class:`CacheDataset` refuses (:func:`refusal`: a version it
does not know, or an older one whose images or ObMan camera changed since), or an unfinished
build of an older :data:`CACHE_VERSION`, is written again from its first sample by a rerun of
the same ``hopose prepare``; an older finished cache the reader takes as it is is returned as
it is. Its ``meta.json`` goes first, so that from then on the folder reads as an unfinished
build, then its other files; nothing of the old version is resumed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hopose.data.ho3d import WITHHELD, hand_labelled
from hopose.data.sample import (
    ARRAY_KEYS,
    ARRAY_SHAPES,
    OPTIONAL_MAP_KEYS,
    SAMPLE_KEYS,
    STRING_KEYS,
    check_sample,
)
from hopose.data.transforms import (
    DEFAULT_CROP,
    DEFAULT_IMAGE_SIZE,
    DEFAULT_ON_ERROR,
    DataFileError,
    FrameDataset,
    check_on_error,
    without_image_hint,
    wrap_index,
)
from hopose.data.workers import ExitWithParent, as_collected
from hopose.files import (
    JsonType,
    folder_lock,
    is_whole_number,
    json_mismatch,
    output_folder,
    recorded_path,
    write_atomic,
    write_error,
    write_text,
)

log = logging.getLogger(__name__)

CACHE_VERSION = 5
# Versions 1 and 2 are read but for a real dataset's images: they were resampled by filters that
# self-cropping's and predict's views (hopose.crop.FrameWarp) do not use (version 1's square
# crops by an antialiased bilinear shrink, version 2's whole frames and crops of fixed squares by
# Pillow's bilinear resize; docs/from_pixels.md, "Block means when a view shrinks the photo").
# Their poses, and synthetic renders, are unchanged.
OLD_FILTER_VERSIONS: tuple[int, ...] = (1, 2)
# Versions 1 to 3 hold ObMan's K with the principal point of the renderer's pixel-edge
# coordinates, half a pixel off its images (hopose.data.obman.OBMAN_K): an ObMan cache of them is
# refused, its poses too (the lifter's rays read K). Other datasets' version-3 caches hold.
OLD_OBMAN_K_VERSIONS: tuple[int, ...] = (1, 2, 3)
# Versions 1 to 4 of the synthetic dataset hold the poses of the grasp generator before
# 2026-12-06, which tested each bone at 3 points and let the thumb cross a finger
# (docs/synthetic.md, "Bones through edges, thumbs through fingers"): not the samples its seed
# makes now, so such a cache is refused, its poses too. Real datasets' version-4 caches hold.
OLD_SYNTHETIC_POSE_VERSIONS: tuple[int, ...] = (1, 2, 3, 4)

# The names in a cache folder (the module docstring's layout), those of every version: a cache
# written before is read under them.
META_FILE = "meta.json"
BUILD_FILE = "build.json"
IMAGES_FILE = "images.npy"
ARRAYS_FOLDER = "arrays"
MAPS_FOLDER = "maps"
CHUNKS_FOLDER = "chunks"
STRINGS_FILE = "strings.json"
VALID_FILE = "valid.npy"
# Everything a build writes, in the order :func:`_remove_build` removes it: meta.json first, so
# that the folder reads as an unfinished build from then on, and build.json last, so that no
# chunk of it counts as done once build.json is gone.
BUILD_FILES: tuple[str, ...] = (
    META_FILE,
    CHUNKS_FOLDER,
    MAPS_FOLDER,
    ARRAYS_FOLDER,
    IMAGES_FILE,
    STRINGS_FILE,
    VALID_FILE,
    BUILD_FILE,
)
# Held (flock) by the build writing to the folder (write_cache): never one of BUILD_FILES, which
# a rebuild removes while holding it.
LOCK_FILE = "cache.lock"
# Samples per atomically committed chunk by default (write_cache's ``chunk_size``).
DEFAULT_CHUNK_SIZE = 256


def refusal(version: Any, info: Mapping[str, Any], *, with_images: bool) -> str | None:
    """Why a finished cache of ``version`` holding ``info``'s dataset is not read as it is (None:
    it is); :class:`CacheDataset` refuses it and a rerun of its build rebuilds it."""
    if type(version) is not int or not 1 <= version <= CACHE_VERSION:  # JSON's true is no 1
        return f"cache version {version} unknown"
    if version in OLD_OBMAN_K_VERSIONS and info.get("name") == "obman":
        return f"ObMan's principal point half a pixel off its images (cache version {version})"
    if version in OLD_SYNTHETIC_POSE_VERSIONS and info.get("name") == "synthetic":
        return (
            "synthetic poses of the grasp generator before 2026-12-06, not those its seed "
            f"makes now (cache version {version})"
        )
    if version in OLD_FILTER_VERSIONS and with_images and info.get("name") != "synthetic":
        return (
            "images resampled by a former filter, not the block means and bilinear sampling of "
            f"self-cropping's views (cache version {version})"
        )
    return None


def _write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` whole or not at all (:func:`hopose.files.write_text`)."""
    write_text(path, json.dumps(payload, indent=1))


def _strings(value: Any) -> bool:
    """Whether ``value`` is a JSON list of strings."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


_INTEGER = JsonType("an integer", is_whole_number)  # JSON's true is no count
_OBJECT = JsonType("an object", lambda value: isinstance(value, dict))
_STRINGS = JsonType("a list of strings", _strings)
_FLAGS = JsonType(
    "a list of true and false",
    lambda value: isinstance(value, list) and all(type(item) is bool for item in value),
)
_STRING_LISTS = JsonType(
    "an object of lists of strings",
    lambda value: isinstance(value, dict) and all(map(_strings, value.values())),
)
# The fields of a cache's JSON files (meta.json, build.json, chunks/<c>.json) that are read, and
# what each must hold, so that a damaged file is refused naming the field rather than failing
# where the value is used. ``version`` may hold anything: :func:`refusal` names one it does not
# know; ``root`` is only compared.
_FIELD_TYPES: dict[str, JsonType] = {
    "num_samples": _INTEGER,
    "chunk_size": _INTEGER,
    "image_size": _INTEGER,
    "skipped": _INTEGER,
    "left_out": _INTEGER,
    "info": _OBJECT,
    "string_keys": _STRINGS,
    "map_keys": _STRINGS,
    "errors": _STRINGS,
    "strings": _STRING_LISTS,
    "valid": _FLAGS,
}


def _read_json(
    path: Path, keys: Iterable[str] = (), types: Mapping[str, JsonType] = _FIELD_TYPES
) -> dict[str, Any]:
    """The JSON object in ``path``, one of a cache's own files, holding ``keys``, and in each
    field of ``types`` it holds a value of that type.

    Raises:
        DataFileError: naming ``path`` when it is not JSON or not an object holding ``keys``
            (a damaged file, or a foreign folder given as a cache), or naming the field
            holding a value of another type.
    """
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
        raise DataFileError(f"{path}: not a hopose cache file ({error})") from error
    missing = [k for k in keys if k not in payload] if isinstance(payload, dict) else list(keys)
    if not isinstance(payload, dict) or missing:
        raise DataFileError(
            f"{path}: not a hopose cache file (no {', '.join(missing) or 'object'})"
        )
    mismatch = json_mismatch(payload, types)
    if mismatch is not None:
        raise DataFileError(f"{path}: damaged cache file, {mismatch}")
    return payload


def as_recorded(value: Any) -> Any:
    """``value`` as a cache's JSON files (build.json, meta.json's ``info``) hold it, so that the
    two compare equal: a tuple, such as ``focal_scale=(0.8, 1.2)``, is a list there, at any
    depth."""
    if isinstance(value, Mapping):
        return {key: as_recorded(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [as_recorded(item) for item in value]
    return value


def _load_npy(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """``np.load`` of one of a cache's arrays; a truncated or foreign file is a
    :class:`DataFileError` naming it (numpy's own messages name no file)."""
    try:
        return np.load(path, mmap_mode=mmap_mode)
    except (ValueError, EOFError) as error:
        raise DataFileError(f"{path}: not a readable .npy array ({error})") from error


class _Chunks(Dataset):
    """Item c is chunk c of a dataset: ``(c, records, errors)``, bad samples caught if skipping."""

    def __init__(self, dataset: Sequence, chunks: list[int], chunk_size: int, skip: bool):
        self.dataset, self.chunks, self.chunk_size, self.skip = dataset, chunks, chunk_size, skip

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, item: int) -> tuple[int, list[dict | None], list[str]]:
        chunk = self.chunks[item]
        start = chunk * self.chunk_size
        stop = min(start + self.chunk_size, len(self.dataset))
        records: list[dict | None] = []
        errors: list[str] = []
        for index in range(start, stop):
            record = _checked_record(self.dataset, index, self.skip)
            if isinstance(record, ValueError):
                records.append(None)
                # Skipping is already what the image's hint would advise: not in each line.
                errors.append(f"sample {index}: {without_image_hint(str(record))}")
            else:
                records.append(record)
        return chunk, records, errors


def _checked_record(dataset: Sequence, index: int, skip: bool) -> dict | ValueError:
    """Record ``index`` of ``dataset``, checked against docs/conventions.md §6; when skipping
    bad records, the error of one that cannot be read or breaks the layout (raised otherwise:
    a DataFileError or check_sample's ValueError)."""
    try:
        record = dataset[index]
        check_sample(record, f"sample {index}")
    except ValueError as error:
        if not skip:
            raise
        return error
    return record


def _string_keys(record: Mapping[str, Any]) -> list[str]:
    """The record's string keys (docs/conventions.md §6) plus any extra string-valued keys (e.g. a
    synthetic ``grasp``)."""
    extra = sorted(k for k, v in record.items() if k not in SAMPLE_KEYS and isinstance(v, str))
    return [*STRING_KEYS, *extra]


def _shaped(
    record: Mapping[str, Any], key: str, shape: tuple[int, ...], label: str | None = None
) -> np.ndarray:
    """``record[key]`` as an array of ``shape``, the cache's layout; another shape is refused
    naming the record, not broadcast into the cache."""
    value = np.asarray(record[key])
    if value.shape != shape:
        raise ValueError(
            f"{record['id']}: {label or key} is {value.shape}, the cache holds {shape}"
        )
    return value


def write_cache(
    dataset: Sequence,
    out_dir: str | Path,
    *,
    progress: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int = 0,
    on_error: str = DEFAULT_ON_ERROR,
    info: Mapping[str, Any] | None = None,
    root: str | Path | None = None,
    left_out: Sequence[str] = (),
) -> Path:
    """Convert an index-addressable dataset of docs/conventions.md §6 records into a cache folder.

    Args:
        dataset: ``len()`` and ``[i]`` giving records whose images all have one square size.
        out_dir: cache folder; an unfinished build found there is resumed.
        progress: show a tqdm bar (samples).
        chunk_size: samples per atomically committed chunk.
        workers: processes decoding chunks in parallel (a torch DataLoader); 0 = in-process.
        on_error: "raise" stops at the first bad sample (the build stays resumable); "skip"
            marks it invalid, logs a warning and counts it in ``meta.json``.
        info: JSON-able description of the source (dataset, split, protocol...), stored in
            ``meta.json`` and checked on resume, as JSON reads it back (a tuple as a list).
        root: the folder the records are read from (None for generated data), recorded resolved
            in build.json and meta.json beside ``info``.
        left_out: what the dataset's loader left out of the split while indexing
            (:attr:`hopose.data.transforms.FrameDataset.left_out`: the folders it found missing,
            the ``"file: reason"`` of annotations it skipped), whose frames are not among the
            samples: counted in ``meta.json`` (``left_out``, the first 100 in
            ``left_out_errors``), so that a reader of the cache knows it is not the whole split
            (:func:`hopose.data.splits.whole_split`).

    Returns:
        The cache folder: a finished one of the same samples, ``info`` and ``root`` as it is;
        one of an older :data:`CACHE_VERSION` rebuilt (the module docstring).

    Raises:
        ValueError: naming ``out_dir`` when it holds a cache or an unfinished build of other
            samples, ``info`` or ``root`` (one recorded before caches named their root is not
            checked for it), or naming it and :data:`LOCK_FILE` when another build is writing
            there (:func:`hopose.files.folder_lock`; the same build submitted twice too), before
            anything in it is read or written.
    """
    check_on_error(on_error)
    if chunk_size < 1:
        raise ValueError(f"chunk_size: must be >= 1, got {chunk_size}")
    if workers < 0:
        raise ValueError(f"workers: must be >= 0, got {workers}")
    out = Path(out_dir)
    info = as_recorded(dict(info or {}))
    source = recorded_path(root)
    num_samples = len(dataset)
    if num_samples == 0:
        raise ValueError(f"{out}: the dataset to cache is empty")
    # One build at a time, from what is finished to meta.json: two would each write every
    # chunk, the records of both under one meta.json (a split's under another's name).
    with folder_lock(output_folder(out), LOCK_FILE, "another cache build"):
        if _keeps_finished(out, num_samples, info, source):
            return out
        build = _open_build(
            dataset, out, num_samples, chunk_size, info, source, skip=on_error == "skip"
        )
        _write_chunks(dataset, out, build, workers, skip=on_error == "skip", progress=progress)
        return _finish(out, build, source, left_out)


def _write_chunks(
    dataset: Sequence, out: Path, build: Mapping[str, Any], workers: int, skip: bool, progress: bool
) -> None:
    """Write the chunks of ``build`` (its build.json) that ``out`` lacks, each one's rows, then
    its ``chunks/<c>.json``, so that a rerun resumes at the first chunk without one."""
    num_samples, chunk_size = build["num_samples"], build["chunk_size"]
    size, map_keys = build["image_size"], build.get("map_keys", [])
    layout = _layout(out, size, map_keys)
    pending = [c for c in range(_num_chunks(build)) if not _chunk_path(out, c).is_file()]
    done = num_samples - sum(min(chunk_size, num_samples - c * chunk_size) for c in pending)
    loader = DataLoader(
        _Chunks(dataset, pending, chunk_size, skip=skip),
        batch_size=None,
        num_workers=workers,
        collate_fn=as_collected,
        worker_init_fn=ExitWithParent(),
    )
    bar = tqdm(total=num_samples, initial=done, unit="sample", disable=None if progress else True)
    # A chunk's rows of each file, filled anew for every chunk.
    count = min(chunk_size, num_samples)
    rows = {path: np.zeros((count, *shape), dtype) for path, (dtype, shape) in layout.items()}
    images = rows[out / IMAGES_FILE]
    arrays = {key: rows[_array_path(out, key)] for key in ARRAY_KEYS}
    maps = {key: rows[_map_path(out, key)] for key in map_keys}
    with contextlib.ExitStack() as opened:
        files = [
            opened.enter_context(_RowFile(path, num_samples, dtype, shape))
            for path, (dtype, shape) in layout.items()
        ]
        for chunk, records, errors in loader:
            strings: dict[str, list[str]] = {key: [] for key in build["string_keys"]}
            valid = []
            for row, record in enumerate(records):
                valid.append(record is not None)
                if record is not None:
                    _store(record, row, images, arrays, maps, size)
                else:  # a skipped sample's rows are zeros
                    for values in rows.values():
                        values[row] = 0
                for key in strings:
                    strings[key].append("" if record is None else str(record.get(key, "")))
            for message in errors:
                log.warning("skipped %s", message)
            for file in files:
                file.write(chunk * chunk_size, rows[file.path][: len(records)])
            _write_json_atomic(
                _chunk_path(out, chunk), {"strings": strings, "valid": valid, "errors": errors}
            )
            bar.update(len(records))
    bar.close()


class _RowFile:
    """One of a build's (N, ...) .npy files (:func:`_layout`), written a chunk of rows at a time
    through the file, at the rows' place after the .npy header.

    Not through a memory map: the files are sparse, and on a full disk a store into a mapped page
    that gets no block is a SIGBUS, which kills the process ("Bus error", no file named). A
    ``write()`` fails with ENOSPC instead, raised here naming the file, at the chunk that failed;
    the rerun resumes there. Reserving the space up front (``posix_fallocate``) would raise it
    before any work, but exists on Linux alone, is emulated by glibc where the file system lacks
    it (NFS) by writing to every block of what is some 27 GB for ObMan, and guarantees nothing on
    copy-on-write file systems (btrfs, ZFS), whose later writes can fail all the same. Readers
    (:class:`CacheDataset`) map the files into memory as before.

    Raises:
        DataFileError: naming ``path`` when it holds no ``num_samples`` rows of ``shape`` and
            ``dtype``, those of build.json, whose rows would be written at the wrong places.
    """

    def __init__(
        self, path: Path, num_samples: int, dtype: type[np.generic], shape: tuple[int, ...]
    ):
        header = _load_npy(path, mmap_mode="r")  # a memory map reads no rows
        _check_layout(path, header, num_samples, dtype, shape, BUILD_FILE)
        self.path = path
        self.offset = header.offset  # of row 0: the header's length
        self.row_bytes = np.dtype(dtype).itemsize * math.prod(shape)
        self.fd = os.open(path, os.O_WRONLY)

    def write(self, first: int, rows: np.ndarray) -> None:
        """Write ``rows`` (R, ...) as rows ``first`` to ``first + R - 1`` and sync them to the
        disk, as the chunk's json, written next, says they are.

        Raises:
            OSError: of the original kind (ENOSPC, EIO), naming the file.
        """
        data = memoryview(np.ascontiguousarray(rows)).cast("B")
        position = self.offset + first * self.row_bytes
        try:
            while data:  # a short write (the disk full half-way) raises at the next one
                written = os.pwrite(self.fd, data, position)
                data, position = data[written:], position + written
            # The data alone, as a memory map's flush (msync) syncs it; macOS has no fdatasync.
            getattr(os, "fdatasync", os.fsync)(self.fd)
        except OSError as error:
            raise write_error(error, self.path) from error

    def __enter__(self) -> _RowFile:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _keeps_finished(out: Path, num_samples: int, info: dict, root: str | None) -> bool:
    """Whether ``out`` holds a finished cache of these samples, ``info`` and ``root`` that is
    kept as it is; one that :func:`refusal` refuses is removed, to be built again.

    Raises:
        ValueError: naming ``out`` when its finished cache is of other samples, ``info`` or
            ``root``.
    """
    if not (out / META_FILE).is_file():
        return False
    meta = _read_json(out / META_FILE, ("num_samples", "info"))
    asked = {"num_samples": num_samples, "info": info}
    held = {key: meta[key] for key in asked}
    if held != asked:
        raise ValueError(
            f"{out}: holds a finished cache of {_differences(held, asked)}; remove the "
            "folder or choose another"
        )
    _check_root(out, meta, root)
    refused = refusal(meta.get("version"), info, with_images=True)
    if refused is None:
        return True
    log.warning("%s: %s, rebuilt as version %d", out, refused, CACHE_VERSION)
    _remove_build(out)
    return False


def _num_chunks(build: Mapping[str, Any]) -> int:
    """How many chunks ``build`` (build.json) is written in, the last one perhaps partial."""
    return -(-build["num_samples"] // build["chunk_size"])


def _chunk_path(out: Path, chunk: int) -> Path:
    """The file whose presence marks ``chunk`` as written (the module docstring)."""
    return out / CHUNKS_FOLDER / f"{chunk:06d}.json"


def _array_path(out: Path, key: str) -> Path:
    """The (N, ...) float32 array of the records' ``key`` (the module docstring)."""
    return out / ARRAYS_FOLDER / f"{key}.npy"


def _map_path(out: Path, key: str) -> Path:
    """The (N, S, S) uint8 map ``key`` of the records (the module docstring)."""
    return out / MAPS_FOLDER / f"{key}.npy"


def _layout(
    out: Path, image_size: int, map_keys: Iterable[str]
) -> dict[Path, tuple[type[np.generic], tuple[int, ...]]]:
    """The dtype and per-sample shape of each memory-mapped file of a cache of ``image_size`` px
    images holding ``map_keys`` (the module docstring's layout)."""
    layout = {out / IMAGES_FILE: (np.uint8, (image_size, image_size, 3))}
    layout |= {_array_path(out, key): (np.float32, ARRAY_SHAPES[key]) for key in ARRAY_KEYS}
    layout |= {_map_path(out, key): (np.uint8, (image_size, image_size)) for key in map_keys}
    return layout


def _check_layout(
    path: Path,
    array: np.ndarray,
    num_samples: int,
    dtype: type[np.generic],
    shape: tuple[int, ...],
    described_by: str = META_FILE,
) -> np.ndarray:
    """``array``, read from ``path``, if it holds ``num_samples`` values of ``shape`` and
    ``dtype``, as the cache's ``described_by`` (its meta.json, a build's build.json) says it
    does.

    Raises:
        DataFileError: naming ``path``, what it holds and what was expected. A file replaced
            after the build (other images, another size, another dtype, cut short) would
            otherwise be read as it is (16 px images under a meta.json of 32 px, float pixels,
            an int valid.npy taken as flags) or fail at some index, far from here.
    """
    expected = (num_samples, *shape)
    if array.dtype != dtype or array.shape != expected:
        raise DataFileError(
            f"{path}: damaged cache file, an array of {array.shape} {array.dtype}, not the "
            f"{expected} {np.dtype(dtype)} its {described_by} describes"
        )
    return array


def _store(
    record: Mapping[str, Any],
    row: int,
    images: np.ndarray,
    arrays: Mapping[str, np.ndarray],
    maps: Mapping[str, np.ndarray],
    size: int,
) -> None:
    """Write one record's image, arrays and maps at ``row`` of its chunk's rows, each checked
    against the cache's shapes."""
    images[row] = _shaped(record, "image", (size, size, 3))
    for key in ARRAY_KEYS:
        arrays[key][row] = np.asarray(record[key], dtype=np.float32)
    for key, values in maps.items():
        if key not in record:
            raise ValueError(f"{record['id']}: no '{key}', which the cache holds")
        values[row] = _shaped(record, key, (size, size), f"'{key}'")


def _first_good_record(dataset: Sequence, skip: bool) -> dict:
    """The first record that loads (only record 0 unless skipping bad ones): its image size and
    string keys define the cache's layout."""
    last_error: ValueError | None = None
    for index in range(len(dataset)):
        record = _checked_record(dataset, index, skip)
        if not isinstance(record, ValueError):
            return record
        last_error = record
    raise ValueError(f"no sample could be read, the last error: {last_error}") from last_error


def _differences(held: Mapping[str, Any], asked: Mapping[str, Any]) -> str:
    """The fields on which what a cache folder records (``held``) and what this run asks differ,
    ``info``'s compared one by one: "num_samples=8 and image_size=32, this run asks
    num_samples=6 and image_size=48" ("no seed" where one side records none)."""
    held, asked = _flat_record(held), _flat_record(asked)
    missing = object()
    differing = [key for key in held | asked if held.get(key, missing) != asked.get(key, missing)]

    def listed(record: dict[str, Any]) -> str:
        return " and ".join(
            f"{key}={record[key]!r}" if key in record else f"no {key}" for key in differing
        )

    return f"{listed(held)}, this run asks {listed(asked)}"


def _flat_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with the fields of its ``info`` mapping beside its own."""
    info = record.get("info")
    if not isinstance(info, dict):
        return dict(record)
    return {key: value for key, value in record.items() if key != "info"} | info


def _check_root(out: Path, recorded: Mapping[str, Any], root: str | None) -> None:
    """Refuse to keep or resume what ``out`` holds when it was read from another folder than
    ``root``: its samples would be the other folder's, or a mix of both. A cache recorded before
    caches named their root (no ``root`` key) cannot be told apart and is not refused."""
    if "root" in recorded and recorded["root"] != root:
        raise ValueError(
            f"{out}: holds a cache of root {recorded['root']}, this run reads root {root}; "
            "remove the folder or choose another"
        )


def _remove_build(out: Path) -> None:
    """Remove an earlier build's files (:data:`BUILD_FILES`, in its order) from ``out``, and
    nothing else there: not :data:`LOCK_FILE`, held while they are removed. Interrupted, the
    folder is an unfinished build of the old version, which the next run starts over again."""
    for name in BUILD_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)  # an error must stop here, not leave old chunks counted
        else:
            path.unlink(missing_ok=True)


def _open_build(
    dataset: Sequence,
    out: Path,
    num_samples: int,
    chunk_size: int,
    info: dict,
    root: str | None,
    skip: bool,
) -> dict[str, Any]:
    """Start a build (allocate the arrays, write build.json) or check the unfinished one; an
    unfinished one of an older :data:`CACHE_VERSION` is started over."""
    build_path = out / BUILD_FILE
    if build_path.is_file():
        build = _read_json(build_path, ("image_size", "string_keys"))
        expected = {"num_samples": num_samples, "chunk_size": chunk_size, "info": info}
        found = {key: build[key] for key in expected if key in build}
        if found != expected:
            raise ValueError(
                f"{out}: holds an unfinished build of {_differences(found, expected)}; remove "
                "the folder or rerun with the same dataset and options"
            )
        _check_root(out, build, root)
        if build.get("version") == CACHE_VERSION:
            return build
        log.warning(
            "%s: an unfinished build of version %s, started over", out, build.get("version")
        )
        # Its chunks, above all, must not count as this build's.
        _remove_build(out)
    first = _first_good_record(dataset, skip)
    height, width, _ = np.asarray(first["image"]).shape
    if height != width:
        raise ValueError(f"{first['id']}: cached images must be square, got {height}x{width}")
    map_keys = [key for key in OPTIONAL_MAP_KEYS if key in first]
    for path, (dtype, shape) in _layout(out, height, map_keys).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Sparse: the header alone takes room, each chunk's rows once written (_RowFile).
            np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(num_samples, *shape))
        except OSError as error:  # the header's write() names no file
            raise write_error(error, path) from error
    (out / CHUNKS_FOLDER).mkdir(exist_ok=True)
    build = {
        "version": CACHE_VERSION,
        "num_samples": num_samples,
        "chunk_size": chunk_size,
        "image_size": height,
        "string_keys": _string_keys(first),
        "map_keys": map_keys,
        "info": info,
        "root": root,
    }
    _write_json_atomic(build_path, build)
    return build


def _finish(out: Path, build: Mapping[str, Any], root: str | None, left_out: Sequence[str]) -> Path:
    """Gather the chunk files of ``build`` into strings.json and valid.npy, then commit
    meta.json."""
    strings: dict[str, list[str]] = {key: [] for key in build["string_keys"]}
    valid: list[bool] = []
    errors: list[str] = []
    for chunk in range(_num_chunks(build)):
        part = _read_json(_chunk_path(out, chunk), ("strings", "valid", "errors"))
        for key in strings:
            strings[key].extend(part["strings"][key])
        valid.extend(part["valid"])
        errors.extend(part["errors"])
    _write_json_atomic(out / STRINGS_FILE, strings)
    write_atomic(out / VALID_FILE, lambda tmp: np.save(tmp, np.asarray(valid, dtype=bool)))
    if errors:
        log.warning("%s: %d of %d samples skipped", out, len(errors), len(valid))
    meta = {
        "version": CACHE_VERSION,
        "num_samples": len(valid),
        "num_valid": int(sum(valid)),
        "image_size": build["image_size"],
        "string_keys": build["string_keys"],
        "map_keys": build.get("map_keys", []),
        "skipped": len(errors),
        "errors": errors[:100],
        "left_out": len(left_out),
        "left_out_errors": list(left_out[:100]),
        "info": build["info"],
        "root": root,
    }
    _write_json_atomic(out / META_FILE, meta)
    return out


class CacheDataset(Dataset):
    """Records of a finished cache (:func:`write_cache`), skipped samples left out.

    Annotations are held in memory; ``image`` is a read-only view of the memory-mapped
    ``images.npy``, opened lazily in each process (so DataLoader workers share the page cache
    instead of pickling pixels).

    Args:
        root: the cache folder.
        with_images: when False, ``image`` is a (0, 0, 3) placeholder and pixels are never read.
    """

    def __init__(self, root: str | Path, *, with_images: bool = True):
        self.root = Path(root)
        meta_path = self.root / META_FILE
        if not meta_path.is_file():
            raise DataFileError(
                f"{meta_path}: missing, {self.root} is not a finished cache "
                "(rerun the same `hopose prepare` command to resume it)"
            )
        self.meta = _read_json(
            meta_path, ("version", "num_samples", "image_size", "string_keys", "info")
        )
        refused = refusal(self.meta["version"], self.meta["info"], with_images=with_images)
        if refused is not None:
            synthetic = self.meta["info"].get("name") == "synthetic"
            again = "`hopose synth` or `hopose prepare`" if synthetic else "`hopose prepare`"
            raise DataFileError(f"{meta_path}: {refused}; run the same {again} again")
        self.with_images = with_images
        self.map_keys: list[str] = list(self.meta.get("map_keys", []))
        # Every file is checked against meta.json here; the pixels' files by their .npy headers
        # alone (a memory map reads no pixels).
        num_samples = self.meta["num_samples"]
        layout = _layout(self.root, self.image_size, self.map_keys)
        self.arrays: dict[str, np.ndarray] = {}
        for key in ARRAY_KEYS:
            path = _array_path(self.root, key)
            self.arrays[key] = _check_layout(path, _load_npy(path), num_samples, *layout[path])
        if with_images:
            mapped = [self.root / IMAGES_FILE, *(_map_path(self.root, k) for k in self.map_keys)]
            for path in mapped:
                _check_layout(path, _load_npy(path, mmap_mode="r"), num_samples, *layout[path])
        strings_path = self.root / STRINGS_FILE
        string_keys = self.meta["string_keys"]
        self.strings: dict[str, list[str]] = _read_json(
            strings_path, string_keys, dict.fromkeys(string_keys, _STRINGS)
        )
        for key, values in self.strings.items():
            if len(values) != num_samples:
                raise DataFileError(
                    f"{strings_path}: damaged cache file, {key} lists {len(values)} samples, "
                    f"not the {num_samples} its {META_FILE} describes"
                )
        valid_path = self.root / VALID_FILE
        valid = _check_layout(valid_path, _load_npy(valid_path), num_samples, np.bool_, ())
        self.index = np.flatnonzero(valid)
        # Memory-mapped lazily in each process, as the images (None until then).
        self._images: np.ndarray | None = None
        self._maps: dict[str, np.ndarray] | None = None

    @property
    def info(self) -> dict[str, Any]:
        """The source description given to :func:`write_cache`."""
        return self.meta["info"]

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_images"] = state["_maps"] = None  # reopened by each worker, never pickled
        return state

    def __getitem__(self, item: int) -> dict[str, Any]:
        row = int(self.index[wrap_index(item, len(self))])
        maps: dict[str, np.ndarray] = {}
        if self.with_images:
            if self._images is None:
                self._images = _load_npy(self.root / IMAGES_FILE, mmap_mode="r")
                self._maps = {
                    key: _load_npy(_map_path(self.root, key), mmap_mode="r")
                    for key in self.map_keys
                }
            image = self._images[row]
            maps = {key: values[row] for key, values in self._maps.items()}
        else:
            image = np.zeros((0, 0, 3), dtype=np.uint8)
        record: dict[str, Any] = {"image": image, **maps}
        for key, values in self.arrays.items():
            record[key] = values[row]
        for key, values in self.strings.items():
            record[key] = values[row]
        return record


def prepare_cache(
    name: str,
    split: str,
    out_dir: str | Path,
    *,
    root: str | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    crop: str = DEFAULT_CROP,
    num_samples: int | None = None,
    seed: int = 0,
    workers: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_error: str = DEFAULT_ON_ERROR,
    progress: bool = True,
    **options: Any,
) -> Path:
    """``hopose prepare``: cache one split of a dataset, as :func:`hopose.data.build_dataset`
    would read it. The arguments are recorded in ``meta.json`` (``info``), so a config that
    reads the cache can check it holds the dataset, split and image size it asks for; a real
    dataset's ``num_samples`` only where it cut the split short (a cap), and ``root`` beside
    ``info`` (:func:`write_cache`).

    ``on_error="skip"`` skips bad samples while writing and, for a real dataset, the malformed
    annotations its loader finds while indexing (FPHA's truncated lines, for example), which
    the loader then logs; "raise" stops at either.

    Raises:
        ValueError: ``split`` holds no hand labels (:func:`hopose.data.ho3d.hand_labelled`),
            before anything is read or written: a cache holds each record's labels, and they
            are finite (:func:`hopose.data.sample.check_sample`).
    """
    from hopose.data import build_dataset, uncapped

    if not hand_labelled(name, split):
        raise ValueError(
            f"split: {name}'s {split!r} split {WITHHELD}, and a cache holds the hand's labels; "
            f"evaluate it from its images instead (hopose eval CKPT --data {name} --split "
            f"{split}), which writes the upload the server scores "
            '(docs/evaluation.md, "HO-3D\'s server")'
        )
    # How bad input is handled is no part of what the records hold: not recorded in ``info``.
    skipping = {"on_error": on_error} if on_error == "skip" and name != "synthetic" else {}
    dataset = build_dataset(
        name,
        split,
        root=root,
        image_size=image_size,
        crop=crop,
        num_samples=num_samples,
        seed=seed,
        **(skipping | options),
    )
    info = {"name": name, "split": split, "image_size": image_size, "crop": crop, **options}
    source, _ = uncapped(dataset)
    if name == "synthetic":
        info.update(num_samples=num_samples, seed=seed)
    elif source is not dataset:
        # The first num_samples of the split: build_dataset must not serve them as all of it.
        info.update(num_samples=len(dataset))
    # The loader's defaults that define its samples (FPHA protocol, HO-3D version, DexYCB
    # setup) are recorded even when not given, so every cache names them.
    info.update({k: v for k, v in getattr(source, "variant", {}).items() if k not in info})
    return write_cache(
        dataset,
        out_dir,
        progress=progress,
        chunk_size=chunk_size,
        workers=workers,
        on_error=on_error,
        info=info,
        # Generated data are read from no folder: a --root given anyway must not refuse a rerun.
        root=None if name == "synthetic" else root,
        left_out=source.left_out if isinstance(source, FrameDataset) else (),
    )
