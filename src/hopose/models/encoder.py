"""Image encoder: ResNet features -> initial 2D keypoints -> GCN-refined 2D (paper §3.2).

A torchvision ResNet (18, 34 or 50; 50 in the paper) without its classifier gives a global
feature g (512 or 2048-D). A head predicts the initial 2D keypoints of all 29 nodes (21 hand
joints, then 8 box corners): the paper's linear layer on g (``head="linear"``) or an integral
heat-map head on the stride-4 feature pyramid (``head="heatmap"``, :mod:`hopose.models.heads`).
Each node's feature is its initial (x, y) concatenated with g (2050-D for ResNet50) and, with the
heat-map head, with the pyramid's feature sampled at its initial keypoint; a 3-layer GCN with a
learned 29×29 adjacency predicts a correction added to the initial keypoints.

Choices the paper leaves open:

- Keypoints are predicted in coordinates normalised to [-1, 1] over the input image's width
  and height (-1 the left/top border, +1 the right/bottom) and returned in pixels of that image,
  whose centres are at integer coordinates (:func:`hopose.models.heads.to_pixels`).
- The refinement GCN predicts a residual on the initial keypoints, so it starts near the
  linear head's estimate. Its widths are (2 + F) -> hidden -> hidden -> 2 and its adjacency
  starts from the hand and box graphs of :mod:`hopose.skeleton` (hand–object links learned).
  Every node reads the same g, and a layer with one shared weight and a non-negative adjacency
  moves them alike; ``modulated`` (beyond the paper) gives each node its own scaling of each
  layer's outputs (:class:`~hopose.models.graph_conv.GraphConv`), as in the lifter.
- Images are (B, 3, H, W) uint8 (scaled by 1/255) or float in [0, 1], normalised with the
  ImageNet mean and std that torchvision's ResNet weights expect.
- ``stages`` (``model.backbone_stages``) may keep only the ResNet's first residual stages: with
  3, the global feature pools layer3 (stride 16; 256-D for ResNet18) and the heat-map head
  fuses the stride-4 to 16 maps. At 64 px, ResNet18's layer4 sees 2 × 2 maps but holds three
  quarters of its weights; without it a CPU trains an image in about 0.6 of the time at the
  same accuracy per image (docs/training.md, BENCHMARKS.md). The paper's is the whole network.
- ``segmentation`` (beyond the paper) adds a 1 × 1 convolution on the heat-map head's fused
  stride-4 features that classifies what each cell shows: background, hand, or which face of the
  box (:data:`hopose.skeleton.SEGMENTATION_CLASSES`). Trained on the synthetic renders' maps
  (:func:`hopose.losses.segmentation_loss`), it makes the features that place the keypoints
  tell the hand from the box and the box's faces from each other (docs/from_pixels.md,
  "Segmentation maps"); nothing downstream reads its output.
- Pretrained weights come only from a local file (no downloads): a state dict saved from the
  torchvision model of the same architecture (``torch.save(resnet50().state_dict(), path)``);
  its classifier (``fc.*``) is dropped. Without a file the ResNet starts from random
  initialisation and a warning says so.

Shapes are jaxtyping annotations, checked at run time in the tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torchvision
from jaxtyping import Float, UInt8
from torch import Tensor, nn

from hopose.files import read_torch_file
from hopose.models.graph_conv import GraphStack
from hopose.models.heads import HEADS, HeatmapHead, sample_features, to_pixels
from hopose.skeleton import NUM_NODES, NUM_SEGMENTATION_CLASSES, hand_object_adjacency

BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50")
# The ResNet's residual stages, at strides 4, 8, 16 and 32 (not hopose.stages' training stages).
RESIDUAL_STAGES: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")
# The numbers of them the encoder may keep, 1 to all, as its errors and the config's list them
# ("1, 2, 3 or 4").
STAGE_COUNTS_TEXT = (
    f"{', '.join(map(str, range(1, len(RESIDUAL_STAGES))))} or {len(RESIDUAL_STAGES)}"
)
# Channels of the heat-map head's fused feature map (read by the GCN nodes too).
HEATMAP_WIDTH = 64
RANDOM_BACKBONE_WARNING = "no backbone weights file given"
"""How the warning of a randomly initialised backbone begins (:func:`random_backbone_expected`)."""
# What the networks read: RGB images, uint8 or float in [0, 1].
ImageBatch = UInt8[Tensor, "B 3 H W"] | Float[Tensor, "B 3 H W"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _headless_resnet(backbone: str) -> tuple[nn.Module, int]:
    """A randomly initialised torchvision ResNet without its classifier, and the width F of
    its pooled feature."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    trunk = getattr(torchvision.models, backbone)(weights=None)
    width = trunk.fc.in_features
    trunk.fc = nn.Identity()
    return trunk, width


def check_backbone_weights(backbone: str, path: str | Path) -> None:
    """Refuse a weights file that ``backbone`` cannot load, as :class:`ImageEncoder` would, for
    a caller that reads it before anything costly (a training run, before its data).

    Raises:
        ValueError: not a state dict, or one of another architecture.
    """
    _load_backbone_weights(_headless_resnet(backbone)[0], Path(path))


def _load_backbone_weights(trunk: nn.Module, path: Path) -> None:
    """Load a torchvision ResNet state dict from ``path`` into ``trunk`` (classifier dropped)."""
    state = read_torch_file(path, "state dict")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    try:
        missing, unexpected = trunk.load_state_dict(state, strict=False)
    except RuntimeError as error:  # tensors of the wrong shape: another architecture
        raise ValueError(f"{path}: weights do not fit the backbone: {error}") from error
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit the backbone: missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}"
        )


@contextmanager
def random_backbone_expected() -> Iterator[None]:
    """Silence the random-backbone warning where the backbone's start does not matter: its
    weights are replaced (a checkpoint's: a loaded model, a resumed run, ``init_from``'s trained
    encoder) or never used (the lifter stage)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=RANDOM_BACKBONE_WARNING)
        yield


class ImageEncoder(nn.Module):
    """ResNet + initial 2D head + 3-layer refinement GCN predicting 2D keypoints in pixels.

    Args:
        backbone: "resnet18", "resnet34" or "resnet50".
        weights_path: local torchvision state dict for the backbone, or None for random
            initialisation (with a warning).
        hidden: width of the refinement GCN's hidden layers.
        head: "linear" (the paper's) or "heatmap" (integral heat maps; the GCN nodes also read
            the local feature at their keypoint).
        stages: residual stages kept, 1-4 (4, the whole ResNet, is the paper's); the global
            feature pools the last one, of width F / 2^(4 - stages).
        modulated: the refinement GCN's layers learn a per-node weight modulation
            (:class:`~hopose.models.graph_conv.GraphConv`; beyond the paper).
        segmentation: also predict segmentation maps (needs ``head="heatmap"``; beyond the
            paper).
    """

    def __init__(
        self,
        *,
        backbone: str,
        weights_path: str | Path | None,
        hidden: int,
        head: str = "linear",
        stages: int = 4,
        modulated: bool = False,
        segmentation: bool = False,
    ) -> None:
        super().__init__()
        if stages not in range(1, len(RESIDUAL_STAGES) + 1):
            raise ValueError(f"stages must be {STAGE_COUNTS_TEXT}, got {stages}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if segmentation and head != "heatmap":
            raise ValueError(f"segmentation needs the heat-map head's features, got head {head!r}")
        if weights_path is not None and not Path(weights_path).is_file():
            raise FileNotFoundError(f"backbone weights file not found: {weights_path}")
        trunk, width = _headless_resnet(backbone)
        # Each residual stage doubles the width: layer1..4 give F/8, F/4, F/2 and F channels.
        channels = tuple(width >> k for k in (3, 2, 1, 0))[:stages]
        feature_dim = channels[-1]
        if weights_path is None:
            warnings.warn(
                f"{RANDOM_BACKBONE_WARNING}: {backbone} starts from random initialisation, "
                "no pretrained (ImageNet) weights are used",
                UserWarning,
                stacklevel=2,
            )
        else:
            _load_backbone_weights(trunk, Path(weights_path))
        for name in RESIDUAL_STAGES[stages:]:
            delattr(trunk, name)  # after loading: a whole network's weights file still fits
        self.backbone = trunk
        self.stages = RESIDUAL_STAGES[:stages]
        self.head_kind = head
        node_dim = 2 + feature_dim
        if head == "linear":
            self.head = nn.Linear(feature_dim, NUM_NODES * 2)
        else:
            self.head = HeatmapHead(in_channels=channels, width=HEATMAP_WIDTH)
            node_dim += HEATMAP_WIDTH
        self.segmentation = (
            nn.Conv2d(HEATMAP_WIDTH, NUM_SEGMENTATION_CLASSES, kernel_size=1)
            if segmentation
            else None
        )
        self.refine = GraphStack(
            widths=(node_dim, hidden, hidden, 2),
            adjacency=hand_object_adjacency(),
            modulate=modulated,
        )
        # Constants, not state: kept out of the state dict but moved by .to() / .double().
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The global feature (B, F) and the kept stages' stride-4, 8, 16 and 32 maps of a
        normalised image."""
        t = self.backbone
        x = t.maxpool(t.relu(t.bn1(t.conv1(x))))
        maps = []
        for name in self.stages:
            x = getattr(t, name)(x)
            maps.append(x)
        return torch.flatten(t.avgpool(x), 1), maps

    def forward(self, image: ImageBatch) -> dict[str, Tensor]:
        """Predict the 29 nodes' 2D keypoints.

        Args:
            image: uint8, or float in [0, 1].

        Returns:
            ``kp2d_init`` (B, 29, 2) from the head and ``kp2d`` (B, 29, 2) refined by the GCN,
            both in pixels of ``image``; with the heat-map head also ``heatmaps`` (B, 29, H/4,
            W/4), the logits whose soft-argmax is ``kp2d_init``; with ``segmentation`` also
            ``segmentation`` (B, 8, H/4, W/4), the classes' logits in each cell.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        x = image.to(self.mean.dtype)
        if image.dtype == torch.uint8:
            x = x / 255
        feature, maps = self._features((x - self.mean) / self.std)  # (B, F), a map per kept stage
        nodes = [feature[:, None].expand(-1, NUM_NODES, -1)]  # (B, N, F)
        if self.head_kind == "linear":
            init = self.head(feature).view(-1, NUM_NODES, 2)  # (B, N, 2) in [-1, 1] coordinates
        else:
            init, local, heatmaps = self.head(maps)
            # Sampled in at least float32 like the keypoints, brought to the activations' dtype
            # so that the GCN's input is one dtype, its layers' (bfloat16 in a bfloat16 model).
            nodes.append(sample_features(local, init).to(x.dtype))  # (B, N, HEATMAP_WIDTH)
        # The head's output in the activations' dtype: under autocast widened before the pixel
        # conversion, as adding 1 in bfloat16 would round the keypoints to 2^-8 of the image
        # side; in a bfloat16 model narrowed from soft_argmax's float32 to the layers' dtype.
        init = init.to(x.dtype)
        refined = init + self.refine(torch.cat([init, *nodes], dim=-1))
        size = image.shape[3], image.shape[2]  # (width, height) in pixels
        out = {"kp2d_init": to_pixels(init, size), "kp2d": to_pixels(refined, size)}
        if self.head_kind == "heatmap":
            out["heatmaps"] = heatmaps
        if self.segmentation is not None:
            out["segmentation"] = self.segmentation(local)
        return out
