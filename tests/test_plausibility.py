"""Physical plausibility metrics on hand-built cases (hopose.plausibility)."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from killed_main import workers_left_after_kill

from eval_cases import make_predictions
from hopose import plausibility
from hopose.data.grasps import generate_grasps
from hopose.geometry import axis_angle_to_matrix, box_corners, make_transform, transform_points
from hopose.physics import contact_points
from hopose.plausibility import (
    contact_normals,
    contact_wrenches,
    grasp_quality,
    penetration_depth,
    pose_plausibility,
)
from hopose.scoring import PLAUSIBILITY_NAMES, plausibility_columns, summarize_plausibility
from hopose.skeleton import corner_signs
from physics_reference import hull_epsilon_naive
from shape_checking import unchecked


def _box(size=(60.0, 40.0, 100.0), pose=None) -> torch.Tensor:
    """(1, 8, 3) float64 corners of a box centred at the origin (or moved by a (4, 4) pose)."""
    return box_corners(torch.tensor([size], dtype=torch.float64), pose)


def _hand_with(*joints) -> torch.Tensor:
    """(1, 21, 3) hand: the given joints first, the rest far outside any box (x = 1000 mm)."""
    hand = torch.full((1, 21, 3), 1000.0, dtype=torch.float64)
    hand[0, : len(joints)] = torch.tensor(joints, dtype=torch.float64)
    return hand


def _random_pose(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    rotation = axis_angle_to_matrix(torch.randn(3, generator=generator, dtype=torch.float64))
    translation = 300 * torch.randn(3, generator=generator, dtype=torch.float64)
    return make_transform(rotation, translation)


def test_penetration_hand_computed():
    # Box 60 x 40 x 100 mm centred at the origin: faces at x = +-30, y = +-20, z = +-50.
    # (25, 0, 0): inward distances x+ 30 - 25 = 5, x- 55, y+- 20, z+- 50 -> depth 5 mm.
    # (0, 0, 0): the centre, nearest faces y+- at 20 mm -> 20 mm.
    # (35, 0, 0): 5 mm outside the x+ face -> 0.  (30, 0, 0): on the face -> 0.
    hand = _hand_with([25.0, 0.0, 0.0], [0.0, 0.0, 0.0], [35.0, 0.0, 0.0], [30.0, 0.0, 0.0])
    depth = penetration_depth(hand, _box())
    torch.testing.assert_close(depth[0, :4], torch.tensor([5.0, 20.0, 0.0, 0.0]).double())
    assert (depth[0, 4:] == 0).all()


def test_a_batch_of_one_against_a_batch_of_three_is_refused():
    hand, box = torch.zeros(3, 21, 3, dtype=torch.float64), _box()  # box: batch 1
    with unchecked(), pytest.raises(ValueError, match=r"batch shapes differ: \(3,\) vs \(1,\)"):
        penetration_depth(hand, box)
    pts = torch.zeros(3, 10, 3, dtype=torch.float64)
    with unchecked(), pytest.raises(ValueError, match=r"pts must be \(B, K, 3\) for obj's batch"):
        contact_normals(pts, box)


def test_inward_distances_hand_computed():
    # Box 60 x 40 x 100 mm centred at the origin: faces at x = +-30, y = +-20, z = +-50.
    # (25, 0, 0): x+ 30 - 25 = 5, x- 25 + 30 = 55, y+- 20, z+- 50, all positive (inside).
    # (35, 0, 0): x+ 30 - 35 = -5 (outside, 5 mm beyond it), x- 65, y+- 20, z+- 50.
    # Sorted, so the test does not depend on the order of the faces.
    points = torch.tensor([[[25.0, 0.0, 0.0], [35.0, 0.0, 0.0]]], dtype=torch.float64)
    table = plausibility.inward_distances(points, _box())
    assert table.shape == (1, 2, 6)
    expected = [[5.0, 20.0, 20.0, 50.0, 50.0, 55.0], [-5.0, 20.0, 20.0, 50.0, 50.0, 65.0]]
    torch.testing.assert_close(table[0].sort(dim=-1).values, torch.tensor(expected).double())


def test_penetration_rigid_motion_and_exact_box_reference():
    # Reference for an exact box: in the box's own frame, depth = min over axes of
    # (half side - |coordinate|), clamped at 0.
    size = torch.tensor([50.0, 30.0, 120.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    local = (torch.rand(4, 21, 3, generator=generator, dtype=torch.float64) - 0.5) * 1.4 * size
    expected = (size / 2 - local.abs()).min(dim=-1).values.clamp(min=0)
    poses = torch.stack([_random_pose(seed) for seed in range(4)])  # (4, 4, 4)
    hand = transform_points(local, poses)
    obj = box_corners(size.expand(4, 3), poses)
    torch.testing.assert_close(penetration_depth(hand, obj), expected)
    assert (expected > 0).any() and (expected == 0).any()  # both cases are exercised


def test_penetration_distorted_and_degenerate_boxes_are_finite():
    generator = torch.Generator().manual_seed(2)
    # A predicted box: corners moved by up to ~3 mm, so faces are not exactly planar.
    distorted = _box() + 3 * torch.randn(1, 8, 3, generator=generator, dtype=torch.float64)
    hand = _hand_with([0.0, 0.0, 0.0], [200.0, 0.0, 0.0])
    depth = penetration_depth(hand, distorted)
    assert 15 < depth[0, 0] < 25  # near the exact box's 20 mm
    assert depth[0, 1] == 0
    collapsed = torch.zeros(1, 8, 3, dtype=torch.float64)  # all corners equal
    assert torch.isfinite(penetration_depth(hand, collapsed)).all()
    assert (penetration_depth(hand, collapsed) == 0).all()


def test_penetration_rejects_bad_shapes():
    with (
        unchecked(),
        pytest.raises(ValueError, match=r"^hand must have shape \(B, 21, 3\), got \(1, 20, 3\)$"),
    ):
        penetration_depth(torch.zeros(1, 20, 3), torch.zeros(1, 8, 3))


def test_contact_normals_face_interior_edge_and_corner():
    # Points of the 11 x 11 face grids of the 60 x 40 x 100 box: the centre of the x+ face,
    # the middle of the edge shared by x+ and y+, and the corner (+, +, +).
    obj = _box()
    pts = torch.tensor([[[30.0, 0.0, 0.0], [30.0, 20.0, 0.0], [30.0, 20.0, 50.0]]]).double()
    normals = contact_normals(pts, obj)
    s2, s3 = 2**-0.5, 3**-0.5
    expected = torch.tensor([[[-1.0, 0.0, 0.0], [-s2, -s2, 0.0], [-s3, -s3, -s3]]]).double()
    torch.testing.assert_close(normals, expected)


def _opposed_grasp() -> tuple[np.ndarray, np.ndarray]:
    """Three contacts on each of the x+ and x- faces of the 60 x 40 x 120 box, as triangles."""
    contacts = np.array(
        [[30, 10, 20], [30, -10, 20], [30, 0, -20], [-30, 10, -20], [-30, -10, -20], [-30, 0, 20]],
        dtype=float,
    )
    normals = np.array([[-1.0, 0.0, 0.0]] * 3 + [[1.0, 0.0, 0.0]] * 3)
    return contacts, normals


def _epsilon(contacts, normals, **kwargs) -> float:
    valid = np.ones((1, len(contacts)), bool)
    return float(grasp_quality(contacts[None], normals[None], valid, np.zeros((1, 3)), **kwargs)[0])


def test_grasp_quality_force_closure_is_positive():
    """Two opposed triangles of contacts are force closure, and epsilon is the naive hull's."""
    # The farthest contact from the centre, (30, +-10, 20) or (-30, +-10, -20), sets the default
    # length: sqrt(30^2 + 10^2 + 20^2) = sqrt(1400) mm.
    contacts, normals = _opposed_grasp()
    wrenches = contact_wrenches(contacts, normals, np.zeros(3), np.sqrt(1400.0))
    epsilon = _epsilon(contacts, normals)
    assert epsilon > 0.01
    assert epsilon == pytest.approx(hull_epsilon_naive(wrenches), rel=1e-9)


def test_grasp_quality_one_face_is_zero():
    # All six contacts on the x+ face: every edge force has normal component f_x = -1, so the
    # plane f_x = 0 separates the hull from the origin.
    contacts, _ = _opposed_grasp()
    contacts[:, 0] = 30.0
    normals = np.array([[-1.0, 0.0, 0.0]] * 6)
    assert _epsilon(contacts, normals) == 0.0


def test_grasp_quality_two_antipodal_points_is_zero():
    # Two opposed point contacts on the x axis resist no torque about x: the hull is flat in 6-D.
    contacts = np.array([[30.0, 0.0, 0.0], [-30.0, 0.0, 0.0]])
    normals = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert _epsilon(contacts, normals) == 0.0


def test_grasp_quality_invalid_contacts_do_not_count():
    contacts, normals = _opposed_grasp()
    valid = np.array([[True] * 3 + [False] * 3])  # only the x+ face remains
    length = np.array([70.0])
    quality = grasp_quality(contacts[None], normals[None], valid, np.zeros((1, 3)), length=length)
    assert quality[0] == 0.0


def test_grasp_quality_leaves_out_contacts_without_a_normal_or_a_finite_position():
    """Contacts marked valid but with a zero normal (on a degenerate box) or a non-finite
    position cannot push: epsilon is that of the other contacts. The zero-normal one, 100 mm
    out, would also set the default torque length (100 mm instead of sqrt(1400)) if it
    counted."""
    contacts, normals = _opposed_grasp()
    extra = np.array([[100.0, 0.0, 0.0], [np.nan, 0.0, 0.0], [0.0, np.inf, 0.0]])
    extra_normals = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    with_extra = _epsilon(
        np.concatenate([contacts, extra]), np.concatenate([normals, extra_normals])
    )
    assert with_extra == pytest.approx(_epsilon(contacts, normals), rel=1e-12)


def test_grasp_quality_repeated_contacts_count_once():
    # Two joints may share a support point; the hull of the wrenches is the same set.
    contacts, normals = _opposed_grasp()
    doubled = _epsilon(np.tile(contacts, (2, 1)), np.tile(normals, (2, 1)), length=np.array([70.0]))
    assert doubled == pytest.approx(_epsilon(contacts, normals, length=np.array([70.0])))


def test_grasp_quality_invariances_and_friction():
    contacts, normals = _opposed_grasp()
    base = _epsilon(contacts, normals, length=np.array([70.0]))
    # A rigid motion moves contacts, normals and centre together: the wrench hull only rotates.
    rotation = axis_angle_to_matrix(torch.tensor([0.4, -1.1, 0.7], dtype=torch.float64)).numpy()
    shift = np.array([12.0, -40.0, 300.0])
    valid = np.ones((1, 6), bool)
    moved = grasp_quality(
        (contacts @ rotation.T + shift)[None],
        (normals @ rotation.T)[None],
        valid,
        shift[None],
        length=np.array([70.0]),
    )[0]
    assert moved == pytest.approx(base, rel=1e-6)
    # Scaling the scene and the characteristic length together leaves the scaled torques alone.
    assert _epsilon(3 * contacts, normals, length=np.array([210.0])) == pytest.approx(base)
    # A wider friction cone contains the narrower one: epsilon cannot drop.
    assert _epsilon(contacts, normals, mu=0.2) <= _epsilon(contacts, normals) + 1e-12
    assert _epsilon(contacts, normals) <= _epsilon(contacts, normals, mu=1.0) + 1e-12


def test_grasp_epsilon_of_contacts_on_face_centre_lines_turns_with_the_box():
    # Six joints 2 mm outside the 60 x 40 x 120 box: five over face centres (their offsets from
    # the box's centre lie along the normals, so the offset gives no tangent) and one off-centre.
    # Their friction pyramids are oriented by the box's own axes, so a rigid motion of hand and
    # box leaves epsilon as it was; oriented by the camera's axes (the default of a direct
    # grasp_quality call, as pose_plausibility was before) it moved by up to 2% here.
    box = _box((60.0, 40.0, 120.0))
    hand = _hand_with([32, 0, 0], [-32, 0, 0], [0, 22, 0], [0, -22, 0], [0, 0, 62], [32, 8, 24])
    base = pose_plausibility(hand, box)
    assert base["valid_contacts"][0] == 6 and base["grasp_epsilon"][0] > 0.1
    for axis_angle in ([0.4, -1.1, 0.7], [2.0, 0.3, -0.5]):
        pose = make_transform(
            axis_angle_to_matrix(torch.tensor(axis_angle, dtype=torch.float64)),
            torch.tensor([12.0, -40.0, 300.0], dtype=torch.float64),
        )
        moved = pose_plausibility(transform_points(hand, pose), transform_points(box, pose))
        assert moved["grasp_epsilon"][0] == pytest.approx(base["grasp_epsilon"][0], rel=1e-8)


def test_grasp_quality_rejects_bad_parameters():
    contacts, normals = _opposed_grasp()
    with pytest.raises(ValueError, match="mu"):
        _epsilon(contacts, normals, mu=-0.1)


def test_grasp_quality_rejects_a_pyramid_of_fewer_than_three_edges():
    """A friction pyramid needs n_edges >= 3 (two edges span a line, not a cone)."""
    contacts, normals = _opposed_grasp()
    with pytest.raises(ValueError, match="n_edges=2"):
        _epsilon(contacts, normals, n_edges=2)
    assert _epsilon(contacts, normals, n_edges=3) >= 0.0  # the smallest pyramid is accepted


def test_contact_wrenches_by_hand():
    """Edge k of the pyramid is n + mu (cos a_k t1 + sin a_k t2), a_k = 2 pi k / n_edges, its
    torque (p - centre) x f / length; rows contact by contact, edges in angle order."""
    # Contact p = (30, 10, 0) with inward normal n = (-1, 0, 0), centre 0, length 10, mu 0.2, 4
    # edges. The offset's tangential part: p - (p.n) n = (30, 10, 0) - (30, 0, 0) = (0, 10, 0),
    # so t1 = (0, 1, 0) and t2 = n x t1 = (0, 0, -1). Angles 0, 90, 180, 270 degrees:
    # f = (-1, 0.2, 0), (-1, 0, -0.2), (-1, -0.2, 0), (-1, 0, 0.2), and p x f / 10:
    # (30, 10, 0) x (-1, 0.2, 0) = (0, 0, 6 + 10) -> (0, 0, 1.6);
    # (30, 10, 0) x (-1, 0, -0.2) = (-2, 6, 10) -> (-0.2, 0.6, 1);
    # (30, 10, 0) x (-1, -0.2, 0) = (0, 0, -6 + 10) -> (0, 0, 0.4);
    # (30, 10, 0) x (-1, 0, 0.2) = (2, -6, 10) -> (0.2, -0.6, 1).
    wrenches = contact_wrenches(
        np.array([[30.0, 10.0, 0.0]]),
        np.array([[-1.0, 0.0, 0.0]]),
        np.zeros(3),
        10.0,
        mu=0.2,
        n_edges=4,
    )
    expected = np.array(
        [
            [-1.0, 0.2, 0.0, 0.0, 0.0, 1.6],
            [-1.0, 0.0, -0.2, -0.2, 0.6, 1.0],
            [-1.0, -0.2, 0.0, 0.0, 0.0, 0.4],
            [-1.0, 0.0, 0.2, 0.2, -0.6, 1.0],
        ]
    )
    np.testing.assert_allclose(wrenches, expected, atol=1e-12)


def test_the_default_friction_is_mu_one_half_over_eight_edges():
    """docs/evaluation.md: mu = 0.5, the cone linearised into a pyramid of 8 edges."""
    # One contact: 8 wrenches, each force the unit normal plus a tangent of length mu = 0.5.
    normal = np.array([[-1.0, 0.0, 0.0]])
    wrenches = contact_wrenches(np.array([[30.0, 10.0, 0.0]]), normal, np.zeros(3), 10.0)
    assert wrenches.shape == (8, 6)
    np.testing.assert_allclose(np.linalg.norm(wrenches[:, :3] - normal, axis=-1), 0.5)
    # grasp_quality's defaults (which pose_plausibility uses) are the same pyramid.
    contacts, normals = _opposed_grasp()
    assert _epsilon(contacts, normals) == pytest.approx(
        _epsilon(contacts, normals, mu=0.5, n_edges=8), rel=1e-12
    )


def test_grasp_quality_divides_torques_by_the_farthest_valid_contact_by_default():
    """Without ``length``, torques are divided by the largest distance from the centre to a
    valid contact."""
    # The opposed grasp's contacts lie sqrt(30^2 + 10^2 + 20^2) = sqrt(1400) = 37.42 mm (four of
    # them) and sqrt(30^2 + 20^2) = sqrt(1300) = 36.06 mm (two) from the centre; an invalid
    # seventh contact at (30, 0, 60), sqrt(4500) = 67.08 mm away, must not set the length.
    contacts, normals = _opposed_grasp()
    contacts = np.concatenate([contacts, [[30.0, 0.0, 60.0]]])
    normals = np.concatenate([normals, [[-1.0, 0.0, 0.0]]])
    valid = np.array([[True] * 6 + [False]])

    def epsilon(length=None):
        args = (contacts[None], normals[None], valid, np.zeros((1, 3)))
        return float(grasp_quality(*args, length=length)[0])

    by_default = epsilon()
    assert by_default == pytest.approx(epsilon(np.array([np.sqrt(1400.0)])), rel=1e-9)
    # The length matters: the mean distance (4 sqrt(1400) + 2 sqrt(1300)) / 6 gives another score.
    mean = (4 * np.sqrt(1400.0) + 2 * np.sqrt(1300.0)) / 6
    assert abs(epsilon(np.array([mean])) - by_default) > 1e-4 * by_default


def test_plausibility_columns_of_the_hand_built_grasp():
    # The ground truth of eval_cases: 10 valid contacts (5 tips at 2 mm, the thumb IP at 4 mm,
    # 4 DIPs at 6 mm; eta * L = 10 mm), 8 of them on x+ and 2 on x-, all at y = 0, so their
    # directions from the axis are +x or -x. Eq. 6 over the 45 pairs: C(8,2) + C(2,2) = 29
    # pairs with cos 1, 8 * 2 = 16 with cos -1 -> (29 - 16) / 45 = 13 / 45.
    predictions = make_predictions(3)
    frames = plausibility_columns(predictions)
    np.testing.assert_array_equal(frames["gt_valid_contacts"], [10, 10, 10])
    np.testing.assert_allclose(frames["gt_affinity"], 13 / 45, rtol=1e-9)
    np.testing.assert_array_equal(frames["gt_penetration_mm"], [0, 0, 0])
    assert (frames["gt_grasp_epsilon"] > 0).all()
    assert set(frames) == {
        f"{who}_{name}"
        for who in ("pred", "gt")
        for name in ("valid_contacts", "affinity", "penetration_mm", "grasp_epsilon", "cuboid_mm")
    }
    np.testing.assert_allclose(frames["gt_cuboid_mm"], 0, atol=1e-9)  # exact boxes
    assert (frames["pred_cuboid_mm"] > 0).all()  # noisy corners


def test_plausibility_columns_degenerate_prediction_is_finite():
    # A predicted box collapsed onto the thumb tip: radius L = 0, so the tip (at distance 0)
    # is a valid contact, but no face has a normal and the contact cannot push.
    predictions = make_predictions(2)
    tip = predictions["pred_hand_3d"][:, 4:5]  # (2, 1, 3)
    predictions["pred_obj_3d"] = np.repeat(tip, 8, axis=1)
    frames = plausibility_columns(predictions)
    assert (frames["pred_valid_contacts"] >= 1).all()
    for name, values in frames.items():
        assert np.isfinite(values).all(), name
    np.testing.assert_array_equal(frames["pred_grasp_epsilon"], [0, 0])
    np.testing.assert_array_equal(frames["pred_penetration_mm"], [0, 0])


def test_pose_plausibility_of_no_frames_is_empty():
    # The chunk loop ran no chunk and torch.cat of nothing raised.
    empty = pose_plausibility(torch.zeros(0, 21, 3), torch.zeros(0, 8, 3))
    assert set(empty) == set(PLAUSIBILITY_NAMES)
    assert all(values.shape == (0,) for values in empty.values())


def test_one_pose_and_a_grid_of_poses_are_scored_as_the_flat_batch_of_them():
    # A single (21, 3) hand with its (8, 3) box gives 0-d arrays, a (2, 2) grid of poses (2, 2)
    # arrays, each value the flat batch's for that pose; before, both met a broadcasting
    # RuntimeError. Hand and box of different batch shapes are refused, each named.
    grasps = generate_grasps(seed=0, indices=np.arange(4), free_fraction=0.0)
    hand, obj = torch.from_numpy(grasps.hand_3d), torch.from_numpy(grasps.obj_3d)
    flat = pose_plausibility(hand, obj)
    one = pose_plausibility(hand[1], obj[1])
    grid = pose_plausibility(hand.reshape(2, 2, 21, 3), obj.reshape(2, 2, 8, 3))
    for name, values in flat.items():
        np.testing.assert_array_equal(one[name], np.asarray(values[1]), strict=True)
        np.testing.assert_array_equal(grid[name], values.reshape(2, 2), strict=True)
    with unchecked(), pytest.raises(ValueError, match=r"batch shapes differ: \(2, 2\) vs \(4,\)"):
        pose_plausibility(hand.reshape(2, 2, 21, 3), obj)
    with unchecked(), pytest.raises(ValueError, match=r"obj must have shape \(B, 8, 3\)"):
        pose_plausibility(hand, obj[:, :4])


def test_plausibility_columns_chunks_agree(monkeypatch):
    predictions = make_predictions(5)
    whole = plausibility_columns(predictions)
    monkeypatch.setattr(plausibility, "CHUNK", 2)
    chunked = plausibility_columns(predictions)
    for name, values in whole.items():
        np.testing.assert_allclose(chunked[name], values, err_msg=name)


def test_a_pose_that_is_not_finite_is_not_judged_and_leaves_the_others_alone():
    # Frame 1's ground-truth hand is the wrist alone (HO-3D's evaluation split): its row is NaN
    # in every column, frames 0 and 2 are what they are without it, and the summaries are over
    # those two: contacts (10 + 10) / 2, not (10 + NaN + 10) / 3.
    predictions = make_predictions(3)
    alone = plausibility_columns({k: v[[0, 2]] for k, v in predictions.items()})
    predictions["gt_hand_3d"][1, 1:] = np.nan
    frames = plausibility_columns(predictions)
    for name, values in frames.items():
        if name.startswith("gt_"):
            assert np.isnan(values[1]), name
        np.testing.assert_array_equal(values[[0, 2]], alone[name], err_msg=name)
    summary = summarize_plausibility(frames)
    assert summary["gt_valid_contacts"] == 10.0 and summary["gt_force_closure"] == 1.0
    # No frame judged at all: every summary is NaN, the affinity too (not the 0 of no pair).
    predictions["gt_hand_3d"][:] = np.nan
    summary = summarize_plausibility(plausibility_columns(predictions))
    assert all(np.isnan(v) for k, v in summary.items() if k.startswith("gt_")), summary


def test_summarize_plausibility_means():
    predictions = make_predictions(3)
    # Frame 0's ground-truth box slides 5 mm along its own +x, into the x+ fingers: their tips
    # (2 mm outside the face) end 5 - 2 = 3 mm inside, the deepest joints of that frame, and
    # the mean over the 3 frames of the deepest penetration is (3 + 0 + 0) / 3 = 1 mm.
    corners = predictions["gt_obj_3d"][0]
    x_axis = (corners[1] - corners[0]) / np.linalg.norm(corners[1] - corners[0])
    predictions["gt_obj_3d"][0] = corners + 5 * x_axis
    summary = summarize_plausibility(plausibility_columns(predictions))
    assert summary["gt_penetration_mm"] == pytest.approx(1.0)
    assert summary["gt_valid_contacts"] == 10.0
    assert summary["gt_affinity"] == pytest.approx(13 / 45)
    assert summary["gt_force_closure"] == 1.0
    frames = plausibility_columns(predictions)
    assert summary["pred_grasp_epsilon"] == pytest.approx(frames["pred_grasp_epsilon"].mean())
    assert summary["pred_force_closure"] == np.mean(frames["pred_grasp_epsilon"] > 0)


def _columns(contacts: list[int], affinity: list[float]) -> dict[str, np.ndarray]:
    """Plausibility columns of the predictions only: the given contacts and affinities, the
    other columns 0."""
    zeros = np.zeros(len(contacts))
    return {
        "pred_valid_contacts": np.array(contacts, dtype=float),
        "pred_affinity": np.array(affinity),
        "pred_penetration_mm": zeros,
        "pred_grasp_epsilon": zeros,
        "pred_cuboid_mm": zeros,
    }


def test_summarize_affinity_averages_the_frames_with_two_contacts():
    # Eq. 6 needs a pair of contacts: a frame with 0 or 1 has affinity 0 and no say in the mean.
    # Frames with 10, 0, 1 and 2 contacts: (0.5 + -0.1) / 2 = 0.2 over the two that qualify
    # (0.4 / 3 over the frames with a contact, 0.4 / 4 over all).
    summary = summarize_plausibility(_columns([10, 0, 1, 2], [0.5, 0.0, 0.0, -0.1]))
    assert summary["pred_affinity"] == pytest.approx(0.2)
    assert summary["pred_valid_contacts"] == pytest.approx(13 / 4)
    assert "gt_affinity" not in summary  # no ground-truth columns, no ground-truth summary
    # No frame qualifies: 0, not the NaN of an empty mean.
    assert summarize_plausibility(_columns([0, 1, 0], [0.0, 0.0, 0.0]))["pred_affinity"] == 0.0


def test_summarize_affinity_leaves_out_a_frame_whose_box_is_out_of_reach():
    # eval_cases' ground truth: 10 contacts and affinity 13 / 45 per frame. Frame 1's box moved
    # 500 mm along the camera's x: no joint within 0.2 L = 10 mm, 0 contacts, affinity 0. The
    # mean stays 13 / 45 over frames 0 and 2 (over all three it would be 26 / 135); with every
    # box moved away none qualifies and it is 0.
    predictions = make_predictions(3)
    predictions["gt_obj_3d"][1] += np.array([500.0, 0.0, 0.0])
    frames = plausibility_columns(predictions)
    np.testing.assert_array_equal(frames["gt_valid_contacts"], [10, 0, 10])
    np.testing.assert_allclose(frames["gt_affinity"], [13 / 45, 0, 13 / 45], rtol=1e-9)
    summary = summarize_plausibility(frames)
    assert summary["gt_affinity"] == pytest.approx(13 / 45)
    assert summary["gt_valid_contacts"] == pytest.approx(20 / 3)
    predictions["gt_obj_3d"] += np.array([500.0, 0.0, 0.0])
    summary = summarize_plausibility(plausibility_columns(predictions))
    assert summary["gt_valid_contacts"] == 0.0 and summary["gt_affinity"] == 0.0


def test_summarize_missing_key_is_named():
    predictions = make_predictions(2)
    del predictions["gt_obj_3d"]
    with pytest.raises(ValueError, match="missing 'gt_obj_3d'"):
        plausibility_columns(predictions)


def test_grasp_quality_matches_the_naive_hull_and_its_workers_agree(monkeypatch):
    # Random contacts on the faces of a 60 x 40 x 100 box: 3-6 of them on random faces, so
    # some grasps are force closure and some not. The subset hulls, their force-closure
    # certificates and the process pool must give what one hull of all wrenches gives.
    rng = np.random.default_rng(0)
    half = np.array([30.0, 20.0, 50.0])
    contacts, normals, valid = np.zeros((24, 6, 3)), np.zeros((24, 6, 3)), np.zeros((24, 6), bool)
    for b in range(24):
        for k in range(rng.integers(3, 7)):
            axis, side = rng.integers(3), rng.choice([-1.0, 1.0])
            point = rng.uniform(-half, half)
            point[axis] = side * half[axis]
            contacts[b, k], normals[b, k, axis], valid[b, k] = point, -side, True
    length = np.full(24, 70.0)
    serial = grasp_quality(contacts, normals, valid, np.zeros((24, 3)), length=length)
    wrenches = [
        contact_wrenches(contacts[b][valid[b]], normals[b][valid[b]], np.zeros(3), 70.0)
        for b in range(24)
    ]
    naive = [hull_epsilon_naive(w) for w in wrenches]
    np.testing.assert_allclose(serial, naive, atol=1e-9)
    np.testing.assert_array_equal(serial > 0, np.array(naive) > 1e-9)
    assert 0 < (serial > 0).sum() < 24  # both kinds occur
    monkeypatch.setattr(plausibility, "MIN_PARALLEL", 1)
    pooled = grasp_quality(contacts, normals, valid, np.zeros((24, 3)), length=length, workers=2)
    np.testing.assert_array_equal(pooled, serial)


@pytest.mark.parametrize("platform", ["darwin", "no fork"])
def test_grasp_quality_scores_in_this_process_where_fork_is_unsafe(monkeypatch, platform):
    # Where fork is missing or unsafe (macOS), no pool may start: the executor raises if made.
    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started")

    if platform == "darwin":
        monkeypatch.setattr(sys, "platform", "darwin")
    else:
        monkeypatch.setattr(plausibility, "get_all_start_methods", lambda: ["spawn"])
    monkeypatch.setattr(plausibility, "ProcessPoolExecutor", no_pool)
    monkeypatch.setattr(plausibility, "MIN_PARALLEL", 1)
    eye = np.eye(3)[None].repeat(2, axis=0)  # two grasps, a contact on each of three faces
    got = grasp_quality(eye, -eye, np.ones((2, 3), bool), np.zeros((2, 3)), workers=2)
    monkeypatch.undo()
    np.testing.assert_array_equal(
        got, grasp_quality(eye, -eye, np.ones((2, 3), bool), np.zeros((2, 3)))
    )


def test_grasp_epsilon_of_noisy_synthetic_grasps_matches_the_naive_hull(monkeypatch):
    # The poses bench_eval.py scores: synthetic grasps (free frames included) and predictions 10
    # mm off, so 8-edge pyramids of up to 10 contacts, force closure and not. Every frame's
    # epsilon must be the naive hull's, whichever path (subset rounds, separating facet, linear
    # programme, full hull) gave it.
    grasps = generate_grasps(seed=0, indices=np.arange(48))
    noisy = grasps.hand_3d + 10 * np.random.default_rng(0).standard_normal(grasps.hand_3d.shape)
    hand = torch.from_numpy(np.concatenate([grasps.hand_3d, noisy]))
    obj = torch.from_numpy(np.concatenate([grasps.obj_3d, grasps.obj_3d]))
    fast = pose_plausibility(hand, obj)["grasp_epsilon"]
    monkeypatch.setattr(plausibility, "epsilon_quality", hull_epsilon_naive)
    naive = pose_plausibility(hand, obj)["grasp_epsilon"]
    np.testing.assert_allclose(fast, naive, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(fast > 0, naive > 1e-9)
    assert 0.2 < (fast > 0).mean() < 0.8  # both kinds occur


def test_pose_plausibility_divides_torques_by_the_boxs_circumscribed_radius():
    # The 60 x 40 x 100 box at the origin; six pads 2 mm off the x+ and x- faces, each over a
    # point of the 11 x 11 face grids (y every 4 mm, z every 10 mm), two opposed triangles:
    # x- at (-30, +-8, -10), (-30, 0, 10); x+ at (30, +-8, 10), (30, 0, -10). The other joints
    # sit at (70, 0, 0), 40 mm off the x+ face, beyond Eq. 5's 0.2 L = 10 mm.
    obj = _box()
    hand = torch.tensor([70.0, 0.0, 0.0], dtype=torch.float64).repeat(1, 21, 1)
    pads = {
        2: [-32.0, 8.0, -10.0], 3: [-32.0, -8.0, -10.0], 4: [-32.0, 0.0, 10.0],
        6: [32.0, 8.0, 10.0], 7: [32.0, -8.0, 10.0], 8: [32.0, 0.0, -10.0],
    }  # fmt: skip
    for joint, point in pads.items():
        hand[0, joint] = torch.tensor(point, dtype=torch.float64)
    pts, _, valid = contact_points(hand, obj)
    expected = sorted((x - 2 * np.sign(x), y, z) for x, y, z in pads.values())
    np.testing.assert_allclose(sorted(pts[valid].numpy().round(6).tolist()), expected, atol=1e-6)
    # The radius: half-sizes (30, 20, 50), sqrt(30^2 + 20^2 + 50^2) = sqrt(3800) = 61.64 mm;
    # the farthest contact is only sqrt(30^2 + 8^2 + 10^2) = sqrt(1064) = 32.62 mm away.
    radius = np.sqrt(30.0**2 + 20.0**2 + 50.0**2)
    args = (
        pts.numpy(),
        contact_normals(pts, obj).numpy(),
        valid.numpy(),
        np.zeros((1, 3)),
    )
    axes = np.eye(3)[None]
    by_radius = grasp_quality(*args, length=np.array([radius]), axes=axes)
    by_contacts = grasp_quality(*args, axes=axes)
    assert by_radius[0] > 0 and by_contacts[0] > 0
    assert abs(by_radius[0] - by_contacts[0]) > 1e-3 * by_radius[0]
    np.testing.assert_allclose(pose_plausibility(hand, obj)["grasp_epsilon"], by_radius, rtol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_contact_normals_of_edge_and_corner_contacts_on_a_turned_far_box(dtype):
    # A 60 x 40 x 100 box turned and moved about 400 mm from the camera: an edge point of
    # contact_points comes out of the two faces' turned grids with different rounding (one face
    # walks the edge from the other end, 1 - 0.7 != 0.3), and must still count as a point of
    # both. In the box's frame, three pads 2 mm outside the box (so 2 mm from a grid point):
    # the thumb tip off the corner (30, 20, 50) along (1, 1, 1) / sqrt3; the index tip off the
    # x+/y+ edge at (30, 20, -30) along (1, 1, 0) / sqrt2; the middle tip off the y+/z- edge at
    # (-12, 20, -50) along (0, 1, -1) / sqrt2. Every other joint is at (100, 0, 0), 70 mm away.
    rotation = axis_angle_to_matrix(torch.tensor([0.4, -0.3, 0.7], dtype=torch.float64))
    pose = make_transform(rotation, torch.tensor([20.0, -30.0, 400.0], dtype=torch.float64))
    x, y, z = rotation.T  # the box's axes in the camera frame
    # (pad joint, point on the box, outward direction, inward normal = -(sum of the faces'
    # outward axes) / sqrt(number of faces)).
    pads = [
        (4, [30.0, 20.0, 50.0], [1.0, 1.0, 1.0], -(x + y + z) / 3**0.5),
        (8, [30.0, 20.0, -30.0], [1.0, 1.0, 0.0], -(x + y) / 2**0.5),
        (12, [-12.0, 20.0, -50.0], [0.0, 1.0, -1.0], -(y - z) / 2**0.5),
    ]
    local = torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64).repeat(21, 1)
    for joint, point, out, _ in pads:
        out = torch.tensor(out, dtype=torch.float64)
        local[joint] = torch.tensor(point, dtype=torch.float64) + 2 * out / out.norm()
    hand = transform_points(local, pose)[None].to(dtype)
    obj = _box(pose=pose).to(dtype)
    pts, _, valid = contact_points(hand, obj)
    normals = contact_normals(pts, obj)
    assert pts.dtype == normals.dtype == dtype
    targets = [(transform_points(torch.tensor([p]).double(), pose)[0], n) for _, p, _, n in pads]
    seen = set()
    for point, normal in zip(pts[valid].double(), normals[valid].double(), strict=True):
        (kind,) = [i for i, (at, _) in enumerate(targets) if (point - at).norm() < 1e-3]
        seen.add(kind)
        torch.testing.assert_close(normal, targets[kind][1], atol=1e-5, rtol=0)
    assert seen == {0, 1, 2}


def test_penetration_of_a_box_with_a_bent_face_uses_the_plane_through_the_faces_mean():
    """The 20 mm cube about the origin with corner 0 raised from z = -10 to -6: face z- (corners
    0, 1, 2, 3) is no longer planar. Its diagonals c2 - c0 = (20, 20, -4) and c3 - c1 =
    (-20, 20, 0) have the cross product (80, 80, 800), |.| = sqrt(652800) = 807.96; the
    corners' mean is (0, 0, -9). A joint at the origin is (0, 0, 9) . (80, 80, 800) / 807.96 =
    7200 / 807.96 = 8.911 mm above that plane and 10 mm from the five other (planar) faces: depth
    8.911. Through corner 0 instead: (10, 10, 6) . (80, 80, 800) / 807.96 = 6400 / 807.96 =
    7.921."""
    obj = corner_signs().double() * 10.0
    obj[0, 2] = -6.0
    hand = torch.zeros(1, 21, 3, dtype=torch.float64)
    depth = penetration_depth(hand, obj[None])
    torch.testing.assert_close(depth, torch.full((1, 21), 7200 / math.sqrt(652800.0)).double())


# A process scoring one grasp over 2 forked workers, one busy with it (a hull that takes a
# minute), one idle, waiting on the task queue; it prints their ids.
POOL_MAIN = textwrap.dedent(
    """
    import multiprocessing
    import threading
    import time
    import numpy as np
    from hopose import plausibility

    def stall(wrenches):
        time.sleep(60)
        return 0.0

    def report():
        while len(multiprocessing.active_children()) < 2:
            time.sleep(0.05)
        print(*(child.pid for child in multiprocessing.active_children()), flush=True)

    plausibility.epsilon_quality = stall
    plausibility.MIN_PARALLEL = 1
    threading.Thread(target=report, daemon=True).start()
    plausibility.grasp_quality(
        np.eye(3)[None], -np.eye(3)[None], np.ones((1, 3), bool), np.zeros((1, 3)), workers=2
    )
    """
)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_grasp_workers_exit_after_their_main_process_is_killed():
    """An evaluation killed while it scores plausibility leaves no workers behind: without
    hopose.data.workers.ExitWithParent both were still there 10 s after the kill (the idle one
    forever), with it they end within a second (it polls every 0.5 s)."""
    left = workers_left_after_kill(POOL_MAIN, timeout=10.0)
    assert not left, f"workers {left} outlived their killed main process"
