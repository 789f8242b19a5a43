"""The paper's ablations (§4.5), re-run on a dataset and laid out as its tables.

- ``lifter`` (Table 2): each lifter, the HOPE-Net Adaptive Graph U-Net and the context-aware
  lifter with the hand sub-graph only, the object sub-graph only and both, trained with the
  shipped stage-1 config (``<data>/lifter``, :mod:`hopose.configs`) on ground-truth 2D and
  evaluated on the test split with ground-truth 2D. A variant without a part reports "–" for
  it, as the paper does.
- ``physics`` (Table 3): the end-to-end stage (``<data>/end2end``) fine-tuned twice
  from the same stage-2 checkpoint, with MSE alone and with MSE + the physical affinity loss,
  evaluated from the images on the test split. The stage-2 checkpoint is ``init`` when given
  (e.g. ``runs/demo/encoder/best.pt``), else stages 1–2 are trained first.

Each writes ``DIR/ablation_<study>.md``: the measured mean errors (mm) beside the paper's
(FPHA-HO, pre-trained on ObMan), and ``DIR/ablation_<study>.json``. The paper's numbers come
from real data and 10,000-epoch schedules; the measured ones from whatever data and configs
are run, so compare the ordering of the rows, not the values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hopose.config import DataConfig, load_config
from hopose.configs import config_path
from hopose.demo import STAGES, markdown_table, train_stages
from hopose.evaluate import run_eval
from hopose.train import train

# Table 2 rows: name, config overrides, parts it predicts, the paper's (hand, object) mm.
LIFTER_ROWS: tuple[
    tuple[str, list[str], tuple[str, ...], tuple[float | None, float | None]], ...
] = (
    ("Adaptive Graph U-Net", ["model.lifter=graph_unet"], ("hand", "object"), (14.36, 21.65)),
    ("Hand Sub-graph Only", ["model.lifter_variant=hand"], ("hand",), (12.22, None)),
    ("Object Sub-graph Only", ["model.lifter_variant=object"], ("object",), (None, 14.41)),
    ("Full Graph", [], ("hand", "object"), (10.38, 13.85)),
)
# Table 3 rows: name, config overrides, the paper's (hand, object) mm.
PHYSICS_ROWS: tuple[tuple[str, list[str], tuple[float, float]], ...] = (
    ("MSE", ["loss.physical=false"], (12.83, 20.83)),
    ("MSE + Physical loss", ["loss.physical=true"], (12.53, 19.09)),
)
# Smaller runs for --quick (smoke tests of the command).
QUICK_OVERRIDES: dict[str, list[str]] = {
    "lifter": ["data.num_train=512", "data.num_val=64", "data.num_test=64", "optim.epochs=2"],
    "encoder": ["data.num_train=64", "data.num_val=32", "data.num_test=64", "optim.epochs=1"],
    "end2end": ["data.num_train=64", "data.num_val=32", "data.num_test=64", "optim.epochs=1"],
}


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _table(first_column: str, rows: list[dict[str, Any]]) -> str:
    header = [first_column, "Hand error (mm)", "Object error (mm)", "Paper hand", "Paper object"]
    body = [
        [
            row["name"],
            _cell(row["hand"]),
            _cell(row["object"]),
            _cell(row["paper"][0]),
            _cell(row["paper"][1]),
        ]
        for row in rows
    ]
    return markdown_table(header, body)


def _data_overrides(
    root: str | None, cache: str | None, seed: int | None, num: int | None
) -> list[str]:
    overrides = [f"data.root={root}"] if root else []
    overrides += [f"data.cache={cache}"] if cache else []
    overrides += [f"data.seed={seed}"] if seed is not None else []
    overrides += (
        [f"data.{key}={num}" for key in ("num_train", "num_val", "num_test")]
        if num is not None
        else []
    )
    return overrides


def _evaluate(checkpoint: str, data: DataConfig, out_dir: Path, *, gt_2d: bool) -> dict[str, Any]:
    return run_eval(checkpoint, data, data.test_split, out_dir, gt_2d=gt_2d, report=False)


def ablate_lifter(dataset: str, out_dir: Path, overrides: list[str]) -> list[dict[str, Any]]:
    """Train and evaluate every lifter of Table 2; returns one row per lifter."""
    rows = []
    for name, extra, parts, paper in LIFTER_ROWS:
        run_dir = out_dir / name.lower().replace(" ", "_").replace("-", "_")
        cfg = load_config(config_path(dataset, "lifter"), overrides + extra)
        result = train(cfg, run_dir)
        summary = _evaluate(result.checkpoint, cfg.data, run_dir / "eval", gt_2d=True)
        measured = {p: summary[f"{p}_mean_mm"] if p in parts else None for p in ("hand", "object")}
        rows.append({"name": name, **measured, "paper": paper, "n": summary["n"]})
    return rows


def ablate_physics(
    dataset: str, out_dir: Path, stage_overrides: dict[str, list[str]], init: str | None
) -> list[dict[str, Any]]:
    """Fine-tune end to end with and without the physical loss (Table 3); one row each."""
    if init is None:
        stages = train_stages(dataset, out_dir, stage_overrides, stages=("lifter", "encoder"))
        init = stages["encoder"]
    rows = []
    for name, extra, paper in PHYSICS_ROWS:
        run_dir = out_dir / name.lower().replace(" + ", "_").replace(" ", "_")
        cfg = load_config(
            config_path(dataset, "end2end"),
            [*stage_overrides["end2end"], *extra, f"init_from={init}"],
        )
        result = train(cfg, run_dir)
        summary = _evaluate(result.checkpoint, cfg.data, run_dir / "eval", gt_2d=False)
        rows.append(
            {
                "name": name,
                "hand": summary["hand_mean_mm"],
                "object": summary["object_mean_mm"],
                "paper": paper,
                "n": summary["n"],
            }
        )
    return rows


def run_ablation(
    study: str,
    out_dir: str | Path,
    *,
    data: str = "synthetic",
    root: str | None = None,
    cache: str | None = None,
    seed: int | None = None,
    num: int | None = None,
    quick: bool = False,
    init: str | None = None,
) -> str:
    """Run one study ("lifter" or "physics"), write its table and numbers; returns the table.

    ``num`` sets the frames of every split (synthetic: generated; real data: a cap); it wins
    over ``quick``'s sizes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overrides = _data_overrides(root, cache, seed, num)
    quick_overrides = QUICK_OVERRIDES if quick else {}
    stage_overrides = {stage: [*quick_overrides.get(stage, []), *overrides] for stage in STAGES}
    if study == "lifter":
        rows = ablate_lifter(data, out_dir, stage_overrides["lifter"])
        title = f"Table 2 layout: mean 3D error (mm) with ground-truth 2D input, {data} test split"
        first_column = "Network"
    elif study == "physics":
        rows = ablate_physics(data, out_dir, stage_overrides, init)
        title = f"Table 3 layout: mean 3D error (mm) from the images, {data} test split"
        first_column = "Loss function"
    else:
        raise ValueError(f"study must be 'lifter' or 'physics', got {study!r}")
    table = f"{title} ({rows[0]['n']} frames); paper: FPHA-HO.\n\n{_table(first_column, rows)}\n"
    (out_dir / f"ablation_{study}.md").write_text(table)
    (out_dir / f"ablation_{study}.json").write_text(json.dumps(rows, indent=2) + "\n")
    return table
