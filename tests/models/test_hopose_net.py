"""HoposeNet and build_model / build_lifter: composition, outputs, dtypes and devices."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from model_cases import pinhole

from eval_cases import make_predictions
from hopose.config import ModelConfig
from hopose.losses import compute_losses, total_loss
from hopose.models import ContextLifter, GraphUNet, HoposeNet, build_lifter, build_model


def tiny_config(**kwargs) -> ModelConfig:
    """A model config with tiny defaults: ResNet18, width 16."""
    return ModelConfig(**({"backbone": "resnet18", "hidden": 16} | kwargs))


def _model(**kwargs) -> HoposeNet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_model(tiny_config(**kwargs)).eval()


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("lifter", ["context", "graph_unet"])
def test_outputs_and_the_lifter_reads_the_refined_2d(lifter, device):
    torch.manual_seed(0)
    model = _model(lifter=lifter).to(device)
    image = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, device=device)
    K = pinhole(2, 100.0, 32.0).to(device)
    out = model(image, K)
    shapes = {
        "kp2d_init": (2, 29, 2),
        "kp2d": (2, 29, 2),
        "kp3d_init": (2, 29, 3),
        "kp3d": (2, 29, 3),
    }
    assert {key: tuple(value.shape) for key, value in out.items()} == shapes
    for value in out.values():
        assert value.dtype == torch.float32 and value.device.type == device
    # The parts called alone, as the trainer's stages 1 and 2 do, give the same outputs.
    encoded = model.encoder(image)
    torch.testing.assert_close(encoded["kp2d"], out["kp2d"])
    torch.testing.assert_close(model.lifter(encoded["kp2d"], K)["kp3d"], out["kp3d"])


def test_end_to_end_step_with_every_loss_term_reaches_the_backbone():
    """Each term alone, the 3D and physical ones through the lifter, moves the first conv."""
    torch.manual_seed(0)
    model = _model().train()
    # The lifter's output is out_mean + out_std * z: centred on the hand-built grasp of
    # eval_cases (10 valid contacts, affinity 13 / 45) with a 1 mm spread, the predicted pose
    # grasps its box, so the physical term is not the 0 (and zero gradient) of a pose without
    # two contacts, which a random network's pose is.
    grasp = make_predictions(1)
    mean = np.concatenate([grasp["gt_hand_3d"][0], grasp["gt_obj_3d"][0]])
    model.lifter.set_output_stats(torch.from_numpy(mean).float(), 1.0)
    batch = {
        "hand_2d": torch.rand(2, 21, 2) * 64,
        "obj_2d": torch.rand(2, 8, 2) * 64,
        "hand_3d": torch.randn(2, 21, 3) * 50 + 400,
        "obj_3d": torch.randn(2, 8, 3) * 50 + 400,
    }
    out = model(torch.rand(2, 3, 64, 64), pinhole(2, 100.0, 32.0))
    terms = compute_losses(out, batch, physical=True, original_pixels=False)
    assert set(terms) == {"2d_init", "2d", "3d_init", "3d", "physical"}
    assert 0 < abs(float(terms["physical"].detach())) < 1  # a mean of cosines of a grasp
    weight = model.encoder.backbone.conv1.weight
    for name, term in terms.items():
        # A 2D estimate detached on its way to the lifter would leave the 3D terms no path.
        (grad,) = torch.autograd.grad(term, weight, retain_graph=True, allow_unused=True)
        assert grad is not None and torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name
    total_loss(terms).backward()
    assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


@pytest.mark.parametrize("lifter", ["context", "graph_unet"])
def test_float64_computes_the_float32_outputs(lifter):
    # The same weights in float64 give the float32 2D and 3D to float32 precision, for a
    # float image in [0, 1] (the uint8 path has its own test in test_encoder.py).
    torch.manual_seed(0)
    model = _model(lifter=lifter)
    image, K = torch.rand(2, 3, 64, 64), pinhole(2, 100.0, 32.0)
    out32 = model(image, K)
    assert (out32["kp3d"][0] - out32["kp3d"][1]).abs().max() > 1e-2  # not a constant
    out64 = model.double()(image.double(), K.double())
    assert set(out64) == set(out32)
    for key, value in out32.items():
        assert out64[key].dtype == torch.float64, key
        torch.testing.assert_close(out64[key].float(), value, rtol=1e-4, atol=1e-3)


def test_build_lifter_maps_the_config():
    lifter = build_lifter(
        tiny_config(lifter="context", lifter_variant="hand", hidden=24, dropout=0.1)
    )
    assert isinstance(lifter, ContextLifter)
    assert lifter.parts == ("hand",)
    assert lifter.merged.layers[0].linear.out_features == 24 and lifter.merged.dropout.p == 0.1
    assert isinstance(build_lifter(tiny_config(lifter="graph_unet")), GraphUNet)
    assert _model(lifter="context", lifter_variant="object").lifter.parts == ("object",)
    cfg = tiny_config()
    cfg.lifter = "mlp"  # past ModelConfig's own check
    with pytest.raises(ValueError, match=r"model\.lifter"):
        build_lifter(cfg)


def test_modulated_model_is_the_plain_one_plus_per_node_scales_starting_at_one():
    torch.manual_seed(0)
    plain, modulated = _model(), _model(modulated=True)
    added = set(modulated.state_dict()) - set(plain.state_dict())
    assert set(plain.state_dict()) <= set(modulated.state_dict())
    # One (nodes, out) modulation per graph convolution: the encoder's 3-layer refinement GCN,
    # each sub-graph's 3 layers and the merged graph's 6.
    assert len(added) == 3 + 2 * 3 + 6 and all(key.endswith(".modulation") for key in added)
    assert modulated.encoder.refine.layers[0].modulation.shape == (29, 16)
    # Loaded with the plain model's weights, it computes the same function until M is trained.
    modulated.load_state_dict(plain.state_dict(), strict=False)
    image = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    K = pinhole(2, 100.0, 32.0)
    torch.testing.assert_close(modulated(image, K)["kp3d"], plain(image, K)["kp3d"])
    # The Graph U-Net has no such layers: the field leaves it as it is.
    unet = build_lifter(tiny_config(lifter="graph_unet", modulated=True))
    assert not any(key.endswith("modulation") for key in unet.state_dict())


@pytest.mark.parametrize("lifter", ["context", "graph_unet"])
def test_a_model_built_on_the_meta_device_traces_its_outputs_and_losses(lifter):
    """A model built with 'meta' as the default device (shapes without data or memory): its
    graph layers' adjacency check and the lifter's and the physical loss's autocast context
    failed there."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = build_model(tiny_config(lifter=lifter, head="heatmap", segmentation=True))
        out = model(torch.empty(2, 3, 64, 64), torch.empty(2, 3, 3))
        batch = {
            "hand_2d": torch.empty(2, 21, 2),
            "obj_2d": torch.empty(2, 8, 2),
            "hand_3d": torch.empty(2, 21, 3),
            "obj_3d": torch.empty(2, 8, 3),
            "K": torch.empty(2, 3, 3),
            "orig_K": torch.empty(2, 3, 3),
            "image": torch.empty(2, 3, 64, 64),
        }
        terms = compute_losses(out, batch, physical=True, original_pixels=True, heatmap=True)
    assert tuple(out["kp3d"].shape) == (2, 29, 3)
    assert set(terms) == {"2d_init", "2d", "3d_init", "3d", "physical", "heatmap"}
    assert all(value.device.type == "meta" and value.shape == () for value in terms.values())


def test_build_model_warns_without_weights_file():
    with pytest.warns(UserWarning, match="no pretrained"):
        build_model(tiny_config())
