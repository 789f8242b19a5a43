"""Speed of the networks, as ratios to baselines timed in the same run.

1. Inference throughput (images/s) of the full ``HoposeNet`` (ResNet encoder, refinement GCN,
   context-aware lifter, ``ModelConfig``'s hidden width) vs the bare torchvision ResNet of the
   same depth (with its classifier) on the same batch of ``--batch`` float images of ``--size``
   px, in eval mode under ``torch.inference_mode``. Goal: ratio ≥ 0.9 (the graph parts cost
   ≤ 10% on top of the backbone).
2. Training step time (forward, MSE of ``kp3d_init`` and ``kp3d``, backward, Adam step) of the
   ``ContextLifter`` (full, ``ModelConfig``'s hidden width and dropout) vs HOPE-Net's
   ``GraphUNet`` on a batch of ``--lifter-batch`` random 2D/3D poses; also the ContextLifter
   without dropout, whose random masks are a large part of a CPU step.

Cases are interleaved over ``--rounds`` rounds; times are medians over rounds and ratios the
median of the per-round ratios, so that a machine shared with other jobs slows the cases
compared alike. Compare the ratios, not the times.

On a busy shared CPU, ``--threads 1 --clock cpu`` (this process's CPU time) gives the
steadiest ratios.

Usage: ``python benchmarks/bench_model.py [--backbones resnet50 resnet18] [--batch 16]
[--lifter-batch 256] [--rounds 5] [--device cpu] [--threads N] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
import torchvision

from hopose.cli import at_least
from hopose.config import ModelConfig
from hopose.models import BACKBONES, ContextLifter, GraphUNet, HoposeNet, ImageEncoder
from hopose.skeleton import NUM_NODES

# The network the config builds by default: its hidden width and the context lifter's dropout.
HIDDEN, DROPOUT = ModelConfig().hidden, ModelConfig().dropout
# "cpu" counts only this process's CPU time: steadier than wall time on a machine that other
# jobs share, and meaningful with --threads 1 (idle-spinning worker threads would count too).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def usable_device(text: str) -> str:
    """argparse ``type=`` of ``--device``: a torch device this machine has, else a one-line
    usage error (torch's own errors come from deep in the first case, CUDA's over lines)."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r}") from None
    if device.type == "cuda" and not (
        torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    ):
        raise argparse.ArgumentTypeError(f"no such CUDA device on this machine: {text!r}")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected cpu or cuda[:N], got {text!r}")
    return text


# A clock's reading: seconds, or an array of several clocks read together (bench_eval.py's wall
# and CPU seconds), differenced and averaged alike.
Reading = TypeVar("Reading", float, np.ndarray)


def interleaved_seconds(
    cases: dict[str, Callable[[], object]],
    *,
    rounds: int,
    repeats: int,
    device: torch.device,
    clock: Callable[[], Reading] = time.perf_counter,
) -> dict[str, list[Reading]]:
    """Each case's seconds per call in each round (one warm-up call each first).

    The cases run in turn within a round, in reverse order every other round, so that a slow
    spell of a shared machine falls on all of them alike.
    """

    def run(fn: Callable[[], object], times: int) -> Reading:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = clock()
        for _ in range(times):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (clock() - start) / times

    for fn in cases.values():
        run(fn, 1)
    samples: dict[str, list[Reading]] = {name: [] for name in cases}
    names = list(cases)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            samples[name].append(run(cases[name], repeats))
    return samples


def parse_timing(
    doc: str, *, repeats: int, unit: str, threads: bool = True
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The command line of a CPU benchmark whose cases :func:`interleaved_seconds` alternates
    (``--rounds``, ``--repeats``, ``--threads``, ``--clock``): sets torch's threads, returns the
    options and the keyword arguments of :func:`interleaved_seconds` they ask for. Without
    ``threads`` there is no ``--threads``, for a benchmark that sets its own threads."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=at_least(1), default=5)
    parser.add_argument(
        "--repeats", type=at_least(1), default=repeats, help=f"{unit} per case per round"
    )
    if threads:
        parser.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    args = parser.parse_args()
    if threads and args.threads is not None:
        torch.set_num_threads(args.threads)
    return args, {"rounds": args.rounds, "repeats": args.repeats, "clock": CLOCKS[args.clock]}


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the ratio of two cases timed in the same round."""
    return statistics.median(n / d for n, d in zip(numerator, denominator, strict=True))


def pinhole(size: int, batch: int, device: torch.device) -> torch.Tensor:
    """(batch, 3, 3) intrinsics of a ``size`` px square image: focal ``size``, centred."""
    K = torch.tensor([[size, 0.0, size / 2], [0.0, size, size / 2], [0.0, 0.0, 1.0]])
    return K.to(device).expand(batch, 3, 3)


def bench_inference(backbone: str, args: argparse.Namespace, device: torch.device) -> str:
    """A markdown table row: images/s of the bare ResNet and of HoposeNet, and their ratio."""
    torch.manual_seed(args.seed)
    bare = getattr(torchvision.models, backbone)(weights=None).eval().to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random init is the point here
        encoder = ImageEncoder(backbone=backbone, weights_path=None, hidden=HIDDEN)
    lifter = ContextLifter(hidden=HIDDEN, dropout=DROPOUT, variant="full")
    model = HoposeNet(encoder=encoder, lifter=lifter).eval().to(device)
    images = torch.rand(args.batch, 3, args.size, args.size, device=device)
    K = pinhole(args.size, args.batch, device)
    with torch.inference_mode():
        seconds = interleaved_seconds(
            {"bare": lambda: bare(images), "model": lambda: model(images, K)},
            rounds=args.rounds,
            repeats=args.repeats,
            device=device,
            clock=CLOCKS[args.clock],
        )
    bare_ips = args.batch / statistics.median(seconds["bare"])
    model_ips = args.batch / statistics.median(seconds["model"])
    # Throughput ratio model / bare = time ratio bare / model.
    ratio = paired_ratio(seconds["bare"], seconds["model"])
    return f"| {backbone} | {bare_ips:.1f} | {model_ips:.1f} | {ratio:.3f} |"


def bench_lifter_training(args: argparse.Namespace, device: torch.device) -> str:
    """Markdown table rows: ms per training step of each lifter and its ratio to GraphUNet."""
    torch.manual_seed(args.seed)
    kp2d = torch.rand(args.lifter_batch, NUM_NODES, 2, device=device) * args.size
    kp3d = torch.randn(args.lifter_batch, NUM_NODES, 3, device=device) * 100
    kp3d[..., 2] += 400
    K = pinhole(args.size, args.lifter_batch, device)

    def step_fn(lifter: torch.nn.Module) -> Callable[[], object]:
        lifter.to(device).train()
        optimizer = torch.optim.Adam(lifter.parameters(), lr=1e-3, weight_decay=0.01)

        def step() -> None:
            out = lifter(kp2d, K)
            loss = (out["kp3d_init"] - kp3d).square().mean() + (out["kp3d"] - kp3d).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    lifters = {
        "GraphUNet": GraphUNet(),
        "ContextLifter": ContextLifter(hidden=HIDDEN, dropout=DROPOUT, variant="full"),
        "ContextLifter, dropout 0": ContextLifter(hidden=HIDDEN, dropout=0.0, variant="full"),
    }
    seconds = interleaved_seconds(
        {name: step_fn(lifter) for name, lifter in lifters.items()},
        rounds=args.rounds,
        repeats=args.repeats,
        device=device,
        clock=CLOCKS[args.clock],
    )
    rows = []
    for name, times in seconds.items():
        ms = 1000 * statistics.median(times)
        ratio = paired_ratio(times, seconds["GraphUNet"])
        params = sum(p.numel() for p in lifters[name].parameters())
        rows.append(f"| {name} | {params:,} | {args.lifter_batch} | {ms:.2f} | {ratio:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--backbones", nargs="+", choices=BACKBONES, default=["resnet50", "resnet18"]
    )
    parser.add_argument("--batch", type=at_least(1), default=16)
    parser.add_argument("--size", type=at_least(32), default=224)
    parser.add_argument("--lifter-batch", type=at_least(1), default=256)
    parser.add_argument("--rounds", type=at_least(1), default=5)
    parser.add_argument("--repeats", type=at_least(1), default=2, help="calls per case per round")
    parser.add_argument("--device", type=usable_device, default="cpu")
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu measures CPU work only: use it with --device cpu")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device {where}, {torch.get_num_threads()} torch threads of {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {args.rounds} rounds x {args.repeats} calls, "
        f"{args.clock} clock\n"
    )
    print(f"Inference, batch {args.batch}, {args.size} px, float32, torch.inference_mode:\n")
    print("| backbone | bare ResNet (img/s) | HoposeNet (img/s) | ratio |")
    print("|---|---|---|---|")
    for backbone in args.backbones:
        print(bench_inference(backbone, args, device), flush=True)
    print("\nLifter training step (forward, 3D MSE, backward, Adam):\n")
    print("| lifter | parameters | batch | step (ms) | ratio to GraphUNet |")
    print("|---|---|---|---|---|")
    print(bench_lifter_training(args, device))


if __name__ == "__main__":
    main()
