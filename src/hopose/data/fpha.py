"""FPHA-HO: the First-Person Hand Action benchmark's hand-object subset (docs/conventions.md §6).

Garcia-Hernando et al., "First-Person Hand Action Benchmark with RGB-D Videos and 3D Hand Pose
Annotations", CVPR 2018. Read exactly as distributed::

    Video_files/Subject_k/<action>/<seq>/color/color_%04d.jpeg           1920×1080 RGB
    Hand_pose_annotation_v1[_1]/Subject_k/<action>/<seq>/skeleton.txt    t + 63 floats a line
    Object_6D_pose_annotation_v1[_1]/Subject_k/<action>/<seq>/object_pose.txt  t + 16 floats
    Object_models/<obj>_model/<obj>_model.ply                           metres
    data_split_action_recognition.txt                                   action protocol only

Geometry: skeleton joints (FPHA order, mm, depth-camera frame) and the object pose (a
column-major 4×4 from model mm to the depth camera) are taken into the colour camera with the
dataset's depth→colour extrinsic, joints reordered with :data:`FPHA_TO_CANONICAL`. The box is the
axis-aligned box of the model's vertices (×1000 to mm), posed like the model.

Protocols (every result must name the one it used):

* ``"hope"`` — HOPE-Net's (and the paper's) sequence split: sequence ``1`` of every
  subject/action is val, ``3`` is test, all others train (paper: 11,019 / 5,442 / 5,040 frames).
* ``"action"`` — the official action-recognition split of ``data_split_action_recognition.txt``
  (H+O and most later papers): its ``Training`` sequences are train, its ``Test`` ones test; it
  has no val split.

Both keep the 10 actions with object poses and drop ``Subject_2/close_milk/4`` (empty).
Frames present in only one of skeleton.txt and object_pose.txt, or given there as a line of
zeros (no annotation), are left out with a warning (listed in ``unannotated``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hopose.data.mesh import mesh_bbox_corners
from hopose.data.transforms import METRES_TO_MM, DataFileError, Frame, FrameDataset
from hopose.skeleton import FPHA_TO_CANONICAL

log = logging.getLogger(__name__)

FPHA_IMAGE_SIZE = (1920, 1080)  # colour frames, (width, height)
# Colour camera intrinsics and the depth -> colour extrinsic (mm), from the dataset's README.
FPHA_COLOR_K = np.array(
    [[1395.749023, 0.0, 935.732544], [0.0, 1395.749268, 540.681030], [0.0, 0.0, 1.0]]
)
FPHA_DEPTH_TO_COLOR_R = np.array(
    [
        [0.999988496304, -0.00468848412856, 0.000982563360594],
        [0.00469115935266, 0.999985218048, -0.00273845880292],
        [-0.000969709653873, 0.00274303671904, 0.99999576807],
    ]
)
FPHA_DEPTH_TO_COLOR_T = np.array([25.7, 1.22, 3.902])
# The 10 actions with object pose annotations; the object is the action minus its first word.
FPHA_HO_ACTIONS: tuple[str, ...] = (
    "open_juice_bottle",
    "close_juice_bottle",
    "pour_juice_bottle",
    "open_milk",
    "close_milk",
    "pour_milk",
    "open_liquid_soap",
    "close_liquid_soap",
    "pour_liquid_soap",
    "put_salt",
)
EXCLUDED_SEQUENCES: frozenset[tuple[str, str, str]] = frozenset({("Subject_2", "close_milk", "4")})
HOPE_SPLIT_SEQUENCES: dict[str, str] = {"1": "val", "3": "test"}  # every other sequence: train
# The split protocols (the module docstring): the paper's, and the official action split.
HOPE_PROTOCOL = "hope"
ACTION_PROTOCOL = "action"
PROTOCOL_SPLITS: dict[str, tuple[str, ...]] = {
    HOPE_PROTOCOL: ("train", "val", "test"),
    ACTION_PROTOCOL: ("train", "test"),
}
ACTION_SPLIT_FILE = "data_split_action_recognition.txt"
ACTION_SPLIT_SECTIONS: dict[str, str] = {"Training": "train", "Test": "test"}
# Accepted spellings of the annotation folders, preferred first.
HAND_DIRS: tuple[str, ...] = ("Hand_pose_annotation_v1", "Hand_pose_annotation_v1_1")
OBJECT_DIRS: tuple[str, ...] = ("Object_6D_pose_annotation_v1_1", "Object_6D_pose_annotation_v1")
# Model folder names per object, preferred first (some copies ship ``juice_model``).
MODEL_NAMES: dict[str, tuple[str, ...]] = {"juice_bottle": ("juice_bottle", "juice")}
# The parts of a record's id (frame_id), in order, "/"-joined: hopose.scoring.GROUP_KEYS finds
# a frame's subject and action by their names here.
ID_PARTS: tuple[str, ...] = ("dataset", "subject", "action", "sequence", "frame")
# The largest frame index an annotation line may give: 55 minutes at 30 fps, where FPHA's
# 1,175 videos hold 105,459 frames in all (the paper, §4.1), about 90 each. A larger one, or a
# negative one, is no frame of a video.
MAX_FRAME_INDEX = 99_999


def check_protocol(protocol: Any, field: str = "protocol") -> None:
    """Refuse a split protocol outside :data:`PROTOCOL_SPLITS`, naming ``field`` (a list too,
    which the mapping cannot look up: a bare TypeError before)."""
    if not (isinstance(protocol, str) and protocol in PROTOCOL_SPLITS):
        raise ValueError(f"{field}: expected one of {tuple(PROTOCOL_SPLITS)}, got {protocol!r}")


def frame_id(subject: str, action: str, sequence: str, frame: int) -> str:
    """The record id of frame ``frame`` (its number in the annotation files) of ``subject``'s
    sequence ``sequence`` of ``action``, in the layout of :data:`ID_PARTS`:
    ``fpha/Subject_1/open_milk/3/0042``."""
    return f"fpha/{subject}/{action}/{sequence}/{frame:04d}"


def fpha_object(action: str) -> str:
    """Object name of an FPHA-HO action: ``"open_juice_bottle" -> "juice_bottle"``."""
    return action.split("_", 1)[1]


def _first_existing(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DataFileError(f"{root}: none of the folders {names} exists")


def _unreadable(error: OSError | UnicodeDecodeError) -> str:
    """Why a text file could not be read, in one line without repeating its path."""
    if isinstance(error, UnicodeDecodeError):
        return f"not a text file (byte {error.object[error.start]:#04x} at offset {error.start})"
    return f"cannot read file ({error.strerror or type(error).__name__})"


def _is_count(token: str) -> bool:
    """Whether ``token`` is a whole number in ASCII digits (``int`` takes a sign, ``_`` and other
    scripts' digits too)."""
    return token.isascii() and token.isdigit()


def read_annotation_lines(path: Path, num_values: int) -> dict[int, np.ndarray | None]:
    """Parse an FPHA annotation file: each line a frame index then ``num_values`` floats.

    Returns:
        frame index -> (num_values,) float64 array.

    Raises:
        DataFileError: naming the file (and line) of a missing, unreadable or non-text file or
            of a malformed line: a wrong number of fields, a frame index that is not a whole
            number from 0 to :data:`MAX_FRAME_INDEX` or is given twice, a value that is not a
            number, or one that is not finite in float32, the records' dtype (``nan``, ``inf``,
            which Python parses, or ``1e300``, finite in float64 only: no pose is made of
            them).

    Returns:
        frame index -> its ``num_values`` values, or None for a line of zeros (no annotation).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: annotation file not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataFileError(f"{path}: {_unreadable(error)}") from error
    rows: dict[int, np.ndarray] = {}
    first_line: dict[int, int] = {}  # frame index -> line it was first read from
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != num_values + 1:
            raise DataFileError(
                f"{path}:{number}: expected a frame index and {num_values} values, "
                f"got {len(tokens)} fields"
            )
        if not _is_count(tokens[0]) or int(tokens[0]) > MAX_FRAME_INDEX:
            raise DataFileError(
                f"{path}:{number}: frame index {tokens[0]!r}, expected a whole number from 0 to "
                f"{MAX_FRAME_INDEX}"
            )
        frame = int(tokens[0])
        try:
            values = np.array([float(token) for token in tokens[1:]])
        except ValueError as error:
            raise DataFileError(f"{path}:{number}: not a number ({error})") from error
        # Records are float32 (hopose.data.transforms): a value beyond its range is inf there.
        with np.errstate(over="ignore"):
            finite = np.isfinite(values.astype(np.float32))
        if not finite.all():
            bad = tokens[1 + int(np.flatnonzero(~finite)[0])]
            raise DataFileError(f"{path}:{number}: non-finite value {bad!r} (in float32)")
        # A line of zeros (joints at the camera's centre, a zero matrix) annotates nothing: its
        # frame is kept as listed but unannotated (None), left out with the frames that only one
        # file annotates, so that a real file's placeholder lines need no --on-error skip.
        values = values if values.any() else None
        if frame in first_line:
            raise DataFileError(
                f"{path}:{number}: frame {frame} again (first on line {first_line[frame]})"
            )
        rows[frame], first_line[frame] = values, number
    return rows


def read_split_file(path: Path) -> dict[str, list[str]]:
    """``data_split_action_recognition.txt``: split -> ``Subject_k/<action>/<seq>`` entries.

    The file has a ``Training <count>`` header, one ``<sequence path> <label>`` line per sequence,
    then a ``Test <count>`` header and the test sequences. A sequence listed twice, in one
    section or in both, raises :class:`DataFileError` naming the second line; a section of
    another number of lines than its header's count (a file cut short, or edited) one naming
    the header's line.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: split file not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataFileError(f"{path}: {_unreadable(error)}") from error
    splits: dict[str, list[str]] = {split: [] for split in ACTION_SPLIT_SECTIONS.values()}
    current = section = None
    header = 0  # the line of the header the lines read belong to
    # entry -> (line, section) where first listed: a sequence listed again would be read twice,
    # and one under both headers would be trained and tested on.
    listed: dict[str, tuple[int, str]] = {}
    # header line -> [the count it announces, the sequences listed under it]
    counts: dict[int, list[int]] = {}
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] in ACTION_SPLIT_SECTIONS:
            if len(tokens) != 2 or not _is_count(tokens[1]):
                raise DataFileError(f"{path}:{number}: expected '{tokens[0]} <count>'")
            section, current = tokens[0], ACTION_SPLIT_SECTIONS[tokens[0]]
            header, counts[number] = number, [int(tokens[1]), 0]
        elif current is None or len(tokens) != 2 or tokens[0].count("/") != 2:
            raise DataFileError(f"{path}:{number}: expected '<Subject>/<action>/<seq> <label>'")
        elif tokens[0] in listed:
            first, first_section = listed[tokens[0]]
            where = "" if first_section == section else f", under {first_section}"
            raise DataFileError(
                f"{path}:{number}: sequence {tokens[0]} again (first on line {first}{where})"
            )
        else:
            splits[current].append(tokens[0])
            listed[tokens[0]] = (number, section)
            counts[header][1] += 1
    for number, (announced, found) in counts.items():
        if found != announced:
            raise DataFileError(
                f"{path}:{number}: '{lines[number - 1].strip()}' counts {announced}, the lines "
                f"under it {found}"
            )
    return splits


class FPHA(FrameDataset):
    """FPHA-HO frames as docs/conventions.md §6 records.

    Args:
        root: the dataset folder (holding ``Video_files`` etc.).
        split: "train", "val" or "test" (``"action"`` has no val).
        protocol: "hope" (the paper's) or "action" (official); see the module docstring.
        **options: ``image_size``, ``crop``, ``margin``, ``with_images``, ``on_error`` of
            :class:`FrameDataset`; with ``on_error="skip"`` a sequence with a malformed
            annotation line is left out (a counted warning; the reasons are in ``skipped``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        protocol: str = HOPE_PROTOCOL,
        **options: Any,
    ):
        super().__init__(**options)
        check_protocol(protocol)
        if split not in PROTOCOL_SPLITS[protocol]:
            raise ValueError(
                f"split: FPHA protocol {protocol!r} has {PROTOCOL_SPLITS[protocol]}, got {split!r}"
            )
        self.root, self.split, self.protocol = Path(root), split, protocol
        self.variant["protocol"] = protocol
        self.hand_root = _first_existing(self.root, HAND_DIRS)
        self.object_root = _first_existing(self.root, OBJECT_DIRS)
        self.unannotated: list[str] = []  # frames in only one of the two annotation files
        self.image_paths: list[Path] = []
        self.ids: list[str] = []
        self.objects: list[str] = []
        hands, boxes = [], []
        for subject, action, seq in self.sequences():
            try:
                frames, hand, box, unannotated = self._read_sequence(subject, action, seq)
            except DataFileError as error:
                self._skip_or_raise(error)
                continue
            # Only a sequence that is kept: a skipped one is left out whole, for its own reason.
            self.unannotated += unannotated
            video = self.root / "Video_files" / subject / action / seq / "color"
            self.image_paths += [video / f"color_{t:04d}.jpeg" for t in frames]
            self.ids += [frame_id(subject, action, seq, t) for t in frames]
            self.objects += [fpha_object(action)] * len(frames)
            hands.append(hand)
            boxes.append(box)
        self.hand_3d = np.concatenate(hands) if hands else np.zeros((0, 21, 3))
        self.obj_3d = np.concatenate(boxes) if boxes else np.zeros((0, 8, 3))
        self._warn_skipped(f"FPHA {protocol}/{split}")
        if self.unannotated:
            log.warning(
                "FPHA %s/%s: left out %d frames annotated in only one file, first: %s",
                protocol,
                split,
                len(self.unannotated),
                self.unannotated[0],
            )

    def sequences(self) -> list[tuple[str, str, str]]:
        """(subject, action, sequence) of this split, sorted, FPHA-HO actions only."""
        if self.protocol == ACTION_PROTOCOL:
            entries = read_split_file(self.root / ACTION_SPLIT_FILE)[self.split]
            found = [tuple(entry.split("/")) for entry in entries]
        else:
            found = [
                (subject.name, action, seq.name)
                for subject in sorted(self.object_root.glob("Subject_*"))
                for action in FPHA_HO_ACTIONS
                if (subject / action).is_dir()
                for seq in sorted((subject / action).iterdir())
                if seq.is_dir() and HOPE_SPLIT_SEQUENCES.get(seq.name, "train") == self.split
            ]
        return sorted(
            (s, a, q)
            for s, a, q in found
            if a in FPHA_HO_ACTIONS and (s, a, q) not in EXCLUDED_SEQUENCES
        )

    def _read_sequence(
        self, subject: str, action: str, seq: str
    ) -> tuple[list[int], np.ndarray, np.ndarray, list[str]]:
        """Frame indices, (T, 21, 3) joints and (T, 8, 3) corners in the colour camera, mm, and
        the frames left out for being in only one of the two annotation files."""
        skeleton_path = self.hand_root / subject / action / seq / "skeleton.txt"
        skeleton = read_annotation_lines(skeleton_path, 63)
        poses = read_annotation_lines(
            self.object_root / subject / action / seq / "object_pose.txt", 16
        )
        hands, objects = (
            {t for t, v in rows.items() if v is not None} for rows in (skeleton, poses)
        )
        frames = sorted(hands & objects)
        if not frames:
            raise DataFileError(f"{skeleton_path}: no frame has both hand and object annotations")
        unannotated = [
            frame_id(subject, action, seq, t)
            + (
                ": only a hand"
                if t in hands
                else ": only an object pose"
                if t in objects
                else ": no annotation (lines of zeros)"
            )
            for t in sorted((set(skeleton) | set(poses)) - set(frames))
        ]
        joints = np.stack([skeleton[t] for t in frames]).reshape(-1, 21, 3)  # (T, 21, 3) depth cam
        joints = joints[:, list(FPHA_TO_CANONICAL)]
        # Column-major 4x4: the 16 values fill the columns, so reshape then transpose.
        model_to_depth = np.stack([poses[t] for t in frames]).reshape(-1, 4, 4).transpose(0, 2, 1)
        corners = self.model_corners(fpha_object(action))  # (8, 3) model mm
        corners = (
            corners @ model_to_depth[:, :3, :3].transpose(0, 2, 1) + model_to_depth[:, None, :3, 3]
        )
        return frames, depth_to_color(joints), depth_to_color(corners), unannotated

    def model_corners(self, obj: str) -> np.ndarray:
        """(8, 3) canonical corners of an object model's axis-aligned box, model frame, mm."""
        models = self.root / "Object_models"
        for name in MODEL_NAMES.get(obj, (obj,)):
            path = models / f"{name}_model" / f"{name}_model.ply"
            if path.is_file():
                return mesh_bbox_corners(path, METRES_TO_MM)
        return mesh_bbox_corners(models / f"{obj}_model" / f"{obj}_model.ply", METRES_TO_MM)

    def __len__(self) -> int:
        return len(self.ids)

    def frame(self, index: int) -> Frame:
        return Frame(
            image_path=self.image_paths[index],
            orig_K=FPHA_COLOR_K,
            orig_size=FPHA_IMAGE_SIZE,
            hand_3d=self.hand_3d[index],
            obj_3d=self.obj_3d[index],
            side="right",
            object=self.objects[index],
            id=self.ids[index],
        )


def depth_to_color(points: np.ndarray) -> np.ndarray:
    """(..., 3) depth-camera points (mm) to the colour camera: ``R X + t``."""
    return points @ FPHA_DEPTH_TO_COLOR_R.T + FPHA_DEPTH_TO_COLOR_T
