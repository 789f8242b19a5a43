"""The lifter's noise curve: 3D error when ground-truth 2D carries Gaussian noise.

Feeds the synthetic test split's ground-truth 2D plus i.i.d. Gaussian noise of standard deviation
sigma = 0, 1, 2, 4 and 8 % of the image side (one draw, seed 0) to a checkpoint's lifter and
prints the mean hand and object errors in mm as a markdown table row per sigma.

Usage: ``python docs/lifter_noise_curve.py CHECKPOINT [--num 400] [--seed 0]``
"""

from __future__ import annotations

import argparse

import torch

from hopose.checkpoint import load_model
from hopose.cli import at_least, exit_on_user_error
from hopose.data import build_dataset, collate_samples
from hopose.skeleton import PART_NODES

SIGMAS = (0.0, 0.01, 0.02, 0.04, 0.08)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--num", type=at_least(1), default=400)
    parser.add_argument("--seed", type=at_least(0), default=0)
    args = parser.parse_args()
    exit_on_user_error(parser, lambda: noise_curve(args.checkpoint, args.num, args.seed))


def noise_curve(checkpoint: str, num: int, seed: int) -> None:
    """Print the table's rows for ``num`` test poses of the synthetic split of ``seed``."""
    # Ground-truth 2D in: the lifter alone must be trained, so a lifter-stage checkpoint will do.
    model, cfg = load_model(checkpoint, from_images=False)
    model.eval()
    size = cfg.data.image_size
    data = build_dataset(
        "synthetic", "test", image_size=size, num_samples=num, seed=seed,
        with_images=False,
    )  # fmt: skip
    batch = collate_samples([data[i] for i in range(len(data))])
    kp2d = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1)  # (M, 29, 2)
    gt = torch.cat([batch["hand_3d"], batch["obj_3d"]], dim=1)  # (M, 29, 3)
    noise = torch.randn(kp2d.shape, generator=torch.Generator().manual_seed(0))
    print("| sigma (% of side) | hand mm | object mm |\n|---|---|---|")
    for sigma in SIGMAS:
        with torch.inference_mode():
            pred = model.lifter(kp2d + noise * sigma * size, batch["K"])["kp3d"]
        error = (pred - gt).norm(dim=-1)  # (M, 29)
        hand, obj = (error[:, PART_NODES[p]].mean() for p in ("hand", "object"))
        print(f"| {100 * sigma:g} | {hand:.1f} | {obj:.1f} |")


if __name__ == "__main__":
    main()
