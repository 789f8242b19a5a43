"""Speed and memory of ``hopose predict`` on photos, against baselines measured in the same run.

1. Time per 1920×1080 JPEG after start-up, overlay included: ``predict_images`` on 1 and on
   ``1 + --images`` copies of one photo (distinct files), the difference divided by
   ``--images``, so model loading and imports are left out, after one untimed call that pays
   the first call's one-off costs. Goal: ≤ 0.2 s. Beside it, the
   overlay alone drawn with PIL (what predict does) and with matplotlib (what it did before:
   a figure at the photo's resolution saved as PNG), on the same image and keypoints.
2. A model that self-crops (the demo's): one photo's self-cropping
   (:func:`hopose.self_crop.self_crop_photos`, three passes, the last one's 7 views), against the
   former way in the same run: each view's frame shrunk anew (``warp_image`` per view) and each
   view read by the network alone. The network's 2D is replaced by fixed points spanning a
   third of the frame (:class:`Placed`), so that the crops are a real photo's size. Goal: at
   most half the former time.
3. Peak resident memory of a fresh process that predicts a small warm-up photo then one
   8000×6000 JPEG, against the same with one 1920×1080 JPEG (the baseline), and how much the
   photo raised the peak beyond the warm-up's. Goal: bounded, the 48 megapixel photo costing
   about what the 2 megapixel one does (it is decoded at 1/4 scale).

``--clock cpu`` counts this process's CPU time instead of wall time: on a machine shared with
other jobs it stays near what an idle machine's wall time would be with ``--threads 1``.

The network is the demo's (``--config``, default ``synthetic/end2end``: ResNet18 at 64 px),
untrained: its weights do not change the cost (but for where it places its crops, case 2).
Photos are smooth random colour fields.

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
from hopose.crop import warp_image
from hopose.data.fpha import FPHA_COLOR_K
from hopose.geometry import project_points
from hopose.models import build_model
from hopose.predict import predict_images
from hopose.self_crop import SelfCropping, self_crop, self_crop_photos
from hopose.skeleton import NUM_JOINTS
from hopose.viz import draw_overlay

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


class Placed(torch.nn.Module):
    """The network's cost, with crops of a real photo's size: an untrained network's 2D
    collapses to a few pixels, whose squares never shrink the photo, so its 2D is replaced by
    the projection of 29 points spanning about a third of a 1920×1080 frame's width."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        grid = torch.linspace(-100.0, 100.0, 29)
        self.points = torch.stack([grid, grid.flip(0) * 0.5, torch.full_like(grid, 450.0)], -1)

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model(image, K)
        kp2d = project_points(self.points.to(K), K)  # (B, 29, 2)
        return out | {"kp2d_init": kp2d, "kp2d": kp2d}


class OneByOne(torch.nn.Module):
    """The former self-cropping's network calls: each image of a batch read alone."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        outs = [self.model(image[i : i + 1], K[i : i + 1]) for i in range(len(image))]
        return {key: torch.cat([out[key] for out in outs]) for key in outs[0]}


def self_crop_seconds(model, image_size: int, cropping: SelfCropping, photo: Path, clock):
    """Seconds of one photo's self-cropping, now and the former way (module docstring)."""
    image = np.asarray(Image.open(photo).convert("RGB"))
    height, width = image.shape[:2]
    K = torch.from_numpy(FPHA_COLOR_K).float()  # the synthetic frames' camera

    def former() -> None:
        # The same uint8 photo as now's, copied and made floats inside the timed call as now's
        # photo_views and FrameWarp do.
        frame = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float().div_(255)
        with torch.inference_mode():
            self_crop(
                OneByOne(model),
                lambda maps: torch.stack([warp_image(frame, A, image_size) for A in maps]),
                K[None],
                (width, height), image_size=image_size, cropping=cropping,
            )  # fmt: skip

    now = seconds(
        lambda: self_crop_photos(model, [image], K[None], image_size=image_size, cropping=cropping),
        clock,
    )
    return now, seconds(former, clock)


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
        # The first call pays one-off costs (lazy imports, allocator and kernel set-up) that
        # would fall in ``one`` alone and bias the difference low (negative with --images 1).
        predict_images(checkpoint, photos[:1], folder / "warm")
        one = seconds(lambda: predict_images(checkpoint, photos[:1], folder / "out1"), clock, 1)
        many = seconds(lambda: predict_images(checkpoint, photos, folder / "outN"), clock, 1)
        per_image = (many - one) / args.images
        cropping = SelfCropping.of(cfg.data)
        crop_times = (
            self_crop_seconds(Placed(model.eval()), cfg.data.image_size, cropping, photos[0], clock)
            if cropping.passes
            else None
        )

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
    if crop_times is not None:
        now, former = crop_times
        views = f"{cropping.passes} crops, {len(cropping.views)} views"
        former_case = f"self-cropping a photo ({views}), former: a shrink and a batch a view"
        now_case = "self-cropping a photo, now: each shrink once, the views in one batch"
        print(f"| {former_case}, s | {former:.3f} | 1.00 |")
        print(f"| {now_case}, s | {now:.3f} | {now / former:.2f} |")
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
