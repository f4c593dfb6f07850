"""The task registry and the behaviour every built-in task shares."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prefrl.data.tasks import TASKS, ArithmeticTask, ConstraintsTask, Task, get_task, is_task

SRC = Path(__file__).resolve().parents[3] / "src"


def test_registry_lists_the_built_in_tasks() -> None:
    assert set(TASKS) == {"arithmetic", "constraints"}
    assert isinstance(get_task("arithmetic"), ArithmeticTask)
    assert isinstance(get_task("constraints"), ConstraintsTask)
    for name, task in TASKS.items():
        assert isinstance(task, Task) and task.name == name
        assert get_task(name) is task


def test_is_task() -> None:
    assert is_task("arithmetic") and is_task("constraints")
    assert not is_task("chess")
    assert not is_task("")
    assert not is_task(None)  # type: ignore[arg-type]


def test_unknown_task_raises_value_error() -> None:
    with pytest.raises(ValueError) as raised:
        get_task("chess")
    assert not isinstance(raised.value, KeyError)
    assert str(raised.value) == "unknown task 'chess'; built-in tasks: arithmetic, constraints"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_rows_have_the_trl_layout(name: str) -> None:
    task = get_task(name)
    for row in task.generate(5, seed=1):
        assert row["prompt"][0]["role"] == "user" and len(row["prompt"]) == 1
        for column in ("chosen", "rejected", "reference"):
            assert [message["role"] for message in row[column]] == ["assistant"]
        assert row["chosen"] != row["rejected"]
    for row in task.generate(5, seed=1, fmt="standard"):
        assert all(isinstance(row[column], str) for column in ("prompt", "chosen", "rejected", "reference"))
    for row in task.prompts(5, seed=1):
        assert {"prompt", "reference"} <= set(row) and "chosen" not in row


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_row_has_the_same_columns(name: str) -> None:
    rows = get_task(name).generate(100, seed=0)
    assert len({tuple(row) for row in rows}) == 1


def test_rows_do_not_depend_on_the_hash_seed() -> None:
    """Generation must not use Python's salted ``hash()``: other processes give the same rows."""
    script = (
        "import json; from prefrl.data.tasks import TASKS; "
        "print(json.dumps({name: task.generate(30, split='test', seed=9) for name, task in TASKS.items()}))"
    )
    here = {name: task.generate(30, split="test", seed=9) for name, task in TASKS.items()}
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(SRC)}
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(result.stdout) == here
