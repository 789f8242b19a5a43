"""Object meshes reduced to their axis-aligned box (hopose.data.mesh): the files trimesh reads
(OBJ, PLY, multi-part scenes), a file rewritten in place, and bad files named."""

from __future__ import annotations

import re

import numpy as np
import pytest
import trimesh

from hopose.data.mesh import mesh_bbox_corners
from hopose.data.transforms import DataFileError
from hopose.skeleton import CORNER_SIGNS


def _corners(low, high) -> np.ndarray:
    """A naive reference: corner c takes low where its sign is -1, high where +1."""
    return np.array([[high[a] if s > 0 else low[a] for a, s in enumerate(signs)]
                     for signs in CORNER_SIGNS])  # fmt: skip


def test_obj_vertex_colours_and_negative_face_indices_leave_the_vertices_as_written(tmp_path):
    """'v x y z r g b' is a vertex at (x, y, z) (its colour is no coordinate); faces by
    negative (relative) indices, texture and normal lines change nothing. Box [0, 2] x [0, 3]
    x [0, 4], times scale 10."""
    path = tmp_path / "model.obj"
    path.write_text(
        "v 0 0 0 1 0 0\nv 2 0 0 0 1 0\nv 0 3 0 0 0 1\nv 0 0 4 1 1 1\n"
        "vt 0 0\nvn 0 0 1\nf -4 -3 -2\nf -3 -2 -1\n"
    )
    corners = mesh_bbox_corners(path, scale=10)
    np.testing.assert_array_equal(corners, _corners([0, 0, 0], [20, 30, 40]))
    assert corners[6].tolist() == [20.0, 30.0, 40.0]  # corner 6 is (+, +, +)


def test_a_scenes_parts_are_boxed_together_each_posed_by_its_transform(tmp_path):
    """A GLB of two boxes is a trimesh Scene: a 2-cube moved by +10 in x spans x in [9, 11], a
    1 x 4 x 6 box at the origin [-0.5, 0.5] x [-2, 2] x [-3, 3]; their box together is
    [-0.5, 11] x [-2, 2] x [-3, 3]."""
    scene = trimesh.Scene()
    moved = trimesh.transformations.translation_matrix([10, 0, 0])
    scene.add_geometry(trimesh.creation.box(extents=(2, 2, 2)), node_name="a", transform=moved)
    scene.add_geometry(trimesh.creation.box(extents=(1, 4, 6)), node_name="b")
    scene.export(tmp_path / "parts.glb")
    np.testing.assert_allclose(
        mesh_bbox_corners(tmp_path / "parts.glb"), _corners([-0.5, -2, -3], [11, 2, 3])
    )


def test_a_mesh_rewritten_in_place_is_read_again(tmp_path):
    """Bounds are cached per file version: a model replaced by a larger one under the same name
    gives the new box, not the one read before."""
    path = tmp_path / "model.obj"
    path.write_text("v 0 0 0\nv 1 1 1\n")
    np.testing.assert_array_equal(mesh_bbox_corners(path), _corners([0, 0, 0], [1, 1, 1]))
    path.write_text("v -2 0 0\nv 10 20 30\nv 0 0 5\n")
    np.testing.assert_array_equal(mesh_bbox_corners(path), _corners([-2, 0, 0], [10, 20, 30]))


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_mesh_with_a_non_finite_vertex_is_refused_naming_it(tmp_path, value):
    path = tmp_path / "model.ply"
    header = ["ply", "format ascii 1.0", "element vertex 3"]
    header += [f"property float {axis}" for axis in "xyz"] + ["end_header"]
    path.write_text("\n".join([*header, "0 0 0", f"{value} 1 1", "1 2 3"]) + "\n")
    with pytest.raises(
        DataFileError, match=rf"^{re.escape(str(path))}: mesh has no finite vertices$"
    ):
        mesh_bbox_corners(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("short.obj", "v 0 0 0\nv 1 0\nf 1 2 3\n"),  # a vertex of 2 numbers (IndexError)
        ("range.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"),  # face past the vertices
        ("model.xyzw", "0 0 0\n"),  # a format trimesh lacks (NotImplementedError)
        ("model.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
                      "end_header\nabc\n"),  # a word for a number
    ],
)  # fmt: skip
def test_a_file_trimesh_cannot_read_is_a_data_file_error_naming_it(tmp_path, name, content):
    """trimesh raises many types (ValueError, IndexError, NotImplementedError): each is the
    loaders' DataFileError naming the file, which on_error="skip" and the CLI report."""
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFileError, match=rf"^{re.escape(str(path))}: cannot read mesh \("):
        mesh_bbox_corners(path)


def test_a_missing_mesh_is_named(tmp_path):
    path = tmp_path / "absent.obj"
    with pytest.raises(DataFileError, match=rf"^{re.escape(str(path))}: object mesh not found$"):
        mesh_bbox_corners(path)
