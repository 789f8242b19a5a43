"""Hand-built poses for the evaluation tests: a box held between thumb and fingers, no model.

The box is 60 x 40 x 120 mm (its long axis, the paper's central axis, along its own z). The
fingers are straight chains pointing at the box along its x axis: thumb from the x- side, the
other four from the x+ side at heights z = 30, 10, -10, -30 mm, each tip 2 mm from the face
and each DIP 6 mm from it, so all ten are within the contact filter eta * L = 0.2 * 50 = 10 mm
(L = the mean side of the 60 x 40 end faces). Opposed pads at several heights, with friction,
hold the box in force closure.
"""

from __future__ import annotations

import numpy as np
import torch

from hopose.geometry import axis_angle_to_matrix, box_corners, make_transform, project_points

BOX_SIZE = (60.0, 40.0, 120.0)
# Network image 224 x 224, focal 200 px, principal point at the centre.
IMAGE_SIZE = 224
K = np.array([[200.0, 0.0, 112.0], [0.0, 200.0, 112.0], [0.0, 0.0, 1.0]])
# The dataset's original 1920 x 1080 camera for the reprojection metric.
ORIG_K = np.array([[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.7], [0.0, 0.0, 1.0]])


def finger(x_tip: float, z: float, side: float) -> list[list[float]]:
    """Base-to-tip chain on the line y = 0, height z, tip at x_tip, pointing at the box."""
    return [[x_tip + side * d, 0.0, z] for d in (28.0, 13.0, 4.0, 0.0)]


def grasp_hand() -> np.ndarray:
    """(21, 3) joints in the box's frame, mm."""
    wrist = [[80.0, 0.0, 0.0]]
    thumb = [[-50.0, 0.0, -10.0], [-40.0, 0.0, 0.0], [-34.0, 0.0, 10.0], [-32.0, 0.0, 20.0]]
    fingers = [p for z in (30.0, 10.0, -10.0, -30.0) for p in finger(32.0, z, +1.0)]
    return np.array(wrist + thumb + fingers)


def make_predictions(n: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` frames of the grasp in front of the camera, predictions = truth + noise growing with k.

    Returns:
        The arrays ``hopose eval`` collects (see ``hopose.report.write_report``).
    """
    rng = np.random.default_rng(seed)
    hands, boxes = [], []
    for k in range(n):
        rotation = axis_angle_to_matrix(torch.tensor([0.3 * k, 0.2, 0.1], dtype=torch.float64))
        pose = make_transform(rotation, torch.tensor([10.0 * k, 0.0, 400.0], dtype=torch.float64))
        boxes.append(box_corners(torch.tensor(BOX_SIZE, dtype=torch.float64), pose).numpy())
        hands.append((torch.from_numpy(grasp_hand()) @ rotation.T + pose[:3, 3]).numpy())
    gt_hand, gt_obj = np.stack(hands), np.stack(boxes)
    noise = 2.0 * (1 + np.arange(n))[:, None, None]  # frame k is off by about 2 (k + 1) mm
    pred_hand = gt_hand + noise * rng.standard_normal(gt_hand.shape)
    pred_obj = gt_obj + noise * rng.standard_normal(gt_obj.shape)
    K_t = torch.from_numpy(K)

    def project(points: np.ndarray) -> np.ndarray:
        return project_points(torch.from_numpy(points), K_t).numpy()

    return {
        "pred_hand_3d": pred_hand,
        "gt_hand_3d": gt_hand,
        "pred_obj_3d": pred_obj,
        "gt_obj_3d": gt_obj,
        "pred_hand_2d": project(pred_hand),
        "gt_hand_2d": project(gt_hand),
        "pred_obj_2d": project(pred_obj),
        "gt_obj_2d": project(gt_obj),
        "K": np.repeat(K[None], n, axis=0),
        "orig_K": np.repeat(ORIG_K[None], n, axis=0),
        "orig_size": np.repeat(np.array([[1920, 1080]]), n, axis=0),
        "id": np.array([f"synthetic/s0/seq0/{k:04d}" for k in range(n)]),
    }


def make_dataset(n: int = 4, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``n`` records with a random (224, 224, 3) uint8 image each, all the report reads."""
    rng = np.random.default_rng(seed)
    return [
        {"image": rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)}
        for _ in range(n)
    ]
