"""Graph convolution with a learned adjacency (paper §3.1, Eq. 1–2).

A layer computes ``Y = σ(Ã X W + b)`` with the renormalised adjacency
``Ã = D^-1/2 (A + I) D^-1/2`` of Kipf & Welling, where D is the degree matrix of ``A + I``.
The bias b is added after the propagation, as in Kipf & Welling's released layers.

Every layer learns its adjacency (the paper's GCNs all do, docs/conventions.md §3): the
parameter P with ``A = |P + Pᵀ| / 2``: symmetric and non-negative for
every P, so Ã stays well defined (every degree is at least 1) whatever the optimiser does. P
starts at the given adjacency with its zero entries raised to :data:`LEARNED_ADJACENCY_FLOOR`:
at an exact zero, ``|·|`` (like ``relu``) passes no gradient and the connection could never be
learned. Every zero entry, the diagonal's included, is raised, so each row of A starts with
1e-3 per absent connection: from an empty adjacency over N nodes, each row of Ã starts with
(N - 1) 1e-3 / (1 + N 1e-3) of its weight off the diagonal, not the identity (2.7% for the
29-node merged graph, whose diagonal starts at 0.973); on the 21-joint hand tree the floor
moves a row of Ã by up to 1.6% (sum of the absolute changes).

Weight modulation (beyond the paper; Zou & Tang, "Modulated Graph Convolutional Network for 3D
Human Pose Estimation", ICCV 2021): ``Y = σ(Ã ((X W) ⊙ M) + b)`` with a learned (N, l) matrix M,
one row per node, starting at ones (the plain layer). With one W shared by every node and a
non-negative Ã, a layer only smooths: it cannot turn one input, such as the image's global
feature that every node of the refinement GCN reads, into different outputs for different
nodes, nor form differences between nodes. M gives each node its own scaling of every output
channel, signs included, at N × l parameters.

Shapes are jaxtyping annotations (N nodes, ``*batch`` any leading batch dimensions), checked at
run time in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

# Initial weight of the absent connections of a learned adjacency (see the module docstring).
LEARNED_ADJACENCY_FLOOR = 1e-3


def normalize_adjacency(adjacency: Float[Tensor, "*batch N N"]) -> Float[Tensor, "*batch N N"]:
    """Renormalised adjacency ``Ã = D^-1/2 (A + I) D^-1/2`` (paper Eq. 2).

    Args:
        adjacency: symmetric, non-negative A without the self-loops Eq. 2 adds.

    Returns:
        Ã. The degrees of ``A + I`` are at least 1, so no division can blow up.
    """
    n = adjacency.shape[-1]
    a_hat = adjacency + torch.eye(n, dtype=adjacency.dtype, device=adjacency.device)
    inv_sqrt_degree = a_hat.sum(dim=-1).rsqrt()  # (..., N)
    return inv_sqrt_degree[..., :, None] * a_hat * inv_sqrt_degree[..., None, :]


def _check_adjacency(adjacency: Tensor) -> None:
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be a square (N, N) matrix, got {tuple(adjacency.shape)}")
    # A model built on the 'meta' device (shapes without data, e.g. under `with
    # torch.device("meta")`, which puts the skeleton's adjacencies there too) has no values to
    # check.
    if adjacency.is_meta:
        return
    if (adjacency < 0).any() or not torch.equal(adjacency, adjacency.T):
        raise ValueError("adjacency must be symmetric and non-negative")


class GraphConv(nn.Module):
    """One graph convolution ``Y = σ(Ã X W + b)`` over N nodes (paper Eq. 1).

    Args:
        in_features: k, the input width of each node.
        out_features: l, the output width of each node.
        adjacency: (N, N) symmetric non-negative initial A without self-loops (Eq. 2 adds
            them), learned from there.
        activation: apply σ = ReLU; off for a layer that outputs coordinates.
        modulate: learn the per-node modulation M (module docstring).
    """

    def __init__(
        self,
        *,
        in_features: int,
        out_features: int,
        adjacency: Tensor,
        activation: bool = True,
        modulate: bool = False,
    ) -> None:
        super().__init__()
        _check_adjacency(adjacency)
        self.activation = activation
        self.linear = nn.Linear(in_features, out_features, bias=False)
        # Glorot initialisation, as Kipf & Welling use for W.
        nn.init.xavier_uniform_(self.linear.weight)
        self.bias = nn.Parameter(torch.zeros(out_features))
        adjacency = adjacency.detach().to(torch.get_default_dtype())
        floor = torch.full_like(adjacency, LEARNED_ADJACENCY_FLOOR)
        self.adj = nn.Parameter(torch.where(adjacency > 0, adjacency, floor))
        self.modulation = (
            nn.Parameter(torch.ones(len(adjacency), out_features)) if modulate else None
        )

    def adjacency(self) -> Float[Tensor, "N N"]:
        """The current A: symmetric and non-negative."""
        return (self.adj + self.adj.T).abs() / 2

    def forward(
        self, x: Float[Tensor, "*batch N in_features"]
    ) -> Float[Tensor, "*batch N out_features"]:
        """Node features of the layer's input width to those of its output width."""
        # Ã (X W) equals (Ã X) W and is cheaper when the layer narrows the features.
        xw = self.linear(x)  # (B, N, out_features)
        if self.modulation is not None:
            xw = xw * self.modulation
        adjacency = normalize_adjacency(self.adjacency())
        # One batched product with Ã broadcast: `Ã @ xw` would fold the batch into the columns,
        # copying xw to (N, B l) and the result back, about twice the time on a CPU
        # (BENCHMARKS.md, "Models: the graph layers' batched product").
        flat = xw.reshape(-1, *xw.shape[-2:])  # (B', N, l): any leading dims as one batch
        y = torch.bmm(adjacency.expand(flat.shape[0], -1, -1), flat).view_as(xw) + self.bias
        return F.relu(y) if self.activation else y


class GraphStack(nn.Module):
    """Graph convolutions of the given widths over one graph, ReLU between them.

    Args:
        widths: (in, hidden..., out) node widths; ``len(widths) - 1`` layers.
        adjacency: (N, N) initial A of every layer (each layer learns its own copy).
        dropout: dropout probability after each hidden layer's activation.
        activate_last: apply ReLU after the last layer too (off when it outputs coordinates).
        modulate: each layer learns a per-node weight modulation (:class:`GraphConv`).
    """

    def __init__(
        self,
        *,
        widths: Sequence[int],
        adjacency: Tensor,
        dropout: float = 0.0,
        activate_last: bool = False,
        modulate: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"widths needs at least an input and an output width, got {widths}")
        n_layers = len(widths) - 1
        self.layers = nn.ModuleList(
            GraphConv(
                in_features=widths[i],
                out_features=widths[i + 1],
                adjacency=adjacency,
                activation=activate_last or i < n_layers - 1,
                modulate=modulate,
            )
            for i in range(n_layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Float[Tensor, "*batch N in_features"]
    ) -> Float[Tensor, "*batch N out_features"]:
        """Node features of width ``widths[0]`` to features of width ``widths[-1]``."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.dropout(x)
        return x
