"""compute_losses / total_loss (paper Eq. 7): hand-computed MSEs, parts, weights, finiteness."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hopose.config import ConfigError, LossConfig
from hopose.losses import (
    compute_losses,
    configured_losses,
    heatmap_loss,
    segmentation_loss,
    total_loss,
)
from hopose.physics import physical_affinity_loss
from hopose.skeleton import corner_signs
from shape_checking import unchecked


def _batch(b: int = 2) -> dict[str, torch.Tensor]:
    return {
        "hand_2d": torch.zeros(b, 21, 2),
        "obj_2d": torch.zeros(b, 8, 2),
        "hand_3d": torch.zeros(b, 21, 3),
        "obj_3d": torch.zeros(b, 8, 3),
    }


def _pads(plus_x: int, minus_x: int) -> torch.Tensor:
    """(1, 29, 3): a 40 x 40 x 100 mm box at 400 mm depth (long axis, the central axis, along
    z; radius L = 40, so contacts count within 0.2 L = 8 mm), ``plus_x`` joints at the centre
    of its x+ face, ``minus_x`` at the centre of its x- face and the others 1.5 m away."""
    obj = corner_signs() * torch.tensor([20.0, 20.0, 50.0]) + torch.tensor([0.0, 0.0, 400.0])
    hand = torch.tensor([0.0, 0.0, 1900.0]).repeat(21, 1)
    hand[:plus_x] = torch.tensor([20.0, 0.0, 400.0])
    hand[plus_x : plus_x + minus_x] = torch.tensor([-20.0, 0.0, 400.0])
    return torch.cat([hand, obj])[None]


def test_mse_terms_by_hand():
    batch = _batch()
    batch["hand_2d"][0, 0] = torch.tensor([3.0, 4.0])  # one node of sample 0 off by (3, 4) px
    batch["obj_3d"][1, 7] = torch.tensor([1.0, 2.0, 2.0])  # one corner of sample 1 off by (1,2,2)
    out = {
        "kp2d_init": torch.zeros(2, 29, 2),
        "kp2d": torch.ones(2, 29, 2),
        "kp3d": torch.zeros(2, 29, 3),
    }
    terms = compute_losses(out, batch, original_pixels=False)
    assert set(terms) == {"2d_init", "2d", "3d"}  # no kp3d_init in out, no physical
    # 2d_init: (3^2 + 4^2) / (2 samples * 29 nodes * 2 coords) = 25 / 116.
    torch.testing.assert_close(terms["2d_init"], torch.tensor(25 / 116))
    # 2d: every coordinate off by 1, except node 0 of sample 0: (1-3)^2 + (1-4)^2 = 13 instead
    # of 2 -> (116 - 2 + 13) / 116.
    torch.testing.assert_close(terms["2d"], torch.tensor(127 / 116))
    # 3d: (1 + 4 + 4) / (2 * 29 * 3) = 9 / 174.
    torch.testing.assert_close(terms["3d"], torch.tensor(9 / 174))


def test_euclidean_3d_terms_by_hand():
    batch = _batch()
    batch["obj_3d"][1, 7] = torch.tensor([1.0, 2.0, 2.0])  # one corner of sample 1, 3 mm off
    batch["hand_3d"][0, 0] = torch.tensor([0.0, 3.0, 4.0])  # one joint of sample 0, 5 mm off
    out = {"kp3d_init": torch.zeros(2, 29, 3), "kp2d": torch.ones(2, 29, 2)}
    terms = compute_losses(out, batch, euclidean_3d=True, original_pixels=False)
    # Distances 3 and 5 among 2 samples * 29 nodes: (3 + 5) / 58; squared: (9 + 25) / 174.
    torch.testing.assert_close(terms["3d_init"], torch.tensor(8 / 58))
    torch.testing.assert_close(
        compute_losses(out, batch, original_pixels=False)["3d_init"], torch.tensor(34 / 174)
    )
    # The 2D terms keep their squares: every coordinate off by 1.
    torch.testing.assert_close(terms["2d"], torch.tensor(1.0))
    with pytest.raises(ConfigError, match="l3d_distance"):
        LossConfig(l3d_distance="l1")


def test_euclidean_3d_gradient_is_a_unit_vector_per_node_and_gradcheck_passes():
    pred = torch.zeros(1, 29, 3, dtype=torch.float64)
    pred[0, :, 0] = torch.linspace(1.0, 5.0, 29, dtype=torch.float64)
    pred[0, 3] = torch.tensor([0.0, -6.0, 8.0], dtype=torch.float64)
    pred.requires_grad_(True)
    terms = compute_losses({"kp3d": pred}, _batch(1), euclidean_3d=True, original_pixels=False)
    terms["3d"].backward()
    # d/dp mean |p - 0| = (p / |p|) / 29: node 3's (0, -0.6, 0.8) / 29, the others (1, 0, 0) / 29.
    expected = torch.zeros(1, 29, 3, dtype=torch.float64)
    expected[0, :, 0] = 1 / 29
    expected[0, 3] = torch.tensor([0.0, -0.6, 0.8], dtype=torch.float64) / 29
    torch.testing.assert_close(pred.grad, expected)
    torch.autograd.gradcheck(
        lambda p: compute_losses({"kp3d": p}, _batch(1), euclidean_3d=True, original_pixels=False)[
            "3d"
        ],
        (pred.detach().requires_grad_(True),),
    )


def test_parts_restrict_the_supervised_nodes():
    batch = _batch(1)
    batch["obj_3d"] += 10.0  # only the object is wrong
    out = {"kp3d": torch.zeros(1, 29, 3)}
    assert compute_losses(out, batch, parts=("hand",), original_pixels=False)["3d"] == 0
    # Object only: every one of the 8 * 3 coordinates off by 10 -> MSE 100.
    torch.testing.assert_close(
        compute_losses(out, batch, parts=("object",), original_pixels=False)["3d"],
        torch.tensor(100.0),
    )
    # Both parts: 24 of the 87 coordinates off by 10 -> 2400 / 87.
    torch.testing.assert_close(
        compute_losses(out, batch, original_pixels=False)["3d"], torch.tensor(2400 / 87)
    )
    with pytest.raises(ValueError, match="parts"):
        compute_losses(out, batch, parts=("box",), original_pixels=False)


def test_the_2d_terms_cover_every_node_whatever_the_lifted_parts():
    """The encoder predicts all 29 nodes' 2D whatever the lifter lifts: with the hand
    sub-graph alone (model.lifter_variant: hand) the box corners' 2D and heat maps went
    untrained, while the encoder stage chose its checkpoint by the 2D error of all 29."""
    batch = _batch(1) | {"image": torch.zeros(1, 3, 16, 16)}
    batch["hand_2d"] += 6.0
    batch["obj_2d"] += 6.0
    batch["obj_2d"][..., 0] += 4.0  # only the corners' 2D is wrong, by 4 px along x
    out = {
        "kp2d": torch.full((1, 29, 2), 6.0),
        "heatmaps": torch.randn(1, 29, 4, 4, generator=torch.Generator().manual_seed(0)),
    }
    target = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1)
    for parts in (("hand", "object"), ("hand",), ("object",)):
        terms = compute_losses(out, batch, parts=parts, original_pixels=False, heatmap=True)
        # 8 corners' x off by 4 among 29 nodes * 2 coordinates: 8 * 16 / 58.
        torch.testing.assert_close(terms["2d"], torch.tensor(128 / 58), msg=str(parts))
        expected = heatmap_loss(out["heatmaps"], target, (16, 16))
        assert terms["heatmap"].item() == pytest.approx(expected.item(), rel=1e-6), parts


def test_float64_predictions_and_gradients():
    out = {"kp3d": torch.ones(1, 29, 3, dtype=torch.float64, requires_grad=True)}
    terms = compute_losses(out, _batch(1), original_pixels=False)
    assert terms["3d"].dtype == torch.float64
    terms["3d"].backward()
    # d/dp mean((p - 0)^2) = 2 p / 87 at p = 1.
    torch.testing.assert_close(
        out["kp3d"].grad, torch.full((1, 29, 3), 2 / 87, dtype=torch.float64)
    )


def test_physical_term_of_the_refined_3d_by_hand():
    # The ten closest joint-face pairs are the joints lying on a face (distance 0; a joint's
    # next face is 20 mm off), and each contact's direction from the z axis is (+-20, 0, 0).
    # Refined 3D: 5 pads on x+ and 5 on x-: 2 * C(5, 2) = 20 pairs with cos 1 and 5 * 5 = 25
    # with cos -1 -> (20 - 25) / 45 = -1 / 9. Initial 3D: every joint on x+, so any ten
    # contacts give cos 1 for all 45 pairs -> 1. The physical term reads the refined one.
    refined, initial = _pads(5, 5), _pads(21, 0)
    torch.testing.assert_close(
        physical_affinity_loss(refined[:, :21], refined[:, 21:]), torch.tensor(-1 / 9)
    )
    torch.testing.assert_close(
        physical_affinity_loss(initial[:, :21], initial[:, 21:]), torch.tensor(1.0)
    )
    out = {"kp3d": refined, "kp3d_init": initial}
    batch = _batch(1)
    assert "physical" not in compute_losses(out, batch, original_pixels=False)
    terms = compute_losses(out, batch, physical=True, original_pixels=False)
    torch.testing.assert_close(terms["physical"], torch.tensor(-1 / 9))
    with pytest.raises(ValueError, match="physical"):
        compute_losses(out, batch, parts=("hand",), physical=True, original_pixels=False)
    with pytest.raises(ValueError, match="physical"):
        compute_losses({"kp2d": torch.zeros(1, 29, 2)}, batch, physical=True, original_pixels=False)


def test_total_loss_weights_by_hand():
    terms = {
        "2d_init": torch.tensor(100.0),
        "2d": torch.tensor(200.0),
        "3d_init": torch.tensor(3.0),
        "3d": torch.tensor(4.0),
        "physical": torch.tensor(0.5),
    }
    # 0.01 * (100 + 200) + 1 * (3 + 4) + 10 * 0.5 = 3 + 7 + 5 = 15.
    torch.testing.assert_close(total_loss(terms), torch.tensor(15.0))
    # Custom weights: 1 * 300 + 0 * 7 + 2 * 0.5 = 301.
    weights = LossConfig(w_2d=1.0, w_3d=0.0, w_physical=2.0)
    torch.testing.assert_close(total_loss(terms, weights), torch.tensor(301.0))


def test_total_loss_raises_on_nan_naming_the_term():
    terms = {"2d": torch.tensor(1.0), "3d": torch.tensor(float("nan"))}
    with pytest.raises(FloatingPointError, match=r"\['3d'\].*'2d': 1\.0"):
        total_loss(terms)
    with pytest.raises(FloatingPointError, match="physical"):
        total_loss({"3d": torch.tensor(1.0), "physical": torch.tensor(float("inf"))})
    # Finite float32 terms whose sum overflows: 3e38 + 3e38 > 3.4e38, the largest float32.
    big = {"3d": torch.tensor(3e38), "3d_init": torch.tensor(3e38)}
    with pytest.raises(FloatingPointError, match="every term is finite but their weighted sum"):
        total_loss(big)


def test_bad_terms_and_weights_raise():
    with pytest.raises(KeyError, match="3D"):
        total_loss({"3D": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="w_physical"):
        LossConfig(w_physical=-1.0)


def test_2d_terms_in_original_pixels_by_hand():
    # Network image 100 px focal, original 800 px along x and 400 px along y: a (1, 1) px error
    # in the network image is (8, 4) original pixels, so the MSE becomes (64 + 16) / 2 = 40
    # instead of (1 + 1) / 2 = 1, for the initial 2D as for the refined. The 3D terms do not
    # change.
    batch = {
        "hand_2d": torch.zeros(1, 21, 2),
        "obj_2d": torch.zeros(1, 8, 2),
        "hand_3d": torch.zeros(1, 21, 3),
        "obj_3d": torch.zeros(1, 8, 3),
        "K": torch.diag(torch.tensor([100.0, 100.0, 1.0]))[None],
        "orig_K": torch.diag(torch.tensor([800.0, 400.0, 1.0]))[None],
    }
    out = {
        "kp2d_init": torch.ones(1, 29, 2),
        "kp2d": torch.ones(1, 29, 2),
        "kp3d": torch.full((1, 29, 3), 2.0),
    }
    network = compute_losses(out, batch, original_pixels=False)
    original = compute_losses(out, batch, original_pixels=True)
    for term in ("2d_init", "2d"):
        torch.testing.assert_close(network[term], torch.tensor(1.0))
        torch.testing.assert_close(original[term], torch.tensor(40.0))
    torch.testing.assert_close(original["3d"], network["3d"])
    with pytest.raises(ValueError, match="l2d_pixels"):
        LossConfig(l2d_pixels="mm")


def test_2d_terms_in_original_pixels_of_a_turned_crop():
    # A crop turned by 60 degrees at 0.1 network px per original px (K = A orig_K, A = s R | t,
    # docs/conventions.md §1): an error of e = (3, 4) original px is s R e = (-0.196, 0.460)
    # network px, and must come back to |e|^2 / 2 = 12.5 per coordinate. Scaling each axis by
    # the focal lengths' ratio 1 / (s cos 60) instead gave 4 * 12.5 = 50.
    s, turn = 0.1, math.radians(60.0)
    A = torch.tensor(
        [
            [s * math.cos(turn), -s * math.sin(turn), 30.0],
            [s * math.sin(turn), s * math.cos(turn), -12.0],
            [0.0, 0.0, 1.0],
        ],
        dtype=torch.float64,
    )
    orig_K = torch.tensor([[1400.0, 0.0, 960.0], [0.0, 1380.0, 540.0], [0.0, 0.0, 1.0]])
    batch = _batch(1) | {"K": (A @ orig_K.double()).float()[None], "orig_K": orig_K[None]}
    error = A[:2, :2] @ torch.tensor([3.0, 4.0], dtype=torch.float64)  # network px
    out = {"kp2d": error.float().expand(1, 29, 2)}
    original = compute_losses(out, batch, original_pixels=True)
    torch.testing.assert_close(original["2d"], torch.tensor(12.5))


def _gaussian_logits(target: torch.Tensor, size: int, cells: int) -> torch.Tensor:
    """Log of the loss's own target: Gaussians of one cell's sd at ``target`` (B, N, 2)."""
    centres = (torch.arange(cells, dtype=torch.float64) + 0.5) * size / cells - 0.5
    sd = size / cells
    gx = -0.5 * ((centres - target[..., :1]) / sd) ** 2  # (B, N, cells)
    gy = -0.5 * ((centres - target[..., 1:]) / sd) ** 2
    return gy[..., :, None] + gx[..., None, :]


def test_heatmap_loss_uniform_maps_cost_log_cells():
    # A flat map spreads 1/16 on each of 4 x 4 cells: cross-entropy log 16 whatever the target.
    logits = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    target = torch.tensor([[[1.0, 1.0], [10.0, 3.0], [15.4, 15.4]]] * 2, dtype=torch.float64)
    loss = heatmap_loss(logits, target, (16, 16))
    assert loss.item() == pytest.approx(math.log(16))


def test_heatmap_loss_is_least_at_its_target_map_and_ignores_outside_keypoints():
    target = torch.tensor([[[5.0, 9.0], [12.5, 2.0]]], dtype=torch.float64)  # 16 px, 8 cells
    exact = _gaussian_logits(target, 16, 8)
    best = heatmap_loss(exact, target, (16, 16))
    prob = exact.flatten(2).softmax(-1)
    entropy = -(prob * prob.log()).sum(-1).mean()  # cross-entropy of a map with itself
    assert best.item() == pytest.approx(entropy.item())
    shifted = _gaussian_logits(target + 2.0, 16, 8)
    assert heatmap_loss(shifted, target, (16, 16)) > best
    # A keypoint outside the image has no cell: whatever its map, it is not counted.
    outside = torch.cat([target, torch.tensor([[[-3.0, 4.0]]], dtype=torch.float64)], dim=1)
    noise = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    with_outside = heatmap_loss(torch.cat([exact, noise], dim=1), outside, (16, 16))
    assert with_outside.item() == pytest.approx(best.item())


def test_heatmap_loss_centres_a_keypoint_in_the_middle_of_its_cells_pixels():
    # 16 px, 4 cells of 4 px: cell 1 covers pixels 4..7 (centres at integers), whose middle is
    # 5.5. The target there is symmetric about cell 1, so maps peaked on its two neighbours,
    # cells 0 and 2, cost the same.
    target = torch.tensor([[[5.5, 5.5]]], dtype=torch.float64)
    peaked = torch.full((2, 1, 4, 4), -30.0, dtype=torch.float64)
    peaked[0, 0, 1, 0] = peaked[1, 0, 1, 2] = 0.0
    left, right = (heatmap_loss(peaked[i : i + 1], target, (16, 16)) for i in range(2))
    assert left.item() == pytest.approx(right.item(), rel=1e-12)
    # A keypoint on the last pixel's centre (15) is inside the image, one at 15.6 is not.
    edge = torch.tensor([[[15.0, 15.0], [15.6, 8.0]]], dtype=torch.float64)
    logits = torch.randn(
        1, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    assert heatmap_loss(logits, edge, (16, 16)).item() == pytest.approx(
        heatmap_loss(logits[:, :1], edge[:, :1], (16, 16)).item()
    )


def test_heatmap_loss_counts_keypoints_on_the_first_pixels_outer_half():
    """Pixel 0 covers [-0.5, 0.5] (centres at integers): keypoints at x = -0.3 and on the edge
    y = -0.5 lie in the image and are supervised, as in the naive reference; were they left out
    (an edge at 0), no keypoint would count and the loss would be 0."""
    target = torch.tensor([[[-0.3, 4.0], [7.0, -0.5]]], dtype=torch.float64)
    logits = torch.randn(
        1, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    expected = _naive_heatmap_loss(logits, target, width=16, height=16)
    assert expected > 0
    assert heatmap_loss(logits, target, (16, 16)).item() == pytest.approx(expected, rel=1e-10)


def test_heatmap_term_is_computed_only_when_asked_and_gradcheck_passes():
    batch = _batch(1) | {"image": torch.zeros(1, 3, 16, 16)}
    batch["hand_2d"] += 6.0
    batch["obj_2d"] += 6.0
    logits = torch.randn(1, 29, 4, 4, dtype=torch.float64, requires_grad=True)
    out = {"heatmaps": logits}
    assert compute_losses(out, batch, original_pixels=False) == {}
    terms = compute_losses(out, batch, heatmap=True, original_pixels=False)
    assert set(terms) == {"heatmap"}
    target = torch.full((1, 29, 2), 6.0, dtype=torch.float64)
    assert terms["heatmap"].item() == pytest.approx(heatmap_loss(logits, target, (16, 16)).item())
    assert torch.autograd.gradcheck(lambda x: heatmap_loss(x, target, (16, 16)), (logits,))


def test_segmentation_loss_by_hand():
    # One cell over a 2 x 2 image with pixels of classes [[0, 1], [1, 1]]: target (1/4, 3/4).
    # Logits (0, log 3) give softmax (1/4, 3/4): the cross-entropy is the target's entropy,
    # -(1/4 log 1/4 + 3/4 log 3/4) = 0.5623 nats.
    classes = torch.tensor([[[0, 1], [1, 1]]], dtype=torch.uint8)
    logits = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64).view(1, 2, 1, 1)
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert segmentation_loss(logits, classes).item() == pytest.approx(expected)
    # Flat logits cost log C whatever the classes: 8 classes, 2 x 2 cells of 2 x 2 pixels.
    classes = torch.randint(0, 8, (3, 4, 4), generator=torch.Generator().manual_seed(0))
    flat = torch.zeros(3, 8, 2, 2, dtype=torch.float64)
    assert segmentation_loss(flat, classes).item() == pytest.approx(math.log(8))


def test_segmentation_loss_gradient_is_softmax_minus_target_per_cell():
    # d/dz of -sum_c t_c log softmax(z)_c is softmax(z) - t, divided by the B h w cells averaged.
    classes = torch.randint(0, 8, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    logits = torch.randn(2, 8, 4, 4, dtype=torch.float64, requires_grad=True)
    segmentation_loss(logits, classes).backward()
    target = torch.nn.functional.one_hot(classes.long(), 8).permute(0, 3, 1, 2).double()
    target = target.view(2, 8, 4, 2, 4, 2).mean(dim=(3, 5))  # 2 x 2 pixels per cell
    expected = (logits.detach().softmax(dim=1) - target) / (2 * 4 * 4)
    torch.testing.assert_close(logits.grad, expected)
    assert torch.autograd.gradcheck(lambda z: segmentation_loss(z, classes), (logits,))


def test_segmentation_term_needs_the_batch_maps_and_takes_its_weight():
    logits = torch.zeros(1, 8, 2, 2)
    batch = _batch(1) | {"segmentation": torch.zeros(1, 8, 8, dtype=torch.uint8)}
    assert compute_losses({"segmentation": logits}, batch, original_pixels=False) == {}
    terms = compute_losses(
        {"segmentation": logits}, batch, segmentation=True, original_pixels=False
    )
    assert terms["segment"].item() == pytest.approx(math.log(8))
    # w_2d 0.01 * 100 + w_segmentation 10 * log 8.
    weights = LossConfig(w_segmentation=10.0)
    total = total_loss(terms | {"2d": torch.tensor(100.0)}, weights)
    assert total.item() == pytest.approx(1.0 + 10 * math.log(8))
    del batch["segmentation"]
    with pytest.raises(ValueError, match=r"^loss.w_segmentation > 0 needs segmentation maps"):
        compute_losses({"segmentation": logits}, batch, segmentation=True, original_pixels=False)


def test_targets_of_another_batch_raise_naming_them():
    # Outputs of a batch of 4 against targets of 1 would broadcast to a plausible loss of the
    # wrong pairs; each check names the tensor and both shapes.
    out = {"kp2d": torch.zeros(4, 29, 2), "kp3d": torch.zeros(4, 29, 3)}
    with pytest.raises(ValueError, match=r"hand_2d ‖ obj_2d: shape \(1, 29, 2\) .*\(4, 29, 2\)"):
        compute_losses(out, _batch(1), original_pixels=False)
    with pytest.raises(ValueError, match=r"hand_3d ‖ obj_3d: shape \(1, 29, 3\) .*\(4, 29, 3\)"):
        compute_losses({"kp3d": out["kp3d"]}, _batch(1), original_pixels=False)
    # Intrinsics of one frame against 4 outputs, each key on its own.
    eye = torch.eye(3).expand(4, 3, 3)
    for key in ("K", "orig_K"):
        batch = _batch(4) | {"K": eye, "orig_K": eye} | {key: eye[:1]}
        with pytest.raises(ValueError, match=rf"^{key}: shape \(1, 3, 3\) .*\(4, 3, 3\)"):
            compute_losses(out, batch, original_pixels=True)
    # The same batch of 4 with every shape right is accepted: zero error everywhere.
    terms = compute_losses(out, _batch(4) | {"K": eye, "orig_K": eye}, original_pixels=True)
    assert all(value.item() == 0 for value in terms.values())
    with unchecked(), pytest.raises(ValueError, match=r"target: shape \(1, 3, 2\) .*\(2, 3, 2\)"):
        heatmap_loss(torch.zeros(2, 3, 4, 4), torch.zeros(1, 3, 2), (16, 16))
    with unchecked(), pytest.raises(ValueError, match=r"target: shape \(2, 2, 2\) .*\(2, 3, 2\)"):
        heatmap_loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 2, 2), (16, 16))
    with unchecked(), pytest.raises(ValueError, match=r"^segmentation: shape \(1, 8, 8\)"):
        segmentation_loss(torch.zeros(2, 8, 2, 2), torch.zeros(1, 8, 8, dtype=torch.uint8))


def test_heatmap_loss_of_a_missing_keypoint_is_finite_and_equals_leaving_it_out():
    # A missing annotation (NaN) is outside the image: it must add nothing to the value and,
    # with a finite stand-in map, nothing (not NaN) to the gradient. Reference: the mean of the
    # annotated keypoints' cross-entropies, each computed on its own.
    nan = float("nan")
    target = torch.tensor(
        [[[5.0, 9.0], [nan, nan]], [[nan, 3.0], [12.5, 2.0]]], dtype=torch.float64
    )
    logits = torch.randn(
        2, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    ).requires_grad_(True)
    loss = heatmap_loss(logits, target, (16, 16))
    (grad,) = torch.autograd.grad(loss, logits)
    annotated = [(0, 0), (1, 1)]
    each = [
        heatmap_loss(logits[b : b + 1, n : n + 1], target[b : b + 1, n : n + 1], (16, 16))
        for b, n in annotated
    ]
    reference = sum(each) / len(each)
    (reference_grad,) = torch.autograd.grad(reference, logits)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(grad, reference_grad)
    assert (grad[0, 1] == 0).all() and (grad[1, 0] == 0).all()  # the missing ones' maps
    assert torch.autograd.gradcheck(lambda x: heatmap_loss(x, target, (16, 16)), (logits,))


def _naive_heatmap_loss(logits: torch.Tensor, target: torch.Tensor, width: int, height: int):
    """Reference heat-map cross-entropy, cell by cell in plain Python: cell (i, j) of an h x w
    map centred on pixel ((j + 0.5) W / w - 0.5, (i + 0.5) H / h - 0.5), the Gaussian's sd one
    cell along each axis (W / w across, H / h down), normalised over the cells; the mean over
    the keypoints inside [-0.5, W - 0.5) x [-0.5, H - 0.5) of -sum(target * log softmax)."""
    _, _, h, w = logits.shape
    cell_x, cell_y = width / w, height / h
    losses = []
    for b, n in itertools.product(range(logits.shape[0]), range(logits.shape[1])):
        tx, ty = target[b, n].tolist()
        if not (-0.5 <= tx < width - 0.5 and -0.5 <= ty < height - 0.5):
            continue
        gauss = {
            (i, j): math.exp(
                -0.5 * (((j + 0.5) * cell_x - 0.5 - tx) / cell_x) ** 2
                - 0.5 * (((i + 0.5) * cell_y - 0.5 - ty) / cell_y) ** 2
            )
            for i, j in itertools.product(range(h), range(w))
        }
        norm = sum(gauss.values())
        values = logits[b, n].tolist()
        log_norm = math.log(sum(math.exp(v) for row in values for v in row))
        losses.append(-sum(g / norm * (values[i][j] - log_norm) for (i, j), g in gauss.items()))
    return sum(losses) / max(len(losses), 1)


def test_heatmap_loss_of_non_square_images_and_maps_against_a_naive_reference():
    # The package's images are square (data.image_size), but heatmap_loss
    # takes any (W, H) and any h x w maps: each axis must use its own cell size. Case 1: an
    # image 16 wide x 8 high, 4 x 4 maps, cells 16 / 4 = 4 px wide and 8 / 4 = 2 px high.
    # Case 2: a square 16 x 16 image, 2 x 8 maps, cells 16 / 8 = 2 px wide, 16 / 2 = 8 px high.
    # Swapping the axes' cell sizes changes each Gaussian's widths (4 <-> 2, 2 <-> 8).
    generator = torch.Generator().manual_seed(7)
    for (width, height), (h, w), target in [
        ((16, 8), (4, 4), [[[3.0, 5.0], [12.5, 1.0], [7.2, 6.9]]]),  # all inside 15.5 x 7.5
        ((16, 16), (2, 8), [[[3.0, 5.0], [12.5, 11.0], [0.4, 15.2]]]),
    ]:
        target = torch.tensor(target, dtype=torch.float64)
        logits = torch.randn(1, 3, h, w, dtype=torch.float64, generator=generator) * 2
        expected = _naive_heatmap_loss(logits, target, width, height)
        assert heatmap_loss(logits, target, (width, height)).item() == pytest.approx(
            expected, rel=1e-10
        )
        # The loss's own target map, a Gaussian of one cell per axis, costs exactly its entropy;
        # the same Gaussian with the x and y sds swapped costs more.
        cell_x, cell_y = width / w, height / h
        xs = (torch.arange(w, dtype=torch.float64) + 0.5) * cell_x - 0.5  # cell centres, px
        ys = (torch.arange(h, dtype=torch.float64) + 0.5) * cell_y - 0.5

        def log_gaussian(sd_x: float, sd_y: float, target=target, xs=xs, ys=ys):
            lx = -0.5 * ((xs - target[..., :1]) / sd_x) ** 2  # (1, 3, w)
            ly = -0.5 * ((ys - target[..., 1:]) / sd_y) ** 2  # (1, 3, h)
            return ly[..., :, None] + lx[..., None, :]  # (1, 3, h, w)

        own = log_gaussian(cell_x, cell_y)
        prob = own.flatten(2).softmax(-1)
        entropy = -(prob * prob.log()).sum(-1).mean()
        best = heatmap_loss(own, target, (width, height))
        assert best.item() == pytest.approx(entropy.item(), rel=1e-10)
        swapped = heatmap_loss(log_gaussian(cell_y, cell_x), target, (width, height))
        assert swapped > best + 0.01


def test_heatmap_term_of_a_non_square_batch_reads_width_then_height():
    # batch["image"] is (B, 3, H, W) = (1, 3, 8, 16): the heat-map term must use (W, H) =
    # (16, 8), cells 16 / 4 = 4 px wide and 8 / 2 = 4 px high for (1, 29, 2, 4) maps. Keypoints
    # at x = 10 px are inside a 16-wide image but would be outside an 8-wide one.
    batch = _batch(1) | {"image": torch.zeros(1, 3, 8, 16)}
    batch["hand_2d"][0] = torch.tensor([10.0, 2.0])
    batch["obj_2d"][0] = torch.tensor([3.0, 6.5])
    logits = torch.randn(
        1, 29, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    terms = compute_losses({"heatmaps": logits}, batch, heatmap=True, original_pixels=False)
    target = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1).double()
    expected = _naive_heatmap_loss(logits, target, width=16, height=8)
    assert terms["heatmap"].item() == pytest.approx(expected, rel=1e-10)


def test_2d_terms_undo_a_turned_and_unevenly_scaled_map():
    """The 2D error is mapped by the linear part of ``orig_K K⁻¹`` (A⁻¹ for K = A orig_K), not by
    its transpose: the two agree for a resize (diagonal) and a turned crop (a scaled rotation,
    the same norm either way), and differ once a turn is followed by uneven scales."""
    # A's linear part: a quarter turn, then x scaled by 0.2 and y by 0.1:
    # [[0.2, 0], [0, 0.1]] @ [[0, -1], [1, 0]] = [[0, -0.2], [0.1, 0]], whose inverse is
    # [[0, 10], [-5, 0]]. A (1, 0) px error in the network image is A⁻¹ (1, 0) = (0, -5) original
    # px: MSE (0 + 25) / 2 = 12.5. The transpose (0, 10) would give 100 / 2 = 50.
    A = torch.tensor([[0.0, -0.2, 40.0], [0.1, 0.0, 7.0], [0.0, 0.0, 1.0]])
    orig_K = torch.tensor([[1000.0, 0.0, 960.0], [0.0, 1000.0, 540.0], [0.0, 0.0, 1.0]])
    batch = _batch(1) | {"K": (A @ orig_K)[None], "orig_K": orig_K[None]}
    out = {"kp2d": torch.tensor([1.0, 0.0]).expand(1, 29, 2)}
    original = compute_losses(out, batch, original_pixels=True)
    torch.testing.assert_close(original["2d"], torch.tensor(12.5))


def test_targets_are_the_hand_then_the_object_in_node_order():
    """Every supervised term compares node n of the output with node n of ``hand ‖ obj``
    (docs/conventions.md §1 "Nodes": the 21 joints, then the 8 corners), whatever the part."""
    # Distinct values per node (joint k at k, corner c at 100 + c), so any other order of the
    # targets leaves a non-zero error against outputs that are exactly right.
    batch = {
        "hand_2d": torch.arange(21.0)[None, :, None].expand(1, 21, 2),
        "obj_2d": (100.0 + torch.arange(8.0))[None, :, None].expand(1, 8, 2),
        "hand_3d": torch.arange(21.0)[None, :, None].expand(1, 21, 3),
        "obj_3d": (100.0 + torch.arange(8.0))[None, :, None].expand(1, 8, 3),
    }
    kp2d = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1)
    kp3d = torch.cat([batch["hand_3d"], batch["obj_3d"]], dim=1)
    out = {"kp2d_init": kp2d, "kp2d": kp2d, "kp3d_init": kp3d, "kp3d": kp3d}
    for parts in (("hand", "object"), ("hand",), ("object",)):
        terms = compute_losses(out, batch, parts=parts, original_pixels=False)
        assert set(terms) == {"2d_init", "2d", "3d_init", "3d"}
        assert all(value.item() == 0.0 for value in terms.values()), (parts, terms)
    # And a wrong node costs by hand: corner 0 of kp2d_init predicted at joint 0's (0, 0) instead
    # of (100, 100) -> 2 * 100^2 / (29 nodes * 2 coords) = 20000 / 58.
    wrong = kp2d.clone()
    wrong[0, 21] = 0.0
    terms = compute_losses(out | {"kp2d_init": wrong}, batch, original_pixels=False)
    torch.testing.assert_close(terms["2d_init"], torch.tensor(20000 / 58))


def test_configured_losses_take_the_2d_pixels_and_3d_distance_from_the_config():
    """``loss.l2d_pixels`` and ``loss.l3d_distance`` reach the terms: each value of each gives
    its own hand-computed term, where the two forms differ."""
    # Network image 100 px focal, original 800 px along x and 400 px along y; every node's 2D
    # off by (1, 1) network px = (8, 4) original px, every node's 3D off by (3, 4, 0) mm.
    batch = _batch(1) | {
        "K": torch.diag(torch.tensor([100.0, 100.0, 1.0]))[None],
        "orig_K": torch.diag(torch.tensor([800.0, 400.0, 1.0]))[None],
    }
    out = {
        "kp2d": torch.ones(1, 29, 2),
        "kp3d": torch.tensor([3.0, 4.0, 0.0]).expand(1, 29, 3),
    }
    # 2D: network (1 + 1) / 2 = 1 px^2; original (8^2 + 4^2) / 2 = 40 px^2.
    expected_2d = {"network": 1.0, "original": 40.0}
    # 3D: euclidean sqrt(9 + 16 + 0) = 5 mm per node; squared (9 + 16 + 0) / 3 = 25 / 3 mm^2.
    expected_3d = {"euclidean": 5.0, "squared": 25 / 3}
    for pixels, distance in itertools.product(expected_2d, expected_3d):
        config = LossConfig(l2d_pixels=pixels, l3d_distance=distance)
        terms = configured_losses(out, batch, config, parts=("hand", "object"))
        assert set(terms) == {"2d", "3d"}
        assert terms["2d"].item() == pytest.approx(expected_2d[pixels]), (pixels, distance)
        assert terms["3d"].item() == pytest.approx(expected_3d[distance]), (pixels, distance)
