"""HO-3D's upload: pred.json in a zip, metres in OpenGL, HO-3D's joint order, the list's order."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch
from dataset_fixtures import write_ho3d, write_image, write_whole_dexycb_val

from hopose.checkpoint import model_checkpoint, save_checkpoint
from hopose.cli import main
from hopose.config import DataConfig, load_config
from hopose.configs import CONFIG_DIR
from hopose.data import HO3D, DexYCB
from hopose.data.dexycb import DEXYCB_SERIALS
from hopose.models import build_model
from hopose.submission import (
    CANONICAL_TO_MANO,
    DEXYCB_RESULTS_FILE,
    PREDICTION_JSON,
    SUBMISSION_FILE,
    NotSubmittable,
    ho3d_joints,
    listed_hands,
    write_dexycb_results,
    write_submission,
)


def canonical_hand() -> np.ndarray:
    """(1, 21, 3) mm, OpenCV: canonical joint c at (c, -2c, 500 + c)."""
    c = np.arange(21, dtype=float)
    return np.stack([c, -2 * c, 500 + c], axis=1)[None]


def test_a_hand_becomes_metres_in_opengl_in_ho3ds_joint_order():
    """HO-3D's joint 13 is the thumb's base, canonical joint 1 at (1, -2, 501) mm: in metres
    with y and z negated, (0.001, 0.002, -0.501). Its joint 17, the index tip, is canonical 8
    at (8, -16, 508) mm: (0.008, 0.016, -0.508). The wrist stays joint 0."""
    joints = ho3d_joints(canonical_hand())[0]
    np.testing.assert_allclose(joints[13], [0.001, 0.002, -0.501])
    np.testing.assert_allclose(joints[17], [0.008, 0.016, -0.508])
    np.testing.assert_allclose(joints[0], [0.0, 0.0, -0.5])
    assert CANONICAL_TO_MANO[:5] == (0, 5, 6, 7, 9)  # wrist, index MCP, PIP, DIP, middle MCP


def test_the_loader_reads_an_uploaded_hand_back_as_the_prediction(tmp_path):
    """A round trip through HO-3D's own annotation format: the uploaded joints saved as a
    train frame's handJoints3D are read by the loader as the hand that was predicted."""
    write_ho3d(tmp_path)
    meta = tmp_path / "train" / "SEQ1" / "meta" / "0000.pkl"
    annotation = pickle.loads(meta.read_bytes())
    annotation["handJoints3D"] = ho3d_joints(canonical_hand())[0]
    meta.write_bytes(pickle.dumps(annotation))
    record = HO3D(tmp_path, "train", with_images=False)[0]
    np.testing.assert_allclose(record["hand_3d"], canonical_hand()[0], atol=1e-4)


def test_the_hands_are_taken_in_the_lists_order_and_every_listed_frame_is_needed():
    hands = canonical_hand() + np.array([[[0.0]], [[100.0]], [[200.0]]])  # (3, 21, 3)
    predictions = {"id": np.array(["a", "b", "c"]), "pred_hand_3d": hands}
    np.testing.assert_array_equal(listed_hands(predictions, ["c", "a"]), hands[[2, 0]])
    with pytest.raises(NotSubmittable, match=r"^1 of its 2 frames have no prediction \(first d\)"):
        listed_hands(predictions, ["a", "d"])
    hands[1, 4, 2] = np.nan
    with pytest.raises(NotSubmittable, match=r"^the predicted hand of b is not finite$"):
        listed_hands(predictions, ["a", "b"])


@pytest.fixture
def ho3d_evaluation(tmp_path):
    """The fixture tree with a second evaluation frame listed first, images for both, and a
    tiny untrained network (the upload's content, not its accuracy, is under test)."""
    root = tmp_path / "ho3d"
    write_ho3d(root)
    meta = root / "evaluation" / "SEQ2" / "meta"
    (meta / "0001.pkl").write_bytes((meta / "0000.pkl").read_bytes())
    (root / "evaluation.txt").write_text("SEQ2/0001\nSEQ2/0000\n")
    for name in ("0000", "0001"):
        write_image(root / "evaluation" / "SEQ2" / "rgb" / f"{name}.jpg", (640, 480))
    overrides = ["data.image_size=32", "model.hidden=16"]
    cfg = load_config(CONFIG_DIR / "synthetic" / "end2end.yaml", overrides)
    torch.manual_seed(0)
    checkpoint = tmp_path / "model.pt"
    trained = ("lifter", "encoder")
    save_checkpoint(model_checkpoint(build_model(cfg.model), cfg, trained=trained), checkpoint)
    return root, checkpoint


@pytest.mark.filterwarnings("ignore:no backbone weights file given")
def test_eval_of_the_evaluation_split_writes_the_upload_in_the_lists_order(ho3d_evaluation):
    root, checkpoint = ho3d_evaluation
    out = root.parent / "eval"
    args = ["eval", str(checkpoint), "--data", "ho3d", "--root", str(root), "--split"]
    assert main([*args, "evaluation", "--no-report", "--out", str(out)]) == 0
    with zipfile.ZipFile(out / SUBMISSION_FILE) as archive:
        assert archive.namelist() == [PREDICTION_JSON]
        xyz, verts = json.loads(archive.read(PREDICTION_JSON))
    predictions = np.load(out / "predictions.npz")
    assert list(predictions["id"]) == ["ho3d_v3/SEQ2/0001", "ho3d_v3/SEQ2/0000"]
    expected = np.round(ho3d_joints(predictions["pred_hand_3d"]), 4)
    np.testing.assert_array_equal(np.array(xyz), expected)
    assert verts == xyz  # no mesh: the joints stand for it
    assert (np.array(xyz)[..., 2] < 0).all()  # in front of an OpenGL camera


@pytest.mark.filterwarnings("ignore:no backbone weights file given")
def test_no_upload_from_part_of_the_split_or_from_ground_truth_squares(ho3d_evaluation, capsys):
    """A first frames' evaluation (--num) or one read through squares ground truth places
    (--gt-box; --gt-2d is refused on this split, which holds no hand 2D) is no submission: none
    is written, and one left by an earlier evaluation in the folder is removed."""
    root, checkpoint = ho3d_evaluation
    out = root.parent / "eval"
    out.mkdir()
    (out / SUBMISSION_FILE).write_bytes(b"an earlier evaluation's")
    args = ["eval", str(checkpoint), "--data", "ho3d", "--root", str(root), "--split"]
    assert main([*args, "evaluation", "--no-report", "--num", "1", "--out", str(out)]) == 0
    assert not (out / SUBMISSION_FILE).exists()
    assert (
        f"hopose eval: warning: {root} (evaluation): no {SUBMISSION_FILE} written: 1 of "
        "its 2 frames have no prediction (first ho3d_v3/SEQ2/0000)"
    ) in capsys.readouterr().err
    (out / SUBMISSION_FILE).write_bytes(b"an earlier evaluation's")
    assert main([*args, "evaluation", "--no-report", "--gt-box", "--out", str(out)]) == 0
    assert not (out / SUBMISSION_FILE).exists()
    # A line of the list skipped (on_error=skip): the server would find one prediction short.
    (root / "evaluation.txt").write_text("SEQ2/0001\nSEQ2/0000\nSEQ2 0002\n")
    skip = ["--option", "on_error=skip", "--no-report", "--out", str(out)]
    assert main([*args, "evaluation", *skip]) == 0
    assert not (out / SUBMISSION_FILE).exists()
    assert f"no {SUBMISSION_FILE} written: lines were skipped (on_error=skip), first: " in (
        capsys.readouterr().err
    )


def _whole_dexycb_val(root) -> DexYCB:
    """s0's val split whole on disk (:func:`write_whole_dexycb_val`), read pose-only."""
    write_whole_dexycb_val(root)
    return DexYCB(root, "val", with_images=False)


def test_dexycb_frames_carry_the_toolkits_image_ids(tmp_path):
    """The toolkit's DexYCBDataset counts every frame of every camera, sequence by sequence,
    camera by camera: with 2 frames and 8 cameras a sequence spans 16 ids. Subject 01's second
    val sequence (index 9) starts at 16; its camera 2, frame 0 is 16 + 2 * 2 + 0 = 20. Subject
    02's first starts after subject 01's 20 sequences, at 320."""
    dataset = _whole_dexycb_val(tmp_path)
    assert len(dataset) == 2 * 20 * 8  # the frames with a hand: frame 0 of each
    ids = {dataset.frame_id(i): dataset.toolkit_id(i) for i in range(len(dataset))}
    assert ids[f"dexycb/20200709-subject-01/20200709_140009/{DEXYCB_SERIALS[2]}/000000"] == 20
    assert ids[f"dexycb/20200813-subject-02/20200813_140004/{DEXYCB_SERIALS[0]}/000000"] == 320
    assert sorted(ids.values()) == list(range(0, 640, 2))  # frame 1 of each camera has no hand


def test_dexycb_results_are_the_toolkits_lines_with_left_hands_mirrored_back(tmp_path):
    """One line per frame with a hand, by image id: the id, then the 63 coordinates in mm. A
    right hand is written as predicted; a left hand was predicted mirrored (as a right hand),
    so its x is negated back."""
    dataset = _whole_dexycb_val(tmp_path / "dexycb")
    n = len(dataset)
    hands = np.arange(n * 63, dtype=float).reshape(n, 21, 3) / 10
    predictions = {
        "id": np.array([dataset.frame_id(i) for i in range(n)]),
        "side": np.array([dataset.sequence_info[dataset.entries[i][0]][2] for i in range(n)]),
        "pred_hand_3d": hands,
    }
    data = DataConfig(name="dexycb", root=str(tmp_path / "dexycb"), test_split="val")
    path = write_dexycb_results(data, "val", predictions, tmp_path)
    lines = path.read_text().splitlines()
    assert len(lines) == n and all(len(line.split(",")) == 64 for line in lines)
    rows = {int(line.split(",")[0]): line.split(",")[1:] for line in lines}
    right, left = 0, n - 1  # frames of subject 01 and of subject 02
    for index, x_sign in ((right, 1.0), (left, -1.0)):
        expected = hands[index] * [x_sign, 1.0, 1.0]
        written = np.array(rows[dataset.toolkit_id(index)], dtype=float).reshape(21, 3)
        np.testing.assert_allclose(written, expected, atol=0.05)
    assert predictions["side"][left] == "left" and predictions["side"][right] == "right"
    # What hopose eval calls for any dataset: DexYCB's file for a DexYCB split.
    (tmp_path / "via").mkdir()
    via = write_submission(data, "val", predictions, tmp_path / "via")
    assert via == tmp_path / "via" / DEXYCB_RESULTS_FILE and via.read_text() == path.read_text()
    del predictions["pred_hand_3d"]  # a frame without a prediction: the toolkit would stop
    predictions["pred_hand_3d"] = hands[:-1]
    predictions["id"] = predictions["id"][:-1]
    with pytest.raises(NotSubmittable, match=r"^1 of its 320 frames have no prediction"):
        write_dexycb_results(data, "val", predictions, tmp_path / "again")
    with pytest.warns(UserWarning, match=f"no {DEXYCB_RESULTS_FILE} written: 1 of its 320"):
        assert write_submission(data, "val", predictions, tmp_path / "again") is None
    # A dataset file that cannot be read again (the frames came from elsewhere, a cache say):
    # a warning at the end of the evaluation, not an error after its whole inference.
    meta = tmp_path / "dexycb" / "20200709-subject-01" / "20200709_140009" / "meta.yml"
    meta.write_text("num_frames: [2\n")
    with pytest.warns(UserWarning, match=r"no dexycb_hpe_results\.txt written: .*invalid YAML"):
        assert write_submission(data, "val", predictions, tmp_path / "again") is None
    assert not (tmp_path / "again").exists()


def test_dexycb_results_mirror_the_left_hands_whatever_the_predictions_order(tmp_path):
    """The predictions in reverse order (listed_rows takes them in any order): each written
    hand is still its own frame's, a right hand (frame 0, subject 01) as predicted and a left
    one (the last frame, subject 02) with x negated back; the side read in the predictions'
    order instead would mirror the right hand and not the left."""
    dataset = _whole_dexycb_val(tmp_path / "dexycb")
    n = len(dataset)
    hands = np.arange(n * 63, dtype=float).reshape(n, 21, 3) / 10
    sides = np.array([dataset.sequence_info[dataset.entries[i][0]][2] for i in range(n)])
    ids = np.array([dataset.frame_id(i) for i in range(n)])
    predictions = {"id": ids[::-1], "side": sides[::-1], "pred_hand_3d": hands[::-1]}
    data = DataConfig(name="dexycb", root=str(tmp_path / "dexycb"), test_split="val")
    lines = write_dexycb_results(data, "val", predictions, tmp_path).read_text().splitlines()
    rows = {int(line.split(",")[0]): line.split(",")[1:] for line in lines}
    for index, x_sign in ((0, 1.0), (n - 1, -1.0)):
        written = np.array(rows[dataset.toolkit_id(index)], dtype=float).reshape(21, 3)
        np.testing.assert_allclose(written, hands[index] * [x_sign, 1.0, 1.0], atol=0.05)


def test_no_ho3d_upload_for_the_train_split(tmp_path):
    """Only the withheld evaluation split is scored by the server: an evaluation of the train
    split, even with a finite prediction for every listed frame, writes no upload."""
    root = tmp_path / "ho3d"
    write_ho3d(root)
    dataset = HO3D(root, "train", with_images=False)
    n = len(dataset)
    predictions = {
        "id": np.array([dataset[i]["id"] for i in range(n)]),
        "side": np.array(["right"] * n),
        "pred_hand_3d": np.ones((n, 21, 3)),
    }
    data = DataConfig(name="ho3d", root=str(root))
    assert write_submission(data, "train", predictions, tmp_path) is None
    assert not (tmp_path / SUBMISSION_FILE).exists()


def test_a_dexycb_split_not_whole_on_disk_says_why_it_has_no_results_file(tmp_path, caplog):
    """A camera folder missing: the toolkit's image ids would shift, so no file, and a warning
    naming the folder, not silence; the split read again for its frames does not log the
    folders missing a second time (the evaluation's read did)."""
    dataset = _whole_dexycb_val(tmp_path / "dexycb")
    n = len(dataset)
    predictions = {
        "id": np.array([dataset.frame_id(i) for i in range(n)]),
        "side": np.array(["right"] * n),
        "pred_hand_3d": np.ones((n, 21, 3)),
    }
    camera = tmp_path / "dexycb" / "20200709-subject-01" / "20200709_140004" / DEXYCB_SERIALS[3]
    shutil.rmtree(camera)
    data = DataConfig(name="dexycb", root=str(tmp_path / "dexycb"), test_split="val")
    message = f"no {DEXYCB_RESULTS_FILE} written: the split is not whole on disk"
    with caplog.at_level(logging.INFO), pytest.warns(UserWarning, match=message):
        assert write_submission(data, "val", predictions, tmp_path) is None
    assert not (tmp_path / DEXYCB_RESULTS_FILE).exists()
    assert "folders missing" not in caplog.text
    DexYCB(data.root, "val", with_images=False)  # the logger's level is back
    assert "folders missing" in caplog.text
