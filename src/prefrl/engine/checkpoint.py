"""Atomic, resumable checkpoints: a step's directory appears whole or not at all.

Layout: `<output_dir>/checkpoints/step-00000010/` holds accelerate's state (model, optimizer,
scheduler, RNG of every process) and `trainer_state.json` (step, data position, recipe extras).
It is written under a hidden staging name and renamed into place once every process is done.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
_STEP_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def staging_path(output_dir: str | Path, step: int) -> Path:
    return checkpoint_root(output_dir) / f".staging-{step_name(step)}"


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
    root = checkpoint_root(output_dir)
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(".staging-"):
                shutil.rmtree(entry, ignore_errors=True)
    if keep <= 0:
        return
    for _, path in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
