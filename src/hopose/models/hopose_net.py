"""The full network: image encoder then 2D -> 3D lifter (paper Fig. 2).

Shapes are jaxtyping annotations, checked at run time in the tests.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor, nn

from hopose.models.encoder import ImageBatch, ImageEncoder
from hopose.models.lifter import Lifter


class HoposeNet(nn.Module):
    """Image -> 2D keypoints -> 3D keypoints, both stages' initial and refined outputs.

    The trainer may also call the parts alone: ``model.encoder(image)`` (stage 2) and
    ``model.lifter(kp2d, K)`` (stage 1, on ground-truth 2D).

    Args:
        encoder: the image encoder.
        lifter: a 2D -> 3D lifter (:class:`~hopose.models.lifter.ContextLifter` or
            :class:`~hopose.models.graph_unet.GraphUNet`).
    """

    def __init__(self, *, encoder: ImageEncoder, lifter: Lifter) -> None:
        super().__init__()
        self.encoder = encoder
        self.lifter = lifter

    def forward(self, image: ImageBatch, K: Float[Tensor, "B 3 3"]) -> dict[str, Tensor]:
        """Predict 2D and 3D keypoints of the 21 hand joints and 8 box corners.

        Args:
            image: uint8, or float in [0, 1].
            K: the image's intrinsics; the 3D is in that camera's frame.

        Returns:
            ``kp2d_init``, ``kp2d`` (B, 29, 2) pixels and ``kp3d_init``, ``kp3d`` (B, 29, 3) mm.
            The lifter reads the refined ``kp2d`` with ``K``.
        """
        out = self.encoder(image)
        return out | self.lifter(out["kp2d"], K)
