"""Shared test configuration: tests marked ``cuda`` run only where a CUDA device is."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (benchmarks/gpu_check.py runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
