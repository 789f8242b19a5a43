"""The synthetic grasp dataset: anatomy, boxes, projection, contacts, determinism, rendering."""

from __future__ import annotations

import dataclasses
import itertools
import json
from unittest.mock import patch

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hopose.cli import main
from hopose.crop import crop_affine, frame_square
from hopose.data import synthetic, synthetic_split_seed
from hopose.data.cache import CacheDataset
from hopose.data.fpha import FPHA_COLOR_K
from hopose.data.grasp_stats import hand_quantities
from hopose.data.render import (
    _capsules,
    _draw_box,
    _draw_capsules,
    _mark_faces,
    outside_frame,
    render_grasp,
    sample_appearance,
    supersampling,
)
from hopose.data.sample import ARRAY_KEYS, check_sample
from hopose.data.synthetic import (
    _FACE_AXIS,
    _FACE_SIGN,
    BLOCK,
    BONE_LENGTH_P50,
    BONE_SD,
    DEPTH_HIGH,
    DEPTH_LOW,
    HAND_SCALE_MEAN,
    HAND_SCALE_SD,
    MAX_OUTSIDE,
    MAX_OUTSIDE_PARTLY,
    MAX_PENETRATION,
    PARTLY_OUT_FRACTION,
    SyntheticHandObject,
    _close,
    _Hands,
    face_grid_distances,
    generate_grasps,
    label_in_hand,
)
from hopose.geometry import box_corners, project_points, sample_face_points
from hopose.physics import N_SAMPLES, TOP_K, contact_points, physical_affinity_loss, select_contacts
from hopose.skeleton import (
    BOX_FACES,
    CORNER_SIGNS,
    FINGER_CHAINS,
    FINGERS,
    FINGERTIPS,
    HAND_BONES,
    SEGMENTATION_CLASSES,
)

NUM = 320  # pose-only samples for the statistics
SEED = 7


@pytest.fixture(scope="module")
def records() -> list[dict]:
    dataset = SyntheticHandObject(NUM, SEED, with_images=False)
    return [dataset[i] for i in range(NUM)]


def _stack(records: list[dict], key: str) -> torch.Tensor:
    return torch.tensor(np.stack([r[key] for r in records]), dtype=torch.float64)


def _box_frame(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, axes (3, 3) rows, half sizes) of a box from its corners in canonical order."""
    corners = corners.astype(np.float64)
    edges = np.stack([corners[1] - corners[0], corners[3] - corners[0], corners[4] - corners[0]])
    half = np.linalg.norm(edges, axis=1) / 2
    return corners.mean(axis=0), edges / (2 * half[:, None]), half


def _depth_inside(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """How far each point (P, 3) is inside the box (mm, 0 when outside), from first principles."""
    centre, axes, half = _box_frame(corners)
    local = (points - centre) @ axes.T
    inside = np.all(np.abs(local) < half, axis=1)
    return np.where(inside, (half - np.abs(local)).min(axis=1), 0.0)


def test_bone_lengths_are_human(records):
    hands = np.stack([r["hand_3d"] for r in records]).astype(np.float64)
    bones = np.array(HAND_BONES)
    lengths = np.linalg.norm(hands[:, bones[:, 1]] - hands[:, bones[:, 0]], axis=-1)  # (B, 20)
    # HAND_BONES runs chain by chain from the wrist, as the rows of the docs/conventions.md §7
    # table.
    medians = BONE_LENGTH_P50.reshape(-1)
    # The hand-size factor is clipped at 2.5 sd (1.02 -+ 0.1125) and each bone's own factor at
    # 2 sd (1 -+ 0.1, the little finger's PIP-DIP 1 -+ 0.18): each bone lies within the product
    # of the two ranges, 0.82 to 1.25 times its median (0.74 to 1.34 for that bone). A fixed
    # 0.75-1.3 passed at seed 7 by chance: seeds 0, 2, 3, 6 and 9 draw little PIP-DIP bones
    # of 1.30-1.34 times the median, seed 4 one of 0.744. 1e-4 of slack for the float32 records.
    low = (HAND_SCALE_MEAN - 2.5 * HAND_SCALE_SD) * (1 - 2 * BONE_SD.reshape(-1))
    high = (HAND_SCALE_MEAN + 2.5 * HAND_SCALE_SD) * (1 + 2 * BONE_SD.reshape(-1))
    assert np.all(lengths >= (low - 1e-4) * medians) and np.all(lengths <= (high + 1e-4) * medians)
    np.testing.assert_allclose(np.median(lengths, axis=0), 1.02 * medians, rtol=0.05)
    middle = FINGER_CHAINS[2]  # wrist -> MCP -> PIP -> DIP -> tip along the bones
    path = np.linalg.norm(np.diff(hands[:, [0, *middle]], axis=1), axis=-1).sum(axis=1)
    assert np.all((path > 140) & (path < 210))
    assert 160 < np.median(path) < 180  # FPHA: median 168 mm (docs/conventions.md §7)


def test_hand_is_a_right_hand(records):
    # In a right hand, (index MCP - wrist) x (little MCP - wrist) points out of the palm, and the
    # fingers flex towards the palm: the middle fingertip lies on that side of the MCP plane.
    for r in records[:50]:
        h = r["hand_3d"].astype(np.float64)
        palm = np.cross(h[5] - h[0], h[17] - h[0])
        assert (h[0] - h[12]) @ palm < 0 or r["grasp"] == "free"


def test_boxes_are_cuboids_in_spec_corner_order(records):
    for r in records[:50]:
        corners = r["obj_3d"].astype(np.float64)
        centre, axes, half = _box_frame(corners)
        np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-5)
        assert np.linalg.det(axes) > 0  # right-handed box axes
        rebuilt = centre + (np.array(CORNER_SIGNS) * half) @ axes
        np.testing.assert_allclose(rebuilt, corners, atol=1e-3)
        assert 2 * half[2] > 2 * half[:2].max()  # z is the longest side: the affinity axis


def test_2d_is_the_projection_of_3d(records):
    K = records[0]["K"]
    # FPHA colour K scaled per axis to 224 x 224: fx 1395.749023 * 224/1920 = 162.8374, cy
    # 540.68103 * 224/1080 = 112.1413.
    np.testing.assert_allclose([K[0, 0], K[1, 2]], [162.8374, 112.1413], atol=1e-4)
    np.testing.assert_array_equal(records[0]["orig_K"], FPHA_COLOR_K)
    for key in ("hand", "obj"):
        projected = project_points(_stack(records, f"{key}_3d"), torch.tensor(K))
        np.testing.assert_allclose(projected.numpy(), _stack(records, f"{key}_2d"), atol=1e-3)


def test_contacts_of_grasps_and_free_frames(records):
    hand, obj = _stack(records, "hand_3d"), _stack(records, "obj_3d")
    _, _, valid = contact_points(hand, obj)
    count = valid.sum(dim=-1).numpy()
    free = np.array([r["grasp"] == "free" for r in records])
    assert np.all(count[~free] >= 2)
    assert np.all(count[free] == 0)


def test_the_thumb_opposes_a_finger_in_every_grasp(records):
    """docs/synthetic.md "How a sample is made", 4: of the affinity loss's candidate contacts,
    a valid one lies on a thumb joint (MCP, IP or tip) and another on a joint of the other
    fingers (PIP, DIP or tip), as hopose.physics finds them on the float32 records."""
    hand, obj = _stack(records, "hand_3d"), _stack(records, "obj_3d")
    selection = select_contacts(hand, obj, N_SAMPLES, TOP_K)
    _, _, valid = contact_points(hand, obj, selection=selection)
    joint = selection[..., 0]  # (B, TOP_K) the candidates' joints
    thumb = torch.isin(joint, torch.tensor(FINGER_CHAINS[0][1:]))
    fingers = torch.isin(joint, torch.tensor([j for chain in FINGER_CHAINS[1:] for j in chain[1:]]))
    grasped = torch.tensor([r["grasp"] != "free" for r in records])
    assert grasped.sum() > NUM // 2
    assert (valid & thumb).any(dim=-1)[grasped].all()
    assert (valid & fingers).any(dim=-1)[grasped].all()


def test_no_joint_deep_inside_the_box(records):
    depth = [_depth_inside(r["hand_3d"], r["obj_3d"]).max() for r in records]
    assert max(depth) <= MAX_PENETRATION + 0.01  # float32 records of the float64 poses


def test_labelling_in_the_hand_turns_a_box_half_a_turn():
    # Hand: fingers f = (0, -1, 0); palm normal n = (h5 - h0) × (h17 - h0) = (-20, -75, 0) ×
    # (20, -70, 0) = (0, 0, 1400 + 1500), i.e. (0, 0, 1); thumb side f × n = (-1, 0, 0).
    hand = np.zeros((21, 3))
    hand[[0, 5, 9, 17]] = [[0, 0, 400], [-20, -75, 400], [0, -80, 400], [20, -70, 400]]
    # Box x along -n and z along -(f × n): both flip, a half turn about y: corner k is the corner
    # whose signs are k's times (-1, +1, -1). Rows: box x, y = z × x, z in the camera.
    axes = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    signs = np.array(CORNER_SIGNS)
    corners = np.array([0.0, -60.0, 450.0]) + (signs * np.array([30.0, 20.0, 50.0])) @ axes
    expected = [CORNER_SIGNS.index(tuple(s * np.array([-1, 1, -1]))) for s in signs]
    got = label_in_hand(hand[None], corners[None])[0]
    np.testing.assert_array_equal(got, corners[expected])


def test_labelling_in_the_hand_ignores_how_the_box_was_labelled(records):
    hand = np.stack([r["hand_3d"] for r in records]).astype(np.float64)
    corners = np.stack([r["obj_3d"] for r in records]).astype(np.float64)
    signs = np.array(CORNER_SIGNS)
    for flips in ((1, 1, 1), (-1, -1, 1), (-1, 1, -1), (1, -1, -1)):
        turned = [CORNER_SIGNS.index(tuple(s * np.array(flips))) for s in signs]
        np.testing.assert_array_equal(label_in_hand(hand, corners[:, turned]), corners)


def test_grasp_statistics(records):
    kinds = np.array([r["grasp"] for r in records])
    free = kinds == "free"
    assert 0.05 <= free.mean() <= 0.40
    assert (~free).mean() >= 0.60
    assert set(kinds[~free]) == {"power", "pinch", "lateral"}
    # Fingertips touch in grasps: in every grasp at least two tips are within 10 mm of the box.
    grasps = [r for r in records if r["grasp"] != "free"]
    for r in grasps:
        centre, axes, half = _box_frame(r["obj_3d"])
        local = np.abs((r["hand_3d"][list(FINGERTIPS)] - centre) @ axes.T) - half
        distance = np.linalg.norm(np.maximum(local, 0), axis=1)
        assert np.count_nonzero(distance < 10.0) >= 2
    # Contacts spread around the axis: the affinity loss (mean pairwise cosine) stays low.
    loss = physical_affinity_loss(_stack(grasps, "hand_3d"), _stack(grasps, "obj_3d"))
    assert loss < 0.25


def test_convention_face_axes_follow_box_faces():
    # Face k of BOX_FACES is normal to axis _FACE_AXIS[k], on the side _FACE_SIGN[k]: every
    # corner of the face has that sign bit on that axis.
    for face, axis, sign in zip(BOX_FACES, _FACE_AXIS, _FACE_SIGN, strict=True):
        assert all(CORNER_SIGNS[c][axis] == sign for c in face)


def test_face_grid_distances_match_the_bilinear_grid():
    rng = np.random.default_rng(0)
    half = rng.uniform(10, 100, (4, 3))
    points = rng.normal(0, 80, (4, 21, 3))
    fast = face_grid_distances(points, half)
    corners = box_corners(torch.tensor(2 * half))  # (4, 8, 3)
    grid = sample_face_points(corners, 11)  # (4, 6, 121, 3)
    naive = torch.cdist(torch.tensor(points)[:, None], grid).min(dim=-1).values  # (4, 6, 21)
    np.testing.assert_allclose(fast, naive.transpose(1, 2).numpy(), atol=1e-9)


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


def _keypoints_outside(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """How many of the keypoints (..., P, 3) K projects outside the 1920×1080 frame (...)."""
    uv = points @ K.T
    uv = uv[..., :2] / uv[..., 2:]
    return ((uv < 0) | (uv >= np.array([1920, 1080]))).any(axis=-1).sum(axis=-1)


def test_pairs_out_of_view_are_pushed_back_along_their_centroid_ray(monkeypatch):
    """docs/synthetic.md, "How a sample is made": when none of the drawn placements leaves at
    most 3 keypoints outside the frame, the one that leaves the fewest is moved back along its
    centroid's ray by the least factor of PUSH_BACK (1.1, 1.2 ... 2) that does."""
    # Focal lengths x2.5 see 40% of the field: many drawn placements leave the frame.
    K = FPHA_COLOR_K * np.array([[2.5, 2.5, 1.0], [2.5, 2.5, 1.0], [1.0, 1.0, 1.0]])
    monkeypatch.setattr(synthetic, "PARTLY_OUT_FRACTION", 0.0)  # every sample allows 3 out
    indices = np.arange(2 * BLOCK)
    pushed = generate_grasps(SEED, indices, camera=K)
    push_back = synthetic.PUSH_BACK
    monkeypatch.setattr(synthetic, "PUSH_BACK", np.array([1.0]))  # the placements as drawn
    drawn = generate_grasps(SEED, indices, camera=K)
    # Moving back by f puts the hand centroid c at f c: the pair is translated by (f - 1) c.
    centroid = drawn.hand_3d.mean(axis=1)  # (B, 3)
    factor = pushed.hand_3d.mean(axis=1)[:, 2] / centroid[:, 2]
    shift = (factor - 1)[:, None, None] * centroid[:, None]
    np.testing.assert_allclose(pushed.hand_3d, drawn.hand_3d + shift, atol=1e-9)
    np.testing.assert_allclose(pushed.obj_3d, drawn.obj_3d + shift, atol=1e-9)
    # The least factor that fits, by trying each in turn; 1 where the drawn pair fits already
    # or no factor does.
    pair = np.concatenate([drawn.hand_3d, drawn.obj_3d], axis=1)  # (B, 29, 3)
    expected = []
    for k in range(len(indices)):
        fitting = [
            f
            for f in push_back
            if _keypoints_outside(pair[k] + (f - 1) * centroid[k], K) <= MAX_OUTSIDE
        ]
        expected.append(fitting[0] if fitting else 1.0)
    np.testing.assert_allclose(factor, expected, atol=1e-12)
    assert np.sum(factor > 1) > len(indices) // 5  # the fallback was needed, not only allowed


def test_hand_centroid_depth_is_clipped_to_280_520(monkeypatch):
    # No pair moved back (the fallback above), each hand centroid lies at its drawn depth:
    # N(410, 75) mm clipped to 280-520, which catches about 4% of the draws below and 7% above.
    monkeypatch.setattr(synthetic, "PUSH_BACK", np.array([1.0]))
    depth = generate_grasps(SEED, np.arange(4 * BLOCK)).hand_3d.mean(axis=1)[:, 2]
    assert depth.min() >= DEPTH_LOW - 1e-9 and depth.max() <= DEPTH_HIGH + 1e-9
    assert np.isclose(depth, DEPTH_LOW).any() and np.isclose(depth, DEPTH_HIGH).any()


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


def _capsule_look():
    """An appearance lit from straight behind the camera: a capsule's shade is then
    0.5 + 0.5 (0.35 + 0.65 bulge), 1 on its axis."""
    look = sample_appearance(np.random.default_rng(0), "milk")
    return dataclasses.replace(look, ambient=0.5, light=np.array([0.0, 0.0, -1.0]))


def test_capsule_depth_and_shade_by_hand():
    # K maps the normalised point (x, y) to pixel (100 x + 16, 100 y + 16). The capsule from
    # (-10, 0, 100) to (10, 0, 100) mm, radius 5, covers |y| < 0.05 over its axis x in
    # [-0.1, 0.1] and discs of radius 0.05 about its ends. Pixel (u, v) = (16, 16) looks along
    # the axis: depth 100 - 5 = 95, bulge 1; (16, 20) is 0.04 off it: bulge sqrt(1 - 0.8^2) =
    # 0.6, depth 100 - 5 * 0.6 = 97, shade 0.5 + 0.5 * (0.35 + 0.65 * 0.6) = 0.87; (30, 16) is
    # 0.04 beyond the end (0.1, 0), on the end's sphere: the same. (16, 22) and (0, 16) are
    # 0.06 away, outside.
    K = np.array([[100.0, 0, 16], [0, 100.0, 16], [0, 0, 1]])
    image, zbuf = np.zeros((32, 32, 3), np.float32), np.full((32, 32), np.inf, np.float32)
    red = np.array([[1.0, 0.0, 0.0]])
    a, b = np.array([[-10.0, 0, 100]]), np.array([[10.0, 0, 100]])
    _draw_capsules(image, zbuf, K, a, b, np.array([5.0]), red, _capsule_look())
    for (u, v), depth, shade in [((16, 16), 95, 1.0), ((16, 20), 97, 0.87), ((30, 16), 97, 0.87)]:
        assert zbuf[v, u] == pytest.approx(depth, rel=1e-6)
        np.testing.assert_allclose(image[v, u], [shade, 0, 0], rtol=1e-6)
    for u, v in [(16, 22), (0, 16)]:
        assert zbuf[v, u] == np.inf and not image[v, u].any()
    # A capsule reaching behind the camera (z < 1 mm) is not drawn at all.
    zbuf[:], image[:] = np.inf, 0
    behind = np.array([[10.0, 0, 0.5]])
    _draw_capsules(image, zbuf, K, a, behind, np.array([5.0]), red, _capsule_look())
    assert (zbuf == np.inf).all() and not image.any()


def test_capsules_composite_in_order_and_the_earliest_wins_a_tie():
    # Three copies of the capsule above drawn in one call: red, then green at exactly the same
    # depths (the earlier stays, as a z-test with < keeps it), then blue 1 mm nearer (it
    # wins). Over a z-buffer already holding 96 mm (a box drawn before), the axis pixel (95)
    # shows red, the one 0.04 off the axis (97) keeps what was there.
    K = np.array([[100.0, 0, 16], [0, 100.0, 16], [0, 0, 1]])
    a, b, radius = np.array([[-10.0, 0, 100]]), np.array([[10.0, 0, 100]]), np.array([5.0])
    red, green, blue = np.eye(3)
    near = np.array([0.0, 0, -1])
    image, zbuf = np.zeros((32, 32, 3), np.float32), np.full((32, 32), np.inf, np.float32)
    start, end = np.concatenate([a, a, a + near]), np.concatenate([b, b, b + near])
    _draw_capsules(image, zbuf, K, start, end, radius.repeat(3), np.stack([red, green, blue]),
                   _capsule_look())  # fmt: skip
    np.testing.assert_array_equal(image[16, 16], blue)
    assert zbuf[16, 16] == pytest.approx(94, rel=1e-6)
    image, zbuf = np.full((32, 32, 3), 0.5, np.float32), np.full((32, 32), 96.0, np.float32)
    _draw_capsules(image, zbuf, K, start[:2], end[:2], radius.repeat(2), np.stack([red, green]),
                   _capsule_look())  # fmt: skip
    np.testing.assert_array_equal(image[16, 16], red)
    np.testing.assert_array_equal(image[20, 16], [0.5, 0.5, 0.5])
    assert zbuf[16, 16] == pytest.approx(95, rel=1e-6) and zbuf[20, 16] == 96


def test_a_capsule_draws_every_pixel_it_covers():
    # Each capsule alone against its definition evaluated at every pixel of the image: the
    # renderer evaluates only the pixels near a capsule, and loses none (K turned, capsules
    # of any direction, some cut by the image's edges).
    rng = np.random.default_rng(1)
    size, look = 40, _capsule_look()
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    for angle in np.linspace(0.0, 3.0, 7):
        turn = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
        K = np.array(turn) @ np.array([[60.0, 0, 20], [0, 55.0, 20], [0, 0, 1]])
        rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(K).T
        for _ in range(10):
            a, b = rng.normal(0, 60, (2, 3)) + np.array([0, 0, 300])
            radius = rng.uniform(3, 15)
            pa, pb = a[:2] / a[2], b[:2] / b[2]
            qx, qy, (ax, ay) = rays[..., 0] - pa[0], rays[..., 1] - pa[1], pb - pa
            s = np.clip((qx * ax + qy * ay) / (ax * ax + ay * ay), 0.0, 1.0)
            dist = np.hypot(qx - s * ax, qy - s * ay)
            depth_axis = a[2] + s * (b[2] - a[2])
            covered = dist < radius / depth_axis
            bulge = np.sqrt(np.clip(1 - np.square(dist * depth_axis / radius), 0.0, 1.0))
            image, zbuf = np.zeros((size, size, 3), np.float32), np.full((size, size), np.inf)
            _draw_capsules(image, zbuf, K, a[None], b[None], np.array([radius]), np.ones((1, 3)),
                           look)  # fmt: skip
            np.testing.assert_array_equal(zbuf < np.inf, covered)
            np.testing.assert_allclose(zbuf[covered], (depth_axis - radius * bulge)[covered])


def test_capsules_drawn_at_once_equal_capsules_drawn_one_by_one():
    # Chains of capsules sharing their joints (exact ties about every joint), copies shifted by
    # less than the float32 z-buffer's resolution (ties there but not in float64), capsules
    # cut by the image's edges, a rotated affine K: one call equals the capsules drawn one
    # after another through the same z-buffer, pixel for pixel, depth for depth.
    rng = np.random.default_rng(0)
    size, look = 40, _capsule_look()
    turn = np.array([[np.cos(0.4), -np.sin(0.4), 0], [np.sin(0.4), np.cos(0.4), 0], [0, 0, 1]])
    K = turn @ np.array([[60.0, 0, 20], [0, 55.0, 20], [0, 0, 1]])
    for _ in range(20):
        joints = np.cumsum(rng.normal(0, 25, (12, 3)), axis=0) + np.array([0, 0, 300])
        start, end = joints[:-1], joints[1:]
        radius = rng.uniform(5, 15, len(start))
        copies = rng.integers(0, len(start), 6)
        start = np.concatenate([start, start[copies] + [0, 0, 1e-6]])
        end = np.concatenate([end, end[copies] + [0, 0, 1e-6]])
        radius = np.concatenate([radius, radius[copies]])
        colour = rng.uniform(0, 1, (len(start), 3))
        base = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
        depth = rng.uniform(250, 400, (size, size)).astype(np.float32)  # something drawn before
        image, zbuf = base.copy(), depth.copy()
        _draw_capsules(image, zbuf, K, start, end, radius, colour, look)
        one_by_one, zbuf_one = base.copy(), depth.copy()
        for c in range(len(start)):
            _draw_capsules(one_by_one, zbuf_one, K, start[c : c + 1], end[c : c + 1],
                           radius[c : c + 1], colour[c : c + 1], look)  # fmt: skip
        np.testing.assert_array_equal(image, one_by_one)
        np.testing.assert_array_equal(zbuf, zbuf_one)
        assert (zbuf < depth).any()  # the capsules do show


def test_render_respects_depth_order():
    size = 96
    K = np.diag([size / 1920, size / 1080, 1.0]) @ FPHA_COLOR_K
    corners = box_corners(torch.tensor([60.0, 60.0, 150.0])).numpy() + np.array([0, 0, 400.0])
    # A flat hand centred on the box's line of sight: palm at z = 300, nearer than the box's
    # front face (z = 400 - 30 = 370) by more than any capsule radius.
    hand = SyntheticHandObject(1, 0, with_images=False)[0]["hand_3d"].astype(np.float64)
    hand = hand - hand.mean(axis=0)
    hand = hand * np.array([1.0, 1.0, 0.0]) * 0.5 + np.array([0.0, 0.0, 300.0])

    def render(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image, classes = render_grasp(
            h, corners, K, size, np.random.default_rng(5), "milk", segmentation=True
        )
        # Asking for the classes leaves the picture as it is.
        plain = render_grasp(h, corners, K, size, np.random.default_rng(5), "milk")
        np.testing.assert_array_equal(image, plain)
        return image.astype(int), classes

    box_only, _ = render(hand + np.array([1e5, 0.0, 0.0]))  # the hand far outside the picture
    (in_front, front), (behind, back) = render(hand), render(hand * 2.0)  # x2: 600 mm deep
    box_uv = project_points(torch.tensor(corners), torch.tensor(K)).numpy()
    uv = np.rint(project_points(torch.tensor(hand), torch.tensor(K)).numpy()).astype(int)
    lo, hi = box_uv.min(axis=0) + 2, box_uv.max(axis=0) - 2
    over_box = [(u, v) for u, v in uv if lo[0] < u < hi[0] and lo[1] < v < hi[1]]
    assert len(over_box) >= 5
    for u, v in over_box:
        assert np.abs(in_front[v, u] - box_only[v, u]).sum() > 30  # the hand hides the box
        np.testing.assert_array_equal(behind[v, u], box_only[v, u])  # the box hides the hand
        # The front face is the box's z- face (the camera looks along +z).
        assert SEGMENTATION_CLASSES[front[v, u]] == "hand"
        assert SEGMENTATION_CLASSES[back[v, u]] == "box z-"


# A quarter turn about the camera's y axis, (x, y, z) -> (z, y, -x): the box's +x axis points
# at the camera.
_QUARTER_TURN = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])


@pytest.mark.parametrize(
    ("sides", "turn", "face"),
    [((60.0, 60.0, 150.0), np.eye(3), "box z-"), ((150.0, 60.0, 60.0), _QUARTER_TURN, "box x+")],
)
def test_segmentation_of_a_box_face_on_by_hand(sides, turn, face):
    # A 60 x 60 mm face 325 mm deep (the box centred 400 mm ahead, 150 mm deep) under a focal of
    # 120 px, centre 31.5: it spans 31.5 -+ 120 * 30 / 325 = 20.42 .. 42.58 px on both axes.
    # With 2 x 2 samples per pixel, at q -+ 0.25, pixels 21 .. 42 have all four inside, 20 and
    # 43 none (20.25 < 20.42, 42.75 > 42.58); the side faces are edge-on or turned away.
    K = np.array([[120.0, 0, 31.5], [0, 120.0, 31.5], [0, 0, 1]])
    corners = box_corners(torch.tensor(sides)).numpy() @ turn.T + np.array([0, 0, 400.0])
    hand = SyntheticHandObject(1, 0, with_images=False)[0]["hand_3d"].astype(np.float64)
    far = hand + np.array([1e5, 0.0, 0.0])  # the hand far outside the picture
    _, classes = render_grasp(
        far, corners, K, 64, np.random.default_rng(0), supersample=2, segmentation=True
    )
    expected = np.zeros((64, 64), dtype=np.uint8)
    expected[21:43, 21:43] = SEGMENTATION_CLASSES.index(face)
    np.testing.assert_array_equal(classes, expected)
    # Class 2 + f is BOX_FACES[f], whose four corners share the face's sign on its axis.
    axis, sign = "xyz".index(face[-2]), 1 if face[-1] == "+" else -1
    face_corners = BOX_FACES[SEGMENTATION_CLASSES.index(face) - 2]
    assert all(CORNER_SIGNS[c][axis] == sign for c in face_corners)


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


def test_outside_frame_by_hand():
    # A 4 x 3 frame seen 1:1 in a 5-px view: pixel centres u = 0..4, v = 0..4; the frame's
    # pixels end at u = 3.5 and v = 2.5, so column 4 and rows 3-4 lie outside.
    expected = np.zeros((5, 5), dtype=bool)
    expected[:, 4] = expected[3:, :] = True
    np.testing.assert_array_equal(outside_frame(np.eye(3), (4, 3), 5), expected)
    # Shifted one pixel right and down (q = p + 1): column 0 and row 0 now lie before the
    # frame's edge -0.5 (p = -1), and the far side moves out one pixel.
    shift = np.array([[1.0, 0, 1], [0, 1, 1], [0, 0, 1]])
    expected = np.zeros((5, 5), dtype=bool)
    expected[:, 0] = expected[0, :] = expected[4:, :] = True
    np.testing.assert_array_equal(outside_frame(shift, (4, 3), 5), expected)


def test_supersampled_render_is_the_mean_of_the_finer_render():
    # supersample=2 draws the image at twice the side through K' = U K with
    # U = [[2, 0, 0.5], [0, 2, 0.5], [0, 0, 1]] (fine centre 2q + 0.5 for coarse pixel q) and
    # averages each 2 x 2 block, before gain and noise. With a flat grey background, no noise
    # and unit gain, each pixel is the mean of its four pixels in the plain render at twice the
    # side.
    record = SyntheticHandObject(1, 0, image_size=32, crop="square", with_images=False)[0]
    look = sample_appearance(np.random.default_rng(3), "milk")
    flat = dataclasses.replace(look, noise=0.0, gain=np.ones(3, np.float32))
    U = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]])

    def render(K, size, supersample):
        with (
            patch("hopose.data.render.sample_appearance", return_value=flat),
            patch(
                "hopose.data.render._background",
                lambda n, seed, scale=1: np.full((n, n, 3), 0.5, np.float32),
            ),
        ):
            return render_grasp(
                record["hand_3d"], record["obj_3d"], K, size, np.random.default_rng(3), "milk",
                supersample=supersample,
            ).astype(float)  # fmt: skip

    fine = render(U @ record["K"], 64, 1)
    coarse = render(record["K"], 32, 2)
    blocks = fine.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(coarse - blocks).max() <= 1.0  # each image rounded to uint8 once
    assert np.abs(coarse - fine[::2, ::2]).max() > 20  # not a single sample per pixel
    # Samples per side for SUPERSAMPLED_SIDE = 128: ceil(128 / S), at least 1.
    assert [supersampling(s) for s in (32, 64, 96, 128, 224)] == [4, 2, 2, 1, 1]


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


def test_camera_view_and_straight_pips_as_in_fpha(records):
    values = hand_quantities(_stack(records, "hand_3d").numpy())
    # FPHA-HO: the back of the hand is seen in 74% of frames, fingers pointing up (y' y p50
    # -0.70) and away (y' z p50 0.61); PIPs straight in 53-74%, thumb MCPs in 86%.
    assert 64 <= values["back of the hand seen"].mean() <= 84
    assert np.median(values["palm y' y"]) < -0.5 and np.median(values["palm y' z"]) > 0.4
    assert 53 <= values["FPHA PIP recorded straight"].mean() <= 74
    assert 76 <= values["FPHA thumb MCP recorded straight"].mean() <= 96


def test_hands_sit_along_their_fingers_direction_across_the_image(monkeypatch):
    """The centroid's column follows y''s x component (CENTROID_U_PALM_CORRELATION): FPHA-HO's
    wrists spread less across the frame than its centroids, which an independent placement
    widens by the wrist-to-centroid offset."""

    def placement(correlation: float) -> tuple[float, float]:
        monkeypatch.setattr(synthetic, "CENTROID_U_PALM_CORRELATION", correlation)
        hand = generate_grasps(SEED, np.arange(NUM)).hand_3d
        column = hand.mean(axis=1) @ FPHA_COLOR_K.T  # (N, 3) homogeneous centroid pixels
        fingers = hand[:, 9] - hand[:, 0]  # wrist to middle MCP
        x_direction = fingers[:, 0] / np.linalg.norm(fingers, axis=1)
        return np.corrcoef(column[:, 0] / column[:, 2], x_direction)[0, 1], hand[:, 0, 0].std()

    correlated, wrist_spread = placement(synthetic.CENTROID_U_PALM_CORRELATION)
    independent, wrist_spread_independent = placement(0.0)
    assert 0.4 < correlated < 0.9 and abs(independent) < 0.15
    assert wrist_spread < 0.9 * wrist_spread_independent


def test_joints_stop_at_their_closing_goals(records):
    values = hand_quantities(_stack(records, "hand_3d").numpy())
    # A DIP closes at most to its drawn goal (index 65°, the others 85°) plus 15° after a locked
    # PIP; the thumb's IP to 30°, plus 15° after a locked MCP. Float32 records: 0.1° of slack.
    assert values["index DIP"].max() <= 65.0 + 15.0 + 0.1
    for finger in ("middle", "ring", "little"):
        assert values[f"{finger} DIP"].max() <= 85.0 + 15.0 + 0.1
    assert values["thumb IP"].max() <= 30.0 + 15.0 + 0.1
    # The goals are drawn, so the DIPs of fingers that meet nothing spread over tens of degrees.
    assert np.percentile(values["middle DIP"], 75) - np.percentile(values["middle DIP"], 25) > 20.0


def test_grasp_types_and_finger_closing_follow_the_object(records):
    grasps = [r for r in records if r["grasp"] != "free"]
    kinds, objects = np.array([r["grasp"] for r in grasps]), np.array([r["object"] for r in grasps])
    # FPHA-HO's milk is held closed, its salt open: power grasps are drawn for 80% of the milk's
    # attempts, lateral ones for 80% of the salt's.
    for name, kind in (("milk", "power"), ("salt", "lateral")):
        assert np.mean(kinds[objects == name] == kind) > 0.6
    # A salt grasp's MCP and PIP close at most to 0.7 of their limits (PIP 110°, so 77°); the
    # PIP angle is the chain's own joint angle. Float32 records: 0.1° of slack.
    salt = [r for r in grasps if r["object"] == "salt"]
    pips = np.stack(
        [hand_quantities(_stack(salt, "hand_3d").numpy())[f"{f} PIP, bent"] for f in FINGERS[1:]]
    )
    assert np.nanmax(pips) <= 0.7 * 110.0 + 0.1
    others = [r for r in grasps if r["object"] != "salt"]
    values = hand_quantities(_stack(others, "hand_3d").numpy())
    assert max(np.nanmax(values[f"{f} PIP, bent"]) for f in FINGERS[1:]) > 0.7 * 110.0 + 5.0


def test_box_faces_carry_marks_that_tell_each_axis_sign():
    # Every face rendered plain (box colour 0.5 grey, label colour red) over a 5 x 5 grid of
    # in-face coordinates: the marks must tell +x from -x, +y from -y and +z from -z (else a
    # half-turned box shows the same picture), and the three marked faces from each other.
    look = sample_appearance(np.random.default_rng(0), "box")
    look = dataclasses.replace(look, label=np.array([0.9, 0.1, 0.1]))
    grid = np.stack(np.meshgrid(np.linspace(0.05, 0.95, 5), np.linspace(0.05, 0.95, 5)), -1)
    coords = grid.reshape(-1, 2)

    def face_pattern(face: int) -> np.ndarray:
        colour = np.full((len(coords), 3), 0.5)
        return _mark_faces(colour, np.full(len(coords), face), coords, look)

    patterns = [face_pattern(face) for face in range(6)]  # -x, +x, -y, +y, -z, +z
    for axis in range(3):
        assert np.abs(patterns[2 * axis + 1] - patterns[2 * axis]).sum() > 1.0
    for a, b in ((1, 3), (1, 5), (3, 5)):
        assert np.abs(patterns[a] - patterns[b]).sum() > 1.0


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


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (True, "expected a number in [0, 1], got True"),  # YAML's true: every frame free
        ("0.5", "expected a number in [0, 1], got '0.5'"),
        (float("nan"), "must be in [0, 1], got nan"),
        (5.0, "must be in [0, 1], got 5.0"),
        (-1.0, "must be in [0, 1], got -1.0"),
    ],
)
def test_free_fraction_must_be_a_probability(bad, message):
    """The dataset took True as 1 (all frames free), and generate_grasps any value at all."""
    for make in (
        lambda: SyntheticHandObject(4, 0, with_images=False, free_fraction=bad),
        lambda: generate_grasps(0, np.arange(4), free_fraction=bad),
    ):
        with pytest.raises(ValueError) as error:
            make()
        assert str(error.value) == f"free_fraction: {message}"


def test_free_fraction_bounds_give_no_and_all_free_frames():
    # A sample is free when its uniform draw in [0, 1) is below the fraction.
    assert "free" not in generate_grasps(0, np.arange(16), free_fraction=0).grasp
    assert set(generate_grasps(0, np.arange(16), free_fraction=1).grasp) == {"free"}


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


def test_seeds_are_one_32_bit_word():
    """numpy's SeedSequence splits a larger seed into 32-bit words and pads short entropy with
    zeros: [2**32, 0] is [0, 1], so seed 2**32's sample 0 would be seed 0's sample 1, and the
    train split of base seed s + 2**32 the val split of s. Such seeds are refused."""
    same = np.random.SeedSequence([2**32, 0]), np.random.SeedSequence([0, 1])
    assert np.array_equal(*(sequence.generate_state(4) for sequence in same))
    for make in (
        lambda seed: SyntheticHandObject(1, seed, with_images=False),
        lambda seed: synthetic_split_seed(seed, "train"),
        lambda seed: generate_grasps(seed, np.arange(1)),
    ):
        with pytest.raises(ValueError, match=r"seed: must be in \[0, 2\*\*32\), got 4294967296"):
            make(2**32)
        with pytest.raises(ValueError, match=r"seed: must be in \[0, 2\*\*32\), got -1"):
            make(-1)
        make(2**32 - 1)


def test_neighbouring_seeds_do_not_share_samples():
    """Sample i draws from ``default_rng([seed, i])``: seed and index are two words of the seed
    sequence, so seed s + 1's sample i is not seed s's sample i + 1 (as it would be were they
    added into one)."""
    for index in (0, 5):
        a = generate_grasps(3, np.array([index + 1]))
        b = generate_grasps(4, np.array([index]))
        assert not np.allclose(a.hand_3d, b.hand_3d)


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


def test_a_touching_segment_stops_its_joint_and_the_distal_joints_go_on():
    """Module docstring, 3 (GraspIt's auto-grasp): when a segment comes within the skin distance
    of the box, the joints proximal to it stop and the distal ones go on closing."""
    # One chain along +x from the origin, flexing towards +z, segments 40, 30, 20 mm; the box
    # x in [-50, 30], z in [15, 115] (centre (-10, 0, 65), half sizes 40, 50, 50), skin 2 mm.
    # All three joints close together towards 90 degrees; the first segment's 2/3 point
    # (26.67 mm out) is the first to come within 2 mm of the face z = 15, at
    # 26.67 sin(phi) = 13, phi = 29.2 degrees (its end, 40 cos(phi) = 35 mm out, is still beyond
    # x = 32). The first joint stops there, within the search's last step (90 / 7 / 5 = 2.6
    # degrees); the two distal joints close on until the distal segments near the box too.
    hands = _Hands(
        np.zeros((1, 1, 3)),
        np.array([[[1.0, 0.0, 0.0]]]),
        np.array([[[0.0, 0.0, 1.0]]]),
        np.array([[[40.0, 30.0, 20.0]]]),
    )
    half, trans = np.array([[40.0, 50.0, 50.0]]), np.array([[10.0, 0.0, -65.0]])
    target = np.full((1, 1, 3), np.pi / 2)
    theta = _close(
        hands, np.zeros((1, 1, 3)), target, np.eye(3)[None], trans, half, np.array([2.0])
    )
    first, second, third = np.degrees(theta[0, 0])
    assert 29.2 - 2.6 <= first <= 29.2
    assert second > first + 10.0 and third > first + 10.0
    # Chebyshev gaps of the tested points (1/3, 2/3, 1 of each segment) to the box: none within
    # the skin, and the last segment closed to within a few mm of it (at the first joint's
    # stop alone it is 23 mm away).
    points = hands.points(theta).reshape(-1, 3) + trans
    gap = (np.abs(points) - half).max(axis=-1)
    assert gap.min() >= 2.0
    assert gap[6:].min() < 5.0


def test_capsules_taper_along_the_fingers_and_the_forearm_goes_towards_the_shoulder():
    """Module docstring of hopose.data.render: bone radii taper from 10 mm (wrist to each
    chain's base) through 9 and 8 to 7 mm (the tips' bones); the sleeved forearm runs 200 mm
    from the wrist towards the right shoulder below and right of the camera."""
    rng = np.random.default_rng(0)
    hand = rng.normal(0, 40, (21, 3)) + np.array([0.0, 0.0, 400.0])  # distinct joints
    # The MCP row 80 mm above the wrist in the image: the hand's back (wrist - MCPs) points down.
    hand[[5, 9, 13, 17]] = hand[0] + np.array([[x, -80.0, 0.0] for x in (-30, -10, 10, 30)])
    start, end, radius, sleeve = _capsules(hand)
    for chain in FINGER_CHAINS:
        for rank, (parent, child) in enumerate(itertools.pairwise((0, *chain))):
            (match,) = np.flatnonzero(
                (start == hand[parent]).all(-1) & (end == hand[child]).all(-1)
            )
            assert radius[match] == (10.0, 9.0, 8.0, 7.0)[rank], (parent, child)
    (forearm,) = np.flatnonzero(sleeve)
    arm = start[forearm] - hand[0]
    assert np.allclose(end[forearm], hand[0]) and np.linalg.norm(arm) == pytest.approx(200.0)
    # Towards the shoulder (250, 450, 50) mm, seen from the wrist (x, y, 400): right (+x) and
    # down (+y) in the image.
    shoulder = np.array([250.0, 450.0, 50.0]) - hand[0]
    assert arm @ shoulder > 0.5 * np.linalg.norm(arm) * np.linalg.norm(shoulder)
    assert arm[0] > 0 and arm[1] > 0


def _flat_look(light: np.ndarray):
    """An appearance whose box shows one colour, (0.8, 0.2, 0.1), untinted and untextured
    (label and box colours equal), ambient 0.5, lit from ``light``."""
    look = sample_appearance(np.random.default_rng(0), "box")
    colour = np.array([0.8, 0.2, 0.1])
    return dataclasses.replace(
        look, box=colour, label=colour, face_tint=np.ones((6, 3)), ambient=0.5,
        light=light / np.linalg.norm(light),
    )  # fmt: skip


def test_a_box_face_on_shows_its_rgb_colour_lambert_shaded():
    """The box is drawn in RGB order, each face shaded ``ambient + (1 - ambient) max(n . l,
    0)`` with n its outward normal and l the direction towards the light."""
    # The 60 x 60 mm z- face of the box centred 400 mm ahead, 325 mm deep, under focal 120 px
    # and centre 31.5 spans pixels 21 .. 42 (test_segmentation_of_a_box_face_on_by_hand); it
    # carries no mark. Its normal is (0, 0, -1), towards the camera.
    K = np.array([[120.0, 0, 31.5], [0, 120.0, 31.5], [0, 0, 1]])
    corners = box_corners(torch.tensor([60.0, 60.0, 150.0])).numpy() + np.array([0, 0, 400.0])
    # Light from above and behind the camera, l = (0, -0.6, -0.8): n . l = 0.8, shade
    # 0.5 + 0.5 * 0.8 = 0.9, colour (0.72, 0.18, 0.09). From behind the box, l = (0, 0, 1):
    # n . l = -1, the ambient 0.5 alone, (0.4, 0.1, 0.05).
    for light, expected in (((0.0, -0.6, -0.8), (0.72, 0.18, 0.09)), ((0, 0, 1), (0.4, 0.1, 0.05))):
        image, zbuf = np.zeros((64, 64, 3)), np.full((64, 64), np.inf)
        _draw_box(image, zbuf, K, corners, _flat_look(np.array(light, dtype=float)))
        np.testing.assert_allclose(image[21:43, 21:43], np.broadcast_to(expected, (22, 22, 3)))
        assert zbuf[31, 31] == pytest.approx(325.0)  # the face's depth: rays have z = 1


def test_the_marks_sit_on_their_documented_faces():
    """_mark_faces' docstring: +x a large patch of the label colour in its middle (the front
    label), +y a dark band across its middle, +z a dark cap (the whole face); the negative
    faces stay plain."""
    look = dataclasses.replace(
        sample_appearance(np.random.default_rng(0), "box"), label=np.array([0.9, 0.1, 0.1])
    )
    # In-face coordinates: the middle, and (0.5, 0.05), on the middle line but near an edge.
    coords = np.array([[0.5, 0.5], [0.5, 0.05]])
    grey, dark, label = [0.5] * 3, [0.225] * 3, [0.9, 0.1, 0.1]  # dark: 0.45 times the colour
    expected = {
        0: [grey, grey],  # -x
        1: [label, grey],  # +x: the label patch covers the middle only
        2: [grey, grey],  # -y
        3: [dark, grey],  # +y: the band crosses the middle
        4: [grey, grey],  # -z
        5: [dark, dark],  # +z: the cap darkens all of it
    }
    for face, colours in expected.items():
        got = _mark_faces(np.full((2, 3), 0.5), np.full(2, face), coords, look)
        np.testing.assert_allclose(got, colours, err_msg=f"face {face}")
