"""Checkpoints: atomic writes, one-line refusals of bad files and of uses a checkpoint cannot
serve, ``init_from`` copying only trained parts, and loading without the backbone file."""

from __future__ import annotations

import math
import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import torchvision

from hopose.checkpoint import (
    FORMAT,
    PENDING_ROW,
    PENDING_SECONDS,
    CheckpointError,
    checkpoint_config,
    first_non_finite,
    load_checkpoint,
    load_model,
    load_trained_parts,
    load_training_state,
    model_checkpoint,
    progress_of,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from hopose.config import OptimConfig
from hopose.evaluate import run_eval
from hopose.models import build_model
from hopose.train import make_optimizer, train
from tiny_runs import tiny

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")


@pytest.fixture(scope="module")
def lifter_run(tmp_path_factory) -> Path:
    """A lifter-stage run: its checkpoint's encoder was never trained."""
    out = tmp_path_factory.mktemp("lifter")
    return Path(train(tiny("lifter"), out).checkpoint)


def test_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous checkpoint intact and no partial file."""
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def crash(obj, f):
        Path(f).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}


def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    """A full disk: torch's own message names nothing."""
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def full_disk(obj, f):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError) as error:
        save_checkpoint({"epoch": 2}, path)
    assert str(error.value) == (
        f"{path}: cannot write the checkpoint ([enforce fail at inline_container.cc:664] . "
        "unexpected pos 64 vs 0)"
    )
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def _with(path: Path, source: Path, **fields) -> None:
    """``source``'s checkpoint with ``fields`` replaced, saved at ``path``."""
    torch.save(torch.load(source, weights_only=True) | fields, path)


def _with_options(path: Path, source: Path, options: object) -> None:
    """``source``'s checkpoint with its config's ``data.options`` replaced."""
    config = torch.load(source, weights_only=True)["config"]
    _with(path, source, config=config | {"data": config["data"] | {"options": options}})


def _truncated(path: Path, source: Path) -> None:
    path.write_bytes(source.read_bytes()[:1000])


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (_truncated, "not a readable checkpoint"),
        (lambda path, _: path.write_text("hello"), "not a readable checkpoint (not the zip"),
        (lambda path, _: path.write_text("stage: lifter\n"), "checkpoint (not the zip archive"),
        # An object that would need code to unpickle: weights_only refuses to build it.
        (lambda path, _: torch.save({"x": Path("/")}, path), "not a readable checkpoint"),
        # A checkpoint of the layout before the format key (model, config, epoch...).
        (lambda path, _: torch.save({"model": {}, "config": {}}, path), "no 'format' key"),
        (lambda path, _: torch.save({"format": 99}, path), "checkpoint format 99, this hopose"),
        # Damaged fields of the right format: each was a TypeError or AttributeError traceback.
        (lambda path, src: _with(path, src, trained=5), "'trained' must list parts of"),
        (lambda path, src: _with(path, src, stage=["lifter"]), "unknown stage ['lifter']"),
        (lambda path, src: _with(path, src, model=[1, 2]), "'model' must be a dict, got a list"),
        (lambda path, src: _with(path, src, config="x"), "'config' must be a dict, got a str"),
    ],
    ids=[
        "truncated", "text", "yaml", "code", "old_layout", "future_format",
        "trained_int", "stage_list", "model_list", "config_str",
    ],
)  # fmt: skip
def test_bad_files_get_one_line_naming_the_file(tmp_path, lifter_run, write, message):
    path = tmp_path / "bad.pt"
    write(path, lifter_run)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text
    assert "weights_only" not in text  # torch's advice to trust the file is not repeated


def test_a_config_damaged_inside_is_one_line_naming_the_file_and_field(tmp_path, lifter_run):
    """A list where the mapping ``data.options`` belongs: OmegaConf's merge raised a bare
    TypeError ("Cannot merge incompatible container types") naming neither."""
    path = tmp_path / "bad.pt"
    _with_options(path, lifter_run, [1])
    with pytest.raises(CheckpointError) as error:
        load_model(path, from_images=False)
    assert str(error.value) == f"{path}: its config: data.options must be a mapping, got [1]"


def test_weights_that_do_not_fit_are_named_on_one_line(tmp_path, lifter_run):
    """torch's own first line names no key ("Error(s) in loading state_dict for HoposeNet:")."""
    checkpoint = torch.load(lifter_run, weights_only=True)
    name = next(iter(checkpoint["model"]))
    del checkpoint["model"][name]
    path = tmp_path / "damaged.pt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError) as error:
        load_model(path, from_images=False)
    text = str(error.value)
    assert text.startswith(f"{path}: its weights do not fit the network (Missing key(s)")
    assert f'"{name}"' in text and "\n" not in text


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_weights_holding_nan_or_inf_are_refused_naming_the_file_and_key(
    tmp_path, lifter_run, value
):
    """Such a checkpoint predicted NaN keypoints into the JSON and infinite metrics, and export
    blamed the export; loaded for use (load_model) or by init_from, it is one line now."""
    checkpoint = load_checkpoint(lifter_run)
    weights = checkpoint["model"].items()
    name = next(k for k, v in weights if k.startswith("lifter.") and v.is_floating_point())
    checkpoint["model"][name].view(-1)[-1] = value
    path = tmp_path / "diverged.pt"
    torch.save(checkpoint, path)
    message = f"{path}: model weights hold non-finite values ({name})"
    with pytest.raises(CheckpointError) as error:
        load_model(path, from_images=False)
    assert str(error.value) == message
    cfg = tiny("lifter")
    with pytest.raises(CheckpointError) as error:
        load_trained_parts(build_model(cfg.model), load_checkpoint(path), path, cfg.model)
    assert str(error.value) == message


def test_a_directory_named_as_the_checkpoint_is_refused_as_one(tmp_path):
    """It was "checkpoint not found", which it is not; refused as a photo or a predictions.npz
    that is a directory is (hopose.files.require_file)."""
    path = tmp_path / "d.pt"
    path.mkdir()
    with pytest.raises(IsADirectoryError) as error:
        load_checkpoint(path)
    assert str(error.value) == f"{path}: a directory; give the checkpoint file"
    with pytest.raises(FileNotFoundError) as error:
        load_checkpoint(tmp_path / "missing.pt")
    assert str(error.value) == f"checkpoint not found: {tmp_path / 'missing.pt'}"


def test_init_from_a_lifter_of_the_other_modulation_names_the_field(tmp_path, lifter_run):
    """The shipped synthetic configs modulate their graph layers; a stage that does not cannot
    start from their lifter, and the one line says which field differs and how. The encoder
    stage's ``model.head`` differs too, but does not shape the lifter's weights."""
    cfg = tiny("encoder", f"init_from={lifter_run}", "model.modulated=false")
    assert cfg.model.head != load_model(lifter_run, from_images=False)[1].model.head
    with pytest.raises(CheckpointError) as error:
        train(cfg, tmp_path / "encoder")
    text = str(error.value)
    assert text.startswith(f"{lifter_run}: its weights do not fit the network (Unexpected key(s)")
    assert text.endswith("; the run that wrote it had model.modulated=true (false here))")
    assert "model.head" not in text and "\n" not in text


def test_init_from_names_every_field_that_shapes_the_weights(lifter_run):
    """Another width of the graph layers: named with both values, beside the modulation;
    ``model.dropout``, which holds no weights, is not."""
    cfg = tiny("lifter", "model.hidden=32", "model.modulated=false", "model.dropout=0.5")
    with pytest.raises(CheckpointError) as error:
        load_trained_parts(
            build_model(cfg.model), load_checkpoint(lifter_run), lifter_run, cfg.model
        )
    text = str(error.value)
    assert text.startswith(f"{lifter_run}: its weights do not fit the network (")
    assert text.endswith(
        "; the run that wrote it had model.hidden=16 (32 here), model.modulated=true (false here))"
    )
    assert "\n" not in text


def test_weights_edited_by_hand_name_no_field(lifter_run):
    """The configs agree: torch's reason alone, no field to blame."""
    checkpoint = load_checkpoint(lifter_run)
    name = next(key for key in checkpoint["model"] if key.startswith("lifter.") and "weight" in key)
    del checkpoint["model"][name]
    cfg = tiny("lifter")
    assert checkpoint_config(lifter_run, checkpoint).model == cfg.model
    with pytest.raises(CheckpointError) as error:
        load_trained_parts(build_model(cfg.model), checkpoint, lifter_run, cfg.model)
    text = str(error.value)
    reason = f'Missing key(s) in state_dict: "{name.removeprefix("lifter.")}".'
    assert text == f"{lifter_run}: its weights do not fit the network ({reason})"


def test_init_from_an_encoder_with_segmentation_maps_names_the_field(tmp_path):
    """The demo's encoder carries a segmentation classifier; the paper's linear head, without
    one, cannot start from it. Both fields shape the encoder's weights and are named, although
    neither can be changed alone in the demo's config (segmentation maps need the heat-map
    head), only in the paper's."""
    theirs = tiny("end2end")
    assert theirs.model.segmentation
    path = tmp_path / "encoder.pt"
    model = build_model(theirs.model)
    save_checkpoint(model_checkpoint(model, theirs, trained=("encoder", "lifter")), path)
    ours = tiny(
        "end2end",
        "model.head=linear",
        "loss.w_heatmap=0",
        "model.segmentation=false",
        "loss.w_segmentation=0",
    )
    with pytest.raises(CheckpointError) as error:
        load_trained_parts(build_model(ours.model), load_checkpoint(path), path, ours.model)
    text = str(error.value)
    assert text.startswith(f"{path}: its weights do not fit the network (Missing key(s)")
    assert text.endswith(
        "; the run that wrote it had model.head=heatmap (linear here), "
        "model.segmentation=true (false here))"
    )


def test_the_model_is_rebuilt_without_the_training_machines_backbone_file(tmp_path):
    """The config names a backbone file that does not exist here: the checkpoint's weights are
    loaded without reading it or warning about it."""
    cfg = tiny("end2end")
    torch.manual_seed(0)
    model = build_model(cfg.model)
    cfg.model.backbone_weights = str(tmp_path / "on_the_training_machine" / "r18.pth")
    path = tmp_path / "model.pt"
    save_checkpoint(model_checkpoint(model, cfg, trained=("encoder", "lifter")), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded, loaded_cfg = load_model(path)
    assert loaded_cfg == cfg  # the whole config, the backbone file's name included
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_a_lifter_checkpoint_cannot_predict_from_images(tmp_path, lifter_run):
    """Its encoder is random (458-493 mm from images before this was refused); its lifter on
    ground-truth 2D is what it was trained for."""
    data = tiny("lifter").data
    with pytest.raises(CheckpointError) as error:
        run_eval(lifter_run, data, "test", tmp_path / "images", report=False)
    assert str(error.value) == (
        f"{lifter_run}: a lifter-stage checkpoint whose encoder was never trained cannot predict "
        "from images (train the next stages from it with init_from, or use its lifter alone: "
        "hopose eval --gt-2d, hopose export --graph lifter)"
    )
    assert not (tmp_path / "images" / "predictions.npz").exists()
    summary = run_eval(lifter_run, data, "test", tmp_path / "gt_2d", gt_2d=True, report=False)
    assert summary["n"] == 16


def test_init_from_keeps_the_backbone_file_and_copies_only_trained_parts(tmp_path, lifter_run):
    """Encoder stage from a lifter checkpoint with ``model.backbone_weights``: the backbone is
    the file's (not the lifter run's random one), the lifter is the lifter run's. A learning
    rate of 1e-9 keeps the weights within 1e-6 of where training started."""
    torch.manual_seed(123)
    backbone = torchvision.models.resnet18(weights=None)
    weights = tmp_path / "r18.pth"
    torch.save(backbone.state_dict(), weights)
    cfg = tiny(
        "encoder", f"init_from={lifter_run}", f"model.backbone_weights={weights}", "optim.lr=1e-9"
    )
    result = train(cfg, tmp_path / "encoder")
    conv1 = result.model.encoder.backbone.conv1.weight
    previous = load_checkpoint(lifter_run)
    assert torch.allclose(conv1, backbone.conv1.weight, atol=1e-6)
    assert not torch.allclose(conv1, previous["model"]["encoder.backbone.conv1.weight"], atol=1e-3)
    for name, value in result.model.lifter.state_dict().items():
        assert torch.equal(value, previous["model"][f"lifter.{name}"]), name
    assert load_checkpoint(result.checkpoint)["trained"] == ["encoder", "lifter"]
    assert previous["trained"] == ["lifter"]


def test_a_cpu_runs_scaler_state_resumes_into_a_gpu_runs_scaler():
    """``device`` may change on --resume: a CPU run saves its disabled scaler's empty state, which
    an enabled scaler (a GPU run under optim.amp) does not refuse; it starts afresh. The
    optimiser's and scheduler's states are restored as ever."""
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    weight.grad = torch.ones(2)
    optimizer.step()
    scheduler.step()
    cpu_scaler = torch.amp.GradScaler("cpu", enabled=False)
    saved = training_state({}, optimizer=optimizer, scheduler=scheduler, scaler=cpu_scaler)
    assert saved["scaler"] == {}

    resumed_optimizer = torch.optim.Adam([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    resumed_scheduler = torch.optim.lr_scheduler.StepLR(resumed_optimizer, step_size=1, gamma=0.5)
    enabled = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)  # stands for cuda
    restore_training_state(
        saved, optimizer=resumed_optimizer, scheduler=resumed_scheduler, scaler=enabled
    )
    assert resumed_scheduler.last_epoch == 1 and resumed_optimizer.param_groups[0]["lr"] == 0.05
    assert enabled.get_scale() == 1024.0
    # An enabled scaler's own state is restored.
    enabled.scale(torch.ones(()))
    enabled.update(new_scale=8.0)
    fresh = torch.amp.GradScaler("cpu", enabled=True)
    restore_training_state(
        training_state({}, optimizer=optimizer, scheduler=scheduler, scaler=enabled),
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=fresh,
    )
    assert fresh.get_scale() == 8.0


def test_a_checkpoint_of_torchs_default_adam_resumes_into_the_fused_adam():
    """last.pt written before every stage's Adam was fused (make_optimizer) holds
    ``fused: None``; resumed, the run keeps the fused Adam it built, with the saved moments."""
    weight = torch.nn.Parameter(torch.ones(2))
    old = torch.optim.Adam([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(old, step_size=1)
    weight.grad = torch.tensor([1.0, -2.0])
    old.step()
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    saved = training_state({}, optimizer=old, scheduler=scheduler, scaler=disabled)
    assert saved["optimizer"]["param_groups"][0]["fused"] is None

    resumed = torch.nn.Parameter(weight.detach().clone())
    optimizer = make_optimizer([resumed], OptimConfig(lr=0.1))
    restore_training_state(
        saved,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=1),
        scaler=disabled,
    )
    assert optimizer.param_groups[0]["fused"] is True
    assert torch.equal(optimizer.state[resumed]["exp_avg"], old.state[weight]["exp_avg"])
    resumed.grad = weight.grad.clone()
    optimizer.step()
    old.step()
    torch.testing.assert_close(resumed, weight)  # the same update, fused


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stage": "lifter"}, "checkpoint lacks ['trained', 'model', 'config']"),
        (
            {"stage": "decoder", "trained": [], "model": {}, "config": {}},
            "unknown stage 'decoder' (expected one of ('lifter', 'encoder', 'end2end'))",
        ),
        (
            {"stage": "lifter", "trained": ["lifter", "wings"], "model": {}, "config": {}},
            "'trained' must list parts of",
        ),
    ],
    ids=["missing_keys", "unknown_stage", "unknown_part"],
)
def test_a_checkpoint_of_this_format_with_missing_or_unknown_fields_is_refused(
    tmp_path, fields, message
):
    """The right format key is not enough: every required key is there, the stage is one of
    hopose's and every trained part is one of the network's, each checked by value, not only by
    type (a string stage or part of another name would fail later, far from the file)."""
    path = tmp_path / "odd.pt"
    torch.save({"format": FORMAT, **fields}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_progress_of_last_pt_is_exactly_the_progress_it_was_made_from():
    """A resume writes best.pt from last.pt: without any of the optimisation state (the three
    keys ``training_state`` adds), and with everything else as it was."""
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    scaler = torch.amp.GradScaler("cpu", enabled=True)  # a non-empty state, as on a GPU
    progress = {"format": FORMAT, "stage": "lifter", "epoch": 3, "best": 1.5, "best_epoch": 1}
    state = training_state(progress, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
    assert set(state) == set(progress) | {"optimizer", "scheduler", "scaler"}
    assert all(state[key] for key in ("optimizer", "scheduler", "scaler"))
    assert progress_of(state) == progress


def test_an_encoder_stage_checkpoint_serves_neither_use_and_offers_no_lifter_alone(tmp_path):
    """An encoder stage trained without init_from leaves a random lifter: refused to predict
    from images and to lift ground-truth 2D, naming the lifter, with "an" before the stage, and
    without the hint to use its lifter alone (which is the random part)."""
    cfg = tiny("encoder")
    path = tmp_path / "encoder.pt"
    save_checkpoint(model_checkpoint(build_model(cfg.model), cfg, trained=("encoder",)), path)
    for from_images, use in ((True, "predict from images"), (False, "lift ground-truth 2D")):
        with pytest.raises(CheckpointError) as error:
            load_model(path, from_images=from_images)
        assert str(error.value) == (
            f"{path}: an encoder-stage checkpoint whose lifter was never trained cannot {use} "
            "(train the next stages from it with init_from)"
        )


def test_init_from_copies_every_part_the_checkpoint_trained(tmp_path):
    """A checkpoint of both parts (an encoder stage's, init_from of the end-to-end stage): every
    weight and buffer of the new network becomes the checkpoint's, the lifter's as well as the
    encoder's; copying only the first part would fine-tune from a random lifter."""
    cfg = tiny("end2end")
    torch.manual_seed(0)
    theirs = build_model(cfg.model)
    path = tmp_path / "both.pt"
    save_checkpoint(model_checkpoint(theirs, cfg, trained=("encoder", "lifter")), path)
    torch.manual_seed(1)
    ours = build_model(cfg.model)
    before = ours.state_dict()
    differing = {
        k.split(".")[0] for k, v in theirs.state_dict().items() if not torch.equal(before[k], v)
    }
    assert differing == {"encoder", "lifter"}  # not vacuous: both parts start otherwise
    copied = load_trained_parts(ours, load_checkpoint(path), path, cfg.model)
    assert copied == {"encoder", "lifter"}
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


_MISSING = object()  # a key taken out of the file


def _resumable(path: Path, key: str | None = None, value: object = None) -> Path:
    """A last.pt as a run writes it (its weights and config stand in: --resume's reading does
    not look inside them), after epoch 2 of a run whose best was epoch 2 (0-based index 1),
    with ``key`` set to ``value`` or, for ``_MISSING``, taken out."""
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    progress = {
        "format": FORMAT, "stage": "lifter", "trained": ["lifter"], "model": {}, "config": {},
        "epoch": 2, "best": 1.5, "best_epoch": 1, "world_size": 1,
    }  # fmt: skip
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    state = training_state(progress, optimizer=optimizer, scheduler=scheduler, scaler=disabled)
    if key is not None:
        state.pop(key) if value is _MISSING else state.__setitem__(key, value)
    torch.save(state, path)
    return path


EPOCH = "'epoch' must be the epochs done, a whole number in [1, 1048576], got"
BEST = "'best' must be the best validation error, a number >= 0 (inf before any), got"
BEST_EPOCH = (
    "'best_epoch' must be the best epoch's 0-based index, a whole number >= -1 (-1 before any "
    "validation), got"
)
OPTIMIZER = (
    "'optimizer' must be an optimiser's state dict (a dict of 'state' and a list of "
    "'param_groups'), got"
)
SCHEDULER = (
    "'scheduler' must be a learning-rate schedule's state dict (a dict with a whole "
    "'last_epoch'), got"
)
SCALER = "'scaler' must be a gradient scaler's state dict (empty where it was disabled), got"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epoch", _MISSING, "holds weights but no training state to resume (lacks ['epoch']); "
         "--resume continues from the last.pt a run writes"),
        # Was "epoch must be in [0, 1048576)" from the sampler, naming no file.
        ("epoch", -3, f"{EPOCH} -3"),
        ("epoch", 0, f"{EPOCH} 0"),  # last.pt is written after an epoch, never before one
        ("epoch", 2.0, f"{EPOCH} 2.0"),  # range() refused it: a TypeError traceback
        ("epoch", True, f"{EPOCH} True"),  # resumed as epoch 1 without a word
        ("epoch", torch.tensor(2), f"{EPOCH} a Tensor"),
        ("best", _MISSING, "holds weights but no training state to resume (lacks ['best']); "
         "--resume continues from the last.pt a run writes"),
        ("best", "x", f"{BEST} 'x'"),  # TypeError from the first comparison
        ("best", math.nan, f"{BEST} nan"),  # no validation error is below NaN: never updated
        ("best_epoch", "0", f"{BEST_EPOCH} '0'"),  # TypeError from "0" + 1
        # The best epoch's weights from an epoch not yet done.
        ("best_epoch", 2, "'best_epoch' (2, 0-based) must be below 'epoch' (2, the epochs done)"),
        ("world_size", "2", "'world_size' must be the processes that trained it, a whole number "
         ">= 1, got '2'"),
        ("optimizer", None, f"{OPTIMIZER} None"),  # TypeError: not subscriptable
        ("optimizer", {}, f"{OPTIMIZER} {{}}"),  # KeyError: 'param_groups'
        # A parameter's state that is no dict: an AttributeError from the finiteness check.
        ("optimizer", {"state": {0: 5.0}, "param_groups": []}, f"{OPTIMIZER} a dict"),
        ("scheduler", None, f"{SCHEDULER} None"),  # TypeError: not iterable
        ("scheduler", {}, f"{SCHEDULER} {{}}"),  # resumed with the schedule restarted
        ("scaler", None, f"{SCALER} None"),
        ("scaler", {"scale": 2.0}, f"{SCALER} a dict"),  # an enabled scaler's KeyError
    ],
)  # fmt: skip
def test_resume_state_of_another_form_is_one_line_naming_the_file_and_key(
    tmp_path, key, value, message
):
    """Each failed where the run read it (a KeyError or TypeError traceback, or a message
    naming no file), or resumed wrongly without a word."""
    path = _resumable(tmp_path / "last.pt", key, value)
    with pytest.raises(CheckpointError) as error:
        load_training_state(path)
    assert str(error.value) == f"{path}: {message}"


def test_resume_state_at_the_ends_of_its_ranges_is_read_and_just_past_them_refused(tmp_path):
    """The forms every hopose run writes are read: before any validation (best inf, best_epoch
    -1), an enabled scaler's state (a GPU run's), no world_size (an older hopose's), the last
    epoch a run may have; one step past each end is refused."""
    path = tmp_path / "last.pt"
    enabled = torch.amp.GradScaler("cpu", enabled=True).state_dict()
    for key, value, past in [
        ("best", math.inf, -0.001),
        ("best", 0.0, -0.001),
        ("best_epoch", -1, -2),
        ("best_epoch", 1, 2),  # epoch 2
        ("epoch", 2**20, 2**20 + 1),
        ("scaler", enabled, {key: enabled[key] for key in list(enabled)[:-1]}),
        ("world_size", _MISSING, 0),
    ]:
        state = load_training_state(_resumable(path, key, value))
        assert state.get(key) == (None if value is _MISSING else value), key
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))}: '{key}' "):
            load_training_state(_resumable(path, key, past))


def test_resume_of_a_negative_epoch_names_last_pt(tmp_path, lifter_run):
    """Through ``hopose train --resume``: refused before anything is trained, naming the
    file and the key, where the sampler refused "epoch must be in [0, 1048576)"."""
    run = tmp_path / "run"
    shutil.copytree(lifter_run.parent, run)
    last = run / "last.pt"
    state = torch.load(last, weights_only=True)
    torch.save(state | {"epoch": -3}, last)
    before = (run / "metrics.csv").read_text()
    with pytest.raises(CheckpointError) as error:
        train(tiny("lifter", "optim.epochs=2"), run, resume=True)
    assert str(error.value) == f"{last}: {EPOCH} -3"
    assert (run / "metrics.csv").read_text() == before


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_an_optimiser_state_holding_nan_or_inf_is_refused_naming_the_file_and_tensor(
    tmp_path, value
):
    """Adam's state after a step, its first moment finite and its second holding ``value`` in
    one entry: read back where all is finite, refused naming the file and the tensor otherwise.
    A resume trained from it: a NaN there reaches the weights at the first step, an infinity
    freezes the parameter."""
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    weight.grad = torch.ones(2)
    optimizer.step()
    state = optimizer.state_dict()
    path = tmp_path / "last.pt"
    read = load_training_state(_resumable(path, "optimizer", state))["optimizer"]
    assert torch.equal(read["state"][0]["exp_avg_sq"], state["state"][0]["exp_avg_sq"])
    state["state"][0]["exp_avg_sq"][1] = value
    with pytest.raises(CheckpointError) as error:
        load_training_state(_resumable(path, "optimizer", state))
    assert str(error.value) == (
        f"{path}: the optimiser's state tensors hold non-finite values "
        "(optimizer.state.0.exp_avg_sq)"
    )


def test_first_non_finite_names_the_first_nan_or_infinity_of_any_float_type():
    """In order: finite float32 and float64 tensors, an integer tensor and a number (passed
    over: an optimiser's counters, a row's values), a bfloat16 -inf, then a NaN: the first
    non-finite key is the -inf's, then, without it, the NaN's; none without either."""
    tensors = {
        "finite": torch.tensor([1.0, -2.0]),
        "double": torch.tensor([3.0], dtype=torch.float64),
        "count": torch.tensor([7]),
        "number": math.inf,
        "minus_inf": torch.tensor([0.0, -math.inf], dtype=torch.bfloat16),
        "nan": torch.tensor([[math.nan]]),
    }
    assert first_non_finite(tensors) == "minus_inf"
    assert first_non_finite({k: v for k, v in tensors.items() if k != "minus_inf"}) == "nan"
    assert (
        first_non_finite({k: tensors[k] for k in ("finite", "double", "count", "number")}) is None
    )
    assert first_non_finite({}) is None


def test_a_pending_row_is_kept_in_last_pt_alone_and_read_back_or_refused(tmp_path):
    """The metrics row of an epoch saved between validations: in last.pt (its training terms
    cannot be measured again), never in the best.pt made from it; read back as written, and
    one of another form refused naming the file and the key."""
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    progress = {"format": FORMAT, "stage": "lifter", "epoch": 3, "best": 1.5, "best_epoch": 1}
    row = {"epoch": 3, "lr": 0.003, "train/3d": 4.5, "train/total": 9.0}
    state = training_state(
        progress, optimizer=optimizer, scheduler=scheduler, scaler=scaler, pending_row=row,
        pending_seconds=12.5,
    )  # fmt: skip
    assert (state[PENDING_ROW], state[PENDING_SECONDS]) == (row, 12.5)
    assert progress_of(state) == progress
    path = tmp_path / "last.pt"
    assert load_training_state(_resumable(path, PENDING_ROW, row))[PENDING_ROW] == row
    assert load_training_state(_resumable(path, PENDING_SECONDS, 0.0))[PENDING_SECONDS] == 0.0
    seconds = "the pending epoch's training time, a finite number of seconds >= 0"
    # A row without lr or train/total (a hand-edited file) was a KeyError at the resume's end.
    less = {"epoch": 3, "train/3d": 4.5}
    row_kind = "a metrics row, a dict of column names to numbers with epoch, lr and train/total"
    cases = [
        *((PENDING_SECONDS, value, shown, seconds) for value, shown in [
            (-0.5, "-0.5"), (math.inf, "inf"), (math.nan, "nan"), ("1", "'1'"), (True, "True")]),
        *((PENDING_ROW, value, shown, row_kind) for value, shown in [
            (None, "None"), ({"epoch": "3"}, "a dict"), ([3, 0.1], "a list"), (less, "a dict")]),
    ]  # fmt: skip
    for key, value, shown, kind in cases:
        with pytest.raises(CheckpointError) as error:
            load_training_state(_resumable(path, key, value))
        assert str(error.value) == f"{path}: '{key}' must be {kind}, got {shown}"
