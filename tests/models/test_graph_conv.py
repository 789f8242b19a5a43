"""GraphConv (paper Eq. 1–2): hand-computed normalisation, a naive loop, learned adjacency."""

from __future__ import annotations

import math

import pytest
import torch

from hopose.models.graph_conv import (
    LEARNED_ADJACENCY_FLOOR,
    GraphConv,
    GraphStack,
    normalize_adjacency,
)
from hopose.skeleton import hand_adjacency

PATH_3 = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # 0 - 1 - 2


def _at_path_3(*layers: GraphConv) -> None:
    """Set the layers' learned A to PATH_3 itself, without the floor on its zeros, so that Ã is
    the hand-computed one of test_normalize_adjacency_path_graph_by_hand."""
    with torch.no_grad():
        for layer in layers:
            layer.adj.copy_(PATH_3)


def test_normalize_adjacency_path_graph_by_hand():
    # A + I = [[1,1,0],[1,1,1],[0,1,1]]; degrees d = (2, 3, 2);
    # Ã_ij = (A + I)_ij / sqrt(d_i d_j): Ã_00 = 1/sqrt(2*2) = 1/2, Ã_01 = 1/sqrt(2*3) = 1/sqrt6,
    # Ã_11 = 1/sqrt(3*3) = 1/3, Ã_02 = 0 (no edge), and the same by symmetry.
    s = 1 / math.sqrt(6)
    expected = torch.tensor([[0.5, s, 0.0], [s, 1 / 3, s], [0.0, s, 0.5]])
    torch.testing.assert_close(normalize_adjacency(PATH_3), expected)


def test_normalize_adjacency_batched_and_empty_graph():
    # No edges: A + I = I, degrees 1, Ã = I. A batch of graphs is normalised one by one.
    batch = torch.stack([torch.zeros(3, 3), PATH_3]).double()
    result = normalize_adjacency(batch)
    assert result.dtype == torch.float64
    torch.testing.assert_close(result[0], torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(result[1], normalize_adjacency(PATH_3.double()))


def naive_graph_conv(layer: GraphConv, x: torch.Tensor) -> torch.Tensor:
    """Eq. 1 node by node: y_i = relu(sum_j (A+I)_ij / sqrt(d_i d_j) (x_j W ⊙ m_j) + b), with
    m_j the modulation's row j (all ones without modulation)."""
    a_hat = layer.adjacency().detach() + torch.eye(x.shape[1])
    weight = layer.linear.weight.detach().T  # (in, out)
    out = torch.zeros(x.shape[0], x.shape[1], weight.shape[1])
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            d_i = sum(a_hat[i, k] for k in range(x.shape[1]))
            for j in range(x.shape[1]):
                d_j = sum(a_hat[j, k] for k in range(x.shape[1]))
                m_j = 1.0 if layer.modulation is None else layer.modulation[j].detach()
                out[b, i] += a_hat[i, j] / math.sqrt(d_i * d_j) * (x[b, j] @ weight) * m_j
            out[b, i] += layer.bias.detach()
    return out.clamp(min=0) if layer.activation else out


@pytest.mark.parametrize("activation", [False, True])
@pytest.mark.parametrize("modulate", [False, True])
def test_graph_conv_matches_naive_loop(activation, modulate):
    torch.manual_seed(0)
    layer = GraphConv(
        in_features=4, out_features=5, adjacency=PATH_3, activation=activation, modulate=modulate
    )
    with torch.no_grad():
        layer.bias.normal_()
        if modulate:
            layer.modulation.normal_()
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(layer(x), naive_graph_conv(layer, x))


def test_modulation_starts_as_the_plain_layer_and_can_tell_nodes_apart():
    torch.manual_seed(0)
    plain = GraphConv(in_features=2, out_features=1, adjacency=PATH_3, activation=False)
    modulated = GraphConv(
        in_features=2, out_features=1, adjacency=PATH_3, activation=False, modulate=True
    )
    modulated.linear.load_state_dict(plain.linear.state_dict())
    _at_path_3(plain, modulated)
    x = torch.randn(4, 3, 2)
    torch.testing.assert_close(modulated(x), plain(x))  # M = ones: the same layer
    # Every node reads the same input, as the refinement GCN's nodes read the global feature:
    # x_j W = 1 for all j. The plain layer's output is the row sums of Ã, (1/2 + 1/sqrt6,
    # 2/sqrt6 + 1/3, 1/2 + 1/sqrt6) by the hand-computed Ã above, so the two end nodes are
    # equal whatever W is. With M = (1, 0, -1): node 0 gets 1/2 - 0, node 2 gets 0 - 1/2 and
    # node 1 gets 1/sqrt6 - 1/sqrt6 = 0, a difference no plain layer can form.
    with torch.no_grad():
        for layer in (plain, modulated):
            layer.linear.weight.copy_(torch.tensor([[1.0, 0.0]]))
        modulated.modulation.copy_(torch.tensor([[1.0], [0.0], [-1.0]]))
    same = torch.tensor([[[1.0, 0.0]] * 3])
    s = 1 / math.sqrt(6)
    torch.testing.assert_close(
        plain(same)[0, :, 0], torch.tensor([0.5 + s, 2 * s + 1 / 3, 0.5 + s])
    )
    torch.testing.assert_close(modulated(same)[0, :, 0], torch.tensor([0.5, 0.0, -0.5]))


def test_adjacency_is_learned_from_the_given_graph_its_zeros_raised_to_the_floor():
    learned = GraphConv(in_features=2, out_features=2, adjacency=PATH_3)
    assert "adj" in dict(learned.named_parameters())
    floor = LEARNED_ADJACENCY_FLOOR
    torch.testing.assert_close(learned.adjacency().detach(), PATH_3.clamp(min=floor))


def test_learned_adjacency_stays_symmetric_nonnegative_and_learns_absent_edges():
    torch.manual_seed(0)
    layer = GraphConv(in_features=3, out_features=3, adjacency=hand_adjacency())
    initial = layer.adjacency().detach().clone()
    with torch.no_grad():  # an asymmetric raw parameter, e.g. after weight decay or a bad load
        layer.adj.add_(0.01 * torch.randn(21, 21))
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    x, target = torch.randn(8, 21, 3), torch.randn(8, 21, 3)
    for _ in range(20):
        loss = (layer(x) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    adjacency = layer.adjacency().detach()
    # The raw parameter is neither symmetric nor non-negative; A is both.
    assert not torch.equal(layer.adj.detach(), layer.adj.detach().T)
    assert (layer.adj.detach() < 0).any()
    torch.testing.assert_close(adjacency, adjacency.T)
    assert (adjacency >= 0).all()
    # Entries outside the kinematic tree (e.g. thumb tip 4 - little tip 20) moved too.
    assert initial[4, 20] == LEARNED_ADJACENCY_FLOOR
    assert adjacency[4, 20] != initial[4, 20]


@pytest.mark.parametrize(
    "adjacency",
    [torch.tensor([[0.0, 1.0], [0.0, 0.0]]), -PATH_3, torch.zeros(2, 3)],
    ids=["asymmetric", "negative", "not-square"],
)
def test_bad_adjacency_raises(adjacency):
    with pytest.raises(ValueError, match="adjacency"):
        GraphConv(in_features=2, out_features=2, adjacency=adjacency)


def test_graph_conv_gradcheck_float64():
    torch.manual_seed(0)
    # The modulation on, no ReLU kink.
    options = {"activation": False, "modulate": True}
    layer = GraphConv(in_features=2, out_features=3, adjacency=PATH_3, **options).double()
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    # And through the adjacency parameter.
    assert torch.autograd.gradcheck(
        lambda adj: torch.func.functional_call(layer, {"adj": adj}, (x,)),
        (layer.adj.detach().clone().requires_grad_(),),
    )
    # And through the modulation, away from its initial ones.
    assert torch.autograd.gradcheck(
        lambda m: torch.func.functional_call(layer, {"modulation": m}, (x,)),
        (torch.randn(3, 3, dtype=torch.float64, requires_grad=True),),
    )


def test_graph_stack_widths_dropout_and_last_activation():
    torch.manual_seed(0)
    stack = GraphStack(widths=(2, 8, 8, 3), adjacency=PATH_3, dropout=0.5)
    assert [layer.activation for layer in stack.layers] == [True, True, False]
    x = torch.randn(4, 3, 2)
    assert stack(x).shape == (4, 3, 3)
    # Dropout only acts in training mode.
    stack.eval()
    torch.testing.assert_close(stack(x), stack(x))
    stack.train()
    assert not torch.equal(stack(x), stack(x))
    with pytest.raises(ValueError, match="widths"):
        GraphStack(widths=(2,), adjacency=PATH_3)


def test_graph_stack_activate_last_applies_relu_after_the_last_layer():
    # W = I, b = 0 and every input -1: the last layer's pre-activation is Ã X, whose entries
    # are sums of non-negative Ã_ij times -1, so negative (row 0: -(1/2 + 1/sqrt6)); ReLU -> 0.
    x = -torch.ones(1, 3, 2)
    stacks = {}
    for activate_last in (False, True):
        stack = GraphStack(widths=(2, 2, 2), adjacency=PATH_3, activate_last=activate_last)
        _at_path_3(*stack.layers)
        with torch.no_grad():
            for layer in stack.layers:
                layer.linear.weight.copy_(torch.eye(2))
        stacks[activate_last] = stack
    assert [layer.activation for layer in stacks[True].layers] == [True, True]
    assert [layer.activation for layer in stacks[False].layers] == [True, False]
    # The first layer's ReLU already zeroes -1s: feed the last layer alone to see its sign.
    s = 1 / math.sqrt(6)
    expected_pre = -torch.tensor([0.5 + s, 1 / 3 + 2 * s, 0.5 + s])[None, :, None].expand(1, 3, 2)
    torch.testing.assert_close(stacks[False].layers[-1](x), expected_pre)
    torch.testing.assert_close(stacks[True].layers[-1](x), torch.zeros(1, 3, 2))
    assert (stacks[True](x) >= 0).all()


def test_graph_stack_drops_out_only_between_layers():
    # The docstring: dropout "after each hidden layer's activation". A one-layer stack has no
    # hidden layer, so even p = 0.9 in training mode leaves its output alone: twice the same,
    # and equal to the layer itself (an inverted dropout would zero ~90% and scale the rest x10).
    torch.manual_seed(0)
    stack = GraphStack(widths=(2, 4), adjacency=PATH_3, dropout=0.9)
    stack.train()
    x = torch.randn(5, 3, 2)
    with torch.no_grad():
        stack.layers[0].bias.fill_(1.0)
        plain = stack.layers[0](x)
        assert (plain != 0).all()
        torch.testing.assert_close(stack(x), plain, rtol=0, atol=0)
        torch.testing.assert_close(stack(x), plain, rtol=0, atol=0)


def test_an_empty_29_node_graph_starts_at_the_documented_near_identity():
    """Every entry of A starts at the floor 1e-3, so A + I has 1.001 on the diagonal and 28
    entries 1e-3 off it: every degree is 1 + 29e-3 = 1.029, Ã = (A + I) / 1.029, diagonal
    1.001 / 1.029 = 0.97279 and each off-diagonal entry 1e-3 / 1.029 (2.72% of a row in all)."""
    layer = GraphConv(in_features=1, out_features=1, adjacency=torch.zeros(29, 29))
    a = normalize_adjacency(layer.adjacency())
    torch.testing.assert_close(a.diagonal(), torch.full((29,), 1.001 / 1.029))
    torch.testing.assert_close(a[0, 1:], torch.full((28,), 1e-3 / 1.029))
