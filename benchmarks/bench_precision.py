"""The demo's image stages in each precision and memory layout, on this CPU, in one run.

``hopose.train`` picks one way to run an image stage's step: channels-last tensors always
(``hopose.train.memory_format``) and, with ``optim.amp``, bfloat16 autocast on a CPU only where
it has bf16 instructions, float32 elsewhere (``hopose.train.amp_active``). This benchmark times
the four ways on this CPU, whatever it has: float32 or bf16 autocast (forced on, as if the CPU
had the instructions), channels-last or contiguous. Each case is one training step of the
demo's encoder and end-to-end stages (``synthetic/encoder`` and ``synthetic/end2end``: the first
two residual stages of ResNet18, heat-map head, refinement GCN, 64 px, batch 32, fused Adam)
through ``hopose.train.train_one_epoch`` on a random batch in memory.

Cases alternate over ``--rounds`` rounds of ``--repeats`` steps (``bench_model``'s
``interleaved_seconds``); each ratio is the median of the per-round ratios of a case's images/s
to those of float32 channels-last. Goal: the way ``hopose.train`` picks on this CPU (marked) is
the fastest of the four.

Usage: ``python benchmarks/bench_precision.py [--rounds 5] [--repeats 6] [--threads N]
[--clock wall|cpu]``
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from contextlib import ExitStack
from unittest import mock

import torch

from bench_model import interleaved_seconds, paired_ratio, parse_timing
from gpu_check import _random_batch, config_step
from hopose import train as train_module
from hopose.config import load_config
from hopose.configs import config_path

# name: (optim.amp, memory layout)
CASES = {
    "fp32, channels-last": (False, torch.channels_last),
    "fp32, contiguous": (False, torch.contiguous_format),
    "bf16 autocast, channels-last": (True, torch.channels_last),
    "bf16 autocast, contiguous": (True, torch.contiguous_format),
}
BASELINE = "fp32, channels-last"


def forced(amp: bool, layout: torch.memory_format) -> ExitStack:
    """A context in which ``hopose.train`` runs bf16 autocast whatever the CPU has (when
    ``amp``) and lays tensors out as ``layout``."""
    stack = ExitStack()
    stack.enter_context(mock.patch.object(train_module, "memory_format", return_value=layout))
    if amp:
        stack.enter_context(mock.patch.object(train_module, "cpu_has_bf16", return_value=True))
    return stack


def case_step(stage: str, amp: bool, layout: torch.memory_format) -> Callable[[], None]:
    """One training step of ``stage``'s demo config, built and run in ``forced(amp, layout)``."""
    cfg = load_config(config_path("synthetic", stage), [f"optim.amp={str(amp).lower()}"])
    batch = _random_batch(cfg.optim.batch_size, cfg.data.image_size, torch.device("cpu"))
    torch.manual_seed(0)
    with forced(amp, layout):
        step = config_step(cfg, batch)

    def run() -> None:
        with forced(amp, layout):
            step()

    return run


def main() -> None:
    args, timing = parse_timing(__doc__, repeats=6, unit="steps")
    device = torch.device("cpu")
    picked_amp = train_module.amp_active(device, True)
    picked = f"{'bf16 autocast' if picked_amp else 'fp32'}, channels-last"
    print(
        f"{torch.get_num_threads()} threads, {args.clock} clock, {args.rounds} rounds of "
        f"{args.repeats} steps; this CPU has bf16 instructions: {train_module.cpu_has_bf16()}\n"
    )
    print("| stage | precision, layout | ms a step | images/s | vs fp32 channels-last |")
    print("|---|---|---|---|---|")
    for stage in ("encoder", "end2end"):
        batch_size = load_config(config_path("synthetic", stage)).optim.batch_size
        cases = {name: case_step(stage, amp, layout) for name, (amp, layout) in CASES.items()}
        seconds = interleaved_seconds(cases, device=device, **timing)
        for name, times in seconds.items():
            step = statistics.median(times)
            speed = paired_ratio(seconds[BASELINE], times)  # images/s ratio = inverse time ratio
            mark = " (hopose.train's)" if name == picked else ""
            rate = batch_size / step
            print(f"| {stage} | {name}{mark} | {1000 * step:.1f} | {rate:.0f} | {speed:.2f}x |")


if __name__ == "__main__":
    main()
