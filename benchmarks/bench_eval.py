"""What scoring an evaluation costs: every metric of ``hopose eval`` on ``--num`` frames.

The frames are synthetic grasps (:func:`hopose.data.grasps.generate_grasps`, free frames
included) with predictions = ground truth + Gaussian noise (``--noise`` mm on every joint and
corner), projected with the synthetic camera for the 2D columns. Timed: building the per-frame
table (:func:`hopose.scoring.frame_metrics`: accuracy, 2D, and the plausibility of the
predicted and the ground-truth poses, grasp quality included) and its summary, with the
grasp-quality hulls over ``--workers`` processes (default: every core), and with
``--no-plausibility`` as ``hopose eval --no-plausibility`` runs it. ``--baseline`` also times,
in the same run and with the same workers, the scoring as it was before the subset hulls: the
force-closure linear programme, then one hull of all the wrenches with Qhull's default options
(tests/physics_reference.py ``hull_epsilon_naive``), and reports the ratios (the medians of the
per-round ratios) and the largest difference of any frame's epsilon. After one untimed call of
each, the cases alternate over ``--rounds`` rounds, one call each, in reverse order every other
round (``bench_model``'s ``interleaved_seconds``); times are medians over the rounds.

The machine this runs on may be shared: besides wall time it reports the CPU seconds spent in
this process (the contact search, the LP and hulls it keeps) and in the worker processes (the
hulls), from which the wall time on idle cores follows.

Usage: ``python benchmarks/bench_eval.py [--num 5000] [--noise 10] [--workers N] [--baseline]
[--rounds 3]``
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_model import interleaved_seconds, paired_ratio
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
EVERY, PREVIOUS = "every metric", "previous epsilon (LP + one default hull)"


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


def _clock() -> np.ndarray:
    """Wall seconds, and CPU seconds (user + system) of this process and of its finished child
    processes (the hull workers, joined before each scoring returns)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return np.array(
        [time.perf_counter(), own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=at_least(1), default=5000, help="frames")
    parser.add_argument("--noise", type=float, default=10.0, help="prediction noise, mm")
    parser.add_argument("--workers", type=at_least(0), default=None, help="default: every core")
    parser.add_argument("--baseline", action="store_true", help="also time the previous scoring")
    parser.add_argument("--rounds", type=at_least(1), default=3, help="after an untimed call")
    args = parser.parse_args()
    workers = default_workers() if args.workers is None else args.workers
    predictions = make_predictions(args.num, args.noise)
    columns: dict[str, dict[str, np.ndarray]] = {}  # each case's per-frame table, last call's

    def scoring(name: str, **kwargs) -> Callable[[], None]:
        def run() -> None:
            columns[name] = frame_metrics(predictions, **kwargs)
            summarize(columns[name])

        return run

    def previous_scoring() -> None:
        with mock.patch.object(plausibility, "epsilon_quality", previous_epsilon):
            scoring(PREVIOUS, workers=workers)()

    cases = {
        EVERY: scoring(EVERY, workers=workers),
        "--no-plausibility": scoring("--no-plausibility", plausibility=False),
    }
    if args.baseline:
        cases[PREVIOUS] = previous_scoring
    readings = interleaved_seconds(
        cases, rounds=args.rounds, repeats=1, device=torch.device("cpu"), clock=_clock
    )

    print(
        f"{platform.machine()}, torch {torch.__version__}, {workers} workers, {args.num} frames, "
        f"medians of {args.rounds} rounds"
    )
    print("| case | wall | CPU in this process | CPU in workers | wall per frame |")
    print("|---|---|---|---|---|")
    for name, rounds in readings.items():
        wall, own, workers_cpu = np.median(rounds, axis=0)
        print(
            f"| {name} | {wall:.1f} s | {own:.1f} s | {workers_cpu:.1f} s "
            f"| {1000 * wall / args.num:.2f} ms |"
        )
    if args.baseline:
        now, old = columns[EVERY], columns[PREVIOUS]
        keys = (plausibility_key("pred", GRASP_EPSILON), plausibility_key("gt", GRASP_EPSILON))
        diff = max(np.abs(now[k] - old[k]).max() for k in keys)
        flips = sum(int(((now[k] > 0) != (old[k] > 0)).sum()) for k in keys)
        old_rounds, now_rounds = (np.array(readings[name]) for name in (PREVIOUS, EVERY))
        wall = paired_ratio(old_rounds[:, 0].tolist(), now_rounds[:, 0].tolist())
        cpu = paired_ratio(old_rounds[:, 1:].sum(1).tolist(), now_rounds[:, 1:].sum(1).tolist())
        print(
            f"previous / now: {wall:.2f}x wall, {cpu:.2f}x CPU; "
            f"largest epsilon difference {diff:.1e}, force-closure flips {flips}"
        )
    summary = summarize(columns[EVERY])
    pred, gt = (summary[plausibility_key(who, FORCE_CLOSURE)] for who in ("pred", "gt"))
    print(f"force closure: pred {pred:.3f}, gt {gt:.3f}")


if __name__ == "__main__":
    main()
