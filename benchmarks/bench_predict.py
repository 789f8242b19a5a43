"""Speed and memory of ``hopose predict`` on photos, against baselines measured in the same run.

1. Time per 1920×1080 JPEG after start-up, overlay included: ``predict_images`` on 1 and on
   ``1 + --images`` copies of one photo (distinct files), the difference divided by
   ``--images``, so model loading and imports are left out. Goal: ≤ 0.2 s. Beside it, the
   overlay alone drawn with PIL (what predict does) and with matplotlib (what it did before:
   a figure at the photo's resolution saved as PNG), on the same image and keypoints.
2. Peak resident memory of a fresh process that predicts a small warm-up photo then one
   8000×6000 JPEG, against the same with one 1920×1080 JPEG (the baseline), and how much the
   photo raised the peak beyond the warm-up's. Goal: bounded, the 48 megapixel photo costing
   about what the 2 megapixel one does (it is decoded at 1/4 scale).

``--clock cpu`` counts this process's CPU time instead of wall time: on a machine shared with
other jobs it stays near what an idle machine's wall time would be with ``--threads 1``.

The network is the demo's (``--config``, default ``synthetic/end2end``: ResNet18 at 64 px),
untrained: its weights do not change the cost. Photos are smooth random colour fields.

Usage: ``python benchmarks/bench_predict.py [--config synthetic/end2end] [--images 10]
[--threads N] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from bench_model import CLOCKS
from hopose import viz
from hopose.checkpoint import model_checkpoint, save_checkpoint
from hopose.cli import at_least
from hopose.config import load_config
from hopose.configs import find_config
from hopose.models import build_model
from hopose.predict import draw_overlay, predict_images
from hopose.skeleton import NUM_JOINTS

# Run in a fresh interpreter: warm up on a small photo, predict one photo, print the peak
# resident set size and how much the photo raised it (MiB).
PEAK_MEMORY = """
import resource, sys, tempfile
from hopose.predict import predict_images
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with tempfile.TemporaryDirectory() as out:
    predict_images(sys.argv[1], [sys.argv[3]], out)
    before = peak()
    predict_images(sys.argv[1], [sys.argv[2]], out)
print(peak(), peak() - before)
"""


def write_photo(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """A smooth random colour field of ``size`` (width, height), saved as JPEG."""
    coarse = np.random.default_rng(seed).integers(0, 256, (9, 16, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize(size, Image.BICUBIC).save(path, quality=90)
    return path


def matplotlib_overlay(image: Image.Image, kp2d: np.ndarray, path: Path) -> None:
    """The former overlay: a matplotlib figure at the photo's resolution, saved as PNG."""
    width, height = image.size
    fig = Figure(figsize=(width / viz.DPI, height / viz.DPI), dpi=viz.DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    viz.show_image(ax, np.asarray(image), (width, height))
    viz.draw_pose(ax, kp2d[:NUM_JOINTS], kp2d[NUM_JOINTS:], "pred")
    ax.set_axis_off()
    viz.save_figure(fig, path)


def seconds(function, clock, repeats: int = 3) -> float:
    """Best time of ``repeats`` calls on ``clock``."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        function()
        best = min(best, clock() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic/end2end")
    parser.add_argument("--images", type=at_least(1), default=10)
    parser.add_argument("--threads", type=at_least(1), default=None)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="no backbone weights file given")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        try:
            cfg = load_config(find_config(args.config))
        except (OSError, ValueError) as error:
            parser.error(f"--config: {error}")
        model = build_model(cfg.model)
        checkpoint = folder / "model.pt"
        save_checkpoint(model_checkpoint(model, cfg, trained=("encoder", "lifter")), checkpoint)
        photos = [
            write_photo(folder / f"hd{k}.jpg", (1920, 1080), k) for k in range(args.images + 1)
        ]
        one = seconds(lambda: predict_images(checkpoint, photos[:1], folder / "out1"), clock, 1)
        many = seconds(lambda: predict_images(checkpoint, photos, folder / "outN"), clock, 1)
        per_image = (many - one) / args.images

        image = Image.open(photos[0]).convert("RGB")
        kp2d = np.asarray(json.loads((folder / "out1" / "hd0.json").read_text())["hand_2d"])
        obj = kp2d[:8] + 50.0
        overlay_pil = seconds(
            lambda: draw_overlay(image, kp2d, obj, obj[:3]).save(folder / "o.jpg", quality=90),
            clock,
        )
        overlay_mpl = seconds(
            lambda: matplotlib_overlay(image, np.concatenate([kp2d, obj]), folder / "o.png"),
            clock,
        )

        huge = write_photo(folder / "huge.jpg", (8000, 6000))
        warm_up = write_photo(folder / "warm.jpg", (64, 48))
        peak = {
            name: [
                float(value)
                for value in subprocess.run(
                    [sys.executable, "-c", PEAK_MEMORY, str(checkpoint), str(path), str(warm_up)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()[-2:]
            ]
            for name, path in (("1920x1080", photos[0]), ("8000x6000", huge))
        }
        overlay_bytes = (folder / "out1" / "hd0_overlay.jpg").stat().st_size
    threads = torch.get_num_threads()
    print(f"config {args.config}, {threads} threads, {args.clock} clock, {args.images} photos")
    print("| case | value | x baseline |")
    print("|---|---:|---:|")
    print(f"| predict, s per 1920x1080 photo after start-up | {per_image:.3f} | |")
    print(f"| overlay: matplotlib figure + PNG (former), s | {overlay_mpl:.3f} | 1.00 |")
    speed = overlay_pil / overlay_mpl
    print(f"| overlay: PIL draw + JPEG (now), s | {overlay_pil:.3f} | {speed:.3f} |")
    print(f"| overlay file of a 1920x1080 photo, MB | {overlay_bytes / 1e6:.2f} | |")
    for name, (total, growth) in peak.items():
        ratio = total / peak["1920x1080"][0]
        memory = f"{total:.0f} (+{growth:.0f})"
        print(f"| peak memory, one {name} photo, MiB (+ over warm-up) | {memory} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
