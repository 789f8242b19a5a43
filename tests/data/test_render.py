"""The synthetic grasps' renderer (hopose.data.render): capsules, boxes, marks, segmentation."""

from __future__ import annotations

import dataclasses
import itertools
from unittest.mock import patch

import numpy as np
import pytest
import torch

from hopose.data.fpha import FPHA_COLOR_K
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
from hopose.data.synthetic import SyntheticHandObject
from hopose.geometry import box_corners, project_points
from hopose.skeleton import BOX_FACES, CORNER_SIGNS, FINGER_CHAINS, SEGMENTATION_CLASSES


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
