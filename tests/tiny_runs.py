"""The synthetic recipe shrunk to seconds, for the tests that train: 32 px images, 16-wide
graph layers, a handful of samples, one epoch; and the environment of a one-process torchrun."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
import torch.multiprocessing as mp

from hopose.config import TrainConfig, load_config
from hopose.configs import CONFIG_DIR as CONFIGS

TINY: list[str] = [
    "data.image_size=32",
    "model.hidden=16",
    "data.num_train=48",
    "data.num_val=16",
    "data.num_test=16",
    "data.num_workers=0",
    "optim.batch_size=16",
    "optim.epochs=1",
    "optim.val_every=1",
    "optim.progressive_size=null",
    "optim.progressive_epochs=0",
    "device=cpu",
]
"""Overrides that shrink any stage of the shipped ``synthetic`` configs, validating and writing
checkpoints every epoch, at one image size throughout (no progressive resizing), on the CPU
whatever the machine: the tests assert the CPU's behaviour (on a GPU, fp16 autocast's gradient
scaler skips a tiny run's first steps), and the CUDA tests ask for ``device=cuda``."""


def tiny(stage: str, *extra: str) -> TrainConfig:
    """The shipped ``synthetic/<stage>`` config shrunk by :data:`TINY`, then ``extra`` overrides."""
    return load_config(CONFIGS / "synthetic" / f"{stage}.yaml", [*TINY, *extra])


def free_port() -> int:
    """A TCP port free on this machine now, for a process group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RANKS_DEADLINE = 300.0
"""Seconds the ranks of a two-process test run may take (about 5 s each here): one rank left
waiting after both had trained was seen once (torch 2.7.0, 2026-12-06; a gloo deadlock of that
version as a process leaves its group, docs/training.md, "Several GPUs or machines"), and held
the suite."""


def spawn_ranks(
    worker: Callable[..., None], args: tuple, nprocs: int = 2, deadline: float = RANKS_DEADLINE
) -> None:
    """``torch.multiprocessing.spawn(worker, args, nprocs)``, a rank's exception raised here as
    spawn raises it, but the test failed, and every rank killed, where they have not all ended
    within ``deadline`` seconds."""
    ranks = mp.start_processes(worker, args=args, nprocs=nprocs, join=False, start_method="spawn")
    end = time.monotonic() + deadline
    while not ranks.join(timeout=max(0.0, end - time.monotonic())):
        if time.monotonic() >= end:
            for process in ranks.processes:
                process.kill()
                process.join()
            pytest.fail(f"{nprocs} ranks had not ended after {deadline:g} s: killed")


def as_one_process_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment torchrun gives its one process (WORLD_SIZE=1, as on one GPU), set until
    the test ends (or ``monkeypatch.undo()``)."""
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    for key, value in {**env, "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(key, value)
