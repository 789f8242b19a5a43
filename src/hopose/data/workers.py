"""Worker processes that never outlive the process that started them: DataLoader workers, and
the processes that render the views of self-cropping (:class:`FrameViews`).

PyTorch's workers watch their parent only between tasks. A worker whose results go through the
queue's pipe as pickles (records of numpy arrays, as :func:`hopose.data.splits.materialize`
and the cache writer collect them) blocks in the queue's feeder thread once the pipe is full;
when the main process is killed with SIGKILL nobody reads the pipe again and the worker waits
forever, an orphan holding its memory (seen in 3 of 3 kills of ``hopose train`` on the
synthetic encoder config). :class:`ExitWithParent`, passed as ``worker_init_fn``, starts a
daemon thread in each worker that ends the worker as soon as its parent is gone, whatever its
main thread is doing.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

POLL_SECONDS = 0.5
"""How often a worker checks that its parent is still alive."""


def as_collected(item: Any) -> Any:
    """DataLoader collate that passes on what a worker produced as it is: whole chunks or lists
    of records (a module function, so that workers can pickle it)."""
    return item


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and, where ``/proc`` tells (Linux), is no zombie
    (a killed process its own parent has not reaped yet has ended all the same)."""
    try:
        os.kill(pid, 0)  # signal 0: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's (the pid reused)
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS), or it ended meanwhile
        return True
    return state != "Z"


class ExitWithParent:
    """``worker_init_fn`` that ends a worker when the process that created this object exits.

    Created in the main process (it records that process's id), called in each worker. The
    worker watches that process itself, not its own parent: under the fork server (Linux's
    default start method from Python 3.14) a worker's parent is the server, and comparing
    parent ids ended every worker at once.
    """

    def __init__(self) -> None:
        self.parent = os.getpid()

    def __call__(self, worker_id: int) -> None:
        threading.Thread(target=self._watch, name="exit-with-parent", daemon=True).start()

    def _watch(self) -> None:
        while process_alive(self.parent):
            time.sleep(POLL_SECONDS)
        os._exit(1)  # skips the queue's feeder join that keeps a blocked worker alive


class ViewSource(Protocol):
    """A dataset that shows any views of its frames (the synthetic renders, the real loaders):
    ``views(index, affines)``, frame ``index`` through maps (V, 3, 3), as (V, S, S, 3) uint8
    images of side ``image_size``."""

    image_size: int

    def views(self, index: int, affines: np.ndarray) -> np.ndarray: ...


_SOURCE: ViewSource | None = None  # in a FrameViews process: the dataset it renders


def _start_view_process(source: ViewSource) -> None:
    global _SOURCE
    _SOURCE = source
    # The processes split the cores between them; each one's own torch ops (a real frame's
    # warp) on more threads would only compete.
    torch.set_num_threads(1)


def _render_views(task: tuple[int, np.ndarray]) -> np.ndarray:
    return _SOURCE.views(*task)


class FrameViews:
    """Views of a dataset's frames, ``source.views(index, affines)``, rendered in ``workers``
    processes or, with 0, in this one.

    Self-cropping renders each frame anew at every pass and for every test-time view, which is
    most of an evaluation's time from the images (docs/training.md, "Evaluation and
    prediction"); the frames of a batch are independent, so processes share them. Rendering is
    deterministic, so the images are the same either way. A context manager: the processes
    start on entry and end on exit; killed, this process leaves none behind (they wait for
    tasks on a pipe whose end it held, and end when it closes). An exception in a process is
    raised here.

    Args:
        source: the dataset that renders the views (pickled to each process where they are not
            forked).
        workers: processes; 0 renders in this process.
    """

    def __init__(self, source: ViewSource, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.source = source
        self.workers = workers
        self._pool: Any = None

    def __enter__(self) -> FrameViews:
        if self.workers:
            self._pool = multiprocessing.get_context().Pool(
                self.workers,
                initializer=_start_view_process,
                initargs=(self.source,),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __call__(self, indices: Sequence[int], affines: np.ndarray) -> np.ndarray:
        """(V, B, S, S, 3) uint8 views, C-contiguous: frame ``indices[b]`` through
        ``affines[v, b]`` (V, B, 3, 3). A frame's V views are made together (a real frame's
        image is decoded once for all of them)."""
        if len(indices) != affines.shape[1]:
            raise ValueError(f"{len(indices)} frames, but maps of {affines.shape[1]}")
        tasks = [(index, affines[:, b]) for b, index in enumerate(indices)]
        if self._pool is None:
            images = [self.source.views(index, maps) for index, maps in tasks]
        else:
            # A few chunks per process: few enough messages, small enough to balance the load.
            chunk = max(1, math.ceil(len(tasks) / (4 * self.workers)))
            images = self._pool.map(_render_views, tasks, chunksize=chunk)
        # One memory layout wherever they were made: a real frame's views are a transposed
        # tensor (view_frames), which np.stack would keep, and pickled ones come back
        # C-contiguous; the network's convolutions round differently in the two layouts (by
        # 1e-5 px).
        return np.stack([np.ascontiguousarray(image) for image in images], axis=1)
