"""The evaluation report: per-frame table, Markdown tables in the paper's layout, figures.

:func:`write_report` turns the arrays that ``hopose eval`` collects into, under ``out_dir``:

- ``per_frame.csv``: one row per frame, its id, the accuracy metrics of docs/conventions.md §5
  and the physical plausibility of its predicted and ground-truth pose
  (:mod:`hopose.plausibility`);
- ``per_group.csv``, for a dataset whose frames fall in groups (FPHA-HO's subjects and actions,
  DexYCB's subjects and cameras, HO-3D's sequences: :data:`hopose.scoring.GROUP_KEYS`): one
  row per group, its frames and mean errors (:func:`hopose.scoring.group_means`);
- ``figures/hand_pck.png`` (paper Fig. 6: hand 3D PCK over 0-80 mm), ``figures/object_pck.png``
  (Fig. 7: object 2D correct-pose rate over 0-80 px), ``figures/gallery.png`` (Fig. 8-10: the
  best, median and worst frames, on the image and in 3D) and ``figures/contacts.png``
  (Fig. 11: contact points and their directions from the object's axis);
- ``report.md``: the paper's Table 1 (with its published rows for reference where the frames
  are FPHA-HO's of the HOPE-Net split: :func:`paper_comparable`), then the fuller accuracy and
  plausibility tables, the groups' table per grouping key, and the figures.

:func:`compare_runs` (``hopose compare``) reads several such folders and puts their curves on
one plot and their tables side by side.

Every number in a report comes from ``per_frame.csv``: the summaries are means of its columns
and the curves are computed from its error columns, so a report and a comparison of it always
agree (after ``--refine`` but for the "unrefined" column, ``metrics.json``'s ``unrefined``).
Frames are ranked for the gallery by their mean error over all 29 keypoints (21 joints and 8
corners, mm), among those where it is finite (:func:`_ranked_frames`). The object's 2D error
is measured with the dataset's original camera (``orig_K``, docs/conventions.md §5) when the
predictions carry it, else with the network image's ``K``; the report says which.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from hopose import metrics, viz
from hopose.data import DATASETS, option_defaults
from hopose.data.fpha import HOPE_PROTOCOL
from hopose.files import (
    JsonType,
    is_whole_number,
    json_mismatch,
    output_folder,
    write_atomic,
    write_text,
)
from hopose.geometry import box_central_axis
from hopose.physics import ETA, N_SAMPLES, TOP_K, contact_points
from hopose.plausibility import MU
from hopose.scoring import (
    ACCURACY_COLUMNS,
    AFFINITY,
    CACHE,
    COLUMNS,
    CROP,
    CUBOID_MM,
    DATASET,
    FORCE_CLOSURE,
    GRASP_COMPLETED,
    GRASP_EPSILON,
    GROUP_COLUMNS,
    GROUP_FRAMES,
    GROUP_KEYS,
    HAND_AUC_0_80,
    HAND_KP2D_MEAN_PX,
    HAND_KP_AUC_0_50,
    HAND_MEAN_MM,
    HAND_MEAN_MM_SE,
    HAND_MM,
    HAND_PA_KP_AUC_0_50,
    HAND_PA_MM,
    HAND_PROCRUSTES_MM,
    HAND_ROOT_RELATIVE_MM,
    HAND_RR_KP_AUC_0_50,
    HAND_RR_MM,
    IMAGE_SIZE,
    N_FRAMES,
    NUM,
    OBJECT_2D_AUC_0_80,
    OBJECT_2D_PX,
    OBJECT_KP2D_MEAN_PX,
    OBJECT_MEAN_MM,
    OBJECT_MEAN_MM_SE,
    OBJECT_MM,
    OBJECT_REPROJ_MEAN_PX,
    OPTIONS,
    PENETRATION_MM,
    PLAUSIBILITY_KEYS,
    PROTOCOL,
    PROTOCOL_GT_2D,
    PROTOCOL_GT_BOX,
    PROTOCOL_IMAGE,
    REFINED,
    ROOT,
    SCORE_KEYS,
    SCORED,
    SEED,
    SELF_CROP,
    SELF_CROP_VIEWS,
    SPLIT,
    UNREFINED,
    VALID_CONTACTS,
    WHOLE_SPLIT,
    dataset_groups,
    frame_metrics,
    keypoint_mean_error,
    natural_order,
    paired_difference,
    plausibility_key,
    summarize,
)

# The paper's Table 1 (mean 3D error in mm, hand then object), measured on FPHA-HO with the
# HOPE-Net split; HOPE-Net's row is the paper's re-implementation.
PAPER_PROTOCOL = "FPHA-HO, HOPE-Net split (5,040 test frames)"
PAPER_METHOD = "Zhuang & Mu 2021"
PAPER_TABLE1: dict[str, tuple[float, float]] = {
    "H+O (Tekin et al. 2019)": (15.81, 24.89),
    "HOPE-Net (Doosti et al. 2020)": (15.04, 21.33),
    PAPER_METHOD: (12.53, 19.09),
}
# An evaluation's summary in its folder, written last (hopose.evaluate.write_scores): what
# hopose compare reads, where there is one, to say how each run was evaluated.
METRICS_FILE = "metrics.json"


def threshold_range(thresholds: NDArray) -> str:
    """The span of a PCK curve's (T,) thresholds, as its AUC's label names it: "0-80" for
    :data:`hopose.metrics.THRESHOLDS_MM`."""
    return f"{thresholds[0]:g}-{thresholds[-1]:g}"


# Summary rows of the tables: key (plausibility: name), label, number format. The AUCs' labels
# name the thresholds the scores use.
ACCURACY_ROWS: tuple[tuple[str, str, str], ...] = (
    (HAND_MEAN_MM, "Hand mean joint error (mm)", "{:.2f}"),
    (HAND_MEAN_MM_SE, "its standard error over the frames (mm)", "{:.2f}"),
    (HAND_ROOT_RELATIVE_MM, "Hand root-relative error (mm)", "{:.2f}"),
    (HAND_PROCRUSTES_MM, "Hand Procrustes-aligned error (mm)", "{:.2f}"),
    (HAND_AUC_0_80, f"Hand 3D PCK AUC, {threshold_range(metrics.THRESHOLDS_MM)} mm", "{:.3f}"),
    (
        HAND_KP_AUC_0_50,
        f"Hand joints' PCK AUC, {threshold_range(metrics.THRESHOLDS_KEYPOINT_MM)} mm (DexYCB, "
        "HO-3D)",
        "{:.3f}",
    ),
    (HAND_RR_KP_AUC_0_50, "the same, root-relative (DexYCB)", "{:.3f}"),
    (HAND_PA_KP_AUC_0_50, "the same, Procrustes-aligned", "{:.3f}"),
    (HAND_KP2D_MEAN_PX, "Hand 2D keypoint error, network image (px)", "{:.2f}"),
    (OBJECT_MEAN_MM, "Object mean corner error (mm)", "{:.2f}"),
    (OBJECT_MEAN_MM_SE, "its standard error over the frames (mm)", "{:.2f}"),
    (OBJECT_REPROJ_MEAN_PX, "Object 2D reprojection error (px)", "{:.2f}"),
    (
        OBJECT_2D_AUC_0_80,
        f"Object 2D correct-pose AUC, {threshold_range(metrics.THRESHOLDS_PX)} px",
        "{:.3f}",
    ),
    (OBJECT_KP2D_MEAN_PX, "Object 2D corner error, network image (px)", "{:.2f}"),
)
PLAUSIBILITY_ROWS: tuple[tuple[str, str, str], ...] = (
    (VALID_CONTACTS, "Valid contacts per frame", "{:.2f}"),
    (AFFINITY, "Affinity loss, Eq. 6 (lower: contacts spread around the axis)", "{:.3f}"),
    (PENETRATION_MM, "Deepest joint penetration into the box (mm)", "{:.2f}"),
    (GRASP_EPSILON, f"Grasp quality: Ferrari-Canny epsilon (mu = {MU})", "{:.4f}"),
    (FORCE_CLOSURE, "Force-closure frames (epsilon > 0)", "{:.1%}"),
    (CUBOID_MM, "Box corners' mean distance to the best-fitting cuboid (mm)", "{:.2f}"),
)
# The groups' tables (group_lines): the header of each column of hopose.scoring.GROUP_COLUMNS.
GROUP_HEADERS = {
    HAND_MM: "hand (mm)",
    HAND_RR_MM: "hand root-relative (mm)",
    HAND_PA_MM: "hand Procrustes (mm)",
    OBJECT_MM: "object (mm)",
    OBJECT_2D_PX: "object 2D (px)",
}
# The heading of the groups' section, in report.md and compare.md.
GROUP_SECTION = "## Results by group"
# The files an evaluation's report is written to, in its folder (figures under FIGURES_DIR).
PER_FRAME_FILE = "per_frame.csv"
PER_GROUP_FILE = "per_group.csv"
REPORT_FILE = "report.md"
FIGURES_DIR = "figures"
GALLERY_FIGURE = "gallery.png"
CONTACTS_FIGURE = "contacts.png"
HAND_PCK_LABELS = {
    "xlabel": "error threshold (mm)",
    "ylabel": "3D PCK (%)",
    "title": "Hand: frames with mean joint error ≤ threshold",
}
OBJECT_PCK_LABELS = {
    "xlabel": "error threshold (px)",
    "ylabel": "correct poses (%)",
    "title": "Object: frames with mean 2D corner error ≤ threshold",
}
# The PCK plots: file, error column, thresholds, AUC key, labels, colour of a lone run, title
# of the figure's link.
PCK_PLOTS = (
    ("hand_pck.png", HAND_MM, metrics.THRESHOLDS_MM, HAND_AUC_0_80, HAND_PCK_LABELS,
     viz.HAND_COLOUR["pred"], "Hand 3D PCK"),
    ("object_pck.png", OBJECT_2D_PX, metrics.THRESHOLDS_PX, OBJECT_2D_AUC_0_80,
     OBJECT_PCK_LABELS, viz.OBJECT_COLOUR["pred"], "Object 2D correct-pose rate"),
)  # fmt: skip
# The figures and the titles of their links: a comparison's (the PCK plots that
# _write_pck_figures draws), and a report's (those, then the frames').
PCK_FIGURES: tuple[tuple[str, str], ...] = tuple((name, title) for name, *_, title in PCK_PLOTS)
FIGURES: tuple[tuple[str, str], ...] = (
    *PCK_FIGURES,
    (GALLERY_FIGURE, "Best, median and worst frames"),
    (CONTACTS_FIGURE, "Contact points"),
)


def write_per_frame_csv(path: Path, columns: Mapping[str, NDArray]) -> Path:
    """Write ``id`` and the columns of :data:`hopose.scoring.COLUMNS` present, through
    :func:`hopose.files.write_atomic`.

    Each number is written exactly (Python's shortest repr of the float64), so that
    :func:`read_per_frame_csv` gives back the very columns and a comparison built from the file
    agrees with the report to the last digit; rounded cells (6 significant digits before) could
    move a mean across a rounding boundary of the tables."""
    names = [c for c in COLUMNS if c in columns]

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["id", *names])
            for k in range(len(columns["id"])):
                row = [repr(float(columns[c][k])) for c in names]
                writer.writerow([columns["id"][k], *row])

    return write_atomic(path, write)


def write_per_group_csv(
    path: Path, groups: Mapping[str, Mapping[str, Mapping[str, float]]]
) -> Path:
    """Write the groups of each grouping key (:func:`hopose.scoring.group_means` by key), a row
    per group: ``key``, ``group``, ``frames`` and the mean of each column of
    :data:`hopose.scoring.GROUP_COLUMNS`, each number exact (as :func:`write_per_frame_csv`),
    through :func:`hopose.files.write_atomic`."""

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["key", "group", GROUP_FRAMES, *GROUP_COLUMNS])
            for key, table in groups.items():
                for group, values in table.items():
                    means = [repr(float(values[c])) for c in GROUP_COLUMNS]
                    writer.writerow([key, group, values[GROUP_FRAMES], *means])

    return write_atomic(path, write)


def _cell_value(cell: str, column: str, where: str) -> float:
    """A number cell of ``per_frame.csv``; ``where`` is ``"<path>:<line>"`` for the error.

    "nan" is a number here: the writer writes it for a frame whose metric is undefined.
    """
    if not cell.strip():
        raise ValueError(f"{where}: column {column!r} is empty")
    try:
        return float(cell)
    except ValueError:
        raise ValueError(f"{where}: column {column!r}: {cell!r} is not a number") from None


def read_per_frame_csv(path: Path) -> dict[str, NDArray]:
    """Columns of a ``per_frame.csv``: ``id`` as str, the others as float64.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: one line naming the file: a file that is not UTF-8 CSV, or the line of a
            row with too few or too many cells, an empty cell or one that is not a number.
            A UTF-8 byte-order mark (a spreadsheet's export) is no part of the header.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (written by `hopose eval` without --no-report)")
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        try:
            header = next(reader, [])
            # Blank lines are skipped, as csv.DictReader does; line_num, not a row count, because
            # a quoted id may hold a newline.
            rows = [(reader.line_num, row) for row in reader if row]
        except (UnicodeDecodeError, csv.Error) as error:
            # Neither names the file: a binary or foreign-encoded file would be a mystery.
            raise ValueError(f"{path}: not a per_frame.csv of hopose eval ({error})") from None
    missing = [c for c in ("id", *ACCURACY_COLUMNS) if c not in header]
    if not rows or missing:
        raise ValueError(f"{path}: empty or missing columns {missing}")
    names = [c for c in COLUMNS if c in header]
    index = {c: header.index(c) for c in ("id", *names)}
    columns = {c: np.empty(len(rows)) for c in names}
    for k, (line, row) in enumerate(rows):
        where = f"{path}:{line}"
        if len(row) != len(header):
            raise ValueError(f"{where}: {len(row)} cells where the header has {len(header)}")
        for c in names:
            columns[c][k] = _cell_value(row[index[c]], c, where)
    return {"id": np.array([row[index["id"]] for _, row in rows]), **columns}


def _of_the_papers_frames(summary: Mapping[str, Any]) -> bool:
    """Whether a run's summary says it predicted FPHA-HO's test frames of the HOPE-Net split
    from the images, as the paper's networks did: all of them, or the first ``num``."""
    options = summary.get(OPTIONS) or {}
    return (
        summary.get(DATASET) == "fpha"
        and options.get("protocol") == HOPE_PROTOCOL
        and summary.get(SPLIT) == "test"
        and summary.get(PROTOCOL) == PROTOCOL_IMAGE
    )


def paper_comparable(summary: Mapping[str, Any]) -> bool:
    """Whether the paper's published Table 1 (:data:`PAPER_TABLE1`) may stand beside a run:
    its summary (``metrics.json``, :func:`hopose.evaluate.run_eval`) says it predicted
    every one of FPHA-HO's test frames of the HOPE-Net split from the images, as the paper's
    networks did (:data:`PAPER_PROTOCOL`), not the first ``num`` frames alone (``--num``) nor
    the split less frames left out as unreadable (:func:`_part_of_the_papers_split`). The one
    rule of the report and of ``hopose compare``; False for a summary that does not say so (an
    older ``metrics.json``, or none)."""
    return _of_the_papers_frames(summary) and _part_of_the_papers_split(summary) is None


def _part_of_the_papers_split(summary: Mapping[str, Any]) -> str | None:
    """How a run of the paper's frames read part of the split, in words: the first ``num``
    frames it asked for, or the split less frames left out as unreadable; None for a run of
    all of it and for any other run. The summary's ``whole_split`` says whether the split was
    read whole; a summary of an older hopose without it is taken as cut where it scored as
    many frames as it asked for (``n``; one without its count is taken to), since a ``num``
    above the frames scored cut nothing but one equal to them may have."""
    num = summary.get(NUM)
    if (whole := summary.get(WHOLE_SPLIT)) is not None:
        cut = not whole
    else:
        cut = num is not None and summary.get(N_FRAMES, num) >= num
    if not (cut and _of_the_papers_frames(summary)):
        return None
    # Fewer frames scored than asked for: --num cut nothing; frames were left out as unreadable
    # (on_error: skip) or the cache read was prepared with fewer (the summary does not say which);
    # a cut by --num scores as many as it asked for.
    if num is None or summary.get(N_FRAMES, num) < num:
        return (
            "read fewer frames than the test split holds (frames left out as unreadable, "
            "`on_error: skip`, or a cache prepared with `--num`)"
        )
    return f"asked for the first {num} frames of the test split (`--num {num}`)"


def _partial_lines(who: str, part: str) -> list[str]:
    """Why the paper's figures do not stand beside ``who`` (a run's name in ``compare.md``, "this
    run" in its report), which read ``part`` of the paper's split
    (:func:`_part_of_the_papers_split`)."""
    return [
        f"The paper's figures are not comparable with {who}, which {part}, not all of it: they "
        f"are over the whole of {PAPER_PROTOCOL}.",
        "",
    ]


# A run's protocol in words (describe_run), by its summary's PROTOCOL; PROTOCOL_IMAGE has its
# own (_from_images).
PROTOCOL_WORDS = {
    PROTOCOL_GT_2D: "ground-truth 2D to the lifter",
    PROTOCOL_GT_BOX: "from ground-truth-box crops (squares around the true hand and box)",
}


def _from_images(summary: Mapping[str, Any]) -> str:
    """The words of the protocol :data:`~hopose.scoring.PROTOCOL_IMAGE`: whole frames in
    ``crop``'s geometry, or self-cropped."""
    crops = summary.get(SELF_CROP) or 0
    if not crops:
        return f"from the images ({summary.get(CROP)})"
    views = summary.get(SELF_CROP_VIEWS) or 1
    averaged = f", the last averaged over {views} views" if views > 1 else ""
    return f"from the images, self-cropped ({crops} crops{averaged})"


def describe_run(summary: Mapping[str, Any]) -> str | None:
    """How a run was evaluated, in words, from its summary (``metrics.json``): the dataset and
    split, their options not at their defaults, the protocol and the refinement, e.g. "fpha
    test split (protocol=action), ground-truth 2D to the lifter". None where the summary names
    no dataset (a folder with ``per_frame.csv`` alone, or predictions scored without the
    ``metrics.json`` of the evaluation that wrote them); a key an older ``metrics.json`` lacks
    is left out."""
    name = summary.get(DATASET)
    if name is None:
        return None
    defaults = option_defaults(name) if name in DATASETS else {}
    options = summary.get(OPTIONS) or {}
    chosen = ", ".join(
        f"{k}={v}" for k, v in options.items() if k not in defaults or v != defaults[k]
    )
    words = [f"{name} {summary.get(SPLIT)} split" + (f" ({chosen})" if chosen else "")]
    protocol = summary.get(PROTOCOL)
    if protocol is not None:
        how = PROTOCOL_WORDS.get(protocol, str(protocol))
        words.append(_from_images(summary) if protocol == PROTOCOL_IMAGE else how)
    if summary.get(REFINED):
        completed = " with grasp completion" if summary.get(GRASP_COMPLETED) else ""
        words.append(f"refined{completed}")
    if SCORED in summary:
        words.append(f"predictions scored from {summary[SCORED]}")
    return ", ".join(words)


# The entries of a metrics.json that are computed with, each with the values it may hold:
# ``hopose score`` carries the frames' over (:data:`hopose.evaluate.FRAME_KEYS`, the gallery's
# canvas ``image_size``), the report and ``hopose compare`` describe a run by them. read_summary
# refuses any other value, naming the file and the entry, before anything reads it. An entry a
# file lacks (an older hopose's) is not checked.
SUMMARY_ENTRIES: dict[str, JsonType] = {
    PROTOCOL: JsonType("a string", lambda value: isinstance(value, str)),
    CROP: JsonType("a string", lambda value: isinstance(value, str)),
    IMAGE_SIZE: JsonType(
        "a positive whole number", lambda value: is_whole_number(value) and value > 0
    ),
    DATASET: JsonType("a string", lambda value: isinstance(value, str)),
    SPLIT: JsonType("a string", lambda value: isinstance(value, str)),
    OPTIONS: JsonType("an object", lambda value: isinstance(value, dict)),
    SEED: JsonType("a whole number", is_whole_number),
    NUM: JsonType("a whole number or null", lambda value: value is None or is_whole_number(value)),
    WHOLE_SPLIT: JsonType(
        "true, false or null", lambda value: value is None or isinstance(value, bool)
    ),
    ROOT: JsonType("a path or null", lambda value: value is None or isinstance(value, str)),
    CACHE: JsonType("a path or null", lambda value: value is None or isinstance(value, str)),
}


def read_summary(folder: Path) -> dict[str, Any]:
    """The ``metrics.json`` of an evaluation's folder; empty where there is none (a folder of
    an older hopose with ``per_frame.csv`` alone).

    Raises:
        ValueError: one line naming the file, where it is not a JSON object, or an entry of
            :data:`SUMMARY_ENTRIES` holds another value (naming the entry).
    """
    path = folder / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{path}: not a metrics.json of hopose eval ({error})") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: not a metrics.json of hopose eval (not a JSON object)")
    mismatch = json_mismatch(summary, SUMMARY_ENTRIES)
    if mismatch is not None:
        raise ValueError(f"{path}: not a metrics.json of hopose eval ({mismatch})")
    return summary


def format_number(value: float | None, fmt: str) -> str:
    """A table cell: ``value`` formatted with ``fmt``, "–" where there is none (None: not
    computed; NaN: no frame has one), "inf" or "-inf" where a run diverged (docs/evaluation.md),
    so a diverged run is not mistaken for one without ground truth."""
    if value is None or np.isnan(value):
        return "–"
    return str(float(value)) if np.isinf(value) else fmt.format(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Markdown table lines, first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|:--" + "|--:" * (len(header) - 1) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def table1_lines(runs: Mapping[str, Mapping[str, float]], *, paper: bool) -> list[str]:
    """The paper's Table 1 layout: networks as columns, hand and object 3D error as rows."""
    header = ["Network"]
    hand, obj = ["Hand pose error (mm)"], ["Object pose error (mm)"]
    if paper:
        for name, (hand_mm, object_mm) in PAPER_TABLE1.items():
            header.append(f"{name} †")
            hand.append(f"{hand_mm:.2f}")
            obj.append(f"{object_mm:.2f}")
    for name, summary in runs.items():
        header.append(name)
        hand.append(format_number(summary[HAND_MEAN_MM], "{:.2f}"))
        obj.append(format_number(summary[OBJECT_MEAN_MM], "{:.2f}"))
    lines = markdown_table(header, [hand, obj])
    if paper:
        lines += ["", f"† Published in the paper's Table 1, protocol {PAPER_PROTOCOL}."]
    return lines


def metric_lines(runs: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Accuracy rows, one column per run."""
    rows = [
        # .get: a run scored from an older per_frame.csv lacks the joints' AUCs ("–").
        [label] + [format_number(s.get(key), fmt) for s in runs.values()]
        for key, label, fmt in ACCURACY_ROWS
    ]
    return markdown_table(["Metric", *runs], rows)


# The per-frame columns whose paired differences hopose compare lists, each with the summary key
# of its mean, whose accuracy row (ACCURACY_ROWS) gives the label.
DIFFERENCE_COLUMNS: tuple[tuple[str, str], ...] = (
    (HAND_MM, HAND_MEAN_MM),
    (OBJECT_MM, OBJECT_MEAN_MM),
)


def _difference_cell(difference: tuple[float, float] | None) -> str:
    if difference is None:
        return "– (other frames)"
    mean, se = difference
    if not np.isfinite(mean):
        return "–" if np.isnan(mean) else f"{mean:+}"  # both diverged, or one run alone
    return f"{mean:+.2f} ± {se:.2f}"


def difference_lines(columns: Mapping[str, Mapping[str, NDArray]]) -> list[str]:
    """Each later run minus the first, frame by frame: the mean difference ± its paired
    standard error (:func:`hopose.scoring.paired_difference`), one column per later run."""
    (base, first), *later = columns.items()
    labels = {key: label for key, label, _ in ACCURACY_ROWS}
    rows = [
        [labels[mean]] + [_difference_cell(paired_difference(first, c, column)) for _, c in later]
        for column, mean in DIFFERENCE_COLUMNS
    ]
    return markdown_table(["Metric", *(f"{name} - {base}" for name, _ in later)], rows)


def plausibility_lines(runs: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Plausibility rows: per run, the prediction's value, and ground truth's once at the end."""
    header = ["Metric", *(f"{name}: prediction" for name in runs), "ground truth"]
    first = next(iter(runs.values()))
    # .get: a run scored without plausibility (--no-plausibility) has none of these keys; "–".
    rows = [
        [label]
        + [format_number(s.get(plausibility_key("pred", name)), fmt) for s in runs.values()]
        + [format_number(first.get(plausibility_key("gt", name)), fmt)]
        for name, label, fmt in PLAUSIBILITY_ROWS
    ]
    return markdown_table(header, rows)


def _ranked_frames(columns: Mapping[str, NDArray], candidates: NDArray) -> list[tuple[str, int]]:
    """Best, median and worst of the candidate frames by mean error over all 29 keypoints
    (:func:`hopose.scoring.keypoint_mean_error`).

    Only frames with a finite error rank: a part without ground truth (NaN, a missing
    annotation) or a diverged prediction (inf) says nothing of how good the frame is. Where no
    candidate has a finite mean (a dataset without a part's ground truth), they rank by the
    hand's error, else the object's; where no candidate has either (a split without ground
    truth), the first, middle and last candidates show the predictions unranked."""
    hand, obj = columns[HAND_MM], columns[OBJECT_MM]
    for error in (keypoint_mean_error(columns), hand, obj):
        ranked = candidates[np.isfinite(error[candidates])]
        if ranked.size:
            order = ranked[np.argsort(error[ranked], kind="stable")]
            return [("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])]
    middle = candidates[len(candidates) // 2]
    return [("first", candidates[0]), ("middle", middle), ("last", candidates[-1])]


def _frame_title(rank: str, k: int, columns: Mapping[str, NDArray]) -> str:
    return (
        f"{rank}: {columns['id'][k]}\nhand {format_number(columns[HAND_MM][k], '{:.1f}')} mm, "
        f"object {format_number(columns[OBJECT_MM][k], '{:.1f}')} mm"
    )


def _gallery(
    predictions: Mapping[str, Any], columns: Mapping[str, NDArray], dataset, image_size: int
) -> Any:
    """The gallery figure of the frames :func:`_ranked_frames` picks."""
    frames = []
    for rank, k in _ranked_frames(columns, np.arange(len(columns["id"]))):
        frame = {
            "title": _frame_title(rank, k, columns),
            "image": None if dataset is None else np.asarray(dataset[int(k)]["image"]),
            "size": (image_size, image_size),
        }
        for key in ("hand_2d", "obj_2d", "hand_3d", "obj_3d"):
            for who in ("pred", "gt"):
                frame[f"{who}_{key}"] = np.asarray(predictions[f"{who}_{key}"][k], float)
        frames.append(frame)
    return viz.gallery_figure(frames)


def contact_panels(hand: NDArray, obj: NDArray, titles: Sequence[str]) -> list[dict[str, Any]]:
    """The contact analysis of each pose, as panels for :func:`hopose.viz.contacts_figure`.

    Args:
        hand: (P, 21, 3) joints, mm.
        obj: (P, 8, 3) box corners.
        titles: P panel titles; each gets the pose's count of valid contacts appended.

    Returns:
        P panels with the keys :func:`hopose.viz.draw_contacts` takes, numpy arrays.
    """
    hand_t = torch.as_tensor(np.asarray(hand), dtype=torch.float64)
    obj_t = torch.as_tensor(np.asarray(obj), dtype=torch.float64)
    pts, dirs, valid = contact_points(hand_t, obj_t, n_samples=N_SAMPLES, top_k=TOP_K, eta=ETA)
    upper, lower, _ = box_central_axis(obj_t)
    return [
        {
            "title": f"{title}: {int(valid[p].sum())} valid contacts",
            "hand": hand_t[p].numpy(),
            "obj": obj_t[p].numpy(),
            "contacts": pts[p].numpy(),
            "directions": dirs[p].numpy(),
            "valid": valid[p].numpy(),
            "axis": (upper[p].numpy(), lower[p].numpy()),
        }
        for p, title in enumerate(titles)
    ]


def _contacts(predictions: Mapping[str, Any], columns: Mapping[str, NDArray]) -> Any:
    """Contacts of the best, median and worst frames among those whose ground truth grasps."""
    # .get: without plausibility (--no-plausibility) there are no counts; every frame ranks.
    counts = columns.get(plausibility_key("gt", VALID_CONTACTS), np.zeros(len(columns["id"])))
    grasping = np.flatnonzero(counts >= 2)
    candidates = grasping if grasping.size else np.arange(len(columns["id"]))
    ranked = _ranked_frames(columns, candidates)
    index = [k for _, k in ranked]
    rows = []
    for who in ("pred", "gt"):
        titles = [f"{rank} ({viz.SOURCE_NAME[who]})" for rank, _ in ranked]
        hand = np.asarray(predictions[f"{who}_hand_3d"])[index]
        obj = np.asarray(predictions[f"{who}_obj_3d"])[index]
        rows.append((who, contact_panels(hand, obj, titles)))
    return viz.contacts_figure(rows)


def _write_pck_figures(
    figures: Path,
    columns: Mapping[str, Mapping[str, NDArray]],
    runs: Mapping[str, Mapping[str, float]],
    note: str | None = None,
) -> None:
    """Hand and object PCK plots with one curve per run; a lone run in the part's colour."""
    for name, column, thresholds, auc_key, labels, colour, _ in PCK_PLOTS:
        # A run without this part's ground truth has no AUC: "–", as the tables show it.
        curves = {
            f"{run} (AUC {format_number(runs[run][auc_key], '{:.3f}')})": metrics.pck_curve(
                c[column], thresholds
            )
            for run, c in columns.items()
        }
        colours = [colour] if len(curves) == 1 else viz.run_colours(len(curves))
        figure = viz.pck_figure(
            thresholds,
            curves,
            colours=colours,
            line_styles=viz.run_line_styles(len(curves)),
            note=note if column == HAND_MM else None,
            **labels,
        )
        viz.save_figure(figure, figures / name)


def _table1(runs: Mapping[str, Mapping[str, float]], beside: Collection[str]) -> list[str]:
    """Table 1 of the runs: the paper's published columns beside those ``beside`` names, the
    others in a table of their own without them."""
    paired = {name: summary for name, summary in runs.items() if name in beside}
    others = {name: summary for name, summary in runs.items() if name not in beside}
    lines = table1_lines(paired, paper=True) if paired else []
    if others:
        lines += [*([""] if lines else []), *table1_lines(others, paper=False)]
    return lines


def _tables(
    runs: Mapping[str, Mapping[str, float]],
    *,
    paper: Collection[str],
    notes: Sequence[str] = (),
) -> list[str]:
    """The Markdown sections with Table 1 (the paper's columns beside the runs ``paper``
    names, then the lines ``notes``), the accuracy and the plausibility tables."""
    return [
        "## Table 1: mean 3D error",
        "",
        *_table1(runs, paper),
        "",
        *notes,
        "## Accuracy",
        "",
        *metric_lines(runs),
        "",
        "## Physical plausibility",
        "",
        "Computed the same way on the predicted and the ground-truth poses "
        "(definitions in docs/evaluation.md); – where not computed (`--no-plausibility`).",
        "",
        *plausibility_lines(runs),
        "",
    ]


def _difference_section(columns: Mapping[str, Mapping[str, NDArray]]) -> list[str]:
    """The paired differences to the first run, where there is more than one run."""
    if len(columns) < 2:
        return []
    return [
        "## Differences to the first run on the same frames",
        "",
        "Mean per-frame difference ± its paired standard error: the frames' sampling only, not "
        "what another training seed would move (docs/evaluation.md).",
        "",
        *difference_lines(columns),
        "",
    ]


def group_lines(groups: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[str]:
    """The section of the groups (:func:`hopose.scoring.group_means` by grouping key): a table
    per key, a row per group with its frames and mean errors; none without groups."""
    if not groups:
        return []
    lines = [
        GROUP_SECTION,
        "",
        "Each group's frames and mean errors, over its frames with ground truth "
        '(docs/evaluation.md, "Results by group"); also in [per_group.csv](per_group.csv).',
        "",
    ]
    header = [GROUP_FRAMES, *(GROUP_HEADERS[column] for column in GROUP_COLUMNS)]
    for key, table in groups.items():
        rows = [
            [group, str(values[GROUP_FRAMES])]
            + [format_number(values[column], "{:.2f}") for column in GROUP_COLUMNS]
            for group, values in table.items()
        ]
        lines += [*markdown_table([key, *header], rows), ""]
    return lines


def _group_comparison(
    columns: Mapping[str, Mapping[str, NDArray]], summaries: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """``hopose compare``'s groups: where every run's ``metrics.json`` names one dataset with
    groups (:data:`hopose.scoring.GROUP_KEYS`), a table per grouping key, a row per group (in
    the order of their names, numbers read as numbers) with each run's mean hand and object
    errors over its frames of the group; none otherwise. Where a run's ids are not the
    dataset's, no table, and the section says which run; where the runs are of other frames,
    it says that each mean is over its own run's."""
    # Each a name or None: read_summary refuses a metrics.json whose dataset is neither.
    datasets = {summary.get(DATASET) for summary in summaries.values()}
    dataset = datasets.pop() if len(datasets) == 1 else None
    if dataset not in GROUP_KEYS:
        return []
    lines = [GROUP_SECTION, "", "Each run's mean errors over each group's frames.", ""]
    runs = {}
    for name, table in columns.items():
        try:
            runs[name] = dataset_groups(table, dataset)
        except ValueError as error:
            return [*lines, f"No groups ({name}): {error}.", ""]
    # Per grouping key, each run's groups.
    groups = {key: {name: runs[name][key] for name in runs} for key in GROUP_KEYS[dataset]}
    ids = [np.asarray(table["id"]).astype(str) for table in columns.values()]
    if any(len(i) != len(ids[0]) or (i != ids[0]).any() for i in ids[1:]):
        lines += ["The runs are of other frames: each mean is over its own run's (– none).", ""]
    names = list(columns)
    header = [f"{name} {part} (mm)" for part in ("hand", "object") for name in names]
    for key, by_run in groups.items():
        order = sorted({group for table in by_run.values() for group in table}, key=natural_order)
        rows = [
            [group]
            + [
                format_number(by_run[name].get(group, {}).get(column), "{:.2f}")
                for column in (HAND_MM, OBJECT_MM)
                for name in names
            ]
            for group in order
        ]
        lines += [*markdown_table([key, *header], rows), ""]
    return lines


def _figure_lines(figures: Sequence[tuple[str, str]]) -> list[str]:
    return ["## Figures", "", *(f"![{title}]({FIGURES_DIR}/{name})\n" for name, title in figures)]


def remove_report(out_dir: Path) -> None:
    """Delete the files :func:`write_report` writes from ``out_dir``, where an earlier evaluation
    left them: an evaluation that writes no report (or one without some figure) must not leave
    another run's beside its own ``metrics.json``, where ``hopose compare`` would read them. Only
    these names are touched."""
    for name in (PER_FRAME_FILE, PER_GROUP_FILE, REPORT_FILE):
        (out_dir / name).unlink(missing_ok=True)
    for name, _ in FIGURES:
        (out_dir / FIGURES_DIR / name).unlink(missing_ok=True)


def write_report(
    out_dir: str | Path,
    predictions: Mapping[str, Any],
    summary: Mapping[str, Any],
    *,
    image_size: int,
    dataset=None,
    columns: Mapping[str, NDArray] | None = None,
) -> Path:
    """Write ``per_frame.csv``, ``per_group.csv`` (a dataset with groups), ``figures/*.png``
    and ``report.md`` into ``out_dir``: what ``hopose eval`` and ``hopose score`` write
    (:func:`hopose.evaluate.write_scores`), and the same again from an evaluation's folder
    (its ``predictions.npz`` and ``metrics.json``).

    Args:
        out_dir: the evaluation's folder (created if missing).
        predictions: the arrays ``hopose eval`` collects: ``{pred,gt}_hand_3d`` (N, 21, 3),
            ``{pred,gt}_obj_3d`` (N, 8, 3) in mm, ``{pred,gt}_hand_2d`` (N, 21, 2),
            ``{pred,gt}_obj_2d`` (N, 8, 2) in pixels of the network image, ``K`` (N, 3, 3),
            optionally ``orig_K`` (N, 3, 3), and ``id`` (N,).
        summary: ``metrics.json``'s content; its entries that describe the run (checkpoint,
            split, versions, ...: all but :data:`hopose.scoring.SCORE_KEYS` and ``unrefined``)
            are listed under "Run", its scores are recomputed from the frames. It names the
            protocol in words (:func:`describe_run`); its ``protocol`` says which arrays are
            scored (:func:`hopose.scoring.frame_metrics`), its ``dataset`` how the frames group
            (:data:`hopose.scoring.GROUP_KEYS`), and whether the paper's published Table 1
            (:data:`PAPER_TABLE1`) stands beside the run as reference columns
            (:func:`paper_comparable`; a run of the first frames of the paper's split says why
            it does not).
        image_size: the side of the network's square image (``data.image_size``), in whose
            pixels the 2D is: the size of the gallery's blank canvas.
        dataset: the evaluated dataset, ``dataset[i]["image"]`` the network image of frame i;
            None draws the gallery on a blank canvas.
        columns: :func:`frame_metrics` of ``predictions`` under the summary's protocol if the
            caller already has them (the grasp-quality hulls are the slow part of an
            evaluation); computed when None, the plausibility where the summary holds its
            scores (not after ``--no-plausibility``).

    Returns:
        The path of ``report.md``.
    """
    out_dir = Path(out_dir)
    if columns is None:
        # Scored as the evaluation scored them: plausibility only where its summary holds some.
        plausibility = any(key in summary for key in PLAUSIBILITY_KEYS)
        columns = frame_metrics(
            predictions, protocol=summary.get(PROTOCOL), plausibility=plausibility
        )
    try:
        groups = dataset_groups(columns, summary.get(DATASET))
        by_group = group_lines(groups)
    except ValueError as error:
        # Ids that are not the dataset's (a scored file's own): no groups, and the report says
        # why rather than failing after the whole inference.
        groups, by_group = {}, [GROUP_SECTION, "", f"No groups: {error}.", ""]
    figures = out_dir / FIGURES_DIR
    figures.mkdir(parents=True, exist_ok=True)
    write_per_frame_csv(out_dir / PER_FRAME_FILE, columns)
    if groups:
        write_per_group_csv(out_dir / PER_GROUP_FILE, groups)
    runs = {"hopose": summarize(columns)}
    _write_pck_figures(figures, {"hopose": columns}, runs)
    viz.save_figure(_gallery(predictions, columns, dataset, image_size), figures / GALLERY_FIGURE)
    viz.save_figure(_contacts(predictions, columns), figures / CONTACTS_FIGURE)

    camera = "the dataset's original camera" if "orig_K" in predictions else "the network image"
    protocol = describe_run(summary) or "frames of unknown origin"
    lines = [
        "# hopose evaluation report",
        "",
        f"Protocol: **{protocol}**, {runs['hopose'][N_FRAMES]} frames. Object 2D errors are "
        f"measured in pixels of {camera}.",
        "",
    ]
    # Everything but the scores: what the run was and what reproduces it (hopose.evaluate).
    info = {k: v for k, v in summary.items() if k not in (*SCORE_KEYS, UNREFINED)}
    if info:
        cells = [[k, f"`{v if isinstance(v, str) else json.dumps(v)}`"] for k, v in info.items()]
        lines += ["## Run", "", *markdown_table(["", ""], cells), ""]
    unrefined = summary.get(UNREFINED)
    # After `hopose eval --refine`, the unrefined prediction's scores stand beside the refined.
    table_runs = runs if unrefined is None else {"refined": runs["hopose"], "unrefined": unrefined}
    paper = paper_comparable(summary)
    part = None if paper else _part_of_the_papers_split(summary)
    notes = [] if part is None else _partial_lines("this run", part)
    lines += _tables(table_runs, paper=table_runs if paper else (), notes=notes)
    lines += by_group
    lines += _figure_lines(FIGURES)
    lines += ["Per-frame values: [per_frame.csv](per_frame.csv).", ""]
    return write_text(out_dir / REPORT_FILE, "\n".join(lines))


def _not_comparable(paper: bool, names: Sequence[str]) -> list[str]:
    """Where the paper's figures were asked for, the runs they are not comparable with."""
    if not (paper and names):
        return []
    return [
        f"The paper's figures are not comparable with {', '.join(f'`{n}`' for n in names)}: "
        f"they were measured from the images on {PAPER_PROTOCOL}, which these runs' "
        f'{METRICS_FILE} do not say they evaluated (docs/evaluation.md, "Comparing runs").',
        "",
    ]


def compare_runs(
    run_dirs: Sequence[str | Path], out_dir: str | Path, *, paper: bool = False
) -> Path:
    """Several evaluations side by side: ``compare.md`` and ``figures/{hand,object}_pck.png``.

    Args:
        run_dirs: folders written by ``hopose eval`` or ``hopose score`` (each with
            ``per_frame.csv``, and ``metrics.json`` to say how it was evaluated: a folder
            without one still compares); a run is named by its folder's name, or its path
            where two names are the same.
        out_dir: where to write (created if missing).
        paper: add the paper's Table 1 as reference columns beside the runs comparable with it
            (:func:`paper_comparable`), saying that it is not for the others (and why, for a
            run of the first frames of the paper's split), and its hand
            errors as a note on the hand PCK plot where a run is (the paper publishes no curve
            values, only figures).

    Returns:
        The path of ``compare.md``.
    """
    if not run_dirs:
        raise ValueError("compare_runs: give at least one run folder")
    resolved = [Path(d).resolve() for d in run_dirs]
    repeated = sorted(
        {str(d) for d, r in zip(run_dirs, resolved, strict=True) if resolved.count(r) > 1}
    )
    if repeated:
        raise ValueError(f"compare: {', '.join(repeated)} given more than once")
    if Path(out_dir).resolve() in resolved:
        # Its figures would be replaced by the comparison's, under its own report.md's links.
        raise ValueError(f"--out: {out_dir} is one of the compared runs; choose another folder")
    names = [Path(d).name for d in run_dirs]
    if len(set(names)) < len(names):
        names = [str(d) for d in run_dirs]
    folders = dict(zip(names, run_dirs, strict=True))
    columns = {name: read_per_frame_csv(Path(d) / PER_FRAME_FILE) for name, d in folders.items()}
    runs = {name: summarize(c) for name, c in columns.items()}
    summaries = {name: read_summary(Path(d)) for name, d in folders.items()}
    comparable = [name for name in names if paper and paper_comparable(summaries[name])]
    # Runs of part of the paper's frames, each with which part.
    partial = {
        name: part
        for name in names
        if paper and (part := _part_of_the_papers_split(summaries[name])) is not None
    }

    out_dir = output_folder(out_dir)
    note = None
    if comparable:
        note = "Paper Table 1, mean hand error:\n" + "\n".join(
            f"{name}: {hand:.2f} mm" for name, (hand, _) in PAPER_TABLE1.items()
        )
    _write_pck_figures(out_dir / FIGURES_DIR, columns, runs, note)
    unknown = {True: f"its {METRICS_FILE} names no dataset", False: f"no {METRICS_FILE}"}
    described = {
        name: describe_run(summary) or f"how it was evaluated is unknown ({unknown[bool(summary)]})"
        for name, summary in summaries.items()
    }
    lines = [
        "# hopose comparison",
        "",
        "Runs:",
        "",
        *(f"- `{d}` ({runs[n][N_FRAMES]} frames): {described[n]}" for n, d in folders.items()),
        "",
        *_tables(runs, paper=comparable),
        "Ground truth is that of the first run.",
        "",
        *_not_comparable(paper, [n for n in names if n not in comparable and n not in partial]),
        *(line for name, part in partial.items() for line in _partial_lines(f"`{name}`", part)),
        *_difference_section(columns),
        *_group_comparison(columns, summaries),
        *_figure_lines(PCK_FIGURES),
    ]
    return write_text(out_dir / "compare.md", "\n".join(lines))
