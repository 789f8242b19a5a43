"""GraphUNet (HOPE-Net's Adaptive Graph U-Net): resampling, shapes, overfitting."""

from __future__ import annotations

import pytest
import torch
from model_cases import pinhole

from hopose.models.graph_unet import HOPE_NODE_COUNTS, GraphResample, GraphUNet
from hopose.models.lifter import output_stats
from hopose.skeleton import NUM_NODES


def test_graph_resample_matches_naive_loop():
    # Output node o, feature d: bias_o + sum_i weight[o, i] * x[b, i, d].
    torch.manual_seed(0)
    resample = GraphResample(in_nodes=5, out_nodes=3)
    x = torch.randn(2, 5, 4)
    weight, bias = resample.linear.weight.detach(), resample.linear.bias.detach()
    expected = torch.zeros(2, 3, 4)
    for b in range(2):
        for o in range(3):
            for d in range(4):
                expected[b, o, d] = bias[o] + sum(weight[o, i] * x[b, i, d] for i in range(5))
    torch.testing.assert_close(resample(x), expected)


def test_first_level_reads_the_normalised_rays():
    """Like every lifter, the U-Net's first graph convolution reads the viewing rays normalised
    by in_mean / in_std, not the rays or pixels themselves."""
    torch.manual_seed(0)
    unet = GraphUNet()
    unet.set_input_stats(torch.tensor([0.05, -0.1]), torch.tensor([0.2, 0.4]))
    kp2d, K = torch.rand(2, NUM_NODES, 2) * 64, pinhole(2, 100.0, 32.0)
    seen = []
    unet.down[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        unet(kp2d, K)
    # Pinhole f = 100, centre 32: ray = (p - 32) / 100, then (ray - mean) / std.
    rays = (kp2d - 32) / 100
    expected = (rays - torch.tensor([0.05, -0.1])) / torch.tensor([0.2, 0.4])
    torch.testing.assert_close(seen[0], expected)


def test_decoder_levels_read_the_skip_then_the_unpooled_level_below():
    """U-Net wiring: decoder level k reads the encoder's level-k features (the skip) then the
    unpooling of what the level below produced (the bottleneck's output at the bottom)."""
    torch.manual_seed(0)
    unet = GraphUNet()
    down, up_in, up_out, expand = {}, {}, {}, []
    for k in range(len(unet.down)):
        unet.down[k].register_forward_hook(lambda _m, _a, out, k=k: down.update({k: out}))
        unet.up[k].register_forward_pre_hook(lambda _m, args, k=k: up_in.update({k: args[0]}))
        unet.up[k].register_forward_hook(lambda _m, _a, out, k=k: up_out.update({k: out}))
    unet.expand.register_forward_hook(lambda _m, _a, out: expand.append(out))
    with torch.no_grad():
        unet(torch.rand(2, NUM_NODES, 2) * 64, pinhole(2, 100.0, 32.0))
        last = len(unet.down) - 1
        for k in range(len(unet.down)):
            below = torch.relu(expand[0]) if k == last else up_out[k + 1]
            expected = torch.cat([down[k], unet.unpool[k](below)], dim=-1)
            assert expected[..., down[k].shape[-1] :].abs().max() > 0, k  # not a blank half
            torch.testing.assert_close(up_in[k], expected, msg=f"level {k}")


def test_the_bottleneck_expands_the_rectified_squeeze():
    """The bottleneck's two fully connected layers (64 -> 20 -> 64) have a ReLU between them:
    ``expand`` reads max(0, squeeze's output), its negative entries zeroed, not the raw output."""
    torch.manual_seed(0)
    unet = GraphUNet()
    squeezed, expand_in = [], []
    unet.squeeze.register_forward_hook(lambda _m, _a, out: squeezed.append(out))
    unet.expand.register_forward_pre_hook(lambda _m, args: expand_in.append(args[0]))
    with torch.no_grad():
        unet(torch.rand(2, NUM_NODES, 2) * 64, pinhole(2, 100.0, 32.0))
    # Both signs occur, so the ReLU both zeroes entries and passes others through.
    assert (squeezed[0] < 0).any() and (squeezed[0] > 0).any()
    torch.testing.assert_close(expand_in[0], squeezed[0].clamp(min=0), rtol=0, atol=0)


def test_top_level_outputs_a_signed_normalised_pose():
    """The top graph convolution has no ReLU: its output z, of either sign, becomes
    out_mean + out_std * z mm. A top layer reduced to its bias b = (-1, 0.5, 2), with spreads
    (10, 20, 30) mm, puts every node at out_mean + (-10, 10, 60)."""
    torch.manual_seed(0)
    unet = GraphUNet()
    mean = torch.randn(NUM_NODES, 3) * 50 + torch.tensor([0.0, 0.0, 400.0])
    unet.set_output_stats(mean, torch.tensor([10.0, 20.0, 30.0]))
    with torch.no_grad():
        unet.up[0].linear.weight.zero_()
        unet.up[0].bias.copy_(torch.tensor([-1.0, 0.5, 2.0]))
        out = unet(torch.rand(2, NUM_NODES, 2) * 64, pinhole(2, 100.0, 32.0))
    torch.testing.assert_close(
        out["kp3d"], (mean + torch.tensor([-10.0, 10.0, 60.0])).expand(2, -1, -1)
    )


def test_levels_follow_hope_net():
    unet = GraphUNet()
    assert unet.parts == ("hand", "object")
    assert [conv.adj.shape[0] for conv in unet.down] == list(HOPE_NODE_COUNTS[:-1])
    assert [(conv.linear.in_features, conv.linear.out_features) for conv in unet.down] == [
        (2, 4),
        (4, 8),
        (8, 16),
        (16, 32),
        (32, 64),
    ]
    # Decoder: skip + unpooled features in, the level above's width out, 3D at the top.
    assert [(conv.linear.in_features, conv.linear.out_features) for conv in unet.up] == [
        (8, 3),
        (16, 4),
        (32, 8),
        (64, 16),
        (128, 32),
    ]
    # Adjacencies start with no edges: Ã = I at every level.
    for conv in (*unet.down, *unet.up):
        assert conv.adjacency().max() <= 1e-3


def test_one_estimate_and_float64_computes_the_float32_pose():
    # The same weights in float64 give the float32 pose to float32 precision (the three inputs
    # give three different poses, so the agreement is not that of a constant).
    torch.manual_seed(0)
    unet = GraphUNet()
    kp2d, K = torch.rand(3, NUM_NODES, 2) * 64, pinhole(3, 100.0, 32.0)
    out = unet(kp2d, K)
    assert out["kp3d_init"] is out["kp3d"]
    assert (out["kp3d"][0] - out["kp3d"][1]).abs().max() > 1e-2
    assert (out["kp3d"][1] - out["kp3d"][2]).abs().max() > 1e-2
    out64 = unet.double()(kp2d.double(), K.double())
    assert out64["kp3d"].dtype == torch.float64
    torch.testing.assert_close(out64["kp3d"].float(), out["kp3d"], rtol=1e-4, atol=1e-3)


def test_answers_in_its_own_dtype_whatever_the_inputs():
    # As every lifter (test_lifter.py): float64 kp2d and K reach a float32 Graph U-Net and give
    # its float32 pose, and a bfloat16 copy answers in bfloat16 within its rounding of ~450 mm;
    # both stopped at the first layer before ("expected m1 and m2 to have the same dtype").
    torch.manual_seed(0)
    unet = GraphUNet().eval()
    kp2d, K = torch.rand(3, NUM_NODES, 2) * 64, pinhole(3, 100.0, 32.0)
    out = unet(kp2d, K)
    assert (out["kp3d"][0] - out["kp3d"][1]).abs().max() > 1e-2
    wide = unet(kp2d.double(), K.double())
    assert wide["kp3d"].dtype == torch.float32
    torch.testing.assert_close(wide["kp3d"], out["kp3d"], rtol=1e-4, atol=1e-3)
    half = GraphUNet()
    half.load_state_dict(unet.state_dict())
    narrow = half.to(torch.bfloat16).eval()(kp2d.double(), K.double())
    assert narrow["kp3d"].dtype == torch.bfloat16
    torch.testing.assert_close(narrow["kp3d"].float(), out["kp3d"], rtol=0, atol=8.0)


def test_gradcheck_float64():
    # The gradient with respect to the 2D keypoints, through the viewing rays, every level's
    # learned adjacency, pooling and unpooling, against finite differences in float64.
    torch.manual_seed(0)
    unet = GraphUNet().double()
    kp2d = (torch.rand(1, NUM_NODES, 2, dtype=torch.float64) * 64).requires_grad_()
    K = pinhole(1, 100.0, 32.0).double()
    assert torch.autograd.gradcheck(lambda x: unet(x, K)["kp3d"], (kp2d,))


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    # Random poses around 400 mm depth and their projections (f = 200 px) in a 64 px image.
    kp3d = torch.randn(NUM_NODES, 3, generator=g) * 40 + torch.randn(16, 1, 3, generator=g) * 50
    kp3d[..., 2] += 400
    kp2d, K = 200 * kp3d[..., :2] / kp3d[..., 2:] + 32, pinhole(16, 200.0, 32.0)
    unet = GraphUNet()
    unet.set_output_stats(*output_stats(kp3d))
    optimizer = torch.optim.Adam(unet.parameters(), lr=2e-2)
    losses = []
    for _ in range(150):
        loss = (unet(kp2d, K)["kp3d"] - kp3d).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] / losses[-1] > 10


def test_each_level_learns_one_adjacency_read_by_its_encoder_and_decoder_layer():
    """As in HOPE-Net's release: one adjacency per level (29, 15, 7, 4 and 2 nodes), read by
    the level's down and up graph convolutions, so a training step moves both alike and the
    model learns 29² + 15² + 7² + 4² + 2² = 841 + 225 + 49 + 16 + 4 = 1135 adjacency weights,
    not twice that."""
    torch.manual_seed(0)
    unet = GraphUNet()
    names = [name for name, _ in unet.named_parameters() if name.endswith(".adj")]
    assert names == [f"down.{k}.adj" for k in range(5)]
    assert sum(unet.get_parameter(name).numel() for name in names) == 1135
    kp2d, K = torch.rand(4, NUM_NODES, 2) * 64, pinhole(4, 200.0, 32.0)
    optimizer = torch.optim.SGD(unet.parameters(), lr=1.0)
    unet(kp2d, K)["kp3d"].square().mean().backward()
    optimizer.step()
    for down, up in zip(unet.down, unet.up, strict=True):
        assert not torch.equal(down.adj, torch.full_like(down.adj, 1e-3))  # it learnt
        assert torch.equal(down.adj, up.adj)


def test_a_state_dict_of_an_adjacency_per_layer_is_refused_not_loaded_wrong():
    """A Graph U-Net of a hopose before 2026-12-05 learned the decoder's adjacencies apart from
    the encoder's: loaded, the decoder's overwrote the encoder's in the one shared Parameter,
    without an error. Its different pair is refused naming the keys; an equal pair loads."""
    torch.manual_seed(0)
    state = {key: value.clone() for key, value in GraphUNet().state_dict().items()}
    unet = GraphUNet()
    unet.load_state_dict(state)
    assert torch.equal(unet.down[2].adj, state["down.2.adj"])
    state["up.2.adj"] += 0.01
    with pytest.raises(RuntimeError, match=r"up\.2\.adj differs from down\.2\.adj: a Graph U-Net"):
        GraphUNet().load_state_dict(state)
