"""Datasets of docs/conventions.md §6 records and the one function that maps a config to them.

:func:`build_dataset` is what training and evaluation configs call. Dataset names and their
splits:

=========== ================================ ==========================================
name         splits                           class
=========== ================================ ==========================================
synthetic    train, val, test                 :class:`SyntheticHandObject`
fpha         train, val, test (``hope``);     :class:`FPHA`
             train, test (``action``)
obman        train, val, test                 :class:`ObMan`
ho3d         train, evaluation                :class:`HO3D`
dexycb       train, val, test                 :class:`DexYCB`
=========== ================================ ==========================================

Synthetic splits: the generator's seed for a split is derived from the config's ``seed`` and the
split's name with ``numpy.random.SeedSequence([seed, SYNTHETIC_SPLIT_KEYS[split]])``, so each
split is its own random stream (train, val and test never share a sample) and ``seed`` still
changes all three.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset

from hopose.data.cache import META_FILE, CacheDataset, as_recorded, write_cache
from hopose.data.dexycb import DexYCB, check_setup
from hopose.data.fpha import FPHA, check_protocol
from hopose.data.grasps import check_free_fraction, check_seed
from hopose.data.ho3d import HO3D, check_version
from hopose.data.obman import ObMan, check_shapenet_root
from hopose.data.sample import SAMPLE_KEYS, check_sample, collate_samples
from hopose.data.synthetic import SyntheticHandObject, focal_range
from hopose.data.transforms import (
    CROPS,
    DEFAULT_CROP,
    DEFAULT_IMAGE_SIZE,
    DataFileError,
    Frame,
    check_jitter,
    check_margin,
    check_on_error,
    frame_to_record,
)

__all__ = [
    "CROPS",
    "DATASETS",
    "FPHA",
    "HO3D",
    "REAL_DATASETS",
    "SAMPLE_KEYS",
    "SYNTHETIC_SPLIT_KEYS",
    "CacheDataset",
    "DataFileError",
    "DexYCB",
    "Frame",
    "ObMan",
    "SyntheticHandObject",
    "build_dataset",
    "check_options",
    "check_sample",
    "collate_samples",
    "frame_to_record",
    "loader_options",
    "option_defaults",
    "synthetic_split_seed",
    "uncapped",
    "write_cache",
]

# The datasets read from disk; "synthetic" is generated.
REAL_DATASETS: dict[str, type] = {
    "fpha": FPHA,
    "obman": ObMan,
    "ho3d": HO3D,
    "dexycb": DexYCB,
}
DATASETS: tuple[str, ...] = ("synthetic", *REAL_DATASETS)
# Loader options that say how to read a dataset, not which samples it holds: a cache is read
# whatever they were when it was written (prepare_cache does not record on_error).
READ_OPTIONS = frozenset({"on_error", "shapenet_root"})
# The check each loader runs on a value of its option, (value, field named) -> None: shared by
# :func:`check_options`. The jitter's, which also reads the crop, is called apart.
_OPTION_CHECKS: dict[str, Callable[[Any, str], object]] = {
    "free_fraction": check_free_fraction,
    "focal_scale": focal_range,
    "margin": check_margin,
    "on_error": check_on_error,
    "protocol": check_protocol,
    "version": check_version,
    "setup": check_setup,
    "shapenet_root": check_shapenet_root,
}
# Second entropy word of each synthetic split's seed (see the module docstring).
SYNTHETIC_SPLIT_KEYS: dict[str, int] = {"train": 0, "val": 1, "test": 2}


def synthetic_split_seed(seed: int, split: str) -> int:
    """The generator seed of a synthetic split: distinct per split, changed by ``seed``."""
    if split not in SYNTHETIC_SPLIT_KEYS:
        raise ValueError(f"split: synthetic has {tuple(SYNTHETIC_SPLIT_KEYS)}, got {split!r}")
    check_seed(seed)
    state = np.random.SeedSequence([seed, SYNTHETIC_SPLIT_KEYS[split]]).generate_state(1)
    return int(state[0])


def build_dataset(
    name: str,
    split: str,
    *,
    root: str | None = None,
    cache: str | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    crop: str = DEFAULT_CROP,
    num_samples: int | None = None,
    seed: int = 0,
    with_images: bool = True,
    **options: Any,
) -> Dataset:
    """The dataset a config names.

    Args:
        name: one of :data:`DATASETS`.
        split: the split (see the table in the module docstring).
        root: the dataset's folder on disk (real datasets, unless ``cache`` is given).
        cache: a folder written by :func:`write_cache` (``hopose prepare``), or a folder
            holding one such cache per split (``<cache>/<split>``); read instead of the raw
            tree. What it recorded (dataset, split, image size, crop, synthetic data's base
            seed, the loader's options such as ``protocol``, an option it does not record being
            at its default) must agree with these arguments and their defaults, except
            :data:`READ_OPTIONS`; a cache that records no dataset name or split, a synthetic
            one holding fewer than ``num_samples``, or a real one capped (``hopose prepare
            --num``) below ``num_samples`` or read with ``num_samples`` None, is refused.
        image_size: side of the square network image.
        crop: "resize" or "square" (docs/datasets.md; synthetic data render the square directly).
        num_samples: synthetic: how many to generate (required); real data: keep the first
            ``num_samples`` (None: all).
        seed: synthetic: the base seed of :func:`synthetic_split_seed`.
        with_images: False skips reading pixels (``image`` is a (0, 0, 3) placeholder).
        **options: the dataset class's own keyword arguments (e.g. ``protocol`` for FPHA).

    Raises:
        ValueError: naming the field (``name``, ``split``, ``root``, ``cache``...) that is wrong.
    """
    if name not in DATASETS:
        raise ValueError(f"name: unknown dataset {name!r}, expected one of {tuple(DATASETS)}")
    if num_samples is not None and num_samples < 1:
        raise ValueError(f"num_samples: must be >= 1 or None, got {num_samples}")
    if cache is not None:
        check_jitter(options.get("jitter", False), crop)  # as the loaders do, cache or not
        wanted = {"name": name, "split": split, "crop": crop, **options}
        if name == "synthetic":
            wanted["seed"] = seed  # the base seed, as hopose synth records it
        # One config names one cache for all splits: a folder of per-split caches works too.
        if (Path(cache) / split / META_FILE).is_file():
            cache = str(Path(cache) / split)
        dataset: Dataset = _open_cache(cache, wanted, image_size, with_images)
        if name == "synthetic" and num_samples is not None and num_samples > len(dataset):
            # A synthetic split is defined by its size: fewer samples are not the split asked.
            raise ValueError(
                f"cache: {cache} holds {len(dataset)} samples, num_samples asks {num_samples}"
            )
        cap = dataset.info.get("num_samples")  # a real dataset's: only where --num cut it
        if name != "synthetic" and cap is not None and (num_samples is None or num_samples > cap):
            # Its first `cap` frames only: served as the split, they would be trained or
            # scored as all of it.
            asks = "all of the split" if num_samples is None else num_samples
            raise ValueError(
                f"cache: {cache} holds the first {cap} samples of the split (prepared with "
                f"--num {cap}), num_samples asks {asks}"
            )
    elif name == "synthetic":
        if num_samples is None:
            raise ValueError("num_samples: required for the synthetic dataset")
        return SyntheticHandObject(
            num_samples,
            synthetic_split_seed(seed, split),
            image_size=image_size,
            with_images=with_images,
            crop=crop,
            **options,
        )
    else:
        if root is None:
            raise ValueError(f"root: the {name} dataset needs its folder (or a cache)")
        dataset = REAL_DATASETS[name](
            root, split, image_size=image_size, crop=crop, with_images=with_images, **options
        )
    if num_samples is not None and num_samples < len(dataset):
        dataset = Subset(dataset, range(num_samples))
    return dataset


def uncapped(dataset: Dataset) -> tuple[Dataset, Sequence[int]]:
    """The dataset under :func:`build_dataset`'s cap of its first ``num_samples`` (a Subset),
    and the indices of ``dataset``'s samples in it; an uncapped dataset and all its indices."""
    if isinstance(dataset, Subset):
        return dataset.dataset, dataset.indices
    return dataset, range(len(dataset))


def _constructor_options(cls: type) -> tuple[dict[str, Any], bool]:
    """The keyword arguments ``cls.__init__`` declares itself, less those :func:`build_dataset`
    sets, each with its default; and whether it passes others on (``**options``)."""
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    set_by_build = set(inspect.signature(build_dataset).parameters)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    declared = {
        p.name: p.default for p in parameters if p.kind in keyword and p.name not in set_by_build
    }
    return declared, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def option_defaults(name: str) -> dict[str, Any]:
    """The keyword arguments of dataset ``name``'s class (followed through ``**options`` into the
    base class that receives them), less those :func:`build_dataset` sets itself, each with its
    default (``inspect.Parameter.empty`` where it has none)."""
    cls = SyntheticHandObject if name == "synthetic" else REAL_DATASETS[name]
    defaults: dict[str, Any] = {}
    for base in cls.__mro__:
        if "__init__" not in vars(base) or base is object:
            continue
        declared, passes_on = _constructor_options(base)
        for option, default in declared.items():  # a subclass's default stands over its base's
            defaults.setdefault(option, default)
        if not passes_on:
            break
    return defaults


def check_options(name: str, crop: str, options: Mapping[str, Any], prefix: str = "") -> None:
    """Refuse what dataset ``name``'s loader would refuse among ``options`` (the keyword
    arguments :func:`build_dataset` passes on), with the loader's own checks, before anything is
    built: a config's ``data.options`` are judged when the config is read, not once a run
    builds its dataset. Each option is named ``prefix + option``.

    Args:
        name: one of :data:`DATASETS`.
        crop: the crop the options go with ("resize" or "square"; the jitter needs "square").
        options: option name -> value.
        prefix: put before each option's name in an error, e.g. "data.options.".

    Raises:
        ValueError: one line naming the first unknown option (and the dataset's options) or
            bad value.
    """
    allowed = tuple(option_defaults(name))
    for option, value in options.items():
        field = prefix + option
        if option not in allowed:
            raise ValueError(f"unknown key {field}: the {name} dataset takes {allowed}")
        if option == "jitter":
            check_jitter(value, crop, field)
        else:
            _OPTION_CHECKS[option](value, field)


def loader_options(name: str) -> tuple[str, ...]:
    """The options of a real dataset's own class: those that say which frames its splits hold
    or where they lie (FPHA's ``protocol``, DexYCB's ``setup``, HO-3D's ``version``, ObMan's
    ``shapenet_root``), not those it passes on to :class:`FrameDataset` (the crops' margin,
    ``on_error``, ``jitter``); none for synthetic data, whose options shape the samples."""
    if name == "synthetic":
        return ()
    return tuple(_constructor_options(REAL_DATASETS[name])[0])


def _open_cache(cache: str, wanted: dict[str, Any], image_size: int, with_images: bool):
    """Open a cache and check that what it recorded (``info``) agrees with the config.

    ``wanted`` holds ``name``, ``split``, ``crop``, the loader's options the config gives and,
    for synthetic data, ``seed``. An option neither gives is at its default: a cache records
    every option it was given (and its loader's ``variant``), so one built with ``protocol:
    action`` is refused by a config that leaves FPHA's protocol at "hope".
    """
    dataset = CacheDataset(cache, with_images=with_images)
    info = dataset.info
    for field in ("name", "split"):
        # Without them one cache would serve train, val and test alike: the model would be
        # validated and tested on its training samples.
        if field not in info:
            raise ValueError(
                f"cache: {cache} records no {field} (built before caches recorded it); rebuild "
                f"it per split with `hopose prepare` or `hopose synth --split`"
            )
    defaults = option_defaults(wanted["name"])
    asked, held = defaults | wanted, defaults | info
    for field, value in asked.items():
        if field in READ_OPTIONS or field not in held:
            continue
        if as_recorded(held[field]) != as_recorded(value):  # a default may be a tuple too
            raise ValueError(
                f"cache: {cache} holds {field}={held[field]!r}, config asks {value!r}; rebuild "
                "it with the config's settings"
            )
    if dataset.image_size != image_size:
        # Also without images: the cache's K and 2D labels are in its own pixels.
        raise ValueError(
            f"cache: {cache} holds {dataset.image_size} px images, image_size is {image_size}"
        )
    return dataset
