"""benchmarks/bench_device_copies.py: its counter finds the copies it names, and no training
step or validation batch of a shipped stage nor a ``refine_pose`` call copies anything from the
host (BENCHMARKS.md, "Training: host-to-device copies")."""

from __future__ import annotations

import pytest
import torch

import bench_device_copies as bench
from hopose.refine import RefineWeights


def test_counter_finds_each_kind_of_copy_and_host_read():
    x = torch.zeros(4, 3, device="meta")

    def run() -> None:
        x.new_tensor([1.0, 2.0, 3.0])  # a table built from Python data
        x[[0, 2]]  # an index tensor built from a list on the host
        x + torch.ones(3).to(x.device)  # a CPU tensor moved to the device
        bool(x.sum() > 0)  # the host reading a device value

    copies, reads = bench.count(run)
    assert copies.total() == 3, copies
    assert reads.total() == 1, reads
    # Python numbers and device tensors copy nothing.
    copies, reads = bench.count(lambda: x * 2.0 + x[1:3].sum())
    assert copies.total() == 0 and reads.total() == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "overrides", "epoch"),
    [
        ("lifter", (), None),
        ("lifter", bench.PERTURBED, None),
        ("encoder", (), None),
        ("encoder", bench.PROGRESSIVE, 0),  # an epoch on the smaller views
        ("end2end", (), None),
    ],
    ids=["lifter", "lifter-perturbed", "encoder", "encoder-progressive", "end2end"],
)
def test_a_training_step_copies_nothing_from_the_host(stage, overrides, epoch):
    """Augmentation or perturbation, forward, every loss term, backward and Adam, on meta."""
    with bench.on_meta():
        copies, reads = bench.step_counts(stage, 2, *overrides, epoch=epoch)
    assert copies.total() == 0, dict(copies)
    # The one read is the finiteness check of the summed loss (hopose.losses), by design.
    assert reads.total() == 1 and all(k.startswith("losses.py:") for k in reads), dict(reads)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["lifter", "encoder", "end2end"])
def test_a_validation_batch_copies_nothing_from_the_host(stage):
    """Forward, loss terms and the error that picks best.pt (hopose.train.evaluate), on meta:
    the error indexed the 3D with a range of nodes, an index tensor copied at every batch."""
    with bench.on_meta():
        copies, reads = bench.validation_counts(stage, 2)
    assert copies.total() == 0, dict(copies)
    assert reads.total() == 0, dict(reads)  # the means are read once, after the split


@pytest.mark.parametrize("complete_grasp", [False, True])
def test_refine_pose_copies_nothing_from_the_host(complete_grasp):
    with bench.on_meta():
        copies, _ = bench.refine_counts(2, RefineWeights(complete_grasp=complete_grasp))
    assert copies.total() == 0, dict(copies)
