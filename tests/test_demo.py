"""``hopose.demo.train_stages`` with ``resume``: a killed demo continues its stages."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hopose import demo
from hopose.config import load_config
from hopose.configs import config_path
from hopose.demo import train_stages
from hopose.evaluate import without_jitter
from hopose.run_folder import RunError
from hopose.scoring import (
    HAND_AUC_0_80,
    HAND_MEAN_MM,
    HAND_MEAN_MM_SE,
    HAND_PROCRUSTES_MM,
    N_FRAMES,
    OBJECT_2D_AUC_0_80,
    OBJECT_MEAN_MM,
    OBJECT_MEAN_MM_SE,
)
from tiny_runs import TINY


def _epochs(run_dir):
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [row["epoch"] for row in csv.DictReader(handle)]


def test_resume_continues_a_stage_and_starts_the_missing_ones(tmp_path):
    # A fresh folder: with resume the stage starts afresh (nothing to continue).
    one = {"lifter": [*TINY, "optim.epochs=1"]}
    first = train_stages("synthetic", tmp_path, one, stages=("lifter",), resume=True)
    assert _epochs(tmp_path / "lifter") == ["1"]
    # Without resume the used folder is refused, as a single run's is.
    with pytest.raises(RunError, match="holds a run"):
        train_stages("synthetic", tmp_path, one, stages=("lifter",))
    # With more epochs, resume continues from epoch 1 instead of starting over...
    two = {"lifter": [*TINY, "optim.epochs=2"]}
    again = train_stages("synthetic", tmp_path, two, stages=("lifter",), resume=True)
    assert _epochs(tmp_path / "lifter") == ["1", "2"]
    assert again == first  # the same best.pt path
    # ...and a finished stage resumed with its own config trains nothing more.
    train_stages("synthetic", tmp_path, two, stages=("lifter",), resume=True)
    assert _epochs(tmp_path / "lifter") == ["1", "2"]


class _Trained(Exception):
    """Raised by a stand-in training: the demo got past its checks, the rest not run."""


def test_resume_of_a_folder_without_a_demo_run_is_refused_before_any_work(tmp_path, monkeypatch):
    """`hopose demo --resume` where no stage ran (a typo in --out, a demo never started) is
    refused as `hopose train --resume` refuses a missing run, one line naming the folder,
    before anything is trained or made; it was a whole fresh demo. Once one stage holds a run
    the demo resumes, and the stages after it start afresh (train_stages)."""
    resumes = []

    def train_stages(dataset, out_dir, overrides, *, read_ahead, resume):
        resumes.append(resume)
        raise _Trained

    monkeypatch.setattr(demo, "train_stages", train_stages)
    out = tmp_path / "out"
    with pytest.raises(RunError) as error:
        demo.run_demo(out, resume=True)
    assert str(error.value) == (
        f"--resume: {out} holds no demo to continue (none of its stage folders lifter, "
        "encoder, end2end holds last.pt, best.pt or metrics.csv); drop --resume to start one"
    )
    assert resumes == [] and not out.exists()
    (out / "lifter").mkdir(parents=True)
    (out / "lifter" / "last.pt").write_bytes(b"")
    with pytest.raises(_Trained):
        demo.run_demo(out, resume=True)
    assert resumes == [True]


def _fake_training(monkeypatch, events: list) -> None:
    """Replace the demo's training by a record of each stage's config: (stage, init_from,
    epochs, resume), with its best checkpoint at ``<stage dir>/best.pt``."""

    def train(cfg, out_dir, *, resume, split_cache):
        events.append(("train", cfg.stage, cfg.init_from, cfg.optim.epochs, resume))
        return SimpleNamespace(checkpoint=str(out_dir / "best.pt"))

    monkeypatch.setattr(demo, "train", train)


def test_each_stage_starts_from_the_one_before_and_the_overrides_are_left_as_given(
    tmp_path, monkeypatch
):
    """The encoder starts from the lifter stage's best checkpoint and the end-to-end stage from
    the encoder's (init_from); each stage gets its own overrides only, and the caller's dict
    (the demo's QUICK_OVERRIDES, shared by every run) is not changed by the init_from added."""
    events: list = []
    _fake_training(monkeypatch, events)
    overrides = {"encoder": ["optim.epochs=13"], "end2end": ["optim.epochs=5"]}
    checkpoints = demo.train_stages("synthetic", tmp_path, overrides)
    best = {stage: str(tmp_path / stage / "best.pt") for stage in ("lifter", "encoder", "end2end")}
    assert checkpoints == best
    lifter_epochs = load_config(config_path("synthetic", "lifter")).optim.epochs
    assert events == [
        ("train", "lifter", None, lifter_epochs, False),
        ("train", "encoder", best["lifter"], 13, False),
        ("train", "end2end", best["encoder"], 5, False),
    ]
    assert overrides == {"encoder": ["optim.epochs=13"], "end2end": ["optim.epochs=5"]}


class _RecordingCache:
    """A split cache that records the read-aheads asked of it among the trainings."""

    def __init__(self, events: list) -> None:
        self.events = events

    def read_ahead(self, data, split, *, with_images):
        self.events.append(("read", split, data.num_train, with_images))


@pytest.mark.parametrize("read_ahead", [True, False])
def test_while_a_stage_trains_the_next_stages_images_are_read_ahead(
    tmp_path, monkeypatch, read_ahead
):
    """With ``read_ahead``, before the lifter trains the encoder's training split (its own
    config's, num_train 111 here) is asked for with images; the end-to-end stage's is not,
    as it is not kept in memory here (data.in_memory false); nothing after the last stage.
    Without ``read_ahead``, nothing is read ahead."""
    events: list = []
    _fake_training(monkeypatch, events)
    overrides = {
        "encoder": ["data.num_train=111"],
        "end2end": ["data.num_train=222", "data.in_memory=false"],
    }
    demo.train_stages(
        "synthetic", tmp_path, overrides, split_cache=_RecordingCache(events), read_ahead=read_ahead
    )
    trainings = [event[:2] for event in events if event[0] == "train"]
    assert trainings == [("train", "lifter"), ("train", "encoder"), ("train", "end2end")]
    reads = [("read", "train", 111, True)] if read_ahead else []
    assert [event[:4] if event[0] == "read" else event[:2] for event in events] == [
        *reads,
        ("train", "lifter"),
        ("train", "encoder"),
        ("train", "end2end"),
    ]


def test_the_results_table_has_a_row_per_model_and_each_column_to_its_precision():
    """Rows in ROWS' order; the mean errors to 0.1 mm beside their standard errors, the AUCs to
    3 decimals, the Procrustes error to 0.1 mm."""
    results = {
        key: {
            HAND_MEAN_MM: 10.04 + k,  # 10.0, 11.0, ...
            HAND_MEAN_MM_SE: 0.66,
            OBJECT_MEAN_MM: 20.15,
            OBJECT_MEAN_MM_SE: 1.04,
            HAND_AUC_0_80: 0.12345,
            OBJECT_2D_AUC_0_80: 0.9876,
            HAND_PROCRUSTES_MM: 4.56,
        }
        for k, (key, _) in enumerate(demo.ROWS)
    }
    lines = demo.results_table(results).splitlines()
    assert lines[0] == (
        "| model | hand mm ± se | object mm ± se | hand 3D AUC 0-80 mm | object 2D AUC 0-80 px "
        "| hand PA mm |"
    )
    assert lines[2:] == [
        f"| {name} | {10 + k}.0 ± 0.7 | 20.1 ± 1.0 | 0.123 | 0.988 | 4.6 |"
        for k, (_, name) in enumerate(demo.ROWS)
    ]


@pytest.mark.parametrize("quick", [False, True])
def test_the_demo_evaluates_its_models_on_the_jitter_free_test_split_and_checks_them(
    tmp_path, monkeypatch, capsys, quick
):
    """Trainings and evaluations stubbed: the lifter stage's checkpoint and the final model (a
    copy of the end-to-end stage's) are evaluated on the test split of the end-to-end config's
    data without its training jitter, the baseline is the lifter's mean hand (its first 21
    nodes) and box (the last 8), and each check compares a mean error with the baseline's (the
    lifter's with half of it); a value equal to its bar passes."""
    stages = {}
    for stage in ("lifter", "encoder", "end2end"):
        stages[stage] = str(tmp_path / f"{stage}.pt")
        Path(stages[stage]).write_bytes(stage.encode())
    trained, evaluated, baselines = [], [], []

    def train_stages(dataset, out_dir, overrides, **kwargs):
        trained.append((dataset, out_dir, overrides, kwargs))
        out_dir.mkdir()  # where the stages' folders would be
        return stages

    # Mean errors (hand, object) in mm of each evaluation; the baseline's are 100 and 80.
    errors = {"lifter_gt_2d": (50.0, 40.5), "final_gt_2d": (1.0, 1.0), "final_image": (100, 79)}

    def run_eval(checkpoint, data, split, out_dir, *, gt_2d, report):
        key = Path(out_dir).name.removeprefix("eval_")
        evaluated.append((key, Path(checkpoint).read_bytes(), data, split, gt_2d, report))
        Path(out_dir).mkdir(parents=True)
        np.savez(Path(out_dir) / "predictions.npz", gt_hand_3d=np.zeros((3, 21, 3)))
        return _summary(*errors[key])

    out_mean = torch.arange(29 * 3, dtype=torch.float32).reshape(29, 3)
    read = []

    def load_checkpoint(path):
        read.append(path)
        return {"model": {"lifter.out_mean": out_mean}}

    def mean_pose_predictions(predictions, hand, obj):
        baselines.append((sorted(predictions), hand, obj))
        return "baseline"

    monkeypatch.setattr(demo, "train_stages", train_stages)
    monkeypatch.setattr(demo, "run_eval", run_eval)
    monkeypatch.setattr(demo, "load_checkpoint", load_checkpoint)
    monkeypatch.setattr(demo, "mean_pose_predictions", mean_pose_predictions)
    monkeypatch.setattr(demo, "score", lambda predictions, plausibility: _summary(100.0, 80.0))
    summary = demo.run_demo(tmp_path / "out", quick=quick)

    ((dataset, out_dir, overrides, kwargs),) = trained
    assert (dataset, out_dir) == ("synthetic", tmp_path / "out")
    assert overrides == (demo.QUICK_OVERRIDES if quick else {})
    assert kwargs == {"read_ahead": True, "resume": False}
    assert (tmp_path / "out" / "model.pt").read_bytes() == b"end2end"
    extra = demo.QUICK_OVERRIDES["end2end"] if quick else []
    data = load_config(config_path("synthetic", "end2end"), extra).data
    assert data.options["jitter"]  # the training crops' jitter, which no test frame gets
    tested = without_jitter(data)
    assert evaluated == [
        ("lifter_gt_2d", b"lifter", tested, "test", True, False),
        ("final_gt_2d", b"end2end", tested, "test", True, False),
        ("final_image", b"end2end", tested, "test", False, True),
    ]
    assert read == [stages["lifter"]]  # the lifter stage's out_mean
    ((keys, hand, obj),) = baselines
    assert keys == ["gt_hand_3d"]
    np.testing.assert_array_equal(hand, out_mean[:21].numpy())
    np.testing.assert_array_equal(obj, out_mean[21:].numpy())
    # Lifter: 50 <= 100 / 2 passes, 40.5 > 80 / 2 fails; from the image: 100 <= 100, 79 <= 80.
    assert summary["checks"] == {
        "lifter_gt_2d_hand_below_half_baseline": True,
        "lifter_gt_2d_object_below_half_baseline": False,
        "final_image_hand_below_baseline": True,
        "final_image_object_below_baseline": True,
    }
    assert summary["n_test"] == 7 and summary["quick"] == quick
    assert (
        json.loads((tmp_path / "out" / "metrics.json").read_text())["checks"] == summary["checks"]
    )
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| mean-pose baseline (training mean for every frame) | 100.0 ± 0.5 |" in table
    assert "FAIL  lifter_gt_2d_object_below_half_baseline" in capsys.readouterr().out


def _summary(hand_mm: float, object_mm: float) -> dict[str, float]:
    """An evaluation's summary with these mean errors, over 7 frames."""
    return {
        HAND_MEAN_MM: hand_mm,
        HAND_MEAN_MM_SE: 0.5,
        OBJECT_MEAN_MM: object_mm,
        OBJECT_MEAN_MM_SE: 0.5,
        HAND_AUC_0_80: 0.5,
        OBJECT_2D_AUC_0_80: 0.5,
        HAND_PROCRUSTES_MM: 5.0,
        N_FRAMES: 7,
    }


def test_a_stage_starts_from_the_absolute_path_of_the_one_before(tmp_path, monkeypatch):
    """Given --out relative, a stage's init_from is the previous best.pt's absolute path (a
    folder named with YAML's ": " and " #" read whole): its run's config is the same wherever
    the demo is resumed from."""
    events: list = []
    _fake_training(monkeypatch, events)
    monkeypatch.chdir(tmp_path)
    demo.train_stages("synthetic", Path("runs/a: b #1"), {})
    out = tmp_path.resolve() / "runs" / "a: b #1"
    assert [event[2] for event in events] == [
        None,
        str(out / "lifter" / "best.pt"),
        str(out / "encoder" / "best.pt"),
    ]


@pytest.mark.filterwarnings("ignore:no backbone weights file given")
def test_a_demo_resumes_from_another_folder_and_spelling_of_its_out(tmp_path, monkeypatch):
    """The reviewer's case: a demo trained with --out demo, resumed from another folder with
    its absolute path (or ./demo), was refused at the encoder for its init_from spelled
    otherwise; its finished stages resume, training nothing more."""
    (tmp_path / "elsewhere").mkdir()
    stages = {stage: [*TINY, "optim.epochs=1"] for stage in ("lifter", "encoder")}
    monkeypatch.chdir(tmp_path)
    first = train_stages("synthetic", Path("demo"), stages, stages=tuple(stages))
    for cwd, out in [(tmp_path / "elsewhere", tmp_path / "demo"), (tmp_path, Path("./demo"))]:
        monkeypatch.chdir(cwd)
        again = train_stages("synthetic", out, stages, stages=tuple(stages), resume=True)
        assert again == {stage: str(out / stage / "best.pt") for stage in first}
        assert _epochs(tmp_path / "demo" / "encoder") == ["1"]
