"""Where the 2D error of an evaluation from the images lies: placement or shape, by frame kind.

Reads the ``predictions.npz`` that ``hopose eval`` writes and prints, for the hand's 21 joints and
the box's 8 corners (pixels of the records' image, as ``hand_kp2d_mean_px`` and
``object_kp2d_mean_px``):

- the mean error, and how much of it is placement (the error of the keypoints' centroid) and
  how much shape (the error once both centroids are put together), also after the best 2D
  similarity (turn and scale) of the predicted shape onto the true one;
- for the box: the error of the corners the box itself hides against those on a face turned to
  the camera, the error had the corners been labelled in the best of the box's four look-alike
  orientations (half turns about its axes, :func:`hopose.data.grasps.label_in_hand`), and the
  error by the box's size in the image;
- for synthetic ids (``synthetic/SEED/KIND/INDEX``): the errors by grasp kind and by object.

Usage: ``python docs/box_corner_errors.py RUN/predictions.npz``
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from hopose.cli import exit_on_user_error
from hopose.data.grasps import generate_grasps
from hopose.skeleton import BOX_FACES, CORNER_SIGNS

# The box's half turns about its own x, y and z axes, as factors of the corners' sign bits.
HALF_TURNS = ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1))


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def placement_and_shape(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Mean 2D errors of (N, K, 2) keypoints: all, centroid, shape, shape after a similarity."""
    pred_c, gt_c = pred.mean(axis=1, keepdims=True), gt.mean(axis=1, keepdims=True)
    # Complex numbers make the least-squares similarity one ratio: s = <p, g> / <p, p>.
    p = (pred - pred_c) @ np.array([1.0, 1j])  # (N, K)
    g = (gt - gt_c) @ np.array([1.0, 1j])
    s = (np.conj(p) * g).sum(axis=1) / (np.abs(p) ** 2).sum(axis=1)  # (N,)
    return {
        "mean": _distance(pred, gt).mean(),
        "centroid": _distance(pred_c, gt_c).mean(),
        "shape": np.abs(p - g).mean(),
        "shape after similarity": np.abs(s[:, None] * p - g).mean(),
        "similarity's scale": np.abs(s).mean(),
    }


def self_hidden(corners_3d: np.ndarray) -> np.ndarray:
    """(N, 8) whether each corner of (N, 8, 3) camera-frame boxes lies on no face turned to the
    camera (the box itself hides it)."""
    centre = corners_3d.mean(axis=1)
    seen = np.zeros(corners_3d.shape[:2], dtype=bool)
    for face in map(list, BOX_FACES):
        face_centre = corners_3d[:, face].mean(axis=1)
        # The face is turned to the camera when its outward normal points towards the origin.
        turned = ((face_centre - centre) * face_centre).sum(axis=-1) < 0
        seen[:, face] |= turned[:, None]
    return ~seen


def relabelled_error(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) mean corner error in the best look-alike orientation, and (N,) its HALF_TURNS index."""
    signs = np.array(CORNER_SIGNS)
    errors = []
    for turn in HALF_TURNS:
        wanted = signs * np.array(turn)
        order = [int(np.flatnonzero((signs == w).all(axis=1))[0]) for w in wanted]
        errors.append(_distance(pred[:, order], gt).mean(axis=1))
    errors = np.stack(errors, axis=1)  # (N, 4)
    return errors.min(axis=1), errors.argmin(axis=1)


def _row(label: str, count: int, hand: float, box: float) -> str:
    return f"| {label} | {count} | {hand:.2f} | {box:.2f} |"


def report(path: Path) -> None:
    """Print the tables for one ``predictions.npz``."""
    with np.load(path) as arrays:
        p = dict(arrays)
    hand = _distance(p["pred_hand_2d"], p["gt_hand_2d"]).mean(axis=1)  # (N,)
    box_corners = _distance(p["pred_obj_2d"], p["gt_obj_2d"])  # (N, 8)
    box = box_corners.mean(axis=1)
    print(f"{path}: {len(box)} frames\n\n| px | hand | box |\n|---|---|---|")
    parts = [placement_and_shape(p[f"pred_{k}_2d"], p[f"gt_{k}_2d"]) for k in ("hand", "obj")]
    for key in parts[0]:
        print(f"| {key} | {parts[0][key]:.3f} | {parts[1][key]:.3f} |")

    hidden = self_hidden(p["gt_obj_3d"])
    best, turn = relabelled_error(p["pred_obj_2d"], p["gt_obj_2d"])
    turned = turn != 0
    print(
        f"\nBox corners on a face turned to the camera ({(~hidden).mean():.0%}): "
        f"{box_corners[~hidden].mean():.2f} px; hidden by the box: {box_corners[hidden].mean():.2f}"
        f" px.\nBest look-alike orientation: {best.mean():.2f} px; another than the label's in "
        f"{turned.mean():.1%} of frames, whose error is {box[turned].mean():.2f} px "
        f"({box[~turned].mean():.2f} in the others)."
    )
    extent = _distance(p["gt_obj_2d"].max(axis=1), p["gt_obj_2d"].min(axis=1))  # box diagonal
    edges = np.quantile(extent, [0.0, 0.25, 0.5, 0.75, 1.0])
    print("\n| box diagonal px | frames | hand px | box px |\n|---|---|---|---|")
    for low, high in itertools.pairwise(edges):
        rows = (extent >= low) & (extent <= high)
        print(_row(f"{low:.0f}-{high:.0f}", rows.sum(), hand[rows].mean(), box[rows].mean()))

    ids = [str(i).split("/") for i in p["id"]]
    if not all(len(i) == 4 and i[0] == "synthetic" for i in ids) or len({i[1] for i in ids}) != 1:
        return
    kinds = np.array([i[2] for i in ids])
    grasps = generate_grasps(int(ids[0][1]), np.array([int(i[3]) for i in ids]))
    labels = {"grasp kind": kinds}
    # The objects follow from the seed with the default share of free frames, which the ids'
    # kinds then match.
    if list(grasps.grasp) == list(kinds):
        labels["object"] = np.array(grasps.object)
    for name, values in labels.items():
        print(f"\n| {name} | frames | hand px | box px |\n|---|---|---|---|")
        for value in np.unique(values):
            rows = values == value
            print(_row(value, rows.sum(), hand[rows].mean(), box[rows].mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path)
    args = parser.parse_args()
    exit_on_user_error(parser, lambda: report(args.predictions))


if __name__ == "__main__":
    main()
