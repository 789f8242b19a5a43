"""Keypoint layouts: the single definition of docs/conventions.md §1.

Every order, edge list and adjacency matrix used anywhere in hopose comes from this file.

Hand: 21 joints, 0 wrist, then thumb, index, middle, ring, little, each finger as
(MCP-like base, two middle joints, tip) from palm to tip. Object: the 8 corners of its bounding
box, corner c given by the sign bits of its (x, y, z) in the box's own axes. The 29-node graph
used by the networks puts the 21 hand joints first and the 8 corners after them. Shapes are
jaxtyping annotations, checked at run time in the tests.
"""

from __future__ import annotations

import functools
import itertools

import torch
from jaxtyping import Float
from torch import Tensor

NUM_JOINTS = 21
NUM_CORNERS = 8
NUM_NODES = NUM_JOINTS + NUM_CORNERS

# Where each part sits in the 29-node graph.
PART_NODES: dict[str, range] = {
    "hand": range(0, NUM_JOINTS),
    "object": range(NUM_JOINTS, NUM_NODES),
}
# The same nodes as slices, to index tensors with: a range (or a list) is an index tensor made
# on the host, which a GPU copies at each use.
PART_SLICES: dict[str, slice] = {part: slice(r.start, r.stop) for part, r in PART_NODES.items()}

FINGERS = ("thumb", "index", "middle", "ring", "little")
_FINGER_JOINTS = {
    "thumb": ("cmc", "mcp", "ip", "tip"),
    "index": ("mcp", "pip", "dip", "tip"),
    "middle": ("mcp", "pip", "dip", "tip"),
    "ring": ("mcp", "pip", "dip", "tip"),
    "little": ("mcp", "pip", "dip", "tip"),
}
JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    *(f"{finger}_{joint}" for finger in FINGERS for joint in _FINGER_JOINTS[finger]),
)

# Joint indices of each finger from base to tip, e.g. FINGER_CHAINS[1] == (5, 6, 7, 8).
FINGER_CHAINS: tuple[tuple[int, ...], ...] = tuple(
    tuple(range(1 + 4 * f, 5 + 4 * f)) for f in range(len(FINGERS))
)
FINGERTIPS: tuple[int, ...] = tuple(chain[-1] for chain in FINGER_CHAINS)

# 20 bones (parent, child): the wrist to each finger base, then along each finger.
HAND_BONES: tuple[tuple[int, int], ...] = tuple(
    pair for chain in FINGER_CHAINS for pair in ((0, chain[0]), *itertools.pairwise(chain))
)

# Corner c has sign bits (x, y, z), each -1 or +1, in the canonical order 0..7.
CORNER_SIGNS: tuple[tuple[int, int, int], ...] = (
    (-1, -1, -1),
    (+1, -1, -1),
    (+1, +1, -1),
    (-1, +1, -1),
    (-1, -1, +1),
    (+1, -1, +1),
    (+1, +1, +1),
    (-1, +1, +1),
)
# Faces as cyclic quads (a, b, c, d): z-, z+, y-, y+, x-, x+.
BOX_FACES: tuple[tuple[int, int, int, int], ...] = (
    (0, 1, 2, 3),
    (4, 5, 6, 7),
    (0, 1, 5, 4),
    (3, 2, 6, 7),
    (0, 3, 7, 4),
    (1, 2, 6, 5),
)
# Pairs of face indices (into BOX_FACES) that face each other across the box: faces 2i and
# 2i + 1, so that hopose.geometry.box_central_axis takes the faces two by two.
OPPOSITE_FACES: tuple[tuple[int, int], ...] = ((0, 1), (2, 3), (4, 5))
# The 12 sides of the box: the sides of the face quads, each once.
BOX_EDGES: tuple[tuple[int, int], ...] = tuple(
    sorted({tuple(sorted((face[k], face[(k + 1) % 4]))) for face in BOX_FACES for k in range(4)})
)

# What a pixel shows, for the segmentation maps (beyond the paper, docs/from_pixels.md): class 0
# the background, 1 the hand (its sleeve included), 2 + f the box's face BOX_FACES[f].
SEGMENTATION_CLASSES: tuple[str, ...] = (
    "background", "hand", "box z-", "box z+", "box y-", "box y+", "box x-", "box x+",
)  # fmt: skip
NUM_SEGMENTATION_CLASSES = len(SEGMENTATION_CLASSES)

# Dataset joint orders. Canonical joint k is the dataset's joint MAP[k].
# FPHA: wrist, the five MCPs (thumb..little), then the PIP, DIP, tip of each finger
# (docs/conventions.md §1).
# fmt: off
FPHA_TO_CANONICAL: tuple[int, ...] = (
    0, 1, 6, 7, 8, 2, 9, 10, 11, 3, 12, 13, 14, 4, 15, 16, 17, 5, 18, 19, 20,
)
# MANO (HO-3D): wrist, index, middle, little, ring, thumb chains of 3, then the 5 tips
# (docs/conventions.md §1).
MANO_TO_CANONICAL: tuple[int, ...] = (
    0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20,
)
# fmt: on


def _adjacency(num_nodes: int, edges: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Symmetric 0/1 adjacency (num_nodes, num_nodes) without self-loops, float32."""
    adj = torch.zeros(num_nodes, num_nodes)
    index = torch.tensor(edges)
    adj[index[:, 0], index[:, 1]] = 1.0
    adj[index[:, 1], index[:, 0]] = 1.0
    return adj


def hand_adjacency() -> Float[Tensor, "21 21"]:
    """The adjacency of the hand's kinematic tree (paper Fig. 3)."""
    return _adjacency(NUM_JOINTS, HAND_BONES)


def box_adjacency() -> Float[Tensor, "8 8"]:
    """The adjacency of the box's 12 edges (paper Fig. 3)."""
    return _adjacency(NUM_CORNERS, BOX_EDGES)


def hand_object_adjacency() -> Float[Tensor, "29 29"]:
    """The block-diagonal union: hand joints 0..20, box corners 21..28, no cross edges."""
    return torch.block_diag(hand_adjacency(), box_adjacency())


def corner_signs() -> Float[Tensor, "8 3"]:
    """The corner sign bits, CORNER_SIGNS, as float32."""
    return torch.tensor(CORNER_SIGNS, dtype=torch.float32)


@functools.cache
def layout_tensor(
    table: tuple[int, ...] | tuple[tuple[int, ...], ...],
    device: torch.device,
    dtype: torch.dtype = torch.long,
) -> torch.Tensor:
    """One of this module's tables (``BOX_FACES``, ``HAND_BONES``, ``CORNER_SIGNS``, ...), or
    another module's tuple of joint indices, as a ``dtype`` tensor on ``device``, made once per
    table, device and dtype and shared by every caller, which must not modify it.

    A table made at each use (``torch.tensor(BOX_FACES, device=x.device)``) is a copy from the
    host at each call: on a GPU, from pageable memory, one that waits for the work queued on the
    device before it, a synchronisation point in every training step (BENCHMARKS.md, "Training:
    host-to-device copies"). Made outside inference mode, so that a table first made under
    ``torch.inference_mode`` (a validation pass) can still index tensors in an autograd graph,
    which saves the index.
    """
    with torch.inference_mode(False):
        return torch.tensor(table, dtype=dtype, device=device)
