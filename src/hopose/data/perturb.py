"""Ground-truth 2D keypoints perturbed the way an image encoder errs, for training the lifter.

The paper trains the lifter on ground-truth 2D (§4.3) and then feeds it the encoder's
predictions. A lifter that has only seen exact 2D amplifies every 2D error (docs/from_pixels.md,
the noise curve). :func:`perturb_keypoints` imitates three kinds of encoder error:

- jitter: Gaussian noise on every keypoint, its standard deviation drawn per sample uniformly
  in [0, ``sigma``] (so the lifter sees clean and noisy inputs alike and stays accurate on
  both);
- outliers: with probability ``outlier_prob`` a keypoint is displaced by Gaussian noise of
  standard deviation ``outlier_sigma`` (a joint put on the wrong finger, a corner on the
  wrong edge);
- dropped keypoints: with probability ``drop_prob`` a keypoint is replaced by the mean of its
  part's keypoints, what a heat-map head predicts when it sees nothing (a flat map's
  expectation sits in the middle of the evidence).

Lengths are fractions of the image side, so one setting serves every image size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from hopose.skeleton import NUM_JOINTS, PART_SLICES

if TYPE_CHECKING:
    from hopose.config import PerturbConfig


def perturb_keypoints(
    kp2d: Tensor,
    *,
    image_size: float,
    sigma: float = 0.0,
    outlier_prob: float = 0.0,
    outlier_sigma: float = 0.0,
    drop_prob: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Perturb 2D keypoints of hand joints and box corners (see the module docstring).

    Args:
        kp2d: (B, 29, 2) pixels, hand joints then box corners.
        image_size: the image side in pixels; the lengths below are fractions of it.
        sigma: largest per-sample jitter standard deviation (fraction of the side).
        outlier_prob: probability of each keypoint being an outlier.
        outlier_sigma: outliers' displacement standard deviation (fraction of the side).
        drop_prob: probability of each keypoint being replaced by its part's mean (the mean of
            the jittered keypoints, outliers included: where the encoder would put a keypoint
            it cannot see).
        generator: torch generator of the random numbers (None: torch's default one of
            ``kp2d``'s device); a generator of another device than ``kp2d``'s draws there, and
            the numbers are copied.

    Returns:
        (B, 29, 2) perturbed keypoints; ``kp2d`` itself when every probability and sigma is 0.
    """
    if sigma == 0 and outlier_prob == 0 and drop_prob == 0:
        return kp2d

    # Drawn on the keypoints' device by its own generator (a GPU's is seeded by torch.manual_seed
    # with the CPU's): draws made on the CPU and moved were a copy to the device, which waits
    # for the device's queued work, at every training step. A given generator draws on its own
    # device.
    device = kp2d.device if generator is None else generator.device

    def draw(sampler: Callable[..., Tensor], *shape: int) -> Tensor:  # torch.rand or torch.randn
        return sampler(shape, generator=generator, dtype=kp2d.dtype, device=device).to(kp2d.device)

    b, n, _ = kp2d.shape
    scale = draw(torch.rand, b, 1, 1)
    out = kp2d + draw(torch.randn, b, n, 2) * scale * (sigma * image_size)
    outlier = (draw(torch.rand, b, n) < outlier_prob)[..., None]  # (B, 29, 1)
    out = torch.where(outlier, out + draw(torch.randn, b, n, 2) * outlier_sigma * image_size, out)
    means = torch.empty_like(out)  # (B, 29, 2): each node's part mean
    for part in PART_SLICES.values():
        means[:, part] = out[:, part].mean(dim=1, keepdim=True)
    dropped = (draw(torch.rand, b, n) < drop_prob)[..., None]
    return torch.where(dropped, means, out)


def perturb_batch(
    batch: Mapping[str, Any], settings: PerturbConfig, image_size: float
) -> dict[str, Any]:
    """``batch`` with its ``hand_2d`` (B, 21, 2) and ``obj_2d`` (B, 8, 2) perturbed.

    Args:
        batch: collated records (:func:`hopose.data.sample.collate_samples`).
        settings: a :class:`hopose.config.PerturbConfig` (``sigma``, ``outlier_prob``,
            ``outlier_sigma``, ``drop_prob``).
        image_size: the network image's side in pixels.
    """
    kp2d = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1)  # (B, 29, 2)
    noisy = perturb_keypoints(
        kp2d,
        image_size=image_size,
        sigma=settings.sigma,
        outlier_prob=settings.outlier_prob,
        outlier_sigma=settings.outlier_sigma,
        drop_prob=settings.drop_prob,
    )
    return {**batch, "hand_2d": noisy[:, :NUM_JOINTS], "obj_2d": noisy[:, NUM_JOINTS:]}
