"""The summary's keys (hopose.scoring): what the report, the demo and the ablations read is what
score() writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hopose import ablate, demo, metrics, report, scoring
from hopose.data import dexycb, fpha, ho3d
from hopose.scoring import (
    KEYPOINT_2D_KEYS,
    KEYPOINT_AUC_KEYS,
    PLAUSIBILITY_KEYS,
    SCORE_KEYS,
    SUMMARY_KEYS,
    frame_metrics,
    plausibility_key,
    score,
)


def _predictions(n: int = 2, *, keypoints_2d: bool = True) -> dict[str, np.ndarray]:
    """Random poses 400 mm in front of a 500 px camera; 2D keypoints unless told not to."""
    rng = np.random.default_rng(0)
    depth = np.array([0.0, 0.0, 400.0])
    K = np.array([[500.0, 0, 112], [0, 500, 112], [0, 0, 1]])
    predictions = {
        f"{who}_{part}_3d": rng.normal(0, 30, (n, count, 3)) + depth
        for who in ("pred", "gt")
        for part, count in (("hand", 21), ("obj", 8))
    }
    if keypoints_2d:
        predictions |= {
            f"{who}_{part}_2d": rng.uniform(0, 224, (n, count, 2))
            for who in ("pred", "gt")
            for part, count in (("hand", 21), ("obj", 8))
        }
    return predictions | {
        "K": np.repeat(K[None], n, axis=0),
        "id": np.array([f"f{i}" for i in range(n)]),
    }


@pytest.fixture(scope="module")
def produced() -> dict[str, set[str]]:
    """The keys of real score() calls: everything computed, and the least ever computed."""
    return {
        "full": set(score(_predictions(), workers=1)),
        "least": set(score(_predictions(keypoints_2d=False), plausibility=False)),
    }


def test_the_key_constants_are_the_keys_score_writes(produced):
    assert produced["full"] == {
        *SUMMARY_KEYS, *KEYPOINT_AUC_KEYS, *KEYPOINT_2D_KEYS, *PLAUSIBILITY_KEYS
    }  # fmt: skip
    assert produced["least"] == {*SUMMARY_KEYS, *KEYPOINT_AUC_KEYS}
    # The report's "Run" table lists every other entry of a metrics.json.
    assert produced["full"] == set(SCORE_KEYS)


def _read_always() -> set[str]:
    """The summary keys that the report, the demo and the ablations index directly."""
    return {
        # The 2D keypoint rows are read where the predictions held 2D (a dash otherwise).
        *(key for key, _, _ in report.ACCURACY_ROWS if key not in KEYPOINT_2D_KEYS),
        *(auc_key for _, _, _, auc_key, *_ in report.PCK_PLOTS),
        scoring.HAND_MEAN_MM,  # Table 1
        scoring.OBJECT_MEAN_MM,
        scoring.N_FRAMES,
        *(key for key, _ in demo.COLUMNS),
        *demo.STANDARD_ERRORS.values(),
        *(key for key, gt_key, _ in ablate.PHYSICS_METRICS if gt_key is None),
    }


def _read_with_plausibility() -> set[str]:
    """The plausibility keys that they read: the report's rows (a "–" where absent) and the
    physics ablation's, which always scores the plausibility."""
    return {
        *(plausibility_key(who, name) for name, _, _ in report.PLAUSIBILITY_ROWS for who in
          ("pred", "gt")),
        *(key for key, gt_key, _ in ablate.PHYSICS_METRICS if gt_key is not None),
        *(gt_key for _, gt_key, _ in ablate.PHYSICS_METRICS if gt_key is not None),
    }  # fmt: skip


def test_every_key_the_report_demo_and_ablations_read_is_written(produced):
    # Read unconditionally: written even without plausibility or 2D keypoints.
    assert _read_always() <= produced["least"], _read_always() - produced["least"]
    accuracy = {key for key, _, _ in report.ACCURACY_ROWS}
    assert accuracy - _read_always() == set(KEYPOINT_2D_KEYS) <= produced["full"]
    plausibility = _read_with_plausibility()
    assert plausibility <= produced["full"], plausibility - produced["full"]
    assert plausibility.isdisjoint(produced["least"])


def test_every_column_the_report_reads_is_written():
    columns = set(frame_metrics(_predictions(keypoints_2d=False), plausibility=False))
    read = {scoring.HAND_MM, scoring.OBJECT_MM, *(column for _, column, *_ in report.PCK_PLOTS)}
    assert read <= columns, read - columns


def test_frames_without_hand_ground_truth_are_left_out_of_the_summary():
    # Frame 2 as in HO-3D's evaluation split: the hand's ground truth is the wrist alone (NaN
    # joints 1-20 and their 2D); the object is annotated. Scoring used to stop in the
    # Procrustes SVD ("input matrix contained non-finite values").
    predictions = _predictions(3)
    for key in ("gt_hand_3d", "gt_hand_2d"):
        predictions[key][2, 1:] = np.nan
    columns = frame_metrics(predictions, plausibility=False)
    for column in (scoring.HAND_MM, scoring.HAND_RR_MM, scoring.HAND_PA_MM, scoring.HAND_KP2D_PX):
        assert np.isfinite(columns[column][:2]).all() and np.isnan(columns[column][2]), column
    assert np.isfinite(columns[scoring.OBJECT_MM]).all()
    # The hand's numbers are those of the two annotated frames alone; the object's of all three.
    summary = score(predictions, plausibility=False)
    annotated = score({k: v[:2] for k, v in predictions.items()}, plausibility=False)
    for key in (scoring.HAND_MEAN_MM, scoring.HAND_ROOT_RELATIVE_MM, scoring.HAND_PROCRUSTES_MM,
                scoring.HAND_AUC_0_80, scoring.HAND_KP2D_MEAN_PX):  # fmt: skip
        assert summary[key] == pytest.approx(annotated[key]), key
    assert summary[scoring.OBJECT_MEAN_MM] == pytest.approx(np.mean(columns[scoring.OBJECT_MM]))
    assert summary[scoring.N_FRAMES] == 3
    # No frame with the hand's ground truth: its numbers are undefined (NaN, "–" in the
    # report), not an AUC of 0; the object's are still there.
    for key in ("gt_hand_3d", "gt_hand_2d"):
        predictions[key][:, 1:] = np.nan
    summary = score(predictions, plausibility=False)
    assert np.isnan(summary[scoring.HAND_MEAN_MM]) and np.isnan(summary[scoring.HAND_AUC_0_80])
    assert np.isfinite(summary[scoring.OBJECT_MEAN_MM])
    assert np.isfinite(summary[scoring.OBJECT_2D_AUC_0_80])


def test_no_frames_score_no_frames_and_every_summary_nan():
    # Zero frames (an empty split): n = 0 and every number NaN, as where no frame has ground
    # truth; the AUCs raised from the PCK curve of an empty column.
    summary = score(_predictions(0), workers=1)
    assert summary.pop(scoring.N_FRAMES) == 0
    assert set(summary) == set(SCORE_KEYS) - {scoring.N_FRAMES} and all(
        np.isnan(value) for value in summary.values()
    ), summary


def test_standard_errors_of_the_mean_errors_by_hand():
    # Hand errors 1, 3, 5 mm and one frame without ground truth: mean 3, sample sd
    # sqrt(((1-3)^2 + 0 + (5-3)^2) / 2) = 2, standard error 2 / sqrt(3) = 1.1547. The object
    # 2, 2, 2, 6: mean 3, sd sqrt((3 * 1 + 9) / 3) = 2, standard error 2 / sqrt(4) = 1.
    columns = {column: np.zeros(4) for column in scoring.ACCURACY_COLUMNS}
    columns[scoring.HAND_MM] = np.array([1.0, 3.0, 5.0, np.nan])
    columns[scoring.OBJECT_MM] = np.array([2.0, 2.0, 2.0, 6.0])
    summary = scoring.summarize(columns)
    assert summary[scoring.HAND_MEAN_MM] == pytest.approx(3.0)
    assert summary[scoring.HAND_MEAN_MM_SE] == pytest.approx(1.1547, abs=1e-4)
    assert summary[scoring.OBJECT_MEAN_MM_SE] == pytest.approx(1.0)
    # One scored frame has no spread to measure; a diverged frame makes it infinite.
    columns[scoring.HAND_MM] = np.array([1.0, np.nan, np.nan, np.nan])
    columns[scoring.OBJECT_MM] = np.array([2.0, np.inf, 2.0, 6.0])
    summary = scoring.summarize(columns)
    assert np.isnan(summary[scoring.HAND_MEAN_MM_SE])
    assert summary[scoring.OBJECT_MEAN_MM_SE] == np.inf


def test_keypoint_mean_error_weighs_each_part_by_its_keypoints():
    """The gallery's ranking error is the mean over all 29 keypoints, not of the two parts."""
    # Frame 0: hand 1 mm over 21 joints, object 30 mm over 8 corners: (21 * 1 + 8 * 30) / 29
    # = 261 / 29 = 9 (the parts' plain mean would be 15.5). Frame 1: (21 * 29 + 8 * 0) / 29
    # = 21. Frame 2: no hand ground truth (NaN), so no mean; frame 3: a diverged hand (inf).
    columns = {
        scoring.HAND_MM: np.array([1.0, 29.0, np.nan, np.inf]),
        scoring.OBJECT_MM: np.array([30.0, 0.0, 4.0, 2.0]),
    }
    error = scoring.keypoint_mean_error(columns)
    np.testing.assert_allclose(error[:2], [9.0, 21.0])
    assert np.isnan(error[2]) and error[3] == np.inf


def test_paired_difference_by_hand():
    # Hand errors 1, 3, 5 mm and 2, 3, 8 on the same three frames (a fourth has no ground
    # truth): differences 1, 0, 3, mean 4/3, sample sd sqrt(((-1/3)^2 + (-4/3)^2 + (5/3)^2) / 2)
    # = sqrt(21 / 9) = 1.5275, paired standard error 1.5275 / sqrt(3) = 0.8819.
    ids = np.array(["f0", "f1", "f2", "f3"])
    first = {"id": ids, scoring.HAND_MM: np.array([1.0, 3.0, 5.0, np.nan])}
    second = {"id": ids, scoring.HAND_MM: np.array([2.0, 3.0, 8.0, np.nan])}
    mean, se = scoring.paired_difference(first, second, scoring.HAND_MM)
    assert mean == pytest.approx(4 / 3) and se == pytest.approx(0.8819, abs=1e-4)
    # Other frames, or the same in another order: no pairing.
    assert scoring.paired_difference(first, {**second, "id": ids[::-1]}, scoring.HAND_MM) is None
    # The second run diverged on frame 1: infinitely worse; both on frame 0: nothing to tell.
    diverged = {"id": ids, scoring.HAND_MM: np.array([2.0, np.inf, 8.0, np.nan])}
    assert scoring.paired_difference(first, diverged, scoring.HAND_MM) == (np.inf, np.inf)
    both = {"id": ids, scoring.HAND_MM: np.array([np.inf, 3.0, 5.0, np.nan])}
    mean, se = scoring.paired_difference(both, {**both}, scoring.HAND_MM)
    assert np.isnan(mean) and np.isnan(se)


def test_arrays_of_other_frame_counts_are_refused_by_name():
    # Three frames: a single id would write one row of per_frame.csv while the summary counts
    # three; a ground truth of two would be split at 5 // 2 = 2 after the concatenation, so
    # the third prediction and the first ground truth would be judged as a pair.
    predictions = _predictions(3)
    short_id = {**predictions, "id": predictions["id"][:1]}
    with pytest.raises(ValueError, match=r"^predictions: 'id' holds 1 frames, 'pred_hand_3d' 3$"):
        frame_metrics(short_id, plausibility=False)
    short_2d = {**predictions, "gt_obj_2d": predictions["gt_obj_2d"][:2]}
    with pytest.raises(ValueError, match=r"'gt_obj_2d' holds 2 frames, 'pred_hand_3d' 3"):
        frame_metrics(short_2d, plausibility=False)
    short_truth = {**predictions, "gt_hand_3d": predictions["gt_hand_3d"][:2]}
    with pytest.raises(ValueError, match=r"'gt_hand_3d' holds 2 frames, 'pred_hand_3d' 3"):
        scoring.plausibility_columns(short_truth, workers=1)
    no_id = {key: value for key, value in predictions.items() if key != "id"}
    with pytest.raises(ValueError, match=r"^predictions: missing 'id' \(have \['K', "):
        frame_metrics(no_id, plausibility=False)


def test_predictions_of_a_bfloat16_network_are_scored_as_their_float64_values():
    """Tensors in any float dtype are scored in float64: a bfloat16 network's predictions (which
    numpy cannot hold) give the columns of the same values widened first."""
    predictions = _predictions()
    narrow = {
        key: torch.from_numpy(value).to(torch.bfloat16) if key.startswith("pred_") else value
        for key, value in predictions.items()
    }
    widened = {
        key: value.double().numpy() if isinstance(value, torch.Tensor) else value
        for key, value in narrow.items()
    }
    columns = frame_metrics(narrow, plausibility=False)
    expected = frame_metrics(widened, plausibility=False)
    for column, values in expected.items():
        np.testing.assert_array_equal(columns[column], values, err_msg=column)


def test_the_ground_truth_2d_protocol_scores_no_2d_error():
    """Under "gt_2d" the predicted 2D is the truth the lifter was fed: no 2D error column (it
    would read 0 px), every other column as without a protocol, which scores each array."""
    predictions = _predictions()
    scored = frame_metrics(predictions, plausibility=False)
    fed = frame_metrics(predictions, protocol=scoring.PROTOCOL_GT_2D, plausibility=False)
    assert {"hand_kp2d_px", "object_kp2d_px"} <= scored.keys()
    assert fed.keys() == scored.keys() - {"hand_kp2d_px", "object_kp2d_px"}
    for column, values in fed.items():
        np.testing.assert_array_equal(values, scored[column], err_msg=column)
    image = frame_metrics(predictions, protocol=scoring.PROTOCOL_IMAGE, plausibility=False)
    assert image.keys() == scored.keys()


def test_force_closure_rate_counts_only_a_positive_epsilon():
    # Five frames, the last not judged (a pose that is not finite: NaN). Of the four judged,
    # epsilon 0.02 and 0.01 are force closure, the two zeros (the origin on or outside the
    # wrench hull) are not: rate 2 / 4 = 0.5; mean epsilon (0.02 + 0 + 0 + 0.01) / 4 = 0.0075.
    columns = {plausibility_key("pred", name): np.zeros(5) for name in scoring.PLAUSIBILITY_NAMES}
    columns["pred_valid_contacts"] = np.array([4.0, 1.0, 0.0, 3.0, np.nan])
    columns["pred_grasp_epsilon"] = np.array([0.02, 0.0, 0.0, 0.01, np.nan])
    summary = scoring.summarize_plausibility(columns)
    assert summary["pred_force_closure"] == pytest.approx(0.5)
    assert summary["pred_grasp_epsilon"] == pytest.approx(0.0075)


def test_a_diverged_prediction_counts_as_wrong():
    # Frame 1's predicted hand is NaN with its ground truth finite: infinitely wrong, so the
    # mean is infinite and the PCK curve counts it as a failure at every threshold.
    predictions = _predictions(2)
    predictions["gt_hand_3d"][0] = predictions["pred_hand_3d"][0]  # frame 0 exact
    predictions["pred_hand_3d"][1, 3] = np.nan
    columns = frame_metrics(predictions, plausibility=False)
    assert columns[scoring.HAND_MM][1] == np.inf and columns[scoring.HAND_PA_MM][1] == np.inf
    summary = scoring.summarize(columns)
    assert summary[scoring.HAND_MEAN_MM] == np.inf
    # Frame 0 correct from 0 mm on, frame 1 never: PCK 1/2 at every threshold.
    assert summary[scoring.HAND_AUC_0_80] == pytest.approx(0.5)


def test_every_accuracy_summary_reads_its_own_column():
    # Column k (1..7) holds the errors k and 3k on two frames: mean 2k, sample sd
    # sqrt(k^2 + k^2) = k sqrt(2), standard error k sqrt(2) / sqrt(2) = k. On the integer
    # thresholds 0..80 the trapezoidal PCK curve of integer errors e_i in [1, 80] rises by 1/n
    # over [e_i - 1, e_i], each adding (80 - e_i + 1/2) / n: AUC = (80.5 - mean) / 80.
    # No two columns share a value, so a summary read from another column fails.
    order = (scoring.HAND_MM, scoring.OBJECT_MM, scoring.HAND_RR_MM, scoring.HAND_PA_MM,
             scoring.OBJECT_2D_PX, scoring.HAND_KP2D_PX, scoring.OBJECT_KP2D_PX)  # fmt: skip
    assert set(order) == {*scoring.ACCURACY_COLUMNS, *scoring.KEYPOINT_2D_COLUMNS}
    columns = {column: np.array([k, 3.0 * k]) for k, column in enumerate(order, start=1)}
    expected = {
        scoring.N_FRAMES: 2,
        scoring.HAND_MEAN_MM: 2.0,  # hand_mm, k = 1
        scoring.HAND_MEAN_MM_SE: 1.0,
        scoring.HAND_AUC_0_80: (80.5 - 2.0) / 80,
        scoring.OBJECT_MEAN_MM: 4.0,  # object_mm, k = 2
        scoring.OBJECT_MEAN_MM_SE: 2.0,
        scoring.HAND_ROOT_RELATIVE_MM: 6.0,  # hand_rr_mm, k = 3
        scoring.HAND_PROCRUSTES_MM: 8.0,  # hand_pa_mm, k = 4
        scoring.OBJECT_REPROJ_MEAN_PX: 10.0,  # object_2d_px, k = 5
        scoring.OBJECT_2D_AUC_0_80: (80.5 - 10.0) / 80,
        scoring.HAND_KP2D_MEAN_PX: 12.0,  # hand_kp2d_px, k = 6
        scoring.OBJECT_KP2D_MEAN_PX: 14.0,  # object_kp2d_px, k = 7
    }
    summary = scoring.summarize(columns)
    assert set(summary) == set(expected)
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value, rel=1e-12), key


def test_object_2d_error_uses_the_original_camera_when_given():
    # Every box corner at depth 500 mm; the predicted corners are the truth moved 5 mm along x
    # in frame 0 and 5 mm along y in frame 1, so each projection moves f * 5 / 500 pixels.
    # The original camera (fx 1000, fy 800): 1000 * 5 / 500 = 10 px and 800 * 5 / 500 = 8 px.
    # The network image's K (fx = fy = 500): 5 px each, what is scored without orig_K.
    predictions = _predictions(2, keypoints_2d=False)
    rng = np.random.default_rng(1)
    gt_obj = np.concatenate([rng.uniform(-60, 60, (2, 8, 2)), np.full((2, 8, 1), 500.0)], -1)
    predictions["gt_obj_3d"] = gt_obj
    predictions["pred_obj_3d"] = gt_obj + np.array([[[5.0, 0, 0]], [[0, 5.0, 0]]])
    orig_K = np.array([[1000.0, 0, 960], [0, 800, 540], [0, 0, 1]])
    with_orig = {**predictions, "orig_K": np.repeat(orig_K[None], 2, axis=0)}
    columns = scoring.accuracy_columns(with_orig)
    np.testing.assert_allclose(columns[scoring.OBJECT_2D_PX], [10.0, 8.0], rtol=1e-12)
    columns = scoring.accuracy_columns(predictions)
    np.testing.assert_allclose(columns[scoring.OBJECT_2D_PX], [5.0, 5.0], rtol=1e-12)


def test_the_root_relative_column_moves_the_wrist_to_the_origin():
    """``hand_rr_mm`` subtracts joint 0, the wrist (docs/conventions.md §1), not another joint."""
    # The prediction is the truth but for the wrist, 21 mm off along x. Minus each wrist, the
    # other 20 joints are all 21 mm off and the wrist 0: 20 * 21 / 21 = 20 mm. Unaligned only
    # the wrist is off: 21 / 21 = 1 mm (and minus any other joint it would be 1 mm too).
    predictions = _predictions(2, keypoints_2d=False)
    predictions["pred_hand_3d"] = predictions["gt_hand_3d"].copy()
    predictions["pred_hand_3d"][:, 0, 0] += 21.0
    columns = scoring.accuracy_columns(predictions)
    np.testing.assert_allclose(columns[scoring.HAND_RR_MM], [20.0, 20.0], rtol=1e-12)
    np.testing.assert_allclose(columns[scoring.HAND_MM], [1.0, 1.0], rtol=1e-12)


def test_paired_difference_leaves_out_a_frame_either_run_has_no_value_for():
    """A frame counts only where both runs have a value: a NaN in either table drops it."""
    # Frames 0-2 as in test_paired_difference_by_hand (differences 1, 0, 3: mean 4/3, standard
    # error 0.8819); frame 3 has a value in one table only, so it is left out either way round.
    ids = np.array(["f0", "f1", "f2", "f3"])
    first = {"id": ids, scoring.HAND_MM: np.array([1.0, 3.0, 5.0, 7.0])}
    second = {"id": ids, scoring.HAND_MM: np.array([2.0, 3.0, 8.0, np.nan])}
    mean, se = scoring.paired_difference(first, second, scoring.HAND_MM)
    assert mean == pytest.approx(4 / 3) and se == pytest.approx(0.8819, abs=1e-4)
    # Reversed, the differences are -1, 0, -3: mean -4/3, the same standard error.
    mean, se = scoring.paired_difference(second, first, scoring.HAND_MM)
    assert mean == pytest.approx(-4 / 3) and se == pytest.approx(0.8819, abs=1e-4)


def test_paired_difference_of_runs_with_no_frame_in_common_is_nan():
    """Frames that never overlap leave no difference to average: NaN, not a difference of 0
    that would read as two runs equally good."""
    # The first run has values on frames 0 and 1 only, the second on frames 2 and 3 only.
    ids = np.array(["f0", "f1", "f2", "f3"])
    first = {"id": ids, scoring.HAND_MM: np.array([1.0, 3.0, np.nan, np.nan])}
    second = {"id": ids, scoring.HAND_MM: np.array([np.nan, np.nan, 8.0, 2.0])}
    for reference, other in ((first, second), (second, first)):
        mean, se = scoring.paired_difference(reference, other, scoring.HAND_MM)
        assert np.isnan(mean) and np.isnan(se), (mean, se)


def test_affinity_is_averaged_over_the_frames_with_two_contacts_or_more():
    """The affinity summary is the mean over judged frames with at least two valid contacts;
    0 when no judged frame has two, NaN when no frame is judged at all (docs/evaluation.md)."""
    columns = {plausibility_key("pred", name): np.zeros(5) for name in scoring.PLAUSIBILITY_NAMES}
    # Contacts 2, 1, 3, 0 and a frame not judged: the frames with 2 and 3 contacts count,
    # (0.5 + 0.2) / 2 = 0.35; the frames with fewer (affinity 0, Eq. 6 needs a pair) and the
    # unjudged one are left out, which would give (0.5 + 0 + 0.2 + 0) / 4 = 0.175.
    columns["pred_valid_contacts"] = np.array([2.0, 1.0, 3.0, 0.0, np.nan])
    columns["pred_affinity"] = np.array([0.5, 0.0, 0.2, 0.0, np.nan])
    summary = scoring.summarize_plausibility(columns)
    assert summary["pred_affinity"] == pytest.approx(0.35)
    assert summary["pred_valid_contacts"] == pytest.approx(6 / 4)  # (2 + 1 + 3 + 0) / 4
    # Judged frames, none with two contacts: 0, as the loss's batch mean.
    columns["pred_valid_contacts"] = np.array([1.0, 0.0, 1.0, 0.0, np.nan])
    assert scoring.summarize_plausibility(columns)["pred_affinity"] == 0.0
    # No frame judged: nothing to average.
    columns["pred_valid_contacts"] = np.full(5, np.nan)
    assert np.isnan(scoring.summarize_plausibility(columns)["pred_affinity"])


def test_group_means_by_hand():
    """Frames are grouped by their id's component that the dataset's key names, each group
    with its count of frames and the means of its accuracy columns over the frames that have
    a value, groups in the order of their names."""
    ids = np.array([
        fpha.frame_id("Subject_1", "open_milk", "1", 0),
        fpha.frame_id("Subject_1", "close_milk", "1", 0),
        fpha.frame_id("Subject_2", "open_milk", "1", 0),
        fpha.frame_id("Subject_2", "close_milk", "2", 7),
    ])  # fmt: skip
    columns = {"id": ids, **{name: np.ones(4) for name in scoring.GROUP_COLUMNS}}
    columns[scoring.HAND_MM] = np.array([2.0, 10.0, 4.0, 20.0])
    columns[scoring.OBJECT_MM] = np.array([1.0, 5.0, np.nan, 7.0])  # frame 2: no box truth
    actions = scoring.group_means(columns, "fpha", "action")
    assert list(actions) == ["close_milk", "open_milk"]
    # close_milk: frames 1 and 3, hand (10 + 20) / 2 = 15, object (5 + 7) / 2 = 6.
    assert actions["close_milk"] == {
        scoring.GROUP_FRAMES: 2, scoring.HAND_MM: 15.0, scoring.HAND_RR_MM: 1.0,
        scoring.HAND_PA_MM: 1.0, scoring.OBJECT_MM: 6.0, scoring.OBJECT_2D_PX: 1.0,
    }  # fmt: skip
    # open_milk: frames 0 and 2, hand (2 + 4) / 2 = 3, object 1 (frame 2 has none).
    assert actions["open_milk"][scoring.GROUP_FRAMES] == 2
    assert actions["open_milk"][scoring.HAND_MM] == 3.0
    assert actions["open_milk"][scoring.OBJECT_MM] == 1.0
    # Subject_1: frames 0 and 1, hand (2 + 10) / 2 = 6; Subject_2: (4 + 20) / 2 = 12.
    subjects = scoring.group_means(columns, "fpha", "subject")
    assert {name: group[scoring.HAND_MM] for name, group in subjects.items()} == {
        "Subject_1": 6.0,
        "Subject_2": 12.0,
    }


def test_groups_are_in_the_order_of_the_numbers_in_their_names():
    """FPHA-HO's subjects 1 to 10 come in that order, not Subject_10 before Subject_2 as
    comparing the names' characters would put them."""
    ids = np.array([fpha.frame_id(f"Subject_{n}", "open_milk", "1", 0) for n in (10, 2, 1, 9)])
    columns = {"id": ids, **{name: np.ones(4) for name in scoring.GROUP_COLUMNS}}
    subjects = scoring.group_means(columns, "fpha", "subject")
    assert list(subjects) == ["Subject_1", "Subject_2", "Subject_9", "Subject_10"]


def test_group_keys_name_the_components_of_each_loaders_ids():
    """Each dataset's keys read the parts of the ids its loader writes, each id built by the
    loader's own function (a change of its layout that the grouping does not follow fails
    here); a dataset without groups has no key, and an id without the part asked for is
    refused naming it."""
    subject, sequence, camera = "20200709-subject-01", "20200709_140004", "836212060125"
    examples = {
        "fpha": (
            fpha.frame_id("Subject_1", "open_milk", "3", 1),
            {"subject": "Subject_1", "action": "open_milk"},
        ),
        "dexycb": (
            dexycb.frame_id(subject, sequence, camera, 0),
            {"subject": subject, "camera": camera},
        ),
        "ho3d": (ho3d.frame_id("v3", "MC1", "0042"), {"sequence": "MC1"}),
    }
    assert set(scoring.GROUP_KEYS) == set(examples)
    for dataset, (frame, groups) in examples.items():
        columns = {"id": np.array([frame]), **{c: np.zeros(1) for c in scoring.GROUP_COLUMNS}}
        found = {key: list(scoring.group_means(columns, dataset, key)) for key in groups}
        assert found == {key: [group] for key, group in groups.items()}, dataset
    # Too short for the action's part, and long enough for it but with no frame's own name
    # after it (another dataset's id, whose last part is its frame): both refused.
    parts = fpha.frame_id("Subject_1", "open_milk", "3", 1).split("/")
    for frame in ("/".join(parts[:2]), "/".join(parts[:3])):  # fpha/Subject_1[/open_milk]
        columns = {"id": np.array([frame]), **{c: np.zeros(1) for c in scoring.GROUP_COLUMNS}}
        with pytest.raises(ValueError, match=f"'{frame}' has no action"):
            scoring.group_means(columns, "fpha", "action")


def test_the_names_files_already_hold_keep_their_values():
    """metrics.json's run description and protocols are read back from the files users already
    have (hopose compare, hopose score, the report of an older evaluation): their names in
    hopose.scoring may move, their values may not."""
    assert scoring.PROTOCOLS == ("gt_2d", "gt_box", "image")
    described = (
        scoring.PROTOCOL, scoring.CROP, scoring.SELF_CROP, scoring.SELF_CROP_MARGIN,
        scoring.SELF_CROP_VIEWS, scoring.REFINED, scoring.GRASP_COMPLETED, scoring.IMAGE_SIZE,
        scoring.DATASET, scoring.SPLIT, scoring.OPTIONS, scoring.SEED, scoring.NUM,
        scoring.WHOLE_SPLIT, scoring.ROOT, scoring.CACHE, scoring.CHECKPOINT,
        scoring.HOPOSE_VERSION, scoring.TORCH_VERSION, scoring.DEVICE, scoring.SCORED,
        scoring.UNREFINED,
    )  # fmt: skip
    assert described == (
        "protocol", "crop", "self_crop", "self_crop_margin", "self_crop_views", "refined",
        "grasp_completed", "image_size", "dataset", "split", "options", "seed", "num",
        "whole_split", "root", "cache", "checkpoint", "hopose_version", "torch_version",
        "device", "scored", "unrefined",
    )  # fmt: skip
    assert set(described).isdisjoint(scoring.SCORE_KEYS)


def test_the_auc_keys_name_the_thresholds_they_are_computed_over():
    """An AUC's key in metrics.json names its thresholds' span (hand_auc_0_80: 0 to 80 mm); the
    key may not change with files that hold it, so thresholds of another span fail here rather
    than be written under a key that misnames them. The report's and the demo's labels are
    built from the thresholds themselves."""
    spans = {
        scoring.HAND_AUC_0_80: metrics.THRESHOLDS_MM,
        scoring.OBJECT_2D_AUC_0_80: metrics.THRESHOLDS_PX,
        **{key: metrics.THRESHOLDS_KEYPOINT_MM for key in KEYPOINT_AUC_KEYS},
    }
    for key, thresholds in spans.items():
        low, high = report.threshold_range(thresholds).split("-")
        assert key.endswith(f"_{low}_{high}"), key
    assert report.threshold_range(metrics.THRESHOLDS_MM) == "0-80"
    assert report.threshold_range(metrics.THRESHOLDS_KEYPOINT_MM) == "0-50"
