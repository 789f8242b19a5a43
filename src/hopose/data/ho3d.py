"""HO-3D v2 / v3 (Hampali et al., "HOnnotate", CVPR 2020): YCB objects in real hands
(docs/conventions.md §6).

Layout (``version`` picks the image extension: v2 ``.png``, v3 ``.jpg``)::

    train.txt, evaluation.txt         one ``<SEQ>/<frame>`` per line
    <split>/<SEQ>/rgb/%04d.(png|jpg)  640×480
    <split>/<SEQ>/meta/%04d.pkl       handJoints3D, objCorners3D, camMat, objName, ...

Geometry: ``handJoints3D`` (MANO order, reordered with :data:`MANO_TO_CANONICAL`) and
``objCorners3D`` are in metres in an OpenGL camera frame (y up, z backwards); diag(1, −1, −1)
takes them to OpenCV, ×1000 to mm; ``camMat`` is the intrinsics.

Corner order: HO-3D lists a box's corners with the index bits (x, y, z) = (i // 4, i // 2 % 2,
i % 2) of (min, max), the order of ``itertools.product`` over the three axes; this matches the
faces its own viewer (shreyashampali/ho3d ``utils/vis_utils.py`` ``showObjJoints``) draws:
0-1-3-2 and 4-5-7-6 with the edges i -> i + 4. :data:`HO3D_TO_CANONICAL_CORNERS` maps it to the
canonical
order. When a pickle also holds ``objCorners3DRest`` (the box in the object's own frame), the
order is read from it instead (the corner with the sign pattern of canonical corner c becomes c), so
a dataset that breaks the assumption is still read right; a rest box without one corner per sign
pattern is refused (a DataFileError naming the pickle), never read in the assumed order. A
pickle without ``objCorners3D`` has its rest box posed by ``objRot`` and ``objTrans``
(:func:`posed_corners`), as HO-3D's own viewer poses the box.

The ``evaluation`` split has no hand annotation except the wrist (``handJoints3D`` is one
point): its records hold the wrist in joint 0 and NaN for joints 1-20 (and their 2D). They are
for predicting and submitting to the HO-3D server, never for training or local metrics.
:func:`hand_labelled` says so of a dataset's split, for what needs the hand's labels: a cache
(``hopose prepare``), the ground-truth 2D fed to the lifter (``hopose eval --gt-2d``), an
ablation's scores (``hopose ablate``), each of which refuses the split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hopose.data.transforms import (
    METRES_TO_MM,
    DataFileError,
    Frame,
    FrameDataset,
    as_intrinsics,
    as_points,
    read_pickle,
)
from hopose.geometry import axis_angle_to_matrix
from hopose.skeleton import CORNER_SIGNS, MANO_TO_CANONICAL, NUM_CORNERS, NUM_JOINTS

HO3D_IMAGE_SIZE = (640, 480)
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
HO3D_VERSIONS: dict[str, str] = {"v2": ".png", "v3": ".jpg"}
# The withheld split, annotated with the wrist alone, whose predictions go to the server.
EVALUATION_SPLIT = "evaluation"
HO3D_SPLITS: dict[str, str] = {"train": "train.txt", EVALUATION_SPLIT: "evaluation.txt"}
# Why that split is refused where the hand's labels are needed (hand_labelled), in each refusal.
WITHHELD = "holds only the wrist (HO-3D keeps the rest for its server)"
# canonical corner c takes HO-3D corner HO3D_TO_CANONICAL_CORNERS[c] (HO-3D index 4*bx + 2*by + bz).
HO3D_TO_CANONICAL_CORNERS: tuple[int, ...] = tuple(
    4 * (sx > 0) + 2 * (sy > 0) + (sz > 0) for sx, sy, sz in CORNER_SIGNS
)
HO3D_META_KEYS: tuple[str, ...] = ("handJoints3D", "camMat")
# What poses the box in a pickle without objCorners3D, as HO-3D's own viewer poses it.
HO3D_POSE_KEYS: tuple[str, ...] = ("objCorners3DRest", "objRot", "objTrans")
# The parts of a record's id (frame_id), in order, "/"-joined, the first "ho3d_<version>":
# hopose.scoring.GROUP_KEYS finds a frame's sequence by its name here.
ID_PARTS: tuple[str, ...] = ("dataset", "sequence", "frame")


def posed_corners(meta: dict[str, Any], rest: np.ndarray | None, meta_path: Path) -> np.ndarray:
    """The box's (8, 3) corners in the OpenGL camera frame, metres, HO-3D's corner order:
    ``objCorners3D``, or where a pickle lacks it, ``rest`` (its ``objCorners3DRest``, read by
    the caller; None where it has none) posed by ``objRot`` (axis and angle, stored (3, 1) as
    ``cv2.Rodrigues`` takes it) and ``objTrans``, as HO-3D's viewer (shreyashampali/ho3d
    ``vis_HO3D.py``) poses the box in both splits: rest Rᵀ + t.

    Raises:
        DataFileError: naming the pickle, where neither is there or a value is malformed.
    """
    if meta.get("objCorners3D") is not None:
        return as_points(meta["objCorners3D"], (NUM_CORNERS, 3), f"{meta_path} objCorners3D")
    missing = [key for key in HO3D_POSE_KEYS if meta.get(key) is None]
    if missing:
        raise DataFileError(
            f"{meta_path}: no objCorners3D, nor {', '.join(missing)} to pose the box from"
        )
    rotation, translation = (
        as_points(np.ravel(np.asarray(meta[key], dtype=object)), (3,), f"{meta_path} {key}")
        for key in ("objRot", "objTrans")
    )
    R = axis_angle_to_matrix(torch.from_numpy(rotation)).numpy()
    return rest @ R.T + translation


def check_version(version: Any, field: str = "version") -> None:
    """Refuse a dataset version outside :data:`HO3D_VERSIONS`, naming ``field`` (a list too,
    which the mapping cannot look up: a bare TypeError before)."""
    if not (isinstance(version, str) and version in HO3D_VERSIONS):
        raise ValueError(f"{field}: HO-3D has {tuple(HO3D_VERSIONS)}, got {version!r}")


def hand_labelled(name: str, split: str) -> bool:
    """Whether split ``split`` of dataset ``name`` (a name of :data:`hopose.data.DATASETS`)
    holds the hand's labels, all 21 joints in 3D and 2D: every split of every dataset does but
    HO-3D's :data:`EVALUATION_SPLIT`, whose records hold the wrist alone (:data:`WITHHELD`;
    the module docstring says what refuses it)."""
    return not (name == "ho3d" and split == EVALUATION_SPLIT)


def frame_id(version: str, seq: str, name: str) -> str:
    """The record id of frame ``name`` of sequence ``seq`` (a line ``<seq>/<name>`` of a frame
    list) of HO-3D ``version``, in the layout of :data:`ID_PARTS`: ``ho3d_v3/MC1/0042``."""
    return f"ho3d_{version}/{seq}/{name}"


def corner_order_from_rest(rest: np.ndarray) -> tuple[int, ...] | None:
    """The canonical order of a box given in its own frame, from each corner's signs about the
    centre.

    Args:
        rest: (8, 3) corners in the object's frame (an axis-aligned box).

    Returns:
        The index tuple (canonical corner c takes ``rest[order[c]]``), or None if ``rest`` is not an
        axis-aligned box with one corner per sign pattern.
    """
    signs = np.sign(rest - rest.mean(axis=0))  # (8, 3)
    order = []
    for pattern in CORNER_SIGNS:
        match = np.flatnonzero((signs == pattern).all(axis=1))
        if len(match) != 1:
            return None
        order.append(int(match[0]))
    return tuple(order)


class HO3D(FrameDataset):
    """HO-3D frames as docs/conventions.md §6 records.

    Args:
        root: the folder holding ``train``, ``evaluation`` and the two lists.
        split: "train" or "evaluation" (see the module docstring).
        version: "v2" or "v3".
        **options: ``image_size``, ``crop``, ``margin``, ``with_images``, ``on_error`` of
            :class:`FrameDataset`; with ``on_error="skip"`` a malformed line of the frame list
            is left out (a counted warning; the reasons are in ``skipped``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        version: str = "v3",
        **options: Any,
    ):
        super().__init__(**options)
        if split not in HO3D_SPLITS:
            raise ValueError(f"split: HO-3D has {tuple(HO3D_SPLITS)}, got {split!r}")
        check_version(version)
        self.root, self.split, self.version = Path(root), split, version
        self.variant["version"] = version
        # The split's frame list: its lines, in order, are the split's frames.
        self.list_path = self.root / HO3D_SPLITS[split]
        try:
            lines = self.list_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as error:
            raise DataFileError(f"{self.list_path}: frame list not found") from error
        except (OSError, UnicodeDecodeError) as error:
            raise DataFileError(
                f"{self.list_path}: cannot read the frame list ({error})"
            ) from error
        self.entries: list[tuple[str, str]] = []
        for number, line in enumerate(lines, start=1):
            tokens = line.split()
            if not tokens:  # a blank line (a trailing one, say) names no frame
                continue
            seq, _, frame = tokens[0].partition("/")
            if len(tokens) != 1 or not seq or not frame:
                error = DataFileError(
                    f"{self.list_path}:{number}: expected '<SEQ>/<frame>', got {line.strip()!r}"
                )
                self._skip_or_raise(error)
                continue
            self.entries.append((seq, frame))
        self._warn_skipped(f"HO-3D {version}/{split}")

    def __len__(self) -> int:
        return len(self.entries)

    def frame(self, index: int) -> Frame:
        seq, name = self.entries[index]
        folder = self.root / self.split / seq
        meta_path = folder / "meta" / f"{name}.pkl"
        meta = read_pickle(meta_path, HO3D_META_KEYS)
        if self.split == "train":
            joints = as_points(meta["handJoints3D"], (NUM_JOINTS, 3), f"{meta_path} handJoints3D")
            joints = joints[list(MANO_TO_CANONICAL)]
        else:
            wrist = as_points(meta["handJoints3D"], (3,), f"{meta_path} handJoints3D")
            joints = np.full((NUM_JOINTS, 3), np.nan)
            joints[0] = wrist
        rest = None
        order = HO3D_TO_CANONICAL_CORNERS
        if meta.get("objCorners3DRest") is not None:
            rest = as_points(
                meta["objCorners3DRest"], (NUM_CORNERS, 3), f"{meta_path} objCorners3DRest"
            )
            order = corner_order_from_rest(rest)
            if order is None:
                raise DataFileError(
                    f"{meta_path} objCorners3DRest: expected an axis-aligned box with one corner"
                    " per sign pattern about its centre"
                )
        corners = posed_corners(meta, rest, meta_path)
        return Frame(
            image_path=folder / "rgb" / f"{name}{HO3D_VERSIONS[self.version]}",
            orig_K=as_intrinsics(meta["camMat"], f"{meta_path} camMat"),
            orig_size=HO3D_IMAGE_SIZE,
            hand_3d=joints @ OPENGL_TO_OPENCV.T * METRES_TO_MM,
            obj_3d=corners[list(order)] @ OPENGL_TO_OPENCV.T * METRES_TO_MM,
            side="right",
            object=str(meta.get("objName", "")),
            id=frame_id(self.version, seq, name),
        )
