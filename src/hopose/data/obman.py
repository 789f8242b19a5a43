"""ObMan (Hasson et al., "Learning joint reconstruction of hands and manipulated objects",
CVPR 2019): synthetic grasps of ShapeNet objects rendered with Blender (docs/conventions.md §6).

Layout::

    <split>/rgb/%08d.jpg        256×256
    <split>/meta/%08d.pkl       coords_3d, coords_2d, affine_transform, obj_path, side, ...
    ShapeNetCore.v2/<class>/<sample>/models/model_normalized.obj   (``shapenet_root``)

Geometry (as the dataset's own loader, hassony2/obman ``obman/obman.py``, does it): the hand
joints ``coords_3d`` (metres, canonical order) and the object vertices after the 4×4
``affine_transform`` (model -> Blender camera, metres) are in Blender's camera frame; the
extrinsic diag(1, −1, −1) takes them to OpenCV, ×1000 to mm. The box is the axis-aligned box of
the ShapeNet mesh's vertices in model coordinates, mapped by ``affine_transform`` then the flip.

``obj_path`` in the pickles is an absolute path on the authors' machine; with ``shapenet_root``
its last four components (``<class>/<sample>/models/model_normalized.obj``) are joined to it.
Pickles without ``obj_path`` name the mesh by ``class_id`` and ``sample_id`` (the dataset
loader's own lookup), which then needs ``shapenet_root``.
Left hands (``side == "left"``) are mirrored to right ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hopose.data.mesh import mesh_bbox_corners
from hopose.data.transforms import (
    METRES_TO_MM,
    DataFileError,
    Frame,
    FrameDataset,
    as_points,
    read_pickle,
)
from hopose.skeleton import NUM_JOINTS

OBMAN_IMAGE_SIZE = (256, 256)
# Blender puts the optical axis at the raster's centre, 128 in pixel-edge coordinates (obman_render
# writes u0 = v0 = 256 / 2), which is (256 - 1) / 2 = 127.5 in hopose's, whose pixel centres are
# integers (docs/conventions.md §1): with 128 every label lay half a pixel right of and below what
# the image shows, and a mirrored left hand's principal point (W - 1 - cx) moved to 127.
OBMAN_K = np.array([[480.0, 0.0, 127.5], [0.0, 480.0, 127.5], [0.0, 0.0, 1.0]])
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
OBMAN_SPLITS: tuple[str, ...] = ("train", "val", "test")
OBMAN_META_KEYS: tuple[str, ...] = ("coords_3d", "affine_transform", "side")
# Where a ShapeNetCore.v2 mesh lives below its root (the dataset loader's template).
SHAPENET_MESH = "{class_id}/{sample_id}/models/model_normalized.obj"


def check_shapenet_root(shapenet_root: Any, field: str = "shapenet_root") -> None:
    """Refuse a ``shapenet_root`` that is not a path or None, naming ``field``: a number was a
    TypeError traceback from ``Path``, and a blank path would name the current folder."""
    if shapenet_root is not None and not (
        isinstance(shapenet_root, str | os.PathLike) and str(shapenet_root).strip()
    ):
        raise ValueError(
            f"{field}: expected the ShapeNetCore.v2 folder or None, got {shapenet_root!r}"
        )


class UnmappedMesh(DataFileError):
    """A sample's mesh is not found without ``shapenet_root``: its ``obj_path`` (a path on the
    authors' disk) names no file, or it has no ``obj_path`` to name one. On the real dataset
    every sample fails so: ``hopose data check`` reports it once per split, as a layout
    problem."""


class ObMan(FrameDataset):
    """ObMan frames as docs/conventions.md §6 records.

    Args:
        root: the folder holding ``train``, ``val`` and ``test``.
        split: one of :data:`OBMAN_SPLITS`.
        shapenet_root: the ShapeNetCore.v2 folder the pickles' ``obj_path`` is remapped to
            (None: use ``obj_path`` as written).
        **options: ``image_size``, ``crop``, ``margin``, ``with_images``, ``on_error`` of
            :class:`FrameDataset`. The index is the meta folder's file names, so ``on_error``
            skips nothing here: a bad pickle or a missing mesh raises when its frame is read
            (:class:`UnmappedMesh` where ``shapenet_root`` is missing).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        shapenet_root: str | Path | None = None,
        **options: Any,
    ):
        super().__init__(**options)
        check_shapenet_root(shapenet_root)
        if split not in OBMAN_SPLITS:
            raise ValueError(f"split: ObMan has {OBMAN_SPLITS}, got {split!r}")
        self.root, self.split = Path(root), split
        self.shapenet_root = None if shapenet_root is None else Path(shapenet_root)
        meta_dir = self.root / split / "meta"
        if not meta_dir.is_dir():
            raise DataFileError(f"{meta_dir}: ObMan meta folder not found")
        self.prefixes = sorted(path.stem for path in meta_dir.glob("*.pkl"))

    def __len__(self) -> int:
        return len(self.prefixes)

    def mesh_path(self, meta: dict, meta_path: Path) -> Path:
        """The ShapeNet mesh of a sample: its ``obj_path`` (remapped under ``shapenet_root``),
        or, in pickles without one, ``class_id`` / ``sample_id`` under ``shapenet_root``.

        Raises:
            UnmappedMesh: without ``shapenet_root``, when ``obj_path`` names no file or the
                pickle has none.
            DataFileError: a pickle without ``obj_path`` lacks ``class_id`` or ``sample_id``.
        """
        if meta.get("obj_path") is not None:
            path = Path(str(meta["obj_path"]))
            if self.shapenet_root is not None:
                return self.shapenet_root.joinpath(*path.parts[-4:])
            if not path.exists():
                raise UnmappedMesh(
                    f"{meta_path}: obj_path {path} not found, a path on the authors' disk "
                    "(shapenet_root, the ShapeNetCore.v2 folder, maps it)"
                )
            return path
        error = f"{meta_path}: no obj_path; class_id, sample_id and shapenet_root are needed"
        if "class_id" not in meta or "sample_id" not in meta:
            raise DataFileError(error)
        if self.shapenet_root is None:
            raise UnmappedMesh(error)
        ids = {"class_id": meta["class_id"], "sample_id": meta["sample_id"]}
        return self.shapenet_root / SHAPENET_MESH.format(**ids)

    def frame(self, index: int) -> Frame:
        prefix = self.prefixes[index]
        meta_path = self.root / self.split / "meta" / f"{prefix}.pkl"
        meta = read_pickle(meta_path, OBMAN_META_KEYS)
        joints = as_points(meta["coords_3d"], (NUM_JOINTS, 3), f"{meta_path} coords_3d")
        affine = as_points(meta["affine_transform"], (4, 4), f"{meta_path} affine_transform")
        side = str(meta["side"])
        if side not in ("right", "left"):
            raise DataFileError(f"{meta_path}: side must be 'right' or 'left', got {side!r}")
        mesh = self.mesh_path(meta, meta_path)
        corners = mesh_bbox_corners(mesh)  # (8, 3) model units
        corners = corners @ affine[:3, :3].T + affine[:3, 3]  # Blender camera, metres
        return Frame(
            image_path=self.root / self.split / "rgb" / f"{prefix}.jpg",
            orig_K=OBMAN_K,
            orig_size=OBMAN_IMAGE_SIZE,
            hand_3d=joints @ BLENDER_TO_OPENCV.T * METRES_TO_MM,
            obj_3d=corners @ BLENDER_TO_OPENCV.T * METRES_TO_MM,
            side=side,
            object=mesh.parts[-4] if len(mesh.parts) >= 4 else mesh.stem,
            id=f"obman/{self.split}/{prefix}",
        )
