"""The command line: a tiny training and a smoke-sized demo end to end, the ablation tables'
layout, one-line errors."""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import hopose
from hopose import ablate, demo
from hopose.checkpoint import load_model, model_checkpoint, save_checkpoint
from hopose.cli import build_parser, exit_on_user_error, main
from hopose.configs import CONFIG_DIR, find_config
from hopose.data import CROPS, DATASETS, REAL_DATASETS, SYNTHETIC_SPLIT_KEYS
from hopose.data.synthetic import DEFAULT_FREE_FRACTION
from hopose.data.transforms import DEFAULT_IMAGE_SIZE
from hopose.evaluate import EVAL_BATCH_SIZE, run_eval
from hopose.export import GRAPHS
from hopose.models import build_model
from hopose.predict import predict_images
from tiny_runs import TINY, tiny

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")


@pytest.mark.slow
def test_demo_runs_the_three_stages_and_writes_its_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "QUICK_OVERRIDES", {stage: TINY for stage in demo.STAGES})
    status = main(["demo", "--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert status == (0 if all(metrics["checks"].values()) else 1)  # the tiny model may fail
    assert set(metrics["results"]) == {key for key, _ in demo.ROWS}
    assert metrics["n_test"] == 16
    # The demo's image stages train on crops, so its from-image row self-crops (two crops).
    assert metrics["results"]["final_image"]["self_crop"] == 2
    baseline = metrics["results"]["mean_pose_baseline"]
    for key, passed in metrics["checks"].items():
        model = "lifter_gt_2d" if key.startswith("lifter") else "final_image"
        part = "hand" if "_hand_" in key else "object"
        factor = 0.5 if "half" in key else 1.0
        assert passed == (
            metrics["results"][model][f"{part}_mean_mm"] <= factor * baseline[f"{part}_mean_mm"]
        )
    # model.pt is the end-to-end stage's best checkpoint, loadable on its own.
    model, cfg = load_model(tmp_path / "model.pt")
    assert cfg.stage == "end2end" and cfg.loss.physical
    assert torch.equal(
        model.lifter.out_mean,
        torch.load(tmp_path / "end2end" / "best.pt")["model"]["lifter.out_mean"],
    )
    printed = capsys.readouterr().out
    assert "mean-pose baseline" in printed and "final model, from the image" in printed
    final = metrics["results"]["final_image"]  # its mean errors beside their standard errors
    row = next(line for line in printed.splitlines() if "final model, from the image" in line)
    for part in ("hand", "object"):
        assert f"| {final[f'{part}_mean_mm']:.1f} ± {final[f'{part}_mean_mm_se']:.1f} |" in row


def test_demo_exits_1_naming_its_failed_checks_and_passes_resume_on(monkeypatch, capsys):
    asked = []

    def run_demo(out, *, quick, resume):
        asked.append(resume)
        return {
            "checks": {
                "lifter_gt_2d_hand_below_half_baseline": True,
                "final_image_object_below_baseline": False,
            }
        }

    monkeypatch.setattr(demo, "run_demo", run_demo)
    assert main(["demo", "--out", "d", "--resume"]) == 1
    assert asked == [True]
    assert (
        capsys.readouterr().err.strip()
        == "hopose demo: checks failed: final_image_object_below_baseline"
    )


def _fake_run(monkeypatch, errors: dict[str, tuple[float, float]]):
    """Replace training and evaluation with records of what the ablation asked for."""
    calls = []

    class Result:
        checkpoint = "best.pt"

    def fake_train(cfg, out_dir, *, split_cache, resume=False):
        calls.append(cfg)
        return Result()

    def fake_eval(checkpoint, data, split, out_dir, *, gt_2d, report, plausibility=None):
        cfg = calls[-1]
        key = cfg.model.lifter if cfg.model.lifter == "graph_unet" else cfg.model.lifter_variant
        if "physical" in errors:  # the physics study: rows by loss, errors grow with the seed
            key = "physical" if cfg.loss.physical else "mse"
        hand, obj = errors[key]
        hand, obj = hand + cfg.seed, obj + 2 * cfg.seed
        # Every plausibility number of the prediction is the hand error, the truth's 7.
        metrics = {f"{who}_{name}": hand if who == "pred" else 7.0 for who in ("pred", "gt")
                   for name in ("valid_contacts", "affinity", "penetration_mm", "force_closure",
                                "grasp_epsilon")}  # fmt: skip
        return {"hand_mean_mm": hand, "object_mean_mm": obj, "n": 5, "gt_2d": gt_2d, **metrics}

    monkeypatch.setattr(ablate, "train", fake_train)
    monkeypatch.setattr(demo, "train", fake_train)  # stages 1-2 of the physics study
    monkeypatch.setattr(ablate, "run_eval", fake_eval)
    return calls


def test_lifter_ablation_has_table_2s_rows_and_dashes(tmp_path, monkeypatch):
    errors = {
        "graph_unet": (20.0, 30.0),
        "hand": (11.0, 99.0),
        "object": (99.0, 12.0),
        "full": (10.0, 11.0),
    }
    calls = _fake_run(monkeypatch, errors)
    table = ablate.run_ablation("lifter", tmp_path, seed=3)
    assert [(c.stage, c.model.lifter, c.model.lifter_variant) for c in calls] == [
        ("lifter", "graph_unet", "full"),
        ("lifter", "context", "hand"),
        ("lifter", "context", "object"),
        ("lifter", "context", "full"),
    ]
    assert all(c.data.seed == 3 for c in calls)
    lines = table.splitlines()
    # A variant without a part has no error for it (the 99s never show), as in the paper.
    assert "| Adaptive Graph U-Net | 20.00 | 30.00 | 14.36 | 21.65 |" in lines
    assert "| Hand Sub-graph Only | 11.00 | – | 12.22 | – |" in lines
    assert "| Object Sub-graph Only | – | 12.00 | – | 14.41 |" in lines
    assert "| Full Graph | 10.00 | 11.00 | 10.38 | 13.85 |" in lines
    assert (tmp_path / "ablation_lifter.md").read_text() == table


def test_lifter_ablation_shows_a_diverged_row_as_inf_and_no_value_as_a_dash(tmp_path, monkeypatch):
    # The ablation tables format their cells as the report does (hopose.report.format_number):
    # an infinite mean (a diverged run) reads "inf", a NaN one (no ground truth) "–".
    errors = {key: (10.0, 11.0) for key in ("graph_unet", "hand", "object")}
    _fake_run(monkeypatch, errors | {"full": (float("inf"), float("nan"))})
    table = ablate.run_ablation("lifter", tmp_path, seed=0)
    assert "| Full Graph | inf | – | 10.38 | 13.85 |" in table.splitlines()


def test_lifter_ablation_trains_every_row_from_scratch(tmp_path, monkeypatch):
    """fpha/lifter fine-tunes the ObMan checkpoint, a full context lifter: loaded into the Graph
    U-Net or a one-part variant, its weights do not fit (the study stopped at its first row)."""
    errors = {key: (1.0, 1.0) for key in ("graph_unet", "hand", "object", "full")}
    calls = _fake_run(monkeypatch, errors)
    assert find_config("fpha/lifter").read_text().count("init_from: runs/obman/end2end") == 1
    ablate.run_ablation("lifter", tmp_path, data="fpha", root=str(tmp_path))
    assert [(c.data.name, c.init_from) for c in calls] == [("fpha", None)] * 4


def test_physics_ablation_fine_tunes_one_checkpoint_with_and_without_the_loss(
    tmp_path, monkeypatch
):
    calls = _fake_run(monkeypatch, {"mse": (13.0, 21.0), "physical": (12.5, 19.5)})
    init = tmp_path / "encoder.pt"
    init.touch()
    table = ablate.run_ablation("physics", tmp_path, init=str(init), seeds=2, sources=("image",))
    assert [(c.stage, c.loss.physical, c.init_from, c.seed) for c in calls] == [
        ("end2end", False, str(init), 0),
        ("end2end", True, str(init), 0),
        ("end2end", False, str(init), 1),
        ("end2end", True, str(init), 1),
    ]
    # Both rows train the MSE Table 3 names, though the demo's end-to-end config trains on
    # distances (loss.l3d_distance: euclidean, w_3d 80).
    assert {(c.loss.l3d_distance, c.loss.w_3d) for c in calls} == {("squared", 1.0)}
    lines = table.splitlines()
    # Hand errors 13, 14 (MSE) and 12.5, 13.5 (physical) over seeds 0, 1: means 13.5 and 13.0.
    assert "| MSE | 13.50 | 22.00 | 12.83 | 20.83 |" in lines
    assert "| MSE + Physical loss | 13.00 | 20.50 | 12.53 | 19.09 |" in lines
    # std of (13, 14) with ddof 1 = sqrt(0.5) = 0.707; the paired differences are -0.5 twice.
    assert "| Hand error (mm) | 13.500 ± 0.707 | 13.000 ± 0.707 | -0.500 ± 0.000 | – |" in lines
    # Objects 21, 23 against 19.5, 21.5: difference -1.5 for both seeds.
    assert "| Object error (mm) | 22.000 ± 1.414 | 20.500 ± 1.414 | -1.500 ± 0.000 | – |" in lines
    assert (
        "| Force-closure rate | 13.500 ± 0.707 | 13.000 ± 0.707 | -0.500 ± 0.000 | 7.000 |" in lines
    )


def test_physics_ablation_on_ground_truth_2d_trains_the_lifter_per_seed(tmp_path, monkeypatch):
    calls = _fake_run(monkeypatch, {"mse": (10.0, 11.0), "physical": (10.0, 11.0)})
    table = ablate.run_ablation("physics", tmp_path, seeds=3, sources=("gt_2d",))
    assert [(c.stage, c.loss.physical, c.seed) for c in calls] == [
        (stage, physical, seed) for seed in range(3) for stage, physical in
        (("lifter", False), ("lifter", True))
    ]  # fmt: skip
    assert "the lifter on ground-truth 2D" in table
    assert "| Hand error (mm) | 11.000 ± 1.000 | 11.000 ± 1.000 | 0.000 ± 0.000 | – |" in table


@pytest.mark.filterwarnings("error")  # numpy warned of the std of an infinite value
def test_physics_table_shows_a_seed_without_a_value_as_a_dash_and_a_diverged_one_as_inf():
    # No object ground truth (NaN) in any seed, and seed 1 of MSE diverged on the hand: the cells
    # read "nan ± nan" and "inf ± nan", not docs/evaluation.md's "–" and "inf".
    def run(hand: float) -> dict[str, float]:
        return {key: 0.5 for metric in ablate.PHYSICS_METRICS for key in metric[:2] if key} | {
            "hand_mean_mm": hand,
            "object_mean_mm": float("nan"),
        }

    runs = {"MSE": [run(20.0), run(float("inf"))], "MSE + Physical loss": [run(21.0), run(22.0)]}
    lines = ablate.physics_table(runs).splitlines()
    assert lines[2:5] == [
        "| Hand error (mm) | inf | 21.500 ± 0.707 | -inf | – |",
        "| Object error (mm) | – | – | – | – |",
        "| Valid contacts per frame | 0.500 ± 0.000 | 0.500 ± 0.000 | 0.000 ± 0.000 | 0.500 |",
    ]


def test_physics_ablation_from_the_images_trains_stages_once_per_seed(tmp_path, monkeypatch):
    calls = _fake_run(monkeypatch, {"mse": (13.0, 21.0), "physical": (12.5, 19.5)})
    caches, fake_train = [], ablate.train

    def train(cfg, out_dir, *, split_cache, resume=False):
        caches.append(split_cache)
        return fake_train(cfg, out_dir, split_cache=split_cache, resume=resume)

    monkeypatch.setattr(ablate, "train", train)
    monkeypatch.setattr(demo, "train", train)
    ablate.run_ablation("physics", tmp_path, seeds=2, sources=("image",))
    # Per seed: the lifter and encoder stages, then both rows from that seed's encoder.
    assert [(c.stage, c.loss.physical, c.seed) for c in calls] == [
        (stage, physical, seed) for seed in range(2) for stage, physical in
        (("lifter", False), ("encoder", False), ("end2end", False), ("end2end", True))
    ]  # fmt: skip
    assert calls[2].init_from == calls[3].init_from == "best.pt"
    # One study, one set of splits: every stage of every seed shares the same cache.
    assert len(caches) == 8 and all(cache is caches[0] for cache in caches)


def test_ablate_num_sizes_every_split_over_quick(monkeypatch, tmp_path):
    calls = _fake_run(
        monkeypatch,
        {k: (1.0, 1.0) for k in ("graph_unet", "hand", "object", "full")},
    )
    args = ["ablate", "lifter", "--data", "synthetic", "--num", "40", "--quick"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert len(calls) == 4
    # --quick alone gives 512 / 64 / 64 frames; --num replaces all three.
    assert {(c.data.num_train, c.data.num_val, c.data.num_test) for c in calls} == {(40, 40, 40)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # No seed, no row: the table's first row was an IndexError traceback.
        (["physics", "--seeds", "0"], "--seeds: must be >= 1, got 0"),
        # Options another study would ignore.
        (["lifter", "--seeds", "2"], "--seeds: options of the physics study, not the lifter one"),
        (["lifter", "--input", "both", "--seeds", "1"],
         "--seeds, --input: options of the physics study, not the lifter one"),
        (["lifter", "--init", "enc.pt"], "--init: only the physics study from the images"),
        (["physics", "--input", "gt_2d", "--init", "enc.pt"],
         "--init: only the physics study from the images"),
    ],
)  # fmt: skip
def test_ablate_refuses_options_it_cannot_use_before_writing(
    tmp_path, capsys, monkeypatch, args, message
):
    errors = {key: (1.0, 1.0) for key in ("graph_unet", "hand", "object", "full")}
    _fake_run(monkeypatch, errors | {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    monkeypatch.setattr(ablate, "train_stages", lambda *a, **k: {"encoder": "enc.pt"})
    out = tmp_path / "a"
    assert main(["ablate", *args, "--data", "synthetic", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hopose ablate: error: {message}") and err.count("\n") == 1
    assert not out.exists()


def test_ablate_refuses_a_missing_init_before_any_row_trains(tmp_path, capsys, monkeypatch):
    # With --input both, the gt_2d rows trained first and the missing file was found after.
    calls = _fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    missing, out = tmp_path / "no_such.pt", tmp_path / "a"
    args = ["ablate", "physics", "--data", "synthetic", "--input", "both", "--init", str(missing)]
    assert main([*args, "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"hopose ablate: error: --init: {missing}: no such file\n"
    assert calls == [] and not out.exists()


def test_ablate_set_overrides_every_row_but_not_what_defines_it(tmp_path, monkeypatch):
    calls = _fake_run(monkeypatch, dict.fromkeys(("graph_unet", "hand", "object", "full"), (1, 1)))
    # The last two would make every row the Graph U-Net or the hand sub-graph: the rows win.
    values = ["optim.lr=0.5", "init_from=obman.pt", "model.lifter=graph_unet"]
    sets = [arg for value in [*values, "model.lifter_variant=hand"] for arg in ("--set", value)]
    assert main(["ablate", "lifter", "--data", "synthetic", *sets, "--out", str(tmp_path)]) == 0
    assert [(c.optim.lr, c.init_from, c.model.lifter, c.model.lifter_variant) for c in calls] == [
        (0.5, "obman.pt", "graph_unet", "full"),
        (0.5, "obman.pt", "context", "hand"),
        (0.5, "obman.pt", "context", "object"),
        (0.5, "obman.pt", "context", "full"),
    ]


def test_ablate_resume_reads_finished_rows_back_and_resumes_the_others(
    tmp_path, monkeypatch, capsys
):
    """A study that failed after its first row's evaluation and its second row's training: a
    rerun into the same --out is refused without --resume; with it, no row trains again, and
    only the second row is evaluated."""
    monkeypatch.setattr(ablate, "QUICK_OVERRIDES", {"lifter": TINY})
    args = ["ablate", "physics", "--data", "synthetic", "--quick", "--seeds", "1"]
    args += ["--input", "gt_2d", "--out", str(tmp_path)]
    evaluated, run_eval = [], ablate.run_eval

    def evaluate(checkpoint, data, split, out_dir, **kwargs):
        evaluated.append(Path(out_dir).parent.name)
        if evaluated == ["mse", "mse_physical_loss"]:
            raise OSError("disk full")
        return run_eval(checkpoint, data, split, out_dir, **kwargs)

    monkeypatch.setattr(ablate, "run_eval", evaluate)
    assert main(args) == 1
    seed_dir = tmp_path / "gt_2d" / "seed0"
    mse, physical = seed_dir / "mse", seed_dir / "mse_physical_loss"
    assert (mse / "eval" / "metrics.json").is_file() and (physical / "last.pt").is_file()
    assert not (physical / "eval").exists() and not (tmp_path / "ablation_physics.md").exists()
    capsys.readouterr()
    assert main(args) == 1
    assert capsys.readouterr().err == (
        f"hopose ablate: error: {mse}: holds a run (last.pt); continue it with --resume or "
        "choose another --out\n"
    )
    trained, train = [], ablate.train

    def resumed(cfg, out_dir, **kwargs):
        trained.append((Path(out_dir).name, kwargs["resume"]))
        return train(cfg, out_dir, **kwargs)

    monkeypatch.setattr(ablate, "train", resumed)
    epochs = {run: (run / "metrics.csv").read_text() for run in (mse, physical)}
    evaluated.clear()
    assert main([*args, "--resume"]) == 0
    assert trained == [("mse", True), ("mse_physical_loss", True)]
    assert evaluated == ["mse_physical_loss"]
    assert {run: (run / "metrics.csv").read_text() for run in (mse, physical)} == epochs
    rows = json.loads((tmp_path / "ablation_physics.json").read_text())
    for row, run in zip(rows, (mse, physical), strict=True):
        summary = json.loads((run / "eval" / "metrics.json").read_text())
        assert row["hand"] == summary["hand_mean_mm"]


@pytest.mark.parametrize(
    ("args", "seeds", "sources"),
    [
        ([], 3, ("gt_2d", "image")),
        (["--input", "both", "--seeds", "2"], 2, ("gt_2d", "image")),
        (["--input", "image"], 3, ("image",)),
    ],
)
def test_ablate_physics_defaults_are_three_seeds_and_both_inputs(
    tmp_path, monkeypatch, args, seeds, sources
):
    calls = _fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    monkeypatch.setattr(ablate, "train_stages", lambda *a, **k: {"encoder": "enc.pt"})
    assert main(["ablate", "physics", *args, "--data", "synthetic", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "ablation_physics.json").read_text())
    assert [row["input"] for row in rows] == [source for source in sources for _ in range(2)]
    assert all(len(row["seeds"]) == seeds for row in rows)
    assert len(calls) == 2 * seeds * len(sources)


def test_errors_are_one_line_naming_the_field_and_debug_shows_the_traceback(tmp_path, capsys):
    args = ["eval", str(tmp_path / "model.pt"), "--data", "fpha", "--out", str(tmp_path / "e")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err == "hopose eval: error: --root: evaluating on fpha needs its folder (or --cache)\n"
    with pytest.raises(ValueError, match="--root"):
        main(["--debug", *args])
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("command", ["eval", "ablate"])
def test_an_unknown_dataset_is_a_usage_error_naming_the_known_ones(tmp_path, capsys, command):
    first = "lifter" if command == "ablate" else str(tmp_path / "model.pt")
    with pytest.raises(SystemExit) as exit_info:
        main([command, first, "--data", "fhpa", "--out", str(tmp_path / "e")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"hopose {command}: error: argument --data: invalid choice: 'fhpa' (choose from "
        "'synthetic', 'fpha', 'obman', 'ho3d', 'dexycb')"
    )
    assert not (tmp_path / "e").exists()


# Options whose values are a library constant: the arguments before the value, the option's
# name in argparse's message, the allowed values.
NAMED_VALUES = [
    (["eval", "model.pt", "--data", "synthetic", "--out", "e", "--crop"], "--crop", CROPS),
    (["prepare", "synthetic", "--split", "train", "--out", "e", "--crop"], "--crop", CROPS),
    (["prepare", "--split", "train", "--out", "e"], "dataset", DATASETS),
    (["data", "check", "--root", "r"], "dataset", tuple(REAL_DATASETS)),
    (["synth", "--num", "1", "--out", "e", "--split"], "--split", tuple(SYNTHETIC_SPLIT_KEYS)),
    (["export", "model.pt", "--out", "e.onnx", "--graph"], "--graph", GRAPHS),
    (
        ["ablate", "physics", "--data", "synthetic", "--out", "e", "--input"],
        "--input", (*ablate.PHYSICS_INPUTS, "both"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("args", "option", "allowed"), NAMED_VALUES)
def test_an_unknown_value_is_a_usage_error_naming_the_allowed_ones(
    tmp_path, capsys, monkeypatch, args, option, allowed
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "bogus"])
    assert exit_info.value.code == 2
    listed = ", ".join(map(repr, allowed))
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(f": error: argument {option}: invalid choice: 'bogus' (choose from {listed})")
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "option", "allowed"), NAMED_VALUES)
def test_every_allowed_value_is_accepted(args, option, allowed):
    dest = option.removeprefix("--")
    for value in allowed:
        assert getattr(build_parser().parse_args([*args, value]), dest) == value


@pytest.mark.parametrize(
    "args",
    [
        ["synth", "--split", "val", "--num", "2", "--out", "c"],
        ["synth", "--stats", "--num", "2"],
        ["prepare", "synthetic", "--split", "val", "--num", "2", "--out", "c"],
        ["eval", "model.pt", "--data", "synthetic", "--out", "e"],
        ["ablate", "lifter", "--data", "synthetic", "--out", "a"],
    ],
)
def test_a_negative_seed_is_a_usage_error_naming_it(tmp_path, capsys, monkeypatch, args):
    """numpy's SeedSequence refused it with 'expected non-negative integer', naming nothing."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--seed", "-3"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"hopose {args[0]}: error: argument --seed: expected an integer >= 0, got '-3'"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_negative_eval_workers_count_is_a_usage_error_naming_it(tmp_path, capsys):
    """Passed on as data.num_workers, its config check would name that field, not the flag."""
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "model.pt", "--data", "synthetic", "--workers", "-1", "--out", "e"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "hopose eval: error: argument --workers: expected an integer >= 0, got '-1'"
    )


@pytest.mark.parametrize(
    ("args", "option", "minimum", "value"),
    [
        (["eval", "model.pt", "--data", "synthetic"], "--num", 1, "-5"),
        (["eval", "model.pt", "--data", "synthetic", "--num", "2"], "--batch-size", 1, "-1"),
        (["ablate", "lifter", "--data", "synthetic"], "--num", 1, "-1"),
        (["synth", "--split", "val"], "--num", 1, "-3"),
        (["synth", "--split", "val", "--num", "2"], "--workers", 0, "-2"),
        (["prepare", "synthetic", "--split", "val"], "--num", 1, "0"),
        (["prepare", "synthetic", "--split", "val", "--num", "2"], "--workers", 0, "-2"),
        (["synth", "--split", "val", "--num", "2"], "--image-size", 8, "0"),
        (["prepare", "synthetic", "--split", "val", "--num", "2"], "--image-size", 8, "7"),
    ],
)  # fmt: skip
def test_a_count_out_of_range_is_a_usage_error_naming_it(
    tmp_path, capsys, monkeypatch, args, option, minimum, value
):
    """They named data.num_train, failed inside torch after loading, or inside numpy; an image
    side below 8 named the renderer's argument (image_size: must be >= 8)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, option, value, "--out", "o"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"hopose {args[0]}: error: argument {option}: expected an integer >= {minimum}, "
        f"got {value!r}"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
@pytest.mark.parametrize(
    "args",
    [
        ["predict", "model.pt", "photo.jpg"],
        ["eval", "model.pt", "--data", "synthetic", "--num", "2"],
    ],
)
def test_a_negative_or_non_finite_self_crop_margin_is_a_usage_error_naming_it(
    tmp_path, capsys, monkeypatch, args, value
):
    """Passed on as data.self_crop_margin, its config check named that field, not the flag."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--self-crop-margin", value, "--out", "o"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"hopose {args[0]}: error: argument --self-crop-margin: expected a finite number >= 0, "
        f"got {value!r}"
    )
    assert list(tmp_path.iterdir()) == []


def test_eval_on_synthetic_data_without_num_names_the_option(tmp_path, capsys):
    """The dataset's own refusal named its constructor argument, num_samples."""
    args = ["eval", str(tmp_path / "model.pt"), "--data", "synthetic", "--gt-2d"]
    assert main([*args, "--out", str(tmp_path / "e")]) == 1
    assert capsys.readouterr().err == (
        "hopose eval: error: --num: evaluating on synthetic data needs the number of frames\n"
    )
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prepare", "synthetic", "--split", "val", "--num", "2", "--protocol", "hope",
          "--setup", "s3", "--shapenet-root", "/nope"],
         "--protocol, --setup, --shapenet-root: options of another dataset, not synthetic"),
        (["prepare", "fpha", "--root", "/nope", "--split", "train", "--version", "v3"],
         "--version: options of another dataset, not fpha"),
        (["data", "check", "dexycb", "--root", "/nope", "--protocol", "action"],
         "--protocol: options of another dataset, not dexycb"),
        (["prepare", "synthetic", "--split", "val", "--num", "2", "--root", "/nonexistent"],
         "--root: a folder of a real dataset; synthetic data is generated"),
        (["eval", "model.pt", "--data", "synthetic", "--num", "2", "--root", "/nonexistent"],
         "--root: a folder of a real dataset; synthetic data is generated"),
        (["ablate", "lifter", "--data", "synthetic", "--root", "/nonexistent"],
         "--root: a folder of a real dataset; synthetic data is generated"),
    ],
)  # fmt: skip
def test_options_of_another_dataset_are_refused_naming_them(
    tmp_path, capsys, monkeypatch, args, message
):
    """They were dropped without a word, and the command exited 0."""
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--out", "o"] if args[0] != "data" else args) == 1
    assert capsys.readouterr().err == f"hopose {args[0]}: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fraction", ["1.5", "-0.1", "nan"])
def test_synth_stats_refuses_a_free_fraction_outside_0_1(capsys, fraction):
    assert main(["synth", "--stats", "--num", "2", "--free-fraction", fraction]) == 1
    assert capsys.readouterr() == (
        "",
        f"hopose synth: error: --free-fraction: must be in [0, 1], got {float(fraction)}\n",
    )


def test_unset_options_take_the_library_defaults(tmp_path, monkeypatch, capsys):
    assert (DEFAULT_IMAGE_SIZE, DEFAULT_FREE_FRACTION, EVAL_BATCH_SIZE) == (224, 0.2, 64)
    calls = []

    def record(*args, **kwargs):
        calls.append(kwargs)
        return {}

    monkeypatch.setattr("hopose.data.cache.prepare_cache", record)
    monkeypatch.setattr("hopose.evaluate.eval_data_config", record)
    monkeypatch.setattr("hopose.evaluate.run_eval", record)
    out = str(tmp_path / "e")
    assert main(["synth", "--split", "val", "--num", "3", "--out", out]) == 0
    assert main(["prepare", "synthetic", "--split", "val", "--out", out]) == 0
    assert main(["eval", "model.pt", "--data", "synthetic", "--num", "2", "--out", out]) == 0
    synth, prepare, _, evaluate = calls
    assert synth["image_size"] == prepare["image_size"] == DEFAULT_IMAGE_SIZE
    assert synth["free_fraction"] == DEFAULT_FREE_FRACTION
    assert prepare["crop"] == "resize"
    assert evaluate["batch_size"] == EVAL_BATCH_SIZE


HELP_IMPORTS = """
import argparse, contextlib, io, sys
from hopose.cli import build_parser
commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
for argv in [[], *([name] for name in commands.choices), ["data", "check"]]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        build_parser().parse_args([*argv, "--help"])
print(sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "numpy", "hopose")))
"""


def test_help_imports_no_implementation():
    """``hopose --help`` and every sub-command's stay fast: the option lists are imported only
    when a value is checked."""
    done = subprocess.run(
        [sys.executable, "-c", HELP_IMPORTS], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "['hopose', 'hopose.cli']"


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_grasp_completion_without_refinement_is_a_one_line_error(tmp_path, capsys, command):
    inputs = (
        ["--data", "synthetic", "--num", "2"]
        if command == "eval"
        else [str(tmp_path / "photo.jpg")]
    )
    args = [command, str(tmp_path / "model.pt"), *inputs, "--complete-grasp"]
    assert main([*args, "--out", str(tmp_path / "e")]) == 1
    assert capsys.readouterr().err == (
        f"hopose {command}: error: --complete-grasp: a stage of the refinement, needs --refine\n"
    )
    assert not (tmp_path / "e").exists()


def test_library_refuses_grasp_completion_without_refinement(tmp_path):
    """Python callers get the command's refusal too, before anything is read or written."""
    missing = tmp_path / "model.pt"
    message = "--complete-grasp: a stage of the refinement, needs --refine"
    with pytest.raises(ValueError, match=message):
        run_eval(missing, tiny("lifter").data, "test", tmp_path / "e", complete_grasp=True)
    with pytest.raises(ValueError, match=message):
        predict_images(missing, [tmp_path / "photo.jpg"], tmp_path / "p", complete_grasp=True)
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    ("device", "gpus", "message"),
    [
        ("foo", 0, "device must be one of ('cpu', 'cuda', 'cuda:N'), got 'foo'"),
        ("cuda:x", 1, "device must be one of ('cpu', 'cuda', 'cuda:N'), got 'cuda:x'"),
        ("cuda", 0, "device: 'cuda' asked, but no CUDA device is available"),
        ("cuda:1", 1, "device: 'cuda:1' asked, but this machine has 1 CUDA device(s)"),
    ],
)
def test_a_bad_device_is_a_one_line_error(tmp_path, capsys, monkeypatch, device, gpus, message):
    # A GPU machine answers as a machine with ``gpus`` GPUs would.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    cfg = tiny("lifter")
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(model_checkpoint(build_model(cfg.model), cfg, trained=["lifter"]), checkpoint)
    args = ["eval", str(checkpoint), "--data", "synthetic", "--num", "2", "--gt-2d"]
    args += ["--device", device]
    assert main([*args, "--out", str(tmp_path / "e")]) == 1
    assert capsys.readouterr().err == f"hopose eval: error: {message}\n"
    assert not (tmp_path / "e").exists()


def test_an_option_value_that_is_not_yaml_is_a_one_line_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["eval", "model.pt", "--data", "synthetic", "--option", "focal_scale=[1", "--out", "e"]
        )
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "hopose eval: error: argument --option: focal_scale: value is not YAML "
        "(did not find expected ',' or ']')"
    )


def test_an_unknown_dataset_option_is_a_one_line_error(tmp_path, capsys):
    """``--option`` reaches the dataset's constructor: a keyword it lacks was a TypeError
    traceback from the synthetic generator."""
    cfg = tiny("lifter")
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(model_checkpoint(build_model(cfg.model), cfg, trained=["lifter"]), checkpoint)
    args = ["eval", str(checkpoint), "--data", "synthetic", "--num", "2", "--gt-2d"]
    args += ["--option", "focal=2"]
    assert main([*args, "--out", str(tmp_path / "e")]) == 1
    assert capsys.readouterr().err == (
        "hopose eval: error: unknown key data.options.focal: the synthetic dataset takes "
        "('free_fraction', 'focal_scale', 'jitter')\n"
    )
    assert not (tmp_path / "e").exists()


def test_train_command_runs_a_shipped_config_with_overrides(tmp_path, capsys):
    out = tmp_path / "run"
    overrides = [*TINY, "optim.epochs=3", "optim.lr=0.004"]
    args = ["train", "synthetic/lifter", *(f"--set={item}" for item in overrides)]
    assert main([*args, "--out", str(out)]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["stage"] == "lifter"  # the shipped config's own values...
    assert saved["model"]["dropout"] == 0.0
    # ...with every override applied, a later one of a key winning (epochs 3 over TINY's 1).
    for key, value in dict(item.split("=") for item in overrides).items():
        found = saved
        for name in key.split("."):  # "device", "optim.epochs"
            found = found[name]
        assert found == yaml.safe_load(value), key
    assert (saved["optim"]["epochs"], saved["data"]["image_size"]) == (3, 32)
    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    best = min(rows, key=lambda row: float(row["val/error"]))
    printed = re.findall(r"^best validation error (\S+) at epoch (\d+)$", capsys.readouterr().out,
                         re.MULTILINE)  # fmt: skip
    assert printed == [(f"{float(best['val/error']):.3f}", best["epoch"])]


def test_a_diverged_training_is_one_line(tmp_path, capsys, monkeypatch):
    """hopose.train raises FloatingPointError naming the terms that are not finite."""
    message = "loss is not finite: terms ['3d'] are, all terms {'3d': nan}"

    def diverge(cfg, out_dir, *, resume):
        raise FloatingPointError(message)

    monkeypatch.setattr("hopose.train.train", diverge)
    args = ["train", "synthetic/lifter", "--set", "optim.lr=1e9", "--out", str(tmp_path)]
    assert main(args) == 1
    assert capsys.readouterr().err == f"hopose train: error: {message}\n"
    with pytest.raises(FloatingPointError):
        main(["--debug", *args])


def test_an_interrupted_command_is_one_line_with_the_sigint_status(tmp_path, capsys, monkeypatch):
    """Ctrl-C ends a command with one line and 130 (128 + SIGINT's 2), as a shell reports it;
    --debug keeps the traceback."""

    def interrupted(cfg, out_dir, *, resume):
        raise KeyboardInterrupt

    monkeypatch.setattr("hopose.train.train", interrupted)
    args = ["train", "synthetic/lifter", "--out", str(tmp_path)]
    assert main(args) == 130
    assert capsys.readouterr().err == "hopose train: interrupted\n"
    with pytest.raises(KeyboardInterrupt):
        main(["--debug", *args])


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"hopose {hopose.__version__}\n"


def test_shipped_configs_are_found_by_name_or_path(tmp_path, monkeypatch):
    assert find_config("fpha/lifter") == CONFIG_DIR / "fpha" / "lifter.yaml"
    assert find_config("synthetic/end2end.yaml") == CONFIG_DIR / "synthetic" / "end2end.yaml"
    # A file of that name in the working folder is the user's own config and wins.
    (tmp_path / "fpha").mkdir()
    (tmp_path / "fpha" / "lifter.yaml").write_text("stage: lifter\n")
    monkeypatch.chdir(tmp_path)
    assert find_config("fpha/lifter.yaml") == Path("fpha/lifter.yaml")
    with pytest.raises(FileNotFoundError, match=r"fpha/lifter2 \(neither a file nor one of .*"):
        find_config("fpha/lifter2")


def test_exit_on_user_error_ends_in_one_line_and_lets_bugs_through(capsys):
    parser = argparse.ArgumentParser(prog="script.py")

    def bad_file() -> None:
        raise ValueError("data.yaml: line 3\n  not a mapping")

    with pytest.raises(SystemExit) as exit_info:
        exit_on_user_error(parser, bad_file)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "script.py: error: data.yaml: line 3 not a mapping\n"
    with pytest.raises(KeyError):  # a bug keeps its traceback
        exit_on_user_error(parser, lambda: {}["missing"])
