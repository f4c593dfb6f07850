"""Small helpers shared by every layer."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable


def publish_directory(destination: str | Path, build: Callable[[Path], Any], replace: bool = True) -> Path:
    """Build a directory under a hidden temporary sibling, then rename it into place.

    A reader never sees half a directory, and an earlier complete copy survives a crash mid-build.
    With `replace=False` an existing complete copy (one with files in it) is kept as it is — the
    cache case, where two processes may race to build the same thing.
    """
    destination = Path(destination)
    if not replace and destination.is_dir() and any(destination.iterdir()):
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        build(staging)
        if destination.exists() and replace:
            retired = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent))
            os.replace(destination, retired / "old")
            os.replace(staging, destination)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            try:
                os.replace(staging, destination)
            except OSError:
                if not destination.is_dir():  # lost a race to another builder: theirs is complete
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def write_json(path: str | Path, value: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True))
    os.replace(temporary, path)
