"""``hopose data check``: walk a dataset tree and report every problem, not just the first.

For each split the loader is built with ``on_error="skip"`` (so malformed annotation files are
collected, not raised), then every frame's annotation is read and its image is opened: the
header by default, the full pixels with ``decode=True``. Problems are grouped by kind:

* ``layout`` — a folder or list file the loader needs is missing (the split cannot be read),
  or, once per split, ObMan's meshes are not found without ``shapenet_root`` (each sample
  names one on the authors' disk: :class:`hopose.data.obman.UnmappedMesh`);
* ``missing folder`` — a subject/camera folder a split names is absent (DexYCB);
* ``bad annotation`` — a missing, truncated or unparsable annotation file or mesh;
* ``no annotation`` — a frame without a hand annotation (a DexYCB frame whose labels say so
  though its sequence's ``pose.npz`` gives it a hand, FPHA frames with only one of the two
  annotation files);
* ``without a hand`` — DexYCB frames before the hand comes into view, which its loader leaves
  out by design (every sequence has them): listed, counted, and not a problem
  (:data:`NOTED_KINDS`: ``hopose data check`` still exits 0);
* ``missing image`` / ``unreadable image`` — the RGB file is absent, or corrupt, truncated, of
  the wrong size or no file (a folder). Without ``decode`` a JPEG must end with its end
  marker (:func:`jpeg_cut_short`; a PNG's chunks are all read by ``verify()``): a file cut
  short, as an interrupted download leaves it, is found without decoding it;
* ``empty split`` — a split that yields no frame at all (nothing to train or evaluate on);
* ``split overlap`` — a frame in two of the splits walked (trained and tested on, say).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from hopose.data.dexycb import DEXYCB_SETUPS, MissingHand
from hopose.data.fpha import PROTOCOL_SPLITS
from hopose.data.ho3d import HO3D_SPLITS
from hopose.data.obman import OBMAN_SPLITS, UnmappedMesh
from hopose.data.transforms import DataFileError, read_image, read_image_size

# The option that chooses FPHA's and DexYCB's splits, and the splits of each of its values.
_SPLITS_BY_OPTION: dict[str, tuple[str, Mapping[str, Iterable[str]]]] = {
    "fpha": ("protocol", PROTOCOL_SPLITS),
    "dexycb": ("setup", DEXYCB_SETUPS),
}
SHOWN_PER_KIND = 5
# Kinds listed for the record, not problems: what a loader leaves out of a sound tree by design.
NOTED_KINDS = frozenset({"without a hand"})
# A JPEG's last marker, EOI. Compressed data never holds it (an FF byte there is followed by 00
# or a restart marker D0-D7), so a file cut short ends without it.
JPEG_END = b"\xff\xd9"
# What may follow a JPEG's end marker and is not taken for data: zero bytes (a file padded to a
# block) and whitespace. Pillow decodes such a file whole.
JPEG_PADDING = b"\x00 \t\r\n"
# How much of a JPEG's end is read for its end marker: padding beyond it reads as cut short (an
# interrupted download into a preallocated file ends in zeros).
JPEG_TAIL_BYTES = 4096


@dataclass
class CheckReport:
    """Problems found in a dataset tree, grouped by kind; ``frames`` counts frames examined."""

    dataset: str
    root: str
    frames: int = 0
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def ok(self) -> bool:
        """No problem found (:data:`NOTED_KINDS` are not problems)."""
        return not any(v for kind, v in self.problems.items() if kind not in NOTED_KINDS)

    def summary(self) -> str:
        lines = [f"{self.dataset} at {self.root}: {self.frames} frames checked"]
        if self.ok:
            lines.append("no problems found")
        for kind, messages in sorted(self.problems.items()):
            lines.append(f"{kind}: {len(messages)}")
            lines += [f"  {message}" for message in messages[:SHOWN_PER_KIND]]
            if len(messages) > SHOWN_PER_KIND:
                lines.append(f"  ... and {len(messages) - SHOWN_PER_KIND} more")
        return "\n".join(lines)


def check_dataset(
    name: str,
    root: str,
    *,
    splits: tuple[str, ...] | None = None,
    decode: bool = False,
    progress: bool = True,
    **options: Any,
) -> CheckReport:
    """Walk the splits of a dataset at ``root`` (default: all, of its protocol or setup).

    Args:
        name: "fpha", "obman", "ho3d" or "dexycb".
        root: the dataset folder.
        splits: splits to walk (None: :func:`dataset_splits`, all of them).
        decode: decode every image fully (slow) instead of reading its header.
        progress: show a progress bar per split.
        **options: the loader's own options (``protocol``, ``version``, ``setup``,
            ``shapenet_root``).
    """
    from hopose.data import REAL_DATASETS

    if name not in REAL_DATASETS:
        raise ValueError(f"dataset: expected one of {tuple(REAL_DATASETS)}, got {name!r}")
    report = CheckReport(dataset=name, root=str(root))
    splits = splits or dataset_splits(name, **options)
    first_split: dict[str, str] = {}  # frame id -> the first split walked that holds it
    for split in splits:
        unmapped: list[str] = []
        try:
            dataset = REAL_DATASETS[name](
                root, split, with_images=False, on_error="skip", **options
            )
        except DataFileError as error:
            report.problems["layout"].append(f"{split}: {error}")
            continue
        report.problems["bad annotation"] += dataset.skipped
        report.problems["no annotation"] += getattr(dataset, "unannotated", [])
        report.problems["without a hand"] += getattr(dataset, "handless", [])
        report.problems["missing folder"] += dataset.missing
        if len(dataset) == 0:
            report.problems["empty split"].append(f"{split}: no frame to read under {root}")
        for index in tqdm(
            range(len(dataset)), desc=f"{name}/{split}", disable=None if progress else True
        ):
            report.frames += 1
            try:
                frame = dataset.frame(index)
            except MissingHand as error:
                report.problems["no annotation"].append(str(error))
                continue
            except UnmappedMesh as error:  # every sample alike: one layout line, below
                unmapped.append(str(error))
                continue
            except DataFileError as error:
                report.problems["bad annotation"].append(str(error))
                continue
            seen_in = first_split.setdefault(frame.id, split)
            if seen_in != split:
                report.problems["split overlap"].append(f"{frame.id}: in {seen_in} and {split}")
            _check_image(frame.image_path, frame.orig_size, decode, report)
        if unmapped:
            report.problems["layout"].append(
                f"{split}: the meshes of {len(unmapped)} of {len(dataset)} samples are not "
                f"found (first: {unmapped[0]}): pass --shapenet-root, the ShapeNetCore.v2 folder"
            )
    report.problems = {kind: messages for kind, messages in report.problems.items() if messages}
    return report


def dataset_splits(name: str, **options: Any) -> tuple[str, ...]:
    """Every split of real dataset ``name``, as its loader names them: FPHA's those of its
    ``protocol`` (the HOPE-Net one's cover every sequence of the subset; the action one has no
    val), DexYCB's those of its ``setup``, as ``options`` give them or at their defaults."""
    from hopose.data import option_defaults

    if name == "obman":
        return OBMAN_SPLITS
    if name == "ho3d":
        return tuple(HO3D_SPLITS)
    option, choices = _SPLITS_BY_OPTION[name]
    default = option_defaults(name)[option]
    # An unknown one walks the default's splits, where the loader refuses it naming the option.
    return tuple(choices.get(options.get(option, default), choices[default]))


def jpeg_cut_short(path: Path) -> bool:
    """Whether the JPEG file at ``path`` lacks its end marker (:data:`JPEG_END`) at its end,
    after :data:`JPEG_PADDING`: cut short. Reads its last :data:`JPEG_TAIL_BYTES` only."""
    with open(path, "rb") as file:
        file.seek(max(file.seek(0, os.SEEK_END) - JPEG_TAIL_BYTES, 0))
        return not file.read().rstrip(JPEG_PADDING).endswith(JPEG_END)


def _check_image(path: Path, size: tuple[int, int], decode: bool, report: CheckReport) -> None:
    if not path.exists():
        report.problems["missing image"].append(f"{path}: image file not found")
        return
    if not path.is_file():
        report.problems["unreadable image"].append(f"{path}: not a file")
        return
    try:
        found = read_image(path).size if decode else read_image_size(path)
        # Decoding does not check a PNG's checksums: verify() does, in either mode.
        with Image.open(path) as image:
            kind = image.format
            image.verify()
    except DataFileError as error:  # its message names the file
        report.problems["unreadable image"].append(str(error))
        return
    except (OSError, SyntaxError) as error:
        report.problems["unreadable image"].append(f"{path}: {error}")
        return
    # Decoding finds a JPEG cut short (Pillow reads up to its end marker); the header does not.
    if not decode and kind == "JPEG" and jpeg_cut_short(path):
        report.problems["unreadable image"].append(
            f"{path}: truncated: the file does not end with JPEG's end marker (FF D9): cut "
            "short, or data after the marker (a camera's trailer, which --decode accepts)"
        )
        return
    if tuple(found) != tuple(size):
        report.problems["unreadable image"].append(f"{path}: size {found}, expected {size}")
