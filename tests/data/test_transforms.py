"""docs/conventions.md §6 image geometry: resize, square crop and mirroring keep 2D = K x 3D and
the pixels."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from dataset_fixtures import write_image
from PIL import Image
from scripted_draws import ScriptedRng
from torch.utils.data import DataLoader, Subset

from hopose.crop import apply_affine, crop_affine, frame_square, resize_affine, warp_image
from hopose.data import collate_samples, transforms
from hopose.data.transforms import (
    MIRROR_CORNER_ORDER,
    DataFileError,
    Frame,
    FrameDataset,
    as_intrinsics,
    as_points,
    frame_to_record,
    image_geometry,
    mirror_frame,
    read_image,
    read_pickle,
    view_frames,
)
from hopose.geometry import box_corners, project_points
from hopose.skeleton import CORNER_SIGNS
from hopose.train import _set_epoch as set_epoch

# A 200x100 camera: fx = fy = 100, principal point (100, 50).
K = np.array([[100.0, 0.0, 100.0], [0.0, 100.0, 50.0], [0.0, 0.0, 1.0]])


def make_frame(tmp_path, side="right", dot_joint=0) -> Frame:
    """Joints along a line in front of the camera; a white dot drawn where joint ``dot_joint``
    projects, so the image and the keypoints can be compared."""
    k = np.arange(21, dtype=float)
    hand = np.stack([-40 + 4 * k, -20 + 2 * k, np.full(21, 500.0)], axis=1)
    obj = box_corners(torch.tensor([60.0, 40.0, 20.0])).double().numpy() + np.array([30, 10, 520.0])
    u, v = (K @ hand[dot_joint])[:2] / hand[dot_joint, 2]
    path = tmp_path / "frame.png"
    write_image(path, (200, 100), dot=(round(u), round(v)))
    return Frame(path, K, (200, 100), hand, obj, side, "box", "test/s/q/0000")


def brightest(image: np.ndarray) -> np.ndarray:
    """(x, y) of the centroid of the bright pixels."""
    ys, xs = np.nonzero(image.sum(axis=2) > 300)
    return np.array([xs.mean(), ys.mean()])


def test_resize_scales_K_per_axis_and_reprojects(tmp_path):
    record = frame_to_record(make_frame(tmp_path), image_size=50)
    # 200x100 -> 50x50: x scale 0.25, y scale 0.5: fx 100 -> 25, cx 100 -> 25, fy -> 50, cy -> 25.
    np.testing.assert_allclose(record["K"], [[25, 0, 25], [0, 50, 25], [0, 0, 1]])
    # Joint 0 at (-40, -20, 500): u = 25 * -40 / 500 + 25 = 23, v = 50 * -20 / 500 + 25 = 23.
    np.testing.assert_allclose(record["hand_2d"][0], [23.0, 23.0], atol=1e-5)
    expected = project_points(torch.tensor(record["obj_3d"]), torch.tensor(record["K"]))
    np.testing.assert_allclose(record["obj_2d"], expected.numpy(), atol=1e-4)
    assert record["image"].shape == (50, 50, 3) and record["image"].dtype == np.uint8
    np.testing.assert_allclose(record["orig_K"], K)
    np.testing.assert_allclose(record["orig_size"], [200, 100])


def test_square_crop_keeps_the_dot_on_its_keypoint(tmp_path):
    record = frame_to_record(make_frame(tmp_path, dot_joint=10), image_size=64, crop="square")
    # The crop's K still maps 3D to the pixels of the cut-out image: the drawn dot is where the
    # keypoint says (within the 5 px dot blurred by the resize).
    np.testing.assert_allclose(brightest(record["image"]), record["hand_2d"][10], atol=1.5)
    assert np.isclose(record["K"][0, 0], record["K"][1, 1])  # a square crop keeps the aspect
    inside = (record["hand_2d"] >= 0) & (record["hand_2d"] < 64)
    assert inside.all()


def test_left_hand_is_mirrored_in_3d_image_and_corner_order(tmp_path):
    right = frame_to_record(make_frame(tmp_path, dot_joint=20), image_size=100)
    left = frame_to_record(make_frame(tmp_path, side="left", dot_joint=20), image_size=100)
    assert left["side"] == "left"
    np.testing.assert_allclose(left["hand_3d"][:, 0], -right["hand_3d"][:, 0])
    # Flipped image, dot where the mirrored keypoint projects.
    np.testing.assert_allclose(brightest(left["image"]), left["hand_2d"][20], atol=1.5)
    # Corner c of the mirror is the old corner with x negated: still canonically ordered, i.e. its
    # offsets from the centre have the signs of CORNER_SIGNS[c] (the box is axis-aligned here).
    offsets = left["obj_3d"] - left["obj_3d"].mean(axis=0)
    np.testing.assert_array_equal(np.sign(offsets), np.array(CORNER_SIGNS, dtype=float))


@pytest.mark.parametrize(("depth", "count"), [(-10.0, 1), (0.0, 1), (None, 8)])
def test_a_frame_with_a_keypoint_at_or_behind_the_camera_names_its_image(tmp_path, depth, count):
    """A point with z < 0 projects through the centre to the wrong side of the image, finite and
    wrong (corner 0 at (-30 + 30, 10 - 20, -10) would land at u = 100 + 100 * 0 / -10 = 100,
    v = 50 + 100 * -10 / -10 = 150, below a frame it is not in); z = 0 projects to infinity.
    Either is a broken label or a misread convention, refused when the frame is made. None:
    the box mirrored through the camera's plane (z negated), all 8 corners behind it."""
    frame = make_frame(tmp_path)
    obj = frame.obj_3d.copy()
    if depth is None:
        obj[:, 2] *= -1
    else:
        obj[0, 2] = depth
    with pytest.raises(DataFileError) as caught:
        Frame(frame.image_path, K, (200, 100), frame.hand_3d, obj, "right", "box", "t/s/q/9")
    assert str(caught.value) == (
        f"{frame.image_path}: its labels (t/s/q/9) put {count} of the 29 keypoints at or behind "
        "the camera (z <= 0)"
    )


def test_mirror_twice_is_identity(tmp_path):
    frame = make_frame(tmp_path)
    twice = mirror_frame(mirror_frame(frame))
    np.testing.assert_allclose(twice.hand_3d, frame.hand_3d)
    np.testing.assert_allclose(twice.obj_3d, frame.obj_3d)
    np.testing.assert_allclose(twice.orig_K, frame.orig_K)
    assert MIRROR_CORNER_ORDER == (1, 0, 3, 2, 5, 4, 7, 6)


def test_mirroring_a_skewed_camera_negates_its_skew(tmp_path):
    # A 640x480 camera with skew s = 0.5 (as_intrinsics accepts it). X = (50, 150, 400) projects
    # at u = (600 * 50 + 0.5 * 150) / 400 + 320 = 395.1875, v = 610 * 150 / 400 + 240 = 468.75;
    # the flipped image shows it at column 639 - 395.1875 = 243.8125. The mirrored K must project
    # (-50, 150, 400) there: K' = [[600, -0.5, 319], [0, 610, 240], [0, 0, 1]]. Keeping the skew
    # put it 2 s y / z = 0.375 px to the right, at 244.1875 (mirroring twice cannot see that).
    K_skew = as_intrinsics([[600.0, 0.5, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 1.0]], "test")
    points = np.tile([50.0, 150.0, 400.0], (29, 1))
    frame = Frame(
        tmp_path / "f.png", K_skew, (640, 480), points[:21], points[21:], "left", "box", "t/s/q/4"
    )
    mirrored = mirror_frame(frame)
    np.testing.assert_array_equal(
        mirrored.orig_K, [[600.0, -0.5, 319.0], [0.0, 610.0, 240.0], [0.0, 0.0, 1.0]]
    )
    np.testing.assert_array_equal(mirrored.hand_3d[0], [-50.0, 150.0, 400.0])
    projected = mirrored.orig_K @ mirrored.hand_3d[0]
    np.testing.assert_allclose(projected[:2] / projected[2], [243.8125, 468.75], atol=1e-9)
    # The record of the left hand, resized to 64 px (x scale 0.1, y scale 64 / 480), puts the
    # joint at (24.38125, 62.5).
    record = frame_to_record(frame, image_size=64, with_images=False)
    np.testing.assert_allclose(record["hand_2d"][0], [24.38125, 62.5], atol=1e-4)


def test_large_jpeg_decoded_at_reduced_scale_keeps_the_geometry(tmp_path):
    # An 800x400 JPEG of the same camera scaled 4x; decoding for a 50 px image may use libjpeg's
    # 1/4 scale (200x100), and the box must be scaled with it: the dot stays on its keypoint.
    frame = make_frame(tmp_path, dot_joint=12)
    K4 = K * [[4], [4], [1]]
    u, v = (K4 @ frame.hand_3d[12])[:2] / frame.hand_3d[12, 2]
    path = tmp_path / "big.jpg"
    write_image(path, (800, 400), dot=(round(u), round(v)), radius=12)
    big = Frame(path, K4, (800, 400), frame.hand_3d, frame.obj_3d, "right", "box", "t/s/q/1")
    record = frame_to_record(big, image_size=50)
    np.testing.assert_allclose(brightest(record["image"]), record["hand_2d"][12], atol=1.0)


def test_a_jpeg_whose_side_the_draft_scale_does_not_divide_keeps_the_geometry(
    tmp_path, monkeypatch
):
    # 2001x1001 decoded at 1/8 is 251x126 (ceil), not 250.125x125.125: scaling the crop box by
    # 251 / 2001 moved a dot near the right edge 0.8 px in the 64-px crop against a full decode.
    K_big = np.array([[1000.0, 0.0, 1000.5], [0.0, 1000.0, 500.5], [0.0, 0.0, 1.0]])
    k = np.arange(21, dtype=float)
    hand = np.stack([300 + 4 * k, -20 + 2 * k, np.full(21, 500.0)], axis=1)
    u, v = (K_big @ hand[12])[:2] / hand[12, 2]
    path = tmp_path / "odd.jpg"
    write_image(path, (2001, 1001), dot=(round(u), round(v)), radius=6)
    frame = Frame(path, K_big, (2001, 1001), hand, hand[:8] + 5.0, "right", "box", "t/s/q/2")
    drafted = frame_to_record(frame, image_size=64, crop="square")["image"]
    monkeypatch.setattr(transforms, "read_image", lambda path, min_size=None: read_image(path))
    full = frame_to_record(frame, image_size=64, crop="square")["image"]
    np.testing.assert_allclose(brightest(drafted), brightest(full), atol=0.2)


def _blob_frame(tmp_path, side: str) -> Frame:
    """A 200x100 PNG with a Gaussian blob (sd 1.5 px) centred exactly where joint 12 projects,
    at (104.37, 51.41); the joints span 40x12 px, so the square crop around them (56 px with its
    margin) is enlarged to 64."""
    k = np.arange(21, dtype=float)
    hand = np.stack([-98.15 + 10 * k, -28.95 + 3 * k, np.full(21, 500.0)], axis=1)
    u, v = (K @ hand[12])[:2] / hand[12, 2]
    ys, xs = np.mgrid[0:100, 0:200]  # pixel centres at integer coordinates
    blob = 255 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.5**2))
    path = tmp_path / f"blob_{side}.png"
    Image.fromarray(np.repeat(blob[..., None], 3, axis=2).round().astype(np.uint8)).save(path)
    obj = hand[:8] + np.array([0.0, 0.0, 5.0])
    return Frame(path, K, (200, 100), hand, obj, side, "box", f"t/s/q/{side}")


def _weighted_centre(image: np.ndarray) -> np.ndarray:
    weight = image[..., 0].astype(float)
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(
    ("crop", "size"), [("resize", 64), ("square", 64)], ids=["shrink", "enlarge"]
)
def test_the_pixels_show_a_point_where_the_records_K_projects_it(tmp_path, side, crop, size):
    # Network pixel i is centred at i (docs/conventions.md §6). A resize of the box as it was,
    # outer pixel edges kept, would leave the content 0.5 (1 - s) network px off: -0.34 / -0.18
    # px here, shrinking the 200x100 frame to 64 px (s = 0.32 / 0.64), and +0.07 px enlarging
    # the 56-px square.
    record = frame_to_record(_blob_frame(tmp_path, side), image_size=size, crop=crop)
    np.testing.assert_allclose(_weighted_centre(record["image"]), record["hand_2d"][12], atol=0.05)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(
    ("side_px", "turn"),
    [(40.0, 0.0), (30.0, 0.4), (150.0, 0.0)],
    ids=["enlarge", "turned", "shrink"],
)
def test_a_view_shows_a_point_where_its_map_takes_the_records_projection(
    tmp_path, side, side_px, turn
):
    # Self-cropping's views are maps A of the record's frame, a left hand's mirrored one in which
    # the record's orig_K projects: the blob drawn at joint 12 must appear at A (orig_K X_12).
    # The squares are centred 6 px right and 3 px above the blob and, turned by 0.4 rad, the
    # blob's offset turns too; the 150-px square reaches beyond the 200x100 frame (black). Shrunk
    # to 0.64 view px of sd, the blob is sampled a little unevenly: its centroid moves by up to
    # 0.07 px, where half a pixel's slip of the convention would move it by 0.5.
    frame = _blob_frame(tmp_path, side)
    record = frame_to_record(frame, image_size=64, with_images=False)
    point = project_points(
        torch.as_tensor(record["hand_3d"][12:13], dtype=torch.float64),
        torch.as_tensor(record["orig_K"], dtype=torch.float64),
    )  # (1, 2)
    A = crop_affine(
        point + torch.tensor([[6.0, -3.0]], dtype=torch.float64),
        torch.tensor([side_px], dtype=torch.float64),
        64,
        torch.tensor([turn], dtype=torch.float64),
    )
    view = view_frames(frame, A.numpy(), 64)[0]
    assert view.shape == (64, 64, 3) and view.dtype == np.uint8
    expected = apply_affine(A, point[None])[0, 0].numpy()
    np.testing.assert_allclose(_weighted_centre(view), expected, atol=0.1)


# A 2001x1001 JPEG, whose sides 1/8 and 1/4 do not divide, with a Gaussian blob (sd 25 px) at
# (BLOB_U, BLOB_V), near the right edge.
ODD_SIZE, BLOB_U, BLOB_V = (2001, 1001), 1700.3, 620.7


def _odd_blob_frame(tmp_path, side: str) -> Frame:
    width, height = ODD_SIZE
    ys, xs = np.mgrid[0:height, 0:width]
    blob = 255 * np.exp(-((xs - BLOB_U) ** 2 + (ys - BLOB_V) ** 2) / (2 * 25.0**2))
    path = tmp_path / "odd.jpg"
    Image.fromarray(np.repeat(blob[..., None], 3, axis=2).astype(np.uint8)).save(path, quality=95)
    points = np.tile([0.0, 0.0, 500.0], (21, 1))  # in front of the camera; views ignore them
    return Frame(path, K, ODD_SIZE, points, points[:8], side, "box", "t/s/q/3")


def _record_decodes(monkeypatch) -> list[tuple[int, int]]:
    """The sizes every image read from here on is decoded at, in order."""
    decoded = []

    def read_and_keep(path, min_size=None):
        image = read_image(path, min_size)
        decoded.append(image.size)
        return image

    monkeypatch.setattr(transforms, "read_image", read_and_keep)
    return decoded


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(("side_px", "k"), [(2001.0, 8), (300.0, 4)], ids=["whole", "crop"])
def test_a_view_decodes_a_jpeg_no_finer_than_it_needs_and_keeps_the_geometry(
    tmp_path, monkeypatch, side, side_px, k
):
    # The blob's JPEG seen whole at 64 px is decoded at 1/8 (the view needs 64 / 2001 of its
    # pixels), through a 300-px square at 1/4; either way the blob is where a full-size decode
    # shows it and where the map puts it (mirrored for a left hand).
    frame = _odd_blob_frame(tmp_path, side)
    (width, height), u, v = ODD_SIZE, BLOB_U, BLOB_V
    seen_u = width - 1 - u if side == "left" else u
    centre = torch.tensor([[seen_u - 20.0, v + 10.0]], dtype=torch.float64)
    A = crop_affine(centre, torch.tensor([side_px], dtype=torch.float64), 64)
    decoded = _record_decodes(monkeypatch)
    drafted = view_frames(frame, A.numpy(), 64)[0]
    assert decoded[-1] == (math.ceil(width / k), math.ceil(height / k))
    monkeypatch.setattr(transforms, "read_image", lambda path, min_size=None: read_image(path))
    full = view_frames(frame, A.numpy(), 64)[0]
    expected = apply_affine(A, torch.tensor([[[seen_u, v]]], dtype=torch.float64))[0, 0].numpy()
    np.testing.assert_allclose(_weighted_centre(drafted), _weighted_centre(full), atol=0.05)
    np.testing.assert_allclose(_weighted_centre(drafted), expected, atol=0.1)


def test_a_frames_views_read_its_image_once_at_the_finest_scale_they_need(tmp_path, monkeypatch):
    # The blob's JPEG seen whole (1/8 would do) and through a 300-px square turned by 0.2 rad
    # (needs 1/4): one decode, at 1/4, for both; the square's view is its own view's to the
    # bit, and the whole one still shows the blob where its map puts it.
    frame = _odd_blob_frame(tmp_path, "right")
    (width, height), u, v = ODD_SIZE, BLOB_U, BLOB_V
    like = torch.zeros(1, dtype=torch.float64)
    whole = crop_affine(*frame_square((width, height), like), 64)
    square = crop_affine(
        like.new_tensor([[u - 20.0, v + 10.0]]), like.new_tensor([300.0]), 64,
        like.new_tensor([0.2]),
    )  # fmt: skip
    decoded = _record_decodes(monkeypatch)
    views = view_frames(frame, torch.cat([whole, square]).numpy(), 64)
    assert decoded == [(math.ceil(width / 4), math.ceil(height / 4))]
    np.testing.assert_array_equal(views[1], view_frames(frame, square.numpy(), 64)[0])
    for view, A in zip(views, (whole, square), strict=True):
        expected = apply_affine(A, like.new_tensor([[[u, v]]]))[0, 0].numpy()
        np.testing.assert_allclose(_weighted_centre(view), expected, atol=0.1)


def test_a_full_hd_frame_at_224_px_is_decoded_at_the_scales_view_frames_names(
    tmp_path, monkeypatch
):
    # view_frames' docstring. A view needs ceil(size x its largest stretch) pixels on each axis;
    # the coarsest of libjpeg's 1/1, 1/2, 1/4, 1/8 decodes holding that many is read:
    #   whole frame in a square, 224 / 1920: needs 224 x 126 -> 1/8, 240 x 135;
    #   whole frame resized (rows 224 / 1080): needs 399 x 224 -> 1/8's 135 rows too few, 1/4;
    #   a 500-px square, 224 / 500: needs 861 x 484 -> 1/2, 960 x 540.
    write_image(tmp_path / "hd.jpg", (1920, 1080))
    points = np.tile([0.0, 0.0, 500.0], (21, 1))
    hd_K = np.array([[1400.0, 0.0, 960.0], [0.0, 1400.0, 540.0], [0.0, 0.0, 1.0]])
    frame = Frame(tmp_path / "hd.jpg", hd_K, (1920, 1080), points, points[:8], "right", "b", "i")
    like = torch.zeros(1, dtype=torch.float64)
    whole = crop_affine(*frame_square((1920, 1080), like), 224)
    square = crop_affine(like.new_tensor([[900.0, 500.0]]), like.new_tensor([500.0]), 224)
    decoded = _record_decodes(monkeypatch)
    view_frames(frame, whole.numpy(), 224)
    frame_to_record(frame, image_size=224, crop="resize")
    view_frames(frame, square.numpy(), 224)
    assert decoded == [(1920 // 8, 1080 // 8), (1920 // 4, 1080 // 4), (1920 // 2, 1080 // 2)]


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_whole_frame_record_holds_the_image_predict_warps_of_the_photo(tmp_path, side):
    # `hopose predict` shows a model the whole photo through warp_image and resize_affine; a
    # record of the same frame must hold that very image (a left hand's of the flipped photo),
    # so that a model trains on the resampling it meets in predict. On texture: PIL's bilinear
    # resize, which records used before, differed by 7 levels of 255 on average (a ramp cannot
    # tell filters apart, noise can).
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(pixels).save(path)
    points = np.tile([0.0, 0.0, 500.0], (29, 1))
    frame = Frame(path, K, (200, 100), points[:21], points[21:], side, "box", "t/s/q/0")
    record = frame_to_record(frame, image_size=64)
    photo = pixels[:, ::-1] if side == "left" else pixels  # the photo a left hand is seen in
    photo = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None]
    A = resize_affine((200, 100), 64, torch.zeros((), dtype=torch.float64))
    seen = warp_image(photo, A[None], 64)[0].permute(1, 2, 0)
    seen = (seen * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    # The record samples a left hand's unflipped photo at mirrored positions: the same taps,
    # in float32 arithmetic of other rounding, so a level apart now and then.
    difference = np.abs(record["image"].astype(int) - seen)
    assert difference.max() <= (1 if side == "left" else 0)
    assert difference.mean() < 0.01


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_jittered_square_shows_the_point_where_its_K_projects_it(tmp_path, side):
    # A training crop of a real frame: the square around hand and box scaled, shifted and turned
    # (seeds 0, 1, 5, 6 turn it by 18.8, -11.3, -26.8 and 29.2 deg; seed 3 draws the whole
    # frame, turned by -8.1 deg), cut from the full-size frame: its K is the view's map @ the
    # (mirrored) original K, and the blob at joint 12 shows where that K projects the joint.
    frame = _blob_frame(tmp_path, side)
    plain = frame_to_record(frame, image_size=64, crop="square", with_images=False)
    for seed in (0, 1, 5, 6, 3):
        record = frame_to_record(
            frame, image_size=64, crop="square", jitter=np.random.default_rng(seed)
        )
        affine = record["K"].astype(np.float64) @ np.linalg.inv(record["orig_K"])
        assert not np.allclose(record["K"], plain["K"], atol=1e-3)
        np.testing.assert_allclose(record["orig_K"], plain["orig_K"])
        np.testing.assert_allclose(
            _weighted_centre(record["image"]), record["hand_2d"][12], atol=0.1
        )
        np.testing.assert_array_equal(record["image"], view_frames(frame, affine[None], 64)[0])


class _OneFrame(FrameDataset):
    """A real-data loader of 3 samples, all of one frame."""

    def __init__(self, frame: Frame, **options) -> None:
        super().__init__(**options)
        self._frame = frame

    def __len__(self) -> int:
        return 3

    def frame(self, index: int) -> Frame:
        return self._frame


def test_a_real_datasets_jitter_is_a_function_of_the_index_and_the_epoch(tmp_path):
    frame = make_frame(tmp_path)
    options = {"image_size": 32, "crop": "square", "with_images": False}
    jittered = _OneFrame(frame, jitter=True, **options)
    first = jittered[1]["K"]
    np.testing.assert_array_equal(first, _OneFrame(frame, jitter=True, **options)[1]["K"])
    assert not np.allclose(first, jittered[2]["K"])
    jittered.set_epoch(1)
    assert not np.allclose(first, jittered[1]["K"])
    jittered.set_epoch(0)
    np.testing.assert_array_equal(first, jittered[1]["K"])
    plain = _OneFrame(frame, **options)
    assert not np.allclose(first, plain[1]["K"])
    assert plain.variant == {"jitter": False} and jittered.variant == {"jitter": True}
    with pytest.raises(ValueError, match="jitter: expected true or false, got 'false'"):
        _OneFrame(frame, crop="square", jitter="false")
    with pytest.raises(ValueError, match="jitter: true jitters square crops, but crop is 'resize'"):
        _OneFrame(frame, crop="resize", jitter=True)


def test_a_negative_index_is_the_sample_counted_from_the_end_jitter_included(tmp_path):
    # The jitter's generator is seeded with the index: -1 stopped numpy ("expected non-negative
    # integer") instead of drawing sample 2's square.
    dataset = _OneFrame(
        make_frame(tmp_path), image_size=32, crop="square", with_images=False, jitter=True
    )
    np.testing.assert_array_equal(dataset[-1]["K"], dataset[2]["K"])
    np.testing.assert_array_equal(dataset[-3]["K"], dataset[0]["K"])
    assert not np.allclose(dataset[-1]["K"], dataset[0]["K"])
    for index in (3, -4):
        with pytest.raises(IndexError, match=f"index {index} out of range for 3 samples"):
            dataset[index]


def test_persistent_workers_draw_the_jitter_of_the_epoch_the_training_loop_sets(tmp_path):
    # The worker holds its own copy of the dataset for the whole run; the epoch the training
    # loop sets reaches it through shared memory, past the Subset of the first num_train.
    dataset = _OneFrame(
        make_frame(tmp_path), image_size=32, crop="square", with_images=False, jitter=True
    )
    loader = DataLoader(
        Subset(dataset, range(2)), batch_size=2, num_workers=1, persistent_workers=True,
        collate_fn=collate_samples,
    )  # fmt: skip
    by_epoch = []
    for epoch in (0, 1, 0):
        set_epoch(loader, 0, epoch)
        by_epoch.append(next(iter(loader))["K"])
    assert not torch.allclose(by_epoch[0], by_epoch[1])
    torch.testing.assert_close(by_epoch[2], by_epoch[0], rtol=0, atol=0)
    dataset.set_epoch(1)  # the same draws in this process
    torch.testing.assert_close(by_epoch[1][1], torch.from_numpy(dataset[1]["K"]), rtol=0, atol=0)


def test_corrupt_and_missing_images_name_the_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(DataFileError, match=r"bad\.jpg"):
        read_image(bad)
    with pytest.raises(DataFileError, match=r"absent\.png"):
        read_image(tmp_path / "absent.png")


def test_a_frame_whose_image_cannot_be_decoded_names_it_and_how_to_find_the_others(tmp_path):
    """Training and evaluation decode each image when its frame is read, long after the loader
    indexed the annotations (``on_error`` skips nothing then): the error names the file and
    the commands that list every such image and leave them out of a cache."""
    frame = make_frame(tmp_path)
    path = tmp_path / "frame.jpg"
    write_image(path, (200, 100))
    path.write_bytes(path.read_bytes()[:-200])  # cut short: the header is whole
    frame = replace(frame, image_path=path)
    with pytest.raises(DataFileError) as caught:
        frame_to_record(frame, image_size=32)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot decode image (image file is truncated")
    assert message.endswith(
        "; `hopose data check <dataset> --root <root> --decode` lists every such image, and "
        "`hopose prepare ... --on-error skip` writes a cache without them"
    )


@pytest.mark.parametrize(
    "data",
    [
        # Protocol 4 BINUNICODE8 whose length field asks for 2**62 bytes: MemoryError.
        b"\x80\x04\x8d" + (2**62).to_bytes(8, "little"),
        # BINBYTES8 asking for 2**63 - 1 bytes: OverflowError.
        b"\x80\x04\x8e" + (2**63 - 1).to_bytes(8, "little"),
        # A global from a module that does not exist: ModuleNotFoundError.
        b"\x80\x02cno_such_module\nthing\n.",
    ],
    ids=["memory", "overflow", "module"],
)
def test_damaged_pickles_name_the_file(tmp_path, data):
    path = tmp_path / "0000.pkl"
    path.write_bytes(data)
    with pytest.raises(DataFileError, match=r"0000\.pkl: cannot unpickle"):
        read_pickle(path, ("coords_3d",))


@pytest.mark.parametrize("value", [["a", "b", "c"], [[1.0, 2.0, 3.0], [4.0, 5.0]]])
def test_non_numeric_or_ragged_points_name_the_source(value):
    with pytest.raises(DataFileError, match=r"meta/0001\.pkl coords_3d: expected numbers"):
        as_points(value, (2, 3), "meta/0001.pkl coords_3d")


def test_pinhole_intrinsics_are_kept_as_read():
    # A skewed pinhole K (s = 0.5) is upper triangular with fx, fy > 0: accepted unchanged.
    K = [[600.0, 0.5, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 1.0]]
    np.testing.assert_array_equal(as_intrinsics(K, "meta/0001.pkl camMat"), K)


@pytest.mark.parametrize(
    "K",
    [
        [[0.0, 0.0, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 1.0]],  # fx 0: det K = 0
        [[600.0, 0.0, 320.0], [0.0, 0.0, 240.0], [0.0, 0.0, 1.0]],  # fy 0: det K = 0
        [[600.0, 0.0, 320.0], [0.0, -610.0, 240.0], [0.0, 0.0, 1.0]],  # fy < 0: y flipped
        [[600.0, 0.0, 320.0], [3.0, 610.0, 240.0], [0.0, 0.0, 1.0]],  # not upper triangular
        [[600.0, 0.0, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 0.0]],  # last row 0 0 0: singular
        [[600.0, 0.0, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 2.0]],  # not normalised
    ],
    ids=["fx-zero", "fy-zero", "fy-negative", "lower-triangle", "singular-row", "scaled"],
)
def test_intrinsics_that_are_not_a_pinhole_name_the_source(K):
    with pytest.raises(DataFileError, match=r"meta/0001\.pkl camMat: expected pinhole intrinsics"):
        as_intrinsics(K, "meta/0001.pkl camMat")


def test_image_of_the_wrong_size_is_an_error(tmp_path):
    frame = make_frame(tmp_path)
    write_image(frame.image_path, (64, 36))
    with pytest.raises(DataFileError, match="expected 200x100"):
        frame_to_record(frame, image_size=32)


def test_unknown_crop_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="crop"):
        frame_to_record(make_frame(tmp_path), crop="centre")


@pytest.mark.parametrize("margin", [-0.1, float("nan"), "wide", True])
def test_a_margin_that_is_not_a_share_names_the_field(margin):
    # data.options.margin of any real dataset reaches FrameDataset: a negative or NaN share of
    # the side would cut a square of negative or NaN size.
    with pytest.raises(ValueError, match="margin: expected a share"):
        FrameDataset(margin=margin)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([[1.0, 2.0, 3.0]], r"got \(1, 3\)"),  # one joint where two are expected
        ([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], r"got \(3, 3\)"),
        ([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]], "got NaN or inf"),  # an unannotated joint
        ([[1.0, 2.0, 3.0], [4.0, 5.0, np.inf]], "got NaN or inf"),
    ],
    ids=["too-few", "too-many", "nan", "inf"],
)
def test_points_of_another_shape_or_not_finite_name_the_source(value, problem):
    """as_points refuses a wrong shape and NaN or inf, naming the source and the problem."""
    with pytest.raises(DataFileError, match=r"meta/0001\.pkl coords_3d: expected finite values"):
        as_points(value, (2, 3), "meta/0001.pkl coords_3d")
    with pytest.raises(DataFileError, match=problem):
        as_points(value, (2, 3), "meta/0001.pkl coords_3d")


def test_a_pickle_key_that_is_none_counts_as_missing(tmp_path):
    """read_pickle treats a key holding None like an absent one."""
    # Unannotated frames of the real data hold the key with None: as unusable as no key.
    path = tmp_path / "0000.pkl"
    path.write_bytes(pickle.dumps({"coords_3d": None, "cam": [1.0]}))
    with pytest.raises(DataFileError, match=r"0000\.pkl: missing or empty keys \['coords_3d'\]"):
        read_pickle(path, ("coords_3d", "cam"))
    with pytest.raises(DataFileError, match=r"missing or empty keys \['side'\]"):
        read_pickle(path, ("cam", "side"))
    assert read_pickle(path, ("cam",)) == {"coords_3d": None, "cam": [1.0]}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_size": 0}, "image_size: must be >= 1, got 0"),
        ({"on_error": "ignore"}, r"on_error: expected one of \('raise', 'skip'\), got 'ignore'"),
        ({"margin": -0.1}, r"margin: expected a share of the square's side >= 0, got -0.1"),
        # A bool passes for a number in Python, NaN passes no comparison.
        ({"margin": True}, r"margin: expected a share of the square's side >= 0, got True"),
        ({"margin": math.nan}, r"margin: expected a share of the square's side >= 0, got nan"),
    ],
    ids=["image-size-zero", "on-error-unknown", "margin-negative", "margin-bool", "margin-nan"],
)
def test_a_loader_option_out_of_range_names_the_field(options, message):
    """FrameDataset refuses image_size < 1, an unknown on_error and a margin that is not a
    number >= 0, naming the field."""
    with pytest.raises(ValueError, match=message):
        FrameDataset(**options)


def test_a_bad_annotation_is_raised_or_recorded_as_on_error_says(tmp_path):
    """_skip_or_raise raises under on_error='raise' and records under 'skip'."""
    # on_error="raise" stops at the first bad annotation; "skip" lists it in `skipped`.
    error = DataFileError("seq/0003.txt: truncated line")
    with pytest.raises(DataFileError, match="truncated line"):
        _OneFrame(make_frame(tmp_path))._skip_or_raise(error)
    skipping = _OneFrame(make_frame(tmp_path), on_error="skip")
    skipping._skip_or_raise(error)
    assert skipping.skipped == ["seq/0003.txt: truncated line"]


def test_the_square_crop_holds_the_object_as_well_as_the_hand(tmp_path):
    """At z = 100 mm a point (x, y) projects to (100 + x, 50 + y). The hand spans u, v 40-60;
    the box's corners u 140-160, v 40-60, right of it. The square around all 29 points
    (margin 0) has side max(160 - 40, 60 - 40) = 120 about (100, 50): box (40, -10, 160, 110),
    and onto 120 px (scale 1) K's principal point moves by the box's corner: (100 - 40,
    50 + 10) = (60, 60). A square around the hand alone would be (40, 40, 60, 60), the object
    outside the crop."""
    hand = np.array([[-60.0, -10.0, 100.0]] + [[-40.0, 10.0, 100.0]] * 20)
    obj = np.array([[40.0, -10.0, 100.0]] * 4 + [[60.0, 10.0, 100.0]] * 4)
    frame = Frame(tmp_path / "f.png", K, (200, 100), hand, obj, "right", "box", "t/s/q/0")
    crop_K, box = image_geometry(frame, 120, "square", margin=0.0)
    np.testing.assert_allclose(box, (40.0, -10.0, 160.0, 110.0))
    np.testing.assert_allclose(crop_K, [[100.0, 0.0, 60.0], [0.0, 100.0, 60.0], [0.0, 0.0, 1.0]])


def test_a_jittered_whole_frame_view_is_the_frames_own_square(tmp_path):
    """The whole-frame draw (first draw 0 < 0.15), unscaled, unshifted and unturned (the others
    at the middle of their ranges): the 200x100 frame's square of side 200 about (100, 50)
    onto 50 px, s = 0.25: A = [[0.25, 0, 25 - 25], [0, 0.25, 25 - 12.5]], and the view's K =
    A K = [[25, 0, 25], [0, 25, 25]]. About (height / 2, width / 2) = (50, 100) instead, it
    would be [[25, 0, 37.5], [0, 25, 12.5]]."""
    hand = np.array([[-40.0 + 4 * k, -20.0 + 2 * k, 500.0] for k in range(21)])
    obj = np.array([[30.0 + 10 * (c % 2), 10.0, 520.0 + c] for c in range(8)])
    frame = Frame(tmp_path / "f.png", K, (200, 100), hand, obj, "right", "box", "t/s/q/0")
    rng = ScriptedRng([0.0, 0.5, 0.5, 0.5, 0.5])
    record = frame_to_record(frame, image_size=50, crop="square", with_images=False, jitter=rng)
    np.testing.assert_allclose(record["K"], [[25, 0, 25], [0, 25, 25], [0, 0, 1]], atol=1e-5)


def test_a_datasets_margin_of_zero_crops_the_tight_square(tmp_path):
    """A loader given margin 0 crops the tight square, not the default margin's: the frame of
    the test above, read through a dataset, gives the same K, whose principal point (60, 60)
    is the tight square's (margin 0.2 would make the side 144 about (100, 50) and move it to
    (100 - 28, 50 + 22) = (72, 72), scaled by 120 / 144)."""
    hand = np.array([[-60.0, -10.0, 100.0]] + [[-40.0, 10.0, 100.0]] * 20)
    obj = np.array([[40.0, -10.0, 100.0]] * 4 + [[60.0, 10.0, 100.0]] * 4)
    frame = Frame(tmp_path / "f.png", K, (200, 100), hand, obj, "right", "box", "t/s/q/0")
    dataset = _OneFrame(frame, image_size=120, crop="square", margin=0.0, with_images=False)
    np.testing.assert_allclose(
        dataset[0]["K"], [[100.0, 0.0, 60.0], [0.0, 100.0, 60.0], [0.0, 0.0, 1.0]], rtol=1e-6
    )


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_square_record_holds_the_view_predict_and_jittered_crops_make_of_its_square(
    tmp_path, side
):
    # Jittered crops, self-crops and predict show a square of centre c and side w through
    # crop_affine(c, w, S), with K = that map @ K. image_geometry's square case shifts K's
    # principal point by the square's corner and scales it by S / w instead: the same K
    # (cx' = S/w (cx - c + w/2) = S/w (cx - c) + S/2), and the record must hold that view's
    # image, a left hand's of the flipped photo. The points of _blob_frame give a square of
    # about 56 px, shown at 40 px.
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(pixels).save(path)
    frame = replace(_blob_frame(tmp_path, side), image_path=path)
    seen = mirror_frame(frame) if side == "left" else frame
    crop_K, (x0, y0, x1, y1) = image_geometry(seen, 40, "square")
    centre = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2], dtype=torch.float64)
    A = crop_affine(centre, torch.tensor(x1 - x0, dtype=torch.float64), 40)
    np.testing.assert_allclose(crop_K, A.numpy() @ seen.orig_K, rtol=1e-12, atol=1e-9)
    record = frame_to_record(frame, image_size=40, crop="square")
    np.testing.assert_allclose(record["K"], A.numpy() @ seen.orig_K, rtol=1e-6)
    photo = pixels[:, ::-1] if side == "left" else pixels  # the photo a left hand is seen in
    photo = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None]
    seen_image = warp_image(photo, A[None], 40)[0].permute(1, 2, 0)
    seen_image = (seen_image * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    # As for the whole frame: a left hand's record samples the unflipped photo at mirrored
    # positions, in float32 arithmetic of other rounding, so a level apart now and then.
    difference = np.abs(record["image"].astype(int) - seen_image)
    assert difference.max() <= (1 if side == "left" else 0)
    assert difference.mean() < 0.01
