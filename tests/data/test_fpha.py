"""FPHA-HO on a fixture tree in the dataset's byte format (tests/data/dataset_fixtures.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from dataset_fixtures import (
    BOX_HIGH_M,
    BOX_LOW_M,
    FPHA_POSE,
    box_vertices,
    fpha_joints,
    write_fpha,
    write_fpha_sequence,
    write_image,
    write_ply,
)

from hopose.checkpoint import model_checkpoint, save_checkpoint
from hopose.cli import main
from hopose.config import load_config
from hopose.configs import CONFIG_DIR as CONFIGS
from hopose.data import FPHA, build_dataset
from hopose.data.fpha import (
    FPHA_COLOR_K,
    FPHA_DEPTH_TO_COLOR_R,
    FPHA_DEPTH_TO_COLOR_T,
    read_annotation_lines,
)
from hopose.data.transforms import DataFileError
from hopose.geometry import project_points
from hopose.models import build_model
from hopose.skeleton import FPHA_TO_CANONICAL
from hopose.train import train


@pytest.fixture
def root(tmp_path):
    return write_fpha(tmp_path / "fpha")


# The depth -> colour extrinsic (mm) and colour intrinsics as the FPHA dataset's README gives
# them, written out here rather than imported, so that a mistyped constant in hopose.data.fpha
# fails the tests instead of being their reference too.
README_R = np.array(
    [
        [0.999988496304, -0.00468848412856, 0.000982563360594],
        [0.00469115935266, 0.999985218048, -0.00273845880292],
        [-0.000969709653873, 0.00274303671904, 0.99999576807],
    ]
)
README_T = np.array([25.7, 1.22, 3.902])
README_K = np.array(
    [[1395.749023, 0.0, 935.732544], [0.0, 1395.749268, 540.681030], [0.0, 0.0, 1.0]]
)


def colour(point) -> np.ndarray:
    """Depth camera -> colour camera, R X + t with the README's extrinsic."""
    return README_R @ np.asarray(point, dtype=float) + README_T


def test_convention_fpha_camera_constants_are_the_readmes():
    """hopose.data.fpha holds the README's extrinsic and colour camera, digit for digit."""
    np.testing.assert_array_equal(FPHA_DEPTH_TO_COLOR_R, README_R)
    np.testing.assert_array_equal(FPHA_DEPTH_TO_COLOR_T, README_T)
    np.testing.assert_array_equal(FPHA_COLOR_K, README_K)


def test_hope_protocol_splits_by_sequence_number(root):
    ids = {split: FPHA(root, split, with_images=False).ids for split in ("train", "val", "test")}
    # Sequence 1 -> val, 3 -> test, the rest (2) -> train; Subject_2/close_milk/4 is excluded
    # and charge_cell_phone is not an FPHA-HO action.
    assert ids["val"] == ["fpha/Subject_1/open_milk/1/0000", "fpha/Subject_1/open_milk/1/0001"]
    assert ids["test"] == ["fpha/Subject_1/open_milk/3/0000", "fpha/Subject_1/open_milk/3/0001"]
    assert ids["train"] == [
        "fpha/Subject_1/open_milk/2/0000",
        "fpha/Subject_1/open_milk/2/0001",
        "fpha/Subject_2/close_milk/2/0000",
        "fpha/Subject_2/close_milk/2/0001",
    ]


def test_action_protocol_reads_the_official_split_file(root):
    train = FPHA(root, "train", protocol="action", with_images=False)
    test = FPHA(root, "test", protocol="action", with_images=False)
    assert {i.rsplit("/", 1)[0] for i in train.ids} == {
        "fpha/Subject_1/open_milk/1",
        "fpha/Subject_1/open_milk/3",
    }
    # The excluded empty sequence is dropped even though the split file lists it.
    assert {i.rsplit("/", 1)[0] for i in test.ids} == {"fpha/Subject_1/open_milk/2"}
    with pytest.raises(ValueError, match="split"):
        FPHA(root, "val", protocol="action")
    with pytest.raises(ValueError, match="protocol"):
        FPHA(root, "train", protocol="subjects")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Read before as two copies of its frames in the training split.
        ("Training 2\nSubject_1/open_milk/1 5\nSubject_1/open_milk/1 5\nTest 0\n",
         "3: sequence Subject_1/open_milk/1 again (first on line 2)"),
        # Read before as frames in both the training and the test split.
        ("Training 1\nSubject_1/open_milk/1 5\nTest 1\nSubject_1/open_milk/1 5\n",
         "4: sequence Subject_1/open_milk/1 again (first on line 2, under Training)"),
    ],
    ids=["twice under Training", "under Training and Test"],
)  # fmt: skip
def test_a_sequence_listed_twice_in_the_split_file_is_refused(root, text, message):
    split_file = root / "data_split_action_recognition.txt"
    split_file.write_text(text)
    for split in ("train", "test"):
        with pytest.raises(DataFileError) as error:
            FPHA(root, split, protocol="action", with_images=False)
        assert str(error.value) == f"{split_file}:{message}"


def test_joints_are_reordered_and_moved_to_the_colour_camera(root):
    record = FPHA(root, "val", with_images=False)[1]  # frame t = 1
    depth = fpha_joints(1)
    # Canonical joint 2 (thumb MCP) is FPHA joint 6, at (10*6, 5*6 + 1, 400 + 6) = (60, 31, 406)
    # in the depth camera. R X + t with the README's R and t, row by row:
    #   x: 0.999988496304*60 - 0.00468848412856*31 + 0.000982563360594*406 + 25.7
    #    = 59.99930977824 - 0.14534300798536 + 0.398920724401164 + 25.7 = 85.952887
    #   y: 0.00469115935266*60 + 0.999985218048*31 - 0.00273845880292*406 + 1.22
    #    = 0.2814695611596 + 30.999541759488 - 1.11181427398552 + 1.22 = 31.389197
    #   z: -0.000969709653873*60 + 0.00274303671904*31 + 0.99999576807*406 + 3.902
    #    = -0.05818257923238 + 0.08503413829024 + 405.99828183642 + 3.902 = 409.927133
    # (float32 records: about 3e-5 apart at 410, well inside 1e-4.)
    assert FPHA_TO_CANONICAL[2] == 6
    np.testing.assert_allclose(
        record["hand_3d"][2], [85.95289, 31.38920, 409.92713], rtol=0, atol=1e-4
    )
    expected = np.stack([colour(depth[j]) for j in FPHA_TO_CANONICAL])
    np.testing.assert_allclose(record["hand_3d"], expected, atol=1e-3)


def test_object_corners_from_mesh_box_column_major_pose_and_extrinsic(root):
    record = FPHA(root, "val", with_images=False)[0]
    # Model box x [-20, 30], y [-10, 10], z [0, 100] mm. Corner 1 (+,-,-) = (30, -10, 0); the
    # pose turns it 90° about z, (x, y) -> (-y, x), and adds (100, 50, 500): (110, 80, 500).
    assert np.allclose(FPHA_POSE[:3, :3] @ [30, -10, 0] + FPHA_POSE[:3, 3], [110, 80, 500])
    np.testing.assert_allclose(record["obj_3d"][1], colour([110.0, 80.0, 500.0]), atol=1e-3)
    # Corner 6 (+,+,+) = (30, 10, 100) -> (90, 80, 600).
    np.testing.assert_allclose(record["obj_3d"][6], colour([90.0, 80.0, 600.0]), atol=1e-3)
    assert record["object"] == "milk" and record["side"] == "right"


def test_K_and_2d_projection_for_the_network_image(root):
    dataset = FPHA(root, "val", image_size=224)
    write_image(dataset.image_paths[0], (1920, 1080))
    record = dataset[0]
    assert record["image"].shape == (224, 224, 3)
    # 1920x1080 -> 224x224: fx 1395.749023 * 224/1920 = 162.837,
    # fy 1395.749268 * 224/1080 = 289.489.
    np.testing.assert_allclose(record["K"][0, 0], 162.837386, rtol=1e-6)
    np.testing.assert_allclose(record["K"][1, 1], 289.488737, rtol=1e-6)
    np.testing.assert_allclose(record["orig_K"], README_K, rtol=1e-6)
    np.testing.assert_allclose(record["orig_size"], [1920, 1080])
    for key in ("hand", "obj"):
        projected = project_points(torch.tensor(record[f"{key}_3d"]), torch.tensor(record["K"]))
        np.testing.assert_allclose(record[f"{key}_2d"], projected.numpy(), atol=1e-3)


def test_truncated_line_names_file_and_line_or_is_skipped(root, caplog):
    path = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "2" / "skeleton.txt"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2] + "\n")
    with pytest.raises(DataFileError, match=r"open_milk/2/skeleton.txt:2: expected"):
        FPHA(root, "train", with_images=False)
    dataset = FPHA(root, "train", with_images=False, on_error="skip")
    assert len(dataset.skipped) == 1 and len(dataset) == 2  # only close_milk/2 is left
    assert "skipped 1 bad annotations" in caplog.text
    with pytest.raises(DataFileError, match=r"skeleton\.txt:2"):
        read_annotation_lines(path, 63)


def test_only_a_kept_sequence_lists_its_frames_annotated_in_one_file(root):
    # Train (hope) holds open_milk/2 and close_milk/2, 2 frames each; open_juice_bottle/2 is
    # added without a juice model, so skipping leaves it out whole. Frame 0002 of juice and of
    # close_milk/2 has a hand but no object pose: only close_milk/2's is a frame of the split.
    write_fpha_sequence(root, "Subject_1", "open_juice_bottle", "2", frames=2)
    extra = "0002 " + " ".join(["1.0"] * 63) + "\n"
    for subject, action in (("Subject_1", "open_juice_bottle"), ("Subject_2", "close_milk")):
        path = root / "Hand_pose_annotation_v1" / subject / action / "2" / "skeleton.txt"
        path.write_text(path.read_text() + extra)
    dataset = FPHA(root, "train", with_images=False, on_error="skip")
    assert len(dataset.skipped) == 1 and "juice_bottle_model.ply" in dataset.skipped[0]
    assert len(dataset) == 2 + 2
    assert dataset.unannotated == ["fpha/Subject_2/close_milk/2/0002: only a hand"]


def test_empty_sequence_names_its_skeleton(root):
    path = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "3" / "skeleton.txt"
    path.write_text("")
    with pytest.raises(DataFileError, match=r"open_milk/3/skeleton\.txt: no frame"):
        FPHA(root, "test", with_images=False)


def test_missing_mesh_and_corrupt_image_name_the_file(root):
    dataset = FPHA(root, "val")
    dataset.image_paths[0].parent.mkdir(parents=True)
    dataset.image_paths[0].write_bytes(b"not a jpeg at all")
    with pytest.raises(DataFileError, match=r"color_0000\.jpeg"):
        dataset[0]
    (root / "Object_models" / "milk_model" / "milk_model.ply").unlink()
    with pytest.raises(DataFileError, match=r"milk_model\.ply"):
        FPHA(root, "test")


def test_folder_variants_and_build_dataset(root):
    expected = FPHA(root, "test", with_images=False)
    (root / "Hand_pose_annotation_v1").rename(root / "Hand_pose_annotation_v1_1")
    (root / "Object_6D_pose_annotation_v1_1").rename(root / "Object_6D_pose_annotation_v1")
    dataset = build_dataset("fpha", "test", root=str(root), with_images=False, protocol="hope")
    # The other spellings of both annotation folders give the same frames and poses.
    assert (
        [dataset[i]["id"] for i in range(len(dataset))]
        == expected.ids
        == [
            "fpha/Subject_1/open_milk/3/0000",
            "fpha/Subject_1/open_milk/3/0001",
        ]
    )
    for i in range(len(dataset)):
        for key in ("hand_3d", "obj_3d", "hand_2d", "K"):
            np.testing.assert_array_equal(dataset[i][key], expected[i][key])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nan", r"non-finite value 'nan' \(in float32\)$"),
        ("-inf", r"non-finite value '-inf' \(in float32\)$"),
        # Finite in float64, where they were checked, but inf in the float32 records (with only
        # numpy's overflow warning): float32's largest is 3.4028235e38.
        ("1e300", r"non-finite value '1e300' \(in float32\)$"),
        ("-3.5e38", r"non-finite value '-3.5e38' \(in float32\)$"),
    ],
)
def test_non_finite_values_name_file_and_line(root, value, message):
    path = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "3" / "skeleton.txt"
    lines = path.read_text().splitlines()
    fields = lines[1].split()
    fields[5] = value
    path.write_text("\n".join([lines[0], " ".join(fields)]) + "\n")
    with pytest.raises(DataFileError, match=rf"open_milk/3/skeleton\.txt:2: {message}"):
        FPHA(root, "test", with_images=False)


def test_a_frame_given_twice_names_both_lines(root):
    path = (
        root
        / "Object_6D_pose_annotation_v1_1"
        / "Subject_1"
        / "open_milk"
        / "3"
        / "object_pose.txt"
    )
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(
        DataFileError, match=r"object_pose\.txt:3: frame 1 again \(first on line 2\)"
    ):
        FPHA(root, "test", with_images=False)


def test_a_vertex_only_model_gives_the_same_box(root):
    expected = FPHA(root, "test", with_images=False).obj_3d
    path = root / "Object_models" / "milk_model" / "milk_model.ply"
    vertices = box_vertices(BOX_LOW_M, BOX_HIGH_M)
    header = ["ply", "format ascii 1.0", f"element vertex {len(vertices)}"]
    header += [f"property float {axis}" for axis in "xyz"] + ["end_header"]
    path.write_text("\n".join(header + [f"{x} {y} {z}" for x, y, z in vertices]) + "\n")
    np.testing.assert_allclose(FPHA(root, "test", with_images=False).obj_3d, expected, atol=1e-4)


def test_juice_bottle_model_folder_variant(root):
    # Some copies name the juice bottle's model juice_model/juice_model.ply.
    write_fpha_sequence(root, "Subject_3", "pour_juice_bottle", "5", frames=1)
    vertices = box_vertices(BOX_LOW_M, BOX_HIGH_M)
    write_ply(root / "Object_models" / "juice_model" / "juice_model.ply", vertices)
    train = FPHA(root, "train", with_images=False)
    assert train.objects[-1] == "juice_bottle" and train.ids[-1].startswith("fpha/Subject_3")


@pytest.mark.parametrize("kind", ["binary", "directory"])
def test_a_non_text_or_unreadable_annotation_names_the_file_or_is_skipped(root, kind):
    # A JPEG (or a folder) where skeleton.txt should be: a DataFileError naming the file, not a
    # bare UnicodeDecodeError / IsADirectoryError, so that on_error="skip" drops the sequence.
    path = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "2" / "skeleton.txt"
    path.unlink()
    if kind == "binary":
        path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01 not an annotation")
    else:
        path.mkdir()
    message = "not a text file" if kind == "binary" else "cannot read file"
    with pytest.raises(DataFileError, match=rf"open_milk/2/skeleton\.txt: {message}") as error:
        FPHA(root, "train", with_images=False)
    assert "\n" not in str(error.value)
    dataset = FPHA(root, "train", with_images=False, on_error="skip")
    assert len(dataset.skipped) == 1 and {i.split("/")[2] for i in dataset.ids} == {"close_milk"}
    split_file = root / "data_split_action_recognition.txt"
    split_file.write_bytes(b"Training 1\n\xff\xfe\n")
    with pytest.raises(DataFileError, match=r"data_split_action_recognition\.txt: not a text"):
        FPHA(root, "train", protocol="action", with_images=False)


@pytest.mark.filterwarnings("ignore:no backbone weights file given")
@pytest.mark.parametrize("num", [None, 1])
def test_a_crop_trained_model_is_evaluated_on_fpha_by_self_cropping(root, tmp_path, num):
    """From the images, a model trained on crops reads each real frame whole, then the squares
    its own 2D places (views cut from the full-size JPEGs): no ground truth places a crop. With
    ``--num`` the split is a Subset of the loader, whose views are still the loader's (it was
    refused as cached records naming a cache of None)."""
    cfg = load_config(
        CONFIGS / "synthetic" / "end2end.yaml",
        ["data.image_size=32", "model.hidden=16", "data.crop=square",
         "model.head=heatmap", "data.self_crop=2"],
    )  # fmt: skip
    torch.manual_seed(0)
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(
        model_checkpoint(build_model(cfg.model), cfg, trained=("encoder", "lifter")), checkpoint
    )
    frames = FPHA(root, "test", with_images=False)
    for path in frames.image_paths:
        write_image(path, (1920, 1080), dot=(960, 540), radius=40)
    views, reads = [], []
    original_views = FPHA.views

    def counted(self, index, affines):
        views.extend([index] * len(affines))
        reads.append(index)
        return original_views(self, index, affines)

    out = tmp_path / "eval"
    args = ["eval", str(checkpoint), "--data", "fpha", "--root", str(root), "--no-report"]
    args += [] if num is None else ["--num", str(num)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FPHA, "views", counted)
        assert main([*args, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["protocol"], metrics["crop"], metrics["self_crop"]) == ("image", "resize", 2)
    # Every frame evaluated is seen whole, through the first crop and through the 7 test-time
    # views of the second (the demo config's data.self_crop_turn and data.self_crop_shift),
    # its image read once a pass: 3 times.
    assert metrics["self_crop_views"] == 7
    evaluated = len(frames) if num is None else num
    assert len(frames) == 2 and sorted(views) == sorted(list(range(evaluated)) * (2 + 7))
    assert sorted(reads) == sorted(list(range(evaluated)) * 3)
    predictions = np.load(out / "predictions.npz")
    assert len(predictions["id"]) == evaluated
    assert np.isfinite(predictions["pred_hand_3d"]).all()
    assert np.isfinite(predictions["pred_hand_2d"]).all()
    # The views cut in two processes (--workers 2) from the same JPEGs: the same predictions.
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "processes")]) == 0
    processes = np.load(tmp_path / "processes" / "predictions.npz")
    for key in predictions.files:
        np.testing.assert_array_equal(processes[key], predictions[key])


@pytest.mark.parametrize("stage", ["lifter", "encoder"])
def test_training_with_an_empty_validation_split_is_refused_before_it_starts(tmp_path, stage):
    """A tree without sequence 1 (every subject's val sequence) has an empty val split: refused
    at once, naming it, instead of a first epoch and then a KeyError (image stages) or a
    TensorSplit's error that names nothing (the lifter)."""
    root = write_fpha(tmp_path / "fpha")
    for path in FPHA(root, "train", with_images=False).image_paths:
        write_image(path, (1920, 1080))
    shutil.rmtree(root / "Object_6D_pose_annotation_v1_1" / "Subject_1" / "open_milk" / "1")
    cfg = load_config(
        CONFIGS / "fpha" / f"{stage}.yaml",
        ["init_from=null", f"data.root={root}", "data.image_size=32",
         "model.backbone=resnet18", "model.hidden=16", "data.num_workers=0",
         "optim.batch_size=2", "optim.epochs=1"],
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"data.val_split: fpha split 'val' at .* has no samples"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_a_line_with_extra_fields_names_file_and_line(root):
    """64 values where a skeleton line has 63 (a frame index and 21 x 3 joints): refused, not
    read as the first 63."""
    path = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "3" / "skeleton.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1] + " 7.0"]) + "\n")
    with pytest.raises(
        DataFileError, match=r"skeleton\.txt:2: expected a frame index and 63 values, got 65 fields"
    ):
        FPHA(root, "test", with_images=False)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Subject_1/open_milk/1 5\nTraining 1\nTest 0\n", 1),
        ("Training 1\nSubject_1/open_milk/1\nTest 0\n", 2),
        ("Training 1\nSubject_1/open_milk 5\nTest 0\n", 2),
    ],
    ids=["before any header", "no label", "no sequence folder"],
)
def test_a_malformed_split_file_line_names_file_and_line(root, text, number):
    split_file = root / "data_split_action_recognition.txt"
    split_file.write_text(text)
    with pytest.raises(DataFileError) as error:
        FPHA(root, "train", protocol="action", with_images=False)
    assert str(error.value) == (
        f"{split_file}:{number}: expected '<Subject>/<action>/<seq> <label>'"
    )


def test_with_both_folder_spellings_the_preferred_ones_are_read(root):
    """Hand_pose_annotation_v1 and Object_6D_pose_annotation_v1_1 (the corrected object poses)
    are read when the other spellings exist too, here holding other numbers (every value + 7)."""
    expected = FPHA(root, "test", with_images=False)
    for preferred, other in (
        ("Hand_pose_annotation_v1", "Hand_pose_annotation_v1_1"),
        ("Object_6D_pose_annotation_v1_1", "Object_6D_pose_annotation_v1"),
    ):
        shutil.copytree(root / preferred, root / other)
        for path in (root / other).rglob("*.txt"):
            rows = [line.split() for line in path.read_text().splitlines()]
            shifted = [[t] + [f"{float(v) + 7:.6f}" for v in values] for t, *values in rows]
            path.write_text("\n".join(" ".join(row) for row in shifted) + "\n")
    both = FPHA(root, "test", with_images=False)
    assert both.ids == expected.ids
    np.testing.assert_array_equal(both.hand_3d, expected.hand_3d)
    np.testing.assert_array_equal(both.obj_3d, expected.obj_3d)


def test_juice_bottle_model_is_preferred_to_juice_model(root):
    """With both folders, juice_bottle_model holds the box (the milk's, posed alike, so the
    corners equal the milk frame's); juice_model's, twice as large, is not read."""
    write_fpha_sequence(root, "Subject_3", "pour_juice_bottle", "5", frames=1)
    box = box_vertices(BOX_LOW_M, BOX_HIGH_M)
    write_ply(root / "Object_models" / "juice_bottle_model" / "juice_bottle_model.ply", box)
    write_ply(root / "Object_models" / "juice_model" / "juice_model.ply", 2 * box)
    train = FPHA(root, "train", with_images=False)
    assert train.objects[-1] == "juice_bottle" and train.objects[0] == "milk"
    np.testing.assert_allclose(train.obj_3d[-1], train.obj_3d[0], atol=1e-6)


def test_ids_and_images_name_the_annotations_frame_numbers(root):
    """Subject_1/open_milk/3 (test, hope) with frame 0000's object pose removed: its one kept
    frame is 0001, whose id and image carry its number, not its place (0) in the sequence."""
    path = root / "Object_6D_pose_annotation_v1_1" / "Subject_1" / "open_milk" / "3"
    pose = path / "object_pose.txt"
    pose.write_text(pose.read_text().splitlines()[1] + "\n")
    dataset = FPHA(root, "test", with_images=False)
    assert dataset.ids == ["fpha/Subject_1/open_milk/3/0001"]
    assert dataset.image_paths[0].name == "color_0001.jpeg"


def test_the_largest_float32_value_is_read(root):
    """3.4e38 is below float32's largest (3.4028235e38): finite in the records, so read (the
    bound is float32's range, not a plausibility limit)."""
    path = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "3" / "skeleton.txt"
    fields = path.read_text().splitlines()[1].split()
    fields[5] = "3.4e38"
    path.write_text(" ".join(fields) + "\n")
    assert read_annotation_lines(path, 63)[1][4] == 3.4e38


@pytest.mark.parametrize(
    ("index", "shown"),
    [("-1", "'-1'"), ("+1", "'+1'"), ("1_0", "'1_0'"), ("100000", "'100000'"),
     ("1" * 20, repr("1" * 20)), ("x", "'x'")],
    ids=["negative", "signed", "underscored", "above the largest", "20 digits", "a word"],
)  # fmt: skip
def test_a_frame_index_that_is_no_frame_of_a_video_names_file_and_line(root, index, shown):
    """A frame index is the number of an image of a video (color_%04d.jpeg), 0 to 99999 (55
    minutes at 30 fps): a negative one, 20 digits, or what int() takes beyond ASCII digits
    was read as a frame before."""
    path = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "3" / "skeleton.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], index + lines[1][4:]]) + "\n")
    expected = f"{path}:2: frame index {shown}, expected a whole number from 0 to 99999"
    with pytest.raises(DataFileError) as error:
        FPHA(root, "test", with_images=False)
    assert str(error.value) == expected
    path.write_text("\n".join([lines[0], "99999" + lines[1][4:]]) + "\n")
    assert set(read_annotation_lines(path, 63)) == {0, 99999}


@pytest.mark.parametrize(
    ("folder", "name", "count"),
    [("Hand_pose_annotation_v1", "skeleton.txt", 63),
     ("Object_6D_pose_annotation_v1_1", "object_pose.txt", 16)],
)  # fmt: skip
def test_an_all_zero_annotation_line_leaves_its_frame_out_as_unannotated(root, folder, name, count):
    """A line of zeros is no annotation: 21 joints at the camera's centre (scored as ground
    truth before), or a zero matrix, no pose. Its frame is left out as one annotated in a single
    file is (counted, with a warning), the rest of the sequence read; a frame whose two lines
    are both zeros is left out too, said so."""
    path = root / folder / "Subject_1" / "open_milk" / "2" / name
    lines = path.read_text().splitlines()
    zeros = " ".join(["0.000000"] * count)
    path.write_text("\n".join([lines[0], "0001 " + zeros, *lines[2:]]) + "\n")
    kept_frames = len(FPHA(root, "train", with_images=False).ids)
    assert read_annotation_lines(path, count)[1] is None
    dataset = FPHA(root, "train", with_images=False)
    kept = "only an object pose" if name == "skeleton.txt" else "only a hand"
    assert dataset.unannotated == [f"fpha/Subject_1/open_milk/2/0001: {kept}"]
    assert "fpha/Subject_1/open_milk/2/0001" not in dataset.ids and dataset.skipped == []
    other = root / ("Object_6D_pose_annotation_v1_1" if count == 63 else "Hand_pose_annotation_v1")
    other = (
        other
        / "Subject_1"
        / "open_milk"
        / "2"
        / ("object_pose.txt" if count == 63 else "skeleton.txt")
    )
    other_lines = other.read_text().splitlines()
    other_zeros = " ".join(["0.000000"] * (16 if count == 63 else 63))
    other.write_text("\n".join([other_lines[0], "0001 " + other_zeros, *other_lines[2:]]) + "\n")
    dataset = FPHA(root, "train", with_images=False)
    assert dataset.unannotated == [
        "fpha/Subject_1/open_milk/2/0001: no annotation (lines of zeros)"
    ]
    assert len(dataset.ids) == kept_frames


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Test 5", "'Test 5' counts 5, the lines under it 2"),  # read as the whole split
        ("Test 1", "'Test 1' counts 1, the lines under it 2"),
        ("Test", "expected 'Test <count>'"),
        ("Test two", "expected 'Test <count>'"),
        ("Test -2", "expected 'Test <count>'"),
    ],
)
def test_a_split_section_of_another_length_than_its_header_names_the_header(root, header, message):
    """The fixture's split file: 'Training 3' and its 3 sequences (lines 1-4), then 'Test 2'
    (line 5) and its 2. A header whose count disagrees with the lines under it (a file cut
    short, or edited) is refused naming the header's line, for either split: both are read
    from the one file."""
    split_file = root / "data_split_action_recognition.txt"
    lines = split_file.read_text().splitlines()
    assert lines[4] == "Test 2"
    split_file.write_text("\n".join([*lines[:4], header, *lines[5:]]) + "\n")
    for split in ("train", "test"):
        with pytest.raises(DataFileError) as error:
            FPHA(root, split, protocol="action", with_images=False)
        assert str(error.value) == f"{split_file}:5: {message}"
