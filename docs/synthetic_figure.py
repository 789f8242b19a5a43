"""Draw docs/synthetic.png: synthetic samples of each grasp type with their annotations on top.

Usage: ``python docs/synthetic_figure.py [--out docs/synthetic.png] [--seed 0]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from matplotlib.figure import Figure

from hopose.cli import at_least
from hopose.data.synthetic import SyntheticHandObject
from hopose.viz import DPI, draw_pose, save_figure, show_image

KINDS = ("power", "pinch", "lateral", "free")
PER_KIND = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("synthetic.png")))
    parser.add_argument("--seed", type=at_least(0), default=0)
    args = parser.parse_args()
    poses = SyntheticHandObject(256, args.seed, with_images=False)
    # The first PER_KIND samples of each grasp type, found from the cheap pose-only records.
    chosen = {kind: [] for kind in KINDS}
    for index in range(len(poses)):
        kind = poses[index]["grasp"]
        if len(chosen[kind]) < PER_KIND:
            chosen[kind].append(index)
    dataset = SyntheticHandObject(256, args.seed)
    fig = Figure(figsize=(3 * PER_KIND * 1.1, 3 * len(KINDS)), dpi=DPI, layout="constrained")
    for row, kind in enumerate(KINDS):
        for col, index in enumerate(chosen[kind]):
            record = dataset[index]
            ax = fig.add_subplot(len(KINDS), PER_KIND, row * PER_KIND + col + 1)
            show_image(ax, record["image"], (224, 224))
            draw_pose(ax, record["hand_2d"], record["obj_2d"], "gt")
            ax.set_title(f"{kind}: {record['object']} (#{index})", fontsize=9)
            ax.set_axis_off()
    print(save_figure(fig, args.out))


if __name__ == "__main__":
    main()
