"""What scoring an evaluation costs: every metric of ``hopose eval`` on ``--num`` frames.

The frames are synthetic grasps (:func:`hopose.data.synthetic.generate_grasps`, free frames
included) with predictions = ground truth + Gaussian noise (``--noise`` mm on every joint and
corner), projected with the synthetic camera for the 2D columns. Timed: building the per-frame
table once (:func:`hopose.scoring.frame_metrics`: accuracy, 2D, and the plausibility of the
predicted and the ground-truth poses, grasp quality included) and its summary, with the
grasp-quality hulls over ``--workers`` processes (default: every core), and with
``--no-plausibility`` as ``hopose eval --no-plausibility`` runs it. ``--baseline`` also times
the scoring as it was before the force-closure test and the process pool: one process, a hull
for every grasp whose contacts have two or more normals (the same numbers, checked).

The machine this runs on may be shared: besides wall time it reports the CPU seconds spent in
this process (the contact search, the LP and hulls it keeps) and in the worker processes (the
hulls), from which the wall time on idle cores follows.

Usage: ``python benchmarks/bench_eval.py [--num 5000] [--noise 10] [--workers N]``
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from unittest import mock

import numpy as np
import torch

from hopose import plausibility
from hopose.data.synthetic import generate_grasps
from hopose.geometry import project_points
from hopose.plausibility import default_workers
from hopose.scoring import frame_metrics, summarize

# A 224 x 224 network image seen through a 200 px focal length.
K = np.array([[200.0, 0.0, 112.0], [0.0, 200.0, 112.0], [0.0, 0.0, 1.0]])


def make_predictions(num: int, noise: float) -> dict[str, np.ndarray]:
    grasps = generate_grasps(seed=0, indices=np.arange(num))
    rng = np.random.default_rng(0)
    arrays = {"id": np.array([f"frame{k}" for k in range(num)]), "K": np.repeat(K[None], num, 0)}
    for part, gt in (("hand", grasps.hand_3d), ("obj", grasps.obj_3d)):
        pred = gt + noise * rng.standard_normal(gt.shape)
        for who, points in (("pred", pred), ("gt", gt)):
            arrays[f"{who}_{part}_3d"] = points
            arrays[f"{who}_{part}_2d"] = project_points(
                torch.from_numpy(points), torch.from_numpy(K)
            ).numpy()
    return arrays


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=5000, help="frames")
    parser.add_argument("--noise", type=float, default=10.0, help="prediction noise, mm")
    parser.add_argument("--workers", type=int, default=None, help="default: every core")
    parser.add_argument("--baseline", action="store_true", help="also time the old scoring")
    args = parser.parse_args()
    workers = default_workers() if args.workers is None else args.workers
    predictions = make_predictions(args.num, args.noise)

    print(f"{platform.machine()}, torch {torch.__version__}, {workers} workers, {args.num} frames")
    summaries = {}
    for name, kwargs in (
        ("every metric", {"plausibility": True, "workers": workers}),
        ("--no-plausibility", {"plausibility": False}),
    ):
        start, cpu = time.perf_counter(), _cpu_seconds()
        summaries[name] = summarize(frame_metrics(predictions, **kwargs))
        seconds = time.perf_counter() - start
        own, workers_cpu = (b - a for a, b in zip(cpu, _cpu_seconds(), strict=True))
        print(
            f"| {name} | {seconds:.1f} s wall | {own:.1f} s CPU here | {workers_cpu:.1f} s CPU in "
            f"worker processes | {1000 * seconds / args.num:.2f} ms/frame |"
        )
    if args.baseline:
        start = time.perf_counter()
        with mock.patch.object(plausibility, "_strictly_contains_origin", lambda w: True):
            old = summarize(frame_metrics(predictions, workers=1))
        seconds = time.perf_counter() - start
        per_frame = 1000 * seconds / args.num
        print(f"| baseline: 1 process, no LP | {seconds:.1f} s | {per_frame:.2f} ms/frame |")
        assert all(np.isclose(old[k], summaries["every metric"][k]) for k in old)
    full = summaries["every metric"]
    print(
        f"force closure: pred {full['pred_force_closure']:.3f}, gt {full['gt_force_closure']:.3f}"
    )


if __name__ == "__main__":
    main()
