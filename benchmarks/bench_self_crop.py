"""Speed of an evaluation from the images by self-cropping, against the way it ran before.

``hopose eval`` of a model trained on crops renders every frame anew for each pass and each
test-time view (docs/training.md, "From pixels"); that rendering, not the network, is most of
its time on synthetic data. Two changes, each timed here on the same frames and network:

- the records are read without images (``with_images`` False), which self-cropping never used,
  and the views come from the same split read with them (``predict_split``'s ``frames``);
- the views are rendered in ``--workers`` processes (:class:`hopose.data.workers.FrameViews`).

The baseline is the evaluation as it was: records read with their images, the views rendered
in this process. The network is the demo's end-to-end config's (two self-crops, the last
averaged over 7 views, 64 px), untrained: its weights change no time. After one untimed call
of each, the cases alternate over ``--rounds`` rounds on ``--num`` synthetic test frames, in
reverse order every other round (``bench_model``'s ``interleaved_seconds``); the ratio is the
median of the rounds'.
Goal: the evaluation as ``hopose eval --workers 2`` runs it at most 0.7x the baseline on 2
cores.

Usage: ``python benchmarks/bench_self_crop.py [--num 128] [--rounds 3] [--workers 2]``
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import statistics
import warnings

import torch

from bench_model import interleaved_seconds, paired_ratio
from hopose.cli import at_least
from hopose.config import load_config
from hopose.configs import config_path
from hopose.data.splits import build_split
from hopose.evaluate import predict_split, without_jitter
from hopose.models import build_model
from hopose.self_crop import SelfCropping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=at_least(1), default=128)
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--workers", type=at_least(1), default=2)
    args = parser.parse_args()
    cfg = load_config(config_path("synthetic", "end2end"))
    data = without_jitter(cfg.data)
    cropping = SelfCropping.of(data)  # the model's, trained on square crops
    # As run_eval reads a crop-trained model's test split: whole frames, rendered on demand.
    data = dataclasses.replace(data, crop="resize", in_memory=False, num_test=args.num)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no pretrained backbone weights
        model = build_model(cfg.model).eval()
    frames = build_split(data, data.test_split, with_images=True)
    records = build_split(data, data.test_split, with_images=False)
    cases = {
        "records with images, views here (before)": dict(dataset=frames, num_workers=0),
        "records without images, views here": dict(dataset=records, frames=frames, num_workers=0),
        f"the same, views in {args.workers} processes": dict(
            dataset=records, frames=frames, num_workers=args.workers
        ),
    }
    seconds = interleaved_seconds(
        {
            name: functools.partial(predict_split, model, cropping=cropping, **kwargs)
            for name, kwargs in cases.items()
        },
        rounds=args.rounds,
        repeats=1,
        device=torch.device("cpu"),
    )
    baseline = seconds[next(iter(cases))]
    print(
        f"{args.num} synthetic frames, {data.self_crop} self-crops, "
        f"the last {len(cropping.views)} views, "
        f"{data.image_size} px, {torch.get_num_threads()} threads, {args.rounds} rounds, wall clock"
    )
    print("| case | s (median) | ms a frame | x baseline |")
    print("|---|---:|---:|---:|")
    for name, times in seconds.items():
        median = statistics.median(times)
        ratio = paired_ratio(times, baseline)
        print(f"| {name} | {median:.1f} | {1000 * median / args.num:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
