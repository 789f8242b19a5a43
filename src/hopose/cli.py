"""The ``hopose`` command line: one sub-command per job.

Each sub-command is a function decorated with :func:`subcommand` that adds its argparse
sub-parser and sets ``func`` to a handler; handlers import their implementation lazily so that
``hopose --help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

_REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = []


def subcommand(register: Callable[[argparse._SubParsersAction], None]):
    """Decorator: ``register(subparsers)`` adds one sub-command to ``hopose``."""
    _REGISTRY.append(register)
    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hopose",
        description="Joint 3D hand-object pose estimation with a physical affinity loss.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for register in _REGISTRY:
        register(subparsers)
    return parser


# Sub-commands (each decorated with @subcommand) go below this line.


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
