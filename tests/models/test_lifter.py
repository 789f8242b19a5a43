"""ContextLifter and the shared lifter scaling: shapes, variants, statistics, overfitting, and
the sub-graphs' input (each node's 2D and its offset from the part's centroid)."""

from __future__ import annotations

import pytest
import torch

from hopose.models.lifter import DEFAULT_DEPTH_MM, ContextLifter, output_stats, part_input
from hopose.skeleton import NUM_NODES, PART_NODES

VARIANTS = {"full": ("hand", "object"), "hand": ("hand",), "object": ("object",)}


def pose_batch(
    batch: int, image_size: int = 64, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Poses (B, 29, 3) mm around 400 mm depth and their projections (B, 29, 2) in pixels."""
    g = torch.Generator().manual_seed(seed)
    template = torch.randn(NUM_NODES, 3, generator=g) * torch.tensor([40.0, 40.0, 30.0])
    offset = torch.randn(batch, 1, 3, generator=g) * torch.tensor([50.0, 50.0, 60.0])
    kp3d = template + offset + torch.randn(batch, NUM_NODES, 3, generator=g) * 10
    kp3d[..., 2] += DEFAULT_DEPTH_MM
    kp2d = 200 * kp3d[..., :2] / kp3d[..., 2:] + image_size / 2  # f = 200 px, centred
    return kp2d, kp3d


def overfit_ratio(lifter: torch.nn.Module, kp2d, kp3d, steps: int = 150) -> float:
    """First loss / last loss of Adam on one batch, MSE (mm^2) over the lifter's parts."""
    nodes = [node for part in lifter.parts for node in PART_NODES[part]]
    lifter.set_output_stats(*output_stats(kp3d))
    optimizer = torch.optim.Adam(lifter.parameters(), lr=2e-2)
    losses = []
    for _ in range(steps):
        out = lifter(kp2d)
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
    lifter = ContextLifter(hidden=16, dropout=0.3, variant=variant, image_size=64).eval()
    assert lifter.parts == VARIANTS[variant]
    kp2d, _ = pose_batch(3)
    out = lifter(kp2d)
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
    lifter = ContextLifter(hidden=32, dropout=0.0, variant=variant, image_size=64)
    kp2d, kp3d = pose_batch(16)
    assert overfit_ratio(lifter, kp2d, kp3d) > 10


def test_context_flows_between_parts_only_in_the_full_graph():
    # Moving only the object's 2D changes the hand's 3D in the full graph (learned hand-object
    # links), never in the hand-only variant.
    kp2d, _ = pose_batch(2)
    moved = kp2d.clone()
    moved[:, PART_NODES["object"].start :] += 5.0
    hand = list(PART_NODES["hand"])
    for variant, changes in (("full", True), ("hand", False)):
        torch.manual_seed(0)
        lifter = ContextLifter(hidden=16, dropout=0.0, variant=variant, image_size=64)
        a, b = lifter(kp2d)["kp3d"][:, hand], lifter(moved)["kp3d"][:, hand]
        assert (not torch.allclose(a, b)) == changes


def test_input_is_normalised_by_image_size():
    # The same keypoints in an image twice as large (pixels x 2) give the same 3D.
    torch.manual_seed(0)
    small = ContextLifter(hidden=16, dropout=0.0, variant="full", image_size=64)
    large = ContextLifter(hidden=16, dropout=0.0, variant="full", image_size=128)
    large.load_state_dict(small.state_dict())
    kp2d, _ = pose_batch(2)
    torch.testing.assert_close(small(kp2d)["kp3d"], large(2 * kp2d)["kp3d"])


def test_output_stats_scale_the_output_and_travel_in_the_state_dict():
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=16, dropout=0.0, variant="full", image_size=64)
    kp2d, _ = pose_batch(2)
    z = lifter(kp2d)["kp3d"] - lifter.out_mean  # default std 100 mm: z = 100 * normalised
    mean = torch.arange(NUM_NODES * 3, dtype=torch.float32).view(NUM_NODES, 3)
    lifter.set_output_stats(mean, torch.tensor([1.0, 2.0, 4.0]))
    # out = mean + std * normalised = mean + std * z / 100.
    expected = mean + torch.tensor([1.0, 2.0, 4.0]) * z / 100
    torch.testing.assert_close(lifter(kp2d)["kp3d"], expected)
    state = lifter.state_dict()
    assert {"out_mean", "out_std"} <= set(state)
    restored = ContextLifter(hidden=16, dropout=0.0, variant="full", image_size=64)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored(kp2d)["kp3d"], expected)
    lifter.set_output_stats(mean, 3.0)  # a scalar spread applies to all three axes
    torch.testing.assert_close(lifter.out_std, torch.tensor([3.0, 3.0, 3.0]))


def test_default_output_is_in_front_of_the_camera():
    lifter = ContextLifter(hidden=16, dropout=0.0, variant="full", image_size=64)
    torch.testing.assert_close(lifter.out_mean[:, 2], torch.full((NUM_NODES,), DEFAULT_DEPTH_MM))


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
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full", image_size=64)
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


def test_float64_and_bad_input():
    lifter = ContextLifter(hidden=8, dropout=0.3, variant="full", image_size=64).double()
    kp2d, _ = pose_batch(2)
    assert lifter(kp2d.double())["kp3d"].dtype == torch.float64
    with pytest.raises(ValueError, match="kp2d must be"):
        lifter(kp2d[:, :21])
    with pytest.raises(ValueError, match="variant"):
        ContextLifter(hidden=8, dropout=0.0, variant="both", image_size=64)


def test_gradcheck_float64():
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=4, dropout=0.3, variant="full", image_size=64).double().eval()
    kp2d = pose_batch(1)[0].double().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: lifter(x)["kp3d"], (kp2d,))


def test_part_input_by_hand():
    # Three nodes (0, 0), (2, 0), (1, 3): centroid (1, 1), offsets (-1, -1), (1, -1), (0, 2).
    x = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]]])
    expected = torch.tensor([[[0.0, 0.0, -1.0, -1.0], [2.0, 0.0, 1.0, -1.0], [1.0, 3.0, 0.0, 2.0]]])
    torch.testing.assert_close(part_input(x), expected)


def test_each_sub_graph_reads_its_part_input():
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=8, dropout=0.0, variant="full", image_size=64)
    kp2d = torch.rand(2, NUM_NODES, 2) * 64
    seen = {}
    for part in lifter.parts:
        first = lifter.features[part].layers[0]
        first.register_forward_hook(lambda _m, args, _out, part=part: seen.update({part: args[0]}))
    lifter(kp2d)
    x = lifter.normalise_2d(kp2d)
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
    # about 8-9 mm in 300 steps (seeds 0-2); fed only the 2D positions, its non-negative
    # graph convolutions stay at 18-20 mm.
    torch.manual_seed(0)
    lifter = ContextLifter(hidden=16, dropout=0.0, variant="object", image_size=64)
    kp2d, kp3d = box_poses(128, seed=0)
    lifter.set_output_stats(*output_stats(kp3d))
    optimizer = torch.optim.Adam(lifter.parameters(), lr=1e-2)
    nodes = PART_NODES["object"]
    for _ in range(300):
        loss = (lifter(kp2d)["kp3d"][:, nodes] - kp3d[:, nodes]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_2d, test_3d = box_poses(256, seed=1)
    with torch.no_grad():
        error = (lifter(test_2d)["kp3d"][:, nodes] - test_3d[:, nodes]).norm(dim=-1).mean()
    assert error < 13.0
