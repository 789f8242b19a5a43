"""Perturbed 2D keypoints for the lifter: statistics of each kind of error, and the off switch."""

from __future__ import annotations

import torch

from hopose.config import PerturbConfig
from hopose.data.perturb import perturb_batch, perturb_keypoints


def _keypoints(b: int = 4000) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(b, 29, 2, dtype=torch.float64) * 64


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(1)


def test_all_off_returns_the_input_itself():
    kp = _keypoints(3)
    assert perturb_keypoints(kp, image_size=64) is kp


def test_jitter_spread_matches_a_uniform_sigma():
    # Per-sample sigma s ~ U(0, 0.04 * 100 px = 4 px), noise ~ N(0, s^2): the pooled variance is
    # E[s^2] = 4^2 / 3 = 5.33 px^2 (a uniform's second moment), the mean 0.
    kp = _keypoints()
    noise = perturb_keypoints(kp, image_size=100, sigma=0.04, generator=_gen()) - kp
    assert abs(noise.mean()) < 0.02
    assert abs(noise.var() - 16 / 3) < 0.1


def test_outliers_move_that_fraction_of_keypoints_by_that_spread():
    kp = _keypoints()
    moved = perturb_keypoints(
        kp, image_size=100, outlier_prob=0.1, outlier_sigma=0.2, generator=_gen()
    )
    changed = (moved != kp).any(dim=-1)
    assert abs(changed.double().mean() - 0.1) < 0.005
    # An outlier's displacement is N(0, (0.2 * 100 px)^2) per axis: variance 400 px^2.
    assert abs((moved - kp)[changed].var() - 400) < 15


def test_dropped_keypoints_sit_at_their_part_mean():
    kp = _keypoints(200)
    out = perturb_keypoints(kp, image_size=64, drop_prob=0.3, generator=_gen())
    dropped = (out != kp).any(dim=-1)  # (B, 29)
    assert 0.25 < dropped.double().mean() < 0.35
    hand_mean, box_mean = kp[:, :21].mean(dim=1), kp[:, 21:].mean(dim=1)  # (B, 2)
    part_mean = torch.cat(
        [hand_mean[:, None].expand(-1, 21, -1), box_mean[:, None].expand(-1, 8, -1)], 1
    )
    torch.testing.assert_close(out[dropped], part_mean[dropped])


def test_draws_come_from_the_generator_of_the_keypoints_device():
    # Draws made on the CPU and moved to a GPU were a copy there at every training step, which
    # waits for the GPU's queued work: each is drawn where the keypoints are, by that device's
    # generator (here meta's, shapes without data), and the CPU's is left as it was. A given
    # generator draws on its own device, whatever the keypoints'.
    state = torch.get_rng_state()
    kp = torch.zeros(2, 29, 2, device="meta")
    settings = {"sigma": 0.1, "outlier_prob": 0.1, "outlier_sigma": 0.1, "drop_prob": 0.1}
    assert perturb_keypoints(kp, image_size=64, **settings).is_meta
    assert torch.equal(torch.get_rng_state(), state)
    assert perturb_keypoints(kp, image_size=64, generator=_gen(), **settings).is_meta


def test_perturb_batch_splits_hand_and_box_back():
    """perturb_batch perturbs the 29 keypoints of a sample together (one sigma per sample, hand
    and box alike) and splits them back at joint 21: exactly perturb_keypoints of the
    concatenation, from the same draws of torch's global generator."""
    kp = _keypoints(8).float()
    batch = {"hand_2d": kp[:, :21], "obj_2d": kp[:, 21:], "hand_3d": torch.zeros(8, 21, 3)}
    torch.manual_seed(3)
    out = perturb_batch(batch, PerturbConfig(sigma=0.05, outlier_prob=0.2, outlier_sigma=0.1), 64)
    torch.manual_seed(3)
    expected = perturb_keypoints(kp, image_size=64, sigma=0.05, outlier_prob=0.2, outlier_sigma=0.1)
    assert out["hand_3d"] is batch["hand_3d"]
    torch.testing.assert_close(out["hand_2d"], expected[:, :21], rtol=0, atol=0)
    torch.testing.assert_close(out["obj_2d"], expected[:, 21:], rtol=0, atol=0)
    # Both parts moved (a box passed through unperturbed would match nothing above).
    assert (out["obj_2d"] != batch["obj_2d"]).all() and (out["hand_2d"] != batch["hand_2d"]).all()


def test_jitter_sigma_is_drawn_per_sample_not_per_keypoint():
    # Each sample's own noise sd, the root mean square of its 29 x 2 = 58 jitter values, is its
    # sigma s ~ U(0, 0.04 * 100 px = 4 px) (estimated to a relative sd of 1 / sqrt(2 * 58) =
    # 9%). Over 2000 samples: mean E[s] = 4 / 2 = 2 px, spread sd(s) = 4 / sqrt(12) = 1.15 px
    # (1.17 with the 9% estimation error), P(s < 0.5 px) = P(s > 3.5 px) = 0.5 / 4 = 0.125
    # (binomial sd sqrt(0.125 * 0.875 / 2000) = 0.0074). A sigma drawn per keypoint instead
    # would average 29 draws in every sample: each sample's sd near sqrt(E[s^2]) =
    # sqrt(16 / 3) = 2.31 px, spread about 0.35 px, no sample below 0.5 px or above 3.5 px.
    kp = _keypoints(2000)
    noise = perturb_keypoints(kp, image_size=100, sigma=0.04, generator=_gen()) - kp
    per_sample_sd = noise.square().mean(dim=(1, 2)).sqrt()  # (2000,) px
    assert 1.85 < per_sample_sd.mean() < 2.15
    assert 1.05 < per_sample_sd.std() < 1.30
    assert 0.09 < (per_sample_sd < 0.5).double().mean() < 0.16  # some samples nearly clean
    assert 0.09 < (per_sample_sd > 3.5).double().mean() < 0.16


def _perturbed_batch(settings: PerturbConfig, b: int = 500):
    kp = _keypoints(b)
    batch = {"hand_2d": kp[:, :21], "obj_2d": kp[:, 21:]}
    torch.manual_seed(5)  # perturb_batch draws from torch's global generator
    out = perturb_batch(batch, settings, 100)
    noisy = torch.cat([out["hand_2d"], out["obj_2d"]], dim=1)  # (B, 29, 2)
    changed = (noisy != kp).any(dim=-1)  # (B, 29)
    return kp, noisy, changed


def test_perturb_batch_passes_the_outlier_probability():
    # Only outlier_prob = 0.2 (outlier_sigma 0.1 * 100 px = 10 px): of 500 * 29 = 14500
    # keypoints a fraction 0.2 moves, binomial sd sqrt(0.2 * 0.8 / 14500) = 0.0033; the bounds
    # are 0.2 +- 0.017, about 5 sd. (Passing drop_prob = 0 instead would move none.)
    settings = PerturbConfig(outlier_prob=0.2, outlier_sigma=0.1)
    _, _, changed = _perturbed_batch(settings)
    assert abs(changed.double().mean() - 0.2) < 0.017
    # With drop_prob = 0.3 as well, a keypoint is left alone only when it is neither an outlier
    # nor dropped: changed 1 - 0.8 * 0.7 = 0.44 +- 5 * sqrt(0.44 * 0.56 / 14500) = 0.44 +- 0.021.
    # (drop_prob passed as the outlier probability would give 1 - 0.7 * 0.7 = 0.51.)
    settings = PerturbConfig(outlier_prob=0.2, outlier_sigma=0.1, drop_prob=0.3)
    _, _, changed = _perturbed_batch(settings)
    assert abs(changed.double().mean() - 0.44) < 0.021


def test_perturb_batch_drops_keypoints_to_their_part_mean_at_drop_prob():
    # Only drop_prob = 0.3: a fraction 0.3 +- 5 * sqrt(0.3 * 0.7 / 14500) = 0.3 +- 0.019 of the
    # keypoints changes, each to the mean of its part's (hand: nodes 0-20, box: 21-28)
    # keypoints, nothing else moving (no outliers, no jitter).
    settings = PerturbConfig(drop_prob=0.3)
    kp, noisy, changed = _perturbed_batch(settings)
    assert abs(changed.double().mean() - 0.3) < 0.019
    hand_mean, box_mean = kp[:, :21].mean(dim=1), kp[:, 21:].mean(dim=1)  # (B, 2)
    part_mean = torch.cat(
        [hand_mean[:, None].expand(-1, 21, -1), box_mean[:, None].expand(-1, 8, -1)], dim=1
    )
    torch.testing.assert_close(noisy[changed], part_mean[changed], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(noisy[~changed], kp[~changed], rtol=0, atol=0)


def test_outliers_are_displaced_from_the_jittered_keypoints():
    """An outlier's displacement adds to the jitter: the encoder's gross errors come on top of
    its small ones, they do not replace them."""
    # Every keypoint an outlier (outlier_prob 1): jitter variance E[s^2] with s ~ U(0, 0.1 *
    # 100 px = 10 px) is 10^2 / 3 = 33.3 px^2, the outlier's (0.05 * 100 px)^2 = 25 px^2, so
    # the pooled variance is 58.3 px^2. (Outliers displaced from the clean keypoints: 25.)
    kp = _keypoints()
    out = perturb_keypoints(
        kp, image_size=100, sigma=0.1, outlier_prob=1.0, outlier_sigma=0.05, generator=_gen()
    )
    assert abs((out - kp).var() - (100 / 3 + 25)) < 4


def test_dropped_keypoints_sit_at_the_mean_of_their_jittered_part():
    """The mean a dropped keypoint takes is that of its part's jittered keypoints (the module
    docstring), not the clean ground truth's: a dropped keypoint carries the jitter too."""
    # drop_prob 1: every keypoint is its part's mean, so a part's keypoints coincide. Jitter
    # s ~ U(0, 0.04 * 100 px = 4 px) averaged over the hand's 21 keypoints leaves a variance
    # E[s^2] / 21 = (16 / 3) / 21 = 0.254 px^2 about the clean hand mean, over the box's 8
    # keypoints (16 / 3) / 8 = 0.667 px^2. (The clean keypoints' mean: exactly 0.)
    kp = _keypoints()
    out = perturb_keypoints(kp, image_size=100, sigma=0.04, drop_prob=1.0, generator=_gen())
    hand, box = out[:, :21], out[:, 21:]
    torch.testing.assert_close(hand, hand[:, :1].expand(-1, 21, -1), rtol=0, atol=0)
    torch.testing.assert_close(box, box[:, :1].expand(-1, 8, -1), rtol=0, atol=0)
    hand_dev = hand[:, 0] - kp[:, :21].mean(dim=1)  # (B, 2)
    box_dev = box[:, 0] - kp[:, 21:].mean(dim=1)
    assert abs(hand_dev.var() - 16 / 3 / 21) < 0.03
    assert abs(box_dev.var() - 16 / 3 / 8) < 0.08


def test_perturb_batch_measures_lengths_in_the_images_pixels():
    """perturb_batch passes the image side: sigma is a fraction of it, not of one pixel."""
    # sigma 0.04 of a 100 px image: s ~ U(0, 4 px), pooled variance E[s^2] = 16 / 3 = 5.33 px^2
    # (sd of the estimate over 4000 samples about 0.08 px^2). Lengths taken in units of one
    # pixel instead would give (0.04)^2 / 3 = 0.0005 px^2.
    kp, noisy, _ = _perturbed_batch(PerturbConfig(sigma=0.04), b=4000)
    assert abs((noisy - kp).var() - 16 / 3) < 0.6


def test_a_seeded_generator_alone_decides_every_perturbation():
    """Every random draw (jitter scale and noise, outlier and drop choices, outlier offsets)
    comes from ``generator``: the same seed gives the same keypoints whatever the global
    generator's state, so a perturbation can be replayed."""
    kp = _keypoints(50)
    settings = dict(sigma=0.05, outlier_prob=0.2, outlier_sigma=0.1, drop_prob=0.2)
    torch.manual_seed(10)
    first = perturb_keypoints(kp, image_size=64, generator=_gen(), **settings)
    torch.manual_seed(11)
    again = perturb_keypoints(kp, image_size=64, generator=_gen(), **settings)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    other = perturb_keypoints(
        kp, image_size=64, generator=torch.Generator().manual_seed(2), **settings
    )
    assert not torch.equal(first, other)
