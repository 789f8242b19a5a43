"""Grasp completion: the predicted box moved into the predicted hand's grip, for predictions
that do not grasp it (beyond the paper; docs/evaluation.md).

From 64-pixel images the demo's network of 2026-12-01 predicted a real box, its corner order
(the synthetic data label the box as held in the hand, docs/synthetic.md) right in most frames,
but smaller than the truth (sides 35 x 19 x 120 mm on average, the truth's 64 x 61 x 164) and
57 mm off on average (docs/evaluation.md, "Grasp completion"): few joints came within the
paper's contact filter (Eq. 5, 0.2 box radii) and the refinement had little to pull onto. The
data are grasps, though, and the hand says where its box is: between the thumb and the
fingers. :func:`grip_box` keeps the predicted box's own axes (:func:`hopose.geometry.box_axes`,
so its corner labels and orientation stay), grows it along each axis to span a fraction of the
grip joints' extent (thumb IP and tip, each finger's PIP, DIP and tip) and moves it the least
along its axes so that its span and the grip's nest (or a fraction of that move);
:func:`hopose.refine.push_out` then brings the joints inside onto its faces.

:func:`needs_completion` says which frames get it: those without two valid contacts (Eq. 5) on
their own box (a grasp already formed is left as it is) whose predicted box centre lies within
``grasp_distance`` of the palm centre (a box predicted farther away is read as a free frame,
the hand approaching or releasing it).

Shapes are jaxtyping annotations (B frames), checked at run time in the tests.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from hopose.geometry import box_axes
from hopose.physics import ETA, N_SAMPLES, TOP_K, check_hand_object, contact_points
from hopose.skeleton import CORNER_SIGNS, JOINT_NAMES, layout_tensor

_PALM = tuple(
    JOINT_NAMES.index(n) for n in ("wrist", "index_mcp", "middle_mcp", "ring_mcp", "little_mcp")
)
_GRIP = tuple(
    i for i, n in enumerate(JOINT_NAMES) if n.endswith(("_pip", "_dip", "_tip", "thumb_ip"))
)


def palm_centre(hand: Float[Tensor, "B 21 3"]) -> Float[Tensor, "B 3"]:
    """The mean of the wrist and the four finger MCPs of each hand."""
    return hand[:, layout_tensor(_PALM, hand.device)].mean(dim=1)


def grip_box(
    hand: Float[Tensor, "B 21 3"], obj: Float[Tensor, "B 8 3"], *, shrink: float, move: float
) -> Float[Tensor, "B 8 3"]:
    """``obj`` grown to span the grip joints and moved the least to hold them: its axes, its
    corner labels and, where it is larger than the grip, its size are kept.

    Along each of ``obj``'s own axes (:func:`hopose.geometry.box_axes`) the half-size becomes
    the larger of ``obj``'s and ``(1 - shrink)`` times half the grip joints' extent, and the box
    moves the least along the axis so that its span and the grip's nest: a box longer than the
    grip covers it (the hand holds it somewhere along its length), a shorter one lies within it
    (between the thumb and the fingers). Per axis, with the grip's extent [lo, hi] in ``obj``'s
    frame and the new half-size h, the centre is ``clamp(0, min(lo + h, hi - h), max(lo + h,
    hi - h))``: 0 (no move) when the spans already nest. ``move`` < 1 takes that fraction of the
    move only: the box then grows partly beyond the grip, about the network's place for it. The
    joints then inside the box are what :func:`hopose.refine.push_out` brings onto its faces.

    Args:
        hand: joints.
        obj: corners of an exact cuboid, giving the axes, size and corner labels.
        shrink: fraction in [0, 1) taken off half the grip's extent (refinement's
            ``grip_shrink``, :class:`hopose.refine.RefineWeights`).
        move: fraction in [0, 1] of the move that nests the spans (``grip_move``).

    Returns:
        The corners of an exact cuboid, labelled as ``obj``'s (docs/conventions.md §1).
    """
    check_hand_object(hand, obj)
    U, centre = box_axes(obj)
    grip = hand[:, layout_tensor(_GRIP, hand.device)]  # (B, G, 3)
    local = (grip - centre[:, None]) @ U  # (B, G, 3) coordinates along the axes
    low, high = local.amin(dim=1), local.amax(dim=1)  # (B, 3)
    own = (obj - centre[:, None]) @ U  # (B, 8, 3): corner k at g_k * half-size
    half = torch.maximum(own.abs().amax(dim=1), (1 - shrink) * (high - low) / 2)
    ends = torch.stack([low + half, high - half])  # (2, B, 3) the nesting centres' bounds
    middle = move * torch.clamp(torch.zeros_like(low), ends.amin(dim=0), ends.amax(dim=0))
    signs = layout_tensor(CORNER_SIGNS, hand.device, hand.dtype)  # (8, 3)
    corners = middle[:, None] + signs * half[:, None]  # (B, 8, 3)
    return corners @ U.transpose(-1, -2) + centre[:, None]


def needs_completion(
    hand: Float[Tensor, "B 21 3"],
    obj: Float[Tensor, "B 8 3"],
    grasp_distance: float,
    n_samples: int = N_SAMPLES,
    least_contacts: int = 2,
) -> Bool[Tensor, " B"]:
    """Which frames get :func:`grip_box`: fewer than ``least_contacts`` valid contacts (Eq. 5,
    on an ``n_samples`` face grid) and the box's centroid within ``grasp_distance`` of the palm
    centre.

    Args:
        hand: joints, mm.
        obj: box corners, mm.
        grasp_distance: mm.
        n_samples: grid points per face side of the contact search. The default is the metric's
            11 (docs/conventions.md §2), which counts the contacts the evaluation scores: a
            coarser grid finds fewer (a pad between two of its rows is farther than 0.2 L from
            every grid point) and would call a held grasp free.
        least_contacts: contacts that make a grasp already formed.
    """
    _, _, valid = contact_points(hand, obj, n_samples, TOP_K, ETA)
    near = torch.linalg.vector_norm(obj.mean(dim=1) - palm_centre(hand), dim=-1) <= grasp_distance
    return (valid.sum(dim=-1) < least_contacts) & near
