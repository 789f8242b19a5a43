"""The paper's ablations (hopose.ablate): the tables' layout, which runs each study trains
and evaluates with which config, the tables written after every run (partial until the last),
and what a resumed study reads back (an evaluation whose record matches the run's last.pt)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from torch import nn

from hopose import ablate, demo, viz
from hopose.checkpoint import load_checkpoint, progress_checkpoint, save_checkpoint
from hopose.cli import main
from hopose.configs import find_config
from hopose.report import METRICS_FILE
from hopose.run_folder import LAST_CHECKPOINT, RunError
from tiny_runs import TINY

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")


def fake_run(monkeypatch, errors: dict[str, tuple[float, float]]):
    """Replace training and evaluation with records of what the ablation asked for.

    As the real ones do, a training leaves a ``last.pt`` of ``optim.epochs`` epochs (a resume
    of a run of as many leaves it untouched) and an evaluation a ``metrics.json``: what a
    resumed study reads back."""
    calls = []

    class Result:
        checkpoint = "best.pt"

    def fake_train(cfg, out_dir, *, split_cache, resume=False):
        calls.append(cfg)
        last, epochs = Path(out_dir) / LAST_CHECKPOINT, cfg.optim.epochs
        if not (resume and last.is_file() and load_checkpoint(last)["epoch"] == epochs):
            last.parent.mkdir(parents=True, exist_ok=True)
            progress = progress_checkpoint(
                nn.Identity(), cfg, trained=(), epoch=epochs, best=1.0, best_epoch=epochs - 1
            )
            save_checkpoint(progress, last)
        return Result()

    def fake_eval(
        checkpoint, data, split, out_dir, *, gt_2d, report, per_frame=False, plausibility=None
    ):
        cfg = calls[-1]
        key = cfg.model.lifter if cfg.model.lifter == "graph_unet" else cfg.model.lifter_variant
        if "physical" in errors:  # the physics study: rows by loss, errors grow with the seed
            key = "physical" if cfg.loss.physical else "mse"
        hand, obj = errors[key]
        hand, obj = hand + cfg.seed, obj + 2 * cfg.seed
        # Every plausibility number of the prediction is the hand error, the truth's 7.
        metrics = {f"{who}_{name}": hand if who == "pred" else 7.0 for who in ("pred", "gt")
                   for name in ("valid_contacts", "affinity", "penetration_mm", "force_closure",
                                "grasp_epsilon")}  # fmt: skip
        summary = {"hand_mean_mm": hand, "object_mean_mm": obj, "n": 5, "gt_2d": gt_2d, **metrics}
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / METRICS_FILE).write_text(json.dumps(summary))
        return summary

    monkeypatch.setattr(ablate, "train", fake_train)
    monkeypatch.setattr(demo, "train", fake_train)  # stages 1-2 of the physics study
    monkeypatch.setattr(ablate, "run_eval", fake_eval)
    return calls


def test_lifter_ablation_has_table_2s_rows_and_dashes(tmp_path, monkeypatch):
    errors = {
        "graph_unet": (20.0, 30.0),
        "hand": (11.0, 99.0),
        "object": (99.0, 12.0),
        "full": (10.0, 11.0),
    }
    calls = fake_run(monkeypatch, errors)
    table = ablate.run_ablation("lifter", tmp_path, seed=3)
    assert [(c.stage, c.model.lifter, c.model.lifter_variant) for c in calls] == [
        ("lifter", "graph_unet", "full"),
        ("lifter", "context", "hand"),
        ("lifter", "context", "object"),
        ("lifter", "context", "full"),
    ]
    assert all(c.data.seed == 3 for c in calls)
    lines = table.splitlines()
    # A variant without a part has no error for it (the 99s never show), as in the paper.
    assert "| Adaptive Graph U-Net | 20.00 | 30.00 | 14.36 | 21.65 |" in lines
    assert "| Hand Sub-graph Only | 11.00 | – | 12.22 | – |" in lines
    assert "| Object Sub-graph Only | – | 12.00 | – | 14.41 |" in lines
    assert "| Full Graph | 10.00 | 11.00 | 10.38 | 13.85 |" in lines
    assert (tmp_path / "ablation_lifter.md").read_text() == table


def test_lifter_ablation_shows_a_diverged_row_as_inf_and_no_value_as_a_dash(tmp_path, monkeypatch):
    # The ablation tables format their cells as the report does (hopose.report.format_number):
    # an infinite mean (a diverged run) reads "inf", a NaN one (no ground truth) "–".
    errors = {key: (10.0, 11.0) for key in ("graph_unet", "hand", "object")}
    fake_run(monkeypatch, errors | {"full": (float("inf"), float("nan"))})
    table = ablate.run_ablation("lifter", tmp_path, seed=0)
    assert "| Full Graph | inf | – | 10.38 | 13.85 |" in table.splitlines()


def test_lifter_ablation_trains_every_row_from_scratch(tmp_path, monkeypatch):
    """fpha/lifter fine-tunes the ObMan checkpoint, a full context lifter: loaded into the Graph
    U-Net or a one-part variant, its weights do not fit (the study stopped at its first row)."""
    errors = {key: (1.0, 1.0) for key in ("graph_unet", "hand", "object", "full")}
    calls = fake_run(monkeypatch, errors)
    assert find_config("fpha/lifter").read_text().count("init_from: runs/obman/end2end") == 1
    ablate.run_ablation("lifter", tmp_path, data="fpha", root=str(tmp_path))
    assert [(c.data.name, c.init_from) for c in calls] == [("fpha", None)] * 4


def test_physics_ablation_fine_tunes_one_checkpoint_with_and_without_the_loss(
    tmp_path, monkeypatch
):
    calls = fake_run(monkeypatch, {"mse": (13.0, 21.0), "physical": (12.5, 19.5)})
    init = tmp_path / "encoder.pt"
    init.touch()
    monkeypatch.setattr(ablate, "load_model", lambda path, from_images: None)  # read up front
    table = ablate.run_ablation("physics", tmp_path, init=str(init), seeds=2, sources=("image",))
    assert [(c.stage, c.loss.physical, c.init_from, c.seed) for c in calls] == [
        ("end2end", False, str(init), 0),
        ("end2end", True, str(init), 0),
        ("end2end", False, str(init), 1),
        ("end2end", True, str(init), 1),
    ]
    # Both rows train the MSE Table 3 names, though the demo's end-to-end config trains on
    # distances (loss.l3d_distance: euclidean, w_3d 80).
    assert {(c.loss.l3d_distance, c.loss.w_3d) for c in calls} == {("squared", 1.0)}
    lines = table.splitlines()
    # Hand errors 13, 14 (MSE) and 12.5, 13.5 (physical) over seeds 0, 1: means 13.5 and 13.0.
    assert "| MSE | 13.50 | 22.00 | 12.83 | 20.83 |" in lines
    assert "| MSE + Physical loss | 13.00 | 20.50 | 12.53 | 19.09 |" in lines
    # std of (13, 14) with ddof 1 = sqrt(0.5) = 0.707; the paired differences are -0.5 twice.
    assert "| Hand error (mm) | 13.500 ± 0.707 | 13.000 ± 0.707 | -0.500 ± 0.000 | – |" in lines
    # Objects 21, 23 against 19.5, 21.5: difference -1.5 for both seeds.
    assert "| Object error (mm) | 22.000 ± 1.414 | 20.500 ± 1.414 | -1.500 ± 0.000 | – |" in lines
    assert (
        "| Force-closure rate | 13.500 ± 0.707 | 13.000 ± 0.707 | -0.500 ± 0.000 | 7.000 |" in lines
    )


def test_physics_ablation_on_ground_truth_2d_trains_the_lifter_per_seed(tmp_path, monkeypatch):
    calls = fake_run(monkeypatch, {"mse": (10.0, 11.0), "physical": (10.0, 11.0)})
    table = ablate.run_ablation("physics", tmp_path, seeds=3, sources=("gt_2d",))
    assert [(c.stage, c.loss.physical, c.seed) for c in calls] == [
        (stage, physical, seed) for seed in range(3) for stage, physical in
        (("lifter", False), ("lifter", True))
    ]  # fmt: skip
    assert "the lifter on ground-truth 2D" in table
    assert "| Hand error (mm) | 11.000 ± 1.000 | 11.000 ± 1.000 | 0.000 ± 0.000 | – |" in table


@pytest.mark.filterwarnings("error")  # numpy warned of the std of an infinite value
def test_physics_table_shows_a_seed_without_a_value_as_a_dash_and_a_diverged_one_as_inf():
    # No object ground truth (NaN) in any seed, and seed 1 of MSE diverged on the hand: the cells
    # read "nan ± nan" and "inf ± nan", not docs/evaluation.md's "–" and "inf".
    def run(hand: float) -> dict[str, float]:
        return {key: 0.5 for metric in ablate.PHYSICS_METRICS for key in metric[:2] if key} | {
            "hand_mean_mm": hand,
            "object_mean_mm": float("nan"),
        }

    runs = {"MSE": [run(20.0), run(float("inf"))], "MSE + Physical loss": [run(21.0), run(22.0)]}
    lines = ablate.physics_table(runs).splitlines()
    assert lines[2:5] == [
        "| Hand error (mm) | inf | 21.500 ± 0.707 | -inf | – |",
        "| Object error (mm) | – | – | – | – |",
        "| Valid contacts per frame | 0.500 ± 0.000 | 0.500 ± 0.000 | 0.000 ± 0.000 | 0.500 |",
    ]


def test_physics_ablation_fine_tunes_an_init_given_relative_by_its_absolute_path(
    tmp_path, monkeypatch
):
    """--init spelled relative: each row's init_from names the file absolute, so that the
    study resumes from another folder or with another spelling of it."""
    calls = fake_run(monkeypatch, {"mse": (13.0, 21.0), "physical": (12.5, 19.5)})
    monkeypatch.chdir(tmp_path)
    Path("encoder.pt").touch()
    monkeypatch.setattr(ablate, "load_model", lambda path, from_images: None)  # read up front
    ablate.run_ablation("physics", "study", init="./encoder.pt", seeds=1, sources=("image",))
    absolute = str(tmp_path.resolve() / "encoder.pt")
    assert [(c.loss.physical, c.init_from) for c in calls] == [(False, absolute), (True, absolute)]


def test_physics_ablation_from_the_images_trains_stages_once_per_seed(tmp_path, monkeypatch):
    calls = fake_run(monkeypatch, {"mse": (13.0, 21.0), "physical": (12.5, 19.5)})
    caches, fake_train = [], ablate.train

    def train(cfg, out_dir, *, split_cache, resume=False):
        caches.append(split_cache)
        return fake_train(cfg, out_dir, split_cache=split_cache, resume=resume)

    monkeypatch.setattr(ablate, "train", train)
    monkeypatch.setattr(demo, "train", train)
    ablate.run_ablation("physics", tmp_path, seeds=2, sources=("image",))
    # Per seed: the lifter and encoder stages, then both rows from that seed's encoder.
    assert [(c.stage, c.loss.physical, c.seed) for c in calls] == [
        (stage, physical, seed) for seed in range(2) for stage, physical in
        (("lifter", False), ("encoder", False), ("end2end", False), ("end2end", True))
    ]  # fmt: skip
    # The encoder stage's best.pt (fake_run's, relative), made absolute.
    assert calls[2].init_from == calls[3].init_from == str(Path("best.pt").resolve())
    # One study, one set of splits: every stage of every seed shares the same cache.
    assert len(caches) == 8 and all(cache is caches[0] for cache in caches)


def test_ablate_num_sizes_every_split_over_quick(monkeypatch, tmp_path):
    calls = fake_run(
        monkeypatch,
        {k: (1.0, 1.0) for k in ("graph_unet", "hand", "object", "full")},
    )
    args = ["ablate", "lifter", "--data", "synthetic", "--num", "40", "--quick"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert len(calls) == 4
    # --quick alone gives 512 / 64 / 64 frames; --num replaces all three.
    assert {(c.data.num_train, c.data.num_val, c.data.num_test) for c in calls} == {(40, 40, 40)}


def test_ablate_refuses_a_missing_init_before_any_row_trains(tmp_path, capsys, monkeypatch):
    # With --input both, the gt_2d rows trained first and the missing file was found after.
    calls = fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    missing, out = tmp_path / "no_such.pt", tmp_path / "a"
    args = ["ablate", "physics", "--data", "synthetic", "--input", "both", "--init", str(missing)]
    assert main([*args, "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"hopose ablate: error: --init: {missing}: no such file\n"
    assert calls == [] and not out.exists()


def test_ablate_refuses_an_unreadable_init_before_any_row_trains(tmp_path, capsys, monkeypatch):
    """A truncated --init was only checked for existence: its error came after every gt_2d row
    had trained. It is read first, and the error names it."""
    calls = fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    broken, out = tmp_path / "half.pt", tmp_path / "a"
    broken.write_bytes(b"PK\x03\x04 not the rest of a checkpoint")
    args = ["ablate", "physics", "--data", "synthetic", "--input", "both", "--init", str(broken)]
    assert main([*args, "--out", str(out)]) == 1
    (message,) = capsys.readouterr().err.splitlines()
    assert message.startswith(f"hopose ablate: error: {broken}: ")
    assert calls == [] and not out.exists()


def test_ablate_set_overrides_every_row_but_not_what_defines_it(tmp_path, monkeypatch):
    calls = fake_run(monkeypatch, dict.fromkeys(("graph_unet", "hand", "object", "full"), (1, 1)))
    # The lifter study sets no seed itself: a --set of it reaches every row.
    values = ["optim.lr=0.5", "init_from=obman.pt", "seed=3"]
    sets = [arg for value in values for arg in ("--set", value)]
    assert main(["ablate", "lifter", "--data", "synthetic", *sets, "--out", str(tmp_path)]) == 0
    rows = [(c.optim.lr, c.init_from, c.seed, c.model.lifter, c.model.lifter_variant)
            for c in calls]  # fmt: skip
    assert rows == [
        (0.5, "obman.pt", 3, "graph_unet", "full"),
        (0.5, "obman.pt", 3, "context", "hand"),
        (0.5, "obman.pt", 3, "context", "object"),
        (0.5, "obman.pt", 3, "context", "full"),
    ]


@pytest.mark.parametrize(
    ("study", "inputs", "value", "why"),
    [
        ("lifter", [], "model.lifter=graph_unet", "every row of the lifter study sets it itself"),
        ("lifter", [], "model.lifter_variant=hand", "every row of the lifter study sets it"),
        ("physics", ["--input", "gt_2d"], "loss.w_3d=5", "every row of the physics study sets"),
        ("physics", ["--input", "gt_2d"], "loss.physical=true", "every row of the physics study"),
        ("physics", ["--input", "both"], "seed=7", "the physics study sets each run's seed"),
        ("physics", ["--input", "image", "--init", "e.pt"], "init_from=null", "every run of the"),
        ("lifter", [], "augment.colour=0.3", "no run of the lifter study reads it"),
        ("physics", ["--input", "image", "--init", "e.pt"], "perturb.sigma=0.05", "no run of"),
    ],
    ids=[
        "lifter", "variant", "w_3d", "physical", "seed", "init_from", "lifter-augment",
        "fine-tuning-perturb",
    ],
)  # fmt: skip
def test_an_ablations_set_that_would_change_no_run_is_refused(
    tmp_path, capsys, monkeypatch, study, inputs, value, why
):
    """A row's own settings and the physics study's seed come after the --set and win: such a
    --set trained every run as without it (a Graph U-Net asked for, the four lifters trained;
    seed 7 asked for, seeds 0, 1, 2), and is refused before any row trains. So is a checkpoint
    to start from where every run fine-tunes --init, and a field no run reads: the lifter study
    reads no images, and fine-tuning from --init reads no ground-truth 2D."""
    calls = fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    monkeypatch.setattr(ablate, "load_model", lambda path, from_images: None)
    (tmp_path / "e.pt").touch()
    monkeypatch.chdir(tmp_path)
    args = ["ablate", study, "--data", "synthetic", *inputs, "--set", value]
    assert main([*args, "--out", str(tmp_path / "a")]) == 1
    (message,) = capsys.readouterr().err.splitlines()
    key = value.split("=")[0]
    assert message.startswith(f"hopose ablate: error: --set {key}: {why}")
    assert calls == [] and not (tmp_path / "a").exists()


def test_an_ablations_set_init_from_reaches_the_runs_that_do_not_fine_tune_init(
    tmp_path, monkeypatch
):
    """Where --init is fine-tuned by the image rows, a --set init_from still starts the
    ground-truth-2D rows (and, without --init, stage 1), so it is no row's own setting there."""
    calls = fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    monkeypatch.setattr(ablate, "load_model", lambda path, from_images: None)
    init = tmp_path / "e.pt"
    init.touch()
    sets = ["--set", "init_from=start.pt", "--seeds", "1", "--out", str(tmp_path / "a")]
    args = ["ablate", "physics", "--data", "synthetic", "--input", "both", "--init", str(init)]
    assert main([*args, *sets]) == 0
    starts = [(c.stage, c.init_from) for c in calls]
    assert starts == [("lifter", "start.pt")] * 2 + [("end2end", str(init))] * 2


def test_an_ablations_set_reaches_the_runs_whose_stage_reads_the_field(tmp_path, monkeypatch):
    """A stage refuses a field it never reads set away from its default: the perturbation of
    ground-truth 2D goes to the lifter's runs only, the image augmentation to the image
    stages' only, and the rest to every run."""
    calls = fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    values = ["perturb.sigma=0.05", "augment.noise=0.01", "optim.lr=0.5"]
    sets = [arg for value in values for arg in ("--set", value)]
    args = ["ablate", "physics", "--data", "synthetic", "--seeds", "1", *sets]
    assert main([*args, "--out", str(tmp_path)]) == 0
    stages = {c.stage: (c.perturb.sigma, c.augment.noise, c.optim.lr) for c in calls}
    assert stages == {
        "lifter": (0.05, 0.0, 0.5),
        "encoder": (0.0, 0.01, 0.5),
        "end2end": (0.0, 0.01, 0.5),
    }


def test_an_ablations_set_that_a_stages_config_refuses_stops_it_before_any_row_trains(
    tmp_path, capsys, monkeypatch
):
    """The paper's linear head without ``loss.w_heatmap=0``: the encoder and end-to-end configs
    refuse the demo's heat-map weight with it, which was found only at the encoder stage, after
    every ground-truth-2D row had trained; every stage's config is now read first."""
    calls = fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    sets = ["--set", "model.head=linear", "--set", "model.segmentation=false"]
    sets += ["--set", "loss.w_segmentation=0"]
    args = ["ablate", "physics", "--data", "synthetic", "--input", "both", *sets]
    assert main([*args, "--out", str(tmp_path / "a")]) == 1
    (message,) = capsys.readouterr().err.splitlines()
    assert re.match(
        r"hopose ablate: error: --set model\.head=linear: loss\.w_heatmap: model\.head linear "
        "makes no heat maps",
        message,
    )
    assert calls == [] and not (tmp_path / "a").exists()


def test_a_set_that_one_row_of_table_3_refuses_stops_the_study_before_its_first_row(
    tmp_path, capsys, monkeypatch
):
    """A lifter of the hand sub-graph alone trains the MSE row but not the physical loss's,
    which needs hand and box: that row's config, read with its own settings before any row
    trains, stops the study (the MSE row trained first, then the study failed)."""
    calls = fake_run(monkeypatch, {"mse": (1.0, 1.0), "physical": (1.0, 1.0)})
    args = ["ablate", "physics", "--data", "synthetic", "--input", "gt_2d"]
    args += ["--set", "model.lifter_variant=hand", "--out", str(tmp_path / "a")]
    assert main(args) == 1
    (message,) = capsys.readouterr().err.splitlines()
    assert message.endswith("loss.physical needs model.lifter_variant: full (the physical loss "
                            "is between the lifted hand and box), got 'hand'")  # fmt: skip
    assert calls == [] and not (tmp_path / "a").exists()


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("data", ["synthetic", "obman", "fpha", "dexycb"])
def test_every_row_of_both_studies_loads_for_every_recipe(tmp_path, monkeypatch, data, quick):
    """Every run's config of every shipped recipe loads, both studies, quick or not: a config
    refuses a field its settings leave unread, so no row's switch may leave one set."""
    errors = dict.fromkeys(("graph_unet", "hand", "object", "full", "mse", "physical"), (1, 1))
    calls = fake_run(monkeypatch, errors)
    options = {"data": data, "quick": quick}
    options |= {} if data == "synthetic" else {"root": str(tmp_path)}
    ablate.run_ablation("lifter", tmp_path / "lifter", **options)
    assert [(c.model.lifter, c.model.lifter_variant) for c in calls] == [
        ("graph_unet", "full"),
        ("context", "hand"),
        ("context", "object"),
        ("context", "full"),
    ]
    calls.clear()
    ablate.run_ablation("physics", tmp_path / "physics", seeds=1, **options)
    # The gt_2d rows, then stages 1-2 (trained as they are) and the image rows.
    assert [(c.stage, c.loss.physical) for c in calls] == [
        ("lifter", False),
        ("lifter", True),
        ("lifter", False),
        ("encoder", False),
        ("end2end", False),
        ("end2end", True),
    ]


def test_ablate_resume_reads_finished_rows_back_and_resumes_the_others(
    tmp_path, monkeypatch, capsys
):
    """A study that failed after its first row's evaluation and its second row's training: a
    rerun into the same --out is refused without --resume; with it, no row trains again, and
    only the second row is evaluated."""
    monkeypatch.setattr(ablate, "QUICK_OVERRIDES", {"lifter": TINY})
    args = ["ablate", "physics", "--data", "synthetic", "--quick", "--seeds", "1"]
    args += ["--input", "gt_2d", "--out", str(tmp_path)]
    evaluated, run_eval = [], ablate.run_eval

    def evaluate(checkpoint, data, split, out_dir, **kwargs):
        evaluated.append(Path(out_dir).parent.name)
        if evaluated == ["mse", "mse_physical_loss"]:
            raise OSError("disk full")
        return run_eval(checkpoint, data, split, out_dir, **kwargs)

    monkeypatch.setattr(ablate, "run_eval", evaluate)
    assert main(args) == 1
    seed_dir = tmp_path / "gt_2d" / "seed0"
    mse, physical = seed_dir / "mse", seed_dir / "mse_physical_loss"
    assert (mse / "eval" / "metrics.json").is_file() and (physical / "last.pt").is_file()
    assert not (physical / "eval").exists()
    assert (
        (tmp_path / "ablation_physics.md")
        .read_text()
        .startswith(
            "Partial: 1 of 2 runs finished; still missing: MSE + Physical loss (gt_2d, seed 0).\n"
        )
    )
    capsys.readouterr()
    assert main(args) == 1
    assert capsys.readouterr().err == (
        f"hopose ablate: error: {mse}: holds a run (last.pt); continue it with --resume or "
        "choose another --out\n"
    )
    trained, train = [], ablate.train

    def resumed(cfg, out_dir, **kwargs):
        trained.append((Path(out_dir).name, kwargs["resume"]))
        return train(cfg, out_dir, **kwargs)

    monkeypatch.setattr(ablate, "train", resumed)
    epochs = {run: (run / "metrics.csv").read_text() for run in (mse, physical)}
    evaluated.clear()
    assert main([*args, "--resume"]) == 0
    assert trained == [("mse", True), ("mse_physical_loss", True)]
    assert evaluated == ["mse_physical_loss"]
    assert {run: (run / "metrics.csv").read_text() for run in (mse, physical)} == epochs
    rows = json.loads((tmp_path / "ablation_physics.json").read_text())
    for row, run in zip(rows, (mse, physical), strict=True):
        summary = json.loads((run / "eval" / "metrics.json").read_text())
        assert row["hand"] == summary["hand_mean_mm"]


LIFTER_ERRORS = {
    "graph_unet": (20.0, 30.0),
    "hand": (11.0, 99.0),
    "object": (99.0, 12.0),
    "full": (10.0, 11.0),
}


def _evaluations(monkeypatch, *, failing: int | None = None) -> list[str]:
    """Record the folder of every evaluation asked for; the ``failing``-th (1-based) raises,
    as a full disk would."""
    evaluated, evaluate = [], ablate.run_eval

    def recorded(checkpoint, data, split, out_dir, **kwargs):
        evaluated.append(Path(out_dir).parent.name)
        if len(evaluated) == failing:
            raise OSError("disk full")
        return evaluate(checkpoint, data, split, out_dir, **kwargs)

    monkeypatch.setattr(ablate, "run_eval", recorded)
    return evaluated


def test_a_study_that_fails_in_its_second_row_leaves_the_first_marked_partial(
    tmp_path, monkeypatch
):
    """The tables are written after every row, partial until the last: a study that fails in
    its second row leaves the first row's table and numbers, naming the rows still missing;
    resumed, it writes the very files a study run straight through writes."""
    fake_run(monkeypatch, LIFTER_ERRORS)
    straight = tmp_path / "straight"
    table = ablate.run_ablation("lifter", straight)
    _evaluations(monkeypatch, failing=2)
    out = tmp_path / "failed"
    with pytest.raises(OSError, match="disk full"):
        ablate.run_ablation("lifter", out)
    missing = ["Hand Sub-graph Only", "Object Sub-graph Only", "Full Graph"]
    assert (out / "ablation_lifter.md").read_text() == (
        f"Partial: 1 of 4 runs finished; still missing: {', '.join(missing)}.\n\n"
        "Table 2 layout: mean 3D error (mm) with ground-truth 2D input, synthetic test split "
        "(5 frames); paper: FPHA-HO.\n\n"
        "| Network | Hand error (mm) | Object error (mm) | Paper hand | Paper object |\n"
        "|:--|--:|--:|--:|--:|\n"
        "| Adaptive Graph U-Net | 20.00 | 30.00 | 14.36 | 21.65 |\n"
    )
    first = {"name": "Adaptive Graph U-Net", "hand": 20.0, "object": 30.0,
             "paper": [14.36, 21.65], "n": 5}  # fmt: skip
    assert json.loads((out / "ablation_lifter.json").read_text()) == {
        "partial": True,
        "missing": missing,
        "rows": [first],
    }
    fake_run(monkeypatch, LIFTER_ERRORS)
    assert ablate.run_ablation("lifter", out, resume=True) == table
    for name in ("ablation_lifter.md", "ablation_lifter.json"):
        assert (out / name).read_bytes() == (straight / name).read_bytes()
    assert json.loads((out / "ablation_lifter.json").read_text())[0] == first


def test_a_physics_study_stopped_part_way_shows_each_loss_over_its_finished_seeds(
    tmp_path, monkeypatch
):
    """Stopped in seed 1's MSE run, the physics study leaves both losses over seed 0 (MSE hand
    10 + 0, physical 9 + 0: paired difference -1) and names seed 1's two runs as missing;
    stopped in seed 0's physical run, the MSE row alone, with no paired statistics."""
    fake_run(monkeypatch, {"mse": (10.0, 11.0), "physical": (9.0, 10.0)})
    _evaluations(monkeypatch, failing=3)
    with pytest.raises(OSError, match="disk full"):
        ablate.run_ablation("physics", tmp_path, seeds=2, sources=("gt_2d",))
    lines = (tmp_path / "ablation_physics.md").read_text().splitlines()
    assert lines[0] == (
        "Partial: 2 of 4 runs finished; still missing: MSE (gt_2d, seed 1), "
        "MSE + Physical loss (gt_2d, seed 1)."
    )
    assert "mean over 1 seeds" in lines[2]
    assert "| MSE | 10.00 | 11.00 | 12.83 | 20.83 |" in lines
    assert "| MSE + Physical loss | 9.00 | 10.00 | 12.53 | 19.09 |" in lines
    assert "| Hand error (mm) | 10.000 ± 0.000 | 9.000 ± 0.000 | -1.000 ± 0.000 | – |" in lines
    numbers = json.loads((tmp_path / "ablation_physics.json").read_text())
    assert [(row["name"], row["input"], len(row["seeds"])) for row in numbers["rows"]] == [
        ("MSE", "gt_2d", 1),
        ("MSE + Physical loss", "gt_2d", 1),
    ]

    fake_run(monkeypatch, {"mse": (10.0, 11.0), "physical": (9.0, 10.0)})
    _evaluations(monkeypatch, failing=2)
    with pytest.raises(OSError, match="disk full"):
        ablate.run_ablation("physics", tmp_path / "early", seeds=2, sources=("gt_2d",))
    text = (tmp_path / "early" / "ablation_physics.md").read_text()
    assert text.startswith("Partial: 1 of 4 runs finished; still missing: MSE + Physical loss")
    assert "mean over the seeds finished so far" in text
    assert "| MSE | 10.00 | 11.00 | 12.83 | 20.83 |" in text.splitlines()
    assert "MSE + Physical loss |" not in text and "Paired difference" not in text


def _evaluations_of_a_resume(monkeypatch, out: Path, overrides=()) -> tuple[list[str], str]:
    """Resume the lifter study in ``out`` with every row's evaluation changed (hand error 50),
    so that a row read back keeps its old numbers; returns the rows evaluated and the table."""
    fake_run(monkeypatch, dict.fromkeys(LIFTER_ERRORS, (50.0, 60.0)))
    evaluated = _evaluations(monkeypatch)
    table = ablate.run_ablation("lifter", out, overrides=list(overrides), resume=True)
    return evaluated, table


def _set_times(out: Path, name: str, seconds: float) -> None:
    """Give every row's ``eval/<name>`` the modification time ``seconds`` from now."""
    stamp = time.time() + seconds
    for path in out.glob(f"*/eval/{name}"):
        os.utime(path, (stamp, stamp))


def test_a_resume_evaluates_again_a_row_whose_record_is_of_fewer_epochs_than_last_pt(
    tmp_path, monkeypatch
):
    """optim.epochs raised for the resume: every run trains on to a last.pt of 31 epochs, and
    its evaluation of 30 is stale by its record (evaluated.json), though the files' times say
    otherwise (metrics.json and the record a day in the future)."""
    fake_run(monkeypatch, LIFTER_ERRORS)
    ablate.run_ablation("lifter", tmp_path)
    assert json.loads((tmp_path / "full_graph" / "eval" / ablate.EVALUATED_FILE).read_text()) == {
        "epoch": 30,
        "best_epoch": 29,
        "best": 1.0,
    }
    for name in (METRICS_FILE, ablate.EVALUATED_FILE):
        _set_times(tmp_path, name, 86400)
    evaluated, table = _evaluations_of_a_resume(monkeypatch, tmp_path, ["optim.epochs=31"])
    assert evaluated == ["adaptive_graph_u_net", "hand_sub_graph_only",
                         "object_sub_graph_only", "full_graph"]  # fmt: skip
    assert "| Full Graph | 50.00 | 60.00 | 10.38 | 13.85 |" in table.splitlines()
    record = json.loads((tmp_path / "full_graph" / "eval" / ablate.EVALUATED_FILE).read_text())
    assert record["epoch"] == 31


def test_a_resume_reads_back_an_evaluation_whose_record_matches_last_pt_whatever_its_time(
    tmp_path, monkeypatch
):
    """A finished study resumed as it was: every evaluation's record matches its run's last.pt,
    so none runs again and the table keeps its numbers, though metrics.json is dated a day
    before last.pt (a copied folder, a coarse clock)."""
    fake_run(monkeypatch, LIFTER_ERRORS)
    table = ablate.run_ablation("lifter", tmp_path)
    _set_times(tmp_path, METRICS_FILE, -86400)
    evaluated, resumed = _evaluations_of_a_resume(monkeypatch, tmp_path)
    assert evaluated == [] and resumed == table


def test_a_resume_evaluates_again_a_row_killed_before_its_evaluation_was_recorded(
    tmp_path, monkeypatch
):
    """metrics.json without evaluated.json (the study killed between the two): that row alone
    is evaluated again, though its metrics.json is newer than its last.pt."""
    fake_run(monkeypatch, LIFTER_ERRORS)
    ablate.run_ablation("lifter", tmp_path)
    (tmp_path / "hand_sub_graph_only" / "eval" / ablate.EVALUATED_FILE).unlink()
    _set_times(tmp_path, METRICS_FILE, 86400)
    evaluated, table = _evaluations_of_a_resume(monkeypatch, tmp_path)
    assert evaluated == ["hand_sub_graph_only"]
    assert "| Hand Sub-graph Only | 50.00 | – | 12.22 | – |" in table.splitlines()
    assert "| Full Graph | 10.00 | 11.00 | 10.38 | 13.85 |" in table.splitlines()


def test_a_resume_refuses_a_damaged_evaluation_naming_its_file(tmp_path, monkeypatch):
    """A row's metrics.json cut short (a copy stopped half-way) beside a record that matches
    its last.pt: the resume stops in one line naming that file, not json's "Expecting ','
    delimiter" naming none."""
    fake_run(monkeypatch, LIFTER_ERRORS)
    ablate.run_ablation("lifter", tmp_path)
    damaged = tmp_path / "hand_sub_graph_only" / "eval" / METRICS_FILE
    damaged.write_text(damaged.read_text()[:20])
    with pytest.raises(ValueError, match=re.escape(f"{damaged}: not a metrics.json of hopose")):
        _evaluations_of_a_resume(monkeypatch, tmp_path)


def test_the_physics_table_labels_every_plausibility_metric_the_report_shows():
    """Table 3's rows come from the report's plausibility metrics: one the report adds needs a
    label (or None, no row) here, so the two tables cannot drift apart."""
    from hopose.report import PLAUSIBILITY_ROWS

    assert set(ablate.PHYSICS_LABELS) == {name for name, _, _ in PLAUSIBILITY_ROWS}


@pytest.mark.slow  # two tiny trainings: about 3 s
def test_hopose_compare_reads_two_rows_of_a_study(tmp_path, monkeypatch):
    """Each row's evaluation writes per_frame.csv beside its metrics.json, without the report's
    figures, so `hopose compare` reads the rows (it stopped at ".../per_frame.csv: not found"):
    here the two losses of a one-seed physics study on ground-truth 2D, each shown with its own
    mean hand error and how it was evaluated, its plausibility columns kept (computed anyway)."""
    monkeypatch.setattr(ablate, "QUICK_OVERRIDES", {"lifter": TINY})
    monkeypatch.setattr(viz, "save_figure", lambda figure, path: None)  # the comparison's plots
    args = ["ablate", "physics", "--data", "synthetic", "--quick", "--seeds", "1"]
    assert main([*args, "--input", "gt_2d", "--out", str(tmp_path / "abl")]) == 0
    seed_dir = tmp_path / "abl" / "gt_2d" / "seed0"
    rows = [seed_dir / name / "eval" for name in ("mse", "mse_physical_loss")]
    assert main(["compare", *map(str, rows), "--out", str(tmp_path / "cmp")]) == 0
    text = (tmp_path / "cmp" / "compare.md").read_text()
    hands = [json.loads((row / METRICS_FILE).read_text())["hand_mean_mm"] for row in rows]
    assert f"| Hand pose error (mm) | {hands[0]:.2f} | {hands[1]:.2f} |" in text
    assert text.count("(16 frames): synthetic test split, ground-truth 2D to the lifter") == 2
    for row in rows:
        header = (row / "per_frame.csv").read_text().splitlines()[0].split(",")
        assert "pred_grasp_epsilon" in header
        assert not (row / "figures").exists() and not (row / "report.md").exists()


def test_ablate_resume_of_a_folder_without_a_study_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys
):
    """`hopose ablate --resume` with an --out that holds no study (a typo) ran the whole study
    afresh and exited 0; it is refused as `hopose demo --resume` refuses it, one line naming the
    folder, before anything is trained or made."""
    calls = fake_run(monkeypatch, LIFTER_ERRORS)
    out = tmp_path / "typo"
    args = ["ablate", "lifter", "--data", "synthetic", "--quick", "--out", str(out), "--resume"]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        f"hopose ablate: error: --resume: {out} holds no lifter study to continue (none of its "
        "row folders adaptive_graph_u_net, hand_sub_graph_only, object_sub_graph_only, "
        "full_graph holds last.pt, best.pt or metrics.csv); drop --resume to start one\n"
    )
    with pytest.raises(RunError) as error:
        ablate.run_ablation("physics", out, seeds=1, resume=True)
    assert str(error.value) == (
        f"--resume: {out} holds no physics study to continue (none of its run folders under "
        "gt_2d, image holds last.pt, best.pt or metrics.csv); drop --resume to start one"
    )
    assert calls == [] and not out.exists()


class _PastTheCheck(Exception):
    """Raised where a study makes its folder: after its resume's check."""


@pytest.mark.parametrize(
    ("study", "errors", "options", "runs"),
    [
        ("lifter", LIFTER_ERRORS, {}, 4),
        # Per seed, gt_2d: its 2 rows; image: stages 1-2 and its 2 rows.
        ("physics", {"mse": (13.0, 21.0), "physical": (12.5, 19.5)}, {"seeds": 2}, 2 * 2 + 2 * 4),
    ],
)
def test_a_resume_finds_a_study_by_any_one_of_its_runs(
    tmp_path, monkeypatch, study, errors, options, runs
):
    """A study killed in any of its runs resumes: every folder a study trains a run in is one
    the resume's check looks in (a folder holding that run alone passes it), and none else."""
    fake_run(monkeypatch, errors)
    ablate.run_ablation(study, tmp_path / "whole", **options)
    trained = [path.parent.relative_to(tmp_path / "whole") for path in
               (tmp_path / "whole").rglob(LAST_CHECKPOINT)]  # fmt: skip
    assert len(trained) == runs

    def past_the_check(path):
        raise _PastTheCheck

    monkeypatch.setattr(ablate, "output_folder", past_the_check)
    for k, run in enumerate(trained):
        out = tmp_path / f"one{k}"
        (out / run).mkdir(parents=True)
        (out / run / "metrics.csv").write_text("epoch\n")  # killed before its first last.pt
        with pytest.raises(_PastTheCheck):
            ablate.run_ablation(study, out, resume=True, **options)
    (tmp_path / "other" / "elsewhere").mkdir(parents=True)
    (tmp_path / "other" / "elsewhere" / LAST_CHECKPOINT).write_bytes(b"")
    with pytest.raises(RunError, match="holds no"):
        ablate.run_ablation(study, tmp_path / "other", resume=True, **options)


def test_a_dataset_folder_whose_name_yaml_would_misread_reaches_every_row(tmp_path, monkeypatch):
    """`--root` went into the rows' configs as `data.root=<path>` unquoted: a folder named
    `data: set #1` read as a YAML mapping (or was cut at `#`). Quoted, and absolute as the
    demo's paths, every row reads the folder given."""
    calls = fake_run(
        monkeypatch, {key: (1.0, 1.0) for key in ("graph_unet", "hand", "object", "full")}
    )
    root = tmp_path / "data: set #1"
    root.mkdir()
    ablate.run_ablation("lifter", tmp_path / "out", data="fpha", root=str(root))
    assert [c.data.root for c in calls] == [str(root.resolve())] * 4


@pytest.mark.parametrize("study", ["lifter", "physics"])
def test_a_study_of_ho3d_whose_test_split_holds_only_the_wrist_is_refused(
    tmp_path, monkeypatch, study
):
    """ho3d's configs test on its 'evaluation' split, whose hand is only the wrist: every row's
    hand read "-" and its object, lifted from NaN 2D, inf (or a number for the object
    sub-graph, which reads no hand node), a table ranking the rows without a word. Refused
    before any run or folder."""
    calls = fake_run(monkeypatch, dict.fromkeys(("graph_unet", "hand", "object", "full"), (1, 1)))
    with pytest.raises(ValueError) as error:
        ablate.run_ablation(study, tmp_path / "a", data="ho3d", root=str(tmp_path), seeds=1)
    assert str(error.value).endswith(
        "data.test_split: ho3d's 'evaluation' split holds only the wrist (HO-3D keeps the rest "
        "for its server), and an ablation scores the hand and the box against their labels; "
        "ablate another dataset"
    )
    assert calls == [] and not (tmp_path / "a").exists()


@pytest.mark.parametrize("study", ["lifter", "physics"])
def test_a_study_asks_the_data_whether_its_test_split_holds_the_hand(tmp_path, monkeypatch, study):
    """The refusal is the data's answer (hopose.data.ho3d.hand_labelled), not a comparison of
    the dataset's name and split of the ablation's own: a split it calls unlabelled is refused
    whatever the dataset, and HO-3D is ablated on a split it calls labelled."""
    errors = dict.fromkeys(("graph_unet", "hand", "object", "full"), (1, 1))
    calls = fake_run(monkeypatch, errors)
    monkeypatch.setattr(ablate, "hand_labelled", lambda name, split: name != "fpha")
    with pytest.raises(ValueError, match=r"^data\.test_split: fpha's 'test' split holds "):
        ablate.run_ablation(study, tmp_path / "a", data="fpha", root=str(tmp_path), seeds=1)
    assert calls == [] and not (tmp_path / "a").exists()
    monkeypatch.setattr(ablate, "hand_labelled", lambda name, split: True)
    ablate.run_ablation(study, tmp_path / "b", data="ho3d", root=str(tmp_path), seeds=1)
    assert calls and all(cfg.data.name == "ho3d" for cfg in calls)
