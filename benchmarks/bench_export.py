"""Inference speed of the exported ONNX graphs in onnxruntime against the same network in PyTorch.

Both graphs of ``hopose export`` (``network``: ResNet encoder, refinement GCN and context lifter,
image in; ``lifter``: 2D in) are exported from one randomly initialised network and timed on the
CPU against the PyTorch module under ``torch.inference_mode``, with the same number of threads
for both (``--threads``; onnxruntime's intra-op threads, torch's operator threads):

- latency: milliseconds per call at batch 1 (what an AR/VR or robot loop pays per frame);
- throughput: samples/s at batch ``--batch`` (32).

The ratio is onnxruntime's speed over PyTorch's (above 1: onnxruntime faster). Cases are
interleaved over ``--rounds`` rounds and compared per round (``bench_model.interleaved_seconds``),
so a machine shared with other jobs slows both alike.

Usage: ``python benchmarks/bench_export.py [--backbone resnet50] [--size 224] [--batch 32]
[--rounds 5] [--threads 1] [--clock cpu]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import warnings
from pathlib import Path

import onnxruntime
import torch

from bench_model import CLOCKS, interleaved_seconds, paired_ratio
from hopose.cli import at_least
from hopose.config import ModelConfig
from hopose.export import example_inputs, export_onnx, graph_module, onnx_session
from hopose.models import BACKBONES, build_model


def bench_graph(model, graph: str, path: Path, args: argparse.Namespace) -> list[str]:
    """Markdown rows of one graph: batch-1 latency and batch ``args.batch`` throughput."""
    export_onnx(model, path, graph=graph, image_size=args.size)
    session = onnx_session(path, threads=args.threads)
    module = graph_module(model, graph).eval()
    rows = []
    for batch in (1, args.batch):
        inputs = example_inputs(graph, batch=batch, image_size=args.size)
        arrays = {name: value.numpy() for name, value in inputs.items()}
        with torch.inference_mode():
            seconds = interleaved_seconds(
                {
                    "torch": lambda inputs=inputs: module(*inputs.values()),
                    "onnxruntime": lambda arrays=arrays: session.run(None, arrays),
                },
                rounds=args.rounds,
                repeats=args.repeats,
                device=torch.device("cpu"),
                clock=CLOCKS[args.clock],
            )
        torch_s = statistics.median(seconds["torch"])
        ort_s = statistics.median(seconds["onnxruntime"])
        ratio = paired_ratio(seconds["torch"], seconds["onnxruntime"])
        if batch == 1:
            cells = f"latency, batch 1 (ms) | {1000 * torch_s:.2f} | {1000 * ort_s:.2f}"
        else:
            cells = f"throughput, batch {batch} (samples/s) | {batch / torch_s:,.1f} | "
            cells += f"{batch / ort_s:,.1f}"
        rows.append(f"| {graph} | {cells} | {ratio:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backbone", choices=BACKBONES, default="resnet50")
    parser.add_argument("--size", type=at_least(32), default=224)
    parser.add_argument("--batch", type=at_least(1), default=32)
    parser.add_argument("--rounds", type=at_least(1), default=5)
    parser.add_argument("--repeats", type=at_least(1), default=1, help="calls per case per round")
    parser.add_argument(
        "--threads", type=at_least(1), default=1, help="CPU threads of both runtimes"
    )
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=args.backbone)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights are the point here
        model = build_model(cfg).eval()
    print(
        f"{args.backbone} at {args.size} px, context lifter hidden {cfg.hidden}; "
        f"{args.threads} thread(s) of {os.cpu_count()} CPUs; torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}; {args.rounds} rounds x {args.repeats} calls, "
        f"{args.clock} clock\n"
    )
    print("| graph | case | PyTorch | onnxruntime | onnxruntime speed-up |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for graph in ("network", "lifter"):
            for row in bench_graph(model, graph, Path(folder) / f"{graph}.onnx", args):
                print(row, flush=True)


if __name__ == "__main__":
    main()
