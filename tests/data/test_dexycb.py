"""DexYCB on a fixture tree: labels npz with the real keys, meta.yml, calibration yml, OBJ."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import zipfile

import numpy as np
import pytest
import torch
import yaml
from dataset_fixtures import (
    DEXYCB_POSES,
    DEXYCB_SERIAL,
    dexycb_joints,
    write_dexycb,
    write_dexycb_pose,
    write_image,
    write_whole_dexycb_val,
)

from hopose.data import DexYCB, build_dataset
from hopose.data.cache import prepare_cache
from hopose.data.check import check_dataset
from hopose.data.dexycb import DEXYCB_SERIALS, DEXYCB_SETUPS, DEXYCB_SUBJECTS, MissingHand
from hopose.data.splits import whole_split
from hopose.data.transforms import DataFileError
from hopose.geometry import project_points


def test_s0_val_takes_every_fifth_sequence_and_present_cameras(tmp_path, caplog):
    write_dexycb(tmp_path)
    dataset = DexYCB(tmp_path, "val", with_images=False)
    # s0 val: subjects 01-02, sequences i % 5 == 4 (4, 9, ..., 99 of subject 01's 100); only
    # sequence 4 has a camera on disk (1 of 8), 2 frames, of which frame 0 has a hand. Subject
    # 02 and the other cameras are missing (warned, listed).
    assert len(dataset) == 1
    assert dataset[0]["id"] == f"dexycb/20200709-subject-01/20200709_140004/{DEXYCB_SERIAL}/000000"
    assert any("20200813-subject-02" in m for m in dataset.missing)
    assert len(dataset.missing) == 1 + 7 + 19 * 8
    assert "folders missing" in caplog.text
    assert len(DexYCB(tmp_path, "train", with_images=False)) == 4 * 1  # sequences 0-3 on disk
    assert DEXYCB_SETUPS["s3"]["test"][2][:5] == (35, 36, 37, 38, 39)


def test_joints_in_mm_and_grasped_object_corners(tmp_path):
    write_dexycb(tmp_path)
    record = DexYCB(tmp_path, "val", with_images=False)[0]
    np.testing.assert_allclose(record["hand_3d"], dexycb_joints()[0] * 1000, atol=1e-3)
    # Grasped object = ycb_ids[1] = 5 (mustard), box x +-0.04, y +-0.03, z +-0.09 m, posed by
    # pose_y[1] = shift (0.05, 0, 0.7): corner 6 (+,+,+) -> (0.09, 0.03, 0.79) m = (90, 30, 790) mm.
    np.testing.assert_allclose(record["obj_3d"][6], [90.0, 30.0, 790.0], atol=1e-3)
    assert record["object"] == "006_mustard_bottle"


def test_a_frame_reached_whose_labels_hold_no_hand_raises_missing_hand(tmp_path):
    """pose.npz puts a hand in both frames, but frame 1's labels say none (joint_3d all -1):
    the frame is indexed, and reading it raises MissingHand naming the labels file."""
    write_dexycb(tmp_path)
    write_dexycb_pose(_sequence_folder(tmp_path), (True, True))
    dataset = DexYCB(tmp_path, "val", with_images=False)
    assert len(dataset) == 2
    with pytest.raises(MissingHand, match=r"labels_000001\.npz: no hand in this frame"):
        dataset[1]


def _add_camera(root, serial="839512060362"):
    """A second camera of s0 val's sequence: a copy of the fixture's one (same labels)."""
    folder = _sequence_folder(root)
    shutil.copytree(folder / DEXYCB_SERIAL, folder / serial)
    return serial


def test_frames_without_a_hand_are_left_out_of_every_camera_and_listed(tmp_path):
    """pose.npz's pose_m is all zero in frame 1 (fitted once per frame for all cameras): frame 1
    is left out of both cameras' entries, so a walk over the split (a DataLoader's) reads no
    frame without a hand; the two are counted and listed, naming labels file and pose.npz."""
    write_dexycb(tmp_path)
    serial = _add_camera(tmp_path)
    dataset = DexYCB(tmp_path, "val", with_images=False)
    # 2 cameras x 2 frames = 4 frames, of which frame 0 of each camera has a hand: 2 indexed.
    ids = [dataset[i]["id"] for i in range(len(dataset))]
    base = "dexycb/20200709-subject-01/20200709_140004"
    assert ids == [f"{base}/{DEXYCB_SERIAL}/000000", f"{base}/{serial}/000000"]
    folder = _sequence_folder(tmp_path)
    assert dataset.num_handless == 2
    assert dataset.handless == [
        f"{folder / s / 'labels_000001.npz'}: no hand in this frame "
        f"({folder / 'pose.npz'} pose_m[1] is all zero)"
        for s in (DEXYCB_SERIAL, serial)
    ]


def test_data_check_lists_the_frames_without_a_hand_and_passes(tmp_path, capsys):
    """`hopose data check` lists the frames left out for having no hand under "without a hand"
    (from the index, their labels unread), checks the one frame indexed, and finds no problem
    in a sound tree: every real sequence has such frames, so counting them as problems made
    the check fail on every DexYCB tree."""
    write_dexycb(tmp_path)
    folder = _sequence_folder(tmp_path)
    write_image(folder / DEXYCB_SERIAL / "color_000000.jpg", (640, 480))
    report = check_dataset("dexycb", str(tmp_path), splits=("val",), progress=False)
    assert report.frames == 1
    labels, pose = folder / DEXYCB_SERIAL / "labels_000001.npz", folder / "pose.npz"
    expected = f"{labels}: no hand in this frame ({pose} pose_m[1] is all zero)"
    assert report.problems["without a hand"] == [expected]
    assert "no annotation" not in report.problems
    assert set(report.problems) == {"missing folder", "without a hand"}  # the other cameras
    del report.problems["missing folder"]
    assert report.ok and "no problems found" in report.summary()


def test_indexing_reads_one_pose_npz_per_sequence_and_no_labels(tmp_path, monkeypatch):
    """Which frames have a hand is read from each sequence's pose.npz, once, whatever its
    number of cameras and frames, and only for a sequence with a camera on disk: never from
    the labels npz (8 cameras x ~72 frames of them per sequence in the real dataset)."""
    write_dexycb(tmp_path)
    _add_camera(tmp_path)
    loaded = []
    load = np.load

    def recording_load(path, *args, **kwargs):
        loaded.append(path)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", recording_load)
    DexYCB(tmp_path, "val", with_images=False)
    # s0 val's 20 sequences of subject 01: only sequence 4 (20200709_140004) has cameras.
    assert loaded == [_sequence_folder(tmp_path) / "pose.npz"]
    loaded.clear()
    DexYCB(tmp_path, "train", with_images=False)  # sequences 0-3 have a camera
    names = [f"20200709_14{i:04d}" for i in range(4)]
    assert loaded == [tmp_path / "20200709-subject-01" / n / "pose.npz" for n in names]


def test_left_hand_projection_and_intrinsics(tmp_path):
    write_dexycb(tmp_path, sides="left")
    dataset = DexYCB(tmp_path, "val", image_size=64)
    folder = tmp_path / "20200709-subject-01" / "20200709_140004" / DEXYCB_SERIAL
    write_image(folder / "color_000000.jpg", (640, 480))
    record = dataset[0]
    assert record["side"] == "left"
    np.testing.assert_allclose(record["hand_3d"][:, 0], -dexycb_joints()[0, :, 0] * 1000, atol=1e-3)
    # fx 610 * 64 / 640 = 61; mirrored cx = 639 - 321 = 318 -> 31.8.
    np.testing.assert_allclose(record["K"][0, [0, 2]], [61.0, 31.8], atol=1e-5)
    projected = project_points(torch.tensor(record["hand_3d"]), torch.tensor(record["K"]))
    np.testing.assert_allclose(record["hand_2d"], projected.numpy(), atol=1e-3)


def test_a_calibration_without_a_positive_focal_length_names_the_file(tmp_path):
    write_dexycb(tmp_path)
    path = tmp_path / "calibration" / "intrinsics" / f"{DEXYCB_SERIAL}_640x480.yml"
    color = {"fx": 610.0, "fy": 0.0, "ppx": 321.0, "ppy": 242.0}
    path.write_text(yaml.safe_dump({"color": color}))
    with pytest.raises(DataFileError, match=f"{DEXYCB_SERIAL}_640x480.yml color: expected pinhole"):
        DexYCB(tmp_path, "val")


def test_corrupt_labels_and_missing_calibration_name_the_file(tmp_path):
    write_dexycb(tmp_path)
    folder = tmp_path / "20200709-subject-01" / "20200709_140004" / DEXYCB_SERIAL
    (folder / "labels_000000.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataFileError, match=r"labels_000000\.npz"):
        DexYCB(tmp_path, "val", with_images=False)[0]
    (tmp_path / "calibration" / "intrinsics" / f"{DEXYCB_SERIAL}_640x480.yml").unlink()
    with pytest.raises(DataFileError, match=f"{DEXYCB_SERIAL}_640x480.yml"):
        DexYCB(tmp_path, "val")
    with pytest.raises(ValueError, match="setup"):
        DexYCB(tmp_path, "val", setup="s9")


def test_a_subject_folder_without_its_100_sequences_is_refused(tmp_path):
    # The setups select sequences by index in the sorted subject folder (the toolkit asserts
    # 100): with sequence 0 missing, index 4 (s0 val) would be the 6th grasp, a train sequence.
    write_dexycb(tmp_path, sequences=99)
    with pytest.raises(
        DataFileError, match=r"20200709-subject-01: 99 sequence folders, expected 100"
    ):
        DexYCB(tmp_path, "val", with_images=False)


def _sequence_folder(root):
    return root / "20200709-subject-01" / "20200709_140004"


def test_damaged_labels_archive_names_the_file(tmp_path):
    write_dexycb(tmp_path)
    path = _sequence_folder(tmp_path) / DEXYCB_SERIAL / "labels_000000.npz"
    # Damage the deflate stream of joint_3d (first byte 0xff: a reserved block type), leaving
    # the zip directory intact: zlib fails before the CRC check.
    with zipfile.ZipFile(path) as archive:
        header = archive.getinfo("joint_3d.npy").header_offset
    data = bytearray(path.read_bytes())
    name_length, extra_length = np.frombuffer(data[header + 26 : header + 30], dtype="<u2")
    data[header + 30 + int(name_length) + int(extra_length)] = 0xFF  # the member's first byte
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=r"labels_000000\.npz: cannot read labels"):
        DexYCB(tmp_path, "val", with_images=False)[0]
    # A single .npy array saved under the labels name.
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 21, 3)))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataFileError, match=r"labels_000000\.npz: expected an npz archive"):
        DexYCB(tmp_path, "val", with_images=False)[0]


def test_bad_meta_yml_gives_one_line_naming_the_file(tmp_path):
    write_dexycb(tmp_path)
    meta = _sequence_folder(tmp_path) / "meta.yml"
    meta.write_text("num_frames: [2\nycb_ids: [2, 5]\n")
    with pytest.raises(DataFileError, match=r"20200709_140004/meta\.yml: invalid YAML") as caught:
        DexYCB(tmp_path, "val", with_images=False)
    assert "\n" not in str(caught.value)
    meta.write_bytes(b"\xff\xfe\x00 not text \x89")
    with pytest.raises(DataFileError, match=r"20200709_140004/meta\.yml"):
        DexYCB(tmp_path, "val", with_images=False)
    # Index -1 would silently name the last of ycb_ids, another object than the one held.
    meta.write_text("num_frames: 2\nycb_ids: [2, 5]\nycb_grasp_ind: -1\nmano_sides: [right]\n")
    with pytest.raises(DataFileError, match=r"meta\.yml: bad .*ycb_grasp_ind -1 is negative"):
        DexYCB(tmp_path, "val", with_images=False)


def test_a_bad_meta_yml_is_skipped_with_on_error_skip_and_reported_by_data_check(tmp_path):
    """on_error="skip" leaves the sequence of a bad meta.yml out, as FPHA does its malformed
    annotation files, so that `hopose data check` lists it and walks the other sequences."""
    write_dexycb(tmp_path)
    bad = tmp_path / "20200709-subject-01" / "20200709_140009" / "meta.yml"  # s0 val's 2nd
    bad.write_text("num_frames: [2\n")
    dataset = DexYCB(tmp_path, "val", with_images=False, on_error="skip")
    assert len(dataset) == 1  # sequence 4's camera, frame 0 (frame 1 has no hand)
    assert (
        len(dataset.skipped) == 1 and "20200709_140009/meta.yml: invalid YAML" in dataset.skipped[0]
    )
    report = check_dataset("dexycb", str(tmp_path), splits=("val",), progress=False)
    assert report.frames == 1
    assert report.problems["bad annotation"] == dataset.skipped


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (None, r"pose\.npz: hand pose file not found"),
        ({"pose_m": np.zeros((1, 1, 51))}, r"pose\.npz pose_m: \(1, 1, 51\), expected \(2, hands"),
        ({"pose_m": np.zeros((2, 1, 48))}, r"pose\.npz pose_m: \(2, 1, 48\), expected 51 values"),
        ({"pose_m": np.full((2, 1, 51), "x")}, r"pose\.npz pose_m: expected numbers"),
        ({"pose_m": None}, r"pose\.npz: missing key 'pose_m'$"),
    ],
    ids=["missing", "fewer-frames", "no-translation", "strings", "no-pose_m"],
)
def test_a_missing_or_malformed_pose_npz_names_the_file(tmp_path, arrays, message):
    """Without a pose.npz whose pose_m holds meta.yml's num_frames (2) frames of 51 numbers,
    which frames have a hand is unknown: one line names the file (and field), and with
    on_error="skip" the sequence is left out and `hopose data check` lists it."""
    write_dexycb(tmp_path)
    path = _sequence_folder(tmp_path) / "pose.npz"
    if arrays is None:
        path.unlink()
    elif arrays["pose_m"] is None:
        np.savez(path, pose_y=np.zeros((2, 2, 7)))
    else:
        write_dexycb_pose(path.parent, (True, False), **arrays)
    with pytest.raises(DataFileError, match=message) as caught:
        DexYCB(tmp_path, "val", with_images=False)
    assert "\n" not in str(caught.value)
    dataset = DexYCB(tmp_path, "val", with_images=False, on_error="skip")
    assert len(dataset) == 0 and dataset.skipped == [str(caught.value)]
    assert dataset.sequence_info == [] and dataset.num_handless == 0
    report = check_dataset("dexycb", str(tmp_path), splits=("val",), progress=False)
    assert report.problems["bad annotation"] == [str(caught.value)]


def _joints_with_a_nan():
    joints = dexycb_joints()
    joints[0, 3, 0] = np.nan
    return joints


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            {"joint_3d": np.full((1, 21, 3), "x")},
            r"joint_3d: expected numbers of shape \(1, 21, 3\)",
        ),
        ({"joint_3d": _joints_with_a_nan()}, r"joint_3d: expected finite values .* got NaN or inf"),
        (
            {"pose_y": np.full(DEXYCB_POSES.shape, "a")},
            r"pose_y\[1\]: expected numbers of shape \(3, 4\)",
        ),
    ],
)
def test_non_numeric_or_non_finite_labels_name_the_file_and_field(tmp_path, labels, message):
    """A malformed label is a one-line DataFileError naming the npz and the field, which
    `hopose data check` (reading with on_error="skip") reports and walks past; NaN joints were
    read as they were, and strings stopped the check with a bare ValueError."""
    write_dexycb(tmp_path)
    path = _sequence_folder(tmp_path) / DEXYCB_SERIAL / "labels_000000.npz"
    np.savez(path, **({"joint_3d": dexycb_joints(), "pose_y": DEXYCB_POSES} | labels))
    with pytest.raises(DataFileError, match=r"labels_000000\.npz " + message) as caught:
        DexYCB(tmp_path, "val", with_images=False)[0]
    assert "\n" not in str(caught.value)
    report = check_dataset("dexycb", str(tmp_path), splits=("val",), progress=False)
    assert report.problems["bad annotation"] == [str(caught.value)]


def test_a_mano_side_other_than_right_or_left_names_the_meta_file(tmp_path, caplog):
    """A side spelt "Left" was read as a right hand, and the left hand went unmirrored."""
    write_dexycb(tmp_path, sides="Left")
    expected = r"20200709_140004/meta\.yml: mano_sides\[0\] must be 'right' or 'left', got 'Left'"
    with pytest.raises(DataFileError, match=expected):
        DexYCB(tmp_path, "val", with_images=False)
    dataset = DexYCB(tmp_path, "val", with_images=False, on_error="skip")
    assert len(dataset) == 0
    assert len(dataset.skipped) == 20  # subject 01's s0 val sequences, every one "Left"
    assert "skipped 20 bad annotations, first: " in caplog.text
    assert "20200709_140004/meta.yml: mano_sides[0]" in caplog.text


def _write_labels(root, joints=None, poses=None) -> None:
    """Replace frame 0 of s0 val's sequence (the fixture's only annotated camera)."""
    path = _sequence_folder(root) / DEXYCB_SERIAL / "labels_000000.npz"
    joints = dexycb_joints() if joints is None else joints
    np.savez(path, joint_3d=joints, pose_y=DEXYCB_POSES if poses is None else poses)


def test_the_grasped_object_pose_rotates_the_model_box_into_the_camera(tmp_path):
    """pose_y maps model points p to R p + t, not R^T p + t (the fixture's rotations are the
    identity, where the two agree)."""
    write_dexycb(tmp_path)
    poses = DEXYCB_POSES.copy()
    poses[1, :, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # 90 deg about z
    _write_labels(tmp_path, poses=poses)
    record = DexYCB(tmp_path, "val", with_images=False)[0]
    # Model corner 6 (+,+,+) = (0.04, 0.03, 0.09) m; R p = (-0.03, 0.04, 0.09); + t (0.05, 0, 0.7)
    # = (0.02, 0.04, 0.79) m = (20, 40, 790) mm. R^T p + t would give (80, -40, 790).
    np.testing.assert_allclose(record["obj_3d"][6], [20.0, 40.0, 790.0], atol=1e-3)


def test_a_grasp_index_of_zero_picks_the_first_object_and_its_pose(tmp_path):
    """ycb_grasp_ind 0 is a valid index (only negative ones are refused): the grasped object is
    ycb_ids[0] and its pose pose_y[0]."""
    write_dexycb(tmp_path)
    meta = _sequence_folder(tmp_path) / "meta.yml"
    meta.write_text("num_frames: 2\nycb_ids: [5, 2]\nycb_grasp_ind: 0\nmano_sides: [right]\n")
    record = DexYCB(tmp_path, "val", with_images=False)[0]
    assert record["object"] == "006_mustard_bottle"  # YCB id 5
    # pose_y[0] shifts by (0, 0, 0.5) m: corner 6 (0.04, 0.03, 0.09) -> (40, 30, 590) mm.
    np.testing.assert_allclose(record["obj_3d"][6], [40.0, 30.0, 590.0], atol=1e-3)


@pytest.mark.parametrize(
    ("poses", "shape"),
    [
        (DEXYCB_POSES[:1], r"\(1, 3, 4\)"),  # one object, the grasped index 1 is beyond it
        (DEXYCB_POSES[1], r"\(3, 4\)"),  # one pose saved without its object axis
        (np.float32(0.7), r"\(\)"),  # a scalar, which has no length
    ],
    ids=["one-object", "no-object-axis", "scalar"],
)
def test_pose_y_without_the_grasped_object_names_the_file(tmp_path, poses, shape):
    """pose_y must hold object ycb_grasp_ind (1 here) along its first of three axes; else a
    DataFileError names the npz and the shape, not an IndexError or TypeError, nor a row of
    the single pose read as the object's."""
    write_dexycb(tmp_path)
    _write_labels(tmp_path, poses=poses)
    with pytest.raises(DataFileError, match=r"labels_000000\.npz pose_y: " + shape + " lacks"):
        DexYCB(tmp_path, "val", with_images=False)[0]


def test_an_all_zero_pose_of_the_grasped_object_names_the_file(tmp_path):
    """The toolkit marks an object it did not pose with an all-zero pose_y; read as a pose it
    puts all 8 corners at the camera's centre (R = 0, t = 0: every corner (0, 0, 0)), whose 2D
    is 0 / 0. A one-line DataFileError names the npz, and `hopose data check` reports it."""
    write_dexycb(tmp_path)
    poses = DEXYCB_POSES.copy()
    poses[1] = 0.0
    _write_labels(tmp_path, poses=poses)
    with pytest.raises(DataFileError) as caught:
        DexYCB(tmp_path, "val", with_images=False)[0]
    assert str(caught.value).endswith(
        "labels_000000.npz pose_y[1]: all zero, no pose of the grasped object"
    )
    report = check_dataset("dexycb", str(tmp_path), splits=("val",), progress=False)
    assert report.problems["bad annotation"] == [str(caught.value)]


def test_a_joint_at_minus_one_metre_is_not_taken_for_the_no_hand_marker(tmp_path):
    """Only joint_3d all -1 marks a frame without a hand; one coordinate equal to -1 is a
    position (here the wrist 1 m to the camera's left)."""
    write_dexycb(tmp_path)
    joints = dexycb_joints()
    joints[0, 0, 0] = -1.0
    _write_labels(tmp_path, joints=joints)
    record = DexYCB(tmp_path, "val", with_images=False)[0]
    np.testing.assert_allclose(record["hand_3d"][0], [-1000.0, 0.0, 600.0], atol=1e-3)


@pytest.mark.parametrize("setup", sorted(DEXYCB_SETUPS))
def test_every_setup_puts_each_subject_camera_and_sequence_in_exactly_one_split(setup):
    """The toolkit's setups partition the 10 x 8 x 100 (subject, camera, sequence) triples:
    no grasp is both trained and evaluated on, and none is left out."""
    counts: dict[tuple[int, int, int], int] = {}
    for subjects, serials, sequences in DEXYCB_SETUPS[setup].values():
        for triple in itertools.product(subjects, serials, sequences):
            counts[triple] = counts.get(triple, 0) + 1
    assert len(counts) == 10 * 8 * 100
    assert set(counts.values()) == {1}


def test_s1_and_s2_hold_out_the_toolkits_subjects_and_cameras():
    """dex-ycb-toolkit's s1 (unseen subjects): train on subjects 01-06 and 10 (indices 0-5 and
    9), validate on 07 (6), test on 08 and 09 (7, 8), every camera and sequence of each; s2
    (unseen views): train on cameras 0-5, validate on camera 6, test on camera 7, every subject
    and sequence."""
    every_subject, every_camera, every_sequence = (
        tuple(range(10)),
        tuple(range(8)),
        tuple(range(100)),
    )
    expected = {
        "s1": {
            "train": ((0, 1, 2, 3, 4, 5, 9), every_camera, every_sequence),
            "val": ((6,), every_camera, every_sequence),
            "test": ((7, 8), every_camera, every_sequence),
        },
        "s2": {
            "train": (every_subject, tuple(range(6)), every_sequence),
            "val": (every_subject, (6,), every_sequence),
            "test": (every_subject, (7,), every_sequence),
        },
    }
    for setup, splits in expected.items():
        for split, chosen in splits.items():
            assert DEXYCB_SETUPS[setup][split] == chosen, (setup, split)
    assert [DEXYCB_SUBJECTS[i][-2:] for i in (7, 8)] == ["08", "09"]


def test_a_split_missing_a_camera_folder_is_not_whole_read_or_cached(tmp_path):
    """s0's val split whole on disk is the whole split, read from its folder or from a cache
    `hopose prepare` wrote of it; with one camera folder of it lost (a partial download), its
    loader goes on without that camera and lists it in ``missing``: read either way, the split
    is not whole, and the cache's meta.json counts the folder in ``left_out``. It read as whole
    when only skipped annotations counted. To keep the cache small, only subject 01's first
    val sequence (index 4) has a hand: frame 0 of its 8 cameras, each with labels and image."""
    root = tmp_path / "dexycb"
    write_whole_dexycb_val(root)
    first = root / "20200709-subject-01" / "20200709_140004"
    for pose in root.glob("*/*/pose.npz"):
        if pose.parent != first:
            write_dexycb_pose(pose.parent, (False, False))
    for serial in DEXYCB_SERIALS:
        if serial != DEXYCB_SERIAL:  # the fixture wrote this camera's labels
            shutil.copy(first / DEXYCB_SERIAL / "labels_000000.npz", first / serial)
        write_image(first / serial / "color_000000.jpg", (640, 480))
    lost = first / DEXYCB_SERIALS[3]
    for name, frames, left_out, whole in (
        ("whole", 8, [], True),
        ("camera lost", 7, [str(lost)], False),
    ):
        if not whole:
            shutil.rmtree(lost)
        direct = build_dataset("dexycb", "val", root=str(root), image_size=16)
        assert len(direct) == frames and direct.left_out == left_out, name
        assert whole_split(direct, "dexycb") is whole, name
        cache = prepare_cache(
            "dexycb", "val", tmp_path / name, root=str(root), image_size=16, progress=False
        )
        meta = json.loads((cache / "meta.json").read_text())
        assert (meta["left_out"], meta["left_out_errors"]) == (len(left_out), left_out), name
        cached = build_dataset("dexycb", "val", cache=str(cache), image_size=16)
        assert len(cached) == frames and whole_split(cached, "dexycb") is whole, name
