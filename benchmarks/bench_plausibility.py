"""What the physical-plausibility metrics cost per pose, as ratios to the contact search.

The poses are ``--num`` synthetic grasps (:func:`hopose.data.grasps.generate_grasps`, free
frames included), in one batch. Cases, each timed over all poses:

- ``contact search``: :func:`hopose.physics.contact_points` (the baseline, batched);
- ``contact normals``: :func:`hopose.plausibility.contact_normals`;
- ``penetration``: :func:`hopose.plausibility.penetration_depth`;
- ``grasp quality, E edges``: :func:`hopose.plausibility.grasp_quality` with friction pyramids
  of E edges (6-D convex hulls of subsets of the wrenches per pose, docs/evaluation.md; E = 8
  is what reports use).

After one untimed call of each, the cases alternate over ``--rounds`` rounds, in reverse order
every other round (``bench_model``'s ``interleaved_seconds``), and each reports its median, so a
machine shared with other jobs slows all cases alike; compare the ratios, not the times.

Usage: ``python benchmarks/bench_plausibility.py [--num 256] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
from collections.abc import Callable

import numpy as np
import torch

from bench_model import interleaved_seconds
from hopose.cli import at_least
from hopose.data.grasps import generate_grasps
from hopose.geometry import box_axes
from hopose.physics import contact_points
from hopose.plausibility import contact_normals, grasp_quality, penetration_depth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=at_least(1), default=256, help="poses")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    args = parser.parse_args()

    grasps = generate_grasps(seed=0, indices=np.arange(args.num))
    hand = torch.from_numpy(grasps.hand_3d).double()
    obj = torch.from_numpy(grasps.obj_3d).double()
    pts, _, valid = contact_points(hand, obj)
    normals = contact_normals(pts, obj).numpy()
    centre = obj.mean(dim=-2)
    radius = torch.linalg.vector_norm(obj - centre[:, None], dim=-1).amax(dim=-1).numpy()
    axes = box_axes(obj)[0].numpy()  # as pose_plausibility orients the pyramids

    def quality(edges: int) -> Callable[[], object]:
        return lambda: grasp_quality(
            pts.numpy(),
            normals,
            valid.numpy(),
            centre.numpy(),
            n_edges=edges,
            length=radius,
            axes=axes,
        )

    cases: dict[str, Callable[[], object]] = {
        "contact search": lambda: contact_points(hand, obj),
        "contact normals": lambda: contact_normals(pts, obj),
        "penetration": lambda: penetration_depth(hand, obj),
        **{f"grasp quality, {e} edges": quality(e) for e in (4, 6, 8)},
    }
    times = interleaved_seconds(cases, rounds=args.rounds, repeats=1, device=torch.device("cpu"))

    print(f"{args.num} poses, {valid.sum(-1).double().mean():.1f} valid contacts on average;")
    print(f"{platform.machine()}, torch {torch.__version__}, {args.rounds} rounds, medians\n")
    base = statistics.median(times["contact search"])
    print("| case | ms per pose | ratio to contact search |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {1000 * median / args.num:.2f} | {median / base:.1f} |")


if __name__ == "__main__":
    main()
