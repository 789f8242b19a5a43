"""Run folders: the metrics CSV's rows, the folder's lock, and what a fresh run and a resume
accept."""

from __future__ import annotations

import re

import pytest

from hopose import run_folder
from hopose.config import ConfigError, config_to_dict
from hopose.run_folder import RunError
from tiny_runs import tiny


def test_metrics_rows_never_land_under_another_header(tmp_path):
    path = tmp_path / "metrics.csv"
    run_folder.append_csv(path, {"epoch": 1, "train/2d": 0.5})
    with pytest.raises(RunError, match=r"metrics\.csv: its columns"):
        run_folder.append_csv(path, {"epoch": 2, "train/2d": 0.4, "train/physical": 0.1})
    assert path.read_text().splitlines() == ["epoch,train/2d", "1,0.5"]


def test_a_failed_row_write_leaves_the_metrics_as_they_were(tmp_path, monkeypatch):
    """A full disk (or a kill) while a row is written leaves the old rows, no partial row."""
    path = tmp_path / "metrics.csv"
    run_folder.append_csv(path, {"epoch": 1, "train/2d": 0.5})
    before = path.read_text()

    def disk_full(self, row):
        self.writer.writerow([row["epoch"]])  # part of the row, then the error
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_folder.csv.DictWriter, "writerow", disk_full)
    with pytest.raises(OSError):
        run_folder.append_csv(path, {"epoch": 2, "train/2d": 0.4})
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temporary file left


def test_a_held_run_lock_refuses_a_second_holder_and_is_released_on_exit(tmp_path):
    """The lock is exclusive: a second holder is refused while the first holds it (two shared
    locks would both be granted, and two trainings would write one folder), and it is released
    when the first one's run ends."""
    refused = pytest.raises(RunError, match="another training is writing to this folder")
    with run_folder.run_lock(tmp_path), refused, run_folder.run_lock(tmp_path):
        pass
    with run_folder.run_lock(tmp_path):  # released: taken again
        pass


def test_resume_accepts_a_change_of_every_field_it_may_change_and_of_no_other(tmp_path):
    """Each of RESUME_MAY_CHANGE changed at once passes; one other field changed (the batch
    size, which changes what an epoch computes) is refused, naming both values."""
    path = tmp_path / "last.pt"
    saved = {"config": config_to_dict(tiny("lifter"))}
    changed = tiny(
        "lifter", "optim.epochs=7", "optim.val_every=3", "optim.checkpoint_minutes=5",
        "data.num_workers=2", "device=auto", "num_threads=2",
    )  # fmt: skip
    # Not vacuous: the two configs differ in exactly the fields that may change.
    old, new = (
        run_folder._flatten(saved["config"]),
        run_folder._flatten(config_to_dict(changed)),
    )
    assert {key for key in old if old[key] != new[key]} == set(run_folder.RESUME_MAY_CHANGE)
    run_folder.check_resumable(changed, saved, path)
    with pytest.raises(RunError, match=r"with optim\.batch_size=16, the config asks 32;"):
        run_folder.check_resumable(tiny("lifter", "optim.batch_size=32"), saved, path)


def test_resume_compares_loader_options_with_the_datasets_defaults_filled_in(tmp_path):
    """synthetic's free_fraction defaults to 0.2 (hopose.data.option_defaults): written out in
    the run's config or in the resumed one, and left out in the other, it is the same run, which
    resumes; 0.3 on either side is a change, refused naming the option and both values with the
    default filled in (it read "free_fraction=None, the config asks 0.2")."""
    path = tmp_path / "last.pt"
    written, left_out = tiny("lifter", "data.options.free_fraction=0.2"), tiny("lifter")
    assert left_out.data.options == {}  # not vacuous: the option is absent from one side
    for old, new in [(left_out, written), (written, left_out)]:
        run_folder.check_resumable(new, {"config": config_to_dict(old)}, path)
    other = tiny("lifter", "data.options.free_fraction=0.3")
    with pytest.raises(
        RunError, match=r"with data\.options\.free_fraction=0\.2, the config asks 0\.3;"
    ):
        run_folder.check_resumable(other, {"config": config_to_dict(left_out)}, path)
    with pytest.raises(
        RunError, match=r"with data\.options\.free_fraction=0\.3, the config asks 0\.2;"
    ):
        run_folder.check_resumable(left_out, {"config": config_to_dict(other)}, path)


def test_resume_refuses_a_field_the_runs_config_lacks(tmp_path):
    """A field the run's saved config does not hold (written before the field existed) differs
    from the config's value: refused like any other change, not skipped, as the run cannot say
    it trained with that value."""
    cfg = tiny("lifter")
    saved = {"config": config_to_dict(cfg)}
    del saved["config"]["optim"]["step_size"]
    step = cfg.optim.step_size
    with pytest.raises(RunError, match=rf"with optim\.step_size=None, the config asks {step};"):
        run_folder.check_resumable(cfg, saved, tmp_path / "last.pt")


def test_resume_reads_an_older_runs_model_image_size_as_its_data_image_size(tmp_path):
    """A run trained while the image side had two homes saved model.image_size beside
    data.image_size (32 both in the tiny runs): it resumes; one saved with the two unequal,
    which no hopose wrote, is refused naming the field."""
    cfg = tiny("lifter")
    saved = {"config": config_to_dict(cfg)}
    saved["config"]["model"]["image_size"] = cfg.data.image_size
    run_folder.check_resumable(cfg, saved, tmp_path / "last.pt")
    saved["config"]["model"]["image_size"] = 2 * cfg.data.image_size
    with pytest.raises(
        ConfigError, match=r"model\.image_size \(64\) differs from data\.image_size"
    ):
        run_folder.check_resumable(cfg, saved, tmp_path / "last.pt")


LINEAR_HEAD = ("model.head=linear", "model.segmentation=false", "loss.w_segmentation=0")


@pytest.mark.parametrize(
    ("overrides", "field", "saved_value", "resumes"),
    [
        # An end-to-end run of an older hopose saved perturb.sigma=0.02, which its stage never
        # read; the lifter stage reads it.
        (("end2end",), "perturb.sigma", 0.02, True),
        (("lifter",), "perturb.sigma", 0.02, False),
        # A run with the paper's linear head saved the demo's loss.w_heatmap, which it never
        # read (no heat maps); the heat-map head reads it.
        (("encoder", *LINEAR_HEAD, "loss.w_heatmap=0"), "loss.w_heatmap", 1000.0, True),
        (("encoder", "loss.w_heatmap=0"), "loss.w_heatmap", 1000.0, False),
    ],
    ids=["end2end-sigma", "lifter-sigma", "linear-heatmap-weight", "heatmap-weight"],
)
def test_resume_passes_over_a_field_the_run_never_reads(
    tmp_path, overrides, field, saved_value, resumes
):
    """A run of an older hopose may have saved a field away from its default that the run never
    read and a config may no longer set: it resumes with the default. The same change where the
    run reads the field is refused, naming it."""
    cfg = tiny(*overrides)
    saved = {"config": config_to_dict(cfg)}
    section, _, key = field.partition(".")
    saved["config"][section][key] = saved_value
    if resumes:
        run_folder.check_resumable(cfg, saved, tmp_path / "last.pt")
    else:
        with pytest.raises(RunError, match=rf"with {re.escape(f'{field}={saved_value}')}, "):
            run_folder.check_resumable(cfg, saved, tmp_path / "last.pt")


def test_resume_refuses_switching_off_what_the_run_read_though_the_new_config_reads_it_not(
    tmp_path,
):
    """A lifter run perturbed with outliers (prob 0.05, sigma 0.1) resumed with both at 0: each
    leaves the other unread in the new config, but the run read both, so it is refused."""
    cfg = tiny("lifter", "perturb.outlier_prob=0.05", "perturb.outlier_sigma=0.1")
    saved = {"config": config_to_dict(cfg)}
    off = tiny("lifter")
    with pytest.raises(RunError, match=r"with perturb\.outlier_prob=0\.05, the config asks 0\.0;"):
        run_folder.check_resumable(off, saved, tmp_path / "last.pt")


def test_resume_needs_the_runs_number_of_processes_any_for_an_older_run(tmp_path):
    """last.pt records how many processes trained it, which a resume must have; a checkpoint of
    an older hopose, which recorded none, may have been a torchrun's of any count: it resumes
    with any, as it did then, rather than being refused with the count it most likely had."""
    path = tmp_path / "last.pt"
    run_folder.check_processes({"world_size": 2}, 2, path)
    with pytest.raises(RunError, match=r"last\.pt: was trained by 2 processes, this run has 1;"):
        run_folder.check_processes({"world_size": 2}, 1, path)
    with pytest.raises(RunError, match=r"last\.pt: was trained by 1 process, this run has 4;"):
        run_folder.check_processes({"world_size": 1}, 4, path)
    for processes in (1, 4):
        run_folder.check_processes({}, processes, path)


@pytest.mark.parametrize("left", ["config.yaml", "metrics.csv"])
def test_a_folder_with_config_or_metrics_alone_is_no_run_to_resume(tmp_path, left):
    """A run restarts with --resume only when killed after its first rows, before its first
    last.pt: it left both config.yaml (the config to restart with) and metrics.csv. Either
    alone (killed in its first epoch; files copied by hand) is no run to continue."""
    (tmp_path / left).write_text("x\n")
    with pytest.raises(RunError, match=r"last\.pt not found, there is no run to continue"):
        run_folder.check_run_folder(tmp_path, resume=True)


def test_a_row_of_the_same_columns_in_another_order_is_refused(tmp_path):
    """The csv writer lays a row out in its own keys' order: the same columns in another order
    would write 8.0 under train/2d and 0.4 under val/error of the file's header."""
    path = tmp_path / "metrics.csv"
    run_folder.append_csv(path, {"epoch": 1, "train/2d": 0.5, "val/error": 9.0})
    with pytest.raises(RunError, match=r"metrics\.csv: its columns"):
        run_folder.append_csv(path, {"epoch": 2, "val/error": 8.0, "train/2d": 0.4})
    assert path.read_text().splitlines() == ["epoch,train/2d,val/error", "1,0.5,9.0"]


def test_a_resume_drops_the_unclaimed_rows_past_a_blank_line(tmp_path):
    """A metrics.csv edited by hand, a blank line among its rows (csv reads it as an empty row,
    which had no epoch to read: an IndexError ended the resume): the blank line is no row, the
    row of epoch 2 after the checkpoint of epoch 1 is dropped all the same."""
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,lr\n1,0.1\n\n2,0.05\n")
    run_folder.drop_rows_after(path, 1)
    assert path.read_text().splitlines() == ["epoch,lr", "1,0.1"]


def test_a_metrics_row_whose_epoch_is_no_integer_is_one_line_naming_its_line(tmp_path):
    """Its epoch `x` on line 4, the blank line 3 counted as an editor counts it: refused naming
    the file, the line and the cell (it was int()'s "invalid literal", naming no file), and the
    file is left as it was."""
    path = tmp_path / "metrics.csv"
    text = "epoch,lr\n1,0.1\n\nx,0.05\n"
    path.write_text(text)
    with pytest.raises(RunError, match=r"metrics\.csv:4: epoch 'x' is not an integer"):
        run_folder.drop_rows_after(path, 1)
    assert path.read_text() == text


def test_a_folder_with_best_pt_but_no_last_pt_is_refused_by_resume(tmp_path):
    """last.pt lost (deleted by hand, a copy without it), best.pt, metrics.csv and config.yaml
    kept: --resume read the folder as a run killed before its first last.pt, trained again from
    epoch 1 and replaced the trained best.pt. best.pt is written after last.pt, so the run had
    one: there is no state to continue from, and the folder is refused, naming it."""
    for name in ("config.yaml", "metrics.csv", "best.pt"):
        (tmp_path / name).write_text("x\n")
    assert not run_folder.killed_before_checkpoint(tmp_path)
    with pytest.raises(RunError) as error:
        run_folder.check_run_folder(tmp_path, resume=True)
    assert str(error.value) == (
        f"--resume: {tmp_path} holds best.pt but no last.pt, cannot resume (best.pt holds no "
        "optimiser state, and a restart would replace it); start a new --out"
    )
    assert (tmp_path / "best.pt").read_text() == "x\n"


def test_a_fresh_run_refuses_a_folder_holding_best_pt_alone(tmp_path):
    """best.pt alone (last.pt and metrics.csv deleted to save space, or a folder of shipped
        weights): a fresh run took it for an empty folder and replaced the trained weights with its
        own first epoch's. It is a run's, refused naming the file, with no hint of a --resume (which
    refuses it too: no last.pt); best.pt is left as it was."""
    (tmp_path / "best.pt").write_text("x\n")
    with pytest.raises(RunError) as error:
        run_folder.check_run_folder(tmp_path, resume=False)
    assert str(error.value) == f"{tmp_path}: holds a run (best.pt); choose another --out"
    assert (tmp_path / "best.pt").read_text() == "x\n"


def test_resume_compares_a_path_field_as_the_file_it_names(tmp_path, monkeypatch):
    """A demo resumed with another spelling of its --out (./runs, an absolute path) gives its
    stage another spelling of the same init_from: the run resumes. Another file is refused;
    a relative path the run recorded is read from the current folder, as the run read it, and
    the message says so, since from another folder it names another file."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "encoder" / "last.pt"
    paths = ("init_from=runs/lifter/best.pt", "model.backbone_weights=weights.pt")
    saved = {"config": config_to_dict(tiny("encoder", *paths))}
    for init, weights in [
        ("./runs/lifter/best.pt", "./weights.pt"),
        ("runs/../runs/lifter/best.pt", "runs/../weights.pt"),
        (tmp_path / "runs" / "lifter" / "best.pt", tmp_path / "weights.pt"),
    ]:
        cfg = tiny("encoder", f"init_from={init}", f"model.backbone_weights={weights}")
        run_folder.check_resumable(cfg, saved, path)
    with pytest.raises(RunError) as error:
        run_folder.check_resumable(tiny("encoder", *paths[1:], "init_from=x.pt"), saved, path)
    assert str(error.value).startswith(
        f"{path}: was trained with init_from='runs/lifter/best.pt' (relative to the folder the "
        "run was started from), the config asks 'x.pt'; --resume continues"
    )
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path / "runs")  # the record now names runs/runs/lifter/best.pt
    absolute = f"init_from={tmp_path / 'runs' / 'lifter' / 'best.pt'}"
    with pytest.raises(RunError, match="relative to the folder the run was started from"):
        run_folder.check_resumable(tiny("encoder", paths[1], absolute), saved, path)
    run_folder.check_resumable(tiny("encoder", *paths), saved, path)  # the spelling it had
