"""Random draws scripted for tests of the augmentations (``hopose.crop.jittered_square`` and the
loaders' jittered crops), so that a test can work out by hand what each draw gives."""

from __future__ import annotations

import numpy as np


class ScriptedRng(np.random.Generator):
    """An ``np.random.Generator`` whose uniform draws sit at given fractions of their ranges, in
    the order they are drawn (its other draws are a seeded generator's)."""

    def __init__(self, fractions):
        super().__init__(np.random.PCG64(0))
        self.fractions = list(fractions)

    def uniform(self, low=0.0, high=1.0, size=None):
        if size is None:
            return low + (high - low) * self.fractions.pop(0)
        return np.array([low + (high - low) * self.fractions.pop(0) for _ in range(size)])
