"""Batching of sample records (hopose.data.sample)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hopose.data.sample import check_sample, collate_samples
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


def _record() -> dict:
    """A valid record of a 2x3 image whose every value is distinct, so that a transposed or
    reordered batch shows."""
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)  # (H=2, W=3, 3)
    return {
        "image": image,
        "K": np.array([[500.0, 0, 1.5], [0, 500.0, 1.0], [0, 0, 1]]),  # float64
        "hand_3d": np.arange(63, dtype=np.float64).reshape(21, 3),
        "obj_3d": -np.arange(24, dtype=np.float64).reshape(8, 3),
        "hand_2d": np.arange(42, dtype=np.float64).reshape(21, 2) / 4,
        "obj_2d": np.arange(16, dtype=np.float64).reshape(8, 2) / 8,
        "orig_K": np.eye(3),
        "orig_size": np.array([3, 2]),
        "side": "right",
        "object": "box",
        "id": "test/s/q/0",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("obj_2d"), r"sample is missing keys \['obj_2d'\]"),
        (lambda r: r.pop("id"), r"sample is missing keys \['id'\]"),
        # A float image in [0, 1] (as torchvision gives) would be read as near-black uint8.
        (lambda r: r.update(image=r["image"].astype(np.float32)), "'image' must be"),
        (lambda r: r.update(image=np.zeros((2, 3, 4), np.uint8)), "'image' must be"),  # RGBA
        (lambda r: r.update(image=np.zeros((2, 3), np.uint8)), "'image' must be"),  # grey
        # 20 joints (a skeleton without its wrist) has the right number of dimensions.
        (lambda r: r.update(hand_3d=np.zeros((20, 3))), r"'hand_3d' must have shape \(21, 3\)"),
        (lambda r: r.update(obj_2d=np.zeros((8, 3))), r"'obj_2d' must have shape \(8, 2\)"),
        (lambda r: r.update(K=np.eye(4)), r"'K' must have shape \(3, 3\)"),
        (lambda r: r["hand_2d"].__setitem__((5, 1), np.nan), "'hand_2d' has non-finite values"),
        (lambda r: r["obj_3d"].__setitem__((0, 0), np.inf), "'obj_3d' has non-finite values"),
    ],
    ids=["no-obj_2d", "no-id", "float-image", "rgba", "grey", "20-joints", "obj_2d-3d", "K-4x4",
         "nan", "inf"],
)  # fmt: skip
def test_check_sample_refuses_a_record_that_breaks_the_contract_naming_source_and_key(
    change, message
):
    """Each broken rule of docs/conventions.md §6 is a ValueError naming the record's source and
    the key; the unchanged record passes."""
    check_sample(_record(), "test/s/q/0")
    record = _record()
    change(record)
    with pytest.raises(ValueError, match=rf"^frames\.npz: {message}"):
        check_sample(record, "frames.npz")


def test_collate_puts_channels_first_and_arrays_to_float32_with_their_values():
    """image[b, c, y, x] == record b's image[y, x, c] (channels first, not transposed); the
    arrays keep their values as float32 whatever their dtype (float64 K, int64 orig_size)."""
    first, second = _record(), _record()
    second["image"] = 255 - second["image"]
    second["hand_3d"] = second["hand_3d"] * 2
    batch = collate_samples([first, second])
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (2, 3, 2, 3)
    for b, record in enumerate((first, second)):
        for y, x, c in ((0, 0, 0), (1, 2, 0), (0, 2, 1), (1, 0, 2)):
            assert batch["image"][b, c, y, x] == record["image"][y, x, c]
        for key in ("K", "hand_3d", "obj_3d", "hand_2d", "obj_2d", "orig_K", "orig_size"):
            assert batch[key].dtype == torch.float32, key
            np.testing.assert_array_equal(batch[key][b].numpy(), record[key].astype(np.float32))
    # The pixel at y=1, x=2, channel 0 is 3 * (1 * 3 + 2) + 0 = 15 (255 - 15 = 240 in the second).
    assert batch["image"][0, 0, 1, 2] == 15 and batch["image"][1, 0, 1, 2] == 240
    assert batch["id"] == ["test/s/q/0", "test/s/q/0"] and batch["side"] == ["right", "right"]
