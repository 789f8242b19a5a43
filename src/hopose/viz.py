"""Pure drawing of poses, curves and contacts with matplotlib, headless, and of a prediction
on its photo with PIL (:func:`draw_overlay`, ``hopose predict``'s overlay: a matplotlib figure
took 0.6 s a photo, docs/robustness.md).

Figures are built with matplotlib's object-oriented API (``Figure`` and its Agg canvas, never
``pyplot``), so nothing here touches a display or matplotlib's global backend. One colour per
part, everywhere: the hand is blue, the object orange, contact points gold (the paper's yellow,
Fig. 11). Predictions are solid lines with round markers, ground truth dashed lines with
crosses, in a darker shade of the same colour (the paper draws ground truth in black, Fig. 10,
which loses which part is which).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import mpl_toolkits.mplot3d  # noqa: F401  (registers the "3d" projection)
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from hopose.files import write_atomic
from hopose.skeleton import BOX_EDGES, HAND_BONES

Source = Literal["pred", "gt"]

HAND_COLOUR = {"pred": "#1f77b4", "gt": "#0b3b66"}
OBJECT_COLOUR = {"pred": "#ff7f0e", "gt": "#8c4200"}
CONTACT_COLOUR = "#ffd700"
AXIS_COLOUR = "#555555"
LINE_STYLE: dict[Source, dict[str, Any]] = {
    "pred": {"linestyle": "-", "linewidth": 2.0, "marker": "o", "markersize": 3},
    "gt": {"linestyle": "--", "linewidth": 1.5, "marker": "x", "markersize": 4},
}
SOURCE_NAME: dict[Source, str] = {"pred": "prediction", "gt": "ground truth"}
DPI = 100
LINE_WIDTH_FRACTION = 1 / 400
"""Overlay line width as a fraction of the overlay's longest side (about 5 px at 1920)."""
MIN_LINE_WIDTH = 2


def _segments(points: NDArray, edges: Sequence[tuple[int, int]]) -> NDArray:
    """(E, 2, D): the two ends of each of the E ``edges`` between ``points`` (P, D)."""
    return np.asarray(points)[np.asarray(edges)]


def _draw_segments(
    ax: Axes,
    points: NDArray,
    edges: Sequence[tuple[int, int]],
    colour: str,
    source: Source,
    label: str,
) -> None:
    """One line per edge between ``points`` (P, 2 or 3); only the first carries the label."""
    for k, segment in enumerate(_segments(points, edges)):
        # segment.T (D, 2): x pair, y pair (, z pair).
        ax.plot(*segment.T, color=colour, label=label if k == 0 else None, **LINE_STYLE[source])


def draw_pose(ax: Axes, hand: NDArray, obj: NDArray, source: Source) -> None:
    """Hand skeleton and object box, in 2D (pixels) or 3D (mm) depending on the points.

    Args:
        ax: a 2D axes for (21, 2) / (8, 2) points, a 3D axes for (21, 3) / (8, 3).
        hand: (21, D) joints.
        obj: (8, D) box corners.
        source: ``"pred"`` or ``"gt"``, which picks shade and line style.
    """
    name = SOURCE_NAME[source]
    _draw_segments(ax, np.asarray(hand), HAND_BONES, HAND_COLOUR[source], source, f"hand {name}")
    _draw_segments(ax, np.asarray(obj), BOX_EDGES, OBJECT_COLOUR[source], source, f"object {name}")


def draw_overlay(
    image: Image.Image, hand_2d: NDArray, obj_2d: NDArray, contacts_2d: NDArray
) -> Image.Image:
    """The predicted hand (21, 2), box (8, 2) and contacts (M, 2), in ``image``'s pixels, drawn
    on a copy in their colours, the hand over the box: lines :data:`LINE_WIDTH_FRACTION` of
    its longest side wide, joints and corners discs of that radius, contacts of twice it."""
    overlay = image.copy()
    draw = ImageDraw.Draw(overlay)
    width = max(MIN_LINE_WIDTH, round(max(overlay.size) * LINE_WIDTH_FRACTION))
    radius = width
    # Pillow cuts a float coordinate down to its whole pixel, which drew every mark up to a
    # pixel up and left of its point; the nearest pixel centre (an integer, docs/conventions.md
    # §1) is at most half a pixel away.
    hand_2d, obj_2d, contacts_2d = (
        np.floor(np.asarray(points, dtype=np.float64) + 0.5)
        for points in (hand_2d, obj_2d, contacts_2d)
    )
    for points, edges, colour in (
        (obj_2d, BOX_EDGES, OBJECT_COLOUR["pred"]),
        (hand_2d, HAND_BONES, HAND_COLOUR["pred"]),
    ):
        for segment in _segments(points, edges):
            draw.line(segment.ravel().tolist(), fill=colour, width=width)
        for x, y in points:
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    for x, y in contacts_2d:
        r = 2 * radius
        draw.ellipse([x - r, y - r, x + r, y + r], fill=CONTACT_COLOUR, outline="black")
    return overlay


def show_image(ax: Axes, image: NDArray | None, size: tuple[int, int]) -> None:
    """The network's image under 2D overlays (a white canvas if None), pixel axes, y down.

    Args:
        ax: a 2D axes.
        image: (H, W, 3) uint8, or None.
        size: (width, height) of the canvas when there is no image.
    """
    if image is not None:
        image = np.asarray(image)
        ax.imshow(image)
        size = (image.shape[1], image.shape[0])
    # Pixel centres lie at integers (docs/conventions.md §1), so a W-pixel row spans -0.5 to
    # W - 0.5, as imshow draws it.
    ax.set_xlim(-0.5, size[0] - 0.5)
    ax.set_ylim(size[1] - 0.5, -0.5)
    ax.set_xlabel("u (px)")
    ax.set_ylabel("v (px)")


def set_equal_3d(ax: Axes, points: NDArray) -> None:
    """Equal-scale 3D limits around (P, 3) points, camera frame with y down and z forward,
    seen from above and to the left of the camera, x to the right and y down on the screen.

    Points that are not finite (a missing annotation, a diverged prediction) are left out; with
    none finite the limits are a 2 mm cube about the origin."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        points = np.zeros((1, 3))
    centre = (points.max(axis=0) + points.min(axis=0)) / 2
    half = max(float((points.max(axis=0) - points.min(axis=0)).max()) / 2, 1.0)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    # y points down in the camera frame, so its axis is reversed to point down on the screen.
    # Reversing one axis alone would draw the mirror image of the scene (a right hand as a left
    # one); reversing z as well makes the two a rotation by 180 degrees about x.
    ax.set_ylim(centre[1] + half, centre[1] - half)
    ax.set_zlim(centre[2] + half, centre[2] - half)
    ax.set_box_aspect((1, 1, 1), zoom=0.85)  # room for the axis labels
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_zlabel("z (mm)")
    # From above and to the left of the camera, on its side of the scene, so that depth errors,
    # which the image hides, show as offsets. With y and z reversed, azimuth 0 looks along +z
    # from the camera's side, and a negative azimuth moves the viewer towards -x (the left).
    ax.view_init(elev=20, azim=-35, vertical_axis="y")


# matplotlib's 10 colours less C0 and C1, the hand's and the object's.
_RUN_COLOURS = 8
_RUN_LINE_STYLES = ("-", "--", ":", "-.")


def run_colours(n: int) -> list[str]:
    """``n`` colours for runs compared on one plot, avoiding the hand's blue and object's orange;
    they repeat after 8 runs, which :func:`run_line_styles` then tells apart."""
    return [f"C{2 + k % _RUN_COLOURS}" for k in range(n)]


def run_line_styles(n: int) -> list[str]:
    """``n`` line styles beside :func:`run_colours`: solid for the first 8 runs, then dashed,
    dotted and dash-dotted, so that no two of 32 runs are drawn alike."""
    return [_RUN_LINE_STYLES[k // _RUN_COLOURS % len(_RUN_LINE_STYLES)] for k in range(n)]


def pck_figure(
    thresholds: NDArray,
    curves: Mapping[str, NDArray],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    colours: Sequence[str] | None = None,
    line_styles: Sequence[str] | None = None,
    note: str | None = None,
) -> Figure:
    """PCK curves (paper Fig. 6 and 7) on one axes, fraction in percent.

    Args:
        thresholds: (T,) thresholds, the x axis.
        curves: label -> (T,) fractions in [0, 1].
        xlabel, ylabel, title: axis labels (with units) and title.
        colours: one colour per curve, default matplotlib's cycle.
        line_styles: one line style per curve, default solid.
        note: text drawn in the lower right corner, e.g. published reference numbers.

    Returns:
        The figure.
    """
    fig = Figure(figsize=(6, 4.5), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for k, (label, curve) in enumerate(curves.items()):
        colour = colours[k] if colours is not None else f"C{k}"
        style = line_styles[k] if line_styles is not None else "-"
        ax.plot(
            thresholds, 100 * np.asarray(curve), color=colour, linestyle=style, linewidth=2,
            label=label,
        )  # fmt: skip
    ax.set_xlim(float(thresholds[0]), float(thresholds[-1]))
    ax.set_ylim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    if note:
        ax.text(0.98, 0.03, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
    return fig


def gallery_figure(frames: Sequence[Mapping[str, Any]]) -> Figure:
    """Predictions against ground truth: one column per frame, image overlay above, 3D below.

    Args:
        frames: per column a mapping with ``title`` (str), ``image`` ((H, W, 3) uint8 or None),
            ``size`` ((width, height) of the canvas without an image), ``pred_hand_2d``,
            ``gt_hand_2d`` (21, 2), ``pred_obj_2d``, ``gt_obj_2d`` (8, 2) in pixels, and
            ``pred_hand_3d``, ``gt_hand_3d`` (21, 3), ``pred_obj_3d``, ``gt_obj_3d`` (8, 3) in mm.

    Returns:
        The figure, one shared legend at the bottom.
    """
    fig = Figure(figsize=(4.2 * len(frames), 8.8), dpi=DPI, layout="constrained")
    for k, frame in enumerate(frames):
        ax = fig.add_subplot(2, len(frames), k + 1)
        show_image(ax, frame["image"], frame["size"])
        for source in ("pred", "gt"):  # dashed ground truth on top, the prediction shows through
            draw_pose(ax, frame[f"{source}_hand_2d"], frame[f"{source}_obj_2d"], source)
        ax.set_title(frame["title"], fontsize=10)
        ax3d = fig.add_subplot(2, len(frames), len(frames) + k + 1, projection="3d")
        for source in ("pred", "gt"):
            draw_pose(ax3d, frame[f"{source}_hand_3d"], frame[f"{source}_obj_3d"], source)
        keypoints = [frame[f"{s}_{p}_3d"] for s in ("pred", "gt") for p in ("hand", "obj")]
        set_equal_3d(ax3d, np.concatenate(keypoints))
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4)
    return fig


def draw_contacts(
    ax: Axes,
    hand: NDArray,
    obj: NDArray,
    contacts: NDArray,
    directions: NDArray,
    valid: NDArray,
    axis: tuple[NDArray, NDArray],
    source: Source,
) -> None:
    """Contact analysis of one pose on a 3D axes (paper Fig. 5 and 11).

    Draws the pose, the box's central axis, valid contacts in gold with their direction vectors
    from the axis, and the rejected candidates as small grey dots.

    Args:
        hand: (21, 3) joints, mm.
        obj: (8, 3) box corners.
        contacts: (K, 3) candidate contact points.
        directions: (K, 3) their direction vectors v = P - R from the axis.
        valid: (K,) bool.
        axis: the (3,) centres of the box's upper and lower faces.
        source: whose pose it is, for the line style.
    """
    draw_pose(ax, hand, obj, source)
    ends = np.stack(axis)  # (2, 3)
    ax.plot(*ends.T, color=AXIS_COLOUR, linestyle=":", linewidth=1.5, label="central axis")
    valid = np.asarray(valid, bool)
    rejected = contacts[~valid]
    ax.scatter(*rejected.T, color="grey", s=6, label="rejected candidate")
    chosen, arrows = contacts[valid], directions[valid]
    ax.scatter(*chosen.T, color=CONTACT_COLOUR, edgecolors="black", s=40, label="valid contact")
    if len(chosen):
        feet = chosen - arrows  # R, the contacts' projections on the axis
        ax.quiver(*feet.T, *arrows.T, color=CONTACT_COLOUR, linewidth=1.5, arrow_length_ratio=0.15)
    set_equal_3d(ax, np.concatenate([hand, obj]))


def contacts_figure(rows: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> Figure:
    """A grid of contact analyses: one row per source, one column per frame.

    Args:
        rows: ``(source, panels)`` pairs, source ``"pred"`` or ``"gt"``; each panel a mapping
            with ``title`` and the arguments of :func:`draw_contacts` (``hand``, ``obj``,
            ``contacts``, ``directions``, ``valid``, ``axis``).

    Returns:
        The figure, one shared legend at the bottom.
    """
    n_cols = max(len(panels) for _, panels in rows)
    fig = Figure(figsize=(4.2 * n_cols, 4.4 * len(rows) + 0.6), dpi=DPI, layout="constrained")
    legend: dict[str, Any] = {}
    for r, (source, panels) in enumerate(rows):
        for c, panel in enumerate(panels):
            ax = fig.add_subplot(len(rows), n_cols, r * n_cols + c + 1, projection="3d")
            arguments = {key: np.asarray(value) for key, value in panel.items() if key != "title"}
            arguments["axis"] = tuple(panel["axis"])
            draw_contacts(ax, source=source, **arguments)
            ax.set_title(panel["title"], fontsize=10)
            handles, labels = ax.get_legend_handles_labels()
            legend.update(zip(labels, handles, strict=True))
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncol=4)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (Agg) through :func:`hopose.files.write_atomic`, creating the
    folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
