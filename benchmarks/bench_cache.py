"""How fast a prepared cache feeds a training loop (issue #5: at least 1,000 samples/s at 224 px
on 2 cores), as ratios to baselines timed in the same run.

A cache of ``--num`` random docs/conventions.md §6 records at ``--size`` px is written with
:func:`hopose.data.write_cache` into a temporary folder, then each case runs whole epochs of
shuffled batches of 64 through a ``DataLoader`` with :func:`hopose.data.collate_samples` and
reads every batch's (B, 3, H, W) uint8 image tensor; the conversion to float belongs to the
training step (on its device) and is not timed:

- ``in-memory list``: the same records held in a Python list (no I/O: the ceiling);
- ``cache, workers=0`` and ``cache, workers=2``: :class:`hopose.data.CacheDataset`, the
  images read from the memory-mapped ``images.npy`` (in the page cache after the first epoch);
- ``raw FPHA frame``: what reading the raw tree costs per sample, decoding a 1920×1080 JPEG and
  resizing it to ``--size`` px with :func:`hopose.data.frame_to_record` (timed on
  ``--raw-samples`` samples, in-process).

Cases are interleaved over ``--rounds`` rounds and each reports its median, so a machine shared
with other jobs slows all cases alike; compare the ratios, not the times.

Usage: ``python benchmarks/bench_cache.py [--num 2048] [--size 224] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from hopose.cli import at_least
from hopose.data import CacheDataset, Frame, collate_samples, frame_to_record, write_cache
from hopose.data.fpha import FPHA_COLOR_K, FPHA_IMAGE_SIZE

BATCH = 64


def random_record(index: int, size: int) -> dict:
    rng = np.random.default_rng(index)
    return {
        "image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "K": np.eye(3, dtype=np.float32),
        "hand_3d": rng.normal(size=(21, 3)).astype(np.float32) + np.array([0, 0, 400.0]),
        "obj_3d": rng.normal(size=(8, 3)).astype(np.float32) + np.array([0, 0, 400.0]),
        "hand_2d": rng.normal(size=(21, 2)).astype(np.float32),
        "obj_2d": rng.normal(size=(8, 2)).astype(np.float32),
        "orig_K": np.eye(3, dtype=np.float32),
        "orig_size": np.array([1920, 1080], dtype=np.float32),
        "side": "right",
        "object": "box",
        "id": f"bench/s/q/{index:06d}",
        "grasp": "power",
    }


def epoch_rate(dataset, workers: int) -> float:
    """Samples per second of one shuffled epoch of collated batches out of a DataLoader."""
    loader = DataLoader(
        dataset,
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate_samples,
        persistent_workers=False,
    )
    start, seen = time.perf_counter(), 0
    for batch in loader:
        seen += batch["image"].shape[0]
    return seen / (time.perf_counter() - start)


def raw_rate(folder: Path, size: int, samples: int) -> float:
    """Samples per second of decoding a 1920×1080 JPEG frame and resizing it (raw tree path)."""
    path = folder / "color_0000.jpeg"
    if not path.exists():
        pixels = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, quality=90)
    hand = np.tile([[50.0, 40.0, 400.0]], (21, 1))
    frame = Frame(path, FPHA_COLOR_K, FPHA_IMAGE_SIZE, hand, hand[:8], "right", "box", "b/s/q/0")
    start = time.perf_counter()
    for _ in range(samples):
        frame_to_record(frame, image_size=size)
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=at_least(1), default=2048, help="cached samples")
    parser.add_argument("--size", type=at_least(8), default=224, help="image side, px")
    parser.add_argument("--rounds", type=at_least(1), default=3, help="interleaved timing rounds")
    parser.add_argument(
        "--raw-samples", type=at_least(1), default=32, help="raw frames decoded a round"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        records = [random_record(i, args.size) for i in range(args.num)]
        start = time.perf_counter()
        write_cache(records, folder / "cache", progress=False, chunk_size=256)
        write_seconds = time.perf_counter() - start
        cache = CacheDataset(folder / "cache")
        epoch_rate(cache, 0)  # warm the page cache
        cases: dict[str, Callable[[], float]] = {
            "in-memory list": lambda: epoch_rate(records, 0),
            "cache, workers=0": lambda: epoch_rate(cache, 0),
            "cache, workers=2": lambda: epoch_rate(cache, 2),
            "raw FPHA frame": lambda: raw_rate(folder, args.size, args.raw_samples),
        }
        rates: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, case in cases.items():
                rates[name].append(case())
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}; {args.num} samples at {args.size} px, batch {BATCH}, "
        f"median of {args.rounds} rounds"
    )
    print(f"cache written in {write_seconds:.1f} s ({args.num / write_seconds:.0f} samples/s)")
    baseline = statistics.median(rates["in-memory list"])
    print("| case | samples/s | ratio to in-memory list |\n|---|---|---|")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f} |")


if __name__ == "__main__":
    main()
