"""The demo's encoder step in a progressive-resizing epoch against one at the full size.

``optim.progressive_size`` shows an image stage's first ``optim.progressive_epochs`` epochs
their batches at a smaller size (``hopose.crop.shrink_views``; docs/from_pixels.md, "Progressive
resizing"). The benchmark times one training step of the demo's encoder stage
(``synthetic/encoder``: the first two residual stages of ResNet18, heat-map head, segmentation
maps, refinement GCN, batch 32, bf16 autocast where the CPU has bf16 instructions,
channels-last, fused Adam) through ``hopose.train.train_one_epoch`` on a random 64-px batch in
memory, in its first epoch (shown at ``progressive_size``, the resize included) and in its
first epoch at 64 px.

Cases alternate over ``--rounds`` rounds of ``--repeats`` steps (``bench_model``'s
``interleaved_seconds``); the ratio is the median of the per-round ratios. Goal: a progressive
step below 5/8 = 0.625× a full-size one, the ratio at which the demo's 8 epochs at 40 px and 7
at 64 cost what its former 12 at 64 did.

Usage: ``python benchmarks/bench_progressive.py [--rounds 5] [--repeats 10] [--threads N]
[--clock wall|cpu]``
"""

from __future__ import annotations

import statistics

import torch

from bench_model import interleaved_seconds, paired_ratio, parse_timing
from gpu_check import _random_batch, config_step
from hopose import train as train_module
from hopose.config import load_config
from hopose.configs import config_path


def main() -> None:
    args, timing = parse_timing(__doc__, repeats=10, unit="steps")
    device = torch.device("cpu")
    cfg = load_config(config_path("synthetic", "encoder"))
    size, small = cfg.data.image_size, cfg.optim.progressive_size
    batch = _random_batch(cfg.optim.batch_size, size, device)
    torch.manual_seed(0)
    cases = {size: config_step(cfg, batch), small: config_step(cfg, batch, epoch=0)}
    amp = train_module.amp_active(device, cfg.optim.amp)
    print(
        f"synthetic/encoder stage, batch {cfg.optim.batch_size}, {'bf16' if amp else 'fp32'}, "
        f"{torch.get_num_threads()} threads, {args.clock} clock, "
        f"{args.rounds} rounds of {args.repeats} steps\n"
    )
    print(f"| epoch shows | ms a step | images/s | vs {size} px |")
    print("|---|---|---|---|")
    seconds = interleaved_seconds(cases, device=device, **timing)
    for shown, times in seconds.items():
        step = statistics.median(times)
        print(
            f"| {shown} px | {1000 * step:.1f} | {cfg.optim.batch_size / step:.0f} "
            f"| {paired_ratio(times, seconds[size]):.2f}x |"
        )


if __name__ == "__main__":
    main()
