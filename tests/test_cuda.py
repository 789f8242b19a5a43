"""Training on a CUDA device: the lifter stage's device-resident batches and an image stage in
fp16 mixed precision with its gradient scaler. Run by ``benchmarks/gpu_check.py``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from hopose.checkpoint import load_checkpoint, load_model, untrained_network
from hopose.models import build_model
from hopose.train import train
from tiny_runs import as_one_process_torchrun, tiny

pytestmark = [pytest.mark.cuda, pytest.mark.filterwarnings("ignore:no backbone weights file")]


def _val_errors(run: Path) -> list[float]:
    """The validation error of each epoch, from the run's metrics.csv."""
    with (run / "metrics.csv").open() as handle:
        return [float(row["val/error"]) for row in csv.DictReader(handle)]


def test_lifter_stage_on_cuda_learns_and_its_checkpoint_lifts_alike_on_the_cpu(tmp_path):
    result = train(tiny("lifter", "device=cuda", "optim.epochs=3", "optim.lr=3e-3"), tmp_path)
    assert next(result.model.lifter.parameters()).is_cuda
    errors = _val_errors(tmp_path)
    assert len(errors) == 3 and errors[-1] < errors[0], errors  # the 3D error on unseen poses drops
    lifter_cpu = load_model(tmp_path / "last.pt", from_images=False)[0].lifter.eval()
    lifter_gpu = result.model.lifter.eval()
    kp2d = torch.rand(4, 29, 2) * 32
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]).expand(4, 3, 3)
    with torch.no_grad():
        on_cpu = lifter_cpu(kp2d, K)["kp3d"]
        on_gpu = lifter_gpu(kp2d.cuda(), K.cuda())["kp3d"].cpu()
    torch.testing.assert_close(on_gpu, on_cpu, atol=1e-2, rtol=1e-4)  # mm


def test_end2end_stage_in_fp16_with_a_gradient_scaler_moves_both_parts(tmp_path):
    # The scaler starts at 2**16, halved at each skipped step, and these losses' gradients
    # overflow fp16 until it is about 8: 13 steps are skipped before one moves anything.
    # Batches of 4 give 24 steps (48 samples, 2 epochs; 6 with batches of 16, all skipped:
    # measured with CPU fp16 autocast and an enabled scaler, 2026-12-05).
    cfg = tiny("end2end", "device=cuda", "optim.amp=true", "optim.epochs=2", "optim.batch_size=4")
    result = train(cfg, tmp_path)
    checkpoint = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=True)
    assert 0 < checkpoint["scaler"]["scale"] < float("inf")  # the scaler ran
    assert result.best < float("inf")
    first_conv = result.model.encoder.backbone.conv1.weight
    assert first_conv.is_contiguous(memory_format=torch.channels_last)
    # Steps the scaler did not skip moved both parts away from the freshly seeded network the
    # run started from (no init_from: train seeds with cfg.seed, then builds it).
    torch.manual_seed(cfg.seed)
    initial = build_model(cfg.model).state_dict()
    for name, value in [
        ("encoder.backbone.conv1.weight", first_conv),
        (
            "lifter.merged.layers.0.linear.weight",
            result.model.lifter.merged.layers[0].linear.weight,
        ),
    ]:
        assert not torch.equal(value.detach().cpu(), initial[name]), name


def test_synchronised_batch_normalisation_trains_under_torchrun_and_saves_batchnorm_keys(
    tmp_path, monkeypatch
):
    """A one-GPU torchrun run of the encoder stage with optim.sync_batchnorm: DDP wraps a
    module whose batch normalisation is SyncBatchNorm, and best.pt loads, key for key, into a
    network of plain BatchNorm layers."""
    as_one_process_torchrun(monkeypatch)
    layers = []
    ddp = torch.nn.parallel.DistributedDataParallel

    def spy(module, **kwargs):
        layers.extend(type(m).__name__ for m in module.modules() if "BatchNorm" in type(m).__name__)
        return ddp(module, **kwargs)

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", spy)
    cfg = tiny("encoder", "device=cuda", "optim.sync_batchnorm=true")
    train(cfg, tmp_path)
    assert layers and set(layers) == {"SyncBatchNorm"}
    saved = load_checkpoint(tmp_path / "best.pt")["model"]
    untrained_network(cfg.model).load_state_dict(saved)  # strict: the same keys
