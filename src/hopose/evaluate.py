"""Evaluation of a trained network on a dataset split: predictions, metrics, report
(docs/conventions.md §5).

:func:`predict_split` runs the network over a split in dataset order, either from the images
(the full pipeline) or, with ``gt_2d``, by feeding the ground-truth 2D keypoints to the lifter
(the protocol of the paper's Table 2). The predictions are numpy arrays under fixed names,
``pred_hand_3d`` (N, 21, 3), ``gt_hand_3d``, ``pred_obj_3d`` (N, 8, 3), ``gt_obj_3d``,
``pred_hand_2d`` (N, 21, 2), ``gt_hand_2d``, ``pred_obj_2d`` (N, 8, 2), ``gt_obj_2d`` (pixels of
the network's image), ``K``, ``orig_K`` (N, 3, 3), ``orig_size`` (N, 2), ``id`` (N,) and
``side`` (N,): "left" for a frame of a left hand, which its record and so every array here show
mirrored, as a right hand (docs/datasets.md: x negated, the corners reordered, ``orig_K`` the
mirrored camera's; :func:`hopose.data.transforms.mirror_frame`).

:func:`run_eval` scores them once (:mod:`hopose.scoring`: the paper's numbers, the modern hand
errors and the physical plausibility), optionally after the physical refinement of
:mod:`hopose.refine`, and writes ``metrics.json`` and the report (:func:`write_scores`, which
:func:`score_file`, ``hopose score``, runs on the predictions of a file: another method's in
place of the network's).

The mean-pose baseline (:func:`mean_pose_predictions`) predicts the training split's mean hand
and mean box for every frame; a network that has learnt anything beats it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hopose import __version__
from hopose.checkpoint import checkpoint_config, load_checkpoint, load_model
from hopose.config import AUTO_DEVICES, DataConfig, TrainConfig, check_device, resolve_device
from hopose.crop import apply_affine
from hopose.data import collate_samples, loader_options, option_defaults, uncapped
from hopose.data.ho3d import EVALUATION_SPLIT, WITHHELD, hand_labelled
from hopose.data.splits import build_split, split_size, whole_split
from hopose.data.workers import ExitWithParent, FrameViews
from hopose.files import (
    folder_lock,
    output_folder,
    recorded_path,
    require_file,
    write_atomic,
    write_text,
)
from hopose.models import HoposeNet
from hopose.refine import refine_predictions, refinement
from hopose.report import (
    METRICS_FILE,
    PER_FRAME_FILE,
    read_summary,
    remove_report,
    write_per_frame_csv,
    write_report,
)
from hopose.scoring import (
    CACHE,
    CHECKPOINT,
    CROP,
    DATASET,
    DEVICE,
    GRASP_COMPLETED,
    HOPOSE_VERSION,
    IMAGE_SIZE,
    N_FRAMES,
    NUM,
    OPTIONS,
    PREDICTED_2D,
    PROTOCOL,
    PROTOCOL_GT_2D,
    PROTOCOL_GT_BOX,
    PROTOCOL_IMAGE,
    REFINED,
    ROOT,
    SCORED,
    SEED,
    SELF_CROP,
    SELF_CROP_MARGIN,
    SELF_CROP_VIEWS,
    SPLIT,
    TORCH_VERSION,
    UNREFINED,
    WHOLE_SPLIT,
    frame_metrics,
    score,
    summarize,
)
from hopose.self_crop import (
    NO_SELF_CROP,
    SELF_CROP_PARAMETERS,
    SelfCropping,
    model_device,
    self_crop,
)
from hopose.skeleton import NUM_CORNERS, NUM_JOINTS
from hopose.submission import BENCHMARK_FILES, write_submission

# Frames per forward pass unless asked otherwise (``hopose eval --batch-size``).
EVAL_BATCH_SIZE = 64
# The predictions in an evaluation's folder (the arrays of :func:`predict_split`, refined ones
# included), beside its metrics.json (hopose.report.METRICS_FILE), written last.
PREDICTIONS_FILE = "predictions.npz"
# Held (flock) by the evaluation writing to its folder (evaluation_folder), and left there.
LOCK_FILE = "eval.lock"
# The arrays of predictions.npz that `hopose score` reads, each with its shape after the
# frames' axis (docs/evaluation.md, "Scoring other predictions"); all but OPTIONAL_ARRAYS must be
# there (the report draws the 2D keypoints too).
PREDICTION_ARRAYS: dict[str, tuple[int, ...]] = {
    "id": (),
    "pred_hand_3d": (NUM_JOINTS, 3),
    "gt_hand_3d": (NUM_JOINTS, 3),
    "pred_obj_3d": (NUM_CORNERS, 3),
    "gt_obj_3d": (NUM_CORNERS, 3),
    "pred_hand_2d": (NUM_JOINTS, 2),
    "gt_hand_2d": (NUM_JOINTS, 2),
    "pred_obj_2d": (NUM_CORNERS, 2),
    "gt_obj_2d": (NUM_CORNERS, 2),
    "K": (3, 3),
    "orig_K": (3, 3),
}
# orig_K is read instead of K for the object's 2D error where it is given.
OPTIONAL_ARRAYS = ("orig_K",)
# The cameras, which must be finite: the scores divide by their depths and the gallery's canvas
# is sized from K's principal point (an inf there was an OverflowError naming no file).
CAMERA_ARRAYS = ("K", "orig_K")
# The entries of an evaluation's summary that describe its frames (the ground truth its
# predictions.npz holds, and their geometry), which `hopose score` carries over from the
# metrics.json beside the file it scores; the others describe the network that predicted.
FRAME_KEYS = (
    PROTOCOL, CROP, IMAGE_SIZE, DATASET, SPLIT, OPTIONS, SEED, NUM, WHOLE_SPLIT, ROOT, CACHE,
)  # fmt: skip


def _split_nodes(kp: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(B, 29, D) nodes to hand (B, 21, D) and object (B, 8, D) numpy arrays."""
    kp = kp.float().cpu().numpy()
    return kp[:, :NUM_JOINTS], kp[:, NUM_JOINTS:]


def _view_source(dataset: Dataset) -> tuple[Any, Sequence[int]] | None:
    """The dataset whose ``views(index, affines)`` renders any views of ``dataset``'s frames, and
    their indices in it: a real split capped by ``num`` is a Subset of its loader. None where
    nothing renders them (cached records)."""
    source, indices = uncapped(dataset)
    return (source, indices) if hasattr(source, "views") else None


def _self_crop_outputs(
    model: HoposeNet,
    render: FrameViews,
    batch: dict[str, Any],
    indices: Sequence[int],
    cropping: SelfCropping,
) -> dict[str, torch.Tensor]:
    """Self-cropped predictions (:func:`hopose.self_crop.self_crop`, as ``cropping`` says) of frames
    ``indices`` of the dataset ``render`` shows (:func:`_view_source`); 2D in the records' image
    pixels."""
    device = model_device(model)

    def view(maps: torch.Tensor) -> torch.Tensor:
        images = render(indices, maps.double().cpu().numpy())  # (V, B, S, S, 3)
        return torch.from_numpy(images).permute(0, 1, 4, 2, 3).to(device)  # (V, B, 3, S, S)

    frame_K = batch["orig_K"].to(device)
    sizes = [(int(width), int(height)) for width, height in batch["orig_size"].tolist()]
    size = render.source.image_size
    out = self_crop(model, view, frame_K, sizes, image_size=size, cropping=cropping)
    # Frame pixels -> the record's image: its K is (frame -> image map) @ frame K; in the 2D's
    # dtype, which a float64 network makes wider than the records' float32 K.
    dtype = out["kp2d"].dtype
    to_record = batch["K"].to(device, dtype) @ torch.linalg.inv(frame_K.to(dtype))
    return out | {"kp2d": apply_affine(to_record, out["kp2d"])}


def _without(predictions: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``predictions`` less ``keys``."""
    return {key: value for key, value in predictions.items() if key not in keys}


def predict_split(
    model: HoposeNet,
    dataset: Dataset,
    *,
    gt_2d: bool = False,
    cropping: SelfCropping = NO_SELF_CROP,
    batch_size: int = EVAL_BATCH_SIZE,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    frames: Dataset | None = None,
) -> dict[str, np.ndarray]:
    """Run ``model`` over ``dataset`` in order and collect predictions beside the ground truth.

    Args:
        model: the network, already on ``device``.
        dataset: records (docs/datasets.md); with ``gt_2d`` or self-cropping they need no
            images.
        gt_2d: feed the ground-truth 2D keypoints (B, 29, 2) to the lifter instead of running
            the image encoder; the predicted 2D is then the ground truth. Either way the lifter
            reads each frame's K.
        cropping: with passes (:class:`hopose.self_crop.SelfCropping`), run from the images by
            self-cropping (:func:`hopose.self_crop.self_crop`) on views that ``frames`` renders
            (``frames.views``: the synthetic data and the real loaders, also under a Subset of
            them); predicted 2D is returned in the records' image pixels.
        batch_size: frames per forward pass.
        device: where the model lives.
        num_workers: processes that read the records or, when self-cropping, render the views
            (:class:`hopose.data.workers.FrameViews`); 0: this process.
        frames: self-cropping: the dataset whose views show ``dataset``'s frames, in the same
            order, as records without images (``with_images`` False) come from a dataset that
            still renders them; None: ``dataset`` itself.

    Returns:
        The arrays named in the module docstring, in dataset order.
    """
    model.eval()
    viewed = _view_source(dataset if frames is None else frames) if cropping.passes else None
    if cropping.passes and viewed is None:
        raise ValueError("dataset: self-cropping needs a dataset that renders views of its frames")
    # The records' images, if any, are read by the loader's processes; self-cropping's views by
    # FrameViews' (its records need no image: run_eval reads them without).
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_samples,
        num_workers=0 if viewed else num_workers, worker_init_fn=ExitWithParent(),
    )  # fmt: skip
    render = FrameViews(viewed[0], num_workers) if viewed else contextlib.nullcontext()
    chunks: dict[str, list[np.ndarray]] = {}

    def keep(name: str, value: np.ndarray) -> None:
        chunks.setdefault(name, []).append(value)

    # disable=None: a bar on a terminal, nothing in a log file.
    progress = tqdm(loader, desc="eval", unit="batch", disable=None, leave=False)
    with render, torch.inference_mode():
        for start, batch in zip(range(0, len(dataset), batch_size), progress, strict=True):
            if gt_2d:
                kp2d = torch.cat([batch["hand_2d"], batch["obj_2d"]], dim=1)  # (B, 29, 2)
                out = {"kp2d": kp2d, **model.lifter(kp2d.to(device), batch["K"].to(device))}
            elif cropping.passes:
                indices = viewed[1][start : start + len(batch["id"])]
                out = _self_crop_outputs(model, render, batch, indices, cropping)
            else:
                out = model(batch["image"].to(device), batch["K"].to(device))
            hand_3d, obj_3d = _split_nodes(out["kp3d"])
            hand_2d, obj_2d = _split_nodes(out["kp2d"])
            pred = {"hand_3d": hand_3d, "obj_3d": obj_3d, "hand_2d": hand_2d, "obj_2d": obj_2d}
            for name, value in pred.items():
                keep(f"pred_{name}", value)
                keep(f"gt_{name}", batch[name].numpy())
            for name in ("K", "orig_K", "orig_size"):
                keep(name, batch[name].numpy())
            keep("id", np.asarray(batch["id"]))
            keep("side", np.asarray(batch["side"]))
    return {name: np.concatenate(values) for name, values in chunks.items()}


def mean_pose_predictions(
    predictions: Mapping[str, np.ndarray], mean_hand: np.ndarray, mean_obj: np.ndarray
) -> dict[str, np.ndarray]:
    """The baseline that predicts the mean hand (21, 3) and mean box (8, 3) for every frame.

    It predicts no 2D keypoints, so none are scored: ``predictions``' own 2D (the truth itself
    after ``--gt-2d``, as the demo's are) would give it a 2D error that is not its own."""
    n = len(predictions["gt_hand_3d"])
    baseline = _without(predictions, PREDICTED_2D)
    baseline["pred_hand_3d"] = np.broadcast_to(mean_hand, (n, *mean_hand.shape)).copy()
    baseline["pred_obj_3d"] = np.broadcast_to(mean_obj, (n, *mean_obj.shape)).copy()
    return baseline


def _test_split(name: str) -> str:
    """Dataset ``name``'s split of test frames: HO-3D's evaluation split (it has no "test")."""
    return EVALUATION_SPLIT if name == "ho3d" else "test"


def eval_data_config(
    checkpoint: str | Path,
    *,
    name: str,
    root: str | None = None,
    cache: str | None = None,
    seed: int = 0,
    split: str | None = None,
    num: int | None = None,
    crop: str | None = None,
    options: Mapping[str, Any] | None = None,
    num_workers: int = 0,
    self_cropping: bool = True,
    trained: TrainConfig | None = None,
) -> DataConfig:
    """The data ``hopose eval`` reads: the named dataset, at the checkpoint's image size.

    Args:
        checkpoint: the checkpoint to evaluate (its training config gives ``image_size`` and
            the default ``crop``).
        name, root, cache: the dataset, as in :class:`~hopose.config.DataConfig`.
        seed: synthetic: the base seed of the splits.
        split: the split to read (``test_split`` of the result); None: the checkpoint's
            ``data.test_split`` where ``name`` is the dataset it was trained on (HO-3D's
            ``evaluation``), else "test".
        num: synthetic: frames to generate; real data: keep the first ``num`` (None: all).
        crop: "resize" or "square"; None: the checkpoint's. The lifter reads each frame's K,
            so a crop it was not trained with still gives 3D in the camera frame.
        options: the dataset constructor's own keyword arguments, as ``data.options`` in a
            config (e.g. ``{"focal_scale": 1.6}`` for synthetic data), over the checkpoint's
            :func:`hopose.data.loader_options` where ``name`` is the dataset it was trained
            on: its FPHA protocol, DexYCB setup or HO-3D version says which frames its test
            split holds (ObMan's ``shapenet_root`` where they lie). Synthetic data's camera
            and grasp mix, the crops' margin and ``on_error`` are not inherited.
        num_workers: processes that read the frames or render the self-crops' views.
        self_cropping: False where the protocol self-crops nothing (``gt_2d`` or ``gt_box`` of
            :func:`run_eval`).
        trained: the training config ``checkpoint`` holds, where the caller has read it
            (:func:`hopose.checkpoint.load_model`'s, which ``hopose eval`` passes on to
            :func:`run_eval` too: the file is read once); None: read from ``checkpoint``.

    Raises:
        ValueError: ``crop`` given for a model that self-crops: :func:`run_eval` reads its
            frames whole whatever ``crop`` says.
    """
    if trained is None:
        trained = checkpoint_config(checkpoint, load_checkpoint(checkpoint))
    trained_data = trained.data
    # run_eval reads a self-cropping model's frames whole ("resize"): a crop asked for would
    # be dropped without a word, so it is refused, naming the protocol that does crop so.
    if crop is not None and SelfCropping.of(trained_data, enabled=self_cropping).passes:
        raise ValueError(
            f"crop: {checkpoint} self-crops its test frames from whole frames, so {crop!r} "
            "would not be used; for squares around the true hand and box use --gt-box"
        )
    # Another protocol's default test split could hold the model's training frames (FPHA's
    # action split against the HOPE-Net split's, say), and its score would not say so.
    own = trained_data.name == name
    inherited = {k: v for k, v in trained_data.options.items() if own and k in loader_options(name)}
    return DataConfig(
        name=name,
        root=root,
        cache=cache,
        test_split=split or (trained_data.test_split if own else _test_split(name)),
        image_size=trained_data.image_size,
        crop=trained_data.crop if crop is None else crop,
        num_train=num,
        num_val=num,
        num_test=num,
        seed=seed,
        num_workers=num_workers,
        options={**inherited, **(options or {})},
    )


def check_gt_2d(name: str, split: str, option: str = "gt_2d") -> None:
    """Refuse the ground-truth 2D protocol on a split without the hand's labels
    (:func:`hopose.data.ho3d.hand_labelled`), naming ``option`` (``--gt-2d`` from the command
    line): the lifter would read the missing joints' NaN 2D, its box come out NaN and be scored
    inf, as a diverged prediction is.

    Args:
        name: the dataset (:data:`hopose.data.DATASETS`).
        split: its split.
        option: the name of the protocol's switch in the message.
    """
    if not hand_labelled(name, split):
        raise ValueError(
            f"{option}: {name}'s {split!r} split {WITHHELD}, and the lifter would read the "
            "missing joints' 2D (NaN: its box scored inf); evaluate this split from its images, "
            "which writes the upload the server scores, or feed ground-truth 2D from a "
            "labelled split"
        )


def without_jitter(data: DataConfig) -> DataConfig:
    """A training config's ``data`` as an evaluation reads it: without the training crops'
    jitter (``options.jitter``), an augmentation that no test frame gets."""
    options = {key: value for key, value in data.options.items() if key != "jitter"}
    return dataclasses.replace(data, options=options)


def run_eval(
    checkpoint: str | Path,
    data: DataConfig,
    split: str | None,
    out_dir: str | Path,
    *,
    gt_2d: bool = False,
    gt_box: bool = False,
    batch_size: int = EVAL_BATCH_SIZE,
    device: torch.device | str = "auto",
    report: bool = True,
    per_frame: bool = False,
    plausibility: bool | None = None,
    refine: bool = False,
    complete_grasp: bool = False,
    self_crop_margin: float | None = None,
    single_view: bool = False,
    self_crop_names: tuple[str, str] = SELF_CROP_PARAMETERS,
    loaded: tuple[HoposeNet, TrainConfig] | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a split; write ``predictions.npz``, ``metrics.json``, a report
    and, where a benchmark's own code reads one, its file (HO-3D's upload of its withheld
    ``evaluation`` split, DexYCB's toolkit results: :func:`hopose.submission.write_submission`).

    Args:
        checkpoint: a checkpoint written by :mod:`hopose.train`.
        data: the dataset (its ``image_size`` and ``crop`` should match the training run's),
            without ``options.jitter`` (a training config's: :func:`without_jitter`); its
            ``num_workers`` processes read the records or render the self-crops' views.
        split: the split to evaluate; None: ``data.test_split`` (:func:`eval_data_config`
            sets it).
        out_dir: output folder (created); an earlier evaluation's files in it are replaced,
            a ``metrics.json`` of anything else refused (:func:`check_output_folder`).
        gt_2d: feed ground-truth 2D to the lifter (paper Table 2 protocol).
        gt_box: from the images of the squares ground truth places around hand and object
            (``data.crop`` set to "square"), not self-cropped, whatever the model was trained
            on: the ground-truth-box protocol of papers that crop so, labelled ``gt_box``.
        batch_size: frames per forward pass.
        device: where to run: "auto" (a GPU when there is one, else the CPU; the default, as
            training's), "cpu", "cuda" or "cuda:N" (:data:`hopose.config.AUTO_DEVICES`) of a
            GPU this machine has.
        report: also write report.md, per_frame.csv and the figures of :mod:`hopose.report`.
        per_frame: without ``report``, still write per_frame.csv (what ``hopose compare``
            reads; the ablations' rows), without the figures.
        plausibility: score the physical plausibility (contacts, affinity, penetration, grasp
            quality, cuboid-ness); the grasp quality's hulls are most of an evaluation's time.
            None: only when writing the report.
        refine: refine the predicted 3D with :func:`hopose.refine.refine_predictions` before
            scoring, with :func:`hopose.refine.refine_weights` (a weaker 2D term from images);
            ``metrics.json`` then also holds the unrefined scores under ``unrefined``.
        complete_grasp: with ``refine``, its grasp-completion stage
            (:attr:`hopose.refine.RefineWeights.complete_grasp`).
        self_crop_margin: the self-crops' margin instead of the checkpoint's
            ``data.self_crop_margin``, to choose one on a validation split (docs/training.md,
            "Self-crop margin"); None: the checkpoint's.
        single_view: predict from the last self-crop's one square, not averaged over the
            checkpoint's test-time views (:meth:`hopose.self_crop.SelfCropping.of`).
        self_crop_names: the names of ``self_crop_margin`` and ``single_view`` in their
            refusals (``hopose eval`` gives its options': ``--self-crop-margin``,
            ``--single-view``).
        loaded: the network and training config :func:`hopose.checkpoint.load_model` read from
            ``checkpoint`` with ``from_images`` as ``not gt_2d``, where the caller has them
            (``hopose eval``, which read the file once for :func:`eval_data_config` too); None:
            read here.

    Returns:
        The summary written to ``metrics.json``: :func:`hopose.scoring.summarize`'s numbers and
        the run's description: ``protocol`` ("gt_2d": ground-truth 2D to the lifter; "gt_box":
        from the images of squares that ground truth places, ``crop`` "square" without
        self-cropping; "image": from the images, whole frames or self-cropped), ``crop`` (the
        records' geometry), ``self_crop`` (self-cropping passes, 0 for none),
        ``self_crop_margin`` and ``self_crop_views`` (the last crop's views), ``refined``,
        ``grasp_completed``, ``image_size`` (the network's), ``dataset``, ``split``,
        ``options`` (every loader option of the dataset, defaults included, but the jitter no
        evaluation takes), ``seed`` (synthetic data's), ``num`` (the frames asked for, None
        for all), ``whole_split`` (whether a real split was read whole:
        :func:`hopose.data.splits.whole_split`; None for synthetic data), ``root`` and
        ``cache`` (where they were read from), ``checkpoint`` (the three resolved: absolute,
        as ``hopose prepare`` records its root),
        ``hopose_version``, ``torch_version`` and ``device`` (where the network ran, a GPU
        with its name).

    Raises:
        ConfigError: ``device`` is not a device, or a GPU this machine lacks.
        ValueError: ``complete_grasp`` without ``refine``, ``gt_box`` with ``gt_2d``,
            ``gt_2d`` on a split without the hand's labels (:func:`check_gt_2d`),
            ``data.options.jitter`` on, a split without frames, or a ``self_crop_margin`` that
            ``data.self_crop_margin`` could not hold, or given where nothing is self-cropped,
            as ``single_view``; a ``metrics.json`` in ``out_dir`` that is not an
            evaluation's (:func:`check_output_folder`), before the checkpoint is read; another
            evaluation writing to ``out_dir`` (:func:`evaluation_folder`), before the
            inference.
    """
    split = data.test_split if split is None else split
    check_device(str(device), "device", AUTO_DEVICES)
    device = resolve_device(str(device))
    if (jitter := data.options.get("jitter", False)) is not False:  # a string too: refused
        raise ValueError(
            f"data.options.jitter: {jitter!r}: jittered crops are a training augmentation; an "
            "evaluation reads the test frames without it"
        )
    if gt_2d and gt_box:
        raise ValueError("gt_box: the ground-truth 2D protocol reads no image to crop")
    if gt_2d:
        check_gt_2d(data.name, split)
    weights = refinement(refine, complete_grasp, from_images=not gt_2d)
    check_output_folder(Path(out_dir))
    model, trained = load_model(checkpoint, from_images=not gt_2d) if loaded is None else loaded
    model.to(device)
    # A model trained on crops reads test frames by self-cropping, never through a crop that
    # ground truth places: the records come whole (their 2D and K in the whole frame's image).
    cropping = SelfCropping.of(
        trained.data, enabled=not (gt_2d or gt_box), margin=self_crop_margin,
        single_view=single_view, names=self_crop_names,
    )  # fmt: skip
    iterations = cropping.passes
    if iterations:  # whole records, and the dataset itself, whose views the crops render
        data = dataclasses.replace(data, crop="resize", in_memory=False)
    if gt_box:
        data = dataclasses.replace(data, crop="square")
    # Self-cropping renders its own views of each frame (from ``frames``): its records need no
    # image, and the frames are read for the views alone.
    dataset = build_split(data, split, with_images=not gt_2d and not iterations)
    frames = build_split(data, split, with_images=True) if iterations else dataset
    if len(dataset) == 0:
        where = data.cache or data.root or f"seed {data.seed}"
        raise ValueError(f"split: {data.name} {split!r} at {where} has no frames to evaluate")
    if iterations and _view_source(frames) is None:
        raise ValueError(
            f"{data.cache}: self-cropping from images cuts its views from whole frames, which "
            f"these cached records do not hold: evaluate {data.name} without the cache (from "
            f"data.root, or rendered for synthetic data), or with --gt-2d"
        )
    # Made before the inference, which a path that cannot be a folder would otherwise lose, and
    # held to the last file: two evaluations writing one folder would leave one's metrics.json
    # beside the other's predictions; a second one is refused before its inference.
    with evaluation_folder(out_dir) as out_dir:
        check_output_folder(out_dir)  # again, held: a demo may have written there since
        predictions = predict_split(
            model, dataset, gt_2d=gt_2d, cropping=cropping, batch_size=batch_size, device=device,
            num_workers=data.num_workers, frames=frames,
        )  # fmt: skip
        # Square records read without self-cropping (asked for, or of a model that reads whole
        # frames) are cut around the true hand and box: ground truth places them (the
        # ground-truth-box protocol), which the label must say.
        boxed = not gt_2d and not iterations and data.crop == "square"
        protocol = PROTOCOL_GT_2D if gt_2d else PROTOCOL_GT_BOX if boxed else PROTOCOL_IMAGE
        plausibility = report if plausibility is None else plausibility
        unrefined = None
        if weights is not None:
            predictions = refine_predictions(predictions, weights)
            raw = {**predictions, "pred_hand_3d": predictions["unrefined_hand_3d"],
                   "pred_obj_3d": predictions["unrefined_obj_3d"]}  # fmt: skip
            unrefined = score(raw, protocol=protocol, plausibility=plausibility)
        clear_evaluation(out_dir)
        write_atomic(
            out_dir / PREDICTIONS_FILE, lambda tmp: np.savez_compressed(tmp, **predictions)
        )
        # A server's file holds predictions that read no ground truth.
        if protocol == PROTOCOL_IMAGE:
            write_submission(data, split, predictions, out_dir)
        description = _description(
            data, split, protocol=protocol, cropping=cropping, refine=refine,
            complete_grasp=complete_grasp, frames=frames, checkpoint=checkpoint, device=device,
        )  # fmt: skip
        return write_scores(
            out_dir, predictions, description, plausibility=plausibility, report=report,
            per_frame=per_frame, image_size=data.image_size, dataset=None if gt_2d else frames,
            unrefined=unrefined,
        )  # fmt: skip


def _description(
    data: DataConfig,
    split: str,
    *,
    protocol: str,
    cropping: SelfCropping,
    refine: bool,
    complete_grasp: bool,
    frames: Dataset,
    checkpoint: str | Path,
    device: str,
) -> dict[str, Any]:
    """The entries of an evaluation's summary that describe it (:func:`run_eval`'s Returns):
    of ``frames``, the records of ``split`` that ``data`` read, predicted by ``checkpoint``
    on ``device`` under ``protocol``, self-cropped as ``cropping`` says."""
    iterations = cropping.passes
    return {
        PROTOCOL: protocol,
        CROP: data.crop,
        SELF_CROP: iterations,
        SELF_CROP_MARGIN: cropping.margin if iterations else None,
        SELF_CROP_VIEWS: len(cropping.views) if iterations else None,
        REFINED: refine,
        GRASP_COMPLETED: refine and complete_grasp,
        IMAGE_SIZE: data.image_size,
        DATASET: data.name,
        SPLIT: split,
        # Every loader option, defaults included: the protocol, setup or version that says
        # which frames the split holds (docs/datasets.md: every result names its protocol).
        OPTIONS: {k: v for k, v in {**option_defaults(data.name), **data.options}.items()
                  if k != "jitter"},
        # What reads the same frames again: synthetic data's seed, the frames asked for (None:
        # all) and where they were read from; the paths resolved, so that the record names its
        # inputs wherever it is read from.
        SEED: data.seed,
        NUM: split_size(data, split),
        WHOLE_SPLIT: whole_split(frames, data.name),
        ROOT: recorded_path(data.root),
        CACHE: recorded_path(data.cache),
        CHECKPOINT: recorded_path(checkpoint),
        **_environment(device),
    }  # fmt: skip


def _versions() -> dict[str, str]:
    """The software that scores (and, in an evaluation, predicts)."""
    return {HOPOSE_VERSION: __version__, TORCH_VERSION: str(torch.__version__)}


def _environment(device: str) -> dict[str, str]:
    """The software and the device that computed an evaluation's predictions."""
    name = (
        f"{device} ({torch.cuda.get_device_name(device)})" if device.startswith("cuda") else device
    )
    return {**_versions(), DEVICE: name}


def check_output_folder(out_dir: Path) -> None:
    """Refuse an ``out_dir`` whose ``metrics.json`` is not an evaluation's, which
    :func:`clear_evaluation` would delete: a demo's, whose results and checks it holds
    (:mod:`hopose.demo`, beside its model), or one that is no JSON object. An evaluation's (or
    ``hopose score``'s) is told by ``n``, the frames scored, which :func:`hopose.scoring.summarize`
    always writes and the demo's (``n_test``) does not hold.

    Raises:
        ValueError: one line naming the file.
    """
    path = out_dir / METRICS_FILE
    if not path.exists():
        return
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        summary = None
    if not (isinstance(summary, dict) and N_FRAMES in summary):
        raise ValueError(
            f"{path}: not an evaluation's {METRICS_FILE} (no '{N_FRAMES}', the frames scored: "
            "a demo's, say), and would be replaced; choose another --out"
        )


@contextlib.contextmanager
def evaluation_folder(out_dir: str | Path) -> Iterator[Path]:
    """``out_dir`` made a folder (:func:`hopose.files.output_folder`) and held by this process
    (:data:`LOCK_FILE`, :func:`hopose.files.folder_lock`) until the block ends: one evaluation
    (``hopose eval``, ``hopose score``) writes a folder at a time, so that its files are of one.

    Raises:
        ValueError: naming ``out_dir`` and :data:`LOCK_FILE` while another process holds it.
    """
    out_dir = output_folder(out_dir)
    with folder_lock(out_dir, LOCK_FILE, "another evaluation"):
        yield out_dir


def clear_evaluation(out_dir: Path) -> None:
    """Create ``out_dir`` and delete an earlier evaluation's outputs from it: ``metrics.json``,
    the benchmarks' files and the report's (:func:`hopose.report.remove_report`). A folder holds
    one evaluation's files, and ``metrics.json``, written last, only beside all of them; the
    callers refuse first a ``metrics.json`` of something else (:func:`check_output_folder`)."""
    output_folder(out_dir)
    for name in (METRICS_FILE, *BENCHMARK_FILES):
        (out_dir / name).unlink(missing_ok=True)
    remove_report(out_dir)


def write_scores(
    out_dir: Path,
    predictions: Mapping[str, Any],
    description: Mapping[str, Any],
    *,
    plausibility: bool,
    report: bool,
    per_frame: bool = False,
    image_size: int,
    dataset: Dataset | None = None,
    unrefined: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Score ``predictions`` and write their ``metrics.json`` (last) and report into
    ``out_dir``: what ``hopose eval`` does after its inference, and ``hopose score`` with a
    file's predictions.

    Args:
        out_dir: the folder, made and cleared by the caller (:func:`clear_evaluation`).
        predictions: the arrays of :func:`predict_split` (:data:`PREDICTION_ARRAYS`).
        description: the run's entries of the summary (:func:`run_eval`'s Returns), after the
            scores; its ``protocol`` says which arrays are scored
            (:func:`hopose.scoring.frame_metrics`).
        plausibility: also score the physical plausibility (the slow part).
        report: write the report (:func:`hopose.report.write_report`).
        per_frame: without the report, still write ``per_frame.csv`` (what ``hopose compare``
            reads).
        image_size, dataset: the report's (the gallery's canvas, and its images if any).
        unrefined: the unrefined predictions' scores, after ``--refine``.

    Returns:
        The summary written to ``metrics.json``.
    """
    # Per-frame columns once, for the summary and the report: the grasp quality's convex hulls
    # are the slow part of an evaluation.
    protocol = description.get(PROTOCOL)
    columns = frame_metrics(predictions, protocol=protocol, plausibility=plausibility)
    summary = {**summarize(columns), **description}
    if unrefined is not None:
        summary[UNREFINED] = dict(unrefined)
    if report:
        write_report(
            out_dir, predictions, summary, columns=columns, image_size=image_size, dataset=dataset
        )
    elif per_frame:
        write_per_frame_csv(out_dir / PER_FRAME_FILE, columns)
    write_text(out_dir / METRICS_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def _shape_text(shape: tuple[int, ...]) -> str:
    """An array's expected shape with N frames: ``(N, 21, 3)``, ``(N,)``."""
    return f"(N, {', '.join(map(str, shape))})" if shape else "(N,)"


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``predictions.npz``, checked against :data:`PREDICTION_ARRAYS`.

    Raises:
        FileNotFoundError, IsADirectoryError: ``path`` is not a file
            (:func:`hopose.files.require_file`).
        ValueError: one line naming the file (and the array): not an ``.npz`` of named arrays,
            an array missing, of another shape, not of numbers (``id``: any), or of another
            number of frames than ``id``; a camera (:data:`CAMERA_ARRAYS`) not finite; no
            frames.
    """
    require_file(path, "predictions.npz")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("one array, not named arrays")
        with loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a predictions.npz of hopose eval ({error})") from None
    frames = None
    for key, shape in PREDICTION_ARRAYS.items():
        if key not in arrays:
            if key in OPTIONAL_ARRAYS:
                continue
            where = 'docs/evaluation.md, "Scoring other predictions"'
            raise ValueError(f"{path}: no '{key}' array, {_shape_text(shape)} ({where})")
        array = arrays[key]
        if array.shape[1:] != shape or array.ndim != len(shape) + 1:
            raise ValueError(f"{path}: '{key}' has shape {array.shape}, not {_shape_text(shape)}")
        if key != "id" and array.dtype.kind not in "fiu":
            raise ValueError(f"{path}: '{key}' holds {array.dtype} values, not numbers")
        frames = len(array) if frames is None else frames
        if len(array) != frames:
            raise ValueError(f"{path}: '{key}' holds {len(array)} frames, 'id' {frames}")
        if key in CAMERA_ARRAYS and not np.isfinite(array).all():
            frame = np.flatnonzero(~np.isfinite(array).all(axis=(1, 2)))[0]
            raise ValueError(
                f"{path}: '{key}' is not finite (NaN or inf) in frame {frame} (id "
                f"{str(arrays['id'][frame])!r})"
            )
    if not frames:
        raise ValueError(f"{path}: no frames (its arrays are empty)")
    return arrays


def score_file(
    path: str | Path, out_dir: str | Path, *, plausibility: bool = True
) -> dict[str, Any]:
    """Score a ``predictions.npz`` as ``hopose eval`` scores its own predictions
    (:func:`write_scores`) into ``out_dir``: ``metrics.json``, ``per_frame.csv`` and the report
    (``hopose score``; docs/evaluation.md, "Scoring other predictions").

    The file is one ``hopose eval`` wrote, its ``pred_*`` arrays replaced by another method's.
    The frames' description (:data:`FRAME_KEYS`: dataset, split, protocol, ...) is carried
    over from the ``metrics.json`` beside it, where there is one (``whole_split`` false unless
    the file holds the frames that evaluation scored), and ``scored`` names the file
    (resolved); the network's (``checkpoint``, self-cropping, refinement, device) is not.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_predictions`, and as
            :func:`hopose.report.read_summary` for the ``metrics.json`` beside the file (an
            entry of another type, naming it); ``out_dir`` the file's own folder, whose
            evaluation it would replace, or another evaluation's (it holds a
            ``predictions.npz``), whose predictions it would delete; then a ``metrics.json``
            in ``out_dir`` that is not an evaluation's (:func:`check_output_folder`); another
            evaluation writing to ``out_dir`` (:func:`evaluation_folder`). Each before anything
            in ``out_dir`` is removed.
    """
    path, out_dir = Path(path), Path(out_dir)
    _check_score_folder(path, out_dir)
    predictions = read_predictions(path)
    evaluation = read_summary(path.parent)
    check_output_folder(out_dir)
    description = {key: evaluation[key] for key in FRAME_KEYS if key in evaluation}
    if description.get(WHOLE_SPLIT) and not _evaluations_frames(
        predictions["id"], path, evaluation
    ):
        # Some of the split's frames (a method that failed on others) are not the split that
        # the paper's tables were measured on (hopose.report.paper_comparable).
        description[WHOLE_SPLIT] = False
    description |= {SCORED: recorded_path(path), **_versions()}
    # The gallery's blank canvas: the network image's side, or (a file without its evaluation's
    # metrics.json) twice the largest principal point, about as large.
    canvas = int(np.ceil(2 * np.max(predictions["K"][:, :2, 2], initial=1.0)))
    with evaluation_folder(out_dir):
        # Again, held: an evaluation may have written there since.
        _check_score_folder(path, out_dir)
        check_output_folder(out_dir)
        clear_evaluation(out_dir)
        return write_scores(
            out_dir, predictions, description, plausibility=plausibility, report=True,
            image_size=evaluation.get(IMAGE_SIZE, canvas),
        )  # fmt: skip


def _evaluations_frames(ids: np.ndarray, path: Path, evaluation: Mapping[str, Any]) -> bool:
    """Whether the frames ``ids`` of the file ``path`` are those its evaluation scored
    (``evaluation``, its summary): as many (``n``), and, where the evaluation's own
    ``predictions.npz`` lies beside ``path``, the same ids in any order."""
    if len(ids) != evaluation.get(N_FRAMES):
        return False
    own = path.parent / PREDICTIONS_FILE
    if not own.is_file() or own.resolve() == path.resolve():
        return True
    try:
        with np.load(own, allow_pickle=False) as loaded:
            scored = loaded["id"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return False
    return np.array_equal(np.sort(scored), np.sort(ids))


def _check_score_folder(path: Path, out_dir: Path) -> None:
    """Refuse to score ``path`` into ``out_dir`` where that would replace an evaluation's files
    or leave them beside others (:func:`score_file`'s Raises)."""
    if out_dir.resolve() == path.parent.resolve():
        raise ValueError(
            f"--out: {out_dir} holds {path.name}, whose evaluation's files would be replaced; "
            "choose another folder"
        )
    if (out_dir / PREDICTIONS_FILE).exists():
        raise ValueError(
            f"--out: {out_dir} holds another evaluation's {PREDICTIONS_FILE}, which would be "
            "deleted with its files; choose another folder"
        )
