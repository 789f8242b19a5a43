"""The synthetic dataset SyntheticHandObject: records, crops, cameras, arguments, streams, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hopose.cli import main
from hopose.crop import crop_affine, frame_square
from hopose.data import synthetic_split_seed
from hopose.data.cache import CacheDataset
from hopose.data.fpha import FPHA_COLOR_K
from hopose.data.grasps import MAX_OUTSIDE, MAX_OUTSIDE_PARTLY, PARTLY_OUT_FRACTION, generate_grasps
from hopose.data.render import outside_frame
from hopose.data.sample import ARRAY_KEYS, check_sample
from hopose.data.synthetic import BLOCK, MIN_IMAGE_SIZE, SyntheticHandObject
from hopose.geometry import project_points
from hopose.models.heads import HEATMAP_TILE
from hopose.skeleton import HAND_BONES

SEED = 7


def test_samples_depend_only_on_seed_and_index():
    small = SyntheticHandObject(BLOCK + 5, 3, with_images=False)
    large = SyntheticHandObject(3 * BLOCK, 3, with_images=False)
    other = SyntheticHandObject(BLOCK + 5, 4, with_images=False)
    for index in (BLOCK + 4, 0, 17):  # any order, across blocks of different sizes
        a, b = small[index], large[index]
        for key in ARRAY_KEYS:
            np.testing.assert_array_equal(a[key], b[key])
        assert a["id"] == b["id"] == f"synthetic/3/{a['grasp']}/{index}"
        assert not np.array_equal(a["hand_3d"], other[index]["hand_3d"])
    # Alone, in a block and in a block drawn backwards: the same numbers, bit for bit (each
    # sample draws from its own generator, and no row of the vectorised geometry reads another).
    alone = generate_grasps(3, np.array([17]))
    forward = generate_grasps(3, np.arange(BLOCK))
    backward = generate_grasps(3, np.arange(BLOCK)[::-1])
    np.testing.assert_array_equal(alone.hand_3d[0], forward.hand_3d[17])
    np.testing.assert_array_equal(alone.obj_3d[0], forward.obj_3d[17])
    np.testing.assert_array_equal(alone.hand_3d[0].astype(np.float32), small[17]["hand_3d"])
    for key in ("hand_3d", "obj_3d", "grasp", "object"):
        np.testing.assert_array_equal(
            np.asarray(getattr(backward, key))[::-1], np.asarray(getattr(forward, key))
        )
    assert small[-1]["id"] == small[BLOCK + 4]["id"]
    with pytest.raises(IndexError):
        small[BLOCK + 5]


def test_dataloader_workers_yield_the_same_samples():
    dataset = SyntheticHandObject(12, 5, with_images=False)
    loader = DataLoader(dataset, batch_size=None, num_workers=2, shuffle=False)
    for index, record in enumerate(loader):
        np.testing.assert_array_equal(record["hand_3d"], dataset[index]["hand_3d"])
        assert record["id"] == dataset[index]["id"]


def test_rendered_record_is_a_spec_sample():
    dataset = SyntheticHandObject(3, 11, image_size=64)
    record = dataset[2]
    check_sample(record, record["id"])
    assert record["image"].shape == (64, 64, 3) and record["image"].dtype == np.uint8
    assert record["image"].std() > 5  # not blank
    pose_only = SyntheticHandObject(3, 11, image_size=64, with_images=False)[2]
    assert pose_only["image"].shape == (0, 0, 3)  # the loaders' pose-only placeholder
    np.testing.assert_array_equal(pose_only["hand_3d"], record["hand_3d"])
    np.testing.assert_array_equal(dataset[2]["image"], record["image"])


@pytest.mark.parametrize(
    "bad",
    [
        {"num_samples": -1},
        {"seed": -2},
        {"free_fraction": 1.5},
        {"focal_scale": 0.0},
        {"focal_scale": [1.0, 2.0, 3.0]},
        {"crop": "centre"},
        {"jitter": "false"},  # a non-empty string, even this one, would turn it on
        {"jitter": True},  # on the whole frame (crop "resize"), which has no square to jitter
    ],
)
def test_bad_arguments_name_the_field(bad):
    args = {"num_samples": 4, "seed": 0} | bad
    field = next(iter(bad))
    with pytest.raises(ValueError, match=field):
        SyntheticHandObject(args.pop("num_samples"), args.pop("seed"), **args)


def _outside(record: dict, size: int) -> int:
    """How many of the 29 keypoints fall outside the size × size network image."""
    uv = np.concatenate([record["hand_2d"], record["obj_2d"]])
    return int(((uv < 0) | (uv >= size)).any(axis=-1).sum())


def test_focal_scale_zooms_the_camera_and_keeps_the_grasp_in_view():
    # focal_scale 1.6: the same grasps (the same hand and box shapes: bone lengths and box
    # edges unchanged), seen by FPHA's camera with fx, fy x 1.6 and the principal point kept;
    # placed through that camera, so (nearly) every frame keeps within its allowance.
    base = SyntheticHandObject(2 * BLOCK, SEED, 64, with_images=False)
    zoomed = SyntheticHandObject(2 * BLOCK, SEED, 64, with_images=False, focal_scale=1.6)
    expected_K = FPHA_COLOR_K * np.array([[1.6, 1.6, 1.0], [1.6, 1.6, 1.0], [1.0, 1.0, 1.0]])
    outside = []
    for index in range(len(zoomed)):
        a, b = base[index], zoomed[index]
        np.testing.assert_allclose(b["orig_K"], expected_K)
        np.testing.assert_allclose(b["K"], np.diag([64 / 1920, 64 / 1080, 1.0]) @ expected_K)
        for key, pairs in (("hand_3d", HAND_BONES), ("obj_3d", ((0, 1), (0, 3), (0, 4)))):
            lengths = [
                np.linalg.norm(r[key][i] - r[key][j], axis=-1) for r in (a, b) for i, j in pairs
            ]
            np.testing.assert_allclose(lengths[: len(pairs)], lengths[len(pairs) :], atol=1e-3)
        assert a["grasp"] == b["grasp"] and a["object"] == b["object"]
        projected = project_points(
            torch.from_numpy(b["hand_3d"]).double(), torch.from_numpy(b["K"])
        )
        np.testing.assert_allclose(b["hand_2d"], projected.numpy(), atol=1e-3)
        outside.append(_outside(b, 64))
    # Frames keep their allowance: 3 keypoints outside, 10 in the PARTLY_OUT_FRACTION (12%) of
    # samples that stand for FPHA-HO's hands partly out of frame.
    outside = np.array(outside)
    assert np.mean(outside > MAX_OUTSIDE) <= PARTLY_OUT_FRACTION + 0.02
    assert np.mean(outside > MAX_OUTSIDE_PARTLY) <= 0.02


def test_focal_scale_range_draws_one_camera_per_sample():
    dataset = SyntheticHandObject(40, SEED, 64, with_images=False, focal_scale=[0.8, 1.6])
    scales = np.array([dataset[i]["orig_K"][0, 0] / FPHA_COLOR_K[0, 0] for i in range(40)])
    assert scales.min() >= 0.8 and scales.max() <= 1.6 and scales.std() > 0.1
    again = SyntheticHandObject(40, SEED, 64, with_images=False, focal_scale=(0.8, 1.6))
    np.testing.assert_array_equal(again[7]["K"], dataset[7]["K"])


def test_square_crop_as_the_real_loaders():
    # The same 3D as the resized frames; K of the square around the 29 projected keypoints grown
    # by the loaders' margin 0.2 on each side: every keypoint in the image, the tight box's
    # longer side 1 / 1.4 of the image.
    size = 64
    resized = SyntheticHandObject(BLOCK, SEED, size, with_images=False)
    square = SyntheticHandObject(BLOCK, SEED, size, with_images=False, crop="square")
    for index in range(BLOCK):
        a, b = resized[index], square[index]
        np.testing.assert_array_equal(a["hand_3d"], b["hand_3d"])
        np.testing.assert_array_equal(a["orig_K"], b["orig_K"])
        uv = np.concatenate([b["hand_2d"], b["obj_2d"]])
        assert _outside(b, size) == 0
        np.testing.assert_allclose((uv.max(0) - uv.min(0)).max(), size / 1.4, rtol=1e-4)
        assert b["K"][0, 0] == pytest.approx(b["K"][1, 1])  # a square: same scale on both axes
    assert square[0]["image"].shape == (0, 0, 3)
    rendered = SyntheticHandObject(1, SEED, size, crop="square")[0]
    assert rendered["image"].shape == (size, size, 3) and rendered["image"].std() > 5


def test_records_say_what_each_pixel_shows():
    # Jittered crops: some reach past the camera's frame, black there and background; the
    # joints, 6-10 mm inside their capsules, mostly show the hand (the box hides some).
    data = SyntheticHandObject(24, 0, image_size=64, crop="square", jitter=True)
    reached_out, on_hand = 0, []
    for i in range(len(data)):
        record = data[i]
        classes = record["segmentation"]
        assert classes.shape == (64, 64) and classes.dtype == np.uint8
        outside = outside_frame(record["K"] @ np.linalg.inv(record["orig_K"]), (1920, 1080), 64)
        assert (classes[outside] == 0).all() and (record["image"][outside] == 0).all()
        reached_out += outside.any()
        u, v = np.rint(record["hand_2d"]).astype(int).T
        inside = (u >= 0) & (u < 64) & (v >= 0) & (v < 64)
        on_hand.append((classes[v[inside], u[inside]] == 1).mean())
    assert reached_out >= 2
    assert np.mean(on_hand) > 0.7


def test_synth_command_writes_a_readable_cache(tmp_path):
    """The cached train split is the one build_dataset generates from base seed 2."""
    out = tmp_path / "synth"
    args = ["--split", "train", "--out", str(out), "--num", "5", "--seed", "2", "--image-size"]
    assert main(["synth", *args, "32"]) == 0
    seed = synthetic_split_seed(2, "train")
    cache, dataset = CacheDataset(out), SyntheticHandObject(5, seed, image_size=32)
    assert cache.info["split"] == "train"
    assert len(cache) == 5
    for index in (0, 4):
        np.testing.assert_array_equal(cache[index]["image"], dataset[index]["image"])
        np.testing.assert_allclose(cache[index]["hand_3d"], dataset[index]["hand_3d"])
        assert cache[index]["grasp"] == dataset[index]["grasp"]
        # The segmentation maps are kept beside the images, for the demo's configs.
        classes = dataset[index]["segmentation"]
        assert classes.any()  # not all background: the round trip could fail
        np.testing.assert_array_equal(cache[index]["segmentation"], classes)
    assert "segmentation" not in CacheDataset(out, with_images=False)[0]


def test_square_crop_frames_hand_and_box_and_view_renders_it():
    # Without jitter the 29 keypoints span the square's middle 1/1.4 (margin 0.2 each side of
    # the tight side) along their longer axis, so all lie in [0.2/1.4, 1.2/1.4] * 64 px.
    crops = SyntheticHandObject(4, 0, image_size=64, crop="square")
    whole = SyntheticHandObject(4, 0, image_size=64)
    for i in range(4):
        record = crops[i]
        kp = np.concatenate([record["hand_2d"], record["obj_2d"]])
        assert kp.min() >= 64 * 0.2 / 1.4 - 1e-3 and kp.max() <= 64 * 1.2 / 1.4 + 1e-3
        # The same 3D seen through another affine view: rays K^-1 [u, v, 1] agree.
        ones = np.ones((29, 1))
        rays = np.hstack([kp, ones]) @ np.linalg.inv(record["K"]).T
        other = np.concatenate([whole[i]["hand_2d"], whole[i]["obj_2d"]])
        np.testing.assert_allclose(
            rays, np.hstack([other, ones]) @ np.linalg.inv(whole[i]["K"]).T, atol=1e-5
        )
        # view() of the record's own affine map (K = A orig_K) renders the record's image (up to
        # the rounding of A K at a few edge pixels).
        affine = record["K"] @ np.linalg.inv(record["orig_K"])
        difference = crops.view(i, affine).astype(float) - record["image"]
        assert np.abs(difference).mean() < 0.5


def test_views_are_black_beyond_the_frame():
    # The whole 1920x1080 frame's square view at 64 px (side 1920, 30 frame px per pixel, the
    # frame's centre at the view's 32): frame rows -0.5 and 1079.5 land on view rows
    # 32 - 540.5 / 30 = 13.98 and 32 + 539.5 / 30 = 49.98, so rows 0-13 and 50-63 show no
    # frame and are black, as in a photo (hopose.crop.warp_image pads zeros).
    data = SyntheticHandObject(8, 0, image_size=64, crop="square")
    centre, side = frame_square((1920, 1080), torch.zeros(1, dtype=torch.float64))
    affine = crop_affine(centre, side, 64)[0].numpy()
    for i in range(2):
        image = data.view(i, affine)
        assert (image[:14] == 0).all() and (image[50:] == 0).all()
        assert (image[14:50].max(axis=-1) > 0).mean() > 0.99
    # Plain square crops: those inside the frame have no black pixel; those that reach past
    # its edge (sample 0's, at the bottom right) are black exactly there.
    inside = 0
    for i in range(8):
        record = data[i]
        out = outside_frame(record["K"] @ np.linalg.inv(record["orig_K"]), (1920, 1080), 64)
        np.testing.assert_array_equal(record["image"].max(axis=-1) == 0, out)
        inside += not out.any()
    assert data[0]["image"][-1, -1].max() == 0 and inside > 0


def test_jittered_crops_turn_the_image():
    # A turned crop has an off-diagonal K (2D rotation folded into the intrinsics).
    record = SyntheticHandObject(
        1, 0, image_size=32, crop="square", jitter=True, with_images=False
    )[0]
    assert abs(record["K"][0, 1]) > 1e-3


@pytest.mark.parametrize(
    "bad",
    [
        {"num_samples": 2.0},
        {"seed": 1.5},
        {"image_size": "64"},
        {"free_fraction": None},
        {"focal_scale": None},
        {"focal_scale": float("inf")},
        {"focal_scale": [1.0, True]},
    ],
)
def test_values_of_the_wrong_type_name_the_field(bad):
    """A config's free-form options reach the constructor unchecked: these raised TypeError,
    IndexError at the first read, or drew infinite focal lengths."""
    args = {"num_samples": 4, "seed": 0, "with_images": False} | bad
    field = next(iter(bad))
    with pytest.raises(ValueError, match=f"^{field}: "):
        SyntheticHandObject(args.pop("num_samples"), args.pop("seed"), **args)


def test_numpy_scalars_are_numbers_and_are_recorded_as_json():
    dataset = SyntheticHandObject(
        np.int64(2), np.int64(0), with_images=False, free_fraction=np.float32(0.5),
        focal_scale=np.float32(1.5),
    )  # fmt: skip
    assert json.loads(json.dumps(dataset.variant)) == {
        "jitter": False, "free_fraction": 0.5, "focal_scale": 1.5
    }  # fmt: skip
    assert dataset.focal_range == (1.5, 1.5)
    assert SyntheticHandObject(2, 0, focal_scale=np.array([2.0, 1.0])).focal_range == (1.0, 2.0)


def test_view_takes_the_indices_that_indexing_takes():
    dataset = SyntheticHandObject(3, 0, image_size=16)
    square = np.diag([16 / 1920, 16 / 1080, 1.0])  # the whole frame, squeezed
    np.testing.assert_array_equal(dataset.view(-1, square), dataset.view(2, square))
    with pytest.raises(IndexError, match="index 3 out of range for 3 samples"):
        dataset.view(3, square)


def test_appearance_and_camera_come_from_each_samples_own_streams(monkeypatch):
    """Module docstring: sample i's appearance draws from ``default_rng([seed, i, 1])`` and its
    focal scale from ``default_rng([seed, i, 2])``, log-uniform in the range: streams of the
    sample's own, so the look of sample i is not that of sample i + BLOCK (the same row of
    another block), and the focal length does not follow the pose stream (whose first number
    picks a generic box or an FPHA object)."""
    import hopose.data.render

    streams = []

    def fake_render(hand, obj, K, size, rng, *args, **kwargs):
        streams.append(rng.random())  # the appearance generator's first number
        return np.zeros((size, size, 3), np.uint8), np.zeros((size, size), np.uint8)

    monkeypatch.setattr(hopose.data.render, "render_grasp", fake_render)
    dataset = SyntheticHandObject(BLOCK + 4, 9, image_size=8, focal_scale=(0.8, 1.6))
    for index in (3, BLOCK + 3):
        record = dataset[index]
        assert streams[-1] == np.random.default_rng([9, index, 1]).random()
        # fx = FPHA's fx * 0.8 * 2 ** u, u the focal stream's first number.
        u = np.random.default_rng([9, index, 2]).random()
        assert record["orig_K"][0, 0] == pytest.approx(FPHA_COLOR_K[0, 0] * 0.8 * 2.0**u)
    assert streams[0] != streams[1]


def test_jittered_crops_draw_each_samples_own_turn():
    """Each sample's jitter draws from ``default_rng([seed, i, 3])``: the crops' turns (the 2D
    rotation folded into K = A orig_K, whose first column is A's times fx) differ from sample
    to sample, and a sample's crop is the same at every read."""
    dataset = SyntheticHandObject(8, 0, 32, crop="square", jitter=True, with_images=False)
    again = SyntheticHandObject(8, 0, 32, crop="square", jitter=True, with_images=False)
    turns = []
    for index in range(8):
        K = dataset[index]["K"]
        np.testing.assert_array_equal(K, again[index]["K"])
        turns.append(np.degrees(np.arctan2(K[1, 0], K[0, 0])))
    assert len(set(np.round(turns, 6))) == 8, turns
    assert max(np.abs(turns)) <= 30.0 + 1e-9  # the turn is drawn within +-30 degrees


def test_the_least_image_side_is_the_heat_map_tile():
    """MIN_IMAGE_SIZE is written out (importing HEATMAP_TILE would import the networks into the
    data package): the least side the heat-map head takes, one tile, renders; one pixel less
    is refused."""
    assert MIN_IMAGE_SIZE == HEATMAP_TILE
    assert len(SyntheticHandObject(1, 0, HEATMAP_TILE)[0]["image"]) == HEATMAP_TILE
    with pytest.raises(ValueError, match=f"image_size: must be >= {HEATMAP_TILE}, got 7"):
        SyntheticHandObject(1, 0, HEATMAP_TILE - 1)


def test_jittered_crops_keep_the_crops_zoom_on_average():
    """The jitter scales the square crop's side by x0.8-1.25, uniform in log (hopose.crop's
    JITTER_SCALE), so the crop's focal length (K = A orig_K; A's scale is the length of K's first
    column, whatever the turn) moves by the inverse factor about that of the plain crop. In
    WHOLE_FRAME_SHARE (15%) of the draws the crop is the whole frame, zoomed far out; so the
    median ratio is the crops' 0.35 / 0.85 = 41% quantile: 0.8 * (1.25 / 0.8) ** 0.41 = 0.96.
    A side read as half the crop's would zoom every crop in twice as much (about 1.9)."""
    plain = SyntheticHandObject(200, SEED, 64, with_images=False, crop="square")
    jittered = SyntheticHandObject(200, SEED, 64, with_images=False, crop="square", jitter=True)
    ratios = [
        np.hypot(*jittered[i]["K"][:2, 0]) / np.hypot(*plain[i]["K"][:2, 0]) for i in range(200)
    ]
    assert 0.85 <= np.median(ratios) <= 1.15, np.median(ratios)
