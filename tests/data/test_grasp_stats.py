"""Hand statistics against FPHA-HO's: definitions on hand-built poses, tolerances, the command."""

from __future__ import annotations

import numpy as np
import pytest

from hopose.cli import main
from hopose.data.fpha import FPHA_COLOR_K
from hopose.data.grasp_stats import REAL, Comparison, compare, comparison_table, hand_quantities
from hopose.data.grasps import generate_grasps
from hopose.skeleton import FINGERS


def _planar_hand(mcp_deg, pip_deg: float, dip_deg: float, *, parallel: bool = False) -> np.ndarray:
    """(1, 21, 3) a hand 400 mm in front of the camera whose four fingers bend by the angles.

    The MCPs lie 60 mm from the wrist along +y at x = -20, 0, 20, 40 mm (middle finger on the
    y axis); each finger continues its wrist->MCP direction d (+y for all with ``parallel``)
    and bends in the plane of d and +z. ``mcp_deg`` is one angle or one per finger (index
    first). The thumb is a straight chain along -x.
    """
    hand = np.zeros((21, 3))
    mcps = np.broadcast_to(mcp_deg, (4,))
    for f, x in enumerate((-20.0, 0.0, 20.0, 40.0)):
        mcp = np.array([x, 60.0, 0.0])
        d = np.array([0.0, 1.0, 0.0]) if parallel else mcp / np.linalg.norm(mcp)
        joints, heading = [mcp], 0.0
        for length, bend in zip((40.0, 25.0, 20.0), (mcps[f], pip_deg, dip_deg), strict=True):
            heading += np.radians(bend)
            step = np.cos(heading) * d + np.sin(heading) * np.array([0.0, 0.0, 1.0])
            joints.append(joints[-1] + length * step)
        hand[5 + 4 * f : 9 + 4 * f] = joints
    hand[1:5] = np.array([[-14.0, 0, 0], [-60.0, 0, 0], [-95.0, 0, 0], [-120.0, 0, 0]])
    return (hand + np.array([0.0, 0.0, 400.0]))[None]


# Fingers bent 90 deg at the MCP point along the palm normal: they have no direction in the
# palm plane, so their palm-plane spreads are NaN (0 / 0), which numpy warns about.
_NO_PALM_PLANE_DIRECTION = pytest.mark.filterwarnings(
    "ignore:invalid value encountered in divide:RuntimeWarning"
)


def test_flexion_curl_and_straight_pip_follow_the_definitions():
    values = hand_quantities(_planar_hand(30.0, 0.0, 45.0))
    # MCP: MCP->PIP is wrist->MCP turned by 30 deg; PIP straight; DIP 45 deg.
    np.testing.assert_allclose(values["index MCP"], [30.0], atol=1e-9)
    np.testing.assert_allclose(values["ring DIP"], [45.0], atol=1e-9)
    assert np.isnan(values["middle PIP, bent"][0])  # straight PIP: left out of the "bent" row
    np.testing.assert_allclose(values["FPHA PIP recorded straight"], [100.0])
    # Curl: wrist->MCP vs DIP->tip, a planar chain turned by 30 + 0 + 45 = 75 deg.
    np.testing.assert_allclose(values["curl little"], [75.0], atol=1e-9)
    # Mean of the 12 finger flexions: (30 + 0 + 45) / 3 = 25 deg.
    np.testing.assert_allclose(values["mean finger flexion"], [25.0], atol=1e-9)
    # Thumb CMC->MCP along -x against the index's wrist->MCP (-20, 60, 0): 90 - atan(20 / 60).
    np.testing.assert_allclose(values["thumb opposition"], [90.0 - np.degrees(np.arctan(1 / 3))])
    np.testing.assert_allclose(values["wrist depth"], [400.0])
    # Bent PIPs: no finger's recorded straight, while the thumb's MCP still is.
    bent = hand_quantities(_planar_hand(30.0, 20.0, 45.0))
    np.testing.assert_array_equal(bent["FPHA PIP recorded straight"], [0.0])
    np.testing.assert_array_equal(bent["FPHA thumb MCP recorded straight"], [100.0])


@_NO_PALM_PLANE_DIRECTION
def test_lengths_and_distances_follow_the_definitions():
    straight = hand_quantities(_planar_hand(0.0, 0.0, 0.0))
    # The middle finger on the y axis: wrist->MCP 60 mm, then 40 + 25 + 20 mm = 145 mm. (The
    # ring's path would be sqrt(20^2 + 60^2) + 85 = 148.2 mm.)
    np.testing.assert_allclose(straight["wrist to middle tip along the bones"], [145.0])
    # Thumb tip (-120, 0) to the middle tip (0, 145): sqrt(120^2 + 145^2) = 188.2 mm (from the
    # thumb's IP at -95: 173.3 mm).
    np.testing.assert_allclose(straight["thumb tip to tip middle"], [np.hypot(120.0, 145.0)])
    # Palm centroid: the mean of the wrist (0, 0) and the MCPs (-20, 60), (0, 60), (20, 60),
    # (40, 60) is (40 / 5, 240 / 5) = (8, 48); the thumb tip (-120, 0) lies sqrt(128^2 + 48^2)
    # = 136.7 mm from it (143.2 mm from the MCPs' mean (10, 60)).
    np.testing.assert_allclose(straight["tip to palm centroid thumb"], [np.hypot(128.0, 48.0)])
    # Depth span: the flat hand has none; fingers bent 90 deg at their MCPs reach 40 + 25 + 20
    # = 85 mm further from the camera than the rest (the depths' sd would be 34.3 mm).
    np.testing.assert_allclose(straight["depth span"], [0.0])
    bent = hand_quantities(_planar_hand(90.0, 0.0, 0.0))
    np.testing.assert_allclose(bent["depth span"], [85.0], atol=1e-9)


def test_spread_is_between_first_phalanges_in_3d_and_in_the_palm_plane():
    # Fingers leaving their MCPs in parallel along +y, the index bent 30 deg at its MCP towards
    # +z: its MCP->PIP (0, cos 30, sin 30) makes 30 deg with the middle's (0, 1, 0) in 3D and
    # none in the palm plane, whose normal is z. (The wrist->MCP bones (-20, 60, 0), (0, 60, 0)
    # and (20, 60, 0) differ by atan(20 / 60) = 18.4 deg.)
    values = hand_quantities(_planar_hand([30.0, 0.0, 0.0, 0.0], 0.0, 0.0, parallel=True))
    np.testing.assert_allclose(values["spread index-middle"], [30.0], atol=1e-6)
    np.testing.assert_allclose(values["palm-plane spread index-middle"], [0.0], atol=1e-6)
    np.testing.assert_allclose(values["spread middle-ring"], [0.0], atol=1e-6)
    np.testing.assert_allclose(values["palm-plane spread middle-ring"], [0.0], atol=1e-6)


def test_image_quantities_through_fphas_colour_camera():
    fx, fy, cx, cy = FPHA_COLOR_K[0, 0], FPHA_COLOR_K[1, 1], FPHA_COLOR_K[0, 2], FPHA_COLOR_K[1, 2]
    # The flat hand moved to have its centroid at (40, -30, 400) mm, inside the frame: the
    # centroid projects to u = fx 40 / 400 + cx = 139.57 + 935.73 = 1075.31 px and
    # v = fy (-30 / 400) + cy = -104.68 + 540.68 = 436.00 px.
    hand = _planar_hand(0.0, 0.0, 0.0)[0]
    hand = hand - hand.mean(axis=0) + np.array([40.0, -30.0, 400.0])
    # One joint left of the frame (u = fx (-1000 / 400) + cx < 0), one behind the camera at
    # (0, 0, -400): projected as everywhere (geometry.project_points) its depth is clamped to
    # MIN_DEPTH, u = -400 cx / 1e-6 = -3.7e11 px, far left of the frame (divided by its own
    # depth it was mirrored onto (cx, cy), in the frame), and it is not seen.
    left, behind = hand.copy(), hand.copy()
    left[20] = [-1000.0, 0.0, 400.0]
    behind[20] = [0.0, 0.0, -400.0]
    values = hand_quantities(np.stack([hand, left, behind]))
    np.testing.assert_allclose(values["centroid u"][0], fx * 40 / 400 + cx)
    np.testing.assert_allclose(values["centroid v"][0], fy * -30 / 400 + cy)
    # All at depth 400: x spans the thumb tip's -120 mm to the little tip's
    # 40 + 85 * 40 / sqrt(40^2 + 60^2) = 87.15 mm (207.15 mm, 722.8 px), y the wrist's 0 to
    # the middle tip's 145 mm (506.0 px).
    width = fx * (160.0 + 85 * 40 / np.hypot(40.0, 60.0)) / 400
    np.testing.assert_allclose(values["hand box width"][0], width)
    np.testing.assert_allclose(values["hand box height"][0], fy * 145.0 / 400)
    assert values["hand box width"][2] > 400 * cx / 1e-6
    # 20 of 21 joints seen in the last two frames, which are not wholly inside.
    np.testing.assert_allclose(values["joints inside the image"], [100.0, *[100 * 20 / 21] * 2])
    np.testing.assert_array_equal(values["frames with all joints inside"], [100.0, 0.0, 0.0])


def test_palm_frame_and_the_back_of_the_hand():
    hand = _planar_hand(0.0, 0.0, 0.0)
    # (index MCP - wrist) x (little MCP - wrist) = (-20, 60, 0) x (40, 60, 0) = (0, 0, -3600):
    # n = -z points at the camera, so the camera sees the palm, not the back.
    values = hand_quantities(hand)
    np.testing.assert_allclose([values[f"palm n {a}"][0] for a in "xyz"], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose([values[f"palm y' {a}"][0] for a in "xyz"], [0, 1, 0], atol=1e-12)
    assert values["back of the hand seen"][0] == 0.0
    mirrored = hand * np.array([-1.0, 1.0, 1.0])  # n flips to +z, away from the camera
    assert hand_quantities(mirrored)["back of the hand seen"][0] == 100.0


def test_tolerance_is_ten_percent_or_the_units_floor():
    # 10% of 100 deg = 10 deg > the 5 deg floor; 10% of 20 mm = 2 mm < the 5 mm floor.
    assert Comparison("a", 50, "deg", 109.0, 100.0).passed
    assert not Comparison("a", 50, "deg", 111.0, 100.0).passed
    assert Comparison("b", 50, "mm", 24.9, 20.0).passed
    assert not Comparison("b", 50, "mm", 25.1, 20.0).passed


def test_compare_reports_every_published_statistic_at_its_percentiles():
    rows = compare(np.repeat(_planar_hand(30.0, 20.0, 45.0), 8, axis=0), ["milk"] * 8)
    assert {row.name for row in rows} == set(REAL)
    pct = {row.percentile for row in rows if row.name == "thumb IP"}
    assert pct == {25, 50, 75}
    assert {row.percentile for row in rows if row.name == "wrist x"} == {5, 50, 95}
    # Eight copies of one hand: every percentile of the index MCP is its 30 deg.
    index_mcp = [row.synthetic for row in rows if row.name == "index MCP"]
    np.testing.assert_allclose(index_mcp, [30.0] * 3, atol=1e-9)


@_NO_PALM_PLANE_DIRECTION
def test_compare_rows_per_object_use_that_objects_frames():
    # Milk: fingers bent 90 deg at the MCP, the index tip 85 mm behind its MCP at
    # (-20, 60, 485); from the thumb tip (-120, 0, 400) that is sqrt(100^2 + 60^2 + 85^2)
    # = 144.3 mm, and the mean finger flexion (90 + 0 + 0) / 3 = 30 deg.
    # Salt: straight fingers, the index tip 85 mm along (-1, 3) / sqrt(10) from its MCP, at
    # (-20 - 85 / sqrt(10), 60 + 255 / sqrt(10)) = (-46.88, 140.64): 158.5 mm from the thumb
    # tip; flexion 0.
    milk, salt = _planar_hand(90.0, 0.0, 0.0), _planar_hand(0.0, 0.0, 0.0)
    hands = np.concatenate([np.repeat(milk, 4, axis=0), np.repeat(salt, 4, axis=0)])
    rows = compare(hands, ["milk"] * 4 + ["salt"] * 4)
    got = {(row.name, row.percentile): row.synthetic for row in rows}
    salt_tip = np.hypot(100 - 85 / np.sqrt(10), 60 + 255 / np.sqrt(10))
    for name, expected in (
        ("milk thumb-index tip", np.sqrt(100**2 + 60**2 + 85**2)),
        ("salt thumb-index tip", salt_tip),
        ("milk mean finger flexion", 30.0),
        ("salt mean finger flexion", 0.0),
    ):
        # Each object's four frames are alike, so each quartile is that one value (up to the
        # ~1e-6 deg that arccos keeps near 1).
        quartiles = [got[name, p] for p in (25, 50, 75)]
        np.testing.assert_allclose(quartiles, [expected] * 3, atol=1e-5)
    # The juice bottle has no frames here: no percentile.
    assert np.isnan(got["juice_bottle thumb-index tip", 50])


def test_synth_stats_prints_the_comparison_table(capsys):
    assert main(["synth", "--stats", "--num", "64", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    # The same 64 poses compared here: a statistic passes when every one of its rows does.
    grasps = generate_grasps(1, np.arange(64), 0.2)
    rows = compare(grasps.hand_3d, grasps.object)
    verdicts: dict[str, bool] = {}
    for row in rows:
        verdicts[row.name] = verdicts.get(row.name, True) and row.passed
    passed = sum(verdicts.values())
    assert 0 < passed < len(verdicts) == len(REAL)  # both verdicts occur in the table
    assert f"\n{passed} of {len(REAL)} statistics within tolerance at every percentile." in out
    # One line in full: curl index at p25 / p50 / p75, its largest distance over its tolerance
    # and its verdict, all from compare's rows; and a statistic that passes says so.
    curl = [row for row in rows if row.name == "curl index"]
    worst = max(curl, key=lambda r: r.distance / r.tolerance)
    line = (
        "| curl index | deg | p25 / p50 / p75 | "
        + " / ".join(f"{r.synthetic:.4g}" for r in curl)
        + " | "
        + " / ".join(f"{r.real:.4g}" for r in curl)
        + f" | {worst.distance:.3g} / {worst.tolerance:.3g} | "
        + ("pass" if verdicts["curl index"] else "**miss**")
        + " |"
    )
    assert line in out.splitlines()
    passing = next(name for name, ok in verdicts.items() if ok)
    (passing_line,) = [text for text in out.splitlines() if text.startswith(f"| {passing} |")]
    assert passing_line.endswith(" | pass |")


def test_synth_without_out_or_stats_is_a_one_line_error(capsys):
    assert main(["synth", "--num", "4"]) == 1
    assert capsys.readouterr().err == (
        "hopose synth: error: --split and --out: both are required unless --stats is given\n"
    )


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--out", "c"], "--out"),
        (["--split", "val", "--image-size", "64"], "--split, --image-size"),
        (["--workers", "2"], "--workers"),
    ],
)
def test_synth_stats_refuses_the_options_it_would_ignore(
    tmp_path, monkeypatch, capsys, extra, named
):
    """--stats writes no cache and measures the poses of --seed, not of a split's seed: those
    options were silently dropped."""
    monkeypatch.chdir(tmp_path)
    assert main(["synth", "--stats", "--num", "2", *extra]) == 1
    assert capsys.readouterr() == (
        "",
        f"hopose synth: error: {named}: not used with --stats (it writes no cache)\n",
    )
    assert list(tmp_path.iterdir()) == []


def _bent_thumb(hand: np.ndarray, cmc_deg: float, mcp_deg: float, ip_deg: float) -> np.ndarray:
    """``hand`` (1, 21, 3) with its thumb rebuilt: wrist->CMC 14 mm along -x, then CMC->MCP
    46 mm, MCP->IP 35 mm and IP->tip 25 mm, each turned by its joint's angle in the plane of -x
    and +z."""
    hand = hand.copy()
    joints, heading = [hand[0, 0] + np.array([-14.0, 0.0, 0.0])], 0.0
    for length, bend in zip((46.0, 35.0, 25.0), (cmc_deg, mcp_deg, ip_deg), strict=True):
        heading += np.radians(bend)
        step = -np.cos(heading) * np.array([1.0, 0.0, 0.0]) + np.sin(heading) * np.array([0, 0, 1])
        joints.append(joints[-1] + length * step)
    hand[0, 1:5] = joints
    return hand


def test_thumb_angles_follow_the_definitions():
    """Thumb CMC, MCP and IP are the angles at its three chain joints, and the opposition is
    taken from the thumb's CMC->MCP bone (not its wrist->CMC bone)."""
    values = hand_quantities(_bent_thumb(_planar_hand(30.0, 20.0, 45.0), 20.0, 30.0, 40.0))
    # CMC: wrist->CMC vs CMC->MCP; MCP: CMC->MCP vs MCP->IP; IP: MCP->IP vs IP->tip.
    np.testing.assert_allclose(values["thumb CMC"], [20.0], atol=1e-9)
    np.testing.assert_allclose(values["thumb MCP, bent"], [30.0], atol=1e-9)
    np.testing.assert_allclose(values["thumb IP"], [40.0], atol=1e-9)
    np.testing.assert_array_equal(values["FPHA thumb MCP recorded straight"], [0.0])
    # CMC->MCP (-cos 20, 0, sin 20) against the index's wrist->MCP (-20, 60, 0) / sqrt(4000):
    # cos = 20 cos 20 / sqrt(4000) = 0.2972, 72.71 deg (the wrist->CMC bone along -x: 71.57).
    expected = np.degrees(np.arccos(20 * np.cos(np.radians(20.0)) / np.sqrt(4000.0)))
    np.testing.assert_allclose(values["thumb opposition"], [expected], atol=1e-9)


def test_bone_lengths_are_named_chain_by_chain_from_the_wrist():
    """Each "bone ..." statistic is that bone's length: base (from the wrist), then b1-b3."""
    values = hand_quantities(_planar_hand(0.0, 0.0, 0.0))
    # Thumb: wrist (0) -> -14 -> -60 -> -95 -> -120 mm along x: 14, 46, 35, 25 mm. A finger: its
    # MCP (x, 60) from the wrist, sqrt(x^2 + 60^2), then 40, 25 and 20 mm.
    expected = {"thumb": (14.0, 46.0, 35.0, 25.0)}
    for finger, x in zip(FINGERS[1:], (-20.0, 0.0, 20.0, 40.0), strict=True):
        expected[finger] = (np.hypot(x, 60.0), 40.0, 25.0, 20.0)
    for finger, lengths in expected.items():
        for part, length in zip(("base", "b1", "b2", "b3"), lengths, strict=True):
            np.testing.assert_allclose(values[f"bone {finger} {part}"], [length], err_msg=part)


@_NO_PALM_PLANE_DIRECTION
def test_wrist_position_and_the_hand_centroids_depth_and_pixel():
    """Wrist x/y/z are joint 0's coordinates; the centroid is the mean of the 21 joints in 3D,
    its depth that mean's z and its pixel that mean projected (not the mean of the joints'
    pixels, which differ once the joints' depths differ)."""
    # Fingers bent 90 deg at the MCPs, the hand moved by (10, -20, 0) mm. Coordinate sums over
    # the 21 joints: x: thumb -14 - 60 - 95 - 120 = -289, each finger's 4 joints at its MCP's
    # x: 4 (-20 + 0 + 20 + 40) = 160, moved 21 * 10: -289 + 160 + 210 = 81; y: 16 finger
    # joints at 60 mm, moved 21 * -20: 960 - 420 = 540; z: 21 * 400 + 4 (40 + 65 + 85) = 9160.
    hand = _planar_hand(90.0, 0.0, 0.0) + np.array([10.0, -20.0, 0.0])
    values = hand_quantities(hand)
    for name, expected in zip("xyz", (10.0, -20.0, 400.0), strict=True):
        np.testing.assert_allclose(values[f"wrist {name}"], [expected])
    # Mean depth 9160 / 21 = 436.19 mm (the median joint depth would be 440 mm).
    np.testing.assert_allclose(values["hand centroid depth"], [9160 / 21])
    fx, fy, cx, cy = FPHA_COLOR_K[0, 0], FPHA_COLOR_K[1, 1], FPHA_COLOR_K[0, 2], FPHA_COLOR_K[1, 2]
    np.testing.assert_allclose(values["centroid u"], [cx + fx * 81 / 9160])
    np.testing.assert_allclose(values["centroid v"], [cy + fy * 540 / 9160])


def test_palm_normal_angle_is_taken_to_the_wrists_ray():
    # The flat hand moved by 400 mm along x: wrist at (400, 0, 400), n = (0, 0, -1), so the
    # angle to the wrist's ray (1, 0, 1) / sqrt 2 is 135 deg. (To the middle MCP's ray
    # (400, 60, 400): 180 - acos(400 / 568.9) = 134.67 deg.)
    values = hand_quantities(_planar_hand(0.0, 0.0, 0.0) + np.array([400.0, 0.0, 0.0]))
    np.testing.assert_allclose(values["palm normal to wrist ray"], [135.0], atol=1e-9)


def test_a_pip_counts_as_bent_from_one_degree():
    """FPHA's "recorded straight" PIPs are those under PIP_BENT_DEG = 1 deg."""
    nearly = hand_quantities(_planar_hand(30.0, 0.9, 45.0))
    assert np.isnan(nearly["index PIP, bent"][0])
    np.testing.assert_array_equal(nearly["FPHA PIP recorded straight"], [100.0])
    bent = hand_quantities(_planar_hand(30.0, 1.1, 45.0))
    np.testing.assert_allclose(bent["index PIP, bent"], [1.1], atol=1e-6)
    np.testing.assert_array_equal(bent["FPHA PIP recorded straight"], [0.0])


def test_tolerance_floor_of_each_unit_and_its_edge():
    """Every unit's floor (20 px, 0.087 for a unit vector's component, 5 points), both
    tolerances inclusive: a distance equal to the tolerance passes."""
    # 10% of the real value is under each floor here: 10 px < 20 px, 0.05 < 0.087, 4 < 5.
    for unit, real, inside, outside in (
        ("px", 100.0, 119.5, 120.5),
        ("unit", 0.5, 0.585, 0.59),
        ("%", 40.0, 44.5, 45.5),
    ):
        assert Comparison("a", 50, unit, inside, real).passed, unit
        assert not Comparison("a", 50, unit, outside, real).passed, unit
    # Exactly at the tolerance: 5 mm off a 20 mm real value (floor 5 mm); 10 deg off 100 deg
    # (10% of it).
    assert Comparison("b", 50, "mm", 25.0, 20.0).passed
    assert Comparison("c", 50, "deg", 110.0, 100.0).passed


def test_compare_percentiles_interpolate_between_frames():
    # Eight frames with index MCPs 10, 20, ..., 80 deg. numpy's linear percentile at p sits at
    # rank p / 100 * 7: p25 at 1.75, 20 + 0.75 * 10 = 27.5 deg; p50 at 3.5, 45 deg; p75 at
    # 5.25, 62.5 deg. (Nearest rank: 30 / 40 / 60; p25 and p75 swapped: 62.5 / 45 / 27.5.)
    hands = np.concatenate([_planar_hand(m, 20.0, 45.0) for m in range(10, 90, 10)])
    rows = compare(hands, ["milk"] * 8)
    got = [(row.percentile, row.synthetic) for row in rows if row.name == "index MCP"]
    assert [p for p, _ in got] == [25, 50, 75]
    np.testing.assert_allclose([s for _, s in got], [27.5, 45.0, 62.5], atol=1e-9)


def test_compare_leaves_straight_pips_out_of_the_bent_rows():
    # Four frames with PIPs bent 20 deg, four straight: the "PIP, bent" rows see only the four
    # bent frames, 20 deg at every quartile (with the straight frames' NaNs: NaN).
    hands = np.concatenate(
        [np.repeat(_planar_hand(30.0, 20.0, 45.0), 4, 0), np.repeat(_planar_hand(30, 0, 45), 4, 0)]
    )
    rows = compare(hands, ["milk"] * 8)
    bent = [row.synthetic for row in rows if row.name == "ring PIP, bent"]
    np.testing.assert_allclose(bent, [20.0] * 3, atol=1e-9)


def test_compare_reports_fractions_as_the_percentage_of_frames():
    # Three of eight frames show the back of the hand (the mirrored ones): 3 / 8 = 37.5%, one
    # row without a percentile. (The median of five 0s and three 100s would be 0.)
    hand = _planar_hand(30.0, 20.0, 45.0)
    mirrored = hand * np.array([-1.0, 1.0, 1.0])
    hands = np.concatenate([np.repeat(hand, 5, 0), np.repeat(mirrored, 3, 0)])
    rows = [row for row in compare(hands, ["milk"] * 8) if row.name == "back of the hand seen"]
    assert [(row.percentile, row.unit) for row in rows] == [(None, "%")]
    assert rows[0].synthetic == 37.5 and rows[0].real == 74.0


def test_comparison_table_passes_a_statistic_only_when_every_row_does():
    # "x" passes at p25 and misses at p50 (20 deg off, tolerance 5): a miss; "y" passes.
    rows = [
        Comparison("x", 25, "deg", 10.0, 10.0),
        Comparison("x", 50, "deg", 30.0, 10.0),
        Comparison("y", 50, "deg", 11.0, 10.0),
    ]
    lines = comparison_table(rows).splitlines()
    assert lines[2] == "| x | deg | p25 / p50 | 10 / 30 | 10 / 10 | 20 / 5 | **miss** |"
    assert lines[3] == "| y | deg | p50 | 11 | 10 | 1 / 5 | pass |"
    assert lines[-1] == "1 of 2 statistics within tolerance at every percentile."
