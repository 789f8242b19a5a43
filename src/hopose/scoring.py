"""Scoring an evaluation: the per-frame table, computed once, and its summary.

:func:`frame_metrics` turns the arrays ``hopose eval`` collects into one column per metric, one
row per frame (``per_frame.csv``); :func:`summarize` reduces any such table to the numbers of
``metrics.json``, the report and ``hopose compare``, so they always agree, and
:func:`group_means` to each group's (a dataset's subjects, actions, cameras or sequences:
:data:`GROUP_KEYS`; ``per_group.csv``). Columns:

- accuracy (paper §4.2): ``hand_mm`` and ``object_mm`` (mean 3D error of joints and corners),
  ``hand_rr_mm`` (root-relative), ``hand_pa_mm`` (Procrustes-aligned), ``object_2d_px`` (the
  corners reprojected with the dataset's original camera ``orig_K`` when the predictions carry
  it, else with the network image's ``K``) and, when the predictions hold 2D keypoints,
  ``hand_kp2d_px`` and ``object_kp2d_px`` (2D errors in the network image);
- the hand benchmarks' counts (DexYCB, HO-3D, FreiHAND; the root-relative one DexYCB's alone):
  ``hand_kp_auc``, ``hand_rr_kp_auc`` and ``hand_pa_kp_auc``, each frame's AUC of its joints'
  PCK over 0-50 mm, unaligned, wrist-aligned and Procrustes-aligned
  (:func:`hopose.metrics.keypoint_auc`; NaN without ground truth, a diverged joint never
  correct);
- plausibility (:mod:`hopose.plausibility`, docs/evaluation.md), for ``pred`` and ``gt`` each:
  ``valid_contacts``, ``affinity``, ``penetration_mm``, ``grasp_epsilon`` and ``cuboid_mm``.
  The grasp quality's 6-D hulls dominate the cost; ``plausibility=False`` skips the whole group.

An accuracy column is NaN for a frame without finite ground truth for its part (HO-3D's
evaluation split holds only the wrist) and inf for a diverged prediction (:mod:`hopose.metrics`).
The summaries leave the NaN frames out, and are NaN when no frame has ground truth; a diverged
prediction makes a mean infinite and is never correct in a PCK curve.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from hopose import metrics
from hopose.data import dexycb, fpha, ho3d
from hopose.plausibility import (
    AFFINITY,
    CUBOID_MM,
    GRASP_EPSILON,
    PENETRATION_MM,
    VALID_CONTACTS,
    default_workers,
    pose_plausibility,
)
from hopose.skeleton import NUM_CORNERS, NUM_JOINTS

# The names below are the one home of every column and summary key, the run's description and
# its protocols included: the evaluation, the report, the demo and the ablations import them, so
# a renamed key fails where it is read instead of showing "–". Each constant is its value in
# capitals, but for N_FRAMES ("n") and the protocols (PROTOCOL_*).

# Per-frame columns (per_frame.csv).
HAND_MM = "hand_mm"
OBJECT_MM = "object_mm"
HAND_RR_MM = "hand_rr_mm"
HAND_PA_MM = "hand_pa_mm"
OBJECT_2D_PX = "object_2d_px"
HAND_KP2D_PX = "hand_kp2d_px"
OBJECT_KP2D_PX = "object_kp2d_px"
# Each frame's AUC of its joints' PCK, 0-50 mm (metrics.keypoint_auc): absolute, root-relative,
# Procrustes-aligned, as the DexYCB, HO-3D and FreiHAND evaluations count them (root-relative:
# DexYCB's alone).
HAND_KP_AUC = "hand_kp_auc"
HAND_RR_KP_AUC = "hand_rr_kp_auc"
HAND_PA_KP_AUC = "hand_pa_kp_auc"

# Summary keys (metrics.json): always present...
N_FRAMES = "n"
HAND_MEAN_MM = "hand_mean_mm"
HAND_ROOT_RELATIVE_MM = "hand_root_relative_mm"
HAND_PROCRUSTES_MM = "hand_procrustes_mm"
HAND_AUC_0_80 = "hand_auc_0_80"
OBJECT_MEAN_MM = "object_mean_mm"
OBJECT_REPROJ_MEAN_PX = "object_reproj_mean_px"
OBJECT_2D_AUC_0_80 = "object_2d_auc_0_80"
# The standard errors of the two mean 3D errors: how far another draw of as many frames from
# the same distribution could move them (docs/evaluation.md).
HAND_MEAN_MM_SE = "hand_mean_mm_se"
OBJECT_MEAN_MM_SE = "object_mean_mm_se"
# Each part the tables compare and the key of its mean 3D error.
PART_MEANS: tuple[tuple[str, str], ...] = (("hand", HAND_MEAN_MM), ("object", OBJECT_MEAN_MM))
# ... and present only when the columns hold the 2D keypoints' errors.
HAND_KP2D_MEAN_PX = "hand_kp2d_mean_px"
OBJECT_KP2D_MEAN_PX = "object_kp2d_mean_px"
# ... and where the columns hold the joints' AUCs (a per_frame.csv of an older hopose does not).
HAND_KP_AUC_0_50 = "hand_kp_auc_0_50"
HAND_RR_KP_AUC_0_50 = "hand_rr_kp_auc_0_50"
HAND_PA_KP_AUC_0_50 = "hand_pa_kp_auc_0_50"

# Plausibility names: columns and summary keys are plausibility_key(who, name), who "pred" or
# "gt"; absent when the plausibility was not computed (plausibility=False, --no-plausibility).
# The per-frame names (VALID_CONTACTS, AFFINITY, PENETRATION_MM, GRASP_EPSILON, CUBOID_MM) are
# those hopose.plausibility.pose_plausibility returns, imported from there.
FORCE_CLOSURE = "force_closure"  # summary only: the fraction of frames with epsilon > 0

# The run's description, beside the scores in metrics.json (hopose.evaluate.run_eval's Returns):
# what `hopose score` carries over (hopose.evaluate.FRAME_KEYS), the report's "Run" table and its
# words for the run (hopose.report.describe_run, which reads each with .get(): a file of an older
# hopose may lack any). Values, not only keys, are read back from files users already have: none
# may change.
PROTOCOL = "protocol"
CROP = "crop"
SELF_CROP = "self_crop"
SELF_CROP_MARGIN = "self_crop_margin"
SELF_CROP_VIEWS = "self_crop_views"
REFINED = "refined"
GRASP_COMPLETED = "grasp_completed"
IMAGE_SIZE = "image_size"
DATASET = "dataset"
SPLIT = "split"
OPTIONS = "options"
SEED = "seed"
NUM = "num"
WHOLE_SPLIT = "whole_split"
ROOT = "root"
CACHE = "cache"
CHECKPOINT = "checkpoint"
HOPOSE_VERSION = "hopose_version"
TORCH_VERSION = "torch_version"
DEVICE = "device"
# `hopose score`: the predictions file it scored; `hopose eval --refine`: the unrefined scores.
SCORED = "scored"
UNREFINED = "unrefined"
# The values of PROTOCOL: the ground-truth 2D fed to the lifter (the paper's Table 2), the images
# of the squares that ground truth places around hand and object, or the images themselves (whole
# frames or self-cropped).
PROTOCOL_GT_2D = "gt_2d"
PROTOCOL_GT_BOX = "gt_box"
PROTOCOL_IMAGE = "image"
PROTOCOLS = (PROTOCOL_GT_2D, PROTOCOL_GT_BOX, PROTOCOL_IMAGE)

ACCURACY_COLUMNS = (HAND_MM, OBJECT_MM, HAND_RR_MM, HAND_PA_MM, OBJECT_2D_PX)
KEYPOINT_2D_COLUMNS = (HAND_KP2D_PX, OBJECT_KP2D_PX)
# The predicted 2D keypoints' arrays, which KEYPOINT_2D_COLUMNS score. Under the ground-truth 2D
# protocol (PROTOCOL_GT_2D) they hold the truth the lifter was fed, not a prediction:
# frame_metrics scores no 2D error there (it would read 0 px).
PREDICTED_2D = ("pred_hand_2d", "pred_obj_2d")
# The joints' AUC columns, each with its alignment (metrics.ALIGNMENTS) and its summary key.
KEYPOINT_AUCS: tuple[tuple[str, str, str], ...] = (
    (HAND_KP_AUC, "none", HAND_KP_AUC_0_50),
    (HAND_RR_KP_AUC, "root", HAND_RR_KP_AUC_0_50),
    (HAND_PA_KP_AUC, "procrustes", HAND_PA_KP_AUC_0_50),
)
KEYPOINT_AUC_COLUMNS = tuple(column for column, _, _ in KEYPOINT_AUCS)
KEYPOINT_AUC_KEYS = tuple(key for _, _, key in KEYPOINT_AUCS)
PLAUSIBILITY_NAMES = (VALID_CONTACTS, AFFINITY, PENETRATION_MM, GRASP_EPSILON, CUBOID_MM)
PLAUSIBILITY_SUMMARY_NAMES = (
    VALID_CONTACTS, AFFINITY, PENETRATION_MM, GRASP_EPSILON, FORCE_CLOSURE, CUBOID_MM
)  # fmt: skip
# Every summary holds SUMMARY_KEYS; KEYPOINT_AUC_KEYS when the columns hold them (always where
# they are scored, not in an older per_frame.csv); KEYPOINT_2D_KEYS and PLAUSIBILITY_KEYS only
# when computed.
SUMMARY_KEYS = (
    N_FRAMES, HAND_MEAN_MM, HAND_MEAN_MM_SE, HAND_ROOT_RELATIVE_MM, HAND_PROCRUSTES_MM,
    HAND_AUC_0_80, OBJECT_MEAN_MM, OBJECT_MEAN_MM_SE, OBJECT_REPROJ_MEAN_PX, OBJECT_2D_AUC_0_80,
)  # fmt: skip
KEYPOINT_2D_KEYS = (HAND_KP2D_MEAN_PX, OBJECT_KP2D_MEAN_PX)


def plausibility_key(who: str, name: str) -> str:
    """The column or summary key of a plausibility ``name`` for ``who``, "pred" or "gt"."""
    return f"{who}_{name}"


PLAUSIBILITY_COLUMNS = tuple(
    plausibility_key(who, name) for name in PLAUSIBILITY_NAMES for who in ("pred", "gt")
)
PLAUSIBILITY_KEYS = tuple(
    plausibility_key(who, name) for who in ("pred", "gt") for name in PLAUSIBILITY_SUMMARY_NAMES
)
COLUMNS = (*ACCURACY_COLUMNS, *KEYPOINT_AUC_COLUMNS, *KEYPOINT_2D_COLUMNS, *PLAUSIBILITY_COLUMNS)
# Every key summarize can write: the rest of a metrics.json describes the run (the report's
# "Run" table).
SCORE_KEYS = (*SUMMARY_KEYS, *KEYPOINT_AUC_KEYS, *KEYPOINT_2D_KEYS, *PLAUSIBILITY_KEYS)

# The groups each dataset's results are discussed by (group_means): each key with the part of
# the frames' ids, split at "/", that names a frame's group, found by its name in the layout its
# loader writes the ids in (ID_PARTS beside the loader's frame_id). Synthetic data and ObMan
# have none.
GROUP_KEYS: dict[str, dict[str, int]] = {
    dataset: {key: parts.index(key) for key in keys}
    for dataset, parts, keys in (
        ("fpha", fpha.ID_PARTS, ("subject", "action")),
        ("dexycb", dexycb.ID_PARTS, ("subject", "camera")),
        ("ho3d", ho3d.ID_PARTS, ("sequence",)),
    )
}
# A group's count of frames, beside the means of GROUP_COLUMNS (per_group.csv).
GROUP_FRAMES = "frames"
GROUP_COLUMNS = (HAND_MM, HAND_RR_MM, HAND_PA_MM, OBJECT_MM, OBJECT_2D_PX)


def _value(predictions: Mapping[str, Any], key: str) -> Any:
    if key not in predictions:
        raise ValueError(f"predictions: missing '{key}' (have {sorted(predictions)})")
    value = predictions[key]
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach().cpu()
    # Scored in float64 (_array) whatever the network's dtype; numpy has no bfloat16.
    return (value.double() if value.is_floating_point() else value).numpy()


def _array(predictions: Mapping[str, Any], key: str) -> NDArray:
    return np.asarray(_value(predictions, key), dtype=np.float64)


def _check_frame_counts(arrays: Mapping[str, NDArray]) -> None:
    """Every array holds as many frames (first dimension) as the first one.

    Raises:
        ValueError: naming the first array that does not, and both counts: a shorter ``id``
            would drop rows of ``per_frame.csv``, a shorter ground truth pair the wrong frames.
    """

    def frames(array: NDArray) -> int | str:
        return array.shape[0] if array.ndim else "no"

    (first, reference), *rest = arrays.items()
    for key, array in rest:
        if array.shape[:1] != reference.shape[:1]:
            raise ValueError(
                f"predictions: '{key}' holds {frames(array)} frames, '{first}' {frames(reference)}"
            )


def accuracy_columns(predictions: Mapping[str, Any]) -> dict[str, NDArray]:
    """``id`` and the accuracy columns of every frame (see the module docstring).

    Args:
        predictions: ``id`` (N,), ``{pred,gt}_hand_3d`` (N, 21, 3), ``{pred,gt}_obj_3d``
            (N, 8, 3) in mm, ``orig_K`` or ``K`` (N, 3, 3), optionally ``{pred,gt}_hand_2d``
            (N, 21, 2) and ``{pred,gt}_obj_2d`` (N, 8, 2) pixels.

    Raises:
        ValueError: a key is missing, or an array (``id`` included) holds another number of
            frames than ``pred_hand_3d``.
    """
    keypoints_2d = {
        column: part
        for column, part in zip(KEYPOINT_2D_COLUMNS, ("hand_2d", "obj_2d"), strict=True)
        if f"pred_{part}" in predictions and f"gt_{part}" in predictions
    }
    arrays = {
        f"{who}_{part}": _array(predictions, f"{who}_{part}")
        for part in ("hand_3d", "obj_3d", *keypoints_2d.values())
        for who in ("pred", "gt")
    }
    ids = np.asarray(_value(predictions, "id")).astype(str)
    _check_frame_counts(arrays | {"id": ids})
    pred_hand, gt_hand = arrays["pred_hand_3d"], arrays["gt_hand_3d"]
    pred_obj, gt_obj = arrays["pred_obj_3d"], arrays["gt_obj_3d"]
    camera = _array(predictions, "orig_K" if "orig_K" in predictions else "K")
    columns = {
        "id": ids,
        HAND_MM: metrics.per_frame_error(pred_hand, gt_hand),
        OBJECT_MM: metrics.per_frame_error(pred_obj, gt_obj),
        HAND_RR_MM: metrics.root_relative_error(pred_hand, gt_hand),
        HAND_PA_MM: metrics.procrustes_error(pred_hand, gt_hand),
        OBJECT_2D_PX: metrics.reprojection_error(pred_obj, gt_obj, camera),
    }
    for column, alignment, _ in KEYPOINT_AUCS:
        columns[column] = metrics.keypoint_auc(pred_hand, gt_hand, alignment)
    for column, part in keypoints_2d.items():
        columns[column] = metrics.per_frame_error(arrays[f"pred_{part}"], arrays[f"gt_{part}"])
    return columns


def plausibility_columns(
    predictions: Mapping[str, Any], *, workers: int | None = None
) -> dict[str, NDArray]:
    """The plausibility columns of every frame's predicted and ground-truth pose.

    Args:
        predictions: ``{pred,gt}_hand_3d`` (N, 21, 3) and ``{pred,gt}_obj_3d`` (N, 8, 3), mm.
        workers: processes for the grasp-quality hulls (None: every core this process may use).

    Returns:
        (N,) arrays ``{pred,gt}_<name>`` for each name of :data:`PLAUSIBILITY_NAMES`.

    Raises:
        ValueError: a key is missing, or the four arrays hold different numbers of frames.
    """
    workers = default_workers() if workers is None else workers
    arrays = {
        f"{who}_{part}": _array(predictions, f"{who}_{part}")
        for who in ("pred", "gt")
        for part in ("hand_3d", "obj_3d")
    }
    # Predicted and ground-truth poses in one call, so the hulls of both share one process pool,
    # split again after the N predicted frames: a ground truth of another length would pair
    # the wrong frames.
    _check_frame_counts(arrays)
    n = len(arrays["pred_hand_3d"])
    hand = np.concatenate([arrays["pred_hand_3d"], arrays["gt_hand_3d"]])
    obj = np.concatenate([arrays["pred_obj_3d"], arrays["gt_obj_3d"]])
    both = pose_plausibility(torch.from_numpy(hand), torch.from_numpy(obj), workers=workers)
    return {
        plausibility_key(who, name): values[part]
        for name, values in both.items()
        for who, part in (("pred", slice(0, n)), ("gt", slice(n, None)))
    }


def frame_metrics(
    predictions: Mapping[str, Any],
    *,
    protocol: str | None = None,
    plausibility: bool = True,
    workers: int | None = None,
) -> dict[str, NDArray]:
    """Every per-frame column (the module docstring); the plausibility group unless told not to.

    Args:
        predictions: as in :func:`accuracy_columns`.
        protocol: the evaluation's (its summary's :data:`PROTOCOL`): :data:`PROTOCOL_GT_2D`
            scores no 2D keypoints' error (:data:`PREDICTED_2D`); None: predictions of unknown
            origin, each array scored.
        plausibility: also compute :func:`plausibility_columns` (the slow part).
        workers: as in :func:`plausibility_columns`.
    """
    if protocol == PROTOCOL_GT_2D:
        predictions = {k: v for k, v in predictions.items() if k not in PREDICTED_2D}
    columns = accuracy_columns(predictions)
    if plausibility:
        columns |= plausibility_columns(predictions, workers=workers)
    return columns


def _auc(errors: NDArray, thresholds: NDArray) -> float:
    """The AUC of the frames' PCK curve over the frames that have an error (not NaN); NaN if
    none has, no frame at all included, as :func:`_mean`."""
    if not _scored(errors).size:  # pck_curve refuses an empty column
        return math.nan
    return metrics.auc(thresholds, metrics.pck_curve(errors, thresholds))


def _scored(values: NDArray) -> NDArray[np.float64]:
    """The values of the frames that have one (not NaN), as float64."""
    values = np.asarray(values, dtype=np.float64)
    return values[~np.isnan(values)]


def _mean(values: NDArray) -> float:
    """The mean over the frames that have a value (not NaN); NaN if none has."""
    scored = _scored(values)
    return float(scored.mean()) if scored.size else math.nan


def _standard_error(values: NDArray) -> float:
    """The standard error of :func:`_mean`: the frames' sample standard deviation over the
    square root of their number; inf where a value is infinite (a diverged prediction), NaN
    below two frames."""
    scored = _scored(values)
    if scored.size < 2:
        return math.nan
    if not np.isfinite(scored).all():
        return math.inf
    return float(scored.std(ddof=1) / math.sqrt(scored.size))


def summarize_plausibility(columns: Mapping[str, NDArray]) -> dict[str, float]:
    """Summaries of the plausibility columns, empty if they were not computed.

    Returns:
        For who in pred, gt: ``{who}_valid_contacts`` mean count; ``{who}_affinity`` mean over
        the frames with at least two valid contacts (0 if none, as the loss's batch mean,
        docs/evaluation.md); ``{who}_penetration_mm`` mean of each frame's deepest joint;
        ``{who}_grasp_epsilon`` mean epsilon; ``{who}_force_closure`` fraction of frames with
        epsilon > 0; ``{who}_cuboid_mm`` mean corner distance to the best-fitting cuboid.
    """
    summary: dict[str, float] = {}
    for who in ("pred", "gt"):
        key = {name: plausibility_key(who, name) for name in PLAUSIBILITY_SUMMARY_NAMES}
        if key[VALID_CONTACTS] not in columns:
            continue
        contacts = np.asarray(columns[key[VALID_CONTACTS]], dtype=np.float64)
        judged = ~np.isnan(contacts)  # frames whose pose is finite (pose_plausibility)
        affinity = np.asarray(columns[key[AFFINITY]])[judged & (contacts >= 2)]
        epsilon = np.asarray(columns[key[GRASP_EPSILON]])[judged]
        summary[key[VALID_CONTACTS]] = _mean(contacts)
        # 0 when no judged frame has two contacts, as the loss's batch mean; NaN when none is
        # judged at all.
        no_pair = 0.0 if judged.any() else math.nan
        summary[key[AFFINITY]] = float(affinity.mean()) if affinity.size else no_pair
        summary[key[PENETRATION_MM]] = _mean(columns[key[PENETRATION_MM]])
        summary[key[GRASP_EPSILON]] = _mean(epsilon)
        summary[key[FORCE_CLOSURE]] = float((epsilon > 0).mean()) if epsilon.size else math.nan
        summary[key[CUBOID_MM]] = _mean(columns[key[CUBOID_MM]])
    return summary


def summarize(columns: Mapping[str, NDArray]) -> dict[str, float]:
    """The paper's numbers (§4.2), the modern hand errors and the plausibility, from columns.

    Returns:
        ``n``; ``hand_mean_mm``, ``object_mean_mm`` (mean 3D errors) and their standard
        errors ``hand_mean_mm_se``, ``object_mean_mm_se``; ``hand_auc_0_80`` (AUC of
        the hand's 3D PCK, 0–80 mm); ``object_reproj_mean_px`` and ``object_2d_auc_0_80`` (the
        corners' 2D error and its PCK AUC, 0–80 px); ``hand_root_relative_mm``,
        ``hand_procrustes_mm``; ``hand_kp2d_mean_px`` and ``object_kp2d_mean_px``, and
        ``hand_kp_auc_0_50``, ``hand_rr_kp_auc_0_50``, ``hand_pa_kp_auc_0_50`` (the joints' PCK
        AUCs of the DexYCB and HO-3D evaluations), when the columns hold them; and
        :func:`summarize_plausibility`. Each accuracy number is over the
        frames with ground truth (the module docstring).
    """
    summary = {
        N_FRAMES: len(columns[HAND_MM]),
        HAND_MEAN_MM: _mean(columns[HAND_MM]),
        HAND_MEAN_MM_SE: _standard_error(columns[HAND_MM]),
        HAND_ROOT_RELATIVE_MM: _mean(columns[HAND_RR_MM]),
        HAND_PROCRUSTES_MM: _mean(columns[HAND_PA_MM]),
        HAND_AUC_0_80: _auc(columns[HAND_MM], metrics.THRESHOLDS_MM),
        OBJECT_MEAN_MM: _mean(columns[OBJECT_MM]),
        OBJECT_MEAN_MM_SE: _standard_error(columns[OBJECT_MM]),
        OBJECT_REPROJ_MEAN_PX: _mean(columns[OBJECT_2D_PX]),
        OBJECT_2D_AUC_0_80: _auc(columns[OBJECT_2D_PX], metrics.THRESHOLDS_PX),
    }
    for column, key in (
        *zip(KEYPOINT_2D_COLUMNS, KEYPOINT_2D_KEYS, strict=True),
        *((column, key) for column, _, key in KEYPOINT_AUCS),
    ):
        if column in columns:
            summary[key] = _mean(columns[column])
    return summary | summarize_plausibility(columns)


def keypoint_mean_error(columns: Mapping[str, NDArray]) -> NDArray[np.float64]:
    """Each frame's mean 3D error over all 29 keypoints (21 joints and 8 corners), mm.

    ``hand_mm`` is the mean of the frame's 21 joint errors and ``object_mm`` of its 8 corner
    errors, so the mean of all 29 weighs each by its count:
    ``(21 * hand_mm + 8 * object_mm) / 29``. NaN where either part has no ground truth (NaN),
    inf where a part diverged (inf) and the other has a value.
    """
    hand, obj = columns[HAND_MM], columns[OBJECT_MM]
    return (NUM_JOINTS * hand + NUM_CORNERS * obj) / (NUM_JOINTS + NUM_CORNERS)


def natural_order(name: str) -> tuple[list[tuple[int, int | str]], str]:
    """A sort key reading each run of digits in ``name`` as a number (then the name itself, so
    that names equal as numbers, "01" and "1", keep one order): the groups' order."""
    runs = [(0, int(run)) if run.isdigit() else (1, run) for run in re.split(r"(\d+)", name) if run]
    return runs, name


def group_means(
    columns: Mapping[str, NDArray], dataset: str, key: str
) -> dict[str, dict[str, float]]:
    """The frames of a per-frame table grouped by ``key`` of ``dataset`` (:data:`GROUP_KEYS`):
    each group's count of frames and its mean errors.

    Args:
        columns: a per-frame table (:func:`frame_metrics`, ``per_frame.csv``) with ``id`` and
            :data:`GROUP_COLUMNS`.
        dataset, key: e.g. "fpha" and "action".

    Returns:
        Per group, in the order of the groups' names (numbers in them read as numbers):
        ``frames`` (:data:`GROUP_FRAMES`) and the mean of each column of :data:`GROUP_COLUMNS`
        over the group's frames that have a value (NaN where none has, inf where one diverged,
        as in :func:`summarize`).

    Raises:
        ValueError: an id without the part ``key`` names, naming it (the id of another dataset).
    """
    part = GROUP_KEYS[dataset][key]
    split = [frame.split("/") for frame in np.asarray(columns["id"]).astype(str)]
    for parts in split:
        if len(parts) <= part + 1:  # the group's part, then at least the frame's own name
            frame = "/".join(parts)
            raise ValueError(f"id {frame!r} has no {key} (not an id of {dataset}'s frames)")
    names = np.array([parts[part] for parts in split])
    groups = {}
    # Numbers within names in their order: Subject_2 before Subject_10.
    for group in sorted(set(names), key=natural_order):
        chosen = names == group
        groups[group] = {GROUP_FRAMES: int(chosen.sum())} | {
            column: _mean(np.asarray(columns[column])[chosen]) for column in GROUP_COLUMNS
        }
    return groups


def dataset_groups(
    columns: Mapping[str, NDArray], dataset: Any
) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`group_means` by each grouping key of ``dataset`` (:data:`GROUP_KEYS`), in their
    order; none for a dataset without groups, or a ``dataset`` that is no name (a summary's
    edited by hand).

    Raises:
        ValueError: as :func:`group_means`, an id that is not the dataset's.
    """
    keys = GROUP_KEYS.get(dataset, {}) if isinstance(dataset, str) else {}
    return {key: group_means(columns, dataset, key) for key in keys}


def paired_difference(
    reference: Mapping[str, NDArray], other: Mapping[str, NDArray], column: str
) -> tuple[float, float] | None:
    """The mean of ``other`` minus ``reference`` in ``column`` over the same frames, and its
    paired standard error (the per-frame differences' sample sd over √n).

    Two runs scored on the same frames share most of each frame's difficulty, so their paired
    difference is known far better than either mean (docs/evaluation.md, "Comparing runs").
    It measures the frames' sampling only, not what another training seed would move.

    Args:
        reference, other: per-frame tables (:func:`frame_metrics`, ``per_frame.csv``) with
            ``id``. column: one of their columns.

    Returns:
        ``(mean, se)`` over the frames where both have a value (not NaN): inf or -inf where one
        run diverged on a frame the other did not (se inf), NaN where both did or below two
        frames (se); None where the two tables do not hold the same frames in the same order.
    """
    if not np.array_equal(np.asarray(reference["id"]), np.asarray(other["id"])):
        return None
    a = np.asarray(reference[column], dtype=np.float64)
    b = np.asarray(other[column], dtype=np.float64)
    both = ~(np.isnan(a) | np.isnan(b))
    with np.errstate(invalid="ignore"):  # inf - inf is NaN: both diverged, nothing to tell
        difference = b[both] - a[both]
    if difference.size == 0:
        return math.nan, math.nan
    mean = float(difference.mean())
    return mean, math.nan if math.isnan(mean) else _standard_error(difference)


def score(predictions: Mapping[str, Any], **kwargs: Any) -> dict[str, float]:
    """:func:`summarize` of :func:`frame_metrics` (keyword arguments go to the latter)."""
    return summarize(frame_metrics(predictions, **kwargs))
