"""Run-time checks of hopose's annotations in the tests.

:func:`install` puts jaxtyping's import hook in front of the imports of :data:`CHECKED_MODULES`
(tests/conftest.py calls it before anything imports hopose): every function and method of
those modules is then wrapped, as it is imported, in ``jaxtyped(typechecker=typechecker)``,
so that each call checks its arguments and its return value against their annotations (the
jaxtyping shapes, and the plain types too) and a wrong shape raises ``jaxtyping.TypeCheckError``.
The hook instruments only modules imported after it is installed. Outside the tests nothing
checks the annotations: they cost nothing in training or inference.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from beartype import BeartypeConf, beartype
from jaxtyping import config as jaxtyping_config
from jaxtyping import install_import_hook

# The modules whose annotations are checked, and their submodules.
CHECKED_MODULES: tuple[str, ...] = (
    "hopose.geometry",
    "hopose.skeleton",
    "hopose.physics",
    "hopose.plausibility",
    "hopose.grasp_completion",
    "hopose.refine",
    "hopose.metrics",
    "hopose.losses",
    "hopose.models",
    "hopose.crop",
    "hopose.self_crop",
)
# An int where a float is annotated passes, as PEP 484 allows (beartype refuses it by default).
_BEARTYPE = beartype(conf=BeartypeConf(is_pep484_tower=True))
# Imported by checked modules, and imported here first: while the hook runs a checked module,
# every module first imported reads its bytecode under the hook's own cache name, which nothing
# has written (PYTHONDONTWRITEBYTECODE), so it is compiled from source. For these that added
# 3.4 s to every test session's imports; imported first, the hook adds 0.7 s.
_SLOW_TO_COMPILE = ("scipy.optimize", "scipy.spatial", "torchvision")


def is_checked(module: str) -> bool:
    """Whether ``module`` is one of :data:`CHECKED_MODULES` or a submodule of one."""
    return any(module == name or module.startswith(name + ".") for name in CHECKED_MODULES)


def install() -> None:
    """Install the import hook; refuse if a checked module was imported before (it would go
    unchecked without a word)."""
    early = sorted(name for name in sys.modules if is_checked(name))
    if early:
        raise RuntimeError(f"imported before the annotation-checking import hook: {early}")
    for name in _SLOW_TO_COMPILE:
        importlib.import_module(name)
    # The hook names its type checker by import path, this module's below.
    install_import_hook(list(CHECKED_MODULES), f"{__name__}.typechecker")


def typechecker(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` checked by beartype, except while torch traces it (``torch.compile``,
    ``torch.export`` and so the ONNX export): the sizes of the fake tensors it traces with are
    symbolic, and comparing them with the annotations' would fix the traced graph's dynamic
    batch size to the example's."""
    checked = _BEARTYPE(fn)

    @functools.wraps(fn)
    def check(*args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():
            return fn(*args, **kwargs)
        return checked(*args, **kwargs)

    return check


@contextmanager
def unchecked() -> Iterator[None]:
    """Run a block without the checks, as production runs it: for the tests of a function's
    own errors for bad shapes (ValueErrors naming the argument), which the checks would
    otherwise pre-empt with a TypeCheckError."""
    before = jaxtyping_config.jaxtyping_disable
    jaxtyping_config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping_config.update("jaxtyping_disable", before)
