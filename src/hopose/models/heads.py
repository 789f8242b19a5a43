"""The encoder's initial 2D heads: the paper's linear head and an integral heat-map head.

Both predict the 29 nodes' initial 2D keypoints in coordinates normalised to [-1, 1] over the
image's width and height (-1 the left/top border, +1 the right/bottom, the convention of
``torch.nn.functional.grid_sample`` with ``align_corners=False``); :func:`to_pixels` maps them
to pixels whose centres are at integer coordinates (docs/datasets.md), where the borders are
-0.5 and W - 0.5.

- "linear" (paper §3.2): one linear layer on the global (pooled) feature, a plain
  ``nn.Linear(F, 29 * 2)`` in :class:`~hopose.models.encoder.ImageEncoder`.
- :class:`HeatmapHead`: integral pose regression (Sun et al., "Integral Human Pose Regression",
  ECCV 2018). The ResNet's stride-4, 8, 16 and 32 feature maps (those of the stages the encoder
  keeps, ``model.backbone_stages``) are each projected to ``width`` channels, upsampled to
  stride 4 and summed (a one-level feature pyramid), then a 3×3
  convolution gives a feature map and a 1×1 convolution one heat map per node. Each keypoint is
  the expectation of the pixel centres under its map's softmax (:func:`soft_argmax`), so the
  head is differentiable end to end and localises below the map's cell size. Pooling to one
  global vector discards where things are; the heat map keeps it, which is why it localises
  better than the linear head on small hands in whole frames (docs/from_pixels.md).

:func:`sample_features` reads a feature map at keypoints, so each node of the refinement GCN
can read the local feature where its keypoint lies besides the global one.

Shapes are jaxtyping annotations (N nodes, D features, h w a map's cells), checked at run time
in the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from hopose.skeleton import NUM_NODES

HEADS: tuple[str, ...] = ("linear", "heatmap")
HEATMAP_TILE = 8
"""The heat-map head needs an image side that is a multiple of this, so that its stride-4 and
stride-8 cells tile the image (``data.image_size``, ``optim.progressive_size``)."""


def pixel_centres(size: int, *, dtype: torch.dtype, device: torch.device) -> Float[Tensor, " size"]:
    """The normalised coordinates of the cell centres of a ``size``-cell axis spanning
    [-1, 1]: cell i covers [-1 + 2i/size, -1 + 2(i+1)/size], its centre is (2i + 1)/size - 1."""
    return (2 * torch.arange(size, dtype=dtype, device=device) + 1) / size - 1


def to_pixels(
    points: Float[Tensor, "*shape"], size: float | tuple[float, float] | Tensor
) -> Float[Tensor, "*shape"]:
    """[-1, 1] coordinates -> pixels of an image ``size`` pixels wide (per axis: (W, H) for
    (..., 2) points, numbers or a tensor), pixel centres at integers: ``(n + 1) / 2 * W - 0.5``.
    -1 is the left border, -0.5; cell i's centre (:func:`pixel_centres`) of a map at stride s
    lands on ``s i + (s - 1) / 2``, the middle of the pixels the cell covers."""
    if isinstance(size, tuple):
        # Each axis by its own number: a tensor of (W, H) would be a copy to the device.
        return torch.stack(
            [to_pixels(points[..., 0], size[0]), to_pixels(points[..., 1], size[1])], -1
        )
    return (points + 1) / 2 * size - 0.5


def soft_argmax(heatmaps: Float[Tensor, "B N h w"]) -> Float[Tensor, "B N 2"]:
    """Integral regression: the expected cell centre under each map's softmax.

    Computed in at least float32: under autocast the logits arrive in half precision, and cell
    centres and expectations rounded to bfloat16's 8 significant bits put the keypoints up to
    half a pixel off at 224 px.

    Args:
        heatmaps: logits.

    Returns:
        (x, y) in [-1, 1] coordinates of the map (cell centres as in :func:`pixel_centres`); a
        map peaked on one cell returns that cell's centre. Float32 for half-precision logits,
        else their dtype.
    """
    b, n, h, w = heatmaps.shape
    heatmaps = heatmaps.to(torch.promote_types(heatmaps.dtype, torch.float32))
    prob = heatmaps.flatten(2).softmax(dim=-1).view(b, n, h, w)
    xs = pixel_centres(w, dtype=heatmaps.dtype, device=heatmaps.device)
    ys = pixel_centres(h, dtype=heatmaps.dtype, device=heatmaps.device)
    x = (prob.sum(dim=2) * xs).sum(dim=-1)  # marginal over rows, then E[x]
    y = (prob.sum(dim=3) * ys).sum(dim=-1)  # marginal over columns, then E[y]
    return torch.stack([x, y], dim=-1)


def heatmap_peak(heatmaps: Float[Tensor, "B N h w"]) -> Float[Tensor, "B N"]:
    """Each map's largest softmax probability: how sure the head is of where its keypoint is.

    1 for a map peaked on one cell, 1 / (h w) for a flat one (a keypoint the head cannot place:
    on a photo without a hand, say). Not calibrated as a probability of being right.

    Args:
        heatmaps: logits.

    Returns:
        Peaks in [1 / (h w), 1], in at least float32 (as :func:`soft_argmax`).
    """
    heatmaps = heatmaps.to(torch.promote_types(heatmaps.dtype, torch.float32))
    return heatmaps.flatten(2).softmax(dim=-1).amax(dim=-1)


def sample_features(
    features: Float[Tensor, "B D h w"], points: Float[Tensor, "B N 2"]
) -> Float[Tensor, "B N D"]:
    """Bilinear samples of a feature map at points.

    Args:
        features: feature map.
        points: (x, y) in [-1, 1] coordinates; outside the map reads zeros.

    Returns:
        The features at the points, in the wider of the two dtypes: half-precision features
        (autocast) are read at the points' full-precision positions.
    """
    dtype = torch.promote_types(features.dtype, points.dtype)
    grid = points[:, :, None].to(dtype)  # (B, N, 1, 2): N points, one column
    features = features.to(dtype)
    sampled = F.grid_sample(features, grid, mode="bilinear", align_corners=False)  # (B, D, N, 1)
    return sampled[..., 0].transpose(1, 2)


class HeatmapHead(nn.Module):
    """Feature pyramid at stride 4 -> one heat map per node -> soft-argmax keypoints.

    Args:
        in_channels: channels of the stride-4, 8, 16 and 32 feature maps (ResNet layer1..4),
            or of the first of them (an encoder that keeps fewer stages).
        width: channels of the fused feature map.
    """

    def __init__(self, *, in_channels: tuple[int, ...], width: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, kernel_size=1) for c in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.heatmap = nn.Conv2d(width, NUM_NODES, kernel_size=1)

    def forward(
        self, maps: list[Float[Tensor, "B _ _ _"]]
    ) -> tuple[Float[Tensor, "B 29 2"], Float[Tensor, "B width h w"], Float[Tensor, "B 29 h w"]]:
        """Args: maps, the stride-4, 8, 16 and 32 feature maps, or the first of them.

        Returns:
            keypoints in [-1, 1], the fused feature map (h w the first map's, a quarter of the
            image's) and the heat maps' logits, which :func:`hopose.losses.heatmap_loss` may
            supervise directly.
        """
        size = maps[0].shape[-2:]
        fused = sum(
            F.interpolate(lateral(m), size=size, mode="bilinear", align_corners=False)
            for lateral, m in zip(self.lateral, maps, strict=True)
        )
        features = self.fuse(fused)
        logits = self.heatmap(features)
        return soft_argmax(logits), features, logits
