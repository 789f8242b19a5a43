"""The config files shipped with hopose, ``<dataset>/<stage>.yaml``.

``synthetic/`` (the demo, sized for a 2-core CPU), ``obman/`` and ``fpha/`` (the paper's
settings), ``ho3d/`` and ``dexycb/`` (the same settings on those datasets), each with
``lifter.yaml``, ``encoder.yaml`` and ``end2end.yaml``. They are package data, so an installed
wheel has them as well as a source checkout: ``hopose train`` and ``hopose demo`` find them by
name (``fpha/lifter``) wherever they run. A config of one's own is any YAML file, given by its
path; copy a shipped one (``src/hopose/configs/...``) to start.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def shipped_configs() -> list[str]:
    """Names of the shipped configs, e.g. ``"fpha/lifter"``."""
    return sorted(
        str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.glob("*/*.yaml")
    )


def config_path(dataset: str, stage: str) -> Path:
    """The shipped ``<dataset>/<stage>.yaml``."""
    return find_config(f"{dataset}/{stage}")


def find_config(name: str | Path) -> Path:
    """A config file: ``name`` itself when it is a file, else the shipped config it names
    (``"fpha/lifter"`` or ``"fpha/lifter.yaml"``).

    Raises:
        FileNotFoundError: naming ``name`` and the shipped configs.
    """
    path = Path(name)
    if path.is_file():
        return path
    shipped = (CONFIG_DIR / path).with_suffix(".yaml")
    if len(path.parts) == 2 and shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"config not found: {name} (neither a file nor one of {', '.join(shipped_configs())})"
    )
