"""The demo lifter's training pass with subnormal weights, as stored and flushed to zero.

The demo's 30 lifter epochs leave subnormal floats (below 1.2e-38 in float32) in 2-21% of each
graph layer's weights and of Adam's first moments. On the Intel Xeon of BENCHMARKS.md an
operation on one is many times slower (a microcode assist), and the demo's lifter epochs went
from 2.5 s to 12 s from epoch 13 on. ``hopose`` runs every command with the CPU's flush-to-zero
and denormals-are-zero modes on (``torch.set_flush_denormal``, as TensorFlow does in its CPU
thread pools), which read and write them as zero. The benchmark times one forward and backward
pass of the demo's lifter stage (``synthetic/lifter``: the context lifter with modulated graph
layers, width 128, batch 32), a tenth of its graph layers' weights (:data:`FRACTION`) set
subnormal: as stored, flushed, and with those entries zero (no subnormals: the floor). Cases
alternate over ``--rounds`` rounds of ``--repeats`` passes (``bench_model``'s
``interleaved_seconds``); ratios are the medians of the per-round ratios.

It runs on one thread: the flush is set on the calling thread, and torch's worker threads take
it only when they start after it.

Usage: ``python benchmarks/bench_subnormal.py [--rounds 5] [--repeats 20] [--clock wall|cpu]``
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable

import torch

from bench_model import interleaved_seconds, paired_ratio, parse_timing
from hopose import train as train_module
from hopose.config import load_config
from hopose.configs import config_path
from hopose.data.splits import build_split, training_poses
from hopose.data.tensor_split import TensorSplit
from hopose.losses import total_loss
from hopose.models import build_model
from hopose.stages import STAGES

SUBNORMAL = 1e-39
"""A float32 subnormal: below torch.finfo(torch.float32).tiny, 1.18e-38."""
FRACTION = 0.1
"""The share of the graph layers' weights made subnormal, within the trained demo lifter's."""


def lifter_pass(fraction: float, *, zeroed: bool, flushed: bool) -> Callable[[], None]:
    """One forward and backward pass of the demo's lifter stage on one batch, a ``fraction`` of
    its graph layers' weights set to :data:`SUBNORMAL` (to zero when ``zeroed``), with the CPU's
    flush-to-zero modes on during the pass when ``flushed``."""
    cfg = load_config(config_path("synthetic", "lifter"), ["data.num_train=64"])
    records = build_split(cfg.data, cfg.data.train_split, with_images=False)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random backbone: not used here
        model = build_model(cfg.model)
    model.lifter.set_stats_from_poses(training_poses(records))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in model.lifter.named_parameters():
            if name.endswith("linear.weight"):
                chosen = torch.rand(weight.shape, generator=generator) < fraction
                weight[chosen] = 0.0 if zeroed else SUBNORMAL
    module = train_module.stage_module(model, STAGES["lifter"]).train()
    split = TensorSplit(records.records, device=torch.device("cpu"), batch_size=32, shuffle=False)
    batch = next(iter(split))
    parts = tuple(model.lifter.parts)

    def run() -> None:
        torch.set_flush_denormal(flushed)
        try:
            _, terms, _ = train_module.forward_losses(
                module, batch, cfg, parts=parts, device=torch.device("cpu"), mixed_precision=False
            )
            module.zero_grad(set_to_none=True)
            total_loss(terms, cfg.loss).backward()
        finally:
            torch.set_flush_denormal(False)

    return run


def main() -> None:
    # One thread, and no --threads: the flush reaches the calling thread only (module docstring).
    args, timing = parse_timing(__doc__, repeats=20, unit="passes", threads=False)
    torch.set_num_threads(1)
    cases = {
        "subnormal weights, as stored": lifter_pass(FRACTION, zeroed=False, flushed=False),
        "subnormal weights, flushed": lifter_pass(FRACTION, zeroed=False, flushed=True),
        "those weights zero": lifter_pass(FRACTION, zeroed=True, flushed=False),
    }
    print(
        f"synthetic/lifter pass, batch 32, {FRACTION:.0%} of the graph layers' weights "
        f"subnormal, {torch.get_num_threads()} threads, {args.clock} clock, "
        f"{args.rounds} rounds of {args.repeats} passes\n"
    )
    seconds = interleaved_seconds(cases, device=torch.device("cpu"), **timing)
    stored = seconds["subnormal weights, as stored"]
    print("| weights | ms a pass | vs as stored |")
    print("|---|---|---|")
    for name, times in seconds.items():
        ms, ratio = 1000 * statistics.median(times), paired_ratio(times, stored)
        print(f"| {name} | {ms:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
