"""Shared test configuration: hopose's annotations are checked at run time
(tests/shape_checking.py), and tests marked ``cuda`` run only where a CUDA device is."""

from __future__ import annotations

import pytest
import torch

import shape_checking

# Here, in the first file pytest loads, before any test module or fixture imports hopose.
shape_checking.install()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (benchmarks/gpu_check.py runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
