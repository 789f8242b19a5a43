"""The ``hopose`` command line: one sub-command per job.

Each sub-command is a function decorated with :func:`subcommand` that adds its argparse
sub-parser and sets ``func`` to a handler; handlers import their implementation lazily so that
``hopose --help`` stays fast.

Errors: hopose's own errors about bad input (config, checkpoint, dataset files, arguments) are
:class:`ValueError` subclasses whose message names the file or field; missing or unwritable
files are :class:`OSError`; a training whose loss or validation error turns NaN or infinite
(too high a learning rate, say) is a :class:`FloatingPointError` naming the terms.
:func:`main` prints any of them as one line on stderr and exits with 1; ``--debug`` shows the
traceback instead. Progress bars draw only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import codecs
import functools
import importlib
import io
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence

from hopose import __version__

# Errors reported as one line (see the module docstring); anything else is a bug and shows its
# traceback.
USER_ERRORS = (ValueError, OSError, FloatingPointError)

# Where --image-size's least and largest values live (synth and prepare), imported when one is
# checked.
IMAGE_SIZE_BOUNDS = (
    ("hopose.data.synthetic", "MIN_IMAGE_SIZE"),
    ("hopose.data.synthetic", "MAX_IMAGE_SIZE"),
)

# The seeds --seed takes, hopose.data.grasps.SEED_LIMIT - 1 at most: written out, as importing
# it would import the implementation (the module docstring); tests/test_cli.py pins the two.
SEED_RANGE = "0 to 2**32 - 1"
SEED_MAX = 2**32 - 1  # the most --seed takes, SEED_RANGE's

# The largest count an option takes (--num, --batch-size, --image-size), as the config's
# optim.batch_size (below 2**31): more samples than any machine holds, and far below 2**63,
# past which numpy and torch raise OverflowError naming no option.
MAX_COUNT = 2**31 - 1

# --workers' most processes per CPU (os.cpu_count()): each is a forked process holding its own
# share of the data, and beyond a few per core they only add memory (100000 forked thousands of
# processes and ran the machine out of memory).
WORKERS_PER_CPU = 4

# Name lists and a default of hopose.data that the help restates, written out as SEED_RANGE is;
# tests/test_cli.py pins each to its constant (named beside it). The values an option takes are
# still checked against the constant itself (_one_of).
DATASET_NAMES = ("synthetic", "fpha", "obman", "ho3d", "dexycb")  # hopose.data.DATASETS
REAL_DATASET_NAMES = DATASET_NAMES[1:]  # hopose.data.REAL_DATASETS
CROP_NAMES = ("resize", "square")  # hopose.data.CROPS
ON_ERROR_NAMES = ("raise", "skip")  # hopose.data.transforms.ON_ERROR
SYNTHETIC_SPLIT_NAMES = ("train", "val", "test")  # hopose.data.SYNTHETIC_SPLIT_KEYS
DEFAULT_IMAGE_SIZE = 224  # hopose.data.transforms.DEFAULT_IMAGE_SIZE
# The options of hopose.refine.refinement's parameters, named in its refusal from the commands.
REFINE_FLAGS = ("--refine", "--complete-grasp")
# The options of hopose.self_crop.SelfCropping.of's margin and single_view, named in its refusals
# from the commands (run_eval's and predict_images' self_crop_names).
SELF_CROP_FLAGS = ("--self-crop-margin", "--single-view")

# The message PyTorch gives an error it raises again from a DataLoader worker
# (torch.utils.data._utils.worker, ExceptionWrapper): the worker's traceback follows.
_WORKER_ERROR = re.compile(r"Caught (\w+) in DataLoader worker process (\d+)\.\nOriginal Traceback")

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
    parser.add_argument("--version", action="version", version=f"hopose {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error instead of one line"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for register in _REGISTRY:
        register(subparsers)
    return parser


# Sub-commands (each decorated with @subcommand) go below this line.


@subcommand
def _register_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train one stage from a YAML config")
    parser.add_argument(
        "config", help="a YAML file, or a shipped config by name, e.g. synthetic/lifter"
    )
    _add_set_argument(parser, "override a config value, e.g. --set optim.lr=1e-4 (repeatable)")
    parser.add_argument(
        "--out", type=output_path, required=True, help="run directory for checkpoints and logs"
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.set_defaults(func=_run_train)


def _add_set_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable), the config overrides, in ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text
    )


def _run_train(args: argparse.Namespace) -> int:
    from hopose.config import load_config
    from hopose.configs import find_config
    from hopose.train import train

    cfg = load_config(find_config(args.config), args.overrides)
    result = train(cfg, args.out, resume=args.resume)
    if result.rank == 0 and cfg.data.val_split is None:
        print(f"no validation split: best.pt holds the last epoch's network ({result.best_epoch})")
    elif result.rank == 0:
        print(f"best validation error {result.best:.3f} at epoch {result.best_epoch}")
    return 0


@subcommand
def _register_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="train the three stages on synthetic data, evaluate, print a table"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke-sized run (minutes)")
    parser.add_argument("--out", type=output_path, required=True, help="output directory")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed demo in --out: each stage from its last.pt, finished ones kept",
    )
    parser.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    """Exit 1 when a check failed (a model no better than the mean pose), so that `make demo`
    and scripts see it, not only the FAIL line in the output."""
    from hopose.demo import run_demo

    checks = run_demo(args.out, quick=args.quick, resume=args.resume)["checks"]
    failed = [name for name, passed in checks.items() if not passed]
    if failed:
        print(f"hopose demo: checks failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _one_of(module: str, constant: str, *extra: str) -> Callable[[str], str]:
    """argparse ``type=``: a value of the name list ``module.constant``, or one of ``extra``.

    Like ``choices=``, with argparse's own message, but the list is imported only when a value
    is checked, so that building the parser imports no implementation (the module docstring).
    """

    def check(value: str) -> str:
        if value in extra:
            return value
        allowed = (*getattr(importlib.import_module(module), constant), *extra)
        if value not in allowed:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {value!r} (choose from {', '.join(map(repr, allowed))})"
            )
        return value

    return check


def at_least(
    minimum: int | tuple[str, str], maximum: int | tuple[str, str] = MAX_COUNT
) -> Callable[[str], int]:
    """argparse ``type=`` of a count or seed: an integer from ``minimum`` to ``maximum``, else
    argparse's one-line usage error naming the option (the synthetic splits' seed sequences
    take no negative entropy, and numpy's own message names no option; the benchmarks' counts
    likewise; a count of 2**63 or more was an OverflowError). Either bound may be a
    ``(module, constant)`` pair, imported when a value is checked (as :func:`_one_of`'s list),
    so that the bound has one home."""

    def bound(value: int | tuple[str, str]) -> int:
        if isinstance(value, tuple):
            return getattr(importlib.import_module(value[0]), value[1])
        return value

    def check(text: str) -> int:
        least, most = bound(minimum), bound(maximum)
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {text!r}")
        if value > most:
            raise argparse.ArgumentTypeError(f"expected an integer <= {most}, got {text!r}")
        return value

    return check


def worker_count(text: str) -> int:
    """argparse ``type=`` of ``--workers``: an integer from 0 to :data:`WORKERS_PER_CPU` per CPU
    of this machine, else argparse's one-line usage error naming the option."""
    value = at_least(0)(text)
    most = WORKERS_PER_CPU * (os.cpu_count() or 1)
    if value > most:
        raise argparse.ArgumentTypeError(
            f"expected at most {most} ({WORKERS_PER_CPU} per CPU of this machine), got {text!r}"
        )
    return value


def output_path(text: str) -> str:
    """argparse ``type=`` of ``--out``: a path that is not blank, else argparse's one-line usage
    error naming the option. A blank one is the current folder to the commands, whose files
    (an evaluation's report.md, metrics.json) they would replace or delete."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text


def non_negative(text: str) -> float:
    """argparse ``type=`` of a margin: a finite number >= 0, else argparse's one-line usage
    error naming the option (the config's own check names its field, data.self_crop_margin)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _refuse_given(args: argparse.Namespace, names: Sequence[str], why: str) -> None:
    """Refuse the options among ``names`` (argparse dests) that were given, naming them: set
    where they do not apply, they would be ignored without a word. Unset options are None."""
    given = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: {why}")


def _refuse_other_source(args: argparse.Namespace, dataset: str) -> None:
    """Synthetic frames are generated (or read from --cache): a --root would be ignored. A real
    dataset's are read: a --seed would be ignored, and recorded as if it had chosen them."""
    if dataset == "synthetic":
        _refuse_given(args, ("root",), "a folder of a real dataset; synthetic data is generated")
    else:
        _refuse_given(args, ("seed",), f"the seed of synthetic data; {dataset}'s frames are read")


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--root``, ``--seed`` and ``--num``: where a dataset's frames come from, and how many."""
    parser.add_argument("--root", help="dataset folder (real datasets)")
    parser.add_argument(
        "--seed",
        type=at_least(0, SEED_MAX),
        help=f"synthetic: base seed of the splits ({SEED_RANGE}), default 0",
    )
    parser.add_argument(
        "--num", type=at_least(1), help="synthetic: samples to generate; real: a cap"
    )


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        required=True,
        type=_one_of("hopose.data", "DATASETS"),
        help=f"the dataset: {', '.join(DATASET_NAMES)}",
    )
    _add_source_arguments(parser)
    parser.add_argument("--cache", help="cache folder written by hopose prepare")


def _option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> (key, value parsed as ``--set`` parses it), for argparse."""
    import yaml

    from hopose.config import ConfigError, option_value, yaml_problem

    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if not value.strip():  # read as null, as --set's; an unset shell variable, not a null
        raise argparse.ArgumentTypeError(
            f"expected a value after = (write {key}=null for none), got {text!r}"
        )
    try:
        return key, option_value(key, value)
    except yaml.YAMLError as error:  # one line, as a usage error must be
        raise argparse.ArgumentTypeError(
            f"{key}: value is not YAML ({yaml_problem(error)})"
        ) from None
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_self_crop_arguments(parser: argparse.ArgumentParser) -> None:
    """``--self-crop-margin`` and ``--single-view``, for eval and predict of a model that
    self-crops."""
    parser.add_argument(
        "--self-crop-margin", type=non_negative, metavar="M",
        help="margin of the self-crops instead of the checkpoint's data.self_crop_margin "
        "(docs/training.md, \"Self-crop margin\")",
    )  # fmt: skip
    parser.add_argument(
        "--single-view", action="store_true",
        help="predict from the last self-crop's one square, without the checkpoint's "
        "test-time views (data.self_crop_turn, data.self_crop_shift; docs/from_pixels.md, "
        "\"Test-time views\")",
    )  # fmt: skip


def _add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``, for eval and predict: "auto" (the default, as training's) or a device of
    :data:`hopose.config.DEVICES`, checked by the command (a GPU this machine lacks too)."""
    parser.add_argument(
        "--device", default="auto",
        help="auto (a GPU when there is one, else the CPU; the default), cpu, cuda or cuda:N",
    )  # fmt: skip


def _add_no_plausibility_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-plausibility", action="store_true",
        help="skip the physical-plausibility metrics (the grasp quality is most of the time)",
    )  # fmt: skip


def _add_refine_arguments(parser: argparse.ArgumentParser, *, when: str, what: str) -> None:
    """``--refine`` and ``--complete-grasp``, worded for the command's frames or photos."""
    parser.add_argument(
        "--refine", action="store_true",
        help=f"refine the predicted 3D physically {when} (hopose.refine.refine_pose; "
        "docs/evaluation.md)",
    )  # fmt: skip
    parser.add_argument(
        "--complete-grasp", action="store_true",
        help=f"with --refine: move the box of {what} into the hand's grip "
        "(RefineWeights.complete_grasp; docs/evaluation.md)",
    )  # fmt: skip


@subcommand
def _register_eval(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a checkpoint on a dataset split")
    parser.add_argument("checkpoint", help="a checkpoint written by hopose train or demo")
    _add_data_arguments(parser)
    parser.add_argument(
        "--split",
        help="split to evaluate (default: the checkpoint's data.test_split on the dataset it "
        "was trained on, HO-3D's evaluation; else test)",
    )
    parser.add_argument(
        "--crop", type=_one_of("hopose.data", "CROPS"),
        help=f"image geometry, {' or '.join(CROP_NAMES)} (default: the checkpoint's)",
    )  # fmt: skip
    parser.add_argument(
        "--option", dest="options", action="append", default=[], type=_option,
        metavar="KEY=VALUE",
        help="a dataset constructor argument, the value read as YAML, as data.options in a "
        "config, e.g. --option focal_scale=1.6 (repeatable)",
    )  # fmt: skip
    protocol = parser.add_mutually_exclusive_group()
    protocol.add_argument(
        "--gt-2d", action="store_true",
        help="feed ground-truth 2D keypoints to the lifter (the paper's Table 2 protocol)",
    )  # fmt: skip
    protocol.add_argument(
        "--gt-box", action="store_true",
        help="from the images of the squares ground truth places around hand and object (the "
        "protocol of papers that crop so), not self-cropped; labelled gt_box",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=at_least(1),
        help="frames per forward pass (a self-crop's test-time views go in the same pass: "
        "that many images a frame)",
    )  # fmt: skip
    _add_device_argument(parser)
    parser.add_argument(
        "--workers", type=worker_count, default=0,
        help="processes that read the frames or render the self-crops' views (0: this one; at "
        f"most {WORKERS_PER_CPU} per CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--no-report", action="store_true",
        help="skip report.md, per_frame.csv, per_group.csv and the figures (and the plausibility "
        "metrics)",
    )  # fmt: skip
    _add_no_plausibility_argument(parser)
    _add_refine_arguments(parser, when="before scoring", what="frames without a grasp")
    _add_self_crop_arguments(parser)
    parser.add_argument("--out", type=output_path, required=True, help="output directory")
    parser.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    import json

    from hopose.checkpoint import load_model
    from hopose.evaluate import EVAL_BATCH_SIZE, check_gt_2d, eval_data_config, run_eval
    from hopose.refine import refinement

    if args.data != "synthetic" and args.root is None and args.cache is None:
        raise ValueError(f"--root: evaluating on {args.data} needs its folder (or --cache)")
    _refuse_other_source(args, args.data)
    # Synthetic frames are generated, as many as asked: unasked, the dataset's own refusal
    # named its constructor argument (num_samples), not the option.
    if args.data == "synthetic" and args.num is None and args.cache is None:
        raise ValueError("--num: evaluating on synthetic data needs the number of frames")
    # run_eval refuses the flags too; asked here, a bad flag is named before the checkpoint is
    # read.
    refinement(args.refine, args.complete_grasp, from_images=not args.gt_2d, names=REFINE_FLAGS)
    # --gt-box reads the squares that ground truth places (run_eval sets data.crop "square"):
    # another crop asked for would be dropped without a word.
    if args.gt_box and args.crop not in (None, "square"):
        raise ValueError(
            f"--crop {args.crop}: --gt-box reads square crops around the true hand and box; "
            "drop --crop or give --crop square"
        )
    # The one reading of the checkpoint: its config chooses the data, its network runs.
    loaded = load_model(args.checkpoint, from_images=not args.gt_2d)
    data = eval_data_config(
        args.checkpoint, name=args.data, root=args.root, cache=args.cache, split=args.split,
        num=args.num, crop=args.crop, options=dict(args.options), num_workers=args.workers,
        self_cropping=not (args.gt_2d or args.gt_box), trained=loaded[1],
        **_given(seed=args.seed),
    )  # fmt: skip
    if args.gt_2d:  # run_eval refuses it too, naming its parameter
        check_gt_2d(data.name, data.test_split, "--gt-2d")
    summary = run_eval(
        args.checkpoint, data, args.split, args.out, gt_2d=args.gt_2d, gt_box=args.gt_box,
        batch_size=EVAL_BATCH_SIZE if args.batch_size is None else args.batch_size,
        device=args.device, report=not args.no_report,
        plausibility=not (args.no_report or args.no_plausibility), refine=args.refine,
        complete_grasp=args.complete_grasp, self_crop_margin=args.self_crop_margin,
        single_view=args.single_view, self_crop_names=SELF_CROP_FLAGS, loaded=loaded,
    )  # fmt: skip
    numbers = {k: v for k, v in summary.items() if not isinstance(v, list | dict)}
    print(json.dumps(numbers, indent=2))
    return 0


def _camera_values(text: str) -> tuple[float, ...]:
    """``--K fx,fy,cx,cy`` as four floats."""
    try:
        values = tuple(float(value) for value in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected fx,fy,cx,cy (four numbers), got {text!r}")
    return values


# predict's default --batch-size, hopose.predict.PREDICT_BATCH_SIZE, written out as SEED_RANGE is;
# tests/test_cli.py pins the two.
PREDICT_BATCH_SIZE = 8


@subcommand
def _register_predict(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="keypoints, contacts and an overlay for image files of any size"
    )
    parser.add_argument("checkpoint", help="a checkpoint written by hopose train or demo")
    parser.add_argument(
        "images", nargs="+",
        help="image files (JPEG, PNG, BMP, WebP, TIFF, GIF) and folders of them (their image "
        "files, by name, not their subfolders)",
    )  # fmt: skip
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument(
        "--K", type=_camera_values, metavar="FX,FY,CX,CY",
        help="the photos' intrinsics in pixels of the upright full-size photo",
    )  # fmt: skip
    camera.add_argument(
        "--fov", type=float, metavar="DEG", help="the photos' horizontal field of view (degrees)"
    )
    _add_refine_arguments(parser, when="before writing it", what="a photo without a grasp")
    _add_self_crop_arguments(parser)
    parser.add_argument(
        "--left", action="store_true",
        help="the photos show a left hand: predicted mirrored, as the right hand the models "
        "are trained on, and mirrored back (the JSON says side: left)",
    )  # fmt: skip
    _add_device_argument(parser)
    parser.add_argument(
        "--batch-size", type=at_least(1), default=PREDICT_BATCH_SIZE,
        help=f"photos read and predicted together, each pass of the network reading all their "
        f"views at once; their outputs are written when the batch is done (default "
        f"{PREDICT_BATCH_SIZE}; 1: one photo at a time)",
    )  # fmt: skip
    parser.add_argument(
        "--no-overlay", action="store_true",
        help="write no overlay image (about half the time and disk of a large batch); the "
        "JSON's overlay is then null",
    )  # fmt: skip
    parser.add_argument("--out", type=output_path, required=True, help="output directory")
    parser.set_defaults(func=_run_predict)
    parser.epilog = (
        "Without --K or --fov the camera comes from the EXIF focal length, else a 26 mm "
        "(35 mm-equivalent) lens is assumed; the JSON says which. Among several images, one "
        "that is not readable is skipped with a warning, and the command exits with status 1."
    )


def _run_predict(args: argparse.Namespace) -> int:
    from hopose.config import AUTO_DEVICES, check_device
    from hopose.photo import check_camera
    from hopose.predict import predict_images
    from hopose.refine import refinement

    # Checked here first so that a bad value is named as the option: the library's own checks,
    # which the values then pass, name its parameters (device, K, fov, refine, complete_grasp).
    # The self-crop options need the checkpoint, which the library reads: it is told their names.
    refinement(args.refine, args.complete_grasp, from_images=True, names=REFINE_FLAGS)
    check_device(args.device, "--device", AUTO_DEVICES)
    check_camera(args.K, args.fov, ("--K", "--fov"))
    # Each JSON printed as it is written: the progress of a folder of photos.
    predict_images(
        args.checkpoint, args.images, args.out, K=args.K, fov=args.fov, refine=args.refine,
        complete_grasp=args.complete_grasp, self_crop_margin=args.self_crop_margin,
        single_view=args.single_view, self_crop_names=SELF_CROP_FLAGS, left=args.left,
        device=args.device, overlay=not args.no_overlay, batch_size=args.batch_size,
        on_written=functools.partial(print, flush=True),
    )  # fmt: skip
    return 0


@subcommand
def _register_ablate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ablate", help="the paper's ablations: lifter (Table 2) or physical loss (Table 3)"
    )
    parser.add_argument(
        "study", type=_one_of("hopose.ablate", "STUDIES"),
        help="lifter (the lifter variants, Table 2) or physics (the physical loss, Table 3)",
    )  # fmt: skip
    _add_data_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="a smoke-sized run")
    parser.add_argument(
        "--init", help="physics: the stage-2 checkpoint to fine-tune (default: train stages 1-2)"
    )
    parser.add_argument("--seeds", type=int, help="physics: training seeds per row (default: 3)")
    parser.add_argument(
        "--input", type=_one_of("hopose.ablate", "PHYSICS_INPUTS", "both"),
        help="physics: the lifter on ground-truth 2D (gt_2d), end to end from the images "
        "(image), or both (default)",
    )  # fmt: skip
    _add_set_argument(
        parser, "override a config value of every run, as hopose train's --set (repeatable)"
    )
    parser.add_argument("--out", type=output_path, required=True, help="output directory")
    parser.add_argument(
        "--resume", action="store_true",
        help="continue a killed or failed study in --out: each run from its last.pt, finished "
        "ones kept, their evaluations read back",
    )  # fmt: skip
    parser.set_defaults(func=_run_ablate)


def _run_ablate(args: argparse.Namespace) -> int:
    from hopose.ablate import PHYSICS_INPUTS, run_ablation

    # Unset physics options keep run_ablation's defaults; set for another study, they would be
    # ignored, so they are refused.
    if args.study != "physics":
        _refuse_given(
            args, ("seeds", "input"), f"options of the physics study, not the {args.study} one"
        )
    _refuse_other_source(args, args.data)
    physics = {} if args.seeds is None else {"seeds": args.seeds}
    if args.input is not None:
        physics["sources"] = PHYSICS_INPUTS if args.input == "both" else (args.input,)
    table = run_ablation(
        args.study, args.out, data=args.data, root=args.root, cache=args.cache, seed=args.seed,
        num=args.num, quick=args.quick, init=args.init, overrides=args.overrides,
        resume=args.resume, **physics,
    )  # fmt: skip
    print(table)
    return 0


# Each real dataset's own options (docs/conventions.md §6): the dataset, the option's argparse
# dest, the (module, constant) naming its values (None: any value), its help.
_LOADER_OPTION_TABLE = (
    ("fpha", "protocol", ("hopose.data.fpha", "PROTOCOL_SPLITS"), "FPHA split protocol"),
    ("ho3d", "version", ("hopose.data.ho3d", "HO3D_VERSIONS"), "HO-3D version"),
    ("dexycb", "setup", ("hopose.data.dexycb", "DEXYCB_SETUPS"), "DexYCB setup"),
    ("obman", "shapenet_root", None, "ObMan: the ShapeNetCore.v2 folder"),
)

# Each real dataset's own options (argparse dests).
_LOADER_OPTIONS = {
    dataset: tuple(dest for owner, dest, _, _ in _LOADER_OPTION_TABLE if owner == dataset)
    for dataset, _, _, _ in _LOADER_OPTION_TABLE
}


def _add_loader_options(parser: argparse.ArgumentParser) -> None:
    """Each real dataset's own options; only the named dataset's are passed on."""
    for _, dest, values, help_text in _LOADER_OPTION_TABLE:
        option = f"--{dest.replace('_', '-')}"
        if values is None:
            parser.add_argument(option, help=help_text)
        else:
            parser.add_argument(option, type=_one_of(*values), help=help_text)


def _loader_options(args: argparse.Namespace) -> dict:
    """The named dataset's options that were given; another dataset's are refused."""
    wanted = _LOADER_OPTIONS.get(args.dataset, ())
    others = [name for names in _LOADER_OPTIONS.values() for name in names if name not in wanted]
    _refuse_given(args, others, f"options of another dataset, not {args.dataset}")
    return {key: getattr(args, key) for key in wanted if getattr(args, key) is not None}


@subcommand
def _register_prepare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare", help="convert a dataset split once into a fast memory-mapped cache (resumable)"
    )
    parser.add_argument(
        "dataset", type=_one_of("hopose.data", "DATASETS"),
        help=f"the dataset: {', '.join(DATASET_NAMES)}",
    )  # fmt: skip
    _add_source_arguments(parser)
    parser.add_argument("--split", required=True, help="split to convert, e.g. train")
    parser.add_argument(
        "--out", type=output_path, required=True, help="cache folder (an unfinished one is resumed)"
    )
    # Unset, --image-size, --crop and --on-error take prepare_cache's defaults (_given).
    parser.add_argument(
        "--image-size", type=at_least(*IMAGE_SIZE_BOUNDS),
        help=f"network image side (px; default {DEFAULT_IMAGE_SIZE})",
    )  # fmt: skip
    parser.add_argument(
        "--crop", type=_one_of("hopose.data", "CROPS"),
        help=f"image geometry, {' or '.join(CROP_NAMES)}: the whole frame resized (the default) "
        "or a square around hand and object (docs/datasets.md)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=worker_count, default=0,
        help=f"decoding processes (at most {WORKERS_PER_CPU} per CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--on-error", type=_one_of("hopose.data.transforms", "ON_ERROR"),
        help=f"{' or '.join(ON_ERROR_NAMES)}: stop at a bad sample (the default; resumable), or "
        "skip and count it",
    )  # fmt: skip
    _add_loader_options(parser)
    parser.set_defaults(func=_run_prepare)


def _given(**options: object) -> dict:
    """The options that were given (unset ones are None): those left out take the defaults of
    the function they are passed to, their one home."""
    return {key: value for key, value in options.items() if value is not None}


def _run_prepare(args: argparse.Namespace) -> int:
    from hopose.data.cache import prepare_cache

    _refuse_other_source(args, args.dataset)
    # Named as the options here: the dataset's own refusals name its arguments (root,
    # num_samples), which this command does not have.
    if args.dataset != "synthetic" and args.root is None:
        raise ValueError(f"--root: preparing {args.dataset} needs its folder")
    if args.dataset == "synthetic" and args.num is None:
        raise ValueError("--num: preparing synthetic data needs the number of samples")
    out = prepare_cache(
        args.dataset, args.split, args.out, root=args.root, num_samples=args.num,
        workers=args.workers,
        **_given(seed=args.seed, image_size=args.image_size, crop=args.crop,
                 on_error=args.on_error),
        **_loader_options(args),
    )  # fmt: skip
    print(out)
    return 0


@subcommand
def _register_synth(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="write one split of the synthetic dataset to a cache folder (resumable)"
    )
    parser.add_argument(
        "--split", type=_one_of("hopose.data", "SYNTHETIC_SPLIT_KEYS"),
        help=f"the split to write: {', '.join(SYNTHETIC_SPLIT_NAMES)}; required unless --stats "
        "(its seed is derived from --seed and the split's name)",
    )  # fmt: skip
    parser.add_argument(
        "--out",
        type=output_path,
        help="cache folder, required unless --stats (an unfinished one is resumed)",
    )
    parser.add_argument("--num", type=at_least(1), required=True, help="number of samples")
    parser.add_argument(
        "--seed",
        type=at_least(0, SEED_MAX),
        default=0,
        help=f"base seed of the splits ({SEED_RANGE})",
    )
    parser.add_argument(
        "--image-size", type=at_least(*IMAGE_SIZE_BOUNDS),
        help=f"image side (px; default {DEFAULT_IMAGE_SIZE})",
    )  # fmt: skip
    parser.add_argument("--free-fraction", type=float, help="share of approach/release frames")
    parser.add_argument(
        "--workers", type=worker_count, default=0,
        help=f"rendering processes (at most {WORKERS_PER_CPU} per CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--stats", action="store_true",
        help="print the statistics of --seed's poses beside FPHA-HO's instead of writing a "
        "cache (--split, --out, --image-size and --workers do not apply)",
    )  # fmt: skip
    parser.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    if not args.stats and (args.out is None or args.split is None):
        raise ValueError("--split and --out: both are required unless --stats is given")
    from hopose.data.grasps import DEFAULT_FREE_FRACTION, check_free_fraction

    free_fraction = DEFAULT_FREE_FRACTION if args.free_fraction is None else args.free_fraction
    # Checked here too, to name the option typed rather than the dataset's argument.
    check_free_fraction(free_fraction, "--free-fraction")
    if args.stats:
        import numpy as np

        from hopose.data.grasp_stats import compare, comparison_table
        from hopose.data.grasps import generate_grasps

        # The statistics are of the poses of --seed itself, not of a split's, and write nothing.
        ignored = [
            option
            for option, given in (
                ("--split", args.split is not None), ("--out", args.out is not None),
                ("--image-size", args.image_size is not None), ("--workers", args.workers != 0),
            )
            if given
        ]  # fmt: skip
        if ignored:
            raise ValueError(f"{', '.join(ignored)}: not used with --stats (it writes no cache)")
        grasps = generate_grasps(args.seed, np.arange(args.num), free_fraction)
        print(comparison_table(compare(grasps.hand_3d, grasps.object)))
        return 0
    from hopose.data.cache import prepare_cache

    out = prepare_cache(
        "synthetic", args.split, args.out, num_samples=args.num, seed=args.seed,
        workers=args.workers, free_fraction=free_fraction, **_given(image_size=args.image_size),
    )  # fmt: skip
    print(out)
    return 0


@subcommand
def _register_data(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="dataset tools")
    tools = parser.add_subparsers(dest="tool", required=True)
    check = tools.add_parser("check", help="report missing/unreadable files and unlabelled frames")
    check.add_argument(
        "dataset", type=_one_of("hopose.data", "REAL_DATASETS"),
        help=f"the dataset: {', '.join(REAL_DATASET_NAMES)}",
    )  # fmt: skip
    check.add_argument("--root", required=True, help="dataset folder")
    check.add_argument("--split", action="append", help="split to walk (repeatable; default all)")
    check.add_argument(
        "--decode", action="store_true",
        help="decode every image fully (slow); without it, each image's header is read and its "
        "end (JPEG) or chunks (PNG) checked (docs/datasets.md, \"Commands\")",
    )  # fmt: skip
    _add_loader_options(check)
    check.set_defaults(func=_run_data_check)


def _run_data_check(args: argparse.Namespace) -> int:
    from hopose.data.check import check_dataset

    report = check_dataset(
        args.dataset, args.root, splits=tuple(args.split) if args.split else None,
        decode=args.decode, **_loader_options(args),
    )  # fmt: skip
    print(report.summary())
    return 0 if report.ok else 1


@subcommand
def _register_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="several evaluations' PCK curves on one plot and their tables side by side"
    )
    parser.add_argument("run_dirs", nargs="+", help="folders written by hopose eval")
    parser.add_argument("--out", type=output_path, required=True, help="output directory")
    parser.add_argument(
        "--paper", action="store_true",
        help="add the paper's published Table 1 (FPHA-HO, HOPE-Net split) for reference",
    )  # fmt: skip
    parser.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from hopose.report import compare_runs

    print(compare_runs(args.run_dirs, args.out, paper=args.paper))
    return 0


@subcommand
def _register_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="write a checkpoint's network (or its lifter) as ONNX, checked against torch"
    )
    parser.add_argument("checkpoint", help="a checkpoint written by hopose train or demo")
    parser.add_argument(
        "--out", type=output_path, required=True, help="ONNX file to write, e.g. model.onnx"
    )
    parser.add_argument(
        "--graph", type=_one_of("hopose.export", "GRAPHS"), default="network",
        help="network: image in, 2D and 3D out (default); lifter: 2D in, 3D out",
    )  # fmt: skip
    parser.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hopose.checkpoint import load_model
    from hopose.export import compare_onnx, export_onnx, has_unit, tolerance, warn_single_pass
    from hopose.files import output_folder

    out = Path(args.out)
    # Path drops a trailing separator: "new/" would be written as a file named "new".
    if args.out.endswith(tuple(filter(None, (os.sep, os.altsep)))):
        raise IsADirectoryError(
            f"--out: {args.out} ends in a path separator, naming a folder; give the ONNX file's "
            "path"
        )
    if out.is_dir():
        raise IsADirectoryError(f"--out: {out} is a folder; give the ONNX file's path")
    model, cfg = load_model(args.checkpoint, from_images=args.graph == "network")
    warn_single_pass(cfg, args.graph)
    output_folder(out.parent)
    size = cfg.data.image_size

    def check(written: Path) -> None:
        # Run on the temporary file before its rename to --out: a graph that does not compute
        # what the network does is never left to be used, nor replaces a good one already there.
        differences = compare_onnx(model, written, graph=args.graph, image_size=size)
        for name, difference in differences.items():
            kind = "difference" if has_unit(name) else "relative difference"
            print(f"{name}: onnxruntime vs torch, largest {kind} {difference:.2e}")
        failed = [name for name, value in differences.items() if not value <= tolerance(name)]
        if failed:
            raise ValueError(
                f"{out}: outputs {failed} differ from torch beyond tolerance; not written"
            )

    export_onnx(model, out, graph=args.graph, image_size=size, check=check)
    print(out)  # only once the checked graph is there
    return 0


@subcommand
def _register_score(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="score a predictions.npz (another method's, on an evaluation's frames) as "
        "hopose eval scores its own",
    )  # fmt: skip
    parser.add_argument(
        "predictions",
        help="a predictions.npz of hopose eval, its pred_* arrays replaced by yours "
        '(docs/evaluation.md, "Scoring other predictions")',
    )
    parser.add_argument(
        "--out",
        type=output_path,
        required=True,
        help="output directory (metrics.json, per_frame.csv, per_group.csv, report.md)",
    )
    _add_no_plausibility_argument(parser)
    parser.set_defaults(func=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hopose.evaluate import score_file
    from hopose.report import METRICS_FILE
    from hopose.scoring import HAND_MEAN_MM, N_FRAMES, OBJECT_MEAN_MM

    summary = score_file(args.predictions, args.out, plausibility=not args.no_plausibility)
    print(
        f"{summary[N_FRAMES]} frames: hand {summary[HAND_MEAN_MM]:.2f} mm, object "
        f"{summary[OBJECT_MEAN_MM]:.2f} mm; {Path(args.out) / METRICS_FILE}"
    )
    return 0


def one_line(error: BaseException) -> str:
    """An error's message on one line (YAML and some library messages span several).

    An error raised in a DataLoader worker (an unreadable frame while training or evaluating)
    is raised again by PyTorch with the worker's whole traceback as its message: only the
    original message is kept, and the worker named after it.
    """
    text = str(error)
    caught = _WORKER_ERROR.match(text)
    if caught:
        # The traceback's last line is "<module>.<type>: <message>", the message possibly on
        # several lines; a chained error's tracebacks come before it.
        name, worker = caught.groups()
        starts = [m.end() for m in re.finditer(rf"^(?:[\w.]+\.)?{name}: ", text, re.MULTILINE)]
        # An error without a message ends its traceback with its type's name alone.
        message = text[starts[-1] :] if starts else name
        text = f"{message} (in DataLoader worker process {worker})"
    return " ".join(text.split()) or type(error).__name__


def _show_warning(command: str, message: Warning, *_: object, **__: object) -> None:
    """A warning as one line, ``hopose <command>: warning: ...``, as errors are shown (Python's
    own format adds the file, line and source of the call; ``--debug`` keeps it)."""
    print(f"hopose {command}: warning: {one_line(message)}", file=sys.stderr)


def exit_on_user_error(parser: argparse.ArgumentParser, run: Callable[[], object]) -> None:
    """Call ``run``; a user error (:data:`USER_ERRORS`) ends the program as ``hopose``'s own
    commands end: one line naming ``parser.prog``, exit status 1 (the docs' scripts)."""
    try:
        run()
    except USER_ERRORS as error:
        parser.exit(1, f"{parser.prog}: error: {one_line(error)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    # The first seconds are imports (torch's, by parsing a dataset's name or by _run): a Ctrl-C
    # there ends the command as one later does, not with the traceback of an import.
    args = None
    _replace_what_the_terminal_cannot_show()
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except KeyboardInterrupt:
        if args is not None and args.debug:
            raise
        # A training run has kept its last finished epoch; `--resume` continues from it.
        prog = "hopose" if args is None else f"hopose {_command_name(args)}"
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130  # the shell's status for a command ended by SIGINT (128 + 2)


def _replace_what_the_terminal_cannot_show() -> None:
    """Print "?" for the characters of the tables ("–", "≤", "±") that an output in another
    encoding than UTF-8 (an ASCII or Latin-1 locale) cannot show: the print would otherwise
    fail a command after its work is done (the demo's table, after its training)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and codecs.lookup(stream.encoding).name != "utf-8":
            stream.reconfigure(errors="replace")


def _command_name(args: argparse.Namespace) -> str:
    """The sub-command as argparse names it in its usage errors: "data check", not "data"."""
    return " ".join(filter(None, (args.command, getattr(args, "tool", None))))


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; a user error (:data:`USER_ERRORS`) is one line and status 1."""
    command = _command_name(args)
    # After parsing, so that --help and --version stay quick; every sub-command imports torch.
    import torch

    # Subnormal floats (below 1.2e-38 in float32) read and written as zero, as TensorFlow's CPU
    # thread pools do: a trained lifter holds thousands in its weights and Adam's state, and on
    # Intel CPUs each operation on one is many times slower (the demo's lifter epochs took 12 s
    # instead of 2.5; BENCHMARKS.md, "Training: subnormal floats"). Set before torch's first
    # parallel region, whose worker threads inherit it when they start; off again after the
    # command on the calling thread (threads started during the command keep it).
    torch.set_flush_denormal(True)
    try:
        with warnings.catch_warnings():  # restores the way warnings are shown afterwards
            if not args.debug:
                warnings.showwarning = functools.partial(_show_warning, command)
            # numpy 1.x says so at each float type's first finfo once subnormals read as zero
            # (above); nothing is wrong.
            warnings.filterwarnings(
                "ignore", message="The value of the smallest subnormal", category=UserWarning
            )
            return int(args.func(args) or 0)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"hopose {command}: error: {one_line(error)}", file=sys.stderr)
        return 1
    finally:
        torch.set_flush_denormal(False)


if __name__ == "__main__":
    raise SystemExit(main())
