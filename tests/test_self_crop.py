"""Self-cropping at inference: crops placed by the model's own 2D, test-time views."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from hopose.config import load_config
from hopose.configs import config_path
from hopose.crop import FrameWarp, apply_affine, crop_affine, square_around
from hopose.geometry import project_points
from hopose.models import ContextLifter, HoposeNet, ImageEncoder
from hopose.models.encoder import random_backbone_expected
from hopose.self_crop import (
    SINGLE_VIEW,
    CropViews,
    SelfCropping,
    self_crop,
    self_crop_photos,
)


def _per_image(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The (B, 29, 3) points of B frames for a batch of V × B views, which come view by view
    (:func:`hopose.self_crop.self_crop` reads all views of a pass in one batch)."""
    return points.repeat(len(K) // len(points), 1, 1)


class _Blank:
    """A ``view`` of :func:`hopose.self_crop.self_crop` that shows nothing (zeros) and records
    the maps (V, B, 3, 3) of each pass it is asked for, ``image_size`` views around."""

    def __init__(self, image_size: int = 64) -> None:
        self.image_size = image_size
        self.maps: list[torch.Tensor] = []

    def __call__(self, maps: torch.Tensor) -> torch.Tensor:
        self.maps.append(maps)
        return torch.zeros(*maps.shape[:2], 3, self.image_size, self.image_size)


class _Oracle(torch.nn.Module):
    """A perfect network: the projection of fixed 3D points with the image's K."""

    def __init__(self, points: torch.Tensor) -> None:
        super().__init__()
        self.points = points
        self.seen: list[torch.Tensor] = []

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        self.seen.append(K)
        points = _per_image(self.points, K)
        kp2d = project_points(points, K)
        return {"kp2d_init": kp2d, "kp2d": kp2d, "kp3d": points}


@pytest.mark.parametrize("margin", [0.2, 0.45])
def test_self_crop_maps_keypoints_back_to_the_frame(margin):
    torch.manual_seed(0)
    points = (
        torch.rand(2, 29, 3, dtype=torch.float64) * 80 + torch.tensor([0.0, 0.0, 400.0]).double()
    )
    K = (
        torch.tensor([[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]])
        .double()
        .expand(2, 3, 3)
    )
    oracle, view = _Oracle(points), _Blank()
    out = self_crop(oracle, view, K, (1920, 1080), image_size=64, cropping=SelfCropping(2, margin))
    torch.testing.assert_close(out["kp2d"], project_points(points, K))
    assert len(oracle.seen) == 3  # the whole frame, then two crops
    # The last crop is the square around the points with the margin m: the tight square spans
    # 1 of the crop's 1 + 2m sides, so along its longer axis the points reach from 64 m / (1 + 2m)
    # to 64 (1 + m) / (1 + 2m) (margin 0.45: 15.1 to 48.9 px), and no point lies beyond.
    inside = apply_affine(view.maps[-1][0], out["kp2d"])  # (2, 29, 2) crop pixels
    low, high = 64 * margin / (1 + 2 * margin), 64 * (1 + margin) / (1 + 2 * margin)
    assert (inside > low - 1e-6).all() and (inside < high + 1e-6).all()
    longer = (inside.amax(1) - inside.amin(1)).argmax(-1)  # (2,) the longer axis of each frame
    reach = torch.stack([inside[i, :, a] for i, a in enumerate(longer)])  # (2, 29)
    torch.testing.assert_close(reach.amin(1), reach.new_full((2,), low))
    torch.testing.assert_close(reach.amax(1), reach.new_full((2,), high))


def test_crop_views_by_hand():
    # The square of centre (100, 50) and side 40 on a 64-px network image: scale 64 / 40 = 1.6.
    centre, side = torch.tensor([[100.0, 50.0]]).double(), torch.tensor([40.0]).double()
    counts = [len(CropViews(t, s)) for t, s in ((0, 0), (15, 0), (0, 0.1), (15, 0.1))]
    assert counts == [1, 3, 5, 7]
    maps = CropViews(15.0, 0.1).affines(centre, side, 64)  # (7, 1, 3, 3)
    assert maps.shape[:2] == (7, 1)
    torch.testing.assert_close(maps[0], crop_affine(centre, side, 64))
    # Views 1 and 2 turn the square by -15° and +15° (counter-clockwise on the y-down screen)
    # about its centre: the frame point 20 px right of it goes to 32 + 1.6 × 20 (cos 15°,
    # ±sin 15°) = (62.909, 40.282) and (62.909, 23.718).
    c, s = 32 * math.cos(math.radians(15)), 32 * math.sin(math.radians(15))
    assert abs(32 + c - 62.909) < 1e-3 and abs(32 - s - 23.718) < 1e-3
    right = torch.tensor([[[120.0, 50.0]]]).double()
    expected = torch.tensor([[32 + c, 32 + s], [32 + c, 32 - s]]).double()
    torch.testing.assert_close(apply_affine(maps[1:3, 0], right.expand(2, 1, 2))[:, 0], expected)
    # Views 3-6 shift it by ±0.1 × 40 = ±4 px along x, then y, unturned: their centres, which
    # go to the image's centre (32, 32), are (104, 50), (96, 50), (100, 54), (100, 46).
    centres = apply_affine(torch.linalg.inv(maps[3:, 0]), torch.full((4, 1, 2), 32.0).double())
    expected = torch.tensor([[104.0, 50.0], [96.0, 50.0], [100.0, 54.0], [100.0, 46.0]]).double()
    torch.testing.assert_close(centres[:, 0], expected)
    torch.testing.assert_close(maps[3:, 0, :2, :2], maps[:1, 0, :2, :2].expand(4, 2, 2))


def test_self_cropping_read_from_the_training_config():
    # The demo's end-to-end config: 2 crops after the whole frame at margin 0.3, the last seen
    # through 1 + 2 turned + 4 shifted = 7 views; a whole-frame model self-crops nothing.
    data = load_config(config_path("synthetic", "end2end")).data
    assert SelfCropping.of(data) == SelfCropping(2, 0.3, CropViews(15.0, 0.08))
    assert len(SelfCropping.of(data).views) == 7
    assert SelfCropping.of(data, margin=0.6, single_view=True) == SelfCropping(2, 0.6, SINGLE_VIEW)
    for nothing in (
        SelfCropping.of(data, enabled=False),
        SelfCropping.of(whole := dataclasses.replace(data, crop="resize", options={})),
    ):
        assert (nothing.passes, nothing.views) == (0, SINGLE_VIEW)
    for kwargs, name in (
        ({"margin": 0.6}, "self_crop_margin"),
        ({"single_view": True}, "single_view"),
    ):
        with pytest.raises(ValueError, match=f"^{name}: nothing is self-cropped"):
            SelfCropping.of(whole, **kwargs)


def test_single_view_is_refused_where_the_last_crop_has_no_other_views():
    """A model trained on squares without test-time views already predicts from the one square:
    asked for it, predict and eval gave byte-identical outputs without a word."""
    data = load_config(config_path("synthetic", "end2end")).data
    alone = dataclasses.replace(data, self_crop_turn=0.0, self_crop_shift=0.0)
    with pytest.raises(ValueError) as error:
        SelfCropping.of(alone, single_view=True)
    assert str(error.value) == (
        "single_view: this model already predicts from the one square (its data.self_crop_turn "
        "and data.self_crop_shift are 0: no test-time views)"
    )
    # One of the two is enough for views to leave out.
    shifted = dataclasses.replace(alone, self_crop_shift=0.08)
    assert SelfCropping.of(shifted, single_view=True).views == SINGLE_VIEW
    assert len(SelfCropping.of(shifted).views) == 5


class _Biased(torch.nn.Module):
    """A network off by one pixel along its own image's x axis, whose 3D is the point 100 mm
    deep on the ray through its image's centre: both depend on the view it is shown."""

    def __init__(self, points: torch.Tensor) -> None:
        super().__init__()
        self.points = points
        self.batches: list[int] = []

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        self.batches.append(len(image))
        kp2d = project_points(_per_image(self.points, K), K) + K.new_tensor([1.0, 0.0])
        ray = torch.linalg.solve(K, K.new_tensor([32.0, 32.0, 1.0]).expand(len(K), 3))  # z = 1
        kp3d = (100 * ray)[:, None].expand(-1, 29, -1)
        return {"kp2d_init": kp2d, "kp2d": kp2d, "kp3d": kp3d}


def test_self_crop_averages_the_views_of_its_last_crop():
    torch.manual_seed(0)
    points = torch.rand(2, 29, 3, dtype=torch.float64) * 80 + torch.tensor([0.0, 0.0, 400.0])
    K = torch.tensor([[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]]).double()
    K = K.expand(2, 3, 3)
    views, turn = CropViews(20.0, 0.1), math.radians(20)
    model, blank = _Biased(points), _Blank()
    out = self_crop(
        model, blank, K, (1920, 1080), image_size=64, cropping=SelfCropping(2, views=views)
    )
    square = blank.maps[-1][0]  # (2, 3, 3) the last crop's first view: the square itself
    # The whole frame, the first crop, the last crop's 7 views in one batch, for 2 frames.
    assert model.batches == [2, 2, 7 * 2]
    # The 1-px bias in a view turned by a (map s R(a)) is s⁻¹ R(a)ᵀ (1, 0) = (cos a, sin a) / s
    # frame px: over the 5 unturned views and the turns ±a the sines cancel, (5 + 2 cos a) / 7
    # / s along x, where s = 64 / side is the last square's scale, read from its first view.
    scale = square[:, :2, :2].det().sqrt()  # (2,)
    bias = (5 + 2 * math.cos(turn)) / 7 / scale
    torch.testing.assert_close(
        out["kp2d"] - project_points(points, K),
        torch.stack([bias, torch.zeros_like(bias)], -1)[:, None].expand(2, 29, 2),
    )
    # Each view's 3D is 100 z on the ray through its centre; the centres are the square's
    # centre c (the square and its turns) and c ± 0.1 side along x and y, symmetric, and the
    # depth is fixed, so the mean is the point on c's ray, where no shifted view is.
    c = apply_affine(torch.linalg.inv(square), torch.full((2, 1, 2), 32.0).double())
    on_ray = 100 * torch.linalg.solve(K, torch.cat([c[:, 0], torch.ones(2, 1).double()], -1))
    torch.testing.assert_close(out["kp3d"], on_ray[:, None].expand(2, 29, 3))
    single = self_crop(model, blank, K, (1920, 1080), image_size=64, cropping=SelfCropping(2))
    assert model.batches[3:] == [2, 2, 2]
    torch.testing.assert_close(blank.maps[-1], square[None])  # the same square, one view
    torch.testing.assert_close(
        single["kp2d"] - project_points(points, K),
        torch.stack([1 / scale, torch.zeros_like(bias)], -1)[:, None].expand(2, 29, 2),
    )


def test_self_crop_of_a_float32_network_reads_a_float64_K():
    # A real float32 network (its lifter reads each view's K) self-cropping frames whose K is
    # float64: the maps and every view's K are float64, and the network's 2D goes back to the
    # frame through float64 maps. Its answer is the one with the float32 K, to float32
    # precision. Before, the lifter stopped on the float64 K ("expected m1 and m2 to have the
    # same dtype").
    torch.manual_seed(0)
    with random_backbone_expected():
        encoder = ImageEncoder(backbone="resnet18", weights_path=None, hidden=8, stages=1)
    model = HoposeNet(
        encoder=encoder, lifter=ContextLifter(hidden=8, dropout=0.0, variant="full")
    ).eval()
    frames = torch.randint(0, 256, (2, 3, 60, 100), dtype=torch.uint8)
    K = torch.tensor([[120.0, 0.0, 49.5], [0.0, 120.0, 29.5], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    warp, squares = FrameWarp(frames, 32), []

    def view(maps: torch.Tensor) -> torch.Tensor:
        squares.append(maps[0])
        return warp.views(maps)

    with torch.no_grad():
        single = self_crop(model, view, K, (100, 60), image_size=32, cropping=SelfCropping(1))
        double = self_crop(
            model, view, K.double(), (100, 60), image_size=32, cropping=SelfCropping(1)
        )
    assert double["kp2d"].dtype == torch.float64 and double["kp3d"].dtype == torch.float32
    for key in ("kp2d", "kp3d"):
        torch.testing.assert_close(double[key].float(), single[key], rtol=1e-4, atol=1e-3)
    assert squares[3].dtype == torch.float64
    torch.testing.assert_close(squares[3].float(), squares[1])  # the crops' maps


def test_self_crop_photos_returns_keypoints_in_each_photos_pixels():
    # A 1920 x 1080 photo whose hand and box span about a quarter of it, and a 480 x 640 one of
    # another camera predicted with it; the oracle network sees each view's K, so the 2D that
    # comes back is each photo's projection to float precision: far inside the 3% of the width
    # (57.6 px) that a trained model must reach. A photo's 2D mapped back through the other's
    # views, or its views given the other's K, would be hundreds of pixels off.
    torch.manual_seed(0)
    points = torch.rand(2, 29, 3) * 150 + torch.tensor([-60.0, -40.0, 350.0])
    K = torch.tensor([
        [[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]],
        [[500.0, 0.0, 239.5], [0.0, 500.0, 319.5], [0.0, 0.0, 1.0]],
    ])  # fmt: skip
    photos = [np.zeros((1080, 1920, 3), dtype=np.uint8), np.zeros((640, 480, 3), dtype=np.uint8)]
    oracle = _Oracle(points)
    out = self_crop_photos(oracle, photos, K, image_size=64, cropping=SelfCropping(1))
    kp2d, kp3d = out["kp2d"], out["kp3d"]
    assert "heatmap_peak" not in out  # a network without heat maps has no peaks
    assert [len(seen) for seen in oracle.seen] == [2, 2]  # both photos in each pass
    truth = project_points(points, K)
    assert (truth[0].amax(0) - truth[0].amin(0)).amax() > 400  # about a quarter of the frame
    assert (kp2d - truth).norm(dim=-1).max() < 1e-2
    torch.testing.assert_close(kp3d, points)


def test_the_heat_maps_peaks_are_the_last_passs_averaged_over_its_views():
    """Each view's maps are flat but for one cell of logit log(3 * 15): over 16 cells its
    softmax is 45 / (45 + 15) = 0.75; flat maps give 1 / 16. Views alternating the two average
    to (4 * 0.75 + 3 * 0.0625) / 7 = 0.455357 over the 7 views of the last crop, and a first
    pass of flat maps alone does not count."""
    points = torch.tensor([[0.0, 0.0, 400.0]]).expand(1, 29, 3)
    K = torch.tensor([[500.0, 0.0, 100.0], [0.0, 500.0, 80.0], [0.0, 0.0, 1.0]])
    calls = []

    class Peaked(_Oracle):
        def forward(self, image, K):
            out = super().forward(image, K)
            maps = torch.zeros(len(image), 29, 4, 4)
            if calls:  # the crop's views: peaked, flat, peaked, ...
                maps[0::2, :, 1, 2] = math.log(45.0)
            calls.append(len(image))
            return {**out, "heatmaps": maps}

    cropping = SelfCropping(1, views=CropViews(turn=15.0, shift=0.08))
    photo = np.zeros((160, 200, 3), dtype=np.uint8)
    out = self_crop_photos(Peaked(points), [photo], K[None], image_size=64, cropping=cropping)
    assert calls == [1, 7]
    torch.testing.assert_close(out["heatmap_peak"], torch.full((1, 29), (4 * 0.75 + 3 / 16) / 7))


# A white 1920 x 1080 photo and its quarter turn, each with its own camera.
TWO_PHOTOS_K = torch.tensor([
    [[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]],
    [[1395.7, 0.0, 540.7], [0.0, 1395.7, 935.7], [0.0, 0.0, 1.0]],
])  # fmt: skip


def _views_of_two_white_photos(
    points: torch.Tensor, cropping: SelfCropping
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], dict]:
    """self_crop_photos of the two white photos of TWO_PHOTOS_K by an oracle of ``points``:
    the (image, K) of each network pass, and its output."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    class Recorder(_Oracle):
        def forward(self, image, K):
            seen.append((image.clone(), K.clone()))
            return super().forward(image, K)

    photos = [np.full((1080, 1920, 3), 255, np.uint8), np.full((1920, 1080, 3), 255, np.uint8)]
    out = self_crop_photos(Recorder(points), photos, TWO_PHOTOS_K, image_size=64, cropping=cropping)
    return seen, out


def test_self_crop_photos_first_sees_the_whole_photo_letterboxed():
    """The first view of a photo (W x H) is frame_square((W, H)): the longer side across the
    view, the picture centred along the shorter one, and that view's K is A @ K; each photo of
    a batch by its own size. (A crop-trained model's; a whole-frame model's is resized.)"""
    # 1920 x 1080 onto 64 px: s = 64 / 1920 = 1/30, centre (960, 540), so A p = p / 30 + (32 -
    # 32, 32 - 18) = p / 30 + (0, 14): the photo's 1080 / 30 = 36 rows land on view rows
    # 14 ... 50 (the edge rows 14 and 50-51 are partly photo, blurred by the block means), so
    # rows 15 ... 49 are all photo (white) and rows 0 ... 13 and 52 ... 63 beyond it (black).
    # The 1080 x 1920 photo predicted with it is that turned: A p = p / 30 + (14, 0), columns
    # 15 ... 49 white. With the first photo's size for both, the second would fill every
    # column of rows 14 ... 50 instead.
    points = torch.tensor([[0.0, 0.0, 400.0]]).expand(2, 29, 3)
    seen, _ = _views_of_two_white_photos(points, SelfCropping(1))
    image, view_K = seen[0]
    A = torch.tensor([
        [[1 / 30, 0.0, 0.0], [0.0, 1 / 30, 14.0], [0.0, 0.0, 1.0]],
        [[1 / 30, 0.0, 14.0], [0.0, 1 / 30, 0.0], [0.0, 0.0, 1.0]],
    ])  # fmt: skip
    torch.testing.assert_close(view_K, A @ TWO_PHOTOS_K)
    torch.testing.assert_close(image[0, :, 15:50, 1:], torch.ones(3, 35, 63))
    assert (image[0, :, :14] == 0).all() and (image[0, :, 52:] == 0).all()
    torch.testing.assert_close(image[1, :, 1:, 15:50], torch.ones(3, 63, 35))
    assert (image[1, :, :, :14] == 0).all() and (image[1, :, :, 52:] == 0).all()


def test_a_whole_frame_model_sees_each_photo_resized_and_nothing_else():
    """No passes (a model trained on whole frames, crop "resize"): one view, each photo resized
    to the square as in training, aspect not kept (hopose.crop.resize_affine): A = diag(64 / W,
    64 / H), the white photo over the whole view but its first row and column, which reach
    (1 - s) / 2 px before the photo's edge (docs/conventions.md §6); the view's K is A @ K and
    the 2D comes back through A. Letterboxed, as a crop-trained model's first view is, rows
    0 ... 13 were black and the model read a frame it was never trained on."""
    points = torch.tensor([[30.0, -20.0, 400.0]]).expand(2, 29, 3)
    seen, out = _views_of_two_white_photos(points, SelfCropping(0))
    ((image, view_K),) = seen
    A = torch.diag_embed(torch.tensor([[64 / 1920, 64 / 1080, 1.0], [64 / 1080, 64 / 1920, 1.0]]))
    torch.testing.assert_close(view_K, A @ TWO_PHOTOS_K)
    torch.testing.assert_close(image[:, :, 1:, 1:], torch.ones(2, 3, 63, 63))
    torch.testing.assert_close(out["kp2d"], project_points(points, TWO_PHOTOS_K))


def test_self_crop_keeps_the_view_of_a_frame_whose_2d_is_not_finite():
    # A diverged frame (NaN or infinite 2D) places no square: it keeps its view, its output
    # stays non-finite (an infinite error for the metrics) and the other frames are untouched.
    # Its square was a map of NaNs, on which the synthetic renderer (hopose eval's views) raised
    # "cannot convert float NaN to integer" and stopped the whole evaluation.
    torch.manual_seed(0)
    points = torch.rand(3, 29, 3, dtype=torch.float64) * 80 + torch.tensor([0.0, 0.0, 400.0])
    K = torch.tensor([[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]]).double()
    K = K.expand(3, 3, 3)

    class Diverged(_Oracle):
        def forward(self, image, K):
            out = super().forward(image, K)
            kp2d = out["kp2d"].clone()
            kp2d[0], kp2d[1] = float("nan"), float("inf")
            return {**out, "kp2d_init": kp2d, "kp2d": kp2d}

    def view(maps: torch.Tensor) -> torch.Tensor:
        assert maps.isfinite().all(), "a view was asked for a non-finite map"
        return torch.zeros(*maps.shape[:2], 3, 64, 64)

    oracle = Diverged(points)
    out = self_crop(oracle, view, K, (1920, 1080), image_size=64, cropping=SelfCropping(2))
    assert not out["kp2d"][:2].isfinite().any()
    torch.testing.assert_close(out["kp2d"][2], project_points(points[2], K[2]))
    # Frames 0 and 1 kept the whole-frame view, frame 2 moved to its own crop.
    first = oracle.seen[0]
    torch.testing.assert_close(oracle.seen[-1][:2], first[:2])
    assert not torch.allclose(oracle.seen[-1][2], first[2])


class _RefinedIsRight(torch.nn.Module):
    """Refined 2D exact; initial 2D 500 network px off, to tell which one places the crop. It
    computes in its points' dtype, whatever K's, as a network in that dtype does."""

    def __init__(self, points: torch.Tensor) -> None:
        super().__init__()
        self.points = points

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        points = self.points.repeat(len(K) // len(self.points), 1, 1)
        kp2d = project_points(points, K.to(points.dtype))
        return {"kp2d_init": kp2d + 500.0, "kp2d": kp2d, "kp3d": points}


@pytest.mark.parametrize("k_dtype", [torch.float64, torch.float32])
def test_self_crop_places_its_square_around_the_refined_2d_in_ks_dtype(k_dtype):
    """The squares are placed around the refined 2D, not the initial 2D (500 px off); and a
    float64 network (``model.double()``) reading a float32 K makes them in K's dtype, as the
    docstring says, so the views' K (the maps times K) mixes no dtypes."""
    torch.manual_seed(0)
    points = torch.rand(1, 29, 3, dtype=torch.float64) * 80 + torch.tensor([0.0, 0.0, 400.0])
    K = torch.tensor([[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]])[None]
    view = _Blank()
    self_crop(
        _RefinedIsRight(points), view, K.to(k_dtype), (1920, 1080), image_size=64,
        cropping=SelfCropping(2, 0.2),
    )  # fmt: skip
    square = view.maps[-1][0]
    assert square.dtype == k_dtype
    expected = crop_affine(*square_around(project_points(points, K.double()), 0.2), 64)
    torch.testing.assert_close(square.double(), expected, rtol=1e-5, atol=1e-4)


def test_refusals_name_the_two_as_names_says():
    """The command line passes its options' names (hopose.cli.SELF_CROP_FLAGS); each refusal
    names the one given, in every case: nothing self-cropped, or no other views to leave out."""
    data = load_config(config_path("synthetic", "end2end")).data
    names = ("--self-crop-margin", "--single-view")
    whole = dataclasses.replace(data, crop="resize", options={})
    for kwargs, name in (({"margin": 0.6}, names[0]), ({"single_view": True}, names[1])):
        with pytest.raises(ValueError, match=f"^{name}: nothing is self-cropped"):
            SelfCropping.of(whole, names=names, **kwargs)
        with pytest.raises(ValueError, match=f"^{name}: nothing is self-cropped"):
            SelfCropping.of(data, enabled=False, names=names, **kwargs)
    alone = dataclasses.replace(data, self_crop_turn=0.0, self_crop_shift=0.0)
    with pytest.raises(ValueError, match=r"^--single-view: this model already predicts"):
        SelfCropping.of(alone, single_view=True, names=names)
    # Accepted values are the same whatever the names.
    assert SelfCropping.of(data, margin=0.6, single_view=True, names=names) == SelfCropping.of(
        data, margin=0.6, single_view=True
    )
