"""docs/conventions.md §6 image geometry: from a dataset frame in its original camera to a network
record.

Every loader reduces a frame to a :class:`Frame` (the image file, the original intrinsics, and the
hand joints and box corners in the OpenCV camera frame in mm) and :func:`frame_to_record` does
the rest, the same way for every dataset:

* ``crop="resize"`` (default, as in the paper and HOPE-Net): the whole frame is resized to
  ``image_size`` × ``image_size``; the aspect ratio is not kept and K is scaled per axis with
  :func:`hopose.geometry.scale_intrinsics`.
* ``crop="square"``: a square around the projected hand joints and box corners, grown by
  ``margin`` (a fraction of its side on each side), is cut out (zero padding where it leaves the
  frame) and resized; K's principal point is shifted by the crop's corner, then scaled.
* Left hands are mirrored to right ones (:func:`mirror_frame`): x is negated in the camera frame,
  the image is flipped left-right and K's principal point moves to ``W - 1 - cx`` (its skew, if
  any, negated), so projection still holds; the record's ``side`` stays ``"left"`` to say it was
  mirrored.

2D keypoints are never read from the datasets: they are recomputed as ``project_points(3D, K)``
with the final K, so ``hand_2d`` and ``obj_2d`` agree with the 3D annotation exactly.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from hopose.crop import (
    MIRROR_X,
    FrameWarp,
    edge_aligned_scale,
    jittered_square,
    mirror_affine,
    mirror_camera,
    square_around,
)
from hopose.geometry import project_points, scale_intrinsics
from hopose.skeleton import CORNER_SIGNS

log = logging.getLogger(__name__)

CROPS: tuple[str, ...] = ("resize", "square")
# The whole frame, as in the paper and HOPE-Net: the crop of every loader and config by default.
DEFAULT_CROP = CROPS[0]
# What a loader does with a record it cannot read: stop, or skip it and go on.
ON_ERROR: tuple[str, ...] = ("raise", "skip")
# Stop at the first bad record: every loader's and cache writer's default.
DEFAULT_ON_ERROR = ON_ERROR[0]
# Side of the square network image in pixels (the paper's 224), the default of every loader.
DEFAULT_IMAGE_SIZE = 224
# Fraction of the hand-object square added on each side by ``crop="square"``.
DEFAULT_MARGIN = 0.2
# Appended to the error of a frame whose image cannot be read (read_frame_image): on_error
# skips malformed annotations while a loader indexes, not images, which are read frame by frame.
UNREADABLE_IMAGE_HINT = (
    "`hopose data check <dataset> --root <root> --decode` lists every such image, and "
    "`hopose prepare ... --on-error skip` writes a cache without them"
)
_IMAGE_HINT_SUFFIX = f"; {UNREADABLE_IMAGE_HINT}"
# Last seed word of a sample's jitter generator: a real one's default_rng([index, epoch stream,
# JITTER_STREAM]) (the stream: hopose.data.tensor_split.epoch_stream), a synthetic one's
# default_rng([seed, i, JITTER_STREAM]) (beside that sample's other streams,
# hopose.data.synthetic.APPEARANCE_STREAM and FOCAL_STREAM, which it must differ from).
JITTER_STREAM = 3
# Records are in mm (docs/conventions.md §1); HO-3D, DexYCB, ObMan and FPHA's object models are
# in metres.
METRES_TO_MM = 1000.0

# Negating x maps the box corner with signs (sx, sy, sz) to the one with (-sx, sy, sz): reordering
# by this index after a mirror keeps the corners in docs/conventions.md §1 order in a right-handed
# box frame.
MIRROR_CORNER_ORDER: tuple[int, ...] = tuple(
    CORNER_SIGNS.index((-sx, sy, sz)) for sx, sy, sz in CORNER_SIGNS
)


class DataFileError(ValueError):
    """A dataset file is missing, unreadable or malformed; the message names the file."""


@dataclass(frozen=True)
class Frame:
    """One annotated frame in its dataset's original camera, before any resize.

    Attributes:
        image_path: the RGB image on disk.
        orig_K: (3, 3) intrinsics of the original image.
        orig_size: (width, height) of the original image in pixels.
        hand_3d: (21, 3) joints, OpenCV camera frame, mm, canonical order.
        obj_3d: (8, 3) box corners, OpenCV camera frame, mm, canonical corner order.
        side: "right" or "left", the hand as recorded.
        object: object name.
        id: "dataset/subject/sequence/frame".

    Raises:
        DataFileError: naming the image, when a joint or corner lies at or behind the camera
            (NaN, a point not annotated, is let through).
    """

    image_path: Path
    orig_K: np.ndarray
    orig_size: tuple[int, int]
    hand_3d: np.ndarray
    obj_3d: np.ndarray
    side: str
    object: str
    id: str

    def __post_init__(self):
        # A point at or behind the camera projects to infinity, or through the centre to the
        # wrong side of the image: finite 2D that no later check could tell from a label. Only
        # a broken label or a misread convention (an extrinsic's sign, OpenGL's -z) makes one.
        # NaN is a point not annotated (HO-3D's evaluation split), not one behind the camera.
        depths = np.concatenate([np.asarray(self.hand_3d)[:, 2], np.asarray(self.obj_3d)[:, 2]])
        outside = int(np.count_nonzero(depths <= 0))
        if outside:
            raise DataFileError(
                f"{self.image_path}: its labels ({self.id}) put {outside} of the "
                f"{len(depths)} keypoints at or behind the camera (z <= 0)"
            )


@contextmanager
def _opened_image(path: Path, what: str) -> Iterator[Image.Image]:
    """The image at ``path`` opened with Pillow; a missing file, or one Pillow cannot ``what``
    ("decode image", say) while open, raises DataFileError naming it."""
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: image file not found") from error
    # Pillow's UnidentifiedImageError is an OSError; a damaged header can raise SyntaxError.
    except (OSError, SyntaxError) as error:
        raise DataFileError(f"{path}: cannot {what} ({error})") from error


def read_image(path: Path, min_size: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode an RGB image; a missing or corrupt file raises DataFileError.

    Args:
        path: the image file.
        min_size: when given, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
            scaling, several times faster) as long as the result is at least this (w, h).
    """
    with _opened_image(path, "decode image") as image:
        if min_size is not None:
            image.draft("RGB", min_size)
        return image.convert("RGB")


def read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header only, without decoding the pixels."""
    with _opened_image(path, "read image header") as image:
        return image.size


def read_pickle(path: Path, keys: tuple[str, ...]) -> dict:
    """Load an annotation pickle (Python 2 ones too) that must hold ``keys``.

    Raises:
        DataFileError: naming the file if it is missing, unreadable, not a dict or lacks a key.
    """
    try:
        with open(path, "rb") as file:
            data = pickle.load(file, encoding="latin1")
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: annotation file not found") from error
    # A damaged pickle fails in many ways: a bad opcode, a truncated stream, or a length field
    # that asks for more memory than there is (MemoryError, OverflowError).
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        MemoryError,
        OverflowError,
    ) as error:
        raise DataFileError(f"{path}: cannot unpickle ({type(error).__name__}: {error})") from error
    except OSError as error:
        raise DataFileError(f"{path}: cannot read ({error})") from error
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected a dict, got {type(data).__name__}")
    missing = [key for key in keys if data.get(key) is None]
    if missing:
        raise DataFileError(f"{path}: missing or empty keys {missing}")
    return data


def as_points(value, shape: tuple[int, ...], source: str) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape``, or a DataFileError naming ``source``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:  # strings, ragged lists, objects
        raise DataFileError(f"{source}: expected numbers of shape {shape} ({error})") from error
    if array.shape != shape:
        raise DataFileError(f"{source}: expected finite values of shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise DataFileError(f"{source}: expected finite values of shape {shape}, got NaN or inf")
    return array


def as_intrinsics(value, source: str) -> np.ndarray:
    """``value`` as a pinhole camera's (3, 3) K, or a DataFileError naming ``source``.

    K must be upper triangular with fx, fy > 0 and last row (0, 0, 1): then it is invertible
    (det = fx fy) and the rays it gives (:func:`hopose.geometry.unproject_points`) point forward,
    as the projection of every record and the network's K⁻¹ assume.
    """
    K = as_points(value, (3, 3), source)
    if K[0, 0] <= 0 or K[1, 1] <= 0 or K[1, 0] != 0 or not np.array_equal(K[2], [0.0, 0.0, 1.0]):
        raise DataFileError(
            f"{source}: expected pinhole intrinsics [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with "
            f"fx, fy > 0, got {K.tolist()}"
        )
    return K


def mirror_frame(frame: Frame) -> Frame:
    """Mirror a frame left-right in the camera frame: x -> -x, K -> F K diag(-1, 1, 1).

    Pixel centres sit at integer coordinates (docs/conventions.md §1), so a left-right flip of a
    W-wide image is ``F = [[-1, 0, W - 1], [0, 1, 0], [0, 0, 1]]``, u -> ``W - 1 - u``; a point
    (-x, y, z) projects there exactly with ``K' = F K diag(-1, 1, 1)``: cx -> ``W - 1 - cx`` and
    the skew ``K[0, 1]`` negated (:func:`as_intrinsics` accepts a skewed K), fx, fy and cy kept
    (:func:`hopose.crop.mirror_camera`). Corners are reordered by :data:`MIRROR_CORNER_ORDER`.
    ``side`` is kept: the caller flips the image pixels (see :func:`frame_to_record`).
    """
    flip = np.array(MIRROR_X)
    K = mirror_camera(torch.as_tensor(frame.orig_K, dtype=torch.float64), frame.orig_size[0])
    return replace(
        frame,
        orig_K=K.numpy(),
        hand_3d=frame.hand_3d * flip,
        obj_3d=(frame.obj_3d * flip)[list(MIRROR_CORNER_ORDER)],
    )


def square_crop_box(points_2d: np.ndarray, margin: float) -> tuple[float, float, float]:
    """Square (x0, y0, side) around 2D points, grown by ``margin`` × side on each side.

    Args:
        points_2d: (P, 2) pixel positions in the original image.
        margin: fraction of the tight square's side added on each side.
    """
    points = torch.as_tensor(np.asarray(points_2d, dtype=np.float64))[None]  # (1, P, 2)
    centre, side = square_around(points, margin)
    (x, y), size = centre[0].tolist(), float(side[0])
    return x - size / 2, y - size / 2, size


def image_geometry(
    frame: Frame, image_size: int, crop: str, margin: float = DEFAULT_MARGIN
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Intrinsics of the network image and the region (x0, y0, x1, y1) of the original it shows.

    Returns:
        ``(K, box)``: (3, 3) float64 K for the ``image_size``² image and the source box in
        original pixels (the whole frame for ``"resize"``).
    """
    width, height = frame.orig_size
    K = torch.as_tensor(frame.orig_K, dtype=torch.float64)
    if crop == "resize":
        box = (0.0, 0.0, float(width), float(height))
    elif crop == "square":
        points = np.concatenate([frame.hand_3d, frame.obj_3d])  # (29, 3)
        pixels = project_points(torch.as_tensor(points, dtype=torch.float64), K).numpy()
        x0, y0, side = square_crop_box(pixels, margin)
        box = (x0, y0, x0 + side, y0 + side)
        K = K.clone()
        K[0, 2] -= x0
        K[1, 2] -= y0
    else:
        raise ValueError(f"crop: expected one of {CROPS}, got {crop!r}")
    scale_x = image_size / (box[2] - box[0])
    scale_y = image_size / (box[3] - box[1])
    return scale_intrinsics(K, scale_x, scale_y).numpy(), box


def wrap_index(index: int, length: int) -> int:
    """``index`` in 0 ... ``length`` - 1, negative ones counted from the end as a sequence's.

    Raises:
        IndexError: when ``index`` is out of range.
    """
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for {length} samples")
    return index % length


def check_on_error(on_error: Any, field: str = "on_error") -> None:
    """Refuse an ``on_error`` outside :data:`ON_ERROR`, naming ``field``."""
    if on_error not in ON_ERROR:
        raise ValueError(f"{field}: expected one of {ON_ERROR}, got {on_error!r}")


def check_margin(margin: Any, field: str = "margin") -> None:
    """Refuse a square crop's margin that is not a number >= 0, naming ``field``: a bool would
    pass for 0 or 1, and NaN fails the comparison."""
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin >= 0:
        raise ValueError(f"{field}: expected a share of the square's side >= 0, got {margin!r}")


def check_jitter(jitter: Any, crop: str, field: str = "jitter") -> None:
    """Refuse a ``jitter`` option that is not a boolean, or on without square crops, naming
    ``field`` and the crop's field: a loader's ``crop`` beside its ``jitter``, a config's
    ``data.crop`` beside its ``data.options.jitter`` (the options' sibling), so that the
    ``--set`` that gave either is the one blamed.

    A config's free-form options reach the loaders unconverted, and a string, even "false",
    would count as on. The whole frame (``crop="resize"``) has no square to jitter: asking for
    both would train on plain frames while the config says jittered.
    """
    if not isinstance(jitter, bool):
        raise ValueError(f"{field}: expected true or false, got {jitter!r}")
    if jitter and crop != "square":
        options = field.rpartition(".")[0]
        crop_field = f"{options.rpartition('.')[0]}.crop".lstrip(".")
        raise ValueError(
            f"{field}: true jitters square crops, but {crop_field} is {crop!r}: set "
            f"{crop_field} to 'square' or {field} to false"
        )


def read_frame_image(
    frame: Frame, min_size: tuple[int, int] | None = None
) -> tuple[Image.Image, float]:
    """The frame's image (:func:`read_image`, a JPEG decoded at 1/2, 1/4 or 1/8 when
    ``min_size`` allows), and the scale it was decoded at.

    Decoded at 1/k the image is ceil(W / k) wide, its last column partly padding when k does
    not divide W: the scale is 1/k, not the decoded width over W. Pixel edges scale exactly by
    it; pixel centres, with centres at integers, go from u to ``u / k + (1 / k - 1) / 2``.

    Raises:
        DataFileError: naming the file, when it has not the size the annotation assumes
            (``frame.orig_size``: a wrong file or layout), or cannot be read; the message
            ends with :data:`UNREADABLE_IMAGE_HINT`.
    """
    width, height = frame.orig_size
    try:
        found = read_image_size(frame.image_path)
        if found != (width, height):
            raise DataFileError(
                f"{frame.image_path}: image is {found[0]}x{found[1]}, expected {width}x{height}"
            )
        image = read_image(frame.image_path, min_size)
    except DataFileError as error:
        # Training, evaluation and prepare stop at the first such frame, hours in perhaps:
        # say how to find the others at once, and how to go on without them.
        raise DataFileError(f"{error}{_IMAGE_HINT_SUFFIX}") from error
    return image, 1.0 / 2.0 ** round(math.log2(width / image.size[0]))


def without_image_hint(message: str) -> str:
    """An error's message without the hint :func:`read_frame_image` ends it with, for a caller
    that already does what it advises (``hopose prepare --on-error skip``)."""
    return message.removesuffix(_IMAGE_HINT_SUFFIX)


def view_frames(frame: Frame, affines: np.ndarray, image_size: int) -> np.ndarray:
    """The (V, S, S, 3) uint8 images, S = ``image_size``, that affine maps (V, 3, 3) of the
    frame's pixels onto the network image's show, black beyond the frame (bilinear, after block
    means when shrinking: :class:`hopose.crop.FrameWarp`). The maps are of the record's frame, a
    left hand's mirrored one, in which the record's ``orig_K`` projects
    (:func:`frame_to_record`).

    The frame's image is read once for all V views (self-cropping's 7 views of its last crop),
    a JPEG decoded no finer than the most detailed view needs (libjpeg's 1/2, 1/4 or 1/8
    scaling). At 224 px, a 1920×1080 frame seen whole in a square (self-cropping's first view:
    1920 columns onto 224, 1/8 is enough) is decoded at 240×135, but resized whole
    (``crop="resize"``: 1080 rows onto 224, more than 1/8's 135) at 480×270; a square the view
    shrinks to half or less (448 to 895 px) at 960×540: 7 to 10 times faster than a full-size
    decode (BENCHMARKS.md, ``benchmarks/bench_views.py``).
    """
    width, height = frame.orig_size
    A = np.asarray(affines, dtype=np.float64)
    if frame.side == "left":  # the image's column u is the mirrored frame's W - 1 - u
        A = A @ mirror_affine(width).numpy()
    # Network px per frame px, in the most detailed view: each map's largest singular value.
    stretch = float(np.linalg.svd(A[:, :2, :2], compute_uv=False)[:, 0].max())
    min_size = (max(1, math.ceil(width * stretch)), max(1, math.ceil(height * stretch)))
    decoded, scale = read_frame_image(frame, min_size)
    # Decoded at 1/k, pixel j averages the frame's pixels k j ... k j + k - 1: the edge-aligned
    # scale 1/k.
    A = A @ np.linalg.inv(edge_aligned_scale(torch.tensor([scale, scale])).double().numpy())
    image = torch.from_numpy(np.array(decoded)).permute(2, 0, 1)[None]  # (1, 3, h, w) uint8
    maps = torch.from_numpy(A)[:, None]  # (V, 1, 3, 3): V views of the one frame
    warped = FrameWarp(image, image_size).views(maps)[:, 0]  # (V, 3, S, S) in [0, 1]
    return (warped * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def frame_to_record(
    frame: Frame,
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    crop: str = DEFAULT_CROP,
    margin: float = DEFAULT_MARGIN,
    with_images: bool = True,
    jitter: np.random.Generator | None = None,
) -> dict:
    """The docs/conventions.md §6 record of a frame: image, K, 3D and reprojected 2D, original
    camera.

    Args:
        frame: the frame in its original camera.
        image_size: side of the square network image, pixels.
        crop: "resize" (whole frame) or "square" (hand-object square with ``margin``).
        margin: see :func:`square_crop_box`.
        with_images: when False, ``image`` is a (0, 0, 3) placeholder and no pixel is read.
        jitter: with ``crop="square"``, the generator of a training crop's jitter: the square
            randomly scaled, shifted and turned, or the whole frame
            (:func:`hopose.crop.jittered_square`), cut by :func:`view_frames`; K is then the
            view's map @ the (mirrored) original K. None: the square as it is.

    Returns:
        A dict with the keys of :data:`hopose.data.sample.SAMPLE_KEYS`; arrays are float32.
    """
    seen = mirror_frame(frame) if frame.side == "left" else frame
    K, box = image_geometry(seen, image_size, crop, margin)
    if jitter is not None and crop == "square":
        centre = torch.tensor([[box[0] + box[2], box[1] + box[3]]], dtype=torch.float64) / 2
        side = torch.tensor([box[2] - box[0]], dtype=torch.float64)
        affine = jittered_square(centre, side, frame.orig_size, image_size, jitter)[0].numpy()
        K = affine @ np.asarray(seen.orig_K, dtype=np.float64)
    else:
        # The map of the (mirrored) frame's pixels onto the network image's that K implies.
        affine = K @ np.linalg.inv(np.asarray(seen.orig_K, dtype=np.float64))
    if with_images:
        # The same resampling as predict's and self-cropping's views (hopose.crop.FrameWarp).
        image = view_frames(frame, affine[None], image_size)[0]
    else:
        image = np.zeros((0, 0, 3), dtype=np.uint8)
    K_t = torch.as_tensor(K)
    hand_3d = torch.as_tensor(seen.hand_3d, dtype=torch.float64)
    obj_3d = torch.as_tensor(seen.obj_3d, dtype=torch.float64)
    return {
        "image": image,
        "K": K.astype(np.float32),
        "hand_3d": seen.hand_3d.astype(np.float32),
        "obj_3d": seen.obj_3d.astype(np.float32),
        "hand_2d": project_points(hand_3d, K_t).numpy().astype(np.float32),
        "obj_2d": project_points(obj_3d, K_t).numpy().astype(np.float32),
        # The mirrored original camera, so that projecting this record's 3D into the original
        # resolution (the reprojection metric) lands where the flipped original image shows it.
        "orig_K": np.asarray(seen.orig_K, dtype=np.float32),
        "orig_size": np.asarray(frame.orig_size, dtype=np.float32),
        "side": frame.side,
        "object": frame.object,
        "id": frame.id,
    }


class FrameDataset(Dataset):
    """Base of the real-dataset loaders: ``frame(i)`` is theirs, records are made here.

    Subclasses fill ``self`` with their index in ``__init__`` and implement :meth:`frame` and
    ``__len__``. ``skipped`` lists the ``"file: reason"`` of annotations dropped while indexing
    with ``on_error="skip"`` (FPHA's truncated lines, for example), ``missing`` the folders of
    the split a loader found absent and went on without (DexYCB's subjects and cameras);
    :attr:`left_out` both.

    Args:
        image_size: side of the square network image, pixels.
        crop: "resize" (whole frame, the default) or "square" (hand-object square).
        margin: the square crop's margin, a fraction of its side on each side.
        with_images: False skips reading pixels (``image`` is a (0, 0, 3) placeholder).
        on_error: "raise" on a malformed annotation or frame list line found while indexing
            (in ``__init__``), or "skip" it. What is read later, frame by frame (images, and
            the annotations a loader does not index), raises whatever it says (an image's
            error ends with :data:`UNREADABLE_IMAGE_HINT`).
        jitter: with ``crop="square"``, jitter the square (a training augmentation,
            :func:`hopose.crop.jittered_square`, as the synthetic data's): sample ``i``'s draws
            in epoch ``e`` of a run of seed ``s`` (:meth:`set_epoch`) come from a generator
            seeded with ``(i, epoch_stream(s, e))``, so
            each epoch shows other squares, and a run, resumed or not, with any number of
            workers, the same ones.
    """

    def __init__(
        self,
        *,
        image_size: int = DEFAULT_IMAGE_SIZE,
        crop: str = DEFAULT_CROP,
        margin: float = DEFAULT_MARGIN,
        with_images: bool = True,
        on_error: str = DEFAULT_ON_ERROR,
        jitter: bool = False,
    ):
        if crop not in CROPS:
            raise ValueError(f"crop: expected one of {CROPS}, got {crop!r}")
        if image_size < 1:
            raise ValueError(f"image_size: must be >= 1, got {image_size}")
        check_on_error(on_error)
        check_margin(margin)
        check_jitter(jitter, crop)
        self.image_size, self.crop, self.margin, self.jitter = image_size, crop, margin, jitter
        self.with_images, self.on_error = with_images, on_error
        self.skipped: list[str] = []
        self.missing: list[str] = []
        # The options that define which samples a loader yields, recorded in a cache even when
        # left at their defaults: the jitter, and a subclass's own, e.g. {"protocol": "hope"}.
        self.variant: dict[str, Any] = {"jitter": jitter}
        # The epoch the jitter is drawn for, in shared memory: DataLoader workers, which hold
        # their own copies of the dataset for the whole run, read what set_epoch writes.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def left_out(self) -> list[str]:
        """Everything of the split this loader left out while indexing: the folders found
        ``missing``, then the annotations ``skipped``. Empty where it indexed the whole split
        (frames a loader leaves out by design, DexYCB's without a hand, are none of it)."""
        return [*self.missing, *self.skipped]

    def set_epoch(self, stream: int) -> None:
        """Draw the jitter of the following samples from ``stream``: the training loop passes
        :func:`hopose.data.tensor_split.epoch_stream` of its seed and epoch (the epoch itself
        under seed 0) before each epoch's first batch is asked for."""
        self._epoch.fill_(stream)

    def frame(self, index: int) -> Frame:
        raise NotImplementedError

    def _skip_or_raise(self, error: DataFileError) -> None:
        """Record ``error`` when skipping bad annotations, raise it otherwise."""
        if self.on_error == "raise":
            raise error
        self.skipped.append(str(error))

    def _warn_skipped(self, name: str) -> None:
        if self.skipped:
            log.warning(
                "%s: skipped %d bad annotations, first: %s",
                name,
                len(self.skipped),
                self.skipped[0],
            )

    def views(self, index: int, affines: np.ndarray) -> np.ndarray:
        """Frame ``index`` as the (V, S, S, 3) uint8 images affine maps (V, 3, 3) of its pixels
        show (:func:`view_frames`): the views of self-cropping (docs/training.md), which place
        their squares from the model's own 2D, so that a crop-trained model is evaluated from
        the images with no ground truth placing them."""
        return view_frames(self.frame(index), affines, self.image_size)

    def __getitem__(self, index: int) -> dict:
        # The jitter's seed takes the index: -1 must draw what len - 1 does (and a seed word
        # cannot be negative).
        index = wrap_index(index, len(self))
        return frame_to_record(
            self.frame(index),
            image_size=self.image_size,
            crop=self.crop,
            margin=self.margin,
            with_images=self.with_images,
            jitter=(
                np.random.default_rng([index, int(self._epoch), JITTER_STREAM])
                if self.jitter
                else None
            ),
        )
