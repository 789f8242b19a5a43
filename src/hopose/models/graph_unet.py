"""HOPE-Net's Adaptive Graph U-Net lifter, the baseline of the paper's Table 2.

Written from Doosti et al., "HOPE-Net: A Graph-Based Model for Hand-Object Pose Estimation"
(CVPR 2020), §3.2, with the layer sizes of the authors' release: the 29 nodes (hand joints and
box corners together, no distinction) are pooled 29 -> 15 -> 7 -> 4 -> 2 -> 1 while the node
width grows 2 -> 4 -> 8 -> 16 -> 32 -> 64; two fully connected layers (64 -> 20 -> 64) act on
the single remaining node; the decoder unpools back level by level, concatenating the
encoder's features of the same level (U-Net skip connections), and the last graph convolution
outputs 3D.

Pooling and unpooling are "adaptive": a learned linear map from the nodes of one level to the
nodes of the next (:class:`GraphResample`). Each level learns one adjacency, read by its
encoder's and its decoder's graph convolution, as in the release, starting with no edges: every
entry at the learned adjacencies' 1e-3 floor (:mod:`hopose.models.graph_conv`), so that Ã
starts near the identity but not at it (the release starts at the identity), each row of an
N-node level with (N - 1) 1e-3 / (1 + N 1e-3) of its weight off the diagonal (2.7% at 29
nodes). Like
every lifter here (:mod:`hopose.models.lifter`), it reads each keypoint's normalised viewing
ray (``in_mean`` / ``in_std``; HOPE-Net read pixels) and predicts a normalised pose scaled by
``out_mean`` / ``out_std``. It has one 3D estimate, returned as both ``kp3d_init`` and
``kp3d`` so that the 3D loss carries the same total weight (two terms) as for
:class:`ContextLifter`.

Shapes are jaxtyping annotations, checked at run time in the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from hopose.models.graph_conv import GraphConv
from hopose.models.lifter import Lifter
from hopose.skeleton import NUM_NODES

HOPE_NODE_COUNTS: tuple[int, ...] = (NUM_NODES, 15, 7, 4, 2, 1)
HOPE_WIDTHS: tuple[int, ...] = (4, 8, 16, 32, 64)
HOPE_BOTTLENECK = 20


class GraphResample(nn.Module):
    """Adaptive graph pooling or unpooling: a learned linear map between node sets.

    Args:
        in_nodes: number of input nodes.
        out_nodes: number of output nodes.
    """

    def __init__(self, *, in_nodes: int, out_nodes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_nodes, out_nodes)

    def forward(self, x: Float[Tensor, "B in_nodes D"]) -> Float[Tensor, "B out_nodes D"]:
        """Each output node mixes all input nodes."""
        return self.linear(x.transpose(1, 2)).transpose(1, 2)


def _graph_conv(
    nodes: int, in_features: int, out_features: int, activation: bool = True
) -> GraphConv:
    """A graph convolution over ``nodes`` nodes whose adjacency is learned from no edges (every
    entry at the floor of :mod:`hopose.models.graph_conv`)."""
    return GraphConv(
        in_features=in_features,
        out_features=out_features,
        adjacency=torch.zeros(nodes, nodes),
        activation=activation,
    )


def _refuse_separate_adjacencies(
    module: nn.Module, state: dict, prefix: str, *args: object
) -> None:
    """A load_state_dict pre-hook: a state dict whose encoder and decoder adjacencies of a level
    differ (a hopose before 2026-12-05 learned one per layer) would load without an error, the
    decoder's overwriting the encoder's in the one shared Parameter, and predict wrongly."""
    error_msgs = args[-1]
    for k in range(len(HOPE_WIDTHS)):
        down, up = state.get(f"{prefix}down.{k}.adj"), state.get(f"{prefix}up.{k}.adj")
        if down is not None and up is not None and not torch.equal(down, up):
            error_msgs.append(
                f"{prefix}up.{k}.adj differs from {prefix}down.{k}.adj: a Graph U-Net of a "
                "hopose before 2026-12-05 (an adjacency per layer, not per level); retrain it"
            )
            return


class GraphUNet(Lifter):
    """Adaptive Graph U-Net over the 29 nodes (HOPE-Net), at the release's sizes:
    :data:`HOPE_NODE_COUNTS` nodes per level, :data:`HOPE_WIDTHS` node widths of the encoder's
    levels, a :data:`HOPE_BOTTLENECK`-wide fully connected layer at the bottom."""

    def __init__(self) -> None:
        super().__init__(parts=("hand", "object"))
        node_counts, widths = HOPE_NODE_COUNTS, HOPE_WIDTHS
        levels = range(len(widths))
        in_widths = (2, *widths[:-1])
        self.down = nn.ModuleList(
            _graph_conv(node_counts[k], in_widths[k], widths[k]) for k in levels
        )
        self.pool = nn.ModuleList(
            GraphResample(in_nodes=node_counts[k], out_nodes=node_counts[k + 1]) for k in levels
        )
        self.squeeze = nn.Linear(widths[-1], HOPE_BOTTLENECK)
        self.expand = nn.Linear(HOPE_BOTTLENECK, widths[-1])
        self.unpool = nn.ModuleList(
            GraphResample(in_nodes=node_counts[k + 1], out_nodes=node_counts[k]) for k in levels
        )
        # Decoder level k reads the skip features and the unpooled features (widths[k] each)
        # and outputs the width of the level above, 3D at the top.
        out_widths = (3, *widths[:-1])
        self.up = nn.ModuleList(
            _graph_conv(node_counts[k], 2 * widths[k], out_widths[k], activation=k > 0)
            for k in levels
        )
        # The release learns one adjacency per level, read by the encoder's and the decoder's
        # graph convolution of that level: one Parameter here too, updated by both.
        for down, up in zip(self.down, self.up, strict=True):
            up.adj = down.adj
        self.register_load_state_dict_pre_hook(_refuse_separate_adjacencies)

    def forward(
        self, kp2d: Float[Tensor, "B 29 2"], K: Float[Tensor, "B 3 3"]
    ) -> dict[str, Float[Tensor, "B 29 3"]]:
        """Lift 2D keypoints to 3D.

        Args:
            kp2d: pixels of the network image.
            K: that image's intrinsics.

        Returns:
            ``kp3d_init`` and ``kp3d``: the same estimate in mm.
        """
        x = self.normalise_input(kp2d, K)
        skips = []
        for conv, pool in zip(self.down, self.pool, strict=True):
            x = conv(x)  # (B, n_k, widths[k])
            skips.append(x)
            x = pool(x)  # (B, n_{k+1}, widths[k])
        x = F.relu(self.expand(F.relu(self.squeeze(x))))  # (B, 1, widths[-1])
        for k in reversed(range(len(self.down))):
            x = self.up[k](torch.cat([skips[k], self.unpool[k](x)], dim=-1))
        pose = self.to_mm(x)
        return {"kp3d_init": pose, "kp3d": pose}
