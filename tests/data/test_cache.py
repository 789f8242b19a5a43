"""The memory-mapped cache: exact round trip, resumable builds, skipped samples, build_dataset."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import write_fpha, write_image
from torch.utils.data import DataLoader

from hopose.cli import main
from hopose.data import FPHA, build_dataset, collate_samples, synthetic_split_seed
from hopose.data.cache import (
    BUILD_FILES,
    CACHE_VERSION,
    CacheDataset,
    as_recorded,
    prepare_cache,
    refusal,
    write_cache,
)
from hopose.data.sample import ARRAY_KEYS
from hopose.data.splits import whole_split
from hopose.data.transforms import UNREADABLE_IMAGE_HINT, DataFileError
from hopose.data.workers import as_collected


def make_record(index: int, size: int = 8) -> dict:
    """A record whose every value encodes its index, so mixing up rows cannot go unnoticed."""
    rng = np.random.default_rng(index)
    return {
        "image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "K": np.eye(3, dtype=np.float32) * (index + 1),
        "hand_3d": rng.normal(size=(21, 3)).astype(np.float32),
        "obj_3d": rng.normal(size=(8, 3)).astype(np.float32),
        "hand_2d": rng.normal(size=(21, 2)).astype(np.float32),
        "obj_2d": rng.normal(size=(8, 2)).astype(np.float32),
        "orig_K": np.eye(3, dtype=np.float32),
        "orig_size": np.array([640, 480], dtype=np.float32),
        "side": "right" if index % 2 else "left",
        "object": f"obj{index % 3}",
        "id": f"test/s/q/{index:04d}",
        "grasp": f"g{index}",
    }


class Records:
    """An index-addressable dataset that counts reads and can fail at chosen indices."""

    def __init__(self, n: int, fail: set[int] = frozenset()):
        self.n, self.fail, self.reads = n, set(fail), []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        self.reads.append(index)
        if index in self.fail:
            # As hopose.data.transforms.read_frame_image words an unreadable image.
            raise DataFileError(
                f"/data/frame_{index:04d}.jpg: cannot decode image; {UNREADABLE_IMAGE_HINT}"
            )
        return make_record(index)


def assert_same(record: dict, expected: dict) -> None:
    np.testing.assert_array_equal(record["image"], expected["image"])
    for key in ARRAY_KEYS:
        np.testing.assert_array_equal(record[key], expected[key])
    for key in ("side", "object", "id", "grasp"):
        assert record[key] == expected[key]


def test_round_trip_is_exact(tmp_path):
    out = write_cache(Records(10), tmp_path / "c", progress=False, chunk_size=4)
    cache = CacheDataset(out)
    assert len(cache) == 10 and cache.image_size == 8
    for index in range(10):
        assert_same(cache[index], make_record(index))
    batch = collate_samples([cache[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 8, 8)


def test_maps_of_another_size_or_missing_name_the_record(tmp_path):
    """The first record's maps set the cache's layout (8 x 8 here, as its image); a later record
    whose map is another size, or that has none, is refused naming it, not broadcast or left
    as zeros."""
    records = [make_record(i) | {"segmentation": np.full((8, 8), i, np.uint8)} for i in range(3)]
    records[1]["segmentation"] = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match=r"^test/s/q/0001: 'segmentation' is \(4, 4\), the cache"):
        write_cache(records, tmp_path / "a", progress=False)
    del records[1]["segmentation"]
    with pytest.raises(ValueError, match=r"^test/s/q/0001: no 'segmentation', which the cache"):
        write_cache(records, tmp_path / "b", progress=False)


def test_without_images_reads_no_pixels(tmp_path):
    out = write_cache(Records(3), tmp_path / "c", progress=False)
    record = CacheDataset(out, with_images=False)[2]
    assert record["image"].shape == (0, 0, 3)
    np.testing.assert_array_equal(record["hand_3d"], make_record(2)["hand_3d"])


def test_interrupted_build_resumes_at_the_failed_chunk(tmp_path):
    failing = Records(10, fail={6})
    with pytest.raises(DataFileError, match=r"frame_0006\.jpg"):
        write_cache(failing, tmp_path / "c", progress=False, chunk_size=4)
    assert not (tmp_path / "c" / "meta.json").exists()
    with pytest.raises(DataFileError, match="not a finished cache"):
        CacheDataset(tmp_path / "c")
    # Chunk 0 (samples 0-3) was committed; the rerun starts at chunk 1 (sample 4).
    healed = Records(10)
    write_cache(healed, tmp_path / "c", progress=False, chunk_size=4)
    assert sorted(healed.reads) == list(range(4, 10))
    cache = CacheDataset(tmp_path / "c")
    for index in range(10):
        assert_same(cache[index], make_record(index))


def test_resuming_a_different_build_is_refused(tmp_path):
    with pytest.raises(DataFileError):
        write_cache(Records(10, fail={5}), tmp_path / "c", progress=False, chunk_size=4)
    with pytest.raises(ValueError, match="unfinished build"):
        write_cache(Records(12), tmp_path / "c", progress=False, chunk_size=4)


def test_skip_counts_bad_samples_and_leaves_them_out(tmp_path, caplog):
    out = write_cache(
        Records(6, fail={1, 4}), tmp_path / "c", progress=False, chunk_size=4, on_error="skip"
    )
    meta = json.loads((out / "meta.json").read_text())
    assert meta["skipped"] == 2 and meta["num_valid"] == 4
    # Each reason without the hint to skip such images, which is what the build does.
    assert meta["errors"] == [
        "sample 1: /data/frame_0001.jpg: cannot decode image",
        "sample 4: /data/frame_0004.jpg: cannot decode image",
    ]
    assert "2 of 6 samples skipped" in caplog.text
    cache = CacheDataset(out)
    assert [cache[i]["id"] for i in range(len(cache))] == [
        f"test/s/q/{i:04d}" for i in (0, 2, 3, 5)
    ]


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_data_loader_with_workers_reads_the_memmap(tmp_path, start_method):
    """Workers read the records whole, pixels too, from a cache whose files this process has
    opened already: forked, they inherit its open maps; started by a fork server, they get it
    pickled without them (the maps are not pickled) and reopen them."""
    out = write_cache(Records(8), tmp_path / "c", progress=False, workers=2, chunk_size=2)
    cache = CacheDataset(out)
    assert_same(cache[0], make_record(0))  # opens the maps here
    loader = DataLoader(
        cache, batch_size=None, num_workers=2, collate_fn=as_collected,
        multiprocessing_context=start_method,
    )  # fmt: skip
    records = list(loader)
    assert len(records) == 8
    for index, record in enumerate(records):
        assert_same(record, make_record(index))


def test_build_dataset_reads_a_cache_and_checks_it(tmp_path):
    info = {"name": "fpha", "split": "train", "crop": "resize", "protocol": "hope"}
    out = write_cache(Records(5), tmp_path / "c", progress=False, info=info)
    dataset = build_dataset("fpha", "train", cache=str(out), image_size=8, num_samples=3)
    assert len(dataset) == 3
    assert_same(dataset[2], make_record(2))
    with pytest.raises(ValueError, match="split"):
        build_dataset("fpha", "test", cache=str(out), image_size=8)
    with pytest.raises(ValueError, match="image_size"):
        build_dataset("fpha", "train", cache=str(out), image_size=224)
    with pytest.raises(ValueError, match="protocol='hope'"):
        build_dataset("fpha", "train", cache=str(out), image_size=8, protocol="action")
    with pytest.raises(ValueError, match="crop='resize'"):
        build_dataset("fpha", "train", cache=str(out), image_size=8, crop="square")


def test_build_dataset_finds_the_split_in_a_folder_of_caches(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        info = {"name": "fpha", "split": split}
        write_cache(Records(n), tmp_path / "fpha" / split, progress=False, info=info)
    sizes = {
        s: len(build_dataset("fpha", s, cache=str(tmp_path / "fpha"), image_size=8))
        for s in ("train", "val")
    }
    assert sizes == {"train": 3, "val": 2}


def test_build_dataset_names_the_bad_field():
    with pytest.raises(ValueError, match="name"):
        build_dataset("imagenet", "train")
    with pytest.raises(ValueError, match="root"):
        build_dataset("fpha", "train")
    with pytest.raises(ValueError, match="num_samples"):
        build_dataset("synthetic", "train")
    with pytest.raises(ValueError, match="split"):
        synthetic_split_seed(0, "holdout")


def test_synthetic_split_seeds_differ_per_split_and_follow_the_base_seed():
    seeds = {
        (base, split): synthetic_split_seed(base, split)
        for base in (0, 1)
        for split in ("train", "val", "test")
    }
    # Pinned once (numpy.random.SeedSequence([base, key]).generate_state(1), keys train 0,
    # val 1, test 2): a change of the derivation would silently change every synthetic split
    # (its frames, its ids and every cache and result made from it), so it must fail here.
    assert seeds == {
        (0, "train"): 2968811710,
        (0, "val"): 3964924996,
        (0, "test"): 3141116543,
        (1, "train"): 1835504127,
        (1, "val"): 1189033389,
        (1, "test"): 1596810411,
    }


def test_a_cache_that_records_no_split_is_refused_for_every_split(tmp_path):
    """What `hopose synth` wrote before it took --split: one cache that would have served as
    train, val and test alike."""
    info = {"name": "synthetic", "seed": 0, "free_fraction": 0.2}
    out = write_cache(Records(4), tmp_path / "c", progress=False, info=info)
    for split in ("train", "val", "test"):
        with pytest.raises(ValueError, match=r"records no split"):
            build_dataset("synthetic", split, cache=str(out), image_size=8)


def test_synth_caches_the_split_that_build_dataset_generates(tmp_path):
    out = tmp_path / "synthetic" / "val"
    args = ["synth", "--split", "val", "--out", str(out), "--num", "3", "--image-size", "32"]
    assert main(args) == 0
    cached = build_dataset("synthetic", "val", cache=str(tmp_path / "synthetic"), image_size=32)
    generated = build_dataset("synthetic", "val", num_samples=3, image_size=32)
    for record, expected in zip(cached, generated, strict=True):
        assert record["id"] == expected["id"]  # synthetic/<split seed>/<grasp>/<index>
        np.testing.assert_array_equal(record["hand_3d"], np.float32(expected["hand_3d"]))
    with pytest.raises(ValueError, match=r"holds split='val', config asks 'train'"):
        build_dataset("synthetic", "train", cache=str(out), image_size=32)


@pytest.mark.parametrize(
    ("name", "text"),
    [("meta.json", "not json"), ("meta.json", '{"a": 1}'), ("build.json", "[1]")],
)
def test_a_foreign_folder_is_refused_naming_its_file(tmp_path, name, text):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / name).write_text(text)
    with pytest.raises(DataFileError, match=rf"c/{name}: not a hopose cache file"):
        write_cache(Records(3), tmp_path / "c", progress=False)


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("meta.json", "{", "meta.json: not a hopose cache file"),
        ("strings.json", "", "strings.json: not a hopose cache file"),
        ("valid.npy", "", r"valid\.npy: not a readable \.npy array"),
        ("arrays/K.npy", "x", r"K\.npy: not a readable \.npy array"),
    ],
)
def test_a_damaged_cache_names_the_damaged_file(tmp_path, name, damage, message):
    out = write_cache(Records(3), tmp_path / "c", progress=False)
    (out / name).write_text(damage)
    with pytest.raises(DataFileError, match=message):
        CacheDataset(out)


@pytest.mark.parametrize(
    ("name", "field", "value", "message"),
    [
        ("meta.json", "info", None, "info is null, not an object"),
        ("meta.json", "image_size", None, "image_size is null, not an integer"),
        ("meta.json", "num_samples", True, "num_samples is true, not an integer"),
        ("meta.json", "map_keys", None, "map_keys is null, not a list of strings"),
        ("meta.json", "left_out", "1", 'left_out is "1", not an integer'),
        ("strings.json", "id", 3, "id is 3, not a list of strings"),
    ],
)
def test_a_cache_field_of_another_type_names_the_file_and_field(
    tmp_path, name, field, value, message
):
    """A meta.json or strings.json field of another type, read where build_dataset reads the
    cache (its info, image size, maps and strings) or whole_split its counts: one line naming
    the file and field, where it was a TypeError or AttributeError traceback far from the
    file (or, for num_samples, a count mismatch naming no field)."""
    out = write_cache(
        Records(3), tmp_path / "c", progress=False,
        info={"name": "fpha", "split": "val", "crop": "resize"},
    )  # fmt: skip
    payload = json.loads((out / name).read_text())
    (out / name).write_text(json.dumps(payload | {field: value}))
    expected = f"{out / name}: damaged cache file, {message}"
    with pytest.raises(DataFileError, match=f"^{re.escape(expected)}$"):
        whole_split(build_dataset("fpha", "val", cache=str(out), image_size=8), "fpha")


@pytest.mark.parametrize(
    ("name", "field", "value", "message"),
    [
        ("build.json", "map_keys", None, "map_keys is null, not a list of strings"),
        ("build.json", "image_size", None, "image_size is null, not an integer"),
        ("chunks/000000.json", "valid", None, "valid is null, not a list of true and false"),
        ("chunks/000000.json", "strings", {"id": None}, 'strings is {"id": null}, not an object'),
    ],
)
def test_resuming_a_build_whose_file_holds_a_field_of_another_type_names_it(
    tmp_path, name, field, value, message
):
    """An interrupted build's build.json or committed chunk damaged: the rerun that resumes it
    names the file and field, where it was a TypeError or KeyError from where the value is
    used (or, for the image size, "the cache holds (None, None, 3)" naming a record)."""
    with pytest.raises(DataFileError, match=r"frame_0006\.jpg"):
        write_cache(Records(10, fail={6}), tmp_path / "c", progress=False, chunk_size=4)
    path = tmp_path / "c" / name
    path.write_text(json.dumps(json.loads(path.read_text()) | {field: value}))
    with pytest.raises(DataFileError, match=re.escape(f"{path}: damaged cache file, {message}")):
        write_cache(Records(10), tmp_path / "c", progress=False, chunk_size=4)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    ("info", "refused"),
    [
        ({"name": "fpha", "split": "val", "crop": "square"}, True),
        ({"name": "fpha", "split": "val", "crop": "resize"}, True),
        ({"name": "ho3d", "split": "val", "crop": "square"}, True),
    ],
    ids=["real-crops", "real-frames", "other-real-crops"],
)
def test_an_old_cache_of_real_images_is_refused_but_its_poses_read(
    tmp_path, info, refused, version
):
    # Versions 1 and 2 resampled a real dataset's images with filters that self-cropping's and
    # predict's views no longer use; their poses still hold (a synthetic cache of them is refused
    # for its generator's former poses: the test below).
    out = write_cache(Records(2), tmp_path / "c", progress=False, info=info)
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps(meta | {"version": version}))
    if refused:
        with pytest.raises(DataFileError, match=rf"c/meta\.json: .* version {version}\); run"):
            CacheDataset(out)
    else:
        assert len(CacheDataset(out)) == 2
    assert len(CacheDataset(out, with_images=False)) == 2
    (out / "meta.json").write_text(json.dumps(meta | {"version": 0}))
    with pytest.raises(DataFileError, match=r"cache version 0 unknown"):
        CacheDataset(out)


@pytest.mark.parametrize("name", ["obman", "fpha"])
def test_a_version_3_cache_of_obman_is_refused_poses_too_and_other_datasets_read(tmp_path, name):
    """Version 3 wrote ObMan's K with the renderer's principal point (128, half a pixel off its
    images in hopose's pixel-centre coordinates): refused with and without images, since the
    lifter's rays read K; another dataset's version-3 cache holds nothing of ObMan's camera."""
    info = {"name": name, "split": "val", "crop": "resize"}
    out = write_cache(Records(2), tmp_path / "c", progress=False, info=info)
    _set_version(out / "meta.json", 3)
    for with_images in (True, False):
        if name == "obman":
            with pytest.raises(DataFileError, match=r"c/meta\.json: ObMan's principal .* run"):
                CacheDataset(out, with_images=with_images)
        else:
            assert len(CacheDataset(out, with_images=with_images)) == 2


def _set_version(path, version: int) -> None:
    """Make the build.json or meta.json at ``path`` say an older hopose wrote it."""
    path.write_text(json.dumps(json.loads(path.read_text()) | {"version": version}))


def test_rerunning_the_build_of_an_old_cache_rebuilds_it(tmp_path):
    """CacheDataset's refusal of a version-2 cache of real images says to run prepare again;
    that rerun returned the finished cache as it was, still refused. It is rebuilt now."""
    info = {"name": "fpha", "split": "val", "crop": "resize"}
    out = write_cache(Records(10), tmp_path / "c", progress=False, chunk_size=4, info=info)
    _set_version(out / "meta.json", 2)
    _set_version(out / "build.json", 2)
    np.save(out / "images.npy", np.zeros((10, 8, 8, 3), np.uint8))  # the former filter's pixels
    with pytest.raises(DataFileError, match=r"version 2\); run the same `hopose prepare` again"):
        CacheDataset(out)
    # Interrupted at sample 6, the rebuild leaves no finished cache, and none of version 2's
    # chunks (0-3, 4-7, 8-9, all committed) counts as done: only its own chunk 0 does.
    with pytest.raises(DataFileError, match=r"frame_0006\.jpg"):
        write_cache(Records(10, fail={6}), out, progress=False, chunk_size=4, info=info)
    with pytest.raises(DataFileError, match="not a finished cache"):
        CacheDataset(out)
    healed = Records(10)
    write_cache(healed, out, progress=False, chunk_size=4, info=info)
    assert sorted(healed.reads) == list(range(4, 10))
    cache = CacheDataset(out)
    assert cache.meta["version"] == CACHE_VERSION
    for index in range(10):
        assert_same(cache[index], make_record(index))
    # An old cache of other samples is still refused, not written over.
    _set_version(out / "meta.json", 2)
    with pytest.raises(ValueError, match=r"c: holds a finished cache of num_samples=10, this run "):
        write_cache(Records(9), out, progress=False, chunk_size=4, info=info)


@pytest.mark.parametrize(
    ("name", "version", "rebuilt"),
    [("fpha", 3, False), ("obman", 3, True), ("fpha", 4, False), ("synthetic", 4, True)],
)
def test_a_rerun_rebuilds_an_old_cache_only_where_it_is_refused(tmp_path, name, version, rebuilt):
    """A finished old cache that the reader takes as it is (FPHA's of versions 3 and 4) is
    returned by a rerun of its build without a read; ObMan's of version 3, refused for its
    principal point, and the synthetic dataset's of version 4, refused for its generator's
    former poses, are built again."""
    info = {"name": name, "split": "val", "crop": "resize"}
    out = write_cache(Records(5), tmp_path / "c", progress=False, info=info)
    _set_version(out / "meta.json", version)
    rerun = Records(5)
    write_cache(rerun, out, progress=False, info=info)
    assert bool(rerun.reads) is rebuilt
    assert CacheDataset(out).meta["version"] == (CACHE_VERSION if rebuilt else version)


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_an_old_synthetic_cache_is_refused_naming_why(tmp_path, version):
    """Its poses are not what its seed makes now: read, it would train or score other samples
    than a fresh split of the same seed without a word; its poses alone are refused too."""
    info = {"name": "synthetic", "split": "test", "crop": "resize"}
    out = write_cache(Records(2), tmp_path / "c", progress=False, info=info)
    _set_version(out / "meta.json", version)
    why = rf"generator before 2026-12-06.*version {version}\); run the same `hopose synth` or"
    for with_images in (True, False):
        with pytest.raises(DataFileError, match=why):
            CacheDataset(out, with_images=with_images)
    assert refusal(CACHE_VERSION, info, with_images=True) is None


@pytest.mark.parametrize("version", [True, 3.0, "3", None])
def test_a_version_that_is_not_an_integer_is_unknown(tmp_path, version):
    """JSON's true equals 1 and 3.0 equals 3 in Python; neither was written by hopose."""
    out = write_cache(Records(2), tmp_path / "c", progress=False, info={"name": "fpha"})
    _set_version(out / "meta.json", version)
    with pytest.raises(DataFileError, match=rf"cache version {version} unknown"):
        CacheDataset(out)


def test_an_unfinished_build_of_an_old_version_is_started_over(tmp_path):
    with pytest.raises(DataFileError):
        write_cache(Records(10, fail={6}), tmp_path / "c", progress=False, chunk_size=4)
    _set_version(tmp_path / "c" / "build.json", 2)
    rerun = Records(10)
    write_cache(rerun, tmp_path / "c", progress=False, chunk_size=4)
    # Sample 0 twice: once for the cache's layout, once in chunk 0 (not resumed).
    assert sorted(rerun.reads) == [0, *range(10)]
    assert CacheDataset(tmp_path / "c").meta["version"] == CACHE_VERSION


def test_a_cache_or_build_of_another_root_is_refused_naming_both(tmp_path):
    """A finished cache was returned as it was to a run reading another root (its samples,
    not the new root's), and an interrupted build resumed from another root mixed the two."""
    a, b = tmp_path / "A", tmp_path / "B"
    finished = write_cache(Records(3), tmp_path / "done", progress=False, root=a)
    assert json.loads((finished / "meta.json").read_text())["root"] == str(a.resolve())
    roots = (re.escape(str(a.resolve())), re.escape(str(b.resolve())))
    other = r"done: holds a cache of root {}, this run reads root {}; remove".format(*roots)
    with pytest.raises(ValueError, match=other):
        write_cache(Records(3), finished, progress=False, root=b)
    same = tmp_path / "x" / ".." / "A"  # A, spelled otherwise
    assert write_cache(Records(3), finished, progress=False, root=same) == finished
    with pytest.raises(DataFileError):
        write_cache(Records(10, fail={6}), tmp_path / "part", progress=False, chunk_size=4, root=a)
    with pytest.raises(ValueError, match=other.replace("done", "part")):
        write_cache(Records(10), tmp_path / "part", progress=False, chunk_size=4, root=b)


def _fpha_val_with_images(root):
    """The FPHA fixture tree with the val split's 2 frames (open_milk/1) as black JPEGs."""
    write_fpha(root)
    for path in FPHA(root, "val", with_images=False).image_paths:
        write_image(path, (1920, 1080))
    return root


def test_prepare_records_the_resolved_root_outside_info(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("A", "B"):
        _fpha_val_with_images(tmp_path / name)
    out = prepare_cache("fpha", "val", "c", root="A", image_size=16, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["root"] == str(tmp_path.resolve() / "A") and "root" not in meta["info"]
    with pytest.raises(
        ValueError, match=r"^c: holds a cache of root .*/A, this run reads root .*/B;"
    ):
        prepare_cache("fpha", "val", "c", root="B", image_size=16, progress=False)
    again = prepare_cache(
        "fpha", "val", "c", root=str(tmp_path / "A"), image_size=16, progress=False
    )
    assert again == out


def test_a_capped_real_cache_serves_no_more_than_its_cap(tmp_path):
    """`prepare --num 1` of FPHA's 2 val frames: its cache was read as the whole split."""
    root = _fpha_val_with_images(tmp_path / "fpha")
    args = ["prepare", "fpha", "--root", str(root), "--split", "val", "--image-size", "16"]
    assert main([*args, "--num", "1", "--out", str(tmp_path / "one")]) == 0
    capped = str(tmp_path / "one")
    assert CacheDataset(capped).info["num_samples"] == 1
    for asks, said in ((None, "all of the split"), (2, "2")):
        refused = r"one holds the first 1 samples of the split \(prepared with --num 1\), "
        with pytest.raises(ValueError, match=rf"{refused}num_samples asks {said}$"):
            build_dataset("fpha", "val", cache=capped, image_size=16, num_samples=asks)
    first = build_dataset("fpha", "val", cache=capped, image_size=16, num_samples=1)
    assert len(first) == 1
    assert whole_split(first, "fpha") is False  # what an evaluation records (metrics.json)
    # A cap beyond the split's 2 frames cuts nothing: the whole split, recorded as such.
    assert main([*args, "--num", "5", "--out", str(tmp_path / "all")]) == 0
    assert "num_samples" not in CacheDataset(tmp_path / "all").info
    every = build_dataset("fpha", "val", cache=str(tmp_path / "all"), image_size=16)
    assert len(every) == 2 and whole_split(every, "fpha") is True
    # num_samples cuts the whole cache to its first frame; 2 and more cut nothing.
    for asks, whole in ((1, False), (2, True), (3, True)):
        read = build_dataset("fpha", "val", cache=str(tmp_path / "all"), image_size=16,
                             num_samples=asks)  # fmt: skip
        assert whole_split(read, "fpha") is whole, asks
    # From the dataset's folder as from its cache; a synthetic split is its size, never cut.
    assert whole_split(build_dataset("fpha", "val", root=str(root), image_size=16), "fpha")
    cut = build_dataset("fpha", "val", root=str(root), image_size=16, num_samples=1)
    assert whole_split(cut, "fpha") is False
    assert whole_split(build_dataset("synthetic", "val", num_samples=2), "synthetic") is None


def test_a_cache_of_a_split_whose_loader_left_annotations_out_is_not_the_whole_split(tmp_path):
    """FPHA's train split (protocol hope) in the fixture is Subject_1/open_milk/2 and
    Subject_2/close_milk/2, 2 frames each. With close_milk/2's skeleton.txt cut short,
    `prepare --on-error skip` indexes open_milk/2 alone:
    its cache holds 2 samples, none skipped while being written, and 2 frames left out while
    indexing, which an evaluation read from it must not call the whole split."""
    root = write_fpha(tmp_path / "fpha")
    for path in FPHA(root, "train", with_images=False).image_paths:
        write_image(path, (1920, 1080))
    skeleton = root / "Hand_pose_annotation_v1" / "Subject_2" / "close_milk" / "2" / "skeleton.txt"
    lines = skeleton.read_text().splitlines()
    skeleton.write_text("\n".join([lines[0], lines[1][:40]]) + "\n")
    args = ["prepare", "fpha", "--root", str(root), "--split", "train", "--image-size", "16"]
    assert main([*args, "--on-error", "skip", "--out", str(tmp_path / "c")]) == 0
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert (meta["num_samples"], meta["skipped"], meta["left_out"]) == (2, 0, 1)
    assert meta["left_out_errors"][0].startswith(str(skeleton))
    read = build_dataset("fpha", "train", cache=str(tmp_path / "c"), image_size=16)
    assert len(read) == 2 and whole_split(read, "fpha") is False
    # The same split read from its folder says the same (the loader's own count).
    direct = build_dataset("fpha", "train", root=str(root), image_size=16, on_error="skip")
    assert len(direct) == 2 and whole_split(direct, "fpha") is False


def test_an_option_given_as_a_tuple_reruns_and_reads_its_cache(tmp_path):
    """info's focal_scale=(0.8, 1.2) is the list [0.8, 1.2] in meta.json: the identical rerun
    was refused as "a different dataset", and a config giving the tuple as "holds
    focal_scale=[0.8, 1.2], config asks (0.8, 1.2)"."""
    options = {"num_samples": 2, "image_size": 16, "focal_scale": (0.8, 1.2)}
    out = prepare_cache("synthetic", "val", tmp_path / "c", progress=False, **options)
    meta = (out / "meta.json").read_text()
    assert prepare_cache("synthetic", "val", out, progress=False, **options) == out
    assert (out / "meta.json").read_text() == meta  # returned as it was, not rebuilt
    assert len(build_dataset("synthetic", "val", cache=str(out), **options)) == 2


@pytest.mark.parametrize(
    ("name", "array", "expected"),
    [
        # Read before: smaller images trained silently, float pixels reached the network.
        ("images.npy", np.zeros((3, 4, 4, 3), np.uint8), "(3, 8, 8, 3) uint8"),
        ("images.npy", np.zeros((3, 8, 8, 3), np.float32), "(3, 8, 8, 3) uint8"),
        # An IndexError at sample 2; a RuntimeError where grey images were batched.
        ("images.npy", np.zeros((2, 8, 8, 3), np.uint8), "(3, 8, 8, 3) uint8"),
        ("images.npy", np.zeros((3, 8, 8), np.uint8), "(3, 8, 8, 3) uint8"),
        ("maps/segmentation.npy", np.zeros((3, 4, 4), np.uint8), "(3, 8, 8) uint8"),
        # A TypeError where batched; float64 poses batched as another dtype than the model's.
        ("arrays/hand_3d.npy", np.full((3, 21, 3), "x"), "(3, 21, 3) float32"),
        ("arrays/hand_3d.npy", np.zeros((2, 21, 3), np.float32), "(3, 21, 3) float32"),
        ("arrays/K.npy", np.zeros((3, 3, 3), np.float64), "(3, 3, 3) float32"),
        # An IndexError; and flags read as numbers, sample 0's 0 leaving it out.
        ("valid.npy", np.ones((3, 1), bool), "(3,) bool"),
        ("valid.npy", np.array([0, 1, 1]), "(3,) bool"),
    ],
    ids=[
        "smaller images", "float images", "fewer images", "grey images", "smaller maps",
        "strings for poses", "fewer poses", "float64 K", "2-D flags", "integer flags",
    ],
)  # fmt: skip
def test_a_cache_file_of_another_layout_than_its_meta_is_refused_naming_it(
    tmp_path, name, array, expected
):
    """Each .npy file of a cache of three 8 px samples (meta.json's num_samples 3, image_size
    8) replaced after the build: refused when the cache is opened, naming the file, what it
    holds and what meta.json describes, where it was read as it was or failed far from it."""
    records = [make_record(i) | {"segmentation": np.full((8, 8), i, np.uint8)} for i in range(3)]
    out = write_cache(records, tmp_path / "c", progress=False)
    np.save(out / name, array)
    message = (
        f"{out / name}: damaged cache file, an array of {array.shape} {array.dtype}, not the "
        f"{expected} its meta.json describes"
    )
    with pytest.raises(DataFileError, match=f"^{re.escape(message)}$"):
        CacheDataset(out)
    if name.endswith(("images.npy", "segmentation.npy")):  # a pose-only read reads no pixels
        np.testing.assert_array_equal(CacheDataset(out, with_images=False)[2]["K"], 3 * np.eye(3))


def test_a_strings_file_of_fewer_samples_is_refused_naming_it(tmp_path):
    out = write_cache(Records(3), tmp_path / "c", progress=False)
    strings = json.loads((out / "strings.json").read_text())
    (out / "strings.json").write_text(json.dumps(strings | {"id": strings["id"][:2]}))
    message = f"{out / 'strings.json'}: damaged cache file, id lists 2 samples, not the 3 its"
    with pytest.raises(DataFileError, match=f"^{re.escape(message)} meta.json describes$"):
        CacheDataset(out)


def test_a_damaged_cache_is_a_one_line_error_of_the_command(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "build.json").write_text("garbage")
    args = ["synth", "--split", "val", "--num", "2", "--out", str(tmp_path / "c")]
    assert main(args) == 1
    assert capsys.readouterr().err.startswith(
        f"hopose synth: error: {tmp_path / 'c' / 'build.json'}: not a hopose cache file"
    )


def test_synth_and_prepare_synthetic_write_the_same_cache(tmp_path, capsys):
    """docs/synthetic.md: `hopose synth --split S` is `hopose prepare synthetic --split S`; the
    second found the first's cache "of a different dataset" (it recorded no free_fraction)."""
    out = str(tmp_path / "c")
    common = ["--split", "val", "--num", "2", "--image-size", "16", "--out", out]
    assert main(["synth", *common]) == 0
    assert main(["prepare", "synthetic", *common]) == 0, capsys.readouterr().err
    info = CacheDataset(out).info
    assert (info["free_fraction"], info["focal_scale"]) == (0.2, 1.0)


def test_a_config_asking_other_synthetic_options_is_refused(tmp_path):
    out = tmp_path / "c"
    assert main(["prepare", "synthetic", "--split", "val", "--num", "2", "--out", str(out)]) == 0
    for field, value in (("free_fraction", 0.5), ("focal_scale", [1.0, 2.0])):
        with pytest.raises(
            ValueError, match=rf"holds {field}=.*, config asks {re.escape(str(value))}"
        ):
            build_dataset("synthetic", "val", cache=str(out), **{field: value})
    assert len(build_dataset("synthetic", "val", cache=str(out), free_fraction=0.2)) == 2


def test_an_option_the_config_leaves_at_its_default_is_checked_against_the_cache(tmp_path):
    """A cache records the options it was built with; a config that leaves one at its default
    asks the default, so an action-protocol FPHA train cache (whose frames include the HOPE
    protocol's test sequences) is no HOPE config's train split, nor a margin-0.5 cache a
    default-margin one's. Options that say how to read, not what (on_error, shapenet_root),
    are not compared."""
    action = write_cache(
        Records(2), tmp_path / "action", progress=False,
        info={"name": "fpha", "split": "train", "protocol": "action", "margin": 0.5},
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"holds protocol='action', config asks 'hope'"):
        build_dataset("fpha", "train", cache=str(action), image_size=8)
    with pytest.raises(ValueError, match=r"holds margin=0.5, config asks 0.2"):
        build_dataset("fpha", "train", cache=str(action), image_size=8, protocol="action")
    read = build_dataset(
        "fpha", "train", cache=str(action), image_size=8, protocol="action", margin=0.5,
        on_error="skip",
    )  # fmt: skip
    assert len(read) == 2
    obman = write_cache(
        Records(2), tmp_path / "obman", progress=False,
        info={"name": "obman", "split": "val", "shapenet_root": "/data/ShapeNetCore.v2"},
    )  # fmt: skip
    assert len(build_dataset("obman", "val", cache=str(obman), image_size=8)) == 2


def test_a_synthetic_cache_of_another_seed_or_fewer_samples_is_refused(tmp_path):
    out = tmp_path / "c"
    args = ["synth", "--split", "val", "--num", "3", "--image-size", "16", "--out", str(out)]
    assert main([*args, "--seed", "0"]) == 0
    with pytest.raises(ValueError, match=r"holds seed=0, config asks 5"):
        build_dataset("synthetic", "val", cache=str(out), image_size=16, seed=5, num_samples=3)
    with pytest.raises(ValueError, match=r"holds 3 samples, num_samples asks 4"):
        build_dataset("synthetic", "val", cache=str(out), image_size=16, num_samples=4)
    assert len(build_dataset("synthetic", "val", cache=str(out), image_size=16, num_samples=2)) == 2


def test_a_pose_only_read_checks_the_image_size(tmp_path):
    """The lifter stage reads no pixels, but a cache's K and 2D labels are in its images'
    pixels: at another image_size they would be in the wrong units."""
    out = write_cache(
        Records(2), tmp_path / "c", progress=False, info={"name": "fpha", "split": "val"}
    )
    with pytest.raises(ValueError, match=r"holds 8 px images, image_size is 224"):
        build_dataset("fpha", "val", cache=str(out), image_size=224, with_images=False)
    assert len(build_dataset("fpha", "val", cache=str(out), image_size=8, with_images=False)) == 2


def test_a_square_cache_is_read_with_the_jitter_it_holds(tmp_path):
    """A square cache recording no jitter (written before the real loaders took one) holds
    plain crops: a config asking jittered ones was served them silently; a jittered one was
    served to a config asking none. Jitter on whole frames is refused, cache or not: there is
    no square to jitter."""
    plain = write_cache(
        Records(2), tmp_path / "plain", progress=False,
        info={"name": "fpha", "split": "val", "crop": "square"},
    )  # fmt: skip
    jittered = write_cache(
        Records(2), tmp_path / "jittered", progress=False,
        info={"name": "fpha", "split": "val", "crop": "square", "jitter": True},
    )  # fmt: skip
    whole = write_cache(
        Records(2), tmp_path / "whole", progress=False,
        info={"name": "fpha", "split": "val", "crop": "resize", "jitter": False},
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"holds jitter=False, config asks True"):
        build_dataset("fpha", "val", cache=str(plain), crop="square", image_size=8, jitter=True)
    with pytest.raises(ValueError, match=r"holds jitter=True, config asks False; rebuild it"):
        build_dataset("fpha", "val", cache=str(jittered), crop="square", image_size=8)
    for cache, asks in ((plain, {}), (plain, {"jitter": False}), (jittered, {"jitter": True})):
        read = build_dataset("fpha", "val", cache=str(cache), crop="square", image_size=8, **asks)
        assert len(read) == 2
    assert len(build_dataset("fpha", "val", cache=str(whole), image_size=8)) == 2
    refused = r"jitter: true jitters square crops, but crop is 'resize'"
    with pytest.raises(ValueError, match=refused):
        build_dataset("fpha", "val", cache=str(whole), image_size=8, jitter=True)


def test_negative_workers_name_the_field(tmp_path, capsys):
    args = ["synth", "--split", "val", "--num", "2", "--workers", "-1", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, before anything runs
        main(args)
    assert exited.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "hopose synth: error: argument --workers: expected an integer >= 0, got '-1'"
    assert not any(tmp_path.iterdir())


class MappedRecords(Records):
    """:class:`Records` whose records also carry a segmentation map filled with their index."""

    def __getitem__(self, index: int) -> dict:
        return super().__getitem__(index) | {"segmentation": np.full((8, 8), index, np.uint8)}


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by its path there, and its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_full_disk_names_the_file_and_the_rerun_writes_the_same_cache(tmp_path, monkeypatch):
    """The disk fills while chunk 1 of 3 (samples 4-7) is written: its images.npy rows take half
    their bytes, then ENOSPC. The build stops with an OSError naming images.npy (written through
    a memory map, the process died of SIGBUS, "Bus error", naming nothing); the rerun with room
    again resumes at chunk 1 and writes byte for byte the files of a build that never failed,
    the zeros of skipped sample 5 included."""
    whole = tmp_path / "whole"
    write_cache(MappedRecords(10, fail={5}), whole, progress=False, chunk_size=4, on_error="skip")
    out = tmp_path / "c"
    write = os.pwrite
    image_writes = []

    def fill_the_disk(fd: int, data: memoryview, position: int) -> int:
        if os.fstat(fd).st_ino != (out / "images.npy").stat().st_ino:
            return write(fd, data, position)
        image_writes.append(position)
        if len(image_writes) == 2:  # chunk 1's first write: half of it fits
            return write(fd, data[: len(data) // 2], position)
        if len(image_writes) == 3:  # the rest
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(fd, data, position)

    monkeypatch.setattr(os, "pwrite", fill_the_disk)
    with pytest.raises(OSError) as info:
        write_cache(MappedRecords(10, fail={5}), out, progress=False, chunk_size=4, on_error="skip")
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == (
        f"[Errno 28] cannot write (No space left on device): '{out / 'images.npy'}'"
    )
    assert [path.name for path in (out / "chunks").iterdir()] == ["000000.json"]
    monkeypatch.undo()
    resumed = MappedRecords(10, fail={5})
    write_cache(resumed, out, progress=False, chunk_size=4, on_error="skip")
    assert sorted(resumed.reads) == list(range(4, 10))
    assert _folder_bytes(out) == _folder_bytes(whole)


def test_resuming_a_build_whose_file_was_replaced_names_it(tmp_path):
    """A build writes each chunk's rows at their place in its files: an images.npy of 4 px
    images put in place of the build's 8 px ones would take them at the wrong places. The
    rerun refuses it, naming the file, what it holds and what build.json describes."""
    out = tmp_path / "c"
    with pytest.raises(DataFileError, match=r"frame_0006\.jpg"):
        write_cache(Records(10, fail={6}), out, progress=False, chunk_size=4)
    np.save(out / "images.npy", np.zeros((10, 4, 4, 3), np.uint8))
    message = (
        f"{out / 'images.npy'}: damaged cache file, an array of (10, 4, 4, 3) uint8, not the "
        "(10, 8, 8, 3) uint8 its build.json describes"
    )
    with pytest.raises(DataFileError, match=f"^{re.escape(message)}$"):
        write_cache(Records(10), out, progress=False, chunk_size=4)


def test_a_skipped_sample_shifts_no_pixels_or_maps_of_the_kept_ones(tmp_path):
    """The kept samples' images and maps are read at their own rows of the memory maps, as
    their annotations are: item 1 of a cache skipping sample 1 is sample 2, pixels and all."""
    out = write_cache(
        MappedRecords(5, fail={1}), tmp_path / "c", progress=False, chunk_size=2, on_error="skip"
    )
    cache = CacheDataset(out)
    kept = (0, 2, 3, 4)
    assert len(cache) == len(kept)
    for item, index in enumerate(kept):
        assert_same(cache[item], make_record(index))
        np.testing.assert_array_equal(cache[item]["segmentation"], np.full((8, 8), index))


def test_negative_indices_count_from_the_last_kept_sample(tmp_path):
    """As a sequence's: item -1 is the last kept sample (4), -4 the first (0); -5 is past it."""
    out = write_cache(Records(5, fail={3}), tmp_path / "c", progress=False, on_error="skip")
    cache = CacheDataset(out)
    assert_same(cache[-1], make_record(4))
    assert_same(cache[-2], make_record(2))
    assert_same(cache[-4], make_record(0))
    with pytest.raises(IndexError, match="index -5 out of range for 4 samples"):
        cache[-5]


def test_every_skipped_sample_is_counted_and_named_two_in_one_chunk(tmp_path):
    """Samples 1 and 2 fail in the same chunk (0-3): both are counted and named in meta.json."""
    out = write_cache(
        Records(6, fail={1, 2}), tmp_path / "c", progress=False, chunk_size=4, on_error="skip"
    )
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["skipped"], meta["num_valid"]) == (2, 4)
    assert len(meta["errors"]) == 2
    assert "frame_0001.jpg" in meta["errors"][0] and "frame_0002.jpg" in meta["errors"][1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 0}, r"chunk_size: must be >= 1, got 0"),
        ({"on_error": "ignore"}, r"on_error: expected one of \('raise', 'skip'\), got 'ignore'"),
    ],
    ids=["chunk_size 0", "unknown on_error"],
)
def test_bad_build_options_are_refused_before_anything_is_written(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        write_cache(Records(3, fail={1}), tmp_path / "c", progress=False, **options)
    assert not (tmp_path / "c").exists()


def test_non_square_images_are_refused_naming_the_record(tmp_path):
    """The cache holds S x S images (the first record's S): an 8 x 6 one is refused as such."""
    records = [make_record(i) | {"image": np.zeros((8, 6, 3), np.uint8)} for i in range(2)]
    with pytest.raises(ValueError, match=r"^test/s/q/0000: cached images must be square, got 8x6"):
        write_cache(records, tmp_path / "c", progress=False)


def test_a_finished_cache_of_other_info_is_refused_not_returned(tmp_path):
    """Same sample count, another split: the finished cache holds other samples. The one line
    names the fields that differ and both values ("a different dataset" named none)."""
    info = {"split": "val", "image_size": 8, "seed": 0}
    out = write_cache(Records(3), tmp_path / "c", progress=False, info=info)
    with pytest.raises(ValueError) as error:
        write_cache(Records(3), out, progress=False, info=info | {"split": "test"})
    assert str(error.value) == (
        f"{out}: holds a finished cache of split='val', this run asks split='test'; remove the "
        "folder or choose another"
    )
    # Every field that differs, a field one side records alone too.
    asked = {"split": "val", "image_size": 16, "crop": "square"}
    with pytest.raises(ValueError) as error:
        write_cache(Records(2), out, progress=False, info=asked)
    assert str(error.value) == (
        f"{out}: holds a finished cache of num_samples=3 and image_size=8 and seed=0 and no "
        "crop, this run asks num_samples=2 and image_size=16 and no seed and crop='square'; "
        "remove the folder or choose another"
    )
    assert CacheDataset(out).info == info


@pytest.mark.parametrize(
    ("rerun", "differing"),
    [
        ({"chunk_size": 3, "info": {"split": "val"}}, "chunk_size=4, this run asks chunk_size=3"),
        ({"chunk_size": 4, "info": {"split": "test"}}, "split='val', this run asks split='test'"),
    ],
    ids=["other chunk size", "other info"],
)
def test_resuming_a_build_of_other_chunks_or_info_is_refused(tmp_path, rerun, differing):
    """Chunk 0 of the interrupted build is samples 0-3: with chunks of 3 its json would count
    samples 0-2 as done and leave 3 unwritten; with other info it holds other samples. The one
    line names what differs, not both whole records."""
    with pytest.raises(DataFileError):
        write_cache(
            Records(10, fail={6}), tmp_path / "c", progress=False, chunk_size=4,
            info={"split": "val"},
        )  # fmt: skip
    healed = Records(10)
    with pytest.raises(ValueError) as error:
        write_cache(healed, tmp_path / "c", progress=False, **rerun)
    assert str(error.value) == (
        f"{tmp_path / 'c'}: holds an unfinished build of {differing}; remove the folder or rerun "
        "with the same dataset and options"
    )
    assert healed.reads == []


def test_a_cache_recorded_without_a_root_is_kept_for_any_root(tmp_path):
    """A cache written before caches named their root cannot be told apart: it is returned as
    it is, not refused for the root it does not record."""
    out = write_cache(Records(3), tmp_path / "c", progress=False, root=tmp_path / "A")
    meta = json.loads((out / "meta.json").read_text())
    del meta["root"]
    (out / "meta.json").write_text(json.dumps(meta))
    again = Records(3)
    assert write_cache(again, out, progress=False, root=tmp_path / "B") == out
    assert again.reads == []


def test_prepare_synthetic_records_no_root_even_when_given_one(tmp_path):
    """Generated data are read from no folder: a root given anyway is not recorded, so a rerun
    naming another one returns the cache rather than refusing it."""
    options = {"num_samples": 2, "image_size": 16, "progress": False}
    out = prepare_cache("synthetic", "val", tmp_path / "c", root=str(tmp_path / "A"), **options)
    assert json.loads((out / "meta.json").read_text())["root"] is None
    assert prepare_cache("synthetic", "val", out, root=str(tmp_path / "B"), **options) == out


def test_synth_into_a_cache_of_another_size_names_both_sizes(tmp_path, capsys):
    """The rerun of `hopose synth` with another --num or --image-size was "a different
    dataset; remove it", naming neither."""
    out = tmp_path / "c"
    args = ["synth", "--split", "test", "--out", str(out), "--num", "3", "--image-size", "8"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args[:-4], "--num", "2", "--image-size", "16"]) == 1
    assert capsys.readouterr().err == (
        f"hopose synth: error: {out}: holds a finished cache of num_samples=3 and image_size=8, "
        "this run asks num_samples=2 and image_size=16; remove the folder or choose another\n"
    )


def test_a_cache_of_a_newer_version_is_unknown():
    """A cache a later hopose wrote (CACHE_VERSION + 1) holds a layout this one cannot know."""
    version = CACHE_VERSION + 1
    assert (
        refusal(version, {"name": "fpha"}, with_images=True) == f"cache version {version} unknown"
    )
    assert refusal(CACHE_VERSION, {"name": "fpha"}, with_images=True) is None


def test_as_recorded_turns_tuples_into_lists_at_any_depth():
    """As json.loads reads them back: a tuple in a list in a tuple is a list of lists."""
    value = {"a": ((1, 2), [3, (4, (5,))]), "b": {"c": (6,)}}
    expected = {"a": [[1, 2], [3, [4, [5]]]], "b": {"c": [6]}}
    assert as_recorded(value) == expected
    assert json.loads(json.dumps(value)) == expected  # what a cache's JSON holds


class _BrokenRecord(Records):
    """Record 1 breaks docs/conventions.md §6 (a NaN joint): check_sample's ValueError, not a
    DataFileError."""

    def __getitem__(self, index):
        record = super().__getitem__(index)
        if index == 1:
            record["hand_3d"] = np.full_like(record["hand_3d"], np.nan)
        return record


def test_skip_leaves_out_a_record_that_breaks_the_sample_layout(tmp_path):
    out = write_cache(_BrokenRecord(3), tmp_path / "c", progress=False, on_error="skip")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["skipped"] == 1 and meta["num_valid"] == 2
    assert meta["errors"] == ["sample 1: sample 1: 'hand_3d' has non-finite values"]
    assert [CacheDataset(out)[i]["id"] for i in range(2)] == ["test/s/q/0000", "test/s/q/0002"]


def test_a_build_writes_the_files_it_lists_and_a_rebuild_removes_them_all(tmp_path):
    """BUILD_FILES names everything a build writes, under the names every cache on disk has,
    beside its lock; rebuilding an old cache removes all of them (its images and arrays too,
    not only its chunks and maps), meta.json first, and nothing else in the folder: not the
    lock it holds while it removes them."""
    out = tmp_path / "c"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own")
    info = {"name": "fpha", "split": "val", "crop": "resize"}
    write_cache(MappedRecords(5), out, progress=False, chunk_size=2, info=info)
    assert BUILD_FILES == (
        "meta.json", "chunks", "maps", "arrays", "images.npy", "strings.json", "valid.npy",
        "build.json",
    )  # fmt: skip
    assert {path.name for path in out.iterdir()} == {*BUILD_FILES, "cache.lock", "notes.txt"}
    # Version 2's images of a real dataset are refused, so the rerun rebuilds the cache: here
    # its first record fails, after the old build was removed and before any file was written.
    _set_version(out / "meta.json", 2)
    with pytest.raises(DataFileError, match=r"frame_0000\.jpg"):
        write_cache(Records(5, fail={0}), out, progress=False, chunk_size=2, info=info)
    assert sorted(path.name for path in out.iterdir()) == ["cache.lock", "notes.txt"]


def _refused(out: Path) -> str:
    """A build's refusal of ``out`` while another build holds it."""
    return (
        f"{out}: another cache build is writing to this folder (it holds cache.lock); wait for "
        "it to end or choose another --out"
    )


def test_a_build_into_a_held_folder_is_refused_and_the_lock_released_after_each_build(tmp_path):
    """Another process building into the folder holds cache.lock (an flock, released by the
    system when that process dies): a second build, the same one submitted twice too, is refused
    in one line before it reads a record or writes a file. A build that fails releases it, as
    one that finishes does: the rerun resumes, and a third run keeps the finished cache."""
    out = tmp_path / "c"
    out.mkdir()
    records = Records(5)
    with (out / "cache.lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ValueError) as refused:
            write_cache(records, out, progress=False, chunk_size=2)
    assert str(refused.value) == _refused(out)
    assert records.reads == [] and [path.name for path in out.iterdir()] == ["cache.lock"]
    with pytest.raises(DataFileError, match=r"frame_0003\.jpg"):
        write_cache(Records(5, fail={3}), out, progress=False, chunk_size=2)
    resumed = Records(5)
    write_cache(resumed, out, progress=False, chunk_size=2)
    assert sorted(resumed.reads) == [2, 3, 4]  # chunk 0 (samples 0, 1) kept from the failed run
    kept = Records(5)
    write_cache(kept, out, progress=False, chunk_size=2)
    assert kept.reads == [] and [CacheDataset(out)[i]["id"] for i in (0, 4)] == [
        "test/s/q/0000",
        "test/s/q/0004",
    ]


class _Intruded(Records):
    """:class:`Records` whose first read starts a build of ``other`` into ``out`` (a second
    process started just after this build, before its build.json), keeping its error."""

    def __init__(self, n: int, out: Path, other: Records, info: dict):
        super().__init__(n)
        self.out, self.other, self.info, self.refusal = out, other, info, None

    def __getitem__(self, index: int) -> dict:
        if not self.reads:
            try:
                write_cache(self.other, self.out, progress=False, chunk_size=2, info=self.info)
            except ValueError as error:
                self.refusal = str(error)
        return super().__getitem__(index)


def test_a_build_started_while_another_builds_the_folder_mixes_nothing_into_it(tmp_path):
    """`hopose synth --split val` started into the --out of a `--split train` still building,
    before either wrote build.json, wrote every chunk as the train build did: a meta.json of
    one split over records of both. The second build is refused without reading a record, and
    the folder holds the first build's files, byte for byte those of a build run alone."""
    alone = write_cache(
        Records(5), tmp_path / "alone", progress=False, chunk_size=2, info={"split": "train"}
    )
    out = tmp_path / "c"
    other = MappedRecords(7)
    first = _Intruded(5, out, other, {"split": "val"})
    write_cache(first, out, progress=False, chunk_size=2, info={"split": "train"})
    assert first.refusal == _refused(out) and other.reads == []
    assert _folder_bytes(out) == _folder_bytes(alone)
