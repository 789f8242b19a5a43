"""The lifter's training step with the graph layers' batched product, against the folded one.

A graph layer propagates its features with the renormalised adjacency, ``Ã (X W)`` for a batch
(B, N, l) (:class:`hopose.models.GraphConv`). ``Ã @ xw`` broadcasts Ã by folding the batch into
the columns: it copies xw to (N, B l), multiplies once, and copies the result back. The layer
now makes one batched product, ``bmm`` of Ã expanded over the batch, with no copy. The baseline
is the layer's forward with the folded product, patched in for its cases: the same network,
weights and batch.

Cases: one training step (forward, Eq. 7's 3D terms, backward, Adam) through
``hopose.train.train_one_epoch`` (``gpu_check.config_step``) of the lifter stage of the demo's
config (``synthetic/lifter``: batch 32, modulated layers) and of the paper's (``fpha/lifter``:
batch 256), on a random batch (``gpu_check._random_batch``).
The two ways alternate over ``--rounds`` rounds of ``--repeats`` steps (``bench_model``'s
``interleaved_seconds``); the ratio is the median of the per-round ratios. Goal: the batched
product's step at most 0.9x the folded one's in both configs.

Usage: ``python benchmarks/bench_graph_conv.py [--rounds 5] [--repeats 20] [--threads 1]
[--clock wall|cpu]``
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench_model import interleaved_seconds, paired_ratio, parse_timing
from gpu_check import _random_batch, config_step
from hopose.config import load_config
from hopose.configs import config_path
from hopose.models import graph_conv

BATCHED = graph_conv.GraphConv.forward


def folded(self: graph_conv.GraphConv, x: torch.Tensor) -> torch.Tensor:
    """The layer's forward as it was: ``Ã @ xw``, which folds the batch into the columns."""
    xw = self.linear(x)
    if self.modulation is not None:
        xw = xw * self.modulation
    y = graph_conv.normalize_adjacency(self.adjacency()) @ xw + self.bias
    return F.relu(y) if self.activation else y


def with_forward(step: Callable[[], object], forward: Callable) -> Callable[[], None]:
    """``step`` with the graph layers running ``forward``."""

    def run() -> None:
        graph_conv.GraphConv.forward = forward
        try:
            step()
        finally:
            graph_conv.GraphConv.forward = BATCHED

    return run


def main() -> None:
    args, timing = parse_timing(__doc__, repeats=20, unit="steps")
    print(f"lifter training steps, {torch.get_num_threads()} threads, {args.clock} clock, "
          f"{args.rounds} rounds of {args.repeats} steps\n")  # fmt: skip
    print("| config | batch | folded, ms (baseline) | batched, ms | x baseline |")
    print("|---|---:|---:|---:|---:|")
    for name in ("synthetic", "fpha"):
        cfg = load_config(config_path(name, "lifter"))
        batch = _random_batch(cfg.optim.batch_size, cfg.data.image_size, torch.device("cpu"))
        cases = {way: with_forward(config_step(cfg, batch), forward)
                 for way, forward in (("folded", folded), ("batched", BATCHED))}  # fmt: skip
        seconds = interleaved_seconds(cases, device=torch.device("cpu"), **timing)
        before, after = (1000 * statistics.median(seconds[key]) for key in cases)
        ratio = paired_ratio(seconds["batched"], seconds["folded"])
        print(f"| {name}/lifter | {cfg.optim.batch_size} | {before:.1f} | {after:.1f} "
              f"| {ratio:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
