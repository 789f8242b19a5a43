"""The files a benchmark's own evaluation code reads: HO-3D's upload and DexYCB's results.

**HO-3D.** Its ``evaluation`` split holds the wrist alone (docs/datasets.md, HO-3D): its hand
errors come from the challenge's server (CodaLab), which reads ``pred.json`` from an uploaded
zip. ``hopose eval`` on that split, from the images, writes :data:`SUBMISSION_FILE` beside its
predictions (:func:`write_submission`, :func:`write_ho3d_upload`). The format, as the dataset's
own ``pred.py`` writes it and its ``eval.py`` reads it (github.com/shreyashampali/ho3d): a JSON
array ``[xyz, verts]`` of two lists with one entry per line of ``evaluation.txt``, in its
order; ``xyz[i]`` the 21 joints and ``verts[i]`` the hand mesh's vertices, in metres in HO-3D's
OpenGL camera frame (y up, z backwards, so a point in front of the camera has z < 0), the joints
in HO-3D's order (MANO's, :data:`MANO_TO_CANONICAL`'s source). hopose predicts no mesh: each
frame's ``verts`` holds its 21 joints, a point count other than MANO's 778, for which the server
scores no mesh error (its mesh rows read -1) and computes its F-scores over those 21 points.
Coordinates are rounded to 0.1 mm.

**DexYCB.** Its labels are public, so ``hopose eval`` scores it itself (with the toolkit's
joint AUCs, :func:`hopose.metrics.keypoint_auc`); for the toolkit's own numbers, an evaluation
of a whole DexYCB split from the images also writes :data:`DEXYCB_RESULTS_FILE`, the results
file its ``hpe_eval.py`` reads (github.com/NVlabs/dex-ycb-toolkit): a line per frame with a hand,
``image_id,x1,y1,z1,...,x21,y21,z21``, the image id the frame's index in the toolkit's
``DexYCBDataset`` of the same setup and split (:meth:`hopose.data.dexycb.DexYCB.toolkit_id`),
the joints in mm in the camera's frame, in the toolkit's order (hopose's canonical one), a left
hand mirrored back to the left hand it is (hopose scores it mirrored, as a right hand).
"""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hopose.config import DataConfig
from hopose.crop import MIRROR_X
from hopose.data.dexycb import DexYCB
from hopose.data.ho3d import EVALUATION_SPLIT, HO3D, OPENGL_TO_OPENCV, frame_id
from hopose.data.transforms import METRES_TO_MM, DataFileError
from hopose.files import write_atomic, write_text
from hopose.skeleton import MANO_TO_CANONICAL

# The upload, in an evaluation's folder, and the one file in it that the server reads.
SUBMISSION_FILE = "ho3d_submission.zip"
PREDICTION_JSON = "pred.json"
# DexYCB's results for its toolkit's hpe_eval.py, in an evaluation's folder.
DEXYCB_RESULTS_FILE = "dexycb_hpe_results.txt"
# Every file of this module, which an evaluation removes before it writes its own.
BENCHMARK_FILES = (SUBMISSION_FILE, DEXYCB_RESULTS_FILE)
# HO-3D joint j is canonical joint CANONICAL_TO_MANO[j] (the inverse of MANO_TO_CANONICAL).
CANONICAL_TO_MANO: tuple[int, ...] = tuple(int(i) for i in np.argsort(MANO_TO_CANONICAL))
# Metres kept in HO-3D's file: 4 decimals, 0.1 mm; millimetres in DexYCB's: 1 decimal.
DECIMALS = 4
MM_DECIMALS = 1


def ho3d_joints(hand_3d: np.ndarray) -> np.ndarray:
    """hopose's hands as HO-3D's server reads them.

    Args:
        hand_3d: (N, 21, 3) joints in mm, OpenCV camera frame, canonical order.

    Returns:
        (N, 21, 3) float64 joints in metres, OpenGL camera frame, HO-3D's (MANO's) order: the
        inverse of :class:`hopose.data.ho3d.HO3D`'s reading of ``handJoints3D``.
    """
    hand = np.asarray(hand_3d, dtype=np.float64)[:, list(CANONICAL_TO_MANO)]
    # diag(1, -1, -1) is its own inverse: OpenCV to OpenGL as OpenGL to OpenCV.
    return hand @ OPENGL_TO_OPENCV.T / METRES_TO_MM


class NotSubmittable(ValueError):
    """Predictions that the server would refuse or misread; the message says why."""


def listed_rows(predictions: Mapping[str, np.ndarray], listed: list[str]) -> list[int]:
    """The rows of ``predictions`` that hold the frames ``listed`` names, in its order.

    Args:
        predictions: arrays with ``id`` (N,) and ``pred_hand_3d`` (N, 21, 3), in any order.
        listed: the frame ids of the split's list, in its order.

    Raises:
        NotSubmittable: a listed frame has no prediction (the benchmark scores every one), or
            its hand is not finite.
    """
    where = {str(name): row for row, name in enumerate(predictions["id"])}
    missing = [name for name in listed if name not in where]
    if missing:
        raise NotSubmittable(
            f"{len(missing)} of its {len(listed)} frames have no prediction (first "
            f"{missing[0]}); the benchmark scores every frame, so evaluate the whole split"
        )
    rows = [where[name] for name in listed]
    bad = ~np.isfinite(np.asarray(predictions["pred_hand_3d"])[rows]).all(axis=(1, 2))
    if bad.any():
        raise NotSubmittable(f"the predicted hand of {listed[int(np.argmax(bad))]} is not finite")
    return rows


def listed_hands(predictions: Mapping[str, np.ndarray], listed: list[str]) -> np.ndarray:
    """(len(listed), 21, 3) the finite predicted hands of the frames ``listed`` names, in its
    order (:func:`listed_rows`, whose :class:`NotSubmittable` it raises)."""
    return np.asarray(predictions["pred_hand_3d"])[listed_rows(predictions, listed)]


def write_submission(
    data: DataConfig, split: str, predictions: Mapping[str, np.ndarray], out_dir: str | Path
) -> Path | None:
    """Write the file a benchmark's code reads, where ``data`` and ``split`` have one: HO-3D's
    withheld ``evaluation`` split (:data:`SUBMISSION_FILE`, :func:`write_ho3d_upload`) or a
    DexYCB split (:data:`DEXYCB_RESULTS_FILE`, :func:`write_dexycb_results`), whose frames are
    listed again from the dataset's folder (``data.root``; an evaluation from ``--cache``
    alone writes none).

    Args:
        data: the evaluation's dataset.
        split: its split.
        predictions: :func:`hopose.evaluate.predict_split`'s arrays (``id``, ``side``,
            ``pred_hand_3d``), from the images: a protocol that reads ground truth writes none.
        out_dir: the evaluation's folder.

    Returns:
        The file's path; None where the split has none, or (with a one-line warning saying
        why: :class:`NotSubmittable`, or a dataset file that cannot be read again) where the
        predictions would not be scored whole.
    """
    if data.root is None:
        return None
    if data.name == "dexycb":
        name, write = DEXYCB_RESULTS_FILE, write_dexycb_results
    elif data.name == "ho3d" and split == EVALUATION_SPLIT:
        name, write = SUBMISSION_FILE, write_ho3d_upload
    else:
        return None
    try:
        return write(data, split, predictions, Path(out_dir))
    except (NotSubmittable, DataFileError) as error:
        # After the whole inference: the evaluation's own files still come.
        warnings.warn(f"{data.root} ({split}): no {name} written: {error}", stacklevel=2)
        return None


@contextmanager
def _read_again_quietly() -> Iterator[None]:
    """The datasets' log lines held back while a split is read again for its frame list: the
    evaluation's own read logged them (folders missing, lines skipped), and a file not written
    says why in its own warning."""
    logger = logging.getLogger("hopose.data")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def write_ho3d_upload(
    data: DataConfig, split: str, predictions: Mapping[str, np.ndarray], out_dir: Path
) -> Path:
    """``out_dir``/:data:`SUBMISSION_FILE` of HO-3D's ``split`` at ``data.root`` (module
    docstring).

    Raises:
        NotSubmittable: a line of the frame list was skipped (``on_error="skip"``), or
            :func:`listed_hands`'s reasons.
    """
    with _read_again_quietly():
        dataset = HO3D(data.root, split, with_images=False, **data.options)
    if dataset.skipped:  # the server scores a line of the list for each of its frames
        raise NotSubmittable(f"lines were skipped (on_error=skip), first: {dataset.skipped[0]}")
    listed = [frame_id(dataset.version, seq, name) for seq, name in dataset.entries]
    xyz = np.round(ho3d_joints(listed_hands(predictions, listed)), DECIMALS).tolist()
    text = json.dumps([xyz, xyz])

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(PREDICTION_JSON, text)

    return write_atomic(out_dir / SUBMISSION_FILE, write)


def write_dexycb_results(
    data: DataConfig, split: str, predictions: Mapping[str, np.ndarray], out_dir: Path
) -> Path:
    """``out_dir``/:data:`DEXYCB_RESULTS_FILE` of DexYCB's ``split`` at ``data.root``, for the
    toolkit's ``hpe_eval.py`` (module docstring).

    Raises:
        NotSubmittable: a folder of the split missing or a sequence skipped (the toolkit counts
            them: its image ids would shift), or :func:`listed_rows`'s reasons (a frame with a
            hand without a prediction would stop the toolkit).
    """
    with _read_again_quietly():
        dataset = DexYCB(data.root, split, with_images=False, **data.options)
    if dataset.left_out:
        raise NotSubmittable(f"the split is not whole on disk (first: {dataset.left_out[0]})")
    rows = listed_rows(predictions, [dataset.frame_id(i) for i in range(len(dataset))])
    hand = np.asarray(predictions["pred_hand_3d"])[rows]
    # A left hand was scored mirrored (x negated); its joints keep their order.
    left = np.asarray(predictions["side"])[rows] == "left"
    hand = np.where(left[:, None, None], hand * np.array(MIRROR_X), hand)
    ids = [dataset.toolkit_id(i) for i in range(len(dataset))]
    lines = [
        ",".join([str(image_id), *(f"{value:.{MM_DECIMALS}f}" for value in joints.ravel())])
        for image_id, joints in sorted(zip(ids, hand, strict=True), key=lambda row: row[0])
    ]
    return write_text(out_dir / DEXYCB_RESULTS_FILE, "\n".join(lines) + "\n")
