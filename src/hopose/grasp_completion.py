"""Grasp completion: a box the predicted hand holds, for predictions that have none
(beyond the paper; docs/evaluation.md).

From 64-pixel images the demo's network predicts the box as a near-point (its corners ~18 mm
from their mean, the truth's ~94 mm): the image does not settle which corner is which, and the
mean of the symmetric corner orders is the box's middle (docs/synthetic.md). No hand can make
the paper's contacts (Eq. 5, within 0.2 box radii L of a box with L of a few millimetres) on
such a box, whatever the refinement does to the hand. The data are grasps, though, and the hand
(its shape 14 mm off after Procrustes alignment) says where its box is: between the thumb and
the fingers, on the palm side. :func:`grip_box` is that box, the cuboid aligned with the palm
frame (:func:`palm_frame`) that just encloses the grip joints (thumb IP and tip, each finger's
PIP, DIP and tip), shrunk towards its centre by a fraction, so that the joints at its extremes
lie on or near its faces.

:func:`needs_completion` says which frames get it: those without two valid contacts (Eq. 5) on
their own box (a grasp already formed is left as it is) whose predicted box centre lies within
``grasp_distance`` of the palm centre (a box predicted farther away is read as a free frame,
the hand approaching or releasing it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hopose.physics import ETA, TOP_K, contact_points
from hopose.skeleton import JOINT_NAMES, corner_signs

# Guards the palm frame's normalisations: a degenerate hand gives a finite (if arbitrary) frame.
EPS = 1e-6

_PALM = [
    JOINT_NAMES.index(n) for n in ("wrist", "index_mcp", "middle_mcp", "ring_mcp", "little_mcp")
]
_GRIP = [i for i, n in enumerate(JOINT_NAMES) if n.endswith(("_pip", "_dip", "_tip", "thumb_ip"))]


def palm_frame(hand: Tensor) -> tuple[Tensor, Tensor]:
    """The palm's frame: x from the wrist to the middle MCP, y from the index MCP towards the
    little MCP (made orthogonal to x), z = x × y the palm normal (the side a right hand's
    fingers flex to), origin the mean of the wrist and the four finger MCPs.

    Args:
        hand: (B, 21, 3) joints.

    Returns:
        ``(R, origin)``: (B, 3, 3) rotations whose columns are the axes, and (B, 3) origins.
    """
    x = hand[:, JOINT_NAMES.index("middle_mcp")] - hand[:, 0]
    x = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=EPS)
    across = hand[:, JOINT_NAMES.index("little_mcp")] - hand[:, JOINT_NAMES.index("index_mcp")]
    z = torch.linalg.cross(x, across)
    z = z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp(min=EPS)
    return torch.stack([x, torch.linalg.cross(z, x), z], dim=-1), hand[:, _PALM].mean(dim=1)


def grip_box(hand: Tensor, shrink: float = 0.0) -> Tensor:
    """The exact cuboid in the palm frame enclosing the grip joints, shrunk about its centre.

    Its axes are the palm frame's, its half-sizes ``(1 - shrink)`` times half the grip joints'
    extent along each axis. With ``shrink = 0`` every grip joint lies inside or on it and each
    face touches one; the box does not depend on the axes' signs, so a left hand gets the same
    box (its corners in another order).

    Args:
        hand: (B, 21, 3) joints.
        shrink: fraction in [0, 1) taken off each half-size.

    Returns:
        (B, 8, 3) corners in the box order of docs/conventions.md §1.
    """
    R, origin = palm_frame(hand)
    local = (hand[:, _GRIP] - origin[:, None]) @ R  # (B, G, 3) coordinates in the palm frame
    low, high = local.amin(dim=1), local.amax(dim=1)  # (B, 3)
    centre, half = (low + high) / 2, (1 - shrink) * (high - low) / 2
    corners = centre[:, None] + corner_signs().to(hand) * half[:, None]  # (B, 8, 3)
    return corners @ R.transpose(-1, -2) + origin[:, None]


def needs_completion(
    hand: Tensor, obj: Tensor, grasp_distance: float, n_samples: int, least_contacts: int = 2
) -> Tensor:
    """Which frames get :func:`grip_box`: fewer than ``least_contacts`` valid contacts (Eq. 5,
    on an ``n_samples`` face grid) and the box's centroid within ``grasp_distance`` of the palm
    centre.

    Args:
        hand: (B, 21, 3) joints, mm.
        obj: (B, 8, 3) box corners, mm.
        grasp_distance: mm.
        n_samples: grid points per face side of the contact search.
        least_contacts: contacts that make a grasp already formed.

    Returns:
        (B,) bool.
    """
    _, _, valid = contact_points(hand, obj, n_samples, TOP_K, ETA)
    _, origin = palm_frame(hand)
    near = torch.linalg.vector_norm(obj.mean(dim=1) - origin, dim=-1) <= grasp_distance
    return (valid.sum(dim=-1) < least_contacts) & near
