"""Draw docs/grasp_stats.png: each statistic's synthetic percentiles against FPHA-HO's.

One row per statistic of ``hopose synth --stats``; each compared percentile is a dot at
(synthetic − FPHA-HO) / tolerance, so the shaded band [−1, 1] is "within tolerance".

Usage: ``python docs/grasp_stats_figure.py [--out docs/grasp_stats.png] [--num 4096] [--seed 0]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hopose.cli import at_least
from hopose.data.grasp_stats import compare
from hopose.data.grasps import generate_grasps
from hopose.viz import DPI, save_figure

MARKERS = {5: "<", 25: "o", 50: "s", 75: "o", 95: ">", None: "D"}
LIMIT = 6.0  # tolerances shown either side; farther dots sit on the edge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("grasp_stats.png")))
    parser.add_argument("--num", type=at_least(1), default=4096)
    parser.add_argument("--seed", type=at_least(0), default=0)
    args = parser.parse_args()
    grasps = generate_grasps(args.seed, np.arange(args.num))
    rows = compare(grasps.hand_3d, grasps.object)
    names = list(dict.fromkeys(row.name for row in rows))
    fig = Figure(figsize=(8, 0.16 * len(names) + 1.2), dpi=DPI)
    ax = fig.add_subplot()
    ax.axvspan(-1, 1, color="0.85")
    for row in rows:
        y = names.index(row.name)
        x = np.clip((row.synthetic - row.real) / row.tolerance, -LIMIT, LIMIT)
        colour = "tab:blue" if row.passed else "tab:red"
        ax.scatter(x, y, marker=MARKERS[row.percentile], color=colour, s=14)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(-LIMIT - 0.3, LIMIT + 0.3)
    ax.set_xlabel("(synthetic − FPHA-HO) / tolerance  (grey: within; < > p5/p95, o p25/p75, □ p50)")
    fig.tight_layout()
    print(save_figure(fig, args.out))


if __name__ == "__main__":
    main()
