"""Tests of the physical affinity loss, written from docs/conventions.md §2 independently of
hopose.physics.

The reference ``physical_affinity_loss_naive`` (tests/physics_reference.py) follows the conventions'
steps one sample, one joint and one face at a time in plain float64 Python. Hand-computed
cases use an axis-aligned 100 x 100 x 300 mm box centred at the origin, long axis along z:

- the axis runs through the end-face centres (0, 0, -150) and (0, 0, 150);
- the end faces are 100 x 100 squares, so the radius L = mean(100, 100, 100, 100, ...) = 100
  and a candidate is valid when its distance is at most eta * L = 0.2 * 100 = 20 mm;
- with N = 11 the face grids step 100 / 10 = 10 mm across x and y and 300 / 10 = 30 mm along z,
  so a joint 2 mm outside a face, at a grid position, touches it at distance 2.

Joints that should not touch are parked at (1000 + 10 k, 1000, 1000), hundreds of mm away.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hopose.geometry import axis_angle_to_matrix, box_corners, make_transform, sample_face_points
from hopose.physics import (
    affinity_of_contacts,
    contact_points,
    physical_affinity_loss,
    select_contacts,
)
from hopose.skeleton import NUM_JOINTS, corner_signs
from physics_reference import contacts_naive, physical_affinity_loss_naive, random_grasps
from shape_checking import unchecked

# ---------------------------------------------------------------------------------------------
# Inputs.

BOX_SIZE = (100.0, 100.0, 300.0)


def parked_hand(touching: dict[int, tuple[float, float, float]]) -> torch.Tensor:
    """(21, 3) float64 hand: joint k at ``touching[k]``, the others at (1000+10k, 1000, 1000)."""
    hand = torch.tensor(
        [[1000.0 + 10 * k, 1000.0, 1000.0] for k in range(NUM_JOINTS)], dtype=torch.float64
    )
    for joint, position in touching.items():
        hand[joint] = torch.tensor(position, dtype=torch.float64)
    return hand


def long_box(size: tuple[float, float, float] = BOX_SIZE) -> torch.Tensor:
    """(8, 3) float64 corners of an axis-aligned box centred at the origin."""
    return box_corners(torch.tensor(size, dtype=torch.float64))


def hand_computed_loss(touching: dict[int, tuple[float, float, float]], **kwargs) -> float:
    loss = physical_affinity_loss(
        parked_hand(touching)[None], long_box()[None], reduction="none", **kwargs
    )
    return float(loss[0])


# Joints 2 mm outside the four side faces at mid-height, whose contacts are (+-50, 0, 0) and
# (0, +-50, 0) and whose directions from the axis (the feet R are all the origin) are the same.
PLUS_X, MINUS_X, PLUS_Y, MINUS_Y = (
    (52.0, 0.0, 0.0),
    (-52.0, 0.0, 0.0),
    (0.0, 52.0, 0.0),
    (0.0, -52.0, 0.0),
)


def assert_same_rows(actual: torch.Tensor, expected: np.ndarray, atol: float = 1e-9) -> None:
    """Rows of ``actual`` (n, 3) equal those of ``expected`` up to order."""
    actual = actual.detach().double().numpy()
    assert actual.shape == expected.shape
    gaps = np.linalg.norm(actual[:, None] - expected[None], axis=-1)  # (n, n)
    assert (gaps.min(axis=0) <= atol).all() and (gaps.min(axis=1) <= atol).all(), (actual, expected)


# ---------------------------------------------------------------------------------------------
# Hand-computed configurations.


def test_four_contacts_90_degrees_apart_give_minus_one_third():
    # Directions +x, -x, +y, -y: 6 pairs, cosines (+x,-x) = (+y,-y) = -1 and the four
    # perpendicular pairs 0, so the mean is (-1 - 1 + 0 + 0 + 0 + 0) / 6 = -1/3.
    loss = hand_computed_loss({4: PLUS_X, 8: MINUS_X, 12: PLUS_Y, 16: MINUS_Y})
    assert loss == pytest.approx(-1 / 3, abs=1e-9)


def test_contacts_all_on_one_side_give_one():
    # Three joints 2 mm outside the x+ face at z = -60, 0, 60 (grid rows): directions all
    # (50, 0, 0), three pairs of cosine 1, mean 1.
    loss = hand_computed_loss({4: (52.0, 0.0, -60.0), 8: PLUS_X, 12: (52.0, 0.0, 60.0)})
    assert loss == pytest.approx(1.0, abs=1e-9)


def test_two_opposite_contacts_give_minus_one():
    assert hand_computed_loss({4: PLUS_X, 8: MINUS_X}) == pytest.approx(-1.0, abs=1e-9)


def test_contacts_45_degrees_apart_give_cos_45():
    # (20, 20, 152) is 2 mm above the grid point (20, 20, 150) of the end face z+, whose foot on
    # the axis is (0, 0, 150): v = (20, 20, 0). Its distance to the x+ face is at least
    # sqrt(30^2 + 2^2) = 30.1 > 20, so it touches nothing else. With v = (50, 0, 0):
    # cos = 20*50 / (50 * 20*sqrt(2)) = 1/sqrt(2).
    loss = hand_computed_loss({4: PLUS_X, 8: (20.0, 20.0, 152.0)})
    assert loss == pytest.approx(1 / math.sqrt(2), abs=1e-9)


def test_fewer_than_two_contacts_give_zero():
    assert hand_computed_loss({4: PLUS_X}) == 0.0
    assert hand_computed_loss({}) == 0.0


def test_top_k_keeps_the_closest_candidates():
    # x+ contacts at distances 1, 2, 3 and an x- contact at distance 4. With top_k = 3 only the
    # three x+ ones are candidates: loss 1. With top_k = 4 the x- one joins: 3 pairs of +1 and
    # 3 pairs of -1, mean 0.
    touching = {
        4: (51.0, 0.0, -60.0),
        8: (52.0, 0.0, 0.0),
        12: (53.0, 0.0, 60.0),
        16: (-54.0, 0.0, 0.0),
    }
    assert hand_computed_loss(touching, top_k=3) == pytest.approx(1.0, abs=1e-9)
    assert hand_computed_loss(touching, top_k=4) == pytest.approx(0.0, abs=1e-9)


def test_candidates_come_in_order_of_increasing_distance():
    """select_contacts and contact_points list the top_k pairs nearest first (their documented
    order), not merely the right set."""
    # Joints 4, 8, 12 are 1, 2, 3 mm outside the x+ face at z = -60, 0, 60 and joint 16 is 4 mm
    # outside the x- face: nearest first, the joints are 4, 8, 12, 16 and the supports
    # (50, 0, -60), (50, 0, 0), (50, 0, 60), (-50, 0, 0).
    touching = {
        4: (51.0, 0.0, -60.0),
        8: (52.0, 0.0, 0.0),
        12: (53.0, 0.0, 60.0),
        16: (-54.0, 0.0, 0.0),
    }
    hand, box = parked_hand(touching)[None], long_box()[None]
    selection = select_contacts(hand, box, n_samples=11, top_k=4)
    assert selection[0, :, 0].tolist() == [4, 8, 12, 16]
    pts, _, valid = contact_points(hand, box, top_k=4)
    expected = torch.tensor(
        [[50.0, 0.0, -60.0], [50.0, 0.0, 0.0], [50.0, 0.0, 60.0], [-50.0, 0.0, 0.0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(pts[0], expected, atol=1e-9, rtol=0)
    assert valid.all()


def test_a_contact_exactly_eta_times_l_away_is_valid():
    """Eq. 5 keeps d <= eta * L (docs/conventions.md §2 step 5): the boundary itself counts."""
    # (70, 0, 0) is 70 - 50 = 20 mm from its support (50, 0, 0), exactly eta * L = 0.2 * 100 =
    # 20 (both exact in float64); (-52, 0, 0) is 2 mm from (-50, 0, 0). Both valid: the two
    # directions are opposite, loss -1; with a strict d < eta * L only one is left: loss 0.
    touching = {4: (70.0, 0.0, 0.0), 8: MINUS_X}
    _, _, valid = contact_points(parked_hand(touching)[None], long_box()[None])
    assert int(valid.sum()) == 2
    assert hand_computed_loss(touching) == pytest.approx(-1.0, abs=1e-9)


def test_eta_filters_by_the_end_face_radius():
    # A contact at distance 2 and an opposite one at 15: both within eta*L = 0.2*100 = 20, so
    # the loss is cos(180) = -1; with eta = 0.1 the limit is 10 and only one contact remains: 0.
    touching = {4: PLUS_X, 8: (-65.0, 0.0, 0.0)}
    assert hand_computed_loss(touching) == pytest.approx(-1.0, abs=1e-9)
    assert hand_computed_loss(touching, eta=0.1) == 0.0


def test_radius_is_the_mean_side_of_the_end_faces():
    # A 60 x 100 x 300 box: end faces 60 x 100, L = (60+100+60+100+60+100+60+100)/8 = 80,
    # eta*L = 16. (The mean of all 12 edges, 153.3, would give 30.7.) Opposite contacts at
    # distances 2 and 15 count (loss -1); at 2 and 17 only one counts (loss 0).
    box = long_box((60.0, 100.0, 300.0))[None]
    for far_side, expected in ((-45.0, -1.0), (-47.0, 0.0)):
        hand = parked_hand({4: (32.0, 0.0, 0.0), 8: (far_side, 0.0, 0.0)})[None]
        loss = physical_affinity_loss(hand, box, reduction="none")
        assert float(loss[0]) == pytest.approx(expected, abs=1e-9)


def test_axis_follows_the_longest_dimension():
    # A 300 x 100 x 100 box: the x faces are 300 apart, so the axis is the x axis. Joints 2 mm
    # above the y+ face at x = +-90 (grid columns) touch at (+-90, 50, 0), feet (+-90, 0, 0),
    # directions both (0, 50, 0): loss 1. (Measured from the z axis instead they would be
    # (+-90, 50, 0), cosine (-8100 + 2500) / 10600 = -0.53.)
    box = long_box((300.0, 100.0, 100.0))[None]
    hand = parked_hand({4: (90.0, 52.0, 0.0), 8: (-90.0, 52.0, 0.0)})[None]
    assert float(physical_affinity_loss(hand, box, reduction="none")[0]) == pytest.approx(
        1.0, abs=1e-9
    )


def test_mean_is_over_samples_with_two_or_more_contacts():
    # Per sample: -1/3 (four at 90 degrees), 1 (one side), 0 (one contact, not counted).
    # Mean over the two samples with contacts: (-1/3 + 1) / 2 = 1/3, not (2/3) / 3.
    hands = torch.stack(
        [
            parked_hand({4: PLUS_X, 8: MINUS_X, 12: PLUS_Y, 16: MINUS_Y}),
            parked_hand({4: (52.0, 0.0, -60.0), 8: PLUS_X, 12: (52.0, 0.0, 60.0)}),
            parked_hand({4: PLUS_X}),
        ]
    )
    boxes = long_box()[None].expand(3, 8, 3)
    per_sample = physical_affinity_loss(hands, boxes, reduction="none")
    assert per_sample.shape == (3,)
    torch.testing.assert_close(per_sample, torch.tensor([-1 / 3, 1.0, 0.0], dtype=torch.float64))
    assert float(physical_affinity_loss(hands, boxes)) == pytest.approx(1 / 3, abs=1e-9)


def test_mean_without_contacts_is_zero_and_differentiable():
    boxes = long_box()[None].repeat(2, 1, 1).requires_grad_(True)
    hands = torch.stack([parked_hand({}), parked_hand({4: PLUS_X})])
    loss = physical_affinity_loss(hands, boxes)
    assert loss.shape == () and float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    assert boxes.grad is not None and torch.equal(boxes.grad, torch.zeros_like(boxes))


def test_contact_points_of_four_contacts():
    top_k = 10
    hand = parked_hand({4: PLUS_X, 8: MINUS_X, 12: PLUS_Y, 16: MINUS_Y})[None]
    pts, dirs, valid = contact_points(hand, long_box()[None], top_k=top_k)
    assert pts.shape == (1, top_k, 3) and dirs.shape == (1, top_k, 3)
    assert valid.shape == (1, top_k) and valid.dtype == torch.bool
    # Contacts at (+-50, 0, 0), (0, +-50, 0); the axis passes through the origin, so v = P.
    expected = np.array([[50.0, 0, 0], [-50, 0, 0], [0, 50, 0], [0, -50, 0]])
    assert_same_rows(pts[0][valid[0]], expected)
    assert_same_rows(dirs[0][valid[0]], expected)


def test_a_selection_of_another_batch_or_grid_is_refused():
    hand, box = random_grasps(torch.Generator().manual_seed(3), [4, 4, 4])
    selection = select_contacts(hand, box, n_samples=11, top_k=10)  # grid points up to 120
    # Sample 0's choices on a batch of 3 would score its contacts on every pose.
    with (
        unchecked(),
        pytest.raises(ValueError, match=r"selection must have shape \(3, K, 3\).*\(1, 10, 3\)"),
    ):
        physical_affinity_loss(hand, box, selection=selection[:1])
    # Choices of an 11 x 11 grid read on a 5 x 5 one (25 points) name the grid.
    coarse = selection.clone()
    coarse[..., 2] = 25  # one past the 5 x 5 grid's last point (0..24)
    with pytest.raises(ValueError, match=r"5x5 points: made with another n_samples"):
        contact_points(hand, box, n_samples=5, selection=coarse)
    coarse[..., 2] = 24
    contact_points(hand, box, n_samples=5, selection=coarse)  # in range: accepted


def test_directions_and_validity_of_other_batches_are_refused():
    # Sample 0's directions against 3 samples' validity broadcast into 3 losses, of which the
    # 2nd and 3rd were sample 0's contacts under another sample's mask; and the other way round.
    hand, box = random_grasps(torch.Generator().manual_seed(3), [8, 10, 6])
    _, dirs, valid = contact_points(hand, box)
    message = r"^dirs and valid must have shapes \(\.\.\., K, 3\) and \(\.\.\., K\), got "
    cases = [
        (dirs[:1], valid, r"\(1, 10, 3\) and \(3, 10\)$"),
        (dirs, valid[:1], r"\(3, 10, 3\) and \(1, 10\)$"),
        (dirs[..., :2], valid, r"\(3, 10, 2\) and \(3, 10\)$"),
    ]
    for bad_dirs, bad_valid, shapes in cases:
        with unchecked(), pytest.raises(ValueError, match=message + shapes):
            affinity_of_contacts(bad_dirs, bad_valid, reduction="none")


def test_contacts_rebuild_the_grid_point_of_each_index():
    """select_contacts picks a grid point by its index in sample_face_points' grid; the support
    point contact_points rebuilds for that index is that very point. On an irregular oblong box
    (a turned 60 x 40 x 120 box, corners moved by up to 5 mm), of 4 x 4 grids (no centre point),
    a transposed grid (u and v swapped) or another order of the bilinear weights rebuilds other
    points."""
    generator = torch.Generator().manual_seed(11)
    rotation = axis_angle_to_matrix(torch.tensor([0.4, -1.1, 0.7], dtype=torch.float64))
    pose = make_transform(rotation, torch.tensor([20.0, -10.0, 450.0], dtype=torch.float64))
    box = box_corners(torch.tensor([60.0, 40.0, 120.0], dtype=torch.float64), pose)
    box = box + 5 * (2 * torch.rand(8, 3, generator=generator, dtype=torch.float64) - 1)
    n = 4
    face, point = torch.meshgrid(torch.arange(6), torch.arange(n * n), indexing="ij")
    selection = torch.stack([torch.zeros_like(face), face, point], dim=-1).reshape(1, -1, 3)
    pts, _, _ = contact_points(parked_hand({})[None], box[None], n_samples=n, selection=selection)
    grid = sample_face_points(box, n).reshape(-1, 3)  # (6 * 16, 3) face by face, iu * 4 + iv
    torch.testing.assert_close(pts[0], grid, atol=1e-9, rtol=0)


def test_reused_selection_follows_the_moved_pose():
    # The choices made on one pose, reused on a moved one: the support points are rebuilt from
    # the moved corners and the filter of Eq. 5 is evaluated on the moved joints.
    hand = parked_hand({4: PLUS_X, 8: MINUS_X, 12: PLUS_Y, 16: MINUS_Y})[None]
    box = long_box()[None]
    selection = select_contacts(hand, box, n_samples=11, top_k=10)
    fresh = contact_points(hand, box)
    reused = contact_points(hand, box, selection=selection)
    for mine, made_here in zip(reused, fresh, strict=True):
        torch.testing.assert_close(mine, made_here, atol=0, rtol=0)
    shift = torch.tensor([5.0, -7.0, 30.0], dtype=torch.float64)
    pts, _, valid = contact_points(hand + shift, box + shift, selection=selection)
    torch.testing.assert_close(pts, fresh[0] + shift, atol=1e-9, rtol=0)
    assert torch.equal(valid, fresh[2])
    # Joints 8 and 16 pulled 30 mm off their faces: 32 mm > eta * L = 20 mm, no longer
    # contacts; +x and +y are left, 90 degrees apart, so the loss goes from -1/3 to 0.
    pulled = parked_hand({4: PLUS_X, 8: (-82.0, 0.0, 0.0), 12: PLUS_Y, 16: (0.0, -82.0, 0.0)})
    _, _, valid = contact_points(pulled[None], box, selection=selection)
    assert int(valid.sum()) == 2
    loss = physical_affinity_loss(pulled[None], box, reduction="none", selection=selection)
    assert float(loss[0]) == pytest.approx(0.0, abs=1e-9)


def test_hand_joints_get_no_gradient():
    # docs/conventions.md §2 note: selections are not differentiated, so only the corners move.
    hand = parked_hand({4: PLUS_X, 8: (20.0, 20.0, 152.0)})[None].requires_grad_(True)
    irregular = long_box() + 0.1 * torch.arange(24, dtype=torch.float64).reshape(8, 3)
    box = irregular[None].requires_grad_(True)
    grad_hand, grad_box = torch.autograd.grad(
        physical_affinity_loss(hand, box), (hand, box), allow_unused=True
    )
    assert grad_hand is None or torch.equal(grad_hand, torch.zeros_like(hand))
    # Not vacuous: the same loss moves the corners (its contacts are valid, its value not flat).
    assert grad_box is not None and grad_box.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# Against the naive reference, and properties.


def test_matches_naive_reference_on_random_batches():
    generator = torch.Generator().manual_seed(0)
    counts = [0, 1, 2, 3, 5, 8, 12, 21]
    hand, obj = random_grasps(generator, counts)
    expected = physical_affinity_loss_naive(hand.numpy(), obj.numpy())
    n_valid = [len(contacts_naive(h, o)) for h, o in zip(hand.numpy(), obj.numpy(), strict=True)]
    # The batch covers samples with no, one and several valid contacts.
    assert n_valid[0] == 0 and n_valid[1] == 1 and max(n_valid) >= 5, n_valid
    torch.testing.assert_close(
        physical_affinity_loss(hand, obj, reduction="none"), torch.tensor(expected)
    )
    has_pairs = np.array(n_valid) >= 2
    assert float(physical_affinity_loss(hand, obj)) == pytest.approx(
        expected[has_pairs].mean(), abs=1e-10
    )
    pts, dirs, valid = contact_points(hand, obj)
    for b in range(len(counts)):
        contacts = contacts_naive(hand[b].numpy(), obj[b].numpy())
        assert int(valid[b].sum()) == len(contacts)
        if contacts:
            assert_same_rows(pts[b][valid[b]], np.array([p for p, _ in contacts]))
            assert_same_rows(dirs[b][valid[b]], np.array([v for _, v in contacts]))


def test_matches_naive_reference_on_perturbed_boxes():
    # Not cuboids: every corner moved 4 mm (standard deviation) at random, so the faces are
    # skew quads and the axis is not parallel to the side faces. Joints 0-2 lie inside the box,
    # and joints 3 and 20 2 mm outside the centres of the end faces (0, 1, 2, 3) and (4, 5, 6, 7):
    # z is the longest side (180-240 mm against at most 170), so those faces' centres are the
    # axis' ends. Their support is the face's centre grid point (its neighbours are 4-10 mm
    # across the face), which lies on the axis for every box: v = 0 up to a rounding residue
    # (3e-14 mm), which both must read as the zero vector (cosine 0), not as a direction.
    generator = torch.Generator().manual_seed(7)
    hand, obj = random_grasps(generator, [2, 4, 6, 9, 12, 15, 18, 21] * 2)
    obj = obj + 4 * torch.randn(obj.shape, generator=generator, dtype=torch.float64)
    centre = obj.mean(dim=1, keepdim=True)
    hand[:, :3] = centre + 15 * torch.randn(16, 3, 3, generator=generator, dtype=torch.float64)
    ends = obj[:, :4].mean(dim=1), obj[:, 4:].mean(dim=1)  # (16, 3) each
    for joint, end, other in ((3, ends[0], ends[1]), (20, ends[1], ends[0])):
        outward = (end - other) / (end - other).norm(dim=-1, keepdim=True)
        hand[:, joint] = end + 2 * outward
    expected = physical_affinity_loss_naive(hand.numpy(), obj.numpy())
    torch.testing.assert_close(
        physical_affinity_loss(hand, obj, reduction="none"),
        torch.tensor(expected),
        atol=1e-9,
        rtol=0,
    )
    pts, dirs, valid = contact_points(hand, obj)
    for b in range(len(hand)):
        contacts = contacts_naive(hand[b].numpy(), obj[b].numpy())
        assert int(valid[b].sum()) == len(contacts)
        # Both end-face centres are valid contacts on the axis (in sample 13 a random touching
        # joint's support is an end face's centre too).
        assert sum(not v.any() for _, v in contacts) >= 2, b
        assert_same_rows(pts[b][valid[b]], np.array([p for p, _ in contacts]))
        assert_same_rows(dirs[b][valid[b]], np.array([v for _, v in contacts]))


@pytest.mark.parametrize(("n_samples", "top_k", "eta"), [(3, 5, 0.3), (6, 20, 0.15)])
def test_matches_naive_reference_for_other_settings(n_samples, top_k, eta):
    generator = torch.Generator().manual_seed(n_samples)
    hand, obj = random_grasps(generator, [4, 9, 15])
    expected = physical_affinity_loss_naive(hand.numpy(), obj.numpy(), n_samples, top_k, eta)
    actual = physical_affinity_loss(
        hand, obj, n_samples=n_samples, top_k=top_k, eta=eta, reduction="none"
    )
    torch.testing.assert_close(actual, torch.tensor(expected))


def test_gradcheck_with_respect_to_corners():
    # Random off-grid positions keep every selection (closest point, top-k, filter) away from
    # ties, so the loss is smooth in the corners around this input.
    generator = torch.Generator().manual_seed(1)
    hand, obj = random_grasps(generator, [6, 10])
    # Both samples have contacts spread around the axis, so the loss is not locally constant.
    assert (physical_affinity_loss(hand, obj, n_samples=5, reduction="none").abs() > 0.01).all()
    obj.requires_grad_(True)
    for reduction in ("none", "mean"):
        assert torch.autograd.gradcheck(
            lambda corners, reduction=reduction: physical_affinity_loss(
                hand, corners, n_samples=5, reduction=reduction
            ),
            (obj,),
        )


def test_invariant_under_rigid_motion():
    generator = torch.Generator().manual_seed(2)
    hand, obj = random_grasps(generator, [3, 7, 12])
    rotation = axis_angle_to_matrix(torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64))
    translation = torch.tensor([120.0, -40.0, 300.0], dtype=torch.float64)
    moved_hand, moved_obj = hand @ rotation.T + translation, obj @ rotation.T + translation
    torch.testing.assert_close(
        physical_affinity_loss(moved_hand, moved_obj, reduction="none"),
        physical_affinity_loss(hand, obj, reduction="none"),
    )
    pts, dirs, valid = contact_points(hand, obj)
    moved_pts, moved_dirs, moved_valid = contact_points(moved_hand, moved_obj)
    assert torch.equal(valid.sum(dim=1), moved_valid.sum(dim=1))
    for b in range(3):
        assert_same_rows(
            moved_pts[b][moved_valid[b]],
            (pts[b][valid[b]] @ rotation.T + translation).numpy(),
            atol=1e-8,
        )
        assert_same_rows(
            moved_dirs[b][moved_valid[b]], (dirs[b][valid[b]] @ rotation.T).numpy(), atol=1e-8
        )


@pytest.mark.parametrize("scale", [1e-3, 7.5])
def test_invariant_under_uniform_scaling(scale):
    # Distances and the radius scale together, so the same contacts pass the filter, and
    # cosines do not depend on length (1e-3 is mm -> m).
    generator = torch.Generator().manual_seed(3)
    hand, obj = random_grasps(generator, [3, 7, 12])
    torch.testing.assert_close(
        physical_affinity_loss(hand * scale, obj * scale, reduction="none"),
        physical_affinity_loss(hand, obj, reduction="none"),
    )


def test_float32_agrees_with_float64():
    generator = torch.Generator().manual_seed(4)
    hand, obj = random_grasps(generator, [2, 5, 9, 14])
    loss64 = physical_affinity_loss(hand, obj, reduction="none")
    loss32 = physical_affinity_loss(hand.float(), obj.float(), reduction="none")
    assert loss32.dtype == torch.float32
    torch.testing.assert_close(loss32.double(), loss64, atol=1e-5, rtol=0)


def test_autocast_gives_the_float32_loss():
    # Autocast runs matmuls in bfloat16 on CPU (float16 on GPU): 8 significant bits, too few to
    # rank squared distances, so other contacts were chosen (all 32 samples here) and the loss
    # came back in bfloat16, up to 0.26 off. The functions turn autocast off: inside it they
    # give the float32 results, bit for bit, in float32.
    generator = torch.Generator().manual_seed(5)
    hand, obj = random_grasps(generator, [3, 5, 8, 12] * 8, dtype=torch.float32)
    expected = physical_affinity_loss(hand, obj, reduction="none")
    _, dirs, valid = contact_points(hand, obj)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = physical_affinity_loss(hand, obj, reduction="none")
        selection = select_contacts(hand, obj, n_samples=11, top_k=10)
        from_dirs = affinity_of_contacts(dirs, valid, reduction="none")
    assert loss.dtype == from_dirs.dtype == torch.float32
    torch.testing.assert_close(loss, expected, atol=0, rtol=0)
    torch.testing.assert_close(from_dirs, expected, atol=0, rtol=0)
    assert torch.equal(selection, select_contacts(hand, obj, n_samples=11, top_k=10))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_float32(dtype):
    # The x+ contact and one on the axis (the z+ end face's centre), whose cosine is 0: loss 0.
    # In float16 the cosine's EPS**2 = 1e-12 flushed to 0, so the on-axis contact gave 0/0 = NaN
    # (and the parked joints' squared norms, 1e6 mm^2, overflow it). Half inputs are computed in
    # float32: the float32 loss of the same (rounded) inputs, and gradients in their dtype.
    hand = parked_hand({4: PLUS_X, 8: (0.0, 0.0, 152.0)})[None].to(dtype)
    box = long_box()[None].to(dtype).requires_grad_(True)
    loss = physical_affinity_loss(hand, box, reduction="none")
    assert loss.dtype == torch.float32 and float(loss.detach()[0]) == 0.0
    expected = physical_affinity_loss(hand.float(), box.detach().float(), reduction="none")
    torch.testing.assert_close(loss, expected, atol=0, rtol=0)
    (grad,) = torch.autograd.grad(loss.sum(), box)
    assert grad.dtype == dtype and torch.isfinite(grad).all()


def _assert_finite_loss_and_grad(hand: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    obj = obj.clone().requires_grad_(True)
    per_sample = physical_affinity_loss(hand, obj, reduction="none")
    (grad,) = torch.autograd.grad(per_sample.sum() + physical_affinity_loss(hand, obj), obj)
    assert torch.isfinite(per_sample).all() and torch.isfinite(grad).all(), (per_sample, grad)
    return per_sample.detach()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_degenerate_boxes_give_finite_loss_and_gradients(dtype):
    point = torch.tensor([10.0, -20.0, 400.0], dtype=dtype)
    all_equal = point.expand(8, 3)
    # A flat box (zero thickness in y) and a stick (zero-size end faces, radius 0).
    flat = box_corners(torch.tensor([100.0, 0.0, 300.0], dtype=dtype)) + point
    stick = box_corners(torch.tensor([0.0, 0.0, 300.0], dtype=dtype)) + point
    hand_near = point + torch.linspace(-1, 1, NUM_JOINTS * 3, dtype=dtype).reshape(NUM_JOINTS, 3)
    hand_on_point = point.expand(NUM_JOINTS, 3)  # d = 0 <= eta * 0: valid contacts on a point box
    obj = torch.stack([all_equal, all_equal, flat, flat, stick, stick])
    hand = torch.stack(
        [hand_near, hand_on_point, hand_near, hand_on_point, hand_near, hand_on_point]
    )
    per_sample = _assert_finite_loss_and_grad(hand, obj)
    # And exactly 0 (no spread to reward or punish): a point box or a stick has radius 0, so only
    # joints at distance 0 count, and those lie on the axis, where a direction is the zero
    # vector, whose cosine with anything is 0; the flat box's contacts with the joints near its
    # centre are its centre's grid point on the y faces, on the axis too.
    torch.testing.assert_close(per_sample, torch.zeros(6, dtype=dtype), atol=0, rtol=0)


def test_an_empty_batch_gives_empty_results():
    # sample_face_points reshaped its (N*N, 0, 6, 3) product with a -1 it could not infer.
    hand, obj = torch.zeros(0, NUM_JOINTS, 3), torch.zeros(0, 8, 3)
    pts, dirs, valid = contact_points(hand, obj)
    assert pts.shape == dirs.shape == (0, 10, 3) and valid.shape == (0, 10)
    assert physical_affinity_loss(hand, obj, reduction="none").shape == (0,)
    assert float(physical_affinity_loss(hand, obj)) == 0.0


def test_contact_on_the_axis_is_finite():
    # (0, 0, 152) touches the end face z+ at its centre (0, 0, 150), which lies on the axis:
    # v = 0. With the eps guard its cosine with any direction is 0, so with one other contact
    # the loss is 0, and the gradients stay finite.
    hand = parked_hand({4: PLUS_X, 8: (0.0, 0.0, 152.0)})[None]
    per_sample = _assert_finite_loss_and_grad(hand, long_box()[None])
    assert float(per_sample[0]) == pytest.approx(0.0, abs=1e-6)


def test_contacts_on_the_axis_agree_in_float32_and_float64():
    # Two joints below the end face z-, within 5 mm of its centre: both touch its centre grid
    # point (0, 0, -150), on the axis, so v = 0 and their cosines (with each other and with the
    # x+ and y+ contacts) are 0, as is the x+/y+ pair's: loss 0. The box is turned and 450 mm
    # away, as in a camera frame. z- is the axis' first end (the point it is measured from is
    # the other one), so v = 0 comes out of a projection with a rounding residue (3e-5 mm in
    # float32), which must not count as a direction: their pair scored cos 1 (loss 0.19).
    generator = torch.Generator().manual_seed(0)
    rotation = axis_angle_to_matrix(torch.randn(5, 3, generator=generator, dtype=torch.float64))
    translation = torch.tensor([120.0, -40.0, 450.0], dtype=torch.float64)
    hand = parked_hand({4: PLUS_X, 8: PLUS_Y, 3: (1.3, -0.7, -152.0), 7: (-2.1, 1.9, -153.0)})
    hand = hand @ rotation.transpose(1, 2) + translation  # (5, 21, 3): five turns
    box = long_box() @ rotation.transpose(1, 2) + translation
    for dtype in (torch.float64, torch.float32):
        _, _, valid = contact_points(hand.to(dtype), box.to(dtype))
        assert (valid.sum(dim=1) == 4).all()
        loss = physical_affinity_loss(hand.to(dtype), box.to(dtype), reduction="none")
        torch.testing.assert_close(loss, torch.zeros(5, dtype=dtype), atol=1e-6, rtol=0)


def test_gradcheck_with_a_contact_on_the_axis():
    # A contact at an end face's centre stays on the axis whatever the corners do (v = 0 for
    # every box), so the loss is smooth there too: the finite differences must not read the
    # rounding residue of v = 0 (1e-14 mm, read through the 1e-6 eps) as a direction. Irregular
    # corners, turned and 500 mm away.
    generator = torch.Generator().manual_seed(6)
    box = long_box() + torch.randn(8, 3, generator=generator, dtype=torch.float64)
    rotation = axis_angle_to_matrix(torch.randn(3, generator=generator, dtype=torch.float64))
    translation = torch.tensor([30.0, -20.0, 500.0], dtype=torch.float64)
    hand = parked_hand({4: PLUS_X, 8: (-47.0, 12.0, -60.0), 12: (8.0, 52.0, 40.0)})
    # Joint 16 2 mm off the centre of z-, the axis' first end.
    hand[16] = box[[0, 1, 2, 3]].mean(dim=0) + torch.tensor([0.4, -0.3, -2.0], dtype=torch.float64)
    hand, box = hand @ rotation.T + translation, box @ rotation.T + translation
    _, dirs, valid = contact_points(hand[None], box[None])
    assert int(valid.sum()) == 4 and float(dirs[valid].norm(dim=-1).min()) < 1e-9
    assert torch.autograd.gradcheck(
        lambda corners: physical_affinity_loss(hand[None], corners, reduction="none"),
        (box[None].clone().requires_grad_(True),),
    )


@settings(max_examples=25, deadline=None)
@given(
    hand=arrays(np.float64, (2, NUM_JOINTS, 3), elements=st.floats(-1e4, 1e4)),
    obj=arrays(np.float64, (2, 8, 3), elements=st.floats(-1e4, 1e4)),
    float32=st.booleans(),
)
def test_property_random_finite_inputs(hand, obj, float32):
    # Any 8 points within 10 m, not only boxes; hypothesis also tries the degenerate ones (all
    # zero, repeated values). The loss is a mean of cosines, so it lies in [-1, 1].
    dtype = torch.float32 if float32 else torch.float64
    per_sample = _assert_finite_loss_and_grad(
        torch.tensor(hand, dtype=dtype), torch.tensor(obj, dtype=dtype)
    )
    assert (per_sample.abs() <= 1 + 1e-5).all()


def test_rejects_bad_shapes():
    with unchecked(), pytest.raises(ValueError, match="hand"):
        physical_affinity_loss(torch.zeros(2, 20, 3), torch.zeros(2, 8, 3))
    with unchecked(), pytest.raises(ValueError, match="obj"):
        contact_points(torch.zeros(2, 21, 3), torch.zeros(2, 4, 3))


@pytest.mark.cuda
def test_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(5)
    hand, obj = random_grasps(generator, [0, 1, 4, 10])
    torch.testing.assert_close(
        physical_affinity_loss(hand.cuda(), obj.cuda(), reduction="none").cpu(),
        physical_affinity_loss(hand, obj, reduction="none"),
    )


def test_a_negative_eta_is_refused():
    hand = torch.zeros(1, 21, 3)
    obj = corner_signs()[None] * 10.0
    with pytest.raises(ValueError, match="eta"):
        physical_affinity_loss(hand, obj, eta=-0.1)
