"""Adam's implementations in the demo's encoder stage, against torch's default, in one run.

The image stages train with ``hopose.train.make_optimizer``: Adam with the fused kernel, which
updates every parameter in one pass. The baseline is ``torch.optim.Adam`` as torch builds it by
default on the CPU, one loop over the parameters with several tensor operations each; torch's
``foreach`` variant (one operation over all parameters at a time) is timed beside them.

The network is the synthetic demo's encoder stage (``synthetic/encoder``: heat-map head,
refinement GCN, 64 px, batch 32, bfloat16 autocast where the CPU has bf16 instructions,
channels-last) with the whole ResNet18 (``model.backbone_stages=4``; the demo keeps two of its
residual stages), on a random batch already in memory. Two measurements per implementation:

- ``step()`` alone, the gradients of one backward pass kept;
- a whole training step through ``hopose.train.train_one_epoch`` (forward, the stage's loss
  terms, backward, ``step()``), which is what the demo's encoder stage repeats.

Cases alternate over ``--rounds`` rounds of ``--repeats`` calls (``bench_model``'s
``interleaved_seconds``); each ratio is the median of the per-round ratios against the default.
Goal: the fused Adam's training step faster than the default's.

Usage: ``python benchmarks/bench_optimizer.py [--rounds 5] [--repeats 20] [--threads N]
[--clock wall|cpu]``
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable

import torch

from bench_model import interleaved_seconds, paired_ratio, parse_timing
from gpu_check import _random_batch
from hopose import train as train_module
from hopose.config import load_config
from hopose.configs import config_path
from hopose.models import build_model
from hopose.stages import STAGES

CASES: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "torch default (per-tensor loop)": lambda params, optim: torch.optim.Adam(
        params, lr=optim.lr, weight_decay=optim.weight_decay
    ),
    "foreach": lambda params, optim: torch.optim.Adam(
        params, lr=optim.lr, weight_decay=optim.weight_decay, foreach=True
    ),
    "fused (make_optimizer)": train_module.make_optimizer,
}


def main() -> None:
    args, timing = parse_timing(__doc__, repeats=20, unit="calls")
    device = torch.device("cpu")
    # The whole ResNet18, as BENCHMARKS.md measured it (the demo now keeps two of its stages).
    cfg = load_config(config_path("synthetic", "encoder"), ["model.backbone_stages=4"])
    stage = STAGES[cfg.stage]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random backbone: timing only
        model = build_model(cfg.model)
    model.to(device, memory_format=train_module.memory_format(stage))
    module = train_module.stage_module(model, stage)
    batch = _random_batch(cfg.optim.batch_size, cfg.data.image_size, device)
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    parts = tuple(model.lifter.parts)
    optimizers = {name: make(module.parameters(), cfg.optim) for name, make in CASES.items()}
    default = next(iter(CASES))

    def training_step(optimizer: torch.optim.Optimizer) -> Callable[[], object]:
        # In the first epoch at data.image_size: the progressive epochs before it read less.
        return lambda: train_module.train_one_epoch(
            module, [batch], optimizer, scaler, cfg,
            parts=parts, device=device, epoch=cfg.optim.progressive_epochs, show_progress=False,
        )  # fmt: skip

    def adam_step(optimizer: torch.optim.Optimizer) -> Callable[[], object]:
        return optimizer.step

    amp = train_module.amp_active(device, cfg.optim.amp)
    print(
        f"synthetic/encoder stage, batch {cfg.optim.batch_size}, {cfg.data.image_size} px, "
        f"{'bf16' if amp else 'fp32'}, {torch.get_num_threads()} threads, {args.clock} clock, "
        f"{args.rounds} rounds of {args.repeats} calls\n"
    )
    print("| measured | Adam | ms | vs default |")
    print("|---|---|---|---|")
    # The step()-alone row steps on the gradients one training step leaves in place.
    training_step(optimizers[default])()
    for what, make_step in (("step()", adam_step), ("training step", training_step)):
        cases = {name: make_step(optimizer) for name, optimizer in optimizers.items()}
        seconds = interleaved_seconds(cases, device=device, **timing)
        for name, times in seconds.items():
            ratio = paired_ratio(times, seconds[default])
            print(f"| {what} | {name} | {1000 * statistics.median(times):.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
