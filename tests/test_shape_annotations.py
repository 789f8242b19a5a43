"""The annotation checks of tests/shape_checking.py are on in every checked module: a call with a
wrong trailing size raises jaxtyping's TypeCheckError (without the import hook these calls
fail otherwise, or, for palm_centre, mean_distance and square_around, return a wrong-shaped
answer silently)."""

from __future__ import annotations

import pkgutil
import re
import warnings
from collections.abc import Callable

import pytest
import torch
from jaxtyping import TypeCheckError

from hopose import (
    crop,
    geometry,
    grasp_completion,
    losses,
    metrics,
    models,
    physics,
    plausibility,
    refine,
    self_crop,
    skeleton,
)
from hopose.models import encoder, graph_conv, graph_unet, heads, hopose_net, lifter
from shape_checking import CHECKED_MODULES

K = torch.eye(3)[None]  # (1, 3, 3)
HAND, BOX = torch.zeros(2, 21, 3), torch.zeros(2, 8, 3)


def _wrong_adjacency(monkeypatch: pytest.MonkeyPatch) -> None:
    # A return value checked: the hand's adjacency made (21, 22) instead of (21, 21).
    monkeypatch.setattr(skeleton, "_adjacency", lambda n, edges: torch.zeros(n, n + 1))
    skeleton.hand_adjacency()


def _encoder() -> encoder.ImageEncoder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a random backbone
        return encoder.ImageEncoder(backbone="resnet18", weights_path=None, hidden=8)


# For each checked module, one call with a wrong trailing size (or a wrong return).
CASES: dict[str, Callable[[pytest.MonkeyPatch], object]] = {
    "hopose.geometry": lambda _: geometry.project_points(torch.zeros(2, 5, 2), K),
    "hopose.skeleton": _wrong_adjacency,
    "hopose.physics": lambda _: physics.contact_points(HAND, BOX[..., :2]),
    "hopose.plausibility": lambda _: plausibility.penetration_depth(HAND[..., :2], BOX),
    "hopose.grasp_completion": lambda _: grasp_completion.palm_centre(HAND[..., :2]),
    "hopose.refine": lambda _: refine.signed_box_distance(torch.zeros(2, 5, 2), BOX),
    "hopose.metrics": lambda _: metrics.mean_distance(torch.zeros(2, 5, 3), torch.zeros(2, 5, 1)),
    "hopose.losses": lambda _: losses.heatmap_loss(
        torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 3), (16, 16)
    ),
    "hopose.models.encoder": lambda _: _encoder()(torch.zeros(1, 4, 32, 32)),
    "hopose.models.graph_conv": lambda _: graph_conv.normalize_adjacency(torch.zeros(3, 4)),
    "hopose.models.graph_unet": lambda _: graph_unet.GraphUNet()(torch.zeros(1, 29, 3), K),
    "hopose.models.heads": lambda _: heads.sample_features(
        torch.zeros(1, 4, 8, 8), torch.zeros(1, 29, 3)
    ),
    "hopose.models.hopose_net": lambda _: hopose_net.HoposeNet(
        encoder=_encoder(), lifter=graph_unet.GraphUNet()
    )(torch.zeros(1, 3, 32, 32), torch.eye(4)[None, :3]),
    "hopose.models.lifter": lambda _: lifter.viewing_rays(torch.zeros(1, 29, 3), K),
    # 3D points: the square's centre came out with 3 coordinates.
    "hopose.crop": lambda _: crop.square_around(torch.zeros(2, 5, 3), 0.1),
    # Two squares' centres and three sides.
    "hopose.self_crop": lambda _: self_crop.CropViews().affines(
        torch.zeros(2, 2), torch.ones(3), 32
    ),
}


@pytest.mark.parametrize("module", sorted(CASES))
def test_a_wrong_shape_is_caught_in_every_checked_module(module, monkeypatch):
    # Caught at the module's own function, not at a callee in another module that the wrong
    # shape reached unchecked: the message names the function whose check failed.
    with pytest.raises(TypeCheckError, match=rf"of {re.escape(module)}\.\w"):
        CASES[module](monkeypatch)


def test_every_checked_module_has_a_case():
    """Each module of :data:`CHECKED_MODULES` (the models package's too) has its case above;
    the package ``hopose.models`` itself only gathers its modules' names."""
    found = {name for name in CHECKED_MODULES if name != "hopose.models"}
    found |= {f"{models.__name__}.{info.name}" for info in pkgutil.iter_modules(models.__path__)}
    assert set(CASES) == found
