"""TensorSplit serves the batches a DataLoader over the same records would, without one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from hopose.config import MAX_EPOCHS
from hopose.data.sample import collate_samples
from hopose.data.tensor_split import TensorSplit, epoch_stream


def _records(n: int) -> list[dict]:
    """Pose-only records whose every array encodes the record's index i."""
    return [
        {
            "image": np.zeros((0, 0, 3), np.uint8),
            "K": np.eye(3) * (i + 1),
            "hand_3d": np.full((21, 3), i, np.float32),
            "obj_3d": np.full((8, 3), -i, np.float32),
            "hand_2d": np.full((21, 2), 2 * i, np.float32),
            "obj_2d": np.full((8, 2), 3 * i, np.float32),
            "orig_K": np.eye(3),
            "orig_size": np.array([640, 480]),
            "side": "right",
            "object": "box",
            "id": f"synthetic/{i}",
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("epoch", [0, 1, 7])
def test_shuffled_batches_are_the_dataloaders_of_the_same_seed(epoch):
    """The training loop's DataLoader (RandomSampler reseeded with epoch_stream(seed, epoch))
    and the TensorSplit draw the same order, so switching between them changes no result."""
    records = _records(37)
    split = TensorSplit(records, device=torch.device("cpu"), batch_size=8, shuffle=True, seed=5)
    split.set_epoch(epoch)
    generator = torch.Generator().manual_seed(epoch_stream(5, epoch))
    sampler = RandomSampler(records, generator=generator)
    loader = DataLoader(records, batch_size=8, sampler=sampler, collate_fn=collate_samples)
    ours, theirs = list(split), list(loader)
    assert len(split) == len(loader) == 5  # 37 = 4 x 8 + 5
    assert len(ours) == 5 and [len(b["hand_3d"]) for b in ours] == [8, 8, 8, 8, 5]
    for got, expected in zip(ours, theirs, strict=True):
        assert set(got) == {k for k, v in expected.items() if torch.is_tensor(v)}
        for key, value in got.items():
            assert torch.equal(value, expected[key]), key


def test_epochs_differ_and_unshuffled_keeps_the_record_order():
    records = _records(10)
    split = TensorSplit(records, device=torch.device("cpu"), batch_size=4, shuffle=True)
    first = torch.cat([b["hand_3d"][:, 0, 0] for b in split])
    split.set_epoch(1)
    second = torch.cat([b["hand_3d"][:, 0, 0] for b in split])
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert not torch.equal(first, second)
    fixed = TensorSplit(records, device=torch.device("cpu"), batch_size=4, shuffle=False)
    assert torch.cat([b["obj_2d"][:, 0, 0] for b in fixed]).tolist() == [3.0 * i for i in range(10)]


def test_shards_are_the_distributed_samplers():
    """Under 3 processes, 10 records: each rank gets 4 samples (2 repeated as padding), exactly
    DistributedSampler's shard, so every rank makes the same number of steps."""
    records = _records(10)
    for rank in range(3):
        split = TensorSplit(
            records, device=torch.device("cpu"), batch_size=3, shuffle=True, seed=2,
            rank=rank, world_size=3,
        )  # fmt: skip
        split.set_epoch(4)
        # The training loop's sampler: seed epoch_stream(2, 0), whose seed + epoch is the stream.
        sampler = DistributedSampler(records, num_replicas=3, rank=rank, seed=epoch_stream(2, 0))
        sampler.set_epoch(4)
        got = torch.cat([b["hand_3d"][:, 0, 0] for b in split]).long().tolist()
        assert got == list(sampler)
        assert len(split) == 2  # 4 samples in batches of 3


def test_unpadded_shards_read_every_record_once():
    """Validation's shards (pad=False) of 5 records under 2 processes: rank 0 reads 0, 2, 4 and
    rank 1 reads 1, 3, nothing repeated, so the sums over both are the split's; padded as for
    training, rank 1 would read record 0 a second time (1, 3, 0)."""
    records = _records(5)

    def read(rank: int, pad: bool) -> tuple[list[int], int]:
        split = TensorSplit(
            records, device=torch.device("cpu"), batch_size=2, shuffle=False,
            rank=rank, world_size=2, pad=pad,
        )  # fmt: skip
        return torch.cat([b["hand_3d"][:, 0, 0] for b in split]).long().tolist(), len(split)

    assert read(0, pad=False) == ([0, 2, 4], 2)  # batches (0, 2) and (4,)
    assert read(1, pad=False) == ([1, 3], 1)
    assert read(1, pad=True) == ([1, 3, 0], 2)


def _order(seed: int, epoch: int) -> tuple[int, ...]:
    split = TensorSplit(
        _records(16), device=torch.device("cpu"), batch_size=16, shuffle=True, seed=seed
    )
    split.set_epoch(epoch)
    return tuple(split.indices().tolist())


def test_no_two_seeds_or_epochs_share_an_order():
    """Every (seed, epoch) of seeds 0-3 and epochs 0-4 draws its own order of 16 samples. With
    ``seed + epoch``, seed s + 1's epoch e was seed s's epoch e + 1, so ``hopose ablate``'s
    seeds 0, 1, 2 saw nearly the same epochs, shifted by one."""
    orders = {(seed, epoch): _order(seed, epoch) for seed in range(4) for epoch in range(5)}
    for seed in range(3):
        for epoch in range(4):
            assert orders[seed + 1, epoch] != orders[seed, epoch + 1], (seed, epoch)
    assert len(set(orders.values())) == len(orders)  # 16! orders: a chance repeat is negligible


def test_seed_0_draws_the_orders_it_always_drew():
    """Seed 0's stream is the epoch itself, as ``seed + epoch`` was: every shipped config and
    the demo (seed 0) keep their shuffles, and the docs' numbers with them."""
    for epoch in range(5):
        before = torch.randperm(16, generator=torch.Generator().manual_seed(0 + epoch))
        assert _order(0, epoch) == tuple(before.tolist())


def test_the_stream_of_a_seed_and_an_epoch():
    # Seed 3's epoch 7 is 3 * 2**20 + 7; an epoch past the stride would reach seed 4's streams.
    assert MAX_EPOCHS == 2**20 and epoch_stream(3, 7) == 3 * 1_048_576 + 7
    assert epoch_stream(0, 9) == 9
    # The largest seed a config takes, in its last epoch: still a torch seed, and an int64 (a
    # FrameDataset holds the stream its jitter is drawn from in one).
    largest = epoch_stream(2**32 - 1, MAX_EPOCHS - 1)
    torch.Generator().manual_seed(largest)
    assert torch.tensor(largest, dtype=torch.int64).item() == largest
    for epoch in (-1, MAX_EPOCHS):
        with pytest.raises(ValueError, match=r"epoch must be in \[0, 1048576\)"):
            epoch_stream(0, epoch)


def test_more_processes_than_records_still_step_together():
    """2 records under 5 processes: the order [a, b] padded to 5 as [a, b, a, b, a], one sample
    per rank; `order[:padding]` padded only to 4 and left rank 4 without a step."""
    records = _records(2)
    for rank in range(5):
        split = TensorSplit(
            records, device=torch.device("cpu"), batch_size=2, shuffle=False,
            rank=rank, world_size=5,
        )  # fmt: skip
        sampler = DistributedSampler(records, num_replicas=5, rank=rank, shuffle=False)
        got = torch.cat([b["hand_3d"][:, 0, 0] for b in split]).long().tolist()
        assert got == list(sampler) == [rank % 2]
        assert len(split) == len(list(split)) == 1


@pytest.mark.parametrize(("world_size", "sizes"), [(1, [8, 8]), (2, [4, 4])])
def test_drop_last_leaves_out_the_short_last_batch_as_a_dataloader_does(world_size, sizes):
    """17 records in batches of 8: [8, 8] and a last batch of 1, left out with ``drop_last`` as
    a DataLoader's ``drop_last`` leaves it out; under 2 processes each shard is 9 (17 padded to
    18) in batches of 4, [4, 4] and a 1 left out. The kept batches are the DataLoader's."""
    records = _records(17)
    batch_size = 8 // world_size
    for rank in range(world_size):
        split = TensorSplit(
            records, device=torch.device("cpu"), batch_size=batch_size, shuffle=True, seed=3,
            rank=rank, world_size=world_size, drop_last=True,
        )  # fmt: skip
        split.set_epoch(2)
        if world_size == 1:
            generator = torch.Generator().manual_seed(epoch_stream(3, 2))
            sampler = RandomSampler(records, generator=generator)
        else:
            sampler = DistributedSampler(
                records, num_replicas=world_size, rank=rank, seed=epoch_stream(3, 0)
            )
            sampler.set_epoch(2)
        loader = DataLoader(
            records, batch_size=batch_size, sampler=sampler, collate_fn=collate_samples,
            drop_last=True,
        )  # fmt: skip
        ours = [b["hand_3d"][:, 0, 0].long().tolist() for b in split]
        assert [len(b) for b in ours] == sizes and len(split) == len(sizes)
        assert ours == [b["hand_3d"][:, 0, 0].long().tolist() for b in loader]


def test_an_empty_split_is_refused_with_a_message_that_names_it():
    """No records: refused by the TensorSplit itself, not by numpy's "need at least one array to
    stack" deep in the collate, which names nothing."""
    with pytest.raises(ValueError, match="a TensorSplit needs at least one record"):
        TensorSplit([], device=torch.device("cpu"), batch_size=2, shuffle=False)


def test_the_tensors_live_and_the_batches_are_cut_on_the_given_device():
    """The split is moved to its device once: every stored tensor and every batch is there. The
    meta device stands in for a GPU on a machine without one: a tensor left on the CPU, indexed
    with the device's indices, would come back on the CPU."""
    split = TensorSplit(_records(5), device=torch.device("meta"), batch_size=2, shuffle=True)
    assert {value.device.type for value in split.tensors.values()} == {"meta"}
    batches = list(split)
    assert [len(b["hand_3d"]) for b in batches] == [2, 2, 1]  # 5 = 2 + 2 + 1
    assert {value.device.type for b in batches for value in b.values()} == {"meta"}
