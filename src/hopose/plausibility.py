"""Physical plausibility of hand-object poses: contacts, affinity, penetration, grasp quality.

The paper (§4) measures accuracy only; SPEC §5 adds how physically sound a pose is, computed
the same way on predictions and on ground truth so the two can be read side by side:

- **Valid contacts**: the number of candidate contacts that pass the paper's distance filter
  (Eq. 5), from :func:`hopose.physics.contact_points`.
- **Affinity**: the paper's physical affinity loss (Eq. 6) of the pose, -1/(n-1) for n evenly
  spread contacts, 1 for contacts all on one side of the axis, 0 with fewer than two contacts.
- **Penetration** (:func:`penetration_depth`): how deep each hand joint lies inside the box.
  A predicted box is eight free corners, so it is only approximately a cuboid; each face is
  replaced by its best plane (through the mean of its four corners, normal along the cross
  product of its diagonals, oriented towards the box's centroid) and a joint's depth is its
  least inward distance to the six planes, clamped at 0. For an exact box this is the distance
  from an inside point to the nearest face, and 0 outside.
- **Grasp quality** (:func:`grasp_quality`): the Ferrari-Canny epsilon (Ferrari & Canny, ICRA
  1992; the "L1" quality), the radius of the largest origin-centred ball inside the convex hull
  of the contacts' primitive wrenches. Each valid contact pushes along the inward normal of the
  face it lies on (the normalised sum of the normals of all faces it lies on, for a point on an
  edge or corner), with Coulomb friction ``mu`` (0.5 by default, skin on cardboard or plastic)
  linearised into a pyramid of ``n_edges`` edges, each with unit normal component. Torques are
  taken about the box centroid (the centre of mass of a uniform box) and divided by a
  characteristic length, so that forces and torques are commensurate and the score does not
  change when the whole scene is scaled: the box's circumscribed radius (its centroid's
  largest distance to a corner, as GraspIt! uses the object's maximum radius) in
  :func:`summarize_plausibility`. The score is 0 when the origin is not strictly inside the
  hull, i.e. the grasp is not force closure: all contacts on one face, or fewer contacts than
  needed to span the 6-D wrench space (two opposed point contacts cannot resist a torque about
  the line through them).

Contacts use the paper's defaults (SPEC §2): an 11x11 grid per face, the 10 closest joint-face
pairs, kept within 0.2 times the box radius.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.spatial import ConvexHull, QhullError
from torch import Tensor

from hopose.geometry import face_corners, sample_face_points
from hopose.physics import contact_points, physical_affinity_loss
from hopose.skeleton import NUM_CORNERS, NUM_JOINTS

# Contact search of SPEC §2 (N, top_k, eta), the paper's values.
N_SAMPLES = 11
TOP_K = 10
ETA = 0.2
# Coulomb friction coefficient and number of edges of the linearised friction cone.
MU = 0.5
N_EDGES = 8
# Frames per call of the contact search: its (chunk, 21, 6 * 121) distance table stays small.
CHUNK = 256
# A contact lies on every face whose grid holds a point within this distance of it (mm); the
# grid points of adjacent faces meet exactly at the shared edge, interior points are a grid
# step (a tenth of a side) apart.
ON_FACE_TOL = 1e-6


def face_planes(obj: Tensor) -> tuple[Tensor, Tensor]:
    """Best plane of each face of a (possibly not exactly cuboid) box, normal pointing inwards.

    Args:
        obj: (..., 8, 3) box corners in SPEC §1 order.

    Returns:
        ``(centres, normals)``: (..., 6, 3) mean of each face's corners and (..., 6, 3) unit
        normals towards the box's centroid; a degenerate face (zero area, or a flat box whose
        centroid lies in the face's plane) gets a zero normal.
    """
    quads = face_corners(obj)  # (..., 6, 4, 3)
    centres = quads.mean(dim=-2)
    a, b, c, d = quads.unbind(dim=-2)
    # The cross product of a quad's diagonals is normal to its least-squares plane (Newell).
    normals = torch.linalg.cross(c - a, d - b, dim=-1)
    inward = obj.mean(dim=-2, keepdim=True) - centres  # (..., 6, 3) face centre to centroid
    normals = normals * torch.sign((normals * inward).sum(dim=-1, keepdim=True))
    length = torch.linalg.vector_norm(normals, dim=-1, keepdim=True)
    return centres, normals / length.clamp(min=torch.finfo(obj.dtype).tiny)


def penetration_depth(hand: Tensor, obj: Tensor) -> Tensor:
    """Depth of each hand joint inside the box, 0 outside.

    Depth = ``max(0, min_j (p - c_j) . n_j)`` over the six face planes (centre c_j, inward unit
    normal n_j from :func:`face_planes`): the distance to the nearest face for a joint inside a
    convex box.

    Args:
        hand: (B, 21, 3) joints (any leading batch shape), mm.
        obj: (B, 8, 3) box corners, same frame and units.

    Returns:
        (B, 21) depths in mm.
    """
    if hand.shape[-2:] != (NUM_JOINTS, 3) or obj.shape[-2:] != (NUM_CORNERS, 3):
        raise ValueError(
            f"hand and obj must be (B, {NUM_JOINTS}, 3) and (B, {NUM_CORNERS}, 3), "
            f"got {tuple(hand.shape)} and {tuple(obj.shape)}"
        )
    centres, normals = face_planes(obj)  # (B, 6, 3) each
    # inside[..., i, j] = (p_i - c_j) . n_j, positive on the inner side of face j.
    inside = ((hand[..., :, None, :] - centres[..., None, :, :]) * normals[..., None, :, :]).sum(-1)
    return inside.min(dim=-1).values.clamp(min=0)  # (B, 21)


def contact_normals(pts: Tensor, obj: Tensor, n_samples: int = N_SAMPLES) -> Tensor:
    """Inward normal at each contact point of :func:`hopose.physics.contact_points`.

    A support point is a grid point of one face (SPEC §2 step 1); on an edge or a corner it
    belongs to the grids of two or three faces, and its normal is the normalised sum of theirs.

    Args:
        pts: (B, K, 3) contact points, each a point of the box's face grids.
        obj: (B, 8, 3) box corners.
        n_samples: the grid size the contacts were found with.

    Returns:
        (B, K, 3) unit inward normals.
    """
    grids = sample_face_points(obj, n_samples)  # (B, 6, M, 3)
    # Least distance of each contact to each face's grid, (B, K, 6).
    dist = torch.linalg.vector_norm(pts[..., :, None, None, :] - grids[..., None, :, :, :], dim=-1)
    dist = dist.min(dim=-1).values
    scale = 1 + obj.abs().amax(dim=(-2, -1))[..., None, None]  # relative tolerance, (B, 1, 1)
    on_face = dist <= dist.min(dim=-1, keepdim=True).values + ON_FACE_TOL * scale
    _, normals = face_planes(obj)  # (B, 6, 3)
    summed = on_face.to(obj.dtype) @ normals  # (B, K, 6) @ (B, 6, 3) -> (B, K, 3)
    length = torch.linalg.vector_norm(summed, dim=-1, keepdim=True)
    return summed / length.clamp(min=torch.finfo(obj.dtype).tiny)


def _tangent_basis(
    normals: NDArray[np.float64], offsets: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two unit tangents (K, 3) orthogonal to each unit normal (K, 3) and to each other.

    The first is the contact's offset from the centre (K, 3) projected on the tangent plane,
    so the friction pyramid turns with the object and the score does not depend on the
    camera's axes; for an offset along the normal, the coordinate axis least aligned with the
    normal stands in.
    """
    along = (offsets * normals).sum(axis=-1, keepdims=True)
    t1 = offsets - along * normals
    helper = np.eye(3)[np.abs(normals).argmin(axis=-1)]
    fallback = np.cross(normals, helper)
    norm = np.linalg.norm(t1, axis=-1, keepdims=True)
    scale = np.linalg.norm(offsets, axis=-1, keepdims=True)
    t1 = np.where(norm > 1e-9 * (1 + scale), t1, fallback)
    t1 /= np.linalg.norm(t1, axis=-1, keepdims=True)
    return t1, np.cross(normals, t1)


def contact_wrenches(
    contacts: NDArray[np.float64],
    normals: NDArray[np.float64],
    centre: NDArray[np.float64],
    length: float,
    mu: float = MU,
    n_edges: int = N_EDGES,
) -> NDArray[np.float64]:
    """Primitive wrenches of point contacts with linearised Coulomb friction.

    Edge k of contact i's friction pyramid is ``f = n_i + mu (cos a_k t1_i + sin a_k t2_i)``,
    a_k = 2 pi k / n_edges, and its wrench is ``(f, (p_i - centre) x f / length)``; t1_i is
    the tangent towards which the contact's offset from the centre leans (see
    ``_tangent_basis``), which makes the score invariant under rigid motions.

    Args:
        contacts: (K, 3) contact points, mm.
        normals: (K, 3) unit inward normals.
        centre: (3,) point the torques are taken about.
        length: characteristic length dividing the torques, mm.
        mu: friction coefficient.
        n_edges: edges of each friction pyramid.

    Returns:
        (K * n_edges, 6) wrenches (force, scaled torque).
    """
    offsets = contacts - centre
    t1, t2 = _tangent_basis(normals, offsets)
    angles = 2 * np.pi * np.arange(n_edges) / n_edges
    tangential = np.cos(angles)[:, None] * t1[:, None, :] + np.sin(angles)[:, None] * t2[:, None, :]
    forces = normals[:, None, :] + mu * tangential  # (K, E, 3)
    torques = np.cross(offsets[:, None, :], forces) / length  # (K, E, 3)
    return np.concatenate([forces, torques], axis=-1).reshape(-1, 6)


def epsilon_quality(wrenches: NDArray[np.float64]) -> float:
    """Radius of the largest origin-centred ball in the convex hull of (W, 6) wrenches.

    0 when the origin is not strictly inside the hull, including hulls that are not
    full-dimensional (Qhull rejects them) and fewer than 7 wrenches.
    """
    if len(wrenches) <= wrenches.shape[1]:
        return 0.0
    try:
        hull = ConvexHull(wrenches)
    except QhullError:
        return 0.0
    # Facet equations are n . x + offset <= 0 inside, |n| = 1: -offset is the origin's distance
    # to the facet's plane, positive on the inner side.
    return max(0.0, float(-hull.equations[:, -1].max()))


def grasp_quality(
    contacts: NDArray[np.float64],
    normals: NDArray[np.float64],
    valid: NDArray[np.bool_],
    centre: NDArray[np.float64],
    mu: float = MU,
    n_edges: int = N_EDGES,
    length: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Ferrari-Canny epsilon of each sample's valid contacts.

    A loop over samples: each has its own number of valid contacts and Qhull builds one hull
    per call, so there is no batched form; this is an evaluation metric on numpy, never part of
    a loss or of the autograd graph. The hull of 10 contacts' 80 wrenches has some 3,000 facets
    in 6-D: 20-40 ms a sample (BENCHMARKS.md), 22 times the batched contact search.

    Args:
        contacts: (B, K, 3) contact points, mm.
        normals: (B, K, 3) unit inward normals at the contacts.
        valid: (B, K) bool, the contacts that take part; those with a zero normal or a
            non-finite position are left out too.
        centre: (B, 3) the object's centre of mass.
        mu: Coulomb friction coefficient.
        n_edges: edges of each linearised friction cone.
        length: (B,) characteristic length dividing the torques, mm; by default the largest
            distance from the centre to a valid contact.

    Returns:
        (B,) epsilon, 0 for grasps that are not force closure.
    """
    contacts, normals = np.asarray(contacts, np.float64), np.asarray(normals, np.float64)
    valid, centre = np.asarray(valid, bool), np.asarray(centre, np.float64)
    if mu < 0 or n_edges < 3:
        raise ValueError(f"need mu >= 0 and n_edges >= 3, got mu={mu}, n_edges={n_edges}")
    # A contact without a normal (on a degenerate box, normals are zero) cannot push.
    usable = valid & np.isfinite(contacts).all(-1) & (np.linalg.norm(normals, axis=-1) > 0.5)
    quality = np.zeros(len(contacts))
    for b in range(len(contacts)):
        # Two joints can share a support point: a repeated contact adds no wrench, only work.
        unique = np.unique(np.concatenate([contacts[b], normals[b]], -1)[usable[b]], axis=0)
        pts, nrm = unique[:, :3], unique[:, 3:]
        if len(pts) == 0:
            continue
        scale = np.linalg.norm(pts - centre[b], axis=-1).max() if length is None else length[b]
        wrenches = contact_wrenches(pts, nrm, centre[b], max(float(scale), 1e-12), mu, n_edges)
        quality[b] = epsilon_quality(wrenches)
    return quality


def _pose_plausibility(hand: Tensor, obj: Tensor) -> dict[str, NDArray[np.float64]]:
    """Per-frame plausibility of one set of (B, 21, 3) hands and (B, 8, 3) boxes (float64)."""
    kwargs = {"n_samples": N_SAMPLES, "top_k": TOP_K, "eta": ETA}
    pts, _, valid = contact_points(hand, obj, **kwargs)
    affinity = physical_affinity_loss(hand, obj, reduction="none", **kwargs)
    centre = obj.mean(dim=-2)  # (B, 3)
    radius = torch.linalg.vector_norm(obj - centre[:, None, :], dim=-1).amax(dim=-1)  # (B,)
    epsilon = grasp_quality(
        pts.numpy(),
        contact_normals(pts, obj, N_SAMPLES).numpy(),
        valid.numpy(),
        centre.numpy(),
        length=radius.numpy(),
    )
    return {
        "valid_contacts": valid.sum(dim=-1).double().numpy(),
        "affinity": affinity.numpy(),
        "penetration_mm": penetration_depth(hand, obj).amax(dim=-1).numpy(),
        "grasp_epsilon": epsilon,
    }


def frame_plausibility(predictions: dict[str, np.ndarray]) -> dict[str, NDArray[np.float64]]:
    """Plausibility of every frame's predicted and ground-truth pose.

    Args:
        predictions: arrays ``pred_hand_3d``, ``gt_hand_3d`` (N, 21, 3) and ``pred_obj_3d``,
            ``gt_obj_3d`` (N, 8, 3), mm.

    Returns:
        (N,) arrays ``{pred,gt}_valid_contacts``, ``{pred,gt}_affinity``,
        ``{pred,gt}_penetration_mm`` (the deepest joint) and ``{pred,gt}_grasp_epsilon``.
    """
    columns: dict[str, list[NDArray[np.float64]]] = {}
    for who in ("pred", "gt"):
        hand = _as_float64(predictions, f"{who}_hand_3d")
        obj = _as_float64(predictions, f"{who}_obj_3d")
        for start in range(0, len(hand), CHUNK):
            chunk = _pose_plausibility(hand[start : start + CHUNK], obj[start : start + CHUNK])
            for name, values in chunk.items():
                columns.setdefault(f"{who}_{name}", []).append(values)
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def summarize_plausibility(predictions: dict[str, np.ndarray]) -> dict[str, float]:
    """Means over frames of :func:`frame_plausibility`, for ``metrics.json`` and the report.

    Args:
        predictions: as in :func:`frame_plausibility`.

    Returns:
        As :func:`reduce_plausibility`.
    """
    return reduce_plausibility(frame_plausibility(predictions))


def reduce_plausibility(frames: Mapping[str, NDArray[np.float64]]) -> dict[str, float]:
    """Summaries of the per-frame columns of :func:`frame_plausibility`.

    Returns:
        ``{pred,gt}_valid_contacts`` mean count; ``{pred,gt}_affinity`` mean over the frames
        with at least two valid contacts (0 if none, as the loss's batch mean, SPEC §2 step 8);
        ``{pred,gt}_penetration_mm`` mean of each frame's deepest joint;
        ``{pred,gt}_grasp_epsilon`` mean epsilon; ``{pred,gt}_force_closure`` fraction of
        frames with epsilon > 0.
    """
    summary: dict[str, float] = {}
    for who in ("pred", "gt"):
        contacts = np.asarray(frames[f"{who}_valid_contacts"])
        affinity = np.asarray(frames[f"{who}_affinity"])[contacts >= 2]
        epsilon = np.asarray(frames[f"{who}_grasp_epsilon"])
        summary[f"{who}_valid_contacts"] = float(contacts.mean())
        summary[f"{who}_affinity"] = float(affinity.mean()) if affinity.size else 0.0
        summary[f"{who}_penetration_mm"] = float(np.mean(frames[f"{who}_penetration_mm"]))
        summary[f"{who}_grasp_epsilon"] = float(epsilon.mean())
        summary[f"{who}_force_closure"] = float((epsilon > 0).mean())
    return summary


def _as_float64(predictions: dict[str, np.ndarray], key: str) -> Tensor:
    """``predictions[key]`` as a float64 CPU tensor; a KeyError naming the key if missing."""
    if key not in predictions:
        raise KeyError(f"predictions: missing '{key}' (have {sorted(predictions)})")
    value = predictions[key]
    if isinstance(value, Tensor):
        return value.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(value), dtype=torch.float64)
