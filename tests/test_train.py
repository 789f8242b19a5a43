"""The training loop: stages, checkpoints, resume, and two-process DDP on CPU (gloo)."""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import math
import os
import re
import shutil
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from hopose import checkpoint as checkpoint_module
from hopose import train as train_module
from hopose.checkpoint import (
    FORMAT,
    CheckpointError,
    checkpoint_config,
    load_checkpoint,
    load_model,
    model_checkpoint,
    save_checkpoint,
    untrained_network,
)
from hopose.config import ConfigError, OptimConfig, config_from_dict
from hopose.data.splits import SplitCache, build_split, training_poses
from hopose.data.transforms import Frame, FrameDataset
from hopose.evaluate import run_eval
from hopose.metrics import mean_distance
from hopose.models import build_model
from hopose.models.encoder import random_backbone_expected
from hopose.run_folder import RunError
from hopose.stages import STAGES
from hopose.train import train
from tiny_runs import as_one_process_torchrun, free_port, spawn_ranks, tiny

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_lifter_stage_trains_only_the_lifter_and_writes_a_run(tmp_path):
    cfg = tiny("lifter", "optim.epochs=3", "optim.lr=3e-3")
    result = train(cfg, tmp_path)
    rows = _rows(tmp_path)
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    errors = [float(row["val/error"]) for row in rows]
    assert errors[-1] < errors[0], errors  # it learns: the 3D error on unseen poses drops
    assert result.best == pytest.approx(min(errors))
    assert {p.name for p in tmp_path.iterdir()} >= {"best.pt", "last.pt", "config.yaml", "tb"}
    checkpoint = load_checkpoint(tmp_path / "best.pt")
    progress = {"format", "stage", "trained", "model", "config", "epoch", "best", "best_epoch"}
    progress |= {"world_size"}  # the processes that trained it: one, without torchrun
    assert set(checkpoint) == progress  # weights and progress; no optimiser state to resume
    assert checkpoint["world_size"] == 1
    last = load_checkpoint(tmp_path / "last.pt")
    assert set(last) == progress | {"optimizer", "scheduler", "scaler"}
    assert config_from_dict(checkpoint["config"]) == cfg
    assert (checkpoint["format"], checkpoint["stage"], checkpoint["trained"]) == (
        FORMAT,
        "lifter",
        ["lifter"],
    )
    # The encoder took no step: its weights are still those of the freshly seeded network,
    # while the lifter's moved.
    torch.manual_seed(cfg.seed)
    initial = build_model(cfg.model).state_dict()
    saved, _ = load_model(tmp_path / "best.pt", from_images=False)
    for name, value in saved.state_dict().items():
        if name.startswith("encoder."):
            assert torch.equal(value, initial[name]), name
    assert not torch.equal(
        saved.lifter.merged.layers[0].linear.weight, initial["lifter.merged.layers.0.linear.weight"]
    )
    # The lifter's output statistics are the training split's mean pose (buffers, saved).
    mean = checkpoint["model"]["lifter.out_mean"]
    assert mean.shape == (29, 3) and 200 < float(mean[:, 2].mean()) < 600  # mm in front


def test_resume_continues_where_the_run_stopped(tmp_path):
    """2 epochs straight == 1 epoch, then --resume to 2: same weights, optimiser, schedule."""
    steps_per_epoch = 3  # 48 samples / batch 16
    straight = train(
        tiny("lifter", "optim.epochs=2", "optim.gamma=0.5", "optim.step_size=1"),
        tmp_path / "straight",
    )

    first = train(
        tiny("lifter", "optim.epochs=1", "optim.gamma=0.5", "optim.step_size=1"),
        tmp_path / "resumed",
    )
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    resumed = train(
        tiny("lifter", "optim.epochs=2", "optim.gamma=0.5", "optim.step_size=1"),
        tmp_path / "resumed",
        resume=True,
    )
    assert first.model is not resumed.model

    checkpoint = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert checkpoint["epoch"] == 2
    assert checkpoint["scheduler"]["last_epoch"] == 2
    lr = checkpoint["config"]["optim"]["lr"]
    assert checkpoint["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr * 0.5**2)
    adam_steps = {float(s["step"]) for s in checkpoint["optimizer"]["state"].values()}
    assert adam_steps == {2.0 * steps_per_epoch}
    assert [row["epoch"] for row in _rows(tmp_path / "resumed")] == ["1", "2"]  # not 1, 1, 2
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6), name


def test_resume_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(RunError, match=r"--resume: .*last\.pt not found"):
        train(tiny("lifter"), tmp_path, resume=True)
    assert not (tmp_path / "last.pt").exists()


def test_resume_from_a_checkpoint_without_optimiser_state_names_the_file(tmp_path):
    """best.pt holds weights and progress only: copied over last.pt, it cannot be resumed."""
    train(tiny("lifter"), tmp_path)
    shutil.copyfile(tmp_path / "best.pt", tmp_path / "last.pt")
    before = (tmp_path / "metrics.csv").read_text()
    with pytest.raises(CheckpointError) as error:
        train(tiny("lifter", "optim.epochs=2"), tmp_path, resume=True)
    assert str(error.value) == (
        f"{tmp_path / 'last.pt'}: holds weights but no training state to resume (lacks "
        "['optimizer', 'scheduler', 'scaler']); --resume continues from the last.pt a run writes"
    )
    assert (tmp_path / "metrics.csv").read_text() == before


def test_resume_from_weights_that_do_not_fit_is_one_line_naming_last_pt(tmp_path):
    """A last.pt whose weights do not fit the network (a code change without a FORMAT bump, or
    an edited file) is refused as every other checkpoint read is: one CheckpointError naming
    the file (the CLI prints it as one line), not torch's multi-line RuntimeError."""
    train(tiny("lifter"), tmp_path)
    last = load_checkpoint(tmp_path / "last.pt")
    last["model"] = {k: v for k, v in last["model"].items() if not k.startswith("lifter.")}
    torch.save(last, tmp_path / "last.pt")
    with pytest.raises(CheckpointError) as error:
        train(tiny("lifter", "optim.epochs=2"), tmp_path, resume=True)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'last.pt'}: its weights do not fit the network")
    assert "\n" not in message


def test_training_on_a_missing_gpu_is_refused_before_anything_changes(tmp_path, monkeypatch):
    # A GPU machine answers as one without a GPU would; the config itself loads there.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    threads = torch.get_num_threads()
    cfg = tiny("lifter", "device=cuda", f"num_threads={threads + 1}")
    with pytest.raises(
        ConfigError, match=r"^device: 'cuda' asked, but no CUDA device is available$"
    ):
        train(cfg, tmp_path / "run")
    assert torch.get_num_threads() == threads and not (tmp_path / "run").exists()


def test_a_fresh_run_refuses_a_used_folder_and_keeps_its_metrics(tmp_path):
    train(tiny("lifter"), tmp_path)
    before = (tmp_path / "metrics.csv").read_text()
    with pytest.raises(RunError, match=r"holds a run \(last\.pt\); continue it with --resume"):
        train(tiny("lifter"), tmp_path)
    assert (tmp_path / "metrics.csv").read_text() == before


@pytest.mark.parametrize(
    ("override", "field"),
    [("optim.lr=1e-4", "optim.lr"), ("loss.physical=true", "loss.physical")],
)
def test_resume_refuses_a_changed_config_naming_the_field(tmp_path, override, field):
    train(tiny("lifter"), tmp_path)
    before = (tmp_path / "metrics.csv").read_text()
    with pytest.raises(RunError, match=rf"was trained with {field}=.*the config asks"):
        train(tiny("lifter", "optim.epochs=2", override), tmp_path, resume=True)
    assert (tmp_path / "metrics.csv").read_text() == before  # no row under another header
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_a_second_training_into_a_locked_folder_is_refused(tmp_path):
    """Another process training into the folder holds its lock (an flock: released by the
    system when that process dies, even by SIGKILL)."""
    with (tmp_path / "train.lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunError, match="another training is writing to this folder"):
            train(tiny("lifter"), tmp_path)
    assert not (tmp_path / "config.yaml").exists()
    train(tiny("lifter"), tmp_path)  # lock released: the folder is usable
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_a_run_that_fails_before_training_leaves_a_folder_a_rerun_uses(tmp_path):
    """A missing init_from (hopose ablate physics --data fpha without the ObMan checkpoint)
    stops the run inside its lock: the folder keeps train.lock, an flock released with the
    process's hold on it, which marks no run, so the same folder trains without --resume."""
    missing = tmp_path / "obman" / "best.pt"
    with pytest.raises(FileNotFoundError, match=f"^checkpoint not found: {missing}$"):
        train(tiny("lifter", f"init_from={missing}"), tmp_path / "run")
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["train.lock"]
    train(tiny("lifter"), tmp_path / "run")
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1


def _kill_at(monkeypatch, name: str, epoch: int, *, after: bool) -> None:
    """Make the write of ``name`` for ``epoch`` die, just before or just after it lands."""
    save = train_module.save_checkpoint

    def dying_save(state, path):
        if Path(path).name == name and state["epoch"] == epoch:
            if after:
                save(state, path)
            raise KeyboardInterrupt
        save(state, path)

    monkeypatch.setattr(train_module, "save_checkpoint", dying_save)


def test_a_kill_between_last_pt_and_best_pt_is_mended_by_resume(tmp_path, monkeypatch):
    """last.pt is written before best.pt. A kill between the two loses no rows and leaves
    best.pt one best behind, while last.pt holds the best weights: the resume writes best.pt
    from them."""
    cfg = tiny("lifter", "optim.epochs=2", "optim.lr=3e-3")
    _kill_at(monkeypatch, "last.pt", 2, after=True)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path)
    last = load_checkpoint(tmp_path / "last.pt")
    assert (last["epoch"], last["best_epoch"]) == (2, 1)  # epoch 2 is the best (0-based 1)
    assert [row["epoch"] for row in _rows(tmp_path)] == ["1", "2"]
    assert float(_rows(tmp_path)[1]["val/error"]) == pytest.approx(last["best"])
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    monkeypatch.undo()
    train(cfg, tmp_path, resume=True)
    best = load_checkpoint(tmp_path / "best.pt")
    assert (best["epoch"], best["best"]) == (2, last["best"]) and "optimizer" not in best
    for name, value in last["model"].items():
        assert torch.equal(value, best["model"][name]), name
    assert [row["epoch"] for row in _rows(tmp_path)] == ["1", "2"]


def test_a_kill_between_validations_loses_only_the_epoch_it_interrupts(tmp_path, monkeypatch):
    """val_every 4 of 4 epochs, last.pt after every epoch, killed as epoch 3 ends: last.pt holds
    epoch 2 (before, the first checkpoint came with the validation of epoch 4, and all three
    epochs were lost), and the resume ends as the run that was not killed."""
    cfg = tiny("lifter", "optim.epochs=4", "optim.val_every=4", "optim.checkpoint_minutes=0")
    straight = train(cfg, tmp_path / "straight")
    _kill_at(monkeypatch, "last.pt", 3, after=False)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "killed")
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["epoch"] == 2
    assert not (tmp_path / "killed" / "best.pt").exists()
    monkeypatch.undo()
    resumed = train(cfg, tmp_path / "killed", resume=True)
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "straight")
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_rows_of_an_epoch_without_checkpoint_are_redone_once(tmp_path, monkeypatch):
    """Killed after epoch 2's rows but before its last.pt: resuming redoes epoch 2 and its row
    replaces the unclaimed one. best.pt holds no epoch 2 that the resume redoes (differently,
    where a GPU is not bit-identical)."""
    _kill_at(monkeypatch, "last.pt", 2, after=False)
    with pytest.raises(KeyboardInterrupt):
        train(tiny("lifter", "optim.epochs=2", "optim.lr=3e-3"), tmp_path)
    assert [row["epoch"] for row in _rows(tmp_path)] == ["1", "2"]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    monkeypatch.undo()
    train(tiny("lifter", "optim.epochs=2", "optim.lr=3e-3"), tmp_path, resume=True)
    assert [row["epoch"] for row in _rows(tmp_path)] == ["1", "2"]


def test_a_run_killed_before_its_first_last_pt_restarts_with_resume(tmp_path, monkeypatch):
    """Killed after epoch 1's row but before its last.pt: a fresh run refuses the
    folder for its metrics.csv, so --resume restarts the run from epoch 0, dropping the row,
    and ends as the run that was not killed."""
    cfg = tiny("lifter", "optim.epochs=2")
    straight = train(cfg, tmp_path / "straight")
    _kill_at(monkeypatch, "last.pt", 1, after=False)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "killed")
    assert not (tmp_path / "killed" / "last.pt").exists()
    assert [row["epoch"] for row in _rows(tmp_path / "killed")] == ["1"]
    monkeypatch.undo()
    with pytest.raises(RunError, match=r"holds a run \(metrics\.csv\)"):
        train(cfg, tmp_path / "killed")
    with pytest.raises(RunError, match=r"was trained with optim\.lr="):
        train(tiny("lifter", "optim.epochs=2", "optim.lr=1e-4"), tmp_path / "killed", resume=True)
    # Its config.yaml damaged (it was a YAML traceback): one line naming the file and line.
    config = tmp_path / "killed" / "config.yaml"
    kept = config.read_text()
    config.write_text("stage: [lifter\n")
    with pytest.raises(ConfigError, match=r"killed/config\.yaml:2: YAML syntax error"):
        train(cfg, tmp_path / "killed", resume=True)
    config.write_text(kept)
    resumed = train(cfg, tmp_path / "killed", resume=True)
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "straight")
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


@pytest.mark.slow
@pytest.mark.parametrize("resumed_workers", [1, 0])
def test_resume_repeats_the_augmentation_whatever_the_workers(tmp_path, resumed_workers):
    """Images streamed through a persistent DataLoader worker, augmented, then resumed with the
    same worker or with none: the loader draws its workers' seed from its own generator, never
    from torch's global one, which the epochs' augmentation reads, so both resumed runs end
    with the uninterrupted run's weights."""
    extra = ("augment.colour=0.3", "data.in_memory=false")
    extra += ("data.num_train=16", "data.num_val=16")
    straight = train(
        tiny("encoder", "optim.epochs=2", "data.num_workers=1", *extra), tmp_path / "straight"
    )
    train(tiny("encoder", "optim.epochs=1", "data.num_workers=1", *extra), tmp_path / "resumed")
    resumed = train(
        tiny("encoder", "optim.epochs=2", f"data.num_workers={resumed_workers}", *extra),
        tmp_path / "resumed",
        resume=True,
    )
    assert _rows(tmp_path / "resumed") == _rows(tmp_path / "straight")
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


@pytest.mark.slow
def test_progressive_epochs_train_smaller_views_and_resume_exactly(tmp_path, monkeypatch):
    """optim.progressive_size 16 for the first 2 of 3 epochs of the 32-px encoder stage: those
    epochs' training batches reach the network at 16 px, the last at 32, and validation is
    always at 32. Stopped after epoch 1 and resumed, the run ends with the uninterrupted run's
    rows and weights: the size follows the epoch, not the process."""
    seen = []
    forward = train_module.forward_losses

    def spy(module, batch, cfg, **kwargs):
        seen.append(("train" if module.training else "val", batch["image"].shape[-1]))
        return forward(module, batch, cfg, **kwargs)

    monkeypatch.setattr(train_module, "forward_losses", spy)
    cfg = tiny(
        "encoder", "optim.epochs=3", "optim.progressive_size=16", "optim.progressive_epochs=2",
        "data.num_train=16", "data.num_val=16",
    )  # fmt: skip
    straight = train(cfg, tmp_path / "straight")
    # One batch of 16 per split and epoch.
    assert seen == [("train", 16), ("val", 32)] * 2 + [("train", 32), ("val", 32)]

    one_epoch = train_module.train_one_epoch

    def stop_in_epoch_2(*args, epoch, **kwargs):
        if epoch == 1:
            raise KeyboardInterrupt
        return one_epoch(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed")
    monkeypatch.setattr(train_module, "train_one_epoch", one_epoch)
    seen.clear()
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    assert seen == [("train", 16), ("val", 32), ("train", 32), ("val", 32)]
    assert _rows(tmp_path / "resumed") == _rows(tmp_path / "straight")
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_a_non_finite_validation_error_stops_the_run(tmp_path, monkeypatch):
    """Training losses are finite, validation is not: the run fails instead of ending with
    "best inf" and no best.pt."""

    def nan_error(out, batch, parts):
        return torch.full((len(batch["hand_3d"]),), float("nan"))

    monkeypatch.setattr(train_module, "validation_error", nan_error)
    with pytest.raises(FloatingPointError, match=r"validation after epoch 1: \['error'\]"):
        train(tiny("lifter"), tmp_path)
    assert not (tmp_path / "last.pt").exists() and not (tmp_path / "best.pt").exists()


def test_a_lifter_fine_tuned_from_init_from_keeps_its_normalisation(tmp_path):
    """Stage 1 fine-tuned from another run's lifter (fpha/lifter from ObMan's) on a split of
    other poses: the copied weights compute in the copied statistics, which stay (they are
    buffers, so training does not move them), instead of being reset to the new split's."""
    pretrained = train(tiny("lifter"), tmp_path / "pretrained")
    tuned = train(
        tiny("lifter", f"init_from={pretrained.checkpoint}", "data.seed=1"), tmp_path / "tuned"
    )
    buffers = ("in_mean", "in_std", "out_mean", "out_std")
    own_split = train(tiny("lifter", "data.seed=1"), tmp_path / "own_split").model.lifter
    for name in buffers:
        kept = getattr(pretrained.model.lifter, name)
        assert torch.equal(getattr(tuned.model.lifter, name), kept), name
        # Not vacuous: seed 1's split has other statistics, which a fresh lifter takes.
        assert not torch.equal(getattr(own_split, name), kept), name


def test_an_end_to_end_stage_without_a_trained_lifter_takes_its_splits_statistics(tmp_path):
    """The end-to-end stage started afresh (init_from null, or an encoder stage's checkpoint
    whose lifter never trained) trains a new lifter: it kept the built-in normalisation (in_std
    0.3, out_mean 400 mm deep) instead of the training split's, as the lifter stage sets it."""
    cfg = tiny("end2end", "init_from=null")
    with random_backbone_expected():
        result = train(cfg, tmp_path)
    poses = build_split(cfg.data, cfg.data.train_split, with_images=False)
    expected = build_model(cfg.model).lifter
    default = {name: buffer.clone() for name, buffer in expected.named_buffers()}
    expected.set_stats_from_poses(training_poses(poses))
    for name in ("in_mean", "in_std", "out_mean", "out_std"):
        trained = getattr(result.model.lifter, name)
        torch.testing.assert_close(trained, getattr(expected, name), msg=name)
        assert not torch.equal(trained, default[name]), name


@pytest.mark.slow
def test_image_stages_chain_through_init_from(tmp_path):
    """Stage 2 (encoder, 2D terms, mixed precision) trains the encoder from stage 1's network;
    stage 3 trains both parts with the 3D and physical terms, and the 3D error it logs is the
    one an independent evaluation of its checkpoint measures."""
    lifter = train(tiny("lifter"), tmp_path / "lifter")
    # Whole frames: a model trained on crops validates on the split's jittered crops, which
    # ground truth places, but is evaluated by self-cropping (docs/training.md).
    whole = ("data.crop=resize", "data.options.jitter=false")
    encoder = train(
        tiny("encoder", f"init_from={lifter.checkpoint}", "optim.amp=true", *whole),
        tmp_path / "encoder",
    )
    before, after = lifter.model.state_dict(), encoder.model.state_dict()
    # The encoder stage left the lifter as stage 1 trained it, and moved the encoder.
    for name, value in lifter.model.lifter.state_dict().items():
        assert torch.equal(value, after[f"lifter.{name}"]), name
    trunk = "encoder.backbone.conv1.weight"
    assert not torch.equal(before[trunk], after[trunk])
    row = _rows(tmp_path / "encoder")[0]
    assert {"train/2d_init", "train/2d", "train/heatmap"} <= set(row) and "train/3d" not in row
    assert 0 < float(row["train/heatmap"]) < 10  # nats: below log(cells) of a flat map + a bit
    # The segmentation maps train too (model.segmentation, loss.w_segmentation): nats, near
    # log 8 = 2.08 (a flat guess among the 8 classes) in the first epoch.
    assert 0.5 * math.log(8) < float(row["train/segment"]) < 2 * math.log(8)
    assert load_checkpoint(encoder.checkpoint)["trained"] == ["encoder", "lifter"]

    cfg = tiny("end2end", f"init_from={encoder.checkpoint}", *whole)
    end2end = train(cfg, tmp_path / "end2end")
    final = end2end.model.state_dict()
    # The synthetic image stages use the heat-map head with its maps supervised (w_heatmap).
    head = "encoder.head.heatmap.weight"
    for name in (head, "lifter.merged.layers.0.linear.weight"):
        assert not torch.equal(after[name], final[name]), name  # both parts trained
    row = _rows(tmp_path / "end2end")[0]
    # The physical term is logged: a mean of cosines between contact directions (Eq. 6), so in
    # [-1, 1], negative where contacts oppose each other, and 0 on frames whose predictions have
    # < 2 valid contacts, which a tiny untrained network's may all be; the 3D terms train.
    assert -1 <= float(row["train/physical"]) <= 1 and float(row["train/3d"]) > 0
    # The logged validation error (mean over hand and box of the mean 3D error, mm) is what
    # evaluating best.pt from the images on the same split measures.
    summary = run_eval(end2end.checkpoint, cfg.data, "val", tmp_path / "eval", report=False)
    assert summary["n"] == 16
    assert float(row["val/error"]) == pytest.approx(
        (summary["hand_mean_mm"] + summary["object_mean_mm"]) / 2, rel=1e-4
    )


def test_a_stage_on_shared_splits_trains_exactly_as_on_its_own(tmp_path):
    """The demo's stages share their splits (SplitCache): the end-to-end stage on the first 24
    of the encoder stage's 48 crops ends with the same weights as one that renders its own."""
    cache = SplitCache()
    encoder = train(tiny("encoder"), tmp_path / "encoder", split_cache=cache)
    cfg = tiny("end2end", f"init_from={encoder.checkpoint}", "data.num_train=24")
    shared = train(cfg, tmp_path / "shared", split_cache=cache).model.state_dict()
    alone = train(cfg, tmp_path / "alone").model.state_dict()
    for name, value in alone.items():
        assert torch.equal(shared[name], value), name


def _record_saves(monkeypatch) -> list[tuple[str, int]]:
    """The checkpoints a training writes from now on, (file name, epoch) in order; each is still
    written."""
    written = []
    save = train_module.save_checkpoint

    def record(state, path):
        written.append((Path(path).name, state["epoch"]))
        save(state, path)

    monkeypatch.setattr(train_module, "save_checkpoint", record)
    return written


@pytest.mark.parametrize(("minutes", "last_epochs"), [(1e3, [2, 4, 5]), (0.0, [1, 2, 3, 4, 5])])
def test_validation_every_val_every_epochs_and_last_pt_as_often_as_asked(
    tmp_path, minutes, last_epochs
):
    """5 epochs, val_every 2: rows and best.pt after epochs 2, 4 and 5 only; last.pt with them
    and, with optim.checkpoint_minutes 0, after every epoch too (1,000 minutes never come)."""
    with pytest.MonkeyPatch.context() as patch:
        written = _record_saves(patch)
        extra = ("optim.epochs=5", "optim.val_every=2", f"optim.checkpoint_minutes={minutes}")
        train(tiny("lifter", *extra), tmp_path)
    assert [row["epoch"] for row in _rows(tmp_path)] == ["2", "4", "5"]
    assert [epoch for name, epoch in written if name == "last.pt"] == last_epochs
    assert {epoch for name, epoch in written if name == "best.pt"} <= {2, 4, 5}
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 5


def test_lifter_stage_feeds_every_training_pose_once_an_epoch_through_stage_input(
    tmp_path, monkeypatch
):
    """The device-resident batches still go through stage_input (where a perturbation of the
    ground-truth 2D applies): one epoch's training inputs are the split's 2D, each pose once."""
    seen = []

    def spy(batch, stage):
        kp2d, K = stage_input(batch, stage)
        seen.append(kp2d.clone())
        return kp2d, K

    stage_input = train_module.stage_input
    monkeypatch.setattr(train_module, "stage_input", spy)
    cfg = tiny("lifter")
    train(cfg, tmp_path)
    train_inputs = torch.cat(seen[:3])  # 48 poses in batches of 16, then validation's 16
    assert [len(x) for x in seen] == [16, 16, 16, 16]
    split = build_split(cfg.data, cfg.data.train_split, with_images=False)
    expected = torch.stack(
        [torch.as_tensor(np.concatenate([r["hand_2d"], r["obj_2d"]])) for r in split.records]
    )

    def by_first_joint(kp2d):  # poses sorted by their first joint's (x, y): an order-free view
        return kp2d[torch.argsort(kp2d[:, 0, 0] * 1e4 + kp2d[:, 0, 1])]

    assert torch.equal(by_first_joint(train_inputs), by_first_joint(expected.float()))


def _as_torchrun_rank(rank: int, world_size: int, port: int) -> None:
    """The environment torchrun gives process ``rank`` of ``world_size`` on this machine."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)


def _hang(rank: int, pids: str) -> None:
    Path(pids, str(rank)).write_text(str(os.getpid()))
    time.sleep(600)


def test_ranks_that_do_not_end_fail_the_test_and_are_killed(tmp_path):
    """A hung rank fails its test at the deadline instead of holding the suite, and no rank
    outlives it."""
    started = time.monotonic()
    # 20 s: time for both ranks to start (a spawned rank imports torch and hopose) and hang.
    with pytest.raises(pytest.fail.Exception, match="2 ranks had not ended after 20 s: killed"):
        spawn_ranks(_hang, (str(tmp_path),), deadline=20.0)
    assert time.monotonic() - started < 80
    pids = [int(path.read_text()) for path in tmp_path.iterdir()]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _ddp_worker(rank: int, world_size: int, port: int, out: str) -> None:
    _as_torchrun_rank(rank, world_size, port)
    result = train(tiny("lifter", "optim.epochs=2"), Path(out) / "run")
    torch.save(result.model.lifter.state_dict(), Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_ddp_two_processes_keep_identical_parameters(tmp_path):
    """torchrun-style 2-process run on CPU (gloo): each rank trains on its own shard of the
    data, and gradient averaging keeps every parameter identical across ranks."""
    spawn_ranks(_ddp_worker, (2, free_port(), str(tmp_path)))
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    initial = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
        assert torch.equal(value, initial[f"lifter.{name}"]), name  # rank 0 wrote this state
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
    # Only rank 0 wrote: one header and two epochs in the CSV.
    assert [row["epoch"] for row in _rows(tmp_path / "run")] == ["1", "2"]


def _ddp_draws_worker(rank: int, world_size: int, port: int, out: str) -> None:
    """A 2-epoch perturbed lifter run that saves, per rank, the epochs' training terms and the
    state of torch's generator at each epoch's first perturbation."""
    _as_torchrun_rank(rank, world_size, port)
    seen = {"terms": [], "rng": []}
    one_epoch, augment = train_module.train_one_epoch, train_module.augment_batch

    def spy_epoch(*args, **kwargs):
        seen["rng"].append(None)
        seen["terms"].append(one_epoch(*args, **kwargs))
        return seen["terms"][-1]

    def spy_augment(batch, cfg, *, epoch):
        if seen["rng"][-1] is None:
            seen["rng"][-1] = torch.get_rng_state()
        return augment(batch, cfg, epoch=epoch)

    train_module.train_one_epoch, train_module.augment_batch = spy_epoch, spy_augment
    cfg = tiny("lifter", "optim.epochs=2", "perturb.sigma=0.05", "data.num_train=40")
    train(cfg, Path(out) / "run")
    torch.save(seen, Path(out) / f"seen{rank}.pt")


@pytest.mark.slow
def test_ddp_ranks_draw_their_own_noise_and_log_the_whole_split(tmp_path):
    """2 processes (gloo): each rank perturbs its samples with its own draws, not rank 0's; the
    training terms are means over both shards (20 samples each: batches of 16 and 4), the same
    on every rank, and those are the rows rank 0 writes."""
    spawn_ranks(_ddp_draws_worker, (2, free_port(), str(tmp_path)))
    seen = [torch.load(tmp_path / f"seen{rank}.pt") for rank in (0, 1)]
    for epoch in (0, 1):
        assert not torch.equal(seen[0]["rng"][epoch], seen[1]["rng"][epoch]), epoch
    assert seen[0]["terms"] == seen[1]["terms"]
    rows = _rows(tmp_path / "run")
    for row, terms in zip(rows, seen[0]["terms"], strict=True):
        assert float(row["train/total"]) == pytest.approx(terms["total"], rel=1e-6)
    # Rank 0 alone draws from epoch_stream(seed, epoch), as a single process: seed 0's is the
    # epoch.
    generator = torch.Generator().manual_seed(0 + 1)
    assert torch.equal(seen[0]["rng"][1], generator.get_state())


def _ddp_validation_worker(
    rank: int, world_size: int, port: int, out: str, in_memory: bool
) -> None:
    """The tiny encoder stage (batch normalisation) with 5 validation frames, held in memory or
    streamed by a DataLoader; saves, per rank, the batch sizes it validated and the best error
    its run returned."""
    _as_torchrun_rank(rank, world_size, port)
    read = []
    error = train_module.validation_error

    def spy(out_, batch, parts):
        read.append(len(batch["hand_3d"]))
        return error(out_, batch, parts)

    train_module.validation_error = spy
    cfg = tiny("encoder", "data.num_val=5", f"data.in_memory={in_memory}")
    result = train(cfg, Path(out) / "run")
    torch.save({"read": read, "best": result.best}, Path(out) / f"val{rank}.pt")


@pytest.mark.slow
@pytest.mark.parametrize("in_memory", [True, False])
def test_ddp_ranks_validate_their_shares_with_rank_0s_statistics(tmp_path, in_memory):
    """2 processes (gloo): rank 0 validates frames 0, 2, 4 and rank 1 frames 1, 3, and the
    logged error is best.pt's over the 5 frames in one process: rank 1 reads its share with the
    batch-normalisation statistics of rank 0, which best.pt holds, not with those its own last
    training batch left it. Both ranks return that error as their best."""
    args = (2, free_port(), str(tmp_path), in_memory)
    spawn_ranks(_ddp_validation_worker, args)
    seen = [torch.load(tmp_path / f"val{rank}.pt") for rank in (0, 1)]
    assert [sum(s["read"]) for s in seen] == [3, 2]
    logged = float(_rows(tmp_path / "run")[0]["val/error"])
    assert seen[0]["best"] == seen[1]["best"] == pytest.approx(logged, rel=1e-6)

    best_pt = tmp_path / "run" / "best.pt"
    saved = load_checkpoint(best_pt)  # an encoder stage's: load_model refuses its random lifter
    cfg = checkpoint_config(best_pt, saved)
    model = untrained_network(cfg.model)
    model.load_state_dict(saved["model"])
    stage = STAGES[cfg.stage]
    val_set = train_module._read_split(cfg, "val_split", None, stage)
    one_process = train_module.Runtime(rank=0, world_size=1, device=torch.device("cpu"))
    loader = train_module._loader(val_set, cfg, one_process, train=False)
    whole = train_module.evaluate(
        train_module.stage_module(model, stage), loader, cfg,
        parts=tuple(model.lifter.parts), device=torch.device("cpu"),
    )  # fmt: skip
    assert whole["error"] == pytest.approx(logged, rel=1e-5)


def _ddp_refused_worker(rank: int, world_size: int, port: int, out: str) -> None:
    _as_torchrun_rank(rank, world_size, port)
    with pytest.raises(
        ValueError, match=r"data.val_split: 1 validation sample\(s\) for 2 "
    ) as caught:
        train(tiny("lifter", "data.num_val=1"), Path(out) / "run")
    Path(out, f"refused{rank}.txt").write_text(str(caught.value))


def test_ddp_refuses_fewer_validation_samples_than_processes(tmp_path):
    """2 processes, 1 validation sample: rank 1's share would be empty (and its all-reduce of
    no terms would not match rank 0's), so both stop before training, naming the field."""
    spawn_ranks(_ddp_refused_worker, (2, free_port(), str(tmp_path)))
    assert sorted(p.name for p in tmp_path.glob("refused*.txt")) == ["refused0.txt", "refused1.txt"]
    assert not (tmp_path / "run" / "last.pt").exists()


def test_one_process_torchrun_trains_through_ddp(tmp_path, monkeypatch):
    """torchrun with one process (WORLD_SIZE=1, as on one GPU) joins a process group and wraps
    the module in DDP, then leaves the group: the run a one-GPU machine checks NCCL with."""
    as_one_process_torchrun(monkeypatch)
    wrapped = []
    ddp = torch.nn.parallel.DistributedDataParallel

    def spy(module, **kwargs):
        wrapped.append(type(module).__name__)
        return ddp(module, **kwargs)

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", spy)
    train(tiny("lifter"), tmp_path)
    assert wrapped == ["ContextLifter"]
    assert not torch.distributed.is_initialized()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_synchronised_batch_normalisation_is_refused_on_the_cpu(tmp_path, monkeypatch):
    """PyTorch's SyncBatchNorm runs on GPUs only (on the CPU its first training forward raises
    a ValueError): a torchrun run on the CPU that asks for it stops before reading any data,
    naming the field; without torchrun there is nothing to synchronise and the run trains."""
    as_one_process_torchrun(monkeypatch)
    with pytest.raises(ConfigError, match=r"^optim.sync_batchnorm: .* GPUs only, .* on the CPU$"):
        train(tiny("encoder", "optim.sync_batchnorm=true"), tmp_path / "torchrun")
    assert not (tmp_path / "torchrun" / "config.yaml").exists()
    monkeypatch.undo()  # no torchrun
    train(tiny("encoder", "optim.sync_batchnorm=true"), tmp_path / "alone")
    assert load_checkpoint(tmp_path / "alone" / "last.pt")["epoch"] == 1


def test_ddp_trains_segmentation_maps_whose_loss_is_off(tmp_path, monkeypatch):
    """model.segmentation with loss.w_segmentation 0 (a fine-tuning on data without maps): the
    maps' layer gets no gradient, which DDP took for a missing reduction at the second step."""
    as_one_process_torchrun(monkeypatch)
    cfg = tiny("encoder", "loss.w_segmentation=0", "data.num_train=32", "optim.batch_size=8")
    result = train(cfg, tmp_path)
    assert load_checkpoint(result.checkpoint)["epoch"] == 1
    assert not result.model.encoder.segmentation.weight.requires_grad


@pytest.mark.parametrize(("has_bf16", "dtype"), [(True, torch.bfloat16), (False, torch.float32)])
def test_cpu_mixed_precision_only_where_the_cpu_has_bf16(
    monkeypatch, capsys, tmp_path, has_bf16, dtype
):
    # bf16 autocast is slower than float32 on CPUs without bf16 instructions: amp falls back there,
    # and the run says so.
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: has_bf16)
    with train_module.autocast(torch.device("cpu"), enabled=True):
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == dtype
    train(tiny("lifter", "optim.amp=true", "optim.epochs=1"), tmp_path)
    said = "this CPU has no bfloat16 instructions" in "".join(capsys.readouterr())
    assert said is not has_bf16


def test_a_last_batch_of_one_image_is_dropped_not_a_batchnorm_error(tmp_path):
    # 17 training crops in batches of 16 leave one; at 32 px the ResNet's last map is 1x1, where
    # BatchNorm cannot normalise a single sample in training mode. The run takes the one batch
    # of 16 (it stopped with "Expected more than 1 value per channel").
    result = train(tiny("encoder", "data.num_train=17"), tmp_path / "run")
    assert Path(result.checkpoint).exists() and len(_rows(tmp_path / "run")) == 1


def test_crops_held_in_memory_train_exactly_as_the_same_crops_streamed(tmp_path):
    """An in-memory split (a TensorSplit: stacked once, batched by index) and the same synthetic
    crops streamed through a DataLoader give the same weights to the last bit: the same order in
    each epoch, the same batches, the same last batch of one dropped (17 crops in batches of 16).
    The in-memory path is the demo's; the streamed one is the reference."""
    cfgs = {
        held: tiny("encoder", f"data.in_memory={held}", "data.num_train=17", "optim.epochs=2")
        for held in ("true", "false")
    }
    runs = {held: train(cfg, tmp_path / held).model.state_dict() for held, cfg in cfgs.items()}
    torch.manual_seed(cfgs["true"].seed)
    initial = build_model(cfgs["true"].model).state_dict()
    moved = [name for name, value in runs["true"].items() if not torch.equal(value, initial[name])]
    assert any(name.startswith("encoder.") for name in moved)  # it trained
    for name, value in runs["true"].items():
        assert torch.equal(value, runs["false"][name]), name


@pytest.mark.parametrize(
    ("free", "fits"),
    # 10 records of a 4x4x3 uint8 image (48 B) and a 3x3 float32 K (36 B): 840 B, a quarter of
    # 3,360 B of free GPU memory exactly; one byte less and the split does not fit.
    [(3360, True), (3359, False)],
)
def test_a_split_held_in_memory_goes_to_the_gpu_within_a_quarter_of_its_free_memory(
    monkeypatch, free, fits
):
    """The quarter rule of fits_on_device, in bytes; on the CPU a split always fits."""
    records = train_module.RecordList(
        [{"image": np.zeros((4, 4, 3), np.uint8), "K": np.eye(3, dtype=np.float32), "id": "x"}] * 10
    )
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free, 10 * free))
    assert train_module.fits_on_device(records, torch.device("cuda")) is fits
    assert train_module.fits_on_device(records, torch.device("cpu")) is True


def test_a_split_held_in_memory_that_does_not_fit_goes_through_a_dataloader(monkeypatch):
    """Too large for the GPU, the records are batched by a DataLoader without workers (they are
    in this process already), with pinned batches on a GPU, as before TensorSplits held images;
    a split that fits is a TensorSplit on the device."""
    cfg = tiny("encoder", "data.num_train=20")
    records = build_split(cfg.data, cfg.data.train_split, with_images=True)
    runtime = train_module.Runtime(rank=0, world_size=1, device=torch.device("cpu"))
    held = train_module._loader(records, cfg, runtime, train=True)
    assert isinstance(held, train_module.TensorSplit)
    monkeypatch.setattr(train_module, "fits_on_device", lambda records, device: False)
    loader = train_module._loader(records, cfg, runtime, train=True)
    assert isinstance(loader, train_module.DataLoader) and loader.num_workers == 0
    # Either way the same batches of an epoch the loop has seeded: 20 crops in batches of 16.
    for feed in (held, loader):
        train_module._set_epoch(feed, cfg.seed, 0)
    for ours, theirs in zip(held, loader, strict=True):
        assert torch.equal(ours["image"], theirs["image"])


class _OneFrame(FrameDataset):
    """A real-data loader of 16 samples, all one frame (its image never read), square-cropped
    and jittered: what the training loop seeds is all that tells its samples apart."""

    def __init__(self) -> None:
        super().__init__(image_size=32, crop="square", with_images=False, jitter=True)
        k = np.arange(21, dtype=float)
        hand = np.stack([-40 + 4 * k, -20 + 2 * k, np.full(21, 500.0)], axis=1)
        obj = np.array([[x, y, z] for x in (0, 60) for y in (0, 40) for z in (520, 540)], float)
        K = np.array([[500.0, 0, 100], [0, 500, 50], [0, 0, 1]])
        self._frame = Frame(Path("unread.png"), K, (200, 100), hand, obj, "right", "o", "t/0")

    def __len__(self) -> int:
        return 16

    def frame(self, index: int) -> Frame:
        return self._frame


def _epoch_draws(seed: int, epoch: int) -> dict[str, object]:
    """What the training loop draws for ``epoch`` of a run seeded ``seed``: a real dataset's
    shuffle (one process's RandomSampler; each of 2 ranks' DistributedSampler) and square-crop
    jitter, and the seed of torch's generators on ranks 0 and 1."""
    cfg = tiny("lifter", f"seed={seed}")
    draws: dict[str, object] = {}
    for world_size in (1, 2):
        for rank in range(world_size):
            runtime = train_module.Runtime(
                rank=rank, world_size=world_size, device=torch.device("cpu"),
                distributed=world_size > 1,
            )  # fmt: skip
            dataset = _OneFrame()
            loader = train_module._loader(dataset, cfg, runtime, train=True)
            train_module._set_epoch(loader, seed, epoch)
            draws[f"order {world_size}:{rank}"] = tuple(loader.sampler)
            draws[f"epoch seed {rank}"] = train_module.epoch_seed(seed, epoch, rank)
    # The jitter, read without the loader: its sampler's order is drawn apart, above.
    draws["jitter"] = dataset[0]["K"].tobytes()
    return draws


def test_no_two_seeds_or_epochs_share_a_shuffle_jitter_or_torch_seed():
    """Seeds 0-3 and epochs 0-4 each draw their own orders, jitter and torch seeds. With
    ``seed + epoch`` seed s + 1's epoch e replayed seed s's epoch e + 1 (``hopose ablate`` trains
    seeds 0, 1, 2, whose spread then understated the seed's), and a real dataset's jitter
    followed the epoch alone: every seed drew the same squares."""
    grid = {(seed, epoch): _epoch_draws(seed, epoch) for seed in range(4) for epoch in range(5)}
    for key in grid[0, 0]:
        for seed in range(3):
            for epoch in range(4):
                assert grid[seed + 1, epoch][key] != grid[seed, epoch + 1][key], (key, seed, epoch)
        # A chance repeat of 16 samples' order, a float K or a 32-bit seed is negligible.
        assert len({draws[key] for draws in grid.values()}) == len(grid), key


def test_seed_0_draws_what_it_always_drew():
    """Seed 0's stream is the epoch, as ``seed + epoch`` was, and other ranks keep their hash of
    (seed, epoch, rank): the shipped configs and the demo (seed 0) train bit for bit as before,
    and the docs' numbers with them."""
    for epoch in range(4):
        draws = _epoch_draws(0, epoch)
        before = torch.Generator().manual_seed(0 + epoch)
        assert draws["order 1:0"] == tuple(torch.randperm(16, generator=before).tolist())
        for rank in range(2):
            sampler = torch.utils.data.DistributedSampler(
                range(16), num_replicas=2, rank=rank, seed=0
            )
            sampler.set_epoch(epoch)
            assert draws[f"order 2:{rank}"] == tuple(sampler)
        dataset = _OneFrame()
        dataset.set_epoch(epoch)
        assert draws["jitter"] == dataset[0]["K"].tobytes()
        assert draws["epoch seed 0"] == 0 + epoch
        hashed = np.random.SeedSequence([0, epoch, 1]).generate_state(1)[0]
        assert draws["epoch seed 1"] == int(hashed)


def test_resume_of_a_folder_that_does_not_exist_creates_nothing(tmp_path):
    with pytest.raises(RunError, match="there is no run to continue"):
        train(tiny("lifter"), tmp_path / "typo", resume=True)
    assert not (tmp_path / "typo").exists()


class _Reduced(Exception):
    """Raised by the stand-in all-reduce: the packed tensor is checked, the rest not run."""


def test_sums_over_ranks_are_packed_on_the_sums_device(monkeypatch):
    """On GPUs the sums are CUDA tensors while a bare count tensor is made on the CPU; stacking
    the two raised. The meta device stands in for CUDA: anything that is not the CPU."""
    seen = []

    def all_reduce(packed):
        seen.append(packed.device)
        raise _Reduced

    monkeypatch.setattr(train_module.dist, "all_reduce", all_reduce)
    meta = torch.device("meta")
    sums = {"l3d": torch.zeros((), device=meta), "total": torch.zeros((), device=meta)}
    with pytest.raises(_Reduced):
        train_module._sum_over_ranks(sums, 48, meta)
    assert seen == [meta]


def test_resume_with_another_number_of_processes_is_refused_naming_both(tmp_path, monkeypatch):
    """optim.batch_size is per process and each process trains its shard of the split: a run
    of two torchrun processes resumed by one would go on with half the batch and another
    order. last.pt records the processes; a resume with another count is one line naming both,
    before anything is written. A finished run, which trains nothing more, still returns its
    network (a demo or a chain of stages resumed on one machine)."""
    setup = train_module.setup_runtime

    def rank_0_of_two(device):
        return dataclasses.replace(setup(device), world_size=2)

    monkeypatch.setattr(train_module, "setup_runtime", rank_0_of_two)
    train(tiny("lifter"), tmp_path)  # as rank 0 of `torchrun --nproc_per_node=2` records it
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["world_size"] == 2
    before = (tmp_path / "metrics.csv").read_text()
    with pytest.raises(RunError) as error:
        train(tiny("lifter", "optim.epochs=2"), tmp_path, resume=True)
    assert str(error.value) == (
        f"{tmp_path / 'last.pt'}: was trained by 2 processes, this run has 1; "
        "optim.batch_size is per process and each process trains its shard of the data, so "
        "--resume needs as many processes as the run had (start a new --out to change them)"
    )
    assert (tmp_path / "metrics.csv").read_text() == before
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert train(tiny("lifter"), tmp_path, resume=True).best_epoch == 1


def test_resume_below_the_epochs_done_is_refused_naming_both(tmp_path):
    train(tiny("lifter", "optim.epochs=2"), tmp_path)
    config = (tmp_path / "config.yaml").read_text()
    with pytest.raises(RunError, match=r"optim\.epochs=1 .*2 epochs") as error:
        train(tiny("lifter", "optim.epochs=1"), tmp_path, resume=True)
    assert "\n" not in str(error.value)
    assert (tmp_path / "config.yaml").read_text() == config  # the run's own config is kept


def test_a_missing_backbone_weights_file_is_refused_before_the_data_is_built(tmp_path, monkeypatch):
    def read_split(*args, **kwargs):
        raise AssertionError("the data was built before the config was checked")

    monkeypatch.setattr(train_module, "_read_split", read_split)
    missing = tmp_path / "resnet18.pth"
    cfg = tiny("encoder", f"model.backbone_weights={missing}")
    with pytest.raises(FileNotFoundError, match=r"^model\.backbone_weights: .*resnet18\.pth"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_a_stage_whose_encoder_a_checkpoint_replaces_reads_no_backbone_weights(tmp_path):
    """The backbone file an encoder stage started from is gone (moved, or the run continues on
    another machine): its --resume, and a stage whose init_from trained the encoder, take the
    checkpoint's encoder and never read the file (both ended in FileNotFoundError); a stage
    whose encoder starts from the file (init_from of a lifter-stage checkpoint) is refused
    naming the field."""
    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    backbone = f"model.backbone_weights={weights}"
    encoder = train(tiny("encoder", backbone), tmp_path / "encoder")
    weights.unlink()
    train(tiny("encoder", backbone, "optim.epochs=2"), tmp_path / "encoder", resume=True)
    assert load_checkpoint(tmp_path / "encoder" / "last.pt")["epoch"] == 2
    train(tiny("end2end", backbone, f"init_from={encoder.checkpoint}"), tmp_path / "end2end")
    assert load_checkpoint(tmp_path / "end2end" / "last.pt")["trained"] == ["encoder", "lifter"]
    lifter = tmp_path / "lifter.pt"
    cfg = tiny("lifter")
    save_checkpoint(model_checkpoint(build_model(cfg.model), cfg, trained=("lifter",)), lifter)
    with pytest.raises(FileNotFoundError, match=r"^model\.backbone_weights: .*r18\.pth"):
        train(tiny("encoder", backbone, f"init_from={lifter}"), tmp_path / "from_lifter")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a torch file", r"not a readable state dict \(not the zip archive torch\.save"),
        ({"conv1.weight": torch.zeros(1)}, "weights do not fit the backbone"),
    ],
    ids=["not_torch", "another_network"],
)
def test_backbone_weights_the_backbone_cannot_load_are_refused_before_the_data_is_built(
    tmp_path, monkeypatch, content, reason
):
    def read_split(*args, **kwargs):
        raise AssertionError("the data was built before the weights were checked")

    monkeypatch.setattr(train_module, "_read_split", read_split)
    weights = tmp_path / "r18.pth"
    if isinstance(content, bytes):
        weights.write_bytes(content)
    else:
        torch.save(content, weights)
    cfg = tiny("encoder", f"model.backbone_weights={weights}")
    with pytest.raises(ValueError, match=rf"^model\.backbone_weights: .*r18\.pth: {reason}"):
        train(cfg, tmp_path / "run")


def test_resuming_a_finished_run_builds_no_data_and_returns_its_network(tmp_path, monkeypatch):
    """A demo killed in its evaluation resumes its finished stages without rendering their
    crops again."""
    done = train(tiny("encoder", "optim.epochs=1"), tmp_path)

    def read_split(*args, **kwargs):
        raise AssertionError("a finished run built its data")

    monkeypatch.setattr(train_module, "_read_split", read_split)
    again = train(tiny("encoder", "optim.epochs=1"), tmp_path, resume=True)
    assert (again.best, again.best_epoch, again.checkpoint) == (
        done.best,
        done.best_epoch,
        done.checkpoint,
    )
    for (name, a), (_, b) in zip(
        done.model.state_dict().items(), again.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_training_shard_of_one_sample_is_refused_naming_the_field(tmp_path):
    # One sample in batches of 16 is a last batch of one, dropped (BatchNorm): no step at all.
    with pytest.raises(ValueError, match=r"^data\.num_train: .*one sample"):
        train(tiny("encoder", "data.num_train=1"), tmp_path)


def test_validation_error_is_the_metrics_mean_distance():
    """best.pt is picked by the error ``hopose.metrics`` defines: one definition for both."""
    generator = torch.Generator().manual_seed(0)
    batch = {
        name: torch.randn(4, nodes, dim, generator=generator) * 50
        for name, nodes, dim in (("hand_3d", 21, 3), ("obj_3d", 8, 3))
    }
    out = {"kp3d": torch.randn(4, 29, 3, generator=generator) * 50}
    hand = mean_distance(out["kp3d"][:, :21], batch["hand_3d"])
    obj = mean_distance(out["kp3d"][:, 21:], batch["obj_3d"])
    error = train_module.validation_error(out, batch, ("hand", "object"))
    assert torch.equal(error, (hand + obj) / 2)
    assert torch.equal(train_module.validation_error(out, batch, ("hand",)), hand)


def _backbone_warnings(cfg, out: Path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg, out)
    return [str(w.message) for w in caught if "no backbone weights file given" in str(w.message)]


def test_only_a_stage_that_trains_the_encoder_warns_of_a_random_backbone(tmp_path):
    """The lifter stage never uses the encoder, whose random start is then no news."""
    assert _backbone_warnings(tiny("lifter"), tmp_path / "lifter") == []
    assert len(_backbone_warnings(tiny("encoder"), tmp_path / "encoder")) == 1


@pytest.mark.parametrize(
    ("start", "warnings_expected"),
    [("fresh", 1), ("init_from_a_lifter", 1), ("init_from_an_encoder", 0), ("resume", 0)],
)
def test_a_random_backbone_is_warned_of_only_where_the_encoder_starts_random(
    tmp_path, start, warnings_expected
):
    """The warning says the encoder's ResNet starts from random initialisation: so it does on a
    fresh image stage and on one whose init_from trained no encoder (a lifter-stage checkpoint),
    not where a checkpoint's trained encoder replaces it (init_from of an encoder or end-to-end
    stage, and every --resume), where the warning made the pre-training look lost."""
    from_init = start.startswith("init_from")
    cfg = tiny("encoder", *([f"init_from={tmp_path / 'start.pt'}"] if from_init else []))
    with random_backbone_expected():
        saved = build_model(cfg.model)
    parts = ("lifter",) if start == "init_from_a_lifter" else ("encoder", "lifter")
    checkpoint = model_checkpoint(saved, cfg, trained=parts)
    resumed = checkpoint if start == "resume" else None
    init = checkpoint if from_init else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_module._network(cfg, STAGES["encoder"], resumed, init, None, out_dir=tmp_path)
    backbone = [w for w in caught if "no backbone weights file given" in str(w.message)]
    assert len(backbone) == warnings_expected


def _scripted_validation(monkeypatch, errors: list[float]) -> dict[tuple[str, int], dict]:
    """Make the validations report ``errors`` in turn (the other terms measured as before), and
    record the weights of every checkpoint write, by file name and epoch done (1-based)."""
    script = iter(errors)
    evaluate, save = train_module.evaluate, train_module.save_checkpoint

    def scripted_evaluate(*args, **kwargs):
        return evaluate(*args, **kwargs) | {"error": next(script)}

    written = {}

    def recording_save(state, path):
        weights = {name: value.clone() for name, value in state["model"].items()}
        written[Path(path).name, state["epoch"]] = weights
        save(state, path)

    monkeypatch.setattr(train_module, "evaluate", scripted_evaluate)
    monkeypatch.setattr(train_module, "save_checkpoint", recording_save)
    return written


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def test_best_pt_holds_the_lowest_error_epoch_not_the_last(tmp_path, monkeypatch):
    """Validation errors 3.0, 1.0, 2.0 over 3 epochs: the best is epoch 2 (1-based; 0-based 1 in
    the checkpoint), best.pt is written after epochs 1 and 2 only (each a new lowest error), and
    holds the weights last.pt held after epoch 2, not those of epoch 3."""
    written = _scripted_validation(monkeypatch, [3.0, 1.0, 2.0])
    result = train(tiny("lifter", "optim.epochs=3"), tmp_path)
    assert [float(row["val/error"]) for row in _rows(tmp_path)] == [3.0, 1.0, 2.0]
    assert (result.best, result.best_epoch) == (1.0, 2)  # min(3, 1, 2) at the 2nd epoch
    assert sorted(epoch for name, epoch in written if name == "best.pt") == [1, 2]
    best = load_checkpoint(tmp_path / "best.pt")
    assert (best["epoch"], best["best"], best["best_epoch"]) == (2, 1.0, 2 - 1)
    last = load_checkpoint(tmp_path / "last.pt")
    assert (last["epoch"], last["best"], last["best_epoch"]) == (3, 1.0, 2 - 1)
    # The epochs' weights differ (lr 3e-3 moves them), so best.pt names the epoch it holds.
    assert not _same_weights(written["last.pt", 2], written["last.pt", 3])
    assert _same_weights(best["model"], written["last.pt", 2])


def test_resume_keeps_the_best_of_the_epochs_before_it(tmp_path, monkeypatch):
    """1 epoch with error 1.0, then resumed to 2 with error 2.0: the best stays epoch 1's 1.0
    (a resume that forgot it would take 2.0 < inf), and best.pt keeps epoch 1's weights."""
    written = _scripted_validation(monkeypatch, [1.0])
    train(tiny("lifter", "optim.epochs=1"), tmp_path)
    first_epoch = written["last.pt", 1]
    monkeypatch.undo()  # the real validation and save again, then scripted anew
    written = _scripted_validation(monkeypatch, [2.0])
    result = train(tiny("lifter", "optim.epochs=2"), tmp_path, resume=True)
    assert [float(row["val/error"]) for row in _rows(tmp_path)] == [1.0, 2.0]
    assert (result.best, result.best_epoch) == (1.0, 1)
    last = load_checkpoint(tmp_path / "last.pt")
    assert (last["epoch"], last["best"], last["best_epoch"]) == (2, 1.0, 1 - 1)
    best = load_checkpoint(tmp_path / "best.pt")
    assert (best["epoch"], best["best"], best["best_epoch"]) == (1, 1.0, 1 - 1)
    assert not _same_weights(first_epoch, written["last.pt", 2])
    assert _same_weights(best["model"], first_epoch)


def test_without_a_validation_split_best_pt_is_the_last_epoch_and_resumes_exactly(
    tmp_path, monkeypatch
):
    """data.val_split null (HO-3D has no labelled validation split), 3 epochs, val_every 2:
    nothing is validated; epochs 2 and 3 write their rows (training terms, no val/ column),
    then last.pt, then best.pt with the same weights, so that best.pt ends as the last epoch's
    network bit for bit, for the next stage's init_from. Run to epoch 2 and resumed to 3, the
    run ends with the uninterrupted run's rows and best.pt."""

    def no_validation(*args, **kwargs):
        raise AssertionError("validated without a validation split")

    monkeypatch.setattr(train_module, "evaluate", no_validation)
    written = _record_saves(monkeypatch)
    extra = ("data.val_split=null", "optim.val_every=2", "optim.checkpoint_minutes=1000")
    straight = train(tiny("lifter", "optim.epochs=3", *extra), tmp_path / "straight")
    assert written == [("last.pt", 2), ("best.pt", 2), ("last.pt", 3), ("best.pt", 3)]
    rows = _rows(tmp_path / "straight")
    assert [row["epoch"] for row in rows] == ["2", "3"]
    assert [name for name in rows[0] if not name.startswith("train/")] == ["epoch", "lr"]
    assert all(math.isfinite(float(row["train/total"])) for row in rows)
    best = load_checkpoint(tmp_path / "straight" / "best.pt")
    last = load_checkpoint(tmp_path / "straight" / "last.pt")
    assert (best["epoch"], best["best"], best["best_epoch"]) == (3, math.inf, 3 - 1)
    assert _same_weights(best["model"], last["model"])
    assert (straight.best, straight.best_epoch) == (math.inf, 3)

    train(tiny("lifter", "optim.epochs=2", *extra), tmp_path / "resumed")
    train(tiny("lifter", "optim.epochs=3", *extra), tmp_path / "resumed", resume=True)
    assert _rows(tmp_path / "resumed") == rows
    resumed = load_checkpoint(tmp_path / "resumed" / "best.pt")
    assert resumed["epoch"] == 3 and _same_weights(resumed["model"], best["model"])


def test_each_metrics_row_logs_the_lr_its_epoch_trained_with(tmp_path):
    """StepLR with gamma 0.5 every 2 epochs: epochs 1-4 train at lr, lr, lr/2, lr/2, and each
    row logs its own epoch's lr, not the next one's (read after scheduler.step(): that would
    be lr, lr/2, lr/2, lr/4); every epoch's decay would give lr, lr/2, lr/4, lr/8."""
    cfg = tiny("lifter", "optim.epochs=4", "optim.gamma=0.5", "optim.step_size=2")
    lr = cfg.optim.lr
    assert lr == 3e-3  # the synthetic lifter's
    train(cfg, tmp_path)
    rows = _rows(tmp_path)
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "4"]
    assert [float(row["lr"]) for row in rows] == [lr, lr, lr / 2, lr / 2]


def test_a_resumed_network_keeps_the_parts_its_checkpoint_records_as_trained(tmp_path):
    """An encoder stage started from a lifter checkpoint records both parts as trained; resumed,
    its network still does (not only the encoder its stage trains), so that its next
    checkpoint can lift and predict from images."""
    cfg = tiny("encoder")
    torch.manual_seed(7)  # other weights than those the resume's seed would build
    saved = build_model(cfg.model)
    checkpoint = model_checkpoint(saved, cfg, trained=("encoder", "lifter"))
    network = train_module._network
    model, trained = network(cfg, STAGES["encoder"], checkpoint, None, None, out_dir=tmp_path)
    assert trained == {"encoder", "lifter"}
    for name, value in saved.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def _scripted_steps(monkeypatch, module: torch.nn.Module) -> None:
    """Make a training step's loss the batch mean of ``module(batch["x"])`` (term "3d"), with
    no augmentation: train_one_epoch's own arithmetic on a network small enough to check."""

    def forward_losses(module, batch, cfg, *, parts, device, mixed_precision):
        return {}, {"3d": module(batch["x"]).mean()}, batch

    monkeypatch.setattr(train_module, "augment_batch", lambda batch, cfg, *, epoch: batch)
    monkeypatch.setattr(train_module, "forward_losses", forward_losses)
    monkeypatch.setattr(train_module, "total_loss", lambda terms, weights: terms["3d"])


@pytest.mark.parametrize(
    ("grad_clip", "expected"),
    [("null", [-30.0, -40.0]), ("100", [-30.0, -40.0]), ("5", [-3.0, -4.0])],
)
def test_grad_clip_bounds_the_unscaled_gradient_norm(monkeypatch, grad_clip, expected):
    """Loss w . x with x = (30, 40) at w = 0: the gradient is x, norm 50. One SGD step of lr 1
    moves w by -x, or by -x * 5/50 = (-3, -4) with optim.grad_clip 5 (100 clips nothing). The
    clip applies to the true gradient, after the scaler's unscale, not to the scaled one (the
    scaler is enabled, at 1024, as on a GPU under optim.amp)."""
    linear = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(linear.weight)
    _scripted_steps(monkeypatch, linear)
    batch = {"x": torch.tensor([[30.0, 40.0]]), "hand_3d": torch.zeros(1, 21, 3)}
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    cfg = tiny("lifter", f"optim.grad_clip={grad_clip}")
    optimizer = torch.optim.SGD(linear.parameters(), lr=1.0)
    train_module.train_one_epoch(
        linear, [batch], optimizer, scaler, cfg,
        parts=("hand", "object"), device=torch.device("cpu"), epoch=0, show_progress=False,
    )  # fmt: skip
    assert linear.weight.detach().flatten().tolist() == pytest.approx(expected, rel=1e-6)


def test_distributed_epoch_means_are_over_every_ranks_samples(monkeypatch):
    """This rank's batch: x = (1, 2), (3, 4) through w = (1, 1), outputs 3 and 7, mean loss 5
    over 2 samples (sum 10). The other rank (the stand-in all-reduce adds its sums) had 2
    samples of mean 10 (sum 20). The epoch's means: (10 + 20) / (2 + 2) = 7.5 on every rank,
    neither this rank's 5 nor the sums over this rank's count alone, 15."""
    linear = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.ones_(linear.weight)
    _scripted_steps(monkeypatch, linear)

    def all_reduce(packed):  # packed: the sums of "3d" and "total", then the count
        packed += torch.tensor([20.0, 20.0, 2.0], dtype=packed.dtype)

    monkeypatch.setattr(train_module.dist, "all_reduce", all_reduce)
    batch = {"x": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "hand_3d": torch.zeros(2, 21, 3)}
    means = train_module.train_one_epoch(
        linear, [batch], torch.optim.SGD(linear.parameters(), lr=0.0),
        torch.amp.GradScaler("cpu", enabled=False), tiny("lifter", "optim.grad_clip=null"),
        parts=("hand", "object"), device=torch.device("cpu"), epoch=0, show_progress=False,
        distributed=True,
    )  # fmt: skip
    assert means == {"3d": 7.5, "total": 7.5}


def test_last_pt_comes_between_validations_once_checkpoint_minutes_have_passed(
    tmp_path, monkeypatch
):
    """A clock that moves 40 s per epoch, optim.checkpoint_minutes 1, validation after epoch 4
    only: last.pt after epoch 2 (80 s >= 60 s since the start), not 3 (40 s since that write),
    then with the validation of epoch 4."""
    clock = [0.0]
    one_epoch = train_module.train_one_epoch

    def forty_seconds(*args, **kwargs):
        clock[0] += 40.0
        return one_epoch(*args, **kwargs)

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return clock[0]

    monkeypatch.setattr(train_module, "train_one_epoch", forty_seconds)
    monkeypatch.setattr(train_module, "time", Clock)
    written = _record_saves(monkeypatch)
    extra = ("optim.epochs=4", "optim.val_every=4", "optim.checkpoint_minutes=1")
    train(tiny("lifter", *extra), tmp_path)
    assert [epoch for name, epoch in written if name == "last.pt"] == [2, 4]


def test_amp_on_a_cpu_trains_in_bf16_validates_in_float32_and_scales_no_loss(tmp_path, monkeypatch):
    """optim.amp on a CPU with bf16 instructions: training steps run under autocast, the
    validation that picks best.pt does not (it is the error hopose eval measures), and the
    gradient scaler, which bf16 does not need, stays disabled (last.pt holds its empty state)."""
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: True)
    seen = []
    forward = train_module.forward_losses

    def spy(module, batch, cfg, **kwargs):
        seen.append(("train" if module.training else "val", kwargs["mixed_precision"]))
        return forward(module, batch, cfg, **kwargs)

    monkeypatch.setattr(train_module, "forward_losses", spy)
    train(tiny("lifter", "optim.amp=true"), tmp_path)
    assert seen == [("train", True)] * 3 + [("val", False)]  # 48 / 16 steps, 16 to validate
    assert load_checkpoint(tmp_path / "last.pt")["scaler"] == {}


def test_amp_is_on_where_asked_on_a_gpu_and_float16_there(monkeypatch):
    """amp_active: off when not asked, on when asked on a GPU (whatever the CPU), and on the CPU
    only with bf16 instructions; autocast: float16 on a GPU, bfloat16 on a CPU, none where amp
    is off. No GPU is needed: torch.autocast is replaced by a recorder."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    # Without bf16 instructions the CPU keeps float32; a GPU's autocast does not depend on them.
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: False)
    active = [train_module.amp_active(d, asked) for d in (cpu, cuda) for asked in (False, True)]
    assert active == [False, False, False, True]
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: True)
    active = [train_module.amp_active(d, asked) for d in (cpu, cuda) for asked in (False, True)]
    assert active == [False, True, False, True]
    seen = []

    def autocast(device_type, dtype):
        seen.append((device_type, dtype))
        return nullcontext()

    monkeypatch.setattr(torch, "autocast", autocast)
    for device, enabled in ((cuda, True), (cpu, True), (cuda, False), (cpu, False)):
        train_module.autocast(device, enabled)
    assert seen == [("cuda", torch.float16), ("cpu", torch.bfloat16)]


@pytest.fixture
def event_files_in_order(monkeypatch):
    """TensorBoard reads a folder's event files in name order, and a name ends in the count of
    writers this process made before it: made within one second, the writer numbered 10 is read
    before the one numbered 9, and a resume's purge before what it purges. The count starts
    again for the test, which makes fewer than 10."""
    from tensorboard.summary.writer import event_file_writer

    monkeypatch.setattr(event_file_writer, "_global_uid", event_file_writer.AtomicCounter(0))


def _tensorboard_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar the TensorBoard logs of ``run`` hold, as TensorBoard shows them (purges
    applied): (step, value) by tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    return {
        tag: [(scalar.step, scalar.value) for scalar in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def test_tensorboard_drops_the_scalars_of_an_epoch_a_resume_redoes(
    tmp_path, monkeypatch, event_files_in_order
):
    """Killed after epoch 2's rows, before its last.pt: the resume redoes epoch 2 and purges the
    unclaimed TensorBoard scalars from step 2 on, as it drops the CSV row, so TensorBoard shows
    one value per epoch, the CSV's."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny("lifter", "optim.epochs=2")
    _kill_at(monkeypatch, "last.pt", 2, after=False)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path)
    monkeypatch.undo()
    train(cfg, tmp_path, resume=True)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars = events.Scalars("val/error")
    assert [scalar.step for scalar in scalars] == [1, 2]
    logged = [float(row["val/error"]) for row in _rows(tmp_path)]
    assert [scalar.value for scalar in scalars] == pytest.approx(logged)


def test_every_epoch_prints_a_line_and_logs_its_training_terms_validated_or_not(tmp_path, capsys):
    """3 epochs, val_every 2: a line for each epoch (a log file sees epochs between
    validations), the validation error on epochs 2 and 3 alone; TensorBoard holds the training
    terms and the time of all 3 epochs, the validation's of 2 and 3, the CSV's values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny("lifter", "optim.epochs=3", "optim.val_every=2"), tmp_path)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split(" lr ")[0] for line in lines] == [
        "[lifter] epoch 1/3", "[lifter] epoch 2/3", "[lifter] epoch 3/3"
    ]  # fmt: skip
    assert ["val error" in line for line in lines] == [False, True, True]
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    for name, steps in (("train/total", [1, 2, 3]), ("time/train_seconds", [1, 2, 3])):
        assert [scalar.step for scalar in events.Scalars(name)] == steps
    rows = _rows(tmp_path)
    assert [scalar.step for scalar in events.Scalars("val/error")] == [2, 3]
    for name in ("val/error", "train/total"):
        logged = [float(row[name]) for row in rows]
        assert [s.value for s in events.Scalars(name) if s.step >= 2] == pytest.approx(logged)
    seconds = [scalar.value for scalar in events.Scalars("time/train_seconds")]
    printed = [float(line.rsplit(", ", 1)[1].removesuffix(" s")) for line in lines]
    assert printed == pytest.approx(seconds, abs=0.051)  # printed to 0.1 s


def test_ddp_ranks_meet_after_each_validated_epochs_writes(tmp_path, monkeypatch):
    """The other ranks wait at a barrier for rank 0's writes, so that what they do next (the
    next stage's init_from) finds them. One-process torchrun, 3 epochs, val_every 2: the
    barrier comes after epochs 2 and 3, each once its last.pt is written."""
    as_one_process_torchrun(monkeypatch)
    seen = []
    barrier = train_module.dist.barrier

    def spy(*args, **kwargs):
        seen.append(load_checkpoint(tmp_path / "last.pt")["epoch"])
        return barrier(*args, **kwargs)

    monkeypatch.setattr(train_module.dist, "barrier", spy)
    extra = ("optim.epochs=3", "optim.val_every=2", "optim.checkpoint_minutes=1000")
    train(tiny("lifter", *extra), tmp_path)
    assert seen == [2, 3]


def _gradient_only_term_at(monkeypatch, step: int, term) -> None:
    """Add ``term(t)`` to the ``step``-th training loss of the run (1-based), ``t`` the first
    loss term: a term whose value is 0 but whose gradient is not."""
    total, count = train_module.total_loss, [0]

    def loss(terms, weights):
        count[0] += 1
        value = total(terms, weights)
        if count[0] == step:
            value = value + term(next(iter(terms.values())))
        return value

    monkeypatch.setattr(train_module, "total_loss", loss)


@pytest.mark.parametrize(
    ("term", "broken"),
    [
        # sqrt at 0 has an infinite slope, times d(0 * t) = 0: a NaN gradient, which Adam's
        # update puts in the weights.
        (lambda t: torch.sqrt(t * 0), r"lifter\.[\w.]+"),
        # A finite gradient whose square overflows float32 (1e25 times the term's, 1e50 or
        # more): Adam's second moment is infinite and the weights stay finite (m / inf = 0),
        # frozen wherever it is.
        (lambda t: 1e25 * (t - t.detach()), r"optimizer\.state\.\d+\.exp_avg_sq"),
    ],
    ids=["nan_gradient", "overflowing_moment"],
)
def test_a_non_finite_training_state_is_never_saved_and_the_run_resumes(
    tmp_path, monkeypatch, term, broken
):
    """The last step of epoch 2 (steps 4 to 6: 48 samples in batches of 16) has a finite loss
    and a gradient that leaves NaN or an infinity in the weights or Adam's moments. last.pt is
    due after every epoch between the validations (checkpoint_minutes 0, val_every 3): the run
    stops with one line naming the epoch and the first such tensor, instead of writing it over
    epoch 1's last.pt (which --resume would then refuse, and a fresh run refuses the folder: the
    whole run lost), and the resume from epoch 1 ends as the run that met no such step."""
    cfg = tiny("lifter", "optim.epochs=3", "optim.val_every=3", "optim.checkpoint_minutes=0")
    straight = train(cfg, tmp_path / "straight")
    _gradient_only_term_at(monkeypatch, 2 * 3, term)
    with pytest.raises(FloatingPointError) as error:
        train(cfg, tmp_path / "broken")
    assert re.fullmatch(
        rf"after epoch 2: {broken} holds NaN or infinite values \(a training step's loss was "
        r"finite, its gradient not\); no checkpoint written for this epoch",
        str(error.value),
    ), error.value
    assert load_checkpoint(tmp_path / "broken" / "last.pt")["epoch"] == 1
    monkeypatch.undo()
    resumed = train(cfg, tmp_path / "broken", resume=True)
    assert _rows(tmp_path / "broken") == _rows(tmp_path / "straight")
    assert _same_weights(resumed.model.state_dict(), straight.model.state_dict())


def test_resume_writes_no_best_pt_from_a_last_pt_of_non_finite_weights(tmp_path):
    """A last.pt holding its run's best (killed before best.pt) but a NaN weight (edited, or of
    an older hopose): the resume refuses it naming the file and the weight, before writing
    best.pt from it."""
    train(tiny("lifter"), tmp_path)
    (tmp_path / "best.pt").unlink()
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    name = next(iter(last["model"]))
    last["model"][name] = torch.full_like(last["model"][name], math.nan)
    torch.save(last, tmp_path / "last.pt")
    with pytest.raises(CheckpointError) as error:
        train(tiny("lifter"), tmp_path, resume=True)
    assert str(error.value) == (
        f"{tmp_path / 'last.pt'}: model weights hold non-finite values ({name})"
    )
    assert not (tmp_path / "best.pt").exists()


def test_resume_refuses_a_last_pt_whose_adam_state_is_not_finite_before_writing_anything(
    tmp_path,
):
    """A last.pt of finite weights whose Adam second moment holds an infinity (edited, or saved
    by a hopose before 2026-12-05): the resume refuses it naming the file and the tensor, and leaves
    the folder as it was. It trained an epoch from it (the parameter frozen: its steps divided
    by infinity), wrote epoch 2's rows, and stopped at its checkpoint blaming that epoch's
    gradient."""
    train(tiny("lifter"), tmp_path)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    moments = last["optimizer"]["state"][0]
    moments["exp_avg_sq"] = torch.full_like(moments["exp_avg_sq"], math.inf)
    torch.save(last, tmp_path / "last.pt")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(CheckpointError) as error:
        train(tiny("lifter", "optim.epochs=2"), tmp_path, resume=True)
    assert str(error.value) == (
        f"{tmp_path / 'last.pt'}: the optimiser's state tensors hold non-finite values "
        "(optimizer.state.0.exp_avg_sq)"
    )
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before


def test_a_resume_checks_the_weights_finiteness_once_and_adams_state_too(tmp_path, monkeypatch):
    """Resuming a finished run checks last.pt's tensors once each: the weights, by
    load_training_state (load_weights checked them a second time), and Adam's moments and
    steps, 3 per trained parameter (never checked before a resume trained from them)."""
    train(tiny("lifter"), tmp_path)
    last = load_checkpoint(tmp_path / "last.pt")
    adam = {
        f"optimizer.state.{index}.{name}"
        for index, values in last["optimizer"]["state"].items()
        for name in values
    }
    checked = []
    first_non_finite = checkpoint_module.first_non_finite

    def spy(tensors):
        checked.append(set(tensors))
        return first_non_finite(tensors)

    monkeypatch.setattr(checkpoint_module, "first_non_finite", spy)
    train(tiny("lifter"), tmp_path, resume=True)
    assert checked == [set(last["model"]), adam]
    assert len(adam) == 3 * len(last["optimizer"]["param_groups"][0]["params"])


def _same_checkpoint(a: dict, b: dict) -> bool:
    """Whether two checkpoints hold the same keys and values, tensors bit for bit."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_checkpoint(a[key], b[key]) for key in a)
    if torch.is_tensor(a) and torch.is_tensor(b):
        return torch.equal(a, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("val_split", ["val", "null"])
def test_a_resume_ending_at_an_unvalidated_last_pt_validates_it_as_the_run_would_have(
    tmp_path, monkeypatch, val_split
):
    """5 epochs validated after 2, 4 and 5, last.pt after every epoch, killed as epoch 4's
    last.pt is written (its row written): last.pt holds epoch 3, not validated. Resumed with
    optim.epochs=3, epoch 3 is the last: the resume trains nothing and ends as the run of 3
    epochs that was never stopped: row 4 dropped, epoch 3 validated, its row (the training
    terms last.pt kept), last.pt and best.pt bit for bit that run's. Before, it was taken as
    finished: no validation, no row 3, and best.pt epoch 2's (without a validation split, the
    next stage's init_from started from an older epoch). Killed again between row 3 and its
    last.pt, the resume writes row 3 once. Neither resume builds the training split it never
    reads (it built it: for an image stage, thousands of crops to render)."""
    extra = (f"data.val_split={val_split}", "optim.val_every=2", "optim.checkpoint_minutes=0")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = train(tiny("lifter", "optim.epochs=3", *extra), straight)
    _kill_at(monkeypatch, "last.pt", 4, after=False)
    with pytest.raises(KeyboardInterrupt):
        train(tiny("lifter", "optim.epochs=5", *extra), killed)
    monkeypatch.undo()
    assert load_checkpoint(killed / "last.pt")["epoch"] == 3
    assert [row["epoch"] for row in _rows(killed)] == ["2", "4"]

    def no_training(*args, **kwargs):
        raise AssertionError("trained an epoch that last.pt holds")

    monkeypatch.setattr(train_module, "train_one_epoch", no_training)
    built = []

    def split_spy(data, split, **kwargs):
        built.append(split)
        return build_split(data, split, **kwargs)

    monkeypatch.setattr(train_module, "build_split", split_spy)
    _kill_at(monkeypatch, "last.pt", 3, after=False)
    with pytest.raises(KeyboardInterrupt):
        train(tiny("lifter", "optim.epochs=3", *extra), killed, resume=True)
    assert [row["epoch"] for row in _rows(killed)] == ["2", "3"]
    monkeypatch.setattr(train_module, "save_checkpoint", save_checkpoint)
    resumed = train(tiny("lifter", "optim.epochs=3", *extra), killed, resume=True)
    assert built == ["val", "val"] if val_split == "val" else built == []
    assert (resumed.best, resumed.best_epoch) == (done.best, done.best_epoch)
    assert _rows(killed) == _rows(straight)
    for name in ("last.pt", "best.pt"):
        assert _same_checkpoint(load_checkpoint(killed / name), load_checkpoint(straight / name))


@pytest.mark.parametrize("epochs", [3, 5], ids=["ended_again", "trained_on"])
def test_tensorboard_after_a_killed_resume_of_a_pending_epoch_is_the_uninterrupted_runs(
    tmp_path, monkeypatch, event_files_in_order, epochs
):
    """5 epochs validated after 2, 4 and 5, last.pt after every epoch, killed as epoch 4's
    last.pt is written: last.pt holds epoch 3 unvalidated. A resume with optim.epochs=3
    validates epoch 3, writes its scalars and row, and is killed before its last.pt. Resumed
    again, to end at 3 or to train on to 5, TensorBoard holds the uninterrupted run's scalars:
    every tag at the same steps with the same values, epoch 3's training time the one the first
    run measured (the other times differ from run to run). Before, the killed validation's
    scalars stayed at step 3: there twice (ended again) or where no validation was (trained
    on)."""
    extra = ("optim.val_every=2", "optim.checkpoint_minutes=0")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(tiny("lifter", f"optim.epochs={epochs}", *extra), straight)
    _kill_at(monkeypatch, "last.pt", 4, after=False)
    with pytest.raises(KeyboardInterrupt):
        train(tiny("lifter", "optim.epochs=5", *extra), killed)
    measured = dict(_tensorboard_scalars(killed)["time/train_seconds"])[3]
    _kill_at(monkeypatch, "last.pt", 3, after=False)
    with pytest.raises(KeyboardInterrupt):
        train(tiny("lifter", "optim.epochs=3", *extra), killed, resume=True)
    assert [row["epoch"] for row in _rows(killed)] == ["2", "3"]
    monkeypatch.setattr(train_module, "save_checkpoint", save_checkpoint)
    train(tiny("lifter", f"optim.epochs={epochs}", *extra), killed, resume=True)
    expected, logged = _tensorboard_scalars(straight), _tensorboard_scalars(killed)
    assert expected.keys() == logged.keys()
    for tag, scalars in expected.items():
        steps = [step for step, _ in scalars]
        assert [step for step, _ in logged[tag]] == steps, tag
        if not tag.startswith("time/"):
            assert logged[tag] == scalars, tag
    assert dict(logged["time/train_seconds"])[3] == measured
    assert _rows(killed) == _rows(straight)


def test_a_last_pt_between_validations_is_ended_only_by_as_many_processes(tmp_path, monkeypatch):
    """Ending the epoch of an unvalidated last.pt rewrites last.pt, which records the processes
    that trained it: resumed by another number of processes it is refused as a run that trains
    on, not rewritten with the wrong count."""
    setup = train_module.setup_runtime

    def rank_0_of_two(device):
        return dataclasses.replace(setup(device), world_size=2)

    monkeypatch.setattr(train_module, "setup_runtime", rank_0_of_two)
    _kill_at(monkeypatch, "last.pt", 2, after=False)
    extra = ("optim.val_every=2", "optim.checkpoint_minutes=0")
    with pytest.raises(KeyboardInterrupt):
        train(tiny("lifter", "optim.epochs=2", *extra), tmp_path)
    monkeypatch.undo()
    last, rows = load_checkpoint(tmp_path / "last.pt"), _rows(tmp_path)
    assert (last["epoch"], last["world_size"], [row["epoch"] for row in rows]) == (1, 2, ["2"])
    with pytest.raises(RunError, match=r"last\.pt: was trained by 2 processes, this run has 1"):
        train(tiny("lifter", "optim.epochs=1", *extra), tmp_path, resume=True)
    assert _same_checkpoint(load_checkpoint(tmp_path / "last.pt"), last)
    assert _rows(tmp_path) == rows


def test_the_optimizer_applies_the_configs_weight_decay_as_adams_l2_term():
    """``optim.weight_decay`` reaches Adam as its L2 term, added to the gradient (paper §4.3's
    Adam), not AdamW's decoupled shrink: one step from a zero loss gradient."""
    # Adam's first step moves a weight by lr * g / (|g| + eps), g = grad + weight_decay * w
    # (bias correction makes m = g and v = g^2), eps = 1e-8:
    # - weight_decay 1e-8, w = +-3: g = +-3e-8, a move of 0.1 * 3e-8 / 4e-8 = 0.075 -> +-2.925.
    #   AdamW would shrink w by lr * wd * w = 3e-9 only; no decay would not move it.
    # - weight_decay 0.01 (the default), w = +-2: g = +-0.02, a move of
    #   0.1 * 0.02 / (0.02 + 1e-8) = 0.09999995 -> +-1.90000005.
    for weight_decay, start, expected in ((1e-8, 3.0, 2.925), (0.01, 2.0, 1.90000005)):
        weight = torch.nn.Parameter(torch.tensor([start, -start], dtype=torch.float64))
        optimizer = train_module.make_optimizer(
            [weight], OptimConfig(lr=0.1, weight_decay=weight_decay)
        )
        weight.grad = torch.zeros_like(weight)
        optimizer.step()
        moved = weight.detach().tolist()
        assert moved == pytest.approx([expected, -expected], rel=0, abs=1e-12), weight_decay


def test_a_runs_initial_weights_follow_its_seed(tmp_path):
    """The network a run starts from is drawn from its seed: seeds 0 and 1 start apart (which
    the seed spread of `hopose ablate` relies on), seed 0 twice starts alike, whatever the
    generator's state before."""
    weights = []
    for seed in (0, 1, 0):
        cfg = tiny("lifter", f"seed={seed}")
        poses = build_split(cfg.data, cfg.data.train_split, with_images=False)  # data.seed 0
        torch.manual_seed(100 + seed)  # a state the run must not start from
        model, _ = train_module._network(cfg, STAGES["lifter"], None, None, poses, out_dir=tmp_path)
        weights.append(model.lifter.merged.layers[0].linear.weight.detach())
    assert not torch.equal(weights[0], weights[1])
    assert torch.equal(weights[0], weights[2])
