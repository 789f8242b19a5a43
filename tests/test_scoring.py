"""The summary's keys (hopose.scoring): what the report, the demo and the ablations read is what
score() writes."""

from __future__ import annotations

import numpy as np
import pytest

from hopose import ablate, demo, report, scoring
from hopose.scoring import (
    KEYPOINT_2D_KEYS,
    PLAUSIBILITY_KEYS,
    SUMMARY_KEYS,
    frame_metrics,
    plausibility_key,
    score,
)


def _predictions(n: int = 2, *, keypoints_2d: bool = True) -> dict[str, np.ndarray]:
    """Random poses 400 mm in front of a 500 px camera; 2D keypoints unless told not to."""
    rng = np.random.default_rng(0)
    depth = np.array([0.0, 0.0, 400.0])
    K = np.array([[500.0, 0, 112], [0, 500, 112], [0, 0, 1]])
    predictions = {
        f"{who}_{part}_3d": rng.normal(0, 30, (n, count, 3)) + depth
        for who in ("pred", "gt")
        for part, count in (("hand", 21), ("obj", 8))
    }
    if keypoints_2d:
        predictions |= {
            f"{who}_{part}_2d": rng.uniform(0, 224, (n, count, 2))
            for who in ("pred", "gt")
            for part, count in (("hand", 21), ("obj", 8))
        }
    return predictions | {
        "K": np.repeat(K[None], n, axis=0),
        "id": np.array([f"f{i}" for i in range(n)]),
    }


@pytest.fixture(scope="module")
def produced() -> dict[str, set[str]]:
    """The keys of real score() calls: everything computed, and the least ever computed."""
    return {
        "full": set(score(_predictions(), workers=1)),
        "least": set(score(_predictions(keypoints_2d=False), plausibility=False)),
    }


def test_the_key_constants_are_the_keys_score_writes(produced):
    assert produced["full"] == {*SUMMARY_KEYS, *KEYPOINT_2D_KEYS, *PLAUSIBILITY_KEYS}
    assert produced["least"] == set(SUMMARY_KEYS)


def _read_always() -> set[str]:
    """The summary keys that the report, the demo and the ablations index directly."""
    return {
        *(key for key, _, _ in report.ACCURACY_ROWS),
        *(auc_key for _, _, _, auc_key, _, _ in report.PCK_PLOTS),
        scoring.HAND_MEAN_MM,  # Table 1
        scoring.OBJECT_MEAN_MM,
        scoring.N_FRAMES,
        *(key for key, _ in demo.COLUMNS),
        *(key for key, gt_key, _ in ablate.PHYSICS_METRICS if gt_key is None),
    }


def _read_with_plausibility() -> set[str]:
    """The plausibility keys that they read: the report's rows (a "–" where absent) and the
    physics ablation's, which always scores the plausibility."""
    return {
        *(plausibility_key(who, name) for name, _, _ in report.PLAUSIBILITY_ROWS for who in
          ("pred", "gt")),
        *(key for key, gt_key, _ in ablate.PHYSICS_METRICS if gt_key is not None),
        *(gt_key for _, gt_key, _ in ablate.PHYSICS_METRICS if gt_key is not None),
    }  # fmt: skip


def test_every_key_the_report_demo_and_ablations_read_is_written(produced):
    # Read unconditionally: written even without plausibility or 2D keypoints.
    assert _read_always() <= produced["least"], _read_always() - produced["least"]
    plausibility = _read_with_plausibility()
    assert plausibility <= produced["full"], plausibility - produced["full"]
    assert plausibility.isdisjoint(produced["least"])


def test_every_column_the_report_reads_is_written():
    columns = set(frame_metrics(_predictions(keypoints_2d=False), plausibility=False))
    read = {scoring.HAND_MM, scoring.OBJECT_MM, *(column for _, column, *_ in report.PCK_PLOTS)}
    assert read <= columns, read - columns
