"""Training: one plain loop for the three stages of docs/conventions.md §4, on one process or under
torchrun.

Stages (``TrainConfig.stage``), each trained from its own config file:

- ``lifter``: the lifter alone, fed ground-truth 2D keypoints and each frame's K, supervised on
  3D (paper §4.3: "we use the ground-truth 2D coordinates as the input"). Its input rays and its
  output are normalised with the training split's ray and 3D statistics, set here before
  training when the lifter starts afresh (one trained in ``init_from`` keeps its own).
- ``encoder``: the image encoder alone, supervised on 2D.
- ``end2end``: the whole network from images, all terms of Eq. 7, with the physical loss when
  ``loss.physical`` is on.

A checkpoint (:mod:`hopose.checkpoint`) holds the whole network and records which parts hold
trained weights; a stage starts from the previous one through ``init_from``, which copies only
those parts, so pre-training → fine-tuning is a config chain. A run directory holds ``last.pt``
(for ``--resume``), ``best.pt`` (the weights of the lowest validation error, without the
optimiser's state; without a validation split, below, the last epoch's), ``config.yaml``,
``metrics.csv``, TensorBoard logs under ``tb/`` and ``train.lock``. Every epoch prints one line
and logs its training terms and time to TensorBoard. Validation, the metrics rows and ``best.pt``
come every ``optim.val_every`` epochs and after the last epoch; ``last.pt`` with them and, between
them, after the first epoch that ends ``optim.checkpoint_minutes`` after its last write, so that a
kill loses little more than the epoch it interrupts. Such a ``last.pt`` keeps its epoch's metrics
row and training time: a resume that makes that epoch the last (``optim.epochs`` lowered to it)
validates it and writes the row, ``last.pt`` and ``best.pt`` without training (nor building the
training split), as the run would have ended without the stop. A resume purges from TensorBoard
the scalars of the epochs it redoes and, for a pending epoch, a validation that a killed resume
logged for it (the epoch's training scalars go with it and are written again from ``last.pt``):
the logs come out as the uninterrupted run's. No checkpoint is written of weights or optimiser
state holding NaN or an infinity (a step with a finite loss may have a NaN gradient): the run
stops and the last one is kept.

Run folders (one training at a time, ``--resume``, the order of a validated epoch's writes)
follow the rules of :mod:`hopose.run_folder`.

The validation error that picks ``best.pt`` is the mean 3D error in mm (averaged over the parts
the lifter predicts) for ``lifter`` and ``end2end``, and the mean 2D error in pixels for
``encoder``.

Without a validation split (``data.val_split: null``, for HO-3D and FPHA's action protocol, which
have no labelled one) nothing is validated. The epochs that would be (every ``optim.val_every``
and the last) still write their metrics rows, with the training terms and no ``val/`` column,
then ``last.pt`` and ``best.pt`` with the same weights: at the end the last epoch's, bit for bit
``last.pt``'s network, so the next stage's ``init_from: .../best.pt`` reads it as after a
validated run. Its ``best`` stays ``inf`` (no error was measured) and its ``best_epoch`` is its
own epoch.

Speed: a split held in memory (the lifter stage's pose-only records, an image stage's with
``data.in_memory``) is stacked once into tensors on the training device
(:class:`~hopose.data.tensor_split.TensorSplit`) and batched by index, so an epoch is its
optimisation steps and little else; other image splits stream through DataLoader workers that
persist across epochs, into pinned memory copied to the GPU asynchronously. Loss sums stay on
the device within an epoch; each step reads only whether its loss is finite.

Distributed: under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set; also with one
process) the trained module is wrapped in DistributedDataParallel (NCCL on GPU, gloo on CPU),
each process sees its shard of the training split (a DistributedSampler, or the TensorSplit's
shard), ``optim.batch_size`` is per process. Every process validates its own shard of the
validation split (every ``world_size``-th sample, none repeated) with rank 0's BatchNorm statistics,
the sums added over the processes, and rank 0 alone writes. The checkpoints record the number of
processes, and ``--resume`` trains on only with as many.
"""

from __future__ import annotations

import functools
import math
import os
import random
import time
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from hopose.checkpoint import (
    PENDING_ROW,
    PENDING_SECONDS,
    first_non_finite,
    holds_best,
    load_checkpoint,
    load_trained_parts,
    load_training_state,
    load_weights,
    optimiser_tensors,
    progress_checkpoint,
    progress_of,
    restore_training_state,
    save_checkpoint,
    training_state,
    untrained_network,
)
from hopose.config import (
    TRAIN_DEVICES,
    ConfigError,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    check_device,
    config_to_dict,
    config_to_yaml,
    load_config,
    resolve_device,
)
from hopose.data import collate_samples, uncapped
from hopose.data.augment import augment_batch
from hopose.data.splits import RecordList, SplitCache, build_split, training_poses
from hopose.data.tensor_split import TensorSplit, epoch_stream, shard_size
from hopose.data.transforms import FrameDataset
from hopose.data.workers import ExitWithParent
from hopose.files import output_folder, write_text
from hopose.losses import configured_losses, total_loss
from hopose.metrics import mean_distance
from hopose.models import HoposeNet, build_model
from hopose.models.encoder import check_backbone_weights, random_backbone_expected
from hopose.run_folder import (
    BEST_CHECKPOINT,
    CONFIG_FILE,
    LAST_CHECKPOINT,
    METRICS_CSV,
    TENSORBOARD_DIR,
    RunError,
    append_csv,
    check_processes,
    check_resumable,
    check_run_folder,
    drop_rows_after,
    killed_before_checkpoint,
    run_lock,
)
from hopose.skeleton import PART_SLICES
from hopose.stages import STAGES, Stage

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

PROGRESS_EVERY = 20
"""Steps between updates of the progress bar's loss."""
SPLIT_MEMORY_SHARE = 0.25
"""The share of a GPU's free memory one split held in memory may take there, measured when it is
stacked (the rest: the other split, the network, its activations and the optimiser's state)."""


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False
    """Whether :func:`setup_runtime` created the process group (and so must destroy it)."""
    distributed: bool = False
    """Launched by torchrun: in a process group, the trained module wrapped in DDP (even alone,
    so that a one-GPU torchrun run goes through DDP and NCCL as a multi-GPU one does)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainResult:
    """What a run leaves: its trained network (this process's copy) and where the best is."""

    model: HoposeNet
    best: float
    """Lowest validation error, the same on every rank. Inf without a validation split."""
    best_epoch: int
    """Epoch (1-based) of the best validation error; without a validation split, that of
    ``best.pt``'s weights (the last epoch)."""
    checkpoint: str
    """Path of ``best.pt``."""
    rank: int = 0
    """This process's rank (0 when not distributed): only rank 0 writes."""


class Best(NamedTuple):
    """A run's lowest validation error so far and its epoch, counted from 0 as its checkpoints
    hold it (-1: never validated)."""

    error: float
    epoch: int


class Optimisation(NamedTuple):
    """What a run optimises with, whose states ``last.pt`` holds (:func:`training_state`)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler


def setup_runtime(device: str) -> Runtime:
    """Join the torchrun process group when launched by torchrun, and choose the device once.

    Raises:
        ConfigError: ``device`` is "cuda" on a machine without a CUDA device.
    """
    check_device(device, "device", TRAIN_DEVICES)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(device) == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    launched = "WORLD_SIZE" in os.environ  # torchrun sets it, also for one process
    owns_group = launched and not dist.is_initialized()
    if owns_group:
        # Bound to its GPU: NCCL's barrier would otherwise guess the device (and warn).
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo", device_id=chosen if use_cuda else None
        )
    return Runtime(
        rank=rank,
        world_size=world_size,
        device=chosen,
        owns_group=owns_group,
        distributed=launched,
    )


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators (weights, dropout); data has its own seeds."""
    random.seed(seed)
    torch.manual_seed(seed)


def stage_module(model: HoposeNet, stage: Stage) -> nn.Module:
    """The part of the network a stage trains (the whole network for both parts); the rest is
    left untouched."""
    if len(stage.trains) == 1:
        (part,) = stage.trains
        return getattr(model, part)
    return model


def stage_input(batch: Mapping[str, torch.Tensor], stage: Stage) -> tuple[torch.Tensor, ...]:
    """The arguments of the trained module: ground-truth 2D (B, 29, 2) and K (B, 3, 3) for the
    lifter, the images for the encoder, the images and K for the whole network; images in the
    channels-last layout of :func:`memory_format`."""
    if not stage.reads_images:
        return torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1), batch["K"]
    image = batch["image"].contiguous(memory_format=memory_format(stage))
    if "lifter" not in stage.trains:
        return (image,)
    return image, batch["K"]


def memory_format(stage: Stage) -> torch.memory_format:
    """Channels-last (NHWC) for the image stages, whose convolutions run faster on it: a ResNet
    training step in bf16 is 1.17x faster on this CPU, as fast in fp32 (BENCHMARKS.md), and
    NHWC is the layout of the GPUs' tensor-core convolutions."""
    return torch.channels_last if stage.reads_images else torch.preserve_format


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """``batch`` with its tensors on ``device``, shapes and dtypes kept (e.g. ``image``
    (B, 3, H, W) uint8, ``K`` (B, 3, 3), ``hand_2d`` (B, 21, 2), ``obj_3d`` (B, 8, 3) float32:
    :func:`hopose.data.sample.collate_samples`), and its other values, the string lists, as
    they are. The copies do not block: a batch in pinned memory reaches the GPU while the
    previous step runs."""
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


def make_optimizer(parameters: Iterable[nn.Parameter], optim: OptimConfig) -> torch.optim.Adam:
    """Adam with ``optim``'s learning rate and weight decay (paper §4.3), fused.

    The fused kernel updates every parameter in one pass. On the CPU it is what keeps Adam from
    being a quarter of the demo's encoder step: 13.5 ms against 64.6 ms for torch's default
    per-tensor loop on 2 threads (BENCHMARKS.md, "Training: the optimiser"); on a GPU it is
    torch's fastest Adam too. It computes the same update (docs/training.md, "Speed"), and its
    state dict holds the same state, so a ``last.pt`` of torch's default Adam resumes into it,
    fused (:func:`restore_training_state`).
    """
    return torch.optim.Adam(parameters, lr=optim.lr, weight_decay=optim.weight_decay, fused=True)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX), where a bf16 ResNet
    step runs 1.5-1.9x faster than float32; without them it runs 10-12x slower (BENCHMARKS.md,
    "Training: precision and layout on this CPU")."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def amp_active(device: torch.device, requested: bool) -> bool:
    """``optim.amp`` as it runs: always on a GPU, on a CPU only with bf16 instructions."""
    return requested and (device.type != "cpu" or cpu_has_bf16())


def amp_dtype(device: torch.device, requested: bool) -> torch.dtype | None:
    """The type ``optim.amp`` computes in on ``device``: float16 on a GPU, bfloat16 on a CPU with
    bf16 instructions (float16 is slow on CPUs, and bf16 without those instructions too); None
    where float32 is kept (:func:`amp_active`)."""
    if not amp_active(device, requested):
        return None
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def grad_scaler(device: torch.device, requested: bool) -> torch.amp.GradScaler:
    """The gradient scaler of ``optim.amp`` on ``device``: on where it computes in float16,
    whose narrow range needs the loss scaled; off for bfloat16, whose range is float32's."""
    enabled = amp_dtype(device, requested) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


def autocast(device: torch.device, enabled: bool):
    """Mixed precision context in :func:`amp_dtype`'s type; none where that is float32."""
    dtype = amp_dtype(device, enabled)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def validation_error(
    out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], parts
) -> torch.Tensor:
    """Per-sample error that picks the best checkpoint: mean 3D error in mm over ``parts`` when
    the output has 3D, else mean 2D error in pixels over all 29 nodes.

    Args:
        out: the module's outputs: ``kp3d`` (B, 29, 3) mm, or without it ``kp2d`` (B, 29, 2)
            pixels of the network image (the encoder stage).
        batch: the ground truth on ``out``'s device: ``hand_3d`` (B, 21, 3) and ``obj_3d``
            (B, 8, 3) mm, ``hand_2d`` (B, 21, 2) and ``obj_2d`` (B, 8, 2) pixels.
        parts: the parts the lifter predicts, "hand" and/or "object"; the error of each is the
            mean over its nodes, then the parts are averaged.

    Returns:
        (B,) float32 errors.
    """
    if "kp3d" in out:
        gt = {"hand": batch["hand_3d"], "object": batch["obj_3d"]}
        errors = [mean_distance(out["kp3d"][:, PART_SLICES[p]].float(), gt[p]) for p in parts]
        return torch.stack(errors).mean(dim=0)
    gt_2d = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1)
    return mean_distance(out["kp2d"].float(), gt_2d)


def forward_losses(
    module: nn.Module,
    batch: Mapping[str, Any],
    cfg: TrainConfig,
    *,
    parts: tuple[str, ...],
    device: torch.device,
    mixed_precision: bool,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """Run the stage's module on a batch, under autocast if ``mixed_precision``.

    Args:
        module: the trained module (:func:`stage_module`, possibly wrapped in DDP).
        batch: a collated batch (:func:`hopose.data.sample.collate_samples`): ``image``
            (B, 3, H, W) uint8 for the image stages, ``K`` and ``orig_K`` (B, 3, 3),
            ``hand_2d`` (B, 21, 2), ``obj_2d`` (B, 8, 2), ``hand_3d`` (B, 21, 3), ``obj_3d``
            (B, 8, 3).
        cfg: the run's config (its stage and loss section).
        parts: the parts the lifter predicts, which the 3D terms alone are restricted to (the
            2D terms supervise all 29 nodes the encoder predicts).
        device: where the module lives; the batch is moved there.
        mixed_precision: run the forward pass under :func:`autocast`.

    Returns:
        ``(out, terms, batch)``: the module's outputs in float32 (any of ``kp2d_init``,
        ``kp2d`` (B, 29, 2) pixels, ``kp3d_init``, ``kp3d`` (B, 29, 3) mm, ``heatmaps``
        (B, 29, H/4, W/4), ``segmentation`` (B, 8, H/4, W/4)), the scalar loss terms of
        :func:`hopose.losses.configured_losses`, and the batch on ``device``.
    """
    batch = to_device(batch, device)
    with autocast(device, mixed_precision):
        out = module(*stage_input(batch, STAGES[cfg.stage]))
    out = {k: v.float() for k, v in out.items()}
    return (
        out,
        configured_losses(out, batch, cfg.loss, parts=parts),
        batch,
    )


def _accumulate(
    sums: dict[str, torch.Tensor], terms: Mapping[str, torch.Tensor], size: int
) -> None:
    """Add batch means weighted by the batch size, for epoch means. The sums stay tensors on the
    device: reading a value every step would wait for the GPU at every step."""
    for name, value in terms.items():
        total = value.detach().float() * size
        sums[name] = sums[name] + total if name in sums else total


def _means(sums: Mapping[str, torch.Tensor], count: int) -> dict[str, float]:
    return {name: float(value) / max(count, 1) for name, value in sums.items()}


def _sum_over_ranks(
    sums: Mapping[str, torch.Tensor], count: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], int]:
    """``sums`` and ``count`` added over the processes of the group (one all-reduce): every rank
    then holds the epoch's means over the whole training split, not over its own shard."""
    names = list(sums)  # the same terms in the same order on every rank
    # Every element made on ``device`` before the stack: the count is a Python int, whose
    # tensor would be a CPU one beside CUDA sums, which torch.stack refuses.
    packed = torch.stack(
        [sums[name].double().to(device) for name in names]
        + [torch.tensor(count, dtype=torch.float64, device=device)]
    )
    dist.all_reduce(packed)
    return dict(zip(names, packed[:-1], strict=True)), int(packed[-1])


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
    distributed: bool = False,
) -> dict[str, float]:
    """One pass over the training split; returns the mean of each loss term and the total, over
    every process's samples when ``distributed``."""
    module.train()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    progress = tqdm(
        loader,
        desc=f"{cfg.stage} epoch {epoch + 1}",
        disable=None if show_progress else True,
        leave=False,
    )
    for step, batch in enumerate(progress):
        batch = augment_batch(batch, cfg, epoch=epoch)  # config sections perturb, augment
        _, terms, batch = forward_losses(
            module, batch, cfg, parts=parts, device=device, mixed_precision=cfg.optim.amp
        )
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
        if show_progress and step % PROGRESS_EVERY == 0:
            progress.set_postfix(loss=f"{float(loss.detach()):.4g}")
    if distributed:
        sums, count = _sum_over_ranks(sums, count, device)
    return _means(sums, count)


def evaluate(
    module: nn.Module,
    loader: DataLoader,
    cfg: TrainConfig,
    *,
    parts: tuple[str, ...],
    device: torch.device,
    distributed: bool = False,
) -> dict[str, float]:
    """Mean loss terms and validation ``error`` (see :func:`validation_error`) over a split, in
    float32 even under ``optim.amp``: the error that picks ``best.pt`` is the one ``hopose eval``
    measures. With ``distributed``, ``loader`` is this process's shard and the means are over
    every process's samples."""
    module.eval()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    with torch.inference_mode():
        for batch in loader:
            out, terms, batch = forward_losses(
                module, batch, cfg, parts=parts, device=device, mixed_precision=False
            )
            terms["error"] = validation_error(out, batch, parts).mean()
            count += len(batch["hand_3d"])
            _accumulate(sums, terms, len(batch["hand_3d"]))
    if distributed:
        sums, count = _sum_over_ranks(sums, count, device)
    return _means(sums, count)


def _loader(
    dataset: Dataset, cfg: TrainConfig, runtime: Runtime, *, train: bool
) -> DataLoader | TensorSplit:
    """Batches of a split. One held in memory (pose-only records, or images read with
    ``data.in_memory``) is stacked once into tensors on the training device (:class:`TensorSplit`)
    and batched by index: no collate in the main process at each step, and on a GPU the batch
    and its augmentation stay there; on a GPU it must fit :func:`fits_on_device`. Other datasets,
    and a split held in memory too large for the GPU, go through a DataLoader whose batches are
    pinned for asynchronous copies to the GPU (its workers outliving the epoch). Both draw the
    same order for the same seed and epoch. Under DDP each process reads its shard of either split:
    of the training split padded as a DistributedSampler pads it, of the validation split every
    ``world_size``-th sample from its rank on, none repeated, so that the means over the processes
    are the split's own."""
    world_size = runtime.world_size
    shard = shard_size(len(dataset), world_size)
    # A last training batch of one sample stops BatchNorm in training mode ("Expected more than
    # 1 value per channel") where the ResNet's last map is 1x1 (32-px images): it is dropped.
    drop_last = (
        train
        and STAGES[cfg.stage].reads_images
        and cfg.optim.batch_size > 1
        and shard % cfg.optim.batch_size == 1
    )
    if drop_last and shard == 1:
        raise ValueError(
            f"data.num_train: each of the {world_size} training process(es) gets one "
            "sample, a last batch of one, which is dropped (BatchNorm), so no step would be "
            "taken; give each process at least 2 samples"
        )
    held = isinstance(dataset, RecordList)
    if held and fits_on_device(dataset, runtime.device):
        return TensorSplit(
            dataset.records,
            device=runtime.device,
            batch_size=cfg.optim.batch_size,
            shuffle=train,
            seed=cfg.seed,
            rank=runtime.rank,
            world_size=world_size,
            drop_last=drop_last,
            pad=train,
        )
    sampler = None
    if not train and runtime.distributed:
        sampler = range(runtime.rank, len(dataset), world_size)
    if train:
        if runtime.distributed:
            # The sampler draws epoch e from its seed + e: epoch_stream(cfg.seed, e).
            sampler = DistributedSampler(
                dataset,
                num_replicas=runtime.world_size,
                rank=runtime.rank,
                seed=epoch_stream(cfg.seed, 0),
            )
        else:
            sampler = RandomSampler(dataset, generator=torch.Generator())
    workers = 0 if held else cfg.data.num_workers
    # Each DataLoader iterator draws its workers' base seed from ``generator``; left None, it
    # would draw from torch's global generator, once per epoch without workers and once in all
    # with persistent ones, so data.num_workers would change the epochs' augmentation and
    # dropout. Samples depend on their index alone, so the workers' seeds change nothing else.
    return DataLoader(
        dataset,
        batch_size=cfg.optim.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_samples,
        drop_last=drop_last,
        pin_memory=runtime.device.type == "cuda",
        persistent_workers=workers > 0,
        worker_init_fn=ExitWithParent(),
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def fits_on_device(records: RecordList, device: torch.device) -> bool:
    """Whether a split held in memory is stacked on ``device``: always on the CPU; on a GPU when
    its arrays take at most :data:`SPLIT_MEMORY_SHARE` of the GPU's free memory (not a real
    dataset's full-size images read with ``data.in_memory`` onto a small GPU)."""
    if device.type != "cuda":
        return True
    first = records[0].values()
    nbytes = len(records) * sum(value.nbytes for value in first if isinstance(value, np.ndarray))
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= SPLIT_MEMORY_SHARE * free


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of torch's generators for ``epoch`` (augmentation, perturbation, dropout):
    :func:`~hopose.data.tensor_split.epoch_stream` on rank 0 (a single process's), and another
    stream on each other rank of a DDP run, whose samples would otherwise all get the same draws
    as rank 0's. Those are hashed from ``(seed, epoch, rank)``, which differ for every seed and
    epoch already: the stream number would change the draws of seed 0's other ranks."""
    if rank == 0:
        return epoch_stream(seed, epoch)
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def _set_epoch(loader: DataLoader | TensorSplit, seed: int, epoch: int) -> None:
    """Draw the shuffle of each epoch from ``epoch_stream(seed, epoch)`` and a real dataset's
    jitter from (sample, that stream), so a resumed run repeats them and runs of other seeds
    draw others."""
    if isinstance(loader, TensorSplit):
        loader.set_epoch(epoch)
        return
    stream = epoch_stream(seed, epoch)
    dataset, _ = uncapped(loader.dataset)  # under the first num_train
    if isinstance(dataset, FrameDataset):
        dataset.set_epoch(stream)
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    elif isinstance(sampler, RandomSampler):
        sampler.generator.manual_seed(stream)


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    split_cache: SplitCache | None = None,
) -> TrainResult:
    """Train one stage; write checkpoints and logs under ``out_dir``.

    Args:
        cfg: the stage's config.
        out_dir: run directory (created); it must hold no run
            (:data:`~hopose.run_folder.RUN_FILES`) unless ``resume``, and no other training may
            be writing to it.
        resume: continue from ``out_dir/last.pt`` (its epoch, weights, optimiser, scheduler and
            best score), with the config it was trained with (only
            :data:`~hopose.run_folder.RESUME_MAY_CHANGE` may differ).
        split_cache: splits held in memory (``data.in_memory``, pose-only records) are taken
            from it when an earlier stage read them, and kept in it (:class:`SplitCache`).

    Returns:
        The trained network and its best validation error.

    Raises:
        RunError: the folder is locked or used, ``last.pt`` is missing, of another config, or
            (with epochs left to train) of another number of processes.
        CheckpointError: ``last.pt`` holds no optimisation state to resume (a ``best.pt``
            copied over it), or ``init_from`` is not a readable checkpoint.
        ConfigError: ``cfg.device`` is "cuda" on a machine without a CUDA device.
        ValueError: the training or validation split (when there is one) has no samples, or
            the validation split fewer than the processes.
        FloatingPointError: a training loss, the validation error, or the weights or
            optimiser state a checkpoint would hold are NaN or infinite.

    ``cfg.num_threads``, when set, holds torch's CPU threads for the run and is restored after.
    """
    # First: a refused device leaves torch's threads as they were.
    runtime = setup_runtime(cfg.device)
    threads = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    out_dir = Path(out_dir)
    try:
        if not runtime.is_main:
            return _train(cfg, out_dir, runtime, resume=resume, split_cache=split_cache)
        if resume and not out_dir.is_dir():
            check_run_folder(out_dir, resume=True)  # refused before the folder is made
        output_folder(out_dir)
        with run_lock(out_dir):
            return _train(cfg, out_dir, runtime, resume=resume, split_cache=split_cache)
    finally:
        if runtime.owns_group:
            dist.destroy_process_group()
        torch.set_num_threads(threads)


def _train(
    cfg: TrainConfig,
    out_dir: Path,
    runtime: Runtime,
    *,
    resume: bool,
    split_cache: SplitCache | None,
) -> TrainResult:
    check_run_folder(out_dir, resume=resume)
    synchronised = cfg.optim.sync_batchnorm and runtime.distributed
    if synchronised and runtime.device.type != "cuda":
        raise ConfigError(
            "optim.sync_batchnorm: PyTorch synchronises batch normalisation across processes on "
            "GPUs only, and this run is on the CPU"
        )
    checkpoint = _resumed_checkpoint(cfg, out_dir, runtime) if resume else None
    # Read before the data is built, so that a bad init_from stops the run at once.
    init = load_checkpoint(cfg.init_from) if cfg.init_from and checkpoint is None else None
    if not _replaces_encoder(checkpoint, init):
        _check_backbone_weights(cfg.model)
    if runtime.is_main:
        write_text(out_dir / CONFIG_FILE, config_to_yaml(cfg))
    stage = STAGES[cfg.stage]
    # The metrics row of last.pt's epoch where that epoch was not validated (written between
    # validations), None where its rows were written.
    pending_row = None if checkpoint is None else checkpoint.get(PENDING_ROW)
    start_epoch = 0 if checkpoint is None else checkpoint["epoch"]
    if checkpoint is not None and start_epoch == cfg.optim.epochs and pending_row is None:
        # A finished run (a demo resumed after its training): its network, without the data
        # (thousands of crops to render) that no epoch would read.
        model = _network(cfg, stage, checkpoint, init, train_set=None, out_dir=out_dir)[0]
        model.to(runtime.device, memory_format=memory_format(stage))
        return _result(model, _best_of(checkpoint), out_dir, runtime)
    # A pending epoch made the last is validated, not trained: no training split is built.
    trains = start_epoch < cfg.optim.epochs
    train_set = _read_split(cfg, "train_split", split_cache, stage) if trains else None
    val_set = _read_split(cfg, "val_split", split_cache, stage)
    if val_set is not None and len(val_set) < runtime.world_size:
        raise ValueError(
            f"data.val_split: {len(val_set)} validation sample(s) for {runtime.world_size} "
            "processes, each of which validates its own share; give each at least one"
        )
    model, trained = _network(
        cfg, stage, checkpoint, init, train_set, out_dir=out_dir, split_cache=split_cache
    )
    model.to(runtime.device, memory_format=memory_format(stage))
    parts = tuple(model.lifter.parts)

    module = stage_module(model, stage)
    if synchronised:
        # In place, before the optimiser and DDP: each new layer holds the old one's parameters
        # and statistics under the same names, so the checkpoints are a BatchNorm network's.
        nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if model.encoder.segmentation is not None and cfg.loss.w_segmentation == 0:
        # A layer no loss reaches gets no gradient: the optimiser would skip it, and DDP (which
        # expects every parameter's) would stop at the second step waiting for it.
        model.encoder.segmentation.requires_grad_(False)
    optimisation = _optimisation(module, cfg, runtime, checkpoint)
    best = Best(math.inf, -1) if checkpoint is None else _best_of(checkpoint)

    trained_module = module
    if runtime.distributed:
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        trained_module = nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    train_loader = None if train_set is None else _loader(train_set, cfg, runtime, train=True)
    val_loader = None if val_set is None else _loader(val_set, cfg, runtime, train=False)
    writer = None
    if runtime.is_main:
        from torch.utils.tensorboard import SummaryWriter

        # Rows of epochs after the checkpoint were never claimed by it: they are redone; so are
        # a pending last.pt's own epoch's, its validation's, written by a resume that ended
        # there and was killed before its last.pt. TensorBoard purges a step's every tag (a
        # SessionLog START at purge_step): that epoch's training scalars go too, and are written
        # again from what last.pt kept of them.
        kept = start_epoch - (pending_row is not None)
        drop_rows_after(out_dir / METRICS_CSV, kept)
        writer = SummaryWriter(str(out_dir / TENSORBOARD_DIR), purge_step=kept + 1)
        if pending_row is not None:
            scalars = _epoch_scalars(pending_row, checkpoint.get(PENDING_SECONDS))
            _add_scalars(writer, start_epoch, scalars)

    if start_epoch == cfg.optim.epochs:
        # Only with a pending row (a finished run returned above): last.pt's epoch, trained
        # between validations, is the last one now (optim.epochs lowered to it). It ends as it
        # would have without the stop: validated, its row (the training terms last.pt kept:
        # they cannot be measured again), last.pt and best.pt; nothing is trained.
        val_terms, best = _validate(
            module, val_loader, cfg, best,
            parts=parts, runtime=runtime, epoch=start_epoch - 1, row=pending_row,
            writer=writer, metrics=out_dir / METRICS_CSV,
        )  # fmt: skip
        if runtime.is_main:
            _save_checkpoints(
                model, cfg, optimisation, out_dir,
                trained=trained, epoch=start_epoch, best=best, world_size=runtime.world_size,
            )  # fmt: skip
            train_terms = {"total": pending_row["train/total"]}
            lr = pending_row["lr"]
            tqdm.write(_epoch_line(cfg, start_epoch - 1, lr, train_terms, val_terms, best, None))
        if runtime.distributed:
            dist.barrier()  # the other processes wait for rank 0's writes

    last_written = time.monotonic()
    for epoch in range(start_epoch, cfg.optim.epochs):
        _set_epoch(train_loader, cfg.seed, epoch)
        # Augmentation, perturbation and dropout, reproducible after a resume.
        torch.manual_seed(epoch_seed(cfg.seed, epoch, runtime.rank))
        lr = optimisation.optimizer.param_groups[0]["lr"]
        epoch_start = time.monotonic()
        train_terms = train_one_epoch(
            trained_module, train_loader, optimisation.optimizer, optimisation.scaler, cfg,
            parts=parts, device=runtime.device, epoch=epoch, show_progress=runtime.is_main,
            distributed=runtime.distributed,
        )  # fmt: skip
        train_seconds = time.monotonic() - epoch_start
        optimisation.scheduler.step()
        # Validation, metrics rows and best.pt every val_every epochs and after the last; last.pt
        # with them and, between them, once optim.checkpoint_minutes have passed since the last
        # write, so that a kill loses little more than the epoch it interrupts.
        validated = (epoch + 1) % cfg.optim.val_every == 0 or epoch + 1 == cfg.optim.epochs
        due = time.monotonic() - last_written >= 60 * cfg.optim.checkpoint_minutes
        row = {"epoch": epoch + 1, "lr": lr} | _prefixed("train", train_terms)
        if runtime.is_main:
            # Every epoch's training terms and time reach TensorBoard, validated or not: a run
            # between validations (9 epochs of the demo encoder's first 10) is not silent there.
            _add_scalars(writer, epoch + 1, _epoch_scalars(row, train_seconds))
        val_terms = {}
        if validated:
            val_terms, best = _validate(
                module, val_loader, cfg, best,
                parts=parts, runtime=runtime, epoch=epoch, row=row, writer=writer,
                metrics=out_dir / METRICS_CSV,
            )  # fmt: skip
        if runtime.is_main:
            if validated or due:
                _save_checkpoints(
                    model, cfg, optimisation, out_dir,
                    trained=trained, epoch=epoch + 1, best=best, world_size=runtime.world_size,
                    pending_row=None if validated else row,
                    pending_seconds=None if validated else train_seconds,
                )  # fmt: skip
                last_written = time.monotonic()
            tqdm.write(_epoch_line(cfg, epoch, lr, train_terms, val_terms, best, train_seconds))
        if validated and runtime.distributed:
            dist.barrier()  # the other processes wait for rank 0's writes

    if writer is not None:
        writer.close()
    return _result(model, best, out_dir, runtime)


def _optimisation(
    module: nn.Module, cfg: TrainConfig, runtime: Runtime, checkpoint: Mapping[str, Any] | None
) -> Optimisation:
    """The optimiser, learning-rate schedule and gradient scaler that train ``module``, in the
    states the resumed ``checkpoint`` holds, when there is one."""
    optimizer = make_optimizer(module.parameters(), cfg.optim)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=cfg.optim.step_size, gamma=cfg.optim.gamma
    )
    optimisation = Optimisation(optimizer, scheduler, grad_scaler(runtime.device, cfg.optim.amp))
    if cfg.optim.amp and not amp_active(runtime.device, True) and runtime.is_main:
        tqdm.write("optim.amp: this CPU has no bfloat16 instructions; training in float32")
    if checkpoint is not None:
        restore_training_state(checkpoint, **optimisation._asdict())
    return optimisation


def _best_of(checkpoint: Mapping[str, Any]) -> Best:
    """The best that ``checkpoint`` (``last.pt``, ``best.pt``) records."""
    return Best(checkpoint["best"], checkpoint["best_epoch"])


def _validate(
    module: nn.Module,
    val_loader: DataLoader | TensorSplit | None,
    cfg: TrainConfig,
    best: Best,
    *,
    parts: tuple[str, ...],
    runtime: Runtime,
    epoch: int,
    row: Mapping[str, float],
    writer: SummaryWriter | None,
    metrics: Path,
) -> tuple[dict[str, float], Best]:
    """Validate ``module`` after ``epoch`` (0-based), every process its shard of
    ``val_loader``, and write the epoch's rows on rank 0 (``writer`` None elsewhere): the
    validation terms to TensorBoard, and ``row`` (the epoch, its lr and training terms) with them
    to the CSV at ``metrics``.

    Returns:
        The validation terms (:func:`evaluate`; none without a validation split) and the run's
        best after this epoch: this epoch where its error is lower than ``best``'s, and always
        without a validation split, where ``best.pt`` follows the rows' epochs (module
        docstring).

    Raises:
        FloatingPointError: a validation term is NaN or infinite, once the rows are written.
    """
    val_terms = {}
    if val_loader is None:
        best = best._replace(epoch=epoch)
    else:
        if runtime.distributed:
            # Each process's BatchNorm statistics moved with its own last training batches
            # (DDP sends rank 0's at the start of a forward): every shard is read with rank 0's,
            # those of the checkpoint it writes.
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)
        val_terms = evaluate(
            module, val_loader, cfg,
            parts=parts, device=runtime.device, distributed=runtime.distributed,
        )  # fmt: skip
        if val_terms["error"] < best.error:
            best = Best(val_terms["error"], epoch)
    if writer is not None:
        # The epoch's rows first, then the checkpoints that claim it: a kill in between leaves
        # rows that a resume drops and redoes, never a checkpoint without its rows.
        _add_scalars(writer, epoch + 1, _prefixed("val", val_terms))
        append_csv(metrics, dict(row) | _prefixed("val", val_terms))
    bad = [name for name, value in val_terms.items() if not math.isfinite(value)]
    if bad:
        raise FloatingPointError(
            f"validation after epoch {epoch + 1}: {bad} not finite ({val_terms}); "
            "no checkpoint written for this epoch"
        )
    return val_terms, best


def _save_checkpoints(
    model: HoposeNet,
    cfg: TrainConfig,
    optimisation: Optimisation,
    out_dir: Path,
    *,
    trained: Iterable[str],
    epoch: int,
    best: Best,
    world_size: int,
    pending_row: Mapping[str, float] | None = None,
    pending_seconds: float | None = None,
) -> None:
    """Write ``last.pt`` (the network after ``epoch`` epochs done, the run's progress, the
    optimisation state and, where the epoch was not validated, ``pending_row`` and
    ``pending_seconds``: its metrics row and training time), then, where ``epoch`` is the
    ``best`` one, ``best.pt`` (the network and progress alone).

    last.pt before best.pt: best.pt never holds an epoch that last.pt does not, which a resume
    would redo (differently, where it is not bit-identical); a kill in between leaves the best
    weights in last.pt, from which a resume writes best.pt.

    Raises:
        FloatingPointError: the weights or the optimiser's state hold NaN or an infinity; the
            checkpoints written before are kept (a last.pt of such weights could not be
            resumed, and would have replaced the last one that can).
    """
    progress = progress_checkpoint(
        model, cfg, trained=trained, epoch=epoch, best=best.error, best_epoch=best.epoch,
        world_size=world_size,
    )  # fmt: skip
    last = training_state(
        progress, **optimisation._asdict(), pending_row=pending_row, pending_seconds=pending_seconds
    )
    # A step whose loss is finite can still have a NaN or infinite gradient, which Adam spreads
    # into the weights; the next step's loss would stop the run only after this write, of a
    # last.pt that no resume reads, over the last one that a resume could read.
    broken = first_non_finite(last["model"] | optimiser_tensors(last["optimizer"]))
    if broken is not None:
        raise FloatingPointError(
            f"after epoch {epoch}: {broken} holds NaN or infinite values (a training step's "
            "loss was finite, its gradient not); no checkpoint written for this epoch"
        )
    save_checkpoint(last, out_dir / LAST_CHECKPOINT)
    if holds_best(progress):
        save_checkpoint(progress, out_dir / BEST_CHECKPOINT)


def _epoch_line(
    cfg: TrainConfig,
    epoch: int,
    lr: float,
    train_terms: Mapping[str, float],
    val_terms: Mapping[str, float],
    best: Best,
    seconds: float | None,
) -> str:
    """The line printed after ``epoch`` (0-based), also where the progress bar is quiet (a log
    file, a batch job): its lr, training loss, validation error (where it was validated) and
    training time (None: the epoch was trained before the resume)."""
    said = f"[{cfg.stage}] epoch {epoch + 1}/{cfg.optim.epochs} lr {lr:.2e} "
    said += f"train loss {train_terms['total']:.4g}"
    if "error" in val_terms:
        said += f" val error {val_terms['error']:.3f} (best {best.error:.3f} @ {best.epoch + 1})"
    if seconds is None:
        return f"{said}, trained before the resume"
    return f"{said}, {seconds:.1f} s"


def _result(model: HoposeNet, best: Best, out_dir: Path, runtime: Runtime) -> TrainResult:
    """What a run in ``out_dir`` returns."""
    return TrainResult(
        model=model,
        best=best.error,
        best_epoch=best.epoch + 1,
        checkpoint=str(out_dir / BEST_CHECKPOINT),
        rank=runtime.rank,
    )


def _resumed_checkpoint(cfg: TrainConfig, out_dir: Path, runtime: Runtime) -> dict[str, Any] | None:
    """The ``last.pt`` a resume continues from, checked against ``cfg``; None for a run killed
    before its first checkpoint, which starts again."""
    if killed_before_checkpoint(out_dir):
        # No checkpoint to continue from: the run starts again, with the config it began with.
        # Read as any config (a damaged file is one line naming it), compared as a checkpoint's.
        config_path = out_dir / CONFIG_FILE
        check_resumable(cfg, {"config": config_to_dict(load_config(config_path))}, config_path)
        return None
    last_path = out_dir / LAST_CHECKPOINT
    checkpoint = load_training_state(last_path)  # its weights and Adam's state checked finite
    check_resumable(cfg, checkpoint, last_path)
    if cfg.optim.epochs > checkpoint["epoch"] or PENDING_ROW in checkpoint:
        # Only a run that trains on or ends its pending epoch (rewriting last.pt, which records
        # the processes): a finished one returns its network, whoever trained it.
        check_processes(checkpoint, runtime.world_size, last_path)
    if cfg.optim.epochs < checkpoint["epoch"]:
        # Before config.yaml is rewritten: the loop would run no epoch and exit as if done.
        raise RunError(
            f"{last_path}: optim.epochs={cfg.optim.epochs} is below the {checkpoint['epoch']} "
            "epochs this run has done; --resume continues to a later epoch, not an earlier one"
        )
    if runtime.is_main and holds_best(checkpoint):
        # The best epoch is last.pt's own: a kill after last.pt may have left best.pt behind.
        save_checkpoint(progress_of(checkpoint), out_dir / BEST_CHECKPOINT)
    return checkpoint


def _replaces_encoder(checkpoint: Mapping[str, Any] | None, init: Mapping[str, Any] | None) -> bool:
    """Whether a checkpoint's trained encoder replaces the new network's: the resumed one's, or
    ``init_from``'s where it trained the encoder. ``model.backbone_weights`` is then not read:
    the file (of the run's start, or of an earlier stage) need not exist any more."""
    return checkpoint is not None or (init is not None and "encoder" in init["trained"])


def _check_backbone_weights(model: ModelConfig) -> None:
    """Refuse a ``model.backbone_weights`` the backbone cannot load, before the data is built:
    the network reads it only after, on every stage whose encoder is not a checkpoint's."""
    path = model.backbone_weights
    if path is None:
        return
    if not Path(path).is_file():
        raise FileNotFoundError(f"model.backbone_weights: file not found: {path}")
    try:
        check_backbone_weights(model.backbone, path)
    except ValueError as error:
        raise ValueError(f"model.backbone_weights: {error}") from error


def _read_split(
    cfg: TrainConfig, field: str, split_cache: SplitCache | None, stage: Stage
) -> Dataset | None:
    """The split that ``cfg.data``'s ``field`` ("train_split", "val_split") names, as ``stage``
    reads it (images or not); None where it names none (``data.val_split: null``).

    Raises:
        ValueError: the split has no samples, naming the field.
    """
    data = cfg.data
    split = getattr(data, field)
    if split is None:
        return None
    dataset = build_split(data, split, with_images=stage.reads_images, cache=split_cache)
    # Before any epoch: an empty split would train nothing, or validate nothing after it.
    if len(dataset) == 0:
        raise ValueError(
            f"data.{field}: {data.name} split {split!r} at {data.cache or data.root} has no "
            "samples (`hopose data check` lists what is missing)"
        )
    return dataset


def _network(
    cfg: TrainConfig,
    stage: Stage,
    checkpoint: Mapping[str, Any] | None,
    init: Mapping[str, Any] | None,
    train_set: Dataset | None,
    *,
    out_dir: Path,
    split_cache: SplitCache | None = None,
) -> tuple[HoposeNet, frozenset[str]]:
    """The network a run starts from, and the parts holding trained weights: a resumed
    checkpoint's (``out_dir``'s ``last.pt``), or the parts ``init_from`` trained (the rest of it
    is random and not copied) and this stage's. The training split's poses set the statistics
    of a lifter the stage trains afresh: ``train_set``'s in the lifter stage, read without
    images (through ``split_cache``) in the end-to-end stage; ``train_set`` is None only with a
    checkpoint, which holds them."""
    seed_everything(cfg.seed)  # here, so the initial weights depend on the seed alone
    if _replaces_encoder(checkpoint, init):
        # Its backbone is replaced below by the checkpoint's trained encoder.
        model = untrained_network(cfg.model)
    else:
        # A random backbone is news only to a stage that trains the encoder from it: the others
        # never use it (the lifter reads ground-truth 2D keypoints).
        with random_backbone_expected() if "encoder" not in stage.trains else nullcontext():
            model = build_model(cfg.model)
    if checkpoint is not None:
        load_weights(model, checkpoint, out_dir / LAST_CHECKPOINT, checked=True)
        return model, frozenset(checkpoint["trained"])
    trained = (
        frozenset() if init is None else load_trained_parts(model, init, cfg.init_from, cfg.model)
    )
    if "lifter" in stage.trains and "lifter" not in trained:
        # The lifter reads and predicts normalised coordinates; this split's statistics set the
        # scales, in the end-to-end stage too where no trained lifter came with init_from. A
        # lifter copied from init_from keeps its own: its weights compute in them (a
        # fine-tuning from ObMan on FPHA-HO would otherwise start from another function). An
        # image stage reads the split's poses alone for them, its images not decoded.
        poses = (
            build_split(cfg.data, cfg.data.train_split, with_images=False, cache=split_cache)
            if stage.reads_images
            else train_set
        )
        model.lifter.set_stats_from_poses(training_poses(poses))
    return model, trained | stage.trains


def _epoch_scalars(row: Mapping[str, float], seconds: float | None) -> dict[str, float]:
    """An epoch's training scalars as TensorBoard logs them: the lr and training terms of its
    metrics ``row`` and its training time in ``seconds`` (None: not known, a ``last.pt`` of an
    earlier hopose kept no :data:`~hopose.checkpoint.PENDING_SECONDS`)."""
    timed = {} if seconds is None else {"time/train_seconds": seconds}
    terms = {name: value for name, value in row.items() if name.startswith("train/")}
    return {"lr": row["lr"]} | timed | terms


def _prefixed(prefix: str, terms: Mapping[str, float]) -> dict[str, float]:
    """``terms`` named as the metrics CSV and TensorBoard name them: ``train/2d``, ``val/error``."""
    return {f"{prefix}/{name}": value for name, value in terms.items()}


def _add_scalars(writer: SummaryWriter, epoch: int, scalars: Mapping[str, float]) -> None:
    """``scalars`` at step ``epoch`` (1-based, as the CSV's rows) in TensorBoard, flushed."""
    for key, value in scalars.items():
        writer.add_scalar(key, value, epoch)
    writer.flush()
