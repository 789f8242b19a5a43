"""Checkpoints: the one place that writes, reads and checks them.

A checkpoint is a plain dict of tensors and primitives, read with ``torch.load(...,
weights_only=True)`` so that opening a ``.pt`` file can never run code:

============== =================================================================================
key            value
============== =================================================================================
``format``     :data:`FORMAT`; a file of another format is refused with a message
``stage``      the stage that wrote it (:data:`hopose.stages.STAGES`)
``trained``    sorted list of the HoposeNet parts holding trained weights: the stage's own, plus
               those of the ``init_from`` checkpoint it started from
``model``      the whole network's state dict
``config``     the run's config as a nested dict (:func:`hopose.config.config_to_dict`)
``epoch``      epochs done, so 1-based: the epoch the weights are from
``best``       the best validation error so far (``inf`` before any validation, and throughout
               a run without a validation split)
``best_epoch`` the epoch of ``best``, **0-based** (-1 before any validation): ``best_epoch + 1
               == epoch`` when the weights are the best ones (without a validation split, each
               epoch that would be validated is); ``hopose train`` prints it 1-based
``world_size`` the number of processes that trained it (torchrun's ``WORLD_SIZE``; 1 without
               torchrun), which ``--resume`` must match; absent from a file of an older
               hopose, read as unknown (:func:`trained_processes`)
``optimizer``, ``scheduler``, ``scaler``: their state dicts, for ``--resume``; in ``last.pt``
               only (``best.pt`` is read for its weights, and the optimiser's moments would
               triple an image stage's file)
``pending_row`` in a ``last.pt`` written between validations only: its epoch's metrics row as a
               validation would have written it, holding only ``epoch``, ``lr`` and the
               training terms ``train/...`` (not the validation's). A resume that makes that
               epoch the last (``optim.epochs`` lowered to it) validates it and writes this
               row then, since its training terms cannot be measured again
``pending_seconds`` with ``pending_row``: its epoch's training time in seconds, which TensorBoard
               logs beside the row (``time/train_seconds``): a resume rewrites that epoch's
               training scalars (``hopose.train``); absent from a ``last.pt`` of an earlier
               hopose (``pending_row`` came first, on 2026-12-05), whose resume then logs no
               time for that epoch
============== =================================================================================

Files are written atomically (a temporary file, then a rename), so a crash leaves the old file or
the new one. The network is rebuilt with ``model.backbone_weights`` unset wherever a checkpoint's
encoder replaces the backbone (:func:`untrained_network`: a loaded model, a resumed run,
``init_from``'s trained encoder): the checkpoint holds those weights, and the training machine's
backbone file need not exist where it is read.

A part that was never trained is random: :func:`load_model` refuses a checkpoint for a use that
needs such a part (a lifter-stage checkpoint cannot predict from images), and
:func:`load_trained_parts` (``init_from``) copies only trained parts, so a backbone read from
``model.backbone_weights`` is not overwritten by a previous stage's random encoder.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hopose.config import (
    MAX_EPOCHS,
    ConfigError,
    ModelConfig,
    TrainConfig,
    as_yaml,
    config_from_dict,
    config_to_dict,
)
from hopose.files import JsonType, error_line, is_whole_number, read_torch_file, write_atomic
from hopose.models import HoposeNet, build_model
from hopose.models.encoder import random_backbone_expected
from hopose.stages import GT_2D_PARTS, IMAGE_PARTS, PARTS, STAGES

FORMAT = 1
"""Version of the checkpoint layout; bump it when the layout or the network's state changes."""

_REQUIRED = ("format", "stage", "trained", "model", "config")
PROGRESS_KEYS: tuple[str, ...] = ("epoch", "best", "best_epoch")
"""Keys of a run's progress that ``best.pt`` and ``last.pt`` hold (:func:`progress_checkpoint`)."""
OPTIMISATION_STATE: tuple[str, ...] = ("optimizer", "scheduler", "scaler")
"""Keys of the optimisation state that only ``last.pt`` holds (:func:`training_state`)."""
PENDING_ROW = "pending_row"
"""Key of the metrics row a ``last.pt`` written between validations holds for its epoch
(the module docstring's table)."""
PENDING_SECONDS = "pending_seconds"
"""Key of the training time in seconds of :data:`PENDING_ROW`'s epoch (the module docstring's
table)."""
# Optimiser options that choose how the update is computed, not what it is.
_IMPLEMENTATION = ("fused", "foreach")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, foreign, of another format, unfit for its use, or cannot
    be written."""


def model_checkpoint(
    model: nn.Module, cfg: TrainConfig, *, trained: Iterable[str]
) -> dict[str, Any]:
    """A checkpoint of the network alone: enough for :func:`load_model` and ``init_from``."""
    return {
        "format": FORMAT,
        "stage": cfg.stage,
        "trained": sorted(trained),
        "model": model.state_dict(),
        "config": config_to_dict(cfg),
    }


def progress_checkpoint(
    model: nn.Module,
    cfg: TrainConfig,
    *,
    trained: Iterable[str],
    epoch: int,
    best: float,
    best_epoch: int,
    world_size: int = 1,
) -> dict[str, Any]:
    """The network after ``epoch`` epochs of a run of ``world_size`` processes and the run's
    best so far: ``best.pt``.

    ``epoch`` counts epochs done (1-based); ``best_epoch`` is the best one's 0-based index, -1
    before any validation (the module docstring's table)."""
    progress = dict(zip(PROGRESS_KEYS, (epoch, best, best_epoch), strict=True))
    return model_checkpoint(model, cfg, trained=trained) | progress | {"world_size": world_size}


def trained_processes(checkpoint: Mapping[str, Any]) -> int | None:
    """How many processes trained ``checkpoint`` (its ``world_size``); None where it does not
    say (an older hopose recorded no count, for a plain run as for a torchrun's)."""
    return checkpoint.get("world_size")


def training_state(
    progress: Mapping[str, Any],
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    pending_row: Mapping[str, float] | None = None,
    pending_seconds: float | None = None,
) -> dict[str, Any]:
    """``progress`` (:func:`progress_checkpoint`) and the optimisation state: ``last.pt``, what
    ``--resume`` continues from; with ``pending_row`` (:data:`PENDING_ROW`) and
    ``pending_seconds`` (:data:`PENDING_SECONDS`) where its epoch was not validated."""
    states = (optimizer, scheduler, scaler)
    last = dict(progress) | {
        key: state.state_dict() for key, state in zip(OPTIMISATION_STATE, states, strict=True)
    }
    if pending_row is not None:
        last[PENDING_ROW] = dict(pending_row)
    if pending_seconds is not None:
        last[PENDING_SECONDS] = float(pending_seconds)
    return last


def optimiser_tensors(state: Mapping[str, Any]) -> dict[str, Any]:
    """The per-parameter values of an optimiser's state dict ``state`` (Adam's ``exp_avg``,
    ``exp_avg_sq`` and ``step`` of each parameter), named ``optimizer.state.<index>.<name>``
    as :func:`first_non_finite` reports them."""
    return {
        f"optimizer.state.{index}.{name}": value
        for index, values in state["state"].items()
        for name, value in values.items()
    }


def holds_best(state: Mapping[str, Any]) -> bool:
    """Whether the weights of ``state`` (a :func:`progress_checkpoint` or ``last.pt``) are its
    run's best: its epoch is the best one (the module docstring's table)."""
    return state["best_epoch"] + 1 == state["epoch"]


def progress_of(state: Mapping[str, Any]) -> dict[str, Any]:
    """``last.pt`` (:func:`training_state`) without its optimisation state and pending epoch: the
    :func:`progress_checkpoint` it was made from, which is ``best.pt`` when its epoch is the
    run's best."""
    last_only = (*OPTIMISATION_STATE, PENDING_ROW, PENDING_SECONDS)
    return {key: value for key, value in state.items() if key not in last_only}


def restore_training_state(
    checkpoint: Mapping[str, Any],
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> None:
    """Load into ``optimizer``, ``scheduler`` and ``scaler`` the states :func:`training_state`
    saved in ``checkpoint`` (read by :func:`load_training_state`).

    A run on a CPU saves the empty state of its disabled scaler; resumed on a GPU (``device`` may
    change), the enabled scaler starts afresh instead of refusing that state. The optimiser keeps
    the implementation it was built with (``fused``, ``foreach``): torch would take the saved
    one, and a checkpoint of torch's default Adam would resume unfused."""
    states = (optimizer, scheduler, scaler)
    for key, state in zip(OPTIMISATION_STATE, states, strict=True):
        if state is scaler and not checkpoint[key]:
            continue  # saved by a disabled scaler: nothing to restore
        saved = checkpoint[key]
        if state is optimizer and len(saved["param_groups"]) == len(optimizer.param_groups):
            # Set before loading: torch places each saved ``step`` by the saved group's flags
            # (on the parameters' device when fused). Unequal groups are torch's to refuse.
            groups = zip(saved["param_groups"], optimizer.param_groups, strict=True)
            saved = dict(saved) | {
                "param_groups": [
                    group | {flag: ours[flag] for flag in _IMPLEMENTATION} for group, ours in groups
                ]
            }
        state.load_state_dict(saved)


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically: a crash leaves the old file or the new one.

    Raises:
        CheckpointError: the file cannot be written (a full disk makes torch report only
            "unexpected pos"), naming it; the old file is kept and no partial file is left.
    """
    try:
        write_atomic(path, lambda tmp: torch.save(dict(state), tmp))
    except (OSError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: cannot write the checkpoint ({error_line(error)})"
        ) from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint`, onto the CPU.

    Raises:
        FileNotFoundError, IsADirectoryError: ``path`` is not a file
            (:func:`hopose.files.require_file`).
        CheckpointError: the file is not a readable hopose checkpoint of :data:`FORMAT`, one
            line naming it.
    """
    try:
        checkpoint = read_torch_file(path, "checkpoint")
    except ValueError as error:  # the file's one line, as the error of checkpoints
        raise CheckpointError(str(error)) from None
    if not isinstance(checkpoint, dict) or "format" not in checkpoint:
        raise CheckpointError(
            f"{path}: not a hopose checkpoint of format {FORMAT} (no 'format' key; a file "
            "written by an older hopose must be retrained)"
        )
    if checkpoint["format"] != FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {checkpoint['format']}, this hopose reads format {FORMAT}"
        )
    missing = [key for key in _REQUIRED if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    stage, trained = checkpoint["stage"], checkpoint["trained"]
    # Checked by type first: a damaged file's field of another type (an int, a list where a
    # string belongs) must be this one line, not a TypeError from `in` or `set`.
    if not isinstance(stage, str) or stage not in STAGES:
        raise CheckpointError(f"{path}: unknown stage {stage!r} (expected one of {tuple(STAGES)})")
    if not isinstance(trained, list | tuple) or not all(
        isinstance(part, str) and part in PARTS for part in trained
    ):
        raise CheckpointError(f"{path}: 'trained' must list parts of {PARTS}, got {trained!r}")
    for key in ("model", "config"):
        if not isinstance(checkpoint[key], dict):
            kind = type(checkpoint[key]).__name__
            raise CheckpointError(f"{path}: '{key}' must be a dict, got a {kind}")
    return checkpoint


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a number: an int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optimizer_state(value: Any) -> bool:
    """Whether ``value`` has the form of an optimiser's state dict, which torch reads as such."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("state"), dict)
        and all(isinstance(values, dict) for values in value["state"].values())
        and isinstance(value.get("param_groups"), list)
        and all(isinstance(group, dict) for group in value["param_groups"])
    )


def _scaler_state(value: Any) -> bool:
    """Whether ``value`` is a gradient scaler's state dict: a disabled scaler's empty one, or
    one holding every key an enabled scaler writes (torch reads each)."""
    written = torch.amp.GradScaler("cpu", enabled=True).state_dict()
    return isinstance(value, dict) and (not value or set(written) <= set(value))


# What --resume reads of last.pt besides the network, as each must be: another value (a
# damaged or hand-edited file) failed where the run read it, as a KeyError or TypeError
# naming no file, or, as a scheduler's {}, resumed on a restarted schedule without a word.
_RESUMED: dict[str, JsonType] = {
    "epoch": JsonType(
        f"the epochs done, a whole number in [1, {MAX_EPOCHS}]",
        lambda value: is_whole_number(value) and 1 <= value <= MAX_EPOCHS,
    ),
    "best": JsonType(
        "the best validation error, a number >= 0 (inf before any)",
        lambda value: _is_number(value) and value >= 0,
    ),
    "best_epoch": JsonType(
        "the best epoch's 0-based index, a whole number >= -1 (-1 before any validation)",
        lambda value: is_whole_number(value) and value >= -1,
    ),
    "world_size": JsonType(
        "the processes that trained it, a whole number >= 1",
        lambda value: is_whole_number(value) and value >= 1,
    ),
    "optimizer": JsonType(
        "an optimiser's state dict (a dict of 'state' and a list of 'param_groups')",
        _optimizer_state,
    ),
    "scheduler": JsonType(
        "a learning-rate schedule's state dict (a dict with a whole 'last_epoch')",
        lambda value: isinstance(value, dict) and is_whole_number(value.get("last_epoch")),
    ),
    "scaler": JsonType(
        "a gradient scaler's state dict (empty where it was disabled)", _scaler_state
    ),
    PENDING_ROW: JsonType(
        "a metrics row, a dict of column names to numbers with epoch, lr and train/total",
        lambda value: (
            isinstance(value, dict)
            and {"epoch", "lr", "train/total"} <= value.keys()
            and all(isinstance(name, str) and _is_number(cell) for name, cell in value.items())
        ),
    ),
    PENDING_SECONDS: JsonType(
        "the pending epoch's training time, a finite number of seconds >= 0",
        lambda value: _is_number(value) and 0 <= value < math.inf,
    ),
}


def _shown(value: Any) -> str:
    """``value`` as an error quotes it: a scalar or an empty container itself (cut to 40
    characters), else its type."""
    empty = isinstance(value, dict | list | tuple) and not value
    if empty or value is None or isinstance(value, bool | int | float | str):
        text = repr(value)
        return text if len(text) <= 40 else f"{text[:37]}..."
    return f"a {type(value).__name__}"


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read the checkpoint ``--resume`` continues from: :func:`load_checkpoint`'s, holding the
    progress (:data:`PROGRESS_KEYS`) and the optimisation state too (:func:`training_state`),
    each of the form a run writes (``world_size`` where there is one).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is not a readable checkpoint, lacks the progress or the
            optimisation state (``best.pt`` and weights-only checkpoints), holds one of
            another type or range (``best_epoch`` not below ``epoch``), or weights or an
            optimiser state holding NaN or an infinity (before a resume writes ``best.pt`` from
            them, or trains from them): one line naming the file and the keys. The weights
            checked here, a resume loads them with ``load_weights(..., checked=True)``.
    """
    checkpoint = load_checkpoint(path)
    missing = [key for key in (*PROGRESS_KEYS, *OPTIMISATION_STATE) if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"{path}: holds weights but no training state to resume (lacks {missing}); "
            "--resume continues from the last.pt a run writes"
        )
    for key, kind in _RESUMED.items():
        if key in checkpoint and not kind.holds(checkpoint[key]):
            raise CheckpointError(
                f"{path}: '{key}' must be {kind.words}, got {_shown(checkpoint[key])}"
            )
    if checkpoint["best_epoch"] >= checkpoint["epoch"]:
        raise CheckpointError(
            f"{path}: 'best_epoch' ({checkpoint['best_epoch']}, 0-based) must be below 'epoch' "
            f"({checkpoint['epoch']}, the epochs done)"
        )
    _require_finite(checkpoint["model"], path)
    _require_finite(
        optimiser_tensors(checkpoint["optimizer"]), path, "the optimiser's state tensors"
    )
    return checkpoint


def checkpoint_config(path: str | Path, checkpoint: Mapping[str, Any]) -> TrainConfig:
    """The training config stored in ``checkpoint`` (read from ``path``)."""
    try:
        return config_from_dict(checkpoint["config"])
    except ConfigError as error:
        raise CheckpointError(f"{path}: its config: {error}") from None


def untrained_network(cfg: ModelConfig) -> HoposeNet:
    """An untrained network of ``cfg``'s architecture, for a checkpoint's weights: a loaded
    model's, a resumed run's, or those of ``init_from``'s trained encoder.

    ``backbone_weights`` is dropped, without the random backbone's warning: the checkpoint's
    weights replace the backbone's anyway, and the file named on the training machine (or by an
    earlier stage's run) need not exist here.
    """
    with random_backbone_expected():
        return build_model(dataclasses.replace(cfg, backbone_weights=None))


# Keys quoted from torch's list of missing or unexpected keys (it lists every one).
_KEYS_SHOWN = 3
# Model fields named when a part's weights do not fit the new run's network.
_FIELDS_SHOWN = 3


def _load_state(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: Path,
    why: Callable[[], str] | None = None,
) -> None:
    """Load ``state`` into ``module``; weights that do not fit are one line naming ``path`` and
    torch's reason, then what ``why()`` adds (called only then: it may build networks)."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError) as error:
        # torch's first line only says "Error(s) in loading state_dict for HoposeNet:"; the
        # reasons (missing or unexpected keys, size mismatches) follow, one a line.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reasons = lines[1:] or lines or [type(error).__name__]
        reason = reasons[0]
        head, _, keys = reason.partition(": ")
        names = keys.rstrip(".").split(", ")
        listed = head in ("Missing key(s) in state_dict", "Unexpected key(s) in state_dict")
        if listed and len(names) > _KEYS_SHOWN:
            reason = f"{head}: {', '.join(names[:_KEYS_SHOWN])}, ... ({len(names)} keys)"
        if len(reasons) > 1:
            reason += f"; and {len(reasons) - 1} more"
        if why is not None and (more := why()):
            reason += f"; {more}"
        raise CheckpointError(f"{path}: its weights do not fit the network ({reason})") from None


def first_non_finite(tensors: Mapping[str, Any]) -> str | None:
    """The first key of ``tensors`` whose value is a floating-point tensor holding NaN or an
    infinity; None where there is none (values of other types are passed over).

    One read of the flags, not one per tensor: run on a GPU network's weights and optimiser
    state, a read per tensor would wait for the GPU hundreds of times."""
    floating = {
        key: value
        for key, value in tensors.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point()
    }
    if not floating:
        return None
    flags = [torch.isfinite(value).all() for value in floating.values()]
    device = flags[0].device  # all of them, as a rule (a network's, an optimiser's)
    finite = torch.stack([flag.to(device) for flag in flags]).tolist()
    return next((key for key, ok in zip(floating, finite, strict=True) if not ok), None)


def _require_finite(
    state: Mapping[str, Any], path: str | Path, what: str = "model weights"
) -> None:
    """Refuse ``what`` (weights, an optimiser's state tensors) holding NaN or an infinity, naming
    ``path`` and the first such key: weights would load and predict NaN, or fail later in
    whatever reads the predictions; an optimiser's state would put NaN in the weights at its
    first step."""
    key = first_non_finite(state)
    if key is not None:
        raise CheckpointError(f"{path}: {what} hold non-finite values ({key})")


def load_weights(
    model: nn.Module, checkpoint: Mapping[str, Any], path: str | Path, *, checked: bool = False
) -> None:
    """Load the whole network's weights of ``checkpoint`` (read from ``path``) into ``model``;
    weights that do not fit, or hold NaN or infinities, are one line naming ``path``
    (:class:`CheckpointError`). ``checked``: ``checkpoint`` was read by
    :func:`load_training_state`, which refused such weights already (a resume reads them
    once)."""
    if not checked:
        _require_finite(checkpoint["model"], path)
    _load_state(model, checkpoint["model"], Path(path))


def _shapes(cfg: ModelConfig, part: str) -> dict[str, torch.Size]:
    """Names and shapes of ``part``'s weights in the network ``cfg`` builds."""
    return {k: v.shape for k, v in getattr(untrained_network(cfg), part).state_dict().items()}


def _changes_shapes(
    base: ModelConfig, name: str, value: object, part: str, shapes: dict[str, torch.Size]
) -> bool:
    """Whether setting field ``name`` of ``base`` to ``value`` alone changes ``part``'s weights
    from ``shapes``; False where that alone makes no valid config (``model.head: linear`` with
    ``model.segmentation``, which needs the heat-map head)."""
    try:
        changed = dataclasses.replace(base, **{name: value})
    except ConfigError:
        return False
    return _shapes(changed, part) != shapes


def _differing_fields(
    part: str, ours: ModelConfig, path: Path, checkpoint: Mapping[str, Any]
) -> str:
    """The ``model`` fields on which ``ours`` and the run that wrote ``checkpoint`` differ and
    that shape ``part``'s weights (changing one alone, in either config, changes their names or
    shapes), as "the run that wrote it had model.F=THEIRS (OURS here), ..."; "" when none.

    Shape, not mere difference: a recipe's lifter and encoder stages differ in ``model.head``,
    which the lifter's weights do not depend on."""
    theirs = checkpoint_config(path, checkpoint).model
    differing = [
        field.name
        for field in dataclasses.fields(ModelConfig)
        if getattr(ours, field.name) != getattr(theirs, field.name)
    ]
    if not differing:
        return ""
    pairs = ((ours, theirs), (theirs, ours))
    before = [_shapes(base, part) for base, _ in pairs]
    fields = [
        name
        for name in differing
        if any(
            _changes_shapes(base, name, getattr(other, name), part, shapes)
            for (base, other), shapes in zip(pairs, before, strict=True)
        )
    ]
    named = [
        f"model.{name}={as_yaml(getattr(theirs, name))} ({as_yaml(getattr(ours, name))} here)"
        for name in fields[:_FIELDS_SHOWN]
    ]
    if len(fields) > _FIELDS_SHOWN:
        named.append(f"... ({len(fields)} fields)")
    return f"the run that wrote it had {', '.join(named)}" if named else ""


def load_model(path: str | Path, *, from_images: bool = True) -> tuple[HoposeNet, TrainConfig]:
    """The network saved in a checkpoint, on the CPU, with the config it was trained with.

    Args:
        path: a checkpoint file.
        from_images: the network will predict from images, which needs the encoder and the lifter
            trained; False: it will lift ground-truth 2D, which needs the lifter only.

    Raises:
        CheckpointError: the file is unreadable, a part the use needs was never trained (e.g.
            images through a lifter-stage checkpoint's random encoder), or the weights hold NaN
            or infinities.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path)
    needed = IMAGE_PARTS if from_images else GT_2D_PARTS
    untrained = sorted(needed - set(checkpoint["trained"]))
    if untrained:
        use = "predict from images" if from_images else "lift ground-truth 2D"
        hint = "train the next stages from it with init_from"
        if "lifter" not in untrained:
            # Every command's way to the part that was trained, since any of them may load it.
            hint += ", or use its lifter alone: hopose eval --gt-2d, hopose export --graph lifter"
        stage = checkpoint["stage"]
        article = "an" if stage[0] in "aeiou" else "a"
        raise CheckpointError(
            f"{path}: {article} {stage}-stage checkpoint whose {' and '.join(untrained)} "
            f"was never trained cannot {use} ({hint})"
        )
    cfg = checkpoint_config(path, checkpoint)
    model = untrained_network(cfg.model)
    load_weights(model, checkpoint, path)
    return model, cfg


def load_trained_parts(
    model: HoposeNet, checkpoint: Mapping[str, Any], path: str | Path, model_cfg: ModelConfig
) -> frozenset[str]:
    """``init_from``: copy into ``model`` (built from ``model_cfg``) the parts ``checkpoint``
    (read from ``path`` by :func:`load_checkpoint`) trained, leave the others.

    A part the checkpoint never trained is random there; copying it would, for instance, replace
    a backbone just read from ``model.backbone_weights`` with noise.

    Returns:
        The parts copied (to be recorded as trained by the new run).

    Raises:
        CheckpointError: a part's weights hold NaN or infinities (one line naming the file and
            the first such key), or do not fit ``model``: one line naming the file, torch's
            reason and the ``model`` fields that the run that wrote it set otherwise and that
            shape the part's weights (none for weights edited by hand).
    """
    path = Path(path)
    trained = frozenset(checkpoint["trained"])
    for part in sorted(trained):
        prefix = f"{part}."
        weights = {k: v for k, v in checkpoint["model"].items() if k.startswith(prefix)}
        _require_finite(weights, path)
        state = {k[len(prefix) :]: v for k, v in weights.items()}
        why = functools.partial(_differing_fields, part, model_cfg, path, checkpoint)
        _load_state(getattr(model, part), state, path, why)
    return trained
