"""A small numpy renderer for the synthetic grasps: a z-buffer over a ray-cast box and capsules.

No external renderer: the image is drawn directly at the network's size with the sample's K
(pixel centres at integer coordinates, as in :func:`hopose.geometry.scale_intrinsics`).

* Background: a two-colour gradient, a darker "table" band and 8-20 random shapes drawn with
  PIL, blurred slightly so the foreground stays the sharpest thing in the picture (clutter).
* Box: every pixel's ray is intersected with the box exactly (slab test), which gives its depth,
  the face it hits and where on the face; faces are Lambert-shaded under a random light with a
  per-object colour, a per-face tint, one of three textures (stripes, checks, a printed label)
  and fixed marks on the +x, +y and +z faces (a front label, a dark band, a dark cap) so that
  the box's orientation, hence its corner order, can be read from the image (:func:`_mark_faces`).
* Hand: capsules along the 20 bones (radius tapering from 10 mm at the palm to 7 mm at the
  tips), the palm as a fan of thick capsules, and a sleeved forearm from the wrist towards the
  lower right, where the right shoulder is under a head-mounted camera; each capsule's depth
  is its axis depth minus the sphere bulge, shaded by the bulge normal.
  Skin tones are drawn across a light-to-dark range.
* Everything is composited through one z-buffer, so nearer parts occlude farther ones exactly
  where the geometry says; then a global gain, colour cast and sensor noise vary the lighting.
* Each pixel averages :func:`supersampling`'s f × f samples, as a photo's does, when the image
  is smaller than :data:`SUPERSAMPLED_SIDE` pixels.
* Asked for it, the renderer also says what each pixel shows (``segmentation``: background,
  hand or which face of the box), from the same z-buffer: the class of each sample, the most
  frequent of a pixel's samples.
* A view that reaches past the camera's frame is black there (:func:`outside_frame`), as a
  photo cut beyond its edge is (:func:`hopose.crop.warp_image`, the real loaders' crops).

The sample's appearance comes from its own generator (:func:`sample_appearance`), so the
geometry and the look of a sample are drawn independently.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from hopose.crop import edge_aligned_scale, inside_frame
from hopose.geometry import AXIS_EDGES, FACE_NORMALS, project_points
from hopose.skeleton import (
    FINGER_CHAINS,
    HAND_BONES,
    NUM_SEGMENTATION_CLASSES,
    SEGMENTATION_CLASSES,
)

# Skin tones (RGB in [0, 1]) from light to dark; a sample's tone is drawn between neighbours.
SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.89, 0.67, 0.54],
        [0.78, 0.55, 0.40],
        [0.55, 0.37, 0.25],
        [0.36, 0.23, 0.15],
    ]
)
# Per-object base colours (RGB in [0, 1]); generic boxes get a random colour.
OBJECT_COLOURS: dict[str, tuple[float, float, float]] = {
    "juice_bottle": (0.95, 0.60, 0.10),
    "milk": (0.92, 0.92, 0.95),
    "liquid_soap": (0.25, 0.55, 0.85),
    "salt": (0.85, 0.15, 0.15),
}
# The corners at the ends of an edge along each box axis, as index arrays (AXIS_EDGES).
_AXIS_START, _AXIS_END = np.array(AXIS_EDGES).T
# _FACE_OF_SIDE[a, s]: the BOX_FACES face normal to box axis a on its - (s = 0) or + (s = 1) side.
_FACE_OF_SIDE = np.array([[FACE_NORMALS.index((a, s)) for s in (-1, 1)] for a in range(3)])
# Bone radii (mm): wrist-to-base bones, then the three phalanges.
BONE_RADIUS = (10.0, 9.0, 8.0, 7.0)
PALM_RADIUS, FOREARM_RADIUS, FOREARM_LENGTH = 12.0, 20.0, 200.0
SHOULDER = np.array([250.0, 450.0, 50.0])  # mm, camera frame: where the right arm comes from
# A render samples at least this many points across its side and averages them per pixel
# (render_grasp's supersample): a photo resized to a small network input averages the light over
# each pixel, where one sample per pixel aliases the 7-12 mm fingers (2-4 px at 64 px). The
# demo's model trained on single-sample 64-px renders was 8.5 / 8.3 mm (hand / box) worse on
# views rendered 4x finer and area-downsampled (docs/from_pixels.md, "Renders that look like
# photos"); 224-px renders keep one sample per pixel (issue #3's 50 renders/s on one core).
SUPERSAMPLED_SIDE = 128


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class Appearance:
    """Everything random about one image except the geometry."""

    skin: np.ndarray  # (3,) RGB in [0, 1]
    sleeve: np.ndarray  # (3,)
    box: np.ndarray  # (3,) the object's colour
    label: np.ndarray  # (3,) the label / stripe colour
    face_tint: np.ndarray  # (6, 3) per-face colour factors
    texture: int  # 0 stripes, 1 checks, 2 label band
    frequency: float  # texture cycles across a face
    light: np.ndarray  # (3,) unit direction towards the light, camera frame
    ambient: float
    gain: np.ndarray  # (3,) global colour gain (brightness and colour cast)
    noise: float  # sensor noise sd, in 0-255 units
    background_seed: int


def sample_appearance(rng: np.random.Generator, object_name: str) -> Appearance:
    """Draw an appearance; ``object_name`` picks the box colour (random for a generic box)."""
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(tone)
    high = min(low + 1, len(SKIN_TONES) - 1)
    skin = SKIN_TONES[low] + (tone - low) * (SKIN_TONES[high] - SKIN_TONES[low])
    box = np.array(OBJECT_COLOURS.get(object_name, rng.uniform(0.15, 0.95, 3)))
    light = rng.normal(size=3) + np.array([0.0, -1.0, -1.5])  # mostly from above, behind us
    return Appearance(
        skin=skin * rng.uniform(0.92, 1.08, 3),
        sleeve=rng.uniform(0.05, 0.8, 3),
        box=box,
        label=rng.uniform(0.0, 1.0, 3),
        face_tint=rng.uniform(0.85, 1.0, (6, 3)),
        texture=int(rng.integers(3)),
        frequency=float(rng.uniform(2.0, 6.0)),
        light=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.3, 0.55)),
        gain=rng.uniform(0.7, 1.2) * rng.uniform(0.9, 1.1, 3),
        noise=float(rng.uniform(1.0, 6.0)),
        background_seed=int(rng.integers(2**31)),
    )


def _background(size: int, seed: int, scale: int = 1) -> np.ndarray:
    """(S, S, 3) float clutter: gradient, a table band and random shapes; line widths and blur
    in pixels of an image ``scale`` times smaller (a supersampled render's)."""
    rng = np.random.default_rng(seed)
    top, bottom = rng.uniform(0.1, 0.9, (2, 3))
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    image = Image.fromarray(np.uint8(255 * (top + ramp * (bottom - top))).repeat(size, axis=1))
    draw = ImageDraw.Draw(image)
    horizon = int(size * rng.uniform(0.3, 0.8))
    draw.rectangle((0, horizon, size, size), fill=tuple(int(c) for c in rng.integers(20, 160, 3)))
    for _ in range(int(rng.integers(8, 21))):
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.05, 0.4, 2) * size
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(3)
        if shape == 0:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=fill)
        elif shape == 1:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=fill)
        else:
            draw.line((x0, y0, x0 + w, y0 + h), fill=fill, width=scale * int(rng.integers(1, 6)))
    image = image.filter(ImageFilter.GaussianBlur(radius=scale * float(rng.uniform(0.5, 2.0))))
    return np.asarray(image, dtype=np.float32) / np.float32(255.0)


def _draw_box(image, zbuf, K, corners, look: Appearance, classes=None) -> None:
    """Ray-cast the box (corners (8, 3), canonical order) into ``image`` and ``zbuf`` in place,
    and the class of the face each drawn pixel shows into ``classes`` (S, S) when one is given
    (:data:`hopose.skeleton.SEGMENTATION_CLASSES`)."""
    # Only the pixels inside the bounding rectangle of the projected corners can see the box.
    size = image.shape[0]
    if (corners[:, 2] <= 1.0).any():
        return
    uv = project_points(torch.from_numpy(corners), torch.from_numpy(K)).numpy()
    (u0, v0), (u1, v1) = np.floor(uv.min(axis=0)), np.ceil(uv.max(axis=0)) + 1
    u0, v0, u1, v1 = (int(np.clip(c, 0, size)) for c in (u0, v0, u1, v1))
    if u0 >= u1 or v0 >= v1:
        return
    v, u = np.mgrid[v0:v1, u0:u1].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(K).T  # (h, w, 3), z = 1
    image, zbuf = image[v0:v1, u0:u1], zbuf[v0:v1, u0:u1]  # views: drawing into them draws
    if classes is not None:
        classes = classes[v0:v1, u0:u1]
    centre = corners.mean(axis=0)
    edges = corners[_AXIS_END] - corners[_AXIS_START]  # (3, 3) rows: the edges along x, y, z
    half = np.linalg.norm(edges, axis=1) / 2
    axes = edges / (2 * half[:, None])  # (3, 3) rows: the box's unit axes in the camera frame
    origin = axes @ -centre  # the camera centre in the box frame
    direction = rays @ axes.T  # (S, S, 3) rays in the box frame
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - origin) / direction
        t2 = (half - origin) / direction
    near = np.minimum(t1, t2)
    t_in = np.nan_to_num(near, nan=-np.inf).max(axis=-1)
    t_out = np.nan_to_num(np.maximum(t1, t2), nan=np.inf).min(axis=-1)
    hit = (t_in <= t_out) & (t_in > 0) & (t_in < zbuf)  # rays have z = 1, so t is the depth
    if not hit.any():
        return
    t = t_in[hit]
    axis = np.nan_to_num(near[hit], nan=-np.inf).argmax(axis=-1)  # the entry face's axis
    point = origin + t[:, None] * direction[hit]  # (P, 3) box frame
    sign = np.sign(point[np.arange(len(t)), axis])
    face = 2 * axis + (sign > 0)  # 0..5: -x, +x, -y, +y, -z, +z
    normal = axes[axis] * sign[:, None]  # camera frame
    # In-face coordinates in [0, 1]: the two other axes of the hit point.
    other = np.stack([(axis + 1) % 3, (axis + 2) % 3], axis=-1)
    coords = (np.take_along_axis(point, other, -1) / half[other] + 1) / 2
    phase = look.frequency * coords
    if look.texture == 0:
        pattern = np.sin(2 * np.pi * phase[:, 0]) > 0.3
    elif look.texture == 1:
        pattern = (np.floor(phase[:, 0]) + np.floor(phase[:, 1])) % 2 == 0
    else:
        pattern = np.abs(coords[:, 1] - 0.5) < 0.18
    colour = np.where(pattern[:, None], look.label, look.box) * look.face_tint[face]
    colour = _mark_faces(colour, face, coords, look)
    shade = look.ambient + (1 - look.ambient) * np.clip(normal @ look.light, 0.0, 1.0)
    image[hit] = colour * shade[:, None]
    zbuf[hit] = t
    if classes is not None:
        classes[hit] = 2 + _FACE_OF_SIDE[axis, (sign > 0).astype(int)]


def _mark_faces(colour: np.ndarray, face: np.ndarray, coords: np.ndarray, look: Appearance):
    """Marks that make every face of the box identifiable, as a real object's print is.

    The corners are annotated in the object's own order (docs/conventions.md §1); a box whose
    faces looked alike could be turned half a turn about any axis and show the same picture,
    so its corner order could not be read from the image and a 2D head trained with a squared
    error would learn the average of the symmetric orders, corners pulled to the box's middle.
    Real objects carry that information in their print (a carton's front label, a bottle's
    cap). Here the three positive faces carry different fixed marks: +x a large patch of the
    label colour (the front label), +y a dark band across its middle, +z a dark cap; the
    negative faces keep the plain texture, so the sign of every axis in view is visible.

    Args:
        colour: (P, 3) the hit pixels' colours. face: (P,) their face, 0..5 for -x, +x, -y, +y,
            -z, +z. coords: (P, 2) their in-face coordinates in [0, 1]. look: the appearance.

    Returns:
        (P, 3) the marked colours.
    """
    centre = np.abs(coords - 0.5)
    front = (face == 1) & (centre < 0.32).all(axis=-1)
    band = (face == 3) & (centre[:, 1] < 0.2)
    colour = np.where(front[:, None], look.label, colour)
    return np.where((band | (face == 5))[:, None], colour * 0.45, colour)


def _slab(offset, slope, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """The u (arrays) with lo <= offset + slope u <= hi: (first, last), -inf / inf when unbounded
    and first > last when there are none."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ends = (np.stack([lo, hi]) - offset) / slope
    level = np.where((lo <= offset) & (offset <= hi), np.inf, -np.inf)  # slope 0: all or none
    first = np.where(slope == 0, -level, ends.min(axis=0))
    last = np.where(slope == 0, level, ends.max(axis=0))
    return first, last


def _draw_capsules(image, zbuf, K, start, end, radius, colour, look: Appearance) -> None:
    """Rasterise capsules through the z-buffer, exactly as drawing them one by one in order would.

    Works in normalised image coordinates (x/z, y/z), where a sphere of radius r at depth z is
    taken as a disc of radius r/z whatever K's aspect (exact on the optical axis); a capsule's
    depth at a pixel is the axis depth, linear along the projected axis, minus the bulge
    ``r sqrt(1 - (d/rho)^2)``. Both are approximations of the true surface: against an exact
    ray-capsule intersection, a bone of radius 8 mm 290-335 mm away is 3-7 mm too far on average
    (13 mm at most), its outline one pixel off; that can flip which of two crossing
    fingers is in front, never a finger touching a box face (its axis lies in front of the
    face). A capsule draws a pixel where its depth is below the z-buffer's (strictly: of two at
    the same depth the earlier stays). All capsules are evaluated at once, over the pixels near
    each, and composited per pixel in their order:
    ~30 separate draws of under a thousand pixels each cost more in numpy calls than in arithmetic.

    Args:
        start, end: (C, 3) the axes' ends, camera frame, mm. radius: (C,) mm. colour: (C, 3).
    """
    # A capsule reaching behind the camera's 1 mm is not drawn.
    keep = (start[:, 2] >= 1.0) & (end[:, 2] >= 1.0)
    a, b, radius, colour = start[keep], end[keep], radius[keep], colour[keep]
    pa, pb = a[:, :2] / a[:, 2:], b[:, :2] / b[:, 2:]
    rho_max = radius / np.minimum(a[:, 2], b[:, 2])
    size = image.shape[0]
    # The rows whose rays can meet a capsule: those of the image of its normalised bounding
    # rectangle's corners under K (any affine K: a crop may be rotated).
    lo = np.minimum(pa, pb) - rho_max[:, None]
    hi = np.maximum(pa, pb) + rho_max[:, None]
    x = np.stack([lo[:, 0], hi[:, 0], lo[:, 0], hi[:, 0]], axis=-1)
    y = np.stack([lo[:, 1], lo[:, 1], hi[:, 1], hi[:, 1]], axis=-1)
    corners = np.stack([x, y, np.ones_like(x)], axis=-1) @ K[:2].T  # (C, 4, 2) pixels
    u0, v0 = np.maximum(np.floor(corners.min(axis=1)), 0).astype(int).T
    u1, v1 = np.minimum(np.ceil(corners.max(axis=1)) + 1, size).astype(int).T
    height = np.where(u1 > u0, np.maximum(v1 - v0, 0), 0)
    row_capsule = np.repeat(np.arange(len(a)), height)
    row = v0[row_capsule] + np.arange(height.sum()) - np.repeat(np.cumsum(height) - height, height)
    # Along each row, only the pixels whose centres lie within rho_max of the axis's line and of
    # its extent can be inside: two slabs of the normalised plane, each an interval of u on the
    # row (whose normalised point is origin + u step). One pixel more on either side keeps
    # the rounding of these bounds from losing a pixel that the exact test below would draw.
    inverse = np.linalg.inv(K)
    step, origin = inverse[:2, 0], row[:, None] * inverse[:2, 1] + inverse[:2, 2]
    axis = pb - pa
    length = np.hypot(axis[:, 0], axis[:, 1])
    along = np.where(length[:, None] > 0, axis / np.maximum(length, 1e-300)[:, None], [1.0, 0.0])
    across = np.stack([-along[:, 1], along[:, 0]], axis=-1)
    offset = origin - pa[row_capsule]
    reach = rho_max[row_capsule]
    first_a, last_a = _slab((offset * along[row_capsule]).sum(-1), along[row_capsule] @ step,
                            -reach, length[row_capsule] + reach)  # fmt: skip
    first_c, last_c = _slab((offset * across[row_capsule]).sum(-1), across[row_capsule] @ step,
                            -reach, reach)  # fmt: skip
    left = np.ceil(np.maximum(first_a, first_c)) - 1
    right = np.floor(np.minimum(last_a, last_c)) + 2  # exclusive
    left, right = (np.clip(e, u0[row_capsule], u1[row_capsule]).astype(int) for e in (left, right))
    width = np.maximum(right - left, 0)
    if not width.any():
        return
    # Every row's span of pixels in one flat list: its capsule (``owner``) and pixel index.
    owner = np.repeat(row_capsule, width)
    pixel = np.arange(width.sum()) + np.repeat(row * size + left - np.cumsum(width) + width, width)
    # The rays K^-1 (u, v, 1), z = 1, of the rows in use, in one matrix product: BLAS rounds a
    # pixel's ray the same whatever other pixels (two or more) share the product, so rays and
    # renders are bit for bit those of the former capsule-by-capsule windows (older caches).
    top, bottom = row[width > 0].min(), row[width > 0].max()
    v, u = np.mgrid[top : bottom + 1, 0:size].astype(np.float64)
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=-1) @ inverse.T
    qx = rays[pixel - top * size, 0] - pa[owner, 0]  # offsets from a
    qy = rays[pixel - top * size, 1] - pa[owner, 1]
    # |axis|^2 rounded as each capsule's own dot product axis @ axis (BLAS) rounds it.
    length2 = np.maximum((axis[:, None, :] @ axis[:, :, None])[:, 0, 0], 1e-12)
    ax, ay = axis[owner, 0], axis[owner, 1]
    s = np.clip((qx * ax + qy * ay) / length2[owner], 0.0, 1.0)
    dist = np.hypot(qx - s * ax, qy - s * ay)
    depth_axis = a[owner, 2] + s * (b[:, 2] - a[:, 2])[owner]
    rho = radius[owner] / depth_axis
    inside = dist < rho
    owner, pixel, dist, rho, depth_axis = (q[inside] for q in (owner, pixel, dist, rho, depth_axis))
    bulge = np.sqrt(np.clip(1 - np.square(dist / rho), 0.0, 1.0))
    depth = depth_axis - radius[owner] * bulge
    # Composite. Drawn one by one, the capsules leave at a pixel the least of what the
    # z-buffer held and their depths as it stores them (float32). The last capsule to draw
    # stored that least value m itself, and of the capsules storing m, a later one draws only
    # where its float64 depth is below m (which the z-buffer then holds), the first one also
    # where the z-buffer held more than m before (all earlier capsules stored more).
    zflat = zbuf.reshape(-1)
    least = zflat.copy()
    stored = depth.astype(zbuf.dtype)
    np.minimum.at(least, pixel, stored)
    m = least[pixel]
    ties = np.flatnonzero(stored == m)
    first = np.full(len(zflat), len(pixel))
    np.minimum.at(first, pixel[ties], ties)
    drew = ties[
        (depth[ties] < m[ties]) | ((first[pixel[ties]] == ties) & (zflat[pixel[ties]] > m[ties]))
    ]
    last = np.full(len(zflat), -1)
    np.maximum.at(last, pixel[drew], drew)
    shown = last[last >= 0]  # the entry each drawn pixel shows
    # Shade by the bulge: facing the camera in the middle, grazing at the rim, lit from light.
    facing = look.ambient + (1 - look.ambient) * (0.35 + 0.65 * bulge[shown]) * (
        0.6 + 0.4 * max(-look.light[2], 0.0)
    )
    v, u = np.divmod(pixel[shown], size)
    image[v, u] = colour[owner[shown]] * facing[:, None]
    zbuf[v, u] = m[shown]


def _capsules(hand: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The forearm, palm fan and 20 bones in drawing order: start, end (C, 3), radius (C,) and
    whether each is the sleeve (C,)."""
    wrist = hand[0]
    mcp_row = [chain[0] for chain in FINGER_CHAINS[1:]]
    back = wrist - hand[mcp_row].mean(axis=0)
    # The elbow lies between the hand's own backward direction and the shoulder, below and right
    # of the head-mounted camera, so the forearm enters the picture from the lower right.
    elbow = 0.5 * _unit(back) + _unit(SHOULDER - wrist)
    forearm = wrist + _unit(elbow) * FOREARM_LENGTH
    parts = [(forearm, wrist, FOREARM_RADIUS, True)]
    palm_centre = (wrist + hand[mcp_row].mean(axis=0)) / 2
    for j in (*mcp_row, FINGER_CHAINS[0][1]):
        parts.append((palm_centre, hand[j], PALM_RADIUS, False))
    for j0, j1 in itertools.pairwise(mcp_row):
        parts.append((hand[j0], hand[j1], PALM_RADIUS * 0.8, False))
    parts.append((wrist, palm_centre, PALM_RADIUS * 1.4, False))
    for parent, child in HAND_BONES:
        rank = (child - 1) % 4  # 0 for the bone into a chain's base, then the phalanges
        parts.append((hand[parent], hand[child], BONE_RADIUS[rank], False))
    start, end, radius, sleeve = zip(*parts, strict=True)
    return np.array(start), np.array(end), np.array(radius), np.array(sleeve)


def supersampling(image_size: int) -> int:
    """Samples per pixel side for an ``image_size`` render: enough for
    :data:`SUPERSAMPLED_SIDE` samples across the image."""
    return max(1, -(-SUPERSAMPLED_SIDE // image_size))  # ceiling division


def outside_frame(affine: np.ndarray, frame_size: tuple[int, int], image_size: int) -> np.ndarray:
    """Which pixels of a view lie outside the camera's frame.

    Args:
        affine: (3, 3) frame -> view map (pixel centres at integer coordinates in both).
        frame_size: (width, height) of the frame in pixels.

    Returns:
        (S, S) bool, True where the pixel's centre maps outside the frame's pixels, whose outer
        edges are -0.5 and width - 0.5 (height - 0.5).
    """
    centres = np.arange(image_size, dtype=np.float64)
    u, v = np.meshgrid(centres, centres)  # (S, S): column, row
    q = np.stack([u, v, np.ones_like(u)], axis=-1)  # (S, S, 3) homogeneous view pixels
    p = q @ np.linalg.inv(affine).T  # frame pixels (affine: last row 0 0 1)
    return ~inside_frame(p[..., :2], frame_size)


def render_grasp(
    hand_3d: np.ndarray,
    obj_3d: np.ndarray,
    K: np.ndarray,
    image_size: int,
    rng: np.random.Generator,
    object_name: str = "box",
    supersample: int = 1,
    *,
    segmentation: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Render one grasp.

    Args:
        hand_3d: (21, 3) joints, camera frame, mm. obj_3d: (8, 3) box corners, canonical order.
        K: (3, 3) intrinsics of the (image_size × image_size) image.
        rng: the sample's appearance generator.
        object_name: picks the box colour.
        supersample: f > 1 renders f × f samples per pixel and keeps their mean, as a photo
            resized to the network's input averages the light over each pixel (box filter);
            1 samples each pixel's centre only.
        segmentation: also return what each pixel shows.

    Returns:
        (S, S, 3) uint8 RGB; with ``segmentation``, also (S, S) uint8 classes
        (:data:`hopose.skeleton.SEGMENTATION_CLASSES`: background, hand, or which face of the
        box), each pixel's most frequent among its f × f samples (the lower class on a tie).
    """
    if supersample < 1:
        raise ValueError(f"supersample: must be >= 1, got {supersample}")
    look = sample_appearance(rng, object_name)
    f, size = supersample, supersample * image_size
    # The fine image has the coarse one's outer edges: coarse q is fine f q + (f - 1) / 2.
    fine = edge_aligned_scale(torch.tensor([f, f], dtype=torch.float64)).numpy() @ K
    image = _background(size, look.background_seed, scale=f)
    zbuf = np.full((size, size), np.inf, dtype=np.float32)
    classes = np.zeros((size, size), dtype=np.uint8) if segmentation else None
    _draw_box(image, zbuf, fine, obj_3d.astype(np.float64), look, classes)
    box_depth = zbuf.copy() if segmentation else None
    start, end, radius, sleeve = _capsules(hand_3d.astype(np.float64))
    colour = np.where(sleeve[:, None], look.sleeve, look.skin)
    _draw_capsules(image, zbuf, fine, start, end, radius, colour, look)
    # (f S, f S, 3) -> (S, f, S, f, 3): each pixel's f x f samples on axes 1 and 3.
    image = image.reshape(image_size, f, image_size, f, 3).mean(axis=(1, 3), dtype=np.float32)
    noise = np.random.default_rng(look.background_seed + 1).standard_normal(
        image.shape, dtype=np.float32
    )
    image = image * (look.gain * 255).astype(np.float32) + noise * np.float32(look.noise)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if classes is None:
        return image
    classes[zbuf < box_depth] = SEGMENTATION_CLASSES.index("hand")  # where a capsule drew
    # (f S, f S) -> (S, f, S, f): the samples' classes counted per pixel, (S, S, classes).
    samples = classes.reshape(image_size, f, image_size, f)[..., None]
    counts = (samples == np.arange(NUM_SEGMENTATION_CLASSES, dtype=np.uint8)).sum(axis=(1, 3))
    return image, counts.argmax(axis=-1).astype(np.uint8)
