"""The one sample record every dataset yields (docs/conventions.md §6), and batching of records.

A record is a plain dict. Arrays may be numpy or torch; :func:`collate_samples` turns a list of
records into a batch of torch tensors:

=========== ==================== ====================================================
key          per sample            meaning
=========== ==================== ====================================================
image        (H, W, 3) uint8       RGB as the network sees it (batched as (B, 3, H, W))
K            (3, 3)                intrinsics of that image
hand_3d      (21, 3)               joints, camera frame, mm, canonical order
obj_3d       (8, 3)                box corners, camera frame, mm, canonical corner order
hand_2d      (21, 2)               joints in pixels of ``image``
obj_2d       (8, 2)                corners in pixels of ``image``
orig_K       (3, 3)                the dataset's original camera
orig_size    (2,)                  the dataset's original image (width, height)
side         str                   "right" or "left" (left hands are mirrored to right)
object       str                   object name
id           str                   "dataset/subject/sequence/frame"
=========== ==================== ====================================================

Pose-only records (``with_images=False`` in every dataset, for training the lifter on
ground-truth 2D) carry a (0, 0, 3) ``image`` so that they batch and check like the others.

Optional keys, batched when every record of the batch has them:

============= ==================== ====================================================
key            per sample            meaning
============= ==================== ====================================================
segmentation   (H, W) uint8          what each pixel of ``image`` shows
                                     (:data:`hopose.skeleton.SEGMENTATION_CLASSES`);
                                     synthetic renders only
============= ==================== ====================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hopose.skeleton import NUM_CORNERS, NUM_JOINTS

ARRAY_KEYS: tuple[str, ...] = ("K", "hand_3d", "obj_3d", "hand_2d", "obj_2d", "orig_K", "orig_size")
STRING_KEYS: tuple[str, ...] = ("side", "object", "id")
SAMPLE_KEYS: tuple[str, ...] = ("image", *ARRAY_KEYS, *STRING_KEYS)
# Per-pixel maps a dataset may add, batched as they are (B, H, W).
OPTIONAL_MAP_KEYS: tuple[str, ...] = ("segmentation",)
ARRAY_SHAPES: dict[str, tuple[int, ...]] = {
    "K": (3, 3),
    "hand_3d": (NUM_JOINTS, 3),
    "obj_3d": (NUM_CORNERS, 3),
    "hand_2d": (NUM_JOINTS, 2),
    "obj_2d": (NUM_CORNERS, 2),
    "orig_K": (3, 3),
    "orig_size": (2,),
}


def check_sample(sample: Mapping[str, Any], source: str) -> None:
    """Raise ValueError naming ``source`` (a file or dataset id) if a record breaks
    docs/conventions.md §6."""
    missing = [key for key in SAMPLE_KEYS if key not in sample]
    if missing:
        raise ValueError(f"{source}: sample is missing keys {missing}")
    image = np.asarray(sample["image"])
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"{source}: 'image' must be (H, W, 3) uint8, got {image.shape} {image.dtype}"
        )
    for key, shape in ARRAY_SHAPES.items():
        value = np.asarray(sample[key])
        if value.shape != shape:
            raise ValueError(f"{source}: '{key}' must have shape {shape}, got {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{source}: '{key}' has non-finite values")


def collate_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack records: ``image`` to (B, 3, H, W) uint8, arrays to float32, strings to lists,
    optional maps that every record has to (B, H, W) in their dtype."""
    batch: dict[str, Any] = {}
    images = np.stack([np.asarray(s["image"]) for s in samples])  # (B, H, W, 3)
    batch["image"] = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    for key in ARRAY_KEYS:
        batch[key] = torch.stack(
            [torch.as_tensor(np.asarray(s[key]), dtype=torch.float32) for s in samples]
        )
    for key in STRING_KEYS:
        batch[key] = [s[key] for s in samples]
    for key in OPTIONAL_MAP_KEYS:
        if all(key in s for s in samples):
            batch[key] = torch.from_numpy(np.stack([np.asarray(s[key]) for s in samples]))
    return batch
