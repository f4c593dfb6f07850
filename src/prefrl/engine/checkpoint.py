"""Atomic, resumable checkpoints, and one run per run directory.

Layout: `<output_dir>/checkpoints/step-00000010/` holds accelerate's state (model, optimizer,
scheduler, RNG of every process) and `trainer_state.json` (step, data position, recipe extras).
It is written under a hidden staging name (`.staging-step-…`, always created afresh: a staging
directory left by a killed write is removed, never reused) and renamed into place once every
process is done.

`<output_dir>/.prefrl.lock` is held by the run's main process for the run's life (`RunLock`): a
second run into the same directory fails at start-up naming the holder's pid. The lock is an
OS-level `flock`, so a run killed with `kill -9` leaves no lock behind: its file (with the dead
pid) is simply taken over.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from prefrl.errors import RunDirectoryError

try:  # POSIX; elsewhere the lock falls back to checking whether the recorded pid is alive
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
LOCK_FILE = ".prefrl.lock"
STAGING_PREFIX = ".staging-"
# What overwrite=true clears (a policy run's eval_initial.json is its paired baseline: a new run must not read it).
RUN_ARTEFACTS = (CHECKPOINT_DIR, "metrics.jsonl", "eval.json", "eval_initial.json", "eval_answers.jsonl", "eval_answers_by_step.jsonl", "model")
_STEP_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def staging_path(output_dir: str | Path, step: int) -> Path:
    return checkpoint_root(output_dir) / f"{STAGING_PREFIX}{step_name(step)}"


def fresh_staging(staging: Path) -> Path:
    """An empty staging directory: one left by a killed write (with its stray files) is removed first."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def remove_stale_staging(output_dir: str | Path) -> list[Path]:
    """Remove every staging directory (the leftovers of killed writes); only the lock holder may."""
    root = checkpoint_root(output_dir)
    removed = []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(STAGING_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def clear_run(output_dir: str | Path) -> list[str]:
    """Delete an earlier run's checkpoints, metrics, eval report and final model (`overwrite=true`)."""
    removed = []
    for name in RUN_ARTEFACTS:
        path = Path(output_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (staging directories are ignored), oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _STEP_NAME.match(entry.name)
        if match and (entry / STATE_FILE).is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1][1] if checkpoints else None


def write_trainer_state(directory: Path, state: dict[str, Any]) -> None:
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))


def read_trainer_state(directory: Path) -> dict[str, Any]:
    return json.loads((directory / STATE_FILE).read_text())


def publish(staging: Path, step: int) -> Path:
    """Rename a finished staging directory to its final name (replacing a stale one of that step)."""
    final = staging.parent / step_name(step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


def prune(output_dir: str | Path, keep: int) -> None:
    """Remove the oldest complete checkpoints beyond `keep` (0 keeps all), and stale staging dirs."""
    remove_stale_staging(output_dir)
    if keep <= 0:
        return
    for _, path in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


# ---- one run per directory --------------------------------------------------------------------------
_HELD: dict[str, "RunLock"] = {}  # the locks this process holds, by the lock file's real path


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    except OSError:
        return False
    return True


class RunLock:
    """Exclusive lock on a run directory, held by a run's main process from start-up to the end.

    `acquire()` raises `RunDirectoryError` naming the directory and the holder's pid when another
    live process holds it. A lock left by a dead process is taken over (`took_over` holds its pid).
    A process runs one run at a time: a lock this process still holds from an earlier run (one that
    raised before it could release) is handed to the new run.
    """

    def __init__(self, output_dir: str | Path):
        self.directory = Path(output_dir)
        self.path = self.directory / LOCK_FILE
        self.took_over: int | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        key = os.path.realpath(self.path)
        earlier = _HELD.pop(key, None)
        if earlier is not None:
            earlier.release()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            recorded = _read_pid(fd)
            if not self._lock(fd, recorded):
                os.close(fd)
                raise RunDirectoryError(
                    f"output_dir {str(self.directory)!r} is in use by another prefrl run (pid {recorded if recorded else 'unknown'}, "
                    f"lock file {self.path}). Wait for that run to finish, stop it, or choose another output_dir."
                )
            try:  # the file locked must still be the one at the path (a releasing holder unlinks it)
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        if recorded and recorded != os.getpid():
            self.took_over = recorded
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        _HELD[key] = self
        return self

    @staticmethod
    def _lock(fd: int, recorded: int | None) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError as error:  # a file system without flock: fall back to the pid
                if error.errno in (errno.EAGAIN, errno.EACCES):
                    return False
        return not (recorded and recorded != os.getpid() and _pid_alive(recorded))

    def release(self) -> None:
        """Unlock and remove the lock file (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        key = os.path.realpath(self.path)
        if _HELD.get(key) is self:
            del _HELD[key]
        try:
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def lock_holder(output_dir: str | Path) -> int | None:
    """The pid recorded in a run directory's lock file, if any (for messages and tests)."""
    path = Path(output_dir) / LOCK_FILE
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
