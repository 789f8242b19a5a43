"""Camera projection, rigid transforms and box geometry as pure, batched tensor functions.

Conventions (docs/conventions.md §1): millimetres, OpenCV camera frame (x right, y down, z
forward), a 3D point
X projects to ``K @ X / z``. Every function takes arbitrary leading batch dimensions ``...`` and
works in float32 and float64 on any device. Half precision is not supported: ``K @ X`` of
ordinary millimetres overflows float16 (65504), and the SVD and determinant of
:func:`procrustes_align` and :func:`fit_cuboid` have no float16 or bfloat16 kernels; callers
that hold half tensors convert them first, as :mod:`hopose.physics` does, under
:func:`autocast_off`, which keeps autocast from casting them back. Shapes are jaxtyping
annotations (``*batch``: the same leading dimensions for every argument; ``*#batch``: leading
dimensions broadcast against each other), checked at run time in the tests.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from jaxtyping import Float
from torch import Tensor

from hopose.skeleton import BOX_FACES, CORNER_SIGNS, NUM_CORNERS, OPPOSITE_FACES, layout_tensor

# Depths below this (mm) are clamped before the perspective division, so a point at or behind
# the camera gives a large but finite pixel position instead of Inf/NaN.
MIN_DEPTH = 1e-6
# Guards box_axes' normalisation: a flat box gives a zero axis, not a NaN.
AXIS_EPS = 1e-6
# For each of the box's own axes x, y, z, the corners (start, end) of an edge along it: the
# all-minus corner and the corner whose sign differs from it on that axis alone. So
# ``corners[end] - corners[start]`` is the box's full edge along the axis, the half-edge of
# box_axes times two, whatever the order of CORNER_SIGNS; numpy code that needs a box's edges
# (rendering, grasp generation) indexes with these instead of calling box_axes through torch.
AXIS_EDGES: tuple[tuple[int, int], ...] = tuple(
    (
        CORNER_SIGNS.index((-1, -1, -1)),
        CORNER_SIGNS.index(tuple(1 if other == axis else -1 for other in range(3))),
    )
    for axis in range(3)
)
# For each face of BOX_FACES, the box axis it is normal to and its side (-1 or +1): the axis on
# which its four corners share their sign, and that sign.
FACE_NORMALS: tuple[tuple[int, int], ...] = tuple(
    next(
        (axis, CORNER_SIGNS[face[0]][axis])
        for axis in range(3)
        if len({CORNER_SIGNS[corner][axis] for corner in face}) == 1
    )
    for face in BOX_FACES
)


def autocast_off(x: Tensor) -> AbstractContextManager:
    """A context with autocast off on ``x``'s device, so that matmuls keep their inputs' dtype;
    none on a device without autocast (the 'meta' device, which traces shapes), where
    ``torch.autocast`` cannot be built."""
    if not torch.amp.is_autocast_available(x.device.type):
        return nullcontext()
    return torch.autocast(x.device.type, enabled=False)


def project_points(
    points: Float[Tensor, "*#batch N 3"], K: Float[Tensor, "*#batch 3 3"]
) -> Float[Tensor, "*#batch N 2"]:
    """Pinhole projection ``K @ X / z``.

    Args:
        points: points in the camera frame.
        K: intrinsics, broadcast against ``points``' batch dimensions.

    Returns:
        Pixel coordinates.
    """
    homogeneous = points @ K.transpose(-1, -2)  # (..., N, 3) rows are (K X)^T
    depth = homogeneous[..., 2:].clamp(min=MIN_DEPTH)
    return homogeneous[..., :2] / depth


def unproject_points(
    pixels: Float[Tensor, "*#batch N 2"],
    depth: Float[Tensor, "*#batch N"],
    K: Float[Tensor, "*#batch 3 3"],
) -> Float[Tensor, "*#batch N 3"]:
    """Inverse of :func:`project_points` given each point's depth.

    Args:
        pixels: pixel coordinates.
        depth: depth z of each point.
        K: intrinsics.

    Returns:
        Points in the camera frame.
    """
    ones = torch.ones_like(pixels[..., :1])
    rays = torch.cat([pixels, ones], dim=-1) @ inverse_3x3(K).transpose(-1, -2)
    return rays * depth[..., None]


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """(..., 3) x (..., 3) -> (..., 3) cross product, in elementwise operators."""
    return torch.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        dim=-1,
    )


def inverse_3x3(A: Float[Tensor, "*batch 3 3"]) -> Float[Tensor, "*batch 3 3"]:
    """Inverse of 3 x 3 matrices in closed form: the adjugate over the determinant.

    Row i of ``A⁻¹`` is the cross product of the two columns of A other than i, in cyclic order,
    over ``det A``. Elementwise operators only, unlike ``torch.linalg.inv``: ONNX has no matrix
    inverse, so the exported graph (:mod:`hopose.export`) computes K⁻¹ exactly as PyTorch does,
    and the exporter needs no decomposition pass of its own for it.
    """
    c0, c1, c2 = A[..., 0], A[..., 1], A[..., 2]  # (..., 3) columns
    rows = torch.stack([_cross(c1, c2), _cross(c2, c0), _cross(c0, c1)], dim=-2)  # adjugate
    det = (c0 * rows[..., 0, :]).sum(dim=-1)  # c0 . (c1 x c2)
    return rows / det[..., None, None]


def scale_intrinsics(
    K: Float[Tensor, "*#batch 3 3"],
    scale_x: float | Float[Tensor, "*#batch"],
    scale_y: float | Float[Tensor, "*#batch"],
) -> Float[Tensor, "*#batch 3 3"]:
    """Intrinsics of an image resized by (scale_x, scale_y): rows 0 and 1 of K are scaled.

    The pixel map is u' = scale_x * u, v' = scale_y * v (pixel centres at integers): the map
    :func:`hopose.crop.resize_affine`, with which :class:`hopose.crop.FrameWarp` samples a
    resized frame, so these are exactly the intrinsics of its images. It is not the map of an
    ordinary resize (OpenCV's, Pillow's), which keeps the image's outer pixel edges and takes u
    to s u + (s - 1) / 2; for such an image use :func:`hopose.crop.edge_aligned_scale` ``@ K``.

    Args:
        K: intrinsics.
        scale_x, scale_y: numbers, or tensors broadcast against K's batch dimensions.

    Returns:
        Intrinsics of the resized image.
    """
    scale_x, scale_y = (
        torch.as_tensor(s, dtype=K.dtype, device=K.device) for s in (scale_x, scale_y)
    )
    scale_x, scale_y = torch.broadcast_tensors(scale_x, scale_y)
    rows = torch.stack([scale_x, scale_y, torch.ones_like(scale_x)], dim=-1)  # (..., 3)
    return K * rows[..., :, None]


def make_transform(
    R: Float[Tensor, "*batch 3 3"], t: Float[Tensor, "*batch 3"]
) -> Float[Tensor, "*batch 4 4"]:
    """Homogeneous transform from rotation R and translation t."""
    top = torch.cat([R, t[..., :, None]], dim=-1)  # (..., 3, 4)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def transform_points(
    points: Float[Tensor, "*#batch N 3"], T: Float[Tensor, "*#batch 4 4"]
) -> Float[Tensor, "*#batch N 3"]:
    """Apply a rigid (or any affine) transform: ``R X + t``.

    Args:
        points: points to move.
        T: homogeneous transform, broadcast against ``points``' batch dimensions.
    """
    return points @ T[..., :3, :3].transpose(-1, -2) + T[..., None, :3, 3]


def invert_transform(T: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Inverse of a rigid transform, using R^-1 = R^T."""
    R_inv = T[..., :3, :3].transpose(-1, -2)
    return make_transform(R_inv, -(R_inv @ T[..., :3, 3:])[..., 0])


def axis_angle_to_matrix(axis_angle: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 3 3"]:
    """Rodrigues' formula: the rotation by |w| radians about w / |w|, from w = ``axis_angle``.

    Written in w itself, ``R = I + sin(t)/t [w]_x + (1 - cos t)/t^2 [w]_x^2`` with t = |w|, and
    both coefficients as sinc functions, so that the value and the gradient are exact at and
    near w = 0 (where dR/dw_i is the generator [e_i]_x). Dividing w by its norm first gave the
    identity at w = 0 but a zero gradient there.
    """
    angle = torch.linalg.vector_norm(axis_angle, dim=-1)[..., None, None]  # (..., 1, 1)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    # Cross-product matrix [w]_x, (..., 3, 3).
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).unflatten(-1, (3, 3))
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    # sin(t)/t = sinc(t/pi); (1 - cos t)/t^2 = 2 sin^2(t/2)/t^2 = sinc(t/(2 pi))^2 / 2.
    first = torch.sinc(angle / torch.pi)
    second = torch.sinc(angle / (2 * torch.pi)).square() / 2
    return eye + first * cross + second * (cross @ cross)


def box_corners(
    size: Float[Tensor, "*#batch 3"], T: Float[Tensor, "*#batch 4 4"] | None = None
) -> Float[Tensor, "*#batch 8 3"]:
    """The 8 corners of a box in docs/conventions.md §1 order.

    Args:
        size: side lengths along the box's own x, y, z axes.
        T: optional pose mapping box coordinates (centred at the origin) to the target frame,
            broadcast against ``size``'s batch dimensions.
    """
    signs = layout_tensor(CORNER_SIGNS, size.device, size.dtype)
    corners = signs * size[..., None, :] / 2
    return corners if T is None else transform_points(corners, T)


def face_corners(corners: Float[Tensor, "*batch 8 3"]) -> Float[Tensor, "*batch 6 4 3"]:
    """Box corners to each face's quad (a, b, c, d) in canonical order."""
    return corners[..., layout_tensor(BOX_FACES, corners.device), :]


def face_grid_weights(
    n_samples: int, *, dtype: torch.dtype, device: torch.device
) -> Float[Tensor, "M 4"]:
    """The bilinear weights of each point of an N x N face grid on its quad's corners (a, b, c, d).

    ``P(u, v) = (1-u)(1-v) a + u(1-v) b + uv c + (1-u)v d`` for u, v in ``linspace(0, 1, N)``,
    edges included (paper §3.3, docs/conventions.md §2 step 1). The one definition of the grid:
    :func:`sample_face_points` builds every point with it, and :mod:`hopose.physics` rebuilds the
    support point that :func:`hopose.physics.select_contacts` chose by its index.

    Args:
        n_samples: points per side, N.
        dtype, device: of the weights.

    Returns:
        The weights of the M = N*N points, point ``iu * N + iv`` (at ``u = s[iu], v = s[iv]``)
        in row ``iu * N + iv``.
    """
    s = torch.linspace(0, 1, n_samples, dtype=dtype, device=device)
    u, v = torch.meshgrid(s, s, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)  # (N*N,)
    return torch.stack([(1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v], dim=-1)


def sample_face_points(
    corners: Float[Tensor, "*batch 8 3"], n_samples: int
) -> Float[Tensor, "*batch 6 M 3"]:
    """Bilinear grids on the six faces (paper §3.3, docs/conventions.md §2 step 1): the points of
    :func:`face_grid_weights` on each face's quad (:func:`face_corners`).

    Args:
        corners: box corners.
        n_samples: points per side, N.

    Returns:
        The M = N*N points of each face, index ``iu * N + iv``.
    """
    quads = face_corners(corners)  # (..., 6, 4, 3)
    weights = face_grid_weights(n_samples, dtype=corners.dtype, device=corners.device)  # (M, 4)
    # One (N*N, 4) @ (4, ...*6*3) product instead of a batch of tiny (N*N, 4) @ (4, 3) ones.
    flat = quads.movedim(-2, 0).reshape(4, -1)  # (4, ...*6*3)
    points = (weights @ flat).reshape(len(weights), *quads.shape[:-2], 3)  # (N*N, ..., 6, 3)
    return points.movedim(0, -2)  # (..., 6, N*N, 3)


def box_central_axis(
    corners: Float[Tensor, "*batch 8 3"],
) -> tuple[Float[Tensor, "*batch 3"], Float[Tensor, "*batch 3"], Float[Tensor, "*batch"]]:
    """The box's central axis and radius (docs/conventions.md §2 step 4).

    Of the three pairs of opposite faces, the pair whose centres lie farthest apart (the box's
    longest dimension) are the "upper" and "lower" surfaces; the axis runs through their centres
    and the radius is the mean length of those two faces' 8 sides. Ties go to the first pair.
    The choice of pair is not differentiated; positions and radius are.

    Args:
        corners: box corners.

    Returns:
        ``(upper, lower, radius)``: the centres of the two end faces and the radius.
    """
    # OPPOSITE_FACES pairs face 2i with face 2i + 1: the pairs are the faces two by two.
    pairs = face_corners(corners).unflatten(-3, (len(OPPOSITE_FACES), 2))  # (..., 3, 2, 4, 3)
    centres = pairs.mean(dim=-2)  # (..., 3, 2, 3)
    gaps = torch.linalg.vector_norm(centres[..., 0, :] - centres[..., 1, :], dim=-1)  # (..., 3)
    best = gaps.argmax(dim=-1)  # (...,)
    gather_index = best[..., None, None, None, None].expand(*best.shape, 1, *pairs.shape[-3:])
    ends = torch.gather(pairs, -4, gather_index).squeeze(-4)  # (..., 2, 4, 3) upper, lower
    sides = torch.linalg.vector_norm(ends - ends.roll(1, dims=-2), dim=-1)  # (..., 2, 4)
    radius = sides.mean(dim=(-2, -1))
    upper, lower = ends.mean(dim=-2).unbind(-2)
    return upper, lower, radius


def procrustes_align(
    source: Float[Tensor, "*batch N 3"],
    target: Float[Tensor, "*batch N 3"],
    *,
    reflection: bool = False,
) -> Float[Tensor, "*batch N 3"]:
    """Similarity Procrustes: ``source`` moved by the s, R, t that bring it closest to ``target``.

    Umeyama's closed form (least squares over s, R, t of ``|s R X + t - Y|^2``), with the sign
    correction that keeps R a proper rotation unless ``reflection``. Not differentiable where
    the cross-covariance has repeated singular values (a source of all-equal or collinear
    points, among others): the SVD's backward gives NaN gradients there.

    Args:
        source: points to move.
        target: the points they correspond to.
        reflection: let R be any orthogonal matrix, a mirror included, as
            ``scipy.linalg.orthogonal_procrustes`` does and with it the Procrustes-aligned
            scores of the hand benchmarks' toolkits (FreiHAND's ``align_w_scale``, which HO-3D's
            and DexYCB's evaluations call).

    Returns:
        The aligned source.
    """
    mu_x, mu_y = source.mean(dim=-2, keepdim=True), target.mean(dim=-2, keepdim=True)
    x, y = source - mu_x, target - mu_y
    cov = y.transpose(-1, -2) @ x  # (..., 3, 3) sum_n y_n x_n^T
    U, S, Vh = torch.linalg.svd(cov)
    D = torch.ones_like(S)
    if not reflection:
        D[..., -1] = _determinant_sign(U @ Vh)
    R = U @ (D[..., :, None] * Vh)  # (..., 3, 3)
    var_x = x.square().sum(dim=(-2, -1))
    scale = (S * D).sum(dim=-1) / var_x.clamp(min=torch.finfo(source.dtype).tiny)
    return scale[..., None, None] * (x @ R.transpose(-1, -2)) + mu_y


def _determinant_sign(M: Tensor) -> Tensor:
    """(...,) the sign of det M (..., 3, 3), +1 for a singular M."""
    sign = torch.sign(torch.linalg.det(M))
    return torch.where(sign == 0, torch.ones_like(sign), sign)


def fit_cuboid(
    corners: Float[Tensor, "*batch 8 3"], iterations: int = 8
) -> Float[Tensor, "*batch 8 3"]:
    """The exact cuboid nearest to 8 corners: free centre, rotation and side lengths.

    Least squares over centre c, rotation R and half-sizes s of ``sum_k |c + R diag(s) g_k -
    X_k|^2``, g_k the corner sign bits of the box order in docs/conventions.md. The signs sum to
    zero, so c is the corners' mean; with Y_k = X_k - c and A = sum_k Y_k g_k^T (3, 3), the best
    s for a fixed R is ``s_a = r_a . A_a / 8`` (column a of R and of A), and the best R for a
    fixed s is the rotation closest to ``A diag(s)`` (Procrustes, by SVD with the sign
    correction of a proper rotation). Alternating the two converges in a few steps. A half-size
    may come out negative: the corners are then a mirrored labelling of a cuboid, still exact.
    The start is s = (1, 1, sign det A), so that A diag(s) has a positive determinant and R is
    its polar rotation, exact for an exact cuboid of either handedness: starting a mirrored
    labelling (det A < 0) from s = 1 made R flip A's weakest direction instead, and one
    alternation (what :func:`hopose.refine.refine_pose` runs after each step) left such boxes
    several times farther from the corners than their best cuboid. The start makes the fit
    equivariant under reflections: the fit of mirrored corners is the mirrored fit. A
    batch element with a non-finite corner gives NaN corners (the others are unaffected)
    instead of an error of the SVD. Not differentiable where ``A diag(s)`` has repeated
    singular values (an exact cube, among others): the SVD's backward gives NaN gradients there.

    Args:
        corners: box corners in the box order.
        iterations: alternations of the s and R steps.

    Returns:
        The corners of the fitted cuboid, in the same order.
    """
    finite = corners.isfinite().flatten(-2).all(dim=-1)[..., None, None]  # (..., 1, 1)
    corners = torch.where(finite, corners, torch.zeros_like(corners))
    signs = layout_tensor(CORNER_SIGNS, corners.device, corners.dtype)  # (8, 3)
    centre = corners.mean(dim=-2, keepdim=True)
    A = (corners - centre).transpose(-1, -2) @ signs  # (..., 3, 3) column a: sum_k g_ka Y_k
    half = torch.ones_like(A[..., 0, :])  # (..., 3)
    half[..., -1] = _determinant_sign(A)
    for _ in range(iterations):
        U, _, Vh = torch.linalg.svd(A * half[..., None, :])
        D = torch.ones_like(half)
        D[..., -1] = _determinant_sign(U @ Vh)
        R = U @ (D[..., :, None] * Vh)  # (..., 3, 3) proper rotation
        half = (R * A).sum(dim=-2) / len(signs)
    fitted = centre + (signs * half[..., None, :]) @ R.transpose(-1, -2)
    return torch.where(finite, fitted, torch.full_like(fitted, torch.nan))


def cuboid_error(corners: Float[Tensor, "*batch 8 3"]) -> Float[Tensor, "*batch"]:
    """How far 8 corners are from forming a box: mean distance to :func:`fit_cuboid`'s corners.

    Not differentiable where :func:`fit_cuboid` is not (an exact cube, among others): NaN
    gradients there.

    Args:
        corners: box corners, mm.

    Returns:
        The mean corner distance in the corners' unit, 0 for an exact cuboid.
    """
    return torch.linalg.vector_norm(corners - fit_cuboid(corners), dim=-1).mean(dim=-1)


def box_axes(
    obj: Float[Tensor, "*batch 8 3"],
) -> tuple[Float[Tensor, "*batch 3 3"], Float[Tensor, "*batch 3"]]:
    """A cuboid's own axes, in its corner labels' order, and its centre.

    With the corner signs g_k (docs/conventions.md §1) and centre c, ``sum_k (X_k - c) g_k^T / 8``
    is ``R diag(s)`` for an exact cuboid ``X_k = c + R diag(s) g_k`` (the signs of any two axes
    are orthogonal over the 8 corners): its columns are the half-edge vectors, and normalised
    they are the box's axes, signed so that corner k lies at ``sum_a g_ka s_a`` along them.
    A mirrored labelling (a left-handed corner order) keeps its own signs, so rebuilding the
    corners as ``c' + U diag(h) g_k`` keeps every corner's label. An axis of zero length (a flat
    box) comes out as the zero vector.

    Args:
        obj: corners of a cuboid (:func:`fit_cuboid`); of a near-cuboid, the axes are near its
            best cuboid's and need not be exactly orthogonal.

    Returns:
        ``(U, centre)``: unit axes as columns, and the centres.
    """
    centre = obj.mean(dim=-2)
    signs = layout_tensor(CORNER_SIGNS, obj.device, obj.dtype)
    half_edges = (obj - centre[..., None, :]).transpose(-1, -2) @ signs / NUM_CORNERS
    length = torch.linalg.vector_norm(half_edges, dim=-2, keepdim=True)  # (..., 1, 3)
    return half_edges / length.clamp(min=AXIS_EPS), centre
