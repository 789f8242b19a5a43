"""ONNX export: the exported graphs compute what the PyTorch network computes, at any batch."""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
import torch
from PIL import Image

from hopose.checkpoint import model_checkpoint, save_checkpoint
from hopose.cli import main
from hopose.config import DataConfig, ModelConfig, TrainConfig
from hopose.crop import edge_aligned_scale
from hopose.export import (
    GRAPHS,
    compare_onnx,
    example_inputs,
    export_onnx,
    graph_module,
    onnx_session,
    output_difference,
    tolerance,
)
from hopose.geometry import project_points
from hopose.models import build_model

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")

# Paper §4.3's accuracy units: 2D outputs must agree within 0.01 px, 3D within 0.1 mm.
PX, MM = 0.01, 0.1


def _tiny_config(head: str = "linear") -> TrainConfig:
    # The heat-map head as the demo has it, with segmentation maps: one more output.
    model = ModelConfig(backbone="resnet18", hidden=16, head=head, segmentation=head == "heatmap")
    data = DataConfig(image_size=32, num_train=1, num_val=1)
    return TrainConfig(stage="end2end", data=data, model=model)


def _trained_like(cfg: TrainConfig) -> torch.nn.Module:
    """A tiny network whose weights are moved off their initial values, as training would:
    learned adjacencies no longer near the skeleton's, batch-norm statistics not (0, 1), output
    statistics of a real pose set, so that an export that dropped any of them would differ."""
    torch.manual_seed(0)
    model = build_model(cfg.model)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    model.lifter.set_input_stats(torch.tensor([0.02, -0.05]), torch.tensor([0.3, 0.25]))
    model.lifter.set_output_stats(torch.randn(29, 3) * 30 + torch.tensor([0, 0, 450.0]), 42.0)
    return model.eval()


def _max_errors(model, path, graph, batch) -> dict[str, float]:
    """Largest |onnxruntime - torch| of each output on a fresh batch (heat maps: relative)."""
    inputs = example_inputs(graph, batch=batch, image_size=32, seed=batch)
    with torch.no_grad():
        expected = graph_module(model, graph)(*inputs.values())
    session = onnx_session(path)
    names = [output.name for output in session.get_outputs()]
    got = session.run(names, {k: v.numpy() for k, v in inputs.items()})
    return {
        n: output_difference(n, g, expected[n].numpy()) for n, g in zip(names, got, strict=True)
    }


@pytest.fixture(scope="module", params=["linear", "heatmap"])
def network_onnx(tmp_path_factory, request):
    """A tiny end-to-end checkpoint of each head and its network exported through
    ``hopose export``, whose own check must pass (its heat-map logits reach a few hundred)."""
    folder = tmp_path_factory.mktemp("export")
    cfg = _tiny_config(request.param)
    model = _trained_like(cfg)
    save_checkpoint(
        model_checkpoint(model, cfg, trained={"encoder", "lifter"}), folder / "model.pt"
    )
    assert main(["export", str(folder / "model.pt"), "--out", str(folder / "model.onnx")]) == 0
    return model, folder


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 5])
def test_exported_network_matches_torch_at_any_batch(network_onnx, batch):
    model, folder = network_onnx
    errors = _max_errors(model, folder / "model.onnx", "network", batch)
    keys = {"kp2d_init", "kp2d", "kp3d_init", "kp3d"}
    maps = {"heatmaps", "segmentation"} if model.encoder.head_kind == "heatmap" else set()
    assert set(errors) == keys | maps
    assert errors["kp2d_init"] < PX and errors["kp2d"] < PX
    assert errors["kp3d_init"] < MM and errors["kp3d"] < MM
    assert all(errors[name] < 1e-4 for name in maps)


@pytest.mark.slow
def test_the_graph_lists_its_outputs_sorted_by_name(network_onnx):
    """As documented (not the output dict's order, kp2d_init first): users read them by name."""
    model, folder = network_onnx
    graph = [output.name for output in onnx_session(folder / "model.onnx").get_outputs()]
    maps = ["heatmaps"] if model.encoder.head_kind == "heatmap" else []
    tail = ["segmentation"] if maps else []
    assert graph == [*maps, "kp2d", "kp2d_init", "kp3d", "kp3d_init", *tail]


@pytest.mark.slow
def test_the_comparison_sees_a_network_that_changed_after_export(network_onnx):
    """The check the command runs is not vacuous: one refinement weight moved after the export
    shows up in the refined 2D (and the 3D lifted from it), not in the initial 2D."""
    model, folder = network_onnx
    changed = build_model(_tiny_config(model.encoder.head_kind).model)
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.encoder.refine.layers[-1].bias.add_(0.5)  # normalised units: 0.5 * 32 / 2 = 8 px
    errors = compare_onnx(changed, folder / "model.onnx", graph="network", image_size=32)
    assert errors["kp2d_init"] < PX
    assert errors["kp2d"] == pytest.approx(8.0, abs=PX)
    assert errors["kp3d"] > MM


@pytest.mark.slow
def test_exported_lifter_matches_torch_at_any_batch(tmp_path):
    model = _trained_like(_tiny_config())
    names = export_onnx(model, tmp_path / "lifter.onnx", graph="lifter", image_size=32)
    assert names == ["kp3d", "kp3d_init"]
    # One self-contained file: weights kept beside it (lifter.onnx.data) would be lost by whoever
    # copies the model alone.
    assert [path.name for path in tmp_path.iterdir()] == ["lifter.onnx"]
    for batch in (1, 7):
        errors = _max_errors(model, tmp_path / "lifter.onnx", "lifter", batch)
        assert max(errors.values()) < MM, errors


def test_the_documented_K_puts_a_point_where_an_ordinary_resize_shows_it():
    # The K the module docstring tells ONNX users to pass with a photo resized whole by Pillow:
    # edge_aligned_scale((S / W, S / H)) @ K_photo. A 640x360 photo with a Gaussian blob (sd 30
    # px) at (401.3, 217.8), resized to 64 px: s = (0.1, 64 / 360), so the blob shows at
    # s u + (s - 1) / 2 = (39.68, 38.3089), where that K projects the blob's 3D point;
    # scale_intrinsics (s u = (40.13, 38.72)) is (0.45, 0.41) px off.
    u, v = 401.3, 217.8
    ys, xs = np.mgrid[0:360, 0:640]  # pixel centres at integers
    blob = 255 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 30.0**2))
    photo = Image.fromarray(np.repeat(blob[..., None], 3, axis=2).round().astype(np.uint8))
    resized = np.asarray(photo.resize((64, 64), Image.BILINEAR))[..., 0].astype(float)
    rows, columns = np.mgrid[0:64, 0:64]
    shown = np.array([(resized * columns).sum(), (resized * rows).sum()]) / resized.sum()
    K_photo = torch.tensor([[500.0, 0, 320.0], [0, 500.0, 180.0], [0, 0, 1]], dtype=torch.float64)
    point = torch.linalg.solve(K_photo, torch.tensor([u, v, 1.0], dtype=torch.float64)) * 400
    K = edge_aligned_scale(torch.tensor([64 / 640, 64 / 360], dtype=torch.float64)) @ K_photo
    projected = project_points(point[None], K)[0].numpy()
    np.testing.assert_allclose(projected, [39.68, 38.308889], atol=1e-6)
    np.testing.assert_allclose(shown, projected, atol=0.05)


def test_unitless_outputs_are_compared_relative_to_their_scale():
    # The same 3e-4 error: on keypoints (px) it counts as it is; on heat-map logits reaching 300
    # it is 3e-4 / 300 = 1e-6 of them, and on logits below 1 it is over 1 (not blown up).
    expected = np.array([[-300.0, 12.0], [0.5, 1.0]])
    got = expected + 3e-4
    assert output_difference("kp2d", got, expected) == pytest.approx(3e-4)
    assert output_difference("heatmaps", got, expected) == pytest.approx(1e-6)
    assert output_difference("heatmaps", got[1:] / 4, expected[1:] / 4) == pytest.approx(7.5e-5)
    assert tolerance("kp2d_init") == PX and tolerance("kp3d") == MM
    assert tolerance("heatmaps") == 1e-4


def test_output_difference_is_the_largest_element_not_the_mean():
    # One element of six is off, by -0.06 (below its expected value): the largest |difference|
    # is 0.06, where a mean would report 0.06 / 6 = 0.01 and a signed maximum 0.
    expected = np.array([[-50.0, 12.0, 3.0], [0.5, 1.0, 20.0]])
    got = expected.copy()
    got[1, 2] -= 0.06
    assert output_difference("kp3d", got, expected) == pytest.approx(0.06)
    # Unitless: the same 0.06 over the largest |expected|, 50: 0.06 / 50 = 1.2e-3 (a mean would
    # be 0.01 / 50 = 2e-4).
    assert output_difference("heatmaps", got, expected) == pytest.approx(1.2e-3)


def test_a_lifter_stage_checkpoint_exports_no_network(tmp_path, capsys):
    """Its encoder was never trained: exporting images -> 3D from it is refused in one line."""
    cfg = dataclasses.replace(_tiny_config(), stage="lifter")
    save_checkpoint(
        model_checkpoint(build_model(cfg.model), cfg, trained={"lifter"}), tmp_path / "l.pt"
    )
    assert main(["export", str(tmp_path / "l.pt"), "--out", str(tmp_path / "m.onnx")]) == 1
    (message,) = capsys.readouterr().err.splitlines()
    assert "l.pt" in message and "encoder was never trained" in message
    assert message.endswith("hopose export --graph lifter)")  # the export that it can serve
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("graph", GRAPHS)
def test_a_checkpoint_whose_lifter_was_never_trained_exports_no_graph(tmp_path, capsys, graph):
    """An encoder stage run without init_from: its lifter is random, and both graphs lift with
    it (the network's 3D, the lifter's everything), so either export is refused in one line."""
    cfg = dataclasses.replace(_tiny_config(), stage="encoder")
    save_checkpoint(
        model_checkpoint(build_model(cfg.model), cfg, trained={"encoder"}), tmp_path / "e.pt"
    )
    out = tmp_path / "m.onnx"
    assert main(["export", str(tmp_path / "e.pt"), "--graph", graph, "--out", str(out)]) == 1
    (message,) = capsys.readouterr().err.splitlines()
    use = "predict from images" if graph == "network" else "lift ground-truth 2D"
    assert f": an encoder-stage checkpoint whose lifter was never trained cannot {use}" in message
    # No way to the lifter alone is offered: it is the part that was never trained.
    assert "e.pt" in message and message.endswith("(train the next stages from it with init_from)")
    assert not out.exists()


def test_an_export_that_fails_its_check_is_one_line_and_leaves_no_file(tmp_path, capsys):
    # With every tolerance below zero no difference passes (differences are >= 0): the
    # command names the file and the outputs on stderr, exits 1, and the .onnx is gone.
    cfg = dataclasses.replace(_tiny_config(), stage="lifter")
    model = _trained_like(cfg)
    save_checkpoint(model_checkpoint(model, cfg, trained={"lifter"}), tmp_path / "l.pt")
    out = tmp_path / "lifter.onnx"
    args = ["export", str(tmp_path / "l.pt"), "--graph", "lifter", "--out", str(out)]
    with patch("hopose.export.tolerance", return_value=-1.0):
        assert main(args) == 1
    (message,) = capsys.readouterr().err.splitlines()
    assert message.startswith(f"hopose export: error: {out}: outputs ['kp3d', 'kp3d_init'] differ")
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "l.pt"]


def test_a_failed_export_names_the_file_and_keeps_the_good_one(tmp_path, capsys):
    """The graph is written to a temporary file, checked there, then renamed: a check that fails
    or a disk that fills up half-way leaves the good model.onnx already there as it was, and the
    full disk's error (ENOSPC, whose message names no file) names it."""
    cfg = dataclasses.replace(_tiny_config(), stage="lifter")
    save_checkpoint(
        model_checkpoint(_trained_like(cfg), cfg, trained={"lifter"}), tmp_path / "l.pt"
    )
    out = tmp_path / "lifter.onnx"
    args = ["export", str(tmp_path / "l.pt"), "--graph", "lifter", "--out", str(out)]
    assert main(args) == 0
    good = out.read_bytes()
    capsys.readouterr()

    with patch("hopose.export.tolerance", return_value=-1.0):
        assert main(args) == 1
    (message,) = capsys.readouterr().err.splitlines()
    assert message.endswith("differ from torch beyond tolerance; not written")
    assert out.read_bytes() == good

    def full_disk(self, destination, **kwargs):
        Path(destination).write_bytes(b"\x08\x09partial")  # what a write cut short leaves
        raise OSError(errno.ENOSPC, "No space left on device")

    with patch.object(torch.onnx.ONNXProgram, "save", full_disk):
        assert main(args) == 1
    (message,) = capsys.readouterr().err.splitlines()
    assert message.startswith("hopose export: error: [Errno 28]")
    assert "No space left on device" in message and str(out) in message
    assert out.read_bytes() == good
    assert sorted(path.name for path in tmp_path.iterdir()) == ["l.pt", "lifter.onnx"]


def test_an_unknown_graph_is_refused_naming_the_known_ones(tmp_path):
    """Not silently the lifter (anything not "network" would be): export and comparison name
    the graphs there are, and nothing is written."""
    model = build_model(_tiny_config().model)
    with pytest.raises(ValueError, match=r"graph must be one of \('network', 'lifter'\), got 'enc"):
        graph_module(model, "encoder")
    with pytest.raises(ValueError, match="graph must be one of"):
        export_onnx(model, tmp_path / "e.onnx", graph="encoder", image_size=32)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", [32, 224])
def test_example_inputs_are_an_image_or_2d_inside_it_and_a_plausible_camera(size):
    """What the export traces and the check compares on is what the graph is fed in use: 2D in
    the S x S image's pixels (not in [0, 1]), images in [0, 1], and K in those pixels, a focal
    of 0.7 S to 1.4 S (f = (S / 2) / tan(fov / 2): a field of view of 71° down to 39°) and the
    principal point within 5% of S of the middle."""
    lifter = example_inputs("lifter", batch=64, image_size=size)
    network = example_inputs("network", batch=2, image_size=size)
    assert list(lifter) == ["kp2d", "K"] and list(network) == ["image", "K"]
    kp2d = lifter["kp2d"]
    assert kp2d.shape == (64, 29, 2)
    # 64 * 29 * 2 uniform values spread over the whole image.
    assert kp2d.min() >= 0 and kp2d.max() <= size
    assert kp2d.min() < 0.01 * size and kp2d.max() > 0.99 * size
    image = network["image"]
    assert image.shape == (2, 3, size, size) and image.min() >= 0 and image.max() <= 1
    for K in (lifter["K"], network["K"]):
        f = K[:, 0, 0]
        assert torch.equal(K[:, 1, 1], f)
        assert f.min() >= 0.7 * size and f.max() <= 1.4 * size
        centre = K[:, :2, 2]
        assert centre.min() >= 0.45 * size and centre.max() <= 0.55 * size
        assert torch.equal(K[:, 2], torch.tensor([0.0, 0, 1]).expand(len(K), 3))
        assert not K[:, 0, 1].any() and not K[:, 1, 0].any()
    # The seed makes a check repeatable, and another seed draws other values.
    again = example_inputs("lifter", batch=64, image_size=size)
    assert torch.equal(again["kp2d"], kp2d) and torch.equal(again["K"], lifter["K"])
    assert not torch.equal(
        example_inputs("lifter", batch=64, image_size=size, seed=1)["K"], lifter["K"]
    )


@pytest.mark.parametrize(
    ("crop", "graph", "warned"),
    [("square", "network", True), ("resize", "network", False), ("square", "lifter", False)],
    ids=["self-cropping", "whole-frame", "lifter"],
)
def test_exporting_a_self_cropping_network_says_the_graph_is_one_pass(
    tmp_path, capsys, crop, graph, warned
):
    """A network trained on crops is predicted by hopose predict in self-cropping passes; its
    ONNX graph is one: the export says so in one line (and still exports). A whole-frame
    network, or the lifter, is exported as hopose predict runs it, without a word. The export
    itself is stubbed: the note comes before it."""
    cfg = _tiny_config()
    cfg.data.crop = crop  # data.self_crop: 1 pass after the whole frame
    save_checkpoint(
        model_checkpoint(build_model(cfg.model), cfg, trained={"encoder", "lifter"}),
        tmp_path / "m.pt",
    )
    out = tmp_path / "m.onnx"
    with patch("hopose.export.export_onnx") as export:
        assert main(["export", str(tmp_path / "m.pt"), "--graph", graph, "--out", str(out)]) == 0
    export.assert_called_once()
    note = (
        "hopose export: warning: the exported graph is one pass of the network; hopose predict "
        "runs it on the whole frame, then on 1 square(s) around its own 2D (self-cropping, "
        "hopose.self_crop): reimplement that around the graph to match hopose predict\n"
    )
    assert capsys.readouterr().err == (note if warned else "")


def test_export_prints_the_file_only_once_it_is_written(tmp_path, capsys):
    """stdout's path is the graph's, printed after the check: a failed check prints the
    differences, not the path of a file never written; --out a folder is refused before the
    export, in one line naming it."""
    cfg = dataclasses.replace(_tiny_config(), stage="lifter")
    save_checkpoint(
        model_checkpoint(_trained_like(cfg), cfg, trained={"lifter"}), tmp_path / "l.pt"
    )
    out = tmp_path / "lifter.onnx"
    args = ["export", str(tmp_path / "l.pt"), "--graph", "lifter", "--out", str(out)]
    with patch("hopose.export.tolerance", return_value=-1.0):
        assert main(args) == 1
    assert str(out) not in capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(out)
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main([*args[:-1], str(folder)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err
        == f"hopose export: error: --out: {folder} is a folder; give the ONNX file's path\n"
    )
