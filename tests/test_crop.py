"""Crops as affine maps: hand-computed maps, exact warps, ray invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from jaxtyping import TypeCheckError
from scripted_draws import ScriptedRng

from hopose import crop
from hopose.crop import (
    FrameWarp,
    apply_affine,
    crop_affine,
    edge_aligned_scale,
    frame_square,
    inside_frame,
    jittered_square,
    resize_affine,
    shrink_factor,
    shrink_views,
    square_around,
    warp_image,
)
from hopose.data.transforms import square_crop_box


def test_crop_affine_by_hand():
    # Centre (100, 50), side 40 onto 20 px: scale 20/40 = 0.5. The centre goes to (10, 10), the
    # square's top-left corner (80, 30) to (0, 0), its bottom-right (120, 70) to (20, 20).
    A = crop_affine(torch.tensor([[100.0, 50.0]]), torch.tensor([40.0]), 20)
    points = torch.tensor([[[100.0, 50.0], [80.0, 30.0], [120.0, 70.0]]])
    torch.testing.assert_close(
        apply_affine(A, points), torch.tensor([[[10.0, 10], [0, 0], [20, 20]]])
    )
    # Turned by 90 degrees: a point 10 px right of the centre goes 10 * 0.5 = 5 px above the
    # image centre, (10, 5), counter-clockwise on the y-down screen.
    A = crop_affine(
        torch.tensor([[100.0, 50.0]]), torch.tensor([40.0]), 20, torch.tensor([math.pi / 2])
    )
    torch.testing.assert_close(
        apply_affine(A, torch.tensor([[[110.0, 50.0]]])), torch.tensor([[[10.0, 5.0]]])
    )


def test_frame_square_of_frames_of_different_sizes_is_each_frames_own():
    # One square per (width, height): centred on (W/2, H/2), of the longer side. A 1920 x 1080
    # frame: (960, 540), 1920; a 480 x 640 one: (240, 320), 640; a 17 x 16 one: (8.5, 8), 17.
    like = torch.zeros(1, dtype=torch.float32)
    centre, side = frame_square([(1920, 1080), (480, 640), (17, 16)], like)
    torch.testing.assert_close(centre, torch.tensor([[960.0, 540.0], [240.0, 320.0], [8.5, 8.0]]))
    torch.testing.assert_close(side, torch.tensor([1920.0, 640.0, 17.0]))
    # One size is one square, as a sequence of that one size gives.
    for one in (frame_square((480, 640), like), frame_square([(480, 640)], like)):
        torch.testing.assert_close(one, (centre[1:2], side[1:2]))


def test_the_views_grid_is_half_a_network_pixel_off_centre_as_documented():
    # docs/conventions.md §6: the maps scale about the square's centre and the first pixel's
    # centre, not about pixel edges, and are kept so (changing them changes every render).
    # A 1920 x 1080 frame seen whole on S = 224 px: frame_square's square is centred on
    # (W/2, H/2) = (960, 540) with side 1920, so s = 224 / 1920 = 7/60 and q = s (p - c) + S/2.
    S, s = 224, 7 / 60
    centre, side = frame_square((1920, 1080), torch.zeros(1, dtype=torch.float64))
    torch.testing.assert_close(centre, torch.tensor([[960.0, 540.0]], dtype=torch.float64))
    A = crop_affine(centre, side, S)
    points = torch.tensor(
        [[[960.0, 540.0], [959.5, 539.5], [-0.5, -0.5], [1919.5, 1079.5]]], dtype=torch.float64
    )
    expected = [
        # The square's centre goes to (S/2, S/2) = (112, 112), not the image's centre (111.5,
        # 111.5); the frame's centre ((W - 1)/2, (H - 1)/2) to 112 - s/2 = 111.9417.
        [112.0, 112.0],
        [112 - s / 2, 112 - s / 2],
        # The frame's edges: x -0.5 goes to s (-0.5 - 960) + 112 = -s/2 = -0.0583, not -0.5;
        # W - 0.5 to S - s/2 = 223.9417, beyond the image's edge 223.5 by (1 - s)/2 = 0.4417.
        # y (letterboxed): -0.5 to s (-540.5) + 112 = 48.9417, 1079.5 to s 539.5 + 112.
        [-s / 2, 112 - 540.5 * s],
        [S - s / 2, 112 + 539.5 * s],
    ]
    torch.testing.assert_close(
        apply_affine(A, points), torch.tensor([expected], dtype=torch.float64)
    )
    # resize_affine is q = s p per axis: -0.5 goes to -s/2 with s = 224/1920 (x), 224/1080 (y).
    R = resize_affine((1920, 1080), S, torch.zeros((), dtype=torch.float64))
    torch.testing.assert_close(
        apply_affine(R[None], points[:, 2:3]),
        torch.tensor([[[-112 / 1920, -112 / 1080]]], dtype=torch.float64),
    )
    # The visible effect: a uniform frame's first column reads 9/16 of it. The frame is shrunk
    # by int(1 / s) = 8 first, shrunk pixel k centred on frame 8 k + 3.5; network column 0 reads
    # frame x = 0, shrunk x = -3.5 / 8 = -7/16, so 1 - 7/16 of shrunk pixel 0 and 7/16 of the
    # zeros beyond. Column 1 and the last column (centred on frame x 223 / s = 1911.4) read 1.
    view = warp_image(torch.ones(1, 3, 1080, 1920), A.float(), S)[0, 0, 100]
    torch.testing.assert_close(view[[0, 1, S - 1]], torch.tensor([9 / 16, 1.0, 1.0]))


def test_square_around_by_hand():
    # Points spanning x 10..30 and y 0..10: tight side 20, with margin 0.25 on each side
    # 20 * 1.5 = 30; centre (20, 5).
    centre, side = square_around(torch.tensor([[[10.0, 0.0], [30.0, 10.0], [15.0, 5.0]]]), 0.25)
    torch.testing.assert_close(centre, torch.tensor([[20.0, 5.0]]))
    torch.testing.assert_close(side, torch.tensor([30.0]))


def test_square_around_by_hand_and_as_the_training_crops_place_it():
    """Self-crops and the training crops share one square (square_crop_box is built on it)."""
    nan = float("nan")
    points = torch.tensor(
        [
            [[10.0, 20.0], [40.0, 30.0], [nan, nan]],  # a missing keypoint is left out
            [[7.0, 7.0], [7.0, 7.0], [7.0, nan]],  # one point: the 1 px floor
        ],
        dtype=torch.float64,
    )
    centre, side = square_around(points, 0.25)
    # Frame 0: x spans 10..40, y 20..30, so the tight side is 30 and the centre (25, 25);
    # 0.25 × 30 on each side gives 30 × 1.5 = 45. Frame 1: side max(0, 1) × 1.5 = 1.5.
    torch.testing.assert_close(
        centre, torch.tensor([[25.0, 25.0], [7.0, 7.0]], dtype=torch.float64)
    )
    torch.testing.assert_close(side, torch.tensor([45.0, 1.5], dtype=torch.float64))
    # The training crop's (x0, y0, side) of frame 0: 25 - 45 / 2 = 2.5.
    assert square_crop_box(points[0].numpy(), 0.25) == (2.5, 2.5, 45.0)


def test_affine_intrinsics_keep_every_ray():
    # (A K)^-1 [A p; 1] = K^-1 [p; 1] for any affine A: a crop changes no viewing ray.
    torch.manual_seed(0)
    K = torch.tensor([[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]]).double()
    A = crop_affine(torch.tensor([[900.0, 400.0]]), torch.tensor([350.0]), 64, torch.tensor([0.7]))
    A = A.double()[0]
    p = torch.rand(10, 2, dtype=torch.float64) * 1000
    ones = torch.ones(10, 1, dtype=torch.float64)
    rays = torch.cat([p, ones], 1) @ torch.linalg.inv(K).T
    q = apply_affine(A[None], p[None])[0]
    rays_crop = torch.cat([q, ones], 1) @ torch.linalg.inv(A @ K).T
    torch.testing.assert_close(rays_crop, rays)


def test_warp_at_unit_scale_copies_the_pixels():
    # Centre (8, 6), side 8 onto 8 px: output pixel (row j, col i) has its centre at
    # (i + 0.5, j + 0.5) - 4 + (8, 6), the centre of frame pixel (row j + 2, col i + 4).
    torch.manual_seed(0)
    image = torch.rand(1, 3, 16, 16)
    out = warp_image(image, crop_affine(torch.tensor([[8.0, 6.0]]), torch.tensor([8.0]), 8), 8)
    torch.testing.assert_close(out, image[..., 2:10, 4:12])


def test_warp_of_a_quarter_turn_is_rot90_and_resize_shows_the_frame():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 8, 8)
    # Pixel centres at 0 ... 7: the image's centre is (3.5, 3.5). crop_affine sends its centre
    # c to S / 2 = (4, 4); turned a quarter about c = (3, 4), (3.5, 3.5) goes to itself.
    A = crop_affine(torch.tensor([[3.0, 4.0]]), torch.tensor([8.0]), 8, torch.tensor([math.pi / 2]))
    torch.testing.assert_close(warp_image(image, A, 8), torch.rot90(image, 1, dims=(2, 3)))
    # The whole-frame map at unit scale is the identity.
    whole = resize_affine((8, 8), 8, image)[None]
    torch.testing.assert_close(warp_image(image, whole, 8), image)


def test_a_uint8_frame_is_read_in_zero_to_one():
    """warp_image of uint8 frames gives floats in [0, 1]: pixel value / 255."""
    # At unit scale (the crop of test_warp_at_unit_scale_copies_the_pixels) the view copies
    # frame pixels (row j + 2, col i + 4): 255 -> 1.0, 51 -> 51 / 255 = 0.2, 0 -> 0.
    image = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    image[..., 2:10, 4:8], image[..., 2:10, 8:12] = 255, 51
    out = warp_image(image, crop_affine(torch.tensor([[8.0, 6.0]]), torch.tensor([8.0]), 8), 8)
    expected = torch.zeros(1, 3, 8, 8)
    expected[..., :4], expected[..., 4:] = 1.0, 0.2
    torch.testing.assert_close(out, expected)


def test_a_batch_of_views_is_shrunk_for_its_closest_view():
    """The frames of one warp are shrunk for the view with the most network pixels per frame
    pixel, so a close view is not blurred by a far one in the same batch."""
    # Frame 0 seen at unit scale (centre (8, 6), side 8 onto 8 px: network pixel (j, i) is
    # frame pixel (j + 2, i + 4)); frame 1 seen whole from afar (side 32 onto 8: 4 frame pixels
    # per network pixel, which alone would shrink the frames by 4). The batch is shrunk by
    # int(1 / max(1, 1/4)) = 1, and frame 0's view is still an exact copy of its pixels.
    torch.manual_seed(0)
    image = torch.rand(2, 3, 16, 16)
    A = crop_affine(torch.tensor([[8.0, 6.0], [8.0, 8.0]]), torch.tensor([8.0, 32.0]), 8)
    out = warp_image(image, A, 8)
    torch.testing.assert_close(out[0], image[0, :, 2:10, 4:12])


@pytest.mark.parametrize(("height", "width"), [(8, 12), (7, 11)], ids=["whole", "partial"])
def test_a_view_at_half_scale_shows_the_frames_two_by_two_block_means(height, width):
    # Half scale, outer pixel edges kept: network pixel q sits at frame position 2 q + 0.5, the
    # centre of block 2q ... 2q + 1, so it must show that block's mean (an antialiased bilinear
    # resize weights four frame pixels a side 1/8, 3/8, 3/8, 1/8 instead). A frame of odd sides
    # ends in half blocks, whose missing pixels count as black, as beyond the frame elsewhere.
    torch.manual_seed(0)
    image = torch.rand(1, 3, height, width)
    A = edge_aligned_scale(torch.tensor([0.5, 0.5], dtype=torch.float64))[None]
    padded = torch.zeros(1, 3, 8, 12)
    padded[..., :height, :width] = image
    naive = torch.stack(
        [
            torch.stack(
                [padded[0, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean((1, 2)) for j in range(4)],
                -1,
            )
            for i in range(4)
        ],
        -2,
    )  # (3, 4, 4): the means of the top-left 8 x 8 frame pixels' blocks
    torch.testing.assert_close(warp_image(image, A, 4)[0], naive)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_half_precision_frame_is_sampled_as_its_float32_copy(dtype):
    """A float16 or bfloat16 frame's view is the view of the same pixels in float32, rounded to
    the frame's dtype once: sampled with a half grid, the view of this 320 x 240 frame read
    beyond it on the CPU (NaN and values of 6e4 or 3e38 among pixels in [0, 1])."""
    torch.manual_seed(0)
    frame = torch.rand(1, 3, 240, 320).to(dtype)
    # A square of 120 px around (192, 132) enlarged onto 224 px: no shrink, bilinear reads only.
    A = crop_affine(torch.tensor([[192.0, 132.0]]), torch.tensor([120.0]), 224)
    expected = warp_image(frame.float(), A, 224).to(dtype)
    torch.testing.assert_close(warp_image(frame, A, 224), expected, rtol=0, atol=0)


def test_no_frames_give_no_views():
    """Zero frames and maps (an empty batch) give zero views, shrunk by 1, where the closest
    view's factor took the max of nothing and raised."""
    A = crop_affine(torch.zeros(0, 2), torch.zeros(0), 8)
    assert shrink_factor(A) == 1
    views = warp_image(torch.zeros(0, 3, 1080, 1920, dtype=torch.uint8), A, 8)
    torch.testing.assert_close(views, torch.zeros(0, 3, 8, 8))


def test_no_maps_give_no_views_of_the_frames():
    """V = 0 maps of 2 frames give (0, 2, 3, S, S) views of the views' dtype (float32 for
    uint8 frames), where torch.stack of no view raised."""
    views = FrameWarp(torch.zeros(2, 3, 60, 90, dtype=torch.uint8), 8).views(
        torch.zeros(0, 2, 3, 3)
    )
    torch.testing.assert_close(views, torch.zeros(0, 2, 3, 8, 8))


def test_a_frames_views_share_each_shrink_and_equal_one_warp_each(monkeypatch):
    # Views of one 60 x 90 frame at shrink factors 3 (a 30-px square onto 8 px), 1 (8 px onto
    # 8) and 3 again, turned: each equals warp_image's own view, which shrinks the frame anew,
    # and the frame is shrunk once, for the first view (the third reuses that copy).
    torch.manual_seed(0)
    frame = (torch.rand(2, 3, 60, 90) * 255).to(torch.uint8)
    centre = torch.tensor([[40.0, 30.0], [45.0, 28.0]])
    maps = [
        crop_affine(centre, torch.tensor([30.0, 28.0]), 8),
        crop_affine(centre, torch.tensor([8.0, 8.0]), 8),
        crop_affine(centre, torch.tensor([30.0, 28.0]), 8, torch.tensor([0.3, -0.2])),
    ]
    expected = [warp_image(frame, A, 8) for A in maps]
    shrinks = []
    block_means = crop._block_means
    monkeypatch.setattr(crop, "_block_means", lambda x, r: shrinks.append(r) or block_means(x, r))
    views = FrameWarp(frame, 8)
    for A, view in zip(maps, expected, strict=True):
        torch.testing.assert_close(views(A), view, rtol=0, atol=0)
    assert shrinks == [3]


def _blob(width: int, height: int, centre: tuple[float, float], sigma: float) -> torch.Tensor:
    """(1, 3, H, W) float64 Gaussian spot centred at ``centre``, pixel centres at integers."""
    y, x = torch.meshgrid(
        torch.arange(height, dtype=torch.float64),
        torch.arange(width, dtype=torch.float64),
        indexing="ij",
    )
    spot = torch.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))
    return spot.expand(1, 3, height, width).clone()


def _spot_centre(image: torch.Tensor) -> torch.Tensor:
    """(x, y) intensity centroid of (1, 3, S, S), in pixel indices."""
    weights = image[0, 0].clamp_min(0)
    y, x = torch.meshgrid(
        *(torch.arange(n, dtype=weights.dtype) for n in weights.shape), indexing="ij"
    )
    return torch.stack([(weights * x).sum(), (weights * y).sum()]) / weights.sum()


@pytest.mark.parametrize(
    ("side", "angle", "size"),
    [(600.0, 0.0, 64), (600.0, 0.4, 64), (1920.0, 0.0, 64), (300.0, -0.5, 224), (64.0, 1.2, 64)],
)
def test_warp_shows_a_frame_point_where_the_views_K_projects_it(side, angle, size):
    # The view's K is A @ K: a frame point p (pixel centres at integer coordinates, as the
    # synthetic renderer draws with that K) must show at network pixel A p. Sampling at the
    # network pixels' corners-convention centres (q + 0.5) put it 0.5 (1 - s) px up-left of
    # there (0.46 px in a 64-px crop of 600 frame px), off the renders the model trains on.
    p = (890.3, 510.7)
    frame = _blob(1920, 1080, p, sigma=3 * side / size)
    A = crop_affine(
        torch.tensor([[880.0, 520.0]], dtype=torch.float64),
        torch.tensor([side], dtype=torch.float64),
        size,
        torch.tensor([angle], dtype=torch.float64),
    )
    expected = apply_affine(A, torch.tensor([[p]], dtype=torch.float64))[0, 0]
    torch.testing.assert_close(
        _spot_centre(warp_image(frame, A, size)), expected, atol=0.05, rtol=0
    )


def test_warp_of_a_frame_thinner_than_its_shrink_keeps_its_row():
    # A 960 x 1 strip seen whole on 16 px: 60 frame pixels per network pixel, so the frame is
    # shrunk by 60 first, which left 1 // 60 = 0 rows (a traceback in interpolate). The strip
    # spans the view's whole width, so every inner column of the view shows the same constant
    # (the outer ones fall partly beyond the frame's edge).
    strip = torch.ones(1, 3, 1, 960)
    A = crop_affine(*frame_square((960, 1), strip), 16)
    out = warp_image(strip, A, 16)
    assert out.isfinite().all() and out.max() <= 1
    columns = out[0, 0, :, 1:-1].sum(dim=0)  # (14,)
    assert columns.min() > 0
    torch.testing.assert_close(columns, columns.mean().expand(14))


def test_jittered_squares_scale_shift_and_turn_within_their_ranges():
    """400 draws around a 300-px square at (900, 500) of a 1920x1080 frame: each map is
    (64 / side') R(angle) about centre'; reading side', centre' and angle back from it, the
    crops lie within x0.8-1.25, +-10% of side' and +-30 deg, and about 15% show the whole frame
    (side' = 1920 x 0.8-1.25, turned +-10 deg)."""
    centre = torch.tensor([[900.0, 500.0]], dtype=torch.float64)
    side = torch.tensor([300.0], dtype=torch.float64)
    whole = 0
    for seed in range(400):
        A = jittered_square(centre, side, (1920, 1080), 64, np.random.default_rng(seed))[0]
        scale = math.hypot(A[0, 0], A[0, 1])
        drawn_side = 64 / scale
        angle = math.degrees(math.atan2(A[0, 1], A[0, 0]))
        # The frame point that lands on (S/2, S/2) = (32, 32) is the drawn centre.
        drawn_centre = torch.linalg.solve(A, torch.tensor([32.0, 32.0, 1.0], dtype=A.dtype))[:2]
        if drawn_side > 1920 * 0.8 - 1e-6:
            whole += 1
            base_side, base_centre, turn = 1920.0, torch.tensor([960.0, 540.0]), 10.0
        else:
            base_side, base_centre, turn = 300.0, centre[0], 30.0
        assert 0.8 - 1e-9 <= drawn_side / base_side <= 1.25 + 1e-9
        offset = (drawn_centre - base_centre.to(A.dtype)).abs() / drawn_side
        assert (offset <= 0.1 + 1e-9).all()
        assert abs(angle) <= turn + 1e-9
    assert 0.10 <= whole / 400 <= 0.20


def test_shrink_views_by_hand():
    # 64 px shown at 40: s = 40 / 64 = 0.625, and a pixel centre u goes to s u + (s - 1) / 2 =
    # 0.625 u - 0.1875 (the outer pixel edges -0.5 and 63.5 go to -0.5 and 39.5). The principal
    # point at the image's centre, 31.5, goes to 19.5, the small image's centre; f 100 -> 62.5.
    K = torch.tensor([[[100.0, 0.0, 31.5], [0.0, 100.0, 31.5], [0.0, 0.0, 1.0]]])
    batch = {
        "image": torch.zeros(1, 3, 64, 64, dtype=torch.uint8),
        "K": K,
        "hand_2d": torch.tensor([[[-0.5, 63.5]] * 21]),
        "obj_2d": torch.tensor([[[31.5, 0.0]] * 8]),
        "segmentation": torch.ones(1, 64, 64, dtype=torch.long),
    }
    out = shrink_views(batch, 40)
    assert out["image"].shape == (1, 3, 40, 40) and out["image"].dtype == torch.uint8
    expected_K = torch.tensor([[[62.5, 0.0, 19.5], [0.0, 62.5, 19.5], [0.0, 0.0, 1.0]]])
    torch.testing.assert_close(out["K"], expected_K)
    torch.testing.assert_close(out["hand_2d"], torch.tensor([[[-0.5, 39.5]] * 21]))
    torch.testing.assert_close(out["obj_2d"], torch.tensor([[[19.5, -0.1875]] * 8]))
    assert out["segmentation"] is batch["segmentation"]  # its loss pools it to any cells


def test_shrink_views_keeps_a_float_images_dtype():
    # Float64 and bfloat16 views came back float32 though the docstring promised the input's
    # dtype. Float64 is resampled in float64 (the float32 picture to float32 precision);
    # bfloat16 in float32, rounded back: exactly the float32 picture of the same values, rounded.
    torch.manual_seed(0)
    image = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    batch = {
        "K": torch.eye(3, dtype=torch.float64).expand(2, 3, 3),
        "hand_2d": torch.zeros(2, 21, 2, dtype=torch.float64),
        "obj_2d": torch.zeros(2, 8, 2, dtype=torch.float64),
    }
    for dtype, tolerance in ((torch.float64, {}), (torch.bfloat16, {"rtol": 0, "atol": 0})):
        shown = image.to(dtype)
        out = shrink_views({**batch, "image": shown}, 8)["image"]
        reference = shrink_views({**batch, "image": shown.float()}, 8)["image"]
        assert out.shape == (2, 3, 8, 8) and out.dtype == dtype
        torch.testing.assert_close(out, reference.to(dtype), **tolerance)


def test_shrink_views_moves_the_picture_with_its_keypoints_and_keeps_every_ray():
    # A bright 4 x 4 block at rows 4-7, columns 8-11 of a 16-px image: its centre is pixel
    # (x 9.5, y 5.5). At 8 px (u -> u / 2 - 1 / 4) that is (4.5, 2.5), and the antialiased
    # resize spreads the block symmetrically about it, so the picture's intensity centroid is
    # where the mapped keypoint is.
    image = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    image[..., 4:8, 8:12] = 255
    K = torch.tensor([[[20.0, 0.0, 7.5], [0.0, 20.0, 7.5], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    point = torch.tensor([[[9.5, 5.5]]], dtype=torch.float64)
    batch = {"image": image, "K": K, "hand_2d": point, "obj_2d": point[:, :0]}
    out = shrink_views(batch, 8)
    torch.testing.assert_close(out["hand_2d"], torch.tensor([[[4.5, 2.5]]], dtype=torch.float64))
    weight = out["image"][0, 0].double()
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    centroid = [
        float((weight * cols).sum() / weight.sum()),
        float((weight * rows).sum() / weight.sum()),
    ]
    assert centroid == pytest.approx([4.5, 2.5], abs=1e-9)
    # The keypoint's ray is the same through either view.
    ray = torch.linalg.solve(K[0], torch.tensor([9.5, 5.5, 1.0], dtype=torch.float64))
    small_ray = torch.linalg.solve(out["K"][0], torch.tensor([4.5, 2.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(small_ray, ray)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("width", "size", "factor"),
    # Whole frames seen in the square of their longer side: width / size frame pixels per
    # network pixel, an integer in every case but the last (1920 / 65 = 29.54).
    [(1920, 64, 30), (1920, 32, 60), (1920, 128, 15), (3840, 256, 15), (1920, 65, 29)],
)
def test_a_whole_frame_shrinks_by_its_whole_pixels_per_network_pixel(dtype, width, size, factor):
    """In float32, 1 / sqrt|det A| of the 1920 -> 64 map is 29.999998: rounding down gave a
    shrink of 29, not 30 (block means over 29 x 29 pixels, then resampled by 29/30)."""
    A = crop_affine(*frame_square((width, width * 9 // 16), torch.zeros(1, dtype=dtype)), size)
    assert shrink_factor(A) == factor


def test_a_view_larger_than_its_frame_is_not_shrunk():
    """Fewer than one frame pixel per network pixel (an enlarging crop): factor 1."""
    A = crop_affine(torch.tensor([[10.0, 10.0]]), torch.tensor([32.0]), 64)  # 0.5 px each
    assert shrink_factor(A) == 1


def test_inside_frame_by_hand_on_tensors_and_arrays():
    """A 4 x 3 image's pixel centres are u = 0..3, v = 0..2, so its outer edges are -0.5 and
    3.5 (2.5): the first edge is in, the last out, and a NaN coordinate is outside."""
    uv = [
        [-0.5, -0.5],  # the top-left corner of pixel (0, 0): in
        [-0.3, 1.0],  # left of pixel 0's centre, on the pixel: in
        [3.49, 2.49],  # just before the far edges: in
        [-0.51, 1.0],  # just before the first edge: out
        [3.5, 1.0],  # on the right edge (3 + 0.5): out
        [1.0, 2.5],  # on the bottom edge (2 + 0.5): out
        [float("nan"), 1.0],
    ]
    expected = [True, True, True, False, False, False, False]
    assert inside_frame(torch.tensor(uv), (4, 3)).tolist() == expected
    assert inside_frame(np.array(uv), (4, 3)).tolist() == expected


def test_shape_annotations_hold_at_run_time():
    """The jaxtyping annotations, checked in the tests (tests/shape_checking.py): one map
    broadcast over a batch of point sets passes; crop_affine's centres and sides must be as
    many, where one centre broadcast against two sides made two squares without a word."""
    A = crop_affine(torch.tensor([[100.0, 50.0]]), torch.tensor([40.0]), 20)  # (1, 3, 3)
    points = torch.tensor([[[100.0, 50.0]], [[80.0, 30.0]]])  # (2, 1, 2)
    torch.testing.assert_close(
        apply_affine(A, points), torch.tensor([[[10.0, 10.0]], [[0.0, 0.0]]])
    )
    with pytest.raises(TypeCheckError):
        crop_affine(torch.tensor([[100.0, 50.0]]), torch.tensor([40.0, 80.0]), 20)
    with pytest.raises(TypeCheckError):
        warp_image(torch.zeros(1, 16, 16, 3), A, 8)  # channels last


def _drawn(A):
    """(side, centre, angle in degrees) a jittered map shows, read back from it (S = 64)."""
    side = 64 / math.hypot(A[0, 0], A[0, 1])
    angle = math.degrees(math.atan2(A[0, 1], A[0, 0]))
    centre = torch.linalg.solve(A, torch.tensor([32.0, 32.0, 1.0], dtype=A.dtype))[:2]
    return side, centre, angle


def test_jittered_square_draws_map_to_their_scale_shift_and_turn_by_hand():
    """Draws at fixed fractions of their ranges, in jittered_square's order (whole frame?,
    scale, shift x and y, turn), around a 300-px square at (900, 500):
    - 0.5, then all at the top: not the whole frame (0.5 >= 0.15); scale exp(log 1.25) = 1.25,
      side 375; shift +0.1 x 375 = +37.5 px on both axes, centre (937.5, 537.5); turn +30 deg.
    - all at the middle: scale exp((log 0.8 + log 1.25) / 2) = exp(0) = 1 (uniform in log: a
      uniform scale would be 1.025), side 300; no shift; no turn.
    - all at the bottom: scale 0.8, side 240; shift -24 px, centre (876, 476); turn -30 deg."""
    centre = torch.tensor([[900.0, 500.0]], dtype=torch.float64)
    side = torch.tensor([300.0], dtype=torch.float64)
    cases = [
        (1.0, 375.0, (937.5, 537.5), 30.0),
        (0.5, 300.0, (900.0, 500.0), 0.0),
        (0.0, 240.0, (876.0, 476.0), -30.0),
    ]
    for fraction, want_side, want_centre, want_angle in cases:
        rng = ScriptedRng([0.5] + [fraction] * 4)
        A = jittered_square(centre, side, (1920, 1080), 64, rng)[0]
        drawn_side, drawn_centre, angle = _drawn(A)
        assert math.isclose(drawn_side, want_side, rel_tol=1e-9), fraction
        torch.testing.assert_close(drawn_centre, torch.tensor(want_centre, dtype=A.dtype))
        assert math.isclose(angle, want_angle, abs_tol=1e-9), fraction


def test_jittered_whole_frame_is_the_frames_square_turned_at_most_10_degrees():
    """A first draw below 0.15 shows the whole 1920x1080 frame: the square of its longer side,
    1920, about (960, 540); the other draws at the top: side 1920 x 1.25 = 2400, shift
    +240 px, centre (1200, 780), turn +10 deg."""
    centre = torch.tensor([[900.0, 500.0]], dtype=torch.float64)
    side = torch.tensor([300.0], dtype=torch.float64)
    A = jittered_square(centre, side, (1920, 1080), 64, ScriptedRng([0.0] + [1.0] * 4))[0]
    drawn_side, drawn_centre, angle = _drawn(A)
    assert math.isclose(drawn_side, 2400.0, rel_tol=1e-9)
    torch.testing.assert_close(drawn_centre, torch.tensor([1200.0, 780.0], dtype=A.dtype))
    assert math.isclose(angle, 10.0, abs_tol=1e-9)


def _views_batch(image):
    return {
        "image": image,
        "K": torch.eye(3).expand(len(image), 3, 3),
        "hand_2d": torch.zeros(len(image), 21, 2),
        "obj_2d": torch.zeros(len(image), 8, 2),
    }


def test_shrink_views_rounds_a_uint8_image_to_the_nearest_level():
    """2 px shown at 1: the antialiased shrink weighs the four pixels 0, 1, 1, 1 equally, mean
    0.75, which rounds to 1 (truncation, a cast alone, would give 0: every uint8 view darker by
    half a level on average)."""
    image = torch.tensor([[0, 1], [1, 1]], dtype=torch.uint8).expand(1, 3, 2, 2)
    out = shrink_views(_views_batch(image), 1)["image"]
    assert out.dtype == torch.uint8
    assert out.flatten().tolist() == [1, 1, 1]


def test_shrink_views_antialiases_detail_finer_than_its_new_pixels():
    """64 px shown at 16, one bright column in every 4 (u = 0, 4, 8, ...): each new pixel
    averages its footprint, the triangle over input columns 4i - 2 ... 4i + 5 (weights
    1 - |d| / 4 for d = -3.5 ... 3.5, sum 4), where the bright columns 4i (d = -1.5, weight
    0.625) and 4i + 4 (d = 2.5, 0.375) give (0.625 + 0.375) / 4 = 0.25, the share of bright
    columns. A shrink without antialiasing samples between columns 4i + 1 and 4i + 2: all 0."""
    image = torch.zeros(1, 3, 64, 64, dtype=torch.float64)
    image[..., ::4] = 1.0
    out = shrink_views(_views_batch(image), 16)["image"]
    inner = out[..., 1:-1]  # the first and last columns lose the weights beyond the image
    torch.testing.assert_close(inner, torch.full_like(inner, 0.25))
