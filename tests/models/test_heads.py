"""Heat-map head: soft-argmax, feature sampling and the encoder with ``head="heatmap"``."""

from __future__ import annotations

import warnings

import pytest
import torch

from hopose.models.encoder import ImageEncoder
from hopose.models.heads import (
    HeatmapHead,
    heatmap_peak,
    pixel_centres,
    sample_features,
    soft_argmax,
    to_pixels,
)


def test_pixel_centres_by_hand():
    # 4 cells over [-1, 1], each 0.5 wide: centres -0.75, -0.25, 0.25, 0.75.
    torch.testing.assert_close(
        pixel_centres(4, dtype=torch.float64, device=torch.device("cpu")),
        torch.tensor([-0.75, -0.25, 0.25, 0.75], dtype=torch.float64),
    )


def test_soft_argmax_of_a_peak_is_the_peak_cell_centre():
    # A 4 x 5 (H x W) map peaked on row 1, column 3: x = (2*3 + 1)/5 - 1 = 0.4,
    # y = (2*1 + 1)/4 - 1 = -0.25.
    maps = torch.full((1, 1, 4, 5), -1e4, dtype=torch.float64)
    maps[0, 0, 1, 3] = 0.0
    torch.testing.assert_close(soft_argmax(maps)[0, 0], torch.tensor([0.4, -0.25]).double())


def test_soft_argmax_of_two_equal_peaks_is_their_midpoint_and_uniform_is_the_centre():
    maps = torch.full((1, 2, 4, 4), -1e4)
    # Node 0: equal peaks at (row 0, col 0) and (row 2, col 2): centres (-0.75, -0.75) and
    # (0.25, 0.25), mean (-0.25, -0.25). Node 1: a flat map, whose expectation is (0, 0).
    maps[0, 0, 0, 0] = maps[0, 0, 2, 2] = 0.0
    maps[0, 1] = 3.0
    torch.testing.assert_close(soft_argmax(maps)[0], torch.tensor([[-0.25, -0.25], [0.0, 0.0]]))


def test_soft_argmax_matches_a_naive_loop():
    torch.manual_seed(0)
    maps = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    out = soft_argmax(maps)
    for b in range(2):
        for n in range(3):
            prob = maps[b, n].exp() / maps[b, n].exp().sum()
            x = sum(prob[i, j] * ((2 * j + 1) / 6 - 1) for i in range(5) for j in range(6))
            y = sum(prob[i, j] * ((2 * i + 1) / 5 - 1) for i in range(5) for j in range(6))
            torch.testing.assert_close(out[b, n], torch.stack([x, y]))


def test_soft_argmax_gradcheck_float64():
    maps = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(soft_argmax, (maps,))


def test_a_peaked_cell_reads_the_middle_of_its_pixels():
    # A 4 x 4 map over a 16 x 16 image (stride 4), peaked on row 1, column 2: the cell covers
    # pixels 8..11 across and 4..7 down, whose middles are 9.5 and 5.5 with pixel centres at
    # integers (docs/datasets.md). The [-1, 1] borders are pixels -0.5 and 15.5.
    maps = torch.full((1, 1, 4, 4), -1e4, dtype=torch.float64)
    maps[0, 0, 1, 2] = 0.0
    size = torch.tensor([16.0, 16.0], dtype=torch.float64)
    torch.testing.assert_close(
        to_pixels(soft_argmax(maps), size)[0, 0], torch.tensor([9.5, 5.5]).double()
    )
    borders = to_pixels(torch.tensor([[-1.0, 1.0]]).double(), size)
    torch.testing.assert_close(borders, torch.tensor([[-0.5, 15.5]]).double())


def test_to_pixels_of_a_width_and_height_as_numbers():
    # The encoder gives its image's (W, H) as numbers, which need no tensor on the device: the
    # same pixels as a (W, H) tensor's, to the bit.
    points = torch.rand(2, 29, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = to_pixels(points, (96, 64))
    assert torch.equal(out, to_pixels(points, torch.tensor([96.0, 64.0])))
    torch.testing.assert_close(
        to_pixels(torch.tensor([-1.0, 1.0]), (96, 64)), torch.tensor([-0.5, 63.5])
    )


def test_soft_argmax_of_bfloat16_logits_is_computed_in_float32():
    # Autocast hands the head's logits over in bfloat16: the keypoints are those of the same
    # logits in float32 (rounding them to bfloat16 put them up to 0.004, half a pixel at 224 px,
    # off), and float32.
    logits = (torch.randn(2, 29, 56, 56, generator=torch.Generator().manual_seed(0)) * 3).bfloat16()
    out = soft_argmax(logits)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, soft_argmax(logits.float()), rtol=0, atol=1e-6)


def test_sample_features_of_a_bfloat16_map_reads_at_the_full_precision_point():
    # A map whose value is its column index j, exact in bfloat16: bilinear sampling at x reads
    # the column position (x + 1) / 2 * W - 0.5 = (1.123456 * 64 - 1) / 2 = 35.450592. The point
    # rounded to bfloat16 (0.12353516) would read 35.45312.
    ramp = torch.arange(64.0).expand(1, 1, 8, 64).bfloat16()
    points = torch.tensor([[[0.123456, 0.0]]])
    sampled = sample_features(ramp, points)
    assert sampled.dtype == torch.float32
    torch.testing.assert_close(sampled, torch.tensor([[[35.450592]]]), rtol=0, atol=1e-5)


def test_sample_features_at_a_cell_centre_reads_that_cell():
    torch.manual_seed(0)
    features = torch.randn(2, 7, 4, 5)
    # Cell (row 2, col 1) of a 4 x 5 map has its centre at x = 3/5 - 1 = -0.4, y = 5/4 - 1 = 0.25.
    points = torch.tensor([[-0.4, 0.25]]).expand(2, 1, 2)
    torch.testing.assert_close(sample_features(features, points)[:, 0], features[:, :, 2, 1])
    # Half-way between the centres of columns 1 and 2 (x = -0.2) reads their mean.
    between = sample_features(features, torch.tensor([[[-0.2, 0.25]]]).expand(2, 1, 2))[:, 0]
    torch.testing.assert_close(between, (features[:, :, 2, 1] + features[:, :, 2, 2]) / 2)


def test_sample_features_gradcheck_float64():
    features = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    points = (torch.rand(1, 5, 2, dtype=torch.float64) * 1.2 - 0.6).requires_grad_()
    assert torch.autograd.gradcheck(sample_features, (features, points))


def test_heatmap_head_sums_every_level_upsampled_bilinearly():
    """The pyramid fuses every level it is given, each upsampled to stride 4 bilinearly (half-
    pixel centres, as the keypoints): a coarse level dropped, or upsampled by nearest cells,
    would move the heat maps away from what the deeper features say."""
    head = HeatmapHead(in_channels=(1, 1, 1), width=1).eval()
    with torch.no_grad():
        for lateral in head.lateral:  # 1 x 1 identity projections: the fused map is the sum
            lateral.weight.fill_(1.0)
            lateral.bias.zero_()
    fused = []
    head.fuse.register_forward_pre_hook(lambda _module, args: fused.append(args[0]))
    # Strides 4, 8, 16 over a 1 x 4 stride-4 grid: rows of 4, 2 and 1 cells.
    maps = [
        torch.tensor([[[[10.0, 20.0, 30.0, 40.0]]]]),
        torch.tensor([[[[0.0, 4.0]]]]),
        torch.tensor([[[[2.0]]]]),
    ]
    with torch.no_grad():
        head(maps)
    # Bilinear 2 -> 4 cells with align_corners=False: output cell i reads source position
    # (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1]: 0, 0.25 * 4 = 1,
    # 0.75 * 4 = 3, 4. The single stride-16 cell adds 2 everywhere. Sum: 10 + 0 + 2,
    # 20 + 1 + 2, 30 + 3 + 2, 40 + 4 + 2.
    torch.testing.assert_close(fused[0], torch.tensor([[[[12.0, 23.0, 35.0, 46.0]]]]))


def _heatmap_encoder() -> ImageEncoder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ImageEncoder(
            backbone="resnet18", weights_path=None, hidden=16, head="heatmap"
        ).eval()


def test_heatmap_encoder_flat_maps_give_the_image_centre_in_pixels():
    torch.manual_seed(0)
    encoder = _heatmap_encoder()
    # Zero heat-map logits are flat: every node at normalised (0, 0), i.e. (47.5, 31.5) px, the
    # centre of a 96 x 64 (W x H) image whose pixel centres are at integers; a zero last GCN
    # layer leaves the refined keypoints there too.
    with torch.no_grad():
        encoder.head.heatmap.weight.zero_()
        encoder.head.heatmap.bias.zero_()
        encoder.refine.layers[-1].linear.weight.zero_()
    out = encoder(torch.rand(2, 3, 64, 96))
    for key in ("kp2d_init", "kp2d"):
        torch.testing.assert_close(out[key], torch.tensor([47.5, 31.5]).expand(2, 29, 2))


def test_heatmap_encoder_nodes_read_the_local_feature():
    # With the global feature's columns of the first GCN layer zeroed and the initial keypoints
    # fixed, two images can differ in the refined keypoints only through the local features.
    torch.manual_seed(0)
    encoder = _heatmap_encoder()
    with torch.no_grad():
        encoder.head.heatmap.weight.zero_()
        encoder.refine.layers[0].linear.weight[:, 2 : 2 + 512] = 0.0
    out = encoder(torch.rand(2, 3, 64, 64))
    torch.testing.assert_close(out["kp2d_init"][0], out["kp2d_init"][1])
    assert not torch.allclose(out["kp2d"][0], out["kp2d"][1])


def test_heatmap_encoder_returns_the_maps_its_initial_keypoints_come_from():
    # kp2d_init is the soft-argmax of the returned logits, mapped from [-1, 1] to pixels of the
    # 96 x 64 image: x = (n + 1) / 2 * 96 - 0.5, y = (n + 1) / 2 * 64 - 0.5; the maps are at
    # stride 4.
    torch.manual_seed(0)
    encoder = _heatmap_encoder()
    with torch.no_grad():
        out = encoder(torch.rand(2, 3, 64, 96))
    assert out["heatmaps"].shape[-2:] == (16, 24)
    expected = (soft_argmax(out["heatmaps"]) + 1) / 2 * torch.tensor([96.0, 64.0]) - 0.5
    torch.testing.assert_close(out["kp2d_init"], expected)


def test_unknown_head_raises():
    with pytest.raises(ValueError, match="head must be one of"):
        ImageEncoder(backbone="resnet18", weights_path=None, hidden=8, head="conv")


def test_heatmap_peak_by_hand():
    """A flat 2 x 2 map: each cell 1 / 4. Logit log 3 on one cell and 0 on three: its softmax
    is 3 / (3 + 3) = 0.5. A bfloat16 map's peak comes back in float32."""
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 1, 0, 1] = torch.log(torch.tensor(3.0))
    torch.testing.assert_close(heatmap_peak(maps), torch.tensor([[0.25, 0.5]]))
    peak = heatmap_peak(maps.bfloat16())
    assert peak.dtype == torch.float32
    torch.testing.assert_close(peak, torch.tensor([[0.25, 0.5]]), atol=4e-3, rtol=0)


def test_sample_features_of_several_points_reads_each_points_cell():
    """Cell (row 2, col 1) of a 4 x 5 map has its centre at (3/5 - 1, 5/4 - 1) = (-0.4, 0.25),
    cell (row 0, col 3) at (7/5 - 1, 1/4 - 1) = (0.4, -0.75); 7 channels, so that a reshape of
    (B, 7, 2) to (B, 2, 7) would mix the channels of the two points."""
    torch.manual_seed(0)
    features = torch.randn(2, 7, 4, 5)
    points = torch.tensor([[-0.4, 0.25], [0.4, -0.75]]).expand(2, 2, 2)
    sampled = sample_features(features, points)
    assert sampled.shape == (2, 2, 7)
    torch.testing.assert_close(sampled[:, 0], features[:, :, 2, 1])
    torch.testing.assert_close(sampled[:, 1], features[:, :, 0, 3])


def test_heatmap_head_fused_features_are_rectified():
    """The fused features pass a ReLU: a negative pre-activation reads zero, a positive one
    itself (the eval-mode batch norm, mean 0 and variance 1, divides by sqrt(1 + 1e-5))."""
    head = HeatmapHead(in_channels=(1,), width=1).eval()
    with torch.no_grad():
        head.lateral[0].weight.fill_(1.0)  # the fused map is the input map
        head.lateral[0].bias.zero_()
    # A 2 x 2 map: each 3 x 3 window (padding 1) covers all four cells, 1 + 2 + 3 + 4 = 10.
    maps = [torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])]
    for sign, expected in ((1.0, 10 / (1 + 1e-5) ** 0.5), (-1.0, 0.0)):
        with torch.no_grad():
            head.fuse[0].weight.fill_(sign)
            _, features, _ = head(maps)
        torch.testing.assert_close(features, torch.full((1, 1, 2, 2), expected))
