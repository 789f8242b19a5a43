"""DexYCB (Chao et al., "DexYCB: A Benchmark for Capturing Hand Grasping of Objects",
CVPR 2021): 10 subjects grasping YCB objects, 8 RealSense views (docs/conventions.md §6).

Layout (as distributed, see NVlabs/dex-ycb-toolkit ``dex_ycb_toolkit/dex_ycb.py``)::

    <subject>/<sequence>/meta.yml                    num_frames, ycb_ids, ycb_grasp_ind, mano_sides
    <subject>/<sequence>/pose.npz                    pose_m (num_frames, hands, 51), pose_y
    <subject>/<sequence>/<serial>/color_%06d.jpg     640×480
    <subject>/<sequence>/<serial>/labels_%06d.npz    joint_3d, joint_2d, pose_y, pose_m, seg
    calibration/intrinsics/<serial>_640x480.yml      color: {fx, fy, ppx, ppy}
    models/<ycb name>/textured_simple.obj            metres

Geometry: ``joint_3d`` (1, 21, 3) is in metres in the colour camera (OpenCV), canonical order;
the grasped object is ``ycb_ids[ycb_grasp_ind]`` with pose ``pose_y[ycb_grasp_ind]`` ([R|t],
model metres -> camera metres). Its box is the axis-aligned box of the model's vertices.

Splits: the toolkit's setups s0 (seen subjects, views and objects), s1 (unseen subjects), s2
(unseen views), s3 (unseen objects), as the named constants below; sequences are indexed in the
sorted order of a subject's folder, which must hold all 100 (as the toolkit asserts): with one
missing, every later index would name another grasp and the split would be silently wrong.

Frames without a hand (before the hand comes into view) are left out of the index, and listed in
``handless``. The sequence's ``pose.npz`` holds the MANO pose fitted once per frame, in the
master camera's frame, for all 8 cameras: all zero where there is no hand (as the toolkit's
``sequence_loader.py`` reads it), and every camera's labels are derived from it (there
``joint_3d`` is all −1, the marker the toolkit's ``hpe_eval.py`` leaves out of the evaluation).
So one read per sequence, not one per labels npz (8 cameras x ~72 frames) tells which frames
have a hand. A frame reached anyway whose labels hold no hand raises :class:`MissingHand`.
Subjects or camera folders of a setup that are not on disk are left out with a warning, listed
in ``missing`` (so the split does not count as whole: ``FrameDataset.left_out``) and reported by
``hopose data check``. Left hands are mirrored to right ones.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hopose.data.mesh import mesh_bbox_corners
from hopose.data.transforms import (
    METRES_TO_MM,
    DataFileError,
    Frame,
    FrameDataset,
    as_intrinsics,
    as_points,
)
from hopose.skeleton import NUM_JOINTS

log = logging.getLogger(__name__)

DEXYCB_IMAGE_SIZE = (640, 480)
DEXYCB_SUBJECTS: tuple[str, ...] = (
    "20200709-subject-01",
    "20200813-subject-02",
    "20200820-subject-03",
    "20200903-subject-04",
    "20200908-subject-05",
    "20200918-subject-06",
    "20200928-subject-07",
    "20201002-subject-08",
    "20201015-subject-09",
    "20201022-subject-10",
)
DEXYCB_SERIALS: tuple[str, ...] = (
    "836212060125",
    "839512060362",
    "840412060917",
    "841412060263",
    "932122060857",
    "932122060861",
    "932122061900",
    "932122062010",
)
YCB_CLASSES: dict[int, str] = {
    1: "002_master_chef_can",
    2: "003_cracker_box",
    3: "004_sugar_box",
    4: "005_tomato_soup_can",
    5: "006_mustard_bottle",
    6: "007_tuna_fish_can",
    7: "008_pudding_box",
    8: "009_gelatin_box",
    9: "010_potted_meat_can",
    10: "011_banana",
    11: "019_pitcher_base",
    12: "021_bleach_cleanser",
    13: "024_bowl",
    14: "025_mug",
    15: "035_power_drill",
    16: "036_wood_block",
    17: "037_scissors",
    18: "040_large_marker",
    19: "051_large_clamp",
    20: "052_extra_large_clamp",
    21: "061_foam_brick",
}
NUM_SEQUENCES = 100  # per subject: 20 objects x 5 grasps
_ALL_SUBJECTS = tuple(range(10))
_ALL_SERIALS = tuple(range(8))
_ALL_SEQUENCES = tuple(range(NUM_SEQUENCES))
# setup -> split -> (subject indices, serial indices, sequence indices), dex-ycb-toolkit's values.
DEXYCB_SETUPS: dict[str, dict[str, tuple[tuple[int, ...], ...]]] = {
    "s0": {  # seen subjects, views and objects: every 5th grasp held out
        "train": (_ALL_SUBJECTS, _ALL_SERIALS, tuple(i for i in _ALL_SEQUENCES if i % 5 != 4)),
        "val": ((0, 1), _ALL_SERIALS, tuple(i for i in _ALL_SEQUENCES if i % 5 == 4)),
        "test": (tuple(range(2, 10)), _ALL_SERIALS, tuple(i for i in _ALL_SEQUENCES if i % 5 == 4)),
    },
    "s1": {  # unseen subjects
        "train": ((0, 1, 2, 3, 4, 5, 9), _ALL_SERIALS, _ALL_SEQUENCES),
        "val": ((6,), _ALL_SERIALS, _ALL_SEQUENCES),
        "test": ((7, 8), _ALL_SERIALS, _ALL_SEQUENCES),
    },
    "s2": {  # unseen camera views
        "train": (_ALL_SUBJECTS, tuple(range(6)), _ALL_SEQUENCES),
        "val": (_ALL_SUBJECTS, (6,), _ALL_SEQUENCES),
        "test": (_ALL_SUBJECTS, (7,), _ALL_SEQUENCES),
    },
    "s3": {  # unseen grasped objects (sequences are grouped by object, 5 per object)
        "train": (
            _ALL_SUBJECTS,
            _ALL_SERIALS,
            tuple(i for i in _ALL_SEQUENCES if i // 5 not in (3, 7, 11, 15, 19)),
        ),
        "val": (_ALL_SUBJECTS, _ALL_SERIALS, tuple(i for i in _ALL_SEQUENCES if i // 5 in (3, 19))),
        "test": (
            _ALL_SUBJECTS,
            _ALL_SERIALS,
            tuple(i for i in _ALL_SEQUENCES if i // 5 in (7, 11, 15)),
        ),
    },
}


# The parts of a record's id (frame_id), in order, "/"-joined: hopose.scoring.GROUP_KEYS finds
# a frame's subject and camera by their names here.
ID_PARTS: tuple[str, ...] = ("dataset", "subject", "sequence", "camera", "frame")


def frame_id(subject: str, sequence: str, serial: str, frame: int) -> str:
    """The record id of frame ``frame`` of camera ``serial`` in ``subject``'s folder
    ``sequence``, in the layout of :data:`ID_PARTS`:
    ``dexycb/20200709-subject-01/20200709_140004/836212060125/000042``."""
    return f"dexycb/{subject}/{sequence}/{serial}/{frame:06d}"


def check_setup(setup: Any, field: str = "setup") -> None:
    """Refuse a setup outside :data:`DEXYCB_SETUPS`, naming ``field`` (a list too, which the
    mapping cannot look up: a bare TypeError before)."""
    if not (isinstance(setup, str) and setup in DEXYCB_SETUPS):
        raise ValueError(f"{field}: DexYCB has {tuple(DEXYCB_SETUPS)}, got {setup!r}")


class MissingHand(DataFileError):
    """A DexYCB frame whose labels hold no hand (``joint_3d`` all −1)."""


def read_yaml(path: Path) -> dict:
    """A YAML mapping, or a DataFileError naming the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: file not found") from error
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        reason = " ".join(str(error).split())  # PyYAML's messages span several lines
        raise DataFileError(f"{path}: invalid YAML ({reason})") from error
    except OSError as error:
        raise DataFileError(f"{path}: cannot read ({error})") from error
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected a YAML mapping")
    return data


def read_intrinsics(path: Path) -> np.ndarray:
    """(3, 3) colour intrinsics from a calibration ``<serial>_640x480.yml``."""
    color = read_yaml(path).get("color")
    try:
        fx, fy, cx, cy = (float(color[key]) for key in ("fx", "fy", "ppx", "ppy"))
    except (TypeError, KeyError, ValueError) as error:
        raise DataFileError(f"{path}: expected color: {{fx, fy, ppx, ppy}} ({error})") from error
    return as_intrinsics([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], f"{path} color")


def read_npz(path: Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an npz archive (only those members are decompressed), or a
    DataFileError naming it; ``what`` names its content in the messages."""
    try:
        archive = np.load(path)
        if isinstance(archive, np.lib.npyio.NpzFile):
            with archive:
                for key in keys:
                    if key not in archive.files:  # numpy's own KeyError says more than the key
                        raise KeyError(key)
                return {key: archive[key] for key in keys}
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: {what} file not found") from error
    except KeyError as error:
        raise DataFileError(f"{path}: missing key {error.args[0]!r}") from error
    # zlib.error: a damaged deflate stream inside the archive (the CRC check comes after it).
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as error:
        raise DataFileError(f"{path}: cannot read {what} ({error})") from error
    raise DataFileError(f"{path}: expected an npz archive, got a single .npy array")


def read_labels(path: Path) -> dict[str, np.ndarray]:
    """``joint_3d`` and ``pose_y`` of a ``labels_%06d.npz``, or a DataFileError naming it."""
    return read_npz(path, ("joint_3d", "pose_y"), "labels")


def read_hand_presence(path: Path, num_frames: int) -> np.ndarray:
    """(num_frames,) bool: which frames of a sequence have a hand, from its ``pose.npz``.

    ``pose_m`` is (num_frames, hands, 51), the MANO pose and translation of each frame, fitted
    once for all cameras (in the master camera's frame); all zero marks a frame without the
    hand. Only the first hand is read, as ``mano_sides[0]`` is (DexYCB has one per sequence).
    """
    pose_m = read_npz(path, ("pose_m",), "hand pose")["pose_m"]
    try:
        pose_m = np.asarray(pose_m, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataFileError(f"{path} pose_m: expected numbers ({error})") from error
    if pose_m.ndim != 3 or pose_m.shape[0] != num_frames or pose_m.shape[1:2] == (0,):
        raise DataFileError(
            f"{path} pose_m: {pose_m.shape}, expected ({num_frames}, hands, 51) for meta.yml's "
            f"num_frames {num_frames}"
        )
    if pose_m.shape[2] != 51:
        raise DataFileError(f"{path} pose_m: {pose_m.shape}, expected 51 values per hand")
    # NaN != 0: a damaged pose counts as a hand, and its labels are read (and checked) as such.
    return np.any(pose_m[:, 0] != 0.0, axis=1)


class DexYCB(FrameDataset):
    """DexYCB frames (one per camera view and time step) as docs/conventions.md §6 records.

    Args:
        root: the DexYCB folder (``DEX_YCB_DIR`` of the toolkit).
        split: "train", "val" or "test".
        setup: "s0" (default, the common benchmark), "s1", "s2" or "s3".
        **options: ``image_size``, ``crop``, ``margin``, ``with_images``, ``on_error`` of
            :class:`FrameDataset`; with ``on_error="skip"`` a sequence whose ``meta.yml`` or
            ``pose.npz`` is missing or malformed is left out (a counted warning; the reasons
            are in ``skipped``).

    Only frames with a hand are indexed (read from each sequence's ``pose.npz``, once); the
    others are counted in ``num_handless`` and listed by ``handless``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        setup: str = "s0",
        **options: Any,
    ):
        super().__init__(**options)
        check_setup(setup)
        if split not in DEXYCB_SETUPS[setup]:
            raise ValueError(f"split: DexYCB has {tuple(DEXYCB_SETUPS[setup])}, got {split!r}")
        self.root, self.split, self.setup = Path(root), split, setup
        self.variant["setup"] = setup
        subjects, serials, sequences = DEXYCB_SETUPS[setup][split]
        self.intrinsics: dict[str, np.ndarray] = {}
        for serial in (DEXYCB_SERIALS[i] for i in serials):
            path = self.root / "calibration" / "intrinsics" / f"{serial}_640x480.yml"
            self.intrinsics[serial] = read_intrinsics(path)
        # One entry per (sequence folder, serial, frame); sequence facts are kept per sequence.
        self.sequence_info: list[tuple[Path, str, str, int]] = []  # folder, object, side, grasp
        self.entries: list[tuple[int, str, int]] = []
        # Frames without a hand, kept compact (a split has up to ~10^5 of them): (sequence,
        # serials on disk, frame indices); ``handless`` spells them out when asked.
        self._handless: list[tuple[int, tuple[str, ...], np.ndarray]] = []
        self.num_handless = 0
        # The toolkit's image ids (its DexYCBDataset's index: every frame of every camera of the
        # setup's split, sequence by sequence, camera by camera): each indexed sequence's first
        # id and frame count, and the split's count so far.
        self._serials = tuple(DEXYCB_SERIALS[i] for i in serials)
        self._toolkit_ids: list[tuple[int, int]] = []
        self._toolkit_count = 0
        for subject in (DEXYCB_SUBJECTS[i] for i in subjects):
            folder = self.root / subject
            if not folder.is_dir():
                self.missing.append(str(folder))
                continue
            found = sorted(path for path in folder.iterdir() if path.is_dir())
            if len(found) != NUM_SEQUENCES:
                raise DataFileError(
                    f"{folder}: {len(found)} sequence folders, expected {NUM_SEQUENCES} (the "
                    f"setups pick sequences by their sorted index; a partial subject would give "
                    f"other sequences than the toolkit's split)"
                )
            for index in sequences:
                try:
                    self._index_sequence(found[index], serials)
                except DataFileError as error:
                    self._skip_or_raise(error)
        self._warn_skipped(f"DexYCB {setup}/{split}")
        if self.num_handless:
            # Not a warning: every sequence starts before the hand is in view.
            sequence, serials, frames = self._handless[0]
            log.info(
                "DexYCB %s/%s: left out %d frames without a hand, first: %s",
                setup,
                split,
                self.num_handless,
                self._handless_line(sequence, serials[0], int(frames[0])),
            )
        if self.missing:
            log.warning(
                "DexYCB %s/%s: %d folders missing, e.g. %s",
                setup,
                split,
                len(self.missing),
                self.missing[0],
            )

    def _index_sequence(self, folder: Path, serials: tuple[int, ...]) -> None:
        meta_path = folder / "meta.yml"
        meta = read_yaml(meta_path)
        try:
            num_frames = int(meta["num_frames"])
            grasp = int(meta["ycb_grasp_ind"])
            if grasp < 0:  # Python would wrap it to another object of ycb_ids
                raise IndexError(f"ycb_grasp_ind {grasp} is negative")
            ycb_id = int(meta["ycb_ids"][grasp])
            side = meta["mano_sides"][0]
            name = YCB_CLASSES[ycb_id]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise DataFileError(f"{meta_path}: bad or missing field ({error!r})") from error
        # Any other value ("Left", say) would be read as a right hand: a left one left unmirrored.
        if side not in ("right", "left"):
            raise DataFileError(
                f"{meta_path}: mano_sides[0] must be 'right' or 'left', got {side!r}"
            )
        first_id = self._toolkit_count
        self._toolkit_count += len(serials) * num_frames
        present = []
        for serial in (DEXYCB_SERIALS[i] for i in serials):
            if (folder / serial).is_dir():
                present.append(serial)
            else:
                self.missing.append(str(folder / serial))
        if not present:
            return  # nothing to index: its pose.npz is not read
        # Read before anything is recorded: a sequence skipped for its pose.npz leaves no trace.
        has_hand = read_hand_presence(folder / "pose.npz", num_frames)
        self.sequence_info.append((folder, name, side, grasp))
        self._toolkit_ids.append((first_id, num_frames))
        sequence = len(self.sequence_info) - 1
        # The hand is posed once per frame for all cameras: present in one view, in all.
        frames = np.flatnonzero(has_hand).tolist()
        for serial in present:
            self.entries += [(sequence, serial, t) for t in frames]
        handless = np.flatnonzero(~has_hand)
        if len(handless):
            self._handless.append((sequence, tuple(present), handless))
            self.num_handless += len(handless) * len(present)

    @property
    def handless(self) -> list[str]:
        """One line per frame and camera left out for having no hand, naming its labels file
        (as :class:`MissingHand` does) and the ``pose.npz`` that says so."""
        return [
            self._handless_line(sequence, serial, t)
            for sequence, serials, frames in self._handless
            for serial in serials
            for t in frames
        ]

    def _handless_line(self, sequence: int, serial: str, t: int) -> str:
        folder = self.sequence_info[sequence][0]
        return (
            f"{folder / serial / f'labels_{t:06d}.npz'}: no hand in this frame "
            f"({folder / 'pose.npz'} pose_m[{t}] is all zero)"
        )

    def frame_id(self, index: int) -> str:
        """The record id of frame ``index`` (:func:`frame_id`)."""
        sequence, serial, t = self.entries[index]
        folder = self.sequence_info[sequence][0]
        return frame_id(folder.parent.name, folder.name, serial, t)

    def toolkit_id(self, index: int) -> int:
        """The image id of frame ``index`` in the dex-ycb-toolkit's ``DexYCBDataset`` of the
        same setup and split, which its ``hpe_eval.py`` reads results by: the frame's place
        among every frame of every camera of the split, sequence by sequence, camera by camera.
        Only meaningful where nothing of the split was left out (``left_out``: no folder missing,
        no sequence skipped), as the toolkit counts them all."""
        sequence, serial, t = self.entries[index]
        first, num_frames = self._toolkit_ids[sequence]
        return first + self._serials.index(serial) * num_frames + t

    def __len__(self) -> int:
        return len(self.entries)

    def frame(self, index: int) -> Frame:
        sequence, serial, t = self.entries[index]
        folder, name, side, grasp = self.sequence_info[sequence]
        label_path = folder / serial / f"labels_{t:06d}.npz"
        labels = read_labels(label_path)
        # The no-hand marker (all -1) is finite, so as_points lets it through to be told apart.
        joints = as_points(labels["joint_3d"], (1, NUM_JOINTS, 3), f"{label_path} joint_3d")
        if np.all(joints == -1):
            raise MissingHand(f"{label_path}: no hand in this frame (joint_3d is all -1)")
        poses = labels["pose_y"]  # (objects, 3, 4): only the grasped object's is read
        if poses.ndim != 3 or grasp >= len(poses):
            raise DataFileError(f"{label_path} pose_y: {poses.shape} lacks object {grasp}")
        pose = as_points(poses[grasp], (3, 4), f"{label_path} pose_y[{grasp}]")
        if not pose.any():
            # The toolkit's viewers skip an object whose pose is all zero: it was not posed.
            raise DataFileError(
                f"{label_path} pose_y[{grasp}]: all zero, no pose of the grasped object"
            )
        corners = mesh_bbox_corners(self.root / "models" / name / "textured_simple.obj")
        corners = corners @ pose[:, :3].T + pose[:, 3]  # camera frame, metres
        return Frame(
            image_path=folder / serial / f"color_{t:06d}.jpg",
            orig_K=self.intrinsics[serial],
            orig_size=DEXYCB_IMAGE_SIZE,
            hand_3d=joints[0] * METRES_TO_MM,
            obj_3d=corners * METRES_TO_MM,
            side=side,
            object=name,
            id=self.frame_id(index),
        )
