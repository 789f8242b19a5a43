"""Speed of the physical refinement (:func:`hopose.refine.refine_pose`, docs/evaluation.md), as
a ratio to the settings it had before its contact search was reused, timed in the same run.

One batch of ``--batch`` synthetic grasps (:func:`bench_eval.make_predictions`: predictions =
ground truth + ``--noise`` mm of Gaussian noise, their 2D the projections of the predictions),
float32, refined with:

- ``defaults``: :data:`hopose.refine.REFINE_WEIGHTS` (the affinity's contacts searched for
  every ``contact_every`` = 4 steps, one cuboid-fit alternation after each step);
- ``search every step``: the same 8 steps with the contacts searched for at every step and two
  fit alternations, the refinement as it was first written;
- ``grasp completion``: the defaults with ``complete_grasp`` (:mod:`hopose.grasp_completion`),
  whose box and push-out are computed for every frame whichever frames take them.

The cases alternate within each round (:func:`bench_model.interleaved_seconds`) and the ratio
is the median over rounds of the two cases' times in the same round, so that a shared machine
slows both alike; compare the ratio, not the times. ``--clock cpu`` counts this process's CPU
time instead: with one thread, on a machine shared with other jobs, close to an idle machine's
wall time.

Usage: ``python benchmarks/bench_refine.py [--batch 1024] [--rounds 7] [--threads T]
[--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import dataclasses
import platform

import numpy as np
import torch

from bench_eval import make_predictions
from bench_model import CLOCKS, interleaved_seconds, paired_ratio
from hopose.cli import at_least
from hopose.refine import REFINE_WEIGHTS, refine_pose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batch", type=at_least(1), default=1024)
    parser.add_argument("--noise", type=float, default=20.0, help="prediction noise, mm")
    parser.add_argument("--rounds", type=at_least(1), default=7)
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    arrays = make_predictions(args.batch, args.noise)

    def joined(*keys: str) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([arrays[key] for key in keys], axis=1)).float()

    hand, obj, K = joined("pred_hand_3d"), joined("pred_obj_3d"), joined("K")
    kp2d = joined("pred_hand_2d", "pred_obj_2d")  # (B, 29, 2)
    every_step = dataclasses.replace(REFINE_WEIGHTS, contact_every=1, fit_iterations=2)
    completing = dataclasses.replace(REFINE_WEIGHTS, complete_grasp=True)
    cases = {
        "defaults": lambda: refine_pose(hand, obj, kp2d, K),
        "search every step": lambda: refine_pose(hand, obj, kp2d, K, every_step),
        "grasp completion": lambda: refine_pose(hand, obj, kp2d, K, completing),
    }
    samples = interleaved_seconds(
        cases, rounds=args.rounds, repeats=1, device=torch.device("cpu"), clock=CLOCKS[args.clock]
    )

    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, {args.clock} clock; batch {args.batch}, float32, "
        f"{REFINE_WEIGHTS.steps} steps, best of {args.rounds} interleaved rounds"
    )
    print()
    print("| case | ms per frame (best round) | x defaults (median of rounds) |")
    print("|---|---:|---:|")
    for name, seconds in samples.items():
        ratio = paired_ratio(seconds, samples["defaults"])
        print(f"| {name} | {min(seconds) * 1e3 / args.batch:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
