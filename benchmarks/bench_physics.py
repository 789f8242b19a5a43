"""Speed of the physical affinity loss (docs/conventions.md §2), as ratios to baselines timed in
the same run.

Cases, all on one batch of random grasps (tests/physics_reference.py ``random_grasps``: random
boxes, some joints 0.5-15 mm outside the faces, the rest away from the box), float32:

- ``cdist floor``: ``torch.cdist`` of the 21 joints to the 6 N^2 face points (face points made
  beforehand), forward only: the distance computation the loss cannot avoid.
- ``loss fwd+bwd``: ``physical_affinity_loss(hand, obj)`` with ``reduction="mean"`` and its
  backward to the corners.
- ``per-sample loop``: the same forward and backward called once per sample (B = 1) in a Python
  loop over the batch, summed per batch.
- ``naive reference``: ``physical_affinity_loss_naive`` from tests/physics_reference.py, the
  per-sample, per-joint, per-face Python loop of the tests (forward only, float64), timed on
  the first ``--naive-samples`` samples and scaled to the whole batch.

Timings are interleaved over ``--rounds`` rounds and each case reports its fastest round (as
``timeit`` does: other jobs on the machine only ever add time), so that a shared machine slows
all cases alike; compare the ratios, not the times.

Usage: ``python benchmarks/bench_physics.py [--batch 256] [--rounds 5] [--device cpu]
[--threads T]``
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_model import usable_device
from hopose.cli import at_least
from hopose.geometry import sample_face_points
from hopose.physics import N_SAMPLES, physical_affinity_loss
from physics_reference import physical_affinity_loss_naive, random_grasps


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn``, averaged over ``repeats`` back-to-back calls."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batch", type=at_least(1), default=256)
    parser.add_argument("--rounds", type=at_least(1), default=5)
    parser.add_argument("--naive-samples", type=at_least(1), default=4)
    parser.add_argument("--device", type=usable_device, default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    generator = torch.Generator().manual_seed(args.seed)
    counts = torch.randint(0, 22, (args.batch,), generator=generator).tolist()
    hand64, obj64 = random_grasps(generator, counts)
    hand, obj = hand64.float().to(device), obj64.float().to(device)
    face_points = sample_face_points(obj, N_SAMPLES).flatten(1, 2)  # (B, 6 * N^2, 3)

    def floor() -> None:
        torch.cdist(hand, face_points)

    def batched() -> None:
        corners = obj.detach().requires_grad_(True)
        physical_affinity_loss(hand, corners, n_samples=N_SAMPLES).backward()

    def per_sample() -> None:
        for b in range(args.batch):
            corners = obj[b : b + 1].detach().requires_grad_(True)
            physical_affinity_loss(hand[b : b + 1], corners, n_samples=N_SAMPLES).backward()

    n_naive = min(args.naive_samples, args.batch)
    naive_hand, naive_obj = hand64[:n_naive].numpy(), obj64[:n_naive].numpy()

    def naive() -> None:
        physical_affinity_loss_naive(naive_hand, naive_obj, n_samples=N_SAMPLES)

    # (name, function, calls per timing, factor from a call to one batch)
    cases = [
        ("cdist floor", floor, 20, 1.0),
        ("loss fwd+bwd", batched, 10, 1.0),
        ("per-sample loop", per_sample, 1, 1.0),
        ("naive reference", naive, 1, args.batch / n_naive),
    ]
    for _, fn, _, _ in cases:
        fn()  # warm-up: allocator, lazy initialisation, CUDA kernels
    times: dict[str, list[float]] = {name: [] for name, *_ in cases}
    for _ in range(args.rounds):
        for name, fn, repeats, factor in cases:
            times[name].append(_timed(fn, device, repeats) * factor)
    best = {name: min(values) for name, values in times.items()}

    valid = sum(count >= 2 for count in counts)
    print(
        f"machine: {_cpu_name()}, {torch.get_num_threads()} torch threads, device {device}, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )
    print(
        f"batch {args.batch}, float32, N = {N_SAMPLES} ({6 * N_SAMPLES**2} face points), "
        f"best of {args.rounds} interleaved rounds; {valid} samples with >= 2 touching joints"
    )
    print()
    print("| case | ms per batch | x cdist floor | loss speed-up |")
    print("|---|---:|---:|---:|")
    loss_time = best["loss fwd+bwd"]
    for name, *_ in cases:
        seconds = best[name]
        floor_ratio, speed_up = seconds / best["cdist floor"], seconds / loss_time
        print(f"| {name} | {seconds * 1e3:.2f} | {floor_ratio:.2f} | {speed_up:.1f} |")


if __name__ == "__main__":
    main()
