"""The lifter's training step with the graph layers' batched product, against the folded one.

A graph layer propagates its features with the renormalised adjacency, ``Ã (X W)`` for a batch
(B, N, l) (:class:`hopose.models.GraphConv`). ``Ã @ xw`` broadcasts Ã by folding the batch into
the columns: it copies xw to (N, B l), multiplies once, and copies the result back. The layer
now makes one batched product, ``bmm`` of Ã expanded over the batch, with no copy. The baseline
is the layer's forward with the folded product, patched in for its cases: the same network,
weights and batch.

Cases: one training step (forward, Eq. 7's 3D terms, backward, Adam) through
``hopose.train.train_one_epoch`` of the lifter stage of the demo's config (``synthetic/lifter``:
batch 32, modulated layers) and of the paper's (``fpha/lifter``: batch 256), on random poses.
The two ways alternate over ``--rounds`` rounds of ``--repeats`` steps (``bench_model``'s
``interleaved_seconds``); the ratio is the median of the per-round ratios. Goal: the batched
product's step at most 0.9x the folded one's in both configs.

Usage: ``python benchmarks/bench_graph_conv.py [--rounds 5] [--repeats 20] [--threads 1]
[--clock wall|cpu]``
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench_model import interleaved_seconds, paired_ratio, parse_timing
from hopose import train as train_module
from hopose.config import TrainConfig, load_config
from hopose.configs import config_path
from hopose.models import build_model, graph_conv
from hopose.stages import STAGES

BATCHED = graph_conv.GraphConv.forward


def folded(self: graph_conv.GraphConv, x: torch.Tensor) -> torch.Tensor:
    """The layer's forward as it was: ``Ã @ xw``, which folds the batch into the columns."""
    xw = self.linear(x)
    if self.modulation is not None:
        xw = xw * self.modulation
    y = graph_conv.normalize_adjacency(self.adjacency()) @ xw + self.bias
    return F.relu(y) if self.activation else y


def lifter_step(cfg: TrainConfig, forward: Callable) -> Callable[[], None]:
    """One training step of ``cfg``'s lifter stage on random poses, its graph layers running
    ``forward``."""
    batch_size = cfg.optim.batch_size
    generator = torch.Generator().manual_seed(0)
    hand = torch.randn(batch_size, 21, 3, generator=generator) * 30 + torch.tensor([0, 0, 400.0])
    box = hand[:, :8] + torch.randn(batch_size, 8, 3, generator=generator) * 20
    K = torch.tensor([[1400.0, 0, 960], [0, 1400, 540], [0, 0, 1]]).expand(batch_size, 3, 3)

    def project(points: torch.Tensor) -> torch.Tensor:
        pixels = points @ K.transpose(1, 2)
        return pixels[..., :2] / pixels[..., 2:]

    batch = {"K": K.contiguous(), "orig_K": K.contiguous(), "hand_3d": hand, "obj_3d": box,
             "hand_2d": project(hand), "obj_2d": project(box)}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no pretrained backbone weights
        model = build_model(cfg.model)
    module = train_module.stage_module(model, STAGES["lifter"])
    optimizer = train_module.make_optimizer(module.parameters(), cfg.optim)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    parts = tuple(model.lifter.parts)

    def step() -> None:
        graph_conv.GraphConv.forward = forward
        try:
            train_module.train_one_epoch(
                module, [batch], optimizer, scaler, cfg, parts=parts,
                device=torch.device("cpu"), epoch=0, show_progress=False,
            )  # fmt: skip
        finally:
            graph_conv.GraphConv.forward = BATCHED

    return step


def main() -> None:
    args, timing = parse_timing(__doc__, repeats=20, unit="steps")
    print(f"lifter training steps, {torch.get_num_threads()} threads, {args.clock} clock, "
          f"{args.rounds} rounds of {args.repeats} steps\n")  # fmt: skip
    print("| config | batch | folded, ms (baseline) | batched, ms | x baseline |")
    print("|---|---:|---:|---:|---:|")
    for name in ("synthetic", "fpha"):
        cfg = load_config(config_path(name, "lifter"))
        cases = {"folded": lifter_step(cfg, folded), "batched": lifter_step(cfg, BATCHED)}
        seconds = interleaved_seconds(cases, device=torch.device("cpu"), **timing)
        before, after = (1000 * statistics.median(seconds[key]) for key in cases)
        ratio = paired_ratio(seconds["batched"], seconds["folded"])
        print(f"| {name}/lifter | {cfg.optim.batch_size} | {before:.1f} | {after:.1f} "
              f"| {ratio:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
