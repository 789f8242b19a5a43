"""Typed training configuration: dataclasses loaded from YAML, overridable from the command line.

One config file describes one training stage (paper §4.3, :mod:`hopose.stages`): ``stage``
says which part of the network is trained, ``data``, ``model``, ``optim`` and ``loss`` say how.
Pre-training then fine-tuning, and the three stages of one dataset, are chained through
``init_from`` (a checkpoint whose trained weights start the run), so a recipe is a list of files,
not code.

The dataclasses below are the schema, one documented field per line; OmegaConf structured
configs do the rest: ``load_config(path, overrides)`` merges the YAML file into the schema,
applies dot-list overrides (``optim.lr=1e-4``, ``data.options.jitter=true``), converts every
value to its field's type, then the dataclasses' ``__post_init__`` validate it. A wrong key or
value raises a one-line :class:`ConfigError` naming the file, or the ``--set KEY=VALUE`` that
gave the value, and the full key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from hopose.data import (
    CROPS,
    DATASETS,
    REAL_DATASETS,
    SYNTHETIC_SPLIT_KEYS,
    check_options,
    loader_options,
)
from hopose.data.check import dataset_splits
from hopose.data.grasps import SEED_LIMIT, SEED_RANGE_TEXT
from hopose.data.ho3d import WITHHELD, hand_labelled
from hopose.data.synthetic import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE
from hopose.data.transforms import DEFAULT_CROP, DEFAULT_IMAGE_SIZE
from hopose.files import led_by, recorded_path
from hopose.models import BACKBONES, HEADS, LIFTERS, RESIDUAL_STAGES, VARIANT_PARTS
from hopose.models.encoder import STAGE_COUNTS_TEXT
from hopose.models.heads import HEATMAP_TILE
from hopose.self_crop import SELF_CROP_MARGIN
from hopose.stages import STAGES


class ConfigError(ValueError):
    """A config file or override names an unknown key or holds a bad value."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


NUMBERED_GPU = "cuda:N"
"""Stands in a list of devices for any GPU number N: cuda:0, cuda:1..."""
DEVICES: tuple[str, ...] = ("cpu", "cuda", NUMBERED_GPU)
"""Devices ``hopose eval`` runs on: the CPU, the current GPU, or GPU number N."""
AUTO_DEVICES: tuple[str, ...] = ("auto", *DEVICES)
"""Devices ``hopose eval`` and ``hopose predict`` take: "auto" (:func:`resolve_device`) and
:data:`DEVICES`."""
TRAIN_DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
"""Values of ``TrainConfig.device``: no numbered GPU, since under torchrun each process takes the
GPU of its local rank."""
L2D_PIXELS: tuple[str, ...] = ("original", "network")
"""Units of the 2D loss terms (``LossConfig.l2d_pixels``)."""
L3D_DISTANCES: tuple[str, ...] = ("squared", "euclidean")
"""Forms of the 3D loss terms (``LossConfig.l3d_distance``)."""
LOSS_WEIGHTS: tuple[str, ...] = ("w_2d", "w_3d", "w_physical", "w_heatmap", "w_segmentation")
"""The weight fields of :class:`LossConfig`, one per kind of loss term."""
MAX_EPOCHS = 2**20
"""The most epochs a run may have (``optim.epochs``): a run's random streams are
``seed * MAX_EPOCHS + epoch`` (:func:`hopose.data.tensor_split.epoch_stream`), far above any
schedule (the paper's longest is 10,000 epochs), so that seed s's epochs never reach seed
s + 1's."""
COUNT_LIMIT = 2**31
"""Bound (exclusive) of a number of samples, ``optim.batch_size`` and ``data.num_*``: torch and
numpy read sizes as 64-bit integers and fail past them naming no field (an OverflowError), and
2**31 samples are past any machine's memory already (a synthetic lifter split of 2**31 poses
holds 0.7 TB of float32 keypoints)."""
# The counts' range as messages write it.
COUNT_RANGE_TEXT = f"[1, 2**{COUNT_LIMIT.bit_length() - 1})"


PATH_FIELDS: tuple[str, ...] = ("data.root", "data.cache", "model.backbone_weights", "init_from")
"""The fields that name a file or folder (:func:`_require_path`): ``--resume`` compares them
as the files they name (:func:`hopose.run_folder.check_resumable`)."""


def path_override(key: str, path: str | Path) -> str:
    """The ``--set`` override giving the path field ``key`` (:data:`PATH_FIELDS`) the file
    ``path`` as a record names it (:func:`hopose.files.recorded_path`): absolute, so that a
    run's config names the same file wherever it is resumed from, and quoted, as a folder
    named with ": " or " #" would break the YAML value: in YAML's own double-quoted style, which
    escapes what YAML cannot hold as it is (a control character, an undecodable byte's
    surrogate) and keeps the rest (a JSON string's escape of a character beyond the BMP, a
    surrogate pair, is no YAML)."""
    value = yaml.safe_dump(
        recorded_path(path), default_style='"', allow_unicode=True, width=math.inf
    )
    return f"{key}={value.rstrip()}"


def _require_path(path: str | None, name: str, what: str) -> None:
    """Refuse an empty or blank path, naming its field: read as a path it names the current
    folder, so an empty ``init_from`` started from scratch without a word, an empty cache
    was looked for as "." and an empty weights file was "not found: "."""
    _require(path is None or path.strip() != "", f"{name} must be {what} or null, got {path!r}")


def _require_seed(seed: int, name: str) -> None:
    """Refuse a seed outside one 32-bit word, naming its field: numpy's generators and
    ``seed_everything`` fail on it only when they first read it, without the field's name (and
    for the top-level seed only on DDP ranks other than 0)."""
    _require(
        0 <= seed < SEED_LIMIT,
        f"{name} must be in {SEED_RANGE_TEXT}, got {seed}",
    )


def _require_count(value: int | None, name: str, *, nullable: bool = False) -> None:
    """Refuse a number of samples outside [1, :data:`COUNT_LIMIT`), naming its field; None too
    unless ``nullable``."""
    _require(
        (nullable and value is None) or (value is not None and 0 < value < COUNT_LIMIT),
        f"{name} must be in {COUNT_RANGE_TEXT}{' or null' if nullable else ''}, got {value}",
    )


def _require_finite(section: Any, prefix: str) -> None:
    """Refuse an infinite or NaN float field of the dataclass ``section``: the range checks
    below compare with finite bounds only, and ``optim.lr=inf`` would train to a NaN loss."""
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        _require(
            not isinstance(value, float) or math.isfinite(value),
            f"{prefix}.{item.name} must be finite, got {value}",
        )


def resolve_device(device: str) -> str:
    """``device`` with "auto" made the GPU when there is one ("cuda"), else the CPU; any other
    value as it is, for :func:`check_device` to judge."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(
    device: str, field: str, choices: tuple[str, ...] = DEVICES, *, present: bool = True
) -> None:
    """Refuse a device outside ``choices`` (:data:`NUMBERED_GPU` standing for any GPU number)
    and, when ``present``, a GPU this machine lacks, with a one-line :class:`ConfigError` naming
    ``field``.

    ``present`` is False where a config is only read: a checkpoint trained on a GPU must still
    load on a machine without one.
    """
    numbered = NUMBERED_GPU in choices and re.fullmatch(r"cuda:[0-9]+", device) is not None
    named = device in choices and device != NUMBERED_GPU
    _require(numbered or named, f"{field} must be one of {choices}, got {device!r}")
    if not present or not device.startswith("cuda"):
        return
    count = torch.cuda.device_count()
    _require(count > 0, f"{field}: {device!r} asked, but no CUDA device is available")
    index = int(device.partition(":")[2] or 0)
    _require(
        index < count, f"{field}: {device!r} asked, but this machine has {count} CUDA device(s)"
    )


@dataclass
class DataConfig:
    """Which dataset to read and how its images are prepared (docs/conventions.md §6)."""

    name: str = "synthetic"
    """Dataset name for ``hopose.data.build_dataset``: synthetic, fpha, obman, ho3d, dexycb."""
    root: str | None = None
    """Dataset folder on disk; None for synthetic data, and for a real dataset read from
    ``cache`` (a training config needs one of the two: :class:`TrainConfig`)."""
    cache: str | None = None
    """Optional cache folder of pre-processed samples (``hopose.data.cache``)."""
    train_split: str = "train"
    """Split trained on, one of the dataset's (:mod:`hopose.data`; FPHA's those of its
    ``options.protocol``, DexYCB's of its ``options.setup``), as ``val_split``: checked by
    :class:`TrainConfig`, which reads them, not here, where an evaluation's config leaves them
    at their defaults whatever its dataset."""
    val_split: str | None = "val"
    """Split validated on every ``optim.val_every`` epochs (``best.pt`` is chosen on it); None
    for a dataset without a labelled one (HO-3D, FPHA's action protocol): nothing is validated,
    ``num_val`` is unused, and ``best.pt`` holds the weights of the latest epoch that writes
    metrics rows, at the end the last epoch's (:mod:`hopose.train`)."""
    test_split: str = "test"
    """Split ``hopose eval`` reports by default."""
    image_size: int = DEFAULT_IMAGE_SIZE
    """Side of the square network input in pixels (paper: 224), from
    :data:`hopose.data.synthetic.MIN_IMAGE_SIZE` to ``MAX_IMAGE_SIZE`` there (8 to 4096) for every
    dataset: the least is the one ``hopose prepare`` holds any dataset's caches to."""
    crop: str = DEFAULT_CROP
    """"resize" the whole frame to a square (paper, HOPE-Net), or "square", a crop around hand
    and object (with ``options.jitter`` randomly scaled, shifted and turned, synthetic and real
    data alike; refused with "resize"). A model trained on "square" crops predicts from images
    by self-cropping (``self_crop``)."""
    self_crop: int = 1
    """Crops after the whole-frame pass when a model trained on "square" crops predicts from
    images (``hopose eval``, ``hopose predict``), each placed around the previous pass's 2D
    (:func:`hopose.self_crop.self_crop`); no ground truth places them. Read, as the other
    self-crop fields, with ``crop: square`` only."""
    self_crop_margin: float = SELF_CROP_MARGIN
    """Margin of those self-crop squares, a share of the 2D's tight side added on each side
    (:func:`hopose.crop.square_around`); wider than the training crops' (why:
    :data:`hopose.self_crop.SELF_CROP_MARGIN`)."""
    self_crop_turn: float = 0.0
    """Test-time views of the last self-crop (beyond the paper; docs/from_pixels.md, "Test-time
    views"): above 0, its square is also shown turned by ± this many degrees (below 90), and
    the predictions of all views are averaged (:class:`hopose.self_crop.CropViews`)."""
    self_crop_shift: float = 0.0
    """As ``self_crop_turn``: above 0 (at most 0.5), the square is also shown moved by ± this
    share of its side along x and along y, unturned (4 more views)."""
    num_train: int | None = None
    """Number of training samples (synthetic: how many to generate, required unless ``cache``
    holds them; real data: a cap), below :data:`COUNT_LIMIT`."""
    num_val: int | None = None
    """Number of validation samples, as ``num_train`` (not read, so not required, without a
    ``val_split``)."""
    num_test: int | None = None
    """Number of test samples, as ``num_train``."""
    seed: int = 0
    """Seed of the synthetic generator, >= 0; each split derives its own stream from it."""
    num_workers: int = 0
    """DataLoader worker processes."""
    in_memory: bool = False
    """Read (or render) every sample once and keep them in memory, for data that is slower to
    produce than to train on, like the rendered synthetic images."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments passed to the dataset's constructor
    (:func:`hopose.data.option_defaults`), judged by its own checks when the config is made
    (:func:`hopose.data.check_options`)."""

    def __post_init__(self) -> None:
        _require_finite(self, "data")
        _require(self.name in DATASETS, f"data.name must be one of {DATASETS}, got {self.name!r}")
        _require_path(self.root, "data.root", "the dataset's folder")
        _require_path(self.cache, "data.cache", "a prepared cache's folder")
        _require(self.crop in CROPS, f"data.crop must be one of {CROPS}, got {self.crop!r}")
        # Validating on the training split would choose the best checkpoint on training frames
        # (and train on num_val of them: hopose.data.splits looks sizes up by split name). A
        # test_split equal to either stays allowed (`hopose eval --split val` reads that split
        # as its test split) where both ask the same number of frames: one split, one size.
        _require(
            self.train_split != self.val_split,
            f"data.train_split and data.val_split must differ, both are {self.train_split!r}",
        )
        for role in ("train", "val"):
            size = getattr(self, f"num_{role}")
            _require(
                getattr(self, f"{role}_split") != self.test_split or size == self.num_test,
                f"data.{role}_split and data.test_split are both {self.test_split!r}: "
                f"data.num_{role} ({size}) and data.num_test ({self.num_test}) must agree",
            )
        # The loaders' own checks, run as the config is read: otherwise a bad value fails only
        # once a run builds its dataset, its run folder made, naming the loader's argument.
        try:
            check_options(self.name, self.crop, self.options, prefix="data.options.")
        except ValueError as error:
            raise ConfigError(str(error)) from None
        _require(
            MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE,
            f"data.image_size must be in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got "
            f"{self.image_size}",
        )
        _require(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        _require(self.self_crop >= 1, f"data.self_crop must be >= 1, got {self.self_crop}")
        _require(
            self.self_crop_margin >= 0,
            f"data.self_crop_margin must be >= 0, got {self.self_crop_margin}",
        )
        _require(
            0 <= self.self_crop_turn < 90,
            f"data.self_crop_turn must be in [0, 90) degrees, got {self.self_crop_turn}",
        )
        _require(
            0 <= self.self_crop_shift <= 0.5,
            f"data.self_crop_shift must be in [0, 0.5], got {self.self_crop_shift}",
        )
        _require_seed(self.seed, "data.seed")
        for name in ("num_train", "num_val", "num_test"):
            _require_count(getattr(self, name), f"data.{name}", nullable=True)


@dataclass
class ModelConfig:
    """The network (docs/conventions.md §3); ``hopose.models.build_model`` maps it to constructor
    arguments."""

    backbone: str = "resnet50"
    """torchvision ResNet of the image encoder: resnet18, resnet34 or resnet50 (paper)."""
    backbone_weights: str | None = None
    """Local file of pretrained backbone weights; None starts from random initialisation."""
    backbone_stages: int = 4
    """Residual stages of the ResNet the encoder keeps, 1-4: 4 is the whole network (the
    paper's); 3 ends at layer3, stride 16, half the feature width (ResNet18: 256 channels, a
    quarter of its weights), which trains faster per image on a CPU (docs/training.md)."""
    lifter: str = "context"
    """2D-to-3D lifter: "context" (the paper's context-aware graph) or "graph_unet" (HOPE-Net)."""
    lifter_variant: str = "full"
    """Sub-graphs of the context lifter (paper Table 2): "full", "hand" or "object"; the Graph
    U-Net has no sub-graphs and takes "full" only."""
    head: str = "linear"
    """Initial 2D head of the image encoder: "linear" (the paper's, on the pooled feature) or
    "heatmap" (integral heat maps on the stride-4 feature pyramid, the GCN nodes also reading the
    local feature at their keypoint; :mod:`hopose.models.heads`)."""
    hidden: int = 128
    """Hidden width of the graph layers."""
    dropout: float = 0.3
    """Dropout between the context lifter's merged graph layers; the Graph U-Net has none."""
    modulated: bool = False
    """Beyond the paper: every graph convolution of the encoder's refinement GCN and of the
    context lifter learns a per-node weight modulation (Zou & Tang, ICCV 2021;
    :class:`hopose.models.GraphConv`), so that one input can move different nodes differently.
    The Graph U-Net ignores it."""
    segmentation: bool = False
    """Beyond the paper: the heat-map head's features also predict, per stride-4 cell, whether
    it shows background, hand or which face of the box (:class:`hopose.models.ImageEncoder`);
    needs ``head: heatmap`` and, to be trained, ``loss.w_segmentation`` and a dataset that gives
    the maps (the synthetic renders)."""

    def __post_init__(self) -> None:
        _require_finite(self, "model")
        _require_path(self.backbone_weights, "model.backbone_weights", "a state-dict file")
        _require(
            self.backbone in BACKBONES,
            f"model.backbone must be one of {BACKBONES}, got {self.backbone!r}",
        )
        _require(
            self.lifter in LIFTERS, f"model.lifter must be one of {LIFTERS}, got {self.lifter!r}"
        )
        _require(
            self.lifter_variant in VARIANT_PARTS,
            f"model.lifter_variant must be one of {tuple(VARIANT_PARTS)}, "
            f"got {self.lifter_variant!r}",
        )
        _require(
            self.lifter != "graph_unet" or self.lifter_variant == "full",
            "model.lifter_variant must be 'full' with model.lifter: graph_unet (the Graph U-Net "
            f"lifts every node, it has no sub-graphs), got {self.lifter_variant!r}",
        )
        _require(
            1 <= self.backbone_stages <= len(RESIDUAL_STAGES),
            f"model.backbone_stages must be {STAGE_COUNTS_TEXT}, got {self.backbone_stages}",
        )
        _require(self.head in HEADS, f"model.head must be one of {HEADS}, got {self.head!r}")
        _require(
            not self.segmentation or self.head == "heatmap",
            f"model.segmentation needs model.head: heatmap, got {self.head!r}",
        )
        _require(self.hidden > 0, f"model.hidden must be > 0, got {self.hidden}")
        _require(0.0 <= self.dropout < 1.0, f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class OptimConfig:
    """Adam with weight decay and a step learning-rate schedule (paper §4.3)."""

    lr: float = 1e-3
    """Initial learning rate."""
    weight_decay: float = 0.01
    """Adam weight decay (the authors' released code: 0.01)."""
    epochs: int = 1
    """Number of epochs (passes over the training split), at most :data:`MAX_EPOCHS`."""
    batch_size: int = 256
    """Samples per step on each process (paper: 256), below :data:`COUNT_LIMIT`."""
    step_size: int = 1
    """Epochs between learning-rate decays."""
    gamma: float = 1.0
    """Factor the learning rate is multiplied by every ``step_size`` epochs."""
    amp: bool = False
    """Mixed precision with ``torch.autocast``: float16 on GPU; bfloat16 on a CPU with bf16
    instructions, float32 on other CPUs, where bf16 runs slower (BENCHMARKS.md)."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value; None does not clip."""
    sync_batchnorm: bool = False
    """Under ``torchrun``, normalise each batch-normalisation layer over every process's samples
    of the step (``torch.nn.SyncBatchNorm``) instead of each process's own, as torchvision's
    references' ``--sync-bn``: for per-GPU batches too small for their own statistics. GPUs
    only, as PyTorch synchronises them (refused on the CPU); a run without ``torchrun`` has
    nothing to synchronise and ignores it."""
    progressive_size: int | None = None
    """Image side (px) of an image stage's first ``progressive_epochs`` epochs: each training
    batch is shown that much smaller (:func:`hopose.crop.shrink_views`: images resized with
    antialiasing, K and the 2D mapped with them), and the later epochs train at
    ``data.image_size`` (progressive resizing; docs/training.md). Validation is always at
    ``data.image_size``. Below it, and, as ``data.image_size``, at least
    :data:`hopose.data.synthetic.MIN_IMAGE_SIZE` and with the heat-map head a multiple of
    :data:`hopose.models.heads.HEATMAP_TILE`; None: off."""
    progressive_epochs: int = 0
    """Epochs at ``progressive_size`` at the start of the stage: fewer than ``epochs``, and 0
    exactly when ``progressive_size`` is null."""
    val_every: int = 10
    """Epochs between validations, metrics rows and checkpoints; the last epoch always has them.
    At the paper's lifter sizes (11,019 poses, batch 256) one validation and checkpoint cost
    about an epoch's tenth, so 10 keeps them near 1% of the run (BENCHMARKS.md)."""
    checkpoint_minutes: float = 1.0
    """Between validations, ``last.pt`` is also written after the first epoch that ends this many
    minutes after the last write, so a kill loses at most about this much besides the epoch it
    interrupts; 0: after every epoch. Not after every epoch by default: at the paper's lifter
    sizes the whole-network checkpoint (a ResNet50 inside) costs 7% of a CPU epoch, more of a
    GPU's (BENCHMARKS.md)."""

    def __post_init__(self) -> None:
        _require_finite(self, "optim")
        _require(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _require(
            self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}"
        )
        _require(
            0 < self.epochs <= MAX_EPOCHS,
            f"optim.epochs must be in [1, {MAX_EPOCHS}], got {self.epochs}",
        )
        _require_count(self.batch_size, "optim.batch_size")
        _require(self.step_size > 0, f"optim.step_size must be > 0, got {self.step_size}")
        _require(self.gamma > 0, f"optim.gamma must be > 0, got {self.gamma}")
        _require(
            self.grad_clip is None or self.grad_clip > 0,
            f"optim.grad_clip must be > 0 or null, got {self.grad_clip}",
        )
        _require(self.val_every > 0, f"optim.val_every must be > 0, got {self.val_every}")
        _require(
            self.checkpoint_minutes >= 0,
            f"optim.checkpoint_minutes must be >= 0, got {self.checkpoint_minutes}",
        )
        # data.image_size's least: a 4 px image trained the encoder to NaN in its first epoch.
        _require(
            self.progressive_size is None or self.progressive_size >= MIN_IMAGE_SIZE,
            f"optim.progressive_size must be >= {MIN_IMAGE_SIZE} or null, got "
            f"{self.progressive_size}",
        )
        _require(
            0 <= self.progressive_epochs < self.epochs,
            f"optim.progressive_epochs must be >= 0 and below optim.epochs ({self.epochs}), "
            f"got {self.progressive_epochs}",
        )
        _require(
            (self.progressive_size is None) == (self.progressive_epochs == 0),
            "optim.progressive_size and optim.progressive_epochs go together (a size and > 0 "
            f"epochs, or null and 0), got {self.progressive_size} and {self.progressive_epochs}",
        )


@dataclass
class LossConfig:
    """Weights of Eq. 7, L = w_2d L2D + w_3d L3D + w_physical Lphysical (paper §3.4)."""

    w_2d: float = 0.01
    """lambda_1, weight of the 2D MSE in pixels squared."""
    w_3d: float = 1.0
    """lambda_2, weight of the 3D MSE in millimetres squared."""
    w_physical: float = 10.0
    """lambda_3, weight of the physical affinity loss (Eq. 6); read only with ``physical``."""
    physical: bool = False
    """Add the physical affinity loss (the paper turns it on for the end-to-end stage)."""
    w_heatmap: float = 0.0
    """Weight of the heat-map cross-entropy (:func:`hopose.losses.heatmap_loss`, beyond the
    paper) for ``model.head: heatmap``; 0 leaves the maps supervised through their keypoints
    only. The term applies only to the heat-map head: ``model.head: linear`` makes no maps, and
    a weight above 0 with it, which would change nothing, is refused (:func:`unused_fields`), so
    a demo config, which weighs it 1,000, switches to the paper's linear head with
    ``loss.w_heatmap=0`` too, and with ``model.segmentation=false`` and
    ``loss.w_segmentation=0`` (the switch that ``synthetic/encoder.yaml`` documents)."""
    w_segmentation: float = 0.0
    """Weight of the segmentation maps' cross-entropy (:func:`hopose.losses.segmentation_loss`,
    beyond the paper) for ``model.segmentation``; every batch must then carry the maps."""
    l2d_pixels: str = "original"
    """Units of the 2D MSE: "original", pixels of the dataset's original image (the authors'
    code; λ1 = 0.01 is meant for them), or "network", pixels of the network's input image."""
    l3d_distance: str = "squared"
    """Form of the 3D terms: "squared", the mean squared coordinate error in mm² (Eq. 7's MSE,
    the paper's), or "euclidean", the mean distance per node in mm, the form of the mean-error
    metric (:func:`hopose.metrics.per_frame_error`). ``w_3d`` then weighs millimetres, not
    their squares: at an error of e mm, 2e/3 pulls as hard as 1 on the squared form."""

    def __post_init__(self) -> None:
        _require_finite(self, "loss")
        for name in LOSS_WEIGHTS:
            value = getattr(self, name)
            _require(value >= 0, f"loss.{name} must be >= 0, got {value}")
        _require(
            self.l2d_pixels in L2D_PIXELS,
            f"loss.l2d_pixels must be one of {L2D_PIXELS}, got {self.l2d_pixels!r}",
        )
        _require(
            self.l3d_distance in L3D_DISTANCES,
            f"loss.l3d_distance must be one of {L3D_DISTANCES}, got {self.l3d_distance!r}",
        )


def _require_fractions(section: Any, prefix: str, names: tuple[str, ...]) -> None:
    """Check that the fields ``names`` of the dataclass ``section`` are in [0, 1]: probabilities,
    and amounts past 1 of which mean nothing (each field's doc says why)."""
    for name in names:
        value = getattr(section, name)
        _require(0 <= value <= 1, f"{prefix}.{name} must be in [0, 1], got {value}")


@dataclass
class PerturbConfig:
    """Noise on the ground-truth 2D the lifter stage trains on (:mod:`hopose.data.perturb`), so
    the lifter learns from inputs that err the way the encoder's do. All 0 (off) in the paper's
    configs, which train the lifter on exact ground-truth 2D (§4.3)."""

    sigma: float = 0.0
    """Largest per-sample Gaussian jitter, as a fraction of the image side (drawn in [0, sigma]),
    at most 1: at a standard deviation of the whole side the 2D says nothing of the pose."""
    outlier_prob: float = 0.0
    """Probability of each keypoint being displaced as an outlier (with ``outlier_sigma``)."""
    outlier_sigma: float = 0.0
    """Standard deviation of an outlier's displacement, as a fraction of the image side, at most
    1 as ``sigma`` (with ``outlier_prob``)."""
    drop_prob: float = 0.0
    """Probability of each keypoint being replaced by its part's mean (a missed keypoint)."""

    def __post_init__(self) -> None:
        _require_finite(self, "perturb")
        _require_fractions(self, "perturb", ("sigma", "outlier_prob", "outlier_sigma", "drop_prob"))


@dataclass
class AugmentConfig:
    """Photometric and occlusion augmentation of the training images (:mod:`hopose.data.augment`);
    all 0 (off) in the paper's configs."""

    colour: float = 0.0
    """Colour jitter strength c in [0, 1]: brightness, contrast and saturation factors in
    [1 - c, 1 + c], hue shifted by up to c / 4 of a turn."""
    blur_prob: float = 0.0
    """Probability of a Gaussian blur (sigma 0.1-1.5 px)."""
    noise: float = 0.0
    """Standard deviation of additive Gaussian pixel noise, a fraction of the intensity range, at
    most 1: noise of the whole range already drowns the image (each pixel clipped to black or
    white more often than not)."""
    occlusion_prob: float = 0.0
    """Probability of an occluding patch of random colour (2-12% of the image)."""

    def __post_init__(self) -> None:
        _require_finite(self, "augment")
        # Past 1 the colour factor 1 - c would be negative, which torchvision floors at 0 without
        # a word (and past 2 the hue shift c / 4 would leave its range of half a turn).
        _require_fractions(self, "augment", ("colour", "blur_prob", "noise", "occlusion_prob"))


def as_yaml(value: object) -> str:
    """``value`` as ``--set`` writes it: true, null, resnet18."""
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def _default(section: Any, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``section``."""
    return next(item.default for item in dataclasses.fields(section) if item.name == name)


def _fields_of(section: type, prefix: str) -> tuple[str, ...]:
    """The full keys ("prefix.name") of the fields of the dataclass ``section``."""
    return tuple(f"{prefix}.{item.name}" for item in dataclasses.fields(section))


def stage_unused_fields(stage: str) -> dict[str, str]:
    """The config fields ("section.name") that the stage ``stage`` never reads, each with why,
    from what it trains and reads (:data:`hopose.stages.STAGES`): the 3D loss terms where no
    lifter is trained, the 2D ones where no encoder is, the image augmentation and progressive
    resizing where no image is read, the perturbation of ground-truth 2D where images are.

    :func:`unused_fields` adds the fields the model's settings leave unread."""
    spec = STAGES[stage]
    unused: dict[str, str] = {}
    if "lifter" not in spec.trains:
        names = ("loss.w_3d", "loss.w_physical", "loss.physical", "loss.l3d_distance")
        unused |= dict.fromkeys(names, "predicts no 3D")
    if "encoder" not in spec.trains:
        names = ("loss.w_2d", "loss.l2d_pixels", "loss.w_heatmap", "loss.w_segmentation")
        unused |= dict.fromkeys(names, "predicts no 2D")
    if spec.reads_images:
        unused |= dict.fromkeys(
            _fields_of(PerturbConfig, "perturb"), "reads images, not ground-truth 2D"
        )
    else:
        names = ("optim.progressive_size", "optim.progressive_epochs")
        unused |= dict.fromkeys((*names, *_fields_of(AugmentConfig, "augment")), "reads no images")
    return unused


def _saved(config: Mapping[str, Any], name: str) -> Any:
    """The field ``name`` ("section.key") of a config in its nested dict form; its default where
    the dict does not hold it."""
    section, _, key = name.partition(".")
    values = config.get(section)
    if isinstance(values, Mapping) and key in values:
        return values[key]
    return _default(typing.get_type_hints(TrainConfig)[section], key)


def unused_fields(config: Mapping[str, Any]) -> dict[str, str]:
    """The config fields ("section.name") that a run of ``config`` never reads, each with why:
    those of :func:`stage_unused_fields`, and those that other fields' settings leave unread:

    - ``loss.w_heatmap`` with a head that makes no heat maps (the linear one), which the loss
      then leaves out (:func:`hopose.losses.compute_losses`);
    - ``perturb.outlier_prob`` with ``perturb.outlier_sigma`` 0, which moves no outlier, and
      ``outlier_sigma`` with ``outlier_prob`` 0, which makes none.

    Not among them, though unread, so that switching a shipped config's setting stays one
    ``--set``: the self-crop fields with whole frames (``data.crop: resize``, not self-cropped,
    :meth:`hopose.self_crop.SelfCropping.of`, as an evaluation's ``metrics.json`` records), the
    physical loss's weight without the loss, and the dropout with the Graph U-Net, which has
    none (the synthetic configs set it to 0, and Table 2's row switches the lifter).

    :class:`TrainConfig` refuses them away from their defaults, where they would change
    nothing; :func:`config_from_dict` reads a saved config's at their defaults, and ``--resume``
    does not compare them (:func:`hopose.run_folder.check_resumable`).

    Args:
        config: the nested dict form of a config (:func:`config_to_dict`, a checkpoint's, one
            that lacks a field reads its default); its ``stage`` one of :data:`STAGES`.
    """
    stage = config.get("stage", TrainConfig.stage)
    head = _saved(config, "model.head")
    unused: dict[str, str] = {}
    if head != "heatmap":
        unused["loss.w_heatmap"] = f"model.head {head} makes no heat maps"
    if _saved(config, "perturb.outlier_sigma") == 0:
        unused["perturb.outlier_prob"] = "perturb.outlier_sigma is 0 (no outlier is moved)"
    if _saved(config, "perturb.outlier_prob") == 0:
        unused["perturb.outlier_sigma"] = "perturb.outlier_prob is 0 (no keypoint is an outlier)"
    # Where the stage reads no such field at all, that is the reason given.
    stage_reasons = stage_unused_fields(stage).items()
    return unused | {name: f"the {stage} stage {why}" for name, why in stage_reasons}


def _splits_of(data: DataConfig) -> tuple[tuple[str, ...], str]:
    """The splits of ``data``'s dataset (:data:`hopose.data.SYNTHETIC_SPLIT_KEYS`,
    :func:`hopose.data.check.dataset_splits`), and what they are for a message: "the fpha
    dataset's splits", followed by the options that chose them where those are not its
    default's ("with data.options.protocol=action")."""
    if data.name == "synthetic":
        return tuple(SYNTHETIC_SPLIT_KEYS), "the synthetic dataset's splits"
    splits = dataset_splits(data.name, **data.options)
    choosing = [
        f"data.options.{option}={as_yaml(value)}"
        for option, value in data.options.items()
        if option in loader_options(data.name)
        and dataset_splits(data.name, **{option: value}) != dataset_splits(data.name)
    ]
    chosen = f" with {', '.join(choosing)}" if choosing else ""
    return splits, f"the {data.name} dataset's splits{chosen}"


@dataclass
class TrainConfig:
    """One training stage (docs/conventions.md §4)."""

    stage: str = "lifter"
    """"lifter": the lifter alone on ground-truth 2D; "encoder": the image encoder alone on 2D;
    "end2end": the whole network from images (:data:`hopose.stages.STAGES`)."""
    data: DataConfig = field(default_factory=DataConfig)
    """The dataset."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """The optimiser and schedule."""
    loss: LossConfig = field(default_factory=LossConfig)
    """The loss weights."""
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    """Noise on the lifter stage's ground-truth 2D input (off by default, as in the paper)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Augmentation of the image stages' training images (off by default, as in the paper)."""
    seed: int = 0
    """Seed of weight initialisation, shuffling and dropout, in [0, 2**32) as ``data.seed``."""
    init_from: str | None = None
    """Checkpoint whose model weights start this stage (the previous stage, or pre-training)."""
    device: str = "auto"
    """"auto" (the local GPU under torchrun when there is one, else the CPU), "cpu" or "cuda"."""
    num_threads: int | None = None
    """CPU threads of torch's operators during this run; None keeps torch's default. The lifter's
    small matrices gain nothing from several threads, and busy threads of several processes on
    a shared CPU slow each other down by orders of magnitude, so the CPU demo uses 1 for it."""

    def __post_init__(self) -> None:
        _require(self.stage in STAGES, f"stage must be one of {tuple(STAGES)}, got {self.stage!r}")
        _require_seed(self.seed, "seed")
        # Generated data is defined by its sizes (a cache holds its own): without one, reading
        # a split failed only once the run had started, naming no field. Checked here, not by
        # DataConfig, whose defaults (synthetic, no sizes) a config's schema is built from.
        data = self.data
        if data.name == "synthetic" and data.cache is None:
            read = ("num_train", "num_val") if data.val_split is not None else ("num_train",)
            for name in read:
                _require(
                    getattr(data, name) is not None,
                    f"data.{name}: synthetic data needs the number of samples to generate "
                    "(or a data.cache), got null",
                )
        # What the loaders refused only once a run built its data (its folder made), naming
        # their own argument ("root:", "split:"). Only the splits a run reads: test_split is
        # read by `hopose eval` (whose --split stands in for it), and a trained checkpoint's
        # config may hold one its dataset lacks.
        _require(
            data.name not in REAL_DATASETS or data.root is not None or data.cache is not None,
            f"data.root: the {data.name} dataset needs its folder (or a data.cache), got null",
        )
        splits, which = _splits_of(data)
        for role, nullable in (("train", False), ("val", True)):
            split = getattr(data, f"{role}_split")
            _require(
                split in splits or (nullable and split is None),
                f"data.{role}_split must be one of {splits}, {which}"
                f"{', or null' if nullable else ''}, got {split!r}",
            )
            # Its records' missing joints made the first validation's error NaN, hours in.
            _require(
                split is None or hand_labelled(data.name, split),
                f"data.{role}_split: {data.name}'s {split!r} split {WITHHELD}, and training "
                "and validation read the hand's labels; it is `hopose eval`'s alone",
            )
        _require(
            self.loss.w_segmentation == 0 or self.model.segmentation,
            f"loss.w_segmentation ({self.loss.w_segmentation}) needs model.segmentation: true",
        )
        # The loss refused it only at the first step, after the run folder was made.
        _require(
            self.loss.w_segmentation == 0 or data.name == "synthetic",
            f"loss.w_segmentation ({self.loss.w_segmentation}) needs segmentation maps, which "
            f"only the synthetic renders give, got data.name {data.name!r}",
        )
        unused = unused_fields(config_to_dict(self))
        for name, why in unused.items():
            section, _, key = name.partition(".")
            default = _default(getattr(self, section), key)
            _require(
                getattr(getattr(self, section), key) == default,
                f"{name}: {why}, so it would have no effect; leave it at {as_yaml(default)}",
            )
        # A run whose every term weighs 0 trains on a loss of 0 (the segmentation maps' weight
        # counts only where the model makes them, refused above 0 otherwise; the physical
        # loss's only where it is on).
        weights = [
            f"loss.{name}"
            for name in LOSS_WEIGHTS
            if f"loss.{name}" not in unused
            and (name != "w_segmentation" or self.model.segmentation)
            and (name != "w_physical" or self.loss.physical)
        ]
        _require(
            any(getattr(self.loss, name.partition(".")[2]) > 0 for name in weights),
            f"{', '.join(weights)}: every loss term of the {self.stage} stage weighs 0, so it "
            "would train on a loss of 0; set one above 0",
        )
        # Else refused by the loss only at the first training step, after the data is read.
        _require(
            not self.loss.physical or self.model.lifter_variant == "full",
            "loss.physical needs model.lifter_variant: full (the physical loss is between the "
            f"lifted hand and box), got {self.model.lifter_variant!r}",
        )
        _require(
            self.model.head != "heatmap" or self.data.image_size % HEATMAP_TILE == 0,
            f"data.image_size must be a multiple of {HEATMAP_TILE} with model.head heatmap (its "
            f"stride-4 and stride-8 cells tile the image), got {self.data.image_size}",
        )
        _require(
            self.optim.progressive_size is None
            or self.optim.progressive_size < self.data.image_size,
            f"optim.progressive_size ({self.optim.progressive_size}) must be below "
            f"data.image_size ({self.data.image_size})",
        )
        _require(
            self.optim.progressive_size is None
            or self.model.head != "heatmap"
            or self.optim.progressive_size % HEATMAP_TILE == 0,
            f"optim.progressive_size must be a multiple of {HEATMAP_TILE} with model.head heatmap "
            f"(its stride-4 and stride-8 cells tile the image), got {self.optim.progressive_size}",
        )
        _require_path(self.init_from, "init_from", "a checkpoint file")
        _require(
            self.num_threads is None or self.num_threads > 0,
            f"num_threads must be > 0 or null, got {self.num_threads}",
        )
        check_device(self.device, "device", TRAIN_DEVICES, present=False)


def _check_sections(schema: DictConfig, values: Mapping[str, Any], prefix: str = "") -> None:
    """A section (a nested dataclass) or a mapping field (``data.options``) given as a scalar or
    a list: OmegaConf's merge error would not name its key (for a list, a bare TypeError)."""
    for key, value in values.items():
        node = schema.get(key) if key in schema else None
        if isinstance(node, DictConfig):
            _require(isinstance(value, Mapping), f"{prefix}{key} must be a mapping, got {value!r}")
            # A mapping field's own keys are free (the dataset's options): only a section's are
            # the schema's.
            if OmegaConf.get_type(node) is not dict:
                _check_sections(node, value, f"{prefix}{key}.")


# The words OmegaConf reads as a bool field's value from a string, in any case (its
# BooleanNode); it reads a string of digits as the integer's truth, which is refused as the
# integer is.
_BOOL_WORDS: tuple[str, ...] = ("true", "false", "yes", "no", "on", "off", "y", "n")


def _require_bools(section: type, values: Mapping[str, Any], prefix: str = "") -> None:
    """A bool field of the dataclass ``section`` given a number, a quoted one, or a list...:
    OmegaConf's merge would turn any integer into a bool (``optim.amp=2`` into True, and
    ``optim.amp="'2'"`` too) without a word."""
    types = typing.get_type_hints(section)
    for key, value in values.items():
        kind = types.get(key)
        if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
            _require_bools(kind, value, f"{prefix}{key}.")
        # None is left to OmegaConf, whose own check names the key (the field is no Optional).
        elif kind is bool and value is not None:
            _require(
                isinstance(value, bool)
                or (isinstance(value, str) and value.lower() in _BOOL_WORDS),
                f"{prefix}{key} must be true or false, got {value!r}",
            )


# The number forms that YAML 1.1, which OmegaConf's loader follows, reads otherwise than they
# look (and YAML 1.2 otherwise than YAML 1.1), each with why: 010 is 8 (YAML 1.2: 10), 1:30 is
# 90 and 0b101 is 5 (YAML 1.2: text). 1_000, 0x10, 1e-3 and .5 read as they look.
_YAML11_NUMBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[-+]?0[0-9_]+"), "a leading zero is octal"),
    (re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"), "a colon counts in base 60"),
    (re.compile(r"[-+]?0b[01_]+"), "0b is binary"),
)


def _field_kinds(kind: Any) -> set[Any]:
    """The types a field annotated ``kind`` holds, None left out: {int} for ``int | None``."""
    union = typing.get_origin(kind) in (typing.Union, UnionType)
    return set(typing.get_args(kind) if union else (kind,)) - {NoneType}


def _mapping_items(node: yaml.MappingNode) -> dict[str, yaml.Node]:
    """Each key of a YAML mapping with the node its value is read from, merge keys (``<<: *base``)
    followed as PyYAML's loader merges them: a key written in the mapping stands over a merged
    one, a later merge key over an earlier, and of one key's merged mappings (``<<: [*a, *b]``)
    the first that holds it."""
    items: dict[str, yaml.Node] = {}
    merged: list[yaml.Node] = []
    for key_node, item in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            merged[:0] = item.value if isinstance(item, yaml.SequenceNode) else [item]
        elif isinstance(key_node.value, str):
            items[key_node.value] = item
    for source in merged:
        if isinstance(source, yaml.MappingNode):
            for key, item in _mapping_items(source).items():
                items.setdefault(key, item)
    return items


def _untyped(kind: Any) -> bool:
    """Whether a field of type ``kind`` says nothing of what its values are: ``Any``, or a
    mapping of free keys (``data.options``)."""
    return kind is Any or typing.get_origin(kind) is dict


def _holds_fields(kind: Any) -> bool:
    """Whether a value of type ``kind`` is a mapping whose keys :func:`_field_kind` types: a
    section's dataclass, or an untyped mapping."""
    return dataclasses.is_dataclass(kind) or _untyped(kind)


def _field_kind(kind: Any, key: str) -> Any:
    """The type of the field ``key`` of ``kind`` (:func:`_holds_fields`): a dataclass's field's
    (None for a key it lacks), ``Any`` for a free key."""
    return typing.get_type_hints(kind).get(key) if dataclasses.is_dataclass(kind) else Any


def _require_as_written(
    kind: Any, node: yaml.Node | None, value: Any, name: str, written: str | None = None
) -> None:
    """Refuse an unquoted YAML value that OmegaConf's YAML 1.1 loader reads otherwise than it
    is written, where the field's type says so: a number field given one of
    :data:`_YAML11_NUMBERS` that reads as a number (``optim.epochs: 010`` is 8), a text field
    given text that reads as something else (``data.root: 0755`` is "493", ``yes`` "True",
    ``1e5`` "100000.0", ``/run #2`` "/run", " #" starting a comment).

    Quoted and block scalars are taken as written. Where no type says what a value is
    (:func:`_untyped`: the free keys of ``data.options``, ``hopose eval --option``), each value's
    own type stands for it, through its mappings and lists: ``focal_scale: [1, 1:30]`` is
    refused as ``focal_scale[1]``.

    Args:
        kind: the field's type (a section's dataclass at the top).
        node: the value's node as :func:`yaml.compose` reads it, in parallel with ``value``.
        value: the value as OmegaConf's loader reads it.
        name: the field's full key ("" at the top).
        written: the value's text where it is more than the node's (a ``--set`` value, whose
            comment the node leaves out); else the node's.
    """
    if isinstance(node, yaml.MappingNode):
        if not _holds_fields(kind) or not isinstance(value, Mapping):
            return
        for key, item in _mapping_items(node).items():
            field = _field_kind(kind, key)
            # An unknown key is no field: OmegaConf names it.
            if field is not None and key in value:
                _require_as_written(field, item, value[key], f"{name}.{key}".lstrip("."))
        return
    if _untyped(kind):
        if isinstance(node, yaml.SequenceNode) and isinstance(value, list):
            for index, (item, element) in enumerate(zip(node.value, value, strict=True)):
                _require_as_written(Any, item, element, f"{name}[{index}]")
        else:
            _require_as_written(type(value), node, value, name, written)
        return
    # A plain scalar's style is None with PyYAML's loader, "" with libyaml's.
    if not isinstance(node, yaml.ScalarNode) or node.style:
        return
    text = node.value
    kinds = _field_kinds(kind)
    if kinds and kinds <= {int, float} and type(value) in (int, float):
        for form, why in _YAML11_NUMBERS:
            if form.fullmatch(text):
                # The number it reads as, and the decimal one it looks like (010: 8 or 10).
                digits = text.replace("_", "")
                looks = [int(digits)] if digits.lstrip("+-").isdigit() else []
                readings = " or ".join(str(item) for item in dict.fromkeys([value, *looks]))
                raise ConfigError(
                    f"{name}: {text} reads as {value} in YAML 1.1 ({why}); write {readings}"
                )
    written = text if written is None else written
    if kinds == {str} and value is not None:
        _require(
            str(value) == written,
            f"{name}: {written} reads as {str(value)!r} in YAML 1.1; quote it to keep the text",
        )


def _require_text_as_written(kind: Any, text: str, value: Any, name: str) -> None:
    """:func:`_require_as_written` for a value given as command-line text (``--set``'s,
    ``--option``'s), which may also be all comment: ``#2`` reads as null."""
    node = yaml.compose(text, Loader=_YAML_LOADER)
    _require(
        node is not None or not text.strip(),
        f"{name}: {text.strip()} reads as null in YAML 1.1 (# starts a comment); quote it to "
        "keep the text",
    )
    # The whole text only where a comment may have cut the node's short: it also holds what
    # the node's value rightly leaves out (a tag such as !!str).
    _require_as_written(kind, node, value, name, text.strip() if "#" in text else None)


def _require_override_as_written(section: type, item: str, values: Mapping[str, Any]) -> None:
    """:func:`_require_as_written` for the ``--set`` override ``item`` ("key=text"), ``values``
    its value as OmegaConf's loader reads it (nested by the key's parts), ``section`` the
    dataclass its key starts in."""
    key, _, text = item.partition("=")
    key, kind, value = key.strip(), section, values
    for part in key.split("."):
        if not _holds_fields(kind) or not isinstance(value, Mapping):
            return
        kind, value = _field_kind(kind, part), value.get(part)
    _require_text_as_written(kind, text, value, key)


# Fields that configs once held, each with what to set instead: OmegaConf names the unknown key,
# not why an older config or command line held it.
_REMOVED_KEYS: dict[str, str] = {
    "model.image_size": "the field was removed: set data.image_size, the network image's side",
}


def _one_line(error: OmegaConfBaseException) -> str:
    """OmegaConf's error as one line led by the full key it concerns."""
    message = str(error.msg or error).strip().splitlines()[0]
    if isinstance(error, ConfigKeyError | ConfigAttributeError):
        hint = _REMOVED_KEYS.get(error.full_key)
        return f"unknown key {error.full_key}: {message}" + (f" ({hint})" if hint else "")
    return f"{error.full_key}: {message}" if error.full_key else message


# The loader OmegaConf builds its own on (libyaml's where installed): a syntax error found by
# load_config's first reading is worded as OmegaConf's would be.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_problem(error: yaml.YAMLError) -> str:
    """What PyYAML found wrong, on one line: without its multi-line position marks."""
    return getattr(error, "problem", None) or str(error).splitlines()[0]


def override_value(text: str) -> Any:
    """The value of a dot-list override ``key=text`` as ``--set`` reads it (OmegaConf's YAML
    loader, through the same ``from_dotlist``), for options given apart from a config, such as
    ``hopose eval --option``: PyYAML's own loader would read ``1e0`` as a string.

    Raises:
        yaml.YAMLError: ``text`` is not YAML.
    """
    return OmegaConf.to_container(OmegaConf.from_dotlist([f"value={text}"]))["value"]


def option_value(key: str, text: str) -> Any:
    """The value of ``--option key=text`` (``hopose eval``'s dataset options), read as
    :func:`override_value` reads it and refused where YAML 1.1 reads it otherwise than it is
    written (:func:`_require_as_written`). A dataset's options declare no type, so each value's
    own stands for it, in lists too: 010 (8) and 1:30 (90) are refused whatever the option, as
    is text that a " #" cuts short or that is all comment (``#2``, null).

    Raises:
        yaml.YAMLError: ``text`` is not YAML.
        ConfigError: one line naming ``key``.
    """
    value = override_value(text)
    _require_text_as_written(Any, text, value, key)
    return value


def _overrides_named(message: str, overrides: Sequence[str]) -> str | None:
    """The overrides in force (a key's last) whose key ``message`` names, or whose key is a
    section above a field it names (``data.options`` of ``data.options.protocol``), each as
    "--set KEY=VALUE", space-separated; None where it names none."""
    last = {item.partition("=")[0].strip(): item for item in overrides}
    named = [
        f"--set {item}"
        for key, item in last.items()
        if re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", message)
    ]
    return " ".join(named) or None


def _to_config(
    schema: DictConfig,
    values: Mapping[str, Any],
    overrides: Sequence[str],
    source: str | None = None,
):
    """Merge YAML ``values`` (read from ``source``, a file, or None) and dot-list ``overrides``
    into the schema, then build and validate the dataclasses (their ``__post_init__``).

    A refused value is blamed on where it came from: the file, or the ``--set KEY=VALUE`` that
    set it, which stands over the file's and which the message would otherwise pin on the file.
    An override with nothing after ``=`` is refused: null is written ``null``.
    A value refused once merged (a range, or fields that disagree) is blamed on the overrides
    whose keys the message names, else on the file."""
    for item in overrides:
        key, sep, _ = item.partition("=")
        _require(bool(sep) and bool(key.strip()), f"--set {item}: must look like key=value")
    section = OmegaConf.get_type(schema)
    try:
        _check_sections(schema, values)
        _require_bools(section, values)
        merged = OmegaConf.merge(schema, values)
    except ConfigError as error:
        raise ConfigError(led_by(source, str(error))) from None
    except OmegaConfBaseException as error:
        raise ConfigError(led_by(source, _one_line(error))) from None
    for item in overrides:
        try:
            # Read on its own first for its bool fields, which the merge would set from any
            # number, and for a value YAML 1.1 reads otherwise than it is written.
            read = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
            _require_bools(section, read)
            _require_override_as_written(section, item, read)
            merged.merge_with_dotlist([item])
            # An empty value reads as null: `--set init_from=$PREV` with PREV unset trained from
            # scratch without a word (a field that cannot be null refused it above).
            key, _, value = item.partition("=")
            key = key.strip()
            _require(value.strip() != "", f"{key}: empty value; write {key}=null for none")
        except yaml.YAMLError as error:
            key = item.partition("=")[0].strip()
            message = f"{key}: value is not YAML: {yaml_problem(error)}"
            raise ConfigError(f"--set {item}: {message}") from None
        except ConfigError as error:
            raise ConfigError(f"--set {item}: {error}") from None
        except OmegaConfBaseException as error:
            raise ConfigError(f"--set {item}: {_one_line(error)}") from None
    try:
        return OmegaConf.to_object(merged)
    except (ConfigError, OmegaConfBaseException) as error:
        message = str(error) if isinstance(error, ConfigError) else _one_line(error)
        raise ConfigError(led_by(_overrides_named(message, overrides) or source, message)) from None


def saved_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """A config saved by this or an earlier hopose (a checkpoint's nested dict) in today's
    fields; its sections are copies, ``values`` is left as it is.

    A checkpoint written while the network image's side had two homes holds it as
    ``model.image_size`` too (then required equal to ``data.image_size``): that copy is dropped,
    and one that differs, which no run of hopose wrote, is refused.

    Raises:
        ConfigError: ``values`` is not a mapping, or its two image sides differ.
    """
    _require(
        isinstance(values, Mapping), f"the config must be a mapping, got {type(values).__name__}"
    )
    values = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in values.items()
    }
    # model.image_size was removed, data.image_size being the one home of the side: without
    # this step every checkpoint trained before would fail to load on an unknown key.
    model = values.get("model")
    if isinstance(model, dict) and "image_size" in model:
        side, image_size = model.pop("image_size"), _saved(values, "data.image_size")
        _require(
            side == image_size,
            f"model.image_size ({side}) differs from data.image_size ({image_size}); the field "
            "was removed and data.image_size is the network image's side",
        )
    return values


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested mapping (a checkpoint's), read in
    today's fields (:func:`saved_config`).

    The fields the run never read (:func:`unused_fields`) are read at their defaults: a
    checkpoint written before they were refused may hold one set to no effect, and must still
    load; nothing reads them from a trained model's config."""
    values = saved_config(values)
    stage = values.get("stage", TrainConfig.stage)
    if isinstance(stage, str) and stage in STAGES:
        for name in unused_fields(values):
            section, _, key = name.partition(".")
            if isinstance(values.get(section), dict):
                values[section].pop(key, None)
    return _to_config(OmegaConf.structured(TrainConfig), values, ())


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The nested plain-dict form of ``cfg``, as written to YAML and checkpoints."""
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: TrainConfig) -> str:
    """``cfg`` as a YAML file that :func:`load_config` reads back as ``cfg``: OmegaConf's
    dumper quotes any text its YAML 1.1 loader would read as a number or a boolean, which
    PyYAML's leaves bare where PyYAML reads it as text (``data.root: '1e5'``)."""
    return OmegaConf.to_yaml(config_to_dict(cfg))


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config, apply ``--set`` overrides and validate.

    Args:
        path: a YAML file whose keys mirror :class:`TrainConfig` (missing keys keep defaults).
        overrides: OmegaConf dot-list ``key=value`` strings, e.g. ``["optim.lr=1e-4",
            "data.num_train=64", "data.options.protocol=hope"]``; values are parsed as YAML.

    Raises:
        ConfigError: one line naming the file, or the ``--set KEY=VALUE`` overrides that set
            the value (:func:`_to_config`), and the full key when a key is unknown or a value
            is invalid or unquoted where YAML 1.1 reads it otherwise than it is written
            (:func:`_require_as_written`: ``010`` is 8), or the file and line of a YAML syntax
            error, or a file not in UTF-8, empty, or whose top level is not a mapping.
        FileNotFoundError: when ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        # The document's structure first: OmegaConf reads a lone word as a key without a value
        # and refuses a lone number naming neither the file nor the line.
        root = yaml.compose(text, Loader=_YAML_LOADER)
        values = OmegaConf.create(text) if isinstance(root, yaml.MappingNode) else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {yaml_problem(error)}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    if root is None or (values is not None and not values):
        # Every field at its default would train the default stage on the default data.
        raise ConfigError(f"{path}: empty config (no stage, data or model is set)")
    if values is None:
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise ConfigError(f"{path}: the top level must be a mapping of config keys, got {kind}")
    values = OmegaConf.to_container(values)
    try:
        _require_as_written(TrainConfig, root, values, "")
    except ConfigError as error:
        raise ConfigError(led_by(str(path), str(error))) from None
    return _to_config(OmegaConf.structured(TrainConfig), values, overrides, str(path))
