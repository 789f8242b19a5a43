"""The differentiable physical affinity loss (paper §3.3, Algorithm 1; docs/conventions.md §2).

A stable grasp puts its contacts all around the object's central axis, so that their forces can
resist a disturbance from any direction. The loss samples points on the six faces of the
object's bounding box, takes the ``top_k`` joint-face pairs closest to each other as candidate
contacts (Eq. 3-4), keeps those within ``eta`` times the box radius (Eq. 5), and averages the
cosine similarity of every pair of contact directions around the axis (Eq. 6): -1/(n-1) is the
best spread of n contacts, 1 all on one side.

The discrete choices (closest face point, top-k pairs, the distance filter, which face pair is
the axis) are made without gradients. Gradients flow through the chosen support points, which
are bilinear in the box corners, and through the axis; the hand joints only select contacts, so
the loss moves the object corners (docs/conventions.md §2, note). Of those it can change only
the box's proportions: the cosines are unchanged when the box and its support points move,
turn or scale together, so the gradient has no component along translation, rotation or
uniform scale (at float64 rounding, about 1e-14 of its size, measured); it cannot carry a box
towards a grasp.

Every public function computes in at least float32 with autocast off, and returns float32 for
half-precision inputs: autocast runs the contact search's matmul in bfloat16 (CPU) or float16
(GPU), whose 8 or 11 significant bits cannot rank squared distances of hundreds of mm^2 (other
contacts are chosen), and float16 flushes the cosine's EPS**2 guard to 0, so a contact on the
axis gives 0/0.

Shapes are jaxtyping annotations (``*batch``: any leading batch dimensions, the same for every
argument), checked at run time in the tests.
"""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from hopose.geometry import (
    autocast_off,
    box_central_axis,
    face_corners,
    face_grid_weights,
    sample_face_points,
)
from hopose.skeleton import BOX_FACES, NUM_CORNERS, NUM_JOINTS

# Guards the norms in the cosine and the axis direction (mm): a contact on the axis, or a box
# whose end faces share a centre, gives finite values and gradients instead of 0/0.
EPS = 1e-6

_NUM_FACES = len(BOX_FACES)


def _full_precision(x: Tensor) -> Tensor:
    """``x`` in at least float32 (float64 stays float64): see the module docstring."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


# docs/conventions.md §2 defaults: an 11 x 11 grid per face (the authors' code), 10 candidates, eta
# = 0.2.
N_SAMPLES = 11
TOP_K = 10
ETA = 0.2


def check_hand_object(hand: Tensor, obj: Tensor) -> None:
    """Refuse a hand (..., 21, 3) and box (..., 8, 3) of other shapes or of other batch shapes
    (a batch of 1 against one of B would broadcast into B plausible, wrong answers)."""
    if hand.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"hand must have shape (B, {NUM_JOINTS}, 3), got {tuple(hand.shape)}")
    if obj.shape[-2:] != (NUM_CORNERS, 3):
        raise ValueError(f"obj must have shape (B, {NUM_CORNERS}, 3), got {tuple(obj.shape)}")
    if hand.shape[:-2] != obj.shape[:-2]:
        raise ValueError(
            f"hand and obj batch shapes differ: {tuple(hand.shape[:-2])} vs {tuple(obj.shape[:-2])}"
        )


def _check_inputs(hand: Tensor, obj: Tensor, n_samples: int, top_k: int, eta: float) -> None:
    check_hand_object(hand, obj)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not 1 <= top_k <= NUM_JOINTS * _NUM_FACES:
        raise ValueError(f"top_k must be in [1, {NUM_JOINTS * _NUM_FACES}], got {top_k}")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")


def select_contacts(
    hand: Float[Tensor, "B 21 3"], obj: Float[Tensor, "B 8 3"], n_samples: int, top_k: int
) -> Int[Tensor, "B top_k 3"]:
    """The discrete choices of Eq. 3-4, made without gradient: which joint-face pairs are the
    ``top_k`` candidates and which grid point of the face is each one's support.

    Args:
        hand: joints, one batch dimension.
        obj: box corners, same frame and units.
        n_samples: N, grid points per face side.
        top_k: number of candidate pairs.

    Returns:
        Long: each candidate's joint, face and grid point (``iu * N + iv``), in order of
        increasing distance.
    """
    with torch.no_grad(), autocast_off(obj):
        hand, obj = _full_precision(hand), _full_precision(obj)
        # Distances are taken about the box centre: translation-invariant, and the matmul
        # expansion below loses less precision on small coordinates.
        centre = obj.mean(dim=-2, keepdim=True)
        joints = hand - centre
        face_points = sample_face_points(obj - centre, n_samples).flatten(1, 2)  # (B, 6*M, 3)
        # |h - p|^2 = |h|^2 + (|p|^2 - 2 h.p). The bracket, all the argmin over p needs, is one
        # batched matmul of augmented coordinates [-2h, 1] . [p, |p|^2]; the squared joint norm
        # is the same for a joint's six faces, so it only enters the ranking of pairs.
        joints_aug = torch.cat([-2 * joints, torch.ones_like(joints[..., :1])], dim=-1)
        points_aug = torch.cat([face_points, face_points.square().sum(-1, keepdim=True)], dim=-1)
        partial = torch.bmm(joints_aug, points_aug.transpose(1, 2))  # (B, 21, 6*M)
        partial = partial.unflatten(-1, (_NUM_FACES, -1))  # (B, 21, 6, M)
        nearest = partial.amin(dim=-1) + joints.square().sum(dim=-1, keepdim=True)  # (B, 21, 6)
        pair = nearest.flatten(1).topk(top_k, dim=-1, largest=False).indices  # (B, K): Eq. 4
        # Which grid point is the support (Eq. 3) is only needed for the K chosen pairs.
        batch_index = torch.arange(hand.shape[0], device=obj.device)[:, None]
        point = partial.flatten(1, 2)[batch_index, pair].argmin(dim=-1)  # (B, K): iu * N + iv
        joint, face = pair // _NUM_FACES, pair % _NUM_FACES  # pair = joint * 6 + face
        return torch.stack([joint, face, point], dim=-1)


def _contacts(
    hand: Tensor, obj: Tensor, selection: Tensor, n_samples: int, eta: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Contacts of a flat batch from :func:`select_contacts`' choices: hand (B, 21, 3), obj
    (B, 8, 3) -> (B, K, 3), (B, K, 3), (B, K)."""
    joint, face, point = selection.unbind(-1)  # (B, K) each
    batch_index = torch.arange(hand.shape[0], device=obj.device)[:, None]
    # The geometry is built about the box centre, so its rounding is relative to the box's size,
    # not to its distance from the origin (hundreds of mm in a camera frame).
    centre = obj.mean(dim=-2, keepdim=True)  # (B, 1, 3)
    local = obj - centre
    # The support point, rebuilt with gradients from its face's corners and the weights of the
    # grid point that select_contacts chose (the grid of sample_face_points).
    weights = face_grid_weights(n_samples, dtype=obj.dtype, device=obj.device)[point]  # (B, K, 4)
    quads = face_corners(local)  # (B, 6, 4, 3)
    support = (weights[..., None] * quads[batch_index, face]).sum(dim=-2)  # (B, K, 3)

    upper, lower, radius = box_central_axis(local)  # (B, 3), (B, 3), (B,)
    with torch.no_grad():
        # d(H_i, Pi_j) of Eq. 3, measured again: the choices may be older than the pose.
        distance = torch.linalg.vector_norm(hand[batch_index, joint] - centre - support, dim=-1)
        valid = distance <= eta * radius[:, None]  # Eq. 5
    axis = upper - lower
    axis = axis / torch.linalg.vector_norm(axis, dim=-1, keepdim=True).clamp(min=EPS)
    offset = support - lower[:, None, :]
    along = (offset * axis[:, None, :]).sum(dim=-1, keepdim=True)  # (B, K, 1)
    direction = offset - along * axis[:, None, :]  # v = P - R, R the projection of P on l
    # An end face's centre (a grid point for odd N) lies on the axis for every box: v = 0. The
    # projection leaves a rounding residue of a few ulps of the box's size (1e-5 mm in float32),
    # far above EPS, that the cosine would read as a random direction. Directions shorter than
    # sqrt(machine eps) times the box's size are that zero vector (whose gradient is 0 too).
    with torch.no_grad():
        size = torch.linalg.vector_norm(local, dim=-1).amax(dim=-1)  # (B,)
        tolerance = torch.finfo(obj.dtype).eps ** 0.5 * size
        on_axis = torch.linalg.vector_norm(direction, dim=-1) <= tolerance[:, None]
    direction = direction.masked_fill(on_axis[..., None], 0.0)
    return support + centre, direction, valid


def contact_points(
    hand: Float[Tensor, "*batch 21 3"],
    obj: Float[Tensor, "*batch 8 3"],
    n_samples: int = N_SAMPLES,
    top_k: int = TOP_K,
    eta: float = ETA,
    selection: Int[Tensor, "*batch top_k 3"] | None = None,
) -> tuple[
    Float[Tensor, "*batch top_k 3"], Float[Tensor, "*batch top_k 3"], Bool[Tensor, "*batch top_k"]
]:
    """Candidate contact points and their direction vectors from the object's central axis.

    Args:
        hand: hand joints, same frame and units as ``obj``.
        obj: box corners in docs/conventions.md §1 order.
        n_samples: N, grid points per face side (N x N per face).
        top_k: number of candidate joint-face pairs (N_c in Eq. 4).
        eta: distance filter, contacts within ``eta * L`` of the box (Eq. 5).
        selection: the choices of :func:`select_contacts` to reuse (made on an earlier pose,
            say), whose number of candidates replaces ``top_k``; by default they are made on
            this pose. The support points and the filter of Eq. 5 are always evaluated on this
            pose.

    Returns:
        ``(pts, dirs, valid)``: ``pts`` the candidate support points in order of increasing
        distance, ``dirs`` the paper's direction vectors v = P - R from each point's projection
        R on the central axis to the point (not normalised), and ``valid`` the candidates that
        pass Eq. 5. Points and directions are float32 for half-precision inputs (module
        docstring), else the inputs' dtype.
    """
    _check_inputs(hand, obj, n_samples, top_k, eta)
    lead = hand.shape[:-2]
    with autocast_off(obj):
        hand = _full_precision(hand).reshape(-1, NUM_JOINTS, 3)
        obj = _full_precision(obj).reshape(-1, NUM_CORNERS, 3)
        if selection is None:
            selection = select_contacts(hand, obj, n_samples, top_k)
        else:
            _check_selection(selection, lead, n_samples)
            top_k = selection.shape[-2]
        pts, dirs, valid = _contacts(hand, obj, selection.reshape(-1, top_k, 3), n_samples, eta)
    return pts.reshape(*lead, top_k, 3), dirs.reshape(*lead, top_k, 3), valid.reshape(*lead, top_k)


def _check_selection(selection: Tensor, lead: torch.Size, n_samples: int) -> None:
    """Refuse choices of :func:`select_contacts` of another batch (broadcast, they would score
    one sample's contacts on every pose) or of another grid (read on this one's points)."""
    if selection.dim() != len(lead) + 2 or selection.shape[:-2] != lead or selection.shape[-1] != 3:
        raise ValueError(
            f"selection must have shape ({', '.join(map(str, lead))}, K, 3) for this batch, "
            f"got {tuple(selection.shape)}"
        )
    # Each column against its bound as a Python number: a tensor of the bounds would be a copy
    # to the device at each call (refine_pose checks its choices at every step).
    limits = (NUM_JOINTS, _NUM_FACES, n_samples**2)
    inside = [
        (column >= 0) & (column < limit)
        for column, limit in zip(selection.unbind(-1), limits, strict=True)
    ]
    if selection.numel() and not torch.stack(inside).all():
        raise ValueError(
            f"selection holds joints, faces or grid points outside {NUM_JOINTS} joints, "
            f"{_NUM_FACES} faces and {n_samples}x{n_samples} points: made with another n_samples?"
        )


def physical_affinity_loss(
    hand: Float[Tensor, "*batch 21 3"],
    obj: Float[Tensor, "*batch 8 3"],
    n_samples: int = N_SAMPLES,
    top_k: int = TOP_K,
    eta: float = ETA,
    reduction: Literal["mean", "none"] = "mean",
    selection: Int[Tensor, "*batch top_k 3"] | None = None,
) -> Float[Tensor, ""] | Float[Tensor, "*batch"]:
    """Mean pairwise cosine of contact directions around the object's axis (Eq. 6).

    ``L = 1/Z sum_{i<j} cos(v_i, v_j)``, Z = n(n-1)/2 over the n valid contacts of a sample; 0
    when fewer than two are valid.

    Args:
        hand: hand joints.
        obj: box corners in docs/conventions.md §1 order, same frame and units.
        n_samples, top_k, eta, selection: as in :func:`contact_points`.
        reduction: ``"mean"`` averages over the samples with at least two valid contacts (0,
            still part of the autograd graph, when none has); ``"none"`` gives per-sample
            losses.

    Returns:
        A scalar, or per-sample losses with ``reduction="none"``: float32 for half-precision
        inputs, else the inputs' dtype, also under autocast (module docstring).
    """
    _, dirs, valid = contact_points(hand, obj, n_samples, top_k, eta, selection)
    return affinity_of_contacts(dirs, valid, reduction)


def affinity_of_contacts(
    dirs: Float[Tensor, "*batch K 3"],
    valid: Bool[Tensor, "*batch K"],
    reduction: Literal["mean", "none"] = "mean",
) -> Float[Tensor, ""] | Float[Tensor, "*batch"]:
    """Eq. 6 from :func:`contact_points`' directions, for callers that already have them.

    Args:
        dirs: contact directions from the axis.
        valid: the contacts that pass Eq. 5.
        reduction: as in :func:`physical_affinity_loss`.

    Returns:
        A scalar, or per-sample losses with ``reduction="none"``; in at least float32, as
        :func:`physical_affinity_loss`.

    Raises:
        ValueError: ``dirs`` not 3-vectors of ``valid``'s contacts: a batch of 1 against one of B
            would broadcast into B plausible, wrong losses (as in :func:`check_hand_object`).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if dirs.shape[-1:] != (3,) or dirs.shape[:-1] != valid.shape:
        raise ValueError(
            f"dirs and valid must have shapes (..., K, 3) and (..., K), "
            f"got {tuple(dirs.shape)} and {tuple(valid.shape)}"
        )
    top_k = dirs.shape[-2]
    with autocast_off(dirs):
        dirs = _full_precision(dirs)
        # sqrt(|v|^2 + eps^2) is smooth at v = 0, so an on-axis contact has a finite gradient.
        unit = dirs / (dirs.square().sum(dim=-1, keepdim=True) + EPS**2).sqrt()
        cosine = unit @ unit.transpose(-1, -2)  # (..., K, K)
    upper = torch.ones(top_k, top_k, dtype=torch.bool, device=dirs.device).triu(diagonal=1)
    pairs = valid[..., :, None] & valid[..., None, :] & upper  # (..., K, K) i < j, both valid
    count = pairs.sum(dim=(-2, -1))
    per_sample = (cosine * pairs).sum(dim=(-2, -1)) / count.clamp(min=1)
    if reduction == "none":
        return per_sample
    has_pairs = count > 0
    return (per_sample * has_pairs).sum() / has_pairs.sum().clamp(min=1)
