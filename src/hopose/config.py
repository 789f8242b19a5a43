"""Typed training configuration: dataclasses loaded from YAML, overridable from the command line.

One config file describes one training stage (SPEC §4): ``stage`` says which part of the network
is trained, ``data``, ``model``, ``optim`` and ``loss`` say how. Pre-training then fine-tuning,
and the three stages of one dataset, are chained through ``init_from`` (a checkpoint whose model
weights start the run), so a recipe is a list of files, not code.

``load_config(path, overrides)`` reads a YAML file, applies dotted ``key=value`` overrides
(``optim.lr=1e-4``, ``data.options.grasp=power``), converts every value to its field's type and
validates it; a wrong key or value raises an error that names the key and the file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STAGES = ("lifter", "encoder", "end2end")


class ConfigError(ValueError):
    """A config file or override names an unknown key or holds a bad value."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass
class DataConfig:
    """Which dataset to read and how its images are prepared (SPEC §6)."""

    name: str = "synthetic"
    """Dataset name for ``hopose.data.build_dataset``: synthetic, fpha, obman, ho3d, dexycb."""
    root: str | None = None
    """Dataset folder on disk; None for synthetic data."""
    cache: str | None = None
    """Optional cache folder of pre-processed samples (``hopose.data.cache``)."""
    train_split: str = "train"
    """Split trained on."""
    val_split: str = "val"
    """Split validated on after every epoch (the best checkpoint is chosen on it)."""
    test_split: str = "test"
    """Split ``hopose eval`` reports by default."""
    image_size: int = 224
    """Side of the square network input in pixels (paper: 224)."""
    crop: str = "resize"
    """"resize" the whole frame to a square (paper, HOPE-Net), or a crop around hand and object."""
    num_train: int | None = None
    """Number of training samples (synthetic: how many to generate; real data: a cap)."""
    num_val: int | None = None
    """Number of validation samples, as ``num_train``."""
    num_test: int | None = None
    """Number of test samples, as ``num_train``."""
    seed: int = 0
    """Seed of the synthetic generator; each split derives its own stream from it."""
    num_workers: int = 0
    """DataLoader worker processes."""
    in_memory: bool = False
    """Read (or render) every sample once and keep them in memory, for data that is slower to
    produce than to train on, like the rendered synthetic images."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments passed to the dataset's constructor."""

    def __post_init__(self) -> None:
        _require(self.image_size > 0, f"data.image_size must be > 0, got {self.image_size}")
        _require(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        for name in ("num_train", "num_val", "num_test"):
            value = getattr(self, name)
            _require(value is None or value > 0, f"data.{name} must be > 0 or null, got {value}")


@dataclass
class ModelConfig:
    """The network (SPEC §3); ``hopose.models.build_model`` maps it to constructor arguments."""

    backbone: str = "resnet50"
    """torchvision ResNet of the image encoder: resnet18, resnet34 or resnet50 (paper)."""
    backbone_weights: str | None = None
    """Local file of pretrained backbone weights; None starts from random initialisation."""
    lifter: str = "context"
    """2D-to-3D lifter: "context" (the paper's context-aware graph) or "graph_unet" (HOPE-Net)."""
    lifter_variant: str = "full"
    """Sub-graphs of the context lifter (paper Table 2): "full", "hand" or "object"."""
    hidden: int = 128
    """Hidden width of the graph layers."""
    dropout: float = 0.3
    """Dropout between the merged graph layers."""
    image_size: int = 224
    """Side of the square network input in pixels; must equal ``data.image_size``."""

    def __post_init__(self) -> None:
        _require(
            self.lifter in ("context", "graph_unet"),
            f"model.lifter must be 'context' or 'graph_unet', got {self.lifter!r}",
        )
        _require(
            self.lifter_variant in ("full", "hand", "object"),
            f"model.lifter_variant must be 'full', 'hand' or 'object', got {self.lifter_variant!r}",
        )
        _require(self.hidden > 0, f"model.hidden must be > 0, got {self.hidden}")
        _require(0.0 <= self.dropout < 1.0, f"model.dropout must be in [0, 1), got {self.dropout}")
        _require(self.image_size > 0, f"model.image_size must be > 0, got {self.image_size}")


@dataclass
class OptimConfig:
    """Adam with weight decay and a step learning-rate schedule (paper §4.3)."""

    lr: float = 1e-3
    """Initial learning rate."""
    weight_decay: float = 0.01
    """Adam weight decay (the authors' released code: 0.01)."""
    epochs: int = 1
    """Number of epochs (passes over the training split)."""
    batch_size: int = 256
    """Samples per step on each process (paper: 256)."""
    step_size: int = 1
    """Epochs between learning-rate decays."""
    gamma: float = 1.0
    """Factor the learning rate is multiplied by every ``step_size`` epochs."""
    amp: bool = False
    """Mixed precision with ``torch.autocast`` (float16 on GPU, bfloat16 on CPU)."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value; None does not clip."""

    def __post_init__(self) -> None:
        _require(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _require(
            self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}"
        )
        _require(self.epochs > 0, f"optim.epochs must be > 0, got {self.epochs}")
        _require(self.batch_size > 0, f"optim.batch_size must be > 0, got {self.batch_size}")
        _require(self.step_size > 0, f"optim.step_size must be > 0, got {self.step_size}")
        _require(self.gamma > 0, f"optim.gamma must be > 0, got {self.gamma}")
        _require(
            self.grad_clip is None or self.grad_clip > 0,
            f"optim.grad_clip must be > 0 or null, got {self.grad_clip}",
        )


@dataclass
class LossConfig:
    """Weights of Eq. 7, L = w_2d L2D + w_3d L3D + w_physical Lphysical (paper §3.4)."""

    w_2d: float = 0.01
    """lambda_1, weight of the 2D MSE in pixels squared."""
    w_3d: float = 1.0
    """lambda_2, weight of the 3D MSE in millimetres squared."""
    w_physical: float = 10.0
    """lambda_3, weight of the physical affinity loss (Eq. 6)."""
    physical: bool = False
    """Add the physical affinity loss (the paper turns it on for the end-to-end stage)."""
    l2d_pixels: str = "original"
    """Units of the 2D MSE: "original", pixels of the dataset's original image (the authors'
    code; λ1 = 0.01 is meant for them), or "network", pixels of the network's input image."""

    def __post_init__(self) -> None:
        for name in ("w_2d", "w_3d", "w_physical"):
            value = getattr(self, name)
            _require(value >= 0, f"loss.{name} must be >= 0, got {value}")
        _require(
            self.l2d_pixels in ("original", "network"),
            f"loss.l2d_pixels must be 'original' or 'network', got {self.l2d_pixels!r}",
        )


@dataclass
class TrainConfig:
    """One training stage (SPEC §4)."""

    stage: str = "lifter"
    """"lifter": the lifter alone on ground-truth 2D; "encoder": the image encoder alone on 2D;
    "end2end": the whole network from images."""
    data: DataConfig = field(default_factory=DataConfig)
    """The dataset."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """The optimiser and schedule."""
    loss: LossConfig = field(default_factory=LossConfig)
    """The loss weights."""
    seed: int = 0
    """Seed of weight initialisation, shuffling and dropout."""
    init_from: str | None = None
    """Checkpoint whose model weights start this stage (the previous stage, or pre-training)."""
    device: str = "auto"
    """"auto" (the local GPU under torchrun when there is one, else the CPU), "cpu" or "cuda"."""
    num_threads: int | None = None
    """CPU threads of torch's operators during this run; None keeps torch's default. The lifter's
    small matrices gain nothing from several threads, and busy threads of several processes on
    a shared CPU slow each other down by orders of magnitude, so the CPU demo uses 1 for it."""

    def __post_init__(self) -> None:
        _require(self.stage in STAGES, f"stage must be one of {STAGES}, got {self.stage!r}")
        _require(
            self.model.image_size == self.data.image_size,
            f"model.image_size ({self.model.image_size}) must equal data.image_size "
            f"({self.data.image_size})",
        )
        _require(
            self.num_threads is None or self.num_threads > 0,
            f"num_threads must be > 0 or null, got {self.num_threads}",
        )
        _require(
            self.device in ("auto", "cpu", "cuda"),
            f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}",
        )


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert ``value`` (from YAML or an override) to ``annotation``, or raise naming ``key``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none")):
            _require(len(options) < len(typing.get_args(annotation)), f"{key} may not be null")
            return None
        return _coerce(value, options[0], key)
    if dataclasses.is_dataclass(annotation):
        _require(isinstance(value, Mapping), f"{key} must be a mapping, got {value!r}")
        return _build(annotation, value, key + ".")
    if origin is dict or annotation is dict:
        _require(isinstance(value, Mapping), f"{key} must be a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        _require(isinstance(value, bool), f"{key} must be true or false, got {value!r}")
        return value
    if annotation in (int, float):
        # YAML reads 1e-3 (no dot) as a string, so numbers written that way are parsed here.
        try:
            number = annotation(value) if isinstance(value, str) else value
        except ValueError:
            raise ConfigError(f"{key} must be {annotation.__name__}, got {value!r}") from None
        ok = isinstance(number, (int, float)) and not isinstance(number, bool)
        if annotation is int:
            ok = ok and float(number).is_integer()
        _require(ok, f"{key} must be {annotation.__name__}, got {value!r}")
        return annotation(number)
    if annotation is str:
        _require(isinstance(value, str), f"{key} must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """Instantiate dataclass ``cls`` from a nested mapping, converting and checking every key."""
    types_ = _field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        known = ", ".join(prefix + k for k in types_)
        raise ConfigError(f"unknown key {prefix}{unknown[0]} (known: {known})")
    kwargs = {name: _coerce(value, types_[name], prefix + name) for name, value in values.items()}
    return cls(**kwargs)


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested mapping (e.g. a checkpoint's)."""
    return _build(TrainConfig, values)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The nested plain-dict form of ``cfg``, as written to YAML and checkpoints."""
    return dataclasses.asdict(cfg)


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set dotted ``key=value`` overrides into a nested dict; values are parsed as YAML."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        _require(bool(sep) and bool(key), f"override {item!r} must look like key=value")
        node = values
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            _require(isinstance(child, dict), f"override {item!r}: {part} is not a section")
            node = child
        node[leaf] = yaml.safe_load(raw)
    return values


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config, apply ``--set`` overrides and validate.

    Args:
        path: a YAML file whose keys mirror :class:`TrainConfig` (missing keys keep defaults).
        overrides: dotted ``key=value`` strings, e.g. ``["optim.lr=1e-4", "data.num_train=64"]``.

    Raises:
        ConfigError: naming the key and the file when a key is unknown or a value is invalid.
        FileNotFoundError: when ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return config_from_dict(apply_overrides(values, overrides))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
