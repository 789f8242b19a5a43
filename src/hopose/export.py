"""ONNX export of a trained network, checked with onnxruntime against PyTorch.

Two graphs can be exported from a checkpoint (``hopose export CKPT --out model.onnx``):

- ``network``: the whole :class:`~hopose.models.HoposeNet`, image and intrinsics in, 2D and 3D
  keypoints out (paper Fig. 2); needs a checkpoint whose encoder and lifter were trained.
- ``lifter``: the 2D -> 3D lifter alone (paper §3.2), 2D keypoints and intrinsics in, for a 2D
  detector of one's own; any checkpoint with a trained lifter.

Inputs and outputs are named as in PyTorch, every one float32 with a dynamic batch axis B:

=========== =========================== =====================================================
graph       inputs                      outputs
=========== =========================== =====================================================
network     ``image`` (B, 3, S, S)       ``kp2d_init``, ``kp2d`` (B, 29, 2) px;
            in [0, 1], ``K`` (B, 3, 3)  ``kp3d_init``, ``kp3d`` (B, 29, 3) mm; with the
                                        heat-map head also ``heatmaps`` (B, 29, S/4, S/4),
                                        with ``model.segmentation`` ``segmentation``
                                        (B, 8, S/4, S/4)
lifter      ``kp2d`` (B, 29, 2) px,     ``kp3d_init``, ``kp3d`` (B, 29, 3) mm
            ``K`` (B, 3, 3)
=========== =========================== =====================================================

S is the network's ``image_size`` and K the intrinsics of that S × S image, pixel centres at
integers (docs/conventions.md §1). A W × H photo resized whole to S × S by an ordinary resize
(Pillow's ``resize``, OpenCV's ``cv2.resize``) keeps its outer pixel edges: a point at u moves to
``s u + (s - 1) / 2``, s = S / W (S / H for v), so K is
``edge_aligned_scale((S / W, S / H)) @ K_photo`` (:func:`hopose.crop.edge_aligned_scale`:
fx -> s fx, cx -> s cx + (s - 1) / 2; :meth:`hopose.photo.Photo.working_affine` is the same
map). :func:`hopose.geometry.scale_intrinsics`'s cx -> s cx is (1 - s) / 2 network px off such
an image (0.44 px across from 1920 to 224 px): it is the K of an image sampled as ``hopose
predict`` samples the photo, network pixel q at photo position A⁻¹ q
(:func:`hopose.crop.warp_image` with A = :func:`hopose.crop.resize_affine`, K = A @ K_photo).

The outputs are whatever the module's output dict holds, so another head exports without change
here; the graph lists them sorted by name (``heatmaps``, ``kp2d``, ``kp2d_init``, ...), not in
the dict's order: read them by name (onnxruntime's ``session.run(names, ...)``). The graph is
traced by torch's dynamo exporter in eval mode (dropout off, batch-norm statistics frozen); the
learned adjacencies' normalisation ``D^-1/2 (A + I) D^-1/2`` (paper Eq. 2) is traced as
operators on the stored weights, which is exact and costs a few 29 × 29 operations per call.
ONNX has no matrix inverse: the network inverts K in closed form
(:func:`hopose.geometry.inverse_3x3`), in PyTorch as in the exported graph.

A checkpoint trained on square crops (``data.crop: square``) is predicted by ``hopose
predict`` and ``hopose eval`` in several passes (:mod:`hopose.self_crop`): the whole frame, then
``data.self_crop`` squares the network places around its own 2D, the last one averaged over the
test-time views. The ``network`` graph is one pass: a program running it must crop around it as
:func:`hopose.self_crop.self_crop_photos` does to get their predictions; on the whole frame alone
such a model is far less accurate. :func:`warn_single_pass` says so when one is exported.

:func:`compare_onnx` runs a graph in onnxruntime and PyTorch on the same random inputs and
returns each output's largest difference; the command line refuses an export above
:data:`TOLERANCES` (0.01 px in 2D, 0.1 mm in 3D) or, for an output without a unit such as the
heat-map head's logits, above :data:`DEFAULT_TOLERANCE` of the output's largest magnitude.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from hopose.config import TrainConfig
from hopose.files import write_atomic
from hopose.models import HoposeNet
from hopose.self_crop import SelfCropping
from hopose.skeleton import NUM_NODES

GRAPHS: tuple[str, ...] = ("network", "lifter")
TOLERANCES: dict[str, float] = {"kp2d": 0.01, "kp3d": 0.1}
"""Largest accepted difference between onnxruntime and PyTorch, by output prefix: px, mm."""
DEFAULT_TOLERANCE = 1e-4
"""For an output outside :data:`TOLERANCES`, a unitless map such as the heat maps' logits: the
largest difference over the largest magnitude of PyTorch's output (at least 1). Float32 round-off
through the ResNet grows with the values, and logits have no fixed scale (a network's can
reach hundreds), so an absolute bound would refuse exact exports."""
OPSET = 18


class _Positional(nn.Module):
    """A module's output dict as a tuple in the order ``names`` gives: ONNX outputs are
    positional."""

    def __init__(self, module: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.module = module
        self.names = names

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        out = self.module(*inputs)
        return tuple(out[name] for name in self.names)


def graph_module(model: HoposeNet, graph: str) -> nn.Module:
    """The part of ``model`` a graph exports: the whole network or its lifter."""
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {GRAPHS}, got {graph!r}")
    return model if graph == "network" else model.lifter


def warn_single_pass(cfg: TrainConfig, graph: str) -> None:
    """Warn that the ``network`` graph of a model that self-crops (trained on crops, ``cfg``) is
    one pass of it, not the passes ``hopose predict`` runs (module docstring)."""
    passes = SelfCropping.of(cfg.data).passes
    if graph == "network" and passes:
        warnings.warn(
            f"the exported graph is one pass of the network; hopose predict runs it on the "
            f"whole frame, then on {passes} square(s) around its own 2D (self-cropping, "
            "hopose.self_crop): reimplement that around the graph to match hopose predict",
            stacklevel=2,
        )


def example_inputs(graph: str, *, batch: int, image_size: int, seed: int = 0) -> dict[str, Tensor]:
    """Random inputs of a graph, by input name: an image in [0, 1] or 2D keypoints inside it,
    and the intrinsics of a pinhole camera of 40° to 70° field of view centred near the image's
    middle.

    Args:
        graph: "network" or "lifter".
        batch: B.
        image_size: S, the side of the network's square image in pixels.
        seed: seed of the values, so a check can be repeated.
    """
    generator = torch.Generator().manual_seed(seed)
    size = image_size
    uniform = torch.rand(batch, 3, generator=generator)  # (B, 3): focal, cx, cy
    K = torch.zeros(batch, 3, 3)
    # f = (S / 2) / tan(fov / 2): 0.7 S to 1.4 S covers 70° down to 40°.
    K[:, 0, 0] = K[:, 1, 1] = size * (0.7 + 0.7 * uniform[:, 0])
    K[:, :2, 2] = size * (0.45 + 0.1 * uniform[:, 1:])
    K[:, 2, 2] = 1
    if graph == "network":
        return {"image": torch.rand(batch, 3, size, size, generator=generator), "K": K}
    return {"kp2d": torch.rand(batch, NUM_NODES, 2, generator=generator) * size, "K": K}


def export_onnx(
    model: HoposeNet,
    path: str | Path,
    *,
    graph: str = "network",
    image_size: int,
    check: Callable[[Path], object] | None = None,
) -> list[str]:
    """Write ``graph`` of ``model`` to ``path`` as ONNX with a dynamic batch axis.

    ``image_size`` (the config's ``data.image_size``) fixes the network graph's image side. The
    file is written whole or not at all (:func:`hopose.files.write_atomic`): the graph goes to a
    temporary file beside ``path`` (of its suffix), ``check(tmp)`` (if given, e.g. a
    :func:`compare_onnx` that raises) runs on it, and only then is it renamed to ``path``. A
    failed write or check leaves a file already at ``path`` as it was and no other file.

    Returns:
        The output names, in the graph's order.

    Raises:
        OSError: the file cannot be written (a full disk), of the original kind, naming ``path``.
    """
    module = graph_module(model, graph).eval()
    inputs = example_inputs(graph, batch=2, image_size=image_size)
    with torch.no_grad():
        names = sorted(module(*inputs.values()))
    # An explicit upper bound: torch 2.7's torch.export refuses an unbounded batch once a slice
    # of the nodes axis guards against its default bound (2**63 - 1); any bound above a real
    # batch does. 2**31 - 1 is the largest a 32-bit index can hold.
    batch = torch.export.Dim("batch", min=1, max=2**31 - 1)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            # The exporter reports its progress and torch.export's internal deprecations as
            # warnings.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Positional(module, names),
                tuple(inputs.values()),
                str(tmp),
                input_names=list(inputs),
                output_names=names,
                opset_version=OPSET,
                dynamo=True,
                # One entry, the tuple of the wrapper's *inputs, each with a dynamic first axis.
                dynamic_shapes=(tuple({0: batch} for _ in inputs),),
                # The weights inside the one file (ONNX's protobuf limit, 2 GB, is far above any
                # hopose network), not in a ``.data`` file beside it that a copy would leave
                # behind (and that the rename to ``path`` would not carry).
                external_data=False,
                verbose=False,
            )
        if check is not None:
            check(tmp)

    write_atomic(path, write)
    return names


def onnx_session(path: str | Path, *, threads: int | None = None):
    """An onnxruntime CPU session of the graph at ``path`` (``threads`` intra-op threads)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare_onnx(
    model: HoposeNet,
    path: str | Path,
    *,
    graph: str,
    image_size: int,
    batch: int = 3,
    seed: int = 1,
) -> dict[str, float]:
    """Largest difference of each output between onnxruntime and PyTorch
    (:func:`output_difference`: absolute in px or mm, relative for a unitless output).

    Both run ``graph`` on the same random inputs of batch ``batch`` (by default not the
    export's batch of 2, so the dynamic axis is exercised).
    """
    module = graph_module(model, graph).eval()
    inputs = example_inputs(graph, batch=batch, image_size=image_size, seed=seed)
    with torch.no_grad():
        expected = module(*inputs.values())
    session = onnx_session(path)
    names = [output.name for output in session.get_outputs()]
    got = session.run(names, {name: value.numpy() for name, value in inputs.items()})
    return {
        name: output_difference(name, value, expected[name].numpy())
        for name, value in zip(names, got, strict=True)
    }


def has_unit(name: str) -> bool:
    """Whether output ``name`` is in px or mm, with an absolute tolerance in :data:`TOLERANCES`."""
    return name[:4] in TOLERANCES


def output_difference(name: str, got: np.ndarray, expected: np.ndarray) -> float:
    """Largest ``|got - expected|`` of output ``name``: absolute for an output in px or mm,
    else over the largest ``|expected|``, at least 1 (see :data:`DEFAULT_TOLERANCE`)."""
    difference = float(np.abs(got - expected).max())
    return difference if has_unit(name) else difference / max(1.0, float(np.abs(expected).max()))


def tolerance(name: str) -> float:
    """The accepted difference of output ``name`` (see :data:`TOLERANCES`)."""
    return TOLERANCES[name[:4]] if has_unit(name) else DEFAULT_TOLERANCE
