"""Training losses as a named dict, summed with weights outside the model (paper §3.4, Eq. 7).

``L = λ1 L2D + λ2 L3D + λ3 Lphysical``; the weights live in one place, the config's loss
section (:class:`hopose.config.LossConfig`: λ1 = 0.01, λ2 = 1, λ3 = 10 by default). The
authors' code measures L2D in the dataset's original pixels (1920 × 1080 for FPHA), where one
224-px network pixel is 8.6 × 4.8 of them: with ``original_pixels`` (``loss.l2d_pixels:
original``, the default) hopose does the same, so λ1 = 0.01 weighs 2D against 3D as in their
code; ``network`` measures it in the network image's pixels, 23–73 times lighter
(docs/ablation.md). Both the
initial and the refined outputs are supervised, each its own term with its stage's weight:

============ ================ ================================================== ==========
term         output           target                                             weight
============ ================ ================================================== ==========
``2d_init``  ``kp2d_init``    ``hand_2d`` ‖ ``obj_2d`` (B, 29, 2), pixels         λ1
``2d``       ``kp2d``         same                                               λ1
``3d_init``  ``kp3d_init``    ``hand_3d`` ‖ ``obj_3d`` (B, 29, 3), mm              λ2
``3d``       ``kp3d``         same                                               λ2
``physical`` ``kp3d``         none: physical affinity of the refined 3D (§3.3)     λ3
``heatmap``  ``heatmaps``     ``hand_2d`` ‖ ``obj_2d``, as Gaussian maps          w_heatmap
``segment``  ``segmentation`` ``segmentation`` (B, H, W) classes per pixel          w_segmentation
============ ================ ================================================== ==========

``heatmap`` and ``segment`` are beyond the paper: the heat-map head's maps supervised densely
(:func:`heatmap_loss`), off unless ``loss.w_heatmap`` > 0, and the encoder's segmentation maps
(:func:`segmentation_loss`), off unless ``loss.w_segmentation`` > 0.

Each MSE is the mean of the squared coordinate errors over the batch, the nodes and the
coordinates: for the 3D terms the nodes of the lifted ``parts`` (the lifter's), for the 2D and
heat-map terms all 29, which the encoder predicts whatever the lifter lifts. With
``euclidean_3d`` (``loss.l3d_distance: euclidean``, beyond the paper) the 3D terms are instead
the mean distance per node in mm, the form of the mean-error metric the results are scored by: a
squared error's optimum under an uncertain input is the mean of the poses it could be, the
distance's their median, which is nearer to each of them on average (docs/from_pixels.md). A
term is computed only when its output is present, so the same function serves the lifter alone
(stage 1), the encoder alone (stage 2) and the full model (stage 3, with ``physical=True``).

The shapes of the losses' tensors are jaxtyping annotations, checked at run time in the tests; the
dicts of outputs and targets are checked by :func:`compute_losses`, with errors that name the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from jaxtyping import Float, Integer
from torch import Tensor

from hopose.config import LossConfig
from hopose.crop import inside_frame
from hopose.geometry import inverse_3x3
from hopose.models.heads import pixel_centres, to_pixels
from hopose.physics import physical_affinity_loss
from hopose.skeleton import PART_NODES, PART_SLICES

# Each term: (the output it reads, the batch keys of its target, the weight field it takes).
_SUPERVISED_TERMS: dict[str, tuple[str, tuple[str, str], str]] = {
    "2d_init": ("kp2d_init", ("hand_2d", "obj_2d"), "w_2d"),
    "2d": ("kp2d", ("hand_2d", "obj_2d"), "w_2d"),
    "3d_init": ("kp3d_init", ("hand_3d", "obj_3d"), "w_3d"),
    "3d": ("kp3d", ("hand_3d", "obj_3d"), "w_3d"),
}
_TERM_WEIGHT = {term: weight for term, (_, _, weight) in _SUPERVISED_TERMS.items()} | {
    "physical": "w_physical",
    "heatmap": "w_heatmap",
    "segment": "w_segmentation",
}


def _part_nodes(parts: tuple[str, ...]) -> slice:
    """The nodes of ``parts`` in the 29-node graph, as a slice: a list would be an index tensor
    made on the host and copied to the device at every use. The hand's nodes and the box's are
    adjacent, so those of any parts are one run, taken in the graph's order whatever the order
    of ``parts`` (every term is a mean over the nodes)."""
    unknown = [part for part in parts if part not in PART_NODES]
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty subset of {tuple(PART_NODES)}, got {parts}")
    nodes = [PART_SLICES[part] for part in parts]
    return slice(min(s.start for s in nodes), max(s.stop for s in nodes))


def _check_shape(name: str, tensor: Tensor, expected: tuple[int, ...], against: str) -> None:
    """Raise a ValueError naming ``name`` unless ``tensor`` has shape ``expected``.

    Elementwise arithmetic would broadcast a batch of 1 against the outputs' batch and give a
    plausible loss of the wrong pairs, so every target is checked before it is used.
    """
    if tuple(tensor.shape) != expected:
        raise ValueError(
            f"{name}: shape {tuple(tensor.shape)} differs from the {expected} of {against}"
        )


def _original_pixel_map(batch: Mapping[str, Tensor], batch_size: int) -> Tensor:
    """(B, 2, 2) the linear map from a displacement in network-image pixels to one in
    original-image pixels.

    The network image is an affine warp ``A`` of the original (``K = A orig_K``,
    docs/conventions.md §1), so a displacement d in it is ``A⁻¹ d`` in the original: the linear
    part of ``orig_K K⁻¹``, which is that of ``orig_K`` times the inverse of that of ``K`` (both
    have last row (0, 0, 1)). For a resize it is diag(fx, fy of ``orig_K`` over those of ``K``);
    a turned crop turns the error back, where the ratio of focal lengths would be 1/cos off.

    Raises:
        ValueError: ``K`` or ``orig_K`` is not (``batch_size``, 3, 3).
    """
    for key in ("K", "orig_K"):
        _check_shape(key, batch[key], (batch_size, 3, 3), f"a batch of {batch_size} outputs")
    # The linear part of an affine K's inverse is the inverse of its linear part; in closed
    # form, with no device sync.
    return batch["orig_K"][:, :2, :2] @ inverse_3x3(batch["K"])[:, :2, :2]


def heatmap_loss(
    logits: Float[Tensor, "B N h w"], target: Float[Tensor, "B N 2"], image_size: tuple[int, int]
) -> Float[Tensor, ""]:
    """Cross-entropy of heat maps against Gaussians at the ground-truth keypoints.

    Integral regression (:func:`hopose.models.heads.soft_argmax`) supervised through its
    expectation alone learns slowly from scratch: a coordinate error says where the mass should
    move on average, not which cell should hold it. Supervising each node's softmax over the
    cells with a Gaussian of one cell's standard deviation at its keypoint (the classic heat-map
    target) gives every cell a gradient; keypoints outside the image have no cell and are left
    out.

    Args:
        logits: heat-map logits of N nodes; the maps cover the image, cell (i, j) the pixels
            [j W/w, (j+1) W/w] × [i H/h, (i+1) H/h] less 0.5 (the cells' centres mapped to
            pixels as the heat-map head maps them, :func:`hopose.models.heads.to_pixels`).
        target: keypoints in the image's pixels, pixel centres at integers: the image spans
            [-0.5, W - 0.5] × [-0.5, H - 0.5].
        image_size: (W, H) of the image in pixels.

    Returns:
        The mean cross-entropy (nats) over the keypoints inside the image; 0 when none is. A
        keypoint outside it, or not finite (a missing annotation), adds nothing to the value
        nor to the gradient.

    Raises:
        ValueError: ``target`` is not (B, N, 2) for the (B, N) of ``logits``.
    """
    _check_shape("target", target, (*logits.shape[:2], 2), f"logits {tuple(logits.shape)}")
    h, w = logits.shape[-2:]
    width, height = image_size
    inside = inside_frame(target, image_size)  # False for NaN
    # A left-out keypoint's cross-entropy is masked below, but the mask's zero gradient times
    # a NaN Gaussian is NaN: build the left-out keypoints' maps at a finite stand-in instead.
    target = torch.where(inside[..., None], target, 0.0)
    xs = to_pixels(pixel_centres(w, dtype=target.dtype, device=target.device), width)  # (w,)
    ys = to_pixels(pixel_centres(h, dtype=target.dtype, device=target.device), height)  # (h,)
    # Pixels per cell as Python numbers: a tensor of them would be a copy to the device.
    gx = torch.exp(-0.5 * ((xs - target[..., :1]) / (width / w)).square())  # (B, N, w)
    gy = torch.exp(-0.5 * ((ys - target[..., 1:]) / (height / h)).square())  # (B, N, h)
    gauss = (gy[..., :, None] * gx[..., None, :]).flatten(2)  # (B, N, h*w), separable
    gauss = gauss / gauss.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    cross = -(gauss * logits.flatten(2).log_softmax(dim=-1)).sum(dim=-1)  # (B, N)
    return torch.where(inside, cross, 0.0).sum() / inside.sum().clamp_min(1)


def segmentation_loss(
    logits: Float[Tensor, "B classes h w"], classes: Integer[Tensor, "B H W"]
) -> Float[Tensor, ""]:
    """Cross-entropy of segmentation maps against the classes of the pixels each cell covers.

    A cell of the maps covers several pixels of the image (4 × 4 at stride 4), which may show
    different things at a border: its target is the fraction of its pixels of each class
    (adaptive average pooling of the one-hot classes), a soft label.

    Args:
        logits: the classes' logits per cell (:class:`hopose.models.ImageEncoder`'s
            ``segmentation``).
        classes: the class of each pixel of the image, in 0 ... classes - 1
            (:data:`hopose.skeleton.SEGMENTATION_CLASSES`).

    Returns:
        The mean over cells of ``-Σ_c target_c log softmax(logits)_c`` (nats).

    Raises:
        ValueError: ``classes`` is not (B, H, W) for the B of ``logits``.
    """
    if classes.ndim != 3 or len(classes) != len(logits):
        raise ValueError(
            f"segmentation: shape {tuple(classes.shape)} is not (B, H, W) for the "
            f"logits {tuple(logits.shape)}"
        )
    num_classes, size = logits.shape[1], logits.shape[-2:]
    # (B, H, W) -> (B, C, H, W) one-hot -> (B, C, h, w) class fractions per cell.
    onehot = torch.nn.functional.one_hot(classes.long(), num_classes).permute(0, 3, 1, 2)
    target = torch.nn.functional.adaptive_avg_pool2d(onehot.to(logits), size)
    return -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()


def compute_losses(
    out: Mapping[str, Tensor],
    batch: Mapping[str, Tensor],
    *,
    parts: tuple[str, ...] = ("hand", "object"),
    physical: bool = False,
    original_pixels: bool,
    heatmap: bool = False,
    segmentation: bool = False,
    euclidean_3d: bool = False,
) -> dict[str, Tensor]:
    """The loss terms of the outputs present in ``out`` (see the module docstring).

    Args:
        out: model outputs, any of ``kp2d_init``, ``kp2d`` (B, 29, 2) pixels and
            ``kp3d_init``, ``kp3d`` (B, 29, 3) mm.
        batch: targets ``hand_2d`` (B, 21, 2), ``obj_2d`` (B, 8, 2), ``hand_3d`` (B, 21, 3),
            ``obj_3d`` (B, 8, 3) as :func:`hopose.data.sample.collate_samples` gives them.
        parts: the parts whose 3D the lifter predicts (its ``parts``); the 3D terms leave the
            other nodes out, the 2D and heat-map terms cover all 29.
        physical: add the physical affinity loss (Eq. 6) of the refined 3D hand and box.
        original_pixels: measure the 2D errors in pixels of the dataset's original image, as
            the authors' code does: each error is mapped by the linear part of ``orig_K K⁻¹``
            (batch keys ``K``, ``orig_K`` (B, 3, 3)), which undoes the resize and a crop's turn
            (and is unchanged by its shift); for a resize, each axis scaled by its focal
            lengths' ratio. False: in the network image's pixels. No default: the unit is the
            config's choice (``loss.l2d_pixels``, "original" by default), which a default here
            could silently contradict.
        heatmap: add :func:`heatmap_loss` of ``out["heatmaps"]`` (the heat-map head's logits)
            when present, against the keypoints in the pixels of ``batch["image"]``.
        segmentation: add :func:`segmentation_loss` of ``out["segmentation"]`` when present,
            against ``batch["segmentation"]`` (B, H, W), which must then be there.
        euclidean_3d: the 3D terms are the mean distance per node (mm), not the mean squared
            coordinate error (mm²).

    Returns:
        Scalar tensors by term name.

    Raises:
        ValueError: a target (or ``K``, ``orig_K``, ``segmentation``) does not match the shape
            of its output, e.g. a batch of 1 against outputs of a larger batch, which would
            otherwise broadcast.
    """
    # Only the 3D terms are restricted to the lifted parts: the encoder predicts every node's 2D
    # whatever the lifter lifts (and its stage keeps the checkpoint of the least 2D error over
    # all of them).
    lifted = _part_nodes(parts)
    terms: dict[str, Tensor] = {}
    for term, (key, target_keys, _) in _SUPERVISED_TERMS.items():
        if key not in out:
            continue
        pred = out[key]
        target = torch.cat([batch[k] for k in target_keys], dim=1)  # (B, 29, D)
        _check_shape(" ‖ ".join(target_keys), target, tuple(pred.shape), key)
        target = target.to(dtype=pred.dtype, device=pred.device)
        nodes = lifted if key.startswith("kp3d") else slice(None)
        error = pred[:, nodes] - target[:, nodes]
        if original_pixels and key.startswith("kp2d"):
            to_original = _original_pixel_map(batch, len(pred)).to(error)
            error = error @ to_original.transpose(-1, -2)
        if euclidean_3d and key.startswith("kp3d"):
            terms[term] = torch.linalg.vector_norm(error, dim=-1).mean()
        else:
            terms[term] = error.square().mean()
    if physical:
        if "kp3d" not in out or set(parts) != set(PART_NODES):
            raise ValueError(
                "the physical loss needs the refined 3D of both hand and object "
                f"(out['kp3d'] and parts ('hand', 'object')), got parts {parts}"
            )
        hand = out["kp3d"][:, PART_SLICES["hand"]]  # (B, 21, 3)
        obj = out["kp3d"][:, PART_SLICES["object"]]  # (B, 8, 3)
        terms["physical"] = physical_affinity_loss(hand, obj)
    if heatmap and "heatmaps" in out:
        target = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1).to(out["heatmaps"])
        size = batch["image"].shape[-1], batch["image"].shape[-2]
        terms["heatmap"] = heatmap_loss(out["heatmaps"], target, size)
    if segmentation and "segmentation" in out:
        if "segmentation" not in batch:
            raise ValueError(
                "loss.w_segmentation > 0 needs segmentation maps, which this dataset does not "
                "give (the synthetic renders do); set loss.w_segmentation=0"
            )
        terms["segment"] = segmentation_loss(out["segmentation"], batch["segmentation"])
    return terms


def configured_losses(
    out: Mapping[str, Tensor],
    batch: Mapping[str, Tensor],
    config: LossConfig,
    *,
    parts: tuple[str, ...],
) -> dict[str, Tensor]:
    """:func:`compute_losses` with the options a config's ``loss`` section sets (the physical
    term, the 2D terms' pixels, the heat-map and segmentation terms where weighted, the 3D
    terms' distance): the one place a training step and a benchmark of it read them."""
    return compute_losses(
        out,
        batch,
        parts=parts,
        physical=config.physical,
        original_pixels=config.l2d_pixels == "original",
        heatmap=config.w_heatmap > 0,
        segmentation=config.w_segmentation > 0,
        euclidean_3d=config.l3d_distance == "euclidean",
    )


def total_loss(terms: Mapping[str, Tensor], weights: LossConfig | None = None) -> Float[Tensor, ""]:
    """Weighted sum of the terms (Eq. 7); raises if it is not finite.

    Args:
        terms: scalar terms from :func:`compute_losses`.
        weights: the config's loss section, the one home of λ1 (``w_2d``, the 2D terms), λ2
            (``w_3d``, the 3D terms) and λ3 (``w_physical``); None: its defaults.

    Raises:
        KeyError: a term has no weight.
        FloatingPointError: the total is NaN or Inf; the message lists every term's value.
    """
    unknown = [name for name in terms if name not in _TERM_WEIGHT]
    if unknown or not terms:
        raise KeyError(f"terms must be a non-empty subset of {tuple(_TERM_WEIGHT)}, got {unknown}")
    weights = LossConfig() if weights is None else weights
    total = sum(getattr(weights, _TERM_WEIGHT[name]) * value for name, value in terms.items())
    if not torch.isfinite(total):
        values = {name: float(value.detach()) for name, value in terms.items()}
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        reason = f"terms {bad} are" if bad else "every term is finite but their weighted sum is not"
        raise FloatingPointError(f"loss is not finite: {reason}, all terms {values}")
    return total
