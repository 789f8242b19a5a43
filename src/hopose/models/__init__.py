"""Networks: image encoder, graph convolutions, 2D -> 3D lifters and the full model.

:func:`build_model` and :func:`build_lifter` are the only places that map a model config
(:class:`hopose.config.ModelConfig`: ``backbone``, ``backbone_weights``, ``backbone_stages``,
``head``, ``lifter``, ``lifter_variant``, ``hidden``, ``dropout``, ``modulated``,
``segmentation``) to the keyword-only constructors.
Set the lifter's input and output statistics from the training set before training it
(:meth:`Lifter.set_input_stats`, :func:`input_stats`, :meth:`Lifter.set_output_stats`,
:func:`output_stats`; see :mod:`hopose.models.lifter`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopose.models.encoder import BACKBONES, RESIDUAL_STAGES, ImageEncoder
from hopose.models.graph_conv import GraphConv, GraphStack, normalize_adjacency
from hopose.models.graph_unet import GraphResample, GraphUNet
from hopose.models.heads import HEADS, HeatmapHead, sample_features, soft_argmax
from hopose.models.hopose_net import HoposeNet
from hopose.models.lifter import (
    VARIANT_PARTS,
    CheckpointVersionError,
    ContextLifter,
    Lifter,
    check_lifter_state,
    input_stats,
    output_stats,
    viewing_rays,
)

if TYPE_CHECKING:
    from hopose.config import ModelConfig

LIFTERS: tuple[str, ...] = ("context", "graph_unet")

__all__ = [
    "BACKBONES",
    "HEADS",
    "LIFTERS",
    "RESIDUAL_STAGES",
    "VARIANT_PARTS",
    "CheckpointVersionError",
    "ContextLifter",
    "GraphConv",
    "GraphResample",
    "GraphStack",
    "GraphUNet",
    "HeatmapHead",
    "HoposeNet",
    "ImageEncoder",
    "Lifter",
    "build_lifter",
    "build_model",
    "check_lifter_state",
    "input_stats",
    "normalize_adjacency",
    "output_stats",
    "sample_features",
    "soft_argmax",
    "viewing_rays",
]


def build_lifter(cfg: ModelConfig) -> Lifter:
    """The lifter a model config asks for: ``cfg.lifter`` "context" or "graph_unet"."""
    if cfg.lifter == "context":
        return ContextLifter(
            hidden=cfg.hidden,
            dropout=cfg.dropout,
            variant=cfg.lifter_variant,
            modulated=cfg.modulated,
        )
    if cfg.lifter == "graph_unet":
        # HOPE-Net's fixed layer sizes; hidden, dropout, lifter_variant and modulated do not apply.
        return GraphUNet()
    raise ValueError(f"model.lifter must be one of {LIFTERS}, got {cfg.lifter!r}")


def build_model(cfg: ModelConfig) -> HoposeNet:
    """The full network a model config asks for (encoder from ``cfg.backbone``, lifter above)."""
    encoder = ImageEncoder(
        backbone=cfg.backbone,
        weights_path=cfg.backbone_weights,
        hidden=cfg.hidden,
        head=cfg.head,
        stages=cfg.backbone_stages,
        modulated=cfg.modulated,
        segmentation=cfg.segmentation,
    )
    return HoposeNet(encoder=encoder, lifter=build_lifter(cfg))
