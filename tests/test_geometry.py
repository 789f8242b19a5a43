"""Tests of hopose.geometry: hand-computed values, round trips and invariances."""

from __future__ import annotations

import math

import pytest
import torch
from jaxtyping import TypeCheckError

from hopose.crop import edge_aligned_scale, resize_affine
from hopose.geometry import (
    AXIS_EDGES,
    FACE_NORMALS,
    MIN_DEPTH,
    autocast_off,
    axis_angle_to_matrix,
    box_axes,
    box_central_axis,
    box_corners,
    cuboid_error,
    face_corners,
    face_grid_weights,
    fit_cuboid,
    inverse_3x3,
    invert_transform,
    make_transform,
    procrustes_align,
    project_points,
    sample_face_points,
    scale_intrinsics,
    transform_points,
    unproject_points,
)
from hopose.skeleton import BOX_FACES, CORNER_SIGNS, OPPOSITE_FACES, corner_signs

# FPHA's colour camera (docs/conventions.md §6), and a generic one with skew for the round trips.
K_FPHA = torch.tensor(
    [[1395.749023, 0, 935.732544], [0, 1395.749268, 540.681030], [0, 0, 1]], dtype=torch.float64
)
K_SKEW = torch.tensor([[500.0, 3.0, 110.0], [0, 480.0, 120.0], [0, 0, 1]], dtype=torch.float64)


def random_rigid(generator: torch.Generator, batch: int) -> torch.Tensor:
    """(batch, 4, 4) float64 rigid transforms with random rotation and translation."""
    R = axis_angle_to_matrix(torch.randn(batch, 3, generator=generator, dtype=torch.float64) * 2)
    t = torch.randn(batch, 3, generator=generator, dtype=torch.float64) * 100
    return make_transform(R, t)


def test_project_points_hand_computed():
    # u = fx x / z + cx = 500*10/100 + 3*20/100 + 110 = 50 + 0.6 + 110; v = 480*20/100 + 120.
    pixels = project_points(torch.tensor([[10.0, 20.0, 100.0]], dtype=torch.float64), K_SKEW)
    torch.testing.assert_close(pixels, torch.tensor([[160.6, 216.0]], dtype=torch.float64))


def test_project_unproject_round_trip():
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(4, 21, 3, generator=generator, dtype=torch.float64) * 80 + torch.tensor(
        [0, 0, 500.0]
    )
    for K in (K_FPHA, K_SKEW, torch.stack([K_FPHA, K_SKEW, K_FPHA, K_SKEW])):
        pixels = project_points(points, K)
        assert pixels.shape == (4, 21, 2)
        torch.testing.assert_close(unproject_points(pixels, points[..., 2], K), points)
        torch.testing.assert_close(
            project_points(unproject_points(pixels, points[..., 2], K), K), pixels
        )


def test_project_points_behind_the_camera_divides_by_min_depth():
    # Depths at or below MIN_DEPTH (1e-6 mm) are clamped to it: (K X)[:2] / MIN_DEPTH, large
    # but finite. The camera centre gives K X = 0 -> (0, 0). (5, 5, -10) gives
    # K X = (1395.749023 * 5 + 935.732544 * -10, 1395.749268 * 5 + 540.681030 * -10, -10)
    #     = (6978.745115 - 9357.32544, 6978.74634 - 5406.8103, -10) = (-2378.580325, 1571.93604).
    points = torch.tensor([[0.0, 0.0, 0.0], [5.0, 5.0, -10.0]], dtype=torch.float64)
    K_X = torch.tensor([[0.0, 0.0], [-2378.580325, 1571.93604]], dtype=torch.float64)
    expected = K_X / MIN_DEPTH
    assert expected[1, 0] < -2e9  # about -2.4e9 px
    torch.testing.assert_close(project_points(points, K_FPHA), expected, rtol=1e-12, atol=0)
    # float32 keeps them finite and agrees to its precision.
    projected = project_points(points.float(), K_FPHA.float())
    assert torch.isfinite(projected).all()
    torch.testing.assert_close(projected.double(), expected, rtol=1e-6, atol=0)


def test_scale_intrinsics_scales_pixels():
    # Resizing 1920x1080 to 224x224: pixels scale by (224/1920, 224/1080) per axis.
    scale_x, scale_y = 224 / 1920, 224 / 1080
    points = torch.tensor([[30.0, -40.0, 400.0], [-100.0, 60.0, 700.0]], dtype=torch.float64)
    scaled = project_points(points, scale_intrinsics(K_FPHA, scale_x, scale_y))
    expected = project_points(points, K_FPHA) * torch.tensor(
        [scale_x, scale_y], dtype=torch.float64
    )
    torch.testing.assert_close(scaled, expected)
    # One scale per frame: the (B,) scales multiplied a (B, 1, 1) column and were concatenated
    # with a (B, 1, 1) one, which raised.
    scales = torch.tensor([0.5, 2.0], dtype=torch.float64)
    batched = scale_intrinsics(K_FPHA.expand(2, 3, 3), scales, 1 / scales)
    for b in range(2):
        torch.testing.assert_close(
            batched[b], scale_intrinsics(K_FPHA, float(scales[b]), float(1 / scales[b]))
        )


def test_scale_intrinsics_is_the_network_resize_not_an_edge_aligned_one():
    # The map the network images are sampled with (crop.resize_affine, u -> s u) is K scaled;
    # an ordinary resize keeping the outer pixel edges (u -> s u + (s - 1) / 2) moves the
    # principal point by (s - 1) / 2 more: -0.44 and -0.40 px for 1920 x 1080 -> 224.
    s = torch.tensor([224 / 1920, 224 / 1080], dtype=torch.float64)
    scaled = scale_intrinsics(K_FPHA, float(s[0]), float(s[1]))
    torch.testing.assert_close(scaled, resize_affine((1920, 1080), 224, K_FPHA) @ K_FPHA)
    shift = (edge_aligned_scale(s) @ K_FPHA - scaled)[:2, 2]
    torch.testing.assert_close(shift, (s - 1) / 2)


def test_a_transform_rotates_then_translates_by_hand():
    """make_transform(R, t) maps X to R X + t: a quarter turn about z takes x to y and y to -x,
    then t = (1, 2, 3) is added: (1, 0, 0) -> (0, 1, 0) + t = (1, 3, 3) and
    (0, 2, 5) -> (-2, 0, 5) + t = (-1, 2, 8)."""
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    T = make_transform(R, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    points = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 5.0]], dtype=torch.float64)
    expected = torch.tensor([[1.0, 3.0, 3.0], [-1.0, 2.0, 8.0]], dtype=torch.float64)
    torch.testing.assert_close(transform_points(points, T), expected)


def test_transform_inverse_round_trip():
    generator = torch.Generator().manual_seed(1)
    T = random_rigid(generator, 5)
    points = torch.randn(5, 21, 3, generator=generator, dtype=torch.float64) * 100
    eye = torch.eye(4, dtype=torch.float64).expand(5, 4, 4)
    torch.testing.assert_close(T @ invert_transform(T), eye)
    torch.testing.assert_close(invert_transform(T) @ T, eye)
    torch.testing.assert_close(
        transform_points(transform_points(points, T), invert_transform(T)), points
    )
    # Same as the homogeneous product T @ [X; 1].
    homogeneous = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
    torch.testing.assert_close(
        transform_points(points, T), (homogeneous @ T.transpose(-1, -2))[..., :3]
    )


def test_axis_angle_to_matrix():
    # 90 degrees about z takes x to y and y to -x.
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    torch.testing.assert_close(
        R, torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    )
    generator = torch.Generator().manual_seed(2)
    w = torch.randn(10, 3, generator=generator, dtype=torch.float64)
    R = axis_angle_to_matrix(w)
    eye = torch.eye(3, dtype=torch.float64).expand(10, 3, 3)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(10, dtype=torch.float64))
    # The axis is fixed; the zero vector is the identity, with finite gradients.
    torch.testing.assert_close((R @ w[..., None])[..., 0], w)
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(axis_angle_to_matrix(zero), torch.eye(3, dtype=torch.float64))
    # dR/dw_i at w = 0 is the generator [e_i]_x (R = I + [w]_x + O(|w|^2)); dividing w by its
    # norm made it 0. The sum of R's entries has gradient 0 for any generator, so check each.
    jacobian = torch.autograd.functional.jacobian(axis_angle_to_matrix, zero)  # (3, 3, 3)
    generators = torch.tensor(
        [
            [[0.0, 0, 0], [0, 0, -1], [0, 1, 0]],
            [[0.0, 0, 1], [0, 0, 0], [-1, 0, 0]],
            [[0.0, -1, 0], [1, 0, 0], [0, 0, 0]],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(jacobian.movedim(-1, 0), generators)
    for w in (zero, torch.tensor([1e-9, -2e-9, 0.0]), torch.tensor([0.3, -1.2, 2.0])):
        w = w.to(torch.float64).requires_grad_(True)
        assert torch.autograd.gradcheck(axis_angle_to_matrix, (w,))


def test_box_corners_follow_the_sign_convention():
    size = torch.tensor([40.0, 60.0, 200.0])
    corners = box_corners(size)
    assert corners.shape == (8, 3)
    # Corner c is (sx * 20, sy * 30, sz * 100) for its signs (sx, sy, sz).
    torch.testing.assert_close(
        corners, torch.tensor(CORNER_SIGNS, dtype=torch.float32) * torch.tensor([20.0, 30.0, 100.0])
    )
    generator = torch.Generator().manual_seed(3)
    T = random_rigid(generator, 1)[0]
    torch.testing.assert_close(box_corners(size.double(), T), transform_points(corners.double(), T))


def test_face_corners_and_sampled_points():
    corners = box_corners(torch.tensor([40.0, 60.0, 200.0], dtype=torch.float64))
    quads = face_corners(corners)
    assert quads.shape == (6, 4, 3)
    for f, face in enumerate(BOX_FACES):
        assert torch.equal(quads[f], corners[list(face)])
    points = sample_face_points(corners, 3)
    assert points.shape == (6, 9, 3)
    # Index iu * 3 + iv: (u, v) = (0, 0) -> a, (1, 0) -> b, (1, 1) -> c, (0, 1) -> d, centre 4.
    torch.testing.assert_close(points[:, [0, 6, 8, 2]], quads)
    torch.testing.assert_close(points[:, 4], quads.mean(dim=1))
    # With 11 per side the grid steps 1/10 of each side and still holds the centre (index 60).
    dense = sample_face_points(corners, 11)
    assert dense.shape == (6, 121, 3)
    torch.testing.assert_close(dense[:, 60], quads.mean(dim=1))
    torch.testing.assert_close(dense[0, 1] - dense[0, 0], (quads[0, 3] - quads[0, 0]) / 10)


def test_face_grid_weights_hand_computed():
    # N = 3: s = (0, 0.5, 1); row iu * 3 + iv holds the weights of (a, b, c, d) at
    # u = s[iu], v = s[iv]: ((1-u)(1-v), u(1-v), uv, (1-u)v).
    weights = face_grid_weights(3, dtype=torch.float64, device=torch.device("cpu"))
    assert weights.shape == (9, 4)
    torch.testing.assert_close(weights[0], torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64))
    # Row 1: u = 0, v = 0.5, halfway from a to d; row 3: u = 0.5, v = 0, halfway from a to b.
    torch.testing.assert_close(weights[1], torch.tensor([0.5, 0.0, 0.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(weights[3], torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64))
    # Row 5: u = 0.5, v = 1, halfway from d to c; row 4, the centre, a quarter each.
    torch.testing.assert_close(weights[5], torch.tensor([0.0, 0.0, 0.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(weights[4], torch.full((4,), 0.25, dtype=torch.float64))
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(9, dtype=torch.float64))


def test_axis_edges_are_the_full_edges_along_the_box_axes():
    # Each pair differs in its axis' sign alone, from - to +; on a turned 60 x 40 x 120 box the
    # edge from start to end is that side length times box_axes' unit axis.
    for axis, (start, end) in enumerate(AXIS_EDGES):
        flipped = [a for a in range(3) if CORNER_SIGNS[start][a] != CORNER_SIGNS[end][a]]
        assert flipped == [axis] and CORNER_SIGNS[end][axis] == 1
    rotation = axis_angle_to_matrix(torch.tensor([0.3, -0.8, 1.2], dtype=torch.float64))
    size = torch.tensor([60.0, 40.0, 120.0], dtype=torch.float64)
    centre = torch.tensor([5.0, -7.0, 300.0], dtype=torch.float64)
    box = box_corners(size, make_transform(rotation, centre))
    start, end = torch.tensor(AXIS_EDGES).T
    U, _ = box_axes(box)
    torch.testing.assert_close(box[end] - box[start], (U * size).T)


def test_face_normals_name_the_axis_and_side_of_each_face():
    # On the 40 x 60 x 200 box, face f's four corners all have coordinate side * size / 2 on
    # its axis, and opposite faces are the two sides of one axis.
    size = torch.tensor([40.0, 60.0, 200.0], dtype=torch.float64)
    quads = face_corners(box_corners(size))  # (6, 4, 3)
    for f, (axis, side) in enumerate(FACE_NORMALS):
        assert torch.equal(quads[f, :, axis], torch.full((4,), side * size[axis].item() / 2))
    for first, second in OPPOSITE_FACES:
        assert FACE_NORMALS[first][0] == FACE_NORMALS[second][0]
        assert FACE_NORMALS[first][1] == -FACE_NORMALS[second][1]


def test_box_central_axis_hand_computed():
    # A 100 x 60 x 300 box: the z faces are 300 apart, the longest gap, so the axis joins
    # (0, 0, -150) and (0, 0, 150); those faces are 100 x 60, radius (4*100 + 4*60) / 8 = 80.
    corners = box_corners(torch.tensor([100.0, 60.0, 300.0], dtype=torch.float64))
    upper, lower, radius = box_central_axis(corners)
    torch.testing.assert_close(upper, torch.tensor([0.0, 0.0, -150.0], dtype=torch.float64))
    torch.testing.assert_close(lower, torch.tensor([0.0, 0.0, 150.0], dtype=torch.float64))
    assert float(radius) == pytest.approx(80.0)
    # Long in x instead: the x faces, 60 x 100, end the axis; radius (4*60 + 4*100) / 8 = 80.
    upper, lower, radius = box_central_axis(
        box_corners(torch.tensor([300.0, 60.0, 100.0], dtype=torch.float64))
    )
    torch.testing.assert_close(upper, torch.tensor([-150.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(lower, torch.tensor([150.0, 0.0, 0.0], dtype=torch.float64))
    assert float(radius) == pytest.approx(80.0)


def test_box_central_axis_radius_averages_the_sides_of_both_end_faces():
    """The radius is the mean of all 8 sides of the two end faces, not of one of them: a
    predicted box need not be a cuboid, and its two ends can differ."""
    # A 100 x 60 x 300 box whose z+ end is shrunk to 50 x 30 about the axis (a frustum). The z
    # face centres stay (0, 0, -+150), 300 apart; the x faces' centres are (+-(50 + 50 + 25 +
    # 25) / 4, 0, 0), 75 apart, the y faces' 45: the axis still joins the z faces. Sides:
    # 100, 60, 100, 60 at z- (mean 80) and 50, 30, 50, 30 at z+ (mean 40): radius 60.
    corners = box_corners(torch.tensor([100.0, 60.0, 300.0], dtype=torch.float64))
    shrink = torch.where(corners[:, 2:] > 0, 0.5, 1.0)
    corners = torch.cat([corners[:, :2] * shrink, corners[:, 2:]], dim=-1)
    upper, lower, radius = box_central_axis(corners)
    torch.testing.assert_close(upper, torch.tensor([0.0, 0.0, -150.0], dtype=torch.float64))
    torch.testing.assert_close(lower, torch.tensor([0.0, 0.0, 150.0], dtype=torch.float64))
    assert float(radius) == pytest.approx(60.0)


def test_box_central_axis_moves_with_the_box():
    generator = torch.Generator().manual_seed(4)
    T = random_rigid(generator, 3)
    size = torch.tensor(
        [[100.0, 60.0, 300.0], [20.0, 90.0, 40.0], [70.0, 10.0, 30.0]], dtype=torch.float64
    )
    upper, lower, radius = box_central_axis(box_corners(size))
    moved_upper, moved_lower, moved_radius = box_central_axis(box_corners(size, T))
    torch.testing.assert_close(moved_upper, transform_points(upper[:, None], T)[:, 0])
    torch.testing.assert_close(moved_lower, transform_points(lower[:, None], T)[:, 0])
    torch.testing.assert_close(moved_radius, radius)


def test_procrustes_align_recovers_a_similarity():
    generator = torch.Generator().manual_seed(5)
    target = torch.randn(4, 21, 3, generator=generator, dtype=torch.float64) * 50
    T = random_rigid(generator, 4)
    source = transform_points(target * 0.3, T)
    torch.testing.assert_close(procrustes_align(source, target), target)
    # A mirror image is not a rotation: its best alignment stays away from the target.
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    residual = (procrustes_align(mirrored, target) - target).norm(dim=-1).mean(dim=-1)
    assert (residual > 1.0).all()
    # Unless mirrors are allowed: then it is reached, moved and scaled as any similarity.
    source = transform_points(mirrored * 0.3, T)
    torch.testing.assert_close(procrustes_align(source, target, reflection=True), target)


def test_procrustes_align_of_a_mirror_image_by_hand_and_at_the_best_scale():
    # Target: the six points (+-3, 0, 0), (0, +-2, 0), (0, 0, +-1) about (100, 0, 0); source:
    # their mirror image in x (a reflection, no rotation reaches it) about (10, 20, 30). Both
    # centred, x_n = M y_n with M = diag(-1, 1, 1), so sum_n y_n x_n^T = diag(2 * 9, 2 * 4,
    # 2 * 1) M = diag(-18, 8, 2): singular values 18, 8, 2 with det(U Vh) = -1, so the sign
    # correction flips the weakest direction, z: R = diag(-1, 1, -1) (a half-turn about y),
    # and R M = diag(1, 1, -1). The scale is (18 + 8 - 2) / sum |x_n|^2
    # = 24 / (9 + 9 + 4 + 4 + 1 + 1) = 24 / 28 = 6/7 (the flipped direction's singular value
    # counts negative; (18 + 8 + 2) / 28 = 1 if it did not).
    y = torch.tensor(
        [[3.0, 0, 0], [-3, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 1], [0, 0, -1]], dtype=torch.float64
    )
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    target = y + torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64)
    source = y * mirror + torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64)
    flip_z = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    expected = 6 / 7 * y * flip_z + torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(procrustes_align(source, target), expected, atol=1e-12, rtol=0)

    # Random mirror images: the returned pose is the least-squares one, so its scale about the
    # target's mean cannot be bettered. For the aligned offsets a_n = aligned_n - mean(target)
    # and the target's y_n, |c a - y|^2 is least at c = sum a.y / sum a.a (closed form), which
    # must be 1; rescaling by 1 +- 1e-3 must not lower the residual.
    generator = torch.Generator().manual_seed(7)
    target = torch.randn(5, 21, 3, generator=generator, dtype=torch.float64) * 50
    pose = random_rigid(generator, 5)
    source = transform_points(0.4 * target * mirror, pose)
    aligned = procrustes_align(source, target)
    mean = target.mean(dim=-2, keepdim=True)
    a, y = aligned - mean, target - mean
    best = (a * y).sum(dim=(-2, -1)) / a.square().sum(dim=(-2, -1))
    torch.testing.assert_close(best, torch.ones(5, dtype=torch.float64), atol=1e-9, rtol=0)
    residual = (a - y).square().sum(dim=(-2, -1))
    for c in (1 - 1e-3, 1 + 1e-3):
        assert ((c * a - y).square().sum(dim=(-2, -1)) >= residual).all()
    # The aligned points are centred on the target's mean (the best translation).
    torch.testing.assert_close(aligned.mean(dim=-2), target.mean(dim=-2))


def test_shape_annotations_hold_at_run_time():
    """The jaxtyping annotations, checked in the tests (tests/shape_checking.py): batched calls
    (one K broadcast over the batch) satisfy them, wrong trailing sizes are caught."""
    points = torch.rand(4, 29, 3, dtype=torch.float64) * 100 + torch.tensor([0, 0, 400.0])
    pixels = project_points(points, K_FPHA)  # (4, 29, 2), K (3, 3) broadcast
    back = unproject_points(pixels, points[..., 2], K_FPHA.expand(4, 3, 3))
    assert torch.allclose(back, points)
    T = make_transform(torch.eye(3, dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0]).double())
    shifted = transform_points(points, T)
    assert torch.allclose(procrustes_align(shifted, points), points)
    with pytest.raises(TypeCheckError):
        project_points(points[..., :2], K_FPHA)  # 2D points
    with pytest.raises(TypeCheckError):
        unproject_points(pixels, points[..., 2:], K_FPHA)  # depth (4, 29, 1)
    with pytest.raises(TypeCheckError):
        procrustes_align(points, points[:, :21])  # 29 vs 21 points
    # Broadcast: one box size (1, 3) against 4 poses, one K (3, 3) against 2 scales.
    boxes = box_corners(torch.tensor([[40.0, 60.0, 80.0]]).double(), T.expand(4, 4, 4))
    assert torch.allclose(boxes[2], box_corners(torch.tensor([40.0, 60.0, 80.0]).double(), T))
    scales = torch.tensor([0.5, 2.0], dtype=torch.float64)
    assert torch.allclose(
        scale_intrinsics(K_FPHA, scales, scales)[1], scale_intrinsics(K_FPHA, 2.0, 2.0)
    )
    # 9 corners: face_corners indexed the first 8 and returned their quads without a word.
    with pytest.raises(TypeCheckError):
        face_corners(torch.cat([boxes[0], boxes[0, :1]]))


def test_inverse_3x3_is_the_inverse():
    """The closed form K⁻¹ the lifter and its ONNX graph use: by hand on a pinhole K, against
    torch.linalg.inv on random float64 matrices, and its float64 gradient."""
    K = torch.tensor([[200.0, 0.0, 100.0], [0.0, 250.0, 50.0], [0.0, 0.0, 1.0]])
    # K⁻¹ of a pinhole camera: [[1/fx, 0, -cx/fx], [0, 1/fy, -cy/fy], [0, 0, 1]].
    expected = torch.tensor([[1 / 200, 0.0, -100 / 200], [0.0, 1 / 250, -50 / 250], [0, 0, 1]])
    torch.testing.assert_close(inverse_3x3(K), expected)
    A = torch.randn(4, 5, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(inverse_3x3(A), torch.linalg.inv(A))
    assert torch.autograd.gradcheck(inverse_3x3, (A[0].clone().requires_grad_(),))


def test_box_axes_are_the_half_edges_directions_in_label_order():
    rotation = axis_angle_to_matrix(torch.tensor([0.3, -0.8, 1.2], dtype=torch.float64))
    centre = torch.tensor([5.0, -7.0, 300.0], dtype=torch.float64)
    box = box_corners(
        torch.tensor([60.0, 40.0, 120.0], dtype=torch.float64), make_transform(rotation, centre)
    )
    U, found = box_axes(box[None])
    torch.testing.assert_close(U[0], rotation)
    torch.testing.assert_close(found[0], centre)
    # A mirrored labelling (x bit flipped: corners 0<->1, 2<->3, ...) flips the x axis only.
    relabelled = box[[1, 0, 3, 2, 5, 4, 7, 6]]
    torch.testing.assert_close(
        box_axes(relabelled[None])[0][0],
        rotation * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64),
    )


def test_box_axes_of_a_flat_box_give_a_zero_axis_not_nan():
    """A box of zero height has no y half-edge: its y axis comes out as the zero vector (the
    docstring), the other two as the unit axes, where 0 / 0 would make it NaN."""
    flat = box_corners(
        torch.tensor([60.0, 0.0, 120.0], dtype=torch.float64),
        make_transform(torch.eye(3, dtype=torch.float64), torch.tensor([0.0, 0.0, 300.0])),
    )
    U, centre = box_axes(flat[None])
    torch.testing.assert_close(U[0], torch.diag(torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)))
    torch.testing.assert_close(centre[0], torch.tensor([0.0, 0.0, 300.0], dtype=torch.float64))


def test_cuboid_error_is_the_mean_corner_distance_by_hand():
    """A 40 x 60 x 100 mm box at (10, -20, 500) whose corner k moves by p_k (0, 0, 2) mm, p_k =
    sx sy sz its sign parity. Over the 8 corners p is orthogonal to 1, sx, sy and sz, so the
    centroid and the moment A = sum (X_k - c) g_k^T do not change, and for any cuboid
    Y_k = c' + M g_k: sum |X_k + p_k v - Y_k|^2 = sum |X_k - Y_k|^2 + 8 |v|^2 (the cross terms
    vanish). The best cuboid is the unmoved box, every corner exactly |v| = 2 mm from it: the
    mean distance is 2 mm (a sum over the corners would give 8 x 2 = 16)."""
    signs = corner_signs().double()
    half = torch.tensor([20.0, 30.0, 50.0], dtype=torch.float64)
    box = signs * half + torch.tensor([10.0, -20.0, 500.0], dtype=torch.float64)
    parity = signs.prod(dim=-1, keepdim=True)  # (8, 1) of +-1
    moved = box + parity * torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(fit_cuboid(moved), box)
    assert float(cuboid_error(moved)) == pytest.approx(2.0, abs=1e-9)


def test_autocast_off_turns_it_off_where_the_device_has_it_and_is_a_no_op_where_not():
    """Inside a bfloat16 autocast a matmul keeps float32; the 'meta' device has no autocast,
    whose context could not be built there (unsupported scalarType)."""
    a = torch.rand(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
        with autocast_off(a):
            assert (a @ a).dtype == torch.float32
    meta = torch.empty(4, 4, device="meta")
    with autocast_off(meta):
        assert (meta @ meta).shape == (4, 4)
