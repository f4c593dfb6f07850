"""Built-in preference tasks with deterministic generators and gold judges.

``arithmetic``
    integer problems (single operations, multi-step expressions, word
    problems); chosen is correct, rejected has a realistic mistake.
``constraints``
    write about a topic under one verifiable constraint (word limits, words
    to include or avoid, letter case, bullets, ...); chosen follows it,
    rejected misses it narrowly.

Splits: ``train`` and ``test`` (disjoint prompts of one generator) and ``ood``
(other templates, wordings and topics, plus kinds that train/test never
contain; see each task's ``OOD_ONLY_KINDS``), e.g.
``load_preference_pairs("constraints", "ood")``.

Example::

    from prefrl.data.tasks import get_task

    task = get_task("arithmetic")
    rows = task.generate(100, split="train", seed=0)
    task.judge(rows[0]["prompt"], rows[0]["chosen"])  # 1.0
"""

from __future__ import annotations

from prefrl.data.tasks.arithmetic import ArithmeticTask
from prefrl.data.tasks.base import (
    FORMATS,
    IN_DISTRIBUTION_SPLITS,
    SPLITS,
    Example,
    Task,
)
from prefrl.data.tasks.constraints import ConstraintsTask

TASKS: dict[str, Task] = {task.name: task for task in (ArithmeticTask(), ConstraintsTask())}


def is_task(name: object) -> bool:
    """Whether ``name`` names a built-in task."""
    return isinstance(name, str) and name in TASKS


def get_task(name: str) -> Task:
    """The built-in task called ``name``; ValueError for an unknown name."""
    if not is_task(name):
        raise ValueError(f"unknown task {name!r}; built-in tasks: {', '.join(TASKS)}")
    return TASKS[name]


__all__ = [
    "FORMATS",
    "IN_DISTRIBUTION_SPLITS",
    "SPLITS",
    "TASKS",
    "ArithmeticTask",
    "ConstraintsTask",
    "Example",
    "Task",
    "get_task",
    "is_task",
]
