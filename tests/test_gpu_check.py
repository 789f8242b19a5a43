"""The CPU side of the GPU check and of the training benchmarks: the table, the no-CUDA exit,
the floor's steps, the throughput cases on a tiny network, and the in-memory feeds."""

from __future__ import annotations

import re
from contextlib import nullcontext

import pytest
import torch

import bench_in_memory
import bench_train
import gpu_check
from hopose.data.splits import build_split
from tiny_runs import tiny

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")


def test_table_marks_failed_checks():
    rows = [gpu_check.Row("CUDA tests", "3 passed"), gpu_check.Row("torchrun", "exit 1", ok=False)]
    assert gpu_check.format_table(rows) == (
        "| check | result | status |\n"
        "|---|---|---|\n"
        "| CUDA tests | 3 passed | ok |\n"
        "| torchrun | exit 1 | **FAIL** |"
    )


def test_without_cuda_it_says_so_and_checks_nothing(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu_check, "cuda_tests", lambda: pytest.fail("must not run"))
    assert gpu_check.main([]) == gpu_check.NO_CUDA
    assert capsys.readouterr().out.strip().splitlines() == [
        "gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing checked"
    ]


def test_floor_makes_the_stages_optimisation_steps_and_no_other(monkeypatch):
    """64 poses in batches of 16 for 2 epochs: 8 Adam steps in the floor and in the stage (whose
    extra work is validation and writing), and the table reports their ratio."""
    steps = []
    adam_step = torch.optim.Adam.step

    def counted(self, *args, **kwargs):
        steps.append(1)
        return adam_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counted)
    cfg = bench_train.lifter_config(
        num_train=64, num_val=16, batch_size=16, epochs=2, backbone="resnet18", hidden=16,
        val_every=1,
    )  # fmt: skip
    splits = bench_train.pose_splits(cfg)
    bench_train.floor_seconds(cfg, splits)
    assert len(steps) == 8
    seconds = bench_train.measure(cfg, rounds=1)
    assert len(steps) == 8 + 2 * 8  # measure runs the floor and the stage once each
    table = bench_train.table(cfg, seconds)
    ratio = seconds["stage"][0] / seconds["floor"][0]
    assert f"**{ratio:.3f}**" in table


# The throughput cases' float32 rows, first on every machine.
FP32_ROWS = (
    "bare resnet18 training step, fp32",
    "encoder stage step, fp32",
    "end2end stage step, fp32",
)


@pytest.mark.slow
def test_throughput_cases_run_and_compare_with_the_bare_resnet(monkeypatch):
    # As on a CPU with bf16 instructions, but its steps run in float32 whatever this CPU has:
    # the rows and their arithmetic are tested, not bf16's speed (10x slower where it is emulated).
    monkeypatch.setattr(gpu_check.train_module, "amp_active", lambda device, requested: requested)
    monkeypatch.setattr(gpu_check.train_module, "autocast", lambda device, enabled: nullcontext())
    rows = gpu_check.throughput_rows(
        batch=2, size=32, steps=1, backbone="resnet18", device=torch.device("cpu")
    )
    assert [row.check for row in rows] == [
        *FP32_ROWS,
        "bare resnet18 training step, bf16 autocast",
        "encoder stage step, bf16 autocast",
        "end2end stage step, bf16 autocast",
    ]
    for bare, *stages in (rows[:3], rows[3:]):
        bare_rate = float(bare.result.split()[0].replace(",", ""))
        for row in stages:
            rate, ratio = re.match(r"([\d.,]+) img/s, ([\d.]+)x", row.result).groups()
            # Rates and ratios are printed to 3 digits, the ratio from the unrounded rates (to 2
            # decimals, a stage 0.0545x the bare network read 0.05, 8% off).
            assert float(ratio) == pytest.approx(float(rate.replace(",", "")) / bare_rate, rel=0.02)


def test_throughput_rows_name_no_bf16_run_on_a_cpu_without_bf16(monkeypatch):
    # There optim.amp trains in float32: rows labelled bf16 would time float32 a second time.
    monkeypatch.setattr(gpu_check.train_module, "cpu_has_bf16", lambda: False)
    for step in ("bare_resnet_step", "stage_step"):  # rows, not speed: no network is built
        monkeypatch.setattr(gpu_check, step, lambda *args: lambda: None)
    rows = gpu_check.throughput_rows(
        batch=2, size=32, steps=1, backbone="resnet18", device=torch.device("cpu")
    )
    assert [row.check for row in rows] == [*FP32_ROWS, "training steps, bf16 autocast"]
    assert rows[-1].result.startswith("not run: this CPU has no bf16 instructions")


def test_the_in_memory_benchmark_times_two_feeds_of_the_same_batches():
    """The two cases differ only in how the batches are made: a DataLoader collating records and
    a TensorSplit indexing stacked tensors serve the same tensors in the same order (20 crops in
    batches of 16: 16 + 4), else the ratio would compare different work."""
    cfg = tiny("encoder", "data.num_train=20")
    records = build_split(cfg.data, cfg.data.train_split, with_images=True)
    feeds = bench_in_memory.feeds(cfg, records, torch.device("cpu"))
    loader, split = (list(feeds[name]) for name in ("DataLoader", "TensorSplit"))
    assert [len(batch["image"]) for batch in split] == [16, 4]
    for theirs, ours in zip(loader, split, strict=True):
        assert set(ours) == {key for key, value in theirs.items() if torch.is_tensor(value)}
        for key, value in ours.items():
            assert torch.equal(value, theirs[key]), key
