"""Two costs that grow with a benchmark's size, against the formulations they replaced, in one
run: the keypoint AUC's memory and ``hopose predict``'s output names' time.

- ``hopose.metrics.keypoint_auc`` counts each frame's joints within each threshold by binary
  search in its sorted distances. The baseline compares every (frame, joint, threshold) pair in
  one float64 array, (N, 21, 100). Each runs in a fresh process on ``--frames`` frames of
  random joints; its peak resident memory's growth over the call is reported (Linux counts it in
  KiB), and the two AUCs must agree exactly. Below about 30,000 frames the peak that importing
  torch reached already covers the call's, which then shows no growth (no ratio is given).
- ``hopose.predict.output_names`` names ``--folders`` folders of 90 frames named alike (FPHA's
  videos: ``color_0000.jpeg`` in every one), each file after the last suffix its stem took. The
  baseline tries every suffix from 2 again for each file (quadratic in the folders); the names
  must agree.

Usage: ``python benchmarks/bench_scale.py [--frames 80000] [--folders 1175]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from hopose.cli import at_least
from hopose.predict import output_names

# Run in a fresh interpreter: the peak resident size of a process only grows, so each
# formulation gets its own. Prints the peak's growth in MiB and a checksum of the AUCs.
AUC_CHILD = """
import resource, sys
import numpy as np, torch
from hopose import metrics
n, dense = int(sys.argv[1]), sys.argv[2] == "dense"
rng = np.random.default_rng(0)
gt = rng.normal(0, 50, (n, 21, 3))
pred = gt + rng.normal(0, 15, (n, 21, 3))
t = torch.as_tensor(metrics.THRESHOLDS_KEYPOINT_MM, dtype=torch.float64)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if dense:
    d = torch.as_tensor(np.linalg.norm(pred - gt, axis=-1))
    curves = (d[:, :, None] <= t).double().mean(dim=1)
    auc = (torch.trapezoid(curves, t, dim=1) / (t[-1] - t[0])).numpy()
else:
    auc = metrics.keypoint_auc(pred, gt)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, float(np.sum(auc)))
"""


def auc_peak(frames: int, case: str) -> tuple[float, float]:
    """(peak memory growth in MiB, sum of the AUCs) of one formulation in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", AUC_CHILD, str(frames), case],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1])


def first_free_names(paths: list[str]) -> list[str]:
    """The baseline: each file tries ``stem``, ``stem-2``, ``stem-3``... from the start."""
    used: set[str] = set()
    names = []
    for path in paths:
        stem = Path(path).stem
        name, k = stem, 1
        while name.casefold() in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name.casefold())
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=at_least(1), default=80_000)
    parser.add_argument("--folders", type=at_least(1), default=1175)
    args = parser.parse_args()

    dense, dense_sum = auc_peak(args.frames, "dense")
    searched, searched_sum = auc_peak(args.frames, "searched")
    assert dense_sum == searched_sum, (dense_sum, searched_sum)
    print(f"keypoint AUC of {args.frames} frames, peak memory growth:")
    print(f"  every pair compared (baseline)  {dense:8.0f} MiB")
    ratio = f"{searched / dense:.2f}x" if dense > 0 else "no growth of the baseline's to compare"
    print(f"  sorted and searched             {searched:8.0f} MiB  ({ratio})")

    paths = [f"video_{f}/color_{i:04d}.jpeg" for f in range(args.folders) for i in range(90)]
    start = time.perf_counter()
    baseline = first_free_names(paths)
    naive = time.perf_counter() - start
    start = time.perf_counter()
    names = output_names(paths)
    kept = time.perf_counter() - start
    assert names == baseline
    print(f"output names of {args.folders} folders of 90 frames named alike:")
    print(f"  every suffix tried again (baseline)  {naive:7.2f} s")
    print(f"  from the stem's last suffix          {kept:7.2f} s  ({kept / naive:.3f}x)")


if __name__ == "__main__":
    main()
