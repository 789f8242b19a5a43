"""An in-memory image split's training epoch batched by index against the same through a DataLoader.

``data.in_memory`` holds an image stage's rendered crops in memory. ``hopose.train`` stacks them
once into tensors on the training device (a ``TensorSplit``, as the lifter stage's poses; on a GPU
when they fit, :func:`hopose.train.fits_on_device`) and cuts each batch by index; before, a
DataLoader without workers collated each batch's records in the main process (and, on a GPU, copied
it there). The benchmark times one epoch of the demo's encoder stage (``synthetic/encoder`` at 64
px, batch 32, as ``train`` runs it; ``train_one_epoch``, the first epoch at the full size) over
``--num`` rendered crops, fed by each of the two (in the same order in the first round; later rounds
draw other orders, which cost the same). Cases alternate over ``--rounds`` rounds (``bench_model``'s
``interleaved_seconds``, one epoch per case per round); the ratio is the median of the per-round
ratios. ``gpu_check.py`` runs it on the GPU, where a step is short beside the collate and the copy.

Usage: ``python benchmarks/bench_in_memory.py [--num 1000] [--rounds 5] [--threads N]
[--device cpu|cuda] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable, Sequence

import torch
from torch.utils.data import DataLoader, RandomSampler

from bench_model import CLOCKS, interleaved_seconds, paired_ratio, usable_device
from gpu_check import config_epoch
from hopose.cli import at_least
from hopose.config import TrainConfig, load_config
from hopose.configs import config_path
from hopose.data.sample import collate_samples
from hopose.data.splits import RecordList, build_split
from hopose.data.tensor_split import TensorSplit


def feeds(cfg: TrainConfig, records: RecordList, device: torch.device) -> dict[str, Iterable]:
    """The two feeds of ``cfg``'s training split held in ``records``, drawing the same order."""
    batch_size = cfg.optim.batch_size
    sampler = RandomSampler(records, generator=torch.Generator().manual_seed(cfg.seed))
    return {
        "DataLoader": DataLoader(
            records, batch_size=batch_size, sampler=sampler, collate_fn=collate_samples,
            pin_memory=device.type == "cuda",
        ),
        "TensorSplit": TensorSplit(
            records.records, device=device, batch_size=batch_size, shuffle=True, seed=cfg.seed,
        ),
    }  # fmt: skip


def epoch_seconds(
    *,
    num: int,
    rounds: int,
    device: torch.device,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds of each round's epoch over ``num`` crops, by feed (:func:`feeds`)."""
    cfg = load_config(config_path("synthetic", "encoder"), [f"data.num_train={num}"])
    records = build_split(cfg.data, cfg.data.train_split, with_images=True)
    cases = {}
    for name, feed in feeds(cfg, records, device).items():
        torch.manual_seed(0)  # two networks started alike, each trained by its own feed
        cases[name] = config_epoch(cfg, feed, device)
    return interleaved_seconds(cases, rounds=rounds, repeats=1, device=device, clock=clock)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=at_least(64), default=1000, help="crops in the split")
    parser.add_argument("--rounds", type=at_least(1), default=5)
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    parser.add_argument("--device", type=usable_device, default="cpu")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    seconds = epoch_seconds(
        num=args.num, rounds=args.rounds, device=device, clock=CLOCKS[args.clock]
    )
    print(
        f"synthetic/encoder epoch over {args.num} crops, {device}, "
        f"{torch.get_num_threads()} threads, {args.clock} clock, {args.rounds} rounds\n"
    )
    print("| fed by | s an epoch | vs DataLoader |")
    print("|---|---|---|")
    for name, times in seconds.items():
        ratio = paired_ratio(times, seconds["DataLoader"])
        print(f"| {name} | {statistics.median(times):.3f} | {ratio:.3f}x |")


if __name__ == "__main__":
    main()
