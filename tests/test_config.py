"""Typed configs: YAML loading, dotted overrides, validation messages, the shipped recipes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from hopose.config import (
    PATH_FIELDS,
    ConfigError,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    check_device,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    load_config,
    override_value,
    path_override,
    resolve_device,
    unused_fields,
)
from hopose.configs import CONFIG_DIR as CONFIGS
from hopose.data import option_defaults
from hopose.demo import QUICK_OVERRIDES

REAL = ("obman", "fpha", "ho3d", "dexycb")
# The least a config file holds: an empty one is refused (it would train every default), and
# synthetic data needs the sizes of the splits it generates.
MINIMAL = "stage: lifter\ndata:\n  num_train: 8\n  num_val: 8\n  num_test: 8\n"
# The same sizes for config_from_dict.
SIZES = {"num_train": 8, "num_val": 8, "num_test": 8}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_papers_loss_weights_and_optimiser():
    loss, model = LossConfig(), ModelConfig()
    assert (loss.w_2d, loss.w_3d, loss.w_physical) == (0.01, 1.0, 10.0)
    assert OptimConfig().weight_decay == 0.01
    assert model.backbone == "resnet50" and DataConfig().image_size == 224


def test_overrides_are_parsed_to_the_field_types(tmp_path):
    path = _write(tmp_path, "stage: end2end\ndata:\n  num_val: 8\noptim:\n  lr: 1e-3\n")
    cfg = load_config(
        path,
        [
            "optim.lr=1e-4",  # YAML reads "1e-4" as a string; the field type makes it a float
            "data.num_train=64",
            "loss.physical=true",
            "init_from=null",
            "data.options.free_fraction=0.5",
            "model.backbone_weights=weights/r18.pth",
        ],
    )
    assert cfg.stage == "end2end"
    assert cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.data.num_train == 64 and isinstance(cfg.data.num_train, int)
    assert cfg.loss.physical is True
    assert cfg.init_from is None
    assert cfg.data.options == {"free_fraction": 0.5}
    assert cfg.model.backbone_weights == "weights/r18.pth"


def test_yaml_scientific_notation_without_a_dot_is_a_float(tmp_path):
    cfg = load_config(_write(tmp_path, f"{MINIMAL}optim:\n  lr: 1e-3\n"))
    assert cfg.optim.lr == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("optim:\n  lrr: 1\n", [], "unknown key optim.lrr"),
        (MINIMAL, ["optim.lr=-1"], "optim.lr must be > 0, got -1"),
        (
            MINIMAL,
            ["optim.epochs=abc"],
            "optim.epochs: Value 'abc' of type 'str' could not be converted",
        ),
        # 2**20 + 1 epochs would reach the next seed's random streams (epoch_stream).
        (MINIMAL, ["optim.epochs=1048577"], "optim.epochs must be in [1, 1048576], got 1048577"),
        (
            MINIMAL,
            ["data.num_train=1.5"],
            "data.num_train: Value '1.5' of type 'float' could not be",
        ),
        (MINIMAL, ["stage=pretrain"], "stage must be one of"),
        (
            MINIMAL,
            ["model.lifter_variant=both"],
            "model.lifter_variant must be one of ('full', 'hand', 'object'), got 'both'",
        ),
        (
            MINIMAL,
            ["model.lifter=gcn"],
            "model.lifter must be one of ('context', 'graph_unet'), got",
        ),
        # The Graph U-Net has no sub-graphs: it built the full network for "hand" all the same.
        (
            MINIMAL,
            ["model.lifter=graph_unet", "model.lifter_variant=hand"],
            "model.lifter_variant must be 'full' with model.lifter: graph_unet (the Graph U-Net "
            "lifts every node, it has no sub-graphs), got 'hand'",
        ),
        # Under torchrun each process takes its local rank's GPU: no numbered GPU in a config.
        (MINIMAL, ["device=cuda:1"], "device must be one of ('auto', 'cpu', 'cuda'), got 'cuda:1'"),
        (MINIMAL, ["model.backbone=resnet99"], "model.backbone must be one of"),
        (MINIMAL, ["model.backbone_stages=5"], "model.backbone_stages must be 1, 2, 3 or 4, got 5"),
        (MINIMAL, ["data.name=imagenet"], "data.name must be one of"),
        (MINIMAL, ["data.crop=centre"], "data.crop must be one of"),
        # The synthetic splits' seed sequences take no negative entropy (a numpy message).
        (MINIMAL, ["data.seed=-1"], "data.seed must be in [0, 2**32), got -1"),
        # numpy pads short seed entropy with zeros: seed 2**32's split would be seed 0's another.
        (MINIMAL, ["data.seed=4294967296"], "data.seed must be in [0, 2**32), got 4294967296"),
        # A 66-px image has 17 stride-4 cells covering 68 px: the soft-argmax would read its
        # cells 3.88 px apart instead of 4.
        (
            MINIMAL,
            ["model.head=heatmap", "data.image_size=66"],
            "data.image_size must be a multiple of 8 with model.head heatmap (its stride-4 and "
            "stride-8 cells tile the image), got 66",
        ),
        # Test-time views: a turn of 90° or more is another square; a shift over half the side
        # moves the view off the hand and box.
        (
            MINIMAL,
            ["data.self_crop_turn=90"],
            "data.self_crop_turn must be in [0, 90) degrees, got 90.",
        ),
        (
            MINIMAL,
            ["data.self_crop_turn=-5"],
            "data.self_crop_turn must be in [0, 90) degrees, got -5.",
        ),
        (
            MINIMAL,
            ["data.self_crop_shift=0.6"],
            "data.self_crop_shift must be in [0, 0.5], got 0.6",
        ),
        # The network image's side has one home, data.image_size: the model's copy was removed.
        (
            MINIMAL,
            ["model.image_size=128"],
            "unknown key model.image_size: Key 'image_size' not in 'ModelConfig' (the field was "
            "removed: set data.image_size, the network image's side)",
        ),
        (
            "stage: lifter\nmodel:\n  image_size: 64\n",
            [],
            "unknown key model.image_size: Key 'image_size' not in 'ModelConfig' (the field was "
            "removed: set data.image_size",
        ),
        (MINIMAL, ["loss.physical=maybe"], "loss.physical must be true or false, got 'maybe'"),
        (
            MINIMAL,
            ["optim.lrr=1"],
            "unknown key optim.lrr: Key 'lrr' not in 'OptimConfig'. Did you mean",
        ),
        (MINIMAL, ["data.options=3"], "data.options: Cannot assign int to Dict[str, Any]"),
        (MINIMAL, ["optim"], "must look like key=value"),
        # A value is read as YAML: PyYAML's multi-line message is cut to its problem.
        (
            MINIMAL,
            ["data.options={"],
            "data.options: value is not YAML: did not find expected node",
        ),
        (MINIMAL, ["optim.lr=[1"], "optim.lr: value is not YAML: did not find expected ',' or ']'"),
        ("data: 3\n", [], "data must be a mapping"),
        # A mapping field given a list: OmegaConf's merge raised a bare TypeError naming nothing.
        ("data:\n  options: [1]\n", [], "data.options must be a mapping, got [1]"),
    ],
)
def test_bad_keys_and_values_are_named_with_their_source(tmp_path, text, overrides, message):
    """Led by the file, or by the --set overrides that gave the value (precisely:
    test_a_value_from_an_override_is_blamed_on_it_not_on_the_file)."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    assert message in str(error.value)
    source = "--set " if overrides else f"{path}: "
    assert str(error.value).startswith(source) and "\n" not in str(error.value)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70])
def test_the_seed_is_one_32_bit_word_as_data_seed(tmp_path, seed):
    # Accepted before: -1 failed in the first epoch on DDP ranks above 0 (numpy's SeedSequence,
    # "expected non-negative integer"), 2**70 in seed_everything ("Overflow when unpacking long
    # long"), neither naming the field.
    path = _write(tmp_path, f"{MINIMAL}seed: {seed}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: seed must be in [0, 2**32), got {seed}"
    with pytest.raises(ConfigError, match=re.escape(f"seed must be in [0, 2**32), got {seed}")):
        config_from_dict({"seed": seed})
    assert load_config(path, [f"seed={2**32 - 1}"]).seed == 2**32 - 1


def test_the_papers_linear_head_is_one_set_away_from_the_demos_encoder():
    # The demo's encoder config weighs the heat-map term 1,000 and says how to switch to the
    # paper's linear head, which makes no heat maps: the switch sets that weight to 0 too.
    path = CONFIGS / "synthetic" / "encoder.yaml"
    switch = [
        "model.head=linear",
        "loss.w_heatmap=0",
        "model.segmentation=false",
        "loss.w_segmentation=0",
    ]
    comment = " ".join(line.lstrip("# ") for line in path.read_text().splitlines())
    assert " ".join(f"--set {override}" for override in switch) in comment
    cfg = load_config(path, switch)
    assert (cfg.model.head, cfg.loss.w_heatmap, cfg.model.segmentation) == ("linear", 0.0, False)


def test_a_heat_map_weight_without_the_heat_map_head_is_refused_naming_the_field():
    """The linear head makes no heat maps, so loss.w_heatmap changed nothing with it (the loss
    adds the term only when there are maps), and was accepted. A checkpoint's config saved so
    is read with it at its default, as a field its stage never reads is; where the stage reads
    no 2D at all, that is the reason given."""
    path = CONFIGS / "synthetic" / "encoder.yaml"
    linear = ["model.head=linear", "model.segmentation=false", "loss.w_segmentation=0"]
    with pytest.raises(ConfigError) as error:
        load_config(path, linear)
    assert str(error.value) == (
        "--set model.head=linear: loss.w_heatmap: model.head linear makes no heat maps, so it "
        "would have no effect; leave it at 0.0"
    )
    saved = config_to_dict(load_config(path, [*linear, "loss.w_heatmap=0"]))
    saved["loss"]["w_heatmap"] = 1000.0
    assert config_from_dict(saved).loss.w_heatmap == 0.0
    lifter = CONFIGS / "synthetic" / "lifter.yaml"
    assert load_config(lifter).model.head == "linear"
    with pytest.raises(ConfigError, match=r"w_heatmap: the lifter stage predicts no 2D, so"):
        load_config(lifter, ["loss.w_heatmap=1"])


@pytest.mark.parametrize(
    "override",
    [
        "optim.lr=inf",  # trained to a NaN loss
        "optim.gamma=inf",
        "optim.grad_clip=inf",
        "loss.w_physical=inf",
        "loss.w_3d=-.inf",
        "optim.weight_decay=nan",
        "perturb.sigma=inf",
        "augment.noise=inf",
        "data.self_crop_margin=inf",
        "model.dropout=nan",
    ],
)
def test_an_infinite_or_nan_number_is_refused(tmp_path, override):
    key, _, value = override.partition("=")
    shown = {"inf": "inf", "-.inf": "-inf", "nan": "nan"}[value]
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, MINIMAL), [override])
    assert str(error.value).endswith(f": {key} must be finite, got {shown}")


def test_dataset_options_are_the_constructor_arguments_the_config_does_not_set():
    """SyntheticHandObject(num_samples, seed, image_size, *, with_images, free_fraction,
    focal_scale, crop, jitter): build_dataset sets the others; FPHA(root, split, *, protocol,
    **options) hands the rest to FrameDataset(*, image_size, crop, margin, with_images,
    on_error, jitter)."""
    assert tuple(option_defaults("synthetic")) == ("free_fraction", "focal_scale", "jitter")
    assert tuple(option_defaults("fpha")) == ("protocol", "margin", "on_error", "jitter")
    assert tuple(option_defaults("obman")) == ("shapenet_root", "margin", "on_error", "jitter")


@pytest.mark.parametrize(
    ("text", "override", "message"),
    [
        (MINIMAL, "data.options.foo=1", "unknown key data.options.foo: the synthetic dataset "
         "takes ('free_fraction', 'focal_scale', 'jitter')"),
        # build_dataset passes the crop itself: as an option it was a TypeError traceback too.
        ("data:\n  name: fpha\n  root: fpha\n", "data.options.crop=square",
         "unknown key data.options.crop: "
         "the fpha dataset takes ('protocol', 'margin', 'on_error', 'jitter')"),
    ],
)  # fmt: skip
def test_an_unknown_dataset_option_is_named(tmp_path, text, override, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path, [override])
    assert str(error.value) == f"--set {override}: {message}"
    load_config(
        path, ["data.options.margin=0.2" if "fpha" in text else "data.options.jitter=false"]
    )


def test_validating_on_the_training_split_is_refused(tmp_path):
    # Accepted before: the training split was read with num_val samples and best.pt was chosen
    # on training frames.
    path = _write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as error:
        load_config(path, ["data.val_split=train"])
    assert str(error.value) == (
        "--set data.val_split=train: data.train_split and data.val_split must differ, both are "
        "'train'"
    )
    # `hopose eval --split val` (or train) reads that split as the test split.
    assert load_config(path, ["data.test_split=val"]).data.test_split == "val"
    assert load_config(path, ["data.test_split=train"]).data.test_split == "train"
    # One split asked two sizes: evaluating the test split read num_val frames of it.
    with pytest.raises(ConfigError) as error:
        load_config(path, ["data.test_split=val", "data.num_val=10", "data.num_test=20"])
    assert str(error.value) == (
        "--set data.test_split=val --set data.num_val=10 --set data.num_test=20: data.val_split "
        "and data.test_split are both 'val': data.num_val (10) and data.num_test (20) must agree"
    )


def test_training_without_a_validation_split_is_asked_with_null(tmp_path):
    """data.val_split: null (HO-3D, FPHA's action protocol) is read from a YAML file, from
    --set, and from the config.yaml a run writes (which a resume killed before its first
    last.pt reads back); num_val is then unused, not refused. The default stays "val"."""
    assert DataConfig().val_split == "val"
    text = "data:\n  val_split: null\n  num_train: 5\n  num_val: 5\n"
    from_yaml = load_config(_write(tmp_path, text))
    assert from_yaml.data.val_split is None and from_yaml.data.num_val == 5
    from_set = load_config(_write(tmp_path, MINIMAL), ["data.val_split=null"])
    assert from_set.data.val_split is None
    written = tmp_path / "config.yaml"
    written.write_text(config_to_yaml(from_set), encoding="utf-8")
    assert load_config(written) == from_set


def test_a_gpu_config_loads_on_a_machine_without_a_gpu(tmp_path, monkeypatch):
    """A checkpoint trained on a GPU keeps device: cuda in its config; reading it elsewhere must
    work (training there is refused: tests/test_train.py)."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert load_config(_write(tmp_path, f"{MINIMAL}device: cuda\n")).device == "cuda"
    assert config_from_dict({"device": "cuda", "data": SIZES}).device == "cuda"


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = _write(tmp_path, "optim:\n  lr: 1\n   epochs: 2\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"{path}:3: YAML syntax error: mapping values are not allowed in this context"
    )


def test_a_file_that_is_not_text_is_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes(b"\xff\xfe optim")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: not a UTF-8 text file (invalid start byte)"


@pytest.mark.parametrize("values", ["optim", ["stage", "lifter"], None])
def test_a_config_that_is_not_a_mapping_is_refused(values):
    """A checkpoint's stored config is read through config_from_dict: a damaged one is named."""
    with pytest.raises(ConfigError) as error:
        config_from_dict(values)
    assert str(error.value) == f"the config must be a mapping, got {type(values).__name__}"


def test_an_older_checkpoints_model_image_size_equal_to_the_data_ones_is_dropped():
    """Checkpoints written while the side had two homes hold model.image_size too, then required
    equal to data.image_size: they load as the config without it."""
    cfg = load_config(CONFIGS / "synthetic" / "encoder.yaml")
    saved = config_to_dict(cfg)
    saved["model"]["image_size"] = 64  # the shipped config's data.image_size
    assert config_from_dict(saved) == cfg
    assert saved["model"]["image_size"] == 64  # the checkpoint's own dict is left as it was
    # Without a data section, data.image_size is its default, 224.
    old = {"data": SIZES, "model": {"image_size": 224}}
    assert config_from_dict(old) == config_from_dict({"data": SIZES})


@pytest.mark.parametrize(
    ("saved", "sides"),
    [
        ({"data": {**SIZES, "image_size": 64}, "model": {"image_size": 32}}, (32, 64)),
        ({"data": SIZES, "model": {"image_size": 64}}, (64, 224)),  # data's default side
    ],
)
def test_an_older_checkpoints_model_image_size_unlike_the_data_ones_is_refused(saved, sides):
    """No run was trained with two sides (they were required equal): such a dict was edited."""
    with pytest.raises(ConfigError) as error:
        config_from_dict(saved)
    assert str(error.value) == (
        f"model.image_size ({sides[0]}) differs from data.image_size ({sides[1]}); the field was "
        "removed and data.image_size is the network image's side"
    )


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.yaml"):
        load_config(tmp_path / "nowhere.yaml")


def test_dict_round_trip(tmp_path):
    cfg = load_config(CONFIGS / "fpha" / "end2end.yaml", ["data.options.protocol=hope"])
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize("text", ["1e5", "1e-3", "yes", "0755", "1:30", "2024_01", "a #b"])
def test_a_runs_config_yaml_reads_back_as_its_config(tmp_path, text):
    """A run's config.yaml (written by hopose train, read by --resume and hopose eval) holds
    text that YAML 1.1 would read as a number or a boolean quoted: PyYAML's dumper left 1e5
    bare (PyYAML reads it as text), which OmegaConf's loader read as 100000.0."""
    cfg = load_config(CONFIGS / "fpha" / "lifter.yaml", [f"data.root='{text}'"])
    assert cfg.data.root == text
    (tmp_path / "config.yaml").write_text(config_to_yaml(cfg), encoding="utf-8")
    assert load_config(tmp_path / "config.yaml") == cfg


@pytest.mark.parametrize(
    "path", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.stage == path.stem
    # The physical loss is the end-to-end stage's (paper §4.5), in every recipe.
    assert cfg.loss.physical == (cfg.stage == "end2end")


@pytest.mark.parametrize("dataset", REAL)
def test_real_data_configs_hold_the_papers_schedule(dataset):
    """Paper §4.3: batch 256, 224 px, ResNet50; lifter 10,000 epochs lr 1e-3 x0.1 / 4,000;
    encoder 1,000 epochs lr 1e-3 x0.9 / 100; end to end 100 epochs lr 1e-4; Adam wd 0.01."""
    expected = {
        "lifter": (10_000, 1e-3, 4000, 0.1),
        "encoder": (1000, 1e-3, 100, 0.9),
        "end2end": (100, 1e-4, None, 1.0),
    }
    for stage, (epochs, lr, step_size, gamma) in expected.items():
        cfg = load_config(CONFIGS / dataset / f"{stage}.yaml")
        assert cfg.data.name == dataset
        assert (cfg.optim.epochs, cfg.optim.lr, cfg.optim.gamma) == (epochs, lr, gamma)
        assert step_size is None or cfg.optim.step_size == step_size
        assert (cfg.optim.batch_size, cfg.optim.weight_decay) == (256, 0.01)
        assert (cfg.data.image_size, cfg.model.backbone, cfg.data.crop) == (
            224,
            "resnet50",
            "resize",
        )


def test_pretraining_then_fine_tuning_is_a_chain_of_checkpoints():
    """ObMan lifter -> encoder -> end2end, then FPHA lifter from the ObMan end2end, and on."""
    chain = [("obman", "lifter"), ("obman", "encoder"), ("obman", "end2end")]
    chain += [("fpha", "lifter"), ("fpha", "encoder"), ("fpha", "end2end")]
    previous = None
    for dataset, stage in chain:
        cfg = load_config(CONFIGS / dataset / f"{stage}.yaml")
        assert cfg.init_from == previous
        previous = f"runs/{dataset}/{stage}/best.pt"


@pytest.mark.parametrize(
    ("dataset", "splits", "options"),
    [
        # HO-3D's evaluation split holds only the wrist: nothing to validate on, and the test
        # split is the one whose predictions go to the HO-3D server.
        ("ho3d", ("train", None, "evaluation"), {"version": "v3"}),
        ("dexycb", ("train", "val", "test"), {"setup": "s0"}),
    ],
)
def test_ho3d_and_dexycb_configs_chain_their_own_three_stages(dataset, splits, options):
    """Each trained from scratch (no ObMan run assumed: init_from null) on whole frames with the
    paper's linear head, the encoder stage from the lifter's best.pt, end to end from the
    encoder's, as FPHA's stages chain."""
    previous = None
    for stage in ("lifter", "encoder", "end2end"):
        cfg = load_config(CONFIGS / dataset / f"{stage}.yaml")
        assert cfg.init_from == previous
        previous = f"runs/{dataset}/{stage}/best.pt"
        data = cfg.data
        assert (data.train_split, data.val_split, data.test_split) == splits
        assert (data.options, data.root, cfg.model.head) == (options, f"data/{dataset}", "linear")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("perturb.sigma=-0.1", r"perturb.sigma must be in \[0, 1\]"),
        ("perturb.drop_prob=1.5", r"perturb.drop_prob must be in \[0, 1\]"),
        ("augment.occlusion_prob=2", r"augment.occlusion_prob must be in \[0, 1\]"),
        ("model.head=conv", r"model.head must be one of \('linear', 'heatmap'\), got 'conv'"),
        ("data.crop=tight", r"data.crop must be one of \('resize', 'square'\)"),
        ("model.segmentation=true", "model.segmentation needs model.head: heatmap, got 'linear'"),
        ("loss.w_segmentation=-1", "loss.w_segmentation must be >= 0, got -1"),
        ("loss.w_segmentation=5", r"loss.w_segmentation \(5.0\) needs model.segmentation: true"),
    ],
)
def test_bad_pixel_stage_fields_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "synthetic" / "lifter.yaml", [override])


def test_segmentation_on_real_data_is_refused_naming_the_field(tmp_path):
    """Only the synthetic renders give segmentation maps: a real dataset's image stage with the
    term on was refused by the loss at its first step, its run folder already made."""
    overrides = ["model.head=heatmap", "model.segmentation=true", f"data.root={tmp_path}"]
    load_config(CONFIGS / "fpha" / "encoder.yaml", overrides)
    with pytest.raises(
        ConfigError,
        match=r"loss.w_segmentation \(1.0\) needs segmentation maps, which only the synthetic "
        "renders give, got data.name 'fpha'",
    ):
        load_config(CONFIGS / "fpha" / "encoder.yaml", [*overrides, "loss.w_segmentation=1"])


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ("encoder", ["optim.progressive_size=36", "optim.progressive_epochs=2"],
         r"optim.progressive_size must be a multiple of 8 with model.head heatmap \(its stride-4 "
         r"and stride-8 cells tile the image\), got 36"),
        ("encoder", ["optim.progressive_size=0", "optim.progressive_epochs=2"],
         "optim.progressive_size must be >= 8 or null, got 0"),
        # data.image_size's least, whatever the head: 4 px trained the linear head's encoder to
        # NaN in its first epoch.
        ("encoder", ["model.head=linear", "model.segmentation=false", "loss.w_heatmap=0",
                     "loss.w_segmentation=0", "optim.progressive_size=4",
                     "optim.progressive_epochs=2"],
         "optim.progressive_size must be >= 8 or null, got 4"),
        ("encoder", ["optim.progressive_size=64", "optim.progressive_epochs=2"],
         r"optim.progressive_size \(64\) must be below data.image_size \(64\)"),
        ("encoder", ["optim.epochs=4", "optim.progressive_size=32", "optim.progressive_epochs=4"],
         r"optim.progressive_epochs must be >= 0 and below optim.epochs \(4\), got 4"),
        ("encoder", ["optim.progressive_size=32", "optim.progressive_epochs=0"],
         "optim.progressive_size and optim.progressive_epochs go together"),
        ("lifter", ["optim.progressive_size=32", "optim.progressive_epochs=2"],
         "optim.progressive_size: the lifter stage reads no images"),
    ],
)  # fmt: skip
def test_bad_progressive_resizing_names_the_field(config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(
            CONFIGS / "synthetic" / f"{config}.yaml",
            ["optim.progressive_size=null", "optim.progressive_epochs=0", *overrides],
        )


@pytest.mark.parametrize(
    ("stage", "override", "message"),
    [
        # The encoder stage trains the encoder alone, on 2D: the physical loss failed only at
        # the first step, after the run folder and the data, with a self-contradictory message.
        ("encoder", "loss.w_3d=50", "loss.w_3d: the encoder stage predicts no 3D, so it would "
         "have no effect; leave it at 1.0"),
        ("encoder", "loss.physical=true", "loss.physical: the encoder stage predicts no 3D, so "
         "it would have no effect; leave it at false"),
        ("encoder", "loss.l3d_distance=euclidean", "loss.l3d_distance: the encoder stage "
         "predicts no 3D, so it would have no effect; leave it at squared"),
        ("lifter", "loss.w_2d=1", "loss.w_2d: the lifter stage predicts no 2D, so it would "
         "have no effect; leave it at 0.01"),
        *(
            ("lifter", f"augment.{name}=0.2", f"augment.{name}: the lifter stage reads no "
             "images, so it would have no effect; leave it at 0.0")
            for name in ("colour", "blur_prob", "noise", "occlusion_prob")
        ),
        # perturb alters the ground-truth 2D the lifter stage reads; the end-to-end stage's
        # lifter reads the encoder's 2D (hopose.data.augment.augment_batch).
        *(
            (stage, "perturb.sigma=0.05", f"perturb.sigma: the {stage} stage reads images, not "
             "ground-truth 2D, so it would have no effect; leave it at 0.0")
            for stage in ("encoder", "end2end")
        ),
    ],
)  # fmt: skip
def test_a_setting_its_stage_never_reads_is_refused_naming_the_field(stage, override, message):
    """It was accepted and changed nothing. Set to its default, as the shipped configs' encoder
    stages set loss.physical: false, it is accepted."""
    path = CONFIGS / "synthetic" / f"{stage}.yaml"
    with pytest.raises(ConfigError) as error:
        load_config(path, [override])
    assert str(error.value) == f"--set {override}: {message}"
    key = override.partition("=")[0]
    default = message.rpartition("leave it at ")[2]
    assert load_config(path, [f"{key}={default}"]).stage == stage


def test_a_checkpoints_setting_its_stage_never_read_is_read_at_its_default():
    """A checkpoint written before those settings were refused may hold one: its config still
    loads (eval, predict, init_from), the setting at the default that it acted as, the rest as
    saved."""
    saved = config_to_dict(load_config(CONFIGS / "synthetic" / "encoder.yaml"))
    saved["loss"] |= {"w_3d": 50.0, "physical": True}
    saved["perturb"]["sigma"] = 0.1
    cfg = config_from_dict(saved)
    assert (cfg.loss.w_3d, cfg.loss.physical, cfg.perturb.sigma) == (1.0, False, 0.0)
    assert (cfg.loss.w_heatmap, cfg.loss.w_segmentation) == (1000.0, 3000.0)
    lifter = config_to_dict(load_config(CONFIGS / "synthetic" / "lifter.yaml"))
    lifter["augment"]["noise"] = 0.02
    assert config_from_dict(lifter).augment.noise == 0.0


@pytest.mark.parametrize(
    ("stage", "settings", "override", "why", "default", "reads_it"),
    [
        ("lifter", [], "perturb.outlier_prob=0.1",
         "perturb.outlier_sigma is 0 (no outlier is moved)", "0.0", ["perturb.outlier_sigma=0.2"]),
        ("lifter", [], "perturb.outlier_sigma=0.2",
         "perturb.outlier_prob is 0 (no keypoint is an outlier)", "0.0",
         ["perturb.outlier_prob=0.1"]),
    ],
)  # fmt: skip
def test_a_setting_another_field_leaves_unread_is_refused_as_the_heat_map_weight(
    stage, settings, override, why, default, reads_it
):
    """Each was accepted and changed nothing: the physical term's weight without the term, the
    dropout of a lifter without dropout, an outlier probability with outliers not moved or their
    spread without outliers, the self-crops of a model that reads whole frames. As
    loss.w_heatmap with the linear head, it is refused away from its default, naming the field;
    accepted where the other field reads it; read at its default from a checkpoint's config
    (saved by an older hopose); and left out of --resume's comparison (unused_fields)."""
    path = CONFIGS / "synthetic" / f"{stage}.yaml"
    field, _, value = override.partition("=")
    with pytest.raises(ConfigError) as error:
        load_config(path, [*settings, override])
    assert str(error.value) == (
        f"--set {override}: {field}: {why}, so it would have no effect; leave it at {default}"
    )
    read = load_config(path, [*settings, override, *reads_it])
    assert field not in unused_fields(config_to_dict(read))
    section, _, key = field.partition(".")
    plain = load_config(path, settings)
    saved = config_to_dict(plain)
    saved[section][key] = override_value(value)
    assert field in unused_fields(saved)
    assert config_from_dict(saved) == plain


def test_the_physical_loss_on_one_lifted_part_is_refused():
    """The loss is between the hand and the box: with the hand sub-graph alone it failed at the
    first training step, after the data was read."""
    path = CONFIGS / "synthetic" / "lifter.yaml"
    with pytest.raises(ConfigError) as error:
        load_config(path, ["loss.physical=true", "model.lifter_variant=hand"])
    assert str(error.value) == (
        "--set loss.physical=true --set model.lifter_variant=hand: loss.physical needs "
        "model.lifter_variant: full (the physical loss is between the lifted hand and box), got "
        "'hand'"
    )


HEAT_MAP_TERMS = ["loss.w_heatmap=0", "loss.w_segmentation=0"]


@pytest.mark.parametrize(
    ("stage", "overrides", "weights", "positive"),
    [
        ("lifter", ["loss.w_3d=0"], "loss.w_3d", ["loss.physical=true"]),
        # The demo's encoder: 2D, heat maps and segmentation maps.
        ("encoder", ["loss.w_2d=0", *HEAT_MAP_TERMS],
         "loss.w_2d, loss.w_heatmap, loss.w_segmentation", ["loss.w_segmentation=1"]),
        # The paper's linear head makes neither maps.
        ("encoder", ["loss.w_2d=0", "model.head=linear", "model.segmentation=false",
                     *HEAT_MAP_TERMS], "loss.w_2d", ["loss.w_2d=0.01"]),
        ("end2end", ["loss.w_2d=0", "loss.w_3d=0", "loss.w_physical=0", *HEAT_MAP_TERMS],
         "loss.w_2d, loss.w_3d, loss.w_physical, loss.w_heatmap, loss.w_segmentation",
         ["loss.w_physical=1"]),
    ],
)  # fmt: skip
def test_a_stage_whose_every_loss_term_weighs_nothing_is_refused(
    stage, overrides, weights, positive
):
    """Such a run trained on a loss of 0 (synthetic/lifter --set loss.w_3d=0), its weights
    never moved. Any one term the stage computes weighed above 0 is a run."""
    path = CONFIGS / "synthetic" / f"{stage}.yaml"
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    named = " ".join(
        f"--set {item}" for item in overrides if item.partition("=")[0] in weights.split(", ")
    )
    assert str(error.value) == (
        f"{named}: {weights}: every loss term of the {stage} stage weighs 0, so it would train "
        "on a loss of 0; set one above 0"
    )
    assert load_config(path, [*overrides, *positive]).stage == stage


def test_synthetic_data_without_the_sizes_the_run_reads_is_refused_naming_them(tmp_path):
    """Reading the split failed once the run had started, with "num_samples: required for the
    synthetic dataset", naming no field. Without a validation split num_val is not read, and a
    cache of generated data holds its own sizes."""
    path = _write(tmp_path, "stage: lifter\ndata:\n  num_train: 8\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"{path}: data.num_val: synthetic data needs the number of samples to generate (or a "
        "data.cache), got null"
    )
    with pytest.raises(ConfigError, match=r"^data\.num_train: synthetic data needs"):
        config_from_dict({"data": {"num_val": 8}})
    assert load_config(path, ["data.val_split=null"]).data.num_val is None
    assert load_config(path, ["data.cache=prepared"]).data.num_val is None
    assert config_from_dict({"data": {"name": "fpha", "root": "fpha"}}).data.num_train is None


@pytest.mark.parametrize("head", ["linear", "heatmap"])
def test_the_progressive_size_is_a_multiple_of_8_only_with_the_heat_map_head(head):
    """As data.image_size: the heat map's stride-4 and stride-8 cells tile the image, the
    linear head reads a pooled feature of any size. The rule held for both heads."""
    path = CONFIGS / "synthetic" / "encoder.yaml"
    linear = ["model.head=linear", "model.segmentation=false", *HEAT_MAP_TERMS]
    overrides = [*(linear if head == "linear" else []), "optim.progressive_size=36"]
    if head == "heatmap":
        with pytest.raises(ConfigError, match=r"optim\.progressive_size must be a multiple of 8"):
            load_config(path, overrides)
    else:
        assert load_config(path, overrides).optim.progressive_size == 36
    with pytest.raises(ConfigError, match=r"optim.progressive_size \(64\) must be below"):
        load_config(path, [*overrides[:-1], "optim.progressive_size=64"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # "Overflow when unpacking long long" from torch, naming no field.
        (f"optim.batch_size={2**31}", f"optim.batch_size must be in [1, 2**31), got {2**31}"),
        ("optim.batch_size=99999999999999999999",
         "optim.batch_size must be in [1, 2**31), got 99999999999999999999"),
        ("augment.noise=1.5", "augment.noise must be in [0, 1], got 1.5"),
        ("perturb.sigma=1.5", "perturb.sigma must be in [0, 1], got 1.5"),
        ("perturb.outlier_sigma=2", "perturb.outlier_sigma must be in [0, 1], got 2.0"),
        # Read as no checkpoint: the stage started from scratch without a word.
        ('init_from=""', "init_from must be a checkpoint file or null, got ''"),
        ("init_from=' '", "init_from must be a checkpoint file or null, got ' '"),
        # Read as paths, "" names the current folder: a cache looked for as ".", weights "not
        # found: ".
        ('data.cache=""', "data.cache must be a prepared cache's folder or null, got ''"),
        ('data.root=""', "data.root must be the dataset's folder or null, got ''"),
        ('model.backbone_weights=""',
         "model.backbone_weights must be a state-dict file or null, got ''"),
    ],
)  # fmt: skip
def test_a_value_without_meaning_is_refused_naming_the_field(override, message):
    stage = {"augment": "encoder"}.get(override.partition(".")[0], "lifter")
    # An outlier spread is read with outliers only.
    extra = ["perturb.outlier_prob=0.1"] if "outlier" in override else []
    path = CONFIGS / "synthetic" / f"{stage}.yaml"
    with pytest.raises(ConfigError) as error:
        load_config(path, [*extra, override])
    assert str(error.value) == f"--set {override}: {message}"


def test_the_largest_batch_and_amounts_are_accepted():
    cfg = load_config(CONFIGS / "synthetic" / "encoder.yaml", [f"optim.batch_size={2**31 - 1}"])
    assert cfg.optim.batch_size == 2**31 - 1
    assert (
        load_config(CONFIGS / "synthetic" / "encoder.yaml", ["augment.noise=1"]).augment.noise == 1
    )


def test_the_whole_frame_is_the_switch_the_demos_image_configs_document():
    """Each image stage of the demo says how to read the paper's whole frame instead of its
    square crops, and the switch loads (whole frames keep the self-crop fields, unread)."""
    for stage in ("encoder", "end2end"):
        path = CONFIGS / "synthetic" / f"{stage}.yaml"
        comment = " ".join(
            line.lstrip("# ") for line in path.read_text().splitlines() if line.startswith("#")
        )
        switch = re.search(r"whole frame is `([^`]*)`", comment)
        assert switch is not None, path
        overrides = [item for item in switch.group(1).split() if item != "--set"]
        assert load_config(path, overrides).data.crop == "resize"


def test_the_demos_quick_stages_load_with_every_override_in_force():
    """hopose demo --quick's overrides on each shipped stage load (none is a setting left
    unread, which load_config refuses) and each holds in the loaded config, as --set reads it."""
    for stage, overrides in QUICK_OVERRIDES.items():
        cfg = load_config(CONFIGS / "synthetic" / f"{stage}.yaml", overrides)
        for override in overrides:
            key, _, text = override.partition("=")
            section, name = key.split(".")
            assert getattr(getattr(cfg, section), name) == override_value(text), override


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty config (no stage, data or model is set)"),
        ("# stage: lifter\n", "empty config (no stage, data or model is set)"),
        ("{}\n", "empty config (no stage, data or model is set)"),
        ("- stage\n- lifter\n", "the top level must be a mapping of config keys, got a list"),
        # OmegaConf refused a number naming neither file nor line, and read a word as a key.
        ("5\n", "the top level must be a mapping of config keys, got a single value"),
        ("lifter\n", "the top level must be a mapping of config keys, got a single value"),
    ],
    ids=["empty", "comment only", "empty mapping", "list", "number", "word"],
)
def test_a_config_file_without_a_mapping_of_keys_is_refused_naming_it(tmp_path, text, message):
    """An empty file trained the default stage on the default data, every field at its
    default, until the dataset asked for a field no file had set."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path, ["optim.epochs=1"])
    assert str(error.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("config", "key", "text", "value"),
    [
        ("synthetic/lifter", "focal_scale", "1e0", 1.0),
        ("synthetic/lifter", "focal_scale", "1.6", 1.6),
        ("synthetic/encoder", "jitter", "true", True),  # square crops: jitter may be on
        ("fpha/lifter", "protocol", "hope", "hope"),
        ("synthetic/lifter", "focal_scale", "[1, 2]", [1, 2]),
    ],
)
def test_eval_option_values_are_read_as_set_reads_them(config, key, text, value):
    """``--option`` read its value with PyYAML, for which 1e0 is a string, while ``--set
    data.options.focal_scale=1e0`` gives 1.0."""
    from hopose.cli import build_parser

    args = ["eval", "m.pt", "--data", "synthetic", "--option", f"{key}={text}"]
    parsed = dict(build_parser().parse_args([*args, "--out", "e"]).options)[key]
    cfg = load_config(CONFIGS / f"{config}.yaml", [f"data.options.{key}={text}"])
    assert parsed == cfg.data.options[key] == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize("value", ["2", "0", "1.5", "[1]", "'2'", "'10'", "'1'", "'0'"])
def test_a_bool_field_refuses_a_value_that_is_not_a_bool(tmp_path, value):
    """OmegaConf turned any integer into a bool: optim.amp=2 became True, and so did the
    quoted '2' (a string of digits reads as its integer)."""
    message = f"optim.amp must be true or false, got {value}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_write(tmp_path, f"{MINIMAL}optim: {{}}\n"), [f"optim.amp={value}"])
    path = _write(tmp_path, f"{MINIMAL}optim:\n  amp: {value}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)
    cfg = load_config(_write(tmp_path, f"{MINIMAL}optim: {{}}\n"), ["optim.amp=true"])
    assert cfg.optim.amp is True


@pytest.mark.parametrize(
    ("text", "value"),
    [("yes", True), ("'yes'", True), ("'Off'", False), ("'Y'", True), ("n", False)],
)
def test_a_bool_field_reads_the_words_omegaconf_reads_quoted_or_not(tmp_path, text, value):
    """OmegaConf's words for a bool, in any case: the quoted ones stay accepted."""
    path = _write(tmp_path, f"{MINIMAL}optim:\n  amp: {text}\n")
    assert load_config(path).optim.amp is value
    assert load_config(_write(tmp_path, MINIMAL), [f"optim.amp={text}"]).optim.amp is value


def _setting(key: str, text: str) -> str:
    """MINIMAL with the field ``key`` ("section.name" or a top-level name) set to ``text``."""
    section, _, name = key.rpartition(".")
    if section == "data":  # MINIMAL ends in its data section
        return f"{MINIMAL}  {name}: {text}\n"
    return f"{MINIMAL}{section}:\n  {name}: {text}\n" if section else f"{MINIMAL}{name}: {text}\n"


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        # 0o10 = 8, 0o123 = 64 + 2 * 8 + 3 = 83: YAML 1.1 reads a leading zero as octal.
        ("optim.epochs", "010", "010 reads as 8 in YAML 1.1 (a leading zero is octal); write 8 "
         "or 10"),
        ("data.seed", "0123", "0123 reads as 83 in YAML 1.1 (a leading zero is octal); write 83 "
         "or 123"),
        ("data.seed", "00", "00 reads as 0 in YAML 1.1 (a leading zero is octal); write 0"),
        ("optim.lr", "010", "010 reads as 8 in YAML 1.1 (a leading zero is octal); write 8 or 10"),
        ("num_threads", "-010", "-010 reads as -8 in YAML 1.1 (a leading zero is octal); write -8 "
         "or -10"),
        # Sexagesimal: 1:30 = 1 * 60 + 30 = 90.
        ("optim.epochs", "1:30", "1:30 reads as 90 in YAML 1.1 (a colon counts in base 60); write "
         "90"),
        ("optim.grad_clip", "1:30.5", "1:30.5 reads as 90.5 in YAML 1.1 (a colon counts in base "
         "60); write 90.5"),
        # 0b101 = 4 + 1.
        ("optim.epochs", "0b101", "0b101 reads as 5 in YAML 1.1 (0b is binary); write 5"),
    ],
)  # fmt: skip
def test_a_number_that_yaml_1_1_reads_otherwise_than_it_looks_is_refused(
    tmp_path, key, text, message
):
    """optim.epochs=010 trained 8 epochs, data.seed=0123 was 83 and 1:30 was 90, without a
    word, from an override or a file alike."""
    _assert_refused_from_set_and_file(tmp_path, key, text, f"{key}: {message}")


def _assert_refused_from_set_and_file(tmp_path, key: str, text: str, message: str) -> None:
    """``key: text`` is refused with ``message``, led by the override that gave it or by the
    file."""
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, MINIMAL), [f"{key}={text}"])
    assert str(error.value) == f"--set {key}={text}: {message}"
    path = _write(tmp_path, _setting(key, text))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("optim.epochs", "1_000", 1000),
        ("optim.epochs", "0x10", 16),
        # No octal digit 9: YAML 1.1 reads 09 as text, which the field reads as decimal.
        ("optim.epochs", "09", 9),
        ("optim.lr", "1e-3", 1e-3),
        ("optim.lr", "3.0e-4", 3e-4),
        ("optim.lr", ".5", 0.5),
        ("optim.lr", "0.5", 0.5),
        # Quoted: taken as written, by the field's type.
        ("optim.epochs", "'010'", 10),
        ("data.seed", '"0123"', 123),
        ("init_from", "'0755'", "0755"),
        ("init_from", '"1e5"', "1e5"),
        ("data.cache", "'yes'", "yes"),
        ("init_from", "'1:30'", "1:30"),
        ("init_from", "!!str 10", "10"),  # a tag asks for text as quotes do
        # Plain text that reads as it is written.
        ("init_from", "runs/2024/best.pt", "runs/2024/best.pt"),
        ("data.cache", "2024", "2024"),
        ("data.cache", "2024-01-02", "2024-01-02"),
        ("init_from", "null", None),
    ],
)
def test_a_value_read_as_it_is_written_is_accepted(tmp_path, key, text, value):
    section, _, name = key.rpartition(".")
    for cfg in (
        load_config(_write(tmp_path, MINIMAL), [f"{key}={text}"]),
        load_config(_write(tmp_path, _setting(key, text))),
    ):
        read = getattr(getattr(cfg, section) if section else cfg, name)
        assert read == value and type(read) is type(value)


@pytest.mark.parametrize(
    ("key", "text", "read"),
    [
        ("init_from", "2024_01", "202401"),
        ("data.cache", "0755", "493"),  # 7 * 64 + 5 * 8 + 5
        ("init_from", "1e5", "100000.0"),
        ("data.cache", "yes", "True"),
        ("init_from", "1:30", "90"),
        ("init_from", "12.50", "12.5"),
        ("data.cache", "0x1F", "31"),
    ],
)
def test_text_that_yaml_1_1_reads_as_a_number_or_bool_is_refused(tmp_path, key, text, read):
    """A text field took the number's or the boolean's text: init_from=1e5 looked for a file
    named 100000.0."""
    message = f"{key}: {text} reads as {read!r} in YAML 1.1; quote it to keep the text"
    _assert_refused_from_set_and_file(tmp_path, key, text, message)


def test_a_comment_in_a_set_value_is_refused_in_a_file_it_is_one(tmp_path):
    """An unquoted " #" starts a YAML comment: --set "init_from=/tmp/run #2/best.pt" started
    from /tmp/run. In a file the comment is meant."""
    override = "init_from=/tmp/run #2/best.pt"
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, MINIMAL), [override])
    assert str(error.value) == (
        f"--set {override}: init_from: /tmp/run #2/best.pt reads as '/tmp/run' in YAML 1.1; "
        "quote it to keep the text"
    )
    quoted = "init_from='/tmp/run #2/best.pt'"
    assert load_config(_write(tmp_path, MINIMAL), [quoted]).init_from == "/tmp/run #2/best.pt"
    path = _write(tmp_path, f"{MINIMAL}init_from: /tmp/run # the pre-training\n")
    assert load_config(path).init_from == "/tmp/run"


def test_a_yaml_1_1_number_inside_a_set_mapping_is_refused(tmp_path):
    """A section given whole by one override is judged field by field."""
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, MINIMAL), ["optim={epochs: 010, lr: 1e-3}"])
    assert str(error.value) == (
        "--set optim={epochs: 010, lr: 1e-3}: optim.epochs: 010 reads as 8 in YAML 1.1 "
        "(a leading zero is octal); write 8 or 10"
    )


@pytest.mark.parametrize(
    "optim",
    [
        "  <<: {epochs: 010}\n",
        "  <<: {<<: {epochs: 010}}\n",  # a merge inside a merge
        # Of several merged mappings the first that holds the key gives its value,
        "  <<: [{epochs: 010}, {epochs: 12}]\n",
        # and of two merge keys the later.
        "  <<: {epochs: 12}\n  <<: {epochs: 010}\n",
    ],
)
def test_a_yaml_1_1_number_from_a_merge_key_is_refused(tmp_path, optim):
    """A value merged in with << reached the config unjudged: optim.epochs was 8."""
    path = _write(tmp_path, f"{MINIMAL}optim:\n{optim}")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"{path}: optim.epochs: 010 reads as 8 in YAML 1.1 (a leading zero is octal); write 8 or 10"
    )


@pytest.mark.parametrize(
    "optim",
    [
        "  <<: {epochs: 010}\n  epochs: 12\n",  # the key written in the mapping stands
        "  <<: [{epochs: 12}, {epochs: 010}]\n",  # the first merged mapping stands
        "  <<: {epochs: 010}\n  <<: {epochs: 12}\n",  # the later merge key stands
    ],
)
def test_a_merged_value_that_another_stands_over_is_not_judged(tmp_path, optim):
    assert load_config(_write(tmp_path, f"{MINIMAL}optim:\n{optim}")).optim.epochs == 12


def test_a_yaml_1_1_number_merged_in_a_set_mapping_is_refused(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, MINIMAL), ["optim={<<: {epochs: 1:30}}"])
    assert str(error.value) == (
        "--set optim={<<: {epochs: 1:30}}: optim.epochs: 1:30 reads as 90 in YAML 1.1 "
        "(a colon counts in base 60); write 90"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("010", "data.options.focal_scale: 010 reads as 8 in YAML 1.1 (a leading zero is octal); "
         "write 8 or 10"),
        # A list's items are judged one by one: 1 * 60 + 30 = 90.
        ("[1, 1:30]", "data.options.focal_scale[1]: 1:30 reads as 90 in YAML 1.1 (a colon counts "
         "in base 60); write 90"),
    ],
)  # fmt: skip
def test_a_yaml_1_1_number_among_the_data_options_is_refused(tmp_path, value, message):
    """data.options' free keys declare no type, so each value's own stands for it: a zoom of
    1:30 ran at 90 times the focal length. Refused whole or set by its own key."""
    _assert_refused_from_set_and_file(
        tmp_path, "data.options", f"{{focal_scale: {value}}}", message
    )
    override = f"data.options.focal_scale={value}"
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, MINIMAL), [override])
    assert str(error.value) == f"--set {override}: {message}"


def test_data_options_read_as_they_are_written_are_accepted(tmp_path):
    options = "{focal_scale: [0.8, 1.6], free_fraction: 0.2}"
    cfg = load_config(_write(tmp_path, f"{MINIMAL}  options: {options}\n"))
    assert cfg.data.options == {"focal_scale": [0.8, 1.6], "free_fraction": 0.2}


def test_a_set_value_that_is_all_comment_is_refused(tmp_path):
    """--set init_from=#2 read as null: the run trained from scratch without a word."""
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, MINIMAL), ["init_from=#2"])
    assert str(error.value) == (
        "--set init_from=#2: init_from: #2 reads as null in YAML 1.1 (# starts a comment); "
        "quote it to keep the text"
    )
    assert load_config(_write(tmp_path, MINIMAL), ["init_from='#2'"]).init_from == "#2"


@pytest.mark.parametrize("role", ["train", "val"])
def test_ho3ds_evaluation_split_is_refused_for_training_and_validation(role):
    """Its records hold the wrist alone: as the validation split the run trained until the
    first validation (every 10 epochs) and stopped on a NaN error; as the training split, on
    statistics that "must be finite", naming nothing."""
    with pytest.raises(ConfigError) as error:
        load_config(
            CONFIGS / "ho3d" / "lifter.yaml", ["data.root=/d", f"data.{role}_split=evaluation"]
        )
    assert str(error.value) == (
        f"--set data.{role}_split=evaluation: data.{role}_split: ho3d's 'evaluation' split holds "
        "only the wrist (HO-3D keeps the rest for its server), and training and validation read "
        "the hand's labels; it is `hopose eval`'s alone"
    )
    assert (
        load_config(CONFIGS / "ho3d" / "lifter.yaml", ["data.root=/d"]).data.train_split == "train"
    )


def test_the_defaults_are_the_papers_batch_and_network():
    """Paper §4.3: batch 256, the context-aware lifter with all its sub-graphs on the linear
    head; one whole-frame pass and no test-time views when predicting from images."""
    optim, model, data = OptimConfig(), ModelConfig(), DataConfig()
    assert (optim.batch_size, optim.lr) == (256, 1e-3)
    assert (model.lifter, model.lifter_variant, model.head) == ("context", "full", "linear")
    assert (data.self_crop, data.self_crop_turn, data.self_crop_shift) == (1, 0.0, 0.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Each value one past the end of its field's range; the end itself is accepted below.
        (["data.self_crop=0"], "data.self_crop must be >= 1, got 0"),
        (["data.self_crop_margin=-0.1"], "data.self_crop_margin must be >= 0, got -0.1"),
        (["data.num_workers=-1"], "data.num_workers must be >= 0, got -1"),
        (["data.num_train=0"], "data.num_train must be in [1, 2**31) or null, got 0"),
        (["data.num_val=0"], "data.num_val must be in [1, 2**31) or null, got 0"),
        (["data.num_test=0"], "data.num_test must be in [1, 2**31) or null, got 0"),
        (["data.image_size=7"], "data.image_size must be in [8, 4096], got 7"),
        (["model.hidden=0"], "model.hidden must be > 0, got 0"),
        (["model.dropout=1"], "model.dropout must be in [0, 1), got 1.0"),
        (["optim.grad_clip=0"], "optim.grad_clip must be > 0 or null, got 0.0"),
        (["optim.val_every=0"], "optim.val_every must be > 0, got 0"),
        (["optim.checkpoint_minutes=-1"], "optim.checkpoint_minutes must be >= 0, got -1.0"),
        (["optim.step_size=0"], "optim.step_size must be > 0, got 0"),
        (["optim.gamma=0"], "optim.gamma must be > 0, got 0.0"),
        (["optim.lr=0"], "optim.lr must be > 0, got 0.0"),
        (["optim.weight_decay=-1"], "optim.weight_decay must be >= 0, got -1.0"),
        (["model.backbone_stages=0"], "model.backbone_stages must be 1, 2, 3 or 4, got 0"),
        (["loss.w_heatmap=-1"], "loss.w_heatmap must be >= 0, got -1.0"),
        (["perturb.outlier_prob=1.01"], "perturb.outlier_prob must be in [0, 1], got 1.01"),
        (["augment.colour=-0.5"], "augment.colour must be in [0, 1], got -0.5"),
        # Past 1 the brightness, contrast and saturation factor 1 - colour would be negative.
        (["augment.colour=1.5"], "augment.colour must be in [0, 1], got 1.5"),
        (["num_threads=0"], "num_threads must be > 0 or null, got 0"),
        # A negative count of progressive epochs with a size: the size-and-epochs pairing check
        # alone lets it through (-1 is not 0).
        (
            ["optim.epochs=4", "optim.progressive_size=32", "optim.progressive_epochs=-1"],
            "optim.progressive_epochs must be >= 0 and below optim.epochs (4), got -1",
        ),
    ],
)
def test_a_value_just_past_its_fields_range_is_refused_naming_the_field(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(CONFIGS / "synthetic" / "encoder.yaml", overrides)
    assert str(error.value).endswith(f": {message}")


def test_the_ends_of_each_fields_range_are_accepted():
    """The closed ends of the ranges the messages above state: 0 for amounts (0 turns a margin,
    a noise or the between-validation checkpoints off), 1 for probabilities, half the side for
    the test-time shift, one self-crop, no worker process."""
    overrides = [
        "data.self_crop=1",
        "data.self_crop_margin=0",
        "data.self_crop_shift=0.5",
        "data.self_crop_turn=0",
        "data.num_workers=0",
        "data.num_train=1",
        "model.dropout=0",
        "optim.checkpoint_minutes=0",
        "optim.weight_decay=0",
        "augment.blur_prob=1",
        "augment.occlusion_prob=1",
        "augment.colour=1",
        "augment.noise=0",
        "loss.w_heatmap=0",
        "num_threads=1",
    ]
    cfg = load_config(CONFIGS / "synthetic" / "encoder.yaml", overrides)
    assert (cfg.data.self_crop_margin, cfg.data.self_crop_shift) == (0.0, 0.5)
    assert (cfg.optim.checkpoint_minutes, cfg.augment.blur_prob) == (0.0, 1.0)
    # The perturbation of ground-truth 2D on the stage that reads it.
    perturb = ["perturb.outlier_prob=1", "perturb.outlier_sigma=1", "perturb.drop_prob=1"]
    lifter = load_config(CONFIGS / "synthetic" / "lifter.yaml", [*perturb, "perturb.sigma=1"])
    assert (lifter.perturb.outlier_prob, lifter.perturb.drop_prob) == (1.0, 1.0)
    assert (lifter.perturb.sigma, lifter.perturb.outlier_sigma) == (1.0, 1.0)


def test_a_training_split_read_as_the_test_split_must_ask_one_size():
    """As for the validation split: `hopose eval --split train` reads the training split as its
    test split, and one split asked two sizes would be evaluated on num_train frames of it."""
    with pytest.raises(ConfigError) as error:
        config_from_dict({"data": {"test_split": "train", "num_train": 10, "num_test": 20}})
    assert str(error.value) == (
        "data.train_split and data.test_split are both 'train': data.num_train (10) and "
        "data.num_test (20) must agree"
    )
    data = {"test_split": "train", "num_train": 10, "num_val": 5, "num_test": 10}
    cfg = config_from_dict({"data": data})
    assert (cfg.data.test_split, cfg.data.num_test) == ("train", 10)


@pytest.mark.parametrize("gpu", [False, True], ids=["no_gpu", "gpu"])
def test_auto_is_the_gpu_when_there_is_one_and_other_devices_are_kept(monkeypatch, gpu):
    """ "auto" (eval's, predict's and training's default) is "cuda" on a machine with a GPU and
    "cpu" without; a device asked for is kept as it is, for check_device to judge."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert resolve_device("auto") == ("cuda" if gpu else "cpu")
    assert [resolve_device(d) for d in ("cpu", "cuda:1", "foo")] == ["cpu", "cuda:1", "foo"]


def test_an_eval_device_beyond_the_machines_gpus_is_named(monkeypatch):
    """GPUs are numbered from 0: on a machine with two, cuda:1 is the last one and cuda:2 is
    refused with the field's name; without a GPU even plain cuda is refused."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device("cuda:1", "--device")
    check_device("cuda", "--device")
    with pytest.raises(ConfigError) as error:
        check_device("cuda:2", "--device")
    assert str(error.value) == "--device: 'cuda:2' asked, but this machine has 2 CUDA device(s)"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ConfigError, match="--device: 'cuda' asked, but no CUDA device"):
        check_device("cuda", "--device")
    check_device("cuda:7", "--device", present=False)  # only read: a GPU checkpoint's config


@pytest.mark.parametrize(
    ("text", "override", "message"),
    [
        (MINIMAL, "data.options.jitter=maybe", "data.options.jitter: expected true or false, "
         "got 'maybe'"),
        (MINIMAL, "data.options.focal_scale=-1", "data.options.focal_scale: expected a positive "
         "number or [low, high], got -1"),
        (MINIMAL + "  crop: resize\n", "data.options.jitter=true", "data.options.jitter: true "
         "jitters square crops, but data.crop is 'resize': set data.crop to 'square' or "
         "data.options.jitter to false"),
        ("data:\n  name: fpha\n", "data.options.protocol=bogus", "data.options.protocol: "
         "expected one of ('hope', 'action'), got 'bogus'"),
        ("data:\n  name: obman\n", "data.options.shapenet_root=3", "data.options.shapenet_root: "
         "expected the ShapeNetCore.v2 folder or None, got 3"),
        ("data:\n  name: fpha\n", "data.options.jiter=true", "unknown key data.options.jiter: "
         "the fpha dataset takes ('protocol', 'margin', 'on_error', 'jitter')"),
    ],
    ids=["jitter", "focal_scale", "jitter_resize", "protocol", "shapenet_root", "unknown"],
)  # fmt: skip
def test_a_bad_dataset_option_is_refused_when_the_config_is_read(tmp_path, text, override, message):
    """The loader's own check, naming the config field: before, the loader refused it only once
    a run built its dataset (after making the run folder), naming its argument ("jitter:"), and
    ObMan's shapenet_root=3 was a TypeError traceback. An unknown option was refused already."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path, [override])
    assert str(error.value) == f"--set {override}: {message}"


def test_whole_frames_under_a_jittering_config_blame_the_crop_override():
    """The message named the loader's "crop", not data.crop, so the override that set it was
    not blamed: the shipped file was, whose own crop is square."""
    with pytest.raises(ConfigError) as error:
        load_config(CONFIGS / "synthetic" / "encoder.yaml", ["data.crop=resize"])
    assert str(error.value) == (
        "--set data.crop=resize: data.options.jitter: true jitters square crops, but data.crop "
        "is 'resize': set data.crop to 'square' or data.options.jitter to false"
    )


# The model fields the lifter's weights are built from and trained with (hopose.models.
# build_lifter): what the lifter stage passes on through init_from.
LIFTER_FIELDS = ("lifter", "lifter_variant", "hidden", "dropout", "modulated")
# Those of the image encoder alone, which a lifter-stage config may set otherwise (the demo's
# lifter.yaml leaves head and segmentation at their defaults): that stage trains no encoder, and
# init_from copies only the parts a checkpoint trained (hopose.checkpoint.load_trained_parts).
ENCODER_ONLY_FIELDS = ("backbone", "backbone_weights", "backbone_stages", "head", "segmentation")


@pytest.mark.parametrize("quick", [False, True], ids=["demo", "quick"])
def test_the_demos_stages_share_their_crops_and_the_weights_they_pass_on(quick):
    """``hopose demo`` (and --quick) trains lifter -> encoder -> end2end, each from the last
    one's weights, and the end-to-end stage fine-tunes on the encoder stage's rendered crops:
    its train and val splits are found in the SplitCache the encoder stage filled (the same
    key: dataset, seed, image size, crop, jitter...; no more samples than that stage read; all
    of them in the full demo, "two epochs on its 12,000 crops"), and its model fields are the
    encoder stage's, every one. The lifter stage's agree on the fields of the lifter it passes
    on; those of the encoder alone may differ."""
    from dataclasses import asdict, fields

    from hopose.data.splits import RecordList, SplitCache, split_size

    cfgs = {
        stage: load_config(
            CONFIGS / "synthetic" / f"{stage}.yaml", QUICK_OVERRIDES[stage] if quick else []
        )
        for stage in ("lifter", "encoder", "end2end")
    }
    encoder, end2end = cfgs["encoder"].data, cfgs["end2end"].data
    for split in (encoder.train_split, encoder.val_split):
        cache = SplitCache()
        read = split_size(encoder, split)
        cache.put(
            SplitCache.key(encoder, split, with_images=True),
            read,
            RecordList([{"row": row} for row in range(read)]),
        )
        asked = split_size(end2end, split)
        shared = cache.get(SplitCache.key(end2end, split, with_images=True), asked)
        assert shared is not None, f"end2end's {split} split is not the encoder's crops"
        assert [record["row"] for record in shared] == list(range(asked))
    if not quick:
        assert end2end.num_train == encoder.num_train
    assert asdict(cfgs["end2end"].model) == asdict(cfgs["encoder"].model)
    # Every model field is one or the other, so that a new one must be placed.
    assert sorted(LIFTER_FIELDS + ENCODER_ONLY_FIELDS) == sorted(
        field.name for field in fields(ModelConfig)
    )
    lifter = {name: getattr(cfgs["lifter"].model, name) for name in LIFTER_FIELDS}
    assert lifter == {name: getattr(cfgs["encoder"].model, name) for name in LIFTER_FIELDS}


@pytest.mark.parametrize("name", ["num_train", "num_val", "num_test"])
def test_a_sample_count_of_2_31_or_more_is_refused_naming_the_field(name):
    """As optim.batch_size: data.num_val=10**20 was an OverflowError traceback ("cannot fit
    'int' into an index-sized integer") once the run read its data."""
    path = CONFIGS / "synthetic" / "lifter.yaml"
    for value in (2**31, 10**20):
        with pytest.raises(ConfigError) as error:
            load_config(path, [f"data.{name}={value}"])
        assert str(error.value) == (
            f"--set data.{name}={value}: data.{name} must be in [1, 2**31) or null, got {value}"
        )
    assert getattr(load_config(path, [f"data.{name}={2**31 - 1}"]).data, name) == 2**31 - 1


@pytest.mark.parametrize("dataset", ["synthetic", "fpha"])
def test_the_image_side_is_bounded_for_every_dataset_naming_the_field(dataset):
    """1 px was refused by the synthetic loader only once the run read its data, naming neither
    the field nor the file ("image_size: must be >= 8"), and 10**8 px was a MemoryError
    traceback from the first image. The least side is the one hopose prepare holds any
    dataset's caches to, real data's too; the most, twice FPHA's 1920 px frames."""
    from hopose.config import MAX_IMAGE_SIZE
    from hopose.data.synthetic import MIN_IMAGE_SIZE

    assert (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE) == (8, 4096)
    path = CONFIGS / dataset / "lifter.yaml"
    for side in (1, MIN_IMAGE_SIZE - 1, MAX_IMAGE_SIZE + 1, 10**8):
        with pytest.raises(ConfigError) as error:
            load_config(path, [f"data.image_size={side}"])
        assert str(error.value) == (
            f"--set data.image_size={side}: data.image_size must be in [8, 4096], got {side}"
        )
    for side in (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE):
        assert load_config(path, [f"data.image_size={side}"]).data.image_size == side


@pytest.mark.parametrize(
    ("file_text", "overrides", "source", "message"),
    [
        # Was "<config>.yaml: optim.lr: Value 'fast'...", blaming the shipped file.
        ("", ["optim.lr=fast"], "--set optim.lr=fast",
         "optim.lr: Value 'fast' of type 'str' could not be converted to Float"),
        ("optim:\n  lr: fast\n", ["optim.epochs=2"], "FILE",
         "optim.lr: Value 'fast' of type 'str' could not be converted to Float"),
        # Refused once the config is built: the override in force (a key's last) that the
        # message names; the file's own value, whatever other overrides there are.
        ("", ["optim.lr=1", "optim.lr=-1"], "--set optim.lr=-1", "optim.lr must be > 0, got -1.0"),
        ("optim:\n  lr: -1\n", ["optim.epochs=2", "data.seed=3"], "FILE",
         "optim.lr must be > 0, got -1.0"),
        # data.seed is not the top-level seed the message names.
        ("seed: -1\n", ["data.seed=3"], "FILE", "seed must be in [0, 2**32), got -1"),
        ("", ["optim.amp=2"], "--set optim.amp=2", "optim.amp must be true or false, got 2"),
        ("", ["optim.lr=[1"], "--set optim.lr=[1",
         "optim.lr: value is not YAML: did not find expected ',' or ']'"),
        ("", ["optim"], "--set optim", "must look like key=value"),
    ],
)  # fmt: skip
def test_a_value_from_an_override_is_blamed_on_it_not_on_the_file(
    tmp_path, file_text, overrides, source, message
):
    path = _write(tmp_path, MINIMAL + file_text)
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    assert str(error.value) == f"{path if source == 'FILE' else source}: {message}"


def test_the_splits_a_run_reads_must_be_its_datasets_naming_the_field():
    """Refused by the loader only once the run built its data, its folder made, naming no field
    ("split: synthetic has ('train', 'val', 'test'), got 'banana'"). FPHA's action protocol
    has no val split, HO-3D its evaluation split instead of val and test. Not checked: the
    test split, which `hopose eval` reads (its --split stands in for it) and a checkpoint's
    config may hold unread, and an evaluation's DataConfig, whose train and val splits stay at
    their defaults whatever its dataset."""
    cases = [
        ("synthetic", "data.val_split=banana", "data.val_split must be one of ('train', 'val', "
         "'test'), the synthetic dataset's splits, or null, got 'banana'"),
        ("synthetic", "data.train_split=banana", "data.train_split must be one of ('train', "
         "'val', 'test'), the synthetic dataset's splits, got 'banana'"),
        ("ho3d", "data.val_split=val", "data.val_split must be one of ('train', 'evaluation'), "
         "the ho3d dataset's splits, or null, got 'val'"),
        # The option that chose the splits is named, and so blamed where an override set it.
        ("fpha", "data.options={protocol: action}", "data.val_split must be one of ('train', "
         "'test'), the fpha dataset's splits with data.options.protocol=action, or null, got "
         "'val'"),
    ]  # fmt: skip
    for dataset, override, message in cases:
        with pytest.raises(ConfigError) as error:
            load_config(CONFIGS / dataset / "lifter.yaml", [override])
        assert str(error.value) == f"--set {override}: {message}"
    action = ["data.options={protocol: action}", "data.val_split=null"]
    assert load_config(CONFIGS / "fpha" / "lifter.yaml", action).data.val_split is None
    assert config_from_dict({"data": {**SIZES, "test_split": "banana"}}).data.test_split == "banana"
    assert DataConfig(name="ho3d", root="ho3d").val_split == "val"


@pytest.mark.parametrize("dataset", REAL)
def test_a_real_dataset_without_its_folder_or_a_cache_is_refused_naming_data_root(dataset):
    """Refused by the loader only once the run built its data, naming no config field ("root:
    the fpha dataset needs its folder (or a cache)"). Every shipped config of real data names
    its folder, so none waits for a --set data.root; a cache stands in for the folder."""
    for path in sorted((CONFIGS / dataset).glob("*.yaml")):
        assert load_config(path).data.root == f"data/{dataset}", path
        with pytest.raises(ConfigError) as error:
            load_config(path, ["data.root=null"])
        assert str(error.value) == (
            f"--set data.root=null: data.root: the {dataset} dataset needs its folder (or a "
            "data.cache), got null"
        )
        assert load_config(path, ["data.root=null", "data.cache=prepared"]).data.root is None


@pytest.mark.parametrize("value", ["", "  "])
@pytest.mark.parametrize("field", [*PATH_FIELDS, "num_threads"])
def test_an_override_without_a_value_is_refused_not_read_as_null(field, value):
    """`--set init_from=$PREV` with PREV unset reads as null: the stage trained from scratch
    without a word. Refused, naming the override; null is written null. A field that cannot be
    null keeps the message that says so."""
    path = CONFIGS / "synthetic" / "encoder.yaml"
    with pytest.raises(ConfigError) as error:
        load_config(path, [f"{field}={value}"])
    assert str(error.value) == (
        f"--set {field}={value}: {field}: empty value; write {field}=null for none"
    )
    cfg = config_to_dict(load_config(path, [f"{field}=null"]))
    section, _, key = field.rpartition(".")
    assert (cfg[section] if section else cfg)[key] is None
    with pytest.raises(ConfigError) as error:
        load_config(path, ["optim.lr="])
    assert str(error.value) == "--set optim.lr=: optim.lr: field 'optim.lr' is not Optional"


def test_a_path_override_names_the_file_absolute_whatever_the_folder_it_is_made_in(
    tmp_path, monkeypatch
):
    """The override the demo gives a stage's init_from: the same absolute path from the folder
    above the run or from inside it, a folder named with YAML's ": " and " #" included (unquoted,
    the value read as {'.../a': 'b #1/best.pt'}, or cut at the #) and a character beyond the
    Basic Multilingual Plane (json's ASCII escape of it, a surrogate pair, is no YAML) and a
    control character (DEL: YAML holds it escaped only)."""
    folder = tmp_path / "runs" / "a: b #1 \N{RAISED HAND WITH FINGERS SPLAYED} \x7f"
    folder.mkdir(parents=True)
    path = CONFIGS / "synthetic" / "encoder.yaml"
    monkeypatch.chdir(tmp_path)
    above = load_config(
        path, [path_override("init_from", folder.relative_to(tmp_path) / "best.pt")]
    )
    above = above.init_from
    monkeypatch.chdir(folder)
    inside = load_config(path, [path_override("init_from", "./best.pt")]).init_from
    assert above == inside == str(folder.resolve() / "best.pt")
