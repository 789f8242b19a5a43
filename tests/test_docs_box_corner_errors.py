"""docs/box_corner_errors.py's decomposition of 2D errors, on boxes whose answers are known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hopose.skeleton import CORNER_SIGNS

_PATH = Path(__file__).resolve().parents[1] / "docs" / "box_corner_errors.py"
_SPEC = importlib.util.spec_from_file_location("box_corner_errors", _PATH)
errors = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(errors)

SQUARE = np.array([[[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]]])  # (1, 4, 2), centre (2, 2)


def test_a_shifted_shape_is_all_placement():
    parts = errors.placement_and_shape(SQUARE + np.array([3.0, 4.0]), SQUARE)
    assert parts["mean"] == pytest.approx(5.0)  # |(3, 4)| at every corner
    assert parts["centroid"] == pytest.approx(5.0)
    assert parts["shape"] == pytest.approx(0.0, abs=1e-12)


def test_a_turned_and_scaled_shape_is_all_similarity():
    # Half the size and a quarter turn about the centre: each corner 2√2 from the centre moves
    # to one √2 from it, 90° round: |√2·e^{i(θ+90°)} - 2√2·e^{iθ}| = √2·|i - 2| = √10.
    centred = SQUARE - 2.0
    turned = 0.5 * centred @ np.array([[0.0, 1.0], [-1.0, 0.0]]) + 2.0
    parts = errors.placement_and_shape(turned, SQUARE)
    assert parts["centroid"] == pytest.approx(0.0, abs=1e-12)
    assert parts["shape"] == pytest.approx(np.sqrt(10.0))
    assert parts["shape after similarity"] == pytest.approx(0.0, abs=1e-12)
    assert parts["similarity's scale"] == pytest.approx(2.0)


def _cube(centre) -> np.ndarray:
    return (np.array(centre, dtype=float) + 10.0 * np.array(CORNER_SIGNS))[None]  # (1, 8, 3)


def test_the_box_hides_the_corners_of_its_faces_turned_away():
    signs = np.array(CORNER_SIGNS)
    # Straight ahead only the near face (z = -1) is turned to the camera: its 4 corners are seen.
    np.testing.assert_array_equal(errors.self_hidden(_cube([0, 0, 500]))[0], signs[:, 2] == 1)
    # Off to the right the face towards the axis (x = -1) shows too: 2 corners stay hidden.
    hidden = (signs[:, 0] == 1) & (signs[:, 2] == 1)
    np.testing.assert_array_equal(errors.self_hidden(_cube([100, 0, 500]))[0], hidden)


@pytest.mark.parametrize("turn", range(4))
def test_a_box_turned_half_round_one_of_its_axes_is_found(turn):
    # A 60 × 40 × 20 mm box 500 mm ahead, and the same box turned half round its own x, y or z
    # axis (diag(HALF_TURNS[turn])): the same space, its corners labelled otherwise. Seen by a
    # pinhole of focal length 500 px, the turned box's corners are the prediction.
    corners = np.array(CORNER_SIGNS) * np.array([30.0, 20.0, 10.0])
    centre = np.array([15.0, -10.0, 500.0])
    turned = corners @ np.diag(np.array(errors.HALF_TURNS[turn], dtype=float))

    def seen(points: np.ndarray) -> np.ndarray:
        camera = points + centre
        return (500.0 * camera[:, :2] / camera[:, 2:])[None]  # (1, 8, 2)

    best, found = errors.relabelled_error(seen(turned), seen(corners))
    assert best[0] == pytest.approx(0.0, abs=1e-9)
    assert found[0] == turn
    if turn:  # the labels themselves are off: the corners' own error is not 0
        assert np.linalg.norm(seen(turned) - seen(corners), axis=-1).mean() > 1.0
