"""ONNX export of a trained network, checked with onnxruntime against PyTorch.

Two graphs can be exported from a checkpoint (``hopose export CKPT --out model.onnx``):

- ``network``: the whole :class:`~hopose.models.HoposeNet`, image in, 2D and 3D keypoints out
  (paper Fig. 2); needs a checkpoint whose encoder and lifter were trained.
- ``lifter``: the 2D -> 3D lifter alone (paper §3.2), for a 2D detector of one's own; any
  checkpoint with a trained lifter.

Inputs and outputs are named as in PyTorch, every one float32 with a dynamic batch axis B:

=========== =========================== =====================================================
graph       inputs                      outputs
=========== =========================== =====================================================
network     ``image`` (B, 3, S, S)       ``kp2d_init``, ``kp2d`` (B, 29, 2) px;
            in [0, 1]                   ``kp3d_init``, ``kp3d`` (B, 29, 3) mm
lifter      ``kp2d`` (B, 29, 2) px      ``kp3d_init``, ``kp3d`` (B, 29, 3) mm
=========== =========================== =====================================================

S is the network's ``image_size``; the outputs are whatever the module's output dict holds, in
key order, so another head exports without change here. The graph is traced by torch's dynamo
exporter in eval mode (dropout off, batch-norm statistics frozen); the learned adjacencies'
normalisation ``D^-1/2 (A + I) D^-1/2`` (paper Eq. 2) is traced as operators on the stored
weights, which is exact and costs a few 29 × 29 operations per call.

:func:`compare_onnx` runs a graph in onnxruntime and PyTorch on the same random inputs and
returns each output's largest difference; the command line refuses an export above
:data:`TOLERANCES` (0.01 px in 2D, 0.1 mm in 3D).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from hopose.models import HoposeNet
from hopose.skeleton import NUM_NODES

GRAPHS: tuple[str, ...] = ("network", "lifter")
TOLERANCES: dict[str, float] = {"kp2d": 0.01, "kp3d": 0.1}
"""Largest accepted difference between onnxruntime and PyTorch, by output prefix: px, mm."""
DEFAULT_TOLERANCE = 1e-4
"""For an output outside :data:`TOLERANCES` (none today): a unitless map such as a heat map."""
OPSET = 18


class _Positional(nn.Module):
    """A module's output dict as a tuple in a fixed key order: ONNX outputs are positional."""

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


def example_inputs(model: HoposeNet, graph: str, *, batch: int, seed: int = 0) -> dict[str, Tensor]:
    """Random inputs of a graph, by input name: an image in [0, 1], or 2D keypoints inside it.

    Args:
        model: the network (its lifter's ``image_size`` gives S).
        graph: "network" or "lifter".
        batch: B.
        seed: seed of the values, so a check can be repeated.
    """
    generator = torch.Generator().manual_seed(seed)
    size = model.lifter.image_size
    if graph == "network":
        return {"image": torch.rand(batch, 3, size, size, generator=generator)}
    return {"kp2d": torch.rand(batch, NUM_NODES, 2, generator=generator) * size}


def export_onnx(model: HoposeNet, path: str | Path, *, graph: str = "network") -> list[str]:
    """Write ``graph`` of ``model`` to ``path`` as ONNX with a dynamic batch axis.

    Returns:
        The output names, in the graph's order.
    """
    module = graph_module(model, graph).eval()
    inputs = example_inputs(model, graph, batch=2)
    with torch.no_grad():
        names = sorted(module(*inputs.values()))
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        # The exporter reports its progress and torch.export's internal deprecations as warnings.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Positional(module, names),
            tuple(inputs.values()),
            str(path),
            input_names=list(inputs),
            output_names=names,
            # One entry, the tuple of the wrapper's *inputs, each with a dynamic first axis.
            dynamic_shapes=(tuple({0: batch} for _ in inputs),),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    return names


def onnx_session(path: str | Path, *, threads: int | None = None):
    """An onnxruntime CPU session of the graph at ``path`` (``threads`` intra-op threads)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare_onnx(
    model: HoposeNet, path: str | Path, *, graph: str, batch: int = 3, seed: int = 1
) -> dict[str, float]:
    """Largest absolute difference of each output between onnxruntime and PyTorch.

    Both run ``graph`` on the same random inputs of batch ``batch`` (by default not the
    export's batch of 2, so the dynamic axis is exercised).
    """
    module = graph_module(model, graph).eval()
    inputs = example_inputs(model, graph, batch=batch, seed=seed)
    with torch.no_grad():
        expected = module(*inputs.values())
    session = onnx_session(path)
    names = [output.name for output in session.get_outputs()]
    got = session.run(names, {name: value.numpy() for name, value in inputs.items()})
    return {
        name: float(np.abs(value - expected[name].numpy()).max())
        for name, value in zip(names, got, strict=True)
    }


def tolerance(name: str) -> float:
    """The accepted difference of output ``name`` (see :data:`TOLERANCES`)."""
    return TOLERANCES.get(name[:4], DEFAULT_TOLERANCE)
