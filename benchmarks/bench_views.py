"""Speed of a real frame's views (``hopose.data.transforms.view_frames``), against baselines
measured in the same run.

Self-cropping's views of a real frame, and a real dataset's jittered training crops, are cut
from the frame's image. ``view_frames`` decodes a JPEG no finer than the view needs (libjpeg's
1/2, 1/4 or 1/8 scaling); the baseline is the same view from the image decoded at full size,
which is what a view cost before. Two views of a 1920×1080 JPEG (FPHA-HO's frames): the whole
frame (self-cropping's first pass), and a 500-pixel square, about the size of a hand and its
object in those frames, each at ``--size`` pixels. Each case keeps the best of ``--rounds``
rounds of ``--views`` views, alternating the two paths. Goal: the reduced decode faster than
the full one for both views, with the same geometry (tests/data/test_transforms.py).

Then self-cropping's 7 views of its last crop (the square turned by ±15° and shifted by ±8%,
``hopose.self_crop.CropViews``), cut from one frame read once for all of them (what ``hopose eval``
does), against each view cut alone (the baseline: the frame read and shrunk 7 times). Goal:
the 7 views together in at most half the time.

``--clock cpu`` counts this process's CPU time instead of wall time: on a machine shared with
other jobs it stays near what an idle machine's wall time would be with ``--threads 1``.

Usage: ``python benchmarks/bench_views.py [--size 224] [--views 20] [--rounds 3]
[--threads 1] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from bench_model import CLOCKS
from bench_predict import write_photo
from hopose.cli import at_least
from hopose.crop import crop_affine, frame_square
from hopose.data import transforms
from hopose.data.fpha import FPHA_COLOR_K, FPHA_IMAGE_SIZE
from hopose.data.transforms import Frame, view_frames
from hopose.self_crop import CropViews

READ_IMAGE = transforms.read_image


def full_size(path: Path, min_size: tuple[int, int] | None = None):
    """The image decoded at full size whatever the view needs (the baseline)."""
    return READ_IMAGE(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=at_least(1), default=224)
    parser.add_argument("--views", type=at_least(1), default=20)
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    like = torch.zeros(1, dtype=torch.float64)
    maps = {
        "whole frame": crop_affine(*frame_square(FPHA_IMAGE_SIZE, like), args.size)[0],
        "500-px square": crop_affine(
            like.new_tensor([[900.0, 500.0]]), like.new_tensor([500.0]), args.size
        )[0],
    }
    with tempfile.TemporaryDirectory() as folder:
        path = write_photo(Path(folder) / "frame.jpg", FPHA_IMAGE_SIZE)
        # Labels 500 mm in front of the camera (a Frame refuses points at or behind it); the
        # views read none of them.
        points = np.tile([0.0, 0.0, 500.0], (21, 1))
        frame = Frame(path, FPHA_COLOR_K, FPHA_IMAGE_SIZE, points, points[:8], "right", "box", "x")
        readers = {"reduced": READ_IMAGE, "full": full_size}
        best = {(name, decode): float("inf") for name in maps for decode in readers}
        for _ in range(args.rounds):
            for name, affine in maps.items():
                for decode, reader in readers.items():
                    with mock.patch.object(transforms, "read_image", reader):
                        start = clock()
                        for _ in range(args.views):
                            view_frames(frame, affine[None].numpy(), args.size)
                        seconds = (clock() - start) / args.views
                    best[name, decode] = min(best[name, decode], seconds)
        square = maps["500-px square"][None]  # (1, 3, 3)
        views = (
            CropViews(15.0, 0.08)
            .affines(like.new_tensor([[900.0, 500.0]]), like.new_tensor([500.0]), args.size)[:, 0]
            .numpy()
        )  # (7, 3, 3)
        assert np.allclose(views[0], square[0].numpy())
        apart = together = float("inf")
        for _ in range(args.rounds):
            start = clock()
            for affine in views:
                view_frames(frame, affine[None], args.size)
            apart = min(apart, clock() - start)
            start = clock()
            view_frames(frame, views, args.size)
            together = min(together, clock() - start)
    print(f"{args.size}-px views of a 1920x1080 JPEG, {args.threads} threads, {args.clock} clock")
    print("| view | full-size decode, ms (baseline) | reduced decode, ms | x baseline |")
    print("|---|---:|---:|---:|")
    for name in maps:
        full, reduced = best[name, "full"] * 1e3, best[name, "reduced"] * 1e3
        print(f"| {name} | {full:.1f} | {reduced:.1f} | {reduced / full:.2f} |")
    print()
    print("| the last crop's 7 views of one frame | ms | x baseline |")
    print("|---|---:|---:|")
    print(f"| each cut alone, the frame read 7 times (baseline) | {apart * 1e3:.1f} | 1.00 |")
    print(f"| cut together, the frame read once | {together * 1e3:.1f} | {together / apart:.2f} |")


if __name__ == "__main__":
    main()
