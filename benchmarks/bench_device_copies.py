"""Host-to-device copies of a training step and a validation batch of each stage and of a
``refine_pose`` call.

A tensor made on the host and moved to a GPU (``torch.tensor(table, device=...)``,
``x.new_tensor([w, h])``, a random draw made on the CPU and moved, a tensor indexed with a
Python list or range, whose index tensor is built on the host and copied) is a copy from
pageable memory, which makes the CPU wait until the GPU's stream has drained: a synchronisation
point in every step. They are counted here without a GPU, on PyTorch's "meta" device (shapes
without data): every tensor that leaves the CPU for it is such a copy. A
``TorchFunctionMode`` records the copies the dispatcher does not show: the calls that build a
meta tensor from Python data (``torch.tensor``, ``torch.as_tensor``, ``torch.asarray``,
``Tensor.new_tensor``) or index a meta tensor with a Python sequence. A ``TorchDispatchMode``
records the operators, the backward pass's included, that take a CPU tensor and give a meta one
(``.to()``, an index tensor left on the CPU), and counts the reads of a meta value by the host
(``aten._local_scalar_dense``: ``bool(t)``, ``float(t)``, ``.item()``), the other kind of
synchronisation, answering them with a stand-in (True, 1) so that the code runs on. Neither
sees what PyTorch's own kernels synchronise on a GPU (``torch.linalg.svd``'s check of its error
flag, for one).

Cases: one training step (``hopose.train.train_one_epoch``: augmentation or perturbation,
forward, the loss terms of Eq. 7, backward, Adam) of each shipped ``synthetic`` stage, shrunk
as the tests shrink it (``tests/tiny_runs.py``: 32 px, 16-wide graph layers) on a batch of
``--batch`` random samples already on the device; the lifter also with the 2D perturbation of
docs/from_pixels.md, the encoder also in an epoch of progressive resizing; and one
``refine_pose`` call (default weights, 8 steps; and with the grasp completion); one validation
batch of each stage (``hopose.train.evaluate``: forward, loss terms, the validation error). A
step is counted as an epoch of two batches less one of one, after a first epoch (or call) that fills
what is made once per device, so that nothing done once per epoch counts. Meta has no
autocast: ``torch.autocast`` on it is replaced by a null context and the stages run in float32
(``optim.amp=false``), and Adam runs unfused (the fused kernel refuses meta).

Usage: ``python benchmarks/bench_device_copies.py [--batch 4]``
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import hopose
from gpu_check import _random_batch, config_epoch, stage_on
from hopose import train as train_module
from hopose.cli import at_least
from hopose.refine import RefineWeights, refine_pose
from hopose.skeleton import NUM_CORNERS, NUM_JOINTS, NUM_NODES
from tiny_runs import tiny

META = torch.device("meta")
FROM_DATA = (torch.tensor, torch.as_tensor, torch.asarray, torch.Tensor.new_tensor)
# A read of a value by the host; under inference mode it reaches the dispatcher as ``item``.
HOST_READS = (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default)
INDEXING = (torch.Tensor.__getitem__, torch.Tensor.__setitem__)
# hopose's own sources wherever it is installed (a wheel puts them in site-packages, not src/).
SRC = str(Path(hopose.__file__).resolve().parent)
# docs/from_pixels.md's perturbation of the lifter's 2D.
PERTURBED = (
    "perturb.sigma=0.06",
    "perturb.outlier_prob=0.05",
    "perturb.outlier_sigma=0.1",
    "perturb.drop_prob=0.02",
)
# A first epoch on smaller views (the shipped encoder's first 8 on 40 px of 64).
PROGRESSIVE = ("optim.epochs=2", "optim.progressive_size=24", "optim.progressive_epochs=1")


def _caller() -> str:
    """``file:line`` of the innermost frame in hopose's sources (else in torch) that made the
    current call."""
    frames = [f for f in traceback.extract_stack() if f.filename.startswith(SRC)]
    frames = frames or [f for f in traceback.extract_stack() if "/torch/" in f.filename]
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def _sequence_index(index: object) -> bool:
    """Whether a tensor index holds a Python sequence, which torch turns into an index tensor
    built on the host and copied to the indexed tensor's device."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(item, list | tuple | range) for item in items)


class _HiddenCopies(TorchFunctionMode):
    """Records, by caller, the copies the dispatcher does not show: a tensor built on meta from
    Python data, and an index tensor built from a Python sequence."""

    def __init__(self, found: Counter[str]) -> None:
        super().__init__()
        self.found = found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in FROM_DATA:
            data = args[1] if func is torch.Tensor.new_tensor else args[0]
            copied = out.is_meta and not isinstance(data, torch.Tensor)
        elif func in INDEXING:
            copied = args[0].is_meta and _sequence_index(args[1])
        else:
            copied = False
        if copied:
            self.found[f"{_caller()} {func.__name__}"] += 1
        return out


class _Dispatched(TorchDispatchMode):
    """Records, by caller, the operators (of the backward pass too) that take a CPU tensor and
    give a meta one, and the host's reads of meta values, answering each with a stand-in."""

    def __init__(self, copies: Counter[str], reads: Counter[str]) -> None:
        super().__init__()
        self.copies, self.reads = copies, reads

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS and args[0].is_meta:
            self.reads[_caller()] += 1
            return True if args[0].dtype == torch.bool else 1
        out = func(*args, **(kwargs or {}))
        moved = func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)
        # Other operators read a 0-d CPU tensor (a Python number) on the host, copying nothing.
        host = [
            t
            for t in tree_leaves((args, kwargs))
            if isinstance(t, torch.Tensor) and t.device.type == "cpu" and (moved or t.ndim > 0)
        ]
        if host and any(isinstance(t, torch.Tensor) and t.is_meta for t in tree_leaves(out)):
            self.copies[f"{_caller()} {func}"] += 1
        return out


_autocast = torch.autocast


def _meta_autocast(device_type: str, *args, **kwargs):
    """``torch.autocast``, a null context on meta (which has none)."""
    if device_type == META.type:
        return contextlib.nullcontext()
    return _autocast(device_type, *args, **kwargs)


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """What running hopose on meta needs: no autocast there, and an unfused Adam."""

    def adam(parameters, optim):
        return torch.optim.Adam(
            parameters, lr=optim.lr, weight_decay=optim.weight_decay, foreach=False
        )

    with (
        mock.patch.object(torch, "autocast", _meta_autocast),
        mock.patch.object(train_module, "make_optimizer", adam),
    ):
        yield


def count(run: Callable[[], object]) -> tuple[Counter[str], Counter[str]]:
    """The host-to-device copies and the host's reads of ``run()``, by caller."""
    copies, reads = Counter(), Counter()
    with _HiddenCopies(copies), _Dispatched(copies, reads):
        run()
    return copies, reads


def step_counts(
    stage: str, batch_size: int, *extra: str, epoch: int | None = None
) -> tuple[Counter[str], Counter[str]]:
    """Copies and reads of one training step of the tiny ``stage`` on meta (module docstring),
    with ``extra`` overrides, in ``epoch`` (:func:`gpu_check.config_epoch`)."""
    cfg = tiny(stage, "optim.amp=false", *extra)
    batches = [_random_batch(batch_size, cfg.data.image_size, META)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a random backbone, as a test's
        run_epoch = config_epoch(cfg, batches, META, epoch)
    return _per_batch(run_epoch, batches)


def _per_batch(run: Callable[[], object], batches: list[dict]) -> tuple[Counter[str], Counter[str]]:
    """Copies and reads of one batch of ``run``'s pass over ``batches`` (one batch): a pass
    over two batches less one over one, after a first pass that makes what is made once per
    device (Adam's state, tables), so that nothing done once per pass counts."""
    count(run)
    one = count(run)
    batches.append(batches[0])
    two = count(run)
    return two[0] - one[0], two[1] - one[1]


def validation_counts(stage: str, batch_size: int) -> tuple[Counter[str], Counter[str]]:
    """Copies and reads of one validation batch of the tiny ``stage`` on meta
    (``hopose.train.evaluate``: forward, loss terms, the error that picks ``best.pt``),
    counted as the training step is."""
    cfg = tiny(stage, "optim.amp=false")
    module, parts = stage_on(cfg, META)
    batches = [_random_batch(batch_size, cfg.data.image_size, META)]

    def run() -> None:
        train_module.evaluate(module, batches, cfg, parts=parts, device=META)

    return _per_batch(run, batches)


def refine_counts(batch_size: int, weights: RefineWeights) -> tuple[Counter[str], Counter[str]]:
    """Copies and reads of one ``refine_pose`` call on meta, after a first one."""
    hand = torch.zeros(batch_size, NUM_JOINTS, 3, device=META)
    obj = torch.zeros(batch_size, NUM_CORNERS, 3, device=META)
    kp2d = torch.zeros(batch_size, NUM_NODES, 2, device=META)
    K = torch.zeros(batch_size, 3, 3, device=META)

    def run() -> None:
        refine_pose(hand, obj, kp2d, K, weights)

    count(run)
    return count(run)


def _where(found: Counter[str]) -> str:
    return ", ".join(f"{name} ×{n}" for name, n in sorted(found.items())) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batch", type=at_least(1), default=4)
    args = parser.parse_args()
    with on_meta():
        cases = {
            "lifter step": step_counts("lifter", args.batch),
            "lifter step, perturbed 2D": step_counts("lifter", args.batch, *PERTURBED),
            "encoder step": step_counts("encoder", args.batch),
            "encoder step, progressive resizing": step_counts(
                "encoder", args.batch, *PROGRESSIVE, epoch=0
            ),
            "end2end step": step_counts("end2end", args.batch),
            "lifter validation batch": validation_counts("lifter", args.batch),
            "encoder validation batch": validation_counts("encoder", args.batch),
            "end2end validation batch": validation_counts("end2end", args.batch),
            "refine_pose call": refine_counts(args.batch, RefineWeights()),
            "refine_pose call, grasp completion": refine_counts(
                args.batch, RefineWeights(complete_grasp=True)
            ),
        }
    print(f"torch {torch.__version__}, batch {args.batch}, on meta\n")
    print("| case | host-to-device copies | host reads of device values |")
    print("|---|---:|---:|")
    for name, (copies, reads) in cases.items():
        print(f"| {name} | {copies.total()} | {reads.total()} |")
    print()
    for name, (copies, reads) in cases.items():
        print(f"- {name}: copies {_where(copies)}; reads {_where(reads)}")


if __name__ == "__main__":
    main()
