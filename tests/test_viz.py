"""Drawing functions of hopose.viz: what they draw, and that each figure is written."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d import proj3d
from mpl_toolkits.mplot3d.axes3d import Axes3D
from PIL import Image, ImageColor

from eval_cases import make_dataset, make_predictions
from hopose import viz
from hopose.files import temporary_path
from hopose.report import contact_panels
from hopose.skeleton import BOX_EDGES, HAND_BONES


def _assert_png(path, min_size=(300, 200)):
    """A PNG of at least ``min_size`` pixels that is not one flat colour."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 1.0


def test_draw_pose_2d_lines_colours_and_styles():
    predictions = make_predictions(1)
    ax = Figure().add_subplot()
    viz.draw_pose(ax, predictions["pred_hand_2d"][0], predictions["pred_obj_2d"][0], "pred")
    viz.draw_pose(ax, predictions["gt_hand_2d"][0], predictions["gt_obj_2d"][0], "gt")
    lines = ax.get_lines()
    # 20 bones + 12 edges per pose, in the order hand then object, prediction then truth.
    n_hand, n_obj = len(HAND_BONES), len(BOX_EDGES)
    assert len(lines) == 2 * (n_hand + n_obj) == 64
    groups = {
        ("pred", "hand"): lines[:n_hand],
        ("pred", "obj"): lines[n_hand : n_hand + n_obj],
        ("gt", "hand"): lines[n_hand + n_obj : 2 * n_hand + n_obj],
        ("gt", "obj"): lines[2 * n_hand + n_obj :],
    }
    for (source, part), group in groups.items():
        colour = (viz.HAND_COLOUR if part == "hand" else viz.OBJECT_COLOUR)[source]
        assert {to_hex(line.get_color()) for line in group} == {colour}
        assert {line.get_linestyle() for line in group} == {"-" if source == "pred" else "--"}
    # The first bone joins the wrist (0) to the thumb's base (1).
    np.testing.assert_allclose(lines[0].get_xydata(), predictions["pred_hand_2d"][0][[0, 1]])
    labels = [line.get_label() for line in lines if not line.get_label().startswith("_")]
    assert labels == [
        "hand prediction",
        "object prediction",
        "hand ground truth",
        "object ground truth",
    ]


def _rgb(colour: str) -> np.ndarray:
    return np.array(ImageColor.getrgb(colour))


def test_the_overlay_draws_each_part_in_its_colour_where_its_points_are():
    """On a 2000x400 photo the lines are 2000 / 400 = 5 px wide (rows 98 to 102 about a
    horizontal bone at y = 100), the joints and corners discs of that radius, the contacts
    of twice it; x is the column, y the row; the photo itself is left as it was."""
    photo = Image.new("RGB", (2000, 400))
    # The wrist at (100, 100), every finger joint at (300, 100): the bones from the wrist to
    # each finger's base run along row 100. The box's corners all at (1000, 300), the one
    # contact at (1500, 200).
    hand = np.array([[100.0, 100.0]] + [[300.0, 100.0]] * 20)
    obj = np.full((8, 2), [1000.0, 300.0])
    contacts = np.array([[1500.0, 200.0]])
    overlay = np.asarray(viz.draw_overlay(photo, hand, obj, contacts)).astype(int)
    assert not np.asarray(photo).any()
    blue, orange = _rgb(viz.HAND_COLOUR["pred"]), _rgb(viz.OBJECT_COLOUR["pred"])
    for row in range(98, 103):
        np.testing.assert_array_equal(overlay[row, 200], blue)
    assert not overlay[96, 200].any() and not overlay[104, 200].any()
    # 4 px below the corners: inside their discs (radius 5), beyond the lines' half width.
    np.testing.assert_array_equal(overlay[304, 1000], orange)
    np.testing.assert_array_equal(overlay[200, 1500], _rgb(viz.CONTACT_COLOUR))
    np.testing.assert_array_equal(overlay[200, 1492], _rgb(viz.CONTACT_COLOUR))  # radius 10
    assert not overlay[200, 1488].any()
    # Nothing in column 100 between rows 100 and 300, where the bones run with x and y swapped.
    assert not overlay[200, 100].any()


def test_show_image_puts_pixel_centres_at_integers():
    # docs/conventions.md §1: pixel (0, 0)'s centre is at (0, 0), so a 6-pixel-wide,
    # 4-pixel-high image spans u from -0.5 to 6 - 0.5 = 5.5 and v from -0.5 to 4 - 0.5 = 3.5,
    # v down: exactly imshow's extent (left, right, bottom, top), no half pixel cut off.
    ax = Figure().add_subplot()
    viz.show_image(ax, np.zeros((4, 6, 3), np.uint8), (224, 224))  # size: the image's wins
    np.testing.assert_allclose(ax.get_xlim(), (-0.5, 5.5))
    np.testing.assert_allclose(ax.get_ylim(), (3.5, -0.5))
    np.testing.assert_allclose(ax.get_images()[0].get_extent(), (-0.5, 5.5, 3.5, -0.5))
    # A blank 224 x 100 canvas the same way: u from -0.5 to 223.5, v from 99.5 down to -0.5.
    blank = Figure().add_subplot()
    viz.show_image(blank, None, (224, 100))
    np.testing.assert_allclose(blank.get_xlim(), (-0.5, 223.5))
    np.testing.assert_allclose(blank.get_ylim(), (99.5, -0.5))


def _screen_axes(ax) -> np.ndarray:
    """(3, 3): rows the images of the unit x, y, z (mm) at the scene's centre under ``ax``'s
    projection, columns screen right, screen up and depth."""
    centre = np.array([np.mean(lim) for lim in (ax.get_xlim(), ax.get_ylim(), ax.get_zlim())])
    ends = centre + np.concatenate([np.zeros((1, 3)), np.eye(3)])  # centre, then centre + e_k
    screen = np.array([proj3d.proj_transform(*end, ax.get_proj()) for end in ends])
    return screen[1:] - screen[0]


def test_set_equal_3d_cube_limits_and_a_right_handed_view_from_the_camera_side():
    ax = Figure().add_subplot(projection="3d")
    points = np.array([[0.0, 0.0, 300.0], [100.0, 20.0, 340.0]])
    viz.set_equal_3d(ax, points)
    # Centre (50, 10, 320), half of the largest extent (100) = 50 on every axis; y reversed so
    # that it points down, z reversed with it.
    np.testing.assert_allclose(ax.get_xlim(), (0, 100))
    np.testing.assert_allclose(ax.get_ylim(), (60, -40))
    np.testing.assert_allclose(ax.get_zlim(), (370, 270))
    x, y, z = _screen_axes(ax)
    # Not a mirror image: the camera frame is right-handed, and a faithful drawing keeps the
    # handedness of the screen images of x, y, z that a plain 3D axes (nothing reversed) gives.
    # Reversing y alone flips the sign of this determinant.
    plain = Figure().add_subplot(projection="3d")
    plain.set_xlim(0, 100), plain.set_ylim(-40, 60), plain.set_zlim(270, 370)
    assert np.sign(np.linalg.det([x, y, z])) == np.sign(np.linalg.det(_screen_axes(plain)))
    # As in the image: +x points right on the screen, +y (down in the camera frame) down.
    assert x[0] > abs(x[1]) and -y[1] > abs(y[0])
    # The viewer is above and to the left of the camera, on its side of the scene: +z, away
    # from the camera, rises on the screen (seen from above) and runs to the left (from the
    # left). From behind the scene it would sink.
    assert z[1] > 0 and z[0] < 0


def test_pck_figure_written(tmp_path):
    thresholds = np.linspace(0, 80, 81)
    curves = {"run a": np.clip(thresholds / 40, 0, 1), "run b": np.clip(thresholds / 60, 0, 1)}
    fig = viz.pck_figure(
        thresholds,
        curves,
        xlabel="error threshold (mm)",
        ylabel="3D PCK (%)",
        title="hand",
        colours=viz.run_colours(2),
        note="reference",
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "error threshold (mm)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run a", "run b"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), 100 * curves["run a"])  # percent
    _assert_png(viz.save_figure(fig, tmp_path / "sub" / "pck.png"))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["pck.png"]  # no temporary left


def test_run_colours_avoid_part_colours():
    """One colour per run, none the hand's or the object's; runs are told apart by colour as
    far as matplotlib's palette goes (10 colours, less C0 and C1, the parts': 8)."""
    colours = [to_hex(c) for c in viz.run_colours(12)]
    assert len(colours) == 12
    assert not set(colours) & {viz.HAND_COLOUR["pred"], viz.OBJECT_COLOUR["pred"]}
    assert len(set(colours[:8])) == 8  # the first 8 runs all differ


def _gallery_frame(predictions, dataset, k):
    frame = {"title": f"frame {k}", "image": dataset[k]["image"] if dataset else None}
    frame["size"] = (224, 224)
    for key in ("hand_2d", "obj_2d", "hand_3d", "obj_3d"):
        for who in ("pred", "gt"):
            frame[f"{who}_{key}"] = predictions[f"{who}_{key}"][k]
    return frame


def _segments(ax) -> list[np.ndarray]:
    """Every line of ``ax`` as its (2, D) end points, in drawing order."""
    if hasattr(ax, "get_zlim"):
        return [np.stack(line.get_data_3d(), axis=-1) for line in ax.get_lines()]
    return [line.get_xydata() for line in ax.get_lines()]


def test_gallery_figure_written_with_and_without_images(tmp_path):
    """Frame k fills column k: its title and image (or a blank canvas of its size) under its 2D
    poses in row 0, its 3D poses in row 1; prediction drawn first, then the ground truth."""
    predictions, dataset = make_predictions(3), make_dataset(3)
    frames = [_gallery_frame(predictions, dataset, k) for k in range(3)]
    with_images = viz.gallery_figure(frames)
    blank = viz.gallery_figure([_gallery_frame(predictions, None, k) for k in range(2)])
    assert len(with_images.axes) == 6 and len(blank.axes) == 4
    # Each pose is 20 bones then 12 edges: line 0 is the predicted wrist-to-thumb-base bone,
    # line 20 the predicted box's first edge, line 32 the true wrist-to-thumb-base bone.
    (i, j), n_lines = BOX_EDGES[0], len(HAND_BONES) + len(BOX_EDGES)
    for fig, n, images in ((with_images, 3, True), (blank, 2, False)):
        places = {
            (ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start): ax
            for ax in fig.axes
        }
        assert sorted(places) == [(r, c) for r in range(2) for c in range(n)]
        for k in range(n):
            flat, deep = places[0, k], places[1, k]
            assert flat.get_title() == f"frame {k}"
            if images:
                np.testing.assert_array_equal(flat.get_images()[0].get_array(), dataset[k]["image"])
            else:  # the 224 x 224 canvas the frame names: pixel centres 0 ... 223
                assert not flat.get_images()
                np.testing.assert_allclose(flat.get_xlim(), (-0.5, 223.5))
            for ax, dim in ((flat, "2d"), (deep, "3d")):
                lines = _segments(ax)
                assert len(lines) == 2 * n_lines
                np.testing.assert_allclose(lines[0], predictions[f"pred_hand_{dim}"][k][[0, 1]])
                np.testing.assert_allclose(
                    lines[len(HAND_BONES)], predictions[f"pred_obj_{dim}"][k][[i, j]]
                )
                np.testing.assert_allclose(lines[n_lines], predictions[f"gt_hand_{dim}"][k][[0, 1]])
    _assert_png(viz.save_figure(with_images, tmp_path / "gallery.png"), (900, 600))
    _assert_png(viz.save_figure(blank, tmp_path / "blank.png"), (600, 600))


def test_contacts_figure_written(tmp_path, monkeypatch):
    predictions = make_predictions(2)
    # The predicted row is the ground-truth hand moved 10 mm along the camera's x: part of its
    # joints leave the contact filter's reach, so both drawings, valid and rejected, show.
    hands = {"pred": predictions["gt_hand_3d"] + [10.0, 0.0, 0.0], "gt": predictions["gt_hand_3d"]}
    rows = [(who, contact_panels(hands[who], predictions["gt_obj_3d"], "ab")) for who in hands]
    # The hand-built ground truth has 10 valid contacts in every frame (see test_plausibility).
    assert rows[1][1][0]["title"] == "a: 10 valid contacts"
    arrows = []  # the arguments of every quiver call: X, Y, Z, U, V, W

    def quiver(ax, *args, **kwargs):
        arrows.append(np.stack(args[:6], axis=-1))  # (K, 6)
        return original_quiver(ax, *args, **kwargs)

    original_quiver = Axes3D.quiver
    monkeypatch.setattr(Axes3D, "quiver", quiver)
    fig = viz.contacts_figure(rows)
    assert len(fig.axes) == 4
    panels = [panel for _, row in rows for panel in row]
    for ax, panel, drawn in zip(fig.axes, panels, arrows, strict=True):
        valid = panel["valid"]
        # 10 candidates (TOP_K), every one drawn: the valid ones gold, the others grey.
        (grey,) = [c for c in ax.collections if c.get_label() == "rejected candidate"]
        assert len(grey.get_offsets()) == 10 - valid.sum()
        # Each valid contact's arrow is its direction v = P - R, drawn from its foot R on the
        # axis, P - v, so that it ends at the contact P.
        chosen, directions = panel["contacts"][valid], panel["directions"][valid]
        np.testing.assert_allclose(drawn[:, :3], chosen - directions)
        np.testing.assert_allclose(drawn[:, 3:], directions)
    assert 0 < panels[0]["valid"].sum() < 10  # the moved hand: both kinds are checked above
    # The ground truth's first panel shows its 10 valid contacts as one gold scatter.
    (gold,) = [c for c in fig.axes[2].collections if c.get_label() == "valid contact"]
    assert len(gold.get_offsets()) == 10
    assert to_hex(gold.get_facecolor()[0]) == viz.CONTACT_COLOUR
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"valid contact", "central axis", "hand prediction", "hand ground truth"} <= set(legend)
    _assert_png(viz.save_figure(fig, tmp_path / "contacts.png"), (600, 600))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_figure_that_cannot_be_written_keeps_the_old_file(tmp_path):
    path = tmp_path / "pck.png"
    path.write_bytes(b"old")
    temporary_path(path).symlink_to("/dev/full")  # writing the PNG fails with ENOSPC
    fig = viz.pck_figure(
        np.linspace(0, 80, 81), {"run": np.linspace(0, 1, 81)}, xlabel="", ylabel="", title=""
    )
    with pytest.raises(OSError, match=r"pck\.png") as info:
        viz.save_figure(fig, path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["pck.png"]


def test_pck_curves_are_drawn_against_the_thresholds_given():
    """A PCK curve's x values and the axis's span are the thresholds themselves."""
    # Thresholds 10, 20, ..., 50 mm: the curve's x values are those, not their positions
    # 0 ... 4, and the axis spans the first to the last threshold, 10 to 50 (not from 0).
    thresholds = np.linspace(10.0, 50.0, 5)
    fig = viz.pck_figure(
        thresholds, {"run": np.linspace(0.2, 1.0, 5)}, xlabel="mm", ylabel="%", title=""
    )
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [10, 20, 30, 40, 50])
    np.testing.assert_allclose(ax.get_xlim(), (10.0, 50.0))


def test_set_equal_3d_leaves_out_points_that_are_not_finite():
    """NaN and inf points do not move the 3D limits; with none finite, a 2 mm cube."""
    # The two finite points of the cube test give the same cube when a missing annotation (NaN)
    # and a diverged prediction (inf) are drawn beside them; with no finite point at all, the
    # cube is 2 mm about the origin: half = 1 on every axis, y and z reversed.
    ax = Figure().add_subplot(projection="3d")
    points = [[0.0, 0.0, 300.0], [np.nan, 1.0, 1.0], [100.0, 20.0, 340.0], [np.inf, 0.0, 0.0]]
    viz.set_equal_3d(ax, np.array(points))
    np.testing.assert_allclose(ax.get_xlim(), (0, 100))
    np.testing.assert_allclose(ax.get_ylim(), (60, -40))
    np.testing.assert_allclose(ax.get_zlim(), (370, 270))
    empty = Figure().add_subplot(projection="3d")
    viz.set_equal_3d(empty, np.full((29, 3), np.nan))
    np.testing.assert_allclose(empty.get_xlim(), (-1, 1))
    np.testing.assert_allclose(empty.get_ylim(), (1, -1))
    np.testing.assert_allclose(empty.get_zlim(), (1, -1))


def test_gallery_3d_panel_holds_the_ground_truth_far_from_the_prediction():
    """The gallery's 3D limits hold the ground truth as well as the prediction."""
    # Ground truth 500 mm to the right of the prediction (a bad prediction, the worst frame's
    # case): the 3D limits must hold both poses, not the prediction alone.
    predictions = make_predictions(1)
    predictions["gt_hand_3d"] = predictions["pred_hand_3d"] + [500.0, 0.0, 0.0]
    predictions["gt_obj_3d"] = predictions["pred_obj_3d"] + [500.0, 0.0, 0.0]
    fig = viz.gallery_figure([_gallery_frame(predictions, None, 0)])
    ax3d = fig.axes[1]
    for key in ("pred_hand_3d", "gt_hand_3d", "pred_obj_3d", "gt_obj_3d"):
        x = predictions[key][0][:, 0]
        assert ax3d.get_xlim()[0] <= x.min() and x.max() <= ax3d.get_xlim()[1], key


def _plain_panel(title: str) -> dict:
    """A contact panel of arbitrary finite points: 2 of its 3 candidates valid."""
    rng = np.random.default_rng(0)
    contacts = rng.normal(size=(3, 3))
    return {
        "title": title,
        "hand": rng.normal(size=(21, 3)),
        "obj": rng.normal(size=(8, 3)),
        "contacts": contacts,
        "directions": 0.1 * contacts,
        "valid": np.array([True, True, False]),
        "axis": (np.zeros(3), np.ones(3)),
    }


def test_contacts_figure_puts_each_source_on_its_row_and_each_frame_in_its_column():
    """Contact panel (source r, frame c) is drawn in grid row r, column c."""
    # 2 sources x 3 frames: panel (r, c) sits in grid row r, column c (prediction row on top),
    # whatever the number of rows and columns.
    rows = [(who, [_plain_panel(f"{who} {c}") for c in range(3)]) for who in ("pred", "gt")]
    fig = viz.contacts_figure(rows)
    places = {
        ax.get_title(): (ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start)
        for ax in fig.axes
    }
    assert places == {
        f"{who} {c}": (r, c) for r, who in enumerate(("pred", "gt")) for c in range(3)
    }


@pytest.mark.parametrize(("u", "v"), [(50.7, 40.3), (50.5, 40.5), (50.49, 39.51)])
def test_an_overlay_mark_is_centred_on_the_pixel_nearest_its_point(u, v):
    """Pillow cuts float coordinates down to whole pixels: a contact at (50.7, 40.3) was drawn
    about (50, 40), 0.7 px left of it, and every mark on average half a pixel up and left. The
    disc is now centred on the nearest pixel centre, (51, 40) here, at most half a pixel away:
    the centroid of its gold pixels (a disc symmetric about its centre) is that pixel."""
    photo = Image.new("RGB", (100, 80))
    far = np.full((21, 2), -1000.0), np.full((8, 2), -1000.0)  # hand and box off the photo
    overlay = np.asarray(viz.draw_overlay(photo, *far, np.array([[u, v]])))
    rows, cols = np.nonzero((overlay == _rgb(viz.CONTACT_COLOUR)).all(axis=-1))
    assert (cols.mean(), rows.mean()) == pytest.approx((np.floor(u + 0.5), np.floor(v + 0.5)))
