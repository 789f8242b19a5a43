"""DataLoader worker processes that never outlive the process that started them.

PyTorch's workers watch their parent only between tasks. A worker whose results go through the
queue's pipe as pickles (records of numpy arrays, as :func:`hopose.train.materialize` and the
cache writer collect them) blocks in the queue's feeder thread once the pipe is full; when the
main process is killed with SIGKILL nobody reads the pipe again and the worker waits forever,
an orphan holding its memory (seen in 3 of 3 kills of ``hopose train`` on the synthetic encoder
config). :class:`ExitWithParent`, passed as ``worker_init_fn``, starts a daemon thread in each
worker that ends the worker as soon as its parent is gone, whatever its main thread is doing.
"""

from __future__ import annotations

import os
import threading
import time

POLL_SECONDS = 0.5
"""How often a worker checks that its parent is still alive."""


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
