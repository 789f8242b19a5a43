"""ImageEncoder: pixel outputs, image scaling, weights files and the random-init warning."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
import torchvision

from hopose.models.encoder import ImageEncoder
from hopose.models.graph_conv import LEARNED_ADJACENCY_FLOOR
from hopose.skeleton import hand_object_adjacency
from shape_checking import unchecked


def _encoder(**kwargs) -> ImageEncoder:
    args = {"backbone": "resnet18", "weights_path": None, "hidden": 16} | kwargs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ImageEncoder(**args).eval()


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    """A weights file saved from a torchvision ResNet18, as a user would save one."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def test_outputs_are_pixels_of_the_input_image():
    torch.manual_seed(0)
    encoder = _encoder()
    # Head and refinement at zero: every keypoint sits at normalised (0, 0), the image centre,
    # i.e. ((0 + 1) / 2 * W - 0.5, (0 + 1) / 2 * H - 0.5) = (47.5, 31.5) px for a 96 x 64
    # (W x H) image, whose pixel centres are 0 ... 95 and 0 ... 63.
    with torch.no_grad():
        encoder.head.weight.zero_()
        encoder.head.bias.zero_()
        encoder.refine.layers[-1].linear.weight.zero_()
    out = encoder(torch.rand(2, 3, 64, 96))
    for key in ("kp2d_init", "kp2d"):
        assert out[key].shape == (2, 29, 2) and out[key].dtype == torch.float32
        torch.testing.assert_close(out[key], torch.tensor([47.5, 31.5]).expand(2, 29, 2))
    # A bias of (1, -1) on node 0 moves it to the right / top border: (95.5, -0.5) px.
    with torch.no_grad():
        encoder.head.bias[:2] = torch.tensor([1.0, -1.0])
    torch.testing.assert_close(
        encoder(torch.rand(1, 3, 64, 96))["kp2d_init"][0, 0], torch.tensor([95.5, -0.5])
    )


def test_bfloat16_autocast_converts_the_head_output_to_pixels_in_float32():
    # The linear head outputs bfloat16 under autocast; 1 - 2^-8 is exact there, but adding 1
    # in bfloat16 rounds 2 - 2^-8 to 2. Its pixel: (2 - 2^-8) / 2 * 64 - 0.5 = 63.375, not 63.5.
    encoder = _encoder()
    with torch.no_grad():
        encoder.head.weight.zero_()
        encoder.head.bias.zero_()
        encoder.head.bias[0] = 1 - 2**-8
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder(torch.rand(1, 3, 32, 64))
    assert out["kp2d_init"].dtype == torch.float32
    torch.testing.assert_close(out["kp2d_init"][0, 0], torch.tensor([63.375, 15.5]))


def test_uint8_image_equals_float_image_over_255():
    torch.manual_seed(0)
    encoder = _encoder()
    image = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    out_uint8, out_float = encoder(image), encoder(image.float() / 255)
    for key in out_uint8:
        torch.testing.assert_close(out_uint8[key], out_float[key])


def test_refinement_sees_image_features():
    # Two different images give different refined keypoints even with the head's output fixed.
    torch.manual_seed(0)
    encoder = _encoder()
    with torch.no_grad():
        encoder.head.weight.zero_()
    out = encoder(torch.rand(2, 3, 64, 64))
    torch.testing.assert_close(out["kp2d_init"][0], out["kp2d_init"][1])
    assert not torch.allclose(out["kp2d"][0], out["kp2d"][1])


def test_refinement_nodes_read_their_initial_keypoint_and_the_global_feature():
    """Each node of the refinement GCN reads its initial (x, y) in [-1, 1] then the pooled
    feature g, the same for every node (paper §3.2): the GCN corrects the head's keypoints
    knowing where they are."""
    torch.manual_seed(0)
    encoder = _encoder()
    seen = []
    encoder.refine.layers[0].register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    image = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out = encoder(image)
        feature, _ = encoder._features((image - encoder.mean) / encoder.std)
    nodes = seen[0]  # (B, 29, 2 + 512)
    # Inverse of the pixel mapping of a 96 x 64 image: n = (p + 0.5) / size * 2 - 1.
    init = (out["kp2d_init"] + 0.5) / torch.tensor([96.0, 64.0]) * 2 - 1
    assert init.abs().max() > 0.01  # the head's keypoints are not all at the centre
    torch.testing.assert_close(nodes[..., :2], init)
    torch.testing.assert_close(nodes[..., 2:], feature[:, None].expand(-1, 29, -1))


def test_refinement_adjacency_starts_from_the_hand_and_box_graphs():
    """Every refinement layer's learned A starts at the hand's bones and the box's edges (1),
    every other entry, hand-object links and diagonal included, at the learned floor (1e-3),
    so the GCN starts by smoothing along the skeleton, not over unrelated nodes."""
    encoder = _encoder()
    skeleton = hand_object_adjacency()
    assert skeleton.sum() == 2 * (20 + 12)  # 20 bones and 12 box edges, each entered twice
    expected = torch.where(skeleton > 0, 1.0, LEARNED_ADJACENCY_FLOOR)
    for layer in encoder.refine.layers:
        torch.testing.assert_close(layer.adjacency().detach(), expected)


@pytest.mark.parametrize("head", ["linear", "heatmap"])
def test_float64_computes_the_same_keypoints_in_float64(head):
    # The same weights in float64 give the float32 keypoints to float32 precision, and a float64
    # input's gradient passes gradcheck through the head and the GCN (an 8 x 8 image keeps the
    # numerical Jacobian cheap).
    torch.manual_seed(0)
    encoder = _encoder(head=head)
    image = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    out32 = encoder(image)
    encoder = encoder.double()
    out64 = encoder(image)
    for key in out32:
        assert out64[key].dtype == torch.float64
        torch.testing.assert_close(out64[key].float(), out32[key], rtol=1e-4, atol=1e-3)
    small = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: encoder(x)["kp2d"], (small,), eps=1e-6, atol=1e-4)


@pytest.mark.parametrize("head", ["linear", "heatmap"])
def test_bfloat16_encoder_computes_the_float32_keypoints_in_bfloat16(head):
    # A bfloat16 copy of the weights answers in bfloat16, the float32 keypoints within its
    # rounding: 2^-8 relative is 0.25 px a step near 64 px, over the ResNet and the GCN. The
    # heat-map head's soft-argmax and sampled features come out in float32; the GCN read them
    # mixed with the bfloat16 global feature and stopped ("expected m1 and m2 to have the same
    # dtype") before they were brought to the activations' dtype.
    torch.manual_seed(0)
    encoder = _encoder(head=head, stages=2, segmentation=head == "heatmap")
    image = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    out32 = encoder(image)
    half = _encoder(head=head, stages=2, segmentation=head == "heatmap")
    half.load_state_dict(encoder.state_dict())
    out16 = half.to(torch.bfloat16)(image)
    assert set(out16) == set(out32)
    for key in out32:
        assert out16[key].dtype == torch.bfloat16
        atol = 1.5 if key.startswith("kp2d") else 0.05  # pixels, or logits
        torch.testing.assert_close(out16[key].float(), out32[key], rtol=0, atol=atol)


def test_no_weights_file_warns_clearly():
    with pytest.warns(UserWarning, match="random initialisation.*no pretrained"):
        ImageEncoder(backbone="resnet18", weights_path=None, hidden=8)


def test_weights_file_round_trip(resnet18_weights):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a weights file means no warning
        encoder = ImageEncoder(backbone="resnet18", weights_path=str(resnet18_weights), hidden=8)
    saved = torch.load(resnet18_weights, weights_only=True)
    loaded = encoder.backbone.state_dict()
    assert set(loaded) == {key for key in saved if not key.startswith("fc.")}
    for key, value in loaded.items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0)


def test_missing_weights_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "resnet50.pth"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        ImageEncoder(backbone="resnet50", weights_path=path, hidden=8)


def test_weights_of_another_architecture_name_the_path(resnet18_weights):
    with pytest.raises(ValueError, match=r"resnet18\.pth.*do not fit"):
        ImageEncoder(backbone="resnet34", weights_path=resnet18_weights, hidden=8)


def test_weights_with_extra_tensors_are_refused(resnet18_weights, tmp_path):
    """A file holding more than the backbone (a ResNet34's extra block of layer1) is of another
    architecture too: its extra keys are named, not silently ignored by the non-strict load."""
    state = torch.load(resnet18_weights, weights_only=True)
    state["layer1.2.conv1.weight"] = torch.zeros(64, 64, 3, 3)  # ResNet34's third layer1 block
    path = tmp_path / "resnet18_plus.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"resnet18_plus\.pth.*unexpected keys.*layer1\.2"):
        ImageEncoder(backbone="resnet18", weights_path=path, hidden=8)


def test_corrupt_weights_file_names_the_path(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ImageEncoder(backbone="resnet18", weights_path=path, hidden=8)


def test_bad_backbone_and_image_shape_raise():
    with pytest.raises(ValueError, match="backbone"):
        ImageEncoder(backbone="vgg16", weights_path=None, hidden=8)
    with unchecked(), pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        _encoder()(torch.rand(3, 64, 64))


@pytest.mark.parametrize("stages", [1, 2, 3])
def test_fewer_stages_read_the_whole_networks_first_maps(resnet18_weights, stages):
    # The same weights file in a full and a truncated encoder: the truncated one's maps are the
    # full one's first `stages` maps, and its global feature is the mean of its last map, of
    # width 512 / 2^(4 - stages) (ResNet18: 64, 128, 256, 512 channels at strides 4 ... 32).
    torch.manual_seed(0)
    full = ImageEncoder(backbone="resnet18", weights_path=resnet18_weights, hidden=8).eval()
    short = ImageEncoder(
        backbone="resnet18", weights_path=resnet18_weights, hidden=8, stages=stages
    ).eval()
    names = {key.split(".")[0] for key in short.backbone.state_dict()}
    assert names == {"conv1", "bn1", *(f"layer{k}" for k in range(1, stages + 1))}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, full_maps = full._features(x)
        feature, maps = short._features(x)
    assert len(maps) == stages
    for got, want in zip(maps, full_maps, strict=False):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert feature.shape == (2, 512 >> (4 - stages))
    torch.testing.assert_close(feature, maps[-1].mean(dim=(2, 3)))


def test_three_stages_train_a_quarter_of_the_weights():
    # ResNet18's layer4 holds 8,393,728 of its 11,176,512 weights (fc dropped). Without it the
    # linear head reads the 256 channels of layer3 pooled: with the refinement's output at zero,
    # each keypoint is that head's output in pixels, (n + 1) / 2 * 64 - 0.5.
    torch.manual_seed(0)
    encoder = _encoder(head="linear", stages=3)
    full = sum(p.numel() for p in torchvision.models.resnet18().parameters()) - (512 * 1000 + 1000)
    trunk = sum(p.numel() for p in encoder.backbone.parameters())
    assert (full, full - trunk) == (11_176_512, 8_393_728)
    with torch.no_grad():
        encoder.refine.layers[-1].linear.weight.zero_()
        encoder.refine.layers[-1].bias.zero_()
        x = torch.rand(2, 3, 64, 64)
        b = encoder.backbone
        layer3 = b.layer3(b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(
            (x - encoder.mean) / encoder.std
        )))))))  # fmt: skip
        normalised = encoder.head(layer3.mean(dim=(2, 3))).view(2, 29, 2)
        torch.testing.assert_close(encoder(x)["kp2d"], (normalised + 1) / 2 * 64 - 0.5)


def test_stages_out_of_range_raise():
    for stages in (0, 5):
        with pytest.raises(ValueError, match=f"stages must be 1, 2, 3 or 4, got {stages}"):
            _encoder(stages=stages)


def test_segmentation_maps_classify_the_heat_map_features_and_change_nothing_else():
    torch.manual_seed(0)
    plain = _encoder(head="heatmap", stages=2)
    segmenting = _encoder(head="heatmap", stages=2, segmentation=True)
    # The same weights but the 1 x 1 classifier: the keypoints are the same.
    missing, unexpected = segmenting.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["segmentation.weight", "segmentation.bias"] and unexpected == []
    # The classifier reads the head's fused stride-4 features, (B, 64, 8, 8) at 32 px.
    fused = []
    segmenting.head.fuse.register_forward_hook(lambda module, args, output: fused.append(output))
    image = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        out, seg = plain(image), segmenting(image)
        expected = segmenting.segmentation(fused[0])
    assert set(seg) == set(out) | {"segmentation"}
    for key in out:
        torch.testing.assert_close(seg[key], out[key])
    torch.testing.assert_close(seg["segmentation"], expected)
    with pytest.raises(ValueError, match="segmentation needs the heat-map head's features"):
        _encoder(segmentation=True)


def test_images_are_normalised_with_the_imagenet_mean_and_std():
    # torchvision's ResNet weights expect (x - mean) / std with these per-channel values.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    encoder = _encoder()
    seen = []
    encoder.backbone.conv1.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    # Left half of every channel at its mean, right half at mean + 1 std: the first
    # convolution must read 0 on the left and (mean + std - mean) / std = 1 on the right.
    image = torch.cat([mean.expand(1, 3, 32, 16), (mean + std).expand(1, 3, 32, 16)], dim=3)
    with torch.no_grad():
        encoder(image)
    expected = torch.cat([torch.zeros(1, 3, 32, 16), torch.ones(1, 3, 32, 16)], dim=3)
    torch.testing.assert_close(seen[0], expected)


def test_segmentation_loss_trains_the_shared_features():
    # The maps are there to shape the features that place the keypoints: their gradient must
    # reach the heat-map head's fusion and the backbone, not stop at the 1 x 1 classifier.
    torch.manual_seed(0)
    encoder = _encoder(head="heatmap", stages=2, segmentation=True)
    encoder(torch.rand(2, 3, 32, 32))["segmentation"].sum().backward()
    for weight in (encoder.head.fuse[0].weight, encoder.backbone.layer1[0].conv1.weight):
        assert weight.grad is not None and weight.grad.abs().sum() > 0
