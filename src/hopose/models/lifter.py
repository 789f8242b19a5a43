"""2D -> 3D lifting: the context-aware graph module (paper §3.2) and what every lifter shares.

Every lifter maps ``kp2d`` (B, 29, 2), pixels of an ``image_size`` × ``image_size`` image, to
``kp3d_init`` and ``kp3d`` (B, 29, 3), absolute camera-frame millimetres, for the 21 hand joints
then the 8 box corners. Its attribute ``parts`` names the parts whose nodes it predicts
("hand", "object"); the other nodes are filler that losses and metrics ignore.

Conditioning: the network sees the 2D input as ``2 * kp2d / image_size - 1`` (the image spans
[-1, 1]) and predicts a normalised pose z, returned as ``out_mean + out_std * z`` mm. The
buffers ``out_mean`` (29, 3) and ``out_std`` (3,) default to a pose 400 mm in front of the camera
with a 100 mm spread; set them from the training set with :meth:`Lifter.set_output_stats`
(e.g. ``lifter.set_output_stats(*output_stats(train_poses))``) before training. They live in
the state dict, so a checkpoint carries them.

Context-aware lifter (:class:`ContextLifter`), with the authors' released widths (SPEC §3):

1. Sub-graphs: the hand (21 nodes, kinematic tree) and the object (8 nodes, 12 box edges)
   each pass through 3 graph convolutions 4 -> hidden -> hidden -> 3: the third gives each
   node an initial (normalised) 3D estimate, the second its features. Each node reads its
   normalised 2D and its offset from its part's 2D centroid (:func:`part_input`).
2. Merged graph: each node's features and initial 3D (hidden + 3) pass through 6 graph
   convolutions over all the sub-graphs' nodes, hidden wide, dropout between them, whose
   adjacencies start with no edges (``A + I`` = identity) so that the hand–object connections
   are learned. The result is a residual added to the initial 3D.

All adjacencies are learned (:class:`~hopose.models.graph_conv.GraphConv`). The ablation
variants of the paper's Table 2 keep the same depth over fewer nodes: "hand" runs the hand
sub-graph and a merged graph over its 21 nodes only, "object" the same for the 8 corners, and
the nodes of the missing part are returned as ``out_mean`` (the mean pose).

Why the centroid offset: with a symmetric non-negative adjacency (SPEC §3) every graph
convolution mixes the nodes' features with non-negative weights and one shared W, a smoothing
that cannot form differences between nodes, such as the bone vectors and the 2D extent that
set a part's shape and depth; the network could only approximate them through its ReLUs. The
offset from the centroid is such a difference, computed once from the input. On the synthetic
GT-2D lifter run (``configs/synthetic/lifter.yaml``, test split) it brought the full graph from
40.7 / 56.8 mm (hand / object) to 23.6 / 31.5 mm, ahead of the Graph U-Net's 30.2 / 47.1 mm,
whose unconstrained pooling maps form such differences themselves (docs/training.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hopose.models.graph_conv import GraphConv, GraphStack
from hopose.skeleton import NUM_NODES, PART_NODES, box_adjacency, hand_adjacency

# The parts each ablation variant of the paper's Table 2 predicts.
VARIANT_PARTS: dict[str, tuple[str, ...]] = {
    "full": ("hand", "object"),
    "hand": ("hand",),
    "object": ("object",),
}
_PART_ADJACENCY = {"hand": hand_adjacency, "object": box_adjacency}
DEFAULT_DEPTH_MM = 400.0
DEFAULT_STD_MM = 100.0
MERGED_LAYERS = 6
# Per-node input of a sub-graph: normalised 2D and its offset from the part's centroid.
NODE_INPUT = 4


def output_stats(poses: Tensor) -> tuple[Tensor, Tensor]:
    """Per-node mean and per-axis spread of training poses, for :meth:`Lifter.set_output_stats`.

    Args:
        poses: (M, 29, 3) poses in mm (hand joints then corners).

    Returns:
        mean (29, 3) and std (3,): the standard deviation of ``poses - mean`` along each axis,
        pooled over poses and nodes.
    """
    mean = poses.mean(dim=0)
    std = (poses - mean).reshape(-1, 3).std(dim=0)
    return mean, std


def part_input(x: Tensor) -> Tensor:
    """Sub-graph input: each node's 2D and its offset from the part's 2D centroid.

    Args:
        x: (B, n, 2) normalised 2D of one part's n nodes.

    Returns:
        (B, n, 4) ``[x, x - mean_n(x)]`` per node.
    """
    return torch.cat([x, x - x.mean(dim=1, keepdim=True)], dim=-1)


class Lifter(nn.Module):
    """What every lifter shares: ``parts``, 2D input scaling and the 3D output statistics.

    Args:
        image_size: side in pixels of the square image whose keypoints the lifter receives.
        parts: the parts whose nodes the lifter predicts, a subset of ("hand", "object").
    """

    def __init__(self, *, image_size: int, parts: tuple[str, ...]) -> None:
        super().__init__()
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = image_size
        self.parts = parts
        default_mean = torch.tensor([0.0, 0.0, DEFAULT_DEPTH_MM]).expand(NUM_NODES, 3)
        self.register_buffer("out_mean", default_mean.clone())
        self.register_buffer("out_std", torch.full((3,), DEFAULT_STD_MM))

    @torch.no_grad()
    def set_output_stats(self, mean: Tensor, std: Tensor | float) -> None:
        """Set the pose the network's normalised output is relative to.

        Args:
            mean: (29, 3) mean pose in mm.
            std: (3,) per-axis or scalar spread in mm, positive.
        """
        mean = torch.as_tensor(mean, dtype=self.out_mean.dtype, device=self.out_mean.device)
        std = torch.as_tensor(std, dtype=self.out_std.dtype, device=self.out_std.device)
        if mean.shape != (NUM_NODES, 3):
            raise ValueError(f"mean must have shape ({NUM_NODES}, 3), got {tuple(mean.shape)}")
        if std.shape not in ((), (3,)):
            raise ValueError(f"std must be a scalar or have shape (3,), got {tuple(std.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError("mean must be finite and std finite and positive")
        self.out_mean.copy_(mean)
        self.out_std.copy_(std.expand(3))

    def normalise_2d(self, kp2d: Tensor) -> Tensor:
        """(B, 29, 2) pixels -> (B, 29, 2) with the image spanning [-1, 1]."""
        if kp2d.ndim != 3 or kp2d.shape[1:] != (NUM_NODES, 2):
            raise ValueError(f"kp2d must be (B, {NUM_NODES}, 2), got {tuple(kp2d.shape)}")
        return kp2d * (2 / self.image_size) - 1

    def to_mm(self, pose: Tensor) -> Tensor:
        """(B, 29, 3) normalised pose -> (B, 29, 3) mm."""
        return self.out_mean + self.out_std * pose


class ContextLifter(Lifter):
    """Context-aware graph module: sub-graphs, then a merged graph (paper §3.2, Fig. 2).

    Args:
        hidden: node feature width (128 in the authors' code).
        dropout: dropout between the merged graph's layers (0.3 in the authors' code).
        variant: "full", "hand" (hand sub-graph only) or "object" (object sub-graph only).
        image_size: side in pixels of the image the 2D keypoints refer to.
    """

    def __init__(self, *, hidden: int, dropout: float, variant: str, image_size: int) -> None:
        if variant not in VARIANT_PARTS:
            raise ValueError(f"variant must be one of {tuple(VARIANT_PARTS)}, got {variant!r}")
        super().__init__(image_size=image_size, parts=VARIANT_PARTS[variant])
        self.variant = variant
        self.features = nn.ModuleDict(
            {
                part: GraphStack(
                    widths=(NODE_INPUT, hidden, hidden),
                    adjacency=_PART_ADJACENCY[part](),
                    activate_last=True,
                )
                for part in self.parts
            }
        )
        self.initial = nn.ModuleDict(
            {
                part: GraphConv(
                    in_features=hidden,
                    out_features=3,
                    adjacency=_PART_ADJACENCY[part](),
                    learn_adjacency=True,
                    activation=False,
                )
                for part in self.parts
            }
        )
        nodes = [node for part in self.parts for node in PART_NODES[part]]
        self.register_buffer("nodes", torch.tensor(nodes), persistent=False)
        self.merged = GraphStack(
            widths=(hidden + 3,) + (hidden,) * (MERGED_LAYERS - 1) + (3,),
            adjacency=torch.zeros(len(nodes), len(nodes)),
            dropout=dropout,
        )

    def forward(self, kp2d: Tensor) -> dict[str, Tensor]:
        """Lift 2D keypoints to 3D.

        Args:
            kp2d: (B, 29, 2) pixels.

        Returns:
            ``kp3d_init`` (B, 29, 3) from the sub-graphs and ``kp3d`` (B, 29, 3) refined by the
            merged graph, in mm; nodes outside ``parts`` hold ``out_mean``.
        """
        x = self.normalise_2d(kp2d)
        features, initial = [], []
        for part in self.parts:
            nodes = PART_NODES[part]
            part_2d = part_input(x[:, nodes.start : nodes.stop])  # (B, n, 4)
            feature = self.features[part](part_2d)  # (B, n, hidden)
            features.append(feature)
            initial.append(self.initial[part](feature))  # (B, n, 3)
        init = torch.cat(initial, dim=1)  # (B, n_parts, 3), the parts' nodes in order
        refined = init + self.merged(torch.cat([torch.cat(features, dim=1), init], dim=-1))
        # Nodes of a missing part stay at 0 in normalised coordinates, i.e. at out_mean.
        blank = x.new_zeros(x.shape[0], NUM_NODES, 3)
        return {
            "kp3d_init": self.to_mm(blank.index_copy(1, self.nodes, init)),
            "kp3d": self.to_mm(blank.index_copy(1, self.nodes, refined)),
        }
