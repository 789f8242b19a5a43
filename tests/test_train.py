"""The training loop: stages, checkpoints, resume, and two-process DDP on CPU (gloo)."""

from __future__ import annotations

import csv
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from hopose.config import TrainConfig, config_from_dict, load_config
from hopose.configs import CONFIG_DIR as CONFIGS
from hopose.models import build_model
from hopose.train import load_checkpoint, load_model, save_checkpoint, train

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")


def tiny(stage: str, *extra: str) -> TrainConfig:
    """A stage of the synthetic recipe shrunk to seconds: 32 px images, a handful of samples."""
    overrides = [
        "data.image_size=32",
        "model.image_size=32",
        "model.hidden=16",
        "data.num_train=48",
        "data.num_val=16",
        "data.num_test=16",
        "data.num_workers=0",
        "optim.batch_size=16",
        "optim.epochs=1",
        *extra,
    ]
    return load_config(CONFIGS / "synthetic" / f"{stage}.yaml", overrides)


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
    assert set(checkpoint) == {
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "config",
        "best",
        "best_epoch",
    }
    assert config_from_dict(checkpoint["config"]) == cfg
    # The encoder took no step: its weights are still those of the freshly seeded network,
    # while the lifter's moved.
    torch.manual_seed(cfg.seed)
    initial = build_model(cfg.model).state_dict()
    saved, _ = load_model(tmp_path / "best.pt")
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


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    train(tiny("lifter"), tmp_path, resume=True)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    # Running again without --resume starts over, its table too.
    train(tiny("lifter"), tmp_path)
    assert [row["epoch"] for row in _rows(tmp_path)] == ["1"]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous checkpoint intact and no partial file."""
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def crash(obj, f):
        Path(f).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


@pytest.mark.slow
def test_image_stages_chain_through_init_from(tmp_path):
    """Stage 2 (encoder, 2D terms) starts from stage 1; stage 3 adds 3D and physical terms."""
    lifter = train(tiny("lifter"), tmp_path / "lifter")
    encoder = train(tiny("encoder", f"init_from={lifter.checkpoint}"), tmp_path / "encoder")
    # The encoder stage left the lifter as stage 1 trained it.
    for name, value in lifter.model.lifter.state_dict().items():
        assert torch.equal(value, encoder.model.lifter.state_dict()[name]), name
    assert {"train/2d_init", "train/2d"} <= set(_rows(tmp_path / "encoder")[0])
    assert "train/3d" not in _rows(tmp_path / "encoder")[0]
    train(
        tiny("end2end", f"init_from={encoder.checkpoint}", "optim.amp=true"), tmp_path / "end2end"
    )
    row = _rows(tmp_path / "end2end")[0]
    assert {"train/2d", "train/3d_init", "train/3d", "train/physical"} <= set(row)
    assert all(float(value) == float(value) for value in row.values())  # no NaN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    result = train(tiny("lifter", "optim.epochs=2", "device=cpu"), Path(out) / "run")
    torch.save(result.model.lifter.state_dict(), Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_ddp_two_processes_keep_identical_parameters(tmp_path):
    """torchrun-style 2-process run on CPU (gloo): each rank trains on its own shard of the
    data, and gradient averaging keeps every parameter identical across ranks."""
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    initial = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
        assert torch.equal(value, initial[f"lifter.{name}"]), name  # rank 0 wrote this state
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
    # Only rank 0 wrote: one header and two epochs in the CSV.
    assert [row["epoch"] for row in _rows(tmp_path / "run")] == ["1", "2"]
