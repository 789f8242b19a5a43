"""Splits read into memory and shared between stages: the first records of a larger read,
reads in the background, and torch's global generator left alone; the dataset options they are
built with, judged by the loaders' own checks before anything is built."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from dataset_fixtures import write_fpha

from hopose.config import DataConfig
from hopose.data import DATASETS, build_dataset, check_options, option_defaults, splits
from hopose.data.splits import RecordList, SplitCache, build_split, whole_split
from tiny_runs import tiny

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")


def test_split_cache_gives_the_first_records_of_a_split_read_before(monkeypatch):
    """A read of 24 crops after one of 48 with the same image settings reads nothing: it gets
    the first 24 records, equal to what rendering 24 gives; more samples, other image settings
    or pose-only records are read anew; a split streamed from disk is never kept."""
    reads = []
    real_build = splits.build_dataset
    monkeypatch.setattr(
        splits, "build_dataset", lambda *a, **k: reads.append(k) or real_build(*a, **k)
    )
    data = tiny("encoder").data  # 32-px jittered square crops, in memory
    assert data.in_memory and data.crop == "square" and data.options == {"jitter": True}
    cache = SplitCache()
    first = build_split(data, "train", with_images=True, cache=cache)
    assert len(first) == 48 and len(reads) == 1

    half = replace(data, num_train=24, num_workers=2, self_crop=3)  # read-only fields differ
    kept = build_split(half, "train", with_images=True, cache=cache)
    assert len(kept) == 24 and len(reads) == 1  # nothing rendered
    fresh = build_split(half, "train", with_images=True)
    assert len(reads) == 2
    for a, b in zip(kept, fresh, strict=True):
        assert a["id"] == b["id"] and np.array_equal(a["image"], b["image"])
        assert np.array_equal(a["K"], b["K"])  # the same jittered crop

    for other, with_images in (
        (replace(data, num_train=64), True),  # more than was read
        (replace(data, image_size=40), True),
        (replace(data, options={}), True),  # no jitter
        (data, False),  # pose-only
    ):
        before = len(reads)
        build_split(other, "train", with_images=with_images, cache=cache)
        assert len(reads) == before + 1, (other, with_images)
    assert len(build_split(data, "val", with_images=True, cache=cache)) == 16  # its own split
    before = len(reads)
    streamed = build_split(
        replace(data, num_train=80, in_memory=False), "train", with_images=True, cache=cache
    )
    assert not isinstance(streamed, RecordList) and len(reads) == before + 1
    assert (
        len(build_split(replace(data, num_train=80), "train", with_images=True, cache=cache)) == 80
    )
    assert len(reads) == before + 2  # the streamed read was not kept


def test_a_split_read_ahead_is_the_split_a_stage_reads_and_its_error_reaches_that_stage(
    monkeypatch,
):
    """read_ahead renders a split in the background (the demo: the encoder's crops while the
    lifter trains); the stage that then builds it gets the same records, rendering nothing
    itself, and an error of the background read is raised in that stage."""
    reads = []
    real_build = splits.build_dataset
    monkeypatch.setattr(
        splits, "build_dataset", lambda *a, **k: reads.append(k) or real_build(*a, **k)
    )
    data = tiny("encoder").data
    cache = SplitCache()
    cache.read_ahead(data, "train", with_images=True)
    cache.read_ahead(data, "train", with_images=True)  # already being read: nothing more
    ahead = build_split(data, "train", with_images=True, cache=cache)
    assert len(reads) == 1
    cache.read_ahead(replace(data, num_train=24), "train", with_images=True)  # kept: nothing
    assert (
        len(build_split(replace(data, num_train=24), "train", with_images=True, cache=cache)) == 24
    )
    assert len(reads) == 1
    alone = build_split(data, "train", with_images=True)
    assert len(ahead) == len(alone) == 48
    for a, b in zip(ahead, alone, strict=True):
        assert a["id"] == b["id"] and np.array_equal(a["image"], b["image"])
        assert np.array_equal(a["K"], b["K"])

    def broken(*args, **kwargs):
        raise ValueError("root: no such folder")

    monkeypatch.setattr(splits, "build_dataset", broken)
    cache.read_ahead(data, "val", with_images=True)
    with pytest.raises(ValueError, match="root: no such folder"):
        build_split(data, "val", with_images=True, cache=cache)


def test_a_read_ahead_leaves_torchs_global_generator_to_the_stage_that_trains(monkeypatch):
    """The demo reads the encoder's crops ahead while the lifter stage trains from its seed: the
    background read draws nothing from torch's global generator, whenever it starts."""
    started = threading.Event()
    real_build = splits.build_dataset
    monkeypatch.setattr(
        splits, "build_dataset", lambda *a, **k: started.wait(5) and real_build(*a, **k)
    )
    cache, data = SplitCache(), tiny("encoder").data
    cache.read_ahead(data, "train", with_images=True)
    torch.manual_seed(0)  # the training stage seeds, then the read starts
    started.set()
    assert len(build_split(data, "train", with_images=True, cache=cache)) == data.num_train
    drawn = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(drawn, torch.rand(3))


@pytest.mark.parametrize(("field", "value"), [("seed", 1), ("crop", "square")])
def test_a_split_of_another_seed_or_crop_is_read_anew_and_pose_only_splits_are_kept(
    monkeypatch, field, value
):
    """The seed draws other grasps and the crop gives the 2D another camera: a split read with
    one is not the split of the other, so the cache reads it anew, and it is the split a read
    without any cache gives. Pose-only records are kept in memory even when data.in_memory is
    off (the lifter stage's), so a second read of the first split reads nothing."""
    reads = []
    real_build = splits.build_dataset
    monkeypatch.setattr(
        splits, "build_dataset", lambda *a, **k: reads.append(k) or real_build(*a, **k)
    )
    data = tiny("lifter").data  # 48 pose-only train records, seed 0, resized 32-px images
    assert not data.in_memory and (data.seed, data.crop) == (0, "resize")
    other = replace(data, **{field: value})
    cache = SplitCache()
    first = build_split(data, "train", with_images=False, cache=cache)
    second = build_split(other, "train", with_images=False, cache=cache)
    assert len(reads) == 2 and reads[1][field] == value
    alone = build_split(other, "train", with_images=False)
    for b, c in zip(second, alone, strict=True):
        assert b["id"] == c["id"] and np.array_equal(b["hand_2d"], c["hand_2d"])
    pairs = zip(first, second, strict=True)
    assert not any(np.array_equal(a["hand_2d"], b["hand_2d"]) for a, b in pairs)
    again = build_split(data, "train", with_images=False, cache=cache)
    assert isinstance(again, RecordList) and len(reads) == 3  # only `alone` was read since
    assert [r["id"] for r in again] == [r["id"] for r in first]


def test_training_poses_are_the_hand_joints_then_the_box_corners_of_every_record():
    """(M, 29, 3) float32: rows 0-20 the record's hand_3d, rows 21-28 its obj_3d, in order."""
    records = [
        {
            "hand_3d": np.arange(63, dtype=np.float64).reshape(21, 3) + 100 * m,
            "obj_3d": -np.arange(24, dtype=np.float64).reshape(8, 3) - 100 * m,
        }
        for m in range(2)
    ]
    poses = splits.training_poses(RecordList(records))
    assert poses.dtype == torch.float32 and poses.shape == (2, 29, 3)
    # Record 1's wrist is (0, 1, 2) + 100 and its last corner -(21, 22, 23) - 100.
    assert poses[1, 0].tolist() == [100.0, 101.0, 102.0]
    assert poses[1, 28].tolist() == [-121.0, -122.0, -123.0]
    for m, record in enumerate(records):
        np.testing.assert_array_equal(poses[m, :21].numpy(), record["hand_3d"])
        np.testing.assert_array_equal(poses[m, 21:].numpy(), record["obj_3d"])


def test_a_split_read_into_memory_knows_whether_it_is_the_whole_split(tmp_path, caplog):
    """What an evaluation records as whole_split (metrics.json): FPHA-HO's fixture holds 2 val
    frames (Subject_1/open_milk/1). Read into memory, 1 of them is not the split, 2 or all
    are; the first records of a whole read kept in a SplitCache are whole only where none is
    left out; frames skipped as unreadable (on_error: skip) leave the split not whole."""
    root = write_fpha(tmp_path / "fpha")
    data = DataConfig(name="fpha", root=str(root), image_size=16, in_memory=True)
    for num, whole in ((None, True), (2, True), (3, True), (1, False)):
        read = build_split(replace(data, num_val=num), "val", with_images=False)
        assert isinstance(read, RecordList) and read.whole_split is whole, num
        assert whole_split(read, "fpha") is whole, num
    cache = SplitCache()
    build_split(data, "val", with_images=False, cache=cache)  # all of it, kept
    for num, whole in ((None, True), (2, True), (1, False)):
        kept = build_split(replace(data, num_val=num), "val", with_images=False, cache=cache)
        assert whole_split(kept, "fpha") is whole, num
    # Not read into memory: the loader itself (build_dataset's Subset where num cuts it).
    lazy = build_split(replace(data, in_memory=False, num_val=1), "val", with_images=True)
    assert whole_split(lazy, "fpha") is False
    # One skeleton line cut short: on_error=skip drops the sequence's annotations (a file read
    # whole), its 2 frames.
    skeleton = root / "Hand_pose_annotation_v1" / "Subject_1" / "open_milk" / "1" / "skeleton.txt"
    lines = skeleton.read_text().splitlines()
    skeleton.write_text("\n".join([lines[0], lines[1][:40]]) + "\n")
    skipping = replace(data, options={"on_error": "skip"})
    for in_memory in (True, False):
        read = build_split(replace(skipping, in_memory=in_memory), "val", with_images=False)
        assert len(read) == 0 and whole_split(read, "fpha") is False, in_memory
    assert (
        whole_split(build_split(tiny("lifter").data, "val", with_images=False), "synthetic") is None
    )


# A bad value of each loader option, and the loader's own message for it.
BAD_OPTIONS = [
    ("synthetic", "jitter", "maybe", "jitter: expected true or false, got 'maybe'"),
    ("synthetic", "focal_scale", [1, -2], "focal_scale: expected a positive number or [low, "
     "high], got [1, -2]"),
    ("synthetic", "free_fraction", 2, "free_fraction: must be in [0, 1], got 2"),
    ("fpha", "protocol", "bogus", "protocol: expected one of ('hope', 'action'), got 'bogus'"),
    ("fpha", "margin", -1, "margin: expected a share of the square's side >= 0, got -1"),
    ("fpha", "on_error", "ignore", "on_error: expected one of ('raise', 'skip'), got 'ignore'"),
    ("ho3d", "version", ["v3"], "version: HO-3D has ('v2', 'v3'), got ['v3']"),
    ("dexycb", "setup", "s9", "setup: DexYCB has ('s0', 's1', 's2', 's3'), got 's9'"),
    ("obman", "shapenet_root", 3, "shapenet_root: expected the ShapeNetCore.v2 folder or None, "
     "got 3"),
    ("obman", "shapenet_root", " ", "shapenet_root: expected the ShapeNetCore.v2 folder or None, "
     "got ' '"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "option", "value", "message"), BAD_OPTIONS)
def test_a_bad_option_is_refused_before_building_naming_its_field(
    tmp_path, name, option, value, message
):
    """The loader names its argument; check_options runs the same check without building
    anything and names the field it is given. ho3d's list and ObMan's number were TypeError
    tracebacks (a dict lookup, ``Path(3)``)."""
    with pytest.raises(ValueError) as built:
        build_dataset(name, "train", root=str(tmp_path), num_samples=2, **{option: value})
    assert str(built.value) == message
    with pytest.raises(ValueError) as checked:
        check_options(name, "resize", {option: value}, prefix="data.options.")
    assert str(checked.value) == f"data.options.{message}"


def test_every_options_default_passes_and_an_unknown_or_unjitterable_one_is_named():
    """Each option of each dataset has its loader's check (a missing one is a KeyError), and
    its default passes it; jitter on is refused with whole frames, as the loaders refuse it."""
    for name in DATASETS:
        check_options(name, "resize", option_defaults(name), prefix="data.options.")
    check_options("fpha", "square", {"jitter": True, "margin": 0.5, "protocol": "action"})
    with pytest.raises(ValueError) as error:
        check_options("fpha", "resize", {"jitter": True}, prefix="data.options.")
    assert str(error.value) == (
        "data.options.jitter: true jitters square crops, but data.crop is 'resize': set "
        "data.crop to 'square' or data.options.jitter to false"
    )
    with pytest.raises(ValueError) as error:
        check_options("fpha", "square", {"setup": "s0"}, prefix="data.options.")
    assert str(error.value) == (
        "unknown key data.options.setup: the fpha dataset takes ('protocol', 'margin', "
        "'on_error', 'jitter')"
    )
