"""Evaluation and prediction: the paper's metrics from predictions, and the CLI commands."""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from dataset_fixtures import write_dexycb, write_fpha
from PIL import Image

import hopose
from hopose import checkpoint as checkpoint_module
from hopose import evaluate, predict, viz
from hopose.checkpoint import CheckpointError, load_model, model_checkpoint, save_checkpoint
from hopose.cli import main
from hopose.config import load_config
from hopose.configs import CONFIG_DIR as CONFIGS
from hopose.crop import apply_affine, crop_affine, frame_square, square_around, warp_image
from hopose.data import synthetic_split_seed
from hopose.data.fpha import FPHA_COLOR_K
from hopose.data.grasps import generate_grasps
from hopose.data.splits import RecordList
from hopose.data.synthetic import SyntheticHandObject
from hopose.evaluate import mean_pose_predictions, predict_split
from hopose.files import temporary_path
from hopose.geometry import cuboid_error, project_points, scale_intrinsics, unproject_points
from hopose.models import build_model
from hopose.photo import EXIF_IFD, FOCAL_LENGTH_35MM
from hopose.refine import refine_pose, refine_predictions, refine_weights
from hopose.report import SUMMARY_ENTRIES, describe_run, read_summary, write_report
from hopose.scoring import PLAUSIBILITY_SUMMARY_NAMES, SCORE_KEYS, plausibility_key, score
from hopose.self_crop import CropViews, SelfCropping

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")


def _predictions(n: int = 4) -> dict[str, np.ndarray]:
    """Ground truth 400 mm in front of a 1000 px camera, predictions shifted by known offsets."""
    rng = np.random.default_rng(0)
    depth = np.array([0.0, 0.0, 400.0])
    gt_hand = rng.normal(0, 30, (n, 21, 3)) + depth
    gt_obj = rng.normal(0, 30, (n, 8, 3)) + depth
    K = np.array([[1000.0, 0, 500], [0, 1000, 500], [0, 0, 1]])
    return {
        "pred_hand_3d": gt_hand
        + np.array([3.0, 4.0, 0.0]),  # every joint 5 mm off (3-4-5 triangle)
        "gt_hand_3d": gt_hand,
        "pred_obj_3d": gt_obj.copy(),  # exact
        "gt_obj_3d": gt_obj,
        "pred_hand_2d": np.full((n, 21, 2), [6.0, 8.0]),  # 10 px from the origin
        "gt_hand_2d": np.zeros((n, 21, 2)),
        "pred_obj_2d": np.zeros((n, 8, 2)),
        "gt_obj_2d": np.zeros((n, 8, 2)),
        "K": np.repeat(K[None], n, axis=0),
        "orig_K": np.repeat(K[None], n, axis=0),
        "orig_size": np.full((n, 2), 1000),
        "id": np.array([f"f{i}" for i in range(n)]),
    }


def test_summarize_hand_computed():
    summary = score(_predictions(), plausibility=False)
    assert summary["hand_mean_mm"] == pytest.approx(5.0)  # sqrt(3^2 + 4^2)
    assert summary["object_mean_mm"] == pytest.approx(0.0)
    # Every frame's error is 5 mm: the PCK curve over t = 0, 1, ..., 80 is 0 up to 4 and 1 from
    # 5, so the trapezoids give 0.5 (between 4 and 5) + 75 (5..80); divided by 80 -> 0.94375.
    assert summary["hand_auc_0_80"] == pytest.approx(75.5 / 80)
    assert summary["object_2d_auc_0_80"] == pytest.approx(1.0)  # exact corners: 0 px
    assert summary["hand_root_relative_mm"] == pytest.approx(0.0, abs=1e-9)  # a pure shift
    assert summary["hand_procrustes_mm"] == pytest.approx(0.0, abs=1e-6)
    assert summary["hand_kp2d_mean_px"] == pytest.approx(10.0)  # sqrt(6^2 + 8^2)
    assert summary["n"] == 4


def test_mean_pose_baseline_predicts_the_mean_everywhere():
    predictions = _predictions()
    mean_hand, mean_obj = np.full((21, 3), 7.0), np.full((8, 3), 9.0)
    baseline = mean_pose_predictions(predictions, mean_hand, mean_obj)
    assert (baseline["pred_hand_3d"] == 7.0).all() and (baseline["pred_obj_3d"] == 9.0).all()
    assert baseline["gt_hand_3d"] is predictions["gt_hand_3d"]
    # It predicts no 2D: the 2D it is built beside (the truth after --gt-2d, as in the demo)
    # is not its own, and scored it read 0 px.
    predictions["pred_hand_2d"] = predictions["gt_hand_2d"]
    predictions["pred_obj_2d"] = predictions["gt_obj_2d"]
    scored = score(mean_pose_predictions(predictions, mean_hand, mean_obj), plausibility=False)
    assert "hand_kp2d_mean_px" not in scored and "object_kp2d_mean_px" not in scored
    # The mean pose of the test frames themselves is the best constant: any other is worse.
    centred = mean_pose_predictions(
        predictions, predictions["gt_hand_3d"].mean(0), predictions["gt_obj_3d"].mean(0)
    )
    assert (
        score(centred, plausibility=False)["hand_mean_mm"]
        < score(baseline, plausibility=False)["hand_mean_mm"]
    )


def test_mean_pose_baseline_predicts_each_joint_and_corner_at_its_own_mean():
    """Every frame's prediction is the mean hand and mean box as given, joint by joint and
    corner by corner (not a constant, not another order)."""
    predictions = _predictions(3)
    mean_hand = np.arange(63.0).reshape(21, 3)  # every joint a different point
    mean_obj = np.arange(24.0).reshape(8, 3) * 10
    # Truth: the mean moved by (3, 4, 0) for every joint of every frame -> 5 mm off each.
    predictions["gt_hand_3d"] = np.repeat((mean_hand + np.array([3.0, 4.0, 0.0]))[None], 3, axis=0)
    baseline = mean_pose_predictions(predictions, mean_hand, mean_obj)
    for k in range(3):
        assert np.array_equal(baseline["pred_hand_3d"][k], mean_hand)
        assert np.array_equal(baseline["pred_obj_3d"][k], mean_obj)
    assert score(baseline, plausibility=False)["hand_mean_mm"] == pytest.approx(5.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained 32 px network saved as a checkpoint (enough to exercise the plumbing), its
    parts recorded as trained so that every use is allowed. It has the paper's linear head: an
    untrained heat-map head puts every keypoint at the image's centre (flat maps), from which
    the lifter's corners come out nearly a box, and the refinement tests need corners that are
    not one. It reads whole frames (the paper's resize), so predict feeds it the resized photo;
    self-cropping has its own test below."""
    cfg = load_config(
        CONFIGS / "synthetic" / "end2end.yaml",
        ["data.image_size=32", "model.hidden=16", "model.head=linear",
         "loss.w_heatmap=0", "model.segmentation=false", "loss.w_segmentation=0",
         "data.crop=resize", "data.options.jitter=false"],
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg.model)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(model_checkpoint(model, cfg, trained=("encoder", "lifter")), path)
    return path


@pytest.mark.parametrize("gt_2d", [True, False], ids=["gt_2d", "images"])
def test_eval_command_writes_metrics_predictions_and_report(checkpoint, tmp_path, gt_2d):
    args = [
        "eval",
        str(checkpoint),
        "--data",
        "synthetic",
        "--seed",
        "3",
        "--num",
        "8",
        "--out",
        str(tmp_path),
    ]
    # The report (figures) is drawn once, for the image protocol, to keep the test short.
    assert main([*args, "--gt-2d", "--no-report"] if gt_2d else args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n"] == 8
    assert metrics["protocol"] == ("gt_2d" if gt_2d else "image")
    assert (metrics["crop"], metrics["self_crop"]) == ("resize", 0)
    predictions = dict(np.load(tmp_path / "predictions.npz"))
    assert predictions["pred_hand_3d"].shape == (8, 21, 3)
    assert predictions["orig_K"].shape == (8, 3, 3) and predictions["id"].shape == (8,)
    # The file's numbers are the predictions' numbers; --no-report skips the plausibility.
    scored = score(predictions, plausibility=not gt_2d)
    if gt_2d:
        # The lifter read the ground truth, which the file keeps as the 2D it read; no 2D was
        # predicted, so no 2D error is reported (scoring the file would say 0 px).
        assert np.array_equal(predictions["pred_hand_2d"], predictions["gt_hand_2d"])
        assert scored.pop("hand_kp2d_mean_px") == scored.pop("object_kp2d_mean_px") == 0
    assert metrics.keys() >= scored.keys()
    assert ("hand_kp2d_mean_px" in metrics) != gt_2d
    for key, value in scored.items():
        assert metrics[key] == pytest.approx(value), key
    assert ("pred_grasp_epsilon" in metrics) != gt_2d
    assert (tmp_path / "report.md").is_file() != gt_2d


def test_an_eval_into_a_used_folder_leaves_none_of_the_earlier_runs_report(checkpoint, tmp_path):
    # Stand-ins for an earlier evaluation's files (its metrics.json with the frames it scored,
    # which tells it from a demo's: check_output_folder), and one that is not hopose's.
    earlier = ["metrics.json", "per_frame.csv", "report.md", "figures/gallery.png"]
    for name in [*earlier, "notes.txt"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("earlier")
    (tmp_path / "metrics.json").write_text('{"n": 5}')
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=2)
    evaluate.run_eval(checkpoint, data, "test", tmp_path, gt_2d=True, report=False)
    left = [name for name in earlier if (tmp_path / name).exists()]
    assert (
        left == ["metrics.json"] and json.loads((tmp_path / "metrics.json").read_text())["n"] == 2
    )
    assert (tmp_path / "notes.txt").read_text() == "earlier"


# A demo's metrics.json (hopose.demo.run_demo's summary, cut short): its results and checks,
# no evaluation's "n" at its top.
_DEMO_SUMMARY = {"quick": True, "n_test": 16, "results": {"final_image": {"n": 16}}, "checks": {}}


@pytest.mark.parametrize(
    "held", [json.dumps(_DEMO_SUMMARY), "[16]", "not json"], ids=["demo", "list", "text"]
)
@pytest.mark.parametrize("command", ["eval", "score"])
def test_an_out_holding_a_metrics_json_that_is_not_an_evaluations_is_refused(
    checkpoint, tmp_path, monkeypatch, held, command
):
    """hopose eval --out runs/demo replaced the demo's metrics.json (its results and checks)
    without a word, as hopose score into it did: both are refused in one line naming the file,
    eval before its checkpoint is read, and the folder is left as it was. Re-running either into
    its own earlier output stays possible: test_an_eval_into_a_used_folder_leaves_none_of_the_
    earlier_runs_report, test_score_of_an_evaluations_own_predictions_reproduces_its_metrics."""
    out = tmp_path / "demo"
    out.mkdir()
    (out / "metrics.json").write_text(held)
    (out / "results.md").write_text("the demo's table")
    read = []
    monkeypatch.setattr(evaluate, "load_model", lambda *args, **kwargs: read.append(args))
    message = (
        f"{out / 'metrics.json'}: not an evaluation's metrics.json (no 'n', the frames scored: "
        "a demo's, say), and would be replaced; choose another --out"
    )
    with pytest.raises(ValueError) as error:
        if command == "eval":
            data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=2)
            evaluate.run_eval(checkpoint, data, "test", out, gt_2d=True, report=False)
        else:
            path = tmp_path / "mine" / "predictions.npz"
            path.parent.mkdir()
            np.savez(path, **_predictions())
            evaluate.score_file(path, out, plausibility=False)
    assert str(error.value) == message and read == []
    assert sorted(path.name for path in out.iterdir()) == ["metrics.json", "results.md"]
    assert (out / "metrics.json").read_text() == held


def _evaluation(command: str, checkpoint: Path, tmp_path: Path, out: Path) -> dict:
    """``hopose eval`` of 2 synthetic frames (ground-truth 2D) into ``out``, or ``hopose score``
    of such an evaluation's predictions."""
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=2)
    if command == "eval":
        return evaluate.run_eval(checkpoint, data, "test", out, gt_2d=True, report=False)
    scored = tmp_path / "scored"
    if not scored.exists():
        evaluate.run_eval(checkpoint, data, "test", scored, gt_2d=True, report=False)
    return evaluate.score_file(scored / "predictions.npz", out, plausibility=False)


def _refused(out: Path) -> str:
    """An evaluation's refusal of ``out`` while another evaluation holds it."""
    return (
        f"{out}: another evaluation is writing to this folder (it holds eval.lock); wait for it "
        "to end or choose another --out"
    )


@pytest.mark.parametrize("command", ["eval", "score"])
def test_an_evaluation_into_a_held_folder_is_refused_and_each_one_releases_it(
    checkpoint, tmp_path, monkeypatch, command
):
    """Another process evaluating into the folder (hopose eval or score) holds eval.lock, an
    flock the system releases when that process dies: a second one is refused in one line,
    writing nothing. One that fails (a full disk at metrics.json) releases it, as one that
    finishes does: the reruns write the folder."""
    out = tmp_path / "out"
    out.mkdir()
    with (out / "eval.lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ValueError) as refused:
            _evaluation(command, checkpoint, tmp_path, out)
    assert str(refused.value) == _refused(out)
    assert [path.name for path in out.iterdir()] == ["eval.lock"]

    def full_disk(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with monkeypatch.context() as patched:
        patched.setattr(evaluate, "write_text", full_disk)  # metrics.json's writer
        with pytest.raises(OSError, match="No space left"):
            _evaluation(command, checkpoint, tmp_path, out)
    assert not (out / "metrics.json").exists()
    first = _evaluation(command, checkpoint, tmp_path, out)
    assert _evaluation(command, checkpoint, tmp_path, out) == first
    assert json.loads((out / "metrics.json").read_text())["n"] == 2


def test_an_evaluation_started_during_anothers_inference_leaves_the_folder_to_it(
    checkpoint, tmp_path, monkeypatch
):
    """Two `hopose eval --out SAME` at once left one checkpoint's metrics.json beside the
    other's predictions.npz and per_frame.csv, both exiting 0: the second, started while the
    first predicts, is refused before its inference, and the folder holds the first's files
    alone, as an evaluation run alone writes them."""
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=2)
    alone = evaluate.run_eval(checkpoint, data, "test", tmp_path / "alone", gt_2d=True)
    out, refusals = tmp_path / "out", []
    predict = evaluate.predict_split

    def predict_while_another_starts(*args, **kwargs):
        monkeypatch.setattr(evaluate, "predict_split", predict)
        try:
            evaluate.run_eval(checkpoint, data, "test", out, gt_2d=True, per_frame=True)
        except ValueError as error:
            refusals.append(str(error))
        return predict(*args, **kwargs)

    monkeypatch.setattr(evaluate, "predict_split", predict_while_another_starts)
    assert evaluate.run_eval(checkpoint, data, "test", out, gt_2d=True) == alone
    assert refusals == [_refused(out)]
    assert (out / "per_frame.csv").read_text() == (tmp_path / "alone" / "per_frame.csv").read_text()
    with (
        np.load(out / "predictions.npz") as mine,
        np.load(tmp_path / "alone" / "predictions.npz") as own,
    ):
        assert sorted(mine) == sorted(own)
        for key in own:
            np.testing.assert_array_equal(mine[key], own[key])


def test_metrics_json_of_a_whole_frame_model_describes_no_self_crop(checkpoint, tmp_path):
    """Without self-cropping, metrics.json says so: 0 crops, and no margin or views (null),
    rather than the defaults of a self-crop that never ran."""
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=2)
    summary = evaluate.run_eval(checkpoint, data, "test", tmp_path, gt_2d=True, report=False)
    written = json.loads((tmp_path / "metrics.json").read_text())
    described = ("self_crop", "self_crop_margin", "self_crop_views", "refined", "grasp_completed")
    assert [written[key] for key in described] == [0, None, None, False, False]
    assert (written["dataset"], written["split"], written["checkpoint"]) == (
        "synthetic",
        "test",
        str(checkpoint),
    )
    # Every option of the synthetic data, at its default (the checkpoint's jitter dropped).
    assert (
        written.pop("options")
        == summary.pop("options")
        == {
            "free_fraction": 0.2,
            "focal_scale": 1.0,
        }
    )
    assert written == pytest.approx(summary, nan_ok=True)


def test_metrics_json_records_what_reads_the_same_frames_and_what_computed_them(
    checkpoint, tmp_path
):
    """metrics.json holds what reproduces the evaluation: synthetic data's seed, the frames
    asked for, where they were read from, the network's image size, and the versions of hopose
    and torch and the device the network ran on."""
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=2)
    evaluate.run_eval(checkpoint, data, "test", tmp_path, gt_2d=True, report=False, device="cpu")
    written = json.loads((tmp_path / "metrics.json").read_text())
    reproduces = ("seed", "num", "root", "cache", "image_size")
    assert [written[key] for key in reproduces] == [3, 2, None, None, 32]
    computed = ("hopose_version", "torch_version", "device")
    assert [written[key] for key in computed] == [hopose.__version__, torch.__version__, "cpu"]


def _no_figures(monkeypatch) -> None:
    """Reports without their figures, drawn nor saved: the slow part of a report, which the
    tests of its tables and of metrics.json do not read."""
    for name in ("pck_figure", "gallery_figure", "contacts_figure", "save_figure"):
        monkeypatch.setattr(viz, name, lambda *args, **kwargs: None)


def test_metrics_json_records_its_inputs_resolved_and_score_carries_them_over(
    checkpoint, tmp_path, monkeypatch
):
    """Paths given relative to the working folder (checkpoint, root, cache) are recorded
    resolved, so metrics.json still names its inputs when read from another folder; hopose
    score carries the frames' root and cache over, and names the file it scored resolved."""
    records = RecordList([SyntheticHandObject(2, 0, image_size=32)[i] for i in range(2)])
    monkeypatch.setattr(evaluate, "build_split", lambda data, split, with_images: records)
    _no_figures(monkeypatch)  # hopose score's report: its tables alone
    monkeypatch.chdir(tmp_path)
    shutil.copy(checkpoint, tmp_path / "model.pt")
    data = evaluate.eval_data_config(
        "model.pt", name="synthetic", root="data/raw", cache="data/cache", num=2
    )
    evaluate.run_eval("model.pt", data, "test", "eval", gt_2d=True, report=False)
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    recorded = [written[key] for key in ("checkpoint", "root", "cache")]
    here = tmp_path.resolve()
    assert recorded == [str(here / "model.pt"), str(here / "data/raw"), str(here / "data/cache")]
    scored = evaluate.score_file("eval/predictions.npz", "score", plausibility=False)
    assert [scored["root"], scored["cache"]] == recorded[1:]
    assert scored["scored"] == str(here / "eval" / "predictions.npz")


@pytest.mark.parametrize("gt_2d", [False, True], ids=["images", "gt_2d"])
def test_score_of_an_evaluations_own_predictions_reproduces_its_metrics(
    checkpoint, tmp_path, monkeypatch, gt_2d
):
    """hopose score on the predictions.npz of an evaluation gives its very scores (after
    --gt-2d, no 2D error, as the evaluation scores none, not 0 px), and carries over the
    description of its frames (not of its network)."""
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: None)
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=2)
    summary = evaluate.run_eval(
        checkpoint, data, "test", tmp_path / "eval", gt_2d=gt_2d, report=False, plausibility=True
    )
    path = tmp_path / "eval" / "predictions.npz"
    scored = evaluate.score_file(path, tmp_path / "score")
    assert ("hand_kp2d_mean_px" in scored) == (not gt_2d)
    np.testing.assert_equal(
        {key: scored[key] for key in SCORE_KEYS if key in scored},
        {key: summary[key] for key in SCORE_KEYS if key in summary},
    )
    assert scored["pred_grasp_epsilon"] == summary["pred_grasp_epsilon"]  # plausibility scored
    assert {key: scored[key] for key in evaluate.FRAME_KEYS} == {
        key: summary[key] for key in evaluate.FRAME_KEYS
    }
    # Named, not only through FRAME_KEYS: without it a re-scored evaluation of part of a split
    # (frames skipped) would be read as the whole one, comparable to the paper's tables. (None
    # here: synthetic frames are drawn, no split on disk to be whole.)
    assert scored["whole_split"] == summary["whole_split"]
    assert scored["scored"] == str(path) and "checkpoint" not in scored
    assert "device" not in scored
    written = json.loads((tmp_path / "score" / "metrics.json").read_text())
    np.testing.assert_equal(written, scored)
    assert (tmp_path / "score" / "per_frame.csv").is_file()
    report = (tmp_path / "score" / "report.md").read_text()
    assert f"predictions scored from {path}" in report


@pytest.mark.parametrize(
    ("file", "order", "beside", "whole"),
    [
        ("predictions.npz", [0, 1, 2, 3], True, True),  # the evaluation's own file
        ("mine.npz", [3, 1, 0, 2], True, True),  # its frames in another order
        ("mine.npz", [0, 1, 2], True, False),  # a method that failed on frame f3
        ("mine.npz", [0, 1, 2, 2], True, False),  # as many frames, f3 missing
        ("mine.npz", [0, 1, 2, 3], False, True),  # no predictions.npz beside: n alone
        ("mine.npz", [0, 1, 2], False, False),
    ],
)
def test_score_carries_whole_split_only_for_the_frames_the_evaluation_scored(
    tmp_path, file, order, beside, whole
):
    """A file of some of a whole split's frames took the evaluation's whole_split: true, and
    the report and hopose compare --paper set the paper's Table 1 beside it. Its frames must
    be those the evaluation scored: n of them, and the ids of its predictions.npz."""
    run = tmp_path / "eval"
    run.mkdir()
    predictions = _predictions(4)
    if beside:
        np.savez(run / "predictions.npz", **predictions)
    np.savez(run / file, **{key: value[order] for key, value in predictions.items()})
    description = {"dataset": "fpha", "split": "test", "protocol": "image", "whole_split": True}
    (run / "metrics.json").write_text(json.dumps({"n": 4, **description}))
    scored = evaluate.score_file(run / file, tmp_path / "score", plausibility=False)
    assert scored["whole_split"] is whole
    assert scored["n"] == len(order)


def test_score_refuses_an_out_holding_another_evaluations_predictions(tmp_path):
    """hopose score --out <another evaluation's folder> deleted its predictions.npz (and its
    report) without a word; it is refused, naming the folder, and the folder left as it was.
    (--out the file's own folder is refused too: test_cli's
    test_score_refuses_the_folder_of_the_evaluation_it_reads.)"""
    path = tmp_path / "mine" / "predictions.npz"
    path.parent.mkdir()
    np.savez(path, **_predictions())
    other = tmp_path / "other"
    other.mkdir()
    for name in ("predictions.npz", "metrics.json", "report.md"):
        (other / name).write_text(f"another evaluation's {name}")
    with pytest.raises(ValueError) as error:
        evaluate.score_file(path, other, plausibility=False)
    assert str(error.value) == (
        f"--out: {other} holds another evaluation's predictions.npz, which would be deleted "
        "with its files; choose another folder"
    )
    for name in ("predictions.npz", "metrics.json", "report.md"):
        assert (other / name).read_text() == f"another evaluation's {name}"


@pytest.mark.parametrize("key", ["K", "orig_K"])
@pytest.mark.parametrize("value", [np.inf, np.nan], ids=["inf", "nan"])
def test_a_camera_that_is_not_finite_is_refused_naming_the_file_array_and_frame(
    tmp_path, key, value
):
    """An inf in K was an OverflowError traceback when hopose score sized the gallery's canvas,
    a NaN "cannot convert float NaN to integer", neither naming the file; orig_K's went into
    the object's 2D error."""
    predictions = _predictions()
    predictions[key][2, 0, 2] = value
    path = tmp_path / "predictions.npz"
    np.savez(path, **predictions)
    with pytest.raises(ValueError) as error:
        evaluate.read_predictions(path)
    assert str(error.value) == f"{path}: '{key}' is not finite (NaN or inf) in frame 2 (id 'f2')"


def test_a_predictions_npz_that_is_no_file_is_refused_as_a_photo_or_checkpoint_is(tmp_path):
    """One rule for an input that is not a file (hopose.files.require_file): a folder (an
    evaluation's own, where the file is) is named as one, a missing file as not found."""
    with pytest.raises(IsADirectoryError) as error:
        evaluate.read_predictions(tmp_path)
    assert str(error.value) == f"{tmp_path}: a directory; give the predictions.npz file"
    with pytest.raises(FileNotFoundError) as error:
        evaluate.read_predictions(tmp_path / "predictions.npz")
    assert str(error.value) == f"predictions.npz not found: {tmp_path / 'predictions.npz'}"


def test_every_entry_score_carries_over_is_checked_when_read():
    """hopose score carries FRAME_KEYS over from the metrics.json beside the file, computing
    with them: read_summary checks each one's type (SUMMARY_ENTRIES) before --out is cleared,
    so an entry added to one list needs its check in the other."""
    assert set(evaluate.FRAME_KEYS) <= set(SUMMARY_ENTRIES)


def test_a_report_written_again_from_a_gt_2d_run_folder_is_the_one_eval_wrote(
    checkpoint, tmp_path, monkeypatch
):
    """docs/evaluation.md's route, write_report from an evaluation's predictions.npz and
    metrics.json, gives its very per_frame.csv and report.md. After --gt-2d it scored the 2D the
    lifter was fed (a 0 px error) and named the protocol "synthetic"; each now comes from the
    summary, as hopose eval's. Nor does it score the plausibility that --no-plausibility left
    out."""
    _no_figures(monkeypatch)
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=2)
    for run, plausibility in (("run", True), ("bare", False)):
        evaluate.run_eval(
            checkpoint, data, "test", tmp_path / run, gt_2d=True, plausibility=plausibility
        )
        predictions = dict(np.load(tmp_path / run / "predictions.npz"))
        summary = read_summary(tmp_path / run)
        again_dir = tmp_path / f"{run}_again"
        write_report(again_dir, predictions, summary, image_size=summary["image_size"])
        for name in ("per_frame.csv", "report.md"):
            again, written = again_dir / name, tmp_path / run / name
            assert again.read_text() == written.read_text(), (run, name)
        table = (again_dir / "per_frame.csv").read_text()
        assert "hand_kp2d_px" not in table
        assert ("pred_valid_contacts" in table) is plausibility
    protocol = "Protocol: **synthetic test split, ground-truth 2D to the lifter**"
    assert protocol in (tmp_path / "run_again" / "report.md").read_text()


def test_the_ground_truth_scored_as_predictions_is_0_mm_off(tmp_path, monkeypatch):
    """A file whose pred_* arrays are its gt_* ones scores no error anywhere, and every frame
    correct at every threshold; without an evaluation's metrics.json beside it, its frames
    are not described."""
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: None)
    p = _predictions()
    p |= {f"pred_{part}": p[f"gt_{part}"] for part in ("hand_3d", "obj_3d", "hand_2d", "obj_2d")}
    np.savez(tmp_path / "predictions.npz", **p)
    scored = evaluate.score_file(tmp_path / "predictions.npz", tmp_path / "score")
    errors = ("hand_mean_mm", "object_mean_mm", "hand_root_relative_mm", "object_reproj_mean_px")
    errors += ("hand_kp2d_mean_px", "object_kp2d_mean_px")
    assert [scored[key] for key in errors] == pytest.approx([0.0] * len(errors), abs=1e-9)
    # The truth's plausibility is the prediction's: scored from the same poses.
    for name in ("valid_contacts", "penetration_mm", "grasp_epsilon"):
        assert scored[f"pred_{name}"] == scored[f"gt_{name}"], name
    assert scored["hand_auc_0_80"] == scored["object_2d_auc_0_80"] == 1.0
    assert "dataset" not in scored and "protocol" not in scored


def test_an_eval_whose_out_is_a_file_stops_before_its_inference(
    checkpoint, tmp_path, capsys, monkeypatch
):
    """--out a file: the folder was made after the whole inference (and refinement), which the
    error then threw away. It is made first, and the error names it."""

    def no_inference(*args, **kwargs):
        raise AssertionError("the inference ran")

    monkeypatch.setattr(evaluate, "predict_split", no_inference)
    taken = tmp_path / "taken"
    taken.write_text("")
    args = ["eval", str(checkpoint), "--data", "synthetic", "--num", "2", "--out", str(taken)]
    assert main(args) == 1
    (message,) = capsys.readouterr().err.splitlines()
    assert message.startswith("hopose eval: error: [Errno 20] a file is in the way")
    assert str(taken) in message


def test_eval_crop_and_options_reach_the_dataset(checkpoint, tmp_path):
    # --option focal_scale=1.6 zooms the synthetic camera; --crop square crops around hand and
    # box. The square crop changes the pixels and K but not the 3D, so the lifter, which reads
    # rays, predicts exactly what it predicts for the whole frame.
    args = ["eval", str(checkpoint), "--data", "synthetic", "--num", "8", "--gt-2d", "--no-report"]
    runs = {
        "resize": ["--crop", "resize"],
        "square": ["--crop", "square"],
        "zoom": ["--option", "focal_scale=1.6", "--option", "free_fraction=0.5"],
    }
    predictions = {}
    for name, extra in runs.items():
        assert main([*args, *extra, "--out", str(tmp_path / name)]) == 0
        predictions[name] = dict(np.load(tmp_path / name / "predictions.npz"))
    for name in runs:  # the lifter read ground-truth 2D, whatever the records' crop
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert (metrics["protocol"], metrics["crop"]) == (
            "gt_2d",
            "square" if name == "square" else "resize",
        )
    resize, square, zoom = predictions["resize"], predictions["square"], predictions["zoom"]
    assert not np.allclose(square["K"], resize["K"])
    np.testing.assert_allclose(square["pred_hand_3d"], resize["pred_hand_3d"], atol=1e-3)
    np.testing.assert_allclose(zoom["orig_K"][:, 0, 0], 1.6 * FPHA_COLOR_K[0, 0], rtol=1e-6)
    with pytest.raises(SystemExit):  # argparse's one-line usage error
        main([*args, "--option", "focal_scale", "--out", str(tmp_path / "bad")])


def test_an_fpha_model_is_scored_on_its_own_protocols_test_frames_and_the_report_says_so(
    tmp_path, monkeypatch
):
    """A model trained on FPHA's action split is evaluated on that protocol's test frames
    unless --option says otherwise: the fixture's action test split is open_milk/2, the HOPE-Net
    split's is sequence 3 (docs/datasets.md), whose frames the action model trained on.
    metrics.json and the report name the protocol, and the paper's published Table 1 stands
    beside the run only on the HOPE-Net split's test frames from the images, as it was
    measured (hopose.report.paper_comparable; below), not beside ground-truth 2D there."""
    root = write_fpha(tmp_path / "fpha")
    cfg = load_config(
        CONFIGS / "synthetic" / "end2end.yaml",
        ["data.name=fpha", f"data.root={root}", "data.options={protocol: action}",
         "data.val_split=null", "data.image_size=32", "model.hidden=16", "data.crop=resize",
         "data.options.jitter=false", "loss.w_segmentation=0"],
    )  # fmt: skip
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(
        model_checkpoint(build_model(cfg.model), cfg, trained=("encoder", "lifter")), checkpoint
    )
    args = ["eval", str(checkpoint), "--data", "fpha", "--root", str(root), "--gt-2d"]
    args.append("--no-plausibility")  # the report without its slowest parts: the hulls...
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: None)  # ...and the figures
    hope = ["--option", "protocol=hope"]
    for name, extra in (("action", []), ("hope", hope)):
        assert main([*args, *extra, "--out", str(tmp_path / name)]) == 0
    sequences = {}
    for name in ("action", "hope"):
        ids = np.load(tmp_path / name / "predictions.npz")["id"]
        sequences[name] = sorted({frame.rsplit("/", 1)[0] for frame in ids})
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["options"] == {"protocol": name, "margin": 0.2, "on_error": "raise"}
        assert metrics["whole_split"] is True  # no --num: every test frame of the protocol
    assert sequences == {
        "action": ["fpha/Subject_1/open_milk/2"],  # close_milk/4 is excluded (its fixture)
        "hope": ["fpha/Subject_1/open_milk/3"],
    }
    # The first of the HOPE-Net split's 2 test frames, read into memory as --gt-2d reads them.
    assert main([*args, *hope, "--num", "1", "--out", str(tmp_path / "first")]) == 0
    first = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert (first["num"], first["n"], first["whole_split"]) == (1, 1, False)
    # The report's groups read the loader's ids: the HOPE-Net split's two frames of sequence
    # 3 are Subject_1's, of open_milk.
    with (tmp_path / "hope" / "per_group.csv").open() as file:
        groups = [(row["key"], row["group"], row["frames"]) for row in csv.DictReader(file)]
    assert groups == [("subject", "Subject_1", "2"), ("action", "open_milk", "2")]
    action = (tmp_path / "action" / "report.md").read_text()
    assert "Protocol: **fpha test split (protocol=action), ground-truth 2D" in action
    assert "12.53" not in action and "Published in the paper" not in action
    hope_report = (tmp_path / "hope" / "report.md").read_text()
    assert "Protocol: **fpha test split, ground-truth 2D" in hope_report  # the default protocol
    # The paper's Table 1 is from the images: not beside ground-truth 2D, even on its frames.
    assert "12.53" not in hope_report and "Published in the paper" not in hope_report


def test_the_reports_paper_columns_follow_the_runs_protocol(tmp_path, monkeypatch):
    """write_scores sets the paper's Table 1 beside a run by its summary
    (hopose.report.paper_comparable): beside FPHA's HOPE-Net test split from the images, not
    beside the same frames fed ground-truth 2D, nor beside the first frames of that split
    alone (--num), where the report says why."""
    _no_figures(monkeypatch)
    frames = {"dataset": "fpha", "split": "test", "options": {"protocol": "hope"}, "crop": "resize"}
    # _predictions: every joint 5 mm off, the box exact.
    row = "| Hand pose error (mm) | 15.81 | 15.04 | 12.53 | 5.00 |"
    partial = "this run, which asked for the first 4 frames of the test split (`--num 4`), not all"
    for protocol, num, shown in (
        ("image", None, True),
        ("gt_2d", None, False),
        ("image", 4, False),
    ):
        out = tmp_path / f"{protocol}_{num}"
        description = {**frames, "protocol": protocol, "num": num}
        evaluate.clear_evaluation(out)
        evaluate.write_scores(
            out, _predictions(), description, plausibility=False, report=True, image_size=1000
        )
        text = (out / "report.md").read_text()
        assert (row in text) == shown, (protocol, num)
        assert (partial in text) == (num is not None), (protocol, num)


def test_eval_reads_a_checkpoints_loader_options_and_test_split_not_its_sample_options(tmp_path):
    """On the dataset it was trained on, an evaluation takes the checkpoint's loader options
    (HO-3D's version) and test split (HO-3D's evaluation), not its crops' margin, on_error or
    jitter, nor synthetic data's camera; given ones win, and another dataset inherits none and
    reads its own test split."""
    small = ["data.image_size=32", "model.hidden=16"]
    trained = {
        "ho3d": [
            "data.name=ho3d", "data.root=ho3d", "data.val_split=null",
            "data.test_split=evaluation", "loss.w_segmentation=0",
            "data.options={version: v2, margin: 0.3, on_error: skip, jitter: true}",
        ],
        "synthetic": ["data.options={focal_scale: 1.6, free_fraction: 0.5, jitter: true}"],
    }  # fmt: skip
    checkpoints = {}
    for name, overrides in trained.items():
        cfg = load_config(CONFIGS / "synthetic" / "end2end.yaml", [*small, *overrides])
        checkpoints[name] = tmp_path / f"{name}.pt"
        model = build_model(cfg.model)
        save_checkpoint(model_checkpoint(model, cfg, trained=("lifter",)), checkpoints[name])
    data = evaluate.eval_data_config(checkpoints["ho3d"], name="ho3d", root="ho3d")
    assert (data.options, data.test_split) == ({"version": "v2"}, "evaluation")
    data = evaluate.eval_data_config(
        checkpoints["ho3d"], name="ho3d", root="ho3d", split="train", options={"version": "v3"}
    )
    assert (data.options, data.test_split) == ({"version": "v3"}, "train")
    data = evaluate.eval_data_config(checkpoints["ho3d"], name="dexycb", root="dexycb")
    assert (data.options, data.test_split) == ({}, "test")
    data = evaluate.eval_data_config(checkpoints["synthetic"], name="synthetic", num=2)
    assert (data.options, data.test_split) == ({}, "test")
    # Another dataset's checkpoint on HO-3D reads its test frames, the evaluation split: it was
    # refused as "split: HO-3D has ('train', 'evaluation'), got 'test'", a split never asked.
    data = evaluate.eval_data_config(checkpoints["synthetic"], name="ho3d", root="ho3d")
    assert (data.options, data.test_split) == ({}, "evaluation")


def test_predictions_say_which_frames_a_left_hand_shows_mirrored(checkpoint, tmp_path):
    """A left hand's frame is scored as its mirror image, a right hand: predictions.npz says
    so (side "left"), so that its arrays can be mirrored back. The fixture's left wrist lies at
    x = 0 m and its joint 20 at x = 0.004 * 20 = 0.08 m: in the file, -80 mm."""
    root = tmp_path / "dexycb"
    write_dexycb(root, sides="left")
    args = ["eval", str(checkpoint), "--data", "dexycb", "--root", str(root), "--split", "val"]
    assert main([*args, "--gt-2d", "--no-report", "--out", str(tmp_path / "e")]) == 0
    predictions = np.load(tmp_path / "e" / "predictions.npz")
    assert list(predictions["side"]) == ["left"]
    assert predictions["gt_hand_3d"][0, 20, 0] == pytest.approx(-80.0, abs=1e-3)


def test_eval_from_square_crops_is_labelled_the_ground_truth_box_protocol(
    checkpoint, tmp_path, monkeypatch
):
    # The checkpoint reads whole frames; --crop square gives it squares cut around the true
    # hand and box, which ground truth places: it was labelled "from the images (square)".
    # The report's figures are the slow part: the label it would get is caught instead.
    labels = []

    def label(out_dir, predictions, summary, **kwargs):
        labels.append(describe_run(summary))

    monkeypatch.setattr(evaluate, "write_report", label)
    data = evaluate.eval_data_config(checkpoint, name="synthetic", num=2, crop="square")
    summary = evaluate.run_eval(checkpoint, data, "test", tmp_path, plausibility=False)
    assert (summary["protocol"], summary["crop"], summary["self_crop"]) == ("gt_box", "square", 0)
    assert json.loads((tmp_path / "metrics.json").read_text())["protocol"] == "gt_box"
    assert labels == [
        "synthetic test split, from ground-truth-box crops (squares around the true hand and box)"
    ]


def test_a_gallery_without_images_is_drawn_on_a_canvas_of_the_records_size(
    checkpoint, tmp_path, monkeypatch
):
    # --gt-2d reads no image: the canvas was twice K's principal point, which a square crop
    # places anywhere (even below 0), cutting the panels; the records are 32 px squares.
    sizes, gallery_figure = [], viz.gallery_figure

    def gallery(frames):
        sizes.extend(frame["size"] for frame in frames)
        return gallery_figure(frames)

    monkeypatch.setattr(viz, "gallery_figure", gallery)
    data = evaluate.eval_data_config(checkpoint, name="synthetic", num=4, crop="square")
    evaluate.run_eval(checkpoint, data, "test", tmp_path, gt_2d=True, plausibility=False)
    principal = np.load(tmp_path / "predictions.npz")["K"][:, :2, 2]
    assert not np.allclose(2 * principal, 32)  # the records' K would not have given it
    assert sizes == [(32, 32)] * 3


def test_gt_box_refuses_a_crop_it_would_not_use(checkpoint, tmp_path, capsys):
    # --gt-box reads squares around the true hand and box: --crop resize was replaced by square
    # without a word.
    out = tmp_path / "e"
    args = ["eval", str(checkpoint), "--data", "synthetic", "--num", "2", "--gt-box"]
    assert main([*args, "--crop", "resize", "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        "hopose eval: error: --crop resize: --gt-box reads square crops around the true hand "
        "and box; drop --crop or give --crop square\n"
    )
    assert not out.exists()


@pytest.mark.parametrize("complete_grasp", [False, True], ids=["refine", "complete_grasp"])
def test_run_eval_refine_scores_the_refined_poses_and_keeps_the_unrefined(
    checkpoint, tmp_path, complete_grasp
):
    # From the images (the checkpoint reads whole frames), refined with the image weights, with
    # and without the grasp completion: metrics.json's scores are those of the refined poses,
    # its "unrefined" those of the network's own, which predictions.npz keeps beside them.
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=4)
    metrics = evaluate.run_eval(
        checkpoint, data, "test", tmp_path, report=False, plausibility=True, refine=True,
        complete_grasp=complete_grasp,
    )  # fmt: skip
    assert metrics["refined"] is True and metrics["grasp_completed"] is complete_grasp
    predictions = dict(np.load(tmp_path / "predictions.npz"))
    raw = {
        **predictions,
        "pred_hand_3d": predictions["unrefined_hand_3d"],
        "pred_obj_3d": predictions["unrefined_obj_3d"],
    }
    unrefined, refined = score(raw), score(predictions)
    assert set(metrics["unrefined"]) == set(unrefined)
    for key, value in unrefined.items():
        assert metrics["unrefined"][key] == pytest.approx(value), key
        assert metrics[key] == pytest.approx(refined[key]), key
    # The refined poses are the network's refined with the image weights (and the completion).
    weights = refine_weights(from_images=True, complete_grasp=complete_grasp)
    again = refine_predictions(raw, weights)
    for key in ("pred_hand_3d", "pred_obj_3d"):
        np.testing.assert_allclose(predictions[key], again[key], atol=1e-4)
    # The untrained network's corners are no box (0.86 mm from the nearest cuboid on average
    # with the tiny configs' two-stage encoder); the refined ones are an exact cuboid. Its
    # boxes touch no joint; the completion puts them in the hands' grips, in contact.
    assert metrics["unrefined"]["pred_cuboid_mm"] > 0.1
    assert metrics["pred_cuboid_mm"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["unrefined"]["pred_valid_contacts"] == 0
    if complete_grasp:
        assert metrics["pred_valid_contacts"] >= 2


def test_a_refined_gt_2d_run_scores_no_2d_error_before_or_after(checkpoint, tmp_path):
    # Fed the true 2D, neither the refined poses nor the unrefined ones beside them have a 2D
    # error of their own: scoring the 2D the lifter read would say 0 px in both.
    data = evaluate.eval_data_config(checkpoint, name="synthetic", seed=3, num=4)
    metrics = evaluate.run_eval(
        checkpoint, data, "test", tmp_path, gt_2d=True, report=False, refine=True
    )
    predictions = dict(np.load(tmp_path / "predictions.npz"))
    assert np.array_equal(predictions["pred_hand_2d"], predictions["gt_hand_2d"])
    raw = {**predictions, "pred_hand_3d": predictions["unrefined_hand_3d"]}
    raw["pred_obj_3d"] = predictions["unrefined_obj_3d"]
    for scores, poses in ((metrics, predictions), (metrics["unrefined"], raw)):
        assert "hand_kp2d_mean_px" not in scores and "object_kp2d_mean_px" not in scores
        assert scores["hand_mean_mm"] == pytest.approx(score(poses)["hand_mean_mm"])


def test_a_checkpoint_of_the_pixel_input_lifter_is_refused(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=False)
    for key in ("lifter.in_mean", "lifter.in_std"):
        del state["model"][key]
    old = tmp_path / "old.pt"
    save_checkpoint(state, old)
    with pytest.raises(CheckpointError, match="retrain it from the lifter stage"):
        load_model(old)


def _predict(checkpoint, images, out, *options) -> list[dict]:
    args = ["predict", str(checkpoint), *map(str, images), *options, "--out", str(out)]
    assert main(args) == 0
    return [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]


def test_predict_feeds_the_network_the_resized_photo_and_scales_2d_back(checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)).save(photo)
    small = tmp_path / "small.png"
    Image.fromarray(rng.integers(0, 255, (50, 70, 4), dtype=np.uint8), mode="RGBA").save(small)
    (result, small_result) = _predict(checkpoint, [photo, small], tmp_path / "out", "--fov", "60")
    # What predict must do, step by step: the whole 160x90 photo (its own working copy, under
    # MAX_SIDE) resized to the 32 px input with pixel centres at integers (warp_image), the
    # camera (f = 80 / tan 30° = 138.56 px, centre ((160 - 1) / 2, (90 - 1) / 2) = (79.5, 44.5))
    # scaled by 32/160 and 32/90, the 2D scaled back by 160/32 = 5 and 90/32 = 2.8125.
    model, _ = load_model(checkpoint)
    model.eval()
    pixels = torch.from_numpy(np.array(Image.open(photo).convert("RGB"))).permute(2, 0, 1)[None]
    resize = torch.diag(torch.tensor([32 / 160, 32 / 90, 1.0], dtype=torch.float64))
    f = 80 / np.tan(np.radians(30))
    K = torch.tensor([[f, 0, 79.5], [0, f, 44.5], [0, 0, 1]], dtype=torch.float64)
    with torch.inference_mode():
        out = model(
            warp_image(pixels, resize[None], 32),
            scale_intrinsics(K, 32 / 160, 32 / 90)[None].float(),
        )
    expected_2d = out["kp2d"][0].double() * torch.tensor([5.0, 2.8125])
    assert result["size"] == [160, 90] and result["camera"]["source"] == "--fov"
    np.testing.assert_allclose(result["camera"]["K"], K.numpy())
    np.testing.assert_allclose(result["hand_2d"], expected_2d[:21].numpy(), rtol=1e-5)
    np.testing.assert_allclose(result["obj_3d"], out["kp3d"][0, 21:].numpy(), rtol=1e-5)
    assert small_result["size"] == [70, 50]
    for item in (result, small_result):
        assert len(item["contacts_3d"]) == len(item["contacts_2d"])
        with Image.open(tmp_path / "out" / item["overlay"]) as overlay:
            assert overlay.size == tuple(item["size"]) and overlay.format == "JPEG"


def _swap_lifter(monkeypatch, lifter: torch.nn.Module) -> None:
    """Make ``hopose predict`` load its checkpoints with ``lifter`` in place of their own."""

    def load_with_lifter(path):
        model, cfg = load_model(path)
        model.lifter = lifter
        return model, cfg

    monkeypatch.setattr(predict, "load_model", load_with_lifter)


class RayLifter(torch.nn.Module):
    """A lifter exact for its camera: every keypoint 500 mm deep on its viewing ray, in the 2D's
    dtype whatever K's, as the ContextLifter (predict gives it a photo's float64 K)."""

    def forward(self, kp2d: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        kp3d = unproject_points(kp2d, kp2d.new_full(kp2d.shape[:-1], 500.0), K.to(kp2d.dtype))
        return {"kp3d_init": kp3d, "kp3d": kp3d}


@pytest.mark.parametrize("camera", [["--fov", "75"], ["--K", "300,280,70,41"]], ids=["fov", "K"])
def test_predicted_3d_projects_through_the_camera_onto_the_2d(
    checkpoint, tmp_path, monkeypatch, camera
):
    _swap_lifter(monkeypatch, RayLifter())
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 160, 3), np.uint8)).save(photo)
    (result,) = _predict(checkpoint, [photo], tmp_path / "out", *camera)
    K = torch.tensor(result["camera"]["K"], dtype=torch.float64)
    if camera[0] == "--K":
        assert K.tolist() == [[300, 0, 70], [0, 280, 41], [0, 0, 1]]
    for part in ("hand", "obj"):
        projected = project_points(torch.tensor(result[f"{part}_3d"], dtype=K.dtype), K)
        np.testing.assert_allclose(projected.numpy(), result[f"{part}_2d"], atol=1e-3)


def test_predict_refine_returns_an_exact_cuboid_and_keeps_the_2d(checkpoint, tmp_path):
    # The untrained network's 8 corners are no box; --refine fits one (cuboid_error ~ 0) and
    # leaves the 2D as the network predicted it.
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (60, 80, 3), np.uint8)).save(photo)
    (plain,) = _predict(checkpoint, [photo], tmp_path / "plain", "--fov", "60")
    (refined,) = _predict(checkpoint, [photo], tmp_path / "refined", "--fov", "60", "--refine")
    assert not plain["refined"] and refined["refined"]
    assert refined["hand_2d"] == plain["hand_2d"]
    before = cuboid_error(torch.tensor(plain["obj_3d"]))
    after = cuboid_error(torch.tensor(refined["obj_3d"]))
    assert before > 0.1 and after < 1e-3  # before: 0.88 mm for this untrained network


class ShrunkBoxLifter(torch.nn.Module):
    """A synthetic grasp's hand holding its box shrunk to a tenth about its centre: no valid
    contact and the box in the palm, the case grasp completion is for."""

    def __init__(self) -> None:
        super().__init__()
        grasps = generate_grasps(0, np.arange(16))
        k = grasps.grasp.index("power")  # a box centred in the palm (a pinch holds its end)
        obj = torch.tensor(grasps.obj_3d[k])
        obj = obj.mean(dim=0) + 0.1 * (obj - obj.mean(dim=0))
        self.pose = torch.cat([torch.tensor(grasps.hand_3d[k]), obj]).float()

    def forward(self, kp2d: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        kp3d = self.pose.expand(len(kp2d), -1, -1)
        return {"kp3d_init": kp3d, "kp3d": kp3d}


def test_predict_complete_grasp_is_the_refinement_with_its_completion(
    checkpoint, tmp_path, monkeypatch
):
    _swap_lifter(monkeypatch, ShrunkBoxLifter())
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (60, 80, 3), np.uint8)).save(photo)
    (plain,) = _predict(checkpoint, [photo], tmp_path / "plain", "--fov", "60")
    (refined,) = _predict(checkpoint, [photo], tmp_path / "refined", "--fov", "60", "--refine")
    args = ("--fov", "60", "--refine", "--complete-grasp")
    (completed,) = _predict(checkpoint, [photo], tmp_path / "completed", *args)
    assert completed["grasp_completed"] and not refined["grasp_completed"]
    # The JSON's 3D is refine_pose with its completion on the network's own prediction...
    hand, obj = refine_pose(
        torch.tensor(plain["hand_3d"])[None],
        torch.tensor(plain["obj_3d"])[None],
        torch.tensor(plain["hand_2d"] + plain["obj_2d"])[None],
        torch.tensor(plain["camera"]["K"])[None],
        refine_weights(from_images=True, complete_grasp=True),
    )
    # To a micrometre: this starts from the JSON's values, predict from its in-memory tensors.
    np.testing.assert_allclose(completed["hand_3d"], hand[0].numpy(), atol=1e-3)
    np.testing.assert_allclose(completed["obj_3d"], obj[0].numpy(), atol=1e-3)
    # ... which grows the shrunk box into the grip, where the refinement alone leaves it small.
    assert len(completed["contacts_3d"]) >= 2 > len(refined["contacts_3d"])


def test_photos_with_the_same_name_keep_their_own_outputs(checkpoint, tmp_path):
    rng = np.random.default_rng(2)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        pixels = rng.integers(0, 255, (40, 60, 3), np.uint8)
        Image.fromarray(pixels).save(tmp_path / folder / "photo.png")
    paths = [tmp_path / "a" / "photo.png", tmp_path / "b" / "photo.png"]
    _predict(checkpoint, paths, tmp_path / "out")
    results = [
        json.loads((tmp_path / "out" / f"{n}.json").read_text()) for n in ("photo", "photo-2")
    ]
    assert [r["image"] for r in results] == [str(p) for p in paths]
    assert [r["overlay"] for r in results] == ["photo_overlay.jpg", "photo-2_overlay.jpg"]
    assert results[0]["hand_2d"] != results[1]["hand_2d"]


def test_exif_camera_and_orientation_reach_the_outputs(checkpoint, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 60x40, shown turned 90°: 40 wide, 60 high
    exif.get_ifd(EXIF_IFD)[FOCAL_LENGTH_35MM] = 52
    Image.new("RGB", (60, 40), "white").save(tmp_path / "p.jpg", exif=exif)
    (result,) = _predict(checkpoint, [tmp_path / "p.jpg"], tmp_path / "out")
    # 52 mm equivalent: f = 52 * hypot(40, 60) / hypot(36, 24) = 52 * 72.11 / 43.27 = 86.67 px.
    assert result["size"] == [40, 60]
    assert result["camera"]["source"] == "exif FocalLengthIn35mmFilm"
    assert result["camera"]["K"][0][0] == pytest.approx(52 * np.hypot(40, 60) / np.hypot(36, 24))


def test_predict_names_a_file_that_is_not_an_image(checkpoint, tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    assert main(["predict", str(checkpoint), str(bad), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.startswith(f"hopose predict: error: {bad}: not a readable image")


def test_predict_finds_every_photo_before_it_writes_one(checkpoint, tmp_path, capsys):
    """A mistyped second photo stops the run before the first is predicted: the error names it,
    and no output of the first is left (the output folder is not even made)."""
    photo, missing, out = tmp_path / "photo.png", tmp_path / "other.png", tmp_path / "out"
    Image.new("RGB", (60, 40), "white").save(photo)
    assert main(["predict", str(checkpoint), str(photo), str(missing), "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"hopose predict: error: image not found: {missing}\n"
    assert not out.exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_predict_on_a_full_disk_names_the_file_and_leaves_no_json(checkpoint, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (60, 40), "white").save(photo)
    out = tmp_path / "out"
    out.mkdir()
    temporary_path(out / "photo.json").symlink_to("/dev/full")  # the JSON's temporary: ENOSPC
    assert main(["predict", str(checkpoint), str(photo), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hopose predict: error: [Errno 28] cannot write (No space left")
    assert str(out / "photo.json") in err and not (out / "photo.json").exists()


def test_eval_of_an_empty_split_is_refused_and_writes_nothing(
    checkpoint, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(evaluate, "build_split", lambda data, split, with_images: [])
    out = tmp_path / "eval"
    args = ["eval", str(checkpoint), "--data", "synthetic", "--num", "8", "--out", str(out)]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        "hopose eval: error: split: synthetic 'test' at seed 0 has no frames to evaluate\n"
    )
    assert not out.exists()


def test_jittered_test_frames_are_refused_and_a_training_configs_jitter_dropped(
    checkpoint, tmp_path, capsys
):
    # The demo and the ablations evaluate with their training config's data, which jitters
    # its square crops: test frames read so would be augmented like training samples.
    out = tmp_path / "eval"
    args = ["eval", str(checkpoint), "--data", "synthetic", "--num", "8", "--crop", "square"]
    for value, reason in (
        (
            "true",
            "True: jittered crops are a training augmentation; an evaluation reads the test "
            "frames without it",
        ),
        ("'false'", "expected true or false, got 'false'"),  # a YAML string, not off
    ):
        assert main([*args, "--gt-2d", "--option", f"jitter={value}", "--out", str(out)]) == 1
        assert capsys.readouterr().err == f"hopose eval: error: data.options.jitter: {reason}\n"
        assert not out.exists()
    cfg = load_config(CONFIGS / "synthetic" / "end2end.yaml", ["data.options.focal_scale=1.5"])
    assert cfg.data.options == {"jitter": True, "focal_scale": 1.5}
    data = evaluate.without_jitter(cfg.data)
    assert data.options == {"focal_scale": 1.5} and (data.crop, data.num_test) == ("square", 400)


class _Oracle(torch.nn.Module):
    """A perfect network for a known batch of frames: their 3D, projected with the view's K."""

    def __init__(self, points: torch.Tensor) -> None:
        super().__init__()
        self.points = points
        self.unused = torch.nn.Parameter(torch.zeros(()))  # predict_split asks for a device

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        kp2d = project_points(self.points, K.to(self.points.dtype))  # in its own dtype, as hopose's
        return {"kp2d_init": kp2d, "kp2d": kp2d, "kp3d_init": self.points, "kp3d": self.points}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_self_cropped_predictions_come_back_in_the_records_pixels(dtype):
    """Whole-frame records of 8 frames, predicted through a whole-frame view and two crops the
    oracle's own 2D places: its 2D, mapped back, is the records' ground truth. A float64
    network's 2D (self_crop keeps the wider dtype) met the records' float32 K and stopped the
    evaluation with a dtype error."""
    dataset = SyntheticHandObject(8, 5, image_size=32)
    gt = [np.concatenate([dataset[i]["hand_3d"], dataset[i]["obj_3d"]]) for i in range(8)]
    oracle = _Oracle(torch.as_tensor(np.stack(gt), dtype=dtype))
    predictions = predict_split(oracle, dataset, cropping=SelfCropping(passes=2), batch_size=8)
    np.testing.assert_allclose(predictions["pred_hand_2d"], predictions["gt_hand_2d"], atol=1e-2)
    np.testing.assert_allclose(predictions["pred_obj_2d"], predictions["gt_obj_2d"], atol=1e-2)


def test_self_cropping_frames_of_two_sizes_sees_each_whole_frame_by_its_own_size():
    """A batch of a 1920 x 1080 frame and a 1080 x 1920 one: each first view is its own whole
    frame (hopose.crop.frame_square), not the first frame's for both. Onto 64 px, s = 64 / 1920
    = 1/30 and the frame's centre is (960, 540) for the first, (540, 960) for the second, so
    A p = p / 30 + (0, 32 - 18) and p / 30 + (32 - 18, 0)."""
    K = torch.tensor([
        [[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]],
        [[1395.7, 0.0, 540.7], [0.0, 1395.7, 935.7], [0.0, 0.0, 1.0]],
    ]).double()  # fmt: skip
    shown = []

    class Views:
        """A renderer of the frames' views (hopose.data.workers.FrameViews) that records the
        maps it is asked for and shows black images."""

        source = SimpleNamespace(image_size=64)  # the dataset it renders: its network image

        def __call__(self, indices, maps):
            shown.append(maps)
            return np.zeros((*maps.shape[:2], 64, 64, 3), np.float32)

    batch = {"orig_K": K, "K": K, "orig_size": torch.tensor([[1920, 1080], [1080, 1920]])}
    points = torch.tensor([0.0, 0.0, 400.0]).double().expand(2, 29, 3)
    evaluate._self_crop_outputs(_Oracle(points).double(), Views(), batch, [0, 1], SelfCropping(1))
    A = np.array([
        [[1 / 30, 0.0, 0.0], [0.0, 1 / 30, 14.0], [0.0, 0.0, 1.0]],
        [[1 / 30, 0.0, 14.0], [0.0, 1 / 30, 0.0], [0.0, 0.0, 1.0]],
    ])  # fmt: skip
    whole, _ = shown  # the whole frame, then the crop its 2D places: one view each
    np.testing.assert_allclose(whole[0], A, atol=1e-12)


def _record_passes(monkeypatch, module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Make ``module``'s ``load_model``, and :mod:`hopose.checkpoint`'s (the one ``hopose eval``
    reads its checkpoint with, for run_eval too), return a model that records, for each forward
    pass, the K it was given and the 2D it predicted (float64 copies)."""
    passes = []

    def record(model, args, out):
        passes.append((args[1].double().clone(), out["kp2d"].double().clone()))

    def load_and_record(path, **kwargs):
        model, cfg = load_model(path, **kwargs)
        model.register_forward_hook(record)
        return model, cfg

    monkeypatch.setattr(module, "load_model", load_and_record)
    monkeypatch.setattr(checkpoint_module, "load_model", load_and_record)
    return passes


def _check_self_crops(passes, frame_K: torch.Tensor, frame_size: tuple[int, int], margin: float):
    """Each pass's view is the square around the previous pass's 2D (mapped back to the frame)
    with ``margin``; the first is the whole frame. A view's K is its affine map @ the frame's
    K, so the map is that K @ frame K^-1."""
    A = [K @ torch.linalg.inv(frame_K) for K, _ in passes]
    first = crop_affine(*frame_square(frame_size, frame_K), 32).expand_as(A[0])
    torch.testing.assert_close(A[0], first, rtol=1e-4, atol=1e-4)
    for k in range(1, len(passes)):
        frame_2d = apply_affine(torch.linalg.inv(A[k - 1]), passes[k - 1][1])
        expected = crop_affine(*square_around(frame_2d, margin), 32)
        torch.testing.assert_close(A[k], expected, rtol=1e-4, atol=1e-4)


def test_gt_box_reads_a_crop_trained_model_through_ground_truth_squares(tmp_path, monkeypatch):
    # Without the flag this model self-crops (3 passes a frame); with it, one pass on the square
    # ground truth places around hand and box, labelled as that protocol, whose K is the
    # records' own: the square K of the ground-truth crop.
    cfg = load_config(
        CONFIGS / "synthetic" / "end2end.yaml",
        ["data.image_size=32", "model.hidden=16", "data.crop=square",
         "model.head=heatmap", "data.self_crop=2"],
    )  # fmt: skip
    path = tmp_path / "model.pt"
    save_checkpoint(
        model_checkpoint(build_model(cfg.model), cfg, trained=("encoder", "lifter")), path
    )
    passes = _record_passes(monkeypatch, evaluate)
    args = ["eval", str(path), "--data", "synthetic", "--num", "4", "--no-report"]
    assert main([*args, "--gt-box", "--out", str(tmp_path / "box")]) == 0
    metrics = json.loads((tmp_path / "box" / "metrics.json").read_text())
    assert (metrics["protocol"], metrics["crop"], metrics["self_crop"]) == ("gt_box", "square", 0)
    assert len(passes) == 1
    records = SyntheticHandObject(4, synthetic_split_seed(0, "test"), image_size=32, crop="square")
    expected = torch.from_numpy(np.stack([records[i]["K"] for i in range(4)]))
    torch.testing.assert_close(passes[0][0], expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(SystemExit):  # argparse: the two protocols exclude each other
        main([*args, "--gt-box", "--gt-2d", "--out", str(tmp_path / "both")])


def test_self_cropping_from_cached_records_is_refused_naming_the_cache(
    tmp_path, monkeypatch, capsys
):
    # A prepared cache holds network images, not the whole frames the self-crops are cut from.
    cfg = load_config(
        CONFIGS / "synthetic" / "end2end.yaml",
        ["data.image_size=32", "model.hidden=16", "data.crop=square",
         "model.head=heatmap"],
    )  # fmt: skip
    path = tmp_path / "model.pt"
    save_checkpoint(
        model_checkpoint(build_model(cfg.model), cfg, trained=("encoder", "lifter")), path
    )
    records = RecordList([SyntheticHandObject(2, 0, image_size=32)[i] for i in range(2)])
    monkeypatch.setattr(evaluate, "build_split", lambda data, split, with_images: records)
    cache = tmp_path / "cache"
    args = ["eval", str(path), "--data", "synthetic", "--cache", str(cache)]
    assert main([*args, "--out", str(tmp_path / "e")]) == 1
    assert capsys.readouterr().err.startswith(
        f"hopose eval: error: {cache}: self-cropping from images cuts its views from whole frames"
    )


def _crop_trained_model(tmp_path, self_crop: int, turn: float = 0.0, shift: float = 0.0) -> Path:
    """An untrained small model saved as one trained on square crops, self-cropping
    ``self_crop`` times at margin 0.3, the last averaged over the views of ``turn`` and
    ``shift`` (:class:`hopose.self_crop.CropViews`)."""
    cfg = load_config(
        CONFIGS / "synthetic" / "end2end.yaml",
        ["data.image_size=32", "model.hidden=16", "data.crop=square",
         "model.head=heatmap", f"data.self_crop={self_crop}", "data.self_crop_margin=0.3",
         f"data.self_crop_turn={turn}", f"data.self_crop_shift={shift}"],
    )  # fmt: skip
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    save_checkpoint(
        model_checkpoint(build_model(cfg.model), cfg, trained=("encoder", "lifter")), path
    )
    return path


def test_eval_and_predict_of_a_crop_trained_model_self_crop(tmp_path, monkeypatch):
    path = _crop_trained_model(tmp_path, self_crop=3)
    passes = _record_passes(monkeypatch, evaluate)
    args = ["eval", str(path), "--data", "synthetic", "--num", "4", "--out", str(tmp_path / "e")]
    assert main([*args, "--no-report"]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert (metrics["self_crop"], metrics["self_crop_margin"]) == (3, 0.3)
    # The 4 frames in one batch: the whole-frame pass and 3 crops, each placed by the 2D of
    # the pass before with the trained margin 0.3; the returned 2D is the last pass's, mapped
    # from its view (K_last) into the records' image (K). Seen back in that view (K_last @
    # K^-1), where the untrained heat maps put every keypoint near the centre of a crop a few
    # frame pixels wide, they are the model's own to float32 precision.
    assert len(passes) == 4
    predictions = dict(np.load(tmp_path / "e" / "predictions.npz"))
    frame_K = torch.from_numpy(predictions["orig_K"]).double()
    frame_size = tuple(int(v) for v in predictions["orig_size"][0])
    _check_self_crops(passes, frame_K, frame_size, 0.3)
    K_last, kp2d_last = passes[-1]
    to_view = K_last @ torch.linalg.inv(torch.from_numpy(predictions["K"]).double())
    pred_2d = torch.from_numpy(predictions["pred_hand_2d"]).double()
    np.testing.assert_allclose(
        apply_affine(to_view, pred_2d).numpy(), kp2d_last[:, :21].numpy(), atol=1e-2
    )

    # predict: one photo, again a whole-photo pass and 3 crops.
    passes = _record_passes(monkeypatch, predict)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((1080, 1920, 3), dtype=np.uint8)).save(photo)
    assert main(["predict", str(path), str(photo), "--out", str(tmp_path / "p")]) == 0
    result = json.loads((tmp_path / "p" / "photo.json").read_text())
    assert len(passes) == 4
    photo_K = torch.tensor(result["camera"]["K"], dtype=torch.float64)[None]
    _check_self_crops(passes, photo_K, (1920, 1080), 0.3)
    K_last, kp2d_last = passes[-1]
    to_photo = photo_K @ torch.linalg.inv(K_last)
    np.testing.assert_allclose(
        result["hand_2d"], apply_affine(to_photo, kp2d_last)[0, :21].numpy(), atol=1e-3
    )


def test_a_self_cropping_eval_reads_whole_frame_records(tmp_path):
    """A model trained on crops self-crops its test frames from records of the whole frame
    (crop "resize"), never from squares that ground truth places, whatever it was trained on;
    metrics.json says so and predictions.npz holds the whole frame's resized K."""
    path = _crop_trained_model(tmp_path, self_crop=1)
    data = evaluate.eval_data_config(path, name="synthetic", num=2)
    assert data.crop == "square"  # the training crop, which self-cropping replaces
    metrics = evaluate.run_eval(path, data, "test", tmp_path / "e", report=False)
    assert (metrics["crop"], metrics["self_crop"], metrics["protocol"]) == ("resize", 1, "image")
    predictions = dict(np.load(tmp_path / "e" / "predictions.npz"))
    # The whole W x H frame resized to 32 x 32: K scaled by (32 / W, 32 / H).
    (width, height), orig_K = predictions["orig_size"][0], torch.from_numpy(predictions["orig_K"])
    expected = scale_intrinsics(orig_K, 32 / float(width), 32 / float(height)).numpy()
    np.testing.assert_allclose(predictions["K"], expected, rtol=1e-6)


def test_eval_and_predict_average_the_test_time_views_unless_asked_for_one(
    tmp_path, monkeypatch, capsys
):
    # One crop whose square is also turned by ±10° and shifted by ±5% of its side: 7 views
    # after the whole-frame pass, each a map of the square (CropViews.affines), read in one
    # forward pass view by view (7 × 2 images), and the predicted 2D their mean, mapped into
    # the records' image; --single-view: 1 view.
    path = _crop_trained_model(tmp_path, self_crop=1, turn=10.0, shift=0.05)
    passes = _record_passes(monkeypatch, evaluate)
    args = ["eval", str(path), "--data", "synthetic", "--num", "2", "--no-report"]
    assert main([*args, "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert (metrics["self_crop"], metrics["self_crop_views"]) == (1, 7)
    assert [len(K) for K, _ in passes] == [2, 7 * 2]
    predictions = dict(np.load(tmp_path / "e" / "predictions.npz"))
    frame_K = torch.from_numpy(predictions["orig_K"]).double()
    first = passes[0][0] @ torch.linalg.inv(frame_K)  # (2, 3, 3) the whole frame's view
    views_K, views_2d = (value.unflatten(0, (7, 2)) for value in passes[1])
    maps = views_K @ torch.linalg.inv(frame_K)  # (7, 2, 3, 3)
    frame_2d = apply_affine(torch.linalg.inv(first), passes[0][1])
    expected = CropViews(10.0, 0.05).affines(*square_around(frame_2d, 0.3), 32)
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-4)
    mean = apply_affine(torch.linalg.inv(maps), views_2d).mean(0)  # (2, 29, 2) frame pixels
    to_record = torch.from_numpy(predictions["K"]).double() @ torch.linalg.inv(frame_K)
    np.testing.assert_allclose(
        predictions["pred_obj_2d"], apply_affine(to_record, mean)[:, 21:].numpy(), atol=1e-3
    )

    passes.clear()
    assert main([*args, "--single-view", "--out", str(tmp_path / "one")]) == 0
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert (metrics["self_crop"], metrics["self_crop_views"]) == (1, 1)
    assert [len(K) for K, _ in passes] == [2, 2]

    passes = _record_passes(monkeypatch, predict)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((1080, 1920, 3), dtype=np.uint8)).save(photo)
    for extra, views in (([], 7), (["--single-view"], 1)):
        passes.clear()
        out = ["--out", str(tmp_path / "p")]
        assert main(["predict", str(path), str(photo), *extra, *out]) == 0
        assert [len(K) for K, _ in passes] == [1, views]

    capsys.readouterr()
    assert main([*args, "--gt-2d", "--single-view", "--out", str(tmp_path / "refused")]) == 1
    assert capsys.readouterr().err.startswith(
        "hopose eval: error: --single-view: nothing is self-cropped here"
    )


def test_self_cropping_renders_each_view_once_here_or_in_processes(tmp_path, monkeypatch):
    # 4 frames self-cropped once, the crop averaged over 7 views: each frame is rendered
    # 1 (whole frame) + 7 = 8 times, and never as a record's image, which self-cropping does not
    # read; the report's gallery still gets the records' images. --workers 2 renders the views
    # in two processes: the same predictions, to the bit.
    path = _crop_trained_model(tmp_path, self_crop=1, turn=10.0, shift=0.05)
    renders, galleries = [], []
    render = SyntheticHandObject._render

    def counted(self, index, K, **kwargs):
        renders.append(index)
        return render(self, index, K, **kwargs)

    monkeypatch.setattr(SyntheticHandObject, "_render", counted)
    monkeypatch.setattr(
        evaluate, "write_report", lambda *a, dataset, **k: galleries.append(dataset)
    )
    args = ["eval", str(path), "--data", "synthetic", "--num", "4", "--no-plausibility"]
    assert main([*args, "--out", str(tmp_path / "here")]) == 0
    assert sorted(renders) == [i for i in range(4) for _ in range(8)]
    assert galleries[0][2]["image"].shape == (32, 32, 3)
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "processes")]) == 0
    here = np.load(tmp_path / "here" / "predictions.npz")
    processes = np.load(tmp_path / "processes" / "predictions.npz")
    assert here.files == processes.files
    for key in here.files:
        np.testing.assert_array_equal(here[key], processes[key])


def test_a_margin_given_to_eval_and_predict_places_the_self_crops(tmp_path, monkeypatch, capsys):
    # Trained with margin 0.3; --self-crop-margin 0.6 places every crop with 0.6 instead,
    # and is refused, naming it, where nothing is self-cropped or the value is no margin.
    path = _crop_trained_model(tmp_path, self_crop=1)
    passes = _record_passes(monkeypatch, evaluate)
    args = ["eval", str(path), "--data", "synthetic", "--num", "2", "--no-report"]
    assert main([*args, "--self-crop-margin", "0.6", "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert (metrics["self_crop"], metrics["self_crop_margin"]) == (1, 0.6)
    predictions = dict(np.load(tmp_path / "e" / "predictions.npz"))
    frame_K = torch.from_numpy(predictions["orig_K"]).double()
    frame_size = tuple(int(v) for v in predictions["orig_size"][0])
    _check_self_crops(passes, frame_K, frame_size, 0.6)

    passes = _record_passes(monkeypatch, predict)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((1080, 1920, 3), dtype=np.uint8)).save(photo)
    out = ["--out", str(tmp_path / "p")]
    assert main(["predict", str(path), str(photo), "--self-crop-margin", "0.6", *out]) == 0
    result = json.loads((tmp_path / "p" / "photo.json").read_text())
    photo_K = torch.tensor(result["camera"]["K"], dtype=torch.float64)[None]
    _check_self_crops(passes, photo_K, (1920, 1080), 0.6)

    # A negative or non-finite margin is a usage error (tests/test_cli.py).
    capsys.readouterr()
    extra = ["--gt-2d", "--self-crop-margin", "0.6"]
    assert main([*args, *extra, "--out", str(tmp_path / "refused")]) == 1
    assert capsys.readouterr().err.startswith(
        "hopose eval: error: --self-crop-margin: nothing is self-cropped"
    )


def test_eval_refuses_a_crop_a_self_cropping_model_would_not_use(tmp_path, capsys):
    # A self-cropping model's frames are read whole: --crop was dropped without a word. With
    # --gt-2d nothing is self-cropped, and the crop places the records' 2D: accepted.
    path = _crop_trained_model(tmp_path, self_crop=1)
    args = ["eval", str(path), "--data", "synthetic", "--num", "2", "--no-report"]
    assert main([*args, "--crop", "square", "--out", str(tmp_path / "refused")]) == 1
    assert capsys.readouterr().err == (
        f"hopose eval: error: crop: {path} self-crops its test frames from whole frames, so "
        "'square' would not be used; for squares around the true hand and box use --gt-box\n"
    )
    assert not (tmp_path / "refused").exists()
    assert main([*args, "--gt-2d", "--crop", "square", "--out", str(tmp_path / "e")]) == 0


def test_gt_box_reads_a_whole_frame_model_through_square_records(checkpoint, tmp_path):
    # The fixture was trained on whole frames (crop "resize") and the data asks for "resize"
    # too: gt_box alone must switch the records to the squares ground truth places, so the K
    # saved is the square records' K, not the whole frame's.
    data = evaluate.eval_data_config(checkpoint, name="synthetic", num=2, crop="resize")
    assert data.crop == "resize"
    summary = evaluate.run_eval(
        checkpoint, data, "test", tmp_path, gt_box=True, report=False, plausibility=False
    )
    assert (summary["protocol"], summary["crop"], summary["self_crop"]) == ("gt_box", "square", 0)
    seed = synthetic_split_seed(0, "test")
    square = SyntheticHandObject(2, seed, image_size=32, crop="square")
    whole = SyntheticHandObject(2, seed, image_size=32, crop="resize")
    saved_K = np.load(tmp_path / "predictions.npz")["K"]
    square_K = np.stack([square[i]["K"] for i in range(2)])
    assert not np.allclose(square_K, np.stack([whole[i]["K"] for i in range(2)]))
    np.testing.assert_allclose(saved_K, square_K, rtol=1e-6)


@pytest.mark.parametrize("report", [True, False])
def test_plausibility_follows_report_when_not_given(checkpoint, tmp_path, monkeypatch, report):
    # plausibility=None (the default) means "only when writing the report". The report's
    # figures are slow and not what is tested: write_report is replaced by a no-op.
    monkeypatch.setattr(evaluate, "write_report", lambda *a, **k: None)
    data = evaluate.eval_data_config(checkpoint, name="synthetic", num=2)
    summary = evaluate.run_eval(checkpoint, data, "test", tmp_path, gt_2d=True, report=report)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == summary
    keys = {plausibility_key(who, n) for who in ("pred", "gt") for n in PLAUSIBILITY_SUMMARY_NAMES}
    assert len(keys) == 12
    if report:
        assert keys <= set(written)
    else:
        assert not keys & set(written)


def test_single_view_of_a_model_without_test_time_views_is_refused_naming_the_option(
    tmp_path, capsys
):
    # Trained on squares with neither turn nor shift: its last crop is already the one square,
    # so --single-view would change nothing; eval and predict name the option (the library
    # its parameter, tests/test_self_crop.py) before anything is written.
    path = _crop_trained_model(tmp_path, self_crop=1)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 60, 3), dtype=np.uint8)).save(photo)
    message = (
        "error: --single-view: this model already predicts from the one square (its "
        "data.self_crop_turn and data.self_crop_shift are 0: no test-time views)\n"
    )
    for command, inputs in (("eval", ["--data", "synthetic", "--num", "2"]),
                            ("predict", [str(photo)])):  # fmt: skip
        out = tmp_path / command
        assert main([command, str(path), *inputs, "--single-view", "--out", str(out)]) == 1
        assert capsys.readouterr().err == f"hopose {command}: {message}"
        assert not out.exists()
