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

``--against SRC`` adds a second table: ``render_grasp`` of this checkout against the renderer of
another one (``SRC/hopose/data/render.py``, e.g. the code before a change; the rest of hopose is
this checkout's), both on the same grasps and appearances, in rounds that alternate which goes
first: the demo's 64-px square crops (jittered, 2 x 2 samples a pixel) and ``--size`` px views
of the whole frame. The two must draw the same images (compared bit for bit).

Usage: ``python benchmarks/bench_synthetic.py [--poses 4096] [--images 96] [--rounds 3]
[--against SRC]``
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hopose.cli import at_least
from hopose.data import render
from hopose.data.synthetic import SyntheticHandObject


def _fastest(fn: Callable[[int], int], rounds: int) -> float:
    """Samples per CPU-second of ``fn(round) -> samples done``, best of ``rounds``."""
    best = 0.0
    for round_ in range(rounds):
        start = time.process_time()
        done = fn(round_)
        best = max(best, done / (time.process_time() - start))
    return best


def _renderer(src: str):
    """The module ``SRC/hopose/data/render.py`` of another checkout."""
    spec = importlib.util.spec_from_file_location(
        "baseline_render", Path(src, "hopose/data/render.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look up their module
    spec.loader.exec_module(module)
    return module


def _draw(module, record: dict, index: int, side: int) -> np.ndarray:
    """``module.render_grasp`` of a record at ``side`` px, with the sample's own appearance
    generator (seeded as ``SyntheticHandObject`` seeds it)."""
    look = np.random.default_rng([0, index, 1])
    return module.render_grasp(
        record["hand_3d"], record["obj_3d"], record["K"], side, look, record["object"],
        supersample=render.supersampling(side),
    )  # fmt: skip


def _compare_renderers(baseline, images: int, size: int, rounds: int) -> None:
    """Print renders/s of this checkout's ``render_grasp`` and ``baseline``'s, best of ``rounds``
    (alternating which goes first), for 64-px jittered square crops and ``size``-px frames."""
    print(f"\n| render_grasp ({images} grasps) | this checkout: renders/s | baseline: renders/s "
          "| speed-up | equal images |")  # fmt: skip
    print("|---|---|---|---|---|")
    for crop, side, jitter in (("square", 64, True), ("resize", size, False)):
        data = SyntheticHandObject(images, 0, side, crop=crop, jitter=jitter, with_images=False)
        records = [data[i] for i in range(images)]
        equal = sum(
            np.array_equal(_draw(render, r, i, side), _draw(baseline, r, i, side))
            for i, r in enumerate(records)
        )
        best = {render: 0.0, baseline: 0.0}
        for round_ in range(rounds):
            for module in (render, baseline)[:: 1 if round_ % 2 == 0 else -1]:
                start = time.process_time()
                for i, record in enumerate(records):
                    _draw(module, record, i, side)
                best[module] = max(best[module], images / (time.process_time() - start))
        f = render.supersampling(side)
        name = f"{side} px {crop}" + (f", {f} x {f} samples a pixel" if f > 1 else "")
        print(f"| {name} | {best[render]:,.1f} | {best[baseline]:,.1f} "
              f"| {best[render] / best[baseline]:.2f} | {equal} / {images} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--poses", type=at_least(1), default=4096, help="pose-only samples per round"
    )
    parser.add_argument("--images", type=at_least(1), default=96, help="rendered samples per round")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--size", type=at_least(8), default=224, help="image side (px)")
    parser.add_argument(
        "--against", metavar="SRC", help="another checkout's src/ to time its renderer against"
    )
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
    if args.against:
        _compare_renderers(_renderer(args.against), args.images, args.size, args.rounds)


if __name__ == "__main__":
    main()
