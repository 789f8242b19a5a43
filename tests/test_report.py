"""The evaluation report and the comparison of runs (hopose.report, ``hopose compare``)."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from eval_cases import IMAGE_SIZE, make_dataset, make_predictions
from hopose import metrics, viz
from hopose.cli import main
from hopose.report import (
    FIGURES,
    HAND_PCK_LABELS,
    OBJECT_PCK_LABELS,
    PAPER_TABLE1,
    _contacts,
    _gallery,
    _ranked_frames,
    compare_runs,
    format_number,
    metric_lines,
    paper_comparable,
    plausibility_lines,
    read_per_frame_csv,
    read_summary,
    remove_report,
    table1_lines,
    write_per_frame_csv,
    write_report,
)
from hopose.scoring import (
    ACCURACY_COLUMNS,
    COLUMNS,
    GROUP_COLUMNS,
    HAND_AUC_0_80,
    HAND_KP2D_MEAN_PX,
    HAND_MEAN_MM,
    HAND_MEAN_MM_SE,
    HAND_MM,
    HAND_PA_KP_AUC_0_50,
    HAND_PROCRUSTES_MM,
    HAND_ROOT_RELATIVE_MM,
    HAND_RR_KP_AUC_0_50,
    KEYPOINT_AUC_COLUMNS,
    OBJECT_2D_AUC_0_80,
    OBJECT_KP2D_MEAN_PX,
    OBJECT_MEAN_MM,
    OBJECT_MEAN_MM_SE,
    OBJECT_MM,
    OBJECT_REPROJ_MEAN_PX,
    VALID_CONTACTS,
    frame_metrics,
    plausibility_columns,
    plausibility_key,
    summarize,
)

# Writing the two reports of the fixture (eight figures, four with 3D panels) takes ~5 s.
pytestmark = pytest.mark.slow


# metrics.json of runs evaluated so (hopose.evaluate.run_eval's entries that say how).
FPHA_HOPE = {"dataset": "fpha", "split": "test", "options": {"protocol": "hope", "margin": 0.2}}
FPHA_FROM_IMAGES = {**FPHA_HOPE, "protocol": "image", "crop": "resize", "self_crop": 0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two evaluations of 4 frames: one with images, of the paper's frames from the images (its
    summary says), one without images or a summary."""
    root = tmp_path_factory.mktemp("runs")
    first = make_predictions(4, seed=0)
    second = make_predictions(4, seed=1)
    # Its summary holds the scores, plausibility included, as hopose eval writes them.
    summary = {**FPHA_FROM_IMAGES, "checkpoint": "runs/demo/last.pt"}
    summary |= summarize(frame_metrics(first))
    write_report(root / "a", first, summary, image_size=IMAGE_SIZE, dataset=make_dataset(4))
    write_report(
        root / "b", second, {}, image_size=IMAGE_SIZE, dataset=None,
        columns=frame_metrics(second),
    )  # fmt: skip
    return root, first, second


def test_per_frame_csv_matches_metrics(runs):
    root, predictions, _ = runs
    with (root / "a" / "per_frame.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == ("id", *COLUMNS)
    assert [row["id"] for row in rows] == list(predictions["id"])
    columns = read_per_frame_csv(root / "a" / "per_frame.csv")
    p = predictions
    expected = {
        "hand_mm": metrics.per_frame_error(p["pred_hand_3d"], p["gt_hand_3d"]),
        "object_mm": metrics.per_frame_error(p["pred_obj_3d"], p["gt_obj_3d"]),
        "hand_rr_mm": metrics.root_relative_error(p["pred_hand_3d"], p["gt_hand_3d"]),
        "hand_pa_mm": metrics.procrustes_error(p["pred_hand_3d"], p["gt_hand_3d"]),
        # The object's 2D error in the original 1920 x 1080 camera, not the 224 x 224 one.
        "object_2d_px": metrics.reprojection_error(p["pred_obj_3d"], p["gt_obj_3d"], p["orig_K"]),
        "hand_kp2d_px": metrics.per_frame_error(p["pred_hand_2d"], p["gt_hand_2d"]),
        "hand_kp_auc": metrics.keypoint_auc(p["pred_hand_3d"], p["gt_hand_3d"]),
        "hand_rr_kp_auc": metrics.keypoint_auc(p["pred_hand_3d"], p["gt_hand_3d"], "root"),
        "hand_pa_kp_auc": metrics.keypoint_auc(p["pred_hand_3d"], p["gt_hand_3d"], "procrustes"),
        **plausibility_columns(p),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(columns[name], values, rtol=1e-5, atol=1e-9, err_msg=name)


def test_report_tables_name_protocol_and_paper(runs):
    root, predictions, _ = runs
    text = (root / "a" / "report.md").read_text()
    assert "Protocol: **fpha test split, from the images (resize)**, 4 frames" in text
    assert "dataset's original camera" in text
    assert "`runs/demo/last.pt`" in text  # text entries of the summary are listed
    # Table 1 in the paper's layout: a row of hand errors with the published values first.
    hand_mean = metrics.per_frame_error(predictions["pred_hand_3d"], predictions["gt_hand_3d"])
    row = "| Hand pose error (mm) | 15.81 | 15.04 | 12.53 | " + f"{hand_mean.mean():.2f} |"
    assert row in text
    assert "FPHA-HO, HOPE-Net split" in text
    for label in ("Hand Procrustes-aligned error", "Hand 3D PCK AUC, 0-80 mm", "Ferrari-Canny"):
        assert label in text
    # Every figure is linked by a relative path and exists as a sizeable PNG.
    for name, _ in FIGURES:
        assert f"](figures/{name})" in text
        with Image.open(root / "a" / "figures" / name) as image:
            assert min(image.size) >= 300


def _linked_figures(text: str) -> set[str]:
    """The file names of the figures a report or comparison links, under figures/."""
    return set(re.findall(r"\]\(figures/([^)]+)\)", text))


def test_a_report_links_exactly_the_figures_it_writes_and_removes_them_all(runs, tmp_path):
    """report.md links every figure in figures/ and no other; remove_report deletes them all,
    with per_frame.csv and report.md, so no file of an earlier evaluation survives."""
    root, _, _ = runs
    written = {p.name for p in (root / "a" / "figures").iterdir()}
    assert _linked_figures((root / "a" / "report.md").read_text()) == written
    run = shutil.copytree(root / "a", tmp_path / "a")  # the fixture's folder stays whole
    remove_report(run)
    assert sorted(p.name for p in run.rglob("*") if p.is_file()) == []


def test_report_numbers_are_hand_computed(tmp_path):
    # The hand of eval_cases' grasp shifted by (3, 4, 0) mm, the box exact: every joint is
    # sqrt(3^2 + 4^2) = 5 mm off, every corner 0 mm. Its ground truth (eval_cases docstring):
    # 10 valid contacts, affinity 13/45 = 0.289, no penetration, force closure in every frame,
    # an exact cuboid.
    predictions = make_predictions(2)
    predictions["pred_hand_3d"] = predictions["gt_hand_3d"] + np.array([3.0, 4.0, 0.0])
    predictions["pred_obj_3d"] = predictions["gt_obj_3d"].copy()
    columns = frame_metrics(predictions)
    text = write_report(
        tmp_path, predictions, FPHA_FROM_IMAGES, image_size=IMAGE_SIZE, columns=columns
    ).read_text()
    assert "| Hand pose error (mm) | 15.81 | 15.04 | 12.53 | 5.00 |" in text
    assert "| Object pose error (mm) | 24.89 | 21.33 | 19.09 | 0.00 |" in text
    assert "| Object 2D reprojection error (px) | 0.00 |" in text
    assert "| Valid contacts per frame | " in text and "| 10.00 |" in text
    assert "(lower: contacts spread around the axis) |" in text and "| 0.289 |" in text
    assert "| Force-closure frames (epsilon > 0) | " in text and "| 100.0% |" in text
    assert "| Box corners' mean distance to the best-fitting cuboid (mm) | 0.00 | 0.00 |" in text


def test_report_without_plausibility_leaves_its_rows_empty(tmp_path):
    predictions = make_predictions(2)
    columns = frame_metrics(predictions, plausibility=False)
    text = write_report(tmp_path, predictions, {}, image_size=IMAGE_SIZE, columns=columns)
    text = text.read_text()
    assert "| Valid contacts per frame | – | – |" in text
    written = read_per_frame_csv(tmp_path / "per_frame.csv")
    assert "pred_grasp_epsilon" not in written and "hand_mm" in written


def test_a_diverged_run_shows_inf_and_a_run_without_a_value_a_dash():
    # None (not computed) and NaN (no frame has ground truth) have no value: "–". An infinite
    # mean (a diverged prediction, docs/evaluation.md) is a value, and must not look like them.
    cells = [format_number(v, "{:.2f}") for v in (None, np.nan, np.inf, -np.inf, 12.5, 0.0)]
    assert cells == ["–", "–", "inf", "-inf", "12.50", "0.00"]
    assert format_number(0.25, "{:.1%}") == "25.0%"
    # In a table: the first run diverged on the hand and has no object ground truth.
    summaries = {
        "a": {HAND_MEAN_MM: np.inf, OBJECT_MEAN_MM: np.nan},
        "b": {HAND_MEAN_MM: 10.0, OBJECT_MEAN_MM: 20.0},
    }
    lines = table1_lines(summaries, paper=False)
    assert lines[2:] == [
        "| Hand pose error (mm) | inf | 10.00 |",
        "| Object pose error (mm) | – | 20.00 |",
    ]


def test_report_without_images_or_a_summary_names_no_protocol(runs):
    root, _, second = runs
    # Its columns were computed by the caller and passed in: written as given.
    written = read_per_frame_csv(root / "b" / "per_frame.csv")
    np.testing.assert_allclose(written["hand_mm"], frame_metrics(second)["hand_mm"], rtol=1e-5)
    text = (root / "b" / "report.md").read_text()
    assert "Protocol: **frames of unknown origin**" in text
    assert "## Run" not in text  # no text entries in its summary
    # Not the paper's frames: its Table 1 holds this run alone, without the published columns.
    hand_mean = metrics.per_frame_error(second["pred_hand_3d"], second["gt_hand_3d"])
    assert f"| Hand pose error (mm) | {hand_mean.mean():.2f} |" in text
    assert "12.53" not in text and "Published in the paper" not in text
    assert (root / "b" / "figures" / "gallery.png").stat().st_size > 10_000


def test_read_per_frame_csv_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"per_frame\.csv"):
        read_per_frame_csv(tmp_path / "per_frame.csv")
    (tmp_path / "per_frame.csv").write_text("id,hand_mm\nx,1.0\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_per_frame_csv(tmp_path / "per_frame.csv")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfeid,hand_mm\n", "'utf-8' codec can't decode byte 0xff in position 0"),
        (b"id,hand_mm\n" + b"x" * 200_000 + b",1\n", "field larger than field limit (131072)"),
    ],
    ids=["utf-16", "huge-cell"],
)
def test_a_per_frame_csv_that_is_no_utf8_csv_is_one_line_naming_the_file(
    tmp_path, content, problem
):
    # The decoder's and the csv module's own errors named no file.
    path = tmp_path / "per_frame.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        read_per_frame_csv(path)
    message = str(info.value)
    assert (
        message.startswith(f"{path}: not a per_frame.csv of hopose eval (") and problem in message
    )
    assert "\n" not in message


def test_frames_without_an_error_over_all_keypoints_do_not_rank(tmp_path):
    # Errors grow with the frame (make_predictions). Frame 0, the best, lacks its box's
    # annotation: its mean over the 29 keypoints is NaN, which was ranked the worst frame.
    predictions = make_predictions(5)
    predictions["gt_obj_3d"][0] = np.nan
    ranked = _ranked_frames(frame_metrics(predictions, plausibility=False), np.arange(5))
    assert ranked == [("best", 1), ("median", 3), ("worst", 4)]
    # No frame has the box's ground truth (a hand-only split): ranked by the hand's error.
    predictions["gt_obj_3d"][:] = np.nan
    ranked = _ranked_frames(frame_metrics(predictions, plausibility=False), np.arange(5))
    assert ranked == [("best", 0), ("median", 2), ("worst", 4)]
    # Nothing to rank by (a split without ground truth): the first, middle and last frames show
    # the predictions, unranked, and the report draws and links both frame figures.
    predictions["gt_hand_3d"][:] = np.nan
    columns = frame_metrics(predictions, plausibility=False)
    assert _ranked_frames(columns, np.arange(5)) == [("first", 0), ("middle", 2), ("last", 4)]
    text = write_report(tmp_path, predictions, {}, image_size=IMAGE_SIZE, columns=columns)
    assert {"gallery.png", "contacts.png"} <= {p.name for p in (tmp_path / "figures").iterdir()}
    assert "figures/gallery.png" in text.read_text() and "figures/contacts.png" in text.read_text()


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        # A row cut short, as by a copy stopped half-way: 4 cells under a 6-column header.
        ("f1,1,2,3", "4 cells where the header has 6"),
        ("f1,1,,3,4,5", "column 'object_mm' is empty"),
        ("f1,1,2,abc,4,5", "column 'hand_rr_mm': 'abc' is not a number"),
    ],
)
def test_a_bad_row_of_per_frame_csv_is_one_line_naming_file_and_line(tmp_path, bad_row, message):
    path = tmp_path / "per_frame.csv"
    # Header on line 1, a good row on line 2, the bad one on line 3.
    path.write_text("\n".join([",".join(["id", *ACCURACY_COLUMNS]), "f0,1,2,3,4,5", bad_row]))
    with pytest.raises(ValueError) as info:
        read_per_frame_csv(path)
    assert str(info.value) == f"{path}:3: {message}"


def test_a_per_frame_csv_with_a_utf8_byte_order_mark_reads_as_without_one(tmp_path):
    """A per_frame.csv saved again by a spreadsheet starts with a UTF-8 byte-order mark, which
    was read into the first column's name: "missing columns ['id']"."""
    text = "\n".join([",".join(["id", *ACCURACY_COLUMNS]), "f0,1,2,3,4,5", "f1,6,7,8,9,10"])
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    plain.write_text(text, encoding="utf-8")
    marked.write_text(text, encoding="utf-8-sig")
    assert marked.read_bytes()[:3] == b"\xef\xbb\xbf"
    read, expected = read_per_frame_csv(marked), read_per_frame_csv(plain)
    assert list(read) == list(expected) == ["id", *ACCURACY_COLUMNS]
    for name, values in expected.items():
        np.testing.assert_array_equal(read[name], values, err_msg=name)


def test_per_frame_csv_round_trips(tmp_path):
    # Every float64 comes back exactly, full precision (1 / 3, pi) and infinity included; an
    # undefined metric (nan) stays nan. Ids with a comma and a quote survive the CSV quoting.
    names = (*ACCURACY_COLUMNS, "pred_grasp_epsilon")
    values = np.array(
        [
            [1.5, 0.0, -2.25, 123456.0, 1e-07, 1 / 3],
            [7.0, np.nan, 12.5, np.pi, np.inf, -0.0625],
        ]
    )
    columns = {"id": np.array(["a,b", 'say "c"']), **dict(zip(names, values.T, strict=True))}
    path = write_per_frame_csv(tmp_path / "per_frame.csv", columns)
    assert [p.name for p in tmp_path.iterdir()] == ["per_frame.csv"]  # no temporary left
    read = read_per_frame_csv(path)
    assert list(read) == ["id", *names]
    for name, expected in columns.items():
        np.testing.assert_array_equal(read[name], expected, err_msg=name)


def test_a_comparison_read_from_per_frame_csv_has_the_reports_numbers(tmp_path):
    # Every frame 1.1349996 mm off: the report shows 1.13. Written to 6 significant digits
    # the cell read "1.135", whose float (1.13500000000000000888) shows 1.14 in a comparison.
    columns = {
        "id": np.array(["f0", "f1"]),
        **{name: np.full(2, 1.1349996) for name in ACCURACY_COLUMNS},
    }
    read = read_per_frame_csv(write_per_frame_csv(tmp_path / "per_frame.csv", columns))
    assert summarize(read) == summarize(columns)
    assert f"{summarize(read)['hand_mean_mm']:.2f}" == "1.13"


def test_compare_runs_side_by_side(runs, tmp_path):
    root, first, second = runs
    path = compare_runs([root / "a", root / "b"], tmp_path / "cmp")
    text = path.read_text()
    means = [
        metrics.per_frame_error(p["pred_obj_3d"], p["gt_obj_3d"]).mean() for p in (first, second)
    ]
    assert f"| Object pose error (mm) | {means[0]:.2f} | {means[1]:.2f} |" in text
    assert "| Metric | a: prediction | b: prediction | ground truth |" in text
    # Both runs hold the same four frames: b minus a, frame by frame, and its paired se.
    differences = np.diff(
        [metrics.per_frame_error(p["pred_obj_3d"], p["gt_obj_3d"]) for p in (first, second)],
        axis=0,
    )[0]
    se = differences.std(ddof=1) / 2  # sqrt(4 frames)
    row = f"| Object mean corner error (mm) | {differences.mean():+.2f} ± {se:.2f} |"
    assert "| Metric | b - a |" in text and row in text
    assert not any(name in text for name in PAPER_TABLE1)
    for name in ("hand_pck.png", "object_pck.png"):
        with Image.open(tmp_path / "cmp" / "figures" / name) as image:
            assert min(image.size) >= 300
    # compare.md links the figures the comparison draws, not others of a report's.
    written = {p.name for p in (tmp_path / "cmp" / "figures").iterdir()}
    assert _linked_figures(text) == written == {"hand_pck.png", "object_pck.png"}


def _write_metrics(folder, **summary):
    (folder / "metrics.json").write_text(json.dumps(summary))


@pytest.mark.parametrize(
    ("entry", "value", "words"),
    [
        ("seed", True, "a whole number"),  # JSON's true is no number
        ("num", "2", "a whole number or null"),
        ("image_size", 0, "a positive whole number"),
        ("options", [], "an object"),
        ("whole_split", 1, "true, false or null"),
        ("root", 3, "a path or null"),
    ],
)
def test_read_summary_names_an_entry_of_another_type(tmp_path, entry, value, words):
    """An entry that hopose score, the report or hopose compare computes with, of another type:
    one line naming the file and the entry. Those run_eval writes as null are read."""
    written = {**FPHA_FROM_IMAGES, "image_size": 32, "seed": 0, "num": None, "whole_split": None,
               "root": None, "cache": None}  # fmt: skip
    _write_metrics(tmp_path, **written)
    assert read_summary(tmp_path) == written
    _write_metrics(tmp_path, **{**written, entry: value})
    why = f"{tmp_path / 'metrics.json'}: not a metrics.json of hopose eval ({entry} is "
    with pytest.raises(ValueError, match=re.escape(f"{why}{json.dumps(value)}, not {words})")):
        read_summary(tmp_path)


def test_compare_describes_each_run_and_sets_the_paper_beside_the_comparable_ones(tmp_path, capsys):
    """compare.md says how each run was evaluated (its metrics.json: dataset, split, options
    not at their defaults, protocol, refinement; a folder of per_frame.csv alone still
    compares), and --paper puts the published Table 1 beside the run of FPHA-HO's HOPE-Net
    test split from the images alone, saying it is not comparable with the others."""
    ids = ["f0", "f1"]
    image = _write_run(tmp_path / "image", ids, [10, 12], [20, 22])  # means 11, 21
    _write_metrics(image, **FPHA_FROM_IMAGES, hand_mean_mm=99.0)  # scores come from the csv
    gt_2d = _write_run(tmp_path / "gt_2d", ids, [4, 6], [8, 10])  # means 5, 9
    _write_metrics(gt_2d, **FPHA_HOPE, protocol="gt_2d", refined=True, grasp_completed=True)
    synthetic = _write_run(tmp_path / "synthetic", ids, [1, 3], [2, 4])  # means 2, 3
    _write_metrics(
        synthetic, dataset="synthetic", split="test", protocol="image", crop="resize",
        self_crop=2, self_crop_views=7, options={"focal_scale": 1.6, "free_fraction": 0.2},
    )  # fmt: skip
    old = _write_run(tmp_path / "old", ids, [2, 2], [3, 3])  # an older folder: no metrics.json
    out = tmp_path / "cmp"
    runs = [str(image), str(gt_2d), str(synthetic), str(old)]
    assert main(["compare", *runs, "--out", str(out), "--paper"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "compare.md")
    lines = (out / "compare.md").read_text().splitlines()
    assert lines[4:8] == [
        f"- `{image}` (2 frames): fpha test split, from the images (resize)",
        f"- `{gt_2d}` (2 frames): fpha test split, ground-truth 2D to the lifter, refined with "
        "grasp completion",
        f"- `{synthetic}` (2 frames): synthetic test split (focal_scale=1.6), from the images, "
        "self-cropped (2 crops, the last averaged over 7 views)",
        f"- `{old}` (2 frames): how it was evaluated is unknown (no metrics.json)",
    ]
    published = " | ".join(f"{name} †" for name in PAPER_TABLE1)
    assert f"| Network | {published} | image |" in lines
    assert "| Hand pose error (mm) | 15.81 | 15.04 | 12.53 | 11.00 |" in lines
    # The others in a Table 1 of their own, no published column beside them.
    assert "| Network | gt_2d | synthetic | old |" in lines
    assert "| Object pose error (mm) | 9.00 | 3.00 | 3.00 |" in lines
    assert (
        "The paper's figures are not comparable with `gt_2d`, `synthetic`, `old`: they were "
        "measured from the images on FPHA-HO, HOPE-Net split (5,040 test frames)"
    ) in "\n".join(lines)


def test_compare_without_a_comparable_run_shows_no_published_column(tmp_path):
    """--paper with only runs the paper's figures are not comparable with: Table 1 holds the
    runs alone, and the note names them."""
    run = _write_run(tmp_path / "gt_2d", ["f0"], [4], [8])
    _write_metrics(run, **FPHA_HOPE, protocol="gt_2d")
    text = compare_runs([run], tmp_path / "cmp", paper=True).read_text()
    assert "| Network | gt_2d |" in text and "15.81" not in text
    assert "The paper's figures are not comparable with `gt_2d`" in text


def test_the_paper_is_comparable_only_with_fphas_hope_test_split_from_the_images():
    assert paper_comparable(FPHA_FROM_IMAGES)
    for changed in (
        {"dataset": "synthetic"},
        {"split": "val"},
        {"options": {"protocol": "action"}},
        {"protocol": "gt_2d"},
        {"protocol": "gt_box"},
        {"num": 3},  # the first 3 frames of the split (--num), not the paper's 5,040
        {"num": 3, "n": 3},
        {"num": 3, "n": 3, "whole_split": False},
        # As many as the split holds, in a metrics.json without whole_split (an older
        # hopose's): it cannot tell that from a cut.
        {"num": 5040, "n": 5040},
        # --num cut the split, whatever n says.
        {"num": 6000, "n": 5040, "whole_split": False},
        # Every frame asked for, some left out as unreadable (on_error: skip).
        {"num": None, "n": 5000, "whole_split": False},
    ):
        assert not paper_comparable(FPHA_FROM_IMAGES | changed), changed
    assert paper_comparable(FPHA_FROM_IMAGES | {"num": None})  # every frame, as run_eval says
    # More than the split holds: 5,040 scored of 6,000 asked, so --num cut nothing.
    assert paper_comparable(FPHA_FROM_IMAGES | {"num": 6000, "n": 5040})
    # As many as the split holds, and the evaluation says it read the split whole.
    assert paper_comparable(FPHA_FROM_IMAGES | {"num": 5040, "n": 5040, "whole_split": True})
    # An older metrics.json without the protocol or the options does not say so.
    assert not paper_comparable({k: v for k, v in FPHA_FROM_IMAGES.items() if k != "protocol"})
    assert not paper_comparable({k: v for k, v in FPHA_FROM_IMAGES.items() if k != "options"})


@pytest.fixture
def no_figures(monkeypatch):
    """Reports without their figures, drawn nor saved: the slow part of a report, which these
    tests of its tables do not read."""
    for name in ("pck_figure", "gallery_figure", "contacts_figure", "save_figure"):
        monkeypatch.setattr(viz, name, lambda *args, **kwargs: None)


def test_a_run_of_part_of_the_papers_split_stands_without_the_paper_saying_why(
    tmp_path, no_figures
):
    """A run of FPHA-HO's HOPE-Net test split from the images that scored only its first
    frames (--num: metrics.json's num) is not set beside the paper's Table 1, in compare.md
    or in its own report, and both say that the paper's figures are over the whole split."""
    whole = _write_run(tmp_path / "whole", ["f0", "f1"], [10, 12], [20, 22])
    _write_metrics(whole, **FPHA_FROM_IMAGES, num=None)
    part = _write_run(tmp_path / "part", ["f0", "f1"], [4, 6], [8, 10])
    _write_metrics(part, **FPHA_FROM_IMAGES, num=2)
    text = compare_runs([whole, part], tmp_path / "cmp", paper=True).read_text()
    published = " | ".join(f"{name} †" for name in PAPER_TABLE1)
    assert f"| Network | {published} | whole |" in text
    assert "| Network | part |" in text
    why = (
        "The paper's figures are not comparable with `part`, which asked for the first 2 "
        "frames of the test split (`--num 2`), not all of it: they are over the whole of "
        "FPHA-HO, HOPE-Net split (5,040 test frames)."
    )
    assert why in text
    # Every frame asked for, some left out as unreadable: not the whole split either.
    skipped = _write_run(tmp_path / "skipped", ["f0"], [4], [8])
    _write_metrics(skipped, **FPHA_FROM_IMAGES, num=None, whole_split=False)
    text = compare_runs([whole, skipped], tmp_path / "cmp2", paper=True).read_text()
    assert (
        "The paper's figures are not comparable with `skipped`, which read fewer frames than "
        "the test split holds (frames left out as unreadable, `on_error: skip`, or a cache "
        "prepared with `--num`), not all of it:"
    ) in text
    # A --num above what is left (1 frame scored of 10 asked for) cut nothing: the same why.
    _write_metrics(skipped, **FPHA_FROM_IMAGES, num=10, n=1, whole_split=False)
    text = compare_runs([whole, skipped], tmp_path / "cmp3", paper=True).read_text()
    assert "`skipped`, which read fewer frames than the test split holds" in text
    assert "`whole`" not in text.split("## Table 1")[1]  # the whole split's run is comparable

    predictions = make_predictions(2)
    summary = {**FPHA_FROM_IMAGES, "num": 2}
    report = write_report(
        tmp_path / "report", predictions, summary, image_size=IMAGE_SIZE,
        columns=frame_metrics(predictions, plausibility=False),
    ).read_text()  # fmt: skip
    assert "15.81" not in report
    assert why.replace("`part`", "this run") in report


def test_a_report_breaks_its_errors_down_by_the_datasets_groups(tmp_path, no_figures):
    """An FPHA report has a table per grouping key (subject, action) with each group's frames
    and mean errors, and per_group.csv holds the same numbers exactly; remove_report deletes
    it. A dataset without groups (synthetic) has neither, nor do ids that are not the
    dataset's, which the report says."""
    predictions = make_predictions(4)
    predictions["id"] = np.array([
        "fpha/Subject_1/open_milk/1/0000", "fpha/Subject_1/close_milk/1/0000",
        "fpha/Subject_2/open_milk/1/0000", "fpha/Subject_2/close_milk/2/0000",
    ])  # fmt: skip
    columns = frame_metrics(predictions, plausibility=False)
    columns |= {name: np.ones(4) for name in GROUP_COLUMNS}
    columns[HAND_MM] = np.array([2.0, 10.0, 4.0, 20.0])
    columns[OBJECT_MM] = np.array([1.0, 5.0, 3.0, 7.0])
    summary = {"dataset": "fpha", "split": "test"}
    text = write_report(
        tmp_path / "fpha", predictions, summary, image_size=IMAGE_SIZE, columns=columns
    ).read_text()
    header = (
        "| frames | hand (mm) | hand root-relative (mm) | hand Procrustes (mm) | object (mm) "
        "| object 2D (px) |"
    )
    lines = text.splitlines()
    start = lines.index(f"| subject {header}")
    # Subject_1: frames 0, 1: hand (2 + 10) / 2 = 6, object (1 + 5) / 2 = 3; Subject_2:
    # frames 2, 3: hand (4 + 20) / 2 = 12, object (3 + 7) / 2 = 5.
    assert lines[start + 2 : start + 4] == [
        "| Subject_1 | 2 | 6.00 | 1.00 | 1.00 | 3.00 | 1.00 |",
        "| Subject_2 | 2 | 12.00 | 1.00 | 1.00 | 5.00 | 1.00 |",
    ]
    start = lines.index(f"| action {header}")
    # close_milk: frames 1, 3: hand (10 + 20) / 2 = 15, object (5 + 7) / 2 = 6; open_milk:
    # frames 0, 2: hand (2 + 4) / 2 = 3, object (1 + 3) / 2 = 2.
    assert lines[start + 2 : start + 4] == [
        "| close_milk | 2 | 15.00 | 1.00 | 1.00 | 6.00 | 1.00 |",
        "| open_milk | 2 | 3.00 | 1.00 | 1.00 | 2.00 | 1.00 |",
    ]
    with (tmp_path / "fpha" / "per_group.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == ("key", "group", "frames", *GROUP_COLUMNS)
    assert [(r["key"], r["group"], r["frames"], r[HAND_MM], r[OBJECT_MM]) for r in rows] == [
        ("subject", "Subject_1", "2", "6.0", "3.0"),
        ("subject", "Subject_2", "2", "12.0", "5.0"),
        ("action", "close_milk", "2", "15.0", "6.0"),
        ("action", "open_milk", "2", "3.0", "2.0"),
    ]
    remove_report(tmp_path / "fpha")
    assert not (tmp_path / "fpha" / "per_group.csv").exists()

    synthetic = write_report(
        tmp_path / "synthetic", predictions, {"dataset": "synthetic"}, image_size=IMAGE_SIZE,
        columns=columns,
    ).read_text()  # fmt: skip
    assert "| frames |" not in synthetic and not (tmp_path / "synthetic" / "per_group.csv").exists()
    columns["id"] = predictions["id"] = np.array(["f0", "f1", "f2", "f3"])
    foreign = write_report(
        tmp_path / "foreign", predictions, summary, image_size=IMAGE_SIZE, columns=columns
    ).read_text()
    assert "No groups: id 'f0' has no subject (not an id of fpha's frames)." in foreign
    assert "| frames |" not in foreign and not (tmp_path / "foreign" / "per_group.csv").exists()


def test_a_reports_run_table_lists_what_reproduces_it_but_not_the_scores(tmp_path, monkeypatch):
    """The "Run" table lists every entry of the summary that is not a score, numbers and
    nothing included (seed, num, root, device, ...), and none of the scores."""
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: None)
    predictions = make_predictions(2)
    columns = frame_metrics(predictions, plausibility=False)
    scores = summarize(columns)
    summary = {
        **scores, "unrefined": scores, "dataset": "synthetic", "seed": 3, "num": 2,
        "root": None, "options": {"focal_scale": 1.0}, "hopose_version": "0.1.0",
        "device": "cuda:0 (NVIDIA H200)",
    }  # fmt: skip
    path = write_report(tmp_path, predictions, summary, image_size=IMAGE_SIZE, columns=columns)
    lines = path.read_text().splitlines()
    start = lines.index("## Run")
    assert lines[start + 4 : start + 11] == [
        "| dataset | `synthetic` |",
        "| seed | `3` |",
        "| num | `2` |",
        "| root | `null` |",
        '| options | `{"focal_scale": 1.0}` |',
        "| hopose_version | `0.1.0` |",
        "| device | `cuda:0 (NVIDIA H200)` |",
    ]
    assert lines[start + 11] == ""


def test_compare_refuses_a_run_twice_and_an_out_among_its_runs(runs, tmp_path):
    root, _, _ = runs
    figure = (root / "a" / "figures" / "hand_pck.png").read_bytes()
    with pytest.raises(ValueError, match="given more than once"):
        compare_runs([root / "a", root / "b", root / "b" / ".." / "a"], tmp_path / "cmp")
    with pytest.raises(ValueError, match="is one of the compared runs"):
        compare_runs([root / "a", root / "b"], root / "a")
    assert (root / "a" / "figures" / "hand_pck.png").read_bytes() == figure


def test_compare_same_folder_names_use_paths(runs, tmp_path):
    root, _, _ = runs
    twin = tmp_path / "x" / "a"
    twin.mkdir(parents=True)
    (twin / "per_frame.csv").write_text((root / "a" / "per_frame.csv").read_text())
    text = compare_runs([root / "a", twin], tmp_path / "cmp").read_text()
    assert f"| Metric | {root / 'a'} | {twin} |" in text


def _write_run(folder, ids, hand_mm, object_mm):
    """A per_frame.csv of the accuracy columns: the given hand and object errors, the others 1."""
    n = len(ids)
    columns = {"id": np.array(ids), **{name: np.ones(n) for name in ACCURACY_COLUMNS}}
    columns |= {HAND_MM: np.array(hand_mm, float), OBJECT_MM: np.array(object_mm, float)}
    folder.mkdir()
    write_per_frame_csv(folder / "per_frame.csv", columns)
    return folder


def test_compare_sets_each_runs_group_means_side_by_side(tmp_path, no_figures):
    """Runs of one dataset with groups (FPHA-HO: subjects and actions) get a table per key, a
    row per group with each run's mean hand and object errors; runs of several datasets, none."""
    ids = [
        "fpha/Subject_2/open_milk/1/0000", "fpha/Subject_10/open_milk/1/0000",
        "fpha/Subject_2/pour_milk/1/0000", "fpha/Subject_10/pour_milk/1/0000",
    ]  # fmt: skip
    a = _write_run(tmp_path / "a", ids, [10, 20, 30, 40], [1, 2, 3, 4])
    b = _write_run(tmp_path / "b", ids, [12, 22, 32, 42], [5, 6, 7, 8])
    for run in (a, b):
        _write_metrics(run, **FPHA_FROM_IMAGES)
    text = compare_runs([a, b], tmp_path / "cmp").read_text()
    header = "| {} | a hand (mm) | b hand (mm) | a object (mm) | b object (mm) |"
    # Subject_2: frames 0 and 2, a's hand (10 + 30) / 2 = 20, b's 22, objects 2 and 6;
    # Subject_10: frames 1 and 3, 30 and 32, 3 and 7 (after Subject_2: numbers read as numbers).
    subjects = text.index(header.format("subject"))
    assert text.index("| Subject_2 | 20.00 | 22.00 | 2.00 | 6.00 |") > subjects
    assert text.index("| Subject_10 | 30.00 | 32.00 | 3.00 | 7.00 |") > text.index("| Subject_2 |")
    # open_milk: frames 0 and 1, (10 + 20) / 2 = 15 and 17, objects 1.5 and 5.5.
    assert text.index("| open_milk | 15.00 | 17.00 | 1.50 | 5.50 |") > text.index(
        header.format("action")
    )
    assert "other frames" not in text
    _write_metrics(b, **{**FPHA_FROM_IMAGES, "dataset": "synthetic"})
    assert "Results by group" not in compare_runs([a, b], tmp_path / "cmp2").read_text()
    # A dataset that is not a name (a metrics.json edited by hand): refused, naming it.
    _write_metrics(b, **{**FPHA_FROM_IMAGES, "dataset": ["fpha"]})
    why = f'{b / "metrics.json"}: not a metrics.json of hopose eval (dataset is ["fpha"], not a'
    with pytest.raises(ValueError, match=re.escape(why)):
        compare_runs([a, b], tmp_path / "cmp3")


def test_compares_groups_of_other_frames_in_name_order_and_says_so(tmp_path, no_figures):
    """A later run with a group the first lacks: every group in the order of their names, "–"
    where a run has no frame of it, and a line saying the means are over each run's own
    frames. A run whose ids are not the dataset's gets no tables, the line naming it."""
    first = ["fpha/Subject_2/open_milk/1/0000", "fpha/Subject_10/open_milk/1/0000"]
    a = _write_run(tmp_path / "a", first, [10, 20], [1, 2])
    later = ["fpha/Subject_1/open_milk/1/0000", "fpha/Subject_10/open_milk/1/0000"]
    b = _write_run(tmp_path / "b", later, [5, 7], [3, 4])
    c = _write_run(tmp_path / "c", ["f0", "f1"], [1, 1], [1, 1])
    for run in (a, b, c):
        _write_metrics(run, **FPHA_FROM_IMAGES)
    text = compare_runs([a, b], tmp_path / "cmp").read_text()
    assert "The runs are of other frames: each mean is over its own run's (– none)." in text
    rows = [line for line in text.splitlines() if line.startswith("| Subject_")]
    assert rows == [
        "| Subject_1 | – | 5.00 | – | 3.00 |",
        "| Subject_2 | 10.00 | – | 1.00 | – |",
        "| Subject_10 | 20.00 | 7.00 | 2.00 | 4.00 |",
    ]
    text = compare_runs([a, c], tmp_path / "cmp2").read_text()
    assert "No groups (c): id 'f0' has no subject (not an id of fpha's frames)." in text
    assert "| subject |" not in text


def test_compare_differences_are_paired_by_frame_id_with_their_standard_error(tmp_path):
    """Each later run minus the first, on the hand's and the object's own columns; a run of
    other frames has no paired difference, and one that diverged on a frame differs by +inf."""
    ids = ["f0", "f1", "f2", "f3"]
    a = _write_run(tmp_path / "a", ids, [1, 2, 3, 4], [5, 5, 5, 5])
    # b - a, hand: 1, 2, 0, 4: mean 7 / 4 = 1.75; squared deviations 0.5625 + 0.0625 + 3.0625
    # + 5.0625 = 8.75, sample sd sqrt(8.75 / 3) = 1.708, over sqrt(4): se 0.854. Object: 2 each.
    b = _write_run(tmp_path / "b", ids, [2, 4, 3, 8], [7, 7, 7, 7])
    # The same errors for frames in another order: not the same frames position by position.
    c = _write_run(tmp_path / "c", ids[::-1], [2, 4, 3, 8], [7, 7, 7, 7])
    d = _write_run(tmp_path / "d", ids, [1, 2, np.inf, 4], [5, 5, 5, 5])
    text = compare_runs([a, b, c, d], tmp_path / "cmp").read_text()
    assert "| Metric | b - a | c - a | d - a |" in text
    hand = "| Hand mean joint error (mm) | +1.75 ± 0.85 | – (other frames) | +inf |"
    obj = "| Object mean corner error (mm) | +2.00 ± 0.00 | – (other frames) | +0.00 ± 0.00 |"
    assert hand in text and obj in text


def test_accuracy_rows_show_their_own_summary_numbers():
    """Each accuracy row of the tables shows the number of its own summary key."""
    # One distinct number per summary key: each labelled row must show its key's.
    summary = {
        HAND_MEAN_MM: 11.0, HAND_MEAN_MM_SE: 1.1, HAND_ROOT_RELATIVE_MM: 9.0,
        HAND_PROCRUSTES_MM: 7.0, HAND_AUC_0_80: 0.6, OBJECT_MEAN_MM: 22.0,
        OBJECT_MEAN_MM_SE: 2.2, OBJECT_REPROJ_MEAN_PX: 13.0, OBJECT_2D_AUC_0_80: 0.4,
        HAND_RR_KP_AUC_0_50: 0.7, HAND_PA_KP_AUC_0_50: 0.8, HAND_KP2D_MEAN_PX: 3.0,
        OBJECT_KP2D_MEAN_PX: 5.0,
    }  # fmt: skip
    assert metric_lines({"run": summary})[2:] == [
        "| Hand mean joint error (mm) | 11.00 |",
        "| its standard error over the frames (mm) | 1.10 |",
        "| Hand root-relative error (mm) | 9.00 |",
        "| Hand Procrustes-aligned error (mm) | 7.00 |",
        "| Hand 3D PCK AUC, 0-80 mm | 0.600 |",
        # Not in the summary (a per_frame.csv of an older hopose): a dash.
        "| Hand joints' PCK AUC, 0-50 mm (DexYCB, HO-3D) | – |",
        "| the same, root-relative (DexYCB) | 0.700 |",
        "| the same, Procrustes-aligned | 0.800 |",
        "| Hand 2D keypoint error, network image (px) | 3.00 |",
        "| Object mean corner error (mm) | 22.00 |",
        "| its standard error over the frames (mm) | 2.20 |",
        "| Object 2D reprojection error (px) | 13.00 |",
        "| Object 2D correct-pose AUC, 0-80 px | 0.400 |",
        "| Object 2D corner error, network image (px) | 5.00 |",
    ]


def test_plausibility_rows_show_each_runs_prediction_and_the_first_runs_ground_truth():
    """Plausibility rows: one prediction column per run, then the first run's ground truth."""
    pred, gt = plausibility_key("pred", VALID_CONTACTS), plausibility_key("gt", VALID_CONTACTS)
    runs = {"a": {pred: 3.0, gt: 10.0}, "b": {pred: 4.0, gt: 9.0}}
    lines = plausibility_lines(runs)
    assert lines[0] == "| Metric | a: prediction | b: prediction | ground truth |"
    assert "| Valid contacts per frame | 3.00 | 4.00 | 10.00 |" in lines
    # Affinity was computed in neither run: dashes, not another row's numbers.
    assert "| Affinity loss, Eq. 6 (lower: contacts spread around the axis) | – | – | – |" in lines


def test_frames_rank_by_the_keypoint_weighted_mean_of_hand_and_object():
    """The gallery ranks frames by (21 hand + 8 object errors) / 29, not by one part."""
    # Combined error (21 hand + 8 object) / 29: frame 0 (10, 0) 210 / 29 = 7.24, frame 1 (0, 30)
    # 240 / 29 = 8.28, frame 2 (5, 10) 185 / 29 = 6.38. By the hand alone the best would be
    # frame 1, by the object alone (or with the weights swapped) frame 0.
    columns = {HAND_MM: np.array([10.0, 0.0, 5.0]), OBJECT_MM: np.array([0.0, 30.0, 10.0])}
    assert _ranked_frames(columns, np.arange(3)) == [("best", 2), ("median", 0), ("worst", 1)]


def test_frames_without_a_combined_error_rank_by_the_hand_before_the_object():
    """With no combined error, frames rank by the hand's error before the object's."""
    # No frame has both parts: frames 2 and 3 have a hand error (3, 1), frames 0 and 1 an
    # object error. The hand's ranks: best 3, median (of 2) and worst 2.
    columns = {
        HAND_MM: np.array([np.nan, np.nan, 3.0, 1.0]),
        OBJECT_MM: np.array([2.0, 1.0, np.nan, np.nan]),
    }
    assert _ranked_frames(columns, np.arange(4)) == [("best", 3), ("median", 2), ("worst", 2)]


def test_gallery_panels_show_the_ranked_frames_image_and_poses(monkeypatch):
    """Each gallery panel holds its ranked frame's id, image and poses."""
    # Errors grow with the frame (make_predictions): best 0, median 2, worst 3 of four.
    predictions, dataset = make_predictions(4), make_dataset(4)
    columns = frame_metrics(predictions, plausibility=False)
    drawn = []
    monkeypatch.setattr(viz, "gallery_figure", drawn.extend)
    _gallery(predictions, columns, dataset, IMAGE_SIZE)
    assert [frame["title"].split("\n")[0] for frame in drawn] == [
        f"{rank}: synthetic/s0/seq0/{k:04d}"
        for rank, k in (("best", 0), ("median", 2), ("worst", 3))
    ]
    for frame, k in zip(drawn, (0, 2, 3), strict=True):
        np.testing.assert_array_equal(frame["image"], dataset[k]["image"])
        for key in ("pred_hand_2d", "gt_obj_2d", "pred_hand_3d", "gt_hand_3d"):
            np.testing.assert_array_equal(frame[key], predictions[key][k], err_msg=key)


def test_contacts_figure_shows_both_poses_of_the_grasping_frames_only(monkeypatch):
    """The contacts figure ranks grasping frames only and shows their predicted and true poses."""
    # Frames 0 and 3 have fewer than two true contacts (no grasp to show); of the grasping
    # frames 1, 2 and 4, errors growing with the frame, 1 is best, 2 median, 4 worst.
    predictions = make_predictions(5)
    columns = frame_metrics(predictions, plausibility=False)
    columns[plausibility_key("gt", VALID_CONTACTS)] = np.array([0.0, 10.0, 10.0, 1.0, 10.0])
    drawn = []
    monkeypatch.setattr(viz, "contacts_figure", drawn.extend)
    _contacts(predictions, columns)
    assert [who for who, _ in drawn] == ["pred", "gt"]
    for who, panels in drawn:
        assert [p["title"].split(" (")[0] for p in panels] == ["best", "median", "worst"]
        for panel, k in zip(panels, (1, 2, 4), strict=True):
            np.testing.assert_array_equal(panel["hand"], predictions[f"{who}_hand_3d"][k])
            np.testing.assert_array_equal(panel["obj"], predictions[f"{who}_obj_3d"][k])


def test_per_frame_csv_columns_are_read_by_their_header_names(tmp_path):
    """read_per_frame_csv finds each column by its header name, in any order."""
    # The same table with its columns in another order, id last: each is read by name.
    path = tmp_path / "per_frame.csv"
    names = ACCURACY_COLUMNS[::-1]
    rows = [",".join([*names, "id"]), ",".join([*(str(k) for k in range(5)), "f0"])]
    path.write_text("\n".join(rows) + "\n")
    read = read_per_frame_csv(path)
    assert list(read["id"]) == ["f0"]
    for k, name in enumerate(names):
        np.testing.assert_array_equal(read[name], [float(k)], err_msg=name)


def test_a_per_frame_csv_without_the_joints_aucs_still_compares(runs, tmp_path):
    """A per_frame.csv written before the joints' AUC columns existed (an older hopose) is read
    and compared: its accuracy rows show the AUCs as "–", the other numbers as before."""
    root, first, _ = runs
    old = tmp_path / "old"
    old.mkdir()
    with (root / "a" / "per_frame.csv").open() as file:
        rows = list(csv.reader(file))
    keep = [k for k, name in enumerate(rows[0]) if name not in KEYPOINT_AUC_COLUMNS]
    (old / "per_frame.csv").write_text(
        "\n".join(",".join(row[k] for k in keep) for row in rows) + "\n"
    )
    text = compare_runs([root / "a", old], tmp_path / "cmp").read_text()
    hand_mean = metrics.per_frame_error(first["pred_hand_3d"], first["gt_hand_3d"]).mean()
    assert f"| Hand mean joint error (mm) | {hand_mean:.2f} | {hand_mean:.2f} |" in text
    row = next(line for line in text.splitlines() if line.startswith("| the same, root-relative"))
    assert row.endswith(" | – |") and not row.endswith("| – | – |")


def test_a_diverged_frame_is_not_ranked_worst():
    """Mean errors over 29 keypoints (21 x hand + 8 x object) / 29: frame 0 (21 + 8) / 29 = 1,
    frame 1 inf (its hand diverged), frame 2 (21 x 3 + 8) / 29 = 71 / 29 = 2.45. Only the
    finite ones rank: best 0, median and worst 2 (of [0, 2], the middle is index 1), not the
    diverged frame 1."""
    columns = {"hand_mm": np.array([1.0, np.inf, 3.0]), "object_mm": np.ones(3)}
    ranked = _ranked_frames(columns, np.arange(3))
    assert ranked == [("best", 0), ("median", 2), ("worst", 2)]


def test_a_report_without_the_original_camera_says_its_2d_is_the_network_images(tmp_path):
    """Predictions without orig_K are reprojected with the network image's K: the report must
    say so, not claim the dataset's original camera's pixels."""
    predictions = {k: v for k, v in make_predictions().items() if k != "orig_K"}
    columns = frame_metrics(predictions, plausibility=False)
    text = write_report(
        tmp_path, predictions, {}, image_size=IMAGE_SIZE, columns=columns
    ).read_text()
    assert "measured in pixels of the network image." in text
    assert "original camera" not in text


def test_a_refined_runs_report_sets_the_unrefined_scores_beside_the_refined(tmp_path):
    """metrics.json's "unrefined" (hopose eval --refine) is a column of the tables beside the
    refined scores: its hand error, 99.99 here, stands in Table 1 and the accuracy table."""
    predictions = make_predictions()
    columns = frame_metrics(predictions, plausibility=False)
    unrefined = summarize(columns) | {"hand_mean_mm": 99.99}
    text = write_report(
        tmp_path, predictions, {"unrefined": unrefined}, image_size=IMAGE_SIZE, columns=columns
    ).read_text()
    assert "| Network | refined | unrefined |" in text
    assert "| Metric | refined | unrefined |" in text
    assert text.count("| 99.99 |") == 2


def test_compare_draws_nine_runs_each_its_own_way_and_a_missing_auc_as_a_dash(
    tmp_path, monkeypatch
):
    """The ninth run took the first's colour and solid line (8 colours avoid the parts'); it is
    dashed. A run without the hand's ground truth has no AUC: "–", as the tables show it, not
    "nan". Run k's one frame is 10 + k mm off: its AUC over 0-80 mm is (80 - (10 + k) + 0.5)
    / 80, 69.5 / 80 = 0.86875 for run 1 (half a unit for the trapezoid between the last
    threshold it misses, 10, and the first it meets, 11)."""
    drawn = {}

    def pck_figure(thresholds, curves, *, colours, line_styles, note=None, **labels):
        drawn[labels["title"]] = (list(curves), list(zip(colours, line_styles, strict=True)))

    monkeypatch.setattr(viz, "pck_figure", pck_figure)
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: None)
    runs = [
        _write_run(tmp_path / f"r{k}", ["f0"], [np.nan if k == 0 else 10 + k], [20])
        for k in range(9)
    ]
    compare_runs(runs, tmp_path / "cmp")
    labels, styles = drawn[HAND_PCK_LABELS["title"]]
    assert labels[:2] == ["r0 (AUC –)", "r1 (AUC 0.869)"]
    assert len(set(styles)) == 9
    assert [style for _, style in styles] == ["-"] * 8 + ["--"]


def test_compares_hand_pck_note_gives_the_papers_hand_errors(tmp_path, monkeypatch):
    """With a run comparable with the paper, the hand PCK plot carries the paper's Table 1 hand
    errors as a note (the paper publishes figures, not curve values): 15.81, 15.04 and 12.53
    mm, not the object's 24.89, 21.33 and 19.09; the object plot carries none."""
    notes = {}

    def pck_figure(thresholds, curves, *, note=None, **labels):
        notes[labels["title"]] = note

    monkeypatch.setattr(viz, "pck_figure", pck_figure)
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: None)
    run = _write_run(tmp_path / "image", ["f0"], [10], [20])
    _write_metrics(run, **FPHA_FROM_IMAGES)
    compare_runs([run], tmp_path / "cmp", paper=True)
    assert notes[OBJECT_PCK_LABELS["title"]] is None
    assert notes[HAND_PCK_LABELS["title"]] == (
        "Paper Table 1, mean hand error:\n"
        "H+O (Tekin et al. 2019): 15.81 mm\nHOPE-Net (Doosti et al. 2020): 15.04 mm\n"
        "Zhuang & Mu 2021: 12.53 mm"
    )
