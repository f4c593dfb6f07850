"""One run per run directory: the lock, refusing another run's checkpoints, overwrite, stale staging."""

import gc
import subprocess
import sys
import textwrap

import pytest
import torch

from prefrl.config import TrainConfig
from prefrl.engine import checkpoint as ckpt
from prefrl.engine.engine import Engine
from prefrl.errors import RunDirectoryError
from tests.conftest import ROOT

HOLD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {src!r})
    from prefrl.engine.checkpoint import RunLock
    RunLock({directory!r}).acquire()
    print("locked", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def holder(tmp_path):
    """Another process that holds the lock on tmp_path/run until the test ends."""
    directory = tmp_path / "run"
    directory.mkdir()
    process = subprocess.Popen([sys.executable, "-c", HOLD.format(src=str(ROOT / "src"), directory=str(directory))], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield directory, process.pid
    process.kill()
    process.wait()


def config(directory, **overrides):
    return TrainConfig(model="tiny", output_dir=str(directory), progress=False, **overrides)


def make_checkpoint(directory, step, recipe="reward"):
    staging = ckpt.fresh_staging(ckpt.staging_path(directory, step))
    ckpt.write_trainer_state(staging, {"step": step, "recipe": recipe})
    return ckpt.publish(staging, step)


def test_second_run_fails_at_start_up_naming_directory_and_pid(holder):
    directory, pid = holder
    with pytest.raises(RunDirectoryError) as error:
        Engine(config(directory), recipe="reward")
    assert str(directory) in str(error.value) and f"pid {pid}" in str(error.value)


def test_the_cli_reports_the_busy_directory_without_a_traceback(holder, capsys):
    from prefrl.cli import main

    directory, pid = holder
    code = main(["train", "reward", "model=tiny", "data=arithmetic", f"output_dir={directory}", "max_steps=1", "progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(directory) in err and f"pid {pid}" in err
    assert not (directory / "config.yaml").exists()


def test_a_directory_created_after_start_up_is_locked_at_start_run(tmp_path):
    directory = tmp_path / "run"
    engine = Engine(config(directory), recipe="reward")  # no directory yet: nothing created, nothing locked
    assert not directory.exists()
    directory.mkdir()
    other = subprocess.Popen([sys.executable, "-c", HOLD.format(src=str(ROOT / "src"), directory=str(directory))], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match=f"pid {other.pid}"):
            engine.start_run()
    finally:
        other.kill()
        other.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    directory = tmp_path / "run"
    directory.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (directory / ckpt.LOCK_FILE).write_text(f"{dead.pid}\n")
    engine = Engine(config(directory), recipe="reward")
    assert engine.run_lock is not None and engine.run_lock.took_over == dead.pid
    assert ckpt.lock_holder(directory) == __import__("os").getpid()
    assert f"took over the lock of pid {dead.pid}" in capsys.readouterr().out
    engine.finish()
    assert not (directory / ckpt.LOCK_FILE).exists()  # released at the end of the run


def test_lock_is_released_when_the_run_ends_and_reacquired_by_the_next(tmp_path):
    directory = tmp_path / "run"
    first = Engine(config(directory), recipe="reward")
    first.start_run()
    assert ckpt.lock_holder(directory) is not None
    first.finish()
    assert ckpt.lock_holder(directory) is None
    second = Engine(config(directory), recipe="reward")  # no checkpoints were written: nothing to refuse
    second.start_run()
    # a run of this process that died without finish() leaves its lock to the next run of this process
    third = Engine(config(directory), recipe="reward")
    assert third.run_lock is not None and third.run_lock.held and not second.run_lock.held
    del second
    gc.collect()
    assert ckpt.lock_holder(directory) is not None  # the old engine's clean-up does not drop the new lock
    third.finish()


def test_new_run_into_another_runs_checkpoints_is_refused(tmp_path):
    directory = tmp_path / "run"
    make_checkpoint(directory, 2)
    with pytest.raises(RunDirectoryError, match=r"holds another run's checkpoints \(step-00000002\).*resume=true.*overwrite=true"):
        Engine(config(directory), recipe="reward")
    assert ckpt.lock_holder(directory) is None  # refused: the lock is not kept
    resumed = Engine(config(directory, resume=True), recipe="reward")
    assert resumed.resume_dir == directory / ckpt.CHECKPOINT_DIR / "step-00000002"
    resumed.finish()
    with pytest.raises(RunDirectoryError, match=r"from a 'reward' run, not 'dpo'"):
        Engine(config(directory, resume=True), recipe="dpo")


def test_overwrite_clears_the_old_run_before_the_new_one_starts(tmp_path):
    directory = tmp_path / "run"
    make_checkpoint(directory, 2)
    make_checkpoint(directory, 4)
    (directory / "metrics.jsonl").write_text('{"step": 1, "train/loss": 1.0}\n')
    (directory / "model").mkdir()
    (directory / "notes.txt").write_text("mine")
    engine = Engine(config(directory, overwrite=True), recipe="reward")
    assert ckpt.list_checkpoints(directory)  # nothing deleted before the run really starts
    engine.start_run()
    assert ckpt.list_checkpoints(directory) == [] and not (directory / "model").exists()
    assert (directory / "metrics.jsonl").read_text() == ""
    assert (directory / "notes.txt").read_text() == "mine"  # only the run's own artefacts go
    engine.finish()


def test_stale_staging_is_removed_at_start_and_never_reused(tmp_path):
    directory = tmp_path / "run"
    stale = ckpt.staging_path(directory, 2)
    stale.mkdir(parents=True)
    (stale / "stray.tmp").write_text("from a killed write")
    engine = Engine(config(directory), recipe="reward")
    engine.start_run()
    assert not stale.exists()

    # a staging directory that appears again (a killed write of this step) is recreated empty
    engine.prepare(torch.nn.Linear(2, 1))
    engine.step = 2
    stale.mkdir(parents=True)
    (stale / "stray.tmp").write_text("from a killed write")
    published = engine.save_checkpoint()
    assert published.name == "step-00000002" and not (published / "stray.tmp").exists()
    assert (published / ckpt.STATE_FILE).is_file()
    engine.finish()


def test_fresh_staging_empties_an_existing_directory(tmp_path):
    staging = ckpt.staging_path(tmp_path, 3)
    staging.mkdir(parents=True)
    (staging / "stray").write_text("x")
    assert list(ckpt.fresh_staging(staging).iterdir()) == []


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(RunDirectoryError, match="is a file, not a directory"):
        Engine(config(path), recipe="reward")
