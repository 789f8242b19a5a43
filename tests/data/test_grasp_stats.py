"""Hand statistics against FPHA-HO's: definitions on hand-built poses, tolerances, the command."""

from __future__ import annotations

import numpy as np
import pytest

from hopose.cli import main
from hopose.data.grasp_stats import REAL, Comparison, compare, hand_quantities
from hopose.data.synthetic import generate_grasps


def _planar_hand(mcp_deg: float, pip_deg: float, dip_deg: float) -> np.ndarray:
    """(1, 21, 3) a hand 400 mm in front of the camera whose four fingers bend by the angles.

    The MCPs lie 60 mm from the wrist along +y at x = -20, 0, 20, 40 mm (middle finger on the
    y axis); each finger continues its wrist->MCP direction d and bends in the plane of d and
    +z. The thumb is a straight chain along -x.
    """
    hand = np.zeros((21, 3))
    for f, x in enumerate((-20.0, 0.0, 20.0, 40.0)):
        mcp = np.array([x, 60.0, 0.0])
        d = mcp / np.linalg.norm(mcp)
        joints, heading = [mcp], 0.0
        for length, bend in zip((40.0, 25.0, 20.0), (mcp_deg, pip_deg, dip_deg), strict=True):
            heading += np.radians(bend)
            step = np.cos(heading) * d + np.sin(heading) * np.array([0.0, 0.0, 1.0])
            joints.append(joints[-1] + length * step)
        hand[5 + 4 * f : 9 + 4 * f] = joints
    hand[1:5] = np.array([[-14.0, 0, 0], [-60.0, 0, 0], [-95.0, 0, 0], [-120.0, 0, 0]])
    return (hand + np.array([0.0, 0.0, 400.0]))[None]


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
