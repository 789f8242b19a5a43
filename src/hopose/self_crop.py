"""Self-cropping at inference, on the square crops of :mod:`hopose.crop` (2D affine maps).

- :func:`self_crop` (and :func:`self_crop_photos` for photos of any sizes): inference without
  ground truth placing the crop: a first pass on the whole frame
  (:func:`hopose.crop.frame_square`) gives 2D keypoints, the square around them is cropped and
  the network runs again (``SelfCropping.passes`` times); 2D comes back in frame pixels. With
  no passes (a model trained on whole frames) the one pass reads the whole frame as that
  model was trained to, resized to the square (:func:`hopose.crop.resize_affine`).
- :class:`CropViews`: test-time augmentation of the last self-crop pass, its square also
  turned and shifted, the predictions of all views averaged.
- :class:`SelfCropping`: how a model self-crops at inference (passes, margin, views), read
  from the config it was trained with.

Shapes are jaxtyping annotations (B frames or photos, V views of each), checked at run time in
the tests.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Float, UInt8
from torch import Tensor, nn

from hopose.crop import (
    FrameWarp,
    apply_affine,
    crop_affine,
    frame_square,
    resize_affine,
    square_around,
)
from hopose.models.heads import heatmap_peak

if TYPE_CHECKING:
    from hopose.config import DataConfig


# Fraction of the keypoints' tight square added on each side of the squares self-cropping places
# around a model's own 2D, the default of ``data.self_crop_margin``: wider than the training
# crops' (:data:`hopose.data.transforms.DEFAULT_MARGIN`), because a model's own 2D spans less
# than the truth's (under uncertainty each keypoint's estimate leans to the middle); chosen on
# the validation split (docs/from_pixels.md, "Self-crop margin").
SELF_CROP_MARGIN = 0.45


@dataclasses.dataclass(frozen=True)
class CropViews:
    """The views of a self-crop square whose predictions the last pass averages (test-time
    augmentation, beyond the paper; docs/from_pixels.md, "Test-time views").

    The square itself; with ``turn`` > 0 also the square turned by -``turn`` and +``turn``
    degrees; with ``shift`` > 0 also the square moved by +``shift`` and -``shift`` × its side
    along x, then along y: ``1 + 2 [turn > 0] + 4 [shift > 0]`` views, each one change from
    the square (the turned and shifted combinations gain nothing more, docs/from_pixels.md). Each
    view's intrinsics are its map times the frame's K (:mod:`hopose.crop`), so the rays are
    exact in every view: the 3D of all views is in the one camera frame and averages as it
    is, and the 2D averages in frame pixels. The model was trained on squares turned by up to
    ±30° and shifted by up to ±10% (:func:`hopose.crop.jittered_square`), so such views are
    ones it knows.
    """

    turn: float = 0.0
    shift: float = 0.0

    def __len__(self) -> int:
        return 1 + 2 * (self.turn > 0) + 4 * (self.shift > 0)

    def affines(
        self, centre: Float[Tensor, "B 2"], side: Float[Tensor, " B"], image_size: int
    ) -> Float[Tensor, "V B 3 3"]:
        """The maps of the V views of the squares of ``centre`` and ``side``, in the order
        above, the first the square itself (:func:`hopose.crop.crop_affine`)."""
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


# The names SelfCropping.of gives its margin and single_view in its refusals unless told others:
# the parameters that take them in hopose.evaluate.run_eval and hopose.predict.Predictor.
SELF_CROP_PARAMETERS = ("self_crop_margin", "single_view")
# Why a self-crop option given to ``hopose eval`` or ``hopose predict`` has nothing to act on.
_NOTHING_SELF_CROPPED = (
    "nothing is self-cropped here (ground-truth 2D, ground-truth boxes, or a model trained on "
    "whole frames)"
)


@dataclasses.dataclass(frozen=True)
class SelfCropping:
    """How a model self-crops at inference (:func:`self_crop`): ``passes`` crops after the
    whole-frame pass (0: none, a model trained on whole frames), at ``margin``
    (:func:`hopose.crop.square_around`), the last one's predictions averaged over ``views``.
    :meth:`of` reads it from the model's config."""

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
        names: tuple[str, str] = SELF_CROP_PARAMETERS,
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
            ValueError: ``margin`` or ``single_view`` given where nothing is self-cropped, or
                ``single_view`` where the last crop has no other views. It names the two as
                ``names`` says: the Python parameters by default (:data:`SELF_CROP_PARAMETERS`),
                the options (``--self-crop-margin``, ``--single-view``) from the command line,
                which passes them through :func:`hopose.evaluate.run_eval` and
                :class:`hopose.predict.Predictor`.
        """
        passes = data.self_crop if enabled and data.crop == "square" else 0
        for name, given in zip(names, (margin is not None, single_view), strict=True):
            if given and passes == 0:
                raise ValueError(f"{name}: {_NOTHING_SELF_CROPPED}")
        if margin is not None:  # checked as the config's own field
            data = dataclasses.replace(data, self_crop_margin=margin)
        views = CropViews(data.self_crop_turn, data.self_crop_shift)
        if single_view and views == SINGLE_VIEW:
            raise ValueError(
                f"{names[1]}: this model already predicts from the one square (its "
                "data.self_crop_turn and data.self_crop_shift are 0: no test-time views)"
            )
        return cls(
            passes, data.self_crop_margin, SINGLE_VIEW if passes == 0 or single_view else views
        )


# Whole frames, or ground truth fed: nothing self-cropped.
NO_SELF_CROP = SelfCropping()


def _mean_over_views(
    model: nn.Module, view: Callable[[Tensor], Tensor], K: Tensor, maps: Tensor
) -> dict[str, Tensor]:
    """The model's ``kp2d`` (B, 29, 2) in frame pixels and ``kp3d`` (B, 29, 3), each averaged
    over the views ``maps`` (V, B, 3, 3) (:class:`CropViews`); the 2D is mapped back to the
    frame in the wider of the network's and the maps' (K's) dtypes. With the heat-map head also
    ``heatmap_peak`` (B, 29) (:func:`hopose.models.heads.heatmap_peak`), averaged the same
    way.

    The V × B views go through the network as one batch (half the time of V batches of one
    photo's view on the CPU, BENCHMARKS.md, "Prediction on photos"), so an evaluation's batch
    of frames takes V times the memory of its single view."""
    images = view(maps).flatten(0, 1)  # (V*B, 3, S, S), view by view
    flat = maps.flatten(0, 1)  # (V*B, 3, 3), in the images' order
    out = model(images, (maps @ K).flatten(0, 1))
    # One dtype for the matmul: a float32 network's 2D goes back through float64 maps (a
    # float64 K) in float64, a bfloat16 network's through float32 maps in float32.
    back = torch.linalg.inv(flat)
    dtype = torch.promote_types(back.dtype, out["kp2d"].dtype)
    shown = {"kp2d": apply_affine(back.to(dtype), out["kp2d"].to(dtype)), "kp3d": out["kp3d"]}
    if "heatmaps" in out:
        shown["heatmap_peak"] = heatmap_peak(out["heatmaps"])
    return {
        key: value.unflatten(0, maps.shape[:2]).mean(dim=0)  # (V, B, ...) -> (B, ...)
        for key, value in shown.items()
    }


def self_crop(
    model: nn.Module,
    view: Callable[[Tensor], Tensor],
    K: Float[Tensor, "B 3 3"],
    frame_size: tuple[int, int] | Sequence[tuple[int, int]],
    *,
    image_size: int,
    cropping: SelfCropping,
) -> dict[str, Tensor]:
    """Predict with crops placed by the model's own 2D keypoints (no ground truth).

    The first view is the whole frame at one scale (:func:`hopose.crop.frame_square`), as the
    crop-trained model saw a share of its training images (:mod:`hopose.data.synthetic`); with
    no passes, a model trained on whole frames, the whole frame resized to the square, aspect
    not kept, as it was trained (:func:`hopose.crop.resize_affine`), and nothing else.

    Args:
        model: a :class:`~hopose.models.HoposeNet` (``model(image, K)``).
        view: maps affine maps (V, B, 3, 3) to the network images (V, B, 3, S, S) they show
            (a pass's V views of the B frames asked for together, so that a frame is read once
            for all of them).
        K: intrinsics of the frames.
        frame_size: (width, height) of the frames in pixels, or one such pair per frame
            (frames of different sizes, :func:`self_crop_photos`).
        image_size: S, the network's input side.
        cropping: the crops after the whole-frame pass (0: the whole frame only, resized),
            their margin (:func:`hopose.crop.square_around`) and the views of the last one
            whose predictions are averaged (:class:`CropViews`).

    Returns:
        ``kp2d`` (B, 29, 2) in frame pixels (in the wider of the model's and K's dtypes) and
        ``kp3d`` (B, 29, 3) of the last pass (averaged over its views), with the heat-map head
        its ``heatmap_peak`` (B, 29) (:func:`_mean_over_views`).
    """
    if cropping.passes:
        maps = crop_affine(*frame_square(frame_size, K), image_size).expand(1, len(K), 3, 3)
    else:
        sizes = torch.as_tensor(frame_size).reshape(-1, 2).expand(len(K), 2).tolist()
        maps = torch.stack([resize_affine(tuple(size), image_size, K) for size in sizes])[None]
    out = _mean_over_views(model, view, K, maps)
    for index in range(cropping.passes):
        shown = cropping.views if index == cropping.passes - 1 else SINGLE_VIEW
        # In K's dtype: a network wider than K (``model.double()``) would make maps that K
        # cannot be multiplied by.
        square = square_around(out["kp2d"].to(K.dtype), cropping.margin)
        placed = shown.affines(*square, image_size)  # (V, B, 3, 3)
        # A frame whose 2D is not finite (a diverged prediction) places no square: it keeps its
        # view, so its output stays non-finite (scored as an infinite error) and no view is
        # asked for a map of NaNs (the synthetic renderer raises on one).
        finite = placed.flatten(-2).isfinite().all(dim=-1).all(dim=0)[None, :, None, None]
        maps = torch.where(finite, placed, maps[:1])  # (V, B, 3, 3)
        out = _mean_over_views(model, view, K, maps)
    return out


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s weights, where its inputs must be; the CPU for a module
    without weights (a stand-in network that computes its answer)."""
    weight = next(model.parameters(), None)
    return torch.device("cpu") if weight is None else weight.device


def photo_views(
    images: Sequence[UInt8[np.ndarray, "_ _ 3"]], image_size: int, device: torch.device | str
) -> Callable[[Tensor], Tensor]:
    """The ``view`` of :func:`self_crop` for B photos of any sizes: maps (V, B, 3, 3) to the
    network images (V, B, 3, S, S) they show, photo b's views warped from its own pixels.

    Each photo is put on ``device`` once and gets its own :class:`hopose.crop.FrameWarp`: a
    batch of frames is shrunk by the factor of its closest view (:func:`hopose.crop.shrink_factor`),
    so one warp of several photos would shrink a photo by another's factor, and its views,
    hence its prediction, would depend on the photos it is predicted with.

    Args:
        images: B RGB photos, (H, W, 3), H and W photo by photo.
        image_size: the views' side S. device: where the views are made.
    """
    warps = [
        FrameWarp(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(device), image_size)
        for image in images
    ]

    def view(maps: Float[Tensor, "V B 3 3"]) -> Float[Tensor, "V B 3 S S"]:
        return torch.cat([warp.views(maps[:, b : b + 1]) for b, warp in enumerate(warps)], dim=1)

    return view


def self_crop_photos(
    model: nn.Module,
    images: Sequence[UInt8[np.ndarray, "_ _ 3"]],
    K: Float[Tensor, "B 3 3"],
    *,
    image_size: int,
    cropping: SelfCropping,
) -> dict[str, Tensor]:
    """:func:`self_crop` on B photos of any sizes at once (every pass's views of all of them in
    one forward), each photo's views warped from its own pixels (:func:`photo_views`).

    Args:
        model: a :class:`~hopose.models.HoposeNet`.
        images: B RGB photos, (H, W, 3). K: their intrinsics.
        image_size: the network's input side. cropping: see :func:`self_crop`.

    Returns:
        ``kp2d`` (B, 29, 2) in each photo's pixels and ``kp3d`` (B, 29, 3) mm, and with the
        heat-map head ``heatmap_peak`` (B, 29), in :func:`self_crop`'s dtypes (the 2D in the
        wider of the model's and K's: a float64 K keeps the maps and the 2D's way back to the
        photo in float64), on the CPU whatever the model's device.
    """
    # The photos and K on the model's device: the views are warped there and every pass's maps
    # follow K's device.
    device = model_device(model)
    sizes = [(image.shape[1], image.shape[0]) for image in images]  # (width, height)
    with torch.inference_mode():
        out = self_crop(
            model, photo_views(images, image_size, device), K.to(device), sizes,
            image_size=image_size, cropping=cropping,
        )  # fmt: skip
    return {key: value.cpu() for key, value in out.items()}
