"""Photos per second of prediction with several photos per forward pass, against one at a time.

The same ``--photos`` 1920×1080 JPEGs (distinct smooth random colour fields) and the same
network are predicted at each of ``--batch-sizes`` (1 is one photo at a time, what ``hopose
predict`` did before batching), round after round, the best round kept:

1. ``Predictor.predict_batch`` on the photos already read, ``--batch-sizes`` at a time: the
   network's passes (self-cropping's too), the maps back and the contacts;
2. ``predict_images`` from the files to the JSONs and overlays, with ``batch_size`` set (its
   checkpoint loading stood in for by the network already built: no start-up to leave out).

Each is printed as photos per second and as a ratio to batch size 1 in the same run.

The network is the demo's (``--config``, default ``synthetic/end2end``: ResNet18 at 64 px,
two self-crops, the last one's 7 views), untrained: its weights do not change the cost but for
where it places its crops, so its 2D is replaced by fixed points spanning a third of the frame
(``bench_predict.Placed``), which gives crops a real photo's size. ``--config fpha/end2end`` is
the paper's network (ResNet50 at 224 px), which reads the whole photo once.

Usage: ``python benchmarks/bench_predict_batch.py [--config synthetic/end2end] [--photos 16]
[--batch-sizes 1 8 16] [--rounds 3] [--threads N] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from functools import partial
from pathlib import Path
from unittest import mock

import torch

from bench_model import CLOCKS
from bench_predict import Placed, seconds, write_photo
from hopose import predict
from hopose.cli import at_least
from hopose.config import load_config
from hopose.configs import find_config
from hopose.models import build_model
from hopose.photo import read_photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic/end2end", help="the network's config")
    parser.add_argument("--photos", type=at_least(1), default=16, help="photos predicted")
    parser.add_argument(
        "--batch-sizes", type=at_least(1), nargs="+", default=[1, 8, 16],
        help="photos per forward pass to compare; the first is the baseline",
    )  # fmt: skip
    parser.add_argument("--rounds", type=at_least(1), default=3, help="best of this many")
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch threads")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall", help="wall or CPU")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="no backbone weights file given")
    try:
        cfg = load_config(find_config(args.config))
    except (OSError, ValueError) as error:
        parser.error(f"--config: {error}")
    torch.manual_seed(0)
    network = Placed(build_model(cfg.model))
    with (
        tempfile.TemporaryDirectory() as folder,
        mock.patch.object(predict, "load_model", lambda path: (network, cfg)),
    ):
        folder = Path(folder)
        checkpoint = "model.pt"  # load_model gives ``network``: no file is read
        files = [write_photo(folder / f"p{k:02d}.jpg", (1920, 1080), k) for k in range(args.photos)]
        photos = [read_photo(path) for path in files]
        predictor = predict.Predictor(checkpoint, device="cpu")

        def predict_in_batches(size: int) -> None:
            for start in range(0, len(photos), size):
                predictor.predict_batch(photos[start : start + size], fov=65.0)

        def predict_files(size: int) -> None:
            predict.predict_images(
                checkpoint, files, folder / "out", fov=65.0, device="cpu", batch_size=size
            )

        # One untimed call of each first: lazy imports, allocator and kernel set-up.
        predict_in_batches(max(args.batch_sizes))
        predict_files(max(args.batch_sizes))
        in_memory = {size: float("inf") for size in args.batch_sizes}
        from_files = dict(in_memory)
        for _ in range(args.rounds):  # the batch sizes side by side in each round
            for size in args.batch_sizes:
                for best, run in ((in_memory, predict_in_batches), (from_files, predict_files)):
                    best[size] = min(best[size], seconds(partial(run, size), clock, repeats=1))
    base = args.batch_sizes[0]
    print(
        f"config {args.config}, {torch.get_num_threads()} threads, {args.clock} clock, "
        f"{args.photos} photos 1920x1080, best of {args.rounds} rounds"
    )
    print(
        "| photos per forward pass | predict_batch, photos/s | × | predict_images, photos/s | × |"
    )
    print("|---:|---:|---:|---:|---:|")
    rate = {
        size: (args.photos / in_memory[size], args.photos / from_files[size])
        for size in args.batch_sizes
    }
    for size, (memory, files_rate) in rate.items():
        print(
            f"| {size} | {memory:.2f} | {memory / rate[base][0]:.2f} | {files_rate:.2f} | "
            f"{files_rate / rate[base][1]:.2f} |"
        )


if __name__ == "__main__":
    main()
