"""The cuboid fit (hopose.geometry.fit_cuboid) and the physical refinement (hopose.refine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval_cases import BOX_SIZE, K, make_predictions
from hopose.data.fpha import FPHA_COLOR_K
from hopose.data.grasps import generate_grasps
from hopose.geometry import (
    axis_angle_to_matrix,
    box_axes,
    box_corners,
    cuboid_error,
    fit_cuboid,
    make_transform,
    project_points,
)
from hopose.grasp_completion import grip_box
from hopose.physics import TOP_K, contact_points, select_contacts
from hopose.plausibility import penetration_depth
from hopose.refine import (
    IMAGE_W_2D,
    REFINE_WEIGHTS,
    RefineWeights,
    push_out,
    refine_pose,
    refine_predictions,
    refine_weights,
    refinement,
    refinement_energy,
    signed_box_distance,
)
from hopose.scoring import score
from hopose.skeleton import corner_signs
from shape_checking import unchecked


def _boxes(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n random float64 boxes: their corners, sizes and rotations."""
    generator = torch.Generator().manual_seed(seed)
    size = 10 + 100 * torch.rand(n, 3, generator=generator, dtype=torch.float64)
    rotation = axis_angle_to_matrix(torch.randn(n, 3, generator=generator, dtype=torch.float64))
    shift = 300 * torch.randn(n, 3, generator=generator, dtype=torch.float64)
    return box_corners(size, make_transform(rotation, shift)), size, rotation


def _edge_lengths(corners: torch.Tensor) -> torch.Tensor:
    """(..., 3) lengths of the edges 0-1, 0-3, 0-4 (the box's own x, y, z)."""
    return torch.stack(
        [(corners[..., i, :] - corners[..., 0, :]).norm(dim=-1) for i in (1, 3, 4)], -1
    )


def _orthogonality(corners: torch.Tensor) -> torch.Tensor:
    """(..., 4): the dot products of the three edge pairs at corner 0 and the distance of
    corner 6 from corner 0 plus the three edges, all 0 for an exact cuboid."""
    e = [corners[..., i, :] - corners[..., 0, :] for i in (1, 3, 4)]
    dots = torch.stack([(e[a] * e[b]).sum(-1) for a, b in ((0, 1), (0, 2), (1, 2))], -1)
    closing = (corners[..., 6, :] - corners[..., 0, :] - e[0] - e[1] - e[2]).norm(dim=-1)
    return torch.cat([dots, closing[..., None]], -1)


# 1 is what refine_pose runs after each step, 8 the default.
@pytest.mark.parametrize("iterations", [1, 2, 8])
def test_fit_cuboid_recovers_a_known_box_and_is_idempotent(iterations):
    boxes, size, _ = _boxes(16)
    fitted = fit_cuboid(boxes, iterations=iterations)
    torch.testing.assert_close(fitted, boxes, atol=1e-9, rtol=0)
    torch.testing.assert_close(_edge_lengths(fitted), size, atol=1e-9, rtol=0)
    noisy = boxes + 4 * torch.randn(
        boxes.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    once = fit_cuboid(noisy, iterations=iterations)
    torch.testing.assert_close(
        _orthogonality(once), torch.zeros(16, 4, dtype=torch.float64), atol=1e-8, rtol=0
    )
    torch.testing.assert_close(fit_cuboid(once, iterations=iterations), once, atol=1e-9, rtol=0)


def test_fit_cuboid_returns_an_exact_cuboid_nearer_than_the_truth():
    boxes, _, _ = _boxes(16, seed=2)
    noisy = boxes + 5 * torch.randn(
        boxes.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    fitted = fit_cuboid(noisy)
    # An exact cuboid: its three edge directions at corner 0 are orthogonal and opposite edges
    # are equal (corner 6 = corner 0 + the three edges).
    torch.testing.assert_close(
        _orthogonality(fitted), torch.zeros(16, 4, dtype=torch.float64), atol=1e-8, rtol=0
    )
    # Least squares: no farther from the noisy corners than the cuboid they were made from.
    assert (
        (fitted - noisy).square().sum((-2, -1)) <= (boxes - noisy).square().sum((-2, -1)) + 1e-9
    ).all()
    np.testing.assert_allclose(cuboid_error(fitted).numpy(), 0, atol=1e-9)
    assert (cuboid_error(noisy) > 1).all()


def test_fit_cuboid_of_a_mirrored_labelling_and_of_a_point():
    boxes, _, _ = _boxes(4, seed=4)
    mirrored = boxes[:, [1, 0, 3, 2, 5, 4, 7, 6]]  # x flipped: a left-handed corner order
    torch.testing.assert_close(fit_cuboid(mirrored), mirrored, atol=1e-9, rtol=0)
    point = torch.full((1, 8, 3), 7.0)
    torch.testing.assert_close(fit_cuboid(point), point)


@pytest.mark.parametrize("iterations", [1, 8])
def test_fit_cuboid_of_mirrored_corners_is_the_mirrored_fit(iterations):
    """Corners reflected in the plane z = 0 are a mirrored labelling of the reflected box; their
    fit is the reflected fit, with one alternation too (refine_pose's), where starting from
    s = 1 had put such boxes up to hundreds of times farther from their corners than needed."""
    boxes, _, _ = _boxes(64, seed=5)
    noisy = boxes + 6 * torch.randn(
        boxes.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64
    )
    reflect = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
    torch.testing.assert_close(
        fit_cuboid(noisy @ reflect, iterations=iterations),
        fit_cuboid(noisy, iterations=iterations) @ reflect,
        atol=1e-9,
        rtol=0,
    )


def _penetrating_cases() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """eval_cases' grasp with joints pushed into the box, and the 2D of the pushed pose.

    Frame 0: every finger slid 8 mm along -x (the x+ fingers' tips 6 mm deep). Frame 1: the
    thumb tip at the box's centre (20 mm deep: half the 40 mm side). Frame 2: the box slid 12 mm
    along +x into the fingers. The 2D keypoints are the projections of these penetrating poses,
    so the 2D term pulls towards them.
    """
    predictions = make_predictions(3)
    hand = torch.from_numpy(predictions["gt_hand_3d"]).clone()
    obj = torch.from_numpy(predictions["gt_obj_3d"]).clone()
    x_axis = (obj[:, 1] - obj[:, 0]) / BOX_SIZE[0]
    hand[0, 5:] -= 8 * x_axis[0]
    hand[1, 4] = obj[1].mean(dim=0)
    obj[2] += 12 * x_axis[2]
    K_t = torch.from_numpy(K).expand(3, 3, 3)
    kp2d = project_points(torch.cat([hand, obj], dim=1), K_t)
    return hand, obj, kp2d, K_t


# The defaults, a contact search every step with two fit alternations (the settings before the
# search was reused) and a search only at the first of 8 steps. The grasp completion has its own
# test below: none of these frames needs it.
@pytest.mark.parametrize(
    "weights",
    [
        RefineWeights(),
        RefineWeights(contact_every=1, fit_iterations=2),
        RefineWeights(contact_every=8),
    ],
)
def test_refinement_never_increases_penetration(weights):
    hand, obj, kp2d, K_t = _penetrating_cases()
    before = penetration_depth(hand, obj).amax(dim=-1)
    assert (before > 5).all()  # 6, 20 and 10 mm deep
    refined_hand, refined_obj = refine_pose(hand, obj, kp2d, K_t, weights)
    after = penetration_depth(refined_hand, refined_obj).amax(dim=-1)
    assert (after <= before).all()
    torch.testing.assert_close(after, torch.zeros(3, dtype=torch.float64), atol=1e-6, rtol=0)
    # The output box is an exact cuboid.
    np.testing.assert_allclose(cuboid_error(refined_obj).numpy(), 0, atol=1e-6)


def test_completion_changes_only_the_frame_without_a_grasp():
    # The three penetrating frames above keep their grasps through the refinement, so the
    # completion must leave them exactly as the refinement alone does. A fourth frame holds the
    # ground-truth hand with its box shrunk 60 times about its centre (1 x 0.67 x 2 mm): no
    # joint comes within 0.2 L of it, and its centre is 64 mm from the palm centre (the wrist at
    # x = 80 and the four MCPs at x = 60 in the box's frame: (80 + 4 * 60) / 5 = 64), within
    # grasp_distance (130 mm). Only that frame's box is replaced by the grip box of the refined
    # hand, and only its joints then inside the new box move, onto its faces.
    hand, obj, kp2d, K_t = _penetrating_cases()
    predictions = make_predictions(1)
    free_hand = torch.from_numpy(predictions["gt_hand_3d"])
    box = torch.from_numpy(predictions["gt_obj_3d"])
    centre = box.mean(dim=1, keepdim=True)
    free_obj = centre + (box - centre) / 60
    palm = free_hand[0, [0, 5, 9, 13, 17]].mean(dim=0)
    assert (centre[0, 0] - palm).norm() == pytest.approx(64.0)
    hand, obj = torch.cat([hand, free_hand]), torch.cat([obj, free_obj])
    kp2d = torch.cat([kp2d, project_points(torch.cat([free_hand, free_obj], 1), K_t[:1])])
    K_t = torch.from_numpy(K).expand(4, 3, 3)

    weights = RefineWeights(complete_grasp=True)
    plain_hand, plain_obj = refine_pose(hand, obj, kp2d, K_t)
    done_hand, done_obj = refine_pose(hand, obj, kp2d, K_t, weights)
    contacts = contact_points(plain_hand, plain_obj)[2].sum(dim=-1)
    assert contacts[:3].min() >= 2 and contacts[3] == 0
    torch.testing.assert_close(done_hand[:3], plain_hand[:3], atol=0, rtol=0)
    torch.testing.assert_close(done_obj[:3], plain_obj[:3], atol=0, rtol=0)
    # Frame 3: the grip box (its defaults: 0.15 off half the grip, half the nesting move) of the
    # refined hand around the refined box's axes, then the joints inside pushed onto its faces.
    grip = grip_box(
        plain_hand[3:], plain_obj[3:], shrink=weights.grip_shrink, move=weights.grip_move
    )
    torch.testing.assert_close(done_obj[3:], grip, atol=1e-9, rtol=0)
    torch.testing.assert_close(done_hand[3:], push_out(plain_hand[3:], grip), atol=1e-9, rtol=0)
    torch.testing.assert_close(box_axes(done_obj[3:])[0], box_axes(plain_obj[3:])[0])
    # The refinement alone keeps the box's 1 x 0.67 x 2 mm. In the box's frame the grip spans
    # x from the thumb IP (-34) to the finger PIPs (32 + 13 = 45) and z from the little to the
    # index chain (-30 to 30), y nothing (a flat hand): the completed edges are
    # (1 - 0.15) * 79 = 67.15 and 0.85 * 60 = 51 mm, and y keeps its own 40 / 60 mm.
    torch.testing.assert_close(
        _edge_lengths(plain_obj[3]), torch.tensor([1.0, 2 / 3, 2.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        _edge_lengths(done_obj[3]),
        torch.tensor([0.85 * 79, 2 / 3, 0.85 * 60], dtype=torch.float64),
        atol=1e-3,
        rtol=0,
    )
    # Completed or not, no joint penetrates and every box is an exact cuboid.
    depth = penetration_depth(done_hand, done_obj).amax(dim=-1)
    torch.testing.assert_close(depth, torch.zeros(4, dtype=torch.float64), atol=1e-6, rtol=0)
    np.testing.assert_allclose(cuboid_error(done_obj).numpy(), 0, atol=1e-6)


def test_refinement_keeps_a_plausible_grasp_close():
    # The ground-truth grasp already holds the box without penetration: refinement holds joints
    # within 0.4 L = 20 mm of a face contact_gap (6.8 mm) off it (the tips are 2 mm off, the
    # thumb's CMC 20 mm), and moves the rest little; the grasp stays force closure.
    predictions = make_predictions(2)
    hand = torch.from_numpy(predictions["gt_hand_3d"])
    obj = torch.from_numpy(predictions["gt_obj_3d"])
    kp2d = torch.from_numpy(
        np.concatenate([predictions["gt_hand_2d"], predictions["gt_obj_2d"]], 1)
    )
    refined_hand, refined_obj = refine_pose(hand, obj, kp2d, torch.from_numpy(predictions["K"]))
    assert (refined_hand - hand).norm(dim=-1).mean() < 5
    assert (refined_obj - obj).norm(dim=-1).max() < 3
    # The push out to the gap: the five fingertips start 2 mm off their faces, nearer than
    # contact_gap, and end between 3 mm and the gap (measured 3.59 to 4.50 mm; the 2D and
    # anchor terms hold them back from 6.8). With the gap at 0 they are pulled onto the surface
    # instead, to within 1.1 mm (measured 0.38 to 1.02 mm). Without E_contact (w_contact = 0)
    # they stay 2 mm off.
    tips = [4, 8, 12, 16, 20]
    torch.testing.assert_close(
        signed_box_distance(hand, obj)[:, tips], torch.full((2, 5), 2.0).double()
    )
    tip_distance = signed_box_distance(refined_hand, refined_obj)[:, tips]
    assert ((tip_distance > 3) & (tip_distance < REFINE_WEIGHTS.contact_gap)).all()
    on_surface = refine_pose(
        hand, obj, kp2d, torch.from_numpy(predictions["K"]), RefineWeights(contact_gap=0.0)
    )
    assert (signed_box_distance(*on_surface)[:, tips] < 1.1).all()
    moved = {
        **predictions,
        "pred_hand_3d": refined_hand.numpy(),
        "pred_obj_3d": refined_obj.numpy(),
    }
    assert score(moved)["pred_force_closure"] == 1.0


def test_refinement_stays_finite_far_off_the_optical_axis():
    # The grasp moved 1,000 mm sideways at 400 mm depth (68 degrees off the axis), its 2D the
    # projection of a 10 mm perturbation: the steps must neither blow up nor fail in the fit.
    predictions = make_predictions(2)
    shift = torch.tensor([1000.0, -300.0, 0.0], dtype=torch.float64)
    hand = torch.from_numpy(predictions["pred_hand_3d"]) + shift
    obj = torch.from_numpy(predictions["pred_obj_3d"]) + shift
    K_t = torch.from_numpy(K).expand(2, 3, 3)
    truth = torch.cat([torch.from_numpy(predictions[f"gt_{p}_3d"]) for p in ("hand", "obj")], 1)
    kp2d = project_points(truth + shift, K_t)
    refined_hand, refined_obj = refine_pose(hand, obj, kp2d, K_t)
    assert torch.isfinite(refined_hand).all() and torch.isfinite(refined_obj).all()
    assert (refined_hand - hand).norm(dim=-1).max() < 50  # moved, not thrown away
    np.testing.assert_allclose(cuboid_error(refined_obj).numpy(), 0, atol=1e-6)


def test_energy_gradients_are_finite_on_degenerate_input():
    # A box collapsed to a point with the hand on it, a hand collapsed to a point, a keypoint
    # at depth 0 and an all-zero K: every term stays finite and so do its gradients.
    hand = torch.zeros(3, 21, 3, dtype=torch.float64)
    obj = torch.zeros(3, 8, 3, dtype=torch.float64)
    hand[1] = 50.0
    obj[1] = box_corners(torch.tensor([[60.0, 40.0, 100.0]], dtype=torch.float64))[0] + 50
    obj[2] = 400.0
    hand[2] = 400.0
    kp2d = torch.zeros(3, 29, 2, dtype=torch.float64)
    K_t = torch.from_numpy(K).repeat(3, 1, 1)
    K_t[2] = 0
    hand.requires_grad_(True)
    obj.requires_grad_(True)
    energy = refinement_energy(hand, obj, (hand.detach(), obj.detach()), kp2d, K_t)
    grads = torch.autograd.grad(energy, (hand, obj))
    assert torch.isfinite(energy)
    assert all(torch.isfinite(g).all() for g in grads)
    refined = refine_pose(hand.detach(), obj.detach(), kp2d, K_t)
    assert all(torch.isfinite(r).all() for r in refined)


def test_refine_predictions_keeps_the_unrefined_pose():
    predictions = make_predictions(2)
    refined = refine_predictions(predictions)
    np.testing.assert_array_equal(refined["unrefined_hand_3d"], predictions["pred_hand_3d"])
    np.testing.assert_array_equal(refined["gt_hand_3d"], predictions["gt_hand_3d"])
    assert refined["pred_obj_3d"].shape == (2, 8, 3)
    # The noisy predicted corners became an exact cuboid.
    corners = torch.from_numpy(refined["pred_obj_3d"]).double()
    np.testing.assert_allclose(cuboid_error(corners).numpy(), 0, atol=1e-3)


@pytest.mark.parametrize("complete_grasp", [False, True])
def test_refine_predictions_of_no_frames_is_empty(complete_grasp):
    # As refine_pose does for B = 0 (an empty split, or a filter that keeps nothing): no chunk
    # runs, and np.concatenate of the empty list of chunks raised.
    shapes = {"pred_hand_3d": (0, 21, 3), "pred_obj_3d": (0, 8, 3), "pred_hand_2d": (0, 21, 2),
              "pred_obj_2d": (0, 8, 2), "K": (0, 3, 3)}  # fmt: skip
    predictions = {key: np.zeros(shape) for key, shape in shapes.items()}
    refined = refine_predictions(predictions, RefineWeights(complete_grasp=complete_grasp))
    assert refined["pred_hand_3d"].shape == (0, 21, 3)
    assert refined["pred_obj_3d"].shape == (0, 8, 3)
    assert refined["unrefined_hand_3d"].shape == (0, 21, 3)
    # The same dtype as refined frames: refine_pose works in float32 here.
    assert refined["pred_hand_3d"].dtype == refined["pred_obj_3d"].dtype == np.float32
    assert refine_predictions(make_predictions(1))["pred_hand_3d"].dtype == np.float32


@pytest.mark.parametrize("field", ["contact_every", "fit_iterations", "grid"])
def test_refine_weights_reject_a_count_below_one(field):
    with pytest.raises(ValueError, match=f"RefineWeights.{field}"):
        RefineWeights(**{field: 0})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("w_2d", -1.0),
        ("w_anchor", -5.0),
        ("w_bone", float("nan")),
        ("w_contact", float("inf")),
        ("w_penetration", -0.5),
        ("w_affinity", float("nan")),
        ("step", 0.0),
        ("step", -0.15),
        ("step", float("nan")),
        ("contact_reach", -1.0),
        ("contact_reach", float("inf")),
        ("contact_gap", -2.0),
        ("contact_gap", float("nan")),
    ],
)
def test_refine_weights_reject_a_negative_or_non_finite_weight_step_or_reach(field, value):
    # A negative step or weight climbs the energy (a step of -0.15 moved the joints 6.5 m), a
    # NaN one makes the pose NaN: refused, naming the field. 0 is a weight's "off".
    with pytest.raises(ValueError, match=rf"^RefineWeights\.{field} must be finite and >"):
        RefineWeights(**{field: value})
    if field != "step":
        RefineWeights(**{field: 0.0})  # 0 is accepted: the term (or the pull) is off


@pytest.mark.parametrize(
    ("argument", "bad", "message"),
    [
        ("obj", (2, 9, 3), r"obj_3d must be \(B, 8, 3\), got \(2, 9, 3\)"),
        ("obj", (2, 8, 2), r"obj_3d must be \(B, 8, 3\), got \(2, 8, 2\)"),
        ("obj", (3, 8, 3), r"obj_3d holds 3 frames, hand_3d 2"),
        ("K", (2, 2, 3), r"K must be \(B, 3, 3\), got \(2, 2, 3\)"),
        ("K", (3, 3), r"K must be \(B, 3, 3\), got \(3, 3\)"),
        ("kp2d", (1, 29, 2), r"kp2d holds 1 frames, hand_3d 2"),
        ("hand", (2, 20, 3), r"hand_3d must be \(B, 21, 3\), got \(2, 20, 3\)"),
    ],
)
def test_refine_pose_refuses_inputs_of_another_shape_or_batch(argument, bad, message):
    # Two frames of eval_cases' grasp; one argument replaced by zeros of a wrong shape. A kp2d
    # of one frame used to be broadcast to both.
    predictions = make_predictions(2)
    inputs = {
        "hand": torch.from_numpy(predictions["gt_hand_3d"]),
        "obj": torch.from_numpy(predictions["gt_obj_3d"]),
        "kp2d": torch.from_numpy(
            np.concatenate([predictions["gt_hand_2d"], predictions["gt_obj_2d"]], 1)
        ),
        "K": torch.from_numpy(predictions["K"]),
    }
    inputs[argument] = torch.zeros(bad, dtype=torch.float64)
    with unchecked(), pytest.raises(ValueError, match=rf"^refine_pose: {message}$"):
        refine_pose(inputs["hand"], inputs["obj"], inputs["kp2d"], inputs["K"])


def test_image_weights_trust_a_shrunk_2d_box_less():
    # The 3D is the truth; the box's 2D corners are shrunk to 0.8 of their spread about their
    # mean, as a network's 2D under uncertainty. The full 2D term pulls the box towards that
    # smaller outline; the image weights (w_2d 0.1) leave it nearer the truth, and with exact 2D
    # the defaults stay in use.
    predictions = make_predictions(2)
    hand = torch.from_numpy(predictions["gt_hand_3d"])
    obj = torch.from_numpy(predictions["gt_obj_3d"])
    box_2d = torch.from_numpy(predictions["gt_obj_2d"])
    box_2d = box_2d.mean(dim=1, keepdim=True) + 0.8 * (box_2d - box_2d.mean(dim=1, keepdim=True))
    kp2d = torch.cat([torch.from_numpy(predictions["gt_hand_2d"]), box_2d], dim=1)
    K_t = torch.from_numpy(predictions["K"])
    errors = {}
    for name, weights in (("exact", REFINE_WEIGHTS), ("image", refine_weights(from_images=True))):
        _, refined_obj = refine_pose(hand, obj, kp2d, K_t, weights)
        errors[name] = (refined_obj - obj).norm(dim=-1).mean().item()
    assert errors["image"] < 0.5 * errors["exact"]
    assert refine_weights(from_images=True).w_2d == IMAGE_W_2D < REFINE_WEIGHTS.w_2d
    assert refine_weights(from_images=False, complete_grasp=True) == RefineWeights(
        complete_grasp=True
    )


def test_fit_cuboid_keeps_a_non_finite_frame_to_itself():
    """A batch element with a NaN or Inf corner comes out NaN; the others are fitted as alone
    (the SVD of a non-finite matrix raised on CPU and stopped the whole batch)."""
    corners, _, _ = _boxes(4, seed=3)
    noisy = corners + torch.randn(
        corners.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    alone = fit_cuboid(noisy)
    broken = noisy.clone()
    broken[1, 2, 0] = float("nan")
    broken[3, 5, 1] = float("inf")
    fitted = fit_cuboid(broken)
    assert fitted[[1, 3]].isnan().all()
    torch.testing.assert_close(fitted[[0, 2]], alone[[0, 2]], rtol=0, atol=0)


@pytest.mark.parametrize("where", ["hand", "obj", "kp2d", "K"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_refine_pose_keeps_a_non_finite_frame_to_itself(where: str, dtype: torch.dtype):
    """A frame whose prediction (or K) is not finite neither crashes the batch nor changes the
    other frames' refinement; its own output is not finite (scored as a diverged prediction)."""
    obj, _, _ = _boxes(3, seed=5)
    obj = obj - obj.mean(dim=1, keepdim=True) + torch.tensor([0.0, 0.0, 500.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(6)
    hand = obj.mean(dim=1, keepdim=True) + 40 * torch.randn(
        3, 21, 3, generator=generator, dtype=torch.float64
    )
    intrinsics = torch.as_tensor(K, dtype=torch.float64).expand(3, 3, 3).clone()
    kp2d = project_points(torch.cat([hand, obj], dim=1), intrinsics)
    hand, obj, kp2d, intrinsics = (x.to(dtype) for x in (hand, obj, kp2d, intrinsics))
    alone = refine_pose(hand[[0, 2]], obj[[0, 2]], kp2d[[0, 2]], intrinsics[[0, 2]])
    inputs = {"hand": hand, "obj": obj, "kp2d": kp2d, "K": intrinsics}
    inputs[where] = inputs[where].clone()
    inputs[where][1].view(-1)[-1] = float("nan")  # a box corner for kp2d
    out_hand, out_obj = refine_pose(inputs["hand"], inputs["obj"], inputs["kp2d"], inputs["K"])
    torch.testing.assert_close(out_hand[[0, 2]], alone[0], rtol=0, atol=0)
    torch.testing.assert_close(out_obj[[0, 2]], alone[1], rtol=0, atol=0)
    assert not out_hand[1].isfinite().all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_refine_pose_of_inference_tensors_and_inside_inference_mode_is_the_ordinary_one(
    dtype: torch.dtype,
):
    """Inputs made under torch.inference_mode (inference tensors, which autograd refuses to save
    for backward; K, of the pose's dtype, was used as it came), and a call made inside
    torch.inference_mode (where no graph is recorded), refine exactly as ordinary inputs do."""
    predictions = make_predictions(3)
    hand = torch.from_numpy(predictions["pred_hand_3d"]).to(dtype)
    obj = torch.from_numpy(predictions["pred_obj_3d"]).to(dtype)
    kp2d = torch.from_numpy(
        np.concatenate([predictions["pred_hand_2d"], predictions["pred_obj_2d"]], 1)
    ).to(dtype)
    intrinsics = torch.from_numpy(predictions["K"]).to(dtype)
    ordinary = refine_pose(hand, obj, kp2d, intrinsics)
    with torch.inference_mode():
        made_there = [x.clone() for x in (hand, obj, kp2d, intrinsics)]
        inside = refine_pose(hand, obj, kp2d, intrinsics)
    of_inference_tensors = refine_pose(*made_there)
    for got in (of_inference_tensors, inside):
        for part, want in zip(got, ordinary, strict=True):
            torch.testing.assert_close(part, want, rtol=0, atol=0)
    assert (ordinary[0] != hand).any()  # the steps did move the joints


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_half_precision_pose_is_refined_as_its_float32_copy(dtype: torch.dtype):
    """A float16 or bfloat16 pose is refined as the float32 copy of its values and the result
    rounded back to its dtype once: before, the cuboid fit's determinant, which has no half
    kernel on the CPU, raised."""
    predictions = make_predictions(2)
    pose = [
        torch.from_numpy(predictions["pred_hand_3d"]),
        torch.from_numpy(predictions["pred_obj_3d"]),
        torch.from_numpy(
            np.concatenate([predictions["pred_hand_2d"], predictions["pred_obj_2d"]], 1)
        ),
        torch.from_numpy(predictions["K"]),
    ]
    half = [x.to(dtype) for x in pose]
    wide = refine_pose(*(x.float() for x in half))
    for part, want in zip(refine_pose(*half), wide, strict=True):
        torch.testing.assert_close(part, want.to(dtype), rtol=0, atol=0)


def test_2d_energy_weighs_a_millimetre_alike_along_x_and_y_when_fx_differs_from_fy():
    # A whole 640x480 frame resized to the 256 network square (hopose eval --gt-2d --refine):
    # fx 46.5, fy 82.7. All 29 keypoints on the optical axis (cosine 1) at depths 300..580 mm,
    # the 2D their starting projection, every other term off. A 1 mm shift of every keypoint
    # moves its projection by f / z pixels, which E_2d turns back into z / f mm: 1 mm per
    # keypoint along either axis, E = 29 * 1 mm^2 = 29. The mean focal length (64.6) gave
    # 29 * (46.5 / 64.6)^2 = 15.0 along x and 29 * (82.7 / 64.6)^2 = 47.5 along y.
    intrinsics = torch.tensor(
        [[[46.5, 0.0, 128.0], [0.0, 82.7, 128.0], [0.0, 0.0, 1.0]]], dtype=torch.float64
    )
    depths = 300.0 + 10.0 * torch.arange(29, dtype=torch.float64)
    nodes = torch.zeros(1, 29, 3, dtype=torch.float64)
    nodes[..., 2] = depths
    kp2d = project_points(nodes, intrinsics)
    only_2d = RefineWeights(
        w_2d=1.0, w_anchor=0.0, w_bone=0.0, w_contact=0.0, w_penetration=0.0, w_affinity=0.0
    )
    energies = []
    for axis in (0, 1):
        moved = nodes.clone()
        moved[..., axis] += 1.0
        energy = refinement_energy(
            moved[:, :21], moved[:, 21:], (nodes[:, :21], nodes[:, 21:]), kp2d, intrinsics, only_2d
        )
        energies.append(energy.item())
    np.testing.assert_allclose(energies, [29.0, 29.0], rtol=1e-12)


def _only(**weight: float) -> RefineWeights:
    """RefineWeights with every energy weight 0 but the one(s) given."""
    off = dict.fromkeys(
        ("w_2d", "w_anchor", "w_bone", "w_contact", "w_penetration", "w_affinity"), 0.0
    )
    return RefineWeights(**(off | weight))


def test_affinity_energy_is_w_affinity_times_eq6_on_hand_built_grasps():
    # A 100 x 100 x 300 mm box, long axis along z, centred 600 mm in front of the camera: the
    # axis runs through the end-face centres, the radius L is the mean side of the 100 x 100
    # end faces, 100, so Eq. 5 keeps contacts within 0.2 * 100 = 20 mm. The refinement's 5 x 5
    # face grid steps 100 / 4 = 25 mm across x and y and 300 / 4 = 75 mm along z, so a joint
    # 2 mm outside a side face at x or y = 0, z in {-75, 0, 75} touches a grid point at 2 mm,
    # and its direction from the axis is that grid point's (50, 0, 0) or (0, 50, 0). The other
    # joints are parked 1000 mm off, so the ten candidates hold only these valid contacts.
    # Frame 0: two contacts on the x+ face (z = -75 and 75) and one on the y+ face: cosines
    # 1, 0, 0, Eq. 6 = (1 + 0 + 0) / 3 = 1/3. Frame 1: x+ and x- opposed: cosine -1, Eq. 6 = -1.
    # With only w_affinity = 6: E = 6 * 1/3 + 6 * (-1) = 2 - 6 = -4.
    centre = torch.tensor([0.0, 0.0, 600.0], dtype=torch.float64)
    box = box_corners(torch.tensor([100.0, 100.0, 300.0], dtype=torch.float64)) + centre
    touching = (
        {4: (52.0, 0.0, -75.0), 8: (52.0, 0.0, 75.0), 12: (0.0, 52.0, 0.0)},
        {4: (52.0, 0.0, 0.0), 8: (-52.0, 0.0, 0.0)},
    )
    hands = []
    for contacts in touching:
        hand = torch.tensor([[1000.0 + 10 * k, 1000.0, 1000.0] for k in range(21)]).double()
        for joint, position in contacts.items():
            hand[joint] = torch.tensor(position, dtype=torch.float64)
        hands.append(hand + centre)
    hand, obj = torch.stack(hands), torch.stack([box, box])
    K_t = torch.from_numpy(K).expand(2, 3, 3)
    kp2d = project_points(torch.cat([hand, obj], dim=1), K_t)
    energy = refinement_energy(hand, obj, (hand, obj), kp2d, K_t, _only(w_affinity=6.0))
    assert energy.item() == pytest.approx(-4.0, abs=1e-9)
    # Each frame alone: 6 * 1/3 = 2 and 6 * (-1) = -6.
    for frame, expected in ((0, 2.0), (1, -6.0)):
        one = slice(frame, frame + 1)
        energy = refinement_energy(
            hand[one], obj[one], (hand[one], obj[one]), kp2d[one], K_t[one], _only(w_affinity=6.0)
        )
        assert energy.item() == pytest.approx(expected, abs=1e-9)


def test_bone_energy_is_w_bone_times_the_squared_length_changes():
    # eval_cases' grasp at 400 mm. The thumb tip (joint 4) slides 2 mm outward along its bone
    # from the IP (joint 3): that bone grows by 2 mm. The index tip (joint 8) slides 1 mm back
    # along its bone towards the DIP (joint 7): that bone shrinks by 1 mm. No other bone ends
    # at either tip, so with only w_bone = 3: E = 3 * (2^2 + (-1)^2) = 3 * 5 = 15.
    predictions = make_predictions(1)
    start = torch.from_numpy(predictions["gt_hand_3d"])
    obj = torch.from_numpy(predictions["gt_obj_3d"])
    hand = start.clone()
    thumb = (start[0, 4] - start[0, 3]) / (start[0, 4] - start[0, 3]).norm()
    index = (start[0, 8] - start[0, 7]) / (start[0, 8] - start[0, 7]).norm()
    hand[0, 4] += 2.0 * thumb
    hand[0, 8] -= 1.0 * index
    K_t = torch.from_numpy(K)[None]
    kp2d = project_points(torch.cat([start, obj], dim=1), K_t)
    energy = refinement_energy(hand, obj, (start, obj), kp2d, K_t, _only(w_bone=3.0))
    assert energy.item() == pytest.approx(15.0, rel=1e-9)
    # A bone-preserving move (the whole hand shifted 5 mm) costs nothing.
    shifted = start + torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64)
    energy = refinement_energy(shifted, obj, (start, obj), kp2d, K_t, _only(w_bone=3.0))
    assert energy.item() == pytest.approx(0.0, abs=1e-9)


def test_anchor_energy_is_w_anchor_times_the_squared_moves():
    # eval_cases' grasp at 400 mm; every joint moved 3 mm along x and every corner 4 mm along z,
    # the 2D and everything else unchanged. With only w_anchor = 0.5:
    # E = 0.5 * (21 * 3^2 + 8 * 4^2) = 0.5 * (189 + 128) = 158.5.
    predictions = make_predictions(1)
    hand0 = torch.from_numpy(predictions["gt_hand_3d"])
    obj0 = torch.from_numpy(predictions["gt_obj_3d"])
    K_t = torch.from_numpy(K)[None]
    kp2d = project_points(torch.cat([hand0, obj0], dim=1), K_t)
    hand = hand0 + torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64)
    obj = obj0 + torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)
    energy = refinement_energy(hand, obj, (hand0, obj0), kp2d, K_t, _only(w_anchor=0.5))
    assert energy.item() == pytest.approx(158.5, rel=1e-12)


def _box_with_joints(joints: dict[int, tuple[float, float, float]]):
    """The 100 x 100 x 300 mm box 600 mm in front of the camera (radius L = 100, as above) and
    a hand whose given joints sit at those box-frame positions, the others parked 1000 mm off."""
    centre = torch.tensor([0.0, 0.0, 600.0], dtype=torch.float64)
    box = box_corners(torch.tensor([100.0, 100.0, 300.0], dtype=torch.float64)) + centre
    hand = torch.tensor([[1000.0 + 10 * k, 1000.0, 1000.0] for k in range(21)]).double()
    for joint, position in joints.items():
        hand[joint] = torch.tensor(position, dtype=torch.float64)
    hand, obj = (hand + centre)[None], box[None]
    K_t = torch.from_numpy(K)[None]
    return hand, obj, project_points(torch.cat([hand, obj], dim=1), K_t), K_t


def test_contact_energy_pulls_the_joints_within_contact_reach_radii_and_penalises_the_ones_inside():
    # Joint 4 10 mm outside the x+ face (x = 50), joint 8 30 mm outside it, joint 12 45 mm
    # outside the y+ face, joint 16 5 mm inside the x+ face. With contact_gap 0 (the surface as
    # the target), contact_reach 0.4 pulls joints within 0.4 * 100 = 40 mm: E_contact = 10^2 +
    # 30^2 = 1000 (joint 12 is beyond the reach, joint 16 inside counts as on the surface: 0);
    # with the reach at 0.2 (20 mm) only joint 4: 100. E_pen with w_penetration = 2: 2 * 5^2 =
    # 50, the outside joints adding nothing.
    hand, obj, kp2d, K_t = _box_with_joints(
        {4: (60.0, 0.0, 0.0), 8: (80.0, 0.0, 0.0), 12: (0.0, 95.0, 0.0), 16: (45.0, 0.0, 0.0)}
    )
    start = (hand, obj)
    for weights, expected in (
        (_only(w_contact=1.0, contact_gap=0.0, contact_reach=0.4), 1000.0),
        (_only(w_contact=1.0, contact_gap=0.0, contact_reach=0.2), 100.0),
        (_only(w_penetration=2.0), 50.0),
    ):
        energy = refinement_energy(hand, obj, start, kp2d, K_t, weights)
        assert energy.item() == pytest.approx(expected, rel=1e-9)


def _naive_refinement(hand, obj, kp2d, K_t, weights):
    """refine_pose written out: `steps` plain gradient steps on the energy, the contacts searched
    on the pose of every `contact_every`-th step, the box refitted to a cuboid after each step,
    then the joints inside pushed out."""
    start = (hand, fit_cuboid(obj))
    hand, obj = (tensor.clone() for tensor in start)
    for step in range(weights.steps):
        if step % weights.contact_every == 0:
            selection = select_contacts(hand, obj, weights.grid, TOP_K)
        hand, obj = hand.requires_grad_(True), obj.requires_grad_(True)
        energy = refinement_energy(hand, obj, start, kp2d, K_t, weights, selection)
        grad_hand, grad_obj = torch.autograd.grad(energy, (hand, obj))
        with torch.no_grad():
            hand = hand - weights.step * grad_hand
            obj = fit_cuboid(obj - weights.step * grad_obj, iterations=weights.fit_iterations)
    return push_out(hand.detach(), obj.detach()), obj.detach()


def test_refine_pose_takes_its_steps_searching_contacts_every_contact_every_steps():
    # The ground-truth grasp with its hand's 2D moved 50 mm along the box's long axis: the 2D
    # term slides the fingers along the faces, far enough within 3 steps for other grid points
    # (and joint-face pairs) to become the nearest, so a search on every step and one search
    # at the first step give poses some micrometres apart (10 um; at 40 mm, 0).
    predictions = make_predictions(2)
    hand = torch.from_numpy(predictions["gt_hand_3d"])
    obj = torch.from_numpy(predictions["gt_obj_3d"])
    axis = obj[:, 4] - obj[:, 0]
    axis = axis / axis.norm(dim=-1, keepdim=True)
    K_t = torch.from_numpy(K).expand(2, 3, 3)
    kp2d = project_points(torch.cat([hand + 50 * axis[:, None], obj], dim=1), K_t)
    outputs = {}
    for every in (1, 3):
        weights = RefineWeights(steps=3, contact_every=every)
        outputs[every] = refine_pose(hand, obj, kp2d, K_t, weights)
        expected = _naive_refinement(hand, obj, kp2d, K_t, weights)
        for got, want in zip(outputs[every], expected, strict=True):
            torch.testing.assert_close(got, want, atol=1e-9, rtol=0)
    assert (outputs[1][0] - outputs[3][0]).abs().max() > 1e-3  # the case tells them apart


def test_zero_steps_fit_the_box_and_push_the_joints_out_only():
    """steps = 0 is allowed (>= 0): no gradient step, the box becomes its best-fitting cuboid
    and the joints inside it are moved onto its faces."""
    hand, obj, kp2d, K_t = _penetrating_cases()
    noisy = obj + torch.randn(obj.shape, generator=torch.Generator().manual_seed(7)).double()
    out_hand, out_obj = refine_pose(hand, noisy, kp2d, K_t, RefineWeights(steps=0))
    fitted = fit_cuboid(noisy)
    torch.testing.assert_close(out_obj, fitted, atol=0, rtol=0)
    torch.testing.assert_close(out_hand, push_out(hand, fitted), atol=0, rtol=0)
    assert (out_hand != hand).any()  # the penetrating joints did move


def test_refinement_weights_follow_the_command_line_flags():
    """--refine gives the defaults from ground-truth 2D and w_2d = IMAGE_W_2D from images;
    --complete-grasp, a stage of the refinement, is refused without --refine instead of being
    silently skipped."""
    assert refinement(False, False, from_images=True) is None
    assert refinement(True, False, from_images=False) == REFINE_WEIGHTS
    assert refinement(True, True, from_images=True) == RefineWeights(
        w_2d=IMAGE_W_2D, complete_grasp=True
    )
    with pytest.raises(
        ValueError, match=r"^complete_grasp: a stage of the refinement, needs refine$"
    ):
        refinement(False, True, from_images=True)
    # From the command line, named as its options.
    flags = ("--refine", "--complete-grasp")
    with pytest.raises(
        ValueError, match=r"^--complete-grasp: a stage of the refinement, needs --refine$"
    ):
        refinement(False, True, from_images=True, names=flags)


@pytest.mark.parametrize("chunk", [1, 2])
def test_refine_predictions_in_chunks_is_refine_pose_of_every_frame(chunk):
    # Three frames in chunks of 1 or 2: every frame refined once, in order, as refine_pose of the
    # whole batch (each frame is refined on its own).
    predictions = make_predictions(3)
    refined = refine_predictions(predictions, chunk=chunk)
    kp2d = np.concatenate([predictions["pred_hand_2d"], predictions["pred_obj_2d"]], 1)
    hand, obj = refine_pose(
        *(torch.from_numpy(predictions[k]).float() for k in ("pred_hand_3d", "pred_obj_3d")),
        torch.from_numpy(kp2d).float(),
        torch.from_numpy(predictions["K"]),
    )
    torch.testing.assert_close(torch.from_numpy(refined["pred_hand_3d"]), hand)
    torch.testing.assert_close(torch.from_numpy(refined["pred_obj_3d"]), obj)


def test_2d_energy_of_keypoints_behind_the_camera_is_zero():
    """The module says a point at or behind the camera counts 0 in E_2d: its mm-per-pixel scale
    is max(z, 0) cos / f = 0. With only w_2d on, a pose 300 mm behind the camera whose 2D is
    far off costs nothing; the same pose mirrored to 300 mm in front costs something."""
    weights = RefineWeights(
        w_2d=1.0, w_anchor=0.0, w_bone=0.0, w_contact=0.0, w_penetration=0.0, w_affinity=0.0
    )
    torch.manual_seed(0)
    hand = torch.rand(1, 21, 3, dtype=torch.float64) * 40 - 20
    obj = corner_signs().double()[None] * 30.0
    K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]]).double()[None]
    kp2d = torch.full((1, 29, 2), 10.0, dtype=torch.float64)
    depth = torch.tensor([0.0, 0.0, 300.0], dtype=torch.float64)
    behind = (hand - depth, obj - depth)
    front = (hand + depth, obj + depth)
    assert float(refinement_energy(*behind, behind, kp2d, K, weights)) == 0.0
    assert float(refinement_energy(*front, front, kp2d, K, weights)) > 1.0


def test_contact_energy_holds_the_joints_within_reach_contact_gap_off_the_surface():
    # The box of the test above (x+ face at x = 50, L = 100, reach 0.4 * 100 = 40 mm), the gap
    # at 4 mm. Joint 4 10 mm outside the x+ face, joint 8 30 mm, joint 20 3 mm (nearer than the
    # gap), joint 12 45 mm outside the y+ face (beyond the reach), joint 16 5 mm inside the x+
    # face (counted at distance 0). E_contact = (10 - 4)^2 + (30 - 4)^2 + (3 - 4)^2 + (0 - 4)^2
    # = 36 + 676 + 1 + 16 = 729. Its gradient is 2 (d - 4) along the face's outward normal +x:
    # 12 and 52 for joints 4 and 8 (a descent step pulls them in), -2 for joint 20 (pushed
    # out), 0 for joint 16 (a constant: E_pen alone moves it) and for every other joint.
    hand, obj, kp2d, K_t = _box_with_joints(
        {
            4: (60.0, 0.0, 0.0),
            8: (80.0, 0.0, 0.0),
            20: (53.0, 0.0, 0.0),
            12: (0.0, 95.0, 0.0),
            16: (45.0, 0.0, 0.0),
        }
    )
    weights = _only(w_contact=1.0, contact_gap=4.0, contact_reach=0.4)
    moving = hand.clone().requires_grad_(True)
    energy = refinement_energy(moving, obj, (hand, obj), kp2d, K_t, weights)
    assert energy.item() == pytest.approx(729.0, rel=1e-12)
    expected = torch.zeros(1, 21, 3, dtype=torch.float64)
    expected[0, [4, 8, 20], 0] = torch.tensor([12.0, 52.0, -2.0], dtype=torch.float64)
    gradient = torch.autograd.grad(energy, moving)[0]
    torch.testing.assert_close(gradient, expected, atol=1e-9, rtol=0)
    # Continuous across the surface: joint 16 just inside or just outside costs 4^2 + the rest.
    for x in (50.0 - 1e-6, 50.0 + 1e-6):
        hand[0, 16, 0] = x
        energy = refinement_energy(hand, obj, (hand, obj), kp2d, K_t, weights)
        assert energy.item() == pytest.approx(729.0, abs=1e-4)


def test_refinement_leaves_generated_ground_truth_grasps_nearly_in_place():
    # 40 generated grasps (no free hands) refined from their exact 2D: the ground truth is the
    # answer, so the refinement should move it little. Their joints lie on the fingers' centre
    # lines, millimetres off the box; with the surface as the contact target (contact_gap 0)
    # the hand moved 6.03 mm on average (7.62 with the image weights) and the fingertips' median
    # distance to the box fell from the truth's 8.6 mm to 3.5 (1.6). With the gap: 3.37 and
    # 4.29 mm moved, the tips' median at 7.4 and 7.1 mm (measured 2026-12-05).
    grasps = generate_grasps(0, np.arange(40), free_fraction=0.0)
    hand, obj = torch.from_numpy(grasps.hand_3d), torch.from_numpy(grasps.obj_3d)
    K_t = torch.from_numpy(FPHA_COLOR_K).expand(40, 3, 3)
    kp2d = project_points(torch.cat([hand, obj], dim=1), K_t)
    tips = [4, 8, 12, 16, 20]
    truth_tips = signed_box_distance(hand, obj)[:, tips].median()
    for from_images, most in ((False, 4.5), (True, 5.5)):
        refined_hand, refined_obj = refine_pose(
            hand, obj, kp2d, K_t, refine_weights(from_images=from_images)
        )
        assert (refined_hand - hand).norm(dim=-1).mean() < most
        tip_distance = signed_box_distance(refined_hand, refined_obj)[:, tips].median()
        assert (tip_distance - truth_tips).abs() < 2.5
