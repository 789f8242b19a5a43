"""``hopose data check`` and ``hopose prepare`` on fixture trees."""

from __future__ import annotations

import re

import numpy as np
import pytest
from dataset_fixtures import OBMAN_OBJ_PATH, write_dexycb, write_fpha, write_image, write_obman

from hopose.cli import main
from hopose.data import FPHA
from hopose.data.cache import CacheDataset
from hopose.data.check import CheckReport, check_dataset
from hopose.data.transforms import read_image


def test_check_reports_every_problem_without_stopping(tmp_path, capsys):
    root = write_fpha(tmp_path / "fpha")
    val = FPHA(root, "val", with_images=False)
    write_image(val.image_paths[0], (1920, 1080))
    write_image(val.image_paths[1], (64, 36))  # wrong size
    skeleton = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "3" / "skeleton.txt"
    skeleton.write_text(skeleton.read_text()[:100])  # truncated line
    pose = (
        root
        / "Object_6D_pose_annotation_v1_1"
        / "Subject_2"
        / "close_milk"
        / "2"
        / "object_pose.txt"
    )
    pose.write_text(pose.read_text().splitlines()[0] + "\n")  # frame 1 loses its object pose
    report = check_dataset("fpha", str(root), progress=False)
    # train: open_milk/2 (2) + close_milk/2 (1 left) = 3; val 2; test 0 (its skeleton is bad).
    assert report.frames == 5
    assert len(report.problems["bad annotation"]) == 1
    assert "open_milk/3/skeleton.txt:1" in report.problems["bad annotation"][0]
    assert report.problems["no annotation"] == ["fpha/Subject_2/close_milk/2/0001: only a hand"]
    assert len(report.problems["missing image"]) == 3
    assert len(report.problems["unreadable image"]) == 1
    assert main(["data", "check", "fpha", "--root", str(root), "--split", "val"]) == 1
    out = capsys.readouterr().out
    assert "unreadable image: 1" in out and "color_0001.jpeg" in out


def test_check_of_a_clean_split_passes(tmp_path):
    write_dexycb(tmp_path)
    folder = tmp_path / "20200709-subject-01" / "20200709_140004" / "836212060125"
    for t in range(2):
        write_image(folder / f"color_{t:06d}.jpg", (640, 480))
    report = check_dataset("dexycb", str(tmp_path), splits=("val",), progress=False)
    assert report.problems.keys() == {"missing folder", "without a hand"}
    assert "labels_000001.npz" in report.problems["without a hand"][0]


def test_prepare_writes_a_cache_equal_to_the_raw_records(tmp_path):
    root = write_fpha(tmp_path / "fpha")
    raw = FPHA(root, "val", image_size=32)
    for path in raw.image_paths:
        write_image(path, (1920, 1080), dot=(900, 500))
    out = tmp_path / "cache"
    args = ["prepare", "fpha", "--root", str(root), "--split", "val", "--out", str(out)]
    assert main([*args, "--image-size", "32"]) == 0
    cache = CacheDataset(out)
    assert cache.info == {
        "name": "fpha", "split": "val", "image_size": 32, "crop": "resize", "protocol": "hope",
        "jitter": False,
    }  # fmt: skip
    assert len(cache) == len(raw) == 2
    for index in range(2):
        expected, got = raw[index], cache[index]
        np.testing.assert_array_equal(got["image"], expected["image"])
        np.testing.assert_allclose(got["hand_2d"], expected["hand_2d"])
        assert got["id"] == expected["id"]


def test_prepare_skips_a_corrupt_image_with_a_counted_warning(tmp_path, caplog):
    root = write_fpha(tmp_path / "fpha")
    raw = FPHA(root, "val", image_size=32)
    # The first frame is the bad one: the cache's layout comes from the first good record.
    raw.image_paths[0].parent.mkdir(parents=True)
    raw.image_paths[0].write_bytes(b"\xff\xd8\xff\xe0 truncated")
    write_image(raw.image_paths[1], (1920, 1080))
    out = tmp_path / "cache"
    args = ["prepare", "fpha", "--root", str(root), "--split", "val", "--out", str(out)]
    assert main([*args, "--image-size", "32", "--on-error", "skip"]) == 0
    cache = CacheDataset(out)
    assert len(cache) == 1 and cache.meta["skipped"] == 1
    assert "color_0000.jpeg" in cache.meta["errors"][0]
    assert cache[0]["id"] == "fpha/Subject_1/open_milk/1/0001"
    assert "1 of 2 samples skipped" in caplog.text


def test_prepare_skip_reaches_the_annotations_the_loader_indexes(tmp_path, caplog, capsys):
    # The hope protocol's train split holds open_milk/2 and close_milk/2 (2 frames each);
    # open_milk/2's skeleton.txt is truncated in its second line. Raising names the file and
    # line; skipping leaves that sequence out, the loader's warning says so, and close_milk/2's
    # 2 frames are written.
    root = write_fpha(tmp_path / "fpha")
    path = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "2" / "skeleton.txt"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2] + "\n")
    for image in FPHA(root, "train", image_size=32, on_error="skip").image_paths:
        write_image(image, (1920, 1080))
    args = ["prepare", "fpha", "--root", str(root), "--split", "train", "--image-size", "32"]
    assert main([*args, "--out", str(tmp_path / "raise")]) == 1
    assert "open_milk/2/skeleton.txt:2: expected" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "skip"), "--on-error", "skip"]) == 0
    cache = CacheDataset(tmp_path / "skip")
    assert [cache[i]["id"] for i in range(len(cache))] == [
        "fpha/Subject_2/close_milk/2/0000", "fpha/Subject_2/close_milk/2/0001"
    ]  # fmt: skip
    assert "skipped 1 bad annotations" in caplog.text
    assert "on_error" not in cache.info


def test_check_names_non_finite_and_repeated_frames_and_empty_splits(tmp_path, capsys):
    root = write_fpha(tmp_path / "fpha")
    sequence = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk"
    lines = (sequence / "1" / "skeleton.txt").read_text().splitlines()
    fields = lines[1].split()
    (sequence / "1" / "skeleton.txt").write_text(
        "\n".join([lines[0], " ".join([fields[0], "nan", *fields[2:]])]) + "\n"
    )
    (sequence / "3" / "skeleton.txt").write_text("\n".join([lines[0], lines[0]]) + "\n")
    report = check_dataset("fpha", str(root), progress=False)
    bad = report.problems["bad annotation"]
    assert len(bad) == 2
    assert "open_milk/1/skeleton.txt:2: non-finite value 'nan'" in bad[0]
    assert "open_milk/3/skeleton.txt:2: frame 0 again (first on line 1)" in bad[1]
    # Both val and test held one sequence each, now left out: two empty splits.
    assert [m.split(":")[0] for m in report.problems["empty split"]] == ["val", "test"]
    assert main(["data", "check", "fpha", "--root", str(root)]) == 1
    assert "empty split: 2" in capsys.readouterr().out


def test_check_of_the_action_protocol_walks_its_train_and_test_splits(tmp_path, capsys):
    """The action protocol has no val split: the default walk is its train and test splits."""
    root = write_fpha(tmp_path / "fpha")
    report = check_dataset("fpha", str(root), protocol="action", progress=False)
    # train: open_milk/1 and /3 (charge_cell_phone is no FPHA-HO action); test: open_milk/2
    # (close_milk/4 is excluded): 2 frames each, no image written.
    assert report.frames == 6
    assert report.problems.keys() == {"missing image"}
    assert main(["data", "check", "fpha", "--root", str(root), "--protocol", "action"]) == 1
    assert "fpha at" in capsys.readouterr().out


def test_check_reports_a_frame_in_two_splits(tmp_path, monkeypatch, capsys):
    """Each split was walked on its own: frames trained and tested on passed the check."""
    root = write_fpha(tmp_path / "fpha")
    monkeypatch.setattr(FPHA, "sequences", lambda self: [("Subject_1", "open_milk", "1")])
    report = check_dataset("fpha", str(root), progress=False)
    assert report.problems["split overlap"] == [
        "fpha/Subject_1/open_milk/1/0000: in train and val",
        "fpha/Subject_1/open_milk/1/0001: in train and val",
        "fpha/Subject_1/open_milk/1/0000: in train and test",
        "fpha/Subject_1/open_milk/1/0001: in train and test",
    ]
    assert main(["data", "check", "fpha", "--root", str(root)]) == 1
    assert "split overlap: 4" in capsys.readouterr().out


def _png(tmp_path) -> bytearray:
    """The bytes of a whole 1920 x 1080 PNG (written to the FPHA tree under a .jpeg name: PIL
    reads the content, not the suffix)."""
    png = tmp_path / "frame.png"
    write_image(png, (1920, 1080))
    return bytearray(png.read_bytes())


def _folder(path, tmp_path) -> None:
    path.mkdir(parents=True)


def _another_height(path, tmp_path) -> None:
    write_image(path, (1920, 1000))  # FPHA's frames are 1920 x 1080


def _png_with_a_broken_checksum(path, tmp_path) -> None:
    # Its header reads: only PIL's verify() of the chunks finds the IDAT chunk whose CRC is
    # flipped. Decoding the pixels checks no CRC, so --decode verifies too (it missed this).
    data = _png(tmp_path)
    start = data.find(b"IDAT")  # 4-byte length before it, the CRC after its data
    length = int.from_bytes(data[start - 4 : start], "big")
    data[start + 4 + length] ^= 0xFF
    path.write_bytes(bytes(data))


def _png_cut_in_half(path, tmp_path) -> None:
    # verify() reads a PNG's chunks up to IEND: found from its header on, without decoding it.
    data = _png(tmp_path)
    path.write_bytes(bytes(data[: len(data) // 2]))


@pytest.mark.parametrize("decode", [False, True])
@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (_folder, r"^not a file$"),
        (_another_height, r"^size \(1920, 1000\), expected \(1920, 1080\)$"),
        (_png_with_a_broken_checksum, "broken PNG file"),
        (_png_cut_in_half, "(?i)truncated"),
    ],
    ids=["folder", "another-height", "png-broken-checksum", "png-cut-in-half"],
)
def test_a_bad_image_is_one_unreadable_image_naming_it(tmp_path, corrupt, expected, decode):
    """Beside a good frame, a bad one is the report's one problem, with or without --decode: an
    unreadable image, named by its path, then why (``expected``, a regular expression)."""
    root = write_fpha(tmp_path / "fpha")
    val = FPHA(root, "val", with_images=False)
    write_image(val.image_paths[0], (1920, 1080))
    bad = val.image_paths[1]
    corrupt(bad, tmp_path)
    report = check_dataset("fpha", str(root), splits=("val",), decode=decode, progress=False)
    assert report.problems.keys() == {"unreadable image"}
    [message] = report.problems["unreadable image"]
    assert message.startswith(f"{bad}: ")
    assert re.search(expected, message.removeprefix(f"{bad}: ")), message


def test_a_frame_without_a_hand_is_listed_not_checked(tmp_path):
    """DexYCB's val frame 1 has no hand (its sequence's pose.npz says so): it is left out of the
    index, listed under "without a hand", and only frame 0 is checked."""
    write_dexycb(tmp_path)
    folder = tmp_path / "20200709-subject-01" / "20200709_140004" / "836212060125"
    for t in range(2):
        write_image(folder / f"color_{t:06d}.jpg", (640, 480))
    report = check_dataset("dexycb", str(tmp_path), splits=("val",), progress=False)
    assert len(report.problems["without a hand"]) == 1
    assert report.frames == 1
    assert report.summary().splitlines()[0] == f"dexycb at {tmp_path}: 1 frames checked"


def test_a_folder_without_the_datasets_layout_is_a_problem_of_every_split(tmp_path, capsys):
    """No annotation folder at all: each split the loader cannot build is a layout problem
    (not a clean report of 0 frames), and the command exits 1."""
    expected = "none of the folders ('Hand_pose_annotation_v1', 'Hand_pose_annotation_v1_1')"
    report = check_dataset("fpha", str(tmp_path), progress=False)
    assert not report.ok and report.frames == 0
    assert report.problems.keys() == {"layout"}
    assert [m.split(": ")[0] for m in report.problems["layout"]] == ["train", "val", "test"]
    assert all(expected in message for message in report.problems["layout"])
    assert main(["data", "check", "fpha", "--root", str(tmp_path)]) == 1
    assert "layout: 3" in capsys.readouterr().out


def test_the_summary_shows_five_messages_of_a_kind_and_counts_the_rest():
    """7 messages of a kind: the first 5 shown, then '... and 2 more' (7 - 5); kinds sorted."""
    report = CheckReport(dataset="fpha", root="/d", frames=9)
    report.problems = {
        "missing image": [f"m{i}" for i in range(7)],
        "bad annotation": ["b0"],
    }
    assert report.summary().splitlines() == [
        "fpha at /d: 9 frames checked",
        "bad annotation: 1", "  b0",
        "missing image: 7", "  m0", "  m1", "  m2", "  m3", "  m4", "  ... and 2 more",
    ]  # fmt: skip


def test_data_check_walks_the_splits_asked_and_decodes_every_image_with_decode(tmp_path, capsys):
    """val's two frames only (train's and test's images are not written); a JPEG whose
    compressed data holds a stray marker keeps its header and its end marker, so only --decode
    finds it, in a line naming the file once."""
    root = write_fpha(tmp_path / "fpha")
    val = FPHA(root, "val", with_images=False)
    for path in val.image_paths:
        write_image(path, (1920, 1080))
    data = val.image_paths[1].read_bytes()
    middle = len(data) // 2  # well past the header (its scan starts at byte 609)
    val.image_paths[1].write_bytes(data[:middle] + b"\xff\xc4" + data[middle + 2 :])
    args = ["data", "check", "fpha", "--root", str(root), "--split", "val"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out == f"fpha at {root}: 2 frames checked\nno problems found\n"
    assert main([*args, "--decode"]) == 1
    out = capsys.readouterr().out
    assert "unreadable image: 1" in out
    # The loader's message already starts with the path: the check does not prefix it again.
    [line] = [line for line in out.splitlines() if str(val.image_paths[1]) in line]
    assert line.startswith(f"  {val.image_paths[1]}: cannot decode image (broken data stream")


@pytest.mark.parametrize("cut", [2000, 16000], ids=["in-the-scan", "half"])
def test_a_jpeg_cut_short_is_found_without_decoding(tmp_path, capsys, cut):
    """A JPEG cut short (an interrupted download) keeps its header, so reading the header passed
    it and `hopose eval` stopped at the frame: without --decode the check reads the file's end,
    which lacks JPEG's end marker FF D9. The fixture's black 1920x1080 JPEG is about 33 kB."""
    root = write_fpha(tmp_path / "fpha")
    val = FPHA(root, "val", with_images=False)
    for path in val.image_paths:
        write_image(path, (1920, 1080))
    cut_short = val.image_paths[1]
    cut_short.write_bytes(cut_short.read_bytes()[:cut])
    report = check_dataset("fpha", str(root), splits=("val",), progress=False)
    assert report.problems == {
        "unreadable image": [
            f"{cut_short}: truncated: the file does not end with JPEG's end marker (FF D9): cut "
            "short, or data after the marker (a camera's trailer, which --decode accepts)"
        ]
    }
    assert main(["data", "check", "fpha", "--root", str(root), "--split", "val"]) == 1
    assert "unreadable image: 1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("tail", "found"),
    [
        (b"", False),
        (b"\x00" * 100, False),  # padded to a block: the image is whole
        (b"\r\n", False),
        (None, True),  # the first half, then zeros to the full length: a preallocated download
    ],
    ids=["nothing", "zeros", "newline", "cut-then-zeros"],
)
def test_padding_after_a_jpegs_end_marker_is_no_cut(tmp_path, tail, found):
    """Zero bytes and whitespace after the end marker are padding, and the image decodes whole;
    zeros after a cut, as a download into a preallocated file leaves them, are a cut still."""
    root = write_fpha(tmp_path / "fpha")
    val = FPHA(root, "val", with_images=False)
    for path in val.image_paths:
        write_image(path, (1920, 1080))
    data = val.image_paths[1].read_bytes()
    if tail is None:
        half = len(data) // 2
        val.image_paths[1].write_bytes(data[:half] + bytes(len(data) - half))
    else:
        val.image_paths[1].write_bytes(data + tail)
    report = check_dataset("fpha", str(root), splits=("val",), progress=False)
    assert report.ok is not found
    if not found:  # the premise: Pillow decodes the padded file whole
        assert read_image(val.image_paths[1]).size == (1920, 1080)


def test_obman_without_shapenet_root_is_one_layout_line_naming_the_option(tmp_path, capsys):
    """The pickles' obj_path is on the authors' disk: without --shapenet-root no sample's mesh
    is found. That is reported once per split as a layout problem naming the option, not as a
    bad annotation of each sample (about 150,000 identical lines on the real dataset)."""
    root, shapenet = tmp_path / "obman", tmp_path / "ShapeNetCore.v2"
    write_obman(root, shapenet, sides=("right", "left"))
    for index in range(2):
        write_image(root / "train" / "rgb" / f"{index:08d}.jpg", (256, 256))
    report = check_dataset("obman", str(root), splits=("train",), progress=False)
    meta = root / "train" / "meta" / "00000000.pkl"
    assert report.problems == {
        "layout": [
            f"train: the meshes of 2 of 2 samples are not found (first: {meta}: obj_path "
            f"{OBMAN_OBJ_PATH} not found, a path on the authors' disk (shapenet_root, the "
            "ShapeNetCore.v2 folder, maps it)): pass --shapenet-root, the ShapeNetCore.v2 folder"
        ]
    }
    args = ["data", "check", "obman", "--root", str(root), "--split", "train"]
    assert main(args) == 1
    assert "layout: 1" in capsys.readouterr().out
    assert main([*args, "--shapenet-root", str(shapenet)]) == 0
    assert "no problems found" in capsys.readouterr().out
