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


def test_perturb_batch_splits_hand_and_box_back():
    kp = _keypoints(8).float()
    batch = {"hand_2d": kp[:, :21], "obj_2d": kp[:, 21:], "hand_3d": torch.zeros(8, 21, 3)}
    torch.manual_seed(3)
    out = perturb_batch(batch, PerturbConfig(sigma=0.05), 64)
    assert out["hand_3d"] is batch["hand_3d"]
    assert out["hand_2d"].shape == (8, 21, 2) and out["obj_2d"].shape == (8, 8, 2)
    assert not torch.equal(out["hand_2d"], batch["hand_2d"])
    # Jitter only: within 6 standard deviations of the largest sigma, 0.05 * 64 = 3.2 px.
    assert (out["obj_2d"] - batch["obj_2d"]).abs().max() < 6 * 3.2
