"""Training: one plain loop for the three stages of SPEC §4, on one process or under torchrun.

Stages (``TrainConfig.stage``), each trained from its own config file:

- ``lifter``: the lifter alone, fed ground-truth 2D keypoints, supervised on 3D (paper §4.3:
  "we use the ground-truth 2D coordinates as the input"). Its output is normalised with the
  training split's 3D mean and standard deviation, set here before training.
- ``encoder``: the image encoder alone, supervised on 2D.
- ``end2end``: the whole network from images, all terms of Eq. 7, with the physical loss when
  ``loss.physical`` is on.

Every checkpoint holds the whole network, so a stage starts from the previous one through
``init_from`` and pre-training → fine-tuning is a config chain. A run directory holds
``last.pt`` (every epoch, for ``--resume``), ``best.pt`` (lowest validation error),
``config.yaml``, ``metrics.csv`` and TensorBoard logs under ``tb/``. Checkpoints are plain dicts
``{model, optimizer, scheduler, scaler, epoch, config, best, best_epoch}`` written atomically.

The validation error that picks ``best.pt`` is the mean 3D error in mm (averaged over the parts
the lifter predicts) for ``lifter`` and ``end2end``, and the mean 2D error in pixels for
``encoder``.

Distributed: under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set) the trained module
is wrapped in DistributedDataParallel (NCCL on GPU, gloo on CPU), each process sees its shard of
the training split through a DistributedSampler, ``optim.batch_size`` is per process, and only
rank 0 validates and writes.
"""

from __future__ import annotations

import csv
import math
import os
import random
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from hopose.config import DataConfig, TrainConfig, config_from_dict, config_to_dict
from hopose.data import build_dataset, collate_samples
from hopose.losses import compute_losses, total_loss
from hopose.models import HoposeNet, build_model
from hopose.models.lifter import output_stats
from hopose.skeleton import PART_NODES


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False
    """Whether :func:`setup_runtime` created the process group (and so must destroy it)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


@dataclass
class TrainResult:
    """What a run leaves: its trained network (this process's copy) and where the best is."""

    model: HoposeNet
    best: float
    """Lowest validation error (rank 0; inf on other ranks)."""
    best_epoch: int
    """Epoch (1-based) of the best validation error."""
    checkpoint: str
    """Path of ``best.pt``."""
    rank: int = 0
    """This process's rank (0 when not distributed): only rank 0 validates and writes."""


def setup_runtime(device: str) -> Runtime:
    """Join the torchrun process group when launched by torchrun, and choose the device once."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    owns_group = world_size > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Runtime(rank=rank, world_size=world_size, device=chosen, owns_group=owns_group)


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators (weights, dropout); data has its own seeds."""
    random.seed(seed)
    torch.manual_seed(seed)


class RecordList(Dataset):
    """A dataset held in memory as a list of records."""

    def __init__(self, records: list[Mapping[str, Any]]):
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Mapping[str, Any]:
        return self.records[index]


def _identity(items: list) -> list:
    return items


def materialize(dataset: Dataset, *, num_workers: int = 0) -> RecordList:
    """Read (or render) every record of ``dataset`` once, in parallel workers.

    Used for the synthetic images, whose rendering is slower than training on them, and for the
    pose-only records of the lifter stage, read once instead of every epoch.
    """
    loader = DataLoader(dataset, batch_size=64, num_workers=num_workers, collate_fn=_identity)
    return RecordList([record for chunk in loader for record in chunk])


def build_split(data: DataConfig, split: str, *, with_images: bool) -> Dataset:
    """The dataset of ``split`` as the config describes it (kept in memory when asked)."""
    num = {data.train_split: data.num_train, data.val_split: data.num_val}.get(split, data.num_test)
    dataset = build_dataset(
        data.name,
        split,
        root=data.root,
        cache=data.cache,
        image_size=data.image_size,
        crop=data.crop,
        num_samples=num,
        seed=data.seed,
        with_images=with_images,
        **data.options,
    )
    if data.in_memory or not with_images:
        return materialize(dataset, num_workers=data.num_workers)
    return dataset


def training_poses(dataset: Dataset) -> torch.Tensor:
    """All 3D poses of a split as (M, 29, 3) mm, hand joints then box corners."""
    records = (dataset[i] for i in range(len(dataset)))
    poses = [np.concatenate([record["hand_3d"], record["obj_3d"]]) for record in records]
    return torch.as_tensor(np.stack(poses), dtype=torch.float32)


def stage_module(model: HoposeNet, stage: str) -> nn.Module:
    """The part of the network a stage trains; the rest is left untouched."""
    return {"lifter": model.lifter, "encoder": model.encoder, "end2end": model}[stage]


def stage_input(batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
    """What the trained module reads: ground-truth 2D (B, 29, 2) for the lifter, else images."""
    if stage == "lifter":
        return torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1)
    return batch["image"]


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


def autocast(device: torch.device, enabled: bool):
    """Mixed precision context: float16 on GPU, bfloat16 on CPU (float16 is slow there)."""
    if not enabled:
        return nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def validation_error(
    out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], parts
) -> torch.Tensor:
    """Per-sample error (B,) that picks the best checkpoint: mean 3D error in mm over ``parts``
    when the output has 3D, else mean 2D error in pixels over all 29 nodes."""
    if "kp3d" in out:
        gt = {"hand": batch["hand_3d"], "object": batch["obj_3d"]}
        errors = [
            (out["kp3d"][:, PART_NODES[p]].float() - gt[p]).norm(dim=-1).mean(dim=-1) for p in parts
        ]
        return torch.stack(errors).mean(dim=0)
    gt_2d = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1)
    return (out["kp2d"].float() - gt_2d).norm(dim=-1).mean(dim=-1)


def forward_losses(
    module: nn.Module,
    batch: Mapping[str, Any],
    cfg: TrainConfig,
    *,
    parts: tuple[str, ...],
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """Run the stage's module on a batch; returns its outputs (float32), loss terms, the batch
    on ``device``."""
    batch = to_device(batch, device)
    with autocast(device, cfg.optim.amp):
        out = module(stage_input(batch, cfg.stage))
    out = {k: v.float() for k, v in out.items()}
    return (
        out,
        compute_losses(
            out,
            batch,
            parts=parts,
            physical=cfg.loss.physical,
            original_pixels=cfg.loss.l2d_pixels == "original",
        ),
        batch,
    )


def _accumulate(sums: dict[str, float], terms: Mapping[str, torch.Tensor], size: int) -> None:
    """Add batch means weighted by the batch size, for epoch means."""
    for name, value in terms.items():
        sums[name] = sums.get(name, 0.0) + float(value.detach()) * size


def train_one_epoch(
    module: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    cfg: TrainConfig,
    *,
    parts: tuple[str, ...],
    device: torch.device,
    epoch: int,
    show_progress: bool,
) -> dict[str, float]:
    """One pass over the training split; returns the mean of each loss term and the total."""
    module.train()
    sums: dict[str, float] = {}
    count = 0
    progress = tqdm(
        loader, desc=f"{cfg.stage} epoch {epoch + 1}", disable=not show_progress, leave=False
    )
    for batch in progress:
        _, terms, batch = forward_losses(module, batch, cfg, parts=parts, device=device)
        loss = total_loss(terms, cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.optim.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(module.parameters(), cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        count += len(batch["hand_3d"])
        _accumulate(sums, {**terms, "total": loss}, len(batch["hand_3d"]))
        progress.set_postfix(loss=f"{float(loss.detach()):.4g}")
    return {name: value / max(count, 1) for name, value in sums.items()}


def evaluate(
    module: nn.Module,
    loader: DataLoader,
    cfg: TrainConfig,
    *,
    parts: tuple[str, ...],
    device: torch.device,
) -> dict[str, float]:
    """Mean loss terms and validation ``error`` (see :func:`validation_error`) over a split."""
    module.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.inference_mode():
        for batch in loader:
            out, terms, batch = forward_losses(module, batch, cfg, parts=parts, device=device)
            terms["error"] = validation_error(out, batch, parts).mean()
            count += len(batch["hand_3d"])
            _accumulate(sums, terms, len(batch["hand_3d"]))
    return {name: value / max(count, 1) for name, value in sums.items()}


def save_checkpoint(state: Mapping[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically: a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(state), tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model(path: str | Path) -> tuple[HoposeNet, TrainConfig]:
    """The network saved in a checkpoint, on the CPU, with the config it was trained with."""
    checkpoint = load_checkpoint(path)
    cfg = config_from_dict(checkpoint["config"])
    model = build_model(cfg.model)
    model.load_state_dict(checkpoint["model"])
    return model, cfg


def _loader(dataset: Dataset, cfg: TrainConfig, runtime: Runtime, *, train: bool) -> DataLoader:
    sampler = None
    if train:
        if runtime.distributed:
            sampler = DistributedSampler(
                dataset, num_replicas=runtime.world_size, rank=runtime.rank, seed=cfg.seed
            )
        else:
            sampler = RandomSampler(dataset, generator=torch.Generator())
    workers = 0 if isinstance(dataset, RecordList) else cfg.data.num_workers
    return DataLoader(
        dataset,
        batch_size=cfg.optim.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_samples,
        drop_last=False,
    )


def _set_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make the shuffle of each epoch a function of (seed, epoch), so a resumed run repeats it."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    elif isinstance(sampler, RandomSampler):
        sampler.generator.manual_seed(seed + epoch)


def _append_csv(path: Path, row: Mapping[str, float]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False) -> TrainResult:
    """Train one stage; write checkpoints and logs under ``out_dir``.

    Args:
        cfg: the stage's config.
        out_dir: run directory (created).
        resume: continue from ``out_dir/last.pt`` (its epoch, optimiser, scheduler and best
            score) instead of starting over; a no-op when there is no ``last.pt`` yet.

    Returns:
        The trained network and its best validation error.

    ``cfg.num_threads``, when set, holds torch's CPU threads for the run and is restored after.
    """
    threads = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(cfg, out_dir, resume=resume)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool) -> TrainResult:
    out_dir = Path(out_dir)
    runtime = setup_runtime(cfg.device)
    if runtime.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))

    with_images = cfg.stage != "lifter"
    train_set = build_split(cfg.data, cfg.data.train_split, with_images=with_images)
    val_set = build_split(cfg.data, cfg.data.val_split, with_images=with_images)

    seed_everything(cfg.seed)  # here, so the initial weights depend on the seed alone
    model = build_model(cfg.model)
    if cfg.init_from:
        model.load_state_dict(load_checkpoint(cfg.init_from)["model"])
    if cfg.stage == "lifter":
        # The lifter predicts normalised coordinates; this split's statistics set the scale.
        model.lifter.set_output_stats(*output_stats(training_poses(train_set)))
    model.to(runtime.device)
    parts = tuple(model.lifter.parts)

    module = stage_module(model, cfg.stage)
    optimizer = torch.optim.Adam(
        module.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=cfg.optim.step_size, gamma=cfg.optim.gamma
    )
    scaler = torch.amp.GradScaler(
        runtime.device.type, enabled=cfg.optim.amp and runtime.device.type == "cuda"
    )

    start_epoch, best, best_epoch = 0, math.inf, -1
    last_path = out_dir / "last.pt"
    if resume and last_path.is_file():
        checkpoint = load_checkpoint(last_path)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        start_epoch, best, best_epoch = (
            checkpoint["epoch"],
            checkpoint["best"],
            checkpoint["best_epoch"],
        )
    if runtime.is_main and start_epoch == 0:
        # A fresh run in a used folder starts its own table; a resumed one appends to it.
        (out_dir / "metrics.csv").unlink(missing_ok=True)

    trained = module
    if runtime.distributed:
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        trained = nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    train_loader = _loader(train_set, cfg, runtime, train=True)
    val_loader = _loader(val_set, cfg, runtime, train=False)
    writer = None
    if runtime.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"))

    for epoch in range(start_epoch, cfg.optim.epochs):
        _set_epoch(train_loader, cfg.seed, epoch)
        torch.manual_seed(cfg.seed + epoch)  # dropout masks, reproducible after a resume
        lr = optimizer.param_groups[0]["lr"]
        train_terms = train_one_epoch(
            trained, train_loader, optimizer, scaler, cfg,
            parts=parts, device=runtime.device, epoch=epoch, show_progress=runtime.is_main,
        )  # fmt: skip
        scheduler.step()
        if runtime.is_main:
            val_terms = evaluate(module, val_loader, cfg, parts=parts, device=runtime.device)
            if val_terms["error"] < best:
                best, best_epoch = val_terms["error"], epoch
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch + 1,
                "config": config_to_dict(cfg),
                "best": best,
                "best_epoch": best_epoch,
            }
            save_checkpoint(state, last_path)
            if best_epoch == epoch:
                save_checkpoint(state, out_dir / "best.pt")
            row = {"epoch": epoch + 1, "lr": lr}
            row |= {f"train/{k}": v for k, v in train_terms.items()}
            row |= {f"val/{k}": v for k, v in val_terms.items()}
            for key, value in row.items():
                if key != "epoch":
                    writer.add_scalar(key, value, epoch + 1)
            _append_csv(out_dir / "metrics.csv", row)
            tqdm.write(
                f"[{cfg.stage}] epoch {epoch + 1}/{cfg.optim.epochs} lr {lr:.2e} "
                f"train loss {train_terms['total']:.4g} val error {val_terms['error']:.3f} "
                f"(best {best:.3f} @ {best_epoch + 1})"
            )
        if runtime.distributed:
            dist.barrier()

    if writer is not None:
        writer.close()
    if runtime.distributed and runtime.owns_group:
        dist.destroy_process_group()
    return TrainResult(
        model=model,
        best=best,
        best_epoch=best_epoch + 1,
        checkpoint=str(out_dir / "best.pt"),
        rank=runtime.rank,
    )
