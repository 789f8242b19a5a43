"""DataLoader workers end with their main process, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# A main process whose two workers collate records of numpy arrays (pickled through the queue's
# pipe, as hopose.train.materialize does) faster than it reads them: after its SIGKILL, the
# workers are blocked writing to a pipe nobody reads. Without worker_init_fn both were still
# there after 5 s (and 18 s), with it they end within a second.
MAIN = textwrap.dedent(
    """
    import time
    import numpy as np
    from torch.utils.data import DataLoader
    from hopose.data.workers import ExitWithParent

    def identity(items):
        return items

    records = [{"image": np.zeros((64, 64, 3), np.uint8)} for _ in range(5000)]
    loader = iter(DataLoader(records, batch_size=64, num_workers=2, collate_fn=identity,
                             worker_init_fn=ExitWithParent()))
    next(loader)
    print(*(worker.pid for worker in loader._workers), flush=True)
    time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_workers_exit_after_their_main_process_is_killed():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    main = subprocess.Popen(
        [sys.executable, "-c", MAIN], stdout=subprocess.PIPE, text=True, env=env
    )
    workers = [int(pid) for pid in main.stdout.readline().split()]
    assert len(workers) == 2
    time.sleep(1.0)  # let the workers fill the pipe
    main.send_signal(signal.SIGKILL)
    main.wait()
    deadline = time.monotonic() + 5.0
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their killed main process"
