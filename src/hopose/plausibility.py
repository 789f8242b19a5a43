"""Physical plausibility of hand-object poses: contacts, affinity, penetration, grasp quality.

The paper (§4) measures accuracy only; docs/conventions.md §5 adds how physically sound a pose is,
computed
the same way on predictions and on ground truth so the two can be read side by side:

- **Valid contacts**: the number of candidate contacts that pass the paper's distance filter
  (Eq. 5), from :func:`hopose.physics.contact_points`.
- **Affinity**: the paper's physical affinity loss (Eq. 6) of the pose, -1/(n-1) for n evenly
  spread contacts, 1 for contacts all on one side of the axis, 0 with fewer than two contacts.
- **Cuboid-ness**: the mean distance of the 8 corners to their best-fitting cuboid
  (:func:`hopose.geometry.cuboid_error`), 0 for a valid box.
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
  :func:`pose_plausibility`. The 6-D hull of all the wrenches is seldom built: hulls of
  growing subsets bound the radius from below, the wrenches' support along the normal of their
  nearest facet from above, and the two meet in two or three rounds (:func:`epsilon_quality`);
  grasps are spread over processes. The score is 0 when the origin is not
  strictly inside the hull, i.e. the grasp is not force closure: all contacts on one face, or
  fewer contacts than needed to span the 6-D wrench space (two opposed point contacts cannot
  resist a torque about the line through them).

Contacts use the paper's defaults (docs/conventions.md §2): an 11x11 grid per face, the 10
closest joint-face
pairs, kept within 0.2 times the box radius.

Shapes are jaxtyping annotations (``*batch``: any leading batch dimensions, the same for every
argument), checked at run time in the tests.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context

import numpy as np
import torch
from jaxtyping import Bool, Float, Float64
from numpy.typing import NDArray
from scipy.optimize import linprog
from scipy.spatial import ConvexHull, QhullError
from torch import Tensor

from hopose.data.workers import ExitWithParent
from hopose.geometry import box_axes, cuboid_error, face_corners, sample_face_points
from hopose.physics import (
    ETA,
    N_SAMPLES,
    TOP_K,
    affinity_of_contacts,
    check_hand_object,
    contact_points,
)

# Coulomb friction coefficient and number of edges of the linearised friction cone.
MU = 0.5
N_EDGES = 8
# Frames per call of the contact search: its (chunk, 21, 6 * 121) distance table stays small.
CHUNK = 256
# Grasps below this many hulls are scored in this process (a process pool costs ~0.1 s).
MIN_PARALLEL = 64
# The force-closure LP's optimum s is a weight every wrench gets; below this (times 1/W, the
# largest s can be) the origin counts as on the hull's boundary.
FORCE_CLOSURE_TOL = 1e-9
# A contact lies on every face whose grid holds a point within this distance of it (mm); the
# grid points of adjacent faces meet exactly at the shared edge, interior points are a grid
# step (a tenth of a side) apart.
ON_FACE_TOL = 1e-6
# Distances to a facet's plane below this count as zero: wrenches have a unit normal force, and
# the joggle of ``_facets`` moves planes by ~1e-11.
ROUND_OFF = 1e-9
# epsilon_quality grows its wrench subset by the wrenches beyond every facet within this factor
# of the nearest one's distance: any value >= 1 gives the same epsilon; 1.2 took the fewest
# hulls on the benchmark's grasps (BENCHMARKS.md).
NEAR_FACETS = 1.2
# The names of pose_plausibility's per-frame arrays, which hopose.scoring turns into columns and
# summary keys (its one home of every metric name re-exports these).
VALID_CONTACTS = "valid_contacts"
AFFINITY = "affinity"
PENETRATION_MM = "penetration_mm"
GRASP_EPSILON = "grasp_epsilon"
CUBOID_MM = "cuboid_mm"


def face_planes(
    obj: Float[Tensor, "*batch 8 3"],
) -> tuple[Float[Tensor, "*batch 6 3"], Float[Tensor, "*batch 6 3"]]:
    """Best plane of each face of a (possibly not exactly cuboid) box, normal pointing inwards.

    Args:
        obj: box corners in docs/conventions.md §1 order.

    Returns:
        ``(centres, normals)``: the mean of each face's corners and the unit normals towards the
        box's centroid; a degenerate face (zero area, or a flat box whose centroid lies in the
        face's plane) gets a zero normal.
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


def inward_distances(
    points: Float[Tensor, "*batch P 3"], obj: Float[Tensor, "*batch 8 3"]
) -> Float[Tensor, "*batch P 6"]:
    """Signed distance of each point to each face plane of a box, positive on the box's side.

    ``(p - c_j) . n_j`` for the six planes (centre c_j, inward unit normal n_j) of
    :func:`face_planes`. A point lies inside a convex box when all six are positive, and the
    least of them is then its distance to the nearest face; outside, the largest negative one
    is a lower bound of its distance to the box (exact beside a face).

    Args:
        points: points, each against each of the six planes.
        obj: box corners, same frame and units.

    Returns:
        The distances, the points' unit.
    """
    centres, normals = face_planes(obj)  # (..., 6, 3) each
    offsets = points[..., :, None, :] - centres[..., None, :, :]  # (..., P, 6, 3)
    return (offsets * normals[..., None, :, :]).sum(dim=-1)


def penetration_depth(
    hand: Float[Tensor, "*batch 21 3"], obj: Float[Tensor, "*batch 8 3"]
) -> Float[Tensor, "*batch 21"]:
    """Depth of each hand joint inside the box, 0 outside.

    Depth = ``max(0, min_j (p - c_j) . n_j)`` over the six face planes (centre c_j, inward unit
    normal n_j, :func:`inward_distances`): the distance to the nearest face for a joint inside
    a convex box.

    Args:
        hand: joints, mm.
        obj: box corners, same frame and units.

    Returns:
        Each joint's depth in mm.
    """
    check_hand_object(hand, obj)
    return inward_distances(hand, obj).amin(dim=-1).clamp(min=0)  # (B, 21)


def contact_normals(
    pts: Float[Tensor, "*batch K 3"], obj: Float[Tensor, "*batch 8 3"], n_samples: int = N_SAMPLES
) -> Float[Tensor, "*batch K 3"]:
    """Inward normal at each contact point of :func:`hopose.physics.contact_points`.

    A support point is a grid point of one face (docs/conventions.md §2 step 1); on an edge or a
    corner it
    belongs to the grids of two or three faces, and its normal is the normalised sum of theirs.

    Args:
        pts: contact points, each a point of the box's face grids.
        obj: box corners.
        n_samples: the grid size the contacts were found with.

    Returns:
        Unit inward normals.
    """
    if pts.shape[-1] != 3 or pts.shape[:-2] != obj.shape[:-2]:
        raise ValueError(
            f"pts must be (B, K, 3) for obj's batch {tuple(obj.shape[:-2])}, got {tuple(pts.shape)}"
        )
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
    normals: NDArray[np.float64], offsets: NDArray[np.float64], axes: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two unit tangents (K, 3) orthogonal to each unit normal (K, 3) and to each other.

    The first is the contact's offset from the centre (K, 3) projected on the tangent plane, so
    the friction pyramid turns with the object and the score does not depend on the camera's
    axes. A contact on the line through a face's centre has its offset along the normal; its
    first tangent is then the first of the object's ``axes`` (3, 3, as columns) whose
    projection on the tangent plane is at least half as long as the longest: for a box's face,
    edge or corner normal that is a fixed axis of the box (the first one not along the normal),
    so these contacts' pyramids turn with the object too.
    """
    along = (offsets * normals).sum(axis=-1, keepdims=True)
    t1 = offsets - along * normals
    # Each axis projected on each contact's tangent plane, (K, 3 axes, 3).
    projected = axes.T[None] - (normals @ axes)[..., None] * normals[:, None, :]
    lengths = np.linalg.norm(projected, axis=-1)  # (K, 3)
    first = (lengths >= 0.5 * lengths.max(axis=-1, keepdims=True)).argmax(axis=-1)
    fallback = projected[np.arange(len(normals)), first]
    norm = np.linalg.norm(t1, axis=-1, keepdims=True)
    scale = np.linalg.norm(offsets, axis=-1, keepdims=True)
    t1 = np.where(norm > 1e-9 * (1 + scale), t1, fallback)
    t1 /= np.linalg.norm(t1, axis=-1, keepdims=True)
    return t1, np.cross(normals, t1)


def contact_wrenches(
    contacts: Float64[np.ndarray, "K 3"],
    normals: Float64[np.ndarray, "K 3"],
    centre: Float64[np.ndarray, " 3"],
    length: float,
    mu: float = MU,
    n_edges: int = N_EDGES,
    axes: Float64[np.ndarray, "3 3"] | None = None,
) -> Float64[np.ndarray, "W 6"]:
    """Primitive wrenches of point contacts with linearised Coulomb friction.

    Edge k of contact i's friction pyramid is ``f = n_i + mu (cos a_k t1_i + sin a_k t2_i)``,
    a_k = 2 pi k / n_edges, and its wrench is ``(f, (p_i - centre) x f / length)``; t1_i is
    the tangent towards which the contact's offset from the centre leans, or for an offset
    along the normal an object axis (``_tangent_basis``), which makes the score invariant under
    rigid motions of contacts, normals, centre and axes together.

    Args:
        contacts: contact points, mm.
        normals: unit inward normals.
        centre: the point the torques are taken about.
        length: characteristic length dividing the torques, mm.
        mu: friction coefficient.
        n_edges: edges of each friction pyramid.
        axes: the object's own axes as columns (:func:`hopose.geometry.box_axes`); by default
            the camera's.

    Returns:
        W = K * n_edges wrenches (force, scaled torque), contact by contact.
    """
    offsets = contacts - centre
    t1, t2 = _tangent_basis(normals, offsets, np.eye(3) if axes is None else axes)
    angles = 2 * np.pi * np.arange(n_edges) / n_edges
    tangential = np.cos(angles)[:, None] * t1[:, None, :] + np.sin(angles)[:, None] * t2[:, None, :]
    forces = normals[:, None, :] + mu * tangential  # (K, E, 3)
    torques = np.cross(offsets[:, None, :], forces) / length  # (K, E, 3)
    return np.concatenate([forces, torques], axis=-1).reshape(-1, 6)


def _strictly_contains_origin(wrenches: NDArray[np.float64]) -> bool:
    """Whether the origin lies strictly inside the hull of (W, 6) wrenches (force closure).

    It does iff the wrenches span R^6 and some convex combination with every weight positive is
    zero: the linear programme ``max s`` subject to ``sum_i l_i w_i = 0``, ``sum_i l_i = 1``,
    ``l_i >= s`` has an optimum s > 0. :func:`epsilon_quality` asks it only when no subset
    hull has settled the question.
    """
    count, dim = wrenches.shape
    if np.linalg.matrix_rank(wrenches) < dim:
        return False
    cost = np.zeros(count + 1)
    cost[-1] = -1.0  # variables (l_1 .. l_W, s); maximise s
    equality = np.zeros((dim + 1, count + 1))
    equality[:dim, :count] = wrenches.T
    equality[dim, :count] = 1.0
    target = np.zeros(dim + 1)
    target[dim] = 1.0
    lower = np.hstack([-np.eye(count), np.ones((count, 1))])  # s - l_i <= 0
    result = linprog(
        cost,
        A_ub=lower,
        b_ub=np.zeros(count),
        A_eq=equality,
        b_eq=target,
        bounds=[(0, None)] * count + [(None, 1)],
        method="highs",
    )
    return bool(result.status == 0 and result.x[-1] > FORCE_CLOSURE_TOL / count)


def _facets(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Facet equations (F, 7) of the hull of (W, 6) points, none (0, 7) where Qhull finds none.

    Row ``(n, offset)`` is the facet's plane ``n . x + offset = 0``, ``|n| = 1``, the hull on its
    negative side. Qhull's default (``Qx``) merges the many coplanar facets that the edges of a
    friction pyramid, all in one 2-D plane, produce, and that merging is half its time in 6-D;
    joggling the input (``QJ``) instead moves each coordinate by ~1e-11 of the points' extent
    and builds a simplicial hull whose planes, and so the epsilon, agree to ~1e-9
    (BENCHMARKS.md). Qhull's joggle seed is fixed: the result is the same in every run.
    """
    try:
        return ConvexHull(points, qhull_options="QJ").equations
    except QhullError:
        return np.empty((0, points.shape[1] + 1))


def _separated(wrenches: NDArray[np.float64], normals: NDArray[np.float64]) -> bool:
    """Whether one of the (F, 6) ``normals`` has every (W, 6) wrench on its closed negative side.

    A hyperplane through the origin with the whole hull on one side: not force closure.
    """
    return bool((wrenches @ normals.T <= ROUND_OFF).all(axis=0).any())


def epsilon_quality(wrenches: Float64[np.ndarray, "W 6"]) -> float:
    """Radius of the largest origin-centred ball in the convex hull of the wrenches.

    0 when the origin is not strictly inside the hull, including hulls that are not
    full-dimensional and fewer than 7 wrenches.

    The radius is the least distance from the origin to a facet's plane, but the hull of all W
    wrenches (some 3,000 facets for 80) is not needed to find it. The hull of a subset S (every
    other pyramid edge to start) lies inside, so its radius r is a lower bound; the support of
    all W along the normal u of S's nearest facet, ``max_i u . w_i``, is an upper bound (the
    half-space ``u . x <= max_i u . w_i`` holds the whole hull, so no larger ball fits). When
    no wrench lies beyond that facet the two bounds meet and r is the answer; otherwise the
    wrenches beyond the facets nearly as near as it (``NEAR_FACETS``) join S and the hull is
    rebuilt, two or three rounds in all. When the origin is not strictly inside S's hull, a
    facet through or in front of it that also has all of W behind it proves there is no force
    closure; failing that the linear programme decides, and a force-closure grasp gets the
    hull of all W.
    """
    count, dim = wrenches.shape
    if count <= dim or np.linalg.matrix_rank(wrenches) < dim:
        return 0.0
    subset = np.zeros(count, bool)
    subset[::2] = True
    while True:
        facets = _facets(wrenches[subset])
        distance = -facets[:, -1]
        if not len(facets) or distance.min() <= ROUND_OFF:
            facing = facets[distance <= ROUND_OFF, :-1]
            if (
                subset.all()
                or _separated(wrenches, facing)
                or not _strictly_contains_origin(wrenches)
            ):
                return 0.0
            subset[:] = True
            continue
        radius = distance.min()
        near = facets[distance <= NEAR_FACETS * radius]
        # beyond[i, f]: wrench i lies in front of near facet f's plane (by more than round-off).
        beyond = wrenches @ near[:, :-1].T + near[:, -1] > ROUND_OFF
        if not (beyond[:, near[:, -1].argmax()] & ~subset).any():
            return float(radius)
        subset |= beyond.any(axis=1)


def default_workers() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _fork_is_safe() -> bool:
    """Whether this platform forks safely: not where fork is missing, nor on macOS, where it is
    listed but a child forked after the system's frameworks (numpy's Accelerate) may crash, which
    is why Python defaults to spawn there."""
    return "fork" in get_all_start_methods() and sys.platform != "darwin"


def _map_epsilon(wrench_sets: list[NDArray[np.float64]], workers: int) -> list[float]:
    """:func:`epsilon_quality` of each set, over ``workers`` forked processes when it pays."""
    if workers <= 1 or len(wrench_sets) < MIN_PARALLEL or not _fork_is_safe():
        return [epsilon_quality(w) for w in wrench_sets]
    # Forked workers share the parent's imports; they run only numpy and scipy (no torch).
    context = get_context("fork")
    chunk = max(1, len(wrench_sets) // (4 * workers))
    # Killed (SIGKILL), this process leaves idle workers waiting on the task queue, whose pipe
    # their forked siblings hold open: without the watcher they never end (hopose.data.workers).
    # Its argument, a DataLoader worker's id, is unused.
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=ExitWithParent(), initargs=(0,)
    ) as pool:
        return list(pool.map(epsilon_quality, wrench_sets, chunksize=chunk))


def grasp_quality(
    contacts: Float64[np.ndarray, "B K 3"],
    normals: Float64[np.ndarray, "B K 3"],
    valid: Bool[np.ndarray, "B K"],
    centre: Float64[np.ndarray, "B 3"],
    mu: float = MU,
    n_edges: int = N_EDGES,
    length: Float64[np.ndarray, " B"] | None = None,
    axes: Float64[np.ndarray, "B 3 3"] | None = None,
    workers: int = 1,
) -> Float64[np.ndarray, " B"]:
    """Ferrari-Canny epsilon of each sample's valid contacts.

    Each sample has its own number of valid contacts and Qhull builds one hull per call, so
    there is no batched form; this is an evaluation metric on numpy, never part of a loss or of
    the autograd graph. :func:`epsilon_quality` finds each epsilon from hulls of subsets of
    the wrenches (10 contacts: 80 wrenches, whose full hull has some 3,000 facets in 6-D and
    costs about 15 ms), spread over ``workers`` processes (BENCHMARKS.md).

    Args:
        contacts: contact points, mm.
        normals: unit inward normals at the contacts.
        valid: the contacts that take part; those with a zero normal or a non-finite position
            are left out too.
        centre: the object's centre of mass.
        mu: Coulomb friction coefficient.
        n_edges: edges of each linearised friction cone.
        length: characteristic length dividing the torques, mm; by default the largest
            distance from the centre to a valid contact.
        axes: the object's own axes as columns (:func:`hopose.geometry.box_axes`), which
            orient the friction pyramid of a contact on a face's centre line; by default the
            camera's, and then such a grasp's score moves with the camera.
        workers: processes for the hulls (1: this one).

    Returns:
        Epsilon, 0 for grasps that are not force closure.
    """
    contacts, normals = np.asarray(contacts, np.float64), np.asarray(normals, np.float64)
    valid, centre = np.asarray(valid, bool), np.asarray(centre, np.float64)
    if mu < 0 or n_edges < 3:
        raise ValueError(f"need mu >= 0 and n_edges >= 3, got mu={mu}, n_edges={n_edges}")
    # A contact without a normal (on a degenerate box, normals are zero) cannot push.
    usable = valid & np.isfinite(contacts).all(-1) & (np.linalg.norm(normals, axis=-1) > 0.5)
    samples, wrench_sets = [], []
    for b in range(len(contacts)):
        # Two joints can share a support point: a repeated contact adds no wrench, only work.
        unique = np.unique(np.concatenate([contacts[b], normals[b]], -1)[usable[b]], axis=0)
        pts, nrm = unique[:, :3], unique[:, 3:]
        # Contacts that all share one normal push the same way: no closure, no hull needed.
        if len(np.unique(nrm, axis=0)) < 2:
            continue
        scale = np.linalg.norm(pts - centre[b], axis=-1).max() if length is None else length[b]
        samples.append(b)
        wrench_sets.append(
            contact_wrenches(
                pts,
                nrm,
                centre[b],
                max(float(scale), 1e-12),
                mu,
                n_edges,
                None if axes is None else np.asarray(axes[b], np.float64),
            )
        )
    quality = np.zeros(len(contacts))
    quality[samples] = _map_epsilon(wrench_sets, workers)
    return quality


def pose_plausibility(
    hand: Float[Tensor, "*batch 21 3"], obj: Float[Tensor, "*batch 8 3"], *, workers: int = 1
) -> dict[str, Float64[np.ndarray, "*batch"]]:
    """Per-frame plausibility of hands and boxes, one contact search each.

    Args:
        hand: joints, mm; one pose (21, 3) or any batch of them.
        obj: box corners, mm, of the same batch shape as ``hand`` (a ValueError naming the
            argument otherwise).
        workers: processes for the grasp hulls (:func:`grasp_quality`).

    Returns:
        Arrays of the poses' batch shape: ``valid_contacts``, ``affinity`` (Eq. 6),
        ``penetration_mm`` (the deepest joint), ``grasp_epsilon`` and ``cuboid_mm``
        (:func:`hopose.geometry.cuboid_error`); all NaN for a frame whose hand or box is not
        finite (a missing annotation, as HO-3D's evaluation split, or a diverged prediction):
        such a pose has no contacts to judge.
    """
    check_hand_object(hand, obj)
    batch = hand.shape[:-2]
    hand = hand.detach().to("cpu", torch.float64).reshape(-1, *hand.shape[-2:])  # (B, 21, 3)
    obj = obj.detach().to("cpu", torch.float64).reshape(-1, *obj.shape[-2:])  # (B, 8, 3)
    return {name: value.reshape(batch) for name, value in _plausibility(hand, obj, workers).items()}


def _plausibility(
    hand: Float64[Tensor, "B 21 3"], obj: Float64[Tensor, "B 8 3"], workers: int
) -> dict[str, Float64[np.ndarray, " B"]]:
    """:func:`pose_plausibility` of a flat batch of CPU float64 poses."""
    finite = hand.isfinite().flatten(1).all(1) & obj.isfinite().flatten(1).all(1)  # (B,)
    names = (VALID_CONTACTS, AFFINITY, PENETRATION_MM, GRASP_EPSILON, CUBOID_MM)
    if not len(hand):  # no chunk to concatenate below
        return {name: np.empty(0) for name in names}
    if not finite.all():
        out = {name: np.full(len(hand), np.nan) for name in names}
        if finite.any():
            scored = _plausibility(hand[finite], obj[finite], workers)
            for name in names:
                out[name][finite.numpy()] = scored[name]
        return out
    affinity, pts, normals, valid = [], [], [], []
    for start in range(0, len(hand), CHUNK):
        h, o = hand[start : start + CHUNK], obj[start : start + CHUNK]
        chunk_pts, dirs, chunk_valid = contact_points(h, o, N_SAMPLES, TOP_K, ETA)
        affinity.append(affinity_of_contacts(dirs, chunk_valid, reduction="none"))
        normals.append(contact_normals(chunk_pts, o, N_SAMPLES))
        pts.append(chunk_pts)
        valid.append(chunk_valid)
    pts, valid = torch.cat(pts), torch.cat(valid)
    centre = obj.mean(dim=-2)  # (B, 3)
    radius = torch.linalg.vector_norm(obj - centre[:, None, :], dim=-1).amax(dim=-1)  # (B,)
    epsilon = grasp_quality(
        pts.numpy(),
        torch.cat(normals).numpy(),
        valid.numpy(),
        centre.numpy(),
        length=radius.numpy(),
        axes=box_axes(obj)[0].numpy(),
        workers=workers,
    )
    return {
        VALID_CONTACTS: valid.sum(dim=-1).double().numpy(),
        AFFINITY: torch.cat(affinity).numpy(),
        PENETRATION_MM: penetration_depth(hand, obj).amax(dim=-1).numpy(),
        GRASP_EPSILON: epsilon,
        CUBOID_MM: cuboid_error(obj).numpy(),
    }
