"""Prediction on photos of any size: keypoints, contacts and an overlay per image.

Each photo is read upright, as 8-bit RGB, at a bounded working size (:func:`hopose.photo.
read_photo`) and resized as a whole to the network's square input (the ``resize`` geometry of
docs/conventions.md, aspect not kept, pixel centres at integers: :func:`hopose.crop.warp_image`).
Its camera (:func:`hopose.photo.photo_camera`: ``--K``, ``--fov``, the EXIF focal length or the
default) goes through the same maps (:meth:`hopose.photo.Photo.working_affine`, then the resize)
and is given to the lifter, so the 3D keypoints, in mm, are in that camera's frame; the 2D
keypoints come back to the full-size photo's pixels through the inverse maps. The valid contact
points of the physical affinity loss (paper §3.3) are drawn by projecting them with the same
camera.

From Python, :class:`Predictor` loads a checkpoint once and predicts a photo file, a PIL image or
an (H, W, 3) uint8 array (:func:`hopose.photo.photo_from_image`) into a :class:`Prediction`, or
several photos of any sizes per forward pass (:meth:`Predictor.predict_batch`,
:func:`predict_photos`: every pass reads the views of all of them, each warped from its own
pixels, and each gets what it gets alone, to float round-off). Its errors name its parameters
(``device``, ``K``, ``fov``, ``refine``, ``complete_grasp``), where ``hopose predict`` names
its options (``--device``...). The network always returns one hand and one box: it gives no
confidence and does not tell a photo without them.

:func:`predict_images` (``hopose predict``) runs one over files and folders (a folder: its files
of :data:`IMAGE_SUFFIXES`, by name, not its subfolders), ``batch_size`` photos at a time
(``--batch-size``, default :data:`PREDICT_BATCH_SIZE`): a batch is read, predicted and written
before the next is read. Outputs per image, under a name unique
among the inputs (``photo``, then ``photo-2`` for a second ``photo.jpg`` from another folder):
``<name>.json`` with ``image`` (the input path), ``checkpoint`` (the checkpoint that
predicted it, resolved: :func:`hopose.files.recorded_path`), ``size`` (upright width, height),
``camera``
(``source`` and ``K``, (3, 3) in the photo's pixels), ``hand_2d`` (21, 2) and ``obj_2d`` (8, 2)
in those pixels, ``hand_3d`` (21, 3) and ``obj_3d`` (8, 3) in mm, ``contacts_3d`` and
``contacts_2d``, ``hand_peak`` (21) and ``obj_peak`` (8), the heat maps' peaks
(:attr:`Prediction.hand_peak`; null without the heat-map head), ``side`` ("right" or "left")
and ``overlay``, the name of
``<name>_overlay.jpg`` (null with ``overlay=False``, ``--no-overlay``): the photo at its working
size (longest side at most :data:`hopose.photo.MAX_SIDE`) with the hand in blue, the box in
orange and the contacts in gold, lines :data:`hopose.viz.LINE_WIDTH_FRACTION` of its longest
side wide.
Each file is written whole or not at all (:mod:`hopose.files`). An output folder may hold earlier
predictions (photos added to it): a photo's files replace those of its name, a
``<name>_overlay.jpg`` left from an earlier run removed with ``overlay=False``, and the other
names' files are kept, each JSON naming its own checkpoint. Among several images, one that is
not a readable image is skipped with a warning naming it, and the run ends with a ValueError
counting them. An image of several frames (an animated GIF, a multi-page TIFF), named or in a
folder alike, is predicted from its first frame with a warning naming it and its frames
(:func:`hopose.photo.read_photo`).

Left hands: the models are trained on right hands, the datasets' left ones mirrored
(:func:`hopose.data.transforms.mirror_frame`, docs/conventions.md). A photo of a left hand
(``left``, ``--left``) is mirrored the same way, predicted as a right hand, and every output
mirrored back into the photo's own pixels and camera: u -> W - 1 - u, x -> -x, the box corners
reordered by :data:`hopose.data.transforms.MIRROR_CORNER_ORDER` (:func:`predict_photos`).

Device: ``device`` (``--device``) is one of :data:`hopose.config.AUTO_DEVICES`, "auto" the GPU
when there is one, else the CPU (:func:`hopose.config.resolve_device`, as training's
``device: auto``).
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from hopose import viz
from hopose.checkpoint import load_model
from hopose.config import AUTO_DEVICES, check_device, resolve_device
from hopose.crop import MIRROR_X, apply_affine, mirror_affine, mirror_camera
from hopose.data.transforms import MIRROR_CORNER_ORDER
from hopose.files import output_folder, recorded_path, require_file, write_atomic, write_text
from hopose.geometry import project_points
from hopose.models import HoposeNet
from hopose.photo import (
    Camera,
    Photo,
    check_camera,
    photo_camera,
    photo_from_image,
    read_photo,
)
from hopose.physics import contact_points
from hopose.refine import RefineWeights, refine_pose, refinement
from hopose.self_crop import (
    NO_SELF_CROP,
    SELF_CROP_PARAMETERS,
    SelfCropping,
    self_crop_photos,
)
from hopose.skeleton import NUM_JOINTS

JPEG_QUALITY = 90
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
"""The files a folder given to :func:`predict_images` is read for (any case)."""
KEYPOINTS = ("hand_2d", "obj_2d", "hand_3d", "obj_3d", "contacts_3d", "contacts_2d")
"""The arrays of a :class:`Prediction`, in the JSON's order."""
PEAKS = ("hand_peak", "obj_peak")
"""The heat maps' peaks of a :class:`Prediction` (None without the heat-map head)."""
PREDICT_BATCH_SIZE = 8
"""Photos :func:`predict_images` reads and predicts together (``hopose predict --batch-size``):
enough views a pass to keep a GPU's kernels busy where one photo's leave it idle, and about
300 MB of 1920×1080 photos (40 MB each while predicted: the working copy, its float copy for
the views). On a CPU the photos' own work outweighs the network's calls, and batches predict
about as fast as one photo at a time (BENCHMARKS.md, "Prediction: photos per forward pass")."""


def image_files(paths: Sequence[str | Path]) -> list[Path]:
    """The image files ``paths`` name: a file as it is, a folder as its files whose suffix is
    one of :data:`IMAGE_SUFFIXES` (any case), sorted by name; hidden files (a name starting
    with ".", as the ``._photo.jpg`` macOS leaves on other disks) and subfolders left out.

    Raises:
        FileNotFoundError: naming the first path that is neither a file nor a folder, or a
            folder without image files.
    """
    files = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(require_file(path, "image"))
            continue
        found = sorted(
            entry
            for entry in path.iterdir()
            if entry.suffix.lower() in IMAGE_SUFFIXES
            and not entry.name.startswith(".")
            and entry.is_file()
        )
        if not found:
            raise FileNotFoundError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        files += found
    return files


def output_names(paths: Sequence[str | Path]) -> list[str]:
    """One output name per input, unique whatever the case (``IMG`` and ``img`` are one file
    on the case-insensitive disks of macOS and Windows): the file's stem, then ``stem-2``,
    ``stem-3``..."""
    used: set[str] = set()  # casefolded
    # The last suffix tried per casefolded stem: the names below it stay used, so the next
    # file of that stem starts there (else thousands of folders of frames named alike, as
    # FPHA's and DexYCB's, would try every suffix again: quadratic).
    last_k: dict[str, int] = {}
    names = []
    for path in paths:
        stem = Path(path).stem
        k = last_k.get(stem.casefold(), 1)
        name = stem if k == 1 else f"{stem}-{k}"
        while name.casefold() in used:
            k += 1
            name = f"{stem}-{k}"
        last_k[stem.casefold()] = k
        used.add(name.casefold())
        names.append(name)
    return names


def _mirrored(result: dict, flip: torch.Tensor) -> dict:
    """A :func:`predict_photos` ``result`` in the mirror image of its photo, ``flip`` that photo's
    :func:`hopose.crop.mirror_affine`: 2D flipped, 3D x negated, the box corners reordered by
    :data:`~hopose.data.transforms.MIRROR_CORNER_ORDER` (which keeps them in docs/conventions.md
    §1 order); its own inverse, as every part of it is."""
    order = list(MIRROR_CORNER_ORDER)
    x_flip = torch.tensor(MIRROR_X, dtype=torch.float64)
    return {
        "hand_2d": apply_affine(flip, result["hand_2d"]),
        "obj_2d": apply_affine(flip, result["obj_2d"])[order],
        "hand_3d": result["hand_3d"] * x_flip,
        "obj_3d": (result["obj_3d"] * x_flip)[order],
        "contacts_3d": result["contacts_3d"] * x_flip,
        "contacts_2d": apply_affine(flip, result["contacts_2d"]),
        "hand_peak": result["hand_peak"],
        "obj_peak": None if result["obj_peak"] is None else result["obj_peak"][order],
    }


def predict_photos(
    model: HoposeNet,
    image_size: int,
    photos: Sequence[Photo],
    cameras: Sequence[Camera],
    *,
    cropping: SelfCropping = NO_SELF_CROP,
    refine: RefineWeights | None = None,
    left: Sequence[bool] | None = None,
) -> list[dict]:
    """Run the network on B photos of any sizes at once, each with its camera; returns one dict
    a photo of :data:`KEYPOINTS` (module docstring), float64 tensors in the full-size photo's
    pixels and its camera's frame (mm), and :data:`PEAKS` (:class:`Prediction`; None without
    the heat-map head).

    Every pass reads the views of all B photos in one forward, each photo's views warped from
    its own pixels (:func:`hopose.self_crop.photo_views`), and the refinement is one batch:
    with the network in eval mode a photo's prediction is the one it gets alone, to float
    round-off.

    ``cropping`` with passes (a model trained on crops, :class:`hopose.self_crop.SelfCropping`):
    after the whole-photo pass, that many passes on squares the model places around its own 2D
    (:func:`hopose.self_crop.self_crop_photos`), the last averaged over its views.
    ``refine``: the weights of :func:`hopose.refine.refine_pose` to refine the 3D with, or None.
    ``left``: B flags (None: all False), True where the photo shows a left hand: that photo and
    its camera are mirrored as the datasets' left hands are
    (:func:`hopose.data.transforms.mirror_frame`: K -> F K diag(-1, 1, 1)), all of the above done
    on that right hand, refinement and contacts included, and its outputs mirrored back into the
    photo's pixels and camera.
    The photos go to ``model``'s device (a GPU's too); what is returned is on the CPU.

    Raises:
        ValueError: ``cameras`` or ``left`` not one per photo.
    """
    left = [False] * len(photos) if left is None else list(left)
    for name, values in (("cameras", cameras), ("left", left)):
        if len(values) != len(photos):
            raise ValueError(f"{name}: {len(values)} for {len(photos)} photos; give one a photo")
    if not photos:
        return []
    seen, K = [], []
    for photo, camera, mirrored in zip(photos, cameras, left, strict=True):
        if mirrored:
            # The working copy flipped is the full-size photo's flip seen through the same
            # scales (Photo.working_affine): W - 1 - u lands at w - 1 - u' for w = s W.
            flipped = photo.image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            photo = dataclasses.replace(photo, image=flipped)
        seen.append(photo)
        K.append(mirror_camera(camera.K.double(), photo.size[0]) if mirrored else camera.K)
    results = _predict_right_hands(
        model, image_size, seen, torch.stack(K).double(), cropping=cropping, refine=refine
    )
    return [
        _mirrored(result, mirror_affine(photo.size[0])) if mirrored else result
        for result, photo, mirrored in zip(results, photos, left, strict=True)
    ]


def predict_photo(
    model: HoposeNet,
    image_size: int,
    photo: Photo,
    camera: Camera,
    *,
    cropping: SelfCropping = NO_SELF_CROP,
    refine: RefineWeights | None = None,
    left: bool = False,
) -> dict:
    """:func:`predict_photos` of one photo."""
    return predict_photos(
        model, image_size, [photo], [camera], cropping=cropping, refine=refine, left=[left]
    )[0]


def _predict_right_hands(
    model: HoposeNet,
    image_size: int,
    photos: Sequence[Photo],
    K: torch.Tensor,
    *,
    cropping: SelfCropping,
    refine: RefineWeights | None,
) -> list[dict]:
    """:func:`predict_photos` of B photos of right hands, ``K`` (B, 3, 3) float64 their
    cameras."""
    to_working = torch.stack([photo.working_affine() for photo in photos])  # (B, 3, 3) float64
    K_work = to_working @ K  # the working copies' cameras
    images = [np.asarray(photo.image) for photo in photos]
    out = self_crop_photos(model, images, K_work, image_size=image_size, cropping=cropping)
    peak = out.get("heatmap_peak")
    # (B, 29, 2) photo pixels; (B, 29, 3) mm, in each photo's camera.
    kp2d = apply_affine(torch.linalg.inv(to_working), out["kp2d"].double())
    kp3d = out["kp3d"].double()
    if refine is not None:
        hand, obj = refine_pose(kp3d[:, :NUM_JOINTS], kp3d[:, NUM_JOINTS:], kp2d, K, refine)
        kp3d = torch.cat([hand, obj], dim=1)
    points, _, valid = contact_points(kp3d[:, :NUM_JOINTS], kp3d[:, NUM_JOINTS:])
    results = []
    for b in range(len(photos)):
        contacts_3d = points[b][valid[b]]  # (M, 3)
        results.append({
            "hand_2d": kp2d[b, :NUM_JOINTS],
            "obj_2d": kp2d[b, NUM_JOINTS:],
            "hand_3d": kp3d[b, :NUM_JOINTS],
            "obj_3d": kp3d[b, NUM_JOINTS:],
            "contacts_3d": contacts_3d,
            "contacts_2d": project_points(contacts_3d, K[b]),
            "hand_peak": None if peak is None else peak[b, :NUM_JOINTS].double(),
            "obj_peak": None if peak is None else peak[b, NUM_JOINTS:].double(),
        })  # fmt: skip
    return results


@dataclasses.dataclass(frozen=True, eq=False)
class Prediction:
    """One photo's prediction: float64 arrays in the upright full-size photo's pixels (2D) and
    its camera's frame, in mm (3D), and the camera they are in."""

    hand_2d: np.ndarray
    """(21, 2) joints, px."""
    obj_2d: np.ndarray
    """(8, 2) box corners, px."""
    hand_3d: np.ndarray
    """(21, 3) joints, mm."""
    obj_3d: np.ndarray
    """(8, 3) box corners, mm."""
    contacts_3d: np.ndarray
    """(M, 3) the valid contact points of the physical affinity loss, mm (M may be 0)."""
    contacts_2d: np.ndarray
    """(M, 2) those points projected, px."""
    K: np.ndarray
    """(3, 3) the photo's intrinsics, px."""
    camera_source: str
    """Where K came from (:attr:`hopose.photo.Camera.source`)."""
    size: tuple[int, int]
    """(width, height) of the upright photo at full size."""
    side: str
    """"right", or "left" for a photo predicted as a left hand."""
    hand_peak: np.ndarray | None = None
    """(21,) each joint's heat-map peak (:func:`hopose.models.heads.heatmap_peak`: 1 for a map
    sure of one cell, 1 / (H W) for a flat one), of the last pass, averaged over its views;
    None for a model without the heat-map head. A low value says the network could not place
    the joint (no hand in view, say); it is not a calibrated probability."""
    obj_peak: np.ndarray | None = None
    """(8,) the box corners' peaks, as :attr:`hand_peak`."""


ImageInput = str | os.PathLike | Image.Image | np.ndarray | Photo
"""What :class:`Predictor` predicts: a photo file, a PIL image, an (H, W, 3) RGB or (H, W)
greyscale uint8 array, or a :class:`hopose.photo.Photo` already read."""


def _photo(image: ImageInput) -> Photo:
    """``image`` read as :meth:`Predictor.__call__` reads it."""
    if isinstance(image, Photo):
        return image
    if isinstance(image, str | os.PathLike):
        return read_photo(image)
    return photo_from_image(image)


def _read(image: ImageInput, name: str | None) -> Photo:
    """:func:`_photo`, what it raises (a ValueError, or the OSError of a file missing, its type
    kept) starting with ``name`` where one is given: which photo of several (``images[2]``)."""
    try:
        return _photo(image)
    except (ValueError, OSError) as error:
        if name is None:
            raise
        # A ValueError's subtype may not be made of a message alone; an OSError's type is kept.
        kind = ValueError if isinstance(error, ValueError) else type(error)
        raise kind(f"{name}: {error}") from None


def _per_photo(value: Any, shared: bool, count: int, name: str) -> list:
    """``value`` for each of ``count`` photos: the one value where ``shared``, else a sequence
    of one a photo.

    Raises:
        ValueError: naming ``name``, a sequence of another length.
    """
    if shared:
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise ValueError(
            f"{name}: {len(values)} values for {count} photos; give one for all, or one a photo"
        )
    return values


class Predictor:
    """A checkpoint loaded once to predict photos (:meth:`__call__`, or several per forward
    pass: :meth:`predict_batch`), as ``hopose predict`` does.

    Args:
        checkpoint: a checkpoint written by ``hopose train`` or ``hopose demo``.
        refine: refine the predicted 3D with :func:`hopose.refine.refine_pose` (the box an exact
            cuboid, joints on its surface, projections kept near the predicted 2D).
        complete_grasp: with ``refine``, its grasp-completion stage
            (:attr:`hopose.refine.RefineWeights.complete_grasp`).
        self_crop_margin: the self-crops' margin instead of the checkpoint's
            ``data.self_crop_margin``; None: the checkpoint's.
        single_view: predict from the last self-crop's one square, not averaged over the
            checkpoint's test-time views.
        self_crop_names: the names of ``self_crop_margin`` and ``single_view`` in their
            refusals (``hopose predict`` gives its options': ``--self-crop-margin``,
            ``--single-view``).
        device: where the network runs, one of :data:`hopose.config.AUTO_DEVICES`: "auto"
            (the GPU when there is one, else the CPU), "cpu", "cuda" or "cuda:N".

    The network is put in eval mode (dropout off, batch-norm statistics frozen) on that device.

    Raises:
        ValueError: ``complete_grasp`` without ``refine`` (:func:`refinement`), then a
            ``device`` not of :data:`hopose.config.AUTO_DEVICES` or a GPU this machine lacks
            (a ConfigError naming ``device``), both before the checkpoint is read; a
            ``self_crop_margin`` or ``single_view`` :meth:`hopose.self_crop.SelfCropping.of`
            refuses.
        CheckpointError: an unreadable checkpoint, or one whose encoder or lifter was never
            trained (:func:`hopose.checkpoint.load_model`).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        refine: bool = False,
        complete_grasp: bool = False,
        self_crop_margin: float | None = None,
        single_view: bool = False,
        self_crop_names: tuple[str, str] = SELF_CROP_PARAMETERS,
        device: str = "auto",
    ) -> None:
        self.refine_weights = refinement(refine, complete_grasp, from_images=True)
        check_device(device, "device", AUTO_DEVICES)
        self.model, self.config = load_model(checkpoint)
        self.model.to(resolve_device(device)).eval()
        self.cropping = SelfCropping.of(
            self.config.data, margin=self_crop_margin, single_view=single_view,
            names=self_crop_names,
        )  # fmt: skip

    def __call__(
        self,
        image: ImageInput,
        *,
        K: tuple[float, ...] | None = None,
        fov: float | None = None,
        left: bool = False,
    ) -> Prediction:
        """Predict one photo.

        Args:
            image: a photo file (read upright, its EXIF focal length used:
                :func:`hopose.photo.read_photo`), a PIL image, or an (H, W, 3) RGB or (H, W)
                greyscale uint8 array (taken as it is: :func:`hopose.photo.photo_from_image`),
                or a :class:`hopose.photo.Photo` already read.
            K: (fx, fy, cx, cy) of the photo, in its upright full-size pixels.
            fov: its horizontal field of view in degrees (instead of ``K``); with neither, the
                EXIF focal length of a file, else :data:`hopose.photo.DEFAULT_FOCAL_35MM`.
            left: the photo shows a left hand: it is predicted mirrored, as a right hand, and
                its outputs mirrored back (:func:`predict_photos`).

        Raises:
            FileNotFoundError: a file that does not exist.
            ValueError: an image that is not readable, or an array of another dtype or shape,
                naming it; a ``K`` or ``fov`` that is not a camera
                (:func:`hopose.photo.photo_camera`).
        """
        # One value a photo, so that nothing is read as a value for each photo.
        return self.predict_batch([image], K=[K], fov=[fov], left=[left])[0]

    def predict_batch(
        self,
        images: Sequence[ImageInput],
        *,
        K: tuple[float, ...] | Sequence[tuple[float, ...] | None] | None = None,
        fov: float | Sequence[float | None] | None = None,
        left: bool | Sequence[bool] = False,
    ) -> list[Prediction]:
        """Predict several photos, of any sizes and cameras, in one forward pass a pass
        (:func:`predict_photos`): the same predictions as :meth:`__call__` on each, to float
        round-off. The photos are read and their views made together: memory grows with their
        number (about 40 MB a 1920×1080 photo). On a CPU a batch predicts no faster than one
        photo at a time (0.85–1.04×, BENCHMARKS.md, "Prediction: photos per forward pass"); on
        a GPU, whose kernels one photo's views leave mostly idle, it should (unmeasured).

        Args:
            images: photos, each as :meth:`__call__` takes one (a (B, H, W, 3) uint8 array is
                B photos).
            K: one (fx, fy, cx, cy) for every photo, or a sequence of one a photo (None where
                the photo's ``fov`` or its own camera is to be used).
            fov: one horizontal field of view for every photo, or a sequence of one a photo
                (None: no field of view for that photo).
            left: one flag for every photo, or a sequence of one a photo.

        A ``K`` whose principal point lies outside its photo is said in a warning
        (:func:`hopose.photo.photo_camera`), among several photos naming the photo
        (``images[2]: the principal point ...``).

        Raises:
            ValueError: ``K``, ``fov`` or ``left`` a sequence of another length than ``images``,
                naming it; then, before any image is read, a ``K`` or ``fov`` that is not a
                camera (:func:`hopose.photo.check_camera`), named as it was given: ``K`` for
                one value of every photo, ``K[2]`` for the third photo's own.
            FileNotFoundError, ValueError: an image :meth:`__call__` refuses, among several
                named by its index (``images[2]: image not found: photo.jpg``).
        """
        single = isinstance(images, str | os.PathLike | Image.Image | Photo)
        if single or (isinstance(images, np.ndarray) and images.ndim != 4):
            raise ValueError(
                "images: expected a sequence of photos (or a (B, H, W, 3) array); "
                "predictor(image) predicts one"
            )
        count = len(images)
        # Whether each value is one for every photo (else a sequence of one a photo).
        one_K = K is None or not len(K) or isinstance(K[0], numbers.Real)
        one_fov = fov is None or isinstance(fov, numbers.Real)
        Ks = _per_photo(K, one_K, count, "K")
        fovs = _per_photo(fov, one_fov, count, "fov")
        sides = _per_photo(left, isinstance(left, bool | np.bool_), count, "left")
        # Before any photo is read, each value named as it was given: K for one of every photo
        # (and for the one photo of __call__), K[2] for the third photo's own.
        for index, (k, f) in enumerate(zip(Ks, fovs, strict=True)):
            own = "" if count == 1 else f"[{index}]"
            check_camera(k, f, ("K" if one_K else f"K{own}", "fov" if one_fov else f"fov{own}"))
        photo_names = [f"images[{index}]" if count > 1 else None for index in range(count)]
        photos = [_read(image, name) for image, name in zip(images, photo_names, strict=True)]
        return self._predict(photos, photo_names, Ks, fovs, sides)

    def _predict(
        self,
        photos: Sequence[Photo],
        names: Sequence[str | None],
        K: Sequence[tuple[float, ...] | None],
        fov: Sequence[float | None],
        left: Sequence[bool],
    ) -> list[Prediction]:
        """:meth:`predict_batch` of photos already read, each with its own ``K``, ``fov`` and
        ``left``, checked (:func:`hopose.photo.check_camera`); the warnings of a photo's camera
        name it as ``names`` says (:func:`hopose.photo.photo_camera`)."""
        cameras = [
            photo_camera(photo, K=k, fov=f, name=name)
            for photo, name, k, f in zip(photos, names, K, fov, strict=True)
        ]
        results = predict_photos(
            self.model, self.config.data.image_size, photos, cameras, cropping=self.cropping,
            refine=self.refine_weights, left=left,
        )  # fmt: skip
        return [
            Prediction(
                **{key: result[key].numpy() for key in KEYPOINTS},
                K=camera.K.double().numpy(),
                camera_source=camera.source,
                size=photo.size,
                side="left" if mirrored else "right",
                **{key: None if result[key] is None else result[key].numpy() for key in PEAKS},
            )
            for result, camera, photo, mirrored in zip(results, cameras, photos, left, strict=True)
        ]


def prediction_overlay(photo: Photo, prediction: Prediction) -> Image.Image:
    """:func:`hopose.viz.draw_overlay` of ``prediction`` on ``photo``'s working copy, its 2D
    mapped there (:meth:`hopose.photo.Photo.working_affine`)."""
    to_working = photo.working_affine()  # (3, 3) full-size pixels -> working-copy pixels
    return viz.draw_overlay(
        photo.image,
        *(
            apply_affine(to_working, torch.from_numpy(getattr(prediction, key))).numpy()
            for key in ("hand_2d", "obj_2d", "contacts_2d")
        ),
    )


def _write_prediction(
    out_dir: Path,
    name: str,
    path: Path,
    photo: Photo,
    prediction: Prediction,
    *,
    checkpoint: str,
    refine: bool,
    complete_grasp: bool,
    overlay: bool,
) -> Path:
    """Write ``<name>.json`` (module docstring) of ``photo``, read from ``path`` and predicted
    by ``checkpoint`` (recorded as it is given), and with ``overlay`` its overlay, under
    ``out_dir``; returns the JSON, written after the overlay is written or an earlier one
    removed."""
    drawing = f"{name}_overlay.jpg"
    record: dict[str, Any] = {
        "image": str(path),
        "checkpoint": checkpoint,
        "size": list(prediction.size),
        "side": prediction.side,
        "camera": {"source": prediction.camera_source, "K": prediction.K.tolist()},
        "refined": refine,
        "grasp_completed": refine and complete_grasp,
        **{key: getattr(prediction, key).tolist() for key in KEYPOINTS},
        **{
            key: None if (value := getattr(prediction, key)) is None else value.tolist()
            for key in PEAKS
        },
        "overlay": drawing if overlay else None,
    }
    if overlay:
        drawn = prediction_overlay(photo, prediction)
        write_atomic(out_dir / drawing, lambda tmp: drawn.save(tmp, quality=JPEG_QUALITY))
    else:
        # An earlier run's drawing of this name, another model's or another photo's, would
        # otherwise stay beside a JSON that says there is none.
        (out_dir / drawing).unlink(missing_ok=True)
    return write_text(out_dir / f"{name}.json", json.dumps(record, indent=1) + "\n")


def predict_images(
    checkpoint: str | Path,
    images: Sequence[str | Path],
    out_dir: str | Path,
    *,
    K: tuple[float, ...] | None = None,
    fov: float | None = None,
    refine: bool = False,
    complete_grasp: bool = False,
    self_crop_margin: float | None = None,
    single_view: bool = False,
    self_crop_names: tuple[str, str] = SELF_CROP_PARAMETERS,
    left: bool = False,
    device: str = "auto",
    overlay: bool = True,
    batch_size: int = PREDICT_BATCH_SIZE,
    on_written: Callable[[Path], object] | None = None,
) -> list[Path]:
    """Predict every image and write its JSON and overlay under ``out_dir``; returns the JSONs.

    Args:
        checkpoint, refine, complete_grasp, self_crop_margin, single_view, self_crop_names,
            device: the :class:`Predictor`'s.
        images: photo files, and folders of them (:func:`image_files`).
        out_dir: output folder (created); earlier predictions in it are kept but for the
            files of the names this run writes (module docstring).
        K, fov, left: each photo's, as :meth:`Predictor.__call__` takes them.
        overlay: write each photo's overlay; False: none, the JSON's ``overlay`` null.
        batch_size: photos read and predicted together (:meth:`Predictor.predict_batch`), their
            outputs written when the batch is done; 1: one photo at a time. Only a batch's
            photos are held in memory, whatever the number of images.
        on_written: called with each JSON as soon as it is written (``hopose predict`` prints
            it).

    A principal point of ``K`` outside a photo is said in a warning naming its file
    (:func:`hopose.photo.photo_camera`).

    Raises:
        ValueError, CheckpointError: a ``batch_size`` below 1, then a ``K`` or ``fov`` that is
            not a camera (:func:`hopose.photo.check_camera`), then as :class:`Predictor` raises
            them, before any image is looked for.
        ValueError: ``out_dir`` one of the folders of ``images``, naming it, before the checkpoint
            is read: a later run over that folder would read this one's overlays as photos.
        FileNotFoundError: any of ``images`` missing, or a folder without image files, before
            anything is written.
        ValueError: the one image given not readable, naming it; among several, after the
            others are predicted, counting those that were not (each named in a warning when
            it is skipped).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    check_camera(K, fov)
    out_dir = Path(out_dir)
    # A folder of photos is read for its files, not its subfolders: an out_dir inside one is
    # never read again, the folder itself would be.
    for folder in map(Path, images):
        if folder.is_dir() and folder.resolve() == out_dir.resolve():
            raise ValueError(
                f"{out_dir}: the output folder is the folder of photos {folder}, where the next "
                "run over it would read this one's overlays as photos; choose another --out"
            )
    predictor = Predictor(
        checkpoint,
        refine=refine,
        complete_grasp=complete_grasp,
        self_crop_margin=self_crop_margin,
        single_view=single_view,
        self_crop_names=self_crop_names,
        device=device,
    )
    # Every photo is there before the first is predicted: a mistyped name among several stops
    # the run at once, without the outputs of the photos before it.
    files = image_files(images)
    named = list(zip(files, output_names(files), strict=True))
    # Each JSON names its model: a folder that runs of several checkpoints wrote into says so.
    source = recorded_path(checkpoint)
    written, unread = [], 0
    for start in range(0, len(named), batch_size):
        batch = []  # (path, name, photo) of the batch's readable photos
        for path, name in named[start : start + batch_size]:
            try:
                batch.append((path, name, read_photo(path)))
            except ValueError as error:
                if len(files) == 1:
                    raise
                # One bad file of a folder costs its own outputs, not the others'.
                warnings.warn(f"{error}; skipped", stacklevel=2)
                unread += 1
        if not batch:
            continue
        # The values given a photo each (nothing read as one a photo, as a K tensor would be by
        # predict_batch), and each photo named by its file, not its place in the batch.
        n = len(batch)
        predictions = predictor._predict(
            [photo for _, _, photo in batch], [str(path) for path, _, _ in batch],
            [K] * n, [fov] * n, [left] * n,
        )  # fmt: skip
        # Made at the first write: a run that predicts nothing leaves no folder, and a path
        # where no folder can be costs one batch's prediction.
        if not written:
            output_folder(out_dir)
        for (path, name, photo), prediction in zip(batch, predictions, strict=True):
            json_path = _write_prediction(
                out_dir, name, path, photo, prediction, checkpoint=source, refine=refine,
                complete_grasp=complete_grasp, overlay=overlay,
            )  # fmt: skip
            written.append(json_path)
            if on_written is not None:
                on_written(json_path)
    if unread:
        raise ValueError(
            f"{unread} of {len(files)} images not readable (named above); the other "
            f"{len(written)} predicted into {out_dir}"
        )
    return written
