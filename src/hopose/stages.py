"""The three training stages of the paper (§4.3), as data: what each reads and what it trains.

A stage is chosen by name in a config (``TrainConfig.stage``); training, checkpoints, evaluation
and prediction all look it up here instead of comparing strings of their own:

=========== ======================== =================== =====================================
stage       trains (HoposeNet parts)  reads               supervised on
=========== ======================== =================== =====================================
``lifter``  ``lifter``                ground-truth 2D     3D (paper: "we use the ground-truth
                                                          2D coordinates as the input")
``encoder`` ``encoder``               images              2D
``end2end`` ``encoder``, ``lifter``   images              2D, 3D and the physical loss (Eq. 7)
=========== ======================== =================== =====================================

A checkpoint records which parts hold trained weights (those its stage trained plus those it
started from, see :mod:`hopose.checkpoint`); predicting from images needs both parts trained
(:data:`IMAGE_PARTS`), feeding ground-truth 2D to the lifter only the lifter
(:data:`GT_2D_PARTS`).
"""

from __future__ import annotations

from dataclasses import dataclass

# The submodules of HoposeNet a stage can train, by attribute name.
PARTS: tuple[str, ...] = ("encoder", "lifter")
IMAGE_PARTS: frozenset[str] = frozenset(PARTS)
"""Parts that must be trained to predict 3D from an image: all of them."""


@dataclass(frozen=True)
class Stage:
    """One training stage."""

    name: str
    trains: frozenset[str]
    """The HoposeNet parts (:data:`PARTS`) whose weights this stage updates."""
    reads_images: bool
    """Whether the trained module reads images (else ground-truth 2D keypoints (B, 29, 2))."""


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("lifter", frozenset({"lifter"}), reads_images=False),
        Stage("encoder", frozenset({"encoder"}), reads_images=True),
        Stage("end2end", frozenset(PARTS), reads_images=True),
    )
}
GT_2D_PARTS: frozenset[str] = STAGES["lifter"].trains
"""Parts that must be trained to lift ground-truth 2D keypoints to 3D: those the lifter stage,
which reads them, trains."""
