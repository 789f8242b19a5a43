"""HO-3D on a fixture tree: meta pickles with the real keys, OpenGL metres, MANO joint order."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from dataset_fixtures import HO3D_CAM, ho3d_mano_joints, write_ho3d, write_image

from hopose.checkpoint import model_checkpoint, save_checkpoint
from hopose.cli import main
from hopose.config import load_config
from hopose.configs import CONFIG_DIR
from hopose.data import DATASETS, HO3D, build_dataset
from hopose.data.ho3d import (
    HO3D_SPLITS,
    HO3D_TO_CANONICAL_CORNERS,
    corner_order_from_rest,
    hand_labelled,
)
from hopose.data.transforms import DataFileError
from hopose.evaluate import eval_data_config, run_eval
from hopose.geometry import project_points
from hopose.models import build_model
from hopose.skeleton import CORNER_SIGNS


def test_joints_reordered_from_mano_and_flipped_to_opencv_mm(tmp_path):
    write_ho3d(tmp_path)
    record = HO3D(tmp_path, "train", with_images=False)[0]
    # Canonical joint 1 (thumb CMC) is MANO joint 13, at (0.13, 0.026, -0.5) m in OpenGL
    # -> diag(1, -1, -1), x1000: (130, -26, 500) mm.
    np.testing.assert_allclose(record["hand_3d"][1], [130.0, -26.0, 500.0], atol=1e-6)
    # Canonical 4 (thumb tip) is MANO 16; canonical 5 (index MCP) is MANO 1.
    np.testing.assert_allclose(record["hand_3d"][4], [160.0, -32.0, 500.0], atol=1e-6)
    np.testing.assert_allclose(record["hand_3d"][5], [10.0, -2.0, 500.0], atol=1e-6)
    assert record["object"] == "006_mustard_bottle"


@pytest.mark.parametrize("with_rest", [True, False])
def test_corners_map_to_spec_order(tmp_path, with_rest):
    write_ho3d(tmp_path, with_rest=with_rest)
    record = HO3D(tmp_path, "train", with_images=False)[0]
    # In the object's frame the canonical corner c has the signs of CORNER_SIGNS[c]; the camera
    # frame
    # is the object frame shifted and flipped by diag(1, -1, -1), so undo the flip to compare.
    offsets = (record["obj_3d"] - record["obj_3d"].mean(axis=0)) * [1, -1, -1]
    np.testing.assert_array_equal(np.sign(offsets), np.array(CORNER_SIGNS, dtype=float))
    # Hand-checked: canonical corner 1 (+,-,-) is HO-3D index 4*1 + 2*0 + 0 = 4.
    assert HO3D_TO_CANONICAL_CORNERS == (0, 4, 6, 2, 1, 5, 7, 3)


def test_rest_corners_in_another_order_are_read_from_their_signs():
    rest = np.array(CORNER_SIGNS, dtype=float)[::-1] * [3.0, 2.0, 1.0]
    order = corner_order_from_rest(rest)
    np.testing.assert_array_equal(np.sign(rest[list(order)]), np.array(CORNER_SIGNS, dtype=float))
    assert corner_order_from_rest(np.zeros((8, 3))) is None


def test_image_and_projection(tmp_path):
    write_ho3d(tmp_path)
    dataset = build_dataset("ho3d", "train", root=str(tmp_path), image_size=160, version="v2")
    write_image(tmp_path / "train" / "SEQ1" / "rgb" / "0000.png", (640, 480))
    record = dataset[0]
    # 640x480 -> 160x160: fx 614 / 4 = 153.5, fy 615 / 3 = 205.
    np.testing.assert_allclose(np.diag(record["K"]), [153.5, 205.0, 1.0])
    np.testing.assert_allclose(record["orig_K"], HO3D_CAM)
    # The id as per_frame.csv holds it and hopose.scoring groups it (ho3d.ID_PARTS).
    assert record["id"] == "ho3d_v2/SEQ1/0000"
    projected = project_points(torch.tensor(record["hand_3d"]), torch.tensor(record["K"]))
    np.testing.assert_allclose(record["hand_2d"], projected.numpy(), atol=1e-3)
    with pytest.raises(DataFileError, match=r"SEQ1/rgb/0000.jpg"):
        HO3D(tmp_path, "train", version="v3")[0]


def test_evaluation_split_has_only_the_wrist(tmp_path):
    write_ho3d(tmp_path)
    record = HO3D(tmp_path, "evaluation", with_images=False)[0]
    np.testing.assert_allclose(record["hand_3d"][0], [10.0, -20.0, 500.0], atol=1e-4)
    assert np.isnan(record["hand_3d"][1:]).all()
    assert ho3d_mano_joints().shape == (21, 3)


def test_a_singular_camera_matrix_names_the_pickle(tmp_path):
    write_ho3d(tmp_path)
    import pickle

    path = tmp_path / "train" / "SEQ1" / "meta" / "0000.pkl"
    meta = pickle.loads(path.read_bytes())
    meta["camMat"] = np.diag([0.0, 610.0, 1.0])  # fx 0: no ray through any pixel
    path.write_bytes(pickle.dumps(meta))
    with pytest.raises(DataFileError, match=r"0000\.pkl camMat: expected pinhole intrinsics"):
        HO3D(tmp_path, "train", with_images=False)[0]


def test_missing_key_names_the_pickle(tmp_path):
    write_ho3d(tmp_path)
    import pickle

    path = tmp_path / "train" / "SEQ1" / "meta" / "0000.pkl"
    meta = pickle.loads(path.read_bytes())
    meta["handJoints3D"] = None  # as in the unannotated frames of the real data
    path.write_bytes(pickle.dumps(meta))
    with pytest.raises(DataFileError, match=r"0000.pkl: missing or empty keys \['handJoints3D'\]"):
        HO3D(tmp_path, "train", with_images=False)[0]


def test_unreadable_frame_list_names_the_file(tmp_path):
    write_ho3d(tmp_path)
    (tmp_path / "train.txt").write_bytes(b"\xff\xfe\x89 not text")
    with pytest.raises(DataFileError, match=r"train\.txt: cannot read the frame list"):
        HO3D(tmp_path, "train", with_images=False)
    (tmp_path / "evaluation.txt").unlink()
    (tmp_path / "evaluation.txt").mkdir()
    with pytest.raises(DataFileError, match=r"evaluation\.txt: cannot read the frame list"):
        HO3D(tmp_path, "evaluation", with_images=False)


def _checkpoint(path, *overrides: str):
    """A tiny untrained network saved as trained (encoder and lifter) on the synthetic recipe,
    ``overrides`` over it (the content is not under test, only what reads the frames)."""
    cfg = load_config(
        CONFIG_DIR / "synthetic" / "end2end.yaml",
        ["data.image_size=32", "model.hidden=16", *overrides],
    )
    torch.manual_seed(0)
    model = build_model(cfg.model)
    save_checkpoint(model_checkpoint(model, cfg, trained=("lifter", "encoder")), path)
    return path


def test_only_the_evaluation_split_lacks_the_hand_labels_as_its_records_show(tmp_path):
    """hand_labelled is the one answer of whether a split holds the hand: for HO-3D it says what
    the records hold (all 21 joints finite, or the wrist alone), and another dataset's split of
    the same name is labelled: the dataset and the split together say it, not the name."""
    write_ho3d(tmp_path)
    for split in HO3D_SPLITS:
        hand = HO3D(tmp_path, split, with_images=False)[0]["hand_3d"]
        assert hand_labelled("ho3d", split) == np.isfinite(hand).all(), split
    assert not hand_labelled("ho3d", "evaluation")
    assert all(hand_labelled(name, "evaluation") for name in DATASETS if name != "ho3d")
    assert all(hand_labelled(name, split) for name in DATASETS for split in ("train", "test"))


@pytest.mark.filterwarnings("ignore:no backbone weights file given")
def test_eval_of_the_evaluation_split_without_hand_joints_completes(tmp_path):
    # The evaluation split holds the wrist alone: from its images, the hand has no error (NaN,
    # left out of every summary), the plausibility of poses that are not finite is NaN, and the
    # report's figures leave the missing points out. It stopped in the Procrustes SVD, then in
    # the cuboid fit of the plausibility and in the gallery's 3D limits, each a traceback.
    import json

    root = tmp_path / "ho3d"
    write_ho3d(root)
    write_image(root / "evaluation" / "SEQ2" / "rgb" / "0000.jpg", (640, 480))
    checkpoint = _checkpoint(tmp_path / "model.pt")
    out = tmp_path / "eval"
    args = ["eval", str(checkpoint), "--data", "ho3d", "--root", str(root)]
    assert main([*args, "--split", "evaluation", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n"], metrics["protocol"]) == (1, "image")
    assert np.isnan(metrics["hand_mean_mm"]) and np.isnan(metrics["hand_auc_0_80"])
    assert np.isfinite(metrics["object_mean_mm"])  # its box is labelled
    assert np.isnan(metrics["gt_valid_contacts"]) and np.isnan(metrics["gt_affinity"])
    assert (out / "report.md").is_file() and (out / "figures" / "gallery.png").is_file()


WITHHELD_MESSAGE = (
    "ho3d's 'evaluation' split holds only the wrist (HO-3D keeps the rest for its server)"
)


def test_prepare_refuses_the_evaluation_split_in_one_line_saying_what_to_do(tmp_path, capsys):
    """A cache holds the hand's labels: the split stopped at its first record with "sample 0:
    'hand_3d' has non-finite values", naming no file, split or reason. Refused before anything
    is read or written; the train split of the same tree is cached."""
    root = tmp_path / "ho3d"
    write_ho3d(root)
    out = tmp_path / "cache"
    args = ["prepare", "ho3d", "--root", str(root), "--out", str(out), "--split"]
    assert main([*args, "evaluation"]) == 1
    assert capsys.readouterr() == (
        "",
        f"hopose prepare: error: split: {WITHHELD_MESSAGE}, and a cache holds the hand's "
        "labels; evaluate it from its images instead (hopose eval CKPT --data ho3d --split "
        "evaluation), which writes the upload the server scores "
        '(docs/evaluation.md, "HO-3D\'s server")\n',
    )
    assert not out.exists()
    write_image(root / "train" / "SEQ1" / "rgb" / "0000.jpg", (640, 480))
    assert main([*args, "train", "--image-size", "32"]) == 0
    assert len(build_dataset("ho3d", "train", cache=str(out), image_size=32)) == 1


@pytest.mark.filterwarnings("ignore:no backbone weights file given")
@pytest.mark.parametrize("split", [["--split", "evaluation"], []])
def test_eval_gt_2d_of_the_evaluation_split_is_refused_naming_the_option(tmp_path, capsys, split):
    """Fed ground-truth 2D, the lifter read the missing joints' NaN and the box was scored inf,
    the command completing. Refused in one line naming --gt-2d and the split, given or the
    checkpoint's own test split (a model trained on HO-3D tests on it), before anything is
    written; the library refuses it naming its parameter."""
    root = tmp_path / "ho3d"
    write_ho3d(root)
    overrides = (
        "data.name=ho3d",
        f"data.root={root}",
        "data.val_split=null",
        "loss.w_segmentation=0",
    )
    checkpoint = _checkpoint(tmp_path / "model.pt", *overrides, "data.test_split=evaluation")
    out = tmp_path / "eval"
    args = ["eval", str(checkpoint), "--data", "ho3d", "--root", str(root), "--gt-2d"]
    assert main([*args, *split, "--out", str(out)]) == 1
    assert capsys.readouterr() == (
        "",
        f"hopose eval: error: --gt-2d: {WITHHELD_MESSAGE}, and the lifter would read the "
        "missing joints' 2D (NaN: its box scored inf); evaluate this split from its images, "
        "which writes the upload the server scores, or feed ground-truth 2D from a labelled "
        "split\n",
    )
    data = eval_data_config(checkpoint, name="ho3d", root=str(root))
    with pytest.raises(ValueError, match=f"^gt_2d: {re.escape(WITHHELD_MESSAGE)}, "):
        run_eval(checkpoint, data, None, out, gt_2d=True)
    assert not out.exists()
    # The train split holds the hand: the protocol reads it.
    assert main([*args, "--split", "train", "--no-report", "--out", str(out)]) == 0


def test_a_malformed_frame_list_line_names_the_file_and_line_or_is_skipped(tmp_path, caplog):
    write_ho3d(tmp_path)
    (tmp_path / "train.txt").write_text("SEQ1/0000\n\nSEQ1 0001\nSEQ1/0002 extra\n\n")
    with pytest.raises(
        DataFileError, match=r"train\.txt:3: expected '<SEQ>/<frame>', got 'SEQ1 0001'$"
    ):
        HO3D(tmp_path, "train", with_images=False)
    dataset = HO3D(tmp_path, "train", with_images=False, on_error="skip")
    assert dataset.entries == [("SEQ1", "0000")]  # the blank lines name no frame, and no error
    assert [message.split(": ")[0][-11:] for message in dataset.skipped] == [
        "train.txt:3",
        "train.txt:4",
    ]
    assert "'SEQ1/0002 extra'" in dataset.skipped[1]
    assert "HO-3D v3/train: skipped 2 bad annotations, first: " in caplog.text
    assert "train.txt:3: expected '<SEQ>/<frame>'" in caplog.text


def test_object_corners_flipped_to_opencv_mm(tmp_path):
    """objCorners3D goes through the same OpenGL -> OpenCV flip and metres -> mm as the joints."""
    write_ho3d(tmp_path)
    record = HO3D(tmp_path, "train", with_images=False)[0]
    # The fixture box is +-(0.03, 0.05, 0.02) m about (0, 0, -0.6) in OpenGL: canonical corner 6
    # (+,+,+) is (0.03, 0.05, -0.58) m -> diag(1, -1, -1), x1000: (30, -50, 580) mm; corner 0
    # (-,-,-) is (-0.03, -0.05, -0.62) m -> (-30, 50, 620) mm.
    np.testing.assert_allclose(record["obj_3d"][6], [30.0, -50.0, 580.0], atol=1e-6)
    np.testing.assert_allclose(record["obj_3d"][0], [-30.0, 50.0, 620.0], atol=1e-6)


def _without_posed_corners(root, **changes):
    """The evaluation pickle of the fixture without objCorners3D, with ``changes``."""
    import pickle

    path = root / "evaluation" / "SEQ2" / "meta" / "0000.pkl"
    meta = pickle.loads(path.read_bytes())
    del meta["objCorners3D"]
    path.write_bytes(pickle.dumps({**meta, **changes}))


def test_a_pickle_without_posed_corners_poses_its_rest_box_as_ho3ds_viewer_does(tmp_path):
    """HO-3D's viewer poses the box of either split from objCorners3DRest, objRot (axis-angle,
    (3, 1)) and objTrans: rest Rᵀ + t. A quarter turn about z maps (x, y, z) to (-y, x, z)."""
    write_ho3d(tmp_path)
    rot = np.array([[0.0], [0.0], [np.pi / 2]])
    _without_posed_corners(tmp_path, objRot=rot, objTrans=np.array([0.0, 0.0, -0.6]))
    record = HO3D(tmp_path, "evaluation", with_images=False)[0]
    # Canonical corner 6 is the rest corner (+,+,+) = (0.03, 0.05, 0.02) m: turned
    # (-0.05, 0.03, 0.02), moved (-0.05, 0.03, -0.58) -> diag(1, -1, -1), x1000: (-50, -30, 580)
    # mm; corner 0, (-0.03, -0.05, -0.02): (0.05, -0.03, -0.62) m -> (50, 30, 620) mm.
    np.testing.assert_allclose(record["obj_3d"][6], [-50.0, -30.0, 580.0], atol=1e-9)
    np.testing.assert_allclose(record["obj_3d"][0], [50.0, 30.0, 620.0], atol=1e-9)


def test_a_pickle_with_no_box_pose_names_the_pickle_and_the_keys(tmp_path):
    write_ho3d(tmp_path)
    _without_posed_corners(tmp_path, objTrans=np.zeros(3))
    with pytest.raises(DataFileError, match=r"0000.pkl: no objCorners3D, nor objRot to pose"):
        HO3D(tmp_path, "evaluation", with_images=False)[0]


def test_every_mano_joint_lands_on_its_canonical_finger_and_rank(tmp_path):
    """All 21 joints, not only a few, follow MANO's layout as HO-3D stores it: wrist 0; three
    joints per finger in the order index 1-3, middle 4-6, little 7-9, ring 10-12, thumb 13-15;
    then the tips thumb 16, index 17, middle 18, ring 19, little 20."""
    write_ho3d(tmp_path)
    record = HO3D(tmp_path, "train", with_images=False)[0]
    mano = {  # finger -> its MANO joints from the palm out, tip last
        "thumb": (13, 14, 15, 16),
        "index": (1, 2, 3, 17),
        "middle": (4, 5, 6, 18),
        "ring": (10, 11, 12, 19),
        "little": (7, 8, 9, 20),
    }
    expected = [0]
    for finger in ("thumb", "index", "middle", "ring", "little"):  # canonical finger order
        expected += mano[finger]
    # The fixture's MANO joint m has x = 0.01 m = 10 mm, so x / 10 names the MANO joint read.
    np.testing.assert_allclose(record["hand_3d"][:, 0] / 10.0, expected, atol=1e-9)


def test_rest_corners_off_the_object_origin_give_the_order_from_their_signs():
    """The signs are taken about the box's centre: a rest box that does not contain its frame's
    origin (every coordinate positive here) still gives the order."""
    signs = np.array(CORNER_SIGNS, dtype=float)[::-1]
    rest = (signs + np.array([3.0, 2.0, 1.5])) * [0.01, 0.02, 0.03]  # 0.015 ... 0.075
    order = corner_order_from_rest(rest)
    assert order == (7, 6, 5, 4, 3, 2, 1, 0)  # the rows were the canonical corners reversed


def test_a_pickle_in_another_corner_order_is_read_in_the_order_of_its_rest_corners(tmp_path):
    """With objCorners3DRest present, the corner order is read from it rather than assumed: the
    same box, its corners listed in another order in both fields, gives the same record."""
    import pickle

    write_ho3d(tmp_path)
    expected = HO3D(tmp_path, "train", with_images=False)[0]["obj_3d"]
    path = tmp_path / "train" / "SEQ1" / "meta" / "0000.pkl"
    meta = pickle.loads(path.read_bytes())
    shuffle = [3, 0, 6, 1, 7, 2, 5, 4]
    meta["objCorners3D"] = meta["objCorners3D"][shuffle]
    meta["objCorners3DRest"] = meta["objCorners3DRest"][shuffle]
    path.write_bytes(pickle.dumps(meta))
    record = HO3D(tmp_path, "train", with_images=False)[0]
    np.testing.assert_allclose(record["obj_3d"], expected, atol=1e-9)


@pytest.mark.parametrize("line", ["SEQ1", "SEQ1/", "/0000"])
def test_a_frame_list_line_without_sequence_or_frame_is_refused(tmp_path, line):
    """Both halves of '<SEQ>/<frame>' must be there: a line missing one names no meta pickle."""
    write_ho3d(tmp_path)
    (tmp_path / "train.txt").write_text(f"SEQ1/0000\n{line}\n")
    with pytest.raises(
        DataFileError, match=rf"train\.txt:2: expected '<SEQ>/<frame>', got '{line}'"
    ):
        HO3D(tmp_path, "train", with_images=False)


def test_rest_corners_that_are_not_a_box_name_the_pickle_and_key(tmp_path):
    """A rest box the corner order cannot be read from (one corner copied onto another, so one
    sign pattern has two corners and another none) is refused rather than read in the assumed
    HO-3D order."""
    import pickle

    write_ho3d(tmp_path)
    path = tmp_path / "train" / "SEQ1" / "meta" / "0000.pkl"
    meta = pickle.loads(path.read_bytes())
    meta["objCorners3DRest"][1] = meta["objCorners3DRest"][0]  # corners 0 and 1 now coincide
    path.write_bytes(pickle.dumps(meta))
    with pytest.raises(
        DataFileError, match=r"0000\.pkl objCorners3DRest: expected an axis-aligned"
    ):
        HO3D(tmp_path, "train", with_images=False)[0]
