"""GPU check: does hopose train correctly and fast on a CUDA machine? One command, one table.

``make gpu-check`` (or ``python benchmarks/gpu_check.py``) on a machine with a CUDA GPU runs:

1. the CUDA-marked tests (``pytest -m cuda``);
2. a one-GPU ``torchrun`` run of the end-to-end stage (DDP over NCCL, fp16 mixed precision
   with a gradient scaler) and of the lifter stage (its device-resident batches under DDP),
   both tiny, checked by their exit status and checkpoints;
3. training speed at 224 px, ResNet50, batch ``--batch`` (256), on batches already on the GPU:
   images/s of a bare torchvision ResNet50 training step (cross-entropy, Adam) and of the
   encoder and end-to-end stages' steps (``hopose.train.train_one_epoch``: losses of Eq. 7, the
   physical one in end-to-end), each in float32 and in fp16 mixed precision with a gradient
   scaler, all channels-last as ``train`` runs them, the stages as a ratio to the bare ResNet
   in the same precision;
4. the lifter stage's epoch against its floor, the bare optimisation steps
   (``bench_train.py``), at the paper's sizes;
5. the demo's encoder epoch over 2,000 crops held in memory on the GPU, batched by index,
   against the same fed by a DataLoader (``bench_in_memory.py``).

It prints a markdown table for ``BENCHMARKS.md`` and exits non-zero when a check fails. Without
a CUDA device it says so in one line and exits with status 2, having checked nothing.

Usage: ``python benchmarks/gpu_check.py [--batch 256] [--steps 20] [--lifter-epochs 20]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from bench_model import paired_ratio
from bench_train import lifter_config, measure
from hopose import train as train_module
from hopose.checkpoint import load_checkpoint
from hopose.cli import at_least
from hopose.config import OptimConfig, TrainConfig, config_from_dict
from hopose.geometry import project_points
from hopose.models import build_model
from hopose.run_folder import LAST_CHECKPOINT
from hopose.skeleton import NUM_SEGMENTATION_CLASSES
from hopose.stages import STAGES

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = 2
"""Exit status when there is no CUDA device: nothing was checked."""


@dataclass
class Row:
    """One line of the table: what was checked or measured, its result, and whether it passed."""

    check: str
    result: str
    ok: bool = True


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table, a failed check marked **FAIL**."""
    lines = ["| check | result | status |", "|---|---|---|"]
    lines += [f"| {r.check} | {r.result} | {'ok' if r.ok else '**FAIL**'} |" for r in rows]
    return "\n".join(lines)


def _run(command: Sequence[str], *, timeout: float) -> tuple[bool, str]:
    """Run a command from the repository root; (exit status 0, its last output line)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    lines = (done.stdout + done.stderr).strip().splitlines() or [""]
    return done.returncode == 0, lines[-1][:160].replace("|", "/")


def cuda_tests() -> Row:
    ok, last = _run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "tests"], timeout=900)
    return Row("CUDA-marked tests (`pytest -m cuda`)", last, ok)


# Tiny runs: 64 px, a few hundred samples, two epochs.
TINY = [
    "data.image_size=64",
    "model.backbone=resnet18",
    "data.num_train=256",
    "data.num_val=64",
    "data.num_workers=2",
    "optim.batch_size=64",
    "optim.epochs=2",
    "device=cuda",
]


def torchrun_smoke(stage: str, extra: Sequence[str], folder: Path) -> Row:
    """A one-process torchrun training of ``stage``: exit status 0 and a last checkpoint of 2
    epochs."""
    out = folder / f"torchrun_{stage}"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
        "-m", "hopose.cli", "train", f"synthetic/{stage}",
        "--out", str(out), *(f"--set={item}" for item in [*TINY, *extra]),
    ]  # fmt: skip
    ok, last = _run(command, timeout=900)
    if ok:
        checkpoint = load_checkpoint(out / LAST_CHECKPOINT)
        ok = checkpoint["epoch"] == 2
        last = f"2 epochs, {LAST_CHECKPOINT} after epoch {checkpoint['epoch']}; {last}"
    return Row(f"torchrun, 1 GPU, DDP over NCCL: {stage} stage {' '.join(extra)}", last, ok)


def _random_batch(batch: int, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A training batch of random images and plausible poses, already on ``device``."""
    generator = torch.Generator().manual_seed(0)
    hand = torch.randn(batch, 21, 3, generator=generator) * 30 + torch.tensor([0.0, 0.0, 400.0])
    box = hand[:, :8] + torch.randn(batch, 8, 3, generator=generator) * 20
    K = torch.tensor([[size * 1.2, 0.0, size / 2], [0.0, size * 1.2, size / 2], [0.0, 0.0, 1.0]])
    K = K.expand(batch, 3, 3)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator)
    # The synthetic records' maps, for configs that train the segmentation classifier.
    classes = torch.randint(
        0, NUM_SEGMENTATION_CLASSES, (batch, size, size), dtype=torch.uint8, generator=generator
    )
    values = {
        "image": images,
        "K": K.contiguous(),
        "orig_K": K.contiguous(),  # the network sees the original image (Eq. 7's 2D units)
        "hand_3d": hand,
        "obj_3d": box,
        "hand_2d": project_points(hand, K),
        "obj_2d": project_points(box, K),
        "segmentation": classes,
    }
    return {key: value.to(device) for key, value in values.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(
    step: Callable[[], object],
    *,
    batch: int,
    steps: int,
    device: torch.device,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Training images/s of ``step`` (one batch per call) after two warm-up calls."""
    for _ in range(2):
        step()
    _sync(device)
    start = clock()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (clock() - start)


def bare_resnet_step(batch: dict, amp: bool, backbone: str) -> Callable[[], object]:
    """A torchvision ResNet training step (cross-entropy on random labels, the stages' fused
    Adam) in the memory layout and precision the image stages train in."""
    device = batch["image"].device
    layout = train_module.memory_format(STAGES["encoder"])
    net = getattr(torchvision.models, backbone)(weights=None).to(device, memory_format=layout)
    optimizer = train_module.make_optimizer(net.parameters(), OptimConfig())
    scaler = train_module.grad_scaler(device, amp)
    labels = torch.randint(0, 1000, (len(batch["image"]),), device=device)
    images = batch["image"].float().div(255).contiguous(memory_format=layout)

    def step() -> None:
        with train_module.autocast(device, amp):
            loss = torch.nn.functional.cross_entropy(net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def stage_step(stage: str, batch: dict, amp: bool, backbone: str) -> Callable[[], object]:
    """One training step of an image stage with ``backbone`` (:func:`config_step`)."""
    size = batch["image"].shape[-1]
    cfg = config_from_dict(
        {
            "stage": stage,
            "data": {"image_size": size, "num_train": len(batch["image"]), "num_val": 1},
            "model": {"backbone": backbone},
            "optim": {"amp": amp},
            "loss": {"physical": stage == "end2end"},
        }
    )
    return config_step(cfg, batch)


def config_step(cfg: TrainConfig, batch: dict, epoch: int | None = None) -> Callable[[], object]:
    """One training step of ``cfg``'s stage on ``batch`` (:func:`config_epoch` of one batch)."""
    return config_epoch(cfg, [batch], batch["image"].device, epoch)


def stage_on(cfg: TrainConfig, device: torch.device) -> tuple[nn.Module, tuple[str, ...]]:
    """The module ``cfg``'s stage trains, a new network's, placed on ``device`` as ``train``
    places it, and the parts its lifter predicts."""
    stage = STAGES[cfg.stage]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = build_model(cfg.model)
    model.to(device, memory_format=train_module.memory_format(stage))
    return train_module.stage_module(model, stage), tuple(model.lifter.parts)


def config_epoch(
    cfg: TrainConfig, batches: Iterable[dict], device: torch.device, epoch: int | None = None
) -> Callable[[], object]:
    """One training epoch of ``cfg``'s stage over ``batches`` through ``train_one_epoch``, the
    network placed on ``device`` as ``train`` places it, as in epoch ``epoch`` (from 0); None:
    the first epoch at ``data.image_size``, after any progressive-resizing epochs
    (``optim.progressive_epochs``), whose steps would read smaller images."""
    epoch = cfg.optim.progressive_epochs if epoch is None else epoch
    module, parts = stage_on(cfg, device)
    optimizer = train_module.make_optimizer(module.parameters(), cfg.optim)
    scaler = train_module.grad_scaler(device, cfg.optim.amp)

    def run() -> None:
        train_module.train_one_epoch(
            module, batches, optimizer, scaler, cfg,
            parts=parts, device=device, epoch=epoch, show_progress=False,
        )  # fmt: skip

    return run


def _rate(value: float) -> str:
    """Three significant digits at least: 1,234 or 12.3 or 0.123."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def throughput_rows(
    *,
    batch: int,
    size: int,
    steps: int,
    backbone: str,
    device: torch.device,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Row]:
    """Training images/s of the bare ResNet and the two image stages, in float32 and in mixed
    precision (fp16 on CUDA, bf16 on the CPU), channels-last, on batches already on ``device``
    (on the CPU, ``clock=time.process_time`` counts only this process's work).

    On a CPU without bf16 instructions ``optim.amp`` trains in float32
    (:func:`hopose.train.amp_active`): the mixed-precision rows would time float32 again under
    another name, so one row says so instead."""
    data = _random_batch(batch, size, device)
    rows = []
    for amp in (False, True):
        if amp and not train_module.amp_active(device, True):
            reason = "not run: this CPU has no bf16 instructions, optim.amp trains in float32"
            rows.append(Row("training steps, bf16 autocast", reason))
            continue
        precision = ("fp16" if device.type == "cuda" else "bf16") + " autocast" if amp else "fp32"
        bare_step = bare_resnet_step(data, amp, backbone)
        bare = images_per_second(bare_step, batch=batch, steps=steps, device=device, clock=clock)
        rows.append(Row(f"bare {backbone} training step, {precision}", f"{_rate(bare)} img/s"))
        for stage in ("encoder", "end2end"):
            step = stage_step(stage, data, amp, backbone)
            rate = images_per_second(step, batch=batch, steps=steps, device=device, clock=clock)
            result = f"{_rate(rate)} img/s, {rate / bare:.3g}x the bare {backbone}"
            rows.append(Row(f"{stage} stage step, {precision}", result))
    return rows


def lifter_row(args: argparse.Namespace) -> Row:
    """The lifter stage's epoch against its floor at the paper's sizes, on the GPU."""
    cfg = lifter_config(epochs=args.lifter_epochs, device="cuda", threads=None)
    seconds = measure(cfg, rounds=1)
    floor, stage = seconds["floor"][0], seconds["stage"][0]
    epochs = cfg.optim.epochs
    return Row(
        f"lifter stage epoch vs floor (11,019 poses, batch 256, {epochs} epochs)",
        f"{1000 * stage / epochs:.1f} ms vs {1000 * floor / epochs:.1f} ms: "
        f"**{stage / floor:.2f}x**",
    )


def in_memory_row(num: int = 2000) -> Row:
    """The demo's encoder epoch over ``num`` crops held in memory on the GPU, batched by index,
    against the same fed by a DataLoader (``bench_in_memory.py``)."""
    from bench_in_memory import epoch_seconds  # which imports this module

    seconds = epoch_seconds(num=num, rounds=3, device=torch.device("cuda"))
    split, loader = (
        statistics.median(seconds["TensorSplit"]),
        statistics.median(seconds["DataLoader"]),
    )
    ratio = paired_ratio(seconds["TensorSplit"], seconds["DataLoader"])
    return Row(
        f"synthetic/encoder epoch, {num:,} crops in memory: TensorSplit vs DataLoader",
        f"{split:.2f} s vs {loader:.2f} s: **{ratio:.2f}x**",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batch", type=at_least(1), default=256)
    parser.add_argument("--size", type=at_least(32), default=224)
    parser.add_argument(
        "--steps", type=at_least(1), default=20, help="timed steps per throughput case"
    )
    parser.add_argument("--lifter-epochs", type=at_least(1), default=20)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing checked")
        return NO_CUDA
    print(
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"batch {args.batch}, {args.size} px\n",
        flush=True,
    )
    rows = [cuda_tests()]
    with tempfile.TemporaryDirectory() as folder:
        rows.append(torchrun_smoke("end2end", ["optim.amp=true"], Path(folder)))
        rows.append(torchrun_smoke("lifter", [], Path(folder)))
    rows += throughput_rows(
        batch=args.batch, size=args.size, steps=args.steps, backbone="resnet50",
        device=torch.device("cuda"),
    )  # fmt: skip
    rows.append(lifter_row(args))
    rows.append(in_memory_row())
    print(format_table(rows))
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
