"""Worker processes: DataLoader workers and FrameViews' processes end with their main process,
even when it is killed with SIGKILL; FrameViews renders what its source renders."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from killed_main import workers_left_after_kill
from torch.utils.data import DataLoader

from hopose.data.synthetic import SyntheticHandObject
from hopose.data.workers import (
    ExitWithParent,
    FrameViews,
    as_collected,
    process_alive,
)

# A main process whose two workers collate records of numpy arrays (pickled through the queue's
# pipe, as hopose.data.splits.materialize does) faster than it reads them: after its SIGKILL, the
# workers are blocked writing to a pipe nobody reads. Without worker_init_fn both were still
# there after 5 s (and 18 s), with it they end within a second. Under the fork server (Linux's
# default from Python 3.14) a worker's parent is the server: watching the parent id instead of
# the main process ended every worker at its start.
MAIN = textwrap.dedent(
    """
    import multiprocessing
    import time
    import numpy as np
    from torch.utils.data import DataLoader
    from hopose.data.workers import ExitWithParent, as_collected

    multiprocessing.set_start_method({method!r})
    records = [{{"image": np.zeros((64, 64, 3), np.uint8)}} for _ in range(5000)]
    loader = iter(DataLoader(records, batch_size=64, num_workers=2, collate_fn=as_collected,
                             worker_init_fn=ExitWithParent()))
    next(loader)
    print(*(worker.pid for worker in loader._workers), flush=True)
    time.sleep(60)
    """
)

# The same with FrameViews' processes, which wait for tasks from the killed process, forked
# (Linux's default before Python 3.14), spawned (they then hold no copy of the pipe's ends) or
# started by a fork server (Linux's default from Python 3.14; their parent is that server).
VIEWS_MAIN = textwrap.dedent(
    """
    import multiprocessing
    import time
    from hopose.data.synthetic import SyntheticHandObject
    from hopose.data.workers import FrameViews

    multiprocessing.set_start_method({method!r})
    with FrameViews(SyntheticHandObject(4, 0, image_size=32), workers=2):
        print(*(child.pid for child in multiprocessing.active_children()), flush=True)
        time.sleep(60)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(
    "script",
    [
        *(MAIN.format(method=method) for method in ("fork", "forkserver")),
        *(VIEWS_MAIN.format(method=method) for method in ("fork", "spawn", "forkserver")),
    ],
    ids=[
        "dataloader_forked",
        "dataloader_forkserver",
        "frame_views_forked",
        "frame_views_spawned",
        "frame_views_forkserver",
    ],
)
def test_workers_exit_after_their_main_process_is_killed(script):
    # 1 s: let the workers fill the pipe. Spawned processes may still be importing hopose when
    # the main process dies (seconds on a loaded machine); they end when they next read the
    # closed pipe. A blocked worker never does. 60 s: on a 16-core machine running the suite in
    # 14 processes (pytest -n 14) they were still importing after 20 s (8.4 s unloaded there),
    # and ended within 5 s of the kill unloaded.
    left = workers_left_after_kill(script, timeout=60.0, settle=1.0)
    assert not left, f"workers {left} outlived their killed main process"


class _Views:
    """A view source whose view of frame i through A is an image of the numbers i and A[0, 2];
    frame 3 cannot be read. It counts its calls (in this process)."""

    def __init__(self) -> None:
        self.calls = 0

    def views(self, index: int, affines: np.ndarray) -> np.ndarray:
        self.calls += 1
        if index == 3:
            raise FileNotFoundError("frame 3")
        images = np.zeros((len(affines), 2, 2, 3), np.uint8)
        images[:, 0, 0, 0], images[:, 0, 0, 1], images[:, 0, 0, 2] = index, affines[:, 0, 2], 7
        return images


@pytest.mark.parametrize("workers", [0, 2])
def test_frame_views_renders_each_frame_through_its_maps_in_order(workers):
    # 9 frames (more than one chunk a process), 2 views each: view v of b shows frame
    # indices[b] through affines[v, b], whichever process rendered it; a frame's views come
    # from one call of its source.
    indices = [0, 1, 2, 4, 5, 6, 7, 8, 9]
    affines = np.tile(np.eye(3), (2, 9, 1, 1))
    affines[:, :, 0, 2] = np.arange(10, 28).reshape(2, 9)
    source = _Views()
    with FrameViews(source, workers) as render:
        images = render(indices, affines)
        assert images.shape == (2, 9, 2, 2, 3) and images.dtype == np.uint8
        np.testing.assert_array_equal(images[..., 0, 0, 0], [indices, indices])
        np.testing.assert_array_equal(images[..., 0, 0, 1], np.arange(10, 28).reshape(2, 9))
        assert source.calls == (9 if workers == 0 else 0)  # the processes' own copies otherwise
        with pytest.raises(FileNotFoundError, match="frame 3"):  # raised here, from a process
            render([2, 3], affines[:, :2])
        with pytest.raises(ValueError, match="2 frames, but maps of 9"):
            render([0, 1], affines)


def test_frame_views_in_processes_are_the_synthetic_renders_themselves():
    dataset = SyntheticHandObject(6, 0, image_size=32)
    affines = np.repeat(np.diag([0.02, 0.02, 1.0])[None], 6, axis=0)  # 1920 px -> 38 px
    affines[:, :2, 2] = np.arange(6)[:, None] - 3.0
    with FrameViews(dataset, workers=2) as render:
        images = render(range(6), affines[None])[0]
    expected = np.stack([dataset.view(i, a) for i, a in enumerate(affines)])
    np.testing.assert_array_equal(images, expected)
    with pytest.raises(ValueError, match="workers must be >= 0, got -1"):
        FrameViews(dataset, workers=-1)


# FrameViews under the start methods that do not fork: each process gets the dataset pickled
# and imports hopose anew (macOS and Windows spawn; Python 3.14 forkservers on Linux).
START_METHOD_MAIN = textwrap.dedent(
    """
    import multiprocessing
    import sys
    import numpy as np
    from hopose.data.synthetic import SyntheticHandObject
    from hopose.data.workers import FrameViews

    multiprocessing.set_start_method(sys.argv[1])
    dataset = SyntheticHandObject(4, 0, image_size=32)
    affines = np.repeat(np.diag([0.02, 0.02, 1.0])[None], 4, axis=0)
    affines[:, :2, 2] = np.arange(4)[:, None] - 2.0
    with FrameViews(dataset, workers=2) as render:
        images = render(range(4), affines[None])[0]
    expected = np.stack([dataset.view(i, a) for i, a in enumerate(affines)])
    print(images.shape, int(np.abs(images.astype(int) - expected).max()))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_frame_views_render_the_same_views_in_processes_that_are_not_forked(method):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(
        [sys.executable, "-c", START_METHOD_MAIN, method],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["(4,", "32,", "32,", "3)", "0"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_process_alive_tells_a_sleeping_child_from_a_zombie_and_a_reaped_one(tmp_path):
    """A sleeping child runs, even one named "x) Z (y": /proc/PID/stat's state is the field
    after the last ")" of the name, here S, not the "Z" after the first. Killed and not yet
    reaped (a zombie) it has ended, and once reaped (no such pid) too."""
    name = tmp_path / "x) Z (y"
    name.symlink_to(os.path.realpath(sys.executable))
    script = "import time; print(flush=True); time.sleep(30)"
    child = subprocess.Popen([str(name), "-I", "-c", script], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        assert process_alive(child.pid)
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # ended, left unreaped
        assert not process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


def test_process_alive_trusts_the_signal_check_where_proc_cannot_tell(monkeypatch):
    """Without a readable /proc/PID/stat (macOS, or the process ended meanwhile) or with one
    that cannot be parsed, a process that signal 0 finds runs; one that signal 0 may not reach
    (another user's: PermissionError) exists all the same."""
    pid = os.getpid()

    def unreadable(path, *args, **kwargs):
        raise FileNotFoundError(path)

    monkeypatch.setattr(Path, "read_text", unreadable)
    assert process_alive(pid)
    monkeypatch.setattr(Path, "read_text", lambda path, *args, **kwargs: "")
    assert process_alive(pid)

    def refused(pid, signal):
        raise PermissionError(pid)

    monkeypatch.setattr(os, "kill", refused)
    assert process_alive(pid)


def test_workers_that_watch_their_main_process_serve_the_epoch_and_end_by_themselves(
    monkeypatch,
):
    """While the main process lives, ExitWithParent leaves a worker alone: one idle through
    several polls (the main process asleep, state S) still serves the rest of the epoch. At the
    epoch's end the worker exits by itself when the loader tells it to: its watcher is a daemon
    thread, where a non-daemon one would keep the worker alive until the loader gave up joining
    it (a 5 s timeout) and terminated it."""
    poll = 0.01  # set before the fork, which copies it to the worker
    monkeypatch.setattr("hopose.data.workers.POLL_SECONDS", poll)
    terminated = []
    terminate = multiprocessing.process.BaseProcess.terminate

    def spy(process):
        terminated.append(process.pid)
        terminate(process)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "terminate", spy)
    loader = DataLoader(
        range(6), batch_size=1, num_workers=1, collate_fn=as_collected,
        worker_init_fn=ExitWithParent(), multiprocessing_context="fork", prefetch_factor=1,
    )  # fmt: skip
    batches = iter(loader)
    first = next(batches)
    time.sleep(10 * poll)
    rest = list(batches)  # the last 5 batches, then the workers' shutdown
    assert [first, *rest] == [[i] for i in range(6)]
    (worker,) = batches._workers
    assert not worker.is_alive()
    assert terminated == []


class _ThreadViews:
    """A view source whose view of frame i through A shows i, how many threads torch uses where
    it was rendered, and A[0, 2]; returned transposed, as a real frame's views are (a permuted
    tensor, view_frames)."""

    def views(self, index: int, affines: np.ndarray) -> np.ndarray:
        images = np.zeros((3, 2, 2, len(affines)), np.uint8)  # channels first, views last
        images[0], images[1], images[2] = index, torch.get_num_threads(), affines[:, 0, 2]
        return images.transpose(3, 1, 2, 0)


def _maps(views: int, frames: int) -> np.ndarray:
    """(views, frames, 3, 3) translations whose x shift is 10 + v * frames + b."""
    affines = np.tile(np.eye(3), (views, frames, 1, 1))
    affines[:, :, 0, 2] = 10 + np.arange(views * frames).reshape(views, frames)
    return affines


def test_frame_views_are_c_contiguous_and_more_frames_than_maps_are_refused():
    """In this process the source's transposed views are stacked into one C-contiguous array
    (the layout pickled ones come back in); 3 frames for maps of 2 are refused by name."""
    with FrameViews(_ThreadViews()) as render:
        images = render([4, 5, 6], _maps(2, 3))
        assert images.flags.c_contiguous
        np.testing.assert_array_equal(images[..., 0, 0, 0], [[4, 5, 6], [4, 5, 6]])
        np.testing.assert_array_equal(images[..., 0, 0, 2], [[10, 11, 12], [13, 14, 15]])
        with pytest.raises(ValueError, match="3 frames, but maps of 2"):
            render([0, 1, 2], _maps(2, 2))


def test_a_single_view_process_renders_there_on_one_torch_thread():
    """workers=1 renders in a process, not here, and there torch uses one thread (the processes
    share the cores), whatever this process uses: 2 here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with FrameViews(_ThreadViews(), workers=1) as render:
            images = render([4, 5], _maps(2, 2))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(images[..., 0, 0, 0], [[4, 5], [4, 5]])
    np.testing.assert_array_equal(images[..., 0, 0, 1], 1)
