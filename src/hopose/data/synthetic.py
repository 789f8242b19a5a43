"""The synthetic dataset hopose ships: the procedural grasps of :mod:`hopose.data.grasps`,
rendered (docs/synthetic.md; the record every dataset yields: docs/conventions.md §6).

Sample i draws every random number from generators of its own, ``numpy.random.default_rng`` of
``[seed, i]`` (pose, :func:`hopose.data.grasps.generate_grasps`), ``[seed, i, 1]``
(appearance), ``[seed, i, 2]`` (a drawn focal scale) and ``[seed, i, 3]`` (a training crop's
jitter), so it is reproducible, index-addressable and the same in every DataLoader worker, and
a pose-only dataset (``with_images=False``) holds exactly the poses of the rendered one. Poses
are generated for blocks of :data:`BLOCK` samples at once and kept once computed, which makes
pose-only records cheap.

Images are rendered by :mod:`hopose.data.render` directly at ``image_size`` with the network
image's intrinsics, from the original camera exactly as the real loaders do
(:func:`hopose.data.transforms.image_geometry`): ``crop="resize"`` scales the whole frame per
axis, ``crop="square"`` cuts the square around the 29 projected keypoints with its margin. With
``jitter`` (a training augmentation, :func:`hopose.crop.jittered_square`, as the real loaders')
that square is randomly scaled (×0.8-1.25), shifted (±10% of its side) and turned (±30°), and a
share :data:`~hopose.crop.WHOLE_FRAME_SHARE` of the samples instead shows the whole frame at one
scale (:func:`hopose.crop.frame_square`, turned by ±10°), the first view of self-cropping; the
network image's K is then ``A @ orig_K``, A the frame -> image affine
map (:mod:`hopose.crop`). Rendering a crop directly is rendering the frame at full resolution and
cutting the crop out, without the resampling; :meth:`SyntheticHandObject.view` renders any
affine view, which is what self-cropping at inference reads (no ground truth places it). The
background clutter is drawn in the network image's pixels, so views of one frame differ in it.
Whatever a view shows beyond the 1920×1080 frame is black, as in a photo cropped past its edge
(the whole frame's square view has black bands above and below it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hopose.crop import jittered_square
from hopose.data.fpha import FPHA_COLOR_K, FPHA_IMAGE_SIZE
from hopose.data.grasps import (
    DEFAULT_FREE_FRACTION,
    Grasps,
    check_free_fraction,
    check_seed,
    generate_grasps,
    project,
)
from hopose.data.transforms import (
    CROPS,
    DEFAULT_CROP,
    DEFAULT_IMAGE_SIZE,
    JITTER_STREAM,
    Frame,
    check_jitter,
    image_geometry,
    wrap_index,
)
from hopose.skeleton import SEGMENTATION_CLASSES

# Least image side: the heat-map head's images are multiples of its tile,
# hopose.models.heads.HEATMAP_TILE (written out, as importing it would import the networks
# into the data package; tests/data/test_synthetic.py pins the two), and a smaller render would
# show the hand in a few pixels (hopose synth and prepare check --image-size against it).
MIN_IMAGE_SIZE = 8
# The largest ``data.image_size`` (px): twice the widest frame of any dataset hopose reads
# (FPHA's 1920 px; HO-3D's and DexYCB's 640, ObMan's 256), past which a network image only
# upsamples its source, and one image already costs more than a GPU should hold per sample (a
# ResNet's first feature map of a 4096 px image is 64 x 2048 x 2048 float32 numbers, 1 GiB).
# Beyond it a side failed only when the first image was allocated (a MemoryError).
# hopose synth and prepare check --image-size against it too.
MAX_IMAGE_SIZE = 4096
BLOCK = 64  # samples whose poses are generated together
# Last seed word of sample i's generators beside its pose's default_rng([seed, i]) (the module
# docstring): its appearance's and its drawn focal scale's; its crop's jitter draws from the
# real loaders' word, JITTER_STREAM. Distinct, so that no two of them draw the same numbers.
APPEARANCE_STREAM = 1
FOCAL_STREAM = 2


class SyntheticHandObject(Dataset):
    """Procedural right hands grasping boxes, as docs/conventions.md §6 records plus a ``grasp``
    key.

    Args:
        num_samples: dataset length.
        seed: non-negative base seed; sample i depends only on (seed, i) (and free_fraction,
            and the camera for its placement).
        image_size: side S of the square network image.
        with_images: False gives pose-only records, much faster, with a (0, 0, 3) ``image``.
        free_fraction: probability of a free (approach/release) frame without contact.
        focal_scale: factor on FPHA's colour focal lengths, positive; or ``(low, high)`` to draw
            one per sample, log-uniformly.
        crop: "resize" (the whole 1920×1080 frame) or "square" (around hand and box), as the
            real loaders' (:mod:`hopose.data.transforms`).
        jitter: with ``crop="square"``, randomly scale, shift and turn the square, or show the
            whole frame (training augmentation; see the module docstring).

    Records: ``image`` (S, S, 3) uint8 ((0, 0, 3) with ``with_images=False``), ``K`` (the
    network image's) and ``orig_K`` (the 1920×1080 frame's) (3, 3) float64, ``hand_3d`` (21, 3),
    ``obj_3d`` (8, 3) float32 mm, ``hand_2d`` (21, 2), ``obj_2d`` (8, 2) float32 pixels (the
    projections of the float64 poses), ``orig_size`` (1920, 1080), ``side`` "right",
    ``object``, ``id`` "synthetic/<seed>/<grasp>/<i>", ``grasp`` and, with images,
    ``segmentation`` (S, S) uint8, what each pixel shows (beyond docs/conventions.md §6:
    :data:`hopose.skeleton.SEGMENTATION_CLASSES`, :func:`hopose.data.render.render_grasp`).
    """

    def __init__(
        self,
        num_samples: int,
        seed: int,
        image_size: int = DEFAULT_IMAGE_SIZE,
        *,
        with_images: bool = True,
        free_fraction: float = DEFAULT_FREE_FRACTION,
        focal_scale: float | Sequence[float] = 1.0,
        crop: str = DEFAULT_CROP,
        jitter: bool = False,
    ):
        # Values from a config's free-form options reach here unchecked (a null, a string).
        for field, value in (
            ("num_samples", num_samples),
            ("seed", seed),
            ("image_size", image_size),
        ):
            if not isinstance(value, Integral) or isinstance(value, bool):
                raise ValueError(f"{field}: expected an integer, got {value!r}")
        if num_samples < 0:
            raise ValueError(f"num_samples: must be >= 0, got {num_samples}")
        check_seed(seed)
        if image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size: must be >= {MIN_IMAGE_SIZE}, got {image_size}")
        check_free_fraction(free_fraction)
        if crop not in CROPS:
            raise ValueError(f"crop: expected one of {CROPS}, got {crop!r}")
        check_jitter(jitter, crop)
        self.num_samples, self.seed, self.image_size = num_samples, seed, image_size
        self.with_images, self.free_fraction, self.crop = with_images, free_fraction, crop
        self.focal_range = focal_range(focal_scale)
        self.jitter = jitter
        # The options that define the samples beside seed and size, recorded in a cache even
        # when left at their defaults (as the real loaders' ``variant``), so that a config asking
        # other ones is refused instead of reading these samples.
        self.variant: dict[str, Any] = {
            "jitter": jitter,
            "free_fraction": float(free_fraction),
            "focal_scale": (
                float(focal_scale) if isinstance(focal_scale, Real) else [*map(float, focal_scale)]
            ),
        }
        self._blocks: dict[int, tuple[Grasps, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.num_samples

    def cameras(self, indices: np.ndarray) -> np.ndarray:
        """(B, 3, 3) intrinsics of the 1920×1080 frame of samples ``indices``."""
        low, high = self.focal_range
        u = np.array(
            [np.random.default_rng([self.seed, int(i), FOCAL_STREAM]).random() for i in indices]
        )
        scale = low * (high / low) ** u  # (B,) log-uniform; exactly low when low == high
        K = np.broadcast_to(FPHA_COLOR_K, (len(indices), 3, 3)).copy()
        K[:, :2, :2] *= scale[:, None, None]
        return K

    def _grasps(self, block: int) -> tuple[Grasps, np.ndarray]:
        """The poses and cameras of block ``block`` (samples block*BLOCK onwards), made once."""
        if block not in self._blocks:
            indices = np.arange(block * BLOCK, min((block + 1) * BLOCK, self.num_samples))
            cameras = self.cameras(indices)
            grasps = generate_grasps(self.seed, indices, self.free_fraction, cameras)
            self._blocks[block] = grasps, cameras
        return self._blocks[block]

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = wrap_index(index, self.num_samples)
        grasps, cameras = self._grasps(index // BLOCK)
        k = index % BLOCK
        hand_3d, obj_3d = grasps.hand_3d[k], grasps.obj_3d[k]
        frame = Frame(
            image_path=Path(),  # rendered, never read
            orig_K=cameras[k],
            orig_size=FPHA_IMAGE_SIZE,
            hand_3d=hand_3d,
            obj_3d=obj_3d,
            side="right",
            object=grasps.object[k],
            id=f"synthetic/{self.seed}/{grasps.grasp[k]}/{index}",
        )
        K, _ = image_geometry(frame, self.image_size, self.crop)
        if self.jitter and self.crop == "square":
            K = self._jittered_affine(index, K @ np.linalg.inv(cameras[k])) @ cameras[k]
        record: dict[str, Any] = {
            "K": K,
            "hand_3d": hand_3d.astype(np.float32),
            "obj_3d": obj_3d.astype(np.float32),
            "hand_2d": project(hand_3d, K).astype(np.float32),
            "obj_2d": project(obj_3d, K).astype(np.float32),
            "orig_K": cameras[k].copy(),
            "orig_size": np.array(FPHA_IMAGE_SIZE),
            "side": "right",
            "object": frame.object,
            "id": frame.id,
            "grasp": grasps.grasp[k],
        }
        if self.with_images:
            record["image"], record["segmentation"] = self._render(index, K, segmentation=True)
        else:
            record["image"] = np.zeros((0, 0, 3), dtype=np.uint8)  # as every loader's pose-only
        return record

    def _jittered_affine(self, index: int, affine: np.ndarray) -> np.ndarray:
        """The square crop ``affine`` (3, 3) (frame -> image) randomly scaled, shifted and turned,
        or the whole frame at one scale (see the module docstring)."""
        S = self.image_size
        # The square the crop shows: the frame pixels that map onto (S / 2, S / 2) and S pixels.
        centre = torch.as_tensor(np.linalg.solve(affine, [S / 2, S / 2, 1.0])[None, :2])
        side = torch.tensor([S / affine[0, 0]], dtype=torch.float64)
        rng = np.random.default_rng([self.seed, index, JITTER_STREAM])
        return jittered_square(centre, side, FPHA_IMAGE_SIZE, S, rng)[0].numpy()

    def view(self, index: int, affine: np.ndarray) -> np.ndarray:
        """Sample ``index`` as the (S, S, 3) uint8 image an affine map (3, 3) of its 1920×1080
        frame shows (for self-cropping: the crop the model's own 2D places)."""
        index = wrap_index(index, self.num_samples)
        _, cameras = self._grasps(index // BLOCK)
        return self._render(index, affine @ cameras[index % BLOCK])

    def views(self, index: int, affines: np.ndarray) -> np.ndarray:
        """:meth:`view` through each of the maps (V, 3, 3): (V, S, S, 3) uint8 images (each
        drawn anew, as a view is)."""
        return np.stack([self.view(index, affine) for affine in affines])

    def _render(
        self, index: int, K: np.ndarray, *, segmentation: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` seen through intrinsics K (3, 3), black beyond the camera's frame
        (and there background in the segmentation, with ``segmentation``:
        :func:`hopose.data.render.render_grasp`)."""
        from hopose.data.render import outside_frame, render_grasp, supersampling

        grasps, cameras = self._grasps(index // BLOCK)
        k = index % BLOCK
        appearance = np.random.default_rng([self.seed, index, APPEARANCE_STREAM])
        drawn = render_grasp(
            grasps.hand_3d[k], grasps.obj_3d[k], K, self.image_size, appearance,
            grasps.object[k], supersample=supersampling(self.image_size),
            segmentation=segmentation,
        )  # fmt: skip
        outside = outside_frame(K @ np.linalg.inv(cameras[k]), FPHA_IMAGE_SIZE, self.image_size)
        if not segmentation:
            drawn[outside] = 0
            return drawn
        image, classes = drawn
        image[outside] = 0
        classes[outside] = SEGMENTATION_CLASSES.index("background")
        return image, classes


def focal_range(focal_scale: Any, field: str = "focal_scale") -> tuple[float, float]:
    """``focal_scale`` (a number or a [low, high] pair) as a (low, high) range of positive
    factors (low == high when fixed); anything else is refused, naming ``field``."""
    if isinstance(focal_scale, Real):
        values: tuple = (focal_scale, focal_scale)
    else:
        try:
            values = tuple(focal_scale)
        except TypeError:  # None, or a number of a type that is not Real
            values = ()
    if len(values) != 2 or not all(
        isinstance(v, Real) and not isinstance(v, bool) and 0 < v < math.inf for v in values
    ):
        raise ValueError(f"{field}: expected a positive number or [low, high], got {focal_scale!r}")
    low, high = sorted(float(v) for v in values)
    return low, high
