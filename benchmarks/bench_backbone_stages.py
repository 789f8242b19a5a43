"""The demo's image stages with the ResNet cut after fewer residual stages, in one run.

``model.backbone_stages`` keeps the first 1-4 of the ResNet's residual stages (4, the whole
network, is the paper's). At the synthetic demo's 64 px, ResNet18's layer4 works on 2 × 2 maps
but holds three quarters of its weights, whose optimiser update, bfloat16 casts and gradients
cost a CPU about as much as its convolutions. The benchmark times one training step of the
demo's encoder and end-to-end stages (``synthetic/encoder`` and ``synthetic/end2end``: ResNet18,
heat-map head, refinement GCN, 64 px, batch 32, bf16 autocast where the CPU has bf16
instructions, channels-last, fused Adam) through ``hopose.train.train_one_epoch`` on a random
batch in memory, with 4, 3 and 2 stages.

Cases alternate over ``--rounds`` rounds of ``--repeats`` steps (``bench_model``'s
``interleaved_seconds``); each ratio is the median of the per-round ratios against 4 stages.
Goal: 2 stages (the demo's) at most 0.6× the whole network's step, which is what lets the demo train
on twice as many images in the same time (docs/training.md).

Usage: ``python benchmarks/bench_backbone_stages.py [--rounds 5] [--repeats 10] [--threads N]
[--clock wall|cpu]``
"""

from __future__ import annotations

import statistics
import warnings

import torch

from bench_model import interleaved_seconds, paired_ratio, parse_timing
from gpu_check import _random_batch, config_step
from hopose import train as train_module
from hopose.config import load_config
from hopose.configs import config_path
from hopose.models import build_model

STAGE_COUNTS = (4, 3, 2)


def main() -> None:
    args, timing = parse_timing(__doc__, repeats=10, unit="steps")
    device = torch.device("cpu")
    print(
        f"{torch.get_num_threads()} threads, {args.clock} clock, "
        f"{args.rounds} rounds of {args.repeats} steps\n"
    )
    print("| stage | residual stages | weights | ms a step | images/s | vs 4 stages |")
    print("|---|---|---|---|---|---|")
    for stage in ("encoder", "end2end"):
        cases, weights = {}, {}
        for count in STAGE_COUNTS:
            cfg = load_config(config_path("synthetic", stage), [f"model.backbone_stages={count}"])
            batch = _random_batch(cfg.optim.batch_size, cfg.data.image_size, device)
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # random backbone: timing only
                cases[count] = config_step(cfg, batch)
                encoder = build_model(cfg.model).encoder
            weights[count] = sum(p.numel() for p in encoder.parameters())
        amp = train_module.amp_active(device, cfg.optim.amp)
        seconds = interleaved_seconds(cases, device=device, **timing)
        for count, times in seconds.items():
            ratio = paired_ratio(times, seconds[STAGE_COUNTS[0]])
            step = statistics.median(times)
            print(
                f"| {stage} ({'bf16' if amp else 'fp32'}) | {count} | {weights[count] / 1e6:.1f} M "
                f"| {1000 * step:.1f} | {cfg.optim.batch_size / step:.0f} | {ratio:.2f}x |"
            )


if __name__ == "__main__":
    main()
