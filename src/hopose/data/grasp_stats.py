"""Hand articulation and placement statistics, and FPHA-HO's published values to compare with.

Every quantity is computed from the 21 joints in the camera frame (mm) with FPHA's colour
camera, exactly as FPHA-HO's hand annotations were summarised (FPHA-HO annotation statistics,
docs/synthetic.md):

* flexion: the angle between consecutive bone vectors (0 = straight). Finger MCP: wrist→MCP vs
  MCP→PIP; PIP: MCP→PIP vs PIP→DIP; DIP: PIP→DIP vs DIP→tip. Thumb CMC: wrist→CMC vs CMC→MCP;
  MCP: CMC→MCP vs MCP→IP; IP: MCP→IP vs IP→tip. "PIP, bent" rows keep the frames whose PIP (the
  thumb's MCP) is bent by 1° or more: FPHA records that joint exactly straight in most frames.
* curl: wrist→MCP vs DIP→tip; mean finger flexion: the mean of the 12 non-thumb flexions.
* spread: the angle between neighbouring MCP→PIP bones, in 3D and projected on the palm plane;
  thumb opposition: thumb CMC→MCP vs index wrist→MCP.
* palm frame: y' = unit(wrist→middle MCP), n = unit((index MCP − wrist) × (little MCP − wrist)),
  out of a right hand's palm (:func:`hopose.data.grasps.palm_axes`, the frame the generator
  places); "back of the hand seen" when n makes less than 90° with the ray to the wrist.
* image quantities in FPHA's 1920×1080 colour frame.

:func:`compare` puts a generator's percentiles beside the real ones with a tolerance of 10% of
the real value or a floor per unit, whichever is larger (:data:`TOLERANCE_FLOOR`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hopose.data.fpha import FPHA_COLOR_K
from hopose.data.grasps import BONE_LENGTH_P50, FPHA_OBJECTS, in_fpha_image, palm_axes, project
from hopose.skeleton import FINGER_CHAINS, FINGERS, HAND_BONES

PERCENTILES = (5, 25, 50, 75, 95)
# Absolute tolerance floors per unit. 20 px is 5 mm at the hand's median depth (1395.7 px
# focal length × 5 mm / 350 mm); 0.087 is sin 5° for a unit vector's component.
TOLERANCE_FLOOR: dict[str, float] = {"deg": 5.0, "mm": 5.0, "px": 20.0, "unit": 0.087, "%": 5.0}
RELATIVE_TOLERANCE = 0.10
PIP_BENT_DEG = 1.0


@dataclass(frozen=True)
class RealStatistic:
    """One published FPHA-HO statistic: its unit and its value at some of PERCENTILES.

    A fraction (unit "%") is stored under the key 50.
    """

    unit: str
    values: dict[int, float]


def _stat(unit: str, values, keys=PERCENTILES) -> RealStatistic:
    return RealStatistic(unit, dict(zip(keys, values, strict=True)))


def _rows(prefix: str, names, unit: str, table: list[tuple[float, ...]], keys=PERCENTILES):
    """RealStatistic per name from a table whose rows are percentiles and columns names."""
    return {
        f"{prefix}{name}": _stat(unit, column, keys)
        for name, column in zip(names, zip(*table, strict=True), strict=True)
    }


_FINGER_NAMES = FINGERS[1:]
_BONE_NAMES = tuple(
    f"{FINGERS[b // 4]} {('base', 'b1', 'b2', 'b3')[b % 4]}" for b in range(len(HAND_BONES))
)
# FPHA-HO bone lengths, p5/p50/p95 (mm), in HAND_BONES order (chain by chain from the wrist);
# the medians are the generator's (docs/conventions.md §7).
_BONES = [
    (13.6, 51.0, 33.3, 27.0, 70.0, 39.6, 23.0, 18.0, 66.0, 41.5, 25.0, 20.0, 63.0, 37.0, 21.0,
     21.0, 60.0, 32.0, 18.0, 18.0),
    tuple(BONE_LENGTH_P50.reshape(-1).tolist()),
    (15.8, 59.6, 45.1, 30.0, 80.0, 54.0, 33.3, 22.0, 77.0, 56.0, 36.3, 24.0, 73.0, 49.7, 36.1,
     25.0, 76.0, 43.9, 32.6, 22.0),
]  # fmt: skip
_P5_50_95, _QUARTILES = (5, 50, 95), (25, 50, 75)

# FPHA-HO hand annotations (22,394 frames, colour-camera frame), summarised in docs/synthetic.md.
REAL: dict[str, RealStatistic] = {
    **_rows("bone ", _BONE_NAMES, "mm", _BONES, _P5_50_95),
    "wrist to middle tip along the bones": RealStatistic("mm", {5: 156, 50: 168, 95: 180}),
    **_rows("wrist ", "xyz", "mm", [(-13, -36, 219), (68, 43, 349), (181, 148, 451)], _P5_50_95),
    "hand centroid depth": RealStatistic("mm", {5: 279, 50: 416, 95: 522}),
    **_rows("centroid ", "uv", "px", [(785, 169), (1110, 553), (1541, 896)], _P5_50_95),
    "joints inside the image": RealStatistic("%", {50: 96.0}),
    "frames with all joints inside": RealStatistic("%", {50: 87.0}),
    "thumb CMC": _stat("deg", (65.8, 82.6, 92.8, 101.5, 114.5)),
    "thumb MCP, bent": _stat("deg", (8.0, 20.0, 30.3, 41.5, 57.3)),
    "thumb IP": _stat("deg", (3.8, 9.6, 16.1, 26.5, 43.7)),
    **_rows("index ", ("MCP", "PIP, bent", "DIP"), "deg", [
        (17.0, 13.5, 10.2), (33.4, 30.2, 27.7), (45.6, 43.2, 41.0), (58.6, 70.9, 55.9),
        (78.5, 95.9, 90.7)]),
    **_rows("middle ", ("MCP", "PIP, bent", "DIP"), "deg", [
        (13.9, 14.0, 13.2), (26.1, 34.2, 39.6), (35.4, 53.7, 55.2), (48.0, 77.5, 73.2),
        (65.6, 101.3, 90.8)]),
    **_rows("ring ", ("MCP", "PIP, bent", "DIP"), "deg", [
        (14.0, 16.5, 10.4), (24.7, 40.0, 39.3), (33.7, 60.6, 57.6), (43.9, 82.2, 72.3),
        (60.9, 105.4, 92.1)]),
    **_rows("little ", ("MCP", "PIP, bent", "DIP"), "deg", [
        (13.4, 14.8, 9.7), (23.5, 35.3, 33.5), (34.3, 58.3, 54.6), (47.4, 82.2, 70.7),
        (66.0, 101.3, 96.3)]),
    **_rows("curl ", _FINGER_NAMES, "deg", [
        (25.6, 57.9, 47.0, 28.4), (73.7, 84.3, 76.9, 64.7), (90.2, 104.0, 104.1, 92.4),
        (111.9, 135.0, 135.0, 131.5), (157.0, 164.5, 165.0, 164.7)]),
    "mean finger flexion": _stat("deg", (18.4, 25.6, 33.5, 44.6, 70.3)),
    **_rows("spread ", ("index-middle", "middle-ring", "ring-little"), "deg", [
        (2.4, 1.9, 2.5), (6.1, 4.4, 5.7), (10.1, 7.1, 9.1), (15.4, 10.8, 14.5),
        (22.7, 17.4, 25.3)]),
    **_rows("palm-plane spread ", ("index-middle", "middle-ring", "ring-little"), "deg", [
        (0.5, 0.4, 0.5), (2.5, 1.9, 2.5), (5.5, 4.0, 5.2), (10.1, 7.2, 9.0), (19.1, 16.5, 19.7)]),
    "thumb opposition": _stat("deg", (21.6, 32.4, 40.8, 49.2, 60.3)),
    **_rows("thumb tip to tip ", _FINGER_NAMES, "mm", [
        (26.9, 29.6, 30.3, 37.5), (36.0, 45.2, 49.7, 61.3), (48.7, 56.1, 67.1, 79.5),
        (68.8, 70.6, 82.1, 93.6), (99.8, 90.6, 100.0, 117.4)]),
    **_rows("tip to palm centroid ", FINGERS, "mm", [
        (72.7, 49.8, 41.0, 36.3, 44.7), (81.7, 86.6, 78.9, 73.3, 71.9),
        (87.6, 97.2, 96.6, 90.8, 86.8), (94.2, 106.7, 107.0, 104.1, 96.3),
        (102.0, 120.1, 116.8, 113.8, 103.7)]),
    "depth span": _stat("mm", (77.5, 99.2, 119.5, 139.0, 156.0)),
    "wrist depth": _stat("mm", (219.1, 309.0, 348.6, 387.0, 451.2)),
    **_rows("hand box ", ("width", "height"), "px", [
        (192, 172), (262, 246), (323, 319), (392, 413), (537, 675)]),
    **_rows("palm y' ", "xyz", "unit", [(-0.60, -0.97, 0.04), (-0.15, -0.70, 0.61),
                                        (0.45, -0.15, 0.96)], _P5_50_95),
    **_rows("palm n ", "xyz", "unit", [(-0.98, -0.56, -0.47), (-0.47, 0.50, 0.39),
                                       (0.21, 0.95, 0.89)], _P5_50_95),
    "palm normal to wrist ray": _stat("deg", (28, 55, 72, 91, 129)),
    "back of the hand seen": RealStatistic("%", {50: 74.0}),
    "FPHA PIP recorded straight": RealStatistic("%", {50: 63.5}),
    "FPHA thumb MCP recorded straight": RealStatistic("%", {50: 86.0}),
    # Per object, columns in FPHA_OBJECTS order: juice bottle, milk, liquid soap, salt.
    **_rows("", [f"{n} thumb-index tip" for n in FPHA_OBJECTS], "mm", [
        (30.9, 37.4, 45.7, 67.7), (39.2, 44.1, 52.7, 70.8), (93.9, 55.2, 67.4, 74.5)], _QUARTILES),
    **_rows("", [f"{n} mean finger flexion" for n in FPHA_OBJECTS], "deg", [
        (25.1, 33.3, 21.5, 24.5), (34.4, 46.7, 25.5, 28.0), (40.6, 63.5, 28.1, 33.1)], _QUARTILES),
}  # fmt: skip


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors (..., 3)."""
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def hand_quantities(hand_3d: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame values of every statistic in :data:`REAL` that has percentiles.

    Args:
        hand_3d: (B, 21, 3) joints, camera frame, mm.

    Returns:
        name -> (B,) values; "PIP, bent" entries are NaN where the joint is straight, and the
        fractions are 0/1 indicators (times 100) whose mean is the percentage.
    """
    hand = np.asarray(hand_3d, dtype=np.float64)
    chains = hand[:, np.array(FINGER_CHAINS)]  # (B, 5, 4, 3) base..tip per finger
    bones = np.diff(np.concatenate([hand[:, None, None, 0].repeat(5, 1), chains], 2), axis=2)
    flex = _angle(bones[:, :, :-1], bones[:, :, 1:])  # (B, 5, 3) per chain joint
    out: dict[str, np.ndarray] = {}
    lengths = np.linalg.norm(bones, axis=-1).reshape(len(hand), -1)  # HAND_BONES order
    for b, name in enumerate(_BONE_NAMES):
        out[f"bone {name}"] = lengths[:, b]
    out["wrist to middle tip along the bones"] = lengths[:, 8:12].sum(axis=1)
    for axis, name in enumerate("xyz"):
        out[f"wrist {name}"] = hand[:, 0, axis]
    out["hand centroid depth"] = hand[:, :, 2].mean(axis=1)
    # The generator's projection (geometry.project_points): a joint at or behind the camera has
    # its depth clamped to MIN_DEPTH and lands far outside the frame, where dividing by its own
    # depth mirrored it through the principal point, possibly into the frame. Only the box
    # size and centroid pixel of such a frame differ: the generator accepts placements with
    # every point over 50 mm in front of the camera (the 4096 poses of `hopose synth --stats`
    # have none nearer than 168 mm), and "inside" still requires z > 0.
    uv = project(hand, FPHA_COLOR_K)  # (B, 21, 2) pixels of the 1920×1080 frame
    out["centroid u"], out["centroid v"] = project(hand.mean(axis=1), FPHA_COLOR_K).T
    inside = in_fpha_image(uv) & (hand[..., 2] > 0)
    out["joints inside the image"] = 100.0 * inside.mean(axis=1)
    out["frames with all joints inside"] = 100.0 * inside.all(axis=1)
    straight = flex[:, :, 1] < PIP_BENT_DEG  # (B, 5): thumb MCP and finger PIPs
    out["thumb CMC"] = flex[:, 0, 0]
    out["thumb MCP, bent"] = np.where(straight[:, 0], np.nan, flex[:, 0, 1])
    out["thumb IP"] = flex[:, 0, 2]
    for f, finger in enumerate(FINGERS[1:], start=1):
        out[f"{finger} MCP"] = flex[:, f, 0]
        out[f"{finger} PIP, bent"] = np.where(straight[:, f], np.nan, flex[:, f, 1])
        out[f"{finger} DIP"] = flex[:, f, 2]
        out[f"curl {finger}"] = _angle(bones[:, f, 0], bones[:, f, 3])
    out["mean finger flexion"] = flex[:, 1:].reshape(len(hand), -1).mean(axis=1)
    palm_y, palm_n = palm_axes(hand)
    first = bones[:, 1:, 1]  # (B, 4, 3) MCP→PIP of index..little
    in_plane = first - (first * palm_n[:, None]).sum(-1, keepdims=True) * palm_n[:, None]
    for k, name in enumerate(("index-middle", "middle-ring", "ring-little")):
        out[f"spread {name}"] = _angle(first[:, k], first[:, k + 1])
        out[f"palm-plane spread {name}"] = _angle(in_plane[:, k], in_plane[:, k + 1])
    out["thumb opposition"] = _angle(bones[:, 0, 1], bones[:, 1, 0])
    tips = chains[:, :, 3]  # (B, 5, 3)
    for f, finger in enumerate(FINGERS[1:], start=1):
        out[f"thumb tip to tip {finger}"] = np.linalg.norm(tips[:, 0] - tips[:, f], axis=-1)
    palm_centroid = hand[:, [0, 5, 9, 13, 17]].mean(axis=1)
    for f, finger in enumerate(FINGERS):
        out[f"tip to palm centroid {finger}"] = np.linalg.norm(tips[:, f] - palm_centroid, axis=-1)
    out["depth span"] = np.ptp(hand[:, :, 2], axis=1)
    out["wrist depth"] = hand[:, 0, 2]
    out["hand box width"] = np.ptp(uv[..., 0], axis=1)
    out["hand box height"] = np.ptp(uv[..., 1], axis=1)
    for axis, name in enumerate("xyz"):
        out[f"palm y' {name}"] = palm_y[:, axis]
        out[f"palm n {name}"] = palm_n[:, axis]
    ray_angle = _angle(palm_n, hand[:, 0])
    out["palm normal to wrist ray"] = ray_angle
    out["back of the hand seen"] = 100.0 * (ray_angle < 90.0)
    out["FPHA PIP recorded straight"] = 100.0 * straight[:, 1:].mean(axis=1)
    out["FPHA thumb MCP recorded straight"] = 100.0 * straight[:, 0]
    return out


@dataclass(frozen=True)
class Comparison:
    """One statistic compared at one percentile: synthetic vs real, distance and tolerance."""

    name: str
    percentile: int | None  # None for a fraction
    unit: str
    synthetic: float
    real: float

    @property
    def distance(self) -> float:
        return abs(self.synthetic - self.real)

    @property
    def tolerance(self) -> float:
        return max(RELATIVE_TOLERANCE * abs(self.real), TOLERANCE_FLOOR[self.unit])

    @property
    def passed(self) -> bool:
        return self.distance <= self.tolerance


def compare(hand_3d: np.ndarray, objects: list[str]) -> list[Comparison]:
    """Synthetic percentiles of every :data:`REAL` statistic beside the published ones.

    Compared at p25/p50/p75 where FPHA-HO's are published, otherwise at the published
    percentiles (p5/p50/p95); fractions as percentages. Per-object rows use the frames of
    that object.

    Args:
        hand_3d: (B, 21, 3) camera frame, mm. objects: B object names.
    """
    values = hand_quantities(hand_3d)
    objects_arr = np.asarray(objects)
    for name in FPHA_OBJECTS:
        mine = objects_arr == name
        values[f"{name} thumb-index tip"] = values["thumb tip to tip index"][mine]
        values[f"{name} mean finger flexion"] = values["mean finger flexion"][mine]
    rows = []
    for name, real in REAL.items():
        data = values[name][~np.isnan(values[name])]
        if real.unit == "%":
            rows.append(Comparison(name, None, "%", float(data.mean()), real.values[50]))
            continue
        keys = (25, 50, 75) if 25 in real.values else tuple(real.values)
        for p in keys:
            synthetic = float(np.percentile(data, p)) if len(data) else float("nan")
            rows.append(Comparison(name, p, real.unit, synthetic, real.values[p]))
    return rows


def comparison_table(rows: list[Comparison]) -> str:
    """A Markdown table: one line per statistic with its compared percentiles side by side."""
    lines = [
        "| statistic | unit | percentiles | synthetic | FPHA-HO | largest distance / tolerance | |",
        "|---|---|---|---|---|---|---|",
    ]
    by_name: dict[str, list[Comparison]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    for name, group in by_name.items():
        pct = " / ".join("frac" if r.percentile is None else f"p{r.percentile}" for r in group)
        syn = " / ".join(f"{r.synthetic:.4g}" for r in group)
        real = " / ".join(f"{r.real:.4g}" for r in group)
        worst = max(group, key=lambda r: r.distance / r.tolerance)
        verdict = "pass" if all(r.passed for r in group) else "**miss**"
        ratio = f"{worst.distance:.3g} / {worst.tolerance:.3g}"
        lines.append(f"| {name} | {group[0].unit} | {pct} | {syn} | {real} | {ratio} | {verdict} |")
    passed = sum(all(r.passed for r in g) for g in by_name.values())
    lines.append("")
    lines.append(f"{passed} of {len(by_name)} statistics within tolerance at every percentile.")
    return "\n".join(lines)
