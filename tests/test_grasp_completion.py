"""Grasp completion (hopose.grasp_completion) and its stage in hopose.refine.refine_pose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval_cases import BOX_SIZE, K, make_predictions
from hopose.geometry import (
    axis_angle_to_matrix,
    box_corners,
    cuboid_error,
    make_transform,
    project_points,
)
from hopose.grasp_completion import grip_box, palm_frame
from hopose.physics import contact_points
from hopose.plausibility import penetration_depth
from hopose.refine import RefineWeights, refine_pose, signed_box_distance


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


def test_palm_frame_of_a_hand_built_in_it_is_the_identity():
    R, origin = palm_frame(_open_hand())
    torch.testing.assert_close(R[0], torch.eye(3, dtype=torch.float64))
    # The mean of the wrist and the four finger MCPs.
    torch.testing.assert_close(origin[0], torch.tensor([62.6, 8.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("shrink", [0.0, 0.5])
def test_grip_box_of_a_hand_built_in_the_palm_frame(shrink):
    # Grip joints: thumb IP and tip, every PIP, DIP and tip. Their extent: x from 30 (thumb IP)
    # to 110 (middle DIP), y from -35 (thumb IP) to 40 (little), z from 8 (little PIP) to 45
    # (middle tip); the wrist, MCPs and thumb CMC/MCP do not count.
    centre = torch.tensor([70.0, 2.5, 26.5], dtype=torch.float64)
    size = (1 - shrink) * torch.tensor([80.0, 75.0, 37.0], dtype=torch.float64)
    expected = box_corners(size, make_transform(torch.eye(3, dtype=torch.float64), centre))
    torch.testing.assert_close(grip_box(_open_hand(), shrink)[0], expected)


def test_grip_box_moves_with_the_hand_and_ignores_its_handedness():
    hand = torch.from_numpy(make_predictions(3)["gt_hand_3d"])
    box = grip_box(hand)
    rotation = axis_angle_to_matrix(torch.tensor([0.7, -1.1, 0.4], dtype=torch.float64))
    shift = torch.tensor([30.0, -50.0, 200.0], dtype=torch.float64)
    torch.testing.assert_close(grip_box(hand @ rotation.T + shift), box @ rotation.T + shift)
    # A mirrored (left) hand holds the mirrored box: the same corners in another order.
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    mirrored = grip_box(hand * mirror)
    nearest = torch.cdist(mirrored, box * mirror).amin(dim=-1)
    torch.testing.assert_close(nearest, torch.zeros_like(nearest), atol=1e-9, rtol=0)


def test_grip_box_is_an_exact_cuboid_touching_the_grip_from_inside():
    # The open hand turned and bent at random (eval_cases' fingers lie in one plane, which
    # gives a flat box).
    generator = torch.Generator().manual_seed(0)
    rotation = axis_angle_to_matrix(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    noise = 10 * torch.randn(3, 21, 3, generator=generator, dtype=torch.float64)
    hand = (_open_hand() + noise) @ rotation.transpose(-1, -2)
    box = grip_box(hand)
    np.testing.assert_allclose(cuboid_error(box).numpy(), 0, atol=1e-9)
    grip = [i for i in range(21) if i not in (0, 1, 2, 5, 9, 13, 17)]
    distance = signed_box_distance(hand[:, grip], box)
    assert (distance <= 1e-9).all()
    torch.testing.assert_close(distance.amax(dim=-1), torch.zeros(3, dtype=torch.float64))


def _collapsed_box_case(offset: float) -> tuple[torch.Tensor, ...]:
    """eval_cases' grasp with its box shrunk to 2 mm about its centre (as a network predicts
    it from small images), moved ``offset`` mm along the box's x, away from the fingers; the
    2D are the projections of that pose."""
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


def test_completion_gives_a_point_like_box_near_the_palm_a_held_box():
    hand, obj, kp2d, K_t = _collapsed_box_case(0.0)
    plain_hand, plain_obj = refine_pose(hand, obj, kp2d, K_t)
    assert (_valid_contacts(plain_hand, plain_obj) < 2).all()
    done_hand, done_obj = refine_pose(hand, obj, kp2d, K_t, RefineWeights(complete_grasp=True))
    assert (_valid_contacts(done_hand, done_obj) >= 2).all()
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


@pytest.mark.parametrize(("field", "value"), [("grip_shrink", 1.0), ("grasp_distance", -1.0)])
def test_refine_weights_reject_completion_settings_out_of_range(field, value):
    with pytest.raises(ValueError, match=f"RefineWeights.{field}"):
        RefineWeights(**{field: value})
