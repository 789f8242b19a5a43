"""Pins of the docs/conventions.md §1 conventions in hopose.skeleton: if one of these fails, a
layout changed."""

from __future__ import annotations

import ast
import itertools
import re

import torch

from hopose.skeleton import (
    BOX_EDGES,
    BOX_FACES,
    CORNER_SIGNS,
    FINGER_CHAINS,
    FINGERS,
    FINGERTIPS,
    FPHA_TO_CANONICAL,
    HAND_BONES,
    JOINT_NAMES,
    MANO_TO_CANONICAL,
    NUM_CORNERS,
    NUM_JOINTS,
    NUM_NODES,
    NUM_SEGMENTATION_CLASSES,
    OPPOSITE_FACES,
    PART_NODES,
    SEGMENTATION_CLASSES,
    box_adjacency,
    corner_signs,
    hand_adjacency,
    hand_object_adjacency,
    layout_tensor,
)

# The layouts as docs/conventions.md §1 and §6 write them, copied character for character.
CONVENTION_CORNERS = (
    "0 (−,−,−), 1 (+,−,−), 2 (+,+,−), 3 (−,+,−), 4 (−,−,+), 5 (+,−,+), 6 (+,+,+), 7 (−,+,+)"
)
CONVENTION_FACES = "(0,1,2,3), (4,5,6,7), (0,1,5,4), (3,2,6,7), (0,3,7,4), (1,2,6,5)"
CONVENTION_OPPOSITE_FACES = "(0,1), (2,3), (4,5)"
CONVENTION_FPHA_MAP = "[0, 1,6,7,8, 2,9,10,11, 3,12,13,14, 4,15,16,17, 5,18,19,20]"
CONVENTION_MANO_MAP = "[0,13,14,15,16,1,2,3,17,4,5,6,18,10,11,12,19,7,8,9,20]"


def _spec_list(text: str) -> list:
    """A list written in docs/conventions.md, such as "(0,1), (2,3)" or "[0, 1, 6]" as a Python
    list."""
    return list(ast.literal_eval(text))


def _differing_bits(a: int, b: int) -> int:
    """How many of the (x, y, z) sign bits differ between corners a and b."""
    return sum(s != t for s, t in zip(CORNER_SIGNS[a], CORNER_SIGNS[b], strict=True))


def test_convention_counts():
    assert (NUM_JOINTS, NUM_CORNERS, NUM_NODES) == (21, 8, 29)


def test_convention_joint_order():
    # docs/conventions.md §1: 0 wrist; 1-4 thumb (CMC, MCP, IP, tip); 5-8 index (MCP, PIP, DIP,
    # tip); 9-12
    # middle; 13-16 ring; 17-20 little.
    expected = [
        "wrist",
        *("thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip"),
        *("index_mcp", "index_pip", "index_dip", "index_tip"),
        *("middle_mcp", "middle_pip", "middle_dip", "middle_tip"),
        *("ring_mcp", "ring_pip", "ring_dip", "ring_tip"),
        *("little_mcp", "little_pip", "little_dip", "little_tip"),
    ]
    assert list(JOINT_NAMES) == expected
    assert FINGERS == ("thumb", "index", "middle", "ring", "little")
    assert FINGER_CHAINS == (
        (1, 2, 3, 4),
        (5, 6, 7, 8),
        (9, 10, 11, 12),
        (13, 14, 15, 16),
        (17, 18, 19, 20),
    )
    assert FINGERTIPS == (4, 8, 12, 16, 20)


def test_convention_bones_form_the_kinematic_tree():
    assert len(HAND_BONES) == 20
    # The wrist to each finger's base, then along each finger.
    expected = {(0, 1), (0, 5), (0, 9), (0, 13), (0, 17)} | {
        (j, j + 1) for base in (1, 5, 9, 13, 17) for j in range(base, base + 3)
    }
    assert set(HAND_BONES) == expected
    # A tree rooted at the wrist: every other joint has exactly one parent, listed before it.
    parents = {child: parent for parent, child in HAND_BONES}
    assert sorted(parents) == list(range(1, NUM_JOINTS))
    assert all(parent < child for child, parent in parents.items())


def test_convention_corner_signs():
    # docs/conventions.md §1: corner c has the sign bits (x, y, z), in the order 0 (−,−,−), ...
    expected = [
        tuple(-1 if sign == "−" else 1 for sign in bits)
        for bits in re.findall(r"\((.),(.),(.)\)", CONVENTION_CORNERS)
    ]
    assert len(expected) == 8 and expected == list(CORNER_SIGNS)
    # Each axis has four corners of each sign, and any two axes agree on four corners and differ
    # on the other four: the sign columns are orthogonal, signsᵀ signs = 8 I, which
    # hopose.geometry.box_axes relies on to read a cuboid's half-edges.
    signs = corner_signs()
    assert torch.equal(signs, torch.tensor(expected, dtype=torch.float32))
    torch.testing.assert_close(signs.T @ signs, 8 * torch.eye(3))


def test_convention_faces_are_cyclic_quads_of_box_edges():
    assert list(BOX_FACES) == _spec_list(CONVENTION_FACES)
    planes = set()
    for face in BOX_FACES:
        # Each of the 4 sides (a,b), (b,c), (c,d), (d,a) joins corners differing in one sign bit:
        # a box edge, so the quad goes around the face, never across a diagonal.
        for k in range(4):
            assert _differing_bits(face[k], face[(k + 1) % 4]) == 1, face
        # The four corners share exactly one sign bit: the face's plane.
        shared = [axis for axis in range(3) if len({CORNER_SIGNS[c][axis] for c in face}) == 1]
        assert len(shared) == 1, face
        planes.add((shared[0], CORNER_SIGNS[face[0]][shared[0]]))
    # The six faces are the six planes x = +-1, y = +-1, z = +-1.
    assert planes == {(axis, sign) for axis in range(3) for sign in (-1, 1)}


def test_convention_opposite_faces():
    assert list(OPPOSITE_FACES) == _spec_list(CONVENTION_OPPOSITE_FACES)
    for i, j in OPPOSITE_FACES:
        # Opposite faces have no corner in common and together hold all 8.
        assert sorted(BOX_FACES[i] + BOX_FACES[j]) == list(range(NUM_CORNERS))


def test_convention_box_edges():
    # The 12 pairs of corners that differ in exactly one sign bit, each once.
    expected = [
        (a, b)
        for a, b in itertools.combinations(range(NUM_CORNERS), 2)
        if _differing_bits(a, b) == 1
    ]
    assert len(expected) == 12
    assert sorted(BOX_EDGES) == expected


def test_convention_fpha_map():
    assert list(FPHA_TO_CANONICAL) == _spec_list(CONVENTION_FPHA_MAP)
    assert sorted(FPHA_TO_CANONICAL) == list(range(NUM_JOINTS))
    # FPHA's own order: wrist, the five finger bases (thumb..little), then the three further
    # joints of each finger in turn. So finger f's base is FPHA 1 + f, its joint p >= 1 is
    # FPHA 6 + 3 f + (p - 1).
    for f, chain in enumerate(FINGER_CHAINS):
        expected = [1 + f] + [6 + 3 * f + p for p in range(3)]
        assert [FPHA_TO_CANONICAL[k] for k in chain] == expected


def test_convention_mano_map():
    assert list(MANO_TO_CANONICAL) == _spec_list(CONVENTION_MANO_MAP)
    assert sorted(MANO_TO_CANONICAL) == list(range(NUM_JOINTS))
    # MANO's order: wrist, three joints each of index (1), middle (4), little (7), ring (10),
    # thumb (13), then the tips of thumb, index, middle, ring, little (16-20).
    chain_start = {"thumb": 13, "index": 1, "middle": 4, "ring": 10, "little": 7}
    for f, (finger, chain) in enumerate(zip(FINGERS, FINGER_CHAINS, strict=True)):
        expected = [chain_start[finger] + p for p in range(3)] + [16 + f]
        assert [MANO_TO_CANONICAL[k] for k in chain] == expected


def test_convention_adjacencies():
    hand, box, both = hand_adjacency(), box_adjacency(), hand_object_adjacency()
    assert hand.shape == (21, 21) and box.shape == (8, 8) and both.shape == (29, 29)
    for adj in (hand, box, both):
        assert torch.equal(adj, adj.T)
        assert torch.equal(adj.diagonal(), torch.zeros(len(adj)))
        assert set(adj.unique().tolist()) <= {0.0, 1.0}
    # Degrees: the wrist joins 5 finger bases, the tips end a chain, the rest are links of 2.
    expected_hand = [5] + [2, 2, 2, 1] * 5
    assert hand.sum(dim=1).tolist() == expected_hand
    # Every corner of a box meets 3 edges.
    assert box.sum(dim=1).tolist() == [3] * 8
    # Hand first, corners after, no edge between them.
    assert torch.equal(both[:21, :21], hand) and torch.equal(both[21:, 21:], box)
    assert both[:21, 21:].abs().sum() == 0


def test_convention_part_nodes_are_the_hand_joints_then_the_corners():
    """The 29-node graph's parts: nodes 0..20 are the hand's joints 0..20, nodes 21..28 the
    box's corners 0..7 (corner c is node 21 + c), each node in exactly one part."""
    assert list(PART_NODES) == ["hand", "object"]
    assert list(PART_NODES["hand"]) == list(range(21))
    assert list(PART_NODES["object"]) == [21 + c for c in range(8)]


def test_convention_segmentation_classes_name_the_box_faces_in_order():
    """Class 0 is the background, 1 the hand, 2 + f the face BOX_FACES[f], named by the plane
    its four corners share: face 0 = (0, 1, 2, 3) has z = -1 at all four, so class 2 is
    "box z-"; the encoder's head has one output per class."""
    assert SEGMENTATION_CLASSES[:2] == ("background", "hand")
    assert NUM_SEGMENTATION_CLASSES == len(SEGMENTATION_CLASSES) == 2 + len(BOX_FACES) == 8
    for f, face in enumerate(BOX_FACES):
        (axis,) = [a for a in range(3) if len({CORNER_SIGNS[c][a] for c in face}) == 1]
        sign = "-" if CORNER_SIGNS[face[0]][axis] < 0 else "+"
        assert SEGMENTATION_CLASSES[2 + f] == f"box {'xyz'[axis]}{sign}", face


def test_adjacency_sums_the_float32_features_of_each_nodes_neighbours():
    """A @ X, as a graph convolution applies the adjacency to float32 node features, gives each
    node the sum of its neighbours' features. With feature = node index: the wrist (node 0) gets
    its finger bases 1 + 5 + 9 + 13 + 17 = 45, the thumb CMC (1) gets 0 + 2 = 2, the thumb tip
    (4) gets 3, box corner 0 (node 21) gets corners 1, 3, 4: 22 + 24 + 25 = 71."""
    features = torch.arange(NUM_NODES, dtype=torch.float32)[:, None]
    summed = (hand_object_adjacency() @ features)[:, 0]  # a float64 adjacency raises here
    assert summed[[0, 1, 4, 21]].tolist() == [45.0, 2.0, 3.0, 71.0]
    # Naive reference: every edge adds each end's index to the other end.
    expected = [0.0] * NUM_NODES
    box_nodes = [(NUM_JOINTS + a, NUM_JOINTS + b) for a, b in BOX_EDGES]
    for a, b in [*HAND_BONES, *box_nodes]:
        expected[a] += b
        expected[b] += a
    assert summed.tolist() == expected


def test_layout_tensor_is_made_once_and_outside_inference_mode():
    # Made once per table, device and dtype and shared, so that no step copies a table to the
    # device again. The first call may come under inference mode (a validation pass before any
    # training step): the table must still index tensors autograd saves the index of.
    layout_tensor.cache_clear()
    cpu = torch.device("cpu")
    with torch.inference_mode():
        faces = layout_tensor(BOX_FACES, cpu)
    assert not faces.is_inference()
    assert layout_tensor(BOX_FACES, cpu) is faces
    assert torch.equal(faces, torch.tensor(BOX_FACES))
    corners = torch.zeros(NUM_CORNERS, 3, requires_grad=True)
    corners[faces].sum().backward()
    assert torch.equal(corners.grad, torch.full((NUM_CORNERS, 3), 3.0))  # 3 faces a corner
    signs = layout_tensor(CORNER_SIGNS, cpu, torch.float64)
    assert signs.dtype == torch.float64 and torch.equal(signs, corner_signs().double())
