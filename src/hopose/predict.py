"""Prediction on image files of any size: keypoints, contacts, and an overlay per image.

Each image is resized as a whole to the network's square input (the ``resize`` geometry of
SPEC §6, aspect not kept), so 2D keypoints come back to the original pixels by scaling x and y
separately. The lifter is given FPHA's colour camera resized the same way (the camera of the
synthetic and FPHA configs), so the 3D keypoints, in mm, are the pose that camera would have
seen.

To draw the 3D contact points on the photo, the pinhole camera (fx, fy, cx, cy) that best maps
the predicted 3D keypoints onto the predicted 2D ones is fitted by linear least squares
(u = fx X/Z + cx and v = fy Y/Z + cy are linear in the four unknowns) and the contacts are
projected with it.

Outputs per image ``<stem>.json`` with ``hand_2d`` (21, 2) and ``obj_2d`` (8, 2) in the
original image's pixels, ``hand_3d`` (21, 3) and ``obj_3d`` (8, 3) in mm, ``contacts_3d`` and
``contacts_2d`` (the valid contact points of SPEC §2) and ``K_fit``; and ``<stem>_overlay.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from hopose import viz
from hopose.crop import self_crop_image
from hopose.data.fpha import FPHA_COLOR_K, FPHA_IMAGE_SIZE
from hopose.geometry import project_points, scale_intrinsics
from hopose.physics import contact_points
from hopose.skeleton import NUM_JOINTS
from hopose.train import load_model


def read_image(path: str | Path) -> Image.Image:
    """Open a JPEG/PNG as RGB, with an error naming the file when it is not an image."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None


def fit_intrinsics(points_3d: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Least-squares pinhole intrinsics mapping points to pixels.

    Args:
        points_3d: (M, 3) points in front of the camera (z > 0).
        pixels: (M, 2) their image positions.

    Returns:
        (3, 3) K with fx, fy, cx, cy fitted and no skew.
    """
    normalised = points_3d[:, :2] / points_3d[:, 2:].clamp_min(1e-6)  # (M, 2): X/Z, Y/Z
    ones = torch.ones_like(normalised[:, 0])
    K = torch.eye(3, dtype=points_3d.dtype)
    for axis in range(2):
        design = torch.stack([normalised[:, axis], ones], dim=1)  # (M, 2): [X/Z, 1]
        focal, centre = torch.linalg.lstsq(design, pixels[:, axis : axis + 1]).solution[:, 0]
        K[axis, axis], K[axis, 2] = focal, centre
    return K


def overlay_figure(
    image: np.ndarray, hand_2d: np.ndarray, obj_2d: np.ndarray, contacts_2d: np.ndarray
) -> Figure:
    """The predicted hand (21, 2), box (8, 2) and contacts (M, 2) over ``image`` (H, W, 3),
    at the image's own resolution, in :mod:`hopose.viz`'s colours."""
    height, width = image.shape[:2]
    fig = Figure(figsize=(width / viz.DPI, height / viz.DPI), dpi=viz.DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    viz.show_image(ax, image, (width, height))
    viz.draw_pose(ax, hand_2d, obj_2d, "pred")
    ax.scatter(*contacts_2d.T, color=viz.CONTACT_COLOUR, edgecolors="black", s=40, zorder=3)
    ax.set_axis_off()
    return fig


def predict_images(
    checkpoint: str | Path, images: list[str | Path], out_dir: str | Path
) -> list[Path]:
    """Predict every image and write its JSON and overlay under ``out_dir``; returns the JSONs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, cfg = load_model(checkpoint)
    model.eval()
    size = cfg.model.image_size
    width, height = FPHA_IMAGE_SIZE
    K = scale_intrinsics(
        torch.as_tensor(FPHA_COLOR_K, dtype=torch.float32), size / width, size / height
    )
    written = []
    for path in map(Path, images):
        image = read_image(path)
        width, height = image.size
        resized = np.array(image.resize((size, size), Image.BILINEAR))  # (S, S, 3) uint8
        with torch.inference_mode():
            out = model(torch.from_numpy(resized).permute(2, 0, 1)[None], K[None])
        scale = torch.tensor([width / size, height / size])
        kp2d = out["kp2d"][0].float() * scale  # (29, 2) original pixels
        kp3d = out["kp3d"][0].float()  # (29, 3) mm
        if cfg.data.crop == "square":  # a model trained on crops reads crops it places itself
            kp2d, kp3d = self_crop_image(
                model,
                np.asarray(image),
                scale_intrinsics(K, width / size, height / size),
                image_size=size,
                iterations=cfg.data.self_crop,
            )
        pts, _, valid = contact_points(kp3d[None, :NUM_JOINTS], kp3d[None, NUM_JOINTS:])
        contacts_3d = pts[0][valid[0]]  # (M, 3)
        K_fit = fit_intrinsics(kp3d, kp2d)
        contacts_2d = project_points(contacts_3d, K_fit)  # (M, 2)
        result = {
            "image": str(path),
            "size": [width, height],
            "hand_2d": kp2d[:NUM_JOINTS].tolist(),
            "obj_2d": kp2d[NUM_JOINTS:].tolist(),
            "hand_3d": kp3d[:NUM_JOINTS].tolist(),
            "obj_3d": kp3d[NUM_JOINTS:].tolist(),
            "contacts_3d": contacts_3d.tolist(),
            "contacts_2d": contacts_2d.tolist(),
            "K_fit": K_fit.tolist(),
        }
        json_path = out_dir / f"{path.stem}.json"
        json_path.write_text(json.dumps(result, indent=1) + "\n")
        fig = overlay_figure(
            np.asarray(image),
            kp2d[:NUM_JOINTS].numpy(),
            kp2d[NUM_JOINTS:].numpy(),
            contacts_2d.numpy(),
        )
        viz.save_figure(fig, out_dir / f"{path.stem}_overlay.png")
        written.append(json_path)
    return written
