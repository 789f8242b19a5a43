"""Training augmentation: off is the identity, each image gets its own draw, geometry is kept;
progressive epochs show the views smaller."""

from __future__ import annotations

import colorsys

import torch

from hopose.config import (
    AugmentConfig,
    DataConfig,
    OptimConfig,
    PerturbConfig,
    TrainConfig,
)
from hopose.data.augment import augment_batch, augment_images


def _images() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)


def test_all_off_returns_the_images_themselves():
    images = _images()
    assert augment_images(images, AugmentConfig()) is images


def test_each_image_gets_its_own_colour_jitter():
    # One flat grey image six times: identical inputs, so any difference between the outputs is
    # a per-image draw of the jitter; all stay flat (colour jitter acts on every pixel alike).
    grey = torch.full((6, 3, 8, 8), 128, dtype=torch.uint8)
    torch.manual_seed(0)
    out = augment_images(grey, AugmentConfig(colour=0.5))
    assert out.dtype == torch.uint8 and out.shape == grey.shape
    means = out.float().mean(dim=(1, 2, 3))
    assert len(set(means.tolist())) == 6
    assert (out == out[:, :, :1, :1]).all()


def test_hue_jitter_turns_colours_by_at_most_a_quarter_of_colour():
    """Hue is jittered by ``colour / 4`` of a turn (module docstring), the other three by
    ``colour``: with colour 0.4 no hue moves by more than 0.1 of a turn."""
    # A flat (150, 80, 80) image has hue 0. Brightness, contrast and saturation scale or blend
    # every pixel towards a grey, which keeps a hue (and nothing here reaches 0 or 255 to be
    # clamped), so each output's hue is its hue draw, uniform in [-0.1, 0.1] (hue jitter 0.4
    # would reach 0.4). 0.005 of slack for the rounding to uint8.
    image = torch.tensor([150, 80, 80], dtype=torch.uint8)[None, :, None, None]
    torch.manual_seed(0)
    out = augment_images(image.expand(100, 3, 4, 4).contiguous(), AugmentConfig(colour=0.4))
    hues = [colorsys.rgb_to_hsv(*(c / 255 for c in px))[0] for px in out[:, :, 0, 0].tolist()]
    turns = torch.tensor([min(h, 1 - h) for h in hues])  # distance from hue 0, in turns
    assert turns.max() <= 0.1 + 0.005
    assert turns.max() > 0.08  # the draws do reach towards the bound


def test_contrast_and_saturation_jitter_scale_a_colours_chroma_within_their_bounds():
    """Brightness, contrast and saturation factors are each drawn in [1 - c, 1 + c] (the
    config's docstring): together they scale a colour's chroma (largest minus smallest
    channel) by up to (1 + c)^3, and by more than any two of them could."""
    # A flat (90, 50, 50) image, chroma 40. Brightness multiplies every channel by b, so the
    # chroma by b; contrast (on a flat image) and saturation blend each pixel with its own grey
    # by factors k and s, which keeps that grey and scales the chroma by k and s; a hue turn
    # keeps the largest and smallest channel (HSV's V and S). Nothing is clamped (checked
    # below), so the chroma becomes 40 * b * k * s: with c = 0.4 the ratio lies in
    # [0.6^3, 1.4^3] = [0.216, 2.744], +-1/40 = 0.025 for the rounding of two channels to uint8.
    # Without contrast or saturation it would stay in [0.6^2, 1.4^2] = [0.36, 1.96] (in
    # [0.6, 1.4] with brightness alone); 1,000 draws reach past that on both sides.
    image = torch.tensor([90, 50, 50], dtype=torch.uint8)[None, :, None, None]
    torch.manual_seed(0)
    out = augment_images(image.expand(1000, 3, 1, 1).contiguous(), AugmentConfig(colour=0.4))
    assert out.min() > 0 and out.max() < 255  # no channel clamped
    out = out.float()
    ratio = (out.amax(dim=1) - out.amin(dim=1)).flatten() / 40  # (1000,)
    assert ratio.min() >= 0.6**3 - 0.025 and ratio.max() <= 1.4**3 + 0.025, ratio
    assert ratio.min() < 0.6**2 - 0.025 and ratio.max() > 1.4**2 + 0.025, ratio


def test_noise_has_the_configured_standard_deviation():
    """``noise`` is the noise's standard deviation as a fraction of the intensity range."""
    # Flat grey 128 is 128 / 255 = 0.502 of the range, 10 sigmas of 0.05 from 0 and from 1,
    # so nothing is clipped; rounding to uint8 adds a variance of 1/12 level^2:
    # sqrt(0.05^2 + (1/255)^2 / 12) = 0.05001. Over 4 * 3 * 64 * 64 = 49,152 pixels the sample
    # standard deviation is off by about 1 / sqrt(2 * 49,152) = 0.3%, far inside 10%.
    grey = torch.full((4, 3, 64, 64), 128, dtype=torch.uint8)
    torch.manual_seed(0)
    out = augment_images(grey, AugmentConfig(noise=0.05))
    std = ((out.float() - grey.float()) / 255).std()
    assert 0.045 <= std <= 0.055, std


def test_blur_is_applied_with_its_probability():
    """``blur_prob`` is the share of images blurred (each image's own draw)."""
    # An 8 x 8 checkerboard of 0 and 255 changes under any blur but the weakest sigmas (about
    # 0.1-0.25 px, whose neighbour weights round away: some 10% of the draws). With blur_prob
    # 0.25, about 0.25 * 0.9 = 23% of 100 images change (binomial sd 4%); blurring every
    # image would change about 90% of them.
    board = ((torch.arange(8)[:, None] + torch.arange(8)) % 2 * 255).to(torch.uint8)
    images = board.expand(100, 3, 8, 8).contiguous()
    torch.manual_seed(0)
    out = augment_images(images, AugmentConfig(blur_prob=0.25))
    changed = (out != images).flatten(1).any(dim=1).float().mean()
    assert 0.1 <= changed <= 0.4, changed


def test_occlusion_patch_covers_a_bounded_part_of_the_image():
    # With occlusion certain and nothing else, 2-12% of each (constant) image changes.
    grey = torch.full((6, 3, 50, 50), 128, dtype=torch.uint8)
    torch.manual_seed(0)
    out = augment_images(grey, AugmentConfig(occlusion_prob=1.0))
    changed = (out != grey).any(dim=1).float().mean(dim=(1, 2))  # (B,) fraction of pixels
    assert ((changed > 0.015) & (changed <= 0.125)).all(), changed


def test_occlusion_patch_is_one_random_colour():
    # Each image's patch is one flat colour, drawn per image. torchvision's value="random" was a
    # patch of per-pixel standard-normal noise, clamped to [0, 1]: about half of it black and
    # hundreds of distinct colours, not the "occluding patch of random colour" configured.
    grey = torch.full((6, 3, 50, 50), 128, dtype=torch.uint8)
    torch.manual_seed(0)
    out = augment_images(grey, AugmentConfig(occlusion_prob=1.0))
    colours = []
    for image, changed in zip(out, (out != grey).any(dim=1), strict=True):
        patch = image.permute(1, 2, 0)[changed]  # (P, 3)
        assert len(patch) > 0 and len(patch.unique(dim=0)) == 1, patch.unique(dim=0)[:5]
        colours.append(tuple(patch[0].tolist()))
    assert len(set(colours)) == 6


def test_occlusion_patch_is_drawn_with_its_probability():
    """``occlusion_prob`` is the share of images occluded (each image's own draw)."""
    # A flat grey image changes wherever a patch falls: at 32 x 32 px every patch (20-123 px,
    # aspect 0.3-3.3) fits and is at least 2 x 8 px, and its colour, uniform in [0, 1]^3, rounds
    # to grey 128 on all three channels once in 255^3 draws. With occlusion_prob 0.25,
    # 25% of 400 images change, binomial sd sqrt(0.25 * 0.75 / 400) = 0.022: [0.18, 0.32] is
    # more than 3 sd either side; a patch on every image would change all of them.
    grey = torch.full((400, 3, 32, 32), 128, dtype=torch.uint8)
    torch.manual_seed(0)
    out = augment_images(grey, AugmentConfig(occlusion_prob=0.25))
    changed = (out != grey).flatten(1).any(dim=1).float().mean()
    assert 0.18 <= changed <= 0.32, changed


def test_augment_batch_alters_only_the_stage_input():
    images = _images()
    batch = {"image": images, "hand_2d": torch.rand(6, 21, 2), "obj_2d": torch.rand(6, 8, 2)}
    sizes = DataConfig(num_train=6, num_val=6)  # synthetic data: its sizes are required
    cfg = TrainConfig(stage="encoder", data=sizes, augment=AugmentConfig(noise=0.05))
    out = augment_batch(batch, cfg, epoch=0)
    assert not torch.equal(out["image"], images)
    assert out["hand_2d"] is batch["hand_2d"] and out["obj_2d"] is batch["obj_2d"]
    lifter = TrainConfig(stage="lifter", data=sizes, perturb=PerturbConfig(sigma=0.1))
    out = augment_batch(batch, lifter, epoch=0)
    assert out["image"] is images
    assert not torch.equal(out["hand_2d"], batch["hand_2d"])


def test_progressive_epochs_show_the_views_smaller_then_whole():
    # optim.progressive_size 32 for 2 of 3 epochs on 64-px views: epochs 0 and 1 read 32-px
    # images and K and 2D halved about the pixel edges (u -> u / 2 - 1 / 4), epoch 2 the batch.
    cfg = TrainConfig(
        stage="encoder",
        data=DataConfig(image_size=64, num_train=6, num_val=6),
        optim=OptimConfig(epochs=3, progressive_size=32, progressive_epochs=2),
    )
    K = torch.tensor([[100.0, 0.0, 31.5], [0.0, 100.0, 31.5], [0.0, 0.0, 1.0]]).expand(6, 3, 3)
    batch = {
        "image": torch.randint(0, 256, (6, 3, 64, 64), dtype=torch.uint8),
        "K": K,
        "hand_2d": torch.full((6, 21, 2), 10.0),
        "obj_2d": torch.full((6, 8, 2), 50.0),
    }
    for epoch in (0, 1):
        out = augment_batch(batch, cfg, epoch=epoch)
        assert out["image"].shape == (6, 3, 32, 32)
        torch.testing.assert_close(out["hand_2d"], torch.full((6, 21, 2), 4.75))
        torch.testing.assert_close(out["obj_2d"], torch.full((6, 8, 2), 24.75))
        torch.testing.assert_close(out["K"][0, 0], torch.tensor([50.0, 0.0, 15.5]))
    out = augment_batch(batch, cfg, epoch=2)
    assert out["image"] is batch["image"] and out["K"] is K
