"""The paper's ablations (§4.5), re-run on a dataset and laid out as its tables.

- ``lifter`` (Table 2): each lifter, the HOPE-Net Adaptive Graph U-Net and the context-aware
  lifter with the hand sub-graph only, the object sub-graph only and both, trained from scratch
  with the shipped stage-1 config (``<data>/lifter``, :mod:`hopose.configs`) on ground-truth 2D
  and evaluated on the test split with ground-truth 2D. A variant without a part reports "–"
  for it, as the paper does. From scratch: a checkpoint the config starts from (FPHA's
  ``init_from``, the ObMan pre-training) holds one lifter, whose weights fit no other row.
- ``physics`` (Table 3): MSE alone against MSE + the physical affinity loss, each over several
  training seeds (the data stay the same, so the seeds pair the runs), with the mean ± std of
  the hand and object errors and of every plausibility metric and their paired differences,
  for (i) the lifter stage (``<data>/lifter``) on ground-truth 2D and (ii) the
  end-to-end stage (``<data>/end2end``) fine-tuned from a stage-2 checkpoint
  (``init`` when given, e.g. ``runs/demo/encoder/best.pt``, else stages 1–2 trained per seed)
  and evaluated from the images.

Each writes ``DIR/ablation_<study>.md``: the measured mean errors (mm) beside the paper's
(FPHA-HO, pre-trained on ObMan), and ``DIR/ablation_<study>.json``. The paper's numbers come
from real data and 10,000-epoch schedules; the measured ones from whatever data and configs
are run, so compare the ordering of the rows, not the values. Every run trains and is
evaluated in its own folder under ``DIR``, where a resumed study (``resume``) finds it. Both
files are rewritten (atomically) after every finished run, marked partial (:data:`PARTIAL`)
until the last, so that a study killed part-way leaves the rows it finished.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hopose.checkpoint import PROGRESS_KEYS, load_checkpoint, load_model
from hopose.config import TrainConfig, load_config, path_override, stage_unused_fields
from hopose.configs import config_path
from hopose.data.ho3d import WITHHELD, hand_labelled
from hopose.data.splits import SplitCache
from hopose.demo import train_stages
from hopose.evaluate import run_eval, without_jitter
from hopose.files import output_folder, write_text
from hopose.models import VARIANT_PARTS
from hopose.report import (
    METRICS_FILE,
    PAPER_METHOD,
    PAPER_TABLE1,
    format_number,
    markdown_table,
    read_summary,
)
from hopose.run_folder import LAST_CHECKPOINT, require_some_run, run_file
from hopose.scoring import (
    AFFINITY,
    CUBOID_MM,
    FORCE_CLOSURE,
    GRASP_EPSILON,
    HAND_MEAN_MM,
    N_FRAMES,
    OBJECT_MEAN_MM,
    PART_MEANS,
    PENETRATION_MM,
    PROTOCOL_GT_2D,
    PROTOCOL_IMAGE,
    VALID_CONTACTS,
    plausibility_key,
)
from hopose.stages import STAGES
from hopose.train import train

# Table 2 rows: name, config overrides, the paper's (hand, object) mm; the parts a row predicts
# are its lifter variant's (VARIANT_PARTS). Each sets both fields, so that no other setting of
# either turns one row into another; a user's --set of them is refused (_set_by_study).
LIFTER_ROWS: tuple[tuple[str, list[str], tuple[float | None, float | None]], ...] = (
    ("Adaptive Graph U-Net", ["model.lifter=graph_unet", "model.lifter_variant=full"],
     (14.36, 21.65)),
    ("Hand Sub-graph Only", ["model.lifter=context", "model.lifter_variant=hand"], (12.22, None)),
    ("Object Sub-graph Only", ["model.lifter=context", "model.lifter_variant=object"],
     (None, 14.41)),
    ("Full Graph", ["model.lifter=context", "model.lifter_variant=full"], (10.38, 13.85)),
)  # fmt: skip
# Eq. 7's 3D MSE at its weight, which Table 3's rows name: a config that trains on distances
# (the demo's end-to-end stage, loss.l3d_distance) is set back to it here.
PAPER_3D_LOSS = ["loss.l3d_distance=squared", "loss.w_3d=1.0"]
# Table 3 rows: name, config overrides, the paper's (hand, object) mm; its last row is the
# paper's final model, Table 1's.
PHYSICS_ROWS: tuple[tuple[str, list[str], tuple[float, float]], ...] = (
    ("MSE", ["loss.physical=false", *PAPER_3D_LOSS], (12.83, 20.83)),
    ("MSE + Physical loss", ["loss.physical=true", *PAPER_3D_LOSS], PAPER_TABLE1[PAPER_METHOD]),
)
# The physics study's training seeds per row unless asked otherwise (``hopose ablate --seeds``).
SEEDS = 3
# The stages the physics study trains per seed for its image rows where no --init is given.
PRETRAINED_STAGES = ("lifter", "encoder")
# Smaller runs for --quick (smoke tests of the command).
QUICK_OVERRIDES: dict[str, list[str]] = {
    "lifter": ["data.num_train=512", "data.num_val=64", "data.num_test=64", "optim.epochs=2"],
    "encoder": [
        "data.num_train=64", "data.num_val=32", "data.num_test=64", "optim.epochs=1",
        "optim.progressive_size=null", "optim.progressive_epochs=0",
    ],
    "end2end": ["data.num_train=64", "data.num_val=32", "data.num_test=64", "optim.epochs=1"],
}  # fmt: skip


def _table(first_column: str, rows: list[dict[str, Any]]) -> str:
    header = [first_column, "Hand error (mm)", "Object error (mm)", "Paper hand", "Paper object"]
    body = [
        [
            row["name"],
            format_number(row["hand"], "{:.2f}"),
            format_number(row["object"], "{:.2f}"),
            format_number(row["paper"][0], "{:.2f}"),
            format_number(row["paper"][1], "{:.2f}"),
        ]
        for row in rows
    ]
    return "\n".join(markdown_table(header, body))


def _stages_run(study: str, sources: Sequence[str], init: str | None) -> tuple[str, ...]:
    """The stages whose runs a study trains: the lifter study's rows and the physics study's
    ``gt_2d`` rows the lifter, its image rows the end-to-end stage, after stages 1 and 2 where
    no ``init`` is given."""
    if study == "lifter":
        return ("lifter",)
    stages = {"lifter"} if PROTOCOL_GT_2D in sources else set()
    if PROTOCOL_IMAGE in sources:
        stages |= {"end2end"} if init is not None else {*PRETRAINED_STAGES, "end2end"}
    return tuple(stage for stage in STAGES if stage in stages)


def _check_read(overrides: Sequence[str], stages: Sequence[str], study: str) -> None:
    """Refuse a ``--set`` of a field none of ``stages`` reads: it would change no run."""
    for text in overrides:
        key = _override_key(text)
        if all(key in stage_unused_fields(stage) for stage in stages):
            raise ValueError(
                f"--set {key}: no run of the {study} study reads it (its stages: "
                f"{', '.join(stages)}), so it would change nothing"
            )


def _set_by_study(study: str, sources: Sequence[str], init: str | None) -> dict[str, str]:
    """The fields the study sets itself after the ``--set`` overrides (:func:`_lifter_config`,
    :func:`_physics_config`), so that a ``--set`` of one changes no row, each with who sets it
    and where to choose it instead: what makes a row (Table 2's lifter and variant, Table 3's
    loss: a stage 1 trained for the image rows would read the loss, but a study is run for its
    rows), the physics study's seed (every run's, stages 1-2 included) and, where only the image
    rows train (no stage 1, no ``gt_2d`` row), the ``init`` they fine-tune."""
    rows = LIFTER_ROWS if study == "lifter" else PHYSICS_ROWS
    why = f"every row of the {study} study sets it itself, so it would change nothing"
    fields = dict.fromkeys((_override_key(text) for _, extra, _ in rows for text in extra), why)
    if study == "physics":
        fields["seed"] = (
            "the physics study sets each run's seed itself (0 to --seeds - 1), so it would "
            "change nothing; choose how many with --seeds"
        )
        if PROTOCOL_GT_2D not in sources and init is not None:
            fields["init_from"] = (
                "every run of the study fine-tunes --init, so it would change nothing; give "
                "the checkpoint with --init"
            )
    return fields


def _check_not_set_by_study(
    overrides: Sequence[str], study: str, sources: Sequence[str], init: str | None
) -> None:
    """Refuse a ``--set`` of a field the study sets itself after it (:func:`_set_by_study`):
    it would change no run."""
    set_by_study = _set_by_study(study, sources, init)
    for text in overrides:
        key = _override_key(text)
        if key in set_by_study:
            raise ValueError(f"--set {key}: {set_by_study[key]}")


def _read_by(stage: str, overrides: Sequence[str]) -> list[str]:
    """The ``KEY=VALUE`` of ``overrides`` whose field ``stage`` reads: a stage refuses a field
    it never reads set away from its default (:func:`hopose.config.stage_unused_fields`), and a
    study's ``--set`` is meant for every run it can change."""
    unused = stage_unused_fields(stage)
    return [text for text in overrides if _override_key(text) not in unused]


def _override_key(text: str) -> str:
    """The field a ``--set KEY=VALUE`` sets: "perturb.sigma" of "perturb.sigma=0.05"."""
    return text.split("=", 1)[0].strip()


def _data_overrides(
    root: str | None, cache: str | None, seed: int | None, num: int | None
) -> list[str]:
    overrides = [path_override("data.root", root)] if root else []
    overrides += [path_override("data.cache", cache)] if cache else []
    overrides += [f"data.seed={seed}"] if seed is not None else []
    overrides += (
        [f"data.{key}={num}" for key in ("num_train", "num_val", "num_test")]
        if num is not None
        else []
    )
    return overrides


def study_overrides(
    study: str,
    overrides: Sequence[str],
    *,
    sources: Sequence[str],
    init: str | None,
    root: str | None,
    cache: str | None,
    seed: int | None,
    num: int | None,
    quick: bool,
) -> dict[str, list[str]]:
    """Each stage's config overrides in a study, as :func:`run_ablation` reads its stage configs:
    ``--quick``'s sizes, then the data's (``root``, ``cache``, ``seed``, ``num``), then those of
    ``overrides`` (``--set``) whose field the stage reads.

    Raises:
        ValueError: an ``overrides`` field that no stage the study trains reads, or that the
            study sets itself (:func:`_set_by_study`).
    """
    _check_read(overrides, _stages_run(study, sources, init), study)
    _check_not_set_by_study(overrides, study, sources, init)
    shared = _data_overrides(root, cache, seed, num)
    quick_overrides = QUICK_OVERRIDES if quick else {}
    return {
        stage: [*quick_overrides.get(stage, []), *shared, *_read_by(stage, overrides)]
        for stage in STAGES
    }


EVALUATED_FILE = "evaluated.json"
"""Written beside a row's ``eval/metrics.json`` once that is: the progress
(:data:`hopose.checkpoint.PROGRESS_KEYS`: epochs done, and the epoch and validation error of
the weights in ``best.pt``, which is evaluated) of the run's ``last.pt`` when it was
evaluated. A resume reads the evaluation back only where it equals ``last.pt``'s of now
(:func:`_row_summary`), whatever the files' times say."""


def _slug(name: str) -> str:
    """A row's folder name: "Hand Sub-graph Only" -> hand_sub_graph_only, "MSE + Physical loss"
    -> mse_physical_loss."""
    return name.lower().replace(" + ", "_").replace(" ", "_").replace("-", "_")


def _seed_dir(out_dir: Path, source: str, seed: int) -> Path:
    """The folder of the physics study's runs of one input and seed: its rows' and, trained
    for them, stages 1-2's (``stages/``)."""
    return out_dir / source / f"seed{seed}"


def _run_dirs(
    study: str, out_dir: Path, sources: Sequence[str], seeds: int, init: str | None
) -> list[Path]:
    """Every run folder of a study, as :func:`ablate_lifter` and :func:`_physics_runs` lay
    them out."""
    if study == "lifter":
        return [out_dir / _slug(name) for name, *_ in LIFTER_ROWS]
    dirs = []
    for source in sources:
        for seed in range(seeds):
            seed_dir = _seed_dir(out_dir, source, seed)
            if source == PROTOCOL_IMAGE and init is None:
                dirs += [seed_dir / "stages" / stage for stage in PRETRAINED_STAGES]
            dirs += [seed_dir / _slug(name) for name, _, _ in PHYSICS_ROWS]
    return dirs


def _last_progress(run_dir: Path) -> dict[str, Any]:
    """The progress (:data:`hopose.checkpoint.PROGRESS_KEYS`) of ``run_dir``'s last checkpoint."""
    checkpoint = load_checkpoint(run_dir / LAST_CHECKPOINT)
    return {key: checkpoint[key] for key in PROGRESS_KEYS}


def _row_summary(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    gt_2d: bool,
    plausibility: bool,
    resume: bool,
    split_cache: SplitCache,
) -> dict[str, Any]:
    """Train one row's run into ``run_dir`` and evaluate it on the test split into
    ``run_dir/eval`` (``metrics.json`` and ``per_frame.csv``, which ``hopose compare`` reads);
    returns the evaluation's summary.

    With ``resume``, a run the folder holds is continued by the training's own resume (a
    finished one is only checked against ``cfg``), and its evaluation is read back where its
    record (:data:`EVALUATED_FILE`) equals the run's last checkpoint now; else (none, killed
    before its record, or one of fewer epochs: ``optim.epochs`` raised for the resume) it is
    run again.
    """
    result = train(
        cfg, run_dir, resume=resume and run_file(run_dir) is not None, split_cache=split_cache
    )
    eval_dir = run_dir / "eval"
    progress = _last_progress(run_dir)
    if resume and _recorded(eval_dir) == progress:
        return read_summary(eval_dir)
    summary = run_eval(
        result.checkpoint,
        without_jitter(cfg.data),
        cfg.data.test_split,
        eval_dir,
        gt_2d=gt_2d,
        # No figures, but per_frame.csv: `hopose compare` reads the rows' evaluations.
        report=False,
        per_frame=True,
        plausibility=plausibility,
    )
    # After metrics.json: a kill in between leaves no record, and the evaluation is redone.
    write_text(eval_dir / EVALUATED_FILE, json.dumps(progress) + "\n")
    return summary


def _recorded(eval_dir: Path) -> dict[str, Any] | None:
    """What the evaluation in ``eval_dir`` evaluated (:data:`EVALUATED_FILE`); None where it
    has no record, or no ``metrics.json`` to read back, or a record damaged by hand."""
    record = eval_dir / EVALUATED_FILE
    if not (record.is_file() and (eval_dir / METRICS_FILE).is_file()):
        return None
    try:
        return json.loads(record.read_text(encoding="utf-8"))
    except ValueError:
        return None


def ablate_lifter(
    dataset: str, out_dir: Path, overrides: list[str], *, resume: bool = False
) -> str:
    """Train and evaluate every lifter of Table 2 (``resume``: :func:`_row_summary`), one row
    per lifter, the study's table and rows written after each (:func:`_write_tables`: partial
    until the last); returns the table."""
    planned = [name for name, *_ in LIFTER_ROWS]
    rows: list[dict[str, Any]] = []
    split_cache = SplitCache()
    for name, extra, paper in LIFTER_ROWS:
        run_dir = out_dir / _slug(name)
        cfg = _lifter_config(dataset, overrides, extra)
        parts = VARIANT_PARTS[cfg.model.lifter_variant]
        summary = _row_summary(
            cfg, run_dir, gt_2d=True, plausibility=False, resume=resume, split_cache=split_cache
        )
        measured = {part: summary[key] if part in parts else None for part, key in PART_MEANS}
        rows.append({"name": name, **measured, "paper": paper, "n": summary[N_FRAMES]})
        table = (
            f"Table 2 layout: mean 3D error (mm) with ground-truth 2D input, {dataset} test "
            f"split ({rows[0]['n']} frames); paper: FPHA-HO.\n\n{_table('Network', rows)}\n"
        )
        _write_tables(out_dir, "lifter", table, rows, planned, len(rows))
    return table


# Table 3's label of each plausibility metric of the report (report.PLAUSIBILITY_ROWS), in
# Table 3's order: shorter than the report's, for a table of five columns with every number to
# three decimals; None: no row (the box's cuboid-ness). Every metric of the report has an entry
# (tests/test_ablate.py checks).
PHYSICS_LABELS: dict[str, str | None] = {
    VALID_CONTACTS: "Valid contacts per frame",
    AFFINITY: "Affinity loss (Eq. 6)",
    PENETRATION_MM: "Deepest penetration (mm)",
    FORCE_CLOSURE: "Force-closure rate",
    GRASP_EPSILON: "Grasp quality (Ferrari-Canny epsilon)",
    CUBOID_MM: None,
}
# Table 3 with statistics: the numbers compared, their key in metrics.json, the key of the
# ground truth's value (None: no such value, "–") and label.
PHYSICS_METRICS: tuple[tuple[str, str | None, str], ...] = (
    (HAND_MEAN_MM, None, "Hand error (mm)"),
    (OBJECT_MEAN_MM, None, "Object error (mm)"),
    *(
        (plausibility_key("pred", name), plausibility_key("gt", name), label)
        for name, label in PHYSICS_LABELS.items()
        if label is not None
    ),
)
# The two inputs of the physics study: the lifter on ground-truth 2D, the network from pixels.
PHYSICS_INPUTS = (PROTOCOL_GT_2D, PROTOCOL_IMAGE)
# The studies of `hopose ablate`: the paper's Table 2 (lifter variants) and Table 3 (physical loss).
STUDIES = ("lifter", "physics")


def _require_labelled_test(cfg: TrainConfig) -> None:
    """Refuse a study scored on a split without hand labels
    (:func:`hopose.data.ho3d.hand_labelled`: HO-3D's ``evaluation`` split, its configs' test
    split, holds only the wrist), where every row's hand read "–" and its object, lifted from
    NaN 2D, inf or a number, a table that ranked the rows without a word."""
    name, split = cfg.data.name, cfg.data.test_split
    if not hand_labelled(name, split):
        raise ValueError(
            f"data.test_split: {name}'s {split!r} split {WITHHELD}, and an ablation scores the "
            "hand and the box against their labels; ablate another dataset"
        )


def _lifter_config(dataset: str, overrides: Sequence[str], extra: Sequence[str]) -> TrainConfig:
    """The config of a row of Table 2: the lifter stage's, ``overrides`` (the study's), then
    ``extra`` (what defines the row), which wins."""
    # A user's own --set init_from comes after the stage's null, and wins.
    return load_config(config_path(dataset, "lifter"), ["init_from=null", *overrides, *extra])


def _physics_config(
    dataset: str,
    stage_overrides: dict[str, list[str]],
    extra: Sequence[str],
    *,
    source: str,
    seed: int,
    init: str | None,
) -> TrainConfig:
    """The config of a row of Table 3 (``extra``: its loss) with one seed: the lifter stage's on
    ground-truth 2D, else the end-to-end stage's fine-tuning ``init`` (None: the stage's own
    ``init_from``, for a check before the checkpoint exists)."""
    stage = "lifter" if source == PROTOCOL_GT_2D else "end2end"
    # Absolute, as the demo's stages (hopose.demo.train_stages): a resume from another folder
    # asks the config the run recorded.
    before = [] if source == PROTOCOL_GT_2D or init is None else [path_override("init_from", init)]
    return load_config(
        config_path(dataset, stage),
        [*stage_overrides.get(stage, []), f"seed={seed}", *extra, *before],
    )


def _train_physics_row(
    dataset: str,
    run_dir: Path,
    stage_overrides: dict[str, list[str]],
    extra: list[str],
    *,
    source: str,
    seed: int,
    init: str | None,
    resume: bool,
    split_cache: SplitCache,
) -> dict[str, Any]:
    """Train one row of Table 3 with one seed and evaluate it (plausibility included)."""
    cfg = _physics_config(dataset, stage_overrides, extra, source=source, seed=seed, init=init)
    return _row_summary(
        cfg,
        run_dir,
        gt_2d=source == PROTOCOL_GT_2D,
        plausibility=True,
        resume=resume,
        split_cache=split_cache,
    )


def _mean_std(values: list[float]) -> str:
    """The seeds' mean ± their std, the mean as the tables show it (:func:`format_number`: "–"
    without a value, "inf" where a seed diverged), which has no spread to show then."""
    array = np.asarray(values, dtype=float)
    if not np.isfinite(array).all():
        # errstate: seeds diverged both ways (inf - inf, in a paired difference) have no mean.
        with np.errstate(invalid="ignore"):
            return format_number(array.mean(), "{:.3f}")
    std = array.std(ddof=1) if len(array) > 1 else 0.0
    return f"{array.mean():.3f} ± {std:.3f}"


def physics_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Mean ± std over seeds of each row and of the paired difference (physical - MSE)."""
    mse, physical = (runs[name] for name, _, _ in PHYSICS_ROWS)
    header = ["Metric", *(name for name, _, _ in PHYSICS_ROWS), "Paired difference", "Ground truth"]
    body = []
    for key, gt_key, label in PHYSICS_METRICS:
        a = [run[key] for run in mse]
        b = [run[key] for run in physical]
        truth = format_number(None if gt_key is None else mse[0][gt_key], "{:.3f}")
        diff = [y - x for x, y in zip(a, b, strict=True)]
        body.append([label, _mean_std(a), _mean_std(b), _mean_std(diff), truth])
    return "\n".join(markdown_table(header, body))


def _physics_runs(
    dataset: str,
    out_dir: Path,
    stage_overrides: dict[str, list[str]],
    init: str | None,
    *,
    source: str,
    seeds: int,
    resume: bool,
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Train with and without the physical loss over ``seeds`` seeds (Table 3 with statistics).

    ``source`` "gt_2d": the lifter stage on ground-truth 2D; "image": the end-to-end stage from
    ``init`` (or stages 1-2 trained per seed). Yields, after each run (per seed, MSE first),
    each loss's summaries so far, one per seed it finished: the last yield holds every seed's
    (its rows: :func:`physics_rows`; its statistics: :func:`physics_table`). ``resume``: each
    run continued as :func:`_row_summary` (stages 1-2: :func:`hopose.demo.train_stages`)
    continues it.
    """
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in PHYSICS_ROWS}
    split_cache = SplitCache()  # every seed and row trains on the same splits
    for seed in range(seeds):
        seed_init = init
        if source == PROTOCOL_IMAGE and init is None:
            # Stages 1-2 once per seed: both rows fine-tune the same stage-2 checkpoint.
            stage_args = {
                stage: [*stage_overrides.get(stage, []), f"seed={seed}"]
                for stage in PRETRAINED_STAGES
            }
            seed_init = train_stages(
                dataset,
                _seed_dir(out_dir, source, seed) / "stages",
                stage_args,
                stages=tuple(stage_args),
                split_cache=split_cache,
                resume=resume,
            )["encoder"]
        for name, extra, _ in PHYSICS_ROWS:
            run_dir = _seed_dir(out_dir, source, seed) / _slug(name)
            runs[name].append(
                _train_physics_row(
                    dataset,
                    run_dir,
                    stage_overrides,
                    extra,
                    source=source,
                    seed=seed,
                    init=seed_init,
                    resume=resume,
                    split_cache=split_cache,
                )
            )
            yield runs


def physics_rows(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per loss with a finished run: its mean errors over the seeds, the paper's values
    and every seed's summary."""
    return [
        {
            "name": name,
            **{part: float(np.mean([r[key] for r in runs[name]])) for part, key in PART_MEANS},
            "paper": paper,
            "n": runs[name][0][N_FRAMES],
            "seeds": runs[name],
        }
        for name, _, paper in PHYSICS_ROWS
        if runs[name]
    ]


def _physics_section(data: str, source: str, runs: dict[str, list[dict[str, Any]]]) -> str:
    """The tables of one input of the physics study: the means of each row with a finished run
    and, over the seeds both rows finished, the statistics (:func:`physics_table`)."""
    rows = physics_rows(runs)
    what = "the lifter on ground-truth 2D" if source == PROTOCOL_GT_2D else "from the images"
    counts = {len(seeds) for seeds in runs.values()}
    # Every row over the same seeds (a finished input): their number; else a partial table's.
    over = f"{counts.pop()} seeds" if len(counts) == 1 else "the seeds finished so far"
    section = (
        f"Table 3 layout, {what}, {data} test split ({rows[0]['n']} frames), mean over {over}; "
        f"paper: FPHA-HO.\n\n{_table('Loss function', rows)}\n"
    )
    paired = min(len(seeds) for seeds in runs.values())
    if paired:
        stats = physics_table({name: seeds[:paired] for name, seeds in runs.items()})
        section += (
            "\nMean ± std over the seeds; paired difference = physical - MSE, same seed.\n\n"
            f"{stats}\n"
        )
    return section


PARTIAL = "Partial:"
"""The first word of a study's table while runs are still to come; its numbers are then a dict
(``partial``: true, ``missing``: those runs, ``rows``: the rows so far), not the list of rows."""


def _write_tables(
    out_dir: Path,
    study: str,
    table: str,
    rows: list[dict[str, Any]],
    planned: list[str],
    done: int,
) -> None:
    """Write ``DIR/ablation_<study>.md`` and ``.json``, each whole or not at all
    (:func:`hopose.files.write_text`), after ``done`` of the ``planned`` runs: marked
    :data:`PARTIAL`, naming the runs still missing, until the last."""
    numbers: Any = rows
    if missing := planned[done:]:
        table = (
            f"{PARTIAL} {done} of {len(planned)} runs finished; still missing: "
            f"{', '.join(missing)}.\n\n{table}"
        )
        numbers = {"partial": True, "missing": missing, "rows": rows}
    write_text(out_dir / f"ablation_{study}.md", table)
    write_text(out_dir / f"ablation_{study}.json", json.dumps(numbers, indent=2) + "\n")


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
    seeds: int = SEEDS,
    sources: tuple[str, ...] = PHYSICS_INPUTS,
    overrides: Sequence[str] = (),
    resume: bool = False,
) -> str:
    """Run one study ("lifter" or "physics"), write its table and numbers after every run
    (:func:`_write_tables`: partial until the last); returns the table.

    ``num`` sets the frames of every split (synthetic: generated; real data: a cap); it wins
    over ``quick``'s sizes. ``overrides`` (``--set KEY=VALUE``) apply to the config of every
    run whose stage reads the field (:func:`hopose.config.stage_unused_fields`: a
    ``perturb.sigma`` to the lifter's runs, an ``augment.colour`` to the image stages'), after
    those; what defines a row (its lifter or loss, its seed, the checkpoint it
    fine-tunes) comes after them and wins, and a ``--set`` of it is refused
    (:func:`_set_by_study`; ``init_from`` only where every run fine-tunes ``init``).
    The physics study runs each of ``sources`` (:data:`PHYSICS_INPUTS`) over ``seeds`` seeds.

    Every run has its own folder under ``out_dir``, which must hold no run unless ``resume``:
    then a run it holds is continued (a finished one kept) and an evaluation it holds read back
    (:func:`_row_summary`), so that a killed or failed study loses little more than the run
    it was in.

    Raises:
        ValueError: an unknown study or source, ``seeds`` < 1, or ``init`` where no run
            fine-tunes it (the lifter study, or the physics study on ground-truth 2D only);
            before anything is written.
        FileNotFoundError: ``init`` is not a file, before anything is written.
        CheckpointError: ``init`` unreadable, or its encoder or lifter never trained, before
            anything is written.
        ValueError: an ``overrides`` field that no stage of the study reads, or that the study
            sets itself (:func:`_set_by_study`), before anything is written.
        ConfigError: a run's config (a stage's, or a row's with its own settings) that refuses
            the overrides (:func:`hopose.config.load_config`), before anything is written.
        RunError: a run's folder holds a run and ``resume`` is False; ``resume`` where none
            of the study's run folders holds a run (:func:`hopose.run_folder.require_some_run`),
            before anything is written.
    """
    if study not in STUDIES:
        raise ValueError(f"study must be one of {STUDIES}, got {study!r}")
    if seeds < 1:
        raise ValueError(f"--seeds: must be >= 1, got {seeds}")
    if not sources or any(source not in PHYSICS_INPUTS for source in sources):
        raise ValueError(f"--input: expected some of {PHYSICS_INPUTS}, got {tuple(sources)}")
    if init is not None and (study != "physics" or PROTOCOL_IMAGE not in sources):
        raise ValueError(
            "--init: only the physics study from the images (--input image or both) fine-tunes "
            "a stage-2 checkpoint"
        )
    # Read here, not when the first image row fine-tunes it: after every gt_2d row has trained.
    # The rows need its encoder and lifter trained, as predicting from images does.
    if init is not None:
        if not Path(init).is_file():
            raise FileNotFoundError(f"--init: {init}: no such file")
        load_model(init, from_images=True)
    stage_overrides = study_overrides(
        study, overrides, sources=sources, init=init, root=root, cache=cache, seed=seed,
        num=num, quick=quick,
    )  # fmt: skip
    # Every run's config before any run trains: a --set a config refuses (a field its settings
    # leave unread, a value out of range) stops the study here, not after the runs before it.
    # A row's own settings come after the study's and win, so each row's config is read.
    if study == "lifter":
        for _, extra, *_ in LIFTER_ROWS:
            _require_labelled_test(_lifter_config(data, stage_overrides["lifter"], extra))
    else:
        # Stages 1-2, trained as they are for the image rows without --init.
        plain = PRETRAINED_STAGES if PROTOCOL_IMAGE in sources and init is None else ()
        for stage in plain:
            load_config(config_path(data, stage), stage_overrides[stage])
        for source in sources:
            for _, extra, _ in PHYSICS_ROWS:
                cfg = _physics_config(
                    data, stage_overrides, extra, source=source, seed=0, init=init
                )
                _require_labelled_test(cfg)
    if resume:
        # As the demo refuses it: a mistyped --out would run the whole study afresh.
        run_dirs = _run_dirs(study, Path(out_dir), sources, seeds, init)
        where = (
            f"row folders {', '.join(run_dir.name for run_dir in run_dirs)}"
            if study == "lifter"
            else f"run folders under {', '.join(sources)}"
        )
        require_some_run(Path(out_dir), run_dirs, f"{study} study", where)
    out_dir = output_folder(out_dir)
    if study == "lifter":
        return ablate_lifter(data, out_dir, stage_overrides["lifter"], resume=resume)
    return ablate_physics(
        data, out_dir, stage_overrides, init, sources=sources, seeds=seeds, resume=resume
    )


def ablate_physics(
    dataset: str,
    out_dir: Path,
    stage_overrides: dict[str, list[str]],
    init: str | None,
    *,
    sources: Sequence[str] = PHYSICS_INPUTS,
    seeds: int = SEEDS,
    resume: bool = False,
) -> str:
    """Table 3 for each of ``sources`` (:func:`_physics_runs`), the study's tables and rows
    written after every run (:func:`_write_tables`: partial until the last); returns the
    tables."""
    planned = [
        f"{name} ({source}, seed {k})"
        for source in sources
        for k in range(seeds)
        for name, _, _ in PHYSICS_ROWS
    ]
    # The inputs already finished: their tables and rows.
    sections: list[str] = []
    rows: list[dict[str, Any]] = []
    for source in sources:
        for runs in _physics_runs(
            dataset, out_dir, stage_overrides, init, source=source, seeds=seeds, resume=resume
        ):
            section = _physics_section(dataset, source, runs)
            source_rows = [{**row, "input": source} for row in physics_rows(runs)]
            done = len(sections) * seeds * len(PHYSICS_ROWS) + sum(map(len, runs.values()))
            table = "\n".join([*sections, section])
            _write_tables(out_dir, "physics", table, [*rows, *source_rows], planned, done)
        # The input's last run: its whole table and rows.
        sections.append(section)
        rows += source_rows
    return "\n".join(sections)
