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
from typing import Any, Protocol

import numpy as np
import torch

POLL_SECONDS = 0.5
"""How often a worker checks that its parent is still alive."""


def as_collected(item: Any) -> Any:
    """DataLoader collate that passes on what a worker produced as it is: whole chunks or lists
    of records (a module function, so that workers can pickle it)."""
    return item


class ExitWithParent:
    """``worker_init_fn`` that ends a worker when the process that created this object exits.

    Created in the main process (it records that process's id), called in each worker.
    """

    def __init__(self) -> None:
        self.parent = os.getpid()

    def __call__(self, worker_id: int) -> None:
        threading.Thread(target=self._watch, name="exit-with-parent", daemon=True).start()

    def _watch(self) -> None:
        # An orphan is re-parented (to init or a subreaper), so its parent id changes.
        while os.getppid() == self.parent:
            time.sleep(POLL_SECONDS)
        os._exit(1)  # skips the queue's feeder join that keeps a blocked worker alive


class ViewSource(Protocol):
    """A dataset that shows any view of its frames (the synthetic renders, the real loaders),
    as (S, S, 3) uint8 images of side ``image_size``."""

    image_size: int

    def view(self, index: int, affine: np.ndarray) -> np.ndarray: ...


_SOURCE: ViewSource | None = None  # in a FrameViews process: the dataset it renders


def _start_view_process(source: ViewSource) -> None:
    global _SOURCE
    _SOURCE = source
    # The processes split the cores between them; each one's own torch ops (a real frame's
    # warp) on more threads would only compete.
    torch.set_num_threads(1)


def _render_view(task: tuple[int, np.ndarray]) -> np.ndarray:
    return _SOURCE.view(*task)


class FrameViews:
    """Views of a dataset's frames, ``source.view(index, affine)``, rendered in ``workers``
    processes or, with 0, in this one.

    Self-cropping renders each frame anew at every pass and for every test-time view, which is
    most of an evaluation's time from the images (docs/training.md, "Evaluation and
    prediction"); the views of a batch are independent, so processes share them. Rendering is
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
        """(B, S, S, 3) uint8 views, C-contiguous: frame ``indices[b]`` through ``affines[b]``
        (B, 3, 3)."""
        tasks = list(zip(indices, affines, strict=True))
        if self._pool is None:
            images = [self.source.view(index, affine) for index, affine in tasks]
        else:
            # A few chunks per process: few enough messages, small enough to balance the load.
            chunk = max(1, math.ceil(len(tasks) / (4 * self.workers)))
            images = self._pool.map(_render_view, tasks, chunksize=chunk)
        # One memory layout wherever they were made: a real frame's view is a transposed tensor
        # (view_frame), which np.stack would keep, and a pickled one comes back C-contiguous;
        # the network's convolutions round differently in the two layouts (by 1e-5 px).
        return np.stack([np.ascontiguousarray(image) for image in images])
