"""``hopose predict`` on synthetic renders saved as photos, against ``hopose eval``'s views.

Renders the synthetic test split's first ``--num`` frames as whole 1920×1080 photos (PNG, at
``--photo-scale`` of that size), runs each through :func:`hopose.predict.predict_photo` (what
``hopose predict --K`` runs: the photo read from disk, self-cropped when the model was trained
on crops) with the frame's camera, and the same frames through
:func:`hopose.evaluate.predict_split` on the views the dataset renders (what ``hopose eval``
from images runs). Prints, for each path, the 2D error in pixels of the 1920-px frame and as a
share of its width, the share of frames whose mean hand (box) error is within 3% of the width
(issue 10's bar for ``predict``), and the 3D error in mm; then the same over the frames whose 29
keypoints all lie inside the frame, the renders "whose hand and object fill about a quarter of
the frame" that the bar describes. The synthetic placement lets some keypoints leave the frame
(FPHA-HO's 13% of frames with more than 3 outside), and a longer focal length (``--focal-scale``)
moves more out: no image shows where a box outside it lies.

Usage: ``python docs/predict_on_renders.py CHECKPOINT [--num 100] [--seed 0]
[--focal-scale 1.0] [--photo-scale 0.5] [--out FOLDER]``
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hopose.checkpoint import load_model
from hopose.cli import at_least, exit_on_user_error
from hopose.crop import edge_aligned_scale
from hopose.data import synthetic_split_seed
from hopose.data.fpha import FPHA_IMAGE_SIZE
from hopose.data.synthetic import SyntheticHandObject
from hopose.evaluate import predict_split
from hopose.photo import photo_camera, read_photo
from hopose.predict import predict_photo
from hopose.self_crop import SelfCropping
from hopose.skeleton import NUM_JOINTS

WITHIN = 0.03
"""Issue 10's bar for ``predict``: 2D within 3% of the frame's width."""
MIN_PHOTO_SIDE = 8
"""The smallest image side the synthetic renderer draws (``SyntheticHandObject``)."""


def to_frame(points: np.ndarray, K: np.ndarray, orig_K: np.ndarray) -> np.ndarray:
    """Points (..., 2) in the pixels of a view with intrinsics K to the frame's (orig_K)."""
    M = orig_K @ np.linalg.inv(K)  # view -> frame, an affine map
    return points @ M[:2, :2].T + M[:2, 2]


def summary(name: str, errors_2d: np.ndarray, errors_3d: np.ndarray) -> str:
    """A markdown row from per-node errors (M, 29) in frame pixels and in mm."""
    width = FPHA_IMAGE_SIZE[0]
    cells = [name]
    for part in (slice(0, NUM_JOINTS), slice(NUM_JOINTS, None)):
        per_frame = errors_2d[:, part].mean(axis=1)
        cells += [
            f"{per_frame.mean():.0f} ({100 * per_frame.mean() / width:.1f}%)",
            f"{100 * (per_frame <= WITHIN * width).mean():.0f}%",
        ]
    cells.append(f"{errors_3d[:, :NUM_JOINTS].mean():.1f} / {errors_3d[:, NUM_JOINTS:].mean():.1f}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--num", type=at_least(1), default=100)
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--focal-scale", type=float, default=1.0)
    parser.add_argument("--photo-scale", type=float, default=0.5)
    parser.add_argument(
        "--out", help="folder to keep the photos in (default: a temporary one, removed at the end)"
    )
    args = parser.parse_args()
    if not min(side * args.photo_scale for side in FPHA_IMAGE_SIZE) >= MIN_PHOTO_SIDE:
        parser.error(
            f"--photo-scale: expected a scale giving photos of at least {MIN_PHOTO_SIDE} px a "
            f"side, got {args.photo_scale}"
        )
    exit_on_user_error(parser, lambda: compare(args))


def compare(args: argparse.Namespace) -> None:
    """Print the table of the module's docstring for the parsed command line ``args``."""
    model, cfg = load_model(args.checkpoint)
    model.eval()
    size, cropping = cfg.data.image_size, SelfCropping.of(cfg.data)
    seed = synthetic_split_seed(args.seed, "test")

    def dataset(image_size: int, crop: str) -> SyntheticHandObject:
        return SyntheticHandObject(
            args.num, seed, image_size, focal_scale=args.focal_scale, crop=crop
        )

    views = dataset(size, cfg.data.crop)
    evaluated = predict_split(model, views, cropping=cropping)
    # Photo pixels from frame pixels, pixel centres at integers in both: q = s p + (s - 1) / 2.
    s = args.photo_scale
    to_photo = edge_aligned_scale(torch.tensor([s, s], dtype=torch.float64)).numpy()
    width, height = (round(side * s) for side in FPHA_IMAGE_SIZE)
    photos = dataset(width, "resize")
    # Without --out the photos are scratch, removed at the end (about 0.8 MB a photo at 960x540).
    with contextlib.ExitStack() as scratch:
        out = Path(
            args.out or scratch.enter_context(tempfile.TemporaryDirectory(prefix="hopose-renders-"))
        )
        out.mkdir(parents=True, exist_ok=True)
        rows = {"eval (rendered views)": ([], []), "predict (photos)": ([], [])}
        in_view = np.zeros(args.num, dtype=bool)
        for i in range(args.num):
            record = views[i]
            gt_2d = to_frame(
                np.concatenate([record["hand_2d"], record["obj_2d"]]), record["K"], record["orig_K"]
            )
            gt_3d = np.concatenate([record["hand_3d"], record["obj_3d"]])
            in_view[i] = ((gt_2d >= 0) & (gt_2d < np.array(FPHA_IMAGE_SIZE))).all()
            path = out / f"frame_{i:04d}.png"
            Image.fromarray(photos.view(i, to_photo)[:height]).save(path)  # the square's top rows
            photo = read_photo(path)
            K = to_photo @ record["orig_K"]
            camera = photo_camera(photo, K=(K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
            with torch.inference_mode():
                pred = predict_photo(model, size, photo, camera, cropping=cropping)
            photo_2d = torch.cat([pred["hand_2d"], pred["obj_2d"]]).numpy()
            photo_3d = torch.cat([pred["hand_3d"], pred["obj_3d"]]).numpy()
            view_2d = np.concatenate([evaluated["pred_hand_2d"][i], evaluated["pred_obj_2d"][i]])
            view_3d = np.concatenate([evaluated["pred_hand_3d"][i], evaluated["pred_obj_3d"][i]])
            frame_of_photo = np.linalg.inv(to_photo)
            photo_2d = photo_2d @ frame_of_photo[:2, :2].T + frame_of_photo[:2, 2]
            view_2d = to_frame(view_2d, evaluated["K"][i], record["orig_K"])
            for name, kp2d, kp3d in (
                ("eval (rendered views)", view_2d, view_3d),
                ("predict (photos)", photo_2d, photo_3d),
            ):
                rows[name][0].append(np.linalg.norm(kp2d - gt_2d, axis=-1))
                rows[name][1].append(np.linalg.norm(kp3d - gt_3d, axis=-1))
    print(f"{args.num} test frames (seed {args.seed}), focal scale {args.focal_scale}, photos at "
          f"{width}x{height}" + (f" in {out}" if args.out else ""))  # fmt: skip
    print(
        "| path | hand 2D px of 1920 (% of width) | frames within 3% | box 2D px | frames within "
        "3% | hand / box mm |\n|---|---|---|---|---|---|"
    )
    for part, frames in (("", slice(None)), (f", the {in_view.sum()} frames in view", in_view)):
        for name, (errors_2d, errors_3d) in rows.items():
            print(summary(name + part, np.array(errors_2d)[frames], np.array(errors_3d)[frames]))


if __name__ == "__main__":
    main()
