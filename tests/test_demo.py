"""``hopose.demo.train_stages`` with ``resume``: a killed demo continues its stages."""

from __future__ import annotations

import csv

import pytest

from hopose.demo import train_stages
from hopose.train import RunError
from tiny_runs import TINY


def _epochs(run_dir):
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [row["epoch"] for row in csv.DictReader(handle)]


def test_resume_continues_a_stage_and_starts_the_missing_ones(tmp_path):
    # A fresh folder: with resume the stage starts afresh (nothing to continue).
    one = {"lifter": [*TINY, "optim.epochs=1"]}
    first = train_stages("synthetic", tmp_path, one, stages=("lifter",), resume=True)
    assert _epochs(tmp_path / "lifter") == ["1"]
    # Without resume the used folder is refused, as a single run's is.
    with pytest.raises(RunError, match="holds a run"):
        train_stages("synthetic", tmp_path, one, stages=("lifter",))
    # With more epochs, resume continues from epoch 1 instead of starting over...
    two = {"lifter": [*TINY, "optim.epochs=2"]}
    again = train_stages("synthetic", tmp_path, two, stages=("lifter",), resume=True)
    assert _epochs(tmp_path / "lifter") == ["1", "2"]
    assert again == first  # the same best.pt path
    # ...and a finished stage resumed with its own config trains nothing more.
    train_stages("synthetic", tmp_path, two, stages=("lifter",), resume=True)
    assert _epochs(tmp_path / "lifter") == ["1", "2"]
