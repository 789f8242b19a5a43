"""Pose-estimation metrics of the paper's §4.2 (docs/conventions.md §5), plus the ones modern
papers add.

Every metric takes numpy arrays or torch tensors (any float dtype, any device, with or
without grad) and returns numpy float64 arrays or Python floats, the form reports and plots
want. Inputs are detached, moved to the CPU and computed in float64 with torch, so that
projection and Procrustes alignment come from :mod:`hopose.geometry` and are never
reimplemented here. The exception is :func:`mean_distance`, the distance the metrics share,
public for training's validation error: it takes and returns torch tensors as they are (dtype,
device and grad kept).

The shapes of what the metrics return, and :func:`mean_distance`'s, are jaxtyping annotations,
checked at run time in the tests; the metrics' inputs (lists, numpy arrays or tensors) are checked
by each metric, with errors that name them.

Units follow the inputs: millimetres for 3D errors, pixels for reprojection errors
(docs/conventions.md §5
measures them in the dataset's original image, so pass ``orig_K``).

Choices where the paper is silent, as the field uses them:

- A frame's error is the mean Euclidean distance over its keypoints (hand joints or box
  corners); averaging :func:`per_frame_error` over frames gives the MPJPE.
- :func:`root_relative_error` subtracts each pose's own root (the wrist, canonical joint 0) and
  keeps the root in the mean over joints, where it contributes zero.
- :func:`procrustes_error` (PA-MPJPE per frame) aligns the prediction to the ground truth with
  the best similarity transform (scale, orthogonal map, translation) before measuring. As in the
  hand benchmarks' toolkits (FreiHAND's ``align_w_scale`` with scipy's
  ``orthogonal_procrustes``, called by HO-3D's and DexYCB's evaluations) the map may be a
  mirror: a prediction that is the ground truth's mirror image scores 0. Umeyama's proper
  rotation (human-pose PA-MPJPE) differs only where the best fit is a mirror, a poor prediction.
- A frame whose ground truth is not all finite (a missing annotation, e.g. HO-3D's evaluation
  split, which holds only the wrist) has no error: NaN. A frame with finite ground truth whose
  prediction is not (a diverged prediction) is infinitely wrong: inf.
- A PCK curve counts a frame as correct when its error is at most the threshold, over the
  frames that have an error: an infinite error is never correct, a NaN one is left out (a curve
  of NaN when every frame's is). Its AUC is the trapezoidal area divided by the threshold range,
  so a perfect estimator scores 1.
- The hand benchmarks of DexYCB, HO-3D and FreiHAND count keypoints instead (their toolkits'
  ``EvalUtil``): each joint's PCK over the frames, on 100 thresholds from 0 to 50 mm
  (:data:`THRESHOLDS_KEYPOINT_MM`), its AUC, averaged over the joints; absolute and
  Procrustes-aligned (all three), root-relative (DexYCB's; HO-3D's third aligns scale and
  translation, which this module does not compute). :func:`keypoint_auc` gives each frame the
  AUC of its own joints' curve: the AUC is linear in the curve, so the mean over frames with
  every joint annotated is the benchmarks' number.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, Float64
from numpy.typing import ArrayLike, NDArray

from hopose.geometry import procrustes_align, project_points

# The 0-80 threshold ranges of the paper's Fig. 6 (hand, mm) and Fig. 7 (object, pixels), 1 apart.
THRESHOLDS_MM: NDArray[np.float64] = np.linspace(0.0, 80.0, 81)
THRESHOLDS_PX: NDArray[np.float64] = np.linspace(0.0, 80.0, 81)
# The keypoint PCK of the DexYCB, HO-3D and FreiHAND evaluations: 100 thresholds, 0-50 mm.
THRESHOLDS_KEYPOINT_MM: NDArray[np.float64] = np.linspace(0.0, 50.0, 100)
# How a predicted hand is aligned to its ground truth before its joints are measured.
ALIGNMENTS = ("none", "root", "procrustes")

Array = ArrayLike | torch.Tensor


def _as_tensor(x: Array, name: str) -> torch.Tensor:
    """A detached float64 CPU tensor of ``x``; a ValueError naming ``name`` if it is not numeric."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64)
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric array, got dtype {array.dtype}")
    # A contiguous, writable copy: torch refuses views with negative strides (np.flip, a[::-1])
    # and warns on read-only arrays (np.broadcast_to, memory maps).
    return torch.from_numpy(np.array(array, dtype=np.float64, order="C"))


def _as_pose_pair(
    pred: Array, gt: Array, dim: int | None = None, names: tuple[str, str] = ("pred", "gt")
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check that ``pred`` and ``gt`` are matching (N, K, D) batches (D == ``dim`` if given)."""
    pred_name, gt_name = names
    pred_t, gt_t = _as_tensor(pred, pred_name), _as_tensor(gt, gt_name)
    if pred_t.ndim != 3:
        raise ValueError(f"{pred_name}: expected shape (N, K, D), got {tuple(pred_t.shape)}")
    if pred_t.shape != gt_t.shape:
        raise ValueError(
            f"{gt_name}: shape {tuple(gt_t.shape)} differs from {pred_name} {tuple(pred_t.shape)}"
        )
    if dim is not None and pred_t.shape[-1] != dim:
        raise ValueError(f"{pred_name}: expected {dim}D points, got shape {tuple(pred_t.shape)}")
    return pred_t, gt_t


def mean_distance(
    pred: Float[torch.Tensor, "*batch K D"], gt: Float[torch.Tensor, "*batch K D"]
) -> Float[torch.Tensor, "*batch"]:
    """The mean Euclidean distance over the K points of each pair of point sets.

    Public: the training's validation error (:func:`hopose.train.validation_error`), which
    picks ``best.pt``, is this distance too, so that it is the error the evaluation reports.
    """
    return torch.linalg.vector_norm(pred - gt, dim=-1).mean(dim=-1)


def _finite_frames(points: torch.Tensor) -> torch.Tensor:
    """(N,) whether every coordinate of each (N, ...) frame is finite."""
    return points.isfinite().flatten(start_dim=1).all(dim=1)


def _frame_errors(errors: torch.Tensor, annotated: torch.Tensor) -> NDArray[np.float64]:
    """``errors`` (N,) with the module's rule for non-finite frames: NaN where the frame is not
    ``annotated`` (its ground truth is not finite), inf where it is but the error is not finite
    (a diverged prediction)."""
    diverged = torch.where(errors.isnan(), torch.inf, errors)
    return torch.where(annotated, diverged, torch.nan).numpy()


def per_frame_error(pred: Array, gt: Array) -> Float64[np.ndarray, " N"]:
    """Mean Euclidean distance over keypoints, per frame (the MPJPE before averaging frames).

    Args:
        pred: (N, K, D) predicted keypoints, e.g. (N, 21, 3) joints in mm or (N, 8, 2) pixels.
        gt: (N, K, D) ground truth in the same units.

    Returns:
        (N,) errors in the inputs' units; NaN for a frame whose ground truth is not finite, inf
        for one whose prediction is not.
    """
    pred_t, gt_t = _as_pose_pair(pred, gt)
    return _frame_errors(mean_distance(pred_t, gt_t), _finite_frames(gt_t))


def _aligned(
    pred: torch.Tensor, gt: torch.Tensor, alignment: str, root: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K, 3) ``pred`` and ``gt`` after :data:`ALIGNMENTS`' ``alignment``: "root" moves each
    pose's joint ``root`` to the origin, "procrustes" maps each prediction by the similarity
    transform (scale, orthogonal map, a mirror allowed as the benchmarks' toolkits allow it,
    translation) that best fits it to its ground truth in the least-squares sense (NaN where
    either pose has a non-finite point: no alignment exists)."""
    if alignment == "root":
        if not 0 <= root < pred.shape[1]:
            raise ValueError(f"root: index {root} is out of range for {pred.shape[1]} joints")
        root_at = slice(root, root + 1)  # keeps the joint axis, (N, 1, 3), to broadcast
        return pred - pred[:, root_at], gt - gt[:, root_at]
    if alignment == "procrustes":
        both = _finite_frames(pred) & _finite_frames(gt)
        aligned = torch.full_like(pred, torch.nan)
        aligned[both] = procrustes_align(pred[both], gt[both], reflection=True)
        return aligned, gt
    if alignment != "none":
        raise ValueError(f"alignment: expected one of {ALIGNMENTS}, got {alignment!r}")
    return pred, gt


def root_relative_error(pred: Array, gt: Array, root: int = 0) -> Float64[np.ndarray, " N"]:
    """Per-frame mean joint error after moving each pose's root joint to the origin.

    Args:
        pred: (N, K, 3) predicted joints, mm.
        gt: (N, K, 3) ground-truth joints, mm.
        root: index of the root joint (docs/conventions.md §1: 0 is the wrist).

    Returns:
        (N,) errors in mm, averaged over all K joints (the root's own error is zero); NaN and
        inf as in :func:`per_frame_error`.
    """
    pred_t, gt_t = _as_pose_pair(pred, gt, dim=3)
    errors = mean_distance(*_aligned(pred_t, gt_t, "root", root))
    return _frame_errors(errors, _finite_frames(gt_t))


def procrustes_error(pred: Array, gt: Array) -> Float64[np.ndarray, " N"]:
    """Procrustes-aligned mean joint error per frame (PA-MPJPE before averaging frames).

    Each predicted pose is first mapped by the similarity transform (scale, orthogonal map,
    translation) that best fits it to its ground truth in the least-squares sense, a mirror
    allowed as the hand benchmarks' toolkits allow it (module docstring).

    Args:
        pred: (N, K, 3) predicted joints, mm.
        gt: (N, K, 3) ground-truth joints, mm.

    Returns:
        (N,) errors in mm; NaN and inf as in :func:`per_frame_error` (a frame with a non-finite
        point has no alignment: the SVD is computed for the finite frames only).
    """
    pred_t, gt_t = _as_pose_pair(pred, gt, dim=3)
    errors = mean_distance(*_aligned(pred_t, gt_t, "procrustes"))
    return _frame_errors(errors, _finite_frames(gt_t))


def keypoint_auc(
    pred: Array,
    gt: Array,
    alignment: str = "none",
    thresholds: Array = THRESHOLDS_KEYPOINT_MM,
) -> Float64[np.ndarray, " N"]:
    """Per frame, the AUC of the PCK curve of its joints: the fraction of its K joints at most
    each threshold from their ground truth, after ``alignment``.

    The mean over frames is the AUC of the DexYCB, HO-3D and FreiHAND evaluations (the module
    docstring; root-relative, DexYCB's alone): each joint's PCK over the frames, its AUC,
    averaged over the joints.

    Args:
        pred: (N, K, 3) predicted joints, mm.
        gt: (N, K, 3) ground-truth joints, mm.
        alignment: one of :data:`ALIGNMENTS` (root: joint 0, the wrist).
        thresholds: (T,) strictly increasing thresholds in mm, T >= 2.

    Returns:
        (N,) AUCs in [0, 1]; NaN for a frame whose ground truth is not finite. A joint whose
        prediction is not finite (diverged) is never within a threshold, so a frame with one of
        21 such joints scores at most 20/21, and 0 under Procrustes alignment (a non-finite
        pose has none).
    """
    pred_t, gt_t = _as_pose_pair(pred, gt, dim=3)
    t = _as_tensor(thresholds, "thresholds")
    if t.ndim != 1 or t.numel() < 2 or not bool((t[1:] > t[:-1]).all()):
        raise ValueError(f"thresholds: expected (T,) increasing values, T >= 2, got {t.tolist()}")
    distances = torch.linalg.vector_norm(torch.sub(*_aligned(pred_t, gt_t, alignment)), dim=-1)
    # Counted by binary search in each frame's sorted distances, not by comparing all (N, K, T)
    # pairs: that float64 temporary is 17 KB a frame, gigabytes on a test split. A NaN distance
    # (a diverged prediction) becomes inf, never within a threshold, as NaN <= t is False; left
    # NaN it would break the search, which assumes an ordered sequence. (An infinite threshold
    # makes the range and every AUC NaN, so inf <= inf counting there changes nothing.)
    ordered = torch.where(distances.isnan(), torch.inf, distances).sort(dim=1).values  # (N, K)
    # right=True: the count of distances at most t, so a joint exactly at a threshold is within.
    within = torch.searchsorted(ordered, t.expand(len(ordered), -1).contiguous(), right=True)
    curves = within.double() / distances.shape[1]  # (N, T): fraction of joints within each t
    areas = torch.trapezoid(curves, t, dim=1) / (t[-1] - t[0])
    return torch.where(_finite_frames(gt_t), areas, torch.nan).numpy()


def reprojection_error(pred_3d: Array, gt_3d: Array, K: Array) -> Float64[np.ndarray, " N"]:
    """Mean pixel distance between the projections of predicted and ground-truth points.

    The paper's object metric (§4.2): the 8 box corners projected with the dataset's original
    camera, so that thresholds in pixels mean the same across image resizes.

    Args:
        pred_3d: (N, K, 3) predicted points in the camera frame, mm.
        gt_3d: (N, K, 3) ground-truth points, mm.
        K: (3, 3) intrinsics shared by all frames, or (N, 3, 3) one per frame.

    Returns:
        (N,) errors in pixels; NaN and inf as in :func:`per_frame_error` (a frame whose camera is
        not finite has no error either).
    """
    pred_t, gt_t = _as_pose_pair(pred_3d, gt_3d, dim=3, names=("pred_3d", "gt_3d"))
    K_t = _as_tensor(K, "K")
    if K_t.shape not in ((3, 3), (pred_t.shape[0], 3, 3)):
        raise ValueError(
            f"K: expected shape (3, 3) or ({pred_t.shape[0]}, 3, 3), got {tuple(K_t.shape)}"
        )
    errors = mean_distance(project_points(pred_t, K_t), project_points(gt_t, K_t))
    camera = _finite_frames(K_t.expand(len(pred_t), 3, 3))
    return _frame_errors(errors, _finite_frames(gt_t) & camera)


def pck_curve(errors: Array, thresholds: Array) -> Float64[np.ndarray, " T"]:
    """Fraction of frames whose error is at most each threshold (paper Fig. 6 and 7).

    Args:
        errors: (N,) per-frame errors, e.g. from :func:`per_frame_error`: NaN (no ground truth)
            is left out, inf (a diverged prediction) is never correct.
        thresholds: (T,) thresholds in the errors' units, e.g. :data:`THRESHOLDS_MM`.

    Returns:
        (T,) fractions in [0, 1] of the frames with an error; NaN if no frame has one.
    """
    errors_t, thresholds_t = _as_tensor(errors, "errors"), _as_tensor(thresholds, "thresholds")
    if errors_t.ndim != 1 or errors_t.numel() == 0:
        raise ValueError(
            f"errors: expected a non-empty (N,) array, got shape {tuple(errors_t.shape)}"
        )
    if thresholds_t.ndim != 1:
        raise ValueError(f"thresholds: expected shape (T,), got {tuple(thresholds_t.shape)}")
    scored = errors_t[~errors_t.isnan()]
    if scored.numel() == 0:
        return np.full(len(thresholds_t), np.nan)
    correct = scored[None, :] <= thresholds_t[:, None]  # (T, N)
    return correct.double().mean(dim=1).numpy()


def auc(thresholds: Array, curve: Array) -> float:
    """Area under a PCK curve by the trapezoidal rule, divided by the threshold range.

    Args:
        thresholds: (T,) strictly increasing thresholds, T >= 2.
        curve: (T,) the curve's values at those thresholds.

    Returns:
        The normalised area, in [0, 1] for a PCK curve.
    """
    t, y = _as_tensor(thresholds, "thresholds"), _as_tensor(curve, "curve")
    if t.ndim != 1 or t.numel() < 2:
        raise ValueError(f"thresholds: expected shape (T,) with T >= 2, got {tuple(t.shape)}")
    if y.shape != t.shape:
        raise ValueError(f"curve: shape {tuple(y.shape)} differs from thresholds {tuple(t.shape)}")
    if not bool((t[1:] > t[:-1]).all()):
        raise ValueError("thresholds: must be strictly increasing")
    area = ((y[1:] + y[:-1]) / 2 * (t[1:] - t[:-1])).sum()
    return float(area / (t[-1] - t[0]))
