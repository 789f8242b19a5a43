"""ContextLifter and what every lifter shares: shapes, variants, the viewing-ray input and its
invariance to the camera, statistics, refusing pixel-input checkpoints, overfitting, and the
sub-graphs' input (each node's ray and its offset from the part's centroid)."""

from __future__ import annotations

import math

import pytest
import torch
from model_cases import pinhole

from hopose.geometry import project_points
from hopose.models.graph_conv import LEARNED_ADJACENCY_FLOOR
from hopose.models.lifter import (
    DEFAULT_DEPTH_MM,
    CheckpointVersionError,
    ContextLifter,
    check_lifter_state,
    input_stats,
    output_stats,
    part_input,
    viewing_rays,
)
from hopose.skeleton import NUM_NODES, PART_NODES, box_adjacency, hand_adjacency
from shape_checking import unchecked

VARIANTS = {"full": ("hand", "object"), "hand": ("hand",), "object": ("object",)}


def pose_batch(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Poses (B, 29, 3) mm around 400 mm depth, their projections (B, 29, 2) in pixels of a
    64 px image and its K (B, 3, 3) (f = 200 px, centred)."""
    g = torch.Generator().manual_seed(seed)
    template = torch.randn(NUM_NODES, 3, generator=g) * torch.tensor([40.0, 40.0, 30.0])
    offset = torch.randn(batch, 1, 3, generator=g) * torch.tensor([50.0, 50.0, 60.0])
    kp3d = template + offset + torch.randn(batch, NUM_NODES, 3, generator=g) * 10
    kp3d[..., 2] += DEFAULT_DEPTH_MM
    K = pinhole(batch, 200.0, 32.0)
    return project_points(kp3d, K), K, kp3d


def overfit_ratio(lifter: torch.nn.Module, kp2d, K, kp3d, steps: int = 150) -> float:
    """First loss / last loss of Adam on one batch, MSE (mm^2) over the lifter's parts."""
    nodes = [node for part in lifter.parts for node in PART_NODES[part]]
    lifter.set_output_stats(*output_stats(kp3d))
    optimizer = torch.optim.Adam(lifter.parameters(), lr=2e-2)
    losses = []
    for _ in range(steps):
        out = lifter(kp2d, K)
        loss = sum(
            (out[k][:, nodes] - kp3d[:, nodes]).square().mean() for k in ("kp3d_init", "kp3d")
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0] / losses[-1]


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_parts_and_missing_part_at_the_mean(variant):
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=16, dropout=0.3, variant=variant).eval()
    assert lifter.parts == VARIANTS[variant]
    kp2d, K, _ = pose_batch(3)
    out = lifter(kp2d, K)
    assert set(out) == {"kp3d_init", "kp3d"}
    for value in out.values():
        assert value.shape == (3, NUM_NODES, 3) and value.dtype == torch.float32
    for part in set(PART_NODES) - set(lifter.parts):
        nodes = list(PART_NODES[part])
        for value in out.values():
            torch.testing.assert_close(value[:, nodes], lifter.out_mean[nodes].expand(3, -1, -1))


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_overfits_a_tiny_batch(variant):
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=32, dropout=0.0, variant=variant)
    assert overfit_ratio(lifter, *pose_batch(16)) > 10


def test_context_flows_between_parts_only_in_the_full_graph():
    # Moving only the object's 2D changes the hand's 3D in the full graph (learned hand-object
    # links), never in the hand-only variant.
    kp2d, K, _ = pose_batch(2)
    moved = kp2d.clone()
    moved[:, PART_NODES["object"].start :] += 5.0
    hand = list(PART_NODES["hand"])
    for variant, changes in (("full", True), ("hand", False)):
        torch.manual_seed(0)
        lifter = ContextLifter(hidden=16, dropout=0.0, variant=variant)
        a, b = lifter(kp2d, K)["kp3d"][:, hand], lifter(moved, K)["kp3d"][:, hand]
        assert (not torch.allclose(a, b)) == changes


def test_sub_graphs_start_from_their_part_graph_and_the_merged_graph_from_none():
    """Paper §3.2: each sub-graph's layers start at its part's edges (the hand's 20 bones, the
    box's 12 edges), every other entry at the learned floor; the merged graph starts with no
    edges at all, every entry at the floor, so that hand-object links are learned."""
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full")
    for part, graph in (("hand", hand_adjacency()), ("object", box_adjacency())):
        expected = torch.where(graph > 0, 1.0, LEARNED_ADJACENCY_FLOOR)
        for layer in (*lifter.features[part].layers, lifter.initial[part]):
            torch.testing.assert_close(layer.adjacency().detach(), expected)
    for layer in lifter.merged.layers:
        torch.testing.assert_close(
            layer.adjacency().detach(), torch.full((NUM_NODES, NUM_NODES), LEARNED_ADJACENCY_FLOOR)
        )


def test_the_merged_graph_adds_a_residual_to_the_sub_graphs_estimate():
    """kp3d_init is the sub-graphs' estimate and kp3d adds the merged graph's output to it, in
    normalised units: a merged graph whose last layer outputs only its bias b moves every node
    of the parts by out_std * b mm from kp3d_init, and by nothing with b = 0."""
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full")
    kp2d, K, _ = pose_batch(2)
    last = lifter.merged.layers[-1]
    with torch.no_grad():
        last.linear.weight.zero_()
        last.bias.zero_()
        out = lifter(kp2d, K)
        torch.testing.assert_close(out["kp3d"], out["kp3d_init"])
        assert (out["kp3d_init"] - lifter.out_mean).abs().max() > 1.0  # not the mean pose
        # b = (1, 2, -3) with the default 100 mm spread: (100, 200, -300) mm.
        last.bias.copy_(torch.tensor([1.0, 2.0, -3.0]))
        moved = lifter(kp2d, K)
    torch.testing.assert_close(moved["kp3d_init"], out["kp3d_init"])
    offset = torch.tensor([100.0, 200.0, -300.0]).expand(2, NUM_NODES, 3)
    torch.testing.assert_close(moved["kp3d"] - moved["kp3d_init"], offset)


def test_the_merged_graph_reads_each_nodes_features_and_initial_3d():
    """Each merged-graph node reads its sub-graph features (the second layer's output) then its
    initial 3D, in normalised units: (kp3d_init - out_mean) / out_std."""
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full")
    lifter.set_output_stats(torch.randn(NUM_NODES, 3) * 10, torch.tensor([20.0, 30.0, 50.0]))
    kp2d, K, _ = pose_batch(2)
    features, merged_input = {}, []
    for part in lifter.parts:
        lifter.features[part].register_forward_hook(
            lambda _m, _args, out, part=part: features.update({part: out})
        )
    lifter.merged.register_forward_pre_hook(lambda _m, args: merged_input.append(args[0]))
    with torch.no_grad():
        out = lifter(kp2d, K)
    seen = merged_input[0]  # (B, 29, hidden + 3), hand joints then corners
    torch.testing.assert_close(seen[..., :8], torch.cat([features["hand"], features["object"]], 1))
    initial = (out["kp3d_init"] - lifter.out_mean) / lifter.out_std
    torch.testing.assert_close(seen[..., 8:], initial)


def test_stats_from_poses_read_the_poses_rays_by_hand():
    """set_stats_from_poses sets the input statistics of the poses' rays (x/z, y/z), not of
    their millimetres: every node at (100, -200, 500) mm and at (0, 0, 250) mm gives rays
    (0.2, -0.4) and (0, 0), mean (0.1, -0.2) and std (0.1, 0.2) * sqrt(58 / 57) as in
    test_input_stats_by_hand_and_they_normalise_the_rays."""
    poses = torch.stack(
        [
            torch.tensor([100.0, -200.0, 500.0]).expand(29, 3),
            torch.tensor([0.0, 0.0, 250.0]).expand(29, 3),
        ]
    )
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full")
    lifter.set_stats_from_poses(poses)
    torch.testing.assert_close(lifter.in_mean, torch.tensor([0.1, -0.2]))
    torch.testing.assert_close(lifter.in_std, torch.tensor([0.1, 0.2]) * (58 / 57) ** 0.5)
    # The output statistics are the poses' own (test_output_stats_by_hand).
    torch.testing.assert_close(lifter.out_mean, torch.tensor([50.0, -100.0, 375.0]).expand(29, 3))


def test_viewing_rays_by_hand():
    # fx = 100, fy = 50, cx = 10, cy = 20: pixel (110, 70) -> ((110 - 10) / 100, (70 - 20) / 50)
    # = (1, 1). With skew s = 25: u = fx x + s y + cx, so the same ray moves to u = 135.
    K = torch.tensor([[[100.0, 0.0, 10.0], [0.0, 50.0, 20.0], [0.0, 0.0, 1.0]]])
    skewed = K.clone()
    skewed[0, 0, 1] = 25.0
    kp2d = torch.zeros(1, NUM_NODES, 2)
    kp2d[0, 0] = torch.tensor([110.0, 70.0])
    kp2d[0, 1] = torch.tensor([10.0, 20.0])  # the principal point: ray (0, 0)
    rays = viewing_rays(kp2d, K)
    torch.testing.assert_close(rays[0, :2], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    kp2d[0, 0, 0] = 135.0
    torch.testing.assert_close(viewing_rays(kp2d, skewed)[0, 0], torch.tensor([1.0, 1.0]))
    with unchecked(), pytest.raises(ValueError, match="K must be"):
        viewing_rays(kp2d, K[0])


def test_viewing_rays_under_autocast_are_the_float32_rays():
    """Under bfloat16 autocast the rays are still computed in float32: u / fx - cx / fx for
    FPHA's camera (fx = 1395.7, cx = 935.7) near the principal point cancels to a few hundredths
    of terms of ~0.7, which bfloat16's 8 significant bits (steps of 2^-9 near 0.7, 0.002) would
    round to a few percent of the rays' spread."""
    K = torch.tensor([[[1395.7, 0.0, 935.7], [0.0, 1395.7, 540.4], [0.0, 0.0, 1.0]]])
    kp2d = (
        torch.tensor([900.0, 520.0])
        + torch.rand(1, NUM_NODES, 2, generator=torch.Generator().manual_seed(0)) * 80
    )
    expected = viewing_rays(kp2d, K)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rays = viewing_rays(kp2d, K)
    assert rays.dtype == torch.float32
    torch.testing.assert_close(rays, expected, rtol=0, atol=1e-6)


def test_the_camera_does_not_change_the_3d():
    # The same poses seen through another focal length, a square crop and a rotated crop of the
    # image (K' = A K, pixels' = A pixels for a 2D affine map A) give the same 3D exactly: the
    # lifter reads only the rays, which the pose alone fixes.
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=16, dropout=0.0, variant="full").eval()
    _, K, kp3d = pose_batch(4)
    angle = torch.tensor(0.3)
    rotated_crop = torch.tensor(
        [
            [1.7 * angle.cos(), -1.7 * angle.sin(), -40.0],
            [1.7 * angle.sin(), 1.7 * angle.cos(), 15.0],
            [0.0, 0.0, 1.0],
        ]
    )
    cameras = {
        "focal x 1.6": pinhole(4, 320.0, 32.0),
        "square crop, resized": pinhole(4, 200.0 * 2.5, 2.5 * (32.0 - 10.0)),
        "rotated crop": rotated_crop @ K,
    }
    expected = lifter(project_points(kp3d, K), K)["kp3d"]
    for name, other in cameras.items():
        out = lifter(project_points(kp3d, other), other)["kp3d"]
        torch.testing.assert_close(out, expected, msg=name)


def test_input_stats_by_hand_and_they_normalise_the_rays():
    # Two poses' rays, every node at (0, 0) and (0.2, -0.4): mean (0.1, -0.2), deviations
    # ±(0.1, 0.2) over 58 values -> std (0.1, 0.2) * sqrt(58 / 57).
    rays = torch.stack([torch.zeros(29, 2), torch.tensor([0.2, -0.4]).expand(29, 2)])
    mean, std = input_stats(rays)
    torch.testing.assert_close(mean, torch.tensor([0.1, -0.2]))
    torch.testing.assert_close(std, torch.tensor([0.1, 0.2]) * (58 / 57) ** 0.5)
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full")
    lifter.set_input_stats(torch.tensor([0.1, -0.2]), torch.tensor([0.5, 2.0]))
    kp2d, K, _ = pose_batch(2)
    expected = (viewing_rays(kp2d, K) - torch.tensor([0.1, -0.2])) / torch.tensor([0.5, 2.0])
    torch.testing.assert_close(lifter.normalise_input(kp2d, K), expected)
    with pytest.raises(ValueError, match="std must be"):
        lifter.set_input_stats(torch.zeros(2), torch.ones(3))
    with pytest.raises(ValueError, match="positive"):
        lifter.set_input_stats(torch.zeros(2), 0.0)


def test_a_pixel_input_lifter_state_is_refused():
    # A state dict written before lifters read rays has out_mean / out_std but no in_mean /
    # in_std; loading it, alone or inside a whole network's state, must stop with a message.
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full")
    old = {k: v for k, v in lifter.state_dict().items() if k not in ("in_mean", "in_std")}
    with pytest.raises(CheckpointVersionError, match="retrain it from the lifter stage"):
        ContextLifter(hidden=8, dropout=0.0, variant="full").load_state_dict(old)
    network = torch.nn.ModuleDict({"lifter": ContextLifter(hidden=8, dropout=0.0, variant="full")})
    with pytest.raises(CheckpointVersionError, match=r"lifter\.in_mean"):
        network.load_state_dict({f"lifter.{k}": v for k, v in old.items()})
    check_lifter_state(lifter.state_dict())  # a current state dict passes
    # Either statistic missing is enough: without in_std the load would silently keep the
    # default spread.
    partial = {k: v for k, v in lifter.state_dict().items() if k != "in_std"}
    with pytest.raises(CheckpointVersionError, match="in_std"):
        check_lifter_state(partial)


def test_output_stats_of_one_pose_keep_the_default_spread():
    """One training pose (a check that a run overfits a sample) has no spread about its mean:
    the mean is that pose and the spread the untrained lifter's 100 mm, not 0 (which
    set_output_stats refuses)."""
    pose = torch.arange(NUM_NODES * 3, dtype=torch.float32).view(1, NUM_NODES, 3)
    mean, std = output_stats(pose)
    torch.testing.assert_close(mean, pose[0])
    torch.testing.assert_close(std, torch.full((3,), 100.0))
    # Two poses 2 mm apart along x only: x's spread is that of the 58 offsets of +-1 mm (sample
    # sd sqrt(58 / 57)), y and z keep the default.
    two = torch.cat([pose, pose + torch.tensor([2.0, 0.0, 0.0])])
    torch.testing.assert_close(
        output_stats(two)[1], torch.tensor([math.sqrt(58 / 57), 100.0, 100.0])
    )


def test_output_stats_scale_the_output_and_travel_in_the_state_dict():
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=16, dropout=0.0, variant="full")
    kp2d, K, _ = pose_batch(2)
    z = lifter(kp2d, K)["kp3d"] - lifter.out_mean  # default std 100 mm: z = 100 * normalised
    mean = torch.arange(NUM_NODES * 3, dtype=torch.float32).view(NUM_NODES, 3)
    lifter.set_output_stats(mean, torch.tensor([1.0, 2.0, 4.0]))
    # out = mean + std * normalised = mean + std * z / 100.
    expected = mean + torch.tensor([1.0, 2.0, 4.0]) * z / 100
    torch.testing.assert_close(lifter(kp2d, K)["kp3d"], expected)
    lifter.set_input_stats(torch.tensor([0.01, 0.02]), 0.2)
    expected = lifter(kp2d, K)["kp3d"]
    state = lifter.state_dict()
    assert {"in_mean", "in_std", "out_mean", "out_std"} <= set(state)
    restored = ContextLifter(hidden=16, dropout=0.0, variant="full")
    restored.load_state_dict(state)
    torch.testing.assert_close(restored(kp2d, K)["kp3d"], expected)
    lifter.set_output_stats(mean, 3.0)  # a scalar spread applies to all three axes
    torch.testing.assert_close(lifter.out_std, torch.tensor([3.0, 3.0, 3.0]))


@pytest.mark.parametrize("seed", range(3))
def test_a_fresh_lifters_pose_is_in_front_of_the_camera(seed):
    """Before any output statistics are set, an untrained lifter's 3D for typical 2D (hands and
    boxes about 400 mm away, seen by a 64 px camera) lies in front of the camera (z > 0), both
    estimates, every node: the default output statistics centre it at a positive depth."""
    torch.manual_seed(seed)
    lifter = ContextLifter(hidden=16, dropout=0.0, variant="full").eval()
    kp2d, K, _ = pose_batch(8, seed=seed)
    with torch.no_grad():
        out = lifter(kp2d, K)
    assert (out["kp3d_init"][..., 2] > 0).all() and (out["kp3d"][..., 2] > 0).all()


@pytest.mark.parametrize(
    ("mean", "std", "match"),
    [
        (torch.zeros(21, 3), 1.0, "mean must have shape"),
        (torch.zeros(29, 3), torch.ones(2), "std must be"),
        (torch.zeros(29, 3), 0.0, "positive"),
        (torch.full((29, 3), float("nan")), 1.0, "finite"),
    ],
)
def test_set_output_stats_rejects_bad_values(mean, std, match):
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full")
    with pytest.raises(ValueError, match=match):
        lifter.set_output_stats(mean, std)


def test_output_stats_by_hand():
    # Two poses, every node at (0, 0, 300) and (2, 4, 500): mean (1, 2, 400) at every node;
    # deviations are ±(1, 2, 100), 58 of each sign -> unbiased std over 58 values of
    # ±d = d * sqrt(58 / 57).
    poses = torch.stack(
        [
            torch.tensor([0.0, 0.0, 300.0]).expand(29, 3),
            torch.tensor([2.0, 4.0, 500.0]).expand(29, 3),
        ]
    )
    mean, std = output_stats(poses)
    torch.testing.assert_close(mean, torch.tensor([1.0, 2.0, 400.0]).expand(29, 3))
    torch.testing.assert_close(std, torch.tensor([1.0, 2.0, 100.0]) * (58 / 57) ** 0.5)


def test_float64_computes_the_float32_pose_and_bad_input():
    # The same weights in float64 (K may stay float32) give the float32 pose to float32
    # precision; the two poses differ, so the agreement is not that of a constant.
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=8, dropout=0.3, variant="full").eval()
    kp2d, K, _ = pose_batch(2)
    out32 = lifter(kp2d, K)
    assert (out32["kp3d"][0] - out32["kp3d"][1]).abs().max() > 1e-2
    lifter = lifter.double()
    out64 = lifter(kp2d.double(), K)
    for key in ("kp3d_init", "kp3d"):
        assert out64[key].dtype == torch.float64
        torch.testing.assert_close(out64[key].float(), out32[key], rtol=1e-4, atol=1e-3)
    with unchecked(), pytest.raises(ValueError, match="kp2d must be"):
        lifter(kp2d[:, :21], K)
    with pytest.raises(ValueError, match="variant"):
        ContextLifter(hidden=8, dropout=0.0, variant="both")


def test_a_lifter_answers_in_its_own_dtype_whatever_the_inputs():
    # A float32 lifter reads float64 kp2d and K (rays computed in float64, then cast): the
    # float32 pose to float32 precision, in float32. A bfloat16 copy of the same weights answers
    # in bfloat16, within bfloat16's rounding of ~450 mm (2^-8 relative, 2 mm a step, over the
    # layers), and under autocast the float32 lifter keeps answering in float32. The two poses
    # differ by tens of mm, so none of these agreements is that of a constant. Before, both
    # float64 input and the bfloat16 lifter stopped at the first layer: "expected m1 and m2 to
    # have the same dtype".
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=8, dropout=0.3, variant="full").eval()
    kp2d, K, kp3d = pose_batch(2)
    lifter.set_stats_from_poses(kp3d)
    out32 = lifter(kp2d, K)
    assert (out32["kp3d"][0] - out32["kp3d"][1]).abs().max() > 10
    wide = lifter(kp2d.double(), K.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = lifter(kp2d, K)
    half = ContextLifter(hidden=8, dropout=0.3, variant="full")
    half.load_state_dict(lifter.state_dict())
    half = half.to(torch.bfloat16).eval()
    narrow = half(kp2d.double(), K.double())
    for key in ("kp3d_init", "kp3d"):
        assert wide[key].dtype == mixed[key].dtype == torch.float32
        torch.testing.assert_close(wide[key], out32[key], rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(mixed[key], out32[key], rtol=0, atol=4.0)
        assert narrow[key].dtype == torch.bfloat16
        torch.testing.assert_close(narrow[key].float(), out32[key], rtol=0, atol=8.0)


def test_gradcheck_float64():
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=4, dropout=0.3, variant="full").double().eval()
    kp2d, K, _ = pose_batch(1)
    inputs = (kp2d.double().requires_grad_(), K.double().requires_grad_())
    assert torch.autograd.gradcheck(lambda x, k: lifter(x, k)["kp3d"], inputs)


def test_part_input_by_hand():
    # Three nodes (0, 0), (2, 0), (1, 3): centroid (1, 1), offsets (-1, -1), (1, -1), (0, 2).
    x = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]]])
    expected = torch.tensor([[[0.0, 0.0, -1.0, -1.0], [2.0, 0.0, 1.0, -1.0], [1.0, 3.0, 0.0, 2.0]]])
    torch.testing.assert_close(part_input(x), expected)


def test_each_sub_graph_reads_its_part_input():
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full")
    kp2d, K = torch.rand(2, NUM_NODES, 2) * 64, pinhole(2, 100.0, 32.0)
    seen = {}
    for part in lifter.parts:
        first = lifter.features[part].layers[0]
        first.register_forward_hook(lambda _m, args, _out, part=part: seen.update({part: args[0]}))
    lifter(kp2d, K)
    x = lifter.normalise_input(kp2d, K)
    for part in lifter.parts:
        nodes = PART_NODES[part]
        torch.testing.assert_close(seen[part], part_input(x[:, nodes.start : nodes.stop]))


def box_poses(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One 80 x 60 x 40 mm box at depths 250-650 mm, shifted sideways: (B, 29, 2) px at f = 100
    in a 64 px image and (B, 29, 3) mm; the hand nodes stay at the origin (unused)."""
    g = torch.Generator().manual_seed(seed)
    signs = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)]) - 0.5
    depth = 250 + 400 * torch.rand(batch, 1, 1, generator=g)
    lateral = (torch.rand(batch, 1, 2, generator=g) - 0.5) * 0.3 * depth
    kp3d = torch.zeros(batch, NUM_NODES, 3)
    kp3d[:, PART_NODES["object"]] = signs * torch.tensor([80.0, 60.0, 40.0])
    kp3d[:, PART_NODES["object"], 2:] += depth
    kp3d[:, PART_NODES["object"], :2] += lateral
    kp2d = 100 * kp3d[..., :2] / kp3d[..., 2:].clamp(min=1) + 32
    return kp2d, kp3d


def test_object_lifter_learns_depth_from_the_box_2d_size():
    # A fixed box at random depths: depth is readable only from the corners' 2D spread, a
    # difference between nodes. With the centroid offsets the object sub-graph learns it to
    # 13.8, 8.2 and 7.2 mm in 300 steps (seeds 0-2, rays normalised with the training
    # statistics); fed only the 2D positions, its non-negative graph convolutions stayed at
    # 18-20 mm.
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=16, dropout=0.0, variant="object")
    kp2d, kp3d = box_poses(128, seed=0)
    K = pinhole(128, 100.0, 32.0)
    lifter.set_input_stats(*input_stats(viewing_rays(kp2d, K)))
    lifter.set_output_stats(*output_stats(kp3d))
    optimizer = torch.optim.Adam(lifter.parameters(), lr=1e-2)
    nodes = PART_NODES["object"]
    for _ in range(300):
        loss = (lifter(kp2d, K)["kp3d"][:, nodes] - kp3d[:, nodes]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_2d, test_3d = box_poses(256, seed=1)
    with torch.no_grad():
        test_out = lifter(test_2d, pinhole(256, 100.0, 32.0))["kp3d"]
        error = (test_out[:, nodes] - test_3d[:, nodes]).norm(dim=-1).mean()
    assert error < 15.0
