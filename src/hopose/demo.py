"""The demo: the three training stages on synthetic data, then an evaluation on an unseen split.

``hopose demo --out DIR`` trains, in order, the shipped configs ``synthetic/{lifter, encoder,
end2end}`` (:mod:`hopose.configs`), each stage starting from the previous one's best checkpoint,
then evaluates on the synthetic ``test`` split, a random stream no training or validation sample
comes from:

- the stage-1 lifter and the final model fed ground-truth 2D (the paper's Table 2 protocol);
- the final model from the images (the whole pipeline);
- the mean-pose baseline: the training split's mean hand and mean box for every frame (the
  lifter's ``out_mean``), the error of a model that has learnt nothing from its input.

It prints a table, writes it to ``DIR/results.md``, the numbers to ``DIR/metrics.json`` and the
final model (a checkpoint ``hopose eval`` and ``hopose predict`` read) to ``DIR/model.pt``.

The synthetic configs are sized for a 2-core CPU, not for accuracy: a lifter trained for about
3,750 steps without dropout; the first two residual stages of a ResNet18 at 64×64 px with the
heat-map head and supervised maps (docs/training.md, "From pixels") trained from scratch on
12,000 rendered crops for 15 epochs, the first 8 shown at 40 px (``optim.progressive_size``);
two end-to-end epochs on the same crops, with distances for
the 3D terms (``loss.l3d_distance``); per-node weight modulation in every graph layer
(``model.modulated``); mixed precision where the CPU has bf16 instructions; the
real-data configs keep the paper's ResNet50 at 224×224, its linear head and its schedule. ``make
demo`` took 6.1 minutes on a 2-core Intel Xeon with AMX bf16 instructions (2026-12-06; README,
"Demo results"); on the 10,000 crops before, 5.5 to 9.7 minutes on 2-core CPUs with bf16
instructions and 14.2 to 24.4 on a 2-core EPYC without them (docs/training.md, "Speed").
``--quick`` shrinks every stage further (:data:`QUICK_OVERRIDES`), for a smoke test in minutes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hopose.checkpoint import load_checkpoint
from hopose.config import load_config, path_override
from hopose.configs import config_path
from hopose.data.splits import SplitCache
from hopose.evaluate import PREDICTIONS_FILE, mean_pose_predictions, run_eval, without_jitter
from hopose.files import copy_file, write_text
from hopose.metrics import THRESHOLDS_MM, THRESHOLDS_PX
from hopose.report import markdown_table, threshold_range
from hopose.run_folder import require_some_run, run_file
from hopose.scoring import (
    HAND_AUC_0_80,
    HAND_MEAN_MM,
    HAND_MEAN_MM_SE,
    HAND_PROCRUSTES_MM,
    N_FRAMES,
    OBJECT_2D_AUC_0_80,
    OBJECT_MEAN_MM,
    OBJECT_MEAN_MM_SE,
    PART_MEANS,
    score,
)
from hopose.skeleton import NUM_JOINTS
from hopose.stages import STAGES
from hopose.train import train

# The final model and the demo's summary, in its folder (beside results.md and a folder per stage
# and per evaluation).
MODEL_FILE = "model.pt"
SUMMARY_FILE = "metrics.json"
# Smaller data and fewer epochs for `hopose demo --quick`, as config overrides per stage.
QUICK_OVERRIDES: dict[str, list[str]] = {
    "lifter": ["data.num_train=2000", "data.num_val=200", "optim.epochs=32", "optim.step_size=22"],
    "encoder": [
        "data.num_train=6000",
        "data.num_val=100",
        "optim.epochs=8",
        "optim.step_size=7",
        "optim.progressive_epochs=4",
    ],
    # Its 2D spans less of the truth than the full demo's: its self-crops take a wider margin,
    # chosen on the validation split as the full demo's (docs/from_pixels.md, "Self-crop margin").
    # It predicts from the last crop's one square: it meets its bar without the 6 more views,
    # which would cost it about 20 s of its 4 minutes (docs/from_pixels.md, "Test-time views").
    "end2end": [
        "data.num_train=3000",
        "data.num_val=100",
        "optim.epochs=1",
        "data.self_crop_margin=0.45",
        "data.self_crop_turn=0",
        "data.self_crop_shift=0",
    ],
}
# Rows of the results table: (key in metrics.json, description).
ROWS = (
    ("mean_pose_baseline", "mean-pose baseline (training mean for every frame)"),
    ("lifter_gt_2d", "stage-1 lifter, ground-truth 2D"),
    ("final_gt_2d", "final model, ground-truth 2D"),
    ("final_image", "final model, from the image"),
)
# Columns of the results table: (summary key, title); an AUC with 3 decimals, the rest with 1,
# the mean errors with their standard errors over the test frames (STANDARD_ERRORS).
COLUMNS = (
    (HAND_MEAN_MM, "hand mm ± se"),
    (OBJECT_MEAN_MM, "object mm ± se"),
    (HAND_AUC_0_80, f"hand 3D AUC {threshold_range(THRESHOLDS_MM)} mm"),
    (OBJECT_2D_AUC_0_80, f"object 2D AUC {threshold_range(THRESHOLDS_PX)} px"),
    (HAND_PROCRUSTES_MM, "hand PA mm"),
)
AUC_KEYS = (HAND_AUC_0_80, OBJECT_2D_AUC_0_80)
STANDARD_ERRORS = {HAND_MEAN_MM: HAND_MEAN_MM_SE, OBJECT_MEAN_MM: OBJECT_MEAN_MM_SE}


def train_stages(
    dataset: str,
    out_dir: Path,
    overrides: dict[str, list[str]],
    *,
    stages=tuple(STAGES),
    split_cache: SplitCache | None = None,
    read_ahead: bool = False,
    resume: bool = False,
) -> dict[str, str]:
    """Train ``stages`` in order, each from the previous best checkpoint; returns their paths.

    The stages share the splits they read into memory (``split_cache``, a new one when None):
    the end-to-end stage reads the encoder stage's crops instead of rendering them again. With
    ``read_ahead``, while a stage trains, the next one's training split is read in the
    background (:meth:`~hopose.data.splits.SplitCache.read_ahead`): the demo's encoder crops render
    on the core its one-thread lifter stage leaves idle. With ``resume``, a stage whose folder
    holds a run continues it (a finished stage only returns its checkpoint), so a
    killed run loses little more than its current epoch (``optim.checkpoint_minutes``); the others
    start afresh.
    """
    split_cache = SplitCache() if split_cache is None else split_cache
    checkpoints, previous = {}, None
    for stage, following in zip(stages, (*stages[1:], None), strict=True):
        extra = list(overrides.get(stage, []))
        if following is not None and read_ahead:
            data = load_config(config_path(dataset, following), overrides.get(following, [])).data
            if data.in_memory and STAGES[following].reads_images:
                split_cache.read_ahead(data, data.train_split, with_images=True)
        if previous is not None:
            # Absolute: a resume from another folder, or with another spelling of out_dir,
            # asks the config the stage's run recorded.
            extra.append(path_override("init_from", previous))
        cfg = load_config(config_path(dataset, stage), extra)
        stage_dir = out_dir / stage
        result = train(
            cfg,
            stage_dir,
            resume=resume and run_file(stage_dir) is not None,
            split_cache=split_cache,
        )
        previous = checkpoints[stage] = result.checkpoint
    return checkpoints


def check_demo_resumable(out_dir: Path) -> None:
    """Refuse to resume a demo in ``out_dir`` when none of its stage folders holds a run
    (:func:`hopose.run_folder.require_some_run`). Once one stage holds a run, the stages after
    it that never began start afresh (:func:`train_stages`)."""
    stage_dirs = [out_dir / stage for stage in STAGES]
    require_some_run(out_dir, stage_dirs, "demo", f"stage folders {', '.join(STAGES)}")


def _cell(result: dict[str, Any], column: str) -> str:
    if column in AUC_KEYS:
        return f"{result[column]:.3f}"
    if column in STANDARD_ERRORS:
        return f"{result[column]:.1f} ± {result[STANDARD_ERRORS[column]]:.1f}"
    return f"{result[column]:.1f}"


def results_table(results: dict[str, dict[str, Any]]) -> str:
    """The demo's rows and columns as a markdown table."""
    rows = [[name] + [_cell(results[key], column) for column, _ in COLUMNS] for key, name in ROWS]
    return "\n".join(markdown_table(["model"] + [title for _, title in COLUMNS], rows))


def run_demo(out_dir: str | Path, *, quick: bool = False, resume: bool = False) -> dict[str, Any]:
    """Train the three stages, evaluate, print and write the results (see the module docstring).

    With ``resume`` the stages continue a killed run in ``out_dir`` (:func:`train_stages`); its
    ``train_minutes`` then count this invocation only.

    Raises:
        RunError: ``resume`` where no stage folder of ``out_dir`` holds a run, before any work.
    """
    out_dir = Path(out_dir)
    if resume:
        check_demo_resumable(out_dir)
    start = time.perf_counter()
    checkpoints = train_stages(
        "synthetic", out_dir, QUICK_OVERRIDES if quick else {}, read_ahead=True, resume=resume
    )
    model_path = out_dir / MODEL_FILE
    copy_file(checkpoints["end2end"], model_path)
    data = without_jitter(
        load_config(
            config_path("synthetic", "end2end"), QUICK_OVERRIDES["end2end"] if quick else []
        ).data
    )
    train_seconds = time.perf_counter() - start

    # key: (checkpoint, feed ground-truth 2D, write the report)
    evaluations = {
        "lifter_gt_2d": (checkpoints["lifter"], True, False),
        "final_gt_2d": (model_path, True, False),
        "final_image": (model_path, False, True),
    }
    eval_dirs = {key: out_dir / f"eval_{key}" for key in evaluations}
    results = {
        key: run_eval(ckpt, data, data.test_split, eval_dirs[key], gt_2d=gt_2d, report=report)
        for key, (ckpt, gt_2d, report) in evaluations.items()
    }
    # The buffer alone, without building the network: run_eval above loaded the same file.
    lifter_weights = load_checkpoint(checkpoints["lifter"])["model"]
    out_mean = lifter_weights["lifter.out_mean"].numpy()  # (29, 3)
    predictions = dict(np.load(eval_dirs["final_gt_2d"] / PREDICTIONS_FILE))
    baseline = mean_pose_predictions(predictions, out_mean[:NUM_JOINTS], out_mean[NUM_JOINTS:])
    results["mean_pose_baseline"] = score(baseline, plausibility=False)

    checks = {
        f"{key}_{part}_below_{label}": results[key][mean_key]
        <= factor * results["mean_pose_baseline"][mean_key]
        for key, label, factor in (
            ("lifter_gt_2d", "half_baseline", 0.5),
            ("final_image", "baseline", 1.0),
        )
        for part, mean_key in PART_MEANS
    }
    table = results_table(results)
    summary = {
        "quick": quick,
        "n_test": results["final_image"][N_FRAMES],
        "train_minutes": train_seconds / 60,
        "total_minutes": (time.perf_counter() - start) / 60,
        "results": results,
        "checks": checks,
        "checkpoints": checkpoints,
    }
    write_text(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    write_text(out_dir / "results.md", table + "\n")
    print(f"\nSynthetic test split, {summary['n_test']} frames never trained on:\n\n{table}\n")
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    minutes = summary["total_minutes"]
    print(
        f"\n{minutes:.1f} min; numbers in {out_dir}/{SUMMARY_FILE}, model in {out_dir}/{MODEL_FILE}"
    )
    return summary
