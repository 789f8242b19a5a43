"""Naive references of the physical affinity loss (docs/conventions.md §2) and of the grasp
quality's epsilon, and random grasps to feed them.

Shared by the tests and benchmarks/bench_physics.py and bench_eval.py. The affinity reference is
written from docs/conventions.md, independently of hopose.physics: one sample, one joint and one
face at a time, in plain float64 Python, with no vectorisation to get wrong.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from scipy.spatial import ConvexHull, QhullError

from hopose.geometry import axis_angle_to_matrix, box_corners
from hopose.skeleton import BOX_FACES, NUM_JOINTS, OPPOSITE_FACES


def _face_grid(quad: list[np.ndarray], n_samples: int) -> list[tuple[float, ...]]:
    """Step 1: P(u, v) = (1-u)(1-v) a + u(1-v) b + uv c + (1-u)v d on an n x n grid."""
    a, b, c, d = quad
    steps = [k / (n_samples - 1) if n_samples > 1 else 0.0 for k in range(n_samples)]
    return [
        tuple((1 - u) * (1 - v) * a + u * (1 - v) * b + u * v * c + (1 - u) * v * d)
        for u in steps
        for v in steps
    ]


def contacts_naive(
    hand: np.ndarray, corners: np.ndarray, n_samples: int = 11, top_k: int = 10, eta: float = 0.2
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Valid contacts (point P, direction v = P - R) of one sample: hand (21, 3), corners (8, 3).

    A direction no longer than 1e-9 times the box's size (its farthest corner from the corners'
    mean) is the zero vector: an end face's centre lies on the axis for every box, and its
    projection leaves only a rounding residue (3e-14 mm), which is not a direction.
    """
    quads = [[corners[k] for k in face] for face in BOX_FACES]
    grids = [_face_grid(quad, n_samples) for quad in quads]
    # Step 2: for each joint and face, the closest grid point and its distance.
    candidates = []
    for joint in hand:
        for grid in grids:
            distances = [math.dist(joint, point) for point in grid]
            best = int(np.argmin(distances))
            candidates.append((distances[best], np.array(grid[best])))
    # Step 3: the top_k pairs with the smallest distances.
    candidates = sorted(candidates, key=lambda candidate: candidate[0])[:top_k]
    # Step 4: the opposite face pair whose centres are farthest apart gives the axis; the radius
    # is the mean of the 8 sides of those two faces.
    centres = [np.mean(quad, axis=0) for quad in quads]
    gaps = [math.dist(centres[i], centres[j]) for i, j in OPPOSITE_FACES]
    upper, lower = OPPOSITE_FACES[int(np.argmax(gaps))]
    sides = [
        math.dist(quads[f][k], quads[f][(k + 1) % 4]) for f in (upper, lower) for k in range(4)
    ]
    radius = sum(sides) / len(sides)
    axis = (centres[lower] - centres[upper]) / math.dist(centres[lower], centres[upper])
    # Steps 5-6: keep d <= eta * L; R is P's orthogonal projection on the axis.
    middle = np.mean(corners, axis=0)
    size = max(math.dist(corner, middle) for corner in corners)
    contacts = []
    for distance, point in candidates:
        if distance <= eta * radius:
            foot = centres[upper] + np.dot(point - centres[upper], axis) * axis
            direction = point - foot
            if np.linalg.norm(direction) <= 1e-9 * size:
                direction = np.zeros(3)
            contacts.append((point, direction))
    return contacts


def physical_affinity_loss_naive(
    hand: np.ndarray, obj: np.ndarray, n_samples: int = 11, top_k: int = 10, eta: float = 0.2
) -> np.ndarray:
    """Step 7 for each sample of hand (B, 21, 3), obj (B, 8, 3): (B,) mean pairwise cosine.

    A contact on the axis (v = 0, :func:`contacts_naive`) has cosine 0 with every other, as any
    eps guard gives it.
    """
    losses = []
    for sample_hand, sample_obj in zip(hand, obj, strict=True):
        directions = [v for _, v in contacts_naive(sample_hand, sample_obj, n_samples, top_k, eta)]
        cosines = [
            0.0
            if not (v_i.any() and v_j.any())
            else np.dot(v_i, v_j) / (np.linalg.norm(v_i) * np.linalg.norm(v_j))
            for v_i, v_j in itertools.combinations(directions, 2)
        ]
        losses.append(sum(cosines) / len(cosines) if cosines else 0.0)
    return np.array(losses)


def random_grasps(
    generator: torch.Generator, touching_counts: list[int], dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random boxes, each with ``touching_counts[b]`` joints near its faces.

    Boxes have distinct random sides (no tie between opposite face pairs), random rotation and
    translation. A touching joint sits 0.5-15 mm outside a random face at a random off-grid
    position; the others are 1-2 box diagonals away from the centre.
    """
    batch = len(touching_counts)
    size = torch.rand(batch, 3, generator=generator, dtype=torch.float64) * 60 + torch.tensor(
        [40.0, 110.0, 180.0]
    )
    rotation = axis_angle_to_matrix(
        torch.randn(batch, 3, generator=generator, dtype=torch.float64) * 2
    )
    translation = torch.randn(
        batch, 1, 3, generator=generator, dtype=torch.float64
    ) * 100 + torch.tensor([0, 0, 500.0])
    local_corners = box_corners(size)  # (B, 8, 3)
    diagonal = size.norm(dim=-1)[:, None, None]
    direction = torch.randn(batch, NUM_JOINTS, 3, generator=generator, dtype=torch.float64)
    hand = (
        direction
        / direction.norm(dim=-1, keepdim=True)
        * diagonal
        * (1 + torch.rand(batch, NUM_JOINTS, 1, generator=generator, dtype=torch.float64))
    )
    for b, count in enumerate(touching_counts):
        for joint in torch.randperm(NUM_JOINTS, generator=generator)[:count].tolist():
            quad = local_corners[b, list(BOX_FACES[int(torch.randint(6, (), generator=generator))])]
            u, v = (torch.rand(2, generator=generator, dtype=torch.float64) * 0.8 + 0.1).tolist()
            on_face = (
                (1 - u) * (1 - v) * quad[0]
                + u * (1 - v) * quad[1]
                + u * v * quad[2]
                + (1 - u) * v * quad[3]
            )
            normal = torch.linalg.cross(quad[1] - quad[0], quad[3] - quad[0])
            normal = normal / normal.norm() * torch.sign(normal @ quad.mean(dim=0))  # outward
            gap = float(torch.rand((), generator=generator, dtype=torch.float64)) * 14.5 + 0.5
            hand[b, joint] = on_face + gap * normal
    obj = local_corners @ rotation.transpose(-1, -2) + translation
    hand = hand @ rotation.transpose(-1, -2) + translation
    return hand.to(dtype), obj.to(dtype)


def hull_epsilon_naive(wrenches: np.ndarray) -> float:
    """Ferrari-Canny epsilon of (W, 6) wrenches, naively: the origin's least distance to a facet
    plane of the hull of all of them (Qhull's default options), 0 if it is not inside.

    Shared by tests/test_plausibility.py and benchmarks/bench_eval.py; no force-closure test, no
    subset, no joggle.
    """
    try:
        return max(0.0, float(-ConvexHull(wrenches).equations[:, -1].max()))
    except QhullError:
        return 0.0
