"""Physical refinement of a predicted hand and box (beyond the paper; docs/evaluation.md).

A network's 29 keypoints need not describe a grasp that could happen: fingers float a few
millimetres off the box or sink into it, contacts bunch on one side of the axis, and the 8
corners need not form a box. :func:`refine_pose` moves them a little, by a few batched steps of
gradient descent on

``E = w_2d E_2d + w_anchor E_anchor + w_bone E_bone + w_contact E_contact + w_pen E_pen
+ w_affinity L_physical``

- ``E_2d``: each keypoint's reprojection error against the predicted 2D, in mm at the
  keypoint's starting depth (pixels times z / fx along x, z / fy along y), so every term is
  in squared millimetres, and foreshortened by the cosine of the keypoint's ray to the
  optical axis (z / |X|): a projection's sensitivity to depth grows as x / z off the axis,
  and the cosine keeps the term's curvature in every direction at most its on-axis value,
  so the fixed step stays stable for keypoints far off the axis (unchanged near it);
- ``E_anchor``: squared distance to the starting position (the depth is what 2D leaves free);
- ``E_bone``: squared change of the 20 bone lengths;
- ``E_contact``: ``sum_j (max(d_j, 0) - contact_gap)^2`` over the joints j whose signed
  distance d_j to the box is below ``contact_reach`` times the box radius L (Eq. 5's radius).
  Joints lie on the fingers' centre lines, millimetres below the skin, so a finger resting on
  the box holds its joints about ``contact_gap`` off the surface: joints farther out (within
  the reach) are pulled in to that distance, nearer ones pushed out to it. A joint inside
  counts as on the surface, a constant cost: only ``E_pen`` moves it, and the energy stays
  continuous as it leaves the box;
- ``E_pen``: squared depth of the joints inside the box: they are pushed out;
- ``L_physical``: the paper's affinity loss (Eq. 6), which moves the corners so the contacts
  spread around the axis.

The contacts of ``L_physical`` are searched for every ``contact_every`` steps and reused in
between. After each step the corners are replaced by their best-fitting cuboid
(:func:`hopose.geometry.fit_cuboid`), and after the last one every joint still inside the box
is moved to its nearest face, so the output box is an exact cuboid that no joint penetrates.
With ``complete_grasp`` (off by default), a frame without two valid contacts whose box lies
near the palm then has its box moved into the hand's grip, along its own axes and grown to
span the grip (:mod:`hopose.grasp_completion`), the joints inside it again moved to its faces.
The distances to the box use its face planes (:func:`hopose.plausibility.face_planes`), taken
without gradient, so a degenerate box gives finite gradients.

Shapes are jaxtyping annotations (B frames, P points), checked at run time in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from hopose.geometry import box_central_axis, fit_cuboid, project_points
from hopose.grasp_completion import grip_box, needs_completion
from hopose.physics import ETA, TOP_K, physical_affinity_loss, select_contacts
from hopose.plausibility import face_planes, inward_distances
from hopose.skeleton import HAND_BONES, NUM_CORNERS, NUM_JOINTS, layout_tensor

# Floors of the pixel-to-mm scale's denominators: a node at the camera's centre (distance 0 mm,
# whose depth, the numerator, is 0 too) gets the scale 0, not 0 / 0 = NaN; a focal length of
# 0 px (a degenerate K) a huge but finite scale, not inf.
CAMERA_DISTANCE_FLOOR_MM = 1e-6
FOCAL_FLOOR_PX = 1e-6


@dataclass(frozen=True)
class RefineWeights:
    """Weights of the refinement energy (module docstring), each on squared millimetres.

    The step is plain gradient descent, ``x <- x - step * dE/dx``, which lowers a quadratic
    energy at every step where its largest curvature times ``step`` is below 2. The bone term
    couples each joint to its neighbours: its curvature is ``2 w_bone`` times the largest
    eigenvalue of the hand tree's Laplacian (about 6, the wrist's five bones), not ``2 w_bone``,
    so with the defaults the largest curvature times ``step`` is about 1.8 at the start (1.9
    at most over 40 generated grasps) and the step is not a guaranteed descent: with their
    exact 2D, 13 of the 40 frames' energies rose at some step and the batch's at 3 of the 8
    (with ``w_bone`` 0 it fell at every step; measured 2026-12-05). The contact selection, the
    cuboid fit and the final push out of the box are not descent steps either. Every weight,
    ``contact_reach`` and ``contact_gap`` must be finite and >= 0 (a weight of 0 turns its term
    off), ``step`` finite and > 0; a bad field raises ValueError naming it.
    """

    w_2d: float = 1.0
    w_anchor: float = 0.1
    w_bone: float = 1.0
    w_contact: float = 1.0
    w_penetration: float = 2.0
    w_affinity: float = 100.0
    steps: int = 8
    step: float = 0.15
    contact_reach: float = 0.4
    """Joints within this many box radii L of the surface are held ``contact_gap`` off it (Eq. 5
    counts contacts within 0.2). At 0.2 a ground-truth grasp moves less (0.8 mm against 3.2),
    but the demo lifter's refined grasps keep fewer contacts (6.81 a frame against 7.47, the
    truth's 7.45) and reach force closure in 30.5% of frames against 35.0% (the truth's 47.5%;
    docs/evaluation.md, "Physical refinement"). Where ``contact_reach * L`` is below
    ``contact_gap`` (a box of L under 17 mm) the term only pushes joints out, and beyond Eq. 5's
    0.2 L (L under 34 mm) it holds them past what Eq. 5 counts as a contact; generated boxes
    have L of 39 mm or more."""
    contact_gap: float = 6.8
    """mm: the distance to the box surface ``E_contact`` holds the joints within reach at. The
    median distance of the ground-truth joints that lie outside the box within Eq. 5's 0.2 L
    of it, on 4,000 generated grasps (:func:`hopose.data.grasps.generate_grasps`, seed 0, no
    free hands; fingertips alone 5.55 mm, PIPs 8.10): a joint of a touching finger. Refining
    300 ground-truth grasps with their exact 2D moves the hand 3.2 mm on average at 6.8 mm;
    5.7 mm with the joints pulled onto the surface (gap 0: before 2026-12-05), its fingertips
    then 2.8 mm off the box where the truth's are 7.7 (measured 2026-12-05,
    docs/evaluation.md)."""
    grid: int = 5
    """Face grid of the affinity loss during refinement (coarser than the metric's 11, faster).
    Not used to judge whether a grasp is formed (``complete_grasp``): that uses the metric's."""
    contact_every: int = 4
    """Steps between two searches for the affinity's contacts (Eq. 3-4), a quarter of a step's
    time; in between, the same joint-face pairs and grid points are reused on the moved pose
    (a step moves a joint a few millimetres, a grid cell is a quarter of a side)."""
    fit_iterations: int = 1
    """Alternations of :func:`hopose.geometry.fit_cuboid` after each step: the box was a
    cuboid before the step, so the first rotation (the polar factor of the corners' moment) is
    already close; every alternation ends in an exact cuboid."""
    complete_grasp: bool = False
    """Move the box of a frame without a grasp into its hand's grip
    (:mod:`hopose.grasp_completion`): for predictions from images, whose box lies off the
    hand; it raises the object error (docs/evaluation.md)."""
    grip_shrink: float = 0.15
    """Fraction taken off half the grip's extent, the least half-size of the completed box
    (:func:`grip_box`)."""
    grip_move: float = 0.5
    """Fraction of the move that nests the completed box's span and the grip's
    (:func:`grip_box`)."""
    grasp_distance: float = 130.0
    """mm: a box centre farther than this from the palm centre is a free frame, not completed."""

    def __post_init__(self) -> None:
        # A negative weight or step climbs the energy instead of descending it (moves of metres),
        # a NaN one makes every output NaN; a weight (or the reach) of 0 turns its term off. A
        # negative gap would hold the joints inside the box, against E_pen.
        weights = ("w_2d", "w_anchor", "w_bone", "w_contact", "w_penetration", "w_affinity")
        for name in (*weights, "contact_reach", "contact_gap"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RefineWeights.{name} must be finite and >= 0, got {value}")
        if not (math.isfinite(self.step) and self.step > 0):
            raise ValueError(f"RefineWeights.step must be finite and > 0, got {self.step}")
        for name in ("steps", "contact_every", "fit_iterations", "grid"):
            least = 0 if name == "steps" else 1
            if getattr(self, name) < least:
                raise ValueError(
                    f"RefineWeights.{name} must be >= {least}, got {getattr(self, name)}"
                )
        if not 0 <= self.grip_shrink < 1:
            raise ValueError(f"RefineWeights.grip_shrink must be in [0, 1), got {self.grip_shrink}")
        if not 0 <= self.grip_move <= 1:
            raise ValueError(f"RefineWeights.grip_move must be in [0, 1], got {self.grip_move}")
        if self.grasp_distance < 0:
            raise ValueError(
                f"RefineWeights.grasp_distance must be >= 0, got {self.grasp_distance}"
            )


REFINE_WEIGHTS = RefineWeights()
# w_2d for 2D keypoints predicted from an image. The defaults trust the 2D as exact (ground-truth
# 2D, Table 2's protocol); a network's 2D is several pixels off and its box corners span less
# than the truth's (under uncertainty each estimate leans to the middle), so pulling the corners
# onto it shrinks the box. Chosen on the validation split (docs/evaluation.md, "The 2D term from
# images").
IMAGE_W_2D = 0.1


def refine_weights(*, from_images: bool, complete_grasp: bool = False) -> RefineWeights:
    """The weights ``hopose eval --refine`` and ``hopose predict --refine`` use: the defaults,
    with the 2D term at :data:`IMAGE_W_2D` when the 2D was predicted from an image."""
    weights = RefineWeights(complete_grasp=complete_grasp)
    return replace(weights, w_2d=IMAGE_W_2D) if from_images else weights


def refinement(
    refine: bool,
    complete_grasp: bool,
    *,
    from_images: bool,
    names: tuple[str, str] = ("refine", "complete_grasp"),
) -> RefineWeights | None:
    """The weights of the physical refinement ``refine`` asks for
    (:func:`refine_weights`), or None without it.

    Raises:
        ValueError: ``complete_grasp`` without ``refine``: grasp completion is a stage of the
            refinement, and would otherwise be silently skipped. It names the two as ``names``
            says: the Python parameters by default, the options (``--refine``,
            ``--complete-grasp``) from the command line.
    """
    if complete_grasp and not refine:
        raise ValueError(f"{names[1]}: a stage of the refinement, needs {names[0]}")
    if not refine:
        return None
    return refine_weights(from_images=from_images, complete_grasp=complete_grasp)


def signed_box_distance(
    points: Float[Tensor, "*batch P 3"], obj: Float[Tensor, "*batch 8 3"]
) -> Float[Tensor, "*batch P"]:
    """Signed distance of points to a box's face planes: positive outside, negative inside.

    ``-min_j (p - c_j) . n_j`` over the six faces (centre c_j, inward unit normal n_j,
    :func:`hopose.plausibility.inward_distances`): exact for a point inside a cuboid or beside
    one face, a lower bound beside an edge or corner. The planes are taken without gradient.

    Args:
        points: the points.
        obj: box corners.

    Returns:
        The distances, the points' unit.
    """
    return -inward_distances(points, obj.detach()).amin(dim=-1)


def _bone_lengths(hand: Tensor) -> Tensor:
    bones = layout_tensor(HAND_BONES, hand.device)  # (20, 2)
    return torch.linalg.vector_norm(hand[:, bones[:, 1]] - hand[:, bones[:, 0]], dim=-1)


def refinement_energy(
    hand: Float[Tensor, "B 21 3"],
    obj: Float[Tensor, "B 8 3"],
    start: tuple[Float[Tensor, "B 21 3"], Float[Tensor, "B 8 3"]],
    kp2d: Float[Tensor, "B 29 2"],
    K: Float[Tensor, "B 3 3"],
    weights: RefineWeights = REFINE_WEIGHTS,
    selection: Int[Tensor, "B top_k 3"] | None = None,
) -> Float[Tensor, ""]:
    """The energy E of the module docstring, summed over the batch.

    Args:
        hand: joints, mm.
        obj: box corners, mm.
        start: the starting ``(hand, obj)``, anchoring positions, bone lengths and depths.
        kp2d: predicted 2D keypoints (21 joints then 8 corners), pixels of the image K belongs
            to.
        K: intrinsics.
        weights: the terms' weights.
        selection: contact choices of :func:`hopose.physics.select_contacts` for the affinity
            term; by default they are made on this pose.
    """
    hand0, obj0 = start
    nodes, nodes0 = torch.cat([hand, obj], dim=1), torch.cat([hand0, obj0], dim=1)  # (B, 29, 3)
    # Pixels to mm at each keypoint's starting depth, times the cosine of its ray to the axis
    # (module docstring); a point at or behind the camera counts 0. Each axis by its own focal
    # length: with fx != fy (a frame resized to a square) a mean one would weigh a millimetre
    # along one axis more than along the other.
    focal = torch.stack([K[:, 0, 0], K[:, 1, 1]], dim=-1)[:, None]  # (B, 1, 2)
    depth = nodes0[..., 2].clamp(min=0)  # (B, 29)
    cosine = depth / nodes0.norm(dim=-1).clamp(min=CAMERA_DISTANCE_FLOOR_MM)
    mm_per_px = ((depth * cosine)[..., None] / focal.clamp(min=FOCAL_FLOOR_PX)).detach()
    reprojection = (project_points(nodes, K) - kp2d) * mm_per_px
    energy = weights.w_2d * reprojection.square().sum(dim=(-2, -1))
    energy = energy + weights.w_anchor * (nodes - nodes0).square().sum(dim=(-2, -1))
    bone_change = _bone_lengths(hand) - _bone_lengths(hand0)
    energy = energy + weights.w_bone * bone_change.square().sum(dim=-1)

    distance = signed_box_distance(hand, obj)  # (B, 21)
    _, _, radius = box_central_axis(obj.detach())
    # Inside joints count as at distance 0 (module docstring): E_pen alone pushes them out.
    near = distance < weights.contact_reach * radius[:, None]
    off_gap = (distance.clamp(min=0) - weights.contact_gap) * near
    energy = energy + weights.w_contact * off_gap.square().sum(dim=-1)
    energy = energy + weights.w_penetration * distance.clamp(max=0).square().sum(dim=-1)
    affinity = physical_affinity_loss(
        hand, obj, weights.grid, TOP_K, ETA, reduction="none", selection=selection
    )
    return (energy + weights.w_affinity * affinity).sum()


def push_out(hand: Float[Tensor, "B 21 3"], obj: Float[Tensor, "B 8 3"]) -> Float[Tensor, "B 21 3"]:
    """Each joint inside the box moved along its nearest face's normal onto that face.

    Args:
        hand: joints.
        obj: corners of an exact cuboid (for other boxes the move is approximate).

    Returns:
        The joints, none inside.
    """
    _, normals = face_planes(obj)  # (B, 6, 3)
    depth, face = inward_distances(hand, obj).min(dim=-1)  # (B, 21): to the nearest face's plane
    outward = -torch.gather(normals, 1, face[..., None].expand(-1, -1, 3))  # (B, 21, 3)
    return hand + depth.clamp(min=0)[..., None] * outward


# Inference mode off for the whole descent: under torch.inference_mode no graph is recorded (the
# gradient steps need one) and every tensor made is an inference tensor, which autograd refuses.
@torch.inference_mode(False)
def refine_pose(
    hand_3d: Float[Tensor, "B 21 3"],
    obj_3d: Float[Tensor, "B 8 3"],
    kp2d: Float[Tensor, "B 29 2"],
    K: Float[Tensor, "B 3 3"],
    weights: RefineWeights = REFINE_WEIGHTS,
) -> tuple[Float[Tensor, "B 21 3"], Float[Tensor, "B 8 3"]]:
    """Refine predicted joints and corners towards a physically plausible grasp.

    Args:
        hand_3d: predicted joints, mm, camera frame.
        obj_3d: predicted box corners, same frame.
        kp2d: predicted 2D keypoints (21 joints then 8 corners), pixels of the image that
            ``K`` describes.
        K: intrinsics.
        weights: the energy's weights, steps and step size (:class:`RefineWeights`).

    Returns:
        ``(hand, obj)``: joints and the corners of an exact cuboid, detached, in ``hand_3d``'s
        and ``obj_3d``'s dtypes. The descent runs in ``hand_3d``'s dtype, at least float32: a
        float16 or bfloat16 pose is refined in float32 and only the result rounded back.

    Raises:
        ValueError: an input of another shape, or of another batch size B than ``hand_3d``.
    """
    inputs = {
        "hand_3d": (hand_3d, (NUM_JOINTS, 3)),
        "obj_3d": (obj_3d, (NUM_CORNERS, 3)),
        "kp2d": (kp2d, (NUM_JOINTS + NUM_CORNERS, 2)),
        "K": (K, (3, 3)),
    }
    for name, (tensor, shape) in inputs.items():
        if tensor.ndim != 3 or tensor.shape[1:] != shape:
            expected = f"(B, {shape[0]}, {shape[1]})"
            raise ValueError(f"refine_pose: {name} must be {expected}, got {tuple(tensor.shape)}")
        # Each frame's own: a batch of 1 would otherwise be broadcast to every frame.
        if tensor.shape[0] != hand_3d.shape[0]:
            raise ValueError(
                f"refine_pose: {name} holds {tensor.shape[0]} frames, hand_3d {hand_3d.shape[0]}"
            )
    # At least float32 (float64 stays float64): fit_cuboid's SVD and determinant have no half
    # kernels (hopose.geometry), and a half step would round millimetre moves away.
    dtype = torch.promote_types(hand_3d.dtype, torch.float32)
    with torch.no_grad():
        # Copies, made with inference mode off (the decorator): normal tensors, which autograd
        # may save for backward, even of inputs made under torch.inference_mode.
        start = (hand_3d.to(dtype, copy=True), fit_cuboid(obj_3d.to(dtype)))
        kp2d, K = kp2d.to(start[0], copy=True), K.to(start[0], copy=True)
    hand, obj = start[0].clone(), start[1].clone()
    for step in range(weights.steps):
        if step % weights.contact_every == 0:
            selection = select_contacts(hand, obj, weights.grid, TOP_K)
        hand.requires_grad_(True)
        obj.requires_grad_(True)
        with torch.enable_grad():
            energy = refinement_energy(hand, obj, start, kp2d, K, weights, selection)
            grad_hand, grad_obj = torch.autograd.grad(energy, (hand, obj))
        with torch.no_grad():
            hand = hand - weights.step * grad_hand
            obj = fit_cuboid(obj - weights.step * grad_obj, iterations=weights.fit_iterations)
    with torch.no_grad():
        hand = push_out(hand, obj)
        if weights.complete_grasp:
            # Whether a grasp is already formed is judged on the metric's grid (the default),
            # not on the coarse one of the affinity term (weights.grid): on a 5 x 5 grid a pad
            # between two grid rows can lie beyond Eq. 5's 0.2 L, and a held box would be moved
            # and grown.
            complete = needs_completion(hand, obj, weights.grasp_distance)
            complete = complete[:, None, None]
            obj = torch.where(
                complete,
                grip_box(hand, obj, shrink=weights.grip_shrink, move=weights.grip_move),
                obj,
            )
            hand = torch.where(complete, push_out(hand, obj), hand)
        return hand.to(hand_3d.dtype), obj.to(obj_3d.dtype)


def refine_predictions(
    predictions: Mapping[str, Any], weights: RefineWeights = REFINE_WEIGHTS, chunk: int = 1024
) -> dict[str, np.ndarray]:
    """``predictions`` (the arrays of ``hopose eval``) with ``pred_hand_3d`` and ``pred_obj_3d``
    refined by :func:`refine_pose` from ``pred_hand_2d``, ``pred_obj_2d`` and ``K``; the
    unrefined ones are kept as ``unrefined_hand_3d`` and ``unrefined_obj_3d``."""
    out = dict(predictions)
    # Empty float32 arrays (refine_pose's dtype here) first, so that zero frames give (0, 21, 3)
    # and (0, 8, 3) as refine_pose does for B = 0: np.concatenate of no arrays raises.
    hands = [np.zeros((0, NUM_JOINTS, 3), dtype=np.float32)]
    boxes = [np.zeros((0, NUM_CORNERS, 3), dtype=np.float32)]
    for s in range(0, len(predictions["pred_hand_3d"]), chunk):
        part = {k: torch.as_tensor(np.asarray(predictions[k][s : s + chunk])) for k in (
            "pred_hand_3d", "pred_obj_3d", "pred_hand_2d", "pred_obj_2d", "K")}  # fmt: skip
        kp2d = torch.cat([part["pred_hand_2d"], part["pred_obj_2d"]], dim=1).float()
        hand, obj = refine_pose(
            part["pred_hand_3d"].float(), part["pred_obj_3d"].float(), kp2d, part["K"], weights
        )
        hands.append(hand.numpy())
        boxes.append(obj.numpy())
    out["unrefined_hand_3d"] = np.asarray(predictions["pred_hand_3d"])
    out["unrefined_obj_3d"] = np.asarray(predictions["pred_obj_3d"])
    out["pred_hand_3d"], out["pred_obj_3d"] = np.concatenate(hands), np.concatenate(boxes)
    return out
