"""Splits as the config describes them, read into memory where asked, and shared between the
stages of one process.

A split is the dataset ``DataConfig`` names for one of its splits (``train_split``,
``val_split`` or any other, then ``num_test`` samples). Pose-only splits (the lifter stage's)
and image splits with ``data.in_memory`` are read once by DataLoader workers into a
:class:`RecordList`; a :class:`SplitCache` keeps them for the next stages of ``hopose demo``
and ``hopose ablate`` and can read the next stage's split in the background.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from hopose.config import DataConfig
from hopose.data import build_dataset, uncapped
from hopose.data.cache import CacheDataset
from hopose.data.transforms import FrameDataset
from hopose.data.workers import ExitWithParent, as_collected


class RecordList(Dataset):
    """A dataset held in memory as a list of records; ``whole_split`` is :func:`whole_split` of
    the dataset they were read from (None where not known)."""

    def __init__(self, records: list[Mapping[str, Any]], whole_split: bool | None = None):
        self.records = records
        self.whole_split = whole_split

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Mapping[str, Any]:
        return self.records[index]


def materialize(dataset: Dataset, *, num_workers: int = 0) -> list[Mapping[str, Any]]:
    """Every record of ``dataset``, read (or rendered) once, in parallel workers.

    Used for the synthetic images, whose rendering is slower than training on them, and for the
    pose-only records of the lifter stage, read once instead of every epoch.
    """
    # Its own generator for the workers' base seed, which a DataLoader otherwise draws from
    # torch's global one: a read ahead (SplitCache.read_ahead) would draw it while another stage
    # trains, at a moment the threads decide, after that stage seeded its weights and epochs.
    loader = DataLoader(
        dataset, batch_size=64, num_workers=num_workers, collate_fn=as_collected,
        worker_init_fn=ExitWithParent(), generator=torch.Generator(),
    )  # fmt: skip
    return [record for chunk in loader for record in chunk]


# DataConfig fields that do not change a split's records, or only their number.
_FIELDS_NOT_IN_RECORDS = (
    "num_train", "num_val", "num_test", "num_workers", "in_memory", "self_crop", "self_crop_margin",
    "self_crop_turn", "self_crop_shift",
)  # fmt: skip


class SplitCache:
    """Splits read into memory by one stage, kept for the next stages of the same process.

    ``hopose demo`` and ``hopose ablate`` train several stages in one process on the same
    rendered images: the demo's end-to-end stage reads the encoder stage's 12,000 crops
    (``--quick``: the first 3,000 of its 6,000), and each seed of an ablation the same split
    again. Every loader's sample ``i`` depends only on its index (synthetic samples on the seed
    and ``i``, real ones are the first ``num`` of the split), so a split of ``num`` samples is
    the first ``num`` records of one read before with the same dataset, seed and image
    settings: those are reused, not rendered again.
    """

    def __init__(self) -> None:
        # key -> (number asked for when read, None for all; the records)
        self._splits: dict[str, tuple[int | None, RecordList]] = {}
        # key -> (number asked for; the records once the background read ends)
        self._reading: dict[str, tuple[int | None, Future]] = {}

    @staticmethod
    def key(data: DataConfig, split: str, *, with_images: bool) -> str:
        """What makes two reads of ``split`` give the same records, bar their number."""
        fields = asdict(data)
        for name in _FIELDS_NOT_IN_RECORDS:
            del fields[name]
        return yaml.safe_dump([split, with_images, fields], sort_keys=True)

    def _holds(self, key: str, num: int | None) -> bool:
        """Whether a read of ``num`` samples (None: all) of ``key`` is kept, or a larger one."""
        if key not in self._splits:
            return False
        read = self._splits[key][0]
        return read is None or (num is not None and num <= read)

    def get(self, key: str, num: int | None) -> RecordList | None:
        """The first ``num`` records (all for None) of a split read before, or None; waits for
        a read ahead of that split to end (and raises its error)."""
        if key in self._reading:
            read, records = self._reading.pop(key)
            self.put(key, read, records.result())
        if not self._holds(key, num):
            return None
        kept = self._splits[key][1]
        records = kept.records if num is None else kept.records[:num]
        # The first records of a whole split are all of it only where none is left out.
        return RecordList(records, kept.whole_split and len(records) == len(kept.records))

    def put(self, key: str, num: int | None, split: RecordList) -> None:
        """Keep ``split``, read with ``num`` asked for, unless a larger read is kept."""
        if not self._holds(key, num):
            self._splits[key] = (num, split)

    def read_ahead(self, data: DataConfig, split: str, *, with_images: bool) -> None:
        """Start reading ``split`` into memory in one background DataLoader worker, for a later
        stage's :func:`build_split` (which waits for it), unless it is kept already.

        ``hopose demo`` trains its lifter on one thread, on pose-only records: meanwhile the
        other core renders the encoder stage's crops, which otherwise cost that stage about a
        minute of both cores (docs/training.md, "Speed").
        """
        num = split_size(data, split)
        key = self.key(data, split, with_images=with_images)
        if key in self._reading or self._holds(key, num):
            return
        records: Future = Future()

        def read() -> None:
            try:
                records.set_result(_read_split(data, split, with_images, num, num_workers=1))
            except BaseException as error:  # raised again by get(), in the stage that waits
                records.set_exception(error)

        # A daemon thread: a run that stops early does not wait for a read nobody needs.
        threading.Thread(target=read, name=f"read-ahead {split}", daemon=True).start()
        self._reading[key] = (num, records)


def build_split(
    data: DataConfig, split: str, *, with_images: bool, cache: SplitCache | None = None
) -> Dataset:
    """The dataset of ``split`` as the config describes it (kept in memory when asked, and then
    taken from and kept in ``cache`` when one is given)."""
    num = split_size(data, split)
    in_memory = data.in_memory or not with_images
    cached = in_memory and cache is not None
    key = SplitCache.key(data, split, with_images=with_images) if cached else ""
    if cached and (kept := cache.get(key, num)) is not None:
        return kept
    if not in_memory:
        return _dataset(data, split, with_images, num)
    records = _read_split(data, split, with_images, num, num_workers=data.num_workers)
    if cached:
        cache.put(key, num, records)
    return records


def split_size(data: DataConfig, split: str) -> int | None:
    """The number of samples ``data`` asks of ``split`` (None: all)."""
    sizes = {data.train_split: data.num_train, data.val_split: data.num_val}
    return sizes.get(split, data.num_test)


def _dataset(data: DataConfig, split: str, with_images: bool, num: int | None) -> Dataset:
    """The dataset of ``split`` that ``data`` names, ``num`` samples (None: all), not read yet."""
    return build_dataset(
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


def _read_split(
    data: DataConfig, split: str, with_images: bool, num: int | None, *, num_workers: int
) -> RecordList:
    """``num`` samples of ``split`` read into memory by ``num_workers`` workers, knowing
    whether they are the whole split (:func:`whole_split`)."""
    dataset = _dataset(data, split, with_images, num)
    return RecordList(
        materialize(dataset, num_workers=num_workers), whole_split(dataset, data.name)
    )


def whole_split(dataset: Dataset, name: str) -> bool | None:
    """Whether ``dataset`` (of dataset ``name``, from :func:`build_split` or
    :func:`hopose.data.build_dataset`) holds every frame of its real split: not cut by
    ``num_samples``, nor read from a cache that ``hopose prepare --num`` capped, and none left
    out while indexing (:attr:`FrameDataset.left_out`: folders missing, annotations skipped
    with ``on_error: skip``) or as unreadable in a cache's build. None for synthetic data,
    whose split is defined by its size."""
    if name == "synthetic":
        return None
    if isinstance(dataset, RecordList):
        return dataset.whole_split
    source, _ = uncapped(dataset)
    if isinstance(source, CacheDataset):
        meta = source.meta
        # A cache prepared before meta.json counted what its loader left out while indexing
        # (``left_out``) reads as not cut by it.
        cut = (
            source.info.get("num_samples") is not None
            or meta.get("skipped", 0) > 0
            or meta.get("left_out", 0) > 0
        )
    else:
        cut = isinstance(source, FrameDataset) and bool(source.left_out)
    return source is dataset and not cut


def training_poses(dataset: Dataset) -> torch.Tensor:
    """All 3D poses of a split as (M, 29, 3) mm, hand joints then box corners."""
    records = (dataset[i] for i in range(len(dataset)))
    poses = [np.concatenate([record["hand_3d"], record["obj_3d"]]) for record in records]
    return torch.as_tensor(np.stack(poses), dtype=torch.float32)
