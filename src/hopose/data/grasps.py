"""Procedural right hands grasping boxes, in the camera frame: the poses of the synthetic
dataset (:class:`hopose.data.synthetic.SyntheticHandObject`, docs/synthetic.md; the real-data
priors: docs/conventions.md §7).

Sample i of seed s draws every number of its pose from ``numpy.random.default_rng([s, i])``
alone (:func:`generate_grasps`), so a pose does not depend on the other samples generated with
it. The geometry is computed for many samples at once, vectorised over them, each with its own
numbers.

Recipe (after the FPHA-HO priors of docs/synthetic.md), all in mm:

1. Box: one of the FPHA-HO objects (approximate sizes, ±10%) or a generic hand-held box. Its own
   z axis is its longest side, so the affinity loss's central axis (docs/conventions.md §2) is
   the box's z axis and its radius is ``L = (size_x + size_y) / 2``.
2. Hand: a right hand whose 20 bones are FPHA-HO's medians (docs/synthetic.md) times one
   hand-size factor (mean 1.02, sd 4.5%) times a per-bone factor (sd 5%, the little finger's
   PIP-DIP 9%, :data:`BONE_SD`): wrist to middle fingertip has median 170 mm and p5-p95 about
   155-185 mm (FPHA measures 156-180; an issue's "about 170-200" is the larger of the two, the
   FPHA-HO statistics win). Each finger and the thumb is a planar chain of three segments
   with flexion limits (MCP -15..90°, PIP 0..110°, DIP 0..80°; thumb CMC -20..50°, MCP
   -10..60°, IP -15..30°). Hand frame: x from the wrist towards the fingers, z the palm normal
   (the side fingers flex to), y = z × x from the index towards the little finger; the thumb
   is on -y, which makes it a right hand. As in FPHA-HO's annotations, a finger's
   PIP (the thumb's MCP) is locked straight with probability 0.63 (0.86), the next joint then
   bending up to 15° further (:func:`_locked_limits`). Each finger's DIP closes at most to a
   drawn angle (:data:`DIP_GOAL_DEG`), so a fingertip that meets nothing stops where FPHA-HO's
   DIPs do rather than at the joint's limit.
3. Grasp, drawn per attempt with the object's :data:`OBJECT_GRASP_WEIGHTS` (FPHA-HO's milk
   mostly in power grasps, its salt in lateral ones, whose fingers close less,
   :data:`OBJECT_FINGER_GOAL`): "power" (palm 15-30 mm off a side face, the middle MCP 5-30 mm
   short of the far edge, fingers bending over that edge, thumb going for the face across),
   "pinch" (palm 25-45 mm above an end face, MCPs 35-65 mm short of one of its edges,
   fingertips over it, thumb on the opposite side face), "lateral" (the same from beside a side
   face: palm over it, fingertips and thumb on the two faces next to it).
   The palm stands off and back far enough that the fingers curl about as much as FPHA-HO's
   (curl p50 90-104°) instead of wrapping round the box, and in power grasps close enough to
   the edge that the MCPs take FPHA-HO's share of it. The thumb starts aimed 25 mm outside
   its face but opens at most a drawn angle from the index metacarpal (FPHA-HO's thumb
   opposition), tried at :data:`THUMB_TRIES` openings in one closing. Every chain then closes
   from an open pre-shape (an unlocked thumb MCP already bent 10-45°, as FPHA-HO's bent ones)
   until a segment first comes within the skin distance (2-5 mm) of the box at its far end, or
   within half that anywhere along it, the joints proximal to a touching segment stopping and
   the distal ones going on (GraspIt's auto-grasp, tested exactly for the whole segment with
   the Chebyshev distance to the box, :func:`segments_meet_box`), so pads and tips touch and
   no phalanx cuts through an edge. A chain that touches already in its pre-shape stays in it.
4. Free frames (``free_fraction``, default 20%): a grasp whose joints are opened to 60-100% of
   their flexion and which is moved 30-120 mm back along the palm normal, then further if
   needed until every joint and bone point (3 a segment, :data:`SEGMENT_FRACTIONS`) is more
   than ``eta * L + 1`` mm from the box: no valid contact for the affinity loss (``eta`` =
   0.2). Its thumb keeps :data:`THUMB_FINGER_GAP` from the fingers, as a grasp's does (5.).
5. Acceptance: among the 10 (joint, face) pairs nearest to the faces' 11×11 grids (the affinity
   loss's contact search), a thumb joint and a joint of another finger must both lie within
   ``eta * L - 0.5`` mm, which makes at least two contacts valid under
   :func:`hopose.physics.contact_points` with the thumb opposing the fingers; at least two
   fingertips are within 10 mm of the box, no bone (the whole segment between two joints,
   the metacarpals included) reaches more than 2 mm inside it, and the thumb's bones keep
   :data:`THUMB_FINGER_GAP` (5 mm) from the other fingers' (:func:`segment_distances`), which
   the thumb's choice of opening (3.) prefers too. A sample whose attempt fails makes a new
   attempt with its next random numbers.
6. Camera: FPHA's colour camera, its focal lengths multiplied by ``focal_scale`` (1 by
   default; a ``(low, high)`` range draws a log-uniform factor per sample from
   ``default_rng([seed, i, 2])``, so the grasps do not depend on it). The pair is rotated so
   the palm frame (wrist to middle MCP, palm normal) is drawn around FPHA-HO's (the back of the
   hand seen in about 74% of frames), and placed with the hand centroid at a depth of 280-520 mm
   and at an image position drawn around FPHA-HO's (docs/synthetic.md), its column correlated
   with the direction the fingers point across the image (:data:`CENTROID_U_PALM_CORRELATION`:
   FPHA-HO's wrists spread less across the frame than its centroids), through that camera: a
   longer focal length sees the same depths and image positions, so the hand stays in view,
   with its rays closer to the optical axis. The first of 8 drawn placements that leaves at
   most 3 of the 29 keypoints outside the 1920×1080 frame is kept (at most 10 in
   :data:`PARTLY_OUT_FRACTION` of the samples, FPHA-HO's hands partly out of frame); when none
   does, the one that leaves the fewest is moved back along its centroid's ray by the least
   factor (1.1, 1.2 ... 2) that does.
7. Corner labels: of the four orientations of the box that look alike (half turns about its
   axes), the corners are labelled in the one held the usual way round, +x and +z along the
   hand axes they lie on (:func:`label_in_hand`): the rendered marks on the box's faces and the
   hand both tell the corner order.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch

from hopose.data.fpha import FPHA_COLOR_K, FPHA_IMAGE_SIZE
from hopose.geometry import AXIS_EDGES, FACE_NORMALS, axis_angle_to_matrix, project_points
from hopose.physics import ETA, TOP_K
from hopose.physics import N_SAMPLES as GRID
from hopose.skeleton import (
    CORNER_SIGNS,
    FINGER_CHAINS,
    FINGERTIPS,
    HAND_BONES,
    NUM_JOINTS,
    NUM_NODES,
)

GRASP_TYPES: tuple[str, ...] = ("power", "pinch", "lateral")
# Seeds are one 32-bit word: numpy's SeedSequence splits a larger integer into 32-bit words and
# pads short entropy with zeros, so [s + 2**32, 0] would be the same stream as [s, 1] (seed
# 2**32's sample 0 would be seed 0's sample 1, and a split's seed another split's).
SEED_LIMIT = 2**32
# The seeds' range as messages write it.
SEED_RANGE_TEXT = f"[0, 2**{SEED_LIMIT.bit_length() - 1})"
# Default probability of a free (approach/release) frame, without contact (module docstring, 4).
DEFAULT_FREE_FRACTION = 0.2

# Box sizes (x, y, z) in mm, z the longest side. The FPHA-HO objects' sizes are approximations
# chosen by eye from the dataset's images, not measured from its models.
FPHA_OBJECTS: dict[str, tuple[float, float, float]] = {
    "juice_bottle": (62.0, 62.0, 200.0),
    "milk": (68.0, 68.0, 190.0),
    "liquid_soap": (72.0, 46.0, 185.0),
    "salt": (52.0, 52.0, 110.0),
}
GENERIC_OBJECT = "box"
OBJECT_NAMES: tuple[str, ...] = (*FPHA_OBJECTS, GENERIC_OBJECT)
GENERIC_PROBABILITY = 0.4  # a generic box rather than one of FPHA_OBJECTS
GENERIC_CROSS, GENERIC_MAX_LENGTH = (38.0, 95.0), 220.0
# Probability of each grasp type (GRASP_TYPES order) at each attempt, per object (OBJECT_NAMES
# order). Failed attempts draw again, so the kept mix leans towards the types that succeed more
# often (docs/synthetic.md). FPHA-HO's milk is held closed (mean finger flexion p50 47°): mostly
# power grasps; its salt open (28°, thumb-index tips 71 mm apart): mostly lateral grasps across
# the box. The juice bottle and the generic boxes take more pinch grasps instead, which keeps the
# kept mix over all objects where it was (about 31% power, 35% pinch, 13% lateral and 20%
# free frames, docs/synthetic.md).
OBJECT_GRASP_WEIGHTS = np.array(
    [
        [0.40, 0.50, 0.10],  # juice_bottle
        [0.80, 0.15, 0.05],  # milk
        [0.45, 0.35, 0.20],  # liquid_soap
        [0.05, 0.15, 0.80],  # salt
        [0.45, 0.50, 0.05],  # generic box
    ]
)
# Factor on the fingers' MCP and PIP closing goals per object: a salt grasp's fingers that meet
# nothing stay open (FPHA-HO's salt frames: mean finger flexion p25-p75 25-33°).
OBJECT_FINGER_GOAL = np.array([1.0, 1.0, 1.0, 0.7, 1.0])

# FPHA-HO's bone-length medians (mm) per chain, bones from the wrist outwards (HAND_BONES
# order): the p50 of hopose.data.grasp_stats.REAL's bone rows, tabled in docs/synthetic.md,
# "Comparison with FPHA-HO's annotations".
BONE_LENGTH_P50 = np.array(
    [
        [13.7, 56.7, 37.9, 29.0],  # thumb: wrist-CMC, CMC-MCP, MCP-IP, IP-tip
        [74.0, 45.2, 27.6, 21.0],  # index: wrist-MCP, MCP-PIP, PIP-DIP, DIP-tip
        [67.0, 48.5, 30.0, 21.0],  # middle
        [65.0, 44.0, 28.0, 21.0],  # ring
        [63.0, 37.2, 24.0, 18.0],  # little
    ]
)
HAND_SCALE_MEAN, HAND_SCALE_SD = 1.02, 0.045
# Each bone's own relative sd (normal, clipped at 2 sd), rows as BONE_LENGTH_P50: 5%, except the
# little finger's PIP-DIP bone, FPHA-HO's widest (p5-p95 18-33 mm about a 24 mm median).
BONE_SD = np.full((5, 4), 0.05)
BONE_SD[4, 2] = 0.09

# Directions of the wrist-to-base bones in the hand frame: angle from x in the palm plane (deg)
# and a palmar slope that cups the palm. Row 0 is the thumb CMC, which sits next to the wrist.
BASE_ANGLE_DEG = np.array([-55.0, -20.0, -5.0, 10.0, 24.0])
BASE_SLOPE = np.array([-0.3, 0.0, 0.0, 0.04, 0.04])
# Resting abduction of each finger's first phalanx from x, in the palm plane (deg).
FINGER_ABDUCTION_DEG = np.array([-10.0, -2.0, 5.0, 9.0])
# Flexion limits (deg) of the three joints of each chain: thumb CMC/MCP/IP, finger MCP/PIP/DIP.
# The thumb's IP closes to 30° (45° after a locked MCP): FPHA-HO's IP p75 is 27°, p95 44°.
THUMB_LIMITS_DEG = np.array([[-20.0, 50.0], [-10.0, 60.0], [-15.0, 30.0]])
FINGER_LIMITS_DEG = np.array([[-15.0, 90.0], [0.0, 110.0], [0.0, 80.0]])
FLEX_HIGH = np.deg2rad(np.stack([THUMB_LIMITS_DEG[:, 1]] + [FINGER_LIMITS_DEG[:, 1]] * 4))
# FPHA's annotations record a finger's PIP (the thumb's MCP) exactly straight in 53-74% (86%)
# of frames while the next joint stays bent: the generated hands lock that joint as often.
# The joint after a locked one may bend further, as FPHA's do (DIP p95 91-96°).
PIP_STRAIGHT_PROBABILITY, THUMB_MCP_STRAIGHT_PROBABILITY = 0.63, 0.86
LOCKED_EXTRA_FLEX = np.deg2rad(15.0)
# Thumb opposition (thumb CMC->MCP vs index wrist->MCP, deg): an aimed thumb is turned back
# towards the index metacarpal to at most this angle, drawn per sample (FPHA-HO: p25-p75
# 32-49°; the thumb's own flexion opens it further).
OPPOSITION_MEAN_DEG, OPPOSITION_SD_DEG, OPPOSITION_RANGE_DEG = 45.0, 12.0, (20.0, 90.0)
# Openings tried when the thumb does not reach its face: the drawn one, wider by this step, and
# finally unlimited.
THUMB_TRIES, THUMB_OPENING_STEP_DEG = 3, 15.0
# Open pre-shape: start flexions (deg) drawn between these, per chain (thumb first) and joint.
# An unlocked thumb MCP starts bent 10-45°: closing from straight it stops at about 10° when the
# thumb meets its face, where FPHA-HO's bent thumb MCPs are at 20-42° (p25-p75).
START_LOW_DEG = np.array([[-5.0, 10.0, 0.0]] + [[-5.0, 0.0, 0.0]] * 4)
START_HIGH_DEG = np.array([[10.0, 45.0, 15.0]] + [[10.0, 15.0, 15.0]] * 4)
POWER_MCP_START_DEG = (-15.0, -5.0)  # power grasps: fingers start bent back, off the palm face
# Each finger's DIP closes at most to a drawn angle (deg, uniform between a row's two values;
# index, middle, ring, little), so a fingertip that meets nothing stops where FPHA-HO's DIPs do
# (p25-p75: index 28-56°, the others 34-73°) instead of at the joint's limit.
DIP_GOAL_DEG = np.array([[20.0, 65.0], [30.0, 80.0], [35.0, 85.0], [35.0, 85.0]])
# Power grasps: the palm's gap to its face and how far the middle MCP stops short of the far
# edge (mm, uniform). Close to the edge, the first phalanx bends over it (FPHA-HO MCP p50
# 34-46°) before touching, and the other phalanges share less of the curl.
POWER_PALM_GAP, POWER_MCP_SHORT = (15.0, 30.0), (5.0, 30.0)
# Pinch and lateral grasps: the palm's gap to its face and how far the MCPs stop short of the
# edge the fingertips go over (mm, uniform).
OVER_EDGE_PALM_GAP, OVER_EDGE_MCP_SHORT = (25.0, 45.0), (35.0, 65.0)
# Free frames open each joint to this fraction (uniform) of its grasp flexion.
FREE_OPENING = (0.6, 1.0)
MIDDLE_MCP_REACH = 66.0  # mm from the wrist to the middle MCP along the hand's x, roughly

# Joints that count as the thumb's and the other fingers' contacts (not their bases).
THUMB_CONTACT_JOINTS = FINGER_CHAINS[0][1:]
FINGER_CONTACT_JOINTS = tuple(j for chain in FINGER_CHAINS[1:] for j in chain[1:])
CLOSE_STEPS = (8, 6)  # coarse and fine steps of the finger-closing search
# Points along each finger segment that a free frame's clearance from the box is measured at.
SEGMENT_FRACTIONS = np.array([1 / 3, 2 / 3, 1.0])
MAX_PENETRATION = 2.0  # mm a bone (a segment between two joints) may reach inside the box
_BONE_PARENT, _BONE_CHILD = np.array(HAND_BONES).T  # (20,) each: the bones' joints
# Share of a grasp's skin distance at which a segment touches along its length; its far end (the
# pad) touches at the whole distance. A phalanx that rests on an edge presses into the skin
# further than a pad does; at 1 the fingers closed less than FPHA-HO's (docs/synthetic.md).
SEGMENT_SKIN = 0.5
# mm the thumb's bones keep from the other fingers' (centre line to centre line): no thumb
# crossing through a finger. Fingers are 16-20 mm thick, so this still lets the two overlap;
# a 10 mm gap drew thumbs further from FPHA-HO's (docs/synthetic.md, "Bones through edges").
THUMB_FINGER_GAP = 5.0
# A grasp touches the box with at least this many fingertips (thumb included) within
# TIP_CONTACT mm: a finger whose PIP is locked may otherwise hold only with its middle segment.
TIPS_TOUCHING, TIP_CONTACT = 2, 10.0
CONTACT_MARGIN = 0.5  # mm by which accepted contacts beat eta * L, robust to float32 rounding
MAX_ATTEMPTS = 40
# Factors on the hand centroid's distance tried when no placement is in view (1: as drawn).
PUSH_BACK = np.linspace(1.0, 2.0, 11)

# Camera placement priors (FPHA-HO annotation statistics, docs/synthetic.md): hand centroid
# pixel (1920×1080) and depth (mm).
CENTROID_PIXEL_MEAN, CENTROID_PIXEL_SD = np.array([1098.0, 600.0]), np.array([230.0, 340.0])
# Correlation of the centroid's column with the palm axis y''s x component: the hand turns
# about a wrist that the arm holds, so FPHA-HO's wrists spread less across the image than its
# centroids (wrist x p5 / p95 -13 / 181 mm); drawn independently, the wrist-to-centroid offset
# adds its own spread (-34 / 203 mm, docs/synthetic.md).
CENTROID_U_PALM_CORRELATION = 0.7
CENTROID_PIXEL_LOW, CENTROID_PIXEL_HIGH = np.array([700.0, 60.0]), np.array([1650.0, 1040.0])
DEPTH_MEAN, DEPTH_SD, DEPTH_LOW, DEPTH_HIGH = 410.0, 75.0, 280.0, 520.0
# Palm frame in the camera (FPHA-HO medians and spreads of its components): y' from the wrist
# to the middle MCP points up and away, n out of the palm; the back of the hand faces the camera
# in about 74% of frames.
PALM_Y_MEAN, PALM_Y_SD = np.array([-0.15, -0.70, 0.61]), np.array([0.33, 0.40, 0.36])
PALM_N_MEAN, PALM_N_SD = np.array([-0.47, 0.50, 0.39]), np.array([0.30, 0.80, 0.36])
CAMERA_TRIES = 8
# Keypoints (of 29) allowed outside the original frame, and in PARTLY_OUT_FRACTION of the
# samples, which stand for FPHA-HO's 13% of frames with more than 3 keypoints outside.
MAX_OUTSIDE, MAX_OUTSIDE_PARTLY, PARTLY_OUT_FRACTION = 3, 10, 0.12

# Uniform and normal numbers one attempt draws, and where each goes.
_U_KIND, _U_SKIN, _U_SLOPE, _U_SPREAD = 0, 1, 2, 3
_U_START = slice(4, 19)  # 15 start flexions
_U_PLACE = slice(19, 25)  # 6 placement numbers
_U_OPEN, _U_BACK = 25, 26
_U_LOCK = slice(27, 32)  # thumb MCP and finger PIP locks
_U_DIP = slice(32, 36)  # finger DIP goals
_NUM_U = 36
_Z_SCALE, _Z_BONES, _Z_ANGLE, _Z_SPREAD, _Z_TILT = (
    0,
    slice(1, 21),
    slice(21, 26),
    slice(26, 30),
    slice(30, 33),
)
_Z_OPPOSE = 33
_NUM_Z = 34

# The axis each BOX_FACES face is normal to, and its side.
_FACE_AXIS = np.array([axis for axis, _ in FACE_NORMALS])
_FACE_SIGN = np.array([sign for _, sign in FACE_NORMALS], dtype=np.float64)


@dataclass(frozen=True)
class Grasps:
    """Generated hand-object configurations in the camera frame.

    Attributes:
        hand_3d: (B, 21, 3) joints, mm.
        obj_3d: (B, 8, 3) box corners, docs/conventions.md §1 order, mm.
        grasp: B of "power", "pinch", "lateral", "free".
        object: B object names.
    """

    hand_3d: np.ndarray
    obj_3d: np.ndarray
    grasp: list[str]
    object: list[str]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (np.cross is slow on small arrays)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _frame(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation whose columns are the axes x, y = z × x, z (each (..., 3))."""
    return np.stack([x, _cross(z, x), z], axis=-1)


def palm_axes(hand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, 3) unit vectors of (B, 21, 3) hands: wrist to middle MCP, and the palm normal
    (index MCP - wrist) × (little MCP - wrist), out of a right hand's palm.

    The one palm frame of the generator's placement and labelling and of the statistics it is
    compared with (:mod:`hopose.data.grasp_stats`), so both measure the same axes.
    """
    fingers = _unit(hand[:, 9] - hand[:, 0])
    return fingers, _unit(_cross(hand[:, 5] - hand[:, 0], hand[:, 17] - hand[:, 0]))


def _rotations(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations from (..., 3) axis-angle vectors (geometry.axis_angle_to_matrix)."""
    return axis_angle_to_matrix(torch.from_numpy(axis_angle)).numpy()


def box_signed_distance(points: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Signed distance (mm, negative inside) of points (..., 3) in the box frame to the box.

    Args:
        points: (..., 3) in the box frame (centred, axis-aligned).
        half: (..., 3) half sizes, broadcast against ``points``.
    """
    q = np.abs(points) - half
    outside = np.sqrt(np.square(np.maximum(q, 0.0)).sum(axis=-1))
    return outside + np.minimum(q.max(axis=-1), 0.0)


def segments_meet_box(start: np.ndarray, end: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Whether each segment start→end meets the closed axis-aligned box ``|x| <= half``.

    The slab test: along the segment ``start + t (end - start)``, t in [0, 1], each coordinate
    lies within its slab for an interval of t; the segment meets the box where the three
    intervals and [0, 1] overlap. Exact for the whole segment, where points along it are not.

    Args:
        start, end: (..., 3) segment ends in the box frame.
        half: (..., 3) half sizes, broadcast against them.

    Returns:
        (...) bool.
    """
    enter, leave = np.zeros(np.broadcast_shapes(start.shape[:-1], half.shape[:-1])), 1.0
    # Per coordinate: numpy reduces a tiny trailing axis slowly.
    for x in range(3):
        a, step, h = start[..., x], end[..., x] - start[..., x], half[..., x]
        flat = step == 0  # in its slab all along, or never
        inside = np.abs(a) <= h
        with np.errstate(divide="ignore", invalid="ignore"):
            t0, t1 = (-h - a) / step, (h - a) / step
        low = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(t0, t1))
        high = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(t0, t1))
        enter, leave = np.maximum(enter, low), np.minimum(leave, high)
    return enter <= leave


def segment_distances(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Least distance between segments p0→p1 and q0→q1, each of nonzero length.

    The squared distance between ``p0 + s (p1 - p0)`` and ``q0 + t (q1 - q0)`` is a convex
    quadratic in (s, t) on the unit square. s is taken where the two lines are closest (0 for
    parallel lines) and clamped to [0, 1]; t is the best for that s, clamped; s is then the best
    for that t, clamped. At the minimum each parameter is the best for the other, so where the
    first s was already right the last step keeps it, and where clamping t moved the minimum to
    an edge of the square the last step finds it there.

    Args:
        p0, p1, q0, q1: (..., 3) segment ends, broadcast against each other.

    Returns:
        (...) distances.
    """
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e, b = (d1 * d1).sum(-1), (d2 * d2).sum(-1), (d1 * d2).sum(-1)
    c, f = (d1 * r).sum(-1), (d2 * r).sum(-1)
    denom = a * e - b * b  # >= 0: 0 for parallel lines
    skew = denom > 1e-12 * a * e
    s = np.clip(np.where(skew, b * f - c * e, 0.0) / np.where(skew, denom, 1.0), 0.0, 1.0)
    t = np.clip((b * s + f) / e, 0.0, 1.0)
    s = np.clip((b * t - c) / a, 0.0, 1.0)
    gap = r + s[..., None] * d1 - t[..., None] * d2
    return np.sqrt((gap * gap).sum(-1))


def face_grid_distances(points: np.ndarray, half: np.ndarray) -> np.ndarray:
    """docs/conventions.md §2 d(i, j): distance of each point to the nearest of each face's N×N
    grid points.

    The grid of an axis-aligned face is a regular lattice, so its nearest point is found axis
    by axis: the in-face coordinates are rounded to the grid, the normal one is the face's.

    Args:
        points: (B, P, 3) in the box frame. half: (B, 3) half sizes.

    Returns:
        (B, P, 6) distances, faces in BOX_FACES order.
    """
    half = half[:, None, :]
    step = 2 * half / (GRID - 1)
    snapped = np.clip(np.round((points + half) / step), 0, GRID - 1) * step - half  # (B, P, 3)
    on_face = np.broadcast_to(snapped[:, :, None, :], (*points.shape[:2], 6, 3)).copy()
    faces = np.arange(6)
    on_face[:, :, faces, _FACE_AXIS] = _FACE_SIGN * half[:, :, _FACE_AXIS]  # (B, P, 6)
    return np.linalg.norm(points[:, :, None, :] - on_face, axis=-1)


@dataclass
class _Hands:
    """B hands in their own frames as five planar chains each (thumb first).

    Joint k of a chain is at ``base + sum_{j<=k} L_j (cos phi_j d + sin phi_j n)`` with ``phi_j``
    the cumulative flexion of the chain's joints 0..j. The arrays may also hold other batches of
    chains (:func:`_close` takes the chains it searches as (N, 1, 3) arrays, one hand each).
    """

    base: np.ndarray  # (B, 5, 3) chain roots: thumb CMC, finger MCPs
    axis_d: np.ndarray  # (B, 5, 3) each chain's direction at zero flexion
    axis_n: np.ndarray  # (B, 5, 3) its flexion direction, orthogonal to axis_d
    length: np.ndarray  # (B, 5, 3) segment lengths

    def chain_points(self, theta: np.ndarray) -> np.ndarray:
        """(..., B, C, 4, 3) each chain's base and its three segments' ends; theta (..., B, C, 3)
        (or any (..., 3) flexions that broadcast against the chains' arrays)."""
        pts = np.empty((*theta.shape[:-1], 4, 3))
        phi = np.cumsum(theta, axis=-1)
        cos, sin = np.cos(phi), np.sin(phi)
        # One (..., B, C) array per coordinate and segment: numpy is several times slower on
        # arithmetic that broadcasts over the tiny trailing axes of (..., B, C, 4, 3) arrays.
        for x in range(3):
            d, n = self.axis_d[..., x], self.axis_n[..., x]
            pts[..., 0, x] = self.base[..., x]
            for s in range(3):
                step = self.length[..., s] * (cos[..., s] * d + sin[..., s] * n)
                pts[..., s + 1, x] = pts[..., s, x] + step
        return pts

    def points(self, theta: np.ndarray) -> np.ndarray:
        """(..., B, C, 3 F, 3) points at SEGMENT_FRACTIONS of each segment, for theta as in
        :meth:`chain_points`."""
        ends = self.chain_points(theta)
        start, step = ends[..., :-1, None, :], np.diff(ends, axis=-2)[..., None, :]
        pts = start + SEGMENT_FRACTIONS[:, None] * step  # (..., B, C, 3, F, 3)
        return pts.reshape(*pts.shape[:-3], -1, 3)

    def joints(self, theta: np.ndarray) -> np.ndarray:
        """(B, 21, 3) joints in canonical order for flexions theta (B, 5, 3); the wrist at 0."""
        hand = np.zeros((theta.shape[0], NUM_JOINTS, 3))
        hand[:, np.array(FINGER_CHAINS)] = self.chain_points(theta)
        return hand


def _make_hands(u: np.ndarray, z: np.ndarray) -> _Hands:
    """Right hands of random size and finger spread; the thumb's axes are set by the grasp."""
    size = len(u)
    scale = HAND_SCALE_MEAN + HAND_SCALE_SD * np.clip(z[:, _Z_SCALE], -2.5, 2.5)
    noise = 1 + BONE_SD * np.clip(z[:, _Z_BONES], -2, 2).reshape(size, 5, 4)
    bones = BONE_LENGTH_P50 * scale[:, None, None] * noise  # (B, 5, 4)
    angle = np.deg2rad(BASE_ANGLE_DEG + 2.0 * z[:, _Z_ANGLE])  # (B, 5)
    slope = BASE_SLOPE * (0.5 + 1.5 * u[:, _U_SLOPE, None])
    base_dir = _unit(np.stack([np.cos(angle), np.sin(angle), slope], axis=-1))
    spread = 0.3 + 1.1 * u[:, _U_SPREAD, None]
    abduction = np.deg2rad(FINGER_ABDUCTION_DEG * spread + 2.0 * z[:, _Z_SPREAD])  # (B, 4)
    axis_d = np.zeros((size, 5, 3))
    axis_d[:, :, 0] = 1.0
    axis_d[:, 1:, 0], axis_d[:, 1:, 1] = np.cos(abduction), np.sin(abduction)
    axis_n = np.zeros((size, 5, 3))
    axis_n[:, :, 2] = 1.0  # fingers flex towards the palm normal
    return _Hands(base_dir * bones[..., :1], axis_d, axis_n, bones[..., 1:])


def _to_box(points: np.ndarray, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Hand-frame points (..., B, P, 3) to the box frame: ``R x + t`` with (B, 3, 3), (B, 3)."""
    box = points @ np.swapaxes(rot, -1, -2)
    for x in range(3):  # in place, per coordinate: broadcasting over the trailing 3 is slow
        box[..., x] += trans[:, None, x]
    return box


def _close(hands: _Hands, theta, target, rot, trans, half, skin) -> np.ndarray:
    """Close every chain until its segments first come within ``skin`` of the box.

    All moving joints of a chain flex together from ``theta`` towards ``target``; when a
    segment would touch, the joints proximal to it stop and the distal ones go on (three rounds
    at most). Each round finds the first touching step of the closing motion on a coarse grid,
    then refines it between the last free step and the first touching one. A chain that touches
    already at ``theta`` stays there whole: its touching segment, still tested, stops the
    distal joints too (about a third of the kept thumbs, which start aimed at their face;
    closing their distal joints too bent the thumbs' IPs far past FPHA-HO's, docs/synthetic.md).

    Args:
        hands: B hands of C chains. theta, target: (B, C, 3) start and final flexions, rad.
        rot, trans: (B, 3, 3), (B, 3) hand poses in the box frame.
        half: (B, 3) box half sizes. skin: (B,) contact distances, mm.

    Returns:
        (B, C, 3) final flexions.
    """
    theta = theta.copy()  # updated chain by chain
    moving = np.ones(theta.shape, dtype=bool)
    for _ in range(3):
        # Only the N chains with a joint still moving are searched; the others stay where they
        # are. Each is a hand of one chain here, its closing steps along the chain axis.
        b, c = np.nonzero(moving.any(axis=-1))  # (N,) their samples and chains
        rows = np.arange(len(b))
        chain = _Hands(
            hands.base[b, c, None],
            hands.axis_d[b, c, None],
            hands.axis_n[b, c, None],
            hands.length[b, c, None],
        )
        start = theta[b, c]
        goal = np.where(moving[b, c], target[b, c], start)  # (N, 3)
        # A segment touches where its far end comes within the skin of the box, or any point
        # along it within SEGMENT_SKIN of that: exact for the whole segment, where points
        # along it let an edge slip between them. Distances are Chebyshev (the box grown
        # along each axis), never larger than the Euclidean ones, so a chain stops at most
        # skin * (sqrt(3) - 1) early near an edge or corner.
        grown = (half[b] + skin[b, None])[:, None, None]  # (N, 1, 1, 3)
        along = (half[b] + SEGMENT_SKIN * skin[b, None])[:, None, None]
        low, high = np.zeros(len(b)), np.ones(len(b))  # closing fraction bracket
        for steps in CLOSE_STEPS:
            t = low[:, None] + np.linspace(0.0, 1.0, steps) * (high - low)[:, None]  # (N, T)
            candidates = start[:, None] + t[..., None] * (goal - start)[:, None]  # (N, T, 3)
            ends = chain.chain_points(candidates).reshape(len(b), -1, 3)  # (N, T * 4, 3)
            ends = _to_box(ends, rot[b], trans[b]).reshape(len(b), steps, 4, 3)
            near = (np.abs(ends[:, :, 1:]) <= grown).all(axis=-1)  # (N, T, 3) the far ends
            hit = near | segments_meet_box(ends[:, :, :-1], ends[:, :, 1:], along)
            touching = hit.any(axis=-1)  # (N, T)
            blocked = touching.any(axis=-1)
            first = np.where(blocked, touching.argmax(axis=-1), steps - 1)  # (N,)
            low = np.where(blocked, t[rows, np.maximum(first - 1, 0)], t[:, -1])
            high = t[rows, first]
        theta[b, c] = start + low[:, None] * (goal - start)
        segment = hit[rows, first].argmax(axis=-1)  # (N,) the touching segment
        moving[b, c] &= blocked[:, None] & (np.arange(3) > segment[:, None])
        if not moving.any():
            break
    return theta


def _place_power(u: np.ndarray, half: np.ndarray):
    """Palm on a side face, fingers wrapping round the long axis over one of its edges.

    Args:
        u: (B, 6) uniform numbers. half: (B, 3).

    Returns:
        ``(R, t, thumb_face)``: (B, 3, 3), (B, 3) hand poses in the box frame and (B, 3) the
        outward normal of the face the thumb goes for (across the box from the fingertips).
    """
    rows = np.arange(len(u))
    axis = (u[:, 0] < 0.5).astype(int)  # palm on the face normal to box x or y
    normal = np.eye(3)[axis] * np.where(u[:, 1] < 0.5, -1.0, 1.0)[:, None]
    tangent = (
        _cross(np.array([0.0, 0.0, 1.0]), normal) * np.where(u[:, 2] < 0.5, -1.0, 1.0)[:, None]
    )
    rot = _frame(tangent, -normal)
    half_t = np.abs((tangent * half).sum(axis=-1))
    # Wrist behind the palm face with the middle MCP near the far edge and the MCP row (centred
    # on the wrist's y) somewhere along the long axis.
    gap_low, gap_high = POWER_PALM_GAP
    short_low, short_high = POWER_MCP_SHORT
    wrist = normal * (half[rows, axis] + gap_low + (gap_high - gap_low) * u[:, 3])[:, None]
    short = short_high - (short_high - short_low) * u[:, 4]
    wrist += tangent * (half_t - short - MIDDLE_MCP_REACH)[:, None]
    wrist[:, 2] += (2 * u[:, 5] - 1) * np.maximum(half[:, 2] - 30.0, 0.0)
    return rot, wrist, -tangent


def _place_over_edge(u: np.ndarray, half: np.ndarray, palm_axis: np.ndarray, over_axis):
    """Palm above the face normal to ``palm_axis``, fingertips over its edge along ``over_axis``.

    Same arguments and returns as :func:`_place_power`, with the axes (B,) ints; the thumb goes
    for the face opposite the fingertips.
    """
    rows = np.arange(len(u))
    palm = np.eye(3)[palm_axis] * np.where(u[:, 0] < 0.5, -1.0, 1.0)[:, None]
    over = np.eye(3)[over_axis] * np.where(u[:, 1] < 0.5, -1.0, 1.0)[:, None]
    side_axis = 3 - palm_axis - over_axis
    rot = _frame(over, -palm)
    gap_low, gap_high = OVER_EDGE_PALM_GAP
    short_low, short_high = OVER_EDGE_MCP_SHORT
    wrist = palm * (half[rows, palm_axis] + gap_low + (gap_high - gap_low) * u[:, 2])[:, None]
    short = short_high - (short_high - short_low) * u[:, 3]
    wrist += over * (half[rows, over_axis] - short - MIDDLE_MCP_REACH)[:, None]
    side_half = half[rows, side_axis]
    side = (2 * u[:, 4] - 1) * np.maximum(side_half - 30.0, 0.5 * side_half)
    return rot, wrist + np.eye(3)[side_axis] * side[:, None], -over


def _aim_thumb(hands: _Hands, rot, trans, face, half, skin, opposition):
    """A thumb chain's axes aimed at the face with outward normal ``face`` (B, 3).

    The thumb points straight towards a point 25 mm outside the face (the CMC's projection on
    it, kept inside the face's middle 60%), turned back towards the index metacarpal where it
    would open wider than ``opposition`` (B,) rad from it, and flexes towards the face.

    Returns:
        (B, 3) ``axis_d`` and (B, 3) ``axis_n`` of the thumb chain, hand frame.
    """
    cmc = np.einsum("bij,bj->bi", rot, hands.base[:, 0]) + trans  # box frame
    target = np.clip(cmc, -0.6 * half, 0.6 * half)
    target = np.where(face != 0, half * face + face * (skin[:, None] + 25.0), target)
    aim = _unit(np.einsum("bji,bj->bi", rot, target - cmc))  # hand frame
    index = _unit(hands.base[:, 1])
    away = _unit(aim - (aim * index).sum(axis=-1, keepdims=True) * index)
    angle = np.minimum(np.arccos(np.clip((aim * index).sum(axis=-1), -1.0, 1.0)), opposition)
    d = np.cos(angle)[:, None] * index + np.sin(angle)[:, None] * away
    n = np.einsum("bji,bj->bi", rot, -face)
    return d, _unit(n - (n * d).sum(axis=-1, keepdims=True) * d)


def _thumb_clearance(thumbs: np.ndarray, fingers: np.ndarray) -> np.ndarray:
    """(B, K) least distance (mm) between each of K thumbs' segments and the four fingers'.

    Args:
        thumbs: (B, K, 4, 3) thumb chains' points (CMC, MCP, IP, tip), as
            :meth:`_Hands.chain_points` gives them. fingers: (B, 4, 4, 3) the fingers' (MCP,
            PIP, DIP, tip), in the same frame.
    """
    size = len(thumbs)
    # The fingers' 12 segments on one axis, against each thumb's 3: (B, K, 3, 12).
    f0 = fingers[:, :, :-1].reshape(size, 1, 1, -1, 3)
    f1 = fingers[:, :, 1:].reshape(size, 1, 1, -1, 3)
    t0, t1 = thumbs[:, :, :-1, None], thumbs[:, :, 1:, None]
    return segment_distances(t0, t1, f0, f1).min(axis=(-1, -2))


def _thumb_choice(touches: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """(B,) which of K thumb openings, narrowest first, to keep: the narrowest that touches the
    box clear of the fingers, else the narrowest that touches (too near a finger, so the
    attempt then fails), else the widest.

    Args:
        touches, clear: (B, K) bool, each opening's thumb touching the box (not going in) and
            keeping :data:`THUMB_FINGER_GAP` from the fingers.
    """
    fallback = np.where(touches.any(axis=1), touches.argmax(axis=1), touches.shape[1] - 1)
    good = touches & clear
    return np.where(good.any(axis=1), good.argmax(axis=1), fallback)


def _close_with_thumb_choices(hands: _Hands, theta, limits, rot, trans, face, half, skin, z):
    """Aim the thumb, close every chain, and keep the narrowest thumb opening that touches the
    box clear of the fingers (:data:`THUMB_FINGER_GAP`).

    The thumb is tried at :data:`THUMB_TRIES` openings from the sample's drawn opposition angle
    upwards (the last one unlimited) as extra chains of one closing, so the fingers close once.
    Sets ``hands``' thumb axes to the kept opening and returns (B, 5, 3) flexions.
    """
    size = len(theta)
    drawn = np.clip(
        OPPOSITION_MEAN_DEG + OPPOSITION_SD_DEG * z[:, _Z_OPPOSE], *OPPOSITION_RANGE_DEG
    )
    openings = np.deg2rad(drawn[:, None] + THUMB_OPENING_STEP_DEG * np.arange(THUMB_TRIES))
    openings[:, -1] = np.pi
    axes = [
        _aim_thumb(hands, rot, trans, face, half, skin, openings[:, k]) for k in range(THUMB_TRIES)
    ]
    thumbs = [0] * THUMB_TRIES + [1, 2, 3, 4]  # chains of the tried hands: thumbs, then fingers
    tried = _Hands(
        hands.base[:, thumbs],
        np.concatenate([np.stack([d for d, _ in axes], 1), hands.axis_d[:, 1:]], axis=1),
        np.concatenate([np.stack([n for _, n in axes], 1), hands.axis_n[:, 1:]], axis=1),
        hands.length[:, thumbs],
    )
    closed = _close(tried, theta[:, thumbs], limits[:, thumbs], rot, trans, half, skin)
    ends = tried.chain_points(closed)  # (B, K + 4, 4, 3)
    in_box = _to_box(ends[:, :THUMB_TRIES].reshape(size, -1, 3), rot, trans)
    in_box = in_box.reshape(size, THUMB_TRIES, 4, 3)
    start, end = in_box[:, :, :-1], in_box[:, :, 1:]  # (B, K, 3, 3) the thumbs' segments
    near = segments_meet_box(start, end, (half + skin[:, None] + 1.0)[:, None, None])
    deep = segments_meet_box(start, end, (half - MAX_PENETRATION)[:, None, None])
    touches = near.any(axis=-1) & ~deep.any(axis=-1)  # (B, K)
    clear = _thumb_clearance(ends[:, :THUMB_TRIES], ends[:, THUMB_TRIES:]) >= THUMB_FINGER_GAP
    kept = _thumb_choice(touches, clear)
    rows = np.arange(size)
    hands.axis_d[:, 0] = tried.axis_d[rows, kept]
    hands.axis_n[:, 0] = tried.axis_n[rows, kept]
    return np.concatenate([closed[rows, kept][:, None], closed[:, THUMB_TRIES:]], axis=1)


def _thumb_opposes(joints: np.ndarray, half: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(B,) whether the thumb and another finger both make valid contacts (docs/conventions.md §2
    steps 2-5).

    Of the TOP_K (joint, face) pairs nearest to the faces' grids, those within
    ``eta * L - CONTACT_MARGIN`` are the valid contacts; a grasp needs one on a thumb joint
    (MCP, IP or tip) and one on a joint of the other four fingers.
    """
    dist = face_grid_distances(joints, half).reshape(len(joints), -1)  # (B, 21 * 6)
    nearest = np.argpartition(dist, TOP_K - 1, axis=-1)[:, :TOP_K]  # (B, TOP_K) pair indices
    valid = np.take_along_axis(dist, nearest, -1) <= (ETA * radius - CONTACT_MARGIN)[:, None]
    joint = nearest // 6
    thumb = np.isin(joint, THUMB_CONTACT_JOINTS)
    finger = np.isin(joint, FINGER_CONTACT_JOINTS)
    return (valid & thumb).any(axis=-1) & (valid & finger).any(axis=-1)


def _locked_limits(u: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """(B, 5, 3) closing goals (rad): the joints' limits with drawn DIP goals, the fingers' MCP
    and PIP goals times their object's (``obj`` (B,) indices into OBJECT_NAMES)
    :data:`OBJECT_FINGER_GOAL`, locked thumb MCPs and finger PIPs at 0 and the joint after a
    locked one freer."""
    probability = np.array([THUMB_MCP_STRAIGHT_PROBABILITY] + [PIP_STRAIGHT_PROBABILITY] * 4)
    limits = np.repeat(FLEX_HIGH[None], len(u), axis=0)
    low, high = np.deg2rad(DIP_GOAL_DEG).T  # (4,) each
    limits[:, 1:, 2] = np.minimum(limits[:, 1:, 2], low + (high - low) * u[:, _U_DIP])
    limits[:, 1:, :2] *= OBJECT_FINGER_GOAL[obj][:, None, None]
    locked = u[:, _U_LOCK] < probability
    limits[:, :, 2] += np.where(locked, LOCKED_EXTRA_FLEX, 0.0)
    limits[:, :, 1] = np.where(locked, 0.0, limits[:, :, 1])
    return limits


def _attempt(u: np.ndarray, z: np.ndarray, half: np.ndarray, free: np.ndarray, obj: np.ndarray):
    """One grasp attempt per row of objects ``obj`` (B,) (indices into OBJECT_NAMES) with half
    sizes ``half`` (B, 3): kinds (B,), joints (B, 21, 3) in the box frame, accepted (B,)."""
    size = len(u)
    cumulative = np.cumsum(OBJECT_GRASP_WEIGHTS[obj], axis=-1)  # (B, 3)
    kind = np.minimum((u[:, _U_KIND, None] > cumulative).sum(axis=-1), len(GRASP_TYPES) - 1)
    skin = 2.0 + 3.0 * u[:, _U_SKIN]
    hands = _make_hands(u, z)
    low, high = np.deg2rad(START_LOW_DEG), np.deg2rad(START_HIGH_DEG)
    theta = low + (high - low) * u[:, _U_START].reshape(size, 5, 3)
    place = u[:, _U_PLACE]
    axis = (place[:, 5] < 0.5).astype(int)
    placements = (
        _place_power(place, half),
        _place_over_edge(place, half, np.full(size, 2), axis),  # pinch
        _place_over_edge(place, half, axis, 1 - axis),  # lateral
    )
    # Each sample's pose from the placement of its kind: stack the three, pick along axis 0.
    rot, trans, face = (
        np.stack(options)[kind, np.arange(size)] for options in zip(*placements, strict=True)
    )
    mcp_low, mcp_high = np.deg2rad(POWER_MCP_START_DEG)
    mcp = mcp_low + (mcp_high - mcp_low) * u[:, _U_START].reshape(size, 5, 3)[:, 1:, 0]
    theta[:, 1:, 0] = np.where(kind[:, None] == 0, mcp, theta[:, 1:, 0])
    theta[:, 0, 0] = 0.0  # the thumb starts aimed at its face
    limits = _locked_limits(u, obj)
    theta = np.minimum(theta, limits)
    rot = rot @ _rotations(0.04 * z[:, _Z_TILT])
    theta = _close_with_thumb_choices(hands, theta, limits, rot, trans, face, half, skin, z)

    # Free frames: open the hand and move it back along the palm normal until it is clear.
    release = -rot[:, :, 2]
    open_low, open_high = FREE_OPENING
    opened = theta * (open_low + (open_high - open_low) * u[:, _U_OPEN, None, None])
    theta = np.where(free[:, None, None], opened, theta)
    trans = trans + free[:, None] * release * (30.0 + 90.0 * u[:, _U_BACK, None])
    joints = _to_box(hands.joints(theta), rot, trans)
    bones = _to_box(hands.points(theta).reshape(size, -1, 3), rot, trans)
    points = np.concatenate([joints, bones], axis=1)
    # docs/conventions.md §2's L: the mean side of the end faces (z is the longest axis).
    radius = half[:, :2].sum(axis=-1)
    clearance = ETA * radius + 1.0
    for _ in range(3):
        shortfall = clearance - box_signed_distance(points, half[:, None]).min(axis=-1)
        shift = np.where(free & (shortfall > 0), shortfall + 1.0, 0.0)
        points = points + release[:, None] * shift[:, None, None]
    depth = box_signed_distance(points, half[:, None]).min(axis=-1)
    joints = points[:, :NUM_JOINTS]
    shrunk = (half - MAX_PENETRATION)[:, None]
    deep = segments_meet_box(joints[:, _BONE_PARENT], joints[:, _BONE_CHILD], shrunk).any(-1)
    tips = box_signed_distance(points[:, list(FINGERTIPS)], half[:, None]) < TIP_CONTACT
    grasped = ~deep & (tips.sum(axis=-1) >= TIPS_TOUCHING)
    grasped &= _thumb_opposes(joints, half, radius)
    chains = joints[:, np.array(FINGER_CHAINS)]  # (B, 5, 4, 3)
    clear = _thumb_clearance(chains[:, :1], chains[:, 1:])[:, 0] >= THUMB_FINGER_GAP
    accepted = np.where(free, depth > clearance, grasped) & clear
    return np.where(free, len(GRASP_TYPES), kind), joints, accepted


def _sample_boxes(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object indices into OBJECT_NAMES (B,) and box sizes (B, 3) from (B, 5) uniforms."""
    fpha = np.array(list(FPHA_OBJECTS.values()))
    which = np.minimum((u[:, 1] * len(fpha)).astype(int), len(fpha) - 1)
    size = fpha[which] * (0.9 + 0.2 * u[:, 2:5])
    size[:, 2] = np.maximum(size[:, 2], size[:, :2].max(axis=-1) + 15.0)
    low, high = GENERIC_CROSS
    cross = low + (high - low) * u[:, 2:4]
    shortest = np.maximum(cross.max(axis=-1) + 20.0, 90.0)
    length = shortest + (GENERIC_MAX_LENGTH - shortest) * u[:, 4]
    generic = u[:, 0] < GENERIC_PROBABILITY
    size = np.where(generic[:, None], np.concatenate([cross, length[:, None]], axis=1), size)
    return np.where(generic, len(fpha), which), size


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """geometry.project_points on numpy arrays."""
    return project_points(torch.from_numpy(points), torch.from_numpy(K)).numpy()


def in_fpha_image(uv: np.ndarray) -> np.ndarray:
    """Which pixels (..., 2) of FPHA's 1920×1080 colour frame lie in it: 0 <= u < 1920 and
    0 <= v < 1080, the rule of the "joints inside the image" statistic compared with FPHA-HO's
    (:mod:`hopose.data.grasp_stats`), by which the generator keeps a placement in view.

    Not :func:`hopose.crop.inside_frame`, whose edges are half a pixel out (pixel centres at
    integers): the statistic keeps the definition its FPHA-HO value was summarised with, and the
    generator keeps the placements, hence the synthetic samples and every number measured on
    them, that it accepted with this rule."""
    return ((uv >= 0) & (uv < np.array(FPHA_IMAGE_SIZE))).all(axis=-1)


def _place_in_camera(
    hand: np.ndarray, corners: np.ndarray, z: np.ndarray, u: np.ndarray, camera: np.ndarray
):
    """Rotate and translate box-frame pairs into the 1920×1080 camera (docs/synthetic.md priors).

    Args:
        hand: (B, 21, 3), corners: (B, 8, 3) in the box frame.
        z: (B, CAMERA_TRIES, 9) normal and u: (B,) uniform numbers.
        camera: (B, 3, 3) each sample's intrinsics of the 1920×1080 frame.

    Returns:
        hand (B, 21, 3) and corners (B, 8, 3) in the camera frame.
    """
    fingers, palm = palm_axes(hand)
    hand_axes = _frame(fingers, _unit(_cross(fingers, _cross(palm, fingers))))  # (B, 3, 3)
    y = _unit(PALM_Y_MEAN + PALM_Y_SD * z[..., :3])  # (B, T, 3) wrist to middle MCP
    n = PALM_N_MEAN + PALM_N_SD * z[..., 6:9]
    n = _unit(n - (n * y).sum(axis=-1, keepdims=True) * y)  # palm normal, orthogonal to y
    rot = _frame(y, n) @ np.swapaxes(hand_axes, -1, -2)[:, None]  # (B, T, 3, 3)
    rho = CENTROID_U_PALM_CORRELATION
    column = rho * z[..., 0] + np.sqrt(1 - rho**2) * z[..., 3]  # y' x is drawn from z[..., 0]
    pixel = np.clip(
        CENTROID_PIXEL_MEAN + CENTROID_PIXEL_SD * np.stack([column, z[..., 4]], axis=-1),
        CENTROID_PIXEL_LOW,
        CENTROID_PIXEL_HIGH,
    )
    depth = np.clip(DEPTH_MEAN + DEPTH_SD * z[..., 5], DEPTH_LOW, DEPTH_HIGH)
    homogeneous = np.concatenate([pixel, np.ones_like(depth[..., None])], -1)  # (B, T, 3)
    rays = np.einsum("bij,btj->bti", np.linalg.inv(camera), homogeneous)
    centroid = np.einsum("btij,bj->bti", rot, hand.mean(axis=1))
    trans = rays * depth[..., None] - centroid  # (B, T, 3)
    pair = np.concatenate([hand, corners], axis=1)[:, None]  # (B, 1, 29, 3)
    points = pair @ np.swapaxes(rot, -1, -2) + trans[:, :, None]  # (B, T, 29, 3)
    uv = project(points, camera[:, None])  # points nearer than 50 mm are rejected below
    inside = in_fpha_image(uv)  # (B, T, 29)
    allowed = np.where(u < PARTLY_OUT_FRACTION, MAX_OUTSIDE_PARTLY, MAX_OUTSIDE)  # (B,)
    in_front = (points[..., 2] > 50.0).all(axis=-1)
    outside = np.where(in_front, (~inside).sum(axis=-1), NUM_NODES + 1)  # (B, T)
    ok = outside <= allowed[:, None]
    # Without an acceptable try (a long focal length sees less), the one most in view...
    best = np.where(ok.any(axis=1), ok.argmax(axis=1), outside.argmin(axis=1))
    rows = np.arange(len(best))
    chosen, centroid = points[rows, best], (rays * depth[..., None])[rows, best]  # (B, 29, 3)
    # ... moved back along its centroid's ray by the least of PUSH_BACK that brings it in view.
    pushed = chosen[:, None] + (PUSH_BACK[:, None, None] - 1) * centroid[:, None, None]
    uv = project(pushed, camera[:, None])  # (B, P, 29, 2)
    fits = (~in_fpha_image(uv)).sum(-1) <= allowed[:, None]
    step = np.where(ok.any(axis=1) | ~fits.any(axis=1), 0, fits.argmax(axis=1))
    chosen = pushed[rows, step]
    return chosen[:, :NUM_JOINTS], chosen[:, NUM_JOINTS:]


def label_in_hand(hand: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Relabel each box's corners as the one of its look-alike orientations held the usual way.

    A cuboid turned half a turn about one of its own axes occupies the same space, so the grasp
    fixes the geometry, not which of these four orientations the corners are labelled in. A
    real object's is not arbitrary: it is held the same way round (a bottle's cap by the thumb,
    its label away from the palm) and its print shows which side is which. Each box axis here
    lies along one of the hand's axes (the placements of :func:`_place_power` and
    :func:`_place_over_edge`); this picks the orientation whose +x and +z point the same way
    as the hand axes they lie along: fingers (wrist to middle MCP), palm normal (out of the
    palm) or the thumb side (their cross product). A power grasp then holds the box's +z end
    by the thumb, a pinch over an end face pinches its -z end (+z points out of the palm, away
    from the pinched face), and the corner order follows
    from the hand in the image instead of being a coin toss. A rule in the camera's terms
    ("cap up in the image") measured the same (docs/synthetic.md, "Corner labels") but flips the
    labels between nearly equal views where an axis crosses the image's horizontal; this one
    never does, each box axis lying along a hand axis.

    Args:
        hand: (B, 21, 3) joints. corners: (B, 8, 3) box corners in docs/conventions.md §1 order.
            Any common frame.

    Returns:
        (B, 8, 3) the same corners, reordered.
    """
    signs = np.array(CORNER_SIGNS)
    fingers, normal = palm_axes(hand)
    hand_axes = np.stack([fingers, normal, _cross(fingers, normal)], axis=1)  # (B, 3, 3)

    def flip(axis: np.ndarray) -> np.ndarray:
        along = np.einsum("bij,bj->bi", hand_axes, axis)  # (B, 3) cosines with the hand axes
        nearest = np.take_along_axis(along, np.abs(along).argmax(axis=-1)[:, None], axis=-1)
        return np.where(nearest[:, 0] < 0, -1, 1)

    (x_start, x_end), _, (z_start, z_end) = AXIS_EDGES
    flip_x = flip(corners[:, x_end] - corners[:, x_start])
    flip_z = flip(corners[:, z_end] - corners[:, z_start])
    # Two flipped axes are a half turn about the third; three would mirror the box.
    flips = np.stack([flip_x, flip_x * flip_z, flip_z], axis=-1)  # (B, 3)
    # Corner k of the turned box is the corner whose signs are k's times the flips.
    wanted = signs[None] * flips[:, None]  # (B, 8, 3)
    source = ((wanted[:, :, None] == signs[None, None]).all(axis=-1)).argmax(axis=-1)  # (B, 8)
    return np.take_along_axis(corners, source[..., None], axis=1)


def check_seed(seed: int, field: str = "seed") -> None:
    """Refuse a seed outside [0, :data:`SEED_LIMIT`), naming ``field``."""
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{field}: must be in {SEED_RANGE_TEXT}, got {seed}")


def check_free_fraction(value: float, field: str = "free_fraction") -> None:
    """Refuse a free-frame probability that is not a real number in [0, 1], naming ``field``.

    A bool is refused although Python counts it as a number: YAML's ``true`` would make every
    frame free. NaN fails the range test (every comparison with it is false); as a probability
    it would make no frame free.
    """
    if not isinstance(value, Real) or isinstance(value, bool):
        raise ValueError(f"{field}: expected a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{field}: must be in [0, 1], got {value}")


def generate_grasps(
    seed: int,
    indices: np.ndarray,
    free_fraction: float = DEFAULT_FREE_FRACTION,
    camera: np.ndarray | None = None,
) -> Grasps:
    """The poses of samples ``indices`` of the dataset with seed ``seed``, camera frame.

    ``camera`` is each sample's (B, 3, 3) or a shared (3, 3) intrinsics of the 1920×1080 frame
    (FPHA's colour camera when None); it moves the placement only.

    Each sample draws from ``default_rng([seed, i])`` alone, in a fixed order (box, free flag,
    then :data:`_NUM_U` uniform and :data:`_NUM_Z` normal numbers per attempt until one is
    accepted, then its camera placements), so it does not depend on the other indices.
    """
    check_seed(seed)
    check_free_fraction(free_fraction)
    rngs = [np.random.default_rng([seed, int(i)]) for i in indices]
    size = len(rngs)
    start = np.stack([rng.random(6) for rng in rngs])
    obj, dims = _sample_boxes(start[:, :5])
    half = dims / 2
    free = start[:, 5] < free_fraction
    kind = np.zeros(size, dtype=int)
    hand = np.zeros((size, NUM_JOINTS, 3))
    pending = np.arange(size)
    for _ in range(MAX_ATTEMPTS):
        u = np.stack([rngs[i].random(_NUM_U) for i in pending])
        z = np.stack([rngs[i].standard_normal(_NUM_Z) for i in pending])
        got_kind, got_hand, accepted = _attempt(u, z, half[pending], free[pending], obj[pending])
        done = pending[accepted]
        kind[done], hand[done] = got_kind[accepted], got_hand[accepted]
        pending = pending[~accepted]
        if len(pending) == 0:
            break
    else:
        raise RuntimeError(
            f"samples {indices[pending]}: no acceptable grasp in {MAX_ATTEMPTS} attempts"
        )
    z = np.stack([rng.standard_normal((CAMERA_TRIES, 9)) for rng in rngs])
    u = np.stack([rng.random() for rng in rngs])
    corners = np.array(CORNER_SIGNS) * half[:, None]
    # The poses are float64, and the projection that places them takes K of the same type (a
    # record's K is float32, a K typed in whole numbers int64).
    camera = np.asarray(FPHA_COLOR_K if camera is None else camera, dtype=np.float64)
    camera = np.broadcast_to(camera, (size, 3, 3)).copy()
    hand_3d, obj_3d = _place_in_camera(hand, corners, z, u, camera)
    obj_3d = label_in_hand(hand_3d, obj_3d)
    names = (*GRASP_TYPES, "free")
    return Grasps(hand_3d, obj_3d, [names[k] for k in kind], [OBJECT_NAMES[o] for o in obj])
