"""Throughput of the synthetic dataset on one core, as samples/s and ratios to a baseline.

Cases (one thread: ``torch.set_num_threads(1)``, in-process, sequential indices):

- ``pose-only``: ``SyntheticHandObject(n, seed, with_images=False)[i]`` for a fresh dataset, so
  every pose is generated (blocks of 64) and every record built, as the lifter's training reads
  them.
- ``rendered 224 px``: ``SyntheticHandObject(n, seed)[i]`` with the poses already generated:
  the cost of drawing one image and building the record.
- ``JPEG decode 224 px`` (baseline): PIL decoding a 224×224 JPEG of a rendered sample (quality
  95), what a loader of real images pays per sample before any augmentation.

Each case reports its fastest of ``--rounds`` rounds, timed with the process CPU clock (other
jobs on a shared machine then add little); compare the ratios, not the times.

Usage: ``python benchmarks/bench_synthetic.py [--poses 4096] [--images 96] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from hopose.cli import at_least
from hopose.data.synthetic import SyntheticHandObject


def _fastest(fn: Callable[[int], int], rounds: int) -> float:
    """Samples per CPU-second of ``fn(round) -> samples done``, best of ``rounds``."""
    best = 0.0
    for round_ in range(rounds):
        start = time.process_time()
        done = fn(round_)
        best = max(best, done / (time.process_time() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--poses", type=at_least(1), default=4096, help="pose-only samples per round"
    )
    parser.add_argument("--images", type=at_least(1), default=96, help="rendered samples per round")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--size", type=at_least(8), default=224, help="image side (px)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    def poses(round_: int) -> int:
        dataset = SyntheticHandObject(args.poses, round_, args.size, with_images=False)
        for i in range(len(dataset)):
            dataset[i]
        return len(dataset)

    rendered = SyntheticHandObject(args.images, 0, args.size)
    for i in range(0, args.images, 64):
        rendered._grasps(i // 64)  # generate the poses first: time the images alone

    def images(round_: int) -> int:
        for i in range(args.images):
            rendered[i]
        return args.images

    buffer = io.BytesIO()
    Image.fromarray(rendered[0]["image"]).save(buffer, format="JPEG", quality=95)
    jpeg = buffer.getvalue()

    def decode(round_: int) -> int:
        for _ in range(args.images):
            np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
        return args.images

    rates = {
        "pose-only": _fastest(poses, args.rounds),
        f"rendered {args.size} px": _fastest(images, args.rounds),
        f"JPEG decode {args.size} px (baseline)": _fastest(decode, args.rounds),
    }
    baseline = rates[f"JPEG decode {args.size} px (baseline)"]
    print(f"torch {torch.__version__}, numpy {np.__version__}, 1 thread, CPU time")
    print("| case | samples/s | ratio to JPEG decode |")
    print("|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.3f} |")


if __name__ == "__main__":
    main()
