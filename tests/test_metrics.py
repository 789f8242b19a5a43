"""Tests of hopose.metrics on small hand-built arrays, with the arithmetic in the comments."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from hopose.geometry import axis_angle_to_matrix
from hopose.metrics import (
    THRESHOLDS_KEYPOINT_MM,
    THRESHOLDS_MM,
    THRESHOLDS_PX,
    auc,
    keypoint_auc,
    mean_distance,
    pck_curve,
    per_frame_error,
    procrustes_error,
    reprojection_error,
    root_relative_error,
)


def per_frame_error_naive(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Loop reference: for each frame, the mean over keypoints of the Euclidean distance."""
    errors = []
    for frame_pred, frame_gt in zip(pred, gt, strict=True):
        distances = [math.dist(p, g) for p, g in zip(frame_pred, frame_gt, strict=True)]
        errors.append(sum(distances) / len(distances))
    return np.array(errors)


def project_naive(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection written out: u = fx x / z + cx, v = fy y / z + cy (no skew)."""
    x, y, z = points.T
    return np.stack([K[0, 0] * x / z + K[0, 2], K[1, 1] * y / z + K[1, 2]], axis=-1)


def test_per_frame_error_hand_computed():
    gt = np.zeros((2, 2, 3))
    pred = np.array(
        [
            [[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]],  # distances 5 and 0 -> mean 2.5
            [[1.0, 2.0, 2.0], [0.0, 0.0, -7.0]],  # distances 3 and 7 -> mean 5
        ]
    )
    np.testing.assert_allclose(per_frame_error(pred, gt), [2.5, 5.0])


def test_per_frame_error_matches_loop_in_2d_and_3d():
    rng = np.random.default_rng(0)
    for dim in (2, 3):
        pred, gt = rng.normal(size=(2, 5, 21, dim)) * 30
        np.testing.assert_allclose(per_frame_error(pred, gt), per_frame_error_naive(pred, gt))


def test_metrics_accept_torch_and_return_numpy_float64():
    rng = np.random.default_rng(1)
    pred, gt = rng.normal(size=(2, 4, 21, 3))
    pred_t = torch.tensor(pred, dtype=torch.float32, requires_grad=True)
    out = per_frame_error(pred_t, torch.tensor(gt))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (4,)
    np.testing.assert_allclose(out, per_frame_error(pred, gt), rtol=1e-6)
    assert isinstance(auc([0, 1], torch.tensor([1.0, 1.0])), float)


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="gt"):
        per_frame_error(np.zeros((2, 21, 3)), np.zeros((2, 20, 3)))
    with pytest.raises(ValueError, match="pred"):
        per_frame_error(np.zeros((21, 3)), np.zeros((21, 3)))
    with pytest.raises(ValueError, match="gt_3d"):
        reprojection_error(np.ones((2, 8, 3)), np.ones((3, 8, 3)), np.eye(3))
    with pytest.raises(ValueError, match="K"):
        reprojection_error(np.ones((2, 8, 3)), np.ones((2, 8, 3)), np.eye(4))
    with pytest.raises(ValueError, match="root"):
        root_relative_error(np.zeros((1, 21, 3)), np.zeros((1, 21, 3)), root=21)
    with pytest.raises(ValueError, match="errors"):
        pck_curve([], THRESHOLDS_MM)


def test_root_relative_error_hand_computed():
    gt = np.array([[[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]]])
    pred = np.array([[[5.0, 5.0, 5.0], [15.0, 5.0, 9.0]]])
    # Minus each root: pred -> (0,0,0), (10,0,4); gt -> (0,0,0), (10,0,0): errors 0 and 4 -> 2.
    np.testing.assert_allclose(root_relative_error(pred, gt), [2.0])
    # Minus joint 1 instead: pred -> (-10,0,-4), (0,0,0); gt -> (-10,0,0), (0,0,0): again 2.
    np.testing.assert_allclose(root_relative_error(pred, gt, root=1), [2.0])
    # Without alignment: |(5,5,5)| = 8.660, |(5,5,9)| = 11.446 -> 10.053.
    np.testing.assert_allclose(per_frame_error(pred, gt), [(75**0.5 + 131**0.5) / 2])


def test_root_relative_error_subtracts_the_joint_it_is_given():
    """``root`` picks the joint subtracted from both poses; with two joints any root gives the
    same error, so three are needed to tell the roots apart."""
    gt = np.array([[[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [20.0, 0.0, 0.0]]])
    pred = np.array([[[0.0, 0.0, 0.0], [10.0, 0.0, 3.0], [20.0, 0.0, 0.0]]])  # joint 1 3 mm off
    # Root 0: only joint 1 is off, by 3 -> (0 + 3 + 0) / 3 = 1.
    np.testing.assert_allclose(root_relative_error(pred, gt, root=0), [1.0])
    # Root 1: pred -> (-10,0,-3), 0, (10,0,-3); gt -> (-10,0,0), 0, (10,0,0): (3 + 0 + 3) / 3 = 2.
    np.testing.assert_allclose(root_relative_error(pred, gt, root=1), [2.0])
    # Root 2: pred -> (-20,0,0), (-10,0,3), 0; gt -> (-20,0,0), (-10,0,0), 0: 3 / 3 = 1.
    np.testing.assert_allclose(root_relative_error(pred, gt, root=2), [1.0])


def test_procrustes_error_hand_computed_saddle():
    # A square in the z = 0 plane against the same square bent into a saddle (z = +-1).
    gt = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]])
    pred = np.array([[[1.0, 0, 1], [-1, 0, 1], [0, 1, -1], [0, -1, -1]]])
    # Both are centred. Cross-covariance sum_n gt_n pred_n^T = diag(2, 2, 0) -> R = I and
    # scale = trace / sum |pred_n|^2 = 4 / 8 = 0.5, so pred_n -> (0.5, 0, 0.5) etc., and each
    # point is |(0.5, 0, 0.5) - (1, 0, 0)| = sqrt(0.5) away from its target.
    np.testing.assert_allclose(procrustes_error(pred, gt), [math.sqrt(0.5)], atol=1e-12)
    # Unaligned, every point is 1 off in z.
    np.testing.assert_allclose(per_frame_error(pred, gt), [1.0])


def test_procrustes_error_ignores_similarity_transforms():
    rng = np.random.default_rng(2)
    gt = torch.tensor(rng.normal(size=(3, 21, 3)) * 40)
    R = axis_angle_to_matrix(torch.tensor(rng.normal(size=(3, 3))))
    t = torch.tensor(rng.normal(size=(3, 1, 3)) * 100)
    moved = 1.7 * gt @ R.transpose(-1, -2) + t
    np.testing.assert_allclose(procrustes_error(moved, gt), 0.0, atol=1e-9)
    noisy = gt + torch.tensor(rng.normal(size=(3, 21, 3)))
    moved_noisy = 0.6 * noisy @ R.transpose(-1, -2) + t
    np.testing.assert_allclose(procrustes_error(moved_noisy, gt), procrustes_error(noisy, gt))
    assert (procrustes_error(noisy, gt) <= per_frame_error(noisy, gt)).all()


def test_reprojection_error_hand_computed():
    K = np.array([[100.0, 0, 50], [0, 200, 60], [0, 0, 1]])
    gt = np.array(
        [
            [[0.0, 0, 1000], [0, 0, 1000]],
            [[100, 50, 1000], [0, 0, 1000]],
        ]
    )
    pred = np.array(
        [
            # (50 + 100*10/1000, 60) = (51, 60) vs (50, 60): 1 px; a depth error alone: 0 px.
            [[10.0, 0, 1000], [0, 0, 500]],
            # (50 + 100*100/2000, 60 + 200*50/2000) = (55, 65) vs (60, 70): 5*sqrt(2) px;
            # (50, 60 + 200*30/1000) = (50, 66) vs (50, 60): 6 px.
            [[100, 50, 2000], [0, 30, 1000]],
        ]
    )
    np.testing.assert_allclose(reprojection_error(pred, gt, K), [0.5, (5 * 2**0.5 + 6) / 2])


def test_reprojection_error_per_frame_intrinsics():
    rng = np.random.default_rng(3)
    gt = rng.normal(size=(2, 8, 3)) * 50 + [0, 0, 600]
    pred = gt + rng.normal(size=(2, 8, 3)) * 5
    Ks = np.array(
        [[[1400.0, 0, 935], [0, 1400, 540], [0, 0, 1]], [[480, 0, 128], [0, 480, 128], [0, 0, 1]]]
    )
    batched = reprojection_error(pred, gt, Ks)
    for n in range(2):
        expected = np.linalg.norm(
            project_naive(pred[n], Ks[n]) - project_naive(gt[n], Ks[n]), axis=-1
        )
        np.testing.assert_allclose(batched[n], expected.mean())
        np.testing.assert_allclose(
            reprojection_error(pred[n : n + 1], gt[n : n + 1], Ks[n]), [expected.mean()]
        )


def test_pck_curve_hand_computed():
    errors = np.array([1.0, 2.0, 2.0, 5.0])
    # At most t: t=0 -> none; t=1 -> {1}; t=2 -> {1,2,2}; t=4 -> same 3; t=5 -> all 4.
    np.testing.assert_allclose(pck_curve(errors, [0, 1, 2, 4, 5]), [0, 0.25, 0.75, 0.75, 1.0])


def test_pck_curve_leaves_out_nan_and_counts_inf_as_wrong():
    # NaN (a frame without ground truth) is left out; of 1.0 and inf only the 1.0 is within 10.
    np.testing.assert_allclose(pck_curve([1.0, np.inf, np.nan], [10.0]), [1 / 2])
    # No frame with an error: no curve, and no area under it.
    curve = pck_curve([np.nan, np.nan], THRESHOLDS_MM)
    assert curve.shape == THRESHOLDS_MM.shape and np.isnan(curve).all()
    assert math.isnan(auc(THRESHOLDS_MM, curve))


def _frames_with_missing_and_diverged() -> tuple[np.ndarray, np.ndarray]:
    """Four frames of 21 joints: 0 fine, 1 HO-3D's evaluation split (ground truth of the wrist
    only), 2 a diverged prediction (a NaN joint), 3 a prediction at infinity."""
    rng = np.random.default_rng(4)
    gt = rng.normal(0, 40, (4, 21, 3)) + np.array([0.0, 0.0, 500.0])
    pred = gt + rng.normal(0, 5, (4, 21, 3))
    gt[1, 1:] = np.nan
    pred[2, 7] = np.nan
    pred[3, 0, 0] = np.inf
    return pred, gt


def test_errors_are_nan_without_ground_truth_and_inf_for_a_diverged_prediction():
    pred, gt = _frames_with_missing_and_diverged()
    K = np.array([[614.0, 0, 320], [0, 615, 240], [0, 0, 1]])
    for errors in (
        per_frame_error(pred, gt),
        per_frame_error(pred[..., :2], gt[..., :2]),
        root_relative_error(pred, gt),
        procrustes_error(pred, gt),
        reprojection_error(pred, gt, K),
    ):
        assert np.isfinite(errors[0]) and np.isnan(errors[1]), errors
        assert errors[2] == np.inf and errors[3] == np.inf, errors
    # The finite frame's numbers are those it has alone.
    np.testing.assert_allclose(procrustes_error(pred, gt)[0], procrustes_error(pred[:1], gt[:1]))
    np.testing.assert_allclose(per_frame_error(pred, gt)[0], per_frame_error_naive(pred, gt)[0])
    # A camera that is not finite gives its frame no error either.
    Ks = np.repeat(K[None], 4, axis=0)
    Ks[0, 0, 0] = np.nan
    assert np.isnan(reprojection_error(pred, gt, Ks)[0])


def test_procrustes_error_without_finite_frames_is_all_nan():
    gt = np.full((2, 21, 3), np.nan)
    assert np.isnan(procrustes_error(np.zeros((2, 21, 3)), gt)).all()


def test_metrics_accept_reversed_and_read_only_numpy_views():
    rng = np.random.default_rng(5)
    pred, gt = rng.normal(size=(2, 3, 21, 3)) * 30
    expected = per_frame_error(pred, gt)[::-1]
    # np.flip and [::-1] give negative strides, which torch.as_tensor refuses.
    np.testing.assert_allclose(per_frame_error(np.flip(pred, 0), gt[::-1]), expected)
    np.testing.assert_allclose(
        procrustes_error(pred[::-1], gt[::-1]), procrustes_error(pred, gt)[::-1]
    )
    errors = np.sort(per_frame_error(pred, gt))[::-1]
    np.testing.assert_allclose(
        pck_curve(errors, THRESHOLDS_MM), pck_curve(errors[::-1], THRESHOLDS_MM)
    )
    # np.broadcast_to is read-only: accepted without torch's non-writable warning.
    K = np.broadcast_to(np.array([[500.0, 0, 112], [0, 500, 112], [0, 0, 1]]), (3, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        depth = np.array([0.0, 0.0, 400.0])
        reprojection_error(pred + depth, gt + depth, K)


def test_auc_hand_computed():
    # Trapezoids on [0,1] and [1,2]: (0+1)/2*1 + (1+1)/2*1 = 1.5, over the range 2 -> 0.75.
    assert auc([0, 1, 2], [0, 1, 1]) == pytest.approx(0.75)
    # Uneven spacing: (0+0.5)/2*1 + (0.5+1)/2*3 = 0.25 + 2.25 = 2.5, over 4 -> 0.625.
    assert auc([0, 1, 4], [0, 0.5, 1]) == pytest.approx(0.625)
    # Over 10..20 only: a constant 0.3 curve has normalised area 0.3.
    assert auc([10, 15, 20], [0.3, 0.3, 0.3]) == pytest.approx(0.3)


def test_auc_of_pck_extremes_and_linear_ramp():
    assert auc(THRESHOLDS_MM, pck_curve(np.zeros(5), THRESHOLDS_MM)) == pytest.approx(1.0)
    assert auc(THRESHOLDS_PX, pck_curve(np.full(5, 100.0), THRESHOLDS_PX)) == pytest.approx(0.0)
    # Errors 0.5, 1.5, ..., 79.5 mm, one per frame: PCK(t) = t / 80 exactly at integer t, a
    # straight line from 0 to 1 whose normalised area is 1/2.
    errors = np.arange(80) + 0.5
    np.testing.assert_allclose(pck_curve(errors, THRESHOLDS_MM), THRESHOLDS_MM / 80)
    assert auc(THRESHOLDS_MM, pck_curve(errors, THRESHOLDS_MM)) == pytest.approx(0.5)


def test_auc_rejects_bad_thresholds():
    with pytest.raises(ValueError, match="increasing"):
        auc([0, 2, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="curve"):
        auc([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="thresholds"):
        auc([0], [1])


def test_threshold_constants_are_the_papers_0_to_80_range():
    for thresholds in (THRESHOLDS_MM, THRESHOLDS_PX):
        assert thresholds[0] == 0 and thresholds[-1] == 80 and len(thresholds) == 81
        np.testing.assert_allclose(np.diff(thresholds), 1.0)


def test_mean_distance_is_the_mean_euclidean_distance_per_frame():
    """The one definition of the error that train's validation and the eval metrics share."""
    pred = torch.tensor([[[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]], [[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]]])
    gt = torch.zeros(2, 2, 3)
    assert torch.equal(mean_distance(pred, gt), torch.tensor([2.5, (3**0.5 + 2) / 2]))


def test_mean_distance_keeps_torch_dtype_device_and_grad():
    # Unlike the metrics, it works on the tensors as given (training's validation error): the
    # gradient of a frame's mean distance is each point's unit error vector over K.
    pred = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, -2.0]]], requires_grad=True)
    distance = mean_distance(pred, torch.zeros(1, 2, 3))
    assert distance.dtype == torch.float32 and distance.device == pred.device
    (grad,) = torch.autograd.grad(distance.sum(), pred)
    torch.testing.assert_close(grad, torch.tensor([[[0.6, 0.8, 0.0], [0.0, 0.0, -1.0]]]) / 2)


def keypoint_auc_naive(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> float:
    """The hand benchmarks' AUC as their EvalUtil computes it, written out: per joint, the
    fraction of frames within each threshold; each joint's curve integrated by trapezoids and
    divided by the range; the mean over joints."""
    areas = []
    for joint in range(gt.shape[1]):
        distances = [math.dist(p, g) for p, g in zip(pred[:, joint], gt[:, joint], strict=True)]
        curve = [np.mean([d <= t for d in distances]) for t in thresholds]
        area = sum(
            (curve[i] + curve[i + 1]) / 2 * (thresholds[i + 1] - thresholds[i])
            for i in range(len(thresholds) - 1)
        )
        areas.append(area / (thresholds[-1] - thresholds[0]))
    return float(np.mean(areas))


def test_keypoint_auc_hand_computed():
    """One frame of two joints 25 and 60 mm off, thresholds 0, 1, ..., 50: the curve is 0 below
    25 mm and 1/2 from 25 on (the 60-mm joint never counts). Trapezoids: the step from 24 to 25
    mm gives (0 + 1/2) / 2 = 1/4, the 25 steps from 25 to 50 give 1/2 each, 12.5: 12.75 / 50 =
    0.255. Both joints exact: 1; both beyond 50 mm: 0."""
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[25.0, 0.0, 0.0], [0.0, 60.0, 0.0]]])
    thresholds = np.linspace(0.0, 50.0, 51)
    assert keypoint_auc(pred, gt, thresholds=thresholds) == pytest.approx([0.255])
    assert keypoint_auc(gt, gt, thresholds=thresholds) == pytest.approx([1.0])
    assert keypoint_auc(gt + 51.0, gt, thresholds=thresholds) == pytest.approx([0.0])
    np.testing.assert_array_equal(THRESHOLDS_KEYPOINT_MM, np.linspace(0.0, 50.0, 100))


def keypoint_auc_dense(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N,) per-frame keypoint AUCs by the direct rule, unaligned: every (frame, joint,
    threshold) comparison d <= t made at once, an (N, K, T) array, the fraction within each
    threshold, trapezoids over the range; NaN where the ground truth is not finite."""
    t = torch.from_numpy(thresholds)
    distances = torch.linalg.vector_norm(torch.from_numpy(pred - gt), dim=-1)
    curves = (distances[:, :, None] <= t).double().mean(dim=1)
    areas = torch.trapezoid(curves, t, dim=1) / (t[-1] - t[0])
    return np.where(np.isfinite(gt).all(axis=(1, 2)), areas.numpy(), np.nan)


def test_keypoint_auc_counts_as_comparing_every_joint_with_every_threshold():
    """Random frames where a third of the joints lie exactly on a threshold (a distance along x
    equal to it: counted, <= t), some diverged (NaN or +-inf: never counted) and some without
    ground truth (NaN frame): the same AUCs, bit for bit, as the dense comparison."""
    rng = np.random.default_rng(7)
    gt = rng.normal(0.0, 30.0, (400, 21, 3))
    pred = gt + rng.normal(0.0, 15.0, gt.shape)
    on_threshold = rng.random((400, 21)) < 0.3
    gt[on_threshold] = 0.0
    pred[on_threshold] = 0.0
    pred[on_threshold, 0] = rng.choice(THRESHOLDS_KEYPOINT_MM, on_threshold.sum())
    pred[rng.random((400, 21)) < 0.05, 0] = np.nan
    pred[rng.random((400, 21)) < 0.05, 1] = np.inf
    pred[rng.random((400, 21)) < 0.05, 2] = -np.inf
    gt[rng.random((400, 21)) < 0.005, 2] = np.nan
    distances = np.linalg.norm(pred - gt, axis=-1)
    ties = np.isin(distances, THRESHOLDS_KEYPOINT_MM) & (distances > 0)
    assert ties.sum() > 1000 and np.isnan(distances).sum() > 100 and np.isinf(distances).sum() > 100
    expected = keypoint_auc_dense(pred, gt, THRESHOLDS_KEYPOINT_MM)
    assert 0 < np.isnan(expected).sum() < 400
    np.testing.assert_array_equal(keypoint_auc(pred, gt), expected)


def _toolkit_alignment(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(K, 3) ``pred`` aligned to ``gt`` as the hand benchmarks' toolkits align it (FreiHAND's
    ``align_w_scale``, which HO-3D's and DexYCB's evaluations call): both centred and scaled to
    unit Frobenius norm, scipy's orthogonal Procrustes (any orthogonal R, a mirror included)
    with the sum of its singular values as the scale, then the truth's norm and centroid."""
    p, g = pred - pred.mean(0), gt - gt.mean(0)
    p_norm, g_norm = np.linalg.norm(p), np.linalg.norm(g)
    rotation, scale = scipy.linalg.orthogonal_procrustes(g / g_norm, p / p_norm)
    return (p / p_norm) @ rotation.T * scale * g_norm + gt.mean(0)


def test_procrustes_error_of_a_mirror_image_is_zero_as_in_the_benchmarks_toolkits():
    """The ground truth mirrored in x, scaled and moved: the toolkits' alignment (a mirror
    allowed) brings it back exactly, 0 mm and an AUC of 1; a proper rotation cannot, and scored
    it about 30 mm off. Noisy mirrored frames score as the toolkits' alignment does."""
    rng = np.random.default_rng(4)
    gt = rng.normal(0.0, 40.0, (3, 21, 3)) + np.array([0.0, 0.0, 500.0])
    mirrored = 0.8 * gt * np.array([-1.0, 1.0, 1.0]) + 20.0
    np.testing.assert_allclose(procrustes_error(mirrored, gt), 0.0, atol=1e-9)
    # 1, less the first trapezoid (half of 50/99 mm over 50 mm: 1/198) where the alignment's
    # rounding (about 1e-13 mm) misses the 0-mm threshold; a proper rotation scored about 0.35.
    assert (keypoint_auc(mirrored, gt, "procrustes") >= 1 - 1 / 198 - 1e-12).all()
    noisy = mirrored + rng.normal(0.0, 10.0, mirrored.shape)
    expected = [
        np.linalg.norm(_toolkit_alignment(p, g) - g, axis=-1).mean()
        for p, g in zip(noisy, gt, strict=True)
    ]
    np.testing.assert_allclose(procrustes_error(noisy, gt), expected, rtol=1e-9)


@pytest.mark.parametrize("alignment", ["none", "root", "procrustes"])
def test_the_mean_keypoint_auc_over_frames_is_the_benchmarks_per_joint_auc(alignment):
    """Averaged over frames it is the per-joint AUC of DexYCB's and HO-3D's evaluations, with
    the pose aligned as theirs do first: the wrist moved to the origin (root) or the best
    similarity transform, a mirror allowed (procrustes, against the toolkits' alignment written
    with scipy)."""
    rng = np.random.default_rng(0)
    gt = rng.normal(0.0, 40.0, (30, 21, 3)) + np.array([0.0, 0.0, 500.0])
    pred = gt + rng.normal(0.0, 15.0, (30, 21, 3)) + rng.normal(0.0, 20.0, (30, 1, 3))
    if alignment == "root":
        expected_pred, expected_gt = pred - pred[:, :1], gt - gt[:, :1]
    elif alignment == "procrustes":
        expected_pred = np.array([_toolkit_alignment(p, g) for p, g in zip(pred, gt, strict=True)])
        expected_gt = gt
    else:
        expected_pred, expected_gt = pred, gt
    naive = keypoint_auc_naive(expected_pred, expected_gt, THRESHOLDS_KEYPOINT_MM)
    assert keypoint_auc(pred, gt, alignment).mean() == pytest.approx(naive, rel=1e-12)
    assert 0.05 < naive < 0.95  # the thresholds cut through the errors: a curve, not a step


def test_keypoint_auc_is_nan_without_ground_truth_and_zero_for_a_diverged_prediction():
    """Frame 0 has no ground truth for a joint: no AUC. Frame 1's prediction diverged at one
    joint: that joint is never correct (20 of 21 exact joints: an AUC of 20/21 unaligned or
    wrist-aligned), and no similarity aligns it (0). Frame 2 is exact: 1, where an alignment's
    rounding (about 1e-13 mm) can miss the 0-mm threshold alone: one trapezoid of 50/99 mm at
    half height, 0.5 * (50/99) / 50 = 0.00505 off at most."""
    gt = np.random.default_rng(0).normal(0.0, 40.0, (3, 21, 3)) + np.array([0.0, 0.0, 500.0])
    pred = gt.copy()
    gt[0, 5, 0] = np.nan
    pred[1, 7, 2] = np.inf
    expected = {"none": 20 / 21, "root": 20 / 21, "procrustes": 0.0}
    for alignment, diverged in expected.items():
        aucs = keypoint_auc(pred, gt, alignment)
        assert np.isnan(aucs[0]), alignment
        assert aucs[1:] == pytest.approx([diverged, 1.0], abs=0.00506), alignment
    with pytest.raises(ValueError, match=r"alignment: expected one of .* got 'wrist'"):
        keypoint_auc(pred, gt, "wrist")


def test_keypoint_auc_normalises_by_the_threshold_range_not_its_end():
    """Two joints 15 and 25 mm off, thresholds 10, 20, 30 mm: the curve is 0, 1/2, 1.
    Trapezoids (0 + 1/2) / 2 * 10 + (1/2 + 1) / 2 * 10 = 2.5 + 7.5 = 10 over the range
    30 - 10 = 20: 0.5 (dividing by the last threshold, 30, would give 1/3)."""
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[15.0, 0.0, 0.0], [0.0, 25.0, 0.0]]])
    assert keypoint_auc(pred, gt, thresholds=[10.0, 20.0, 30.0]) == pytest.approx([0.5])


@pytest.mark.parametrize("thresholds", [[0.0, 20.0, 10.0], [5.0], [[0.0, 1.0]]])
def test_keypoint_auc_rejects_thresholds_that_are_not_increasing(thresholds):
    with pytest.raises(ValueError, match="thresholds"):
        keypoint_auc(np.zeros((1, 21, 3)), np.zeros((1, 21, 3)), thresholds=thresholds)
