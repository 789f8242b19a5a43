"""Evaluation and prediction: the paper's metrics from predictions, and the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hopose.cli import main
from hopose.config import config_to_dict, load_config
from hopose.evaluate import mean_pose_predictions
from hopose.models import build_model
from hopose.predict import fit_intrinsics
from hopose.scoring import score
from hopose.train import save_checkpoint

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
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
    # The mean pose of the test frames themselves is the best constant: any other is worse.
    centred = mean_pose_predictions(
        predictions, predictions["gt_hand_3d"].mean(0), predictions["gt_obj_3d"].mean(0)
    )
    assert (
        score(centred, plausibility=False)["hand_mean_mm"]
        < score(baseline, plausibility=False)["hand_mean_mm"]
    )


def test_fit_intrinsics_recovers_the_camera():
    K = torch.tensor([[800.0, 0, 320], [0, 900, 240], [0, 0, 1]], dtype=torch.float64)
    points = torch.randn(29, 3, dtype=torch.float64) * 50 + torch.tensor(
        [0, 0, 500.0], dtype=torch.float64
    )
    pixels = (points @ K.T)[:, :2] / points[:, 2:]
    assert torch.allclose(fit_intrinsics(points, pixels), K, atol=1e-6)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained 32 px network saved as a checkpoint (enough to exercise the plumbing)."""
    cfg = load_config(
        CONFIGS / "synthetic" / "end2end.yaml",
        ["data.image_size=32", "model.image_size=32", "model.hidden=16"],
    )
    torch.manual_seed(0)
    model = build_model(cfg.model)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg), "epoch": 0}, path)
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
    predictions = dict(np.load(tmp_path / "predictions.npz"))
    assert predictions["pred_hand_3d"].shape == (8, 21, 3)
    assert predictions["orig_K"].shape == (8, 3, 3) and predictions["id"].shape == (8,)
    # The file's numbers are the predictions' numbers; --no-report skips the plausibility.
    for key, value in score(predictions, plausibility=not gt_2d).items():
        assert metrics[key] == pytest.approx(value), key
    assert ("pred_grasp_epsilon" in metrics) != gt_2d
    if gt_2d:  # the lifter was fed the ground truth, which is then the predicted 2D
        assert np.array_equal(predictions["pred_hand_2d"], predictions["gt_hand_2d"])
    assert (tmp_path / "report.md").is_file() != gt_2d


def test_predict_command_on_a_full_hd_jpeg_and_a_small_png(checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)).save(photo)
    small = tmp_path / "small.png"
    Image.fromarray(rng.integers(0, 255, (50, 70, 4), dtype=np.uint8), mode="RGBA").save(small)
    out = tmp_path / "out"
    assert main(["predict", str(checkpoint), str(photo), str(small), "--out", str(out)]) == 0
    for stem, size in (("photo", (1920, 1080)), ("small", (70, 50))):
        result = json.loads((out / f"{stem}.json").read_text())
        assert result["size"] == list(size)
        assert np.asarray(result["hand_2d"]).shape == (21, 2)
        assert np.asarray(result["obj_3d"]).shape == (8, 3)
        assert len(result["contacts_3d"]) == len(result["contacts_2d"])
        with Image.open(out / f"{stem}_overlay.png") as overlay:
            assert overlay.size == size


def test_predict_names_a_file_that_is_not_an_image(checkpoint, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.jpg"):
        main(["predict", str(checkpoint), str(bad), "--out", str(tmp_path / "out")])
