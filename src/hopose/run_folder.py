"""The folder of a training run (``--out``): the files a training writes there, and the rules
that keep one folder to one run.

One training at a time (``train.lock``, an flock the system drops when the process dies); a
fresh run refuses a folder that holds a run, ``--resume`` needs ``last.pt`` (a ``best.pt``
without it, ``last.pt`` lost, is no run to continue), the same config (only
:data:`RESUME_MAY_CHANGE` may differ) and, to train on, as many processes as the run had. Each
validated epoch writes its rows (CSV and TensorBoard) first, then ``last.pt``, then ``best.pt``
when it is the best: a kill leaves either a checkpoint with all its rows, or rows after the
last checkpoint, which a resume drops and writes again; ``best.pt`` never holds an epoch a
resume redoes, and one left behind by a kill after ``last.pt`` is written again from it by the
resume.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hopose.checkpoint import trained_processes
from hopose.config import PATH_FIELDS, TrainConfig, config_to_dict, saved_config, unused_fields
from hopose.data import DATASETS, option_defaults
from hopose.files import folder_lock, recorded_path, write_atomic

LAST_CHECKPOINT = "last.pt"
"""The run's latest checkpoint, with the optimisation state: what ``--resume`` continues from."""
BEST_CHECKPOINT = "best.pt"
"""The weights of the run's lowest validation error, without the optimisation state."""
METRICS_CSV = "metrics.csv"
"""One row of training and validation terms per validated epoch, led by the epoch (1-based)."""
CONFIG_FILE = "config.yaml"
"""The run's config, as trained."""
TENSORBOARD_DIR = "tb"
"""TensorBoard logs: the metrics rows, and every epoch's training terms and time."""
LOCK_FILE = "train.lock"
"""Held (flock) by the training writing to the folder (:func:`run_lock`)."""
RUN_FILES: tuple[str, ...] = (LAST_CHECKPOINT, BEST_CHECKPOINT, METRICS_CSV)
"""Files that make a folder a run's: a fresh run refuses a folder holding one of them (a
``best.pt`` alone too: a fresh run would replace its trained weights with its own)."""
RESUME_MAY_CHANGE: tuple[str, ...] = (
    "optim.epochs",
    "optim.val_every",
    "optim.checkpoint_minutes",
    "data.num_workers",
    "device",
    "num_threads",
)
"""Config fields ``--resume`` accepts changed: more epochs, and how (not what) it computes. The
number of processes is not one of them (:func:`check_processes`)."""


class RunError(ValueError):
    """A run folder cannot be used as asked: locked, already used, or resumed differently."""


def append_csv(path: Path, row: Mapping[str, float]) -> None:
    """Append ``row`` to the CSV at ``path`` (its header first when new); refuse a file whose
    header names other columns, so no row ever lands under the wrong header."""
    before = ""
    if path.exists():
        with path.open(encoding="utf-8", newline="") as handle:
            before = handle.read()
        header = next(csv.reader(before.splitlines()), [])
        if header != list(row):
            raise RunError(f"{path}: its columns {header} are not this run's {list(row)}")

    # The whole file again, renamed over the old one: a kill or a full disk leaves the old rows
    # or the new ones, never a partial row.
    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            handle.write(before)
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if not before:
                writer.writeheader()
            writer.writerow(row)

    write_atomic(path, write)


def drop_rows_after(path: Path, epoch: int) -> None:
    """Keep the rows of epochs 1..``epoch`` in the CSV at ``path``: later rows were written by
    epochs whose checkpoint never came (a kill in between) and will be written again. A blank
    line (a file edited by hand) is no row.

    Raises:
        RunError: a row's epoch is not an integer, naming the file, its line and the cell.
    """
    if not path.exists():
        return
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        # Each row's line as an editor counts it (the reader's count after the row), for errors.
        numbered = [(reader.line_num, row) for row in reader if row]
    if not numbered:
        return
    (_, header), *rows = numbered
    kept = [row for line, row in rows if _row_epoch(row, path, line) <= epoch]
    if len(kept) < len(rows):

        def write(tmp: Path) -> None:
            with tmp.open("w", encoding="utf-8", newline="") as handle:
                csv.writer(handle).writerows([header, *kept])

        write_atomic(path, write)


def _row_epoch(row: list[str], path: Path, line: int) -> int:
    """The epoch that leads the metrics ``row`` read from ``path``'s ``line``."""
    try:
        return int(row[0])
    except ValueError:
        raise RunError(
            f"{path}:{line}: epoch {row[0]!r} is not an integer (each row begins with the epoch "
            "it was written after; mend or remove the row to resume)"
        ) from None


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dict to ``{"optim.lr": 0.001, ...}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _with_option_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` (a nested config dict) with the loader options its ``data.options`` leave out
    at their dataset's defaults (:func:`hopose.data.option_defaults`), as the run's loader read
    them: an option written at its default and one left out are the same run. A dataset this
    hopose does not know (a config refused anyway, by its ``data.name``) keeps its options."""
    data = config.get("data")
    if not isinstance(data, Mapping) or data.get("name") not in DATASETS:
        return dict(config)
    options = {**option_defaults(data["name"]), **(data.get("options") or {})}
    return {**config, "data": {**data, "options": options}}


def _same_value(key: str, old: Any, new: Any) -> bool:
    """Whether a run's config field ``key`` holding ``old`` holds ``new`` too: a path field
    (:data:`hopose.config.PATH_FIELDS`) by the file it names, read from the current folder
    as the run reads it (:func:`hopose.files.recorded_path`), so that ``runs/demo/best.pt``,
    ``./runs/demo/best.pt`` and its absolute path are one value."""
    return old == new or (
        key in PATH_FIELDS
        and isinstance(old, str)
        and isinstance(new, str)
        and recorded_path(old) == recorded_path(new)
    )


def check_resumable(cfg: TrainConfig, checkpoint: Mapping[str, Any], path: Path) -> None:
    """Refuse to resume the run of ``checkpoint`` with a config that differs from its own in any
    field but :data:`RESUME_MAY_CHANGE`, naming the first such field; a path field differs
    where it names another file (:func:`_same_value`), a loader option (``data.options``) where
    it differs with the dataset's defaults filled in on both sides
    (:func:`_with_option_defaults`). Fields the run never reads
    (:func:`hopose.config.unused_fields`) are not compared: a run of an older hopose may hold
    one away from its default, which a config may no longer set and which changed nothing. Only
    a field both configs leave unread is passed over: one the run read and the new config would
    not (both outlier fields switched off at once, each leaving the other unread) is a change of
    the run."""
    saved = saved_config(checkpoint["config"])  # an older hopose's fields in today's
    old = _flatten(_with_option_defaults(saved))
    new = _flatten(_with_option_defaults(config_to_dict(cfg)))
    unread = unused_fields(saved).keys() & unused_fields(config_to_dict(cfg))
    free = {*RESUME_MAY_CHANGE, *unread}
    for key in sorted(old.keys() | new.keys()):
        if key not in free and not _same_value(key, old.get(key), new.get(key)):
            was = old.get(key)
            # Read from another folder, a relative path names another file: say where it is from.
            relative = (
                " (relative to the folder the run was started from)"
                if key in PATH_FIELDS and isinstance(was, str) and not Path(was).is_absolute()
                else ""
            )
            raise RunError(
                f"{path}: was trained with {key}={was!r}{relative}, the config asks "
                f"{new.get(key)!r}; --resume continues a run with its own config (only "
                f"{', '.join(RESUME_MAY_CHANGE)} may change), start a new --out to change it"
            )


def _processes(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


def check_processes(checkpoint: Mapping[str, Any], world_size: int, path: Path) -> None:
    """Refuse to resume the run of ``checkpoint`` with ``world_size`` processes where it was
    trained by another number (:func:`hopose.checkpoint.trained_processes`), naming both: the
    batch is per process and each process trains its shard, so another count trains on with
    another batch and another order of samples."""
    trained = trained_processes(checkpoint)
    # A run of an older hopose does not say: it resumes with any count, as it did then.
    if trained is not None and trained != world_size:
        raise RunError(
            f"{path}: was trained by {_processes(trained)}, this run has "
            f"{world_size}; optim.batch_size is per process and each process trains its shard "
            "of the data, so --resume needs as many processes as the run had (start a new "
            "--out to change them)"
        )


def run_lock(out_dir: Path) -> AbstractContextManager[None]:
    """Hold an exclusive lock on ``out_dir`` for a run; refuse when another process holds it.

    An advisory ``flock`` on ``out_dir/train.lock`` (:func:`hopose.files.folder_lock`): the
    system releases it when the process ends, even by SIGKILL, so a crashed run never leaves the
    folder locked.
    """
    return folder_lock(out_dir, LOCK_FILE, "another training", RunError)


def killed_before_checkpoint(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a run stopped before its first ``last.pt``, after writing rows
    of its first epoch: ``--resume`` restarts it from epoch 0, redoing those rows; a
    fresh run refuses the folder for its ``metrics.csv``. A ``best.pt`` says otherwise: it is
    written after ``last.pt``, so that run had one, since lost."""
    checkpoints = (LAST_CHECKPOINT, BEST_CHECKPOINT)
    return not any((out_dir / name).exists() for name in checkpoints) and all(
        (out_dir / name).is_file() for name in (METRICS_CSV, CONFIG_FILE)
    )


def check_run_folder(out_dir: Path, *, resume: bool) -> None:
    """``--resume`` needs ``last.pt``; a fresh run needs a folder that holds no run, so that
    nothing of an earlier run (its metrics, its checkpoints) is replaced before training."""
    if resume:
        if (out_dir / LAST_CHECKPOINT).is_file() or killed_before_checkpoint(out_dir):
            return
        if (out_dir / BEST_CHECKPOINT).exists():
            # Restarted from epoch 1, the run would replace the trained best.pt with its own.
            raise RunError(
                f"--resume: {out_dir} holds {BEST_CHECKPOINT} but no {LAST_CHECKPOINT}, cannot "
                f"resume ({BEST_CHECKPOINT} holds no optimiser state, and a restart would "
                "replace it); start a new --out"
            )
        raise RunError(
            f"--resume: {out_dir / LAST_CHECKPOINT} not found, there is no run to continue "
            "(drop --resume to start one)"
        )
    name = run_file(out_dir)
    if name is not None:
        resumable = (out_dir / LAST_CHECKPOINT).is_file() or killed_before_checkpoint(out_dir)
        hint = "continue it with --resume or choose" if resumable else "choose"
        raise RunError(f"{out_dir}: holds a run ({name}); {hint} another --out")


def run_file(out_dir: Path) -> str | None:
    """The first of :data:`RUN_FILES` that ``out_dir`` holds, or None where it holds no run."""
    return next((name for name in RUN_FILES if (out_dir / name).exists()), None)


def require_some_run(out_dir: Path, run_dirs: Iterable[Path], what: str, folders: str) -> None:
    """Refuse to resume ``what`` (a demo, a study) in ``out_dir`` when none of its ``run_dirs``
    holds a run (:func:`run_file`; a typo in ``--out``, a job never started):
    as ``hopose train --resume`` refuses a folder without one, an error, not the whole job
    afresh. ``folders`` names ``run_dirs`` in the message.

    Raises:
        RunError: naming ``out_dir``.
    """
    if all(run_file(run_dir) is None for run_dir in run_dirs):
        raise RunError(
            f"--resume: {out_dir} holds no {what} to continue (none of its {folders} holds "
            f"{', '.join(RUN_FILES[:-1])} or {RUN_FILES[-1]}); drop --resume to start one"
        )
