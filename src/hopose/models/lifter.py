"""2D -> 3D lifting: the context-aware graph module (paper §3.2) and what every lifter shares.

Every lifter maps ``kp2d`` (B, 29, 2), pixels of the network image, and ``K`` (B, 3, 3), that
image's intrinsics, to ``kp3d_init`` and ``kp3d`` (B, 29, 3), absolute camera-frame millimetres,
for the 21 hand joints then the 8 box corners, in the lifter's dtype whatever the input's
(:meth:`Lifter.normalise_input`). Its attribute ``parts`` names the parts whose nodes it
predicts ("hand", "object"); the other nodes are filler that losses and metrics ignore.

Camera: a lifter reads each keypoint as its viewing ray, the normalised camera coordinates
``(x/z, y/z)`` of ``K⁻¹ [u, v, 1]`` (:func:`viewing_rays`), never its pixels. The 3D pose
determines the rays whatever the camera, the resize or the crop, so one lifter serves FPHA's
squashed 1920×1080 frames, ObMan's 256 px renders, a square crop or a user's photo. ``K`` may be
any affine camera (last row ``[0, 0, 1]``, with skew or rotation), as a rotated or scaled crop
``A`` of an image makes of it (``K' = A K``); it is inverted per sample. For the paper's setting
(FPHA, the whole frame resized) K is the same for every frame, so the rays are a fixed affine
function of the pixels and the lifter sees the same information as one reading pixels.

Conditioning: the network sees ``(rays - in_mean) / in_std`` and predicts a normalised pose z,
returned as ``out_mean + out_std * z`` mm. The buffers ``in_mean``, ``in_std`` (2,) default to
rays centred on the optical axis with a 0.3 spread, ``out_mean`` (29, 3) and ``out_std`` (3,) to
a pose 400 mm in front of the camera with a 100 mm spread; set them from the training set with
:meth:`Lifter.set_input_stats` and :meth:`Lifter.set_output_stats` (e.g.
``lifter.set_input_stats(*input_stats(rays))``, ``lifter.set_output_stats(*output_stats(poses))``)
before training. They live in the state dict, so a checkpoint carries them; a state dict without
the input statistics was written for the former pixel input and is refused
(:func:`check_lifter_state`).

Context-aware lifter (:class:`ContextLifter`), with the authors' released widths
(docs/training.md):

1. Sub-graphs: the hand (21 nodes, kinematic tree) and the object (8 nodes, 12 box edges)
   each pass through 3 graph convolutions 4 -> hidden -> hidden -> 3: the third gives each
   node an initial (normalised) 3D estimate, the second its features. Each node reads its
   normalised ray and its offset from its part's ray centroid (:func:`part_input`).
2. Merged graph: each node's features and initial 3D (hidden + 3) pass through 6 graph
   convolutions over all the sub-graphs' nodes, hidden wide, dropout between them, whose
   adjacencies start with no edges, every entry at the learned adjacencies' 1e-3 floor, so
   that the hand–object connections are learned: Ã starts near the identity, not at it, each
   row of the 29-node graph with 2.7% of its weight spread over the other 28 nodes
   (:mod:`hopose.models.graph_conv`). The result is a residual added to the initial 3D.

All adjacencies are learned (:class:`~hopose.models.graph_conv.GraphConv`). The ablation
variants of the paper's Table 2 keep the same depth over fewer nodes: "hand" runs the hand
sub-graph and a merged graph over its 21 nodes only, "object" the same for the 8 corners, and
the nodes of the missing part are returned as ``out_mean`` (the mean pose).

Why the centroid offset: with a symmetric non-negative adjacency (docs/training.md) every graph
convolution mixes the nodes' features with non-negative weights and one shared W, a smoothing
that cannot form differences between nodes, such as the bone vectors and the angular extent that
set a part's shape and depth; the network could only approximate them through its ReLUs. The
offset from the centroid is such a difference, computed once from the input. On the synthetic
GT-2D lifter run (``synthetic/lifter`` config, test split) it brought the full graph from
40.7 / 56.8 mm (hand / object) to 23.6 / 31.5 mm with pixel input, ahead of the Graph U-Net's
30.2 / 47.1 mm, whose unconstrained pooling maps form such differences themselves
(docs/training.md, which also has the numbers with rays).

Beyond the paper, ``modulated`` gives every graph convolution a per-node weight modulation
(Zou & Tang, ICCV 2021; :class:`~hopose.models.graph_conv.GraphConv`), with which a layer can
form such differences itself. On the demo's stage-1 run (``synthetic/lifter``, rays, 400 test
frames, ground-truth 2D) it brought 25.3 / 32.9 mm to 23.2 / 31.6 (docs/from_pixels.md, "Per-node
weight modulation").

Shapes are jaxtyping annotations (B frames, M training poses), checked at run time in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from jaxtyping import Float
from torch import Tensor, nn

from hopose.geometry import autocast_off, unproject_points
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
# Default ray spread: FPHA's frame spans x/z in about [-0.67, 0.70], y/z in [-0.38, 0.39].
DEFAULT_RAY_STD = 0.3
MERGED_LAYERS = 6
# Per-node input of a sub-graph: normalised ray and its offset from the part's centroid.
NODE_INPUT = 4
# The buffers a lifter state dict written since lifters read rays holds (and older ones lack).
INPUT_STAT_KEYS: tuple[str, ...] = ("in_mean", "in_std")


class CheckpointVersionError(ValueError):
    """A saved network was written by an incompatible version of hopose; the message says what
    to do."""


def viewing_rays(
    kp2d: Float[Tensor, "B 29 2"], K: Float[Tensor, "B 3 3"]
) -> Float[Tensor, "B 29 2"]:
    """Normalised camera coordinates ``(x/z, y/z)`` of ``K⁻¹ [u, v, 1]`` for each keypoint.

    Computed in at least float32 and outside autocast: ``u / fx - cx / fx`` cancels most of its
    digits near the principal point, which half precision cannot afford.

    Args:
        kp2d: pixels.
        K: intrinsics of the image ``kp2d`` refers to; any invertible affine camera.
    """
    if kp2d.ndim != 3 or kp2d.shape[1:] != (NUM_NODES, 2):
        raise ValueError(f"kp2d must be (B, {NUM_NODES}, 2), got {tuple(kp2d.shape)}")
    if K.shape != (kp2d.shape[0], 3, 3):
        raise ValueError(f"K must be ({kp2d.shape[0]}, 3, 3), got {tuple(K.shape)}")
    dtype = torch.promote_types(kp2d.dtype, torch.float32)
    with autocast_off(kp2d):
        pixels = kp2d.to(dtype)
        rays = unproject_points(pixels, pixels.new_ones(pixels.shape[:-1]), K.to(dtype))
        return rays[..., :2] / rays[..., 2:]  # z is 1 for an affine K, up to rounding


def output_stats(
    poses: Float[Tensor, "M 29 3"],
) -> tuple[Float[Tensor, "29 3"], Float[Tensor, " 3"]]:
    """Per-node mean and per-axis spread of training poses, for :meth:`Lifter.set_output_stats`.

    Args:
        poses: poses in mm (hand joints then corners).

    Returns:
        The mean pose and std: the standard deviation of ``poses - mean`` along each axis,
        pooled over poses and nodes; :data:`DEFAULT_STD_MM` along an axis where the poses do not
        differ (one training pose, as in a check that a run can overfit a sample).
    """
    mean = poses.mean(dim=0)
    std = (poses - mean).reshape(-1, 3).std(dim=0)
    return mean, torch.where(std > 0, std, torch.full_like(std, DEFAULT_STD_MM))


def input_stats(rays: Float[Tensor, "M 29 2"]) -> tuple[Float[Tensor, " 2"], Float[Tensor, " 2"]]:
    """Mean and spread of training rays per axis, for :meth:`Lifter.set_input_stats`.

    Args:
        rays: viewing rays (:func:`viewing_rays`; for ground truth, ``X[:2] / X[2]`` of the 3D
            keypoints, the same numbers).

    Returns:
        Mean and std, pooled over poses and nodes.
    """
    flat = rays.reshape(-1, 2)
    return flat.mean(dim=0), flat.std(dim=0)


def part_input(x: Float[Tensor, "B n 2"]) -> Float[Tensor, "B n 4"]:
    """Sub-graph input: each node's normalised ray and its offset from the part's centroid.

    Args:
        x: normalised rays of one part's n nodes.

    Returns:
        ``[x, x - mean_n(x)]`` per node.
    """
    return torch.cat([x, x - x.mean(dim=1, keepdim=True)], dim=-1)


def check_lifter_state(state: Mapping[str, Tensor], prefix: str = "") -> None:
    """Refuse a lifter state dict written for the former pixel input (before lifters read rays).

    Such a lifter read ``2 * kp2d / image_size - 1``; its weights mean nothing for rays, and
    loading it without its missing input statistics would silently give wrong 3D.

    Args:
        state: a state dict holding a lifter's entries under ``prefix`` (e.g. ``"lifter."`` in
            a whole network's).
        prefix: where the lifter's entries start.

    Raises:
        CheckpointVersionError: the lifter's entries lack :data:`INPUT_STAT_KEYS`.
    """
    if prefix + "out_mean" in state and any(prefix + k not in state for k in INPUT_STAT_KEYS):
        raise CheckpointVersionError(
            f"the saved lifter has no input statistics ({prefix}in_mean, {prefix}in_std): it was "
            "written by hopose 0.1.0 before lifters read camera rays instead of pixels and cannot "
            "be used; retrain it from the lifter stage (config <data>/lifter)"
        )


def _refuse_pixel_lifters(module, state, prefix, *_args) -> None:
    """``load_state_dict`` pre-hook: :func:`check_lifter_state` wherever a lifter is loaded."""
    check_lifter_state(state, prefix)


class Lifter(nn.Module):
    """What every lifter shares: ``parts``, the ray input and its statistics, the 3D output
    statistics.

    Args:
        parts: the parts whose nodes the lifter predicts, a subset of ("hand", "object").
    """

    def __init__(self, *, parts: tuple[str, ...]) -> None:
        super().__init__()
        self.parts = parts
        self.register_buffer("in_mean", torch.zeros(2))
        self.register_buffer("in_std", torch.full((2,), DEFAULT_RAY_STD))
        default_mean = torch.tensor([0.0, 0.0, DEFAULT_DEPTH_MM]).expand(NUM_NODES, 3)
        self.register_buffer("out_mean", default_mean.clone())
        self.register_buffer("out_std", torch.full((3,), DEFAULT_STD_MM))
        self.register_load_state_dict_pre_hook(_refuse_pixel_lifters)

    @torch.no_grad()
    def set_input_stats(self, mean: Tensor, std: Tensor | float) -> None:
        """Set the ray statistics the network's input is normalised with.

        Args:
            mean: (2,) mean ray (x/z, y/z).
            std: (2,) per-axis or scalar spread, positive.
        """
        _set_stats(self.in_mean, self.in_std, mean, std)

    @torch.no_grad()
    def set_output_stats(self, mean: Tensor, std: Tensor | float) -> None:
        """Set the pose the network's normalised output is relative to.

        Args:
            mean: (29, 3) mean pose in mm.
            std: (3,) per-axis or scalar spread in mm, positive.
        """
        _set_stats(self.out_mean, self.out_std, mean, std)

    def set_stats_from_poses(self, poses: Tensor) -> None:
        """Set the input and output statistics from training poses: the ground-truth rays are
        the 3D keypoints' (x/z, y/z), so the poses alone give both.

        Args:
            poses: (M, 29, 3) poses in mm, in front of the camera (z > 0).
        """
        self.set_input_stats(*input_stats(poses[..., :2] / poses[..., 2:]))
        self.set_output_stats(*output_stats(poses))

    def normalise_input(
        self, kp2d: Float[Tensor, "B 29 2"], K: Float[Tensor, "B 3 3"]
    ) -> Float[Tensor, "B 29 2"]:
        """Pixels and their image's K to normalised rays, in the dtype of the lifter's buffers
        (its layers'): the rays are computed and normalised in at least float32
        (:func:`viewing_rays`), then cast, so float64 input reaches a float32 lifter and a
        bfloat16 lifter gets bfloat16; under autocast the buffers, hence the rays, stay
        float32."""
        rays = viewing_rays(kp2d, K)
        normalised = (rays - self.in_mean.to(rays.dtype)) / self.in_std.to(rays.dtype)
        return normalised.to(self.in_mean.dtype)

    def to_mm(self, pose: Float[Tensor, "B 29 3"]) -> Float[Tensor, "B 29 3"]:
        """A normalised pose to mm."""
        return self.out_mean + self.out_std * pose


def _set_stats(mean_buffer: Tensor, std_buffer: Tensor, mean, std) -> None:
    """Copy a checked mean (shape of ``mean_buffer``) and spread (scalar or per axis) in place."""
    mean = torch.as_tensor(mean, dtype=mean_buffer.dtype, device=mean_buffer.device)
    std = torch.as_tensor(std, dtype=std_buffer.dtype, device=std_buffer.device)
    if mean.shape != mean_buffer.shape:
        raise ValueError(
            f"mean must have shape {tuple(mean_buffer.shape)}, got {tuple(mean.shape)}"
        )
    if std.shape not in ((), std_buffer.shape):
        raise ValueError(
            f"std must be a scalar or have shape {tuple(std_buffer.shape)}, got {tuple(std.shape)}"
        )
    if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
        raise ValueError("mean must be finite and std finite and positive")
    mean_buffer.copy_(mean)
    std_buffer.copy_(std.expand(std_buffer.shape))


class ContextLifter(Lifter):
    """Context-aware graph module: sub-graphs, then a merged graph (paper §3.2, Fig. 2).

    Args:
        hidden: node feature width (128 in the authors' code).
        dropout: dropout between the merged graph's layers (0.3 in the authors' code).
        variant: "full", "hand" (hand sub-graph only) or "object" (object sub-graph only).
        modulated: every graph convolution learns a per-node weight modulation
            (:class:`~hopose.models.graph_conv.GraphConv`; beyond the paper).
    """

    def __init__(
        self, *, hidden: int, dropout: float, variant: str, modulated: bool = False
    ) -> None:
        if variant not in VARIANT_PARTS:
            raise ValueError(f"variant must be one of {tuple(VARIANT_PARTS)}, got {variant!r}")
        super().__init__(parts=VARIANT_PARTS[variant])
        self.variant = variant
        self.features = nn.ModuleDict(
            {
                part: GraphStack(
                    widths=(NODE_INPUT, hidden, hidden),
                    adjacency=_PART_ADJACENCY[part](),
                    activate_last=True,
                    modulate=modulated,
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
                    activation=False,
                    modulate=modulated,
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
            modulate=modulated,
        )

    def forward(
        self, kp2d: Float[Tensor, "B 29 2"], K: Float[Tensor, "B 3 3"]
    ) -> dict[str, Float[Tensor, "B 29 3"]]:
        """Lift 2D keypoints to 3D.

        Args:
            kp2d: pixels of the network image.
            K: that image's intrinsics.

        Returns:
            ``kp3d_init`` from the sub-graphs and ``kp3d`` refined by the merged graph, in mm;
            nodes outside ``parts`` hold ``out_mean``.
        """
        x = self.normalise_input(kp2d, K)
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
