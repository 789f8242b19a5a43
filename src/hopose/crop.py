"""Square crops around hand and object as 2D affine maps, and the network images they show.

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
- :func:`mirror_affine`, :func:`mirror_camera`: an image and its camera mirrored left-right, as
  the loaders show a left hand (a right hand's mirror image) and ``hopose predict --left`` reads
  one.
- :func:`inside_frame`: which pixel coordinates lie inside an image (the rule of the heat-map
  loss and of the renderer's black beyond the frame).

Self-cropping at inference, squares placed by the model's own 2D, is :mod:`hopose.self_crop`.

Pixel centres sit at integer coordinates (docs/datasets.md,
:func:`hopose.geometry.scale_intrinsics`, the renderer of :mod:`hopose.data.render`): pixel
(i, j) of an image with intrinsics K shows the ray ``K⁻¹ [i, j, 1]``, so network pixel q of the
view A shows frame point ``A⁻¹ q`` exactly, as in the views the synthetic data render with
``A @ K``.

Shapes are jaxtyping annotations (B frames, M points, V views of each frame, S the views' side;
``*batch``: the same leading dimensions for every argument, ``*#batch``: broadcast against each
other), checked at run time in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, UInt8
from torch import Tensor


def resize_affine(
    frame_size: tuple[int, int], image_size: int, like: Tensor
) -> Float[Tensor, "3 3"]:
    """The map of a (width, height) frame onto an ``image_size`` square (aspect not kept), in
    ``like``'s dtype and device.

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


def edge_aligned_scale(scale: Float[Tensor, " 2"]) -> Float[Tensor, "3 3"]:
    """The map of an image onto a copy ``scale`` = (s_x, s_y) times its size whose outer
    pixel edges are the image's (a whole-image resize, or the f x f supersampling of a render
    read the other way): with pixel centres at integers, u goes to ``s u + (s - 1) / 2``.

    Args:
        scale: the copy's size over the image's, per axis.
    """
    A = torch.eye(3, dtype=scale.dtype, device=scale.device)
    # Through the diagonal's view, not a list index, whose index tensor a GPU copies from the host.
    A.diagonal()[:2], A[:2, 2] = scale, (scale - 1) / 2
    return A


def crop_affine(
    centre: Float[Tensor, "*batch 2"],
    side: Float[Tensor, "*batch"],
    image_size: int,
    angle: Float[Tensor, "*batch"] | None = None,
) -> Float[Tensor, "*batch 3 3"]:
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
        centre, side: the squares' centres and sides, frame pixels. angle: None for 0.
    """
    scale = image_size / side
    angle = torch.zeros_like(side) if angle is None else angle
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    # Rows of s R with R = [[cos, sin], [-sin, cos]]: counter-clockwise on a y-down screen.
    linear = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    shift = image_size / 2 - (linear @ centre[..., None])[..., 0]  # (..., 2)
    A = torch.zeros(*side.shape, 3, 3, dtype=side.dtype, device=side.device)
    A[..., :2, :2], A[..., :2, 2], A[..., 2, 2] = linear, shift, 1.0
    return A


def square_around(
    points: Float[Tensor, "*batch M 2"], margin: float
) -> tuple[Float[Tensor, "*batch 2"], Float[Tensor, "*batch"]]:
    """Centre and side of the square around points, widened by ``margin`` × the tight side on
    each side (at least 1 px).

    Points with a NaN coordinate (a real dataset's missing annotation) are left out. The
    training crops (:func:`hopose.data.transforms.square_crop_box`) and self-cropping's squares
    are both placed by this function."""
    missing = points.isnan().any(dim=-1, keepdim=True)  # (..., M, 1)
    low = points.masked_fill(missing, float("inf")).amin(dim=-2)
    high = points.masked_fill(missing, float("-inf")).amax(dim=-2)
    side = (high - low).amax(dim=-1).clamp_min(1.0) * (1 + 2 * margin)
    return (low + high) / 2, side


def frame_square(
    frame_size: tuple[int, int] | Sequence[tuple[int, int]], like: Tensor
) -> tuple[Float[Tensor, "B 2"], Float[Tensor, " B"]]:
    """Centre and side of the square of each frame's longer side around
    ``(width / 2, height / 2)``, in ``like``'s dtype and device: B = 1 for one ``frame_size``
    (width, height), one per frame for a sequence of them (frames of different sizes).

    With pixel centres at integers the frame spans -0.5 ... ``width - 0.5`` and its centre is
    ``((width - 1) / 2, (height - 1) / 2)``: the square is centred half a frame pixel right of
    and below it. Through :func:`crop_affine` onto S pixels (``s = S / max(width, height)``)
    the frame's edges -0.5 and ``width - 0.5`` (of the longer side) go to ``-s / 2`` and
    ``S - s / 2``: the view's first column is partly beyond the frame (zeros there) and the
    frame's last ``(1 - s) / 2`` network pixels are not shown (docs/conventions.md §6).
    """
    size = torch.as_tensor(frame_size, dtype=like.dtype, device=like.device).reshape(-1, 2)
    return size / 2, size.amax(dim=-1)


# Share of jittered square-crop samples that show the whole frame (self-cropping's first view):
# the first pass only places the crop, so most samples train the crop pass (docs/from_pixels.md).
WHOLE_FRAME_SHARE = 0.15
# The jitter of every sample, the whole frame's too: scale ×0.8-1.25 (uniform in log), shift ±10%
# of the side per axis, turn ±30° (the whole frame's ±10° only).
JITTER_SCALE = (0.8, 1.25)
JITTER_SHIFT = 0.1
JITTER_TURN = np.pi / 6
WHOLE_FRAME_TURN = np.pi / 18


def jittered_square(
    centre: Float[Tensor, "1 2"],
    side: Float[Tensor, " 1"],
    frame_size: tuple[int, int],
    image_size: int,
    rng: np.random.Generator,
) -> Float[Tensor, "1 3 3"]:
    """A training crop's map: the square of ``centre`` and ``side`` frame pixels (around hand
    and object) of one frame randomly scaled, shifted and turned, or, for a share
    :data:`WHOLE_FRAME_SHARE` of the draws, the whole frame (:func:`frame_square`), slightly
    jittered, as self-cropping's first pass sees it.

    Returns:
        The map of the frame onto the ``image_size`` square (:func:`crop_affine`), in
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


# x -> -x: the camera-frame half of a left-right mirror (:func:`mirror_camera`).
MIRROR_X = (-1.0, 1.0, 1.0)


def mirror_affine(width: int, like: Tensor | None = None) -> Float[Tensor, "3 3"]:
    """The left-right flip of a ``width``-wide image's pixels, u -> W - 1 - u (pixel centres
    at integers), in ``like``'s dtype and device (float64 on the CPU when None); its own
    inverse."""
    flip = [[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    if like is None:
        return torch.tensor(flip, dtype=torch.float64)
    return torch.tensor(flip, dtype=like.dtype, device=like.device)


def mirror_camera(K: Float[Tensor, "*batch 3 3"], width: int) -> Float[Tensor, "*batch 3 3"]:
    """The intrinsics of the mirror image of a ``width``-wide image with intrinsics ``K``:
    ``F K diag(-1, 1, 1)``, F the :func:`mirror_affine`, so that a point (-x, y, z) projects
    at W - 1 - u where (x, y, z) projected at u: cx -> W - 1 - cx, the skew negated, fx, fy and
    cy kept. Its own inverse."""
    return mirror_affine(width, K) @ K @ torch.diag(K.new_tensor(MIRROR_X))


def inside_frame(
    uv: Float[Tensor, "*batch 2"] | Float[np.ndarray, "*batch 2"], size: tuple[int, int]
) -> Bool[Tensor, "*batch"] | Bool[np.ndarray, "*batch"]:
    """Which pixel coordinates lie inside an image, pixel centres at integers: its outer edges
    are -0.5 and ``width - 0.5`` (``height - 0.5``), the first edge in, the last out.

    Args:
        uv: pixel coordinates, a tensor or a numpy array.
        size: (width, height) of the image in pixels.

    Returns:
        Booleans of ``uv``'s kind; False where a coordinate is NaN.
    """
    width, height = size
    u, v = uv[..., 0], uv[..., 1]
    return (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)


def apply_affine(
    A: Float[Tensor, "*#batch 3 3"], points: Float[Tensor, "*#batch M 2"]
) -> Float[Tensor, "*#batch M 2"]:
    """Points mapped by affine maps, broadcast against each other's batch dimensions."""
    return points @ A[..., :2, :2].transpose(-1, -2) + A[..., None, :2, 2]


def _block_means(x: Tensor, shrink: int) -> Tensor:
    """(B, C, ⌈H / r⌉, ⌈W / r⌉) the means of (B, C, H, W) images' r × r blocks (r = shrink)."""
    # Whole blocks: zeros beyond the frame's last row and column, as the sampling reads there
    # (a side shorter than the factor, a photo of extreme aspect seen whole, keeps one row or
    # column, mostly dark): ceil_mode keeps the cut blocks and each block's sum is divided by
    # r², not by its pixels inside the frame. The same to the bit as zero-padding to whole
    # blocks first, without the padded copy of the frame, which even a pad of nothing made:
    # 2.4 ms instead of 5.2 for a 1920 x 1080 frame shrunk by 16, one CPU thread
    # (BENCHMARKS.md, "Prediction: photos per forward pass").
    # Block means (area averaging), not an antialiased bilinear resize, whose triangle spans
    # two blocks: the demo's model read such crops of rendered photos 2 px (hand) and 4 px
    # (box) worse (docs/from_pixels.md, "Block means when a view shrinks the photo").
    return F.avg_pool2d(x, shrink, ceil_mode=True, divisor_override=shrink * shrink)


def shrink_factor(A: Float[Tensor, "B 3 3"]) -> int:
    """The integer factor by which frames are shrunk (block means) before views through the
    frame -> network maps A sample them: whole frame pixels per network pixel along a
    side (the square root of |det| of A's linear part), at the closest view, at least 1.

    A ratio within 1e-3 below an integer counts as that integer: in float32 the map of a
    1920-px-wide frame onto 64 px gives 1920 / 64 = 29.999998, which must shrink by 30. No
    maps (B = 0): 1, no view to shrink for.
    """
    if not len(A):  # the max below has no element to reduce
        return 1
    ratio = float(1 / A[:, :2, :2].det().abs().sqrt().max().clamp_min(1e-6))
    return max(1, math.floor(ratio + 1e-3))


class FrameWarp:
    """The network images that affine maps show of a batch of frames (:func:`warp_image`),
    each block-mean shrink of the frames made once.

    Self-cropping warps one photo nine times (the whole frame, the first crop, the last crop's
    7 views), at two or three shrink factors; shrinking a 1920×1080 frame costs more than the
    network's pass over the view it makes (BENCHMARKS.md, "Prediction on photos").

    Args:
        image: uint8 or float frames. image_size: the views' side S.
    """

    def __init__(
        self, image: UInt8[Tensor, "B 3 H W"] | Float[Tensor, "B 3 H W"], image_size: int
    ) -> None:
        self.image_size = image_size
        # Shrunk and sampled in at least float32 (float64 stays float64): grid_sample in float16
        # or bfloat16 read beyond a 320 x 240 frame on the CPU (NaN and 3e38 in the view) and
        # crashed on a 1920 x 1080 one, and a half grid moves the sample points of a 1920-px
        # frame by up to 0.23 px (float16) or 1.9 px (bfloat16) on any device.
        wide = image.to(torch.promote_types(image.dtype, torch.float32))
        # The views' dtype: float32 for uint8 frames, else the frames' own.
        self._dtype = wide.dtype if image.dtype == torch.uint8 else image.dtype
        # The frames by shrink factor, in [0, 1] (uint8 input) or the input's range.
        # Divided in place: one float copy of the frames, not two (a 1920 x 1080 frame is 25 MB).
        self._shrunk = {1: wide.div_(255) if image.dtype == torch.uint8 else wide}

    def __call__(self, A: Float[Tensor, "B 3 3"]) -> Float[Tensor, "B 3 S S"]:
        """The views through frame -> network maps A, one a frame, of :func:`warp_image`'s dtype."""
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
        view = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", align_corners=False)
        return view.to(self._dtype)

    def views(self, maps: Float[Tensor, "V B 3 3"]) -> Float[Tensor, "V B 3 S S"]:
        """The views through maps, V views of each frame: the ``view`` of
        :func:`hopose.self_crop.self_crop`; zero maps give zero views (``torch.stack`` of
        none raises)."""
        if len(maps) == 0:
            frames = self._shrunk[1]
            size = self.image_size
            return frames.new_zeros(0, len(frames), 3, size, size, dtype=self._dtype)
        return torch.stack([self(A) for A in maps])


def warp_image(
    image: UInt8[Tensor, "B 3 H W"] | Float[Tensor, "B 3 H W"],
    A: Float[Tensor, "B 3 3"],
    image_size: int,
) -> Float[Tensor, "B 3 S S"]:
    """The ``image_size`` square that maps A show of frames.

    Each network pixel q (its centre, at integer coordinates) samples the frame bilinearly at
    ``A⁻¹ q``, a frame position with pixel centres at integer coordinates too (zeros outside),
    so that ``A @ K`` is the view's intrinsics to the pixel, as in the synthetic renders. A
    frame much larger than the crop is first shrunk by an integer factor, each pixel the mean of
    its block (area averaging, as a camera's pixel and the renders' supersampling integrate the
    light), so that bilinear sampling does not alias. Several views of the same frames:
    :class:`FrameWarp`.

    Args:
        image: uint8 or float frames. A: frame -> network maps. image_size: S.

    Returns:
        float32 in [0, 1] for uint8 frames, else the frames' range and dtype; half-precision
        frames are shrunk and sampled in float32 and only the views rounded back.
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
    K = batch["K"]
    # Filled on K's device, not copied from the host: the training step's epochs on smaller views.
    A = edge_aligned_scale(torch.full((2,), image_size / width, dtype=K.dtype, device=K.device))
    return {
        **batch,
        "image": small,
        "K": A @ batch["K"],
        "hand_2d": apply_affine(A, batch["hand_2d"]),
        "obj_2d": apply_affine(A, batch["obj_2d"]),
    }
