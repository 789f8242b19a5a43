"""The command line: a tiny training and a smoke-sized demo end to end, the options of
``hopose ablate`` (the studies themselves: tests/test_ablate.py), one-line errors."""

from __future__ import annotations

import argparse
import csv
import importlib
import inspect
import io
import json
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch.utils.data import DataLoader, Dataset

import hopose
from hopose import ablate, cli, demo, evaluate
from hopose.checkpoint import load_model, model_checkpoint, save_checkpoint
from hopose.cli import SEED_RANGE, build_parser, exit_on_user_error, main
from hopose.configs import CONFIG_DIR, find_config
from hopose.data import CROPS, DATASETS, REAL_DATASETS, SYNTHETIC_SPLIT_KEYS, DataFileError
from hopose.data.dexycb import DEXYCB_SETUPS
from hopose.data.fpha import PROTOCOL_SPLITS
from hopose.data.grasps import DEFAULT_FREE_FRACTION, SEED_LIMIT
from hopose.data.ho3d import HO3D_VERSIONS
from hopose.data.transforms import DEFAULT_IMAGE_SIZE, ON_ERROR
from hopose.evaluate import EVAL_BATCH_SIZE, run_eval
from hopose.export import GRAPHS
from hopose.models import build_model
from hopose.photo import DEFAULT_FOCAL_35MM
from hopose.predict import PREDICT_BATCH_SIZE, predict_images
from test_ablate import fake_run
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
    fake_run(monkeypatch, errors | {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    monkeypatch.setattr(ablate, "train_stages", lambda *a, **k: {"encoder": "enc.pt"})
    out = tmp_path / "a"
    assert main(["ablate", *args, "--data", "synthetic", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hopose ablate: error: {message}") and err.count("\n") == 1
    assert not out.exists()


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
    calls = fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
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


class _UnreadableFrame(Dataset):
    """One frame whose image cannot be decoded, the error chained to its cause as
    hopose.data.transforms.read_frame_image chains it."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int):
        try:
            raise DataFileError("a.jpg: cannot decode image (image file is truncated)")
        except DataFileError as error:
            raise DataFileError(f"{error}; `hopose data check` lists them") from error


def test_an_error_in_a_dataloader_worker_is_one_line_of_its_own_message():
    """PyTorch raises a DataLoader worker's error again with the worker's traceback as its
    message (training's data.num_workers, eval --workers): the line shown is the original
    message, the worker named after it, not the traceback folded into one line."""
    with pytest.raises(DataFileError) as caught:
        next(iter(DataLoader(_UnreadableFrame(), num_workers=1)))
    assert "Original Traceback" in str(caught.value)  # as PyTorch raises it
    assert cli.one_line(caught.value) == (
        "a.jpg: cannot decode image (image file is truncated); `hopose data check` lists them "
        "(in DataLoader worker process 0)"
    )


class _SilentFailure(Dataset):
    """A frame whose reading fails with an error that has no message."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int):
        raise RuntimeError


def test_a_dataloader_workers_error_without_a_message_is_its_type_not_the_traceback():
    """Its traceback ends with "RuntimeError" alone, no "RuntimeError: " to take the message
    from: the line is the type's name, the worker named after it."""
    with pytest.raises(RuntimeError) as caught:
        next(iter(DataLoader(_SilentFailure(), num_workers=1)))
    assert cli.one_line(caught.value) == "RuntimeError (in DataLoader worker process 0)"


def test_a_warning_is_one_line_naming_the_command_and_debug_leaves_pythons_own(monkeypatch, capsys):
    """A library's warning (a --K off the photo, a random backbone) reads like the errors: one
    line, the command named, its message's line breaks folded; with --debug Python's warning
    machinery shows it as it would (here pytest's recorder), and main leaves it as it found it."""

    def warn(args):
        warnings.warn(f"principal point {args.checkpoint}\n  outside the photo", stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "_run_predict", warn)
    shown = warnings.showwarning
    assert main(["predict", "one", "p.jpg", "--out", "o"]) == 0
    assert (
        capsys.readouterr().err
        == "hopose predict: warning: principal point one outside the photo\n"
    )
    assert warnings.showwarning is shown
    with pytest.warns(UserWarning, match="principal point two"):
        assert main(["--debug", "predict", "two", "p.jpg", "--out", "o"]) == 0
    assert "warning:" not in capsys.readouterr().err


def test_numpys_word_on_flushed_subnormals_is_not_shown(monkeypatch, capsys):
    """numpy 1.x warns at each float type's first finfo that its smallest subnormal is zero,
    which it is inside a command (flushed, the test below): three lines of every hopose eval.
    Other warnings are shown."""

    def warn(args):
        message = "The value of the smallest subnormal for <class 'numpy.float64'> type is zero."
        warnings.warn(message, UserWarning, stacklevel=1)
        warnings.warn("principal point outside the photo", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "_run_predict", warn)
    assert main(["predict", "m.pt", "p.jpg", "--out", "o"]) == 0
    assert capsys.readouterr().err == "hopose predict: warning: principal point outside the photo\n"


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_terminal_that_cannot_show_the_tables_characters_shows_a_question_mark(
    monkeypatch, encoding
):
    """The demo prints its table after training ("27.3 ± 0.9"; reports hold "–" and "≤"): on
    an ASCII or Latin-1 terminal the print failed the command at its very end."""
    shown = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(shown, encoding=encoding))
    monkeypatch.setattr(cli, "_run_predict", lambda args: print("27.3 ± 0.9 – ≤ 3%"))
    assert main(["predict", "m.pt", "p.jpg", "--out", "o"]) == 0
    sys.stdout.flush()
    expected = {"ascii": "27.3 ? 0.9 ? ? 3%\n", "latin-1": "27.3 ± 0.9 ? ? 3%\n"}[encoding]
    assert shown.getvalue() == expected.encode(encoding)


def test_a_command_runs_with_subnormal_floats_flushed_and_restores_them(monkeypatch):
    """1e-39 is a float32 subnormal (below 1.18e-38): inside a command the CPU reads it as zero
    (denormals-are-zero), so 1e-39 * 1 is 0; outside, the same product is 1e-39 again, for the
    Python caller's own arithmetic. Also after an error."""
    subnormal = torch.tensor([1e-39])
    seen = []

    def product(args):
        seen.append(float(subnormal * 1.0))
        if args.checkpoint == "fails":
            raise ValueError("bad")
        return 0

    monkeypatch.setattr(cli, "_run_predict", product)
    assert main(["predict", "runs", "p.jpg", "--out", "o"]) == 0
    assert main(["predict", "fails", "p.jpg", "--out", "o"]) == 1
    assert seen == [0.0, 0.0]
    assert float(subnormal * 1.0) == pytest.approx(1e-39, rel=1e-3)


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
    (
        ["prepare", "fpha", "--split", "train", "--out", "e", "--protocol"],
        "--protocol", tuple(PROTOCOL_SPLITS),
    ),
    (["data", "check", "ho3d", "--root", "r", "--version"], "--version", tuple(HO3D_VERSIONS)),
    (
        ["prepare", "dexycb", "--split", "train", "--out", "e", "--setup"],
        "--setup", tuple(DEXYCB_SETUPS),
    ),
    (["prepare", "fpha", "--split", "train", "--out", "e", "--on-error"], "--on-error", ON_ERROR),
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
    dest = option.removeprefix("--").replace("-", "_")
    for value in allowed:
        assert getattr(build_parser().parse_args([*args, value]), dest) == value


EVAL = ["eval", "model.pt", "--data", "synthetic"]
PREDICT = ["predict", "model.pt", "photo.jpg"]
# A value the option refuses: (the command before it, the option, the value, what the usage
# error says the option expects).
REFUSED_VALUES = [
    # numpy's SeedSequence refused a negative seed with "expected non-negative integer", naming
    # nothing.
    *(
        (args, "--seed", "-3", "expected an integer >= 0")
        for args in (
            ["synth", "--split", "val", "--num", "2", "--out", "c"],
            ["synth", "--stats", "--num", "2"],
            ["prepare", "synthetic", "--split", "val", "--num", "2", "--out", "c"],
            [*EVAL, "--out", "e"],
            ["ablate", "lifter", "--data", "synthetic", "--out", "a"],
        )
    ),
    # Counts named data.num_train or eval's data.num_workers, failed inside torch after loading,
    # or inside numpy; an image side below 8 named the renderer's argument (image_size: must be
    # >= 8).
    ([*EVAL, "--out", "e"], "--workers", "-1", "expected an integer >= 0"),
    ([*EVAL, "--out", "o"], "--num", "-5", "expected an integer >= 1"),
    ([*EVAL, "--num", "2", "--out", "o"], "--batch-size", "-1", "expected an integer >= 1"),
    (["ablate", "lifter", "--data", "synthetic", "--out", "o"], "--num", "-1",
     "expected an integer >= 1"),
    (["synth", "--split", "val", "--out", "o"], "--num", "-3", "expected an integer >= 1"),
    (["synth", "--split", "val", "--num", "2", "--out", "o"], "--workers", "-2",
     "expected an integer >= 0"),
    (["prepare", "synthetic", "--split", "val", "--out", "o"], "--num", "0",
     "expected an integer >= 1"),
    (["prepare", "synthetic", "--split", "val", "--num", "2", "--out", "o"], "--workers", "-2",
     "expected an integer >= 0"),
    (["synth", "--split", "val", "--num", "2", "--out", "o"], "--image-size", "0",
     "expected an integer >= 8"),
    (["prepare", "synthetic", "--split", "val", "--num", "2", "--out", "o"], "--image-size", "7",
     "expected an integer >= 8"),
    # The config's data.image_size bound (hopose.data.synthetic.MAX_IMAGE_SIZE): a cache of
    # larger images no training config reads, and 10000 px renders were MemoryErrors.
    (["synth", "--split", "val", "--num", "2", "--out", "o"], "--image-size", "4097",
     "expected an integer <= 4096"),
    (["prepare", "synthetic", "--split", "val", "--num", "2", "--out", "o"], "--image-size",
     str(2**31), "expected an integer <= 4096"),
    ([*PREDICT, "--out", "o"], "--batch-size", "0", "expected an integer >= 1"),
    # Passed on as data.self_crop_margin, its config check named that field, not the flag.
    *(
        (args, "--self-crop-margin", value, "expected a finite number >= 0")
        for args in ([*PREDICT, "--out", "o"], [*EVAL, "--num", "2", "--out", "o"])
        for value in ("-1", "nan", "inf")
    ),
    # Not a value of the option's type at all: not a later failure, or a value taken as the
    # least one.
    ([*EVAL, "--out", "o"], "--num", "abc", "expected an integer >= 1"),
    ([*EVAL, "--out", "o"], "--num", "2.5", "expected an integer >= 1"),
    ([*EVAL, "--out", "o"], "--seed", "", "expected an integer >= 0"),
    ([*EVAL, "--out", "o"], "--self-crop-margin", "wide", "expected a finite number >= 0"),
    *(
        ([*PREDICT, "--out", "o"], "--K", value, "expected fx,fy,cx,cy (four numbers)")
        for value in ("500,500,320,240,1", "500,500,320", "500,500,320,x")
    ),
    *(
        ([*EVAL, "--out", "o"], "--option", value, "expected KEY=VALUE")
        for value in ("1x=3", "a.b=3", "jitter")
    ),
    # An empty value read as null, as --set's did (`--option focal_scale=$F`, F unset).
    ([*EVAL, "--out", "o"], "--option", "focal_scale=", "expected a value after = (write "
     "focal_scale=null for none)"),
    # Counts of 2**63 or more were an OverflowError traceback (numpy, torch); below it, a count
    # no machine holds failed late or not at all. MAX_COUNT = 2**31 - 1 is the most.
    *(
        (args, option, value, "expected an integer <= 2147483647")
        for args, option in (
            ([*EVAL, "--out", "o"], "--num"),
            ([*EVAL, "--num", "2", "--out", "o"], "--batch-size"),
            (["synth", "--stats"], "--num"),
            (["synth", "--split", "val", "--out", "o"], "--num"),
            (["prepare", "synthetic", "--split", "val", "--out", "o"], "--num"),
            (["ablate", "lifter", "--data", "synthetic", "--out", "o"], "--num"),
            ([*PREDICT, "--out", "o"], "--batch-size"),
        )
        for value in (str(2**31), str(10**20))
    ),
    # A seed past one 32-bit word was refused later naming the config's field (data.seed), or
    # by numpy naming nothing.
    *(
        (args, "--seed", str(2**32), "expected an integer <= 4294967295")
        for args in ([*EVAL, "--num", "2", "--out", "o"], ["synth", "--stats", "--num", "2"])
    ),
    # A blank --out is the current folder to every command: eval deleted ./report.md.
    *(
        (args, "--out", value, "expected a path")
        for args in (
            [*EVAL, "--num", "2"], ["score", "predictions.npz"], ["compare", "a", "b"],
            ["train", "synthetic/lifter"], ["synth", "--split", "val", "--num", "2"],
            ["prepare", "synthetic", "--split", "val", "--num", "2"], PREDICT,
            ["ablate", "lifter", "--data", "synthetic"], ["demo", "--quick"],
            ["export", "model.pt"],
        )
        for value in ("", " ")
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "option", "value", "expected"),
    REFUSED_VALUES,
    ids=[shlex.join([*args, option, value]) for args, option, value, _ in REFUSED_VALUES],
)
def test_a_refused_value_is_a_usage_error_naming_the_option(
    tmp_path, capsys, monkeypatch, args, option, value, expected
):
    """argparse's usage error naming the option and the value, status 2, before anything is
    written."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, option, value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"hopose {args[0]}: error: argument {option}: {expected}, got {value!r}"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_largest_counts_and_seeds_are_accepted():
    """The bounds of the refusals above are the largest values taken, not past them."""
    parse = build_parser().parse_args
    assert parse([*EVAL, "--num", str(2**31 - 1), "--out", "o"]).num == 2**31 - 1
    assert parse([*EVAL, "--seed", str(SEED_LIMIT - 1), "--out", "o"]).seed == SEED_LIMIT - 1
    assert cli.MAX_COUNT == 2**31 - 1 and cli.SEED_MAX == SEED_LIMIT - 1


@pytest.mark.parametrize(
    "args",
    [
        [*EVAL, "--num", "2", "--out", "o"],
        ["prepare", "synthetic", "--split", "val", "--num", "2", "--out", "o"],
        ["synth", "--split", "val", "--num", "2", "--out", "o"],
    ],
    ids=["eval", "prepare", "synth"],
)
def test_workers_beyond_four_per_cpu_are_a_usage_error_naming_the_option(
    tmp_path, capsys, monkeypatch, args
):
    """--workers 100000 forked thousands of processes and ran the machine out of memory: at most
    WORKERS_PER_CPU (4) per CPU, parsed only (no process is started). On a 2-CPU machine 8
    is the most; os.cpu_count() None (unknown) counts as one CPU."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 2)
    assert build_parser().parse_args([*args, "--workers", "8"]).workers == 8
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--workers", "9"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"hopose {args[0]}: error: argument --workers: expected at most 8 (4 per CPU of this "
        "machine), got '9'"
    )
    monkeypatch.setattr(cli.os, "cpu_count", lambda: None)
    assert build_parser().parse_args([*args, "--workers", "4"]).workers == 4
    with pytest.raises(SystemExit):
        build_parser().parse_args([*args, "--workers", "5"])
    assert list(tmp_path.iterdir()) == []


def test_export_to_a_path_ending_in_a_separator_is_refused_naming_it(tmp_path, capsys):
    """`--out newdir/` (a folder meant) wrote an ONNX file named newdir."""
    out = f"{tmp_path / 'newdir'}/"
    assert main(["export", str(tmp_path / "model.pt"), "--out", out]) == 1
    assert capsys.readouterr().err == (
        f"hopose export: error: --out: {out} ends in a path separator, naming a folder; give "
        "the ONNX file's path\n"
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
        # --seed was recorded in metrics.json as the seed of frames it did not choose.
        (["eval", "model.pt", "--data", "fpha", "--root", "/nonexistent", "--seed", "5"],
         "--seed: the seed of synthetic data; fpha's frames are read"),
        (["prepare", "ho3d", "--root", "/nonexistent", "--split", "train", "--seed", "5"],
         "--seed: the seed of synthetic data; ho3d's frames are read"),
        (["ablate", "lifter", "--data", "dexycb", "--root", "/nonexistent", "--seed", "0"],
         "--seed: the seed of synthetic data; dexycb's frames are read"),
    ],
)  # fmt: skip
def test_options_of_another_dataset_are_refused_naming_them(
    tmp_path, capsys, monkeypatch, args, message
):
    """They were dropped without a word, and the command exited 0. `data check`'s errors are
    named "hopose data check", as its usage errors are (they were "hopose data")."""
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--out", "o"] if args[0] != "data" else args) == 1
    command = " ".join(args[:2]) if args[0] == "data" else args[0]
    assert capsys.readouterr().err == f"hopose {command}: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fraction", ["1.5", "-0.1", "nan"])
def test_synth_stats_refuses_a_free_fraction_outside_0_1(capsys, fraction):
    assert main(["synth", "--stats", "--num", "2", "--free-fraction", fraction]) == 1
    assert capsys.readouterr() == (
        "",
        f"hopose synth: error: --free-fraction: must be in [0, 1], got {float(fraction)}\n",
    )


@pytest.fixture
def library_calls(monkeypatch) -> list[dict]:
    """The keyword arguments of each call the CLI makes to prepare_cache, eval_data_config and
    run_eval, which are replaced by a recorder: those passed, over the function's defaults for
    those not (the CLI leaves some unset options to them). The checkpoint eval reads for the
    two (load_model) is read as no network and no config, which the recorders pass on."""
    calls = []

    def recorder(function):
        parameters = inspect.signature(function).parameters.values()
        defaults = {p.name: p.default for p in parameters if p.default is not p.empty}

        def record(*args, **kwargs):
            calls.append(defaults | kwargs)
            return {}

        return record

    for target in (
        "hopose.data.cache.prepare_cache",
        "hopose.evaluate.eval_data_config",
        "hopose.evaluate.run_eval",
    ):
        module, name = target.rsplit(".", 1)
        monkeypatch.setattr(target, recorder(getattr(importlib.import_module(module), name)))
    monkeypatch.setattr("hopose.checkpoint.load_model", lambda path, from_images: (None, None))
    return calls


def test_unset_options_take_the_library_defaults(tmp_path, library_calls, capsys):
    assert (DEFAULT_IMAGE_SIZE, DEFAULT_FREE_FRACTION, EVAL_BATCH_SIZE) == (224, 0.2, 64)
    calls = library_calls
    out = str(tmp_path / "e")
    assert main(["synth", "--split", "val", "--num", "3", "--out", out]) == 0
    assert main(["prepare", "synthetic", "--split", "val", "--num", "2", "--out", out]) == 0
    assert main(["eval", "model.pt", "--data", "synthetic", "--num", "2", "--out", out]) == 0
    synth, prepare, _, evaluate = calls
    assert synth["image_size"] == prepare["image_size"] == DEFAULT_IMAGE_SIZE
    assert synth["free_fraction"] == DEFAULT_FREE_FRACTION
    assert (prepare["crop"], prepare["on_error"]) == ("resize", "raise")
    assert evaluate["batch_size"] == EVAL_BATCH_SIZE


def test_numbers_in_the_help_are_the_constants_they_restate():
    """The help is built without importing the implementation, so the seed range, the default
    lens and the ablation's seeds are written out there: each must still be the constant's
    value (hopose.data.grasps.SEED_LIMIT, hopose.photo.DEFAULT_FOCAL_35MM, hopose.ablate.SEEDS)."""
    commands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    # SEED_RANGE is "0 to 2**32 - 1": seeds below SEED_LIMIT = 2**32.
    exponent = re.fullmatch(r"0 to 2\*\*(\d+) - 1", SEED_RANGE).group(1)
    assert 2 ** int(exponent) == SEED_LIMIT
    seed_helps = {
        name: action.help
        for name, parser in commands.items()
        for action in parser._actions
        if "--seed" in action.option_strings
    }
    assert set(seed_helps) == {"eval", "ablate", "prepare", "synth"}
    assert all(f"({SEED_RANGE})" in text for text in seed_helps.values())
    # The epilog's "a 26 mm (35 mm-equivalent) lens" is DEFAULT_FOCAL_35MM = 26.0.
    focal = re.search(r"a (\d+(?:\.\d+)?) mm \(35 mm-equivalent\)", commands["predict"].epilog)
    assert float(focal.group(1)) == DEFAULT_FOCAL_35MM
    # ablate --seeds: "(default: 3)" is hopose.ablate.SEEDS.
    (seeds,) = (a.help for a in commands["ablate"]._actions if "--seeds" in a.option_strings)
    assert f"(default: {ablate.SEEDS})" in seeds


def _parsers(parser: argparse.ArgumentParser, name: str = "hopose"):
    """``(name, parser)`` of ``parser`` and of each sub-command below it, ``data check`` too."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {command}")


def _help(command: str, option: str) -> str:
    """The help text of ``option`` (a flag, or a positional's name) of ``hopose <command>``."""
    parsers = dict(_parsers(build_parser()))
    (text,) = (
        a.help
        for a in parsers[f"hopose {command}"]._actions
        if option in a.option_strings or option == a.dest
    )
    return text


def test_every_argument_and_sub_command_has_help():
    """``--help`` explains each argument of each command, positional ones too, and lists each
    sub-command with a line of its own."""
    lacking = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    lacking += [
        f"{name} {choice.dest}"
        for name, parser in _parsers(build_parser())
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
        if not choice.help
    ]
    assert lacking == []


def test_name_lists_and_defaults_in_the_help_are_the_constants_they_restate():
    """The help is built without importing hopose.data, so the datasets, crops, on_error values,
    synthetic splits and default image size are written out in hopose.cli: each must still be
    the constant's, and the help of each option that takes them lists them."""
    written_out = (
        cli.DATASET_NAMES, cli.REAL_DATASET_NAMES, cli.CROP_NAMES, cli.ON_ERROR_NAMES,
        cli.SYNTHETIC_SPLIT_NAMES, cli.DEFAULT_IMAGE_SIZE,
    )  # fmt: skip
    assert written_out == (
        DATASETS, tuple(REAL_DATASETS), CROPS, ON_ERROR, tuple(SYNTHETIC_SPLIT_KEYS),
        DEFAULT_IMAGE_SIZE,
    )  # fmt: skip
    assert _help("prepare", "dataset") == "the dataset: synthetic, fpha, obman, ho3d, dexycb"
    assert _help("data check", "dataset") == "the dataset: fpha, obman, ho3d, dexycb"
    assert _help("eval", "--data") == _help("prepare", "dataset")
    assert "resize or square" in _help("eval", "--crop")
    assert "resize or square" in _help("prepare", "--crop")
    assert "(the default)" in _help("prepare", "--crop")
    assert _help("prepare", "--on-error").startswith(
        "raise or skip: stop at a bad sample (the default"
    )
    assert f"default {DEFAULT_IMAGE_SIZE})" in _help("prepare", "--image-size")
    assert f"default {DEFAULT_IMAGE_SIZE})" in _help("synth", "--image-size")
    assert _help("synth", "--split").startswith(
        "the split to write: train, val, test; required unless --stats"
    )
    assert "required unless --stats" in _help("synth", "--out")


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


SYNTHETIC_IMPORTS = """
import sys
from hopose.cli import build_parser, main
out = sys.argv[1]
for argv in (
    ["train", "synthetic/lifter", "--out", out],
    ["eval", "model.pt", "--data", "synthetic", "--out", out],
    ["prepare", "synthetic", "--split", "val", "--out", out],
):
    build_parser().parse_args(argv)
main(["synth", "--split", "val", "--num", "2", "--out", out])
print("trimesh" in sys.modules)
"""


def test_synthetic_data_imports_no_trimesh(tmp_path):
    """Only a real dataset's meshes need trimesh, and its import swallows a Ctrl-C
    (hopose.data.mesh): parsing a synthetic command (which imports hopose.data, the dataset
    names) and writing a synthetic split leave it unimported."""
    done = subprocess.run(
        [sys.executable, "-c", SYNTHETIC_IMPORTS, str(tmp_path / "s")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.splitlines()[-1] == "False"


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
    """Python callers get the command's refusal too, in their parameters' names, before
    anything is read or written."""
    missing = tmp_path / "model.pt"
    message = r"^complete_grasp: a stage of the refinement, needs refine$"
    with pytest.raises(ValueError, match=message):
        run_eval(missing, tiny("lifter").data, "test", tmp_path / "e", complete_grasp=True)
    with pytest.raises(ValueError, match=message):
        predict_images(missing, [tmp_path / "photo.jpg"], tmp_path / "p", complete_grasp=True)
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    ("device", "gpus", "message"),
    [
        ("foo", 0, "device must be one of ('auto', 'cpu', 'cuda', 'cuda:N'), got 'foo'"),
        ("cuda:x", 1, "device must be one of ('auto', 'cpu', 'cuda', 'cuda:N'), got 'cuda:x'"),
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


@pytest.mark.parametrize(
    ("device", "gpus", "message"),
    [
        ("foo", 0, "--device must be one of ('auto', 'cpu', 'cuda', 'cuda:N'), got 'foo'"),
        ("cuda", 0, "--device: 'cuda' asked, but no CUDA device is available"),
        ("cuda:1", 1, "--device: 'cuda:1' asked, but this machine has 1 CUDA device(s)"),
    ],
)
def test_predict_refuses_a_bad_device_in_one_line_before_reading_anything(
    tmp_path, capsys, monkeypatch, device, gpus, message
):
    """predict takes eval's devices and "auto", checked as eval's are (a GPU the machine lacks
    too), named as the option: before the checkpoint or the photos, neither of which exists
    here, are looked for."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    args = ["predict", str(tmp_path / "model.pt"), str(tmp_path / "photo.jpg")]
    assert main([*args, "--device", device, "--out", str(tmp_path / "p")]) == 1
    assert capsys.readouterr().err == f"hopose predict: error: {message}\n"
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--fov", "0"], "--fov: expected a horizontal field of view in (0, 180) deg, got 0.0"),
        (["--K", "0,500,320,240"], "--K: expected fx,fy,cx,cy with fx, fy > 0, got (0.0, 500.0, "
         "320.0, 240.0)"),
        (["--K", "500,inf,320,240"], "--K: expected fx,fy,cx,cy with fx, fy > 0, got (500.0, "
         "inf, 320.0, 240.0)"),
    ],
)  # fmt: skip
def test_predict_names_a_camera_that_is_none_as_its_option_before_reading_anything(
    tmp_path, capsys, option, message
):
    """The library names its parameters (K, fov: tests/test_photo.py); the command its
    options, before the checkpoint or the photos, neither of which exists here, are looked
    for."""
    args = ["predict", str(tmp_path / "model.pt"), str(tmp_path / "photo.jpg"), *option]
    assert main([*args, "--out", str(tmp_path / "p")]) == 1
    assert capsys.readouterr().err == f"hopose predict: error: {message}\n"
    assert not (tmp_path / "p").exists()


def test_predict_passes_its_batch_size_on_the_librarys_by_default(tmp_path, monkeypatch):
    """--batch-size reaches predict_images; unset, it is the library's default, written out in
    the help (hopose.predict.PREDICT_BATCH_SIZE)."""
    asked = []
    monkeypatch.setattr(
        "hopose.predict.predict_images", lambda *args, **kwargs: asked.append(kwargs)
    )
    predicting = ["predict", "model.pt", "photo.jpg", "--out", str(tmp_path / "p")]
    assert main(predicting) == 0 and main([*predicting, "--batch-size", "3"]) == 0
    assert [kwargs["batch_size"] for kwargs in asked] == [PREDICT_BATCH_SIZE, 3]
    assert cli.PREDICT_BATCH_SIZE == PREDICT_BATCH_SIZE
    assert f"(default {PREDICT_BATCH_SIZE}; 1: one photo at a time)" in _help(
        "predict", "--batch-size"
    )


def test_eval_and_predict_run_on_a_gpu_when_there_is_one_unless_told_otherwise(
    tmp_path, library_calls, monkeypatch
):
    """--device defaults to "auto", as training's device does (eval was given the CPU on a
    machine with a GPU): eval and predict pass it on to run_eval and predict_images, which
    resolve it (hopose.config.resolve_device, tests/test_config.py; tests/test_predict.py);
    --device cpu keeps both on the CPU of a GPU machine."""
    asked = []

    def record(*args, **kwargs):
        asked.append(kwargs["device"])
        return []

    monkeypatch.setattr("hopose.predict.predict_images", record)
    evaluate = ["eval", "model.pt", "--data", "synthetic", "--num", "2"]
    evaluate += ["--out", str(tmp_path / "e")]
    assert main(evaluate) == 0 and main([*evaluate, "--device", "cpu"]) == 0
    predicting = ["predict", "model.pt", "photo.jpg", "--out", str(tmp_path / "p")]
    assert main(predicting) == 0 and main([*predicting, "--device", "cpu"]) == 0
    _, unasked, _, cpu = library_calls  # eval_data_config, run_eval, twice
    assert (unasked["device"], cpu["device"]) == ("auto", "cpu")
    assert asked == ["auto", "cpu"]


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


@pytest.mark.parametrize(
    ("option", "message"),
    [
        # 1 * 60 + 30: the zoom asked for 90 times the focal length.
        ("focal_scale=1:30", "focal_scale: 1:30 reads as 90 in YAML 1.1 (a colon counts in "
         "base 60); write 90"),
        ("margin=010", "margin: 010 reads as 8 in YAML 1.1 (a leading zero is octal); write 8 "
         "or 10"),
        ("protocol=hope #2", "protocol: hope #2 reads as 'hope' in YAML 1.1; quote it to keep "
         "the text"),
        ("protocol=#2", "protocol: #2 reads as null in YAML 1.1 (# starts a comment); quote it "
         "to keep the text"),
        # A list's items are judged one by one.
        ("focal_scale=[0.8, 1:30]", "focal_scale[1]: 1:30 reads as 90 in YAML 1.1 (a colon "
         "counts in base 60); write 90"),
    ],
)  # fmt: skip
def test_an_option_value_that_yaml_1_1_reads_otherwise_is_a_usage_error(capsys, option, message):
    """``--option`` is read as ``--set`` is, and judged alike: an option declares no type, so
    the value's own stands for it."""
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "model.pt", "--data", "synthetic", "--option", option, "--out", "e"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"hopose eval: error: argument --option: {message}"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.35", 1.35), ("[0.8, 1.6]", [0.8, 1.6]), ("'hope #2'", "hope #2"), ("1e-3", 1e-3)],
)
def test_an_option_value_read_as_it_is_written_is_accepted(text, value):
    args = build_parser().parse_args(
        ["eval", "model.pt", "--data", "synthetic", "--option", f"key={text}", "--out", "e"]
    )
    assert dict(args.options) == {"key": value}


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


def test_a_run_without_a_validation_split_says_best_pt_is_its_last_epoch(tmp_path, capsys):
    """Without validation there is no best error to print (it stayed inf): the command says
    which epoch best.pt holds, the last."""
    args = ["train", "synthetic/lifter", *(f"--set={item}" for item in TINY)]
    args += ["--set=optim.epochs=2", "--set=data.val_split=null", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "no validation split: best.pt holds the last epoch's network (2)"
    )


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


class _InterruptedImport:
    """A meta path finder: importing ``module`` is interrupted, as by a Ctrl-C during it."""

    def __init__(self, module: str):
        self.module = module

    def find_spec(self, name, path, target=None):
        if name == self.module:
            raise KeyboardInterrupt
        return None


@pytest.mark.parametrize(
    ("module", "argv", "prog"),
    [
        # Parsing a dataset's name imports hopose.data (and with it torch): no command yet.
        ("hopose.data", ["eval", "model.pt", "--data", "synthetic"], "hopose"),
        ("torch", ["train", "synthetic/lifter"], "hopose train"),  # every command, after parsing
    ],
)
def test_a_ctrl_c_during_the_first_imports_is_one_line(
    tmp_path, capsys, monkeypatch, module, argv, prog
):
    """The first seconds of a command are imports: a Ctrl-C there ends it as one later does,
    one line and 130, not an import's traceback."""
    monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport(module), *sys.meta_path])
    try:
        status = main([*argv, "--out", str(tmp_path / "out")])
    except KeyboardInterrupt:  # caught: escaping, it would end the whole test session
        pytest.fail("the Ctrl-C escaped main, a traceback")
    assert status == 130
    assert capsys.readouterr().err == f"{prog}: interrupted\n"
    assert not (tmp_path / "out").exists()


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


def test_a_missing_file_is_a_one_line_error_and_debug_shows_the_traceback(tmp_path, capsys):
    """A config that is neither a file nor a shipped name is an OSError (FileNotFoundError), a
    user error as a ValueError is: one line naming it and status 1, not a traceback."""
    missing = tmp_path / "nope.yaml"
    args = ["train", str(missing), "--out", str(tmp_path / "run")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hopose train: error: config not found: {missing} (neither a file")
    assert err.count("\n") == 1
    with pytest.raises(FileNotFoundError):
        main(["--debug", *args])
    assert not (tmp_path / "run").exists()


def test_the_least_value_of_each_option_is_accepted():
    """The bounds are inclusive: a count of 1, a seed or a worker count of 0, an image side of
    8 (MIN_IMAGE_SIZE), a margin of 0; --K's four numbers become floats."""
    parse = build_parser().parse_args
    least = ["--num", "1", "--seed", "0", "--workers", "0", "--batch-size", "1"]
    args = parse(
        ["eval", "m.pt", "--data", "synthetic", *least, "--self-crop-margin", "0", "--out", "e"]
    )
    assert (args.num, args.seed, args.workers, args.batch_size) == (1, 0, 0, 1)
    assert args.self_crop_margin == 0.0
    args = parse(["synth", "--split", "val", "--num", "1", "--image-size", "8", "--out", "c"])
    assert (args.num, args.image_size) == (1, 8)
    args = parse(["predict", "m.pt", "p.jpg", "--K", "500,501.5,320,240", "--out", "o"])
    assert args.K == (500.0, 501.5, 320.0, 240.0)
    args = parse(["eval", "m.pt", "--data", "synthetic", "--option", "focal_scale=1.6",
                  "--option", "jitter=true", "--out", "e"])  # fmt: skip
    assert args.options == [("focal_scale", 1.6), ("jitter", True)]


def test_given_options_reach_the_library_arguments_they_name(tmp_path, library_calls):
    """Each option set to a value other than its default arrives in the argument it names
    (a seed passed as the worker count would go unnoticed with both at 0)."""
    calls = library_calls
    out = str(tmp_path / "e")
    synth = ["synth", "--split", "val", "--num", "3", "--seed", "7", "--workers", "2"]
    assert main([*synth, "--image-size", "16", "--free-fraction", "0.5", "--out", out]) == 0
    prepare = ["prepare", "synthetic", "--split", "val", "--num", "4", "--seed", "5"]
    prepare += ["--crop", "square", "--on-error", "skip"]
    assert main([*prepare, "--workers", "3", "--image-size", "24", "--out", out]) == 0
    evaluate = ["eval", "model.pt", "--data", "synthetic", "--num", "2", "--out", out]
    assert main([*evaluate, "--batch-size", "3", "--seed", "9", "--workers", "1"]) == 0
    assert main([*evaluate, "--no-report"]) == 0
    assert main([*evaluate, "--no-plausibility"]) == 0
    synth, prepare, data, evaluate, _, no_report, _, no_plausibility = calls
    assert (synth["num_samples"], synth["seed"], synth["workers"]) == (3, 7, 2)
    assert (synth["image_size"], synth["free_fraction"]) == (16, 0.5)
    assert (prepare["num_samples"], prepare["seed"], prepare["workers"]) == (4, 5, 3)
    assert (prepare["image_size"], prepare["crop"], prepare["on_error"]) == (24, "square", "skip")
    assert (data["num"], data["seed"], data["num_workers"]) == (2, 9, 1)
    assert evaluate["batch_size"] == 3
    assert (evaluate["report"], evaluate["plausibility"]) == (True, True)
    # --no-report skips the plausibility metrics too (they are part of the report).
    assert (no_report["report"], no_report["plausibility"]) == (False, False)
    assert (no_plausibility["report"], no_plausibility["plausibility"]) == (True, False)


def test_synth_stats_refuses_a_workers_count_it_would_not_use(capsys):
    """--stats writes no cache: a rendering worker count given with it is named, not ignored."""
    assert main(["synth", "--stats", "--num", "2", "--workers", "2"]) == 1
    assert capsys.readouterr() == (
        "",
        "hopose synth: error: --workers: not used with --stats (it writes no cache)\n",
    )


def _whole_frame_network(monkeypatch) -> None:
    """predict's load_model gives a tiny untrained whole-frame network (one pass per photo)."""
    cfg = tiny("end2end", "data.crop=resize", "data.options.jitter=false")
    model = build_model(cfg.model)
    monkeypatch.setattr("hopose.predict.load_model", lambda path: (model, cfg))


def _noise_png(path: Path) -> None:
    pixels = torch.randint(0, 256, (30, 40, 3), dtype=torch.uint8, generator=torch.Generator())
    Image.fromarray(pixels.numpy()).save(path)


def test_predict_of_a_folder_skips_an_unreadable_image_and_exits_1_counting_it(
    tmp_path, monkeypatch, capsys
):
    """stdout lists the JSONs written, as each is; stderr has one warning line naming the file
    that is not an image, then one error line counting it; the status is 1."""
    _whole_frame_network(monkeypatch)
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    _noise_png(photos / "a.png")
    (photos / "b.jpg").write_text("not an image")
    _noise_png(photos / "c.png")
    assert main(["predict", "m.pt", str(photos), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"{out / 'a.json'}\n{out / 'c.json'}\n"
    bad = photos / "b.jpg"
    assert captured.err == (
        f"hopose predict: warning: {bad}: not a readable image (cannot identify image file "
        f"'{bad}'); skipped\n"
        f"hopose predict: error: 1 of 3 images not readable (named above); the other 2 "
        f"predicted into {out}\n"
    )


def test_predict_no_overlay_writes_only_the_jsons(tmp_path, monkeypatch, capsys):
    _whole_frame_network(monkeypatch)
    _noise_png(tmp_path / "photo.png")
    out = tmp_path / "out"
    assert main(["predict", "m.pt", str(tmp_path / "photo.png"), "--no-overlay",
                 "--out", str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out == f"{out / 'photo.json'}\n"
    assert list(out.iterdir()) == [out / "photo.json"]
    assert json.loads((out / "photo.json").read_text())["overlay"] is None


def _predictions_file(path: Path, **arrays) -> Path:
    """A predictions.npz of 2 frames of the shapes hopose eval writes (zeros), ``arrays`` over
    them (None: left out)."""
    shapes = {"pred_hand_3d": (21, 3), "gt_hand_3d": (21, 3), "pred_obj_3d": (8, 3),
              "gt_obj_3d": (8, 3), "pred_hand_2d": (21, 2), "gt_hand_2d": (21, 2),
              "pred_obj_2d": (8, 2), "gt_obj_2d": (8, 2), "K": (3, 3)}  # fmt: skip
    written = {key: np.zeros((2, *shape)) for key, shape in shapes.items()}
    written |= {"id": np.array(["f0", "f1"]), **arrays}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{key: value for key, value in written.items() if value is not None})
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"gt_obj_3d": None}, "no 'gt_obj_3d' array, (N, 8, 3)"),
        (
            {"pred_hand_3d": np.zeros((2, 20, 3))},
            "'pred_hand_3d' has shape (2, 20, 3), not (N, 21, 3)",
        ),
        ({"id": np.array(["f0", "f1", "f2"])}, "'pred_hand_3d' holds 2 frames, 'id' 3"),
        (
            {key: np.zeros((0, *shape)) for key, shape in evaluate.PREDICTION_ARRAYS.items()},
            "no frames (its arrays are empty)",
        ),
    ],
    ids=["missing", "shape", "frames", "empty"],
)
def test_score_names_the_file_and_the_array_it_cannot_read(tmp_path, capsys, arrays, message):
    """hopose score refuses, in one line naming the file and the array, a predictions.npz
    without an array it scores, with one of another shape, of another number of frames, or
    with no frames; and writes nothing."""
    path = _predictions_file(tmp_path / "run" / "predictions.npz", **arrays)
    assert main(["score", str(path), "--out", str(tmp_path / "score")]) == 1
    assert capsys.readouterr().err.startswith(f"hopose score: error: {path}: {message}")
    assert not (tmp_path / "score").exists()


def test_score_refuses_the_folder_of_the_evaluation_it_reads(tmp_path, capsys):
    """--out the folder of the predictions.npz would replace its evaluation's metrics.json."""
    path = _predictions_file(tmp_path / "run" / "predictions.npz")
    (tmp_path / "run" / "metrics.json").write_text("{}")
    assert main(["score", str(path), "--out", str(tmp_path / "run")]) == 1
    assert f"--out: {tmp_path / 'run'} holds predictions.npz" in capsys.readouterr().err
    assert (tmp_path / "run" / "metrics.json").read_text() == "{}"


@pytest.mark.parametrize(
    ("image_size", "shown"),
    [(None, "null"), ("32px", '"32px"')],
    ids=["null", "text"],
)
def test_score_refuses_a_bad_entry_of_the_metrics_json_beside_the_file_before_out_is_cleared(
    tmp_path, capsys, image_size, shown
):
    """The metrics.json beside the file, its image_size (the gallery's canvas) not a number:
    one line naming that file and the entry (it was a TypeError traceback, or "invalid literal"
    naming no file), before --out's earlier evaluation is removed."""
    path = _predictions_file(tmp_path / "run" / "predictions.npz")
    beside = tmp_path / "run" / "metrics.json"
    beside.write_text(json.dumps({"dataset": "synthetic", "image_size": image_size}))
    out = tmp_path / "score"
    out.mkdir()
    (out / "metrics.json").write_text("an earlier evaluation's")
    assert main(["score", str(path), "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"hopose score: error: {beside}: not a metrics.json of hopose eval (image_size is "
        f"{shown}, not a positive whole number)\n"
    )
    assert (out / "metrics.json").read_text() == "an earlier evaluation's"


def test_score_of_a_file_that_is_no_npz_is_one_line_naming_it(tmp_path, capsys):
    path = tmp_path / "predictions.npz"
    path.write_text("not an archive")
    assert main(["score", str(path), "--out", str(tmp_path / "score")]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"hopose score: error: {path}: not a predictions.npz")
        and err.count("\n") == 1
    )


def test_score_of_a_folder_asks_for_the_file_in_it(tmp_path, capsys):
    """An evaluation's folder given for its predictions.npz was "not found"."""
    path = _predictions_file(tmp_path / "run" / "predictions.npz")
    assert main(["score", str(path.parent), "--out", str(tmp_path / "score")]) == 1
    assert capsys.readouterr().err == (
        f"hopose score: error: {path.parent}: a directory; give the predictions.npz file\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synthetic"], "--num: preparing synthetic data needs the number of samples"),
        (["fpha"], "--root: preparing fpha needs its folder"),
    ],
)
def test_prepare_without_its_source_names_the_option(tmp_path, capsys, args, message):
    """The dataset's own refusals named its constructor arguments (num_samples, root), which
    prepare has not; eval's name the options."""
    out = tmp_path / "c"
    assert main(["prepare", *args, "--split", "test", "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"hopose prepare: error: {message}\n"
    assert not out.exists()


def _tiny_checkpoint(path: Path, *overrides: str) -> Path:
    """A tiny untrained network of the end-to-end stage (``overrides`` over :func:`tiny`'s),
    saved as trained: a model that self-crops its square crops, with test-time views."""
    cfg = tiny("end2end", *overrides)
    trained = ["encoder", "lifter"]
    save_checkpoint(model_checkpoint(build_model(cfg.model), cfg, trained=trained), path)
    return path


def _whole_frame_checkpoint(path: Path) -> Path:
    """A tiny untrained network saved as one trained on whole frames (no self-cropping)."""
    return _tiny_checkpoint(path, "data.crop=resize", "data.options.jitter=false")


NOTHING_SELF_CROPPED = (
    "nothing is self-cropped here (ground-truth 2D, ground-truth boxes, or a model trained on "
    "whole frames)"
)


@pytest.mark.parametrize("option", [["--self-crop-margin", "0.2"], ["--single-view"]])
@pytest.mark.parametrize("command", ["eval", "predict"])
def test_a_self_crop_option_for_a_whole_frame_model_is_refused_naming_it(
    tmp_path, capsys, command, option
):
    """A model trained on whole frames self-crops nothing, so a margin or --single-view would be
    ignored: one line naming the option (it named the library's parameter, self_crop_margin or
    single_view), before anything is written."""
    checkpoint = _whole_frame_checkpoint(tmp_path / "model.pt")
    _noise_png(photo := tmp_path / "photo.png")
    inputs = ["--data", "synthetic", "--num", "2"] if command == "eval" else [str(photo)]
    out = tmp_path / "out"
    assert main([command, str(checkpoint), *inputs, *option, "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"hopose {command}: error: {option[0]}: {NOTHING_SELF_CROPPED}\n"
    )
    assert not out.exists()


@pytest.fixture
def checkpoint_reads(monkeypatch) -> list[str]:
    """The files torch.load reads from now on: every reading of a checkpoint
    (hopose.checkpoint.load_checkpoint, under load_model too) goes through it."""
    reads = []
    load = torch.load

    def counted(path, *args, **kwargs):
        reads.append(str(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    return reads


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_the_self_crop_options_read_the_checkpoint_once_and_are_refused_by_name(
    tmp_path, capsys, checkpoint_reads, command
):
    """With --self-crop-margin or --single-view, eval read its checkpoint three times (its
    data's config, the options' check, the network) and predict twice, the check reading it
    only to name the option: once now, the names passed to the library, whose refusals
    still name the options (a model without test-time views, one on whole frames)."""
    _noise_png(photo := tmp_path / "photo.png")
    inputs = ["--data", "synthetic", "--num", "2", "--no-report"]
    inputs = inputs if command == "eval" else [str(photo)]
    cases = [
        (_tiny_checkpoint(tmp_path / "views.pt"), ["--self-crop-margin", "0.3", "--single-view"],
         None),
        (_tiny_checkpoint(tmp_path / "one.pt", "data.self_crop_turn=0", "data.self_crop_shift=0"),
         ["--single-view"], "--single-view: this model already predicts from the one square"),
        (_whole_frame_checkpoint(tmp_path / "whole.pt"), ["--self-crop-margin", "0.3"],
         f"--self-crop-margin: {NOTHING_SELF_CROPPED}"),
        (_tiny_checkpoint(tmp_path / "plain.pt"), [], None),
    ]  # fmt: skip
    for number, (checkpoint, options, refusal) in enumerate(cases):
        checkpoint_reads.clear()
        out = tmp_path / f"out{number}"
        status = main([command, str(checkpoint), *inputs, *options, "--out", str(out)])
        err = capsys.readouterr().err
        assert checkpoint_reads == [str(checkpoint)], options
        if refusal is None:
            assert status == 0, err
        else:
            assert status == 1 and err.startswith(f"hopose {command}: error: {refusal}")
            assert err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize(
    ("given", "name"), [({"self_crop_margin": 0.2}, "self_crop_margin"),
                        ({"single_view": True}, "single_view")]
)  # fmt: skip
def test_library_names_its_self_crop_parameters_for_a_whole_frame_model(tmp_path, given, name):
    """Python callers get the commands' refusals in their parameters' names."""
    checkpoint = _whole_frame_checkpoint(tmp_path / "model.pt")
    _noise_png(photo := tmp_path / "photo.png")
    message = f"^{name}: {re.escape(NOTHING_SELF_CROPPED)}$"
    data = evaluate.eval_data_config(checkpoint, name="synthetic", num=2)
    with pytest.raises(ValueError, match=message):
        run_eval(checkpoint, data, "test", tmp_path / "e", **given)
    with pytest.raises(ValueError, match=message):
        predict_images(checkpoint, [photo], tmp_path / "p", **given)
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()
