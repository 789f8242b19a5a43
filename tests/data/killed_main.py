"""Worker processes whose main process is killed outright: the tests of every pool hopose starts
(DataLoader's, FrameViews', the grasp hulls') check that none outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from hopose.data.workers import process_alive


def workers_left_after_kill(script: str, *, timeout: float, settle: float = 0.0) -> list[int]:
    """Run the Python ``script``, which prints its two workers' ids on one line, SIGKILL it
    ``settle`` seconds later, and wait up to ``timeout`` seconds for the workers to end; the ids
    of those still running, killed (never left behind, even when the test fails)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    main = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    workers = [int(pid) for pid in main.stdout.readline().split()]
    assert len(workers) == 2
    time.sleep(settle)
    main.send_signal(signal.SIGKILL)
    main.wait()
    deadline = time.monotonic() + timeout
    while any(map(process_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if process_alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left
