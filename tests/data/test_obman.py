"""ObMan on a fixture tree: meta pickles with the real keys, a ShapeNet OBJ, 256x256 JPEGs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from dataset_fixtures import OBMAN_AFFINE, OBMAN_OBJ_PATH, obman_joints, write_image, write_obman

from hopose.data import ObMan
from hopose.data.obman import UnmappedMesh
from hopose.data.transforms import DataFileError
from hopose.geometry import project_points


@pytest.fixture
def roots(tmp_path):
    root, shapenet = tmp_path / "obman", tmp_path / "ShapeNetCore.v2"
    write_obman(root, shapenet, sides=("right", "left"))
    return root, shapenet


def test_blender_frame_is_flipped_to_opencv_in_mm(roots):
    record = ObMan(*roots[:1], "train", shapenet_root=roots[1], with_images=False)[0]
    # Joint 3 in Blender: (0.015, -0.006, -0.353) m -> diag(1, -1, -1), x1000: (15, 6, 353) mm.
    np.testing.assert_allclose(record["hand_3d"][3], [15.0, 6.0, 353.0], atol=1e-4)
    np.testing.assert_allclose(record["hand_3d"], obman_joints() * [1, -1, -1] * 1000, atol=1e-3)
    assert record["side"] == "right" and record["object"] == "02876657"


def test_corners_are_the_mesh_box_through_affine_transform_then_the_flip(roots):
    record = ObMan(roots[0], "train", shapenet_root=roots[1], with_images=False)[0]
    # Mesh box x [-0.1, 0.1], y [-0.2, 0.2], z [-0.05, 0.05]. Corner 6 (+,+,+) = (0.1, 0.2, 0.05);
    # affine: 0.5 * it + (0.01, 0.02, -0.4) = (0.06, 0.12, -0.375); flip, mm: (60, -120, 375).
    np.testing.assert_allclose(record["obj_3d"][6], [60.0, -120.0, 375.0], atol=1e-3)
    corner0 = OBMAN_AFFINE[:3, :3] @ [-0.1, -0.2, -0.05] + OBMAN_AFFINE[:3, 3]
    np.testing.assert_allclose(record["obj_3d"][0], corner0 * [1, -1, -1] * 1000, atol=1e-3)


def test_left_hand_is_mirrored_and_2d_is_K_times_3d(roots):
    root, shapenet = roots
    dataset = ObMan(root, "train", shapenet_root=shapenet, image_size=128)
    for index in range(2):
        write_image(root / "train" / "rgb" / f"{index:08d}.jpg", (256, 256))
    right, left = dataset[0], dataset[1]
    assert left["side"] == "left"
    np.testing.assert_allclose(left["hand_3d"][:, 0], -right["hand_3d"][:, 0], atol=1e-4)
    # 256 -> 128 halves K: fx 480 -> 240, cx 127.5 -> 63.75; the mirrored principal point is
    # 255 - 127.5 = 127.5, the image's centre, where a mirror leaves it.
    np.testing.assert_allclose(right["K"], [[240, 0, 63.75], [0, 240, 63.75], [0, 0, 1]])
    np.testing.assert_allclose(left["K"][0, 2], 63.75)
    np.testing.assert_allclose(right["orig_K"], [[480, 0, 127.5], [0, 480, 127.5], [0, 0, 1]])
    for record in (right, left):
        projected = project_points(torch.tensor(record["obj_3d"]), torch.tensor(record["K"]))
        np.testing.assert_allclose(record["obj_2d"], projected.numpy(), atol=1e-3)


def test_mesh_found_from_class_and_sample_ids_without_obj_path(roots):
    root, shapenet = roots
    path = root / "train" / "meta" / "00000000.pkl"
    meta = pickle.loads(path.read_bytes())
    del meta["obj_path"]
    path.write_bytes(pickle.dumps(meta))
    record = ObMan(root, "train", shapenet_root=shapenet, with_images=False)[0]
    np.testing.assert_allclose(record["obj_3d"][6], [60.0, -120.0, 375.0], atol=1e-3)
    with pytest.raises(DataFileError, match="shapenet_root"):
        ObMan(root, "train", with_images=False)[0]


def test_missing_mesh_and_bad_pickle_name_the_file(roots, tmp_path):
    root, _ = roots
    with pytest.raises(DataFileError, match=r"model_normalized\.obj"):
        ObMan(root, "train", shapenet_root=tmp_path / "elsewhere", with_images=False)[0]
    (root / "train" / "meta" / "00000001.pkl").write_bytes(b"\x80\x02truncated")
    with pytest.raises(DataFileError, match=r"00000001\.pkl"):
        ObMan(root, "train", shapenet_root=roots[1], with_images=False)[1]
    with pytest.raises(ValueError, match="split"):
        ObMan(root, "training")


def test_projection_with_orig_K_is_the_datasets_coords_2d_in_pixel_centre_coordinates(roots):
    """ObMan's renderer writes coords_2d = K [diag(1, -1, -1) | 0] coords_3d with fx = fy = 480
    and u0 = v0 = 128 (obman_render coordutils.get_coords_2d), pixel-edge coordinates, in which a
    256-px raster's centre is 128; hopose's pixel centres are integers, so the record's 3D through
    orig_K lands half a pixel up and left of coords_2d, at the same point of the image."""
    camera = obman_joints() * [1.0, -1.0, -1.0]
    renderer_K = np.array([[480.0, 0.0, 128.0], [0.0, 480.0, 128.0], [0.0, 0.0, 1.0]])
    coords_2d = (camera @ renderer_K.T)[:, :2] / camera[:, 2:]
    record = ObMan(roots[0], "train", shapenet_root=roots[1], with_images=False)[0]
    projected = project_points(torch.tensor(record["hand_3d"]), torch.tensor(record["orig_K"]))
    np.testing.assert_allclose(projected.numpy(), coords_2d - 0.5, atol=1e-3)


def _rewrite_meta(root, index: int, **changes) -> None:
    """Change (or, with None, remove) keys of sample ``index``'s meta pickle."""
    path = root / "train" / "meta" / f"{index:08d}.pkl"
    meta = pickle.loads(path.read_bytes())
    for key, value in changes.items():
        if value is None:
            del meta[key]
        else:
            meta[key] = value
    path.write_bytes(pickle.dumps(meta))


def test_a_rotating_affine_transform_is_applied_as_a_matrix_not_its_transpose(roots):
    """The fixture's affine only scales (a symmetric matrix); a quarter turn about z tells
    ``R x`` from ``R^T x``."""
    root, shapenet = roots
    affine = np.array(
        [[0.0, -1.0, 0.0, 0.01], [1.0, 0.0, 0.0, 0.02], [0.0, 0.0, 1.0, -0.4], [0, 0, 0, 1.0]]
    )
    _rewrite_meta(root, 0, affine_transform=affine)
    record = ObMan(root, "train", shapenet_root=shapenet, with_images=False)[0]
    # Corner 6 (+,+,+) = (0.1, 0.2, 0.05); turned (x, y) -> (-y, x): (-0.2, 0.1, 0.05); plus
    # (0.01, 0.02, -0.4): (-0.19, 0.12, -0.35) m; flip, mm: (-190, -120, 350).
    np.testing.assert_allclose(record["obj_3d"][6], [-190.0, -120.0, 350.0], atol=1e-3)


def test_obj_path_is_read_as_written_without_shapenet_root(roots):
    """Without ``shapenet_root`` the pickle's ``obj_path`` names the mesh itself; its class is
    still the folder four levels up."""
    root, shapenet = roots
    mesh = shapenet / "02876657" / "abc123" / "models" / "model_normalized.obj"
    _rewrite_meta(root, 0, obj_path=str(mesh))
    record = ObMan(root, "train", with_images=False)[0]
    np.testing.assert_allclose(record["obj_3d"][6], [60.0, -120.0, 375.0], atol=1e-3)
    assert record["object"] == "02876657"


def test_an_obj_path_on_the_authors_disk_without_shapenet_root_says_so(roots):
    """The fixture's obj_path, as the real pickles', is under /sequoia on the authors' machine:
    without ``shapenet_root`` the error names the pickle and the path, and says what maps it."""
    root, _ = roots
    with pytest.raises(UnmappedMesh) as caught:
        ObMan(root, "train", with_images=False)[0]
    assert str(caught.value) == (
        f"{root / 'train' / 'meta' / '00000000.pkl'}: obj_path {OBMAN_OBJ_PATH} not found, a "
        "path on the authors' disk (shapenet_root, the ShapeNetCore.v2 folder, maps it)"
    )


def test_a_pickle_without_obj_path_or_ids_names_what_is_needed(roots):
    """Neither ``obj_path`` nor ``class_id``: a DataFileError naming the pickle, even with a
    ``shapenet_root`` to look under (not a bare KeyError)."""
    root, shapenet = roots
    _rewrite_meta(root, 0, obj_path=None, class_id=None)
    with pytest.raises(DataFileError, match=r"00000000\.pkl: no obj_path; class_id, sample_id"):
        ObMan(root, "train", shapenet_root=shapenet, with_images=False)[0]


def test_a_side_other_than_right_or_left_is_refused_naming_the_pickle(roots):
    """An unknown side would be read as a right hand, never mirrored."""
    root, shapenet = roots
    _rewrite_meta(root, 1, side="both")
    with pytest.raises(DataFileError, match=r"00000001\.pkl: side must be 'right' or 'left'"):
        ObMan(root, "train", shapenet_root=shapenet, with_images=False)[1]
