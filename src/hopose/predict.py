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

Outputs per image, under a name unique among the inputs (``photo``, then ``photo-2`` for a second
``photo.jpg`` from another folder): ``<name>.json`` with ``image`` (the input path), ``size``
(upright width, height), ``camera`` (``source`` and ``K``, (3, 3) in the photo's pixels),
``hand_2d`` (21, 2) and ``obj_2d`` (8, 2) in those pixels, ``hand_3d`` (21, 3) and ``obj_3d``
(8, 3) in mm, ``contacts_3d`` and ``contacts_2d``; and ``<name>_overlay.jpg``, the photo at its
working size (longest side at most :data:`hopose.photo.MAX_SIDE`) with the hand in blue, the box
in orange and the contacts in gold, lines :data:`LINE_WIDTH_FRACTION` of its longest side wide.
Each file is written whole or not at all (:mod:`hopose.files`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from hopose import viz
from hopose.checkpoint import load_model
from hopose.crop import apply_affine, resize_affine, warp_image
from hopose.files import write_atomic, write_text
from hopose.geometry import project_points
from hopose.models import HoposeNet
from hopose.photo import Camera, Photo, photo_camera, read_photo, require_file
from hopose.physics import contact_points
from hopose.refine import RefineWeights, refine_pose, refinement
from hopose.self_crop import NO_SELF_CROP, SelfCropping, model_device, self_crop_image
from hopose.skeleton import BOX_EDGES, HAND_BONES, NUM_JOINTS

LINE_WIDTH_FRACTION = 1 / 400
"""Overlay line width as a fraction of the overlay's longest side (about 5 px at 1920)."""
MIN_LINE_WIDTH = 2
JPEG_QUALITY = 90


def output_names(paths: Sequence[str | Path]) -> list[str]:
    """One output name per input, unique: the file's stem, then ``stem-2``, ``stem-3``..."""
    used: set[str] = set()
    names = []
    for path in paths:
        stem = Path(path).stem
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        names.append(name)
    return names


def draw_overlay(
    image: Image.Image, hand_2d: np.ndarray, obj_2d: np.ndarray, contacts_2d: np.ndarray
) -> Image.Image:
    """The hand (21, 2), box (8, 2) and contacts (M, 2), in ``image``'s pixels, drawn on a copy."""
    overlay = image.copy()
    draw = ImageDraw.Draw(overlay)
    width = max(MIN_LINE_WIDTH, round(max(overlay.size) * LINE_WIDTH_FRACTION))
    radius = width
    for points, edges, colour in (
        (obj_2d, BOX_EDGES, viz.OBJECT_COLOUR["pred"]),
        (hand_2d, HAND_BONES, viz.HAND_COLOUR["pred"]),
    ):
        for i, j in edges:
            draw.line([tuple(points[i]), tuple(points[j])], fill=colour, width=width)
        for x, y in points:
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    for x, y in contacts_2d:
        r = 2 * radius
        draw.ellipse([x - r, y - r, x + r, y + r], fill=viz.CONTACT_COLOUR, outline="black")
    return overlay


def predict_photo(
    model: HoposeNet,
    image_size: int,
    photo: Photo,
    camera: Camera,
    *,
    cropping: SelfCropping = NO_SELF_CROP,
    refine: RefineWeights | None = None,
) -> dict:
    """Run the network on one photo; returns the JSON fields (module docstring) as tensors,
    plus ``to_working`` (3, 3), full-size pixels -> working-copy pixels (the overlay's).

    ``cropping`` with passes (a model trained on crops, :class:`hopose.self_crop.SelfCropping`):
    after the whole-photo pass, that many passes on squares the model places around its own 2D
    (:func:`hopose.self_crop.self_crop_image`), the last averaged over its views.
    ``refine``: the weights of :func:`hopose.refine.refine_pose` to refine the 3D with, or None.
    The photo goes to ``model``'s device (a GPU's too); what is returned is on the CPU."""
    to_working = photo.working_affine()  # (3, 3) full-size pixels -> working-copy pixels
    K_work = to_working @ camera.K.double()
    if cropping.passes:
        kp2d, kp3d = self_crop_image(
            model, np.asarray(photo.image), K_work, image_size=image_size, cropping=cropping
        )
    else:
        # The whole working copy resized to the network's square, pixel centres kept at
        # integers as in training (hopose.crop.warp_image); 2D comes back through the same map.
        frame = torch.from_numpy(np.array(photo.image)).permute(2, 0, 1)[None]  # (1, 3, H, W)
        A = resize_affine(photo.image.size, image_size, K_work)  # (3, 3) float64
        device = model_device(model)  # the frame is warped where the network reads it
        with torch.inference_mode():
            image = warp_image(frame.to(device), A[None].to(device), image_size)
            out = model(image, (A @ K_work)[None].float().to(device))
        kp2d = apply_affine(torch.linalg.inv(A), out["kp2d"][0].double().cpu())
        kp3d = out["kp3d"][0].cpu()
    kp2d = apply_affine(torch.linalg.inv(to_working), kp2d.double())  # the photo's pixels
    kp3d = kp3d.double()  # (29, 3) mm, in the photo's camera
    if refine is not None:
        hand, obj = refine_pose(
            kp3d[None, :NUM_JOINTS],
            kp3d[None, NUM_JOINTS:],
            kp2d[None],
            camera.K[None].double(),
            refine,
        )
        kp3d = torch.cat([hand[0], obj[0]])
    pts, _, valid = contact_points(kp3d[None, :NUM_JOINTS], kp3d[None, NUM_JOINTS:])
    contacts_3d = pts[0][valid[0]]  # (M, 3)
    return {
        "hand_2d": kp2d[:NUM_JOINTS],
        "obj_2d": kp2d[NUM_JOINTS:],
        "hand_3d": kp3d[:NUM_JOINTS],
        "obj_3d": kp3d[NUM_JOINTS:],
        "contacts_3d": contacts_3d,
        "contacts_2d": project_points(contacts_3d, camera.K),
        "to_working": to_working,
    }


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
) -> list[Path]:
    """Predict every image and write its JSON and overlay under ``out_dir``; returns the JSONs.

    Args:
        checkpoint: a checkpoint written by ``hopose train`` or ``hopose demo``.
        images: photo files.
        out_dir: output folder (created).
        K: (fx, fy, cx, cy) of every photo, in its upright full-size pixels.
        fov: horizontal field of view in degrees of every photo (instead of ``K``).
        refine: refine the predicted 3D with :func:`hopose.refine.refine_pose` (the box an exact
            cuboid, joints on its surface, projections kept near the predicted 2D).
        complete_grasp: with ``refine``, its grasp-completion stage
            (:attr:`hopose.refine.RefineWeights.complete_grasp`).
        self_crop_margin: the self-crops' margin instead of the checkpoint's
            ``data.self_crop_margin``; None: the checkpoint's.
        single_view: predict from the last self-crop's one square, not averaged over the
            checkpoint's test-time views.

    Raises:
        FileNotFoundError: any of ``images`` missing, before anything is written.
        ValueError: ``complete_grasp`` without ``refine`` (:func:`refinement`); a
            ``self_crop_margin`` or ``single_view``
            :meth:`hopose.self_crop.SelfCropping.of` refuses; an image that is not readable,
            naming it; a ``K`` or ``fov`` that is not a camera (:func:`hopose.photo.photo_camera`).
    """
    weights = refinement(refine, complete_grasp, from_images=True)
    # Every photo is there before the first is predicted: a mistyped name among several stops
    # the run at once, without the outputs of the photos before it.
    for path in images:
        require_file(path)
    out_dir = Path(out_dir)
    model, cfg = load_model(checkpoint)
    model.eval()
    cropping = SelfCropping.of(cfg.data, margin=self_crop_margin, single_view=single_view)
    written = []
    for path, name in zip(images, output_names(images), strict=True):
        photo = read_photo(path)
        camera = photo_camera(photo, K=K, fov=fov)
        result = predict_photo(
            model,
            cfg.model.image_size,
            photo,
            camera,
            cropping=cropping,
            refine=weights,
        )
        to_working = result.pop("to_working")
        overlay = draw_overlay(
            photo.image,
            *(
                apply_affine(to_working, result[key]).numpy()
                for key in ("hand_2d", "obj_2d", "contacts_2d")
            ),
        )
        record: dict[str, Any] = {
            "image": str(path),
            "size": list(photo.size),
            "camera": {"source": camera.source, "K": camera.K.tolist()},
            "refined": refine,
            "grasp_completed": refine and complete_grasp,
            **{key: value.tolist() for key, value in result.items()},
            "overlay": f"{name}_overlay.jpg",
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(
            out_dir / record["overlay"],
            lambda tmp, overlay=overlay: overlay.save(tmp, quality=JPEG_QUALITY),
        )
        written.append(write_text(out_dir / f"{name}.json", json.dumps(record, indent=1) + "\n"))
    return written
