"""The lifter stage through ``hopose.train.train`` against its floor, timed in one run.

The floor is what the stage cannot avoid: its optimisation steps alone (forward of the lifter on
the ground-truth 2D, the loss terms of Eq. 7 that apply, backward, Adam), over the same number
of epochs of the same batches, sliced beforehand and already on the device. The stage is
``train()`` of a lifter config, timed from the start of its first epoch to its return: every
epoch's batching, bookkeeping, validation, metrics rows and checkpoints (every
``optim.val_every`` epochs and after the last), and nothing of its one-time start (building the
network and the data), which 10,000 epochs make negligible.

Defaults are the paper's stage 1 (§4.3): 11,019 training poses (FPHA-HO), batch 256, the
context lifter of width 128 with dropout 0.3, and a ResNet50 encoder in the checkpoints; the
validation split has 5,040 poses (the size of FPHA-HO's test split). Poses are synthetic,
generated once before timing. Cases alternate over ``--rounds`` rounds; the ratio is the median
of the per-round ratios.

On a busy shared CPU, ``--clock cpu`` (this process's CPU time, one thread) gives the steadiest
ratios; checkpoint writes land in the page cache and count as this process's CPU time too.

Usage: ``python benchmarks/bench_train.py [--epochs 10] [--rounds 3] [--threads 1]
[--device cpu] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

import torch

from bench_model import CLOCKS, usable_device
from hopose import train as train_module
from hopose.cli import at_least
from hopose.config import TrainConfig, config_from_dict
from hopose.data.splits import RecordList, build_split, training_poses
from hopose.data.tensor_split import TensorSplit
from hopose.losses import configured_losses, total_loss
from hopose.models import BACKBONES, build_model

PAPER_TRAIN_POSES = 11_019
VAL_POSES = 5_040


def lifter_config(
    *,
    num_train: int = PAPER_TRAIN_POSES,
    num_val: int = VAL_POSES,
    batch_size: int = 256,
    epochs: int = 10,
    backbone: str = "resnet50",
    hidden: int = 128,
    threads: int | None = 1,
    device: str = "cpu",
    val_every: int | None = None,
) -> TrainConfig:
    """A lifter-stage config on synthetic poses (``val_every`` None keeps the default)."""
    optim = {"epochs": epochs, "batch_size": batch_size, "lr": 1e-3}
    if val_every is not None:
        optim["val_every"] = val_every
    return config_from_dict(
        {
            "stage": "lifter",
            "num_threads": threads,
            "device": device,
            "data": {"name": "synthetic", "num_train": num_train, "num_val": num_val},
            "model": {"backbone": backbone, "hidden": hidden},
            "optim": optim,
        }
    )


def pose_splits(cfg: TrainConfig) -> dict[str, RecordList]:
    """The training and validation splits of ``cfg``, read once (pose-only records)."""
    return {
        split: build_split(cfg.data, split, with_images=False)
        for split in (cfg.data.train_split, cfg.data.val_split)
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def floor_seconds(
    cfg: TrainConfig, splits: Mapping[str, RecordList], *, clock=time.perf_counter
) -> float:
    """Seconds of ``cfg.optim.epochs`` epochs of bare optimisation steps of the lifter."""
    device = train_module.setup_runtime(cfg.device).device
    torch.manual_seed(cfg.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random backbone: not used here
        lifter = build_model(cfg.model).lifter
    lifter.set_stats_from_poses(training_poses(splits["train"]))
    lifter.to(device).train()
    optimizer = train_module.make_optimizer(lifter.parameters(), cfg.optim)
    split = TensorSplit(
        splits["train"].records,
        device=device,
        batch_size=cfg.optim.batch_size,
        shuffle=True,
        seed=cfg.seed,
    )
    epochs = []
    for epoch in range(cfg.optim.epochs):
        split.set_epoch(epoch)
        epochs.append([(torch.cat([b["hand_2d"], b["obj_2d"]], dim=1), b) for b in split])
    parts = tuple(lifter.parts)
    _sync(device)
    start = clock()
    for batches in epochs:
        for kp2d, batch in batches:
            out = lifter(kp2d, batch["K"])
            loss = total_loss(configured_losses(out, batch, cfg.loss, parts=parts), cfg.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    _sync(device)
    return clock() - start


def stage_seconds(
    cfg: TrainConfig,
    splits: Mapping[str, RecordList],
    out_dir: Path,
    *,
    clock=time.perf_counter,
) -> float:
    """Seconds of ``train(cfg)`` from the start of its first epoch to its return, on ``splits``
    (built beforehand instead of by the run)."""
    started = []
    one_epoch = train_module.train_one_epoch

    def timed_epoch(*args, **kwargs):
        if not started:
            started.append(clock())
        return one_epoch(*args, **kwargs)

    with (
        mock.patch.object(train_module, "train_one_epoch", timed_epoch),
        mock.patch.object(train_module, "build_split", lambda data, split, **_: splits[split]),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)
        train_module.train(cfg, out_dir)
        _sync(train_module.setup_runtime(cfg.device).device)
    return clock() - started[0]


def measure(cfg: TrainConfig, *, rounds: int, clock=time.perf_counter) -> dict[str, list[float]]:
    """Seconds per round of the floor and of the stage, alternating, on splits built once."""
    splits = pose_splits(cfg)
    seconds: dict[str, list[float]] = {"floor": [], "stage": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(rounds):
            order = ("floor", "stage") if round_index % 2 == 0 else ("stage", "floor")
            for case in order:
                if case == "floor":
                    seconds["floor"].append(floor_seconds(cfg, splits, clock=clock))
                else:
                    out = Path(folder) / f"run{round_index}"
                    seconds["stage"].append(stage_seconds(cfg, splits, out, clock=clock))
    return seconds


def table(cfg: TrainConfig, seconds: Mapping[str, list[float]]) -> str:
    """Markdown table: seconds per epoch of the floor and the stage, and their ratio."""
    epochs = cfg.optim.epochs
    floor = statistics.median(seconds["floor"]) / epochs
    stage = statistics.median(seconds["stage"]) / epochs
    ratio = statistics.median(
        s / f for s, f in zip(seconds["stage"], seconds["floor"], strict=True)
    )
    rounds = ", ".join(
        f"{s / f:.3f}" for s, f in zip(seconds["stage"], seconds["floor"], strict=True)
    )
    return "\n".join(
        [
            "| case | s per epoch | ratio to floor |",
            "|---|---|---|",
            f"| floor: bare optimisation steps | {floor:.3f} | 1.000 |",
            f"| lifter stage, `hopose train` (val_every {cfg.optim.val_every}) | {stage:.3f} | "
            f"**{ratio:.3f}** (rounds: {rounds}) |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--num-train", type=at_least(1), default=PAPER_TRAIN_POSES)
    parser.add_argument("--num-val", type=at_least(1), default=VAL_POSES)
    parser.add_argument("--batch", type=at_least(1), default=256)
    parser.add_argument("--epochs", type=at_least(1), default=10)
    parser.add_argument("--val-every", type=at_least(1), default=None, help="default: the config's")
    parser.add_argument("--backbone", choices=BACKBONES, default="resnet50")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--device", type=usable_device, default="cpu")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = lifter_config(
        num_train=args.num_train, num_val=args.num_val, batch_size=args.batch,
        epochs=args.epochs, backbone=args.backbone, threads=args.threads, device=args.device,
        val_every=args.val_every,
    )  # fmt: skip
    print(
        f"lifter stage: {args.num_train:,} poses, validation {args.num_val:,}, batch "
        f"{args.batch}, {args.epochs} epochs, {args.backbone} in the checkpoints; "
        f"{args.device}, {args.threads} thread(s) of {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {args.rounds} rounds, {args.clock} clock\n"
    )
    print(table(cfg, measure(cfg, rounds=args.rounds, clock=CLOCKS[args.clock])))


if __name__ == "__main__":
    main()
