"""Object meshes reduced to their axis-aligned box (hopose.data.mesh): the files trimesh reads
(OBJ, PLY, multi-part scenes), a file rewritten in place, bad files named, and a Ctrl-C during
trimesh's import."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import trimesh
from dataset_fixtures import box_vertices, write_binary_ply, write_ply

from hopose.data.mesh import _sigint_deferred, mesh_bbox_corners
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


def test_every_mesh_read_stays_cached_past_a_few_hundred(tmp_path, monkeypatch):
    """ObMan's frames draw on thousands of ShapeNet models in turn: 300 distinct meshes read in
    order, twice, are each parsed once (a cache of the last 256 would parse all 600 reads) and
    give each its own box, mesh i spanning [0, i + 1] in x."""
    paths = []
    for i in range(300):
        paths.append(tmp_path / f"model{i}.obj")
        paths[-1].write_text(f"v 0 0 0\nv {i + 1} 1 1\n")
    parses = []
    load = trimesh.load

    def counted_load(path, **kwargs):
        parses.append(path)
        return load(path, **kwargs)

    monkeypatch.setattr(trimesh, "load", counted_load)
    for _ in range(2):
        for i, path in enumerate(paths):
            np.testing.assert_array_equal(
                mesh_bbox_corners(path), _corners([0, 0, 0], [i + 1, 1, 1])
            )
    assert sorted(parses) == sorted(paths)


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


# write_ply's lines: 9 of header, then the 9 vertices of box_vertices, then its 3 faces.
PLY_HEADER_LINES = 9


@pytest.mark.parametrize(
    ("kept", "message"),
    [
        (PLY_HEADER_LINES + 3, "3 of the 9 'vertex' elements"),  # the box read was 3 corners'
        (PLY_HEADER_LINES + 9 + 1, "1 of the 3 'face' elements"),  # read as one triangle
    ],
    ids=["in the vertices", "in the faces"],
)
def test_an_ascii_ply_cut_short_is_refused_naming_what_its_header_declares(tmp_path, kept, message):
    """An ASCII PLY cut after a whole line (an interrupted copy): trimesh read the lines there
    were without a word, and the box of the first 3 of box_vertices' corners, (0, 0, 0),
    (0, 0, 1), (0, 1, 0) of the unit cube, is [0, 0] x [0, 1] x [0, 1], not [0, 1]^3."""
    path = tmp_path / "model.ply"
    write_ply(path, box_vertices(np.zeros(3), np.ones(3)))
    np.testing.assert_array_equal(mesh_bbox_corners(path), _corners([0, 0, 0], [1, 1, 1]))
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:kept]))
    expected = f"{path}: cut short, {message} its header declares"
    with pytest.raises(DataFileError, match=f"^{re.escape(expected)}$"):
        mesh_bbox_corners(path)


def test_a_whole_ascii_ply_with_blank_lines_after_its_elements_is_read(tmp_path):
    """Trailing blank lines are no elements, and a vertex-only PLY (no face element) counts
    its vertices alone: both read as whole."""
    path = tmp_path / "model.ply"
    write_ply(path, box_vertices(np.zeros(3), np.ones(3)))
    path.write_text(path.read_text() + "\n\n")
    np.testing.assert_array_equal(mesh_bbox_corners(path), _corners([0, 0, 0], [1, 1, 1]))
    header = ["ply", "format ascii 1.0", "element vertex 2"]
    header += [f"property float {axis}" for axis in "xyz"] + ["end_header"]
    path.write_text("\n".join([*header, "0 0 0", "1 2 3"]) + "\n")
    np.testing.assert_array_equal(mesh_bbox_corners(path), _corners([0, 0, 0], [1, 2, 3]))


def test_blank_lines_do_not_make_up_for_missing_elements(tmp_path):
    """An ASCII PLY declaring 8 vertices and 2 faces, cut after the 8 vertex lines and followed
    by 2 lines of spaces: 8 elements of the 10 declared, refused as cut short. trimesh reads
    it as the 8 vertices and no faces without a word, and counted as lines, 8 + 2 = 10 would
    pass for whole. (With blank lines among the vertices' rows trimesh refuses the file itself:
    it reads an element's rows by position, blank ones included.)"""
    path = tmp_path / "model.ply"
    header = ["ply", "format ascii 1.0", "element vertex 8"]
    header += [f"property float {axis}" for axis in "xyz"]
    header += ["element face 2", "property list uchar int vertex_indices", "end_header"]
    vertices = [f"{x} {y} {z}" for x in (0, 1) for y in (0, 1) for z in (0, 1)]
    path.write_text("\n".join([*header, *vertices, " ", " "]) + "\n")
    expected = f"{path}: cut short, 0 of the 2 'face' elements its header declares"
    with pytest.raises(DataFileError, match=f"^{re.escape(expected)}$"):
        mesh_bbox_corners(path)


@pytest.mark.parametrize("cut", [4 * 12, 9 * 12 + 13])  # after 4 vertices; in the 1st face
def test_a_binary_ply_cut_short_is_refused_naming_it(tmp_path, cut):
    """A binary PLY's elements are 12 bytes a vertex (3 float32) and 13 a face (a uint8 count,
    3 int32): a file shorter than its header says is refused (by trimesh's own length check,
    which the reader relies on) as a DataFileError naming the file."""
    path = tmp_path / "model.ply"
    write_binary_ply(path, box_vertices(np.zeros(3), np.ones(3)))
    np.testing.assert_array_equal(mesh_bbox_corners(path), _corners([0, 0, 0], [1, 1, 1]))
    data = path.read_bytes()
    body = data.index(b"end_header\n") + len(b"end_header\n")
    assert len(data) - body == 9 * 12 + 3 * 13
    path.write_bytes(data[: body + cut])
    with pytest.raises(DataFileError, match=rf"^{re.escape(str(path))}: cannot read mesh \("):
        mesh_bbox_corners(path)


# Ctrl-C (SIGINT) as trimesh's import reaches networkx, which it wraps in ``except BaseException``;
# the finder is in place before hopose.data.mesh is imported, as a user's early Ctrl-C may land.
INTERRUPTED_TRIMESH_IMPORT = """
import signal, sys

# Python's own handler, whatever the test runner left: a process started with SIGINT ignored
# (a background job of a shell without job control) keeps it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)

class CtrlC:
    fired = False

    def find_spec(self, name, path, target=None):
        if name == "networkx" and "trimesh" in sys.modules and not CtrlC.fired:
            CtrlC.fired = True
            signal.raise_signal(signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
from hopose.data.mesh import mesh_bbox_corners

try:
    mesh_bbox_corners(sys.argv[1])
    print("read")
except KeyboardInterrupt:
    print("interrupted")
import trimesh

print(CtrlC.fired, mesh_bbox_corners(sys.argv[1])[6].tolist())
print(trimesh.creation.box().vertex_adjacency_graph.number_of_nodes())
"""


def test_a_ctrl_c_during_trimeshs_import_interrupts_after_it(tmp_path):
    """The Ctrl-C is a KeyboardInterrupt from the first mesh read, not swallowed by trimesh;
    its import finished whole, so the next read gives the box (corner 6, (+, +, +), is (1, 2, 3))
    and networkx is there for trimesh (a box's 8 vertices in its graph), not the interrupt
    kept in its place."""
    path = tmp_path / "model.obj"
    path.write_text("v 0 0 0\nv 1 2 3\n")
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_TRIMESH_IMPORT, str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split("\n") == ["interrupted", "True [1.0, 2.0, 3.0]", "8", ""]


def test_a_ctrl_c_held_back_is_raised_after_the_block_past_a_catch_all():
    """Inside the block the signal is only recorded: code that catches everything (as trimesh's
    imports) neither sees it nor stops; Python's handler, put back, raises it after the block."""
    seen, ran_on = [], False
    # Python's own handler, whatever the test runner left (SIGINT ignored in a background job).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), _sigint_deferred():
            try:
                signal.raise_signal(signal.SIGINT)
            except BaseException as error:
                seen.append(error)
            ran_on = True
        assert seen == [] and ran_on
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_held_back_goes_to_the_handler_in_place_once():
    """A handler of the program's own (not Python's) gets the signal after the block; two
    Ctrl-Cs inside it are one."""
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with _sigint_deferred():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
            assert calls == []
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_the_block_runs_as_it_is():
    """A dataset's read-ahead thread reads meshes too: there no handler can be set (Python
    refuses, ValueError) and no signal arrives, so the block runs unguarded."""
    errors = []

    def read() -> None:
        try:
            with _sigint_deferred():
                pass
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert errors == []
