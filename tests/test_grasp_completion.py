"""Grasp completion (hopose.grasp_completion) and its stage in hopose.refine.refine_pose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval_cases import BOX_SIZE, K, finger, make_predictions
from hopose.geometry import (
    axis_angle_to_matrix,
    box_axes,
    box_corners,
    cuboid_error,
    make_transform,
    project_points,
)
from hopose.grasp_completion import grip_box, needs_completion, palm_centre
from hopose.physics import contact_points
from hopose.plausibility import penetration_depth
from hopose.refine import RefineWeights, refine_pose, signed_box_distance
from shape_checking import unchecked


def _open_hand() -> torch.Tensor:
    """(1, 21, 3) a right hand whose palm frame is the identity: wrist at the origin, middle
    MCP on +x, little MCP on +y of the index's, fingers flexed towards +z."""
    joints = [
        [0, 0, 0],
        *[[10, -30, 0], [20, -35, 5], [30, -35, 20], [40, -30, 30]],  # thumb CMC, MCP, IP, tip
        *[[80, -20, 0], [100, -20, 10], [105, -20, 25], [100, -20, 40]],  # index
        *[[80, 0, 0], [100, 0, 10], [110, 0, 30], [105, 0, 45]],  # middle
        *[[78, 20, 0], [95, 20, 10], [100, 20, 25], [95, 20, 38]],  # ring
        *[[75, 40, 0], [88, 40, 8], [92, 40, 20], [90, 40, 30]],  # little
    ]
    return torch.tensor([joints], dtype=torch.float64)


def test_grip_box_refuses_a_box_batch_other_than_the_hands():
    hand = torch.zeros(3, 21, 3)
    box = box_corners(torch.tensor([40.0, 60.0, 100.0]))[None].expand(1, 8, 3)
    with unchecked(), pytest.raises(ValueError, match=r"batch shapes differ: \(3,\) vs \(1,\)"):
        grip_box(hand, box, shrink=0.0, move=1.0)


def test_palm_centre_is_the_mean_of_the_wrist_and_the_finger_mcps():
    origin = palm_centre(_open_hand())
    torch.testing.assert_close(origin[0], torch.tensor([62.6, 8.0, 0.0], dtype=torch.float64))


def _axis_box(centre, size) -> torch.Tensor:
    """(1, 8, 3) a box along the camera axes."""
    T = make_transform(torch.eye(3, dtype=torch.float64), torch.tensor(centre, dtype=torch.float64))
    return box_corners(torch.tensor(size, dtype=torch.float64), T)[None]


@pytest.mark.parametrize(
    ("shrink", "move", "centre", "size"),
    [
        (0.0, 1.0, (60.0, 2.5, 26.5), (200.0, 75.0, 37.0)),
        (0.5, 1.0, (60.0, 0.0, 23.0), (200.0, 37.5, 30.0)),
        (0.0, 0.5, (60.0, 1.25, 23.25), (200.0, 75.0, 37.0)),
    ],
)
def test_grip_box_of_a_hand_built_along_the_box_axes(shrink, move, centre, size):
    # Grip joints (thumb IP and tip, every PIP, DIP and tip; not the wrist, MCPs, thumb CMC/MCP):
    # x 30 (thumb IP) to 110 (middle DIP), y -35 to 40, z 8 (little PIP) to 45 (middle tip).
    # The box: centre (60, 0, 20), half-sizes (100, 10, 15). Relative to its centre the grip spans
    # x [-30, 50], y [-35, 40], z [-12, 25]; half the grip's extent is (40, 37.5, 18.5).
    # shrink 0: half-sizes max(own, grip) = (100, 37.5, 18.5); centre clamp(0, lo + h, hi - h):
    # x clamp(0, -50, 70) = 0 (the long box covers the grip, unmoved), y 2.5, z 6.5.
    # shrink 0.5: (100, max(10, 18.75), max(15, 9.25)); y clamp(0, -16.25, 21.25) = 0 (the box
    # lies within the grip), z clamp(0, 3, 10) = 3. move 0.5 takes half of each move.
    obj = _axis_box((60.0, 0.0, 20.0), (200.0, 20.0, 30.0))
    box = grip_box(_open_hand(), obj, shrink=shrink, move=move)
    torch.testing.assert_close(box, _axis_box(centre, size))


def _turned_case() -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 21, 3) the open hand turned and bent at random, (3, 8, 3) a turned box near it."""
    generator = torch.Generator().manual_seed(0)
    rotation = axis_angle_to_matrix(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    noise = 10 * torch.randn(3, 21, 3, generator=generator, dtype=torch.float64)
    hand = (_open_hand() + noise) @ rotation.transpose(-1, -2)
    turn = axis_angle_to_matrix(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    obj = box_corners(
        torch.tensor([[30.0, 50.0, 140.0]], dtype=torch.float64),
        make_transform(turn, hand[:, 9] + 20),
    )
    return hand, obj


def test_grip_box_moves_with_the_scene_and_keeps_the_boxs_labels():
    hand, obj = _turned_case()
    box = grip_box(hand, obj, shrink=0.2, move=0.5)
    rotation = axis_angle_to_matrix(torch.tensor([0.7, -1.1, 0.4], dtype=torch.float64))
    shift = torch.tensor([30.0, -50.0, 200.0], dtype=torch.float64)
    moved = grip_box(hand @ rotation.T + shift, obj @ rotation.T + shift, shrink=0.2, move=0.5)
    torch.testing.assert_close(moved, box @ rotation.T + shift)
    # A mirrored scene (a left hand) gives the mirrored box, corner for corner.
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(
        grip_box(hand * mirror, obj * mirror, shrink=0.2, move=0.5), box * mirror
    )
    # Relabelling the predicted box's corners relabels the completed box the same way.
    order = [1, 0, 3, 2, 5, 4, 7, 6]
    torch.testing.assert_close(grip_box(hand, obj[:, order], shrink=0.2, move=0.5), box[:, order])
    # The completed box keeps the predicted box's axes.
    torch.testing.assert_close(box_axes(box)[0], box_axes(obj)[0])


def test_grip_box_is_an_exact_cuboid_holding_the_grip():
    hand, obj = _turned_case()
    # The whole grip and the whole move: the box then holds every grip joint.
    box = grip_box(hand, obj, shrink=0.0, move=1.0)
    np.testing.assert_allclose(cuboid_error(box).numpy(), 0, atol=1e-9)
    grip = [i for i in range(21) if i not in (0, 1, 2, 5, 9, 13, 17)]
    assert (signed_box_distance(hand[:, grip], box) <= 1e-9).all()
    # A box that already spans the grip along every axis stays where it is.
    assert (grip_box(hand, box, shrink=0.0, move=1.0) - box).abs().amax() < 1e-9


def _collapsed_box_case(offset: float) -> tuple[torch.Tensor, ...]:
    """eval_cases' grasp with its box shrunk to 2 mm about its centre (a box predicted far
    too small for the hand to touch), moved ``offset`` mm along the box's x, away from the
    fingers; the 2D are the projections of that pose."""
    predictions = make_predictions(2)
    hand = torch.from_numpy(predictions["gt_hand_3d"])
    obj = torch.from_numpy(predictions["gt_obj_3d"])
    centre = obj.mean(dim=1, keepdim=True)
    x_axis = (obj[:, 1] - obj[:, 0]) / BOX_SIZE[0]
    obj = centre + (obj - centre) / 60 - offset * x_axis[:, None]
    K_t = torch.from_numpy(K).expand(2, 3, 3)
    return hand, obj, project_points(torch.cat([hand, obj], dim=1), K_t), K_t


def _valid_contacts(hand: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    return contact_points(hand, obj)[2].sum(dim=-1)


def test_completion_gives_a_small_box_near_the_palm_a_held_box():
    hand, obj, kp2d, K_t = _collapsed_box_case(0.0)
    plain_hand, plain_obj = refine_pose(hand, obj, kp2d, K_t)
    assert (_valid_contacts(plain_hand, plain_obj) < 2).all()
    # Unshrunk, the box spans the whole grip (thumb tip to finger PIPs along its x): this
    # hand's grip is flat (every joint at y = 0), so a shrunk box would sit between the thumb
    # and the finger tips without touching either.
    weights = RefineWeights(complete_grasp=True, grip_shrink=0.0, grip_move=1.0)
    done_hand, done_obj = refine_pose(hand, obj, kp2d, K_t, weights)
    assert (_valid_contacts(done_hand, done_obj) >= 2).all()
    # The box keeps its axes (and so its corner labels).
    torch.testing.assert_close(box_axes(done_obj)[0], box_axes(plain_obj)[0])
    np.testing.assert_allclose(cuboid_error(done_obj).numpy(), 0, atol=1e-9)
    depth = penetration_depth(done_hand, done_obj).amax(dim=-1)
    torch.testing.assert_close(depth, torch.zeros(2, dtype=torch.float64), atol=1e-9, rtol=0)
    # Only joints inside the new box move, onto its faces: the hand keeps its place.
    assert (done_hand - plain_hand).norm(dim=-1).mean() < 5


@pytest.mark.parametrize("case", ["held", "free"])
def test_completion_leaves_a_held_box_and_a_far_box_alone(case):
    # "held": the ground-truth grasp (ten valid contacts); "free": a point-like box 200 mm
    # beyond the palm (a hand approaching it), past grasp_distance.
    if case == "held":
        predictions = make_predictions(2)
        hand = torch.from_numpy(predictions["pred_hand_3d"])
        obj = torch.from_numpy(predictions["pred_obj_3d"])
        K_t = torch.from_numpy(predictions["K"])
        kp2d = project_points(torch.cat([hand, obj], dim=1), K_t)
    else:
        hand, obj, kp2d, K_t = _collapsed_box_case(200.0)
    plain = refine_pose(hand, obj, kp2d, K_t)
    completed = refine_pose(hand, obj, kp2d, K_t, RefineWeights(complete_grasp=True))
    for a, b in zip(plain, completed, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_completion_leaves_a_pinch_between_the_coarse_grid_rows_alone():
    # A pinch of a 60 x 40 x 180 box (L = (60 + 40) / 2 = 50, Eq. 5 keeps contacts within
    # 0.2 L = 10 mm): the thumb and index pads 2 mm off the x- and x+ faces at height z = 22, the
    # other three fingers curled beyond the box in +x. On the metric's 11 x 11 grid the faces'
    # rows lie every 18 mm along z (z = 18 is 4 mm from the pads: distance sqrt(2^2 + 4^2) =
    # 4.5 mm, valid); on the refinement's 5 x 5 grid every 45 mm (z = 0 and 45, 22 and 23 mm
    # away), so none is valid there. The grasp is formed, and the completion must leave it: judged
    # on the 5-grid, the box was moved and grown to 105 mm along x (22 mm corner error).
    wrist = [[80.0, 0.0, 0.0]]
    thumb = [[-70.0, 0.0, -10.0], [-55.0, 0.0, 5.0], [-40.0, 0.0, 15.0], [-32.0, 0.0, 22.0]]
    index = finger(32.0, 22.0, +1.0)
    others = [p for z in (-5.0, -20.0, -35.0) for p in finger(75.0, z, +1.0)]
    rotation = axis_angle_to_matrix(torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64))
    pose = make_transform(rotation, torch.tensor([0.0, 0.0, 400.0], dtype=torch.float64))
    hand = torch.tensor(wrist + thumb + index + others, dtype=torch.float64)
    hand = (hand @ rotation.T + pose[:3, 3])[None]
    obj = box_corners(torch.tensor([60.0, 40.0, 180.0], dtype=torch.float64), pose)[None]
    K_t = torch.from_numpy(K)[None]
    kp2d = project_points(torch.cat([hand, obj], dim=1), K_t)
    weights = RefineWeights(complete_grasp=True)
    # Thumb tip, index tip and DIP (6 mm off: sqrt(6^2 + 4^2) = 7.2 mm) on the 11-grid.
    assert int(_valid_contacts(hand, obj)) == 3
    assert int(contact_points(hand, obj, n_samples=weights.grid)[2].sum()) == 0
    # The palm centre is 90 mm from the box centre, within grasp_distance: only the contacts
    # keep the completion off.
    assert (palm_centre(hand) - obj.mean(dim=1)).norm() < weights.grasp_distance
    assert not needs_completion(hand, obj, weights.grasp_distance)
    plain = refine_pose(hand, obj, kp2d, K_t)
    completed = refine_pose(hand, obj, kp2d, K_t, weights)
    for a, b in zip(plain, completed, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("field", "value"), [("grip_shrink", 1.0), ("grip_move", 1.5), ("grasp_distance", -1.0)]
)
def test_refine_weights_reject_completion_settings_out_of_range(field, value):
    with pytest.raises(ValueError, match=f"RefineWeights.{field}"):
        RefineWeights(**{field: value})


@pytest.mark.parametrize("contacts", [0, 1, 2, 3])
def test_completion_needs_fewer_than_two_valid_contacts(contacts):
    # The 60 x 40 x 180 box at the origin (L = (60 + 40) / 2 = 50: contacts within 0.2 L =
    # 10 mm). Every joint sits at (70, 0, 0), 40 mm beyond the x+ face, except the first
    # `contacts` of: thumb tip 2 mm off the x- face at (-32, 0, 0), index tip 2 mm off the x+
    # face at (32, 0, 0), middle tip 2 mm off the y+ face at (0, 22, 0), each 2 mm from a point
    # of the 11 x 11 face grids (the face centres). Palm centre = mean of the wrist and the four
    # MCPs = (70, 0, 0), 70 mm from the box centre: near for grasp_distance 130, far for 69.
    obj = box_corners(torch.tensor([[60.0, 40.0, 180.0]], dtype=torch.float64))
    hand = torch.tensor([70.0, 0.0, 0.0], dtype=torch.float64).repeat(1, 21, 1)
    pads = [(4, [-32.0, 0.0, 0.0]), (8, [32.0, 0.0, 0.0]), (12, [0.0, 22.0, 0.0])]
    for joint, point in pads[:contacts]:
        hand[0, joint] = torch.tensor(point, dtype=torch.float64)
    assert int(_valid_contacts(hand, obj)) == contacts
    torch.testing.assert_close(palm_centre(hand), torch.tensor([[70.0, 0.0, 0.0]]).double())
    # Fewer than two contacts: no grasp formed yet, so a box near the palm is completed.
    assert bool(needs_completion(hand, obj, 130.0)) == (contacts < 2)
    assert not needs_completion(hand, obj, 69.0)


def test_a_box_exactly_grasp_distance_from_the_palm_is_still_completed():
    # As above with no contact: the palm centre (70, 0, 0) is exactly 70 mm from the box centre
    # (the origin). "Within grasp_distance" includes it; only a box farther away is free.
    obj = box_corners(torch.tensor([[60.0, 40.0, 180.0]], dtype=torch.float64))
    hand = torch.tensor([70.0, 0.0, 0.0], dtype=torch.float64).repeat(1, 21, 1)
    assert (palm_centre(hand) - obj.mean(dim=1)).norm().item() == 70.0
    assert bool(needs_completion(hand, obj, 70.0))
    assert not needs_completion(hand, obj, 69.99)


@pytest.mark.parametrize(("gap", "completed"), [(9.0, False), (11.0, True)])
def test_a_contact_is_a_pad_within_eta_box_radii_of_the_face(gap, completed):
    # The 60 x 40 x 180 box of the test above (L = 50: Eq. 5's 0.2 L = 10 mm), the other
    # joints parked 40 mm beyond the x+ face, the palm centre 70 mm from the box (near). The
    # thumb and index tips `gap` mm off the x- and x+ face centres (grid points of the 11 x 11
    # grid): at 9 mm both are valid contacts and the grasp is formed; at 11 mm neither is, and
    # the box is completed. A threshold of 0.1 L (5 mm) or 0.4 L (20 mm) would swap the two.
    obj = box_corners(torch.tensor([[60.0, 40.0, 180.0]], dtype=torch.float64))
    hand = torch.tensor([70.0, 0.0, 0.0], dtype=torch.float64).repeat(1, 21, 1)
    hand[0, 4] = torch.tensor([-30.0 - gap, 0.0, 0.0], dtype=torch.float64)
    hand[0, 8] = torch.tensor([30.0 + gap, 0.0, 0.0], dtype=torch.float64)
    assert bool(needs_completion(hand, obj, 130.0)) == completed
