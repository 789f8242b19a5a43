"""Training-time augmentation of a batch: the one place a stage's input is altered for training.

- Image stages (``encoder``, ``end2end``): photometric and occlusion augmentation as the field
  uses it, with torchvision's transforms, drawn independently for every image: colour jitter
  (brightness, contrast, saturation by ``colour``, hue by ``colour / 4``), a Gaussian blur with
  probability ``blur_prob`` (sigma 0.1-1.5 px), additive Gaussian noise of standard deviation
  ``noise`` (a fraction of the intensity range), and an occluding patch of random colour with
  probability ``occlusion_prob`` (2-12% of the image, aspect 0.3-3.3; random erasing, Zhong et al.
  AAAI 2020). Geometry is untouched, so the 2D and 3D targets stay as they are.
- Progressive resizing (``optim.progressive_size``, ``optim.progressive_epochs``): an image
  stage's first epochs see their views smaller, K and 2D mapped with them
  (:func:`hopose.crop.shrink_views`), which makes those epochs cheaper (docs/training.md).
- The lifter stage: its ground-truth 2D input is perturbed like the encoder's errors
  (:mod:`hopose.data.perturb`).

Random numbers come from torch's global generator, which the training loop seeds per epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torchvision.transforms import RandomErasing, v2

from hopose.crop import shrink_views
from hopose.data.perturb import perturb_batch
from hopose.stages import STAGES

if TYPE_CHECKING:
    from hopose.config import AugmentConfig, TrainConfig


# The occluding patch's share of the image's area and its aspect (height / width) ranges.
PATCH_AREA: tuple[float, float] = (0.02, 0.12)
PATCH_ASPECT: tuple[float, float] = (0.3, 3.3)


class ColourPatch(nn.Module):
    """Random erasing (Zhong et al.) with one colour per patch: with probability ``p`` a
    rectangle of :data:`PATCH_AREA` of the image's area, aspect :data:`PATCH_ASPECT`, is filled
    with a colour drawn uniformly in [0, 1]³. torchvision's ``value="random"`` fills each pixel
    with standard normal noise, meant for normalised images: on [0, 1] images, clamped, half its
    pixels are black."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, image: Tensor) -> Tensor:
        if float(torch.rand(())) >= self.p:
            return image
        colour = torch.rand(image.shape[-3]).tolist()
        # (i, j, h, w, the patch's values); the whole image itself when no patch fits.
        i, j, h, w, value = RandomErasing.get_params(image, PATCH_AREA, PATCH_ASPECT, value=colour)
        out = image.clone()
        out[..., i : i + h, j : j + w] = value.to(image)
        return out


def image_transform(settings: AugmentConfig) -> v2.Transform | None:
    """The per-image transform on float (3, H, W) images in [0, 1]; None when all is off."""
    steps: list[Callable[[Tensor], Tensor]] = []
    if settings.colour > 0:
        c = settings.colour
        steps.append(v2.ColorJitter(brightness=c, contrast=c, saturation=c, hue=c / 4))
    if settings.blur_prob > 0:
        steps.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5))], p=settings.blur_prob))
    if settings.noise > 0:
        steps.append(v2.GaussianNoise(sigma=settings.noise, clip=True))
    if settings.occlusion_prob > 0:
        steps.append(ColourPatch(settings.occlusion_prob))
    return v2.Compose(steps) if steps else None


def augment_images(images: Tensor, settings: AugmentConfig) -> Tensor:
    """Augment every image of a batch with its own random draw.

    Args:
        images: (B, 3, H, W) uint8.
        settings: which augmentations and how strong (:class:`hopose.config.AugmentConfig`).

    Returns:
        (B, 3, H, W) uint8; ``images`` itself when every augmentation is off.
    """
    transform = image_transform(settings)
    if transform is None:
        return images
    floats = images.float() / 255
    # One transform call per image: torchvision draws its random parameters once per call.
    out = torch.stack([transform(image) for image in floats])  # (B, 3, H, W) in [0, 1]
    return (out.clamp(0, 1) * 255).round().to(torch.uint8)


def augment_batch(batch: Mapping[str, Any], cfg: TrainConfig, *, epoch: int) -> Mapping[str, Any]:
    """The training batch a stage reads in ``epoch`` (from 0): lifter 2D perturbed, or images
    augmented and, in the first ``optim.progressive_epochs``, shown at
    ``optim.progressive_size``."""
    if not STAGES[cfg.stage].reads_images:
        return perturb_batch(batch, cfg.perturb, cfg.data.image_size)
    batch = {**batch, "image": augment_images(batch["image"], cfg.augment)}
    if cfg.optim.progressive_size is not None and epoch < cfg.optim.progressive_epochs:
        batch = shrink_views(batch, cfg.optim.progressive_size)
    return batch
