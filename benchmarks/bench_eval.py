"""What scoring an evaluation costs: every metric of ``hopose eval`` on ``--num`` frames.

The frames are synthetic grasps (:func:`hopose.data.grasps.generate_grasps`, free frames
included) with predictions = ground truth + Gaussian noise (``--noise`` mm on every joint and
corner), projected with the synthetic camera for the 2D columns. Timed: building the per-frame
table once (:func:`hopose.scoring.frame_metrics`: accuracy, 2D, and the plausibility of the
predicted and the ground-truth poses, grasp quality included) and its summary, with the
grasp-quality hulls over ``--workers`` processes (default: every core), and with
``--no-plausibility`` as ``hopose eval --no-plausibility`` runs it. ``--baseline`` also times,
in the same run and with the same workers, the scoring as it was before the subset hulls: the
force-closure linear programme, then one hull of all the wrenches with Qhull's default options
(tests/physics_reference.py ``hull_epsilon_naive``), and reports the ratios and the largest
difference of any frame's epsilon.

The machine this runs on may be shared: besides wall time it reports the CPU seconds spent in
this process (the contact search, the LP and hulls it keeps) and in the worker processes (the
hulls), from which the wall time on idle cores follows.

Usage: ``python benchmarks/bench_eval.py [--num 5000] [--noise 10] [--workers N] [--baseline]``
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hopose import plausibility
from hopose.cli import at_least
from hopose.data.grasps import generate_grasps
from hopose.geometry import project_points
from hopose.plausibility import default_workers
from hopose.scoring import (
    FORCE_CLOSURE,
    GRASP_EPSILON,
    frame_metrics,
    plausibility_key,
    summarize,
)
from physics_reference import hull_epsilon_naive

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


def previous_epsilon(wrenches: np.ndarray) -> float:
    """``epsilon_quality`` before the subset hulls: the LP, then one default hull of all W."""
    return hull_epsilon_naive(wrenches) if plausibility._strictly_contains_origin(wrenches) else 0.0


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _timed(
    name: str, predictions: dict[str, np.ndarray], **kwargs
) -> tuple[dict[str, np.ndarray], float, float]:
    """The per-frame columns, wall seconds and CPU seconds (here + workers); prints a table row."""
    num = len(predictions["id"])
    start, cpu = time.perf_counter(), _cpu_seconds()
    columns = frame_metrics(predictions, **kwargs)
    summarize(columns)
    seconds = time.perf_counter() - start
    own, workers_cpu = (b - a for a, b in zip(cpu, _cpu_seconds(), strict=True))
    print(
        f"| {name} | {seconds:.1f} s | {own:.1f} s | {workers_cpu:.1f} s "
        f"| {1000 * seconds / num:.2f} ms |"
    )
    return columns, seconds, own + workers_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=at_least(1), default=5000, help="frames")
    parser.add_argument("--noise", type=float, default=10.0, help="prediction noise, mm")
    parser.add_argument("--workers", type=at_least(0), default=None, help="default: every core")
    parser.add_argument("--baseline", action="store_true", help="also time the previous scoring")
    args = parser.parse_args()
    workers = default_workers() if args.workers is None else args.workers
    predictions = make_predictions(args.num, args.noise)

    print(f"{platform.machine()}, torch {torch.__version__}, {workers} workers, {args.num} frames")
    print("| case | wall | CPU in this process | CPU in workers | wall per frame |")
    print("|---|---|---|---|---|")
    columns, seconds, cpu = _timed("every metric", predictions, workers=workers)
    _timed("--no-plausibility", predictions, plausibility=False)
    if args.baseline:
        with mock.patch.object(plausibility, "epsilon_quality", previous_epsilon):
            old, old_seconds, old_cpu = _timed(
                "previous epsilon (LP + one default hull)", predictions, workers=workers
            )
        keys = (plausibility_key("pred", GRASP_EPSILON), plausibility_key("gt", GRASP_EPSILON))
        diff = max(np.abs(columns[k] - old[k]).max() for k in keys)
        flips = sum(int(((columns[k] > 0) != (old[k] > 0)).sum()) for k in keys)
        print(
            f"previous / now: {old_seconds / seconds:.2f}x wall, {old_cpu / cpu:.2f}x CPU; "
            f"largest epsilon difference {diff:.1e}, force-closure flips {flips}"
        )
    summary = summarize(columns)
    pred, gt = (summary[plausibility_key(who, FORCE_CLOSURE)] for who in ("pred", "gt"))
    print(f"force closure: pred {pred:.3f}, gt {gt:.3f}")


if __name__ == "__main__":
    main()
