"""A whole split stacked once into tensors and served in batches by index.

The lifter stage reads pose-only records (ground-truth 2D, 3D and K, no image): a few hundred bytes
a sample, 11,019 poses for FPHA-HO; an image stage with ``data.in_memory`` reads rendered crops held
in memory. A DataLoader would collate the batch's Python records at every step, in the main process,
and copy the batch to the device, as long as the step itself on a GPU. Here the records are collated
once (:func:`~hopose.data.sample.collate_samples`), moved once to the training device, and each
batch is one index into every tensor: no per-sample Python after the start, and on a GPU whatever
follows the batch (augmentation, :mod:`hopose.data.augment`) runs there too (``hopose.train`` keeps
a split too large for the GPU in a DataLoader). Batches are the DataLoader's (same keys, shapes and
dtypes) minus the string fields, which no loss reads. The order of an epoch is drawn from the stream
:func:`epoch_stream` of ``(seed, epoch)`` (:meth:`set_epoch`), so a resumed run repeats it and
runs of other seeds never replay it in another epoch; under ``world_size`` processes
each takes every ``world_size``-th sample of the epoch's order, padded like a ``DistributedSampler``
so that every process makes the same number of steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from hopose.config import MAX_EPOCHS
from hopose.data.sample import collate_samples


def epoch_stream(seed: int, epoch: int) -> int:
    """The number every random stream of training epoch ``epoch`` under run seed ``seed`` is
    drawn from: the shuffle (:class:`TensorSplit`, a DataLoader's sampler), torch's generators
    on rank 0 (``hopose.train.epoch_seed``) and a real dataset's crop jitter
    (``FrameDataset.set_epoch``).

    ``seed * MAX_EPOCHS + epoch`` (:data:`hopose.config.MAX_EPOCHS`, optim.epochs' bound):
    distinct for every (seed, epoch) pair, so consecutive seeds do not replay each other's
    epochs shifted by one, as ``seed + epoch`` did (``hopose ablate`` trains seeds 0, 1, 2,
    ...); and with seed 0 it is ``epoch``, ``seed + epoch``'s streams, so seed 0's runs (the
    shipped configs', the demo's) draw what they always drew.
    """
    if not 0 <= epoch < MAX_EPOCHS:
        raise ValueError(f"epoch must be in [0, {MAX_EPOCHS}) (MAX_EPOCHS), got {epoch}")
    return seed * MAX_EPOCHS + epoch


def shard_size(size: int, world_size: int) -> int:
    """Samples of each of ``world_size`` processes sharing ``size``: the split padded to a
    multiple of ``world_size``, as a ``DistributedSampler`` pads it."""
    return math.ceil(size / world_size)


class TensorSplit:
    """Records held as stacked tensors on ``device``, iterated in batches like a DataLoader.

    Args:
        records: the split's records (pose-only or not; images are kept when present).
        device: where the tensors live and batches are indexed.
        batch_size: samples per batch (the last one may be smaller).
        shuffle: draw a new order every epoch; else the records' order.
        seed: the run's seed; epoch ``e``'s order is drawn from ``epoch_stream(seed, e)``.
        rank: this process's rank.
        world_size: number of processes sharing the split.
        drop_last: leave out a last batch smaller than ``batch_size``, as a DataLoader's
            ``drop_last``.
        pad: under ``world_size`` processes, repeat samples to give every process as many, as
            a ``DistributedSampler`` does (training); else each process takes every
            ``world_size``-th sample from its rank on, and none is read twice (validation).
    """

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        device: torch.device,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        pad: bool = True,
    ) -> None:
        if not records:
            raise ValueError("a TensorSplit needs at least one record")
        batch = collate_samples(records)
        self.tensors: dict[str, Tensor] = {
            key: value.to(device) for key, value in batch.items() if torch.is_tensor(value)
        }
        self.size = len(records)
        self.device = device
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.pad = pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the order of the next iteration, drawn from ``epoch_stream(seed, epoch)``."""
        self.epoch = epoch

    def indices(self) -> Tensor:
        """This process's sample indices for the current epoch, in order (on the CPU)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_stream(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        if self.world_size > 1 and not self.pad:
            order = order[self.rank :: self.world_size]
        elif self.world_size > 1:
            padding = -self.size % self.world_size
            # More processes than samples repeat the order more than once, as DistributedSampler.
            repeated = order.repeat(math.ceil(padding / self.size) + 1)
            order = repeated[: self.size + padding][self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        if self.pad:
            shard = shard_size(self.size, self.world_size)
        else:  # the samples from rank on in steps of world_size
            shard = len(range(self.rank, self.size, self.world_size))
        return shard // self.batch_size if self.drop_last else math.ceil(shard / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        batches = self.indices().to(self.device).split(self.batch_size)
        for index in batches[: len(self)]:
            yield {key: value[index] for key, value in self.tensors.items()}
