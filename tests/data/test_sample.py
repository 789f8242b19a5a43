"""Batching of sample records (hopose.data.sample)."""

from __future__ import annotations

import numpy as np
import torch

from hopose.data.sample import collate_samples
from hopose.data.synthetic import SyntheticHandObject


def test_segmentation_maps_are_batched_when_every_record_has_one():
    records = [SyntheticHandObject(3, 0, image_size=16)[i] for i in range(3)]
    batch = collate_samples(records)
    assert batch["segmentation"].dtype == torch.uint8
    for i, record in enumerate(records):
        np.testing.assert_array_equal(batch["segmentation"][i].numpy(), record["segmentation"])
    # A record without one (a real dataset's, mixed in) leaves the batch without maps, which
    # the segmentation loss then refuses (tests/test_losses.py).
    without = {k: v for k, v in records[1].items() if k != "segmentation"}
    assert "segmentation" not in collate_samples([records[0], without])
