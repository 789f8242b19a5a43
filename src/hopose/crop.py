"""Square crops around hand and object as 2D affine maps, and self-cropping at inference.

A network image is a 2D affine view of a frame: an affine map A (3×3, last row 0 0 1) takes a
frame pixel p to the network-image pixel A p. Its intrinsics are ``A @ K`` (a pinhole camera
followed by an affine image map is the pinhole camera with the product matrix), so the viewing
rays ``(A K)⁻¹ [A p; 1] = K⁻¹ [p; 1]`` are unchanged and a camera-aware lifter reads any crop,
scaled, shifted or rotated, exactly (docs/training.md).

- :func:`resize_affine`: the whole frame resized to a square (the paper's input).
- :func:`edge_aligned_scale`: an image resampled whole with its outer pixel edges kept (Pillow's
  resize, an area average), which moves its pixel centres by half a pixel from ``s u``.
- :func:`crop_affine`: a square of a given centre, side and rotation, resized to the network.
- :func:`frame_square`: the square of the frame's longer side around its centre (the whole
  frame at one scale, letterboxed), the first view of self-cropping.
- :func:`square_around`: the square around 2D points with a margin.
- :func:`jittered_square`: a training crop, the square around hand and object randomly scaled,
  shifted and turned, or the whole frame (:data:`WHOLE_FRAME_SHARE` of the samples).
- :func:`warp_image`: the network image an affine map shows of a frame's pixels
  (:class:`FrameWarp`: many such views of the same frames).
- :func:`shrink_views`: a training batch's views shown smaller (progressive resizing).
- :func:`self_crop` (and :func:`self_crop_image` for a photo): inference without ground
  truth placing the crop: a first pass on the
  whole frame (:func:`frame_square`) gives 2D keypoints, the square around them is cropped
  and the network runs again (``SelfCropping.passes`` times); 2D comes back in frame pixels.
- :class:`CropViews`: test-time augmentation of the last self-crop pass, its square also
  turned and shifted, the predictions of all views averaged.
- :class:`SelfCropping`: how a model self-crops at inference (passes, margin, views), read
  from the config it was trained with.

Pixel centres sit at integer coordinates (docs/datasets.md,
:func:`hopose.geometry.scale_intrinsics`, the renderer of :mod:`hopose.data.render`): pixel
(i, j) of an image with intrinsics K shows the ray ``K⁻¹ [i, j, 1]``, so network pixel q of the
view A shows frame point ``A⁻¹ q`` exactly, as in the views the synthetic data render with
``A @ K``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from hopose.config import DataConfig


# Fraction of the keypoints' tight square added on each side of the squares self-cropping places
# around a model's own 2D, the default of ``data.self_crop_margin``: wider than the training
# crops' (:data:`hopose.data.transforms.DEFAULT_MARGIN`), because a model's own 2D spans less
# than the truth's (under uncertainty each keypoint's estimate leans to the middle); chosen on
# the validation split (docs/from_pixels.md, "Self-crop margin").
SELF_CROP_MARGIN = 0.45


def resize_affine(frame_size: tuple[int, int], image_size: int, like: Tensor) -> Tensor:
    """(3, 3) map of a (width, height) frame onto an ``image_size`` square (aspect not kept).

    ``q = s p`` per axis, about the first pixel's centre, with ``s = image_size / width``
    (``/ height`` for y): the frame's edges -0.5 and ``width - 0.5`` go to ``-s / 2`` and
    ``image_size - s / 2``, not to the image's edges -0.5 and ``image_size - 0.5``. The picture
    sits ``(1 - s) / 2`` network pixels right of (below) where an edge-aligned resize
    (:func:`edge_aligned_scale`) puts it: that much of the first column (row) lies beyond the
    frame, and the frame's last ``(1 - s) / 2`` network pixels are not shown. Labels are exact
    all the same, as K goes with the view (``A @ K``); docs/conventions.md §6.
    """
    width, height = frame_size
    return torch.diag(like.new_tensor([image_size / width, image_size / height, 1.0]))


def edge_aligned_scale(scale: Tensor) -> Tensor:
    """(3, 3) map of an image onto a copy ``scale`` = (s_x, s_y) times its size whose outer
    pixel edges are the image's (a whole-image resize, or the f x f supersampling of a render
    read the other way): with pixel centres at integers, u goes to ``s u + (s - 1) / 2``.

    Args:
        scale: (2,) the copy's size over the image's, per axis.
    """
    A = torch.eye(3, dtype=scale.dtype, device=scale.device)
    A[[0, 1], [0, 1]], A[:2, 2] = scale, (scale - 1) / 2
    return A


def crop_affine(
    centre: Tensor, side: Tensor, image_size: int, angle: Tensor | None = None
) -> Tensor:
    """Maps of rotated squares of frame pixels onto the ``image_size`` network square.

    ``q = (image_size / side) R(angle) (p - centre) + image_size / 2``: the square's centre goes
    to ``(image_size / 2, image_size / 2)``, the square itself onto ``[0, image_size]²``, and
    the frame turns by ``angle`` (radians, counter-clockwise on screen, whose y axis points
    down) about the centre. With pixel centres at integers the image spans -0.5 ...
    ``image_size - 0.5`` and its centre is ``(image_size - 1) / 2``: the square is shown half a
    network pixel right of and below the middle, its last half pixel beyond the image's right
    and bottom edges. Labels are exact all the same, as K goes with the view (``A @ K``);
    docs/conventions.md §6.

    Args:
        centre: (B, 2) frame pixels. side: (B,) frame pixels. angle: (B,) or None for 0.

    Returns:
        (B, 3, 3) affine maps.
    """
    scale = image_size / side  # (B,)
    angle = torch.zeros_like(side) if angle is None else angle
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    # Rows of s R with R = [[cos, sin], [-sin, cos]]: counter-clockwise on a y-down screen.
    linear = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    shift = image_size / 2 - (linear @ centre[..., None])[..., 0]  # (B, 2)
    A = torch.zeros(*side.shape, 3, 3, dtype=side.dtype, device=side.device)
    A[..., :2, :2], A[..., :2, 2], A[..., 2, 2] = linear, shift, 1.0
    return A


def square_around(points: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """Centre (B, 2) and side (B,) of the square around points (B, M, 2), widened by ``margin``
    × the tight side on each side (at least 1 px).

    Points with a NaN coordinate (a real dataset's missing annotation) are left out. The
    training crops (:func:`hopose.data.transforms.square_crop_box`) and self-cropping's squares
    are both placed by this function."""
    missing = points.isnan().any(dim=-1, keepdim=True)  # (B, M, 1)
    low = points.masked_fill(missing, float("inf")).amin(dim=-2)
    high = points.masked_fill(missing, float("-inf")).amax(dim=-2)
    side = (high - low).amax(dim=-1).clamp_min(1.0) * (1 + 2 * margin)
    return (low + high) / 2, side


def frame_square(frame_size: tuple[int, int], like: Tensor) -> tuple[Tensor, Tensor]:
    """Centre (1, 2) and side (1,) of the square of the frame's longer side around
    ``(width / 2, height / 2)``.

    With pixel centres at integers the frame spans -0.5 ... ``width - 0.5`` and its centre is
    ``((width - 1) / 2, (height - 1) / 2)``: the square is centred half a frame pixel right of
    and below it. Through :func:`crop_affine` onto S pixels (``s = S / max(width, height)``)
    the frame's edges -0.5 and ``width - 0.5`` (of the longer side) go to ``-s / 2`` and
    ``S - s / 2``: the view's first column is partly beyond the frame (zeros there) and the
    frame's last ``(1 - s) / 2`` network pixels are not shown (docs/conventions.md §6).
    """
    width, height = frame_size
    return like.new_tensor([[width / 2, height / 2]]), like.new_tensor([float(max(width, height))])


# Share of jittered square-crop samples that show the whole frame (self-cropping's first view):
# the first pass only places the crop, so most samples train the crop pass (docs/from_pixels.md).
WHOLE_FRAME_SHARE = 0.15
# The jitter of the other samples: scale ×0.8-1.25 (uniform in log), shift ±10% of the side per
# axis, turn ±30°; the whole frame turns ±10° only.
JITTER_SCALE = (0.8, 1.25)
JITTER_SHIFT = 0.1
JITTER_TURN = np.pi / 6
WHOLE_FRAME_TURN = np.pi / 18


def jittered_square(
    centre: Tensor,
    side: Tensor,
    frame_size: tuple[int, int],
    image_size: int,
    rng: np.random.Generator,
) -> Tensor:
    """A training crop's map: the square of ``centre`` (1, 2) and ``side`` (1,) frame pixels
    (around hand and object) randomly scaled, shifted and turned, or, for a share
    :data:`WHOLE_FRAME_SHARE` of the draws, the whole frame (:func:`frame_square`), slightly
    jittered, as self-cropping's first pass sees it.

    Returns:
        (1, 3, 3) map of the frame onto the ``image_size`` square (:func:`crop_affine`), in
        ``side``'s dtype; the draws are ``rng``'s, in a fixed order.
    """
    turn = JITTER_TURN
    if rng.uniform() < WHOLE_FRAME_SHARE:
        centre, side = frame_square(frame_size, side)
        turn = WHOLE_FRAME_TURN
    low, high = JITTER_SCALE
    side = side * float(np.exp(rng.uniform(np.log(low), np.log(high))))
    centre = centre + side.new_tensor(rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, 2)) * side
    angle = side.new_tensor([rng.uniform(-1.0, 1.0) * turn])
    return crop_affine(centre, side, image_size, angle)


def apply_affine(A: Tensor, points: Tensor) -> Tensor:
    """Points (B, M, 2) mapped by affine maps (B, 3, 3)."""
    return points @ A[..., :2, :2].transpose(-1, -2) + A[..., None, :2, 2]


def _block_means(x: Tensor, shrink: int) -> Tensor:
    """(B, C, ⌈H / r⌉, ⌈W / r⌉) the means of (B, C, H, W) images' r × r blocks (r = shrink)."""
    height, width = x.shape[-2:]
    # Whole blocks: zeros beyond the frame's last row and column, as the sampling reads there
    # (a side shorter than the factor, a photo of extreme aspect seen whole, keeps one row or
    # column, mostly dark).
    x = F.pad(x, (0, -width % shrink, 0, -height % shrink))
    # Block means (area averaging), not an antialiased bilinear resize, whose triangle spans
    # two blocks: the demo's model read such crops of rendered photos 2 px (hand) and 4 px
    # (box) worse (docs/from_pixels.md, "Block means when a view shrinks the photo").
    return F.avg_pool2d(x, shrink)


def shrink_factor(A: Tensor) -> int:
    """The integer factor by which frames are shrunk (block means) before views through the
    frame -> network maps A (B, 3, 3) sample them: whole frame pixels per network pixel along a
    side (the square root of |det| of A's linear part), at the closest view, at least 1.

    A ratio within 1e-3 below an integer counts as that integer: in float32 the map of a
    1920-px-wide frame onto 64 px gives 1920 / 64 = 29.999998, which must shrink by 30.
    """
    ratio = float(1 / A[:, :2, :2].det().abs().sqrt().max().clamp_min(1e-6))
    return max(1, math.floor(ratio + 1e-3))


class FrameWarp:
    """The network images that affine maps show of a batch of frames (:func:`warp_image`),
    each block-mean shrink of the frames made once.

    Self-cropping warps one photo nine times (the whole frame, the first crop, the last crop's
    7 views), at two or three shrink factors; shrinking a 1920×1080 frame costs more than the
    network's pass over the view it makes (BENCHMARKS.md, "Prediction on photos").

    Args:
        image: (B, 3, H, W) uint8 or float frames. image_size: the views' side S.
    """

    def __init__(self, image: Tensor, image_size: int) -> None:
        self.image_size = image_size
        # The frames by shrink factor, in [0, 1] (uint8 input) or the input's range.
        self._shrunk = {1: image.float() / 255 if image.dtype == torch.uint8 else image}

    def __call__(self, A: Tensor) -> Tensor:
        """(B, 3, S, S) views through frame -> network maps A (B, 3, 3)."""
        shrink = shrink_factor(A)
        if shrink not in self._shrunk:
            self._shrunk[shrink] = _block_means(self._shrunk[1], shrink)
        if shrink > 1:
            # Shrunk pixel p' is the mean of the frame's pixels r p' ... r (p' + 1) - 1
            # (r = shrink): its centre is frame position r p' + (r - 1) / 2.
            A = A @ edge_aligned_scale(A.new_tensor([shrink, shrink]))
        x = self._shrunk[shrink]
        centres = torch.arange(self.image_size, dtype=A.dtype, device=A.device)
        v, u = torch.meshgrid(centres, centres, indexing="ij")
        q = torch.stack([u, v], dim=-1).reshape(1, -1, 2).expand(len(A), -1, -1)  # (B, S*S, 2)
        p = apply_affine(torch.linalg.inv(A), q)  # (B, S*S, 2) frame pixels
        size = p.new_tensor([x.shape[-1], x.shape[-2]])
        # grid_sample's [-1, 1] (align_corners=False) spans the pixels' outer edges,
        # -0.5 ... W - 0.5.
        grid = ((2 * p + 1) / size - 1).view(len(A), self.image_size, self.image_size, 2)
        return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", align_corners=False)

    def views(self, maps: Tensor) -> Tensor:
        """(V, B, 3, S, S) views through maps (V, B, 3, 3), V views of each frame: the ``view``
        of :func:`self_crop`."""
        return torch.stack([self(A) for A in maps])


def warp_image(image: Tensor, A: Tensor, image_size: int) -> Tensor:
    """The ``image_size`` square that maps A show of frames.

    Each network pixel q (its centre, at integer coordinates) samples the frame bilinearly at
    ``A⁻¹ q``, a frame position with pixel centres at integer coordinates too (zeros outside),
    so that ``A @ K`` is the view's intrinsics to the pixel, as in the synthetic renders. A
    frame much larger than the crop is first shrunk by an integer factor, each pixel the mean of
    its block (area averaging, as a camera's pixel and the renders' supersampling integrate the
    light), so that bilinear sampling does not alias. Several views of the same frames:
    :class:`FrameWarp`.

    Args:
        image: (B, 3, H, W) uint8 or float frames. A: (B, 3, 3) frame -> network maps.

    Returns:
        (B, 3, image_size, image_size) float in [0, 1] (uint8 input) or the input's range.
    """
    return FrameWarp(image, image_size)(A)


def shrink_views(batch: Mapping[str, Any], image_size: int) -> dict[str, Any]:
    """A batch of network views shown at ``image_size`` px instead: each image resized whole
    with antialiasing, its outer pixel edges kept, and K and the 2D keypoints mapped with it
    (:func:`edge_aligned_scale`), so every keypoint's ray and every 3D target is unchanged.

    Progressive resizing (``optim.progressive_size``, docs/training.md) trains an image stage's
    first epochs on these cheaper views. A ``segmentation`` map stays at its size: its loss
    pools it to the cells of the maps, whatever their size
    (:func:`hopose.losses.segmentation_loss`).

    Args:
        batch: ``image`` (B, 3, H, W) uint8 or float, ``K`` (B, 3, 3), ``hand_2d`` (B, 21, 2)
            and ``obj_2d`` (B, 8, 2) in the images' pixels; other keys are kept as they are.
        image_size: the new side; the images must be square.

    Returns:
        The batch with ``image`` (B, 3, image_size, image_size) of the input's dtype, ``K``,
        ``hand_2d`` and ``obj_2d`` replaced.
    """
    image = batch["image"]
    height, width = image.shape[-2:]
    if height != width:
        raise ValueError(f"shrink_views needs square images, got {height} x {width}")
    size = (image_size, image_size)
    # Resampled in at least float32 (float64 stays float64), then back to the input's dtype.
    wide = image.to(torch.promote_types(image.dtype, torch.float32))
    small = F.interpolate(wide, size=size, mode="bilinear", antialias=True, align_corners=False)
    if image.dtype == torch.uint8:
        small = small.round().clamp(0, 255)
    small = small.to(image.dtype)
    A = edge_aligned_scale(batch["K"].new_tensor([image_size / width] * 2))
    return {
        **batch,
        "image": small,
        "K": A @ batch["K"],
        "hand_2d": apply_affine(A, batch["hand_2d"]),
        "obj_2d": apply_affine(A, batch["obj_2d"]),
    }


@dataclasses.dataclass(frozen=True)
class CropViews:
    """The views of a self-crop square whose predictions the last pass averages (test-time
    augmentation, beyond the paper; docs/from_pixels.md, "Test-time views").

    The square itself; with ``turn`` > 0 also the square turned by -``turn`` and +``turn``
    degrees; with ``shift`` > 0 also the square moved by +``shift`` and -``shift`` × its side
    along x, then along y: ``1 + 2 [turn > 0] + 4 [shift > 0]`` views, each one change from
    the square (the turned and shifted combinations gain nothing more, docs/from_pixels.md). Each
    view's intrinsics are its map times the frame's K (module docstring), so the rays are
    exact in every view: the 3D of all views is in the one camera frame and averages as it
    is, and the 2D averages in frame pixels. The model was trained on squares turned by up to
    ±30° and shifted by up to ±10% (:func:`jittered_square`), so such views are ones it knows.
    """

    turn: float = 0.0
    shift: float = 0.0

    def __len__(self) -> int:
        return 1 + 2 * (self.turn > 0) + 4 * (self.shift > 0)

    def affines(self, centre: Tensor, side: Tensor, image_size: int) -> Tensor:
        """(V, B, 3, 3) maps of the views of the squares of ``centre`` (B, 2) and ``side``
        (B,), in the order above, the first the square itself (:func:`crop_affine`)."""
        t, s = self.turn, self.shift
        # (shift along x, shift along y, turn in degrees) of each view.
        changes = [(0.0, 0.0, 0.0)]
        changes += [(0.0, 0.0, -t), (0.0, 0.0, t)] if t > 0 else []
        changes += [(s, 0.0, 0.0), (-s, 0.0, 0.0), (0.0, s, 0.0), (0.0, -s, 0.0)] if s > 0 else []
        return torch.stack([
            crop_affine(
                centre + side[:, None] * centre.new_tensor([dx, dy]), side, image_size,
                torch.full_like(side, math.radians(turn)),
            )
            for dx, dy, turn in changes
        ])  # fmt: skip


# The one square, no extra views: the paper's single prediction.
SINGLE_VIEW = CropViews()


# Why a self-crop option given to ``hopose eval`` or ``hopose predict`` has nothing to act on.
_NOTHING_SELF_CROPPED = (
    "nothing is self-cropped here (ground-truth 2D, ground-truth boxes, or a model trained on "
    "whole frames)"
)


@dataclasses.dataclass(frozen=True)
class SelfCropping:
    """How a model self-crops at inference (:func:`self_crop`): ``passes`` crops after the
    whole-frame pass (0: none), at ``margin`` (:func:`square_around`), the last one's
    predictions averaged over ``views``. :meth:`of` reads it from the model's config."""

    passes: int = 0
    margin: float = SELF_CROP_MARGIN
    views: CropViews = SINGLE_VIEW

    @classmethod
    def of(
        cls,
        data: DataConfig,
        *,
        enabled: bool = True,
        margin: float | None = None,
        single_view: bool = False,
    ) -> SelfCropping:
        """The self-cropping of a model trained with ``data``: ``data.self_crop`` passes when
        it was trained on square crops (none when it reads whole frames, or where ``enabled``
        is False: ground-truth 2D or boxes), at ``margin`` where one is given (to choose a
        margin on a validation split, docs/training.md, "Self-crop margin") or else
        ``data.self_crop_margin``, the last crop seen through ``data.self_crop_turn`` and
        ``data.self_crop_shift``'s views, or as the one square with ``single_view`` (to measure
        what the views give, docs/from_pixels.md, "Test-time views").

        Raises:
            ConfigError: ``margin`` is not a margin ``data.self_crop_margin`` may hold
                (checked by :class:`hopose.config.DataConfig` itself).
            ValueError: ``margin`` or ``single_view`` given where nothing is self-cropped.
        """
        passes = data.self_crop if enabled and data.crop == "square" else 0
        for name, given in (("self_crop_margin", margin is not None), ("single_view", single_view)):
            if given and passes == 0:
                raise ValueError(f"{name}: {_NOTHING_SELF_CROPPED}")
        if margin is not None:
            margin = dataclasses.replace(data, self_crop_margin=margin).self_crop_margin
        views = CropViews(data.self_crop_turn, data.self_crop_shift)
        return cls(
            passes,
            data.self_crop_margin if margin is None else margin,
            SINGLE_VIEW if passes == 0 or single_view else views,
        )


# Whole frames, or ground truth fed: nothing self-cropped.
NO_SELF_CROP = SelfCropping()


def _mean_over_views(
    model: nn.Module, view: Callable[[Tensor], Tensor], K: Tensor, maps: Tensor
) -> dict[str, Tensor]:
    """The model's ``kp2d_init`` and ``kp2d`` (B, 29, 2) in frame pixels and ``kp3d`` (B, 29, 3),
    each averaged over the views ``maps`` (V, B, 3, 3) (:class:`CropViews`); the 2D is mapped
    back to the frame in the wider of the network's and the maps' (K's) dtypes.

    The V × B views go through the network as one batch (half the time of V batches of one
    photo's view on the CPU, BENCHMARKS.md, "Prediction on photos"), so an evaluation's batch
    of frames takes V times the memory of its single view."""
    images = view(maps).flatten(0, 1)  # (V*B, 3, S, S), view by view
    flat = maps.flatten(0, 1)  # (V*B, 3, 3), in the images' order
    out = model(images, (maps @ K).flatten(0, 1))
    back = torch.linalg.inv(flat)
    shown = {}
    for key in ("kp2d_init", "kp2d"):
        # One dtype for the matmul: a float32 network's 2D goes back through float64 maps (a
        # float64 K) in float64, a bfloat16 network's through float32 maps in float32.
        dtype = torch.promote_types(back.dtype, out[key].dtype)
        shown[key] = apply_affine(back.to(dtype), out[key].to(dtype))
    return {
        key: value.unflatten(0, maps.shape[:2]).mean(dim=0)  # (V, B, ...) -> (B, ...)
        for key, value in (shown | {"kp3d": out["kp3d"]}).items()
    }


def self_crop(
    model: nn.Module,
    view: Callable[[Tensor], Tensor],
    K: Tensor,
    frame_size: tuple[int, int],
    *,
    image_size: int,
    cropping: SelfCropping,
) -> dict[str, Tensor]:
    """Predict with crops placed by the model's own 2D keypoints (no ground truth).

    The first view is the whole frame at one scale (:func:`frame_square`), as the crop-trained
    model saw a share of its training images (:mod:`hopose.data.synthetic`).

    Args:
        model: a :class:`~hopose.models.HoposeNet` (``model(image, K)``).
        view: maps affine maps (V, B, 3, 3) to the network images (V, B, 3, S, S) they show
            (a pass's V views of the B frames asked for together, so that a frame is read once
            for all of them).
        K: (B, 3, 3) intrinsics of the frames.
        frame_size: (width, height) of the frames in pixels.
        image_size: S, the network's input side.
        cropping: the crops after the whole-frame pass (0: the whole frame only), their margin
            (:func:`square_around`) and the views of the last one whose predictions are
            averaged (:class:`CropViews`).

    Returns:
        ``kp2d_init`` and ``kp2d`` (B, 29, 2) in frame pixels (in the wider of the model's and
        K's dtypes) and ``kp3d`` (B, 29, 3) of the last pass (averaged over its views), and
        ``affine`` (B, 3, 3), the map of its first view, in K's dtype.
    """
    maps = crop_affine(*frame_square(frame_size, K), image_size).expand(1, len(K), 3, 3)
    out = _mean_over_views(model, view, K, maps)
    for index in range(cropping.passes):
        shown = cropping.views if index == cropping.passes - 1 else SINGLE_VIEW
        square = square_around(out["kp2d"], cropping.margin)
        placed = shown.affines(*square, image_size)  # (V, B, 3, 3)
        # A frame whose 2D is not finite (a diverged prediction) places no square: it keeps its
        # view, so its output stays non-finite (scored as an infinite error) and no view is
        # asked for a map of NaNs (the synthetic renderer raises on one).
        finite = placed.flatten(-2).isfinite().all(dim=-1).all(dim=0)[None, :, None, None]
        maps = torch.where(finite, placed, maps[:1])  # (V, B, 3, 3)
        out = _mean_over_views(model, view, K, maps)
    return {**out, "affine": maps[0]}


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s weights, where its inputs must be; the CPU for a module
    without weights (a stand-in network that computes its answer)."""
    weight = next(model.parameters(), None)
    return torch.device("cpu") if weight is None else weight.device


def self_crop_image(
    model: nn.Module,
    image: np.ndarray,
    K: Tensor,
    *,
    image_size: int,
    cropping: SelfCropping,
) -> tuple[Tensor, Tensor]:
    """:func:`self_crop` on one photo of any size, its views warped from its pixels.

    Args:
        model: a :class:`~hopose.models.HoposeNet`.
        image: (H, W, 3) uint8 RGB. K: (3, 3) the photo's intrinsics.
        image_size: the network's input side. cropping: see :func:`self_crop`.

    Returns:
        kp2d (29, 2) in the photo's pixels and kp3d (29, 3) mm, on the CPU whatever the model's
        device.
    """
    # Photo and K on the model's device: the views are warped there and every pass's maps
    # follow K's device.
    device = model_device(model)
    # Converted to float once, and each shrink made once, for every pass's views.
    frame = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(device)
    warp = FrameWarp(frame, image_size)
    height, width = image.shape[:2]
    with torch.inference_mode():
        out = self_crop(
            model, warp.views, K[None].float().to(device), (width, height),
            image_size=image_size, cropping=cropping,
        )  # fmt: skip
    return out["kp2d"][0].float().cpu(), out["kp3d"][0].float().cpu()
